/*  vdb_limiter: see vdb_limiter.h. Tokens are kept as doubles: a bucket holds at most 10^12
    (VDP_RATE_MAX), well within a double's exact integers, and the fractions that refill between
    two messages must not be lost to rounding.  */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "vdb_limiter.h"

typedef struct {
    double tokens;
    int64_t at_us; // when `tokens` was last brought up to date
} s_bucket_t;

//  A key's or an org's pair of buckets.
typedef struct {
    s_bucket_t msgs;
    s_bucket_t bytes;
} s_pair_t;

struct vdb_limiter_t {
    zhashx_t *keys; // key -> s_pair_t (owned)
    zhashx_t *orgs; // org -> s_pair_t (owned)
};

static void
s_pair_free(void **item)
{
    free(*item);
    *item = NULL;
}

vdb_limiter_t *
vdb_limiter_new(void)
{
    vdb_limiter_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->keys = zhashx_new();
    self->orgs = zhashx_new();
    if (!self->keys || !self->orgs) {
        vdb_limiter_destroy(&self);
        return NULL;
    }
    zhashx_set_destructor(self->keys, s_pair_free);
    zhashx_set_destructor(self->orgs, s_pair_free);
    return self;
}

void
vdb_limiter_destroy(vdb_limiter_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vdb_limiter_t *self = *self_p;
    zhashx_destroy(&self->keys);
    zhashx_destroy(&self->orgs);
    free(self);
    *self_p = NULL;
}

//  The pair of `name`, made full if new. NULL on no memory.
static s_pair_t *
s_pair(zhashx_t *table, const char *name, const vdb_limits_t *limits, int64_t now_us)
{
    s_pair_t *pair = zhashx_lookup(table, name);
    if (pair)
        return pair;
    pair = malloc(sizeof *pair);
    if (!pair)
        return NULL;
    pair->msgs = (s_bucket_t){ (double)limits->msgs.burst, now_us };
    pair->bytes = (s_bucket_t){ (double)limits->bytes.burst, now_us };
    if (zhashx_insert(table, name, pair) != 0) {
        free(pair);
        return NULL;
    }
    return pair;
}

//  Brings `bucket` up to `now_us` under `rate` (a lowered burst caps what it holds at once).
static void
s_refill(s_bucket_t *bucket, const vdp_rate_t *rate, int64_t now_us)
{
    if (now_us > bucket->at_us) {
        bucket->tokens += (double)(now_us - bucket->at_us) * (double)rate->per_second / 1e6;
        bucket->at_us = now_us;
    }
    if (bucket->tokens > (double)rate->burst)
        bucket->tokens = (double)rate->burst;
}

/*  Milliseconds until `bucket` holds `need` under `rate`, rounded up (a retry at that time finds
    enough): 0 if it does now, -1 if it never can (more than the burst).  */
static double
s_wait_ms(const s_bucket_t *bucket, const vdp_rate_t *rate, double need)
{
    if (need <= bucket->tokens)
        return 0;
    if (need > (double)rate->burst || rate->per_second == 0)
        return -1;
    double ms = (need - bucket->tokens) * 1000.0 / (double)rate->per_second;
    double whole = (double)(uint64_t)ms;
    //  A hair over a whole ms is float noise in the refill, not a ms more to wait.
    return ms - whole > 1e-6 ? whole + 1 : whole < 1 ? 1 : whole;
}

bool
vdb_limiter_take(vdb_limiter_t *self,
                 const char *key,
                 const vdb_limits_t *key_limits,
                 const char *org,
                 const vdb_limits_t *org_limits,
                 size_t size,
                 int64_t now_us,
                 vdb_limiter_refusal_t *refusal)
{
    assert(self && key && key_limits && org && org_limits);
    s_pair_t *pairs[2] = { s_pair(self->keys, key, key_limits, now_us),
                           s_pair(self->orgs, org, org_limits, now_us) };
    const vdb_limits_t *limits[2] = { key_limits, org_limits };
    if (!pairs[0] || !pairs[1])
        return true;
    //  The longest wait over the four buckets, and which one it is.
    double wait = 0;
    int worst = -1; // 2 * (0 key, 1 org) + (0 msgs, 1 bytes)
    for (int p = 0; p < 2; p++) {
        s_refill(&pairs[p]->msgs, &limits[p]->msgs, now_us);
        s_refill(&pairs[p]->bytes, &limits[p]->bytes, now_us);
        double waits[2] = { s_wait_ms(&pairs[p]->msgs, &limits[p]->msgs, 1.0),
                            s_wait_ms(&pairs[p]->bytes, &limits[p]->bytes, (double)size) };
        for (int b = 0; b < 2; b++) {
            //  "Never" outranks any wait; among waits, the longest.
            if (waits[b] != 0 && wait >= 0 && (waits[b] < 0 || waits[b] > wait)) {
                wait = waits[b];
                worst = 2 * p + b;
            }
        }
    }
    if (worst < 0) {
        for (int p = 0; p < 2; p++) {
            pairs[p]->msgs.tokens -= 1.0;
            pairs[p]->bytes.tokens -= (double)size;
        }
        return true;
    }
    if (refusal) {
        refusal->org = worst / 2 == 1;
        refusal->bytes = worst % 2 == 1;
        refusal->retry_after_ms = wait < 0 ? 0 : wait > UINT32_MAX ? UINT32_MAX : (uint32_t)wait;
    }
    return false;
}

size_t
vdb_limiter_size(const vdb_limiter_t *self)
{
    return self ? 2 * (zhashx_size(self->keys) + zhashx_size(self->orgs)) : 0;
}

/*  vdb_limiter: the token buckets behind the broker's rate limits (docs/policy.md). Each key and
    each org has two buckets, one counting messages and one counting envelope bytes; a message is
    admitted only if all four of its buckets (its key's and its org's) hold enough, and then it
    is taken from all four at once, so a refused message costs its sender nothing. A bucket
    fills at its rate up to its burst and starts full. The limits are passed in on every call,
    not stored, so a reload that changes them applies to the next message.
    Memory: two buckets per key and per org that ever published, bounded by the registry (only
    registered keys get this far).  */

#ifndef VDB_LIMITER_H_INCLUDED
#define VDB_LIMITER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdp_rate.h"

typedef struct vdb_limiter_t vdb_limiter_t;

//  The limits of one key or one org.
typedef struct {
    vdp_rate_t msgs;
    vdp_rate_t bytes;
} vdb_limits_t;

//  Why a message was refused, and when it would fit.
typedef struct {
    bool org;                // the org's buckets were short (else the key's)
    bool bytes;              // the bytes bucket was short (else the messages one)
    uint32_t retry_after_ms; // when every bucket will hold enough; 0: never (larger than a burst)
} vdb_limiter_refusal_t;

vdb_limiter_t *vdb_limiter_new(void);

void vdb_limiter_destroy(vdb_limiter_t **self_p);

/*  Takes one message of `size` bytes from the buckets of `key` and of `org`, at `now_us`
    (monotonic microseconds). Returns true if all four held enough (and takes it from them);
    false if not, taking nothing and filling `refusal` (may be NULL). On no memory for a new
    bucket the message is admitted: a limiter must not refuse for a reason of its own.  */
bool vdb_limiter_take(vdb_limiter_t *self,
                      const char *key,
                      const vdb_limits_t *key_limits,
                      const char *org,
                      const vdb_limits_t *org_limits,
                      size_t size,
                      int64_t now_us,
                      vdb_limiter_refusal_t *refusal);

//  Buckets held (two per key and per org seen).
size_t vdb_limiter_size(const vdb_limiter_t *self);

#endif

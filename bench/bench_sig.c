/*  vedetta-bench-sig: what end-to-end signatures (PROTOCOL.md §4.6) cost per envelope, against
    one Ed25519 signature or verification per envelope, measured in the same run.
    For each body size it builds `count` envelopes as the bench's publisher does, then times:
    - sign: each envelope's leaf, a tree per VDP_SIG_MAX_LEAVES, each sig encoded (libvedetta's
      work), against one crypto_sign_detached() per envelope over its leaf;
    - verify: vdp_sig_verify() in arrival order with one cache (the broker's work and a
      subscriber's), against one crypto_sign_verify_detached() per envelope;
    - the floor: BLAKE2b-256 of each envelope's encoded bytes, the least any signature over the
      whole envelope must do.
    Every verification must succeed (the run fails otherwise). Loops are bounded by `count`,
    rounded up to whole rounds of S_ROUND envelopes.
    Usage: vedetta-bench-sig [--count N] [--sizes A,B,...]; output: bench/README.md.  */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "vdp_envelope.h"
#include "vdp_ids.h"
#include "vdp_sig.h"
#include "vedetta.h"

#define S_MAX_SIZES 8
#define S_MAX_COUNT 1000000
#define S_ROUND     (4 * VDP_SIG_MAX_LEAVES) // envelopes signed and verified per round

typedef struct {
    size_t count;
    size_t sizes[S_MAX_SIZES];
    size_t n_sizes;
} s_options_t;

static double
s_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
s_parse(int argc, char **argv, s_options_t *opts)
{
    opts->count = 64000;
    opts->sizes[0] = 100;
    opts->sizes[1] = 1024;
    opts->n_sizes = 2;
    for (int i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--count") == 0 && value) {
            char *end;
            unsigned long long n = strtoull(value, &end, 10);
            if (*end || n < S_ROUND || n > S_MAX_COUNT)
                return -1;
            opts->count = (size_t)n;
        } else if (strcmp(argv[i], "--sizes") == 0 && value) {
            opts->n_sizes = 0;
            char copy[256], *save = NULL;
            snprintf(copy, sizeof copy, "%s", value);
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                char *end;
                unsigned long long n = strtoull(t, &end, 10);
                if (*end || n > VDP_MAX_BODY || opts->n_sizes == S_MAX_SIZES)
                    return -1;
                opts->sizes[opts->n_sizes++] = (size_t)n;
            }
            if (opts->n_sizes == 0)
                return -1;
        } else {
            return -1;
        }
        i++;
    }
    return 0;
}

//  An envelope as the bench's publisher builds it, body `body[0..size)`.
static void
s_envelope(vdp_envelope_t *env, const uint8_t *body, size_t size, size_t n)
{
    memset(env, 0, sizeof *env);
    env->v = 1;
    vdp_uuid_generate(env->id);
    snprintf(env->sender, sizeof env->sender, "comune:i726");
    env->sent = 1790000000000 + (int64_t)n;
    snprintf(env->topic, sizeof env->topic, "alert.toscana.i726");
    env->kind = VDP_KIND_ALERT;
    env->status = VDP_STATUS_ACTUAL;
    env->tlp = VDP_TLP_GREEN;
    snprintf(env->category, sizeof env->category, "intrusion-attempts");
    env->severity = VDP_SEVERITY_MINOR;
    snprintf(env->ctype, sizeof env->ctype, "text/plain");
    env->body = body;
    env->body_len = size;
}

//  CPU seconds of each measurement, summed over the rounds.
typedef struct {
    double sign_tree, sign_each, verify_tree, verify_each, hash_floor;
    size_t bytes;
} s_totals_t;

/*  One round over `n` envelopes (a multiple of VDP_SIG_MAX_LEAVES) given fresh ids, so that
    every round signs and verifies new trees. Returns 0, or -1 on a failure (printed).  */
static int
s_round(vdp_envelope_t *envs,
        size_t n,
        uint8_t (*leaves)[VDP_SIG_HASH_BYTES],
        uint8_t (*single)[crypto_sign_BYTES],
        vdp_sig_t *sigs,
        vdp_sig_cache_t *cache,
        const uint8_t *pk,
        const uint8_t *sk,
        s_totals_t *totals)
{
    for (size_t i = 0; i < n; i++)
        vdp_uuid_generate(envs[i].id);

    //  Signing: leaves, one tree per VDP_SIG_MAX_LEAVES, every sig encoded.
    double t0 = s_cpu_s();
    for (size_t first = 0; first < n; first += VDP_SIG_MAX_LEAVES) {
        for (size_t i = first; i < first + VDP_SIG_MAX_LEAVES; i++)
            if (vdp_sig_leaf(&envs[i], leaves[i]) != VD_OK)
                return -1;
        if (vdp_sig_sign((const uint8_t(*)[VDP_SIG_HASH_BYTES])(leaves + first), VDP_SIG_MAX_LEAVES,
                         sk, sigs) != VD_OK)
            return -1;
        for (size_t i = 0; i < VDP_SIG_MAX_LEAVES; i++)
            envs[first + i].sig_len = vdp_sig_encode(&sigs[i], envs[first + i].sig);
    }
    totals->sign_tree += s_cpu_s() - t0;
    t0 = s_cpu_s();
    for (size_t i = 0; i < n; i++)
        crypto_sign_detached(single[i], NULL, leaves[i], VDP_SIG_HASH_BYTES, sk);
    totals->sign_each += s_cpu_s() - t0;

    //  Verifying, in order, with one cache; then one Ed25519 verification each.
    t0 = s_cpu_s();
    for (size_t i = 0; i < n; i++) {
        char reason[128];
        if (vdp_sig_verify(&envs[i], pk, cache, reason, sizeof reason) != VD_OK) {
            fprintf(stderr, "vedetta-bench-sig: envelope %zu: %s\n", i, reason);
            return -1;
        }
    }
    totals->verify_tree += s_cpu_s() - t0;
    t0 = s_cpu_s();
    for (size_t i = 0; i < n; i++)
        if (crypto_sign_verify_detached(single[i], leaves[i], VDP_SIG_HASH_BYTES, pk) != 0) {
            fprintf(stderr, "vedetta-bench-sig: single signature %zu does not verify\n", i);
            return -1;
        }
    totals->verify_each += s_cpu_s() - t0;

    //  The floor: hashing each envelope's encoded bytes (sig included) once.
    uint8_t *data[S_ROUND];
    size_t len[S_ROUND];
    size_t encoded = 0;
    while (encoded < n &&
           vdp_envelope_encode(&envs[encoded], &data[encoded], &len[encoded]) == VD_OK)
        encoded++;
    uint8_t hash[crypto_generichash_BYTES];
    t0 = s_cpu_s();
    for (size_t i = 0; i < encoded; i++)
        crypto_generichash(hash, sizeof hash, data[i], len[i], NULL, 0);
    totals->hash_floor += s_cpu_s() - t0;
    for (size_t i = 0; i < encoded; i++) {
        totals->bytes += len[i];
        free(data[i]);
    }
    return encoded == n ? 0 : -1;
}

static int
s_run(const s_options_t *opts, size_t size, const uint8_t *pk, const uint8_t *sk)
{
    //  A few trees' worth of envelopes, reused round after round with new ids: the broker
    //  too decodes every envelope into the same struct, so that its memory stays in cache.
    uint8_t *body = malloc(size ? size : 1);
    vdp_envelope_t *envs = calloc(S_ROUND, sizeof *envs);
    uint8_t(*leaves)[VDP_SIG_HASH_BYTES] = calloc(S_ROUND, sizeof *leaves);
    uint8_t(*single)[crypto_sign_BYTES] = calloc(S_ROUND, sizeof *single);
    vdp_sig_t *sigs = calloc(VDP_SIG_MAX_LEAVES, sizeof *sigs);
    int rc = -1;
    if (!body || !envs || !leaves || !single || !sigs) {
        fprintf(stderr, "vedetta-bench-sig: out of memory\n");
        goto done;
    }
    randombytes_buf(body, size);
    for (size_t i = 0; i < S_ROUND; i++)
        s_envelope(&envs[i], body, size, i);
    s_totals_t totals;
    memset(&totals, 0, sizeof totals);
    vdp_sig_cache_t cache;
    memset(&cache, 0, sizeof cache);
    size_t rounds = (opts->count + S_ROUND - 1) / S_ROUND;
    for (size_t r = 0; r < rounds; r++)
        if (s_round(envs, S_ROUND, leaves, single, sigs, &cache, pk, sk, &totals) != 0)
            goto done;
    size_t count = rounds * S_ROUND;
    double us = 1e6 / (double)count;
    printf("%-6zu %9.2f %9.2f %9.2f %9.2f %9.2f %9zu %9" PRIu64 "\n", size, totals.sign_tree * us,
           totals.sign_each * us, totals.verify_tree * us, totals.verify_each * us,
           totals.hash_floor * us, totals.bytes / count, cache.checks);
    printf("ratio sign tree/each %zu: %.3f\n", size, totals.sign_tree / totals.sign_each);
    printf("ratio verify tree/each %zu: %.3f\n", size, totals.verify_tree / totals.verify_each);
    printf("ratio verify tree/hash floor %zu: %.2f\n", size,
           totals.verify_tree / totals.hash_floor);
    rc = 0;
done:
    free(body);
    free(envs);
    free(leaves);
    free(single);
    free(sigs);
    return rc;
}

int
main(int argc, char **argv)
{
    s_options_t opts;
    if (s_parse(argc, argv, &opts) != 0) {
        fprintf(stderr, "usage: vedetta-bench-sig [--count N (%u..%u)] [--sizes A,B,...]\n",
                S_ROUND, S_MAX_COUNT);
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(pk, sk);
    printf("vedetta-bench-sig: %zu envelopes a size, trees of %u, CPU us per envelope\n",
           opts.count, VDP_SIG_MAX_LEAVES);
    printf("%-6s %9s %9s %9s %9s %9s %9s %9s\n", "size", "sign", "sign-1", "verify", "verify-1",
           "hash", "env-B", "ed-checks");
    int rc = 0;
    for (size_t i = 0; i < opts.n_sizes && rc == 0; i++)
        rc = s_run(&opts, opts.sizes[i], pk, sk);
    sodium_memzero(sk, sizeof sk);
    return rc ? 1 : 0;
}

/*  fuzz_sig: arbitrary bytes as a `sig` value and as an encoded envelope (PROTOCOL.md §4.6).
    The same input goes three ways, and beyond crashes each checks properties, aborting if one
    fails:
    - vdp_sig_decode(): VD_OK or VD_ESIG with a reason; what decodes has the length its (index,
      count) needs and encodes back to the same bytes;
    - vdp_sig_verify(), as the sig of a fixed envelope (e2 of the test vectors, leaf 1 of a tree
      of 3) with the vector key, once without a cache and once with a cache that holds that
      tree's root: VD_OK only for the envelope's genuine sig, both ways. Anything else passing
      would be a forgery, a malleable signature, or a cache that answers for another root;
    - vdp_sig_attach(), with the input as the encoded envelope: VD_OK or VD_EINVAL (never for
      what vdp_sig_attachable() passes); on VD_OK the pairs are copied unchanged and followed by
      "sig", and an input that vdp_sig_attachable() passes and that decodes as an envelope
      decodes, once attached, to the same envelope with that sig.
    Seeds (tests/fuzz/seeds/sig): the vectors' three sigs, a 269-byte sig (leaf 63 of 64), and
    encoded envelopes without sig (fixmap, fixmap of 15, map 16, map 32 headers).  */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../sig_envelopes.h"
#include "vdp_envelope.h"
#include "vdp_sig.h"
#include "vedetta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
s_require(bool condition)
{
    if (!condition)
        abort();
}

static uint8_t s_public[VDP_KEY_BYTES];
static vdp_envelope_t s_env;             // e2, without its sig
static uint8_t s_sig[VDP_SIG_MAX_BYTES]; // e2's genuine sig
static size_t s_sig_len;
static vdp_sig_cache_t s_primed; // holds the root of the vectors' tree
static bool s_ready;

//  Once per process: the vector key, the tree of e1, e2, e3, and a cache primed with its root.
static void
s_init(void)
{
    if (s_ready)
        return;
    s_require(sodium_init() >= 0);
    uint8_t seed[32], secret[64];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)i;
    s_require(crypto_sign_seed_keypair(s_public, secret, seed) == 0);
    vdp_envelope_t envs[3];
    uint8_t leaves[3][VDP_SIG_HASH_BYTES];
    for (int i = 0; i < 3; i++) {
        vdt_sig_envelope(&envs[i], i);
        s_require(vdp_sig_leaf(&envs[i], leaves[i]) == VD_OK);
    }
    vdp_sig_t sigs[3];
    s_require(vdp_sig_sign((const uint8_t(*)[VDP_SIG_HASH_BYTES])leaves, 3, secret, sigs) == VD_OK);
    sodium_memzero(secret, sizeof secret);
    s_env = envs[1];
    s_sig_len = vdp_sig_encode(&sigs[1], s_sig);
    envs[0].sig_len = vdp_sig_encode(&sigs[0], envs[0].sig);
    s_require(vdp_sig_verify(&envs[0], s_public, &s_primed, NULL, 0) == VD_OK);
    s_ready = true;
}

//  A reason is a NUL-terminated string within its buffer that says something.
static void
s_require_reason(const char *reason, size_t size)
{
    s_require(reason[0] != '\0' && memchr(reason, '\0', size) != NULL);
}

static void
s_decode(const uint8_t *data, size_t size)
{
    vdp_sig_t sig;
    char reason[128];
    memset(reason, 0x7f, sizeof reason);
    int rc = vdp_sig_decode(&sig, data, size, reason, sizeof reason);
    if (rc != VD_OK) {
        s_require(rc == VD_ESIG);
        s_require_reason(reason, sizeof reason);
        return;
    }
    s_require(sig.count >= 1 && sig.count <= VDP_SIG_MAX_LEAVES && sig.index < sig.count);
    s_require(sig.path_len == vdp_sig_path_len(sig.index, sig.count));
    s_require(size == VDP_SIG_FIXED_BYTES + sig.path_len * VDP_SIG_HASH_BYTES);
    uint8_t again[VDP_SIG_MAX_BYTES];
    s_require(vdp_sig_encode(&sig, again) == size && memcmp(again, data, size) == 0);
}

static void
s_verify(const uint8_t *data, size_t size)
{
    vdp_envelope_t env = s_env;
    env.sig_len = size < VDP_MAX_SIG ? size : VDP_MAX_SIG;
    memcpy(env.sig, data, env.sig_len);
    bool genuine = env.sig_len == s_sig_len && memcmp(env.sig, s_sig, s_sig_len) == 0;
    char reason[128];
    int rc = vdp_sig_verify(&env, s_public, NULL, reason, sizeof reason);
    s_require(rc == VD_OK || rc == VD_ESIG);
    s_require((rc == VD_OK) == genuine);
    if (rc != VD_OK)
        s_require_reason(reason, sizeof reason);
    //  e2 is a leaf of the primed root: only the genuine sig may be a hit
    vdp_sig_cache_t cache = s_primed;
    rc = vdp_sig_verify(&env, s_public, &cache, reason, sizeof reason);
    s_require((rc == VD_OK) == genuine);
    s_require(cache.hits == s_primed.hits + (genuine ? 1 : 0));
    s_require(cache.checks <= s_primed.checks + (genuine ? 0 : 1));
}

static void
s_attach(const uint8_t *data, size_t size)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    int rc = vdp_sig_attach(data, size, s_sig, s_sig_len, &out, &out_len);
    if (rc != VD_OK) {
        //  What attachable passes, attach takes.
        s_require(rc == VD_EINVAL && out == NULL && !vdp_sig_attachable(data, size));
        return;
    }
    size_t old_head = (data[0] & 0xf0) == 0x80 ? 1 : data[0] == 0xde ? 3 : 5;
    size_t new_head = (out[0] & 0xf0) == 0x80 ? 1 : 3;
    size_t pairs_len = size - old_head;
    s_require(out_len == new_head + pairs_len + 4 + 2 + s_sig_len);
    s_require(memcmp(out + new_head, data + old_head, pairs_len) == 0);
    s_require(memcmp(out + new_head + pairs_len, "\xa3sig\xc4", 5) == 0);

    //  An envelope that vdp_sig_attachable() passes (attach's precondition: no key "sig",
    //  room for one) gains exactly that sig, and nothing else changes.
    vdp_envelope_t before = { 0 }, after = { 0 };
    if (vdp_sig_attachable(data, size) &&
        vdp_envelope_decode(&before, data, size, NULL, 0) == VD_OK) {
        s_require(vdp_envelope_decode(&after, out, out_len, NULL, 0) == VD_OK);
        s_require(after.sig_len == s_sig_len && memcmp(after.sig, s_sig, s_sig_len) == 0);
        after.sig_len = 0;
        s_require(vdp_envelope_same(&before, &after));
    }
    vdp_envelope_reset(&after);
    vdp_envelope_reset(&before);
    free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_init();
    s_decode(data, size);
    s_verify(data, size);
    s_attach(data, size);
    return 0;
}

/*  vdp_sig: end-to-end signatures of envelopes. The tree is RFC 9162's (§2.1.1 for the root,
    §2.1.3 for inclusion paths and their verification) with BLAKE2b-256 in place of SHA-256;
    PROTOCOL.md §4.6 is the specification.  */

#include "vdp_sig.h"

#include <assert.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "vdp_errors.h"
#include "vedetta.h"

_Static_assert(VDP_SIG_HASH_BYTES == crypto_generichash_BYTES, "BLAKE2b-256");
_Static_assert(VDP_SIG_ED25519 == crypto_sign_BYTES, "Ed25519 signature size");
_Static_assert(VDP_KEY_BYTES == crypto_sign_PUBLICKEYBYTES, "Ed25519 public key size");
_Static_assert(VDP_BODY_HASH_BYTES == VDP_SIG_HASH_BYTES, "one hash size");
_Static_assert(VDP_SIG_MAX_LEAVES <= (1u << VDP_SIG_MAX_PATH), "paths fit");

#define S_LEAF_PREFIX 0x00 // domain separation: a leaf can never pass for a node
#define S_NODE_PREFIX 0x01
//  What the Ed25519 signature covers: this context, the leaf count (2 bytes, big-endian), the
//  root. The context keeps a tree signature from ever being taken for another of the key's
//  signatures (the broker's key also signs audit heads).
#define S_CONTEXT     "vedetta-tree-1"
#define S_CONTEXT_LEN (sizeof S_CONTEXT - 1)

typedef uint8_t s_hash_t[VDP_SIG_HASH_BYTES];

//  ---------------------------------------------------------------------------------------------
//  Encoding

size_t
vdp_sig_path_len(size_t index, size_t count)
{
    assert(index < count);
    //  RFC 9162 §2.1.3.2, counting the steps instead of hashing
    size_t fn = index, sn = count - 1, steps = 0;
    while (sn > 0) {
        if ((fn & 1) == 0 && fn == sn)
            while ((fn & 1) == 0 && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        fn >>= 1;
        sn >>= 1;
        steps++;
    }
    return steps;
}

int
vdp_sig_decode(vdp_sig_t *self, const uint8_t *data, size_t size, char *reason, size_t rsize)
{
    assert(self);
    memset(self, 0, sizeof *self);
    if (!data || size == 0)
        return vdp_errorf(reason, rsize, VD_ESIG, "sig: missing");
    if (data[0] != VDP_SIG_VERSION)
        return vdp_errorf(reason, rsize, VD_ESIG, "sig: version %u unknown", data[0]);
    if (size < VDP_SIG_FIXED_BYTES)
        return vdp_errorf(reason, rsize, VD_ESIG, "sig: %zu bytes, too short", size);
    const uint8_t *p = data + 1;
    memcpy(self->hint, p, VDP_SIG_HINT_BYTES);
    p += VDP_SIG_HINT_BYTES;
    self->index = (uint16_t)(p[0] << 8 | p[1]);
    self->count = (uint16_t)(p[2] << 8 | p[3]);
    p += 4;
    if (self->count == 0 || self->count > VDP_SIG_MAX_LEAVES)
        return vdp_errorf(reason, rsize, VD_ESIG, "sig: tree of %u leaves (1..%u)", self->count,
                          VDP_SIG_MAX_LEAVES);
    if (self->index >= self->count)
        return vdp_errorf(reason, rsize, VD_ESIG, "sig: leaf %u of a tree of %u", self->index,
                          self->count);
    memcpy(self->signature, p, VDP_SIG_ED25519);
    p += VDP_SIG_ED25519;
    size_t path_len = vdp_sig_path_len(self->index, self->count);
    if (size != VDP_SIG_FIXED_BYTES + path_len * VDP_SIG_HASH_BYTES)
        return vdp_errorf(reason, rsize, VD_ESIG, "sig: %zu bytes, leaf %u of %u needs %zu", size,
                          self->index, self->count,
                          VDP_SIG_FIXED_BYTES + path_len * VDP_SIG_HASH_BYTES);
    memcpy(self->path, p, path_len * VDP_SIG_HASH_BYTES);
    self->path_len = path_len;
    return VD_OK;
}

size_t
vdp_sig_encode(const vdp_sig_t *self, uint8_t out[VDP_SIG_MAX_BYTES])
{
    assert(self && self->path_len <= VDP_SIG_MAX_PATH);
    uint8_t *p = out;
    *p++ = VDP_SIG_VERSION;
    memcpy(p, self->hint, VDP_SIG_HINT_BYTES);
    p += VDP_SIG_HINT_BYTES;
    *p++ = (uint8_t)(self->index >> 8);
    *p++ = (uint8_t)self->index;
    *p++ = (uint8_t)(self->count >> 8);
    *p++ = (uint8_t)self->count;
    memcpy(p, self->signature, VDP_SIG_ED25519);
    p += VDP_SIG_ED25519;
    memcpy(p, self->path, self->path_len * VDP_SIG_HASH_BYTES);
    p += self->path_len * VDP_SIG_HASH_BYTES;
    return (size_t)(p - out);
}

void
vdp_sig_hint(const uint8_t sign_public[VDP_KEY_BYTES], uint8_t hint[VDP_SIG_HINT_BYTES])
{
    memcpy(hint, sign_public, VDP_SIG_HINT_BYTES);
}

//  ---------------------------------------------------------------------------------------------
//  Hashes

//  msgpack-c write callback: the canonical form goes straight into the hash, never a buffer.
static int
s_hash_write(void *data, const char *buf, size_t len)
{
    crypto_generichash_update(data, (const unsigned char *)buf, len);
    return 0;
}

int
vdp_sig_leaf(const vdp_envelope_t *env, uint8_t leaf[VDP_SIG_HASH_BYTES])
{
    assert(env && leaf);
    uint8_t body_hash[VDP_BODY_HASH_BYTES];
    crypto_generichash(body_hash, sizeof body_hash, env->body, env->body ? env->body_len : 0, NULL,
                       0);
    crypto_generichash_state state;
    crypto_generichash_init(&state, NULL, 0, VDP_SIG_HASH_BYTES);
    const uint8_t prefix = S_LEAF_PREFIX;
    crypto_generichash_update(&state, &prefix, 1);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &state, s_hash_write);
    int rc = vdp_envelope_pack_signed(env, &pk, body_hash);
    crypto_generichash_final(&state, leaf, VDP_SIG_HASH_BYTES);
    return rc;
}

static void
s_node(const uint8_t *left, const uint8_t *right, uint8_t out[VDP_SIG_HASH_BYTES])
{
    crypto_generichash_state state;
    crypto_generichash_init(&state, NULL, 0, VDP_SIG_HASH_BYTES);
    const uint8_t prefix = S_NODE_PREFIX;
    crypto_generichash_update(&state, &prefix, 1);
    crypto_generichash_update(&state, left, VDP_SIG_HASH_BYTES);
    crypto_generichash_update(&state, right, VDP_SIG_HASH_BYTES);
    crypto_generichash_final(&state, out, VDP_SIG_HASH_BYTES);
}

//  The largest power of two below n (n >= 2): where RFC 9162 splits a tree.
static size_t
s_split(size_t n)
{
    size_t k = 1;
    while (k * 2 < n)
        k *= 2;
    return k;
}

void
vdp_sig_root(const uint8_t (*leaves)[VDP_SIG_HASH_BYTES], size_t count, uint8_t root[32])
{
    assert(count >= 1 && count <= VDP_SIG_MAX_LEAVES);
    if (count == 1) {
        memcpy(root, leaves[0], VDP_SIG_HASH_BYTES);
        return;
    }
    size_t k = s_split(count);
    s_hash_t left, right;
    vdp_sig_root(leaves, k, left);
    vdp_sig_root(leaves + k, count - k, right);
    s_node(left, right, root);
}

//  RFC 9162 PATH(m, D[0:n]), appended to path[*len...]: siblings from the leaf up.
static void
s_path(const uint8_t (*leaves)[VDP_SIG_HASH_BYTES],
       size_t m,
       size_t n,
       uint8_t (*path)[VDP_SIG_HASH_BYTES],
       size_t *len)
{
    if (n == 1)
        return;
    size_t k = s_split(n);
    if (m < k) {
        s_path(leaves, m, k, path, len);
        vdp_sig_root(leaves + k, n - k, path[(*len)++]);
    } else {
        s_path(leaves + k, m - k, n - k, path, len);
        vdp_sig_root(leaves, k, path[(*len)++]);
    }
}

void
vdp_sig_root_of(const vdp_sig_t *sig, const uint8_t leaf[32], uint8_t root[32])
{
    assert(sig && sig->index < sig->count);
    //  RFC 9162 §2.1.3.2; vdp_sig_decode() has checked that the path has the right length.
    size_t fn = sig->index, sn = (size_t)sig->count - 1;
    s_hash_t r;
    memcpy(r, leaf, sizeof r);
    for (size_t i = 0; i < sig->path_len && sn > 0; i++) {
        if ((fn & 1) || fn == sn) {
            s_node(sig->path[i], r, r);
            while ((fn & 1) == 0 && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            s_node(r, sig->path[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    memcpy(root, r, sizeof r);
}

//  The bytes the Ed25519 signature covers.
static size_t
s_signed_message(uint16_t count, const uint8_t root[32], uint8_t *out)
{
    memcpy(out, S_CONTEXT, S_CONTEXT_LEN);
    out[S_CONTEXT_LEN] = (uint8_t)(count >> 8);
    out[S_CONTEXT_LEN + 1] = (uint8_t)count;
    memcpy(out + S_CONTEXT_LEN + 2, root, VDP_SIG_HASH_BYTES);
    return S_CONTEXT_LEN + 2 + VDP_SIG_HASH_BYTES;
}

//  ---------------------------------------------------------------------------------------------
//  Signing and verifying

int
vdp_sig_sign(const uint8_t (*leaves)[VDP_SIG_HASH_BYTES],
             size_t count,
             const uint8_t sign_secret[64],
             vdp_sig_t *sigs)
{
    assert(leaves && sign_secret && sigs);
    if (count < 1 || count > VDP_SIG_MAX_LEAVES)
        return VD_EINVAL;
    s_hash_t root;
    vdp_sig_root(leaves, count, root);
    uint8_t message[S_CONTEXT_LEN + 2 + VDP_SIG_HASH_BYTES];
    size_t message_len = s_signed_message((uint16_t)count, root, message);
    uint8_t signature[VDP_SIG_ED25519];
    crypto_sign_detached(signature, NULL, message, message_len, sign_secret);
    for (size_t i = 0; i < count; i++) {
        vdp_sig_t *sig = &sigs[i];
        memset(sig, 0, sizeof *sig);
        //  An Ed25519 secret key is the seed followed by the public key.
        vdp_sig_hint(sign_secret + 32, sig->hint);
        sig->index = (uint16_t)i;
        sig->count = (uint16_t)count;
        memcpy(sig->signature, signature, sizeof signature);
        s_path(leaves, i, count, sig->path, &sig->path_len);
    }
    return VD_OK;
}

int
vdp_sig_verify(const vdp_envelope_t *env,
               const uint8_t sign_public[VDP_KEY_BYTES],
               vdp_sig_cache_t *cache,
               char *reason,
               size_t rsize)
{
    assert(env && sign_public);
    vdp_sig_t sig;
    int rc = vdp_sig_decode(&sig, env->sig, env->sig_len, reason, rsize);
    if (rc != VD_OK)
        return rc;
    uint8_t hint[VDP_SIG_HINT_BYTES];
    vdp_sig_hint(sign_public, hint);
    if (memcmp(hint, sig.hint, sizeof hint) != 0)
        return vdp_errorf(reason, rsize, VD_ESIG, "sig: made with another key");
    s_hash_t leaf, root;
    if (vdp_sig_leaf(env, leaf) != VD_OK)
        return VD_ENOMEM;
    vdp_sig_root_of(&sig, leaf, root);
    if (cache && cache->valid && cache->count == sig.count &&
        memcmp(cache->sign_public, sign_public, VDP_KEY_BYTES) == 0 &&
        memcmp(cache->signature, sig.signature, VDP_SIG_ED25519) == 0 &&
        sodium_memcmp(cache->root, root, VDP_SIG_HASH_BYTES) == 0) {
        cache->hits++;
        return VD_OK;
    }
    uint8_t message[S_CONTEXT_LEN + 2 + VDP_SIG_HASH_BYTES];
    size_t message_len = s_signed_message(sig.count, root, message);
    if (cache)
        cache->checks++;
    if (crypto_sign_verify_detached(sig.signature, message, message_len, sign_public) != 0)
        return vdp_errorf(reason, rsize, VD_ESIG, "sig: does not verify");
    if (cache) {
        cache->valid = true;
        memcpy(cache->sign_public, sign_public, VDP_KEY_BYTES);
        memcpy(cache->signature, sig.signature, VDP_SIG_ED25519);
        memcpy(cache->root, root, VDP_SIG_HASH_BYTES);
        cache->count = sig.count;
    }
    return VD_OK;
}

//  ---------------------------------------------------------------------------------------------
//  Attaching a signature to an encoded envelope

//  The map header at raw: its length in bytes and the pair count; false if not a map.
static bool
s_map_header(const uint8_t *raw, size_t len, size_t *header_len, size_t *pairs)
{
    if (len >= 1 && (raw[0] & 0xf0) == 0x80) {
        *header_len = 1;
        *pairs = raw[0] & 0x0f;
    } else if (len >= 3 && raw[0] == 0xde) {
        *header_len = 3;
        *pairs = (size_t)raw[1] << 8 | raw[2];
    } else if (len >= 5 && raw[0] == 0xdf) {
        *header_len = 5;
        *pairs = (size_t)raw[1] << 24 | (size_t)raw[2] << 16 | (size_t)raw[3] << 8 | raw[4];
    } else {
        return false;
    }
    return true;
}

int
vdp_sig_attach(const uint8_t *raw,
               size_t raw_len,
               const uint8_t *sig,
               size_t sig_len,
               uint8_t **out_p,
               size_t *out_len_p)
{
    assert(raw && sig && out_p && out_len_p);
    size_t header_len, pairs;
    if (!s_map_header(raw, raw_len, &header_len, &pairs) || pairs + 1 > VDP_MAX_MAP_KEYS ||
        sig_len > VDP_MAX_SIG)
        return VD_EINVAL;
    //  New header (shortest form for pairs + 1), the pairs as they were, then "sig": bin.
    uint8_t head[3];
    size_t head_len;
    if (pairs + 1 < 16) {
        head[0] = (uint8_t)(0x80 | (pairs + 1));
        head_len = 1;
    } else {
        head[0] = 0xde;
        head[1] = (uint8_t)((pairs + 1) >> 8);
        head[2] = (uint8_t)(pairs + 1);
        head_len = 3;
    }
    uint8_t key[4] = { 0xa3, 's', 'i', 'g' };
    uint8_t bin[3];
    size_t bin_len;
    if (sig_len < 256) {
        bin[0] = 0xc4;
        bin[1] = (uint8_t)sig_len;
        bin_len = 2;
    } else {
        bin[0] = 0xc5;
        bin[1] = (uint8_t)(sig_len >> 8);
        bin[2] = (uint8_t)sig_len;
        bin_len = 3;
    }
    size_t body_len = raw_len - header_len;
    size_t total = head_len + body_len + sizeof key + bin_len + sig_len;
    uint8_t *out = malloc(total);
    if (!out)
        return VD_ENOMEM;
    uint8_t *p = out;
    memcpy(p, head, head_len);
    p += head_len;
    memcpy(p, raw + header_len, body_len);
    p += body_len;
    memcpy(p, key, sizeof key);
    p += sizeof key;
    memcpy(p, bin, bin_len);
    p += bin_len;
    memcpy(p, sig, sig_len);
    *out_p = out;
    *out_len_p = total;
    return VD_OK;
}

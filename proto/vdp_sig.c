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
#include "vdp_mp.h"
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

/*  The canonical form is written here before it is hashed: msgpack-c writes it in pieces of a
    few bytes, and one hash update per piece cost more than the rest of a leaf. A header with
    long `to` and `refs` lists can pass the stack part; it then continues into the heap.  */
typedef struct {
    uint8_t stack[1024];
    uint8_t *data; // stack or heap
    size_t size;
    size_t capacity;
} s_canon_t;

static int
s_canon_write(void *data, const char *buf, size_t len)
{
    s_canon_t *self = data;
    if (self->size + len > self->capacity) {
        size_t capacity = (self->size + len) * 2;
        uint8_t *grown = malloc(capacity);
        if (!grown)
            return -1; // msgpack-c passes it on: vdp_envelope_pack_signed() fails
        memcpy(grown, self->data, self->size);
        if (self->data != self->stack)
            free(self->data);
        self->data = grown;
        self->capacity = capacity;
    }
    memcpy(self->data + self->size, buf, len);
    self->size += len;
    return 0;
}

int
vdp_sig_leaf(const vdp_envelope_t *env, uint8_t leaf[VDP_SIG_HASH_BYTES])
{
    assert(env && leaf);
    uint8_t body_hash[VDP_BODY_HASH_BYTES];
    crypto_generichash(body_hash, sizeof body_hash, env->body, env->body ? env->body_len : 0, NULL,
                       0);
    s_canon_t canon;
    canon.data = canon.stack;
    canon.stack[0] = S_LEAF_PREFIX;
    canon.size = 1;
    canon.capacity = sizeof canon.stack;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &canon, s_canon_write);
    int rc = vdp_envelope_pack_signed(env, &pk, body_hash);
    if (rc == VD_OK)
        crypto_generichash(leaf, VDP_SIG_HASH_BYTES, canon.data, canon.size, NULL, 0);
    if (canon.data != canon.stack)
        free(canon.data);
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

/*  The root of leaves[0..n) (RFC 9162's MTH), and, unless `sigs` is NULL, the sibling each
    leaf's RFC 9162 PATH gets at each level appended to its path. Children are done first, so
    each path is built from the leaf up, and every node is hashed once: n - 1 hashes for the
    whole tree, where computing each path on its own would hash every sibling subtree again
    for each leaf.  */
static void
s_build(const uint8_t (*leaves)[VDP_SIG_HASH_BYTES],
        size_t n,
        vdp_sig_t *sigs,
        uint8_t root[VDP_SIG_HASH_BYTES])
{
    if (n == 1) {
        memcpy(root, leaves[0], VDP_SIG_HASH_BYTES);
        return;
    }
    size_t k = s_split(n);
    s_hash_t left, right;
    s_build(leaves, k, sigs, left);
    s_build(leaves + k, n - k, sigs ? sigs + k : NULL, right);
    for (size_t i = 0; sigs && i < n; i++) {
        vdp_sig_t *sig = &sigs[i];
        assert(sig->path_len < VDP_SIG_MAX_PATH);
        memcpy(sig->path[sig->path_len++], i < k ? right : left, VDP_SIG_HASH_BYTES);
    }
    s_node(left, right, root);
}

void
vdp_sig_root(const uint8_t (*leaves)[VDP_SIG_HASH_BYTES], size_t count, uint8_t root[32])
{
    assert(count >= 1 && count <= VDP_SIG_MAX_LEAVES);
    s_build(leaves, count, NULL, root);
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
    memset(sigs, 0, count * sizeof *sigs);
    s_hash_t root;
    s_build(leaves, count, sigs, root);
    uint8_t message[S_CONTEXT_LEN + 2 + VDP_SIG_HASH_BYTES];
    size_t message_len = s_signed_message((uint16_t)count, root, message);
    uint8_t signature[VDP_SIG_ED25519];
    crypto_sign_detached(signature, NULL, message, message_len, sign_secret);
    for (size_t i = 0; i < count; i++) {
        vdp_sig_t *sig = &sigs[i];
        //  An Ed25519 secret key is the seed followed by the public key.
        vdp_sig_hint(sign_secret + 32, sig->hint);
        sig->index = (uint16_t)i;
        sig->count = (uint16_t)count;
        memcpy(sig->signature, signature, sizeof signature);
    }
    return VD_OK;
}

/*  The walk of leaf `m` in a tree of `n`, bottom-up: anc[0] is the leaf, anc[l + 1] the parent
    of anc[l], sib[l] the sibling of anc[l] (path[l] of the leaf's sig), left[l] whether that
    sibling is on the left. The same recursion as s_build(), so the same tree. Returns the
    depth: the path's length.  */
static size_t
s_walk(size_t m, size_t n, vdp_sig_node_t *anc, vdp_sig_node_t *sib, bool *left)
{
    vdp_sig_node_t down_sib[VDP_SIG_MAX_PATH];
    bool down_left[VDP_SIG_MAX_PATH];
    size_t start = 0, size = n, depth = 0;
    while (size > 1) {
        assert(depth < VDP_SIG_MAX_PATH);
        size_t k = s_split(size);
        if (m < start + k) {
            down_sib[depth] =
                (vdp_sig_node_t){ .start = (uint16_t)(start + k), .size = (uint16_t)(size - k) };
            down_left[depth] = false;
            size = k;
        } else {
            down_sib[depth] = (vdp_sig_node_t){ .start = (uint16_t)start, .size = (uint16_t)k };
            down_left[depth] = true;
            start += k;
            size -= k;
        }
        depth++;
    }
    anc[0] = (vdp_sig_node_t){ .start = (uint16_t)m, .size = 1 };
    for (size_t l = 0; l < depth; l++) {
        sib[l] = down_sib[depth - 1 - l];
        left[l] = down_left[depth - 1 - l];
        const vdp_sig_node_t *a = &anc[l], *b = &sib[l];
        anc[l + 1] = (vdp_sig_node_t){ .start = a->start < b->start ? a->start : b->start,
                                       .size = (uint16_t)(a->size + b->size) };
    }
    return depth;
}

//  The cached node covering exactly `range`'s leaves, or NULL.
static const vdp_sig_node_t *
s_cached(const vdp_sig_cache_t *cache, const vdp_sig_node_t *range)
{
    for (size_t i = 0; i < cache->node_count; i++)
        if (cache->nodes[i].start == range->start && cache->nodes[i].size == range->size)
            return &cache->nodes[i];
    return NULL;
}

/*  Climbs from anc[0] (hash set) with the leaf's path, stopping at the first node the cache
    vouches for when `cache` is not NULL. Fills every anc[l].hash up to where it stopped.
    Returns the level it stopped at (depth if it reached the root), or -1 when a node met in
    the cache, or a higher sibling, disagrees with it: then the root differs from the verified
    one and the signature cannot verify.  */
static int
s_climb(const vdp_sig_t *sig,
        vdp_sig_node_t *anc,
        const vdp_sig_node_t *sib,
        const bool *left,
        size_t depth,
        const vdp_sig_cache_t *cache)
{
    for (size_t l = 0; l <= depth; l++) {
        const vdp_sig_node_t *known = cache ? s_cached(cache, &anc[l]) : NULL;
        if (known) {
            if (sodium_memcmp(known->hash, anc[l].hash, VDP_SIG_HASH_BYTES) != 0)
                return -1;
            for (size_t j = l; j < depth; j++) {
                const vdp_sig_node_t *above = s_cached(cache, &sib[j]);
                if (!above || memcmp(above->hash, sig->path[j], VDP_SIG_HASH_BYTES) != 0)
                    return -1;
            }
            return (int)l;
        }
        if (l < depth) {
            if (left[l])
                s_node(sig->path[l], anc[l].hash, anc[l + 1].hash);
            else
                s_node(anc[l].hash, sig->path[l], anc[l + 1].hash);
        }
    }
    return (int)depth;
}

void
vdp_sig_root_of(const vdp_sig_t *sig, const uint8_t leaf[32], uint8_t root[32])
{
    assert(sig && sig->index < sig->count);
    vdp_sig_node_t anc[VDP_SIG_MAX_PATH + 1], sib[VDP_SIG_MAX_PATH];
    bool left[VDP_SIG_MAX_PATH];
    size_t depth = s_walk(sig->index, sig->count, anc, sib, left);
    assert(depth == sig->path_len); // vdp_sig_decode() checked it
    memcpy(anc[0].hash, leaf, VDP_SIG_HASH_BYTES);
    s_climb(sig, anc, sib, left, depth, NULL);
    memcpy(root, anc[depth].hash, VDP_SIG_HASH_BYTES);
}

//  Replaces the cached nodes with those of a leaf just verified (its ancestors hashed up to
//  level `known`, the cached ones above it, and its path's siblings).
static void
s_cache_nodes(vdp_sig_cache_t *cache,
              const vdp_sig_t *sig,
              vdp_sig_node_t *anc,
              vdp_sig_node_t *sib,
              size_t depth,
              size_t known)
{
    for (size_t l = known + 1; l <= depth; l++) {
        const vdp_sig_node_t *cached = s_cached(cache, &anc[l]);
        assert(cached); // s_climb() checked the whole way up from `known`
        memcpy(anc[l].hash, cached->hash, VDP_SIG_HASH_BYTES);
    }
    cache->node_count = 0;
    for (size_t l = 0; l <= depth; l++)
        cache->nodes[cache->node_count++] = anc[l];
    for (size_t l = 0; l < depth; l++) {
        memcpy(sib[l].hash, sig->path[l], VDP_SIG_HASH_BYTES);
        cache->nodes[cache->node_count++] = sib[l];
    }
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
    vdp_sig_node_t anc[VDP_SIG_MAX_PATH + 1], sib[VDP_SIG_MAX_PATH];
    bool left[VDP_SIG_MAX_PATH];
    size_t depth = s_walk(sig.index, sig.count, anc, sib, left);
    assert(depth == sig.path_len); // both are RFC 9162's, for the same (index, count)
    if (vdp_sig_leaf(env, anc[0].hash) != VD_OK)
        return VD_ENOMEM;
    bool same_tree = cache && cache->valid && cache->count == sig.count &&
                     memcmp(cache->sign_public, sign_public, VDP_KEY_BYTES) == 0 &&
                     memcmp(cache->signature, sig.signature, VDP_SIG_ED25519) == 0;
    int known = s_climb(&sig, anc, sib, left, depth, same_tree ? cache : NULL);
    if (known < 0)
        return vdp_errorf(reason, rsize, VD_ESIG, "sig: does not verify");
    if (same_tree) {
        if ((size_t)known <= depth && s_cached(cache, &anc[known])) {
            cache->hits++;
            s_cache_nodes(cache, &sig, anc, sib, depth, (size_t)known);
            return VD_OK;
        }
    }
    uint8_t message[S_CONTEXT_LEN + 2 + VDP_SIG_HASH_BYTES];
    size_t message_len = s_signed_message(sig.count, anc[depth].hash, message);
    if (cache)
        cache->checks++;
    if (crypto_sign_verify_detached(sig.signature, message, message_len, sign_public) != 0)
        return vdp_errorf(reason, rsize, VD_ESIG, "sig: does not verify");
    if (cache) {
        cache->valid = true;
        memcpy(cache->sign_public, sign_public, VDP_KEY_BYTES);
        memcpy(cache->signature, sig.signature, VDP_SIG_ED25519);
        cache->count = sig.count;
        cache->node_count = 0;
        s_cache_nodes(cache, &sig, anc, sib, depth, depth);
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

bool
vdp_sig_attachable(const uint8_t *raw, size_t raw_len)
{
    vdp_mp_t mp;
    vdp_mp_init(&mp, raw, raw_len);
    uint32_t pairs;
    if (vdp_mp_read_map(&mp, &pairs) != VD_OK || pairs + 1 > VDP_MAX_MAP_KEYS)
        return false;
    for (uint32_t i = 0; i < pairs; i++) {
        const char *key;
        uint32_t len;
        if (vdp_mp_read_str(&mp, &key, &len) != VD_OK)
            return false;
        if (len == 3 && memcmp(key, "sig", 3) == 0)
            return false;
        //  VDP_MAX_DEPTH counts from the command (command > env > refs > ref): a value in
        //  an envelope may open two levels, as the envelope decoder allows.
        if (vdp_mp_skip(&mp, VDP_MAX_DEPTH - 2) != VD_OK)
            return false;
    }
    return vdp_mp_left(&mp) == 0;
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

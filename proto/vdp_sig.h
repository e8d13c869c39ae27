/*  vdp_sig: end-to-end signatures of envelopes (PROTOCOL.md §4.6).

    A publisher signs the messages it sends together as one tree: each envelope is a leaf (the
    BLAKE2b-256 of its canonical signed form, vdp_envelope_pack_signed()), the leaves make a
    Merkle tree shaped as RFC 9162's, and one Ed25519 signature covers the root. Each envelope
    then carries in `sig` that signature, its place in the tree and the sibling hashes leading
    from its leaf to the root, so it can be checked alone, by the broker and by any recipient,
    months later. Why a tree: one Ed25519 verification costs the broker about 125 µs here,
    over ten times its whole work for a message; a tree of 64 pays it once for 64.

    The module keeps no state beyond what a caller passes in (a vdp_sig_cache_t remembers the
    last tree verified, so the next message of the same tree costs its leaf's hash and a
    lookup); any thread may call it.  */

#ifndef VDP_SIG_H_INCLUDED
#define VDP_SIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdp_envelope.h"
#include "vdp_limits.h"

#define VDP_SIG_VERSION     1u  // first byte of a `sig` value
#define VDP_SIG_HINT_BYTES  8u  // the signer's key: first bytes of its Ed25519 public key
#define VDP_SIG_HASH_BYTES  32u // BLAKE2b-256: leaves, nodes, the root
#define VDP_SIG_ED25519     64u // an Ed25519 signature
#define VDP_SIG_MAX_LEAVES  64u // envelopes under one signature
#define VDP_SIG_MAX_PATH    6u  // sibling hashes of a leaf in a tree of VDP_SIG_MAX_LEAVES
#define VDP_SIG_FIXED_BYTES (1u + VDP_SIG_HINT_BYTES + 2u + 2u + VDP_SIG_ED25519)
#define VDP_SIG_MAX_BYTES   (VDP_SIG_FIXED_BYTES + VDP_SIG_MAX_PATH * VDP_SIG_HASH_BYTES)

_Static_assert(VDP_SIG_MAX_BYTES <= VDP_MAX_SIG, "a version 1 signature fits the sig field");

//  The decoded `sig` value of one envelope.
typedef struct {
    uint8_t hint[VDP_SIG_HINT_BYTES];
    uint16_t index; // this envelope's leaf, 0-based
    uint16_t count; // leaves in the tree, 1..VDP_SIG_MAX_LEAVES
    uint8_t signature[VDP_SIG_ED25519];
    uint8_t path[VDP_SIG_MAX_PATH][VDP_SIG_HASH_BYTES]; // siblings, the leaf's first
    size_t path_len;
} vdp_sig_t;

//  One node of a verified tree: the leaves [start, start + size) it covers, and its hash.
typedef struct {
    uint16_t start;
    uint16_t size;
    uint8_t hash[VDP_SIG_HASH_BYTES];
} vdp_sig_node_t;

/*  The last tree a signature was verified for, by one verifying party: its key, signature and
    leaf count, and the nodes of the last leaf verified in it (its ancestors and their
    siblings), which the verified root vouches for. The next leaf of the same tree climbs only
    until it meets one of them, and its path's higher siblings must equal theirs: what a full
    verification would conclude, for a hash or two instead of a path and an Ed25519 check.  */
typedef struct {
    bool valid;
    uint8_t sign_public[VDP_KEY_BYTES];
    uint8_t signature[VDP_SIG_ED25519];
    uint16_t count;
    vdp_sig_node_t nodes[2 * VDP_SIG_MAX_PATH + 1];
    size_t node_count;
    uint64_t hits;   // envelopes accepted on the cached tree
    uint64_t checks; // Ed25519 verifications run
} vdp_sig_cache_t;

/*  Decodes a `sig` value. Returns VD_OK, or VD_ESIG (wrong version, count 0 or over
    VDP_SIG_MAX_LEAVES, index not below count, length not exactly what (index, count) needs),
    with `reason` (may be NULL) saying which.  */
int vdp_sig_decode(vdp_sig_t *self, const uint8_t *data, size_t size, char *reason, size_t rsize);

//  Encodes `self` into `out`; returns the length (at most VDP_SIG_MAX_BYTES).
size_t vdp_sig_encode(const vdp_sig_t *self, uint8_t out[VDP_SIG_MAX_BYTES]);

//  The number of sibling hashes a leaf `index` of a tree of `count` leaves has (index < count).
size_t vdp_sig_path_len(size_t index, size_t count);

//  The key hint of an Ed25519 public key.
void vdp_sig_hint(const uint8_t sign_public[VDP_KEY_BYTES], uint8_t hint[VDP_SIG_HINT_BYTES]);

/*  The leaf of `env`: BLAKE2b-256 of 0x00 followed by its canonical signed form (every present
    field but `sig`, body replaced by its BLAKE2b-256). The body is read, `sig` and `raw` are
    not. Returns VD_OK or VD_ENOMEM.  */
int vdp_sig_leaf(const vdp_envelope_t *env, uint8_t leaf[VDP_SIG_HASH_BYTES]);

//  The root of the tree of leaves[0..count), 1 <= count <= VDP_SIG_MAX_LEAVES.
void vdp_sig_root(const uint8_t (*leaves)[VDP_SIG_HASH_BYTES],
                  size_t count,
                  uint8_t root[VDP_SIG_HASH_BYTES]);

//  The root that `sig`'s path leads to from `leaf` (sig decoded by vdp_sig_decode()).
void vdp_sig_root_of(const vdp_sig_t *sig,
                     const uint8_t leaf[VDP_SIG_HASH_BYTES],
                     uint8_t root[VDP_SIG_HASH_BYTES]);

/*  Signs the tree of leaves[0..count) (1..VDP_SIG_MAX_LEAVES) with the 64-byte Ed25519 secret
    key: sigs[i] becomes leaf i's signature (hint, index, count, signature, path).
    Returns VD_OK or VD_EINVAL (count out of range).  */
int vdp_sig_sign(const uint8_t (*leaves)[VDP_SIG_HASH_BYTES],
                 size_t count,
                 const uint8_t sign_secret[64],
                 vdp_sig_t *sigs);

/*  Verifies `env`'s signature against the signer's Ed25519 public key: decodes env->sig,
    checks the hint, computes the leaf and the root its path leads to, and checks the Ed25519
    signature of that root; unless `cache` (may be NULL) holds the same key, signature and tree,
    when the climb stops at the first node the cache vouches for (vdp_sig_cache_t). A verified
    tree replaces the cached one. The answer is the same with or without a cache.
    Returns VD_OK; VD_ESIG (no sig, malformed, another key's hint, or the signature does not
    verify: the envelope or its path was changed, or another key signed it), with `reason`;
    VD_ENOMEM.  */
int vdp_sig_verify(const vdp_envelope_t *env,
                   const uint8_t sign_public[VDP_KEY_BYTES],
                   vdp_sig_cache_t *cache,
                   char *reason,
                   size_t rsize);

/*  True if raw[0..raw_len) is a well-formed map with no `sig` key and room for one more key:
    what vdp_sig_attach() needs. For bytes a caller did not encode itself (a relayed envelope):
    one it encoded from fields without `sig` always qualifies.  */
bool vdp_sig_attachable(const uint8_t *raw, size_t raw_len);

/*  Adds the key `sig` with the bin value sig[0..sig_len) at the end of the encoded envelope map
    raw[0..raw_len), growing the map's count. raw MUST have no `sig` key (vdp_sig_attachable()):
    only its header is read here, so that signing costs no walk through the envelope. The
    result, in a new buffer the caller frees, is a valid envelope map whose other bytes are
    raw's. Returns VD_OK, VD_EINVAL (raw does not start with a map header, or the map is full),
    VD_ENOMEM.  */
int vdp_sig_attach(const uint8_t *raw,
                   size_t raw_len,
                   const uint8_t *sig,
                   size_t sig_len,
                   uint8_t **out_p,
                   size_t *out_len_p);

#endif

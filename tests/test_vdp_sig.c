/*  vdp_sig suite: envelope signatures (PROTOCOL.md §4.6).
    - vectors: the pinned test vectors of §4.6.8, value for value (tests/vectors/sig_vectors.py
      checks the same block with an implementation of its own);
    - sign_verify: every tree size 1..64 and every leaf; a change to any header field, any body
      byte, any byte of `sig` (version, hint, index, count, signature, path), a `sig` moved to
      another envelope, another key: each is ESIG;
    - decode: each malformed `sig` named; path lengths against a tree built leaf by leaf;
    - attach: the map header grows (fixmap to map 16 at 15 pairs), the rest stays byte for byte,
      the result decodes and verifies; inputs that are not maps;
    - cache: one Ed25519 check per tree; another root, count or key is checked again; a copied
      `sig` on a different envelope still fails.  */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <msgpack.h>
#include <sodium.h>

#include "sig_envelopes.h"
#include "suites.h"
#include "vdp_envelope.h"
#include "vdp_mp.h"
#include "vdp_sig.h"
#include "vedetta.h"

//  ---------------------------------------------------------------------------------------------
//  The pinned vectors of PROTOCOL.md §4.6.8: the key from the seed 00 01 ... 1f, and e1, e2, e3
//  signed as one tree, in that order. Hex, as in the document.

#define S_PUBLIC       "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
#define S_E1_BODY_HASH "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
#define S_E1_CANONICAL                                                                             \
    "8ca17601a26964d92439623264366634652d336331612d346538622d61376435"                             \
    "2d306636653263396231613338a673656e646572ab636f6d756e653a69373236"                             \
    "a473656e74cf0000019000c79c00a5746f706963b2616c6572742e746f736361"                             \
    "6e612e69373236a46b696e64a5616c657274a6737461747573a474657374a374"                             \
    "6c70a5677265656ea863617465676f7279a56f74686572a87365766572697479"                             \
    "a56d696e6f72a56374797065aa746578742f706c61696ea4626f6479c4200e57"                             \
    "51c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
#define S_E1_LEAF      "77bd8809145745a9eba022d2f0011c476d4fcd2bdf7bf09601c0b51e2a25f5ca"
#define S_E2_BODY_HASH "2152b40fdc13866bbb291815d068de035b393f24d3209f4a865fd3d3b9d86989"
#define S_E2_CANONICAL                                                                             \
    "de0016a17601a26964d92463346538316139372d356432622d346633362d3865"                             \
    "30612d373162396433663263363435a673656e646572ab636f6d756e653a6937"                             \
    "3236a473656e74cf0000019000c79cfaa5746f706963a5696e626f78a46b696e"                             \
    "64a6757064617465a6737461747573a661637475616ca3746c70a3726564a863"                             \
    "617465676f7279aa696e74727573696f6e73a87365766572697479a673657665"                             \
    "7265a56374797065b06170706c69636174696f6e2f6a736f6ea4626f6479c420"                             \
    "2152b40fdc13866bbb291815d068de035b393f24d3209f4a865fd3d3b9d86989"                             \
    "a2746f92ac636f73633a746f7363616e61a7636e6169706963a4726566739182"                             \
    "a673656e646572ab636f6d756e653a69373236a26964d9243962326436663465"                             \
    "2d336331612d346538622d613764352d306636653263396231613338a8696e63"                             \
    "6964656e74ad494e432d323032342d30303432a57374616765ad6561726c792d"                             \
    "7761726e696e67a861776172655f6174cf00000190002f0580a7657870697265"                             \
    "73cf00000190248ae200a661636b5f6279cf0000019005edf800a7757267656e"                             \
    "6379a9696d6d656469617465a96365727461696e7479a66c696b656c79a46c61"                             \
    "6e67a26974"
#define S_E2_LEAF      "66d033cc973161406694303b024400e8b9f7792440f14fd42489321c80fe64cc"
#define S_E3_BODY_HASH "3a486e3fe3ee414853000269ac020030aeef748cb05cd62ba85939ec298ef25c"
#define S_E3_CANONICAL                                                                             \
    "8da17601a26964d92431663061336235632d376439652d346132622d39633464"                             \
    "2d366538663061316232633364a673656e646572ab636f6d756e653a69373236"                             \
    "a473656e74cf0000019000c79df4a5746f706963b37265706f72742e746f7363"                             \
    "616e612e69373236a46b696e64a5616c657274a6737461747573a86578657263"                             \
    "697365a3746c70ac616d6265722b737472696374a863617465676f7279ae6d61"                             \
    "6c6963696f75732d636f6465a87365766572697479a86d6f646572617465a563"                             \
    "74797065d9216170706c69636174696f6e2f737469782b6a736f6e3b76657273"                             \
    "696f6e3d322e31a4626f6479c4203a486e3fe3ee414853000269ac020030aeef"                             \
    "748cb05cd62ba85939ec298ef25ca46c616e67a5656e2d4742"
#define S_E3_LEAF "fdf76f83fc50179727425bb108983681e25f50bf388105e796986f9c917ffbf2"
#define S_NODE01  "66c638b82ba95267b95d7cbc05d7e79657703a8ceaea4df8f2b0dc43d7398aba"
#define S_ROOT    "97081dcb02d582117d2b6c517cec5a5e03ecd54cc99402fc2f64140b981aa730"
#define S_SIGNED                                                                                   \
    "766564657474612d747265652d31000397081dcb02d582117d2b6c517cec5a5e"                             \
    "03ecd54cc99402fc2f64140b981aa730"
#define S_SIGNATURE                                                                                \
    "9d86de052e36d66cee4315f01aec29e8dbfd1ed1420e8ef5f4ea0081238ae6c9"                             \
    "7988ced28e0970eb591f04c2f50bead9549648c7844900b505d7f4d85aa41103"
#define S_E1_SIG                                                                                   \
    "0103a107bff3ce10be000000039d86de052e36d66cee4315f01aec29e8dbfd1e"                             \
    "d1420e8ef5f4ea0081238ae6c97988ced28e0970eb591f04c2f50bead9549648"                             \
    "c7844900b505d7f4d85aa4110366d033cc973161406694303b024400e8b9f779"                             \
    "2440f14fd42489321c80fe64ccfdf76f83fc50179727425bb108983681e25f50"                             \
    "bf388105e796986f9c917ffbf2"
#define S_E2_SIG                                                                                   \
    "0103a107bff3ce10be000100039d86de052e36d66cee4315f01aec29e8dbfd1e"                             \
    "d1420e8ef5f4ea0081238ae6c97988ced28e0970eb591f04c2f50bead9549648"                             \
    "c7844900b505d7f4d85aa4110377bd8809145745a9eba022d2f0011c476d4fcd"                             \
    "2bdf7bf09601c0b51e2a25f5cafdf76f83fc50179727425bb108983681e25f50"                             \
    "bf388105e796986f9c917ffbf2"
#define S_E3_SIG                                                                                   \
    "0103a107bff3ce10be000200039d86de052e36d66cee4315f01aec29e8dbfd1e"                             \
    "d1420e8ef5f4ea0081238ae6c97988ced28e0970eb591f04c2f50bead9549648"                             \
    "c7844900b505d7f4d85aa4110366c638b82ba95267b95d7cbc05d7e79657703a"                             \
    "8ceaea4df8f2b0dc43d7398aba"
#define S_E2_WIRE                                                                                  \
    "de0017a17601a26964d92463346538316139372d356432622d346633362d3865"                             \
    "30612d373162396433663263363435a673656e646572ab636f6d756e653a6937"                             \
    "3236a473656e74cf0000019000c79cfaa5746f706963a5696e626f78a46b696e"                             \
    "64a6757064617465a6737461747573a661637475616ca3746c70a3726564a863"                             \
    "617465676f7279aa696e74727573696f6e73a87365766572697479a673657665"                             \
    "7265a56374797065b06170706c69636174696f6e2f6a736f6ea4626f6479c42e"                             \
    "7b226970223a223230332e302e3131332e37222c22706f7274223a32322c2261"                             \
    "7474656d707473223a313834337da2746f92ac636f73633a746f7363616e61a7"                             \
    "636e6169706963a4726566739182a673656e646572ab636f6d756e653a693732"                             \
    "36a26964d92439623264366634652d336331612d346538622d613764352d3066"                             \
    "36653263396231613338a8696e636964656e74ad494e432d323032342d303034"                             \
    "32a57374616765ad6561726c792d7761726e696e67a861776172655f6174cf00"                             \
    "000190002f0580a765787069726573cf00000190248ae200a661636b5f6279cf"                             \
    "0000019005edf800a7757267656e6379a9696d6d656469617465a96365727461"                             \
    "696e7479a66c696b656c79a46c616e67a26974a3736967c48d0103a107bff3ce"                             \
    "10be000100039d86de052e36d66cee4315f01aec29e8dbfd1ed1420e8ef5f4ea"                             \
    "0081238ae6c97988ced28e0970eb591f04c2f50bead9549648c7844900b505d7"                             \
    "f4d85aa4110377bd8809145745a9eba022d2f0011c476d4fcd2bdf7bf09601c0"                             \
    "b51e2a25f5cafdf76f83fc50179727425bb108983681e25f50bf388105e79698"                             \
    "6f9c917ffbf2"

//  Decodes `hex` into out[size], failing the test unless it is exactly `size` bytes.
static void
s_unhex(const char *hex, uint8_t *out, size_t size)
{
    size_t len = 0;
    ck_assert_int_eq(sodium_hex2bin(out, size, hex, strlen(hex), NULL, &len, NULL), 0);
    ck_assert_uint_eq(len, size);
}

//  The length in bytes of a hex string.
static size_t
s_hex_len(const char *hex)
{
    return strlen(hex) / 2;
}

//  The vector key (seed 00..1f) or another one (seed 20..3f).
static void
s_keypair(int which, uint8_t pk[VDP_KEY_BYTES], uint8_t sk[64])
{
    uint8_t seed[32];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)(i + 32 * which);
    ck_assert_int_eq(crypto_sign_seed_keypair(pk, sk, seed), 0);
}

//  Every optional field: arrays, and maps inside an array; 22 fields, so a map 16.

//  A ctype of 33 bytes (str 8) and a body of 300 bytes, byte i being i mod 256.

static const struct {
    void (*fill)(vdp_envelope_t *e);
    const char *body_hash;
    const char *canonical;
    const char *leaf;
    const char *sig;
} s_vectors[] = {
    { vdt_sig_e1, S_E1_BODY_HASH, S_E1_CANONICAL, S_E1_LEAF, S_E1_SIG },
    { vdt_sig_e2, S_E2_BODY_HASH, S_E2_CANONICAL, S_E2_LEAF, S_E2_SIG },
    { vdt_sig_e3, S_E3_BODY_HASH, S_E3_CANONICAL, S_E3_LEAF, S_E3_SIG },
};
#define S_VECTORS (sizeof s_vectors / sizeof s_vectors[0])

//  ---------------------------------------------------------------------------------------------
//  Building, signing and checking envelopes

typedef struct {
    uint8_t data[4096];
    size_t size;
} buf_t;

static int
buf_write(void *data, const char *bytes, size_t len)
{
    buf_t *self = data;
    ck_assert_uint_le(self->size + len, sizeof self->data);
    memcpy(self->data + self->size, bytes, len);
    self->size += len;
    return 0;
}

//  A valid envelope of its own for leaf i of a generated tree: distinct id and body.
static void
s_fill_nth(vdp_envelope_t *e, size_t i)
{
    static uint8_t bodies[VDP_SIG_MAX_LEAVES][8];
    vdt_sig_e1(e);
    snprintf(e->id, sizeof e->id, "00000000-0000-4000-8000-%012zx", i);
    snprintf((char *)bodies[i % VDP_SIG_MAX_LEAVES], sizeof bodies[0], "msg %zu", i);
    e->body = bodies[i % VDP_SIG_MAX_LEAVES];
    e->body_len = strlen((const char *)e->body);
}

//  Signs envs[0..n) as one tree with `sk` and stores each one's `sig`.
static void
s_sign(vdp_envelope_t *envs, size_t n, const uint8_t sk[64])
{
    uint8_t leaves[VDP_SIG_MAX_LEAVES][VDP_SIG_HASH_BYTES];
    vdp_sig_t sigs[VDP_SIG_MAX_LEAVES];
    ck_assert_uint_le(n, VDP_SIG_MAX_LEAVES);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(vdp_sig_leaf(&envs[i], leaves[i]), VD_OK);
    ck_assert_int_eq(vdp_sig_sign((const uint8_t(*)[VDP_SIG_HASH_BYTES])leaves, n, sk, sigs),
                     VD_OK);
    for (size_t i = 0; i < n; i++)
        envs[i].sig_len = vdp_sig_encode(&sigs[i], envs[i].sig);
}

//  The three vector envelopes, signed with the vector key.
static void
s_vector_tree(vdp_envelope_t envs[S_VECTORS], uint8_t pk[VDP_KEY_BYTES])
{
    uint8_t sk[64];
    s_keypair(0, pk, sk);
    for (size_t i = 0; i < S_VECTORS; i++)
        s_vectors[i].fill(&envs[i]);
    s_sign(envs, S_VECTORS, sk);
}

//  Verifies and checks that a failure says why.
static int
s_verify(const vdp_envelope_t *env, const uint8_t pk[VDP_KEY_BYTES], vdp_sig_cache_t *cache)
{
    char reason[256] = "";
    int rc = vdp_sig_verify(env, pk, cache, reason, sizeof reason);
    if (rc != VD_OK)
        ck_assert_msg(strncmp(reason, "sig: ", 5) == 0, "reason '%s'", reason);
    return rc;
}

static void
s_assert_hex_eq(const uint8_t *got, size_t len, const char *hex)
{
    char text[2 * 1024 + 1];
    ck_assert_uint_lt(2 * len, sizeof text);
    sodium_bin2hex(text, sizeof text, got, len);
    ck_assert_str_eq(text, hex);
}

//  ---------------------------------------------------------------------------------------------
//  Vectors

START_TEST(vector_key_and_hint)
{
    uint8_t pk[VDP_KEY_BYTES], sk[64], hint[VDP_SIG_HINT_BYTES];
    s_keypair(0, pk, sk);
    s_assert_hex_eq(pk, sizeof pk, S_PUBLIC);
    vdp_sig_hint(pk, hint);
    s_assert_hex_eq(hint, sizeof hint, "03a107bff3ce10be");
}
END_TEST

START_TEST(vector_body_hash_canonical_form_and_leaf)
{
    vdp_envelope_t env;
    s_vectors[_i].fill(&env);
    char reason[256];
    ck_assert_msg(vdp_envelope_validate(&env, reason, sizeof reason) == VD_OK, "%s", reason);
    uint8_t hash[VDP_BODY_HASH_BYTES];
    crypto_generichash(hash, sizeof hash, env.body, env.body_len, NULL, 0);
    s_assert_hex_eq(hash, sizeof hash, s_vectors[_i].body_hash);

    buf_t form = { .size = 0 };
    msgpack_packer pk;
    msgpack_packer_init(&pk, &form, buf_write);
    ck_assert_int_eq(vdp_envelope_pack_signed(&env, &pk, hash), VD_OK);
    s_assert_hex_eq(form.data, form.size, s_vectors[_i].canonical);

    //  A sig already present changes nothing: the form leaves it out
    env.sig_len = 77;
    uint8_t leaf[VDP_SIG_HASH_BYTES];
    ck_assert_int_eq(vdp_sig_leaf(&env, leaf), VD_OK);
    s_assert_hex_eq(leaf, sizeof leaf, s_vectors[_i].leaf);
}
END_TEST

START_TEST(vector_tree_signature_and_sigs)
{
    uint8_t pk[VDP_KEY_BYTES], sk[64];
    s_keypair(0, pk, sk);
    uint8_t leaves[S_VECTORS][VDP_SIG_HASH_BYTES];
    vdp_envelope_t envs[S_VECTORS];
    for (size_t i = 0; i < S_VECTORS; i++) {
        s_vectors[i].fill(&envs[i]);
        ck_assert_int_eq(vdp_sig_leaf(&envs[i], leaves[i]), VD_OK);
    }
    uint8_t node01[VDP_SIG_HASH_BYTES], root[VDP_SIG_HASH_BYTES];
    vdp_sig_root((const uint8_t(*)[VDP_SIG_HASH_BYTES])leaves, 2, node01);
    s_assert_hex_eq(node01, sizeof node01, S_NODE01);
    vdp_sig_root((const uint8_t(*)[VDP_SIG_HASH_BYTES])leaves, S_VECTORS, root);
    s_assert_hex_eq(root, sizeof root, S_ROOT);

    //  The signed message, built here from the specification's words
    uint8_t message[48];
    memcpy(message, "vedetta-tree-1", 14);
    message[14] = 0;
    message[15] = S_VECTORS;
    memcpy(message + 16, root, sizeof root);
    s_assert_hex_eq(message, sizeof message, S_SIGNED);

    vdp_sig_t sigs[S_VECTORS];
    ck_assert_int_eq(
        vdp_sig_sign((const uint8_t(*)[VDP_SIG_HASH_BYTES])leaves, S_VECTORS, sk, sigs), VD_OK);
    s_assert_hex_eq(sigs[0].signature, VDP_SIG_ED25519, S_SIGNATURE);
    ck_assert_int_eq(crypto_sign_verify_detached(sigs[0].signature, message, sizeof message, pk),
                     0);
    for (size_t i = 0; i < S_VECTORS; i++) {
        uint8_t out[VDP_SIG_MAX_BYTES];
        size_t len = vdp_sig_encode(&sigs[i], out);
        s_assert_hex_eq(out, len, s_vectors[i].sig);
        memcpy(envs[i].sig, out, len);
        envs[i].sig_len = len;
        ck_assert_int_eq(s_verify(&envs[i], pk, NULL), VD_OK);
    }
}
END_TEST

START_TEST(vector_e2_as_sent)
{
    uint8_t pk[VDP_KEY_BYTES];
    vdp_envelope_t envs[S_VECTORS];
    s_vector_tree(envs, pk);
    vdp_envelope_t unsigned_e2 = envs[1];
    unsigned_e2.sig_len = 0;
    uint8_t *raw, *wire;
    size_t raw_len, wire_len;
    ck_assert_int_eq(vdp_envelope_encode(&unsigned_e2, &raw, &raw_len), VD_OK);
    ck_assert_int_eq(vdp_sig_attach(raw, raw_len, envs[1].sig, envs[1].sig_len, &wire, &wire_len),
                     VD_OK);
    s_assert_hex_eq(wire, wire_len, S_E2_WIRE);

    vdp_envelope_t decoded = { 0 };
    char reason[256];
    ck_assert_int_eq(vdp_envelope_decode(&decoded, wire, wire_len, reason, sizeof reason), VD_OK);
    ck_assert(vdp_envelope_same(&decoded, &envs[1]));
    ck_assert_int_eq(s_verify(&decoded, pk, NULL), VD_OK);
    vdp_envelope_reset(&decoded);
    free(wire);
    free(raw);
}
END_TEST

//  ---------------------------------------------------------------------------------------------
//  Signing and verifying

//  _i is the tree size, 1..VDP_SIG_MAX_LEAVES
START_TEST(every_tree_size_and_every_leaf_verifies)
{
    uint8_t pk[VDP_KEY_BYTES], sk[64];
    s_keypair(0, pk, sk);
    size_t n = (size_t)_i;
    vdp_envelope_t envs[VDP_SIG_MAX_LEAVES];
    uint8_t leaves[VDP_SIG_MAX_LEAVES][VDP_SIG_HASH_BYTES], root[VDP_SIG_HASH_BYTES];
    for (size_t i = 0; i < n; i++) {
        s_fill_nth(&envs[i], i);
        ck_assert_int_eq(vdp_sig_leaf(&envs[i], leaves[i]), VD_OK);
    }
    vdp_sig_root((const uint8_t(*)[VDP_SIG_HASH_BYTES])leaves, n, root);
    s_sign(envs, n, sk);
    for (size_t i = 0; i < n; i++) {
        size_t path_len = vdp_sig_path_len(i, n);
        ck_assert_uint_le(path_len, VDP_SIG_MAX_PATH);
        ck_assert_uint_eq(envs[i].sig_len, VDP_SIG_FIXED_BYTES + path_len * VDP_SIG_HASH_BYTES);
        vdp_sig_t sig;
        ck_assert_int_eq(vdp_sig_decode(&sig, envs[i].sig, envs[i].sig_len, NULL, 0), VD_OK);
        ck_assert_uint_eq(sig.index, i);
        ck_assert_uint_eq(sig.count, n);
        uint8_t climbed[VDP_SIG_HASH_BYTES];
        vdp_sig_root_of(&sig, leaves[i], climbed);
        ck_assert_mem_eq(climbed, root, sizeof root);
        ck_assert_int_eq(s_verify(&envs[i], pk, NULL), VD_OK);
    }
}
END_TEST

START_TEST(sign_refuses_a_tree_of_0_or_65)
{
    uint8_t pk[VDP_KEY_BYTES], sk[64];
    s_keypair(0, pk, sk);
    uint8_t leaves[VDP_SIG_MAX_LEAVES + 1][VDP_SIG_HASH_BYTES] = { { 0 } };
    vdp_sig_t sigs[VDP_SIG_MAX_LEAVES + 1];
    const uint8_t(*l)[VDP_SIG_HASH_BYTES] = (const uint8_t(*)[VDP_SIG_HASH_BYTES])leaves;
    ck_assert_int_eq(vdp_sig_sign(l, 0, sk, sigs), VD_EINVAL);
    ck_assert_int_eq(vdp_sig_sign(l, VDP_SIG_MAX_LEAVES + 1, sk, sigs), VD_EINVAL);
}
END_TEST

//  One change to a signed envelope's fields per case; each must break the signature.
static const char *const s_changes[] = {
    "v",
    "id",
    "sender",
    "sent",
    "topic",
    "kind",
    "status",
    "tlp",
    "category",
    "severity",
    "ctype",
    "to entry",
    "to dropped",
    "to added",
    "to order",
    "to empty",
    "ref sender",
    "ref id",
    "ref dropped",
    "ref added",
    "incident",
    "incident removed",
    "stage",
    "stage removed",
    "aware_at",
    "expires",
    "expires removed",
    "ack_by",
    "urgency",
    "certainty",
    "lang",
    "lang removed",
    "body emptied",
    "body longer",
    "body shorter",
};
#define S_CHANGES (sizeof s_changes / sizeof s_changes[0])

static uint8_t s_longer_body[sizeof VDT_SIG_E2_BODY];

static void
s_change(vdp_envelope_t *e, size_t which)
{
    switch (which) {
    case 0:
        e->v = 2;
        break;
    case 1:
        e->id[35] = '6';
        break;
    case 2:
        strcpy(e->sender, "comune:b429");
        break;
    case 3:
        e->sent++;
        break;
    case 4:
        strcpy(e->topic, "alert.toscana.i726");
        break;
    case 5:
        e->kind = VDP_KIND_CANCEL;
        break;
    case 6:
        e->status = VDP_STATUS_TEST;
        break;
    case 7:
        e->tlp = VDP_TLP_AMBER_STRICT;
        break;
    case 8:
        strcpy(e->category, "fraud");
        break;
    case 9:
        e->severity = VDP_SEVERITY_EXTREME;
        break;
    case 10:
        strcpy(e->ctype, "text/plain");
        break;
    case 11:
        strcpy(e->to[1], "cosc:umbria");
        break;
    case 12:
        e->to_count = 1;
        break;
    case 13:
        strcpy(e->to[e->to_count++], "anci:toscana");
        break;
    case 14:
        strcpy(e->to[0], "cnaipic");
        strcpy(e->to[1], "cosc:toscana");
        break;
    case 15:
        e->to_count = 0;
        break;
    case 16:
        strcpy(e->refs[0].sender, "cosc:toscana");
        break;
    case 17:
        e->refs[0].id[0] = 'a';
        break;
    case 18:
        e->refs_count = 0;
        break;
    case 19:
        e->refs[e->refs_count++] = e->refs[0];
        break;
    case 20:
        strcpy(e->incident, "INC-2024-0043");
        break;
    case 21:
        e->incident[0] = '\0';
        break;
    case 22:
        e->stage = VDP_STAGE_FINAL;
        break;
    case 23:
        e->stage = VDP_STAGE_NONE;
        break;
    case 24:
        e->aware_at--;
        break;
    case 25:
        e->expires += 1000;
        break;
    case 26:
        e->expires = 0;
        break;
    case 27:
        e->ack_by = 1;
        break;
    case 28:
        e->urgency = VDP_URGENCY_EXPECTED;
        break;
    case 29:
        e->certainty = VDP_CERTAINTY_OBSERVED;
        break;
    case 30:
        strcpy(e->lang, "it-IT");
        break;
    case 31:
        e->lang[0] = '\0';
        break;
    case 32:
        e->body_len = 0;
        break;
    case 33:
        memcpy(s_longer_body, e->body, e->body_len);
        s_longer_body[e->body_len] = ' ';
        e->body = s_longer_body;
        e->body_len++;
        break;
    case 34:
        e->body_len--;
        break;
    default:
        ck_abort_msg("no change %zu", which);
    }
}

START_TEST(any_changed_header_field_fails)
{
    uint8_t pk[VDP_KEY_BYTES];
    vdp_envelope_t envs[S_VECTORS];
    s_vector_tree(envs, pk);
    ck_assert_int_eq(s_verify(&envs[1], pk, NULL), VD_OK);
    vdp_envelope_t changed = envs[1];
    s_change(&changed, (size_t)_i);
    ck_assert_msg(s_verify(&changed, pk, NULL) == VD_ESIG, "change '%s' still verifies",
                  s_changes[_i]);
}
END_TEST

START_TEST(an_added_optional_field_fails)
{
    uint8_t pk[VDP_KEY_BYTES];
    vdp_envelope_t envs[S_VECTORS];
    s_vector_tree(envs, pk);
    for (int field = 0; field < 6; field++) {
        vdp_envelope_t e = envs[0]; // e1 has no optional field
        switch (field) {
        case 0:
            strcpy(e.lang, "it");
            break;
        case 1:
            strcpy(e.incident, "INC-1");
            break;
        case 2:
            e.expires = 1718600000000;
            break;
        case 3:
            e.urgency = VDP_URGENCY_PAST;
            break;
        case 4:
            strcpy(e.to[e.to_count++], "cnaipic");
            break;
        default:
            strcpy(e.refs[0].sender, "comune:i726");
            strcpy(e.refs[0].id, VDT_SIG_E1_ID);
            e.refs_count = 1;
        }
        ck_assert_msg(s_verify(&e, pk, NULL) == VD_ESIG, "field %d added: still verifies", field);
    }
}
END_TEST

START_TEST(every_body_byte_matters)
{
    uint8_t pk[VDP_KEY_BYTES];
    vdp_envelope_t envs[S_VECTORS];
    s_vector_tree(envs, pk);
    uint8_t body[VDT_SIG_E3_BODY_LEN];
    vdp_envelope_t e = envs[2];
    e.body = body;
    for (size_t i = 0; i < sizeof body; i++) {
        memcpy(body, vdt_sig_e3_body, sizeof body);
        body[i] ^= 0x80;
        ck_assert_msg(s_verify(&e, pk, NULL) == VD_ESIG, "body byte %zu changed: verifies", i);
    }
    memcpy(body, vdt_sig_e3_body, sizeof body);
    ck_assert_int_eq(s_verify(&e, pk, NULL), VD_OK);
}
END_TEST

//  Version, hint, index, count, signature, path: one flipped bit anywhere in `sig` is ESIG.
START_TEST(every_sig_bit_matters)
{
    uint8_t pk[VDP_KEY_BYTES];
    vdp_envelope_t envs[S_VECTORS];
    s_vector_tree(envs, pk);
    vdp_envelope_t e = envs[_i];
    for (size_t byte = 0; byte < e.sig_len; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            e.sig[byte] ^= (uint8_t)(1u << bit);
            ck_assert_msg(s_verify(&e, pk, NULL) == VD_ESIG, "e%d: sig byte %zu bit %d: verifies",
                          _i + 1, byte, bit);
            e.sig[byte] ^= (uint8_t)(1u << bit);
        }
    }
    ck_assert_int_eq(s_verify(&e, pk, NULL), VD_OK);
}
END_TEST

/*  Any other (index, count), with the path cut or padded to the length that pair needs so that
    it gets past decoding to the hashes and the signature: ESIG every time.  */
START_TEST(any_other_index_or_count_fails)
{
    uint8_t pk[VDP_KEY_BYTES];
    vdp_envelope_t envs[S_VECTORS];
    s_vector_tree(envs, pk);
    const vdp_envelope_t *good = &envs[_i];
    for (unsigned count = 0; count <= VDP_SIG_MAX_LEAVES + 1; count++) {
        for (unsigned index = 0; index <= count + 1; index++) {
            if (index == (unsigned)_i && count == S_VECTORS)
                continue;
            vdp_envelope_t e = *good;
            e.sig[9] = (uint8_t)(index >> 8);
            e.sig[10] = (uint8_t)index;
            e.sig[11] = (uint8_t)(count >> 8);
            e.sig[12] = (uint8_t)count;
            ck_assert_int_eq(s_verify(&e, pk, NULL), VD_ESIG);
            if (index >= count || count > VDP_SIG_MAX_LEAVES)
                continue;
            size_t need = VDP_SIG_FIXED_BYTES + vdp_sig_path_len(index, count) * VDP_SIG_HASH_BYTES;
            if (need > e.sig_len)
                memset(e.sig + e.sig_len, 0x5a, need - e.sig_len);
            e.sig_len = need;
            ck_assert_msg(s_verify(&e, pk, NULL) == VD_ESIG, "e%d as leaf %u of %u verifies",
                          _i + 1, index, count);
        }
    }
}
END_TEST

START_TEST(a_sig_on_another_envelope_fails)
{
    uint8_t pk[VDP_KEY_BYTES];
    vdp_envelope_t envs[S_VECTORS];
    s_vector_tree(envs, pk);
    for (size_t from = 0; from < S_VECTORS; from++) {
        for (size_t to = 0; to < S_VECTORS; to++) {
            vdp_envelope_t e = envs[to];
            memcpy(e.sig, envs[from].sig, envs[from].sig_len);
            e.sig_len = envs[from].sig_len;
            ck_assert_int_eq(s_verify(&e, pk, NULL), from == to ? VD_OK : VD_ESIG);
        }
    }
}
END_TEST

START_TEST(another_key_fails)
{
    uint8_t pk[VDP_KEY_BYTES], other_pk[VDP_KEY_BYTES], other_sk[64];
    vdp_envelope_t envs[S_VECTORS];
    s_vector_tree(envs, pk);
    s_keypair(1, other_pk, other_sk);
    char reason[256];
    ck_assert_int_eq(vdp_sig_verify(&envs[0], other_pk, NULL, reason, sizeof reason), VD_ESIG);
    ck_assert_str_eq(reason, "sig: made with another key");

    //  A key that shares the hint is still another key
    uint8_t near_pk[VDP_KEY_BYTES];
    memcpy(near_pk, pk, sizeof near_pk);
    near_pk[VDP_KEY_BYTES - 1] ^= 1;
    ck_assert_int_eq(vdp_sig_verify(&envs[0], near_pk, NULL, reason, sizeof reason), VD_ESIG);

    //  Signed by the other key, labelled with this key's hint
    vdp_envelope_t forged[S_VECTORS];
    for (size_t i = 0; i < S_VECTORS; i++)
        s_vectors[i].fill(&forged[i]);
    s_sign(forged, S_VECTORS, other_sk);
    ck_assert_int_eq(s_verify(&forged[0], other_pk, NULL), VD_OK);
    memcpy(forged[0].sig + 1, pk, VDP_SIG_HINT_BYTES);
    ck_assert_int_eq(vdp_sig_verify(&forged[0], pk, NULL, reason, sizeof reason), VD_ESIG);
    ck_assert_str_eq(reason, "sig: does not verify");
}
END_TEST

START_TEST(a_missing_sig_fails)
{
    uint8_t pk[VDP_KEY_BYTES];
    vdp_envelope_t envs[S_VECTORS];
    s_vector_tree(envs, pk);
    envs[0].sig_len = 0;
    char reason[256];
    ck_assert_int_eq(vdp_sig_verify(&envs[0], pk, NULL, reason, sizeof reason), VD_ESIG);
    ck_assert_str_eq(reason, "sig: missing");
}
END_TEST

//  ---------------------------------------------------------------------------------------------
//  Decoding

//  Changes to e1's valid sig (leaf 0 of 3, 141 bytes); -1 keeps the byte or the field.
static const struct {
    int version;
    long index;
    long count;
    long len_delta;
    const char *reason;
} s_bad_sigs[] = {
    { 0, -1, -1, 0, "sig: version 0 unknown" },
    { 2, -1, -1, 0, "sig: version 2 unknown" },
    { 0xff, -1, -1, 0, "sig: version 255 unknown" },
    { -1, -1, -1, -141, "sig: missing" },
    { -1, -1, -1, -140, "sig: 1 bytes, too short" },
    { -1, -1, -1, -65, "sig: 76 bytes, too short" },
    { -1, -1, 0, 0, "sig: tree of 0 leaves (1..64)" },
    { -1, -1, 65, 0, "sig: tree of 65 leaves (1..64)" },
    { -1, -1, 0xffff, 0, "sig: tree of 65535 leaves (1..64)" },
    { -1, 3, -1, 0, "sig: leaf 3 of a tree of 3" },
    { -1, 4, -1, 0, "sig: leaf 4 of a tree of 3" },
    { -1, 0xffff, -1, 0, "sig: leaf 65535 of a tree of 3" },
    { -1, 2, -1, 0, "sig: 141 bytes, leaf 2 of 3 needs 109" },
    { -1, -1, 1, 0, "sig: 141 bytes, leaf 0 of 1 needs 77" },
    { -1, -1, -1, -1, "sig: 140 bytes, leaf 0 of 3 needs 141" },
    { -1, -1, -1, 1, "sig: 142 bytes, leaf 0 of 3 needs 141" },
    { -1, -1, -1, -32, "sig: 109 bytes, leaf 0 of 3 needs 141" },
    { -1, -1, -1, 32, "sig: 173 bytes, leaf 0 of 3 needs 141" },
};

START_TEST(decode_names_each_malformed_sig)
{
    uint8_t sig[VDP_SIG_MAX_BYTES];
    s_unhex(S_E1_SIG, sig, s_hex_len(S_E1_SIG));
    size_t len = (size_t)((long)s_hex_len(S_E1_SIG) + s_bad_sigs[_i].len_delta);
    if (s_bad_sigs[_i].len_delta > 0)
        memset(sig + s_hex_len(S_E1_SIG), 0, (size_t)s_bad_sigs[_i].len_delta);
    if (s_bad_sigs[_i].version >= 0)
        sig[0] = (uint8_t)s_bad_sigs[_i].version;
    if (s_bad_sigs[_i].index >= 0) {
        sig[9] = (uint8_t)(s_bad_sigs[_i].index >> 8);
        sig[10] = (uint8_t)s_bad_sigs[_i].index;
    }
    if (s_bad_sigs[_i].count >= 0) {
        sig[11] = (uint8_t)(s_bad_sigs[_i].count >> 8);
        sig[12] = (uint8_t)s_bad_sigs[_i].count;
    }
    //  An exact-size copy, so that ASan catches a read past the end
    uint8_t *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, sig, len);
    vdp_sig_t decoded;
    char reason[256] = "";
    ck_assert_int_eq(vdp_sig_decode(&decoded, copy, len, reason, sizeof reason), VD_ESIG);
    ck_assert_str_eq(reason, s_bad_sigs[_i].reason);
    free(copy);
}
END_TEST

START_TEST(decode_then_encode_gives_the_same_bytes)
{
    uint8_t sig[VDP_SIG_MAX_BYTES], again[VDP_SIG_MAX_BYTES];
    size_t len = s_hex_len(s_vectors[_i].sig);
    s_unhex(s_vectors[_i].sig, sig, len);
    vdp_sig_t decoded;
    ck_assert_int_eq(vdp_sig_decode(&decoded, sig, len, NULL, 0), VD_OK);
    ck_assert_uint_eq(decoded.index, _i);
    ck_assert_uint_eq(decoded.count, S_VECTORS);
    ck_assert_uint_eq(decoded.path_len, _i == 2 ? 1 : 2);
    ck_assert_mem_eq(decoded.hint, sig + 1, VDP_SIG_HINT_BYTES);
    ck_assert_uint_eq(vdp_sig_encode(&decoded, again), len);
    ck_assert_mem_eq(again, sig, len);
}
END_TEST

/*  Path lengths against a tree built bottom-up, the other way RFC 9162 §2.1.1's tree can be
    built: pair the nodes of each level left to right, an odd last node going up unpaired. A
    leaf's path has one hash per level at which its node was paired.  */
START_TEST(path_len_matches_a_tree_built_bottom_up)
{
    for (size_t n = 1; n <= VDP_SIG_MAX_LEAVES; n++) {
        size_t depth[VDP_SIG_MAX_LEAVES] = { 0 };
        size_t first[VDP_SIG_MAX_LEAVES], end[VDP_SIG_MAX_LEAVES]; // leaves under each node
        size_t nodes = n;
        for (size_t i = 0; i < n; i++) {
            first[i] = i;
            end[i] = i + 1;
        }
        while (nodes > 1) {
            size_t up = 0;
            for (size_t i = 0; i < nodes; i += 2, up++) {
                if (i + 1 == nodes) { // unpaired: goes up as it is
                    first[up] = first[i];
                    end[up] = end[i];
                    continue;
                }
                for (size_t leaf = first[i]; leaf < end[i + 1]; leaf++)
                    depth[leaf]++;
                first[up] = first[i];
                end[up] = end[i + 1];
            }
            nodes = up;
        }
        size_t longest = 0;
        for (size_t m = 0; m < n; m++) {
            ck_assert_msg(vdp_sig_path_len(m, n) == depth[m], "leaf %zu of %zu: %zu, not %zu", m, n,
                          vdp_sig_path_len(m, n), depth[m]);
            longest = depth[m] > longest ? depth[m] : longest;
        }
        //  ceil(log2 n): the tree is as shallow as a binary tree of n leaves can be
        size_t log2 = 0;
        while (((size_t)1 << log2) < n)
            log2++;
        ck_assert_uint_eq(longest, log2);
        ck_assert_uint_le(longest, VDP_SIG_MAX_PATH);
    }
}
END_TEST

//  The root against the same bottom-up construction, hashing as the specification says.
START_TEST(root_matches_a_tree_built_bottom_up)
{
    uint8_t leaves[VDP_SIG_MAX_LEAVES][VDP_SIG_HASH_BYTES];
    randombytes_buf(leaves, sizeof leaves);
    for (size_t n = 1; n <= VDP_SIG_MAX_LEAVES; n++) {
        uint8_t level[VDP_SIG_MAX_LEAVES][VDP_SIG_HASH_BYTES];
        memcpy(level, leaves, n * VDP_SIG_HASH_BYTES);
        size_t nodes = n;
        while (nodes > 1) {
            size_t up = 0;
            for (size_t i = 0; i < nodes; i += 2, up++) {
                if (i + 1 == nodes) {
                    memmove(level[up], level[i], VDP_SIG_HASH_BYTES);
                    continue;
                }
                uint8_t in[1 + 2 * VDP_SIG_HASH_BYTES];
                in[0] = 0x01;
                memcpy(in + 1, level[i], VDP_SIG_HASH_BYTES);
                memcpy(in + 1 + VDP_SIG_HASH_BYTES, level[i + 1], VDP_SIG_HASH_BYTES);
                crypto_generichash(level[up], VDP_SIG_HASH_BYTES, in, sizeof in, NULL, 0);
            }
            nodes = up;
        }
        uint8_t root[VDP_SIG_HASH_BYTES];
        vdp_sig_root((const uint8_t(*)[VDP_SIG_HASH_BYTES])leaves, n, root);
        ck_assert_msg(memcmp(root, level[0], sizeof root) == 0, "tree of %zu", n);
    }
}
END_TEST

//  ---------------------------------------------------------------------------------------------
//  Attaching

//  Encodes `env` without its sig, attaches the sig, and checks the result: header, the bytes in
//  between unchanged, "sig" last, decodes to the same envelope, verifies.
static void
s_attach_and_check(const vdp_envelope_t *env,
                   const uint8_t pk[VDP_KEY_BYTES],
                   const uint8_t *head,
                   size_t head_len)
{
    vdp_envelope_t bare = *env;
    bare.sig_len = 0;
    uint8_t *raw, *out;
    size_t raw_len, out_len;
    ck_assert_int_eq(vdp_envelope_encode(&bare, &raw, &raw_len), VD_OK);
    ck_assert_int_eq(vdp_sig_attach(raw, raw_len, env->sig, env->sig_len, &out, &out_len), VD_OK);
    ck_assert_mem_eq(out, head, head_len);
    size_t old_head = (raw[0] & 0xf0) == 0x80 ? 1 : raw[0] == 0xde ? 3 : 5;
    size_t pairs_len = raw_len - old_head;
    ck_assert_mem_eq(out + head_len, raw + old_head, pairs_len);
    const uint8_t *tail = out + head_len + pairs_len;
    ck_assert_mem_eq(tail, "\xa3sig", 4);
    size_t bin_len = env->sig_len < 256 ? 2 : 3;
    ck_assert_uint_eq(tail[4], env->sig_len < 256 ? 0xc4 : 0xc5);
    ck_assert_uint_eq(out_len, head_len + pairs_len + 4 + bin_len + env->sig_len);

    vdp_envelope_t decoded = { 0 };
    char reason[256];
    ck_assert_msg(vdp_envelope_decode(&decoded, out, out_len, reason, sizeof reason) == VD_OK, "%s",
                  reason);
    ck_assert(vdp_envelope_same(&decoded, env));
    ck_assert_int_eq(s_verify(&decoded, pk, NULL), VD_OK);
    vdp_envelope_reset(&decoded);
    free(out);
    free(raw);
}

START_TEST(attach_grows_a_fixmap_of_15_into_a_map16)
{
    uint8_t pk[VDP_KEY_BYTES], sk[64];
    s_keypair(0, pk, sk);
    vdp_envelope_t env;
    vdt_sig_e1(&env); // 12 fields
    strcpy(env.incident, "INC-7");
    env.urgency = VDP_URGENCY_FUTURE;
    strcpy(env.lang, "it");
    s_sign(&env, 1, sk);
    uint8_t *raw;
    size_t raw_len;
    vdp_envelope_t bare = env;
    bare.sig_len = 0;
    ck_assert_int_eq(vdp_envelope_encode(&bare, &raw, &raw_len), VD_OK);
    ck_assert_uint_eq(raw[0], 0x8f); // the precondition: a fixmap of 15
    free(raw);
    s_attach_and_check(&env, pk, (const uint8_t *)"\xde\x00\x10", 3);
}
END_TEST

START_TEST(attach_counts_one_more_pair)
{
    uint8_t pk[VDP_KEY_BYTES];
    vdp_envelope_t envs[S_VECTORS];
    s_vector_tree(envs, pk);
    s_attach_and_check(&envs[0], pk, (const uint8_t *)"\x8d", 1);         // 12 + 1
    s_attach_and_check(&envs[1], pk, (const uint8_t *)"\xde\x00\x17", 3); // 22 + 1
    s_attach_and_check(&envs[2], pk, (const uint8_t *)"\x8e", 1);         // 13 + 1
}
END_TEST

//  A tree of 64: the longest paths, 269 bytes, a bin 16.
START_TEST(attach_writes_a_long_sig_as_bin16)
{
    uint8_t pk[VDP_KEY_BYTES], sk[64];
    s_keypair(0, pk, sk);
    vdp_envelope_t envs[VDP_SIG_MAX_LEAVES];
    for (size_t i = 0; i < VDP_SIG_MAX_LEAVES; i++)
        s_fill_nth(&envs[i], i);
    s_sign(envs, VDP_SIG_MAX_LEAVES, sk);
    ck_assert_uint_eq(envs[63].sig_len, VDP_SIG_MAX_BYTES);
    ck_assert_uint_eq(VDP_SIG_MAX_BYTES, 269);
    s_attach_and_check(&envs[63], pk, (const uint8_t *)"\x8d", 1);
}
END_TEST

//  A sender may use any map header; the result takes the shortest one.
START_TEST(attach_accepts_a_map32_header)
{
    uint8_t pk[VDP_KEY_BYTES];
    vdp_envelope_t envs[S_VECTORS];
    s_vector_tree(envs, pk);
    vdp_envelope_t bare = envs[0];
    bare.sig_len = 0;
    uint8_t *raw, *out;
    size_t raw_len, out_len;
    ck_assert_int_eq(vdp_envelope_encode(&bare, &raw, &raw_len), VD_OK);
    ck_assert_uint_eq(raw[0], 0x8c);
    uint8_t *wide = malloc(raw_len + 4);
    ck_assert_ptr_nonnull(wide);
    memcpy(wide, "\xdf\x00\x00\x00\x0c", 5);
    memcpy(wide + 5, raw + 1, raw_len - 1);
    ck_assert_int_eq(
        vdp_sig_attach(wide, raw_len + 4, envs[0].sig, envs[0].sig_len, &out, &out_len), VD_OK);
    ck_assert_uint_eq(out[0], 0x8d);
    vdp_envelope_t decoded = { 0 };
    ck_assert_int_eq(vdp_envelope_decode(&decoded, out, out_len, NULL, 0), VD_OK);
    ck_assert_int_eq(s_verify(&decoded, pk, NULL), VD_OK);
    vdp_envelope_reset(&decoded);
    free(out);
    free(wide);
    free(raw);
}
END_TEST

static const struct {
    const char *raw;
    size_t raw_len;
    size_t sig_len;
} s_bad_attach[] = {
    { "", 0, 77 },                     // nothing
    { "\x93\x01\x02\x03", 4, 77 },     // an array
    { "\xa3sig", 4, 77 },              // a string
    { "\xc0", 1, 77 },                 // nil
    { "\xde\x00", 2, 77 },             // a cut map 16 header
    { "\xdf\x00\x00\x00", 4, 77 },     // a cut map 32 header
    { "\xde\x00\x40", 3, 77 },         // 64 pairs: no room for one more
    { "\xdf\x00\x01\x00\x00", 5, 77 }, // 65536 pairs
    { "\x80", 1, VDP_MAX_SIG + 1 },    // a sig over its cap
};

//  What vdp_sig_attachable() must refuse: what attach refuses, a map that has a `sig` already
//  (an empty one too), and bytes that are not one whole, well-formed map.
static const struct {
    const char *raw;
    size_t raw_len;
} s_not_attachable[] = {
    { "", 0 },                                  // nothing
    { "\x93\x01\x02\x03", 4 },                  // an array
    { "\xde\x00\x40", 3 },                      // 64 pairs announced: no room
    { "\x81\xa3sig\xc4\x00", 7 },               // an empty sig
    { "\x82\xa1v\x01\xa3sig\xc4\x01\x01", 10 }, // a sig after another key
    { "\x82\xa1v\x01", 4 },                     // a pair missing
    { "\x81\xa1v\x01\x00", 5 },                 // a byte after the map
    { "\x81\x01\x01", 3 },                      // a key that is not a string
    { "\x81\xa1x\x91\x91\x91\x01", 8 },         // a value nested too deep
};

START_TEST(attachable_refuses_what_attach_must_not_get)
{
    ck_assert(!vdp_sig_attachable((const uint8_t *)s_not_attachable[_i].raw,
                                  s_not_attachable[_i].raw_len));
}
END_TEST

//  An encoded envelope without sig qualifies, and so does one with a 63rd unknown key; a 64th
//  leaves no room.
START_TEST(attachable_takes_an_envelope_with_room)
{
    vdp_envelope_t env;
    vdt_sig_e2(&env);
    uint8_t *raw;
    size_t len;
    ck_assert_int_eq(vdp_envelope_encode(&env, &raw, &len), VD_OK);
    ck_assert(vdp_sig_attachable(raw, len));
    //  The same map grown to 63 and to 64 pairs with unknown keys "k00".. (nil values).
    size_t header = raw[0] == 0xde ? 3 : 1;
    size_t pairs = header == 3 ? ((size_t)raw[1] << 8 | raw[2]) : (raw[0] & 0x0f);
    for (size_t total = 63; total <= 64; total++) {
        size_t extra = total - pairs;
        uint8_t *grown = malloc(3 + len - header + extra * 5);
        ck_assert_ptr_nonnull(grown);
        grown[0] = 0xde;
        grown[1] = 0;
        grown[2] = (uint8_t)total;
        memcpy(grown + 3, raw + header, len - header);
        uint8_t *p = grown + 3 + len - header;
        for (size_t k = 0; k < extra; k++) {
            *p++ = 0xa3;
            *p++ = 'k';
            *p++ = (uint8_t)('0' + k / 10);
            *p++ = (uint8_t)('0' + k % 10);
            *p++ = 0xc0;
        }
        ck_assert_int_eq(vdp_sig_attachable(grown, (size_t)(p - grown)), total < 64);
        free(grown);
    }
    free(raw);
}
END_TEST

START_TEST(attach_refuses_what_is_not_a_map_with_room)
{
    static uint8_t sig[VDP_MAX_SIG + 1];
    uint8_t *out = NULL;
    size_t out_len = 0;
    uint8_t *raw = malloc(s_bad_attach[_i].raw_len + 1);
    ck_assert_ptr_nonnull(raw);
    memcpy(raw, s_bad_attach[_i].raw, s_bad_attach[_i].raw_len);
    ck_assert_int_eq(vdp_sig_attach(raw, s_bad_attach[_i].raw_len, sig, s_bad_attach[_i].sig_len,
                                    &out, &out_len),
                     VD_EINVAL);
    ck_assert_ptr_null(out);
    free(raw);
}
END_TEST

//  ---------------------------------------------------------------------------------------------
//  The cache

/*  Whatever order the envelopes of a tree arrive in, and whatever byte of a sig past its
    signature is flipped (index, count, path), a verification through the cache answers as one
    without it: the cache saves work, never changes a verdict. Every tree size, 400 steps each,
    a fixed pseudo-random sequence.  */
START_TEST(cache_agrees_with_a_full_verification)
{
    uint8_t pk[VDP_KEY_BYTES], sk[64];
    s_keypair(0, pk, sk);
    static vdp_envelope_t envs[VDP_SIG_MAX_LEAVES];
    for (size_t n = 1; n <= VDP_SIG_MAX_LEAVES; n++) {
        for (size_t i = 0; i < n; i++)
            s_fill_nth(&envs[i], i);
        s_sign(envs, n, sk);
        vdp_sig_cache_t cache = { 0 };
        uint64_t state = n;
        for (int step = 0; step < 400; step++) {
            state = state * 6364136223846793005u + 1442695040888963407u;
            size_t i = (size_t)(state >> 33) % n;
            vdp_envelope_t e = envs[i];
            bool tamper = (state >> 20) % 3 == 0;
            if (tamper) {
                size_t past = 1 + VDP_SIG_HINT_BYTES; // index, count, signature, path
                size_t at = past + (size_t)(state >> 40) % (e.sig_len - past);
                e.sig[at] ^= (uint8_t)(1u << ((state >> 50) % 8));
            }
            int cached = vdp_sig_verify(&e, pk, &cache, NULL, 0);
            int full = vdp_sig_verify(&e, pk, NULL, NULL, 0);
            ck_assert_msg(cached == full, "tree of %zu, leaf %zu, tampered %d: %d cached, %d not",
                          n, i, tamper, cached, full);
            ck_assert_msg(tamper || cached == VD_OK, "tree of %zu, leaf %zu refused", n, i);
        }
        for (size_t i = 0; i < n; i++)
            vdp_envelope_reset(&envs[i]);
    }
}
END_TEST

START_TEST(cache_checks_once_per_tree)
{
    uint8_t pk[VDP_KEY_BYTES], sk[64];
    s_keypair(0, pk, sk);
    vdp_envelope_t envs[8];
    for (size_t i = 0; i < 8; i++)
        s_fill_nth(&envs[i], i);
    s_sign(envs, 8, sk);
    vdp_sig_cache_t cache = { 0 };
    for (size_t i = 0; i < 8; i++)
        ck_assert_int_eq(s_verify(&envs[i], pk, &cache), VD_OK);
    ck_assert_uint_eq(cache.checks, 1);
    ck_assert_uint_eq(cache.hits, 7);
    for (size_t i = 0; i < 8; i++)
        ck_assert_int_eq(s_verify(&envs[i], pk, &cache), VD_OK);
    ck_assert_uint_eq(cache.checks, 1);
    ck_assert_uint_eq(cache.hits, 15);
}
END_TEST

START_TEST(cache_checks_another_root_again)
{
    uint8_t pk[VDP_KEY_BYTES], sk[64];
    s_keypair(0, pk, sk);
    vdp_envelope_t a[4], b[4];
    for (size_t i = 0; i < 4; i++) {
        s_fill_nth(&a[i], i);
        s_fill_nth(&b[i], i + 4);
    }
    s_sign(a, 4, sk);
    s_sign(b, 4, sk);
    vdp_sig_cache_t cache = { 0 };
    const vdp_envelope_t *order[] = { &a[0], &a[1], &b[0], &b[1], &a[2], &a[3] };
    for (size_t i = 0; i < 6; i++)
        ck_assert_int_eq(s_verify(order[i], pk, &cache), VD_OK);
    ck_assert_uint_eq(cache.checks, 3); // a, b, a again
    ck_assert_uint_eq(cache.hits, 3);
}
END_TEST

START_TEST(cache_checks_another_key_again)
{
    uint8_t pk[VDP_KEY_BYTES], sk[64], pk2[VDP_KEY_BYTES], sk2[64];
    s_keypair(0, pk, sk);
    s_keypair(1, pk2, sk2);
    vdp_envelope_t a[2], b[2];
    for (size_t i = 0; i < 2; i++) {
        s_fill_nth(&a[i], i);
        s_fill_nth(&b[i], i);
    }
    s_sign(a, 2, sk);
    s_sign(b, 2, sk2); // the same leaves, so the same root, under another key
    vdp_sig_cache_t cache = { 0 };
    ck_assert_int_eq(s_verify(&a[0], pk, &cache), VD_OK);
    ck_assert_int_eq(s_verify(&b[0], pk2, &cache), VD_OK);
    ck_assert_uint_eq(cache.checks, 2);
    ck_assert_uint_eq(cache.hits, 0);

    //  The cached key differs in one byte: not a hit
    ck_assert_int_eq(s_verify(&b[1], pk2, &cache), VD_OK);
    ck_assert_uint_eq(cache.hits, 1);
    cache.sign_public[VDP_KEY_BYTES - 1] ^= 1;
    ck_assert_int_eq(s_verify(&b[1], pk2, &cache), VD_OK);
    ck_assert_uint_eq(cache.checks, 3);
    ck_assert_uint_eq(cache.hits, 1);
}
END_TEST

//  A copied sig on another envelope (or a changed envelope) of a cached tree meets a node the
//  cache vouches for with another hash: refused by hashes alone, without an Ed25519 check.
START_TEST(cache_does_not_pass_a_copied_sig)
{
    uint8_t pk[VDP_KEY_BYTES];
    vdp_envelope_t envs[S_VECTORS];
    s_vector_tree(envs, pk);
    vdp_sig_cache_t cache = { 0 };
    ck_assert_int_eq(s_verify(&envs[0], pk, &cache), VD_OK);
    ck_assert_uint_eq(cache.checks, 1);

    vdp_envelope_t copied = envs[1];
    memcpy(copied.sig, envs[0].sig, envs[0].sig_len);
    copied.sig_len = envs[0].sig_len;
    ck_assert_int_eq(s_verify(&copied, pk, &cache), VD_ESIG);
    vdp_envelope_t changed = envs[0];
    changed.sent++;
    ck_assert_int_eq(s_verify(&changed, pk, &cache), VD_ESIG);
    ck_assert_uint_eq(cache.checks, 1);
    ck_assert_uint_eq(cache.hits, 0);

    //  Failures leave the cached tree in place
    ck_assert_int_eq(s_verify(&envs[2], pk, &cache), VD_OK);
    ck_assert_uint_eq(cache.checks, 1);
    ck_assert_uint_eq(cache.hits, 1);
}
END_TEST

START_TEST(cache_is_not_filled_by_a_failure)
{
    uint8_t pk[VDP_KEY_BYTES];
    vdp_envelope_t envs[S_VECTORS];
    s_vector_tree(envs, pk);
    vdp_sig_cache_t cache = { 0 };
    vdp_envelope_t changed = envs[0];
    changed.sig[20] ^= 1; // the signature
    ck_assert_int_eq(s_verify(&changed, pk, &cache), VD_ESIG);
    ck_assert(!cache.valid);
    ck_assert_int_eq(s_verify(&changed, pk, &cache), VD_ESIG);
    ck_assert_uint_eq(cache.checks, 2);
    ck_assert_uint_eq(cache.hits, 0);
}
END_TEST

/*  The root of (e1, e2, e3) is also the root e3 reaches as leaf 1 of a tree of 2 with the path
    (node01): only the signed count tells the two apart, so the cache must compare it too.  */
START_TEST(cache_compares_the_count)
{
    uint8_t pk[VDP_KEY_BYTES];
    vdp_envelope_t envs[S_VECTORS];
    s_vector_tree(envs, pk);
    vdp_envelope_t e = envs[2]; // leaf 2 of 3, path (node01)
    e.sig[10] = 1;              // leaf 1
    e.sig[12] = 2;              // of 2
    vdp_sig_t sig;
    ck_assert_int_eq(vdp_sig_decode(&sig, e.sig, e.sig_len, NULL, 0), VD_OK);
    uint8_t leaf[VDP_SIG_HASH_BYTES], root[VDP_SIG_HASH_BYTES], expected[VDP_SIG_HASH_BYTES];
    ck_assert_int_eq(vdp_sig_leaf(&e, leaf), VD_OK);
    vdp_sig_root_of(&sig, leaf, root);
    s_unhex(S_ROOT, expected, sizeof expected);
    ck_assert_mem_eq(root, expected, sizeof root); // the same root, claimed for 2 leaves

    ck_assert_int_eq(s_verify(&e, pk, NULL), VD_ESIG);
    vdp_sig_cache_t cache = { 0 };
    ck_assert_int_eq(s_verify(&envs[0], pk, &cache), VD_OK);
    ck_assert_int_eq(s_verify(&e, pk, &cache), VD_ESIG);
    ck_assert_uint_eq(cache.checks, 2);
    ck_assert_uint_eq(cache.hits, 0);
}
END_TEST

//  A hit skips only the Ed25519 check: a wrong hint still fails, before any hashing.
START_TEST(cache_hit_still_checks_the_hint)
{
    uint8_t pk[VDP_KEY_BYTES];
    vdp_envelope_t envs[S_VECTORS];
    s_vector_tree(envs, pk);
    vdp_sig_cache_t cache = { 0 };
    ck_assert_int_eq(s_verify(&envs[0], pk, &cache), VD_OK);
    vdp_envelope_t e = envs[1];
    e.sig[1] ^= 1;
    char reason[256];
    ck_assert_int_eq(vdp_sig_verify(&e, pk, &cache, reason, sizeof reason), VD_ESIG);
    ck_assert_str_eq(reason, "sig: made with another key");
    ck_assert_uint_eq(cache.checks, 1);
    ck_assert_uint_eq(cache.hits, 0);
}
END_TEST

Suite *
vdp_sig_suite(void)
{
    Suite *s = suite_create("vdp_sig");
    TCase *tc = tcase_create("vectors");
    tcase_add_test(tc, vector_key_and_hint);
    tcase_add_loop_test(tc, vector_body_hash_canonical_form_and_leaf, 0, S_VECTORS);
    tcase_add_test(tc, vector_tree_signature_and_sigs);
    tcase_add_test(tc, vector_e2_as_sent);
    suite_add_tcase(s, tc);

    tc = tcase_create("sign_verify");
    //  Thousands of Ed25519 verifications in all, about 100 µs each (more under sanitizers)
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, every_tree_size_and_every_leaf_verifies, 1, VDP_SIG_MAX_LEAVES + 1);
    tcase_add_test(tc, sign_refuses_a_tree_of_0_or_65);
    tcase_add_loop_test(tc, any_changed_header_field_fails, 0, S_CHANGES);
    tcase_add_test(tc, an_added_optional_field_fails);
    tcase_add_test(tc, every_body_byte_matters);
    tcase_add_loop_test(tc, every_sig_bit_matters, 0, S_VECTORS);
    tcase_add_loop_test(tc, any_other_index_or_count_fails, 0, S_VECTORS);
    tcase_add_test(tc, a_sig_on_another_envelope_fails);
    tcase_add_test(tc, another_key_fails);
    tcase_add_test(tc, a_missing_sig_fails);
    suite_add_tcase(s, tc);

    tc = tcase_create("decode");
    tcase_add_loop_test(tc, decode_names_each_malformed_sig, 0,
                        sizeof s_bad_sigs / sizeof s_bad_sigs[0]);
    tcase_add_loop_test(tc, decode_then_encode_gives_the_same_bytes, 0, S_VECTORS);
    tcase_add_test(tc, path_len_matches_a_tree_built_bottom_up);
    tcase_add_test(tc, root_matches_a_tree_built_bottom_up);
    suite_add_tcase(s, tc);

    tc = tcase_create("attach");
    tcase_add_test(tc, attach_grows_a_fixmap_of_15_into_a_map16);
    tcase_add_test(tc, attach_counts_one_more_pair);
    tcase_add_test(tc, attach_writes_a_long_sig_as_bin16);
    tcase_add_test(tc, attach_accepts_a_map32_header);
    tcase_add_loop_test(tc, attach_refuses_what_is_not_a_map_with_room, 0,
                        sizeof s_bad_attach / sizeof s_bad_attach[0]);
    tcase_add_loop_test(tc, attachable_refuses_what_attach_must_not_get, 0,
                        sizeof s_not_attachable / sizeof s_not_attachable[0]);
    tcase_add_test(tc, attachable_takes_an_envelope_with_room);
    suite_add_tcase(s, tc);

    tc = tcase_create("cache");
    tcase_add_test(tc, cache_agrees_with_a_full_verification);
    tcase_add_test(tc, cache_checks_once_per_tree);
    tcase_add_test(tc, cache_checks_another_root_again);
    tcase_add_test(tc, cache_checks_another_key_again);
    tcase_add_test(tc, cache_does_not_pass_a_copied_sig);
    tcase_add_test(tc, cache_is_not_filled_by_a_failure);
    tcase_add_test(tc, cache_compares_the_count);
    tcase_add_test(tc, cache_hit_still_checks_the_hint);
    suite_add_tcase(s, tc);
    return s;
}

/*  vd_keyring suite: loading a directory of public agency files as the broker's registry does,
    and checking envelopes' signatures against it: who signed (org, label, revoked), and each
    way a signature must fail (missing, malformed, changed envelope, a key not in the keyring,
    a key of another org). Envelopes are signed here with vdp_sig, as a publisher signs them.
    It lives in the integration runner because that is the one linking libvedetta; it starts no
    broker.  */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <check.h>
#include <sodium.h>

#include "it_suites.h"
#include "scratch.h"
#include "vd_keyring_internal.h"
#include "vdb_registry.h"
#include "vdp_agency.h"
#include "vdp_envelope.h"
#include "vdp_ids.h"
#include "vdp_sig.h"
#include "vedetta.h"

#define S_TREE 8 // envelopes signed together in the cache's tests

static char s_dir[256]; // a fresh keyring directory per test
static char s_reason[512];
static vd_keyring_t *s_keys;

static void
s_setup(void)
{
    vdt_scratch_make(s_dir, sizeof s_dir, "vd_keyring");
    s_reason[0] = '\0';
    s_keys = NULL;
}

static void
s_teardown(void)
{
    vd_keyring_destroy(&s_keys);
    ck_assert_ptr_null(s_keys);
    vdt_scratch_remove(s_dir);
}

//  A new key of `org` (its role from the org id) with fresh key pairs.
static vdp_secret_t
s_secret(const char *org, const char *name, const char *jur, const char *label)
{
    vdp_secret_t secret;
    char err[256];
    ck_assert_msg(vdp_secret_generate(&secret, org, name, vdp_org_role(org), jur, label, err,
                                      sizeof err) == VD_OK,
                  "generate: %s", err);
    return secret;
}

//  Installs the public file of `agency` in the keyring directory as `name`.
static void
s_install(const vdp_agency_t *agency, const char *name)
{
    ck_assert_int_eq(vdp_agency_save(agency, vdt_scratch_path(s_dir, name)), VD_OK);
}

static void
s_load(void)
{
    vd_keyring_destroy(&s_keys);
    s_keys = vd_keyring_load(s_dir, s_reason, sizeof s_reason);
    ck_assert_msg(s_keys != NULL, "load: %s", s_reason);
}

static void
s_assert_reason_has(const char *fragment)
{
    ck_assert_msg(strstr(s_reason, fragment), "reason \"%s\" lacks \"%s\"", s_reason, fragment);
}

//  A complete envelope from `sender`, as a delivery carries it (no sig yet). Caller owns it.
static vd_envelope_t *
s_envelope(const char *sender, const char *body)
{
    vd_envelope_t *env = vd_envelope_new();
    ck_assert_ptr_nonnull(env);
    char id[VDP_ID_LEN + 1];
    vdp_uuid_generate(id);
    ck_assert_int_eq(vd_envelope_set(env, "id", id), VD_OK);
    ck_assert_int_eq(vd_envelope_set(env, "sender", sender), VD_OK);
    ck_assert_int_eq(vd_envelope_set_time(env, "sent", 1795352344104), VD_OK);
    ck_assert_int_eq(vd_envelope_set(env, "topic", "alert.toscana.i726"), VD_OK);
    ck_assert_int_eq(vd_envelope_set(env, "kind", "alert"), VD_OK);
    ck_assert_int_eq(vd_envelope_set(env, "status", "actual"), VD_OK);
    ck_assert_int_eq(vd_envelope_set(env, "tlp", "amber"), VD_OK);
    ck_assert_int_eq(vd_envelope_set(env, "category", "intrusions"), VD_OK);
    ck_assert_int_eq(vd_envelope_set(env, "severity", "severe"), VD_OK);
    ck_assert_int_eq(vd_envelope_set(env, "ctype", "text/plain"), VD_OK);
    ck_assert_int_eq(vd_envelope_set_body(env, body, strlen(body)), VD_OK);
    env->v = 1;
    return env;
}

//  Signs envs[0..count) as one tree with `secret`'s Ed25519 key, as a publisher does.
static void
s_sign(vd_envelope_t **envs, size_t count, const vdp_secret_t *secret)
{
    ck_assert_uint_le(count, VDP_SIG_MAX_LEAVES);
    uint8_t leaves[VDP_SIG_MAX_LEAVES][VDP_SIG_HASH_BYTES];
    for (size_t i = 0; i < count; i++)
        ck_assert_int_eq(vdp_sig_leaf(envs[i], leaves[i]), VD_OK);
    uint8_t sign_secret[VDP_SIGN_SECRET_BYTES];
    ck_assert_int_eq(vdp_secret_sign_key(secret, sign_secret), VD_OK);
    vdp_sig_t sigs[VDP_SIG_MAX_LEAVES];
    ck_assert_int_eq(
        vdp_sig_sign((const uint8_t(*)[VDP_SIG_HASH_BYTES])leaves, count, sign_secret, sigs),
        VD_OK);
    sodium_memzero(sign_secret, sizeof sign_secret);
    for (size_t i = 0; i < count; i++)
        envs[i]->sig_len = vdp_sig_encode(&sigs[i], envs[i]->sig);
}

//  One envelope from `sender`, signed alone by `secret`. Caller owns it.
static vd_envelope_t *
s_signed(const char *sender, const char *body, const vdp_secret_t *secret)
{
    vd_envelope_t *env = s_envelope(sender, body);
    s_sign(&env, 1, secret);
    return env;
}

//  vd_envelope_verify, with the signer it reports in *signer.
static int
s_verify(const vd_envelope_t *env, vd_signer_t *signer)
{
    s_reason[0] = '\0';
    return vd_envelope_verify(s_keys, env, signer, s_reason, sizeof s_reason);
}

/*  ---------------------------------------------------------------------------------------------
    Verifying  */

START_TEST(verified_names_the_org_and_label_of_the_key)
{
    vdp_secret_t siem = s_secret("comune:i726", "Comune di Siena", "toscana", "siem");
    vdp_secret_t console = s_secret("comune:i726", "Comune di Siena", "toscana", "console");
    vdp_secret_t cosc = s_secret("cosc:toscana", "COSC Toscana", "toscana", "analisti");
    s_install(&siem.agency, "comune-i726.siem.agency");
    s_install(&console.agency, "comune-i726.console.agency");
    s_install(&cosc.agency, "cosc-toscana.analisti.agency");
    s_load();
    ck_assert_uint_eq(vd_keyring_size(s_keys), 3);

    vd_envelope_t *env = s_signed("comune:i726", "40 failed VPN logins/min", &console);
    vd_signer_t signer;
    ck_assert_msg(s_verify(env, &signer) == VD_OK, "verify: %s", s_reason);
    ck_assert_str_eq(signer.org, "comune:i726");
    ck_assert_str_eq(signer.label, "console");
    ck_assert(!signer.revoked);
    vd_envelope_destroy(&env);

    env = s_signed("comune:i726", "from the SIEM", &siem);
    ck_assert_int_eq(s_verify(env, &signer), VD_OK);
    ck_assert_str_eq(signer.label, "siem");
    //  Without a signer or a reason buffer it answers the same.
    ck_assert_int_eq(vd_envelope_verify(s_keys, env, NULL, NULL, 0), VD_OK);
    vd_envelope_destroy(&env);

    env = s_signed("cosc:toscana", "bulletin", &cosc);
    ck_assert_int_eq(s_verify(env, &signer), VD_OK);
    ck_assert_str_eq(signer.org, "cosc:toscana");
    ck_assert_str_eq(signer.label, "analisti");
    vd_envelope_destroy(&env);
    vdp_secret_wipe(&siem);
    vdp_secret_wipe(&console);
    vdp_secret_wipe(&cosc);
}
END_TEST

START_TEST(a_decoded_delivery_verifies)
{
    vdp_secret_t siem = s_secret("comune:i726", "Comune di Siena", "toscana", "siem");
    s_install(&siem.agency, "comune-i726.siem.agency");
    s_load();
    vd_envelope_t *env = s_envelope("comune:i726", "through the wire");
    ck_assert_int_eq(vd_envelope_set(env, "to", "cosc:toscana"), VD_OK);
    ck_assert_int_eq(
        vd_envelope_set(env, "refs", "comune:i726/6f1c2b9e-0d4a-4c55-9a53-3d3f2e1b7c10"), VD_OK);
    s_sign(&env, 1, &siem);
    uint8_t *data;
    size_t size;
    ck_assert_int_eq(vdp_envelope_encode(env, &data, &size), VD_OK);
    vdp_envelope_t received;
    memset(&received, 0, sizeof received);
    char why[256] = "";
    ck_assert_msg(vdp_envelope_decode(&received, data, size, why, sizeof why) == VD_OK, "%s", why);
    vd_signer_t signer;
    ck_assert_msg(s_verify(&received, &signer) == VD_OK, "verify: %s", s_reason);
    ck_assert_str_eq(signer.label, "siem");
    vdp_envelope_reset(&received);
    free(data);
    vd_envelope_destroy(&env);
    vdp_secret_wipe(&siem);
}
END_TEST

START_TEST(a_revoked_key_verifies_and_is_reported_revoked)
{
    vdp_secret_t old = s_secret("comune:i726", "Comune di Siena", "toscana", "siem");
    vdp_secret_t next = s_secret("comune:i726", "Comune di Siena", "toscana", "siem-20261122");
    vdp_agency_t revoked = old.agency;
    revoked.status = VDP_KEY_REVOKED;
    s_install(&revoked, "comune-i726.siem.agency");
    s_install(&next.agency, "comune-i726.siem-20261122.agency");
    s_load();
    vd_envelope_t *env = s_signed("comune:i726", "signed with the old key", &old);
    vd_signer_t signer;
    ck_assert_int_eq(s_verify(env, &signer), VD_OK);
    ck_assert_str_eq(signer.label, "siem");
    ck_assert(signer.revoked);
    vd_envelope_destroy(&env);
    env = s_signed("comune:i726", "signed with the new key", &next);
    ck_assert_int_eq(s_verify(env, &signer), VD_OK);
    ck_assert_str_eq(signer.label, "siem-20261122");
    ck_assert(!signer.revoked);
    vd_envelope_destroy(&env);
    vdp_secret_wipe(&old);
    vdp_secret_wipe(&next);
}
END_TEST

START_TEST(a_key_not_in_the_keyring_is_not_found)
{
    vdp_secret_t siem = s_secret("comune:i726", "Comune di Siena", "toscana", "siem");
    vdp_secret_t other = s_secret("comune:i726", "Comune di Siena", "toscana", "console");
    vdp_secret_t stranger = s_secret("comune:b429", "Comune di Caltanissetta", "sicilia-occ", "x");
    s_install(&siem.agency, "comune-i726.siem.agency");
    s_load();
    vd_signer_t signer;
    //  A key of a known org whose file we lack (a new key not yet sent to us).
    vd_envelope_t *env = s_signed("comune:i726", "from the console", &other);
    ck_assert_int_eq(s_verify(env, &signer), VD_ENOTFOUND);
    s_assert_reason_has("a key of comune:i726 that is not in the keyring");
    ck_assert_str_eq(signer.org, ""); // nothing is claimed on failure
    vd_envelope_destroy(&env);
    //  An org the keyring has no file of.
    env = s_signed("comune:b429", "from Caltanissetta", &stranger);
    ck_assert_int_eq(s_verify(env, &signer), VD_ENOTFOUND);
    s_assert_reason_has("no key of comune:b429");
    vd_envelope_destroy(&env);
    vdp_secret_wipe(&siem);
    vdp_secret_wipe(&other);
    vdp_secret_wipe(&stranger);
}
END_TEST

START_TEST(a_key_of_another_org_never_verifies_a_sender)
{
    vdp_secret_t siena = s_secret("comune:i726", "Comune di Siena", "toscana", "siem");
    vdp_secret_t cosc = s_secret("cosc:toscana", "COSC Toscana", "toscana", "analisti");
    s_install(&siena.agency, "comune-i726.siem.agency");
    s_install(&cosc.agency, "cosc-toscana.analisti.agency");
    s_load();
    //  The COSC signs a message that claims to come from Siena: its key is in the keyring, but
    //  not as Siena's.
    vd_envelope_t *env = s_signed("comune:i726", "forged", &cosc);
    ck_assert_int_eq(s_verify(env, NULL), VD_ENOTFOUND);
    s_assert_reason_has("comune:i726");
    vd_envelope_destroy(&env);

    //  Even a file of another org listing Siena's own signing key (copied: it is public) makes
    //  nothing Siena signs pass as that org's, nor the reverse.
    vd_keyring_destroy(&s_keys);
    vdp_secret_t copy =
        s_secret("cosc:sicilia-occ", "COSC Sicilia Occidentale", "sicilia-occ", "copy");
    memcpy(copy.agency.sign_public, siena.agency.sign_public, sizeof copy.agency.sign_public);
    s_install(&copy.agency, "cosc-sicilia-occ.copy.agency");
    s_load();
    env = s_signed("comune:i726", "genuine", &siena);
    vd_signer_t signer;
    ck_assert_int_eq(s_verify(env, &signer), VD_OK);
    ck_assert_str_eq(signer.org, "comune:i726");
    ck_assert_str_eq(signer.label, "siem");
    //  The same signature under the other org's name: its leaf changes with the sender, and the
    //  tree no longer verifies.
    ck_assert_int_eq(vd_envelope_set(env, "sender", "cosc:sicilia-occ"), VD_OK);
    ck_assert_int_eq(s_verify(env, &signer), VD_ESIG);
    ck_assert_str_eq(signer.org, "");
    vd_envelope_destroy(&env);
    vdp_secret_wipe(&siena);
    vdp_secret_wipe(&cosc);
    vdp_secret_wipe(&copy);
}
END_TEST

//  What an attacker or a broken relay may change after signing; each must fail with ESIG.
static void
s_change_body(vd_envelope_t *env)
{
    ck_assert_int_eq(vd_envelope_set_body(env, "40 failed VPN logins/min!", 25), VD_OK);
}
static void
s_change_tlp(vd_envelope_t *env)
{
    ck_assert_int_eq(vd_envelope_set(env, "tlp", "clear"), VD_OK);
}
static void
s_change_topic(vd_envelope_t *env)
{
    ck_assert_int_eq(vd_envelope_set(env, "topic", "alert.toscana.d612"), VD_OK);
}
static void
s_add_recipient(vd_envelope_t *env)
{
    ck_assert_int_eq(vd_envelope_set(env, "to", "cosc:sicilia-occ"), VD_OK);
}
static void
s_change_sent(vd_envelope_t *env)
{
    ck_assert_int_eq(vd_envelope_set_time(env, "sent", 1795352344105), VD_OK);
}
static void
s_change_signature(vd_envelope_t *env)
{
    env->sig[1 + VDP_SIG_HINT_BYTES + 4 + 10] ^= 0x01;
}

static const struct {
    const char *what;
    void (*change)(vd_envelope_t *env);
} s_changes[] = {
    { "body", s_change_body },   { "tlp", s_change_tlp },
    { "topic", s_change_topic }, { "a recipient added", s_add_recipient },
    { "sent", s_change_sent },   { "the signature", s_change_signature },
};

START_TEST(a_changed_envelope_does_not_verify)
{
    vdp_secret_t siem = s_secret("comune:i726", "Comune di Siena", "toscana", "siem");
    s_install(&siem.agency, "comune-i726.siem.agency");
    s_load();
    vd_envelope_t *env = s_signed("comune:i726", "40 failed VPN logins/min", &siem);
    ck_assert_int_eq(s_verify(env, NULL), VD_OK);
    s_changes[_i].change(env);
    ck_assert_msg(s_verify(env, NULL) == VD_ESIG, "%s changed: %s", s_changes[_i].what, s_reason);
    s_assert_reason_has("does not verify with the key comune:i726/siem");
    vd_envelope_destroy(&env);
    vdp_secret_wipe(&siem);
}
END_TEST

START_TEST(a_changed_path_does_not_verify_even_after_its_tree_did)
{
    vdp_secret_t siem = s_secret("comune:i726", "Comune di Siena", "toscana", "siem");
    s_install(&siem.agency, "comune-i726.siem.agency");
    s_load();
    vd_envelope_t *envs[2] = { s_envelope("comune:i726", "one"), s_envelope("comune:i726", "two") };
    s_sign(envs, 2, &siem);
    ck_assert_int_eq(s_verify(envs[0], NULL), VD_OK);
    //  The second's path (its sibling: the first's leaf) changed: its root is not the cached one.
    envs[1]->sig[envs[1]->sig_len - 1] ^= 0x80;
    ck_assert_int_eq(s_verify(envs[1], NULL), VD_ESIG);
    //  And its body changed, with the path intact.
    envs[1]->sig[envs[1]->sig_len - 1] ^= 0x80;
    ck_assert_int_eq(s_verify(envs[1], NULL), VD_OK);
    s_change_body(envs[1]);
    ck_assert_int_eq(s_verify(envs[1], NULL), VD_ESIG);
    vd_envelope_destroy(&envs[0]);
    vd_envelope_destroy(&envs[1]);
    vdp_secret_wipe(&siem);
}
END_TEST

START_TEST(no_signature_or_a_malformed_one_is_esig)
{
    vdp_secret_t siem = s_secret("comune:i726", "Comune di Siena", "toscana", "siem");
    s_install(&siem.agency, "comune-i726.siem.agency");
    s_load();
    vd_envelope_t *env = s_envelope("comune:i726", "unsigned");
    vd_signer_t signer;
    ck_assert_int_eq(s_verify(env, &signer), VD_ESIG);
    s_assert_reason_has("sig: missing");
    s_sign(&env, 1, &siem);
    env->sig[0] = 2; // a version we do not know
    ck_assert_int_eq(s_verify(env, &signer), VD_ESIG);
    s_assert_reason_has("version 2");
    env->sig[0] = VDP_SIG_VERSION;
    env->sig_len -= 1; // truncated
    ck_assert_int_eq(s_verify(env, &signer), VD_ESIG);
    env->sig_len = 3;
    ck_assert_int_eq(s_verify(env, &signer), VD_ESIG);
    s_assert_reason_has("too short");
    vd_envelope_destroy(&env);
    vdp_secret_wipe(&siem);
}
END_TEST

START_TEST(misuse_is_einval_not_fatal)
{
    s_load();
    vd_envelope_t *env = s_envelope("comune:i726", "x");
    vd_signer_t signer;
    ck_assert_int_eq(vd_envelope_verify(NULL, env, &signer, s_reason, sizeof s_reason), VD_EINVAL);
    ck_assert_int_eq(vd_envelope_verify(s_keys, NULL, &signer, s_reason, sizeof s_reason),
                     VD_EINVAL);
    ck_assert_int_eq(vd_envelope_set(env, "sender", ""), VD_OK);
    ck_assert_int_eq(s_verify(env, &signer), VD_EINVAL);
    s_assert_reason_has("no sender");
    ck_assert_ptr_null(vd_keyring_load(NULL, s_reason, sizeof s_reason));
    vd_keyring_destroy(NULL);
    vd_envelope_destroy(&env);
}
END_TEST

/*  ---------------------------------------------------------------------------------------------
    One Ed25519 verification per tree  */

START_TEST(a_tree_costs_one_verification)
{
    vdp_secret_t siem = s_secret("comune:i726", "Comune di Siena", "toscana", "siem");
    vdp_secret_t cosc = s_secret("cosc:toscana", "COSC Toscana", "toscana", "analisti");
    s_install(&siem.agency, "comune-i726.siem.agency");
    s_install(&cosc.agency, "cosc-toscana.analisti.agency");
    s_load();
    vd_envelope_t *tree[S_TREE], *other[S_TREE];
    for (size_t i = 0; i < S_TREE; i++) {
        tree[i] = s_envelope("comune:i726", "one of a batch");
        other[i] = s_envelope("comune:i726", "one of the next batch");
    }
    s_sign(tree, S_TREE, &siem);
    s_sign(other, S_TREE, &siem);
    uint64_t checks, hits;
    for (size_t i = 0; i < S_TREE; i++)
        ck_assert_int_eq(s_verify(tree[i], NULL), VD_OK);
    vd_keyring_counts(s_keys, &checks, &hits);
    ck_assert_uint_eq(checks, 1);
    ck_assert_uint_eq(hits, S_TREE - 1);

    //  Another key's envelope in between does not disturb this key's cache.
    vd_envelope_t *env = s_signed("cosc:toscana", "bulletin", &cosc);
    ck_assert_int_eq(s_verify(env, NULL), VD_OK);
    ck_assert_int_eq(s_verify(tree[0], NULL), VD_OK);
    vd_keyring_counts(s_keys, &checks, &hits);
    ck_assert_uint_eq(checks, 2);
    ck_assert_uint_eq(hits, S_TREE);

    //  The next tree of the same key: one more.
    for (size_t i = 0; i < S_TREE; i++)
        ck_assert_int_eq(s_verify(other[i], NULL), VD_OK);
    vd_keyring_counts(s_keys, &checks, &hits);
    ck_assert_uint_eq(checks, 3);
    ck_assert_uint_eq(hits, 2 * S_TREE - 1);

    //  A changed envelope of the cached tree is not let through by the cache.
    s_change_tlp(other[3]);
    ck_assert_int_eq(s_verify(other[3], NULL), VD_ESIG);
    for (size_t i = 0; i < S_TREE; i++) {
        vd_envelope_destroy(&tree[i]);
        vd_envelope_destroy(&other[i]);
    }
    vd_envelope_destroy(&env);
    vdp_secret_wipe(&siem);
    vdp_secret_wipe(&cosc);
}
END_TEST

/*  ---------------------------------------------------------------------------------------------
    Loading  */

START_TEST(an_empty_directory_gives_an_empty_keyring)
{
    s_load();
    ck_assert_uint_eq(vd_keyring_size(s_keys), 0);
    vdp_secret_t siem = s_secret("comune:i726", "Comune di Siena", "toscana", "siem");
    vd_envelope_t *env = s_signed("comune:i726", "x", &siem);
    ck_assert_int_eq(s_verify(env, NULL), VD_ENOTFOUND);
    vd_envelope_destroy(&env);
    vdp_secret_wipe(&siem);
}
END_TEST

START_TEST(other_and_hidden_files_are_ignored)
{
    vdp_secret_t siem = s_secret("comune:i726", "Comune di Siena", "toscana", "siem");
    s_install(&siem.agency, "comune-i726.siem.agency");
    vdt_scratch_write(s_dir, "README", "not ZPL at all {\n");
    vdt_scratch_write(s_dir, "comune-i726.siem.agency.bak", "  broken\n");
    vdt_scratch_write(s_dir, ".comune-i726.siem.agency", "  broken\n");
    s_load();
    ck_assert_uint_eq(vd_keyring_size(s_keys), 1);
    vdp_secret_wipe(&siem);
}
END_TEST

START_TEST(a_bad_file_fails_the_load_naming_it)
{
    vdp_secret_t siem = s_secret("comune:i726", "Comune di Siena", "toscana", "siem");
    s_install(&siem.agency, "comune-i726.siem.agency");
    vdt_scratch_write(s_dir, "comune-b429.default.agency", "agency\n    org = \"comune:b429\"\n");
    s_keys = vd_keyring_load(s_dir, s_reason, sizeof s_reason);
    ck_assert_ptr_null(s_keys);
    s_assert_reason_has(vdt_scratch_path(s_dir, "comune-b429.default.agency"));
    vdp_secret_wipe(&siem);
}
END_TEST

START_TEST(a_missing_directory_fails_naming_it)
{
    s_keys = vd_keyring_load(vdt_scratch_path(s_dir, "absent"), s_reason, sizeof s_reason);
    ck_assert_ptr_null(s_keys);
    s_assert_reason_has(vdt_scratch_path(s_dir, "absent"));
    s_assert_reason_has("cannot open");
}
END_TEST

/*  The keyring refuses exactly what the broker's registry refuses, with the same words: each
    case builds a directory, and both loads must fail with one message (or both succeed).  */

static void
s_case_duplicate_key(void)
{
    vdp_secret_t a = s_secret("comune:i726", "Comune di Siena", "toscana", "siem");
    s_install(&a.agency, "comune-i726.siem.agency");
    s_install(&a.agency, "comune-i726.siem2.agency");
    vdp_secret_wipe(&a);
}
static void
s_case_duplicate_key_under_another_org(void)
{
    vdp_secret_t a = s_secret("comune:i726", "Comune di Siena", "toscana", "siem");
    vdp_secret_t b = s_secret("anci:toscana", "ANCI Toscana", "toscana", "default");
    memcpy(b.agency.curve_public, a.agency.curve_public, sizeof b.agency.curve_public);
    s_install(&b.agency, "anci-toscana.default.agency");
    s_install(&a.agency, "comune-i726.siem.agency");
    vdp_secret_wipe(&a);
    vdp_secret_wipe(&b);
}
static void
s_case_org_disagrees(void)
{
    vdp_secret_t a = s_secret("comune:i726", "Comune di Siena", "toscana", "siem");
    vdp_secret_t b = s_secret("comune:i726", "Comune di Siena", "toscana", "console");
    vdp_secret_t c = s_secret("comune:i726", "Siena", "toscana", "firewall");
    s_install(&a.agency, "comune-i726.a.agency");
    s_install(&b.agency, "comune-i726.b.agency");
    s_install(&c.agency, "comune-i726.c.agency");
    vdp_secret_wipe(&a);
    vdp_secret_wipe(&b);
    vdp_secret_wipe(&c);
}
/*  Two clashes: the registry stops at the first file in name order that clashes with one
    before it, and so must we; of one file that clashes twice, it names the key.  */
static void
s_case_org_clash_before_key_clash(void)
{
    vdp_secret_t a = s_secret("cosc:toscana", "COSC Toscana", "toscana", "a");
    vdp_secret_t b = s_secret("cosc:toscana", "COSC di Firenze", "toscana", "b");
    vdp_secret_t c = s_secret("anci:toscana", "ANCI Toscana", "toscana", "default");
    s_install(&a.agency, "a.agency");
    s_install(&b.agency, "b.agency"); // the org described two ways
    s_install(&c.agency, "c.agency");
    s_install(&c.agency, "d.agency"); // its key twice
    vdp_secret_wipe(&a);
    vdp_secret_wipe(&b);
    vdp_secret_wipe(&c);
}
static void
s_case_key_clash_before_org_clash(void)
{
    vdp_secret_t a = s_secret("cosc:toscana", "COSC Toscana", "toscana", "a");
    vdp_secret_t b = s_secret("cosc:toscana", "COSC di Firenze", "toscana", "b");
    vdp_secret_t c = s_secret("anci:toscana", "ANCI Toscana", "toscana", "default");
    s_install(&a.agency, "a.agency");
    s_install(&c.agency, "b.agency");
    s_install(&c.agency, "c.agency"); // its key twice
    s_install(&b.agency, "d.agency"); // the org described two ways
    vdp_secret_wipe(&a);
    vdp_secret_wipe(&b);
    vdp_secret_wipe(&c);
}
static void
s_case_one_file_clashing_twice(void)
{
    vdp_secret_t a = s_secret("cosc:toscana", "COSC Toscana", "toscana", "a");
    s_install(&a.agency, "a.agency");
    snprintf(a.agency.name, sizeof a.agency.name, "COSC di Firenze");
    s_install(&a.agency, "b.agency");
    vdp_secret_wipe(&a);
}
static void
s_case_secret_file_installed(void)
{
    vdp_secret_t a = s_secret("comune:i726", "Comune di Siena", "toscana", "siem");
    ck_assert_int_eq(vdp_secret_save(&a, vdt_scratch_path(s_dir, "comune-i726.siem.agency")),
                     VD_OK);
    vdp_secret_wipe(&a);
}
static void
s_case_directory_named_like_a_file(void)
{
    ck_assert_int_eq(mkdir(vdt_scratch_path(s_dir, "odd.agency"), 0755), 0);
}
static void
s_case_keys_of_one_org_agree(void)
{
    vdp_secret_t a = s_secret("cosc:sicilia-occ", "COSC", "sicilia-occ,sicilia-or", "a");
    vdp_secret_t b = s_secret("cosc:sicilia-occ", "COSC", "sicilia-or,sicilia-occ", "b");
    s_install(&a.agency, "a.agency");
    s_install(&b.agency, "b.agency");
    vdp_secret_wipe(&a);
    vdp_secret_wipe(&b);
}

static const struct {
    const char *what;
    void (*build)(void);
} s_cases[] = {
    { "a CURVE key in two files", s_case_duplicate_key },
    { "a CURVE key under two orgs", s_case_duplicate_key_under_another_org },
    { "an org described two ways", s_case_org_disagrees },
    { "an org clash before a key clash", s_case_org_clash_before_key_clash },
    { "a key clash before an org clash", s_case_key_clash_before_org_clash },
    { "one file clashing twice", s_case_one_file_clashing_twice },
    { "a secret file installed", s_case_secret_file_installed },
    { "a directory named x.agency", s_case_directory_named_like_a_file },
    { "keys of one org agreeing", s_case_keys_of_one_org_agree },
};

START_TEST(refuses_what_the_registry_refuses_in_its_words)
{
    s_cases[_i].build();
    char registry_err[512] = "";
    vdb_registry_t *registry = vdb_registry_load(s_dir, registry_err, sizeof registry_err);
    s_keys = vd_keyring_load(s_dir, s_reason, sizeof s_reason);
    ck_assert_msg((registry == NULL) == (s_keys == NULL), "%s: registry \"%s\", keyring \"%s\"",
                  s_cases[_i].what, registry ? "loaded" : registry_err,
                  s_keys ? "loaded" : s_reason);
    if (!registry)
        ck_assert_str_eq(s_reason, registry_err);
    else
        ck_assert_uint_eq(vd_keyring_size(s_keys), vdb_registry_key_count(registry));
    vdb_registry_destroy(&registry);
}
END_TEST

Suite *
vd_keyring_suite(void)
{
    Suite *suite = suite_create("vd_keyring");
    TCase *verify = tcase_create("verify");
    tcase_add_checked_fixture(verify, s_setup, s_teardown);
    tcase_add_test(verify, verified_names_the_org_and_label_of_the_key);
    tcase_add_test(verify, a_decoded_delivery_verifies);
    tcase_add_test(verify, a_revoked_key_verifies_and_is_reported_revoked);
    tcase_add_test(verify, a_key_not_in_the_keyring_is_not_found);
    tcase_add_test(verify, a_key_of_another_org_never_verifies_a_sender);
    tcase_add_loop_test(verify, a_changed_envelope_does_not_verify, 0,
                        (int)(sizeof s_changes / sizeof s_changes[0]));
    tcase_add_test(verify, a_changed_path_does_not_verify_even_after_its_tree_did);
    tcase_add_test(verify, no_signature_or_a_malformed_one_is_esig);
    tcase_add_test(verify, misuse_is_einval_not_fatal);
    suite_add_tcase(suite, verify);

    TCase *cache = tcase_create("cache");
    tcase_add_checked_fixture(cache, s_setup, s_teardown);
    tcase_add_test(cache, a_tree_costs_one_verification);
    suite_add_tcase(suite, cache);

    TCase *load = tcase_create("load");
    tcase_add_checked_fixture(load, s_setup, s_teardown);
    tcase_add_test(load, an_empty_directory_gives_an_empty_keyring);
    tcase_add_test(load, other_and_hidden_files_are_ignored);
    tcase_add_test(load, a_bad_file_fails_the_load_naming_it);
    tcase_add_test(load, a_missing_directory_fails_naming_it);
    tcase_add_loop_test(load, refuses_what_the_registry_refuses_in_its_words, 0,
                        (int)(sizeof s_cases / sizeof s_cases[0]));
    suite_add_tcase(suite, load);
    return suite;
}

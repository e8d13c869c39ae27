/*  vdp_agency suite: key generation, save/load round trips, the secret file's mode rules, one
    table test per way a file can be malformed (each with the error fragment it must produce),
    and the optional per-key rate limits (key/rate, key/bytes).  */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>
#include <sodium.h>

#include "scratch.h"
#include "suites.h"
#include "vdp_agency.h"
#include "vedetta.h"

static char s_dir[256];    // a fresh directory per test
static vdp_secret_t s_key; // a fresh key of comune:i726 per test
static char s_err[512];

static size_t
s_entries(const char *dir)
{
    DIR *handle = opendir(dir);
    ck_assert_ptr_nonnull(handle);
    size_t count = 0;
    for (struct dirent *item; (item = readdir(handle));)
        count += strcmp(item->d_name, ".") != 0 && strcmp(item->d_name, "..") != 0;
    closedir(handle);
    return count;
}

static void
s_setup(void)
{
    vdt_scratch_make(s_dir, sizeof s_dir, "vdp_agency");
    ck_assert_int_eq(vdp_secret_generate(&s_key, "comune:i726", "Comune di Siena", VDP_ROLE_COMUNE,
                                         "toscana", "default", s_err, sizeof s_err),
                     VD_OK);
    s_err[0] = '\0';
}

static void
s_teardown(void)
{
    vdp_secret_wipe(&s_key);
    vdt_scratch_remove(s_dir);
}

static void
s_write(const char *path, const char *text, size_t size, mode_t mode)
{
    FILE *file = fopen(path, "w");
    ck_assert_ptr_nonnull(file);
    ck_assert_uint_eq(fwrite(text, 1, size, file), size);
    ck_assert_int_eq(fclose(file), 0);
    ck_assert_int_eq(chmod(path, mode), 0);
}

static mode_t
s_mode(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static void
s_assert_same_agency(const vdp_agency_t *a, const vdp_agency_t *b)
{
    ck_assert_str_eq(a->org, b->org);
    ck_assert_str_eq(a->name, b->name);
    ck_assert_int_eq(a->role, b->role);
    ck_assert_uint_eq(a->jur_count, b->jur_count);
    for (size_t i = 0; i < a->jur_count; i++)
        ck_assert_str_eq(a->jur[i], b->jur[i]);
    ck_assert_str_eq(a->label, b->label);
    ck_assert_str_eq(a->curve_public, b->curve_public);
    ck_assert_str_eq(a->sign_public, b->sign_public);
    ck_assert_int_eq(a->status, b->status);
    ck_assert_uint_eq(a->rate.per_second, b->rate.per_second);
    ck_assert_uint_eq(a->rate.burst, b->rate.burst);
    ck_assert_uint_eq(a->bytes.per_second, b->bytes.per_second);
    ck_assert_uint_eq(a->bytes.burst, b->bytes.burst);
}

/*  ---------------------------------------------------------------------------------------------
    Generating keys  */

START_TEST(generate_fills_every_field)
{
    const vdp_agency_t *a = &s_key.agency;
    ck_assert_str_eq(a->org, "comune:i726");
    ck_assert_str_eq(a->name, "Comune di Siena");
    ck_assert_int_eq(a->role, VDP_ROLE_COMUNE);
    ck_assert_uint_eq(a->jur_count, 1);
    ck_assert_str_eq(a->jur[0], "toscana");
    ck_assert_str_eq(a->label, "default");
    ck_assert_int_eq(a->status, VDP_KEY_ACTIVE);
    ck_assert_uint_eq(a->rate.per_second, 0); // no limits of its own: its role's apply
    ck_assert_uint_eq(a->rate.burst, 0);
    ck_assert_uint_eq(a->bytes.per_second, 0);
    ck_assert_uint_eq(a->bytes.burst, 0);
    ck_assert_uint_eq(strlen(a->curve_public), VDP_KEY_Z85_LEN);
    ck_assert_uint_eq(strlen(a->sign_public), VDP_KEY_Z85_LEN);
    ck_assert_uint_eq(strlen(s_key.curve_secret), VDP_KEY_Z85_LEN);
    ck_assert_uint_eq(strlen(s_key.sign_secret), VDP_SIGN_SECRET_Z85_LEN);
    ck_assert_int_eq(vdp_agency_check(a, s_err, sizeof s_err), VD_OK);
}
END_TEST

START_TEST(generate_gives_fresh_keys_each_time)
{
    vdp_secret_t other;
    ck_assert_int_eq(vdp_secret_generate(&other, "comune:i726", "Comune di Siena", VDP_ROLE_COMUNE,
                                         "toscana", "default", NULL, 0),
                     VD_OK);
    ck_assert_str_ne(other.agency.curve_public, s_key.agency.curve_public);
    ck_assert_str_ne(other.agency.sign_public, s_key.agency.sign_public);
    ck_assert_str_ne(other.curve_secret, s_key.curve_secret);
    vdp_secret_wipe(&other);
}
END_TEST

START_TEST(generated_curve_keys_are_a_pair)
{
    uint8_t public_key[VDP_KEY_BYTES], secret_key[VDP_KEY_BYTES], derived[VDP_KEY_BYTES];
    ck_assert_int_eq(vdp_secret_curve_keys(&s_key, public_key, secret_key), VD_OK);
    ck_assert_int_eq(crypto_scalarmult_base(derived, secret_key), 0);
    ck_assert_mem_eq(derived, public_key, VDP_KEY_BYTES);
    uint8_t from_agency[VDP_KEY_BYTES];
    ck_assert_int_eq(vdp_agency_curve_key(&s_key.agency, from_agency), VD_OK);
    ck_assert_mem_eq(from_agency, public_key, VDP_KEY_BYTES);
}
END_TEST

START_TEST(generated_sign_key_signs_what_sign_public_verifies)
{
    uint8_t secret_key[VDP_SIGN_SECRET_BYTES], public_key[VDP_KEY_BYTES];
    uint8_t sig[crypto_sign_BYTES];
    const uint8_t text[] = "bollettino toscana";
    ck_assert_int_eq(vdp_secret_sign_key(&s_key, secret_key), VD_OK);
    ck_assert_int_eq(vdp_agency_sign_key(&s_key.agency, public_key), VD_OK);
    ck_assert_int_eq(crypto_sign_detached(sig, NULL, text, sizeof text, secret_key), 0);
    ck_assert_int_eq(crypto_sign_verify_detached(sig, text, sizeof text, public_key), 0);
    sig[0] ^= 1;
    ck_assert_int_ne(crypto_sign_verify_detached(sig, text, sizeof text, public_key), 0);
}
END_TEST

START_TEST(decode_refuses_keys_that_are_not_z85)
{
    vdp_secret_t bad = s_key;
    uint8_t key[VDP_KEY_BYTES], sign[VDP_SIGN_SECRET_BYTES];
    bad.agency.curve_public[5] = '~'; // not in the Z85 alphabet
    bad.sign_secret[79] = '\0';       // one character short
    ck_assert_int_eq(vdp_agency_curve_key(&bad.agency, key), VD_EINVAL);
    ck_assert_int_eq(vdp_secret_curve_keys(&bad, key, key), VD_EINVAL);
    ck_assert_int_eq(vdp_secret_sign_key(&bad, sign), VD_EINVAL);
    ck_assert_int_eq(vdp_agency_check(&bad.agency, s_err, sizeof s_err), VD_EINVAL);
    ck_assert_ptr_nonnull(strstr(s_err, "key/curve-public"));
    vdp_secret_wipe(&bad);
}
END_TEST

static const struct {
    const char *org;
    const char *name;
    vdp_role_t role;
    const char *jur;
    const char *label;
    const char *fragment;
} s_bad_generate[] = {
    { "comune:I726", "Siena", VDP_ROLE_COMUNE, "toscana", "default", "agency/org" },
    { "comune:i726", "Siena", VDP_ROLE_COSC, "toscana", "default", "does not match org" },
    { "comune:i726", "Siena", VDP_ROLE_NONE, "toscana", "default", "unknown role" },
    { "cnaipic", "CNAIPIC", VDP_ROLE_CNAIPIC, "toscana", "default", "exactly \"national\"" },
    { "cosc:toscana", "COSC", VDP_ROLE_COSC, "umbria", "default", "its own jurisdiction" },
    { "comune:i726", "Siena", VDP_ROLE_COMUNE, "national", "default", "reserved for cnaipic" },
    { "comune:i726", "Siena", VDP_ROLE_COMUNE, "toscana", "Default", "key/label" },
    { "comune:i726", "Siena \"centro\"", VDP_ROLE_COMUNE, "toscana", "default", "agency/name" },
    { "comune:i726", "", VDP_ROLE_COMUNE, "toscana", "default", "agency/name" },
};

START_TEST(generate_refuses_bad_arguments)
{
    vdp_secret_t out;
    ck_assert_int_eq(vdp_secret_generate(&out, s_bad_generate[_i].org, s_bad_generate[_i].name,
                                         s_bad_generate[_i].role, s_bad_generate[_i].jur,
                                         s_bad_generate[_i].label, s_err, sizeof s_err),
                     VD_EINVAL);
    ck_assert_msg(strstr(s_err, s_bad_generate[_i].fragment), "error \"%s\" lacks \"%s\"", s_err,
                  s_bad_generate[_i].fragment);
    //  Nothing of the refused key is left behind.
    static const vdp_secret_t zero;
    ck_assert_mem_eq(&out, &zero, sizeof out);
}
END_TEST

/*  ---------------------------------------------------------------------------------------------
    Saving and loading files  */

START_TEST(save_then_load_round_trips_both_files)
{
    const char *secret_path = strdup(vdt_scratch_path(s_dir, "comune-i726.default.secret"));
    const char *public_path = strdup(vdt_scratch_path(s_dir, "comune-i726.default.agency"));
    ck_assert_int_eq(vdp_secret_save(&s_key, secret_path), VD_OK);
    ck_assert_int_eq(vdp_agency_save(&s_key.agency, public_path), VD_OK);
    ck_assert_uint_eq(s_mode(secret_path), 0600);
    ck_assert_uint_eq(s_mode(public_path), 0644);

    vdp_secret_t secret;
    ck_assert_int_eq(vdp_secret_load(secret_path, &secret, s_err, sizeof s_err), VD_OK);
    s_assert_same_agency(&secret.agency, &s_key.agency);
    ck_assert_str_eq(secret.curve_secret, s_key.curve_secret);
    ck_assert_str_eq(secret.sign_secret, s_key.sign_secret);
    vdp_secret_wipe(&secret);

    vdp_agency_t agency;
    ck_assert_int_eq(vdp_agency_load(public_path, &agency, s_err, sizeof s_err), VD_OK);
    s_assert_same_agency(&agency, &s_key.agency);
    free((void *)secret_path);
    free((void *)public_path);
}
END_TEST

START_TEST(round_trip_keeps_several_jurisdictions_utf8_names_and_revocation)
{
    vdp_secret_t key;
    ck_assert_int_eq(vdp_secret_generate(&key, "anci:sicilia", "ANCI Sicilia – Sant'Agata Forlì",
                                         VDP_ROLE_ANCI, "sicilia-occ, sicilia-or", "mailer", s_err,
                                         sizeof s_err),
                     VD_OK);
    key.agency.status = VDP_KEY_REVOKED;
    const char *path = vdt_scratch_path(s_dir, "anci-sicilia.mailer.agency");
    ck_assert_int_eq(vdp_agency_save(&key.agency, path), VD_OK);
    vdp_agency_t agency;
    ck_assert_int_eq(vdp_agency_load(path, &agency, s_err, sizeof s_err), VD_OK);
    s_assert_same_agency(&agency, &key.agency);
    ck_assert_uint_eq(agency.jur_count, 2);
    ck_assert_str_eq(agency.jur[1], "sicilia-or");
    ck_assert_int_eq(agency.status, VDP_KEY_REVOKED);
    ck_assert(vdp_agency_holds(&agency, "sicilia-occ"));
    ck_assert(!vdp_agency_holds(&agency, "toscana"));
    vdp_secret_wipe(&key);
}
END_TEST

START_TEST(public_file_is_text_with_its_header)
{
    const char *path = vdt_scratch_path(s_dir, "x.agency");
    ck_assert_int_eq(vdp_agency_save(&s_key.agency, path), VD_OK);
    char text[4096] = "";
    FILE *file = fopen(path, "r");
    ck_assert_ptr_nonnull(file);
    size_t size = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    ck_assert_uint_gt(size, 0);
    ck_assert_ptr_nonnull(strstr(text, "#   vedetta agency key: public"));
    ck_assert_ptr_nonnull(strstr(text, "\nagency\n    org = \"comune:i726\"\n"));
    ck_assert_ptr_nonnull(strstr(text, "    jurisdiction = \"toscana\"\n"));
    ck_assert_ptr_nonnull(strstr(text, "\nkey\n    label = \"default\"\n"));
    ck_assert_ptr_nonnull(strstr(text, s_key.agency.curve_public));
    ck_assert_ptr_null(strstr(text, "secret ="));
    ck_assert_ptr_null(strstr(text, s_key.curve_secret));
    //  limits that are not set are not written
    ck_assert_ptr_null(strstr(text, "rate ="));
    ck_assert_ptr_null(strstr(text, "bytes ="));
    ck_assert_ptr_null(memchr(text, '\0', size));
}
END_TEST

START_TEST(public_save_replaces_atomically_leaving_no_temporary)
{
    const char *path = strdup(vdt_scratch_path(s_dir, "x.agency"));
    ck_assert_int_eq(vdp_agency_save(&s_key.agency, path), VD_OK);
    vdp_agency_t revoked = s_key.agency;
    revoked.status = VDP_KEY_REVOKED;
    ck_assert_int_eq(vdp_agency_save(&revoked, path), VD_OK);
    vdp_agency_t agency;
    ck_assert_int_eq(vdp_agency_load(path, &agency, s_err, sizeof s_err), VD_OK);
    ck_assert_int_eq(agency.status, VDP_KEY_REVOKED);
    ck_assert_uint_eq(s_entries(s_dir), 1);
    free((void *)path);
}
END_TEST

START_TEST(save_refuses_an_invalid_agency)
{
    vdp_agency_t bad = s_key.agency;
    strcpy(bad.org, "cosc:toscana"); // the role still says comune
    ck_assert_int_eq(vdp_agency_save(&bad, vdt_scratch_path(s_dir, "x.agency")), VD_EINVAL);
    ck_assert_int_ne(access(vdt_scratch_path(s_dir, "x.agency"), F_OK), 0);
    vdp_secret_t mismatched = s_key;
    mismatched.curve_secret[0] = mismatched.curve_secret[0] == 'a' ? 'b' : 'a';
    ck_assert_int_eq(vdp_secret_save(&mismatched, vdt_scratch_path(s_dir, "x.secret")), VD_EINVAL);
    ck_assert_int_ne(access(vdt_scratch_path(s_dir, "x.secret"), F_OK), 0);
    vdp_secret_wipe(&mismatched);
}
END_TEST

START_TEST(secret_save_refuses_to_overwrite)
{
    const char *path = strdup(vdt_scratch_path(s_dir, "x.secret"));
    ck_assert_int_eq(vdp_secret_save(&s_key, path), VD_OK);
    vdp_secret_t other;
    ck_assert_int_eq(vdp_secret_generate(&other, "comune:b429", "Comune di Caltanissetta",
                                         VDP_ROLE_COMUNE, "sicilia-occ", "default", NULL, 0),
                     VD_OK);
    errno = 0;
    ck_assert_int_eq(vdp_secret_save(&other, path), VD_EIO);
    ck_assert_int_eq(errno, EEXIST);
    vdp_secret_t loaded;
    ck_assert_int_eq(vdp_secret_load(path, &loaded, s_err, sizeof s_err), VD_OK);
    ck_assert_str_eq(loaded.curve_secret, s_key.curve_secret); // the first key survives
    vdp_secret_wipe(&loaded);
    vdp_secret_wipe(&other);
    free((void *)path);
}
END_TEST

START_TEST(secret_save_refuses_to_follow_a_symlink)
{
    const char *target = strdup(vdt_scratch_path(s_dir, "target"));
    const char *link = strdup(vdt_scratch_path(s_dir, "link.secret"));
    ck_assert_int_eq(symlink(target, link), 0);
    ck_assert_int_eq(vdp_secret_save(&s_key, link), VD_EIO);
    ck_assert_int_ne(access(target, F_OK), 0);
    free((void *)target);
    free((void *)link);
}
END_TEST

static const mode_t s_open_modes[] = { 0640, 0604, 0660, 0644, 0610, 0601, 0700 | 0020 };

START_TEST(secret_load_refuses_group_or_other_access)
{
    const char *path = strdup(vdt_scratch_path(s_dir, "x.secret"));
    ck_assert_int_eq(vdp_secret_save(&s_key, path), VD_OK);
    ck_assert_int_eq(chmod(path, s_open_modes[_i]), 0);
    vdp_secret_t loaded;
    ck_assert_int_eq(vdp_secret_load(path, &loaded, s_err, sizeof s_err), VD_EACCES);
    ck_assert_ptr_nonnull(strstr(s_err, path));
    ck_assert_ptr_nonnull(strstr(s_err, "chmod 600"));
    ck_assert_ptr_null(strstr(s_err, s_key.curve_secret));
    //  The fix the message names works.
    ck_assert_int_eq(chmod(path, 0600), 0);
    ck_assert_int_eq(vdp_secret_load(path, &loaded, s_err, sizeof s_err), VD_OK);
    vdp_secret_wipe(&loaded);
    free((void *)path);
}
END_TEST

START_TEST(secret_load_accepts_owner_only_modes)
{
    const char *path = strdup(vdt_scratch_path(s_dir, "x.secret"));
    ck_assert_int_eq(vdp_secret_save(&s_key, path), VD_OK);
    ck_assert_int_eq(chmod(path, 0400), 0);
    vdp_secret_t loaded;
    ck_assert_int_eq(vdp_secret_load(path, &loaded, s_err, sizeof s_err), VD_OK);
    vdp_secret_wipe(&loaded);
    free((void *)path);
}
END_TEST

START_TEST(secret_load_refuses_what_is_not_a_regular_file)
{
    const char *path = strdup(vdt_scratch_path(s_dir, "d.secret"));
    ck_assert_int_eq(mkdir(path, 0700), 0);
    vdp_secret_t loaded;
    ck_assert_int_eq(vdp_secret_load(path, &loaded, s_err, sizeof s_err), VD_EACCES);
    ck_assert_ptr_nonnull(strstr(s_err, "not a regular file"));
    free((void *)path);
}
END_TEST

START_TEST(load_of_a_missing_file_is_an_io_error_naming_it)
{
    const char *path = strdup(vdt_scratch_path(s_dir, "absent.agency"));
    vdp_agency_t agency;
    vdp_secret_t secret;
    ck_assert_int_eq(vdp_agency_load(path, &agency, s_err, sizeof s_err), VD_EIO);
    ck_assert_ptr_nonnull(strstr(s_err, path));
    ck_assert_int_eq(vdp_secret_load(path, &secret, s_err, sizeof s_err), VD_EIO);
    ck_assert_ptr_nonnull(strstr(s_err, path));
    free((void *)path);
}
END_TEST

START_TEST(secret_file_is_refused_as_a_public_file)
{
    const char *path = strdup(vdt_scratch_path(s_dir, "wrong.agency"));
    ck_assert_int_eq(vdp_secret_save(&s_key, path), VD_OK);
    vdp_agency_t agency;
    ck_assert_int_eq(vdp_agency_load(path, &agency, s_err, sizeof s_err), VD_ECONFIG);
    ck_assert_ptr_nonnull(strstr(s_err, path));
    ck_assert_ptr_nonnull(strstr(s_err, "key/curve-secret: a secret key in a public agency file"));
    ck_assert_ptr_null(strstr(s_err, s_key.curve_secret));
    free((void *)path);
}
END_TEST

START_TEST(public_file_is_refused_as_a_secret_file)
{
    const char *path = strdup(vdt_scratch_path(s_dir, "x.agency"));
    ck_assert_int_eq(vdp_agency_save(&s_key.agency, path), VD_OK);
    ck_assert_int_eq(chmod(path, 0600), 0);
    vdp_secret_t secret;
    ck_assert_int_eq(vdp_secret_load(path, &secret, s_err, sizeof s_err), VD_ECONFIG);
    ck_assert_ptr_nonnull(strstr(s_err, "key/curve-secret: missing"));
    free((void *)path);
}
END_TEST

START_TEST(secret_with_a_foreign_secret_key_is_refused)
{
    vdp_secret_t other;
    ck_assert_int_eq(vdp_secret_generate(&other, "comune:i726", "Comune di Siena", VDP_ROLE_COMUNE,
                                         "toscana", "default", NULL, 0),
                     VD_OK);
    //  Write by hand: vdp_secret_save refuses mismatched keys itself.
    char text[1024];
    for (int which = 0; which < 2; which++) {
        snprintf(text, sizeof text,
                 "agency\n    org = comune:i726\n    name = \"Comune di Siena\"\n"
                 "    role = comune\n    jurisdiction = toscana\n"
                 "key\n    label = default\n    curve-public = \"%s\"\n    sign-public = \"%s\"\n"
                 "    status = active\n    curve-secret = \"%s\"\n    sign-secret = \"%s\"\n",
                 s_key.agency.curve_public, s_key.agency.sign_public,
                 which == 0 ? other.curve_secret : s_key.curve_secret,
                 which == 1 ? other.sign_secret : s_key.sign_secret);
        vdp_secret_t secret;
        ck_assert_int_eq(
            vdp_secret_parse(text, strlen(text), "t.secret", &secret, s_err, sizeof s_err),
            VD_ECONFIG);
        ck_assert_ptr_nonnull(strstr(s_err, which == 0 ? "key/curve-secret: does not match"
                                                       : "key/sign-secret: does not match"));
        ck_assert_ptr_null(strstr(s_err, other.curve_secret));
        static const vdp_secret_t zero;
        ck_assert_mem_eq(&secret, &zero, sizeof secret); // wiped on error
    }
    vdp_secret_wipe(&other);
}
END_TEST

/*  ---------------------------------------------------------------------------------------------
    Parsing: every field is checked. Texts are built from these fields, with overrides.  */

enum { S_FIELDS = 8 };
static const char *const s_field_names[S_FIELDS] = { "org",          "name",  "role",
                                                     "jurisdiction", "label", "curve-public",
                                                     "sign-public",  "status" };

//  Writes a public file whose fields are the test key's, except those in `set` (name, value;
//  value NULL drops the field); names not in the list go at the end of `key`.
static size_t
s_text(char *out, size_t size, const char *const set[][2], size_t set_count)
{
    const vdp_agency_t *a = &s_key.agency;
    const char *values[S_FIELDS] = { a->org,   a->name,         "comune",       "toscana",
                                     a->label, a->curve_public, a->sign_public, "active" };
    bool used[8] = { false };
    for (size_t f = 0; f < S_FIELDS; f++) {
        for (size_t k = 0; k < set_count; k++) {
            if (strcmp(set[k][0], s_field_names[f]) == 0) {
                values[f] = set[k][1];
                used[k] = true;
            }
        }
    }
    size_t n = 0;
    n += (size_t)snprintf(out + n, size - n, "#   test agency\n");
    for (size_t f = 0; f < S_FIELDS; f++) {
        if (f == 0)
            n += (size_t)snprintf(out + n, size - n, "agency\n");
        if (f == 4)
            n += (size_t)snprintf(out + n, size - n, "key\n");
        if (values[f])
            n += (size_t)snprintf(out + n, size - n, "    %s = \"%s\"\n", s_field_names[f],
                                  values[f]);
    }
    for (size_t k = 0; k < set_count; k++)
        if (!used[k])
            n += (size_t)snprintf(out + n, size - n, "    %s = \"%s\"\n", set[k][0], set[k][1]);
    ck_assert_uint_lt(n, size);
    return n;
}

static const char s_long_label[] = "abcdefghijklmnopqrstuvwxyz0123456";     // 33 bytes
static const char s_bad_z85[] = "~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~"; // 40, not Z85

static const struct {
    const char *set[3][2];
    const char *fragment;
} s_bad_fields[] = {
    { { { "org", "comune:I726" } }, "agency/org: \"comune:I726\" is not a valid org id" },
    { { { "org", "comune:" } }, "agency/org" },
    { { { "org", "regione:toscana" } }, "agency/org" },
    { { { "org", NULL } }, "agency/org: missing" },
    { { { "org", "cosc:toscana" } }, "agency/role: \"comune\" does not match org cosc:toscana" },
    { { { "org", "cnaipic" } }, "agency/role: \"comune\" does not match org cnaipic" },
    { { { "name", "" } }, "agency/name" },
    { { { "name", "Comune\x01" } }, "agency/name" },
    { { { "name", "Comune \xc3\x28" } }, "agency/name" },     // broken UTF-8
    { { { "name", "Comune \xc0\xaf" } }, "agency/name" },     // overlong '/'
    { { { "name", "Comune \xed\xa0\x80" } }, "agency/name" }, // a surrogate
    { { { "role", "sindaco" } }, "agency/role: unknown role \"sindaco\"" },
    { { { "role", "cosc" } }, "agency/role: \"cosc\" does not match org comune:i726" },
    { { { "role", "none" } }, "agency/role: unknown role" },
    { { { "jurisdiction", "" } }, "agency/jurisdiction: empty item" },
    { { { "jurisdiction", "toscana,,umbria" } }, "agency/jurisdiction: empty item" },
    { { { "jurisdiction", "Toscana" } }, "agency/jurisdiction: \"Toscana\" is not a valid" },
    { { { "jurisdiction", "tos cana" } }, "agency/jurisdiction: \"tos cana\" is not a valid" },
    { { { "jurisdiction", "toscana,toscana" } }, "agency/jurisdiction: \"toscana\" listed twice" },
    { { { "jurisdiction", "a,b,c,d,e" } }, "agency/jurisdiction: more than 4" },
    { { { "jurisdiction", "national" } }, "\"national\" is reserved for cnaipic" },
    { { { "org", "cnaipic" }, { "role", "cnaipic" }, { "jurisdiction", "toscana" } },
      "cnaipic holds exactly \"national\"" },
    { { { "org", "cnaipic" }, { "role", "cnaipic" }, { "jurisdiction", "national,toscana" } },
      "cnaipic holds exactly \"national\"" },
    { { { "org", "cosc:toscana" }, { "role", "cosc" }, { "jurisdiction", "umbria" } },
      "cosc:toscana must hold its own jurisdiction \"toscana\"" },
    { { { "org", "broker:toscana" }, { "role", "broker" }, { "jurisdiction", "umbria" } },
      "broker:toscana must hold its own jurisdiction" },
    { { { "org", "anci:toscana" }, { "role", "anci" }, { "jurisdiction", "national" } },
      "reserved for cnaipic" },
    { { { "label", "Default" } }, "key/label: \"Default\" is not a valid label" },
    { { { "label", "" } }, "key/label" },
    { { { "label", "si em" } }, "key/label" },
    { { { "label", s_long_label } }, "key/label: longer than 32 bytes" },
    { { { "label", NULL } }, "key/label: missing" },
    { { { "curve-public", "short" } }, "key/curve-public: not a Z85-encoded 32-byte key" },
    { { { "curve-public", s_bad_z85 } }, "key/curve-public: not a Z85" },
    { { { "curve-public", NULL } }, "key/curve-public: missing" },
    { { { "sign-public", "0000000000" } }, "key/sign-public: not a Z85" },
    { { { "sign-public", s_bad_z85 } }, "key/sign-public" },
    { { { "status", "suspended" } }, "key/status: \"suspended\" is neither active nor revoked" },
    { { { "status", "" } }, "key/status" },
    { { { "status", NULL } }, "key/status: missing" },
    { { { "colour", "blue" } }, "key/colour: unknown field" },
    { { { "curve-secret", "x" } }, "key/curve-secret: a secret key in a public agency file" },
    { { { "rate", "0/s" } }, "key/rate: \"0/s\": rate is 0" },
    { { { "rate", "" } }, "key/rate: \"\": expected <rate>/s+<burst>" },
    { { { "rate", "200 / s" } }, "key/rate: \"200 / s\": expected <rate>/s+<burst>" },
    { { { "rate", "2000/s+200" } }, "key/rate: \"2000/s+200\": burst 200 is below the rate 2000" },
    { { { "rate", "200K/s" } }, "key/rate: \"200K/s\": unknown suffix 'K'" },
    { { { "rate", "1000000000001/s" } }, "key/rate: \"1000000000001/s\": rate too large" },
    { { { "bytes", "4M/s+0" } }, "key/bytes: \"4M/s+0\": burst is 0" },
    { { { "bytes", "4M/s+1M" } }, "key/bytes: \"4M/s+1M\": burst 1048576 is below the rate" },
    { { { "bytes", "1024G/s" } }, "key/bytes: \"1024G/s\": rate too large" },
    { { { "bytes", "016M/s" } }, "key/bytes: \"016M/s\": rate has a leading zero" },
    { { { "rate", "1/s" }, { "rate", "2/s" } }, "key/rate: appears twice" },
    { { { "bytes", "1M/s" }, { "rate", "1/s" }, { "bytes", "1M/s" } }, "key/bytes: appears twice" },
    { { { "sign-secret", "x" } }, "key/sign-secret: a secret key in a public agency file" },
};

START_TEST(parse_refuses_each_bad_field)
{
    size_t set_count = 0;
    while (set_count < 3 && s_bad_fields[_i].set[set_count][0])
        set_count++;
    char text[2048];
    size_t size = s_text(text, sizeof text, s_bad_fields[_i].set, set_count);
    vdp_agency_t agency;
    ck_assert_int_eq(vdp_agency_parse(text, size, "t.agency", &agency, s_err, sizeof s_err),
                     VD_ECONFIG);
    ck_assert_msg(strncmp(s_err, "t.agency: ", 10) == 0, "error \"%s\" does not name the file",
                  s_err);
    ck_assert_msg(strstr(s_err, s_bad_fields[_i].fragment), "error \"%s\" lacks \"%s\"", s_err,
                  s_bad_fields[_i].fragment);
}
END_TEST

static const struct {
    const char *set[3][2];
} s_good_fields[] = {
    { { { "org", "cnaipic" }, { "role", "cnaipic" }, { "jurisdiction", "national" } } },
    { { { "org", "cosc:sicilia-occ" }, { "role", "cosc" }, { "jurisdiction", "sicilia-occ" } } },
    { { { "org", "anci:sicilia" },
        { "role", "anci" },
        { "jurisdiction", "sicilia-occ, sicilia-or" } } },
    { { { "org", "broker:national" }, { "role", "broker" }, { "jurisdiction", "national" } } },
    { { { "org", "broker:toscana" }, { "role", "broker" }, { "jurisdiction", "toscana,umbria" } } },
    { { { "name", "Comune di Forl\xc3\xac" } } },
    { { { "name", "Comune di Sant'Agata di Militello" } } },
    { { { "name", "\xf0\x9f\x9a\xa8 Allerta" } } },
    { { { "jurisdiction", "toscana,umbria,lazio,marche" } } },
    { { { "label", "siem-01" } } },
    { { { "status", "revoked" } } },
    { { { "rate", "200/s+2000" } } },
    { { { "bytes", "4M/s+16M" }, { "rate", "1/s" } } },
};

START_TEST(parse_accepts_each_good_variant)
{
    size_t set_count = 0;
    while (set_count < 3 && s_good_fields[_i].set[set_count][0])
        set_count++;
    char text[2048];
    size_t size = s_text(text, sizeof text, s_good_fields[_i].set, set_count);
    vdp_agency_t agency;
    ck_assert_msg(vdp_agency_parse(text, size, "t.agency", &agency, s_err, sizeof s_err) == VD_OK,
                  "refused: %s", s_err);
    for (size_t k = 0; k < set_count; k++) {
        const char *field = s_good_fields[_i].set[k][0];
        const char *value = s_good_fields[_i].set[k][1];
        if (strcmp(field, "org") == 0)
            ck_assert_str_eq(agency.org, value);
        else if (strcmp(field, "name") == 0)
            ck_assert_str_eq(agency.name, value);
        else if (strcmp(field, "label") == 0)
            ck_assert_str_eq(agency.label, value);
        else if (strcmp(field, "role") == 0)
            ck_assert_str_eq(vdp_role_name(agency.role), value);
        else if (strcmp(field, "status") == 0)
            ck_assert_int_eq(agency.status, VDP_KEY_REVOKED);
    }
    ck_assert_int_eq(vdp_agency_check(&agency, s_err, sizeof s_err), VD_OK);
}
END_TEST

//  Texts that are not the ZPL zconfig accepts, or not the structure of an agency file.
static const struct {
    const char *text;
    const char *fragment;
} s_bad_syntax[] = {
    { "agency\n  org = \"comune:i726\"\n", "line 2: indent by multiples of 4 spaces" },
    { "agency\n        org = \"comune:i726\"\n", "line 2: indented deeper than its section" },
    { "    agency\n", "line 1: indented deeper" },
    { "agency\n    org = \"comune:i726\n", "line 2: missing closing quote" },
    { "agency\n    org = \"comune:i726\" junk\n",
      "line 2: unexpected text after the quoted value" },
    { "agency extra\n", "line 1: unexpected text after the name" },
    { "\tagency\n", "line 1: expected a name" },
    { "agency\n    = 1\n", "line 2: expected a name" },
    { "/agency\n", "line 1: '/' may not start or end a name" },
    { "  # a comment indented by two\n", "line 1: indent by multiples of 4 spaces" },
    { "", "agency/org: missing" },
    { "# only a comment\n", "agency/org: missing" },
    { "agency\nagency\n", "section agency appears twice" },
    { "sezione\n", "unknown section \"sezione\"" },
    { "org = \"comune:i726\"\n", "unknown section \"org\"" },
    { "agency = 1\n", "section agency takes no value" },
    { "agency\n    org = \"comune:i726\"\n        sub = 1\n", "agency/org: takes no sub-items" },
    { "agency\n    org = \"comune:i726\"\n    org = \"comune:b429\"\n",
      "agency/org: appears twice" },
    { "agency\n    name = \"x\"\n", "agency/org: missing" },
    { "agency\n    rate = \"200/s\"\n", "agency/rate: unknown field" },
    { "agency\n    org = \"comune:i726\"\n    name = \"Siena\"\n    role = comune\n"
      "    jurisdiction = toscana\n",
      "key/label: missing" },
};

START_TEST(parse_refuses_each_bad_syntax)
{
    const char *text = s_bad_syntax[_i].text;
    vdp_agency_t agency;
    ck_assert_int_eq(vdp_agency_parse(text, strlen(text), "t.agency", &agency, s_err, sizeof s_err),
                     VD_ECONFIG);
    ck_assert_msg(strncmp(s_err, "t.agency: ", 10) == 0, "error \"%s\" does not name the file",
                  s_err);
    ck_assert_msg(strstr(s_err, s_bad_syntax[_i].fragment), "error \"%s\" lacks \"%s\"", s_err,
                  s_bad_syntax[_i].fragment);
}
END_TEST

START_TEST(parse_refuses_nul_bytes_and_long_lines_and_large_files)
{
    char text[2048];
    size_t size = s_text(text, sizeof text, NULL, 0);
    vdp_agency_t agency;
    ck_assert_int_eq(vdp_agency_parse(text, size, "t.agency", &agency, s_err, sizeof s_err), VD_OK);

    char *copy = malloc(VDP_AGENCY_MAX_FILE + 2);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, text, size);
    copy[20] = '\0';
    ck_assert_int_eq(vdp_agency_parse(copy, size, "t.agency", &agency, s_err, sizeof s_err),
                     VD_ECONFIG);
    ck_assert_ptr_nonnull(strstr(s_err, "holds a NUL byte"));

    //  A comment of 1025 bytes: zconfig would cut it at 1024 and read the rest as a new line.
    memcpy(copy, text, size);
    memset(copy + size, '#', 1025);
    copy[size + 1025] = '\n';
    ck_assert_int_eq(vdp_agency_parse(copy, size + 1026, "t.agency", &agency, s_err, sizeof s_err),
                     VD_ECONFIG);
    ck_assert_ptr_nonnull(strstr(s_err, "longer than 1024 bytes"));

    memcpy(copy, text, size);
    memset(copy + size, '\n', VDP_AGENCY_MAX_FILE + 1 - size);
    ck_assert_int_eq(
        vdp_agency_parse(copy, VDP_AGENCY_MAX_FILE, "t.agency", &agency, s_err, sizeof s_err),
        VD_OK);
    ck_assert_int_eq(
        vdp_agency_parse(copy, VDP_AGENCY_MAX_FILE + 1, "t.agency", &agency, s_err, sizeof s_err),
        VD_ECONFIG);
    ck_assert_ptr_nonnull(strstr(s_err, "larger than"));
    free(copy);
}
END_TEST

START_TEST(parse_accepts_zpl_variants)
{
    const vdp_agency_t *a = &s_key.agency;
    char text[2048];
    //  Unquoted and single-quoted values, comments after values, blank lines, CRLF endings.
    int size = snprintf(text, sizeof text,
                        "# header\r\n\r\nagency\r\n    org = comune:i726   # Siena\r\n"
                        "    name = 'Comune di Siena'  # quoted\r\n    role=comune\r\n"
                        "\r\n    jurisdiction = \"toscana\"\r\n    # note\r\nkey\r\n"
                        "    label = default\r\n    curve-public = \"%s\"\r\n"
                        "    sign-public = '%s'\r\n    status = active",
                        a->curve_public, a->sign_public);
    ck_assert_int_lt(size, (int)sizeof text);
    vdp_agency_t agency;
    ck_assert_msg(vdp_agency_parse(text, (size_t)size, "t.agency", &agency, s_err, sizeof s_err) ==
                      VD_OK,
                  "refused: %s", s_err);
    s_assert_same_agency(&agency, a);
}
END_TEST

START_TEST(load_error_names_the_file_and_field)
{
    const char *path = strdup(vdt_scratch_path(s_dir, "comune-i726.default.agency"));
    char text[2048];
    const char *const set[][2] = { { "role", "cosc" } };
    size_t size = s_text(text, sizeof text, set, 1);
    s_write(path, text, size, 0644);
    vdp_agency_t agency;
    ck_assert_int_eq(vdp_agency_load(path, &agency, s_err, sizeof s_err), VD_ECONFIG);
    char expected[256];
    snprintf(expected, sizeof expected, "%s: agency/role:", path);
    ck_assert_msg(strncmp(s_err, expected, strlen(expected)) == 0, "error \"%s\"", s_err);
    free((void *)path);
}
END_TEST

START_TEST(check_refuses_unterminated_fields)
{
    vdp_agency_t agency = s_key.agency;
    memset(agency.label, 'a', sizeof agency.label);
    ck_assert_int_eq(vdp_agency_check(&agency, s_err, sizeof s_err), VD_EINVAL);
    ck_assert_ptr_nonnull(strstr(s_err, "key/label"));
    agency = s_key.agency;
    memset(agency.org, 'a', sizeof agency.org);
    ck_assert_int_eq(vdp_agency_check(&agency, s_err, sizeof s_err), VD_EINVAL);
    ck_assert_ptr_nonnull(strstr(s_err, "agency/org"));
    agency = s_key.agency;
    agency.jur_count = VDP_MAX_JUR + 1;
    ck_assert_int_eq(vdp_agency_check(&agency, s_err, sizeof s_err), VD_EINVAL);
    ck_assert_ptr_nonnull(strstr(s_err, "agency/jurisdiction"));
    agency = s_key.agency;
    agency.status = 0;
    ck_assert_int_eq(vdp_agency_check(&agency, NULL, 0), VD_EINVAL);
}
END_TEST

/*  ---------------------------------------------------------------------------------------------
    Rate limits: key/rate and key/bytes, optional in both files, override the role's defaults  */

//  Reads a whole (small) file into out[size], NUL-terminated.
static void
s_read(const char *path, char *out, size_t size)
{
    FILE *file = fopen(path, "r");
    ck_assert_ptr_nonnull(file);
    size_t got = fread(out, 1, size - 1, file);
    ck_assert_int_eq(fclose(file), 0);
    ck_assert_uint_lt(got, size - 1);
    out[got] = '\0';
}

static const struct {
    const char *set[2][2];
    vdp_rate_t rate;
    vdp_rate_t bytes;
} s_limit_files[] = {
    { { { NULL } }, { 0, 0 }, { 0, 0 } }, // neither: not set
    { { { "rate", "200/s+2000" }, { "bytes", "4M/s+16M" } },
      { 200, 2000 },
      { 4ull << 20, 16ull << 20 } },
    { { { "bytes", "10k/s" }, { "rate", "1000000000000/s" } }, // either order
      { VDP_RATE_MAX, VDP_RATE_MAX },
      { 10240, 10240 } },
    { { { "rate", "50/s" } }, { 50, 50 }, { 0, 0 } },
    { { { "bytes", "1G/s+2G" } }, { 0, 0 }, { 1ull << 30, 2ull << 30 } },
};

START_TEST(rate_limits_load_with_both_one_or_none)
{
    size_t set_count = 0;
    while (set_count < 2 && s_limit_files[_i].set[set_count][0])
        set_count++;
    char text[2048];
    size_t size = s_text(text, sizeof text, s_limit_files[_i].set, set_count);
    const char *path = strdup(vdt_scratch_path(s_dir, "x.agency"));
    s_write(path, text, size, 0644);
    vdp_agency_t agency;
    ck_assert_msg(vdp_agency_load(path, &agency, s_err, sizeof s_err) == VD_OK, "refused: %s",
                  s_err);
    ck_assert_uint_eq(agency.rate.per_second, s_limit_files[_i].rate.per_second);
    ck_assert_uint_eq(agency.rate.burst, s_limit_files[_i].rate.burst);
    ck_assert_uint_eq(agency.bytes.per_second, s_limit_files[_i].bytes.per_second);
    ck_assert_uint_eq(agency.bytes.burst, s_limit_files[_i].bytes.burst);
    ck_assert_int_eq(vdp_agency_check(&agency, s_err, sizeof s_err), VD_OK);
    free((void *)path);
}
END_TEST

START_TEST(rate_limits_accept_unquoted_values_and_comments)
{
    char text[2048];
    size_t size = s_text(text, sizeof text, NULL, 0);
    int more = snprintf(text + size, sizeof text - size,
                        "    rate = 2000/s+10000   # the SIEM bursts in an incident\n"
                        "    bytes = '16M/s+64M'\n");
    ck_assert_int_lt(more, (int)(sizeof text - size));
    vdp_agency_t agency;
    ck_assert_msg(vdp_agency_parse(text, size + (size_t)more, "t.agency", &agency, s_err,
                                   sizeof s_err) == VD_OK,
                  "refused: %s", s_err);
    ck_assert_uint_eq(agency.rate.per_second, 2000);
    ck_assert_uint_eq(agency.rate.burst, 10000);
    ck_assert_uint_eq(agency.bytes.per_second, 16ull << 20);
    ck_assert_uint_eq(agency.bytes.burst, 64ull << 20);
}
END_TEST

START_TEST(rate_limits_round_trip_through_both_files)
{
    vdp_secret_t key = s_key;
    key.agency.rate = (vdp_rate_t){ 200, 2000 };
    key.agency.bytes = (vdp_rate_t){ 4ull << 20, 16ull << 20 };
    const char *secret_path = strdup(vdt_scratch_path(s_dir, "x.secret"));
    const char *public_path = strdup(vdt_scratch_path(s_dir, "x.agency"));
    ck_assert_int_eq(vdp_secret_save(&key, secret_path), VD_OK);
    ck_assert_int_eq(vdp_agency_save(&key.agency, public_path), VD_OK);

    vdp_secret_t secret;
    ck_assert_msg(vdp_secret_load(secret_path, &secret, s_err, sizeof s_err) == VD_OK, "%s", s_err);
    s_assert_same_agency(&secret.agency, &key.agency);
    vdp_secret_wipe(&secret);
    vdp_agency_t agency;
    ck_assert_msg(vdp_agency_load(public_path, &agency, s_err, sizeof s_err) == VD_OK, "%s", s_err);
    s_assert_same_agency(&agency, &key.agency);

    //  Written after status, in the parser's own syntax, before the secret keys.
    char text[4096];
    s_read(public_path, text, sizeof text);
    ck_assert_ptr_nonnull(strstr(text, "    status = \"active\"\n"
                                       "    rate = \"200/s+2000\"\n"
                                       "    bytes = \"4194304/s+16777216\"\n"));
    s_read(secret_path, text, sizeof text);
    ck_assert_ptr_nonnull(strstr(text, "    status = \"active\"\n"
                                       "    rate = \"200/s+2000\"\n"
                                       "    bytes = \"4194304/s+16777216\"\n"
                                       "    curve-secret = "));
    sodium_memzero(text, sizeof text);

    //  Only the one that is set is written; the other loads as not set.
    key.agency.bytes = (vdp_rate_t){ 0, 0 };
    ck_assert_int_eq(vdp_agency_save(&key.agency, public_path), VD_OK);
    s_read(public_path, text, sizeof text);
    ck_assert_ptr_nonnull(strstr(text, "    rate = \"200/s+2000\"\n"));
    ck_assert_ptr_null(strstr(text, "bytes ="));
    ck_assert_int_eq(vdp_agency_load(public_path, &agency, s_err, sizeof s_err), VD_OK);
    s_assert_same_agency(&agency, &key.agency);
    vdp_secret_wipe(&key);
    free((void *)secret_path);
    free((void *)public_path);
}
END_TEST

static const struct {
    vdp_rate_t rate;
    vdp_rate_t bytes;
    const char *fragment;
} s_bad_limits[] = {
    { { 10, 5 }, { 0, 0 }, "key/rate: burst 5 is below the rate 10" },
    { { 10, 0 }, { 0, 0 }, "key/rate: burst 0 is below the rate 10" },
    { { 0, 5 }, { 0, 0 }, "key/rate: a burst without a rate" },
    { { 1, VDP_RATE_MAX + 1 }, { 0, 0 }, "key/rate: burst too large" },
    { { VDP_RATE_MAX + 1, VDP_RATE_MAX + 1 }, { 0, 0 }, "key/rate: burst too large" },
    { { 0, 0 }, { 16, 8 }, "key/bytes: burst 8 is below the rate 16" },
    { { 0, 0 }, { 0, 1 }, "key/bytes: a burst without a rate" },
    { { 1, 1 }, { UINT64_MAX, UINT64_MAX }, "key/bytes: burst too large" },
};

START_TEST(check_refuses_bad_rate_limits)
{
    vdp_agency_t agency = s_key.agency;
    agency.rate = s_bad_limits[_i].rate;
    agency.bytes = s_bad_limits[_i].bytes;
    ck_assert_int_eq(vdp_agency_check(&agency, s_err, sizeof s_err), VD_EINVAL);
    ck_assert_msg(strstr(s_err, s_bad_limits[_i].fragment), "error \"%s\" lacks \"%s\"", s_err,
                  s_bad_limits[_i].fragment);
    //  Nor is such an agency saved, in either file.
    ck_assert_int_eq(vdp_agency_save(&agency, vdt_scratch_path(s_dir, "x.agency")), VD_EINVAL);
    vdp_secret_t key = s_key;
    key.agency = agency;
    ck_assert_int_eq(vdp_secret_save(&key, vdt_scratch_path(s_dir, "x.secret")), VD_EINVAL);
    vdp_secret_wipe(&key);
    ck_assert_uint_eq(s_entries(s_dir), 0);
}
END_TEST

START_TEST(check_accepts_rate_limits_at_the_bounds)
{
    vdp_agency_t agency = s_key.agency;
    agency.rate = (vdp_rate_t){ 1, 1 };
    agency.bytes = (vdp_rate_t){ VDP_RATE_MAX, VDP_RATE_MAX };
    ck_assert_msg(vdp_agency_check(&agency, s_err, sizeof s_err) == VD_OK, "%s", s_err);
    agency.rate = (vdp_rate_t){ 1, VDP_RATE_MAX };
    agency.bytes = (vdp_rate_t){ 0, 0 };
    ck_assert_msg(vdp_agency_check(&agency, s_err, sizeof s_err) == VD_OK, "%s", s_err);
    const char *path = strdup(vdt_scratch_path(s_dir, "x.agency"));
    ck_assert_int_eq(vdp_agency_save(&agency, path), VD_OK);
    vdp_agency_t loaded;
    ck_assert_int_eq(vdp_agency_load(path, &loaded, s_err, sizeof s_err), VD_OK);
    s_assert_same_agency(&loaded, &agency);
    free((void *)path);
}
END_TEST

Suite *
vdp_agency_suite(void)
{
    Suite *suite = suite_create("vdp_agency");

    TCase *tc = tcase_create("generate");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, generate_fills_every_field);
    tcase_add_test(tc, generate_gives_fresh_keys_each_time);
    tcase_add_test(tc, generated_curve_keys_are_a_pair);
    tcase_add_test(tc, generated_sign_key_signs_what_sign_public_verifies);
    tcase_add_test(tc, decode_refuses_keys_that_are_not_z85);
    tcase_add_loop_test(tc, generate_refuses_bad_arguments, 0,
                        sizeof s_bad_generate / sizeof s_bad_generate[0]);
    suite_add_tcase(suite, tc);

    tc = tcase_create("files");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, save_then_load_round_trips_both_files);
    tcase_add_test(tc, round_trip_keeps_several_jurisdictions_utf8_names_and_revocation);
    tcase_add_test(tc, public_file_is_text_with_its_header);
    tcase_add_test(tc, public_save_replaces_atomically_leaving_no_temporary);
    tcase_add_test(tc, save_refuses_an_invalid_agency);
    tcase_add_test(tc, load_of_a_missing_file_is_an_io_error_naming_it);
    tcase_add_test(tc, load_error_names_the_file_and_field);
    suite_add_tcase(suite, tc);

    tc = tcase_create("secret_files");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, secret_save_refuses_to_overwrite);
    tcase_add_test(tc, secret_save_refuses_to_follow_a_symlink);
    tcase_add_loop_test(tc, secret_load_refuses_group_or_other_access, 0,
                        sizeof s_open_modes / sizeof s_open_modes[0]);
    tcase_add_test(tc, secret_load_accepts_owner_only_modes);
    tcase_add_test(tc, secret_load_refuses_what_is_not_a_regular_file);
    tcase_add_test(tc, secret_file_is_refused_as_a_public_file);
    tcase_add_test(tc, public_file_is_refused_as_a_secret_file);
    tcase_add_test(tc, secret_with_a_foreign_secret_key_is_refused);
    suite_add_tcase(suite, tc);

    tc = tcase_create("parse");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_loop_test(tc, parse_refuses_each_bad_field, 0,
                        sizeof s_bad_fields / sizeof s_bad_fields[0]);
    tcase_add_loop_test(tc, parse_accepts_each_good_variant, 0,
                        sizeof s_good_fields / sizeof s_good_fields[0]);
    tcase_add_loop_test(tc, parse_refuses_each_bad_syntax, 0,
                        sizeof s_bad_syntax / sizeof s_bad_syntax[0]);
    tcase_add_test(tc, parse_refuses_nul_bytes_and_long_lines_and_large_files);
    tcase_add_test(tc, parse_accepts_zpl_variants);
    tcase_add_test(tc, check_refuses_unterminated_fields);
    suite_add_tcase(suite, tc);

    tc = tcase_create("rate_limits");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_loop_test(tc, rate_limits_load_with_both_one_or_none, 0,
                        sizeof s_limit_files / sizeof s_limit_files[0]);
    tcase_add_test(tc, rate_limits_accept_unquoted_values_and_comments);
    tcase_add_test(tc, rate_limits_round_trip_through_both_files);
    tcase_add_loop_test(tc, check_refuses_bad_rate_limits, 0,
                        sizeof s_bad_limits / sizeof s_bad_limits[0]);
    tcase_add_test(tc, check_accepts_rate_limits_at_the_bounds);
    suite_add_tcase(suite, tc);
    return suite;
}

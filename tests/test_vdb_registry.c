/*  vdb_registry suite: loading a directory of agency files, lookups by key and org, and each
    reason a load must fail (naming the files involved).  */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include "scratch.h"
#include "suites.h"
#include "vdb_registry.h"
#include "vdp_agency.h"
#include "vedetta.h"

static char s_dir[256]; // a fresh registry directory per test
static char s_err[512];
static vdb_registry_t *s_reg;

static void
s_setup(void)
{
    vdt_scratch_make(s_dir, sizeof s_dir, "vdb_registry");
    s_err[0] = '\0';
    s_reg = NULL;
}

static void
s_teardown(void)
{
    vdb_registry_destroy(&s_reg);
    ck_assert_ptr_null(s_reg);
    vdt_scratch_remove(s_dir);
}

//  A new key of `org`, with a fresh key pair.
static vdp_agency_t
s_agency(const char *org, const char *name, const char *jur, const char *label)
{
    vdp_secret_t secret;
    ck_assert_msg(vdp_secret_generate(&secret, org, name, vdp_org_role(org), jur, label, s_err,
                                      sizeof s_err) == VD_OK,
                  "generate: %s", s_err);
    vdp_agency_t agency = secret.agency;
    vdp_secret_wipe(&secret);
    return agency;
}

//  Saves `agency` as file `name` of the registry directory.
static void
s_install(const vdp_agency_t *agency, const char *name)
{
    ck_assert_int_eq(vdp_agency_save(agency, vdt_scratch_path(s_dir, name)), VD_OK);
}

static void
s_assert_err_has(const char *fragment)
{
    ck_assert_msg(strstr(s_err, fragment), "error \"%s\" lacks \"%s\"", s_err, fragment);
}

/*  ---------------------------------------------------------------------------------------------
    Loading  */

START_TEST(empty_directory_gives_an_empty_registry)
{
    s_reg = vdb_registry_load(s_dir, s_err, sizeof s_err);
    ck_assert_ptr_nonnull(s_reg);
    ck_assert_uint_eq(vdb_registry_key_count(s_reg), 0);
    ck_assert_uint_eq(vdb_registry_org_count(s_reg), 0);
    ck_assert_uint_eq(vdb_registry_revoked_count(s_reg), 0);
    ck_assert_ptr_null(vdb_registry_org(s_reg, "comune:i726"));
}
END_TEST

START_TEST(loads_every_agency_file_and_indexes_keys_and_orgs)
{
    vdp_agency_t siem = s_agency("comune:i726", "Comune di Siena", "toscana", "siem");
    vdp_agency_t console = s_agency("comune:i726", "Comune di Siena", "toscana", "console");
    vdp_agency_t cosc = s_agency("cosc:toscana", "COSC Toscana", "toscana", "analisti");
    vdp_agency_t cnaipic = s_agency("cnaipic", "CNAIPIC", "national", "default");
    s_install(&siem, "comune-i726.siem.agency");
    s_install(&console, "comune-i726.console.agency");
    s_install(&cosc, "cosc-toscana.analisti.agency");
    s_install(&cnaipic, "cnaipic.default.agency");
    s_reg = vdb_registry_load(s_dir, s_err, sizeof s_err);
    ck_assert_msg(s_reg != NULL, "load: %s", s_err);
    ck_assert_uint_eq(vdb_registry_key_count(s_reg), 4);
    ck_assert_uint_eq(vdb_registry_org_count(s_reg), 3);

    const vdp_agency_t *found = vdb_registry_key(s_reg, console.curve_public);
    ck_assert_ptr_nonnull(found);
    ck_assert_str_eq(found->label, "console");
    ck_assert_str_eq(found->org, "comune:i726");
    ck_assert_str_eq(found->sign_public, console.sign_public);
    found = vdb_registry_key(s_reg, cosc.curve_public);
    ck_assert_ptr_nonnull(found);
    ck_assert_int_eq(found->role, VDP_ROLE_COSC);

    const vdp_agency_t *org = vdb_registry_org(s_reg, "comune:i726");
    ck_assert_ptr_nonnull(org);
    ck_assert_int_eq(org->role, VDP_ROLE_COMUNE);
    ck_assert_str_eq(org->jur[0], "toscana");
    org = vdb_registry_org(s_reg, "cnaipic");
    ck_assert_ptr_nonnull(org);
    ck_assert_str_eq(org->jur[0], "national");

    vdp_agency_t stranger = s_agency("comune:i726", "Comune di Siena", "toscana", "siem");
    ck_assert_ptr_null(vdb_registry_key(s_reg, stranger.curve_public));
    ck_assert_ptr_null(vdb_registry_key(s_reg, "not a key"));
    ck_assert_ptr_null(vdb_registry_org(s_reg, "comune:b429"));
}
END_TEST

START_TEST(other_and_hidden_files_are_ignored)
{
    vdp_agency_t siem = s_agency("comune:i726", "Comune di Siena", "toscana", "siem");
    s_install(&siem, "comune-i726.siem.agency");
    //  Each of these would fail the load if it were read.
    vdt_scratch_write(s_dir, "README", "not ZPL at all {\n");
    vdt_scratch_write(s_dir, "comune-i726.siem.agency.bak", "  broken\n");
    vdt_scratch_write(s_dir, "comune-i726.siem.agency~", "  broken\n");
    vdt_scratch_write(s_dir, ".comune-i726.siem.agency.swp", "  broken\n");
    vdt_scratch_write(s_dir, ".hidden.agency", "  broken\n");
    vdt_scratch_write(s_dir, "agency", "  broken\n");
    ck_assert_int_eq(mkdir(vdt_scratch_path(s_dir, "archive"), 0755), 0);
    s_reg = vdb_registry_load(s_dir, s_err, sizeof s_err);
    ck_assert_msg(s_reg != NULL, "load: %s", s_err);
    ck_assert_uint_eq(vdb_registry_key_count(s_reg), 1);
}
END_TEST

START_TEST(revoked_key_is_loaded_with_status_revoked)
{
    vdp_agency_t live = s_agency("comune:b429", "Comune di Caltanissetta", "sicilia-occ", "siem");
    vdp_agency_t old = s_agency("comune:b429", "Comune di Caltanissetta", "sicilia-occ", "old");
    old.status = VDP_KEY_REVOKED;
    s_install(&live, "comune-b429.siem.agency");
    s_install(&old, "comune-b429.old.agency");
    s_reg = vdb_registry_load(s_dir, s_err, sizeof s_err);
    ck_assert_msg(s_reg != NULL, "load: %s", s_err);
    const vdp_agency_t *found = vdb_registry_key(s_reg, old.curve_public);
    ck_assert_ptr_nonnull(found);
    ck_assert_int_eq(found->status, VDP_KEY_REVOKED);
    found = vdb_registry_key(s_reg, live.curve_public);
    ck_assert_ptr_nonnull(found);
    ck_assert_int_eq(found->status, VDP_KEY_ACTIVE);
    ck_assert_uint_eq(vdb_registry_key_count(s_reg), 2);
    ck_assert_uint_eq(vdb_registry_revoked_count(s_reg), 1);
    //  Both keys, in the order of their files' names, then nothing.
    ck_assert_str_eq(vdb_registry_at(s_reg, 0)->label, "old");
    ck_assert_str_eq(vdb_registry_at(s_reg, 1)->label, "siem");
    ck_assert_ptr_null(vdb_registry_at(s_reg, 2));
}
END_TEST

START_TEST(keys_of_one_org_may_list_jurisdictions_in_any_order)
{
    vdp_agency_t a = s_agency("anci:sicilia", "ANCI Sicilia", "sicilia-occ,sicilia-or", "a");
    vdp_agency_t b = s_agency("anci:sicilia", "ANCI Sicilia", "sicilia-or,sicilia-occ", "b");
    s_install(&a, "a.agency");
    s_install(&b, "b.agency");
    s_reg = vdb_registry_load(s_dir, s_err, sizeof s_err);
    ck_assert_msg(s_reg != NULL, "load: %s", s_err);
    ck_assert_uint_eq(vdb_registry_key_count(s_reg), 2);
    ck_assert_uint_eq(vdb_registry_org_count(s_reg), 1);
}
END_TEST

START_TEST(directory_path_may_end_with_a_slash)
{
    vdp_agency_t a = s_agency("comune:i726", "Comune di Siena", "toscana", "siem");
    s_install(&a, "a.agency");
    char dir[300];
    snprintf(dir, sizeof dir, "%s/", s_dir);
    s_reg = vdb_registry_load(dir, s_err, sizeof s_err);
    ck_assert_msg(s_reg != NULL, "load: %s", s_err);
    ck_assert_ptr_nonnull(vdb_registry_key(s_reg, a.curve_public));
}
END_TEST

/*  ---------------------------------------------------------------------------------------------
    Failing loads  */

START_TEST(duplicate_key_across_files_fails_naming_both)
{
    vdp_agency_t a = s_agency("comune:i726", "Comune di Siena", "toscana", "siem");
    s_install(&a, "b-second.agency");
    s_install(&a, "a-first.agency");
    s_reg = vdb_registry_load(s_dir, s_err, sizeof s_err);
    ck_assert_ptr_null(s_reg);
    //  Files are read in name order, so the later one is the one at fault.
    char expected[600];
    snprintf(expected, sizeof expected,
             "%s: key/curve-public: ", vdt_scratch_path(s_dir, "b-second.agency"));
    ck_assert_msg(strncmp(s_err, expected, strlen(expected)) == 0, "error \"%s\"", s_err);
    s_assert_err_has(vdt_scratch_path(s_dir, "a-first.agency"));
    s_assert_err_has(a.curve_public);
}
END_TEST

START_TEST(duplicate_key_under_another_org_fails)
{
    vdp_agency_t a = s_agency("comune:i726", "Comune di Siena", "toscana", "siem");
    vdp_agency_t b = s_agency("comune:b429", "Comune di Caltanissetta", "sicilia-occ", "siem");
    strcpy(b.curve_public, a.curve_public);
    s_install(&a, "a.agency");
    s_install(&b, "b.agency");
    s_reg = vdb_registry_load(s_dir, s_err, sizeof s_err);
    ck_assert_ptr_null(s_reg);
    s_assert_err_has("already registered");
    s_assert_err_has("org comune:i726");
}
END_TEST

static const struct {
    const char *org;
    const char *name;
    const char *jur;
    const char *field;
} s_inconsistent[] = {
    { "comune:i726", "Comune di Siena (SI)", "toscana", "agency/name" },
    { "comune:i726", "Comune di Siena", "toscana,umbria", "agency/jurisdiction" },
    { "comune:i726", "Comune di Siena", "umbria", "agency/jurisdiction" },
};

START_TEST(inconsistent_org_fails_naming_the_field_and_both_files)
{
    vdp_agency_t a = s_agency("comune:i726", "Comune di Siena", "toscana", "siem");
    vdp_agency_t b = s_agency(s_inconsistent[_i].org, s_inconsistent[_i].name,
                              s_inconsistent[_i].jur, "console");
    s_install(&a, "comune-i726.siem.agency");
    s_install(&b, "comune-i726.zconsole.agency");
    s_reg = vdb_registry_load(s_dir, s_err, sizeof s_err);
    ck_assert_ptr_null(s_reg);
    char expected[600];
    snprintf(expected, sizeof expected, "%s: %s: org comune:i726",
             vdt_scratch_path(s_dir, "comune-i726.zconsole.agency"), s_inconsistent[_i].field);
    ck_assert_msg(strncmp(s_err, expected, strlen(expected)) == 0, "error \"%s\"", s_err);
    s_assert_err_has(vdt_scratch_path(s_dir, "comune-i726.siem.agency"));
}
END_TEST

START_TEST(one_invalid_file_fails_the_whole_load)
{
    vdp_agency_t a = s_agency("comune:i726", "Comune di Siena", "toscana", "siem");
    s_install(&a, "a.agency");
    vdt_scratch_write(s_dir, "b.agency", "agency\n    org = \"comune:I726\"\n");
    s_reg = vdb_registry_load(s_dir, s_err, sizeof s_err);
    ck_assert_ptr_null(s_reg);
    char expected[600];
    snprintf(expected, sizeof expected, "%s: agency/name: missing",
             vdt_scratch_path(s_dir, "b.agency"));
    ck_assert_msg(strncmp(s_err, expected, strlen(expected)) == 0, "error \"%s\"", s_err);
}
END_TEST

START_TEST(secret_file_installed_by_mistake_fails_the_load)
{
    vdp_secret_t secret;
    ck_assert_int_eq(vdp_secret_generate(&secret, "comune:i726", "Comune di Siena", VDP_ROLE_COMUNE,
                                         "toscana", "siem", NULL, 0),
                     VD_OK);
    ck_assert_int_eq(vdp_secret_save(&secret, vdt_scratch_path(s_dir, "comune-i726.siem.agency")),
                     VD_OK);
    s_reg = vdb_registry_load(s_dir, s_err, sizeof s_err);
    ck_assert_ptr_null(s_reg);
    s_assert_err_has("a secret key in a public agency file");
    ck_assert_ptr_null(strstr(s_err, secret.curve_secret));
    vdp_secret_wipe(&secret);
}
END_TEST

START_TEST(directory_named_like_an_agency_file_fails_the_load)
{
    ck_assert_int_eq(mkdir(vdt_scratch_path(s_dir, "odd.agency"), 0755), 0);
    s_reg = vdb_registry_load(s_dir, s_err, sizeof s_err);
    ck_assert_ptr_null(s_reg);
    s_assert_err_has("odd.agency: not a regular file");
}
END_TEST

START_TEST(missing_directory_fails_naming_it)
{
    s_reg = vdb_registry_load(vdt_scratch_path(s_dir, "absent"), s_err, sizeof s_err);
    ck_assert_ptr_null(s_reg);
    s_assert_err_has(vdt_scratch_path(s_dir, "absent"));
    s_assert_err_has("cannot open");
}
END_TEST

/*  ---------------------------------------------------------------------------------------------
    Adding programmatically  */

START_TEST(add_checks_the_same_invariants)
{
    s_reg = vdb_registry_new();
    ck_assert_ptr_nonnull(s_reg);
    vdp_agency_t a = s_agency("cosc:sicilia-occ", "COSC Sicilia Occidentale", "sicilia-occ", "x");
    ck_assert_int_eq(vdb_registry_add(s_reg, &a, s_err, sizeof s_err), VD_OK);
    ck_assert_int_eq(vdb_registry_add(s_reg, &a, s_err, sizeof s_err), VD_EINVAL);
    s_assert_err_has("already registered");

    vdp_agency_t b = s_agency("cosc:sicilia-occ", "COSC Palermo", "sicilia-occ", "y");
    ck_assert_int_eq(vdb_registry_add(s_reg, &b, s_err, sizeof s_err), VD_EINVAL);
    s_assert_err_has("agency/name");

    vdp_agency_t bad = s_agency("cosc:sicilia-or", "COSC Sicilia Orientale", "sicilia-or", "z");
    bad.role = VDP_ROLE_COMUNE;
    ck_assert_int_eq(vdb_registry_add(s_reg, &bad, s_err, sizeof s_err), VD_EINVAL);
    s_assert_err_has("agency/role");

    ck_assert_uint_eq(vdb_registry_key_count(s_reg), 1);
    ck_assert_uint_eq(vdb_registry_org_count(s_reg), 1);
    //  The registry keeps its own copy.
    strcpy(a.name, "changed");
    ck_assert_str_eq(vdb_registry_org(s_reg, "cosc:sicilia-occ")->name, "COSC Sicilia Occidentale");
}
END_TEST

START_TEST(many_keys_stay_findable_as_the_tables_grow)
{
    enum { S_KEYS = 1500 };
    s_reg = vdb_registry_new();
    ck_assert_ptr_nonnull(s_reg);
    static vdp_agency_t keys[S_KEYS];
    for (int i = 0; i < S_KEYS; i++) {
        char org[32];
        snprintf(org, sizeof org, "comune:x%d", i / 3); // three keys per org
        char label[16];
        snprintf(label, sizeof label, "k%d", i % 3);
        keys[i] = s_agency(org, "Comune", "toscana", label);
        ck_assert_int_eq(vdb_registry_add(s_reg, &keys[i], s_err, sizeof s_err), VD_OK);
    }
    ck_assert_uint_eq(vdb_registry_key_count(s_reg), S_KEYS);
    ck_assert_uint_eq(vdb_registry_org_count(s_reg), S_KEYS / 3);
    for (int i = 0; i < S_KEYS; i++) {
        const vdp_agency_t *found = vdb_registry_key(s_reg, keys[i].curve_public);
        ck_assert_ptr_nonnull(found);
        ck_assert_str_eq(found->org, keys[i].org);
        ck_assert_str_eq(found->label, keys[i].label);
        ck_assert_ptr_nonnull(vdb_registry_org(s_reg, keys[i].org));
    }
}
END_TEST

START_TEST(null_arguments_are_refused_not_fatal)
{
    ck_assert_ptr_null(vdb_registry_load(NULL, s_err, sizeof s_err));
    ck_assert_ptr_null(vdb_registry_key(NULL, "x"));
    ck_assert_ptr_null(vdb_registry_org(NULL, "x"));
    ck_assert_uint_eq(vdb_registry_key_count(NULL), 0);
    ck_assert_int_eq(vdb_registry_add(NULL, NULL, NULL, 0), VD_EINVAL);
    vdb_registry_destroy(NULL);
    s_reg = vdb_registry_new();
    ck_assert_ptr_null(vdb_registry_key(s_reg, NULL));
    vdb_registry_t *twice = vdb_registry_new();
    vdb_registry_destroy(&twice);
    vdb_registry_destroy(&twice);
    ck_assert_ptr_null(twice);
}
END_TEST

Suite *
vdb_registry_suite(void)
{
    Suite *suite = suite_create("vdb_registry");

    TCase *tc = tcase_create("load");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, empty_directory_gives_an_empty_registry);
    tcase_add_test(tc, loads_every_agency_file_and_indexes_keys_and_orgs);
    tcase_add_test(tc, other_and_hidden_files_are_ignored);
    tcase_add_test(tc, revoked_key_is_loaded_with_status_revoked);
    tcase_add_test(tc, keys_of_one_org_may_list_jurisdictions_in_any_order);
    tcase_add_test(tc, directory_path_may_end_with_a_slash);
    suite_add_tcase(suite, tc);

    tc = tcase_create("load_failures");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, duplicate_key_across_files_fails_naming_both);
    tcase_add_test(tc, duplicate_key_under_another_org_fails);
    tcase_add_loop_test(tc, inconsistent_org_fails_naming_the_field_and_both_files, 0,
                        sizeof s_inconsistent / sizeof s_inconsistent[0]);
    tcase_add_test(tc, one_invalid_file_fails_the_whole_load);
    tcase_add_test(tc, secret_file_installed_by_mistake_fails_the_load);
    tcase_add_test(tc, directory_named_like_an_agency_file_fails_the_load);
    tcase_add_test(tc, missing_directory_fails_naming_it);
    suite_add_tcase(suite, tc);

    tc = tcase_create("add");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, add_checks_the_same_invariants);
    tcase_add_test(tc, many_keys_stay_findable_as_the_tables_grow);
    tcase_add_test(tc, null_arguments_are_refused_not_fatal);
    suite_add_tcase(suite, tc);
    return suite;
}

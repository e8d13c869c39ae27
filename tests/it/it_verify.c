/*  it_verify: `vedetta sub --verify DIR`, end to end: signed messages published through the
    real vedettad, replayed from its store to the real CLI, which checks each signature against
    a directory of public agency files and says on each line whether it verified and by which
    key. libvedetta signs what it publishes.  */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <check.h>
#include <jansson.h>

#include "harness.h"
#include "it_suites.h"
#include "vdp_agency.h"
#include "vdp_envelope.h"
#include "vdp_ids.h"
#include "vdp_sig.h"

#define S_LINES   3     // messages published by each test
#define S_OUT     65536 // what the CLI may print
#define S_IDLE_MS "10000"

static vdt_world_t *s_world;

static void
s_setup(void)
{
    s_world = vdt_world_demo(false);
    //  The CLI's connection, as a subscriber of COSC Toscana (alert.toscana.>).
    setenv("VEDETTA_BROKER", vdt_endpoint(s_world), 1);
    setenv("VEDETTA_BROKER_KEY", vdt_broker_key(s_world), 1);
    setenv("VEDETTA_KEY", vdt_secret(s_world, "cosc:toscana"), 1);
}

static void
s_teardown(void)
{
    vdt_world_destroy(&s_world);
}

//  Publishes one message per body from `org` on `topic`, signed by libvedetta as it publishes.
static void
s_publish_signed(const char *org, const char *topic, const char *const *bodies, size_t count)
{
    vd_client_t *client = vdt_connect(s_world, org);
    for (size_t i = 0; i < count; i++) {
        vd_envelope_t *env = vdt_envelope(topic, "amber", bodies[i]);
        vd_receipt_t receipt = vdt_publish(client, env);
        ck_assert_msg(receipt.status == VD_RECEIPT_ACCEPTED, "%s: %s", bodies[i], receipt.reason);
        vd_envelope_destroy(&env);
    }
    vd_client_destroy(&client);
}

//  Siena's two alerts, then Firenze's one.
static void
s_publish_three(void)
{
    static const char *const siena[] = { "siena 1", "siena 2" };
    static const char *const firenze[] = { "firenze 1" };
    s_publish_signed("comune:i726", "alert.toscana.i726", siena, 2);
    s_publish_signed("comune:d612", "alert.toscana.d612", firenze, 1);
}

/*  Replays everything on alert.toscana.> through `vedetta sub` (with --verify DIR if `dir`
    is not NULL) and parses its S_LINES lines into lines[], in seq order.  */
static void
s_sub(const char *dir, json_t *lines[S_LINES])
{
    static char out[S_OUT];
    const char *args[16] = { "sub", "--from-seq", "1", "--count", "3", "--timeout", S_IDLE_MS };
    size_t argc = 7;
    if (dir) {
        args[argc++] = "--verify";
        args[argc++] = dir;
    }
    args[argc++] = "alert.toscana.>";
    args[argc] = NULL;
    ck_assert_int_eq(vdt_cli(args, out, sizeof out), 0);
    char *save = NULL, *line = strtok_r(out, "\n", &save);
    for (size_t i = 0; i < S_LINES; i++) {
        ck_assert_msg(line != NULL, "line %zu of %d missing", i + 1, S_LINES);
        json_error_t error;
        lines[i] = json_loads(line, 0, &error);
        ck_assert_msg(lines[i] != NULL, "not JSON: %s (%s)", line, error.text);
        line = strtok_r(NULL, "\n", &save);
    }
    ck_assert_ptr_null(line);
}

static const char *
s_text(json_t *line, const char *key)
{
    json_t *value = json_object_get(line, key);
    return json_is_string(value) ? json_string_value(value) : NULL;
}

static void
s_free(json_t *lines[S_LINES])
{
    for (size_t i = 0; i < S_LINES; i++)
        json_decref(lines[i]);
}

//  Copies the registry's file of `org` into `dir`, with its status set to `status`.
static void
s_keyring_file(const char *dir, const char *org, vdp_key_status_t status)
{
    vdp_agency_t agency = vdt_agency_read(s_world, org);
    agency.status = status;
    char slug[VDP_MAX_ORG + 1], path[600];
    ck_assert_int_eq(vdp_org_slug(org, slug, sizeof slug), 0);
    snprintf(path, sizeof path, "%s/%s.default.agency", dir, slug);
    ck_assert_int_eq(vdp_agency_save(&agency, path), VD_OK);
}

START_TEST(verified_with_the_registrys_files)
{
    s_publish_three();
    json_t *lines[S_LINES];
    s_sub(vdt_path(s_world, "agencies"), lines);
    static const char *const bodies[] = { "siena 1", "siena 2", "firenze 1" };
    static const char *const signers[] = { "comune:i726/default", "comune:i726/default",
                                           "comune:d612/default" };
    for (size_t i = 0; i < S_LINES; i++) {
        ck_assert_str_eq(s_text(lines[i], "body"), bodies[i]);
        ck_assert_msg(json_is_true(json_object_get(lines[i], "verified")), "%s: %s", bodies[i],
                      s_text(lines[i], "verify_reason"));
        ck_assert_str_eq(s_text(lines[i], "signer"), signers[i]);
        ck_assert_ptr_null(json_object_get(lines[i], "signer_revoked"));
        ck_assert_ptr_null(json_object_get(lines[i], "verify_code"));
    }
    s_free(lines);
}
END_TEST

START_TEST(revoked_and_unknown_keys_are_said_on_each_line)
{
    s_publish_three();
    //  The subscriber's own keyring: Siena's key, revoked since; no file of Firenze.
    char dir[400];
    snprintf(dir, sizeof dir, "%s", vdt_path(s_world, "keyring"));
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    s_keyring_file(dir, "comune:i726", VDP_KEY_REVOKED);
    json_t *lines[S_LINES];
    s_sub(dir, lines);
    for (size_t i = 0; i < 2; i++) {
        ck_assert(json_is_true(json_object_get(lines[i], "verified")));
        ck_assert_str_eq(s_text(lines[i], "signer"), "comune:i726/default");
        ck_assert(json_is_true(json_object_get(lines[i], "signer_revoked")));
    }
    ck_assert(json_is_false(json_object_get(lines[2], "verified")));
    ck_assert_str_eq(s_text(lines[2], "verify_code"), "ENOTFOUND");
    ck_assert_ptr_nonnull(strstr(s_text(lines[2], "verify_reason"), "comune:d612"));
    ck_assert_ptr_null(json_object_get(lines[2], "signer"));
    //  The fields sit before the body, after the broker's stamps.
    const char *key;
    json_t *value;
    const char *previous = NULL;
    json_object_foreach(lines[2], key, value)
    {
        if (strcmp(key, "body") == 0)
            ck_assert_str_eq(previous, "verify_reason");
        previous = key;
    }
    s_free(lines);
}
END_TEST

START_TEST(without_verify_the_lines_are_unchanged)
{
    s_publish_three();
    json_t *lines[S_LINES];
    s_sub(NULL, lines);
    for (size_t i = 0; i < S_LINES; i++) {
        ck_assert_ptr_null(json_object_get(lines[i], "verified"));
        ck_assert_ptr_null(json_object_get(lines[i], "signer"));
        ck_assert_ptr_null(json_object_get(lines[i], "verify_code"));
    }
    s_free(lines);
}
END_TEST

START_TEST(a_keyring_that_does_not_load_stops_sub_before_connecting)
{
    char dir[400];
    snprintf(dir, sizeof dir, "%s", vdt_path(s_world, "keyring"));
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    FILE *file = fopen(vdt_path(s_world, "keyring/broken.agency"), "w");
    ck_assert_ptr_nonnull(file);
    fputs("agency\n    org = \"comune:i726\"\n", file);
    ck_assert_int_eq(fclose(file), 0);
    char out[256];
    const char *args[] = { "sub", "--verify", dir, "--count", "1", "alert.toscana.>", NULL };
    ck_assert_int_eq(vdt_cli(args, out, sizeof out), 1);
    ck_assert_str_eq(out, "");
}
END_TEST

Suite *
it_verify_suite(void)
{
    Suite *suite = suite_create("it_verify");
    TCase *cli = tcase_create("cli");
    tcase_add_checked_fixture(cli, s_setup, s_teardown);
    tcase_set_timeout(cli, 60);
    tcase_add_test(cli, verified_with_the_registrys_files);
    tcase_add_test(cli, revoked_and_unknown_keys_are_said_on_each_line);
    tcase_add_test(cli, without_verify_the_lines_are_unchanged);
    tcase_add_test(cli, a_keyring_that_does_not_load_stops_sub_before_connecting);
    suite_add_tcase(suite, cli);
    return suite;
}

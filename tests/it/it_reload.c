/*  it_reload: the registry and the policy reloaded under a running broker with clients
    connected, by SIGHUP and by `vedetta admin reload`. What is asserted is what the parties
    see: a revoked key's session cut before anything more reaches it or is accepted from it, a
    bad file changing nothing, a narrowed policy applied to the very next delivery and command.
    Absence is shown with a marker message published after, never with a sleep.  */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "harness.h"
#include "it_suites.h"
#include "vdb_acl.h"
#include "vdp_agency.h"

#define S_WAIT_MS 5000

static vdt_world_t *s_world;

static void
s_teardown(void)
{
    vdt_world_destroy(&s_world);
}

static void
s_pub_accepted(vd_client_t *client, const char *topic, const char *body)
{
    vd_envelope_t *env = vdt_envelope(topic, "amber", body);
    vd_receipt_t receipt = vdt_publish(client, env);
    vd_envelope_destroy(&env);
    ck_assert_msg(receipt.status == VD_RECEIPT_ACCEPTED, "publish %s: %s %s", body,
                  vd_receipt_status_name(receipt.status), receipt.reason);
}

static void
s_expect(vd_client_t *client, const char *body)
{
    char *got = vdt_recv_body(client);
    ck_assert_msg(got && strcmp(got, body) == 0, "expected '%s', received '%s'", body,
                  got ? got : "(nothing)");
    free(got);
}

//  The agency file of `org` in the world's registry, rewritten with `status`.
static void
s_set_status(const char *org, vdp_key_status_t status)
{
    vdp_agency_t agency = vdt_agency_read(s_world, org);
    agency.status = status;
    vdt_agency_write(s_world, &agency);
}

//  Runs `vedetta admin reload` against the world's broker: its exit code, and its stdout.
static int
s_admin_reload(char *out, size_t out_size)
{
    char control[600];
    snprintf(control, sizeof control, "%s", vdt_path(s_world, "vedettad.ctl"));
    const char *args[] = { "admin", "reload", "--control", control, NULL };
    return vdt_cli(args, out, out_size);
}

//  Waits (bounded) until the broker's log shows `count` reloads done, and returns.
static void
s_wait_reloads(int count)
{
    char text[64];
    snprintf(text, sizeof text, "reloaded orgs=");
    for (int i = 0; i < 500; i++) {
        FILE *file = fopen(vdt_broker_log(s_world), "r");
        ck_assert_ptr_nonnull(file);
        int seen = 0;
        char line[1024];
        while (fgets(line, sizeof line, file))
            seen += strstr(line, text) != NULL;
        fclose(file);
        if (seen >= count)
            return;
        usleep(10 * 1000);
    }
    ck_abort_msg("the broker did not log %d reload(s)", count);
}

START_TEST(sighup_cuts_a_revoked_key_at_once)
{
    s_world = vdt_world_demo(false);
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    vd_client_t *cosc = vdt_connect(s_world, "cosc:toscana");
    vdt_subscribe(cosc, "alert.toscana.>", VD_OK);
    vd_sub_options_t durable = { .durable = "bulletins" };
    char reason[256] = "";
    ck_assert_int_eq(vd_client_subscribe_from(siena, "bulletin.toscana", &durable, reason,
                                              sizeof reason, S_WAIT_MS),
                     VD_OK);
    s_pub_accepted(siena, "alert.toscana.i726", "before");
    s_expect(cosc, "before");

    s_set_status("comune:i726", VDP_KEY_REVOKED);
    vdt_broker_hangup(s_world);
    s_wait_reloads(1);
    ck_assert(vdt_log_contains(s_world, "session cut org=comune:i726"));
    ck_assert(vdt_log_contains(s_world, "revoked=1"));

    //  The bulletin matches Siena's durable subscription: Siena is told its key is revoked,
    //  and gets nothing.
    s_pub_accepted(cosc, "bulletin.toscana", "after");
    vd_envelope_t *env = NULL;
    ck_assert_int_eq(vd_client_recv(siena, &env, S_WAIT_MS), VD_EAUTH);
    ck_assert_ptr_null(env);
    //  Nothing from Siena is accepted any more, on this session or a new one.
    vd_envelope_t *late = vdt_envelope("alert.toscana.i726", "amber", "late");
    vd_receipt_t receipt;
    int rc = vd_client_publish(siena, late, &receipt, S_WAIT_MS);
    ck_assert_msg(rc == VD_EAUTH || rc == VD_ECONN, "publish after revocation: %s",
                  vd_strerror_name(rc));
    vd_envelope_destroy(&late);
    vd_client_t *again = vd_client_new();
    ck_assert_ptr_nonnull(again);
    ck_assert_int_eq(vd_client_connect(again, vdt_endpoint(s_world), vdt_broker_key(s_world),
                                       vdt_secret(s_world, "comune:i726"), S_WAIT_MS),
                     VD_EAUTH);
    vd_client_destroy(&again);

    //  Everyone else goes on: the COSC's own subscription still works.
    vd_client_t *firenze = vdt_connect(s_world, "comune:d612");
    s_pub_accepted(firenze, "alert.toscana.d612", "others");
    s_expect(cosc, "others");
    vd_client_destroy(&firenze);
    vd_client_destroy(&siena);
    vd_client_destroy(&cosc);
}
END_TEST

START_TEST(admin_reload_with_a_bad_file_changes_nothing)
{
    s_world = vdt_world_demo(false);
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    vd_client_t *cosc = vdt_connect(s_world, "cosc:toscana");
    vdt_subscribe(cosc, "alert.toscana.>", VD_OK);

    //  A revocation and a broken file in the same reload: neither takes effect.
    s_set_status("comune:i726", VDP_KEY_REVOKED);
    FILE *bad = fopen(vdt_path(s_world, "agencies/broken.agency"), "w");
    ck_assert_ptr_nonnull(bad);
    fputs("agency\n    org = \"not an org\"\n", bad);
    fclose(bad);
    char out[4096];
    ck_assert_int_eq(s_admin_reload(out, sizeof out), 2);
    ck_assert_msg(strstr(out, "\"ok\":false") && strstr(out, "broken.agency"), "answer: %s", out);
    s_pub_accepted(siena, "alert.toscana.i726", "still-here");
    s_expect(cosc, "still-here");

    //  The file removed, the same reload goes through, and answers what is in force.
    ck_assert_int_eq(unlink(vdt_path(s_world, "agencies/broken.agency")), 0);
    ck_assert_int_eq(s_admin_reload(out, sizeof out), 0);
    ck_assert_msg(strstr(out, "\"ok\":true") && strstr(out, "\"revoked\":1") &&
                      strstr(out, "\"sessions_cut\":1"),
                  "answer: %s", out);
    vd_envelope_t *env = NULL;
    ck_assert_int_eq(vd_client_recv(siena, &env, S_WAIT_MS), VD_EAUTH);
    vd_client_destroy(&siena);
    vd_client_destroy(&cosc);
}
END_TEST

START_TEST(a_narrower_policy_applies_to_the_next_delivery_and_command)
{
    s_world = vdt_world_new();
    vdt_agencies_demo(s_world);
    static const char grant[] = "cosc      subscribe  alert.$j.>               amber+strict\n";
    const char *policy = vdb_policy_default_text();
    ck_assert_ptr_nonnull(strstr(policy, grant));
    vdt_broker_use_policy(s_world, policy);
    vdt_broker_start(s_world);
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    vd_client_t *cosc = vdt_connect(s_world, "cosc:toscana");
    vdt_subscribe(cosc, "alert.toscana.>", VD_OK);
    vdt_subscribe(cosc, "report.toscana.>", VD_OK);
    s_pub_accepted(siena, "alert.toscana.i726", "granted");
    s_expect(cosc, "granted");

    //  The COSC loses its grant on the Comuni's alerts.
    char *narrower = strdup(policy);
    ck_assert_ptr_nonnull(narrower);
    char *line = strstr(narrower, grant);
    memmove(line, line + strlen(grant), strlen(line + strlen(grant)) + 1);
    vdt_broker_use_policy(s_world, narrower);
    free(narrower);
    vdt_broker_hangup(s_world);
    s_wait_reloads(1);

    s_pub_accepted(siena, "alert.toscana.i726", "withheld");
    s_pub_accepted(siena, "report.toscana.i726", "marker");
    s_expect(cosc, "marker"); // not "withheld": its subscription no longer reaches it
    char reason[256] = "";
    ck_assert_int_eq(
        vd_client_subscribe(cosc, "alert.toscana.i726", reason, sizeof reason, S_WAIT_MS),
        VD_EACCES);
    vd_client_destroy(&siena);
    vd_client_destroy(&cosc);
}
END_TEST

START_TEST(a_rotated_key_works_beside_the_old_one_until_it_is_revoked)
{
    s_world = vdt_world_demo(false);
    vd_client_t *old = vdt_connect(s_world, "comune:i726");
    vd_client_t *cosc = vdt_connect(s_world, "cosc:toscana");
    vdt_subscribe(cosc, "alert.toscana.>", VD_OK);

    //  The next key: same agency, new label, its public file installed, the broker reloaded.
    char secret[600], public[600];
    snprintf(secret, sizeof secret, "%s", vdt_path(s_world, "keys/comune-i726.next.secret"));
    snprintf(public, sizeof public, "%s", vdt_path(s_world, "agencies/comune-i726.next.agency"));
    ck_assert_int_eq(vd_keygen_rotate(vdt_secret(s_world, "comune:i726"), "next", secret, public),
                     VD_OK);
    ck_assert_int_eq(
        vd_keygen_rotate(vdt_secret(s_world, "comune:i726"), "default", secret, public),
        VD_EINVAL); // the old key's own label
    vdp_agency_t next;
    char err[256] = "";
    ck_assert_msg(vdp_agency_load(public, &next, err, sizeof err) == VD_OK, "%s", err);
    ck_assert_str_eq(next.org, "comune:i726");
    ck_assert_str_eq(next.label, "next");
    char out[4096];
    ck_assert_int_eq(s_admin_reload(out, sizeof out), 0);

    //  Both keys work, as the same org.
    vd_client_t *fresh = vd_client_new();
    ck_assert_ptr_nonnull(fresh);
    ck_assert_int_eq(
        vd_client_connect(fresh, vdt_endpoint(s_world), vdt_broker_key(s_world), secret, S_WAIT_MS),
        VD_OK);
    ck_assert_str_eq(vd_client_org(fresh), "comune:i726");
    s_pub_accepted(old, "alert.toscana.i726", "old-key");
    s_expect(cosc, "old-key");
    s_pub_accepted(fresh, "alert.toscana.i726", "new-key");
    s_expect(cosc, "new-key");

    //  The old key revoked: its session is cut, the new one goes on.
    s_set_status("comune:i726", VDP_KEY_REVOKED);
    ck_assert_int_eq(s_admin_reload(out, sizeof out), 0);
    vd_envelope_t *env = NULL;
    ck_assert_int_eq(vd_client_recv(old, &env, S_WAIT_MS), VD_EAUTH);
    s_pub_accepted(fresh, "alert.toscana.i726", "after-rotation");
    s_expect(cosc, "after-rotation");
    vd_client_destroy(&fresh);
    vd_client_destroy(&old);
    vd_client_destroy(&cosc);
}
END_TEST

Suite *
it_reload_suite(void)
{
    Suite *suite = suite_create("it_reload");
    TCase *tc = tcase_create("reload");
    tcase_add_checked_fixture(tc, NULL, s_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sighup_cuts_a_revoked_key_at_once);
    tcase_add_test(tc, admin_reload_with_a_bad_file_changes_nothing);
    tcase_add_test(tc, a_narrower_policy_applies_to_the_next_delivery_and_command);
    tcase_add_test(tc, a_rotated_key_works_beside_the_old_one_until_it_is_revoked);
    suite_add_tcase(suite, tc);
    return suite;
}

/*  it_audit: the real broker's audit log. A session of ordinary events (a refused handshake, an
    accepted and a rejected publish, a granted and a denied subscription, a delivery withheld by
    TLP, a revocation by reload) and a stop; then `vedetta audit verify` finds the chain intact
    and the head signed by the broker's key, and `vedetta audit query` finds each event by kind
    and org. Tampering with the file is the unit suites' business (test_vdp_audit.c).  */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "harness.h"
#include "it_suites.h"
#include "vdp_agency.h"

static vdt_world_t *s_world;

static void
s_teardown(void)
{
    vdt_world_destroy(&s_world);
}

static void
s_pub(vd_client_t *client, const char *topic, const char *tlp, int expected_status)
{
    vd_envelope_t *env = vdt_envelope(topic, tlp, topic);
    vd_receipt_t receipt = vdt_publish(client, env);
    vd_envelope_destroy(&env);
    ck_assert_msg(receipt.status == (vd_receipt_status_t)expected_status, "publish %s: %s %s",
                  topic, vd_receipt_status_name(receipt.status), receipt.reason);
}

//  How many lines of `text` contain every one of `needles` (NULL-terminated).
static int
s_lines_with(const char *text, const char *const *needles)
{
    int count = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        bool all = true;
        for (const char *const *n = needles; *n && all; n++) {
            const char *hit = strstr(line, *n);
            all = hit && hit < line + len;
        }
        count += all;
        line += end ? len + 1 : len;
    }
    return count;
}

START_TEST(a_session_of_events_is_on_record_and_verifies)
{
    s_world = vdt_world_demo(false);
    //  A key the registry does not know knocks, and is refused.
    char stranger[600], stranger_public[600];
    snprintf(stranger, sizeof stranger, "%s", vdt_path(s_world, "stranger.secret"));
    snprintf(stranger_public, sizeof stranger_public, "%s", vdt_path(s_world, "stranger.agency"));
    ck_assert_int_eq(vd_keygen("comune:f205", "Comune di Milano", "comune", "lombardia", NULL,
                               stranger, stranger_public),
                     VD_OK);
    vd_client_t *outsider = vd_client_new();
    ck_assert_ptr_nonnull(outsider);
    ck_assert_int_ne(
        vd_client_connect(outsider, vdt_endpoint(s_world), vdt_broker_key(s_world), stranger, 2000),
        VD_OK);
    vd_client_destroy(&outsider);

    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    vd_client_t *cosc = vdt_connect(s_world, "cosc:toscana");
    vd_client_t *anci = vdt_connect(s_world, "anci:toscana");
    vdt_subscribe(cosc, "report.toscana.>", VD_OK);
    vdt_subscribe(anci, "report.toscana.*", VD_OK);                    // granted, up to green
    vdt_subscribe(anci, "alert.toscana.>", VD_EACCES);                 // denied
    s_pub(siena, "report.toscana.i726", "amber", VD_RECEIPT_ACCEPTED); // withheld from ANCI
    s_pub(siena, "bulletin.toscana", "green", VD_RECEIPT_REJECTED);    // not Siena's to publish
    char *body = vdt_recv_body(cosc);
    ck_assert_str_eq(body, "report.toscana.i726");
    free(body);

    //  Siena's key revoked by a reload.
    vdp_agency_t agency = vdt_agency_read(s_world, "comune:i726");
    agency.status = VDP_KEY_REVOKED;
    vdt_agency_write(s_world, &agency);
    char control[600], out[65536];
    snprintf(control, sizeof control, "%s", vdt_path(s_world, "vedettad.ctl"));
    const char *reload[] = { "admin", "reload", "--control", control, NULL };
    ck_assert_int_eq(vdt_cli(reload, out, sizeof out), 0);
    vd_client_destroy(&siena);
    vd_client_destroy(&cosc);
    vd_client_destroy(&anci);
    ck_assert_int_eq(vdt_broker_stop(s_world), 0);

    char log[600], key[600];
    snprintf(log, sizeof log, "%s", vdt_path(s_world, "vedetta.audit"));
    snprintf(key, sizeof key, "%s", vdt_path(s_world, "broker.agency"));
    const char *verify[] = { "audit", "verify", log, "--key", key, NULL };
    ck_assert_int_eq(vdt_cli(verify, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "\"intact\":true") && strstr(out, "\"head_signed\":true"), "%s", out);

    const char *query[] = { "audit", "query", log, NULL };
    ck_assert_int_eq(vdt_cli(query, out, sizeof out), 0);
    static const struct {
        const char *needles[4];
        int at_least;
    } expected[] = {
        { { "\"kind\":\"broker.start\"", NULL }, 1 },
        { { "\"kind\":\"auth.fail\"", "\"reason\":\"unknown key\"", NULL }, 1 },
        { { "\"kind\":\"auth.ok\"", "\"org\":\"comune:i726\"", NULL }, 1 },
        { { "\"kind\":\"sub.grant\"", "\"org\":\"anci:toscana\"", NULL }, 1 },
        { {
              "\"kind\":\"sub.deny\"",
              "\"org\":\"anci:toscana\"",
              "EACCES",
          },
          1 },
        { { "\"kind\":\"pub.accept\"", "\"topic\":\"report.toscana.i726\"", NULL }, 1 },
        { { "\"kind\":\"pub.reject\"", "\"org\":\"comune:i726\"", "EACCES" }, 1 },
        { { "\"kind\":\"deliver.withheld\"", "\"org\":\"anci:toscana\"", "ETLP" }, 1 },
        { { "\"kind\":\"key.revoke\"", "\"org\":\"comune:i726\"", NULL }, 1 },
        { { "\"kind\":\"registry.change\"", NULL }, 1 },
        { { "\"kind\":\"policy.change\"", NULL }, 1 },
        { { "\"kind\":\"broker.stop\"", NULL }, 1 },
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        ck_assert_msg(s_lines_with(out, expected[i].needles) >= expected[i].at_least,
                      "no record with %s %s in:\n%s", expected[i].needles[0],
                      expected[i].needles[1] ? expected[i].needles[1] : "", out);

    //  The query filters: Siena's rejected publishes only.
    const char *filtered[] = { "audit",      "query", log,           "--kind",
                               "pub.reject", "--org", "comune:i726", NULL };
    ck_assert_int_eq(vdt_cli(filtered, out, sizeof out), 0);
    const char *reject[] = { "\"kind\":\"pub.reject\"", NULL };
    const char *any[] = { "\"n\":", NULL };
    ck_assert_int_eq(s_lines_with(out, reject), 1);
    ck_assert_int_eq(s_lines_with(out, any), 1);
}
END_TEST

Suite *
it_audit_suite(void)
{
    Suite *suite = suite_create("it_audit");
    TCase *tc = tcase_create("audit");
    tcase_add_checked_fixture(tc, NULL, s_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_session_of_events_is_on_record_and_verifies);
    suite_add_tcase(suite, tc);
    return suite;
}

/*  it_rate: rate limits on the real broker. One Comune's key, limited in its agency file, floods:
    what does not fit is rejected with ERATE and a retry_after hint no longer than one message's
    refill, nothing of it is stored or delivered, and another Comune publishing at the same time
    has every message accepted and delivered. After waiting as told, the flooder is admitted
    again. Nothing here depends on how fast the machine is: the counts follow from the bucket
    sizes, and waiting longer than told only helps.  */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "harness.h"
#include "it_suites.h"
#include "vdp_agency.h"

#define S_RATE   20  // the flooder's messages a second
#define S_BURST  50  // ...and at once
#define S_FLOOD  400 // messages it tries to publish, as fast as it can
#define S_OTHERS 40  // messages the other Comune publishes meanwhile

static vdt_world_t *s_world;

static void
s_teardown(void)
{
    vdt_world_destroy(&s_world);
}

//  Gives `org`'s key in the registry a message rate of its own.
static void
s_limit(const char *org, uint64_t rate, uint64_t burst)
{
    vdp_agency_t agency = vdt_agency_read(s_world, org);
    agency.rate = (vdp_rate_t){ rate, burst };
    vdt_agency_write(s_world, &agency);
}

START_TEST(a_flood_is_refused_with_a_hint_and_others_go_on)
{
    s_world = vdt_world_new();
    vdt_agencies_demo(s_world);
    s_limit("comune:i726", S_RATE, S_BURST);
    vdt_broker_start(s_world);
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    vd_client_t *firenze = vdt_connect(s_world, "comune:d612");
    vd_client_t *cosc = vdt_connect(s_world, "cosc:toscana");
    vdt_subscribe(cosc, "alert.toscana.>", VD_OK);

    //  The flood, and the other Comune's messages in between.
    for (int i = 0; i < S_FLOOD; i++) {
        char body[32];
        snprintf(body, sizeof body, "flood-%d", i);
        vd_envelope_t *env = vdt_envelope("alert.toscana.i726", "amber", body);
        ck_assert_int_eq(vd_client_publish_async(siena, env), VD_OK);
        vd_envelope_destroy(&env);
        if (i % (S_FLOOD / S_OTHERS) == 0) {
            snprintf(body, sizeof body, "firenze-%d", i / (S_FLOOD / S_OTHERS));
            env = vdt_envelope("alert.toscana.d612", "amber", body);
            ck_assert_int_eq(vd_client_publish_async(firenze, env), VD_OK);
            vd_envelope_destroy(&env);
            ck_assert_int_eq(vd_client_flush(firenze), VD_OK);
        }
    }
    ck_assert_int_eq(vd_client_flush(siena), VD_OK);

    int accepted = 0, refused = 0;
    for (int i = 0; i < S_FLOOD; i++) {
        vd_receipt_t receipt;
        ck_assert_int_eq(vd_client_receipt(siena, &receipt, 5000), VD_OK);
        if (receipt.status == VD_RECEIPT_ACCEPTED) {
            accepted++;
            continue;
        }
        ck_assert_int_eq(receipt.status, VD_RECEIPT_REJECTED);
        ck_assert_msg(receipt.code == VD_ERATE, "rejected with %s: %s",
                      vd_strerror_name(receipt.code), receipt.reason);
        ck_assert_uint_ge(receipt.retry_after_ms, 1);
        ck_assert_uint_le(receipt.retry_after_ms, 1000 / S_RATE); // one message's refill
        refused++;
    }
    ck_assert_int_ge(accepted, S_BURST);
    ck_assert_int_ge(refused, 1);
    for (int i = 0; i < S_OTHERS; i++) {
        vd_receipt_t receipt;
        ck_assert_int_eq(vd_client_receipt(firenze, &receipt, 5000), VD_OK);
        ck_assert_msg(receipt.status == VD_RECEIPT_ACCEPTED, "firenze: %s %s",
                      vd_receipt_status_name(receipt.status), receipt.reason);
    }

    //  The COSC gets exactly what was accepted: every Firenze message, only accepted floods.
    int flood_seen = 0, firenze_seen = 0;
    for (int i = 0; i < accepted + S_OTHERS; i++) {
        char *body = vdt_recv_body(cosc);
        ck_assert_ptr_nonnull(body);
        flood_seen += strncmp(body, "flood-", 6) == 0;
        firenze_seen += strncmp(body, "firenze-", 8) == 0;
        free(body);
    }
    ck_assert_int_eq(flood_seen, accepted);
    ck_assert_int_eq(firenze_seen, S_OTHERS);

    //  Told to wait, it waits, and is admitted again.
    vd_receipt_t receipt;
    vd_envelope_t *env = vdt_envelope("alert.toscana.i726", "amber", "after");
    for (int attempt = 0; attempt < 50; attempt++) {
        receipt = vdt_publish(siena, env);
        if (receipt.status != VD_RECEIPT_REJECTED)
            break;
        ck_assert_int_eq(receipt.code, VD_ERATE);
        usleep((useconds_t)receipt.retry_after_ms * 1000);
    }
    vd_envelope_destroy(&env);
    ck_assert_int_eq(receipt.status, VD_RECEIPT_ACCEPTED);
    ck_assert(vdt_log_contains(s_world, "rate limit"));
    vd_client_destroy(&siena);
    vd_client_destroy(&firenze);
    vd_client_destroy(&cosc);
}
END_TEST

Suite *
it_rate_suite(void)
{
    Suite *suite = suite_create("it_rate");
    TCase *tc = tcase_create("rate");
    tcase_add_checked_fixture(tc, NULL, s_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_flood_is_refused_with_a_hint_and_others_go_on);
    suite_add_tcase(suite, tc);
    return suite;
}

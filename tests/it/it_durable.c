/*  it_durable: durable subscriptions, replay and flow control, against the real vedettad and
    its store. What is asserted is what a subscriber sees: which messages, in which order, with
    no gap and no duplicate, across disconnects and restarts; absence is shown with a marker
    message published after, never with a sleep.  */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "harness.h"
#include "it_suites.h"
#include "vdp_msg.h"

static vdt_world_t *s_world;

static void
s_setup(void)
{
    s_world = vdt_world_demo(true);
}

static void
s_teardown(void)
{
    vdt_world_destroy(&s_world);
}

static vd_receipt_t
s_pub(vd_client_t *client, const char *topic, const char *tlp, const char *body)
{
    vd_envelope_t *env = vdt_envelope(topic, tlp, body);
    vd_receipt_t receipt = vdt_publish(client, env);
    vd_envelope_destroy(&env);
    ck_assert_msg(receipt.status == VD_RECEIPT_ACCEPTED, "publish %s: %s %s", body,
                  vd_receipt_status_name(receipt.status), receipt.reason);
    return receipt;
}

//  Receives the next delivery and checks its body; returns it (caller destroys) for acks.
static vd_envelope_t *
s_expect(vd_client_t *client, const char *body)
{
    vd_envelope_t *env = NULL;
    int rc = vd_client_recv(client, &env, 5000);
    ck_assert_msg(rc == VD_OK, "expected '%s', got %s", body, vd_strerror_name(rc));
    size_t size = 0;
    const char *got = vd_envelope_body(env, &size);
    ck_assert_msg(size == strlen(body) && memcmp(got, body, size) == 0,
                  "expected '%s', received '%.*s'", body, (int)size, got);
    return env;
}

static void
s_expect_done(vd_client_t *client, const char *body)
{
    vd_envelope_t *env = s_expect(client, body);
    vd_envelope_destroy(&env);
}

//  Subscribes with history and checks the broker's answer.
static void
s_history(vd_client_t *client, const char *pattern, vd_sub_options_t options, int expected)
{
    char reason[256] = "";
    int rc = vd_client_subscribe_from(client, pattern, &options, reason, sizeof reason, 5000);
    ck_assert_msg(rc == expected, "subscribe %s: %s (%s), expected %s", pattern,
                  vd_strerror_name(rc), reason, vd_strerror_name(expected));
}

static vd_client_t *
s_durable(const char *org, const char *pattern, const char *name)
{
    vd_client_t *client = vdt_connect(s_world, org);
    s_history(client, pattern, (vd_sub_options_t){ .durable = name }, VD_OK);
    return client;
}

START_TEST(durable_resumes_after_what_was_acknowledged)
{
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    vd_client_t *cosc = s_durable("cosc:toscana", "alert.toscana.>", "cosc-main");
    s_pub(siena, "alert.toscana.i726", "green", "m1");
    s_pub(siena, "alert.toscana.i726", "green", "m2");
    s_pub(siena, "alert.toscana.i726", "green", "m3");
    vd_envelope_t *m1 = s_expect(cosc, "m1");
    ck_assert_str_eq(vd_envelope_durable(m1), "cosc-main");
    vd_envelope_destroy(&m1);
    vd_envelope_t *m2 = s_expect(cosc, "m2");
    ck_assert_int_eq(vd_client_ack(cosc, m2), VD_OK); // m1 and m2 processed; m3 not
    vd_envelope_destroy(&m2);
    s_expect_done(cosc, "m3");
    vd_client_destroy(&cosc); // says bye: the ack leaves first

    //  Away: two more. Back: the unacknowledged m3 again, what it missed, then live.
    s_pub(siena, "alert.toscana.i726", "green", "m4");
    s_pub(siena, "alert.toscana.i726", "green", "m5");
    cosc = s_durable("cosc:toscana", "alert.toscana.>", "cosc-main");
    s_expect_done(cosc, "m3");
    s_expect_done(cosc, "m4");
    vd_envelope_t *m5 = s_expect(cosc, "m5");
    ck_assert_int_eq(vd_client_ack(cosc, m5), VD_OK);
    vd_envelope_destroy(&m5);
    s_pub(siena, "alert.toscana.i726", "green", "m6 live");
    s_expect_done(cosc, "m6 live");

    //  Another name of the same key is a stream of its own, from now.
    vd_sub_options_t other = { .durable = "cosc-audit" };
    s_history(cosc, "alert.toscana.>", other, VD_OK);
    s_pub(siena, "alert.toscana.i726", "green", "m7");
    vd_envelope_t *a = s_expect(cosc, "m7");
    vd_envelope_t *b = s_expect(cosc, "m7");
    ck_assert_str_ne(vd_envelope_durable(a), vd_envelope_durable(b));
    vd_envelope_destroy(&a);
    vd_envelope_destroy(&b);
    vd_client_destroy(&cosc);
    vd_client_destroy(&siena);
}
END_TEST

START_TEST(durable_survives_a_broker_restart)
{
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    vd_client_t *cosc = s_durable("cosc:toscana", "alert.toscana.>", "cosc-main");
    s_pub(siena, "alert.toscana.i726", "green", "before 1");
    vd_envelope_t *env = s_expect(cosc, "before 1");
    ck_assert_int_eq(vd_client_ack(cosc, env), VD_OK);
    vd_envelope_destroy(&env);
    vd_client_destroy(&cosc);
    s_pub(siena, "alert.toscana.i726", "green", "before 2"); // missed, not acknowledged
    vd_client_destroy(&siena);

    ck_assert_int_eq(vdt_broker_stop(s_world), 0);
    vdt_broker_start(s_world);

    siena = vdt_connect(s_world, "comune:i726");
    s_pub(siena, "alert.toscana.i726", "green", "after");
    cosc = s_durable("cosc:toscana", "alert.toscana.>", "cosc-main");
    s_expect_done(cosc, "before 2");
    s_expect_done(cosc, "after");
    s_pub(siena, "alert.toscana.i726", "green", "marker");
    s_expect_done(cosc, "marker"); // and nothing in between: no duplicate of "before 1"
    vd_client_destroy(&cosc);
    vd_client_destroy(&siena);
}
END_TEST

START_TEST(replay_from_a_seq_or_a_time)
{
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    vd_receipt_t r[5];
    for (int i = 0; i < 5; i++) {
        char body[16];
        snprintf(body, sizeof body, "r%d", i);
        r[i] = s_pub(siena, "report.toscana.i726", "green", body);
    }
    vd_client_t *cosc = vdt_connect(s_world, "cosc:toscana");
    vd_sub_options_t from = { .from_seq = r[2].seq };
    s_history(cosc, "report.toscana.>", from, VD_OK);
    s_expect_done(cosc, "r2");
    s_expect_done(cosc, "r3");
    s_expect_done(cosc, "r4");
    s_pub(siena, "report.toscana.i726", "green", "r5 live");
    s_expect_done(cosc, "r5 live");
    //  The same pattern cannot be replayed twice on one client: deliveries would mix.
    s_history(cosc, "report.toscana.>", from, VD_EINVAL);
    vd_client_destroy(&cosc);

    cosc = vdt_connect(s_world, "cosc:toscana");
    vd_sub_options_t since = { .since_ms = r[4].accepted_at };
    s_history(cosc, "report.toscana.>", since, VD_OK);
    //  The first message accepted at or after that ms: r4, or an earlier one of the same ms.
    vd_envelope_t *first = NULL;
    ck_assert_int_eq(vd_client_recv(cosc, &first, 5000), VD_OK);
    ck_assert_uint_le(vd_envelope_seq(first), r[4].seq);
    ck_assert_int_ge(vd_envelope_accepted_at(first), r[4].accepted_at);
    uint64_t last = vd_envelope_seq(first);
    vd_envelope_destroy(&first);
    while (last < r[4].seq) {
        vd_envelope_t *next = NULL;
        ck_assert_int_eq(vd_client_recv(cosc, &next, 5000), VD_OK);
        ck_assert_uint_eq(vd_envelope_seq(next), last + 1);
        last = vd_envelope_seq(next);
        vd_envelope_destroy(&next);
    }
    s_expect_done(cosc, "r5 live");
    vd_client_destroy(&cosc);
    vd_client_destroy(&siena);
}
END_TEST

START_TEST(replay_applies_todays_rules)
{
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    s_pub(siena, "report.toscana.i726", "amber", "amber report");
    s_pub(siena, "report.toscana.i726", "green", "green report");
    s_pub(siena, "alert.toscana.i726", "green", "alert");
    //  ANCI may read a Comune's reports, but never its AMBER ones, replayed or not.
    vd_client_t *anci = vdt_connect(s_world, "anci:toscana");
    vd_sub_options_t from = { .from_seq = 1 };
    s_history(anci, "report.toscana.*", from, VD_OK);
    s_expect_done(anci, "green report");
    s_pub(siena, "report.toscana.i726", "green", "marker");
    s_expect_done(anci, "marker");
    //  What the policy does not grant cannot be replayed either.
    s_history(anci, "alert.toscana.>", from, VD_EACCES);
    vd_client_destroy(&anci);
    vd_client_destroy(&siena);
    ck_assert(vdt_log_contains(s_world, "(replay)")); // the withheld AMBER report
}
END_TEST

//  Reads deliveries from a raw session until `count` arrived; returns the last seq seen.
static uint64_t
s_raw_deliveries(zsock_t *raw, int count, uint64_t after)
{
    int seen = 0;
    while (seen < count) {
        zframe_t *frame = zframe_recv(raw);
        ck_assert_msg(frame != NULL, "only %d of %d deliveries arrived", seen, count);
        vdp_reader_t reader;
        vdp_reader_init(&reader, zframe_data(frame), zframe_size(frame));
        vdp_cmd_t cmd;
        vdp_envelope_t env;
        memset(&env, 0, sizeof env);
        while (vdp_reader_next(&reader, &cmd, &env, NULL, 0) == VD_OK) {
            if (cmd.op != VDP_OP_DELIVER)
                continue;
            ck_assert_uint_eq(cmd.seq, after + 1); // in order, no gap, no duplicate
            after = cmd.seq;
            seen++;
        }
        vdp_envelope_reset(&env);
        zframe_destroy(&frame);
    }
    ck_assert_int_eq(seen, count); // not more than the credit
    return after;
}

static void
s_raw_send(zsock_t *raw, vdp_writer_t *writer)
{
    zframe_t *frame = zframe_new(writer->data, writer->size);
    ck_assert_int_eq(zframe_send(&frame, raw, 0), 0);
    vdp_writer_reset(writer);
}

START_TEST(a_slow_subscriber_falls_behind_and_catches_up)
{
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    vd_client_t *fast = vdt_connect(s_world, "cosc:toscana");
    vdt_subscribe(fast, "alert.toscana.>", VD_OK);
    //  A session that grants 10 deliveries and then stops reading.
    zsock_t *slow = vdt_raw_dealer(s_world, "cosc:toscana");
    vdp_writer_t writer;
    vdp_writer_init(&writer);
    ck_assert_int_eq(vdp_writer_hello(&writer, 1, "slow", 2000, 10), VD_OK);
    ck_assert_int_eq(vdp_writer_sub(&writer, 2, "alert.toscana.>"), VD_OK);
    s_raw_send(slow, &writer);
    zframe_t *answers = zframe_recv(slow); // welcome and ok
    ck_assert_ptr_nonnull(answers);
    vdp_reader_t reader;
    vdp_reader_init(&reader, zframe_data(answers), zframe_size(answers));
    vdp_cmd_t cmd;
    ck_assert_int_eq(vdp_reader_next(&reader, &cmd, NULL, NULL, 0), VD_OK);
    ck_assert_int_eq(cmd.op, VDP_OP_WELCOME);
    ck_assert_uint_eq(cmd.credit, 10);
    ck_assert_int_eq(vdp_reader_next(&reader, &cmd, NULL, NULL, 0), VD_OK);
    ck_assert_int_eq(cmd.op, VDP_OP_OK);
    uint64_t start = cmd.seq;
    zframe_destroy(&answers);

    enum { N = 60 };
    for (int i = 0; i < N; i++) {
        char body[16];
        snprintf(body, sizeof body, "a%d", i);
        s_pub(siena, "alert.toscana.i726", "green", body);
    }
    //  The fast subscriber is not held up by the slow one.
    for (int i = 0; i < N; i++) {
        char body[16];
        snprintf(body, sizeof body, "a%d", i);
        s_expect_done(fast, body);
    }
    uint64_t last = s_raw_deliveries(slow, 10, start);
    ck_assert(vdt_log_contains(s_world, "stream behind"));
    //  More credit: the rest comes from the store, in order, then it is live again.
    ck_assert_int_eq(vdp_writer_credit(&writer, 1000), VD_OK);
    s_raw_send(slow, &writer);
    last = s_raw_deliveries(slow, N - 10, last);
    s_pub(siena, "alert.toscana.i726", "green", "live again");
    s_expect_done(fast, "live again");
    last = s_raw_deliveries(slow, 1, last);
    ck_assert(vdt_log_contains(s_world, "stream caught up"));

    //  Acks name a durable stream of the session; this one has none.
    ck_assert_int_eq(vdp_writer_ack(&writer, 9, "nope", last), VD_OK);
    s_raw_send(slow, &writer);
    zframe_t *error = zframe_recv(slow);
    ck_assert_ptr_nonnull(error);
    vdp_reader_init(&reader, zframe_data(error), zframe_size(error));
    ck_assert_int_eq(vdp_reader_next(&reader, &cmd, NULL, NULL, 0), VD_OK);
    ck_assert_int_eq(cmd.op, VDP_OP_ERROR);
    ck_assert_int_eq(cmd.code, VD_ENOTFOUND);
    ck_assert_uint_eq(cmd.ref, 9);
    zframe_destroy(&error);
    vdp_writer_release(&writer);
    zsock_destroy(&slow);
    vd_client_destroy(&fast);
    vd_client_destroy(&siena);
}
END_TEST

START_TEST(a_broker_without_store_refuses_history)
{
    vdt_world_t *world = vdt_world_new();
    vdt_agencies_demo(world);
    FILE *cfg = fopen(vdt_path(world, "vedettad.cfg"), "a");
    ck_assert_ptr_nonnull(cfg);
    fputs("store\n    path = \"\"\n", cfg); // live only
    ck_assert_int_eq(fclose(cfg), 0);
    vdt_broker_start(world);
    vd_client_t *cosc = vdt_connect(world, "cosc:toscana");
    s_history(cosc, "alert.toscana.>", (vd_sub_options_t){ .durable = "cosc-main" }, VD_ESTORE);
    ck_assert_ptr_nonnull(strstr(vd_client_reason(cosc), "no store"));
    vd_sub_options_t replay = { .from_seq = 1 };
    s_history(cosc, "alert.toscana.>", replay, VD_ESTORE);
    vdt_subscribe(cosc, "alert.toscana.>", VD_OK); // live still works
    vd_client_t *siena = vdt_connect(world, "comune:i726");
    s_pub(siena, "alert.toscana.i726", "green", "live");
    s_expect_done(cosc, "live");
    vd_client_destroy(&siena);
    vd_client_destroy(&cosc);
    vdt_world_destroy(&world);
}
END_TEST

//  An envelope of `category` on a Comune alert topic.
static vd_receipt_t
s_pub_category(vd_client_t *client, const char *category, const char *body, int64_t expires)
{
    vd_envelope_t *env = vdt_envelope("alert.toscana.i726", "green", body);
    ck_assert_int_eq(vd_envelope_set(env, "category", category), VD_OK);
    if (expires)
        ck_assert_int_eq(vd_envelope_set_time(env, "expires", expires), VD_OK);
    vd_receipt_t receipt = vdt_publish(client, env);
    vd_envelope_destroy(&env);
    ck_assert_int_eq(receipt.status, VD_RECEIPT_ACCEPTED);
    return receipt;
}

START_TEST(retention_per_category_and_expiry_limit_replay)
{
    vdt_broker_stop(s_world);
    FILE *cfg = fopen(vdt_path(s_world, "vedettad.cfg"), "a");
    ck_assert_ptr_nonnull(cfg);
    //  Training notices kept 1 ms, everything else the default 90 days.
    fputs("retention\n    interval = \"100ms\"\n    category\n        training\n"
          "            age = \"1ms\"\n",
          cfg);
    ck_assert_int_eq(fclose(cfg), 0);
    vdt_broker_start(s_world);
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    vd_receipt_t first = s_pub_category(siena, "training", "short-lived category", 0);
    s_pub_category(siena, "intrusions", "kept", 0);
    int64_t expires = zclock_time() + 300;
    s_pub_category(siena, "intrusions", "expires soon", expires);
    bool pruned = false; // bounded wait for the pass that removes the training notice
    for (int i = 0; i < 200 && !pruned; i++) {
        pruned = vdt_log_contains(s_world, "retention deleted");
        if (!pruned)
            zclock_sleep(50);
    }
    ck_assert_msg(pruned, "no retention pass ran");
    while (zclock_time() <= expires + 50) // bounded: the expiry is 300 ms away
        zclock_sleep(20);
    //  A replay from the start: neither the pruned category nor the expired message.
    vd_client_t *cosc = vdt_connect(s_world, "cosc:toscana");
    vd_sub_options_t from = { .from_seq = first.seq };
    s_history(cosc, "alert.toscana.>", from, VD_OK);
    s_expect_done(cosc, "kept");
    s_pub(siena, "alert.toscana.i726", "green", "marker");
    s_expect_done(cosc, "marker");
    vd_client_destroy(&cosc);
    vd_client_destroy(&siena);
}
END_TEST

Suite *
it_durable_suite(void)
{
    Suite *s = suite_create("it_durable");
    TCase *tc = tcase_create("durable");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, durable_resumes_after_what_was_acknowledged);
    tcase_add_test(tc, durable_survives_a_broker_restart);
    tcase_add_test(tc, replay_from_a_seq_or_a_time);
    tcase_add_test(tc, replay_applies_todays_rules);
    tcase_add_test(tc, a_slow_subscriber_falls_behind_and_catches_up);
    tcase_add_test(tc, retention_per_category_and_expiry_limit_replay);
    suite_add_tcase(s, tc);
    tc = tcase_create("live_only");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_broker_without_store_refuses_history);
    suite_add_tcase(s, tc);
    return s;
}

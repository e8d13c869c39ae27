/*  it_broker: the real vedettad with real CURVE clients on 127.0.0.1.
    Absence is proven without sleeping: after the message that must not arrive, a marker the
    recipient is entitled to is published; the broker handles frames in order and delivers to a
    session in order, so the first thing the recipient receives must be the marker.  */
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <czmq.h>

#include "harness.h"
#include "it_suites.h"
#include "vdp_agency.h"
#include "vdp_envelope.h"
#include "vdp_ids.h"
#include "vdp_msg.h"
#include "vdp_sig.h"

static vdt_world_t *s_world;

static void
s_setup(void)
{
    s_world = vdt_world_demo(false);
}

static void
s_teardown(void)
{
    vdt_world_destroy(&s_world);
    ck_assert_ptr_null(s_world);
}

//  Publishes `body` on `topic` at `tlp` as `client` and asserts the receipt's status.
static vd_receipt_t
s_pub(vd_client_t *client,
      const char *topic,
      const char *tlp,
      const char *body,
      vd_receipt_status_t expected)
{
    vd_envelope_t *env = vdt_envelope(topic, tlp, body);
    vd_receipt_t receipt = vdt_publish(client, env);
    vd_envelope_destroy(&env);
    ck_assert_msg(receipt.status == expected, "publish %s on %s: %s %s (%s)", body, topic,
                  vd_receipt_status_name(receipt.status), vd_strerror_name(receipt.code),
                  receipt.reason);
    return receipt;
}

static vd_receipt_t
s_direct(vd_client_t *client, const char *to, const char *tlp, const char *body)
{
    vd_envelope_t *env = vdt_envelope("inbox", tlp, body);
    ck_assert_int_eq(vd_envelope_set(env, "to", to), VD_OK);
    vd_receipt_t receipt = vdt_publish(client, env);
    vd_envelope_destroy(&env);
    return receipt;
}

static void
s_expect(vd_client_t *client, const char *body)
{
    char *got = vdt_recv_body(client);
    ck_assert_msg(got != NULL, "expected '%s', received nothing", body);
    ck_assert_msg(strcmp(got, body) == 0, "expected '%s', received '%s'", body, got);
    free(got);
}

START_TEST(unknown_key_is_refused_at_the_handshake)
{
    //  A well-formed key the registry does not hold: made in the world, never installed.
    char secret[600], public[600];
    snprintf(secret, sizeof secret, "%s", vdt_path(s_world, "stranger.secret"));
    snprintf(public, sizeof public, "%s", vdt_path(s_world, "stranger.agency"));
    ck_assert_int_eq(
        vd_keygen("comune:h501", "Stranger", "comune", "lazio", "default", secret, public), VD_OK);
    vd_client_t *stranger = vd_client_new();
    int rc =
        vd_client_connect(stranger, vdt_endpoint(s_world), vdt_broker_key(s_world), secret, 1500);
    ck_assert_int_ne(rc, VD_OK);
    vd_client_destroy(&stranger);
    ck_assert(vdt_log_contains(s_world, "reason=unknown-key"));
    ck_assert(vdt_log_contains(s_world, "peer=127.0.0.1"));
    //  ...and everyone else is still served.
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    s_pub(siena, "alert.toscana.i726", "green", "still here", VD_RECEIPT_ACCEPTED);
    vd_client_destroy(&siena);
}
END_TEST

START_TEST(comune_cannot_touch_another_comunes_topics)
{
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    vd_client_t *cosc = vdt_connect(s_world, "cosc:sicilia-occ");
    vdt_subscribe(cosc, "alert.sicilia-occ.>", VD_OK);
    vd_receipt_t r = s_pub(siena, "alert.sicilia-occ.b429", "green", "forged", VD_RECEIPT_REJECTED);
    ck_assert_int_eq(r.code, VD_EACCES);
    ck_assert_ptr_nonnull(strstr(r.reason, "alert.sicilia-occ.b429"));
    r = s_pub(siena, "alert.toscana.d612", "green", "forged too", VD_RECEIPT_REJECTED);
    ck_assert_int_eq(r.code, VD_EACCES);
    vdt_subscribe(siena, "alert.sicilia-occ.b429", VD_EACCES);
    vdt_subscribe(siena, "alert.toscana.d612", VD_EACCES);
    vdt_subscribe(siena, "alert.>", VD_EACCES);
    vdt_subscribe(siena, "alert.toscana.i726", VD_OK);
    vd_client_t *caltanissetta = vdt_connect(s_world, "comune:b429");
    s_pub(caltanissetta, "alert.sicilia-occ.b429", "green", "real", VD_RECEIPT_ACCEPTED);
    s_expect(cosc, "real");
    ck_assert(vdt_log_contains(s_world, "publish rejected org=comune:i726"));
    ck_assert(vdt_log_contains(s_world, "subscribe denied org=comune:i726"));
    vd_client_destroy(&caltanissetta);
    vd_client_destroy(&cosc);
    vd_client_destroy(&siena);
}
END_TEST

START_TEST(anci_never_receives_amber)
{
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    vd_client_t *anci = vdt_connect(s_world, "anci:toscana");
    vd_client_t *cosc = vdt_connect(s_world, "cosc:toscana");
    vdt_subscribe(anci, "report.toscana.*", VD_OK);
    vdt_subscribe(cosc, "report.toscana.>", VD_OK);
    s_pub(siena, "report.toscana.i726", "amber", "amber report", VD_RECEIPT_ACCEPTED);
    s_pub(siena, "report.toscana.i726", "amber+strict", "strict report", VD_RECEIPT_ACCEPTED);
    s_pub(siena, "report.toscana.i726", "green", "green report", VD_RECEIPT_ACCEPTED);
    s_expect(anci, "green report");
    s_expect(cosc, "amber report");
    s_expect(cosc, "strict report");
    s_expect(cosc, "green report");
    ck_assert(vdt_log_contains(s_world, "withheld"));
    vd_client_destroy(&cosc);
    vd_client_destroy(&anci);
    vd_client_destroy(&siena);
}
END_TEST

START_TEST(red_reaches_only_its_recipients)
{
    vd_client_t *cosc = vdt_connect(s_world, "cosc:toscana");
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    vd_client_t *firenze = vdt_connect(s_world, "comune:d612");
    vd_client_t *anci = vdt_connect(s_world, "anci:toscana");
    ck_assert_str_eq(vd_client_inbox(siena, 0), "inbox.toscana.comune-i726");
    vdt_subscribe(siena, vd_client_inbox(siena, 0), VD_OK);
    vdt_subscribe(firenze, vd_client_inbox(firenze, 0), VD_OK);
    vdt_subscribe(anci, vd_client_inbox(anci, 0), VD_OK);
    vdt_subscribe(firenze, "inbox.toscana.comune-i726", VD_EACCES);

    vd_receipt_t r = s_direct(cosc, "comune:i726", "red", "red for siena");
    ck_assert_int_eq(r.status, VD_RECEIPT_ACCEPTED);
    //  RED is never fanned out: on a broadcast topic it is refused outright.
    r = s_pub(cosc, "bulletin.toscana", "red", "red bulletin", VD_RECEIPT_REJECTED);
    ck_assert_int_eq(r.code, VD_ETLP);
    //  A COSC may not write to another region's Comune.
    r = s_direct(cosc, "comune:b429", "amber", "not my region");
    ck_assert_int_eq(r.status, VD_RECEIPT_REJECTED);
    ck_assert_int_eq(r.code, VD_EACCES);

    ck_assert_int_eq(s_direct(cosc, "comune:d612", "green", "marker firenze").status,
                     VD_RECEIPT_ACCEPTED);
    ck_assert_int_eq(s_direct(cosc, "anci:toscana", "green", "marker anci").status,
                     VD_RECEIPT_ACCEPTED);
    s_expect(siena, "red for siena");
    s_expect(firenze, "marker firenze");
    s_expect(anci, "marker anci");
    vd_client_destroy(&anci);
    vd_client_destroy(&firenze);
    vd_client_destroy(&siena);
    vd_client_destroy(&cosc);
}
END_TEST

START_TEST(retry_is_a_duplicate_with_the_first_seq)
{
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    vd_client_t *cosc = vdt_connect(s_world, "cosc:toscana");
    vdt_subscribe(cosc, "alert.toscana.>", VD_OK);
    vd_envelope_t *env = vdt_envelope("alert.toscana.i726", "green", "once");
    vd_receipt_t first = vdt_publish(siena, env);
    ck_assert_int_eq(first.status, VD_RECEIPT_ACCEPTED);
    ck_assert_uint_gt(first.seq, 0);
    vd_receipt_t again = vdt_publish(siena, env); // same id: a retry
    ck_assert_int_eq(again.status, VD_RECEIPT_DUPLICATE);
    ck_assert_uint_eq(again.seq, first.seq);
    ck_assert_int_eq(again.accepted_at, first.accepted_at);
    ck_assert_str_eq(again.id, first.id);
    vd_envelope_destroy(&env);
    s_pub(siena, "alert.toscana.i726", "green", "marker", VD_RECEIPT_ACCEPTED);
    s_expect(cosc, "once");
    s_expect(cosc, "marker"); // not "once" twice
    vd_client_destroy(&cosc);
    vd_client_destroy(&siena);
}
END_TEST

START_TEST(overlapping_patterns_deliver_once)
{
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    vd_client_t *cosc = vdt_connect(s_world, "cosc:toscana");
    vdt_subscribe(cosc, "alert.toscana.>", VD_OK);
    vdt_subscribe(cosc, "alert.toscana.i726", VD_OK);
    vdt_subscribe(cosc, "alert.toscana.*", VD_OK);
    s_pub(siena, "alert.toscana.i726", "green", "one", VD_RECEIPT_ACCEPTED);
    s_pub(siena, "alert.toscana.i726", "green", "two", VD_RECEIPT_ACCEPTED);
    vd_envelope_t *env = NULL;
    ck_assert_int_eq(vd_client_recv(cosc, &env, 5000), VD_OK);
    ck_assert_uint_gt(vd_envelope_seq(env), 0);
    ck_assert_str_eq(vd_envelope_get(env, "sender"), "comune:i726");
    ck_assert_ptr_nonnull(vd_envelope_subscription(env));
    vd_envelope_destroy(&env);
    s_expect(cosc, "two");
    ck_assert_int_eq(vd_client_unsubscribe(cosc, "alert.toscana.*", 5000), VD_OK);
    ck_assert_int_eq(vd_client_unsubscribe(cosc, "alert.toscana.*", 5000), VD_ENOTFOUND);
    vd_client_destroy(&cosc);
    vd_client_destroy(&siena);
}
END_TEST

//  Sends `size` bytes on a raw authenticated DEALER and returns the first reply command.
static vdp_cmd_t
s_raw_exchange(zsock_t *dealer, const void *data, size_t size, vdp_envelope_t *env)
{
    zframe_t *frame = zframe_new(data, size);
    ck_assert_int_eq(zframe_send(&frame, dealer, 0), 0);
    zframe_t *reply = zframe_recv(dealer);
    ck_assert_msg(reply != NULL, "no reply from the broker");
    vdp_reader_t reader;
    vdp_reader_init(&reader, zframe_data(reply), zframe_size(reply));
    vdp_cmd_t cmd;
    char reason[256];
    ck_assert_int_eq(vdp_reader_next(&reader, &cmd, env, reason, sizeof reason), VD_OK);
    vdp_envelope_reset(env);
    zframe_destroy(&reply);
    return cmd;
}

static vdp_cmd_t
s_raw_writer(zsock_t *dealer, vdp_writer_t *writer)
{
    vdp_envelope_t env;
    memset(&env, 0, sizeof env);
    vdp_cmd_t cmd = s_raw_exchange(dealer, writer->data, writer->size, &env);
    vdp_writer_reset(writer);
    return cmd;
}

START_TEST(garbage_gets_an_error_and_others_are_served)
{
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    vd_client_t *cosc = vdt_connect(s_world, "cosc:toscana");
    vdt_subscribe(cosc, "alert.toscana.>", VD_OK);
    zsock_t *raw = vdt_raw_dealer(s_world, "comune:d612");
    vdp_envelope_t scratch;
    memset(&scratch, 0, sizeof scratch);

    //  Before hello: garbage and commands alike get an error, no session is made.
    static const uint8_t junk[] = { 0xc1, 0xff, 0x00, 0x13, 0x37 };
    vdp_cmd_t reply = s_raw_exchange(raw, junk, sizeof junk, &scratch);
    ck_assert_int_eq(reply.op, VDP_OP_ERROR);
    ck_assert_int_eq(reply.code, VD_EPROTO);
    vdp_writer_t writer;
    vdp_writer_init(&writer);
    ck_assert_int_eq(vdp_writer_ping(&writer, 7), VD_OK);
    reply = s_raw_writer(raw, &writer);
    ck_assert_int_eq(reply.op, VDP_OP_ERROR);
    ck_assert_int_eq(reply.code, VD_ESESSION);
    ck_assert_uint_eq(reply.ref, 7);

    //  After hello: a huge declared count, truncated maps, an unknown op.
    ck_assert_int_eq(vdp_writer_hello(&writer, 1, "raw-test", 2000, 0), VD_OK);
    reply = s_raw_writer(raw, &writer);
    ck_assert_int_eq(reply.op, VDP_OP_WELCOME);
    ck_assert_str_eq(reply.org, "comune:d612");
    static const uint8_t huge[] = { 0xdf, 0xff, 0xff, 0xff, 0xff, 0xa2, 'o', 'p' };
    reply = s_raw_exchange(raw, huge, sizeof huge, &scratch);
    ck_assert_int_eq(reply.op, VDP_OP_ERROR);
    ck_assert_int_eq(reply.code, VD_EPROTO);
    static const uint8_t unknown_op[] = { 0x81, 0xa2, 'o', 'p', 0xa4, 'z', 'a', 'p', '!' };
    reply = s_raw_exchange(raw, unknown_op, sizeof unknown_op, &scratch);
    ck_assert_int_eq(reply.op, VDP_OP_ERROR);
    ck_assert_int_eq(reply.code, VD_EPROTO);
    //  A command only the broker sends.
    ck_assert_int_eq(vdp_writer_ok(&writer, 9), VD_OK);
    reply = s_raw_writer(raw, &writer);
    ck_assert_int_eq(reply.op, VDP_OP_ERROR);
    ck_assert_int_eq(reply.code, VD_EPROTO);
    //  Two frames in one message.
    zstr_sendm(raw, "one");
    zstr_send(raw, "two");
    zframe_t *two_part = zframe_recv(raw);
    ck_assert_ptr_nonnull(two_part);
    zframe_destroy(&two_part);

    //  Everyone else is still served.
    s_pub(siena, "alert.toscana.i726", "green", "after the garbage", VD_RECEIPT_ACCEPTED);
    s_expect(cosc, "after the garbage");
    ck_assert(vdt_broker_alive(s_world));
    vdp_writer_release(&writer);
    zsock_destroy(&raw);
    vd_client_destroy(&cosc);
    vd_client_destroy(&siena);
}
END_TEST

//  A publish built by hand: sender and fields as given, so the broker's checks can be reached.
//  Opens a session on a raw dealer.
static void
s_raw_hello(zsock_t *raw)
{
    vdp_writer_t writer;
    vdp_writer_init(&writer);
    ck_assert_int_eq(vdp_writer_hello(&writer, 1, "raw-test", 2000, 0), VD_OK);
    ck_assert_int_eq(s_raw_writer(raw, &writer).op, VDP_OP_WELCOME);
    vdp_writer_release(&writer);
}

static vdp_cmd_t
s_raw_pub(zsock_t *raw, vdp_envelope_t *env)
{
    if (!env->raw && env->sig_len == 0 && vdt_secret(s_world, env->sender))
        vdt_sign(s_world, env->sender, env); // as libvedetta would
    vdp_writer_t writer;
    vdp_writer_init(&writer);
    ck_assert_int_eq(vdp_writer_pub(&writer, env), VD_OK);
    vdp_cmd_t reply = s_raw_writer(raw, &writer);
    vdp_writer_release(&writer);
    return reply;
}

static void
s_good_envelope(vdp_envelope_t *env, const char *sender)
{
    memset(env, 0, sizeof *env);
    env->v = 1;
    vdp_uuid_generate(env->id);
    snprintf(env->sender, sizeof env->sender, "%s", sender);
    env->sent = 1700000000000;
    snprintf(env->topic, sizeof env->topic, "alert.toscana.i726");
    env->kind = VDP_KIND_ALERT;
    env->status = VDP_STATUS_ACTUAL;
    env->tlp = VDP_TLP_GREEN;
    snprintf(env->category, sizeof env->category, "intrusions");
    env->severity = VDP_SEVERITY_MINOR;
    snprintf(env->ctype, sizeof env->ctype, "text/plain");
    ck_assert_int_eq(vdp_envelope_set_body(env, "x", 1), VD_OK);
}

START_TEST(envelope_checks_answer_with_rejected_receipts)
{
    zsock_t *raw = vdt_raw_dealer(s_world, "comune:i726");
    s_raw_hello(raw);

    vdp_envelope_t env;
    s_good_envelope(&env, "cosc:toscana"); // not the key's org
    vdp_cmd_t reply = s_raw_pub(raw, &env);
    ck_assert_int_eq(reply.op, VDP_OP_RECEIPT);
    ck_assert_int_eq(reply.status, VDP_RECEIPT_REJECTED);
    ck_assert_int_eq(reply.code, VD_ESENDER);
    ck_assert_str_eq(reply.id, env.id);
    vdp_envelope_reset(&env);

    s_good_envelope(&env, "comune:i726");
    env.tlp = VDP_TLP_NONE; // TLP is mandatory
    reply = s_raw_pub(raw, &env);
    ck_assert_int_eq(reply.status, VDP_RECEIPT_REJECTED);
    ck_assert_int_eq(reply.code, VD_EFIELD);
    ck_assert_ptr_nonnull(strstr(reply.reason, "tlp"));
    vdp_envelope_reset(&env);

    s_good_envelope(&env, "comune:i726");
    env.expires = 1000; // long gone
    reply = s_raw_pub(raw, &env);
    ck_assert_int_eq(reply.status, VDP_RECEIPT_REJECTED);
    ck_assert_int_eq(reply.code, VD_EFIELD);
    vdp_envelope_reset(&env);

    s_good_envelope(&env, "comune:i726");
    reply = s_raw_pub(raw, &env);
    ck_assert_int_eq(reply.status, VDP_RECEIPT_ACCEPTED);
    vdp_envelope_reset(&env);
    zsock_destroy(&raw);
}
END_TEST

/*  Signatures (PROTOCOL.md §4.6): a publish must carry a signature made with the signing key
    registered for the key that sent it, over exactly what it carries; the broker stores it with
    the message, so a subscriber reading from the store can verify it too.  */
START_TEST(signatures_are_checked_and_kept)
{
    zsock_t *raw = vdt_raw_dealer(s_world, "comune:i726");
    s_raw_hello(raw);

    vdp_envelope_t env;
    s_good_envelope(&env, "comune:i726");
    vdp_writer_t writer;
    vdp_writer_init(&writer);
    ck_assert_int_eq(vdp_writer_pub(&writer, &env), VD_OK); // unsigned: s_raw_pub would sign
    vdp_cmd_t reply = s_raw_writer(raw, &writer);
    vdp_writer_release(&writer);
    ck_assert_int_eq(reply.status, VDP_RECEIPT_REJECTED);
    ck_assert_int_eq(reply.code, VD_ESIG);
    ck_assert_msg(strstr(reply.reason, "missing"), "reason: %s", reply.reason);

    vdt_sign(s_world, "comune:d612", &env); // a valid signature, by another Comune's key
    reply = s_raw_pub(raw, &env);
    ck_assert_int_eq(reply.code, VD_ESIG);
    ck_assert_msg(strstr(reply.reason, "another key"), "reason: %s", reply.reason);

    vdt_sign(s_world, "comune:i726", &env);
    env.severity = VDP_SEVERITY_EXTREME; // changed after signing
    reply = s_raw_pub(raw, &env);
    ck_assert_int_eq(reply.code, VD_ESIG);
    ck_assert_msg(strstr(reply.reason, "does not verify"), "reason: %s", reply.reason);
    ck_assert_int_eq(vdp_envelope_set_body(&env, "y", 1), VD_OK); // and the body
    env.severity = VDP_SEVERITY_MINOR;
    reply = s_raw_pub(raw, &env);
    ck_assert_int_eq(reply.code, VD_ESIG);

    vdt_sign(s_world, "comune:i726", &env);
    reply = s_raw_pub(raw, &env);
    ck_assert_int_eq(reply.status, VDP_RECEIPT_ACCEPTED);
    uint64_t seq = reply.seq;

    //  Read back from the store: the signature came with it and verifies with the public file.
    vd_client_t *cosc = vdt_connect(s_world, "cosc:toscana");
    vd_sub_options_t from = { .from_seq = seq };
    ck_assert_int_eq(vd_client_subscribe_from(cosc, "alert.toscana.i726", &from, NULL, 0, 5000),
                     VD_OK);
    vd_envelope_t *got = NULL;
    ck_assert_int_eq(vd_client_recv(cosc, &got, 5000), VD_OK);
    ck_assert_str_eq(got->id, env.id);
    ck_assert_uint_gt(got->sig_len, 0);
    vdp_agency_t siena = vdt_agency_read(s_world, "comune:i726");
    uint8_t sign_public[VDP_KEY_BYTES];
    ck_assert_int_eq(vdp_agency_sign_key(&siena, sign_public), VD_OK);
    char why[128] = "";
    ck_assert_msg(vdp_sig_verify(got, sign_public, NULL, why, sizeof why) == VD_OK, "%s", why);
    vdp_agency_t other = vdt_agency_read(s_world, "comune:d612");
    ck_assert_int_eq(vdp_agency_sign_key(&other, sign_public), VD_OK);
    ck_assert_int_eq(vdp_sig_verify(got, sign_public, NULL, NULL, 0), VD_ESIG);
    vd_envelope_destroy(&got);
    vd_client_destroy(&cosc);
    vdp_envelope_reset(&env);
    zsock_destroy(&raw);
}
END_TEST

START_TEST(oversize_body_is_rejected)
{
    zsock_t *raw = vdt_raw_dealer(s_world, "comune:i726");
    vdp_writer_t writer;
    vdp_writer_init(&writer);
    ck_assert_int_eq(vdp_writer_hello(&writer, 1, "raw-test", 2000, 0), VD_OK);
    ck_assert_int_eq(s_raw_writer(raw, &writer).op, VDP_OP_WELCOME);
    //  An envelope whose body is one byte over the cap, encoded by hand around a good one.
    vdp_envelope_t env;
    s_good_envelope(&env, "comune:i726");
    size_t big = VDP_MAX_BODY + 1;
    char *body = calloc(1, big);
    ck_assert_ptr_nonnull(body);
    env.body = (const uint8_t *)body; // borrowed: the encoder does not check caps
    env.body_len = big;
    free(env.owned_body);
    env.owned_body = NULL;
    vdp_cmd_t reply = s_raw_pub(raw, &env);
    ck_assert_int_eq(reply.op, VDP_OP_RECEIPT);
    ck_assert_int_eq(reply.status, VDP_RECEIPT_REJECTED);
    ck_assert_int_eq(reply.code, VD_ELIMIT);
    env.body = NULL;
    env.body_len = 0;
    free(body);
    vdp_envelope_reset(&env);
    vdp_writer_release(&writer);
    zsock_destroy(&raw);
    ck_assert(vdt_broker_alive(s_world));
}
END_TEST

START_TEST(pub_without_session_gets_its_own_receipt)
{
    zsock_t *raw = vdt_raw_dealer(s_world, "comune:i726");
    vdp_envelope_t env;
    s_good_envelope(&env, "comune:i726");
    vdp_cmd_t reply = s_raw_pub(raw, &env);
    ck_assert_int_eq(reply.op, VDP_OP_RECEIPT);
    ck_assert_int_eq(reply.status, VDP_RECEIPT_REJECTED);
    ck_assert_int_eq(reply.code, VD_ESESSION);
    ck_assert_str_eq(reply.id, env.id);
    vdp_envelope_reset(&env);
    zsock_destroy(&raw);
}
END_TEST

//  Reads a raw dealer's replies one command at a time, across frames.
typedef struct {
    zframe_t *frame;
    vdp_reader_t reader;
    vdp_envelope_t env;
} s_replies_t;

static vdp_cmd_t
s_next_reply(s_replies_t *self, zsock_t *dealer)
{
    vdp_cmd_t cmd;
    char reason[256];
    while (true) {
        if (self->frame) {
            int rc = vdp_reader_next(&self->reader, &cmd, &self->env, reason, sizeof reason);
            vdp_envelope_reset(&self->env);
            if (rc == VD_OK)
                return cmd;
            ck_assert_int_eq(rc, VD_ENOTFOUND);
            zframe_destroy(&self->frame);
        }
        self->frame = zframe_recv(dealer);
        ck_assert_msg(self->frame != NULL, "no reply from the broker");
        vdp_reader_init(&self->reader, zframe_data(self->frame), zframe_size(self->frame));
    }
}

static void
s_replies_done(s_replies_t *self)
{
    zframe_destroy(&self->frame);
    vdp_envelope_reset(&self->env);
}

//  Sends the writer's commands as one frame and empties it.
static void
s_raw_send(zsock_t *dealer, vdp_writer_t *writer)
{
    zframe_t *frame = zframe_new(writer->data, writer->size);
    ck_assert_int_eq(zframe_send(&frame, dealer, 0), 0);
    vdp_writer_reset(writer);
}

//  Lines of the broker's log that contain `text` (at_start: that begin with it).
static int
s_log_count(const char *text, bool at_start)
{
    FILE *file = fopen(vdt_broker_log(s_world), "r");
    ck_assert_ptr_nonnull(file);
    char line[4096];
    int count = 0;
    while (fgets(line, sizeof line, file)) {
        const char *hit = strstr(line, text);
        if (hit && (!at_start || hit == line))
            count++;
    }
    fclose(file);
    return count;
}

START_TEST(bye_answers_the_commands_before_it)
{
    //  One frame: ping (no session yet), hello, pub, bye, ping (no session any more). Every
    //  command is answered, in order; the pub's receipt must not be lost with the session.
    zsock_t *raw = vdt_raw_dealer(s_world, "comune:i726");
    vdp_envelope_t env;
    s_good_envelope(&env, "comune:i726");
    vdt_sign(s_world, "comune:i726", &env);
    vdp_writer_t writer;
    vdp_writer_init(&writer);
    ck_assert_int_eq(vdp_writer_ping(&writer, 1), VD_OK);
    ck_assert_int_eq(vdp_writer_hello(&writer, 2, "raw-test", 2000, 0), VD_OK);
    ck_assert_int_eq(vdp_writer_pub(&writer, &env), VD_OK);
    ck_assert_int_eq(vdp_writer_bye(&writer), VD_OK);
    ck_assert_int_eq(vdp_writer_ping(&writer, 3), VD_OK);
    s_raw_send(raw, &writer);

    s_replies_t replies;
    memset(&replies, 0, sizeof replies);
    vdp_cmd_t reply = s_next_reply(&replies, raw);
    ck_assert_int_eq(reply.op, VDP_OP_ERROR);
    ck_assert_int_eq(reply.code, VD_ESESSION);
    ck_assert_uint_eq(reply.ref, 1);
    reply = s_next_reply(&replies, raw);
    ck_assert_msg(reply.op == VDP_OP_WELCOME, "expected welcome, got %s ref=%" PRIu64,
                  vdp_op_name(reply.op), reply.ref);
    ck_assert_uint_eq(reply.ref, 2);
    reply = s_next_reply(&replies, raw);
    ck_assert_int_eq(reply.op, VDP_OP_RECEIPT);
    ck_assert_int_eq(reply.status, VDP_RECEIPT_ACCEPTED);
    ck_assert_str_eq(reply.id, env.id);
    reply = s_next_reply(&replies, raw);
    ck_assert_int_eq(reply.op, VDP_OP_ERROR);
    ck_assert_int_eq(reply.code, VD_ESESSION);
    ck_assert_uint_eq(reply.ref, 3);

    s_replies_done(&replies);
    vdp_envelope_reset(&env);
    vdp_writer_release(&writer);
    zsock_destroy(&raw);
}
END_TEST

START_TEST(refused_hello_is_answered_in_order)
{
    //  ping, hello with a version the broker does not speak, ping: three answers, in order.
    zsock_t *raw = vdt_raw_dealer(s_world, "comune:i726");
    static const uint8_t frame[] = {
        0x82, 0xa2, 'o', 'p',  0xa4, 'p', 'i', 'n',  'g', 0xa3, 'r',  'e', 'f', 0x01, // ping 1
        0x84, 0xa2, 'o', 'p',  0xa5, 'h', 'e', 'l',  'l', 'o',  0xa3, 'r', 'e', 'f',
        0x02, 0xa1, 'v', 0x63, 0xa2, 'h', 'b', 0x00, // hello 2, v 99
        0x82, 0xa2, 'o', 'p',  0xa4, 'p', 'i', 'n',  'g', 0xa3, 'r',  'e', 'f', 0x03, // ping 3
    };
    zframe_t *out = zframe_new(frame, sizeof frame);
    ck_assert_int_eq(zframe_send(&out, raw, 0), 0);
    s_replies_t replies;
    memset(&replies, 0, sizeof replies);
    vdp_cmd_t reply = s_next_reply(&replies, raw);
    ck_assert_int_eq(reply.code, VD_ESESSION);
    ck_assert_uint_eq(reply.ref, 1);
    reply = s_next_reply(&replies, raw);
    ck_assert_int_eq(reply.code, VD_EVERSION);
    ck_assert_uint_eq(reply.ref, 2);
    reply = s_next_reply(&replies, raw);
    ck_assert_int_eq(reply.code, VD_ESESSION);
    ck_assert_uint_eq(reply.ref, 3);
    s_replies_done(&replies);
    zsock_destroy(&raw);
}
END_TEST

START_TEST(envelope_too_large_to_deliver_is_rejected)
{
    //  Unknown keys have no cap of their own: an envelope padded with one fills a whole frame
    //  as a pub, and would need more than VDP_MAX_FRAME inside a deliver.
    vd_client_t *cosc = vdt_connect(s_world, "cosc:toscana");
    vdt_subscribe(cosc, "alert.toscana.>", VD_OK);
    zsock_t *raw = vdt_raw_dealer(s_world, "comune:i726");
    s_raw_hello(raw);

    vdp_envelope_t env;
    s_good_envelope(&env, "comune:i726");
    uint8_t *plain = NULL;
    size_t plain_size = 0;
    ck_assert_int_eq(vdp_envelope_encode(&env, &plain, &plain_size), VD_OK);
    ck_assert_uint_lt(plain[0], 0x8f);   // a fixmap with room for one more key
    size_t pub_overhead = 1 + 3 + 4 + 4; // {"op": "pub", "env": ...}
    size_t raw_len = VDP_MAX_FRAME - pub_overhead;
    size_t pad = raw_len - plain_size - 4 - 5; // key "pad", bin32 header
    uint8_t *big = calloc(1, raw_len);
    ck_assert_ptr_nonnull(big);
    memcpy(big, plain, plain_size);
    big[0]++;
    uint8_t *p = big + plain_size;
    *p++ = 0xa3, *p++ = 'p', *p++ = 'a', *p++ = 'd';
    *p++ = 0xc6;
    *p++ = (uint8_t)(pad >> 24), *p++ = (uint8_t)(pad >> 16), *p++ = (uint8_t)(pad >> 8),
    *p++ = (uint8_t)pad;
    ck_assert_uint_eq((size_t)(p - big) + pad, raw_len);
    env.raw = big;
    env.raw_len = raw_len;
    vdp_cmd_t reply = s_raw_pub(raw, &env);
    ck_assert_int_eq(reply.op, VDP_OP_RECEIPT);
    ck_assert_msg(reply.status == VDP_RECEIPT_REJECTED, "a %zu-byte envelope was %s", raw_len,
                  vdp_receipt_status_name(reply.status));
    ck_assert_int_eq(reply.code, VD_ELIMIT);
    env.raw = NULL;
    env.raw_len = 0;
    free(big);
    free(plain);
    vdp_envelope_reset(&env);

    //  The subscriber is still connected and served.
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    s_pub(siena, "alert.toscana.i726", "green", "marker", VD_RECEIPT_ACCEPTED);
    s_expect(cosc, "marker");
    vd_client_destroy(&siena);
    zsock_destroy(&raw);
    vd_client_destroy(&cosc);
}
END_TEST

START_TEST(a_denied_pattern_cannot_forge_log_lines)
{
    zsock_t *raw = vdt_raw_dealer(s_world, "comune:i726");
    s_raw_hello(raw);
    vdp_writer_t writer;
    vdp_writer_init(&writer);
    ck_assert_int_eq(vdp_writer_sub(&writer, 5, "x\nFORGED vdb_server: session opened"), VD_OK);
    vdp_cmd_t reply = s_raw_writer(raw, &writer);
    ck_assert_int_eq(reply.op, VDP_OP_ERROR);
    ck_assert_int_eq(reply.code, VD_EINVAL);
    //  The denial is logged before it is answered.
    ck_assert_int_eq(s_log_count("subscribe denied org=comune:i726", false), 1);
    ck_assert_int_eq(s_log_count("FORGED", true), 0);
    vdp_writer_release(&writer);
    zsock_destroy(&raw);
}
END_TEST

START_TEST(bad_commands_are_logged_once_per_session)
{
    zsock_t *raw = vdt_raw_dealer(s_world, "comune:i726");
    s_raw_hello(raw);
    static const uint8_t frame[] = {
        0x81, 0xa2, 'o', 'p',  0xa4, 'z',  'a', 'p', '!',  0x81, 0xa2, 'o', 'p',  0xa4,
        'z',  'a',  'p', '!',  0x81, 0xa2, 'o', 'p', 0xa4, 'z',  'a',  'p', '!',  0x82,
        0xa2, 'o',  'p', 0xa4, 'p',  'i',  'n', 'g', 0xa3, 'r',  'e',  'f', 0x09,
    };
    zframe_t *out = zframe_new(frame, sizeof frame);
    ck_assert_int_eq(zframe_send(&out, raw, 0), 0);
    s_replies_t replies;
    memset(&replies, 0, sizeof replies);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(s_next_reply(&replies, raw).code, VD_EPROTO);
    vdp_cmd_t reply = s_next_reply(&replies, raw);
    ck_assert_int_eq(reply.op, VDP_OP_PONG);
    ck_assert_uint_eq(reply.ref, 9);
    ck_assert_int_eq(s_log_count("bad command org=comune:i726", false), 1);
    s_replies_done(&replies);
    zsock_destroy(&raw);
}
END_TEST

START_TEST(a_negative_limit_is_a_configuration_error)
{
    vdt_broker_stop(s_world);
    FILE *file = fopen(vdt_path(s_world, "vedettad.cfg"), "a");
    ck_assert_ptr_nonnull(file);
    fputs("limits\n    session-backlog = \" -1\"\n", file); // strtoull would read ULLONG_MAX
    fclose(file);
    char command[1024];
    snprintf(command, sizeof command, "%s --config %s/vedettad.cfg --check 2>%s/check.err",
             VDT_BROKER_BIN, vdt_path(s_world, "."), vdt_path(s_world, "."));
    int status = system(command);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 2);
}
END_TEST

START_TEST(a_subscriber_that_only_receives_keeps_its_session)
{
    //  The broker closes sessions it has not heard from for 3 heartbeats; a subscriber busy
    //  receiving must still speak up. Paced by receive timeouts, well past 3 intervals.
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    vd_client_t *cosc = vd_client_new();
    ck_assert_int_eq(vd_client_set_heartbeat(cosc, 100), VD_OK);
    ck_assert_int_eq(vd_client_connect(cosc, vdt_endpoint(s_world), vdt_broker_key(s_world),
                                       vdt_secret(s_world, "cosc:toscana"), 5000),
                     VD_OK);
    vdt_subscribe(cosc, "alert.toscana.>", VD_OK);
    for (int i = 0; i < 30; i++) {
        char body[32];
        snprintf(body, sizeof body, "tick %d", i);
        s_pub(siena, "alert.toscana.i726", "green", body, VD_RECEIPT_ACCEPTED);
        s_expect(cosc, body);
        vd_envelope_t *none = NULL;
        ck_assert_int_eq(vd_client_recv(cosc, &none, 25), VD_ETIMEOUT);
    }
    ck_assert(!vdt_log_contains(s_world, "why=heartbeat expired"));
    vd_client_destroy(&cosc);
    vd_client_destroy(&siena);
}
END_TEST

START_TEST(client_chosen_routing_ids_and_empty_frames_are_refused)
{
    zsock_t *raw = vdt_raw_dealer(s_world, "comune:d612");
    vdp_envelope_t scratch;
    memset(&scratch, 0, sizeof scratch);
    vdp_cmd_t reply = s_raw_exchange(raw, "", 0, &scratch);
    ck_assert_int_eq(reply.op, VDP_OP_ERROR);
    ck_assert_int_eq(reply.code, VD_EPROTO);
    zsock_destroy(&raw);

    //  A DEALER that picks its own routing id is answered EPROTO and never gets a session.
    const char *path = vdt_secret(s_world, "comune:i726");
    vdp_secret_t secret;
    char err[256];
    ck_assert_int_eq(vdp_secret_load(path, &secret, err, sizeof err), VD_OK);
    zsock_t *chosen = zsock_new(ZMQ_DEALER);
    ck_assert_ptr_nonnull(chosen);
    zsock_set_identity(chosen, "siena-console");
    zsock_set_curve_serverkey(chosen, vdt_broker_key(s_world));
    zsock_set_curve_publickey(chosen, secret.agency.curve_public);
    zsock_set_curve_secretkey(chosen, secret.curve_secret);
    zsock_set_linger(chosen, 0);
    zsock_set_rcvtimeo(chosen, 5000);
    vdp_secret_wipe(&secret);
    ck_assert_int_eq(zsock_connect(chosen, "%s", vdt_endpoint(s_world)), 0);
    vdp_writer_t writer;
    vdp_writer_init(&writer);
    ck_assert_int_eq(vdp_writer_hello(&writer, 1, "raw-test", 2000, 0), VD_OK);
    reply = s_raw_writer(chosen, &writer);
    ck_assert_int_eq(reply.op, VDP_OP_ERROR);
    ck_assert_int_eq(reply.code, VD_EPROTO);
    ck_assert_ptr_nonnull(strstr(reply.reason, "routing id"));
    vdp_writer_release(&writer);
    zsock_destroy(&chosen);
}
END_TEST

START_TEST(sigterm_stops_cleanly)
{
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    s_pub(siena, "alert.toscana.i726", "green", "before stop", VD_RECEIPT_ACCEPTED);
    int status = vdt_broker_stop(s_world);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert(vdt_log_contains(s_world, "stopping accepted=1"));
    vd_client_destroy(&siena);
}
END_TEST

START_TEST(bad_policy_stops_the_broker_with_a_message)
{
    vdt_broker_stop(s_world);
    FILE *file = fopen(vdt_path(s_world, "bad.vdp"), "w");
    ck_assert_ptr_nonnull(file);
    fputs("comune publish alert.$j.$code amber\ncomune publsh alert.x red\n", file);
    fclose(file);
    file = fopen(vdt_path(s_world, "vedettad.cfg"), "a");
    ck_assert_ptr_nonnull(file);
    fputs("broker\n    policy = \"bad.vdp\"\n", file);
    fclose(file);
    char command[1024];
    snprintf(command, sizeof command, "%s --config %s/vedettad.cfg --check 2>%s/check.err",
             VDT_BROKER_BIN, vdt_path(s_world, "."), vdt_path(s_world, "."));
    int status = system(command);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 2);
    file = fopen(vdt_path(s_world, "check.err"), "r");
    ck_assert_ptr_nonnull(file);
    char line[512] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof line, file));
    fclose(file);
    ck_assert_msg(strstr(line, "bad.vdp:2") != NULL, "message was: %s", line);
}
END_TEST

Suite *
it_broker_suite(void)
{
    Suite *suite = suite_create("it_broker");
    TCase *identity = tcase_create("identity");
    tcase_add_checked_fixture(identity, s_setup, s_teardown);
    tcase_set_timeout(identity, 60);
    tcase_add_test(identity, unknown_key_is_refused_at_the_handshake);
    suite_add_tcase(suite, identity);

    TCase *policy = tcase_create("policy");
    tcase_add_checked_fixture(policy, s_setup, s_teardown);
    tcase_set_timeout(policy, 60);
    tcase_add_test(policy, comune_cannot_touch_another_comunes_topics);
    tcase_add_test(policy, anci_never_receives_amber);
    tcase_add_test(policy, red_reaches_only_its_recipients);
    suite_add_tcase(suite, policy);

    TCase *delivery = tcase_create("delivery");
    tcase_add_checked_fixture(delivery, s_setup, s_teardown);
    tcase_set_timeout(delivery, 60);
    tcase_add_test(delivery, retry_is_a_duplicate_with_the_first_seq);
    tcase_add_test(delivery, overlapping_patterns_deliver_once);
    suite_add_tcase(suite, delivery);

    TCase *robustness = tcase_create("robustness");
    tcase_add_checked_fixture(robustness, s_setup, s_teardown);
    tcase_set_timeout(robustness, 60);
    tcase_add_test(robustness, garbage_gets_an_error_and_others_are_served);
    tcase_add_test(robustness, envelope_checks_answer_with_rejected_receipts);
    tcase_add_test(robustness, signatures_are_checked_and_kept);
    tcase_add_test(robustness, oversize_body_is_rejected);
    tcase_add_test(robustness, pub_without_session_gets_its_own_receipt);
    tcase_add_test(robustness, bye_answers_the_commands_before_it);
    tcase_add_test(robustness, refused_hello_is_answered_in_order);
    tcase_add_test(robustness, envelope_too_large_to_deliver_is_rejected);
    tcase_add_test(robustness, a_denied_pattern_cannot_forge_log_lines);
    tcase_add_test(robustness, bad_commands_are_logged_once_per_session);
    tcase_add_test(robustness, a_negative_limit_is_a_configuration_error);
    tcase_add_test(robustness, a_subscriber_that_only_receives_keeps_its_session);
    tcase_add_test(robustness, client_chosen_routing_ids_and_empty_frames_are_refused);
    tcase_add_test(robustness, sigterm_stops_cleanly);
    tcase_add_test(robustness, bad_policy_stops_the_broker_with_a_message);
    suite_add_tcase(suite, robustness);
    return suite;
}

/*  it_client: libvedetta's session handling, end to end.
    - Against the real vedettad: the broker killed and restarted on the same port, subscriptions
      restored without the application doing anything; a refused key reported as VD_EAUTH.
    - Envelopes: field checks and the JSON form, without a broker.
    - Against a scripted broker in this process (a CURVE ROUTER speaking vdp_msg), for what the
      real one cannot be made to do on cue: a receipt and deliveries in one frame, malformed
      deliveries among good ones, a publish that is never answered, a broker that forgets the
      session.  */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>
#include <czmq.h>
#include <jansson.h>

#include "harness.h"
#include "it_suites.h"
#include "vdp_envelope.h"
#include "vdp_msg.h"
#include "vdp_sig.h"

#define FAST_HEARTBEAT_MS 200

static vdt_world_t *s_world;

static void
s_setup(void)
{
    s_world = vdt_world_new();
    vdt_agencies_demo(s_world);
}

static void
s_teardown(void)
{
    vdt_world_destroy(&s_world);
    ck_assert_ptr_null(s_world);
}

static int64_t
s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  A client of `org` with a short heartbeat, connected to `endpoint` whose key is `server_key`.
static vd_client_t *
s_connect(const char *org, const char *endpoint, const char *server_key)
{
    vd_client_t *client = vd_client_new();
    ck_assert_ptr_nonnull(client);
    ck_assert_int_eq(vd_client_set_heartbeat(client, FAST_HEARTBEAT_MS), VD_OK);
    const char *secret = vdt_secret(s_world, org);
    ck_assert_ptr_nonnull(secret);
    int rc = vd_client_connect(client, endpoint, server_key, secret, 5000);
    ck_assert_msg(rc == VD_OK, "connect: %s (%s)", vd_strerror(rc), vd_client_reason(client));
    return client;
}

/*  -------------------------------------------------------------------------------------------
    Envelopes (no broker)  */

#define UUID_A "11111111-2222-4333-8444-555555555555"

static const struct {
    const char *field;
    const char *value;
    int rc;
} s_set_cases[] = {
    { "topic", "alert.toscana.i726", VD_OK },
    { "topic", "Alert.toscana", VD_EINVAL },
    { "topic", "alert..toscana", VD_EINVAL },
    { "topic", "alert.*", VD_EINVAL },
    { "tlp", "amber+strict", VD_OK },
    { "tlp", "purple", VD_EINVAL },
    { "kind", "update", VD_OK },
    { "status", "exercise", VD_OK },
    { "severity", "catastrophic", VD_EINVAL },
    { "stage", "early-warning", VD_OK },
    { "urgency", "immediate", VD_OK },
    { "certainty", "maybe", VD_EINVAL },
    { "id", UUID_A, VD_OK },
    { "id", "11111111-2222-4333-8444-55555555555", VD_EINVAL },
    { "sender", "comune:i726", VD_OK },
    { "sender", "comune", VD_EINVAL },
    { "category", "phishing", VD_OK },
    { "category", "two\nlines", VD_EINVAL },
    { "category", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", VD_ELIMIT },
    { "lang", "it", VD_OK },
    { "lang", "it-IT-x-private-1", VD_ELIMIT },
    { "to", "comune:i726", VD_OK },
    { "to", "somebody", VD_EINVAL },
    { "refs", "comune:i726/" UUID_A, VD_OK },
    { "refs", "comune:i726", VD_EINVAL },
    { "refs", "comune:i726/not-a-uuid", VD_EINVAL },
    { "colour", "red", VD_EINVAL },
};

START_TEST(set_checks_each_field)
{
    vd_envelope_t *env = vd_envelope_new();
    ck_assert_ptr_nonnull(env);
    int rc = vd_envelope_set(env, s_set_cases[_i].field, s_set_cases[_i].value);
    ck_assert_msg(rc == s_set_cases[_i].rc, "%s=%s: got %s", s_set_cases[_i].field,
                  s_set_cases[_i].value, vd_strerror_name(rc));
    const char *field = s_set_cases[_i].field;
    if (strcmp(field, "to") == 0) {
        ck_assert_uint_eq(vd_envelope_to_count(env), rc == VD_OK ? 1 : 0);
    } else if (strcmp(field, "refs") == 0) {
        ck_assert_uint_eq(vd_envelope_refs_count(env), rc == VD_OK ? 1 : 0);
    } else if (rc == VD_OK) {
        ck_assert_str_eq(vd_envelope_get(env, field), s_set_cases[_i].value);
        ck_assert_int_eq(vd_envelope_set(env, field, ""), VD_OK); // "" clears
        ck_assert_ptr_null(vd_envelope_get(env, field));
    } else {
        ck_assert_ptr_null(vd_envelope_get(env, field)); // a refused value leaves nothing
    }
    vd_envelope_destroy(&env);
    ck_assert_ptr_null(env);
}
END_TEST

START_TEST(lists_and_times_have_limits)
{
    vd_envelope_t *env = vd_envelope_new();
    ck_assert_int_eq(vd_envelope_set(env, "to", "cosc:toscana"), VD_OK);
    ck_assert_int_eq(vd_envelope_set(env, "to", "cosc:toscana"), VD_OK);
    ck_assert_uint_eq(vd_envelope_to_count(env), 1); // the same recipient once
    for (int i = 1; i < (int)VDP_MAX_TO; i++) {
        char org[32];
        snprintf(org, sizeof org, "comune:a%03d", i);
        ck_assert_int_eq(vd_envelope_set(env, "to", org), VD_OK);
    }
    ck_assert_int_eq(vd_envelope_set(env, "to", "comune:z999"), VD_ELIMIT);
    ck_assert_uint_eq(vd_envelope_to_count(env), VDP_MAX_TO);
    ck_assert_str_eq(vd_envelope_to(env, 0), "cosc:toscana");
    ck_assert_ptr_null(vd_envelope_to(env, VDP_MAX_TO));
    for (int i = 0; i < (int)VDP_MAX_REFS; i++)
        ck_assert_int_eq(vd_envelope_set(env, "refs", "cnaipic/" UUID_A), VD_OK);
    ck_assert_int_eq(vd_envelope_set(env, "refs", "cnaipic/" UUID_A), VD_ELIMIT);
    const char *sender = NULL, *id = NULL;
    ck_assert_int_eq(vd_envelope_ref(env, 0, &sender, &id), VD_OK);
    ck_assert_str_eq(sender, "cnaipic");
    ck_assert_str_eq(id, UUID_A);
    ck_assert_int_eq(vd_envelope_ref(env, VDP_MAX_REFS, &sender, &id), VD_EINVAL);

    ck_assert_int_eq(vd_envelope_set_time(env, "expires", -1), VD_EINVAL);
    ck_assert_int_eq(vd_envelope_set_time(env, "accepted_at", 5), VD_EINVAL); // broker's stamp
    ck_assert_int_eq(vd_envelope_set_time(env, "whenever", 5), VD_EINVAL);
    ck_assert_int_eq(vd_envelope_set_time(env, "aware_at", 1700000000000), VD_OK);
    ck_assert_int_eq(vd_envelope_get_time(env, "aware_at"), 1700000000000);
    ck_assert_int_eq(vd_envelope_get_time(env, "expires"), 0);
    static uint8_t big[VDP_MAX_BODY + 1];
    ck_assert_int_eq(vd_envelope_set_body(env, big, sizeof big), VD_ELIMIT);
    ck_assert_int_eq(vd_envelope_set_body(env, big, VDP_MAX_BODY), VD_OK);
    vd_envelope_destroy(&env);
}
END_TEST

//  The envelope as JSON, parsed back.
static json_t *
s_json(const vd_envelope_t *env)
{
    char *text = vd_envelope_to_json(env);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_null(strchr(text, '\n')); // one line
    json_error_t error;
    json_t *obj = json_loads(text, 0, &error);
    ck_assert_msg(obj != NULL, "not JSON: %s (%s)", text, error.text);
    free(text);
    return obj;
}

START_TEST(json_holds_every_present_field)
{
    vd_envelope_t *env = vdt_envelope("inbox", "amber+strict", "città: 3 hosts");
    ck_assert_int_eq(vd_envelope_set(env, "to", "comune:i726"), VD_OK);
    ck_assert_int_eq(vd_envelope_set(env, "refs", "cosc:toscana/" UUID_A), VD_OK);
    ck_assert_int_eq(vd_envelope_set(env, "stage", "early-warning"), VD_OK);
    ck_assert_int_eq(vd_envelope_set_time(env, "sent", 1700000000123), VD_OK);
    json_t *obj = s_json(env);
    ck_assert_str_eq(json_string_value(json_object_get(obj, "topic")), "inbox");
    ck_assert_str_eq(json_string_value(json_object_get(obj, "tlp")), "amber+strict");
    ck_assert_str_eq(json_string_value(json_object_get(obj, "stage")), "early-warning");
    ck_assert_int_eq(json_integer_value(json_object_get(obj, "sent")), 1700000000123);
    ck_assert_str_eq(json_string_value(json_object_get(obj, "sent_iso")),
                     "2023-11-14T22:13:20.123Z");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(obj, "to"), 0)),
                     "comune:i726");
    json_t *ref = json_array_get(json_object_get(obj, "refs"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(ref, "sender")), "cosc:toscana");
    ck_assert_str_eq(json_string_value(json_object_get(ref, "id")), UUID_A);
    ck_assert_str_eq(json_string_value(json_object_get(obj, "body")), "città: 3 hosts");
    //  Absent fields are absent, not empty.
    ck_assert_ptr_null(json_object_get(obj, "incident"));
    ck_assert_ptr_null(json_object_get(obj, "seq"));
    ck_assert_ptr_null(json_object_get(obj, "accepted_at_iso"));
    ck_assert_ptr_null(json_object_get(obj, "body_b64"));
    json_decref(obj);
    vd_envelope_destroy(&env);
}
END_TEST

static const struct {
    const char *bytes;
    size_t size;
    const char *b64; // NULL: valid UTF-8, shown as text
} s_body_cases[] = {
    { "plain", 5, NULL },
    { "\xe2\x82\xac 5", 5, NULL },         // euro sign
    { "\xf0\x9f\x94\x92", 4, NULL },       // a 4-byte character
    { "\xff\x00\x01", 3, "/wAB" },         // not UTF-8 at all
    { "\xc0\xaf", 2, "wK8=" },             // overlong '/'
    { "\xed\xa0\x80", 3, "7aCA" },         // a UTF-16 surrogate
    { "\xe2\x82", 2, "4oI=" },             // truncated sequence
    { "\xf4\x90\x80\x80", 4, "9JCAgA==" }, // above U+10FFFF
};

START_TEST(json_body_is_text_only_when_utf8)
{
    vd_envelope_t *env = vdt_envelope("bulletin.toscana", "green", "");
    ck_assert_int_eq(vd_envelope_set_body(env, s_body_cases[_i].bytes, s_body_cases[_i].size),
                     VD_OK);
    json_t *obj = s_json(env);
    if (s_body_cases[_i].b64) {
        ck_assert_ptr_null(json_object_get(obj, "body"));
        ck_assert_str_eq(json_string_value(json_object_get(obj, "body_b64")), s_body_cases[_i].b64);
    } else {
        json_t *body = json_object_get(obj, "body");
        ck_assert_uint_eq(json_string_length(body), s_body_cases[_i].size);
        ck_assert_mem_eq(json_string_value(body), s_body_cases[_i].bytes, s_body_cases[_i].size);
        ck_assert_ptr_null(json_object_get(obj, "body_b64"));
    }
    json_decref(obj);
    vd_envelope_destroy(&env);
}
END_TEST

/*  -------------------------------------------------------------------------------------------
    Against the real broker  */

START_TEST(restart_restores_subscriptions)
{
    vdt_broker_start(s_world);
    vd_client_t *siena = s_connect("comune:i726", vdt_endpoint(s_world), vdt_broker_key(s_world));
    vd_client_t *cosc = s_connect("cosc:toscana", vdt_endpoint(s_world), vdt_broker_key(s_world));
    vdt_subscribe(siena, "bulletin.toscana", VD_OK);
    vd_envelope_t *env = vdt_envelope("bulletin.toscana", "green", "before the restart");
    ck_assert_int_eq(vdt_publish(cosc, env).status, VD_RECEIPT_ACCEPTED);
    vd_envelope_destroy(&env);
    char *body = vdt_recv_body(siena);
    ck_assert_str_eq(body, "before the restart");
    free(body);

    vdt_broker_pin_endpoint(s_world);
    vdt_broker_kill(s_world);
    vdt_broker_start(s_world);

    //  Nothing tells siena when it is subscribed again, and the broker keeps no message for a
    //  subscription it does not have: publish until one arrives, within 10 s.
    bool received = false;
    int64_t deadline = s_now_ms() + 10000;
    for (int i = 0; !received && s_now_ms() < deadline; i++) {
        char text[64];
        snprintf(text, sizeof text, "after the restart %d", i);
        env = vdt_envelope("bulletin.toscana", "green", text);
        vd_receipt_t receipt;
        ck_assert_int_eq(vd_client_publish(cosc, env, &receipt, 5000), VD_OK);
        ck_assert_int_eq(receipt.status, VD_RECEIPT_ACCEPTED);
        vd_envelope_destroy(&env);
        vd_envelope_t *got = NULL;
        if (vd_client_recv(siena, &got, FAST_HEARTBEAT_MS) == VD_OK) {
            size_t size = 0;
            const char *data = vd_envelope_body(got, &size);
            ck_assert(size > 17 && strncmp(data, "after the restart", 17) == 0);
            ck_assert_str_eq(vd_envelope_subscription(got), "bulletin.toscana");
            vd_envelope_destroy(&got);
            received = true;
        }
    }
    ck_assert_msg(received, "no delivery after the broker restarted");
    vd_client_destroy(&cosc);
    vd_client_destroy(&siena);
}
END_TEST

START_TEST(refused_key_is_eauth_before_the_timeout)
{
    vdt_broker_start(s_world);
    char secret[600], public[600];
    snprintf(secret, sizeof secret, "%s", vdt_path(s_world, "stranger.secret"));
    snprintf(public, sizeof public, "%s", vdt_path(s_world, "stranger.agency"));
    ck_assert_int_eq(vd_keygen("comune:h501", "Roma", "comune", "lazio", NULL, secret, public),
                     VD_OK);
    vd_client_t *stranger = vd_client_new();
    ck_assert_ptr_nonnull(stranger);
    int rc =
        vd_client_connect(stranger, vdt_endpoint(s_world), vdt_broker_key(s_world), secret, 5000);
    ck_assert_int_eq(rc, VD_EAUTH); // not VD_ETIMEOUT: the refusal was seen, not waited out
    ck_assert_ptr_null(vd_client_org(stranger));
    vd_client_destroy(&stranger);
}
END_TEST

//  A client that expects another broker key (a broker posing as ours, or a typo) never gets a
//  session: the handshake cannot complete, so nothing is sent to the impostor but the hello.
START_TEST(a_wrong_broker_key_gets_no_session)
{
    vdt_broker_start(s_world);
    char impostor[41], impostor_secret[41];
    ck_assert_int_eq(zmq_curve_keypair(impostor, impostor_secret), 0);
    vd_client_t *siena = vd_client_new();
    ck_assert_ptr_nonnull(siena);
    int rc = vd_client_connect(siena, vdt_endpoint(s_world), impostor,
                               vdt_secret(s_world, "comune:i726"), 1000);
    ck_assert_int_eq(rc, VD_ETIMEOUT);
    ck_assert_ptr_null(vd_client_org(siena));
    vd_client_destroy(&siena);
}
END_TEST

START_TEST(async_publishes_get_one_receipt_each)
{
    vdt_broker_start(s_world);
    vd_client_t *siena = s_connect("comune:i726", vdt_endpoint(s_world), vdt_broker_key(s_world));
    //  More than one frame holds (VDP_MAX_BATCH commands), so the batch is sent when full.
    enum { COUNT = 2500 };
    char(*ids)[VDP_ID_LEN + 1] = calloc(COUNT, sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    for (int i = 0; i < COUNT; i++) {
        vd_envelope_t *env = vdt_envelope("alert.toscana.i726", "amber", "burst");
        ck_assert_int_eq(vd_client_publish_async(siena, env), VD_OK);
        snprintf(ids[i], sizeof ids[i], "%s", vd_envelope_get(env, "id"));
        vd_envelope_destroy(&env);
    }
    ck_assert_int_eq(vd_client_flush(siena), VD_OK);
    uint64_t last_seq = 0;
    for (int i = 0; i < COUNT; i++) {
        vd_receipt_t receipt;
        ck_assert_int_eq(vd_client_receipt(siena, &receipt, 5000), VD_OK);
        ck_assert_str_eq(receipt.id, ids[i]); // one session, answered in order
        ck_assert_int_eq(receipt.status, VD_RECEIPT_ACCEPTED);
        ck_assert_uint_gt(receipt.seq, last_seq);
        last_seq = receipt.seq;
    }
    vd_receipt_t none;
    ck_assert_int_eq(vd_client_receipt(siena, &none, 0), VD_ETIMEOUT);
    ck_assert_uint_eq(vd_client_dropped(siena), 0);
    free(ids);
    vd_client_destroy(&siena);
}
END_TEST

/*  A burst is signed as trees of VDP_SIG_MAX_LEAVES (the last one smaller, at the flush), and
    every delivery verifies alone with the publisher's public key: with one cache, one Ed25519
    check per tree.  */
START_TEST(async_publishes_are_signed_in_trees)
{
    vdt_broker_start(s_world);
    vd_client_t *siena = s_connect("comune:i726", vdt_endpoint(s_world), vdt_broker_key(s_world));
    vd_client_t *cosc = s_connect("cosc:toscana", vdt_endpoint(s_world), vdt_broker_key(s_world));
    vdt_subscribe(cosc, "alert.toscana.i726", VD_OK);
    enum { COUNT = 2 * VDP_SIG_MAX_LEAVES + 22 };
    for (int i = 0; i < COUNT; i++) {
        vd_envelope_t *env = vdt_envelope("alert.toscana.i726", "amber", "burst");
        ck_assert_int_eq(vd_client_publish_async(siena, env), VD_OK);
        vd_envelope_destroy(&env);
    }
    ck_assert_int_eq(vd_client_flush(siena), VD_OK);
    for (int i = 0; i < COUNT; i++) {
        vd_receipt_t receipt;
        ck_assert_int_eq(vd_client_receipt(siena, &receipt, 5000), VD_OK);
        ck_assert_msg(receipt.status == VD_RECEIPT_ACCEPTED, "receipt %d: %s %s", i,
                      vd_strerror_name(receipt.code), receipt.reason);
    }
    vdp_agency_t agency = vdt_agency_read(s_world, "comune:i726");
    uint8_t sign_public[VDP_KEY_BYTES];
    ck_assert_int_eq(vdp_agency_sign_key(&agency, sign_public), VD_OK);
    vdp_sig_cache_t cache = { .valid = false };
    for (int i = 0; i < COUNT; i++) {
        vd_envelope_t *got = NULL;
        ck_assert_int_eq(vd_client_recv(cosc, &got, 5000), VD_OK);
        vdp_sig_t sig;
        ck_assert_int_eq(vdp_sig_decode(&sig, got->sig, got->sig_len, NULL, 0), VD_OK);
        ck_assert_uint_eq(sig.count, i < 2 * (int)VDP_SIG_MAX_LEAVES ? VDP_SIG_MAX_LEAVES : 22);
        ck_assert_uint_eq(sig.index, i % VDP_SIG_MAX_LEAVES);
        char why[128] = "";
        ck_assert_msg(vdp_sig_verify(got, sign_public, &cache, why, sizeof why) == VD_OK,
                      "delivery %d: %s", i, why);
        vd_envelope_destroy(&got);
    }
    ck_assert_uint_eq(cache.checks, 3);
    ck_assert_uint_eq(cache.hits, COUNT - 3);
    vd_client_destroy(&cosc);
    vd_client_destroy(&siena);
}
END_TEST

/*  -------------------------------------------------------------------------------------------
    Against a scripted broker  */

typedef enum {
    SCRIPT_ANSWER,      // pub: deliver, receipt, deliver, all in one frame
    SCRIPT_MALFORMED,   // pub: like ANSWER, with malformed delivers around the good ones
    SCRIPT_SILENT,      // pub: no answer at all
    SCRIPT_FORGET_ONCE, // first pub: error ESESSION, then no session until the next hello
    SCRIPT_FORGET_PUBS, // first pub: forgotten session, so every pub until the next hello is
                        // answered as the real broker does (receipt rejected ESESSION); then
                        // receipts only, accepted, their ids recorded in `accepted_ids`
    SCRIPT_DEAF_ONCE    // after the first sub, never again a word on that connection
} script_t;

typedef struct {
    script_t script;
    char public_key[41];
    char secret_key[41];
    char endpoint[64];
    //  Written by the actor; read after zactor_destroy() has joined it.
    int hellos;
    int subs;
    int pubs;
    int want_pubs; // a "PUBS" question waits for this many pubs; 0: none pending
    char accepted_ids[16][VDP_ID_LEN + 1]; // SCRIPT_FORGET_PUBS, in the order they came
    int accepted;
} fake_t;

static void
s_fake_welcome(vdp_writer_t *out, const vdp_cmd_t *hello)
{
    vdp_cmd_t welcome;
    vdp_cmd_reset(&welcome);
    welcome.op = VDP_OP_WELCOME;
    welcome.ref = hello->ref;
    welcome.version = VDP_VERSION;
    welcome.heartbeat_ms = hello->heartbeat_ms;
    strcpy(welcome.broker, "broker:toscana");
    strcpy(welcome.org, "comune:i726");
    strcpy(welcome.role, "comune");
    strcpy(welcome.jur[0], "toscana");
    welcome.jur_count = 1;
    strcpy(welcome.inbox[0], "inbox.toscana.comune-i726");
    welcome.inbox_count = 1;
    welcome.max_body = VDP_MAX_BODY;
    welcome.max_frame = VDP_MAX_FRAME;
    welcome.max_batch = VDP_MAX_BATCH;
    ck_assert_int_eq(vdp_writer_welcome(out, &welcome), VD_OK);
}

//  Answers one pub according to the script. `session` is whether the client has one.
static void
s_fake_pub(fake_t *fake, vdp_writer_t *out, const vdp_envelope_t *env, bool *session)
{
    fake->pubs++;
    bool forgets = fake->script == SCRIPT_FORGET_ONCE || fake->script == SCRIPT_FORGET_PUBS;
    if (!*session || (forgets && fake->pubs == 1)) {
        *session = false; // as if the broker restarted and forgot us
        if (fake->script == SCRIPT_FORGET_PUBS)
            vdp_writer_receipt(out, env->id, VDP_RECEIPT_REJECTED, 0, 0, VD_ESESSION,
                               "no session: send hello first", 0);
        else
            vdp_writer_error(out, 0, VD_ESESSION, "no session: send hello first");
        return;
    }
    if (fake->script == SCRIPT_SILENT)
        return;
    uint64_t seq = (uint64_t)fake->pubs * 10;
    if (fake->script == SCRIPT_FORGET_PUBS) {
        ck_assert_int_lt(fake->accepted, 16);
        snprintf(fake->accepted_ids[fake->accepted++], VDP_ID_LEN + 1, "%s", env->id);
        vdp_writer_receipt(out, env->id, VDP_RECEIPT_ACCEPTED, seq, 1700000000000, 0, NULL, 0);
        return;
    }
    //  Well-formed msgpack that is not a valid envelope: a map missing its required fields, and
    //  a string where the map should be. The frame stays readable past each of them.
    static const uint8_t no_fields[] = { 0x81, 0xa1, 'v', 0x01 };
    static const uint8_t not_a_map[] = { 0xa1, 'x' };
    bool malformed = fake->script == SCRIPT_MALFORMED;
    if (malformed)
        vdp_writer_deliver(out, "bulletin.>", NULL, seq, 1, no_fields, sizeof no_fields);
    vdp_writer_deliver(out, "bulletin.toscana", NULL, seq, 1700000000000, env->raw, env->raw_len);
    vdp_writer_receipt(out, env->id, VDP_RECEIPT_ACCEPTED, seq, 1700000000000, 0, NULL, 0);
    if (malformed)
        vdp_writer_deliver(out, "bulletin.>", NULL, seq, 1, not_a_map, sizeof not_a_map);
    vdp_writer_deliver(out, "bulletin.>", NULL, seq, 1700000000000, env->raw, env->raw_len);
    if (malformed)
        vdp_writer_deliver(out, "bulletin.>", NULL, seq, 1, no_fields, sizeof no_fields);
}

static void
s_fake_frame(fake_t *fake, vdp_writer_t *out, zframe_t *data, bool *session)
{
    vdp_reader_t reader;
    vdp_reader_init(&reader, zframe_data(data), zframe_size(data));
    vdp_cmd_t cmd;
    vdp_envelope_t env;
    memset(&env, 0, sizeof env);
    int rc;
    while ((rc = vdp_reader_next(&reader, &cmd, &env, NULL, 0)) != VD_ENOTFOUND) {
        ck_assert_int_eq(rc, VD_OK); // libvedetta never sends a malformed command
        if (cmd.op == VDP_OP_HELLO) {
            fake->hellos++;
            *session = true;
            s_fake_welcome(out, &cmd);
        } else if (cmd.op == VDP_OP_PUB && fake->script == SCRIPT_FORGET_PUBS) {
            s_fake_pub(fake, out, &env, session); // a receipt for every pub, session or not
        } else if (!*session) {
            vdp_writer_error(out, cmd.ref, VD_ESESSION, "no session: send hello first");
        } else if (cmd.op == VDP_OP_SUB) {
            fake->subs++;
            vdp_writer_ok(out, cmd.ref);
        } else if (cmd.op == VDP_OP_PUB) {
            s_fake_pub(fake, out, &env, session);
        } else if (cmd.op == VDP_OP_PING) {
            vdp_writer_pong(out, cmd.ref);
        }
    }
    vdp_envelope_reset(&env);
}

static void
s_fake_actor(zsock_t *pipe, void *args)
{
    fake_t *fake = args;
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    assert(router);
    zsock_set_curve_server(router, 1);
    zsock_set_curve_secretkey(router, fake->secret_key);
    zsock_set_linger(router, 0);
    int port = zsock_bind(router, "tcp://127.0.0.1:*");
    assert(port > 0);
    snprintf(fake->endpoint, sizeof fake->endpoint, "tcp://127.0.0.1:%d", port);
    zsock_signal(pipe, 0);

    zpoller_t *poller = zpoller_new(pipe, router, NULL);
    vdp_writer_t out;
    vdp_writer_init(&out);
    bool session = false;
    zframe_t *deaf = NULL; // the connection ignored from now on
    for (;;) {
        zsock_t *which = zpoller_wait(poller, -1);
        if (which == pipe) {
            //  "HELLOS" asks how many hellos came so far; "PUBS" n waits until n pubs came and
            //  answers their count; anything else ($TERM) ends the script.
            char *command = zstr_recv(pipe);
            bool hellos = command && streq(command, "HELLOS");
            bool pubs = command && streq(command, "PUBS");
            zstr_free(&command);
            if (hellos)
                zsock_send(pipe, "i", fake->hellos);
            else if (pubs && zsock_recv(pipe, "i", &fake->want_pubs) == 0) {
                if (fake->pubs >= fake->want_pubs) {
                    fake->want_pubs = 0;
                    zsock_send(pipe, "i", fake->pubs);
                }
            } else
                break;
            continue;
        }
        if (which != router)
            break; // interrupted
        zmsg_t *msg = zmsg_recv(router);
        zframe_t *identity = zmsg_pop(msg);
        zframe_t *data = zmsg_pop(msg);
        if (identity && data && !(deaf && zframe_eq(identity, deaf))) {
            vdp_writer_reset(&out);
            s_fake_frame(fake, &out, data, &session);
            if (fake->script == SCRIPT_DEAF_ONCE && fake->subs == 1 && !deaf)
                deaf = zframe_dup(identity);
            if (out.size > 0) {
                zmsg_t *reply = zmsg_new();
                zmsg_append(reply, &identity);
                zmsg_addmem(reply, out.data, out.size);
                zmsg_send(&reply, router);
            }
        }
        zframe_destroy(&identity);
        zframe_destroy(&data);
        zmsg_destroy(&msg);
        if (fake->want_pubs && fake->pubs >= fake->want_pubs) {
            fake->want_pubs = 0;
            zsock_send(pipe, "i", fake->pubs);
        }
    }
    zframe_destroy(&deaf);
    vdp_writer_release(&out);
    zpoller_destroy(&poller);
    zsock_destroy(&router);
}

static zactor_t *
s_fake_start(fake_t *fake, script_t script)
{
    memset(fake, 0, sizeof *fake);
    fake->script = script;
    ck_assert_int_eq(zmq_curve_keypair(fake->public_key, fake->secret_key), 0);
    zactor_t *actor = zactor_new(s_fake_actor, fake);
    ck_assert_ptr_nonnull(actor);
    return actor;
}

//  Waits (5 s at most) until the scripted broker has seen `count` pubs; returns how many it saw.
static int
s_fake_wait_pubs(zactor_t *actor, int count)
{
    ck_assert_int_eq(zstr_send(actor, "PUBS"), 0);
    ck_assert_int_eq(zsock_send(actor, "i", count), 0);
    zsock_set_rcvtimeo(actor, 5000);
    int pubs = -1;
    ck_assert_msg(zsock_recv(actor, "i", &pubs) == 0, "fewer than %d pubs arrived", count);
    zsock_set_rcvtimeo(actor, -1);
    return pubs;
}

//  The number of hellos the scripted broker has seen, asked while it runs.
static int
s_fake_hellos(zactor_t *actor)
{
    ck_assert_int_eq(zstr_send(actor, "HELLOS"), 0);
    int hellos = -1;
    ck_assert_int_eq(zsock_recv(actor, "i", &hellos), 0);
    return hellos;
}

static void
s_expect_delivery(vd_client_t *client, const char *pattern, uint64_t seq)
{
    vd_envelope_t *env = NULL;
    ck_assert_int_eq(vd_client_recv(client, &env, 0), VD_OK); // already queued: no waiting
    ck_assert_str_eq(vd_envelope_subscription(env), pattern);
    ck_assert_uint_eq(vd_envelope_seq(env), seq);
    ck_assert_int_eq(vd_envelope_accepted_at(env), 1700000000000);
    size_t size = 0;
    const void *body = vd_envelope_body(env, &size);
    ck_assert_uint_eq(size, 4);
    ck_assert_mem_eq(body, "ping", 4);
    vd_envelope_destroy(&env);
}

START_TEST(receipt_and_deliveries_in_one_frame_are_all_kept)
{
    fake_t fake;
    zactor_t *actor = s_fake_start(&fake, SCRIPT_ANSWER);
    vd_client_t *client = s_connect("comune:i726", fake.endpoint, fake.public_key);
    ck_assert_str_eq(vd_client_inbox(client, 0), "inbox.toscana.comune-i726");
    ck_assert_ptr_null(vd_client_inbox(client, 1));
    vdt_subscribe(client, "bulletin.>", VD_OK);

    vd_envelope_t *env = vdt_envelope("bulletin.toscana", "green", "ping");
    vd_receipt_t receipt;
    ck_assert_int_eq(vd_client_publish(client, env, &receipt, 5000), VD_OK);
    ck_assert_int_eq(receipt.status, VD_RECEIPT_ACCEPTED);
    ck_assert_uint_eq(receipt.seq, 10);
    ck_assert_str_eq(receipt.id, vd_envelope_get(env, "id"));
    vd_envelope_destroy(&env);
    s_expect_delivery(client, "bulletin.toscana", 10);
    s_expect_delivery(client, "bulletin.>", 10);

    //  Asynchronous: three receipts and six deliveries, whatever frames they come in.
    for (int i = 0; i < 3; i++) {
        env = vdt_envelope("bulletin.toscana", "green", "ping");
        ck_assert_int_eq(vd_client_publish_async(client, env), VD_OK);
        vd_envelope_destroy(&env);
    }
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(vd_client_receipt(client, &receipt, 5000), VD_OK);
        ck_assert_uint_eq(receipt.seq, (uint64_t)(i + 2) * 10);
    }
    for (int i = 0; i < 3; i++) {
        s_expect_delivery(client, "bulletin.toscana", (uint64_t)(i + 2) * 10);
        s_expect_delivery(client, "bulletin.>", (uint64_t)(i + 2) * 10);
    }
    vd_envelope_t *none = NULL;
    ck_assert_int_eq(vd_client_recv(client, &none, 0), VD_ETIMEOUT);
    ck_assert_ptr_null(none);
    vd_client_destroy(&client);
    zactor_destroy(&actor);
    ck_assert_int_eq(fake.pubs, 4);
}
END_TEST

START_TEST(malformed_deliveries_are_skipped_and_counted)
{
    fake_t fake;
    zactor_t *actor = s_fake_start(&fake, SCRIPT_MALFORMED);
    vd_client_t *client = s_connect("comune:i726", fake.endpoint, fake.public_key);
    vdt_subscribe(client, "bulletin.>", VD_OK);
    for (uint64_t seq = 10; seq <= 20; seq += 10) {
        vd_envelope_t *env = vdt_envelope("bulletin.toscana", "green", "ping");
        vd_receipt_t receipt;
        ck_assert_int_eq(vd_client_publish(client, env, &receipt, 5000), VD_OK);
        ck_assert_int_eq(receipt.status, VD_RECEIPT_ACCEPTED);
        ck_assert_uint_eq(receipt.seq, seq);
        vd_envelope_destroy(&env);
    }
    //  Two frames of five delivers each, queued undecoded: the good ones come out in order and
    //  each bad one is dropped when its turn comes, the last of all included.
    for (uint64_t seq = 10; seq <= 20; seq += 10) {
        s_expect_delivery(client, "bulletin.toscana", seq);
        s_expect_delivery(client, "bulletin.>", seq);
    }
    vd_envelope_t *none = NULL;
    ck_assert_int_eq(vd_client_recv(client, &none, 0), VD_ETIMEOUT);
    ck_assert_ptr_null(none);
    ck_assert_uint_eq(vd_client_dropped(client), 6);
    vd_client_destroy(&client);
    zactor_destroy(&actor);
    ck_assert_int_eq(fake.pubs, 2);
}
END_TEST

START_TEST(publish_without_receipt_times_out)
{
    fake_t fake;
    zactor_t *actor = s_fake_start(&fake, SCRIPT_SILENT);
    vd_client_t *client = s_connect("comune:i726", fake.endpoint, fake.public_key);
    vd_envelope_t *env = vdt_envelope("bulletin.toscana", "green", "ping");
    vd_receipt_t receipt;
    int64_t start = s_now_ms();
    ck_assert_int_eq(vd_client_publish(client, env, &receipt, 700), VD_ETIMEOUT);
    ck_assert_int_ge(s_now_ms() - start, 700); // it waited the whole timeout
    //  A zero timeout reads what is there and returns without waiting for the receipt.
    ck_assert_int_eq(vd_client_publish(client, env, &receipt, 0), VD_ETIMEOUT);
    //  Both publishes went out (the second one's id again: a retry, not a new message).
    ck_assert_int_eq(s_fake_wait_pubs(actor, 2), 2);
    vd_envelope_destroy(&env);
    vd_client_destroy(&client);
    zactor_destroy(&actor);
}
END_TEST

//  A publish queued and never flushed still leaves, signed, when its client is destroyed.
START_TEST(a_queued_publish_leaves_at_destroy)
{
    vdt_broker_start(s_world);
    vd_client_t *cosc = s_connect("cosc:toscana", vdt_endpoint(s_world), vdt_broker_key(s_world));
    vdt_subscribe(cosc, "alert.toscana.i726", VD_OK);
    vd_client_t *siena = s_connect("comune:i726", vdt_endpoint(s_world), vdt_broker_key(s_world));
    vd_envelope_t *env = vdt_envelope("alert.toscana.i726", "green", "fire and forget");
    ck_assert_int_eq(vd_client_publish_async(siena, env), VD_OK);
    vd_envelope_destroy(&env);
    vd_client_destroy(&siena);
    char *body = vdt_recv_body(cosc);
    ck_assert_str_eq(body ? body : "(nothing)", "fire and forget");
    free(body);
    vd_client_destroy(&cosc);
}
END_TEST

/*  Publishes kept for their receipt were signed with the key of the connection that first
    sent them. Connecting again with the agency's rotated key sends them again signed with that
    one, so that the broker, which checks each signature against the session's key, takes them.
    The first broker (scripted) never answers; the second is the real one.  */
START_TEST(kept_publishes_are_signed_again_under_a_rotated_key)
{
    char secret[600], public[600];
    snprintf(secret, sizeof secret, "%s", vdt_path(s_world, "comune-i726.next.secret"));
    snprintf(public, sizeof public, "%s", vdt_path(s_world, "agencies/comune-i726.next.agency"));
    ck_assert_int_eq(vd_keygen_rotate(vdt_secret(s_world, "comune:i726"), "next", secret, public),
                     VD_OK);
    vdt_broker_start(s_world); // loads both keys of the Comune
    fake_t fake;
    zactor_t *actor = s_fake_start(&fake, SCRIPT_SILENT);
    vd_client_t *client = s_connect("comune:i726", fake.endpoint, fake.public_key);
    enum { COUNT = 3 };
    for (int i = 0; i < COUNT; i++) {
        vd_envelope_t *env = vdt_envelope("alert.toscana.i726", "green", "kept");
        ck_assert_int_eq(vd_client_publish_async(client, env), VD_OK);
        vd_envelope_destroy(&env);
    }
    ck_assert_int_eq(vd_client_flush(client), VD_OK);
    ck_assert_int_eq(s_fake_wait_pubs(actor, COUNT), COUNT); // signed with the old key, sent

    ck_assert_int_eq(
        vd_client_connect(client, vdt_endpoint(s_world), vdt_broker_key(s_world), secret, 5000),
        VD_OK);
    for (int i = 0; i < COUNT; i++) {
        vd_receipt_t receipt;
        ck_assert_int_eq(vd_client_receipt(client, &receipt, 5000), VD_OK);
        ck_assert_msg(receipt.status == VD_RECEIPT_ACCEPTED, "receipt %d: %s %s", i,
                      vd_strerror_name(receipt.code), receipt.reason);
    }
    vd_client_destroy(&client);
    zactor_destroy(&actor);
}
END_TEST

START_TEST(forgotten_session_is_reopened_and_publish_resent)
{
    fake_t fake;
    zactor_t *actor = s_fake_start(&fake, SCRIPT_FORGET_ONCE);
    vd_client_t *client = s_connect("comune:i726", fake.endpoint, fake.public_key);
    vdt_subscribe(client, "bulletin.toscana", VD_OK);
    vdt_subscribe(client, "bulletin.>", VD_OK);
    vd_envelope_t *env = vdt_envelope("bulletin.toscana", "green", "ping");
    vd_receipt_t receipt;
    ck_assert_int_eq(vd_client_publish(client, env, &receipt, 5000), VD_OK);
    ck_assert_int_eq(receipt.status, VD_RECEIPT_ACCEPTED);
    ck_assert_uint_eq(receipt.seq, 20); // the second pub the broker saw
    vd_envelope_destroy(&env);
    s_expect_delivery(client, "bulletin.toscana", 20);
    s_expect_delivery(client, "bulletin.>", 20);
    vd_client_destroy(&client);
    zactor_destroy(&actor);
    ck_assert_int_eq(fake.hellos, 2);
    ck_assert_int_eq(fake.subs, 4); // both subscriptions, then both again in the new session
    ck_assert_int_eq(fake.pubs, 2);
}
END_TEST

START_TEST(forgotten_async_publishes_are_resent_in_order)
{
    fake_t fake;
    zactor_t *actor = s_fake_start(&fake, SCRIPT_FORGET_PUBS);
    vd_client_t *client = s_connect("comune:i726", fake.endpoint, fake.public_key);
    enum { COUNT = 5, NEWER = 2 };
    char ids[COUNT + NEWER][VDP_ID_LEN + 1];
    for (int i = 0; i < COUNT + NEWER; i++) {
        //  The first COUNT reach the broker together and are all refused with ESESSION; the
        //  newer ones are published before the client has read those refusals.
        if (i == COUNT) {
            ck_assert_int_eq(vd_client_flush(client), VD_OK);
            ck_assert_int_eq(s_fake_wait_pubs(actor, COUNT), COUNT);
        }
        vd_envelope_t *env = vdt_envelope("bulletin.toscana", "green", "ping");
        ck_assert_int_eq(vd_client_publish_async(client, env), VD_OK);
        snprintf(ids[i], sizeof ids[i], "%s", vd_envelope_get(env, "id"));
        vd_envelope_destroy(&env);
    }
    //  One receipt each, accepted, in publishing order: no ESESSION reaches the application.
    uint64_t last_seq = 0;
    for (int i = 0; i < COUNT + NEWER; i++) {
        vd_receipt_t receipt;
        ck_assert_int_eq(vd_client_receipt(client, &receipt, 5000), VD_OK);
        ck_assert_msg(receipt.status == VD_RECEIPT_ACCEPTED, "receipt %d: %s %s %s", i,
                      vd_receipt_status_name(receipt.status), vd_strerror_name(receipt.code),
                      receipt.reason);
        ck_assert_str_eq(receipt.id, ids[i]);
        ck_assert_uint_gt(receipt.seq, last_seq);
        last_seq = receipt.seq;
    }
    vd_receipt_t none;
    ck_assert_int_eq(vd_client_receipt(client, &none, 3 * FAST_HEARTBEAT_MS), VD_ETIMEOUT);
    vd_client_destroy(&client);
    zactor_destroy(&actor);
    ck_assert_int_eq(fake.hellos, 2);
    //  The refused ones, then the copies sent again in the new session, oldest first.
    ck_assert_int_ge(fake.pubs, COUNT + COUNT + NEWER);
    ck_assert_int_eq(fake.accepted, COUNT + NEWER);
    for (int i = 0; i < COUNT + NEWER; i++)
        ck_assert_str_eq(fake.accepted_ids[i], ids[i]);
}
END_TEST

START_TEST(silent_broker_is_left_for_a_new_connection)
{
    fake_t fake;
    zactor_t *actor = s_fake_start(&fake, SCRIPT_DEAF_ONCE);
    vd_client_t *client = s_connect("comune:i726", fake.endpoint, fake.public_key);
    vdt_subscribe(client, "bulletin.toscana", VD_OK);
    //  The connection now swallows everything, pings included. Waiting in short slices, as
    //  `vedetta sub` does, the client must notice after 3 silent intervals and start over.
    ck_assert_int_eq(s_fake_hellos(actor), 1);
    int64_t deadline = s_now_ms() + 8 * FAST_HEARTBEAT_MS;
    while (s_now_ms() < deadline) {
        vd_envelope_t *env = NULL;
        ck_assert_int_eq(vd_client_recv(client, &env, FAST_HEARTBEAT_MS / 4), VD_ETIMEOUT);
    }
    ck_assert_int_eq(s_fake_hellos(actor), 2);
    vd_envelope_t *env = vdt_envelope("bulletin.toscana", "green", "ping");
    vd_receipt_t receipt;
    ck_assert_int_eq(vd_client_publish(client, env, &receipt, 5000), VD_OK);
    ck_assert_int_eq(receipt.status, VD_RECEIPT_ACCEPTED);
    vd_envelope_destroy(&env);
    vd_client_destroy(&client);
    zactor_destroy(&actor);
    ck_assert_int_eq(fake.hellos, 2);
    ck_assert_int_eq(fake.subs, 2); // the subscription came back on the new connection
    ck_assert_int_eq(fake.pubs, 1);
}
END_TEST

Suite *
it_client_suite(void)
{
    Suite *suite = suite_create("it_client");
    TCase *envelope = tcase_create("envelope");
    tcase_add_loop_test(envelope, set_checks_each_field, 0,
                        (int)(sizeof s_set_cases / sizeof s_set_cases[0]));
    tcase_add_test(envelope, lists_and_times_have_limits);
    tcase_add_test(envelope, json_holds_every_present_field);
    tcase_add_loop_test(envelope, json_body_is_text_only_when_utf8, 0,
                        (int)(sizeof s_body_cases / sizeof s_body_cases[0]));
    suite_add_tcase(suite, envelope);

    TCase *broker = tcase_create("real_broker");
    tcase_add_checked_fixture(broker, s_setup, s_teardown);
    tcase_set_timeout(broker, 60);
    tcase_add_test(broker, restart_restores_subscriptions);
    tcase_add_test(broker, refused_key_is_eauth_before_the_timeout);
    tcase_add_test(broker, a_wrong_broker_key_gets_no_session);
    tcase_add_test(broker, async_publishes_get_one_receipt_each);
    tcase_add_test(broker, async_publishes_are_signed_in_trees);
    tcase_add_test(broker, kept_publishes_are_signed_again_under_a_rotated_key);
    tcase_add_test(broker, a_queued_publish_leaves_at_destroy);
    suite_add_tcase(suite, broker);

    TCase *scripted = tcase_create("scripted_broker");
    tcase_add_checked_fixture(scripted, s_setup, s_teardown);
    tcase_set_timeout(scripted, 30);
    tcase_add_test(scripted, receipt_and_deliveries_in_one_frame_are_all_kept);
    tcase_add_test(scripted, malformed_deliveries_are_skipped_and_counted);
    tcase_add_test(scripted, publish_without_receipt_times_out);
    tcase_add_test(scripted, forgotten_session_is_reopened_and_publish_resent);
    tcase_add_test(scripted, forgotten_async_publishes_are_resent_in_order);
    tcase_add_test(scripted, silent_broker_is_left_for_a_new_connection);
    suite_add_tcase(suite, scripted);
    return suite;
}

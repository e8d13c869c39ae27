/*  it_store: what an accepted receipt promises, against the real vedettad and its store on disk.
    The crash tests stream publishes with receipts while the broker is killed with SIGKILL and
    restarted, several times. libvedetta sends again what lost its session, so each publish
    gets exactly one receipt, accepted or duplicate, never a rejection; at the end every
    message must be in the store, once, with the seq its receipt gave. A durable subscriber
    that lives through the same kills must get each of those messages once, in seq order.  */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "harness.h"
#include "it_suites.h"
#include "vdb_store.h"
#include "vdp_ids.h"

#define CRASH_MESSAGES 600 // published in all
#define CRASH_KILLS    3   // SIGKILLs while publishes are in flight
#define CRASH_SETTLE   300 // ms reading receipts and deliveries after each burst (see s_settle)
#define CRASH_SLICE    10  // ms of one wait for a receipt or a delivery
#define CRASH_HB       200 // heartbeat of both clients: a restart is noticed within a second
#define CRASH_DEADLINE 60000
#define CRASH_DURABLE  "crash-sub"

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
    ck_assert_ptr_null(s_world);
}

typedef struct {
    char id[VDP_ID_LEN + 1];
    int state;              // 0 to send, 1 sent, 2 answered (accepted or duplicate)
    uint64_t seq;           // from its receipt
    uint64_t delivered_seq; // the seq the durable subscriber got it with; 0 until then
} sent_t;

//  One crash run: the publisher's messages, and the subscriber that must see them all.
typedef struct {
    sent_t *msgs;
    vd_client_t *publisher;  // comune:i726
    vd_client_t *subscriber; // cosc:toscana on durable CRASH_DURABLE, or NULL
    int burst;               // publishes sent between two looks at what came back
    int kill_every;          // the broker is killed during one burst in this many
    int bursts;              // sent so far
    int answered;            // messages in state 2
    int delivered;           // messages the subscriber has had
    uint64_t last_seq;       // of the last delivery: each must be above it
    int kills;
    int in_flight_at_kill; // publishes without a receipt when the broker died
} crash_t;

static int64_t
s_now_ms(void)
{
    return zclock_mono();
}

//  A client whose short heartbeat makes it notice a dead broker soon.
static vd_client_t *
s_crash_client(const char *org)
{
    vd_client_t *client = vd_client_new();
    ck_assert_ptr_nonnull(client);
    ck_assert_int_eq(vd_client_set_heartbeat(client, CRASH_HB), VD_OK);
    ck_assert_int_eq(vd_client_connect(client, vdt_endpoint(s_world), vdt_broker_key(s_world),
                                       vdt_secret(s_world, org), 5000),
                     VD_OK);
    return client;
}

//  A durable subscriber of every Toscana alert, subscribed before anything is published.
static vd_client_t *
s_durable_subscriber(void)
{
    vd_client_t *client = s_crash_client("cosc:toscana");
    vd_sub_options_t options = { .durable = CRASH_DURABLE };
    char reason[256];
    int rc =
        vd_client_subscribe_from(client, "alert.toscana.>", &options, reason, sizeof reason, 5000);
    ck_assert_msg(rc == VD_OK, "durable subscription: %s %s", vd_strerror_name(rc), reason);
    return client;
}

/*  Without a subscriber, the broker is killed during each of the first bursts. With one, during
    every other burst: the bursts in between let the broker save the cursor of what was
    acknowledged, so that the next restart resumes from it.  */
static void
s_crash_init(crash_t *crash, bool with_subscriber)
{
    memset(crash, 0, sizeof *crash);
    crash->burst = with_subscriber ? 100 : 200;
    crash->kill_every = with_subscriber ? 2 : 1;
    crash->msgs = calloc(CRASH_MESSAGES, sizeof *crash->msgs);
    ck_assert_ptr_nonnull(crash->msgs);
    for (int i = 0; i < CRASH_MESSAGES; i++)
        vdp_uuid_generate(crash->msgs[i].id);
    if (with_subscriber)
        crash->subscriber = s_durable_subscriber();
    crash->publisher = s_crash_client("comune:i726");
}

//  The index of the message with this id, -1 if it is not one of ours.
static int
s_find(const crash_t *crash, const char *id)
{
    for (int i = 0; id && i < CRASH_MESSAGES; i++)
        if (strcmp(crash->msgs[i].id, id) == 0)
            return i;
    return -1;
}

static void
s_send(vd_client_t *client, sent_t *msg)
{
    vd_envelope_t *env = vdt_envelope("alert.toscana.i726", "green", msg->id);
    ck_assert_int_eq(vd_envelope_set(env, "id", msg->id), VD_OK);
    int rc = vd_client_publish_async(client, env);
    vd_envelope_destroy(&env);
    //  Not connected just now (the broker is being restarted): left for the next pass.
    msg->state = rc == VD_OK ? 1 : 0;
}

//  Reads the receipts that have arrived, waiting up to `wait_ms` for the first.
static void
s_drain(crash_t *crash, int wait_ms)
{
    vd_receipt_t receipt;
    while (vd_client_receipt(crash->publisher, &receipt, wait_ms) == VD_OK) {
        wait_ms = 0;
        int i = s_find(crash, receipt.id);
        if (i < 0)
            continue;
        //  Not even ESESSION: what the restarts refused, libvedetta published again.
        ck_assert_msg(receipt.status != VD_RECEIPT_REJECTED, "message %d rejected: %s %s", i,
                      vd_strerror_name(receipt.code), receipt.reason);
        ck_assert_msg(crash->msgs[i].state == 1, "message %d: a second receipt, seq %" PRIu64, i,
                      receipt.seq);
        crash->msgs[i].state = 2;
        crash->msgs[i].seq = receipt.seq;
        crash->answered++;
    }
}

/*  One delivery to the durable subscriber: one of ours, on its stream, after the one before
    it, and never a message it already had (libvedetta skips what the broker sends again after
    a restart). Acknowledged at once: a crash may still lose the last acknowledgements, which
    only makes the broker send those messages again.  */
static void
s_on_delivery(crash_t *crash, vd_envelope_t *env)
{
    const char *id = vd_envelope_get(env, "id");
    uint64_t seq = vd_envelope_seq(env);
    int i = s_find(crash, id);
    ck_assert_msg(i >= 0, "delivered seq %" PRIu64 " id %s: not one of ours", seq,
                  id ? id : "(none)");
    const char *durable = vd_envelope_durable(env);
    ck_assert_msg(durable && strcmp(durable, CRASH_DURABLE) == 0,
                  "message %d delivered off the durable stream (%s)", i, durable ? durable : "-");
    ck_assert_msg(crash->msgs[i].delivered_seq == 0,
                  "message %d delivered twice: seq %" PRIu64 ", then seq %" PRIu64, i,
                  crash->msgs[i].delivered_seq, seq);
    ck_assert_msg(seq > crash->last_seq, "message %d out of order: seq %" PRIu64 " after %" PRIu64,
                  i, seq, crash->last_seq);
    crash->msgs[i].delivered_seq = seq;
    crash->last_seq = seq;
    crash->delivered++;
    //  VD_ECONN (libzmq's queue toward a dead broker is full): the next ack covers this one.
    int rc = vd_client_ack(crash->subscriber, env);
    ck_assert_msg(rc == VD_OK || rc == VD_ECONN, "ack seq %" PRIu64 ": %s", seq,
                  vd_strerror_name(rc));
}

//  Takes the deliveries that have arrived, waiting up to `wait_ms` for the first.
static void
s_receive(crash_t *crash, int wait_ms)
{
    if (!crash->subscriber)
        return;
    //  More than could be outstanding: the loop ends on an empty queue long before.
    for (int n = 0; n < 4 * CRASH_MESSAGES; n++) {
        vd_envelope_t *env = NULL;
        int rc = vd_client_recv(crash->subscriber, &env, wait_ms);
        if (rc == VD_ETIMEOUT)
            return;
        ck_assert_msg(rc == VD_OK, "subscriber: %s", vd_strerror_name(rc));
        s_on_delivery(crash, env);
        vd_envelope_destroy(&env);
        wait_ms = 0;
    }
}

/*  Reads receipts and deliveries in turn for `ms`, so that both clients keep their sessions
    alive and notice a restart. CRASH_SETTLE is longer than the broker's interval between
    cursor saves (250 ms): what the subscriber acknowledged in a burst without a kill is in the
    store when the next kill comes, and the restart resumes the stream from there.  */
static void
s_settle(crash_t *crash, int ms)
{
    int64_t until = s_now_ms() + ms;
    for (int n = 0; n <= ms / CRASH_SLICE && s_now_ms() < until; n++) {
        s_drain(crash, CRASH_SLICE);
        s_receive(crash, 0);
    }
}

//  Waits up to 5 s (then carries on) until the subscriber, if any, has had `count` messages.
static void
s_await_deliveries(crash_t *crash, int count)
{
    int64_t until = s_now_ms() + 5000;
    for (int n = 0; crash->subscriber && crash->delivered < count && s_now_ms() < until &&
                    n < 5000 / CRASH_SLICE;
         n++) {
        s_drain(crash, 0);
        s_receive(crash, CRASH_SLICE);
    }
}

//  Publishes up to `count` of the messages not yet answered nor in flight, and sends them.
//  Returns how many.
static int
s_publish(crash_t *crash, int count)
{
    int sent = 0;
    for (int i = 0; i < CRASH_MESSAGES && sent < count; i++)
        if (crash->msgs[i].state == 0) {
            s_send(crash->publisher, &crash->msgs[i]);
            sent++;
        }
    vd_client_flush(crash->publisher);
    return sent;
}

/*  Deliveries come in seq order, and libvedetta hands no seq over twice: a message answered
    with a seq below the last one delivered, and not delivered itself, never will be.  */
static void
s_check_no_gap(const crash_t *crash)
{
    for (int i = 0; crash->subscriber && i < CRASH_MESSAGES; i++) {
        const sent_t *msg = &crash->msgs[i];
        ck_assert_msg(msg->state != 2 || msg->delivered_seq != 0 || msg->seq > crash->last_seq,
                      "gap: message %d (seq %" PRIu64 ") was not delivered, seq %" PRIu64 " was", i,
                      msg->seq, crash->last_seq);
    }
}

static bool
s_crash_done(const crash_t *crash)
{
    return crash->answered == CRASH_MESSAGES &&
           (!crash->subscriber || crash->delivered == CRASH_MESSAGES);
}

/*  Publishes every message in bursts until every one is answered (and, with a subscriber,
    delivered), killing and restarting the broker during the first bursts (s_crash_init() says
    which). A burst leaves in two halves; with a subscriber, the second only once some of the
    first has reached it, so that the kill finds messages delivered and acknowledged (not all
    of it saved), others accepted and maybe not yet delivered, and the second half in flight.  */
static void
s_crash_run(crash_t *crash)
{
    int64_t deadline = s_now_ms() + CRASH_DEADLINE;
    while (!s_crash_done(crash) && s_now_ms() < deadline) {
        bool kill = crash->kills < CRASH_KILLS && crash->bursts % crash->kill_every == 0;
        int delivered = crash->delivered;
        int burst = s_publish(crash, crash->burst / 2);
        s_drain(crash, 0);
        s_receive(crash, 0);
        if (kill && burst > 0)
            s_await_deliveries(crash, delivered + 1);
        burst += s_publish(crash, crash->burst - burst);
        crash->bursts += burst > 0;
        //  Kill while the burst is in flight, then restart on the same port.
        if (kill && burst > 0) {
            for (int i = 0; i < CRASH_MESSAGES; i++)
                crash->in_flight_at_kill += crash->msgs[i].state == 1;
            vdt_broker_kill(s_world);
            crash->kills++;
            vdt_broker_start(s_world);
        }
        //  What a kill left without a receipt, the client sends again by itself; what it left
        //  unacknowledged, the broker delivers again.
        s_settle(crash, CRASH_SETTLE);
        s_check_no_gap(crash);
    }
    ck_assert_int_eq(crash->kills, CRASH_KILLS);
    ck_assert_int_gt(crash->in_flight_at_kill, 0); // the kills did land in the middle of the stream
    ck_assert_msg(crash->answered == CRASH_MESSAGES, "only %d of %d answered before the deadline",
                  crash->answered, CRASH_MESSAGES);
}

//  The messages the subscriber is still missing, named in a failure message.
static void
s_report_missing(const crash_t *crash, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < CRASH_MESSAGES && used + 32 < size; i++)
        if (crash->msgs[i].delivered_seq == 0)
            used += (size_t)snprintf(out + used, size - used, " %d(seq %" PRIu64 ")", i,
                                     crash->msgs[i].seq);
}

/*  With every message delivered, a marker published last must be the very next delivery:
    nothing the kills left behind comes after the catch-up.  */
static void
s_expect_marker(crash_t *crash)
{
    vd_envelope_t *marker = vdt_envelope("alert.toscana.i726", "green", "marker");
    vd_receipt_t receipt = vdt_publish(crash->publisher, marker);
    vd_envelope_destroy(&marker);
    ck_assert_int_eq(receipt.status, VD_RECEIPT_ACCEPTED);
    vd_envelope_t *env = NULL;
    int rc = vd_client_recv(crash->subscriber, &env, 5000);
    ck_assert_msg(rc == VD_OK, "no marker: %s", vd_strerror_name(rc));
    size_t size = 0;
    const char *body = vd_envelope_body(env, &size);
    ck_assert_msg(size == strlen("marker") && memcmp(body, "marker", size) == 0,
                  "after every message, '%.*s' seq %" PRIu64 " came before the marker", (int)size,
                  body, vd_envelope_seq(env));
    ck_assert_uint_eq(vd_envelope_seq(env), receipt.seq);
    ck_assert_uint_gt(vd_envelope_seq(env), crash->last_seq);
    ck_assert_int_eq(vd_client_ack(crash->subscriber, env), VD_OK);
    vd_envelope_destroy(&env);
}

//  Every message is in the store, once, under the seq its receipt gave; `extra` more were
//  published besides.
static void
s_check_store(const crash_t *crash, uint64_t extra)
{
    char err[256] = "";
    vdb_store_t *store =
        vdb_store_open(vdt_path(s_world, "vedetta.db"), VDB_SYNC_FULL, err, sizeof err);
    ck_assert_msg(store != NULL, "store: %s", err);
    for (int i = 0; i < CRASH_MESSAGES; i++) {
        uint64_t seq = 0;
        ck_assert_int_eq(
            vdb_store_lookup(store, "comune:i726", crash->msgs[i].id, &seq, NULL, NULL), VD_OK);
        ck_assert_uint_eq(seq, crash->msgs[i].seq);
    }
    ck_assert_uint_eq(vdb_store_count(store), CRASH_MESSAGES + extra);
    vdb_store_close(&store);
}

//  Closes both clients (saying bye) and stops the broker, so that the store can be read.
static void
s_crash_stop(crash_t *crash)
{
    vd_client_destroy(&crash->subscriber);
    vd_client_destroy(&crash->publisher);
    ck_assert_int_eq(vdt_broker_stop(s_world), 0);
}

START_TEST(accepted_messages_survive_sigkill)
{
    crash_t crash;
    s_crash_init(&crash, false);
    s_crash_run(&crash);
    s_crash_stop(&crash);
    s_check_store(&crash, 0);
    free(crash.msgs);
}
END_TEST

START_TEST(a_durable_subscriber_gets_each_accepted_message_once)
{
    crash_t crash;
    s_crash_init(&crash, true);
    s_crash_run(&crash);
    char missing[512];
    s_report_missing(&crash, missing, sizeof missing);
    ck_assert_msg(crash.delivered == CRASH_MESSAGES,
                  "the durable subscriber got %d of %d before the deadline; missing:%s",
                  crash.delivered, CRASH_MESSAGES, missing);
    for (int i = 0; i < CRASH_MESSAGES; i++)
        ck_assert_uint_eq(crash.msgs[i].delivered_seq, crash.msgs[i].seq);
    s_expect_marker(&crash);
    //  Redeliveries are expected (a crash loses the acknowledgements not yet saved) and were
    //  skipped above; nothing may have been dropped.
    printf("it_store: durable subscriber: %d messages, %" PRIu64 " redeliveries skipped\n",
           crash.delivered, vd_client_redelivered(crash.subscriber));
    ck_assert_uint_eq(vd_client_dropped(crash.subscriber), 0);
    s_crash_stop(&crash);
    s_check_store(&crash, 1); // and the marker
    free(crash.msgs);
}
END_TEST

START_TEST(seq_keeps_rising_across_restarts)
{
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    vd_envelope_t *env = vdt_envelope("alert.toscana.i726", "green", "before");
    vd_receipt_t before = vdt_publish(siena, env);
    vd_envelope_destroy(&env);
    ck_assert_int_eq(before.status, VD_RECEIPT_ACCEPTED);
    vd_client_destroy(&siena);
    ck_assert_int_eq(vdt_broker_stop(s_world), 0);
    vdt_broker_start(s_world);
    siena = vdt_connect(s_world, "comune:i726");
    env = vdt_envelope("alert.toscana.i726", "green", "after");
    vd_receipt_t after = vdt_publish(siena, env);
    ck_assert_int_eq(after.status, VD_RECEIPT_ACCEPTED);
    ck_assert_uint_gt(after.seq, before.seq);
    //  A retry of the first message after the restart is still a duplicate, from the store.
    vd_envelope_t *retry = vdt_envelope("alert.toscana.i726", "green", "before");
    ck_assert_int_eq(vd_envelope_set(retry, "id", before.id), VD_OK);
    vd_receipt_t again = vdt_publish(siena, retry);
    ck_assert_int_eq(again.status, VD_RECEIPT_DUPLICATE);
    ck_assert_uint_eq(again.seq, before.seq);
    vd_envelope_destroy(&retry);
    vd_envelope_destroy(&env);
    vd_client_destroy(&siena);
}
END_TEST

/*  A real full disk: a 2 MiB tmpfs, mounted in a mount namespace of this test's own (so nothing
    outlives it) and inherited by the broker it starts, holds the broker's store and a filler.  */
static int
s_small_disk(const char *dir, char *filler, size_t filler_size)
{
    if (mkdir(dir, 0700) != 0 || unshare(CLONE_NEWNS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=2M") != 0)
        return -1;
    snprintf(filler, filler_size, "%s/filler", dir);
    FILE *file = fopen(filler, "w");
    ck_assert_ptr_nonnull(file);
    static const char block[4096];
    for (int i = 0; i < 256; i++) // 1 MiB of the 2
        ck_assert_uint_eq(fwrite(block, 1, sizeof block, file), sizeof block);
    ck_assert_int_eq(fclose(file), 0);
    return 0;
}

START_TEST(a_full_disk_rejects_and_recovers)
{
    vdt_broker_stop(s_world);
    char disk[600], filler[700];
    snprintf(disk, sizeof disk, "%s", vdt_path(s_world, "disk"));
    if (s_small_disk(disk, filler, sizeof filler) != 0) {
        printf("it_store: cannot mount a small tmpfs here (%s): full-disk test skipped\n",
               strerror(errno));
        return;
    }
    FILE *cfg = fopen(vdt_path(s_world, "vedettad.cfg"), "a");
    ck_assert_ptr_nonnull(cfg);
    fprintf(cfg, "store\n    path = \"disk/vedetta.db\"\n");
    fclose(cfg);
    vdt_broker_start(s_world);
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    vd_client_t *cosc = vdt_connect(s_world, "cosc:toscana");
    vdt_subscribe(cosc, "alert.toscana.>", VD_OK);
    char body[1024];
    memset(body, 'x', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    vd_receipt_t receipt = { 0 };
    int accepted = 0;
    for (int i = 0; i < 5000; i++) { // the disk fills long before
        vd_envelope_t *env = vdt_envelope("alert.toscana.i726", "green", body);
        receipt = vdt_publish(siena, env);
        vd_envelope_destroy(&env);
        if (receipt.status != VD_RECEIPT_ACCEPTED)
            break;
        accepted++;
        char *got = vdt_recv_body(cosc);
        ck_assert_ptr_nonnull(got);
        free(got);
    }
    ck_assert_int_gt(accepted, 0);
    ck_assert_int_eq(receipt.status, VD_RECEIPT_REJECTED);
    ck_assert_int_eq(receipt.code, VD_ESTORE);
    ck_assert_msg(strstr(receipt.reason, "disk full") != NULL, "reason: %s", receipt.reason);
    ck_assert(vdt_log_contains(s_world, "store append failed"));
    //  The rejected message was not delivered; space comes back and the broker carries on.
    ck_assert_int_eq(unlink(filler), 0);
    vd_envelope_t *env = vdt_envelope("alert.toscana.i726", "green", "after the space came back");
    vd_receipt_t after = vdt_publish(siena, env);
    vd_envelope_destroy(&env);
    ck_assert_int_eq(after.status, VD_RECEIPT_ACCEPTED);
    char *got = vdt_recv_body(cosc);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, "after the space came back");
    free(got);
    vd_client_destroy(&cosc);
    vd_client_destroy(&siena);
    ck_assert_int_eq(vdt_broker_stop(s_world), 0);
    //  Every accepted message is still there.
    char err[256] = "";
    vdb_store_t *store =
        vdb_store_open(vdt_path(s_world, "disk/vedetta.db"), VDB_SYNC_FULL, err, sizeof err);
    ck_assert_msg(store != NULL, "store: %s", err);
    ck_assert_uint_eq(vdb_store_count(store), (uint64_t)accepted + 1);
    vdb_store_close(&store);
    umount2(disk, MNT_DETACH);
}
END_TEST

START_TEST(retention_removes_expired_messages)
{
    vdt_broker_stop(s_world);
    FILE *cfg = fopen(vdt_path(s_world, "vedettad.cfg"), "a");
    ck_assert_ptr_nonnull(cfg);
    fprintf(cfg, "retention\n    interval = \"100ms\"\n");
    fclose(cfg);
    vdt_broker_start(s_world);
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    vd_envelope_t *brief = vdt_envelope("alert.toscana.i726", "green", "valid for a moment");
    ck_assert_int_eq(vd_envelope_set_time(brief, "expires", zclock_time() + 2000), VD_OK);
    vd_receipt_t gone = vdt_publish(siena, brief);
    ck_assert_int_eq(gone.status, VD_RECEIPT_ACCEPTED);
    vd_envelope_t *lasting = vdt_envelope("alert.toscana.i726", "green", "no expiry");
    vd_receipt_t kept = vdt_publish(siena, lasting);
    ck_assert_int_eq(kept.status, VD_RECEIPT_ACCEPTED);
    vd_envelope_destroy(&lasting);
    vd_envelope_destroy(&brief);
    vd_client_destroy(&siena);
    //  Bounded wait for the retention pass that follows the expiry.
    bool pruned = false;
    for (int i = 0; i < 200 && !pruned; i++) {
        pruned = vdt_log_contains(s_world, "retention deleted 1 message(s)");
        if (!pruned)
            zclock_sleep(50);
    }
    ck_assert_msg(pruned, "no retention pass removed the expired message");
    ck_assert_int_eq(vdt_broker_stop(s_world), 0);
    char err[256] = "";
    vdb_store_t *store =
        vdb_store_open(vdt_path(s_world, "vedetta.db"), VDB_SYNC_FULL, err, sizeof err);
    ck_assert_msg(store != NULL, "store: %s", err);
    ck_assert_int_eq(vdb_store_lookup(store, "comune:i726", gone.id, NULL, NULL, NULL),
                     VD_ENOTFOUND);
    ck_assert_int_eq(vdb_store_lookup(store, "comune:i726", kept.id, NULL, NULL, NULL), VD_OK);
    vdb_store_close(&store);
}
END_TEST

START_TEST(a_second_broker_cannot_open_a_store_in_use)
{
    char command[1024];
    snprintf(command, sizeof command,
             "%s --config %s/vedettad.cfg --endpoint tcp://127.0.0.1:* --check 2>%s/second.err",
             VDT_BROKER_BIN, vdt_path(s_world, "."), vdt_path(s_world, "."));
    int status = system(command);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 2);
    FILE *file = fopen(vdt_path(s_world, "second.err"), "r");
    ck_assert_ptr_nonnull(file);
    char line[512] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof line, file));
    fclose(file);
    ck_assert_msg(strstr(line, "store") != NULL, "refused for another reason: %s", line);
    ck_assert(vdt_broker_alive(s_world));
}
END_TEST

Suite *
it_store_suite(void)
{
    Suite *suite = suite_create("it_store");
    TCase *crash = tcase_create("crash");
    tcase_add_checked_fixture(crash, s_setup, s_teardown);
    tcase_set_timeout(crash, 120);
    tcase_add_test(crash, accepted_messages_survive_sigkill);
    tcase_add_test(crash, a_durable_subscriber_gets_each_accepted_message_once);
    tcase_add_test(crash, seq_keeps_rising_across_restarts);
    tcase_add_test(crash, a_second_broker_cannot_open_a_store_in_use);
    tcase_add_test(crash, retention_removes_expired_messages);
    suite_add_tcase(suite, crash);
    TCase *faults = tcase_create("faults");
    tcase_add_checked_fixture(faults, s_setup, s_teardown);
    tcase_set_timeout(faults, 120);
    tcase_add_test(faults, a_full_disk_rejects_and_recovers);
    suite_add_tcase(suite, faults);
    return suite;
}

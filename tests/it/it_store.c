/*  it_store: what an accepted receipt promises, against the real vedettad and its store on disk.
    The crash test streams publishes with receipts while the broker is killed with SIGKILL and
    restarted, several times. libvedetta sends again what lost its session, so each publish
    gets exactly one receipt, accepted or duplicate, never a rejection; at the end every
    message must be in the store, once, with the seq its receipt gave.  */
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
#define CRASH_DEADLINE 60000

static vdt_world_t *s_world;

static void
s_setup(void)
{
    s_world = vdt_world_new();
    vdt_agencies_demo(s_world);
    vdt_broker_start(s_world);
    vdt_broker_pin_endpoint(s_world);
}

static void
s_teardown(void)
{
    vdt_world_destroy(&s_world);
    ck_assert_ptr_null(s_world);
}

typedef struct {
    char id[VDP_ID_LEN + 1];
    int state;    // 0 to send, 1 sent, 2 answered (accepted or duplicate)
    uint64_t seq; // from its receipt
} sent_t;

static int64_t
s_now_ms(void)
{
    return zclock_mono();
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
s_drain(vd_client_t *client, sent_t *msgs, int wait_ms)
{
    vd_receipt_t receipt;
    while (vd_client_receipt(client, &receipt, wait_ms) == VD_OK) {
        wait_ms = 0;
        for (int i = 0; i < CRASH_MESSAGES; i++) {
            if (strcmp(msgs[i].id, receipt.id) != 0)
                continue;
            //  Not even ESESSION: what the restarts refused, libvedetta published again.
            ck_assert_msg(receipt.status != VD_RECEIPT_REJECTED, "message %d rejected: %s %s", i,
                          vd_strerror_name(receipt.code), receipt.reason);
            ck_assert_msg(msgs[i].state == 1, "message %d: a second receipt, seq %" PRIu64, i,
                          receipt.seq);
            msgs[i].state = 2;
            msgs[i].seq = receipt.seq;
            break;
        }
    }
}

START_TEST(accepted_messages_survive_sigkill)
{
    sent_t *msgs = calloc(CRASH_MESSAGES, sizeof *msgs);
    ck_assert_ptr_nonnull(msgs);
    for (int i = 0; i < CRASH_MESSAGES; i++)
        vdp_uuid_generate(msgs[i].id);
    vd_client_t *client = vd_client_new();
    ck_assert_int_eq(vd_client_set_heartbeat(client, 200), VD_OK);
    ck_assert_int_eq(vd_client_connect(client, vdt_endpoint(s_world), vdt_broker_key(s_world),
                                       vdt_secret(s_world, "comune:i726"), 5000),
                     VD_OK);
    int64_t deadline = s_now_ms() + CRASH_DEADLINE;
    int kills = 0;
    int accepted = 0;
    int in_flight_at_kill = 0; // publishes without a receipt when the broker died
    while (accepted < CRASH_MESSAGES && s_now_ms() < deadline) {
        //  Publish everything not yet accepted and not in flight, in one burst.
        int burst = 0;
        for (int i = 0; i < CRASH_MESSAGES && burst < 200; i++)
            if (msgs[i].state == 0) {
                s_send(client, &msgs[i]);
                burst++;
            }
        vd_client_flush(client);
        s_drain(client, msgs, 0);
        //  Kill while the burst is in flight, then restart on the same port.
        if (kills < CRASH_KILLS && burst > 0) {
            for (int i = 0; i < CRASH_MESSAGES; i++)
                in_flight_at_kill += msgs[i].state == 1;
            vdt_broker_kill(s_world);
            kills++;
            vdt_broker_start(s_world);
        }
        //  What a kill left without a receipt, the client sends again by itself.
        s_drain(client, msgs, 200);
        accepted = 0;
        for (int i = 0; i < CRASH_MESSAGES; i++)
            accepted += msgs[i].state == 2;
    }
    ck_assert_int_eq(kills, CRASH_KILLS);
    ck_assert_int_gt(in_flight_at_kill, 0); // the kills did land in the middle of the stream
    ck_assert_msg(accepted == CRASH_MESSAGES, "only %d of %d answered before the deadline",
                  accepted, CRASH_MESSAGES);
    vd_client_destroy(&client);
    ck_assert_int_eq(vdt_broker_stop(s_world), 0);

    //  Every accepted message is in the store, once, under the seq its receipt gave.
    char err[256] = "";
    vdb_store_t *store =
        vdb_store_open(vdt_path(s_world, "vedetta.db"), VDB_SYNC_FULL, err, sizeof err);
    ck_assert_msg(store != NULL, "store: %s", err);
    for (int i = 0; i < CRASH_MESSAGES; i++) {
        uint64_t seq = 0;
        ck_assert_int_eq(vdb_store_lookup(store, "comune:i726", msgs[i].id, &seq, NULL, NULL),
                         VD_OK);
        ck_assert_uint_eq(seq, msgs[i].seq);
    }
    ck_assert_uint_eq(vdb_store_count(store), CRASH_MESSAGES);
    vdb_store_close(&store);
    free(msgs);
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

/*  vdb_committer suite: batches written on the committer's thread into a real store (begin,
    start, poll the descriptor, wait, end), one after another; destroy with a batch in flight;
    and a write that fails for real (a full file system, a file size limit), after which the
    batch is left out and goes in once space returns.  */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include "small_disk.h"
#include "scratch.h"
#include "suites.h"
#include "vdb_committer.h"
#include "vdb_store.h"
#include "vedetta.h"

#define S_POLL_MS 10000 // how long a batch may take before the test gives up

static char s_dir[256]; // a fresh directory per test
static char s_path[512];
static char s_err[256];
static vdb_store_t *s_store;
static vdb_committer_t *s_committer;

//  One message to append, with storage for everything it points to.
typedef struct {
    char sender[32];
    char id[32];
    char key[48];
    uint8_t *raw;
    vdb_store_msg_t msg;
} s_rec_t;

//  A batch: the records and the array of messages the store and the committer take.
typedef struct {
    s_rec_t *recs;
    vdb_store_msg_t *msgs;
    size_t count;
} s_batch_t;

static void
s_setup(void)
{
    vdt_scratch_make(s_dir, sizeof s_dir, "vdb_committer");
    snprintf(s_path, sizeof s_path, "%s/store.db", s_dir);
    s_err[0] = '\0';
    s_store = NULL;
    s_committer = NULL;
}

static void
s_teardown(void)
{
    vdb_committer_destroy(&s_committer);
    ck_assert_ptr_null(s_committer);
    vdb_store_close(&s_store);
    vdt_scratch_remove(s_dir);
}

static void
s_open(void)
{
    s_store = vdb_store_open(s_path, VDB_SYNC_FULL, s_err, sizeof s_err);
    ck_assert_msg(s_store != NULL, "open: %s", s_err);
}

static void
s_committer_new(void)
{
    s_committer = vdb_committer_new(s_store);
    ck_assert_ptr_nonnull(s_committer);
    ck_assert_int_eq(vdb_committer_fd(s_committer), -1);
    ck_assert(!vdb_committer_busy(s_committer));
    ck_assert(!vdb_committer_done(s_committer));
}

//  The envelope bytes of message `seq`: a pattern that differs between neighbours.
static uint8_t
s_raw_byte(uint64_t seq, size_t i)
{
    return (uint8_t)(seq * 31u + i * 7u);
}

//  The id of message `seq`.
static void
s_id(char out[32], uint64_t seq)
{
    snprintf(out, 32, "m%06llu", (unsigned long long)seq);
}

//  Messages first..first + count - 1 (accepted_at = seq * 1000), raw_len bytes each; every
//  seventh is directed.
static void
s_batch(s_batch_t *batch, uint64_t first, size_t count, size_t raw_len)
{
    batch->count = count;
    batch->recs = calloc(count ? count : 1, sizeof *batch->recs);
    batch->msgs = calloc(count ? count : 1, sizeof *batch->msgs);
    ck_assert(batch->recs && batch->msgs);
    for (size_t i = 0; i < count; i++) {
        s_rec_t *rec = &batch->recs[i];
        uint64_t seq = first + i;
        snprintf(rec->sender, sizeof rec->sender, "%s", seq % 2 ? "it-cert" : "fr-anssi");
        s_id(rec->id, seq);
        snprintf(rec->key, sizeof rec->key, "key-of-%s", rec->sender);
        rec->raw = malloc(raw_len ? raw_len : 1);
        ck_assert_ptr_nonnull(rec->raw);
        for (size_t k = 0; k < raw_len; k++)
            rec->raw[k] = s_raw_byte(seq, k);
        rec->msg = (vdb_store_msg_t){
            .seq = seq,
            .accepted_at = (int64_t)seq * 1000,
            .sender = rec->sender,
            .id = rec->id,
            .topic = seq % 7 ? "alerts.cyber" : "inbox",
            .category = seq % 3 ? "cyber" : "infra",
            .tlp = (vdp_tlp_t)(VDP_TLP_CLEAR + seq % 5),
            .expires = 0,
            .key = rec->key,
            .to = seq % 7 ? NULL : "de-bsi,it-cert",
            .raw = rec->raw,
            .raw_len = raw_len,
        };
        batch->msgs[i] = rec->msg;
    }
}

static void
s_batch_free(s_batch_t *batch)
{
    for (size_t i = 0; i < batch->count; i++)
        free(batch->recs[i].raw);
    free(batch->recs);
    free(batch->msgs);
    memset(batch, 0, sizeof *batch);
}

//  Waits (S_POLL_MS at most) for the committer's descriptor to poll readable; the batch is
//  then written.
static void
s_poll_done(void)
{
    int fd = vdb_committer_fd(s_committer);
    ck_assert_int_ge(fd, 0);
    struct pollfd item = { .fd = fd, .events = POLLIN };
    int rc = -1;
    for (int tries = 0; tries < 100; tries++) {
        rc = poll(&item, 1, S_POLL_MS);
        if (rc >= 0 || errno != EINTR)
            break;
    }
    ck_assert_msg(rc == 1, "poll: %d (%s)", rc, rc < 0 ? strerror(errno) : "timed out");
    ck_assert(item.revents & POLLIN);
    ck_assert(vdb_committer_done(s_committer));
    ck_assert(vdb_committer_busy(s_committer));
}

/*  Runs `batch` through the committer: begin, start, poll, wait. Returns wait's result, with
    s_err; the caller ends the append. While the batch is in flight, the store answers from
    memory: its ids are held, the totals have not moved.  */
static int
s_write(const s_batch_t *batch)
{
    ck_assert_int_eq(vdb_committer_fd(s_committer), -1);
    ck_assert(!vdb_committer_busy(s_committer));
    uint64_t last_seq = vdb_store_last_seq(s_store);
    uint64_t count = vdb_store_count(s_store);
    ck_assert_msg(vdb_store_append_begin(s_store, batch->msgs, batch->count, s_err, sizeof s_err) ==
                      VD_OK,
                  "begin: %s", s_err);
    vdb_committer_start(s_committer, batch->msgs, batch->count);
    ck_assert(vdb_committer_busy(s_committer));
    ck_assert_int_ge(vdb_committer_fd(s_committer), 0);
    for (size_t i = 0; i < batch->count; i++)
        ck_assert(vdb_store_may_hold(s_store, batch->msgs[i].sender, batch->msgs[i].id));
    ck_assert_uint_eq(vdb_store_last_seq(s_store), last_seq);
    ck_assert_uint_eq(vdb_store_count(s_store), count);
    s_poll_done();
    strcpy(s_err, "not set");
    int rc = vdb_committer_wait(s_committer, s_err, sizeof s_err);
    ck_assert(!vdb_committer_busy(s_committer));
    ck_assert(!vdb_committer_done(s_committer));
    ck_assert_int_eq(vdb_committer_fd(s_committer), -1);
    return rc;
}

//  s_write, then the end of an append that succeeded.
static void
s_commit(const s_batch_t *batch)
{
    int rc = s_write(batch);
    ck_assert_msg(rc == VD_OK, "wait: %d: %s", rc, s_err);
    vdb_store_append_end(s_store, batch->msgs, batch->count, true);
}

//  What a scan saw: seqs in order, each message checked against what s_batch made.
typedef struct {
    uint64_t seqs[4096];
    size_t count;
    size_t raw_len;
    int bad;
} s_seen_t;

static int
s_collect(const vdb_store_msg_t *msg, void *arg)
{
    s_seen_t *seen = arg;
    ck_assert_uint_lt(seen->count, sizeof seen->seqs / sizeof *seen->seqs);
    seen->seqs[seen->count++] = msg->seq;
    char id[32];
    s_id(id, msg->seq);
    if (strcmp(msg->id, id) != 0 || strcmp(msg->sender, msg->seq % 2 ? "it-cert" : "fr-anssi") ||
        strcmp(msg->category, msg->seq % 3 ? "cyber" : "infra") ||
        (msg->seq % 7 ? msg->to != NULL : !msg->to || strcmp(msg->to, "de-bsi,it-cert") != 0) ||
        msg->accepted_at != (int64_t)msg->seq * 1000 || msg->raw_len != seen->raw_len)
        seen->bad++;
    for (size_t i = 0; i < msg->raw_len; i++) {
        if (msg->raw[i] != s_raw_byte(msg->seq, i))
            seen->bad++;
    }
    return 0;
}

//  Checks that exactly messages 1..count are stored, raw_len bytes each, found by lookup too.
static void
s_check_stored(uint64_t count, size_t raw_len)
{
    ck_assert_uint_eq(vdb_store_last_seq(s_store), count);
    ck_assert_uint_eq(vdb_store_count(s_store), count);
    ck_assert_uint_eq(vdb_store_bytes(s_store), count * raw_len);
    static s_seen_t seen;
    memset(&seen, 0, sizeof seen);
    seen.raw_len = raw_len;
    ck_assert_int_eq(vdb_store_scan(s_store, 0, 100000, s_collect, &seen), (int)count);
    ck_assert_int_eq(seen.bad, 0);
    ck_assert_uint_eq(seen.count, count);
    for (uint64_t i = 0; i < count; i++)
        ck_assert_uint_eq(seen.seqs[i], i + 1);
    for (uint64_t seq = 1; seq <= count; seq++) {
        char id[32];
        s_id(id, seq);
        uint64_t found = 0;
        int64_t accepted_at = 0;
        vdp_tlp_t tlp = VDP_TLP_NONE;
        ck_assert_int_eq(vdb_store_lookup(s_store, seq % 2 ? "it-cert" : "fr-anssi", id, &found,
                                          &accepted_at, &tlp),
                         VD_OK);
        ck_assert_uint_eq(found, seq);
        ck_assert_int_eq(accepted_at, (int64_t)seq * 1000);
        ck_assert_int_eq(tlp, VDP_TLP_CLEAR + seq % 5);
    }
}

//  --------------------------------------------------------------------------------------------
//  batches

START_TEST(committer_writes_a_batch)
{
    s_open();
    s_committer_new();
    s_batch_t batch;
    s_batch(&batch, 1, 50, 200);
    int rc = s_write(&batch);
    ck_assert_msg(rc == VD_OK, "wait: %d: %s", rc, s_err);
    ck_assert_str_eq(s_err, "");
    ck_assert_uint_eq(vdb_store_last_seq(s_store), 0); // until the end of the append
    vdb_store_append_end(s_store, batch.msgs, batch.count, true);
    s_batch_free(&batch);
    s_check_stored(50, 200);
    ck_assert_int_eq(vdb_store_lookup(s_store, "it-cert", "m000002", NULL, NULL, NULL),
                     VD_ENOTFOUND); // m000002 is fr-anssi's

    //  On disk, not only in this connection's view.
    vdb_committer_destroy(&s_committer);
    ck_assert_ptr_null(s_committer);
    vdb_store_close(&s_store);
    s_open();
    s_check_stored(50, 200);
}
END_TEST

START_TEST(committer_runs_batches_in_a_row)
{
    s_open();
    s_committer_new();
    uint64_t stored = 0;
    for (size_t round = 0; round < 25; round++) {
        //  Sizes 1..40 and an empty batch in between.
        size_t count = round == 10 ? 0 : 1 + (round * 17) % 40;
        s_batch_t batch;
        s_batch(&batch, stored + 1, count, 64);
        s_commit(&batch);
        s_batch_free(&batch);
        stored += count;
        ck_assert_uint_eq(vdb_store_last_seq(s_store), stored);
        ck_assert_uint_eq(vdb_store_count(s_store), stored);
    }
    s_check_stored(stored, 64);

    //  A batch that repeats a stored id never reaches the committer: begin refuses it.
    s_batch_t batch;
    s_batch(&batch, stored + 1, 3, 64);
    s_id(batch.recs[1].id, 2);
    snprintf(batch.recs[1].sender, sizeof batch.recs[1].sender, "fr-anssi");
    ck_assert_int_eq(vdb_store_append_begin(s_store, batch.msgs, 3, s_err, sizeof s_err),
                     VD_EINVAL);
    ck_assert_int_eq(vdb_committer_fd(s_committer), -1);
    s_batch_free(&batch);
    s_batch(&batch, stored + 1, 3, 64);
    s_commit(&batch);
    s_batch_free(&batch);
    s_check_stored(stored + 3, 64);
}
END_TEST

START_TEST(committer_destroy_waits_for_the_batch)
{
    s_open();
    s_committer_new();
    s_batch_t batch;
    s_batch(&batch, 1, 500, 1000);
    ck_assert_int_eq(vdb_store_append_begin(s_store, batch.msgs, batch.count, s_err, sizeof s_err),
                     VD_OK);
    vdb_committer_start(s_committer, batch.msgs, batch.count);
    vdb_committer_destroy(&s_committer); // at once: the thread may not even have begun
    ck_assert_ptr_null(s_committer);
    vdb_committer_destroy(&s_committer);
    vdb_committer_destroy(NULL);
    //  The result went with the committer: the batch must have been written to be found below.
    vdb_store_append_end(s_store, batch.msgs, batch.count, true);
    s_batch_free(&batch);
    s_check_stored(500, 1000);
    vdb_store_close(&s_store);
    s_open();
    s_check_stored(500, 1000);

    //  And an idle committer goes at once.
    s_committer_new();
    vdb_committer_destroy(&s_committer);
    ck_assert_ptr_null(s_committer);
}
END_TEST

//  --------------------------------------------------------------------------------------------
//  faults: real writes that fail

#define S_FAULT_BATCH 4
#define S_FAULT_RAW   1000

static vdt_small_disk_t s_disk;

//  Opens the store in a small space: a 1 MiB tmpfs if we may mount one (`mode` 0), else a file
//  size limit of 1 MiB (mode 1 goes straight there).
static vdt_disk_kind_t
s_disk_open(int mode)
{
    vdt_small_disk_init(&s_disk, s_dir, s_path, sizeof s_path);
    bool tmpfs = mode == 0 && vdt_small_disk_tmpfs(&s_disk);
    s_open();
    return tmpfs ? VDT_DISK_TMPFS : vdt_small_disk_limit(&s_disk);
}

static void
s_disk_close(void)
{
    vdb_committer_destroy(&s_committer);
    vdb_store_close(&s_store);
    vdt_small_disk_unmount(&s_disk);
}

START_TEST(committer_reports_a_failed_write)
{
    vdt_disk_kind_t disk = s_disk_open(_i);
    if (disk == VDT_DISK_NONE) {
        printf("vdb_committer: skipped: neither a tmpfs mount nor a file size limit is "
               "available\n");
        vdb_store_close(&s_store);
        return;
    }
    s_committer_new();

    //  Batch after batch through the committer until the space runs out.
    uint64_t stored = 0;
    int rc = VD_OK;
    s_batch_t batch = { 0 };
    for (int round = 0; round < 2048 && rc == VD_OK; round++) {
        s_batch(&batch, stored + 1, S_FAULT_BATCH, S_FAULT_RAW);
        rc = s_write(&batch);
        vdb_store_append_end(s_store, batch.msgs, batch.count, rc == VD_OK);
        if (rc == VD_OK) {
            stored += S_FAULT_BATCH;
            s_batch_free(&batch);
        }
    }
    ck_assert_int_eq(rc, VD_ESTORE);
    ck_assert_uint_gt(stored, 0);
    if (disk == VDT_DISK_TMPFS)
        ck_assert_msg(strcmp(s_err, "disk full") == 0, "err: %s", s_err);
    else
        ck_assert_msg(strcmp(s_err, "disk full") == 0 || strncmp(s_err, "I/O error", 9) == 0,
                      "err: %s", s_err);
    printf("vdb_committer: %s refused the batch after %llu messages: %s\n",
           disk == VDT_DISK_TMPFS ? "a full 1 MiB tmpfs" : "a 1 MiB file size limit",
           (unsigned long long)stored, s_err);

    //  end(false) left the batch out: not held, not found; the rest is intact.
    for (size_t i = 0; i < batch.count; i++) {
        const vdb_store_msg_t *msg = &batch.msgs[i];
        ck_assert(!vdb_store_may_hold(s_store, msg->sender, msg->id));
        ck_assert_int_eq(vdb_store_lookup(s_store, msg->sender, msg->id, NULL, NULL, NULL),
                         VD_ENOTFOUND);
    }
    s_check_stored(stored, S_FAULT_RAW);

    //  Space comes back: the same batch, through the same committer and store, goes in.
    vdt_small_disk_free(&s_disk);
    s_commit(&batch);
    s_batch_free(&batch);
    stored += S_FAULT_BATCH;
    s_check_stored(stored, S_FAULT_RAW);

    vdb_committer_destroy(&s_committer);
    vdb_store_close(&s_store);
    s_open();
    s_check_stored(stored, S_FAULT_RAW);
    s_disk_close();
}
END_TEST

Suite *
vdb_committer_suite(void)
{
    Suite *suite = suite_create("vdb_committer");

    TCase *batches = tcase_create("batches");
    tcase_add_checked_fixture(batches, s_setup, s_teardown);
    tcase_set_timeout(batches, 60);
    tcase_add_test(batches, committer_writes_a_batch);
    tcase_add_test(batches, committer_runs_batches_in_a_row);
    tcase_add_test(batches, committer_destroy_waits_for_the_batch);
    suite_add_tcase(suite, batches);

    //  Loop 0: a full tmpfs (else the file size limit); loop 1: the file size limit.
    TCase *faults = tcase_create("faults");
    tcase_add_checked_fixture(faults, s_setup, s_teardown);
    tcase_set_timeout(faults, 60);
    tcase_add_loop_test(faults, committer_reports_a_failed_write, 0, 2);
    suite_add_tcase(suite, faults);

    return suite;
}

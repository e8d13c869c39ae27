/*  vdb_store suite: open, create and reopen; schema version refusal; append, lookup, scan and
    seq_at; duplicates; cursors; retention by age, size and expiry; running totals; the append in
    three steps (begin, write, end) and may_hold; and real write failures (a full file system, a
    file size limit) that the store must survive.  */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>
#include <sqlite3.h>

#include "small_disk.h"
#include "scratch.h"
#include "suites.h"
#include "vdb_store.h"
#include "vedetta.h"

#define S_MAX_RAW 2048

static char s_dir[256]; // a fresh directory per test
static char s_path[512];
static char s_err[256];
static vdb_store_t *s_store;

//  One message to append, with storage for everything it points to.
typedef struct {
    char sender[32];
    char id[32];
    char category[32];
    char key[48];
    char to[64];
    uint8_t raw[S_MAX_RAW];
    vdb_store_msg_t msg;
} s_rec_t;

static void
s_setup(void)
{
    vdt_scratch_make(s_dir, sizeof s_dir, "vdb_store");
    snprintf(s_path, sizeof s_path, "%s/store.db", s_dir);
    s_err[0] = '\0';
    s_store = NULL;
}

static void
s_teardown(void)
{
    vdb_store_close(&s_store);
    ck_assert_ptr_null(s_store);
    vdt_scratch_remove(s_dir);
}

static void
s_open(void)
{
    s_store = vdb_store_open(s_path, VDB_SYNC_FULL, s_err, sizeof s_err);
    ck_assert_msg(s_store != NULL, "open: %s", s_err);
}

static void
s_reopen(void)
{
    vdb_store_close(&s_store);
    ck_assert_ptr_null(s_store);
    s_open();
}

//  The envelope bytes of message `seq`: a pattern that differs between neighbours.
static uint8_t
s_raw_byte(uint64_t seq, size_t i)
{
    return (uint8_t)(seq * 31u + i * 7u);
}

static void
s_rec(s_rec_t *rec,
      uint64_t seq,
      const char *sender,
      const char *category,
      int64_t accepted_at,
      int64_t expires,
      size_t raw_len)
{
    ck_assert_uint_le(raw_len, S_MAX_RAW);
    memset(rec, 0, sizeof *rec);
    snprintf(rec->sender, sizeof rec->sender, "%s", sender);
    snprintf(rec->id, sizeof rec->id, "m%06llu", (unsigned long long)seq);
    snprintf(rec->category, sizeof rec->category, "%s", category);
    snprintf(rec->key, sizeof rec->key, "key-of-%s", sender);
    for (size_t i = 0; i < raw_len; i++)
        rec->raw[i] = s_raw_byte(seq, i);
    rec->msg = (vdb_store_msg_t){
        .seq = seq,
        .accepted_at = accepted_at,
        .sender = rec->sender,
        .id = rec->id,
        .topic = "alerts.cyber",
        .category = rec->category,
        .tlp = VDP_TLP_AMBER,
        .expires = expires,
        .key = rec->key,
        .to = NULL,
        .raw = rec->raw,
        .raw_len = raw_len,
    };
}

//  Appends messages first..last (seq = accepted_at / 1000), all of `category`, in one batch.
static void
s_append_range(uint64_t first, uint64_t last, const char *category, size_t raw_len)
{
    size_t count = (size_t)(last - first + 1);
    s_rec_t *recs = calloc(count, sizeof *recs);
    vdb_store_msg_t *msgs = calloc(count, sizeof *msgs);
    ck_assert(recs && msgs);
    for (size_t i = 0; i < count; i++) {
        s_rec(&recs[i], first + i, "it-cert", category, (int64_t)(first + i) * 1000, 0, raw_len);
        msgs[i] = recs[i].msg;
    }
    ck_assert_msg(vdb_store_append(s_store, msgs, count, s_err, sizeof s_err) == VD_OK,
                  "append: %s", s_err);
    free(msgs);
    free(recs);
}

static int
s_append_one(const s_rec_t *rec)
{
    return vdb_store_append(s_store, &rec->msg, 1, s_err, sizeof s_err);
}

//  What a scan saw: seqs in order, each envelope checked against its pattern.
typedef struct {
    uint64_t seqs[4096];
    size_t count;
    size_t stop_after; // 0: never stop
    int bad_bytes;
} s_seen_t;

static int
s_collect(const vdb_store_msg_t *msg, void *arg)
{
    s_seen_t *seen = arg;
    ck_assert_uint_lt(seen->count, sizeof seen->seqs / sizeof *seen->seqs);
    seen->seqs[seen->count++] = msg->seq;
    for (size_t i = 0; i < msg->raw_len; i++) {
        if (msg->raw[i] != s_raw_byte(msg->seq, i))
            seen->bad_bytes++;
    }
    return seen->stop_after && seen->count == seen->stop_after;
}

static s_seen_t *
s_scan_all(void)
{
    static s_seen_t seen;
    memset(&seen, 0, sizeof seen);
    int passed = vdb_store_scan(s_store, 0, 100000, s_collect, &seen);
    ck_assert_int_eq(passed, (int)seen.count);
    ck_assert_int_eq(seen.bad_bytes, 0);
    return &seen;
}

//  Runs SQL on the store's file behind its back (the store must be closed).
static void
s_sql(const char *sql)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(s_path, &db), SQLITE_OK);
    char *why = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &why);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, why ? why : "?");
    sqlite3_free(why);
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}

//  --------------------------------------------------------------------------------------------
//  open

START_TEST(open_creates_then_reopens_with_data)
{
    s_open();
    ck_assert_uint_eq(vdb_store_last_seq(s_store), 0);
    ck_assert_uint_eq(vdb_store_count(s_store), 0);
    ck_assert_uint_eq(vdb_store_bytes(s_store), 0);
    s_append_range(1, 5, "cyber", 100);
    ck_assert_uint_eq(vdb_store_last_seq(s_store), 5);
    s_reopen();
    ck_assert_uint_eq(vdb_store_last_seq(s_store), 5);
    ck_assert_uint_eq(vdb_store_count(s_store), 5);
    ck_assert_uint_eq(vdb_store_bytes(s_store), 500);
    s_seen_t *seen = s_scan_all();
    ck_assert_uint_eq(seen->count, 5);
    for (size_t i = 0; i < 5; i++)
        ck_assert_uint_eq(seen->seqs[i], i + 1);
}
END_TEST

START_TEST(open_in_every_sync_mode)
{
    vdb_sync_t modes[] = { VDB_SYNC_FULL, VDB_SYNC_NORMAL, VDB_SYNC_OFF };
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        s_store = vdb_store_open(s_path, modes[i], s_err, sizeof s_err);
        ck_assert_msg(s_store != NULL, "open: %s", s_err);
        s_append_range(i + 1, i + 1, "cyber", 10);
        vdb_store_close(&s_store);
    }
    s_open();
    ck_assert_uint_eq(vdb_store_count(s_store), 3);
}
END_TEST

START_TEST(open_refuses_unknown_schema_version)
{
    s_open();
    vdb_store_close(&s_store);
    s_sql("UPDATE meta SET value = 99 WHERE name = 'schema_version'");
    s_store = vdb_store_open(s_path, VDB_SYNC_FULL, s_err, sizeof s_err);
    ck_assert_ptr_null(s_store);
    ck_assert_msg(strstr(s_err, "schema version 99") != NULL, "err: %s", s_err);
}
END_TEST

START_TEST(open_refuses_other_files)
{
    s_sql("CREATE TABLE unrelated (x INTEGER)");
    s_store = vdb_store_open(s_path, VDB_SYNC_FULL, s_err, sizeof s_err);
    ck_assert_ptr_null(s_store);
    ck_assert_msg(strstr(s_err, "not a vedetta store") != NULL, "err: %s", s_err);

    snprintf(s_path, sizeof s_path, "%s/text.db", s_dir);
    FILE *file = fopen(s_path, "w");
    ck_assert_ptr_nonnull(file);
    for (int i = 0; i < 200; i++)
        fputs("this is not a database at all\n", file);
    ck_assert_int_eq(fclose(file), 0);
    s_err[0] = '\0';
    s_store = vdb_store_open(s_path, VDB_SYNC_FULL, s_err, sizeof s_err);
    ck_assert_ptr_null(s_store);
    ck_assert_str_ne(s_err, "");

    s_store = vdb_store_open(NULL, VDB_SYNC_FULL, s_err, sizeof s_err);
    ck_assert_ptr_null(s_store);
    s_store = vdb_store_open(s_path, (vdb_sync_t)7, s_err, sizeof s_err);
    ck_assert_ptr_null(s_store);
}
END_TEST

START_TEST(open_refuses_a_store_in_use)
{
    s_open();
    s_append_range(1, 3, "cyber", 100);
    //  A second broker on the same file is refused before it touches anything.
    vdb_store_t *second = vdb_store_open(s_path, VDB_SYNC_FULL, s_err, sizeof s_err);
    ck_assert_ptr_null(second);
    ck_assert_msg(strstr(s_err, "in use by another broker") != NULL, "err: %s", s_err);
    s_append_range(4, 4, "cyber", 100);
    ck_assert_uint_eq(vdb_store_count(s_store), 4);
    //  Once the first is closed, the file opens again with everything in it.
    s_reopen();
    ck_assert_uint_eq(vdb_store_count(s_store), 4);
    ck_assert_uint_eq(s_scan_all()->count, 4);
}
END_TEST

//  Appends past the WAL's threshold (32 MiB) go on while the checkpoint thread copies the WAL
//  into the database; once it settles, the WAL was copied whole and a store reopened from the
//  file has every message.
START_TEST(appends_past_the_threshold_are_checkpointed_aside)
{
    s_open();
    vdb_checkpoint_t *checkpoint = vdb_store_checkpointer(s_store);
    ck_assert_ptr_nonnull(checkpoint);
    uint64_t seq = 0;
    for (int batch = 0; batch < 40; batch++, seq += 1024)
        s_append_range(seq + 1, seq + 1024, "cyber", 1000);
    vdb_checkpoint_stats_t stats;
    vdb_checkpoint_stats(checkpoint, &stats);
    ck_assert_uint_ge(stats.requests, 1);
    vdb_checkpoint_request(checkpoint);
    vdb_checkpoint_settle(checkpoint);
    vdb_checkpoint_stats(checkpoint, &stats);
    ck_assert_uint_ge(stats.runs, 1);
    ck_assert_uint_eq(stats.failures, 0);
    ck_assert_int_gt(stats.wal_frames, 0);
    ck_assert_int_eq(stats.copied_frames, stats.wal_frames);
    struct stat st;
    ck_assert_int_eq(stat(s_path, &st), 0);
    ck_assert_int_ge(st.st_size, (off_t)seq * 1000);

    s_append_range(seq + 1, seq + 10, "cyber", 1000);
    s_reopen();
    ck_assert_uint_eq(vdb_store_count(s_store), seq + 10);
    ck_assert_uint_eq(vdb_store_last_seq(s_store), seq + 10);
    ck_assert_uint_eq(vdb_store_bytes(s_store), (seq + 10) * 1000);
}
END_TEST

//  --------------------------------------------------------------------------------------------
//  append, lookup, scan

START_TEST(append_then_lookup)
{
    s_open();
    s_rec_t rec;
    s_rec(&rec, 1, "it-cert", "cyber", 1700000000123, 0, 64);
    rec.msg.tlp = VDP_TLP_RED;
    ck_assert_int_eq(s_append_one(&rec), VD_OK);

    uint64_t seq = 0;
    int64_t accepted_at = 0;
    vdp_tlp_t tlp = VDP_TLP_CLEAR;
    ck_assert_int_eq(vdb_store_lookup(s_store, "it-cert", "m000001", &seq, &accepted_at, &tlp),
                     VD_OK);
    ck_assert_uint_eq(seq, 1);
    ck_assert_int_eq(accepted_at, 1700000000123);
    ck_assert_int_eq(tlp, VDP_TLP_RED);
    ck_assert_int_eq(vdb_store_lookup(s_store, "it-cert", "m000001", NULL, NULL, NULL), VD_OK);
    ck_assert_int_eq(vdb_store_lookup(s_store, "it-cert", "m000002", &seq, NULL, NULL),
                     VD_ENOTFOUND);
    ck_assert_int_eq(vdb_store_lookup(s_store, "fr-cert", "m000001", &seq, NULL, NULL),
                     VD_ENOTFOUND);
    ck_assert_int_eq(vdb_store_append(s_store, NULL, 0, s_err, sizeof s_err), VD_OK);
}
END_TEST

//  Checks every field of the one message a scan passes.
static int
s_check_fields(const vdb_store_msg_t *msg, void *arg)
{
    (void)arg;
    ck_assert_uint_eq(msg->seq, 7);
    ck_assert_int_eq(msg->accepted_at, 7000);
    ck_assert_str_eq(msg->sender, "fr-anssi");
    ck_assert_str_eq(msg->id, "m000007");
    ck_assert_str_eq(msg->topic, "inbox");
    ck_assert_str_eq(msg->category, "infra");
    ck_assert_int_eq(msg->tlp, VDP_TLP_GREEN);
    ck_assert_int_eq(msg->expires, 99000);
    ck_assert_str_eq(msg->key, "key-of-fr-anssi");
    ck_assert_str_eq(msg->to, "it-cert,de-bsi");
    ck_assert_uint_eq(msg->raw_len, 300);
    for (size_t i = 0; i < msg->raw_len; i++)
        ck_assert_uint_eq(msg->raw[i], s_raw_byte(7, i));
    return 0;
}

START_TEST(scan_passes_every_field)
{
    s_open();
    s_rec_t rec;
    s_rec(&rec, 7, "fr-anssi", "infra", 7000, 99000, 300);
    rec.msg.topic = "inbox";
    rec.msg.tlp = VDP_TLP_GREEN;
    snprintf(rec.to, sizeof rec.to, "it-cert,de-bsi");
    rec.msg.to = rec.to;
    ck_assert_int_eq(s_append_one(&rec), VD_OK);
    ck_assert_int_eq(vdb_store_scan(s_store, 0, 10, s_check_fields, NULL), 1);

    s_rec(&rec, 8, "fr-anssi", "infra", 8000, 0, 10);
    rec.msg.to = ""; // "" is stored as not directed
    ck_assert_int_eq(s_append_one(&rec), VD_OK);
    s_seen_t *seen = s_scan_all();
    ck_assert_uint_eq(seen->count, 2);
}
END_TEST

static int
s_to_is_null(const vdb_store_msg_t *msg, void *arg)
{
    (void)arg;
    ck_assert_ptr_null(msg->to);
    return 0;
}

START_TEST(scan_in_order_with_limit_and_stop)
{
    s_open();
    s_append_range(1, 10, "cyber", 50);
    s_append_range(11, 20, "infra", 50);
    s_seen_t seen = { .count = 0 };
    ck_assert_int_eq(vdb_store_scan(s_store, 0, 100, s_collect, &seen), 20);
    for (size_t i = 0; i < 20; i++)
        ck_assert_uint_eq(seen.seqs[i], i + 1);

    memset(&seen, 0, sizeof seen);
    ck_assert_int_eq(vdb_store_scan(s_store, 3, 4, s_collect, &seen), 4);
    ck_assert_uint_eq(seen.seqs[0], 4);
    ck_assert_uint_eq(seen.seqs[3], 7);

    memset(&seen, 0, sizeof seen);
    seen.stop_after = 3;
    ck_assert_int_eq(vdb_store_scan(s_store, 15, 100, s_collect, &seen), 3);
    ck_assert_uint_eq(seen.seqs[2], 18);

    memset(&seen, 0, sizeof seen);
    ck_assert_int_eq(vdb_store_scan(s_store, 20, 100, s_collect, &seen), 0);
    ck_assert_int_eq(vdb_store_scan(s_store, 0, 0, s_collect, &seen), 0);
    ck_assert_uint_eq(seen.count, 0);
    ck_assert_int_eq(vdb_store_scan(s_store, 0, 100, s_to_is_null, NULL), 20);
}
END_TEST

START_TEST(seq_at_finds_first_at_or_after)
{
    s_open();
    uint64_t seq = 0;
    ck_assert_int_eq(vdb_store_seq_at(s_store, 0, &seq), VD_ENOTFOUND);
    s_append_range(1, 10, "cyber", 10); // accepted_at = seq * 1000
    ck_assert_int_eq(vdb_store_seq_at(s_store, 0, &seq), VD_OK);
    ck_assert_uint_eq(seq, 1);
    ck_assert_int_eq(vdb_store_seq_at(s_store, 1500, &seq), VD_OK);
    ck_assert_uint_eq(seq, 2);
    ck_assert_int_eq(vdb_store_seq_at(s_store, 2000, &seq), VD_OK);
    ck_assert_uint_eq(seq, 2);
    ck_assert_int_eq(vdb_store_seq_at(s_store, 10000, &seq), VD_OK);
    ck_assert_uint_eq(seq, 10);
    ck_assert_int_eq(vdb_store_seq_at(s_store, 10001, &seq), VD_ENOTFOUND);
}
END_TEST

//  seq_at searches seq order: gaps in seq, and a clock that stepped back, still give a message
//  accepted at or after the time asked.
START_TEST(seq_at_across_gaps_and_a_clock_step_back)
{
    s_open();
    uint64_t seqs[] = { 1, 2, 5, 9, 20 };
    for (size_t i = 0; i < sizeof seqs / sizeof *seqs; i++)
        s_append_range(seqs[i], seqs[i], "cyber", 10); // accepted_at = seq * 1000
    uint64_t seq = 0;
    ck_assert_int_eq(vdb_store_seq_at(s_store, 2001, &seq), VD_OK);
    ck_assert_uint_eq(seq, 5);
    ck_assert_int_eq(vdb_store_seq_at(s_store, 9000, &seq), VD_OK);
    ck_assert_uint_eq(seq, 9);
    ck_assert_int_eq(vdb_store_seq_at(s_store, 9001, &seq), VD_OK);
    ck_assert_uint_eq(seq, 20);
    ck_assert_int_eq(vdb_store_seq_at(s_store, INT64_MIN, &seq), VD_OK);
    ck_assert_uint_eq(seq, 1);

    //  The clock steps back: seq 21 is stamped 5500, before seq 9.
    s_rec_t rec;
    s_rec(&rec, 21, "it-cert", "cyber", 5500, 0, 10);
    ck_assert_int_eq(s_append_one(&rec), VD_OK);
    ck_assert_int_eq(vdb_store_seq_at(s_store, 5500, &seq), VD_OK);
    ck_assert_uint_eq(seq, 9); // accepted at or after 5500, and the first in seq order
    ck_assert_int_eq(vdb_store_seq_at(s_store, 20001, &seq), VD_ENOTFOUND);
    s_reopen();
    ck_assert_int_eq(vdb_store_seq_at(s_store, 9001, &seq), VD_OK);
    ck_assert_uint_eq(seq, 20);
}
END_TEST

//  Enough messages to grow the in-memory id map several times, two senders sharing ids; then
//  lookups and duplicates after a reopen (the map rebuilt from the file) and after retention
//  (entries taken out one by one from the middle of their probe runs).
START_TEST(lookup_many_across_reopen_and_prune)
{
    enum { N = 3000 };
    s_open();
    s_append_range(1, N, "cyber", 20); // it-cert, m000001.., accepted_at = seq * 1000
    s_rec_t *recs = calloc(N, sizeof *recs);
    vdb_store_msg_t *msgs = calloc(N, sizeof *msgs);
    ck_assert(recs && msgs);
    for (size_t i = 0; i < N; i++) {
        s_rec(&recs[i], N + 1 + i, "fr-anssi", "infra", (int64_t)(N + 1 + i) * 1000, 0, 20);
        snprintf(recs[i].id, sizeof recs[i].id, "m%06zu", i + 1); // the same ids as it-cert
        msgs[i] = recs[i].msg;
        msgs[i].id = recs[i].id;
    }
    ck_assert_int_eq(vdb_store_append(s_store, msgs, N, s_err, sizeof s_err), VD_OK);
    s_reopen();
    uint64_t seq = 0;
    char id[32];
    for (size_t i = 1; i <= N; i++) {
        snprintf(id, sizeof id, "m%06zu", i);
        ck_assert_int_eq(vdb_store_lookup(s_store, "it-cert", id, &seq, NULL, NULL), VD_OK);
        ck_assert_uint_eq(seq, i);
        ck_assert_int_eq(vdb_store_lookup(s_store, "fr-anssi", id, &seq, NULL, NULL), VD_OK);
        ck_assert_uint_eq(seq, N + i);
    }
    ck_assert_int_eq(vdb_store_lookup(s_store, "it-cert", "m999999", &seq, NULL, NULL),
                     VD_ENOTFOUND);
    s_rec_t again;
    s_rec(&again, 2 * N + 1, "fr-anssi", "infra", 0, 0, 20);
    snprintf(again.id, sizeof again.id, "m%06d", N / 2);
    ck_assert_int_eq(s_append_one(&again), VD_EINVAL); // still a duplicate after reopening

    //  Age retention takes it-cert's first half out; the rest is still found, exactly.
    ck_assert_int_eq(vdb_store_prune(s_store, NULL, (int64_t)(N / 2 + 1) * 1000, 0, 0), N / 2);
    for (size_t i = 1; i <= N; i++) {
        snprintf(id, sizeof id, "m%06zu", i);
        int want = i <= N / 2 ? VD_ENOTFOUND : VD_OK;
        ck_assert_int_eq(vdb_store_lookup(s_store, "it-cert", id, &seq, NULL, NULL), want);
        if (want == VD_OK)
            ck_assert_uint_eq(seq, i);
        ck_assert_int_eq(vdb_store_lookup(s_store, "fr-anssi", id, &seq, NULL, NULL), VD_OK);
        ck_assert_uint_eq(seq, N + i);
    }
    //  A pruned (sender, id) is new again.
    snprintf(again.id, sizeof again.id, "m%06d", 1);
    snprintf(again.sender, sizeof again.sender, "it-cert");
    ck_assert_int_eq(s_append_one(&again), VD_OK);
    ck_assert_int_eq(vdb_store_lookup(s_store, "it-cert", "m000001", &seq, NULL, NULL), VD_OK);
    ck_assert_uint_eq(seq, 2 * N + 1);
    ck_assert_uint_eq(vdb_store_count(s_store), N + N / 2 + 1);
    free(msgs);
    free(recs);
}
END_TEST

START_TEST(duplicate_against_stored_stores_nothing)
{
    s_open();
    s_append_range(1, 3, "cyber", 100);
    s_rec_t recs[3];
    s_rec(&recs[0], 4, "it-cert", "cyber", 4000, 0, 100);
    s_rec(&recs[1], 5, "it-cert", "cyber", 5000, 0, 100);
    s_rec(&recs[2], 6, "it-cert", "cyber", 6000, 0, 100);
    snprintf(recs[1].id, sizeof recs[1].id, "m000002"); // already stored as seq 2
    vdb_store_msg_t msgs[3] = { recs[0].msg, recs[1].msg, recs[2].msg };
    ck_assert_int_eq(vdb_store_append(s_store, msgs, 3, s_err, sizeof s_err), VD_EINVAL);
    ck_assert_msg(strstr(s_err, "duplicate") != NULL, "err: %s", s_err);
    ck_assert_int_eq(vdb_store_lookup(s_store, "it-cert", "m000004", NULL, NULL, NULL),
                     VD_ENOTFOUND);
    ck_assert_uint_eq(vdb_store_count(s_store), 3);
    ck_assert_uint_eq(vdb_store_bytes(s_store), 300);
    ck_assert_uint_eq(vdb_store_last_seq(s_store), 3);
    uint64_t seq = 0;
    ck_assert_int_eq(vdb_store_lookup(s_store, "it-cert", "m000002", &seq, NULL, NULL), VD_OK);
    ck_assert_uint_eq(seq, 2);

    //  The store still works, and the same sender may reuse nothing but new ids.
    ck_assert_int_eq(vdb_store_append(s_store, msgs, 1, s_err, sizeof s_err), VD_OK);
    ck_assert_uint_eq(vdb_store_count(s_store), 4);
    s_reopen();
    ck_assert_uint_eq(vdb_store_count(s_store), 4);
    ck_assert_uint_eq(s_scan_all()->count, 4);
}
END_TEST

START_TEST(duplicate_within_batch_stores_nothing)
{
    s_open();
    s_rec_t recs[2];
    s_rec(&recs[0], 1, "it-cert", "cyber", 1000, 0, 100);
    s_rec(&recs[1], 2, "it-cert", "cyber", 2000, 0, 100);
    snprintf(recs[1].id, sizeof recs[1].id, "%s", recs[0].id);
    vdb_store_msg_t msgs[2] = { recs[0].msg, recs[1].msg };
    ck_assert_int_eq(vdb_store_append(s_store, msgs, 2, s_err, sizeof s_err), VD_EINVAL);
    ck_assert_uint_eq(vdb_store_count(s_store), 0);
    ck_assert_uint_eq(vdb_store_last_seq(s_store), 0);
    ck_assert_int_eq(vdb_store_lookup(s_store, "it-cert", recs[0].id, NULL, NULL, NULL),
                     VD_ENOTFOUND);
    //  Another sender may use the same id.
    snprintf(recs[1].sender, sizeof recs[1].sender, "fr-anssi");
    msgs[1] = recs[1].msg;
    ck_assert_int_eq(vdb_store_append(s_store, msgs, 2, s_err, sizeof s_err), VD_OK);
    ck_assert_uint_eq(vdb_store_count(s_store), 2);
}
END_TEST

START_TEST(append_refuses_bad_seq_and_missing_fields)
{
    s_open();
    s_append_range(1, 3, "cyber", 10);
    s_rec_t rec;
    s_rec(&rec, 3, "it-cert", "cyber", 1000, 0, 10);
    snprintf(rec.id, sizeof rec.id, "fresh");
    ck_assert_int_eq(s_append_one(&rec), VD_EINVAL); // not above last_seq

    s_rec_t recs[2];
    s_rec(&recs[0], 9, "it-cert", "cyber", 9000, 0, 10);
    s_rec(&recs[1], 8, "it-cert", "cyber", 8000, 0, 10);
    vdb_store_msg_t msgs[2] = { recs[0].msg, recs[1].msg };
    ck_assert_int_eq(vdb_store_append(s_store, msgs, 2, s_err, sizeof s_err), VD_EINVAL);

    s_rec(&rec, 4, "it-cert", "cyber", 4000, 0, 10);
    rec.msg.category = NULL;
    ck_assert_int_eq(s_append_one(&rec), VD_EINVAL);
    ck_assert_uint_eq(vdb_store_count(s_store), 3);
    ck_assert_uint_eq(vdb_store_last_seq(s_store), 3);

    //  Seqs may leave gaps.
    s_rec(&rec, 10, "it-cert", "cyber", 10000, 0, 10);
    ck_assert_int_eq(s_append_one(&rec), VD_OK);
    ck_assert_uint_eq(vdb_store_last_seq(s_store), 10);
}
END_TEST

START_TEST(totals_follow_append_and_reopen)
{
    s_open();
    s_append_range(1, 32, "cyber", 1000);
    s_append_range(33, 40, "infra", 24);
    ck_assert_uint_eq(vdb_store_count(s_store), 40);
    ck_assert_uint_eq(vdb_store_bytes(s_store), 32 * 1000 + 8 * 24);
    s_reopen();
    ck_assert_uint_eq(vdb_store_count(s_store), 40);
    ck_assert_uint_eq(vdb_store_bytes(s_store), 32 * 1000 + 8 * 24);
}
END_TEST

//  --------------------------------------------------------------------------------------------
//  cursors

//  After a reopen the cursors both cursor tests write are there: keyA daily 42 and weekly 7,
//  keyB daily 9, and no keyB weekly.
static void
s_reopen_check_cursors(void)
{
    uint64_t seq = 0;
    s_reopen();
    ck_assert_int_eq(vdb_store_cursor_get(s_store, "keyA", "daily", &seq), VD_OK);
    ck_assert_uint_eq(seq, 42);
    ck_assert_int_eq(vdb_store_cursor_get(s_store, "keyA", "weekly", &seq), VD_OK);
    ck_assert_uint_eq(seq, 7);
    ck_assert_int_eq(vdb_store_cursor_get(s_store, "keyB", "daily", &seq), VD_OK);
    ck_assert_uint_eq(seq, 9);
    ck_assert_int_eq(vdb_store_cursor_get(s_store, "keyB", "weekly", &seq), VD_ENOTFOUND);
}

START_TEST(cursors_set_overwrite_and_survive)
{
    s_open();
    uint64_t seq = 0;
    ck_assert_int_eq(vdb_store_cursor_get(s_store, "keyA", "daily", &seq), VD_ENOTFOUND);
    ck_assert_int_eq(vdb_store_cursor_set(s_store, "keyA", "daily", 5), VD_OK);
    ck_assert_int_eq(vdb_store_cursor_get(s_store, "keyA", "daily", &seq), VD_OK);
    ck_assert_uint_eq(seq, 5);
    ck_assert_int_eq(vdb_store_cursor_set(s_store, "keyA", "daily", 42), VD_OK);
    ck_assert_int_eq(vdb_store_cursor_set(s_store, "keyA", "weekly", 7), VD_OK);
    ck_assert_int_eq(vdb_store_cursor_set(s_store, "keyB", "daily", 9), VD_OK);
    ck_assert_int_eq(vdb_store_cursor_get(s_store, "keyA", "daily", &seq), VD_OK);
    ck_assert_uint_eq(seq, 42);
    s_reopen_check_cursors();
}
END_TEST

START_TEST(cursor_set_many_writes_all_at_once)
{
    s_open();
    ck_assert_int_eq(vdb_store_cursor_set_many(s_store, NULL, 0), VD_OK);
    ck_assert_int_eq(vdb_store_cursor_set(s_store, "keyA", "daily", 5), VD_OK);
    vdb_store_cursor_t cursors[] = {
        { .key = "keyA", .name = "daily", .seq = 40 }, // overwrites 5
        { .key = "keyA", .name = "weekly", .seq = 7 },
        { .key = "keyB", .name = "daily", .seq = 9 },
        { .key = "keyA", .name = "daily", .seq = 42 }, // the later one wins
    };
    ck_assert_int_eq(vdb_store_cursor_set_many(s_store, cursors, 4), VD_OK);
    uint64_t seq = 0;
    ck_assert_int_eq(vdb_store_cursor_get(s_store, "keyA", "daily", &seq), VD_OK);
    ck_assert_uint_eq(seq, 42);
    s_reopen_check_cursors();
}
END_TEST

//  --------------------------------------------------------------------------------------------
//  prune

START_TEST(prune_by_age)
{
    s_open();
    s_append_range(1, 5, "cyber", 100); // accepted_at = seq * 1000
    s_append_range(6, 10, "infra", 100);
    ck_assert_int_eq(vdb_store_prune(s_store, "infra", 8000, 0, 0), 2); // seqs 6, 7
    ck_assert_int_eq(vdb_store_prune(s_store, NULL, 3000, 0, 0), 2);    // seqs 1, 2
    ck_assert_int_eq(vdb_store_prune(s_store, NULL, 3000, 0, 0), 0);
    ck_assert_uint_eq(vdb_store_count(s_store), 6);
    ck_assert_uint_eq(vdb_store_bytes(s_store), 600);
    s_seen_t *seen = s_scan_all();
    uint64_t want[] = { 3, 4, 5, 8, 9, 10 };
    ck_assert_uint_eq(seen->count, 6);
    for (size_t i = 0; i < 6; i++)
        ck_assert_uint_eq(seen->seqs[i], want[i]);
    s_reopen();
    ck_assert_uint_eq(vdb_store_count(s_store), 6);
    ck_assert_uint_eq(vdb_store_bytes(s_store), 600);
}
END_TEST

START_TEST(prune_by_size_per_category)
{
    s_open();
    //  a: 1..10, b: 11..15, then a: 16..17; 100 bytes each
    s_append_range(1, 10, "a", 100);
    s_append_range(11, 15, "b", 100);
    s_append_range(16, 17, "a", 100);
    //  350 bytes hold three messages: a keeps 10, 16, 17; b is untouched.
    ck_assert_int_eq(vdb_store_prune(s_store, "a", 0, 350, 0), 9);
    ck_assert_uint_eq(vdb_store_count(s_store), 8);
    ck_assert_int_eq(vdb_store_prune(s_store, NULL, 0, 250, 0), 4); // a drops 10, b drops 11..13
    s_seen_t *seen = s_scan_all();
    uint64_t want[] = { 14, 15, 16, 17 };
    ck_assert_uint_eq(seen->count, 4);
    for (size_t i = 0; i < 4; i++)
        ck_assert_uint_eq(seen->seqs[i], want[i]);
    ck_assert_uint_eq(vdb_store_bytes(s_store), 400);
    ck_assert_int_eq(vdb_store_prune(s_store, NULL, 0, 200, 0), 0); // exactly at the limit
    ck_assert_int_eq(vdb_store_prune(s_store, "b", 0, 99, 0), 2);   // nothing fits
    ck_assert_uint_eq(vdb_store_count(s_store), 2);
    ck_assert_uint_eq(vdb_store_last_seq(s_store), 17);
    s_reopen();
    ck_assert_uint_eq(vdb_store_count(s_store), 2);
    ck_assert_uint_eq(vdb_store_bytes(s_store), 200);
}
END_TEST

START_TEST(prune_expired_and_keep_last_seq)
{
    s_open();
    s_rec_t recs[4];
    s_rec(&recs[0], 1, "it-cert", "cyber", 1000, 0, 100);     // never expires
    s_rec(&recs[1], 2, "it-cert", "cyber", 2000, 50000, 100); // expires at "now"
    s_rec(&recs[2], 3, "it-cert", "infra", 3000, 50001, 100); // just after
    s_rec(&recs[3], 4, "it-cert", "infra", 4000, 20000, 100); // the newest, long expired
    vdb_store_msg_t msgs[4] = { recs[0].msg, recs[1].msg, recs[2].msg, recs[3].msg };
    ck_assert_int_eq(vdb_store_append(s_store, msgs, 4, s_err, sizeof s_err), VD_OK);
    ck_assert_int_eq(vdb_store_prune(s_store, NULL, 0, 0, 0), 0);
    ck_assert_int_eq(vdb_store_prune(s_store, "cyber", 0, 0, 50000), 2); // any category expires
    s_seen_t *seen = s_scan_all();
    ck_assert_uint_eq(seen->count, 2);
    ck_assert_uint_eq(seen->seqs[0], 1);
    ck_assert_uint_eq(seen->seqs[1], 3);
    ck_assert_uint_eq(vdb_store_bytes(s_store), 200);

    //  seq 4, the newest, is gone: last_seq must not go back, even after a restart.
    s_reopen();
    ck_assert_uint_eq(vdb_store_last_seq(s_store), 4);
    ck_assert_uint_eq(vdb_store_count(s_store), 2);
    s_rec_t rec;
    s_rec(&rec, 4, "it-cert", "cyber", 5000, 0, 10);
    snprintf(rec.id, sizeof rec.id, "fresh");
    ck_assert_int_eq(s_append_one(&rec), VD_EINVAL);
    rec.msg.seq = 5;
    ck_assert_int_eq(s_append_one(&rec), VD_OK);
}
END_TEST

START_TEST(prune_all_three_in_one_call)
{
    s_open();
    s_append_range(1, 6, "a", 100);
    s_rec_t rec;
    s_rec(&rec, 7, "it-cert", "b", 7000, 100, 100);
    ck_assert_int_eq(s_append_one(&rec), VD_OK);
    //  Age takes 1, 2; size leaves a with 5, 6; expiry takes 7 (category b).
    ck_assert_int_eq(vdb_store_prune(s_store, "a", 3000, 200, 1000), 5);
    ck_assert_uint_eq(vdb_store_count(s_store), 2);
    ck_assert_uint_eq(vdb_store_bytes(s_store), 200);
    s_seen_t *seen = s_scan_all();
    ck_assert_uint_eq(seen->seqs[0], 5);
    ck_assert_uint_eq(seen->seqs[1], 6);
}
END_TEST

START_TEST(expired_messages_do_not_push_live_ones_out)
{
    s_open();
    //  A live message, then a newer one that has expired; room for the live one only.
    s_rec_t recs[2];
    s_rec(&recs[0], 1, "it-cert", "a", 1000, 0, 100);
    s_rec(&recs[1], 2, "it-cert", "a", 2000, 500, 100);
    vdb_store_msg_t msgs[2] = { recs[0].msg, recs[1].msg };
    ck_assert_int_eq(vdb_store_append(s_store, msgs, 2, s_err, sizeof s_err), VD_OK);
    ck_assert_int_eq(vdb_store_prune(s_store, "a", 0, 150, 1000), 1);
    s_seen_t *seen = s_scan_all();
    ck_assert_uint_eq(seen->count, 1);
    ck_assert_uint_eq(seen->seqs[0], 1); // the live one stayed
}
END_TEST

static int
s_add_name(const char *category, void *arg)
{
    char *names = arg;
    strcat(names, category);
    strcat(names, ";");
    return strcmp(category, "c") == 0; // stop after c
}

START_TEST(categories_in_name_order)
{
    s_open();
    char names[64] = "";
    ck_assert_int_eq(vdb_store_categories(s_store, s_add_name, names), VD_OK);
    ck_assert_str_eq(names, "");
    s_append_range(1, 2, "d", 10);
    s_append_range(3, 4, "b", 10);
    s_append_range(5, 6, "a", 10);
    s_append_range(7, 8, "c", 10);
    ck_assert_int_eq(vdb_store_categories(s_store, s_add_name, names), VD_OK);
    ck_assert_str_eq(names, "a;b;c;"); // d not reached: the callback stopped at c
    ck_assert_int_eq(vdb_store_prune(s_store, "b", 0, 5, 0), 2); // b emptied
    s_reopen();
    names[0] = '\0';
    ck_assert_int_eq(vdb_store_categories(s_store, s_add_name, names), VD_OK);
    ck_assert_str_eq(names, "a;c;");
}
END_TEST

//  Retention of one category, pass after pass with appends between (each pass starts where the
//  last one stopped), interleaved with another category it must not touch; then after a reopen.
START_TEST(prune_one_category_pass_after_pass)
{
    s_open();
    //  a: odd seqs, b: even seqs, 1..40; 100 bytes each; accepted_at = seq * 1000
    for (uint64_t seq = 1; seq <= 40; seq++)
        s_append_range(seq, seq, seq % 2 ? "a" : "b", 100);
    ck_assert_int_eq(vdb_store_prune(s_store, "a", 10500, 0, 0), 5); // 1, 3, 5, 7, 9
    ck_assert_int_eq(vdb_store_prune(s_store, "a", 10500, 0, 0), 0); // nothing new
    ck_assert_int_eq(vdb_store_prune(s_store, "a", 20500, 0, 0), 5); // 11 .. 19
    ck_assert_int_eq(vdb_store_prune(s_store, "a", 0, 500, 0), 5);   // keeps 31 .. 39
    ck_assert_int_eq(vdb_store_prune(s_store, "a", 0, 500, 0), 0);
    for (uint64_t seq = 41; seq <= 44; seq++)
        s_append_range(seq, seq, seq % 2 ? "a" : "b", 100);
    ck_assert_int_eq(vdb_store_prune(s_store, "a", 0, 500, 0), 2);  // 31, 33 make room
    ck_assert_int_eq(vdb_store_prune(s_store, "b", 0, 300, 0), 19); // b keeps 40, 42, 44
    s_seen_t *seen = s_scan_all();
    uint64_t want[] = { 35, 37, 39, 40, 41, 42, 43, 44 };
    ck_assert_uint_eq(seen->count, 8);
    for (size_t i = 0; i < 8; i++)
        ck_assert_uint_eq(seen->seqs[i], want[i]);
    ck_assert_uint_eq(vdb_store_bytes(s_store), 800);
    s_reopen();
    ck_assert_int_eq(vdb_store_prune(s_store, "a", 38000, 0, 0), 2); // 35, 37
    ck_assert_int_eq(vdb_store_prune(s_store, NULL, 0, 200, 0), 2);  // a: 39; b: 40
    ck_assert_uint_eq(vdb_store_count(s_store), 4);
    ck_assert_uint_eq(vdb_store_bytes(s_store), 400);
    ck_assert_int_eq(vdb_store_prune(s_store, "nothing-here", 1000000, 1, 0), 0);
}
END_TEST

//  --------------------------------------------------------------------------------------------
//  the three-step append

static bool
s_may_hold(const s_rec_t *rec)
{
    return vdb_store_may_hold(s_store, rec->msg.sender, rec->msg.id);
}

START_TEST(append_begin_refuses_duplicate_of_stored)
{
    s_open();
    s_append_range(1, 3, "cyber", 100);
    s_rec_t recs[3];
    s_rec(&recs[0], 4, "it-cert", "cyber", 4000, 0, 100);
    s_rec(&recs[1], 5, "it-cert", "cyber", 5000, 0, 100);
    s_rec(&recs[2], 6, "it-cert", "cyber", 6000, 0, 100);
    snprintf(recs[1].id, sizeof recs[1].id, "m000002"); // already stored as seq 2
    vdb_store_msg_t msgs[3] = { recs[0].msg, recs[1].msg, recs[2].msg };
    ck_assert_int_eq(vdb_store_append_begin(s_store, msgs, 3, s_err, sizeof s_err), VD_EINVAL);
    ck_assert_msg(strstr(s_err, "duplicate") != NULL, "err: %s", s_err);
    //  The id begin reserved before it met the duplicate is taken out again.
    ck_assert(!s_may_hold(&recs[0]));
    ck_assert(!s_may_hold(&recs[2]));
    ck_assert(s_may_hold(&recs[1]));
    ck_assert_uint_eq(vdb_store_count(s_store), 3);
    ck_assert_uint_eq(vdb_store_last_seq(s_store), 3);

    //  No append is left open: the store is usable, and the batch without the duplicate goes.
    uint64_t seq = 0;
    ck_assert_int_eq(vdb_store_lookup(s_store, "it-cert", "m000002", &seq, NULL, NULL), VD_OK);
    ck_assert_uint_eq(seq, 2);
    msgs[1] = msgs[2];
    ck_assert_int_eq(vdb_store_append_begin(s_store, msgs, 2, s_err, sizeof s_err), VD_OK);
    ck_assert_int_eq(vdb_store_append_write(s_store, msgs, 2, s_err, sizeof s_err), VD_OK);
    vdb_store_append_end(s_store, msgs, 2, true);
    ck_assert_uint_eq(vdb_store_count(s_store), 5);
    ck_assert_uint_eq(vdb_store_last_seq(s_store), 6);
    ck_assert(s_may_hold(&recs[0]));
    ck_assert_int_eq(vdb_store_lookup(s_store, "it-cert", "m000006", &seq, NULL, NULL), VD_OK);
    ck_assert_uint_eq(seq, 6);
}
END_TEST

START_TEST(append_begin_refuses_duplicate_within_batch)
{
    s_open();
    s_append_range(1, 2, "cyber", 10);
    s_rec_t recs[4];
    s_rec(&recs[0], 3, "it-cert", "cyber", 3000, 0, 10);
    s_rec(&recs[1], 4, "it-cert", "cyber", 4000, 0, 10);
    s_rec(&recs[2], 5, "it-cert", "cyber", 5000, 0, 10);
    s_rec(&recs[3], 6, "it-cert", "cyber", 6000, 0, 10);
    snprintf(recs[2].id, sizeof recs[2].id, "%s", recs[0].id); // seq 5 repeats seq 3's id
    vdb_store_msg_t msgs[4] = { recs[0].msg, recs[1].msg, recs[2].msg, recs[3].msg };
    ck_assert_int_eq(vdb_store_append_begin(s_store, msgs, 4, s_err, sizeof s_err), VD_EINVAL);
    ck_assert_msg(strstr(s_err, "duplicate") != NULL, "err: %s", s_err);
    for (size_t i = 0; i < 4; i++)
        ck_assert_msg(!s_may_hold(&recs[i]), "message %zu still held", i);
    ck_assert_uint_eq(vdb_store_count(s_store), 2);
    ck_assert_uint_eq(vdb_store_last_seq(s_store), 2);

    //  The repeat under another sender is no repeat: the whole batch goes.
    snprintf(recs[2].sender, sizeof recs[2].sender, "fr-anssi");
    ck_assert_int_eq(vdb_store_append_begin(s_store, msgs, 4, s_err, sizeof s_err), VD_OK);
    for (size_t i = 0; i < 4; i++)
        ck_assert(s_may_hold(&recs[i]));
    ck_assert_int_eq(vdb_store_append_write(s_store, msgs, 4, s_err, sizeof s_err), VD_OK);
    vdb_store_append_end(s_store, msgs, 4, true);
    ck_assert_uint_eq(vdb_store_count(s_store), 6);
    uint64_t seq = 0;
    ck_assert_int_eq(vdb_store_lookup(s_store, "fr-anssi", recs[0].id, &seq, NULL, NULL), VD_OK);
    ck_assert_uint_eq(seq, 5);
    ck_assert_int_eq(vdb_store_lookup(s_store, "it-cert", recs[0].id, &seq, NULL, NULL), VD_OK);
    ck_assert_uint_eq(seq, 3);
}
END_TEST

START_TEST(may_hold_follows_begin_and_end)
{
    s_open();
    ck_assert(!vdb_store_may_hold(s_store, "it-cert", "m000001")); // an empty store
    s_append_range(1, 20, "cyber", 100);
    ck_assert(vdb_store_may_hold(s_store, "it-cert", "m000001"));
    ck_assert(vdb_store_may_hold(s_store, "it-cert", "m000020"));
    ck_assert(!vdb_store_may_hold(s_store, "it-cert", "m000021"));
    ck_assert(!vdb_store_may_hold(s_store, "fr-anssi", "m000001"));

    //  A batch of a new category between begin and end counts as held; the totals wait.
    s_rec_t recs[3];
    for (size_t i = 0; i < 3; i++)
        s_rec(&recs[i], 21 + i, "fr-anssi", "infra", (int64_t)(21 + i) * 1000, 0, 50);
    vdb_store_msg_t msgs[3] = { recs[0].msg, recs[1].msg, recs[2].msg };
    ck_assert_int_eq(vdb_store_append_begin(s_store, msgs, 3, s_err, sizeof s_err), VD_OK);
    for (size_t i = 0; i < 3; i++)
        ck_assert(s_may_hold(&recs[i]));
    ck_assert(!vdb_store_may_hold(s_store, "it-cert", recs[0].id));
    ck_assert_uint_eq(vdb_store_last_seq(s_store), 20);
    ck_assert_uint_eq(vdb_store_count(s_store), 20);
    ck_assert_uint_eq(vdb_store_bytes(s_store), 2000);

    //  Ended as not written: the ids are out, nothing counts.
    vdb_store_append_end(s_store, msgs, 3, false);
    for (size_t i = 0; i < 3; i++)
        ck_assert(!s_may_hold(&recs[i]));
    ck_assert(vdb_store_may_hold(s_store, "it-cert", "m000001"));
    ck_assert_uint_eq(vdb_store_last_seq(s_store), 20);
    ck_assert_uint_eq(vdb_store_count(s_store), 20);
    ck_assert_uint_eq(vdb_store_bytes(s_store), 2000);
    char names[64] = "";
    ck_assert_int_eq(vdb_store_categories(s_store, s_add_name, names), VD_OK);
    ck_assert_str_eq(names, "cyber;");
}
END_TEST

START_TEST(append_end_false_then_same_batch_again)
{
    s_open();
    s_append_range(1, 5, "cyber", 100);
    s_rec_t recs[4];
    for (size_t i = 0; i < 4; i++)
        s_rec(&recs[i], 6 + i, "it-cert", "cyber", (int64_t)(6 + i) * 1000, 0, 100);
    vdb_store_msg_t msgs[4] = { recs[0].msg, recs[1].msg, recs[2].msg, recs[3].msg };

    //  Begun and ended unwritten, three times over: each time the same batch may begin again.
    for (int round = 0; round < 3; round++) {
        ck_assert_msg(vdb_store_append_begin(s_store, msgs, 4, s_err, sizeof s_err) == VD_OK,
                      "round %d: begin: %s", round, s_err);
        vdb_store_append_end(s_store, msgs, 4, false);
        ck_assert(!s_may_hold(&recs[round]));
        ck_assert_int_eq(vdb_store_lookup(s_store, "it-cert", recs[round].id, NULL, NULL, NULL),
                         VD_ENOTFOUND);
    }
    ck_assert_uint_eq(vdb_store_count(s_store), 5);

    //  Then in one step, as a whole.
    ck_assert_msg(vdb_store_append(s_store, msgs, 4, s_err, sizeof s_err) == VD_OK, "append: %s",
                  s_err);
    ck_assert_uint_eq(vdb_store_count(s_store), 9);
    ck_assert_uint_eq(vdb_store_last_seq(s_store), 9);
    s_seen_t *seen = s_scan_all();
    ck_assert_uint_eq(seen->count, 9);
    for (size_t i = 0; i < 9; i++)
        ck_assert_uint_eq(seen->seqs[i], i + 1);
    //  And now it is a duplicate.
    ck_assert_int_eq(vdb_store_append_begin(s_store, msgs, 4, s_err, sizeof s_err), VD_EINVAL);
}
END_TEST

START_TEST(append_end_true_moves_totals)
{
    s_open();
    s_append_range(1, 10, "cyber", 100);
    s_rec_t recs[3];
    s_rec(&recs[0], 12, "it-cert", "cyber", 12000, 0, 30);
    s_rec(&recs[1], 15, "fr-anssi", "infra", 15000, 0, 40);
    s_rec(&recs[2], 19, "fr-anssi", "infra", 19000, 0, 50);
    vdb_store_msg_t msgs[3] = { recs[0].msg, recs[1].msg, recs[2].msg };
    ck_assert_int_eq(vdb_store_append_begin(s_store, msgs, 3, s_err, sizeof s_err), VD_OK);
    ck_assert_int_eq(vdb_store_append_write(s_store, msgs, 3, s_err, sizeof s_err), VD_OK);
    ck_assert_uint_eq(vdb_store_last_seq(s_store), 10); // not before the end
    vdb_store_append_end(s_store, msgs, 3, true);
    ck_assert_uint_eq(vdb_store_last_seq(s_store), 19);
    ck_assert_uint_eq(vdb_store_count(s_store), 13);
    ck_assert_uint_eq(vdb_store_bytes(s_store), 1000 + 30 + 40 + 50);
    char names[64] = "";
    ck_assert_int_eq(vdb_store_categories(s_store, s_add_name, names), VD_OK);
    ck_assert_str_eq(names, "cyber;infra;");
    uint64_t seq = 0;
    ck_assert_int_eq(vdb_store_lookup(s_store, "fr-anssi", "m000015", &seq, NULL, NULL), VD_OK);
    ck_assert_uint_eq(seq, 15);
    //  Per category too: a size limit on infra counts the batch's 90 bytes.
    ck_assert_int_eq(vdb_store_prune(s_store, "infra", 0, 60, 0), 1);
    ck_assert_uint_eq(vdb_store_bytes(s_store), 1000 + 30 + 50);

    //  The next seq must be above the batch's last; an empty batch changes nothing.
    s_rec_t rec;
    s_rec(&rec, 19, "it-cert", "cyber", 20000, 0, 10);
    snprintf(rec.id, sizeof rec.id, "fresh");
    ck_assert_int_eq(vdb_store_append_begin(s_store, &rec.msg, 1, s_err, sizeof s_err), VD_EINVAL);
    ck_assert_int_eq(vdb_store_append_begin(s_store, NULL, 0, s_err, sizeof s_err), VD_OK);
    ck_assert_int_eq(vdb_store_append_write(s_store, NULL, 0, s_err, sizeof s_err), VD_OK);
    vdb_store_append_end(s_store, NULL, 0, true);
    ck_assert_uint_eq(vdb_store_last_seq(s_store), 19);
    ck_assert_uint_eq(vdb_store_count(s_store), 12);

    s_reopen();
    ck_assert_uint_eq(vdb_store_last_seq(s_store), 19);
    ck_assert_uint_eq(vdb_store_count(s_store), 12);
    ck_assert_uint_eq(vdb_store_bytes(s_store), 1000 + 30 + 50);
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
    vdb_store_close(&s_store);
    vdt_small_disk_unmount(&s_disk);
}

static int
s_fault_batch(uint64_t first)
{
    s_rec_t *recs = calloc(S_FAULT_BATCH, sizeof *recs);
    ck_assert_ptr_nonnull(recs);
    vdb_store_msg_t msgs[S_FAULT_BATCH];
    for (size_t i = 0; i < S_FAULT_BATCH; i++) {
        s_rec(&recs[i], first + i, "it-cert", "cyber", (int64_t)(first + i) * 1000, 0, S_FAULT_RAW);
        msgs[i] = recs[i].msg;
    }
    int rc = vdb_store_append(s_store, msgs, S_FAULT_BATCH, s_err, sizeof s_err);
    free(recs);
    return rc;
}

//  Checks that exactly messages 1..count are stored, each byte intact.
static void
s_check_stored(uint64_t count)
{
    ck_assert_uint_eq(vdb_store_count(s_store), count);
    ck_assert_uint_eq(vdb_store_bytes(s_store), count * S_FAULT_RAW);
    ck_assert_uint_eq(vdb_store_last_seq(s_store), count);
    s_seen_t *seen = s_scan_all();
    ck_assert_uint_eq(seen->count, count);
    for (uint64_t i = 0; i < count; i++)
        ck_assert_uint_eq(seen->seqs[i], i + 1);
}

START_TEST(append_survives_a_full_disk)
{
    vdt_disk_kind_t disk = s_disk_open(_i);
    if (disk == VDT_DISK_NONE) {
        printf("vdb_store: skipped: neither a tmpfs mount nor a file size limit is available\n");
        vdb_store_close(&s_store);
        return;
    }

    uint64_t stored = 0;
    int rc = VD_OK;
    for (int round = 0; round < 2048 && rc == VD_OK; round++) {
        rc = s_fault_batch(stored + 1);
        if (rc == VD_OK)
            stored += S_FAULT_BATCH;
    }
    ck_assert_int_eq(rc, VD_ESTORE);
    ck_assert_uint_gt(stored, 0);
    if (disk == VDT_DISK_TMPFS)
        ck_assert_msg(strcmp(s_err, "disk full") == 0, "err: %s", s_err);
    else
        ck_assert_msg(strcmp(s_err, "disk full") == 0 || strncmp(s_err, "I/O error", 9) == 0,
                      "err: %s", s_err);

    printf("vdb_store: %s refused the append after %llu messages: %s\n",
           disk == VDT_DISK_TMPFS ? "a full 1 MiB tmpfs" : "a 1 MiB file size limit",
           (unsigned long long)stored, s_err);
    //  Everything reported appended is there and readable; nothing of the failed batch is.
    s_check_stored(stored);
    char id[32];
    snprintf(id, sizeof id, "m%06llu", (unsigned long long)(stored + 1));
    ck_assert_int_eq(vdb_store_lookup(s_store, "it-cert", id, NULL, NULL, NULL), VD_ENOTFOUND);

    //  Space comes back: the same store, without reopening, takes the batch.
    vdt_small_disk_free(&s_disk);
    rc = s_fault_batch(stored + 1);
    ck_assert_msg(rc == VD_OK, "append after freeing space: %s", s_err);
    stored += S_FAULT_BATCH;
    s_check_stored(stored);
    ck_assert_int_eq(vdb_store_lookup(s_store, "it-cert", id, NULL, NULL, NULL), VD_OK);

    s_reopen();
    s_check_stored(stored);
    s_disk_close();
}
END_TEST

Suite *
vdb_store_suite(void)
{
    Suite *suite = suite_create("vdb_store");

    TCase *open = tcase_create("open");
    tcase_set_timeout(open, 60); // 40 MiB of appends, under a sanitizer too
    tcase_add_checked_fixture(open, s_setup, s_teardown);
    tcase_add_test(open, open_creates_then_reopens_with_data);
    tcase_add_test(open, open_in_every_sync_mode);
    tcase_add_test(open, open_refuses_unknown_schema_version);
    tcase_add_test(open, open_refuses_other_files);
    tcase_add_test(open, open_refuses_a_store_in_use);
    tcase_add_test(open, appends_past_the_threshold_are_checkpointed_aside);
    suite_add_tcase(suite, open);

    TCase *append = tcase_create("append");
    tcase_add_checked_fixture(append, s_setup, s_teardown);
    tcase_add_test(append, append_then_lookup);
    tcase_add_test(append, scan_passes_every_field);
    tcase_add_test(append, scan_in_order_with_limit_and_stop);
    tcase_add_test(append, seq_at_finds_first_at_or_after);
    tcase_add_test(append, seq_at_across_gaps_and_a_clock_step_back);
    tcase_add_test(append, lookup_many_across_reopen_and_prune);
    tcase_add_test(append, duplicate_against_stored_stores_nothing);
    tcase_add_test(append, duplicate_within_batch_stores_nothing);
    tcase_add_test(append, append_refuses_bad_seq_and_missing_fields);
    tcase_add_test(append, totals_follow_append_and_reopen);
    suite_add_tcase(suite, append);

    TCase *steps = tcase_create("append_steps");
    tcase_add_checked_fixture(steps, s_setup, s_teardown);
    tcase_add_test(steps, append_begin_refuses_duplicate_of_stored);
    tcase_add_test(steps, append_begin_refuses_duplicate_within_batch);
    tcase_add_test(steps, may_hold_follows_begin_and_end);
    tcase_add_test(steps, append_end_false_then_same_batch_again);
    tcase_add_test(steps, append_end_true_moves_totals);
    suite_add_tcase(suite, steps);

    TCase *cursors = tcase_create("cursors");
    tcase_add_checked_fixture(cursors, s_setup, s_teardown);
    tcase_add_test(cursors, cursors_set_overwrite_and_survive);
    tcase_add_test(cursors, cursor_set_many_writes_all_at_once);
    suite_add_tcase(suite, cursors);

    TCase *prune = tcase_create("prune");
    tcase_add_checked_fixture(prune, s_setup, s_teardown);
    tcase_add_test(prune, prune_by_age);
    tcase_add_test(prune, prune_by_size_per_category);
    tcase_add_test(prune, prune_expired_and_keep_last_seq);
    tcase_add_test(prune, prune_all_three_in_one_call);
    tcase_add_test(prune, expired_messages_do_not_push_live_ones_out);
    tcase_add_test(prune, categories_in_name_order);
    tcase_add_test(prune, prune_one_category_pass_after_pass);
    suite_add_tcase(suite, prune);

    //  Loop 0: a full tmpfs (else the file size limit); loop 1: the file size limit.
    TCase *faults = tcase_create("faults");
    tcase_add_checked_fixture(faults, s_setup, s_teardown);
    tcase_set_timeout(faults, 60);
    tcase_add_loop_test(faults, append_survives_a_full_disk, 0, 2);
    suite_add_tcase(suite, faults);

    return suite;
}

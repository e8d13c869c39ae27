/*  vdb_audit suite: the broker's audit log writer on real files, in a fresh directory per
    test: a new log and its head; buffering until a flush; continuing across close and reopen,
    and after a crash; a torn last line cut at open; a damaged log or a head that disagrees,
    opened without rewriting anything and with the old head kept aside; a second writer kept
    out; refused records; the buffer's bound; and a write that fails for real (a file size
    limit), after which every record still goes out, once and in order.  */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <sodium.h>

#include "small_disk.h"
#include "scratch.h"
#include "suites.h"
#include "vdb_audit.h"
#include "vedetta.h"

static char s_dir[256]; // a fresh directory per test
static char s_log[512];
static char s_head[600];
static char s_err[512];
static uint8_t s_public[crypto_sign_PUBLICKEYBYTES];
static uint8_t s_secret[crypto_sign_SECRETKEYBYTES];
static vdb_audit_t *s_audit;

static void
s_paths(const char *dir)
{
    snprintf(s_log, sizeof s_log, "%s/audit.log", dir);
    snprintf(s_head, sizeof s_head, "%s.head", s_log);
}

static void
s_setup(void)
{
    vdt_scratch_make(s_dir, sizeof s_dir, "vdb_audit");
    s_paths(s_dir);
    s_err[0] = '\0';
    s_audit = NULL;
    ck_assert_int_eq(crypto_sign_keypair(s_public, s_secret), 0);
}

static void
s_teardown(void)
{
    vdb_audit_close(&s_audit, NULL, 0);
    ck_assert_ptr_null(s_audit);
    vdt_scratch_remove(s_dir);
}

static void
s_open(void)
{
    s_audit = vdb_audit_open(s_log, s_secret, s_err, sizeof s_err);
    ck_assert_msg(s_audit != NULL, "open: %s", s_err);
}

static void
s_close(void)
{
    ck_assert_msg(vdb_audit_close(&s_audit, s_err, sizeof s_err) == VD_OK, "close: %s", s_err);
    ck_assert_ptr_null(s_audit);
}

static void
s_flush(bool sync)
{
    ck_assert_msg(vdb_audit_flush(s_audit, sync, s_err, sizeof s_err) == VD_OK, "flush: %s", s_err);
}

//  Event i: what the broker would record, with varying fields. `reason_len` pads the reason.
static vdp_audit_record_t
s_event(uint64_t i, size_t reason_len)
{
    static char reason[1024];
    size_t len = reason_len < sizeof reason ? reason_len : sizeof reason - 1;
    memset(reason, 'r', len);
    reason[len] = '\0';
    return (vdp_audit_record_t){
        .t = 1795341600000LL + (int64_t)i,
        .kind = i % 2 ? VDP_AUDIT_PUB_ACCEPT : VDP_AUDIT_AUTH_FAIL,
        .org = i % 2 ? "comune:i726" : "cosc:toscana",
        .key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7",
        .peer = "127.0.0.1:40000",
        .seq = i % 2 ? i : 0,
        .code = i % 2 ? "OK" : "EAUTH",
        .reason = reason_len ? reason : NULL,
    };
}

//  Records events first..first + count - 1.
static void
s_record(uint64_t first, size_t count)
{
    for (uint64_t i = first; i < first + count; i++) {
        vdp_audit_record_t event = s_event(i, 16);
        ck_assert_int_eq(vdb_audit_record(s_audit, &event), VD_OK);
    }
}

static off_t
s_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

//  The whole file; caller frees.
static char *
s_read_file(const char *path, size_t *len)
{
    FILE *file = fopen(path, "r");
    ck_assert_ptr_nonnull(file);
    size_t cap = (size_t)s_size(path) + 1;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    *len = fread(text, 1, cap - 1, file);
    text[*len] = '\0';
    fclose(file);
    return text;
}

static void
s_append(const char *path, const char *text, size_t len)
{
    FILE *file = fopen(path, "a");
    ck_assert_ptr_nonnull(file);
    ck_assert_uint_eq(fwrite(text, 1, len, file), len);
    ck_assert_int_eq(fclose(file), 0);
}

//  The offset just after the n-th "\n" of the log.
static off_t
s_after_line(uint64_t n)
{
    size_t len;
    char *text = s_read_file(s_log, &len);
    off_t at = 0;
    for (uint64_t seen = 0; seen < n; seen++) {
        char *nl = memchr(text + at, '\n', len - (size_t)at);
        ck_assert_ptr_nonnull(nl);
        at = nl - text + 1;
    }
    free(text);
    return at;
}

static vdp_audit_verify_t
s_verify(void)
{
    vdp_audit_verify_t result;
    ck_assert_msg(vdp_audit_verify(s_log, s_head, s_public, &result, s_err, sizeof s_err) == VD_OK,
                  "verify: %s", s_err);
    return result;
}

static void
s_assert_intact(uint64_t records)
{
    vdp_audit_verify_t result = s_verify();
    ck_assert_msg(result.intact, "not intact: %s", result.reason);
    ck_assert_uint_eq(result.records, records);
    ck_assert_uint_eq(result.head_n, records);
    ck_assert(result.head_signed);
}

static vdb_audit_stats_t
s_stats(void)
{
    vdb_audit_stats_t stats;
    vdb_audit_stats(s_audit, &stats);
    return stats;
}

static vdp_audit_head_t
s_read_head(const char *path)
{
    vdp_audit_head_t head;
    ck_assert_msg(vdp_audit_head_read(path, &head, s_err, sizeof s_err) == VD_OK, "head: %s",
                  s_err);
    return head;
}

//  --------------------------------------------------------------------------------------------
//  write

START_TEST(open_starts_a_log_with_a_signed_head)
{
    s_open();
    ck_assert_str_eq(vdb_audit_damage(s_audit), "");
    ck_assert_int_eq(s_size(s_log), 0);
    struct stat st;
    ck_assert_int_eq(stat(s_log, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0640);
    //  An empty log has a head at once: record 0, signed.
    vdp_audit_head_t head = s_read_head(s_head);
    ck_assert_uint_eq(head.n, 0);
    ck_assert(vdp_audit_head_verify(&head, s_public));
    s_assert_intact(0);

    //  What the writer writes is exactly what vdp_audit_format makes of the record, numbered
    //  by the writer (the caller's n is ignored) and chained from zeros.
    vdp_audit_record_t event = s_event(1, 8);
    event.n = 99;
    ck_assert_int_eq(vdb_audit_record(s_audit, &event), VD_OK);
    s_flush(false);
    event.n = 1;
    char line[VDP_AUDIT_MAX_LINE + 1];
    size_t len;
    uint8_t zeros[VDP_AUDIT_HASH_BYTES] = { 0 }, hash[VDP_AUDIT_HASH_BYTES];
    ck_assert_int_eq(vdp_audit_format(&event, zeros, line, sizeof line, &len, hash), VD_OK);
    char *text = s_read_file(s_log, &len);
    ck_assert_str_eq(text, line);
    free(text);

    s_record(2, 4);
    s_close();
    s_assert_intact(5);
    head = s_read_head(s_head);
    ck_assert_uint_eq(head.n, 5);

    //  Without a key the heads are unsigned.
    ck_assert_int_eq(unlink(s_log), 0);
    ck_assert_int_eq(unlink(s_head), 0);
    s_audit = vdb_audit_open(s_log, NULL, s_err, sizeof s_err);
    ck_assert_ptr_nonnull(s_audit);
    s_record(1, 2);
    s_close();
    head = s_read_head(s_head);
    ck_assert(head.n == 2 && !head.signed_);
}
END_TEST

START_TEST(records_wait_in_memory_until_a_flush)
{
    s_open();
    s_record(1, 3);
    vdb_audit_stats_t stats = s_stats();
    ck_assert_uint_eq(stats.records, 3);
    ck_assert_uint_eq(stats.last_n, 3);
    ck_assert_uint_gt(stats.buffered, 0);
    ck_assert_uint_eq(stats.bytes, 0);
    ck_assert_int_eq(s_size(s_log), 0); // no write per record
    size_t buffered = stats.buffered;

    s_flush(false);
    stats = s_stats();
    ck_assert_uint_eq(stats.buffered, 0);
    ck_assert_uint_eq(stats.bytes, buffered);
    ck_assert_int_eq(s_size(s_log), (off_t)buffered);
    s_flush(true); // nothing buffered: syncs what the last flush wrote
    ck_assert_uint_eq(s_read_head(s_head).n, 0); // the head moves only at a checkpoint

    ck_assert_int_eq(vdb_audit_checkpoint(s_audit, s_err, sizeof s_err), VD_OK);
    ck_assert_uint_eq(s_stats().head_n, 3);
    vdp_audit_verify_t result = s_verify();
    ck_assert(result.intact && result.head_n == 3);
    //  A checkpoint flushes first: the head never names a record that is not on disk.
    s_record(4, 2);
    ck_assert_int_eq(vdb_audit_checkpoint(s_audit, s_err, sizeof s_err), VD_OK);
    ck_assert_uint_eq(s_read_head(s_head).n, 5);
    s_assert_intact(5);
}
END_TEST

//  A checkpoint handed to the writer's thread: the head follows, one at a time, and a sync
//  checkpoint (or close) waits for the one in progress rather than racing it.
START_TEST(a_checkpoint_on_the_thread_moves_the_head)
{
    s_open();
    s_record(1, 3);
    ck_assert_int_eq(vdb_audit_checkpoint_start(s_audit, s_err, sizeof s_err), VD_OK);
    ck_assert_uint_eq(s_stats().buffered, 0); // written at once; fsync and head on the thread
    s_record(4, 4);
    //  While the first head may still be in progress, another start only writes the buffer.
    ck_assert_int_eq(vdb_audit_checkpoint_start(s_audit, s_err, sizeof s_err), VD_OK);
    ck_assert_uint_eq(s_stats().buffered, 0);
    //  A sync checkpoint waits for the thread, then names everything.
    ck_assert_int_eq(vdb_audit_checkpoint(s_audit, s_err, sizeof s_err), VD_OK);
    ck_assert_uint_eq(s_stats().head_n, 7);
    ck_assert_uint_eq(s_read_head(s_head).n, 7);
    s_assert_intact(7);
    //  Many in a row, records between them: the chain and the head stay consistent.
    for (uint64_t i = 8; i < 208; i += 4) {
        s_record(i, 4);
        ck_assert_int_eq(vdb_audit_checkpoint_start(s_audit, s_err, sizeof s_err), VD_OK);
    }
    s_close();
    s_assert_intact(207);
}
END_TEST

START_TEST(record_refuses_bad_records_and_stamps_the_time)
{
    s_open();
    vdp_audit_record_t event = s_event(1, 0);
    event.kind = VDP_AUDIT_NONE;
    ck_assert_int_eq(vdb_audit_record(s_audit, &event), VD_EINVAL);
    event = s_event(1, 0);
    event.code = "EPERM"; // not one of ours
    ck_assert_int_eq(vdb_audit_record(s_audit, &event), VD_EINVAL);
    event = s_event(1, 0);
    event.t = -5;
    ck_assert_int_eq(vdb_audit_record(s_audit, &event), VD_EINVAL);
    ck_assert_int_eq(vdb_audit_record(s_audit, NULL), VD_EINVAL);
    ck_assert_uint_eq(s_stats().records, 0);
    ck_assert_uint_eq(s_stats().buffered, 0);

    //  t = 0: stamped with the current time.
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t before = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    event = (vdp_audit_record_t){ .kind = VDP_AUDIT_BROKER_START };
    ck_assert_int_eq(vdb_audit_record(s_audit, &event), VD_OK);
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t after = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    s_close();
    size_t len;
    char *text = s_read_file(s_log, &len);
    vdp_audit_entry_t entry;
    uint8_t zeros[VDP_AUDIT_HASH_BYTES] = { 0 };
    ck_assert_int_eq(vdp_audit_parse(text, len - 1, 1, zeros, &entry, s_err, sizeof s_err), VD_OK);
    ck_assert_int_ge(entry.record.t, before);
    ck_assert_int_le(entry.record.t, after);
    ck_assert_int_eq(entry.record.kind, VDP_AUDIT_BROKER_START);
    vdp_audit_entry_clear(&entry);
    free(text);
    s_assert_intact(1);
}
END_TEST

//  --------------------------------------------------------------------------------------------
//  reopen

START_TEST(a_reopened_log_goes_on_with_its_chain)
{
    s_open();
    s_record(1, 5);
    s_close();
    size_t len5;
    char *five = s_read_file(s_log, &len5);

    s_open();
    ck_assert_str_eq(vdb_audit_damage(s_audit), "");
    ck_assert_uint_eq(s_stats().last_n, 5);
    ck_assert_uint_eq(s_stats().head_n, 5);
    s_record(6, 3);
    s_close();
    s_assert_intact(8);
    //  The first five records are untouched.
    size_t len;
    char *text = s_read_file(s_log, &len);
    ck_assert(len > len5 && memcmp(text, five, len5) == 0);
    free(text);
    free(five);

    //  Reopened with nothing recorded: the head is not rewritten needlessly (a rewrite is a
    //  new file renamed in place), and stays right.
    struct stat before, after_close;
    ck_assert_int_eq(stat(s_head, &before), 0);
    s_open();
    s_close();
    ck_assert_int_eq(stat(s_head, &after_close), 0);
    ck_assert_uint_eq(before.st_ino, after_close.st_ino);
    s_assert_intact(8);
}
END_TEST

START_TEST(a_log_goes_on_after_a_crash)
{
    s_open();
    s_record(1, 2);
    s_close();
    //  A broker that flushes 4 more records and dies before its next checkpoint.
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        vdb_audit_t *audit = vdb_audit_open(s_log, s_secret, NULL, 0);
        for (uint64_t i = 3; i <= 6; i++) {
            vdp_audit_record_t event = s_event(i, 16);
            if (!audit || vdb_audit_record(audit, &event) != VD_OK)
                _exit(1);
        }
        _exit(vdb_audit_flush(audit, true, NULL, 0) == VD_OK ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    //  The head names record 2, the log holds 6: behind is not damage.
    s_open();
    ck_assert_str_eq(vdb_audit_damage(s_audit), "");
    ck_assert_uint_eq(s_stats().last_n, 6);
    ck_assert_uint_eq(s_stats().head_n, 2);
    s_record(7, 1);
    s_close();
    s_assert_intact(7);
}
END_TEST

START_TEST(a_torn_last_line_is_cut_at_open)
{
    s_open();
    s_record(1, 3);
    s_close();
    off_t whole = s_size(s_log);
    //  A crash in the middle of writing record 4.
    static const char torn[] = "{\"n\":4,\"t\":1795341600004,\"kind\":\"pub.acc";
    s_append(s_log, torn, sizeof torn - 1);

    s_open();
    ck_assert_str_eq(vdb_audit_damage(s_audit), "");
    ck_assert_int_eq(s_size(s_log), whole);
    ck_assert_uint_eq(s_stats().last_n, 3);
    s_record(4, 2);
    s_close();
    vdp_audit_verify_t result = s_verify();
    ck_assert(result.intact && result.records == 5 && !result.incomplete_tail);

    //  A log that is nothing but a torn first line.
    ck_assert_int_eq(unlink(s_log), 0);
    ck_assert_int_eq(unlink(s_head), 0);
    s_append(s_log, torn + 1, 10);
    s_open();
    ck_assert_int_eq(s_size(s_log), 0);
    ck_assert_uint_eq(s_stats().last_n, 0);
    ck_assert_uint_eq(s_read_head(s_head).n, 0);
    s_record(1, 1);
    s_close();
    s_assert_intact(1);
}
END_TEST

START_TEST(a_damaged_log_opens_without_rewriting_anything)
{
    s_open();
    s_record(1, 5);
    s_close();
    //  Record 5's content altered in place (same length).
    size_t len;
    char *text = s_read_file(s_log, &len);
    char *org = strstr(text + s_after_line(4), "\"org\":\"comune");
    ck_assert_ptr_nonnull(org);
    memcpy(org + 7, "commne", 6);
    FILE *file = fopen(s_log, "w");
    ck_assert_uint_eq(fwrite(text, 1, len, file), len);
    fclose(file);

    s_open();
    ck_assert_msg(strstr(vdb_audit_damage(s_audit), "record 5 was altered"), "damage: %s",
                  vdb_audit_damage(s_audit));
    ck_assert_uint_eq(s_stats().last_n, 5);
    s_record(6, 2);
    s_close();
    //  Nothing that was there changed; the new records chain to record 5's stated hash, so
    //  verification names record 5 alone.
    size_t after_len;
    char *after = s_read_file(s_log, &after_len);
    ck_assert(after_len > len && memcmp(after, text, len) == 0);
    free(after);
    vdp_audit_verify_t result = s_verify();
    ck_assert(!result.intact && result.broken_at == 5);
    ck_assert_msg(strstr(result.reason, "record 5: hash mismatch"), "%s", result.reason);
    free(text);

    //  A last line that is not a record: the writer goes on after the last record before it.
    s_append(s_log, "garbage\n", 8);
    s_open();
    ck_assert_msg(strstr(vdb_audit_damage(s_audit), "its last line: not a record"), "damage: %s",
                  vdb_audit_damage(s_audit));
    ck_assert_uint_eq(s_stats().last_n, 7);
    s_record(8, 1);
    s_close();
    text = s_read_file(s_log, &len);
    ck_assert_msg(strstr(text, "garbage\n{\"n\":8,"), "%s", text);
    free(text);

    //  Nothing in it is a record: numbering starts again, after the damage.
    ck_assert_int_eq(unlink(s_head), 0);
    file = fopen(s_log, "w");
    fputs("not\na log\n", file);
    fclose(file);
    s_open();
    ck_assert_msg(strstr(vdb_audit_damage(s_audit), "none of its lines is a record"), "damage: %s",
                  vdb_audit_damage(s_audit));
    ck_assert_uint_eq(s_stats().last_n, 0);
}
END_TEST

//  The names in s_dir that start with "audit.log.head.damaged-".
static int
s_damaged_heads(char *name, size_t size)
{
    DIR *dir = opendir(s_dir);
    ck_assert_ptr_nonnull(dir);
    int count = 0;
    for (struct dirent *entry = readdir(dir); entry; entry = readdir(dir)) {
        if (strncmp(entry->d_name, "audit.log.head.damaged-", 23) == 0) {
            snprintf(name, size, "%s/%s", s_dir, entry->d_name);
            count++;
        }
    }
    closedir(dir);
    return count;
}

START_TEST(a_head_that_disagrees_is_kept_aside)
{
    s_open();
    s_record(1, 5);
    s_close();
    //  Records 4 and 5 cut off: the head still names 5.
    ck_assert_int_eq(truncate(s_log, s_after_line(3)), 0);
    s_open();
    ck_assert_msg(
        strstr(vdb_audit_damage(s_audit), "the head names record 5 but the log ends at record 3"),
        "damage: %s", vdb_audit_damage(s_audit));
    char kept[1024];
    ck_assert_int_eq(s_damaged_heads(kept, sizeof kept), 1);
    ck_assert_uint_eq(s_read_head(kept).n, 5);
    ck_assert_int_eq(access(s_head, F_OK), -1); // until the next checkpoint
    s_record(4, 1);
    s_close();
    //  The new head names the new record 4; the old one is still there to say what was lost.
    ck_assert_uint_eq(s_read_head(s_head).n, 4);
    ck_assert_uint_eq(s_read_head(kept).n, 5);
    s_assert_intact(4);
}
END_TEST

START_TEST(a_head_forged_or_missing_is_damage)
{
    s_open();
    s_record(1, 3);
    s_close();
    //  Signed by someone else.
    uint8_t public2[crypto_sign_PUBLICKEYBYTES], secret2[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(public2, secret2);
    vdp_audit_head_t head = s_read_head(s_head);
    vdp_audit_head_sign(&head, secret2);
    ck_assert_int_eq(vdp_audit_head_write(&head, s_head, s_err, sizeof s_err), VD_OK);
    s_open();
    ck_assert_msg(strstr(vdb_audit_damage(s_audit), "signature does not verify"), "damage: %s",
                  vdb_audit_damage(s_audit));
    char kept[1024];
    ck_assert_int_eq(s_damaged_heads(kept, sizeof kept), 1);
    s_close();
    s_assert_intact(3);

    //  A head whose hash is not the last record's.
    head = s_read_head(s_head);
    head.hash[0] ^= 1;
    vdp_audit_head_sign(&head, s_secret);
    ck_assert_int_eq(vdp_audit_head_write(&head, s_head, s_err, sizeof s_err), VD_OK);
    s_open();
    ck_assert_msg(strstr(vdb_audit_damage(s_audit), "hash differs from the last record's"),
                  "damage: %s", vdb_audit_damage(s_audit));
    s_close();

    //  No head beside records.
    ck_assert_int_eq(unlink(s_head), 0);
    s_open();
    ck_assert_msg(strstr(vdb_audit_damage(s_audit), "no head beside a log of 3 records"),
                  "damage: %s", vdb_audit_damage(s_audit));
    s_close();
    s_assert_intact(3);
}
END_TEST

START_TEST(open_keeps_a_second_writer_out)
{
    s_open();
    char err[256] = "";
    vdb_audit_t *second = vdb_audit_open(s_log, s_secret, err, sizeof err);
    ck_assert_ptr_null(second);
    ck_assert_msg(strstr(err, "in use by another writer"), "%s", err);
    s_close();
    second = vdb_audit_open(s_log, s_secret, err, sizeof err);
    ck_assert_ptr_nonnull(second);
    ck_assert_int_eq(vdb_audit_close(&second, err, sizeof err), VD_OK);
    ck_assert_int_eq(vdb_audit_close(&second, err, sizeof err), VD_OK); // NULL: nothing to do
    ck_assert_int_eq(vdb_audit_close(NULL, err, sizeof err), VD_OK);

    //  Not a file, nowhere to put one.
    ck_assert_ptr_null(vdb_audit_open(s_dir, NULL, err, sizeof err));
    char nowhere[600];
    snprintf(nowhere, sizeof nowhere, "%s/missing/audit.log", s_dir);
    ck_assert_ptr_null(vdb_audit_open(nowhere, NULL, err, sizeof err));
    ck_assert_msg(strstr(err, "missing/audit.log"), "%s", err);
    ck_assert_ptr_null(vdb_audit_open(NULL, NULL, err, sizeof err));
}
END_TEST

//  --------------------------------------------------------------------------------------------
//  limits and faults

START_TEST(the_buffer_is_bounded)
{
    s_open();
    uint64_t taken = 0;
    int rc;
    //  Records of about 1.2 KiB: 16 MiB is reached after some 14000.
    for (uint64_t i = 1; i < 100000; i++) {
        vdp_audit_record_t event = s_event(i, 1000);
        rc = vdb_audit_record(s_audit, &event);
        if (rc != VD_OK)
            break;
        taken++;
    }
    ck_assert_int_eq(rc, VD_ELIMIT);
    vdb_audit_stats_t stats = s_stats();
    ck_assert_uint_ge(stats.buffered, VDB_AUDIT_MAX_BUFFER);
    ck_assert_uint_lt(stats.buffered, VDB_AUDIT_MAX_BUFFER + VDP_AUDIT_MAX_LINE);
    ck_assert_uint_eq(stats.last_n, taken); // the refused record took no number
    s_flush(false);
    vdp_audit_record_t event = s_event(taken + 1, 10);
    ck_assert_int_eq(vdb_audit_record(s_audit, &event), VD_OK);
    s_close();
    s_assert_intact(taken + 1);
}
END_TEST

START_TEST(a_failed_write_keeps_the_records)
{
    vdt_small_disk_t disk;
    char unused[512];
    vdt_small_disk_init(&disk, s_dir, unused, sizeof unused);
    s_paths(disk.mount);
    s_open();
    if (vdt_small_disk_limit(&disk) == VDT_DISK_NONE) {
        printf("vdb_audit: skipped: no file size limit is available\n");
        return;
    }
    //  About 1.4 MiB of records against a 1 MiB limit on file sizes.
    const uint64_t total = 1400;
    s_record(1, 400);
    s_flush(true);
    uint64_t bytes_before = s_stats().bytes;
    for (uint64_t i = 401; i <= total; i++) {
        vdp_audit_record_t event = s_event(i, 1000);
        ck_assert_int_eq(vdb_audit_record(s_audit, &event), VD_OK);
    }
    size_t buffered_before = s_stats().buffered;
    ck_assert_int_eq(vdb_audit_flush(s_audit, true, s_err, sizeof s_err), VD_EIO);
    ck_assert_msg(strstr(s_err, "kept to write again"), "err: %s", s_err);
    vdb_audit_stats_t stats = s_stats();
    ck_assert_uint_eq(stats.write_errors, 1);
    ck_assert_uint_gt(stats.buffered, 0);
    ck_assert_uint_eq(stats.bytes - bytes_before + stats.buffered, buffered_before);
    ck_assert_int_eq(s_size(s_log), (off_t)stats.bytes); // what went out, up to the limit
    printf("vdb_audit: a 1 MiB file size limit stopped the write after %llu bytes: %s\n",
           (unsigned long long)stats.bytes, s_err);

    //  Recording goes on meanwhile; a checkpoint fails too, so the head moves on nothing.
    vdp_audit_record_t event = s_event(total + 1, 10);
    ck_assert_int_eq(vdb_audit_record(s_audit, &event), VD_OK);
    ck_assert_int_eq(vdb_audit_checkpoint(s_audit, s_err, sizeof s_err), VD_EIO);
    ck_assert_uint_eq(s_read_head(s_head).n, 0);

    //  Space comes back: everything goes out, once, in order, after the part already written.
    vdt_small_disk_free(&disk);
    s_flush(true);
    ck_assert_uint_eq(s_stats().buffered, 0);
    s_close();
    s_assert_intact(total + 1);
}
END_TEST

Suite *
vdb_audit_suite(void)
{
    Suite *suite = suite_create("vdb_audit");

    TCase *write = tcase_create("write");
    tcase_add_checked_fixture(write, s_setup, s_teardown);
    tcase_add_test(write, open_starts_a_log_with_a_signed_head);
    tcase_add_test(write, records_wait_in_memory_until_a_flush);
    tcase_add_test(write, a_checkpoint_on_the_thread_moves_the_head);
    tcase_add_test(write, record_refuses_bad_records_and_stamps_the_time);
    suite_add_tcase(suite, write);

    TCase *reopen = tcase_create("reopen");
    tcase_add_checked_fixture(reopen, s_setup, s_teardown);
    tcase_add_test(reopen, a_reopened_log_goes_on_with_its_chain);
    tcase_add_test(reopen, a_log_goes_on_after_a_crash);
    tcase_add_test(reopen, a_torn_last_line_is_cut_at_open);
    tcase_add_test(reopen, a_damaged_log_opens_without_rewriting_anything);
    tcase_add_test(reopen, a_head_that_disagrees_is_kept_aside);
    tcase_add_test(reopen, a_head_forged_or_missing_is_damage);
    tcase_add_test(reopen, open_keeps_a_second_writer_out);
    suite_add_tcase(suite, reopen);

    TCase *faults = tcase_create("faults");
    tcase_add_checked_fixture(faults, s_setup, s_teardown);
    tcase_set_timeout(faults, 60); // 16 MiB of records, under a sanitizer too
    tcase_add_test(faults, the_buffer_is_bounded);
    tcase_add_test(faults, a_failed_write_keeps_the_records);
    suite_add_tcase(suite, faults);

    return suite;
}

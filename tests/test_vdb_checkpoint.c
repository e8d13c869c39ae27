/*  vdb_checkpoint suite: a real WAL database written by a connection of the test's own (as the
    store writes it: no auto-checkpoint), and the checkpoint thread copying it into the main
    file: the file grows by what the WAL held, and the writer's next commit starts the WAL over;
    checkpoints asked for while the writer commits; a checkpoint that fails for real (a file
    size limit) is counted, loses nothing, and succeeds once the space is back.  */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <check.h>
#include <sqlite3.h>

#include "small_disk.h"
#include "scratch.h"
#include "suites.h"
#include "vdb_checkpoint.h"
#include "vedetta.h"

#define S_ROW_BYTES 1000
#define S_SYNC      "PRAGMA synchronous = FULL"

static char s_dir[256]; // a fresh directory per test
static char s_path[512];
static char s_err[256];
static sqlite3 *s_writer;
static int s_frames; // the WAL's frames after the writer's last commit
static vdb_checkpoint_t *s_checkpoint;

static int
s_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)arg;
    (void)db;
    (void)name;
    s_frames = frames;
    return SQLITE_OK;
}

static void
s_exec(const char *sql)
{
    char *why = NULL;
    int rc = sqlite3_exec(s_writer, sql, NULL, NULL, &why);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, why ? why : "?");
    sqlite3_free(why);
}

static void
s_setup(void)
{
    vdt_scratch_make(s_dir, sizeof s_dir, "vdb_checkpoint");
    snprintf(s_path, sizeof s_path, "%s/store.db", s_dir);
    s_err[0] = '\0';
    s_frames = -1;
    s_checkpoint = NULL;
}

//  Opens the writer in `path`, in WAL mode with 4 KiB pages and no checkpoint of its own.
static void
s_writer_open(const char *path)
{
    ck_assert_int_eq(sqlite3_open(path, &s_writer), SQLITE_OK);
    s_exec(
        "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; " S_SYNC
        "; CREATE TABLE rows (n INTEGER PRIMARY KEY, body BLOB NOT NULL)");
    sqlite3_wal_hook(s_writer, s_wal_hook, NULL);
}

static void
s_teardown(void)
{
    vdb_checkpoint_destroy(&s_checkpoint);
    ck_assert_ptr_null(s_checkpoint);
    ck_assert_int_eq(sqlite3_close(s_writer), SQLITE_OK);
    s_writer = NULL;
    vdt_scratch_remove(s_dir);
}

//  Inserts `count` rows of S_ROW_BYTES in one transaction.
static void
s_insert(int count)
{
    s_exec("BEGIN");
    sqlite3_stmt *stmt = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(s_writer, "INSERT INTO rows (body) VALUES (zeroblob(?))",
                                        -1, &stmt, NULL),
                     SQLITE_OK);
    for (int i = 0; i < count; i++) {
        sqlite3_bind_int(stmt, 1, S_ROW_BYTES);
        ck_assert_int_eq(sqlite3_step(stmt), SQLITE_DONE);
        sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    s_exec("COMMIT");
}

static int64_t
s_rows(void)
{
    sqlite3_stmt *stmt = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(s_writer, "SELECT count(*) FROM rows", -1, &stmt, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(stmt), SQLITE_ROW);
    int64_t rows = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return rows;
}

static off_t
s_file_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

static void
s_checkpoint_new(void)
{
    s_checkpoint = vdb_checkpoint_new(s_path, S_SYNC, s_err, sizeof s_err);
    ck_assert_msg(s_checkpoint != NULL, "new: %s", s_err);
}

static vdb_checkpoint_stats_t
s_stats(void)
{
    vdb_checkpoint_stats_t stats;
    vdb_checkpoint_stats(s_checkpoint, &stats);
    return stats;
}

START_TEST(copies_the_wal_into_the_database)
{
    s_writer_open(s_path);
    s_insert(2000);
    int frames = s_frames;
    ck_assert_int_gt(frames, 480); // 2000 rows of 1000 bytes in 4 KiB pages
    ck_assert_int_lt(s_file_size(s_path), 64 * 1024);

    s_checkpoint_new();
    vdb_checkpoint_stats_t stats = s_stats();
    ck_assert_uint_eq(stats.requests, 0);
    ck_assert_int_eq(stats.wal_frames, -1);
    vdb_checkpoint_request(s_checkpoint);
    vdb_checkpoint_settle(s_checkpoint);
    stats = s_stats();
    ck_assert_uint_eq(stats.requests, 1);
    ck_assert_uint_eq(stats.runs, 1);
    ck_assert_uint_eq(stats.failures, 0);
    ck_assert_int_eq(stats.wal_frames, frames);
    ck_assert_int_eq(stats.copied_frames, frames);
    ck_assert_int_ge(s_file_size(s_path), 2000 * S_ROW_BYTES);

    //  Everything was copied: the next commit writes the WAL from its start again.
    s_insert(1);
    ck_assert_int_lt(s_frames, 8);
    ck_assert_int_eq(s_rows(), 2001);
}
END_TEST

START_TEST(runs_beside_a_committing_writer)
{
    s_writer_open(s_path);
    s_checkpoint_new();
    for (int round = 0; round < 200; round++) {
        s_insert(20);
        vdb_checkpoint_request(s_checkpoint);
    }
    vdb_checkpoint_settle(s_checkpoint);
    vdb_checkpoint_stats_t stats = s_stats();
    ck_assert_uint_ge(stats.requests, 1);
    ck_assert_uint_ge(stats.runs, 1);
    ck_assert_uint_eq(stats.failures, 0);

    //  Nothing commits now: one more run copies what is left, and the WAL starts over.
    vdb_checkpoint_request(s_checkpoint);
    vdb_checkpoint_settle(s_checkpoint);
    stats = s_stats();
    ck_assert_int_eq(stats.copied_frames, stats.wal_frames);
    ck_assert_int_ge(s_file_size(s_path), 4000 * S_ROW_BYTES);
    s_insert(1);
    ck_assert_int_lt(s_frames, 8);
    ck_assert_int_eq(s_rows(), 4001);
}
END_TEST

START_TEST(a_failed_checkpoint_loses_nothing_and_retries)
{
    vdt_small_disk_t disk;
    vdt_small_disk_init(&disk, s_dir, s_path, sizeof s_path);
    s_writer_open(s_path);
    s_checkpoint_new();
    //  400 kB in the main file, then a WAL of 700 kB more: the WAL fits under a limit of 1 MiB
    //  a file, the main file with both does not.
    s_insert(400);
    vdb_checkpoint_request(s_checkpoint);
    vdb_checkpoint_settle(s_checkpoint);
    ck_assert_uint_eq(s_stats().runs, 1);
    if (vdt_small_disk_limit(&disk) == VDT_DISK_NONE) {
        printf("vdb_checkpoint: skipped the failure: no file size limit available\n");
        return;
    }
    s_insert(700);
    int frames = s_frames;
    vdb_checkpoint_request(s_checkpoint);
    vdb_checkpoint_settle(s_checkpoint);
    vdb_checkpoint_stats_t stats = s_stats();
    ck_assert_uint_eq(stats.failures, 1);
    ck_assert_uint_eq(stats.runs, 1);
    ck_assert_int_lt(s_file_size(s_path), 1024 * 1024 + 1);

    //  The WAL still holds every commit: the writer reads them, and commits more.
    ck_assert_int_eq(s_rows(), 1100);
    s_insert(1);
    ck_assert_int_gt(s_frames, frames);

    vdt_small_disk_free(&disk);
    vdb_checkpoint_request(s_checkpoint);
    vdb_checkpoint_settle(s_checkpoint);
    stats = s_stats();
    ck_assert_uint_eq(stats.failures, 1);
    ck_assert_uint_eq(stats.runs, 2);
    ck_assert_int_eq(stats.copied_frames, stats.wal_frames);
    ck_assert_int_ge(s_file_size(s_path), 1101 * S_ROW_BYTES);
    s_insert(1);
    ck_assert_int_lt(s_frames, 8);
    ck_assert_int_eq(s_rows(), 1102);
}
END_TEST

START_TEST(new_refuses_a_missing_file)
{
    s_writer_open(s_path);
    char missing[600];
    snprintf(missing, sizeof missing, "%s/none.db", s_dir);
    ck_assert_ptr_null(vdb_checkpoint_new(missing, S_SYNC, s_err, sizeof s_err));
    ck_assert_msg(strstr(s_err, "none.db") != NULL, "err: %s", s_err);
    ck_assert_ptr_null(vdb_checkpoint_new(NULL, S_SYNC, s_err, sizeof s_err));
    ck_assert_ptr_null(vdb_checkpoint_new(s_path, NULL, s_err, sizeof s_err));
    vdb_checkpoint_destroy(NULL); // harmless
}
END_TEST

Suite *
vdb_checkpoint_suite(void)
{
    Suite *suite = suite_create("vdb_checkpoint");
    TCase *copy = tcase_create("copy");
    tcase_add_checked_fixture(copy, s_setup, s_teardown);
    tcase_set_timeout(copy, 60);
    tcase_add_test(copy, copies_the_wal_into_the_database);
    tcase_add_test(copy, runs_beside_a_committing_writer);
    tcase_add_test(copy, a_failed_checkpoint_loses_nothing_and_retries);
    tcase_add_test(copy, new_refuses_a_missing_file);
    suite_add_tcase(suite, copy);
    return suite;
}

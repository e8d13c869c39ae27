/*  vdb_store: see vdb_store.h; the schema and the reason for each index: docs/store.md.
    One SQLite connection in WAL mode. The statements of the hot paths (append, lookup, scan,
    cursors, and the transaction verbs) are prepared once at open and reset after each use, so
    no SQL text is parsed per message; prune and open prepare theirs as they go.
    Invariants:
    - count, bytes and last_seq mirror the file: computed once at open, then changed only after
      a transaction that changed them has committed;
    - last_seq never goes back: it is the larger of max(seq) and meta "last_seq", which prune
      writes whenever it deletes, in case it deleted the newest messages;
    - no transaction stays open between calls: each failure path rolls back before it returns;
    - while a scan runs (`scanning`), nothing writes through this connection.  */
#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "vdp_errors.h"
#include "vdb_log.h"
#include "vdb_store.h"
#include "vedetta.h"

#define S_SCHEMA_VERSION 1
#define S_BUSY_TIMEOUT   5000 // ms another process may hold the write lock before we fail
//  Checkpoint the WAL into the database once it holds this many pages (16 MiB of 4 KiB pages;
//  SQLite's default is 1000): fewer checkpoints, each an fsync of the main file, under steady
//  appends. 16 KiB pages measured ~10% faster for 256-message batches but slower for single
//  messages (each commit rewrites whole pages), so new files keep SQLite's 4 KiB.
#define S_CHECKPOINT_PAGES 4000
//  After a checkpoint, truncate a WAL that a burst grew beyond this (bytes); below it the file
//  is reused in place, which is cheaper than growing it again.
#define S_WAL_LIMIT (64 * 1024 * 1024)

struct vdb_store_t {
    sqlite3 *db; // owned
    sqlite3_stmt *begin;
    sqlite3_stmt *commit;
    sqlite3_stmt *rollback;
    sqlite3_stmt *insert;
    sqlite3_stmt *lookup;
    sqlite3_stmt *scan;
    sqlite3_stmt *seq_at;
    sqlite3_stmt *cursor_get;
    sqlite3_stmt *cursor_set;
    uint64_t last_seq;
    uint64_t count;
    uint64_t bytes;
    int scanning; // a scan callback is running
};

static const char *s_schema =
    "CREATE TABLE meta ("
    "  name TEXT PRIMARY KEY,"
    "  value INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE messages ("
    "  seq INTEGER PRIMARY KEY,"
    "  accepted_at INTEGER NOT NULL,"
    "  sender TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  topic TEXT NOT NULL,"
    "  category TEXT NOT NULL,"
    "  tlp INTEGER NOT NULL,"
    "  expires INTEGER NOT NULL DEFAULT 0,"
    "  key TEXT NOT NULL,"
    "  recipients TEXT,"
    "  env BLOB NOT NULL"
    ");"
    "CREATE UNIQUE INDEX messages_sender_id ON messages (sender, id);"
    "CREATE INDEX messages_accepted_at ON messages (accepted_at);"
    "CREATE INDEX messages_category_seq ON messages (category, seq);"
    "CREATE INDEX messages_expires ON messages (expires) WHERE expires > 0;"
    "CREATE TABLE cursors ("
    "  key TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  updated_at INTEGER,"
    "  PRIMARY KEY (key, name)"
    ") WITHOUT ROWID;";

//  What failed, from an extended SQLITE_IOERR code (its message is "disk I/O error" for all).
static const char *
s_ioerr_name(int rc)
{
    switch (rc) {
    case SQLITE_IOERR_WRITE:
        return "write failed";
    case SQLITE_IOERR_FSYNC:
    case SQLITE_IOERR_DIR_FSYNC:
        return "fsync failed";
    case SQLITE_IOERR_READ:
    case SQLITE_IOERR_SHORT_READ:
        return "read failed";
    case SQLITE_IOERR_TRUNCATE:
        return "truncate failed";
    case SQLITE_IOERR_SHMOPEN:
    case SQLITE_IOERR_SHMSIZE:
    case SQLITE_IOERR_SHMMAP:
        return "shared memory (-shm file) failed";
    default:
        return "disk I/O error";
    }
}

//  Describes a failed SQLite call in the words of vdb_store.h. Call it before anything else
//  touches the connection (a ROLLBACK replaces sqlite3_errmsg).
static void
s_describe(sqlite3 *db, int rc, char *err, size_t err_size)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
        vdp_errorf(err, err_size, VD_OK, "disk full");
        break;
    case SQLITE_IOERR:
        vdp_errorf(err, err_size, VD_OK, "I/O error: %s", s_ioerr_name(rc));
        break;
    case SQLITE_READONLY:
        vdp_errorf(err, err_size, VD_OK, "store is read-only");
        break;
    default:
        vdp_errorf(err, err_size, VD_OK, "%s", sqlite3_errmsg(db));
        break;
    }
}

static int64_t
s_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

//  Steps a statement that returns no rows, then resets it. Returns the SQLite code.
static int
s_run(sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

//  Ends a failed write: rolls back whatever is still open. A failed COMMIT may already have
//  rolled back by itself (SQLITE_FULL, SQLITE_IOERR), and then there is nothing to undo.
static void
s_rollback(vdb_store_t *self)
{
    if (!sqlite3_get_autocommit(self->db) && s_run(self->rollback) != SQLITE_OK)
        vdb_log_error("vdb_store: rollback failed: %s", sqlite3_errmsg(self->db));
}

static int
s_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **stmt)
{
    return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL);
}

//  Reads one integer: the first column of the first row of `sql`, whose parameter ?1 (if any)
//  is `text`. Returns SQLITE_OK and *value, SQLITE_DONE if there is no row, or an error.
static int
s_query_int(sqlite3 *db, const char *sql, const char *text, int64_t *value)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return rc;
    if (text)
        sqlite3_bind_text(stmt, 1, text, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *value = sqlite3_column_int64(stmt, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(stmt);
    return rc;
}

//  Creates the schema in an empty file, or checks the version of an existing one, in one
//  transaction so two brokers starting on one new file cannot both create it.
static int
s_schema_check(sqlite3 *db, char *err, size_t err_size)
{
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        s_describe(db, rc, err, err_size);
        return VD_ESTORE;
    }
    int64_t tables = 0;
    int64_t has_meta = 0;
    int64_t version = 0;
    rc = s_query_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table'", NULL, &tables);
    if (rc == SQLITE_OK)
        rc =
            s_query_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                        "meta", &has_meta);
    if (rc == SQLITE_OK && tables == 0) {
        rc = sqlite3_exec(db, s_schema, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(db, "INSERT INTO meta (name, value) VALUES ('schema_version', 1)",
                              NULL, NULL, NULL);
        version = S_SCHEMA_VERSION;
    } else if (rc == SQLITE_OK && has_meta) {
        rc = s_query_int(db, "SELECT value FROM meta WHERE name = ?1", "schema_version", &version);
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK; // no version row: refused below with version 0
    }
    if (rc != SQLITE_OK) {
        s_describe(db, rc, err, err_size);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return VD_ESTORE;
    }
    if (version != S_SCHEMA_VERSION) {
        if (has_meta)
            vdp_errorf(err, err_size, VD_OK,
                       "schema version %" PRId64 " not supported (this broker reads %d)", version,
                       S_SCHEMA_VERSION);
        else
            vdp_errorf(err, err_size, VD_OK, "not a vedetta store (no meta table)");
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return VD_ESTORE;
    }
    rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        s_describe(db, rc, err, err_size);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return VD_ESTORE;
    }
    return VD_OK;
}

//  Reads the running totals: one pass over the table (length() of a blob reads its size from
//  the record header, not the bytes), then the persisted high-water seq.
static int
s_load_totals(vdb_store_t *self)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(
        self->db,
        "SELECT count(*), coalesce(sum(length(env)), 0), coalesce(max(seq), 0) FROM messages", -1,
        &stmt, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        self->count = (uint64_t)sqlite3_column_int64(stmt, 0);
        self->bytes = (uint64_t)sqlite3_column_int64(stmt, 1);
        self->last_seq = (uint64_t)sqlite3_column_int64(stmt, 2);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_OK)
        return rc;
    int64_t floor = 0;
    rc = s_query_int(self->db, "SELECT value FROM meta WHERE name = ?1", "last_seq", &floor);
    if (rc == SQLITE_DONE)
        return SQLITE_OK;
    if (rc == SQLITE_OK && floor > 0 && (uint64_t)floor > self->last_seq)
        self->last_seq = (uint64_t)floor;
    return rc;
}

static int
s_prepare_all(vdb_store_t *self)
{
    int rc = s_prepare(self->db, "BEGIN IMMEDIATE", &self->begin);
    if (rc == SQLITE_OK)
        rc = s_prepare(self->db, "COMMIT", &self->commit);
    if (rc == SQLITE_OK)
        rc = s_prepare(self->db, "ROLLBACK", &self->rollback);
    if (rc == SQLITE_OK)
        rc = s_prepare(self->db,
                       "INSERT INTO messages (seq, accepted_at, sender, id, topic, category, tlp, "
                       "expires, key, recipients, env) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       &self->insert);
    if (rc == SQLITE_OK)
        rc = s_prepare(self->db,
                       "SELECT seq, accepted_at, tlp FROM messages WHERE sender = ? AND id = ?",
                       &self->lookup);
    if (rc == SQLITE_OK)
        rc = s_prepare(self->db,
                       "SELECT seq, accepted_at, sender, id, topic, category, tlp, expires, key, "
                       "recipients, env FROM messages WHERE seq > ? ORDER BY seq LIMIT ?",
                       &self->scan);
    //  The first in accepted_at order, found in O(log n) through the index. If the clock
    //  stepped back, a message stamped earlier may carry a higher seq than this one; finding
    //  min(seq) instead would read every index entry since `time_ms`.
    if (rc == SQLITE_OK)
        rc = s_prepare(self->db,
                       "SELECT seq FROM messages WHERE accepted_at >= ? "
                       "ORDER BY accepted_at, seq LIMIT 1",
                       &self->seq_at);
    if (rc == SQLITE_OK)
        rc = s_prepare(self->db, "SELECT seq FROM cursors WHERE key = ? AND name = ?",
                       &self->cursor_get);
    if (rc == SQLITE_OK)
        rc = s_prepare(self->db,
                       "INSERT INTO cursors (key, name, seq, updated_at) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (key, name) DO UPDATE SET seq = excluded.seq, "
                       "updated_at = excluded.updated_at",
                       &self->cursor_set);
    return rc;
}

vdb_store_t *
vdb_store_open(const char *path, vdb_sync_t sync, char *err, size_t err_size)
{
    static const char *sync_pragma[] = {
        [VDB_SYNC_FULL] = "PRAGMA synchronous = FULL",
        [VDB_SYNC_NORMAL] = "PRAGMA synchronous = NORMAL",
        [VDB_SYNC_OFF] = "PRAGMA synchronous = OFF",
    };
    if (!path || !*path || (int)sync < 0 ||
        (size_t)sync >= sizeof sync_pragma / sizeof *sync_pragma) {
        vdp_errorf(err, err_size, VD_OK, "invalid argument");
        return NULL;
    }
    vdb_store_t *self = calloc(1, sizeof *self);
    if (!self) {
        vdp_errorf(err, err_size, VD_OK, "out of memory");
        return NULL;
    }
    //  NOMUTEX: one thread owns the store, so SQLite's per-call mutexes buy nothing.
    int rc = sqlite3_open_v2(
        path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        if (self->db)
            vdp_errorf(err, err_size, VD_OK, "%s: %s", path, sqlite3_errmsg(self->db));
        else
            vdp_errorf(err, err_size, VD_OK, "%s: out of memory", path);
        goto err_close;
    }
    sqlite3_extended_result_codes(self->db, 1);
    sqlite3_busy_timeout(self->db, S_BUSY_TIMEOUT);

    //  The broker is the store's only user: exclusive locking, set before WAL is entered, keeps
    //  the lock for the whole run (no fcntl lock and unlock around every statement, which cost
    //  several microseconds a message) and needs no shared-memory index; a second broker
    //  opening the same file fails instead of interleaving with the first.
    rc = sqlite3_exec(self->db, "PRAGMA locking_mode = EXCLUSIVE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        s_describe(self->db, rc, err, err_size);
        goto err_close;
    }
    //  journal_mode answers with the mode now in force; anything but "wal" (a read-only file,
    //  a file system without shared memory) is refused rather than run slowly.
    sqlite3_stmt *stmt = NULL;
    rc = sqlite3_prepare_v2(self->db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    const char *mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(stmt, 0) : NULL;
    int wal = mode && strcmp(mode, "wal") == 0;
    if (rc == SQLITE_ROW)
        rc = SQLITE_OK;
    if (rc != SQLITE_OK)
        s_describe(self->db, rc, err, err_size);
    else if (!wal)
        vdp_errorf(err, err_size, VD_OK, "%s: cannot use WAL mode", path);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_OK || !wal)
        goto err_close;

    char pragmas[256];
    snprintf(pragmas, sizeof pragmas,
             "%s; PRAGMA wal_autocheckpoint = %d; PRAGMA journal_size_limit = %d",
             sync_pragma[sync], S_CHECKPOINT_PAGES, S_WAL_LIMIT);
    rc = sqlite3_exec(self->db, pragmas, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        s_describe(self->db, rc, err, err_size);
        goto err_close;
    }
    if (s_schema_check(self->db, err, err_size) != VD_OK)
        goto err_close;
    rc = s_load_totals(self);
    if (rc == SQLITE_OK)
        rc = s_prepare_all(self);
    if (rc != SQLITE_OK) {
        s_describe(self->db, rc, err, err_size);
        goto err_close;
    }
    return self;

err_close:
    vdb_store_close(&self);
    return NULL;
}

void
vdb_store_close(vdb_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vdb_store_t *self = *self_p;
    assert(!self->scanning);
    sqlite3_finalize(self->cursor_set);
    sqlite3_finalize(self->cursor_get);
    sqlite3_finalize(self->seq_at);
    sqlite3_finalize(self->scan);
    sqlite3_finalize(self->lookup);
    sqlite3_finalize(self->insert);
    sqlite3_finalize(self->rollback);
    sqlite3_finalize(self->commit);
    sqlite3_finalize(self->begin);
    //  Every statement is finalized, so close cannot be busy; the last connection to close
    //  checkpoints the WAL into the database and removes it.
    int rc = sqlite3_close(self->db);
    assert(rc == SQLITE_OK);
    (void)rc;
    free(self);
    *self_p = NULL;
}

uint64_t
vdb_store_last_seq(const vdb_store_t *self)
{
    assert(self);
    return self->last_seq;
}

//  Binds and inserts one message. Returns the SQLite code.
static int
s_insert(vdb_store_t *self, const vdb_store_msg_t *msg)
{
    sqlite3_stmt *stmt = self->insert;
    //  SQLITE_STATIC: the caller's strings outlive the step; bindings are cleared after the
    //  batch so the statement keeps no pointer into them.
    sqlite3_bind_int64(stmt, 1, (sqlite3_int64)msg->seq);
    sqlite3_bind_int64(stmt, 2, msg->accepted_at);
    sqlite3_bind_text(stmt, 3, msg->sender, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, msg->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, msg->topic, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 6, msg->category, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 7, (int)msg->tlp);
    sqlite3_bind_int64(stmt, 8, msg->expires);
    sqlite3_bind_text(stmt, 9, msg->key, -1, SQLITE_STATIC);
    if (msg->to && *msg->to)
        sqlite3_bind_text(stmt, 10, msg->to, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, 10);
    sqlite3_bind_blob64(stmt, 11, msg->raw, msg->raw_len, SQLITE_STATIC);
    return s_run(stmt);
}

//  Checks what SQLite would otherwise store wrong or refuse mid-batch: missing fields and seqs
//  that do not increase. Returns VD_OK or VD_EINVAL with `err`.
static int
s_validate(
    const vdb_store_t *self, const vdb_store_msg_t *msgs, size_t count, char *err, size_t err_size)
{
    uint64_t previous = self->last_seq;
    for (size_t i = 0; i < count; i++) {
        const vdb_store_msg_t *msg = &msgs[i];
        if (!msg->sender || !msg->id || !msg->topic || !msg->category || !msg->key || !msg->raw) {
            vdp_errorf(err, err_size, VD_OK, "message %zu: missing field", i);
            return VD_EINVAL;
        }
        if (msg->seq <= previous || msg->seq > INT64_MAX) {
            vdp_errorf(err, err_size, VD_OK,
                       "message %zu: seq %" PRIu64 " does not follow %" PRIu64, i, msg->seq,
                       previous);
            return VD_EINVAL;
        }
        previous = msg->seq;
    }
    return VD_OK;
}

int
vdb_store_append(
    vdb_store_t *self, const vdb_store_msg_t *msgs, size_t count, char *err, size_t err_size)
{
    assert(self);
    assert(!self->scanning);
    if (count == 0)
        return VD_OK;
    if (!msgs) {
        vdp_errorf(err, err_size, VD_OK, "invalid argument");
        return VD_EINVAL;
    }
    int rc = s_validate(self, msgs, count, err, err_size);
    if (rc != VD_OK)
        return rc;

    uint64_t bytes = 0;
    size_t i = 0;
    int sqlite_rc = s_run(self->begin);
    for (; sqlite_rc == SQLITE_OK && i < count; i++) {
        sqlite_rc = s_insert(self, &msgs[i]);
        bytes += msgs[i].raw_len;
    }
    sqlite3_clear_bindings(self->insert);
    //  The commit is where FULL sync waits for the disk: one fsync of the WAL for the batch.
    if (sqlite_rc == SQLITE_OK)
        sqlite_rc = s_run(self->commit);
    if (sqlite_rc == SQLITE_OK) {
        self->count += count;
        self->bytes += bytes;
        self->last_seq = msgs[count - 1].seq;
        return VD_OK;
    }
    if (sqlite_rc == SQLITE_CONSTRAINT_UNIQUE) {
        const vdb_store_msg_t *msg = &msgs[i - 1];
        vdp_errorf(err, err_size, VD_OK, "message %zu: duplicate (sender, id) %s/%s", i - 1,
                   msg->sender, msg->id);
        rc = VD_EINVAL;
    } else {
        s_describe(self->db, sqlite_rc, err, err_size);
        rc = VD_ESTORE;
    }
    s_rollback(self);
    return rc;
}

int
vdb_store_lookup(vdb_store_t *self,
                 const char *sender,
                 const char *id,
                 uint64_t *seq,
                 int64_t *accepted_at,
                 vdp_tlp_t *tlp)
{
    assert(self);
    assert(sender && id);
    sqlite3_stmt *stmt = self->lookup;
    sqlite3_bind_text(stmt, 1, sender, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    int result = VD_ENOTFOUND;
    if (rc == SQLITE_ROW) {
        if (seq)
            *seq = (uint64_t)sqlite3_column_int64(stmt, 0);
        if (accepted_at)
            *accepted_at = sqlite3_column_int64(stmt, 1);
        if (tlp)
            *tlp = (vdp_tlp_t)sqlite3_column_int(stmt, 2);
        result = VD_OK;
    } else if (rc != SQLITE_DONE) {
        vdb_log_error("vdb_store: lookup failed: %s", sqlite3_errmsg(self->db));
        result = VD_ESTORE;
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return result;
}

//  A scan row as a message; its pointers are valid until the next step or reset of `stmt`.
static vdb_store_msg_t
s_row_msg(sqlite3_stmt *stmt)
{
    vdb_store_msg_t msg = {
        .seq = (uint64_t)sqlite3_column_int64(stmt, 0),
        .accepted_at = sqlite3_column_int64(stmt, 1),
        .sender = (const char *)sqlite3_column_text(stmt, 2),
        .id = (const char *)sqlite3_column_text(stmt, 3),
        .topic = (const char *)sqlite3_column_text(stmt, 4),
        .category = (const char *)sqlite3_column_text(stmt, 5),
        .tlp = (vdp_tlp_t)sqlite3_column_int(stmt, 6),
        .expires = sqlite3_column_int64(stmt, 7),
        .key = (const char *)sqlite3_column_text(stmt, 8),
        .to = (const char *)sqlite3_column_text(stmt, 9), // NULL when not directed
        .raw = sqlite3_column_blob(stmt, 10),
    };
    //  Ask the size after the pointer: that order never converts the value behind our back.
    msg.raw_len = (size_t)sqlite3_column_bytes(stmt, 10);
    return msg;
}

int
vdb_store_scan(vdb_store_t *self, uint64_t after, size_t limit, vdb_store_fn *fn, void *arg)
{
    assert(self);
    assert(fn);
    assert(!self->scanning); // the one scan statement is in use
    if (limit == 0)
        return 0;
    if (limit > INT_MAX)
        limit = INT_MAX; // the count must fit the return value
    if (after > INT64_MAX)
        return 0;
    sqlite3_stmt *stmt = self->scan;
    sqlite3_bind_int64(stmt, 1, (sqlite3_int64)after);
    sqlite3_bind_int64(stmt, 2, (sqlite3_int64)limit);
    int passed = 0;
    int rc;
    self->scanning = 1;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        vdb_store_msg_t msg = s_row_msg(stmt);
        passed++;
        if (fn(&msg, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    self->scanning = 0;
    if (rc != SQLITE_DONE)
        vdb_log_error("vdb_store: scan after seq=%" PRIu64 " failed: %s", after,
                      sqlite3_errmsg(self->db));
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? passed : VD_ESTORE;
}

int
vdb_store_seq_at(vdb_store_t *self, int64_t time_ms, uint64_t *seq)
{
    assert(self);
    assert(seq);
    sqlite3_stmt *stmt = self->seq_at;
    sqlite3_bind_int64(stmt, 1, time_ms);
    int rc = sqlite3_step(stmt);
    int result = VD_ENOTFOUND;
    if (rc == SQLITE_ROW) {
        *seq = (uint64_t)sqlite3_column_int64(stmt, 0);
        result = VD_OK;
    } else if (rc != SQLITE_DONE) {
        vdb_log_error("vdb_store: seq_at failed: %s", sqlite3_errmsg(self->db));
        result = VD_ESTORE;
    }
    sqlite3_reset(stmt);
    return result;
}

int
vdb_store_cursor_get(vdb_store_t *self, const char *key, const char *name, uint64_t *seq)
{
    assert(self);
    assert(key && name && seq);
    sqlite3_stmt *stmt = self->cursor_get;
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    int result = VD_ENOTFOUND;
    if (rc == SQLITE_ROW) {
        *seq = (uint64_t)sqlite3_column_int64(stmt, 0);
        result = VD_OK;
    } else if (rc != SQLITE_DONE) {
        vdb_log_error("vdb_store: cursor_get failed: %s", sqlite3_errmsg(self->db));
        result = VD_ESTORE;
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return result;
}

int
vdb_store_cursor_set(vdb_store_t *self, const char *key, const char *name, uint64_t seq)
{
    assert(self);
    assert(!self->scanning);
    assert(key && name && seq <= INT64_MAX);
    //  One transaction (and under FULL, one fsync) per call: callers coalesce acknowledgements.
    //  Folding cursor updates into the next append's transaction would make them free.
    sqlite3_stmt *stmt = self->cursor_set;
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, (sqlite3_int64)seq);
    sqlite3_bind_int64(stmt, 4, s_now_ms());
    int rc = s_run(stmt);
    sqlite3_clear_bindings(stmt);
    if (rc != SQLITE_OK) {
        char why[256];
        s_describe(self->db, rc, why, sizeof why);
        vdb_log_error("vdb_store: cursor_set failed: %s", why);
        return VD_ESTORE;
    }
    return VD_OK;
}

//  Deletes the rows of messages that `where` selects (?1, ?2 bound from the arguments, a NULL
//  text skipped), adding their number and envelope bytes to *count and *bytes.
static int
s_delete_where(vdb_store_t *self,
               const char *where,
               const char *text,
               int64_t number,
               uint64_t *count,
               uint64_t *bytes)
{
    char sql[256];
    sqlite3_stmt *stmt = NULL;
    //  Sum first, then delete, in the same transaction: DELETE ... RETURNING would do both in
    //  one pass but needs SQLite 3.35, above the 3.31 we support.
    snprintf(sql, sizeof sql,
             "SELECT count(*), coalesce(sum(length(env)), 0) FROM messages WHERE %s", where);
    int rc = sqlite3_prepare_v2(self->db, sql, -1, &stmt, NULL);
    int64_t rows = 0;
    int64_t size = 0;
    for (int pass = 0; rc == SQLITE_OK && pass < 2; pass++) {
        if (text)
            sqlite3_bind_text(stmt, 1, text, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 2, number);
        rc = sqlite3_step(stmt);
        if (pass == 0 && rc == SQLITE_ROW) {
            rows = sqlite3_column_int64(stmt, 0);
            size = sqlite3_column_int64(stmt, 1);
        }
        if (rc == SQLITE_ROW || rc == SQLITE_DONE)
            rc = SQLITE_OK;
        sqlite3_finalize(stmt);
        stmt = NULL;
        if (rc != SQLITE_OK || pass == 1 || rows == 0)
            break;
        snprintf(sql, sizeof sql, "DELETE FROM messages WHERE %s", where);
        rc = sqlite3_prepare_v2(self->db, sql, -1, &stmt, NULL);
    }
    if (rc == SQLITE_OK) {
        *count += (uint64_t)rows;
        *bytes += (uint64_t)size;
    }
    return rc;
}

//  Size retention for one category: keeps the newest messages whose envelopes fit in
//  `max_bytes` and deletes the rest. Walks newest first and stops at the first message that
//  does not fit, so it reads the kept messages once (one row lookup each). Keeping per-category
//  totals would let it read only the deleted ones.
static int
s_prune_size(
    vdb_store_t *self, const char *category, uint64_t max_bytes, uint64_t *count, uint64_t *bytes)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(self->db,
                                "SELECT seq, length(env) FROM messages WHERE category = ? "
                                "ORDER BY seq DESC",
                                -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_text(stmt, 1, category, -1, SQLITE_STATIC);
    uint64_t kept = 0;
    int64_t boundary = 0; // delete this seq and older
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        uint64_t size = (uint64_t)sqlite3_column_int64(stmt, 1);
        if (size > max_bytes - kept) {
            boundary = sqlite3_column_int64(stmt, 0);
            break;
        }
        kept += size;
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return rc;
    if (boundary == 0)
        return SQLITE_OK;
    return s_delete_where(self, "category = ?1 AND seq <= ?2", category, boundary, count, bytes);
}

//  Size retention for every category present.
static int
s_prune_size_all(vdb_store_t *self, uint64_t max_bytes, uint64_t *count, uint64_t *bytes)
{
    //  Collect the names first: deleting rows under a running SELECT of the same table is not
    //  something to rely on. Categories are few (a protocol enumeration).
    sqlite3_stmt *stmt = NULL;
    int rc =
        sqlite3_prepare_v2(self->db, "SELECT DISTINCT category FROM messages", -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return rc;
    char **names = NULL;
    size_t used = 0;
    size_t capacity = 0;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (used == capacity) {
            size_t grown = capacity ? capacity * 2 : 16;
            char **more = realloc(names, grown * sizeof *more);
            if (!more) {
                rc = SQLITE_NOMEM;
                break;
            }
            names = more;
            capacity = grown;
        }
        names[used] = strdup((const char *)sqlite3_column_text(stmt, 0));
        if (!names[used]) {
            rc = SQLITE_NOMEM;
            break;
        }
        used++;
    }
    sqlite3_finalize(stmt);
    if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    for (size_t i = 0; rc == SQLITE_OK && i < used; i++)
        rc = s_prune_size(self, names[i], max_bytes, count, bytes);
    for (size_t i = 0; i < used; i++)
        free(names[i]);
    free(names);
    return rc;
}

static int
s_prune_steps(vdb_store_t *self,
              const char *category,
              int64_t before_ms,
              uint64_t max_bytes,
              int64_t now_ms,
              uint64_t *count,
              uint64_t *bytes)
{
    int rc = SQLITE_OK;
    if (before_ms > 0 && category)
        rc = s_delete_where(self, "category = ?1 AND accepted_at < ?2", category, before_ms, count,
                            bytes);
    else if (before_ms > 0)
        rc = s_delete_where(self, "accepted_at < ?2", NULL, before_ms, count, bytes);
    //  Expired before size: what has expired goes anyway, and must not count against the size
    //  limit and push out live messages first. "expires > 0" repeats the partial index's
    //  condition, which is what lets SQLite use it.
    if (rc == SQLITE_OK && now_ms > 0)
        rc = s_delete_where(self, "expires > 0 AND expires <= ?2", NULL, now_ms, count, bytes);
    if (rc == SQLITE_OK && max_bytes > 0 && category)
        rc = s_prune_size(self, category, max_bytes, count, bytes);
    else if (rc == SQLITE_OK && max_bytes > 0)
        rc = s_prune_size_all(self, max_bytes, count, bytes);
    //  The newest messages may have gone: remember the high-water seq for the next open.
    if (rc == SQLITE_OK && *count > 0) {
        sqlite3_stmt *stmt = NULL;
        rc = sqlite3_prepare_v2(self->db,
                                "INSERT INTO meta (name, value) VALUES ('last_seq', ?) "
                                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                                -1, &stmt, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(stmt, 1, (sqlite3_int64)self->last_seq);
            rc = sqlite3_step(stmt) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(self->db);
        }
        sqlite3_finalize(stmt);
    }
    return rc;
}

int
vdb_store_prune(
    vdb_store_t *self, const char *category, int64_t before_ms, uint64_t max_bytes, int64_t now_ms)
{
    assert(self);
    assert(!self->scanning);
    uint64_t count = 0;
    uint64_t bytes = 0;
    int rc = s_run(self->begin);
    if (rc == SQLITE_OK)
        rc = s_prune_steps(self, category, before_ms, max_bytes, now_ms, &count, &bytes);
    if (rc == SQLITE_OK && count > 0)
        rc = s_run(self->commit);
    else if (rc == SQLITE_OK)
        rc = s_run(self->rollback); // nothing deleted: skip the commit's fsync
    if (rc != SQLITE_OK) {
        char why[256];
        s_describe(self->db, rc, why, sizeof why);
        vdb_log_error("vdb_store: prune failed: %s", why);
        s_rollback(self);
        return VD_ESTORE;
    }
    assert(count <= self->count && bytes <= self->bytes);
    self->count -= count;
    self->bytes -= bytes;
    return count > INT_MAX ? INT_MAX : (int)count;
}

uint64_t
vdb_store_count(vdb_store_t *self)
{
    assert(self);
    return self->count;
}

uint64_t
vdb_store_bytes(vdb_store_t *self)
{
    assert(self);
    return self->bytes;
}

int
vdb_store_categories(vdb_store_t *self, vdb_store_category_fn *fn, void *arg)
{
    assert(self && fn);
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(self->db,
                           "SELECT category FROM messages WHERE category > ?1 "
                           "ORDER BY category LIMIT 1",
                           -1, &stmt, NULL) != SQLITE_OK)
        return VD_ESTORE;
    char last[VDP_MAX_SHORT + 1] = "";
    int rc = VD_OK;
    for (;;) {
        sqlite3_reset(stmt);
        sqlite3_bind_text(stmt, 1, last, -1, SQLITE_TRANSIENT);
        int step = sqlite3_step(stmt);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = VD_ESTORE;
            break;
        }
        snprintf(last, sizeof last, "%s", (const char *)sqlite3_column_text(stmt, 0));
        if (fn(last, arg) != 0)
            break;
    }
    sqlite3_finalize(stmt);
    return rc;
}

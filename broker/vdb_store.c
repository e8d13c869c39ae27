/*  vdb_store: see vdb_store.h; the schema, why it has no index but one, and the settings:
    docs/store.md.
    One SQLite connection in WAL mode writes and reads; a second one, on a thread of its own,
    copies the WAL back into the database (vdb_checkpoint) when a commit leaves it past
    S_CHECKPOINT_BYTES. An flock on the file keeps a second broker out. The statements of the
    hot paths (append, lookup, scan, cursors, retention's row reads and deletes, and the
    transaction verbs) are prepared once at open and reset after each use, so no SQL text is
    parsed per message.
    Appending writes one table row per message and nothing else (the only index is partial, on
    expiring messages): rows go to the end of the seq B-tree, so a batch dirties few pages.
    What an index would otherwise answer is kept in memory, rebuilt at open by one pass over
    the table:
    - `ids`: a keyed hash of (sender, id) -> seq, for lookups and uniqueness; a hash match is
      confirmed against the row, so the map needs no more than hashes to be exact;
    - `categories`: per category, its messages and envelope bytes (size retention) and a floor
      seq below which it has no message (so retention does not reread what it has passed).
    Invariants:
    - count, bytes, last_seq, ids and categories mirror the file: changed only after a
      transaction that changed them has committed (append inserts into ids first, to see
      duplicates within the batch, and takes them out again if the batch fails);
    - last_seq never goes back: it is the larger of max(seq) and meta "last_seq", which prune
      writes whenever it deletes, in case it deleted the newest messages;
    - no transaction stays open between calls: each failure path rolls back before it returns;
    - while a scan runs (`scanning`), nothing writes through this connection.  */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <czmq.h>
#include <sodium.h>
#include <sqlite3.h>

#include "vdp_errors.h"
#include "vdb_checkpoint.h"
#include "vdb_log.h"
#include "vdb_store.h"
#include "vedetta.h"

#define S_SCHEMA_VERSION 2
#define S_BUSY_TIMEOUT   5000 // ms another process may hold the write lock before we fail
//  Page size of a new file. Appends write whole pages to the WAL and again to the database at
//  each checkpoint, and SQLite's cost is per page as much as per byte: 32 KiB pages took a
//  batch of 256 x 1 KiB from ~8.7 to ~4.9 us of CPU a message against 4 KiB (16 KiB: ~5.3,
//  64 KiB: ~5.2, the table alone). Existing files keep the size they were made with.
#define S_PAGE_SIZE 32768
//  Ask the checkpoint thread to copy the WAL into the database once a commit leaves it holding
//  this many bytes: fewer checkpoints, each an fsync of the main file, under steady appends.
#define S_CHECKPOINT_BYTES (32 * 1024 * 1024)
//  If the WAL still grows to this many bytes (the thread keeps failing or falls behind), the
//  committing thread checkpoints itself, waiting for it: the WAL stays bounded.
#define S_WAL_HARD_BYTES (128 * 1024 * 1024)
//  After a checkpoint, truncate a WAL that a burst grew beyond this (bytes); below it the file
//  is reused in place, which is cheaper than growing it again.
#define S_WAL_LIMIT (64 * 1024 * 1024)
#define S_XSTR(x)   #x
#define S_STR(x)    S_XSTR(x) // a macro's value as a string literal
#define S_IDS_MIN   1024      // slots of a new id map; it doubles when 3/4 full

//  One slot of the id map: seq 0 is empty (seqs start at 1).
typedef struct {
    uint64_t hash;
    uint64_t seq;
} s_slot_t;

//  Open addressing with linear probing; capacity a power of two.
typedef struct {
    s_slot_t *slots;
    size_t capacity;
    size_t used;
} s_ids_t;

//  A category's share of the store, and what a running prune would change in it.
typedef struct {
    uint64_t count;
    uint64_t bytes;
    uint64_t floor; // no message of this category has a lower seq
    uint64_t doomed_count;
    uint64_t doomed_bytes;
    uint64_t next_floor; // the floor once the running prune commits; 0: unchanged
} s_category_t;

//  A row a running prune deletes: what to take out of the maps once it commits.
typedef struct {
    uint64_t hash;
    uint64_t seq;
    uint64_t len;
    s_category_t *category;
} s_doomed_t;

struct vdb_store_t {
    sqlite3 *db; // owned
    int lock_fd; // holds the flock that keeps other brokers out; -1 if none
    vdb_checkpoint_t *checkpoint;
    int checkpoint_pages; // WAL frames past which the thread is asked to checkpoint
    int wal_hard_pages;   // ...and past which the committing thread checkpoints itself
    sqlite3_stmt *begin;
    sqlite3_stmt *commit;
    sqlite3_stmt *rollback;
    sqlite3_stmt *insert;
    sqlite3_stmt *by_seq; // confirms a hash match
    sqlite3_stmt *scan;
    sqlite3_stmt *row_at; // the first row at or after a seq: seq_at's binary search
    sqlite3_stmt *cursor_get;
    sqlite3_stmt *cursor_set;
    sqlite3_stmt *delete_seq;
    uint8_t id_key[crypto_shorthash_KEYBYTES]; // random per open: the map is rebuilt anyway
    s_ids_t ids;
    zhashx_t *categories; // name -> s_category_t, owned
    s_doomed_t *doomed;   // prune's rows, reused
    size_t doomed_count;
    size_t doomed_capacity;
    uint64_t last_seq;
    uint64_t count;
    uint64_t bytes;
    int scanning; // a scan callback is running
    int writing;  // between append_begin and append_end: only append_write uses the connection
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
            rc = sqlite3_exec(db,
                              "INSERT INTO meta (name, value) VALUES ('schema_version', " S_STR(
                                  S_SCHEMA_VERSION) ")",
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
        if (has_meta && version > 0 && version < S_SCHEMA_VERSION)
            vdp_errorf(err, err_size, VD_OK,
                       "schema version %" PRId64 " not supported (this broker reads %d): a store "
                       "made by an earlier version; move it aside to start a new one",
                       version, S_SCHEMA_VERSION);
        else if (has_meta)
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

//  --------------------------------------------------------------------------------------------
//  The id map: (sender, id) -> seq, by a keyed hash. Keyed (SipHash, a random key per open) so
//  that a publisher cannot choose ids that collide and make every lookup confirm many rows.

//  Hashes sender '\0' id (no two pairs give the same bytes) in blocks of a stack buffer, each
//  full block folded into the first 8 bytes of the next, so any length hashes the same way.
typedef struct {
    uint8_t block[256];
    size_t used;
    const uint8_t *key;
} s_hasher_t;

static void
s_hasher_feed(s_hasher_t *hasher, const void *data, size_t len)
{
    const uint8_t *bytes = data;
    while (len > 0) {
        if (hasher->used == sizeof hasher->block) {
            uint8_t folded[crypto_shorthash_BYTES];
            crypto_shorthash(folded, hasher->block, hasher->used, hasher->key);
            memcpy(hasher->block, folded, sizeof folded);
            hasher->used = sizeof folded;
        }
        size_t room = sizeof hasher->block - hasher->used;
        size_t n = len < room ? len : room;
        memcpy(hasher->block + hasher->used, bytes, n);
        hasher->used += n;
        bytes += n;
        len -= n;
    }
}

static uint64_t
s_id_hash(const vdb_store_t *self, const char *sender, const char *id)
{
    s_hasher_t hasher = { .used = 0, .key = self->id_key };
    s_hasher_feed(&hasher, sender, strlen(sender) + 1);
    s_hasher_feed(&hasher, id, strlen(id));
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, hasher.block, hasher.used, self->id_key);
    uint64_t hash;
    memcpy(&hash, out, sizeof hash);
    return hash;
}

static int
s_ids_grow(s_ids_t *ids)
{
    size_t capacity = ids->capacity ? ids->capacity * 2 : S_IDS_MIN;
    s_slot_t *slots = calloc(capacity, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < ids->capacity; i++) {
        if (!ids->slots[i].seq)
            continue;
        size_t at = ids->slots[i].hash & (capacity - 1);
        while (slots[at].seq)
            at = (at + 1) & (capacity - 1);
        slots[at] = ids->slots[i];
    }
    free(ids->slots);
    ids->slots = slots;
    ids->capacity = capacity;
    return 0;
}

//  Adds hash -> seq (a hash may appear more than once). Returns 0, or -1 out of memory.
static int
s_ids_put(s_ids_t *ids, uint64_t hash, uint64_t seq)
{
    assert(seq > 0);
    if ((ids->used + 1) * 4 > ids->capacity * 3 && s_ids_grow(ids) != 0)
        return -1;
    size_t mask = ids->capacity - 1;
    size_t at = hash & mask;
    while (ids->slots[at].seq)
        at = (at + 1) & mask;
    ids->slots[at] = (s_slot_t){ .hash = hash, .seq = seq };
    ids->used++;
    return 0;
}

//  Takes hash -> seq out, if there; shifts the rest of its run back so no probe stops early.
static void
s_ids_remove(s_ids_t *ids, uint64_t hash, uint64_t seq)
{
    if (!ids->capacity)
        return;
    size_t mask = ids->capacity - 1;
    size_t hole = hash & mask;
    while (ids->slots[hole].seq && (ids->slots[hole].seq != seq || ids->slots[hole].hash != hash))
        hole = (hole + 1) & mask;
    if (!ids->slots[hole].seq)
        return;
    for (size_t next = (hole + 1) & mask; ids->slots[next].seq; next = (next + 1) & mask) {
        size_t home = ids->slots[next].hash & mask;
        //  A slot may move back into the hole only if its home is not in (hole, next].
        int stays = hole <= next ? hole < home && home <= next : hole < home || home <= next;
        if (!stays) {
            ids->slots[hole] = ids->slots[next];
            hole = next;
        }
    }
    ids->slots[hole] = (s_slot_t){ 0 };
    ids->used--;
}

//  --------------------------------------------------------------------------------------------
//  Categories

static void
s_category_free(void **item)
{
    free(*item);
    *item = NULL;
}

//  The entry of `name`, created (empty) if new. NULL out of memory.
static s_category_t *
s_category_get(vdb_store_t *self, const char *name)
{
    s_category_t *category = zhashx_lookup(self->categories, name);
    if (category)
        return category;
    category = calloc(1, sizeof *category);
    if (category && zhashx_insert(self->categories, name, category) != 0) {
        free(category);
        category = NULL;
    }
    return category;
}

//  Forgets categories left with no message (categories are names senders choose).
static void
s_categories_sweep(vdb_store_t *self)
{
    zlistx_t *names = zhashx_keys(self->categories);
    if (!names)
        return; // kept: an empty entry costs a few bytes and is reused
    for (const char *name = zlistx_first(names); name; name = zlistx_next(names)) {
        const s_category_t *category = zhashx_lookup(self->categories, name);
        if (category && category->count == 0)
            zhashx_delete(self->categories, name);
    }
    zlistx_destroy(&names);
}

/*  Builds the running totals and the maps in one pass over the table (length() of a blob reads
    its size from the record header, not the bytes), then reads the persisted high-water seq.
    The cost of opening a large store: about one read of its table.  */
static int
s_load(vdb_store_t *self)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(
        self->db, "SELECT seq, sender, id, category, length(env) FROM messages", -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        uint64_t seq = (uint64_t)sqlite3_column_int64(stmt, 0);
        const char *sender = (const char *)sqlite3_column_text(stmt, 1);
        const char *id = (const char *)sqlite3_column_text(stmt, 2);
        const char *name = (const char *)sqlite3_column_text(stmt, 3);
        uint64_t len = (uint64_t)sqlite3_column_int64(stmt, 4);
        s_category_t *category = name ? s_category_get(self, name) : NULL;
        if (!sender || !id || !category ||
            s_ids_put(&self->ids, s_id_hash(self, sender, id), seq) != 0) {
            rc = SQLITE_NOMEM;
            break;
        }
        category->count++;
        category->bytes += len;
        self->count++;
        self->bytes += len;
        if (seq > self->last_seq)
            self->last_seq = seq;
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE)
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
        rc = s_prepare(self->db, "SELECT sender, id, accepted_at, tlp FROM messages WHERE seq = ?",
                       &self->by_seq);
    if (rc == SQLITE_OK)
        rc = s_prepare(self->db,
                       "SELECT seq, accepted_at, sender, id, topic, category, tlp, expires, key, "
                       "recipients, env FROM messages WHERE seq > ? ORDER BY seq LIMIT ?",
                       &self->scan);
    if (rc == SQLITE_OK)
        rc = s_prepare(self->db,
                       "SELECT seq, accepted_at FROM messages WHERE seq >= ? ORDER BY seq LIMIT 1",
                       &self->row_at);
    if (rc == SQLITE_OK)
        rc = s_prepare(self->db, "SELECT seq FROM cursors WHERE key = ? AND name = ?",
                       &self->cursor_get);
    if (rc == SQLITE_OK)
        rc = s_prepare(self->db,
                       "INSERT INTO cursors (key, name, seq, updated_at) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (key, name) DO UPDATE SET seq = excluded.seq, "
                       "updated_at = excluded.updated_at",
                       &self->cursor_set);
    if (rc == SQLITE_OK)
        rc = s_prepare(self->db, "DELETE FROM messages WHERE seq = ?", &self->delete_seq);
    return rc;
}

//  Sets the connection up: exclusive lock, page size of a new file, WAL, sync policy.
static int
s_configure(vdb_store_t *self, const char *path, vdb_sync_t sync, char *err, size_t err_size)
{
    static const char *sync_pragma[] = {
        [VDB_SYNC_FULL] = "PRAGMA synchronous = FULL",
        [VDB_SYNC_NORMAL] = "PRAGMA synchronous = NORMAL",
        [VDB_SYNC_OFF] = "PRAGMA synchronous = OFF",
    };
    //  Normal locking with WAL's shared-memory index: the checkpoint thread's connection works
    //  beside this one. Locks are taken per transaction, and a transaction is a whole batch.
    //  The page size only takes on a file that has no page yet, so it comes before WAL, which
    //  writes the header.
    int rc = sqlite3_exec(self->db, "PRAGMA page_size = " S_STR(S_PAGE_SIZE), NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        s_describe(self->db, rc, err, err_size);
        return rc;
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
        return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;

    //  The checkpoint threshold is in pages: of this file's size, which an older file may not
    //  share with S_PAGE_SIZE.
    int64_t page_size = 0;
    rc = s_query_int(self->db, "PRAGMA page_size", NULL, &page_size);
    if (rc == SQLITE_OK && page_size <= 0)
        rc = SQLITE_CORRUPT;
    //  No checkpoint in line: the WAL hook asks the checkpoint thread instead (vdb_checkpoint.h).
    char pragmas[256];
    if (rc == SQLITE_OK) {
        self->checkpoint_pages = (int)(S_CHECKPOINT_BYTES / page_size);
        self->wal_hard_pages = (int)(S_WAL_HARD_BYTES / page_size);
        snprintf(pragmas, sizeof pragmas,
                 "%s; PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = %d",
                 sync_pragma[sync], S_WAL_LIMIT);
        rc = sqlite3_exec(self->db, pragmas, NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK)
        s_describe(self->db, rc, err, err_size);
    else
        self->checkpoint = vdb_checkpoint_new(path, sync_pragma[sync], err, err_size);
    return rc != SQLITE_OK ? rc : self->checkpoint ? SQLITE_OK : SQLITE_CANTOPEN;
}

/*  SQLite's WAL hook: runs after every commit of this connection, on the committing thread,
    with the frames now in the WAL. The commit has happened whatever it returns, so it returns
    SQLITE_OK always (an error would make the commit look failed).  */
static int
s_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    vdb_store_t *self = arg;
    if (frames >= self->wal_hard_pages) {
        //  Waits for the thread's pass (busy timeout), then copies everything.
        int wal_frames = -1, copied = -1;
        int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_FULL, &wal_frames, &copied);
        vdb_log_warning("vdb_store: the WAL reached %d pages; checkpointed in line rc=%d "
                        "copied=%d/%d",
                        frames, rc, copied, wal_frames);
    } else if (frames >= self->checkpoint_pages)
        vdb_checkpoint_request(self->checkpoint);
    return SQLITE_OK;
}

/*  Takes an exclusive flock on the store file, which SQLite's own locks (fcntl) do not see:
    one broker per store. The descriptor stays open until after SQLite closes the file, as
    closing any descriptor of a file drops the process's fcntl locks on it.  */
static int
s_lock_file(vdb_store_t *self, const char *path, char *err, size_t err_size)
{
    self->lock_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (self->lock_fd < 0)
        return vdp_errorf(err, err_size, VD_ESTORE, "%s: %s", path, strerror(errno));
    if (flock(self->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int code = errno;
        return vdp_errorf(err, err_size, VD_ESTORE, "%s: %s", path,
                          code == EWOULDBLOCK ? "in use by another broker" : strerror(code));
    }
    return VD_OK;
}

vdb_store_t *
vdb_store_open(const char *path, vdb_sync_t sync, char *err, size_t err_size)
{
    if (!path || !*path || (int)sync < 0 || sync > VDB_SYNC_OFF) {
        vdp_errorf(err, err_size, VD_OK, "invalid argument");
        return NULL;
    }
    if (sodium_init() < 0) {
        vdp_errorf(err, err_size, VD_OK, "libsodium failed to initialise");
        return NULL;
    }
    vdb_store_t *self = calloc(1, sizeof *self);
    if (!self) {
        vdp_errorf(err, err_size, VD_OK, "out of memory");
        return NULL;
    }
    self->lock_fd = -1;
    randombytes_buf(self->id_key, sizeof self->id_key);
    self->categories = zhashx_new();
    if (!self->categories) {
        vdp_errorf(err, err_size, VD_OK, "out of memory");
        goto err_close;
    }
    zhashx_set_destructor(self->categories, s_category_free);
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
    if (s_lock_file(self, path, err, err_size) != VD_OK)
        goto err_close;
    if (s_configure(self, path, sync, err, err_size) != SQLITE_OK)
        goto err_close;
    sqlite3_wal_hook(self->db, s_wal_hook, self);
    if (s_schema_check(self->db, err, err_size) != VD_OK)
        goto err_close;
    rc = s_load(self);
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
    assert(!self->scanning && !self->writing);
    //  First, so that this connection is the last and its close checkpoints the WAL.
    vdb_checkpoint_destroy(&self->checkpoint);
    sqlite3_finalize(self->delete_seq);
    sqlite3_finalize(self->cursor_set);
    sqlite3_finalize(self->cursor_get);
    sqlite3_finalize(self->row_at);
    sqlite3_finalize(self->scan);
    sqlite3_finalize(self->by_seq);
    sqlite3_finalize(self->insert);
    sqlite3_finalize(self->rollback);
    sqlite3_finalize(self->commit);
    sqlite3_finalize(self->begin);
    //  Every statement is finalized, so close cannot be busy; the last connection to close
    //  checkpoints the WAL into the database and removes it.
    int rc = sqlite3_close(self->db);
    assert(rc == SQLITE_OK);
    (void)rc;
    if (self->lock_fd >= 0)
        close(self->lock_fd);
    zhashx_destroy(&self->categories);
    free(self->ids.slots);
    free(self->doomed);
    free(self);
    *self_p = NULL;
}

vdb_checkpoint_t *
vdb_store_checkpointer(vdb_store_t *self)
{
    assert(self);
    return self->checkpoint;
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

/*  Whether the map entry at seq `seq` is (sender, id): a stored row is read and compared; a
    seq above last_seq belongs to the batch being appended (`batch`, in seq order), whose rows
    are not written yet, and is compared with its message there. Returns SQLITE_ROW (it is),
    SQLITE_DONE (it is not) or an SQLite error; fills what is not NULL on SQLITE_ROW.  */
static int
s_same(vdb_store_t *self,
       uint64_t seq,
       const char *sender,
       const char *id,
       const vdb_store_msg_t *batch,
       size_t batch_count,
       int64_t *accepted_at,
       vdp_tlp_t *tlp)
{
    if (seq > self->last_seq) {
        size_t low = 0, high = batch_count;
        while (low < high) { // the first message whose seq is not below `seq`
            size_t mid = low + (high - low) / 2;
            if (batch[mid].seq < seq)
                low = mid + 1;
            else
                high = mid;
        }
        const vdb_store_msg_t *msg = low < batch_count && batch[low].seq == seq ? &batch[low] : 0;
        if (!msg || strcmp(msg->sender, sender) != 0 || strcmp(msg->id, id) != 0)
            return SQLITE_DONE;
        if (accepted_at)
            *accepted_at = msg->accepted_at;
        if (tlp)
            *tlp = msg->tlp;
        return SQLITE_ROW;
    }
    sqlite3_stmt *stmt = self->by_seq;
    sqlite3_bind_int64(stmt, 1, (sqlite3_int64)seq);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        const char *row_sender = (const char *)sqlite3_column_text(stmt, 0);
        const char *row_id = (const char *)sqlite3_column_text(stmt, 1);
        bool same =
            row_sender && row_id && strcmp(row_sender, sender) == 0 && strcmp(row_id, id) == 0;
        if (same && accepted_at)
            *accepted_at = sqlite3_column_int64(stmt, 2);
        if (same && tlp)
            *tlp = (vdp_tlp_t)sqlite3_column_int(stmt, 3);
        rc = same ? SQLITE_ROW : SQLITE_DONE;
    }
    sqlite3_reset(stmt);
    return rc;
}

/*  Finds (sender, id), whose hash is `hash`: each map entry with that hash is confirmed against
    its row (or its message in `batch`, see s_same), so a hash collision is never taken for the
    message. Fills what is not NULL. Returns SQLITE_ROW (found), SQLITE_DONE (not stored) or an
    SQLite error.  */
static int
s_find(vdb_store_t *self,
       uint64_t hash,
       const char *sender,
       const char *id,
       const vdb_store_msg_t *batch,
       size_t batch_count,
       uint64_t *seq,
       int64_t *accepted_at,
       vdp_tlp_t *tlp)
{
    const s_ids_t *ids = &self->ids;
    if (!ids->capacity)
        return SQLITE_DONE;
    size_t mask = ids->capacity - 1;
    for (size_t at = hash & mask; ids->slots[at].seq; at = (at + 1) & mask) {
        if (ids->slots[at].hash != hash)
            continue;
        int rc = s_same(self, ids->slots[at].seq, sender, id, batch, batch_count, accepted_at, tlp);
        if (rc == SQLITE_ROW && seq)
            *seq = ids->slots[at].seq;
        if (rc != SQLITE_DONE)
            return rc;
    }
    return SQLITE_DONE;
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

static void
s_unreserve(vdb_store_t *self, const vdb_store_msg_t *msgs, size_t count)
{
    for (size_t i = 0; i < count; i++)
        s_ids_remove(&self->ids, s_id_hash(self, msgs[i].sender, msgs[i].id), msgs[i].seq);
}

/*  Puts each message's id into the map, after checking it against the stored rows and the
    batch's earlier messages, and makes sure its category entry exists (so that counting after
    the commit cannot fail). On failure the ids put are taken out again. Returns VD_OK;
    VD_EINVAL with `err` for a duplicate; VD_ESTORE.  */
static int
s_reserve(vdb_store_t *self, const vdb_store_msg_t *msgs, size_t count, char *err, size_t err_size)
{
    for (size_t i = 0; i < count; i++) {
        const vdb_store_msg_t *msg = &msgs[i];
        uint64_t hash = s_id_hash(self, msg->sender, msg->id);
        int rc = s_find(self, hash, msg->sender, msg->id, msgs, i, NULL, NULL, NULL);
        if (rc == SQLITE_DONE &&
            (!s_category_get(self, msg->category) || s_ids_put(&self->ids, hash, msg->seq) != 0))
            rc = SQLITE_NOMEM;
        if (rc == SQLITE_DONE)
            continue;
        if (rc == SQLITE_ROW)
            vdp_errorf(err, err_size, VD_OK, "message %zu: duplicate (sender, id) %s/%s", i,
                       msg->sender, msg->id);
        else if (rc == SQLITE_NOMEM)
            vdp_errorf(err, err_size, VD_OK, "out of memory");
        else
            s_describe(self->db, rc, err, err_size);
        s_unreserve(self, msgs, i);
        return rc == SQLITE_ROW ? VD_EINVAL : VD_ESTORE;
    }
    return VD_OK;
}

int
vdb_store_append_begin(
    vdb_store_t *self, const vdb_store_msg_t *msgs, size_t count, char *err, size_t err_size)
{
    assert(self);
    assert(!self->scanning && !self->writing);
    if (count > 0 && !msgs) {
        vdp_errorf(err, err_size, VD_OK, "invalid argument");
        return VD_EINVAL;
    }
    int rc = s_validate(self, msgs, count, err, err_size);
    if (rc == VD_OK)
        rc = s_reserve(self, msgs, count, err, err_size);
    self->writing = rc == VD_OK;
    return rc;
}

/*  The one part of an append that may run on another thread: it uses only the connection and
    its statements, which nothing else uses meanwhile (see vdb_store.h).  */
int
vdb_store_append_write(
    vdb_store_t *self, const vdb_store_msg_t *msgs, size_t count, char *err, size_t err_size)
{
    assert(self && self->writing);
    if (count == 0)
        return VD_OK;
    int rc = s_run(self->begin);
    for (size_t i = 0; i < count && rc == SQLITE_OK; i++)
        rc = s_insert(self, &msgs[i]);
    sqlite3_clear_bindings(self->insert);
    //  The commit is where FULL sync waits for the disk: one fsync of the WAL for the batch.
    if (rc == SQLITE_OK)
        rc = s_run(self->commit);
    if (rc == SQLITE_OK)
        return VD_OK;
    if (rc == SQLITE_NOMEM)
        vdp_errorf(err, err_size, VD_OK, "out of memory");
    else
        s_describe(self->db, rc, err, err_size);
    s_rollback(self);
    return VD_ESTORE;
}

void
vdb_store_append_end(vdb_store_t *self, const vdb_store_msg_t *msgs, size_t count, bool written)
{
    assert(self && self->writing);
    self->writing = 0;
    if (!written) {
        s_unreserve(self, msgs, count);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        s_category_t *category = zhashx_lookup(self->categories, msgs[i].category);
        category->count++;
        category->bytes += msgs[i].raw_len;
        self->bytes += msgs[i].raw_len;
    }
    self->count += count;
    if (count > 0)
        self->last_seq = msgs[count - 1].seq;
}

int
vdb_store_append(
    vdb_store_t *self, const vdb_store_msg_t *msgs, size_t count, char *err, size_t err_size)
{
    int rc = vdb_store_append_begin(self, msgs, count, err, err_size);
    if (rc != VD_OK)
        return rc;
    rc = vdb_store_append_write(self, msgs, count, err, err_size);
    vdb_store_append_end(self, msgs, count, rc == VD_OK);
    return rc;
}

bool
vdb_store_may_hold(const vdb_store_t *self, const char *sender, const char *id)
{
    assert(self);
    assert(sender && id);
    const s_ids_t *ids = &self->ids;
    if (!ids->capacity)
        return false;
    uint64_t hash = s_id_hash(self, sender, id);
    size_t mask = ids->capacity - 1;
    for (size_t at = hash & mask; ids->slots[at].seq; at = (at + 1) & mask)
        if (ids->slots[at].hash == hash)
            return true;
    return false;
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
    //  A new message, the common case, is answered from memory: no SQLite call at all.
    assert(!self->writing);
    int rc = s_find(self, s_id_hash(self, sender, id), sender, id, NULL, 0, seq, accepted_at, tlp);
    if (rc == SQLITE_ROW)
        return VD_OK;
    if (rc == SQLITE_DONE)
        return VD_ENOTFOUND;
    vdb_log_error("vdb_store: lookup failed: %s", sqlite3_errmsg(self->db));
    return VD_ESTORE;
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
    assert(!self->writing);
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

//  The first row at or after seq `from`: SQLITE_ROW with *seq and *accepted_at, SQLITE_DONE if
//  there is none, or an error.
static int
s_row_at(vdb_store_t *self, uint64_t from, uint64_t *seq, int64_t *accepted_at)
{
    sqlite3_stmt *stmt = self->row_at;
    sqlite3_bind_int64(stmt, 1, (sqlite3_int64)from);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *seq = (uint64_t)sqlite3_column_int64(stmt, 0);
        *accepted_at = sqlite3_column_int64(stmt, 1);
    }
    sqlite3_reset(stmt);
    return rc;
}

/*  The lowest seq whose accepted_at is at or after `time_ms`, by binary search over seq: the
    broker stamps accepted_at and seq together, in order, so accepted_at grows with seq while
    its clock does not step back. Each probe is one descent of the table's B-tree (O(log n)),
    at most 64 of them. Returns SQLITE_ROW and *found, SQLITE_DONE if none, or an error.  */
static int
s_first_at(vdb_store_t *self, int64_t time_ms, uint64_t *found)
{
    uint64_t low = 0;
    uint64_t high = self->last_seq; // the answer, if any, is in [low, high]
    int result = SQLITE_DONE;
    while (low <= high) {
        uint64_t mid = low + (high - low) / 2;
        uint64_t seq = 0;
        int64_t accepted_at = 0;
        int rc = s_row_at(self, mid, &seq, &accepted_at);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return rc;
        if (rc == SQLITE_ROW && accepted_at < time_ms) {
            low = seq + 1;
            continue;
        }
        if (rc == SQLITE_ROW) {
            *found = seq;
            result = SQLITE_ROW;
        }
        if (mid == 0)
            break;
        high = mid - 1; // nothing at or after mid, or a match there: look below it
    }
    return result;
}

int
vdb_store_seq_at(vdb_store_t *self, int64_t time_ms, uint64_t *seq)
{
    assert(!self->writing);
    assert(self);
    assert(seq);
    int rc = s_first_at(self, time_ms, seq);
    if (rc == SQLITE_ROW)
        return VD_OK;
    if (rc == SQLITE_DONE)
        return VD_ENOTFOUND;
    vdb_log_error("vdb_store: seq_at failed: %s", sqlite3_errmsg(self->db));
    return VD_ESTORE;
}

//  Binds one cursor to the upsert statement and runs it. Returns the SQLite code.
static int
s_cursor_write(vdb_store_t *self, const char *key, const char *name, uint64_t seq, int64_t now)
{
    assert(key && name && seq <= INT64_MAX);
    sqlite3_stmt *stmt = self->cursor_set;
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, (sqlite3_int64)seq);
    sqlite3_bind_int64(stmt, 4, now);
    int rc = s_run(stmt);
    sqlite3_clear_bindings(stmt);
    return rc;
}

int
vdb_store_cursor_get(vdb_store_t *self, const char *key, const char *name, uint64_t *seq)
{
    assert(!self->writing);
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
    assert(!self->scanning && !self->writing);
    //  One transaction (and under FULL, one fsync) per call: callers coalesce acknowledgements,
    //  or write many at once with vdb_store_cursor_set_many.
    int rc = s_cursor_write(self, key, name, seq, s_now_ms());
    if (rc != SQLITE_OK) {
        char why[256];
        s_describe(self->db, rc, why, sizeof why);
        vdb_log_error("vdb_store: cursor_set failed: %s", why);
        return VD_ESTORE;
    }
    return VD_OK;
}

int
vdb_store_cursor_set_many(vdb_store_t *self, const vdb_store_cursor_t *cursors, size_t count)
{
    assert(self);
    assert(!self->scanning && !self->writing);
    assert(cursors || count == 0);
    if (count == 0)
        return VD_OK;
    int64_t now = s_now_ms();
    int rc = s_run(self->begin);
    for (size_t i = 0; rc == SQLITE_OK && i < count; i++)
        rc = s_cursor_write(self, cursors[i].key, cursors[i].name, cursors[i].seq, now);
    if (rc == SQLITE_OK)
        rc = s_run(self->commit); // one fsync under FULL for them all
    if (rc != SQLITE_OK) {
        char why[256];
        s_describe(self->db, rc, why, sizeof why);
        vdb_log_error("vdb_store: cursor_set_many (%zu cursors) failed: %s", count, why);
        s_rollback(self);
        return VD_ESTORE;
    }
    return VD_OK;
}

//  --------------------------------------------------------------------------------------------
//  Retention. Each rule reads candidate rows in one statement, records those it deletes (to
//  take them out of the maps once the transaction commits), then deletes them by seq, so the
//  next rule no longer sees them.

typedef struct {
    uint64_t seq;
    int64_t accepted_at;
    s_category_t *category;
    uint64_t len;
    const char *sender;
    const char *id;
} s_row_t;

//  Decides on one row: 1 delete it, 0 keep it, -1 stop reading.
typedef int(s_rule_fn)(const s_row_t *row, void *arg);

//  Every rule's query starts with these columns, in this order.
#define S_RULE_COLUMNS "SELECT seq, accepted_at, category, length(env), sender, id FROM messages "

static int
s_doom(vdb_store_t *self, const s_row_t *row)
{
    if (self->doomed_count == self->doomed_capacity) {
        size_t capacity = self->doomed_capacity ? 2 * self->doomed_capacity : 256;
        s_doomed_t *more = realloc(self->doomed, capacity * sizeof *more);
        if (!more)
            return SQLITE_NOMEM;
        self->doomed = more;
        self->doomed_capacity = capacity;
    }
    self->doomed[self->doomed_count++] = (s_doomed_t){
        .hash = s_id_hash(self, row->sender, row->id),
        .seq = row->seq,
        .len = row->len,
        .category = row->category,
    };
    row->category->doomed_count++;
    row->category->doomed_bytes += row->len;
    return SQLITE_OK;
}

//  Runs one rule: `sql` (S_RULE_COLUMNS ...) with ?1 and ?2 bound to `a` and `b` where it has
//  them, `rule` on each row, then deletes what it chose. Returns the SQLite code.
static int
s_prune_rule(vdb_store_t *self, const char *sql, int64_t a, int64_t b, s_rule_fn *rule, void *arg)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(self->db, sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return rc;
    if (sqlite3_bind_parameter_count(stmt) >= 1)
        sqlite3_bind_int64(stmt, 1, a);
    if (sqlite3_bind_parameter_count(stmt) >= 2)
        sqlite3_bind_int64(stmt, 2, b);
    size_t first = self->doomed_count;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(stmt, 2);
        s_row_t row = {
            .seq = (uint64_t)sqlite3_column_int64(stmt, 0),
            .accepted_at = sqlite3_column_int64(stmt, 1),
            .category = name ? zhashx_lookup(self->categories, name) : NULL,
            .len = (uint64_t)sqlite3_column_int64(stmt, 3),
            .sender = (const char *)sqlite3_column_text(stmt, 4),
            .id = (const char *)sqlite3_column_text(stmt, 5),
        };
        if (!row.category || !row.sender || !row.id) {
            rc = SQLITE_CORRUPT; // every stored row was counted at open or append
            break;
        }
        int verdict = rule(&row, arg);
        if (verdict < 0) {
            rc = SQLITE_DONE;
            break;
        }
        if (verdict > 0 && (rc = s_doom(self, &row)) != SQLITE_OK)
            break;
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE)
        return rc;
    rc = SQLITE_OK;
    for (size_t i = first; rc == SQLITE_OK && i < self->doomed_count; i++) {
        sqlite3_bind_int64(self->delete_seq, 1, (sqlite3_int64)self->doomed[i].seq);
        rc = s_run(self->delete_seq);
    }
    return rc;
}

//  Age: what a rule needs to know, and what it learns (the lowest seq of `category` it keeps).
typedef struct {
    const s_category_t *category; // NULL: every category
    int64_t before;
    uint64_t kept_low; // 0: none kept
} s_age_t;

static int
s_age_rule(const s_row_t *row, void *arg)
{
    s_age_t *age = arg;
    if (age->category && row->category != age->category)
        return 0;
    if (row->accepted_at < age->before)
        return 1;
    if (!age->kept_low) // stamped after `before` below the boundary: the clock stepped back
        age->kept_low = row->seq;
    return 0;
}

static int
s_doom_all(const s_row_t *row, void *arg)
{
    (void)row;
    (void)arg;
    return 1;
}

//  Where a category's next scan may start: its floor, or the one the running prune found.
static uint64_t
s_floor(const s_category_t *category)
{
    return category->next_floor ? category->next_floor : category->floor;
}

/*  Age retention: messages accepted before `before`. The rows below the first seq stamped at
    or after it (binary search, no index) are read and those stamped before deleted; for one
    category, from where its last pass stopped. After a clock step back, a message stamped
    before `before` but after that boundary waits for a later pass.  */
static int
s_prune_age(vdb_store_t *self, s_category_t *category, int64_t before)
{
    uint64_t boundary = 0;
    int rc = s_first_at(self, before, &boundary);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return rc;
    uint64_t last = rc == SQLITE_ROW ? boundary - 1 : self->last_seq; // read up to here
    s_age_t age = { .category = category, .before = before };
    if (!category)
        return s_prune_rule(self, S_RULE_COLUMNS "WHERE seq <= ?1 ORDER BY seq", (int64_t)last, 0,
                            s_age_rule, &age);
    uint64_t floor = s_floor(category);
    if (floor > last)
        return SQLITE_OK;
    rc = s_prune_rule(self, S_RULE_COLUMNS "WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq",
                      (int64_t)floor, (int64_t)last, s_age_rule, &age);
    if (rc == SQLITE_OK)
        category->next_floor = age.kept_low ? age.kept_low : last + 1;
    return rc;
}

//  Size: the oldest messages of `category` until `need` bytes are freed.
typedef struct {
    const s_category_t *category;
    uint64_t need;
    uint64_t freed;
    uint64_t last; // the newest seq deleted
} s_size_t;

static int
s_size_rule(const s_row_t *row, void *arg)
{
    s_size_t *size = arg;
    if (size->freed >= size->need)
        return -1;
    if (row->category != size->category)
        return 0;
    size->freed += row->len;
    size->last = row->seq;
    return 1;
}

/*  Size retention for one category: keeps its newest messages whose envelopes fit in
    `max_bytes`, i.e. deletes its oldest until they do. The running totals say how much must go
    before anything is read; the rows are read in seq order from the category's floor, so each
    pass reads what it deletes and the other categories' rows in between, once.  */
static int
s_prune_size(vdb_store_t *self, s_category_t *category, uint64_t max_bytes)
{
    uint64_t held = category->bytes - category->doomed_bytes;
    if (held <= max_bytes)
        return SQLITE_OK;
    s_size_t size = { .category = category, .need = held - max_bytes };
    int rc = s_prune_rule(self, S_RULE_COLUMNS "WHERE seq >= ?1 ORDER BY seq",
                          (int64_t)s_floor(category), 0, s_size_rule, &size);
    if (rc == SQLITE_OK && size.last)
        category->next_floor = size.last + 1;
    return rc;
}

//  Size retention for every category (their names are in memory: no scan to find them).
static int
s_prune_size_all(vdb_store_t *self, uint64_t max_bytes)
{
    size_t count = zhashx_size(self->categories);
    if (count == 0)
        return SQLITE_OK;
    s_category_t **all = malloc(count * sizeof *all);
    if (!all)
        return SQLITE_NOMEM;
    size_t n = 0;
    for (s_category_t *category = zhashx_first(self->categories); category && n < count;
         category = zhashx_next(self->categories))
        all[n++] = category;
    int rc = SQLITE_OK;
    for (size_t i = 0; rc == SQLITE_OK && i < n; i++)
        rc = s_prune_size(self, all[i], max_bytes);
    free(all);
    return rc;
}

static int
s_prune_steps(vdb_store_t *self,
              s_category_t *category,
              int64_t before_ms,
              uint64_t max_bytes,
              int64_t now_ms)
{
    int rc = SQLITE_OK;
    if (before_ms > 0)
        rc = s_prune_age(self, category, before_ms);
    //  Expired before size: what has expired goes anyway, and must not count against the size
    //  limit and push out live messages first. "expires > 0" repeats the partial index's
    //  condition, which is what lets SQLite use it.
    if (rc == SQLITE_OK && now_ms > 0)
        rc = s_prune_rule(self, S_RULE_COLUMNS "WHERE expires > 0 AND expires <= ?1", now_ms, 0,
                          s_doom_all, NULL);
    if (rc == SQLITE_OK && max_bytes > 0 && category)
        rc = s_prune_size(self, category, max_bytes);
    else if (rc == SQLITE_OK && max_bytes > 0)
        rc = s_prune_size_all(self, max_bytes);
    //  The newest messages may have gone: remember the high-water seq for the next open.
    if (rc == SQLITE_OK && self->doomed_count > 0) {
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

//  Ends a prune: if it succeeded (`ok`: committed, or found nothing to delete), takes the
//  deleted rows out of the maps and totals and moves the floors; either way, forgets what the
//  prune had planned.
static void
s_prune_finish(vdb_store_t *self, int ok)
{
    for (size_t i = 0; ok && i < self->doomed_count; i++) {
        const s_doomed_t *doomed = &self->doomed[i];
        s_ids_remove(&self->ids, doomed->hash, doomed->seq);
        doomed->category->count--;
        doomed->category->bytes -= doomed->len;
        self->count--;
        self->bytes -= doomed->len;
    }
    for (s_category_t *category = zhashx_first(self->categories); category;
         category = zhashx_next(self->categories)) {
        if (ok && category->next_floor)
            category->floor = category->next_floor;
        category->next_floor = 0;
        category->doomed_count = 0;
        category->doomed_bytes = 0;
    }
    if (ok && self->doomed_count > 0)
        s_categories_sweep(self);
    self->doomed_count = 0;
}

int
vdb_store_prune(
    vdb_store_t *self, const char *category, int64_t before_ms, uint64_t max_bytes, int64_t now_ms)
{
    assert(self);
    assert(!self->scanning && !self->writing);
    s_category_t *only = NULL;
    if (category) {
        only = zhashx_lookup(self->categories, category);
        if (!only) { // no such messages: only expiry, which spans categories, is left
            before_ms = 0;
            max_bytes = 0;
        }
    }
    int rc = s_run(self->begin);
    if (rc == SQLITE_OK)
        rc = s_prune_steps(self, only, before_ms, max_bytes, now_ms);
    size_t deleted = self->doomed_count;
    if (rc == SQLITE_OK && deleted > 0)
        rc = s_run(self->commit);
    else if (rc == SQLITE_OK)
        rc = s_run(self->rollback); // nothing deleted: skip the commit's fsync
    if (rc != SQLITE_OK) {
        char why[256];
        s_describe(self->db, rc, why, sizeof why);
        vdb_log_error("vdb_store: prune failed: %s", why);
        s_rollback(self);
        s_prune_finish(self, 0);
        return VD_ESTORE;
    }
    s_prune_finish(self, 1);
    return deleted > INT_MAX ? INT_MAX : (int)deleted;
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

static int
s_compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int
vdb_store_categories(vdb_store_t *self, vdb_store_category_fn *fn, void *arg)
{
    assert(self && fn);
    //  The names come from memory (the per-category totals), copied and sorted first.
    size_t count = 0;
    char **names = calloc(zhashx_size(self->categories) + 1, sizeof *names);
    int rc = names ? VD_OK : VD_ESTORE;
    for (const s_category_t *category = zhashx_first(self->categories); rc == VD_OK && category;
         category = zhashx_next(self->categories)) {
        if (category->count == 0)
            continue;
        names[count] = strdup((const char *)zhashx_cursor(self->categories));
        rc = names[count++] ? VD_OK : VD_ESTORE;
    }
    if (rc == VD_OK)
        qsort(names, count, sizeof *names, s_compare_names);
    for (size_t i = 0; rc == VD_OK && i < count; i++) {
        if (fn(names[i], arg) != 0)
            break;
    }
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    return rc;
}

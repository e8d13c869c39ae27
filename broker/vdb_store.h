/*  vdb_store: the broker's durable store of accepted messages, in SQLite (WAL mode).
    Schema and the reason for each index: docs/store.md.
    Invariants:
    - every message appended is in the store, with its exact envelope bytes, before the broker
      sends its receipt (the caller commits a batch, then answers: group commit);
    - (sender, id) is unique: a retry finds the first seq;
    - seq is the primary key, strictly increasing, and survives restarts (vdb_store_last_seq);
    - a failed append (disk full, I/O error) leaves the store as it was: all of the batch or none.
    Threads: the broker's loop owns it; only vdb_store_append_write may run on another thread,
    while the loop keeps off the connection (see the three-step append).  */

#ifndef VDB_STORE_H_INCLUDED
#define VDB_STORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdb_checkpoint.h"
#include "vdp_envelope.h"

typedef struct vdb_store_t vdb_store_t;

//  How hard a commit pushes to disk. FULL (the default) survives a power loss: each commit is
//  fsynced before it returns. NORMAL survives a crash of the broker but may lose the last
//  commits on power loss. OFF leaves it to the OS.
typedef enum { VDB_SYNC_FULL = 0, VDB_SYNC_NORMAL = 1, VDB_SYNC_OFF = 2 } vdb_sync_t;

//  One stored message. Strings and bytes are borrowed: from the caller on append, from the
//  store until the callback returns on scan.
typedef struct {
    uint64_t seq;        // chosen by the caller on append: above every seq before it
    int64_t accepted_at; // UTC ms
    const char *sender;  // org id
    const char *id;      // envelope id
    const char *topic;   // envelope topic ("inbox" for directed messages)
    const char *category;
    vdp_tlp_t tlp;
    int64_t expires;    // UTC ms, 0 if none
    const char *key;    // Z85 CURVE key that published it
    const char *to;     // directed: recipients joined by ',' ; NULL or "" otherwise
    const uint8_t *raw; // the envelope map's exact bytes
    size_t raw_len;
} vdb_store_msg_t;

/*  Opens (creating if needed) the store at `path`. Refuses a file whose schema version it does
    not know, and a file another broker has open ("in use by another broker"). Returns NULL
    with `err` on failure. Caller owns the result. Reads the whole table once, to build what
    the store keeps in memory (a map of every (sender, id), about 32 bytes a message;
    docs/store.md). Starts the store's checkpoint thread (vdb_checkpoint.h).  */
vdb_store_t *vdb_store_open(const char *path, vdb_sync_t sync, char *err, size_t err_size);

//  Stops the checkpoint thread, then closes the file, copying what the WAL holds into it.
void vdb_store_close(vdb_store_t **self_p);

//  The store's checkpoint thread, for its statistics (and vdb_checkpoint_settle in tests).
vdb_checkpoint_t *vdb_store_checkpointer(vdb_store_t *self);

//  The highest seq ever stored, 0 for a new store. Pruning never lowers it, across restarts
//  too, so the caller can number the next message last_seq + 1.
uint64_t vdb_store_last_seq(const vdb_store_t *self);

/*  Appends `count` messages in one transaction and commits it (with the sync policy).
    Returns VD_OK; or VD_ESTORE with `err` ("disk full", "I/O error: ...", "store is
    read-only"), and then nothing of the batch is stored and the store still works (a later
    append succeeds once the cause is gone). A (sender, id) already stored or twice in the
    batch, a missing field (only `to` may be NULL) or a seq not above the one before it (or
    last_seq) is a caller bug: VD_EINVAL with `err`, nothing stored; callers look up first.  */
int vdb_store_append(
    vdb_store_t *self, const vdb_store_msg_t *msgs, size_t count, char *err, size_t err_size);

/*  The same append in three steps, so that the commit (and its fsync) can run on another
    thread while the owner goes on with work that needs no SQLite:
    - append_begin checks the batch exactly as append does (VD_EINVAL, or VD_ESTORE if a
      duplicate check could not read a row) and reserves it: its ids enter the in-memory map;
    - append_write runs the transaction: VD_OK, or VD_ESTORE with `err` and nothing stored. It
      touches only the SQLite connection, so it may run on any one thread;
    - append_end, with whether the write succeeded, makes the batch count (last_seq, totals)
      or takes its ids out of the map again.
    Between begin and end (`msgs` must stay valid) nothing else may use the store but
    vdb_store_may_hold, last_seq, count and bytes (asserted where SQLite would be touched).  */
int vdb_store_append_begin(
    vdb_store_t *self, const vdb_store_msg_t *msgs, size_t count, char *err, size_t err_size);
int vdb_store_append_write(
    vdb_store_t *self, const vdb_store_msg_t *msgs, size_t count, char *err, size_t err_size);
void
vdb_store_append_end(vdb_store_t *self, const vdb_store_msg_t *msgs, size_t count, bool written);

/*  Whether (sender, id) might be stored, from the in-memory map alone: false means certainly
    not (the common case for a new message); true means vdb_store_lookup must read a row to
    tell. Usable while an append is being written. A batch between begin and end counts as
    stored.  */
bool vdb_store_may_hold(const vdb_store_t *self, const char *sender, const char *id);

/*  Finds (sender, id), both not NULL. Returns VD_OK and fills what is not NULL; VD_ENOTFOUND;
    VD_ESTORE.  */
int vdb_store_lookup(vdb_store_t *self,
                     const char *sender,
                     const char *id,
                     uint64_t *seq,
                     int64_t *accepted_at,
                     vdp_tlp_t *tlp);

/*  Calls fn for each message with seq > after, in seq order, at most `limit` of them; fn
    returns non-zero to stop early. Returns the number of messages passed to fn (including the
    one that stopped it), or VD_ESTORE. fn may call lookup, seq_at and cursor_get, but not
    scan, append, prune or cursor_set on this store (asserted).  */
typedef int(vdb_store_fn)(const vdb_store_msg_t *msg, void *arg);
int vdb_store_scan(vdb_store_t *self, uint64_t after, size_t limit, vdb_store_fn *fn, void *arg);

/*  The seq of the first message accepted at or after `time_ms` (for "since TIME" replay):
    VD_OK and *seq; VD_ENOTFOUND if none; VD_ESTORE. Found by binary search over seq (at most
    64 probes of O(log n)), which relies on accepted_at growing with seq: while the broker's
    clock never stepped back, the answer is the lowest such seq, first in time order too. After
    a step back it is still a message accepted at or after `time_ms`, but messages stamped
    before the step may lie on either side of it (or be missed: VD_ENOTFOUND).  */
int vdb_store_seq_at(vdb_store_t *self, int64_t time_ms, uint64_t *seq);

//  Durable subscription cursors, per (key, name): the last seq the subscriber acknowledged.
//  get: VD_OK, VD_ENOTFOUND, VD_ESTORE. set: VD_OK, VD_ESTORE; each set is one transaction
//  (one fsync under FULL), so callers coalesce acknowledgements.
int vdb_store_cursor_get(vdb_store_t *self, const char *key, const char *name, uint64_t *seq);
int vdb_store_cursor_set(vdb_store_t *self, const char *key, const char *name, uint64_t seq);

//  One cursor to write: strings borrowed for the call; seq at most INT64_MAX.
typedef struct {
    const char *key;
    const char *name;
    uint64_t seq;
} vdb_store_cursor_t;

//  Writes `count` cursors in one transaction (one fsync under FULL): all of them or, on
//  VD_ESTORE, none. A (key, name) given twice ends with the later seq. VD_OK or VD_ESTORE.
int vdb_store_cursor_set_many(vdb_store_t *self, const vdb_store_cursor_t *cursors, size_t count);

/*  Retention: deletes messages of `category` (NULL: every category) accepted before
    `before_ms` (0: no age limit), then every message of any category whose `expires` is at or
    before `now_ms` (0: none), then the oldest of that category until it holds at most
    `max_bytes` of envelope bytes (0: no size limit; with NULL, each category on its own), all in
    one transaction. Returns how many were deleted, or VD_ESTORE (then none were). Age is
    judged in seq order (see seq_at): after the clock stepped back, a message stamped before
    `before_ms` but stored after one stamped later waits for a later call.  */
int vdb_store_prune(
    vdb_store_t *self, const char *category, int64_t before_ms, uint64_t max_bytes, int64_t now_ms);

//  Calls fn for each category that has messages stored, in name order (from memory: the store
//  keeps per-category totals, no read of the file); fn returns non-zero to stop. fn must not
//  call the store. Returns VD_OK or VD_ESTORE.
typedef int(vdb_store_category_fn)(const char *category, void *arg);
int vdb_store_categories(vdb_store_t *self, vdb_store_category_fn *fn, void *arg);

//  Messages and envelope bytes stored now.
uint64_t vdb_store_count(vdb_store_t *self);
uint64_t vdb_store_bytes(vdb_store_t *self);

#endif

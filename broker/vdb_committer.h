/*  vdb_committer: writes the store's batches on a thread of its own, so that the broker's loop
    reads, checks and stages the next round's messages while the current batch is committed and
    fsynced (the disk wait and SQLite's own work overlap the loop's instead of stopping it).
    At most one batch is in flight. Between vdb_committer_start and vdb_committer_wait the
    store belongs to the thread (vdb_store_append_write); the loop may only call the store's
    memory-only functions (see vdb_store.h).  */

#ifndef VDB_COMMITTER_H_INCLUDED
#define VDB_COMMITTER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "vdb_store.h"

typedef struct vdb_committer_t vdb_committer_t;

//  Starts the thread for `store` (borrowed; it must outlive the committer). NULL on failure.
vdb_committer_t *vdb_committer_new(vdb_store_t *store);

//  Stops the thread. A batch still in flight is waited for, but its result is lost: call
//  vdb_committer_wait (then vdb_store_append_end) first.
void vdb_committer_destroy(vdb_committer_t **self_p);

//  A descriptor that polls readable once the batch in flight is written; -1 if none.
int vdb_committer_fd(const vdb_committer_t *self);

/*  Writes `count` messages, already through vdb_store_append_begin, on the thread. `msgs`
    (and what it points to) must stay untouched until vdb_committer_wait. Not while busy.  */
void vdb_committer_start(vdb_committer_t *self, const vdb_store_msg_t *msgs, size_t count);

//  Whether a batch was started and not yet waited for.
bool vdb_committer_busy(const vdb_committer_t *self);

//  Whether the batch in flight is written (vdb_committer_wait would not block).
bool vdb_committer_done(vdb_committer_t *self);

/*  Waits for the batch in flight and returns vdb_store_append_write's result (with `err`).
    The store is the caller's again; call vdb_store_append_end next.  */
int vdb_committer_wait(vdb_committer_t *self, char *err, size_t err_size);

#endif

/*  vdb_checkpoint: copies the store's WAL back into its database on a thread of its own, through
    a connection of its own, so that an append never waits for a checkpoint.
    In WAL mode every commit only appends to the -wal file; a checkpoint copies those pages into
    the main file and fsyncs it, and once it has copied everything the next commit starts the
    WAL again from its beginning. Done in line by the writer (SQLite's auto-checkpoint), a 32 MiB
    checkpoint stopped the store's commits for about 100 ms each time. A passive checkpoint
    takes no lock the writer needs, so here it runs while the next batches are committed.
    The store asks for one when a commit leaves the WAL past its threshold (vdb_store.c).  */

#ifndef VDB_CHECKPOINT_H_INCLUDED
#define VDB_CHECKPOINT_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

typedef struct vdb_checkpoint_t vdb_checkpoint_t;

//  What the thread has done; a snapshot, taken under its lock.
typedef struct {
    uint64_t requests; // asked for (a request while one is pending counts once)
    uint64_t runs;     // checkpoints completed without error (passes that found nothing included)
    uint64_t failures; // checkpoints that failed (a full disk, an I/O error); retried on request
    int wal_frames;    // the WAL's frames when the last checkpoint ended (-1: none yet)
    int copied_frames; // of those, copied into the database (all of them: the WAL can restart)
} vdb_checkpoint_stats_t;

/*  Opens a second connection to the store at `path`, which must already be in WAL mode, with
    the synchronous level `sync_pragma` (a full "PRAGMA synchronous = ..." statement: a
    checkpoint fsyncs as the writer's level says), and starts the thread. NULL on failure, with
    a reason in `err`.  */
vdb_checkpoint_t *
vdb_checkpoint_new(const char *path, const char *sync_pragma, char *err, size_t err_size);

//  Waits for a checkpoint in progress, stops the thread and closes its connection.
void vdb_checkpoint_destroy(vdb_checkpoint_t **self_p);

//  Asks for a checkpoint and returns at once. Safe from any thread, and from SQLite's WAL hook.
void vdb_checkpoint_request(vdb_checkpoint_t *self);

//  Waits until no checkpoint is asked for or running. For tests and orderly shutdown.
void vdb_checkpoint_settle(vdb_checkpoint_t *self);

void vdb_checkpoint_stats(vdb_checkpoint_t *self, vdb_checkpoint_stats_t *stats);

#endif

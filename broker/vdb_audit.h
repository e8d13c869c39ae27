/*  vdb_audit: the broker's writer of the audit log (docs/audit.md; the format is
    proto/vdp_audit.h). Invariants:
    - records are numbered 1, 2, 3... with no gap, across restarts too, and each carries the
      hash of the one before it;
    - recording formats and hashes a record into a buffer in memory, with no system call and,
      once the buffer has grown, no allocation; flushing writes the buffer in one write();
    - nothing recorded is dropped silently: a failed write keeps what was not written, for the
      next flush, and recording refuses (VD_ELIMIT) once VDB_AUDIT_MAX_BUFFER bytes wait;
    - records on disk are never rewritten; the one cut is a torn last line found at open (a
      write cut short by a crash, which no successful flush and no head ever covered);
    - the head file (LOG.head) names a record only once it is written and fdatasynced;
    - an flock on the log keeps a second writer out.
    Opening costs O(1) in the log's size: it checks the last two records and the head, not the
    whole chain (that is `vedetta audit verify`).
    Threads: one caller thread only (the broker's loop); vdb_audit_checkpoint_start hands the
    fsync and the head to a thread of the writer's own.  */

#ifndef VDB_AUDIT_H_INCLUDED
#define VDB_AUDIT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdp_audit.h"

#define VDB_AUDIT_MAX_BUFFER (16u * 1024u * 1024u) // recorded bytes waiting for a write, at most

typedef struct vdb_audit_t vdb_audit_t;

typedef struct {
    uint64_t records;      // recorded since open
    uint64_t bytes;        // written to the log since open
    uint64_t last_n;       // number of the last record recorded (or found at open)
    uint64_t head_n;       // the record the head file names, as far as this writer knows
    size_t buffered;       // bytes recorded and not yet written
    uint64_t write_errors; // flushes that failed
} vdb_audit_stats_t;

/*  Opens the log at `path`, creating it (mode 0640) if needed, and continues it: the next
    record is numbered after the last one in the file and chained to its hash.
    - A last line without its "\n" (a crash in the middle of a write) is cut off, with a warning.
    - If the end of the log is damaged (its last line not a record, its last two records not
      chained) or disagrees with the head (the head names a record past the end, or its hash
      or signature is wrong, or it is missing beside records), the log still opens, after an
      error in the broker's log; vdb_audit_damage says what was found. A head that disagrees
      is renamed to LOG.head.damaged-<ms> first, so that the next checkpoint does not erase
      the evidence. Nothing before the damage is changed.
    - A log with no record gets a head naming record 0 at once.
    `sign_secret` is the broker's 64-byte Ed25519 secret key (copied, wiped at close), or NULL
    for unsigned heads. libsodium must be initialised.
    Returns the writer, or NULL with `err`: the path is not a regular file, cannot be opened or
    read, is in use by another writer, or memory ran out. Caller owns it; vdb_audit_close.  */
vdb_audit_t *
vdb_audit_open(const char *path, const uint8_t *sign_secret, char *err, size_t err_size);

/*  Records one event: numbers it (record->n is ignored), stamps `t` with the current time if
    record->t is 0, formats it, chains it and appends it to the buffer. Strings are copied.
    Returns VD_OK; VD_EINVAL (kind not a kind, code not a code name, t negative: a caller bug),
    VD_ELIMIT (VDB_AUDIT_MAX_BUFFER bytes already wait: flush first), VD_ENOMEM (the buffer
    could not grow); after an error nothing was recorded and the chain is unchanged.  */
int vdb_audit_record(vdb_audit_t *self, const vdp_audit_record_t *record);

/*  Writes everything buffered, in one write() (repeated on a short write), then fdatasync()s
    if `sync`. Returns VD_OK, or VD_EIO with `err`: then what was not written stays buffered
    and the next flush writes it after what did go out, so the file gets every record once,
    in order. A failed fdatasync is reported once and the next sync tries again.  */
int vdb_audit_flush(vdb_audit_t *self, bool sync, char *err, size_t err_size);

/*  Flushes with sync, then, if records were added since the last head, replaces the head file
    atomically (signed if the writer has a key). Returns VD_OK or VD_EIO with `err`.  */
int vdb_audit_checkpoint(vdb_audit_t *self, char *err, size_t err_size);

/*  The same, without waiting for the disk: writes what is buffered, then hands the fsync and
    the new head to a thread of the writer's own (started on first use) and returns. One head
    is written at a time; a call while one is in progress only writes the buffer. Returns VD_OK,
    or VD_EIO with `err` if the write failed, or if the thread's previous checkpoint failed
    (reported once; the next call tries again).  */
int vdb_audit_checkpoint_start(vdb_audit_t *self, char *err, size_t err_size);

/*  Checkpoints, closes the log, wipes the secret key and frees the writer; sets *self_p to
    NULL. Accepts NULL and *self_p == NULL. Returns VD_OK, or VD_EIO with `err` when records
    could not be written (they are lost: the error is also logged) or the head not replaced.  */
int vdb_audit_close(vdb_audit_t **self_p, char *err, size_t err_size);

//  Counters (see vdb_audit_stats_t).
void vdb_audit_stats(const vdb_audit_t *self, vdb_audit_stats_t *out);

//  What opening found wrong with the existing log or head, "" if nothing. Borrowed while
//  `self` lives. The broker puts it in its broker.start record, so the chain keeps it.
const char *vdb_audit_damage(const vdb_audit_t *self);

#endif

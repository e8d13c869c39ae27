/*  vdb_server: the broker. Owns every piece of broker state and runs the one event loop:
        wire (ROUTER, CURVE) -> codec (vdp_reader) -> session -> ACL/TLP (vdb_acl)
            -> index (dedup, seq) -> route (vdb_subs) -> sessions' batches -> wire
    One thread: the ZAP handler is polled in the same loop, so the registry and the policy are
    read without locks. Batching: each poll round reads every message already waiting (up to a
    bound), then sends each session's accumulated commands as one ZeroMQ message, which is what
    lets vedetta pay CurveZMQ's per-message cost once per batch.  */

#ifndef VDB_SERVER_H_INCLUDED
#define VDB_SERVER_H_INCLUDED

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "vdb_config.h"

typedef struct vdb_server_t vdb_server_t;

/*  Loads the registry, the policy (embedded default if none is configured) and the broker's
    key, starts the ZAP handler and binds. NULL with `err` if anything fails (bad file, endpoint
    taken, no agencies). Caller owns the result; free with vdb_server_destroy().  */
vdb_server_t *vdb_server_new(const vdb_config_t *config, char *err, size_t err_size);

void vdb_server_destroy(vdb_server_t **self_p);

//  The endpoint actually bound (port resolved). Borrowed while the server lives.
const char *vdb_server_endpoint(const vdb_server_t *self);

//  The broker's public key (Z85). Borrowed while the server lives.
const char *vdb_server_public_key(const vdb_server_t *self);

/*  Serves until *stop becomes non-zero (set it from a signal handler). Whenever *reload (may be
    NULL) becomes non-zero the loop clears it and reloads, as vdb_server_reload does. Returns
    VD_OK, or VD_EINTERNAL if polling failed for a reason other than a signal.  */
int vdb_server_run(vdb_server_t *self, volatile sig_atomic_t *stop, volatile sig_atomic_t *reload);

typedef struct {
    size_t orgs, keys;   // in the registry now
    size_t revoked;      // keys not active (revoked) in it
    size_t grants;       // in the policy now
    size_t sessions_cut; // sessions closed because their key is no longer active
} vdb_reload_report_t;

/*  Reads the registry directory and the policy file again and, only if both load, swaps them in
    whole between two messages: a session whose key is gone or revoked is cut at once (told
    EAUTH "key revoked", its streams and durable subscriptions stopped, its queued deliveries
    dropped); every other session goes on under the new grants, which the next delivery and the
    next command are checked against. If either fails, nothing changes and `err` says why.
    Returns VD_OK or VD_ECONFIG; fills `report` (may be NULL) on success.  */
int vdb_server_reload(vdb_server_t *self, vdb_reload_report_t *report, char *err, size_t err_size);

typedef struct {
    uint64_t accepted;   // publishes accepted
    uint64_t duplicates; // publishes answered as duplicates
    uint64_t rejected;   // publishes rejected
    uint64_t delivered;  // deliveries queued to sessions, live or from the store
    uint64_t replayed;   // of which read back from the store (streams behind)
    uint64_t withheld;   // deliveries withheld by the ACL/TLP rules
    uint64_t dropped;    // deliveries dropped for a session without room (no store only)
    uint64_t errors;     // error replies (bad frames, denied subscriptions, ...)
    uint64_t sessions;   // sessions open now
} vdb_server_stats_t;

vdb_server_stats_t vdb_server_stats(const vdb_server_t *self);

#endif

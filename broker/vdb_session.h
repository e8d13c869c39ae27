/*  vdb_session: one connected client as the broker sees it: its ROUTER routing id, the key and
    agency it authenticated as, its streams of subscriptions (vdb_stream.h), the delivery credit
    it granted, and the commands waiting to go out to it.
    Output: commands are appended to `out` (one batch); vdb_session_seal() turns the batch into a
    ZeroMQ message (zero-copy) on the backlog; vdb_session_flush() hands the backlog to libzmq
    without ever blocking. A slow peer's backlog grows until the broker's per-session bound; past
    it, or out of credit, its streams fall behind and catch up from the store later (a broker
    without a store drops those deliveries instead, counted and logged).  */

#ifndef VDB_SESSION_H_INCLUDED
#define VDB_SESSION_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

#include "vdb_stream.h"
#include "vdp_agency.h"
#include "vdp_msg.h"
#include "vdp_sig.h"

#define VDB_RID_MAX             255 // ZeroMQ routing ids are at most 255 bytes
#define VDB_SESSION_MAX_SUBS    256 // patterns one session may hold, over all its streams
#define VDB_SESSION_MAX_STREAMS 32  // replays and durable streams of one session, plus one live

typedef struct {
    uint8_t rid[VDB_RID_MAX];
    size_t rid_len;
    char rid_key[2 * VDB_RID_MAX + 1]; // hex of rid: the sessions table key
    char key[VDP_KEY_Z85_LEN + 1];     // the ZAP User-Id it authenticated with
    const vdp_agency_t *agency;        // borrowed from the registry, refreshed per frame
    uint32_t heartbeat_ms;             // granted at hello
    int64_t last_seen;                 // monotonic ms of the last frame from it
    uint32_t credit;                   // deliveries it may still be sent
    vdp_writer_t out;                  // the batch being built
    zlistx_t *backlog;                 // zmq_msg_t * sealed, not yet taken by libzmq
    size_t backlog_bytes;
    zlistx_t *streams;         // vdb_stream_t * (owned)
    size_t pattern_count;      // over all its streams
    size_t behind;             // streams behind: to be fed from the store
    bool dirty;                // listed for flushing at the end of the round
    bool overflowing;          // dropping deliveries: logged once per episode
    bool misbehaved;           // sent a bad command: logged once per session
    uint64_t throttled;        // publishes refused for its rate limits since its last accepted one
    int64_t gone_at;           // monotonic ms when a send found the peer gone; 0 while it is there
    uint64_t dropped;          // deliveries dropped for overflow
    vdp_sig_cache_t sig_cache; // the last tree of its publishes verified
    char sign_z85[VDP_KEY_Z85_LEN + 1]; // its agency file's signing key, as the file has it
    uint8_t sign_public[VDP_KEY_BYTES]; // and decoded: once, not per publish; "" if invalid
} vdb_session_t;

//  A new session for routing id `rid` authenticated as `key`. NULL on no memory.
vdb_session_t *
vdb_session_new(const uint8_t *rid, size_t rid_len, const char *key, const vdp_agency_t *agency);

//  Frees the session and its queued output. Accepts NULL.
void vdb_session_destroy(vdb_session_t **self_p);

//  Writes the hex table key of a routing id into out[2 * VDB_RID_MAX + 1].
void vdb_session_rid_key(const uint8_t *rid, size_t rid_len, char *out);

//  Makes sure `bytes` more fit into the current batch, sealing it first if they would not.
//  Returns the writer to append to, or NULL on no memory.
vdp_writer_t *vdb_session_writer(vdb_session_t *self, size_t bytes);

//  Drops everything queued for the peer (it is gone): the batch and the backlog.
void vdb_session_discard(vdb_session_t *self);

//  Moves the current batch (if any) onto the backlog. Returns VD_OK or VD_ENOMEM.
int vdb_session_seal(vdb_session_t *self);

/*  Hands the backlog to libzmq on `router` (a ROUTER with ZMQ_ROUTER_MANDATORY), never blocking.
    Returns VD_OK (all sent), 1 (libzmq is full for this peer: the rest stays queued),
    VD_ECONN (the peer is gone).  */
int vdb_session_flush(vdb_session_t *self, void *router);

//  Its live stream (plain subscriptions), or NULL if it has none.
vdb_stream_t *vdb_session_live_stream(vdb_session_t *self);

//  Its durable stream called `durable`, or NULL.
vdb_stream_t *vdb_session_durable(vdb_session_t *self, const char *durable);

//  The stream that holds `pattern`: among its durable streams called `durable`, or when
//  `durable` is NULL or "" among the others (live first). NULL if none.
vdb_stream_t *vdb_session_stream_of(vdb_session_t *self, const char *pattern, const char *durable);

//  Adds a new stream (owned by the session from then on). VD_OK or VD_ENOMEM.
int vdb_session_add_stream(vdb_session_t *self, vdb_stream_t *stream);

//  Removes and frees one of its streams; the caller has taken it out of the subscription index.
void vdb_session_drop_stream(vdb_session_t *self, vdb_stream_t *stream);

#endif

/*  vdb_server_impl: the broker's state, shared by the parts of vdb_server: vdb_server.c (the
    loop, sessions, publishing, the group commit), vdb_route.c (subscriptions, streams,
    delivery, catching up from the store) and vdb_admin.c (reload, the admin socket). Not for
    any other module.  */

#ifndef VDB_SERVER_IMPL_H_INCLUDED
#define VDB_SERVER_IMPL_H_INCLUDED

#include <czmq.h>

#include "vdb_acl.h"
#include "vdb_audit.h"
#include "vdb_committer.h"
#include "vdb_control.h"
#include "vdb_index.h"
#include "vdb_limiter.h"
#include "vdb_pending.h"
#include "vdb_registry.h"
#include "vdb_server.h"
#include "vdb_session.h"
#include "vdb_store.h"
#include "vdb_subs.h"
#include "vdb_zap.h"
#include "vdp_envelope.h"
#include "vdp_msg.h"

#define VDB_CMD_OVERHEAD 160 // bytes of a command beyond its variable parts
//  Bytes of a deliver beside the envelope: its keys, stamps, the longest pattern and name.
#define VDB_DELIVER_OVERHEAD (VDB_CMD_OVERHEAD + VDP_MAX_TOPIC + VDP_MAX_DURABLE)

struct vdb_server_t {
    vdb_config_t config;
    vdb_registry_t *registry;   // owned; swapped whole on reload
    vdb_policy_t *policy;       // owned; swapped whole on reload
    vdb_zap_t *zap;             // owned; created before the ROUTER binds
    zsock_t *router;            // owned
    void *router_handle;        // libzmq handle of router
    zhashx_t *sessions;         // rid hex -> vdb_session_t (owned)
    zlistx_t *dirty;            // vdb_session_t * with output pending (borrowed)
    vdb_subs_t *subs;           // pattern -> vdb_stream_t (borrowed)
    zhashx_t *durables;         // "key/name" -> vdb_stream_t open now (borrowed)
    size_t behind;              // streams behind, over all sessions
    vdb_index_t *index;         // without a store: recent (sender, id) -> seq, tlp
    vdb_store_t *store;         // owned: every accepted message, before its receipt; only
                                // through vdb_server_store() while a batch may be in flight
    vdb_committer_t *committer; // owned, with a store: writes one batch at a time
    vdb_control_t *control;     // owned: the admin socket; NULL if none is configured
    vdb_limiter_t *limiter;     // owned: the rate limits' buckets, per key and per org
    vdb_audit_t *audit;         // owned: the audit log; NULL if none is configured
    bool audit_failing;         // a record or flush failed: logged once until one works
    bool audit_started;         // broker.start recorded: broker.stop is recorded at the end
    vdb_pending_t *staged;      // accepted, waiting for the batch in flight to be written
    vdb_pending_t *committing;  // the batch in flight, its records borrowed by the committer
    uint64_t seq;               // last seq given: routed, and committed if there is a store
    int commit_rc;              // the batch in flight, once written: VD_OK or VD_ESTORE...
    char commit_err[VDP_MAX_REASON + 1]; // ...and why
    char name[VDP_MAX_ORG + 1];          // the broker's org id
    char endpoint[256];                  // bound endpoint
    char public_key[VDP_KEY_Z85_LEN + 1];
    vdb_server_stats_t stats;
    vdp_envelope_t env;       // scratch for the command being handled
    vdp_envelope_t committed; // scratch for routing a message once committed
    vdp_envelope_t replay;    // scratch for a message read back for a stream behind
    vdp_cmd_t cmd;            // scratch
};

//  Lists a session for flushing at the end of the round.
void vdb_server_mark_dirty(vdb_server_t *self, vdb_session_t *session);

//  Closes a session: its streams stop, its pending output is dropped. `why` is logged.
void vdb_server_close_session(vdb_server_t *self, vdb_session_t *session, const char *why);

//  Sends an error to a peer at once (not through a session's batch), or not at all.
void vdb_server_error_direct(
    vdb_server_t *self, const uint8_t *rid, size_t rid_len, int code, const char *reason);

/*  Records an event in the audit log (a no-op without one). `code` is VD_OK or an error code;
    the strings may be NULL. A failure is logged once until recording works again, and never
    stops the broker.  */
void vdb_server_audit(vdb_server_t *self,
                      vdp_audit_kind_t kind,
                      const char *org,
                      const char *key,
                      const char *topic,
                      const char *id,
                      uint64_t seq,
                      int code,
                      const char *reason);

//  The same, for a record made by the caller (a handshake's, which names the peer).
void vdb_server_audit_record(vdb_server_t *self, const vdp_audit_record_t *record);

//  Handles the request waiting on the control socket (vdb_admin.c).
void vdb_server_control(vdb_server_t *self);

//  Appends an error reply to a session's batch.
void vdb_server_error(
    vdb_server_t *self, vdb_session_t *session, uint64_t ref, int code, const char *reason);

//  The store once no batch is in flight (waiting for one, then answering and routing it): what
//  every read or write of the store outside the commit goes through. NULL without a store.
vdb_store_t *vdb_server_store(vdb_server_t *self);

//  UTC now, in ms.
int64_t vdb_server_now_ms(void);

#endif

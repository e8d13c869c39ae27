/*  vdb_route: the delivery half of the broker: subscriptions and their streams (vdb_stream.h),
    fan-out of each committed message to the live streams that match, and catching up the
    streams that are behind from the store, within each session's credit and backlog.
    Delivery rules (vdb_acl) are checked at the moment of delivery, live or from the store, so a
    replay sees today's grants. Called only from the broker's loop (vdb_server.c).  */

#ifndef VDB_ROUTE_H_INCLUDED
#define VDB_ROUTE_H_INCLUDED

#include <stdbool.h>

#include "vdb_server_impl.h"

//  Delivers a committed message (seq and accepted_at stamped) to every live stream it reaches.
void vdb_route_message(vdb_server_t *self, const vdp_envelope_t *env);

//  The session commands about subscriptions: sub, unsub, ack, credit.
void vdb_route_subscribe(vdb_server_t *self, vdb_session_t *session, const vdp_cmd_t *cmd);
void vdb_route_unsubscribe(vdb_server_t *self, vdb_session_t *session, const vdp_cmd_t *cmd);
void vdb_route_ack(vdb_server_t *self, vdb_session_t *session, const vdp_cmd_t *cmd);
void vdb_route_credit(vdb_server_t *self, vdb_session_t *session, const vdp_cmd_t *cmd);

/*  Feeds streams that are behind from the store, as far as their sessions' credit and backlog
    allow, a bounded number of stored messages per stream per call; a stream that reaches the
    end of the store turns live. Call between rounds, never inside a commit (then every stored
    message has been routed already, which is what makes the switch gapless). Returns true if a
    stream could take more at once (poll without waiting).  */
bool vdb_route_catch_up(vdb_server_t *self);

//  Writes the cursors of durable streams acknowledged since they were last written.
void vdb_route_save_cursors(vdb_server_t *self);

//  Drops every stream of a session that is closing, saving durable cursors first.
void vdb_route_session_closing(vdb_server_t *self, vdb_session_t *session);

#endif

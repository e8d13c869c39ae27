/*  vdb_stream: one ordered feed of messages to one session: the patterns it follows and where it
    stands. A session has at most one live stream (its plain subscriptions: messages from now
    on), any number of replays (a pattern from a seq or a time) and durable streams (a name
    whose cursor the store keeps per key). Each stream delivers a message at most once, in seq
    order, whichever of its patterns match.

    A stream is either live (caught up: routing hands it each message as it is committed) or
    behind (the broker reads the store after `pos` for it, as credit allows, until it reaches the
    end and turns live again). Streams start behind when they ask for history, and fall behind
    when their session runs out of credit or backlog: so a slow subscriber costs a cursor, not
    memory, and never holds up the others (docs/architecture.md, flow control).  */

#ifndef VDB_STREAM_H_INCLUDED
#define VDB_STREAM_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

#include "vdb_store.h"
#include "vdp_agency.h"
#include "vdp_limits.h"

typedef enum {
    VDB_STREAM_LIVE = 0, // the session's plain subscriptions
    VDB_STREAM_REPLAY,   // a subscription with history but no name: forgotten with the session
    VDB_STREAM_DURABLE   // a named subscription: its cursor is kept in the store
} vdb_stream_kind_t;

typedef struct {
    void *session; // vdb_session_t * that owns it (borrowed)
    vdb_stream_kind_t kind;
    char durable[VDP_MAX_DURABLE + 1]; // the name, for durable streams; "" otherwise
    zlistx_t *patterns;                // char * (owned)
    bool live;                         // fed by routing; else behind, fed from the store
    uint64_t pos;                      // behind: the last seq passed (delivered or not)
    uint64_t last_seq;                 // the last seq delivered: once per message
    uint64_t acked;                    // durable: the last seq acknowledged
    uint64_t saved;                    // durable: the cursor last written to the store
} vdb_stream_t;

//  A new stream of `kind` for `session`, live unless told otherwise. NULL on no memory.
vdb_stream_t *vdb_stream_new(void *session, vdb_stream_kind_t kind, const char *durable);

//  Frees the stream and its patterns. Accepts NULL.
void vdb_stream_destroy(vdb_stream_t **self_p);

bool vdb_stream_has_pattern(vdb_stream_t *self, const char *pattern);

//  Adds a pattern (not yet there). VD_OK or VD_ENOMEM.
int vdb_stream_add_pattern(vdb_stream_t *self, const char *pattern);

//  Removes a pattern. VD_OK or VD_ENOTFOUND.
int vdb_stream_remove_pattern(vdb_stream_t *self, const char *pattern);

size_t vdb_stream_pattern_count(vdb_stream_t *self);

/*  For catching up: whether stored message `msg` reaches `agency` through one of the stream's
    patterns, as routing would have found it. A directed message (topic "inbox") reaches only
    its recipients, on their inbox topics. On true, writes the delivery topic and the pattern
    that matched (each VDP_MAX_TOPIC + 1 bytes).  */
bool vdb_stream_match(vdb_stream_t *self,
                      const vdp_agency_t *agency,
                      const vdb_store_msg_t *msg,
                      char *topic,
                      char *pattern);

#endif

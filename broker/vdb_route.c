/*  vdb_route: see vdb_route.h.
    Invariants:
    - a stream delivers each message at most once and in seq order: live, it takes messages as
      they are committed (in seq order); behind, it reads the store after `pos`, in seq order,
      and turns live only when that read reaches the end of the store, at a moment when every
      stored message has been routed already; so nothing is skipped or repeated at the switch;
    - a session is never sent more deliveries than its credit, nor queued more than the
      configured backlog: past either, its streams fall behind (with a store) and cost a
      cursor, not memory; without a store those deliveries are dropped and counted;
    - a durable stream's cursor in the store never passes what its subscriber acknowledged, so a
      reconnect redelivers whatever was not acknowledged.  */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "vdb_log.h"
#include "vdb_route.h"
#include "vdp_ids.h"
#include "vedetta.h"

#define CATCH_UP_ROWS   512 // stored messages read for one stream per call: keeps the loop moving
#define DURABLE_KEY_MAX (VDP_KEY_Z85_LEN + 1 + VDP_MAX_DURABLE + 1)

typedef struct {
    vdb_server_t *server;
    const vdp_envelope_t *env;
    const char *topic;    // delivery topic
    const char *only_org; // for directed messages: the recipient org
    int64_t now;          // for expiry
} route_ctx_t;

//  The key of a durable stream in server->durables: the subscriber's key and the name.
static void
s_durable_key(const char *key, const char *name, char out[DURABLE_KEY_MAX])
{
    snprintf(out, DURABLE_KEY_MAX, "%s/%s", key, name);
}

/*  Whether `session` may be sent one more delivery now. A broker without a store has nothing to
    fall back to, so there credit does not stop deliveries: only the backlog bound does (past
    it they are dropped), as a burst beyond the client's window would otherwise be lost.  */
static bool
s_has_room(vdb_server_t *self, const vdb_session_t *session)
{
    return (session->credit > 0 || !self->store) && !session->gone_at &&
           session->backlog_bytes + session->out.size <= self->config.session_backlog;
}

static void
s_set_behind(vdb_server_t *self, vdb_stream_t *stream, uint64_t pos)
{
    vdb_session_t *session = stream->session;
    if (stream->live) {
        stream->live = false;
        session->behind++;
        self->behind++;
    }
    stream->pos = pos;
}

static void
s_set_live(vdb_server_t *self, vdb_stream_t *stream)
{
    vdb_session_t *session = stream->session;
    if (!stream->live) {
        stream->live = true;
        //  What the read passed over is behind it for good: a batch written before the read
        //  but routed after it must not bring those messages again.
        if (stream->pos > stream->last_seq)
            stream->last_seq = stream->pos;
        session->behind--;
        self->behind--;
    }
}

//  Appends one deliver to the stream's session, spending a credit.
static void
s_write_deliver(vdb_server_t *self,
                vdb_stream_t *stream,
                const char *pattern,
                uint64_t seq,
                int64_t accepted_at,
                const uint8_t *raw,
                size_t raw_len)
{
    vdb_session_t *session = stream->session;
    const char *durable = stream->kind == VDB_STREAM_DURABLE ? stream->durable : NULL;
    vdp_writer_t *out = vdb_session_writer(session, VDB_DELIVER_OVERHEAD + raw_len);
    if (out && vdp_writer_deliver(out, pattern, durable, seq, accepted_at, raw, raw_len) == VD_OK) {
        stream->last_seq = seq;
        if (session->credit > 0)
            session->credit--;
        self->stats.delivered++;
        vdb_server_mark_dirty(self, session);
    }
}

//  A session without room: its stream falls behind and will read the store from this message
//  on; without a store, the delivery is dropped (counted, logged once per episode).
static void
s_no_room(vdb_server_t *self, vdb_stream_t *stream, uint64_t seq)
{
    vdb_session_t *session = stream->session;
    if (self->store) {
        s_set_behind(self, stream, seq - 1);
        vdb_log_info("vdb_server: stream behind org=%s key=%s durable=%s at seq=%" PRIu64
                     " credit=%" PRIu32 " backlog=%zu",
                     session->agency->org, session->key, stream->durable, seq, session->credit,
                     session->backlog_bytes);
        return;
    }
    stream->last_seq = seq; // dropped: not to be tried again
    session->dropped++;
    self->stats.dropped++;
    if (!session->overflowing)
        vdb_log_warning("vdb_server: session cannot take more, dropping deliveries org=%s key=%s",
                        session->agency->org, session->key);
    session->overflowing = true; // cleared once its backlog has drained
}

//  Queues one delivery of ctx->env to a live stream if it may receive it.
static void
s_deliver(void *subscriber, const char *pattern, void *arg)
{
    route_ctx_t *ctx = arg;
    vdb_server_t *self = ctx->server;
    vdb_stream_t *stream = subscriber;
    vdb_session_t *session = stream->session;
    const vdp_envelope_t *env = ctx->env;
    if (!stream->live || stream->last_seq >= env->seq)
        return; // behind (the store will feed it), or another of its patterns matched already
    if (ctx->only_org && strcmp(session->agency->org, ctx->only_org) != 0)
        return; // a directed message goes to its recipient's sessions only
    if (env->expires && env->expires <= ctx->now)
        return; // expired on its way: never delivered late
    char reason[VDP_MAX_REASON + 1] = "";
    int rc = vdb_acl_check_deliver(self->policy, session->agency, env, ctx->topic, reason,
                                   sizeof reason);
    if (rc != VD_OK) {
        self->stats.withheld++;
        vdb_log_info("vdb_server: withheld seq=%" PRIu64 " to=%s rc=%s reason=%s", env->seq,
                     session->agency->org, vd_strerror_name(rc), reason);
        vdb_server_audit(self, VDP_AUDIT_DELIVER_WITHHELD, session->agency->org, session->key,
                         ctx->topic, env->id, env->seq, rc, reason);
        return;
    }
    if (!s_has_room(self, session)) {
        s_no_room(self, stream, env->seq);
        return;
    }
    s_write_deliver(self, stream, pattern, env->seq, env->accepted_at, env->raw, env->raw_len);
}

void
vdb_route_message(vdb_server_t *self, const vdp_envelope_t *env)
{
    route_ctx_t ctx = {
        .server = self, .env = env, .topic = env->topic, .now = vdb_server_now_ms()
    };
    if (strcmp(env->topic, "inbox") != 0) {
        vdb_subs_match(self->subs, env->topic, s_deliver, &ctx);
        return;
    }
    //  Directed: each recipient on its own inbox topics, and only its own sessions.
    for (size_t i = 0; i < env->to_count; i++) {
        const vdp_agency_t *recipient = vdb_registry_org(self->registry, env->to[i]);
        if (!recipient)
            continue; // checked at publish; a reload may have removed it since
        char topics[VDP_MAX_JUR][VDP_MAX_TOPIC + 1];
        size_t count = vdb_acl_inbox_topics(recipient, topics, VDP_MAX_JUR);
        ctx.only_org = recipient->org;
        for (size_t t = 0; t < count; t++) {
            ctx.topic = topics[t];
            vdb_subs_match(self->subs, topics[t], s_deliver, &ctx);
        }
    }
}

//  -------------------------------------------------------------------------------------------
//  Catching up from the store

typedef struct {
    vdb_server_t *server;
    vdb_stream_t *stream;
    int64_t now;
    bool full; // stopped: the session has no room
} catch_up_ctx_t;

//  One stored message for a stream that is behind: delivered if it reaches the stream's
//  session under today's rules; passed over either way.
static int
s_catch_up_one(const vdb_store_msg_t *msg, void *arg)
{
    catch_up_ctx_t *ctx = arg;
    vdb_server_t *self = ctx->server;
    vdb_stream_t *stream = ctx->stream;
    vdb_session_t *session = stream->session;
    if (!s_has_room(self, session)) {
        ctx->full = true;
        return 1; // this one stays after pos: read again when there is room
    }
    stream->pos = msg->seq;
    if (msg->seq <= stream->last_seq || (msg->expires && msg->expires <= ctx->now))
        return 0;
    char topic[VDP_MAX_TOPIC + 1], pattern[VDP_MAX_TOPIC + 1];
    if (!vdb_stream_match(stream, session->agency, msg, topic, pattern))
        return 0;
    vdp_envelope_t *env = &self->replay;
    if (vdp_envelope_decode(env, msg->raw, msg->raw_len, NULL, 0) != VD_OK) {
        vdb_log_error("vdb_server: stored envelope seq=%" PRIu64 " does not decode", msg->seq);
        return 0;
    }
    env->seq = msg->seq;
    env->accepted_at = msg->accepted_at;
    char reason[VDP_MAX_REASON + 1] = "";
    int rc =
        vdb_acl_check_deliver(self->policy, session->agency, env, topic, reason, sizeof reason);
    if (rc != VD_OK) {
        self->stats.withheld++;
        vdb_log_info("vdb_server: withheld seq=%" PRIu64 " to=%s rc=%s reason=%s (replay)",
                     msg->seq, session->agency->org, vd_strerror_name(rc), reason);
        vdb_server_audit(self, VDP_AUDIT_DELIVER_WITHHELD, session->agency->org, session->key,
                         topic, msg->id, msg->seq, rc, reason);
        return 0;
    }
    s_write_deliver(self, stream, pattern, msg->seq, msg->accepted_at, msg->raw, msg->raw_len);
    self->stats.replayed++;
    return 0;
}

//  Feeds one stream that is behind. Returns true if it could take more now.
static bool
s_catch_up_stream(vdb_server_t *self, vdb_stream_t *stream, int64_t now)
{
    catch_up_ctx_t ctx = { .server = self, .stream = stream, .now = now };
    int read =
        vdb_store_scan(vdb_server_store(self), stream->pos, CATCH_UP_ROWS, s_catch_up_one, &ctx);
    if (read < 0) {
        vdb_log_warning("vdb_server: store scan failed for a stream behind; will try again");
        return false;
    }
    if (ctx.full)
        return false; // wait for credit or for the backlog to drain
    if ((size_t)read < CATCH_UP_ROWS) {
        //  The end of the store: every stored message has been routed (this runs between
        //  rounds), and every later one will be routed to it now that it is live.
        s_set_live(self, stream);
        vdb_log_info("vdb_server: stream caught up org=%s key=%s durable=%s at seq=%" PRIu64,
                     ((vdb_session_t *)stream->session)->agency->org,
                     ((vdb_session_t *)stream->session)->key, stream->durable, self->seq);
        return false;
    }
    return true;
}

bool
vdb_route_catch_up(vdb_server_t *self)
{
    if (self->behind == 0 || !self->store)
        return false;
    int64_t now = vdb_server_now_ms();
    bool more = false;
    for (vdb_session_t *session = zhashx_first(self->sessions); session;
         session = zhashx_next(self->sessions)) {
        if (session->behind == 0 || !s_has_room(self, session))
            continue;
        //  The list is not changed while it is walked: catching up never drops a stream.
        for (vdb_stream_t *stream = zlistx_first(session->streams); stream;
             stream = zlistx_next(session->streams))
            if (!stream->live && s_catch_up_stream(self, stream, now))
                more = true;
    }
    return more;
}

//  -------------------------------------------------------------------------------------------
//  Durable cursors

#define SAVE_BATCH 256 // cursors written per transaction

//  Whether a durable stream's cursor was moved by acknowledgements since it was written.
static bool
s_cursor_moved(const vdb_stream_t *stream)
{
    return stream->kind == VDB_STREAM_DURABLE && stream->acked != stream->saved;
}

//  The cursor to write for a durable stream: its key, its name, what was acknowledged.
static vdb_store_cursor_t
s_cursor_of(const vdb_stream_t *stream)
{
    const vdb_session_t *session = stream->session;
    return (
        vdb_store_cursor_t){ .key = session->key, .name = stream->durable, .seq = stream->acked };
}

//  Writes a batch of cursors in one transaction; on success marks them saved, else they are
//  tried again at the next pass.
static void
s_save_batch(vdb_server_t *self, vdb_stream_t **streams, vdb_store_cursor_t *cursors, size_t n)
{
    if (n == 0)
        return;
    if (vdb_store_cursor_set_many(vdb_server_store(self), cursors, n) != VD_OK) {
        vdb_log_warning("vdb_server: cannot save %zu durable cursor(s); will try again", n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        streams[i]->saved = cursors[i].seq;
}

void
vdb_route_save_cursors(vdb_server_t *self)
{
    if (!self->store)
        return;
    //  Every moved cursor in as few transactions (fsyncs) as possible: acks cost no fsync each.
    vdb_stream_t *streams[SAVE_BATCH];
    vdb_store_cursor_t cursors[SAVE_BATCH];
    size_t n = 0;
    for (vdb_stream_t *stream = zhashx_first(self->durables); stream;
         stream = zhashx_next(self->durables)) {
        if (!s_cursor_moved(stream))
            continue;
        streams[n] = stream;
        cursors[n++] = s_cursor_of(stream);
        if (n == SAVE_BATCH) {
            s_save_batch(self, streams, cursors, n);
            n = 0;
        }
    }
    s_save_batch(self, streams, cursors, n);
}

//  Takes a stream out of the index and its session, saving its cursor first.
static void
s_drop_stream(vdb_server_t *self, vdb_session_t *session, vdb_stream_t *stream)
{
    vdb_subs_remove_all(self->subs, stream);
    if (stream->kind == VDB_STREAM_DURABLE) {
        if (s_cursor_moved(stream)) {
            vdb_store_cursor_t cursor = s_cursor_of(stream);
            s_save_batch(self, &stream, &cursor, 1);
        }
        char key[DURABLE_KEY_MAX];
        s_durable_key(session->key, stream->durable, key);
        if (zhashx_lookup(self->durables, key) == stream)
            zhashx_delete(self->durables, key);
    }
    if (!stream->live)
        self->behind--;
    vdb_session_drop_stream(session, stream);
}

void
vdb_route_session_closing(vdb_server_t *self, vdb_session_t *session)
{
    vdb_stream_t *stream;
    while ((stream = zlistx_first(session->streams)))
        s_drop_stream(self, session, stream);
}

//  -------------------------------------------------------------------------------------------
//  Commands

static void
s_ok(vdb_server_t *self, vdb_session_t *session, uint64_t ref, uint64_t seq, bool with_seq)
{
    vdp_writer_t *out = vdb_session_writer(session, VDB_CMD_OVERHEAD);
    if (!out)
        return;
    int rc = with_seq ? vdp_writer_ok_seq(out, ref, seq) : vdp_writer_ok(out, ref);
    if (rc == VD_OK)
        vdb_server_mark_dirty(self, session);
}

/*  Where a new stream with history starts: after the seq it names, the first message since the
    time it names, its durable cursor, or (none of these) now. Never after the last seq.
    Returns VD_OK with *after, or VD_ESTORE with `reason`.  */
static int
s_start(vdb_server_t *self,
        vdb_session_t *session,
        const vdp_cmd_t *cmd,
        uint64_t *after,
        bool *from_cursor,
        char *reason,
        size_t reason_size)
{
    uint64_t seq = self->seq;
    int rc = VD_OK;
    *from_cursor = false;
    if (cmd->from_seq)
        seq = cmd->from_seq - 1;
    else if (cmd->since) {
        uint64_t first;
        rc = vdb_store_seq_at(vdb_server_store(self), cmd->since, &first);
        if (rc == VD_OK)
            seq = first - 1;
    } else if (cmd->durable[0]) {
        uint64_t cursor;
        rc = vdb_store_cursor_get(vdb_server_store(self), session->key, cmd->durable, &cursor);
        if (rc == VD_OK) {
            seq = cursor;
            *from_cursor = true;
        }
    }
    if (rc != VD_OK && rc != VD_ENOTFOUND) {
        snprintf(reason, reason_size, "store unavailable to find where the stream starts");
        return VD_ESTORE;
    }
    *after = seq < self->seq ? seq : self->seq;
    return VD_OK;
}

/*  Opens a stream with history (a replay, or a durable stream not open on this session): a
    durable stream open on another session of the same key moves here. Returns the stream, or
    NULL after answering the error.  */
static vdb_stream_t *
s_open_stream(vdb_server_t *self, vdb_session_t *session, const vdp_cmd_t *cmd)
{
    char reason[VDP_MAX_REASON + 1] = "";
    if (zlistx_size(session->streams) >= VDB_SESSION_MAX_STREAMS) {
        vdb_server_error(self, session, cmd->ref, VD_ELIMIT, "too many streams on one session");
        return NULL;
    }
    bool durable = cmd->durable[0] != '\0';
    char key[DURABLE_KEY_MAX];
    if (durable) {
        s_durable_key(session->key, cmd->durable, key);
        vdb_stream_t *old = zhashx_lookup(self->durables, key);
        if (old) { // a session of the same key still holds it (a reconnect): this one wins
            vdb_log_notice("vdb_server: durable %s of org=%s moves to a new session", cmd->durable,
                           session->agency->org);
            s_drop_stream(self, old->session, old); // saves its acknowledgements first
        }
    }
    uint64_t after;
    bool from_cursor;
    int rc = s_start(self, session, cmd, &after, &from_cursor, reason, sizeof reason);
    if (rc != VD_OK) {
        vdb_server_error(self, session, cmd->ref, rc, reason);
        return NULL;
    }
    if (durable) {
        //  A new durable stream (or one moved by an explicit replay) is written at once: a
        //  subscriber that drops before its first ack resumes from here, not from a later now.
        if (!from_cursor && vdb_store_cursor_set(vdb_server_store(self), session->key, cmd->durable,
                                                 after) != VD_OK) {
            vdb_server_error(self, session, cmd->ref, VD_ESTORE,
                             "store unavailable to keep the durable cursor");
            return NULL;
        }
    }
    vdb_stream_t *stream = vdb_stream_new(session, durable ? VDB_STREAM_DURABLE : VDB_STREAM_REPLAY,
                                          durable ? cmd->durable : NULL);
    if (!stream || vdb_session_add_stream(session, stream) != VD_OK) {
        vdb_stream_destroy(&stream);
        vdb_server_error(self, session, cmd->ref, VD_ENOMEM, "broker out of memory");
        return NULL;
    }
    stream->last_seq = stream->acked = stream->saved = after;
    if (durable && zhashx_insert(self->durables, key, stream) != 0) {
        vdb_session_drop_stream(session, stream);
        vdb_server_error(self, session, cmd->ref, VD_ENOMEM, "broker out of memory");
        return NULL;
    }
    if (after < self->seq)
        s_set_behind(self, stream, after);
    return stream;
}

//  The stream a sub command adds its pattern to, found or opened; NULL after answering.
static vdb_stream_t *
s_stream_for(vdb_server_t *self, vdb_session_t *session, const vdp_cmd_t *cmd)
{
    bool history = cmd->durable[0] || cmd->from_seq || cmd->since;
    if (history && !self->store) {
        vdb_server_error(self, session, cmd->ref, VD_ESTORE,
                         "this broker keeps no store: no durable subscription or replay");
        return NULL;
    }
    if (cmd->durable[0]) {
        vdb_stream_t *open = vdb_session_durable(session, cmd->durable);
        if (open && (cmd->from_seq || cmd->since)) {
            vdb_server_error(self, session, cmd->ref, VD_EINVAL,
                             "durable subscription already open on this session: replay "
                             "applies when it is opened");
            return NULL;
        }
        return open ? open : s_open_stream(self, session, cmd);
    }
    if (history)
        return s_open_stream(self, session, cmd);
    vdb_stream_t *live = vdb_session_live_stream(session);
    if (live)
        return live;
    if (zlistx_size(session->streams) >= VDB_SESSION_MAX_STREAMS) {
        vdb_server_error(self, session, cmd->ref, VD_ELIMIT, "too many streams on one session");
        return NULL;
    }
    live = vdb_stream_new(session, VDB_STREAM_LIVE, NULL);
    if (!live || vdb_session_add_stream(session, live) != VD_OK) {
        vdb_stream_destroy(&live);
        vdb_server_error(self, session, cmd->ref, VD_ENOMEM, "broker out of memory");
        return NULL;
    }
    live->last_seq = self->seq;
    return live;
}

//  Drops a stream left without patterns (a durable one keeps its cursor in the store).
static void
s_drop_if_empty(vdb_server_t *self, vdb_session_t *session, vdb_stream_t *stream)
{
    if (vdb_stream_pattern_count(stream) == 0)
        s_drop_stream(self, session, stream);
}

void
vdb_route_subscribe(vdb_server_t *self, vdb_session_t *session, const vdp_cmd_t *cmd)
{
    char reason[VDP_MAX_REASON + 1] = "";
    int rc =
        vdb_acl_check_subscribe(self->policy, session->agency, cmd->pattern, reason, sizeof reason);
    if (rc != VD_OK) {
        char shown[VDP_MAX_TOPIC + 1]; // the peer's text, maybe not a pattern at all
        vdp_sanitize(cmd->pattern, strlen(cmd->pattern), shown, sizeof shown);
        vdb_log_notice("vdb_server: subscribe denied org=%s pattern=%s rc=%s reason=%s",
                       session->agency->org, shown, vd_strerror_name(rc), reason);
        vdb_server_audit(self, VDP_AUDIT_SUB_DENY, session->agency->org, session->key, shown, NULL,
                         0, rc, reason);
        vdb_server_error(self, session, cmd->ref, rc, reason);
        return;
    }
    if (session->pattern_count >= VDB_SESSION_MAX_SUBS) {
        vdb_server_error(self, session, cmd->ref, VD_ELIMIT,
                         "too many subscriptions on one session");
        return;
    }
    vdb_stream_t *stream = s_stream_for(self, session, cmd);
    if (!stream)
        return;
    if (!vdb_stream_has_pattern(stream, cmd->pattern)) {
        if (vdb_stream_add_pattern(stream, cmd->pattern) != VD_OK) {
            s_drop_if_empty(self, session, stream);
            vdb_server_error(self, session, cmd->ref, VD_ENOMEM, "broker out of memory");
            return;
        }
        if (vdb_subs_add(self->subs, cmd->pattern, stream) < 0) {
            vdb_stream_remove_pattern(stream, cmd->pattern);
            s_drop_if_empty(self, session, stream);
            vdb_server_error(self, session, cmd->ref, VD_ENOMEM, "broker out of memory");
            return;
        }
        session->pattern_count++;
    }
    uint64_t after = stream->live ? stream->last_seq : stream->pos;
    vdb_log_info("vdb_server: subscribed org=%s pattern=%s durable=%s after=%" PRIu64,
                 session->agency->org, cmd->pattern, stream->durable, after);
    char how[VDP_MAX_DURABLE + 64];
    snprintf(how, sizeof how, "%s%s, from after seq %" PRIu64,
             stream->durable[0] ? "durable " : "live", stream->durable, after);
    vdb_server_audit(self, VDP_AUDIT_SUB_GRANT, session->agency->org, session->key, cmd->pattern,
                     NULL, 0, VD_OK, how);
    s_ok(self, session, cmd->ref, after, true);
}

void
vdb_route_unsubscribe(vdb_server_t *self, vdb_session_t *session, const vdp_cmd_t *cmd)
{
    vdb_stream_t *stream = vdb_session_stream_of(session, cmd->pattern, cmd->durable);
    if (!stream) {
        vdb_server_error(self, session, cmd->ref, VD_ENOTFOUND, "no such subscription");
        return;
    }
    vdb_stream_remove_pattern(stream, cmd->pattern);
    vdb_subs_remove(self->subs, cmd->pattern, stream);
    session->pattern_count--;
    s_drop_if_empty(self, session, stream);
    s_ok(self, session, cmd->ref, 0, false);
}

void
vdb_route_ack(vdb_server_t *self, vdb_session_t *session, const vdp_cmd_t *cmd)
{
    vdb_stream_t *stream = vdb_session_durable(session, cmd->durable);
    if (!stream) {
        vdb_server_error(self, session, cmd->ref, VD_ENOTFOUND,
                         "no durable subscription of that name on this session");
        return;
    }
    uint64_t passed = stream->live ? self->seq : stream->pos; // delivered or passed over
    if (cmd->seq > passed) {
        vdb_server_error(self, session, cmd->ref, VD_EINVAL, "ack beyond what was delivered");
        return;
    }
    if (cmd->seq > stream->acked)
        stream->acked = cmd->seq; // written by vdb_route_save_cursors, coalesced
}

void
vdb_route_credit(vdb_server_t *self, vdb_session_t *session, const vdp_cmd_t *cmd)
{
    (void)self;
    uint64_t credit = (uint64_t)session->credit + cmd->credit;
    session->credit = credit > VDP_MAX_CREDIT ? VDP_MAX_CREDIT : (uint32_t)credit;
}

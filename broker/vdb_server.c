/*  vdb_server: see vdb_server.h.
    Invariants:
    - identity comes only from the ZAP User-Id of each inbound message; the key is looked up in
      the registry on every frame, so a key that is no longer active is cut at its next frame;
    - every pub command gets exactly one receipt (accepted, duplicate or rejected);
    - a session receives a given message at most once, however many of its patterns match;
    - nothing blocks the loop on one peer: sends are non-blocking, a full peer keeps a bounded
      backlog, and past the bound its deliveries are dropped and counted.  */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <czmq.h>
#include <sodium.h>

#include "vdp_errors.h"
#include "vdb_acl.h"
#include "vdb_index.h"
#include "vdb_pending.h"
#include "vdb_log.h"
#include "vdb_registry.h"
#include "vdb_route.h"
#include "vdb_server.h"
#include "vdb_server_impl.h"
#include "vdb_session.h"
#include "vdb_store.h"
#include "vdb_subs.h"
#include "vdb_zap.h"
#include "vdp_agency.h"
#include "vdp_sig.h"
#include "vdp_ids.h"
#include "vdp_msg.h"
#include "vdp_topic.h"
#include "vedetta.h"

#define READ_BATCH      512 // messages read per poll round before flushing
#define HOUSEKEEPING_MS 250 // how often idle sessions and acked cursors are seen to
#define RETRY_MS        5   // poll timeout while some session's output is blocked
//  How often the audit log is fsynced and its signed head replaced: what a power loss may take
//  of the log (a crash of the broker takes nothing: every round's records are written before
//  its receipts and deliveries are sent).
#define AUDIT_CHECKPOINT_MS 1000
#define DEFAULT_HB_MS       2000       // heartbeat granted when hello asks for none
#define PENDING_MAX_COUNT   4096       // commit before staging more than this...
#define PENDING_MAX_BYTES   (8u << 20) // ...or this many envelope bytes

int64_t
vdb_server_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
s_session_free(void **item_p)
{
    vdb_session_destroy((vdb_session_t **)item_p);
}

void
vdb_server_mark_dirty(vdb_server_t *self, vdb_session_t *session)
{
    if (session->gone_at) {
        vdb_session_discard(session); // nobody to send it to
        return;
    }
    if (!session->dirty) {
        session->dirty = true;
        zlistx_add_end(self->dirty, session);
    }
}

static void
s_session_close(vdb_server_t *self, vdb_session_t *session, const char *why)
{
    vdb_log_info("vdb_server: session closed org=%s key=%s why=%s dropped=%" PRIu64,
                 session->agency ? session->agency->org : "?", session->key, why, session->dropped);
    vdb_route_session_closing(self, session);
    if (session->dirty) {
        void *handle = zlistx_find(self->dirty, session);
        if (handle)
            zlistx_delete(self->dirty, handle);
    }
    zhashx_delete(self->sessions, session->rid_key); // destroys it
    self->stats.sessions = zhashx_size(self->sessions);
}

void
vdb_server_close_session(vdb_server_t *self, vdb_session_t *session, const char *why)
{
    s_session_close(self, session, why);
}

//  Logs an audit failure once per episode, and its end.
static void
s_audit_failing(vdb_server_t *self, int rc, const char *what)
{
    if (rc == VD_OK) {
        if (self->audit_failing)
            vdb_log_notice("vdb_server: the audit log works again");
        self->audit_failing = false;
    } else if (!self->audit_failing) {
        vdb_log_error("vdb_server: audit log: %s (%s); logged once until it works again", what,
                      vd_strerror_name(rc));
        self->audit_failing = true;
    }
}

void
vdb_server_audit(vdb_server_t *self,
                 vdp_audit_kind_t kind,
                 const char *org,
                 const char *key,
                 const char *topic,
                 const char *id,
                 uint64_t seq,
                 int code,
                 const char *reason)
{
    vdp_audit_record_t record = {
        .kind = kind,
        .org = org,
        .key = key,
        .topic = topic,
        .id = id,
        .seq = seq,
        .code = code == VD_OK ? "OK" : vd_strerror_name(code),
        .reason = reason && *reason ? reason : NULL,
    };
    vdb_server_audit_record(self, &record);
}

void
vdb_server_audit_record(vdb_server_t *self, const vdp_audit_record_t *record)
{
    if (!self->audit)
        return;
    int rc = vdb_audit_record(self->audit, record);
    if (rc == VD_ELIMIT) { // a full buffer: write it out now, then the record fits
        char err[256];
        if (vdb_audit_flush(self->audit, false, err, sizeof err) == VD_OK)
            rc = vdb_audit_record(self->audit, record);
    }
    s_audit_failing(self, rc, "a record could not be kept");
}

void
vdb_server_error(
    vdb_server_t *self, vdb_session_t *session, uint64_t ref, int code, const char *reason)
{
    self->stats.errors++;
    vdp_writer_t *out = vdb_session_writer(session, VDB_CMD_OVERHEAD + strlen(reason));
    if (out && vdp_writer_error(out, ref, code, reason) == VD_OK)
        vdb_server_mark_dirty(self, session);
}

//  Sends a batch to a peer that has no session (yet), at once or not at all.
static void
s_send_direct(vdb_server_t *self, const uint8_t *rid, size_t rid_len, vdp_writer_t *out)
{
    if (!out->failed && out->size > 0 &&
        zmq_send(self->router_handle, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
        zmq_send(self->router_handle, out->data, out->size, ZMQ_DONTWAIT);
}

//  Answers a peer that has no session (yet) with one error.
static void
s_error_direct(vdb_server_t *self,
               const uint8_t *rid,
               size_t rid_len,
               uint64_t ref,
               int code,
               const char *reason)
{
    self->stats.errors++;
    vdp_writer_t out;
    vdp_writer_init(&out);
    if (vdp_writer_error(&out, ref, code, reason) == VD_OK)
        s_send_direct(self, rid, rid_len, &out);
    vdp_writer_release(&out);
}

void
vdb_server_error_direct(
    vdb_server_t *self, const uint8_t *rid, size_t rid_len, int code, const char *reason)
{
    s_error_direct(self, rid, rid_len, 0, code, reason);
}

//  The answer to one command read without a session: its own decoding error, or ESESSION; a
//  pub whose id could be read gets a rejected receipt, anything else an error.
static void
s_orphan_reply(
    vdp_writer_t *out, const vdp_cmd_t *cmd, const vdp_envelope_t *env, int rc, const char *reason)
{
    int code = rc == VD_OK ? VD_ESESSION : rc;
    char safe[VDP_MAX_REASON + 1];
    vdp_sanitize(reason, strlen(reason), safe, sizeof safe);
    const char *text = rc == VD_OK ? "no session: send hello first" : safe;
    if (cmd->op == VDP_OP_PUB && vdp_uuid_valid(env->id))
        vdp_writer_receipt(out, env->id, VDP_RECEIPT_REJECTED, 0, 0, code, text, 0);
    else
        vdp_writer_error(out, cmd->op == VDP_OP_PUB ? 0 : cmd->ref, code, text);
}

static void
s_receipt(vdb_server_t *self,
          vdb_session_t *session,
          const char *id,
          vdp_receipt_status_t status,
          uint64_t seq,
          int64_t at,
          int code,
          const char *reason,
          uint32_t retry_after_ms)
{
    vdp_writer_t *out = vdb_session_writer(session, VDB_CMD_OVERHEAD + strlen(reason));
    if (out && vdp_writer_receipt(out, id, status, seq, at, code, reason, retry_after_ms) == VD_OK)
        vdb_server_mark_dirty(self, session);
}

static void
s_reject(vdb_server_t *self, vdb_session_t *session, const char *id, int code, const char *reason)
{
    self->stats.rejected++;
    vdb_log_notice("vdb_server: publish rejected org=%s id=%s rc=%s reason=%s",
                   session->agency->org, id, vd_strerror_name(code), reason);
    vdb_server_audit(self, VDP_AUDIT_PUB_REJECT, session->agency->org, session->key, NULL, id, 0,
                     code, reason);
    s_receipt(self, session, id, VDP_RECEIPT_REJECTED, 0, 0, code, reason, 0);
}

//  -------------------------------------------------------------------------------------------
//  Commands

/*  Opens a session, or renegotiates an open one. Without a session, a refusal is appended to
    `orphan`, the frame's other sessionless answers, so that answers keep the commands' order.  */
static void
s_hello(vdb_server_t *self,
        vdb_session_t **session_p,
        const uint8_t *rid,
        size_t rid_len,
        const char *key,
        const vdp_agency_t *agency,
        const vdp_cmd_t *cmd,
        vdp_writer_t *orphan)
{
    if (cmd->version != VDP_VERSION) {
        char reason[96];
        snprintf(reason, sizeof reason, "protocol version %u not supported (this broker: %u)",
                 cmd->version, VDP_VERSION);
        if (*session_p)
            vdb_server_error(self, *session_p, cmd->ref, VD_EVERSION, reason);
        else
            vdp_writer_error(orphan, cmd->ref, VD_EVERSION, reason);
        return;
    }
    vdb_session_t *session = *session_p;
    if (!session) {
        session = vdb_session_new(rid, rid_len, key, agency);
        if (!session || zhashx_insert(self->sessions, session->rid_key, session) != 0) {
            vdb_session_destroy(&session);
            vdp_writer_error(orphan, cmd->ref, VD_ENOMEM, "broker out of memory");
            return;
        }
        self->stats.sessions = zhashx_size(self->sessions);
        session->last_seen = zclock_mono();
        *session_p = session;
        char agent[VDP_MAX_SHORT + 1];
        vdp_sanitize(cmd->agent, strlen(cmd->agent), agent, sizeof agent);
        vdb_log_info("vdb_server: session opened org=%s key=%s label=%s agent=%s", agency->org, key,
                     agency->label, agent);
    }
    uint32_t hb = cmd->heartbeat_ms ? cmd->heartbeat_ms : DEFAULT_HB_MS;
    if (hb < VDP_MIN_HEARTBEAT_MS)
        hb = VDP_MIN_HEARTBEAT_MS;
    if (hb > VDP_MAX_HEARTBEAT_MS)
        hb = VDP_MAX_HEARTBEAT_MS;
    session->heartbeat_ms = hb;
    uint32_t credit = cmd->credit ? cmd->credit : VDP_DEFAULT_CREDIT;
    session->credit = credit < VDP_MAX_CREDIT ? credit : VDP_MAX_CREDIT;

    vdp_cmd_t *welcome = &self->cmd; // the hello was copied out already; reuse the scratch
    vdp_cmd_reset(welcome);
    welcome->op = VDP_OP_WELCOME;
    welcome->ref = cmd->ref;
    welcome->version = VDP_VERSION;
    welcome->heartbeat_ms = hb;
    snprintf(welcome->broker, sizeof welcome->broker, "%s", self->name);
    snprintf(welcome->org, sizeof welcome->org, "%s", agency->org);
    snprintf(welcome->role, sizeof welcome->role, "%s", vdp_role_name(agency->role));
    for (size_t i = 0; i < agency->jur_count && i < VDP_MAX_JUR; i++)
        snprintf(welcome->jur[i], sizeof welcome->jur[i], "%s", agency->jur[i]);
    welcome->jur_count = agency->jur_count < VDP_MAX_JUR ? agency->jur_count : VDP_MAX_JUR;
    welcome->inbox_count = vdb_acl_inbox_topics(agency, welcome->inbox, VDP_MAX_JUR);
    welcome->max_body = VDP_MAX_BODY;
    welcome->max_frame = VDP_MAX_FRAME;
    welcome->max_batch = VDP_MAX_BATCH;
    welcome->credit = session->credit;
    vdp_writer_t *out = vdb_session_writer(session, 2048);
    if (out && vdp_writer_welcome(out, welcome) == VD_OK)
        vdb_server_mark_dirty(self, session);
}

//  A message staged or in the batch in flight, or NULL.
static const vdb_store_msg_t *
s_staged(vdb_server_t *self, const char *sender, const char *id)
{
    const vdb_store_msg_t *msg = vdb_pending_find(self->staged, sender, id);
    return msg ? msg : vdb_pending_find(self->committing, sender, id);
}

/*  What the broker knows of (sender, id), staged messages aside: from the store (whose memory
    answers "not stored" without waiting for the batch in flight), else from the cache of
    recent messages of a broker without a store. Returns VD_OK, VD_ENOTFOUND, or VD_ESTORE.  */
static int
s_lookup(vdb_server_t *self, const char *sender, const char *id, vdb_index_entry_t *entry)
{
    if (!self->store) {
        const vdb_index_entry_t *cached = vdb_index_get(self->index, sender, id);
        if (cached)
            *entry = *cached;
        return cached ? VD_OK : VD_ENOTFOUND;
    }
    if (!vdb_store_may_hold(self->store, sender, id))
        return VD_ENOTFOUND;
    return vdb_store_lookup(vdb_server_store(self), sender, id, &entry->seq, &entry->accepted_at,
                            &entry->tlp);
}

//  A stored or accepted message's publisher is answered (a broker without a store remembers it).
static void
s_answer_accepted(vdb_server_t *self,
                  vdb_session_t *session,
                  const char *key,
                  const char *topic,
                  const char *sender,
                  const char *id,
                  uint64_t seq,
                  int64_t accepted_at,
                  vdp_tlp_t tlp)
{
    vdb_server_audit(self, VDP_AUDIT_PUB_ACCEPT, sender, key, topic, id, seq, VD_OK, NULL);
    if (!self->store)
        vdb_index_put(self->index, sender, id,
                      (vdb_index_entry_t){ .seq = seq, .accepted_at = accepted_at, .tlp = tlp });
    self->stats.accepted++;
    if (session)
        s_receipt(self, session, id, VDP_RECEIPT_ACCEPTED, seq, accepted_at, VD_OK, "", 0);
}

//  An accepted message (stamped with seq and accepted_at), published with `key`: remembered,
//  answered, routed.
static void
s_accepted(vdb_server_t *self, vdb_session_t *session, const char *key, const vdp_envelope_t *env)
{
    s_answer_accepted(self, session, key, env->topic, env->sender, env->id, env->seq,
                      env->accepted_at, env->tlp);
    vdb_log_debug("vdb_server: accepted seq=%" PRIu64 " org=%s topic=%s tlp=%s", env->seq,
                  env->sender, env->topic, vdp_tlp_name(env->tlp));
    vdb_route_message(self, env);
}

/*  Group commit, in three steps so that the loop keeps reading while a batch is written:
    - s_commit_start hands what is staged to the committer (numbered after the last seq);
    - s_commit_wait waits until it is written and ends the append in the store, which is then
      the loop's again (vdb_server_store), keeping the result;
    - s_commit_answer answers each publisher and routes each message; if the store refused the
      batch (disk full, I/O error), each is rejected with ESTORE instead and nothing is routed:
      no receipt ever says accepted for a message that is not on disk.
    Messages are routed in seq order, batch after batch, and only from the loop itself.  */

//  Rejects every message of `batch` with ESTORE and forgets them.
static void
s_commit_refused(vdb_server_t *self, vdb_pending_t *batch, const char *err)
{
    size_t count = vdb_pending_count(batch);
    const vdb_store_msg_t *records = vdb_pending_records(batch);
    vdb_log_error("vdb_server: store append failed, %zu message(s) rejected: %s", count, err);
    char reason[VDP_MAX_REASON + 1];
    snprintf(reason, sizeof reason, "not stored: %.200s", err);
    for (size_t i = 0; i < count; i++) {
        vdb_session_t *session = zhashx_lookup(self->sessions, vdb_pending_rid_key(batch, i));
        self->stats.rejected++;
        vdb_server_audit(self, VDP_AUDIT_PUB_REJECT, records[i].sender, records[i].key,
                         records[i].topic, records[i].id, 0, VD_ESTORE, reason);
        if (session)
            s_receipt(self, session, records[i].id, VDP_RECEIPT_REJECTED, 0, 0, VD_ESTORE, reason,
                      0);
    }
    vdb_pending_reset(batch);
}

static void
s_commit_start(vdb_server_t *self)
{
    size_t count = vdb_pending_count(self->staged);
    if (count == 0 || vdb_committer_busy(self->committer) ||
        vdb_pending_count(self->committing) > 0)
        return;
    vdb_pending_number(self->staged, self->seq + 1);
    const vdb_store_msg_t *records = vdb_pending_records(self->staged);
    char err[VDP_MAX_REASON + 1] = "";
    if (vdb_store_append_begin(self->store, records, count, err, sizeof err) != VD_OK) {
        s_commit_refused(self, self->staged, err);
        return;
    }
    vdb_pending_t *batch = self->staged;
    self->staged = self->committing;
    self->committing = batch;
    vdb_committer_start(self->committer, records, count);
}

static void
s_commit_wait(vdb_server_t *self)
{
    if (!vdb_committer_busy(self->committer))
        return;
    self->commit_rc =
        vdb_committer_wait(self->committer, self->commit_err, sizeof self->commit_err);
    vdb_store_append_end(self->store, vdb_pending_records(self->committing),
                         vdb_pending_count(self->committing), self->commit_rc == VD_OK);
}

static void
s_no_op(void *subscriber, const char *pattern, void *arg)
{
    (void)subscriber, (void)pattern, (void)arg;
}

//  Whether routing could hand `msg` to anyone: a directed one may reach its recipients'
//  sessions; any other needs a pattern that matches its topic. Spares decoding the rest.
static bool
s_wanted(const vdb_server_t *self, const vdb_store_msg_t *msg)
{
    return strcmp(msg->topic, "inbox") == 0 || vdb_subs_match(self->subs, msg->topic, s_no_op, 0);
}

static void
s_commit_answer(vdb_server_t *self)
{
    size_t count = vdb_pending_count(self->committing);
    if (count == 0 || vdb_committer_busy(self->committer))
        return;
    if (self->commit_rc != VD_OK) {
        s_commit_refused(self, self->committing, self->commit_err);
        return;
    }
    const vdb_store_msg_t *records = vdb_pending_records(self->committing);
    self->seq = records[count - 1].seq;
    for (size_t i = 0; i < count; i++) {
        const vdb_store_msg_t *msg = &records[i];
        //  A session gone since: the message is stored anyway, and a retry will say duplicate.
        //  (Routing ids are never reused while the broker runs, PROTOCOL.md §2, so a session
        //  found here is the one that published.)
        vdb_session_t *session =
            zhashx_lookup(self->sessions, vdb_pending_rid_key(self->committing, i));
        if (!s_wanted(self, msg)) {
            s_answer_accepted(self, session, msg->key, msg->topic, msg->sender, msg->id, msg->seq,
                              msg->accepted_at, msg->tlp);
            vdb_log_debug("vdb_server: accepted seq=%" PRIu64 " org=%s topic=%s tlp=%s (no route)",
                          msg->seq, msg->sender, msg->topic, vdp_tlp_name(msg->tlp));
            continue;
        }
        //  Route from the stored bytes: decoding them again costs less than keeping every
        //  decoded envelope of the round, and routes exactly what is on disk.
        if (vdp_envelope_decode(&self->committed, msg->raw, msg->raw_len, NULL, 0) != VD_OK) {
            //  Cannot happen (the same decoder passed these bytes); stored all the same, so the
            //  publisher still gets its one receipt, and nothing undecodable is routed.
            vdb_log_error("vdb_server: stored envelope seq=%" PRIu64 " does not decode", msg->seq);
            s_answer_accepted(self, session, msg->key, msg->topic, msg->sender, msg->id, msg->seq,
                              msg->accepted_at, msg->tlp);
            continue;
        }
        self->committed.seq = msg->seq;
        self->committed.accepted_at = msg->accepted_at;
        s_accepted(self, session, msg->key, &self->committed);
    }
    vdb_pending_reset(self->committing);
}

//  Answers the batch in flight once written; waits for it only if `block`.
static void
s_commit_finish(vdb_server_t *self, bool block)
{
    if (vdb_committer_busy(self->committer)) {
        if (!block && !vdb_committer_done(self->committer))
            return;
        s_commit_wait(self);
    }
    s_commit_answer(self);
}

//  Everything accepted so far is on disk (or refused) and answered.
static void
s_commit_all(vdb_server_t *self)
{
    if (!self->store)
        return;
    s_commit_finish(self, true);
    s_commit_start(self);
    s_commit_finish(self, true);
}

vdb_store_t *
vdb_server_store(vdb_server_t *self)
{
    s_commit_wait(self);
    return self->store;
}

/*  The rate limits of `who`: its role's from the policy (or the built-in defaults), its own
    agency file's rate and bytes over those of its key.  */
static void
s_limits(const vdb_server_t *self, const vdp_agency_t *who, vdb_limits_t *key, vdb_limits_t *org)
{
    vdb_policy_rates(self->policy, who->role, VDB_RATE_KEY, &key->msgs, &key->bytes);
    if (who->rate.per_second)
        key->msgs = who->rate;
    if (who->bytes.per_second)
        key->bytes = who->bytes;
    vdb_policy_rates(self->policy, who->role, VDB_RATE_ORG, &org->msgs, &org->bytes);
}

/*  Whether `env` fits its key's and its org's rate limits (and is counted against them); if not,
    it is rejected with ERATE and a retry_after hint. A refusal episode is logged once, when it
    starts and when it ends, not once per message: a flood must not flood the log too.  */
static bool
s_within_rate(vdb_server_t *self, vdb_session_t *session, const vdp_envelope_t *env)
{
    const vdp_agency_t *who = session->agency;
    vdb_limits_t key, org;
    s_limits(self, who, &key, &org);
    vdb_limiter_refusal_t refusal;
    if (vdb_limiter_take(self->limiter, session->key, &key, who->org, &org, env->raw_len,
                         zclock_usecs(), &refusal)) {
        if (session->throttled) {
            vdb_log_notice("vdb_server: rate limit: admitting again org=%s key=%s refused=%" PRIu64,
                           who->org, session->key, session->throttled);
            char summary[96];
            snprintf(summary, sizeof summary, "%" PRIu64 " publishes refused for the rate limit",
                     session->throttled);
            vdb_server_audit(self, VDP_AUDIT_PUB_REJECT, who->org, session->key, NULL, NULL, 0,
                             VD_ERATE, summary);
        }
        session->throttled = 0;
        return true;
    }
    const vdb_limits_t *limits = refusal.org ? &org : &key;
    const vdp_rate_t *rate = refusal.bytes ? &limits->bytes : &limits->msgs;
    char text[64] = "";
    vdp_rate_format(rate, text, sizeof text);
    char reason[VDP_MAX_REASON + 1];
    if (refusal.retry_after_ms == 0)
        snprintf(reason, sizeof reason, "envelope of %zu bytes is over the burst of %s %s (%s)",
                 env->raw_len, refusal.org ? "org" : "key", who->org, text);
    else
        snprintf(reason, sizeof reason, "%s %s over its rate of %s %s: retry after %" PRIu32 " ms",
                 refusal.org ? "org" : "key of", who->org, text,
                 refusal.bytes ? "bytes" : "messages", refusal.retry_after_ms);
    //  Logged and audited at the first refusal, then counted until a publish fits again: a
    //  flood must not flood the log and the audit log too.
    if (session->throttled++ == 0) {
        vdb_log_notice("vdb_server: rate limit: refusing org=%s key=%s reason=%s (logged once "
                       "until admitted again)",
                       who->org, session->key, reason);
        vdb_server_audit(self, VDP_AUDIT_PUB_REJECT, who->org, session->key, env->topic, env->id, 0,
                         VD_ERATE, reason);
    }
    self->stats.rejected++;
    s_receipt(self, session, env->id, VDP_RECEIPT_REJECTED, 0, 0, VD_ERATE, reason,
              refusal.retry_after_ms);
    return false;
}

static void
s_publish(vdb_server_t *self, vdb_session_t *session, vdp_envelope_t *env)
{
    const vdp_agency_t *who = session->agency;
    char reason[VDP_MAX_REASON + 1] = "";
    //  Only the frame bounds an envelope (its unknown keys have no cap of their own), but each
    //  subscriber gets it inside a deliver, in one frame it must be able to receive: one that
    //  could reach VDP_MAX_FRAME there would cut every subscriber's connection (ZMQ_MAXMSGSIZE).
    if (env->raw_len > VDP_MAX_FRAME - VDB_DELIVER_OVERHEAD) {
        snprintf(reason, sizeof reason, "envelope of %zu bytes is over the %u a deliver can carry",
                 env->raw_len, VDP_MAX_FRAME - VDB_DELIVER_OVERHEAD);
        s_reject(self, session, env->id, VD_ELIMIT, reason);
        return;
    }
    if (strcmp(env->sender, who->org) != 0) {
        char sender[VDP_MAX_ORG + 1];
        vdp_sanitize(env->sender, strlen(env->sender), sender, sizeof sender);
        snprintf(reason, sizeof reason, "sender %s does not match the key's org %s", sender,
                 who->org);
        s_reject(self, session, env->id, VD_ESENDER, reason);
        return;
    }
    //  A retry of a message still waiting for its commit: commit first, so that the retry is
    //  answered from what is really stored.
    if (self->store && s_staged(self, env->sender, env->id))
        s_commit_all(self);
    vdb_index_entry_t first;
    int found = s_lookup(self, env->sender, env->id, &first);
    if (found == VD_OK) { // a retry: harmless, answered with the first seq
        self->stats.duplicates++;
        s_receipt(self, session, env->id, VDP_RECEIPT_DUPLICATE, first.seq, first.accepted_at,
                  VD_OK, "", 0);
        return;
    }
    if (found != VD_ENOTFOUND) {
        s_reject(self, session, env->id, VD_ESTORE, "store unavailable for the duplicate check");
        return;
    }
    int64_t now = vdb_server_now_ms();
    if (env->expires && env->expires <= now) {
        s_reject(self, session, env->id, VD_EFIELD, "expires is in the past");
        return;
    }
    int rc = vdb_acl_check_publish(self->policy, self->registry, who, env, reason, sizeof reason);
    if (rc != VD_OK) {
        s_reject(self, session, env->id, rc, reason);
        return;
    }
    for (size_t i = 0; i < env->refs_count; i++) {
        const vdp_ref_t *ref = &env->refs[i];
        bool own_kind = env->kind == VDP_KIND_UPDATE || env->kind == VDP_KIND_CANCEL;
        if (own_kind && strcmp(ref->sender, env->sender) != 0) {
            s_reject(self, session, env->id, VD_EFIELD,
                     "update and cancel may only refer to the sender's own messages");
            return;
        }
        //  A reference this broker never stored (it may come from another broker, or have been
        //  pruned) cannot be checked for downgrade; it is accepted.
        const vdb_store_msg_t *staged = self->store ? s_staged(self, ref->sender, ref->id) : 0;
        vdb_index_entry_t target = { .tlp = staged ? staged->tlp : VDP_TLP_NONE };
        bool known = staged || s_lookup(self, ref->sender, ref->id, &target) == VD_OK;
        if (known &&
            vdb_acl_check_ref(env, ref->sender, target.tlp, reason, sizeof reason) != VD_OK) {
            s_reject(self, session, env->id, VD_ETLP, reason);
            return;
        }
    }
    if (!s_within_rate(self, session, env))
        return;
    //  Last of the checks, as the costliest (an Ed25519 verification when the tree is new to
    //  this session) and after the rate limit, so that a key sending bad signatures pays for
    //  them in its own tokens rather than in everyone's broker time.
    //  Decoded again only when the text differs: after a reload that changed the file.
    if (memcmp(session->sign_z85, who->sign_public, sizeof session->sign_z85) != 0) {
        bool valid = vdp_agency_sign_key(who, session->sign_public) == VD_OK;
        memcpy(session->sign_z85, valid ? who->sign_public : "",
               valid ? sizeof session->sign_z85 : 1);
    }
    rc = session->sign_z85[0]
             ? vdp_sig_verify(env, session->sign_public, &session->sig_cache, reason, sizeof reason)
             : vdp_errorf(reason, sizeof reason, VD_ESIG,
                          "sig: the key has no signing key registered");
    if (rc != VD_OK) {
        s_reject(self, session, env->id, rc == VD_ENOMEM ? VD_ENOMEM : VD_ESIG, reason);
        return;
    }
    env->accepted_at = now;
    if (!self->store) { // live only: nothing to wait for
        env->seq = ++self->seq;
        s_accepted(self, session, session->key, env);
        return;
    }
    //  Accepted: staged for the next batch (numbered when it goes to the store); answered and
    //  routed once it is on disk.
    if (vdb_pending_add(self->staged, env, session->key, session->rid_key) != VD_OK) {
        s_reject(self, session, env->id, VD_ENOMEM, "broker out of memory");
        return;
    }
    if (vdb_pending_count(self->staged) >= PENDING_MAX_COUNT ||
        vdb_pending_bytes(self->staged) >= PENDING_MAX_BYTES) {
        s_commit_finish(self, true); // what is staged is bounded: wait for the disk
        s_commit_start(self);
    }
}

static void
s_simple(vdb_server_t *self, vdb_session_t *session, const vdp_cmd_t *cmd)
{
    vdp_writer_t *out = vdb_session_writer(session, VDB_CMD_OVERHEAD);
    if (!out)
        return;
    int rc = cmd->op == VDP_OP_PING ? vdp_writer_pong(out, cmd->ref) : VD_OK;
    if (rc == VD_OK)
        vdb_server_mark_dirty(self, session);
}

//  Sends the answers to commands read without a session (at once or not at all) and empties
//  the batch. Called before anything a session sends, so that answers keep the commands' order.
static void
s_orphan_send(vdb_server_t *self,
              const uint8_t *rid,
              size_t rid_len,
              const vdp_agency_t *agency,
              const char *key,
              vdp_writer_t *orphan)
{
    if (orphan->count == 0)
        return;
    self->stats.errors += orphan->count;
    vdb_log_notice("vdb_server: %zu command(s) without a session org=%s key=%s", orphan->count,
                   agency->org, key);
    s_send_direct(self, rid, rid_len, orphan);
    vdp_writer_reset(orphan);
}

//  Ends a session at its peer's bye. Closing frees the session's batch and backlog, which hold
//  the answers to the commands before the bye (receipts included): hand them to libzmq first.
static void
s_session_bye(vdb_server_t *self, vdb_session_t *session)
{
    int rc = vdb_session_seal(session);
    if (rc == VD_OK)
        rc = vdb_session_flush(session, self->router_handle);
    if (rc != VD_OK)
        vdb_log_info("vdb_server: answers lost at bye org=%s key=%s rc=%d backlog=%zu",
                     session->agency->org, session->key, rc, session->backlog_bytes);
    s_session_close(self, session, "bye");
}

/*  Handles one frame from `rid` authenticated as `key`. Returns with every reply queued.  */
static void
s_frame(vdb_server_t *self,
        const uint8_t *rid,
        size_t rid_len,
        const char *key,
        const uint8_t *data,
        size_t size)
{
    char rid_key[2 * VDB_RID_MAX + 1];
    vdb_session_rid_key(rid, rid_len, rid_key);
    vdb_session_t *session = zhashx_lookup(self->sessions, rid_key);
    if (session && strcmp(session->key, key) != 0) { // routing id reused by another peer
        s_session_close(self, session, "routing id reused");
        session = NULL;
    }
    const vdp_agency_t *agency = vdb_registry_key(self->registry, key);
    if (!agency || agency->status != VDP_KEY_ACTIVE) {
        vdb_log_notice("vdb_server: frame from inactive key=%s, session cut", key);
        s_error_direct(self, rid, rid_len, 0, VD_EAUTH, "key unknown or revoked");
        if (session)
            s_session_close(self, session, "key no longer active");
        return;
    }
    //  Deliveries stop at the backlog bound, but answers do not: a peer that keeps sending
    //  commands and never reads their answers would grow its backlog without limit. Deliveries
    //  alone stay under bound + one frame; past twice that, the session is closed and its
    //  backlog freed (its peer's later commands are answered as sessionless, at most once).
    if (session &&
        session->backlog_bytes / 2 > self->config.session_backlog + (size_t)VDP_MAX_FRAME) {
        vdb_log_warning("vdb_server: session closed, peer does not read org=%s key=%s backlog=%zu",
                        session->agency->org, session->key, session->backlog_bytes);
        s_session_close(self, session, "backlog overflow");
        session = NULL;
    }
    if (session) {
        session->agency = agency;
        session->last_seen = zclock_mono();
    }

    vdp_reader_t reader;
    vdp_reader_init(&reader, data, size);
    vdp_writer_t orphan; // answers to commands that arrive without a session
    vdp_writer_init(&orphan);
    char reason[VDP_MAX_REASON + 1];
    while (true) {
        vdp_cmd_t cmd; // decoded here; self->cmd is scratch for replies
        reason[0] = '\0';
        int rc = vdp_reader_next(&reader, &cmd, &self->env, reason, sizeof reason);
        if (rc == VD_ENOTFOUND)
            break;
        if (!session && !(rc == VD_OK && cmd.op == VDP_OP_HELLO)) {
            //  Nothing is acted upon without a session, but every command is answered, each
            //  pub with its own receipt, so a client that lost its session knows what to resend.
            s_orphan_reply(&orphan, &cmd, &self->env, rc, reason);
            if (reader.broken)
                break;
            continue;
        }
        if (rc != VD_OK) {
            char safe[VDP_MAX_REASON + 1];
            vdp_sanitize(reason, strlen(reason), safe, sizeof safe);
            if (cmd.op == VDP_OP_PUB && self->env.id[0] && vdp_uuid_valid(self->env.id))
                s_reject(self, session, self->env.id, rc, safe);
            else {
                //  Once per session: a peer can put a thousand bad commands in every frame.
                if (!session->misbehaved)
                    vdb_log_notice("vdb_server: bad command org=%s key=%s rc=%s reason=%s (once)",
                                   agency->org, key, vd_strerror_name(rc), safe);
                session->misbehaved = true;
                vdb_server_error(self, session, cmd.op == VDP_OP_PUB ? 0 : cmd.ref, rc, safe);
            }
            if (reader.broken)
                break;
            continue;
        }
        switch (cmd.op) {
        case VDP_OP_HELLO:
            s_hello(self, &session, rid, rid_len, key, agency, &cmd, &orphan);
            break;
        case VDP_OP_PUB:
            s_publish(self, session, &self->env);
            break;
        case VDP_OP_SUB:
            vdb_route_subscribe(self, session, &cmd);
            break;
        case VDP_OP_UNSUB:
            vdb_route_unsubscribe(self, session, &cmd);
            break;
        case VDP_OP_ACK:
            vdb_route_ack(self, session, &cmd);
            break;
        case VDP_OP_CREDIT:
            vdb_route_credit(self, session, &cmd);
            break;
        case VDP_OP_PING:
        case VDP_OP_PONG:
            s_simple(self, session, &cmd);
            break;
        case VDP_OP_BYE: // anything after it in the frame is answered as sessionless
            s_orphan_send(self, rid, rid_len, agency, key, &orphan); // those before the hello
            s_commit_all(self); // its pubs' receipts go out before the session does
            s_session_bye(self, session);
            session = NULL;
            break;
        default: {
            char text[96];
            snprintf(text, sizeof text, "op %s is not sent to the broker", vdp_op_name(cmd.op));
            vdb_server_error(self, session, cmd.ref, VD_EPROTO, text);
        }
        }
    }
    s_orphan_send(self, rid, rid_len, agency, key, &orphan);
    vdp_writer_release(&orphan);
}

//  Reads every message already waiting (up to READ_BATCH) without blocking.
static void
s_read_round(vdb_server_t *self)
{
    for (int i = 0; i < READ_BATCH; i++) {
        zmq_msg_t rid, payload;
        zmq_msg_init(&rid);
        if (zmq_msg_recv(&rid, self->router_handle, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&rid);
            return;
        }
        zmq_msg_init(&payload);
        bool ok = zmq_msg_more(&rid) && zmq_msg_recv(&payload, self->router_handle, 0) >= 0;
        bool extra = ok && zmq_msg_more(&payload);
        while (ok && zmq_msg_more(&payload)) { // drain parts the protocol does not have
            zmq_msg_t part;
            zmq_msg_init(&part);
            int rc = zmq_msg_recv(&part, self->router_handle, 0);
            bool more = rc >= 0 && zmq_msg_more(&part);
            zmq_msg_close(&part);
            if (!more)
                break;
        }
        const char *key = ok ? zmq_msg_gets(&payload, "User-Id") : NULL;
        size_t rid_len = zmq_msg_size(&rid);
        if (!ok || rid_len == 0 || rid_len > VDB_RID_MAX) {
            //  Cannot happen on a ROUTER with ZAP; dropped rather than trusted
        } else if (!key || strlen(key) != VDP_KEY_Z85_LEN)
            vdb_log_warning("vdb_server: frame without an authenticated User-Id dropped");
        else if (((const uint8_t *)zmq_msg_data(&rid))[0] != 0)
            //  libzmq's own routing ids start with a zero byte and are never reused; one chosen
            //  by the peer could be chosen again by another peer and inherit a lingering
            //  session's deliveries, so none is accepted (PROTOCOL.md §2).
            s_error_direct(self, zmq_msg_data(&rid), rid_len, 0, VD_EPROTO,
                           "routing ids chosen by the client are not accepted");
        else if (zmq_msg_size(&payload) == 0)
            s_error_direct(self, zmq_msg_data(&rid), rid_len, 0, VD_EPROTO,
                           "empty frame: a frame holds at least one command");
        else if (extra)
            s_error_direct(self, zmq_msg_data(&rid), rid_len, 0, VD_EPROTO,
                           "a message must have exactly one frame");
        else if (zmq_msg_size(&payload) > VDP_MAX_FRAME)
            s_error_direct(self, zmq_msg_data(&rid), rid_len, 0, VD_ELIMIT,
                           "frame larger than max_frame");
        else
            s_frame(self, zmq_msg_data(&rid), rid_len, key, zmq_msg_data(&payload),
                    zmq_msg_size(&payload));
        zmq_msg_close(&payload);
        zmq_msg_close(&rid);
    }
}

//  Writes the round's audit records (fsyncing them and signing the head if `checkpoint`).
static void
s_audit_flush(vdb_server_t *self, bool checkpoint)
{
    if (!self->audit)
        return;
    char err[256] = "";
    int rc = checkpoint ? vdb_audit_checkpoint_start(self->audit, err, sizeof err)
                        : vdb_audit_flush(self->audit, false, err, sizeof err);
    s_audit_failing(self, rc, err);
}

//  Sends what every dirty session has queued. Sessions libzmq could not take stay listed.
static void
s_flush_round(vdb_server_t *self)
{
    //  Records first: nothing leaves for a peer before its audit record is in the file.
    s_audit_flush(self, false);
    size_t count = zlistx_size(self->dirty);
    for (size_t i = 0; i < count; i++) {
        vdb_session_t *session = zlistx_first(self->dirty);
        zlistx_delete(self->dirty, zlistx_cursor(self->dirty));
        session->dirty = false;
        if (vdb_session_seal(session) != VD_OK)
            vdb_log_warning("vdb_server: out of memory sealing a batch org=%s",
                            session->agency->org);
        int rc = vdb_session_flush(session, self->router_handle);
        if (rc == VD_ECONN) {
            //  Not closed yet: the frames it sent before going (its last acks, its bye) may
            //  still be waiting to be read. Housekeeping closes it a round or more later.
            session->gone_at = zclock_mono();
            vdb_session_discard(session);
        } else if (rc == 1)
            vdb_server_mark_dirty(self, session);
        else
            session->overflowing = false; // drained: a new overflow is worth a new warning
    }
}

static void
s_housekeeping(vdb_server_t *self)
{
    int64_t now = zclock_mono();
    zlistx_t *expired = zlistx_new();
    if (!expired)
        return;
    for (vdb_session_t *session = zhashx_first(self->sessions); session;
         session = zhashx_next(self->sessions))
        if ((session->gone_at && now - session->gone_at >= HOUSEKEEPING_MS) ||
            now - session->last_seen > 3 * (int64_t)session->heartbeat_ms)
            zlistx_add_end(expired, session);
    for (vdb_session_t *session = zlistx_first(expired); session; session = zlistx_next(expired))
        s_session_close(self, session, session->gone_at ? "peer gone" : "heartbeat expired");
    zlistx_destroy(&expired);
}

//  The retention rule of a category: its own if configured, else the defaults.
static vdb_config_retention_t
s_retention_rule(const vdb_config_t *config, const char *category)
{
    for (size_t i = 0; i < config->retention_category_count; i++)
        if (strcmp(config->retention_categories[i].name, category) == 0)
            return config->retention_categories[i];
    vdb_config_retention_t rule = { .age_ms = config->retention_age_ms,
                                    .size = config->retention_size };
    snprintf(rule.name, sizeof rule.name, "%s", category);
    return rule;
}

static int
s_collect_category(const char *category, void *arg)
{
    return zlistx_add_end((zlistx_t *)arg, (void *)category) ? 0 : -1;
}

/*  Retention, per category: messages older than its age, expired ones, and the oldest past its
    size leave the store. Runs in the loop, between rounds (a transaction per category); a
    failure is logged and tried again at the next interval.  */
static void
s_retention(vdb_server_t *self)
{
    int64_t now = vdb_server_now_ms();
    zlistx_t *categories = zlistx_new();
    if (!categories)
        return;
    zlistx_set_duplicator(categories, (zlistx_duplicator_fn *)strdup);
    zlistx_set_destructor(categories, (zlistx_destructor_fn *)zstr_free);
    int deleted = 0;
    vdb_store_t *store = vdb_server_store(self);
    bool failed = vdb_store_categories(store, s_collect_category, categories) != VD_OK;
    for (const char *category = zlistx_first(categories); category && !failed;
         category = zlistx_next(categories)) {
        vdb_config_retention_t rule = s_retention_rule(&self->config, category);
        int64_t before = rule.age_ms ? now - rule.age_ms : 0;
        int rc = vdb_store_prune(store, category, before, rule.size, now);
        failed = rc < 0;
        deleted += rc > 0 ? rc : 0;
    }
    zlistx_destroy(&categories);
    if (deleted > 0)
        vdb_log_notice("vdb_server: retention deleted %d message(s), %" PRIu64 " kept", deleted,
                       vdb_store_count(store));
    if (failed)
        vdb_log_warning("vdb_server: retention failed, will try again");
}

int
vdb_server_run(vdb_server_t *self, volatile sig_atomic_t *stop, volatile sig_atomic_t *reload)
{
    int64_t next_housekeeping = zclock_mono() + HOUSEKEEPING_MS;
    int64_t next_retention = zclock_mono() + self->config.retention_interval_ms;
    int64_t next_audit = zclock_mono() + AUDIT_CHECKPOINT_MS;
    bool more = false; // streams behind could take more at once
    while (!*stop) {
        if (reload && *reload) { // SIGHUP: between two rounds, so between two messages
            *reload = 0;
            char err[1024] = "";
            vdb_log_notice("vdb_server: reload asked by SIGHUP");
            if (vdb_server_reload(self, NULL, err, sizeof err) != VD_OK)
                vdb_log_error("vdb_server: reload refused, nothing changed: %s", err);
        }
        int commit_fd = vdb_committer_fd(self->committer);
        zmq_pollitem_t items[4] = {
            { self->router_handle, 0, ZMQ_POLLIN, 0 },
            { vdb_zap_socket(self->zap), 0, ZMQ_POLLIN, 0 },
        };
        int count = 2, control_at = -1;
        if (self->control) {
            control_at = count;
            items[count++] =
                (zmq_pollitem_t){ vdb_control_socket(self->control), 0, ZMQ_POLLIN, 0 };
        }
        if (commit_fd >= 0)
            items[count++] = (zmq_pollitem_t){ NULL, commit_fd, ZMQ_POLLIN, 0 };
        //  A batch written while the loop waited for the store is answered without delay.
        bool written = vdb_pending_count(self->committing) > 0 && commit_fd < 0;
        long timeout = more || written ? 0 : zlistx_size(self->dirty) ? RETRY_MS : HOUSEKEEPING_MS;
        if (zmq_poll(items, count, timeout) < 0) {
            if (errno == EINTR)
                continue;
            vdb_log_error("vdb_server: poll failed: %s", zmq_strerror(errno));
            return VD_EINTERNAL;
        }
        if (items[1].revents & ZMQ_POLLIN)
            vdb_zap_handle(self->zap);
        if (control_at >= 0 && (items[control_at].revents & ZMQ_POLLIN))
            vdb_server_control(self);
        s_commit_finish(self, false); // a batch written: answered and routed, before any send
        s_commit_start(self);         // what was staged meanwhile goes to the disk at once
        if (items[0].revents & ZMQ_POLLIN)
            s_read_round(self);
        s_commit_start(self);            // if the disk was idle, this round's messages go now
        more = vdb_route_catch_up(self); // streams behind, from the store; after the commit
        s_commit_finish(self, false);    // the batch it may have waited for
        s_commit_start(self);
        s_flush_round(self);
        if (zclock_mono() >= next_housekeeping) {
            s_housekeeping(self);
            vdb_route_save_cursors(self);
            next_housekeeping = zclock_mono() + HOUSEKEEPING_MS;
        }
        if (self->audit && zclock_mono() >= next_audit) {
            s_audit_flush(self, true);
            next_audit = zclock_mono() + AUDIT_CHECKPOINT_MS;
        }
        if (self->store && zclock_mono() >= next_retention) {
            s_retention(self);
            next_retention = zclock_mono() + self->config.retention_interval_ms;
        }
    }
    s_commit_all(self); // what was accepted is answered before the broker stops
    s_flush_round(self);
    return VD_OK;
}

//  -------------------------------------------------------------------------------------------
//  Set-up

//  ZAP's decisions go to the audit log.
static void
s_on_handshake(void *arg,
               bool accepted,
               const char *peer,
               const char *key,
               const char *org,
               const char *reason)
{
    vdp_audit_record_t record = {
        .kind = accepted ? VDP_AUDIT_AUTH_OK : VDP_AUDIT_AUTH_FAIL,
        .org = org,
        .key = *key ? key : NULL,
        .peer = peer,
        .code = accepted ? "OK" : "EAUTH",
        .reason = reason,
    };
    vdb_server_audit_record(arg, &record);
}

//  The broker's CURVE secret key and Ed25519 signing key (for the audit log's head), which the
//  caller wipes.
static int
s_load_key(vdb_server_t *self,
           uint8_t secret[32],
           uint8_t sign[VDP_SIGN_SECRET_BYTES],
           char *err,
           size_t err_size)
{
    vdp_secret_t key;
    char why[512] = "";
    if (vdp_secret_load(self->config.secret, &key, why, sizeof why) != VD_OK)
        return vdp_errorf(err, err_size, -1, "broker key: %s", why);
    int rc = 0;
    if (key.agency.role != VDP_ROLE_BROKER)
        rc = vdp_errorf(err, err_size, -1, "broker key %s: role must be broker, not %s",
                        self->config.secret, vdp_role_name(key.agency.role));
    else if (self->config.name[0] && strcmp(self->config.name, key.agency.org) != 0)
        rc = vdp_errorf(err, err_size, -1, "broker key is for %s but the configuration names %s",
                        key.agency.org, self->config.name);
    else if (zmq_z85_decode(secret, key.curve_secret) == NULL)
        rc = vdp_errorf(err, err_size, -1, "broker key %s: %s", self->config.secret,
                        "bad curve-secret");
    else if (vdp_secret_sign_key(&key, sign) != VD_OK)
        rc = vdp_errorf(err, err_size, -1, "broker key %s: %s", self->config.secret,
                        "bad sign-secret");
    else {
        snprintf(self->name, sizeof self->name, "%s", key.agency.org);
        snprintf(self->public_key, sizeof self->public_key, "%s", key.agency.curve_public);
    }
    vdp_secret_wipe(&key);
    return rc;
}

static int
s_bind(vdb_server_t *self, const uint8_t secret[32], char *err, size_t err_size)
{
    self->router = zsock_new(ZMQ_ROUTER);
    if (!self->router)
        return vdp_errorf(err, err_size, -1, "cannot create the ROUTER socket");
    void *h = zsock_resolve(self->router);
    self->router_handle = h;
    int one = 1, zero = 0;
    int64_t max_msg = 2 * (int64_t)VDP_MAX_FRAME; // between 1x and 2x: ELIMIT reply, then cut
    //  Per peer and direction. Each message is a batch of up to VDP_BATCH_BYTES, so libzmq holds
    //  at most ~64 MiB for one slow peer, before the session's own backlog bound applies.
    int hwm = 1000;
    if (zmq_setsockopt(h, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(h, ZMQ_CURVE_SECRETKEY, secret, 32) != 0 ||
        zmq_setsockopt(h, ZMQ_ZAP_DOMAIN, VDB_ZAP_DOMAIN, strlen(VDB_ZAP_DOMAIN)) != 0 ||
        zmq_setsockopt(h, ZMQ_ROUTER_MANDATORY, &one, sizeof one) != 0 ||
        zmq_setsockopt(h, ZMQ_SNDTIMEO, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(h, ZMQ_MAXMSGSIZE, &max_msg, sizeof max_msg) != 0 ||
        zmq_setsockopt(h, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(h, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(h, ZMQ_LINGER, &zero, sizeof zero) != 0)
        return vdp_errorf(err, err_size, -1, "cannot configure the ROUTER socket: %s",
                          zmq_strerror(errno));
#ifdef ZMQ_ZAP_ENFORCE_DOMAIN
    //  Draft option where available: refuse handshakes outright if no ZAP handler answers.
    zmq_setsockopt(h, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof one);
#endif
    if (zmq_bind(h, self->config.endpoint) != 0)
        return vdp_errorf(err, err_size, -1, "cannot bind %s: %s", self->config.endpoint,
                          zmq_strerror(errno));
    size_t size = sizeof self->endpoint;
    if (zmq_getsockopt(h, ZMQ_LAST_ENDPOINT, self->endpoint, &size) != 0)
        snprintf(self->endpoint, sizeof self->endpoint, "%s", self->config.endpoint);
    return 0;
}

vdb_server_t *
vdb_server_new(const vdb_config_t *config, char *err, size_t err_size)
{
    vdb_server_t *self = calloc(1, sizeof *self);
    if (!self) {
        vdp_errorf(err, err_size, -1, "out of memory");
        return NULL;
    }
    self->config = *config;
    char why[512] = "";
    uint8_t secret[32];
    uint8_t sign[VDP_SIGN_SECRET_BYTES];
    self->registry = vdb_registry_load(config->registry, why, sizeof why);
    if (!self->registry) {
        vdp_errorf(err, err_size, -1, "registry: %s", why);
        goto err_destroy;
    }
    if (vdb_registry_key_count(self->registry) == 0) {
        vdp_errorf(err, err_size, -1, "registry %s holds no agency file (*.agency)",
                   config->registry);
        goto err_destroy;
    }
    self->policy = config->policy[0] ? vdb_policy_load(config->policy, why, sizeof why)
                                     : vdb_policy_parse(vdb_policy_default_text(),
                                                        "(embedded policy)", why, sizeof why);
    if (!self->policy) {
        vdp_errorf(err, err_size, -1, "policy: %s", why);
        goto err_destroy;
    }
    if (s_load_key(self, secret, sign, err, err_size) != 0)
        goto err_wipe;
    self->sessions = zhashx_new();
    self->dirty = zlistx_new();
    self->subs = vdb_subs_new();
    self->durables = zhashx_new();
    //  With a store, the store's own map of every (sender, id) answers retries.
    self->index = config->store[0] ? NULL : vdb_index_new(config->dedup_window);
    self->staged = vdb_pending_new();
    self->committing = vdb_pending_new();
    self->limiter = vdb_limiter_new();
    if (!self->sessions || !self->dirty || !self->subs || !self->durables ||
        (!self->index && !config->store[0]) || !self->staged || !self->committing ||
        !self->limiter) {
        vdp_errorf(err, err_size, -1, "out of memory");
        goto err_wipe;
    }
    if (config->store[0]) { // otherwise live only: nothing kept, receipts mean "accepted"
        char why_store[512] = "";
        self->store = vdb_store_open(config->store, (vdb_sync_t)config->store_sync, why_store,
                                     sizeof why_store);
        if (!self->store) {
            vdp_errorf(err, err_size, -1, "store %s: %s", config->store, why_store);
            goto err_wipe;
        }
        self->seq = vdb_store_last_seq(self->store); // seq never goes back, across restarts too
        self->committer = vdb_committer_new(self->store);
        if (!self->committer) {
            vdp_errorf(err, err_size, -1, "cannot start the store's commit thread");
            goto err_wipe;
        }
    }
    zhashx_set_destructor(self->sessions, s_session_free);
    //  Before the ZAP handler, whose every decision it records; after the store, whose lock
    //  keeps a second broker out first.
    if (config->audit[0]) {
        char why_audit[512] = "";
        self->audit = vdb_audit_open(config->audit, sign, why_audit, sizeof why_audit);
        if (!self->audit) {
            vdp_errorf(err, err_size, -1, "audit log: %s", why_audit);
            goto err_wipe;
        }
    }
    sodium_memzero(sign, sizeof sign);
    //  The ZAP handler must exist before the ROUTER binds: without one libzmq admits any key.
    self->zap = vdb_zap_new(self->registry);
    if (!self->zap) {
        vdp_errorf(err, err_size, -1, "cannot start the ZAP handler (another in this process?)");
        goto err_wipe;
    }
    vdb_zap_set_observer(self->zap, s_on_handshake, self);
    if (s_bind(self, secret, err, err_size) != 0)
        goto err_wipe;
    sodium_memzero(secret, sizeof secret);
    //  Last: a second broker started by mistake has failed before it could take the admin
    //  socket of the first (the store's lock or the endpoint stops it).
    if (config->control[0]) {
        char why_control[512] = "";
        self->control = vdb_control_new(config->control, why_control, sizeof why_control);
        if (!self->control) {
            vdp_errorf(err, err_size, -1, "%s", why_control);
            goto err_destroy;
        }
    }
    const char *store = self->store ? config->store : "none";
    vdb_log_notice(
        "vdb_server: %s listening on %s key=%s orgs=%zu keys=%zu grants=%zu store=%s seq=%" PRIu64,
        self->name, self->endpoint, self->public_key, vdb_registry_org_count(self->registry),
        vdb_registry_key_count(self->registry), vdb_policy_grant_count(self->policy), store,
        self->seq);
    if (self->audit) {
        //  What opening found wrong with the log goes into the chain itself.
        char started[VDP_AUDIT_MAX_FIELD];
        const char *damage = vdb_audit_damage(self->audit);
        snprintf(started, sizeof started, "listening on %s orgs=%zu keys=%zu grants=%zu%s%s",
                 self->endpoint, vdb_registry_org_count(self->registry),
                 vdb_registry_key_count(self->registry), vdb_policy_grant_count(self->policy),
                 *damage ? "; audit log damage found at open: " : "", damage);
        vdb_server_audit(self, VDP_AUDIT_BROKER_START, self->name, self->public_key, NULL, NULL,
                         self->seq, VD_OK, started);
        self->audit_started = true;
    }
    return self;

err_wipe:
    sodium_memzero(secret, sizeof secret);
    sodium_memzero(sign, sizeof sign);
err_destroy:
    vdb_server_destroy(&self);
    return NULL;
}

void
vdb_server_destroy(vdb_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vdb_server_t *self = *self_p;
    if (self->committer) // the store is consistent again (the batch's answers go nowhere)
        s_commit_wait(self);
    if (self->sessions) // durable cursors acknowledged since the last save
        vdb_route_save_cursors(self);
    vdb_committer_destroy(&self->committer);
    vdb_control_destroy(&self->control);
    zsock_destroy(&self->router);
    vdb_zap_destroy(&self->zap);
    zlistx_destroy(&self->dirty);
    zhashx_destroy(&self->sessions); // their streams leave the index and `durables` too
    zhashx_destroy(&self->durables);
    vdb_subs_destroy(&self->subs);
    vdb_index_destroy(&self->index);
    vdb_pending_destroy(&self->staged);
    vdb_pending_destroy(&self->committing);
    vdb_limiter_destroy(&self->limiter);
    vdb_store_close(&self->store);
    if (self->audit_started) {
        char stopped[256];
        snprintf(stopped, sizeof stopped,
                 "accepted=%" PRIu64 " duplicates=%" PRIu64 " rejected=%" PRIu64
                 " delivered=%" PRIu64 " withheld=%" PRIu64,
                 self->stats.accepted, self->stats.duplicates, self->stats.rejected,
                 self->stats.delivered, self->stats.withheld);
        vdb_server_audit(self, VDP_AUDIT_BROKER_STOP, self->name, self->public_key, NULL, NULL,
                         self->seq, VD_OK, stopped);
    }
    char why[512] = "";
    if (self->audit && vdb_audit_close(&self->audit, why, sizeof why) != VD_OK)
        vdb_log_error("vdb_server: closing the audit log: %s", why);
    vdp_envelope_reset(&self->committed);
    vdp_envelope_reset(&self->replay);
    vdb_policy_destroy(&self->policy);
    vdb_registry_destroy(&self->registry);
    vdp_envelope_reset(&self->env);
    free(self);
    *self_p = NULL;
}

const char *
vdb_server_endpoint(const vdb_server_t *self)
{
    return self->endpoint;
}

const char *
vdb_server_public_key(const vdb_server_t *self)
{
    return self->public_key;
}

vdb_server_stats_t
vdb_server_stats(const vdb_server_t *self)
{
    return self->stats;
}

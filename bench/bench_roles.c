/*  bench_roles: publisher, subscriber and forwarder processes of vedetta-bench.

    Invariants: a role owns one transport, either a libzmq socket (raw paths) or a vd_client_t
    (vedettad), never both; every loop ends on its count, on the coordinator's ABORT/QUIT, or on
    a deadline; a role that gives up says why with FAIL before it returns.  */

#include "bench_roles.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#include "vedetta.h"

//  Message layout (bench_roles.h): kind, 16 hex seq, 16 hex send time, padding.
#define S_SEQ_AT   1
#define S_TIME_AT  17
#define S_HEAD_LEN 33

//  How long a subscriber or publisher waits in one call before it looks at its control pair.
#define S_SLICE_MS 50
//  How often a busy loop looks at its control pair, in messages.
#define S_CTL_EVERY 4096u
//  A role that hears nothing from the coordinator for this long exits.
#define S_IDLE_LIMIT_NS (3600ll * 1000000000ll)
//  How often an idle vedettad publisher lets its client run (and ping): the broker closes a
//  session it has not heard from for 3 heartbeats (6 s), and the flooder waits out a latency
//  phase before it floods.
#define S_KEEPALIVE_NS (500ll * 1000000ll)

//  A message to publish again: its kind and sequence number.
typedef struct {
    char kind;
    uint64_t seq;
} s_resend_t;

typedef struct {
    const bench_role_cfg_t *cfg; // borrowed, outlives the role
    int ctl;                     // control pair to the coordinator
    void *ctx;                   // raw paths: owned libzmq context
    void *sock;                  // raw paths: owned socket
    vd_client_t *client;         // vedettad: owned client
    char *buf;                   // cfg->size bytes (+1): the message sent or last received
    size_t len;                  // bytes of the last received message
    size_t outstanding;          // vedettad publisher: publishes not receipted yet
    int64_t accepted;            // vedettad publisher: receipts by status
    int64_t duplicates;
    int64_t rejected;
    int64_t resent;                     // vedettad publisher: published again after ESESSION
    int64_t refused;                    // flooder: rejections with ERATE, not in `rejected`
    bool flooding;                      // flooder: ERATE is expected, and counted apart
    bool stop_asked;                    // the coordinator sent STOP (seen by s_aborted())
    int64_t receipts_seen;              // vedettad publisher: every receipt, for stall checks
    char reject_reason[BENCH_CTL_TEXT]; // the first rejection's code and reason
    uint32_t id_salt[3];                // vedettad publisher: random parts of our envelope ids
    int64_t lat_sent;                   // send time of the latency sample in flight
    int64_t deadline;                   // of the current phase
    s_resend_t *resend;                 // owned: publishes to send again (ESESSION)
    size_t resend_count;
    size_t resend_max;
    bool resending;         // inside s_pub_resend(): do not nest
    vd_envelope_t *unacked; // durable subscriber: owned, the last delivery not acknowledged yet
    size_t since_ack;       // durable subscriber: deliveries taken since the last ack
    int64_t acks;           // durable subscriber: vd_client_ack() calls queued
    uint64_t last_seq;      // vedettad subscriber: the broker seq of the last delivery
    int64_t seq_not_rising; // vedettad subscriber: deliveries whose seq was not above it
} s_role_t;

static const char s_hex[] = "0123456789abcdef";

const char *
bench_path_name(bench_path_t path)
{
    switch (path) {
    case BENCH_PATH_VEDETTAD:
        return "vedettad";
    case BENCH_PATH_STORE:
        return "vedettad-store";
    case BENCH_PATH_ZMQ:
        return "zmq-curve";
    case BENCH_PATH_FWD:
        return "fwd-curve";
    case BENCH_PATH_FANOUT:
        return "vedettad-fanout";
    case BENCH_PATH_DURABLE:
        return "vedettad-durable";
    case BENCH_PATH_OFFLINE:
        return "vedettad-offline";
    case BENCH_PATH_FLOOD:
        return "vedettad-flood";
    default:
        return "?";
    }
}

bool
bench_path_is_vedettad(bench_path_t path)
{
    return path == BENCH_PATH_VEDETTAD || path == BENCH_PATH_STORE || path == BENCH_PATH_OFFLINE ||
           path == BENCH_PATH_FLOOD || bench_path_is_fanout(path);
}

bool
bench_path_has_store(bench_path_t path)
{
    return path == BENCH_PATH_STORE || path == BENCH_PATH_DURABLE || path == BENCH_PATH_OFFLINE ||
           path == BENCH_PATH_FLOOD;
}

bool
bench_path_is_fanout(bench_path_t path)
{
    return path == BENCH_PATH_FANOUT || path == BENCH_PATH_DURABLE;
}

static void
s_put_hex(char *out, uint64_t value)
{
    for (int i = 15; i >= 0; i--) {
        out[i] = s_hex[value & 15u];
        value >>= 4;
    }
}

//  Reads `digits` lowercase hex digits.
static bool
s_get_hexn(const char *in, int digits, uint64_t *value)
{
    uint64_t v = 0;
    for (int i = 0; i < digits; i++) {
        char c = in[i];
        unsigned digit;
        if (c >= '0' && c <= '9')
            digit = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            digit = (unsigned)(c - 'a' + 10);
        else
            return false;
        v = (v << 4) | digit;
    }
    *value = v;
    return true;
}

static bool
s_get_hex(const char *in, uint64_t *value)
{
    return s_get_hexn(in, 16, value);
}

//  Stamps kind, seq and send time `at` into the message buffer (padding was set at open).
static void
s_stamp_at(s_role_t *self, char kind, uint64_t seq, int64_t at)
{
    self->buf[0] = kind;
    s_put_hex(self->buf + S_SEQ_AT, seq);
    s_put_hex(self->buf + S_TIME_AT, (uint64_t)at);
}

static void
s_stamp(s_role_t *self, char kind, uint64_t seq)
{
    s_stamp_at(self, kind, seq, bench_proc_now_ns());
}

/*  The id of the envelope carrying (kind, seq): a v4-shaped UUID made of this publisher's
    random salt, the kind letter and the seq, so that a receipt says which message it answers
    and the message can be published again after an ESESSION rejection.  */
static void
s_envelope_id(const s_role_t *self, char kind, uint64_t seq, char out[VDP_ID_LEN + 1])
{
    snprintf(out, VDP_ID_LEN + 1, "%08" PRIx32 "-%04" PRIx32 "-4%03x-8%03" PRIx32 "-%012" PRIx64,
             self->id_salt[0], self->id_salt[1] & 0xffffu, (unsigned)(unsigned char)kind,
             self->id_salt[2] & 0xfffu, seq & 0xffffffffffffu);
}

//  The (kind, seq) an id of ours carries; false for an id that is not ours.
static bool
s_envelope_id_parse(const s_role_t *self, const char *id, char *kind, uint64_t *seq)
{
    uint64_t k = 0, n = 0;
    if (strlen(id) != VDP_ID_LEN || !s_get_hexn(id + 15, 3, &k) || !s_get_hexn(id + 24, 12, &n))
        return false;
    char again[VDP_ID_LEN + 1];
    s_envelope_id(self, (char)k, n, again);
    if (strcmp(again, id) != 0)
        return false;
    *kind = (char)k;
    *seq = n;
    return true;
}

//  Reads the last received message; false if it is not one of ours.
static bool
s_parse(const s_role_t *self, char *kind, uint64_t *seq, int64_t *sent_ns)
{
    if (self->len < S_HEAD_LEN)
        return false;
    uint64_t t = 0;
    if (!s_get_hex(self->buf + S_SEQ_AT, seq) || !s_get_hex(self->buf + S_TIME_AT, &t))
        return false;
    *kind = self->buf[0];
    *sent_ns = (int64_t)t;
    return true;
}

/*  Looks at the control pair without waiting. Returns 0 if nothing came, 1 with *type set if a
    message came, -1 if the coordinator is gone.  */
static int
s_poll_ctl(s_role_t *self, int *type)
{
    bench_ctl_t msg;
    int rc = bench_ctl_recv(self->ctl, &msg, 0);
    if (rc == 1)
        return 0;
    if (rc < 0)
        return -1;
    *type = msg.type;
    return 1;
}

/*  True if the coordinator asked this phase to end (ABORT, QUIT) or is gone. A STOP is
    remembered in self->stop_asked for the flooder, which polls through the same calls.  */
static bool
s_aborted(s_role_t *self)
{
    int type = 0;
    int rc = s_poll_ctl(self, &type);
    if (rc == 1 && type == BENCH_CTL_STOP)
        self->stop_asked = true;
    return rc < 0 || (rc == 1 && (type == BENCH_CTL_ABORT || type == BENCH_CTL_QUIT));
}

//  What libvedetta dropped for lack of queue room (0 on the raw paths).
static int64_t
s_dropped(const s_role_t *self)
{
    return self->client ? (int64_t)vd_client_dropped(self->client) : 0;
}

static int
s_done(s_role_t *self, int rc, const int64_t *v, size_t n, const char *text)
{
    bench_ctl_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = BENCH_CTL_DONE;
    msg.rc = rc;
    for (size_t i = 0; i < n && i < sizeof msg.v / sizeof msg.v[0]; i++)
        msg.v[i] = v[i];
    if (text)
        snprintf(msg.text, sizeof msg.text, "%s", text);
    return bench_ctl_send(self->ctl, &msg);
}

static int
s_setsockopt_int(void *sock, int option, int value)
{
    return zmq_setsockopt(sock, option, &value, sizeof value);
}

//  A libzmq socket of `type` with the options every raw-path socket shares.
static int
s_zmq_open(s_role_t *self, int type)
{
    self->ctx = zmq_ctx_new();
    if (!self->ctx)
        return bench_ctl_fail(self->ctl, "zmq_ctx_new: %s", zmq_strerror(errno));
    self->sock = zmq_socket(self->ctx, type);
    if (!self->sock)
        return bench_ctl_fail(self->ctl, "zmq_socket: %s", zmq_strerror(errno));
    //  Linger 0: at QUIT nothing is left worth delivering, and close must not block.
    if (s_setsockopt_int(self->sock, ZMQ_LINGER, 0) || //
        s_setsockopt_int(self->sock, ZMQ_SNDHWM, BENCH_HWM) ||
        s_setsockopt_int(self->sock, ZMQ_RCVHWM, BENCH_HWM))
        return bench_ctl_fail(self->ctl, "zmq_setsockopt: %s", zmq_strerror(errno));
    return 0;
}

//  CURVE client options for a socket that connects to the binding side of a raw path.
static int
s_zmq_curve_client(s_role_t *self)
{
    const bench_role_cfg_t *cfg = self->cfg;
    if (zmq_setsockopt(self->sock, ZMQ_CURVE_SERVERKEY, cfg->server_public,
                       strlen(cfg->server_public)) ||
        zmq_setsockopt(self->sock, ZMQ_CURVE_PUBLICKEY, cfg->client_public,
                       strlen(cfg->client_public)) ||
        zmq_setsockopt(self->sock, ZMQ_CURVE_SECRETKEY, cfg->client_secret,
                       strlen(cfg->client_secret)))
        return bench_ctl_fail(self->ctl, "CURVE client options: %s", zmq_strerror(errno));
    return 0;
}

//  CURVE server options. No ZAP handler runs in these processes, so libzmq accepts any client
//  key: the references deliberately do no authentication.
static int
s_zmq_curve_server(void *sock, const char *secret)
{
    if (s_setsockopt_int(sock, ZMQ_CURVE_SERVER, 1) ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret, strlen(secret)))
        return -1;
    return 0;
}

//  Binds tcp://127.0.0.1:* and writes the endpoint the OS chose into `out`.
static int
s_zmq_bind_any(void *sock, char *out, size_t size)
{
    if (zmq_bind(sock, "tcp://127.0.0.1:*") != 0)
        return -1;
    size_t len = size;
    if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, out, &len) != 0)
        return -1;
    return 0;
}

static int
s_vd_connect(s_role_t *self)
{
    const bench_role_cfg_t *cfg = self->cfg;
    self->client = vd_client_new();
    if (!self->client)
        return bench_ctl_fail(self->ctl, "vd_client_new: out of memory");
    int timeout_ms = (int)(cfg->setup_ns / 1000000);
    int rc = vd_client_connect(self->client, cfg->endpoint, cfg->broker_public, cfg->secret_path,
                               timeout_ms);
    if (rc != VD_OK)
        return bench_ctl_fail(self->ctl, "vd_client_connect %s: %s", cfg->endpoint,
                              vd_strerror(rc));
    return 0;
}

static int
s_role_init(s_role_t *self, int ctl, const bench_role_cfg_t *cfg)
{
    memset(self, 0, sizeof *self);
    self->cfg = cfg;
    self->ctl = ctl;
    self->buf = malloc(cfg->size + 1);
    if (!self->buf)
        return bench_ctl_fail(ctl, "out of memory");
    memset(self->buf, 'x', cfg->size);
    self->buf[cfg->size] = '\0';
    return 0;
}

static void
s_role_close(s_role_t *self)
{
    if (self->sock)
        zmq_close(self->sock);
    self->sock = NULL;
    if (self->ctx)
        zmq_ctx_term(self->ctx);
    self->ctx = NULL;
    vd_envelope_destroy(&self->unacked);
    vd_client_destroy(&self->client);
    free(self->buf);
    self->buf = NULL;
    free(self->resend);
    self->resend = NULL;
}

/*  -------------------------------------------------------------------------------------------
    Publisher  */

//  New random parts for our envelope ids: each phase that numbers its messages from 0 again
//  needs ids the broker has not seen, or it answers them as duplicates and delivers nothing.
static int
s_pub_salt(s_role_t *self)
{
    if (getrandom(self->id_salt, sizeof self->id_salt, 0) != (ssize_t)sizeof self->id_salt)
        return bench_ctl_fail(self->ctl, "getrandom: %s", strerror(errno));
    return 0;
}

static int
s_pub_open(s_role_t *self)
{
    const bench_role_cfg_t *cfg = self->cfg;
    bench_ctl_t ready;
    memset(&ready, 0, sizeof ready);
    ready.type = BENCH_CTL_READY;
    if (bench_path_is_vedettad(cfg->path)) {
        if (s_pub_salt(self) || s_vd_connect(self))
            return -1;
    } else {
        if (s_zmq_open(self, ZMQ_PUB))
            return -1;
        //  NODROP: a full send queue blocks zmq_send (bounded by SNDTIMEO, retried until the
        //  deadline) instead of dropping, so the count at the subscriber is exact.
        if (s_setsockopt_int(self->sock, ZMQ_XPUB_NODROP, 1) ||
            s_setsockopt_int(self->sock, ZMQ_SNDTIMEO, S_SLICE_MS))
            return bench_ctl_fail(self->ctl, "zmq_setsockopt: %s", zmq_strerror(errno));
        if (cfg->path == BENCH_PATH_ZMQ) {
            if (s_zmq_curve_server(self->sock, cfg->server_secret) ||
                s_zmq_bind_any(self->sock, ready.text, sizeof ready.text))
                return bench_ctl_fail(self->ctl, "publisher bind: %s", zmq_strerror(errno));
        } else {
            if (s_zmq_curve_client(self))
                return -1;
            if (zmq_connect(self->sock, cfg->endpoint) != 0)
                return bench_ctl_fail(self->ctl, "connect %s: %s", cfg->endpoint,
                                      zmq_strerror(errno));
        }
    }
    return bench_ctl_send(self->ctl, &ready);
}

/*  Counts one receipt. A publish the broker lost with its session (rejected, ESESSION) is
    queued to be published again, as vedetta.h asks of applications; the bench counts those.  */
static int
s_pub_account(s_role_t *self, const vd_receipt_t *receipt)
{
    self->receipts_seen++;
    if (self->outstanding > 0)
        self->outstanding--;
    char kind;
    uint64_t seq;
    if (receipt->status == VD_RECEIPT_ACCEPTED)
        self->accepted++;
    else if (receipt->status == VD_RECEIPT_DUPLICATE)
        self->duplicates++;
    else if (receipt->code == VD_ERATE && self->flooding)
        self->refused++;
    else if (receipt->code == VD_ESESSION && s_envelope_id_parse(self, receipt->id, &kind, &seq)) {
        if (self->resend_count == self->resend_max) {
            size_t max = self->resend_max ? self->resend_max * 2 : 64;
            s_resend_t *grown = realloc(self->resend, max * sizeof *grown);
            if (!grown)
                return bench_ctl_fail(self->ctl, "out of memory");
            self->resend = grown;
            self->resend_max = max;
        }
        self->resend[self->resend_count++] = (s_resend_t){ kind, seq };
        self->resent++;
    } else if (self->rejected++ == 0)
        snprintf(self->reject_reason, sizeof self->reject_reason, "%s: %s",
                 vd_strerror_name(receipt->code), receipt->reason);
    return 0;
}

static int s_pub_envelope(s_role_t *self);

//  Publishes the queued ESESSION rejections again.
static int
s_pub_resend(s_role_t *self)
{
    if (self->resending)
        return 0;
    self->resending = true;
    int rc = 0;
    while (rc == 0 && self->resend_count > 0) {
        s_resend_t item = self->resend[--self->resend_count];
        //  A latency sample keeps its first send time: the retry is part of its delay.
        s_stamp_at(self, item.kind, item.seq,
                   item.kind == 'L' ? self->lat_sent : bench_proc_now_ns());
        rc = s_pub_envelope(self);
    }
    self->resending = false;
    return rc;
}

//  Reads every receipt that is there, waiting up to `timeout_ms` for the first.
static int
s_pub_receipts(s_role_t *self, int timeout_ms)
{
    vd_receipt_t receipt;
    int rc = vd_client_receipt(self->client, &receipt, timeout_ms);
    while (rc == VD_OK) {
        if (s_pub_account(self, &receipt))
            return -1;
        rc = vd_client_receipt(self->client, &receipt, 0);
    }
    if (rc != VD_ETIMEOUT)
        return bench_ctl_fail(self->ctl, "vd_client_receipt: %s", vd_strerror(rc));
    return s_pub_resend(self);
}

//  Sends the vedettad client's batch. ECONN keeps the batch, which leaves with the next call
//  that waits; if the link stays down, the phase deadline ends the run.
static int
s_pub_flush(s_role_t *self)
{
    int rc = self->client ? vd_client_flush(self->client) : VD_OK;
    if (rc != VD_OK && rc != VD_ECONN)
        return bench_ctl_fail(self->ctl, "vd_client_flush: %s", vd_strerror(rc));
    return 0;
}

/*  Reads receipts until fewer than `limit` publishes lack one. Returns 0; 1 if the deadline
    passed first; -1 (FAIL sent, or ABORT), also when receipts stop coming for as long as the
    subscriber's silence rule allows while publishes wait for them: those publishes were lost
    without an answer.  */
static int
s_pub_await(s_role_t *self, size_t limit, int64_t deadline)
{
    int64_t seen = self->receipts_seen;
    int64_t prev = bench_proc_now_ns();
    int64_t stalled_at = prev + self->cfg->idle_ns;
    while (self->outstanding >= limit) {
        int64_t now = bench_proc_now_ns();
        //  Silence counts only while we listen: a round that took over a second means this
        //  process was not running (stopped, or starved of CPU), not that the broker was mute.
        if (self->receipts_seen != seen || now - prev > 1000000000) {
            seen = self->receipts_seen;
            stalled_at = now + self->cfg->idle_ns;
        }
        prev = now;
        if (now >= deadline)
            return 1;
        if (now >= stalled_at)
            return bench_ctl_fail(self->ctl, "LOST: %zu publishes got no receipt within %d s",
                                  self->outstanding, (int)(self->cfg->idle_ns / 1000000000));
        if (s_aborted(self) || s_pub_flush(self) || s_pub_receipts(self, S_SLICE_MS))
            return -1;
    }
    return 0;
}

//  Waits until every publish has its receipt (see s_pub_await).
static int
s_pub_settle(s_role_t *self, int64_t deadline)
{
    if (!self->client)
        return 0;
    if (s_pub_flush(self))
        return -1;
    return s_pub_await(self, 1, deadline);
}

//  A fresh envelope per message, as an application would build it, carrying self->buf.
static int
s_pub_envelope(s_role_t *self)
{
    vd_envelope_t *env = vd_envelope_new();
    if (!env)
        return bench_ctl_fail(self->ctl, "vd_envelope_new: out of memory");
    char id[VDP_ID_LEN + 1];
    uint64_t seq = 0;
    s_get_hex(self->buf + S_SEQ_AT, &seq);
    s_envelope_id(self, self->buf[0], seq, id);
    int rc = vd_envelope_set(env, "id", id);
    if (rc == VD_OK)
        rc = vd_envelope_set(env, "topic", self->cfg->topic);
    if (rc == VD_OK)
        rc = vd_envelope_set(env, "kind", "alert");
    if (rc == VD_OK)
        rc = vd_envelope_set(env, "status", "actual");
    if (rc == VD_OK)
        rc = vd_envelope_set(env, "tlp", "green");
    if (rc == VD_OK)
        rc = vd_envelope_set(env, "category", "intrusion-attempts");
    if (rc == VD_OK)
        rc = vd_envelope_set(env, "severity", "minor");
    if (rc == VD_OK)
        rc = vd_envelope_set(env, "ctype", "text/plain");
    if (rc == VD_OK)
        rc = vd_envelope_set_body(env, self->buf, self->cfg->size);
    if (rc != VD_OK) {
        vd_envelope_destroy(&env);
        return bench_ctl_fail(self->ctl, "building the envelope: %s", vd_strerror(rc));
    }
    for (;;) {
        rc = vd_client_publish_async(self->client, env);
        if (rc != VD_ECONN || bench_proc_now_ns() >= self->deadline)
            break;
        //  ECONN: a full batch could not leave (libzmq's queue is full, or the link is being
        //  rebuilt), and this one was not queued. Let the client run a round, then retry.
        if (s_pub_receipts(self, S_SLICE_MS)) {
            vd_envelope_destroy(&env);
            return -1;
        }
    }
    vd_envelope_destroy(&env);
    if (rc != VD_OK)
        return bench_ctl_fail(self->ctl, "vd_client_publish_async: %s", vd_strerror(rc));
    self->outstanding++;
    return 0;
}

//  Returns 0, 1 if the send queue stayed full until the deadline, or -1 (FAIL sent, or ABORT).
static int
s_pub_send(s_role_t *self, char kind, uint64_t seq, int64_t deadline)
{
    s_stamp(self, kind, seq);
    if (self->client)
        return s_pub_envelope(self);
    for (;;) {
        if (zmq_send(self->sock, self->buf, self->cfg->size, 0) == (int)self->cfg->size)
            return 0;
        //  EAGAIN: SNDTIMEO passed with the queue full (NODROP); the subscriber is behind.
        if (errno != EAGAIN && errno != EINTR)
            return bench_ctl_fail(self->ctl, "zmq_send: %s", zmq_strerror(errno));
        if (bench_proc_now_ns() >= deadline)
            return 1;
        if (s_aborted(self))
            return -1;
    }
}

//  Slow joiner: probes every 5 ms until the coordinator, told by the subscriber that one
//  arrived, says STOP. Probes are not counted anywhere.
static int
s_pub_probe(s_role_t *self)
{
    int64_t deadline = bench_proc_now_ns() + self->cfg->setup_ns;
    self->deadline = deadline;
    for (uint64_t k = 0;; k++) {
        if (bench_proc_now_ns() >= deadline)
            return bench_ctl_fail(self->ctl, "no STOP before the deadline while probing");
        if (s_pub_send(self, 'P', k, deadline) != 0 || s_pub_flush(self))
            return bench_ctl_fail(self->ctl, "probing: cannot send");
        if (self->client && s_pub_receipts(self, 0))
            return -1;
        bench_ctl_t msg;
        int rc = bench_ctl_recv(self->ctl, &msg, bench_proc_now_ns() + 5000000);
        if (rc < 0)
            return -1;
        if (rc == 0 && msg.type == BENCH_CTL_STOP)
            break;
        if (rc == 0)
            return -1; // ABORT or QUIT
    }
    if (s_pub_settle(self, deadline) != 0)
        return bench_ctl_fail(self->ctl, "probing: receipts missing");
    return s_done(self, 0, NULL, 0, NULL);
}

/*  Sends up to `count` messages; *sent says how many. Returns 0, 1 at the deadline, or -1.
    vedettad: a bounded window of publishes without a receipt, as a careful application keeps,
    and a flush every `batch` publishes (libvedetta also sends when a frame is full).  */
static int
s_pub_stream(s_role_t *self, uint64_t count, int64_t deadline, uint64_t *sent)
{
    const bench_role_cfg_t *cfg = self->cfg;
    for (*sent = 0; *sent < count; (*sent)++) {
        if (self->client && self->outstanding >= cfg->window) {
            int rc = s_pub_await(self, cfg->window, deadline);
            if (rc != 0)
                return rc;
        }
        int rc = s_pub_send(self, 'D', *sent, deadline);
        if (rc != 0)
            return rc;
        uint64_t done = *sent + 1;
        if (self->client && done % cfg->batch == 0) {
            if (s_pub_flush(self) || s_pub_receipts(self, 0))
                return -1;
        }
        if (done % S_CTL_EVERY == 0 && s_aborted(self))
            return -1;
    }
    return 0;
}

//  At the deadline the publisher still reports (rc VD_ETIMEOUT, SENT so far): the coordinator
//  prints what was measured and fails the run.
static int
s_pub_throughput(s_role_t *self, uint64_t count)
{
    self->accepted = self->duplicates = self->rejected = self->resent = 0;
    self->reject_reason[0] = '\0';
    int64_t start = bench_proc_now_ns();
    int64_t deadline = start + self->cfg->phase_ns;
    self->deadline = deadline;
    uint64_t sent = 0;
    int rc = s_pub_stream(self, count, deadline, &sent);
    if (rc == 0)
        rc = s_pub_settle(self, deadline);
    if (rc < 0)
        return -1;
    int64_t v[] = { start,          bench_proc_now_ns(), (int64_t)sent,   self->accepted,
                    self->rejected, self->duplicates,    s_dropped(self), self->resent };
    return s_done(self, rc ? VD_ETIMEOUT : VD_OK, v, sizeof v / sizeof v[0], self->reject_reason);
}

/*  Waits for the byte of each subscriber that says the sample arrived (they share the pipe, and
    none writes for the next sample before it is sent). vedettad: every 10 ms without them, reads
    receipts, so that a sample the broker lost with the session is published again
    (the client has no fd to poll beside the pipe; an ack normally comes well within 10 ms).  */
static int
s_pub_wait_ack(s_role_t *self, uint64_t seq, int64_t deadline)
{
    //  Silence as long as the throughput phase tolerates means the sample was lost.
    int64_t lost_at = bench_proc_now_ns() + self->cfg->idle_ns;
    size_t missing = self->cfg->subscribers > 0 ? self->cfg->subscribers : 1;
    for (;;) {
        int64_t now = bench_proc_now_ns();
        if (now >= deadline)
            return bench_ctl_fail(self->ctl, "latency: the phase deadline passed");
        if (now >= lost_at)
            return bench_ctl_fail(self->ctl,
                                  "LOST latency sample %" PRIu64 ": not delivered to %zu "
                                  "subscriber(s) within %d s",
                                  seq, missing, (int)(self->cfg->idle_ns / 1000000000));
        int64_t left = (deadline < lost_at ? deadline : lost_at) - now;
        struct pollfd pfd[2] = { { .fd = self->cfg->ack_fd, .events = POLLIN },
                                 { .fd = self->ctl, .events = POLLIN } };
        int timeout = left > 1000000000 ? 1000 : (int)(left / 1000000) + 1;
        if (self->client && timeout > 10)
            timeout = 10;
        int rc = poll(pfd, 2, timeout);
        if (rc < 0 && errno != EINTR)
            return bench_ctl_fail(self->ctl, "poll: %s", strerror(errno));
        if (rc > 0 && (pfd[0].revents & POLLIN)) {
            char bytes[BENCH_MAX_SUBS];
            ssize_t n =
                read(self->cfg->ack_fd, bytes, missing < sizeof bytes ? missing : sizeof bytes);
            if (n <= 0)
                return bench_ctl_fail(self->ctl, "the subscriber's ack pipe closed");
            missing -= (size_t)n;
            if (missing == 0)
                return 0;
            continue;
        }
        if (rc > 0 && (pfd[0].revents & (POLLHUP | POLLERR)))
            return bench_ctl_fail(self->ctl, "the subscriber's ack pipe closed");
        if (rc > 0 && pfd[1].revents && s_aborted(self))
            return -1;
        if (rc == 0 && self->client && (s_pub_receipts(self, 0) || s_pub_flush(self)))
            return -1;
        //  A rejected sample is never delivered: say why now rather than as a loss later.
        if (self->rejected > 0)
            return bench_ctl_fail(self->ctl, "latency: a sample was rejected: %s",
                                  self->reject_reason);
    }
}

static int
s_pub_latency(s_role_t *self, uint64_t total)
{
    int64_t deadline = bench_proc_now_ns() + self->cfg->phase_ns;
    self->deadline = deadline;
    //  This phase's receipts only: a rejection in the throughput phase is that row's failure.
    self->accepted = self->duplicates = self->rejected = self->resent = 0;
    self->reject_reason[0] = '\0';
    //  vedettad-flood's victim runs this phase twice, numbering its samples from 0 each time.
    if (self->client && s_pub_salt(self))
        return -1;
    for (uint64_t i = 0; i < total; i++) {
        self->lat_sent = bench_proc_now_ns();
        int rc = s_pub_send(self, 'L', i, deadline);
        if (rc > 0)
            return bench_ctl_fail(self->ctl, "latency: send queue full at the deadline");
        if (rc < 0 || s_pub_flush(self))
            return -1;
        if (s_pub_wait_ack(self, i, deadline))
            return -1;
        if (self->client && s_pub_receipts(self, 0))
            return -1;
    }
    int rc = s_pub_settle(self, deadline);
    if (rc > 0)
        return bench_ctl_fail(self->ctl, "latency: %zu receipts missing at the deadline",
                              self->outstanding);
    if (rc < 0)
        return -1;
    int64_t v[] = { 0,
                    0,
                    (int64_t)total,
                    self->accepted,
                    self->rejected,
                    self->duplicates,
                    s_dropped(self),
                    self->resent };
    return s_done(self, VD_OK, v, sizeof v / sizeof v[0], self->reject_reason);
}

//  The flood's progress, between two batches of it.
typedef struct {
    int64_t burst;      // accepted receipts to have, with a refusal, before FLOODING
    int64_t refused_by; // when, at the latest
    int64_t deadline;   // the phase's
    bool announced;     // FLOODING sent
    int end;            // why it ended: VD_OK (STOP), VD_ETIMEOUT, VD_ELIMIT (count)
} s_flood_t;

/*  Whether the flood goes on. Sends FLOODING once the broker has accepted the burst (those
    receipts come after their commit) and refused a publish with ERATE; gives up if that has not
    happened within the set-up time (the limits are not in force, and the coordinator would
    wait for nothing). Returns 0 to go on, 1 to stop with flood->end set, -1 (FAIL sent, or
    ABORT).  */
static int
s_flood_check(s_role_t *self, s_flood_t *flood)
{
    int64_t now = bench_proc_now_ns();
    if (!flood->announced && self->refused > 0 && self->accepted >= flood->burst) {
        bench_ctl_t msg;
        memset(&msg, 0, sizeof msg);
        msg.type = BENCH_CTL_FLOODING;
        msg.v[0] = now;
        msg.v[1] = self->accepted;
        if (bench_ctl_send(self->ctl, &msg) != 0)
            return -1;
        flood->announced = true;
    }
    if (!flood->announced && now >= flood->refused_by)
        return bench_ctl_fail(
            self->ctl,
            "flood: not refused with ERATE after a burst of %" PRId64 " within %d s (%" PRId64
            " accepted, %" PRId64 " refused): the rate limits are not in force",
            flood->burst, (int)(self->cfg->setup_ns / 1000000000), self->accepted, self->refused);
    if (s_aborted(self))
        return -1;
    if (self->stop_asked) {
        flood->end = VD_OK;
        return 1;
    }
    if (now >= flood->deadline) {
        flood->end = VD_ETIMEOUT;
        return 1;
    }
    return 0;
}

/*  The flooder: a runaway Comune. Publishes as fast as the broker answers, never waiting for a
    retry_after hint, within the window of publishes without a receipt and a flush every batch,
    until the coordinator says STOP, `count` messages are sent, or the phase deadline passes;
    then collects the receipts still due. ERATE refusals are what the flood is for: they are
    counted apart from other rejections. `burst`: see s_flood_check(). Reports DONE as the
    FLOOD layout in bench_roles.h.  */
static int
s_pub_flood(s_role_t *self, uint64_t count, int64_t burst)
{
    const bench_role_cfg_t *cfg = self->cfg;
    if (!self->client)
        return bench_ctl_fail(self->ctl, "flood: vedettad paths only");
    self->accepted = self->duplicates = self->rejected = self->resent = 0;
    self->refused = 0;
    self->reject_reason[0] = '\0';
    self->flooding = true;
    self->stop_asked = false;
    int64_t start = bench_proc_now_ns();
    s_flood_t flood = { .burst = burst,
                        .refused_by = start + cfg->setup_ns,
                        .deadline = start + cfg->phase_ns,
                        .end = VD_ELIMIT };
    self->deadline = flood.deadline;
    int rc = 0;
    uint64_t sent = 0;
    while (rc == 0 && sent < count) {
        if (self->outstanding >= cfg->window) {
            rc = s_pub_await(self, cfg->window, flood.deadline);
            if (rc != 0)
                break;
        }
        if (s_pub_send(self, 'F', sent, flood.deadline) != 0) {
            rc = -1;
            break;
        }
        if (++sent % cfg->batch != 0)
            continue;
        if (s_pub_flush(self) || s_pub_receipts(self, 0))
            rc = -1;
        else
            rc = s_flood_check(self, &flood);
    }
    if (rc == 1 && flood.end == VD_ELIMIT)
        flood.end = VD_ETIMEOUT; // s_pub_await reached the deadline
    //  The receipts still due: refusals come at once, acceptances after their commit.
    if (rc >= 0) {
        int settled = s_pub_settle(self, bench_proc_now_ns() + cfg->idle_ns);
        if (settled > 0)
            rc = bench_ctl_fail(self->ctl, "flood: %zu publishes without a receipt at the end",
                                self->outstanding);
        else if (settled < 0)
            rc = -1;
    }
    self->flooding = false;
    if (rc < 0)
        return -1;
    if (!flood.announced)
        return bench_ctl_fail(self->ctl,
                              "flood: ended (%s) before its burst and a refusal: %" PRId64
                              " sent, %" PRId64 " accepted, %" PRId64 " refused with ERATE",
                              vd_strerror_name(flood.end), (int64_t)sent, self->accepted,
                              self->refused);
    int64_t v[] = { start,           bench_proc_now_ns(), (int64_t)sent,
                    self->accepted,  self->rejected,      self->duplicates,
                    s_dropped(self), self->resent,        self->refused };
    return s_done(self, flood.end, v, sizeof v / sizeof v[0], self->reject_reason);
}

/*  Waits for the coordinator's next command. A vedettad publisher lets its client run every
    S_KEEPALIVE_NS meanwhile (it pings when due): an idle flooder must still have its session
    when its flood begins. Returns as bench_ctl_recv(), or -1 (FAIL sent).  */
static int
s_pub_next(s_role_t *self, bench_ctl_t *msg)
{
    int64_t limit = bench_proc_now_ns() + S_IDLE_LIMIT_NS;
    for (;;) {
        int64_t slice = bench_proc_now_ns() + S_KEEPALIVE_NS;
        int rc = bench_ctl_recv(self->ctl, msg, slice < limit ? slice : limit);
        if (rc != 1 || bench_proc_now_ns() >= limit)
            return rc;
        if (self->client && s_pub_receipts(self, 0))
            return -1;
    }
}

int
bench_publisher_main(int ctl, void *arg)
{
    const bench_role_cfg_t *cfg = arg;
    s_role_t self;
    if (s_role_init(&self, ctl, cfg) || s_pub_open(&self)) {
        s_role_close(&self);
        return 1;
    }
    int rc = 0;
    for (;;) {
        bench_ctl_t msg;
        if (s_pub_next(&self, &msg) != 0) {
            rc = 1;
            break;
        }
        if (msg.type == BENCH_CTL_QUIT)
            break;
        //  Nothing running: a STOP after a flood that already ended on its own is late.
        if (msg.type == BENCH_CTL_ABORT || msg.type == BENCH_CTL_STOP)
            continue;
        if (msg.type == BENCH_CTL_PROBE)
            rc = s_pub_probe(&self);
        else if (msg.type == BENCH_CTL_GO)
            rc = s_pub_throughput(&self, (uint64_t)msg.v[0]);
        else if (msg.type == BENCH_CTL_LATENCY)
            rc = s_pub_latency(&self, (uint64_t)(msg.v[0] + msg.v[1]));
        else if (msg.type == BENCH_CTL_FLOOD)
            rc = s_pub_flood(&self, (uint64_t)msg.v[0], msg.v[1]);
        else
            rc = bench_ctl_fail(ctl, "publisher: unexpected control message %d", msg.type);
        if (rc) {
            rc = 1;
            break;
        }
    }
    s_role_close(&self);
    return rc;
}

/*  -------------------------------------------------------------------------------------------
    Subscriber  */

/*  Connects to vedettad and subscribes, plainly or on the durable name. A new name starts its
    stream now, before the publisher's first probe; a known one (the read back) resumes after
    what was acknowledged under it.  */
static int
s_sub_vd_subscribe(s_role_t *self)
{
    const bench_role_cfg_t *cfg = self->cfg;
    if (s_vd_connect(self))
        return -1;
    char reason[256] = "";
    int timeout_ms = (int)(cfg->setup_ns / 1000000);
    int rc;
    if (cfg->durable[0]) {
        vd_sub_options_t options = { .durable = cfg->durable };
        rc = vd_client_subscribe_from(self->client, cfg->topic, &options, reason, sizeof reason,
                                      timeout_ms);
    } else
        rc = vd_client_subscribe(self->client, cfg->topic, reason, sizeof reason, timeout_ms);
    if (rc != VD_OK)
        return bench_ctl_fail(self->ctl, "subscribe %s%s%s: %s %s", cfg->topic,
                              cfg->durable[0] ? " durable " : "", cfg->durable, vd_strerror(rc),
                              reason);
    return 0;
}

static int
s_sub_open(s_role_t *self)
{
    const bench_role_cfg_t *cfg = self->cfg;
    if (bench_path_is_vedettad(cfg->path)) {
        if (s_sub_vd_subscribe(self))
            return -1;
    } else {
        if (s_zmq_open(self, ZMQ_SUB) || s_zmq_curve_client(self))
            return -1;
        if (zmq_setsockopt(self->sock, ZMQ_SUBSCRIBE, "", 0) != 0 ||
            zmq_connect(self->sock, cfg->endpoint) != 0)
            return bench_ctl_fail(self->ctl, "subscriber connect %s: %s", cfg->endpoint,
                                  zmq_strerror(errno));
    }
    return bench_ctl_send_type(self->ctl, BENCH_CTL_READY);
}

/*  Acknowledges the delivery kept in self->unacked (and, acks being cumulative, every one
    before it on its stream). ECONN means libzmq's queue toward the broker is full: the
    delivery stays kept, and a later ack covers it. Returns 0, or -1 (FAIL sent).  */
static int
s_sub_ack(s_role_t *self)
{
    if (!self->unacked)
        return 0;
    int rc = vd_client_ack(self->client, self->unacked);
    if (rc == VD_ECONN)
        return 0;
    if (rc != VD_OK)
        return bench_ctl_fail(self->ctl, "vd_client_ack: %s", vd_strerror(rc));
    vd_envelope_destroy(&self->unacked);
    self->since_ack = 0;
    self->acks++;
    return 0;
}

/*  A durable subscriber processes each delivery, then acknowledges every cfg->ack_every of
    them, as an application that commits its work in batches would; the last delivery is kept
    so that what remains can be acknowledged when the phase ends. Takes `*env`.  */
static int
s_sub_processed(s_role_t *self, vd_envelope_t **env)
{
    if (!vd_envelope_durable(*env)) {
        vd_envelope_destroy(env);
        return 0;
    }
    vd_envelope_destroy(&self->unacked);
    self->unacked = *env;
    *env = NULL;
    size_t every = self->cfg->ack_every > 0 ? self->cfg->ack_every : 1;
    return ++self->since_ack >= every ? s_sub_ack(self) : 0;
}

//  Acknowledges what is left and sends it now: the phase is over.
static int
s_sub_ack_rest(s_role_t *self)
{
    if (!self->client)
        return 0;
    if (s_sub_ack(self))
        return -1;
    int rc = vd_client_flush(self->client);
    if (rc != VD_OK && rc != VD_ECONN)
        return bench_ctl_fail(self->ctl, "vd_client_flush: %s", vd_strerror(rc));
    return 0;
}

//  Receives one message into self->buf, waiting up to `timeout_ms`. Returns 1 when one came,
//  0 on timeout, -1 on failure (FAIL sent).
static int
s_sub_recv(s_role_t *self, int timeout_ms)
{
    if (self->client) {
        vd_envelope_t *env = NULL;
        int rc = vd_client_recv(self->client, &env, timeout_ms);
        if (rc == VD_ETIMEOUT)
            return 0;
        if (rc != VD_OK)
            return bench_ctl_fail(self->ctl, "vd_client_recv: %s", vd_strerror(rc));
        //  The read back checks the store's order: each delivery's seq above the one before.
        uint64_t seq = vd_envelope_seq(env);
        if (seq <= self->last_seq)
            self->seq_not_rising++;
        self->last_seq = seq;
        size_t len = 0;
        const void *body = vd_envelope_body(env, &len);
        self->len = len < self->cfg->size ? len : self->cfg->size;
        if (body && self->len)
            memcpy(self->buf, body, self->len);
        return s_sub_processed(self, &env) ? -1 : 1;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        int n = zmq_recv(self->sock, self->buf, self->cfg->size, ZMQ_DONTWAIT);
        if (n >= 0) {
            self->len = (size_t)n < self->cfg->size ? (size_t)n : self->cfg->size;
            return 1;
        }
        if (errno != EAGAIN && errno != EINTR)
            return bench_ctl_fail(self->ctl, "zmq_recv: %s", zmq_strerror(errno));
        if (attempt == 1)
            break;
        zmq_pollitem_t item = { .socket = self->sock, .events = ZMQ_POLLIN };
        int rc = zmq_poll(&item, 1, timeout_ms);
        if (rc < 0 && errno != EINTR)
            return bench_ctl_fail(self->ctl, "zmq_poll: %s", zmq_strerror(errno));
        if (rc <= 0)
            return 0;
    }
    return 0;
}

static int
s_sub_join(s_role_t *self)
{
    int64_t deadline = bench_proc_now_ns() + self->cfg->setup_ns;
    for (;;) {
        int rc = s_sub_recv(self, S_SLICE_MS);
        if (rc < 0)
            return -1;
        char kind;
        uint64_t seq;
        int64_t sent;
        if (rc == 1 && s_parse(self, &kind, &seq, &sent) && kind == 'P')
            return bench_ctl_send_type(self->ctl, BENCH_CTL_JOINED);
        if (rc == 0 && s_aborted(self))
            return -1;
        if (bench_proc_now_ns() >= deadline)
            return bench_ctl_fail(self->ctl, "no probe arrived: the subscription is not live");
    }
}

typedef struct {
    uint8_t *seen; // one bit per seq
    int64_t received, duplicates, reordered, first, last;
    int64_t highest;
    bool draining;
    int64_t drain_at;
} s_tally_t;

static void
s_tally_add(s_tally_t *tally, uint64_t seq, int64_t now)
{
    uint8_t bit = (uint8_t)(1u << (seq & 7u));
    if (tally->seen[seq >> 3] & bit) {
        tally->duplicates++;
        return;
    }
    tally->seen[seq >> 3] |= bit;
    if (tally->received++ == 0)
        tally->first = now;
    tally->last = now;
    if ((int64_t)seq < tally->highest)
        tally->reordered++;
    else
        tally->highest = (int64_t)seq;
}

//  Handles control messages during the throughput phase. Returns -1 to end the phase.
static int
s_sub_throughput_ctl(s_role_t *self, s_tally_t *tally)
{
    int type = 0;
    int rc;
    while ((rc = s_poll_ctl(self, &type)) == 1) {
        if (type != BENCH_CTL_DRAIN)
            return -1;
        tally->draining = true;
        tally->drain_at = bench_proc_now_ns();
    }
    return rc < 0 ? -1 : 0;
}

static int
s_tally_init(s_role_t *self, s_tally_t *tally, uint64_t count)
{
    memset(tally, 0, sizeof *tally);
    tally->highest = -1;
    tally->seen = calloc((size_t)(count / 8 + 1), 1);
    return tally->seen ? 0 : bench_ctl_fail(self->ctl, "out of memory");
}

/*  Receives data messages into `tally` until `count` distinct ones are in. Returns 0 when they
    are, or when silence after draining says the rest is lost; 1 at the phase deadline; -1 on
    failure (FAIL sent) or when the coordinator ends the phase.  */
static int
s_sub_collect(s_role_t *self, uint64_t count, s_tally_t *tally)
{
    int64_t deadline = bench_proc_now_ns() + self->cfg->phase_ns;
    uint64_t handled = 0;
    while ((uint64_t)tally->received < count) {
        int rc = s_sub_recv(self, S_SLICE_MS);
        if (rc < 0)
            return -1;
        int64_t now = bench_proc_now_ns();
        char kind;
        uint64_t seq;
        int64_t sent;
        if (rc == 1 && s_parse(self, &kind, &seq, &sent) && kind == 'D' && seq < count)
            s_tally_add(tally, seq, now);
        if (rc == 1 && ++handled % S_CTL_EVERY != 0)
            continue;
        if (s_sub_throughput_ctl(self, tally))
            return -1;
        //  Once the publisher is done, silence means loss: stop instead of waiting it out.
        int64_t quiet_since = tally->last > tally->drain_at ? tally->last : tally->drain_at;
        if (tally->draining && now - quiet_since >= self->cfg->idle_ns)
            return 0;
        if (now >= deadline)
            return 1;
    }
    return 0;
}

static int
s_sub_throughput(s_role_t *self, uint64_t count)
{
    s_tally_t tally;
    if (s_tally_init(self, &tally, count))
        return -1;
    self->acks = 0;
    int rc = s_sub_collect(self, count, &tally);
    free(tally.seen);
    if (rc < 0 || s_sub_ack_rest(self))
        return -1;
    int64_t redelivered = self->client ? (int64_t)vd_client_redelivered(self->client) : 0;
    int64_t v[] = { tally.received,  tally.first,     tally.last, tally.duplicates,
                    tally.reordered, s_dropped(self), self->acks, redelivered };
    return s_done(self, rc ? VD_ETIMEOUT : VD_OK, v, sizeof v / sizeof v[0], NULL);
}

/*  The durable subscriber goes away as a stopping application would: it takes what has
    arrived (the probes after the one that proved the path), acknowledges it, and closes its
    client, which sends the last acknowledgements before its bye. The broker keeps the cursor,
    so what is published from now on waits in the store.  */
static int
s_sub_leave(s_role_t *self)
{
    if (!self->client || !self->cfg->durable[0])
        return bench_ctl_fail(self->ctl, "leave: not on a durable subscription");
    int64_t deadline = bench_proc_now_ns() + self->cfg->setup_ns;
    int rc;
    while ((rc = s_sub_recv(self, S_SLICE_MS)) == 1)
        if (bench_proc_now_ns() >= deadline)
            return bench_ctl_fail(self->ctl, "leave: deliveries still arriving at the deadline");
    if (rc < 0 || s_sub_ack_rest(self))
        return -1;
    //  A delivery of the closed client cannot be acknowledged on the next one.
    vd_envelope_destroy(&self->unacked);
    vd_client_destroy(&self->client);
    return s_done(self, VD_OK, NULL, 0, NULL);
}

/*  The durable subscriber comes back on the same name with a fresh client, as an application
    that restarts would, and receives the `count` messages published while it was away, from the
    store, acknowledging as it goes. Nothing else is published meanwhile, so silence from the
    start counts as loss. Reports as GO, with [FIRST] the reconnect's start and [REORDERED] the
    deliveries whose broker seq did not rise.  */
static int
s_sub_readback(s_role_t *self, uint64_t count)
{
    if (self->client)
        return bench_ctl_fail(self->ctl, "read back: the subscriber did not leave first");
    int64_t reconnect_at = bench_proc_now_ns();
    self->acks = 0;
    self->since_ack = 0;
    self->last_seq = 0;
    self->seq_not_rising = 0;
    if (s_sub_vd_subscribe(self))
        return -1;
    s_tally_t tally;
    if (s_tally_init(self, &tally, count))
        return -1;
    tally.draining = true;
    tally.drain_at = reconnect_at;
    int rc = s_sub_collect(self, count, &tally);
    free(tally.seen);
    if (rc < 0 || s_sub_ack_rest(self))
        return -1;
    int64_t v[] = { tally.received,       reconnect_at,
                    tally.last,           tally.duplicates,
                    self->seq_not_rising, s_dropped(self),
                    self->acks,           (int64_t)vd_client_redelivered(self->client) };
    return s_done(self, rc ? VD_ETIMEOUT : VD_OK, v, sizeof v / sizeof v[0], NULL);
}

static int
s_compare_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

//  Nearest-rank percentile of a sorted array.
static int64_t
s_percentile(const int64_t *sorted, size_t n, unsigned pct)
{
    if (n == 0)
        return 0;
    size_t rank = (n * pct + 99) / 100;
    return sorted[rank > 0 ? rank - 1 : 0];
}

//  `grace_ns`: added to the phase deadline, for a subscriber told before its publisher.
static int
s_sub_latency(s_role_t *self, uint64_t samples, uint64_t warmup, int64_t grace_ns)
{
    uint64_t total = samples + warmup;
    int64_t *delay = calloc((size_t)samples + 1, sizeof *delay);
    if (!delay)
        return bench_ctl_fail(self->ctl, "out of memory");
    int64_t deadline = bench_proc_now_ns() + self->cfg->phase_ns + (grace_ns > 0 ? grace_ns : 0);
    size_t stored = 0;
    uint64_t got = 0;
    int result = 0;
    while (got < total && result == 0) {
        int rc = s_sub_recv(self, S_SLICE_MS);
        int64_t now = bench_proc_now_ns();
        char kind;
        uint64_t seq;
        int64_t sent;
        if (rc < 0)
            result = -1;
        else if (rc == 1 && s_parse(self, &kind, &seq, &sent) && kind == 'L') {
            if (seq >= warmup && stored < samples)
                delay[stored++] = now - sent;
            got++;
            if (write(self->cfg->ack_fd, "a", 1) != 1)
                result = bench_ctl_fail(self->ctl, "ack pipe: %s", strerror(errno));
        } else if (rc == 0 && s_aborted(self))
            result = -1;
        else if (now >= deadline)
            result = bench_ctl_fail(self->ctl, "latency: %llu of %llu samples by the deadline",
                                    (unsigned long long)got, (unsigned long long)total);
    }
    if (result == 0 && s_sub_ack_rest(self))
        result = -1;
    if (result == 0) {
        qsort(delay, stored, sizeof *delay, s_compare_i64);
        int64_t v[] = { (int64_t)stored, s_percentile(delay, stored, 50),
                        s_percentile(delay, stored, 99), stored ? delay[stored - 1] : 0,
                        stored ? delay[0] : 0 };
        result = s_done(self, VD_OK, v, sizeof v / sizeof v[0], NULL);
    }
    free(delay);
    return result;
}

int
bench_subscriber_main(int ctl, void *arg)
{
    const bench_role_cfg_t *cfg = arg;
    s_role_t self;
    if (s_role_init(&self, ctl, cfg) || s_sub_open(&self)) {
        s_role_close(&self);
        return 1;
    }
    int rc = 0;
    for (;;) {
        bench_ctl_t msg;
        if (bench_ctl_recv(ctl, &msg, bench_proc_now_ns() + S_IDLE_LIMIT_NS) != 0) {
            rc = 1;
            break;
        }
        if (msg.type == BENCH_CTL_QUIT)
            break;
        if (msg.type == BENCH_CTL_ABORT || msg.type == BENCH_CTL_DRAIN)
            continue; // late: the phase it was meant for is over
        if (msg.type == BENCH_CTL_JOIN)
            rc = s_sub_join(&self);
        else if (msg.type == BENCH_CTL_GO)
            rc = s_sub_throughput(&self, (uint64_t)msg.v[0]);
        else if (msg.type == BENCH_CTL_LATENCY)
            rc = s_sub_latency(&self, (uint64_t)msg.v[0], (uint64_t)msg.v[1], msg.v[2]);
        else if (msg.type == BENCH_CTL_LEAVE)
            rc = s_sub_leave(&self);
        else if (msg.type == BENCH_CTL_READBACK)
            rc = s_sub_readback(&self, (uint64_t)msg.v[0]);
        else
            rc = bench_ctl_fail(ctl, "subscriber: unexpected control message %d", msg.type);
        if (rc) {
            rc = 1;
            break;
        }
    }
    s_role_close(&self);
    return rc;
}

/*  -------------------------------------------------------------------------------------------
    Forwarder: the "dumb broker". zmq_proxy between an XSUB and an XPUB, both CURVE servers with
    one key pair; no ZAP handler (so no authentication), no ACL, no store. A watcher thread turns
    the coordinator's QUIT (or its death) into TERMINATE on the proxy's control socket.  */

#define S_FWD_CONTROL "inproc://bench-forwarder-control"

typedef struct {
    void *ctx;
    int ctl;
} s_watch_t;

static void *
s_fwd_watch(void *arg)
{
    s_watch_t *watch = arg;
    void *pair = zmq_socket(watch->ctx, ZMQ_PAIR);
    if (!pair)
        return NULL;
    s_setsockopt_int(pair, ZMQ_LINGER, 0);
    if (zmq_connect(pair, S_FWD_CONTROL) == 0) {
        for (;;) {
            bench_ctl_t msg;
            int rc = bench_ctl_recv(watch->ctl, &msg, bench_proc_now_ns() + S_IDLE_LIMIT_NS);
            if (rc != 0 || msg.type == BENCH_CTL_QUIT)
                break;
        }
        zmq_send(pair, "TERMINATE", 9, 0);
    }
    zmq_close(pair);
    return NULL;
}

int
bench_forwarder_main(int ctl, void *arg)
{
    const bench_role_cfg_t *cfg = arg;
    int rc = 1;
    void *xsub = NULL, *xpub = NULL, *control = NULL;
    void *ctx = zmq_ctx_new();
    if (!ctx) {
        bench_ctl_fail(ctl, "zmq_ctx_new: %s", zmq_strerror(errno));
        return 1;
    }
    xsub = zmq_socket(ctx, ZMQ_XSUB);
    xpub = zmq_socket(ctx, ZMQ_XPUB);
    control = zmq_socket(ctx, ZMQ_PAIR);
    bench_ctl_t ready;
    memset(&ready, 0, sizeof ready);
    ready.type = BENCH_CTL_READY;
    char xsub_ep[256] = "", xpub_ep[256] = "";
    if (!xsub || !xpub || !control || //
        s_setsockopt_int(xsub, ZMQ_LINGER, 0) || s_setsockopt_int(xpub, ZMQ_LINGER, 0) ||
        s_setsockopt_int(control, ZMQ_LINGER, 0) || s_setsockopt_int(xsub, ZMQ_RCVHWM, BENCH_HWM) ||
        s_setsockopt_int(xpub, ZMQ_SNDHWM, BENCH_HWM) ||
        s_setsockopt_int(xpub, ZMQ_XPUB_NODROP, 1) ||
        s_zmq_curve_server(xsub, cfg->server_secret) ||
        s_zmq_curve_server(xpub, cfg->server_secret) ||
        s_zmq_bind_any(xsub, xsub_ep, sizeof xsub_ep) ||
        s_zmq_bind_any(xpub, xpub_ep, sizeof xpub_ep) || zmq_bind(control, S_FWD_CONTROL) != 0) {
        bench_ctl_fail(ctl, "forwarder setup: %s", zmq_strerror(errno));
        goto err_close;
    }
    snprintf(ready.text, sizeof ready.text, "%s %s", xsub_ep, xpub_ep);
    s_watch_t watch = { .ctx = ctx, .ctl = ctl };
    pthread_t thread;
    if (pthread_create(&thread, NULL, s_fwd_watch, &watch) != 0) {
        bench_ctl_fail(ctl, "forwarder: cannot start the watcher thread");
        goto err_close;
    }
    if (bench_ctl_send(ctl, &ready) == 0) {
        zmq_proxy_steerable(xsub, xpub, NULL, control);
        rc = 0;
    } else
        shutdown(ctl, SHUT_RDWR); // the coordinator is gone: wake the watcher so it ends
    pthread_join(thread, NULL);
err_close:
    if (control)
        zmq_close(control);
    if (xpub)
        zmq_close(xpub);
    if (xsub)
        zmq_close(xsub);
    zmq_ctx_term(ctx);
    return rc;
}

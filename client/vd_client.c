/*  vd_client: one connection to a vedetta broker (include/vedetta.h).

    A ZeroMQ DEALER socket with CURVE carries frames of batched commands (proto/vdp_msg.h).
    There is no background thread: the connection lives while the application is inside a call
    that waits; between calls libzmq's own heartbeats keep the TCP connection open.

    Invariants:
    - Commands leave in batches: appended to `out`, sent as one ZeroMQ message by s_flush(),
      which every waiting call runs first, and whenever the next command would not fit.
    - The session is (re)opened by s_session_open() only: it sends hello followed by a sub for
      every active subscription in one frame, bumps `epoch` and empties `out`. A waiting sub or
      unsub that sent its command in an earlier epoch sends it again.
    - Every publish is kept in `pubs`, in publishing order, as its encoded envelope map, until
      its receipt comes (any receipt but a rejection with ESESSION). s_pubs_send() writes those
      not yet sent in this session, oldest first, and only in an open session: after a welcome
      they all leave again ahead of anything published since (the broker answers a copy of a
      message it already has with "duplicate", so each publish still gets one receipt). Past
      VD_MAX_PUBS the oldest is given up (s_pubs_evict()).
    - Every publish is signed (PROTOCOL.md §4.6) before it is first written: s_pubs_send() signs
      the unsigned ones it reaches as one tree of up to VDP_SIG_MAX_LEAVES and appends each one's
      `sig` to its kept bytes, which every later copy repeats. One Ed25519 signature costs the
      publisher about 45 µs here and the broker about 125 µs to check, several times a
      message's whole budget, so publishes are signed in bursts: a full tree (or batch) at
      once, everything at vd_client_flush() or when a call waits for its own receipt, and
      otherwise, as Nagle's algorithm does for TCP, a partial tree only while no publish of
      this session is waiting for its receipt. An application limited by its window of
      receipts would otherwise sign each publish alone, as each receipt makes room for one.
    - Every incoming frame is read whole as it arrives: every command but deliver is decoded and
      handled then, and receipts that are not what the current call waits for are queued. A
      deliver is only located: the queue keeps the received frame (shared, counted, by all the
      deliveries in it) and the command's span, and vd_client_recv() decodes it into a new
      envelope. So a burst costs the frames libzmq already allocated plus 16 bytes a delivery,
      not a 5 KiB envelope and a copy each that would grow the heap and fault it in again at
      every burst. Neither queue loses anything below the caps below.
    - Silence for one heartbeat interval sends ping; for VD_MISSED_BEATS intervals, the socket
      is rebuilt. A broker that forgot us (error ESESSION) gets a new hello on the same socket.
    - Key material lives in `keys` only, wiped by vd_client_destroy() and before a new
      connect.  */

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <zmq.h>

#include "vedetta.h"
#include "vdp_agency.h"
#include "vdp_envelope.h"
#include "vdp_ids.h"
#include "vdp_limits.h"
#include "vdp_msg.h"
#include "vdp_sig.h"
#include "vdp_topic.h"
#include "vd_client_internal.h"
#include "vd_subs.h"

#define VD_HEARTBEAT_DEFAULT_MS 2000
#define VD_MISSED_BEATS         3     // silent intervals before the connection counts as lost
#define VD_LINGER_MS            250   // lets bye and a last batch leave at destroy
#define VD_RECONNECT_IVL_MS     100   // libzmq's own TCP reconnect, first try
#define VD_RECONNECT_MAX_MS     2000  // and its back-off ceiling
#define VD_MAX_DELIVERIES       16384 // queued deliveries before dropping (each keeps its frame)
#define VD_MAX_RECEIPTS         65536 // queued receipts before dropping
#define VD_MAX_PUBS             65536 // publishes kept for resending until their receipt
#define VD_RECV_BURST           256   // ZeroMQ messages read per round, so timers still run
#define VD_PUB_OVERHEAD         64    // a pub command's bytes around its envelope map, at most
#define VD_ZAP_DENIED           400   // ZAP status code of a refused key
#define VD_RING_KEEP_BYTES      (512u * 1024u) // an emptied ring keeps a buffer up to this size
//  Deliveries the broker may send ahead of the application (flow control, PROTOCOL.md §5.6):
//  half the delivery queue, so that a session's window and what an earlier session left queued
//  fit together. Credit goes back in quarters of it, as the application takes deliveries.
#define VD_CREDIT_WINDOW (VD_MAX_DELIVERIES / 2)
#define VD_CREDIT_REFILL (VD_CREDIT_WINDOW / 4)

typedef enum {
    S_IDLE,  // never connected, or disconnected
    S_HELLO, // hello sent, waiting for welcome
    S_READY, // session open
    S_FAILED // the broker refused us for good (key, version): `fail_code` says why
} s_state_t;

//  A ring of fixed-size items that doubles as it fills, up to `max` items.
typedef struct {
    uint8_t *data;
    size_t elem;
    size_t head;
    size_t count;
    size_t cap;
    size_t max;
} s_ring_t;

/*  One received ZeroMQ message, shared by the deliveries queued from it and closed with the
    last of them. Cost: a frame stays whole while any of its deliveries waits, so a frame of
    many commands can be held for one; copying that one out would bound memory more tightly.  */
typedef struct {
    zmq_msg_t msg;
    size_t refs; // queued deliveries pointing into `msg`
} s_frame_t;

//  A queued delivery: the bytes of one deliver command inside a held frame, not decoded yet.
typedef struct {
    s_frame_t *frame; // counted reference
    uint32_t start;   // offset of the command in the frame (frames are under VDP_MAX_FRAME)
    uint32_t size;
} s_delivery_t;

/*  A publish waiting for its receipt: its envelope map exactly as first encoded, so that every
    copy sent carries the same id and bytes.  */
typedef struct {
    char id[VDP_ID_LEN + 1];
    unsigned epoch; // session it was last written in (0: none yet)
    uint8_t *raw;   // owned; NULL once answered (a hole, dropped when it reaches the front)
    size_t raw_len;
    bool is_signed;                   // `raw` carries its sig
    uint8_t leaf[VDP_SIG_HASH_BYTES]; // its leaf in the tree it will be signed in
} s_pub_t;

struct vd_client_t {
    void *ctx;            // owned: one ZeroMQ context per client, one I/O thread
    void *sock;           // owned: DEALER, NULL when idle
    void *monitor;        // owned: PAIR receiving `sock`'s handshake failures
    unsigned monitor_seq; // makes each monitor endpoint unique
    s_state_t state;
    int fail_code;  // S_FAILED: the code calls return
    char *endpoint; // owned
    struct {
        uint8_t server[VDP_KEY_BYTES];
        uint8_t public_key[VDP_KEY_BYTES];
        uint8_t secret_key[VDP_KEY_BYTES];          // wiped on destroy
        uint8_t sign_secret[VDP_SIGN_SECRET_BYTES]; // Ed25519, wiped on destroy
    } keys;
    int heartbeat_ms; // asked for in hello
    int hb_ms;        // in effect: what the broker granted

    vdp_writer_t out; // the batch being filled
    vdp_writer_t ctl; // hello and re-subscriptions, sent ahead of `out`
    uint64_t next_ref;
    uint64_t hello_ref;  // ref of the last hello sent
    unsigned epoch;      // sessions opened so far
    int64_t quiet_since; // monotonic ms of the last frame received (or of a new start)
    int64_t last_ping;   // monotonic ms of the last ping sent
    int64_t last_sent;   // monotonic ms of the last frame handed to libzmq
    int64_t left_at;     // monotonic ms when the last wait returned to the application

    //  From the welcome
    char org[VDP_MAX_ORG + 1];
    size_t org_len;
    char inbox[VDP_MAX_JUR][VDP_MAX_TOPIC + 1];
    size_t inbox_count;

    //  The answer the current call waits for: ok/error by ref, or a receipt by id
    struct {
        uint64_t ref;
        bool done;
        int code;
        uint64_t seq; // an ok's
        char reason[VDP_MAX_REASON + 1];
    } answer;
    struct {
        char id[VDP_ID_LEN + 1];
        bool done;
        vd_receipt_t receipt;
    } awaited;
    char ignore_id[VDP_ID_LEN + 1]; // a receipt that would arrive after its call gave up

    s_ring_t pubs;         // s_pub_t: publishes without a receipt yet, oldest first
    size_t pubs_next;      // pubs[0, pubs_next) have been written in this session
    size_t unsigned_count; // kept publishes not signed yet, and their bytes
    size_t unsigned_bytes;
    size_t in_flight; // kept publishes written in this session, waiting for their receipt
    vdp_sig_t sigs[VDP_SIG_MAX_LEAVES]; // scratch of s_pubs_sign()
    vdp_envelope_t resend; // only `raw` is ever set: a kept publish as vdp_writer_pub() takes it
    s_ring_t receipts;     // vd_receipt_t
    s_ring_t deliveries;   // s_delivery_t, each owning one reference to its frame
    uint64_t dropped;
    uint64_t redelivered; // deliveries skipped: their stream had handed them over already
    bool must_read;       // the current wait needs an answer: read even when full

    vd_subs_t subs;    // active subscriptions
    uint32_t consumed; // deliveries taken off the queue since credit was last granted

    vdp_cmd_t cmd;          // scratch for decoding
    s_frame_t *frame;       // owned, its message closed: the next frame is received into it
    vdp_envelope_t scratch; // decoding target of a pub, which a broker never sends
    char reason[VDP_MAX_REASON + 1];
};

/*  -------------------------------------------------------------------------------------------
    Small helpers  */

static int64_t
s_clock_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
s_now(void)
{
    return s_clock_ms(CLOCK_MONOTONIC);
}

//  Absolute monotonic deadline of a call, -1 for "forever".
static int64_t
s_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : s_now() + timeout_ms;
}

//  The timeout that ends at `deadline` (-1: none), 0 once it has passed.
static int
s_timeout_left(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t left = deadline - s_now();
    return left > 0 ? (int)left : 0;
}

static void
s_set_reason(vd_client_t *self, const char *reason)
{
    snprintf(self->reason, sizeof self->reason, "%s", reason ? reason : "");
}

//  A code from the broker as one of ours; a number we do not know is a protocol error.
static int
s_known_code(int32_t code)
{
    return strcmp(vd_strerror_name(code), "EUNKNOWN") == 0 || code >= 0 ? VD_EPROTO : code;
}

static void
s_ring_init(s_ring_t *ring, size_t elem, size_t max)
{
    memset(ring, 0, sizeof *ring);
    ring->elem = elem;
    ring->max = max;
}

static int
s_ring_push(s_ring_t *ring, const void *item)
{
    if (ring->count >= ring->max)
        return VD_ELIMIT;
    if (ring->count == ring->cap) {
        size_t cap = ring->cap ? ring->cap * 2 : 16;
        if (cap > ring->max)
            cap = ring->max;
        uint8_t *data = malloc(cap * ring->elem);
        if (!data)
            return VD_ENOMEM;
        for (size_t i = 0; i < ring->count; i++) {
            memcpy(data + i * ring->elem, ring->data + ((ring->head + i) % ring->cap) * ring->elem,
                   ring->elem);
        }
        free(ring->data);
        ring->data = data;
        ring->cap = cap;
        ring->head = 0;
    }
    memcpy(ring->data + ((ring->head + ring->count) % ring->cap) * ring->elem, item, ring->elem);
    ring->count++;
    return VD_OK;
}

//  The item `index` places after the oldest one, which must exist.
static void *
s_ring_at(s_ring_t *ring, size_t index)
{
    assert(index < ring->count);
    return ring->data + ((ring->head + index) % ring->cap) * ring->elem;
}

static bool
s_ring_pop(s_ring_t *ring, void *item)
{
    if (ring->count == 0)
        return false;
    memcpy(item, ring->data + ring->head * ring->elem, ring->elem);
    ring->head = (ring->head + 1) % ring->cap;
    ring->count--;
    if (ring->count == 0 && ring->cap * ring->elem > VD_RING_KEEP_BYTES) {
        //  A burst is over: give the memory back rather than keep the high-water mark.
        free(ring->data);
        ring->data = NULL;
        ring->cap = 0;
        ring->head = 0;
    }
    return true;
}

static void
s_ring_release(s_ring_t *ring)
{
    free(ring->data);
    ring->data = NULL;
    ring->cap = ring->count = ring->head = 0;
}

/*  -------------------------------------------------------------------------------------------
    Socket  */

static void
s_socket_close(vd_client_t *self)
{
    if (self->sock) {
        zmq_socket_monitor(self->sock, NULL, 0);
        zmq_close(self->sock);
        self->sock = NULL;
    }
    if (self->monitor) {
        zmq_close(self->monitor);
        self->monitor = NULL;
    }
}

static int
s_setopt_int(void *sock, int option, int value)
{
    return zmq_setsockopt(sock, option, &value, sizeof value);
}

//  A new DEALER with our CURVE keys and timers, its monitor, connecting to the broker.
static int
s_socket_open(vd_client_t *self)
{
    assert(!self->sock && !self->monitor);
    self->sock = zmq_socket(self->ctx, ZMQ_DEALER);
    if (!self->sock)
        return VD_ENOMEM;
    int64_t max_size = VDP_MAX_FRAME;
    int hb = self->heartbeat_ms;
    int rc = zmq_setsockopt(self->sock, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size);
    rc |= s_setopt_int(self->sock, ZMQ_LINGER, VD_LINGER_MS);
    rc |= s_setopt_int(self->sock, ZMQ_RECONNECT_IVL, VD_RECONNECT_IVL_MS);
    rc |= s_setopt_int(self->sock, ZMQ_RECONNECT_IVL_MAX, VD_RECONNECT_MAX_MS);
    rc |= s_setopt_int(self->sock, ZMQ_HEARTBEAT_IVL, hb);
    rc |= s_setopt_int(self->sock, ZMQ_HEARTBEAT_TTL, hb * VD_MISSED_BEATS);
    rc |= s_setopt_int(self->sock, ZMQ_HEARTBEAT_TIMEOUT, hb * VD_MISSED_BEATS);
    rc |= zmq_setsockopt(self->sock, ZMQ_CURVE_SERVERKEY, self->keys.server, VDP_KEY_BYTES);
    rc |= zmq_setsockopt(self->sock, ZMQ_CURVE_PUBLICKEY, self->keys.public_key, VDP_KEY_BYTES);
    rc |= zmq_setsockopt(self->sock, ZMQ_CURVE_SECRETKEY, self->keys.secret_key, VDP_KEY_BYTES);
    if (rc != 0)
        goto err_close;

    //  The monitor tells a refused key (ZAP 400) apart from a broker that is simply down.
    char address[64];
    snprintf(address, sizeof address, "inproc://vd-monitor-%u", ++self->monitor_seq);
    if (zmq_socket_monitor(self->sock, address, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0)
        goto err_close;
    self->monitor = zmq_socket(self->ctx, ZMQ_PAIR);
    if (!self->monitor || zmq_connect(self->monitor, address) != 0)
        goto err_close;
    if (zmq_connect(self->sock, self->endpoint) != 0) {
        s_set_reason(self, "invalid broker endpoint");
        s_socket_close(self);
        return VD_EINVAL;
    }
    return VD_OK;

err_close:
    s_socket_close(self);
    return errno == ENOMEM ? VD_ENOMEM : VD_EINVAL;
}

//  Sends the bytes of `writer` as one ZeroMQ message and empties it.
static int
s_send(vd_client_t *self, vdp_writer_t *writer)
{
    if (writer->failed) {
        vdp_writer_reset(writer);
        return VD_ENOMEM;
    }
    if (writer->size == 0)
        return VD_OK;
    if (!self->sock)
        return VD_ECONN;
    //  Never block: libzmq queues frames while the connection is down, up to its high-water
    //  mark; past that, keep the batch and let the next round (or the caller) try again.
    int rc;
    do
        rc = zmq_send(self->sock, writer->data, writer->size, ZMQ_DONTWAIT);
    while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return VD_ECONN;
    self->last_sent = s_now();
    vdp_writer_reset(writer);
    return VD_OK;
}

static int
s_flush(vd_client_t *self)
{
    return s_send(self, &self->out);
}

/*  -------------------------------------------------------------------------------------------
    Receipts and kept publishes  */

//  Hands a receipt to the call waiting for it, drops one its call gave up on, or queues it.
static void
s_receipt_deliver(vd_client_t *self, const vd_receipt_t *receipt)
{
    bool awaited = self->awaited.id[0] && strcmp(self->awaited.id, receipt->id) == 0;
    if (awaited && !self->awaited.done) {
        self->awaited.receipt = *receipt;
        self->awaited.done = true;
        return;
    }
    if (self->ignore_id[0] && strcmp(self->ignore_id, receipt->id) == 0) {
        self->ignore_id[0] = '\0';
        return;
    }
    if (s_ring_push(&self->receipts, receipt) != VD_OK)
        self->dropped++;
}

static s_pub_t *
s_pub_at(vd_client_t *self, size_t index)
{
    return s_ring_at(&self->pubs, index);
}

/*  The kept publish with this id, the oldest one (`newest` false) or the newest, NULL if none.
    Cost: a scan. Receipts come in publishing order, so the oldest match is at the front but
    for holes; a receipt for a publish no longer kept scans them all (an index by id would
    make that constant, at 16 bytes a publish).  */
static s_pub_t *
s_pub_find(vd_client_t *self, const char *id, bool newest)
{
    size_t count = self->pubs.count;
    for (size_t i = 0; i < count; i++) {
        s_pub_t *pub = s_pub_at(self, newest ? count - 1 - i : i);
        if (pub->raw && strcmp(pub->id, id) == 0)
            return pub;
    }
    return NULL;
}

static void s_pubs_trim(vd_client_t *self);

//  Stops keeping `pub` (invalid afterwards): its bytes go now, its slot when it is the oldest.
static void
s_pub_forget(vd_client_t *self, s_pub_t *pub)
{
    if (pub->raw && pub->epoch == self->epoch && pub->epoch != 0 && self->in_flight > 0)
        self->in_flight--;
    if (pub->raw && !pub->is_signed) {
        self->unsigned_count--;
        self->unsigned_bytes -= pub->raw_len;
    }
    free(pub->raw);
    pub->raw = NULL;
    s_pubs_trim(self);
}

//  Drops the holes at the front of `pubs`.
static void
s_pubs_trim(vd_client_t *self)
{
    s_pub_t hole;
    while (self->pubs.count > 0 && !s_pub_at(self, 0)->raw) {
        s_ring_pop(&self->pubs, &hole);
        if (self->pubs_next > 0)
            self->pubs_next--;
    }
}

/*  Gives up the oldest kept publish to make room for a new one. If it is in flight in this
    session its receipt still comes from the broker, and a rejection with ESESSION reaches the
    application as it is. If its session is gone it would never be answered: it gets that
    rejection now, from here (vedetta.h promises one receipt per publish).  */
static void
s_pubs_evict(vd_client_t *self)
{
    s_pub_t *oldest = s_pub_at(self, 0);
    if (oldest->raw && (oldest->epoch != self->epoch || self->state != S_READY)) {
        vd_receipt_t receipt;
        memset(&receipt, 0, sizeof receipt);
        memcpy(receipt.id, oldest->id, sizeof oldest->id);
        receipt.status = VD_RECEIPT_REJECTED;
        receipt.code = VD_ESESSION;
        snprintf(receipt.reason, sizeof receipt.reason,
                 "session lost before the receipt, with over %d publishes waiting: publish it "
                 "again",
                 VD_MAX_PUBS);
        s_receipt_deliver(self, &receipt);
    }
    s_pub_forget(self, oldest);
}

/*  Encodes a kept publish again from its fields, without `sig`. Returns VD_OK, VD_ENOMEM, or
    VD_EINVAL (its bytes do not decode: not reached, libvedetta checked them), unchanged then.  */
static int
s_pub_reencode(vd_client_t *self, s_pub_t *pub)
{
    uint8_t *data;
    size_t len;
    int rc = vdp_envelope_decode(&self->scratch, pub->raw, pub->raw_len, NULL, 0);
    if (rc == VD_OK) {
        self->scratch.sig_len = 0;
        rc = vdp_envelope_encode(&self->scratch, &data, &len);
    }
    vdp_envelope_reset(&self->scratch);
    if (rc != VD_OK)
        return rc == VD_ENOMEM ? VD_ENOMEM : VD_EINVAL;
    free(pub->raw);
    pub->raw = data;
    pub->raw_len = len;
    return VD_OK;
}

/*  Signs the unsigned kept publishes from pubs[first] on, up to VDP_SIG_MAX_LEAVES of them,
    as one tree, and appends its sig to each one's bytes. Returns VD_OK or VD_ENOMEM (the ones
    not signed yet are signed by a later call).  */
static int
s_pubs_sign(vd_client_t *self, size_t first)
{
    uint8_t leaves[VDP_SIG_MAX_LEAVES][VDP_SIG_HASH_BYTES];
    size_t index[VDP_SIG_MAX_LEAVES];
    size_t count = 0;
    for (size_t i = first; i < self->pubs.count && count < VDP_SIG_MAX_LEAVES; i++) {
        s_pub_t *pub = s_pub_at(self, i);
        if (pub->raw && !pub->is_signed) {
            memcpy(leaves[count], pub->leaf, VDP_SIG_HASH_BYTES);
            index[count++] = i;
        }
    }
    if (count == 0)
        return VD_OK;
    if (vdp_sig_sign((const uint8_t(*)[VDP_SIG_HASH_BYTES])leaves, count, self->keys.sign_secret,
                     self->sigs) != VD_OK)
        return VD_ENOMEM; // not reached: 1 <= count <= VDP_SIG_MAX_LEAVES
    uint8_t sig[VDP_SIG_MAX_BYTES];
    for (size_t k = 0; k < count; k++) {
        s_pub_t *pub = s_pub_at(self, index[k]);
        size_t sig_len = vdp_sig_encode(&self->sigs[k], sig);
        uint8_t *signed_raw;
        size_t signed_len;
        int rc = vdp_sig_attach(pub->raw, pub->raw_len, sig, sig_len, &signed_raw, &signed_len);
        if (rc == VD_EINVAL) {
            //  Not reached: s_pub_keep() kept only bytes with room for a sig. Its fields
            //  alone, then, which always have room.
            size_t before = pub->raw_len;
            if (s_pub_reencode(self, pub) != VD_OK)
                return VD_ENOMEM;
            self->unsigned_bytes = self->unsigned_bytes - before + pub->raw_len;
            rc = vdp_sig_attach(pub->raw, pub->raw_len, sig, sig_len, &signed_raw, &signed_len);
        }
        if (rc != VD_OK)
            return VD_ENOMEM;
        self->unsigned_count--;
        self->unsigned_bytes -= pub->raw_len;
        free(pub->raw);
        pub->raw = signed_raw;
        pub->raw_len = signed_len;
        pub->is_signed = true;
    }
    return VD_OK;
}

/*  Takes the signatures off the kept publishes, to be signed again with the new key: the
    signing key changed (vd_client_connect() with another key file, e.g. a rotated key), and
    the broker checks each signature against the key of the session that sends it. Each is
    encoded again from its fields, without `sig` (a relayed envelope's unknown keys are lost
    with it); its leaf is unchanged, as `sig` is no part of it. One that cannot be (no memory)
    keeps its old signature, and the broker rejects it with ESIG.  */
static void
s_pubs_unsign(vd_client_t *self)
{
    for (size_t i = 0; i < self->pubs.count; i++) {
        s_pub_t *pub = s_pub_at(self, i);
        if (!pub->raw || !pub->is_signed || s_pub_reencode(self, pub) != VD_OK)
            continue;
        pub->is_signed = false;
        self->unsigned_count++;
        self->unsigned_bytes += pub->raw_len;
    }
}

//  True once the unsigned kept publishes fill a tree, or a batch: they are signed at once.
static bool
s_tree_full(const vd_client_t *self)
{
    return self->unsigned_count >= VDP_SIG_MAX_LEAVES || self->unsigned_bytes >= VDP_BATCH_BYTES;
}

/*  Writes the kept publishes not yet written in this session to the batch, oldest first,
    signing them first (s_pubs_sign()) and sending the batch whenever the next one might not
    fit. Only in an open session: the ones kept while a session is being opened wait for its
    welcome. Unsigned publishes short of a full tree wait while others are in flight, unless
    `now` (see the invariants above). Returns VD_OK, VD_ENOMEM, or what s_send() returned when
    a full batch could not leave (the rest wait for a later try).  */
static int
s_pubs_send(vd_client_t *self, bool now)
{
    if (self->state != S_READY)
        return VD_OK;
    bool sign = now || s_tree_full(self) || self->in_flight == 0;
    while (self->pubs_next < self->pubs.count) {
        s_pub_t *pub = s_pub_at(self, self->pubs_next);
        if (pub->raw && !pub->is_signed) {
            if (!sign)
                return VD_OK; // the rest are unsigned too: they wait for the next call
            if (s_pubs_sign(self, self->pubs_next) != VD_OK)
                return VD_ENOMEM;
            continue; // signed now: written below
        }
        if (pub->raw) {
            if (self->out.count > 0 &&
                !vdp_writer_room(&self->out, pub->raw_len + VD_PUB_OVERHEAD)) {
                int rc = s_send(self, &self->out);
                if (rc != VD_OK)
                    return rc;
            }
            self->resend.raw = pub->raw;
            self->resend.raw_len = pub->raw_len;
            if (vdp_writer_pub(&self->out, &self->resend) != VD_OK)
                return VD_ENOMEM;
            pub->epoch = self->epoch;
            self->in_flight++;
        }
        self->pubs_next++;
    }
    return VD_OK;
}

/*  Keeps a checked envelope until its receipt. It leaves, signed with the ones kept after it,
    at the next flush or waiting call, or here once a whole tree or batch is waiting. Cost: the
    envelope is encoded into a buffer of its own and copied into each batch it goes in, one
    allocation and one copy more than encoding it into the batch (and once more to append its
    sig). Returns VD_OK (kept), VD_ENOMEM, or VD_ECONN when the batch ahead of it cannot leave
    (then it is not kept: the caller may publish it again).  */
static int
s_pub_keep(vd_client_t *self, const vdp_envelope_t *env)
{
    s_pub_t pub = { .epoch = 0, .raw = NULL, .raw_len = env->raw_len, .is_signed = false };
    memcpy(pub.id, env->id, sizeof pub.id); // a checked id: a UUID and its NUL
    if (vdp_sig_leaf(env, pub.leaf) != VD_OK)
        return VD_ENOMEM;
    if (env->raw && vdp_sig_attachable(env->raw, env->raw_len)) {
        pub.raw = malloc(env->raw_len);
        if (!pub.raw)
            return VD_ENOMEM;
        memcpy(pub.raw, env->raw, env->raw_len); // a relayed envelope goes as it came
    } else if (vdp_envelope_encode(env, &pub.raw, &pub.raw_len) != VD_OK) {
        return VD_ENOMEM;
    }
    if (self->pubs.count >= VD_MAX_PUBS)
        s_pubs_evict(self);
    if (s_ring_push(&self->pubs, &pub) != VD_OK) {
        free(pub.raw);
        return VD_ENOMEM;
    }
    self->unsigned_count++;
    self->unsigned_bytes += pub.raw_len;
    if (!s_tree_full(self))
        return VD_OK;
    int rc = s_pubs_send(self, false);
    if (rc != VD_OK && self->pubs_next < self->pubs.count) {
        s_pub_forget(self, s_pub_at(self, self->pubs.count - 1)); // not written: not kept
        return rc == VD_ENOMEM ? VD_ENOMEM : VD_ECONN;
    }
    return VD_OK;
}

/*  Opens a session: hello, then every active subscription again, in one frame; the answers
    to those subs are consumed by s_on_answer(). With `rebuild`, a new socket first.  */
static int
s_session_open(vd_client_t *self, bool rebuild)
{
    //  The silence timer restarts even if this attempt fails, so that retries are paced.
    self->quiet_since = s_now();
    if (rebuild || !self->sock) {
        s_socket_close(self);
        int rc = s_socket_open(self);
        if (rc != VD_OK)
            return rc;
    }
    vdp_writer_reset(&self->ctl);
    self->hello_ref = self->next_ref++;
    //  The window less what is still queued from the last session: the queue never overflows.
    size_t queued = self->deliveries.count;
    uint32_t credit = queued + 64 < VD_CREDIT_WINDOW ? (uint32_t)(VD_CREDIT_WINDOW - queued) : 64;
    self->consumed = 0;
    int rc = vdp_writer_hello(&self->ctl, self->hello_ref, "libvedetta/" VD_VERSION_STRING,
                              (uint32_t)self->heartbeat_ms, credit);
    for (size_t i = 0; rc == VD_OK && i < self->subs.count; i++) {
        vd_sub_t *sub = &self->subs.items[i];
        if (!vdp_writer_room(&self->ctl, VDP_MAX_TOPIC + VDP_MAX_DURABLE + 96))
            s_send(self, &self->ctl); // a frame holds VDP_MAX_BATCH commands; order is kept
        sub->ref = self->next_ref++;
        uint64_t from_seq;
        int64_t since;
        vd_sub_resume(sub, &from_seq, &since);
        rc = vdp_writer_sub_from(&self->ctl, sub->ref, sub->pattern,
                                 sub->durable[0] ? sub->durable : NULL, from_seq, since);
    }
    self->state = S_HELLO;
    self->epoch++;
    //  What the batch holds belongs to the lost session: kept publishes leave again after the
    //  welcome, a waiting sub or unsub writes its command again, a pong is moot.
    vdp_writer_reset(&self->out);
    self->pubs_next = 0;
    self->in_flight = 0;
    if (rc != VD_OK) {
        vdp_writer_reset(&self->ctl);
        return rc;
    }
    //  If this send fails the broker hears nothing, and the silence timer rebuilds the socket.
    s_send(self, &self->ctl);
    return VD_OK;
}

static void
s_fail(vd_client_t *self, int code, const char *reason)
{
    self->state = S_FAILED;
    self->fail_code = code;
    s_set_reason(self, reason);
}

//  The broker lost our session: hello again once, whatever number of commands it refused.
static void
s_session_lost(vd_client_t *self)
{
    if (self->state == S_READY)
        s_session_open(self, false);
}

/*  -------------------------------------------------------------------------------------------
    Incoming commands  */

static void
s_on_welcome(vd_client_t *self, const vdp_cmd_t *cmd)
{
    if (self->state != S_HELLO)
        return; // a second welcome (two hellos crossed a restart) changes nothing
    snprintf(self->org, sizeof self->org, "%s", cmd->org);
    self->org_len = strlen(self->org); // each publish compares and copies it
    self->inbox_count = cmd->inbox_count < VDP_MAX_JUR ? cmd->inbox_count : VDP_MAX_JUR;
    for (size_t i = 0; i < self->inbox_count; i++)
        snprintf(self->inbox[i], sizeof self->inbox[i], "%s", cmd->inbox[i]);
    if (cmd->heartbeat_ms >= VDP_MIN_HEARTBEAT_MS && cmd->heartbeat_ms <= VDP_MAX_HEARTBEAT_MS)
        self->hb_ms = (int)cmd->heartbeat_ms;
    self->state = S_READY;
    s_pubs_send(self, false); // on failure, the next round writes the rest
}

static void
s_on_receipt(vd_client_t *self, const vdp_cmd_t *cmd)
{
    //  One per publish: copied with memcpy, the decoder having NUL-terminated both strings
    //  within their caps (which the static asserts below tie to the public struct).
    _Static_assert(sizeof cmd->id <= sizeof((vd_receipt_t *)0)->id, "receipt id");
    _Static_assert(sizeof cmd->reason <= sizeof((vd_receipt_t *)0)->reason, "receipt reason");
    vd_receipt_t receipt;
    memset(&receipt, 0, sizeof receipt);
    memcpy(receipt.id, cmd->id, strnlen(cmd->id, VDP_ID_LEN));
    receipt.status = (vd_receipt_status_t)cmd->status;
    receipt.seq = cmd->seq;
    receipt.accepted_at = cmd->at;
    if (cmd->status == VDP_RECEIPT_REJECTED) {
        receipt.code = s_known_code(cmd->code);
        memcpy(receipt.reason, cmd->reason, strnlen(cmd->reason, VDP_MAX_REASON));
        receipt.retry_after_ms = cmd->retry_after_ms;
    } else if (cmd->status != VDP_RECEIPT_ACCEPTED && cmd->status != VDP_RECEIPT_DUPLICATE) {
        return; // no status we know: nothing to report
    }
    s_pub_t *pub = s_pub_find(self, receipt.id, false);
    if (receipt.status == VD_RECEIPT_REJECTED && receipt.code == VD_ESESSION) {
        s_session_lost(self);
        if (pub)
            return; // kept: it leaves again once the new session is open
    } else if (pub) {
        s_pub_forget(self, pub);
    }
    s_receipt_deliver(self, &receipt);
}

/*  Queues the deliver command at frame[start, end), undecoded. `frame` is NULL when there was
    no memory to hold the frame.  */
static void
s_on_deliver(vd_client_t *self, s_frame_t *frame, size_t start, size_t end)
{
    s_delivery_t delivery = { frame, (uint32_t)start, (uint32_t)(end - start) };
    if (!frame || s_ring_push(&self->deliveries, &delivery) != VD_OK) {
        self->dropped++; // no memory for it, or the application stopped reading
        return;
    }
    frame->refs++;
}

//  Gives back a delivery's reference to its frame; the last one closes it.
static void
s_frame_release(vd_client_t *self, s_frame_t *frame)
{
    assert(frame->refs > 0);
    if (--frame->refs > 0)
        return;
    zmq_msg_close(&frame->msg);
    if (!self->frame)
        self->frame = frame; // the next frame is received into it
    else
        free(frame);
}

/*  Takes the oldest queued delivery and decodes it into a new envelope that owns its bytes.
    Returns VD_OK with *env_p set (caller owns it), VD_EPROTO (the command or its envelope is
    malformed) or VD_ENOMEM; either way the delivery has left the queue.  */
static int
s_delivery_take(vd_client_t *self, vdp_envelope_t **env_p)
{
    *env_p = NULL;
    s_delivery_t delivery;
    bool popped = s_ring_pop(&self->deliveries, &delivery);
    assert(popped);
    //  Not calloc: decoding starts by resetting the envelope, which only needs the owned
    //  pointers to be NULL; zeroing 5 KiB twice per delivery shows in a profile.
    vdp_envelope_t *env = malloc(sizeof *env);
    int rc = VD_ENOMEM;
    if (env) {
        env->owned_body = NULL;
        env->owned_raw = NULL;
        const uint8_t *data = zmq_msg_data(&delivery.frame->msg);
        vdp_reader_t reader;
        vdp_reader_init(&reader, data + delivery.start, delivery.size);
        rc = vdp_reader_next(&reader, &self->cmd, env, NULL, 0);
        if (rc == VD_OK && (self->cmd.op != VDP_OP_DELIVER || reader.pos != delivery.size))
            rc = VD_EPROTO; // not what vdp_reader_peek() saw: cannot happen, checked anyway
        if (rc == VD_OK)
            rc = vdp_envelope_own(env); // the envelope outlives the frame
        if (rc != VD_OK) {
            vdp_envelope_reset(env);
            free(env);
            env = NULL;
        }
    }
    s_frame_release(self, delivery.frame);
    *env_p = env;
    return rc;
}

/*  ok (code VD_OK) or error: the answer to the waiting call, to a re-subscription, or neither.
    `seq` is an ok's: where the stream of a sub starts.  */
static void
s_on_answer(vd_client_t *self, uint64_t ref, int code, const char *reason, uint64_t seq)
{
    if (code == VD_ESESSION) {
        s_session_lost(self);
        return; // the waiting call, if any, sends its command again in the new session
    }
    if (ref != 0 && ref == self->answer.ref && !self->answer.done) {
        self->answer.done = true;
        self->answer.code = code;
        self->answer.seq = seq;
        snprintf(self->answer.reason, sizeof self->answer.reason, "%s", reason);
        return;
    }
    vd_sub_t *sub = vd_subs_by_ref(&self->subs, ref);
    if (sub) {
        if (code != VD_OK) {
            vd_subs_remove(&self->subs, sub); // the policy no longer grants it
            return;
        }
        sub->ref = 0;
        if (!sub->started) { // where a replay resumes from, should the session go again
            sub->started = true;
            sub->after = seq;
        }
        return;
    }
    bool hello_refused =
        ref == self->hello_ref || (ref == 0 && (code == VD_EVERSION || code == VD_EAUTH));
    if (code != VD_OK && self->state == S_HELLO && hello_refused) {
        //  hello refused (version, key): no session will come from retrying.
        s_fail(self, code, reason);
        return;
    }
    if (code == VD_EAUTH) // our key was revoked under a live session
        s_fail(self, code, reason);
}

static void
s_on_command(vd_client_t *self, const vdp_cmd_t *cmd)
{
    switch (cmd->op) {
    case VDP_OP_WELCOME:
        s_on_welcome(self, cmd);
        break;
    case VDP_OP_RECEIPT:
        s_on_receipt(self, cmd);
        break;
    case VDP_OP_OK:
        s_on_answer(self, cmd->ref, VD_OK, "", cmd->seq);
        break;
    case VDP_OP_ERROR:
        s_on_answer(self, cmd->ref, s_known_code(cmd->code), cmd->reason, 0);
        break;
    case VDP_OP_PING:
        vdp_writer_pong(&self->out, cmd->ref); // leaves with the next flush, this round
        break;
    default:
        break; // pong, and anything a client never receives (deliver is s_on_deliver's)
    }
}

/*  Handles every command of one frame, held in `msg`; queues its deliveries, which share
    `frame` (NULL: no memory to hold it, and they are dropped). Malformed commands are dropped,
    the decoder is total; a deliver is checked when vd_client_recv() decodes it.  */
static void
s_on_frame(vd_client_t *self, s_frame_t *frame, zmq_msg_t *msg)
{
    self->quiet_since = s_now();
    vdp_reader_t reader;
    vdp_reader_init(&reader, zmq_msg_data(msg), zmq_msg_size(msg));
    for (;;) {
        size_t start = reader.pos;
        int rc;
        if (vdp_reader_peek(&reader) == VDP_OP_DELIVER) {
            rc = vdp_reader_skip(&reader, NULL, 0);
            if (rc == VD_OK)
                s_on_deliver(self, frame, start, reader.pos);
        } else {
            rc = vdp_reader_next(&reader, &self->cmd, &self->scratch, NULL, 0);
            if (rc == VD_OK)
                s_on_command(self, &self->cmd);
        }
        if (rc == VD_ENOTFOUND || (rc != VD_OK && reader.broken))
            break;
    }
}

static void
s_on_monitor(vd_client_t *self)
{
    zmq_msg_t part;
    zmq_msg_init(&part);
    if (zmq_msg_recv(&part, self->monitor, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&part);
        return;
    }
    uint16_t event = 0;
    uint32_t value = 0;
    if (zmq_msg_size(&part) >= sizeof event + sizeof value) {
        const uint8_t *bytes = zmq_msg_data(&part);
        memcpy(&event, bytes, sizeof event);
        memcpy(&value, bytes + sizeof event, sizeof value);
    }
    while (zmq_msg_more(&part) && zmq_msg_recv(&part, self->monitor, ZMQ_DONTWAIT) >= 0) {
        //  the endpoint part: not needed
    }
    zmq_msg_close(&part);
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH && value == VD_ZAP_DENIED)
        s_fail(self, VD_EAUTH, "the broker refused this key");
}

//  Reads what is waiting on the socket, at most VD_RECV_BURST messages.
static void
s_read(vd_client_t *self)
{
    for (int n = 0; n < VD_RECV_BURST && self->sock; n++) {
        //  Waiting for deliveries with a nearly full queue: leave the rest in libzmq's queue,
        //  so that the broker sees a slow reader instead of us dropping what it sent.
        if (!self->must_read && self->deliveries.count + VDP_MAX_BATCH > self->deliveries.max)
            return;
        //  Received straight into a holder the queued deliveries can share; without memory
        //  for one, into `local`, and this frame's deliveries are dropped.
        if (!self->frame)
            self->frame = malloc(sizeof *self->frame);
        s_frame_t local;
        s_frame_t *frame = self->frame ? self->frame : &local;
        frame->refs = 0;
        zmq_msg_t *msg = &frame->msg;
        zmq_msg_init(msg);
        if (zmq_msg_recv(msg, self->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(msg);
            return;
        }
        if (zmq_msg_more(msg)) {
            //  Our frames are single-part: drop every part of anything else.
            while (zmq_msg_more(msg) && zmq_msg_recv(msg, self->sock, ZMQ_DONTWAIT) >= 0) {
            }
            self->quiet_since = s_now();
        } else {
            s_on_frame(self, frame == self->frame ? frame : NULL, msg);
        }
        if (frame->refs > 0)
            self->frame = NULL; // the delivery queue holds it now
        else
            zmq_msg_close(msg);
    }
}

/*  -------------------------------------------------------------------------------------------
    Waiting  */

//  One round: send what is queued, keep the session alive, wait for input until `deadline`
//  or the next timer, and read it.
static void
s_pump(vd_client_t *self, int64_t deadline)
{
    //  What a full batch held back last time, and what waits to be signed if the caller
    //  waits for its own receipt (vd_client_publish()).
    s_pubs_send(self, self->awaited.id[0] != '\0');
    s_flush(self); // on failure the batch stays and goes with a later round
    int64_t now = s_now();
    int64_t lost_at = self->quiet_since + (int64_t)self->hb_ms * VD_MISSED_BEATS;
    if (now >= lost_at) {
        //  Nothing heard for VD_MISSED_BEATS intervals: assume the connection is dead and
        //  rebuild it rather than trust libzmq to notice a half-open TCP connection.
        s_session_open(self, true);
        lost_at = self->quiet_since + (int64_t)self->hb_ms * VD_MISSED_BEATS;
    }
    int64_t wake = lost_at;
    if (self->state == S_READY) {
        //  Ping when the broker has been silent for an interval (is it there?) and also when we
        //  have been: the broker closes a session it has not heard from for 3 intervals, and
        //  a subscriber that only receives would otherwise say nothing at all.
        int64_t heard = self->quiet_since > self->last_ping ? self->quiet_since : self->last_ping;
        int64_t said = self->last_sent;
        int64_t ping_at = (heard < said ? heard : said) + self->hb_ms;
        if (now >= ping_at) {
            vdp_writer_ping(&self->out, self->next_ref++);
            s_flush(self);
            self->last_ping = now;
            ping_at = now + self->hb_ms;
        }
        wake = ping_at < wake ? ping_at : wake;
    }
    if (deadline >= 0 && deadline < wake)
        wake = deadline;
    long timeout = wake > now ? (long)(wake - now) : 0;
    if (!self->sock) {
        zmq_poll(NULL, 0, timeout); // rebuilding failed (no memory): try again next round
        return;
    }
    zmq_pollitem_t items[] = { { self->sock, 0, ZMQ_POLLIN, 0 },
                               { self->monitor, 0, ZMQ_POLLIN, 0 } };
    if (zmq_poll(items, 2, timeout) <= 0)
        return; // timeout, or EINTR: the caller's loop decides
    if (items[1].revents & ZMQ_POLLIN)
        s_on_monitor(self);
    if (items[0].revents & ZMQ_POLLIN)
        s_read(self);
    s_flush(self); // pongs and commands re-sent by a new session
}

typedef bool(s_until_fn)(vd_client_t *self, void *arg);
static s_until_fn s_until_delivery_queued;

/*  Runs rounds until `until` says done, the deadline passes (after at least one round, so a
    zero timeout still reads what has arrived) or the client fails. `until` may also send
    commands again when it sees a new epoch.  */
static int
s_wait(vd_client_t *self, int timeout_ms, s_until_fn *until, void *arg)
{
    int64_t deadline = s_deadline(timeout_ms);
    //  Time spent outside our calls does not count as silence: nobody was listening then.
    //  (A loop of short waits, on the other hand, accumulates it and does notice a dead link.)
    int64_t now = s_now();
    if (self->left_at > 0 && self->quiet_since < self->left_at)
        self->quiet_since += now - self->left_at;
    self->must_read = until != s_until_delivery_queued;
    int rc;
    for (bool pumped = false;; pumped = true) {
        if (until(self, arg)) {
            rc = VD_OK;
            break;
        }
        if (self->state == S_FAILED) {
            rc = self->fail_code;
            break;
        }
        if (pumped && deadline >= 0 && s_now() >= deadline) {
            rc = VD_ETIMEOUT;
            break;
        }
        s_pump(self, deadline);
    }
    self->left_at = s_now();
    return rc;
}

static int
s_usable(const vd_client_t *self)
{
    if (self->state == S_FAILED)
        return self->fail_code;
    return self->state == S_IDLE || !self->endpoint ? VD_ECONN : VD_OK;
}

static bool
s_until_ready(vd_client_t *self, void *arg)
{
    (void)arg;
    return self->state == S_READY;
}

static bool
s_until_receipt_queued(vd_client_t *self, void *arg)
{
    (void)arg;
    return self->receipts.count > 0;
}

static bool
s_until_delivery_queued(vd_client_t *self, void *arg)
{
    (void)arg;
    return self->deliveries.count > 0;
}

static bool
s_until_receipt(vd_client_t *self, void *arg)
{
    (void)arg;
    return self->awaited.done;
}

typedef struct {
    vdp_op_t op;
    const char *pattern;
    const char *durable; // NULL: none
    uint64_t from_seq;
    int64_t since;
    unsigned epoch;
} s_request_t;

static int
s_write_request(vd_client_t *self, const s_request_t *request)
{
    self->answer.ref = self->next_ref++;
    self->answer.done = false;
    if (request->op == VDP_OP_SUB)
        return vdp_writer_sub_from(&self->out, self->answer.ref, request->pattern, request->durable,
                                   request->from_seq, request->since);
    return vdp_writer_unsub(&self->out, self->answer.ref, request->pattern, request->durable);
}

static bool
s_until_answer(vd_client_t *self, void *arg)
{
    s_request_t *request = arg;
    if (self->answer.done)
        return true;
    if (request->epoch != self->epoch) {
        request->epoch = self->epoch;
        s_write_request(self, request);
    }
    return false;
}

//  Sends a sub or unsub and waits for its ok or error. Returns VD_OK or the broker's code.
static int
s_request(vd_client_t *self, s_request_t request, int timeout_ms)
{
    request.epoch = self->epoch;
    if (!vdp_writer_room(&self->out, VDP_MAX_TOPIC + VDP_MAX_DURABLE + 96)) {
        int rc = s_flush(self);
        if (rc != VD_OK)
            return rc;
    }
    if (s_write_request(self, &request) != VD_OK)
        return VD_ENOMEM;
    int rc = s_wait(self, timeout_ms, s_until_answer, &request);
    self->answer.ref = 0;
    if (rc != VD_OK)
        return rc;
    if (self->answer.code != VD_OK)
        s_set_reason(self, self->answer.reason);
    return self->answer.code;
}

/*  -------------------------------------------------------------------------------------------
    Public API  */

vd_client_t *
vd_client_new(void)
{
    if (sodium_init() < 0)
        return NULL;
    vd_client_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->heartbeat_ms = VD_HEARTBEAT_DEFAULT_MS;
    self->hb_ms = VD_HEARTBEAT_DEFAULT_MS;
    self->next_ref = 1;
    vdp_writer_init(&self->out);
    vdp_writer_init(&self->ctl);
    s_ring_init(&self->pubs, sizeof(s_pub_t), VD_MAX_PUBS);
    s_ring_init(&self->receipts, sizeof(vd_receipt_t), VD_MAX_RECEIPTS);
    s_ring_init(&self->deliveries, sizeof(s_delivery_t), VD_MAX_DELIVERIES);
    self->ctx = zmq_ctx_new();
    if (!self->ctx)
        vd_client_destroy(&self);
    return self;
}

//  Says bye if a session is open and closes the socket; keeps queues, keys and subscriptions.
static void
s_disconnect(vd_client_t *self)
{
    if (self->sock && self->state == S_READY) {
        s_pubs_send(self, true); // what waits to be signed leaves before the bye
        vdp_writer_bye(&self->out);
        s_flush(self);
    }
    vdp_writer_reset(&self->out);
    vdp_writer_reset(&self->ctl);
    s_socket_close(self);
    self->state = S_IDLE;
}

void
vd_client_destroy(vd_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vd_client_t *self = *self_p;
    s_disconnect(self);
    s_delivery_t delivery;
    while (s_ring_pop(&self->deliveries, &delivery))
        s_frame_release(self, delivery.frame);
    s_ring_release(&self->deliveries);
    free(self->frame); // its message is closed
    self->frame = NULL;
    if (self->ctx) {
        while (zmq_ctx_term(self->ctx) != 0 && errno == EINTR) {
        }
    }
    s_ring_release(&self->receipts);
    s_pub_t pub;
    while (s_ring_pop(&self->pubs, &pub))
        free(pub.raw);
    s_ring_release(&self->pubs);
    vd_subs_release(&self->subs);
    vdp_writer_release(&self->out);
    vdp_writer_release(&self->ctl);
    vdp_envelope_reset(&self->scratch);
    free(self->endpoint);
    sodium_memzero(&self->keys, sizeof self->keys);
    free(self);
    *self_p = NULL;
}

int
vd_client_set_heartbeat(vd_client_t *self, int interval_ms)
{
    if (!self || interval_ms < (int)VDP_MIN_HEARTBEAT_MS || interval_ms > (int)VDP_MAX_HEARTBEAT_MS)
        return VD_EINVAL;
    self->heartbeat_ms = interval_ms;
    self->hb_ms = interval_ms;
    return VD_OK;
}

//  Loads our keys from the secret file and the broker's from Z85 into self->keys.
static int
s_load_keys(vd_client_t *self, const char *broker_public_key, const char *secret_path)
{
    if (strlen(broker_public_key) != VDP_KEY_Z85_LEN ||
        !zmq_z85_decode(self->keys.server, broker_public_key)) {
        s_set_reason(self, "the broker key is not a 40-character Z85 public key");
        return VD_EINVAL;
    }
    vdp_secret_t secret;
    char err[VDP_MAX_REASON + 1] = "";
    int rc = vdp_secret_load(secret_path, &secret, err, sizeof err);
    if (rc == VD_OK &&
        vdp_secret_curve_keys(&secret, self->keys.public_key, self->keys.secret_key) != VD_OK) {
        snprintf(err, sizeof err, "%s: the CURVE keys are not valid", secret_path);
        rc = VD_ECONFIG;
    }
    if (rc == VD_OK && vdp_secret_sign_key(&secret, self->keys.sign_secret) != VD_OK) {
        snprintf(err, sizeof err, "%s: the signing key is not valid", secret_path);
        rc = VD_ECONFIG;
    }
    if (rc != VD_OK && !err[0])
        snprintf(err, sizeof err, "%s: %s", secret_path, vd_strerror(rc));
    vdp_secret_wipe(&secret);
    if (rc != VD_OK) {
        sodium_memzero(&self->keys, sizeof self->keys);
        s_set_reason(self, err);
        return rc == VD_ENOMEM ? VD_ENOMEM : VD_EINVAL;
    }
    return VD_OK;
}

int
vd_client_connect(vd_client_t *self,
                  const char *endpoint,
                  const char *broker_public_key,
                  const char *secret_path,
                  int timeout_ms)
{
    if (!self || !endpoint || !broker_public_key || !secret_path || timeout_ms < -1)
        return VD_EINVAL;
    self->reason[0] = '\0';
    s_disconnect(self);
    self->subs.count = 0; // a new connection starts with no subscriptions
    self->org[0] = '\0';
    self->org_len = 0;
    self->inbox_count = 0;
    self->hb_ms = self->heartbeat_ms;
    //  An Ed25519 secret key ends with its public key.
    uint8_t signed_with[VDP_KEY_BYTES];
    memcpy(signed_with, self->keys.sign_secret + VDP_SIGN_SECRET_BYTES - VDP_KEY_BYTES,
           sizeof signed_with);
    int rc = s_load_keys(self, broker_public_key, secret_path);
    if (rc != VD_OK)
        return rc;
    if (memcmp(signed_with, self->keys.sign_secret + VDP_SIGN_SECRET_BYTES - VDP_KEY_BYTES,
               sizeof signed_with) != 0)
        s_pubs_unsign(self);
    free(self->endpoint);
    self->endpoint = strdup(endpoint);
    if (!self->endpoint)
        return VD_ENOMEM;
    rc = s_session_open(self, true);
    if (rc == VD_OK)
        rc = s_wait(self, timeout_ms, s_until_ready, NULL);
    if (rc == VD_ETIMEOUT) {
        s_set_reason(self, "no welcome from the broker in time: it is down, its key is not the "
                           "one given, or it does not know this key");
    } else if (rc != VD_OK && !self->reason[0]) {
        s_set_reason(self, vd_strerror(rc));
    }
    if (rc != VD_OK) {
        s_socket_close(self);
        self->state = S_IDLE;
    }
    return rc;
}

const char *
vd_client_org(const vd_client_t *self)
{
    return self && self->org[0] ? self->org : NULL;
}

const char *
vd_client_inbox(const vd_client_t *self, size_t index)
{
    return self && index < self->inbox_count ? self->inbox[index] : NULL;
}

const char *
vd_client_reason(const vd_client_t *self)
{
    return self ? self->reason : "";
}

uint64_t
vd_client_dropped(const vd_client_t *self)
{
    return self ? self->dropped : 0;
}

uint64_t
vd_client_redelivered(const vd_client_t *self)
{
    return self ? self->redelivered : 0;
}

//  Fills in id, sent, sender and v, checks the envelope, and appends its pub to the batch.
static int
s_queue_pub(vd_client_t *self, vd_envelope_t *env)
{
    int rc = s_usable(self);
    if (rc != VD_OK)
        return rc;
    //  Drop the received bytes before changing what they encode (a relayed envelope), and
    //  an old signature with them: this client signs what it sends, with its own key.
    bool same_sender = memcmp(env->sender, self->org, self->org_len + 1) == 0;
    bool changes = !env->id[0] || env->sent == 0 || env->v == 0 || !same_sender || env->sig_len > 0;
    if (changes && vdp_envelope_drop_raw(env) != VD_OK)
        return VD_ENOMEM;
    if (!env->id[0])
        vdp_uuid_generate(env->id);
    if (env->sent == 0)
        env->sent = s_clock_ms(CLOCK_REALTIME);
    if (env->v == 0)
        env->v = VD_ENVELOPE_VERSION;
    if (!same_sender)
        memcpy(env->sender, self->org, self->org_len + 1); // sizes are equal: VDP_MAX_ORG + 1
    char reason[VDP_MAX_REASON + 1] = "";
    rc = vdp_envelope_validate(env, reason, sizeof reason);
    if (rc != VD_OK) {
        s_set_reason(self, reason);
        return rc == VD_ELIMIT ? VD_ELIMIT : VD_EINVAL;
    }
    env->sig_len = 0; // its raw bytes, if it had a sig, were dropped above
    return s_pub_keep(self, env);
}

int
vd_client_publish(vd_client_t *self, vd_envelope_t *env, vd_receipt_t *receipt, int timeout_ms)
{
    if (!self || !env || !receipt || timeout_ms < -1)
        return VD_EINVAL;
    self->reason[0] = '\0';
    int rc = s_queue_pub(self, env);
    if (rc != VD_OK)
        return rc;
    memcpy(self->awaited.id, env->id, sizeof self->awaited.id); // valid: a UUID and its NUL
    self->awaited.done = false;
    //  Kept like any publish, so a new session sends it again while this call waits.
    rc = s_wait(self, timeout_ms, s_until_receipt, NULL);
    if (rc == VD_OK) {
        *receipt = self->awaited.receipt;
    } else {
        //  Given up: no longer sent again (publishing it again is the caller's retry), and a
        //  receipt still on its way is not for the queue. Kept last, so found at once.
        s_pub_t *pub = s_pub_find(self, env->id, true);
        if (pub)
            s_pub_forget(self, pub);
        memcpy(self->ignore_id, env->id, sizeof self->ignore_id);
    }
    self->awaited.id[0] = '\0';
    return rc;
}

int
vd_client_publish_async(vd_client_t *self, vd_envelope_t *env)
{
    if (!self || !env)
        return VD_EINVAL;
    self->reason[0] = '\0';
    return s_queue_pub(self, env);
}

int
vd_client_flush(vd_client_t *self)
{
    if (!self)
        return VD_EINVAL;
    int rc = s_usable(self);
    if (rc == VD_OK)
        rc = s_pubs_send(self, true);
    return rc != VD_OK ? rc : s_flush(self);
}

int
vd_client_receipt(vd_client_t *self, vd_receipt_t *receipt, int timeout_ms)
{
    if (!self || !receipt || timeout_ms < -1)
        return VD_EINVAL;
    if (self->receipts.count == 0) {
        int rc = s_usable(self);
        if (rc == VD_OK)
            rc = s_wait(self, timeout_ms, s_until_receipt_queued, NULL);
        if (rc != VD_OK)
            return rc;
    }
    s_ring_pop(&self->receipts, receipt);
    return VD_OK;
}

//  A sub request with its answer's start; adds the subscription once the broker agreed.
static int
s_subscribe(vd_client_t *self, const s_request_t *request, int timeout_ms)
{
    int rc = s_request(self, *request, timeout_ms);
    if (rc != VD_OK)
        return rc;
    vd_sub_t *sub = vd_subs_find(&self->subs, request->pattern, request->durable);
    if (!sub) {
        sub = vd_subs_add(&self->subs, request->pattern, request->durable, request->from_seq,
                          request->since);
        if (!sub)
            return VD_ENOMEM;
        sub->started = true;
        sub->after = self->answer.seq;
    }
    return VD_OK;
}

//  Checks a subscription's arguments; VD_OK or VD_EINVAL with the reason set.
static int
s_check_sub(vd_client_t *self, const char *pattern, const vd_sub_options_t *options)
{
    if (!vdp_pattern_valid(pattern)) {
        s_set_reason(self, "not a valid pattern: segments of [a-z0-9-], '*', '>' last");
        return VD_EINVAL;
    }
    if (!options)
        return VD_OK;
    if (options->durable && !vdp_durable_valid(options->durable)) {
        s_set_reason(self, "not a valid durable name: 1 to 64 of [A-Za-z0-9._-]");
        return VD_EINVAL;
    }
    if (options->since_ms < 0 || (options->from_seq && options->since_ms)) {
        s_set_reason(self, "replay from a seq or from a time, not both (and not before 1970)");
        return VD_EINVAL;
    }
    bool history = options->durable || options->from_seq || options->since_ms;
    vd_sub_t *same = vd_subs_find(&self->subs, pattern, options->durable);
    if (history && same && !options->durable) {
        //  Its deliveries could not be told from the live subscription's (same pattern).
        s_set_reason(self, "already subscribed to this pattern: unsubscribe first to replay");
        return VD_EINVAL;
    }
    return VD_OK;
}

int
vd_client_subscribe_from(vd_client_t *self,
                         const char *pattern,
                         const vd_sub_options_t *options,
                         char *reason,
                         size_t reason_size,
                         int timeout_ms)
{
    if (reason && reason_size > 0)
        reason[0] = '\0';
    if (!self || !pattern || timeout_ms < -1)
        return VD_EINVAL;
    self->reason[0] = '\0';
    int rc = s_usable(self);
    if (rc == VD_OK)
        rc = s_check_sub(self, pattern, options);
    if (rc == VD_OK) {
        s_request_t request = { .op = VDP_OP_SUB, .pattern = pattern };
        if (options) {
            request.durable = options->durable;
            request.from_seq = options->from_seq;
            request.since = options->since_ms;
        }
        rc = s_subscribe(self, &request, timeout_ms);
    }
    if (rc != VD_OK && reason && reason_size > 0)
        snprintf(reason, reason_size, "%s", self->reason[0] ? self->reason : vd_strerror(rc));
    return rc;
}

int
vd_client_subscribe(
    vd_client_t *self, const char *pattern, char *reason, size_t reason_size, int timeout_ms)
{
    return vd_client_subscribe_from(self, pattern, NULL, reason, reason_size, timeout_ms);
}

int
vd_client_unsubscribe(vd_client_t *self, const char *pattern, int timeout_ms)
{
    if (!self || !pattern || timeout_ms < -1)
        return VD_EINVAL;
    self->reason[0] = '\0';
    if (!vd_subs_find(&self->subs, pattern, NULL))
        return VD_ENOTFOUND;
    int rc = s_usable(self);
    if (rc == VD_OK)
        rc = s_request(self, (s_request_t){ .op = VDP_OP_UNSUB, .pattern = pattern }, timeout_ms);
    if (rc == VD_OK || rc == VD_ENOTFOUND) {
        //  Found again: a reconnect during the wait may have dropped or moved it.
        vd_sub_t *sub = vd_subs_find(&self->subs, pattern, NULL);
        if (sub)
            vd_subs_remove(&self->subs, sub);
    }
    return rc;
}

//  Queues an ack of durable stream `durable` up to `seq`.
static int
s_ack(vd_client_t *self, const char *durable, uint64_t seq)
{
    if (self->state != S_READY)
        return VD_OK; // the new session redelivers it, and it is acknowledged again then
    if (!vdp_writer_room(&self->out, VDP_MAX_DURABLE + 64) && s_flush(self) != VD_OK)
        return VD_ECONN;
    return vdp_writer_ack(&self->out, 0, durable, seq) == VD_OK ? VD_OK : VD_ENOMEM;
}

int
vd_client_ack(vd_client_t *self, const vd_envelope_t *delivery)
{
    if (!self || !delivery || !delivery->durable[0] || delivery->seq == 0)
        return VD_EINVAL;
    int rc = s_usable(self);
    if (rc != VD_OK)
        return rc;
    vd_subs_acked(&self->subs, delivery->durable, delivery->seq);
    return s_ack(self, delivery->durable, delivery->seq);
}

//  One delivery taken off the queue: credit for another goes back in batches.
static void
s_consumed(vd_client_t *self)
{
    if (++self->consumed < VD_CREDIT_REFILL || self->state != S_READY)
        return;
    if (vdp_writer_credit(&self->out, self->consumed) == VD_OK) {
        self->consumed = 0;
        s_flush(self); // at once: the broker may be holding deliveries back for it
    }
}

int
vd_client_recv(vd_client_t *self, vd_envelope_t **env_p, int timeout_ms)
{
    if (!self || !env_p || timeout_ms < -1)
        return VD_EINVAL;
    *env_p = NULL;
    int64_t deadline = s_deadline(timeout_ms);
    for (bool waited = false;; waited = true) {
        //  A malformed deliver (or no memory to decode one) is counted in `dropped` and
        //  skipped: the next one may be fine.
        while (self->deliveries.count > 0) {
            int rc = s_delivery_take(self, env_p);
            s_consumed(self);
            if (rc != VD_OK) {
                self->dropped++;
                continue;
            }
            vdp_envelope_t *env = *env_p;
            if (vd_subs_accept(&self->subs, env->subscription, env->durable, env->seq))
                return VD_OK;
            //  A redelivery of what the application has had; if it had acknowledged it, the
            //  ack was lost with the broker: say it again, or the cursor stays behind.
            if (vd_subs_was_acked(&self->subs, env->durable, env->seq))
                s_ack(self, env->durable, env->seq);
            vd_envelope_destroy(env_p);
            self->redelivered++;
        }
        if (waited && deadline >= 0 && s_now() >= deadline)
            return VD_ETIMEOUT;
        int rc = s_usable(self);
        if (rc == VD_OK)
            rc = s_wait(self, s_timeout_left(deadline), s_until_delivery_queued, NULL);
        if (rc != VD_OK)
            return rc;
    }
}

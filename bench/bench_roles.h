/*  bench_roles: what runs inside each forked process of vedetta-bench.

    Four paths carry messages from one publisher to one subscriber:
      vedettad        libvedetta -> vedettad (ROUTER, ZAP, ACL, TLP) -> libvedetta, CURVE on both
                      hops, no store: live delivery
      vedettad-store  the same, with vedettad's store on (sync full): every message committed
                      and fsynced before its receipt and its delivery
      zmq-curve       libzmq PUB -> SUB, CURVE, no broker
      fwd-curve       libzmq PUB -> XSUB | zmq_proxy | XPUB -> SUB, CURVE on both hops, no
                      auth/ACL/store
    Two more carry them from one publisher to N subscribers, each its own process:
      vedettad-fanout   vedettad without a store, plain subscriptions: live 1->N
      vedettad-durable  vedettad with its store (sync full), each subscriber on a durable
                        subscription of its own name, acknowledging every `ack_every` deliveries
    One more publishes with nobody listening, then reads back:
      vedettad-offline  vedettad with its store (sync full): a durable subscriber makes its
                        cursor and leaves (LEAVE), the publisher publishes, then the subscriber
                        comes back on the same name and reads it all from the store (READBACK)
    One more measures a Comune's latency while another Comune floods the broker:
      vedettad-flood    vedettad with its store (sync full) and the Comuni's shipped rate limits:
                        the victim (a second Comune) publishes latency samples, alone, then while
                        the flooder (the bench's Comune, a second publisher process) publishes
                        without pause (FLOOD) until the coordinator says STOP
    The roles do the same on every vedettad path; only vedettad's configuration, the number of
    publishers and subscribers and their subscriptions differ.
    Each role is a bench_child_fn: it sets up, sends READY, then obeys control messages until
    QUIT (bench_proc.h). Every wait is bounded by the phase deadline; a role that gives up sends
    FAIL with the reason and exits non-zero.

    Every message is `size` bytes of text: a kind letter ('P' probe, 'D' throughput data, 'L'
    latency sample), 16 hex digits of sequence number, 16 hex digits of CLOCK_MONOTONIC send time
    in ns, then 'x' padding. On the vedettad path this is the envelope's body.

    DONE results (bench_ctl_t.v[]):
      publisher  GO       [START] first send, [END] last send or receipt, [SENT], [ACCEPTED]
                          receipts, [REJECTED] receipts (vedettad; reason in text), [DUPLICATE],
                          [DROPPED] receipts libvedetta dropped (vd_client_dropped()),
                          [RESENT] publishes sent again after an ESESSION rejection
      publisher  LATENCY  the same counters, of this phase's receipts; [SENT] = samples + warm-up
      publisher  FLOOD    as GO, but [REJECTED] counts the rejections other than ERATE, and
                          [REFUSED] the ERATE ones; rc VD_OK when STOP ended the flood,
                          VD_ETIMEOUT at the phase deadline, VD_ELIMIT when the count ran out
                          first
      subscriber GO       [RECEIVED] distinct data messages, [FIRST], [LAST] arrival times,
                          [DUPLICATES], [REORDERED] arrivals below the highest seen, [DROPPED]
                          deliveries libvedetta dropped (vd_client_dropped()), [ACKS] acks sent
                          (durable), [REDELIVERED] (vd_client_redelivered())
      subscriber LATENCY  [SAMPLES], [P50], [P99], [MAX], [MIN] one-way delays in ns
      subscriber LEAVE    nothing: the client is closed, its acknowledgements sent
      subscriber READBACK as GO, but [FIRST] is when it began to reconnect, and [REORDERED]
                          counts deliveries whose broker seq was not above the one before  */

#ifndef BENCH_ROLES_H_INCLUDED
#define BENCH_ROLES_H_INCLUDED

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench_proc.h"
#include "vdp_limits.h"

typedef enum {
    BENCH_PATH_VEDETTAD = 0, // vedettad, live delivery (no store)
    BENCH_PATH_STORE = 1,    // vedettad with its durable store
    BENCH_PATH_ZMQ = 2,
    BENCH_PATH_FWD = 3,
    BENCH_PATH_FANOUT = 4,  // vedettad, live, one publisher to N plain subscriptions
    BENCH_PATH_DURABLE = 5, // vedettad with its store, one publisher to N durable subscriptions
    BENCH_PATH_OFFLINE = 6, // vedettad with its store, the durable subscriber away, then back
    BENCH_PATH_FLOOD = 7,   // vedettad with its store and the shipped limits, one Comune floods
    BENCH_PATH_COUNT = 8
} bench_path_t;

//  Indexes of bench_ctl_t.v[] in DONE messages (see above).
enum {
    BENCH_PUB_START = 0,
    BENCH_PUB_END,
    BENCH_PUB_SENT,
    BENCH_PUB_ACCEPTED,
    BENCH_PUB_REJECTED,
    BENCH_PUB_DUPLICATE,
    BENCH_PUB_DROPPED,
    BENCH_PUB_RESENT,
    BENCH_PUB_REFUSED // FLOOD only
};
enum {
    BENCH_SUB_RECEIVED = 0,
    BENCH_SUB_FIRST,
    BENCH_SUB_LAST,
    BENCH_SUB_DUPLICATES,
    BENCH_SUB_REORDERED,
    BENCH_SUB_DROPPED,
    BENCH_SUB_ACKS,
    BENCH_SUB_REDELIVERED
};
enum { BENCH_LAT_SAMPLES = 0, BENCH_LAT_P50, BENCH_LAT_P99, BENCH_LAT_MAX, BENCH_LAT_MIN };

//  The smallest message the format above fits in.
#define BENCH_MIN_SIZE 40u
//  Send and receive high-water marks of the raw paths. Together with ZMQ_XPUB_NODROP on PUB and
//  XPUB (which turns a full queue into back-pressure instead of a silent drop), no message is
//  lost while the subscriber catches up; the bench counts them to prove it.
#define BENCH_HWM 100000
//  Most subscriber processes of one fan-out run.
#define BENCH_MAX_SUBS 16

typedef struct {
    bench_path_t path;
    size_t size;                             // message bytes (raw paths) or body bytes (vedettad)
    size_t window;                           // vedettad publisher: most publishes without a receipt
    size_t batch;                            // vedettad publisher: publishes queued per flush
    int64_t setup_ns;                        // deadline of connecting and joining
    int64_t phase_ns;                        // deadline of one measured phase
    int64_t idle_ns;                         // subscriber: silence after DRAIN that ends a phase
    int ack_fd;                              // latency: each subscriber writes a byte per sample,
                                             // the publisher reads them before sending the next
    size_t subscribers;                      // publisher: bytes to read per sample (one each)
    size_t ack_every;                        // durable subscriber: deliveries per vd_client_ack()
    char endpoint[256];                      // where to connect; "" for the zmq-curve publisher
    char server_public[VDP_KEY_Z85_LEN + 1]; // raw paths: the binding side's CURVE key pair
    char server_secret[VDP_KEY_Z85_LEN + 1];
    char client_public[VDP_KEY_Z85_LEN + 1]; // raw paths: the connecting side's key pair
    char client_secret[VDP_KEY_Z85_LEN + 1];
    char broker_public[VDP_KEY_Z85_LEN + 1]; // vedettad: the broker's CURVE public key
    char secret_path[PATH_MAX];              // vedettad: this role's agency secret file
    char topic[VDP_MAX_TOPIC + 1];           // vedettad: publisher's topic / subscriber's pattern
    char durable[VDP_MAX_DURABLE + 1];       // subscriber: its durable subscription's name, or ""
} bench_role_cfg_t;

//  "vedettad", "vedettad-store", "zmq-curve", "fwd-curve", "vedettad-fanout",
//  "vedettad-durable", "vedettad-offline" or "vedettad-flood".
const char *bench_path_name(bench_path_t path);

//  True for the paths through vedettad (the clients are libvedetta's).
bool bench_path_is_vedettad(bench_path_t path);

//  True for the paths whose vedettad keeps a store (sync full).
bool bench_path_has_store(bench_path_t path);

//  True for the paths with N subscribers.
bool bench_path_is_fanout(bench_path_t path);

//  Role bodies for bench_proc_fork(); `arg` is a bench_role_cfg_t (the forwarder uses only the
//  server key pair and the timeouts). The forwarder's READY text is "<xsub-endpoint>
//  <xpub-endpoint>"; the zmq-curve publisher's is the endpoint it bound. The flooder is a
//  publisher (its cfg has no ack pipe) that is sent FLOOD.
int bench_publisher_main(int ctl, void *arg);
int bench_subscriber_main(int ctl, void *arg);
int bench_forwarder_main(int ctl, void *arg);

#endif

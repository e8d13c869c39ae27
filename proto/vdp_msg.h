/*  vdp_msg: the commands of the vedetta protocol and the frames that carry them (PROTOCOL.md §3).

    A frame is the single part of one ZeroMQ message: one or more msgpack maps back to back, each
    one command, at most VDP_MAX_BATCH of them and VDP_MAX_FRAME bytes. Batching is how vedetta
    pays CurveZMQ's per-message cost once for many commands; a sender batches only what is already
    queued, it never waits to fill a frame.

    Reading: vdp_reader_* walks a frame command by command without allocating, decoding each one
    or stepping over it to decode it later. A command whose msgpack structure is broken ends the
    frame (nothing after it can be located); a command that is well-formed msgpack but
    semantically wrong (unknown op, missing field) is reported and the reader moves on to the
    next one.
    Writing: vdp_writer_* appends commands to a growing buffer; the broker keeps one per session
    and sends it when its poll round ends.  */

#ifndef VDP_MSG_H_INCLUDED
#define VDP_MSG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdp_envelope.h"
#include "vdp_limits.h"

typedef enum {
    VDP_OP_NONE = 0,
    VDP_OP_HELLO,   // client -> broker: open a session
    VDP_OP_WELCOME, // broker -> client: session open, who you are
    VDP_OP_PUB,     // client -> broker: publish an envelope
    VDP_OP_RECEIPT, // broker -> client: answer to one pub
    VDP_OP_SUB,     // client -> broker: subscribe to a pattern
    VDP_OP_UNSUB,   // client -> broker: drop a subscription
    VDP_OP_DELIVER, // broker -> client: one message for a subscription
    VDP_OP_PING,    // either way: liveness
    VDP_OP_PONG,    // answer to ping
    VDP_OP_OK,      // broker -> client: sub/unsub done
    VDP_OP_ERROR,   // broker -> client: a command (or frame) failed
    VDP_OP_BYE,     // client -> broker: closing the session
    VDP_OP_ACK,     // client -> broker: a durable subscription processed up to a seq
    VDP_OP_CREDIT   // client -> broker: room for more deliveries
} vdp_op_t;

//  Wire name of an op ("hello"...), NULL for NONE/out of range; and back (VDP_OP_NONE if unknown).
const char *vdp_op_name(vdp_op_t op);
vdp_op_t vdp_op_from_name(const char *name);

typedef enum {
    VDP_RECEIPT_NONE = 0,
    VDP_RECEIPT_ACCEPTED = 1,
    VDP_RECEIPT_DUPLICATE = 2,
    VDP_RECEIPT_REJECTED = 3
} vdp_receipt_status_t; // values equal vd_receipt_status_t

const char *vdp_receipt_status_name(vdp_receipt_status_t s);
vdp_receipt_status_t vdp_receipt_status_from_name(const char *s);

/*  One decoded command. Only the fields of its op are meaningful (see PROTOCOL.md §5); strings
    are NUL-terminated copies. For PUB and DELIVER the envelope is decoded into the caller's
    vdp_envelope_t passed to vdp_reader_next(), which borrows from the frame.  */
typedef struct {
    vdp_op_t op;
    uint64_t ref; // hello, sub, unsub, ping, ack / welcome, ok, error, pong
    //  hello
    uint32_t version;              // hello, welcome
    char agent[VDP_MAX_SHORT + 1]; // hello: client software
    uint32_t heartbeat_ms;         // hello: asked; welcome: granted
    uint32_t credit;               // hello: first grant (0: absent); welcome: granted; credit
    //  welcome
    char broker[VDP_MAX_ORG + 1]; // the broker's org id
    char org[VDP_MAX_ORG + 1];    // the client's org, from its key
    char role[VDP_MAX_SHORT + 1];
    char jur[VDP_MAX_JUR][VDP_MAX_SEGMENT + 1];
    size_t jur_count;
    char inbox[VDP_MAX_JUR][VDP_MAX_TOPIC + 1];
    size_t inbox_count;
    uint32_t max_body;
    uint32_t max_frame;
    uint32_t max_batch;
    //  sub, unsub, deliver
    char pattern[VDP_MAX_TOPIC + 1];
    char durable[VDP_MAX_DURABLE + 1]; // sub, unsub, deliver (optional); ack
    uint64_t from_seq;                 // sub: replay from this seq on (0: absent)
    int64_t since;                     // sub: replay from this time on, UTC ms (0: absent)
    //  receipt
    char id[VDP_ID_LEN + 1];
    vdp_receipt_status_t status;
    uint64_t seq; // receipt, deliver, ack; ok to a sub: the stream starts after it
    int64_t at;   // receipt, deliver: accepted_at
    //  receipt (rejected), error
    int32_t code; // a vd_err_t
    char reason[VDP_MAX_REASON + 1];
    uint32_t retry_after_ms; // receipt (rejected, ERATE): when to try again; 0: absent
} vdp_cmd_t;

//  Zeroes a command.
void vdp_cmd_reset(vdp_cmd_t *self);

typedef struct {
    const uint8_t *data; // borrowed frame
    size_t size;
    size_t pos;
    size_t count; // commands read so far
    bool broken;  // the msgpack structure is broken: no further command
} vdp_reader_t;

//  Starts reading a frame of `size` bytes. Borrows `data`.
void vdp_reader_init(vdp_reader_t *self, const uint8_t *data, size_t size);

/*  Decodes the next command into `cmd` (and, for PUB/DELIVER, its envelope into `env`, reset
    first; body and raw borrow from the frame). `env` must not be NULL when the frame may hold
    a pub or a deliver; for a deliver the reader also sets env->seq, env->accepted_at and
    env->subscription.
    Returns VD_OK: a command was read;
    VD_ENOTFOUND: the frame is finished (no bytes left, or broken earlier);
    with self->broken set (the rest of the frame is dropped): VD_EPROTO (broken msgpack
    structure: truncated, an invalid byte, nesting deeper than VDP_MAX_DEPTH) or VD_ELIMIT (a
    map over VDP_MAX_MAP_KEYS, more than VDP_MAX_BATCH commands, a frame over VDP_MAX_FRAME);
    or, with the reader still usable for the next command: VD_EPROTO (not a map, unknown op,
    missing or repeated key, wrong type, invalid value), VD_ELIMIT (a string or list over its
    cap), or for PUB/DELIVER whatever vdp_envelope_decode() returned (VD_EPROTO, VD_ELIMIT,
    VD_EFIELD) with env->id and env->sender holding the envelope's id and sender if readable.
    After such an error cmd->op is the command's op if it could be read (VDP_OP_NONE if not)
    and cmd->ref its ref if it had a readable one, so that the error can be answered.
    `reason` (if not NULL) explains any error.  */
int vdp_reader_next(
    vdp_reader_t *self, vdp_cmd_t *cmd, vdp_envelope_t *env, char *reason, size_t reason_size);

/*  The op of the command at the cursor, read without moving it: VDP_OP_NONE when the frame is
    finished or broken, or the command has no op we know (vdp_reader_next() then says why).
    Costs a look at the command's first key, normally "op".  */
vdp_op_t vdp_reader_peek(const vdp_reader_t *self);

/*  Steps over the command at the cursor without decoding it: only its msgpack structure and the
    frame's caps are checked, as vdp_reader_next() checks them, so both find the same end. The
    command's bytes are data[pos before the call, pos after). For a reader that decodes some
    commands later, by running vdp_reader_next() over exactly those bytes (which then reports
    whatever is wrong inside them).
    Returns VD_OK; VD_ENOTFOUND (the frame is finished); or, with self->broken set, the
    VD_EPROTO / VD_ELIMIT of a broken frame as vdp_reader_next() returns them.  */
int vdp_reader_skip(vdp_reader_t *self, char *reason, size_t reason_size);

typedef struct {
    uint8_t *data; // owned, grows
    size_t size;   // bytes used
    size_t capacity;
    size_t count; // commands written
    bool failed;  // an allocation failed: the frame is unusable until reset
} vdp_writer_t;

void vdp_writer_init(vdp_writer_t *self);
//  Forgets the content, keeps the buffer.
void vdp_writer_reset(vdp_writer_t *self);
//  Frees the buffer.
void vdp_writer_release(vdp_writer_t *self);

/*  Appenders, one per command. Each returns VD_OK or VD_ENOMEM (then self->failed is set).
    Keys are written in a fixed order, "op" first. Free text (agent, reason) longer than its cap
    is cut at a UTF-8 boundary; other strings are written as given (the reader on the other side
    enforces the caps). Error and rejected-receipt commands carry `err`, the code's name.
    Callers flush a writer before it would pass VDP_MAX_BATCH commands or VDP_BATCH_BYTES
    (vdp_writer_room() says whether `bytes` more fit: into an empty writer, anything up to
    VDP_MAX_FRAME fits, so one large command travels alone).  */
bool vdp_writer_room(const vdp_writer_t *self, size_t bytes);
//  hello with v = VDP_VERSION; `credit` 0 leaves it out (the broker grants VDP_DEFAULT_CREDIT).
int vdp_writer_hello(
    vdp_writer_t *self, uint64_t ref, const char *agent, uint32_t heartbeat_ms, uint32_t credit);
int vdp_writer_welcome(vdp_writer_t *self, const vdp_cmd_t *welcome); // all welcome fields
//  Publishes an envelope: env->raw if set, else encodes env.
int vdp_writer_pub(vdp_writer_t *self, const vdp_envelope_t *env);
//  accepted/duplicate: id, status, seq, at; rejected: id, status, code, err, reason, and
//  retry_after if `retry_after_ms` is not 0.
int vdp_writer_receipt(vdp_writer_t *self,
                       const char *id,
                       vdp_receipt_status_t status,
                       uint64_t seq,
                       int64_t at,
                       int32_t code,
                       const char *reason,
                       uint32_t retry_after_ms);
//  A live subscription: messages accepted from now on.
int vdp_writer_sub(vdp_writer_t *self, uint64_t ref, const char *pattern);
/*  A subscription with history: `durable` (NULL: none) names a subscription whose cursor the
    broker keeps; `from_seq` (0: absent) or `since` (UTC ms, 0: absent) asks for replay.  */
int vdp_writer_sub_from(vdp_writer_t *self,
                        uint64_t ref,
                        const char *pattern,
                        const char *durable,
                        uint64_t from_seq,
                        int64_t since);
//  `durable` NULL: the pattern of the session's live stream; else of that durable subscription.
int vdp_writer_unsub(vdp_writer_t *self, uint64_t ref, const char *pattern, const char *durable);
//  Delivers a stored/relayed envelope given as its exact map bytes `raw`; `durable` (NULL:
//  none) names the durable subscription it is sent on.
int vdp_writer_deliver(vdp_writer_t *self,
                       const char *pattern,
                       const char *durable,
                       uint64_t seq,
                       int64_t at,
                       const uint8_t *raw,
                       size_t raw_len);
//  Acknowledges every delivery of durable subscription `durable` up to `seq`.
int vdp_writer_ack(vdp_writer_t *self, uint64_t ref, const char *durable, uint64_t seq);
//  Grants `credit` more deliveries.
int vdp_writer_credit(vdp_writer_t *self, uint32_t credit);
int vdp_writer_ping(vdp_writer_t *self, uint64_t ref);
int vdp_writer_pong(vdp_writer_t *self, uint64_t ref);
int vdp_writer_ok(vdp_writer_t *self, uint64_t ref);
//  ok to a sub: the subscription's stream starts after `seq`.
int vdp_writer_ok_seq(vdp_writer_t *self, uint64_t ref, uint64_t seq);
int vdp_writer_error(vdp_writer_t *self, uint64_t ref, int32_t code, const char *reason);
int vdp_writer_bye(vdp_writer_t *self);

#endif

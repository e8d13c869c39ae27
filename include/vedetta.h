/*  vedetta.h: the public API of libvedetta, the client library of the vedetta broker.

    A client connects to one broker over CurveZMQ with its agency's secret key file, publishes
    envelopes (each answered by a receipt), subscribes to topic patterns and receives deliveries.

    Threads: a vd_client_t belongs to one thread at a time; separate clients are independent.
    Errors: every function that can fail returns a vd_err_t (0 success, negative error) or NULL;
    vd_strerror() names any code. libvedetta never prints and never aborts its host process.
    Ownership: results the caller must free say so; `const` results are borrowed and say for how
    long. Wire format: proto/PROTOCOL.md.  */

#ifndef VEDETTA_H_INCLUDED
#define VEDETTA_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define VD_EXPORT    __attribute__((visibility("default")))
#define VD_NODISCARD __attribute__((warn_unused_result))
#else
#define VD_EXPORT
#define VD_NODISCARD
#endif

#define VD_VERSION_MAJOR 0
#define VD_VERSION_MINOR 1
#define VD_VERSION_PATCH 0

/*  Error codes. They travel on the wire (number and name), so: append only, never renumber.
    X(NAME, value, meaning)  */
#define VD_ERRORS(X)                                                                               \
    X(OK, 0, "success")                                                                            \
    X(EINVAL, -1, "invalid argument")                                                              \
    X(ENOMEM, -2, "out of memory")                                                                 \
    X(EPROTO, -3, "malformed frame or command")                                                    \
    X(ELIMIT, -4, "over a protocol limit")                                                         \
    X(EVERSION, -5, "unsupported protocol version")                                                \
    X(ESESSION, -6, "no session: send hello first")                                                \
    X(EAUTH, -7, "key unknown or revoked")                                                         \
    X(ESENDER, -8, "sender does not match the authenticated key")                                  \
    X(EFIELD, -9, "envelope field missing or invalid")                                             \
    X(EACCES, -10, "denied by policy")                                                             \
    X(ETLP, -11, "denied by TLP rules")                                                            \
    X(ETIMEOUT, -12, "timed out")                                                                  \
    X(ECONN, -13, "not connected")                                                                 \
    X(EIO, -14, "input/output error")                                                              \
    X(ECONFIG, -15, "invalid configuration")                                                       \
    X(ENOTFOUND, -16, "not found")                                                                 \
    X(ESIG, -17, "signature missing or invalid")                                                   \
    X(ESTORE, -18, "store failure")                                                                \
    X(ERATE, -19, "rate limit exceeded")                                                           \
    X(EINTERNAL, -20, "broker internal error")

typedef enum {
#define VD_ERR_ENUM_(name, value, text) VD_##name = value,
    VD_ERRORS(VD_ERR_ENUM_)
#undef VD_ERR_ENUM_
} vd_err_t;

//  Meaning of an error code, e.g. "denied by policy". Never NULL; static storage.
VD_EXPORT const char *vd_strerror(int code);

//  Short name of an error code without the VD_ prefix, e.g. "EACCES" ("EUNKNOWN" if unknown).
VD_EXPORT const char *vd_strerror_name(int code);

//  The code whose name is `name` ("EACCES"), or VD_EINVAL if none.
VD_EXPORT int vd_strerror_code(const char *name);

/*  -------------------------------------------------------------------------------------------
    Envelope: one message, as published or as delivered. Fields are named as on the wire
    (proto/PROTOCOL.md §4): string fields "id", "sender", "topic", "kind", "status", "tlp",
    "category", "severity", "ctype", "incident", "stage", "urgency", "certainty", "lang";
    time fields (ms since the Unix epoch, UTC) "sent", "aware_at", "expires", "ack_by".  */

typedef struct vdp_envelope_t vd_envelope_t;

//  A new empty envelope. Caller owns it; free with vd_envelope_destroy(). NULL if out of memory.
VD_EXPORT vd_envelope_t *vd_envelope_new(void);

//  Frees the envelope and sets *self_p to NULL. Accepts NULL and *self_p == NULL.
VD_EXPORT void vd_envelope_destroy(vd_envelope_t **self_p);

/*  Sets a string field (see above); "to" appends one recipient org id (a repeated one is kept
    once); "refs" appends one reference written "sender/id". Enum fields take their wire names
    ("amber+strict", "early-warning"). The value is checked and copied; "" clears a field other
    than "to" and "refs". On error the envelope is unchanged.
    Returns VD_OK, VD_EINVAL (unknown field or invalid value), VD_ELIMIT (too long / too many),
    VD_ENOMEM.  */
VD_EXPORT VD_NODISCARD int
vd_envelope_set(vd_envelope_t *self, const char *field, const char *value);

//  Sets a time field to `ms` (UTC ms; 0 clears it). Returns VD_OK, VD_EINVAL (unknown field,
//  ms < 0), VD_ENOMEM.
VD_EXPORT VD_NODISCARD int vd_envelope_set_time(vd_envelope_t *self, const char *field, int64_t ms);

//  Copies `size` bytes as the body. Returns VD_OK, VD_ENOMEM, or VD_ELIMIT (over the body cap).
VD_EXPORT VD_NODISCARD int vd_envelope_set_body(vd_envelope_t *self, const void *data, size_t size);

//  A string field, or NULL when absent or unknown. Borrowed while `self` lives unchanged.
VD_EXPORT const char *vd_envelope_get(const vd_envelope_t *self, const char *field);

//  A time field in UTC ms, or 0 when absent; "accepted_at" reads the broker's stamp too.
VD_EXPORT int64_t vd_envelope_get_time(const vd_envelope_t *self, const char *field);

//  The body and its size. Borrowed while `self` lives unchanged.
VD_EXPORT const void *vd_envelope_body(const vd_envelope_t *self, size_t *size);

//  Number of recipients in "to", and the i-th one (NULL past the end).
VD_EXPORT size_t vd_envelope_to_count(const vd_envelope_t *self);
VD_EXPORT const char *vd_envelope_to(const vd_envelope_t *self, size_t index);

//  Number of references, and the i-th one's sender and id (VD_EINVAL past the end).
VD_EXPORT size_t vd_envelope_refs_count(const vd_envelope_t *self);
VD_EXPORT int
vd_envelope_ref(const vd_envelope_t *self, size_t index, const char **sender, const char **id);

/*  Fields stamped by the broker on delivered envelopes (0 on envelopes being published):
    the broker's sequence number, when it accepted the message (UTC ms), and the subscription
    pattern that matched it (NULL if none).  */
VD_EXPORT uint64_t vd_envelope_seq(const vd_envelope_t *self);
VD_EXPORT int64_t vd_envelope_accepted_at(const vd_envelope_t *self);
VD_EXPORT const char *vd_envelope_subscription(const vd_envelope_t *self);
//  The durable subscription a delivery came on, NULL if none.
VD_EXPORT const char *vd_envelope_durable(const vd_envelope_t *self);

/*  The envelope as one line of JSON: one object holding every field present, under its wire
    name; enums by their wire names; times as integers (UTC ms), "sent" and "accepted_at" also as
    ISO-8601 UTC text in "sent_iso" and "accepted_at_iso"; "to" and "via" as arrays of org ids,
    "refs" as an array of {"sender","id"}; "seq" and "subscription" on deliveries; the body as
    "body" if it is valid UTF-8, else base64 in "body_b64". Caller owns the result; free with
    free(). NULL if out of memory.  */
VD_EXPORT char *vd_envelope_to_json(const vd_envelope_t *self);

/*  -------------------------------------------------------------------------------------------
    Keyring: checking who signed an envelope. Every published envelope carries its sender's
    Ed25519 signature ("sig", proto/PROTOCOL.md §4.6), which proves its author to any recipient,
    beyond the one hop that CURVE protects. A keyring holds the public agency files of the
    parties one trusts: the same files the broker's registry holds (docs/keys.md).
    Threads: verifying updates the keyring (each key remembers the last signed tree it
    checked), so a keyring belongs to one thread at a time; give each thread its own, or lock.  */

typedef struct vd_keyring_t vd_keyring_t;

/*  Loads the public agency files of `dir` as the broker loads its registry: every "*.agency"
    file, in name order, other and hidden ("." first) files ignored; every field validated; a
    CURVE key in two files, or two keys of one org that disagree on name, role or
    jurisdictions, fail the load. Revoked keys are loaded too, and reported as such. An empty
    directory gives an empty keyring. Loading reads and parses each file once and sorts the
    keys (n log n); later changes to the directory are not seen (load it again).
    Caller owns the result; free with vd_keyring_destroy(). NULL on error, with `reason` (may
    be NULL) naming the directory or the file and what is wrong with it.  */
VD_EXPORT vd_keyring_t *vd_keyring_load(const char *dir, char *reason, size_t reason_size);

//  Frees the keyring and sets *self_p to NULL. Accepts NULL and *self_p == NULL.
VD_EXPORT void vd_keyring_destroy(vd_keyring_t **self_p);

//  The key that signed an envelope, as its agency file describes it.
typedef struct {
    char org[65];   // the sender's org id, "comune:i726"
    char label[33]; // the key's label: which system of the org signed, "siem"
    bool revoked;   // the key is revoked in the keyring's files: it did sign, but is no longer
                    // in force (it may have been stolen); the signature carries no trusted time
} vd_signer_t;

/*  Checks the signature of `env` (a delivery, or any envelope with "sender" and "sig") against
    the keys of its sender's org in `keys`: the key named by the signature's hint must have
    signed it, and nothing the signature covers may have changed since: every envelope field
    but "sig", and the body; not the broker's stamps (seq, accepted_at, via, subscription),
    which are not the sender's. A key of another org never verifies it, whatever its files say.
    On VD_OK `signer` (may be NULL) names the key; `reason` (may be NULL) says why otherwise.
    Returns VD_OK (signed by that key, which may now be revoked: signer->revoked);
    VD_ESIG (no signature, a malformed one, or one that does not verify: the envelope was
    changed, or the key did not sign it); VD_ENOTFOUND (no key of the sender's org with the
    signature's hint in the keyring: a party, or a key, one does not have the file of);
    VD_EINVAL (NULL keyring or envelope, or no sender); VD_ENOMEM.
    Cost: a BLAKE2b hash of the envelope and its body, up to six more of the signature's path,
    a binary search in the keyring, and one Ed25519 verification (about 100 µs) unless it is the
    same key's same tree as the last one checked: a publisher signs the envelopes it sends
    together as one tree, so a stream of them costs one verification per tree. Envelopes of
    different trees of one key interleaved (two processes publishing with one key) each cost
    one.  */
VD_EXPORT VD_NODISCARD int vd_envelope_verify(vd_keyring_t *keys,
                                              const vd_envelope_t *env,
                                              vd_signer_t *signer,
                                              char *reason,
                                              size_t reason_size);

/*  -------------------------------------------------------------------------------------------
    Receipts: the broker's answer to one publish.  */

typedef enum {
    VD_RECEIPT_ACCEPTED = 1,  // stored and routed; seq is its sequence number
    VD_RECEIPT_DUPLICATE = 2, // (sender, id) was accepted before; seq is the first one's
    VD_RECEIPT_REJECTED = 3   // not accepted; code and reason say why
} vd_receipt_status_t;

typedef struct {
    char id[40];                // the envelope id this receipt answers
    vd_receipt_status_t status; //
    uint64_t seq;               // accepted/duplicate: the message's sequence number
    int64_t accepted_at;        // accepted/duplicate: UTC ms
    int code;                   // rejected: a vd_err_t
    char reason[256];           // rejected: human-readable reason from the broker
    uint32_t retry_after_ms;    // rejected with VD_ERATE: try again after this long; else 0
} vd_receipt_t;

//  "accepted", "duplicate" or "rejected" (static storage).
VD_EXPORT const char *vd_receipt_status_name(vd_receipt_status_t status);

/*  -------------------------------------------------------------------------------------------
    Client.  */

typedef struct vd_client_t vd_client_t;

//  A new, unconnected client. Caller owns it; free with vd_client_destroy(). NULL on no memory.
VD_EXPORT vd_client_t *vd_client_new(void);

//  Disconnects (saying bye), wipes key material, frees, sets *self_p to NULL. Accepts NULL.
VD_EXPORT void vd_client_destroy(vd_client_t **self_p);

/*  Heartbeat interval in ms (default 2000, minimum 100): the client pings an idle broker at this
    interval and treats 3 missed intervals as a lost connection, which it re-establishes (new
    handshake, hello, and every subscription restored). Call before vd_client_connect().  */
VD_EXPORT int vd_client_set_heartbeat(vd_client_t *self, int interval_ms);

/*  Connects to `endpoint` (e.g. "tcp://127.0.0.1:7447"), authenticating the broker by its
    public key (40-char Z85) and itself with the agency secret file at `secret_path` (refused if
    group or others may read it). Performs the handshake and the hello/welcome exchange, waiting
    at most `timeout_ms`.
    Returns VD_OK; VD_EINVAL (bad argument or key file), VD_EAUTH (the broker refused the key:
    its ZAP handler answered 400, or it answered hello with EAUTH), VD_EVERSION, VD_ETIMEOUT (no
    welcome in time: also what a wrong broker key looks like), VD_ENOMEM.
    vd_client_reason() says what was wrong. Connecting again first closes the previous
    connection and forgets its subscriptions; queued deliveries and receipts stay, and
    asynchronous publishes still waiting for their receipt are sent again once the new session
    is open, signed again if the key is another one (a rotated key of the same org; under a key
    of another org, the broker rejects them with VD_ESENDER).  */
VD_EXPORT VD_NODISCARD int vd_client_connect(vd_client_t *self,
                                             const char *endpoint,
                                             const char *broker_public_key,
                                             const char *secret_path,
                                             int timeout_ms);

//  This client's org id as the broker authenticated it, e.g. "comune:i726"; NULL before the
//  welcome. Borrowed while `self` lives.
VD_EXPORT const char *vd_client_org(const vd_client_t *self);

//  The i-th inbox topic of this org (where directed messages arrive), NULL past the end.
VD_EXPORT const char *vd_client_inbox(const vd_client_t *self, size_t index);

/*  Why the last call on `self` failed, in words: the broker's reason for a refused command, or
    what was wrong with a key file or an envelope field. "" when there is nothing to say.
    Never NULL; borrowed until the next call on `self`.  */
VD_EXPORT const char *vd_client_reason(const vd_client_t *self);

/*  Deliveries and receipts dropped because they arrived while their queue was full (the
    application stopped calling vd_client_recv() / vd_client_receipt()) or memory ran out, and
    deliveries skipped because they could not be decoded when their turn came (a broker bug).
    The queues hold up to 16384 deliveries and 65536 receipts.  */
VD_EXPORT uint64_t vd_client_dropped(const vd_client_t *self);

/*  Publishes `env` and waits up to `timeout_ms` (-1: forever) for its receipt. Fills in "id" (a
    random UUID) and "sent" (now) when they are unset, "v", and "sender" with this client's org.
    If the session is re-established while waiting, the envelope is sent again with the same
    id (the broker answers a message it already has with "duplicate"). After a timeout it is
    not sent again by libvedetta; publishing the same envelope again is a safe retry, for the
    same reason.
    Returns VD_OK when a receipt arrived (read receipt->status: a rejection is VD_OK with
    status VD_RECEIPT_REJECTED), VD_EINVAL (a field missing or invalid: vd_client_reason()
    names it), VD_ELIMIT, VD_ETIMEOUT, VD_ECONN (not connected), VD_EAUTH (the broker refused
    the key when reconnecting), VD_ENOMEM.  */
VD_EXPORT VD_NODISCARD int
vd_client_publish(vd_client_t *self, vd_envelope_t *env, vd_receipt_t *receipt, int timeout_ms);

/*  Queues `env` for publishing without waiting (fills id/sent/sender as above). Every publish is
    signed with the key's Ed25519 key (PROTOCOL.md §4.6), many under one signature: queued
    publishes leave, signed, as soon as a tree of 64 (or 64 KiB) waits, at the next
    vd_client_flush(), vd_client_publish() or vd_client_destroy(), and at any other call that
    waits (vd_client_receipt(), vd_client_recv(), ...) once none of this session's publishes is
    waiting for its receipt. While a lost session is being reopened, publishes wait for it.
    Receipts are read with vd_client_receipt().
    Each publish gets exactly one receipt: libvedetta keeps every publish (its encoded
    envelope, same id) until its receipt arrives and, when the session is lost (a reconnect
    after heartbeat silence, or the broker forgot it), sends them all again once a new session
    is open, in their original order and ahead of newer publishes. The broker answers a message
    it already had with "duplicate" and the first seq, so a retry is harmless.
    Memory: the kept publishes are the ones in flight, bounded by the application's own window
    (how many it publishes before reading their receipts), and at most 65536. Past that the
    oldest is no longer kept: if its session is lost it is answered as it would be without
    resending, by a rejected receipt with code VD_ESESSION (publish it again), or, if it was
    lost with a rebuilt connection, by no receipt at all.
    Returns VD_OK, VD_EINVAL, VD_ELIMIT, VD_ECONN (not connected, or libzmq's queue toward the
    broker is full: nothing is kept, publish it again later), VD_EAUTH, VD_ENOMEM.  */
VD_EXPORT VD_NODISCARD int vd_client_publish_async(vd_client_t *self, vd_envelope_t *env);

//  Sends whatever is queued now, without blocking. Returns VD_OK, VD_ECONN (not connected, or
//  libzmq's queue toward the broker is full: the batch is kept for the next try), VD_ENOMEM.
VD_EXPORT int vd_client_flush(vd_client_t *self);

/*  Next receipt of an asynchronous publish, waiting up to `timeout_ms` (0: don't wait, -1:
    forever), in the order the broker answered. Keeps the connection alive while waiting, which
    is when publishes lost with a session are sent again: so every publish comes back here
    once, accepted, duplicate (a copy the broker already had: seq is the first one's) or
    rejected for a reason of its own, never with VD_ESESSION unless it was past the 65536 kept
    (see vd_client_publish_async()). Returns VD_OK, VD_ETIMEOUT, VD_ECONN, VD_EAUTH.  */
VD_EXPORT VD_NODISCARD int
vd_client_receipt(vd_client_t *self, vd_receipt_t *receipt, int timeout_ms);

/*  Subscribes to `pattern` (segments joined by '.', '*' one segment, '>' the rest) and waits
    for the broker's answer. The subscription is restored after a reconnect (unless the policy
    no longer grants it). Returns VD_OK, VD_EACCES (policy denies it), VD_EINVAL, VD_ETIMEOUT,
    VD_ECONN, VD_EAUTH, or another code the broker gave (e.g. VD_ELIMIT); on error `reason`
    (if not NULL) receives the broker's reason or the code's meaning.  */
VD_EXPORT VD_NODISCARD int vd_client_subscribe(
    vd_client_t *self, const char *pattern, char *reason, size_t reason_size, int timeout_ms);

//  History for a subscription (vd_client_subscribe_from()). Zero fields ask for nothing.
typedef struct {
    const char *durable; // a name (1-64 of [A-Za-z0-9._-]) whose cursor the broker keeps; NULL
    uint64_t from_seq;   // replay from this seq on; 0: none
    int64_t since_ms;    // replay from the first message accepted at or after this UTC ms; 0
} vd_sub_options_t;

/*  Subscribes with history (needs a broker with a store; VD_ESTORE otherwise).
    - `from_seq` or `since_ms`: every stored message from there on that the policy lets this
      key read today, in seq order, then live messages, with no gap and no duplicate.
    - `durable`: the broker keeps a cursor for (this key, name) in its store. A new name starts
      now (or at from_seq/since_ms); a known name resumes after what was acknowledged with
      vd_client_ack(), so messages published while the subscriber was away, or not yet
      acknowledged when it went, arrive (again) when it comes back, after a reconnect or a
      broker restart. One stream per name: subscribing more patterns under the same name adds
      them to it, from where the stream is at that moment (on a reconnect libvedetta subscribes
      them all again at once, so all resume from the cursor). From/since on a known name
      rewinds it.
    Delivery is at least once: after a reconnect, whatever was not acknowledged comes again.
    Within one process libvedetta hands each message of a stream to the application once, in
    seq order (it skips redeliveries of seqs it already handed over, counted by
    vd_client_redelivered()); across a restart of the application, deduplicate by id.
    The subscription is restored after a reconnect: durable from its cursor, a replay after
    the last message handed over. A pattern subscribed live cannot also be replayed on the
    same client (their deliveries could not be told apart): VD_EINVAL.
    Returns as vd_client_subscribe(), and VD_ESTORE.  */
VD_EXPORT VD_NODISCARD int vd_client_subscribe_from(vd_client_t *self,
                                                    const char *pattern,
                                                    const vd_sub_options_t *options,
                                                    char *reason,
                                                    size_t reason_size,
                                                    int timeout_ms);

/*  Acknowledges a delivery of a durable subscription: it and everything before it on that
    subscription have been processed, and will not be delivered again after a reconnect.
    Queued, leaves with the next batch; the broker writes cursors to its store a few times a
    second, so a broker crash may redeliver the last acknowledged messages. Returns VD_OK,
    VD_EINVAL (not a delivery of a durable subscription), VD_ECONN, VD_ENOMEM.  */
VD_EXPORT int vd_client_ack(vd_client_t *self, const vd_envelope_t *delivery);

//  Deliveries skipped because their stream had already handed that seq to the application.
VD_EXPORT uint64_t vd_client_redelivered(const vd_client_t *self);

//  Removes a subscription. Returns VD_OK, VD_ENOTFOUND, VD_EINVAL, VD_ETIMEOUT, VD_ECONN.
VD_EXPORT VD_NODISCARD int
vd_client_unsubscribe(vd_client_t *self, const char *pattern, int timeout_ms);

/*  Next delivered message, waiting up to `timeout_ms` (0: don't wait, -1: forever). Keeps
    the connection alive while waiting (heartbeats, reconnect). A signal does not end the wait:
    a program that must react to signals waits in short slices.
    On VD_OK *env_p is a new envelope the caller owns (free with vd_envelope_destroy()).
    Returns VD_OK, VD_ETIMEOUT, VD_ECONN, VD_EAUTH.  */
VD_EXPORT VD_NODISCARD int vd_client_recv(vd_client_t *self, vd_envelope_t **env_p, int timeout_ms);

/*  Keygen: creates an agency key. Writes the secret file `secret_path` (mode 0600; refuses to
    overwrite) and the public agency file `public_path` that the broker's operator installs in
    its registry directory. `role` is one of comune, cosc, anci, cnaipic, broker;
    `jurisdictions` a comma-separated list of COSC jurisdictions ("toscana") or "national";
    `label` names the system holding the key ("siem"; NULL: "default"). Refuses to replace
    either file. Returns VD_OK, VD_EINVAL (bad org id, name, role, jurisdiction or label),
    VD_EIO (a file exists or cannot be written; nothing is left behind).  */
VD_EXPORT VD_NODISCARD int vd_keygen(const char *org,
                                     const char *name,
                                     const char *role,
                                     const char *jurisdictions,
                                     const char *label,
                                     const char *secret_path,
                                     const char *public_path);

/*  Key rotation: creates the next key of the agency whose secret file is `old_secret_path`
    (read with the same permission check as connecting), with the same org, name, role and
    jurisdictions and a new `label`, which must differ from the old key's. Writes the new
    secret and public files as vd_keygen() does; the old files are left untouched. The broker
    accepts both keys once the new public file is installed and the registry reloaded; the old
    one is then revoked (docs/keys.md). Returns VD_OK, VD_EINVAL (old file unreadable or
    invalid, bad or unchanged label), VD_EACCES (old secret file readable by group or others),
    VD_EIO (a new file exists or cannot be written; nothing is left behind).  */
VD_EXPORT VD_NODISCARD int vd_keygen_rotate(const char *old_secret_path,
                                            const char *label,
                                            const char *secret_path,
                                            const char *public_path);

#ifdef __cplusplus
}
#endif

#endif

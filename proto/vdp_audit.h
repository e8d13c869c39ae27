/*  vdp_audit: the format of the broker's tamper-evident audit log (docs/audit.md), shared by the
    broker, which writes it (vdb_audit), and the CLI, which verifies and queries it.
    - The log is JSON Lines: one record a line, "\n"-terminated. Keys in a fixed order: "n"
      first, then "t", "kind", "org", "key", "peer", "topic", "id", "seq", "code", "reason" (the
      optional ones only when present), then "prev" and, last, "hash".
    - hash = BLAKE2b-256(prev as 32 raw bytes || the line's bytes from its "{" up to and
      including the "," before "hash"). Records are chained: a record's prev is the hash of the
      record before it (zeros for record 1). Verification hashes the bytes as they are in the
      file; it never re-encodes a record.
    - The head checkpoint, beside the log (LOG.head), names the last record written, its hash
      and when, signed with the broker's Ed25519 key. It is outside the chain.
    Only the kinds of vdp_audit_kind_t exist: a typo cannot invent a kind. The module keeps no
    state; any thread may call it. Parsing allocates (jansson); formatting does not.  */

#ifndef VDP_AUDIT_H_INCLUDED
#define VDP_AUDIT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VDP_AUDIT_HASH_BYTES 32u           // BLAKE2b-256
#define VDP_AUDIT_HASH_HEX   64u           // its lowercase hex
#define VDP_AUDIT_SIG_BYTES  64u           // Ed25519 detached signature
#define VDP_AUDIT_SIG_HEX    128u          // its lowercase hex
#define VDP_AUDIT_MAX_FIELD  1024u         // bytes of one string field; longer ones are cut
#define VDP_AUDIT_MAX_LINE   (64u * 1024u) // a line longer than this is not a record
#define VDP_AUDIT_HEAD_MAX   1024u         // a head file longer than this is not a head
#define VDP_AUDIT_HEAD_TAG   "vedetta-audit-head-v1\n" // starts the bytes a head signs

//  What a record says happened. Wire names in vdp_audit_kind_name (e.g. "auth.fail").
typedef enum {
    VDP_AUDIT_NONE = 0,         // not a kind: "any" in a query filter
    VDP_AUDIT_AUTH_OK,          // "auth.ok": a key completed the handshake
    VDP_AUDIT_AUTH_FAIL,        // "auth.fail": a key or address was refused
    VDP_AUDIT_PUB_ACCEPT,       // "pub.accept": a publish was accepted
    VDP_AUDIT_PUB_REJECT,       // "pub.reject": a publish was rejected
    VDP_AUDIT_SUB_GRANT,        // "sub.grant": a subscription was granted
    VDP_AUDIT_SUB_DENY,         // "sub.deny": a subscription was denied
    VDP_AUDIT_DELIVER_WITHHELD, // "deliver.withheld": a delivery was withheld (TLP, policy)
    VDP_AUDIT_REGISTRY_CHANGE,  // "registry.change": agencies or keys changed
    VDP_AUDIT_POLICY_CHANGE,    // "policy.change": the policy changed
    VDP_AUDIT_KEY_REVOKE,       // "key.revoke": a key was revoked
    VDP_AUDIT_BROKER_START,     // "broker.start"
    VDP_AUDIT_BROKER_STOP,      // "broker.stop"
    VDP_AUDIT_CHECKPOINT,       // "audit.checkpoint"
    VDP_AUDIT_KIND_COUNT
} vdp_audit_kind_t;

//  Wire name of a kind ("auth.ok"...); NULL for VDP_AUDIT_NONE or a value out of range.
const char *vdp_audit_kind_name(vdp_audit_kind_t kind);

//  The kind whose wire name is `name`; VDP_AUDIT_NONE if none (or NULL).
vdp_audit_kind_t vdp_audit_kind_from_name(const char *name);

/*  One record. Strings are borrowed; NULL (or 0 for seq) when absent. Formatting writes at
    most VDP_AUDIT_MAX_FIELD bytes of a string (cut at a character boundary) and writes each
    byte that is not part of valid UTF-8 as '?'.  */
typedef struct {
    uint64_t n;            // record number: 1, 2, 3... with no gap
    int64_t t;             // when, UTC ms since the epoch (>= 0)
    vdp_audit_kind_t kind; // required
    const char *org;       // org id of the party ("comune:i726")
    const char *key;       // Z85 CURVE public key of the party
    const char *peer;      // network address ("203.0.113.7:51234")
    const char *topic;     // topic or pattern
    const char *id;        // message id
    uint64_t seq;          // the broker's sequence number of the message; 0: none
    const char *code;      // "OK" or an error code name ("EACCES"); must be a known name
    const char *reason;    // free text
} vdp_audit_record_t;

/*  Formats `record` chained after `prev` (the previous record's hash; zeros for record 1) as
    one line ending in "\n", into line[size], NUL-terminated after the "\n". A line is never
    longer than VDP_AUDIT_MAX_LINE bytes (plus the NUL), so a buffer that size always does.
    Writes the line's length (with the "\n") to *len and its hash to hash_out. No allocation.
    Returns VD_OK; VD_EINVAL (n is 0, t negative, kind not a kind, code not a known code name,
    a NULL pointer) or VD_ELIMIT (line[size] too small); on error nothing is promised about
    line.  */
int vdp_audit_format(const vdp_audit_record_t *record,
                     const uint8_t prev[VDP_AUDIT_HASH_BYTES],
                     char *line,
                     size_t size,
                     size_t *len,
                     uint8_t hash_out[VDP_AUDIT_HASH_BYTES]);

//  One parsed record. Strings of `record` are owned by `json_`; clear with vdp_audit_entry_clear.
typedef struct {
    vdp_audit_record_t record;
    uint8_t prev[VDP_AUDIT_HASH_BYTES];
    uint8_t hash[VDP_AUDIT_HASH_BYTES]; // the record's own "hash", as written
    void *json_;                        // owned: the parsed object
} vdp_audit_entry_t;

/*  Parses one line of the log, `len` bytes without its "\n", into `entry` (cleared first).
    Checks that it is a record: a JSON object that starts at byte 0, "n" first and "hash"
    last, keys known, in order and each once, "t", "kind" and "prev" present, values of the
    right type and range, a known kind, hashes in lowercase hex, and the line ending in
    ,"hash":"<64 hex>"}.
    If `expect_n` > 0 it also checks the chain: n == expect_n, the hash is BLAKE2b-256 of
    prev || the bytes before "hash", and prev == `expect_prev`.
    Returns VD_OK; VD_EPROTO (not a record) or VD_ESIG (a record, but not the one the chain
    expects: wrong number, hash or prev), with a reason in err (starting "record N: " when
    expect_n is given); VD_EINVAL (NULL argument). `entry` is empty after an error.  */
int vdp_audit_parse(const char *line,
                    size_t len,
                    uint64_t expect_n,
                    const uint8_t expect_prev[VDP_AUDIT_HASH_BYTES],
                    vdp_audit_entry_t *entry,
                    char *err,
                    size_t err_size);

//  Frees what `entry` holds and zeroes it. Accepts an entry already cleared.
void vdp_audit_entry_clear(vdp_audit_entry_t *entry);

//  The head checkpoint: record n (0 for an empty log) had this hash at time t.
typedef struct {
    uint64_t n;
    uint8_t hash[VDP_AUDIT_HASH_BYTES]; // record n's hash; zeros when n is 0
    int64_t t;                          // UTC ms when the head was written
    bool signed_;                       // sig is present
    uint8_t sig[VDP_AUDIT_SIG_BYTES];
} vdp_audit_head_t;

/*  Signs `head` with a 64-byte Ed25519 secret key (libsodium's form: seed and public key):
    sets sig and signed_. The signature covers VDP_AUDIT_HEAD_TAG, n in decimal, "\n", the
    hash in hex, "\n", t in decimal.  */
void vdp_audit_head_sign(vdp_audit_head_t *head, const uint8_t *sign_secret);

//  True if `head` is signed and its signature verifies with the Ed25519 public key.
bool vdp_audit_head_verify(const vdp_audit_head_t *head, const uint8_t *sign_public);

/*  Writes `head` to `path` as one JSON line, atomically: a temporary file in the same
    directory, written and fsynced, renamed over `path`, then the directory fsynced. Mode 0640.
    Returns VD_OK, or VD_EIO with `err` (nothing replaced).  */
int vdp_audit_head_write(const vdp_audit_head_t *head, const char *path, char *err, size_t size);

/*  Reads a head file: {"n":N,"hash":"<hex>","t":MS} with an optional "sig":"<hex>" and no
    other key. Returns VD_OK; VD_ENOTFOUND (no such file); VD_EIO (unreadable); VD_EPROTO (not
    a head); each with `err`.  */
int vdp_audit_head_read(const char *path, vdp_audit_head_t *out, char *err, size_t size);

//  What verification found. Record numbers start at 1.
typedef struct {
    bool intact;          // the chain checks out and so does the head, if any
    uint64_t records;     // records, from the first, whose chain checked out
    uint64_t broken_at;   // intact: 0; else the first record that cannot be vouched for
    char reason[512];     // not intact: what is wrong, in words
    bool head_present;    // a head was read
    uint64_t head_n;      // the record the head names
    bool head_signed;     // the head's signature verified with the key given
    bool incomplete_tail; // the log ends in a line without "\n" (not counted, not checked)
    uint8_t last_hash[VDP_AUDIT_HASH_BYTES]; // hash of record `records` (zeros if none)
} vdp_audit_verify_t;

/*  Verifies the log at `path`, record after record, and the head at `head_path` (NULL: no
    head). With `sign_public` (the broker's Ed25519 public key), the head must exist and carry
    a signature that verifies with it. Detects: a record altered (hash mismatch), a record
    removed or moved (number or prev mismatch), a line that is not a record, a log shorter than
    its head, a head whose hash differs from its record's, a head that is not a head, and a
    head unsigned or wrongly signed when a key is given. When not intact, broken_at is the
    first record that cannot be vouched for (the records before it can). A last line without
    its "\n" is a write still in progress or cut short by a crash: it is not a record yet, so
    it is left out and only reported (incomplete_tail); a head never names it.
    Returns VD_OK when the verification ran (read result->intact); VD_EIO (the log or the head
    file could not be read; a head file that is missing is VD_EIO too) or VD_ENOMEM, with
    `err`; VD_EINVAL for a NULL argument.  */
int vdp_audit_verify(const char *path,
                     const char *head_path,
                     const uint8_t *sign_public,
                     vdp_audit_verify_t *result,
                     char *err,
                     size_t size);

//  Which records a query passes: all conditions hold. Zeroed: every record.
typedef struct {
    const char *org;       // org equals this; NULL: any
    vdp_audit_kind_t kind; // VDP_AUDIT_NONE: any
    int64_t since;         // t >= since; 0: no lower bound
    int64_t until;         // t <= until; 0: no upper bound
} vdp_audit_filter_t;

/*  Called with each matching record: its line (without "\n", not NUL-terminated) and the
    parsed record, both borrowed until it returns. Return 0 to go on, anything else to stop.  */
typedef int(vdp_audit_query_fn)(const char *line,
                                size_t len,
                                const vdp_audit_record_t *record,
                                void *arg);

/*  Reads the log at `path` in order and calls `fn` for each record `filter` passes. A query
    does not verify the chain (that is vdp_audit_verify's job) but every line must be a record;
    an incomplete last line (a write still in progress, or cut by a crash) is skipped.
    Returns VD_OK (also when `fn` stopped it); VD_EIO (unreadable); VD_EPROTO (a line that is
    not a record, named by its line number in `err`); VD_ENOMEM; VD_EINVAL (NULL argument).  */
int vdp_audit_query(const char *path,
                    const vdp_audit_filter_t *filter,
                    vdp_audit_query_fn *fn,
                    void *arg,
                    char *err,
                    size_t size);

#endif

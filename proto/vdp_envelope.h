/*  vdp_envelope: the envelope of one message (PROTOCOL.md §4) as a C struct, its msgpack encoding,
    and its total decoder.

    Decoding borrows: `body` and `raw` point into the caller's buffer and stay valid only while
    that buffer does; vdp_envelope_own() copies them so the envelope stands alone. Strings are
    copied into fixed arrays (the caps of vdp_limits.h), always NUL-terminated.
    Decoding checks syntax only (types, enums, sizes, id/org/topic syntax, required fields);
    who may send what is the broker's business (broker/vdb_acl).
    Encoding writes the present fields in one fixed order (the order of PROTOCOL.md §4), so equal
    envelopes encode to equal bytes.  */

#ifndef VDP_ENVELOPE_H_INCLUDED
#define VDP_ENVELOPE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdp_limits.h"

struct msgpack_packer;
struct vdp_mp_t;

typedef enum {
    VDP_KIND_NONE = 0,
    VDP_KIND_ALERT,
    VDP_KIND_UPDATE,
    VDP_KIND_CANCEL,
    VDP_KIND_ACK,
    VDP_KIND_ERROR
} vdp_kind_t;
typedef enum {
    VDP_STATUS_NONE = 0,
    VDP_STATUS_ACTUAL,
    VDP_STATUS_EXERCISE,
    VDP_STATUS_TEST,
    VDP_STATUS_SYSTEM,
    VDP_STATUS_DRAFT
} vdp_status_t;
//  Ordered: a larger value is more restrictive.
typedef enum {
    VDP_TLP_NONE = 0,
    VDP_TLP_CLEAR,
    VDP_TLP_GREEN,
    VDP_TLP_AMBER,
    VDP_TLP_AMBER_STRICT,
    VDP_TLP_RED
} vdp_tlp_t;
typedef enum {
    VDP_SEVERITY_NONE = 0,
    VDP_SEVERITY_EXTREME,
    VDP_SEVERITY_SEVERE,
    VDP_SEVERITY_MODERATE,
    VDP_SEVERITY_MINOR,
    VDP_SEVERITY_UNKNOWN
} vdp_severity_t;
typedef enum {
    VDP_URGENCY_NONE = 0,
    VDP_URGENCY_IMMEDIATE,
    VDP_URGENCY_EXPECTED,
    VDP_URGENCY_FUTURE,
    VDP_URGENCY_PAST,
    VDP_URGENCY_UNKNOWN
} vdp_urgency_t;
typedef enum {
    VDP_CERTAINTY_NONE = 0,
    VDP_CERTAINTY_OBSERVED,
    VDP_CERTAINTY_LIKELY,
    VDP_CERTAINTY_POSSIBLE,
    VDP_CERTAINTY_UNLIKELY,
    VDP_CERTAINTY_UNKNOWN
} vdp_certainty_t;
typedef enum {
    VDP_STAGE_NONE = 0,
    VDP_STAGE_EARLY_WARNING,
    VDP_STAGE_NOTIFICATION,
    VDP_STAGE_INTERMEDIATE,
    VDP_STAGE_FINAL,
    VDP_STAGE_PROGRESS
} vdp_stage_t;

//  Wire names of the enums ("amber+strict", "early-warning"...), NULL for *_NONE or out of range;
//  and back, *_NONE if unknown. Static storage.
const char *vdp_kind_name(vdp_kind_t v);
vdp_kind_t vdp_kind_from_name(const char *s);
const char *vdp_status_name(vdp_status_t v);
vdp_status_t vdp_status_from_name(const char *s);
const char *vdp_tlp_name(vdp_tlp_t v);
vdp_tlp_t vdp_tlp_from_name(const char *s);
const char *vdp_severity_name(vdp_severity_t v);
vdp_severity_t vdp_severity_from_name(const char *s);
const char *vdp_urgency_name(vdp_urgency_t v);
vdp_urgency_t vdp_urgency_from_name(const char *s);
const char *vdp_certainty_name(vdp_certainty_t v);
vdp_certainty_t vdp_certainty_from_name(const char *s);
const char *vdp_stage_name(vdp_stage_t v);
vdp_stage_t vdp_stage_from_name(const char *s);

typedef struct {
    char sender[VDP_MAX_ORG + 1];
    char id[VDP_ID_LEN + 1];
} vdp_ref_t;

typedef struct vdp_envelope_t {
    //  Required (PROTOCOL.md §4.1)
    uint32_t v;                    // envelope version, 1
    char id[VDP_ID_LEN + 1];       // UUID; (sender, id) is unique
    char sender[VDP_MAX_ORG + 1];  // org id
    int64_t sent;                  // sender's clock, UTC ms
    char topic[VDP_MAX_TOPIC + 1]; // concrete topic; "inbox" for directed messages
    vdp_kind_t kind;
    vdp_status_t status;
    vdp_tlp_t tlp;
    char category[VDP_MAX_SHORT + 1];
    vdp_severity_t severity;
    char ctype[VDP_MAX_SHORT + 1]; // body media type
    const uint8_t *body;           // borrowed unless owned; may be NULL when body_len == 0
    size_t body_len;
    uint8_t sig[VDP_MAX_SIG]; // the sender's signature (PROTOCOL.md §4.6, vdp_sig.h)
    size_t sig_len;

    //  Optional / conditional (PROTOCOL.md §4.2); empty string, 0 or *_NONE when absent
    char to[VDP_MAX_TO][VDP_MAX_ORG + 1];
    size_t to_count;
    vdp_ref_t refs[VDP_MAX_REFS];
    size_t refs_count;
    char incident[VDP_MAX_SHORT + 1];
    vdp_stage_t stage;
    int64_t aware_at;
    int64_t expires;
    int64_t ack_by;
    vdp_urgency_t urgency;
    vdp_certainty_t certainty;
    char lang[VDP_MAX_LANG + 1];

    //  Stamped by the broker; carried in the deliver command, not in the envelope map
    uint64_t seq;
    int64_t accepted_at;
    char via[VDP_MAX_VIA][VDP_MAX_ORG + 1];
    size_t via_count;
    char subscription[VDP_MAX_TOPIC + 1]; // pattern that matched, on deliveries
    char durable[VDP_MAX_DURABLE + 1];    // the durable subscription it came on, or ""

    //  The envelope map's exact bytes as received (relayed and stored as-is); NULL when built
    //  locally. Changing a field makes them stale: call vdp_envelope_drop_raw() before
    //  publishing a changed copy (vdp_envelope_set_body() does it itself).
    const uint8_t *raw;
    size_t raw_len;

    //  Owned copies backing body/raw after vdp_envelope_own() or the setters; NULL otherwise
    uint8_t *owned_body;
    uint8_t *owned_raw;
} vdp_envelope_t;

//  Empties `self`, freeing owned copies. Safe on a zeroed struct.
void vdp_envelope_reset(vdp_envelope_t *self);

/*  Decodes one envelope map of exactly `size` bytes at `data` into `self` (which is reset first)
    and points self->raw at those bytes. Unknown keys are skipped (forward compatibility); a
    repeated key is an error. Values under unknown keys may nest two levels (the envelope sits
    inside a command, and VDP_MAX_DEPTH counts from the command).
    Returns VD_OK; VD_EPROTO (not a msgpack map, truncated, wrong type, repeated key);
    VD_ELIMIT (a string, list or body over its cap); VD_EFIELD (a required field missing, an enum
    or id/org/topic/UUID invalid). `reason` (if not NULL) gets a short explanation naming the
    field. On error every field is empty except `self->id` and `self->sender`, which hold the
    envelope's id and sender when those are present and valid (for receipts and logs).  */
int vdp_envelope_decode(
    vdp_envelope_t *self, const uint8_t *data, size_t size, char *reason, size_t reason_size);

/*  Decodes the envelope map that starts at the cursor `mp` (vdp_mp.h), as vdp_envelope_decode()
    does, and on VD_OK leaves the cursor just after it, with self->raw spanning the map's bytes.
    For a reader that finds an envelope inside a larger structure without a separate pass to
    find its end. On error the cursor's position is unspecified.  */
int
vdp_envelope_decode_at(vdp_envelope_t *self, struct vdp_mp_t *mp, char *reason, size_t reason_size);

/*  Checks a locally built envelope as the decoder would (required fields, enums, syntax).
    Returns VD_OK or VD_EFIELD / VD_ELIMIT with `reason`.  */
int vdp_envelope_validate(const vdp_envelope_t *self, char *reason, size_t reason_size);

/*  Encodes `self` (only fields that are present: non-empty strings, non-zero times, enums other
    than *_NONE, non-empty lists; `body` always) as one msgpack map into a new buffer. Does not
    validate (see vdp_envelope_validate) and does not touch `raw`.
    On VD_OK, *data_p is malloc'd (caller frees) and *size_p its length.
    Returns VD_OK or VD_ENOMEM.  */
int vdp_envelope_encode(const vdp_envelope_t *self, uint8_t **data_p, size_t *size_p);

#define VDP_BODY_HASH_BYTES 32u // BLAKE2b-256 of the body, as a signature covers it

/*  Packs the part of `self` that its signature covers (PROTOCOL.md §4.6): the present fields
    but `sig`, in canonical order and shortest forms, with `body_hash` (BLAKE2b-256 of the
    body) as the value of `body`. Returns VD_OK, or VD_ENOMEM if the packer's callback failed.  */
int vdp_envelope_pack_signed(const vdp_envelope_t *self,
                             struct msgpack_packer *pk,
                             const uint8_t body_hash[VDP_BODY_HASH_BYTES]);

/*  Encodes `self` as vdp_envelope_encode() does, through a msgpack-c packer (for a writer that
    appends the map to a larger buffer). Returns VD_OK, or VD_ENOMEM if the packer's write
    callback failed.  */
int vdp_envelope_pack(const vdp_envelope_t *self, struct msgpack_packer *pk);

/*  True if `a` and `b` carry the same envelope map: every field that goes on the wire is equal
    (raw bytes, ownership and broker stamps are not compared).  */
bool vdp_envelope_same(const vdp_envelope_t *a, const vdp_envelope_t *b);

/*  Copies the borrowed body and raw bytes into owned storage (a body inside the raw bytes shares
    their copy). Returns VD_OK or VD_ENOMEM (nothing changed).  */
int vdp_envelope_own(vdp_envelope_t *self);

/*  Replaces the body with an owned copy of data[0..size) and drops the now stale raw bytes.
    Returns VD_OK, VD_ENOMEM, VD_ELIMIT (over VDP_MAX_BODY), VD_EINVAL (data NULL, size > 0).  */
int vdp_envelope_set_body(vdp_envelope_t *self, const void *data, size_t size);

/*  Forgets the raw bytes (freeing an owned copy), after which the envelope is published by
    encoding its fields; the body is first copied out of them if it pointed inside.
    Returns VD_OK or VD_ENOMEM (nothing changed).  */
int vdp_envelope_drop_raw(vdp_envelope_t *self);

#endif

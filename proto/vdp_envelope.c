/*  vdp_envelope: the envelope map (PROTOCOL.md §4): enum names, total decoder, validation,
    deterministic encoder, body and raw-bytes ownership.

    Invariants: the decoder reads with vdp_mp (never allocates, checks every length first); a
    decoded envelope's strings are NUL-terminated copies, `body` and `raw` borrow from the input
    until vdp_envelope_own(); decode and validate share one semantic check (s_check), so a struct
    that validates encodes to bytes that decode, and the other way round.  */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "vdp_errors.h"
#include "vedetta.h"
#include "vdp_envelope.h"
#include "vdp_ids.h"
#include "vdp_mp.h"
#include "vdp_topic.h"

#define S_ENVELOPE_VERSION 1u
//  Container levels an envelope may occupy, itself included: VDP_MAX_DEPTH counts from the
//  command that carries it (command > env > refs > ref).
#define S_ENV_DEPTH (VDP_MAX_DEPTH - 1u)

//  ---------------------------------------------------------------------------------------------
//  Enum names. Index = enum value; index 0 (*_NONE) has no name.

static const char *const s_kind_names[] = { NULL, "alert", "update", "cancel", "ack", "error" };
static const char *const s_status_names[] = {
    NULL, "actual", "exercise", "test", "system", "draft"
};
static const char *const s_tlp_names[] = { NULL, "clear", "green", "amber", "amber+strict", "red" };
static const char *const s_severity_names[] = { NULL,       "extreme", "severe",
                                                "moderate", "minor",   "unknown" };
static const char *const s_urgency_names[] = { NULL,     "immediate", "expected",
                                               "future", "past",      "unknown" };
static const char *const s_certainty_names[] = { NULL,       "observed", "likely",
                                                 "possible", "unlikely", "unknown" };
static const char *const s_stage_names[] = { NULL,           "early-warning", "notification",
                                             "intermediate", "final",         "progress" };

#define S_COUNT(table) (sizeof(table) / sizeof(table)[0])

static const char *
s_name(const char *const *table, size_t count, int value)
{
    if (value <= 0 || (size_t)value >= count)
        return NULL;
    return table[value];
}

//  Index of the name equal to str[0..len), 0 if none. Tables are short; the first byte
//  rejects most candidates before any length is computed.
static int
s_lookup(const char *const *table, size_t count, const char *str, size_t len)
{
    for (size_t i = 1; i < count && len > 0; i++)
        if (table[i][0] == str[0] && strlen(table[i]) == len && memcmp(table[i], str, len) == 0)
            return (int)i;
    return 0;
}

static int
s_lookup_cstr(const char *const *table, size_t count, const char *str)
{
    return str ? s_lookup(table, count, str, strlen(str)) : 0;
}

#define S_ENUM_NAMES(name, type, table)                                                            \
    const char *vdp_##name##_name(type v)                                                          \
    {                                                                                              \
        return s_name(table, S_COUNT(table), (int)v);                                              \
    }                                                                                              \
    type vdp_##name##_from_name(const char *s)                                                     \
    {                                                                                              \
        return (type)s_lookup_cstr(table, S_COUNT(table), s);                                      \
    }

S_ENUM_NAMES(kind, vdp_kind_t, s_kind_names)
S_ENUM_NAMES(status, vdp_status_t, s_status_names)
S_ENUM_NAMES(tlp, vdp_tlp_t, s_tlp_names)
S_ENUM_NAMES(severity, vdp_severity_t, s_severity_names)
S_ENUM_NAMES(urgency, vdp_urgency_t, s_urgency_names)
S_ENUM_NAMES(certainty, vdp_certainty_t, s_certainty_names)
S_ENUM_NAMES(stage, vdp_stage_t, s_stage_names)

//  ---------------------------------------------------------------------------------------------
//  Field keys, in encoding order (PROTOCOL.md §4)

typedef enum {
    F_V,
    F_ID,
    F_SENDER,
    F_SENT,
    F_TOPIC,
    F_KIND,
    F_STATUS,
    F_TLP,
    F_CATEGORY,
    F_SEVERITY,
    F_CTYPE,
    F_BODY,
    F_SIG,
    F_TO,
    F_REFS,
    F_INCIDENT,
    F_STAGE,
    F_AWARE_AT,
    F_EXPIRES,
    F_ACK_BY,
    F_URGENCY,
    F_CERTAINTY,
    F_LANG,
    F_COUNT
} s_field_t;

static const char *const s_field_names[F_COUNT] = {
    "v",        "id",       "sender",  "sent",   "topic",   "kind",      "status", "tlp",
    "category", "severity", "ctype",   "body",   "sig",     "to",        "refs",   "incident",
    "stage",    "aware_at", "expires", "ack_by", "urgency", "certainty", "lang"
};

#define S_BIT(f) (1u << (f))
#define S_REQUIRED                                                                                 \
    (S_BIT(F_V) | S_BIT(F_ID) | S_BIT(F_SENDER) | S_BIT(F_SENT) | S_BIT(F_TOPIC) | S_BIT(F_KIND) | \
     S_BIT(F_STATUS) | S_BIT(F_TLP) | S_BIT(F_CATEGORY) | S_BIT(F_SEVERITY) | S_BIT(F_CTYPE) |     \
     S_BIT(F_BODY))

#define S_IS(lit) (len == sizeof(lit) - 1 && memcmp(key, lit, sizeof(lit) - 1) == 0)

//  The field a key names, -1 if unknown. Switches on length first: this runs for every key of
//  every envelope the broker receives.
static int
s_field_index(const char *key, uint32_t len)
{
    switch (len) {
    case 1:
        return key[0] == 'v' ? F_V : -1;
    case 2:
        return S_IS("id") ? F_ID : S_IS("to") ? F_TO : -1;
    case 3:
        return S_IS("tlp") ? F_TLP : S_IS("sig") ? F_SIG : -1;
    case 4:
        if (S_IS("sent"))
            return F_SENT;
        if (S_IS("kind"))
            return F_KIND;
        if (S_IS("body"))
            return F_BODY;
        if (S_IS("refs"))
            return F_REFS;
        return S_IS("lang") ? F_LANG : -1;
    case 5:
        if (S_IS("topic"))
            return F_TOPIC;
        if (S_IS("ctype"))
            return F_CTYPE;
        return S_IS("stage") ? F_STAGE : -1;
    case 6:
        if (S_IS("sender"))
            return F_SENDER;
        if (S_IS("status"))
            return F_STATUS;
        return S_IS("ack_by") ? F_ACK_BY : -1;
    case 7:
        return S_IS("expires") ? F_EXPIRES : S_IS("urgency") ? F_URGENCY : -1;
    case 8:
        if (S_IS("category"))
            return F_CATEGORY;
        if (S_IS("severity"))
            return F_SEVERITY;
        if (S_IS("incident"))
            return F_INCIDENT;
        return S_IS("aware_at") ? F_AWARE_AT : -1;
    case 9:
        return S_IS("certainty") ? F_CERTAINTY : -1;
    default:
        return -1;
    }
}

//  ---------------------------------------------------------------------------------------------
//  Helpers for reasons and reading

//  Peer text made safe to quote in a reason.
static const char *
s_quote(const char *str, size_t len, char *buf, size_t size)
{
    vdp_sanitize(str, len, buf, size);
    return buf;
}

/*  Unknown keys seen so far in one map, to refuse a repeated one (a relay or a newer peer that
    knows the key must not read a different value than we skipped). At most VDP_MAX_MAP_KEYS, so
    the quadratic check is bounded and runs only when unknown keys are present.  */
typedef struct {
    const char *key[VDP_MAX_MAP_KEYS];
    uint32_t len[VDP_MAX_MAP_KEYS];
    size_t count;
} s_unknown_t;

static bool
s_unknown_add(s_unknown_t *self, const char *key, uint32_t len)
{
    for (size_t i = 0; i < self->count; i++)
        if (self->len[i] == len && memcmp(self->key[i], key, len) == 0)
            return false;
    assert(self->count < VDP_MAX_MAP_KEYS); // the map's count was checked against the cap
    self->key[self->count] = key;
    self->len[self->count] = len;
    self->count++;
    return true;
}

//  Reads a str of at most `cap` bytes without NUL bytes into out[cap + 1].
static int
s_read_string(
    vdp_mp_t *mp, char *out, size_t cap, const char *field, char *reason, size_t reason_size)
{
    const char *str;
    uint32_t len;
    if (vdp_mp_read_str(mp, &str, &len) != VD_OK)
        return vdp_errorf(reason, reason_size, VD_EPROTO, "%s: expected a string", field);
    if (len > cap)
        return vdp_errorf(reason, reason_size, VD_ELIMIT, "%s: longer than %zu bytes", field, cap);
    if (memchr(str, '\0', len))
        return vdp_errorf(reason, reason_size, VD_EPROTO, "%s: contains a NUL byte", field);
    memcpy(out, str, len);
    out[len] = '\0';
    return VD_OK;
}

//  Reads an id: a str of VDP_ID_LEN bytes (too long is a syntax error, not a limit). Whether it
//  is a canonical UUID is s_check's business, so that it is checked once.
static int
s_read_id(vdp_mp_t *mp, char out[VDP_ID_LEN + 1], const char *field, char *reason, size_t rsize)
{
    const char *str;
    uint32_t len;
    if (vdp_mp_read_str(mp, &str, &len) != VD_OK)
        return vdp_errorf(reason, rsize, VD_EPROTO, "%s: expected a string", field);
    if (len != VDP_ID_LEN)
        return vdp_errorf(reason, rsize, VD_EFIELD, "%s: not a canonical UUID", field);
    memcpy(out, str, len);
    out[len] = '\0';
    return VD_OK;
}

static int
s_read_enum(vdp_mp_t *mp,
            const char *const *table,
            size_t count,
            int *out,
            const char *field,
            char *reason,
            size_t reason_size)
{
    const char *str;
    uint32_t len;
    char quoted[32];
    if (vdp_mp_read_str(mp, &str, &len) != VD_OK)
        return vdp_errorf(reason, reason_size, VD_EPROTO, "%s: expected a string", field);
    *out = s_lookup(table, count, str, len);
    if (*out == 0)
        return vdp_errorf(reason, reason_size, VD_EFIELD, "%s: unknown value '%s'", field,
                          s_quote(str, len, quoted, sizeof quoted));
    return VD_OK;
}

//  A time: an integer of ms since the epoch, positive (0 stands for "absent" in the struct).
static int
s_read_time(vdp_mp_t *mp, int64_t *out, const char *field, char *reason, size_t reason_size)
{
    if (vdp_mp_read_int(mp, out) != VD_OK)
        return vdp_errorf(reason, reason_size, VD_EPROTO, "%s: expected an integer (ms)", field);
    if (*out <= 0)
        return vdp_errorf(reason, reason_size, VD_EFIELD, "%s: must be a positive time", field);
    return VD_OK;
}

//  ---------------------------------------------------------------------------------------------
//  Syntax shared by decode and validate

static bool
s_category_valid(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > VDP_MAX_SHORT)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

static bool
s_param_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '+' || c == '-';
}

//  One of the known media types, then parameters `;[ ]name=value` (e.g. ";version=2.1").
static bool
s_ctype_valid(const char *s)
{
    static const char *const types[] = { "text/plain", "application/json", "application/cap+xml",
                                         "application/stix+json", "application/vnd.misp+json" };
    const char *p = NULL;
    for (size_t i = 0; i < S_COUNT(types) && !p; i++) {
        size_t n = strlen(types[i]);
        if (strncmp(s, types[i], n) == 0 && (s[n] == '\0' || s[n] == ';'))
            p = s + n;
    }
    if (!p)
        return false;
    while (*p == ';') {
        p++;
        while (*p == ' ')
            p++;
        const char *name = p;
        while (s_param_char(*p))
            p++;
        if (p == name || *p != '=')
            return false;
        const char *value = ++p;
        while (s_param_char(*p))
            p++;
        if (p == value)
            return false;
    }
    return *p == '\0';
}

//  A short language tag: a letter, then up to VDP_MAX_LANG - 1 of [A-Za-z0-9-] ("it", "en-GB").
static bool
s_lang_valid(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > VDP_MAX_LANG)
        return false;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!s_param_char(s[i]) || s[i] == '.' || s[i] == '_' || s[i] == '+')
            return false;
    return s[len - 1] != '-';
}

//  1..VDP_MAX_SHORT visible ASCII characters: an incident is an opaque token of the sender.
static bool
s_token_valid(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > VDP_MAX_SHORT)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return false;
    return true;
}

//  True if the fixed array holds a NUL-terminated string.
#define S_TERMINATED(arr) (memchr((arr), '\0', sizeof(arr)) != NULL)

static bool
s_in_range(int v, size_t count)
{
    return v > 0 && (size_t)v < count;
}

static bool
s_needs_refs(vdp_kind_t kind)
{
    return kind == VDP_KIND_UPDATE || kind == VDP_KIND_CANCEL || kind == VDP_KIND_ACK ||
           kind == VDP_KIND_ERROR;
}

//  The semantic rules, on a struct whose strings may come from anywhere.
static int
s_check(const vdp_envelope_t *self, char *reason, size_t rsize)
{
    if (!S_TERMINATED(self->id) || !S_TERMINATED(self->sender) || !S_TERMINATED(self->topic) ||
        !S_TERMINATED(self->category) || !S_TERMINATED(self->ctype) ||
        !S_TERMINATED(self->incident) || !S_TERMINATED(self->lang))
        return vdp_errorf(reason, rsize, VD_ELIMIT, "a string field is not terminated");
    if (self->v == 0)
        return vdp_errorf(reason, rsize, VD_EFIELD, "missing field 'v'");
    if (self->v != S_ENVELOPE_VERSION)
        return vdp_errorf(reason, rsize, VD_EFIELD, "v: unsupported envelope version %" PRIu32,
                          self->v);
    if (!self->id[0])
        return vdp_errorf(reason, rsize, VD_EFIELD, "missing field 'id'");
    if (!vdp_uuid_valid(self->id))
        return vdp_errorf(reason, rsize, VD_EFIELD, "id: not a canonical UUID");
    if (!self->sender[0])
        return vdp_errorf(reason, rsize, VD_EFIELD, "missing field 'sender'");
    if (!vdp_org_valid(self->sender))
        return vdp_errorf(reason, rsize, VD_EFIELD, "sender: not a valid org id");
    if (self->sent <= 0)
        return vdp_errorf(reason, rsize, VD_EFIELD, "sent: missing or not a positive time");
    if (!self->topic[0])
        return vdp_errorf(reason, rsize, VD_EFIELD, "missing field 'topic'");
    if (strcmp(self->topic, "inbox") != 0 && !vdp_topic_valid(self->topic))
        return vdp_errorf(reason, rsize, VD_EFIELD, "topic: not a valid topic");
    if (!s_in_range((int)self->kind, S_COUNT(s_kind_names)))
        return vdp_errorf(reason, rsize, VD_EFIELD, "kind: missing or invalid");
    if (!s_in_range((int)self->status, S_COUNT(s_status_names)))
        return vdp_errorf(reason, rsize, VD_EFIELD, "status: missing or invalid");
    if (!s_in_range((int)self->tlp, S_COUNT(s_tlp_names)))
        return vdp_errorf(reason, rsize, VD_EFIELD, "tlp: missing or invalid");
    if (!s_category_valid(self->category))
        return vdp_errorf(reason, rsize, VD_EFIELD, "category: missing or not 1-64 of [a-z0-9-]");
    if (!s_in_range((int)self->severity, S_COUNT(s_severity_names)))
        return vdp_errorf(reason, rsize, VD_EFIELD, "severity: missing or invalid");
    if (!s_ctype_valid(self->ctype))
        return vdp_errorf(reason, rsize, VD_EFIELD, "ctype: missing or not a supported media type");
    if (self->body_len > VDP_MAX_BODY)
        return vdp_errorf(reason, rsize, VD_ELIMIT, "body: over %u bytes", VDP_MAX_BODY);
    if (!self->body && self->body_len > 0)
        return vdp_errorf(reason, rsize, VD_EFIELD, "body: no data");
    if (self->sig_len > VDP_MAX_SIG)
        return vdp_errorf(reason, rsize, VD_ELIMIT, "sig: over %u bytes", VDP_MAX_SIG);
    if (self->to_count > VDP_MAX_TO)
        return vdp_errorf(reason, rsize, VD_ELIMIT, "to: more than %u recipients", VDP_MAX_TO);
    for (size_t i = 0; i < self->to_count; i++) {
        if (!S_TERMINATED(self->to[i]) || !vdp_org_valid(self->to[i]))
            return vdp_errorf(reason, rsize, VD_EFIELD, "to[%zu]: not a valid org id", i);
        //  Quadratic, but bounded by VDP_MAX_TO (at most 496 comparisons)
        for (size_t k = 0; k < i; k++)
            if (strcmp(self->to[i], self->to[k]) == 0)
                return vdp_errorf(reason, rsize, VD_EFIELD, "to[%zu]: repeats %s", i, self->to[i]);
    }
    if (self->refs_count > VDP_MAX_REFS)
        return vdp_errorf(reason, rsize, VD_ELIMIT, "refs: more than %u references", VDP_MAX_REFS);
    for (size_t i = 0; i < self->refs_count; i++) {
        const vdp_ref_t *ref = &self->refs[i];
        if (!S_TERMINATED(ref->sender) || !vdp_org_valid(ref->sender))
            return vdp_errorf(reason, rsize, VD_EFIELD, "refs[%zu].sender: not a valid org id", i);
        if (!S_TERMINATED(ref->id) || !vdp_uuid_valid(ref->id))
            return vdp_errorf(reason, rsize, VD_EFIELD, "refs[%zu].id: not a canonical UUID", i);
    }
    if (s_needs_refs(self->kind) && self->refs_count == 0)
        return vdp_errorf(reason, rsize, VD_EFIELD, "refs: required for kind %s",
                          vdp_kind_name(self->kind));
    if (self->incident[0] && !s_token_valid(self->incident))
        return vdp_errorf(reason, rsize, VD_EFIELD, "incident: not 1-64 visible ASCII characters");
    if (self->stage != VDP_STAGE_NONE && !s_in_range((int)self->stage, S_COUNT(s_stage_names)))
        return vdp_errorf(reason, rsize, VD_EFIELD, "stage: invalid");
    if (self->aware_at < 0 || self->expires < 0 || self->ack_by < 0)
        return vdp_errorf(reason, rsize, VD_EFIELD, "a time field is negative");
    if (self->stage != VDP_STAGE_NONE && self->aware_at == 0)
        return vdp_errorf(reason, rsize, VD_EFIELD, "aware_at: required with stage");
    if (self->urgency != VDP_URGENCY_NONE &&
        !s_in_range((int)self->urgency, S_COUNT(s_urgency_names)))
        return vdp_errorf(reason, rsize, VD_EFIELD, "urgency: invalid");
    if (self->certainty != VDP_CERTAINTY_NONE &&
        !s_in_range((int)self->certainty, S_COUNT(s_certainty_names)))
        return vdp_errorf(reason, rsize, VD_EFIELD, "certainty: invalid");
    if (self->lang[0] && !s_lang_valid(self->lang))
        return vdp_errorf(reason, rsize, VD_EFIELD, "lang: not a short language tag");
    return VD_OK;
}

//  ---------------------------------------------------------------------------------------------
//  Decoding

static int
s_read_to(vdp_envelope_t *self, vdp_mp_t *mp, char *reason, size_t rsize)
{
    uint32_t count;
    if (vdp_mp_read_array(mp, &count) != VD_OK)
        return vdp_errorf(reason, rsize, VD_EPROTO, "to: expected an array");
    if (count > VDP_MAX_TO)
        return vdp_errorf(reason, rsize, VD_ELIMIT, "to: more than %u recipients", VDP_MAX_TO);
    for (uint32_t i = 0; i < count; i++) {
        int rc = s_read_string(mp, self->to[i], VDP_MAX_ORG, "to", reason, rsize);
        if (rc != VD_OK)
            return rc;
    }
    self->to_count = count;
    return VD_OK;
}

static int
s_read_ref(vdp_ref_t *ref, vdp_mp_t *mp, uint32_t index, char *reason, size_t rsize)
{
    uint32_t pairs;
    if (vdp_mp_read_map(mp, &pairs) != VD_OK)
        return vdp_errorf(reason, rsize, VD_EPROTO, "refs[%" PRIu32 "]: expected a map", index);
    if (pairs > VDP_MAX_MAP_KEYS)
        return vdp_errorf(reason, rsize, VD_ELIMIT, "refs[%" PRIu32 "]: too many keys", index);
    bool have_sender = false, have_id = false;
    s_unknown_t unknown;
    unknown.count = 0;
    for (uint32_t k = 0; k < pairs; k++) {
        const char *key;
        uint32_t len;
        if (vdp_mp_read_str(mp, &key, &len) != VD_OK)
            return vdp_errorf(reason, rsize, VD_EPROTO, "refs[%" PRIu32 "]: key is not a string",
                              index);
        int rc;
        if (S_IS("sender")) {
            if (have_sender)
                return vdp_errorf(reason, rsize, VD_EPROTO,
                                  "refs[%" PRIu32 "]: repeated key 'sender'", index);
            have_sender = true;
            rc = s_read_string(mp, ref->sender, VDP_MAX_ORG, "refs.sender", reason, rsize);
        } else if (S_IS("id")) {
            if (have_id)
                return vdp_errorf(reason, rsize, VD_EPROTO, "refs[%" PRIu32 "]: repeated key 'id'",
                                  index);
            have_id = true;
            rc = s_read_id(mp, ref->id, "refs.id", reason, rsize);
        } else {
            if (!s_unknown_add(&unknown, key, len))
                return vdp_errorf(reason, rsize, VD_EPROTO, "refs[%" PRIu32 "]: repeated key",
                                  index);
            //  A ref map is the deepest level: only scalars below it
            rc = vdp_mp_skip(mp, S_ENV_DEPTH - 3);
            if (rc != VD_OK)
                return vdp_errorf(reason, rsize, rc, "refs[%" PRIu32 "]: bad value", index);
        }
        if (rc != VD_OK)
            return rc;
    }
    if (!have_sender || !have_id)
        return vdp_errorf(reason, rsize, VD_EFIELD, "refs[%" PRIu32 "]: missing %s", index,
                          have_sender ? "id" : "sender");
    return VD_OK;
}

static int
s_read_refs(vdp_envelope_t *self, vdp_mp_t *mp, char *reason, size_t rsize)
{
    uint32_t count;
    if (vdp_mp_read_array(mp, &count) != VD_OK)
        return vdp_errorf(reason, rsize, VD_EPROTO, "refs: expected an array");
    if (count > VDP_MAX_REFS)
        return vdp_errorf(reason, rsize, VD_ELIMIT, "refs: more than %u references", VDP_MAX_REFS);
    for (uint32_t i = 0; i < count; i++) {
        int rc = s_read_ref(&self->refs[i], mp, i, reason, rsize);
        if (rc != VD_OK)
            return rc;
    }
    self->refs_count = count;
    return VD_OK;
}

static int
s_read_field(vdp_envelope_t *self, s_field_t field, vdp_mp_t *mp, char *reason, size_t rsize)
{
    const char *name = s_field_names[field];
    const uint8_t *bin;
    uint32_t len;
    uint64_t u;
    int e = 0, rc;
    switch (field) {
    case F_V:
        if (vdp_mp_read_uint(mp, &u) != VD_OK)
            return vdp_errorf(reason, rsize, VD_EPROTO, "v: expected an unsigned integer");
        if (u != S_ENVELOPE_VERSION)
            return vdp_errorf(reason, rsize, VD_EFIELD, "v: unsupported envelope version %" PRIu64,
                              u);
        self->v = (uint32_t)u;
        return VD_OK;
    case F_ID:
        return s_read_id(mp, self->id, name, reason, rsize);
    case F_SENDER:
        return s_read_string(mp, self->sender, VDP_MAX_ORG, name, reason, rsize);
    case F_SENT:
        return s_read_time(mp, &self->sent, name, reason, rsize);
    case F_TOPIC:
        return s_read_string(mp, self->topic, VDP_MAX_TOPIC, name, reason, rsize);
    case F_CATEGORY:
        return s_read_string(mp, self->category, VDP_MAX_SHORT, name, reason, rsize);
    case F_CTYPE:
        return s_read_string(mp, self->ctype, VDP_MAX_SHORT, name, reason, rsize);
    case F_INCIDENT:
        return s_read_string(mp, self->incident, VDP_MAX_SHORT, name, reason, rsize);
    case F_LANG:
        return s_read_string(mp, self->lang, VDP_MAX_LANG, name, reason, rsize);
    case F_AWARE_AT:
        return s_read_time(mp, &self->aware_at, name, reason, rsize);
    case F_EXPIRES:
        return s_read_time(mp, &self->expires, name, reason, rsize);
    case F_ACK_BY:
        return s_read_time(mp, &self->ack_by, name, reason, rsize);
    case F_BODY:
        if (vdp_mp_read_bin(mp, &bin, &len) != VD_OK)
            return vdp_errorf(reason, rsize, VD_EPROTO, "body: expected bin");
        if (len > VDP_MAX_BODY)
            return vdp_errorf(reason, rsize, VD_ELIMIT, "body: over %u bytes", VDP_MAX_BODY);
        self->body = bin;
        self->body_len = len;
        return VD_OK;
    case F_SIG:
        if (vdp_mp_read_bin(mp, &bin, &len) != VD_OK)
            return vdp_errorf(reason, rsize, VD_EPROTO, "sig: expected bin");
        if (len > VDP_MAX_SIG)
            return vdp_errorf(reason, rsize, VD_ELIMIT, "sig: over %u bytes", VDP_MAX_SIG);
        if (len)
            memcpy(self->sig, bin, len);
        self->sig_len = len;
        return VD_OK;
    case F_TO:
        return s_read_to(self, mp, reason, rsize);
    case F_REFS:
        return s_read_refs(self, mp, reason, rsize);
    case F_KIND:
        rc = s_read_enum(mp, s_kind_names, S_COUNT(s_kind_names), &e, name, reason, rsize);
        self->kind = (vdp_kind_t)e;
        return rc;
    case F_STATUS:
        rc = s_read_enum(mp, s_status_names, S_COUNT(s_status_names), &e, name, reason, rsize);
        self->status = (vdp_status_t)e;
        return rc;
    case F_TLP:
        rc = s_read_enum(mp, s_tlp_names, S_COUNT(s_tlp_names), &e, name, reason, rsize);
        self->tlp = (vdp_tlp_t)e;
        return rc;
    case F_SEVERITY:
        rc = s_read_enum(mp, s_severity_names, S_COUNT(s_severity_names), &e, name, reason, rsize);
        self->severity = (vdp_severity_t)e;
        return rc;
    case F_STAGE:
        rc = s_read_enum(mp, s_stage_names, S_COUNT(s_stage_names), &e, name, reason, rsize);
        self->stage = (vdp_stage_t)e;
        return rc;
    case F_URGENCY:
        rc = s_read_enum(mp, s_urgency_names, S_COUNT(s_urgency_names), &e, name, reason, rsize);
        self->urgency = (vdp_urgency_t)e;
        return rc;
    case F_CERTAINTY:
        rc =
            s_read_enum(mp, s_certainty_names, S_COUNT(s_certainty_names), &e, name, reason, rsize);
        self->certainty = (vdp_certainty_t)e;
        return rc;
    case F_COUNT:
        break;
    }
    assert(!"unreachable field");
    return VD_EINVAL;
}

//  Reads the map at the cursor into `self`, recording the known keys seen in *seen.
static int
s_decode_map(vdp_envelope_t *self, vdp_mp_t *mp, uint32_t *seen, char *reason, size_t rsize)
{
    uint32_t pairs;
    if (vdp_mp_read_map(mp, &pairs) != VD_OK)
        return vdp_errorf(reason, rsize, VD_EPROTO, "envelope: not a msgpack map");
    if (pairs > VDP_MAX_MAP_KEYS)
        return vdp_errorf(reason, rsize, VD_ELIMIT, "envelope: more than %u keys",
                          VDP_MAX_MAP_KEYS);
    s_unknown_t unknown;
    unknown.count = 0;
    for (uint32_t i = 0; i < pairs; i++) {
        const char *key;
        uint32_t len;
        char quoted[32];
        if (vdp_mp_read_str(mp, &key, &len) != VD_OK)
            return vdp_errorf(reason, rsize, VD_EPROTO, "envelope: key is not a string");
        int field = s_field_index(key, len);
        if (field < 0) {
            if (!s_unknown_add(&unknown, key, len))
                return vdp_errorf(reason, rsize, VD_EPROTO, "envelope: repeated key '%s'",
                                  s_quote(key, len, quoted, sizeof quoted));
            int rc = vdp_mp_skip(mp, S_ENV_DEPTH - 1);
            if (rc != VD_OK)
                return vdp_errorf(reason, rsize, rc, "envelope: bad value under key '%s'",
                                  s_quote(key, len, quoted, sizeof quoted));
            continue;
        }
        if (*seen & S_BIT(field))
            return vdp_errorf(reason, rsize, VD_EPROTO, "envelope: repeated key '%s'",
                              s_field_names[field]);
        *seen |= S_BIT(field);
        int rc = s_read_field(self, (s_field_t)field, mp, reason, rsize);
        if (rc != VD_OK)
            return rc;
    }
    return VD_OK;
}

//  Required fields, then the rules decode and validate share.
static int
s_finish(const vdp_envelope_t *self, uint32_t seen, char *reason, size_t rsize)
{
    uint32_t missing = S_REQUIRED & ~seen;
    if (missing) {
        int field = __builtin_ctz(missing);
        return vdp_errorf(reason, rsize, VD_EFIELD, "missing field '%s'", s_field_names[field]);
    }
    return s_check(self, reason, rsize);
}

/*  After a failed decode: the id and sender, if present and valid, so that the broker can
    address its receipt and its log line. Walks the map again, stopping at the first problem.  */
static void
s_salvage(const uint8_t *data, size_t size, char id[VDP_ID_LEN + 1], char sender[VDP_MAX_ORG + 1])
{
    id[0] = sender[0] = '\0';
    vdp_mp_t mp;
    vdp_mp_init(&mp, data, size);
    uint32_t pairs;
    if (vdp_mp_read_map(&mp, &pairs) != VD_OK)
        return;
    for (uint32_t i = 0; i < pairs && i < VDP_MAX_MAP_KEYS; i++) {
        const char *key;
        uint32_t len;
        if (vdp_mp_read_str(&mp, &key, &len) != VD_OK)
            return;
        const size_t at = mp.pos;
        if (S_IS("id") && !id[0]) {
            if (s_read_id(&mp, id, "id", NULL, 0) != VD_OK || !vdp_uuid_valid(id))
                id[0] = '\0';
        } else if (S_IS("sender") && !sender[0]) {
            if (s_read_string(&mp, sender, VDP_MAX_ORG, "sender", NULL, 0) != VD_OK ||
                !vdp_org_valid(sender))
                sender[0] = '\0';
        }
        if (mp.pos != at)
            continue; // consumed: a string of the right type, valid or not
        if (vdp_mp_skip(&mp, S_ENV_DEPTH - 1) != VD_OK)
            return;
    }
}

//  Empties a half-decoded envelope, keeping only a valid id and sender (see the header).
static void
s_failed(vdp_envelope_t *self, const uint8_t *data, size_t size)
{
    memset(self, 0, sizeof *self);
    s_salvage(data, size, self->id, self->sender);
}

int
vdp_envelope_decode(
    vdp_envelope_t *self, const uint8_t *data, size_t size, char *reason, size_t reason_size)
{
    assert(self);
    vdp_envelope_reset(self);
    if (reason && reason_size)
        reason[0] = '\0';
    if (!data && size > 0)
        return vdp_errorf(reason, reason_size, VD_EINVAL, "envelope: no data");
    vdp_mp_t mp;
    vdp_mp_init(&mp, data, size);
    uint32_t seen = 0;
    int rc = s_decode_map(self, &mp, &seen, reason, reason_size);
    if (rc == VD_OK && vdp_mp_left(&mp) != 0)
        rc = vdp_errorf(reason, reason_size, VD_EPROTO, "envelope: trailing bytes after the map");
    if (rc == VD_OK) {
        self->raw = data;
        self->raw_len = size;
        rc = s_finish(self, seen, reason, reason_size);
    }
    if (rc != VD_OK)
        s_failed(self, data, size);
    return rc;
}

int
vdp_envelope_decode_at(vdp_envelope_t *self, vdp_mp_t *mp, char *reason, size_t reason_size)
{
    assert(self && mp);
    vdp_envelope_reset(self);
    if (reason && reason_size)
        reason[0] = '\0';
    const size_t start = mp->pos;
    uint32_t seen = 0;
    int rc = s_decode_map(self, mp, &seen, reason, reason_size);
    if (rc == VD_OK) {
        self->raw = mp->data + start;
        self->raw_len = mp->pos - start;
        rc = s_finish(self, seen, reason, reason_size);
    }
    if (rc != VD_OK)
        s_failed(self, mp->data + start, mp->size - start);
    return rc;
}

int
vdp_envelope_validate(const vdp_envelope_t *self, char *reason, size_t reason_size)
{
    if (reason && reason_size)
        reason[0] = '\0';
    if (!self)
        return vdp_errorf(reason, reason_size, VD_EINVAL, "no envelope");
    return s_check(self, reason, reason_size);
}

//  ---------------------------------------------------------------------------------------------
//  Encoding

static int
s_pack_key(msgpack_packer *pk, s_field_t field)
{
    const char *name = s_field_names[field];
    return msgpack_pack_str_with_body(pk, name, strlen(name));
}

//  A NUL-terminated string held in a fixed array of `size` bytes.
static int
s_pack_str(msgpack_packer *pk, const char *str, size_t size)
{
    size_t len = strnlen(str, size);
    int rc = msgpack_pack_str(pk, len);
    if (rc == 0 && len)
        rc = msgpack_pack_str_body(pk, str, len);
    return rc;
}

static int
s_pack_bin(msgpack_packer *pk, const void *data, size_t len)
{
    int rc = msgpack_pack_bin(pk, len);
    if (rc == 0 && len)
        rc = msgpack_pack_bin_body(pk, data, len);
    return rc;
}

#define S_PRESENT_STR(arr) ((arr)[0] != '\0')

//  Whether a field is present in the struct, i.e. gets encoded.
static bool
s_present(const vdp_envelope_t *self, s_field_t field)
{
    switch (field) {
    case F_V:
        return self->v != 0;
    case F_ID:
        return S_PRESENT_STR(self->id);
    case F_SENDER:
        return S_PRESENT_STR(self->sender);
    case F_SENT:
        return self->sent != 0;
    case F_TOPIC:
        return S_PRESENT_STR(self->topic);
    case F_KIND:
        return vdp_kind_name(self->kind) != NULL;
    case F_STATUS:
        return vdp_status_name(self->status) != NULL;
    case F_TLP:
        return vdp_tlp_name(self->tlp) != NULL;
    case F_CATEGORY:
        return S_PRESENT_STR(self->category);
    case F_SEVERITY:
        return vdp_severity_name(self->severity) != NULL;
    case F_CTYPE:
        return S_PRESENT_STR(self->ctype);
    case F_BODY:
        return true; // required: an absent body is sent empty
    case F_SIG:
        return self->sig_len > 0;
    case F_TO:
        return self->to_count > 0;
    case F_REFS:
        return self->refs_count > 0;
    case F_INCIDENT:
        return S_PRESENT_STR(self->incident);
    case F_STAGE:
        return vdp_stage_name(self->stage) != NULL;
    case F_AWARE_AT:
        return self->aware_at != 0;
    case F_EXPIRES:
        return self->expires != 0;
    case F_ACK_BY:
        return self->ack_by != 0;
    case F_URGENCY:
        return vdp_urgency_name(self->urgency) != NULL;
    case F_CERTAINTY:
        return vdp_certainty_name(self->certainty) != NULL;
    case F_LANG:
        return S_PRESENT_STR(self->lang);
    case F_COUNT:
        break;
    }
    return false;
}

static int
s_pack_enum(msgpack_packer *pk, const char *name)
{
    return msgpack_pack_str_with_body(pk, name, strlen(name));
}

static int
s_pack_value(const vdp_envelope_t *self, s_field_t field, msgpack_packer *pk)
{
    int rc = 0;
    switch (field) {
    case F_V:
        return msgpack_pack_uint32(pk, self->v);
    case F_ID:
        return s_pack_str(pk, self->id, sizeof self->id);
    case F_SENDER:
        return s_pack_str(pk, self->sender, sizeof self->sender);
    case F_SENT:
        return msgpack_pack_int64(pk, self->sent);
    case F_TOPIC:
        return s_pack_str(pk, self->topic, sizeof self->topic);
    case F_KIND:
        return s_pack_enum(pk, vdp_kind_name(self->kind));
    case F_STATUS:
        return s_pack_enum(pk, vdp_status_name(self->status));
    case F_TLP:
        return s_pack_enum(pk, vdp_tlp_name(self->tlp));
    case F_CATEGORY:
        return s_pack_str(pk, self->category, sizeof self->category);
    case F_SEVERITY:
        return s_pack_enum(pk, vdp_severity_name(self->severity));
    case F_CTYPE:
        return s_pack_str(pk, self->ctype, sizeof self->ctype);
    case F_BODY:
        return s_pack_bin(pk, self->body, self->body ? self->body_len : 0);
    case F_SIG:
        return s_pack_bin(pk, self->sig, self->sig_len < VDP_MAX_SIG ? self->sig_len : VDP_MAX_SIG);
    case F_TO: {
        size_t n = self->to_count < VDP_MAX_TO ? self->to_count : VDP_MAX_TO;
        rc |= msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++)
            rc |= s_pack_str(pk, self->to[i], sizeof self->to[i]);
        return rc;
    }
    case F_REFS: {
        size_t n = self->refs_count < VDP_MAX_REFS ? self->refs_count : VDP_MAX_REFS;
        rc |= msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++) {
            rc |= msgpack_pack_map(pk, 2);
            rc |= msgpack_pack_str_with_body(pk, "sender", 6);
            rc |= s_pack_str(pk, self->refs[i].sender, sizeof self->refs[i].sender);
            rc |= msgpack_pack_str_with_body(pk, "id", 2);
            rc |= s_pack_str(pk, self->refs[i].id, sizeof self->refs[i].id);
        }
        return rc;
    }
    case F_INCIDENT:
        return s_pack_str(pk, self->incident, sizeof self->incident);
    case F_STAGE:
        return s_pack_enum(pk, vdp_stage_name(self->stage));
    case F_AWARE_AT:
        return msgpack_pack_int64(pk, self->aware_at);
    case F_EXPIRES:
        return msgpack_pack_int64(pk, self->expires);
    case F_ACK_BY:
        return msgpack_pack_int64(pk, self->ack_by);
    case F_URGENCY:
        return s_pack_enum(pk, vdp_urgency_name(self->urgency));
    case F_CERTAINTY:
        return s_pack_enum(pk, vdp_certainty_name(self->certainty));
    case F_LANG:
        return s_pack_str(pk, self->lang, sizeof self->lang);
    case F_COUNT:
        break;
    }
    assert(!"unreachable field");
    return -1;
}

/*  Packs the present fields in canonical order. With `body_hash`, the form a signature covers
    (PROTOCOL.md §4.6): no `sig`, and the body's hash in place of the body.  */
static int
s_pack(const vdp_envelope_t *self, msgpack_packer *pk, const uint8_t *body_hash)
{
    size_t count = 0;
    for (int f = 0; f < F_COUNT; f++)
        count += s_present(self, (s_field_t)f) && !(body_hash && f == F_SIG);
    int rc = msgpack_pack_map(pk, count);
    for (int f = 0; f < F_COUNT && rc == 0; f++) {
        if (!s_present(self, (s_field_t)f) || (body_hash && f == F_SIG))
            continue;
        rc |= s_pack_key(pk, (s_field_t)f);
        if (body_hash && f == F_BODY)
            rc |= s_pack_bin(pk, body_hash, VDP_BODY_HASH_BYTES);
        else
            rc |= s_pack_value(self, (s_field_t)f, pk);
    }
    return rc == 0 ? VD_OK : VD_ENOMEM;
}

int
vdp_envelope_pack(const vdp_envelope_t *self, struct msgpack_packer *pk)
{
    assert(self && pk);
    return s_pack(self, pk, NULL);
}

int
vdp_envelope_pack_signed(const vdp_envelope_t *self,
                         struct msgpack_packer *pk,
                         const uint8_t body_hash[VDP_BODY_HASH_BYTES])
{
    assert(self && pk && body_hash);
    return s_pack(self, pk, body_hash);
}

typedef struct {
    uint8_t *data;
    size_t size;
    size_t capacity;
} s_buffer_t;

static int
s_buffer_write(void *data, const char *buf, size_t len)
{
    s_buffer_t *self = data;
    if (len == 0)
        return 0;
    if (vdp_mp_grow(&self->data, &self->capacity, self->size, len, 256) != VD_OK)
        return -1;
    memcpy(self->data + self->size, buf, len);
    self->size += len;
    return 0;
}

int
vdp_envelope_encode(const vdp_envelope_t *self, uint8_t **data_p, size_t *size_p)
{
    assert(self && data_p && size_p);
    //  Sized up front for the common case: the header fields plus the body
    s_buffer_t buffer = { .data = NULL, .size = 0, .capacity = 0 };
    size_t guess = 512 + (self->body ? self->body_len : 0);
    if (vdp_mp_grow(&buffer.data, &buffer.capacity, 0, guess, guess) != VD_OK)
        return VD_ENOMEM;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buffer, s_buffer_write);
    if (vdp_envelope_pack(self, &pk) != VD_OK) {
        free(buffer.data);
        return VD_ENOMEM;
    }
    *data_p = buffer.data;
    *size_p = buffer.size;
    return VD_OK;
}

//  ---------------------------------------------------------------------------------------------
//  Comparison and ownership

static bool
s_same_str(const char *a, const char *b, size_t size)
{
    return strncmp(a, b, size) == 0;
}

#define S_SAME_STR(field) s_same_str(a->field, b->field, sizeof a->field)

bool
vdp_envelope_same(const vdp_envelope_t *a, const vdp_envelope_t *b)
{
    assert(a && b);
    if (a->v != b->v || a->sent != b->sent || a->kind != b->kind || a->status != b->status ||
        a->tlp != b->tlp || a->severity != b->severity || a->stage != b->stage ||
        a->aware_at != b->aware_at || a->expires != b->expires || a->ack_by != b->ack_by ||
        a->urgency != b->urgency || a->certainty != b->certainty)
        return false;
    if (!S_SAME_STR(id) || !S_SAME_STR(sender) || !S_SAME_STR(topic) || !S_SAME_STR(category) ||
        !S_SAME_STR(ctype) || !S_SAME_STR(incident) || !S_SAME_STR(lang))
        return false;
    if (a->body_len != b->body_len || (a->body_len && memcmp(a->body, b->body, a->body_len) != 0))
        return false;
    if (a->sig_len != b->sig_len || a->sig_len > VDP_MAX_SIG ||
        memcmp(a->sig, b->sig, a->sig_len) != 0)
        return false;
    if (a->to_count != b->to_count || a->to_count > VDP_MAX_TO)
        return false;
    for (size_t i = 0; i < a->to_count; i++)
        if (!S_SAME_STR(to[i]))
            return false;
    if (a->refs_count != b->refs_count || a->refs_count > VDP_MAX_REFS)
        return false;
    for (size_t i = 0; i < a->refs_count; i++)
        if (!S_SAME_STR(refs[i].sender) || !S_SAME_STR(refs[i].id))
            return false;
    return true;
}

void
vdp_envelope_reset(vdp_envelope_t *self)
{
    assert(self);
    free(self->owned_body);
    free(self->owned_raw);
    memset(self, 0, sizeof *self);
}

//  True if `p` points inside [base, base + len).
static bool
s_inside(const uint8_t *p, const uint8_t *base, size_t len)
{
    return p && base && (uintptr_t)p >= (uintptr_t)base && (uintptr_t)p - (uintptr_t)base < len;
}

int
vdp_envelope_own(vdp_envelope_t *self)
{
    assert(self);
    bool copy_raw = self->raw && self->raw != self->owned_raw;
    bool body_in_raw =
        copy_raw && self->body_len > 0 && s_inside(self->body, self->raw, self->raw_len);
    bool copy_body = self->body_len > 0 && self->body != self->owned_body && !body_in_raw &&
                     !s_inside(self->body, self->owned_raw, self->raw_len);
    //  Allocate everything first, so that a failure leaves the envelope as it was
    uint8_t *raw = NULL, *body = NULL;
    if (copy_raw && !(raw = malloc(self->raw_len ? self->raw_len : 1)))
        return VD_ENOMEM;
    if (copy_body && !(body = malloc(self->body_len))) {
        free(raw);
        return VD_ENOMEM;
    }
    if (copy_raw) {
        memcpy(raw, self->raw, self->raw_len);
        if (body_in_raw)
            self->body = raw + (self->body - self->raw);
        free(self->owned_raw);
        self->owned_raw = raw;
        self->raw = raw;
    }
    if (copy_body) {
        memcpy(body, self->body, self->body_len);
        free(self->owned_body);
        self->owned_body = body;
        self->body = body;
    }
    if (self->body_len == 0 && self->body != self->owned_body)
        self->body = NULL; // never keep a borrowed pointer, even to nothing
    return VD_OK;
}

int
vdp_envelope_drop_raw(vdp_envelope_t *self)
{
    assert(self);
    if (self->body_len > 0 && self->body != self->owned_body &&
        s_inside(self->body, self->raw, self->raw_len)) {
        uint8_t *body = malloc(self->body_len);
        if (!body)
            return VD_ENOMEM;
        memcpy(body, self->body, self->body_len);
        free(self->owned_body);
        self->owned_body = body;
        self->body = body;
    }
    free(self->owned_raw);
    self->owned_raw = NULL;
    self->raw = NULL;
    self->raw_len = 0;
    return VD_OK;
}

int
vdp_envelope_set_body(vdp_envelope_t *self, const void *data, size_t size)
{
    assert(self);
    if (!data && size > 0)
        return VD_EINVAL;
    if (size > VDP_MAX_BODY)
        return VD_ELIMIT;
    uint8_t *body = NULL;
    if (size > 0) {
        body = malloc(size);
        if (!body)
            return VD_ENOMEM;
        memcpy(body, data, size);
    }
    free(self->owned_body);
    self->owned_body = body;
    self->body = body;
    self->body_len = size;
    //  The old body may have lived inside the raw bytes; they no longer describe the envelope
    free(self->owned_raw);
    self->owned_raw = NULL;
    self->raw = NULL;
    self->raw_len = 0;
    return VD_OK;
}

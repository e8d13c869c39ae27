/*  vd_envelope: the public face of one envelope (include/vedetta.h) over the codec's
    vdp_envelope_t, and its JSON form for command-line tools and SIEMs.

    Invariants: every setter validates before it writes, so a failed call leaves the envelope
    unchanged; every successful setter drops `raw` (the exact bytes as received) first, because
    vdp_writer_pub() sends `raw` in preference to the fields and a stale copy would silently
    undo the change. Field names are the wire names of PROTOCOL.md §4.  */

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "vedetta.h"
#include "vdp_envelope.h"
#include "vdp_ids.h"
#include "vdp_topic.h"
#include "vd_client_internal.h"

vd_envelope_t *
vd_envelope_new(void)
{
    vd_envelope_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->v = VD_ENVELOPE_VERSION;
    return self;
}

void
vd_envelope_destroy(vd_envelope_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vd_envelope_t *self = *self_p;
    //  What vdp_envelope_reset() frees, without zeroing 5 KiB that is about to be freed: one
    //  envelope is built or received per message.
    free(self->owned_body);
    free(self->owned_raw);
    free(self);
    *self_p = NULL;
}

//  True if `s` holds no control characters (free text fields travel to logs and consoles).
static bool
s_printable(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return false;
    }
    return true;
}

//  Copies a free-text field of at most `cap` bytes; "" clears it.
static int
s_set_text(vd_envelope_t *self, char *dest, size_t cap, const char *value)
{
    size_t len = strlen(value);
    if (len > cap)
        return VD_ELIMIT;
    if (!s_printable(value))
        return VD_EINVAL;
    int rc = vdp_envelope_drop_raw(self);
    if (rc == VD_OK)
        memcpy(dest, value, len + 1);
    return rc;
}

//  Sets an enum field from its wire name; "" clears it (value 0 is *_NONE in every enum).
#define S_SET_ENUM(self, field, from_name, value)                                                  \
    do {                                                                                           \
        int parsed_ = *(value) ? (int)from_name(value) : 0;                                        \
        if (*(value) && parsed_ == 0)                                                              \
            return VD_EINVAL;                                                                      \
        int rc_ = vdp_envelope_drop_raw(self);                                                     \
        if (rc_ == VD_OK)                                                                          \
            (self)->field = parsed_;                                                               \
        return rc_;                                                                                \
    } while (0)

static int
s_add_to(vd_envelope_t *self, const char *org)
{
    if (!vdp_org_valid(org))
        return VD_EINVAL;
    for (size_t i = 0; i < self->to_count; i++) {
        if (strcmp(self->to[i], org) == 0)
            return VD_OK; // a recipient listed twice is still one recipient
    }
    if (self->to_count >= VDP_MAX_TO)
        return VD_ELIMIT;
    int rc = vdp_envelope_drop_raw(self);
    if (rc == VD_OK)
        strcpy(self->to[self->to_count++], org); // vdp_org_valid bounds it by VDP_MAX_ORG
    return rc;
}

//  "sender/id": the org id never contains '/', so the first '/' splits.
static int
s_add_ref(vd_envelope_t *self, const char *value)
{
    const char *slash = strchr(value, '/');
    if (!slash || (size_t)(slash - value) > VDP_MAX_ORG)
        return VD_EINVAL;
    char sender[VDP_MAX_ORG + 1];
    memcpy(sender, value, (size_t)(slash - value));
    sender[slash - value] = '\0';
    const char *id = slash + 1;
    if (!vdp_org_valid(sender) || !vdp_uuid_valid(id))
        return VD_EINVAL;
    if (self->refs_count >= VDP_MAX_REFS)
        return VD_ELIMIT;
    int rc = vdp_envelope_drop_raw(self);
    if (rc != VD_OK)
        return rc;
    vdp_ref_t *ref = &self->refs[self->refs_count++];
    strcpy(ref->sender, sender);
    strcpy(ref->id, id);
    return VD_OK;
}

int
vd_envelope_set(vd_envelope_t *self, const char *field, const char *value)
{
    if (!self || !field || !value)
        return VD_EINVAL;
    if (strcmp(field, "to") == 0)
        return s_add_to(self, value);
    if (strcmp(field, "refs") == 0)
        return s_add_ref(self, value);
    if (strcmp(field, "id") == 0) {
        if (*value && !vdp_uuid_valid(value))
            return VD_EINVAL;
        return s_set_text(self, self->id, VDP_ID_LEN, value);
    }
    if (strcmp(field, "sender") == 0) {
        if (*value && !vdp_org_valid(value))
            return VD_EINVAL;
        return s_set_text(self, self->sender, VDP_MAX_ORG, value);
    }
    if (strcmp(field, "topic") == 0) {
        if (strlen(value) > VDP_MAX_TOPIC)
            return VD_ELIMIT;
        if (*value && !vdp_topic_valid(value))
            return VD_EINVAL;
        return s_set_text(self, self->topic, VDP_MAX_TOPIC, value);
    }
    if (strcmp(field, "category") == 0)
        return s_set_text(self, self->category, VDP_MAX_SHORT, value);
    if (strcmp(field, "ctype") == 0)
        return s_set_text(self, self->ctype, VDP_MAX_SHORT, value);
    if (strcmp(field, "incident") == 0)
        return s_set_text(self, self->incident, VDP_MAX_SHORT, value);
    if (strcmp(field, "lang") == 0)
        return s_set_text(self, self->lang, VDP_MAX_LANG, value);
    if (strcmp(field, "kind") == 0)
        S_SET_ENUM(self, kind, vdp_kind_from_name, value);
    if (strcmp(field, "status") == 0)
        S_SET_ENUM(self, status, vdp_status_from_name, value);
    if (strcmp(field, "tlp") == 0)
        S_SET_ENUM(self, tlp, vdp_tlp_from_name, value);
    if (strcmp(field, "severity") == 0)
        S_SET_ENUM(self, severity, vdp_severity_from_name, value);
    if (strcmp(field, "stage") == 0)
        S_SET_ENUM(self, stage, vdp_stage_from_name, value);
    if (strcmp(field, "urgency") == 0)
        S_SET_ENUM(self, urgency, vdp_urgency_from_name, value);
    if (strcmp(field, "certainty") == 0)
        S_SET_ENUM(self, certainty, vdp_certainty_from_name, value);
    return VD_EINVAL;
}

//  The time field called `field`, or NULL. `accepted_at` is readable, not settable.
static int64_t *
s_time_field(vd_envelope_t *self, const char *field, bool for_write)
{
    if (strcmp(field, "sent") == 0)
        return &self->sent;
    if (strcmp(field, "aware_at") == 0)
        return &self->aware_at;
    if (strcmp(field, "expires") == 0)
        return &self->expires;
    if (strcmp(field, "ack_by") == 0)
        return &self->ack_by;
    if (!for_write && strcmp(field, "accepted_at") == 0)
        return &self->accepted_at;
    return NULL;
}

int
vd_envelope_set_time(vd_envelope_t *self, const char *field, int64_t ms)
{
    if (!self || !field || ms < 0)
        return VD_EINVAL;
    int64_t *slot = s_time_field(self, field, true);
    if (!slot)
        return VD_EINVAL;
    int rc = vdp_envelope_drop_raw(self);
    if (rc == VD_OK)
        *slot = ms;
    return rc;
}

int
vd_envelope_set_body(vd_envelope_t *self, const void *data, size_t size)
{
    if (!self || (!data && size > 0))
        return VD_EINVAL;
    if (size > VDP_MAX_BODY)
        return VD_ELIMIT;
    return vdp_envelope_set_body(self, data, size); // drops the stale raw bytes itself
}

//  An empty string field reads as absent.
static const char *
s_or_null(const char *s)
{
    return *s ? s : NULL;
}

const char *
vd_envelope_get(const vd_envelope_t *self, const char *field)
{
    if (!self || !field)
        return NULL;
    if (strcmp(field, "id") == 0)
        return s_or_null(self->id);
    if (strcmp(field, "sender") == 0)
        return s_or_null(self->sender);
    if (strcmp(field, "topic") == 0)
        return s_or_null(self->topic);
    if (strcmp(field, "category") == 0)
        return s_or_null(self->category);
    if (strcmp(field, "ctype") == 0)
        return s_or_null(self->ctype);
    if (strcmp(field, "incident") == 0)
        return s_or_null(self->incident);
    if (strcmp(field, "lang") == 0)
        return s_or_null(self->lang);
    if (strcmp(field, "subscription") == 0)
        return s_or_null(self->subscription);
    if (strcmp(field, "durable") == 0)
        return s_or_null(self->durable);
    if (strcmp(field, "kind") == 0)
        return vdp_kind_name(self->kind);
    if (strcmp(field, "status") == 0)
        return vdp_status_name(self->status);
    if (strcmp(field, "tlp") == 0)
        return vdp_tlp_name(self->tlp);
    if (strcmp(field, "severity") == 0)
        return vdp_severity_name(self->severity);
    if (strcmp(field, "stage") == 0)
        return vdp_stage_name(self->stage);
    if (strcmp(field, "urgency") == 0)
        return vdp_urgency_name(self->urgency);
    if (strcmp(field, "certainty") == 0)
        return vdp_certainty_name(self->certainty);
    return NULL;
}

int64_t
vd_envelope_get_time(const vd_envelope_t *self, const char *field)
{
    if (!self || !field)
        return 0;
    //  s_time_field only hands out a pointer; reading through it keeps `self` const.
    int64_t *slot = s_time_field((vd_envelope_t *)self, field, false);
    return slot ? *slot : 0;
}

const void *
vd_envelope_body(const vd_envelope_t *self, size_t *size)
{
    if (!self) {
        if (size)
            *size = 0;
        return NULL;
    }
    if (size)
        *size = self->body_len;
    return self->body;
}

size_t
vd_envelope_to_count(const vd_envelope_t *self)
{
    return self ? self->to_count : 0;
}

const char *
vd_envelope_to(const vd_envelope_t *self, size_t index)
{
    if (!self || index >= self->to_count)
        return NULL;
    return self->to[index];
}

size_t
vd_envelope_refs_count(const vd_envelope_t *self)
{
    return self ? self->refs_count : 0;
}

int
vd_envelope_ref(const vd_envelope_t *self, size_t index, const char **sender, const char **id)
{
    if (!self || index >= self->refs_count)
        return VD_EINVAL;
    if (sender)
        *sender = self->refs[index].sender;
    if (id)
        *id = self->refs[index].id;
    return VD_OK;
}

uint64_t
vd_envelope_seq(const vd_envelope_t *self)
{
    return self ? self->seq : 0;
}

int64_t
vd_envelope_accepted_at(const vd_envelope_t *self)
{
    return self ? self->accepted_at : 0;
}

const char *
vd_envelope_subscription(const vd_envelope_t *self)
{
    return self ? s_or_null(self->subscription) : NULL;
}

const char *
vd_envelope_durable(const vd_envelope_t *self)
{
    return self ? s_or_null(self->durable) : NULL;
}

const char *
vd_receipt_status_name(vd_receipt_status_t status)
{
    switch (status) {
    case VD_RECEIPT_ACCEPTED:
        return "accepted";
    case VD_RECEIPT_DUPLICATE:
        return "duplicate";
    case VD_RECEIPT_REJECTED:
        return "rejected";
    }
    return "unknown";
}

/*  -------------------------------------------------------------------------------------------
    JSON  */

bool
vd_utf8_valid(const uint8_t *data, size_t size)
{
    //  Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
    size_t i = 0;
    while (i < size) {
        uint8_t c = data[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t extra;
        uint32_t min;
        uint32_t cp;
        if ((c & 0xe0) == 0xc0) {
            extra = 1, min = 0x80, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2, min = 0x800, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3, min = 0x10000, cp = c & 0x07;
        } else {
            return false;
        }
        if (size - i <= extra)
            return false;
        for (size_t k = 1; k <= extra; k++) {
            uint8_t cc = data[i + k];
            if ((cc & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += extra + 1;
    }
    return true;
}

int
vd_iso8601(int64_t ms, char *out, size_t size)
{
    if (ms < 0 || size < VD_ISO8601_SIZE)
        return VD_EINVAL;
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm) || tm.tm_year + 1900 > 9999)
        return VD_EINVAL;
    int n = snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return n > 0 && (size_t)n < size ? VD_OK : VD_EINVAL;
}

//  True if `text` starts with `shape`, where each '9' of `shape` stands for one ASCII digit.
static bool
s_has_shape(const char *text, const char *shape)
{
    for (; *shape; shape++, text++) {
        bool digit = *text >= '0' && *text <= '9';
        if (*shape == '9' ? !digit : *text != *shape)
            return false;
    }
    return true;
}

//  The milliseconds of an ISO-8601 fraction (".5" is 500) followed by "Z" and nothing else.
static bool
s_parse_fraction_z(const char *text, int *millis)
{
    *millis = 0;
    if (*text == '.') {
        int digits = 0;
        for (text++; digits < 3 && *text >= '0' && *text <= '9'; text++, digits++)
            *millis = *millis * 10 + (*text - '0');
        if (digits == 0)
            return false;
        for (; digits < 3; digits++)
            *millis *= 10;
    }
    return strcmp(text, "Z") == 0;
}

int
vd_iso8601_parse(const char *text, int64_t *ms)
{
    static const char shape[] = "9999-99-99T99:99:99";
    struct tm tm = { 0 };
    int millis;
    if (!text || !ms || !s_has_shape(text, shape) ||
        !s_parse_fraction_z(text + sizeof shape - 1, &millis))
        return VD_EINVAL;
    if (sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        return VD_EINVAL;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    struct tm wanted = tm;
    time_t secs = timegm(&tm);
    //  timegm() normalises February 30th into March: a date that changed did not exist.
    if (secs < 0 || tm.tm_year != wanted.tm_year || tm.tm_mon != wanted.tm_mon ||
        tm.tm_mday != wanted.tm_mday || tm.tm_hour != wanted.tm_hour ||
        tm.tm_min != wanted.tm_min || tm.tm_sec != wanted.tm_sec)
        return VD_EINVAL;
    *ms = (int64_t)secs * 1000 + millis;
    return VD_OK;
}

//  Each s_put_* returns 0 on success, -1 if jansson ran out of memory.
static int
s_put_str(json_t *obj, const char *key, const char *value)
{
    if (!value || !*value)
        return 0;
    return json_object_set_new(obj, key, json_string(value));
}

static int
s_put_int(json_t *obj, const char *key, int64_t value)
{
    if (value == 0)
        return 0;
    return json_object_set_new(obj, key, json_integer((json_int_t)value));
}

static int
s_put_time(json_t *obj, const char *key, const char *iso_key, int64_t ms)
{
    if (ms == 0)
        return 0;
    if (s_put_int(obj, key, ms))
        return -1;
    char iso[VD_ISO8601_SIZE];
    if (!iso_key || vd_iso8601(ms, iso, sizeof iso) != VD_OK)
        return 0;
    return s_put_str(obj, iso_key, iso);
}

static int
s_put_body(json_t *obj, const vd_envelope_t *self)
{
    const uint8_t *body = self->body ? self->body : (const uint8_t *)"";
    if (vd_utf8_valid(body, self->body_len))
        return json_object_set_new(obj, "body", json_stringn((const char *)body, self->body_len));
    size_t b64_size = sodium_base64_encoded_len(self->body_len, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc(b64_size);
    if (!b64)
        return -1;
    sodium_bin2base64(b64, b64_size, body, self->body_len, sodium_base64_VARIANT_ORIGINAL);
    int rc = json_object_set_new(obj, "body_b64", json_string(b64));
    free(b64);
    return rc;
}

static int
s_put_lists(json_t *obj, const vd_envelope_t *self)
{
    if (self->to_count > 0) {
        json_t *to = json_array();
        if (json_object_set_new(obj, "to", to))
            return -1;
        for (size_t i = 0; i < self->to_count; i++) {
            if (json_array_append_new(to, json_string(self->to[i])))
                return -1;
        }
    }
    if (self->refs_count > 0) {
        json_t *refs = json_array();
        if (json_object_set_new(obj, "refs", refs))
            return -1;
        for (size_t i = 0; i < self->refs_count; i++) {
            json_t *ref =
                json_pack("{s:s, s:s}", "sender", self->refs[i].sender, "id", self->refs[i].id);
            if (json_array_append_new(refs, ref))
                return -1;
        }
    }
    if (self->via_count > 0) {
        json_t *via = json_array();
        if (json_object_set_new(obj, "via", via))
            return -1;
        for (size_t i = 0; i < self->via_count; i++) {
            if (json_array_append_new(via, json_string(self->via[i])))
                return -1;
        }
    }
    return 0;
}

char *
vd_envelope_to_json(const vd_envelope_t *self)
{
    if (!self)
        return NULL;
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    //  Wire order (PROTOCOL.md §4), broker stamps after the header, body last: easy to read.
    int failed = 0;
    failed |= s_put_int(obj, "v", self->v);
    failed |= s_put_str(obj, "id", self->id);
    failed |= s_put_str(obj, "sender", self->sender);
    failed |= s_put_time(obj, "sent", "sent_iso", self->sent);
    failed |= s_put_str(obj, "topic", self->topic);
    failed |= s_put_str(obj, "kind", vdp_kind_name(self->kind));
    failed |= s_put_str(obj, "status", vdp_status_name(self->status));
    failed |= s_put_str(obj, "tlp", vdp_tlp_name(self->tlp));
    failed |= s_put_str(obj, "category", self->category);
    failed |= s_put_str(obj, "severity", vdp_severity_name(self->severity));
    failed |= s_put_str(obj, "ctype", self->ctype);
    failed |= s_put_lists(obj, self);
    failed |= s_put_str(obj, "incident", self->incident);
    failed |= s_put_str(obj, "stage", vdp_stage_name(self->stage));
    failed |= s_put_time(obj, "aware_at", NULL, self->aware_at);
    failed |= s_put_time(obj, "expires", NULL, self->expires);
    failed |= s_put_time(obj, "ack_by", NULL, self->ack_by);
    failed |= s_put_str(obj, "urgency", vdp_urgency_name(self->urgency));
    failed |= s_put_str(obj, "certainty", vdp_certainty_name(self->certainty));
    failed |= s_put_str(obj, "lang", self->lang);
    if (self->seq > 0)
        failed |= json_object_set_new(obj, "seq", json_integer((json_int_t)self->seq));
    failed |= s_put_time(obj, "accepted_at", "accepted_at_iso", self->accepted_at);
    failed |= s_put_str(obj, "subscription", self->subscription);
    failed |= s_put_body(obj, self);
    char *text = failed ? NULL : json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    return text;
}

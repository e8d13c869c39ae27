/*  Tests of vdp_envelope: enum names, encode/decode round trips, the total decoder against
    truncations and a table of malformed maps, validation of built structs, ownership.  */
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "suites.h"
#include "vedetta.h"
#include "vdp_envelope.h"
#include "vdp_mp.h"

#define ID1 "0f8fad5b-d9cb-469f-a165-70867728950e"
#define ID2 "7c9e6679-7425-40de-944b-e07fc1f90ae7"
#define ID3 "16fd2706-8baf-433b-82eb-8c7fada847da"

//  ---------------------------------------------------------------------------------------------
//  Helpers: a growable buffer behind a msgpack packer

typedef struct {
    uint8_t *data;
    size_t size;
    size_t capacity;
} buf_t;

static int
buf_write(void *data, const char *bytes, size_t len)
{
    buf_t *self = data;
    if (len == 0)
        return 0;
    ck_assert_int_eq(vdp_mp_grow(&self->data, &self->capacity, self->size, len, 64), VD_OK);
    memcpy(self->data + self->size, bytes, len);
    self->size += len;
    return 0;
}

static void
pack_cstr(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void
pack_raw(msgpack_packer *pk, const void *bytes, size_t len)
{
    pk->callback(pk->data, bytes, len);
}

//  An exact-size heap copy, so that any read past the end is caught by ASan.
static uint8_t *
dup_bytes(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    ck_assert_ptr_nonnull(copy);
    if (size)
        memcpy(copy, data, size);
    return copy;
}

static int
decode_copy(vdp_envelope_t *env, const uint8_t *data, size_t size, char *reason, size_t rsize)
{
    uint8_t *copy = dup_bytes(data, size);
    int rc = vdp_envelope_decode(env, copy, size, reason, rsize);
    if (rc == VD_OK)
        ck_assert_int_eq(vdp_envelope_own(env), VD_OK);
    free(copy);
    return rc;
}

static const uint8_t s_body[] = "<alert>CAP body with a \0 NUL and bytes \xff\xfe</alert>";
static const uint8_t s_sig[64] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, [63] = 0xee };

//  An envelope with every field set, valid.
static void
fill_full(vdp_envelope_t *e)
{
    memset(e, 0, sizeof *e);
    e->v = 1;
    strcpy(e->id, ID1);
    strcpy(e->sender, "cosc:toscana");
    e->sent = 1718000000123;
    strcpy(e->topic, "inbox");
    e->kind = VDP_KIND_UPDATE;
    e->status = VDP_STATUS_EXERCISE;
    e->tlp = VDP_TLP_AMBER_STRICT;
    strcpy(e->category, "intrusions");
    e->severity = VDP_SEVERITY_SEVERE;
    strcpy(e->ctype, "application/stix+json;version=2.1");
    e->body = s_body;
    e->body_len = sizeof s_body - 1;
    memcpy(e->sig, s_sig, sizeof s_sig);
    e->sig_len = sizeof s_sig;
    strcpy(e->to[0], "comune:i726");
    strcpy(e->to[1], "cnaipic");
    e->to_count = 2;
    strcpy(e->refs[0].sender, "cosc:toscana");
    strcpy(e->refs[0].id, ID2);
    strcpy(e->refs[1].sender, "comune:i726");
    strcpy(e->refs[1].id, ID3);
    e->refs_count = 2;
    strcpy(e->incident, "INC-2024-0042");
    e->stage = VDP_STAGE_NOTIFICATION;
    e->aware_at = 1717990000000;
    e->expires = 1718600000000;
    e->ack_by = 1718086400000;
    e->urgency = VDP_URGENCY_IMMEDIATE;
    e->certainty = VDP_CERTAINTY_LIKELY;
    strcpy(e->lang, "it");
}

//  The smallest valid envelope: required fields only, empty body.
static void
fill_minimal(vdp_envelope_t *e)
{
    memset(e, 0, sizeof *e);
    e->v = 1;
    strcpy(e->id, ID1);
    strcpy(e->sender, "comune:i726");
    e->sent = 1;
    strcpy(e->topic, "alert.toscana.i726");
    e->kind = VDP_KIND_ALERT;
    e->status = VDP_STATUS_ACTUAL;
    e->tlp = VDP_TLP_CLEAR;
    strcpy(e->category, "other");
    e->severity = VDP_SEVERITY_UNKNOWN;
    strcpy(e->ctype, "text/plain");
}

//  ---------------------------------------------------------------------------------------------
//  Enum names

//  int-typed wrappers, so that one table drives every enum without casting function pointers
#define WRAP(name, type)                                                                           \
    static const char *name##_name(int v)                                                          \
    {                                                                                              \
        return vdp_##name##_name((type)v);                                                         \
    }                                                                                              \
    static int name##_from(const char *s)                                                          \
    {                                                                                              \
        return (int)vdp_##name##_from_name(s);                                                     \
    }
WRAP(kind, vdp_kind_t)
WRAP(status, vdp_status_t)
WRAP(tlp, vdp_tlp_t)
WRAP(severity, vdp_severity_t)
WRAP(urgency, vdp_urgency_t)
WRAP(certainty, vdp_certainty_t)
WRAP(stage, vdp_stage_t)

static const struct {
    const char *names[5];
    const char *(*name)(int);
    int (*from)(const char *);
} s_enums[] = {
    { { "alert", "update", "cancel", "ack", "error" }, kind_name, kind_from },
    { { "actual", "exercise", "test", "system", "draft" }, status_name, status_from },
    { { "clear", "green", "amber", "amber+strict", "red" }, tlp_name, tlp_from },
    { { "extreme", "severe", "moderate", "minor", "unknown" }, severity_name, severity_from },
    { { "immediate", "expected", "future", "past", "unknown" }, urgency_name, urgency_from },
    { { "observed", "likely", "possible", "unlikely", "unknown" }, certainty_name, certainty_from },
    { { "early-warning", "notification", "intermediate", "final", "progress" },
      stage_name,
      stage_from },
};

START_TEST(enum_names_round_trip)
{
    for (int v = 1; v <= 5; v++) {
        const char *name = s_enums[_i].names[v - 1];
        ck_assert_str_eq(s_enums[_i].name(v), name);
        ck_assert_int_eq(s_enums[_i].from(name), v);
    }
    ck_assert_ptr_null(s_enums[_i].name(0));
    ck_assert_ptr_null(s_enums[_i].name(6));
    ck_assert_ptr_null(s_enums[_i].name(-1));
    ck_assert_int_eq(s_enums[_i].from("nope"), 0);
    ck_assert_int_eq(s_enums[_i].from(""), 0);
    ck_assert_int_eq(s_enums[_i].from(NULL), 0);
}
END_TEST

START_TEST(tlp_order_is_restrictiveness)
{
    ck_assert_int_lt(VDP_TLP_CLEAR, VDP_TLP_GREEN);
    ck_assert_int_lt(VDP_TLP_GREEN, VDP_TLP_AMBER);
    ck_assert_int_lt(VDP_TLP_AMBER, VDP_TLP_AMBER_STRICT);
    ck_assert_int_lt(VDP_TLP_AMBER_STRICT, VDP_TLP_RED);
    ck_assert_int_eq(vdp_tlp_from_name("white"), VDP_TLP_NONE); // TLP 1.0 name: not accepted
    ck_assert_int_eq(vdp_tlp_from_name("AMBER"), VDP_TLP_NONE);
}
END_TEST

//  ---------------------------------------------------------------------------------------------
//  Round trips

START_TEST(full_envelope_round_trips)
{
    vdp_envelope_t in, out = { 0 };
    fill_full(&in);
    char reason[128];
    ck_assert_int_eq(vdp_envelope_validate(&in, reason, sizeof reason), VD_OK);
    uint8_t *data;
    size_t size;
    ck_assert_int_eq(vdp_envelope_encode(&in, &data, &size), VD_OK);
    ck_assert_int_eq(vdp_envelope_decode(&out, data, size, reason, sizeof reason), VD_OK);
    ck_assert_msg(vdp_envelope_same(&in, &out), "round trip changed the envelope");
    //  raw is the exact input; body borrows from it
    ck_assert_ptr_eq(out.raw, data);
    ck_assert_uint_eq(out.raw_len, size);
    ck_assert(out.body > data && out.body + out.body_len <= data + size);
    ck_assert_mem_eq(out.body, s_body, sizeof s_body - 1);
    ck_assert_uint_eq(out.sig_len, 64);
    ck_assert_str_eq(out.to[1], "cnaipic");
    ck_assert_str_eq(out.refs[1].id, ID3);
    ck_assert_str_eq(out.ctype, "application/stix+json;version=2.1");
    //  Deterministic: encoding the decoded envelope gives the same bytes
    uint8_t *again;
    size_t again_size;
    ck_assert_int_eq(vdp_envelope_encode(&out, &again, &again_size), VD_OK);
    ck_assert_uint_eq(again_size, size);
    ck_assert_mem_eq(again, data, size);
    free(again);
    vdp_envelope_reset(&out);
    free(data);
}
END_TEST

START_TEST(encoding_writes_present_fields_in_spec_order)
{
    static const char *order[] = { "v",        "id",        "sender",   "sent",     "topic",
                                   "kind",     "status",    "tlp",      "category", "severity",
                                   "ctype",    "body",      "sig",      "to",       "refs",
                                   "incident", "stage",     "aware_at", "expires",  "ack_by",
                                   "urgency",  "certainty", "lang" };
    vdp_envelope_t e;
    fill_full(&e);
    uint8_t *data;
    size_t size;
    ck_assert_int_eq(vdp_envelope_encode(&e, &data, &size), VD_OK);
    vdp_mp_t mp;
    vdp_mp_init(&mp, data, size);
    uint32_t pairs;
    ck_assert_int_eq(vdp_mp_read_map(&mp, &pairs), VD_OK);
    ck_assert_uint_eq(pairs, sizeof order / sizeof order[0]);
    for (uint32_t i = 0; i < pairs; i++) {
        const char *key;
        uint32_t len;
        ck_assert_int_eq(vdp_mp_read_str(&mp, &key, &len), VD_OK);
        ck_assert_uint_eq(len, strlen(order[i]));
        ck_assert_mem_eq(key, order[i], len);
        ck_assert_int_eq(vdp_mp_skip(&mp, 3), VD_OK);
    }
    ck_assert_uint_eq(vdp_mp_left(&mp), 0);
    free(data);

    //  The minimal envelope carries the 12 required keys only (body empty)
    fill_minimal(&e);
    ck_assert_int_eq(vdp_envelope_encode(&e, &data, &size), VD_OK);
    vdp_mp_init(&mp, data, size);
    ck_assert_int_eq(vdp_mp_read_map(&mp, &pairs), VD_OK);
    ck_assert_uint_eq(pairs, 12);
    vdp_envelope_t out = { 0 };
    ck_assert_int_eq(vdp_envelope_decode(&out, data, size, NULL, 0), VD_OK);
    ck_assert(vdp_envelope_same(&e, &out));
    ck_assert_uint_eq(out.body_len, 0);
    free(data);
}
END_TEST

START_TEST(unknown_keys_are_skipped_and_raw_keeps_them)
{
    //  A newer sender's envelope: the minimal one plus keys this version does not know
    vdp_envelope_t e;
    fill_minimal(&e);
    uint8_t *min;
    size_t min_size;
    ck_assert_int_eq(vdp_envelope_encode(&e, &min, &min_size), VD_OK);
    ck_assert_int_eq(min[0], 0x8c); // fixmap of 12
    buf_t b = { 0 };
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, buf_write);
    msgpack_pack_map(&pk, 16);
    pack_raw(&pk, min + 1, min_size - 1);
    pack_cstr(&pk, "via");
    msgpack_pack_array(&pk, 2);
    pack_cstr(&pk, "broker:toscana");
    pack_cstr(&pk, "broker:national");
    pack_cstr(&pk, "geo");
    msgpack_pack_map(&pk, 2);
    pack_cstr(&pk, "lat");
    msgpack_pack_double(&pk, 43.318);
    pack_cstr(&pk, "lon");
    msgpack_pack_float(&pk, 11.33f);
    pack_cstr(&pk, "x-ts");
    pack_raw(&pk, "\xd6\xff\x00\x00\x00\x01", 6); // fixext 4 (timestamp)
    pack_cstr(&pk, "x-nil");
    msgpack_pack_nil(&pk);
    vdp_envelope_t out = { 0 };
    char reason[128] = "";
    ck_assert_int_eq(decode_copy(&out, b.data, b.size, reason, sizeof reason), VD_OK);
    ck_assert(vdp_envelope_same(&e, &out));
    ck_assert_uint_eq(out.raw_len, b.size);
    ck_assert_mem_eq(out.raw, b.data, b.size);
    vdp_envelope_reset(&out);
    free(b.data);
    free(min);
}
END_TEST

START_TEST(every_truncation_is_an_error)
{
    vdp_envelope_t e, out = { 0 };
    fill_full(&e);
    uint8_t *data;
    size_t size;
    ck_assert_int_eq(vdp_envelope_encode(&e, &data, &size), VD_OK);
    for (size_t n = 0; n < size; n++) {
        char reason[128] = "";
        int rc = decode_copy(&out, data, n, reason, sizeof reason);
        ck_assert_msg(rc == VD_EPROTO, "prefix of %zu/%zu bytes: rc %d (%s)", n, size, rc, reason);
        ck_assert_str_ne(reason, "");
        ck_assert_ptr_null(out.raw);
        ck_assert_ptr_null(out.body);
    }
    ck_assert_int_eq(decode_copy(&out, data, size, NULL, 0), VD_OK);
    vdp_envelope_reset(&out);
    free(data);
}
END_TEST

//  ---------------------------------------------------------------------------------------------
//  Malformed envelopes: the minimal base plus lang and body, with one change per row

static void
v_str129(msgpack_packer *pk)
{
    char s[130];
    memset(s, 'a', 129);
    s[129] = '\0';
    pack_cstr(pk, s);
}

static void
v_str65(msgpack_packer *pk)
{
    char s[66];
    memset(s, 'a', 65);
    s[65] = '\0';
    pack_cstr(pk, s);
}

static void
v_to(msgpack_packer *pk, size_t n)
{
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        char org[32];
        snprintf(org, sizeof org, "comune:c%zu", i);
        pack_cstr(pk, org);
    }
}

static void
v_to32(msgpack_packer *pk)
{
    v_to(pk, 32);
}

static void
v_to33(msgpack_packer *pk)
{
    v_to(pk, 33);
}

static void
v_refs(msgpack_packer *pk, size_t n)
{
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_map(pk, 2);
        pack_cstr(pk, "sender");
        pack_cstr(pk, "cosc:toscana");
        pack_cstr(pk, "id");
        pack_cstr(pk, ID2);
    }
}

static void
v_refs16(msgpack_packer *pk)
{
    v_refs(pk, 16);
}

static void
v_refs17(msgpack_packer *pk)
{
    v_refs(pk, 17);
}

static void
v_bin(msgpack_packer *pk, size_t n)
{
    uint8_t *zeros = calloc(1, n ? n : 1);
    ck_assert_ptr_nonnull(zeros);
    msgpack_pack_bin_with_body(pk, zeros, n);
    free(zeros);
}

static void
v_body_max(msgpack_packer *pk)
{
    v_bin(pk, VDP_MAX_BODY);
}

static void
v_body_over(msgpack_packer *pk)
{
    v_bin(pk, VDP_MAX_BODY + 1);
}

static void
v_sig_over(msgpack_packer *pk)
{
    v_bin(pk, VDP_MAX_SIG + 1);
}

enum { M_NONE, M_OMIT, M_REPLACE, M_REPEAT, M_ADD, M_ADD_TWICE };

#define BYTES(s) s, sizeof(s) - 1
#define RAW(s)   BYTES(s), NULL
#define FN(f)    NULL, 0, f

static const struct {
    int action;
    const char *key;
    const char *raw; // replacement value, as msgpack bytes
    size_t raw_len;
    void (*fn)(msgpack_packer *);
    int expect;
} s_bad[] = {
    { M_NONE, "", RAW(""), VD_OK },
    //  each required field missing
    { M_OMIT, "v", RAW(""), VD_EFIELD },
    { M_OMIT, "id", RAW(""), VD_EFIELD },
    { M_OMIT, "sender", RAW(""), VD_EFIELD },
    { M_OMIT, "sent", RAW(""), VD_EFIELD },
    { M_OMIT, "topic", RAW(""), VD_EFIELD },
    { M_OMIT, "kind", RAW(""), VD_EFIELD },
    { M_OMIT, "status", RAW(""), VD_EFIELD },
    { M_OMIT, "tlp", RAW(""), VD_EFIELD },
    { M_OMIT, "category", RAW(""), VD_EFIELD },
    { M_OMIT, "severity", RAW(""), VD_EFIELD },
    { M_OMIT, "ctype", RAW(""), VD_EFIELD },
    { M_OMIT, "body", RAW(""), VD_EFIELD },
    { M_OMIT, "lang", RAW(""), VD_OK },
    //  wrong types
    { M_REPLACE, "v",
      RAW("\xa1"
          "1"),
      VD_EPROTO },
    { M_REPLACE, "v", RAW("\xff"), VD_EPROTO }, // -1
    { M_REPLACE, "id", RAW("\x01"), VD_EPROTO },
    { M_REPLACE, "sent",
      RAW("\xa4"
          "1234"),
      VD_EPROTO },
    { M_REPLACE, "sent", RAW("\xcb\x40\x00\x00\x00\x00\x00\x00\x00"), VD_EPROTO }, // 2.0
    { M_REPLACE, "sent", RAW("\xcf\x80\x00\x00\x00\x00\x00\x00\x00"), VD_EPROTO }, // 2^63
    { M_REPLACE, "tlp", RAW("\x03"), VD_EPROTO },
    { M_REPLACE, "body", RAW("\xa5hello"), VD_EPROTO },
    { M_ADD, "sig",
      RAW("\xa2"
          "ab"),
      VD_EPROTO },
    { M_ADD, "to",
      RAW("\xab"
          "comune:i726"),
      VD_EPROTO },
    { M_ADD, "to", RAW("\x91\x07"), VD_EPROTO },
    { M_ADD, "refs",
      RAW("\x91\xa3"
          "abc"),
      VD_EPROTO },
    { M_ADD, "refs", RAW("\x91\x81\xa6sender\x01"), VD_EPROTO },
    { M_ADD, "expires", RAW("\xc3"), VD_EPROTO },
    { M_ADD, "x", RAW("\xc1"), VD_EPROTO }, // the byte msgpack never uses
    //  bad enums
    { M_REPLACE, "kind", RAW("\xa6notice"), VD_EFIELD },
    { M_REPLACE, "status",
      RAW("\xa6"
          "Actual"),
      VD_EFIELD },
    { M_REPLACE, "tlp", RAW("\xa5white"), VD_EFIELD },
    { M_REPLACE, "tlp", RAW("\xa9tlp:amber"), VD_EFIELD },
    { M_REPLACE, "severity", RAW("\xa4high"), VD_EFIELD },
    { M_ADD, "urgency", RAW("\xa3now"), VD_EFIELD },
    { M_ADD, "certainty", RAW("\xa4sure"), VD_EFIELD },
    { M_ADD, "stage",
      RAW("\xa5"
          "draft"),
      VD_EFIELD },
    //  bad UUIDs and org ids
    { M_REPLACE, "id", RAW("\xaanot-a-uuid"), VD_EFIELD },
    { M_REPLACE, "id",
      RAW("\xd9\x24"
          "0F8FAD5B-D9CB-469F-A165-70867728950E"),
      VD_EFIELD },
    { M_REPLACE, "id",
      RAW("\xd9\x25"
          "0f8fad5b-d9cb-469f-a165-70867728950e0"),
      VD_EFIELD },
    { M_REPLACE, "sender",
      RAW("\xab"
          "Comune:i726"),
      VD_EFIELD },
    { M_REPLACE, "sender",
      RAW("\xab"
          "comune:i72\x00"),
      VD_EPROTO }, // embedded NUL
    { M_ADD, "to",
      RAW("\x92\xab"
          "comune:i726\xa4"
          "cosc"),
      VD_EFIELD },
    { M_ADD, "to",
      RAW("\x92\xab"
          "comune:i726\xab"
          "comune:i726"),
      VD_EFIELD }, // repeated
    { M_ADD, "refs",
      RAW("\x91\x82\xa6sender\xa4"
          "cosc\xa2id\xd9\x24" ID2),
      VD_EFIELD },
    { M_ADD, "refs",
      RAW("\x91\x82\xa6sender\xa7"
          "cnaipic\xa2id\xa1x"),
      VD_EFIELD },
    { M_ADD, "refs",
      RAW("\x91\x81\xa6sender\xa7"
          "cnaipic"),
      VD_EFIELD }, // no id
    { M_ADD, "refs",
      RAW("\x91\x83\xa6sender\xa7"
          "cnaipic\xa2id\xd9\x24" ID2 "\xa6sender\xa7"
          "cnaipic"),
      VD_EPROTO }, // repeated key inside a ref
    //  other field syntax
    { M_REPLACE, "v", RAW("\x02"), VD_EFIELD },
    { M_REPLACE, "v", RAW("\xcf\x00\x00\x01\x00\x00\x00\x00\x01"), VD_EFIELD }, // 2^40 + 1
    { M_REPLACE, "sent", RAW("\x00"), VD_EFIELD },
    { M_REPLACE, "sent", RAW("\xfb"), VD_EFIELD }, // -5
    { M_REPLACE, "topic", RAW("\xa5inbox"), VD_OK },
    { M_REPLACE, "topic",
      RAW("\xa7"
          "alert.*"),
      VD_EFIELD },
    { M_REPLACE, "topic",
      RAW("\xa7"
          "Alert.x"),
      VD_EFIELD },
    { M_REPLACE, "topic", RAW("\xa0"), VD_EFIELD },
    { M_REPLACE, "category", RAW("\xaaIntrusions"), VD_EFIELD },
    { M_REPLACE, "category", RAW("\xa0"), VD_EFIELD },
    { M_REPLACE, "category", FN(v_str65), VD_ELIMIT },
    { M_REPLACE, "ctype", RAW("\xa9text/html"), VD_EFIELD },
    { M_REPLACE, "ctype", RAW("\xabtext/plain;"), VD_EFIELD },
    { M_REPLACE, "ctype", RAW("\xabtext/plainx"), VD_EFIELD },
    { M_REPLACE, "ctype", RAW("\xb3text/plain;charset="), VD_EFIELD },
    { M_REPLACE, "ctype", RAW("\xb9text/plain; charset=utf-8"), VD_OK },
    { M_REPLACE, "ctype",
      RAW("\xb9"
          "application/vnd.misp+json"),
      VD_OK },
    { M_REPLACE, "ctype",
      RAW("\xb3"
          "application/cap+xml"),
      VD_OK },
    { M_REPLACE, "lang",
      RAW("\xa5"
          "en-GB"),
      VD_OK },
    { M_REPLACE, "lang", RAW("\xa3i t"), VD_EFIELD },
    { M_REPLACE, "lang",
      RAW("\xa2"
          "1t"),
      VD_EFIELD },
    { M_REPLACE, "lang", RAW("\xb1it-aaaaaaaaaaaaaa"), VD_ELIMIT }, // 17 bytes
    { M_ADD, "incident",
      RAW("\xa6"
          "a b cd"),
      VD_EFIELD },
    { M_ADD, "aware_at", RAW("\xff"), VD_EFIELD },
    //  conditional rules
    { M_REPLACE, "kind", RAW("\xa6update"), VD_EFIELD },
    { M_REPLACE, "kind",
      RAW("\xa6"
          "cancel"),
      VD_EFIELD },
    { M_REPLACE, "kind",
      RAW("\xa3"
          "ack"),
      VD_EFIELD },
    { M_REPLACE, "kind",
      RAW("\xa5"
          "error"),
      VD_EFIELD },
    { M_ADD, "stage",
      RAW("\xa5"
          "final"),
      VD_EFIELD }, // no aware_at
    { M_ADD, "refs", RAW("\x90"), VD_OK },
    { M_ADD, "to", RAW("\x90"), VD_OK },
    //  repeated keys
    { M_REPEAT, "tlp", RAW(""), VD_EPROTO },
    { M_REPEAT, "body", RAW(""), VD_EPROTO },
    { M_ADD_TWICE, "x-future", RAW("\x01"), VD_EPROTO },
    //  huge declared counts with few bytes behind them
    { M_ADD, "to", RAW("\xdd\xff\xff\xff\xff"), VD_EPROTO },
    { M_ADD, "to",
      RAW("\xdc\xff\xff\xa1"
          "a"),
      VD_EPROTO },
    { M_ADD, "refs", RAW("\x91\xdf\xff\xff\xff\xff"), VD_EPROTO },
    { M_ADD, "x", RAW("\xdf\xff\xff\xff\xff"), VD_EPROTO },
    { M_REPLACE, "topic",
      RAW("\xdb\xff\xff\xff\xff"
          "abc"),
      VD_EPROTO },
    { M_REPLACE, "body",
      RAW("\xc6\xff\xff\xff\xff"
          "abc"),
      VD_EPROTO },
    { M_ADD, "x", RAW("\xc9\xff\xff\xff\xff\x01"), VD_EPROTO }, // ext32
    //  nesting
    { M_ADD, "x", RAW("\x91\x91\xc0"), VD_OK },
    { M_ADD, "x", RAW("\x91\x91\x91\xc0"), VD_EPROTO },
    { M_ADD, "x", RAW("\x81\xa1k\x81\xa1k\xc0"), VD_OK },
    { M_ADD, "x", RAW("\x81\xa1k\x81\xa1k\x81\xa1k\xc0"), VD_EPROTO },
    //  over the caps
    { M_REPLACE, "topic", FN(v_str129), VD_ELIMIT },
    { M_ADD, "to", FN(v_to32), VD_OK },
    { M_ADD, "to", FN(v_to33), VD_ELIMIT },
    { M_ADD, "refs", FN(v_refs16), VD_OK },
    { M_ADD, "refs", FN(v_refs17), VD_ELIMIT },
    { M_REPLACE, "body", FN(v_body_max), VD_OK },
    { M_REPLACE, "body", FN(v_body_over), VD_ELIMIT },
    { M_ADD, "sig", FN(v_sig_over), VD_ELIMIT },
};

//  The base map's pairs, in order.
static void
base_value(msgpack_packer *pk, const char *key)
{
    static const struct {
        const char *key;
        const char *value; // NULL: special
    } strs[] = {
        { "id", ID1 },
        { "sender", "comune:i726" },
        { "topic", "alert.toscana.i726" },
        { "kind", "alert" },
        { "status", "actual" },
        { "tlp", "amber" },
        { "category", "intrusions" },
        { "severity", "severe" },
        { "ctype", "text/plain" },
        { "lang", "it" },
    };
    if (strcmp(key, "v") == 0) {
        msgpack_pack_uint8(pk, 1);
    } else if (strcmp(key, "sent") == 0) {
        msgpack_pack_int64(pk, 1718000000000);
    } else if (strcmp(key, "body") == 0) {
        msgpack_pack_bin_with_body(pk, "hello", 5);
    } else {
        for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
            if (strcmp(strs[i].key, key) == 0) {
                pack_cstr(pk, strs[i].value);
                return;
            }
        ck_abort_msg("no base value for %s", key);
    }
}

static void
build_bad(size_t row, buf_t *b)
{
    static const char *keys[] = { "v",   "id",       "sender",   "sent",  "topic", "kind", "status",
                                  "tlp", "category", "severity", "ctype", "body",  "lang" };
    const size_t nkeys = sizeof keys / sizeof keys[0];
    int action = s_bad[row].action;
    size_t pairs = nkeys + (action == M_ADD || action == M_REPEAT) + 2 * (action == M_ADD_TWICE) -
                   (action == M_OMIT);
    msgpack_packer pk;
    msgpack_packer_init(&pk, b, buf_write);
    msgpack_pack_map(&pk, pairs);
    for (size_t i = 0; i < nkeys; i++) {
        bool match = strcmp(keys[i], s_bad[row].key) == 0;
        if (match && action == M_OMIT)
            continue;
        pack_cstr(&pk, keys[i]);
        if (match && action == M_REPLACE) {
            if (s_bad[row].fn)
                s_bad[row].fn(&pk);
            else
                pack_raw(&pk, s_bad[row].raw, s_bad[row].raw_len);
        } else {
            base_value(&pk, keys[i]);
        }
        if (match && action == M_REPEAT) {
            pack_cstr(&pk, keys[i]);
            base_value(&pk, keys[i]);
        }
    }
    for (int n = 0; n < (action == M_ADD ? 1 : action == M_ADD_TWICE ? 2 : 0); n++) {
        pack_cstr(&pk, s_bad[row].key);
        if (s_bad[row].fn)
            s_bad[row].fn(&pk);
        else
            pack_raw(&pk, s_bad[row].raw, s_bad[row].raw_len);
    }
}

START_TEST(malformed_envelopes_as_in_the_table)
{
    buf_t b = { 0 };
    build_bad((size_t)_i, &b);
    vdp_envelope_t out = { 0 };
    char reason[160] = "";
    int rc = decode_copy(&out, b.data, b.size, reason, sizeof reason);
    ck_assert_msg(rc == s_bad[_i].expect, "row %d (%s): rc %s, want %s (%s)", _i, s_bad[_i].key,
                  vd_strerror_name(rc), vd_strerror_name(s_bad[_i].expect), reason);
    if (rc != VD_OK) {
        ck_assert_str_ne(reason, "");
        //  What the receipt needs survives the error when it was valid
        if (strcmp(s_bad[_i].key, "id") != 0)
            ck_assert_str_eq(out.id, ID1);
        if (strcmp(s_bad[_i].key, "sender") != 0)
            ck_assert_str_eq(out.sender, "comune:i726");
        ck_assert_ptr_null(out.raw);
        ck_assert_uint_eq(out.tlp, VDP_TLP_NONE);
    } else {
        ck_assert_int_eq(vdp_envelope_validate(&out, reason, sizeof reason), VD_OK);
    }
    vdp_envelope_reset(&out);
    free(b.data);
}
END_TEST

static const struct {
    const char *bytes;
    size_t len;
    int expect;
} s_bad_whole[] = {
    { BYTES(""), VD_EPROTO },
    { BYTES("\xc0"), VD_EPROTO },
    { BYTES("\x90"), VD_EPROTO },                 // an array, not a map
    { BYTES("\x80"), VD_EFIELD },                 // empty map: every field missing
    { BYTES("\xdf\xff\xff\xff\xff"), VD_EPROTO }, // map32 of 4G pairs in 5 bytes
    { BYTES("\xde\xff\xff\x01\x02"), VD_EPROTO },
    { BYTES("\x81\x01\x02"), VD_EPROTO },      // key is not a string
    { BYTES("\x81\xc4\x01v\x01"), VD_EPROTO }, // key is bin
    { BYTES("\x81\xa1v\x01\xc0"), VD_EPROTO }, // trailing byte after the map
};

START_TEST(malformed_whole_inputs_as_in_the_table)
{
    vdp_envelope_t out = { 0 };
    char reason[128] = "";
    int rc = decode_copy(&out, (const uint8_t *)s_bad_whole[_i].bytes, s_bad_whole[_i].len, reason,
                         sizeof reason);
    ck_assert_msg(rc == s_bad_whole[_i].expect, "row %d: rc %s (%s)", _i, vd_strerror_name(rc),
                  reason);
    vdp_envelope_reset(&out);
}
END_TEST

START_TEST(map_over_key_cap_is_a_limit)
{
    vdp_envelope_t e;
    fill_minimal(&e);
    uint8_t *min;
    size_t min_size;
    ck_assert_int_eq(vdp_envelope_encode(&e, &min, &min_size), VD_OK);
    for (uint32_t extra = VDP_MAX_MAP_KEYS - 12; extra <= VDP_MAX_MAP_KEYS - 11; extra++) {
        buf_t b = { 0 };
        msgpack_packer pk;
        msgpack_packer_init(&pk, &b, buf_write);
        msgpack_pack_map(&pk, 12 + extra);
        pack_raw(&pk, min + 1, min_size - 1);
        for (uint32_t i = 0; i < extra; i++) {
            char key[16];
            snprintf(key, sizeof key, "x%u", i);
            pack_cstr(&pk, key);
            msgpack_pack_nil(&pk);
        }
        vdp_envelope_t out = { 0 };
        int rc = decode_copy(&out, b.data, b.size, NULL, 0);
        ck_assert_int_eq(rc, 12 + extra <= VDP_MAX_MAP_KEYS ? VD_OK : VD_ELIMIT);
        vdp_envelope_reset(&out);
        free(b.data);
    }
    free(min);
}
END_TEST

//  ---------------------------------------------------------------------------------------------
//  Validation of locally built envelopes

static void
m_v0(vdp_envelope_t *e)
{
    e->v = 0;
}
static void
m_v2(vdp_envelope_t *e)
{
    e->v = 2;
}
static void
m_id(vdp_envelope_t *e)
{
    e->id[8] = '_';
}
static void
m_no_id(vdp_envelope_t *e)
{
    e->id[0] = '\0';
}
static void
m_sender(vdp_envelope_t *e)
{
    strcpy(e->sender, "comune:");
}
static void
m_sent(vdp_envelope_t *e)
{
    e->sent = 0;
}
static void
m_topic(vdp_envelope_t *e)
{
    strcpy(e->topic, "alert..x");
}
static void
m_topic_unterminated(vdp_envelope_t *e)
{
    memset(e->topic, 'a', sizeof e->topic);
}
static void
m_kind_none(vdp_envelope_t *e)
{
    e->kind = VDP_KIND_NONE;
}
static void
m_kind_range(vdp_envelope_t *e)
{
    e->kind = (vdp_kind_t)99;
}
static void
m_status(vdp_envelope_t *e)
{
    e->status = VDP_STATUS_NONE;
}
static void
m_tlp(vdp_envelope_t *e)
{
    e->tlp = (vdp_tlp_t)6;
}
static void
m_category(vdp_envelope_t *e)
{
    e->category[0] = '\0';
}
static void
m_severity(vdp_envelope_t *e)
{
    e->severity = VDP_SEVERITY_NONE;
}
static void
m_ctype(vdp_envelope_t *e)
{
    strcpy(e->ctype, "image/png");
}
static void
m_body_cap(vdp_envelope_t *e)
{
    e->body_len = VDP_MAX_BODY + 1; // never read: the length is checked first
}
static void
m_body_null(vdp_envelope_t *e)
{
    e->body = NULL;
}
static void
m_sig(vdp_envelope_t *e)
{
    e->sig_len = VDP_MAX_SIG + 1;
}
static void
m_to_cap(vdp_envelope_t *e)
{
    e->to_count = VDP_MAX_TO + 1;
}
static void
m_to_dup(vdp_envelope_t *e)
{
    strcpy(e->to[1], e->to[0]);
}
static void
m_to_bad(vdp_envelope_t *e)
{
    strcpy(e->to[1], "nobody");
}
static void
m_refs_cap(vdp_envelope_t *e)
{
    e->refs_count = VDP_MAX_REFS + 1;
}
static void
m_refs_none(vdp_envelope_t *e)
{
    e->refs_count = 0; // kind is update
}
static void
m_ref_id(vdp_envelope_t *e)
{
    strcpy(e->refs[1].id, "x");
}
static void
m_stage_alone(vdp_envelope_t *e)
{
    e->aware_at = 0;
}
static void
m_expires_negative(vdp_envelope_t *e)
{
    e->expires = -1;
}
static void
m_urgency(vdp_envelope_t *e)
{
    e->urgency = (vdp_urgency_t)7;
}
static void
m_lang(vdp_envelope_t *e)
{
    strcpy(e->lang, "it_IT");
}
static void
m_incident(vdp_envelope_t *e)
{
    strcpy(e->incident, "has space");
}
static void
m_no_optional(vdp_envelope_t *e)
{
    e->kind = VDP_KIND_ALERT;
    e->refs_count = 0;
    e->to_count = 0;
    e->stage = VDP_STAGE_NONE;
    e->incident[0] = e->lang[0] = '\0';
    e->aware_at = e->expires = e->ack_by = 0;
    e->urgency = VDP_URGENCY_NONE;
    e->certainty = VDP_CERTAINTY_NONE;
    e->sig_len = 0;
}

static const struct {
    void (*mutate)(vdp_envelope_t *);
    int expect;
} s_invalid[] = {
    { m_v0, VD_EFIELD },          { m_v2, VD_EFIELD },
    { m_id, VD_EFIELD },          { m_no_id, VD_EFIELD },
    { m_sender, VD_EFIELD },      { m_sent, VD_EFIELD },
    { m_topic, VD_EFIELD },       { m_topic_unterminated, VD_ELIMIT },
    { m_kind_none, VD_EFIELD },   { m_kind_range, VD_EFIELD },
    { m_status, VD_EFIELD },      { m_tlp, VD_EFIELD },
    { m_category, VD_EFIELD },    { m_severity, VD_EFIELD },
    { m_ctype, VD_EFIELD },       { m_body_cap, VD_ELIMIT },
    { m_body_null, VD_EFIELD },   { m_sig, VD_ELIMIT },
    { m_to_cap, VD_ELIMIT },      { m_to_dup, VD_EFIELD },
    { m_to_bad, VD_EFIELD },      { m_refs_cap, VD_ELIMIT },
    { m_refs_none, VD_EFIELD },   { m_ref_id, VD_EFIELD },
    { m_stage_alone, VD_EFIELD }, { m_expires_negative, VD_EFIELD },
    { m_urgency, VD_EFIELD },     { m_lang, VD_EFIELD },
    { m_incident, VD_EFIELD },    { m_no_optional, VD_OK },
};

START_TEST(validate_as_in_the_table)
{
    vdp_envelope_t e;
    fill_full(&e);
    s_invalid[_i].mutate(&e);
    char reason[128] = "";
    int rc = vdp_envelope_validate(&e, reason, sizeof reason);
    ck_assert_msg(rc == s_invalid[_i].expect, "row %d: rc %s (%s)", _i, vd_strerror_name(rc),
                  reason);
    if (rc != VD_OK)
        ck_assert_str_ne(reason, "");
}
END_TEST

START_TEST(validate_accepts_what_decodes)
{
    vdp_envelope_t e;
    fill_full(&e);
    ck_assert_int_eq(vdp_envelope_validate(&e, NULL, 0), VD_OK);
    ck_assert_int_eq(vdp_envelope_validate(NULL, NULL, 0), VD_EINVAL);
    //  An invalid struct still encodes (encode does not judge) and the decoder refuses it
    e.tlp = VDP_TLP_NONE;
    uint8_t *data;
    size_t size;
    ck_assert_int_eq(vdp_envelope_encode(&e, &data, &size), VD_OK);
    vdp_envelope_t out = { 0 };
    char reason[128];
    ck_assert_int_eq(vdp_envelope_decode(&out, data, size, reason, sizeof reason), VD_EFIELD);
    ck_assert_ptr_nonnull(strstr(reason, "tlp"));
    free(data);
}
END_TEST

//  ---------------------------------------------------------------------------------------------
//  Ownership

START_TEST(own_outlives_the_input_buffer)
{
    vdp_envelope_t e, out = { 0 };
    fill_full(&e);
    uint8_t *data;
    size_t size;
    ck_assert_int_eq(vdp_envelope_encode(&e, &data, &size), VD_OK);
    ck_assert_int_eq(vdp_envelope_decode(&out, data, size, NULL, 0), VD_OK);
    ck_assert_int_eq(vdp_envelope_own(&out), VD_OK);
    memset(data, 0xc1, size);
    free(data); // ASan reports any later use of the input
    ck_assert_ptr_nonnull(out.owned_raw);
    ck_assert_ptr_eq(out.raw, out.owned_raw);
    ck_assert(out.body >= out.raw && out.body + out.body_len <= out.raw + out.raw_len);
    ck_assert(vdp_envelope_same(&e, &out));
    ck_assert_int_eq(vdp_envelope_own(&out), VD_OK); // idempotent
    ck_assert(vdp_envelope_same(&e, &out));
    //  Dropping the raw bytes keeps the body
    ck_assert_int_eq(vdp_envelope_drop_raw(&out), VD_OK);
    ck_assert_ptr_null(out.raw);
    ck_assert_ptr_null(out.owned_raw);
    ck_assert_ptr_eq(out.body, out.owned_body);
    ck_assert(vdp_envelope_same(&e, &out));
    vdp_envelope_reset(&out);
    ck_assert_ptr_null(out.owned_body);
    ck_assert_uint_eq(out.body_len, 0);
}
END_TEST

START_TEST(own_copies_a_borrowed_body_without_raw)
{
    vdp_envelope_t e;
    fill_full(&e);
    uint8_t *body = dup_bytes((const uint8_t *)"borrowed", 8);
    e.body = body;
    e.body_len = 8;
    ck_assert_int_eq(vdp_envelope_own(&e), VD_OK);
    free(body);
    ck_assert_ptr_eq(e.body, e.owned_body);
    ck_assert_mem_eq(e.body, "borrowed", 8);
    vdp_envelope_reset(&e);
}
END_TEST

START_TEST(set_body_checks_and_drops_raw)
{
    vdp_envelope_t e, out = { 0 };
    fill_full(&e);
    uint8_t *data;
    size_t size;
    ck_assert_int_eq(vdp_envelope_encode(&e, &data, &size), VD_OK);
    ck_assert_int_eq(vdp_envelope_decode(&out, data, size, NULL, 0), VD_OK);
    ck_assert_int_eq(vdp_envelope_own(&out), VD_OK);
    ck_assert_int_eq(vdp_envelope_set_body(&out, "new", 3), VD_OK);
    ck_assert_ptr_null(out.raw);
    ck_assert_uint_eq(out.body_len, 3);
    ck_assert_mem_eq(out.body, "new", 3);
    ck_assert_int_eq(vdp_envelope_set_body(&out, out.body, 2), VD_OK); // from itself
    ck_assert_mem_eq(out.body, "ne", 2);
    ck_assert_int_eq(vdp_envelope_set_body(&out, NULL, 1), VD_EINVAL);
    ck_assert_int_eq(vdp_envelope_set_body(&out, data, VDP_MAX_BODY + 1), VD_ELIMIT);
    ck_assert_mem_eq(out.body, "ne", 2);
    ck_assert_int_eq(vdp_envelope_set_body(&out, NULL, 0), VD_OK);
    ck_assert_ptr_null(out.body);
    ck_assert_uint_eq(out.body_len, 0);
    vdp_envelope_reset(&out);
    vdp_envelope_reset(&out); // reset twice is harmless
    free(data);
}
END_TEST

START_TEST(decode_resets_an_owned_envelope)
{
    vdp_envelope_t e, out = { 0 };
    fill_full(&e);
    ck_assert_int_eq(vdp_envelope_set_body(&out, "leak?", 5), VD_OK);
    uint8_t *data;
    size_t size;
    ck_assert_int_eq(vdp_envelope_encode(&e, &data, &size), VD_OK);
    //  The owned body must be freed by the decode (LeakSanitizer checks)
    ck_assert_int_eq(vdp_envelope_decode(&out, data, size, NULL, 0), VD_OK);
    ck_assert_ptr_null(out.owned_body);
    ck_assert(vdp_envelope_same(&e, &out));
    free(data);
}
END_TEST

Suite *
vdp_envelope_suite(void)
{
    Suite *s = suite_create("vdp_envelope");
    TCase *tc = tcase_create("names");
    tcase_add_loop_test(tc, enum_names_round_trip, 0, sizeof s_enums / sizeof s_enums[0]);
    tcase_add_test(tc, tlp_order_is_restrictiveness);
    suite_add_tcase(s, tc);

    tc = tcase_create("round_trip");
    tcase_add_test(tc, full_envelope_round_trips);
    tcase_add_test(tc, encoding_writes_present_fields_in_spec_order);
    tcase_add_test(tc, unknown_keys_are_skipped_and_raw_keeps_them);
    suite_add_tcase(s, tc);

    tc = tcase_create("decode_rejects");
    tcase_add_test(tc, every_truncation_is_an_error);
    tcase_add_loop_test(tc, malformed_envelopes_as_in_the_table, 0, sizeof s_bad / sizeof s_bad[0]);
    tcase_add_loop_test(tc, malformed_whole_inputs_as_in_the_table, 0,
                        sizeof s_bad_whole / sizeof s_bad_whole[0]);
    tcase_add_test(tc, map_over_key_cap_is_a_limit);
    suite_add_tcase(s, tc);

    tc = tcase_create("validate");
    tcase_add_loop_test(tc, validate_as_in_the_table, 0, sizeof s_invalid / sizeof s_invalid[0]);
    tcase_add_test(tc, validate_accepts_what_decodes);
    suite_add_tcase(s, tc);

    tc = tcase_create("ownership");
    tcase_add_test(tc, own_outlives_the_input_buffer);
    tcase_add_test(tc, own_copies_a_borrowed_body_without_raw);
    tcase_add_test(tc, set_body_checks_and_drops_raw);
    tcase_add_test(tc, decode_resets_an_owned_envelope);
    suite_add_tcase(s, tc);
    return s;
}

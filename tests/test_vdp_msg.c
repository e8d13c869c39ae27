/*  Tests of vdp_msg: op names, the writer and reader of every command, batches, raw envelope
    bytes on deliver, and the total reader against truncations and malformed frames.  */
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "suites.h"
#include "vedetta.h"
#include "vdp_ids.h"
#include "vdp_mp.h"
#include "vdp_msg.h"

#define ID1 "0f8fad5b-d9cb-469f-a165-70867728950e"
#define ID2 "7c9e6679-7425-40de-944b-e07fc1f90ae7"

//  ---------------------------------------------------------------------------------------------
//  Helpers

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
buf_append(buf_t *self, const void *bytes, size_t len)
{
    buf_write(self, bytes, len);
}

static void
pack_cstr(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static uint8_t *
dup_bytes(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    ck_assert_ptr_nonnull(copy);
    if (size)
        memcpy(copy, data, size);
    return copy;
}

static const uint8_t s_body[] =
    "{\"type\":\"indicator\",\"pattern\":\"[ipv4-addr:value = '1.2.3.4']\"}";

static void
fill_env(vdp_envelope_t *e)
{
    memset(e, 0, sizeof *e);
    e->v = 1;
    strcpy(e->id, ID1);
    strcpy(e->sender, "comune:i726");
    e->sent = 1718000000123;
    strcpy(e->topic, "report.toscana.i726");
    e->kind = VDP_KIND_UPDATE;
    e->status = VDP_STATUS_ACTUAL;
    e->tlp = VDP_TLP_AMBER;
    strcpy(e->category, "intrusions");
    e->severity = VDP_SEVERITY_SEVERE;
    strcpy(e->ctype, "application/stix+json;version=2.1");
    e->body = s_body;
    e->body_len = sizeof s_body - 1;
    strcpy(e->refs[0].sender, "comune:i726");
    strcpy(e->refs[0].id, ID2);
    e->refs_count = 1;
    e->stage = VDP_STAGE_EARLY_WARNING;
    e->aware_at = 1717990000000;
    strcpy(e->lang, "it");
}

static void
fill_welcome(vdp_cmd_t *w)
{
    vdp_cmd_reset(w);
    w->op = VDP_OP_WELCOME;
    w->ref = 1;
    w->version = VDP_VERSION;
    strcpy(w->broker, "broker:toscana");
    strcpy(w->org, "anci:sicilia");
    strcpy(w->role, "anci");
    strcpy(w->jur[0], "sicilia-occ");
    strcpy(w->jur[1], "sicilia-or");
    w->jur_count = 2;
    strcpy(w->inbox[0], "inbox.sicilia-occ.anci-sicilia");
    strcpy(w->inbox[1], "inbox.sicilia-or.anci-sicilia");
    w->inbox_count = 2;
    w->heartbeat_ms = 2000;
    w->max_body = VDP_MAX_BODY;
    w->max_frame = VDP_MAX_FRAME;
    w->max_batch = VDP_MAX_BATCH;
}

//  One command of each kind (receipts three times: one per status), as the writer makes them.
enum {
    C_HELLO,
    C_WELCOME,
    C_PUB,
    C_RECEIPT_ACCEPTED,
    C_RECEIPT_DUPLICATE,
    C_RECEIPT_REJECTED,
    C_SUB,
    C_UNSUB,
    C_DELIVER,
    C_PING,
    C_PONG,
    C_OK,
    C_ERROR,
    C_BYE,
    C_HELLO_CREDIT,
    C_SUB_DURABLE,
    C_SUB_SINCE,
    C_UNSUB_DURABLE,
    C_DELIVER_DURABLE,
    C_OK_SEQ,
    C_ACK,
    C_CREDIT,
    C_RECEIPT_RATE,
    C_COUNT
};

static const vdp_op_t s_case_op[C_COUNT] = {
    VDP_OP_HELLO,   VDP_OP_WELCOME, VDP_OP_PUB,     VDP_OP_RECEIPT, VDP_OP_RECEIPT, VDP_OP_RECEIPT,
    VDP_OP_SUB,     VDP_OP_UNSUB,   VDP_OP_DELIVER, VDP_OP_PING,    VDP_OP_PONG,    VDP_OP_OK,
    VDP_OP_ERROR,   VDP_OP_BYE,     VDP_OP_HELLO,   VDP_OP_SUB,     VDP_OP_SUB,     VDP_OP_UNSUB,
    VDP_OP_DELIVER, VDP_OP_OK,      VDP_OP_ACK,     VDP_OP_CREDIT,  VDP_OP_RECEIPT
};

static void
write_case(vdp_writer_t *w, int c, const uint8_t *raw, size_t raw_len)
{
    vdp_envelope_t env;
    vdp_cmd_t welcome;
    int rc = VD_EINVAL;
    switch (c) {
    case C_HELLO:
        rc = vdp_writer_hello(w, 11, "libvedetta/0.1.0", 2000, 0);
        break;
    case C_WELCOME:
        fill_welcome(&welcome);
        rc = vdp_writer_welcome(w, &welcome);
        break;
    case C_PUB:
        fill_env(&env);
        rc = vdp_writer_pub(w, &env);
        break;
    case C_RECEIPT_ACCEPTED:
        rc =
            vdp_writer_receipt(w, ID1, VDP_RECEIPT_ACCEPTED, 1ull << 40, 1718000000456, 0, NULL, 0);
        break;
    case C_RECEIPT_DUPLICATE:
        rc = vdp_writer_receipt(w, ID1, VDP_RECEIPT_DUPLICATE, 7, 1718000000000, 0, NULL, 0);
        break;
    case C_RECEIPT_REJECTED:
        rc = vdp_writer_receipt(w, ID1, VDP_RECEIPT_REJECTED, 0, 0, VD_EACCES,
                                "comune:i726 may not publish on alert.toscana.b429", 0);
        break;
    case C_SUB:
        rc = vdp_writer_sub(w, 12, "alert.toscana.>");
        break;
    case C_UNSUB:
        rc = vdp_writer_unsub(w, 13, "bulletin.*", NULL);
        break;
    case C_DELIVER:
        rc = vdp_writer_deliver(w, "report.toscana.*", NULL, UINT64_MAX, 1718000000999, raw,
                                raw_len);
        break;
    case C_PING:
        rc = vdp_writer_ping(w, 14);
        break;
    case C_PONG:
        rc = vdp_writer_pong(w, 14);
        break;
    case C_OK:
        rc = vdp_writer_ok(w, 12);
        break;
    case C_ERROR:
        rc = vdp_writer_error(w, 0, VD_ESESSION, "send hello first");
        break;
    case C_BYE:
        rc = vdp_writer_bye(w);
        break;
    case C_HELLO_CREDIT:
        rc = vdp_writer_hello(w, 11, "libvedetta/0.1.0", 2000, 8192);
        break;
    case C_SUB_DURABLE:
        rc = vdp_writer_sub_from(w, 15, "alert.toscana.>", "cosc-siem.main", 42, 0);
        break;
    case C_SUB_SINCE:
        rc = vdp_writer_sub_from(w, 16, "bulletin.*", NULL, 0, 1718000000000);
        break;
    case C_UNSUB_DURABLE:
        rc = vdp_writer_unsub(w, 17, "alert.toscana.>", "cosc-siem.main");
        break;
    case C_DELIVER_DURABLE:
        rc = vdp_writer_deliver(w, "report.toscana.*", "cosc-siem.main", 9, 1718000000999, raw,
                                raw_len);
        break;
    case C_OK_SEQ:
        rc = vdp_writer_ok_seq(w, 15, 41);
        break;
    case C_ACK:
        rc = vdp_writer_ack(w, 18, "cosc-siem.main", 1ull << 50);
        break;
    case C_CREDIT:
        rc = vdp_writer_credit(w, 2048);
        break;
    case C_RECEIPT_RATE:
        rc = vdp_writer_receipt(w, ID1, VDP_RECEIPT_REJECTED, 0, 0, VD_ERATE,
                                "comune:i726 over its rate of 200/s+2000", 1250);
        break;
    }
    ck_assert_int_eq(rc, VD_OK);
}

//  Checks that `cmd` (and `env`) read back what write_case(c) wrote.
static void
check_case(
    int c, const vdp_cmd_t *cmd, const vdp_envelope_t *env, const uint8_t *raw, size_t raw_len)
{
    ck_assert_int_eq(cmd->op, s_case_op[c]);
    vdp_envelope_t expect_env;
    vdp_cmd_t w;
    switch (c) {
    case C_HELLO:
        ck_assert_uint_eq(cmd->ref, 11);
        ck_assert_uint_eq(cmd->version, VDP_VERSION);
        ck_assert_str_eq(cmd->agent, "libvedetta/0.1.0");
        ck_assert_uint_eq(cmd->heartbeat_ms, 2000);
        break;
    case C_WELCOME:
        fill_welcome(&w);
        ck_assert_uint_eq(cmd->ref, w.ref);
        ck_assert_uint_eq(cmd->version, w.version);
        ck_assert_str_eq(cmd->broker, w.broker);
        ck_assert_str_eq(cmd->org, w.org);
        ck_assert_str_eq(cmd->role, w.role);
        ck_assert_uint_eq(cmd->jur_count, 2);
        ck_assert_str_eq(cmd->jur[1], w.jur[1]);
        ck_assert_uint_eq(cmd->inbox_count, 2);
        ck_assert_str_eq(cmd->inbox[0], w.inbox[0]);
        ck_assert_str_eq(cmd->inbox[1], w.inbox[1]);
        ck_assert_uint_eq(cmd->heartbeat_ms, 2000);
        ck_assert_uint_eq(cmd->max_body, VDP_MAX_BODY);
        ck_assert_uint_eq(cmd->max_frame, VDP_MAX_FRAME);
        ck_assert_uint_eq(cmd->max_batch, VDP_MAX_BATCH);
        break;
    case C_PUB:
        fill_env(&expect_env);
        ck_assert(vdp_envelope_same(env, &expect_env));
        ck_assert_ptr_nonnull(env->raw);
        break;
    case C_RECEIPT_ACCEPTED:
        ck_assert_str_eq(cmd->id, ID1);
        ck_assert_int_eq(cmd->status, VDP_RECEIPT_ACCEPTED);
        ck_assert_uint_eq(cmd->seq, 1ull << 40);
        ck_assert_int_eq(cmd->at, 1718000000456);
        break;
    case C_RECEIPT_DUPLICATE:
        ck_assert_int_eq(cmd->status, VDP_RECEIPT_DUPLICATE);
        ck_assert_uint_eq(cmd->seq, 7);
        break;
    case C_RECEIPT_REJECTED:
        ck_assert_str_eq(cmd->id, ID1);
        ck_assert_int_eq(cmd->status, VDP_RECEIPT_REJECTED);
        ck_assert_int_eq(cmd->code, VD_EACCES);
        ck_assert_uint_eq(cmd->retry_after_ms, 0); // absent
        ck_assert_str_eq(cmd->reason, "comune:i726 may not publish on alert.toscana.b429");
        break;
    case C_SUB:
        ck_assert_uint_eq(cmd->ref, 12);
        ck_assert_str_eq(cmd->pattern, "alert.toscana.>");
        break;
    case C_UNSUB:
        ck_assert_uint_eq(cmd->ref, 13);
        ck_assert_str_eq(cmd->pattern, "bulletin.*");
        break;
    case C_DELIVER:
        ck_assert_str_eq(cmd->pattern, "report.toscana.*");
        ck_assert_uint_eq(cmd->seq, UINT64_MAX);
        ck_assert_int_eq(cmd->at, 1718000000999);
        ck_assert_uint_eq(env->seq, UINT64_MAX);
        ck_assert_int_eq(env->accepted_at, 1718000000999);
        ck_assert_str_eq(env->subscription, "report.toscana.*");
        ck_assert_uint_eq(env->raw_len, raw_len);
        ck_assert_mem_eq(env->raw, raw, raw_len);
        break;
    case C_PING:
    case C_PONG:
        ck_assert_uint_eq(cmd->ref, 14);
        break;
    case C_OK:
        ck_assert_uint_eq(cmd->ref, 12);
        break;
    case C_ERROR:
        ck_assert_uint_eq(cmd->ref, 0);
        ck_assert_int_eq(cmd->code, VD_ESESSION);
        ck_assert_str_eq(cmd->reason, "send hello first");
        break;
    case C_BYE:
        break;
    case C_HELLO_CREDIT:
        ck_assert_uint_eq(cmd->heartbeat_ms, 2000);
        ck_assert_uint_eq(cmd->credit, 8192);
        break;
    case C_SUB_DURABLE:
        ck_assert_uint_eq(cmd->ref, 15);
        ck_assert_str_eq(cmd->pattern, "alert.toscana.>");
        ck_assert_str_eq(cmd->durable, "cosc-siem.main");
        ck_assert_uint_eq(cmd->from_seq, 42);
        ck_assert_int_eq(cmd->since, 0);
        break;
    case C_SUB_SINCE:
        ck_assert_str_eq(cmd->durable, "");
        ck_assert_uint_eq(cmd->from_seq, 0);
        ck_assert_int_eq(cmd->since, 1718000000000);
        break;
    case C_UNSUB_DURABLE:
        ck_assert_uint_eq(cmd->ref, 17);
        ck_assert_str_eq(cmd->durable, "cosc-siem.main");
        break;
    case C_DELIVER_DURABLE:
        ck_assert_uint_eq(env->seq, 9);
        ck_assert_str_eq(env->subscription, "report.toscana.*");
        ck_assert_str_eq(env->durable, "cosc-siem.main");
        ck_assert_mem_eq(env->raw, raw, raw_len);
        break;
    case C_OK_SEQ:
        ck_assert_uint_eq(cmd->ref, 15);
        ck_assert_uint_eq(cmd->seq, 41);
        break;
    case C_ACK:
        ck_assert_uint_eq(cmd->ref, 18);
        ck_assert_str_eq(cmd->durable, "cosc-siem.main");
        ck_assert_uint_eq(cmd->seq, 1ull << 50);
        break;
    case C_CREDIT:
        ck_assert_uint_eq(cmd->credit, 2048);
        break;
    case C_RECEIPT_RATE:
        ck_assert_int_eq(cmd->status, VDP_RECEIPT_REJECTED);
        ck_assert_int_eq(cmd->code, VD_ERATE);
        ck_assert_uint_eq(cmd->retry_after_ms, 1250);
        break;
    }
}

//  A stored envelope as some other implementation might have encoded it: not our canonical
//  form (v as int8, keys in another order, an unknown key), so re-encoding would change it.
static void
foreign_envelope(buf_t *b)
{
    vdp_envelope_t e;
    fill_env(&e);
    uint8_t *canon;
    size_t canon_size;
    ck_assert_int_eq(vdp_envelope_encode(&e, &canon, &canon_size), VD_OK);
    vdp_mp_t mp;
    vdp_mp_init(&mp, canon, canon_size);
    uint32_t pairs;
    ck_assert_int_eq(vdp_mp_read_map(&mp, &pairs), VD_OK);
    msgpack_packer pk;
    msgpack_packer_init(&pk, b, buf_write);
    msgpack_pack_map(&pk, pairs + 1);
    pack_cstr(&pk, "x-origin");
    pack_cstr(&pk, "legacy-gateway");
    //  Pairs in reverse order, "v" as a signed 8-bit integer
    size_t starts[64], ends[64];
    for (uint32_t i = 0; i < pairs; i++) {
        starts[i] = mp.pos;
        ck_assert_int_eq(vdp_mp_skip(&mp, 0), VD_OK);
        ck_assert_int_eq(vdp_mp_skip(&mp, 3), VD_OK);
        ends[i] = mp.pos;
    }
    for (uint32_t i = pairs; i-- > 0;) {
        if (canon[starts[i]] == 0xa1 && canon[starts[i] + 1] == 'v') {
            buf_append(b, "\xa1v\xd0\x01", 4);
            continue;
        }
        buf_append(b, canon + starts[i], ends[i] - starts[i]);
    }
    free(canon);
}

static int
read_one(const uint8_t *data,
         size_t size,
         vdp_cmd_t *cmd,
         vdp_envelope_t *env,
         char *reason,
         size_t rsize)
{
    vdp_reader_t r;
    vdp_reader_init(&r, data, size);
    return vdp_reader_next(&r, cmd, env, reason, rsize);
}

//  ---------------------------------------------------------------------------------------------
//  Names

START_TEST(op_and_status_names_round_trip)
{
    static const char *names[] = { "hello", "welcome", "pub", "receipt", "sub", "unsub", "deliver",
                                   "ping",  "pong",    "ok",  "error",   "bye", "ack",   "credit" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        vdp_op_t op = (vdp_op_t)(VDP_OP_HELLO + i);
        ck_assert_str_eq(vdp_op_name(op), names[i]);
        ck_assert_int_eq(vdp_op_from_name(names[i]), op);
    }
    ck_assert_ptr_null(vdp_op_name(VDP_OP_NONE));
    ck_assert_ptr_null(vdp_op_name((vdp_op_t)15));
    ck_assert_int_eq(vdp_op_from_name("HELLO"), VDP_OP_NONE);
    ck_assert_int_eq(vdp_op_from_name(NULL), VDP_OP_NONE);
    ck_assert_str_eq(vdp_receipt_status_name(VDP_RECEIPT_ACCEPTED), "accepted");
    ck_assert_str_eq(vdp_receipt_status_name(VDP_RECEIPT_DUPLICATE), "duplicate");
    ck_assert_str_eq(vdp_receipt_status_name(VDP_RECEIPT_REJECTED), "rejected");
    ck_assert_ptr_null(vdp_receipt_status_name(VDP_RECEIPT_NONE));
    ck_assert_int_eq(vdp_receipt_status_from_name("rejected"), VDP_RECEIPT_REJECTED);
    ck_assert_int_eq(vdp_receipt_status_from_name("ok"), VDP_RECEIPT_NONE);
    //  The public receipt enum and the wire one agree
    ck_assert_int_eq(VDP_RECEIPT_ACCEPTED, VD_RECEIPT_ACCEPTED);
    ck_assert_int_eq(VDP_RECEIPT_DUPLICATE, VD_RECEIPT_DUPLICATE);
    ck_assert_int_eq(VDP_RECEIPT_REJECTED, VD_RECEIPT_REJECTED);
}
END_TEST

//  ---------------------------------------------------------------------------------------------
//  Round trips

START_TEST(each_command_round_trips)
{
    buf_t raw = { 0 };
    foreign_envelope(&raw);
    vdp_writer_t w;
    vdp_writer_init(&w);
    write_case(&w, _i, raw.data, raw.size);
    ck_assert_uint_eq(w.count, 1);
    //  The frame alone, in an exact-size buffer
    uint8_t *frame = dup_bytes(w.data, w.size);
    vdp_reader_t r;
    vdp_reader_init(&r, frame, w.size);
    vdp_cmd_t cmd;
    vdp_envelope_t env = { 0 };
    char reason[160] = "";
    int rc = vdp_reader_next(&r, &cmd, &env, reason, sizeof reason);
    ck_assert_msg(rc == VD_OK, "case %d: %s (%s)", _i, vd_strerror_name(rc), reason);
    check_case(_i, &cmd, &env, raw.data, raw.size);
    ck_assert_int_eq(vdp_reader_next(&r, &cmd, &env, reason, sizeof reason), VD_ENOTFOUND);
    ck_assert(!r.broken);
    ck_assert_uint_eq(r.count, 1);
    vdp_envelope_reset(&env);
    free(frame);
    vdp_writer_release(&w);
    free(raw.data);
}
END_TEST

START_TEST(a_batch_of_every_command_reads_back_in_order)
{
    buf_t raw = { 0 };
    foreign_envelope(&raw);
    vdp_writer_t w;
    vdp_writer_init(&w);
    for (int c = 0; c < C_COUNT; c++)
        write_case(&w, c, raw.data, raw.size);
    ck_assert_uint_eq(w.count, C_COUNT);
    uint8_t *frame = dup_bytes(w.data, w.size);
    vdp_reader_t r;
    vdp_reader_init(&r, frame, w.size);
    vdp_cmd_t cmd;
    vdp_envelope_t env = { 0 };
    for (int c = 0; c < C_COUNT; c++) {
        char reason[160] = "";
        ck_assert_int_eq(vdp_reader_next(&r, &cmd, &env, reason, sizeof reason), VD_OK);
        check_case(c, &cmd, &env, raw.data, raw.size);
    }
    ck_assert_int_eq(vdp_reader_next(&r, &cmd, &env, NULL, 0), VD_ENOTFOUND);
    ck_assert_int_eq(vdp_reader_next(&r, &cmd, &env, NULL, 0), VD_ENOTFOUND);
    vdp_envelope_reset(&env);
    free(frame);
    vdp_writer_release(&w);
    free(raw.data);
}
END_TEST

START_TEST(peek_and_skip_find_what_next_reads)
{
    buf_t raw = { 0 };
    foreign_envelope(&raw);
    vdp_writer_t w;
    vdp_writer_init(&w);
    for (int c = 0; c < C_COUNT; c++)
        write_case(&w, c, raw.data, raw.size);
    uint8_t *frame = dup_bytes(w.data, w.size);
    vdp_reader_t skipper, reader;
    vdp_reader_init(&skipper, frame, w.size);
    vdp_reader_init(&reader, frame, w.size);
    vdp_cmd_t cmd;
    vdp_envelope_t env = { 0 };
    for (int c = 0; c < C_COUNT; c++) {
        vdp_op_t op = vdp_reader_peek(&skipper);
        size_t start = skipper.pos;
        ck_assert_uint_eq(skipper.pos, start); // peeking does not move
        ck_assert_int_eq(vdp_reader_skip(&skipper, NULL, 0), VD_OK);
        ck_assert_int_eq(vdp_reader_next(&reader, &cmd, &env, NULL, 0), VD_OK);
        ck_assert_int_eq(op, cmd.op);
        ck_assert_uint_eq(skipper.pos, reader.pos);
        //  The skipped span alone decodes to the same command.
        vdp_reader_t span;
        vdp_reader_init(&span, frame + start, skipper.pos - start);
        ck_assert_int_eq(vdp_reader_next(&span, &cmd, &env, NULL, 0), VD_OK);
        check_case(c, &cmd, &env, raw.data, raw.size);
        ck_assert_int_eq(vdp_reader_next(&span, &cmd, &env, NULL, 0), VD_ENOTFOUND);
    }
    ck_assert_int_eq(vdp_reader_peek(&skipper), VDP_OP_NONE);
    ck_assert_int_eq(vdp_reader_skip(&skipper, NULL, 0), VD_ENOTFOUND);
    vdp_envelope_reset(&env);
    free(frame);
    vdp_writer_release(&w);
    free(raw.data);
}
END_TEST

START_TEST(deliver_and_pub_preserve_raw_bytes_exactly)
{
    buf_t raw = { 0 };
    foreign_envelope(&raw);
    vdp_envelope_t env = { 0 };
    ck_assert_int_eq(vdp_envelope_decode(&env, raw.data, raw.size, NULL, 0), VD_OK);
    //  Re-encoding would not give the same bytes: that is what raw protects
    uint8_t *canon;
    size_t canon_size;
    ck_assert_int_eq(vdp_envelope_encode(&env, &canon, &canon_size), VD_OK);
    ck_assert(canon_size != raw.size || memcmp(canon, raw.data, raw.size) != 0);
    vdp_writer_t w;
    vdp_writer_init(&w);
    ck_assert_int_eq(vdp_writer_pub(&w, &env), VD_OK); // env->raw is set: sent as is
    ck_assert_int_eq(vdp_writer_deliver(&w, "report.>", NULL, 99, 5, raw.data, raw.size), VD_OK);
    ck_assert(memmem(w.data, w.size, raw.data, raw.size) != NULL);
    vdp_reader_t r;
    vdp_reader_init(&r, w.data, w.size);
    vdp_cmd_t cmd;
    vdp_envelope_t got = { 0 };
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(vdp_reader_next(&r, &cmd, &got, NULL, 0), VD_OK);
        ck_assert_uint_eq(got.raw_len, raw.size);
        ck_assert_mem_eq(got.raw, raw.data, raw.size);
        ck_assert(got.raw >= w.data && got.raw + got.raw_len <= w.data + w.size); // borrowed
        ck_assert(vdp_envelope_same(&got, &env));
    }
    //  Without raw, pub encodes the fields
    ck_assert_int_eq(vdp_envelope_drop_raw(&env), VD_OK);
    vdp_writer_reset(&w);
    ck_assert_int_eq(vdp_writer_pub(&w, &env), VD_OK);
    vdp_reader_init(&r, w.data, w.size);
    ck_assert_int_eq(vdp_reader_next(&r, &cmd, &got, NULL, 0), VD_OK);
    ck_assert_uint_eq(got.raw_len, canon_size);
    ck_assert_mem_eq(got.raw, canon, canon_size);
    vdp_envelope_reset(&env);
    vdp_writer_release(&w);
    free(canon);
    free(raw.data);
}
END_TEST

START_TEST(writer_cuts_long_text_at_a_character_boundary)
{
    char reason[600] = "";
    for (int i = 0; i < 150; i++)
        strcat(reason, "\xc3\xa8"); // 300 bytes of 'è'
    vdp_writer_t w;
    vdp_writer_init(&w);
    ck_assert_int_eq(vdp_writer_error(&w, 3, VD_EACCES, reason), VD_OK);
    ck_assert_int_eq(vdp_writer_receipt(&w, "", VDP_RECEIPT_REJECTED, 0, 0, VD_EFIELD, reason, 0),
                     VD_OK);
    vdp_reader_t r;
    vdp_reader_init(&r, w.data, w.size);
    vdp_cmd_t cmd;
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(vdp_reader_next(&r, &cmd, NULL, NULL, 0), VD_OK);
        size_t len = strlen(cmd.reason);
        ck_assert_uint_le(len, VDP_MAX_REASON);
        ck_assert_uint_eq(len % 2, 0);
        ck_assert_uint_ge(len, VDP_MAX_REASON - 1);
        ck_assert_mem_eq(cmd.reason, reason, len);
    }
    ck_assert_str_eq(cmd.id, ""); // a receipt for a pub whose id was unreadable
    vdp_writer_release(&w);
}
END_TEST

START_TEST(error_commands_carry_the_code_name)
{
    vdp_writer_t w;
    vdp_writer_init(&w);
    ck_assert_int_eq(vdp_writer_error(&w, 5, VD_ETLP, "withheld"), VD_OK);
    vdp_mp_t mp;
    vdp_mp_init(&mp, w.data, w.size);
    uint32_t pairs;
    ck_assert_int_eq(vdp_mp_read_map(&mp, &pairs), VD_OK);
    bool found = false;
    for (uint32_t i = 0; i < pairs; i++) {
        const char *key, *value;
        uint32_t len, value_len;
        ck_assert_int_eq(vdp_mp_read_str(&mp, &key, &len), VD_OK);
        if (len == 3 && memcmp(key, "err", 3) == 0) {
            ck_assert_int_eq(vdp_mp_read_str(&mp, &value, &value_len), VD_OK);
            ck_assert_uint_eq(value_len, 4);
            ck_assert_mem_eq(value, "ETLP", 4);
            found = true;
        } else {
            ck_assert_int_eq(vdp_mp_skip(&mp, 2), VD_OK);
        }
    }
    ck_assert(found);
    vdp_writer_release(&w);
}
END_TEST

START_TEST(writer_room_and_reset)
{
    vdp_writer_t w;
    vdp_writer_init(&w);
    ck_assert(vdp_writer_room(&w, VDP_MAX_FRAME));
    ck_assert(!vdp_writer_room(&w, VDP_MAX_FRAME + 1));
    for (unsigned i = 0; i < VDP_MAX_BATCH; i++) {
        ck_assert(vdp_writer_room(&w, 16));
        ck_assert_int_eq(vdp_writer_ping(&w, i), VD_OK);
    }
    ck_assert(!vdp_writer_room(&w, 0));
    ck_assert(!vdp_writer_room(&w, SIZE_MAX));
    size_t capacity = w.capacity;
    uint8_t *data = w.data;
    ck_assert_uint_ge(capacity, w.size);
    vdp_writer_reset(&w);
    ck_assert_uint_eq(w.size, 0);
    ck_assert_uint_eq(w.count, 0);
    ck_assert_ptr_eq(w.data, data); // the buffer is kept for the next frame
    ck_assert_uint_eq(w.capacity, capacity);
    ck_assert(vdp_writer_room(&w, 16));
    vdp_writer_release(&w);
    ck_assert_ptr_null(w.data);
    ck_assert_uint_eq(w.capacity, 0);
    vdp_writer_release(&w);
}
END_TEST

START_TEST(max_batch_is_accepted_one_more_is_a_limit)
{
    vdp_writer_t w;
    vdp_writer_init(&w);
    for (unsigned i = 0; i <= VDP_MAX_BATCH; i++)
        ck_assert_int_eq(vdp_writer_ping(&w, i), VD_OK);
    vdp_reader_t r;
    vdp_reader_init(&r, w.data, w.size);
    vdp_cmd_t cmd;
    for (unsigned i = 0; i < VDP_MAX_BATCH; i++) {
        ck_assert_int_eq(vdp_reader_next(&r, &cmd, NULL, NULL, 0), VD_OK);
        ck_assert_uint_eq(cmd.ref, i);
    }
    char reason[128];
    ck_assert_int_eq(vdp_reader_next(&r, &cmd, NULL, reason, sizeof reason), VD_ELIMIT);
    ck_assert(r.broken);
    ck_assert_int_eq(vdp_reader_next(&r, &cmd, NULL, NULL, 0), VD_ENOTFOUND);
    vdp_writer_release(&w);
}
END_TEST

START_TEST(a_frame_over_the_cap_is_a_limit)
{
    size_t size = VDP_MAX_FRAME + 1;
    uint8_t *frame = calloc(1, size); // 0x00 bytes: valid msgpack, but not maps
    ck_assert_ptr_nonnull(frame);
    vdp_reader_t r;
    vdp_reader_init(&r, frame, size);
    vdp_cmd_t cmd;
    ck_assert_int_eq(vdp_reader_next(&r, &cmd, NULL, NULL, 0), VD_ELIMIT);
    ck_assert(r.broken);
    free(frame);
}
END_TEST

//  ---------------------------------------------------------------------------------------------
//  Truncations

START_TEST(every_truncation_of_a_command_is_an_error)
{
    buf_t raw = { 0 };
    foreign_envelope(&raw);
    vdp_writer_t w;
    vdp_writer_init(&w);
    write_case(&w, _i, raw.data, raw.size);
    for (size_t n = 1; n < w.size; n++) {
        uint8_t *frame = dup_bytes(w.data, n);
        vdp_reader_t r;
        vdp_reader_init(&r, frame, n);
        vdp_cmd_t cmd;
        vdp_envelope_t env = { 0 };
        char reason[160] = "";
        int rc = vdp_reader_next(&r, &cmd, &env, reason, sizeof reason);
        ck_assert_msg(rc == VD_EPROTO, "case %d, %zu/%zu bytes: %s", _i, n, w.size,
                      vd_strerror_name(rc));
        ck_assert(r.broken);
        ck_assert_str_ne(reason, "");
        ck_assert_int_eq(vdp_reader_next(&r, &cmd, &env, NULL, 0), VD_ENOTFOUND);
        free(frame);
    }
    //  No bytes: no command
    vdp_cmd_t cmd;
    ck_assert_int_eq(read_one(w.data, 0, &cmd, NULL, NULL, 0), VD_ENOTFOUND);
    vdp_writer_release(&w);
    free(raw.data);
}
END_TEST

START_TEST(every_truncation_of_a_batch_keeps_the_whole_commands)
{
    buf_t raw = { 0 };
    foreign_envelope(&raw);
    vdp_writer_t w;
    vdp_writer_init(&w);
    size_t ends[C_COUNT];
    for (int c = 0; c < C_COUNT; c++) {
        write_case(&w, c, raw.data, raw.size);
        ends[c] = w.size;
    }
    for (size_t n = 0; n < w.size; n++) {
        uint8_t *frame = dup_bytes(w.data, n);
        vdp_reader_t r;
        vdp_reader_init(&r, frame, n);
        vdp_cmd_t cmd;
        vdp_envelope_t env = { 0 };
        size_t whole = 0;
        while (whole < C_COUNT && ends[whole] <= n)
            whole++;
        for (size_t c = 0; c < whole; c++) {
            ck_assert_int_eq(vdp_reader_next(&r, &cmd, &env, NULL, 0), VD_OK);
            check_case((int)c, &cmd, &env, raw.data, raw.size);
        }
        int rc = vdp_reader_next(&r, &cmd, &env, NULL, 0);
        bool at_boundary = whole == 0 ? n == 0 : ends[whole - 1] == n;
        ck_assert_int_eq(rc, at_boundary ? VD_ENOTFOUND : VD_EPROTO);
        ck_assert_int_eq(vdp_reader_next(&r, &cmd, &env, NULL, 0), VD_ENOTFOUND);
        free(frame);
    }
    vdp_writer_release(&w);
    free(raw.data);
}
END_TEST

//  ---------------------------------------------------------------------------------------------
//  Each key of each command: missing and repeated

//  Keys a command may lack.
static bool
optional_key(vdp_op_t op, const char *key, uint32_t len)
{
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(key, lit, sizeof(lit) - 1) == 0)
    switch (op) {
    case VDP_OP_HELLO:
        return IS("agent") || IS("credit");
    case VDP_OP_WELCOME:
        return IS("credit");
    case VDP_OP_ERROR:
        return IS("err");
    case VDP_OP_RECEIPT:
        return IS("err") || IS("retry_after");
    case VDP_OP_SUB:
        return IS("durable") || IS("from_seq") || IS("since");
    case VDP_OP_UNSUB:
    case VDP_OP_DELIVER:
        return IS("durable");
    case VDP_OP_OK:
        return IS("seq");
    case VDP_OP_ACK:
        return IS("ref");
    default:
        return false;
    }
#undef IS
}

/*  Rewrites the command map in[0..size) with pair `skip` left out (drop) or written twice
    (repeat), into b.  */
static void
rewrite_pair(const uint8_t *in, size_t size, uint32_t target, bool repeat, buf_t *b)
{
    vdp_mp_t mp;
    vdp_mp_init(&mp, in, size);
    uint32_t pairs;
    ck_assert_int_eq(vdp_mp_read_map(&mp, &pairs), VD_OK);
    msgpack_packer pk;
    msgpack_packer_init(&pk, b, buf_write);
    msgpack_pack_map(&pk, repeat ? pairs + 1 : pairs - 1);
    for (uint32_t i = 0; i < pairs; i++) {
        size_t start = mp.pos;
        ck_assert_int_eq(vdp_mp_skip(&mp, 0), VD_OK);
        ck_assert_int_eq(vdp_mp_skip(&mp, 3), VD_OK);
        if (i != target || repeat)
            buf_append(b, in + start, mp.pos - start);
        if (i == target && repeat)
            buf_append(b, in + start, mp.pos - start);
    }
}

START_TEST(each_missing_or_repeated_key_is_an_error)
{
    buf_t raw = { 0 };
    foreign_envelope(&raw);
    vdp_writer_t w;
    vdp_writer_init(&w);
    write_case(&w, _i, raw.data, raw.size);
    vdp_op_t op = s_case_op[_i];
    vdp_mp_t mp;
    vdp_mp_init(&mp, w.data, w.size);
    uint32_t pairs;
    ck_assert_int_eq(vdp_mp_read_map(&mp, &pairs), VD_OK);
    for (uint32_t k = 0; k < pairs; k++) {
        const char *key;
        uint32_t len;
        ck_assert_int_eq(vdp_mp_read_str(&mp, &key, &len), VD_OK);
        ck_assert_int_eq(vdp_mp_skip(&mp, 3), VD_OK);
        char name[16] = "";
        memcpy(name, key, len < 15 ? len : 15);
        for (int repeat = 0; repeat < 2; repeat++) {
            buf_t b = { 0 };
            rewrite_pair(w.data, w.size, k, repeat, &b);
            vdp_cmd_t cmd;
            vdp_envelope_t env = { 0 };
            char reason[160] = "";
            int rc = read_one(b.data, b.size, &cmd, &env, reason, sizeof reason);
            if (!repeat && optional_key(op, key, len)) {
                ck_assert_msg(rc == VD_OK, "%s without %s: %s (%s)", vdp_op_name(op), name,
                              vd_strerror_name(rc), reason);
            } else {
                ck_assert_msg(rc == VD_EPROTO, "%s %s %s: %s", vdp_op_name(op),
                              repeat ? "repeating" : "without", name, vd_strerror_name(rc));
                ck_assert_msg(strstr(reason, name) != NULL, "reason '%s' does not name '%s'",
                              reason, name);
                ck_assert_ptr_nonnull(strstr(reason, repeat ? "repeated" : "missing"));
            }
            free(b.data);
        }
    }
    vdp_writer_release(&w);
    free(raw.data);
}
END_TEST

//  ---------------------------------------------------------------------------------------------
//  Malformed frames: expected result of each vdp_reader_next() call, up to VD_ENOTFOUND

#define PING "\x82\xa2op\xa4ping\xa3ref\x01"
#define F(s) s, sizeof(s) - 1

static const struct {
    const char *frame;
    size_t len;
    int rc[4];
    bool broken;
} s_frames[] = {
    //  good, bad, good
    { F(PING "\x81\xa2op\xa4ping" PING), { VD_OK, VD_EPROTO, VD_OK, VD_ENOTFOUND }, false },
    { F(PING "\x82\xa2op\xa4nope\xa3ref\x01" PING),
      { VD_OK, VD_EPROTO, VD_OK, VD_ENOTFOUND },
      false },
    { F(PING "\x81\xa3ref\x01" PING), { VD_OK, VD_EPROTO, VD_OK, VD_ENOTFOUND }, false },
    { F(PING "\x01" PING), { VD_OK, VD_EPROTO, VD_OK, VD_ENOTFOUND }, false }, // not a map
    { F(PING "\x81\x01\x02" PING), { VD_OK, VD_EPROTO, VD_OK, VD_ENOTFOUND }, false },
    { F(PING "\x82\xa2op\x05\xa3ref\x01" PING), { VD_OK, VD_EPROTO, VD_OK, VD_ENOTFOUND }, false },
    //  trailing garbage that breaks the structure
    { F(PING "\xc1"), { VD_OK, VD_EPROTO, VD_ENOTFOUND }, true },
    { F(PING "\xa5"
             "ab"),
      { VD_OK, VD_EPROTO, VD_ENOTFOUND },
      true },
    { F(PING "\x82\xa2op"), { VD_OK, VD_EPROTO, VD_ENOTFOUND }, true },
    //  huge declared counts with few bytes
    { F("\xdd\xff\xff\xff\xff"), { VD_EPROTO, VD_ENOTFOUND }, true },
    { F("\xdf\xff\xff\xff\xff"), { VD_EPROTO, VD_ENOTFOUND }, true },
    { F("\xdb\xff\xff\xff\xff"), { VD_EPROTO, VD_ENOTFOUND }, true },
    { F("\xc6\xff\xff\xff\xff"), { VD_EPROTO, VD_ENOTFOUND }, true },
    { F("\x83\xa2op\xa4ping\xa3ref\x01\xa1x\xdd\xff\xff\xff\xff"),
      { VD_EPROTO, VD_ENOTFOUND },
      true },
    { F("\x83\xa2op\xa4ping\xa3ref\x01\xa1x\xc6\xff\xff\xff\xff\x00"),
      { VD_EPROTO, VD_ENOTFOUND },
      true },
    { F("\x82\xa2op\xa3pub\xa3"
        "env\xdf\xff\xff\xff\xff"),
      { VD_EPROTO, VD_ENOTFOUND },
      true },
    //  nesting: the command is level 1, VDP_MAX_DEPTH = 4
    { F("\x83\xa2op\xa4ping\xa3ref\x01\xa1x\x91\x91\x91\xc0"), { VD_OK, VD_ENOTFOUND }, false },
    { F("\x83\xa2op\xa4ping\xa3ref\x01\xa1x\x91\x91\x91\x91\xc0"),
      { VD_EPROTO, VD_ENOTFOUND },
      true },
    //  unknown keys are skipped, op need not come first
    { F("\x83\xa3ref\x07\xa6"
        "future\x82\xa1"
        "a\x92\x01\xcb\x40\x00\x00\x00\x00\x00\x00\x00\xa1"
        "b\xc0\xa2op\xa4ping"),
      { VD_OK, VD_ENOTFOUND },
      false },
    { F("\x84\xa2op\xa4ping\xa3ref\x01\xa1x\x01\xa1x\x02"), { VD_EPROTO, VD_ENOTFOUND }, false },
    { F("\x83\xa2op\xa4ping\xa3ref\x01\xa3ref\x02"), { VD_EPROTO, VD_ENOTFOUND }, false },
    { F("\x83\xa2op\xa4ping\xa2op\xa4ping\xa3ref\x01"), { VD_EPROTO, VD_ENOTFOUND }, false },
    //  wrong types and ranges
    { F("\x82\xa2op\xa4ping\xa3ref\xa1"
        "1"),
      { VD_EPROTO, VD_ENOTFOUND },
      false },
    { F("\x82\xa2op\xa4ping\xa3ref\xff"), { VD_EPROTO, VD_ENOTFOUND }, false },
    { F("\x83\xa2op\xa3sub\xa3ref\x01\xa7pattern\x05"), { VD_EPROTO, VD_ENOTFOUND }, false },
    { F("\x83\xa2op\xa3sub\xa3ref\x01\xa7pattern\xa3"
        "a\x00"
        "b"),
      { VD_EPROTO, VD_ENOTFOUND },
      false },
    { F("\x85\xa2op\xa5hello\xa3ref\x01\xa1v\x01\xa5"
        "agent\x01\xa2hb\x0a"),
      { VD_EPROTO, VD_ENOTFOUND },
      false },
    { F("\x84\xa2op\xa5hello\xa3ref\x01\xa1v\x01\xa2hb\xcf\x00\x00\x00\x01\x00\x00\x00\x00"),
      { VD_EPROTO, VD_ENOTFOUND },
      false },
    { F("\x84\xa2op\xa5hello\xa3ref\x01\xa1v\x01\xa2hb\xce\xff\xff\xff\xff"),
      { VD_OK, VD_ENOTFOUND },
      false },
    { F("\x84\xa2op\xa5"
        "error\xa3ref\x00\xa4"
        "code\xd2\x7f\xff\xff\xff\xa6reason\xa0"),
      { VD_EPROTO, VD_ENOTFOUND },
      false },
    { F("\x84\xa2op\xa5"
        "error\xa3ref\x00\xa4"
        "code\xd3\xff\xff\xff\xff\x7f\xff\xff\xff\xa6reason"
        "\xa0"),
      { VD_EPROTO, VD_ENOTFOUND },
      false },
    { F("\x84\xa2op\xa5"
        "error\xa3ref\x00\xa4"
        "code\xd0\xfd\xa6reason\xa0"),
      { VD_OK, VD_ENOTFOUND },
      false },
    //  bad enums and ids in receipts
    { F("\x85\xa2op\xa7receipt\xa2id\xa0\xa6status\xa2ok\xa3seq\x01\xa2"
        "at\x01"),
      { VD_EPROTO, VD_ENOTFOUND },
      false },
    { F("\x85\xa2op\xa7receipt\xa2id\xa1x\xa6status\xa8"
        "accepted\xa3seq\x01\xa2"
        "at\x01"),
      { VD_EPROTO, VD_ENOTFOUND },
      false },
    { F("\x85\xa2op\xa7receipt\xa2id\xa0\xa6status\xa8"
        "accepted\xa3seq\x01\xa2"
        "at\x01"),
      { VD_OK, VD_ENOTFOUND },
      false },
    { F("\x84\xa2op\xa7receipt\xa2id\xa0\xa6status\xa8rejected\xa4"
        "code\xf6"),
      { VD_EPROTO, VD_ENOTFOUND },
      false }, // no reason
    { F("\x85\xa2op\xa7receipt\xa2id\xa0\xa6status\xa8rejected\xa4"
        "code\x01\xa6reason\xa0"),
      { VD_EPROTO, VD_ENOTFOUND },
      false }, // code is not an error
    //  keys over the cap (65 keys): the map itself is over a limit
    { F("\xde\x00\x41"), { VD_EPROTO, VD_ENOTFOUND }, true },
};

START_TEST(malformed_frames_as_in_the_table)
{
    size_t len = s_frames[_i].len;
    uint8_t *frame = dup_bytes((const uint8_t *)s_frames[_i].frame, len);
    vdp_reader_t r;
    vdp_reader_init(&r, frame, len);
    for (int k = 0; k < 4; k++) {
        vdp_cmd_t cmd;
        vdp_envelope_t env = { 0 };
        char reason[160] = "";
        int rc = vdp_reader_next(&r, &cmd, &env, reason, sizeof reason);
        ck_assert_msg(rc == s_frames[_i].rc[k], "row %d, call %d: %s, want %s (%s)", _i, k,
                      vd_strerror_name(rc), vd_strerror_name(s_frames[_i].rc[k]), reason);
        if (rc != VD_OK && rc != VD_ENOTFOUND)
            ck_assert_str_ne(reason, "");
        if (rc == VD_ENOTFOUND)
            break;
    }
    ck_assert(r.broken == s_frames[_i].broken);
    free(frame);
}
END_TEST

START_TEST(skip_breaks_where_next_breaks)
{
    size_t len = s_frames[_i].len;
    uint8_t *frame = dup_bytes((const uint8_t *)s_frames[_i].frame, len);
    vdp_reader_t skipper;
    vdp_reader_init(&skipper, frame, len);
    int rc = VD_OK;
    for (int k = 0; k < 8 && rc == VD_OK; k++)
        rc = vdp_reader_skip(&skipper, NULL, 0);
    ck_assert_msg(skipper.broken == s_frames[_i].broken, "row %d: skip broken=%d, next broken=%d",
                  _i, skipper.broken, s_frames[_i].broken);
    free(frame);
}
END_TEST

START_TEST(a_map_over_the_key_cap_breaks_the_frame)
{
    for (uint32_t keys = VDP_MAX_MAP_KEYS; keys <= VDP_MAX_MAP_KEYS + 1; keys++) {
        buf_t b = { 0 };
        msgpack_packer pk;
        msgpack_packer_init(&pk, &b, buf_write);
        msgpack_pack_map(&pk, keys);
        pack_cstr(&pk, "op");
        pack_cstr(&pk, "ping");
        pack_cstr(&pk, "ref");
        msgpack_pack_uint8(&pk, 1);
        for (uint32_t i = 2; i < keys; i++) {
            char key[16];
            snprintf(key, sizeof key, "k%u", i);
            pack_cstr(&pk, key);
            msgpack_pack_nil(&pk);
        }
        vdp_reader_t r;
        vdp_reader_init(&r, b.data, b.size);
        vdp_cmd_t cmd;
        int rc = vdp_reader_next(&r, &cmd, NULL, NULL, 0);
        ck_assert_int_eq(rc, keys <= VDP_MAX_MAP_KEYS ? VD_OK : VD_ELIMIT);
        ck_assert(r.broken == (keys > VDP_MAX_MAP_KEYS));
        free(b.data);
    }
}
END_TEST

START_TEST(errors_keep_op_and_ref_for_the_answer)
{
    //  {op: sub, pattern: 5, ref: 9}: the bad pattern comes before the ref
    static const char frame[] = "\x83\xa2op\xa3sub\xa7pattern\x05\xa3ref\x09";
    vdp_cmd_t cmd;
    char reason[160];
    ck_assert_int_eq(
        read_one((const uint8_t *)frame, sizeof frame - 1, &cmd, NULL, reason, sizeof reason),
        VD_EPROTO);
    ck_assert_int_eq(cmd.op, VDP_OP_SUB);
    ck_assert_uint_eq(cmd.ref, 9);
    ck_assert_ptr_nonnull(strstr(reason, "pattern"));
    //  A pattern over the cap is a limit, and the ref is still known
    char pattern[VDP_MAX_TOPIC + 2];
    memset(pattern, 'a', sizeof pattern - 1);
    pattern[sizeof pattern - 1] = '\0';
    vdp_writer_t w;
    vdp_writer_init(&w);
    ck_assert_int_eq(vdp_writer_sub(&w, 77, pattern), VD_OK);
    ck_assert_int_eq(read_one(w.data, w.size, &cmd, NULL, reason, sizeof reason), VD_ELIMIT);
    ck_assert_int_eq(cmd.op, VDP_OP_SUB);
    ck_assert_uint_eq(cmd.ref, 77);
    vdp_writer_release(&w);
}
END_TEST

//  Pub frames with a bad envelope: the reader reports the envelope's error and keeps going.
START_TEST(pub_with_a_bad_envelope_reports_and_continues)
{
    static const int expect[] = { VD_EFIELD, VD_EFIELD, VD_ELIMIT, VD_EFIELD };
    vdp_writer_t w;
    vdp_writer_init(&w);
    vdp_envelope_t e;
    uint8_t *big = calloc(1, VDP_MAX_BODY + 1);
    ck_assert_ptr_nonnull(big);
    fill_env(&e);
    strcpy(e.sender, "comune:I726"); // not an org id
    ck_assert_int_eq(vdp_writer_pub(&w, &e), VD_OK);
    fill_env(&e);
    strcpy(e.id, "0f8fad5b-d9cb-469f-a165-70867728950"); // one digit short
    ck_assert_int_eq(vdp_writer_pub(&w, &e), VD_OK);
    fill_env(&e);
    e.body = big;
    e.body_len = VDP_MAX_BODY + 1;
    ck_assert_int_eq(vdp_writer_pub(&w, &e), VD_OK);
    fill_env(&e);
    e.tlp = VDP_TLP_NONE; // so not encoded: a required field missing
    ck_assert_int_eq(vdp_writer_pub(&w, &e), VD_OK);
    ck_assert_int_eq(vdp_writer_ping(&w, 1), VD_OK);
    free(big);

    vdp_reader_t r;
    vdp_reader_init(&r, w.data, w.size);
    vdp_cmd_t cmd;
    vdp_envelope_t env = { 0 };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        char reason[160] = "";
        int rc = vdp_reader_next(&r, &cmd, &env, reason, sizeof reason);
        ck_assert_msg(rc == expect[i], "pub %zu: %s (%s)", i, vd_strerror_name(rc), reason);
        ck_assert_int_eq(cmd.op, VDP_OP_PUB);
        //  What the rejection receipt needs, when it was valid
        ck_assert_str_eq(env.id, i == 1 ? "" : ID1);
        ck_assert_str_eq(env.sender, i == 0 ? "" : "comune:i726");
        ck_assert(!r.broken);
    }
    ck_assert_int_eq(vdp_reader_next(&r, &cmd, &env, NULL, 0), VD_OK);
    ck_assert_int_eq(cmd.op, VDP_OP_PING);
    ck_assert_int_eq(vdp_reader_next(&r, &cmd, &env, NULL, 0), VD_ENOTFOUND);
    vdp_writer_release(&w);
}
END_TEST

START_TEST(pub_with_too_many_recipients_is_a_limit)
{
    //  33 recipients, built by hand: the encoder never writes more than VDP_MAX_TO
    vdp_envelope_t e;
    fill_env(&e);
    e.stage = VDP_STAGE_NONE; // 13 keys: a fixmap, so the count is one byte
    e.aware_at = 0;
    e.lang[0] = '\0';
    uint8_t *env_bytes;
    size_t env_size;
    ck_assert_int_eq(vdp_envelope_encode(&e, &env_bytes, &env_size), VD_OK);
    ck_assert_int_lt(env_bytes[0], 0x8f); // a fixmap with room for one more key
    buf_t b = { 0 };
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, buf_write);
    msgpack_pack_map(&pk, 2);
    pack_cstr(&pk, "op");
    pack_cstr(&pk, "pub");
    pack_cstr(&pk, "env");
    uint8_t header = (uint8_t)(env_bytes[0] + 1);
    buf_append(&b, &header, 1);
    buf_append(&b, env_bytes + 1, env_size - 1);
    pack_cstr(&pk, "to");
    msgpack_pack_array(&pk, VDP_MAX_TO + 1);
    for (unsigned i = 0; i <= VDP_MAX_TO; i++) {
        char org[24];
        snprintf(org, sizeof org, "comune:x%u", i);
        pack_cstr(&pk, org);
    }
    vdp_cmd_t cmd;
    vdp_envelope_t env = { 0 };
    char reason[160];
    ck_assert_int_eq(read_one(b.data, b.size, &cmd, &env, reason, sizeof reason), VD_ELIMIT);
    ck_assert_ptr_nonnull(strstr(reason, "to"));
    ck_assert_str_eq(env.id, ID1);
    free(b.data);
    free(env_bytes);
}
END_TEST

//  Values the new history and flow-control keys refuse, each with the key named in the reason.
START_TEST(history_and_credit_values_are_checked)
{
    static const struct {
        const char *what;
        const char *key; // named in the reason
    } cases[] = {
        { "sub with from_seq and since", "since" },
        { "sub with a bad durable name", "durable" },
        { "sub since before 1970", "since" },
        { "ack with a bad durable name", "durable" },
        { "credit of zero", "credit" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vdp_writer_t w;
        vdp_writer_init(&w);
        switch (i) {
        case 0:
            ck_assert_int_eq(vdp_writer_sub_from(&w, 1, "bulletin.*", NULL, 5, 1718000000000),
                             VD_OK);
            break;
        case 1:
            ck_assert_int_eq(vdp_writer_sub_from(&w, 1, "bulletin.*", "no spaces", 0, 0), VD_OK);
            break;
        case 2:
            ck_assert_int_eq(vdp_writer_sub_from(&w, 1, "bulletin.*", NULL, 0, -5), VD_OK);
            break;
        case 3:
            ck_assert_int_eq(vdp_writer_ack(&w, 1, "a/b", 3), VD_OK);
            break;
        default:
            ck_assert_int_eq(vdp_writer_credit(&w, 0), VD_OK);
        }
        vdp_cmd_t cmd;
        char reason[160] = "";
        int rc = read_one(w.data, w.size, &cmd, NULL, reason, sizeof reason);
        ck_assert_msg(rc == VD_EPROTO, "%s: %s", cases[i].what, vd_strerror_name(rc));
        ck_assert_msg(strstr(reason, cases[i].key), "%s: reason '%s'", cases[i].what, reason);
        ck_assert_uint_eq(cmd.ref, i == 4 ? 0 : 1); // salvaged for the error reply
        vdp_writer_release(&w);
    }
    //  A name of exactly VDP_MAX_DURABLE bytes is fine; one more is a limit.
    char name[VDP_MAX_DURABLE + 2];
    memset(name, 'n', sizeof name - 1);
    name[VDP_MAX_DURABLE] = '\0';
    ck_assert(vdp_durable_valid(name));
    name[VDP_MAX_DURABLE] = 'n';
    name[VDP_MAX_DURABLE + 1] = '\0';
    ck_assert(!vdp_durable_valid(name));
    vdp_writer_t w;
    vdp_writer_init(&w);
    ck_assert_int_eq(vdp_writer_ack(&w, 0, name, 1), VD_OK);
    vdp_cmd_t cmd;
    ck_assert_int_eq(read_one(w.data, w.size, &cmd, NULL, NULL, 0), VD_ELIMIT);
    vdp_writer_release(&w);
    ck_assert(!vdp_durable_valid(""));
    ck_assert(!vdp_durable_valid(NULL));
    ck_assert(vdp_durable_valid("Cosc_Toscana-1.main"));
}
END_TEST

Suite *
vdp_msg_suite(void)
{
    Suite *s = suite_create("vdp_msg");
    TCase *tc = tcase_create("names");
    tcase_add_test(tc, op_and_status_names_round_trip);
    suite_add_tcase(s, tc);

    tc = tcase_create("round_trip");
    tcase_add_loop_test(tc, each_command_round_trips, 0, C_COUNT);
    tcase_add_test(tc, a_batch_of_every_command_reads_back_in_order);
    tcase_add_test(tc, peek_and_skip_find_what_next_reads);
    tcase_add_test(tc, deliver_and_pub_preserve_raw_bytes_exactly);
    tcase_add_test(tc, writer_cuts_long_text_at_a_character_boundary);
    tcase_add_test(tc, error_commands_carry_the_code_name);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_test(tc, writer_room_and_reset);
    tcase_add_test(tc, max_batch_is_accepted_one_more_is_a_limit);
    tcase_add_test(tc, a_frame_over_the_cap_is_a_limit);
    tcase_add_test(tc, a_map_over_the_key_cap_breaks_the_frame);
    tcase_add_test(tc, pub_with_too_many_recipients_is_a_limit);
    suite_add_tcase(s, tc);

    tc = tcase_create("reader_rejects");
    tcase_add_loop_test(tc, every_truncation_of_a_command_is_an_error, 0, C_COUNT);
    tcase_add_test(tc, every_truncation_of_a_batch_keeps_the_whole_commands);
    tcase_add_loop_test(tc, each_missing_or_repeated_key_is_an_error, 0, C_COUNT);
    tcase_add_test(tc, history_and_credit_values_are_checked);
    tcase_add_loop_test(tc, malformed_frames_as_in_the_table, 0,
                        sizeof s_frames / sizeof s_frames[0]);
    tcase_add_loop_test(tc, skip_breaks_where_next_breaks, 0, sizeof s_frames / sizeof s_frames[0]);
    tcase_add_test(tc, errors_keep_op_and_ref_for_the_answer);
    tcase_add_test(tc, pub_with_a_bad_envelope_reports_and_continues);
    suite_add_tcase(s, tc);
    return s;
}

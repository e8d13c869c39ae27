/*  libFuzzer target: the frame reader on arbitrary bytes. It must never crash and must always
    finish: every call either consumes a command or ends the frame. Each command it accepts is
    written again with vdp_writer_* and read back, and must come back equal.  */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vedetta.h"
#include "vdp_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

//  The optional durable name as the writers take it.
static const char *
s_durable(const vdp_cmd_t *cmd)
{
    return cmd->durable[0] ? cmd->durable : NULL;
}

//  Writes `cmd` (and `env`) again; false if the writer could not allocate.
static bool
s_rewrite(vdp_writer_t *w, const vdp_cmd_t *cmd, const vdp_envelope_t *env)
{
    switch (cmd->op) {
    case VDP_OP_HELLO:
        return vdp_writer_hello(w, cmd->ref, cmd->agent, cmd->heartbeat_ms, cmd->credit) == VD_OK;
    case VDP_OP_WELCOME:
        return vdp_writer_welcome(w, cmd) == VD_OK;
    case VDP_OP_PUB:
        return vdp_writer_pub(w, env) == VD_OK;
    case VDP_OP_RECEIPT:
        return vdp_writer_receipt(w, cmd->id, cmd->status, cmd->seq, cmd->at, cmd->code,
                                  cmd->reason, cmd->retry_after_ms) == VD_OK;
    case VDP_OP_SUB:
        return vdp_writer_sub_from(w, cmd->ref, cmd->pattern, s_durable(cmd), cmd->from_seq,
                                   cmd->since) == VD_OK;
    case VDP_OP_UNSUB:
        return vdp_writer_unsub(w, cmd->ref, cmd->pattern, s_durable(cmd)) == VD_OK;
    case VDP_OP_DELIVER:
        return vdp_writer_deliver(w, cmd->pattern, s_durable(cmd), cmd->seq, cmd->at, env->raw,
                                  env->raw_len) == VD_OK;
    case VDP_OP_ACK:
        return vdp_writer_ack(w, cmd->ref, cmd->durable, cmd->seq) == VD_OK;
    case VDP_OP_CREDIT:
        return vdp_writer_credit(w, cmd->credit) == VD_OK;
    case VDP_OP_PING:
        return vdp_writer_ping(w, cmd->ref) == VD_OK;
    case VDP_OP_PONG:
        return vdp_writer_pong(w, cmd->ref) == VD_OK;
    case VDP_OP_OK:
        return vdp_writer_ok_seq(w, cmd->ref, cmd->seq) == VD_OK;
    case VDP_OP_ERROR:
        return vdp_writer_error(w, cmd->ref, cmd->code, cmd->reason) == VD_OK;
    case VDP_OP_BYE:
        return vdp_writer_bye(w) == VD_OK;
    case VDP_OP_NONE:
        break;
    }
    abort(); // the reader returned VD_OK without an op
}

//  The fields of `op` that travel on the wire are equal.
static void
s_check_same(const vdp_cmd_t *a, const vdp_cmd_t *b)
{
    CHECK(a->op == b->op);
    switch (a->op) {
    case VDP_OP_HELLO:
        CHECK(a->ref == b->ref && a->heartbeat_ms == b->heartbeat_ms && a->credit == b->credit);
        CHECK(strcmp(a->agent, b->agent) == 0);
        CHECK(b->version == VDP_VERSION); // the writer speaks our version
        break;
    case VDP_OP_WELCOME:
        CHECK(a->ref == b->ref && a->version == b->version && a->heartbeat_ms == b->heartbeat_ms);
        CHECK(a->max_body == b->max_body && a->max_frame == b->max_frame);
        CHECK(a->max_batch == b->max_batch);
        CHECK(strcmp(a->broker, b->broker) == 0 && strcmp(a->org, b->org) == 0);
        CHECK(strcmp(a->role, b->role) == 0);
        CHECK(a->jur_count == b->jur_count && a->inbox_count == b->inbox_count);
        for (size_t i = 0; i < a->jur_count; i++)
            CHECK(strcmp(a->jur[i], b->jur[i]) == 0);
        for (size_t i = 0; i < a->inbox_count; i++)
            CHECK(strcmp(a->inbox[i], b->inbox[i]) == 0);
        break;
    case VDP_OP_RECEIPT:
        CHECK(strcmp(a->id, b->id) == 0 && a->status == b->status);
        if (a->status == VDP_RECEIPT_REJECTED)
            CHECK(a->code == b->code && strcmp(a->reason, b->reason) == 0);
        else
            CHECK(a->seq == b->seq && a->at == b->at);
        break;
    case VDP_OP_SUB:
    case VDP_OP_UNSUB:
        CHECK(a->ref == b->ref && strcmp(a->pattern, b->pattern) == 0);
        CHECK(strcmp(a->durable, b->durable) == 0);
        CHECK(a->from_seq == b->from_seq && a->since == b->since);
        break;
    case VDP_OP_DELIVER:
        CHECK(a->seq == b->seq && a->at == b->at && strcmp(a->pattern, b->pattern) == 0);
        CHECK(strcmp(a->durable, b->durable) == 0);
        break;
    case VDP_OP_ACK:
        CHECK(a->ref == b->ref && a->seq == b->seq && strcmp(a->durable, b->durable) == 0);
        break;
    case VDP_OP_CREDIT:
        CHECK(a->credit == b->credit);
        break;
    case VDP_OP_OK:
        CHECK(a->seq == b->seq);
        /* fall through */
    case VDP_OP_PING:
    case VDP_OP_PONG:
        CHECK(a->ref == b->ref);
        break;
    case VDP_OP_ERROR:
        CHECK(a->ref == b->ref && a->code == b->code && strcmp(a->reason, b->reason) == 0);
        break;
    default:
        break;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vdp_reader_t reader;
    vdp_reader_init(&reader, data, size);
    vdp_writer_t w;
    vdp_writer_init(&w);
    vdp_cmd_t cmd, back;
    vdp_envelope_t env = { 0 }, env_back = { 0 };
    char reason[256];
    size_t calls = 0;
    for (;;) {
        size_t before = reader.pos;
        int rc = vdp_reader_next(&reader, &cmd, &env, reason, sizeof reason);
        CHECK(++calls <= VDP_MAX_BATCH + 2); // the commands, one ELIMIT, one ENOTFOUND
        if (rc == VD_ENOTFOUND)
            break;
        CHECK(reader.pos > before || reader.broken);
        if (rc != VD_OK) {
            CHECK(rc == VD_EPROTO || rc == VD_ELIMIT || rc == VD_EFIELD);
            CHECK(reason[0] != '\0');
            continue;
        }
        CHECK(cmd.op != VDP_OP_NONE);
        vdp_writer_reset(&w);
        if (!s_rewrite(&w, &cmd, &env))
            continue; // out of memory
        vdp_reader_t again;
        vdp_reader_init(&again, w.data, w.size);
        CHECK(vdp_reader_next(&again, &back, &env_back, reason, sizeof reason) == VD_OK);
        s_check_same(&cmd, &back);
        if (cmd.op == VDP_OP_PUB || cmd.op == VDP_OP_DELIVER) {
            //  Raw envelope bytes travel unchanged
            CHECK(env_back.raw_len == env.raw_len);
            CHECK(memcmp(env_back.raw, env.raw, env.raw_len) == 0);
            CHECK(vdp_envelope_same(&env, &env_back));
        }
        CHECK(vdp_reader_next(&again, &back, &env_back, NULL, 0) == VD_ENOTFOUND);
    }
    CHECK(reader.count <= VDP_MAX_BATCH);
    vdp_envelope_reset(&env);
    vdp_envelope_reset(&env_back);
    vdp_writer_release(&w);
    return 0;
}

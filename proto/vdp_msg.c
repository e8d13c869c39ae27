/*  vdp_msg: commands and frames (PROTOCOL.md §3, §5).

    Reading a frame, per command: decode the map at the cursor in one pass (the envelope of a
    pub or deliver included, in place). Only if that fails does vdp_mp_skip walk the command's
    msgpack structure, with the same depth and key caps, to tell a command whose end can be
    found (a semantic error: report it, go on with the next) from one whose end cannot (the frame
    is broken: drop the rest). The first key is normally "op" (our writer puts it first);
    otherwise one extra pass over the keys finds it. No allocation; linear in the frame.
    Writing: msgpack-c's packer appends to the writer's buffer through s_write, which grows it
    geometrically; deliver appends the stored envelope bytes unchanged.  */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "vdp_errors.h"
#include "vedetta.h"
#include "vdp_ids.h"
#include "vdp_mp.h"
#include "vdp_msg.h"
#include "vdp_topic.h"

//  Container levels an envelope may use inside a command (see vdp_envelope.c)
#define S_ENV_DEPTH (VDP_MAX_DEPTH - 1u)
//  First allocation of a writer's buffer
#define S_WRITER_MIN 4096u

static const char *const s_op_names[] = { NULL,  "hello", "welcome", "pub",  "receipt",
                                          "sub", "unsub", "deliver", "ping", "pong",
                                          "ok",  "error", "bye",     "ack",  "credit" };
static const char *const s_receipt_names[] = { NULL, "accepted", "duplicate", "rejected" };

#define S_COUNT(table) (sizeof(table) / sizeof(table)[0])

static int
s_lookup(const char *const *table, size_t count, const char *str, size_t len)
{
    for (size_t i = 1; i < count && len > 0; i++)
        if (table[i][0] == str[0] && strlen(table[i]) == len && memcmp(table[i], str, len) == 0)
            return (int)i;
    return 0;
}

const char *
vdp_op_name(vdp_op_t op)
{
    if ((int)op <= 0 || (size_t)op >= S_COUNT(s_op_names))
        return NULL;
    return s_op_names[op];
}

vdp_op_t
vdp_op_from_name(const char *name)
{
    return name ? (vdp_op_t)s_lookup(s_op_names, S_COUNT(s_op_names), name, strlen(name))
                : VDP_OP_NONE;
}

const char *
vdp_receipt_status_name(vdp_receipt_status_t s)
{
    if ((int)s <= 0 || (size_t)s >= S_COUNT(s_receipt_names))
        return NULL;
    return s_receipt_names[s];
}

vdp_receipt_status_t
vdp_receipt_status_from_name(const char *s)
{
    return s ? (vdp_receipt_status_t)s_lookup(s_receipt_names, S_COUNT(s_receipt_names), s,
                                              strlen(s))
             : VDP_RECEIPT_NONE;
}

void
vdp_cmd_reset(vdp_cmd_t *self)
{
    assert(self);
    memset(self, 0, sizeof *self);
}

//  ---------------------------------------------------------------------------------------------
//  Command keys

typedef enum {
    K_OP,
    K_REF,
    K_V,
    K_AGENT,
    K_HB,
    K_BROKER,
    K_ORG,
    K_ROLE,
    K_JUR,
    K_INBOX,
    K_MAX_BODY,
    K_MAX_FRAME,
    K_MAX_BATCH,
    K_ENV,
    K_ID,
    K_STATUS,
    K_SEQ,
    K_AT,
    K_CODE,
    K_ERR,
    K_REASON,
    K_PATTERN,
    K_SUB,
    K_CREDIT,
    K_DURABLE,
    K_FROM_SEQ,
    K_SINCE,
    K_RETRY_AFTER,
    K_COUNT
} s_key_t;

static const char *const s_key_names[K_COUNT] = {
    "op",      "ref",    "v",      "agent",    "hb",        "broker",    "org",
    "role",    "jur",    "inbox",  "max_body", "max_frame", "max_batch", "env",
    "id",      "status", "seq",    "at",       "code",      "err",       "reason",
    "pattern", "sub",    "credit", "durable",  "from_seq",  "since",     "retry_after"
};

#define S_BIT(k) (1u << (k))

//  Keys each op knows (others are skipped as unknown), and those it requires. Receipts have
//  conditional keys checked after the map is read.
static const uint32_t s_known[] = {
    [VDP_OP_HELLO] =
        S_BIT(K_OP) | S_BIT(K_REF) | S_BIT(K_V) | S_BIT(K_AGENT) | S_BIT(K_HB) | S_BIT(K_CREDIT),
    [VDP_OP_WELCOME] = S_BIT(K_OP) | S_BIT(K_REF) | S_BIT(K_V) | S_BIT(K_BROKER) | S_BIT(K_ORG) |
                       S_BIT(K_ROLE) | S_BIT(K_JUR) | S_BIT(K_INBOX) | S_BIT(K_HB) |
                       S_BIT(K_MAX_BODY) | S_BIT(K_MAX_FRAME) | S_BIT(K_MAX_BATCH) |
                       S_BIT(K_CREDIT),
    [VDP_OP_PUB] = S_BIT(K_OP) | S_BIT(K_ENV),
    [VDP_OP_RECEIPT] = S_BIT(K_OP) | S_BIT(K_ID) | S_BIT(K_STATUS) | S_BIT(K_SEQ) | S_BIT(K_AT) |
                       S_BIT(K_CODE) | S_BIT(K_ERR) | S_BIT(K_REASON) | S_BIT(K_RETRY_AFTER),
    [VDP_OP_SUB] = S_BIT(K_OP) | S_BIT(K_REF) | S_BIT(K_PATTERN) | S_BIT(K_DURABLE) |
                   S_BIT(K_FROM_SEQ) | S_BIT(K_SINCE),
    [VDP_OP_UNSUB] = S_BIT(K_OP) | S_BIT(K_REF) | S_BIT(K_PATTERN) | S_BIT(K_DURABLE),
    [VDP_OP_DELIVER] =
        S_BIT(K_OP) | S_BIT(K_SUB) | S_BIT(K_DURABLE) | S_BIT(K_SEQ) | S_BIT(K_AT) | S_BIT(K_ENV),
    [VDP_OP_PING] = S_BIT(K_OP) | S_BIT(K_REF),
    [VDP_OP_PONG] = S_BIT(K_OP) | S_BIT(K_REF),
    [VDP_OP_OK] = S_BIT(K_OP) | S_BIT(K_REF) | S_BIT(K_SEQ),
    [VDP_OP_ERROR] = S_BIT(K_OP) | S_BIT(K_REF) | S_BIT(K_CODE) | S_BIT(K_ERR) | S_BIT(K_REASON),
    [VDP_OP_BYE] = S_BIT(K_OP),
    [VDP_OP_ACK] = S_BIT(K_OP) | S_BIT(K_REF) | S_BIT(K_DURABLE) | S_BIT(K_SEQ),
    [VDP_OP_CREDIT] = S_BIT(K_OP) | S_BIT(K_CREDIT),
};

static const uint32_t s_required[] = {
    [VDP_OP_HELLO] = S_BIT(K_OP) | S_BIT(K_REF) | S_BIT(K_V) | S_BIT(K_HB),
    [VDP_OP_WELCOME] = S_BIT(K_OP) | S_BIT(K_REF) | S_BIT(K_V) | S_BIT(K_BROKER) | S_BIT(K_ORG) |
                       S_BIT(K_ROLE) | S_BIT(K_JUR) | S_BIT(K_INBOX) | S_BIT(K_HB) |
                       S_BIT(K_MAX_BODY) | S_BIT(K_MAX_FRAME) | S_BIT(K_MAX_BATCH),
    [VDP_OP_PUB] = S_BIT(K_OP) | S_BIT(K_ENV),
    [VDP_OP_RECEIPT] = S_BIT(K_OP) | S_BIT(K_ID) | S_BIT(K_STATUS),
    [VDP_OP_SUB] = S_BIT(K_OP) | S_BIT(K_REF) | S_BIT(K_PATTERN),
    [VDP_OP_UNSUB] = S_BIT(K_OP) | S_BIT(K_REF) | S_BIT(K_PATTERN),
    [VDP_OP_DELIVER] = S_BIT(K_OP) | S_BIT(K_SUB) | S_BIT(K_SEQ) | S_BIT(K_AT) | S_BIT(K_ENV),
    [VDP_OP_PING] = S_BIT(K_OP) | S_BIT(K_REF),
    [VDP_OP_PONG] = S_BIT(K_OP) | S_BIT(K_REF),
    [VDP_OP_OK] = S_BIT(K_OP) | S_BIT(K_REF),
    [VDP_OP_ERROR] = S_BIT(K_OP) | S_BIT(K_REF) | S_BIT(K_CODE) | S_BIT(K_REASON),
    [VDP_OP_BYE] = S_BIT(K_OP),
    [VDP_OP_ACK] = S_BIT(K_OP) | S_BIT(K_DURABLE) | S_BIT(K_SEQ),
    [VDP_OP_CREDIT] = S_BIT(K_OP) | S_BIT(K_CREDIT),
};

#define S_IS(lit) (len == sizeof(lit) - 1 && memcmp(key, lit, sizeof(lit) - 1) == 0)

//  The key a string names, -1 if none. Switches on length first: it runs for every key.
static int
s_key_index(const char *key, uint32_t len)
{
    switch (len) {
    case 1:
        return key[0] == 'v' ? K_V : -1;
    case 2:
        if (S_IS("op"))
            return K_OP;
        if (S_IS("id"))
            return K_ID;
        if (S_IS("at"))
            return K_AT;
        return S_IS("hb") ? K_HB : -1;
    case 3:
        if (S_IS("ref"))
            return K_REF;
        if (S_IS("env"))
            return K_ENV;
        if (S_IS("seq"))
            return K_SEQ;
        if (S_IS("sub"))
            return K_SUB;
        if (S_IS("org"))
            return K_ORG;
        if (S_IS("jur"))
            return K_JUR;
        return S_IS("err") ? K_ERR : -1;
    case 4:
        return S_IS("code") ? K_CODE : S_IS("role") ? K_ROLE : -1;
    case 5:
        if (S_IS("since"))
            return K_SINCE;
        return S_IS("agent") ? K_AGENT : S_IS("inbox") ? K_INBOX : -1;
    case 6:
        if (S_IS("status"))
            return K_STATUS;
        if (S_IS("reason"))
            return K_REASON;
        if (S_IS("credit"))
            return K_CREDIT;
        return S_IS("broker") ? K_BROKER : -1;
    case 7:
        return S_IS("pattern") ? K_PATTERN : S_IS("durable") ? K_DURABLE : -1;
    case 8:
        return S_IS("max_body") ? K_MAX_BODY : S_IS("from_seq") ? K_FROM_SEQ : -1;
    case 9:
        return S_IS("max_frame") ? K_MAX_FRAME : S_IS("max_batch") ? K_MAX_BATCH : -1;
    case 11:
        return S_IS("retry_after") ? K_RETRY_AFTER : -1;
    default:
        return -1;
    }
}

//  ---------------------------------------------------------------------------------------------
//  Reading

//  Per-command decoding state, so that helpers can name the op in their reasons.
typedef struct {
    vdp_mp_t *mp; // the command's cursor
    const char *op;
    char *reason;
    size_t reason_size;
} s_ctx_t;

static int
s_read_string(s_ctx_t *ctx, char *out, size_t cap, s_key_t key)
{
    const char *str;
    uint32_t len;
    if (vdp_mp_read_str(ctx->mp, &str, &len) != VD_OK)
        return vdp_errorf(ctx->reason, ctx->reason_size, VD_EPROTO, "%s: %s: expected a string",
                          ctx->op, s_key_names[key]);
    if (len > cap)
        return vdp_errorf(ctx->reason, ctx->reason_size, VD_ELIMIT, "%s: %s: longer than %zu bytes",
                          ctx->op, s_key_names[key], cap);
    if (memchr(str, '\0', len))
        return vdp_errorf(ctx->reason, ctx->reason_size, VD_EPROTO, "%s: %s: contains a NUL byte",
                          ctx->op, s_key_names[key]);
    memcpy(out, str, len);
    out[len] = '\0';
    return VD_OK;
}

static int
s_read_u64(s_ctx_t *ctx, uint64_t *out, s_key_t key)
{
    if (vdp_mp_read_uint(ctx->mp, out) != VD_OK)
        return vdp_errorf(ctx->reason, ctx->reason_size, VD_EPROTO,
                          "%s: %s: expected an unsigned integer", ctx->op, s_key_names[key]);
    return VD_OK;
}

static int
s_read_u32(s_ctx_t *ctx, uint32_t *out, s_key_t key)
{
    uint64_t v;
    int rc = s_read_u64(ctx, &v, key);
    if (rc != VD_OK)
        return rc;
    if (v > UINT32_MAX)
        return vdp_errorf(ctx->reason, ctx->reason_size, VD_EPROTO, "%s: %s: out of range", ctx->op,
                          s_key_names[key]);
    *out = (uint32_t)v;
    return VD_OK;
}

static int
s_read_i64(s_ctx_t *ctx, int64_t *out, s_key_t key)
{
    if (vdp_mp_read_int(ctx->mp, out) != VD_OK)
        return vdp_errorf(ctx->reason, ctx->reason_size, VD_EPROTO, "%s: %s: expected an integer",
                          ctx->op, s_key_names[key]);
    return VD_OK;
}

//  An array of at most `max` strings of at most `cap` bytes each, into out[max][cap + 1].
static int
s_read_strings(s_ctx_t *ctx, char *out, size_t max, size_t cap, size_t *count, s_key_t key)
{
    uint32_t n;
    if (vdp_mp_read_array(ctx->mp, &n) != VD_OK)
        return vdp_errorf(ctx->reason, ctx->reason_size, VD_EPROTO, "%s: %s: expected an array",
                          ctx->op, s_key_names[key]);
    if (n > max)
        return vdp_errorf(ctx->reason, ctx->reason_size, VD_ELIMIT, "%s: %s: more than %zu entries",
                          ctx->op, s_key_names[key], max);
    for (uint32_t i = 0; i < n; i++) {
        int rc = s_read_string(ctx, out + i * (cap + 1), cap, key);
        if (rc != VD_OK)
            return rc;
    }
    *count = n;
    return VD_OK;
}

static int
s_read_value(s_ctx_t *ctx, s_key_t key, vdp_cmd_t *cmd, vdp_envelope_t *env)
{
    int64_t i64;
    int rc;
    char status[16];
    switch (key) {
    case K_OP: // read by s_find_op
        return vdp_mp_skip(ctx->mp, 0);
    case K_REF:
        return s_read_u64(ctx, &cmd->ref, key);
    case K_SEQ:
        return s_read_u64(ctx, &cmd->seq, key);
    case K_FROM_SEQ:
        return s_read_u64(ctx, &cmd->from_seq, key);
    case K_SINCE:
        return s_read_i64(ctx, &cmd->since, key);
    case K_CREDIT:
        return s_read_u32(ctx, &cmd->credit, key);
    case K_RETRY_AFTER:
        return s_read_u32(ctx, &cmd->retry_after_ms, key);
    case K_DURABLE:
        return s_read_string(ctx, cmd->durable, VDP_MAX_DURABLE, key);
    case K_V:
        return s_read_u32(ctx, &cmd->version, key);
    case K_HB:
        return s_read_u32(ctx, &cmd->heartbeat_ms, key);
    case K_MAX_BODY:
        return s_read_u32(ctx, &cmd->max_body, key);
    case K_MAX_FRAME:
        return s_read_u32(ctx, &cmd->max_frame, key);
    case K_MAX_BATCH:
        return s_read_u32(ctx, &cmd->max_batch, key);
    case K_AT:
        return s_read_i64(ctx, &cmd->at, key);
    case K_CODE:
        rc = s_read_i64(ctx, &i64, key);
        if (rc != VD_OK)
            return rc;
        if (i64 < INT32_MIN || i64 > INT32_MAX)
            return vdp_errorf(ctx->reason, ctx->reason_size, VD_EPROTO, "%s: code: out of range",
                              ctx->op);
        cmd->code = (int32_t)i64;
        return VD_OK;
    case K_AGENT:
        return s_read_string(ctx, cmd->agent, VDP_MAX_SHORT, key);
    case K_BROKER:
        return s_read_string(ctx, cmd->broker, VDP_MAX_ORG, key);
    case K_ORG:
        return s_read_string(ctx, cmd->org, VDP_MAX_ORG, key);
    case K_ROLE:
        return s_read_string(ctx, cmd->role, VDP_MAX_SHORT, key);
    case K_ID:
        return s_read_string(ctx, cmd->id, VDP_ID_LEN, key);
    case K_REASON:
        return s_read_string(ctx, cmd->reason, VDP_MAX_REASON, key);
    case K_PATTERN:
    case K_SUB:
        return s_read_string(ctx, cmd->pattern, VDP_MAX_TOPIC, key);
    case K_ERR: {
        char name[VDP_MAX_SHORT + 1]; // informative only: the number is authoritative
        return s_read_string(ctx, name, VDP_MAX_SHORT, key);
    }
    case K_STATUS:
        rc = s_read_string(ctx, status, sizeof status - 1, key);
        if (rc == VD_ELIMIT)
            status[0] = '\0'; // too long to be a status name: report it as unknown below
        else if (rc != VD_OK)
            return rc;
        cmd->status = vdp_receipt_status_from_name(status);
        if (cmd->status == VDP_RECEIPT_NONE)
            return vdp_errorf(ctx->reason, ctx->reason_size, VD_EPROTO, "%s: status: unknown value",
                              ctx->op);
        return VD_OK;
    case K_JUR:
        return s_read_strings(ctx, &cmd->jur[0][0], VDP_MAX_JUR, VDP_MAX_SEGMENT, &cmd->jur_count,
                              key);
    case K_INBOX:
        return s_read_strings(ctx, &cmd->inbox[0][0], VDP_MAX_JUR, VDP_MAX_TOPIC, &cmd->inbox_count,
                              key);
    case K_ENV:
        assert(env);
        return vdp_envelope_decode_at(env, ctx->mp, ctx->reason, ctx->reason_size);
    case K_COUNT:
        break;
    }
    assert(!"unreachable key");
    return VD_EINVAL;
}

/*  Finds the op of the command map at the start of `mp` (not consumed). Returns VD_OK with *op
    (VDP_OP_NONE if the value names no op we know), or VD_EPROTO if there is no "op" string.  */
static int
s_find_op(vdp_mp_t mp, vdp_op_t *op, char *quoted, size_t quoted_size)
{
    uint32_t pairs;
    if (vdp_mp_read_map(&mp, &pairs) != VD_OK)
        return VD_EPROTO;
    for (uint32_t i = 0; i < pairs; i++) {
        const char *key, *value;
        uint32_t len, value_len;
        if (vdp_mp_read_str(&mp, &key, &len) != VD_OK)
            return VD_EPROTO;
        if (S_IS("op")) {
            if (vdp_mp_read_str(&mp, &value, &value_len) != VD_OK)
                return VD_EPROTO;
            *op = (vdp_op_t)s_lookup(s_op_names, S_COUNT(s_op_names), value, value_len);
            if (*op == VDP_OP_NONE)
                vdp_sanitize(value, value_len, quoted, quoted_size); // for the reason
            return VD_OK;
        }
        if (vdp_mp_skip(&mp, VDP_MAX_DEPTH - 1) != VD_OK)
            return VD_EPROTO;
    }
    return VD_EPROTO;
}

//  After an error: the command's ref, if it has a readable one (for the error reply).
static void
s_salvage_ref(vdp_mp_t mp, vdp_cmd_t *cmd)
{
    uint32_t pairs;
    if (vdp_mp_read_map(&mp, &pairs) != VD_OK)
        return;
    for (uint32_t i = 0; i < pairs; i++) {
        const char *key;
        uint32_t len;
        if (vdp_mp_read_str(&mp, &key, &len) != VD_OK)
            return;
        if (S_IS("ref") && vdp_mp_read_uint(&mp, &cmd->ref) == VD_OK)
            return;
        if (vdp_mp_skip(&mp, VDP_MAX_DEPTH - 1) != VD_OK)
            return;
    }
}

//  Rules beyond types and presence, per op.
static int
s_check(s_ctx_t *ctx, vdp_cmd_t *cmd, uint32_t seen)
{
    char *r = ctx->reason;
    size_t rs = ctx->reason_size;
    switch (cmd->op) {
    case VDP_OP_WELCOME:
        if (!vdp_org_valid(cmd->broker))
            return vdp_errorf(r, rs, VD_EPROTO, "welcome: broker: not a valid org id");
        if (!vdp_org_valid(cmd->org))
            return vdp_errorf(r, rs, VD_EPROTO, "welcome: org: not a valid org id");
        if (vdp_role_from_name(cmd->role) == VDP_ROLE_NONE)
            return vdp_errorf(r, rs, VD_EPROTO, "welcome: role: unknown role");
        for (size_t i = 0; i < cmd->jur_count; i++)
            if (!vdp_jurisdiction_valid(cmd->jur[i]))
                return vdp_errorf(r, rs, VD_EPROTO, "welcome: jur[%zu]: not a jurisdiction", i);
        for (size_t i = 0; i < cmd->inbox_count; i++)
            if (!vdp_topic_valid(cmd->inbox[i]))
                return vdp_errorf(r, rs, VD_EPROTO, "welcome: inbox[%zu]: not a topic", i);
        return VD_OK;
    case VDP_OP_RECEIPT:
        if (cmd->id[0] && !vdp_uuid_valid(cmd->id))
            return vdp_errorf(r, rs, VD_EPROTO, "receipt: id: not a canonical UUID");
        if (cmd->status == VDP_RECEIPT_REJECTED) {
            if (!(seen & S_BIT(K_CODE)) || !(seen & S_BIT(K_REASON)))
                return vdp_errorf(r, rs, VD_EPROTO, "receipt: missing key '%s'",
                                  seen & S_BIT(K_CODE) ? "reason" : "code");
            if (cmd->code >= 0)
                return vdp_errorf(r, rs, VD_EPROTO, "receipt: code: not an error code");
        } else if (!(seen & S_BIT(K_SEQ)) || !(seen & S_BIT(K_AT))) {
            return vdp_errorf(r, rs, VD_EPROTO, "receipt: missing key '%s'",
                              seen & S_BIT(K_SEQ) ? "at" : "seq");
        }
        return VD_OK;
    case VDP_OP_ERROR:
        if (cmd->code >= 0)
            return vdp_errorf(r, rs, VD_EPROTO, "error: code: not an error code");
        return VD_OK;
    case VDP_OP_SUB:
        if (cmd->since < 0)
            return vdp_errorf(r, rs, VD_EPROTO, "sub: since: before 1970");
        if ((seen & S_BIT(K_FROM_SEQ)) && (seen & S_BIT(K_SINCE)))
            return vdp_errorf(r, rs, VD_EPROTO, "sub: from_seq and since exclude each other");
        /* fall through */
    case VDP_OP_UNSUB:
    case VDP_OP_DELIVER:
    case VDP_OP_ACK:
        if ((seen & S_BIT(K_DURABLE)) && !vdp_durable_valid(cmd->durable))
            return vdp_errorf(r, rs, VD_EPROTO, "%s: durable: not a valid name", ctx->op);
        return VD_OK;
    case VDP_OP_CREDIT:
        if (cmd->credit == 0)
            return vdp_errorf(r, rs, VD_EPROTO, "credit: credit: must be at least 1");
        return VD_OK;
    default:
        return VD_OK;
    }
}

/*  Decodes the command map at the cursor; on VD_OK the cursor is just after it. On error the
    cursor is anywhere: the caller finds the command's end with a structural pass.  */
static int
s_decode_command(
    vdp_mp_t *mp, vdp_cmd_t *cmd, vdp_envelope_t *env, char *reason, size_t reason_size)
{
    s_ctx_t ctx = { .mp = mp, .op = "command", .reason = reason, .reason_size = reason_size };
    const vdp_mp_t start = *mp;
    if (vdp_mp_peek(mp) != VDP_MP_MAP)
        return vdp_errorf(reason, reason_size, VD_EPROTO, "command: not a msgpack map");
    vdp_op_t op = VDP_OP_NONE;
    char quoted[24];
    if (s_find_op(*mp, &op, quoted, sizeof quoted) != VD_OK)
        return vdp_errorf(reason, reason_size, VD_EPROTO, "command: missing key 'op'");
    if (op == VDP_OP_NONE)
        return vdp_errorf(reason, reason_size, VD_EPROTO, "command: unknown op '%s'", quoted);
    cmd->op = op;
    ctx.op = s_op_names[op];

    uint32_t pairs;
    int rc = vdp_mp_read_map(mp, &pairs);
    if (rc == VD_OK && pairs > VDP_MAX_MAP_KEYS)
        rc = vdp_errorf(reason, reason_size, VD_ELIMIT, "%s: more than %u keys", ctx.op,
                        VDP_MAX_MAP_KEYS);
    uint32_t seen = 0;
    //  Unknown keys seen, to refuse a repeated one; bounded by VDP_MAX_MAP_KEYS
    const char *unknown[VDP_MAX_MAP_KEYS];
    uint32_t unknown_len[VDP_MAX_MAP_KEYS];
    size_t unknown_count = 0;
    for (uint32_t i = 0; i < pairs && rc == VD_OK; i++) {
        const char *key;
        uint32_t len;
        if (vdp_mp_read_str(mp, &key, &len) != VD_OK) {
            rc = vdp_errorf(reason, reason_size, VD_EPROTO, "%s: key is not a string", ctx.op);
            break;
        }
        int k = s_key_index(key, len);
        if (k < 0 || !(s_known[op] & S_BIT(k))) {
            for (size_t u = 0; u < unknown_count && rc == VD_OK; u++)
                if (unknown_len[u] == len && memcmp(unknown[u], key, len) == 0)
                    rc = vdp_errorf(reason, reason_size, VD_EPROTO, "%s: repeated key", ctx.op);
            unknown[unknown_count] = key;
            unknown_len[unknown_count++] = len;
            if (rc == VD_OK && (rc = vdp_mp_skip(mp, VDP_MAX_DEPTH - 1)) != VD_OK)
                vdp_errorf(reason, reason_size, rc, "%s: bad value under an unknown key", ctx.op);
            continue;
        }
        if (seen & S_BIT(k)) {
            rc = vdp_errorf(reason, reason_size, VD_EPROTO, "%s: repeated key '%s'", ctx.op,
                            s_key_names[k]);
            break;
        }
        seen |= S_BIT(k);
        rc = s_read_value(&ctx, (s_key_t)k, cmd, env);
    }
    if (rc == VD_OK) {
        uint32_t missing = s_required[op] & ~seen;
        if (missing)
            rc = vdp_errorf(reason, reason_size, VD_EPROTO, "%s: missing key '%s'", ctx.op,
                            s_key_names[__builtin_ctz(missing)]);
    }
    if (rc == VD_OK)
        rc = s_check(&ctx, cmd, seen);
    if (rc != VD_OK) {
        if ((s_known[op] & S_BIT(K_REF)) && !(seen & S_BIT(K_REF)))
            s_salvage_ref(start, cmd);
        return rc;
    }
    if (op == VDP_OP_DELIVER) {
        env->seq = cmd->seq;
        env->accepted_at = cmd->at;
        memcpy(env->subscription, cmd->pattern, sizeof env->subscription);
        memcpy(env->durable, cmd->durable, sizeof env->durable);
    }
    return VD_OK;
}

void
vdp_reader_init(vdp_reader_t *self, const uint8_t *data, size_t size)
{
    assert(self);
    assert(data || size == 0);
    self->data = data;
    self->size = size;
    self->pos = 0;
    self->count = 0;
    self->broken = false;
}

//  The frame-level checks made before each command: VD_OK, VD_ENOTFOUND, or a broken frame.
static int
s_reader_start(vdp_reader_t *self, char *reason, size_t reason_size)
{
    if (reason && reason_size)
        reason[0] = '\0';
    if (self->broken || self->pos >= self->size)
        return VD_ENOTFOUND;
    if (self->size > VDP_MAX_FRAME) {
        self->broken = true;
        return vdp_errorf(reason, reason_size, VD_ELIMIT, "frame: over %u bytes", VDP_MAX_FRAME);
    }
    if (self->count >= VDP_MAX_BATCH) {
        self->broken = true;
        return vdp_errorf(reason, reason_size, VD_ELIMIT, "frame: more than %u commands",
                          VDP_MAX_BATCH);
    }
    return VD_OK;
}

//  The structural pass over the command at the cursor: its end, or the frame is broken.
static int
s_reader_skip(vdp_reader_t *self, vdp_mp_t *mp, char *reason, size_t reason_size)
{
    vdp_mp_init(mp, self->data + self->pos, self->size - self->pos);
    int structure = vdp_mp_skip(mp, VDP_MAX_DEPTH);
    if (structure == VD_OK)
        return VD_OK;
    self->broken = true;
    return vdp_errorf(reason, reason_size, structure,
                      structure == VD_ELIMIT
                          ? "frame: command %zu: a map has more than %u keys"
                          : "frame: command %zu: truncated or malformed msgpack (or "
                            "nested deeper than %u)",
                      self->count + 1, structure == VD_ELIMIT ? VDP_MAX_MAP_KEYS : VDP_MAX_DEPTH);
}

int
vdp_reader_next(
    vdp_reader_t *self, vdp_cmd_t *cmd, vdp_envelope_t *env, char *reason, size_t reason_size)
{
    assert(self && cmd);
    vdp_cmd_reset(cmd);
    int rc = s_reader_start(self, reason, reason_size);
    if (rc != VD_OK)
        return rc;
    //  One pass on the common path: decode. Only when that fails does a structural pass say
    //  whether the command's end can be found (report it, go on) or not (the frame is broken).
    //  The decoder checks depth and caps as the structural pass does, so a command it accepts
    //  is always one that pass would accept.
    vdp_mp_t mp;
    vdp_mp_init(&mp, self->data + self->pos, self->size - self->pos);
    rc = s_decode_command(&mp, cmd, env, reason, reason_size);
    if (rc != VD_OK) {
        int structure = s_reader_skip(self, &mp, reason, reason_size);
        if (structure != VD_OK)
            return structure;
    }
    self->pos += mp.pos;
    self->count++;
    return rc;
}

vdp_op_t
vdp_reader_peek(const vdp_reader_t *self)
{
    assert(self);
    if (self->broken || self->pos >= self->size)
        return VDP_OP_NONE;
    vdp_mp_t mp;
    vdp_mp_init(&mp, self->data + self->pos, self->size - self->pos);
    vdp_op_t op = VDP_OP_NONE;
    char quoted[24];
    if (vdp_mp_peek(&mp) != VDP_MP_MAP || s_find_op(mp, &op, quoted, sizeof quoted) != VD_OK)
        return VDP_OP_NONE;
    return op;
}

int
vdp_reader_skip(vdp_reader_t *self, char *reason, size_t reason_size)
{
    assert(self);
    int rc = s_reader_start(self, reason, reason_size);
    if (rc != VD_OK)
        return rc;
    vdp_mp_t mp;
    rc = s_reader_skip(self, &mp, reason, reason_size);
    if (rc != VD_OK)
        return rc;
    self->pos += mp.pos;
    self->count++;
    return VD_OK;
}

//  ---------------------------------------------------------------------------------------------
//  Writing

//  msgpack-c write callback: appends to the writer's buffer, growing it geometrically.
static int
s_write(void *data, const char *buf, size_t len)
{
    vdp_writer_t *self = data;
    if (self->failed)
        return -1;
    if (len == 0)
        return 0;
    if (vdp_mp_grow(&self->data, &self->capacity, self->size, len, S_WRITER_MIN) != VD_OK) {
        self->failed = true;
        return -1;
    }
    memcpy(self->data + self->size, buf, len);
    self->size += len;
    return 0;
}

void
vdp_writer_init(vdp_writer_t *self)
{
    assert(self);
    memset(self, 0, sizeof *self);
}

void
vdp_writer_reset(vdp_writer_t *self)
{
    assert(self);
    self->size = 0;
    self->count = 0;
    self->failed = false;
}

void
vdp_writer_release(vdp_writer_t *self)
{
    assert(self);
    free(self->data);
    memset(self, 0, sizeof *self);
}

bool
vdp_writer_room(const vdp_writer_t *self, size_t bytes)
{
    assert(self);
    if (self->failed || self->count >= VDP_MAX_BATCH || self->size > VDP_MAX_FRAME)
        return false;
    if (self->size == 0)
        return bytes <= VDP_MAX_FRAME; // alone in its frame, however large
    return self->size <= VDP_BATCH_BYTES && bytes <= VDP_BATCH_BYTES - self->size;
}

#define S_KEY(pk, lit) msgpack_pack_str_with_body((pk), (lit), sizeof(lit) - 1)

static int
s_pack_cstr(msgpack_packer *pk, const char *str)
{
    return msgpack_pack_str_with_body(pk, str ? str : "", str ? strlen(str) : 0);
}

//  Free text (agent, reason): cut at `cap` bytes, backing off to a UTF-8 character boundary, so
//  that an over-long text never costs the peer its whole command.
static int
s_pack_text(msgpack_packer *pk, const char *str, size_t cap)
{
    size_t len = str ? strnlen(str, cap + 1) : 0;
    if (len > cap) {
        len = cap;
        while (len > 0 && ((unsigned char)str[len] & 0xc0) == 0x80)
            len--;
    }
    return msgpack_pack_str_with_body(pk, str ? str : "", len);
}

static int
s_pack_op(msgpack_packer *pk, size_t pairs, vdp_op_t op)
{
    int rc = msgpack_pack_map(pk, pairs);
    rc |= S_KEY(pk, "op");
    rc |= s_pack_cstr(pk, s_op_names[op]);
    return rc;
}

//  Ends an appender: counts the command, or marks the writer failed.
static int
s_done(vdp_writer_t *self, int rc)
{
    if (rc != 0 || self->failed) {
        self->failed = true;
        return VD_ENOMEM;
    }
    self->count++;
    return VD_OK;
}

#define S_BEGIN(self, pk)                                                                          \
    msgpack_packer pk;                                                                             \
    msgpack_packer_init(&pk, (self), s_write)

int
vdp_writer_hello(
    vdp_writer_t *self, uint64_t ref, const char *agent, uint32_t heartbeat_ms, uint32_t credit)
{
    S_BEGIN(self, pk);
    int rc = s_pack_op(&pk, credit ? 6 : 5, VDP_OP_HELLO);
    rc |= S_KEY(&pk, "ref");
    rc |= msgpack_pack_uint64(&pk, ref);
    rc |= S_KEY(&pk, "v");
    rc |= msgpack_pack_uint32(&pk, VDP_VERSION);
    rc |= S_KEY(&pk, "agent");
    rc |= s_pack_text(&pk, agent, VDP_MAX_SHORT);
    rc |= S_KEY(&pk, "hb");
    rc |= msgpack_pack_uint32(&pk, heartbeat_ms);
    if (credit) {
        rc |= S_KEY(&pk, "credit");
        rc |= msgpack_pack_uint32(&pk, credit);
    }
    return s_done(self, rc);
}

static int
s_pack_strings(msgpack_packer *pk, const char *first, size_t stride, size_t count, size_t max)
{
    size_t n = count < max ? count : max;
    int rc = msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        const char *s = first + i * stride;
        rc |= msgpack_pack_str_with_body(pk, s, strnlen(s, stride));
    }
    return rc;
}

int
vdp_writer_welcome(vdp_writer_t *self, const vdp_cmd_t *w)
{
    assert(w);
    S_BEGIN(self, pk);
    int rc = s_pack_op(&pk, 13, VDP_OP_WELCOME);
    rc |= S_KEY(&pk, "ref");
    rc |= msgpack_pack_uint64(&pk, w->ref);
    rc |= S_KEY(&pk, "v");
    rc |= msgpack_pack_uint32(&pk, w->version);
    rc |= S_KEY(&pk, "broker");
    rc |= s_pack_cstr(&pk, w->broker);
    rc |= S_KEY(&pk, "org");
    rc |= s_pack_cstr(&pk, w->org);
    rc |= S_KEY(&pk, "role");
    rc |= s_pack_cstr(&pk, w->role);
    rc |= S_KEY(&pk, "jur");
    rc |= s_pack_strings(&pk, &w->jur[0][0], sizeof w->jur[0], w->jur_count, VDP_MAX_JUR);
    rc |= S_KEY(&pk, "inbox");
    rc |= s_pack_strings(&pk, &w->inbox[0][0], sizeof w->inbox[0], w->inbox_count, VDP_MAX_JUR);
    rc |= S_KEY(&pk, "hb");
    rc |= msgpack_pack_uint32(&pk, w->heartbeat_ms);
    rc |= S_KEY(&pk, "max_body");
    rc |= msgpack_pack_uint32(&pk, w->max_body);
    rc |= S_KEY(&pk, "max_frame");
    rc |= msgpack_pack_uint32(&pk, w->max_frame);
    rc |= S_KEY(&pk, "max_batch");
    rc |= msgpack_pack_uint32(&pk, w->max_batch);
    rc |= S_KEY(&pk, "credit");
    rc |= msgpack_pack_uint32(&pk, w->credit);
    return s_done(self, rc);
}

int
vdp_writer_pub(vdp_writer_t *self, const vdp_envelope_t *env)
{
    assert(env);
    S_BEGIN(self, pk);
    int rc = s_pack_op(&pk, 2, VDP_OP_PUB);
    rc |= S_KEY(&pk, "env");
    if (env->raw)
        rc |= s_write(self, (const char *)env->raw, env->raw_len);
    else if (rc == 0)
        rc = vdp_envelope_pack(env, &pk) == VD_OK ? 0 : -1;
    return s_done(self, rc);
}

int
vdp_writer_receipt(vdp_writer_t *self,
                   const char *id,
                   vdp_receipt_status_t status,
                   uint64_t seq,
                   int64_t at,
                   int32_t code,
                   const char *reason,
                   uint32_t retry_after_ms)
{
    assert(vdp_receipt_status_name(status));
    S_BEGIN(self, pk);
    bool rejected = status == VDP_RECEIPT_REJECTED;
    bool hint = rejected && retry_after_ms > 0;
    int rc = s_pack_op(&pk, rejected ? 6 + hint : 5, VDP_OP_RECEIPT);
    rc |= S_KEY(&pk, "id");
    rc |= s_pack_cstr(&pk, id);
    rc |= S_KEY(&pk, "status");
    rc |= s_pack_cstr(&pk, vdp_receipt_status_name(status));
    if (rejected) {
        rc |= S_KEY(&pk, "code");
        rc |= msgpack_pack_int32(&pk, code);
        rc |= S_KEY(&pk, "err");
        rc |= s_pack_cstr(&pk, vd_strerror_name(code));
        rc |= S_KEY(&pk, "reason");
        rc |= s_pack_text(&pk, reason, VDP_MAX_REASON);
        if (hint) {
            rc |= S_KEY(&pk, "retry_after");
            rc |= msgpack_pack_uint32(&pk, retry_after_ms);
        }
    } else {
        rc |= S_KEY(&pk, "seq");
        rc |= msgpack_pack_uint64(&pk, seq);
        rc |= S_KEY(&pk, "at");
        rc |= msgpack_pack_int64(&pk, at);
    }
    return s_done(self, rc);
}

//  sub and unsub; the optional keys are written only when set.
static int
s_writer_pattern(vdp_writer_t *self,
                 vdp_op_t op,
                 uint64_t ref,
                 const char *pattern,
                 const char *durable,
                 uint64_t from_seq,
                 int64_t since)
{
    S_BEGIN(self, pk);
    int rc = s_pack_op(&pk, 3 + (durable != NULL) + (from_seq != 0) + (since != 0), op);
    rc |= S_KEY(&pk, "ref");
    rc |= msgpack_pack_uint64(&pk, ref);
    rc |= S_KEY(&pk, "pattern");
    rc |= s_pack_cstr(&pk, pattern);
    if (durable) {
        rc |= S_KEY(&pk, "durable");
        rc |= s_pack_cstr(&pk, durable);
    }
    if (from_seq) {
        rc |= S_KEY(&pk, "from_seq");
        rc |= msgpack_pack_uint64(&pk, from_seq);
    }
    if (since) {
        rc |= S_KEY(&pk, "since");
        rc |= msgpack_pack_int64(&pk, since);
    }
    return s_done(self, rc);
}

int
vdp_writer_sub(vdp_writer_t *self, uint64_t ref, const char *pattern)
{
    return s_writer_pattern(self, VDP_OP_SUB, ref, pattern, NULL, 0, 0);
}

int
vdp_writer_sub_from(vdp_writer_t *self,
                    uint64_t ref,
                    const char *pattern,
                    const char *durable,
                    uint64_t from_seq,
                    int64_t since)
{
    return s_writer_pattern(self, VDP_OP_SUB, ref, pattern, durable, from_seq, since);
}

int
vdp_writer_unsub(vdp_writer_t *self, uint64_t ref, const char *pattern, const char *durable)
{
    return s_writer_pattern(self, VDP_OP_UNSUB, ref, pattern, durable, 0, 0);
}

int
vdp_writer_ack(vdp_writer_t *self, uint64_t ref, const char *durable, uint64_t seq)
{
    S_BEGIN(self, pk);
    int rc = s_pack_op(&pk, 4, VDP_OP_ACK);
    rc |= S_KEY(&pk, "ref");
    rc |= msgpack_pack_uint64(&pk, ref);
    rc |= S_KEY(&pk, "durable");
    rc |= s_pack_cstr(&pk, durable);
    rc |= S_KEY(&pk, "seq");
    rc |= msgpack_pack_uint64(&pk, seq);
    return s_done(self, rc);
}

int
vdp_writer_credit(vdp_writer_t *self, uint32_t credit)
{
    S_BEGIN(self, pk);
    int rc = s_pack_op(&pk, 2, VDP_OP_CREDIT);
    rc |= S_KEY(&pk, "credit");
    rc |= msgpack_pack_uint32(&pk, credit);
    return s_done(self, rc);
}

int
vdp_writer_deliver(vdp_writer_t *self,
                   const char *pattern,
                   const char *durable,
                   uint64_t seq,
                   int64_t at,
                   const uint8_t *raw,
                   size_t raw_len)
{
    assert(raw && raw_len > 0);
    S_BEGIN(self, pk);
    int rc = s_pack_op(&pk, durable ? 6 : 5, VDP_OP_DELIVER);
    rc |= S_KEY(&pk, "sub");
    rc |= s_pack_cstr(&pk, pattern);
    if (durable) {
        rc |= S_KEY(&pk, "durable");
        rc |= s_pack_cstr(&pk, durable);
    }
    rc |= S_KEY(&pk, "seq");
    rc |= msgpack_pack_uint64(&pk, seq);
    rc |= S_KEY(&pk, "at");
    rc |= msgpack_pack_int64(&pk, at);
    rc |= S_KEY(&pk, "env");
    //  The stored bytes, as they were published: no re-encoding on the fan-out path
    rc |= s_write(self, (const char *)raw, raw_len);
    return s_done(self, rc);
}

static int
s_writer_ref(vdp_writer_t *self, vdp_op_t op, uint64_t ref)
{
    S_BEGIN(self, pk);
    int rc = s_pack_op(&pk, 2, op);
    rc |= S_KEY(&pk, "ref");
    rc |= msgpack_pack_uint64(&pk, ref);
    return s_done(self, rc);
}

int
vdp_writer_ping(vdp_writer_t *self, uint64_t ref)
{
    return s_writer_ref(self, VDP_OP_PING, ref);
}

int
vdp_writer_pong(vdp_writer_t *self, uint64_t ref)
{
    return s_writer_ref(self, VDP_OP_PONG, ref);
}

int
vdp_writer_ok(vdp_writer_t *self, uint64_t ref)
{
    return s_writer_ref(self, VDP_OP_OK, ref);
}

int
vdp_writer_ok_seq(vdp_writer_t *self, uint64_t ref, uint64_t seq)
{
    S_BEGIN(self, pk);
    int rc = s_pack_op(&pk, 3, VDP_OP_OK);
    rc |= S_KEY(&pk, "ref");
    rc |= msgpack_pack_uint64(&pk, ref);
    rc |= S_KEY(&pk, "seq");
    rc |= msgpack_pack_uint64(&pk, seq);
    return s_done(self, rc);
}

int
vdp_writer_error(vdp_writer_t *self, uint64_t ref, int32_t code, const char *reason)
{
    S_BEGIN(self, pk);
    int rc = s_pack_op(&pk, 5, VDP_OP_ERROR);
    rc |= S_KEY(&pk, "ref");
    rc |= msgpack_pack_uint64(&pk, ref);
    rc |= S_KEY(&pk, "code");
    rc |= msgpack_pack_int32(&pk, code);
    rc |= S_KEY(&pk, "err");
    rc |= s_pack_cstr(&pk, vd_strerror_name(code));
    rc |= S_KEY(&pk, "reason");
    rc |= s_pack_text(&pk, reason, VDP_MAX_REASON);
    return s_done(self, rc);
}

int
vdp_writer_bye(vdp_writer_t *self)
{
    S_BEGIN(self, pk);
    return s_done(self, s_pack_op(&pk, 1, VDP_OP_BYE));
}

/*  vdp_audit: see vdp_audit.h and docs/audit.md.
    Formatting writes the line by hand, byte by byte, with jansson's escaping rules (quote and
    backslash escaped, \b \f \n \r \t, any other byte below 0x20 as \u00XX in upper case,
    everything else as it is): the broker formats a record for every message it accepts, so
    this path allocates nothing. Parsing uses jansson (the CLI, and the broker once at start)
    and then checks the bytes themselves: what is hashed is the line as written, never a
    re-encoding, so two implementations agree on a hash whenever they agree on the bytes.  */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "vdp_audit.h"
#include "vdp_errors.h"
#include "vedetta.h"

_Static_assert(VDP_AUDIT_HASH_BYTES == crypto_generichash_BYTES, "BLAKE2b-256");
_Static_assert(VDP_AUDIT_SIG_BYTES == crypto_sign_BYTES, "Ed25519 signature size");
_Static_assert(VDP_AUDIT_HASH_HEX == 2 * VDP_AUDIT_HASH_BYTES, "hash hex");
_Static_assert(VDP_AUDIT_SIG_HEX == 2 * VDP_AUDIT_SIG_BYTES, "signature hex");

/*  The longest line: each string field escaped at 6 bytes a byte (\u00XX), the numbers at 20
    digits, the key names and punctuation. Formatting relies on it to promise a line always
    fits in VDP_AUDIT_MAX_LINE.  */
#define S_STRING_FIELDS 9u // kind, org, key, peer, topic, id, code, reason, prev
#define S_LONGEST_LINE  (S_STRING_FIELDS * (6u * VDP_AUDIT_MAX_FIELD + 16u) + 3u * 32u + 96u)
_Static_assert(S_LONGEST_LINE + 2u <= VDP_AUDIT_MAX_LINE, "a record always fits in a line");

//  The tail of every record line: "hash":"<64 hex>"} after the body's last ",".
#define S_HASH_KEY     "\"hash\":\""
#define S_HASH_KEY_LEN (sizeof S_HASH_KEY - 1)
#define S_SUFFIX_LEN   (S_HASH_KEY_LEN + VDP_AUDIT_HASH_HEX + 2u)

#define S_READ_CHUNK (64u * 1024u) // how much the line reader asks read() for at once

static const char *const s_kind_names[VDP_AUDIT_KIND_COUNT] = {
    [VDP_AUDIT_NONE] = NULL,
    [VDP_AUDIT_AUTH_OK] = "auth.ok",
    [VDP_AUDIT_AUTH_FAIL] = "auth.fail",
    [VDP_AUDIT_PUB_ACCEPT] = "pub.accept",
    [VDP_AUDIT_PUB_REJECT] = "pub.reject",
    [VDP_AUDIT_SUB_GRANT] = "sub.grant",
    [VDP_AUDIT_SUB_DENY] = "sub.deny",
    [VDP_AUDIT_DELIVER_WITHHELD] = "deliver.withheld",
    [VDP_AUDIT_REGISTRY_CHANGE] = "registry.change",
    [VDP_AUDIT_POLICY_CHANGE] = "policy.change",
    [VDP_AUDIT_KEY_REVOKE] = "key.revoke",
    [VDP_AUDIT_BROKER_START] = "broker.start",
    [VDP_AUDIT_BROKER_STOP] = "broker.stop",
    [VDP_AUDIT_CHECKPOINT] = "audit.checkpoint",
};

//  Record keys in the one order a line may hold them.
typedef enum {
    K_N,
    K_T,
    K_KIND,
    K_ORG,
    K_KEY,
    K_PEER,
    K_TOPIC,
    K_ID,
    K_SEQ,
    K_CODE,
    K_REASON,
    K_PREV,
    K_HASH,
    K_COUNT
} s_key_t;

static const char *const s_key_names[K_COUNT] = { "n",      "t",     "kind", "org", "key",
                                                  "peer",   "topic", "id",   "seq", "code",
                                                  "reason", "prev",  "hash" };

const char *
vdp_audit_kind_name(vdp_audit_kind_t kind)
{
    if ((int)kind <= (int)VDP_AUDIT_NONE || (int)kind >= (int)VDP_AUDIT_KIND_COUNT)
        return NULL;
    return s_kind_names[kind];
}

vdp_audit_kind_t
vdp_audit_kind_from_name(const char *name)
{
    for (int kind = VDP_AUDIT_NONE + 1; name && kind < VDP_AUDIT_KIND_COUNT; kind++) {
        if (strcmp(s_kind_names[kind], name) == 0)
            return (vdp_audit_kind_t)kind;
    }
    return VDP_AUDIT_NONE;
}

/*  -------------------------------------------------------------------------------------------
    Formatting  */

//  A bounded output: what does not fit sets `over` and is dropped.
typedef struct {
    char *data;
    size_t size;
    size_t len;
    bool over;
} s_out_t;

static void
s_put(s_out_t *out, const void *bytes, size_t count)
{
    if (out->over || count > out->size - out->len) {
        out->over = true;
        return;
    }
    memcpy(out->data + out->len, bytes, count);
    out->len += count;
}

static void
s_put_str(s_out_t *out, const char *text)
{
    s_put(out, text, strlen(text));
}

static void
s_put_u64(s_out_t *out, uint64_t value)
{
    char digits[20];
    size_t count = 0;
    do {
        digits[sizeof digits - ++count] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0);
    s_put(out, digits + sizeof digits - count, count);
}

static void
s_put_hex(s_out_t *out, const uint8_t *bytes, size_t count)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < count; i++) {
        char pair[2] = { hex[bytes[i] >> 4], hex[bytes[i] & 15] };
        s_put(out, pair, 2);
    }
}

/*  Length of the valid UTF-8 sequence at text[0..avail), or 0 if it is not one (RFC 3629: no
    overlong forms, no surrogates, nothing above U+10FFFF; exactly what jansson accepts).  */
static size_t
s_utf8_len(const unsigned char *text, size_t avail)
{
    unsigned char c = text[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else
        return 0;
    if (avail < len || text[1] < lo || text[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if (text[i] < 0x80 || text[i] > 0xBF)
            return 0;
    }
    return len;
}

/*  "key":"<text>" with jansson's escaping; at most VDP_AUDIT_MAX_FIELD bytes of text, cut at a
    character boundary; a byte that is not part of valid UTF-8 becomes '?'.  */
static void
s_put_string(s_out_t *out, const char *key, const char *text)
{
    s_put(out, "\"", 1);
    s_put_str(out, key);
    s_put(out, "\":\"", 3);
    const unsigned char *p = (const unsigned char *)text;
    size_t avail = strlen(text);
    size_t taken = 0;
    while (taken < avail) {
        //  Most text (org ids, keys, topics, ids) is plain ASCII with nothing to escape: copy
        //  such a run whole, and look at one character at a time only past it.
        size_t run = 0, room = VDP_AUDIT_MAX_FIELD - taken;
        while (run < avail - taken && run < room) {
            unsigned char b = p[taken + run];
            if (b < 0x20 || b > 0x7e || b == '"' || b == '\\')
                break;
            run++;
        }
        if (run > 0) {
            s_put(out, p + taken, run);
            taken += run;
            continue;
        }
        size_t len = s_utf8_len(p + taken, avail - taken);
        if (taken + (len ? len : 1) > VDP_AUDIT_MAX_FIELD)
            break;
        unsigned char c = p[taken];
        if (len == 0)
            s_put(out, "?", 1);
        else if (c == '"')
            s_put(out, "\\\"", 2);
        else if (c == '\\')
            s_put(out, "\\\\", 2);
        else if (c == '\b')
            s_put(out, "\\b", 2);
        else if (c == '\f')
            s_put(out, "\\f", 2);
        else if (c == '\n')
            s_put(out, "\\n", 2);
        else if (c == '\r')
            s_put(out, "\\r", 2);
        else if (c == '\t')
            s_put(out, "\\t", 2);
        else if (c < 0x20) {
            static const char hex[] = "0123456789ABCDEF"; // jansson writes \u%04X
            char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
            s_put(out, esc, sizeof esc);
        } else
            s_put(out, p + taken, len);
        taken += len ? len : 1;
    }
    s_put(out, "\",", 2);
}

static void
s_put_number(s_out_t *out, const char *key, uint64_t value)
{
    s_put(out, "\"", 1);
    s_put_str(out, key);
    s_put(out, "\":", 2);
    s_put_u64(out, value);
    s_put(out, ",", 1);
}

//  True if `name` is "OK" or the name of a vedetta error code.
static bool
s_code_known(const char *name)
{
    return strcmp(vd_strerror_name(vd_strerror_code(name)), name) == 0;
}

//  hash = BLAKE2b-256(prev || body).
static void
s_hash(const uint8_t prev[VDP_AUDIT_HASH_BYTES],
       const char *body,
       size_t len,
       uint8_t out[VDP_AUDIT_HASH_BYTES])
{
    crypto_generichash_state state;
    crypto_generichash_init(&state, NULL, 0, VDP_AUDIT_HASH_BYTES);
    crypto_generichash_update(&state, prev, VDP_AUDIT_HASH_BYTES);
    crypto_generichash_update(&state, (const unsigned char *)body, len);
    crypto_generichash_final(&state, out, VDP_AUDIT_HASH_BYTES);
}

int
vdp_audit_format(const vdp_audit_record_t *record,
                 const uint8_t prev[VDP_AUDIT_HASH_BYTES],
                 char *line,
                 size_t size,
                 size_t *len,
                 uint8_t hash_out[VDP_AUDIT_HASH_BYTES])
{
    if (!record || !prev || !line || !len || !hash_out)
        return VD_EINVAL;
    const char *kind = vdp_audit_kind_name(record->kind);
    if (record->n == 0 || record->t < 0 || !kind || (record->code && !s_code_known(record->code)))
        return VD_EINVAL;
    s_out_t out = { .data = line, .size = size };
    s_put(&out, "{", 1);
    s_put_number(&out, "n", record->n);
    s_put_number(&out, "t", (uint64_t)record->t);
    s_put_string(&out, "kind", kind);
    const char *const strings[] = { record->org, record->key, record->peer, record->topic,
                                    record->id };
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        if (strings[i])
            s_put_string(&out, s_key_names[K_ORG + i], strings[i]);
    }
    if (record->seq > 0)
        s_put_number(&out, "seq", record->seq);
    if (record->code)
        s_put_string(&out, "code", record->code);
    if (record->reason)
        s_put_string(&out, "reason", record->reason);
    s_put(&out, "\"prev\":\"", 8);
    s_put_hex(&out, prev, VDP_AUDIT_HASH_BYTES);
    s_put(&out, "\",", 2);
    if (out.over)
        return VD_ELIMIT;
    s_hash(prev, line, out.len, hash_out);
    s_put(&out, S_HASH_KEY, S_HASH_KEY_LEN);
    s_put_hex(&out, hash_out, VDP_AUDIT_HASH_BYTES);
    s_put(&out, "\"}\n", 4); // with the NUL, which the line's length leaves out
    if (out.over)
        return VD_ELIMIT;
    assert(out.len - 1 <= VDP_AUDIT_MAX_LINE);
    *len = out.len - 1;
    return VD_OK;
}

/*  -------------------------------------------------------------------------------------------
    Parsing  */

//  Decodes exactly `bytes` bytes from 2 * bytes lowercase hex digits; false if it is not that.
static bool
s_unhex(const char *text, size_t text_len, uint8_t *out, size_t bytes)
{
    if (text_len != 2 * bytes)
        return false;
    for (size_t i = 0; i < text_len; i++) {
        char c = text[i];
        int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (digit < 0)
            return false;
        if (i % 2 == 0)
            out[i / 2] = (uint8_t)(digit << 4);
        else
            out[i / 2] |= (uint8_t)digit;
    }
    return true;
}

//  The key's index in s_key_names, K_COUNT if unknown.
static s_key_t
s_key_index(const char *name)
{
    for (int k = 0; k < K_COUNT; k++) {
        if (strcmp(s_key_names[k], name) == 0)
            return (s_key_t)k;
    }
    return K_COUNT;
}

//  Err prefix: "record N: " when the caller knows which record this should be, else nothing
//  (%.0llu prints no digit for 0).
#define S_PREFIX_FMT "%s%.0llu%s"
#define S_PREFIX(n)  (n) ? "record " : "", (unsigned long long)(n), (n) ? ": " : ""

//  Checks and stores one key's value into entry. Returns VD_OK or VD_EPROTO with err.
static int
s_take_value(vdp_audit_entry_t *entry,
             s_key_t key,
             json_t *value,
             uint64_t expect_n,
             char *err,
             size_t err_size)
{
    vdp_audit_record_t *rec = &entry->record;
    const char *name = s_key_names[key];
    if (key == K_N || key == K_T || key == K_SEQ) {
        json_int_t number = json_is_integer(value) ? json_integer_value(value) : -1;
        if (number < (key == K_T ? 0 : 1))
            return vdp_errorf(err, err_size, VD_EPROTO,
                              S_PREFIX_FMT "not a record: \"%s\" is not an integer of %d or more",
                              S_PREFIX(expect_n), name, key == K_T ? 0 : 1);
        if (key == K_N)
            rec->n = (uint64_t)number;
        else if (key == K_T)
            rec->t = (int64_t)number;
        else
            rec->seq = (uint64_t)number;
        return VD_OK;
    }
    if (!json_is_string(value))
        return vdp_errorf(err, err_size, VD_EPROTO,
                          S_PREFIX_FMT "not a record: \"%s\" is not a string", S_PREFIX(expect_n),
                          name);
    const char *text = json_string_value(value);
    size_t text_len = json_string_length(value);
    switch (key) {
    case K_KIND:
        rec->kind = vdp_audit_kind_from_name(text);
        if (rec->kind == VDP_AUDIT_NONE)
            return vdp_errorf(err, err_size, VD_EPROTO,
                              S_PREFIX_FMT "not a record: unknown kind \"%.40s\"",
                              S_PREFIX(expect_n), text);
        break;
    case K_PREV:
    case K_HASH:
        if (!s_unhex(text, text_len, key == K_PREV ? entry->prev : entry->hash,
                     VDP_AUDIT_HASH_BYTES))
            return vdp_errorf(err, err_size, VD_EPROTO,
                              S_PREFIX_FMT "not a record: \"%s\" is not 64 lowercase hex digits",
                              S_PREFIX(expect_n), name);
        break;
    default: {
        //  org, key, peer, topic, id, code, reason: fields of the record in that order.
        const char **fields[] = { &rec->org, &rec->key, &rec->peer, &rec->topic,
                                  &rec->id,  NULL,      &rec->code, &rec->reason };
        assert(key >= K_ORG && key <= K_REASON && key != K_SEQ);
        *fields[key - K_ORG] = text;
    }
    }
    return VD_OK;
}

//  The keys of `obj`, in the order the line holds them: known, ascending, each once, "n" first,
//  "hash" last, "t", "kind" and "prev" present.
static int
s_take_keys(vdp_audit_entry_t *entry, json_t *obj, uint64_t expect_n, char *err, size_t err_size)
{
    int last = -1;
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        const char *name = json_object_iter_key(it);
        s_key_t key = s_key_index(name);
        if (key == K_COUNT)
            return vdp_errorf(err, err_size, VD_EPROTO,
                              S_PREFIX_FMT "not a record: unknown key \"%.40s\"",
                              S_PREFIX(expect_n), name);
        if (last == -1 && key != K_N)
            return vdp_errorf(err, err_size, VD_EPROTO,
                              S_PREFIX_FMT "not a record: the first key is not \"n\"",
                              S_PREFIX(expect_n));
        if ((int)key <= last)
            return vdp_errorf(err, err_size, VD_EPROTO,
                              S_PREFIX_FMT "not a record: key \"%s\" out of order",
                              S_PREFIX(expect_n), name);
        //  A required key skipped: "t" and "kind" right after "n", "prev" right before "hash".
        if ((last == K_N && key != K_T) || (last == K_T && key != K_KIND) ||
            (key == K_HASH && last != K_PREV))
            return vdp_errorf(err, err_size, VD_EPROTO, S_PREFIX_FMT "not a record: \"%s\" missing",
                              S_PREFIX(expect_n),
                              last == K_N   ? "t"
                              : last == K_T ? "kind"
                                            : "prev");
        int rc = s_take_value(entry, key, json_object_iter_value(it), expect_n, err, err_size);
        if (rc != VD_OK)
            return rc;
        last = (int)key;
    }
    if (last != K_HASH)
        return vdp_errorf(err, err_size, VD_EPROTO,
                          S_PREFIX_FMT "not a record: the last key is not \"hash\"",
                          S_PREFIX(expect_n));
    return VD_OK;
}

//  The chain: this is record expect_n, its hash covers its bytes, its prev is expect_prev.
static int
s_check_chain(const vdp_audit_entry_t *entry,
              const char *line,
              size_t body_len,
              uint64_t expect_n,
              const uint8_t expect_prev[VDP_AUDIT_HASH_BYTES],
              char *err,
              size_t err_size)
{
    unsigned long long n = expect_n;
    if (entry->record.n != expect_n)
        return vdp_errorf(err, err_size, VD_ESIG,
                          "record %llu: found record %llu in its place: records were removed, "
                          "added or moved",
                          n, (unsigned long long)entry->record.n);
    uint8_t hash[VDP_AUDIT_HASH_BYTES];
    s_hash(entry->prev, line, body_len, hash);
    if (sodium_memcmp(hash, entry->hash, sizeof hash) != 0)
        return vdp_errorf(err, err_size, VD_ESIG,
                          "record %llu: hash mismatch: the record was altered", n);
    if (sodium_memcmp(entry->prev, expect_prev, VDP_AUDIT_HASH_BYTES) != 0) {
        if (n == 1)
            return vdp_errorf(err, err_size, VD_ESIG,
                              "record 1: prev is not zeros: records were removed before it");
        return vdp_errorf(err, err_size, VD_ESIG,
                          "record %llu: prev is not the hash of record %llu: record %llu was "
                          "replaced (its hash recomputed), or records were removed between them",
                          n, n - 1, n - 1);
    }
    return VD_OK;
}

int
vdp_audit_parse(const char *line,
                size_t len,
                uint64_t expect_n,
                const uint8_t expect_prev[VDP_AUDIT_HASH_BYTES],
                vdp_audit_entry_t *entry,
                char *err,
                size_t err_size)
{
    if (!entry)
        return VD_EINVAL;
    memset(entry, 0, sizeof *entry);
    if (!line || (expect_n > 0 && !expect_prev))
        return VD_EINVAL;
    if (len > VDP_AUDIT_MAX_LINE)
        return vdp_errorf(err, err_size, VD_EPROTO,
                          S_PREFIX_FMT "not a record: a line longer than %u bytes",
                          S_PREFIX(expect_n), VDP_AUDIT_MAX_LINE);
    //  The bytes first: "{" ... "," then "hash":"<hex>"}, so the hashed body is well defined.
    size_t body_len = len >= S_SUFFIX_LEN ? len - S_SUFFIX_LEN : 0;
    if (body_len < 2 || line[0] != '{' || line[body_len - 1] != ',' ||
        memcmp(line + body_len, S_HASH_KEY, S_HASH_KEY_LEN) != 0 ||
        memcmp(line + len - 2, "\"}", 2) != 0)
        return vdp_errorf(err, err_size, VD_EPROTO,
                          S_PREFIX_FMT "not a record: it does not start with \"{\" and end with "
                                       ",\"hash\":\"<64 hex>\"}",
                          S_PREFIX(expect_n));
    json_error_t error;
    json_t *obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &error);
    if (!obj || !json_is_object(obj)) {
        json_decref(obj);
        return vdp_errorf(err, err_size, VD_EPROTO,
                          S_PREFIX_FMT "not a record: not a JSON object (%s at byte %d)",
                          S_PREFIX(expect_n), obj ? "not an object" : error.text,
                          obj ? 0 : error.position);
    }
    entry->json_ = obj;
    int rc = s_take_keys(entry, obj, expect_n, err, err_size);
    if (rc == VD_OK && expect_n > 0)
        rc = s_check_chain(entry, line, body_len, expect_n, expect_prev, err, err_size);
    if (rc != VD_OK)
        vdp_audit_entry_clear(entry);
    return rc;
}

void
vdp_audit_entry_clear(vdp_audit_entry_t *entry)
{
    if (!entry)
        return;
    json_decref((json_t *)entry->json_);
    memset(entry, 0, sizeof *entry);
}

/*  -------------------------------------------------------------------------------------------
    Head checkpoint  */

//  The bytes a head's signature covers, into buf; their length.
static size_t
s_head_message(const vdp_audit_head_t *head, char *buf, size_t size)
{
    char hex[VDP_AUDIT_HASH_HEX + 1];
    sodium_bin2hex(hex, sizeof hex, head->hash, VDP_AUDIT_HASH_BYTES);
    int len = snprintf(buf, size, "%s%llu\n%s\n%lld", VDP_AUDIT_HEAD_TAG,
                       (unsigned long long)head->n, hex, (long long)head->t);
    assert(len > 0 && (size_t)len < size);
    return (size_t)len;
}

void
vdp_audit_head_sign(vdp_audit_head_t *head, const uint8_t *sign_secret)
{
    assert(head && sign_secret);
    char message[256];
    size_t len = s_head_message(head, message, sizeof message);
    crypto_sign_detached(head->sig, NULL, (const unsigned char *)message, len, sign_secret);
    head->signed_ = true;
}

bool
vdp_audit_head_verify(const vdp_audit_head_t *head, const uint8_t *sign_public)
{
    if (!head || !sign_public || !head->signed_)
        return false;
    char message[256];
    size_t len = s_head_message(head, message, sizeof message);
    return crypto_sign_verify_detached(head->sig, (const unsigned char *)message, len,
                                       sign_public) == 0;
}

//  Writes all of data; false with errno on failure.
static bool
s_write_all(int fd, const char *data, size_t size)
{
    while (size > 0) {
        ssize_t put = write(fd, data, size);
        if (put < 0 && errno == EINTR)
            continue;
        if (put < 0)
            return false;
        data += put;
        size -= (size_t)put;
    }
    return true;
}

//  fsyncs the directory holding `path`, so that a rename in it is durable.
static bool
s_sync_dir(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else {
        errno = ENAMETOOLONG;
        return false;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = fsync(fd) == 0;
    int saved = errno;
    close(fd);
    errno = saved;
    return ok;
}

int
vdp_audit_head_write(const vdp_audit_head_t *head, const char *path, char *err, size_t size)
{
    if (!head || !path)
        return VD_EINVAL;
    char hash[VDP_AUDIT_HASH_HEX + 1], sig[VDP_AUDIT_SIG_HEX + 1];
    sodium_bin2hex(hash, sizeof hash, head->hash, VDP_AUDIT_HASH_BYTES);
    sodium_bin2hex(sig, sizeof sig, head->sig, VDP_AUDIT_SIG_BYTES);
    char text[VDP_AUDIT_HEAD_MAX];
    int len = snprintf(text, sizeof text, "{\"n\":%llu,\"hash\":\"%s\",\"t\":%lld%s%s%s}\n",
                       (unsigned long long)head->n, hash, (long long)head->t,
                       head->signed_ ? ",\"sig\":\"" : "", head->signed_ ? sig : "",
                       head->signed_ ? "\"" : "");
    assert(len > 0 && (size_t)len < sizeof text);
    char temp[PATH_MAX];
    if (snprintf(temp, sizeof temp, "%s.tmpXXXXXX", path) >= (int)sizeof temp)
        return vdp_errorf(err, size, VD_EIO, "%s: path too long", path);
    int fd = mkstemp(temp);
    if (fd < 0)
        return vdp_errorf(err, size, VD_EIO, "%s: cannot create: %s", temp, strerror(errno));
    //  Written and synced before the rename: a crash leaves the old head or the new one whole.
    bool ok = fchmod(fd, 0640) == 0 && s_write_all(fd, text, (size_t)len) && fsync(fd) == 0;
    int saved = errno;
    ok = close(fd) == 0 && ok;
    if (ok && rename(temp, path) != 0) {
        ok = false;
        saved = errno;
    }
    if (!ok) {
        unlink(temp);
        return vdp_errorf(err, size, VD_EIO, "%s: cannot write the head: %s", path,
                          strerror(saved));
    }
    if (!s_sync_dir(path))
        return vdp_errorf(err, size, VD_EIO, "%s: written, but its directory not synced: %s", path,
                          strerror(errno));
    return VD_OK;
}

//  Fills `out` from the parsed head object. VD_OK or VD_EPROTO with err.
static int
s_head_fields(json_t *obj, const char *path, vdp_audit_head_t *out, char *err, size_t size)
{
    const char *key;
    json_t *value;
    bool have_n = false, have_hash = false, have_t = false;
    json_object_foreach(obj, key, value)
    {
        bool ok;
        if (strcmp(key, "n") == 0 || strcmp(key, "t") == 0) {
            json_int_t number = json_is_integer(value) ? json_integer_value(value) : -1;
            ok = number >= 0;
            if (key[0] == 'n') {
                out->n = (uint64_t)number;
                have_n = true;
            } else {
                out->t = (int64_t)number;
                have_t = true;
            }
        } else if (strcmp(key, "hash") == 0) {
            ok = json_is_string(value) &&
                 s_unhex(json_string_value(value), json_string_length(value), out->hash,
                         VDP_AUDIT_HASH_BYTES);
            have_hash = true;
        } else if (strcmp(key, "sig") == 0) {
            ok = json_is_string(value) &&
                 s_unhex(json_string_value(value), json_string_length(value), out->sig,
                         VDP_AUDIT_SIG_BYTES);
            out->signed_ = true;
        } else
            return vdp_errorf(err, size, VD_EPROTO, "%s: not a head: unknown key \"%.40s\"", path,
                              key);
        if (!ok)
            return vdp_errorf(err, size, VD_EPROTO, "%s: not a head: bad \"%s\"", path, key);
    }
    if (!have_n || !have_hash || !have_t)
        return vdp_errorf(err, size, VD_EPROTO, "%s: not a head: \"%s\" missing", path,
                          !have_n      ? "n"
                          : !have_hash ? "hash"
                                       : "t");
    return VD_OK;
}

int
vdp_audit_head_read(const char *path, vdp_audit_head_t *out, char *err, size_t size)
{
    if (!path || !out)
        return VD_EINVAL;
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vdp_errorf(err, size, errno == ENOENT ? VD_ENOTFOUND : VD_EIO, "%s: %s", path,
                          strerror(errno));
    char text[VDP_AUDIT_HEAD_MAX + 1];
    size_t len = 0;
    ssize_t got;
    while (len < sizeof text && (got = read(fd, text + len, sizeof text - len)) != 0) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int saved = errno;
            close(fd);
            return vdp_errorf(err, size, VD_EIO, "%s: %s", path, strerror(saved));
        }
        len += (size_t)got;
    }
    close(fd);
    if (len > VDP_AUDIT_HEAD_MAX)
        return vdp_errorf(err, size, VD_EPROTO, "%s: not a head: longer than %u bytes", path,
                          VDP_AUDIT_HEAD_MAX);
    json_error_t error;
    json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
    if (!obj || !json_is_object(obj)) {
        json_decref(obj);
        return vdp_errorf(err, size, VD_EPROTO, "%s: not a head: not a JSON object", path);
    }
    int rc = s_head_fields(obj, path, out, err, size);
    json_decref(obj);
    if (rc != VD_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

/*  -------------------------------------------------------------------------------------------
    Reading the log line by line  */

//  Lines of a file, each handed out without its "\n". Lines over VDP_AUDIT_MAX_LINE are
//  reported as too long (their bytes skipped), never held.
typedef struct {
    int fd;
    char *buf; // VDP_AUDIT_MAX_LINE + S_READ_CHUNK bytes
    size_t start, end;
    bool eof;
} s_reader_t;

typedef enum { S_LINE, S_LINE_TOO_LONG, S_LINE_INCOMPLETE, S_LINE_END, S_LINE_ERROR } s_line_t;

#define S_READER_SIZE (VDP_AUDIT_MAX_LINE + S_READ_CHUNK)

static int
s_reader_open(s_reader_t *reader, const char *path, char *err, size_t size)
{
    *reader = (s_reader_t){ .fd = -1 };
    reader->buf = malloc(S_READER_SIZE);
    if (!reader->buf)
        return VD_ENOMEM;
    reader->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (reader->fd < 0) {
        int saved = errno;
        free(reader->buf);
        reader->buf = NULL;
        return vdp_errorf(err, size, VD_EIO, "%s: %s", path, strerror(saved));
    }
    return VD_OK;
}

static void
s_reader_close(s_reader_t *reader)
{
    if (reader->fd >= 0)
        close(reader->fd);
    free(reader->buf);
    *reader = (s_reader_t){ .fd = -1 };
}

//  Reads more after what the buffer holds (moving that to the front). False on a read error.
static bool
s_reader_fill(s_reader_t *reader)
{
    if (reader->start > 0) {
        memmove(reader->buf, reader->buf + reader->start, reader->end - reader->start);
        reader->end -= reader->start;
        reader->start = 0;
    }
    while (true) {
        ssize_t got = read(reader->fd, reader->buf + reader->end, S_READER_SIZE - reader->end);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return false;
        if (got == 0)
            reader->eof = true;
        reader->end += (size_t)got;
        return true;
    }
}

//  The next line in *line, *len. S_LINE_ERROR leaves errno.
static s_line_t
s_reader_next(s_reader_t *reader, const char **line, size_t *len)
{
    bool too_long = false;
    while (true) {
        char *from = reader->buf + reader->start;
        char *nl = memchr(from, '\n', reader->end - reader->start);
        if (nl) {
            *line = from;
            *len = (size_t)(nl - from);
            reader->start += *len + 1;
            return too_long || *len > VDP_AUDIT_MAX_LINE ? S_LINE_TOO_LONG : S_LINE;
        }
        if (reader->end - reader->start > VDP_AUDIT_MAX_LINE) {
            too_long = true; // drop what we hold of it and look for its end
            reader->start = reader->end;
        }
        if (reader->eof) {
            *line = from;
            *len = reader->end - reader->start;
            reader->start = reader->end;
            if (too_long)
                return S_LINE_TOO_LONG;
            return *len > 0 ? S_LINE_INCOMPLETE : S_LINE_END;
        }
        if (!s_reader_fill(reader))
            return S_LINE_ERROR;
    }
}

/*  -------------------------------------------------------------------------------------------
    Verification  */

//  Marks the result broken at record `at` unless something earlier already broke it.
__attribute__((format(printf, 3, 4))) static void
s_broken(vdp_audit_verify_t *result, uint64_t at, const char *fmt, ...)
{
    if (result->broken_at != 0 && result->broken_at <= at)
        return;
    result->intact = false;
    result->broken_at = at;
    va_list args;
    va_start(args, fmt);
    vsnprintf(result->reason, sizeof result->reason, fmt, args);
    va_end(args);
}

//  Walks the chain of the log. Returns VD_OK (result filled) or VD_EIO / VD_ENOMEM with err.
static int
s_verify_chain(const char *path,
               const vdp_audit_head_t *head,
               vdp_audit_verify_t *result,
               uint8_t head_record_hash[VDP_AUDIT_HASH_BYTES],
               char *err,
               size_t size)
{
    s_reader_t reader;
    int rc = s_reader_open(&reader, path, err, size);
    if (rc != VD_OK)
        return rc;
    uint8_t prev[VDP_AUDIT_HASH_BYTES] = { 0 };
    const char *line;
    size_t len;
    s_line_t got;
    while ((got = s_reader_next(&reader, &line, &len)) != S_LINE_END) {
        uint64_t n = result->records + 1;
        if (got == S_LINE_ERROR) {
            rc = vdp_errorf(err, size, VD_EIO, "%s: %s", path, strerror(errno));
            break;
        }
        if (got == S_LINE_INCOMPLETE) {
            result->incomplete_tail = true;
            break;
        }
        if (got == S_LINE_TOO_LONG) {
            s_broken(result, n, "record %llu: not a record: a line longer than %u bytes",
                     (unsigned long long)n, VDP_AUDIT_MAX_LINE);
            break;
        }
        vdp_audit_entry_t entry;
        char why[sizeof result->reason];
        int parsed = vdp_audit_parse(line, len, n, prev, &entry, why, sizeof why);
        if (parsed != VD_OK) {
            s_broken(result, n, "%s", why);
            break;
        }
        memcpy(prev, entry.hash, sizeof prev);
        vdp_audit_entry_clear(&entry);
        result->records = n;
        if (head && head->n == n)
            memcpy(head_record_hash, prev, VDP_AUDIT_HASH_BYTES);
    }
    memcpy(result->last_hash, prev, sizeof prev);
    s_reader_close(&reader);
    return rc;
}

//  What the head says against the chain walked. The earliest problem wins (s_broken).
static void
s_verify_head(const vdp_audit_head_t *head,
              const uint8_t *sign_public,
              const uint8_t head_record_hash[VDP_AUDIT_HASH_BYTES],
              vdp_audit_verify_t *result)
{
    unsigned long long n = head->n, m = result->records;
    uint64_t at = head->n ? head->n : 1;
    if (sign_public && !head->signed_)
        s_broken(result, at, "head: not signed, but a head signed by the broker is required");
    else if (sign_public && !vdp_audit_head_verify(head, sign_public))
        s_broken(result, at,
                 "head: its signature does not verify with the broker's key: the head was "
                 "forged or damaged");
    else if (sign_public)
        result->head_signed = true;
    if (result->broken_at != 0 && result->broken_at <= head->n)
        return; // the chain broke at or before the head's record: that says it already
    if (head->n > result->records)
        s_broken(result, m + 1,
                 "the head names record %llu but the log ends at record %llu: records %llu to "
                 "%llu were removed",
                 n, m, m + 1, n);
    else if (sodium_memcmp(head_record_hash, head->hash, VDP_AUDIT_HASH_BYTES) != 0)
        s_broken(result, at,
                 "record %llu: its hash differs from the head's: the log up to record %llu was "
                 "rewritten, or the head replaced",
                 n, n);
}

int
vdp_audit_verify(const char *path,
                 const char *head_path,
                 const uint8_t *sign_public,
                 vdp_audit_verify_t *result,
                 char *err,
                 size_t size)
{
    if (!path || !result)
        return VD_EINVAL;
    memset(result, 0, sizeof *result);
    result->intact = true;
    vdp_audit_head_t head;
    bool head_usable = false;
    char head_why[sizeof result->reason] = "";
    if (head_path) {
        int rc = vdp_audit_head_read(head_path, &head, head_why, sizeof head_why);
        if (rc == VD_ENOTFOUND || rc == VD_EIO)
            return vdp_errorf(err, size, VD_EIO, "%s", head_why);
        head_usable = rc == VD_OK;
        result->head_present = head_usable;
        result->head_n = head_usable ? head.n : 0;
    }
    uint8_t head_record_hash[VDP_AUDIT_HASH_BYTES] = { 0 }; // record 0's "hash" is zeros
    int rc = s_verify_chain(path, head_usable ? &head : NULL, result, head_record_hash, err, size);
    if (rc != VD_OK)
        return rc;
    uint64_t after = result->records + 1;
    if (head_path && !head_usable)
        s_broken(result, after, "head: %s", head_why);
    else if (head_usable)
        s_verify_head(&head, sign_public, head_record_hash, result);
    else if (sign_public)
        s_broken(result, after, "head: none, but a head signed by the broker is required");
    return VD_OK;
}

/*  -------------------------------------------------------------------------------------------
    Query  */

static bool
s_filter_passes(const vdp_audit_filter_t *filter, const vdp_audit_record_t *rec)
{
    if (filter->org && (!rec->org || strcmp(filter->org, rec->org) != 0))
        return false;
    if (filter->kind != VDP_AUDIT_NONE && rec->kind != filter->kind)
        return false;
    if (filter->since > 0 && rec->t < filter->since)
        return false;
    if (filter->until > 0 && rec->t > filter->until)
        return false;
    return true;
}

//  One line of a query: parsed, filtered, handed to fn. Sets *stop when fn asks to stop.
static int
s_query_line(const char *line,
             size_t len,
             unsigned long long number,
             const vdp_audit_filter_t *filter,
             vdp_audit_query_fn *fn,
             void *arg,
             bool *stop,
             char *err,
             size_t size)
{
    vdp_audit_entry_t entry;
    char why[256];
    int rc = vdp_audit_parse(line, len, 0, NULL, &entry, why, sizeof why);
    if (rc != VD_OK)
        return vdp_errorf(err, size, rc, "line %llu: %s", number, why);
    if (s_filter_passes(filter, &entry.record))
        *stop = fn(line, len, &entry.record, arg) != 0;
    vdp_audit_entry_clear(&entry);
    return VD_OK;
}

int
vdp_audit_query(const char *path,
                const vdp_audit_filter_t *filter,
                vdp_audit_query_fn *fn,
                void *arg,
                char *err,
                size_t size)
{
    if (!path || !filter || !fn)
        return VD_EINVAL;
    s_reader_t reader;
    int rc = s_reader_open(&reader, path, err, size);
    if (rc != VD_OK)
        return rc;
    bool stop = false;
    for (unsigned long long number = 1; rc == VD_OK && !stop; number++) {
        const char *line;
        size_t len;
        s_line_t got = s_reader_next(&reader, &line, &len);
        if (got == S_LINE_END || got == S_LINE_INCOMPLETE)
            break; // an incomplete last line is a write in progress, not a record yet
        if (got == S_LINE_ERROR)
            rc = vdp_errorf(err, size, VD_EIO, "%s: %s", path, strerror(errno));
        else if (got == S_LINE_TOO_LONG)
            rc = vdp_errorf(err, size, VD_EPROTO, "line %llu: a line longer than %u bytes", number,
                            VDP_AUDIT_MAX_LINE);
        else
            rc = s_query_line(line, len, number, filter, fn, arg, &stop, err, size);
    }
    s_reader_close(&reader);
    return rc;
}

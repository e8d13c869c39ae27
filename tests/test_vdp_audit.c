/*  vdp_audit suite: the audit log's format, on real files in a fresh directory per test.
    - format: the pinned test vector (docs/audit.md), jansson's escaping, cut and replaced
      bytes, refused records, kind names;
    - parse: round trips, every kind of line that is not a record, the chain checks;
    - head: signature, file round trip, files that are not heads;
    - verify: an intact log, then each tampering (an edited record, with and without its hash
      recomputed; a deleted one; two swapped; the tail cut; a head with a wrong hash, a wrong
      signature, no signature, a stale number; a garbage line) named at the right record;
    - query: filters by org, kind and time range; a line that is not a record.  */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>
#include <sodium.h>

#include "scratch.h"
#include "suites.h"
#include "vdp_audit.h"
#include "vedetta.h"

//  The pinned test vector: these two records, chained from zeros, give exactly these lines.
#define S_KEY1 "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
#define S_KEY2 "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
#define S_LINE1                                                                                    \
    "{\"n\":1,\"t\":1795341600000,\"kind\":\"auth.fail\",\"org\":\"comune:i726\",\"key\":"         \
    "\"" S_KEY1                                                                                    \
    "\",\"peer\":\"203.0.113.7:51234\",\"code\":\"EAUTH\",\"reason\":\"key not in registry\","     \
    "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","               \
    "\"hash\":\"e270b41503671e84eb0c85bbdc8f42c9f21c83ef689b52ea2e3e98a787e64643\"}\n"
#define S_HASH1 "e270b41503671e84eb0c85bbdc8f42c9f21c83ef689b52ea2e3e98a787e64643"
#define S_LINE2                                                                                    \
    "{\"n\":2,\"t\":1795341600250,\"kind\":\"deliver.withheld\",\"org\":\"anci:toscana\","         \
    "\"key\":\"" S_KEY2 "\",\"topic\":\"alert.toscana.i726\","                                     \
    "\"id\":\"0f8e6b1c-3d2a-4b5c-9e7f-1a2b3c4d5e6f\",\"seq\":42,\"code\":\"ETLP\","                \
    "\"reason\":\"TLP:AMBER+STRICT \\\"org only\\\"\\\\\\tnot for anci\\u0001 (cit\xc3\xa0)\","    \
    "\"prev\":\"" S_HASH1 "\","                                                                    \
    "\"hash\":\"d07a03226b90cba21a46c0b60b63e75f6bb143c5714822e6959704daa001dade\"}\n"
#define S_HASH2 "d07a03226b90cba21a46c0b60b63e75f6bb143c5714822e6959704daa001dade"

static const vdp_audit_record_t s_vector1 = {
    .n = 1,
    .t = 1795341600000LL, // 2026-11-22T10:00:00Z
    .kind = VDP_AUDIT_AUTH_FAIL,
    .org = "comune:i726",
    .key = S_KEY1,
    .peer = "203.0.113.7:51234",
    .code = "EAUTH",
    .reason = "key not in registry",
};

static const vdp_audit_record_t s_vector2 = {
    .n = 2,
    .t = 1795341600250LL,
    .kind = VDP_AUDIT_DELIVER_WITHHELD,
    .org = "anci:toscana",
    .key = S_KEY2,
    .topic = "alert.toscana.i726",
    .id = "0f8e6b1c-3d2a-4b5c-9e7f-1a2b3c4d5e6f",
    .seq = 42,
    .code = "ETLP",
    .reason = "TLP:AMBER+STRICT \"org only\"\\\tnot for anci\x01 (cit\xc3\xa0)",
};

#define S_RECORDS 10 // records in the logs the verify and query tests build

static char s_dir[256]; // a fresh directory per test
static char s_log[512];
static char s_head[600];
static uint8_t s_public[crypto_sign_PUBLICKEYBYTES];
static uint8_t s_secret[crypto_sign_SECRETKEYBYTES];
static char s_lines[S_RECORDS + 1][VDP_AUDIT_MAX_LINE + 1];   // record n's line, "\n" included
static uint8_t s_hashes[S_RECORDS + 1][VDP_AUDIT_HASH_BYTES]; // record n's hash; 0: zeros

static void
s_setup(void)
{
    vdt_scratch_make(s_dir, sizeof s_dir, "vdp_audit");
    snprintf(s_log, sizeof s_log, "%s/audit.log", s_dir);
    snprintf(s_head, sizeof s_head, "%s.head", s_log);
    ck_assert_int_eq(crypto_sign_keypair(s_public, s_secret), 0);
}

static void
s_teardown(void)
{
    vdt_scratch_remove(s_dir);
}

static void
s_write_file(const char *path, const char *text)
{
    FILE *file = fopen(path, "w");
    ck_assert_ptr_nonnull(file);
    ck_assert_int_ge(fputs(text, file), 0);
    ck_assert_int_eq(fclose(file), 0);
}

//  The whole file; caller frees.
static char *
s_read_file(const char *path)
{
    FILE *file = fopen(path, "r");
    ck_assert_ptr_nonnull(file);
    char *text = calloc(1, 1 << 20);
    ck_assert_ptr_nonnull(text);
    size_t got = fread(text, 1, (1 << 20) - 1, file);
    text[got] = '\0';
    fclose(file);
    return text;
}

//  Record n of the test logs: orgs, kinds and times vary so that queries have something to do.
static vdp_audit_record_t
s_record(uint64_t n)
{
    static const char *const orgs[] = { "comune:i726", "cosc:toscana", "anci:toscana" };
    static const vdp_audit_kind_t kinds[] = { VDP_AUDIT_AUTH_OK, VDP_AUDIT_PUB_ACCEPT,
                                              VDP_AUDIT_SUB_DENY, VDP_AUDIT_PUB_REJECT };
    return (vdp_audit_record_t){
        .n = n,
        .t = 1795341600000LL + (int64_t)n * 1000,
        .kind = kinds[n % 4],
        .org = orgs[n % 3],
        .key = S_KEY1,
        .peer = "127.0.0.1:40000",
        .topic = "alert.toscana.i726",
        .seq = n % 4 == 1 ? n : 0,
        .code = n % 4 == 1 ? "OK" : "EACCES",
        .reason = "policy",
    };
}

//  Formats records 1..S_RECORDS into s_lines / s_hashes.
static void
s_build(void)
{
    memset(s_hashes[0], 0, VDP_AUDIT_HASH_BYTES);
    for (uint64_t n = 1; n <= S_RECORDS; n++) {
        vdp_audit_record_t rec = s_record(n);
        size_t len;
        ck_assert_int_eq(vdp_audit_format(&rec, s_hashes[n - 1], s_lines[n], sizeof s_lines[n],
                                          &len, s_hashes[n]),
                         VD_OK);
        ck_assert_uint_eq(len, strlen(s_lines[n]));
    }
}

//  Writes the log from the lines of records `order[0..count)` (record numbers).
static void
s_write_log(const int *order, size_t count)
{
    FILE *file = fopen(s_log, "w");
    ck_assert_ptr_nonnull(file);
    for (size_t i = 0; i < count; i++)
        ck_assert_int_ge(fputs(s_lines[order[i]], file), 0);
    ck_assert_int_eq(fclose(file), 0);
}

//  The log of records 1..count in order.
static void
s_write_first(size_t count)
{
    int order[S_RECORDS] = { 0 };
    for (size_t i = 0; i < count; i++)
        order[i] = (int)i + 1;
    s_write_log(order, count);
}

//  A head naming record n with hash, signed with `secret` if not NULL.
static void
s_write_head(uint64_t n, const uint8_t *hash, const uint8_t *secret)
{
    vdp_audit_head_t head = { .n = n, .t = 1795341700000LL };
    memcpy(head.hash, hash, VDP_AUDIT_HASH_BYTES);
    if (secret)
        vdp_audit_head_sign(&head, secret);
    char err[256] = "";
    ck_assert_msg(vdp_audit_head_write(&head, s_head, err, sizeof err) == VD_OK, "%s", err);
}

//  Verifies s_log with s_head (if `with_head`) and the test key (if `with_key`).
static vdp_audit_verify_t
s_verify(bool with_head, bool with_key)
{
    vdp_audit_verify_t result;
    char err[256] = "";
    int rc = vdp_audit_verify(s_log, with_head ? s_head : NULL, with_key ? s_public : NULL, &result,
                              err, sizeof err);
    ck_assert_msg(rc == VD_OK, "verify: %s", err);
    return result;
}

//  Asserts the log is broken at `at` with `words` in the reason.
static void
s_assert_broken(const vdp_audit_verify_t *result, uint64_t at, const char *words)
{
    ck_assert_msg(!result->intact, "should be broken at %llu", (unsigned long long)at);
    ck_assert_msg(result->broken_at == at, "broken at %llu, expected %llu: %s",
                  (unsigned long long)result->broken_at, (unsigned long long)at, result->reason);
    ck_assert_msg(strstr(result->reason, words), "reason '%s' lacks '%s'", result->reason, words);
}

//  --------------------------------------------------------------------------------------------
//  format

START_TEST(format_gives_the_pinned_test_vector)
{
    uint8_t zeros[VDP_AUDIT_HASH_BYTES] = { 0 }, hash1[VDP_AUDIT_HASH_BYTES],
            hash2[VDP_AUDIT_HASH_BYTES];
    char line[VDP_AUDIT_MAX_LINE + 1], hex[VDP_AUDIT_HASH_HEX + 1];
    size_t len;
    ck_assert_int_eq(vdp_audit_format(&s_vector1, zeros, line, sizeof line, &len, hash1), VD_OK);
    ck_assert_str_eq(line, S_LINE1);
    ck_assert_uint_eq(len, strlen(S_LINE1));
    ck_assert_str_eq(sodium_bin2hex(hex, sizeof hex, hash1, sizeof hash1), S_HASH1);

    ck_assert_int_eq(vdp_audit_format(&s_vector2, hash1, line, sizeof line, &len, hash2), VD_OK);
    ck_assert_str_eq(line, S_LINE2);
    ck_assert_str_eq(sodium_bin2hex(hex, sizeof hex, hash2, sizeof hash2), S_HASH2);

    //  The hash is BLAKE2b-256 of prev || the bytes up to the "," before "hash", nothing else.
    const char *body_end = strstr(S_LINE2, "\"hash\":");
    uint8_t mine[VDP_AUDIT_HASH_BYTES];
    crypto_generichash_state state;
    crypto_generichash_init(&state, NULL, 0, sizeof mine);
    crypto_generichash_update(&state, hash1, sizeof hash1);
    crypto_generichash_update(&state, (const unsigned char *)S_LINE2, (size_t)(body_end - S_LINE2));
    crypto_generichash_final(&state, mine, sizeof mine);
    ck_assert_mem_eq(mine, hash2, sizeof mine);
}
END_TEST

//  The "reason" value of a formatted line, as the bytes between "reason": and ,"prev".
static void
s_reason_json(const char *text, char *out, size_t size)
{
    vdp_audit_record_t rec = s_vector1;
    rec.reason = text;
    uint8_t zeros[VDP_AUDIT_HASH_BYTES] = { 0 }, hash[VDP_AUDIT_HASH_BYTES];
    char line[VDP_AUDIT_MAX_LINE + 1];
    size_t len;
    ck_assert_int_eq(vdp_audit_format(&rec, zeros, line, sizeof line, &len, hash), VD_OK);
    const char *from = strstr(line, "\"reason\":") + strlen("\"reason\":");
    const char *to = strstr(from, ",\"prev\":");
    ck_assert_ptr_nonnull(to);
    ck_assert_uint_lt((size_t)(to - from), size);
    memcpy(out, from, (size_t)(to - from));
    out[to - from] = '\0';
}

START_TEST(format_escapes_strings_as_jansson_does)
{
    static const char *const texts[] = {
        "plain",
        "quote \" and backslash \\ and slash /",
        "tab\tnew\nline\rcr\bbs\fff",
        "bell\x07 esc\x1b us\x1f del\x7f",
        "\xc3\xa8 \xe2\x82\xac \xf0\x9f\x98\x80",
        "",
        "\\\"\\\"",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char mine[512];
        s_reason_json(texts[i], mine, sizeof mine);
        json_t *string = json_string(texts[i]);
        ck_assert_ptr_nonnull(string);
        char *theirs = json_dumps(string, JSON_COMPACT | JSON_ENCODE_ANY);
        ck_assert_msg(strcmp(mine, theirs) == 0, "text %zu: %s, jansson %s", i, mine, theirs);
        free(theirs);
        json_decref(string);
    }
    //  Every control character: jansson's short escapes, else \u00XX in upper case.
    char all[32];
    for (int c = 1; c < 32; c++)
        all[c - 1] = (char)c;
    all[31] = '\0';
    char mine[512];
    s_reason_json(all, mine, sizeof mine);
    ck_assert_str_eq(mine, "\"\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000B"
                           "\\f\\r\\u000E\\u000F\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016"
                           "\\u0017\\u0018\\u0019\\u001A\\u001B\\u001C\\u001D\\u001E\\u001F\"");
}
END_TEST

START_TEST(format_replaces_bad_utf8_and_cuts_long_strings)
{
    char mine[8192];
    //  A lone continuation byte, a truncated sequence, an overlong form, a surrogate.
    s_reason_json("a\x80z \xc3 \xc0\xaf \xed\xa0\x80.", mine, sizeof mine);
    ck_assert_str_eq(mine, "\"a?z ? ?? ???.\"");

    //  2000 bytes of two-byte characters: cut to VDP_AUDIT_MAX_FIELD bytes, never mid-character.
    char long_text[2001];
    for (size_t i = 0; i < 2000; i += 2)
        memcpy(long_text + i, "\xc3\xa8", 2);
    long_text[2000] = '\0';
    s_reason_json(long_text, mine, sizeof mine);
    ck_assert_uint_eq(strlen(mine), VDP_AUDIT_MAX_FIELD + 2);
    //  And an odd limit: 1 byte then two-byte characters cannot fill 1024 exactly.
    long_text[0] = 'x';
    memmove(long_text + 1, long_text + 2, 1998);
    long_text[1999] = '\0';
    s_reason_json(long_text, mine, sizeof mine);
    ck_assert_uint_eq(strlen(mine), VDP_AUDIT_MAX_FIELD - 1 + 2);

    //  The longest record there can be still fits a line, and parses.
    char worst[VDP_AUDIT_MAX_FIELD + 1];
    memset(worst, '\x01', VDP_AUDIT_MAX_FIELD);
    worst[VDP_AUDIT_MAX_FIELD] = '\0';
    vdp_audit_record_t rec = { .n = UINT64_MAX,
                               .t = INT64_MAX,
                               .kind = VDP_AUDIT_DELIVER_WITHHELD,
                               .org = worst,
                               .key = worst,
                               .peer = worst,
                               .topic = worst,
                               .id = worst,
                               .seq = UINT64_MAX,
                               .code = "EINTERNAL",
                               .reason = worst };
    uint8_t zeros[VDP_AUDIT_HASH_BYTES] = { 0 }, hash[VDP_AUDIT_HASH_BYTES];
    static char line[VDP_AUDIT_MAX_LINE + 1];
    size_t len;
    ck_assert_int_eq(vdp_audit_format(&rec, zeros, line, sizeof line, &len, hash), VD_OK);
    ck_assert_uint_le(len, VDP_AUDIT_MAX_LINE);
    //  jansson's integers are signed: n and seq past INT64_MAX are not records.
    vdp_audit_entry_t entry;
    ck_assert_int_eq(vdp_audit_parse(line, len - 1, 0, NULL, &entry, NULL, 0), VD_EPROTO);
    rec.n = rec.seq = (uint64_t)INT64_MAX;
    ck_assert_int_eq(vdp_audit_format(&rec, zeros, line, sizeof line, &len, hash), VD_OK);
    char err[256] = "";
    ck_assert_msg(vdp_audit_parse(line, len - 1, rec.n, zeros, &entry, err, sizeof err) == VD_OK,
                  "%s", err);
    ck_assert_uint_eq(strlen(entry.record.reason), VDP_AUDIT_MAX_FIELD);
    vdp_audit_entry_clear(&entry);
}
END_TEST

START_TEST(format_refuses_what_is_not_a_record)
{
    uint8_t zeros[VDP_AUDIT_HASH_BYTES] = { 0 }, hash[VDP_AUDIT_HASH_BYTES];
    char line[VDP_AUDIT_MAX_LINE + 1];
    size_t len;
    vdp_audit_record_t rec = s_vector1;
    rec.kind = VDP_AUDIT_NONE;
    ck_assert_int_eq(vdp_audit_format(&rec, zeros, line, sizeof line, &len, hash), VD_EINVAL);
    rec.kind = VDP_AUDIT_KIND_COUNT;
    ck_assert_int_eq(vdp_audit_format(&rec, zeros, line, sizeof line, &len, hash), VD_EINVAL);
    rec = s_vector1;
    rec.n = 0;
    ck_assert_int_eq(vdp_audit_format(&rec, zeros, line, sizeof line, &len, hash), VD_EINVAL);
    rec = s_vector1;
    rec.t = -1;
    ck_assert_int_eq(vdp_audit_format(&rec, zeros, line, sizeof line, &len, hash), VD_EINVAL);
    rec = s_vector1;
    rec.code = "EACCESS"; // a typo
    ck_assert_int_eq(vdp_audit_format(&rec, zeros, line, sizeof line, &len, hash), VD_EINVAL);
    rec.code = "OK";
    ck_assert_int_eq(vdp_audit_format(&rec, zeros, line, sizeof line, &len, hash), VD_OK);
    //  A buffer one byte short of the line and its NUL.
    ck_assert_int_eq(vdp_audit_format(&rec, zeros, line, len, &len, hash), VD_ELIMIT);
    ck_assert_int_eq(vdp_audit_format(&rec, zeros, line, 10, &len, hash), VD_ELIMIT);
}
END_TEST

START_TEST(kind_names_round_trip)
{
    ck_assert_ptr_null(vdp_audit_kind_name(VDP_AUDIT_NONE));
    ck_assert_ptr_null(vdp_audit_kind_name(VDP_AUDIT_KIND_COUNT));
    ck_assert_ptr_null(vdp_audit_kind_name((vdp_audit_kind_t)-1));
    for (int kind = VDP_AUDIT_NONE + 1; kind < VDP_AUDIT_KIND_COUNT; kind++) {
        const char *name = vdp_audit_kind_name((vdp_audit_kind_t)kind);
        ck_assert_ptr_nonnull(name);
        ck_assert_int_eq(vdp_audit_kind_from_name(name), kind);
    }
    ck_assert_str_eq(vdp_audit_kind_name(VDP_AUDIT_DELIVER_WITHHELD), "deliver.withheld");
    ck_assert_str_eq(vdp_audit_kind_name(VDP_AUDIT_CHECKPOINT), "audit.checkpoint");
    ck_assert_int_eq(vdp_audit_kind_from_name("auth.OK"), VDP_AUDIT_NONE);
    ck_assert_int_eq(vdp_audit_kind_from_name("auth"), VDP_AUDIT_NONE);
    ck_assert_int_eq(vdp_audit_kind_from_name(NULL), VDP_AUDIT_NONE);
}
END_TEST

//  --------------------------------------------------------------------------------------------
//  parse

START_TEST(parse_round_trips_a_formatted_record)
{
    uint8_t zeros[VDP_AUDIT_HASH_BYTES] = { 0 }, hash[VDP_AUDIT_HASH_BYTES];
    uint8_t hash1[VDP_AUDIT_HASH_BYTES];
    ck_assert_int_eq(
        sodium_hex2bin(hash1, sizeof hash1, S_HASH1, VDP_AUDIT_HASH_HEX, NULL, NULL, NULL), 0);
    vdp_audit_entry_t entry;
    char err[256] = "";
    //  The pinned line, without its "\n".
    ck_assert_msg(
        vdp_audit_parse(S_LINE2, strlen(S_LINE2) - 1, 2, hash1, &entry, err, sizeof err) == VD_OK,
        "%s", err);
    const vdp_audit_record_t *rec = &entry.record;
    ck_assert_uint_eq(rec->n, 2);
    ck_assert_int_eq(rec->t, s_vector2.t);
    ck_assert_int_eq(rec->kind, VDP_AUDIT_DELIVER_WITHHELD);
    ck_assert_str_eq(rec->org, "anci:toscana");
    ck_assert_str_eq(rec->key, S_KEY2);
    ck_assert_ptr_null(rec->peer);
    ck_assert_str_eq(rec->topic, s_vector2.topic);
    ck_assert_str_eq(rec->id, s_vector2.id);
    ck_assert_uint_eq(rec->seq, 42);
    ck_assert_str_eq(rec->code, "ETLP");
    ck_assert_str_eq(rec->reason, s_vector2.reason); // escapes undone exactly
    ck_assert_mem_eq(entry.prev, hash1, sizeof hash1);
    vdp_audit_entry_clear(&entry);
    ck_assert_ptr_null(entry.json_);
    vdp_audit_entry_clear(&entry); // twice is harmless

    //  Only what a record needs: n, t, kind; the optional ones stay NULL and 0.
    vdp_audit_record_t bare = { .n = 7, .t = 0, .kind = VDP_AUDIT_BROKER_STOP };
    char line[VDP_AUDIT_MAX_LINE + 1];
    size_t len;
    ck_assert_int_eq(vdp_audit_format(&bare, zeros, line, sizeof line, &len, hash), VD_OK);
    static const char prefix[] = "{\"n\":7,\"t\":0,\"kind\":\"broker.stop\",\"prev\":\"00";
    ck_assert_msg(strncmp(line, prefix, sizeof prefix - 1) == 0, "%s", line);
    ck_assert_int_eq(vdp_audit_parse(line, len - 1, 7, zeros, &entry, err, sizeof err), VD_OK);
    ck_assert_int_eq(entry.record.kind, VDP_AUDIT_BROKER_STOP);
    ck_assert(!entry.record.org && !entry.record.key && !entry.record.peer && !entry.record.topic &&
              !entry.record.id && !entry.record.code && !entry.record.reason &&
              entry.record.seq == 0);
    ck_assert_mem_eq(entry.hash, hash, sizeof hash);
    vdp_audit_entry_clear(&entry);
}
END_TEST

//  Lines that are not records: each is the pinned line 1 with one thing wrong.
static const struct {
    const char *line;
    const char *words; // in the error
} s_bad_lines[] = {
    { "not json at all", "does not start" },
    { "", "does not start" },
    { " " S_LINE1, "does not start" },
    { "[1,2,\"hash\":\"" S_HASH1 "\"}", "does not start" },
    { "{\"n\":1,\"t\":5,\"kind\":\"auth.ok\",\"prev\":\"" S_HASH1 "\",\"hash\":\"" S_HASH1 "\"} ",
      "does not start" },
    { "{\"n\":1,\"t\":5,\"kind\":\"auth.ok\",\"prev\":\"" S_HASH1 "\",\"hash\":\"" S_HASH1 "\"}}",
      "does not start" },
    { "{\"n\":1,\"t\":5,\"kind\":\"auth.ok\",\"prev\":\"" S_HASH1
      "\",\"hash\":\"E270B41503671E84EB0C85BBDC8F42C9F21C83EF689B52EA2E3E98A787E64643\"}",
      "not 64 lowercase hex" },
    { "{\"n\":1,\"t\":5,\"kind\":\"auth.ok\",\"prev\":\"" S_HASH1 "\",\"hash\":\"" S_HASH1 "0\"}",
      "does not start" },
    { "{\"n\":1,\"t\":5,\"kind\":\"auth.ok\",\"prev\":\"00\",\"hash\":\"" S_HASH1 "\"}",
      "\"prev\" is not 64 lowercase hex" },
    { "{\"n\":1,\"t\":5,\"kind\":\"auth.ok\" \"prev\":\"" S_HASH1 "\",\"hash\":\"" S_HASH1 "\"}",
      "not a JSON object" },
    { "{\"t\":5,\"n\":1,\"kind\":\"auth.ok\",\"prev\":\"" S_HASH1 "\",\"hash\":\"" S_HASH1 "\"}",
      "first key is not \"n\"" },
    { "{\"n\":1,\"kind\":\"auth.ok\",\"t\":5,\"prev\":\"" S_HASH1 "\",\"hash\":\"" S_HASH1 "\"}",
      "\"t\" missing" },
    { "{\"n\":1,\"t\":5,\"org\":\"x\",\"prev\":\"" S_HASH1 "\",\"hash\":\"" S_HASH1 "\"}",
      "\"kind\" missing" },
    { "{\"n\":1,\"t\":5,\"kind\":\"auth.ok\",\"hash\":\"" S_HASH1 "\",\"prev\":\"" S_HASH1
      "\",\"hash\":\"" S_HASH1 "\"}",
      "not a JSON object" }, // a duplicate key
    { "{\"n\":1,\"t\":5,\"kind\":\"auth.ok\",\"code\":\"OK\",\"org\":\"x\",\"prev\":\"" S_HASH1
      "\",\"hash\":\"" S_HASH1 "\"}",
      "\"org\" out of order" },
    { "{\"n\":1,\"t\":5,\"kind\":\"auth.ok\",\"color\":\"red\",\"prev\":\"" S_HASH1
      "\",\"hash\":\"" S_HASH1 "\"}",
      "unknown key \"color\"" },
    { "{\"n\":1,\"t\":5,\"kind\":\"auth.okay\",\"prev\":\"" S_HASH1 "\",\"hash\":\"" S_HASH1 "\"}",
      "unknown kind" },
    { "{\"n\":0,\"t\":5,\"kind\":\"auth.ok\",\"prev\":\"" S_HASH1 "\",\"hash\":\"" S_HASH1 "\"}",
      "\"n\" is not an integer" },
    { "{\"n\":1.0,\"t\":5,\"kind\":\"auth.ok\",\"prev\":\"" S_HASH1 "\",\"hash\":\"" S_HASH1 "\"}",
      "\"n\" is not an integer" },
    { "{\"n\":1,\"t\":\"5\",\"kind\":\"auth.ok\",\"prev\":\"" S_HASH1 "\",\"hash\":\"" S_HASH1
      "\"}",
      "\"t\" is not an integer" },
    { "{\"n\":1,\"t\":5,\"kind\":\"auth.ok\",\"seq\":-3,\"prev\":\"" S_HASH1
      "\",\"hash\":\"" S_HASH1 "\"}",
      "\"seq\" is not an integer" },
    { "{\"n\":1,\"t\":5,\"kind\":\"auth.ok\",\"org\":7,\"prev\":\"" S_HASH1 "\",\"hash\":\"" S_HASH1
      "\"}",
      "\"org\" is not a string" },
    { "{\"n\":1,\"t\":5,\"kind\":\"auth.ok\",\"reason\":\"a\\u0000b\",\"prev\":\"" S_HASH1
      "\",\"hash\":\"" S_HASH1 "\"}",
      "not a JSON object" },
    { "{\"n\":1,\"t\":5,\"kind\":\"auth.ok\",\"prev\":\"" S_HASH1 "\",\"h\\u0061sh\":\"" S_HASH1
      "\"}",
      "does not start" },
    //  A "hash" that would be inside a string cannot end the line as JSON.
    { "{\"n\":1,\"t\":5,\"kind\":\"auth.ok\",\"prev\":\"" S_HASH1
      "\",\"reason\":\"x,\"hash\":\"" S_HASH1 "\"}",
      "not a JSON object" },
};

START_TEST(parse_rejects_lines_that_are_not_records)
{
    vdp_audit_entry_t entry;
    char err[256] = "";
    const char *line = s_bad_lines[_i].line;
    ck_assert_int_eq(vdp_audit_parse(line, strlen(line), 0, NULL, &entry, err, sizeof err),
                     VD_EPROTO);
    ck_assert_msg(strstr(err, s_bad_lines[_i].words), "line %d: '%s' lacks '%s'", _i, err,
                  s_bad_lines[_i].words);
    ck_assert_ptr_null(entry.json_);
    //  With the chain checked, the same, named by record.
    uint8_t zeros[VDP_AUDIT_HASH_BYTES] = { 0 };
    ck_assert_int_eq(vdp_audit_parse(line, strlen(line), 9, zeros, &entry, err, sizeof err),
                     VD_EPROTO);
    ck_assert_msg(strncmp(err, "record 9: ", 10) == 0, "%s", err);
}
END_TEST

START_TEST(parse_checks_the_chain)
{
    uint8_t zeros[VDP_AUDIT_HASH_BYTES] = { 0 }, hash1[VDP_AUDIT_HASH_BYTES];
    sodium_hex2bin(hash1, sizeof hash1, S_HASH1, VDP_AUDIT_HASH_HEX, NULL, NULL, NULL);
    vdp_audit_entry_t entry;
    char err[256] = "";
    size_t len = strlen(S_LINE2) - 1;
    ck_assert_int_eq(vdp_audit_parse(S_LINE2, len, 2, hash1, &entry, err, sizeof err), VD_OK);
    vdp_audit_entry_clear(&entry);

    ck_assert_int_eq(vdp_audit_parse(S_LINE2, len, 3, hash1, &entry, err, sizeof err), VD_ESIG);
    ck_assert_str_eq(err, "record 3: found record 2 in its place: records were removed, added "
                          "or moved");
    ck_assert_int_eq(vdp_audit_parse(S_LINE2, len, 2, zeros, &entry, err, sizeof err), VD_ESIG);
    ck_assert_msg(strstr(err, "record 2: prev is not the hash of record 1"), "%s", err);
    //  Record 1 chained after something: records were removed before it.
    char line[VDP_AUDIT_MAX_LINE + 1];
    size_t line_len;
    uint8_t hash[VDP_AUDIT_HASH_BYTES];
    ck_assert_int_eq(vdp_audit_format(&s_vector1, hash1, line, sizeof line, &line_len, hash),
                     VD_OK);
    ck_assert_int_eq(vdp_audit_parse(line, line_len - 1, 1, zeros, &entry, err, sizeof err),
                     VD_ESIG);
    ck_assert_str_eq(err, "record 1: prev is not zeros: records were removed before it");

    //  One byte changed anywhere in the body: "seq":42 -> "seq":43.
    char altered[sizeof S_LINE2];
    strcpy(altered, S_LINE2);
    char *seq = strstr(altered, "\"seq\":42");
    ck_assert_ptr_nonnull(seq);
    seq[7] = '3';
    ck_assert_int_eq(vdp_audit_parse(altered, len, 2, hash1, &entry, err, sizeof err), VD_ESIG);
    ck_assert_str_eq(err, "record 2: hash mismatch: the record was altered");
    //  Without the chain, an altered record still parses: a query does not verify.
    ck_assert_int_eq(vdp_audit_parse(altered, len, 0, NULL, &entry, err, sizeof err), VD_OK);
    ck_assert_uint_eq(entry.record.seq, 43);
    vdp_audit_entry_clear(&entry);
    ck_assert_int_eq(vdp_audit_parse(NULL, 0, 0, NULL, &entry, err, sizeof err), VD_EINVAL);
    ck_assert_int_eq(vdp_audit_parse(S_LINE2, len, 2, NULL, &entry, err, sizeof err), VD_EINVAL);
}
END_TEST

//  --------------------------------------------------------------------------------------------
//  head

START_TEST(head_signs_writes_and_reads_back)
{
    uint8_t hash[VDP_AUDIT_HASH_BYTES];
    sodium_hex2bin(hash, sizeof hash, S_HASH2, VDP_AUDIT_HASH_HEX, NULL, NULL, NULL);
    vdp_audit_head_t head = { .n = 2, .t = 1795341601000LL };
    memcpy(head.hash, hash, sizeof hash);
    ck_assert(!vdp_audit_head_verify(&head, s_public)); // not signed
    vdp_audit_head_sign(&head, s_secret);
    ck_assert(head.signed_);
    ck_assert(vdp_audit_head_verify(&head, s_public));

    //  The signature covers exactly the documented bytes.
    const char *message = "vedetta-audit-head-v1\n2\n" S_HASH2 "\n1795341601000";
    ck_assert_int_eq(crypto_sign_verify_detached(head.sig, (const unsigned char *)message,
                                                 strlen(message), s_public),
                     0);
    //  Any field changed breaks it, and so does another key.
    vdp_audit_head_t other = head;
    other.n = 3;
    ck_assert(!vdp_audit_head_verify(&other, s_public));
    other = head;
    other.t++;
    ck_assert(!vdp_audit_head_verify(&other, s_public));
    other = head;
    other.hash[31] ^= 1;
    ck_assert(!vdp_audit_head_verify(&other, s_public));
    uint8_t public2[crypto_sign_PUBLICKEYBYTES], secret2[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(public2, secret2);
    ck_assert(!vdp_audit_head_verify(&head, public2));

    char err[256] = "";
    ck_assert_int_eq(vdp_audit_head_write(&head, s_head, err, sizeof err), VD_OK);
    char hex[VDP_AUDIT_SIG_HEX + 1];
    sodium_bin2hex(hex, sizeof hex, head.sig, sizeof head.sig);
    char expected[512];
    snprintf(expected, sizeof expected,
             "{\"n\":2,\"hash\":\"" S_HASH2 "\",\"t\":1795341601000,\"sig\":\"%s\"}\n", hex);
    char *text = s_read_file(s_head);
    ck_assert_str_eq(text, expected);
    free(text);
    struct stat st;
    ck_assert_int_eq(stat(s_head, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0640);
    vdp_audit_head_t read;
    ck_assert_int_eq(vdp_audit_head_read(s_head, &read, err, sizeof err), VD_OK);
    ck_assert_uint_eq(read.n, 2);
    ck_assert_int_eq(read.t, head.t);
    ck_assert_mem_eq(read.hash, head.hash, sizeof hash);
    ck_assert(read.signed_);
    ck_assert(vdp_audit_head_verify(&read, s_public));

    //  Unsigned: no "sig" at all. Replacing leaves no temporary file behind.
    head.signed_ = false;
    ck_assert_int_eq(vdp_audit_head_write(&head, s_head, err, sizeof err), VD_OK);
    text = s_read_file(s_head);
    ck_assert_str_eq(text, "{\"n\":2,\"hash\":\"" S_HASH2 "\",\"t\":1795341601000}\n");
    free(text);
    ck_assert_int_eq(vdp_audit_head_read(s_head, &read, err, sizeof err), VD_OK);
    ck_assert(!read.signed_);
    DIR *dir = opendir(s_dir);
    ck_assert_ptr_nonnull(dir);
    int entries = 0;
    for (struct dirent *entry = readdir(dir); entry; entry = readdir(dir)) {
        if (entry->d_name[0] != '.') {
            ck_assert_str_eq(entry->d_name, "audit.log.head");
            entries++;
        }
    }
    closedir(dir);
    ck_assert_int_eq(entries, 1);
    //  A directory that does not exist: nothing written, an error that names the path.
    char nowhere[700];
    snprintf(nowhere, sizeof nowhere, "%s/missing/audit.log.head", s_dir);
    ck_assert_int_eq(vdp_audit_head_write(&head, nowhere, err, sizeof err), VD_EIO);
    ck_assert_msg(strstr(err, "missing"), "%s", err);
}
END_TEST

START_TEST(head_read_refuses_what_is_not_a_head)
{
    vdp_audit_head_t head;
    char err[256] = "";
    ck_assert_int_eq(vdp_audit_head_read(s_head, &head, err, sizeof err), VD_ENOTFOUND);
    static const char *const bad[] = {
        "",
        "{}",
        "{\"n\":2,\"t\":1}",
        "{\"n\":2,\"hash\":\"" S_HASH2 "\"}",
        "{\"n\":-1,\"hash\":\"" S_HASH2 "\",\"t\":1}",
        "{\"n\":2,\"hash\":\"" S_HASH2 "0\",\"t\":1}",
        "{\"n\":2,\"hash\":\"" S_HASH2 "\",\"t\":1,\"sig\":\"abcd\"}",
        "{\"n\":2,\"hash\":\"" S_HASH2 "\",\"t\":1,\"by\":\"me\"}",
        "[2]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_write_file(s_head, bad[i]);
        ck_assert_msg(vdp_audit_head_read(s_head, &head, err, sizeof err) == VD_EPROTO,
                      "head %zu read", i);
        ck_assert_msg(strstr(err, "not a head"), "%s", err);
    }
    char big[VDP_AUDIT_HEAD_MAX + 10];
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    s_write_file(s_head, big);
    ck_assert_int_eq(vdp_audit_head_read(s_head, &head, err, sizeof err), VD_EPROTO);
}
END_TEST

//  --------------------------------------------------------------------------------------------
//  verify

START_TEST(verify_finds_an_intact_log_intact)
{
    s_build();
    s_write_first(S_RECORDS);
    s_write_head(S_RECORDS, s_hashes[S_RECORDS], s_secret);
    vdp_audit_verify_t result = s_verify(true, true);
    ck_assert_msg(result.intact, "%s", result.reason);
    ck_assert_uint_eq(result.records, S_RECORDS);
    ck_assert_uint_eq(result.broken_at, 0);
    ck_assert(result.head_present);
    ck_assert_uint_eq(result.head_n, S_RECORDS);
    ck_assert(result.head_signed);
    ck_assert(!result.incomplete_tail);
    ck_assert_mem_eq(result.last_hash, s_hashes[S_RECORDS], VDP_AUDIT_HASH_BYTES);

    //  Without the key the signature is not checked, so not claimed.
    result = s_verify(true, false);
    ck_assert(result.intact && !result.head_signed);
    //  A head behind the log (records flushed since the last checkpoint) is fine.
    s_write_head(7, s_hashes[7], s_secret);
    result = s_verify(true, true);
    ck_assert(result.intact && result.head_n == 7 && result.records == S_RECORDS);
    //  No head at all, no key: the chain alone.
    result = s_verify(false, false);
    ck_assert(result.intact && !result.head_present);
    //  An empty log and a head naming record 0.
    s_write_first(0);
    s_write_head(0, s_hashes[0], s_secret);
    result = s_verify(true, true);
    ck_assert(result.intact && result.records == 0 && result.head_signed);
}
END_TEST

START_TEST(verify_detects_an_edited_record)
{
    s_build();
    //  Record 5's org changed in place: its own hash no longer matches.
    char *org = strstr(s_lines[5], "\"org\":\"");
    ck_assert_ptr_nonnull(org);
    org[7] = org[7] == 'a' ? 'b' : 'a';
    s_write_first(S_RECORDS);
    s_write_head(S_RECORDS, s_hashes[S_RECORDS], s_secret);
    vdp_audit_verify_t result = s_verify(true, true);
    s_assert_broken(&result, 5, "record 5: hash mismatch");
    ck_assert_uint_eq(result.records, 4);
    //  The chain alone sees it too.
    result = s_verify(false, false);
    s_assert_broken(&result, 5, "record 5: hash mismatch");
}
END_TEST

START_TEST(verify_detects_an_edited_record_with_its_hash_recomputed)
{
    s_build();
    vdp_audit_record_t rec = s_record(5);
    rec.org = "cnaipic";
    size_t len;
    uint8_t hash[VDP_AUDIT_HASH_BYTES];
    ck_assert_int_eq(vdp_audit_format(&rec, s_hashes[4], s_lines[5], sizeof s_lines[5], &len, hash),
                     VD_OK);
    s_write_first(S_RECORDS);
    s_write_head(S_RECORDS, s_hashes[S_RECORDS], s_secret);
    vdp_audit_verify_t result = s_verify(true, true);
    s_assert_broken(&result, 6, "record 6: prev is not the hash of record 5");
}
END_TEST

START_TEST(verify_detects_a_deleted_record)
{
    s_build();
    int order[] = { 1, 2, 3, 4, 6, 7, 8, 9, 10 };
    s_write_log(order, sizeof order / sizeof order[0]);
    s_write_head(S_RECORDS, s_hashes[S_RECORDS], s_secret);
    vdp_audit_verify_t result = s_verify(true, true);
    s_assert_broken(&result, 5, "record 5: found record 6 in its place");
    ck_assert_uint_eq(result.records, 4);

    //  The first record deleted.
    int no_first[] = { 2, 3 };
    s_write_log(no_first, 2);
    result = s_verify(false, false);
    s_assert_broken(&result, 1, "record 1: found record 2");
}
END_TEST

START_TEST(verify_detects_swapped_records)
{
    s_build();
    int order[] = { 1, 2, 3, 4, 6, 5, 7, 8, 9, 10 };
    s_write_log(order, sizeof order / sizeof order[0]);
    s_write_head(S_RECORDS, s_hashes[S_RECORDS], s_secret);
    vdp_audit_verify_t result = s_verify(true, true);
    s_assert_broken(&result, 5, "record 5: found record 6 in its place");

    //  The last two swapped.
    int last_two[] = { 1, 2, 3, 4, 5, 6, 7, 8, 10, 9 };
    s_write_log(last_two, S_RECORDS);
    result = s_verify(true, true);
    s_assert_broken(&result, 9, "record 9: found record 10");
}
END_TEST

START_TEST(verify_detects_a_cut_tail_through_the_head)
{
    s_build();
    s_write_first(S_RECORDS - 2);
    s_write_head(S_RECORDS, s_hashes[S_RECORDS], s_secret);
    vdp_audit_verify_t result = s_verify(true, true);
    s_assert_broken(&result, 9,
                    "the head names record 10 but the log ends at record 8: records 9 to 10 "
                    "were removed");
    ck_assert_uint_eq(result.records, 8);
    //  Without a head, a cut tail is invisible: what docs/audit.md says cannot be detected.
    result = s_verify(false, false);
    ck_assert(result.intact && result.records == 8);
    //  Everything cut.
    s_write_first(0);
    result = s_verify(true, false);
    s_assert_broken(&result, 1, "ends at record 0");
}
END_TEST

START_TEST(verify_detects_a_head_with_a_wrong_hash)
{
    s_build();
    s_write_first(S_RECORDS);
    s_write_head(S_RECORDS, s_hashes[S_RECORDS - 1], s_secret); // signed, but not record 10's
    vdp_audit_verify_t result = s_verify(true, true);
    s_assert_broken(&result, 10, "record 10: its hash differs from the head's");
    result = s_verify(true, false);
    s_assert_broken(&result, 10, "record 10: its hash differs from the head's");

    //  The whole chain rewritten from record 2 with hashes recomputed: consistent in itself,
    //  so only the signed head can tell.
    vdp_audit_record_t rec = s_record(2);
    rec.reason = "nothing to see";
    uint8_t genuine_last[VDP_AUDIT_HASH_BYTES];
    memcpy(genuine_last, s_hashes[S_RECORDS], sizeof genuine_last);
    for (uint64_t n = 2; n <= S_RECORDS; n++) {
        vdp_audit_record_t r = n == 2 ? rec : s_record(n);
        size_t len;
        ck_assert_int_eq(
            vdp_audit_format(&r, s_hashes[n - 1], s_lines[n], sizeof s_lines[n], &len, s_hashes[n]),
            VD_OK);
    }
    s_write_first(S_RECORDS);
    result = s_verify(false, false);
    ck_assert(result.intact); // what docs/audit.md says: the chain alone cannot tell
    s_write_head(S_RECORDS, genuine_last, s_secret);
    result = s_verify(true, true);
    s_assert_broken(&result, 10, "the log up to record 10 was rewritten");
}
END_TEST

START_TEST(verify_detects_a_forged_or_unsigned_head)
{
    s_build();
    s_write_first(S_RECORDS);
    //  Signed by another key.
    uint8_t public2[crypto_sign_PUBLICKEYBYTES], secret2[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(public2, secret2);
    s_write_head(S_RECORDS, s_hashes[S_RECORDS], secret2);
    vdp_audit_verify_t result = s_verify(true, true);
    s_assert_broken(&result, 10, "head: its signature does not verify");
    ck_assert(!result.head_signed);
    //  The broker's head for record 10, its number edited to claim only 8 records.
    vdp_audit_head_t head = { .n = S_RECORDS, .t = 1795341700000LL };
    memcpy(head.hash, s_hashes[8], VDP_AUDIT_HASH_BYTES);
    vdp_audit_head_sign(&head, s_secret);
    head.n = 8;
    char err[256];
    ck_assert_int_eq(vdp_audit_head_write(&head, s_head, err, sizeof err), VD_OK);
    result = s_verify(true, true);
    s_assert_broken(&result, 8, "head: its signature does not verify");
    //  Unsigned, when a key is given.
    s_write_head(S_RECORDS, s_hashes[S_RECORDS], NULL);
    result = s_verify(true, true);
    s_assert_broken(&result, 10, "head: not signed");
    result = s_verify(true, false);
    ck_assert(result.intact); // no key asked for: an unsigned head is what it is
    //  No head at all, when a key is given.
    result = s_verify(false, true);
    s_assert_broken(&result, 11, "head: none");
    //  A head that is not a head.
    s_write_file(s_head, "{\"n\":10}\n");
    result = s_verify(true, false);
    s_assert_broken(&result, 11, "head: ");
    ck_assert_msg(strstr(result.reason, "not a head"), "%s", result.reason);
    //  A head file that is missing is an I/O error, not a verdict.
    ck_assert_int_eq(unlink(s_head), 0);
    ck_assert_int_eq(vdp_audit_verify(s_log, s_head, NULL, &result, err, sizeof err), VD_EIO);
}
END_TEST

START_TEST(verify_detects_a_line_that_is_not_a_record)
{
    s_build();
    snprintf(s_lines[0], sizeof s_lines[0], "this is not a record\n");
    int order[] = { 1, 2, 3, 0, 4, 5, 6, 7, 8, 9, 10 };
    s_write_log(order, sizeof order / sizeof order[0]);
    s_write_head(S_RECORDS, s_hashes[S_RECORDS], s_secret);
    vdp_audit_verify_t result = s_verify(true, true);
    s_assert_broken(&result, 4, "record 4: not a record");
    //  An empty line is not a record either.
    snprintf(s_lines[0], sizeof s_lines[0], "\n");
    s_write_log(order, sizeof order / sizeof order[0]);
    result = s_verify(true, true);
    s_assert_broken(&result, 4, "record 4: not a record");
    //  Nor is an overlong one, which is never held whole.
    FILE *file = fopen(s_log, "w");
    ck_assert_ptr_nonnull(file);
    fputs(s_lines[1], file);
    for (int i = 0; i < 3 * (int)VDP_AUDIT_MAX_LINE; i++)
        fputc('x', file);
    fputc('\n', file);
    fclose(file);
    result = s_verify(false, false);
    s_assert_broken(&result, 2, "record 2: not a record: a line longer than");
    //  A record split over two lines.
    s_build();
    s_write_first(3);
    file = fopen(s_log, "a");
    fwrite(s_lines[4], 1, 40, file);
    fputc('\n', file);
    fputs(s_lines[4] + 40, file);
    fclose(file);
    result = s_verify(false, false);
    s_assert_broken(&result, 4, "record 4: not a record");
}
END_TEST

START_TEST(verify_leaves_out_an_incomplete_last_line)
{
    s_build();
    s_write_first(S_RECORDS);
    s_write_head(S_RECORDS, s_hashes[S_RECORDS], s_secret);
    FILE *file = fopen(s_log, "a");
    ck_assert_ptr_nonnull(file);
    fwrite(s_lines[1], 1, 60, file); // a write cut short: no "\n"
    fclose(file);
    vdp_audit_verify_t result = s_verify(true, true);
    ck_assert_msg(result.intact, "%s", result.reason);
    ck_assert(result.incomplete_tail);
    ck_assert_uint_eq(result.records, S_RECORDS);
    //  But a head naming that line's record is not satisfied by it.
    s_write_head(S_RECORDS + 1, s_hashes[1], s_secret);
    result = s_verify(true, true);
    s_assert_broken(&result, 11, "the head names record 11 but the log ends at record 10");
    ck_assert_int_eq(vdp_audit_verify(NULL, NULL, NULL, &result, NULL, 0), VD_EINVAL);
    ck_assert_int_eq(unlink(s_log), 0);
    char err[256];
    ck_assert_int_eq(vdp_audit_verify(s_log, NULL, NULL, &result, err, sizeof err), VD_EIO);
}
END_TEST

//  --------------------------------------------------------------------------------------------
//  query

typedef struct {
    uint64_t seen[S_RECORDS + 2];
    size_t count;
    size_t stop_after; // 0: never
} s_matches_t;

static int
s_collect(const char *line, size_t len, const vdp_audit_record_t *record, void *arg)
{
    s_matches_t *matches = arg;
    //  The line as it is in the log, without its "\n".
    ck_assert_uint_eq(len, strlen(s_lines[record->n]) - 1);
    ck_assert(memcmp(line, s_lines[record->n], len) == 0);
    matches->seen[matches->count++] = record->n;
    return matches->stop_after && matches->count >= matches->stop_after;
}

//  The record numbers a query with `filter` passes, as a string "1,4,7".
static const char *
s_query(const vdp_audit_filter_t *filter)
{
    static char text[128];
    s_matches_t matches = { .count = 0 };
    char err[256] = "";
    int rc = vdp_audit_query(s_log, filter, s_collect, &matches, err, sizeof err);
    ck_assert_msg(rc == VD_OK, "query: %s", err);
    text[0] = '\0';
    for (size_t i = 0; i < matches.count; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s%llu", i ? "," : "",
                 (unsigned long long)matches.seen[i]);
    return text;
}

START_TEST(query_filters_by_org_kind_and_time)
{
    s_build();
    s_write_first(S_RECORDS);
    //  Record n: org n % 3 (0 comune, 1 cosc, 2 anci), kind n % 4 (0 auth.ok, 1 pub.accept,
    //  2 sub.deny, 3 pub.reject), t = T0 + n s.
    const int64_t t0 = 1795341600000LL;
    ck_assert_str_eq(s_query(&(vdp_audit_filter_t){ 0 }), "1,2,3,4,5,6,7,8,9,10");
    ck_assert_str_eq(s_query(&(vdp_audit_filter_t){ .org = "comune:i726" }), "3,6,9");
    ck_assert_str_eq(s_query(&(vdp_audit_filter_t){ .org = "comune:i72" }), "");
    ck_assert_str_eq(s_query(&(vdp_audit_filter_t){ .kind = VDP_AUDIT_PUB_ACCEPT }), "1,5,9");
    ck_assert_str_eq(s_query(&(vdp_audit_filter_t){ .kind = VDP_AUDIT_KEY_REVOKE }), "");
    ck_assert_str_eq(s_query(&(vdp_audit_filter_t){ .since = t0 + 4000, .until = t0 + 7000 }),
                     "4,5,6,7"); // both ends included
    ck_assert_str_eq(s_query(&(vdp_audit_filter_t){ .since = t0 + 8000 }), "8,9,10");
    ck_assert_str_eq(s_query(&(vdp_audit_filter_t){ .until = t0 + 2999 }), "1,2");
    ck_assert_str_eq(s_query(&(vdp_audit_filter_t){
                         .org = "anci:toscana", .kind = VDP_AUDIT_SUB_DENY, .since = t0 + 1 }),
                     "2");
    ck_assert_str_eq(s_query(&(vdp_audit_filter_t){ .org = "cosc:toscana", .until = t0 + 7000 }),
                     "1,4,7");

    //  The callback stops it.
    s_matches_t matches = { .stop_after = 2 };
    ck_assert_int_eq(
        vdp_audit_query(s_log, &(vdp_audit_filter_t){ 0 }, s_collect, &matches, NULL, 0), VD_OK);
    ck_assert_uint_eq(matches.count, 2);
}
END_TEST

START_TEST(query_refuses_a_line_that_is_not_a_record)
{
    s_build();
    snprintf(s_lines[0], sizeof s_lines[0], "{\"n\":4}\n");
    int order[] = { 1, 2, 3, 0, 4 };
    s_write_log(order, 5);
    s_matches_t matches = { .count = 0 };
    char err[256] = "";
    ck_assert_int_eq(
        vdp_audit_query(s_log, &(vdp_audit_filter_t){ 0 }, s_collect, &matches, err, sizeof err),
        VD_EPROTO);
    ck_assert_msg(strncmp(err, "line 4: not a record", 20) == 0, "%s", err);
    ck_assert_uint_eq(matches.count, 3); // what came before was passed on

    //  An incomplete last line is a write in progress: left out, no error.
    s_write_first(3);
    FILE *file = fopen(s_log, "a");
    fwrite(s_lines[4], 1, 50, file);
    fclose(file);
    ck_assert_str_eq(s_query(&(vdp_audit_filter_t){ 0 }), "1,2,3");
    //  No log: an I/O error.
    ck_assert_int_eq(unlink(s_log), 0);
    ck_assert_int_eq(
        vdp_audit_query(s_log, &(vdp_audit_filter_t){ 0 }, s_collect, &matches, err, sizeof err),
        VD_EIO);
}
END_TEST

Suite *
vdp_audit_suite(void)
{
    Suite *suite = suite_create("vdp_audit");

    TCase *format = tcase_create("format");
    tcase_add_checked_fixture(format, s_setup, s_teardown);
    tcase_add_test(format, format_gives_the_pinned_test_vector);
    tcase_add_test(format, format_escapes_strings_as_jansson_does);
    tcase_add_test(format, format_replaces_bad_utf8_and_cuts_long_strings);
    tcase_add_test(format, format_refuses_what_is_not_a_record);
    tcase_add_test(format, kind_names_round_trip);
    suite_add_tcase(suite, format);

    TCase *parse = tcase_create("parse");
    tcase_add_checked_fixture(parse, s_setup, s_teardown);
    tcase_add_test(parse, parse_round_trips_a_formatted_record);
    tcase_add_loop_test(parse, parse_rejects_lines_that_are_not_records, 0,
                        (int)(sizeof s_bad_lines / sizeof s_bad_lines[0]));
    tcase_add_test(parse, parse_checks_the_chain);
    suite_add_tcase(suite, parse);

    TCase *head = tcase_create("head");
    tcase_add_checked_fixture(head, s_setup, s_teardown);
    tcase_add_test(head, head_signs_writes_and_reads_back);
    tcase_add_test(head, head_read_refuses_what_is_not_a_head);
    suite_add_tcase(suite, head);

    TCase *verify = tcase_create("verify");
    tcase_add_checked_fixture(verify, s_setup, s_teardown);
    tcase_add_test(verify, verify_finds_an_intact_log_intact);
    tcase_add_test(verify, verify_detects_an_edited_record);
    tcase_add_test(verify, verify_detects_an_edited_record_with_its_hash_recomputed);
    tcase_add_test(verify, verify_detects_a_deleted_record);
    tcase_add_test(verify, verify_detects_swapped_records);
    tcase_add_test(verify, verify_detects_a_cut_tail_through_the_head);
    tcase_add_test(verify, verify_detects_a_head_with_a_wrong_hash);
    tcase_add_test(verify, verify_detects_a_forged_or_unsigned_head);
    tcase_add_test(verify, verify_detects_a_line_that_is_not_a_record);
    tcase_add_test(verify, verify_leaves_out_an_incomplete_last_line);
    suite_add_tcase(suite, verify);

    TCase *query = tcase_create("query");
    tcase_add_checked_fixture(query, s_setup, s_teardown);
    tcase_add_test(query, query_filters_by_org_kind_and_time);
    tcase_add_test(query, query_refuses_a_line_that_is_not_a_record);
    suite_add_tcase(suite, query);

    return suite;
}

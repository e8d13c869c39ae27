/*  vdb_pending suite: staging and finding (sender, id) exactly; a second add refused; records
    that are copies, independent of the envelope they came from; resets, thousands in a row and
    after the table grew; entries bigger than a chunk and many entries across chunks; numbering
    in staging order.  */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "suites.h"
#include "vdb_pending.h"
#include "vdp_envelope.h"
#include "vedetta.h"

#define S_SENDER_A "comune:i726"
#define S_SENDER_B "cosc:toscana"
#define S_KEY      "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7" // a Z85 public key, 40 characters

static vdb_pending_t *s_pending;

//  Fails the test with `what` (at round or message `at`) unless `ok`. For loops: a passing
//  ck_assert costs a message to the runner, and these loops run hundreds of thousands of checks.
static void
s_expect(bool ok, unsigned at, const char *what)
{
    if (!ok)
        ck_abort_msg("at %u: %s", at, what);
}

static void
s_setup(void)
{
    s_pending = vdb_pending_new();
    ck_assert_ptr_nonnull(s_pending);
}

static void
s_teardown(void)
{
    vdb_pending_destroy(&s_pending);
    ck_assert_ptr_null(s_pending);
    vdb_pending_destroy(&s_pending); // a second destroy is harmless
}

//  An envelope encoded for real, with the buffers its fields point to.
typedef struct {
    vdp_envelope_t env;
    uint8_t *body;
    uint8_t *raw; // the encoding env.raw points at
} s_env_t;

//  The id of message n: a canonical UUID.
static void
s_id(char out[VDP_ID_LEN + 1], unsigned n)
{
    snprintf(out, VDP_ID_LEN + 1, "%08x-0000-4000-8000-%012x", n, n * 7919u);
}

//  Byte i of message n's body: a pattern that differs between neighbours.
static uint8_t
s_body_byte(unsigned n, size_t i)
{
    return (uint8_t)(n * 131u + i * 7u + (i >> 9));
}

/*  Builds message n of `sender`: a valid envelope with a body of `body_len` pattern bytes, sent
    to `to_count` recipients (directed: topic "inbox"), encoded into its raw bytes. seq and
    accepted_at are set as the broker would before staging.  */
static void
s_env(s_env_t *self, const char *sender, unsigned n, size_t body_len, size_t to_count)
{
    memset(self, 0, sizeof *self);
    vdp_envelope_t *env = &self->env;
    env->v = 1;
    s_id(env->id, n);
    snprintf(env->sender, sizeof env->sender, "%s", sender);
    env->sent = 1718000000000 + n;
    snprintf(env->topic, sizeof env->topic, "%s", to_count ? "inbox" : "alert.toscana.i726");
    env->kind = VDP_KIND_ALERT;
    env->status = VDP_STATUS_ACTUAL;
    env->tlp = (vdp_tlp_t)(VDP_TLP_CLEAR + n % 5);
    snprintf(env->category, sizeof env->category, "cat-%u", n % 3);
    env->severity = VDP_SEVERITY_MODERATE;
    snprintf(env->ctype, sizeof env->ctype, "text/plain");
    self->body = malloc(body_len ? body_len : 1);
    s_expect(self->body != NULL, n, "out of memory");
    for (size_t i = 0; i < body_len; i++)
        self->body[i] = s_body_byte(n, i);
    env->body = self->body;
    env->body_len = body_len;
    s_expect(to_count <= VDP_MAX_TO, n, "too many recipients");
    for (size_t i = 0; i < to_count; i++)
        snprintf(env->to[i], sizeof env->to[i], "comune:a%03zu", i + 1);
    env->to_count = to_count;
    env->expires = n % 2 ? 1718600000000 + n : 0;
    char reason[128] = "";
    if (vdp_envelope_validate(env, reason, sizeof reason) != VD_OK)
        ck_abort_msg("message %u: %s", n, reason);
    size_t raw_len = 0;
    s_expect(vdp_envelope_encode(env, &self->raw, &raw_len) == VD_OK, n, "cannot encode");
    env->raw = self->raw;
    env->raw_len = raw_len;
    env->seq = 1000 + n;
    env->accepted_at = 1718000005000 + n;
}

static void
s_env_free(s_env_t *self)
{
    free(self->body);
    free(self->raw);
    memset(self, 0, sizeof *self);
}

//  The rid key of the session that published message n.
static void
s_rid(char out[32], unsigned n)
{
    snprintf(out, 32, "00ab%08x", n);
}

//  Stages message n of `sender` (body_len bytes, no recipients) and returns add's result; adds
//  its raw length to *bytes if given and staged.
static int
s_add(const char *sender, unsigned n, size_t body_len, size_t *bytes)
{
    s_env_t msg;
    s_env(&msg, sender, n, body_len, 0);
    char rid[32];
    s_rid(rid, n);
    int rc = vdb_pending_add(s_pending, &msg.env, S_KEY, rid);
    if (rc == VD_OK && bytes)
        *bytes += msg.env.raw_len;
    s_env_free(&msg);
    return rc;
}

//  What is wrong with `msg` as message n of `sender` with a body of `body_len` bytes, as s_env
//  builds it (the fields, and raw bytes that decode to that very envelope); NULL if nothing.
static const char *
s_msg_wrong(const vdb_store_msg_t *msg, const char *sender, unsigned n, size_t body_len)
{
    static char why[256];
    static vdp_envelope_t env;
    if (!msg)
        return "not found";
    char id[VDP_ID_LEN + 1];
    s_id(id, n);
    if (strcmp(msg->sender, sender) != 0 || strcmp(msg->id, id) != 0) {
        snprintf(why, sizeof why, "is %s/%s", msg->sender, msg->id);
        return why;
    }
    if (strcmp(msg->topic, "alert.toscana.i726") != 0 || msg->tlp != VDP_TLP_CLEAR + n % 5 ||
        msg->accepted_at != 1718000005000 + n || msg->expires != (n % 2 ? 1718600000000 + n : 0) ||
        strcmp(msg->key, S_KEY) != 0 || msg->to != NULL)
        return "a field differs";
    char reason[128] = "";
    if (vdp_envelope_decode(&env, msg->raw, msg->raw_len, reason, sizeof reason) != VD_OK) {
        snprintf(why, sizeof why, "raw bytes do not decode: %s", reason);
        return why;
    }
    const char *wrong = NULL;
    if (strcmp(env.id, id) != 0 || strcmp(env.sender, sender) != 0 ||
        strcmp(env.category, msg->category) != 0)
        wrong = "raw bytes of another envelope";
    else if (env.body_len != body_len)
        wrong = "body length differs";
    for (size_t i = 0; !wrong && i < body_len; i++) {
        if (env.body[i] != s_body_byte(n, i))
            wrong = "body bytes differ";
    }
    vdp_envelope_reset(&env);
    return wrong;
}

//  Checks that message n of `sender` is staged at `index`, found by (sender, id).
static void
s_check_staged(size_t index, const char *sender, unsigned n, size_t body_len)
{
    if (index >= vdb_pending_count(s_pending))
        ck_abort_msg("entry %zu: only %zu staged", index, vdb_pending_count(s_pending));
    const vdb_store_msg_t *record = &vdb_pending_records(s_pending)[index];
    char id[VDP_ID_LEN + 1];
    s_id(id, n);
    char rid[32];
    s_rid(rid, n);
    const char *why = s_msg_wrong(record, sender, n, body_len);
    if (!why && vdb_pending_find(s_pending, sender, id) != record)
        why = "find gives another record";
    const char *rid_key = vdb_pending_rid_key(s_pending, index);
    if (!why && (!rid_key || strcmp(rid_key, rid) != 0))
        why = "rid key differs";
    if (why)
        ck_abort_msg("entry %zu, message %u of %s: %s", index, n, sender, why);
}

static const vdb_store_msg_t *
s_find(const char *sender, unsigned n)
{
    char id[VDP_ID_LEN + 1];
    s_id(id, n);
    return vdb_pending_find(s_pending, sender, id);
}

//  --------------------------------------------------------------------------------------------
//  staging

START_TEST(pending_starts_empty)
{
    ck_assert_uint_eq(vdb_pending_count(s_pending), 0);
    ck_assert_uint_eq(vdb_pending_bytes(s_pending), 0);
    ck_assert_ptr_null(s_find(S_SENDER_A, 1));
    ck_assert_ptr_null(vdb_pending_rid_key(s_pending, 0));
    vdb_pending_number(s_pending, 1); // nothing to number
    vdb_pending_reset(s_pending);
    ck_assert_uint_eq(vdb_pending_count(s_pending), 0);
    ck_assert_ptr_null(s_find(S_SENDER_A, 1));
}
END_TEST

START_TEST(pending_add_find_count_bytes)
{
    size_t bytes = 0;
    ck_assert_int_eq(s_add(S_SENDER_A, 1, 10, &bytes), VD_OK);
    ck_assert_uint_eq(vdb_pending_count(s_pending), 1);
    ck_assert_uint_eq(vdb_pending_bytes(s_pending), bytes);
    ck_assert_int_eq(s_add(S_SENDER_B, 2, 300, &bytes), VD_OK);
    ck_assert_int_eq(s_add(S_SENDER_A, 3, 0, &bytes), VD_OK);
    ck_assert_uint_eq(vdb_pending_count(s_pending), 3);
    ck_assert_uint_eq(vdb_pending_bytes(s_pending), bytes);
    ck_assert_uint_gt(bytes, 310);

    //  Records in staging order, each found by its (sender, id), with its session's rid key.
    s_check_staged(0, S_SENDER_A, 1, 10);
    s_check_staged(1, S_SENDER_B, 2, 300);
    s_check_staged(2, S_SENDER_A, 3, 0);
    ck_assert_ptr_null(vdb_pending_rid_key(s_pending, 3));
    const vdb_store_msg_t *records = vdb_pending_records(s_pending);
    ck_assert_uint_eq(records[0].seq, 1001); // as the envelope had it
    ck_assert_uint_eq(records[1].seq, 1002);
    ck_assert_str_eq(records[1].category, "cat-2");
    ck_assert_int_eq(records[1].tlp, VDP_TLP_AMBER);
    ck_assert_uint_eq(records[0].raw_len + records[1].raw_len + records[2].raw_len, bytes);
}
END_TEST

//  Only a received envelope is staged: one built locally has no bytes to store.
START_TEST(pending_refuses_an_envelope_without_bytes)
{
    s_env_t msg;
    s_env(&msg, S_SENDER_A, 9, 1, 0);
    msg.env.raw = NULL;
    msg.env.raw_len = 0;
    ck_assert_int_eq(vdb_pending_add(s_pending, &msg.env, S_KEY, "01"), VD_EINVAL);
    ck_assert_uint_eq(vdb_pending_count(s_pending), 0);
    ck_assert_ptr_null(vdb_pending_find(s_pending, S_SENDER_A, msg.env.id));
    s_env_free(&msg);
}
END_TEST

START_TEST(pending_refuses_a_second_add)
{
    size_t bytes = 0;
    ck_assert_int_eq(s_add(S_SENDER_A, 1, 40, &bytes), VD_OK);

    //  The same (sender, id), everything else different: refused, and nothing changes.
    s_env_t again;
    s_env(&again, S_SENDER_A, 1, 900, 2);
    snprintf(again.env.category, sizeof again.env.category, "other");
    again.env.seq = 77;
    ck_assert_int_eq(vdb_pending_add(s_pending, &again.env, "another-key", "ffff"), VD_EINVAL);
    ck_assert_uint_eq(vdb_pending_count(s_pending), 1);
    ck_assert_uint_eq(vdb_pending_bytes(s_pending), bytes);
    s_check_staged(0, S_SENDER_A, 1, 40);
    ck_assert_uint_eq(vdb_pending_records(s_pending)[0].seq, 1001);
    ck_assert_ptr_null(vdb_pending_rid_key(s_pending, 1));

    //  With more staged (and another sender using the same id), still refused, still exact.
    ck_assert_int_eq(s_add(S_SENDER_B, 1, 20, &bytes), VD_OK);
    for (unsigned n = 2; n <= 40; n++)
        ck_assert_int_eq(s_add(S_SENDER_A, n, 20, &bytes), VD_OK);
    ck_assert_int_eq(vdb_pending_add(s_pending, &again.env, "another-key", "ffff"), VD_EINVAL);
    ck_assert_int_eq(s_add(S_SENDER_B, 1, 20, NULL), VD_EINVAL);
    ck_assert_int_eq(s_add(S_SENDER_A, 40, 20, NULL), VD_EINVAL);
    ck_assert_uint_eq(vdb_pending_count(s_pending), 41);
    ck_assert_uint_eq(vdb_pending_bytes(s_pending), bytes);
    s_check_staged(0, S_SENDER_A, 1, 40);
    s_check_staged(1, S_SENDER_B, 1, 20);
    for (unsigned n = 2; n <= 40; n++)
        s_check_staged(n, S_SENDER_A, n, 20);
    ck_assert_ptr_null(vdb_pending_rid_key(s_pending, 41));
    s_env_free(&again);
}
END_TEST

START_TEST(pending_find_is_exact)
{
    ck_assert_int_eq(s_add(S_SENDER_A, 1, 10, NULL), VD_OK);
    ck_assert_int_eq(s_add(S_SENDER_B, 2, 10, NULL), VD_OK);
    ck_assert_int_eq(s_add(S_SENDER_A, 3, 10, NULL), VD_OK);
    ck_assert_ptr_nonnull(s_find(S_SENDER_A, 1));
    ck_assert_ptr_null(s_find(S_SENDER_B, 1)); // same id, other sender
    ck_assert_ptr_null(s_find(S_SENDER_A, 2)); // same sender, other id
    ck_assert_ptr_null(s_find(S_SENDER_A, 4));
    ck_assert_ptr_null(s_find("comune:i72", 1)); // a prefix of the sender
    ck_assert_ptr_null(s_find("comune:i7266", 1));
    char id[VDP_ID_LEN + 2];
    s_id(id, 1);
    id[VDP_ID_LEN - 1] = '\0'; // a prefix of the id
    ck_assert_ptr_null(vdb_pending_find(s_pending, S_SENDER_A, id));
    ck_assert_ptr_null(vdb_pending_find(s_pending, S_SENDER_A, ""));
    ck_assert_ptr_null(vdb_pending_find(s_pending, "", ""));
    //  Where the sender ends and the id begins: ("comune:i72", "6" + id) is another pair.
    char shifted[VDP_ID_LEN + 3];
    s_id(id, 1);
    snprintf(shifted, sizeof shifted, "6%s", id);
    ck_assert_ptr_null(vdb_pending_find(s_pending, "comune:i72", shifted));

    //  The same id under both senders: two entries, each found as itself.
    ck_assert_int_eq(s_add(S_SENDER_B, 1, 10, NULL), VD_OK);
    const vdb_store_msg_t *a = s_find(S_SENDER_A, 1);
    const vdb_store_msg_t *b = s_find(S_SENDER_B, 1);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_ne(a, b);
    ck_assert_str_eq(a->sender, S_SENDER_A);
    ck_assert_str_eq(b->sender, S_SENDER_B);
    ck_assert_ptr_eq(b, &vdb_pending_records(s_pending)[3]);
}
END_TEST

//  Fills `buf` with garbage and frees it.
static void
s_scribble_free(void *buf, size_t size)
{
    memset(buf, 0x5a, size);
    free(buf);
}

START_TEST(pending_records_are_copies)
{
    s_env_t msgs[3];
    size_t tos[3] = { 2, 0, 1 };
    uint8_t *expected[3];
    size_t expected_len[3];
    char key[64] = "", rid[64] = "";
    for (unsigned i = 0; i < 3; i++) {
        s_env(&msgs[i], S_SENDER_B, i + 1, 100 * i + 5, tos[i]);
        expected_len[i] = msgs[i].env.raw_len;
        expected[i] = malloc(expected_len[i]);
        ck_assert_ptr_nonnull(expected[i]);
        memcpy(expected[i], msgs[i].raw, expected_len[i]);
        snprintf(key, sizeof key, "%s", S_KEY);
        snprintf(rid, sizeof rid, "rid-%u", i);
        ck_assert_int_eq(vdb_pending_add(s_pending, &msgs[i].env, key, rid), VD_OK);
        memset(key, 'k', sizeof key - 1);
        memset(rid, 'r', sizeof rid - 1);
    }
    //  The envelopes and their buffers go away, overwritten first.
    for (unsigned i = 0; i < 3; i++) {
        s_scribble_free(msgs[i].raw, msgs[i].env.raw_len);
        s_scribble_free(msgs[i].body, msgs[i].env.body_len ? msgs[i].env.body_len : 1);
        memset(&msgs[i], 0xa5, sizeof msgs[i]);
    }

    const vdb_store_msg_t *records = vdb_pending_records(s_pending);
    for (unsigned i = 0; i < 3; i++) {
        const vdb_store_msg_t *record = &records[i];
        char id[VDP_ID_LEN + 1];
        s_id(id, i + 1);
        ck_assert_ptr_eq(vdb_pending_find(s_pending, S_SENDER_B, id), record);
        ck_assert_str_eq(record->sender, S_SENDER_B);
        ck_assert_str_eq(record->id, id);
        ck_assert_str_eq(record->topic, tos[i] ? "inbox" : "alert.toscana.i726");
        char category[16];
        snprintf(category, sizeof category, "cat-%u", (i + 1) % 3);
        ck_assert_str_eq(record->category, category);
        ck_assert_int_eq(record->tlp, VDP_TLP_CLEAR + (i + 1) % 5);
        ck_assert_int_eq(record->expires, (i + 1) % 2 ? 1718600000000 + i + 1 : 0);
        ck_assert_uint_eq(record->seq, 1000 + i + 1);
        ck_assert_int_eq(record->accepted_at, 1718000005000 + i + 1);
        ck_assert_str_eq(record->key, S_KEY);
        char want_rid[16];
        snprintf(want_rid, sizeof want_rid, "rid-%u", i);
        ck_assert_str_eq(vdb_pending_rid_key(s_pending, i), want_rid);
        ck_assert_uint_eq(record->raw_len, expected_len[i]);
        ck_assert_int_eq(memcmp(record->raw, expected[i], expected_len[i]), 0);
        free(expected[i]);
    }
    ck_assert_str_eq(records[0].to, "comune:a001,comune:a002");
    ck_assert_ptr_null(records[1].to); // not directed
    ck_assert_str_eq(records[2].to, "comune:a001");
}
END_TEST

START_TEST(pending_joins_every_recipient)
{
    s_env_t msg;
    s_env(&msg, S_SENDER_A, 9, 1, VDP_MAX_TO);
    ck_assert_int_eq(vdb_pending_add(s_pending, &msg.env, S_KEY, "01"), VD_OK);
    s_env_free(&msg);
    char want[VDP_MAX_TO * (VDP_MAX_ORG + 1)] = "";
    for (size_t i = 0; i < VDP_MAX_TO; i++) {
        char org[32];
        snprintf(org, sizeof org, "%scomune:a%03zu", i ? "," : "", i + 1);
        strcat(want, org);
    }
    const vdb_store_msg_t *record = s_find(S_SENDER_A, 9);
    ck_assert_ptr_nonnull(record);
    ck_assert_str_eq(record->to, want);
}
END_TEST

//  --------------------------------------------------------------------------------------------
//  resets

START_TEST(pending_reset_forgets_everything)
{
    size_t bytes = 0;
    for (unsigned n = 1; n <= 3; n++)
        ck_assert_int_eq(s_add(S_SENDER_A, n, 50, &bytes), VD_OK);
    vdb_pending_reset(s_pending);
    ck_assert_uint_eq(vdb_pending_count(s_pending), 0);
    ck_assert_uint_eq(vdb_pending_bytes(s_pending), 0);
    ck_assert_ptr_null(vdb_pending_rid_key(s_pending, 0));
    for (unsigned n = 1; n <= 3; n++)
        ck_assert_ptr_null(s_find(S_SENDER_A, n));

    //  The same ids again, in another order, with other sizes.
    bytes = 0;
    ck_assert_int_eq(s_add(S_SENDER_A, 3, 70, &bytes), VD_OK);
    ck_assert_int_eq(s_add(S_SENDER_A, 1, 80, &bytes), VD_OK);
    ck_assert_uint_eq(vdb_pending_count(s_pending), 2);
    ck_assert_uint_eq(vdb_pending_bytes(s_pending), bytes);
    s_check_staged(0, S_SENDER_A, 3, 70);
    s_check_staged(1, S_SENDER_A, 1, 80);
    ck_assert_ptr_null(s_find(S_SENDER_A, 2));
    ck_assert_int_eq(s_add(S_SENDER_A, 1, 80, NULL), VD_EINVAL);
}
END_TEST

//  Round after round, the same two ids plus one that changes: each round finds exactly its own.
START_TEST(pending_many_resets_in_a_row)
{
    enum { ROUNDS = 6000, OTHERS = 7 };
    for (unsigned round = 0; round < ROUNDS; round++) {
        unsigned other = 100 + round % OTHERS;
        unsigned last = 100 + (round + OTHERS - 1) % OTHERS; // the previous round's
        s_expect(s_find(S_SENDER_A, last) == NULL, round, "last round's id found");
        s_expect(s_find(S_SENDER_A, 1) == NULL, round, "found before staged");
        s_expect(s_add(S_SENDER_A, 1, 4, NULL) == VD_OK, round, "add 1");
        s_expect(s_add(S_SENDER_A, other, 4, NULL) == VD_OK, round, "add other");
        s_expect(s_add(S_SENDER_B, 1, 4, NULL) == VD_OK, round, "add B 1");
        s_expect(s_add(S_SENDER_A, 1, 4, NULL) == VD_EINVAL, round, "second add taken");
        s_expect(vdb_pending_count(s_pending) == 3, round, "count");
        const vdb_store_msg_t *records = vdb_pending_records(s_pending);
        s_expect(s_find(S_SENDER_A, 1) == &records[0], round, "find 1");
        s_expect(s_find(S_SENDER_A, other) == &records[1], round, "find other");
        s_expect(s_find(S_SENDER_B, 1) == &records[2], round, "find B 1");
        s_expect(s_find(S_SENDER_A, last) == NULL, round, "last round's id found after adds");
        vdb_pending_reset(s_pending);
    }
    ck_assert_uint_eq(vdb_pending_count(s_pending), 0);
    ck_assert_ptr_null(s_find(S_SENDER_B, 1));
    ck_assert_int_eq(s_add(S_SENDER_B, 1, 4, NULL), VD_OK);
    s_check_staged(0, S_SENDER_B, 1, 4);
}
END_TEST

//  Adds messages first..last of `sender` (bodies of n % 50 bytes) and checks they are staged
//  from `index` on.
static void
s_add_range(const char *sender, unsigned first, unsigned last, size_t index)
{
    for (unsigned n = first; n <= last; n++)
        s_expect(s_add(sender, n, n % 50, NULL) == VD_OK, n, "add");
    for (unsigned n = first; n <= last; n++)
        s_check_staged(index + (n - first), sender, n, n % 50);
}

START_TEST(pending_grown_table_keeps_finding)
{
    //  Enough to grow the table several times in one round.
    s_add_range(S_SENDER_A, 1, 2000, 0);
    ck_assert_uint_eq(vdb_pending_count(s_pending), 2000);
    ck_assert_int_eq(s_add(S_SENDER_A, 1234, 10, NULL), VD_EINVAL);
    ck_assert_ptr_null(s_find(S_SENDER_B, 1234));
    vdb_pending_reset(s_pending);

    //  A smaller round in the grown table: the last round's ids are gone.
    s_add_range(S_SENDER_B, 5000, 5499, 0);
    for (unsigned n = 1; n <= 2000; n++)
        s_expect(s_find(S_SENDER_A, n) == NULL, n, "the last round's id found");
    vdb_pending_reset(s_pending);

    //  Thousands of short rounds in the grown table.
    for (unsigned round = 0; round < 3000; round++) {
        s_expect(s_find(S_SENDER_B, 5000 + round % 500) == NULL, round, "an old round's id");
        s_expect(s_find(S_SENDER_A, round ? round : 1) == NULL, round, "the last round's id");
        s_expect(s_add(S_SENDER_A, round + 1, 1, NULL) == VD_OK, round, "add");
        s_expect(s_find(S_SENDER_A, round + 1) == &vdb_pending_records(s_pending)[0], round,
                 "find");
        vdb_pending_reset(s_pending);
    }

    //  And a round that grows it again, over ids of earlier rounds and new ones.
    s_add_range(S_SENDER_A, 1001, 5000, 0);
    s_add_range(S_SENDER_B, 1, 1000, 4000);
    ck_assert_uint_eq(vdb_pending_count(s_pending), 5000);
    for (unsigned n = 1; n <= 1000; n++)
        s_expect(s_find(S_SENDER_A, n) == NULL, n, "not staged this round, found");
    for (unsigned n = 5000; n <= 5499; n++)
        s_expect(s_find(S_SENDER_B, n) == NULL, n, "not staged this round, found");
}
END_TEST

//  --------------------------------------------------------------------------------------------
//  chunks

START_TEST(pending_entries_bigger_than_a_chunk)
{
    //  A body of the largest size the protocol allows makes an envelope over the chunk size.
    size_t big = VDP_MAX_BODY;
    for (unsigned round = 0; round < 3; round++) {
        //  small, big, small, big, big, small; ids shift every round, sizes too
        size_t sizes[] = { 10, big, 2000, big - round, big, 1 + round };
        unsigned first = 10 * round + 1;
        size_t bytes = 0;
        for (unsigned i = 0; i < 6; i++)
            ck_assert_int_eq(s_add(S_SENDER_A, first + i, sizes[i], &bytes), VD_OK);
        ck_assert_uint_eq(vdb_pending_count(s_pending), 6);
        ck_assert_uint_eq(vdb_pending_bytes(s_pending), bytes);
        ck_assert_uint_gt(vdb_pending_records(s_pending)[1].raw_len, 1u << 20);
        for (unsigned i = 0; i < 6; i++)
            s_check_staged(i, S_SENDER_A, first + i, sizes[i]);
        vdb_pending_reset(s_pending);
    }

    //  Raw bytes many times the chunk size (what they are does not matter here).
    size_t huge = 5u << 20;
    uint8_t *raw = malloc(huge);
    ck_assert_ptr_nonnull(raw);
    for (size_t i = 0; i < huge; i++)
        raw[i] = s_body_byte(77, i);
    s_env_t msg;
    s_env(&msg, S_SENDER_B, 77, 3, 0);
    msg.env.raw = raw;
    msg.env.raw_len = huge;
    ck_assert_int_eq(s_add(S_SENDER_B, 1, 100, NULL), VD_OK);
    ck_assert_int_eq(vdb_pending_add(s_pending, &msg.env, S_KEY, "77"), VD_OK);
    ck_assert_int_eq(s_add(S_SENDER_B, 2, 100, NULL), VD_OK);
    s_env_free(&msg);
    s_scribble_free(raw, huge);
    const vdb_store_msg_t *record = s_find(S_SENDER_B, 77);
    ck_assert_ptr_eq(record, &vdb_pending_records(s_pending)[1]);
    ck_assert_uint_eq(record->raw_len, huge);
    size_t bad = 0;
    for (size_t i = 0; i < huge; i++)
        bad += record->raw[i] != s_body_byte(77, i);
    ck_assert_uint_eq(bad, 0);
    s_check_staged(0, S_SENDER_B, 1, 100);
    s_check_staged(2, S_SENDER_B, 2, 100);
}
END_TEST

//  Several megabytes of entries of varied sizes per round, so entries end near and across every
//  chunk's end; more chunks than a reset keeps, round after round.
START_TEST(pending_many_entries_across_chunks)
{
    enum { PER_ROUND = 2500 };
    for (unsigned round = 0; round < 4; round++) {
        unsigned first = 1 + (round % 2) * 100000; // rounds 0 and 2 reuse the same ids
        size_t bytes = 0;
        for (unsigned i = 0; i < PER_ROUND; i++) {
            unsigned n = first + i;
            s_expect(s_add(i % 3 ? S_SENDER_A : S_SENDER_B, n, (n * 37u + round) % 4000, &bytes) ==
                         VD_OK,
                     round, "add");
        }
        ck_assert_uint_eq(vdb_pending_count(s_pending), PER_ROUND);
        ck_assert_uint_eq(vdb_pending_bytes(s_pending), bytes);
        ck_assert_uint_gt(bytes, 4u << 20);
        for (unsigned i = 0; i < PER_ROUND; i++) {
            unsigned n = first + i;
            s_check_staged(i, i % 3 ? S_SENDER_A : S_SENDER_B, n, (n * 37u + round) % 4000);
        }
        vdb_pending_reset(s_pending);
    }
}
END_TEST

/*  Where the first chunk ends: round r stages a first entry 16 * r bytes longer than round 0's,
    then entries of one size past the chunk's end, so that over the rounds the last entry that
    fits leaves every multiple of 16 bytes free, none included (an exact fit). Raw bytes are a
    pattern here, checked at both ends of every entry.  */
START_TEST(pending_entries_fill_chunks_exactly)
{
    enum { ROUNDS = 160, RAW = 1000, PER_ROUND = 1400, EDGE = 16 };
    uint8_t *raw = malloc(RAW + 16 * ROUNDS);
    ck_assert_ptr_nonnull(raw);
    s_env_t msg;
    s_env(&msg, S_SENDER_A, 1, 1, 0);
    for (unsigned round = 0; round < ROUNDS; round++) {
        size_t bytes = 0;
        for (unsigned i = 0; i < PER_ROUND; i++) {
            unsigned n = round * PER_ROUND + i;
            size_t raw_len = i == 0 ? 16 * round + 1 : RAW;
            for (size_t k = 0; k < raw_len; k++)
                raw[k] = s_body_byte(n, k);
            s_id(msg.env.id, n);
            msg.env.raw = raw;
            msg.env.raw_len = raw_len;
            s_expect(vdb_pending_add(s_pending, &msg.env, S_KEY, "00") == VD_OK, round, "add");
            bytes += raw_len;
        }
        ck_assert_uint_eq(vdb_pending_bytes(s_pending), bytes);
        ck_assert_uint_gt(bytes, 1u << 20);
        const vdb_store_msg_t *records = vdb_pending_records(s_pending);
        for (unsigned i = 0; i < PER_ROUND; i++) {
            unsigned n = round * PER_ROUND + i;
            const vdb_store_msg_t *record = &records[i];
            char id[VDP_ID_LEN + 1];
            s_id(id, n);
            s_expect(strcmp(record->id, id) == 0 && strcmp(record->sender, S_SENDER_A) == 0 &&
                         strcmp(record->key, S_KEY) == 0 &&
                         strcmp(vdb_pending_rid_key(s_pending, i), "00") == 0,
                     round, "an entry's strings differ");
            s_expect(record->raw_len == (i == 0 ? 16 * round + 1 : RAW), round, "raw length");
            for (size_t k = 0; k < record->raw_len; k++) {
                if (k == EDGE && record->raw_len > 2 * EDGE)
                    k = record->raw_len - EDGE;
                if (record->raw[k] != s_body_byte(n, k))
                    ck_abort_msg("round %u entry %u byte %zu differs", round, i, k);
            }
        }
        ck_assert_ptr_eq(vdb_pending_find(s_pending, S_SENDER_A, records[PER_ROUND - 1].id),
                         &records[PER_ROUND - 1]);
        vdb_pending_reset(s_pending);
    }
    s_env_free(&msg);
    free(raw);
}
END_TEST

//  --------------------------------------------------------------------------------------------
//  numbering

START_TEST(pending_number_in_staging_order)
{
    unsigned order[] = { 5, 3, 9, 1, 7 };
    for (unsigned i = 0; i < 5; i++)
        ck_assert_int_eq(s_add(S_SENDER_A, order[i], 8, NULL), VD_OK);
    vdb_pending_number(s_pending, 41);
    const vdb_store_msg_t *records = vdb_pending_records(s_pending);
    for (unsigned i = 0; i < 5; i++) {
        ck_assert_uint_eq(records[i].seq, 41 + i);
        ck_assert_uint_eq(s_find(S_SENDER_A, order[i])->seq, 41 + i);
        s_check_staged(i, S_SENDER_A, order[i], 8);
    }

    //  Numbered again from elsewhere; then one more staged and all numbered again.
    vdb_pending_number(s_pending, 1000000);
    ck_assert_uint_eq(s_find(S_SENDER_A, 9)->seq, 1000002);
    ck_assert_int_eq(s_add(S_SENDER_B, 2, 8, NULL), VD_OK);
    records = vdb_pending_records(s_pending);
    ck_assert_uint_eq(records[5].seq, 1002); // as the envelope had it, until numbered
    vdb_pending_number(s_pending, 6);
    records = vdb_pending_records(s_pending);
    for (unsigned i = 0; i < 6; i++)
        ck_assert_uint_eq(records[i].seq, 6 + i);
    ck_assert_uint_eq(s_find(S_SENDER_B, 2)->seq, 11);

    vdb_pending_reset(s_pending);
    ck_assert_int_eq(s_add(S_SENDER_B, 9, 8, NULL), VD_OK);
    ck_assert_int_eq(s_add(S_SENDER_A, 9, 8, NULL), VD_OK);
    vdb_pending_number(s_pending, UINT64_C(1) << 40);
    ck_assert_uint_eq(s_find(S_SENDER_B, 9)->seq, UINT64_C(1) << 40);
    ck_assert_uint_eq(s_find(S_SENDER_A, 9)->seq, (UINT64_C(1) << 40) + 1);
}
END_TEST

Suite *
vdb_pending_suite(void)
{
    Suite *suite = suite_create("vdb_pending");

    TCase *staging = tcase_create("staging");
    tcase_add_checked_fixture(staging, s_setup, s_teardown);
    tcase_add_test(staging, pending_starts_empty);
    tcase_add_test(staging, pending_add_find_count_bytes);
    tcase_add_test(staging, pending_refuses_a_second_add);
    tcase_add_test(staging, pending_refuses_an_envelope_without_bytes);
    tcase_add_test(staging, pending_find_is_exact);
    tcase_add_test(staging, pending_records_are_copies);
    tcase_add_test(staging, pending_joins_every_recipient);
    tcase_add_test(staging, pending_number_in_staging_order);
    suite_add_tcase(suite, staging);

    TCase *resets = tcase_create("resets");
    tcase_add_checked_fixture(resets, s_setup, s_teardown);
    tcase_set_timeout(resets, 60);
    tcase_add_test(resets, pending_reset_forgets_everything);
    tcase_add_test(resets, pending_many_resets_in_a_row);
    tcase_add_test(resets, pending_grown_table_keeps_finding);
    suite_add_tcase(suite, resets);

    TCase *chunks = tcase_create("chunks");
    tcase_add_checked_fixture(chunks, s_setup, s_teardown);
    tcase_set_timeout(chunks, 60);
    tcase_add_test(chunks, pending_entries_bigger_than_a_chunk);
    tcase_add_test(chunks, pending_many_entries_across_chunks);
    tcase_add_test(chunks, pending_entries_fill_chunks_exactly);
    suite_add_tcase(suite, chunks);

    return suite;
}

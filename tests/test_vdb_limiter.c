/*  vdb_limiter suite: token buckets under a clock the test moves by hand. A burst passes and the
    next message waits for exactly the refill it needs; a refused message takes nothing; the org's
    buckets are shared by its keys and only by them; bytes count as well as messages; a message
    larger than a burst is told it never fits; a lowered limit applies at once.  */
#include <check.h>

#include "suites.h"
#include "vdb_limiter.h"
#include "vedetta.h"

#define S_MS 1000 // microseconds

static const vdb_limits_t s_wide = { { 1000000, 1000000 }, { 1u << 30, 1u << 30 } };

static vdb_limiter_t *
s_new(void)
{
    vdb_limiter_t *limiter = vdb_limiter_new();
    ck_assert_ptr_nonnull(limiter);
    return limiter;
}

START_TEST(a_burst_passes_then_the_refill_is_waited_for)
{
    vdb_limiter_t *limiter = s_new();
    vdb_limits_t key = { { 10, 5 }, { 1u << 30, 1u << 30 } }; // 10 a second, 5 at once
    int64_t now = 1000 * S_MS;
    for (int i = 0; i < 5; i++)
        ck_assert(vdb_limiter_take(limiter, "k1", &key, "comune:i726", &s_wide, 100, now, NULL));
    vdb_limiter_refusal_t refusal = { 0 };
    ck_assert(!vdb_limiter_take(limiter, "k1", &key, "comune:i726", &s_wide, 100, now, &refusal));
    ck_assert(!refusal.org);
    ck_assert(!refusal.bytes);
    ck_assert_uint_eq(refusal.retry_after_ms, 100); // one message at 10 a second
    //  Just before the hint it still does not fit; at the hint it does, once.
    ck_assert(!vdb_limiter_take(limiter, "k1", &key, "comune:i726", &s_wide, 100, now + 99 * S_MS,
                                &refusal));
    ck_assert_uint_eq(refusal.retry_after_ms, 1);
    ck_assert(
        vdb_limiter_take(limiter, "k1", &key, "comune:i726", &s_wide, 100, now + 100 * S_MS, NULL));
    ck_assert(!vdb_limiter_take(limiter, "k1", &key, "comune:i726", &s_wide, 100, now + 100 * S_MS,
                                NULL));
    //  A long quiet spell refills to the burst, not beyond.
    now += 3600LL * 1000 * S_MS;
    for (int i = 0; i < 5; i++)
        ck_assert(vdb_limiter_take(limiter, "k1", &key, "comune:i726", &s_wide, 100, now, NULL));
    ck_assert(!vdb_limiter_take(limiter, "k1", &key, "comune:i726", &s_wide, 100, now, NULL));
    ck_assert_uint_eq(vdb_limiter_size(limiter), 4);
    vdb_limiter_destroy(&limiter);
    ck_assert_ptr_null(limiter);
    vdb_limiter_destroy(NULL);
}
END_TEST

START_TEST(the_org_is_shared_by_its_keys_and_a_refusal_takes_nothing)
{
    vdb_limiter_t *limiter = s_new();
    vdb_limits_t org = { { 1, 3 }, { 1u << 30, 1u << 30 } };
    int64_t now = 5 * S_MS;
    ck_assert(vdb_limiter_take(limiter, "siem", &s_wide, "comune:i726", &org, 10, now, NULL));
    ck_assert(vdb_limiter_take(limiter, "console", &s_wide, "comune:i726", &org, 10, now, NULL));
    ck_assert(vdb_limiter_take(limiter, "siem", &s_wide, "comune:i726", &org, 10, now, NULL));
    vdb_limiter_refusal_t refusal = { 0 };
    //  Either key of the org is refused now, on the org's account.
    ck_assert(
        !vdb_limiter_take(limiter, "console", &s_wide, "comune:i726", &org, 10, now, &refusal));
    ck_assert(refusal.org);
    ck_assert_uint_eq(refusal.retry_after_ms, 1000);
    //  Another org is not touched by it.
    ck_assert(vdb_limiter_take(limiter, "other", &s_wide, "comune:b429", &org, 10, now, NULL));
    //  Refusals took nothing: a second later exactly one more fits, however many were refused.
    for (int i = 0; i < 10; i++)
        ck_assert(!vdb_limiter_take(limiter, "siem", &s_wide, "comune:i726", &org, 10, now, NULL));
    now += 1000 * S_MS;
    ck_assert(vdb_limiter_take(limiter, "siem", &s_wide, "comune:i726", &org, 10, now, NULL));
    ck_assert(!vdb_limiter_take(limiter, "siem", &s_wide, "comune:i726", &org, 10, now, NULL));
    vdb_limiter_destroy(&limiter);
}
END_TEST

START_TEST(bytes_count_as_well_as_messages)
{
    vdb_limiter_t *limiter = s_new();
    vdb_limits_t key = { { 1000, 1000 }, { 1000, 2000 } }; // 1000 bytes a second, 2000 at once
    int64_t now = 0;
    ck_assert(vdb_limiter_take(limiter, "k", &key, "cosc:toscana", &s_wide, 1500, now, NULL));
    vdb_limiter_refusal_t refusal = { 0 };
    ck_assert(!vdb_limiter_take(limiter, "k", &key, "cosc:toscana", &s_wide, 1500, now, &refusal));
    ck_assert(refusal.bytes);
    ck_assert(!refusal.org);
    ck_assert_uint_eq(refusal.retry_after_ms, 1000); // 500 held, 1500 needed
    ck_assert(vdb_limiter_take(limiter, "k", &key, "cosc:toscana", &s_wide, 500, now, NULL));

    //  Larger than the burst: it never fits, and says so with no hint.
    ck_assert(!vdb_limiter_take(limiter, "k", &key, "cosc:toscana", &s_wide, 2001,
                                now + 3600LL * 1000 * S_MS, &refusal));
    ck_assert(refusal.bytes);
    ck_assert_uint_eq(refusal.retry_after_ms, 0);
    vdb_limiter_destroy(&limiter);
}
END_TEST

START_TEST(changed_limits_apply_to_the_next_message)
{
    vdb_limiter_t *limiter = s_new();
    vdb_limits_t wide = { { 100, 100 }, { 1u << 30, 1u << 30 } };
    vdb_limits_t narrow = { { 1, 2 }, { 1u << 30, 1u << 30 } };
    int64_t now = 0;
    ck_assert(vdb_limiter_take(limiter, "k", &wide, "anci:toscana", &s_wide, 1, now, NULL));
    //  A reload lowers the limit: the bucket holds at most the new burst at once.
    ck_assert(vdb_limiter_take(limiter, "k", &narrow, "anci:toscana", &s_wide, 1, now, NULL));
    ck_assert(vdb_limiter_take(limiter, "k", &narrow, "anci:toscana", &s_wide, 1, now, NULL));
    vdb_limiter_refusal_t refusal = { 0 };
    ck_assert(!vdb_limiter_take(limiter, "k", &narrow, "anci:toscana", &s_wide, 1, now, &refusal));
    ck_assert_uint_eq(refusal.retry_after_ms, 1000);
    //  ...and raised again, the next message goes.
    ck_assert(
        vdb_limiter_take(limiter, "k", &wide, "anci:toscana", &s_wide, 1, now + 20 * S_MS, NULL));
    vdb_limiter_destroy(&limiter);
}
END_TEST

Suite *
vdb_limiter_suite(void)
{
    Suite *suite = suite_create("vdb_limiter");
    TCase *tc = tcase_create("buckets");
    tcase_add_test(tc, a_burst_passes_then_the_refill_is_waited_for);
    tcase_add_test(tc, the_org_is_shared_by_its_keys_and_a_refusal_takes_nothing);
    tcase_add_test(tc, bytes_count_as_well_as_messages);
    tcase_add_test(tc, changed_limits_apply_to_the_next_message);
    suite_add_tcase(suite, tc);
    return suite;
}

/*  vdb_subs suite: wildcard semantics, segment-wise matching (never byte prefixes), add/remove
    bookkeeping, and the index against a brute-force model built on vdp_pattern_match over many
    random patterns and topics (fixed seed, so a failure replays).  */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "suites.h"
#include "vdb_subs.h"
#include "vdp_limits.h"
#include "vdp_topic.h"
#include "vedetta.h"

enum { S_SUBSCRIBERS = 8, S_MAX_HITS = 8192 };

static vdb_subs_t *s_subs;
static int s_subscriber[S_SUBSCRIBERS]; // their addresses are the subscribers

//  What the callback saw.
typedef struct {
    void *subscriber;
    char pattern[VDP_MAX_TOPIC + 1];
} s_hit_t;

typedef struct {
    s_hit_t *hits;
    size_t count;
} s_hits_t;

static void
s_collect(void *subscriber, const char *pattern, void *arg)
{
    s_hits_t *hits = arg;
    ck_assert_uint_lt(hits->count, S_MAX_HITS);
    hits->hits[hits->count].subscriber = subscriber;
    snprintf(hits->hits[hits->count].pattern, sizeof hits->hits[0].pattern, "%s", pattern);
    hits->count++;
}

static void
s_setup(void)
{
    s_subs = vdb_subs_new();
    ck_assert_ptr_nonnull(s_subs);
}

static void
s_teardown(void)
{
    vdb_subs_destroy(&s_subs);
    ck_assert_ptr_null(s_subs);
}

static size_t
s_match(const char *topic, s_hits_t *hits)
{
    hits->count = 0;
    size_t calls = vdb_subs_match(s_subs, topic, s_collect, hits);
    ck_assert_uint_eq(calls, hits->count);
    return calls;
}

/*  ---------------------------------------------------------------------------------------------
    Semantics  */

static const struct {
    const char *pattern;
    const char *topic;
    bool match;
} s_cases[] = {
    { "alert.toscana.i726", "alert.toscana.i726", true },
    { "alert.toscana.i726", "alert.toscana", false },
    { "alert.toscana.i726", "alert.toscana.i726.x", false },
    { "alert.toscana.>", "alert.toscana.i726", true },
    { "alert.toscana.>", "alert.toscana.i726.siem.x", true },
    { "alert.toscana.>", "alert.toscana", false }, // '>' needs at least one segment
    { "alert.*.i726", "alert.toscana.i726", true },
    { "alert.*.i726", "alert.toscana.b429", false },
    { "alert.*", "alert.toscana.i726", false }, // '*' is exactly one segment
    { "alert.*", "alert", false },
    { "*.*.*", "alert.toscana.i726", true },
    { "*.>", "alert", false },
    { "*.>", "alert.toscana", true },
    { ">", "alert", true },
    { ">", "alert.toscana.i726", true },
    { "*", "alert.toscana", false },
    //  Byte prefixes are never matches (the MISP#2239 trap).
    { "alert.sicilia-occ.b429", "alert.sicilia-occ.b4290", false },
    { "alert.sicilia-occ.b4290", "alert.sicilia-occ.b429", false },
    { "alert.sicilia-occ.b429.>", "alert.sicilia-occ.b4290.x", false },
    { "alert.sicilia", "alert.sicilia-occ", false },
    { "alert.sicilia.>", "alert.sicilia-occ.b429", false },
    { "emergency.toscana.all", "emergency.toscana.all", true },
    { "emergency.toscana.all", "emergency.toscana.alla", false },
};

START_TEST(matches_segment_by_segment)
{
    ck_assert_int_eq(vdb_subs_add(s_subs, s_cases[_i].pattern, &s_subscriber[0]), VD_OK);
    s_hit_t hit[4];
    s_hits_t hits = { hit, 0 };
    size_t calls = s_match(s_cases[_i].topic, &hits);
    ck_assert_msg(calls == (s_cases[_i].match ? 1u : 0u), "%s vs %s: %zu calls",
                  s_cases[_i].pattern, s_cases[_i].topic, calls);
    //  The model the random test checks against agrees with this table.
    ck_assert(vdp_pattern_match(s_cases[_i].pattern, s_cases[_i].topic) == s_cases[_i].match);
    if (calls == 1) {
        ck_assert_ptr_eq(hit[0].subscriber, &s_subscriber[0]);
        ck_assert_str_eq(hit[0].pattern, s_cases[_i].pattern);
    }
}
END_TEST

START_TEST(pattern_and_its_tail_form_are_different_pairs)
{
    ck_assert_int_eq(vdb_subs_add(s_subs, "a.b", &s_subscriber[0]), VD_OK);
    ck_assert_int_eq(vdb_subs_add(s_subs, "a.b.>", &s_subscriber[0]), VD_OK);
    ck_assert_int_eq(vdb_subs_add(s_subs, "a.*", &s_subscriber[0]), VD_OK);
    ck_assert_uint_eq(vdb_subs_count(s_subs), 3);
    s_hit_t hit[4];
    s_hits_t hits = { hit, 0 };
    ck_assert_uint_eq(s_match("a.b", &hits), 2); // "a.b" and "a.*": once per pattern
    ck_assert_uint_eq(s_match("a.b.c", &hits), 1);
    ck_assert_str_eq(hit[0].pattern, "a.b.>");
    ck_assert_uint_eq(s_match("a.c", &hits), 1);
    ck_assert_str_eq(hit[0].pattern, "a.*");
}
END_TEST

START_TEST(every_subscriber_of_a_pattern_is_called)
{
    for (int i = 0; i < S_SUBSCRIBERS; i++)
        ck_assert_int_eq(vdb_subs_add(s_subs, "bulletin.toscana", &s_subscriber[i]), VD_OK);
    s_hit_t hit[S_SUBSCRIBERS];
    s_hits_t hits = { hit, 0 };
    ck_assert_uint_eq(s_match("bulletin.toscana", &hits), S_SUBSCRIBERS);
    bool seen[S_SUBSCRIBERS] = { false };
    for (size_t k = 0; k < hits.count; k++) {
        ptrdiff_t index = (int *)hit[k].subscriber - s_subscriber;
        ck_assert(index >= 0 && index < S_SUBSCRIBERS && !seen[index]);
        seen[index] = true;
    }
}
END_TEST

static const char *const s_bad_topics[] = {
    "",
    "a..b",
    "a.",
    ".a",
    "Alert.toscana",
    "alert.*",
    "alert.>",
    "alert toscana",
    "a.b.c.d.e.f.g.h.i",                                 // nine segments
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", // a 49-byte segment
};

START_TEST(invalid_topic_matches_nothing)
{
    ck_assert_int_eq(vdb_subs_add(s_subs, ">", &s_subscriber[0]), VD_OK);
    ck_assert_int_eq(vdb_subs_add(s_subs, "*", &s_subscriber[1]), VD_OK);
    ck_assert_int_eq(vdb_subs_add(s_subs, "alert.*", &s_subscriber[2]), VD_OK);
    s_hit_t hit[4];
    s_hits_t hits = { hit, 0 };
    ck_assert_uint_eq(s_match(s_bad_topics[_i], &hits), 0);
}
END_TEST

START_TEST(topic_over_the_length_cap_matches_nothing)
{
    ck_assert_int_eq(vdb_subs_add(s_subs, ">", &s_subscriber[0]), VD_OK);
    char topic[VDP_MAX_TOPIC + 2];
    //  Three segments of 31 bytes and one of 32, with their dots: exactly the cap.
    memset(topic, 'a', sizeof topic);
    for (size_t i = 31; i < VDP_MAX_TOPIC - 1; i += 32)
        topic[i] = '.';
    topic[VDP_MAX_TOPIC] = '\0';
    s_hit_t hit[2];
    s_hits_t hits = { hit, 0 };
    ck_assert(vdp_topic_valid(topic));
    ck_assert_uint_eq(s_match(topic, &hits), 1);
    topic[VDP_MAX_TOPIC] = 'a';
    topic[VDP_MAX_TOPIC + 1] = '\0';
    ck_assert(!vdp_topic_valid(topic));
    ck_assert_uint_eq(s_match(topic, &hits), 0);
}
END_TEST

/*  ---------------------------------------------------------------------------------------------
    Bookkeeping  */

START_TEST(duplicate_pair_returns_one_and_changes_nothing)
{
    ck_assert_int_eq(vdb_subs_add(s_subs, "alert.toscana.>", &s_subscriber[0]), VD_OK);
    ck_assert_int_eq(vdb_subs_add(s_subs, "alert.toscana.>", &s_subscriber[0]), 1);
    ck_assert_uint_eq(vdb_subs_count(s_subs), 1);
    ck_assert_int_eq(vdb_subs_add(s_subs, "alert.toscana.>", &s_subscriber[1]), VD_OK);
    ck_assert_uint_eq(vdb_subs_count(s_subs), 2);
    s_hit_t hit[4];
    s_hits_t hits = { hit, 0 };
    ck_assert_uint_eq(s_match("alert.toscana.i726", &hits), 2);
}
END_TEST

START_TEST(add_refuses_invalid_patterns)
{
    static const char *const bad[] = { "", "a..b", "a.>.b", "A", "a.b*", ">>", "a.>>" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(vdb_subs_add(s_subs, bad[i], &s_subscriber[0]), VD_EINVAL);
    ck_assert_int_eq(vdb_subs_add(s_subs, NULL, &s_subscriber[0]), VD_EINVAL);
    ck_assert_int_eq(vdb_subs_add(s_subs, "a", NULL), VD_EINVAL);
    ck_assert_uint_eq(vdb_subs_count(s_subs), 0);
}
END_TEST

START_TEST(remove_takes_exactly_the_pair)
{
    ck_assert_int_eq(vdb_subs_add(s_subs, "a.*", &s_subscriber[0]), VD_OK);
    ck_assert_int_eq(vdb_subs_add(s_subs, "a.*", &s_subscriber[1]), VD_OK);
    ck_assert_int_eq(vdb_subs_remove(s_subs, "a.*", &s_subscriber[2]), VD_ENOTFOUND);
    ck_assert_int_eq(vdb_subs_remove(s_subs, "a.>", &s_subscriber[0]), VD_ENOTFOUND);
    ck_assert_int_eq(vdb_subs_remove(s_subs, "a.b", &s_subscriber[0]), VD_ENOTFOUND);
    ck_assert_int_eq(vdb_subs_remove(s_subs, "a", &s_subscriber[0]), VD_ENOTFOUND);
    ck_assert_int_eq(vdb_subs_remove(s_subs, "not valid!", &s_subscriber[0]), VD_ENOTFOUND);
    ck_assert_uint_eq(vdb_subs_count(s_subs), 2);
    ck_assert_int_eq(vdb_subs_remove(s_subs, "a.*", &s_subscriber[0]), VD_OK);
    ck_assert_int_eq(vdb_subs_remove(s_subs, "a.*", &s_subscriber[0]), VD_ENOTFOUND);
    ck_assert_uint_eq(vdb_subs_count(s_subs), 1);
    s_hit_t hit[4];
    s_hits_t hits = { hit, 0 };
    ck_assert_uint_eq(s_match("a.x", &hits), 1);
    ck_assert_ptr_eq(hit[0].subscriber, &s_subscriber[1]);
    //  Removing the last pair of a branch and adding it again works (the branch was pruned).
    ck_assert_int_eq(vdb_subs_remove(s_subs, "a.*", &s_subscriber[1]), VD_OK);
    ck_assert_uint_eq(s_match("a.x", &hits), 0);
    ck_assert_int_eq(vdb_subs_add(s_subs, "a.*", &s_subscriber[1]), VD_OK);
    ck_assert_uint_eq(s_match("a.x", &hits), 1);
}
END_TEST

START_TEST(remove_all_takes_every_pair_of_one_subscriber)
{
    static const char *const patterns[] = { ">", "a", "a.b", "a.*", "a.b.>", "*.b", "x.y.z" };
    size_t n = sizeof patterns / sizeof patterns[0];
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(vdb_subs_add(s_subs, patterns[i], &s_subscriber[0]), VD_OK);
        ck_assert_int_eq(vdb_subs_add(s_subs, patterns[i], &s_subscriber[1]), VD_OK);
    }
    ck_assert_uint_eq(vdb_subs_count(s_subs), 2 * n);
    ck_assert_uint_eq(vdb_subs_remove_all(s_subs, &s_subscriber[0]), n);
    ck_assert_uint_eq(vdb_subs_count(s_subs), n);
    ck_assert_uint_eq(vdb_subs_remove_all(s_subs, &s_subscriber[0]), 0);
    ck_assert_uint_eq(vdb_subs_remove_all(s_subs, &s_subscriber[2]), 0);
    s_hit_t hit[16];
    s_hits_t hits = { hit, 0 };
    ck_assert_uint_eq(s_match("a.b", &hits), 4); // ">", "a.b", "a.*", "*.b" of subscriber 1
    for (size_t k = 0; k < hits.count; k++)
        ck_assert_ptr_eq(hit[k].subscriber, &s_subscriber[1]);
    ck_assert_uint_eq(vdb_subs_remove_all(s_subs, &s_subscriber[1]), n);
    ck_assert_uint_eq(vdb_subs_count(s_subs), 0);
    ck_assert_uint_eq(s_match("a.b", &hits), 0);
    //  The subscriber can come back.
    ck_assert_int_eq(vdb_subs_add(s_subs, "a.b", &s_subscriber[0]), VD_OK);
    ck_assert_uint_eq(s_match("a.b", &hits), 1);
}
END_TEST

START_TEST(many_subscribers_of_one_pattern_leave_in_any_order)
{
    enum { S_MANY = 5000 };
    static char many[S_MANY];
    for (int i = 0; i < S_MANY; i++)
        ck_assert_int_eq(vdb_subs_add(s_subs, "bulletin.national", &many[i]), VD_OK);
    ck_assert_int_eq(vdb_subs_add(s_subs, "bulletin.national", &many[S_MANY / 2]), 1);
    //  Leave from the middle outwards, so every removal moves another pair's slot.
    for (int i = 0; i < S_MANY; i++) {
        int who = (i * 7919) % S_MANY; // 7919 is prime: a permutation of 0..S_MANY-1
        ck_assert_uint_eq(vdb_subs_remove_all(s_subs, &many[who]), 1);
        ck_assert_uint_eq(vdb_subs_count(s_subs), (size_t)(S_MANY - i - 1));
    }
    s_hit_t hit[2];
    s_hits_t hits = { hit, 0 };
    ck_assert_uint_eq(s_match("bulletin.national", &hits), 0);
}
END_TEST

START_TEST(one_subscriber_with_many_patterns_removes_them_one_by_one)
{
    enum { S_MANY = 2000 };
    char pattern[64];
    for (int i = 0; i < S_MANY; i++) {
        snprintf(pattern, sizeof pattern, "report.toscana.c%d", i);
        ck_assert_int_eq(vdb_subs_add(s_subs, pattern, &s_subscriber[0]), VD_OK);
    }
    ck_assert_int_eq(vdb_subs_add(s_subs, "report.toscana.c7", &s_subscriber[0]), 1);
    s_hit_t hit[2];
    s_hits_t hits = { hit, 0 };
    for (int i = 0; i < S_MANY; i++) {
        int which = (i * 7919) % S_MANY;
        snprintf(pattern, sizeof pattern, "report.toscana.c%d", which);
        ck_assert_uint_eq(s_match(pattern, &hits), 1);
        ck_assert_int_eq(vdb_subs_remove(s_subs, pattern, &s_subscriber[0]), VD_OK);
        ck_assert_uint_eq(s_match(pattern, &hits), 0);
    }
    ck_assert_uint_eq(vdb_subs_count(s_subs), 0);
}
END_TEST

START_TEST(null_arguments_are_harmless)
{
    vdb_subs_destroy(NULL);
    ck_assert_uint_eq(vdb_subs_count(NULL), 0);
    ck_assert_int_eq(vdb_subs_add(NULL, "a", &s_subscriber[0]), VD_EINVAL);
    ck_assert_uint_eq(vdb_subs_remove_all(s_subs, NULL), 0);
    ck_assert_uint_eq(vdb_subs_match(s_subs, NULL, s_collect, NULL), 0);
    ck_assert_uint_eq(vdb_subs_match(NULL, "a", s_collect, NULL), 0);
    vdb_subs_t *twice = vdb_subs_new();
    ck_assert_int_eq(vdb_subs_add(twice, "a.>", &s_subscriber[0]), VD_OK);
    vdb_subs_destroy(&twice);
    vdb_subs_destroy(&twice);
    ck_assert_ptr_null(twice);
}
END_TEST

/*  ---------------------------------------------------------------------------------------------
    Against a brute-force model  */

//  xorshift64*: small, deterministic across platforms.
static uint64_t s_rng_state;

static uint32_t
s_rand(uint32_t bound)
{
    s_rng_state ^= s_rng_state >> 12;
    s_rng_state ^= s_rng_state << 25;
    s_rng_state ^= s_rng_state >> 27;
    return (uint32_t)((s_rng_state * 2685821657736338717u) >> 33) % bound;
}

//  Few, prefix-related segments, so random patterns and topics collide often.
static const char *const s_words[] = { "a", "b", "b4", "b42", "b429", "b4290", "sicilia-occ" };
#define S_WORDS (sizeof s_words / sizeof s_words[0])

static void
s_random_topic(char *out, size_t size, bool wildcards)
{
    size_t depth = 1 + s_rand(wildcards ? 4 : 5);
    size_t n = 0;
    for (size_t i = 0; i < depth; i++) {
        const char *word = s_words[s_rand(S_WORDS)];
        if (wildcards && s_rand(5) == 0)
            word = "*";
        if (wildcards && i == depth - 1 && s_rand(4) == 0)
            word = ">";
        n += (size_t)snprintf(out + n, size - n, "%s%s", i ? "." : "", word);
    }
    ck_assert_uint_lt(n, size);
}

typedef struct {
    int subscriber; // index into s_subscriber
    char pattern[64];
} s_pair_t;

static int
s_compare_hits(const void *a, const void *b)
{
    const s_hit_t *x = a, *y = b;
    if (x->subscriber != y->subscriber)
        return (uintptr_t)x->subscriber < (uintptr_t)y->subscriber ? -1 : 1;
    return strcmp(x->pattern, y->pattern);
}

//  Matches `topic` in the index and in the model; both must give the same pairs.
static void
s_check_topic(
    const char *topic, const s_pair_t *model, size_t model_count, s_hits_t *got, s_hits_t *want)
{
    s_match(topic, got);
    want->count = 0;
    for (size_t k = 0; k < model_count; k++) {
        if (vdp_pattern_match(model[k].pattern, topic))
            s_collect(&s_subscriber[model[k].subscriber], model[k].pattern, want);
    }
    ck_assert_msg(got->count == want->count, "topic %s: %zu matches, model has %zu", topic,
                  got->count, want->count);
    qsort(got->hits, got->count, sizeof *got->hits, s_compare_hits);
    qsort(want->hits, want->count, sizeof *want->hits, s_compare_hits);
    for (size_t k = 0; k < got->count; k++) {
        ck_assert_ptr_eq(got->hits[k].subscriber, want->hits[k].subscriber);
        ck_assert_str_eq(got->hits[k].pattern, want->hits[k].pattern);
    }
}

START_TEST(random_operations_agree_with_brute_force)
{
    enum { S_OPS = 6000, S_MODEL = 4096 };
    static s_pair_t model[S_MODEL];
    static s_hit_t got_hits[S_MAX_HITS], want_hits[S_MAX_HITS];
    s_hits_t got = { got_hits, 0 }, want = { want_hits, 0 };
    size_t model_count = 0;
    size_t matched = 0; // how many pairs the checks saw, to show the test is not vacuous
    s_rng_state = 0x5eed0000u + (uint64_t)_i;
    for (int op = 0; op < S_OPS; op++) {
        uint32_t dice = s_rand(100);
        int who = (int)s_rand(S_SUBSCRIBERS);
        if (dice < 65 && model_count < S_MODEL) {
            s_pair_t pair = { who, "" };
            s_random_topic(pair.pattern, sizeof pair.pattern, true);
            size_t k = 0;
            while (k < model_count &&
                   (model[k].subscriber != who || strcmp(model[k].pattern, pair.pattern) != 0))
                k++;
            int rc = vdb_subs_add(s_subs, pair.pattern, &s_subscriber[who]);
            ck_assert_int_eq(rc, k < model_count ? 1 : VD_OK);
            if (k == model_count)
                model[model_count++] = pair;
        } else if (dice < 90 && model_count > 0) {
            size_t k = s_rand((uint32_t)model_count);
            ck_assert_int_eq(
                vdb_subs_remove(s_subs, model[k].pattern, &s_subscriber[model[k].subscriber]),
                VD_OK);
            model[k] = model[--model_count];
        } else if (dice < 92) {
            size_t expected = 0;
            for (size_t k = 0; k < model_count;) {
                if (model[k].subscriber == who) {
                    model[k] = model[--model_count];
                    expected++;
                } else
                    k++;
            }
            ck_assert_uint_eq(vdb_subs_remove_all(s_subs, &s_subscriber[who]), expected);
        } else {
            char topic[64];
            s_random_topic(topic, sizeof topic, false);
            s_check_topic(topic, model, model_count, &got, &want);
            matched += got.count;
        }
        ck_assert_uint_eq(vdb_subs_count(s_subs), model_count);
    }
    //  Finally every topic of up to three words, against the final model.
    for (size_t a = 0; a < S_WORDS; a++) {
        for (size_t b = 0; b <= S_WORDS; b++) {
            for (size_t c = 0; c <= S_WORDS; c++) {
                char topic[64];
                if (b == S_WORDS)
                    snprintf(topic, sizeof topic, "%s", s_words[a]);
                else if (c == S_WORDS)
                    snprintf(topic, sizeof topic, "%s.%s", s_words[a], s_words[b]);
                else
                    snprintf(topic, sizeof topic, "%s.%s.%s", s_words[a], s_words[b], s_words[c]);
                s_check_topic(topic, model, model_count, &got, &want);
                matched += got.count;
            }
        }
    }
    ck_assert_uint_gt(matched, 1000);
}
END_TEST

Suite *
vdb_subs_suite(void)
{
    Suite *suite = suite_create("vdb_subs");

    TCase *tc = tcase_create("semantics");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_loop_test(tc, matches_segment_by_segment, 0, sizeof s_cases / sizeof s_cases[0]);
    tcase_add_test(tc, pattern_and_its_tail_form_are_different_pairs);
    tcase_add_test(tc, every_subscriber_of_a_pattern_is_called);
    tcase_add_loop_test(tc, invalid_topic_matches_nothing, 0,
                        sizeof s_bad_topics / sizeof s_bad_topics[0]);
    tcase_add_test(tc, topic_over_the_length_cap_matches_nothing);
    suite_add_tcase(suite, tc);

    tc = tcase_create("bookkeeping");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, duplicate_pair_returns_one_and_changes_nothing);
    tcase_add_test(tc, add_refuses_invalid_patterns);
    tcase_add_test(tc, remove_takes_exactly_the_pair);
    tcase_add_test(tc, remove_all_takes_every_pair_of_one_subscriber);
    tcase_add_test(tc, many_subscribers_of_one_pattern_leave_in_any_order);
    tcase_add_test(tc, one_subscriber_with_many_patterns_removes_them_one_by_one);
    tcase_add_test(tc, null_arguments_are_harmless);
    suite_add_tcase(suite, tc);

    tc = tcase_create("brute_force");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, random_operations_agree_with_brute_force, 0, 4);
    suite_add_tcase(suite, tc);
    return suite;
}

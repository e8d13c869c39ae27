/*  vdp_topic suite: validity, segment-wise matching and pattern containment, the last two also
    checked against an independent reference over every small pattern and topic.  */
#include <stdio.h>
#include <string.h>

#include "suites.h"
#include "vdp_limits.h"
#include "vdp_topic.h"

//  -------------------------------------------------------------------------------------------
//  Validity

static const struct {
    const char *text;
    bool topic;   // vdp_topic_valid
    bool pattern; // vdp_pattern_valid
} s_valid[] = {
    { "alert.toscana.i726", true, true },
    { "inbox", true, true },
    { "inbox.sicilia-occ.comune-b429", true, true },
    { "a", true, true },
    { "0.9.-", true, true },
    { "emergency.toscana.all", true, true },
    { "*", false, true },
    { ">", false, true },
    { "alert.toscana.>", false, true },
    { "alert.*.i726", false, true },
    { "*.*.>", false, true },
    { "", false, false },
    { ".", false, false },
    { "a.", false, false },
    { ".a", false, false },
    { "a..b", false, false },
    { "Alert", false, false },
    { "a_b", false, false },
    { "a b", false, false },
    { "a\tb", false, false },
    { "a/b", false, false },
    { "caff\xc3\xa8", false, false },
    { "a*", false, false },
    { "*a", false, false },
    { "a>", false, false },
    { "**", false, false },
    { ">>", false, false },
    { ">.a", false, false },
    { "a.>.b", false, false },
    { "a.>.>", false, false },
    { "a.$j", false, false },
    { "a.#", false, false },
};

START_TEST(valid_table)
{
    ck_assert_msg(vdp_topic_valid(s_valid[_i].text) == s_valid[_i].topic, "topic_valid(\"%s\")",
                  s_valid[_i].text);
    ck_assert_msg(vdp_pattern_valid(s_valid[_i].text) == s_valid[_i].pattern,
                  "pattern_valid(\"%s\")", s_valid[_i].text);
}
END_TEST

START_TEST(valid_null_is_invalid)
{
    ck_assert(!vdp_topic_valid(NULL));
    ck_assert(!vdp_pattern_valid(NULL));
    ck_assert(!vdp_pattern_match(NULL, "a"));
    ck_assert(!vdp_pattern_match("a", NULL));
    ck_assert(!vdp_pattern_contains(NULL, "a"));
    ck_assert(!vdp_pattern_contains("a", NULL));
}
END_TEST

//  A topic of `segments` segments of `len` bytes each ('a'..), NUL-terminated in out.
static void
s_build(char *out, size_t size, size_t segments, size_t len)
{
    size_t pos = 0;
    for (size_t s = 0; s < segments; s++) {
        if (s > 0 && pos + 1 < size)
            out[pos++] = '.';
        for (size_t k = 0; k < len && pos + 1 < size; k++)
            out[pos++] = (char)('a' + (s % 26));
    }
    out[pos] = '\0';
}

START_TEST(valid_caps)
{
    char text[4 * VDP_MAX_TOPIC];
    //  one segment at and over its cap
    s_build(text, sizeof text, 1, VDP_MAX_SEGMENT);
    ck_assert(vdp_topic_valid(text));
    s_build(text, sizeof text, 1, VDP_MAX_SEGMENT + 1);
    ck_assert(!vdp_topic_valid(text));
    ck_assert(!vdp_pattern_valid(text));
    //  segment count at and over its cap
    s_build(text, sizeof text, VDP_MAX_SEGMENTS, 2);
    ck_assert(vdp_topic_valid(text));
    s_build(text, sizeof text, VDP_MAX_SEGMENTS + 1, 2);
    ck_assert(!vdp_topic_valid(text));
    ck_assert(!vdp_pattern_valid(text));
    //  total length at and over its cap (3 segments of 42: 128 bytes)
    s_build(text, sizeof text, 3, (VDP_MAX_TOPIC - 2) / 3);
    ck_assert_uint_eq(strlen(text), VDP_MAX_TOPIC);
    ck_assert(vdp_topic_valid(text));
    strcat(text, "a");
    ck_assert(!vdp_topic_valid(text));
    ck_assert(!vdp_pattern_valid(text));
    //  a very long string is rejected without trouble
    memset(text, 'a', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    ck_assert(!vdp_topic_valid(text));
}
END_TEST

//  -------------------------------------------------------------------------------------------
//  Matching

static const struct {
    const char *pattern;
    const char *topic;
    bool match;
} s_match[] = {
    { "alert.toscana.i726", "alert.toscana.i726", true },
    { "alert.toscana.i726", "alert.toscana.i72", false },
    //  never by byte prefix
    { "alert.t.b429", "alert.t.b4290", false },
    { "alert.t.b4290", "alert.t.b429", false },
    { "alert.t", "alert.toscana", false },
    { "alert.t.b429", "alert.t.b429.siem", false },
    { "alert.t.b429.siem", "alert.t.b429", false },
    { "alert.t.*", "alert.t.b4290", true },
    //  '*' is exactly one segment
    { "alert.*.i726", "alert.toscana.i726", true },
    { "alert.*.i726", "alert.toscana.d612", false },
    { "alert.*", "alert.toscana.i726", false },
    { "alert.*", "alert", false },
    { "*", "inbox", true },
    { "*", "a.b", false },
    { "*.*", "a.b", true },
    //  '>' is one or more trailing segments
    { "alert.>", "alert.toscana", true },
    { "alert.>", "alert.toscana.i726.siem", true },
    { "alert.>", "alert", false },
    { "alert.>", "alerts.toscana", false },
    { ">", "a", true },
    { ">", "a.b.c.d.e.f.g.h", true },
    { "alert.toscana.i726.>", "alert.toscana.i726", false },
    { "alert.toscana.i726.>", "alert.toscana.i726.fw", true },
    { "*.toscana.>", "report.toscana.i726", true },
    { "*.toscana.>", "report.sicilia-occ.b429", false },
    { "emergency.*.all", "emergency.toscana.all", true },
    { "emergency.*.all", "emergency.toscana.i726", false },
};

START_TEST(match_table)
{
    ck_assert_msg(vdp_pattern_match(s_match[_i].pattern, s_match[_i].topic) == s_match[_i].match,
                  "match(\"%s\", \"%s\")", s_match[_i].pattern, s_match[_i].topic);
}
END_TEST

//  -------------------------------------------------------------------------------------------
//  Containment

static const struct {
    const char *outer;
    const char *inner;
    bool contains;
} s_contains[] = {
    { "a.>", "a.*", true },
    { "a.>", "a.b.>", true },
    { "a.>", "a.>", true },
    { "a.>", "a.b", true },
    { "a.>", "a.*.*.>", true },
    { "a.>", "a", false },
    { "a.>", ">", false },
    { "a.>", "*.b", false },
    { "a.*", "a.>", false },
    { "a.*", "a.b", true },
    { "a.*", "a.*", true },
    { "a.*", "a.b.c", false },
    { "a.*.c", "a.b.*", false },
    { "a.b.*", "a.*.c", false },
    { "a.*.c", "a.b.c", true },
    { "a.*.*", "a.b.*", true },
    { "a.*.*", "a.*.c", true },
    { "a.b", "a.*", false },
    { "a.b", "a.b", true },
    { "a.b", "a.bc", false },
    { "a.bc", "a.b", false },
    { ">", "a", true },
    { ">", "*.*.>", true },
    { ">", ">", true },
    { "*", ">", false },
    { "*.>", ">", false },
    { "*.>", "a.b", true },
    { "*.*.>", "*.>", false },
    { "*.>", "*.*.>", true },
    { "alert.toscana.>", "alert.toscana.i726", true },
    { "alert.toscana.>", "alert.toscana.*", true },
    { "alert.toscana.>", "alert.*.i726", false },
    { "alert.toscana.i726", "alert.toscana.i726.>", false },
    { "alert.t.b429", "alert.t.b4290", false },
    { "alert.t.b429.>", "alert.t.b4290.>", false },
};

START_TEST(contains_table)
{
    ck_assert_msg(vdp_pattern_contains(s_contains[_i].outer, s_contains[_i].inner) ==
                      s_contains[_i].contains,
                  "contains(\"%s\", \"%s\")", s_contains[_i].outer, s_contains[_i].inner);
}
END_TEST

//  -------------------------------------------------------------------------------------------
//  Against a reference: every pattern of up to 3 segments over {a, b, *} (with '>' last), every
//  topic of up to 4 segments over {a, b, c}. 'c' appears in no pattern, standing for the
//  values a literal does not take; 4 segments reach one past the deepest pattern.

#define S_MAX_PATTERNS 64
#define S_MAX_TOPICS   128
#define S_DEPTH        8

typedef struct {
    char text[16];
    const char *seg[S_DEPTH];
    size_t count;
} s_split_t;

static s_split_t s_patterns[S_MAX_PATTERNS];
static size_t s_pattern_count;
static s_split_t s_topics[S_MAX_TOPICS];
static size_t s_topic_count;

static void
s_split(s_split_t *out, const char *const *seg, size_t count)
{
    out->count = count;
    size_t pos = 0;
    for (size_t k = 0; k < count; k++) {
        if (k > 0)
            out->text[pos++] = '.';
        out->text[pos++] = seg[k][0];
    }
    out->text[pos] = '\0';
    for (size_t k = 0; k < count; k++)
        out->seg[k] = seg[k];
}

//  Reference matcher on split segments, written independently of vdp_topic.c.
static bool
s_ref_match(const char *const *p, size_t np, const char *const *t, size_t nt)
{
    if (np == 0)
        return nt == 0;
    if (strcmp(p[0], ">") == 0)
        return np == 1 && nt >= 1;
    if (nt == 0)
        return false;
    if (strcmp(p[0], "*") != 0 && strcmp(p[0], t[0]) != 0)
        return false;
    return s_ref_match(p + 1, np - 1, t + 1, nt - 1);
}

static void
s_enumerate(const char *const *alphabet,
            size_t letters,
            size_t depth,
            bool tail,
            s_split_t *out,
            size_t *count,
            size_t max)
{
    //  all words of 1..depth letters, each also ending with '>' when `tail`
    static const char *const gt = ">";
    for (size_t len = 1; len <= depth; len++) {
        size_t words = 1;
        for (size_t k = 0; k < len; k++)
            words *= letters;
        for (size_t w = 0; w < words; w++) {
            const char *seg[S_DEPTH];
            size_t n = w;
            for (size_t k = 0; k < len; k++) {
                seg[k] = alphabet[n % letters];
                n /= letters;
            }
            ck_assert_uint_lt(*count, max);
            s_split(&out[(*count)++], seg, len);
            //  the same word with its last letter turned into '>', once per prefix
            if (tail && seg[len - 1] == alphabet[0]) {
                seg[len - 1] = gt;
                ck_assert_uint_lt(*count, max);
                s_split(&out[(*count)++], seg, len);
            }
        }
    }
}

static void
s_reference_setup(void)
{
    static const char *const pattern_alphabet[] = { "a", "b", "*" };
    static const char *const topic_alphabet[] = { "a", "b", "c" };
    s_pattern_count = 0;
    s_topic_count = 0;
    s_enumerate(pattern_alphabet, 3, 3, true, s_patterns, &s_pattern_count, S_MAX_PATTERNS);
    s_enumerate(topic_alphabet, 3, 4, false, s_topics, &s_topic_count, S_MAX_TOPICS);
}

START_TEST(reference_sets_are_complete)
{
    //  3 + 9 + 27 patterns without '>', 1 + 3 + 9 ending with it; 3 + 9 + 27 + 81 topics
    ck_assert_uint_eq(s_pattern_count, 52);
    ck_assert_uint_eq(s_topic_count, 120);
    for (size_t p = 0; p < s_pattern_count; p++)
        ck_assert_msg(vdp_pattern_valid(s_patterns[p].text), "%s", s_patterns[p].text);
    for (size_t t = 0; t < s_topic_count; t++)
        ck_assert_msg(vdp_topic_valid(s_topics[t].text), "%s", s_topics[t].text);
}
END_TEST

START_TEST(reference_match)
{
    size_t matched = 0;
    for (size_t p = 0; p < s_pattern_count; p++) {
        for (size_t t = 0; t < s_topic_count; t++) {
            bool want = s_ref_match(s_patterns[p].seg, s_patterns[p].count, s_topics[t].seg,
                                    s_topics[t].count);
            matched += want;
            ck_assert_msg(vdp_pattern_match(s_patterns[p].text, s_topics[t].text) == want,
                          "match(\"%s\", \"%s\") should be %d", s_patterns[p].text,
                          s_topics[t].text, want);
        }
    }
    ck_assert_uint_gt(matched, 0); // the sets exercise both answers
}
END_TEST

START_TEST(reference_contains)
{
    size_t contained = 0;
    for (size_t o = 0; o < s_pattern_count; o++) {
        for (size_t i = 0; i < s_pattern_count; i++) {
            bool want = true;
            for (size_t t = 0; t < s_topic_count && want; t++) {
                const s_split_t *topic = &s_topics[t];
                if (s_ref_match(s_patterns[i].seg, s_patterns[i].count, topic->seg, topic->count) &&
                    !s_ref_match(s_patterns[o].seg, s_patterns[o].count, topic->seg, topic->count))
                    want = false;
            }
            contained += want;
            ck_assert_msg(vdp_pattern_contains(s_patterns[o].text, s_patterns[i].text) == want,
                          "contains(\"%s\", \"%s\") should be %d", s_patterns[o].text,
                          s_patterns[i].text, want);
        }
    }
    ck_assert_uint_gt(contained, s_pattern_count); // more than the reflexive pairs
    ck_assert_uint_lt(contained, s_pattern_count * s_pattern_count);
}
END_TEST

Suite *
vdp_topic_suite(void)
{
    Suite *suite = suite_create("vdp_topic");

    TCase *tc = tcase_create("valid");
    tcase_add_loop_test(tc, valid_table, 0, (int)(sizeof s_valid / sizeof s_valid[0]));
    tcase_add_test(tc, valid_null_is_invalid);
    tcase_add_test(tc, valid_caps);
    suite_add_tcase(suite, tc);

    tc = tcase_create("match");
    tcase_add_loop_test(tc, match_table, 0, (int)(sizeof s_match / sizeof s_match[0]));
    suite_add_tcase(suite, tc);

    tc = tcase_create("contains");
    tcase_add_loop_test(tc, contains_table, 0, (int)(sizeof s_contains / sizeof s_contains[0]));
    suite_add_tcase(suite, tc);

    tc = tcase_create("reference");
    tcase_add_checked_fixture(tc, s_reference_setup, NULL);
    tcase_add_test(tc, reference_sets_are_complete);
    tcase_add_test(tc, reference_match);
    tcase_add_test(tc, reference_contains);
    suite_add_tcase(suite, tc);
    return suite;
}

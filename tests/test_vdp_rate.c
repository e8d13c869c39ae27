/*  vdp_rate suite: the "<rate>/s+<burst>" syntax of agency files and the policy. One table of
    good texts with the values they mean, one of bad texts with the error each must give (the
    bounds and the overflows around the k, M and G suffixes included), and the format/parse round
    trip.  */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <check.h>

#include "suites.h"
#include "vdp_rate.h"
#include "vedetta.h"

#define S_K 1024ull
#define S_M (1024ull * 1024ull)
#define S_G (1024ull * 1024ull * 1024ull)

#define S_ROWS(table) ((int)(sizeof table / sizeof table[0]))

//  -------------------------------------------------------------------------------------------
//  Parsing

static const struct {
    const char *text;
    uint64_t per_second;
    uint64_t burst;
} s_good[] = {
    { "200/s+2000", 200, 2000 },
    { "1/s", 1, 1 },
    { "1/s+1", 1, 1 },
    { "10/s+10", 10, 10 },
    { "2000/s+10000", 2000, 10000 },
    { "10k/s", 10 * S_K, 10 * S_K },
    { "4M/s+16M", 4 * S_M, 16 * S_M },
    { "1G/s+2G", S_G, 2 * S_G },
    { "16M/s+64M", 16 * S_M, 64 * S_M },
    //  the suffixes apply to each number on its own
    { "1k/s+1024", S_K, 1024 },
    { "1000/s+1k", 1000, S_K },
    { "512k/s+1G", 512 * S_K, S_G },
    { "3/s+5M", 3, 5 * S_M },
    //  the bounds, reached exactly and just below, with each suffix
    { "1000000000000/s", VDP_RATE_MAX, VDP_RATE_MAX },
    { "1/s+1000000000000", 1, VDP_RATE_MAX },
    { "976562500k/s", VDP_RATE_MAX, VDP_RATE_MAX }, // 976562500 * 1024 == 10^12
    { "953674M/s", 953674 * S_M, 953674 * S_M },
    { "931G/s+931G", 931 * S_G, 931 * S_G },
};

START_TEST(parse_accepts_each_good_text)
{
    vdp_rate_t rate = { 7, 7 };
    char err[128] = "";
    ck_assert_msg(vdp_rate_parse(s_good[_i].text, &rate, err, sizeof err) == VD_OK,
                  "\"%s\" refused: %s", s_good[_i].text, err);
    ck_assert_uint_eq(rate.per_second, s_good[_i].per_second);
    ck_assert_uint_eq(rate.burst, s_good[_i].burst);
}
END_TEST

static const struct {
    const char *text;
    const char *error; // a fragment of the expected message
} s_bad[] = {
    //  not the shape at all
    { "", "expected <rate>/s+<burst>, e.g. 200/s+2000" },
    { "200", "expected <rate>/s+<burst>" },
    { "/s", "expected <rate>/s+<burst>" },
    { "k/s", "expected <rate>/s+<burst>" },
    { "200/s+", "expected <rate>/s+<burst>" },
    { "200/m", "expected <rate>/s+<burst>" },
    { "200/S", "expected <rate>/s+<burst>" },
    { "200/sec", "expected <rate>/s+<burst>" },
    { "200/s2000", "expected <rate>/s+<burst>" },
    { "200/s+/s", "expected <rate>/s+<burst>" },
    { "200/s+2000/s", "expected <rate>/s+<burst>" },
    { "200/s++2000", "expected <rate>/s+<burst>" },
    { "200kb/s", "expected <rate>/s+<burst>" },
    { "1.5k/s", "expected <rate>/s+<burst>" },
    { "1,000/s", "expected <rate>/s+<burst>" },
    //  no blanks, no signs
    { " 200/s", "expected <rate>/s+<burst>" },
    { "200 /s", "expected <rate>/s+<burst>" },
    { "200/ s", "expected <rate>/s+<burst>" },
    { "200/s +2000", "expected <rate>/s+<burst>" },
    { "200/s+ 2000", "expected <rate>/s+<burst>" },
    { "200/s+2000 ", "expected <rate>/s+<burst>" },
    { "200/s+2000\n", "expected <rate>/s+<burst>" },
    { "+200/s", "expected <rate>/s+<burst>" },
    { "-1/s", "expected <rate>/s+<burst>" },
    { "200/s+-5", "expected <rate>/s+<burst>" },
    { "200/s+\xc3\xa8", "expected <rate>/s+<burst>" },
    //  zero, and leading zeros
    { "0/s", "rate is 0" },
    { "0/s+10", "rate is 0" },
    { "0k/s", "rate is 0" },
    { "10/s+0", "burst is 0" },
    { "10/s+0M", "burst is 0" },
    { "00/s", "rate has a leading zero" },
    { "0200/s", "rate has a leading zero" },
    { "200/s+02000", "burst has a leading zero" },
    //  suffixes
    { "200K/s", "unknown suffix 'K' on the rate (k, M or G)" },
    { "200m/s", "unknown suffix 'm' on the rate" },
    { "200/s+2T", "unknown suffix 'T' on the burst" },
    { "0x10/s", "unknown suffix 'x' on the rate" },
    //  a bucket smaller than one second's worth
    { "2000/s+200", "burst 200 is below the rate 2000" },
    { "1k/s+1000", "burst 1000 is below the rate 1024" },
    { "1G/s+1M", "burst 1048576 is below the rate 1073741824" },
    //  over the maximum, by digits and by suffix, also where an unchecked product would wrap
    { "1000000000001/s", "rate too large (at most 1000000000000)" },
    { "1/s+1000000000001", "burst too large (at most 1000000000000)" },
    { "10000000000000/s", "rate too large" },
    { "18446744073709551616/s", "rate too large" }, // 2^64
    { "99999999999999999999999999999999999999/s", "rate too large" },
    { "976562501k/s", "rate too large" },
    { "953675M/s", "rate too large" },
    { "932G/s", "rate too large" },
    { "16777216G/s", "rate too large" },               // 2^54
    { "17179869184G/s", "rate too large" },            // 2^64 after the suffix
    { "1/s+18014398509481984k", "burst too large" },   // 2^64 after the suffix
    { "1/s+18446744073709551617", "burst too large" }, // 2^64 + 1
    { "1000000000000/s+1000000000001", "burst too large" },
};

START_TEST(parse_refuses_each_bad_text)
{
    vdp_rate_t rate = { 7, 7 };
    char err[128] = "untouched";
    ck_assert_msg(vdp_rate_parse(s_bad[_i].text, &rate, err, sizeof err) == VD_EINVAL,
                  "\"%s\" accepted", s_bad[_i].text);
    ck_assert_msg(strstr(err, s_bad[_i].error), "\"%s\": error \"%s\", expected \"%s\"",
                  s_bad[_i].text, err, s_bad[_i].error);
    //  Short enough to follow "file: key/rate: \"...\": " or "policy.vdp:12: " on one line.
    ck_assert_uint_lt(strlen(err), 100);
    //  Nothing half-parsed is left for a caller that ignores the code.
    ck_assert_uint_eq(rate.per_second, 0);
    ck_assert_uint_eq(rate.burst, 0);
}
END_TEST

START_TEST(parse_handles_null_and_small_buffers)
{
    vdp_rate_t rate = { 7, 7 };
    char err[128];
    ck_assert_int_eq(vdp_rate_parse(NULL, &rate, err, sizeof err), VD_EINVAL);
    ck_assert_uint_eq(rate.per_second, 0);
    ck_assert_int_eq(vdp_rate_parse("200/s", NULL, err, sizeof err), VD_EINVAL);
    //  err may be NULL, and a short one is truncated, NUL-terminated
    ck_assert_int_eq(vdp_rate_parse("0/s", &rate, NULL, 0), VD_EINVAL);
    ck_assert_int_eq(vdp_rate_parse("200/s", &rate, NULL, 0), VD_OK);
    ck_assert_uint_eq(rate.per_second, 200);
    char small[8];
    memset(small, 'x', sizeof small);
    ck_assert_int_eq(vdp_rate_parse("oops", &rate, small, sizeof small), VD_EINVAL);
    ck_assert_ptr_nonnull(memchr(small, '\0', sizeof small));
    ck_assert_int_eq(strncmp(small, "expecte", 7), 0);
}
END_TEST

//  -------------------------------------------------------------------------------------------
//  Formatting

START_TEST(format_writes_plain_numbers)
{
    char out[64];
    ck_assert_int_eq(vdp_rate_format(&(vdp_rate_t){ 200, 2000 }, out, sizeof out), VD_OK);
    ck_assert_str_eq(out, "200/s+2000");
    ck_assert_int_eq(vdp_rate_format(&(vdp_rate_t){ 1, 1 }, out, sizeof out), VD_OK);
    ck_assert_str_eq(out, "1/s+1");
    //  no suffixes: 16M is written out
    ck_assert_int_eq(vdp_rate_format(&(vdp_rate_t){ 16 * S_M, 64 * S_M }, out, sizeof out), VD_OK);
    ck_assert_str_eq(out, "16777216/s+67108864");
    ck_assert_int_eq(vdp_rate_format(&(vdp_rate_t){ VDP_RATE_MAX, VDP_RATE_MAX }, out, sizeof out),
                     VD_OK);
    ck_assert_str_eq(out, "1000000000000/s+1000000000000");
}
END_TEST

START_TEST(format_refuses_what_parse_would_not_read)
{
    char out[64];
    static const vdp_rate_t bad[] = {
        { 0, 0 },  // not set
        { 0, 10 }, // a burst without a rate
        { 10, 5 }, // burst below the rate
        { 10, 0 },
        { 1, VDP_RATE_MAX + 1 }, // over the maximum
        { VDP_RATE_MAX + 1, VDP_RATE_MAX + 1 },
        { UINT64_MAX, UINT64_MAX },
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        memset(out, 'x', sizeof out);
        ck_assert_int_eq(vdp_rate_format(&bad[k], out, sizeof out), VD_EINVAL);
        ck_assert_str_eq(out, "");
    }
    ck_assert_int_eq(vdp_rate_format(NULL, out, sizeof out), VD_EINVAL);
    ck_assert_int_eq(vdp_rate_format(&(vdp_rate_t){ 1, 1 }, NULL, 64), VD_EINVAL);
    ck_assert_int_eq(vdp_rate_format(&(vdp_rate_t){ 1, 1 }, out, 0), VD_EINVAL);
}
END_TEST

START_TEST(format_refuses_a_buffer_too_small)
{
    static const char whole[] = "1000000000000/s+1000000000000";
    const vdp_rate_t max = { VDP_RATE_MAX, VDP_RATE_MAX };
    char out[sizeof whole];
    ck_assert_int_eq(vdp_rate_format(&max, out, sizeof whole), VD_OK);
    ck_assert_str_eq(out, whole);
    //  one byte short: nothing half-written that would parse as another limit
    ck_assert_int_eq(vdp_rate_format(&max, out, sizeof whole - 1), VD_EINVAL);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(vdp_rate_format(&(vdp_rate_t){ 200, 2000 }, out, 10), VD_EINVAL);
    ck_assert_int_eq(vdp_rate_format(&(vdp_rate_t){ 200, 2000 }, out, 11), VD_OK);
    ck_assert_str_eq(out, "200/s+2000");
}
END_TEST

//  -------------------------------------------------------------------------------------------
//  Round trips

START_TEST(round_trip_of_each_good_text)
{
    vdp_rate_t rate, again;
    char text[64];
    ck_assert_int_eq(vdp_rate_parse(s_good[_i].text, &rate, NULL, 0), VD_OK);
    ck_assert_int_eq(vdp_rate_format(&rate, text, sizeof text), VD_OK);
    ck_assert_int_eq(vdp_rate_parse(text, &again, NULL, 0), VD_OK);
    ck_assert_uint_eq(again.per_second, rate.per_second);
    ck_assert_uint_eq(again.burst, rate.burst);
}
END_TEST

//  Values around every power of two and ten, and the maximum, in every valid pairing.
START_TEST(round_trip_across_the_range)
{
    uint64_t values[3 * 64 + 3 * 13 + 1];
    size_t count = 0;
    for (uint64_t v = 1; v <= VDP_RATE_MAX; v *= 2) {
        values[count++] = v;
        values[count++] = v + 1;
        if (v > 1)
            values[count++] = v - 1;
    }
    for (uint64_t v = 10; v <= VDP_RATE_MAX; v *= 10) {
        values[count++] = v;
        values[count++] = v - 1;
        if (v < VDP_RATE_MAX)
            values[count++] = v + 1;
    }
    ck_assert_uint_le(count, sizeof values / sizeof values[0]);
    size_t checked = 0;
    for (size_t a = 0; a < count; a++) {
        for (size_t b = 0; b < count; b++) {
            vdp_rate_t rate = { values[a], values[b] };
            char text[64];
            if (rate.burst < rate.per_second) {
                ck_assert_int_eq(vdp_rate_format(&rate, text, sizeof text), VD_EINVAL);
                continue;
            }
            ck_assert_int_eq(vdp_rate_format(&rate, text, sizeof text), VD_OK);
            vdp_rate_t again;
            char err[128] = "";
            ck_assert_msg(vdp_rate_parse(text, &again, err, sizeof err) == VD_OK, "%s: %s", text,
                          err);
            ck_assert_uint_eq(again.per_second, rate.per_second);
            ck_assert_uint_eq(again.burst, rate.burst);
            checked++;
        }
    }
    ck_assert_uint_gt(checked, 1000);
}
END_TEST

//  A suffixed text and its written-out twin read the same.
START_TEST(suffixes_are_powers_of_1024)
{
    static const struct {
        const char *suffixed;
        const char *plain;
    } twins[] = {
        { "1k/s", "1024/s" },
        { "1M/s", "1048576/s" },
        { "1G/s", "1073741824/s" },
        { "3k/s+7M", "3072/s+7340032" },
        { "5G/s+6G", "5368709120/s+6442450944" },
    };
    for (size_t k = 0; k < sizeof twins / sizeof twins[0]; k++) {
        vdp_rate_t a, b;
        ck_assert_int_eq(vdp_rate_parse(twins[k].suffixed, &a, NULL, 0), VD_OK);
        ck_assert_int_eq(vdp_rate_parse(twins[k].plain, &b, NULL, 0), VD_OK);
        ck_assert_uint_eq(a.per_second, b.per_second);
        ck_assert_uint_eq(a.burst, b.burst);
    }
}
END_TEST

Suite *
vdp_rate_suite(void)
{
    Suite *suite = suite_create("vdp_rate");

    TCase *tc = tcase_create("parse");
    tcase_add_loop_test(tc, parse_accepts_each_good_text, 0, S_ROWS(s_good));
    tcase_add_loop_test(tc, parse_refuses_each_bad_text, 0, S_ROWS(s_bad));
    tcase_add_test(tc, parse_handles_null_and_small_buffers);
    tcase_add_test(tc, suffixes_are_powers_of_1024);
    suite_add_tcase(suite, tc);

    tc = tcase_create("format");
    tcase_add_test(tc, format_writes_plain_numbers);
    tcase_add_test(tc, format_refuses_what_parse_would_not_read);
    tcase_add_test(tc, format_refuses_a_buffer_too_small);
    suite_add_tcase(suite, tc);

    tc = tcase_create("round_trip");
    tcase_add_loop_test(tc, round_trip_of_each_good_text, 0, S_ROWS(s_good));
    tcase_add_test(tc, round_trip_across_the_range);
    suite_add_tcase(suite, tc);
    return suite;
}

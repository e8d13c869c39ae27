/*  Tests of vdp_ids: roles, org ids, slugs, jurisdictions, UUIDs, sanitising.  */
#include <string.h>

#include "suites.h"
#include "vdp_ids.h"

START_TEST(role_names_round_trip)
{
    static const char *names[] = { "comune", "cosc", "anci", "cnaipic", "broker" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        vdp_role_t role = vdp_role_from_name(names[i]);
        ck_assert_int_eq(role, (int)(VDP_ROLE_COMUNE + i));
        ck_assert_str_eq(vdp_role_name(role), names[i]);
    }
    ck_assert_int_eq(vdp_role_from_name("Comune"), VDP_ROLE_NONE);
    ck_assert_int_eq(vdp_role_from_name(""), VDP_ROLE_NONE);
    ck_assert_int_eq(vdp_role_from_name("none"), VDP_ROLE_NONE);
    ck_assert_int_eq(vdp_role_from_name(NULL), VDP_ROLE_NONE);
    ck_assert_str_eq(vdp_role_name(VDP_ROLE_NONE), "none");
    ck_assert_str_eq(vdp_role_name((vdp_role_t)99), "none");
}
END_TEST

static const struct {
    const char *org;
    vdp_role_t role; // VDP_ROLE_NONE: invalid
    const char *code;
    const char *slug;
} s_orgs[] = {
    { "comune:i726", VDP_ROLE_COMUNE, "i726", "comune-i726" },
    { "comune:b429", VDP_ROLE_COMUNE, "b429", "comune-b429" },
    { "cosc:sicilia-occ", VDP_ROLE_COSC, "sicilia-occ", "cosc-sicilia-occ" },
    { "anci:toscana", VDP_ROLE_ANCI, "toscana", "anci-toscana" },
    { "cnaipic", VDP_ROLE_CNAIPIC, "cnaipic", "cnaipic" },
    { "broker:toscana", VDP_ROLE_BROKER, "toscana", "broker-toscana" },
    { "comune:a", VDP_ROLE_COMUNE, "a", "comune-a" },
    //  48-byte code: the longest allowed
    { "cosc:abcdefghijklmnopqrstuvwxyz0123456789abcdefghijkl", VDP_ROLE_COSC,
      "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijkl", NULL },
    { "cosc:abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklm", VDP_ROLE_NONE, NULL, NULL },
    { "", VDP_ROLE_NONE, NULL, NULL },
    { "comune", VDP_ROLE_NONE, NULL, NULL },
    { "comune:", VDP_ROLE_NONE, NULL, NULL },
    { ":i726", VDP_ROLE_NONE, NULL, NULL },
    { "Comune:i726", VDP_ROLE_NONE, NULL, NULL },
    { "comune:I726", VDP_ROLE_NONE, NULL, NULL },
    { "comune:i726:x", VDP_ROLE_NONE, NULL, NULL },
    { "comune:-i726", VDP_ROLE_NONE, NULL, NULL },
    { "comune:i726-", VDP_ROLE_NONE, NULL, NULL },
    { "comune:i 726", VDP_ROLE_NONE, NULL, NULL },
    { "comune:i.726", VDP_ROLE_NONE, NULL, NULL },
    { "cnaipic:x", VDP_ROLE_NONE, NULL, NULL },
    { "regione:toscana", VDP_ROLE_NONE, NULL, NULL },
    { "cnaipic ", VDP_ROLE_NONE, NULL, NULL },
    { "none:x", VDP_ROLE_NONE, NULL, NULL },
};

START_TEST(org_ids_parse_as_in_the_table)
{
    const char *org = s_orgs[_i].org;
    ck_assert_int_eq(vdp_org_role(org), s_orgs[_i].role);
    ck_assert(vdp_org_valid(org) == (s_orgs[_i].role != VDP_ROLE_NONE));
    const char *code = vdp_org_code(org);
    if (s_orgs[_i].code)
        ck_assert_str_eq(code, s_orgs[_i].code);
    else
        ck_assert_ptr_null(code);
    char slug[VDP_MAX_ORG + 1];
    int rc = vdp_org_slug(org, slug, sizeof slug);
    if (s_orgs[_i].role == VDP_ROLE_NONE) {
        ck_assert_int_eq(rc, -1);
    } else {
        ck_assert_int_eq(rc, 0);
        ck_assert_ptr_null(strchr(slug, ':'));
        ck_assert_uint_eq(strlen(slug), strlen(org));
        if (s_orgs[_i].slug)
            ck_assert_str_eq(slug, s_orgs[_i].slug);
    }
}
END_TEST

START_TEST(org_null_and_overlong_are_invalid)
{
    ck_assert(!vdp_org_valid(NULL));
    ck_assert_ptr_null(vdp_org_code(NULL));
    char slug[16];
    ck_assert_int_eq(vdp_org_slug(NULL, slug, sizeof slug), -1);
    char big[VDP_MAX_ORG + 16];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "comune:", 7);
    ck_assert(!vdp_org_valid(big));
}
END_TEST

START_TEST(slug_needs_room_for_the_terminator)
{
    char out[12];
    ck_assert_int_eq(vdp_org_slug("comune:i726", out, 11), -1); // 11 chars + NUL need 12
    ck_assert_int_eq(vdp_org_slug("comune:i726", out, 12), 0);
    ck_assert_str_eq(out, "comune-i726");
    ck_assert_int_eq(vdp_org_slug("comune:i726", NULL, 12), -1);
}
END_TEST

static const struct {
    const char *j;
    bool valid;
} s_jurs[] = {
    { "toscana", true },
    { "sicilia-occ", true },
    { "national", true },
    { "piemonte-vda", true },
    { "a", true },
    { "", false },
    { "Toscana", false },
    { "tos.cana", false },
    { "tos cana", false },
    { "*", false },
    { ">", false },
    { "toscana\n", false },
    { "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijkl", true },   // 48
    { "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklm", false }, // 49
};

START_TEST(jurisdictions_as_in_the_table)
{
    ck_assert(vdp_jurisdiction_valid(s_jurs[_i].j) == s_jurs[_i].valid);
}
END_TEST

static const struct {
    const char *id;
    bool valid;
} s_uuids[] = {
    { "0f8fad5b-d9cb-469f-a165-70867728950e", true },
    { "00000000-0000-0000-0000-000000000000", true },
    { "0F8FAD5B-D9CB-469F-A165-70867728950E", false }, // canonical text is lowercase
    { "0f8fad5b-d9cb-469f-a165-70867728950", false },
    { "0f8fad5b-d9cb-469f-a165-70867728950e0", false },
    { "0f8fad5bd9cb-469f-a165-70867728950e0", false },
    { "0f8fad5b-d9cb-469f-a165_70867728950e", false },
    { "0f8fad5b-d9cb-469f-a165-70867728950g", false },
    { "{0f8fad5b-d9cb-469f-a165-70867728950}", false },
    { "", false },
    { NULL, false },
};

START_TEST(uuids_as_in_the_table)
{
    ck_assert(vdp_uuid_valid(s_uuids[_i].id) == s_uuids[_i].valid);
}
END_TEST

START_TEST(generated_uuids_are_valid_v4_and_distinct)
{
    enum { N = 256 };
    static char ids[N][VDP_ID_LEN + 1];
    for (size_t i = 0; i < N; i++) {
        vdp_uuid_generate(ids[i]);
        ck_assert_msg(vdp_uuid_valid(ids[i]), "invalid: %s", ids[i]);
        ck_assert_int_eq(ids[i][14], '4');
        ck_assert_ptr_nonnull(strchr("89ab", ids[i][19]));
        for (size_t k = 0; k < i; k++)
            ck_assert_str_ne(ids[i], ids[k]);
    }
}
END_TEST

START_TEST(sanitize_replaces_and_truncates)
{
    char out[8];
    vdp_sanitize("ab\ncd\x7f\xc3\xa8", 8, out, sizeof out);
    ck_assert_str_eq(out, "ab?cd??");
    vdp_sanitize("abcdefghij", 10, out, sizeof out);
    ck_assert_str_eq(out, "abcdefg");
    vdp_sanitize("a\0b", 3, out, sizeof out); // embedded NUL is shown, not a terminator
    ck_assert_str_eq(out, "a?b");
    vdp_sanitize(NULL, 5, out, sizeof out);
    ck_assert_str_eq(out, "");
    out[0] = 'x';
    vdp_sanitize("abc", 3, out, 1);
    ck_assert_str_eq(out, "");
    out[0] = 'x';
    vdp_sanitize("abc", 3, out, 0); // no room: untouched
    ck_assert_int_eq(out[0], 'x');
}
END_TEST

Suite *
vdp_ids_suite(void)
{
    Suite *s = suite_create("vdp_ids");
    TCase *tc = tcase_create("roles");
    tcase_add_test(tc, role_names_round_trip);
    suite_add_tcase(s, tc);

    tc = tcase_create("org_ids");
    tcase_add_loop_test(tc, org_ids_parse_as_in_the_table, 0, sizeof s_orgs / sizeof s_orgs[0]);
    tcase_add_test(tc, org_null_and_overlong_are_invalid);
    tcase_add_test(tc, slug_needs_room_for_the_terminator);
    suite_add_tcase(s, tc);

    tc = tcase_create("jurisdictions");
    tcase_add_loop_test(tc, jurisdictions_as_in_the_table, 0, sizeof s_jurs / sizeof s_jurs[0]);
    suite_add_tcase(s, tc);

    tc = tcase_create("uuids");
    tcase_add_loop_test(tc, uuids_as_in_the_table, 0, sizeof s_uuids / sizeof s_uuids[0]);
    tcase_add_test(tc, generated_uuids_are_valid_v4_and_distinct);
    suite_add_tcase(s, tc);

    tc = tcase_create("sanitize");
    tcase_add_test(tc, sanitize_replaces_and_truncates);
    suite_add_tcase(s, tc);
    return s;
}

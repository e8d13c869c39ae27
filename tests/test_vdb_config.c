/*  vdb_config: the broker's configuration accepts what it documents and nothing else.  */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "suites.h"
#include "vdb_config.h"
#include "vdb_log.h"
#include "vedetta.h"

START_TEST(defaults_are_local_and_resolved)
{
    vdb_config_t config;
    vdb_config_defaults(&config, "/etc/vedetta");
    ck_assert_str_eq(config.endpoint, "tcp://127.0.0.1:7447");
    ck_assert_str_eq(config.secret, "/etc/vedetta/broker.secret");
    ck_assert_str_eq(config.registry, "/etc/vedetta/agencies");
    ck_assert_str_eq(config.policy, "");
    ck_assert_str_eq(config.name, "");
    ck_assert_str_eq(config.store, "/etc/vedetta/vedetta.db");
    ck_assert_str_eq(config.control, "/etc/vedetta/vedettad.ctl");
    ck_assert_str_eq(config.audit, "/etc/vedetta/vedetta.audit");
    ck_assert_int_eq(config.store_sync, 0); // full: survives a power loss
    ck_assert_int_eq(config.retention_age_ms, 90LL * 86400 * 1000);
    ck_assert_uint_eq(config.retention_size, 0);
    ck_assert_int_gt(config.retention_interval_ms, 0);
    ck_assert_int_eq(config.log_level, VDB_LOG_NOTICE);
    ck_assert_uint_gt(config.dedup_window, 0);
}
END_TEST

START_TEST(parse_reads_every_key)
{
    vdb_config_t config;
    vdb_config_defaults(&config, "/srv");
    const char *text = "broker\n"
                       "    name = \"broker:toscana\"\n"
                       "    endpoint = \"tcp://127.0.0.1:*\"\n"
                       "    secret = \"keys/broker.secret\"\n"
                       "    registry = \"/var/lib/vedetta/agencies\"\n"
                       "    policy = \"policy.vdp\"\n"
                       "    endpoint-file = \"run/endpoint\"\n"
                       "    control = \"run/vedettad.ctl\"\n"
                       "audit\n"
                       "    path = \"/var/log/vedetta/audit.log\"\n"
                       "store\n"
                       "    path = \"data/vedetta.db\"\n"
                       "    sync = \"normal\"\n"
                       "retention\n"
                       "    age = \"30d\"\n"
                       "    size = \"2G\"\n"
                       "    interval = \"500ms\"\n"
                       "    category\n"
                       "        emergency\n"
                       "            age = \"365d\"\n"
                       "        training\n"
                       "            age = \"7d\"\n"
                       "            size = \"100M\"\n"
                       "        intrusions\n"
                       "limits\n"
                       "    dedup-window = 5k\n"
                       "    session-backlog = 16M\n"
                       "log\n"
                       "    level = \"debug\"\n";
    char err[256] = "";
    ck_assert_int_eq(vdb_config_parse(&config, text, "t.cfg", "/srv", err, sizeof err), VD_OK);
    ck_assert_str_eq(config.name, "broker:toscana");
    ck_assert_str_eq(config.endpoint, "tcp://127.0.0.1:*");
    ck_assert_str_eq(config.secret, "/srv/keys/broker.secret");
    ck_assert_str_eq(config.registry, "/var/lib/vedetta/agencies");
    ck_assert_str_eq(config.policy, "/srv/policy.vdp");
    ck_assert_str_eq(config.endpoint_file, "/srv/run/endpoint");
    ck_assert_str_eq(config.control, "/srv/run/vedettad.ctl");
    ck_assert_str_eq(config.audit, "/var/log/vedetta/audit.log");
    ck_assert_str_eq(config.store, "/srv/data/vedetta.db");
    ck_assert_int_eq(config.store_sync, 1);
    ck_assert_int_eq(config.retention_age_ms, 30LL * 86400 * 1000);
    ck_assert_uint_eq(config.retention_size, 2ULL << 30);
    ck_assert_int_eq(config.retention_interval_ms, 500);
    ck_assert_uint_eq(config.retention_category_count, 3);
    ck_assert_str_eq(config.retention_categories[0].name, "emergency");
    ck_assert_int_eq(config.retention_categories[0].age_ms, 365LL * 86400 * 1000);
    ck_assert_uint_eq(config.retention_categories[0].size, 2ULL << 30); // the default's
    ck_assert_str_eq(config.retention_categories[1].name, "training");
    ck_assert_int_eq(config.retention_categories[1].age_ms, 7LL * 86400 * 1000);
    ck_assert_uint_eq(config.retention_categories[1].size, 100ULL << 20);
    ck_assert_str_eq(config.retention_categories[2].name, "intrusions"); // defaults only
    ck_assert_int_eq(config.retention_categories[2].age_ms, 30LL * 86400 * 1000);
    ck_assert_uint_eq(config.dedup_window, 5 * 1024);
    ck_assert_uint_eq(config.session_backlog, 16u * 1024 * 1024);
    ck_assert_int_eq(config.log_level, VDB_LOG_DEBUG);
}
END_TEST

static const struct {
    const char *text;
    const char *fragment;
} s_bad[] = {
    { "brokr\n    endpoint = \"x\"\n", "brokr: unknown section" },
    { "broker\n    endpont = \"x\"\n", "broker/endpont: unknown key" },
    { "broker\n    name = \"comune:i726\"\n", "broker/name" },
    { "broker\n    endpoint = \"\"\n", "broker/endpoint" },
    { "broker\n    registry = \"\"\n", "broker/registry" },
    { "limits\n    dedup-window = 0\n", "limits/dedup-window" },
    { "limits\n    dedup-window = -3\n", "limits/dedup-window" },
    { "limits\n    dedup-window = 12x\n", "limits/dedup-window" },
    { "limits\n    session-backlog = 1k\n", "limits/session-backlog" },
    { "limits\n    speed = 3\n", "limits/speed: unknown key" },
    { "log\n    level = \"loud\"\n", "log/level" },
    { "store\n    sync = \"fast\"\n", "store/sync: must be full, normal or off" },
    { "store\n    file = \"x.db\"\n", "store/file: unknown key" },
    { "audit\n    file = \"a.log\"\n", "audit/file: unknown key" },
    { "retention\n    age = \"30\"\n", "retention/age: not a valid value" },
    { "retention\n    age = \"3w\"\n", "retention/age" },
    { "retention\n    interval = \"0\"\n", "retention/interval" },
    { "retention\n    size = \"-1\"\n", "retention/size" },
    { "retention\n    count = \"5\"\n", "retention/count: unknown key" },
    { "log\n    colour = \"red\"\n", "log/colour" },
    { "retention\n    category\n        x\n            age = \"3w\"\n",
      "retention/category/x/age" },
    { "retention\n    category\n        x\n            count = 1\n", "retention/category/x/count" },
    { "retention\n    category\n        x\n        x\n", "retention/category/x: given twice" },
    { "retention\n    category = \"x\"\n", "retention/category: takes no value" },
    { "broker\n    endpoint\n        nested = 1\n", "unexpected subsection" },
};

START_TEST(parse_rejects_what_it_does_not_know)
{
    vdb_config_t config;
    vdb_config_defaults(&config, ".");
    char err[256] = "";
    ck_assert_int_eq(vdb_config_parse(&config, s_bad[_i].text, "bad.cfg", ".", err, sizeof err),
                     VD_ECONFIG);
    ck_assert_msg(strstr(err, s_bad[_i].fragment) != NULL, "error '%s' lacks '%s'", err,
                  s_bad[_i].fragment);
    ck_assert_msg(strncmp(err, "bad.cfg: ", 9) == 0, "error '%s' does not name the file", err);
}
END_TEST

START_TEST(load_resolves_against_the_file_directory)
{
    char dir[] = "/tmp/vdb_config_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/vedettad.cfg", dir);
    FILE *file = fopen(path, "w");
    ck_assert_ptr_nonnull(file);
    fputs("broker\n    registry = \"agencies\"\n", file);
    fclose(file);
    vdb_config_t config;
    char err[256] = "";
    ck_assert_int_eq(vdb_config_load(&config, path, err, sizeof err), VD_OK);
    char expected[300];
    snprintf(expected, sizeof expected, "%s/agencies", dir);
    ck_assert_str_eq(config.registry, expected);
    snprintf(expected, sizeof expected, "%s/broker.secret", dir);
    ck_assert_str_eq(config.secret, expected);
    unlink(path);
    rmdir(dir);
    ck_assert_int_eq(vdb_config_load(&config, path, err, sizeof err), VD_EIO);
}
END_TEST

Suite *
vdb_config_suite(void)
{
    Suite *suite = suite_create("vdb_config");
    TCase *parse = tcase_create("parse");
    tcase_add_test(parse, defaults_are_local_and_resolved);
    tcase_add_test(parse, parse_reads_every_key);
    tcase_add_loop_test(parse, parse_rejects_what_it_does_not_know, 0,
                        (int)(sizeof s_bad / sizeof s_bad[0]));
    suite_add_tcase(suite, parse);
    TCase *load = tcase_create("load");
    tcase_add_test(load, load_resolves_against_the_file_directory);
    suite_add_tcase(suite, load);
    return suite;
}

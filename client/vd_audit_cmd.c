/*  vd_audit_cmd: see vd_audit_cmd.h. A thin layer over proto/vdp_audit: what verify prints is
    what vdp_audit_verify found, what query prints are the log's own bytes.  */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "vd_audit_cmd.h"
#include "vd_cli.h"
#include "vd_client_internal.h"
#include "vdp_agency.h"
#include "vdp_audit.h"
#include "vedetta.h"

enum {
    EXIT_OK = 0,
    EXIT_USAGE = 1, // bad arguments, unreadable files
    EXIT_BROKEN = 2 // verify: the log or its head is not intact
};

static const char *s_help =
    "Usage: vedetta audit verify LOG [--head FILE] [--key BROKER.agency]\n"
    "       vedetta audit query LOG [--org ORG] [--kind KIND] [--since TIME] [--until TIME]\n"
    "\n"
    "Checks or searches the broker's audit log (a JSON line per record, each chained to the\n"
    "one before by its hash).\n"
    "\n"
    "verify: checks every record's hash and its link to the one before, and the head\n"
    "checkpoint. Prints {\"intact\":true,\"records\":N,\"head\":N,\"head_signed\":BOOL} or\n"
    "{\"intact\":false,\"records_ok\":K,\"broken_at\":K+1,\"reason\":\"...\"}.\n"
    "  --head FILE          the head checkpoint (default: LOG.head, if it exists)\n"
    "  --key BROKER.agency  the broker's public agency file: the head must be signed with its\n"
    "                       key (without it, the head's signature is not checked)\n"
    "\n"
    "query: prints the records that match every option given, as they are in the log. It does\n"
    "not verify the chain: run verify for that.\n"
    "  --org ORG            records whose org is ORG\n"
    "  --kind KIND          records of this kind: auth.ok, auth.fail, pub.accept, pub.reject,\n"
    "                       sub.grant, sub.deny, deliver.withheld, registry.change,\n"
    "                       policy.change, key.revoke, broker.start, broker.stop,\n"
    "                       audit.checkpoint\n"
    "  --since TIME         records at or after TIME\n"
    "  --until TIME         records at or before TIME\n"
    "TIME is UTC milliseconds since the epoch or ISO 8601 UTC, e.g. 2026-11-22T10:00:00Z.\n"
    "\n"
    "Exit codes: 0 intact (verify) or done (query); 1 usage error or unreadable file, or (query)\n"
    "a line that is not a record; 2 (verify) not intact.\n";

/*  -------------------------------------------------------------------------------------------
    TIME: the logic of `vedetta sub --since` (client/vedetta.c), without ages: an audit query
    names moments, and "2h" would mean something else by the time the output is read.  */

//  TIME: decimal UTC ms since the epoch, or ISO 8601 UTC.
static bool
s_parse_time(const char *text, int64_t *ms)
{
    if (*text >= '0' && *text <= '9' && strspn(text, "0123456789") == strlen(text)) {
        char *end = NULL;
        errno = 0;
        long long value = strtoll(text, &end, 10);
        if (errno != 0 || *end != '\0')
            return false;
        *ms = value;
        return true;
    }
    return vd_iso8601_parse(text, ms) == VD_OK;
}

/*  -------------------------------------------------------------------------------------------
    verify  */

//  Prints `obj` as one line and frees it. False if stdout is gone or memory ran out.
static bool
s_print_json(json_t *obj)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(obj);
    bool ok = text && puts(text) >= 0 && fflush(stdout) == 0;
    free(text);
    return ok;
}

//  The verdict as one JSON line; the exit code.
static int
s_print_verdict(const vdp_audit_verify_t *result)
{
    json_t *obj = json_object();
    json_object_set_new(obj, "intact", json_boolean(result->intact));
    if (result->intact) {
        json_object_set_new(obj, "records", json_integer((json_int_t)result->records));
        json_object_set_new(obj, "head",
                            result->head_present ? json_integer((json_int_t)result->head_n)
                                                 : json_null());
        json_object_set_new(obj, "head_signed", json_boolean(result->head_signed));
    } else {
        json_object_set_new(obj, "records_ok", json_integer((json_int_t)result->broken_at - 1));
        json_object_set_new(obj, "broken_at", json_integer((json_int_t)result->broken_at));
        json_object_set_new(obj, "reason", json_string(result->reason));
    }
    if (result->incomplete_tail)
        json_object_set_new(obj, "incomplete_tail", json_true());
    if (!s_print_json(obj)) {
        fprintf(stderr, "vedetta audit verify: cannot write to stdout\n");
        return EXIT_USAGE;
    }
    return result->intact ? EXIT_OK : EXIT_BROKEN;
}

//  The broker's Ed25519 public key from its public agency file; an exit code.
static int
s_load_sign_key(const char *path, uint8_t key[VDP_KEY_BYTES])
{
    vdp_agency_t agency;
    char err[512] = "";
    if (vdp_agency_load(path, &agency, err, sizeof err) != VD_OK) {
        fprintf(stderr, "vedetta audit verify: %s\n", err);
        return EXIT_USAGE;
    }
    if (vdp_agency_sign_key(&agency, key) != VD_OK) {
        fprintf(stderr, "vedetta audit verify: %s: no valid signing key\n", path);
        return EXIT_USAGE;
    }
    if (agency.role != VDP_ROLE_BROKER)
        fprintf(stderr, "vedetta audit verify: note: %s is the key of %s, not of a broker\n", path,
                agency.org);
    return EXIT_OK;
}

static int
s_cmd_verify(int argc, char **argv)
{
    static const struct option options[] = { { "head", required_argument, NULL, 'H' },
                                             { "key", required_argument, NULL, 'k' },
                                             { "help", no_argument, NULL, 'h' },
                                             { NULL, 0, NULL, 0 } };
    const char *head = NULL, *key = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        switch (opt) {
        case 'H':
            head = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'h':
            fputs(s_help, stdout);
            return EXIT_OK;
        case ':':
            return vd_cli_usage_error("audit verify", "option %s needs a value", argv[optind - 1]);
        default:
            return vd_cli_usage_error("audit verify", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return vd_cli_usage_error("audit verify", "LOG is required");
    if (optind + 1 < argc)
        return vd_cli_usage_error("audit verify", "unexpected argument '%s'", argv[optind + 1]);
    const char *log = argv[optind];

    uint8_t sign_public[VDP_KEY_BYTES];
    if (key && s_load_sign_key(key, sign_public) != EXIT_OK)
        return EXIT_USAGE;
    char *default_head = NULL;
    struct stat st;
    if (!head && asprintf(&default_head, "%s.head", log) > 0 && stat(default_head, &st) == 0)
        head = default_head;
    vdp_audit_verify_t result;
    char err[512] = "";
    int rc = vdp_audit_verify(log, head, key ? sign_public : NULL, &result, err, sizeof err);
    free(default_head);
    if (rc != VD_OK) {
        fprintf(stderr, "vedetta audit verify: %s\n", err[0] ? err : vd_strerror(rc));
        return EXIT_USAGE;
    }
    if (result.intact && !result.head_present)
        fprintf(stderr, "vedetta audit verify: no head checkpoint: records removed from the end "
                        "of the log would go unnoticed\n");
    else if (result.intact && !key)
        fprintf(stderr, "vedetta audit verify: no --key: the head's signature was not checked\n");
    if (result.incomplete_tail)
        fprintf(stderr, "vedetta audit verify: the last line is incomplete (a write in progress "
                        "or cut by a crash): not checked\n");
    return s_print_verdict(&result);
}

/*  -------------------------------------------------------------------------------------------
    query  */

//  Prints a matching record's line as it is; stops the query if stdout is gone.
static int
s_print_line(const char *line, size_t len, const vdp_audit_record_t *record, void *arg)
{
    (void)record;
    bool *failed = arg;
    if (fwrite(line, 1, len, stdout) != len || putchar('\n') == EOF)
        *failed = true;
    return *failed;
}

static int
s_cmd_query(int argc, char **argv)
{
    static const struct option options[] = {
        { "org", required_argument, NULL, 'o' },   { "kind", required_argument, NULL, 'K' },
        { "since", required_argument, NULL, 's' }, { "until", required_argument, NULL, 'u' },
        { "help", no_argument, NULL, 'h' },        { NULL, 0, NULL, 0 }
    };
    vdp_audit_filter_t filter = { 0 };
    int opt;
    while ((opt = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        switch (opt) {
        case 'o':
            filter.org = optarg;
            break;
        case 'K':
            filter.kind = vdp_audit_kind_from_name(optarg);
            if (filter.kind == VDP_AUDIT_NONE)
                return vd_cli_usage_error("audit query", "unknown kind '%s'", optarg);
            break;
        case 's':
        case 'u':
            if (!s_parse_time(optarg, opt == 's' ? &filter.since : &filter.until))
                return vd_cli_usage_error("audit query",
                                          "invalid --%s '%s' (UTC ms, or ISO 8601 UTC like "
                                          "2026-11-22T10:00:00Z)",
                                          opt == 's' ? "since" : "until", optarg);
            break;
        case 'h':
            fputs(s_help, stdout);
            return EXIT_OK;
        case ':':
            return vd_cli_usage_error("audit query", "option %s needs a value", argv[optind - 1]);
        default:
            return vd_cli_usage_error("audit query", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return vd_cli_usage_error("audit query", "LOG is required");
    if (optind + 1 < argc)
        return vd_cli_usage_error("audit query", "unexpected argument '%s'", argv[optind + 1]);
    if (filter.until > 0 && filter.since > filter.until)
        return vd_cli_usage_error("audit query", "--since is after --until");

    bool failed = false;
    char err[512] = "";
    int rc = vdp_audit_query(argv[optind], &filter, s_print_line, &failed, err, sizeof err);
    if (failed || fflush(stdout) != 0) {
        fprintf(stderr, "vedetta audit query: cannot write to stdout\n");
        return EXIT_USAGE;
    }
    if (rc != VD_OK) {
        fprintf(stderr, "vedetta audit query: %s: %s\n", argv[optind],
                err[0] ? err : vd_strerror(rc));
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

int
vd_audit_command(int argc, char **argv)
{
    if (argc < 2) {
        fputs(s_help, stderr);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "help") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        fputs(s_help, stdout);
        return EXIT_OK;
    }
    //  The subcommand parses argv[1..]: getopt sees it as argv[0].
    optind = 1;
    if (strcmp(sub, "verify") == 0)
        return s_cmd_verify(argc - 1, argv + 1);
    if (strcmp(sub, "query") == 0)
        return s_cmd_query(argc - 1, argv + 1);
    fprintf(stderr, "vedetta audit: unknown subcommand '%s'\n\n", sub);
    fputs(s_help, stderr);
    return EXIT_USAGE;
}

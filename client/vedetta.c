/*  vedetta: the command-line client of the vedetta broker (docs/cli.md).

        vedetta keygen --org ORG --name NAME --role ROLE --jurisdiction J[,J] [--label L] [--out DIR]
        vedetta pub --topic T --tlp TLP [options] [--body TEXT]      (else the body is stdin)
        vedetta sub PATTERN... [--durable NAME] [--from-seq N | --since TIME] [--count N]
                    [--timeout MS] [--verify DIR]
        vedetta admin reload|stats [--control PATH]                    (vd_admin_cmd.c)
        vedetta audit verify LOG [--head FILE] [--key BROKER.agency]    (vd_audit_cmd.c)
        vedetta audit query LOG [--org ORG] [--kind KIND] [--since TIME] [--until TIME]

    Exit codes: 0 done; 1 usage or I/O error; 2 rejected or denied by the broker; 3 timeout or
    connection failure. Results go to stdout (one JSON object per line for pub and sub),
    diagnostics to stderr.  */

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "vedetta.h"
#include "vdp_agency.h"
#include "vdp_ids.h"
#include "vdp_limits.h"
#include "vd_admin_cmd.h"
#include "vd_audit_cmd.h"
#include "vd_cli.h"
#include "vd_client_internal.h"

enum {
    EXIT_OK = 0,
    EXIT_USAGE = 1,      // bad arguments, unreadable files, local I/O errors
    EXIT_DENIED = 2,     // the broker rejected the message or denied the subscription or key
    EXIT_UNREACHABLE = 3 // timeout or connection failure
};

#define CLI_DEFAULT_TIMEOUT_MS 5000
#define CLI_SLICE_MS           200 // longest wait in sub before looking at the signal flag

static volatile sig_atomic_t s_stop = 0;

static void
s_on_signal(int signum)
{
    (void)signum;
    s_stop = 1;
}

//  A non-negative decimal integer that fits `max`; false otherwise.
static bool
s_parse_int(const char *text, long long max, long long *out)
{
    if (!text || !*text)
        return false;
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < 0 || value > max)
        return false;
    *out = value;
    return true;
}

//  The exit code for a failed library call.
static int
s_exit_for(int rc)
{
    switch (rc) {
    case VD_ETIMEOUT:
    case VD_ECONN:
        return EXIT_UNREACHABLE;
    case VD_EAUTH:
    case VD_EACCES:
    case VD_ETLP:
    case VD_EVERSION:
    case VD_ESTORE: // a subscription with history refused by a broker that keeps no store
        return EXIT_DENIED;
    default:
        return EXIT_USAGE;
    }
}

static void
s_report(const char *command, const char *what, int rc, const char *reason)
{
    if (reason && *reason)
        fprintf(stderr, "vedetta %s: %s: %s (%s)\n", command, what, reason, vd_strerror_name(rc));
    else
        fprintf(stderr, "vedetta %s: %s: %s (%s)\n", command, what, vd_strerror(rc),
                vd_strerror_name(rc));
}

/*  -------------------------------------------------------------------------------------------
    keygen  */

static const char *s_keygen_help =
    "Usage: vedetta keygen --org ORG --name NAME --role ROLE --jurisdiction J[,J...]\n"
    "                      [--label LABEL] [--out DIR]\n"
    "\n"
    "Creates one agency key: DIR/<org-slug>.<label>.secret (mode 0600, for this system only)\n"
    "and DIR/<org-slug>.<label>.agency (public, for the broker's registry directory).\n"
    "Prints both paths and the CURVE public key. Never overwrites an existing file.\n"
    "\n"
    "  --org ORG            org id: comune:<belfiore>, cosc:<j>, anci:<region>, cnaipic,\n"
    "                       broker:<j>\n"
    "  --name NAME          display name, e.g. \"Comune di Siena\"\n"
    "  --role ROLE          comune | cosc | anci | cnaipic | broker (must match the org id)\n"
    "  --jurisdiction J     COSC jurisdiction(s), comma-separated (cnaipic: national)\n"
    "  --label LABEL        which system of the org holds this key (default: default)\n"
    "  --out DIR            where to write the files (default: .)\n"
    "  --help               this text\n"
    "\n"
    "       vedetta keygen --rotate OLD.secret [--label LABEL] [--out DIR]\n"
    "\n"
    "Rotation: the next key of the agency of OLD.secret (same org, name, role and\n"
    "jurisdictions), under a new label (default: the old label and today's date, e.g.\n"
    "siem-20261122). Install the new .agency file and reload the broker: both keys work; move\n"
    "the system to the new secret file, then revoke the old key and reload again.\n";

static bool
s_jurisdictions_valid(const char *list)
{
    char copy[VDP_MAX_JUR * (VDP_MAX_SEGMENT + 1) + 1];
    if (strlen(list) >= sizeof copy)
        return false;
    strcpy(copy, list);
    size_t count = 0;
    char *save = NULL;
    for (char *j = strtok_r(copy, ",", &save); j; j = strtok_r(NULL, ",", &save)) {
        if (!vdp_jurisdiction_valid(j) || ++count > VDP_MAX_JUR)
            return false;
    }
    return count > 0 && list[strlen(list) - 1] != ',' && list[0] != ',';
}

static bool
s_label_valid(const char *label)
{
    return *label && strlen(label) <= VDP_MAX_LABEL &&
           strspn(label, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(label);
}

//  The two files of a key: `<dir>/<org-slug>.<label>.secret` and `.agency`. False if too long.
static bool
s_key_paths(const char *dir,
            const char *org,
            const char *label,
            char secret_path[PATH_MAX],
            char public_path[PATH_MAX])
{
    char slug[VDP_MAX_ORG + 1];
    if (vdp_org_slug(org, slug, sizeof slug) != 0)
        return false;
    int n1 = snprintf(secret_path, PATH_MAX, "%s/%s.%s.secret", dir, slug, label);
    int n2 = snprintf(public_path, PATH_MAX, "%s/%s.%s.agency", dir, slug, label);
    return n1 > 0 && n2 > 0 && n1 < PATH_MAX && n2 < PATH_MAX;
}

//  `vedetta keygen --rotate OLD.secret`: see s_keygen_help.
static int
s_keygen_rotate(const char *old_path, const char *label, const char *dir, bool described)
{
    if (described)
        return vd_cli_usage_error("keygen", "--rotate takes the org, name, role and jurisdictions "
                                            "from the old key: give only --label and --out");
    vdp_secret_t old;
    char err[512] = "";
    int rc = vdp_secret_load(old_path, &old, err, sizeof err);
    vdp_agency_t agency = old.agency; // the public part; the secrets go at once
    vdp_secret_wipe(&old);
    if (rc != VD_OK) {
        fprintf(stderr, "vedetta keygen: %s\n", err);
        return EXIT_USAGE;
    }
    char fresh[VDP_MAX_LABEL + 1 + 16]; // checked against VDP_MAX_LABEL below
    if (!label) {
        char day[16];
        time_t now = time(NULL);
        struct tm utc;
        gmtime_r(&now, &utc);
        strftime(day, sizeof day, "%Y%m%d", &utc);
        if (strlen(agency.label) + 1 + strlen(day) > VDP_MAX_LABEL)
            return vd_cli_usage_error("keygen", "label '%s' too long to extend: give --label",
                                      agency.label);
        snprintf(fresh, sizeof fresh, "%s-%s", agency.label, day);
        label = fresh;
    }
    if (!s_label_valid(label))
        return vd_cli_usage_error("keygen", "invalid label '%s' (use [a-z0-9-])", label);
    if (strcmp(label, agency.label) == 0)
        return vd_cli_usage_error("keygen", "the new key needs a label other than '%s'", label);
    char secret_path[PATH_MAX], public_path[PATH_MAX];
    if (!s_key_paths(dir, agency.org, label, secret_path, public_path))
        return vd_cli_usage_error("keygen", "output directory path too long: %s", dir);
    rc = vd_keygen_rotate(old_path, label, secret_path, public_path);
    if (rc != VD_OK) {
        fprintf(stderr, "vedetta keygen: cannot write %s or %s: %s\n", secret_path, public_path,
                rc == VD_EIO ? "a file exists or the directory is not writable" : vd_strerror(rc));
        return EXIT_USAGE;
    }
    vdp_agency_t next;
    if (vdp_agency_load(public_path, &next, err, sizeof err) != VD_OK) {
        fprintf(stderr, "vedetta keygen: %s: cannot read back: %s\n", public_path, err);
        return EXIT_USAGE;
    }
    printf("secret: %s\nagency: %s\ncurve-public: %s\nreplaces: %s\n", secret_path, public_path,
           next.curve_public, agency.curve_public);
    fprintf(stderr,
            "vedetta keygen: next: install %s in the broker's registry and reload it; move the "
            "system to %s; then set status = \"revoked\" in the old key's .agency file and "
            "reload again\n",
            public_path, secret_path);
    return EXIT_OK;
}

static int
s_cmd_keygen(int argc, char **argv)
{
    static const struct option options[] = { { "org", required_argument, NULL, 'o' },
                                             { "name", required_argument, NULL, 'n' },
                                             { "role", required_argument, NULL, 'r' },
                                             { "jurisdiction", required_argument, NULL, 'j' },
                                             { "label", required_argument, NULL, 'l' },
                                             { "out", required_argument, NULL, 'd' },
                                             { "rotate", required_argument, NULL, 'R' },
                                             { "help", no_argument, NULL, 'h' },
                                             { NULL, 0, NULL, 0 } };
    const char *org = NULL, *name = NULL, *role = NULL, *jur = NULL, *rotate = NULL;
    const char *label = NULL, *dir = ".";
    int opt;
    while ((opt = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        switch (opt) {
        case 'o':
            org = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'r':
            role = optarg;
            break;
        case 'j':
            jur = optarg;
            break;
        case 'l':
            label = optarg;
            break;
        case 'd':
            dir = optarg;
            break;
        case 'R':
            rotate = optarg;
            break;
        case 'h':
            fputs(s_keygen_help, stdout);
            return EXIT_OK;
        case ':':
            return vd_cli_usage_error("keygen", "option %s needs a value", argv[optind - 1]);
        default:
            return vd_cli_usage_error("keygen", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return vd_cli_usage_error("keygen", "unexpected argument '%s'", argv[optind]);
    if (rotate)
        return s_keygen_rotate(rotate, label, dir, org || name || role || jur);
    if (!label)
        label = "default";
    if (!org || !name || !role || !jur)
        return vd_cli_usage_error("keygen",
                                  "--org, --name, --role and --jurisdiction are required");
    vdp_role_t role_id = vdp_role_from_name(role);
    if (role_id == VDP_ROLE_NONE)
        return vd_cli_usage_error("keygen", "unknown role '%s'", role);
    if (!vdp_org_valid(org))
        return vd_cli_usage_error("keygen", "invalid org id '%s'", org);
    if (vdp_org_role(org) != role_id)
        return vd_cli_usage_error("keygen", "org id '%s' does not match the role", org);
    if (!s_jurisdictions_valid(jur))
        return vd_cli_usage_error("keygen", "invalid jurisdiction list '%s'", jur);
    if (!*label || strlen(label) > VDP_MAX_LABEL ||
        strspn(label, "abcdefghijklmnopqrstuvwxyz"
                      "0123456789-") != strlen(label))
        return vd_cli_usage_error("keygen", "invalid label '%s' (use [a-z0-9-])", label);
    if (strlen(name) > VDP_MAX_NAME)
        return vd_cli_usage_error("keygen", "name too long: '%s'", name);

    char slug[VDP_MAX_ORG + 1];
    if (vdp_org_slug(org, slug, sizeof slug) != 0)
        return vd_cli_usage_error("keygen", "invalid org id '%s'", org);
    char secret_path[PATH_MAX], public_path[PATH_MAX];
    int n1 = snprintf(secret_path, sizeof secret_path, "%s/%s.%s.secret", dir, slug, label);
    int n2 = snprintf(public_path, sizeof public_path, "%s/%s.%s.agency", dir, slug, label);
    if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof secret_path || (size_t)n2 >= sizeof public_path)
        return vd_cli_usage_error("keygen", "output directory path too long: %s", dir);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "vedetta keygen: %s: not a directory\n", dir);
        return EXIT_USAGE;
    }
    const char *existing = lstat(secret_path, &st) == 0   ? secret_path
                           : lstat(public_path, &st) == 0 ? public_path
                                                          : NULL;
    if (existing) {
        fprintf(stderr, "vedetta keygen: %s exists; refusing to overwrite a key\n", existing);
        return EXIT_USAGE;
    }
    int rc = vd_keygen(org, name, role, jur, label, secret_path, public_path);
    if (rc != VD_OK) {
        fprintf(stderr, "vedetta keygen: cannot write %s or %s: %s\n", secret_path, public_path,
                vd_strerror(rc));
        return EXIT_USAGE;
    }
    vdp_agency_t agency;
    char err[256] = "";
    if (vdp_agency_load(public_path, &agency, err, sizeof err) != VD_OK) {
        fprintf(stderr, "vedetta keygen: %s: cannot read back: %s\n", public_path, err);
        return EXIT_USAGE;
    }
    printf("secret: %s\nagency: %s\ncurve-public: %s\n", secret_path, public_path,
           agency.curve_public);
    return EXIT_OK;
}

/*  -------------------------------------------------------------------------------------------
    Connection options, shared by pub and sub  */

typedef struct {
    const char *broker;     // endpoint
    const char *broker_key; // Z85 or path of the broker's .agency file
    const char *key;        // our secret file
    int timeout_ms;
    bool timeout_set;
} s_conn_t;

static void
s_conn_defaults(s_conn_t *conn)
{
    conn->broker = getenv("VEDETTA_BROKER");
    conn->broker_key = getenv("VEDETTA_BROKER_KEY");
    conn->key = getenv("VEDETTA_KEY");
    conn->timeout_ms = CLI_DEFAULT_TIMEOUT_MS;
    conn->timeout_set = false;
}

#define S_CONN_OPTIONS                                                                             \
    { "broker", required_argument, NULL, 'B' }, { "broker-key", required_argument, NULL, 'K' },    \
        { "key", required_argument, NULL, 'k' }, { "timeout", required_argument, NULL, 'T' },      \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }

static const char *s_conn_help =
    "Connection:\n"
    "  --broker ENDPOINT    the broker, e.g. tcp://127.0.0.1:7447 (env VEDETTA_BROKER)\n"
    "  --broker-key KEY     the broker's CURVE public key (40-char Z85) or the path of its\n"
    "                       .agency file (env VEDETTA_BROKER_KEY)\n"
    "  --key SECRETFILE     this agency's secret key file, mode 0600 (env VEDETTA_KEY)\n";

//  Handles a connection option; returns false if `opt` is not one.
static bool
s_conn_option(s_conn_t *conn, int opt, const char *arg, const char *command, int *exit_code)
{
    long long value;
    switch (opt) {
    case 'B':
        conn->broker = arg;
        return true;
    case 'K':
        conn->broker_key = arg;
        return true;
    case 'k':
        conn->key = arg;
        return true;
    case 'T':
        if (!s_parse_int(arg, INT_MAX, &value)) {
            *exit_code = vd_cli_usage_error(command, "invalid --timeout '%s' (milliseconds)", arg);
            return true;
        }
        conn->timeout_ms = (int)value;
        conn->timeout_set = true;
        return true;
    default:
        return false;
    }
}

//  Resolves --broker-key: a readable file is an .agency file, anything else must be Z85.
static int
s_broker_key(const char *command, const char *arg, char out[VDP_KEY_Z85_LEN + 1])
{
    struct stat st;
    if (stat(arg, &st) == 0) {
        vdp_agency_t agency;
        char err[256] = "";
        if (vdp_agency_load(arg, &agency, err, sizeof err) != VD_OK) {
            fprintf(stderr, "vedetta %s: --broker-key %s: %s\n", command, arg, err);
            return EXIT_USAGE;
        }
        memcpy(out, agency.curve_public, VDP_KEY_Z85_LEN + 1);
        return EXIT_OK;
    }
    if (strlen(arg) != VDP_KEY_Z85_LEN) {
        fprintf(stderr,
                "vedetta %s: --broker-key: '%s' is neither a 40-character Z85 key nor "
                "an .agency file\n",
                command, arg);
        return EXIT_USAGE;
    }
    memcpy(out, arg, VDP_KEY_Z85_LEN + 1);
    return EXIT_OK;
}

//  A connected client in *client_p, or an exit code.
static int
s_connect(const char *command, const s_conn_t *conn, int timeout_ms, vd_client_t **client_p)
{
    if (!conn->broker || !conn->broker_key || !conn->key)
        return vd_cli_usage_error(command, "--broker, --broker-key and --key are required (or "
                                           "VEDETTA_BROKER, VEDETTA_BROKER_KEY, VEDETTA_KEY)");
    char server_key[VDP_KEY_Z85_LEN + 1];
    int code = s_broker_key(command, conn->broker_key, server_key);
    if (code != EXIT_OK)
        return code;
    vd_client_t *client = vd_client_new();
    if (!client) {
        fprintf(stderr, "vedetta %s: out of memory\n", command);
        return EXIT_USAGE;
    }
    int rc = vd_client_connect(client, conn->broker, server_key, conn->key, timeout_ms);
    if (rc != VD_OK) {
        s_report(command, conn->broker, rc, vd_client_reason(client));
        vd_client_destroy(&client);
        return s_exit_for(rc);
    }
    *client_p = client;
    return EXIT_OK;
}

/*  -------------------------------------------------------------------------------------------
    pub  */

static const char *s_pub_help =
    "Usage: vedetta pub --topic TOPIC --tlp TLP [options] [--body TEXT]\n"
    "\n"
    "Publishes one message and prints the broker's receipt as one JSON line:\n"
    "  {\"id\",\"status\":\"accepted\"|\"duplicate\",\"seq\",\"accepted_at\",\"accepted_at_iso\"}\n"
    "  {\"id\",\"status\":\"rejected\",\"code\",\"error\",\"reason\"}\n"
    "The body is --body TEXT, or else everything read from stdin.\n"
    "Exit: 0 accepted or duplicate, 1 usage or I/O error, 2 rejected, 3 timeout or no\n"
    "connection.\n"
    "\n"
    "Message:\n"
    "  --topic TOPIC        e.g. alert.toscana.i726, bulletin.toscana, inbox (with --to)\n"
    "  --tlp TLP            clear | green | amber | amber+strict | red (required, no default)\n"
    "  --kind KIND          alert | update | cancel | ack | error (default: alert)\n"
    "  --status STATUS      actual | exercise | test | system | draft (default: actual)\n"
    "  --category CAT       e.g. malware, phishing, ddos, other (default: other)\n"
    "  --severity SEV       extreme | severe | moderate | minor | unknown (default: unknown)\n"
    "  --ctype TYPE         body media type (default: text/plain)\n"
    "  --to ORG             a recipient org id; repeat for more (required for red and inbox)\n"
    "  --ref SENDER/ID      a message this one refers to; repeat for more (required for\n"
    "                       update, cancel, ack, error)\n"
    "  --id UUID            message id (default: a new random UUID; reuse it to retry)\n"
    "  --incident X         incident identifier shared by related messages\n"
    "  --stage S            early-warning | notification | intermediate | final | progress\n"
    "  --aware-at MS        when the incident became known (UTC ms since the epoch)\n"
    "  --expires MS         when the message stops being relevant (UTC ms)\n"
    "  --ack-by MS          acknowledgement requested by (UTC ms)\n"
    "  --urgency U          immediate | expected | future | past | unknown\n"
    "  --certainty C        observed | likely | possible | unlikely | unknown\n"
    "  --lang L             language tag of the body, e.g. it\n"
    "  --body TEXT          the body (default: read stdin to its end)\n"
    "  --timeout MS         wait at most MS for the connection, and again for the receipt\n"
    "                       (default: 5000)\n";

//  Reads all of stdin into a new buffer (at most VDP_MAX_BODY bytes). Caller frees.
static int
s_read_stdin(unsigned char **data_p, size_t *size_p)
{
    size_t cap = 4096, size = 0;
    unsigned char *data = malloc(cap);
    if (!data)
        return VD_ENOMEM;
    for (;;) {
        if (size == cap) {
            if (cap > VDP_MAX_BODY) {
                free(data);
                return VD_ELIMIT;
            }
            unsigned char *grown = realloc(data, cap * 2);
            if (!grown) {
                free(data);
                return VD_ENOMEM;
            }
            data = grown;
            cap *= 2;
        }
        size_t n = fread(data + size, 1, cap - size, stdin);
        size += n;
        if (n == 0) {
            if (ferror(stdin)) {
                free(data);
                return VD_EIO;
            }
            break;
        }
    }
    if (size > VDP_MAX_BODY) {
        free(data);
        return VD_ELIMIT;
    }
    *data_p = data;
    *size_p = size;
    return VD_OK;
}

static void
s_print_receipt(const vd_receipt_t *receipt)
{
    json_t *obj = json_object();
    json_object_set_new(obj, "id", json_string(receipt->id));
    json_object_set_new(obj, "status", json_string(vd_receipt_status_name(receipt->status)));
    if (receipt->status == VD_RECEIPT_REJECTED) {
        json_object_set_new(obj, "code", json_string(vd_strerror_name(receipt->code)));
        json_object_set_new(obj, "error", json_string(vd_strerror(receipt->code)));
        json_object_set_new(obj, "reason", json_string(receipt->reason));
        if (receipt->retry_after_ms > 0)
            json_object_set_new(obj, "retry_after_ms", json_integer(receipt->retry_after_ms));
    } else {
        json_object_set_new(obj, "seq", json_integer((json_int_t)receipt->seq));
        char iso[VD_ISO8601_SIZE];
        if (receipt->accepted_at > 0 && vd_iso8601(receipt->accepted_at, iso, sizeof iso) == 0) {
            json_object_set_new(obj, "accepted_at", json_integer(receipt->accepted_at));
            json_object_set_new(obj, "accepted_at_iso", json_string(iso));
        }
    }
    char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text) {
        puts(text);
        free(text);
    }
    fflush(stdout);
    json_decref(obj);
}

//  The option name of each message field set from the command line, for error messages.
typedef struct {
    int opt;
    const char *field;
    const char *option;
} s_field_opt_t;

static const s_field_opt_t s_field_opts[] = {
    { 't', "topic", "--topic" },       { 'L', "tlp", "--tlp" },
    { 'i', "kind", "--kind" },         { 's', "status", "--status" },
    { 'c', "category", "--category" }, { 'v', "severity", "--severity" },
    { 'y', "ctype", "--ctype" },       { 'o', "to", "--to" },
    { 'r', "refs", "--ref" },          { 'I', "id", "--id" },
    { 'n', "incident", "--incident" }, { 'g', "stage", "--stage" },
    { 'u', "urgency", "--urgency" },   { 'e', "certainty", "--certainty" },
    { 'l', "lang", "--lang" },         { 'A', "aware_at", "--aware-at" },
    { 'x', "expires", "--expires" },   { 'a', "ack_by", "--ack-by" },
};

static const s_field_opt_t *
s_field_opt(int opt)
{
    for (size_t i = 0; i < sizeof s_field_opts / sizeof s_field_opts[0]; i++) {
        if (s_field_opts[i].opt == opt)
            return &s_field_opts[i];
    }
    return NULL;
}

//  Sets one field from its option; returns an exit code.
static int
s_pub_field(vd_envelope_t *env, const s_field_opt_t *fo, const char *arg)
{
    int rc;
    if (fo->opt == 'A' || fo->opt == 'x' || fo->opt == 'a') {
        long long ms;
        if (!s_parse_int(arg, INT64_MAX, &ms))
            return vd_cli_usage_error("pub", "invalid time '%s' (UTC milliseconds)", arg);
        rc = vd_envelope_set_time(env, fo->field, ms);
    } else {
        rc = vd_envelope_set(env, fo->field, arg);
    }
    if (rc == VD_ELIMIT) {
        fprintf(stderr, "vedetta pub: %s '%s': too long or too many\n", fo->option, arg);
        return EXIT_USAGE;
    }
    if (rc != VD_OK) {
        fprintf(stderr, "vedetta pub: %s: invalid value '%s'\n", fo->option, arg);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int
s_pub_defaults(vd_envelope_t *env)
{
    static const char *defaults[][2] = { { "kind", "alert" },
                                         { "status", "actual" },
                                         { "category", "other" },
                                         { "severity", "unknown" },
                                         { "ctype", "text/plain" } };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        if (vd_envelope_set(env, defaults[i][0], defaults[i][1]) != VD_OK)
            return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int
s_pub_send(const s_conn_t *conn, vd_envelope_t *env)
{
    vd_client_t *client = NULL;
    int code = s_connect("pub", conn, conn->timeout_ms, &client);
    if (code != EXIT_OK)
        return code;
    vd_receipt_t receipt;
    int rc = vd_client_publish(client, env, &receipt, conn->timeout_ms);
    if (rc == VD_OK) {
        s_print_receipt(&receipt);
        code = receipt.status == VD_RECEIPT_REJECTED ? EXIT_DENIED : EXIT_OK;
    } else {
        s_report("pub", rc == VD_ETIMEOUT ? "no receipt" : "cannot publish", rc,
                 vd_client_reason(client));
        code = s_exit_for(rc);
    }
    vd_client_destroy(&client);
    return code;
}

static int
s_cmd_pub(int argc, char **argv)
{
    static const struct option options[] = { S_CONN_OPTIONS,
                                             { "topic", required_argument, NULL, 't' },
                                             { "tlp", required_argument, NULL, 'L' },
                                             { "kind", required_argument, NULL, 'i' },
                                             { "status", required_argument, NULL, 's' },
                                             { "category", required_argument, NULL, 'c' },
                                             { "severity", required_argument, NULL, 'v' },
                                             { "ctype", required_argument, NULL, 'y' },
                                             { "to", required_argument, NULL, 'o' },
                                             { "ref", required_argument, NULL, 'r' },
                                             { "id", required_argument, NULL, 'I' },
                                             { "incident", required_argument, NULL, 'n' },
                                             { "stage", required_argument, NULL, 'g' },
                                             { "aware-at", required_argument, NULL, 'A' },
                                             { "expires", required_argument, NULL, 'x' },
                                             { "ack-by", required_argument, NULL, 'a' },
                                             { "urgency", required_argument, NULL, 'u' },
                                             { "certainty", required_argument, NULL, 'e' },
                                             { "lang", required_argument, NULL, 'l' },
                                             { "body", required_argument, NULL, 'b' },
                                             { NULL, 0, NULL, 0 } };
    s_conn_t conn;
    s_conn_defaults(&conn);
    vd_envelope_t *env = vd_envelope_new();
    if (!env || s_pub_defaults(env) != EXIT_OK) {
        vd_envelope_destroy(&env);
        fprintf(stderr, "vedetta pub: out of memory\n");
        return EXIT_USAGE;
    }
    const char *body = NULL;
    bool have_topic = false, have_tlp = false;
    int code = EXIT_OK;
    int opt;
    while (code == EXIT_OK && (opt = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        const s_field_opt_t *fo = s_field_opt(opt);
        if (fo) {
            code = s_pub_field(env, fo, optarg);
            have_topic |= opt == 't';
            have_tlp |= opt == 'L';
        } else if (opt == 'b') {
            body = optarg;
        } else if (opt == 'h') {
            fputs(s_pub_help, stdout);
            fputs(s_conn_help, stdout);
            vd_envelope_destroy(&env);
            return EXIT_OK;
        } else if (opt == ':') {
            code = vd_cli_usage_error("pub", "option %s needs a value", argv[optind - 1]);
        } else if (!s_conn_option(&conn, opt, optarg, "pub", &code)) {
            code = vd_cli_usage_error("pub", "unknown option %s", argv[optind - 1]);
        }
    }
    if (code == EXIT_OK && optind < argc)
        code = vd_cli_usage_error("pub", "unexpected argument '%s'", argv[optind]);
    if (code == EXIT_OK && (!have_topic || !have_tlp))
        code = vd_cli_usage_error("pub", "--topic and --tlp are required (TLP has no default)");
    if (code == EXIT_OK) {
        int rc;
        if (body) {
            rc = vd_envelope_set_body(env, body, strlen(body));
        } else {
            unsigned char *data = NULL;
            size_t size = 0;
            rc = s_read_stdin(&data, &size);
            if (rc == VD_OK)
                rc = vd_envelope_set_body(env, data, size);
            free(data);
        }
        if (rc != VD_OK) {
            fprintf(stderr, "vedetta pub: body: %s\n",
                    rc == VD_ELIMIT ? "larger than 1 MiB" : vd_strerror(rc));
            code = EXIT_USAGE;
        }
    }
    if (code == EXIT_OK)
        code = s_pub_send(&conn, env);
    vd_envelope_destroy(&env);
    return code;
}

/*  -------------------------------------------------------------------------------------------
    sub  */

static const char *s_sub_help =
    "Usage: vedetta sub PATTERN... [--durable NAME] [--from-seq N | --since TIME]\n"
    "                   [--count N] [--timeout MS] [--connect-timeout MS] [--verify DIR]\n"
    "\n"
    "Subscribes to each PATTERN ('*' one segment, '>' the rest, e.g. alert.toscana.>) and\n"
    "prints every delivered message as one JSON object per line, flushed at once. Each line\n"
    "carries the broker's \"seq\", and \"durable\" on a durable subscription.\n"
    "Prints \"subscribed PATTERN\" on stderr for each subscription the broker accepts.\n"
    "Exit: 0 after --count messages, after --timeout without a message, or on SIGINT/SIGTERM;\n"
    "1 usage or I/O error; 2 a subscription was denied; 3 timeout or no connection.\n"
    "\n"
    "  --count N            stop after N messages\n"
    "  --timeout MS         stop after MS without a message (default: run until a signal)\n"
    "  --connect-timeout MS wait at most MS for the connection and for each subscription\n"
    "                       (default: 5000)\n"
    "\n"
    "History (the broker must have a store):\n"
    "  --durable NAME       a durable subscription: the broker keeps a cursor for this key and\n"
    "                       NAME (1-64 of [A-Za-z0-9._-]). A new NAME starts now, a known one\n"
    "                       resumes after the last message acknowledged. Each message is\n"
    "                       acknowledged once its line has been written and flushed: what was\n"
    "                       not printed comes again next time (deduplicate by \"id\": a line\n"
    "                       printed just before a crash may come twice)\n"
    "  --from-seq N         replay from seq N on, then go on live\n"
    "  --since TIME         replay from the first message accepted at or after TIME, then go\n"
    "                       on live. TIME is ISO-8601 UTC (2026-11-22T10:00:00Z, optionally\n"
    "                       with milliseconds: 2026-11-22T10:00:00.250Z) or an age: 90s, 15m,\n"
    "                       2h, 3d (now minus it)\n"
    "--durable takes one PATTERN. With --durable, --from-seq or --since says where the cursor\n"
    "starts (a known NAME is rewound to it). --from-seq and --since exclude each other.\n"
    "\n"
    "Signatures:\n"
    "  --verify DIR         check each message's signature against the public .agency files\n"
    "                       in DIR (the senders' keys, as the broker's registry holds them).\n"
    "                       Each line then also carries \"verified\": true with \"signer\"\n"
    "                       (\"comune:i726/siem\": org/label of the key), and\n"
    "                       \"signer_revoked\": true if that key is revoked now; or false with\n"
    "                       \"verify_code\" (ESIG, ENOTFOUND) and \"verify_reason\". Every\n"
    "                       message is printed either way: select on \"verified\"\n"
    "\n";

#define MS_PER_SECOND 1000LL

typedef struct {
    long long count;          // stop after this many messages; 0: never
    long long connect_ms;     // wait for the connection and for each subscription's answer
    vd_sub_options_t history; // durable name and where a replay starts; zeros: live only
    const char *verify_dir;   // --verify: the keyring's directory; NULL: no checking
} s_sub_args_t;

//  Now, in UTC ms since the epoch.
static int64_t
s_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * MS_PER_SECOND + now.tv_nsec / 1000000;
}

//  An age ("90s", "15m", "2h", "3d") as the UTC ms that long before `now_ms`.
static bool
s_parse_age(const char *text, int64_t now_ms, int64_t *ms)
{
    static const struct {
        char unit;
        long long ms;
    } units[] = { { 's', MS_PER_SECOND },
                  { 'm', 60 * MS_PER_SECOND },
                  { 'h', 3600 * MS_PER_SECOND },
                  { 'd', 86400 * MS_PER_SECOND } };
    size_t len = strlen(text);
    char number[24];
    if (len < 2 || len > sizeof number)
        return false;
    memcpy(number, text, len - 1);
    number[len - 1] = '\0';
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        long long count;
        //  At most back to the epoch's first ms: 0 would ask for no replay at all.
        if (text[len - 1] == units[i].unit &&
            s_parse_int(number, (now_ms - 1) / units[i].ms, &count)) {
            *ms = now_ms - count * units[i].ms;
            return true;
        }
    }
    return false;
}

//  --since TIME as UTC ms (at least 1: 0 means no replay).
static bool
s_parse_since(const char *text, int64_t *ms)
{
    if (!s_parse_age(text, s_now_ms(), ms) && vd_iso8601_parse(text, ms) != VD_OK)
        return false;
    if (*ms == 0)
        *ms = 1; // the epoch itself: every message is after it anyway
    return true;
}

//  Handles a history option; returns false if `opt` is not one.
static bool
s_history_option(vd_sub_options_t *history, int opt, const char *arg, int *exit_code)
{
    long long seq;
    switch (opt) {
    case 'D':
        if (!vdp_durable_valid(arg))
            *exit_code = vd_cli_usage_error(
                "sub", "invalid --durable '%s' (1 to 64 of [A-Za-z0-9._-])", arg);
        history->durable = arg;
        return true;
    case 'F':
        if (!s_parse_int(arg, LLONG_MAX, &seq) || seq == 0)
            *exit_code =
                vd_cli_usage_error("sub", "invalid --from-seq '%s' (a seq, 1 or more)", arg);
        history->from_seq = (uint64_t)seq;
        return true;
    case 'S':
        if (!s_parse_since(arg, &history->since_ms))
            *exit_code = vd_cli_usage_error("sub",
                                            "invalid --since '%s' (an ISO-8601 UTC time like "
                                            "2026-11-22T10:00:00Z, or an age like 15m, 2h, 3d)",
                                            arg);
        return true;
    default:
        return false;
    }
}

//  Parses sub's options into `conn` and `args`; returns an exit code.
static int
s_sub_parse(int argc, char **argv, s_conn_t *conn, s_sub_args_t *args, bool *help)
{
    static const struct option options[] = { S_CONN_OPTIONS,
                                             { "count", required_argument, NULL, 'n' },
                                             { "connect-timeout", required_argument, NULL, 'C' },
                                             { "durable", required_argument, NULL, 'D' },
                                             { "from-seq", required_argument, NULL, 'F' },
                                             { "since", required_argument, NULL, 'S' },
                                             { "verify", required_argument, NULL, 'V' },
                                             { NULL, 0, NULL, 0 } };
    int code = EXIT_OK;
    int opt;
    while (code == EXIT_OK && (opt = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        if (opt == 'h') {
            *help = true;
            return EXIT_OK;
        } else if (opt == 'n') {
            if (!s_parse_int(optarg, LLONG_MAX, &args->count) || args->count == 0)
                code = vd_cli_usage_error("sub", "invalid --count '%s'", optarg);
        } else if (opt == 'C') {
            if (!s_parse_int(optarg, INT_MAX, &args->connect_ms))
                code = vd_cli_usage_error("sub", "invalid --connect-timeout '%s'", optarg);
        } else if (opt == 'V') {
            args->verify_dir = optarg;
        } else if (opt == ':') {
            code = vd_cli_usage_error("sub", "option %s needs a value", argv[optind - 1]);
        } else if (!s_history_option(&args->history, opt, optarg, &code) &&
                   !s_conn_option(conn, opt, optarg, "sub", &code)) {
            code = vd_cli_usage_error("sub", "unknown option %s", argv[optind - 1]);
        }
    }
    if (code != EXIT_OK)
        return code;
    if (args->history.from_seq && args->history.since_ms)
        return vd_cli_usage_error("sub", "--from-seq and --since exclude each other: give one");
    if (optind >= argc)
        return vd_cli_usage_error("sub", "at least one PATTERN is required");
    //  The broker keeps one cursor per name, not its patterns: a pattern added to a stream
    //  already catching up would miss what the stream has read past, and the cursor would then
    //  pass it. One pattern per durable subscription cannot miss anything.
    if (args->history.durable && argc - optind > 1)
        return vd_cli_usage_error("sub", "--durable takes one PATTERN (run one 'vedetta sub' per "
                                         "durable name, or use a wider pattern)");
    return EXIT_OK;
}

/*  What `sub` adds to a delivery's JSON line, in this order: "durable" on a durable
    subscription; with --verify, whether its signature verified and by which key. NULL if
    nothing (or out of memory: the line goes out without them, never lost).  */
static json_t *
s_delivery_extras(const vd_envelope_t *env, vd_keyring_t *keys)
{
    const char *durable = vd_envelope_durable(env);
    if (!durable && !keys)
        return NULL;
    json_t *extras = json_object();
    if (!extras)
        return NULL;
    if (durable)
        json_object_set_new(extras, "durable", json_string(durable));
    if (keys) {
        vd_signer_t signer;
        char reason[256] = "";
        int rc = vd_envelope_verify(keys, env, &signer, reason, sizeof reason);
        json_object_set_new(extras, "verified", json_boolean(rc == VD_OK));
        if (rc == VD_OK) {
            char who[sizeof signer.org + sizeof signer.label];
            snprintf(who, sizeof who, "%s/%s", signer.org, signer.label);
            json_object_set_new(extras, "signer", json_string(who));
            if (signer.revoked)
                json_object_set_new(extras, "signer_revoked", json_true());
        } else {
            json_object_set_new(extras, "verify_code", json_string(vd_strerror_name(rc)));
            json_object_set_new(extras, "verify_reason",
                                json_string(*reason ? reason : vd_strerror(rc)));
        }
    }
    return extras;
}

/*  The JSON line of a delivery: vd_envelope_to_json(), plus `sub`'s own fields
    (s_delivery_extras) next to "subscription" and before the body, like the other broker
    stamps. Caller frees; NULL if out of memory.  */
static char *
s_delivery_json(const vd_envelope_t *env, vd_keyring_t *keys)
{
    char *text = vd_envelope_to_json(env);
    json_t *extras = text ? s_delivery_extras(env, keys) : NULL;
    if (!extras)
        return text;
    json_t *parsed = json_loads(text, JSON_ALLOW_NUL, NULL);
    free(text);
    json_t *line = json_object();
    bool placed = false, failed = !parsed || !line;
    const char *key;
    json_t *value;
    if (!failed) {
        json_object_foreach(parsed, key, value)
        {
            if (json_object_get(extras, key))
                continue; // ours goes in its own place
            if (!placed && (strcmp(key, "body") == 0 || strcmp(key, "body_b64") == 0)) {
                failed |= json_object_update(line, extras) != 0;
                placed = true;
            }
            failed |= json_object_set(line, key, value) != 0;
        }
        if (!placed)
            failed |= json_object_update(line, extras) != 0;
    }
    text = failed ? NULL : json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(parsed);
    json_decref(line);
    json_decref(extras);
    return text;
}

//  Writes one delivery as a JSON line; false if stdout is gone.
static bool
s_print_delivery(const vd_envelope_t *env, vd_keyring_t *keys)
{
    char *text = s_delivery_json(env, keys);
    if (!text) {
        fprintf(stderr, "vedetta sub: out of memory formatting a message (seq %llu)\n",
                (unsigned long long)vd_envelope_seq(env));
        return true;
    }
    bool ok = fputs(text, stdout) >= 0 && fputc('\n', stdout) != EOF && fflush(stdout) == 0;
    free(text);
    return ok;
}

/*  Acknowledges a delivery of a durable subscription whose line is out. Only after the flush:
    acknowledged but never printed would be lost. Sent at once rather than with a later batch:
    the fewer acknowledgements in flight, the fewer lines a crash makes us print twice. A failed
    ack loses nothing (the message comes again next time), so it is only reported.  */
static void
s_ack(vd_client_t *client, const vd_envelope_t *env)
{
    if (!vd_envelope_durable(env))
        return;
    int rc = vd_client_ack(client, env);
    if (rc != VD_OK) {
        fprintf(stderr, "vedetta sub: seq %llu not acknowledged (%s): it may come again\n",
                (unsigned long long)vd_envelope_seq(env), vd_strerror_name(rc));
        return;
    }
    vd_client_flush(client); // if libzmq's queue is full, the ack stays queued for the next try
}

//  Receives until done, checking signatures with `keys` if not NULL; returns an exit code.
static int
s_sub_loop(vd_client_t *client, vd_keyring_t *keys, long long count, int idle_ms)
{
    long long received = 0;
    int waited = 0;
    while (!s_stop && (count == 0 || received < count)) {
        int slice = CLI_SLICE_MS;
        if (idle_ms >= 0 && idle_ms - waited < slice)
            slice = idle_ms - waited;
        vd_envelope_t *env = NULL;
        int rc = vd_client_recv(client, &env, slice);
        if (rc == VD_OK) {
            bool ok = s_print_delivery(env, keys);
            if (ok)
                s_ack(client, env);
            vd_envelope_destroy(&env);
            if (!ok) {
                fprintf(stderr, "vedetta sub: cannot write to stdout\n");
                return EXIT_USAGE;
            }
            received++;
            waited = 0;
        } else if (rc == VD_ETIMEOUT) {
            waited += slice;
            if (idle_ms >= 0 && waited >= idle_ms)
                break;
        } else {
            s_report("sub", "connection", rc, vd_client_reason(client));
            return s_exit_for(rc);
        }
    }
    return EXIT_OK;
}

//  Subscribes to each pattern with the same history options; returns an exit code.
static int
s_sub_patterns(vd_client_t *client, char **patterns, int count, const s_sub_args_t *args)
{
    for (int i = 0; i < count; i++) {
        char reason[VDP_MAX_REASON + 1];
        int rc = vd_client_subscribe_from(client, patterns[i], &args->history, reason,
                                          sizeof reason, (int)args->connect_ms);
        if (rc != VD_OK) {
            fprintf(stderr, "vedetta sub: %s: %s (%s)\n", patterns[i], reason,
                    vd_strerror_name(rc));
            return s_exit_for(rc);
        }
        fprintf(stderr, "subscribed %s\n", patterns[i]);
    }
    return EXIT_OK;
}

static int
s_cmd_sub(int argc, char **argv)
{
    s_conn_t conn;
    s_conn_defaults(&conn);
    s_sub_args_t args = { .count = 0, .connect_ms = CLI_DEFAULT_TIMEOUT_MS };
    bool help = false;
    int code = s_sub_parse(argc, argv, &conn, &args, &help);
    if (help) {
        fputs(s_sub_help, stdout);
        fputs(s_conn_help, stdout);
        return EXIT_OK;
    }
    if (code != EXIT_OK)
        return code;

    //  Before connecting: a keyring that does not load is a usage error, and the broker need
    //  not be bothered for it.
    vd_keyring_t *keys = NULL;
    if (args.verify_dir) {
        char reason[512] = "";
        keys = vd_keyring_load(args.verify_dir, reason, sizeof reason);
        if (!keys) {
            fprintf(stderr, "vedetta sub: --verify: %s\n", reason);
            return EXIT_USAGE;
        }
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); // a closed pipe shows up as a write error: exit cleanly

    vd_client_t *client = NULL;
    code = s_connect("sub", &conn, (int)args.connect_ms, &client);
    if (code == EXIT_OK)
        code = s_sub_patterns(client, argv + optind, argc - optind, &args);
    if (code == EXIT_OK)
        code = s_sub_loop(client, keys, args.count, conn.timeout_set ? conn.timeout_ms : -1);
    vd_client_destroy(&client); // sends the last acknowledgements before bye
    vd_keyring_destroy(&keys);
    return code;
}

/*  -------------------------------------------------------------------------------------------
    main  */

static const char *s_help =
    "Usage: vedetta COMMAND [options]\n"
    "\n"
    "The command-line client of the vedetta broker.\n"
    "\n"
    "Commands:\n"
    "  keygen    create an agency key (secret file and public .agency file)\n"
    "  pub       publish one message and print its receipt\n"
    "  sub       subscribe and print delivered messages as JSON lines\n"
    "  admin     ask the broker on this machine: reload, stats\n"
    "  audit     verify or query the broker's audit log\n"
    "  help      this text\n"
    "\n"
    "Run 'vedetta COMMAND --help' for a command's options. Exit codes: 0 ok, 1 usage or I/O\n"
    "error, 2 rejected or denied, 3 timeout or connection failure.\n";

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(s_help, stderr);
        return EXIT_USAGE;
    }
    const char *command = argv[1];
    if (strcmp(command, "help") == 0 || strcmp(command, "--help") == 0 ||
        strcmp(command, "-h") == 0) {
        fputs(s_help, stdout);
        return EXIT_OK;
    }
    if (strcmp(command, "--version") == 0 || strcmp(command, "version") == 0) {
        printf("vedetta %s\n", VD_VERSION_STRING);
        return EXIT_OK;
    }
    //  Each command parses argv[1..]: getopt sees the command name as argv[0].
    if (strcmp(command, "keygen") == 0)
        return s_cmd_keygen(argc - 1, argv + 1);
    if (strcmp(command, "pub") == 0)
        return s_cmd_pub(argc - 1, argv + 1);
    if (strcmp(command, "sub") == 0)
        return s_cmd_sub(argc - 1, argv + 1);
    if (strcmp(command, "admin") == 0)
        return vd_admin_command(argc - 1, argv + 1);
    if (strcmp(command, "audit") == 0)
        return vd_audit_command(argc - 1, argv + 1);
    fprintf(stderr, "vedetta: unknown command '%s'\n\n", command);
    fputs(s_help, stderr);
    return EXIT_USAGE;
}

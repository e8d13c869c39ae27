/*  vedettad: the vedetta broker. argv, configuration, signals, start the server; nothing else.
    Exit codes: 0 stopped by SIGTERM/SIGINT (or --check passed), 1 runtime failure,
    2 bad command line, configuration, policy, registry or key (the broker never starts on a
    configuration it cannot read: no open defaults).  */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>
#include <sodium.h>

#include "vdb_acl.h"
#include "vdb_config.h"
#include "vdb_log.h"
#include "vdb_server.h"
#include "vedetta.h"

static volatile sig_atomic_t s_stop = 0;
static volatile sig_atomic_t s_reload = 0;

static void
s_on_signal(int signum)
{
    if (signum == SIGHUP)
        s_reload = 1; // the loop reloads the registry and the policy between two rounds
    else
        s_stop = 1;
}

static void
s_usage(FILE *out)
{
    fprintf(out, "usage: vedettad [--config FILE] [options]\n"
                 "\n"
                 "The vedetta broker: CurveZMQ-authenticated, policy-enforced publish/subscribe\n"
                 "between agencies. Without --config it runs on the embedded defaults: endpoint\n"
                 "tcp://127.0.0.1:7447, key ./broker.secret, registry ./agencies, store\n"
                 "./vedetta.db, embedded policy.\n"
                 "\n"
                 "options:\n"
                 "  -c, --config FILE         configuration file (ZPL; see docs/operations.md)\n"
                 "  -e, --endpoint ENDPOINT   bind here instead (tcp://127.0.0.1:* picks a port)\n"
                 "  -f, --endpoint-file PATH  after binding, write the bound endpoint to PATH\n"
                 "  -p, --policy FILE         policy file instead of the configured/embedded one\n"
                 "  -r, --registry DIR        directory of agency files\n"
                 "  -k, --key FILE            the broker's secret key file\n"
                 "  -s, --store FILE          the message store (SQLite; default ./vedetta.db)\n"
                 "      --control PATH        the admin socket (default ./vedettad.ctl; '' none)\n"
                 "  -l, --log-level LEVEL     error, warning, notice (default), info or debug\n"
                 "      --check               load everything, report, and exit (0 if valid)\n"
                 "      --print-policy        print the embedded default policy and exit\n"
                 "  -h, --help                this text\n"
                 "  -V, --version             version\n");
}

//  Writes the bound endpoint atomically (tmp + rename), so a reader never sees half a line.
static int
s_write_endpoint_file(const char *path, const char *endpoint)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *file = fopen(tmp, "w");
    if (!file)
        return -1;
    int rc = fprintf(file, "%s\n", endpoint) < 0 ? -1 : 0;
    if (fclose(file) != 0)
        rc = -1;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int
main(int argc, char *argv[])
{
    enum { OPT_CHECK = 256, OPT_PRINT_POLICY, OPT_CONTROL };
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "endpoint", required_argument, NULL, 'e' },
        { "endpoint-file", required_argument, NULL, 'f' },
        { "policy", required_argument, NULL, 'p' },
        { "registry", required_argument, NULL, 'r' },
        { "key", required_argument, NULL, 'k' },
        { "store", required_argument, NULL, 's' },
        { "log-level", required_argument, NULL, 'l' },
        { "control", required_argument, NULL, OPT_CONTROL },
        { "check", no_argument, NULL, OPT_CHECK },
        { "print-policy", no_argument, NULL, OPT_PRINT_POLICY },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_path = NULL, *endpoint = NULL, *endpoint_file = NULL, *policy = NULL;
    const char *registry = NULL, *key = NULL, *store = NULL, *log_level = NULL, *control = NULL;
    int check_only = 0, opt;
    while ((opt = getopt_long(argc, argv, "c:e:f:p:r:k:s:l:hV", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'e':
            endpoint = optarg;
            break;
        case 'f':
            endpoint_file = optarg;
            break;
        case 'p':
            policy = optarg;
            break;
        case 'r':
            registry = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 's':
            store = optarg;
            break;
        case 'l':
            log_level = optarg;
            break;
        case OPT_CONTROL:
            control = optarg;
            break;
        case OPT_CHECK:
            check_only = 1;
            break;
        case OPT_PRINT_POLICY:
            fputs(vdb_policy_default_text(), stdout);
            return 0;
        case 'h':
            s_usage(stdout);
            return 0;
        case 'V':
            printf("vedettad %d.%d.%d\n", VD_VERSION_MAJOR, VD_VERSION_MINOR, VD_VERSION_PATCH);
            return 0;
        default:
            s_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vedettad: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }

    vdb_config_t config;
    char err[1024] = "";
    if (config_path) {
        if (vdb_config_load(&config, config_path, err, sizeof err) != VD_OK) {
            fprintf(stderr, "vedettad: configuration: %s\n", err);
            return 2;
        }
    } else
        vdb_config_defaults(&config, ".");
    const struct {
        const char *option, *value;
        char *target;
        size_t size;
    } overrides[] = {
        { "--endpoint", endpoint, config.endpoint, sizeof config.endpoint },
        { "--endpoint-file", endpoint_file, config.endpoint_file, sizeof config.endpoint_file },
        { "--policy", policy, config.policy, sizeof config.policy },
        { "--registry", registry, config.registry, sizeof config.registry },
        { "--key", key, config.secret, sizeof config.secret },
        { "--store", store, config.store, sizeof config.store },
        { "--control", control, config.control, sizeof config.control },
    };
    for (size_t i = 0; i < sizeof overrides / sizeof overrides[0]; i++) {
        if (!overrides[i].value)
            continue;
        if (strlen(overrides[i].value) >= overrides[i].size) {
            fprintf(stderr, "vedettad: %s: value too long\n", overrides[i].option);
            return 2;
        }
        memcpy(overrides[i].target, overrides[i].value, strlen(overrides[i].value) + 1);
    }
    if (log_level) {
        config.log_level = vdb_log_level_from_name(log_level);
        if (config.log_level < 0) {
            fprintf(stderr,
                    "vedettad: --log-level must be error, warning, notice, info or debug\n");
            return 2;
        }
    }

    //  Our handler, not CZMQ's: it sets the flag the loop checks, and nothing else.
    zsys_handler_set(NULL);
    struct sigaction action = { .sa_handler = s_on_signal };
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0) {
        fprintf(stderr, "vedettad: libsodium failed to initialise\n");
        return 1;
    }
    zsys_init();
    zsys_set_logident("vedetta");
    zsys_set_logstream(stderr);
    zsys_set_linger(0);
    vdb_log_set_level((vdb_log_level_t)config.log_level);

    vdb_server_t *server = vdb_server_new(&config, err, sizeof err);
    if (!server) {
        fprintf(stderr, "vedettad: %s\n", err);
        zsys_shutdown();
        return 2;
    }
    int rc = 0;
    if (check_only)
        printf("vedettad: configuration valid; would listen on %s\n", vdb_server_endpoint(server));
    else if (config.endpoint_file[0] &&
             s_write_endpoint_file(config.endpoint_file, vdb_server_endpoint(server)) != 0) {
        fprintf(stderr, "vedettad: cannot write %s: %s\n", config.endpoint_file, strerror(errno));
        rc = 1;
    } else if (vdb_server_run(server, &s_stop, &s_reload) != VD_OK)
        rc = 1;
    vdb_server_stats_t stats = vdb_server_stats(server);
    if (!check_only)
        vdb_log_notice("vedettad: stopping accepted=%" PRIu64 " duplicates=%" PRIu64
                       " rejected=%" PRIu64 " delivered=%" PRIu64 " withheld=%" PRIu64
                       " dropped=%" PRIu64 " errors=%" PRIu64,
                       stats.accepted, stats.duplicates, stats.rejected, stats.delivered,
                       stats.withheld, stats.dropped, stats.errors);
    vdb_server_destroy(&server);
    zsys_shutdown();
    return rc;
}

/*  vedetta-bench: one publisher -> one subscriber through vedettad, live (no store) and with
    its durable store (sync full), measured in the same run against two libzmq references with
    CURVE: PUB -> SUB direct, and PUB -> zmq_proxy -> SUB (a forwarder with no authentication,
    ACL or store). For each path and message size it reports throughput (deliveries, and on
    vedettad the publisher's receipts), one-way latency p50/p99, and CPU µs per message of
    every process (publisher, broker or forwarder, subscriber), then the ratios
    vedettad/reference and vedettad-store/vedettad. Then one publisher -> N subscribers, live
    (plain subscriptions, no store) and durable (a durable subscription each, acknowledged,
    store on), with the ratio durable/live of the same run. Last, durable publishing with the
    subscriber offline, then its read back from the store (vedettad-offline), over the live
    receipts and the live durable deliveries of the same run. Last, the rate limits: one
    Comune's latency alone, then while another Comune floods the broker over the shipped limits
    (vedettad-flood), with the ratio of the two and the flooder's receipts.
    bench/README.md says what is measured and how.

    This file is the coordinator: options, the key files and configuration of vedettad, the
    sequence of phases, and the table. The roles live in bench_roles.c, process plumbing in
    bench_proc.c. Invariant: the coordinator never creates a ZeroMQ context (children are
    fork()ed from it), and every child it starts is stopped and reaped before it returns.  */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "bench_proc.h"
#include "bench_roles.h"
#include "vdp_agency.h"
#include "vedetta.h"

#define S_MAX_SIZES      8
#define S_SETUP_S        30   // connecting, handshakes, joining
#define S_IDLE_S         5    // silence after the publisher is done that counts as loss
#define S_MARGIN_S       5    // the coordinator waits this much longer than a role's deadline
#define S_GRACE_MS       3000 // for a child to exit after QUIT or SIGTERM
#define S_DEFAULT_COUNT  200000
#define S_QUICK_COUNT    2000
#define S_DEFAULT_LAT    5000
#define S_QUICK_LAT      200
#define S_DEFAULT_WINDOW 4096
#define S_DEFAULT_BATCH  256
#define S_DEFAULT_PHASE  120
#define S_MAX_COUNT      100000000
#define S_DEFAULT_SUBS   4
#define S_DEFAULT_ACK    1 // a durable subscriber acknowledges every delivery

//  The parties: a Comune's SIEM publishes its alerts; its COSC subscribes to the region's.
#define S_BROKER_ORG  "broker:toscana"
#define S_PUB_ORG     "comune:i726"
#define S_SUB_ORG     "cosc:toscana"
#define S_JUR         "toscana"
#define S_KEY_LABEL   "bench"
#define S_POLICY_FILE "bench.vdp"
#define S_PUB_TOPIC   "alert.toscana.i726"
#define S_SUB_PATTERN "alert.toscana.>"
//  vedettad-store's store, in the scratch directory; a fresh one for each run.
#define S_STORE_FILE "vedetta.db"
//  vedettad-offline's durable subscription: made, left, then read back.
#define S_OFFLINE_DURABLE "bench-offline"

/*  vedettad-flood: the bench's Comune (S_PUB_ORG) floods; a Comune of another org, so with
    buckets of its own, is the victim whose latency is measured; the COSC receives both. Its
    broker has the Comuni's shipped limits, copied from deploy/policy.vdp's `comune rate-key`
    and `comune rate-org` lines: keep them in step.  */
#define S_VICTIM_ORG        "comune:d612"
#define S_VICTIM_TOPIC      "alert.toscana.d612"
#define S_FLOOD_POLICY_FILE "bench-flood.vdp"
#define S_FLOOD_KEY_RATE    2000  // messages a second, sustained, per key
#define S_FLOOD_KEY_BURST   10000 // messages at once after a quiet spell
#define S_FLOOD_KEY_BYTES   "16M/s+64M"
#define S_FLOOD_ORG_MSGS    "5000/s+25000"
#define S_FLOOD_ORG_BYTES   "32M/s+128M"
#define S_STR(x)            #x
#define S_XSTR(x)           S_STR(x)
#define S_FLOOD_KEY_MSGS    S_XSTR(S_FLOOD_KEY_RATE) "/s+" S_XSTR(S_FLOOD_KEY_BURST)
//  The flooder's bound in messages: more than a phase's deadline lets it send here, so that
//  the victim's last sample, or the deadline, is what ends the flood.
#define S_FLOOD_MAX_MSGS 20000000
//  Once the flood is refused, the subscriber still has the burst's deliveries to take: the
//  victim starts this much later, so that its samples measure the refused flood.
#define S_FLOOD_SETTLE_MS 500

typedef struct {
    size_t count;
    size_t sizes[S_MAX_SIZES];
    size_t nsizes;
    size_t samples;
    size_t warmup;
    size_t window;
    size_t batch;
    int phase_s;
    size_t subscribers; // fan-out paths: subscriber processes
    size_t ack_every;   // vedettad-durable, vedettad-offline: deliveries per acknowledgement
    bool quick;
    bool enabled[BENCH_PATH_COUNT];
    char broker[PATH_MAX];
} s_opts_t;

typedef struct {
    const s_opts_t *opts;
    char dir[PATH_MAX];                      // scratch directory (vedettad paths); "" if none
    char config[BENCH_PATH_COUNT][PATH_MAX]; // vedettad's configuration file, per vedettad path
    char pub_secret[PATH_MAX];               // the Comune's secret key file
    char sub_secret[PATH_MAX];               // the COSC's secret key file
    char victim_secret[PATH_MAX];            // vedettad-flood: the victim Comune's
    char broker_public[VDP_KEY_Z85_LEN + 1]; // from the broker's .agency file
    char server_public[VDP_KEY_Z85_LEN + 1]; // raw paths: binding side
    char server_secret[VDP_KEY_Z85_LEN + 1];
    char client_public[VDP_KEY_Z85_LEN + 1]; // raw paths: connecting side
    char client_secret[VDP_KEY_Z85_LEN + 1];
} s_env_t;

//  One subscriber's share of a run.
typedef struct {
    double rate; // distinct data messages per second, from the publisher's first send
    int64_t received;
    int64_t acks;        // vedettad-durable: acknowledgements sent during the throughput phase
    int64_t redelivered; // skipped by libvedetta as already handed over
    double p50_us;
    double p99_us;
} s_sub_result_t;

//  vedettad-flood: the victim's latency alone, and the flood of the phase under it.
typedef struct {
    double alone_p50_us; // the victim alone; s_result_t's p50_us, p99_us: under the flood
    double alone_p99_us;
    int64_t alone_samples;
    int64_t sent; // the flooder's publishes, and their receipts
    int64_t accepted;
    int64_t refused; // with ERATE
    int64_t rejected;
    double seconds;   // from the flooder's first send to its last receipt
    double sent_rate; // publishes a second over `seconds`
    int64_t onset_at; // when the burst was accepted and a publish refused (FLOODING)
    int64_t onset_accepted;
    double accepted_rate; // accepted a second from the onset to the last receipt: the limit
    double broker_cpu_us; // vedettad's CPU per flood publish during the flood; NAN if unknown
} s_flood_result_t;

typedef struct {
    bench_path_t path;
    size_t size;
    bool ok;
    double rate;       // messages per second received: the slowest subscriber's
    double total_rate; // deliveries per second, all subscribers together
    double rcpt_rate;  // vedettad: receipts per second at the publisher (0 elsewhere)
    double p50_us;     // one-way latency: the slowest subscriber's
    double p99_us;
    size_t nsubs;
    s_sub_result_t subs[BENCH_MAX_SUBS];
    double cpu_us[3]; // per message: publisher, broker/forwarder, subscriber; NAN if unknown
    //  vedettad-offline: `rate` is the read back's (from the subscriber's reconnect), `rcpt_rate`
    //  and `cpu_us` the publish phase's, and this the read back's CPU per delivery.
    double readback_cpu_us[3];
    int64_t lost;
    int64_t duplicates;
    int64_t samples;
    int64_t resent; // vedettad: publishes sent again after an ESESSION rejection
    s_flood_result_t flood;
    char error[BENCH_CTL_TEXT + 128];
} s_result_t;

typedef struct {
    bench_child_t server;  // vedettad or the forwarder; pid 0 for zmq-curve
    bench_child_t pub;     // on vedettad-flood, the victim
    bench_child_t flooder; // vedettad-flood: the flooding Comune; pid 0 elsewhere
    bench_child_t subs[BENCH_MAX_SUBS];
    size_t nsubs;
} s_procs_t;

static void
s_usage(FILE *out)
{
    fprintf(out,
            "usage: vedetta-bench [options]\n"
            "  --count N            messages per throughput phase (default %d)\n"
            "  --sizes A,B,...      message/body sizes in bytes (default 100,1024; min %u)\n"
            "  --latency-samples N  latency samples per path and size (default %d)\n"
            "  --quick              small counts: a smoke run of a few seconds\n"
            "  --broker PATH        the vedettad binary (default: next to this program, then "
            "PATH)\n"
            "  --only P[,P...]      run only these paths: vedettad, vedettad-store, zmq, fwd,\n"
            "                       fanout, durable, offline, flood\n"
            "  --subscribers N      fan-out paths: subscriber processes (default %d, at most %d)\n"
            "  --ack-every K        vedettad-durable, vedettad-offline: deliveries per\n"
            "                       acknowledgement (default %d)\n"
            "  --window N           vedettad: most publishes without a receipt (default %d)\n"
            "  --batch N            vedettad: publishes queued per flush (default %d)\n"
            "  --deadline S         seconds allowed for one phase (default %d)\n",
            S_DEFAULT_COUNT, BENCH_MIN_SIZE, S_DEFAULT_LAT, S_DEFAULT_SUBS, BENCH_MAX_SUBS,
            S_DEFAULT_ACK, S_DEFAULT_WINDOW, S_DEFAULT_BATCH, S_DEFAULT_PHASE);
}

static bool
s_parse_size(const char *text, size_t min, size_t max, size_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end != '\0' || text[0] == '-' || v < min || v > max)
        return false;
    *out = (size_t)v;
    return true;
}

static bool
s_parse_sizes(const char *text, s_opts_t *opts)
{
    char copy[256];
    if (snprintf(copy, sizeof copy, "%s", text) >= (int)sizeof copy)
        return false;
    opts->nsizes = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (opts->nsizes == S_MAX_SIZES ||
            !s_parse_size(tok, BENCH_MIN_SIZE, VDP_MAX_BODY, &opts->sizes[opts->nsizes]))
            return false;
        opts->nsizes++;
    }
    return opts->nsizes > 0;
}

static bool
s_parse_only(const char *text, bool enabled[BENCH_PATH_COUNT])
{
    char copy[128];
    if (snprintf(copy, sizeof copy, "%s", text) >= (int)sizeof copy)
        return false;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "vedettad") == 0)
            enabled[BENCH_PATH_VEDETTAD] = true;
        else if (strcmp(tok, "vedettad-store") == 0)
            enabled[BENCH_PATH_STORE] = true;
        else if (strcmp(tok, "zmq") == 0 || strcmp(tok, "zmq-curve") == 0)
            enabled[BENCH_PATH_ZMQ] = true;
        else if (strcmp(tok, "fwd") == 0 || strcmp(tok, "fwd-curve") == 0)
            enabled[BENCH_PATH_FWD] = true;
        else if (strcmp(tok, "fanout") == 0 || strcmp(tok, "vedettad-fanout") == 0)
            enabled[BENCH_PATH_FANOUT] = true;
        else if (strcmp(tok, "durable") == 0 || strcmp(tok, "vedettad-durable") == 0)
            enabled[BENCH_PATH_DURABLE] = true;
        else if (strcmp(tok, "offline") == 0 || strcmp(tok, "vedettad-offline") == 0)
            enabled[BENCH_PATH_OFFLINE] = true;
        else if (strcmp(tok, "flood") == 0 || strcmp(tok, "vedettad-flood") == 0)
            enabled[BENCH_PATH_FLOOD] = true;
        else
            return false;
    }
    return true;
}

//  Returns 0 to run, 1 for --help, 2 for a usage error.
static int
s_parse_args(int argc, char **argv, s_opts_t *opts)
{
    enum {
        O_COUNT = 1,
        O_SIZES,
        O_SAMPLES,
        O_QUICK,
        O_BROKER,
        O_ONLY,
        O_WINDOW,
        O_BATCH,
        O_DEADLINE,
        O_SUBSCRIBERS,
        O_ACK_EVERY,
        O_HELP
    };
    static const struct option longopts[] = {
        { "count", required_argument, NULL, O_COUNT },
        { "sizes", required_argument, NULL, O_SIZES },
        { "latency-samples", required_argument, NULL, O_SAMPLES },
        { "quick", no_argument, NULL, O_QUICK },
        { "broker", required_argument, NULL, O_BROKER },
        { "only", required_argument, NULL, O_ONLY },
        { "window", required_argument, NULL, O_WINDOW },
        { "batch", required_argument, NULL, O_BATCH },
        { "deadline", required_argument, NULL, O_DEADLINE },
        { "subscribers", required_argument, NULL, O_SUBSCRIBERS },
        { "ack-every", required_argument, NULL, O_ACK_EVERY },
        { "help", no_argument, NULL, O_HELP },
        { NULL, 0, NULL, 0 }
    };
    memset(opts, 0, sizeof *opts);
    opts->sizes[0] = 100;
    opts->sizes[1] = 1024;
    opts->nsizes = 2;
    opts->window = S_DEFAULT_WINDOW;
    opts->batch = S_DEFAULT_BATCH;
    opts->phase_s = S_DEFAULT_PHASE;
    opts->subscribers = S_DEFAULT_SUBS;
    opts->ack_every = S_DEFAULT_ACK;
    bool count_set = false, samples_set = false, only_set = false;
    size_t value = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        bool good = true;
        switch (opt) {
        case O_COUNT:
            good = s_parse_size(optarg, 1, S_MAX_COUNT, &opts->count);
            count_set = true;
            break;
        case O_SIZES:
            good = s_parse_sizes(optarg, opts);
            break;
        case O_SAMPLES:
            good = s_parse_size(optarg, 1, 1000000, &opts->samples);
            samples_set = true;
            break;
        case O_QUICK:
            opts->quick = true;
            break;
        case O_BROKER:
            good = snprintf(opts->broker, sizeof opts->broker, "%s", optarg) <
                   (int)sizeof opts->broker;
            break;
        case O_ONLY:
            good = s_parse_only(optarg, opts->enabled);
            only_set = true;
            break;
        case O_WINDOW:
            good = s_parse_size(optarg, 1, 1000000, &opts->window);
            break;
        case O_BATCH:
            good = s_parse_size(optarg, 1, 1000000, &opts->batch);
            break;
        case O_DEADLINE:
            good = s_parse_size(optarg, 1, 3600, &value);
            opts->phase_s = (int)value;
            break;
        case O_SUBSCRIBERS:
            good = s_parse_size(optarg, 1, BENCH_MAX_SUBS, &opts->subscribers);
            break;
        case O_ACK_EVERY:
            good = s_parse_size(optarg, 1, 1000000, &opts->ack_every);
            break;
        case O_HELP:
            s_usage(stdout);
            return 1;
        default:
            good = false;
        }
        if (!good) {
            if (opt != '?')
                fprintf(stderr, "vedetta-bench: bad value for --%s: %s\n", longopts[opt - 1].name,
                        optarg ? optarg : "");
            s_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vedetta-bench: unexpected argument: %s\n", argv[optind]);
        s_usage(stderr);
        return 2;
    }
    if (!count_set)
        opts->count = opts->quick ? S_QUICK_COUNT : S_DEFAULT_COUNT;
    if (!samples_set)
        opts->samples = opts->quick ? S_QUICK_LAT : S_DEFAULT_LAT;
    //  Warm-up samples are sent and acknowledged but not counted: the first round trips pay
    //  for page faults and cold caches, not for the path.
    opts->warmup = opts->samples / 20 < 100 ? opts->samples / 20 : 100;
    if (!only_set)
        for (int p = 0; p < BENCH_PATH_COUNT; p++)
            opts->enabled[p] = true;
    return 0;
}

static bool
s_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

//  The vedettad binary: --broker, else beside this program, else the first one on PATH.
static int
s_find_broker(s_opts_t *opts)
{
    if (opts->broker[0]) {
        if (s_executable(opts->broker))
            return 0;
        fprintf(stderr, "vedetta-bench: --broker %s: not an executable file\n", opts->broker);
        return -1;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            if (snprintf(opts->broker, sizeof opts->broker, "%s/vedettad", self) <
                    (int)sizeof opts->broker &&
                s_executable(opts->broker))
                return 0;
        }
    }
    const char *path = getenv("PATH");
    char copy[4096];
    if (path && snprintf(copy, sizeof copy, "%s", path) < (int)sizeof copy) {
        char *save = NULL;
        for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
            if (snprintf(opts->broker, sizeof opts->broker, "%s/vedettad", dir) <
                    (int)sizeof opts->broker &&
                s_executable(opts->broker))
                return 0;
        }
    }
    opts->broker[0] = '\0';
    fprintf(stderr, "vedetta-bench: vedettad not found next to vedetta-bench nor on PATH; use "
                    "--broker PATH or --only zmq,fwd\n");
    return -1;
}

/*  -------------------------------------------------------------------------------------------
    vedettad's files: four agency keys made with vd_keygen(), its configurations and policies.  */

typedef struct {
    char dir[PATH_MAX];
} s_keygen_arg_t;

//  `<dir>/<sub>/<org-slug>.<label>.<ext>`
static int
s_key_path(
    char *out, size_t size, const char *dir, const char *sub, const char *org, const char *ext)
{
    char slug[VDP_MAX_ORG + 1];
    snprintf(slug, sizeof slug, "%s", org);
    for (char *c = slug; *c; c++)
        if (*c == ':')
            *c = '-';
    int n = snprintf(out, size, "%s/%s/%s.%s.%s", dir, sub, slug, S_KEY_LABEL, ext);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

//  Runs in a child, so that whatever global state key generation sets up stays out of the
//  coordinator. READY carries the broker's CURVE public key.
static int
s_keygen_main(int ctl, void *arg)
{
    const s_keygen_arg_t *keys = arg;
    if (sodium_init() < 0) {
        bench_ctl_fail(ctl, "sodium_init failed");
        return 1;
    }
    static const struct {
        const char *org, *name, *role, *public_dir;
    } parties[] = { { S_BROKER_ORG, "Broker Toscana", "broker", "keys" },
                    { S_PUB_ORG, "Comune di Siena", "comune", "agencies" },
                    { S_VICTIM_ORG, "Comune di Firenze", "comune", "agencies" },
                    { S_SUB_ORG, "COSC Toscana", "cosc", "agencies" } };
    for (size_t i = 0; i < sizeof parties / sizeof parties[0]; i++) {
        char secret[PATH_MAX], public[PATH_MAX];
        if (s_key_path(secret, sizeof secret, keys->dir, "keys", parties[i].org, "secret") ||
            s_key_path(public, sizeof public, keys->dir, parties[i].public_dir, parties[i].org,
                       "agency")) {
            bench_ctl_fail(ctl, "key path too long");
            return 1;
        }
        int rc = vd_keygen(parties[i].org, parties[i].name, parties[i].role, S_JUR, S_KEY_LABEL,
                           secret, public);
        if (rc != VD_OK) {
            bench_ctl_fail(ctl, "vd_keygen %s: %s", parties[i].org, vd_strerror(rc));
            return 1;
        }
    }
    char path[PATH_MAX], err[256] = "";
    vdp_agency_t agency;
    if (s_key_path(path, sizeof path, keys->dir, "keys", S_BROKER_ORG, "agency") ||
        vdp_agency_load(path, &agency, err, sizeof err) != VD_OK) {
        bench_ctl_fail(ctl, "loading the broker's agency file: %s", err);
        return 1;
    }
    bench_ctl_t ready;
    memset(&ready, 0, sizeof ready);
    ready.type = BENCH_CTL_READY;
    snprintf(ready.text, sizeof ready.text, "%s", agency.curve_public);
    return bench_ctl_send(ctl, &ready) == 0 ? 0 : 1;
}

static int
s_mkdir_in(const char *dir, const char *sub)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, sub) >= (int)sizeof path)
        return -1;
    return mkdir(path, 0700);
}

/*  The bench's policy: the two grants its parties use, and rate limits far above anything a
    benchmark sends, so that it measures the broker and not its limits (the shipped policy's
    limits suit agencies, not a load generator).  */
#define S_POLICY_HEAD                                                                              \
    "#   vedettad's policy for vedetta-bench: written and removed by the bench\n"                  \
    "comune   publish    alert.$j.$code   amber+strict\n"                                          \
    "cosc     subscribe  alert.$j.>       amber+strict\n"
#define S_POLICY_COSC                                                                              \
    "cosc     rate-key   1000000/s+1000000   1G/s+1G\n"                                            \
    "cosc     rate-org   1000000/s+1000000   1G/s+1G\n"
static const char *s_policy =
    S_POLICY_HEAD "comune   rate-key   1000000/s+1000000   1G/s+1G\n"
                  "comune   rate-org   1000000/s+1000000   1G/s+1G\n" S_POLICY_COSC;
//  vedettad-flood's: the same, but the Comuni have the shipped limits, the subject of the path.
static const char *s_policy_flood = S_POLICY_HEAD
    "comune   rate-key   " S_FLOOD_KEY_MSGS "   " S_FLOOD_KEY_BYTES "\n"
    "comune   rate-org   " S_FLOOD_ORG_MSGS "   " S_FLOOD_ORG_BYTES "\n" S_POLICY_COSC;

/*  One configuration per vedettad path; they differ only in the store, and vedettad-flood in
    its policy. The store is always stated, never left to vedettad's default (which is on):
    `path = ""` is live delivery only. The policy file `policy_file` is written beside it.  */
static int
s_write_config(const char *config, bool store, const char *policy_file, const char *policy_text)
{
    char secret[PATH_MAX];
    //  Relative paths: vedettad resolves them against the configuration file's directory.
    if (s_key_path(secret, sizeof secret, ".", "keys", S_BROKER_ORG, "secret"))
        return -1;
    char policy[PATH_MAX];
    const char *slash = strrchr(config, '/');
    int n = snprintf(policy, sizeof policy, "%.*s%s", slash ? (int)(slash - config + 1) : 0, config,
                     policy_file);
    if (n < 0 || (size_t)n >= sizeof policy)
        return -1;
    FILE *file = fopen(policy, "w");
    if (!file)
        return -1;
    if (fputs(policy_text, file) < 0) {
        fclose(file);
        return -1;
    }
    if (fclose(file) != 0)
        return -1;
    file = fopen(config, "w");
    if (!file)
        return -1;
    fprintf(file,
            "#   vedettad for vedetta-bench: written and removed by the bench\n"
            "broker\n"
            "    name = \"%s\"\n"
            "    endpoint = \"tcp://127.0.0.1:*\"\n"
            "    secret = \"%s\"\n"
            "    registry = \"agencies\"\n"
            "    policy = \"%s\"\n"
            "store\n"
            "    path = \"%s\"\n"
            "%s"
            "log\n"
            "    level = \"warning\"\n",
            S_BROKER_ORG, secret + 2, policy_file, store ? S_STORE_FILE : "",
            store ? "    sync = \"full\"\n" : "");
    return fclose(file) == 0 ? 0 : -1;
}

static const char *const s_store_suffixes[] = { "", "-wal", "-shm", "-journal" };

static int
s_store_file(const s_env_t *env, size_t suffix, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/%s%s", env->dir, S_STORE_FILE, s_store_suffixes[suffix]);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

//  Bytes of the store's files (database and WAL) in the scratch directory; -1 if none exists.
static int64_t
s_store_bytes(const s_env_t *env)
{
    int64_t total = -1;
    for (size_t i = 0; i < sizeof s_store_suffixes / sizeof s_store_suffixes[0]; i++) {
        char path[PATH_MAX];
        struct stat st;
        if (s_store_file(env, i, path, sizeof path) == 0 && stat(path, &st) == 0)
            total = (total < 0 ? 0 : total) + (int64_t)st.st_size;
    }
    return total;
}

//  Each vedettad-store run starts on an empty store, and its files go when the run is over.
static void
s_store_remove(const s_env_t *env)
{
    for (size_t i = 0; i < sizeof s_store_suffixes / sizeof s_store_suffixes[0]; i++) {
        char path[PATH_MAX];
        if (s_store_file(env, i, path, sizeof path) == 0)
            unlink(path);
    }
}

static int
s_vedettad_prepare(s_env_t *env)
{
    if (bench_proc_tmpdir_new(env->dir, sizeof env->dir) != 0) {
        fprintf(stderr, "vedetta-bench: cannot create a scratch directory: %s\n", strerror(errno));
        env->dir[0] = '\0';
        return -1;
    }
    if (s_mkdir_in(env->dir, "keys") || s_mkdir_in(env->dir, "agencies")) {
        fprintf(stderr, "vedetta-bench: mkdir in %s: %s\n", env->dir, strerror(errno));
        return -1;
    }
    s_keygen_arg_t arg;
    snprintf(arg.dir, sizeof arg.dir, "%s", env->dir);
    bench_child_t child;
    if (bench_proc_fork(&child, "keygen", s_keygen_main, &arg, NULL, 0) != 0) {
        fprintf(stderr, "vedetta-bench: fork: %s\n", strerror(errno));
        return -1;
    }
    bench_ctl_t msg;
    int rc = bench_ctl_recv(child.fd, &msg, bench_proc_now_ns() + S_SETUP_S * 1000000000ll);
    int status = bench_proc_stop(&child, S_GRACE_MS);
    if (rc != 0 || msg.type != BENCH_CTL_READY || status != 0) {
        fprintf(stderr, "vedetta-bench: generating keys failed: %s\n",
                rc == 0 && msg.type == BENCH_CTL_FAIL ? msg.text : "no answer");
        return -1;
    }
    if (strlen(msg.text) != VDP_KEY_Z85_LEN) {
        fprintf(stderr, "vedetta-bench: the broker's public key is not 40 chars of Z85\n");
        return -1;
    }
    memcpy(env->broker_public, msg.text, VDP_KEY_Z85_LEN + 1);
    if (s_key_path(env->pub_secret, sizeof env->pub_secret, env->dir, "keys", S_PUB_ORG,
                   "secret") ||
        s_key_path(env->sub_secret, sizeof env->sub_secret, env->dir, "keys", S_SUB_ORG,
                   "secret") ||
        s_key_path(env->victim_secret, sizeof env->victim_secret, env->dir, "keys", S_VICTIM_ORG,
                   "secret") ||
        snprintf(env->config[BENCH_PATH_VEDETTAD], PATH_MAX, "%s/vedettad-live.cfg", env->dir) >=
            PATH_MAX ||
        snprintf(env->config[BENCH_PATH_STORE], PATH_MAX, "%s/vedettad-store.cfg", env->dir) >=
            PATH_MAX ||
        snprintf(env->config[BENCH_PATH_FLOOD], PATH_MAX, "%s/vedettad-flood.cfg", env->dir) >=
            PATH_MAX ||
        s_write_config(env->config[BENCH_PATH_VEDETTAD], false, S_POLICY_FILE, s_policy) ||
        s_write_config(env->config[BENCH_PATH_STORE], true, S_POLICY_FILE, s_policy) ||
        s_write_config(env->config[BENCH_PATH_FLOOD], true, S_FLOOD_POLICY_FILE, s_policy_flood)) {
        fprintf(stderr, "vedetta-bench: cannot write vedettad's configuration\n");
        return -1;
    }
    //  The fan-out and offline paths run the same two brokers: only the subscribers differ.
    memcpy(env->config[BENCH_PATH_FANOUT], env->config[BENCH_PATH_VEDETTAD], PATH_MAX);
    memcpy(env->config[BENCH_PATH_DURABLE], env->config[BENCH_PATH_STORE], PATH_MAX);
    memcpy(env->config[BENCH_PATH_OFFLINE], env->config[BENCH_PATH_STORE], PATH_MAX);
    return 0;
}

/*  -------------------------------------------------------------------------------------------
    One run: one path, one size, fresh processes.  */

static void s_error(s_result_t *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
s_error(s_result_t *res, const char *fmt, ...)
{
    if (res->error[0])
        return; // keep the first cause
    va_list args;
    va_start(args, fmt);
    vsnprintf(res->error, sizeof res->error, fmt, args);
    va_end(args);
}

static int64_t
s_deadline(int seconds)
{
    return bench_proc_now_ns() + (int64_t)seconds * 1000000000ll;
}

//  If a child other than `except` has exited, records why (with the FAIL it sent, if any).
static int
s_check_others(s_procs_t *procs, const bench_child_t *except, s_result_t *res)
{
    bench_child_t *all[3 + BENCH_MAX_SUBS] = { &procs->server, &procs->pub, &procs->flooder };
    size_t count = 3;
    for (size_t i = 0; i < procs->nsubs; i++)
        all[count++] = &procs->subs[i];
    for (size_t i = 0; i < count; i++) {
        bench_child_t *child = all[i];
        char why[128] = "";
        if (child == except || child->pid <= 0 || !bench_proc_exited(child, why, sizeof why))
            continue;
        bench_ctl_t msg;
        if (child->fd >= 0 && bench_ctl_recv(child->fd, &msg, 0) == 0 && msg.type == BENCH_CTL_FAIL)
            s_error(res, "%s: %s", child->name, msg.text);
        else
            s_error(res, "%s %s", child->name, why);
        return -1;
    }
    return 0;
}

//  Waits for a message of `type` from `child`, watching the other processes meanwhile.
static int
s_expect(s_procs_t *procs,
         bench_child_t *child,
         int type,
         int64_t deadline,
         bench_ctl_t *msg,
         s_result_t *res)
{
    for (;;) {
        int64_t slice = bench_proc_now_ns() + 500000000;
        int rc = bench_ctl_recv(child->fd, msg, slice < deadline ? slice : deadline);
        if (rc == 0 && msg->type == type)
            return 0;
        if (rc == 0 && msg->type == BENCH_CTL_FAIL) {
            s_error(res, "%s: %s", child->name, msg->text);
            return -1;
        }
        if (rc == 0) {
            s_error(res, "%s: unexpected control message %d", child->name, msg->type);
            return -1;
        }
        if (bench_proc_stopping()) {
            s_error(res, "interrupted");
            return -1;
        }
        if (rc < 0) {
            char why[128] = "closed its control channel";
            for (int i = 0; i < 100 && !bench_proc_exited(child, why, sizeof why); i++) {
                struct timespec nap = { 0, 10000000 };
                nanosleep(&nap, NULL);
            }
            s_error(res, "%s %s", child->name, why);
            return -1;
        }
        if (s_check_others(procs, child, res))
            return -1;
        if (bench_proc_now_ns() >= deadline) {
            s_error(res, "%s: no answer before the deadline", child->name);
            return -1;
        }
    }
}

static int
s_send(bench_child_t *child, int type, int64_t v0, int64_t v1, s_result_t *res)
{
    bench_ctl_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = type;
    msg.v[0] = v0;
    msg.v[1] = v1;
    if (bench_ctl_send(child->fd, &msg) == 0)
        return 0;
    s_error(res, "%s is gone", child->name);
    return -1;
}

//  CPU time so far of the publisher, the server and all the subscribers together; -1 unknown.
static void
s_cpu_sample(const s_procs_t *procs, int64_t out[3])
{
    out[0] = procs->pub.pid > 0 ? bench_proc_cpu_ns(procs->pub.pid) : -1;
    out[1] = procs->server.pid > 0 ? bench_proc_cpu_ns(procs->server.pid) : -1;
    out[2] = 0;
    for (size_t i = 0; i < procs->nsubs; i++) {
        int64_t ns = procs->subs[i].pid > 0 ? bench_proc_cpu_ns(procs->subs[i].pid) : -1;
        if (ns < 0 || out[2] < 0) {
            out[2] = -1;
            continue;
        }
        out[2] += ns;
    }
}

//  Starts vedettad for `path` and waits for the endpoint it bound.
static int
s_broker_start(const s_env_t *env,
               bench_path_t path,
               s_procs_t *procs,
               char *endpoint,
               size_t size,
               s_result_t *res)
{
    char epfile[PATH_MAX];
    if (snprintf(epfile, sizeof epfile, "%s/endpoint", env->dir) >= (int)sizeof epfile) {
        s_error(res, "scratch path too long");
        return -1;
    }
    unlink(epfile);
    char bin[PATH_MAX], config[PATH_MAX];
    snprintf(bin, sizeof bin, "%s", env->opts->broker);
    snprintf(config, sizeof config, "%s", env->config[path]);
    char opt_config[] = "--config", opt_epfile[] = "--endpoint-file";
    char *argv[] = { bin, opt_config, config, opt_epfile, epfile, NULL };
    if (bench_proc_spawn(&procs->server, "vedettad", argv) != 0) {
        s_error(res, "cannot start vedettad: %s", strerror(errno));
        return -1;
    }
    int64_t deadline = s_deadline(S_SETUP_S);
    for (;;) {
        //  vedettad writes the file whole (tmp + rename) once bound; a line means it is ready.
        FILE *file = fopen(epfile, "r");
        if (file) {
            char *got = fgets(endpoint, (int)size, file);
            fclose(file);
            char *nl = got ? strchr(endpoint, '\n') : NULL;
            if (nl) {
                *nl = '\0';
                return 0;
            }
        }
        char why[128];
        if (bench_proc_exited(&procs->server, why, sizeof why)) {
            s_error(res, "vedettad %s before writing its endpoint", why);
            return -1;
        }
        if (bench_proc_stopping()) {
            s_error(res, "interrupted");
            return -1;
        }
        if (bench_proc_now_ns() >= deadline) {
            s_error(res, "vedettad wrote no endpoint file within %d s", S_SETUP_S);
            return -1;
        }
        struct timespec nap = { 0, 5000000 };
        nanosleep(&nap, NULL);
    }
}

/*  Stops every process of a run, the flooder first, server last. A process that was still
    running must exit 0 when asked (QUIT for the roles, SIGTERM for vedettad): anything else is
    a bug worth a failed run. Returns 0 or -1.  */
static int
s_procs_stop(s_procs_t *procs, s_result_t *res)
{
    bench_child_t *order[3 + BENCH_MAX_SUBS] = { &procs->flooder, &procs->pub };
    size_t count = 2;
    for (size_t i = 0; i < procs->nsubs; i++)
        order[count++] = &procs->subs[i];
    order[count++] = &procs->server;
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        bool was_running = order[i]->pid > 0;
        char name[sizeof order[i]->name];
        memcpy(name, order[i]->name, sizeof name);
        int status = bench_proc_stop(order[i], S_GRACE_MS);
        if (!was_running || status == 0)
            continue;
        if (status == -1)
            s_error(res, "%s had to be killed: it did not stop when asked", name);
        else if (WIFEXITED(status))
            s_error(res, "%s exited with code %d when asked to stop", name, WEXITSTATUS(status));
        else
            s_error(res, "%s died with signal %d when asked to stop", name, WTERMSIG(status));
        rc = -1;
    }
    return rc;
}

static void
s_role_cfg(const s_env_t *env, bench_path_t path, size_t size, bench_role_cfg_t *cfg)
{
    const s_opts_t *opts = env->opts;
    memset(cfg, 0, sizeof *cfg);
    cfg->path = path;
    cfg->size = size;
    cfg->window = opts->window;
    cfg->batch = opts->batch;
    cfg->setup_ns = (int64_t)S_SETUP_S * 1000000000ll;
    cfg->phase_ns = (int64_t)opts->phase_s * 1000000000ll;
    cfg->idle_ns = (int64_t)S_IDLE_S * 1000000000ll;
    cfg->ack_fd = -1;
    cfg->subscribers = 1;
    snprintf(cfg->server_public, sizeof cfg->server_public, "%s", env->server_public);
    snprintf(cfg->server_secret, sizeof cfg->server_secret, "%s", env->server_secret);
    snprintf(cfg->client_public, sizeof cfg->client_public, "%s", env->client_public);
    snprintf(cfg->client_secret, sizeof cfg->client_secret, "%s", env->client_secret);
    snprintf(cfg->broker_public, sizeof cfg->broker_public, "%s", env->broker_public);
}

//  Sends a control message to every subscriber.
static int
s_send_subs(s_procs_t *procs, int type, int64_t v0, int64_t v1, s_result_t *res)
{
    for (size_t i = 0; i < procs->nsubs; i++)
        if (s_send(&procs->subs[i], type, v0, v1, res))
            return -1;
    return 0;
}

//  Waits for a message of `type` from every subscriber, in order; out[i] is the i-th's.
static int
s_expect_subs(s_procs_t *procs, int type, int64_t deadline, bench_ctl_t *out, s_result_t *res)
{
    for (size_t i = 0; i < procs->nsubs; i++)
        if (s_expect(procs, &procs->subs[i], type, deadline, &out[i], res))
            return -1;
    return 0;
}

//  The publisher's own figure: receipts of accepted (on the store paths: stored) messages per
//  second, from its first send to its last receipt.
static double
s_receipt_rate(const bench_ctl_t *pub_done)
{
    int64_t receipted = pub_done->v[BENCH_PUB_END] - pub_done->v[BENCH_PUB_START];
    return pub_done->v[BENCH_PUB_ACCEPTED] > 0 && receipted > 0
               ? (double)pub_done->v[BENCH_PUB_ACCEPTED] * 1e9 / (double)receipted
               : 0;
}

//  CPU µs per message of each process between two samples; NAN where a clock could not be read.
static void
s_cpu_per_message(const int64_t cpu0[3], const int64_t cpu1[3], double messages, double out[3])
{
    for (int i = 0; i < 3; i++)
        out[i] = cpu0[i] >= 0 && cpu1[i] >= cpu0[i]
                     ? (double)(cpu1[i] - cpu0[i]) / 1000.0 / messages
                     : NAN;
}

/*  Each subscriber's rate from the publisher's first send to its own last arrival; the row's
    rate is the slowest one's, the total all deliveries over the time until the last of them.  */
static void
s_throughput_rates(const bench_ctl_t *pub_done, const bench_ctl_t *sub_done, s_result_t *res)
{
    int64_t start = pub_done->v[BENCH_PUB_START], last = start, delivered = 0;
    res->rate = 0;
    for (size_t i = 0; i < res->nsubs; i++) {
        s_sub_result_t *sub = &res->subs[i];
        sub->received = sub_done[i].v[BENCH_SUB_RECEIVED];
        sub->acks = sub_done[i].v[BENCH_SUB_ACKS];
        sub->redelivered = sub_done[i].v[BENCH_SUB_REDELIVERED];
        int64_t elapsed = sub_done[i].v[BENCH_SUB_LAST] - start;
        sub->rate =
            sub->received > 0 && elapsed > 0 ? (double)sub->received * 1e9 / (double)elapsed : 0;
        if (i == 0 || sub->rate < res->rate)
            res->rate = sub->rate;
        if (sub_done[i].v[BENCH_SUB_LAST] > last)
            last = sub_done[i].v[BENCH_SUB_LAST];
        delivered += sub->received;
    }
    res->total_rate =
        delivered > 0 && last > start ? (double)delivered * 1e9 / (double)(last - start) : 0;
    res->rcpt_rate = s_receipt_rate(pub_done);
}

//  Names every subscriber that missed messages; true if any did.
static bool
s_losses(const bench_ctl_t *pub_done, const bench_ctl_t *sub_done, int64_t count, s_result_t *res)
{
    char text[sizeof res->error] = "";
    size_t used = 0;
    int64_t sent = pub_done->v[BENCH_PUB_SENT];
    res->lost = 0;
    for (size_t i = 0; i < res->nsubs; i++) {
        int64_t lost = sent - res->subs[i].received;
        if (lost <= 0)
            continue;
        res->lost += lost;
        char who[32] = "the subscriber";
        if (res->nsubs > 1)
            snprintf(who, sizeof who, "subscriber %zu", i + 1);
        int n = snprintf(text + used, sizeof text - used,
                         "%s%s missed %" PRId64 " (libvedetta dropped %" PRId64 ")",
                         used ? ", " : "", who, lost, sub_done[i].v[BENCH_SUB_DROPPED]);
        if (n > 0 && (size_t)n < sizeof text - used)
            used += (size_t)n;
    }
    if (res->lost == 0)
        return false;
    s_error(res,
            "LOST %" PRId64 " of %" PRId64 " deliveries (%zu subscriber(s) x %" PRId64
            " messages): %s; %" PRId64 " receipts dropped at the publisher",
            res->lost, count * (int64_t)res->nsubs, res->nsubs, count, text,
            pub_done->v[BENCH_PUB_DROPPED]);
    return true;
}

/*  Throughput: GO to all, CPU clocks read around the phase, DRAIN once the publisher is done.
    Returns 0; 1 if the phase ran but messages were lost or rejected (the processes are still
    fine, so the latency phase can run); -1 if a process failed.  */
static int
s_phase_throughput(const s_opts_t *opts, s_procs_t *procs, s_result_t *res)
{
    bench_ctl_t pub_done, sub_done[BENCH_MAX_SUBS];
    int64_t cpu0[3], cpu1[3];
    int64_t count = (int64_t)opts->count;
    if (s_send_subs(procs, BENCH_CTL_GO, count, 0, res))
        return -1;
    s_cpu_sample(procs, cpu0);
    if (s_send(&procs->pub, BENCH_CTL_GO, count, 0, res))
        return -1;
    //  The roles keep the phase deadline themselves and report what they have when it passes;
    //  the coordinator's own limit is a margin later, for roles that stopped answering.
    int64_t deadline = s_deadline(opts->phase_s + S_MARGIN_S);
    if (s_expect(procs, &procs->pub, BENCH_CTL_DONE, deadline, &pub_done, res) ||
        s_send_subs(procs, BENCH_CTL_DRAIN, 0, 0, res) ||
        s_expect_subs(procs, BENCH_CTL_DONE, deadline + S_IDLE_S * 1000000000ll, sub_done, res))
        return -1;
    s_cpu_sample(procs, cpu1);
    s_throughput_rates(&pub_done, sub_done, res);
    int64_t received = 0;
    bool timed_out = pub_done.rc == VD_ETIMEOUT;
    for (size_t i = 0; i < procs->nsubs; i++) {
        received += sub_done[i].v[BENCH_SUB_RECEIVED];
        res->duplicates += sub_done[i].v[BENCH_SUB_DUPLICATES];
        timed_out = timed_out || sub_done[i].rc == VD_ETIMEOUT;
    }
    int64_t sent = pub_done.v[BENCH_PUB_SENT];
    res->resent += pub_done.v[BENCH_PUB_RESENT];
    //  Per message that arrived (at each subscriber): the work all the processes did for it.
    s_cpu_per_message(cpu0, cpu1, (double)(received > 0 ? received : count), res->cpu_us);
    if (timed_out) {
        s_error(res,
                "deadline of %d s: %" PRId64 " of %" PRId64 " published, %" PRId64
                " received (all subscribers)",
                opts->phase_s, sent, count, received);
        return -1; // far too slow: no latency phase either
    }
    if (pub_done.v[BENCH_PUB_REJECTED] > 0) {
        s_error(res, "%" PRId64 " publishes rejected, first: %s", pub_done.v[BENCH_PUB_REJECTED],
                pub_done.text);
        return 1;
    }
    return s_losses(&pub_done, sub_done, count, res) ? 1 : 0;
}

//  The latency phase's figures from the DONE of the publisher and of each subscriber; the row
//  shows the slowest subscriber's. Returns 0, or -1 if a sample was rejected.
static int
s_latency_results(const bench_ctl_t *pub_done,
                  const bench_ctl_t *sub_done,
                  const s_procs_t *procs,
                  s_result_t *res)
{
    if (pub_done->v[BENCH_PUB_REJECTED] > 0) {
        s_error(res, "latency publishes rejected: %s", pub_done->text);
        return -1;
    }
    res->resent += pub_done->v[BENCH_PUB_RESENT];
    res->samples = sub_done[0].v[BENCH_LAT_SAMPLES];
    res->p50_us = res->p99_us = 0;
    for (size_t i = 0; i < procs->nsubs; i++) {
        s_sub_result_t *sub = &res->subs[i];
        sub->p50_us = (double)sub_done[i].v[BENCH_LAT_P50] / 1000.0;
        sub->p99_us = (double)sub_done[i].v[BENCH_LAT_P99] / 1000.0;
        if (sub_done[i].v[BENCH_LAT_SAMPLES] < res->samples)
            res->samples = sub_done[i].v[BENCH_LAT_SAMPLES];
        res->p50_us = sub->p50_us > res->p50_us ? sub->p50_us : res->p50_us;
        res->p99_us = sub->p99_us > res->p99_us ? sub->p99_us : res->p99_us;
    }
    return 0;
}

//  Latency: the publisher waits for every subscriber's byte before the next sample; each
//  subscriber reports its own percentiles.
static int
s_phase_latency(const s_opts_t *opts, s_procs_t *procs, s_result_t *res)
{
    bench_ctl_t pub_done, sub_done[BENCH_MAX_SUBS];
    int64_t samples = (int64_t)opts->samples, warmup = (int64_t)opts->warmup;
    int64_t deadline = s_deadline(opts->phase_s + S_MARGIN_S);
    if (s_send_subs(procs, BENCH_CTL_LATENCY, samples, warmup, res) ||
        s_send(&procs->pub, BENCH_CTL_LATENCY, samples, warmup, res) ||
        s_expect(procs, &procs->pub, BENCH_CTL_DONE, deadline, &pub_done, res) ||
        s_expect_subs(procs, BENCH_CTL_DONE, deadline, sub_done, res))
        return -1;
    return s_latency_results(&pub_done, sub_done, procs, res);
}

//  Forks the subscribers of a run, each with the write end of the latency pipe; on the
//  durable path each gets a durable subscription of its own name, on the offline path the one
//  it leaves and reads back.
static int
s_start_subs(
    const s_env_t *env, s_procs_t *procs, const bench_role_cfg_t *cfg, int ack_fd, s_result_t *res)
{
    bench_role_cfg_t sub_cfg = *cfg;
    sub_cfg.ack_fd = ack_fd;
    sub_cfg.ack_every = env->opts->ack_every;
    snprintf(sub_cfg.secret_path, sizeof sub_cfg.secret_path, "%s", env->sub_secret);
    snprintf(sub_cfg.topic, sizeof sub_cfg.topic, "%s", S_SUB_PATTERN);
    size_t wanted = res->nsubs;
    for (procs->nsubs = 0; procs->nsubs < wanted; procs->nsubs++) {
        size_t i = procs->nsubs;
        char name[32];
        snprintf(name, sizeof name, wanted > 1 ? "subscriber %zu" : "subscriber", i + 1);
        if (cfg->path == BENCH_PATH_DURABLE)
            snprintf(sub_cfg.durable, sizeof sub_cfg.durable, "bench-%zu", i + 1);
        else if (cfg->path == BENCH_PATH_OFFLINE)
            snprintf(sub_cfg.durable, sizeof sub_cfg.durable, "%s", S_OFFLINE_DURABLE);
        //  The child has its own copy of sub_cfg from here on.
        if (bench_proc_fork(&procs->subs[i], name, bench_subscriber_main, &sub_cfg, &ack_fd, 1)) {
            s_error(res, "fork: %s", strerror(errno));
            return -1;
        }
    }
    return 0;
}

//  vedettad-flood's flooder: the bench's Comune, a publisher with no latency pipe, which waits
//  for FLOOD.
static int
s_start_flooder(const s_env_t *env, s_procs_t *procs, const bench_role_cfg_t *cfg, s_result_t *res)
{
    bench_role_cfg_t flood_cfg = *cfg;
    flood_cfg.ack_fd = -1;
    flood_cfg.subscribers = 0;
    snprintf(flood_cfg.secret_path, sizeof flood_cfg.secret_path, "%s", env->pub_secret);
    snprintf(flood_cfg.topic, sizeof flood_cfg.topic, "%s", S_PUB_TOPIC);
    if (bench_proc_fork(&procs->flooder, "flooder", bench_publisher_main, &flood_cfg, NULL, 0)) {
        s_error(res, "fork: %s", strerror(errno));
        return -1;
    }
    bench_ctl_t msg;
    return s_expect(procs, &procs->flooder, BENCH_CTL_READY, s_deadline(S_SETUP_S), &msg, res);
}

/*  Starts the processes of one path in order: server, publisher (on vedettad-flood the victim,
    then the flooder), subscribers.  */
static int
s_start(const s_env_t *env, s_procs_t *procs, bench_path_t path, size_t size, s_result_t *res)
{
    bench_role_cfg_t cfg;
    s_role_cfg(env, path, size, &cfg);
    bench_ctl_t msg;
    char sub_endpoint[256] = "";
    if (path == BENCH_PATH_FWD) {
        if (bench_proc_fork(&procs->server, "forwarder", bench_forwarder_main, &cfg, NULL, 0)) {
            s_error(res, "fork: %s", strerror(errno));
            return -1;
        }
        if (s_expect(procs, &procs->server, BENCH_CTL_READY, s_deadline(S_SETUP_S), &msg, res))
            return -1;
        if (sscanf(msg.text, "%255s %255s", cfg.endpoint, sub_endpoint) != 2) {
            s_error(res, "forwarder: bad endpoints '%s'", msg.text);
            return -1;
        }
    } else if (bench_path_is_vedettad(path)) {
        if (s_broker_start(env, path, procs, cfg.endpoint, sizeof cfg.endpoint, res))
            return -1;
        snprintf(sub_endpoint, sizeof sub_endpoint, "%s", cfg.endpoint);
    }
    int ack[2];
    if (pipe2(ack, O_CLOEXEC) != 0) {
        s_error(res, "pipe: %s", strerror(errno));
        return -1;
    }
    bool flood = path == BENCH_PATH_FLOOD;
    bench_role_cfg_t pub_cfg = cfg;
    pub_cfg.ack_fd = ack[0];
    pub_cfg.subscribers = res->nsubs;
    snprintf(pub_cfg.secret_path, sizeof pub_cfg.secret_path, "%s",
             flood ? env->victim_secret : env->pub_secret);
    snprintf(pub_cfg.topic, sizeof pub_cfg.topic, "%s", flood ? S_VICTIM_TOPIC : S_PUB_TOPIC);
    int rc = -1;
    if (bench_proc_fork(&procs->pub, flood ? "victim" : "publisher", bench_publisher_main, &pub_cfg,
                        &ack[0], 1)) {
        s_error(res, "fork: %s", strerror(errno));
        goto err_close_ack;
    }
    if (s_expect(procs, &procs->pub, BENCH_CTL_READY, s_deadline(S_SETUP_S), &msg, res))
        goto err_close_ack;
    if (flood && s_start_flooder(env, procs, &cfg, res))
        goto err_close_ack;
    if (path == BENCH_PATH_ZMQ)
        snprintf(sub_endpoint, sizeof sub_endpoint, "%.255s", msg.text);
    snprintf(cfg.endpoint, sizeof cfg.endpoint, "%s", sub_endpoint);
    rc = s_start_subs(env, procs, &cfg, ack[1], res);
err_close_ack:
    //  Only the roles hold the ack pipe now: if every subscriber dies the publisher sees EOF.
    close(ack[0]);
    close(ack[1]);
    bench_ctl_t ready[BENCH_MAX_SUBS];
    if (rc == 0)
        rc = s_expect_subs(procs, BENCH_CTL_READY, s_deadline(S_SETUP_S), ready, res);
    return rc;
}

/*  The store paths, after the throughput (or offline publish, or flood) phase: the store's
    files must hold at least the bodies of the `messages` that were receipted, or the row is
    not measuring a store. Returns 0 or 1 (like a loss: the processes are fine, latency can
    still run).  */
static int
s_check_stored(const s_env_t *env, int64_t messages, size_t size, s_result_t *res)
{
    int64_t bytes = s_store_bytes(env);
    int64_t bodies = messages * (int64_t)size;
    if (bytes >= bodies)
        return 0;
    if (bytes < 0)
        s_error(res, "vedettad wrote no %s in the scratch directory", S_STORE_FILE);
    else
        s_error(res, "the store holds %" PRId64 " bytes, less than the %" PRId64 " of the bodies",
                bytes, bodies);
    return 1;
}

//  Slow joiner: the publisher probes until every subscriber has seen a probe.
static int
s_join(s_procs_t *procs, s_result_t *res)
{
    bench_ctl_t msg, joined[BENCH_MAX_SUBS];
    int64_t deadline = s_deadline(S_SETUP_S);
    if (s_send_subs(procs, BENCH_CTL_JOIN, 0, 0, res) ||
        s_send(&procs->pub, BENCH_CTL_PROBE, 0, 0, res) ||
        s_expect_subs(procs, BENCH_CTL_JOINED, deadline, joined, res) ||
        s_send(&procs->pub, BENCH_CTL_STOP, 0, 0, res) ||
        s_expect(procs, &procs->pub, BENCH_CTL_DONE, deadline, &msg, res))
        return -1;
    return 0;
}

/*  The phases of every path but vedettad-offline, the subscribers connected throughout:
    throughput, the store check, latency. Returns 0, 1 (messages lost or rejected) or -1.  */
static int
s_phases_online(const s_env_t *env, s_procs_t *procs, s_result_t *res)
{
    int rc = s_phase_throughput(env->opts, procs, res);
    if (rc == 0 && bench_path_has_store(res->path))
        rc = s_check_stored(env, (int64_t)env->opts->count, res->size, res);
    //  After a loss the processes still work: measure latency too, then report the failure.
    if (rc >= 0 && s_phase_latency(env->opts, procs, res) != 0)
        rc = -1;
    return rc;
}

/*  vedettad-offline's publish phase: the durable subscriber is gone, so the broker only stores
    and receipts. CPU per message of publisher and broker (the subscriber's process idles).
    Returns 0; 1 if a publish was not accepted; -1 if a process failed or the deadline passed.  */
static int
s_phase_offline_publish(const s_opts_t *opts, s_procs_t *procs, s_result_t *res)
{
    bench_ctl_t pub_done;
    int64_t cpu0[3], cpu1[3];
    int64_t count = (int64_t)opts->count;
    s_cpu_sample(procs, cpu0);
    if (s_send(&procs->pub, BENCH_CTL_GO, count, 0, res) ||
        s_expect(procs, &procs->pub, BENCH_CTL_DONE, s_deadline(opts->phase_s + S_MARGIN_S),
                 &pub_done, res))
        return -1;
    s_cpu_sample(procs, cpu1);
    res->rcpt_rate = s_receipt_rate(&pub_done);
    res->resent += pub_done.v[BENCH_PUB_RESENT];
    s_cpu_per_message(cpu0, cpu1, (double)count, res->cpu_us);
    int64_t accepted = pub_done.v[BENCH_PUB_ACCEPTED];
    if (pub_done.rc == VD_ETIMEOUT) {
        s_error(res, "deadline of %d s: %" PRId64 " of %" PRId64 " published, %" PRId64 " accepted",
                opts->phase_s, pub_done.v[BENCH_PUB_SENT], count, accepted);
        return -1;
    }
    if (pub_done.v[BENCH_PUB_REJECTED] > 0) {
        s_error(res, "%" PRId64 " publishes rejected, first: %s", pub_done.v[BENCH_PUB_REJECTED],
                pub_done.text);
        return 1;
    }
    //  Every publish is new: a duplicate receipt would mean the broker had a copy already.
    if (accepted != count) {
        s_error(res, "%" PRId64 " of %" PRId64 " publishes accepted, %" PRId64 " duplicates",
                accepted, count, pub_done.v[BENCH_PUB_DUPLICATE]);
        return 1;
    }
    return 0;
}

//  Whether the read back missed, repeated or reordered anything; says so in res->error.
static bool
s_readback_failed(const bench_ctl_t *done, int64_t count, s_result_t *res)
{
    int64_t reordered = done->v[BENCH_SUB_REORDERED];
    res->lost = count - done->v[BENCH_SUB_RECEIVED];
    res->duplicates = done->v[BENCH_SUB_DUPLICATES];
    if (res->lost > 0)
        s_error(res,
                "LOST %" PRId64 " of %" PRId64 " messages on read back from the store (libvedetta "
                "dropped %" PRId64 "); %" PRId64 " duplicates, %" PRId64 " out of seq order",
                res->lost, count, done->v[BENCH_SUB_DROPPED], res->duplicates, reordered);
    else if (res->duplicates > 0 || reordered > 0)
        s_error(res,
                "read back from the store: %" PRId64 " duplicates, %" PRId64
                " deliveries out of seq order",
                res->duplicates, reordered);
    return res->lost > 0 || res->duplicates > 0 || reordered > 0;
}

/*  vedettad-offline's read back: the subscriber reconnects on its durable name and receives
    every message from the store. Deliveries per second from its reconnect to its last message;
    CPU per delivery of broker and subscriber (the publisher's process idles). Returns 0; 1 if
    a message was missing, repeated or out of order; -1 if a process failed or the deadline
    passed.  */
static int
s_phase_readback(const s_opts_t *opts, s_procs_t *procs, s_result_t *res)
{
    bench_ctl_t done;
    int64_t cpu0[3], cpu1[3];
    int64_t count = (int64_t)opts->count;
    s_cpu_sample(procs, cpu0);
    if (s_send(&procs->subs[0], BENCH_CTL_READBACK, count, 0, res) ||
        s_expect(procs, &procs->subs[0], BENCH_CTL_DONE,
                 s_deadline(opts->phase_s + S_IDLE_S + S_MARGIN_S), &done, res))
        return -1;
    s_cpu_sample(procs, cpu1);
    s_sub_result_t *sub = &res->subs[0];
    sub->received = done.v[BENCH_SUB_RECEIVED];
    sub->acks = done.v[BENCH_SUB_ACKS];
    sub->redelivered = done.v[BENCH_SUB_REDELIVERED];
    int64_t elapsed = done.v[BENCH_SUB_LAST] - done.v[BENCH_SUB_FIRST];
    sub->rate =
        sub->received > 0 && elapsed > 0 ? (double)sub->received * 1e9 / (double)elapsed : 0;
    res->rate = res->total_rate = sub->rate;
    s_cpu_per_message(cpu0, cpu1, (double)(sub->received > 0 ? sub->received : count),
                      res->readback_cpu_us);
    if (done.rc == VD_ETIMEOUT) {
        s_error(res, "deadline of %d s: %" PRId64 " of %" PRId64 " messages read back",
                opts->phase_s, sub->received, count);
        return -1;
    }
    return s_readback_failed(&done, count, res) ? 1 : 0;
}

/*  vedettad-offline: the join has proved the path and made the durable cursor; the subscriber
    leaves, the publisher publishes to a broker with nobody listening, the store is checked,
    then the subscriber comes back and reads it all. No latency phase: a sample in flight to
    nobody measures nothing, and the read back's is vedettad-store's.  */
static int
s_phases_offline(const s_env_t *env, s_procs_t *procs, s_result_t *res)
{
    bench_ctl_t left;
    if (s_send(&procs->subs[0], BENCH_CTL_LEAVE, 0, 0, res) ||
        s_expect(procs, &procs->subs[0], BENCH_CTL_DONE, s_deadline(S_SETUP_S), &left, res))
        return -1;
    int rc = s_phase_offline_publish(env->opts, procs, res);
    if (rc == 0)
        rc = s_check_stored(env, (int64_t)env->opts->count, res->size, res);
    if (rc == 0)
        rc = s_phase_readback(env->opts, procs, res);
    return rc;
}

//  Waits `ms`, watching the processes. Returns 0, or -1 if one exited or the bench is stopping.
static int
s_pause(s_procs_t *procs, int ms, s_result_t *res)
{
    int64_t until = bench_proc_now_ns() + (int64_t)ms * 1000000;
    while (bench_proc_now_ns() < until) {
        if (bench_proc_stopping()) {
            s_error(res, "interrupted");
            return -1;
        }
        if (s_check_others(procs, NULL, res))
            return -1;
        struct timespec nap = { 0, 10000000 };
        nanosleep(&nap, NULL);
    }
    return 0;
}

/*  The flooder's figures from its DONE, and whether the flood was what the row is named after:
    it ran until STOP (so under every sample of the victim's), the broker held it to its key's
    limit (it cannot have had more than a full bucket plus the rate over the flood's duration),
    and refused nothing but for the rate. Returns 0, or 1 (the figures stand, the run failed).  */
static int
s_flood_results(const bench_ctl_t *done, int phase_s, s_result_t *res)
{
    s_flood_result_t *flood = &res->flood;
    flood->sent = done->v[BENCH_PUB_SENT];
    flood->accepted = done->v[BENCH_PUB_ACCEPTED];
    flood->refused = done->v[BENCH_PUB_REFUSED];
    flood->rejected = done->v[BENCH_PUB_REJECTED];
    flood->seconds = (double)(done->v[BENCH_PUB_END] - done->v[BENCH_PUB_START]) / 1e9;
    flood->sent_rate = flood->seconds > 0 ? (double)flood->sent / flood->seconds : 0;
    double after = (double)(done->v[BENCH_PUB_END] - flood->onset_at) / 1e9;
    flood->accepted_rate =
        after > 0 ? (double)(flood->accepted - flood->onset_accepted) / after : 0;
    res->resent += done->v[BENCH_PUB_RESENT];
    double most = S_FLOOD_KEY_BURST + S_FLOOD_KEY_RATE * flood->seconds + 1;
    if (done->rc == VD_ETIMEOUT)
        s_error(res, "the flood reached the deadline of %d s before the victim's last sample",
                phase_s);
    else if (done->rc != VD_OK)
        s_error(res, "the flood ran out of its %d messages before the victim's last sample",
                S_FLOOD_MAX_MSGS);
    else if ((double)flood->accepted > most)
        s_error(res,
                "the flooder had %" PRId64 " publishes accepted in %.2f s, over the %.0f its key's "
                "limit (" S_FLOOD_KEY_MSGS ") allows: the rate limits are not in force",
                flood->accepted, flood->seconds, most);
    else if (flood->rejected > 0)
        s_error(res,
                "%" PRId64 " flood publishes rejected for another reason than ERATE, first: %s",
                flood->rejected, done->text);
    else
        return 0;
    return 1;
}

/*  vedettad-flood's second phase: the subscriber listens first (so that the flood's accepted
    messages do not pile up behind an idle reader); the flooder floods until the broker has
    accepted its burst and refused it with ERATE (FLOODING); S_FLOOD_SETTLE_MS later the victim
    takes its samples, one in flight as alone. The flooder is stopped after the victim's last
    sample whatever happened, and its receipts read. Returns 0, 1 (figures, but a failed run)
    or -1.  */
static int
s_phase_flood(const s_env_t *env, s_procs_t *procs, s_result_t *res)
{
    const s_opts_t *opts = env->opts;
    bench_ctl_t flooding, flood_done, pub_done, sub_done[BENCH_MAX_SUBS];
    int64_t samples = (int64_t)opts->samples, warmup = (int64_t)opts->warmup;
    //  The subscriber's deadline covers the flood's start too, so that the victim's passes
    //  first and says why the run failed.
    bench_ctl_t listen;
    memset(&listen, 0, sizeof listen);
    listen.type = BENCH_CTL_LATENCY;
    listen.v[0] = samples;
    listen.v[1] = warmup;
    listen.v[2] = (int64_t)(S_SETUP_S + S_MARGIN_S) * 1000000000ll + S_FLOOD_SETTLE_MS * 1000000ll;
    for (size_t i = 0; i < procs->nsubs; i++)
        if (bench_ctl_send(procs->subs[i].fd, &listen) != 0) {
            s_error(res, "%s is gone", procs->subs[i].name);
            return -1;
        }
    int64_t cpu0 = bench_proc_cpu_ns(procs->server.pid);
    if (s_send(&procs->flooder, BENCH_CTL_FLOOD, S_FLOOD_MAX_MSGS, S_FLOOD_KEY_BURST, res) ||
        s_expect(procs, &procs->flooder, BENCH_CTL_FLOODING, s_deadline(S_SETUP_S + S_MARGIN_S),
                 &flooding, res) ||
        s_pause(procs, S_FLOOD_SETTLE_MS, res))
        return -1;
    res->flood.onset_at = flooding.v[0];
    res->flood.onset_accepted = flooding.v[1];
    int64_t deadline = s_deadline(opts->phase_s + S_MARGIN_S);
    int rc = 0;
    if (s_send(&procs->pub, BENCH_CTL_LATENCY, samples, warmup, res) ||
        s_expect(procs, &procs->pub, BENCH_CTL_DONE, deadline, &pub_done, res) ||
        s_expect_subs(procs, BENCH_CTL_DONE, deadline, sub_done, res))
        rc = -1;
    //  The flooder settles its last receipts (within the silence that counts as loss) first.
    if (s_send(&procs->flooder, BENCH_CTL_STOP, 0, 0, res) ||
        s_expect(procs, &procs->flooder, BENCH_CTL_DONE, s_deadline(S_IDLE_S + S_MARGIN_S),
                 &flood_done, res))
        return -1;
    int64_t cpu1 = bench_proc_cpu_ns(procs->server.pid);
    //  The flood's figures even when the victim failed: the first cause stays the run's error.
    int flood_rc = s_flood_results(&flood_done, opts->phase_s, res);
    res->flood.broker_cpu_us = cpu0 >= 0 && cpu1 >= cpu0 && res->flood.sent > 0
                                   ? (double)(cpu1 - cpu0) / 1000.0 / (double)res->flood.sent
                                   : NAN;
    if (rc != 0 || s_latency_results(&pub_done, sub_done, procs, res) != 0)
        return -1;
    rc = flood_rc;
    //  The accepted publishes of this phase, the flooder's and the victim's, must be stored.
    if (rc == 0)
        rc = s_check_stored(env, res->flood.accepted + pub_done.v[BENCH_PUB_ACCEPTED], res->size,
                            res);
    return rc;
}

/*  vedettad-flood: the victim's latency alone (the flooder connected, silent), then under the
    flood. The first phase's figures move to res->flood, the second's are the row's own.  */
static int
s_phases_flood(const s_env_t *env, s_procs_t *procs, s_result_t *res)
{
    if (s_phase_latency(env->opts, procs, res) != 0)
        return -1;
    res->flood.alone_p50_us = res->p50_us;
    res->flood.alone_p99_us = res->p99_us;
    res->flood.alone_samples = res->samples;
    res->p50_us = res->p99_us = 0;
    res->samples = 0;
    return s_phase_flood(env, procs, res);
}

static int
s_run(const s_env_t *env, bench_path_t path, size_t size, s_result_t *res)
{
    memset(res, 0, sizeof *res);
    res->path = path;
    res->size = size;
    for (int i = 0; i < 3; i++)
        res->cpu_us[i] = res->readback_cpu_us[i] = NAN;
    res->flood.broker_cpu_us = NAN;
    res->nsubs = bench_path_is_fanout(path) ? env->opts->subscribers : 1;
    s_procs_t procs;
    memset(&procs, 0, sizeof procs);
    procs.server.fd = procs.pub.fd = procs.flooder.fd = -1;
    for (size_t i = 0; i < BENCH_MAX_SUBS; i++)
        procs.subs[i].fd = -1;
    if (bench_path_is_vedettad(path))
        s_store_remove(env);
    int rc = s_start(env, &procs, path, size, res);
    if (rc == 0)
        rc = s_join(&procs, res);
    if (rc == 0 && path == BENCH_PATH_OFFLINE)
        rc = s_phases_offline(env, &procs, res);
    else if (rc == 0 && path == BENCH_PATH_FLOOD)
        rc = s_phases_flood(env, &procs, res);
    else if (rc == 0)
        rc = s_phases_online(env, &procs, res);
    if (s_procs_stop(&procs, res) != 0)
        rc = -1;
    //  The live path must leave no store behind: a row labelled live that wrote one would
    //  measure the wrong thing (vedettad's default is a store).
    if (bench_path_is_vedettad(path) && !bench_path_has_store(path) && s_store_bytes(env) >= 0) {
        s_error(res, "vedettad created a store (%s) with store/path = \"\": not a live run",
                S_STORE_FILE);
        rc = -1;
    }
    if (bench_path_has_store(path))
        s_store_remove(env);
    res->ok = rc == 0;
    return rc == 0 ? 0 : -1;
}

/*  -------------------------------------------------------------------------------------------
    Report  */

//  The file system under the store: fsync on tmpfs costs nothing and proves nothing.
static const char *
s_fs_name(const char *dir)
{
    static const struct {
        long magic;
        const char *name;
    } known[] = { { 0xEF53, "ext2/3/4" },  { 0x58465342, "xfs" },     { 0x9123683E, "btrfs" },
                  { 0x01021994, "tmpfs" }, { 0x794C7630, "overlay" }, { 0x2FC12FC1, "zfs" },
                  { 0x6969, "nfs" },       { 0x65735546, "fuse" },    { 0xF2F52010, "f2fs" } };
    struct statfs st;
    if (statfs(dir, &st) != 0)
        return "unknown";
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if ((long)st.f_type == known[i].magic)
            return known[i].name;
    return "other";
}

static void
s_print_header(const s_env_t *env)
{
    const s_opts_t *opts = env->opts;
    int major, minor, patch;
    zmq_version(&major, &minor, &patch);
    //  The load average says whether other work shared the cores: figures drift with it.
    double load[1] = { -1 };
    if (getloadavg(load, 1) != 1)
        load[0] = -1;
    printf("vedetta-bench: %ld CPUs online, load average %.2f, libzmq %d.%d.%d, CURVE on every "
           "hop\n",
           sysconf(_SC_NPROCESSORS_ONLN), load[0], major, minor, patch);
    printf("throughput: %zu messages per run; vedettad publisher window %zu, flush every %zu\n",
           opts->count, opts->window, opts->batch);
    printf("latency: %zu samples (+%zu warm-up), one in flight, one-way CLOCK_MONOTONIC\n",
           opts->samples, opts->warmup);
    bool store = false;
    for (int p = 0; p < BENCH_PATH_COUNT; p++)
        store = store || (opts->enabled[p] && bench_path_has_store((bench_path_t)p));
    if (store) {
        const char *fs = s_fs_name(env->dir);
        printf("store: SQLite WAL, sync full, a fresh store per run, on %s%s\n", fs,
               strcmp(fs, "tmpfs") == 0 ? " (fsync costs nothing here: not durable)" : "");
    }
    fflush(stdout);
}

//  The 1 -> 1 table. rcpt/s: the publisher's receipts per second (vedettad paths).
static void
s_print_columns(void)
{
    printf("%-5s %-14s %10s %10s %8s %8s  %-10s %7s %7s %7s %7s\n", "size", "path", "msgs/s",
           "rcpt/s", "p50us", "p99us", "cpu-us/msg", "pub", "broker", "sub", "total");
    fflush(stdout);
}

//  The 1 -> N table: per subscriber the slowest and the mean rate, then all deliveries.
static void
s_print_fanout_columns(const s_opts_t *opts)
{
    printf("\nfan-out: 1 publisher -> %zu subscribers, each its own process\n"
           "  vedettad-fanout: no store, plain subscriptions (live)\n"
           "  vedettad-durable: store (sync full), a durable subscription of its own name each, "
           "an ack every %zu deliveries\n"
           "  sub-min/s, sub-avg/s: per subscriber, the slowest and the mean; total/s: all "
           "deliveries;\n"
           "  p50/p99: the slowest subscriber's; cpu-us per delivery, sub: all subscribers\n",
           opts->subscribers, opts->ack_every);
    printf("%-5s %-16s %4s %10s %10s %10s %10s %8s %8s  %-10s %7s %7s %7s %7s\n", "size", "path",
           "subs", "sub-min/s", "sub-avg/s", "total/s", "rcpt/s", "p50us", "p99us", "cpu-us/dlv",
           "pub", "broker", "sub", "total");
    fflush(stdout);
}

/*  The offline table: two rows per size, one per phase, with the 1 -> 1 table's columns; the
    publish row has only receipts, the read back row only deliveries.  */
static void
s_print_offline_columns(const s_opts_t *opts)
{
    printf("\noffline: durable publish with no subscriber online, then a read back from the store\n"
           "  vedettad-offline: store (sync full); the subscriber makes its durable subscription "
           "(%s) and leaves\n"
           "  publish: rcpt/s, the publisher's accepted receipts per second; cpu-us per message\n"
           "  read back: the subscriber back on the same name, an ack every %zu deliveries; "
           "msgs/s from its\n"
           "    reconnect to its last message; cpu-us per delivery\n",
           S_OFFLINE_DURABLE, opts->ack_every);
    printf("%-5s %-16s %-9s %10s %10s  %-10s %7s %7s %7s %7s\n", "size", "path", "phase", "msgs/s",
           "rcpt/s", "cpu-us/msg", "pub", "broker", "sub", "total");
    fflush(stdout);
}

/*  The flood table: two rows per size, one per phase of the victim's latency; the flooder's
    columns on the second.  */
static void
s_print_flood_columns(const s_opts_t *opts)
{
    printf("\nflood: one Comune floods the broker, another Comune's latency is measured\n"
           "  vedettad-flood: store (sync full), the Comuni's shipped limits (deploy/policy.vdp): "
           "rate-key %s %s,\n"
           "    rate-org %s %s\n"
           "  flooder %s on %s: publishes without pause or retry, at most %zu without a "
           "receipt\n"
           "  victim %s on %s (another org: buckets of its own): one sample in flight, alone,\n"
           "    then under the flood, from %d ms after the broker has taken the flooder's burst "
           "and refused it;\n"
           "    both delivered to %s on %s\n"
           "  sent, accepted, erate, other: the flooder's publishes and their receipts; sent/s "
           "over the flood;\n"
           "    acc/s: accepted a second once refused (the key's sustained limit); brk-us/msg: "
           "vedettad's CPU\n"
           "    per flood publish\n",
           S_FLOOD_KEY_MSGS, S_FLOOD_KEY_BYTES, S_FLOOD_ORG_MSGS, S_FLOOD_ORG_BYTES, S_PUB_ORG,
           S_PUB_TOPIC, opts->window, S_VICTIM_ORG, S_VICTIM_TOPIC, S_FLOOD_SETTLE_MS, S_SUB_ORG,
           S_SUB_PATTERN);
    printf("%-5s %-16s %-11s %8s %8s %10s %8s %9s %7s %10s %6s %10s\n", "size", "path", "phase",
           "p50us", "p99us", "sent", "sent/s", "accepted", "acc/s", "erate", "other", "brk-us/msg");
    fflush(stdout);
}

static void
s_print_cpu(double v)
{
    if (isnan(v))
        printf(" %7s", "-");
    else
        printf(" %7.2f", v);
}

static double
s_cpu_total(const s_result_t *res)
{
    double total = 0;
    for (int i = 0; i < 3; i++)
        if (!isnan(res->cpu_us[i]))
            total += res->cpu_us[i];
    return total;
}

static void
s_print_rate(double rate)
{
    if (rate > 0)
        printf(" %10.0f", rate);
    else
        printf(" %10s", "-");
}

//  Latency and CPU columns, the same in both tables.
static void
s_print_tail(const s_result_t *res, bool figures)
{
    if (res->samples > 0)
        printf(" %8.1f %8.1f  %-10s", res->p50_us, res->p99_us, "");
    else
        printf(" %8s %8s  %-10s", "-", "-", "");
    for (int i = 0; i < 3; i++)
        s_print_cpu(figures ? res->cpu_us[i] : NAN);
    s_print_cpu(figures && res->rate > 0 ? s_cpu_total(res) : NAN);
    printf("\n");
}

static void
s_print_notes(const s_result_t *res, int width)
{
    //  Not a failure (the client did what vedetta.h asks), but the broker lost a session.
    if (res->resent > 0)
        printf("      %-*s note: %" PRId64 " publishes sent again after ESESSION (the broker "
               "had dropped the session)\n",
               width, bench_path_name(res->path), res->resent);
    if (!res->ok)
        printf("      %-*s FAILED: %s\n", width, bench_path_name(res->path), res->error);
    fflush(stdout);
}

static void
s_print_row(const s_result_t *res)
{
    printf("%-5zu %-14s", res->size, bench_path_name(res->path));
    s_print_rate(res->rate);
    s_print_rate(res->rcpt_rate);
    s_print_tail(res, true);
    s_print_notes(res, 14);
}

/*  A fan-out row, then one line per subscriber. A run that lost a message shows no rate: every
    subscriber must have had every message for the figures to mean anything.  */
static void
s_print_fanout_row(const s_result_t *res)
{
    bool figures = res->ok;
    double mean = 0;
    for (size_t i = 0; i < res->nsubs; i++)
        mean += res->subs[i].rate / (double)res->nsubs;
    printf("%-5zu %-16s %4zu", res->size, bench_path_name(res->path), res->nsubs);
    s_print_rate(figures ? res->rate : 0);
    s_print_rate(figures ? mean : 0);
    s_print_rate(figures ? res->total_rate : 0);
    s_print_rate(figures ? res->rcpt_rate : 0);
    s_print_tail(res, figures);
    for (size_t i = 0; i < res->nsubs; i++) {
        const s_sub_result_t *sub = &res->subs[i];
        printf("      subscriber %-2zu received %" PRId64, i + 1, sub->received);
        if (figures)
            printf(", %.0f msgs/s", sub->rate);
        if (res->samples > 0)
            printf(", p50us %.1f, p99us %.1f", sub->p50_us, sub->p99_us);
        if (res->path == BENCH_PATH_DURABLE)
            printf(", acks %" PRId64, sub->acks);
        printf(", redelivered %" PRId64 "\n", sub->redelivered);
    }
    s_print_notes(res, 16);
}

//  CPU columns of one phase: each process, then the sum when all are known.
static void
s_print_cpu_phase(const double cpu_us[3])
{
    double total = 0;
    for (int i = 0; i < 3; i++) {
        s_print_cpu(cpu_us[i]);
        total += cpu_us[i];
    }
    s_print_cpu(total);
    printf("\n");
}

//  A failed phase still shows what it measured, as the 1 -> 1 rows do.
static void
s_print_offline_row(const s_result_t *res)
{
    printf("%-5zu %-16s %-9s", res->size, bench_path_name(res->path), "publish");
    s_print_rate(0);
    s_print_rate(res->rcpt_rate);
    printf("  %-10s", "");
    s_print_cpu_phase(res->cpu_us);
    printf("%-5zu %-16s %-9s", res->size, bench_path_name(res->path), "read back");
    s_print_rate(res->rate);
    s_print_rate(0);
    printf("  %-10s", "");
    s_print_cpu_phase(res->readback_cpu_us);
    const s_sub_result_t *sub = &res->subs[0];
    printf("      subscriber read back %" PRId64 ", acks %" PRId64 ", redelivered %" PRId64 "\n",
           sub->received, sub->acks, sub->redelivered);
    s_print_notes(res, 16);
}

static void
s_print_latency(int64_t samples, double p50_us, double p99_us)
{
    if (samples > 0)
        printf(" %8.1f %8.1f", p50_us, p99_us);
    else
        printf(" %8s %8s", "-", "-");
}

//  A failed phase still shows what it measured, as the other tables do.
static void
s_print_flood_row(const s_result_t *res)
{
    const s_flood_result_t *flood = &res->flood;
    printf("%-5zu %-16s %-11s", res->size, bench_path_name(res->path), "alone");
    s_print_latency(flood->alone_samples, flood->alone_p50_us, flood->alone_p99_us);
    printf(" %10s %8s %9s %7s %10s %6s %10s\n", "-", "-", "-", "-", "-", "-", "-");
    printf("%-5zu %-16s %-11s", res->size, bench_path_name(res->path), "under flood");
    s_print_latency(res->samples, res->p50_us, res->p99_us);
    if (flood->sent > 0) {
        printf(" %10" PRId64 " %8.0f %9" PRId64 " %7.0f %10" PRId64 " %6" PRId64, flood->sent,
               flood->sent_rate, flood->accepted, flood->accepted_rate, flood->refused,
               flood->rejected);
        if (isnan(flood->broker_cpu_us))
            printf(" %10s\n", "-");
        else
            printf(" %10.2f\n", flood->broker_cpu_us);
    } else
        printf(" %10s %8s %9s %7s %10s %6s %10s\n", "-", "-", "-", "-", "-", "-", "-");
    s_print_notes(res, 16);
}

static const s_result_t *
s_find_result(const s_result_t *results, size_t nresults, bench_path_t path, size_t size)
{
    for (size_t i = 0; i < nresults; i++)
        if (results[i].path == path && results[i].size == size && results[i].ok &&
            results[i].rate > 0)
            return &results[i];
    return NULL;
}

//  Each vedettad path over each reference, then durable over live; per size, for the runs that
//  succeeded.
static void
s_print_ratios_1to1(const s_opts_t *opts, const s_result_t *results, size_t nresults)
{
    static const struct {
        bench_path_t path, ref;
    } pairs[] = { { BENCH_PATH_VEDETTAD, BENCH_PATH_ZMQ },
                  { BENCH_PATH_VEDETTAD, BENCH_PATH_FWD },
                  { BENCH_PATH_STORE, BENCH_PATH_ZMQ },
                  { BENCH_PATH_STORE, BENCH_PATH_FWD },
                  { BENCH_PATH_STORE, BENCH_PATH_VEDETTAD } };
    for (size_t s = 0; s < opts->nsizes; s++) {
        for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
            const s_result_t *num = s_find_result(results, nresults, pairs[i].path, opts->sizes[s]);
            const s_result_t *ref = s_find_result(results, nresults, pairs[i].ref, opts->sizes[s]);
            if (!num || !ref)
                continue;
            double cpu_ref = s_cpu_total(ref);
            printf("ratio %s/%s %zu: %.2f  (cpu-us/msg %.2fx)\n", bench_path_name(num->path),
                   bench_path_name(ref->path), ref->size, num->rate / ref->rate,
                   cpu_ref > 0 ? s_cpu_total(num) / cpu_ref : 0.0);
        }
    }
}

/*  Durable publish: vedettad-store's receipts per second (each one after the message's fsync)
    over the live broker's receipts per second, and over the raw CURVE reference's messages per
    second (which answers nothing and keeps nothing).  */
static void
s_print_ratios_publish(const s_opts_t *opts, const s_result_t *results, size_t nresults)
{
    for (size_t s = 0; s < opts->nsizes; s++) {
        size_t size = opts->sizes[s];
        const s_result_t *store = s_find_result(results, nresults, BENCH_PATH_STORE, size);
        const s_result_t *live = s_find_result(results, nresults, BENCH_PATH_VEDETTAD, size);
        const s_result_t *zmq = s_find_result(results, nresults, BENCH_PATH_ZMQ, size);
        if (!store || store->rcpt_rate <= 0)
            continue;
        if (live && live->rcpt_rate > 0)
            printf("ratio durable publish vedettad-store/vedettad rcpt/s %zu: %.2f\n", size,
                   store->rcpt_rate / live->rcpt_rate);
        if (zmq)
            printf("ratio durable publish vedettad-store rcpt/s / zmq-curve msgs/s %zu: %.2f\n",
                   size, store->rcpt_rate / zmq->rate);
    }
}

//  1 -> N: durable over live (same N, same run); each over its 1 -> 1 counterpart, as
//  deliveries per second.
static void
s_print_ratios_fanout(const s_opts_t *opts, const s_result_t *results, size_t nresults)
{
    for (size_t s = 0; s < opts->nsizes; s++) {
        size_t size = opts->sizes[s];
        const s_result_t *durable = s_find_result(results, nresults, BENCH_PATH_DURABLE, size);
        const s_result_t *live = s_find_result(results, nresults, BENCH_PATH_FANOUT, size);
        if (durable && live) {
            double cpu_ref = s_cpu_total(live);
            printf("ratio vedettad-durable/vedettad-fanout %zu (1->%zu): sub-min %.2f, total "
                   "%.2f  (cpu-us/delivery %.2fx; p50 %+.0f us)\n",
                   size, durable->nsubs, durable->rate / live->rate,
                   durable->total_rate / live->total_rate,
                   cpu_ref > 0 ? s_cpu_total(durable) / cpu_ref : 0.0,
                   durable->p50_us - live->p50_us);
        }
        static const struct {
            bench_path_t path, ref;
        } pairs[] = { { BENCH_PATH_FANOUT, BENCH_PATH_VEDETTAD },
                      { BENCH_PATH_DURABLE, BENCH_PATH_STORE } };
        for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
            const s_result_t *num = s_find_result(results, nresults, pairs[i].path, size);
            const s_result_t *ref = s_find_result(results, nresults, pairs[i].ref, size);
            if (num && ref)
                printf("ratio %s total/s / %s msgs/s %zu (1->%zu vs 1->1): %.2f\n",
                       bench_path_name(num->path), bench_path_name(ref->path), size, num->nsubs,
                       num->total_rate / ref->rate);
        }
    }
}

/*  vedettad-offline against the same run: its receipts with nobody listening over the live
    broker's receipts, and its read back from the store over vedettad-store's live durable
    deliveries.  */
static void
s_print_ratios_offline(const s_opts_t *opts, const s_result_t *results, size_t nresults)
{
    for (size_t s = 0; s < opts->nsizes; s++) {
        size_t size = opts->sizes[s];
        const s_result_t *offline = s_find_result(results, nresults, BENCH_PATH_OFFLINE, size);
        const s_result_t *live = s_find_result(results, nresults, BENCH_PATH_VEDETTAD, size);
        const s_result_t *store = s_find_result(results, nresults, BENCH_PATH_STORE, size);
        const s_result_t *fwd = s_find_result(results, nresults, BENCH_PATH_FWD, size);
        if (!offline)
            continue;
        //  The peers' durable anchors were measured with the same forwarder on the same machine:
        //  over it, the comparison holds however fast the machine is today (README).
        if (fwd && fwd->rate > 0 && offline->rcpt_rate > 0)
            printf("ratio durable publish offline vedettad-offline rcpt/s / fwd-curve msgs/s %zu: "
                   "%.2f\n",
                   size, offline->rcpt_rate / fwd->rate);
        if (live && live->rcpt_rate > 0 && offline->rcpt_rate > 0)
            printf("ratio durable publish offline vedettad-offline/vedettad rcpt/s %zu: %.2f\n",
                   size, offline->rcpt_rate / live->rcpt_rate);
        if (store)
            printf("ratio read back vedettad-offline/vedettad-store msgs/s %zu: %.2f\n", size,
                   offline->rate / store->rate);
    }
}

/*  vedettad-flood: the victim's latency under the flood over alone, same run, same broker; and
    what became of the flood.  */
static void
s_print_ratios_flood(const s_result_t *results, size_t nresults)
{
    for (size_t i = 0; i < nresults; i++) {
        const s_result_t *res = &results[i];
        const s_flood_result_t *flood = &res->flood;
        if (res->path != BENCH_PATH_FLOOD || !res->ok || flood->alone_p50_us <= 0 ||
            flood->alone_p99_us <= 0)
            continue;
        printf("ratio flood victim latency under flood / alone %zu: p50 %.2f, p99 %.2f; flooder: "
               "accepted %" PRId64 " (%.0f/s), refused with ERATE %" PRId64
               ", other rejections %" PRId64 "\n",
               res->size, res->p50_us / flood->alone_p50_us, res->p99_us / flood->alone_p99_us,
               flood->accepted, flood->accepted_rate, flood->refused, flood->rejected);
    }
}

static int
s_curve_keys(s_env_t *env)
{
    if (!zmq_has("curve")) {
        fprintf(stderr, "vedetta-bench: this libzmq has no CURVE support\n");
        return -1;
    }
    if (zmq_curve_keypair(env->server_public, env->server_secret) != 0 ||
        zmq_curve_keypair(env->client_public, env->client_secret) != 0) {
        fprintf(stderr, "vedetta-bench: zmq_curve_keypair: %s\n", zmq_strerror(errno));
        return -1;
    }
    return 0;
}

//  The tables, in the order they are printed.
typedef enum { S_TABLE_1TO1, S_TABLE_FANOUT, S_TABLE_OFFLINE, S_TABLE_FLOOD } s_table_t;

static s_table_t
s_table_of(bench_path_t path)
{
    if (bench_path_is_fanout(path))
        return S_TABLE_FANOUT;
    if (path == BENCH_PATH_FLOOD)
        return S_TABLE_FLOOD;
    return path == BENCH_PATH_OFFLINE ? S_TABLE_OFFLINE : S_TABLE_1TO1;
}

static bool
s_any_enabled(const s_opts_t *opts, s_table_t table)
{
    for (int p = 0; p < BENCH_PATH_COUNT; p++)
        if (opts->enabled[p] && s_table_of((bench_path_t)p) == table)
            return true;
    return false;
}

static void
s_print_table_columns(const s_opts_t *opts, s_table_t table)
{
    if (table == S_TABLE_FANOUT)
        s_print_fanout_columns(opts);
    else if (table == S_TABLE_OFFLINE)
        s_print_offline_columns(opts);
    else if (table == S_TABLE_FLOOD)
        s_print_flood_columns(opts);
    else
        s_print_columns();
}

static void
s_print_table_row(const s_result_t *res)
{
    s_table_t table = s_table_of(res->path);
    if (table == S_TABLE_FANOUT)
        s_print_fanout_row(res);
    else if (table == S_TABLE_OFFLINE)
        s_print_offline_row(res);
    else if (table == S_TABLE_FLOOD)
        s_print_flood_row(res);
    else
        s_print_row(res);
}

/*  Runs the enabled paths of one table, size by size, printing each row as it completes.
    Returns the number of failed runs.  */
static int
s_run_table(const s_env_t *env, s_table_t table, s_result_t *results, size_t *nresults)
{
    const s_opts_t *opts = env->opts;
    if (!s_any_enabled(opts, table))
        return 0;
    s_print_table_columns(opts, table);
    int failures = 0;
    for (size_t s = 0; s < opts->nsizes && !bench_proc_stopping(); s++) {
        for (int p = 0; p < BENCH_PATH_COUNT && !bench_proc_stopping(); p++) {
            if (!opts->enabled[p] || s_table_of((bench_path_t)p) != table)
                continue;
            s_result_t *res = &results[(*nresults)++];
            if (s_run(env, (bench_path_t)p, opts->sizes[s], res) != 0)
                failures++;
            s_print_table_row(res);
        }
    }
    return failures;
}

int
main(int argc, char **argv)
{
    s_opts_t opts;
    int rc = s_parse_args(argc, argv, &opts);
    if (rc)
        return rc == 1 ? 0 : 2;
    bench_proc_catch_signals();
    s_env_t env;
    memset(&env, 0, sizeof env);
    env.opts = &opts;
    if (s_curve_keys(&env))
        return 1;
    bool vedettad = false;
    for (int p = 0; p < BENCH_PATH_COUNT; p++)
        vedettad = vedettad || (opts.enabled[p] && bench_path_is_vedettad((bench_path_t)p));
    if (vedettad && (s_find_broker(&opts) != 0 || s_vedettad_prepare(&env) != 0)) {
        bench_proc_tmpdir_remove(env.dir);
        return 1;
    }
    s_print_header(&env);
    static s_result_t results[S_MAX_SIZES * BENCH_PATH_COUNT];
    size_t nresults = 0;
    int failures = s_run_table(&env, S_TABLE_1TO1, results, &nresults);
    failures += s_run_table(&env, S_TABLE_FANOUT, results, &nresults);
    failures += s_run_table(&env, S_TABLE_OFFLINE, results, &nresults);
    failures += s_run_table(&env, S_TABLE_FLOOD, results, &nresults);
    printf("\n");
    s_print_ratios_1to1(&opts, results, nresults);
    s_print_ratios_publish(&opts, results, nresults);
    s_print_ratios_fanout(&opts, results, nresults);
    s_print_ratios_offline(&opts, results, nresults);
    s_print_ratios_flood(results, nresults);
    bench_proc_tmpdir_remove(env.dir);
    if (bench_proc_stopping()) {
        fprintf(stderr, "vedetta-bench: interrupted\n");
        return 1;
    }
    if (failures)
        fprintf(stderr, "vedetta-bench: %d run(s) failed\n", failures);
    return failures ? 1 : 0;
}

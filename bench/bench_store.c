/*  vedetta-bench-store: what the durable store costs per message, against what the same bytes
    cost written and flushed by hand, in the same run, on the same file system.
    For each envelope size and batch size it appends `count` messages the way the broker does
    (a lookup of each new (sender, id) first, then one vdb_store_append per batch) and reports
    the CPU time (user + system) and the wall time per message; then it writes the same bytes
    with one write() and one fdatasync() per batch, the floor for any durable store.
    Usage and output: bench/README.md.  */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <ftw.h>

#include "vdb_store.h"
#include "vedetta.h"

#define S_MAX_BATCH  4096
#define S_MAX_SIZE   (256 * 1024)
#define S_MAX_LIST   8
#define S_SENDERS    32
#define S_CATEGORIES 4
#define S_SINGLE_CAP 2000 // batch 1 waits for one fsync per message: fewer of them

typedef struct {
    size_t count;
    size_t sizes[S_MAX_LIST];
    size_t n_sizes;
    size_t batches[S_MAX_LIST];
    size_t n_batches;
    vdb_sync_t sync;
    const char *dir;
    int keep;
    int lookup; // look each new (sender, id) up first, as the broker does
} s_options_t;

//  One message's storage; the store borrows from it.
typedef struct {
    char sender[VDP_MAX_ORG + 1];
    char id[VDP_ID_LEN + 1];
    char key[VDP_KEY_Z85_LEN + 1];
} s_slot_t;

typedef struct {
    double cpu_s;  // append: CPU seconds (user + system) of this process
    double wall_s; // append: elapsed seconds
    double lookup_cpu_s;
} s_cost_t;

static uint64_t s_rng = 0x9e3779b97f4a7c15u;

static uint64_t
s_random(void)
{
    //  xorshift64*: enough to make ids that land all over the (sender, id) key space, as
    //  random v4 UUIDs do.
    s_rng ^= s_rng >> 12;
    s_rng ^= s_rng << 25;
    s_rng ^= s_rng >> 27;
    return s_rng * 0x2545f4914f6cdd1du;
}

static double
s_clock(clockid_t clock)
{
    struct timespec now;
    clock_gettime(clock, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void
s_uuid(char out[VDP_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t high = s_random();
    uint64_t low = s_random();
    for (unsigned i = 0, nibble = 0; i < VDP_ID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            out[i] = '-';
            continue;
        }
        uint64_t word = nibble < 16 ? high : low;
        out[i] = hex[(word >> (4 * (nibble % 16))) & 0xf];
        nibble++;
    }
    out[VDP_ID_LEN] = '\0';
}

static int
s_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

//  Appends `count` messages of `size` bytes in batches of `batch`, each looked up first.
static int
s_run_store(const s_options_t *opt,
            const char *path,
            size_t size,
            size_t batch,
            size_t count,
            s_cost_t *cost)
{
    char err[256] = "";
    vdb_store_t *store = vdb_store_open(path, opt->sync, err, sizeof err);
    if (!store) {
        fprintf(stderr, "bench-store: open %s: %s\n", path, err);
        return -1;
    }
    static const char *categories[S_CATEGORIES] = { "cyber", "infra", "meteo", "civil" };
    s_slot_t *slots = calloc(batch, sizeof *slots);
    vdb_store_msg_t *msgs = calloc(batch, sizeof *msgs);
    uint8_t *raw = malloc(size);
    if (!slots || !msgs || !raw) {
        fprintf(stderr, "bench-store: out of memory\n");
        free(raw), free(msgs), free(slots);
        vdb_store_close(&store);
        return -1;
    }
    for (size_t i = 0; i < size; i++)
        raw[i] = (uint8_t)s_random();
    int64_t now_ms = (int64_t)(s_clock(CLOCK_REALTIME) * 1000);
    uint64_t seq = 0;
    int rc = VD_OK;
    *cost = (s_cost_t){ 0 };
    for (size_t done = 0; done < count && rc == VD_OK; done += batch) {
        size_t n = count - done < batch ? count - done : batch;
        for (size_t i = 0; i < n; i++) {
            s_slot_t *slot = &slots[i];
            unsigned org = (unsigned)(s_random() % S_SENDERS);
            snprintf(slot->sender, sizeof slot->sender, "comune:a%03u", org);
            snprintf(slot->key, sizeof slot->key, "%-39u!", org);
            s_uuid(slot->id);
            seq++;
            msgs[i] = (vdb_store_msg_t){
                .seq = seq,
                .accepted_at = now_ms + (int64_t)(seq / 64),
                .sender = slot->sender,
                .id = slot->id,
                .topic = "alert.toscana.a001",
                .category = categories[seq % S_CATEGORIES],
                .tlp = VDP_TLP_GREEN,
                .expires = 0,
                .key = slot->key,
                .to = NULL,
                .raw = raw,
                .raw_len = size,
            };
        }
        //  As the broker does: every new (sender, id) misses its cache and is looked up.
        double cpu0 = s_clock(CLOCK_PROCESS_CPUTIME_ID);
        for (size_t i = 0; opt->lookup && i < n && rc == VD_OK; i++) {
            int found = vdb_store_lookup(store, msgs[i].sender, msgs[i].id, NULL, NULL, NULL);
            rc = found == VD_ENOTFOUND ? VD_OK : VD_ESTORE;
        }
        double cpu1 = s_clock(CLOCK_PROCESS_CPUTIME_ID);
        double wall1 = s_clock(CLOCK_MONOTONIC);
        if (rc == VD_OK)
            rc = vdb_store_append(store, msgs, n, err, sizeof err);
        cost->wall_s += s_clock(CLOCK_MONOTONIC) - wall1;
        cost->cpu_s += s_clock(CLOCK_PROCESS_CPUTIME_ID) - cpu1;
        cost->lookup_cpu_s += cpu1 - cpu0;
    }
    if (rc != VD_OK)
        fprintf(stderr, "bench-store: append failed: %s\n", err[0] ? err : "lookup found a new id");
    free(raw);
    free(msgs);
    free(slots);
    vdb_store_close(&store);
    return rc == VD_OK ? 0 : -1;
}

//  The floor: the same bytes with one write() and one fdatasync() per batch.
static int
s_run_reference(const char *path, size_t size, size_t batch, size_t count, s_cost_t *cost)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    uint8_t *buffer = malloc(size * batch);
    if (fd < 0 || !buffer) {
        fprintf(stderr, "bench-store: %s: %s\n", path, strerror(errno));
        free(buffer);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    for (size_t i = 0; i < size * batch; i++)
        buffer[i] = (uint8_t)s_random();
    *cost = (s_cost_t){ 0 };
    int rc = 0;
    double cpu0 = s_clock(CLOCK_PROCESS_CPUTIME_ID);
    double wall0 = s_clock(CLOCK_MONOTONIC);
    for (size_t done = 0; done < count && rc == 0; done += batch) {
        size_t n = count - done < batch ? count - done : batch;
        if (write(fd, buffer, n * size) != (ssize_t)(n * size) || fdatasync(fd) != 0)
            rc = -1;
    }
    cost->wall_s = s_clock(CLOCK_MONOTONIC) - wall0;
    cost->cpu_s = s_clock(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    if (rc != 0)
        fprintf(stderr, "bench-store: %s: %s\n", path, strerror(errno));
    free(buffer);
    close(fd);
    return rc;
}

static size_t
s_parse_list(const char *text, size_t *out, size_t max, size_t low, size_t high)
{
    size_t n = 0;
    char *copy = strdup(text);
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item && n < max;
         item = strtok_r(NULL, ",", &save)) {
        char *end = NULL;
        unsigned long long value = strtoull(item, &end, 10);
        if (!end || *end || value < low || value > high) {
            free(copy);
            return 0;
        }
        out[n++] = (size_t)value;
    }
    free(copy);
    return n;
}

static void
s_usage(void)
{
    fprintf(stderr, "usage: vedetta-bench-store [--count N] [--sizes A,B] [--batches A,B] "
                    "[--sync full|normal|off] [--dir DIR] [--no-lookup] [--keep]\n");
}

static int
s_parse(int argc, char **argv, s_options_t *opt)
{
    *opt = (s_options_t){ .count = 100000,
                          .sizes = { 100, 1024 },
                          .n_sizes = 2,
                          .batches = { 1, 32, 256 },
                          .n_batches = 3,
                          .sync = VDB_SYNC_FULL,
                          .dir = ".",
                          .lookup = 1 };
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--keep") == 0) {
            opt->keep = 1;
            continue;
        }
        if (strcmp(arg, "--no-lookup") == 0) {
            opt->lookup = 0;
            continue;
        }
        if (!value) {
            s_usage();
            return -1;
        }
        i++;
        if (strcmp(arg, "--count") == 0)
            opt->count = strtoull(value, NULL, 10);
        else if (strcmp(arg, "--sizes") == 0)
            opt->n_sizes = s_parse_list(value, opt->sizes, S_MAX_LIST, 1, S_MAX_SIZE);
        else if (strcmp(arg, "--batches") == 0)
            opt->n_batches = s_parse_list(value, opt->batches, S_MAX_LIST, 1, S_MAX_BATCH);
        else if (strcmp(arg, "--dir") == 0)
            opt->dir = value;
        else if (strcmp(arg, "--sync") == 0 && strcmp(value, "full") == 0)
            opt->sync = VDB_SYNC_FULL;
        else if (strcmp(arg, "--sync") == 0 && strcmp(value, "normal") == 0)
            opt->sync = VDB_SYNC_NORMAL;
        else if (strcmp(arg, "--sync") == 0 && strcmp(value, "off") == 0)
            opt->sync = VDB_SYNC_OFF;
        else {
            s_usage();
            return -1;
        }
    }
    if (opt->count == 0 || opt->n_sizes == 0 || opt->n_batches == 0) {
        s_usage();
        return -1;
    }
    return 0;
}

//  The file system that holds `dir`, so a figure taken on tmpfs is not read as a durable one.
static const char *
s_fs_name(const char *dir)
{
    struct statfs fs;
    if (statfs(dir, &fs) != 0)
        return "unknown";
    switch ((unsigned long)fs.f_type) {
    case 0x01021994UL:
        return "tmpfs (fsync costs nothing: not a durable figure)";
    case 0xEF53UL:
        return "ext4";
    case 0x58465342UL:
        return "xfs";
    case 0x9123683EUL:
        return "btrfs";
    case 0x794c7630UL:
        return "overlayfs";
    default:
        return "other";
    }
}

int
main(int argc, char **argv)
{
    s_options_t opt;
    if (s_parse(argc, argv, &opt) != 0)
        return 2;
    char root[4096];
    snprintf(root, sizeof root, "%s/bench-store.XXXXXX", opt.dir);
    if (!mkdtemp(root)) {
        fprintf(stderr, "bench-store: %s: %s\n", root, strerror(errno));
        return 1;
    }
    static const char *sync_names[] = { "full", "normal", "off" };
    printf("# store sync=%s, file system: %s, %zu messages per run (batch 1: at most %d)\n",
           sync_names[opt.sync], s_fs_name(root), opt.count, S_SINGLE_CAP);
    printf("%-6s %-6s %10s %10s %10s %10s | %10s %10s | %9s %9s\n", "size", "batch", "msgs/s",
           "cpu-us", "wall-us", "lookup-us", "ref-cpu", "ref-wall", "cpu-ratio", "wall-ratio");
    int failed = 0;
    for (size_t s = 0; s < opt.n_sizes; s++) {
        for (size_t b = 0; b < opt.n_batches; b++) {
            size_t size = opt.sizes[s];
            size_t batch = opt.batches[b];
            size_t count = batch == 1 && opt.count > S_SINGLE_CAP ? S_SINGLE_CAP : opt.count;
            char path[4200];
            snprintf(path, sizeof path, "%s/store-%zu-%zu.db", root, size, batch);
            s_cost_t store, ref;
            if (s_run_store(&opt, path, size, batch, count, &store) != 0) {
                failed = 1;
                continue;
            }
            snprintf(path, sizeof path, "%s/ref-%zu-%zu.log", root, size, batch);
            if (s_run_reference(path, size, batch, count, &ref) != 0) {
                failed = 1;
                continue;
            }
            double per = 1e6 / (double)count;
            printf("%-6zu %-6zu %10.0f %10.2f %10.2f %10.2f | %10.2f %10.2f | %9.2f %9.2f\n", size,
                   batch, (double)count / store.wall_s, store.cpu_s * per, store.wall_s * per,
                   store.lookup_cpu_s * per, ref.cpu_s * per, ref.wall_s * per,
                   store.cpu_s / ref.cpu_s, store.wall_s / ref.wall_s);
            fflush(stdout);
        }
    }
    if (!opt.keep)
        nftw(root, s_remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    return failed;
}

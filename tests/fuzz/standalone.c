/*  standalone: runs a libFuzzer target without libFuzzer, so every build (gcc, sanitizers, CI)
    exercises the decoders. It feeds each seed file given on the command line (files, or
    directories of files), then a bounded number of deterministic mutations of them: byte flips,
    truncations, insertions and splices. Real coverage-guided fuzzing: deploy/run.sh fuzz.
    usage: fuzz_<target>_run [--iterations N] [--seed S] SEED_PATH...  */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_SEEDS 256
#define FUZZ_MAX_INPUT (64 * 1024)

typedef struct {
    uint8_t *data;
    size_t size;
} input_t;

static input_t s_seeds[FUZZ_MAX_SEEDS];
static size_t s_seed_count;

static uint64_t
s_next(uint64_t *state) // splitmix64: deterministic, so a failure can be replayed
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void
s_add_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (!file || s_seed_count == FUZZ_MAX_SEEDS) {
        if (file)
            fclose(file);
        return;
    }
    uint8_t *data = malloc(FUZZ_MAX_INPUT);
    size_t size = data ? fread(data, 1, FUZZ_MAX_INPUT, file) : 0;
    fclose(file);
    if (!data)
        return;
    s_seeds[s_seed_count++] = (input_t){ data, size };
    LLVMFuzzerTestOneInput(data, size);
}

static void
s_add_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        s_add_file(path);
        return;
    }
    DIR *dir = opendir(path);
    struct dirent *entry;
    while (dir && (entry = readdir(dir))) {
        if (entry->d_name[0] == '.')
            continue;
        char child[4096];
        snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
        s_add_path(child);
    }
    if (dir)
        closedir(dir);
}

int
main(int argc, char *argv[])
{
    long iterations = 20000;
    uint64_t state = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc)
            iterations = atol(argv[++i]);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            state = strtoull(argv[++i], NULL, 10);
        else
            s_add_path(argv[i]);
    }
    static const uint8_t empty[1];
    LLVMFuzzerTestOneInput(empty, 0);
    uint8_t *buffer = malloc(FUZZ_MAX_INPUT);
    if (!buffer)
        return 1;
    for (long n = 0; n < iterations; n++) {
        size_t size;
        if (s_seed_count == 0) { // no seeds: random bytes
            size = s_next(&state) % 512;
            for (size_t i = 0; i < size; i++)
                buffer[i] = (uint8_t)s_next(&state);
        } else {
            const input_t *seed = &s_seeds[s_next(&state) % s_seed_count];
            size = seed->size;
            memcpy(buffer, seed->data, size);
            int edits = 1 + (int)(s_next(&state) % 4);
            for (int e = 0; e < edits; e++) {
                uint64_t r = s_next(&state);
                switch (r % 5) {
                case 0: // flip a byte
                    if (size)
                        buffer[(r >> 8) % size] ^= (uint8_t)(1u << ((r >> 40) % 8));
                    break;
                case 1: // set a byte to an interesting value
                    if (size) {
                        static const uint8_t values[] = { 0x00, 0xff, 0x7f, 0x80, 0xc0, 0xc1,
                                                          0xdc, 0xdd, 0xde, 0xdf, 0xdb, 0xc6 };
                        buffer[(r >> 8) % size] = values[(r >> 32) % sizeof values];
                    }
                    break;
                case 2: // truncate
                    if (size)
                        size = (r >> 8) % size;
                    break;
                case 3: // insert a random byte
                    if (size < FUZZ_MAX_INPUT) {
                        size_t at = size ? (r >> 8) % size : 0;
                        memmove(buffer + at + 1, buffer + at, size - at);
                        buffer[at] = (uint8_t)(r >> 48);
                        size++;
                    }
                    break;
                default: { // splice another seed's tail
                    const input_t *other = &s_seeds[(r >> 8) % s_seed_count];
                    size_t at = size ? (r >> 24) % size : 0;
                    size_t from = other->size ? (r >> 40) % other->size : 0;
                    size_t take = other->size - from;
                    if (at + take > FUZZ_MAX_INPUT)
                        take = FUZZ_MAX_INPUT - at;
                    memcpy(buffer + at, other->data + from, take);
                    size = at + take;
                }
                }
            }
        }
        LLVMFuzzerTestOneInput(buffer, size);
    }
    printf("fuzz: %zu seeds, %ld mutated inputs, no crash\n", s_seed_count, iterations);
    free(buffer);
    for (size_t i = 0; i < s_seed_count; i++)
        free(s_seeds[i].data);
    return 0;
}

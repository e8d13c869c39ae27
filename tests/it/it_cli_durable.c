/*  it_cli_durable: `vedetta sub --durable / --from-seq / --since`, the real CLI binary against
    the real vedettad and its store. The CLI runs as a child process whose stdout and stderr come
    back through pipes; every read is bounded by a deadline, and only a child this file started
    is ever signalled, by its PID. What is asserted is what the CLI prints: which messages, with
    which seq, in which order; absence is shown with a marker message published after, never
    with a sleep.  */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>

#include "harness.h"
#include "it_suites.h"

extern char **environ;

#define CLI_WAIT_MS    10000 // longest wait for one line of the CLI, or for it to exit
#define CLI_NAP_MS     10    // between looks at a CLI that has closed its pipes but not exited
#define CLI_MAX_ARGS   24
#define CLI_BUF_SIZE   16384
#define CLI_MAX_CHILD  4
#define EXIT_CLI_USAGE 1 // the CLI's exit code for a usage error (docs/cli.md)

static vdt_world_t *s_world;

/*  -------------------------------------------------------------------------------------------
    Running the CLI  */

typedef struct {
    pid_t pid;  // 0 once reaped
    int out;    // read end of its stdout, -1 at end of file
    int err;    // read end of its stderr, -1 at end of file
    int status; // as waitpid() reported it, once reaped
    char out_buf[CLI_BUF_SIZE];
    size_t out_len; // bytes of out_buf not yet taken as lines
    char err_text[CLI_BUF_SIZE];
    size_t err_len; // everything it wrote on stderr so far (truncated past the buffer)
} s_cli_t;

//  Children started and not yet reaped: killed by PID if a test ends early.
static pid_t s_children[CLI_MAX_CHILD];

static void
s_children_kill(void)
{
    for (size_t i = 0; i < CLI_MAX_CHILD; i++) {
        if (s_children[i] > 0) {
            kill(s_children[i], SIGKILL);
            waitpid(s_children[i], NULL, 0);
            s_children[i] = 0;
        }
    }
}

static void
s_children_track(pid_t pid, pid_t replace)
{
    for (size_t i = 0; i < CLI_MAX_CHILD; i++) {
        if (s_children[i] == replace) {
            s_children[i] = pid;
            return;
        }
    }
    ck_abort_msg("more than %d CLI processes at once", CLI_MAX_CHILD);
}

static int64_t
s_clock_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/*  Starts `vedetta sub` as `org` on this world's broker with `args` (NULL-terminated) after
    the connection options. Caller ends it with s_cli_exit().  */
static s_cli_t *
s_cli_sub(const char *org, const char *const *args)
{
    const char *argv[CLI_MAX_ARGS] = { VDT_CLI_BIN,    "sub",
                                       "--broker",     vdt_endpoint(s_world),
                                       "--broker-key", vdt_broker_key(s_world),
                                       "--key",        vdt_secret(s_world, org) };
    size_t argc = 8;
    ck_assert_ptr_nonnull(argv[7]);
    for (; *args; args++) {
        ck_assert_uint_lt(argc, CLI_MAX_ARGS - 1);
        argv[argc++] = *args;
    }
    argv[argc] = NULL;

    s_cli_t *cli = calloc(1, sizeof *cli);
    ck_assert_ptr_nonnull(cli);
    int out[2], err[2];
    ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    int rc = posix_spawn(&cli->pid, VDT_CLI_BIN, &actions, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    close(err[1]);
    ck_assert_msg(rc == 0, "cannot start %s: %s", VDT_CLI_BIN, strerror(rc));
    s_children_track(cli->pid, 0);
    cli->out = out[0];
    cli->err = err[0];
    return cli;
}

static void
s_cli_close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

//  Reads what one of its pipes has; closes it at end of file.
static void
s_cli_read(int *fd, char *buf, size_t size, size_t *len)
{
    char scratch[4096];
    ssize_t n = read(*fd, scratch, sizeof scratch);
    if (n < 0 && errno == EINTR)
        return;
    if (n <= 0) {
        s_cli_close_fd(fd);
        return;
    }
    size_t room = size - 1 - *len;
    size_t keep = (size_t)n < room ? (size_t)n : room;
    memcpy(buf + *len, scratch, keep);
    *len += keep;
    buf[*len] = '\0';
}

//  Waits until `deadline` at most for output on its pipes and takes it.
static void
s_cli_pump(s_cli_t *cli, int64_t deadline)
{
    struct pollfd fds[2] = { { .fd = cli->out, .events = POLLIN },
                             { .fd = cli->err, .events = POLLIN } };
    int64_t left = deadline - s_clock_ms();
    int wait_ms = left < 0 ? 0 : (int)left;
    if (cli->out < 0 && cli->err < 0) {
        poll(NULL, 0, wait_ms < CLI_NAP_MS ? wait_ms : CLI_NAP_MS);
        return;
    }
    if (poll(fds, 2, wait_ms) <= 0)
        return;
    if (fds[0].revents)
        s_cli_read(&cli->out, cli->out_buf, sizeof cli->out_buf, &cli->out_len);
    if (fds[1].revents)
        s_cli_read(&cli->err, cli->err_text, sizeof cli->err_text, &cli->err_len);
}

//  The next line the CLI printed on stdout (caller frees), or NULL at its end or after
//  CLI_WAIT_MS without one.
static char *
s_cli_line(s_cli_t *cli)
{
    int64_t deadline = s_clock_ms() + CLI_WAIT_MS;
    for (;;) {
        char *newline = memchr(cli->out_buf, '\n', cli->out_len);
        if (newline) {
            size_t len = (size_t)(newline - cli->out_buf);
            char *line = strndup(cli->out_buf, len);
            ck_assert_ptr_nonnull(line);
            cli->out_len -= len + 1;
            memmove(cli->out_buf, newline + 1, cli->out_len);
            return line;
        }
        if (cli->out < 0 || s_clock_ms() >= deadline)
            return NULL;
        s_cli_pump(cli, deadline);
    }
}

//  Waits until the CLI has said `text` on stderr (e.g. "subscribed alert.toscana.>").
static void
s_cli_wait_stderr(s_cli_t *cli, const char *text)
{
    int64_t deadline = s_clock_ms() + CLI_WAIT_MS;
    while (!strstr(cli->err_text, text) && cli->err >= 0 && s_clock_ms() < deadline)
        s_cli_pump(cli, deadline);
    ck_assert_msg(strstr(cli->err_text, text) != NULL, "the CLI did not say '%s'; it said: %s",
                  text, cli->err_text);
}

/*  Waits for the CLI to exit (reading its pipes meanwhile, so that it never blocks on them) and
    returns its exit code, or 128 + the signal that ended it; SIGKILLs it by its PID and fails
    the test if it is still running after CLI_WAIT_MS. `signum` (0: none) is sent first: SIGTERM
    as an operator stops it, SIGKILL as a crash.  */
static int
s_cli_exit(s_cli_t *cli, int signum)
{
    if (signum)
        kill(cli->pid, signum);
    int64_t deadline = s_clock_ms() + CLI_WAIT_MS;
    while (cli->pid) {
        pid_t rc = waitpid(cli->pid, &cli->status, WNOHANG);
        if (rc == cli->pid) {
            s_children_track(0, cli->pid);
            cli->pid = 0;
        } else if (s_clock_ms() >= deadline) {
            kill(cli->pid, SIGKILL);
            ck_abort_msg("the CLI did not exit in time; it said: %s", cli->err_text);
        } else {
            s_cli_pump(cli, s_clock_ms() + CLI_NAP_MS);
        }
    }
    //  What it wrote just before exiting.
    while (cli->err >= 0 || cli->out >= 0)
        s_cli_pump(cli, s_clock_ms() + CLI_NAP_MS);
    return WIFEXITED(cli->status) ? WEXITSTATUS(cli->status) : 128 + WTERMSIG(cli->status);
}

static void
s_cli_destroy(s_cli_t **cli_p)
{
    s_cli_t *cli = *cli_p;
    ck_assert_int_eq(cli->pid, 0); // ended with s_cli_exit()
    s_cli_close_fd(&cli->out);
    s_cli_close_fd(&cli->err);
    free(cli);
    *cli_p = NULL;
}

//  Runs `vedetta sub` as cosc:toscana with `args` to its end and returns its exit code; its
//  stderr in `err`.
static int
s_cli_run(const char *const *args, char *err, size_t err_size)
{
    s_cli_t *cli = s_cli_sub("cosc:toscana", args);
    int code = s_cli_exit(cli, 0);
    snprintf(err, err_size, "%s", cli->err_text);
    ck_assert_msg(cli->out_len == 0, "unexpected output: %s", cli->out_buf);
    s_cli_destroy(&cli);
    return code;
}

/*  -------------------------------------------------------------------------------------------
    What it prints  */

typedef struct {
    char body[64];
    char durable[80]; // "" when the line has none
    uint64_t seq;
    int64_t accepted_at;
} s_line_t;

//  The next JSON line of the CLI, parsed; fails the test if none comes.
static s_line_t
s_next(s_cli_t *cli)
{
    char *text = s_cli_line(cli);
    ck_assert_msg(text != NULL, "no line from the CLI; it said: %s", cli->err_text);
    json_error_t error;
    json_t *obj = json_loads(text, 0, &error);
    ck_assert_msg(obj != NULL, "not JSON (%s): %s", error.text, text);
    s_line_t line;
    memset(&line, 0, sizeof line);
    const char *body = json_string_value(json_object_get(obj, "body"));
    const char *durable = json_string_value(json_object_get(obj, "durable"));
    ck_assert_msg(body != NULL, "no body: %s", text);
    snprintf(line.body, sizeof line.body, "%s", body);
    snprintf(line.durable, sizeof line.durable, "%s", durable ? durable : "");
    line.seq = (uint64_t)json_integer_value(json_object_get(obj, "seq"));
    line.accepted_at = (int64_t)json_integer_value(json_object_get(obj, "accepted_at"));
    ck_assert_msg(line.seq > 0 && line.accepted_at > 0, "no seq or accepted_at: %s", text);
    //  "durable" is a broker stamp like "subscription": after it, before the body.
    ck_assert_msg(!durable || strstr(text, "\",\"durable\":") < strstr(text, "\"body\":"),
                  "durable out of place: %s", text);
    ck_assert_msg(!durable || strstr(text, "\"subscription\":") < strstr(text, "\"durable\":"),
                  "durable out of place: %s", text);
    json_decref(obj);
    free(text);
    return line;
}

//  The next line must be the message published with `receipt` and body `body`, on the durable
//  subscription `durable` ("": none).
static void
s_expect(s_cli_t *cli, const char *body, const vd_receipt_t *receipt, const char *durable)
{
    s_line_t line = s_next(cli);
    ck_assert_str_eq(line.body, body);
    ck_assert_uint_eq(line.seq, receipt->seq);
    ck_assert_str_eq(line.durable, durable);
}

/*  -------------------------------------------------------------------------------------------
    Tests  */

//  A world with the demo agencies, its broker not started yet.
static void
s_setup_world(void)
{
    static bool registered;
    if (!registered)
        registered = atexit(s_children_kill) == 0; // a failed assertion exits the test early
    s_world = vdt_world_new();
    vdt_agencies_demo(s_world);
}

static void
s_setup(void)
{
    s_setup_world();
    vdt_broker_start(s_world);
}

static void
s_teardown(void)
{
    s_children_kill();
    vdt_world_destroy(&s_world);
}

static vd_receipt_t
s_pub(vd_client_t *client, const char *topic, const char *body)
{
    vd_envelope_t *env = vdt_envelope(topic, "green", body);
    vd_receipt_t receipt = vdt_publish(client, env);
    vd_envelope_destroy(&env);
    ck_assert_msg(receipt.status == VD_RECEIPT_ACCEPTED, "publish %s: %s %s", body,
                  vd_receipt_status_name(receipt.status), receipt.reason);
    return receipt;
}

/*  The first run starts the durable subscription at m1 (--from-seq), so that the broker sends
    it m1..m5 at once, from its store: m4 and m5 reach the CLI, which stops after printing m3.
    What was sent but not printed comes again; what was printed does not.  */
START_TEST(durable_resumes_after_the_last_line_printed)
{
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    vd_receipt_t m[7];
    for (int i = 1; i <= 5; i++) {
        char body[16];
        snprintf(body, sizeof body, "m%d", i);
        m[i] = s_pub(siena, "alert.toscana.i726", body);
    }
    char from[24];
    snprintf(from, sizeof from, "%llu", (unsigned long long)m[1].seq);
    const char *const first[] = { "--durable", "cosc-main", "--from-seq",      from,
                                  "--count",   "3",         "alert.toscana.>", NULL };
    s_cli_t *cli = s_cli_sub("cosc:toscana", first);
    s_expect(cli, "m1", &m[1], "cosc-main");
    s_expect(cli, "m2", &m[2], "cosc-main");
    s_expect(cli, "m3", &m[3], "cosc-main");
    ck_assert_int_eq(s_cli_exit(cli, 0), 0);
    ck_assert_ptr_null(s_cli_line(cli)); // exactly 3 lines
    s_cli_destroy(&cli);

    //  Away: one more. Back: exactly what follows m3, the last line printed.
    m[6] = s_pub(siena, "alert.toscana.i726", "m6");
    static const char *const again[] = { "--durable", "cosc-main",       "--count",
                                         "3",         "alert.toscana.>", NULL };
    cli = s_cli_sub("cosc:toscana", again);
    s_expect(cli, "m4", &m[4], "cosc-main");
    s_expect(cli, "m5", &m[5], "cosc-main");
    s_expect(cli, "m6", &m[6], "cosc-main");
    ck_assert_int_eq(s_cli_exit(cli, 0), 0);
    s_cli_destroy(&cli);

    //  And then nothing old: the first line of the next run is a marker published after it
    //  subscribed.
    static const char *const once[] = { "--durable", "cosc-main",       "--count",
                                        "1",         "alert.toscana.>", NULL };
    cli = s_cli_sub("cosc:toscana", once);
    s_cli_wait_stderr(cli, "subscribed alert.toscana.>");
    vd_receipt_t marker = s_pub(siena, "alert.toscana.i726", "marker");
    s_expect(cli, "marker", &marker, "cosc-main");
    ck_assert_int_eq(s_cli_exit(cli, 0), 0);
    s_cli_destroy(&cli);
    vd_client_destroy(&siena);
}
END_TEST

START_TEST(durable_a_cli_stopped_by_a_signal_keeps_what_it_printed)
{
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    static const char *const args[] = { "--durable", "cosc-main", "alert.toscana.>", NULL };
    s_cli_t *cli = s_cli_sub("cosc:toscana", args);
    s_cli_wait_stderr(cli, "subscribed alert.toscana.>");
    vd_receipt_t a1 = s_pub(siena, "alert.toscana.i726", "a1");
    s_expect(cli, "a1", &a1, "cosc-main");
    //  Stopped by a signal (no --count): what it printed stays acknowledged.
    ck_assert_int_eq(s_cli_exit(cli, SIGTERM), 0);
    s_cli_destroy(&cli);

    vd_receipt_t a2 = s_pub(siena, "alert.toscana.i726", "a2");
    cli = s_cli_sub("cosc:toscana", args);
    s_expect(cli, "a2", &a2, "cosc-main");
    vd_receipt_t marker = s_pub(siena, "alert.toscana.i726", "marker");
    s_expect(cli, "marker", &marker, "cosc-main");
    ck_assert_int_eq(s_cli_exit(cli, SIGTERM), 0);
    s_cli_destroy(&cli);
    vd_client_destroy(&siena);
}
END_TEST

/*  Killed without warning, the CLI cannot say which of the lines it printed were acknowledged:
    the next run starts again at most right after the last line printed, possibly earlier (at
    least once), and goes on with no gap.  */
START_TEST(durable_a_crashed_cli_loses_nothing)
{
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    static const char *const args[] = { "--durable", "cosc-main", "alert.toscana.>", NULL };
    s_cli_t *cli = s_cli_sub("cosc:toscana", args);
    s_cli_wait_stderr(cli, "subscribed alert.toscana.>");
    vd_receipt_t k[5];
    for (int i = 0; i < 4; i++) {
        char body[16];
        snprintf(body, sizeof body, "k%d", i);
        k[i] = s_pub(siena, "alert.toscana.i726", body);
    }
    s_expect(cli, "k0", &k[0], "cosc-main");
    s_expect(cli, "k1", &k[1], "cosc-main");
    ck_assert_int_eq(s_cli_exit(cli, SIGKILL), 128 + SIGKILL);
    //  Whatever else it managed to print before it died.
    uint64_t last_printed = k[1].seq;
    for (char *line = s_cli_line(cli); line; line = s_cli_line(cli)) {
        last_printed++;
        free(line);
    }
    ck_assert_uint_le(last_printed, k[3].seq);
    s_cli_destroy(&cli);

    k[4] = s_pub(siena, "alert.toscana.i726", "k4");
    cli = s_cli_sub("cosc:toscana", args);
    s_line_t first = s_next(cli);
    ck_assert_uint_ge(first.seq, k[0].seq);
    ck_assert_uint_le(first.seq, last_printed + 1);
    for (uint64_t seq = first.seq; seq < k[4].seq;) {
        s_line_t next = s_next(cli);
        ck_assert_uint_eq(next.seq, ++seq);
    }
    s_cli_wait_stderr(cli, "subscribed alert.toscana.>");
    vd_receipt_t marker = s_pub(siena, "alert.toscana.i726", "marker");
    s_expect(cli, "marker", &marker, "cosc-main");
    ck_assert_int_eq(s_cli_exit(cli, SIGTERM), 0);
    s_cli_destroy(&cli);
    vd_client_destroy(&siena);
}
END_TEST

//  Publishes r0..r4 on report.toscana.i726 (in `r`) and returns Siena's client.
static vd_client_t *
s_publish_reports(vd_receipt_t r[5])
{
    vd_client_t *siena = vdt_connect(s_world, "comune:i726");
    for (int i = 0; i < 5; i++) {
        char body[16];
        snprintf(body, sizeof body, "r%d", i);
        r[i] = s_pub(siena, "report.toscana.i726", body);
    }
    return siena;
}

START_TEST(from_seq_replays_then_goes_on_live)
{
    vd_receipt_t r[5];
    vd_client_t *siena = s_publish_reports(r);
    char from[24];
    snprintf(from, sizeof from, "%llu", (unsigned long long)r[2].seq);
    const char *const args[] = { "--from-seq", from, "report.toscana.>", NULL };
    s_cli_t *cli = s_cli_sub("cosc:toscana", args);
    s_expect(cli, "r2", &r[2], "");
    s_expect(cli, "r3", &r[3], "");
    s_expect(cli, "r4", &r[4], "");
    s_cli_wait_stderr(cli, "subscribed report.toscana.>");
    vd_receipt_t live = s_pub(siena, "report.toscana.i726", "live");
    s_expect(cli, "live", &live, ""); // and nothing in between
    ck_assert_int_eq(s_cli_exit(cli, SIGTERM), 0);
    s_cli_destroy(&cli);
    vd_client_destroy(&siena);
}
END_TEST

//  Runs `vedetta sub --since SINCE report.toscana.>` and checks that it prints every message
//  of `r` accepted at or after `since_ms`, in order, then a live marker.
static void
s_expect_since(vd_client_t *siena, const char *since, int64_t since_ms, const vd_receipt_t r[5])
{
    const char *const args[] = { "--since", since, "report.toscana.>", NULL };
    s_cli_t *cli = s_cli_sub("cosc:toscana", args);
    for (int i = 0; i < 5; i++) {
        if (r[i].accepted_at >= since_ms) {
            char body[16];
            snprintf(body, sizeof body, "r%d", i);
            s_expect(cli, body, &r[i], "");
        }
    }
    s_cli_wait_stderr(cli, "subscribed report.toscana.>");
    vd_receipt_t marker = s_pub(siena, "report.toscana.i726", "marker");
    s_expect(cli, "marker", &marker, "");
    ck_assert_int_eq(s_cli_exit(cli, SIGTERM), 0);
    s_cli_destroy(&cli);
}

START_TEST(since_replays_from_a_time_or_an_age)
{
    vd_receipt_t r[5];
    vd_client_t *siena = s_publish_reports(r);

    //  ISO-8601 with milliseconds: from r3's acceptance on (and any earlier one of that ms).
    int64_t since_ms = r[3].accepted_at;
    time_t secs = (time_t)(since_ms / 1000);
    struct tm tm;
    ck_assert_ptr_nonnull(gmtime_r(&secs, &tm));
    char iso[80];
    snprintf(iso, sizeof iso, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(since_ms % 1000));
    s_expect_since(siena, iso, since_ms, r);

    //  An age: everything this fresh broker has on the pattern, then the marker of the first
    //  run (published after r4) and a new one.
    const char *const args[] = { "--since", "1d", "report.toscana.>", NULL };
    s_cli_t *cli = s_cli_sub("cosc:toscana", args);
    for (int i = 0; i < 5; i++) {
        char body[16];
        snprintf(body, sizeof body, "r%d", i);
        s_expect(cli, body, &r[i], "");
    }
    s_line_t old_marker = s_next(cli);
    ck_assert_str_eq(old_marker.body, "marker");
    s_cli_wait_stderr(cli, "subscribed report.toscana.>");
    vd_receipt_t marker = s_pub(siena, "report.toscana.i726", "marker 2");
    s_expect(cli, "marker 2", &marker, "");
    ck_assert_int_eq(s_cli_exit(cli, SIGTERM), 0);
    s_cli_destroy(&cli);
    vd_client_destroy(&siena);
}
END_TEST

//  A bad argument: exit code 1 (usage error) before connecting, with `message` on stderr.
static void
s_expect_usage_error(const char *const *args, const char *message)
{
    char err[CLI_BUF_SIZE];
    int code = s_cli_run(args, err, sizeof err);
    ck_assert_msg(code == EXIT_CLI_USAGE, "exit %d, expected %d; stderr: %s", code, EXIT_CLI_USAGE,
                  err);
    ck_assert_msg(strstr(err, message) != NULL, "no '%s' in: %s", message, err);
    ck_assert_msg(strstr(err, "Try 'vedetta sub --help'") != NULL, "no hint in: %s", err);
    ck_assert_msg(strstr(err, "subscribed") == NULL, "subscribed anyway: %s", err);
}

START_TEST(bad_history_arguments_are_usage_errors)
{
    static const char *const both[] = {
        "--from-seq", "3", "--since", "2h", "alert.toscana.>", NULL
    };
    s_expect_usage_error(both, "--from-seq and --since exclude each other");
    static const char *const zero[] = { "--from-seq", "0", "alert.toscana.>", NULL };
    s_expect_usage_error(zero, "invalid --from-seq '0'");
    static const char *const word[] = { "--from-seq", "last", "alert.toscana.>", NULL };
    s_expect_usage_error(word, "invalid --from-seq 'last'");
    static const char *const no_unit[] = { "--since", "15", "alert.toscana.>", NULL };
    s_expect_usage_error(no_unit, "invalid --since '15'");
    static const char *const no_zone[] = { "--since", "2026-11-22T10:00:00", "alert.toscana.>",
                                           NULL };
    s_expect_usage_error(no_zone, "invalid --since '2026-11-22T10:00:00'");
    static const char *const no_day[] = { "--since", "2026-02-30T10:00:00Z", "alert.toscana.>",
                                          NULL };
    s_expect_usage_error(no_day, "invalid --since '2026-02-30T10:00:00Z'");
    static const char *const name[] = { "--durable", "cosc main", "alert.toscana.>", NULL };
    s_expect_usage_error(name, "invalid --durable 'cosc main'");
    static const char *const two[] = { "--durable", "cosc-main", "alert.toscana.>",
                                       "report.toscana.>", NULL };
    s_expect_usage_error(two, "--durable takes one PATTERN");

    //  --help documents them.
    static const char *const help[] = { "--help", NULL };
    s_cli_t *cli = s_cli_sub("cosc:toscana", help);
    char *text = NULL;
    size_t size = 0;
    FILE *all = open_memstream(&text, &size);
    ck_assert_ptr_nonnull(all);
    for (int i = 0; i < 200; i++) {
        char *line = s_cli_line(cli);
        if (!line)
            break;
        fprintf(all, "%s\n", line);
        free(line);
    }
    fclose(all);
    ck_assert_int_eq(s_cli_exit(cli, 0), 0);
    s_cli_destroy(&cli);
    ck_assert_ptr_nonnull(strstr(text, "--durable NAME"));
    ck_assert_ptr_nonnull(strstr(text, "--from-seq N"));
    ck_assert_ptr_nonnull(strstr(text, "--since TIME"));
    free(text);
}
END_TEST

//  A broker that keeps no store (live only).
static void
s_setup_live_only(void)
{
    s_setup_world();
    FILE *cfg = fopen(vdt_path(s_world, "vedettad.cfg"), "a");
    ck_assert_ptr_nonnull(cfg);
    fputs("store\n    path = \"\"\n", cfg);
    ck_assert_int_eq(fclose(cfg), 0);
    vdt_broker_start(s_world);
}

START_TEST(history_from_a_broker_without_store_is_refused)
{
    char err[CLI_BUF_SIZE];
    static const char *const durable[] = { "--durable", "cosc-main", "alert.toscana.>", NULL };
    ck_assert_int_eq(s_cli_run(durable, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "no store") && strstr(err, "ESTORE"), "no reason in: %s", err);
    static const char *const since[] = { "--since", "1h", "alert.toscana.>", NULL };
    ck_assert_int_eq(s_cli_run(since, err, sizeof err), 2);
    ck_assert_msg(strstr(err, "no store") && strstr(err, "ESTORE"), "no reason in: %s", err);
}
END_TEST

Suite *
it_cli_durable_suite(void)
{
    Suite *s = suite_create("it_cli_durable");
    TCase *tc = tcase_create("cli_durable");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, durable_resumes_after_the_last_line_printed);
    tcase_add_test(tc, durable_a_cli_stopped_by_a_signal_keeps_what_it_printed);
    tcase_add_test(tc, durable_a_crashed_cli_loses_nothing);
    tcase_add_test(tc, from_seq_replays_then_goes_on_live);
    tcase_add_test(tc, since_replays_from_a_time_or_an_age);
    tcase_add_test(tc, bad_history_arguments_are_usage_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("cli_live_only");
    tcase_add_checked_fixture(tc, s_setup_live_only, s_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, history_from_a_broker_without_store_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

/*  bench_proc: the processes of vedetta-bench and how the coordinator talks to them.

    Every role (publisher, subscriber, forwarder) runs in its own forked process, and vedettad
    is exec'd; so each one's CPU time can be read apart from the others. The coordinator and a
    forked role exchange fixed-size bench_ctl_t messages over an AF_UNIX SOCK_SEQPACKET pair
    (one read is one message; EOF means the peer died). Children get PR_SET_PDEATHSIG, so they
    cannot outlive the coordinator, and bench_proc_stop() reaps whatever it started.
    No function here touches ZeroMQ: a ZeroMQ context does not survive fork(), so the
    coordinator never creates one, and each child creates its own.  */

#ifndef BENCH_PROC_H_INCLUDED
#define BENCH_PROC_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_CTL_TEXT 512

typedef enum {
    BENCH_CTL_READY = 1, // child -> coordinator: set up; text: its bound endpoint(s) if any
    BENCH_CTL_FAIL,      // child -> coordinator: gave up; text says why
    BENCH_CTL_JOIN,      // coordinator -> subscriber: wait for a probe message
    BENCH_CTL_PROBE,     // coordinator -> publisher: send probes until STOP
    BENCH_CTL_JOINED,    // subscriber -> coordinator: a probe arrived, the subscription is live
    BENCH_CTL_STOP,      // coordinator -> publisher: stop probing, or flooding (answered by
                         // DONE)
    BENCH_CTL_GO,        // coordinator -> both: throughput phase; v[0] = messages
    BENCH_CTL_DRAIN,     // coordinator -> subscriber: the publisher is done; stop when idle
    BENCH_CTL_LATENCY,   // coordinator -> both: latency phase; v[0] = samples, v[1] = warm-up;
                         // subscriber: v[2] = ns added to its deadline (it starts before the
                         // publisher on vedettad-flood)
    BENCH_CTL_DONE,      // child -> coordinator: phase over; v[] = results (see bench_roles.h)
    BENCH_CTL_ABORT,     // coordinator -> child: stop the current phase now
    BENCH_CTL_QUIT,      // coordinator -> child: close everything and exit 0
    BENCH_CTL_LEAVE,     // coordinator -> durable subscriber: ack what it has, close its
                         // client (answered by DONE); the broker keeps its cursor
    BENCH_CTL_READBACK,  // coordinator -> durable subscriber: reconnect on the same name and
                         // read v[0] messages back from the store (answered by DONE)
    BENCH_CTL_FLOOD,     // coordinator -> flooder: publish without pause until STOP, v[0]
                         // messages at most, or the phase deadline (answered by DONE); v[1]:
                         // accepted receipts (its burst) to have before FLOODING
    BENCH_CTL_FLOODING   // flooder -> coordinator: v[1] publishes accepted and one refused
                         // with ERATE: the flood is over its limits; v[0] = when, v[1] =
                         // accepted by then
} bench_ctl_type_t;

typedef struct {
    int32_t type;  // bench_ctl_type_t
    int32_t rc;    // 0 or a vd_err_t
    int64_t v[10]; // numbers, by message type
    char text[BENCH_CTL_TEXT];
} bench_ctl_t;

typedef struct {
    pid_t pid;     // 0 when not running
    int fd;        // coordinator's end of the control pair; -1 for exec'd children
    char name[32]; // "publisher", "vedettad"... for messages
} bench_child_t;

//  The body of a forked child: runs with its end of the control pair, returns its exit code.
typedef int(bench_child_fn)(int ctl, void *arg);

//  CLOCK_MONOTONIC in ns: one clock for all the processes of one machine.
int64_t bench_proc_now_ns(void);

/*  CPU time (user + system, all threads) consumed so far by process `pid`, in ns, read through
    its CPU-time clock (clock_getcpuclockid) or, failing that, /proc/<pid>/stat in clock ticks.
    Returns -1 if neither works.  */
int64_t bench_proc_cpu_ns(pid_t pid);

/*  Forks a child running fn(ctl, arg) and exits it with the code fn returns. The child keeps
    stdin/out/err, its end of the control pair and the fds in keep[0..nkeep), and closes every
    other fd, so no child holds another's pipes open. Returns 0, or -1 (errno set).  */
int bench_proc_fork(bench_child_t *child,
                    const char *name,
                    bench_child_fn *fn,
                    void *arg,
                    const int *keep,
                    size_t nkeep);

//  Forks and execs argv[0] with argv (no control pair). Returns 0, or -1 (errno set). An
//  exec failure shows as the child exiting with code 127.
int bench_proc_spawn(bench_child_t *child, const char *name, char *const argv[]);

/*  Whether the child has exited (reaping it if so); writes a description to `why` then. The
    control pair stays open, so that a FAIL sent just before exiting can still be read;
    bench_proc_stop() closes it.  */
bool bench_proc_exited(bench_child_t *child, char *why, size_t why_size);

/*  Stops a child: QUIT on its control pair if it has one, else SIGTERM; waits up to `grace_ms`
    for it to exit, then SIGKILLs and reaps it. Returns its exit status as waitpid() gave it, or
    -1 if it had to be killed. Safe on a child that is not running.  */
int bench_proc_stop(bench_child_t *child, int grace_ms);

//  Sends one control message. Returns 0, or -1 (peer gone).
int bench_ctl_send(int fd, const bench_ctl_t *msg);

//  Sends a control message of `type` with no payload.
int bench_ctl_send_type(int fd, bench_ctl_type_t type);

/*  Receives one control message, waiting until `deadline_ns` (bench_proc_now_ns() clock; 0:
    don't wait). Returns 0; 1 on timeout; -1 if the peer is gone or the coordinator was asked to
    stop (bench_proc_stopping()).  */
int bench_ctl_recv(int fd, bench_ctl_t *msg, int64_t deadline_ns);

//  Fills `msg` as a FAIL message with a printf-style text, and sends it. Returns -1 always so
//  that a role can `return bench_ctl_fail(...)`.
int bench_ctl_fail(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

//  Installs SIGINT/SIGTERM handlers in the coordinator that make waits return early.
void bench_proc_catch_signals(void);

//  Whether SIGINT or SIGTERM arrived.
bool bench_proc_stopping(void);

/*  Creates a private (0700) scratch directory under $TMPDIR (or the system's temporary
    directory) into `out`. Returns 0, or -1 (errno set).  */
int bench_proc_tmpdir_new(char *out, size_t size);

//  Removes a scratch directory and everything under it. Returns 0 or -1.
int bench_proc_tmpdir_remove(const char *path);

#endif

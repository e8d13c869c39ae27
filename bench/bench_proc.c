/*  bench_proc: child processes, control messages, CPU clocks and the scratch directory of
    vedetta-bench. Invariant: a bench_child_t with pid != 0 is a child we started and have not
    reaped yet; bench_proc_stop() is the one way it goes back to pid == 0 (or
    bench_proc_exited() when it died on its own).  */

#include "bench_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t s_stopping;

int64_t
bench_proc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

//  utime + stime (fields 14 and 15) of /proc/<pid>/stat, in ns; -1 on failure.
static int64_t
s_cpu_from_proc(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *file = fopen(path, "r");
    if (!file)
        return -1;
    char line[1024];
    char *got = fgets(line, sizeof line, file);
    fclose(file);
    if (!got)
        return -1;
    //  The command name (field 2) may hold spaces and parentheses: skip to the last ')'.
    char *p = strrchr(line, ')');
    if (!p)
        return -1;
    unsigned long long utime = 0, stime = 0;
    //  After ")": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
    //  utime(14) stime(15).
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) !=
        2)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        return -1;
    return (int64_t)((utime + stime) * (1000000000ull / (unsigned long long)hz));
}

int64_t
bench_proc_cpu_ns(pid_t pid)
{
    //  The process CPU-time clock has ns resolution and counts every thread (libzmq's I/O
    //  threads, where CURVE runs, included); /proc's ticks are only 10 ms.
    clockid_t clock;
    struct timespec ts;
    if (clock_getcpuclockid(pid, &clock) == 0 && clock_gettime(clock, &ts) == 0)
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    return s_cpu_from_proc(pid);
}

static bool
s_kept(int fd, const int *keep, size_t nkeep)
{
    for (size_t i = 0; i < nkeep; i++)
        if (keep[i] == fd)
            return true;
    return false;
}

//  close() of every fd in [low, high) but the kept ones, for kernels without close_range().
static void
s_close_slowly(unsigned low, unsigned high, const int *keep, size_t nkeep)
{
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    if (high > (unsigned)max)
        high = (unsigned)max;
    for (unsigned fd = low; fd < high; fd++)
        if (!s_kept((int)fd, keep, nkeep))
            close((int)fd);
}

//  In a fresh child: die with the coordinator, default signal handling, no stray fds.
static void
s_child_setup(pid_t parent, const int *keep, size_t nkeep)
{
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    //  The coordinator may have died between fork() and prctl(): then nobody would kill us.
    if (getppid() != parent)
        _exit(1);
    //  Close the gaps between the kept fds (sorted here) with close_range(); one call each.
    int sorted[16];
    size_t n = 0;
    for (size_t i = 0; i < nkeep && n < sizeof sorted / sizeof sorted[0]; i++)
        if (keep[i] > 2)
            sorted[n++] = keep[i];
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            int t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    unsigned low = 3;
    for (size_t i = 0; i <= n; i++) {
        unsigned high = i < n ? (unsigned)sorted[i] : ~0u;
        if (high > low && close_range(low, high - 1, 0) != 0)
            s_close_slowly(low, high, keep, nkeep); // kernels before 5.9
        if (i < n)
            low = (unsigned)sorted[i] + 1;
    }
}

int
bench_proc_fork(bench_child_t *child,
                const char *name,
                bench_child_fn *fn,
                void *arg,
                const int *keep,
                size_t nkeep)
{
    memset(child, 0, sizeof *child);
    child->fd = -1;
    snprintf(child->name, sizeof child->name, "%s", name);
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
        return -1;
    pid_t parent = getpid();
    //  Buffered output would otherwise be printed twice, once by each process.
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(pair[0]);
        close(pair[1]);
        errno = err;
        return -1;
    }
    if (pid == 0) {
        int kept[16];
        size_t n = 0;
        kept[n++] = pair[1];
        for (size_t i = 0; i < nkeep && n < sizeof kept / sizeof kept[0]; i++)
            kept[n++] = keep[i];
        s_child_setup(parent, kept, n);
        int rc = fn(pair[1], arg);
        fflush(NULL);
        //  _exit: the atexit handlers inherited from the coordinator are not ours to run.
        _exit(rc);
    }
    close(pair[1]);
    child->pid = pid;
    child->fd = pair[0];
    return 0;
}

int
bench_proc_spawn(bench_child_t *child, const char *name, char *const argv[])
{
    memset(child, 0, sizeof *child);
    child->fd = -1;
    snprintf(child->name, sizeof child->name, "%s", name);
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        s_child_setup(parent, NULL, 0);
        execv(argv[0], argv);
        fprintf(stderr, "vedetta-bench: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    child->pid = pid;
    return 0;
}

static void
s_describe(int status, char *why, size_t why_size)
{
    if (!why)
        return;
    if (WIFEXITED(status))
        snprintf(why, why_size, "exited with code %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(why, why_size, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(why, why_size, "status %d", status);
}

static void
s_forget(bench_child_t *child)
{
    child->pid = 0;
    if (child->fd >= 0)
        close(child->fd);
    child->fd = -1;
}

bool
bench_proc_exited(bench_child_t *child, char *why, size_t why_size)
{
    if (child->pid <= 0)
        return true;
    int status = 0;
    pid_t rc = waitpid(child->pid, &status, WNOHANG);
    if (rc == 0)
        return false;
    if (rc == child->pid)
        s_describe(status, why, why_size);
    else if (why)
        snprintf(why, why_size, "lost (%s)", strerror(errno));
    //  Keep the control pair open: a FAIL the child sent before dying is still to be read.
    child->pid = 0;
    return true;
}

//  Waits up to `ms` for the child to exit; returns true (and *status) if it did.
static bool
s_wait_exit(pid_t pid, int ms, int *status)
{
    int64_t deadline = bench_proc_now_ns() + (int64_t)ms * 1000000;
    for (;;) {
        pid_t rc = waitpid(pid, status, WNOHANG);
        if (rc == pid)
            return true;
        if (rc < 0 && errno != EINTR) {
            *status = -1;
            return true; // not ours any more; nothing left to reap
        }
        if (bench_proc_now_ns() >= deadline)
            return false;
        //  Poll every 2 ms: children exit within a few ms of QUIT; a SIGCHLD-driven wait would
        //  need a global handler for no measurable gain here.
        struct timespec nap = { 0, 2000000 };
        nanosleep(&nap, NULL);
    }
}

int
bench_proc_stop(bench_child_t *child, int grace_ms)
{
    if (child->pid <= 0) {
        s_forget(child);
        return 0;
    }
    //  Ask first (QUIT lets a role close its sockets; SIGTERM stops vedettad cleanly), then
    //  insist: nothing we started may outlive the bench.
    if (child->fd >= 0)
        bench_ctl_send_type(child->fd, BENCH_CTL_QUIT);
    else
        kill(child->pid, SIGTERM);
    int status = 0;
    if (!s_wait_exit(child->pid, grace_ms, &status)) {
        bool gone = false;
        if (child->fd >= 0) {
            kill(child->pid, SIGTERM);
            gone = s_wait_exit(child->pid, grace_ms, &status);
        }
        if (!gone) {
            kill(child->pid, SIGKILL);
            s_wait_exit(child->pid, 5000, &status);
            status = -1;
        }
    }
    s_forget(child);
    return status;
}

int
bench_ctl_send(int fd, const bench_ctl_t *msg)
{
    for (;;) {
        ssize_t n = send(fd, msg, sizeof *msg, MSG_NOSIGNAL);
        if (n == (ssize_t)sizeof *msg)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        return -1;
    }
}

int
bench_ctl_send_type(int fd, bench_ctl_type_t type)
{
    bench_ctl_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = (int32_t)type;
    return bench_ctl_send(fd, &msg);
}

int
bench_ctl_recv(int fd, bench_ctl_t *msg, int64_t deadline_ns)
{
    for (;;) {
        if (s_stopping)
            return -1;
        int64_t left = deadline_ns - bench_proc_now_ns();
        int timeout = left <= 0 ? 0 : (int)((left + 999999) / 1000000);
        if (timeout > 1000)
            timeout = 1000; // re-check the stop flag at least every second
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int rc = poll(&pfd, 1, timeout);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -1;
        if (rc == 0) {
            if (bench_proc_now_ns() >= deadline_ns)
                return 1;
            continue;
        }
        ssize_t n = recv(fd, msg, sizeof *msg, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof *msg)
            return -1; // EOF (the peer died) or a torn message, which SEQPACKET rules out
        msg->text[BENCH_CTL_TEXT - 1] = '\0';
        return 0;
    }
}

int
bench_ctl_fail(int fd, const char *fmt, ...)
{
    bench_ctl_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = BENCH_CTL_FAIL;
    msg.rc = -1;
    va_list args;
    va_start(args, fmt);
    vsnprintf(msg.text, sizeof msg.text, fmt, args);
    va_end(args);
    bench_ctl_send(fd, &msg);
    return -1;
}

static void
s_on_signal(int sig)
{
    (void)sig;
    s_stopping = 1;
}

void
bench_proc_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    //  No SA_RESTART: a blocked poll() must return so that the coordinator cleans up.
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

bool
bench_proc_stopping(void)
{
    return s_stopping != 0;
}

int
bench_proc_tmpdir_new(char *out, size_t size)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = P_tmpdir;
    int n = snprintf(out, size, "%s/vedetta-bench.XXXXXX", base);
    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return mkdtemp(out) ? 0 : -1;
}

static int
s_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int
bench_proc_tmpdir_remove(const char *path)
{
    if (!path || !*path)
        return 0;
    return nftw(path, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/*  vdb_audit: see vdb_audit.h. One buffer holds the formatted records between flushes; it
    grows (doubling) up to VDB_AUDIT_MAX_BUFFER plus one line and is reused afterwards, so in
    the steady state a record costs one format and one BLAKE2b, no allocation, no syscall.
    At open the same buffer serves to read the log's end backwards.  */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "vdb_audit.h"
#include "vdb_log.h"
#include "vdp_agency.h"
#include "vdp_errors.h"
#include "vedetta.h"

#define S_FIRST_BUFFER (4u * VDP_AUDIT_MAX_LINE) // what the buffer starts with
#define S_HEAD_SUFFIX  ".head"

struct vdb_audit_t {
    char *path;      // owned
    char *head_path; // owned: path + ".head"
    int fd;          // O_APPEND; holds the flock
    char *buf;       // owned: formatted records not yet written, then room for one more line
    size_t len;      // bytes of buf in use
    size_t cap;      // bytes of buf
    uint64_t n;      // the last record's number (0: none yet)
    uint8_t prev[VDP_AUDIT_HASH_BYTES]; // the last record's hash (zeros: none yet)
    bool unsynced;                      // written since the last fdatasync
    bool head_current;                  // the head file names record n
    bool has_key;
    uint8_t sign_secret[VDP_SIGN_SECRET_BYTES]; // wiped at close
    uint8_t sign_public[VDP_KEY_BYTES];
    char damage[512]; // what open found wrong, "" if nothing
    vdb_audit_stats_t stats;
    //  The checkpoint thread (vdb_audit_checkpoint_start), started on first use. It reads fd,
    //  head_path, has_key and sign_secret, which do not change while it runs; the rest of what
    //  it shares is under `lock`.
    pthread_t syncer;
    bool syncer_started;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool job; // a head to write is waiting for the thread, or being written
    bool stopping;
    vdp_audit_head_t next; // ...that head
    uint64_t synced_n;     // the record the last head the thread wrote names...
    bool synced_any;       // ...if it wrote one
    bool sync_failed;      // the thread's last checkpoint failed...
    char sync_err[256];    // ...and why (reported once by the next start)
};

static int64_t
s_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void s_syncer_stop(vdb_audit_t *self);
static uint64_t s_syncer_wait(vdb_audit_t *self);

static void
s_free(vdb_audit_t *self)
{
    if (!self)
        return;
    s_syncer_stop(self);
    if (self->fd >= 0)
        close(self->fd); // releases the flock
    sodium_memzero(self->sign_secret, sizeof self->sign_secret);
    free(self->buf);
    free(self->head_path);
    free(self->path);
    free(self);
}

/*  -------------------------------------------------------------------------------------------
    Reading the end of the log, backwards  */

//  Reads exactly `size` bytes at `offset`. False with errno on failure (EIO for a short file).
static bool
s_pread_all(int fd, char *buf, size_t size, off_t offset)
{
    while (size > 0) {
        ssize_t got = pread(fd, buf, size, offset);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            if (got == 0)
                errno = EIO;
            return false;
        }
        buf += got;
        size -= (size_t)got;
        offset += got;
    }
    return true;
}

//  The offset where the line that ends before `end` starts: just after the last "\n" before
//  `end`, or 0. Reads backwards in chunks of the buffer's size. False with errno.
static bool
s_line_start(vdb_audit_t *self, off_t end, off_t *start)
{
    off_t pos = end;
    while (pos > 0) {
        size_t want = (size_t)pos < self->cap ? (size_t)pos : self->cap;
        if (!s_pread_all(self->fd, self->buf, want, pos - (off_t)want))
            return false;
        const char *nl = memrchr(self->buf, '\n', want);
        if (nl) {
            *start = pos - (off_t)want + (nl - self->buf) + 1;
            return true;
        }
        pos -= (off_t)want;
    }
    *start = 0;
    return true;
}

/*  The line [start, end) (end is its "\n") as a record: VD_OK with `entry` and whether its
    hash is right for its bytes and its own prev; VD_EPROTO with `why`; VD_EIO with errno.  */
static int
s_read_record(vdb_audit_t *self,
              off_t start,
              off_t end,
              vdp_audit_entry_t *entry,
              bool *consistent,
              char *why,
              size_t why_size)
{
    memset(entry, 0, sizeof *entry);
    size_t len = (size_t)(end - start);
    if (len > VDP_AUDIT_MAX_LINE)
        return vdp_errorf(why, why_size, VD_EPROTO, "a line longer than %u bytes",
                          VDP_AUDIT_MAX_LINE);
    if (!s_pread_all(self->fd, self->buf, len, start))
        return VD_EIO;
    int rc = vdp_audit_parse(self->buf, len, 0, NULL, entry, why, why_size);
    if (rc != VD_OK)
        return rc;
    vdp_audit_entry_t again;
    *consistent =
        vdp_audit_parse(self->buf, len, entry->record.n, entry->prev, &again, NULL, 0) == VD_OK;
    vdp_audit_entry_clear(&again);
    return VD_OK;
}

//  Notes damage: logged, and added to what vdb_audit_damage says.
__attribute__((format(printf, 2, 3))) static void
s_damage(vdb_audit_t *self, const char *fmt, ...)
{
    char text[sizeof self->damage];
    va_list args;
    va_start(args, fmt);
    vsnprintf(text, sizeof text, fmt, args);
    va_end(args);
    vdb_log_error("vdb_audit: %s: %s; run 'vedetta audit verify'", self->path, text);
    size_t used = strlen(self->damage);
    snprintf(self->damage + used, sizeof self->damage - used, "%s%s", used ? "; " : "", text);
}

//  Cuts a last line that has no "\n". Returns VD_OK with the log's new size, or VD_EIO.
static int
s_cut_torn_line(vdb_audit_t *self, off_t *size, char *err, size_t err_size)
{
    char last;
    if (*size == 0)
        return VD_OK;
    if (!s_pread_all(self->fd, &last, 1, *size - 1))
        return vdp_errorf(err, err_size, VD_EIO, "%s: read: %s", self->path, strerror(errno));
    if (last == '\n')
        return VD_OK;
    off_t start;
    if (!s_line_start(self, *size, &start))
        return vdp_errorf(err, err_size, VD_EIO, "%s: read: %s", self->path, strerror(errno));
    //  Only what no flush completed: a record's "\n" is written by the same write() as its
    //  bytes, and a head names a record only after the flush that wrote it returned.
    if (ftruncate(self->fd, start) != 0 || fsync(self->fd) != 0)
        return vdp_errorf(err, err_size, VD_EIO, "%s: cannot cut a torn last line: %s", self->path,
                          strerror(errno));
    vdb_log_warning("vdb_audit: %s: cut a torn last line of %lld bytes at offset %lld (a write "
                    "cut short by a crash)",
                    self->path, (long long)(*size - start), (long long)start);
    *size = start;
    return VD_OK;
}

//  The last two records chain: the one before `last` (whose line starts at `start`) is record
//  last.n - 1 with last.prev as its hash; record 1 is the first line, with zeros before it.
static int
s_check_link(vdb_audit_t *self, const vdp_audit_entry_t *last, off_t start)
{
    static const uint8_t zeros[VDP_AUDIT_HASH_BYTES];
    unsigned long long n = last->record.n;
    if (n == 1 || start == 0) {
        if (start != 0 || n != 1 || sodium_memcmp(last->prev, zeros, sizeof zeros) != 0)
            s_damage(self, "its last record is record %llu but %s", n,
                     start != 0 ? "lines come before it" : "it is the only one");
        return VD_OK;
    }
    off_t before;
    if (!s_line_start(self, start - 1, &before))
        return VD_EIO;
    vdp_audit_entry_t entry;
    bool consistent;
    char why[256];
    int rc = s_read_record(self, before, start - 1, &entry, &consistent, why, sizeof why);
    if (rc == VD_EIO)
        return rc;
    if (rc != VD_OK)
        s_damage(self, "the line before its last record (%llu): %s", n, why);
    else if (entry.record.n != n - 1 ||
             sodium_memcmp(entry.hash, last->prev, VDP_AUDIT_HASH_BYTES) != 0)
        s_damage(self, "its last record (%llu) does not chain to the record before it (%llu)", n,
                 (unsigned long long)entry.record.n);
    vdp_audit_entry_clear(&entry);
    return VD_OK;
}

/*  Finds the last record, to continue after its number and the hash it states (so that when
    only its content was altered, later records still chain to the original). If the last line
    is not a record, walks back to the last line that is. The damage stays in the file, for
    verification to name.  */
static int
s_find_last(vdb_audit_t *self, off_t size, char *err, size_t err_size)
{
    off_t end = size - 1; // the last line's "\n"
    bool last_line = true;
    while (end >= 0) {
        off_t start;
        if (!s_line_start(self, end, &start))
            break;
        vdp_audit_entry_t entry;
        bool consistent;
        char why[256];
        int rc = s_read_record(self, start, end, &entry, &consistent, why, sizeof why);
        if (rc == VD_EIO)
            break;
        if (rc == VD_OK) {
            self->n = entry.record.n;
            memcpy(self->prev, entry.hash, sizeof self->prev);
            if (!consistent)
                s_damage(self, "record %llu was altered: its hash does not match its bytes",
                         (unsigned long long)self->n);
            rc = last_line ? s_check_link(self, &entry, start) : VD_OK;
            vdp_audit_entry_clear(&entry);
            if (rc == VD_EIO)
                break;
            return VD_OK;
        }
        if (last_line)
            s_damage(self, "its last line: %s", why);
        last_line = false;
        end = start - 1;
    }
    if (end >= 0)
        return vdp_errorf(err, err_size, VD_EIO, "%s: read: %s", self->path, strerror(errno));
    s_damage(self, "none of its lines is a record: records start again from 1");
    return VD_OK;
}

//  Moves a head that disagrees with the log aside (never over an earlier one), so that the
//  next checkpoint does not erase it.
static void
s_keep_damaged_head(vdb_audit_t *self)
{
    char aside[PATH_MAX];
    long long now = (long long)s_now_ms();
    for (int attempt = 0; attempt < 100; attempt++) {
        int len = snprintf(aside, sizeof aside, "%s.damaged-%lld%s%.0d", self->head_path, now,
                           attempt ? "." : "", attempt);
        if (len < 0 || (size_t)len >= sizeof aside)
            break;
        //  link() refuses an existing name where rename() would replace it.
        if (link(self->head_path, aside) == 0) {
            unlink(self->head_path);
            vdb_log_error("vdb_audit: %s: kept the head that disagrees with the log as %s",
                          self->path, aside);
            return;
        }
        if (errno != EEXIST)
            break;
    }
    vdb_log_error("vdb_audit: %s: cannot keep the head aside: %s", self->path, strerror(errno));
}

//  Compares the head with the end of the log. Problems are damage; I/O errors too.
static void
s_check_head(vdb_audit_t *self)
{
    vdp_audit_head_t head;
    char why[512];
    int rc = vdp_audit_head_read(self->head_path, &head, why, sizeof why);
    unsigned long long n = self->n;
    if (rc == VD_ENOTFOUND) {
        //  The head of an empty log is written at open, before any record.
        if (n > 0)
            s_damage(self, "no head beside a log of %llu records", n);
        return;
    }
    if (rc != VD_OK)
        s_damage(self, "the head is not usable: %s", why);
    else if (self->has_key && !vdp_audit_head_verify(&head, self->sign_public))
        s_damage(self, "the head's signature does not verify with this broker's key");
    else if (head.n > self->n)
        s_damage(self, "the head names record %llu but the log ends at record %llu",
                 (unsigned long long)head.n, n);
    else if (head.n == self->n && sodium_memcmp(head.hash, self->prev, sizeof self->prev) != 0)
        s_damage(self, "the head's hash differs from the last record's (%llu)", n);
    else {
        self->head_current = head.n == self->n;
        self->stats.head_n = head.n;
        return;
    }
    s_keep_damaged_head(self);
}

vdb_audit_t *
vdb_audit_open(const char *path, const uint8_t *sign_secret, char *err, size_t err_size)
{
    if (!path) {
        vdp_errorf(err, err_size, VD_EINVAL, "no audit log path");
        return NULL;
    }
    vdb_audit_t *self = calloc(1, sizeof *self);
    if (!self) {
        vdp_errorf(err, err_size, VD_ENOMEM, "out of memory");
        return NULL;
    }
    self->fd = -1;
    self->path = strdup(path);
    self->head_path = malloc(strlen(path) + sizeof S_HEAD_SUFFIX);
    self->cap = S_FIRST_BUFFER;
    self->buf = malloc(self->cap);
    if (!self->path || !self->head_path || !self->buf) {
        s_free(self);
        vdp_errorf(err, err_size, VD_ENOMEM, "out of memory");
        return NULL;
    }
    sprintf(self->head_path, "%s%s", path, S_HEAD_SUFFIX);
    if (sign_secret) {
        self->has_key = true;
        memcpy(self->sign_secret, sign_secret, sizeof self->sign_secret);
        crypto_sign_ed25519_sk_to_pk(self->sign_public, self->sign_secret);
    }
    int rc = VD_OK;
    struct stat st;
    self->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (self->fd < 0 || fstat(self->fd, &st) != 0)
        rc = vdp_errorf(err, err_size, VD_EIO, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = vdp_errorf(err, err_size, VD_EIO, "%s: not a regular file", path);
    else if (flock(self->fd, LOCK_EX | LOCK_NB) != 0)
        rc = vdp_errorf(err, err_size, VD_EIO, "%s: %s", path,
                        errno == EWOULDBLOCK ? "in use by another writer" : strerror(errno));
    off_t size = rc == VD_OK ? st.st_size : 0;
    if (rc == VD_OK)
        rc = s_cut_torn_line(self, &size, err, err_size);
    if (rc == VD_OK && size > 0)
        rc = s_find_last(self, size, err, err_size);
    if (rc == VD_OK) {
        self->stats.last_n = self->n;
        s_check_head(self);
        if (self->n == 0 && !self->head_current)
            rc = vdb_audit_checkpoint(self, err, err_size);
    }
    if (rc != VD_OK) {
        s_free(self);
        return NULL;
    }
    return self;
}

int
vdb_audit_record(vdb_audit_t *self, const vdp_audit_record_t *record)
{
    assert(self);
    if (!record)
        return VD_EINVAL;
    if (self->len >= VDB_AUDIT_MAX_BUFFER)
        return VD_ELIMIT;
    if (self->cap - self->len <= VDP_AUDIT_MAX_LINE) {
        size_t cap = self->cap * 2;
        if (cap > VDB_AUDIT_MAX_BUFFER + VDP_AUDIT_MAX_LINE + 1)
            cap = VDB_AUDIT_MAX_BUFFER + VDP_AUDIT_MAX_LINE + 1;
        char *buf = realloc(self->buf, cap);
        if (!buf)
            return VD_ENOMEM;
        self->buf = buf;
        self->cap = cap;
    }
    vdp_audit_record_t stamped = *record;
    stamped.n = self->n + 1;
    if (stamped.t == 0)
        stamped.t = s_now_ms();
    size_t len;
    uint8_t hash[VDP_AUDIT_HASH_BYTES];
    int rc = vdp_audit_format(&stamped, self->prev, self->buf + self->len, self->cap - self->len,
                              &len, hash);
    if (rc != VD_OK)
        return rc == VD_ELIMIT ? VD_EINVAL : rc; // a line always fits: only a bad record fails
    self->len += len;
    self->n = stamped.n;
    memcpy(self->prev, hash, sizeof hash);
    self->head_current = false;
    self->stats.records++;
    self->stats.last_n = self->n;
    return VD_OK;
}

int
vdb_audit_flush(vdb_audit_t *self, bool sync, char *err, size_t err_size)
{
    assert(self);
    size_t done = 0;
    while (done < self->len) {
        ssize_t put = write(self->fd, self->buf + done, self->len - done);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0) {
            int saved = put < 0 ? errno : EIO;
            //  Keep what did not go out, for the next flush to append after what did.
            memmove(self->buf, self->buf + done, self->len - done);
            self->len -= done;
            self->stats.bytes += done;
            self->stats.write_errors++;
            self->unsynced = self->unsynced || done > 0;
            return vdp_errorf(err, err_size, VD_EIO,
                              "%s: write: %s (%zu bytes of records kept to write again)",
                              self->path, strerror(saved), self->len);
        }
        done += (size_t)put;
    }
    self->stats.bytes += done;
    self->unsynced = self->unsynced || done > 0;
    self->len = 0;
    if (sync && self->unsynced) {
        //  After a failed fdatasync the kernel may have dropped the pages: keep `unsynced` so
        //  that the next sync (and checkpoint) is not taken for done.
        if (fdatasync(self->fd) != 0) {
            self->stats.write_errors++;
            return vdp_errorf(err, err_size, VD_EIO, "%s: fdatasync: %s", self->path,
                              strerror(errno));
        }
        self->unsynced = false;
    }
    return VD_OK;
}

int
vdb_audit_checkpoint(vdb_audit_t *self, char *err, size_t err_size)
{
    assert(self);
    //  The head file is written by one of us at a time; if the thread's last head names the
    //  last record, there is nothing to replace.
    if (s_syncer_wait(self) == self->n)
        self->head_current = true;
    int rc = vdb_audit_flush(self, true, err, err_size);
    if (rc != VD_OK || self->head_current)
        return rc;
    vdp_audit_head_t head = { .n = self->n, .t = s_now_ms() };
    memcpy(head.hash, self->prev, sizeof head.hash);
    if (self->has_key)
        vdp_audit_head_sign(&head, self->sign_secret);
    rc = vdp_audit_head_write(&head, self->head_path, err, err_size);
    if (rc == VD_OK) {
        self->head_current = true;
        self->stats.head_n = head.n;
    }
    return rc;
}

/*  -------------------------------------------------------------------------------------------
    Checkpoints off the caller's thread: the fdatasync of a second's records took the broker's
    loop tens of milliseconds, stalling every party meanwhile.  */

static void *
s_syncer_run(void *arg)
{
    vdb_audit_t *self = arg;
    pthread_mutex_lock(&self->lock);
    while (true) {
        while (!self->stopping && !self->job)
            pthread_cond_wait(&self->changed, &self->lock);
        if (!self->job) // stopping, and nothing left to write
            break;
        vdp_audit_head_t head = self->next;
        pthread_mutex_unlock(&self->lock);
        //  Everything up to record head.n was written before this head was handed over, so
        //  once this returns the head may name it.
        char err[256] = "";
        int rc = fdatasync(self->fd) == 0 ? VD_OK
                                          : vdp_errorf(err, sizeof err, VD_EIO, "%s: fdatasync: %s",
                                                       self->path, strerror(errno));
        if (rc == VD_OK) {
            if (self->has_key)
                vdp_audit_head_sign(&head, self->sign_secret);
            rc = vdp_audit_head_write(&head, self->head_path, err, sizeof err);
        }
        pthread_mutex_lock(&self->lock);
        self->job = false;
        self->sync_failed = rc != VD_OK;
        if (rc == VD_OK) {
            self->synced_n = head.n;
            self->synced_any = true;
        } else
            snprintf(self->sync_err, sizeof self->sync_err, "%s", err);
        pthread_cond_broadcast(&self->changed);
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

/*  Waits for the thread's head in progress, if any; then the caller owns the head file again.
    Returns the record the thread's last head names, UINT64_MAX if it wrote none.  */
static uint64_t
s_syncer_wait(vdb_audit_t *self)
{
    if (!self->syncer_started)
        return UINT64_MAX;
    pthread_mutex_lock(&self->lock);
    while (self->job)
        pthread_cond_wait(&self->changed, &self->lock);
    uint64_t named = self->synced_any ? self->synced_n : UINT64_MAX;
    if (self->synced_any && self->synced_n > self->stats.head_n)
        self->stats.head_n = self->synced_n;
    pthread_mutex_unlock(&self->lock);
    return named;
}

static void
s_syncer_stop(vdb_audit_t *self)
{
    if (!self->syncer_started)
        return;
    pthread_mutex_lock(&self->lock);
    self->stopping = true;
    pthread_cond_broadcast(&self->changed);
    pthread_mutex_unlock(&self->lock);
    pthread_join(self->syncer, NULL);
    pthread_cond_destroy(&self->changed);
    pthread_mutex_destroy(&self->lock);
    self->syncer_started = false;
}

int
vdb_audit_checkpoint_start(vdb_audit_t *self, char *err, size_t err_size)
{
    assert(self);
    int rc = vdb_audit_flush(self, false, err, err_size);
    if (rc != VD_OK)
        return rc;
    if (!self->syncer_started) {
        pthread_mutex_init(&self->lock, NULL);
        pthread_cond_init(&self->changed, NULL);
        if (pthread_create(&self->syncer, NULL, s_syncer_run, self) != 0) {
            pthread_cond_destroy(&self->changed);
            pthread_mutex_destroy(&self->lock);
            return vdb_audit_checkpoint(self, err, err_size); // in line, then
        }
        self->syncer_started = true;
    }
    pthread_mutex_lock(&self->lock);
    if (self->synced_n > self->stats.head_n)
        self->stats.head_n = self->synced_n;
    bool failed = self->sync_failed;
    self->sync_failed = false;
    if (failed)
        rc = vdp_errorf(err, err_size, VD_EIO, "%s", self->sync_err);
    //  One head at a time: while one is being written, this call has nothing to add (the
    //  next one will name the records written meanwhile).
    if (!self->job && self->stats.head_n < self->n) {
        self->next = (vdp_audit_head_t){ .n = self->n, .t = s_now_ms() };
        memcpy(self->next.hash, self->prev, sizeof self->next.hash);
        self->job = true;
        pthread_cond_broadcast(&self->changed);
    }
    pthread_mutex_unlock(&self->lock);
    return rc;
}

int
vdb_audit_close(vdb_audit_t **self_p, char *err, size_t err_size)
{
    if (!self_p || !*self_p)
        return VD_OK;
    vdb_audit_t *self = *self_p;
    char why[512] = "";
    int rc = vdb_audit_checkpoint(self, why, sizeof why);
    if (rc != VD_OK && self->len > 0)
        vdb_log_error("vdb_audit: %s: closing with %zu bytes of records not written: %s",
                      self->path, self->len, why);
    s_free(self);
    *self_p = NULL;
    return rc == VD_OK ? rc : vdp_errorf(err, err_size, rc, "%s", why);
}

void
vdb_audit_stats(const vdb_audit_t *self, vdb_audit_stats_t *out)
{
    assert(self && out);
    *out = self->stats;
    out->buffered = self->len;
}

const char *
vdb_audit_damage(const vdb_audit_t *self)
{
    assert(self);
    return self->damage;
}

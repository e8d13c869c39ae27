/*  vdb_committer: see vdb_committer.h. A mutex and a condition variable hand a batch over and
    back; an eventfd tells the loop's poll that a batch is done, so the loop never blocks on
    the disk unless it asks to.  */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vdb_committer.h"
#include "vdp_limits.h"
#include "vedetta.h"

struct vdb_committer_t {
    vdb_store_t *store;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int event_fd;
    //  Under `lock`:
    const vdb_store_msg_t *msgs; // the batch in flight
    size_t count;
    bool started; // a batch is waiting for the thread, or being written
    bool done;    // ...and is written: rc and err hold the result
    bool stopping;
    int rc;
    char err[VDP_MAX_REASON + 1];
    //  The loop's own view, no lock needed: started and not yet waited for
    bool busy;
};

static void *
s_run(void *arg)
{
    vdb_committer_t *self = arg;
    pthread_mutex_lock(&self->lock);
    while (true) {
        while (!self->stopping && !(self->started && !self->done))
            pthread_cond_wait(&self->changed, &self->lock);
        if (self->stopping)
            break;
        const vdb_store_msg_t *msgs = self->msgs;
        size_t count = self->count;
        pthread_mutex_unlock(&self->lock);
        char err[VDP_MAX_REASON + 1] = "";
        int rc = vdb_store_append_write(self->store, msgs, count, err, sizeof err);
        pthread_mutex_lock(&self->lock);
        self->rc = rc;
        memcpy(self->err, err, sizeof err);
        self->done = true;
        pthread_cond_broadcast(&self->changed);
        uint64_t one = 1;
        //  Cannot fail short of a counter overflow; the loop also polls with a timeout.
        if (write(self->event_fd, &one, sizeof one) != sizeof one)
            (void)0;
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

vdb_committer_t *
vdb_committer_new(vdb_store_t *store)
{
    assert(store);
    vdb_committer_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->store = store;
    self->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (self->event_fd < 0) {
        free(self);
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->changed, NULL);
    if (pthread_create(&self->thread, NULL, s_run, self) != 0) {
        close(self->event_fd);
        pthread_cond_destroy(&self->changed);
        pthread_mutex_destroy(&self->lock);
        free(self);
        return NULL;
    }
    return self;
}

void
vdb_committer_destroy(vdb_committer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vdb_committer_t *self = *self_p;
    if (self->busy) {
        char err[VDP_MAX_REASON + 1];
        vdb_committer_wait(self, err, sizeof err);
    }
    pthread_mutex_lock(&self->lock);
    self->stopping = true;
    pthread_cond_broadcast(&self->changed);
    pthread_mutex_unlock(&self->lock);
    pthread_join(self->thread, NULL);
    close(self->event_fd);
    pthread_cond_destroy(&self->changed);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

int
vdb_committer_fd(const vdb_committer_t *self)
{
    return self && self->busy ? self->event_fd : -1;
}

void
vdb_committer_start(vdb_committer_t *self, const vdb_store_msg_t *msgs, size_t count)
{
    assert(self && !self->busy);
    pthread_mutex_lock(&self->lock);
    self->msgs = msgs;
    self->count = count;
    self->started = true;
    self->done = false;
    pthread_cond_broadcast(&self->changed);
    pthread_mutex_unlock(&self->lock);
    self->busy = true;
}

bool
vdb_committer_busy(const vdb_committer_t *self)
{
    return self && self->busy;
}

bool
vdb_committer_done(vdb_committer_t *self)
{
    if (!self || !self->busy)
        return false;
    pthread_mutex_lock(&self->lock);
    bool done = self->done;
    pthread_mutex_unlock(&self->lock);
    return done;
}

int
vdb_committer_wait(vdb_committer_t *self, char *err, size_t err_size)
{
    assert(self && self->busy);
    pthread_mutex_lock(&self->lock);
    while (!self->done)
        pthread_cond_wait(&self->changed, &self->lock);
    int rc = self->rc;
    if (err && err_size)
        snprintf(err, err_size, "%s", self->err);
    self->started = false;
    self->done = false;
    self->msgs = NULL;
    pthread_mutex_unlock(&self->lock);
    uint64_t count;
    //  Empties the event: the next batch's completion is a new one.
    if (read(self->event_fd, &count, sizeof count) < 0 && errno != EAGAIN)
        (void)0;
    self->busy = false;
    return rc;
}

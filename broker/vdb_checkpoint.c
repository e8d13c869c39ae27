/*  vdb_checkpoint: see vdb_checkpoint.h. A mutex and a condition variable carry requests to the
    thread; the thread alone uses its connection.  */
#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <sqlite3.h>

#include "vdb_checkpoint.h"
#include "vdb_log.h"
#include "vdp_errors.h"
#include "vedetta.h"

//  Passes of one run: a pass copies what the WAL held when it began, and commits made meanwhile
//  are left for the next pass; past this many the next commit's request starts a new run.
#define S_MAX_PASSES 8

struct vdb_checkpoint_t {
    sqlite3 *db; // owned; used by the thread alone once it runs
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    //  Under `lock`:
    bool requested;
    bool running;
    bool stopping;
    bool failing; // the last run failed: its recovery is logged once
    vdb_checkpoint_stats_t stats;
};

/*  Copies the WAL into the database, pass after pass while commits keep adding to it. Returns
    the SQLite code of the last pass and the WAL's frames and the frames copied at its end.  */
static int
s_checkpoint(vdb_checkpoint_t *self, int *wal_frames, int *copied_frames)
{
    int rc = SQLITE_OK;
    for (int pass = 0; pass < S_MAX_PASSES; pass++) {
        *wal_frames = *copied_frames = -1;
        rc = sqlite3_wal_checkpoint_v2(self->db, NULL, SQLITE_CHECKPOINT_PASSIVE, wal_frames,
                                       copied_frames);
        if (rc != SQLITE_OK || *copied_frames >= *wal_frames)
            break;
    }
    return rc;
}

static void *
s_run(void *arg)
{
    vdb_checkpoint_t *self = arg;
    pthread_mutex_lock(&self->lock);
    while (true) {
        while (!self->stopping && !self->requested)
            pthread_cond_wait(&self->changed, &self->lock);
        if (self->stopping)
            break;
        self->requested = false;
        self->running = true;
        pthread_mutex_unlock(&self->lock);

        int wal_frames, copied_frames;
        int rc = s_checkpoint(self, &wal_frames, &copied_frames);

        pthread_mutex_lock(&self->lock);
        self->running = false;
        self->stats.wal_frames = wal_frames;
        self->stats.copied_frames = copied_frames;
        //  BUSY: another connection is checkpointing (the writer, past its hard limit); its
        //  copy is as good as ours.
        if (rc == SQLITE_OK || rc == SQLITE_BUSY) {
            self->stats.runs += rc == SQLITE_OK;
            if (self->failing)
                vdb_log_notice("vdb_checkpoint: checkpoints succeed again");
            self->failing = false;
        } else {
            //  The WAL keeps every committed page, so nothing is lost: the WAL grows until a
            //  later request (the next commit past the threshold) finds space again.
            self->stats.failures++;
            if (!self->failing)
                vdb_log_warning("vdb_checkpoint: checkpoint failed rc=%d (%s); the WAL keeps "
                                "the data and grows until it succeeds",
                                rc, sqlite3_errstr(rc));
            self->failing = true;
        }
        pthread_cond_broadcast(&self->changed);
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

vdb_checkpoint_t *
vdb_checkpoint_new(const char *path, const char *sync_pragma, char *err, size_t err_size)
{
    if (!path || !sync_pragma) {
        vdp_errorf(err, err_size, VD_OK, "invalid argument");
        return NULL;
    }
    vdb_checkpoint_t *self = calloc(1, sizeof *self);
    if (!self) {
        vdp_errorf(err, err_size, VD_OK, "out of memory");
        return NULL;
    }
    self->stats.wal_frames = self->stats.copied_frames = -1;
    //  NOMUTEX: the thread is the connection's only user. No CREATE: the store made the file.
    int rc = sqlite3_open_v2(path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(self->db, sync_pragma, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        vdp_errorf(err, err_size, VD_OK, "%s: checkpoint connection: %s", path,
                   self->db ? sqlite3_errmsg(self->db) : "out of memory");
        sqlite3_close(self->db);
        free(self);
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->changed, NULL);
    if (pthread_create(&self->thread, NULL, s_run, self) != 0) {
        vdp_errorf(err, err_size, VD_OK, "cannot start the checkpoint thread");
        pthread_cond_destroy(&self->changed);
        pthread_mutex_destroy(&self->lock);
        sqlite3_close(self->db);
        free(self);
        return NULL;
    }
    return self;
}

void
vdb_checkpoint_destroy(vdb_checkpoint_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vdb_checkpoint_t *self = *self_p;
    //  A pending request is dropped: the store's connection, closed next and last, checkpoints
    //  everything on its way out.
    pthread_mutex_lock(&self->lock);
    self->stopping = true;
    pthread_cond_broadcast(&self->changed);
    pthread_mutex_unlock(&self->lock);
    pthread_join(self->thread, NULL);
    int rc = sqlite3_close(self->db); // no statement is ever prepared on it
    assert(rc == SQLITE_OK);
    (void)rc;
    pthread_cond_destroy(&self->changed);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

void
vdb_checkpoint_request(vdb_checkpoint_t *self)
{
    assert(self);
    pthread_mutex_lock(&self->lock);
    if (!self->requested) {
        self->requested = true;
        self->stats.requests++;
        pthread_cond_broadcast(&self->changed);
    }
    pthread_mutex_unlock(&self->lock);
}

void
vdb_checkpoint_settle(vdb_checkpoint_t *self)
{
    assert(self);
    pthread_mutex_lock(&self->lock);
    while (!self->stopping && (self->requested || self->running))
        pthread_cond_wait(&self->changed, &self->lock);
    pthread_mutex_unlock(&self->lock);
}

void
vdb_checkpoint_stats(vdb_checkpoint_t *self, vdb_checkpoint_stats_t *stats)
{
    assert(self && stats);
    pthread_mutex_lock(&self->lock);
    *stats = self->stats;
    pthread_mutex_unlock(&self->lock);
}

/*  vdb_session: see vdb_session.h.  */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "vdb_session.h"
#include "vedetta.h"

static void
s_msg_destroy(void **item_p)
{
    zmq_msg_t *msg = *item_p;
    if (msg) {
        zmq_msg_close(msg);
        free(msg);
    }
    *item_p = NULL;
}

static void
s_stream_destroy(void **item_p)
{
    vdb_stream_destroy((vdb_stream_t **)item_p);
}

void
vdb_session_rid_key(const uint8_t *rid, size_t rid_len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    assert(rid_len <= VDB_RID_MAX);
    for (size_t i = 0; i < rid_len; i++) {
        out[2 * i] = hex[rid[i] >> 4];
        out[2 * i + 1] = hex[rid[i] & 15];
    }
    out[2 * rid_len] = '\0';
}

vdb_session_t *
vdb_session_new(const uint8_t *rid, size_t rid_len, const char *key, const vdp_agency_t *agency)
{
    assert(rid_len <= VDB_RID_MAX);
    vdb_session_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    memcpy(self->rid, rid, rid_len);
    self->rid_len = rid_len;
    vdb_session_rid_key(rid, rid_len, self->rid_key);
    snprintf(self->key, sizeof self->key, "%s", key);
    self->agency = agency;
    vdp_writer_init(&self->out);
    self->backlog = zlistx_new();
    self->streams = zlistx_new();
    if (!self->backlog || !self->streams) {
        vdb_session_destroy(&self);
        return NULL;
    }
    zlistx_set_destructor(self->backlog, s_msg_destroy);
    zlistx_set_destructor(self->streams, s_stream_destroy);
    return self;
}

void
vdb_session_destroy(vdb_session_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vdb_session_t *self = *self_p;
    zlistx_destroy(&self->streams);
    zlistx_destroy(&self->backlog);
    vdp_writer_release(&self->out);
    free(self);
    *self_p = NULL;
}

static void
s_free_buffer(void *data, void *hint)
{
    (void)hint;
    free(data);
}

int
vdb_session_seal(vdb_session_t *self)
{
    if (self->out.size == 0)
        return VD_OK;
    if (self->out.failed) { // a lost append would corrupt the batch: drop it whole
        vdp_writer_reset(&self->out);
        return VD_ENOMEM;
    }
    zmq_msg_t *msg = malloc(sizeof *msg);
    if (!msg)
        return VD_ENOMEM;
    //  Zero-copy: libzmq takes the writer's buffer and frees it once encrypted and sent.
    if (zmq_msg_init_data(msg, self->out.data, self->out.size, s_free_buffer, NULL) != 0) {
        free(msg);
        return VD_ENOMEM;
    }
    if (!zlistx_add_end(self->backlog, msg)) {
        //  The message owns the buffer now; closing it frees it. Detach before resetting.
        self->out.data = NULL;
        self->out.capacity = 0;
        zmq_msg_close(msg);
        free(msg);
        vdp_writer_reset(&self->out);
        return VD_ENOMEM;
    }
    self->backlog_bytes += self->out.size;
    self->out.data = NULL;
    self->out.capacity = 0;
    vdp_writer_reset(&self->out);
    return VD_OK;
}

vdp_writer_t *
vdb_session_writer(vdb_session_t *self, size_t bytes)
{
    if (!vdp_writer_room(&self->out, bytes) && vdb_session_seal(self) != VD_OK)
        return NULL;
    return &self->out;
}

void
vdb_session_discard(vdb_session_t *self)
{
    vdp_writer_reset(&self->out);
    zlistx_purge(self->backlog);
    self->backlog_bytes = 0;
}

int
vdb_session_flush(vdb_session_t *self, void *router)
{
    zmq_msg_t *msg;
    while ((msg = zlistx_first(self->backlog))) {
        if (zmq_send(router, self->rid, self->rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
            return errno == EAGAIN ? 1 : VD_ECONN;
        size_t size = zmq_msg_size(msg);
        //  Once the routing id went, libzmq takes the second part too (multipart is atomic).
        if (zmq_msg_send(msg, router, ZMQ_DONTWAIT) < 0)
            return VD_ECONN;
        self->backlog_bytes -= size;
        zlistx_delete(self->backlog, NULL);
    }
    return VD_OK;
}

vdb_stream_t *
vdb_session_live_stream(vdb_session_t *self)
{
    for (vdb_stream_t *s = zlistx_first(self->streams); s; s = zlistx_next(self->streams))
        if (s->kind == VDB_STREAM_LIVE)
            return s;
    return NULL;
}

vdb_stream_t *
vdb_session_durable(vdb_session_t *self, const char *durable)
{
    for (vdb_stream_t *s = zlistx_first(self->streams); s; s = zlistx_next(self->streams))
        if (s->kind == VDB_STREAM_DURABLE && strcmp(s->durable, durable) == 0)
            return s;
    return NULL;
}

vdb_stream_t *
vdb_session_stream_of(vdb_session_t *self, const char *pattern, const char *durable)
{
    bool named = durable && durable[0];
    vdb_stream_t *live = vdb_session_live_stream(self);
    if (!named && live && vdb_stream_has_pattern(live, pattern))
        return live;
    for (vdb_stream_t *s = zlistx_first(self->streams); s; s = zlistx_next(self->streams)) {
        bool wanted = named ? s->kind == VDB_STREAM_DURABLE && strcmp(s->durable, durable) == 0
                            : s->kind == VDB_STREAM_REPLAY;
        if (wanted && vdb_stream_has_pattern(s, pattern))
            return s;
    }
    return NULL;
}

int
vdb_session_add_stream(vdb_session_t *self, vdb_stream_t *stream)
{
    return zlistx_add_end(self->streams, stream) ? VD_OK : VD_ENOMEM;
}

void
vdb_session_drop_stream(vdb_session_t *self, vdb_stream_t *stream)
{
    void *handle = zlistx_find(self->streams, stream);
    assert(handle);
    self->pattern_count -= vdb_stream_pattern_count(stream);
    if (!stream->live)
        self->behind--;
    zlistx_delete(self->streams, handle); // destroys it
}

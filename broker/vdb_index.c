/*  vdb_index: see vdb_index.h. A zhashx keyed by "sender/id" plus a ring of the keys in arrival
    order for eviction. Cost: one hash lookup per publish; ~150 bytes per remembered message.  */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "vdb_index.h"
#include "vedetta.h"

struct vdb_index_t {
    zhashx_t *entries; // "sender/id" -> vdb_index_entry_t (owned)
    char **ring;       // keys in arrival order; ring[next] is the oldest when full
    size_t window;
    size_t next;
    size_t size;
};

static void
s_entry_free(void **item_p)
{
    free(*item_p);
    *item_p = NULL;
}

vdb_index_t *
vdb_index_new(size_t window)
{
    assert(window >= 1);
    vdb_index_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->window = window;
    self->entries = zhashx_new();
    self->ring = calloc(window, sizeof *self->ring);
    if (!self->entries || !self->ring)
        vdb_index_destroy(&self);
    else
        zhashx_set_destructor(self->entries, s_entry_free);
    return self;
}

void
vdb_index_destroy(vdb_index_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vdb_index_t *self = *self_p;
    if (self->ring)
        for (size_t i = 0; i < self->window; i++)
            free(self->ring[i]);
    free(self->ring);
    zhashx_destroy(&self->entries);
    free(self);
    *self_p = NULL;
}

void
vdb_index_key(char out[VDB_INDEX_KEY_MAX], const char *sender, const char *id)
{
    size_t sender_len = strnlen(sender, VDP_MAX_ORG);
    size_t id_len = strnlen(id, VDP_ID_LEN);
    memcpy(out, sender, sender_len);
    out[sender_len] = '/';
    memcpy(out + sender_len + 1, id, id_len);
    out[sender_len + 1 + id_len] = '\0';
}

const vdb_index_entry_t *
vdb_index_get(const vdb_index_t *self, const char *sender, const char *id)
{
    char key[VDB_INDEX_KEY_MAX];
    vdb_index_key(key, sender, id);
    return zhashx_lookup(self->entries, key);
}

int
vdb_index_put(vdb_index_t *self, const char *sender, const char *id, vdb_index_entry_t entry)
{
    char key[VDB_INDEX_KEY_MAX];
    vdb_index_key(key, sender, id);
    vdb_index_entry_t *copy = malloc(sizeof *copy);
    char *ring_key = strdup(key);
    if (!copy || !ring_key) {
        free(copy);
        free(ring_key);
        return VD_ENOMEM;
    }
    *copy = entry;
    if (self->ring[self->next]) { // full: forget the oldest
        zhashx_delete(self->entries, self->ring[self->next]);
        free(self->ring[self->next]);
        self->size--;
    }
    if (zhashx_insert(self->entries, key, copy) != 0) {
        free(copy);
        free(ring_key);
        self->ring[self->next] = NULL;
        return VD_EINVAL; // already present: the caller's bug, reported rather than hidden
    }
    self->ring[self->next] = ring_key;
    self->next = (self->next + 1) % self->window;
    self->size++;
    return VD_OK;
}

size_t
vdb_index_size(const vdb_index_t *self)
{
    return self->size;
}

/*  vdb_pending: see vdb_pending.h. One allocation per entry (its strings and envelope bytes
    together), a flat array of store records for the commit, and a hash for (sender, id).  */
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "vdb_index.h"
#include "vdb_pending.h"
#include "vdb_session.h"
#include "vedetta.h"

typedef struct {
    char rid_key[2 * VDB_RID_MAX + 1];
    char sender[VDP_MAX_ORG + 1];
    char id[VDP_ID_LEN + 1];
    char topic[VDP_MAX_TOPIC + 1];
    char category[VDP_MAX_SHORT + 1];
    char key[VDP_KEY_Z85_LEN + 1];
    char *to;     // recipients joined by ',', inside this allocation
    uint8_t *raw; // envelope bytes, inside this allocation
} entry_t;

struct vdb_pending_t {
    entry_t **entries;        // owned
    vdb_store_msg_t *records; // parallel to entries, pointing into them
    size_t count;
    size_t capacity;
    size_t bytes;
    zhashx_t *by_id; // "sender/id" -> index + 1 (as a pointer-sized integer)
};

vdb_pending_t *
vdb_pending_new(void)
{
    vdb_pending_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->by_id = zhashx_new();
    if (!self->by_id)
        vdb_pending_destroy(&self);
    return self;
}

void
vdb_pending_destroy(vdb_pending_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vdb_pending_t *self = *self_p;
    vdb_pending_reset(self);
    zhashx_destroy(&self->by_id);
    free(self->entries);
    free(self->records);
    free(self);
    *self_p = NULL;
}

//  Copies a NUL-terminated string of known cap without printf: this runs for every message.
static void
s_copy(char *out, size_t size, const char *in)
{
    size_t n = strnlen(in, size - 1);
    memcpy(out, in, n);
    out[n] = '\0';
}

int
vdb_pending_add(vdb_pending_t *self,
                const vdp_envelope_t *env,
                const char *key,
                const char *rid_key)
{
    if (self->count == self->capacity) {
        size_t capacity = self->capacity ? 2 * self->capacity : 64;
        entry_t **entries = realloc(self->entries, capacity * sizeof *entries);
        if (!entries)
            return VD_ENOMEM;
        self->entries = entries;
        vdb_store_msg_t *records = realloc(self->records, capacity * sizeof *records);
        if (!records)
            return VD_ENOMEM;
        self->records = records;
        self->capacity = capacity;
    }
    size_t to_len = 0;
    for (size_t i = 0; i < env->to_count; i++)
        to_len += strlen(env->to[i]) + 1;
    entry_t *entry = malloc(sizeof *entry + to_len + 1 + env->raw_len);
    if (!entry)
        return VD_ENOMEM;
    s_copy(entry->rid_key, sizeof entry->rid_key, rid_key);
    s_copy(entry->sender, sizeof entry->sender, env->sender);
    s_copy(entry->id, sizeof entry->id, env->id);
    s_copy(entry->topic, sizeof entry->topic, env->topic);
    s_copy(entry->category, sizeof entry->category, env->category);
    s_copy(entry->key, sizeof entry->key, key);
    entry->to = (char *)(entry + 1);
    entry->to[0] = '\0';
    for (size_t i = 0, at = 0; i < env->to_count; i++) {
        size_t n = strlen(env->to[i]);
        if (i > 0)
            entry->to[at++] = ',';
        memcpy(entry->to + at, env->to[i], n);
        at += n;
        entry->to[at] = '\0';
    }
    entry->raw = (uint8_t *)entry->to + to_len + 1;
    memcpy(entry->raw, env->raw, env->raw_len);

    char hash_key[VDB_INDEX_KEY_MAX];
    vdb_index_key(hash_key, env->sender, env->id);
    if (zhashx_insert(self->by_id, hash_key, (void *)(uintptr_t)(self->count + 1)) != 0) {
        free(entry);
        return VD_EINVAL; // staged twice: the caller looks up first
    }
    self->entries[self->count] = entry;
    self->records[self->count] = (vdb_store_msg_t){
        .seq = env->seq,
        .accepted_at = env->accepted_at,
        .sender = entry->sender,
        .id = entry->id,
        .topic = entry->topic,
        .category = entry->category,
        .tlp = env->tlp,
        .expires = env->expires,
        .key = entry->key,
        .to = env->to_count ? entry->to : NULL,
        .raw = entry->raw,
        .raw_len = env->raw_len,
    };
    self->count++;
    self->bytes += env->raw_len;
    return VD_OK;
}

const vdb_store_msg_t *
vdb_pending_find(const vdb_pending_t *self, const char *sender, const char *id)
{
    char hash_key[VDB_INDEX_KEY_MAX];
    vdb_index_key(hash_key, sender, id);
    uintptr_t slot = (uintptr_t)zhashx_lookup(self->by_id, hash_key);
    return slot ? &self->records[slot - 1] : NULL;
}

size_t
vdb_pending_count(const vdb_pending_t *self)
{
    return self->count;
}

size_t
vdb_pending_bytes(const vdb_pending_t *self)
{
    return self->bytes;
}

const vdb_store_msg_t *
vdb_pending_records(const vdb_pending_t *self)
{
    return self->records;
}

const char *
vdb_pending_rid_key(const vdb_pending_t *self, size_t index)
{
    return index < self->count ? self->entries[index]->rid_key : NULL;
}

void
vdb_pending_reset(vdb_pending_t *self)
{
    for (size_t i = 0; i < self->count; i++)
        free(self->entries[i]);
    self->count = 0;
    self->bytes = 0;
    zhashx_purge(self->by_id);
}

/*  vdb_pending: see vdb_pending.h. Entries (their strings and envelope bytes together) are cut
    from chunks that are kept from round to round, so staging a message costs no malloc; a flat
    array of store records serves the commit; an open-addressing table of keyed hashes finds
    (sender, id). This runs for every accepted message.  */
#include <assert.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "vdb_pending.h"
#include "vdb_session.h"
#include "vedetta.h"

#define CHUNK_SIZE  (1u << 20) // entries are cut from chunks of this size (or one larger entry)
#define CHUNKS_KEPT 4          // chunks kept past a reset: what a busy round needs again soon

typedef struct {
    char rid_key[2 * VDB_RID_MAX + 1];
    char sender[VDP_MAX_ORG + 1];
    char id[VDP_ID_LEN + 1];
    char topic[VDP_MAX_TOPIC + 1];
    char category[VDP_MAX_SHORT + 1];
    char key[VDP_KEY_Z85_LEN + 1];
    char *to;     // recipients joined by ',', inside this entry
    uint8_t *raw; // envelope bytes, inside this entry
} entry_t;

typedef struct {
    size_t size;
    size_t used;
    alignas(max_align_t) uint8_t data[];
} chunk_t;

//  A slot of the (sender, id) table: the entry's index, valid in generation `round` only,
//  so a reset empties the table by counting up.
typedef struct {
    uint64_t hash;
    uint32_t round;
    uint32_t index;
} slot_t;

struct vdb_pending_t {
    entry_t **entries;        // cut from the chunks
    vdb_store_msg_t *records; // parallel to entries, pointing into them
    size_t count;
    size_t capacity;
    size_t bytes;
    chunk_t **chunks;
    size_t chunk_count;
    size_t chunk_at; // the chunk entries are being cut from
    slot_t *slots;
    size_t slot_count; // a power of two, more than twice `count`
    uint32_t round;
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
};

vdb_pending_t *
vdb_pending_new(void)
{
    vdb_pending_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    //  Keyed: ids come from publishers, who must not be able to pick colliding ones.
    randombytes_buf(self->hash_key, sizeof self->hash_key);
    self->round = 1;
    return self;
}

void
vdb_pending_destroy(vdb_pending_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vdb_pending_t *self = *self_p;
    for (size_t i = 0; i < self->chunk_count; i++)
        free(self->chunks[i]);
    free(self->chunks);
    free(self->slots);
    free(self->entries);
    free(self->records);
    free(self);
    *self_p = NULL;
}

//  `size` bytes for an entry, aligned for any type. NULL out of memory.
static void *
s_cut(vdb_pending_t *self, size_t size)
{
    size = (size + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    for (; self->chunk_at < self->chunk_count; self->chunk_at++) {
        chunk_t *chunk = self->chunks[self->chunk_at];
        if (chunk->size - chunk->used >= size) {
            void *cut = chunk->data + chunk->used;
            chunk->used += size;
            return cut;
        }
    }
    chunk_t **chunks = realloc(self->chunks, (self->chunk_count + 1) * sizeof *chunks);
    if (!chunks)
        return NULL;
    self->chunks = chunks;
    size_t chunk_size = size > CHUNK_SIZE ? size : CHUNK_SIZE;
    chunk_t *chunk = malloc(sizeof *chunk + chunk_size);
    if (!chunk)
        return NULL;
    *chunk = (chunk_t){ .size = chunk_size, .used = size };
    self->chunks[self->chunk_count] = chunk;
    self->chunk_at = self->chunk_count++;
    return chunk->data;
}

static uint64_t
s_hash(const vdb_pending_t *self, const char *sender, const char *id)
{
    //  sender '\0' id: no two pairs give the same bytes
    uint8_t bytes[VDP_MAX_ORG + 1 + VDP_ID_LEN];
    size_t sender_len = strnlen(sender, VDP_MAX_ORG);
    size_t id_len = strnlen(id, VDP_ID_LEN);
    memcpy(bytes, sender, sender_len);
    bytes[sender_len] = '\0';
    memcpy(bytes + sender_len + 1, id, id_len);
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, bytes, sender_len + 1 + id_len, self->hash_key);
    uint64_t hash;
    memcpy(&hash, out, sizeof hash);
    return hash;
}

//  The slot of (sender, id) if staged, else the empty slot where it would go.
static slot_t *
s_slot(const vdb_pending_t *self, uint64_t hash, const char *sender, const char *id)
{
    size_t mask = self->slot_count - 1;
    for (size_t at = hash & mask;; at = (at + 1) & mask) {
        slot_t *slot = &self->slots[at];
        if (slot->round != self->round)
            return slot;
        const entry_t *entry = self->entries[slot->index];
        if (slot->hash == hash && strcmp(entry->sender, sender) == 0 && strcmp(entry->id, id) == 0)
            return slot;
    }
}

//  Keeps the table under half full, so probes stay short. Returns VD_OK or VD_ENOMEM.
static int
s_slots_room(vdb_pending_t *self)
{
    if (2 * (self->count + 1) < self->slot_count)
        return VD_OK;
    size_t slot_count = self->slot_count ? 2 * self->slot_count : 256;
    slot_t *slots = calloc(slot_count, sizeof *slots);
    if (!slots)
        return VD_ENOMEM;
    free(self->slots);
    self->slots = slots;
    self->slot_count = slot_count;
    self->round = 1;
    for (size_t i = 0; i < self->count; i++) {
        const entry_t *entry = self->entries[i];
        uint64_t hash = s_hash(self, entry->sender, entry->id);
        *s_slot(self, hash, entry->sender, entry->id) =
            (slot_t){ .hash = hash, .round = self->round, .index = (uint32_t)i };
    }
    return VD_OK;
}

static int
s_entries_room(vdb_pending_t *self)
{
    if (self->count < self->capacity)
        return VD_OK;
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
    return VD_OK;
}

//  Copies a NUL-terminated string of known cap without printf.
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
    if (!env->raw)
        return VD_EINVAL; // only a received envelope is staged: its bytes are what is stored
    if (s_entries_room(self) != VD_OK || s_slots_room(self) != VD_OK)
        return VD_ENOMEM;
    uint64_t hash = s_hash(self, env->sender, env->id);
    slot_t *slot = s_slot(self, hash, env->sender, env->id);
    if (slot->round == self->round)
        return VD_EINVAL; // staged twice: the caller looks up first
    size_t to_len = 0;
    for (size_t i = 0; i < env->to_count; i++)
        to_len += strlen(env->to[i]) + 1;
    entry_t *entry = s_cut(self, sizeof *entry + to_len + 1 + env->raw_len);
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

    *slot = (slot_t){ .hash = hash, .round = self->round, .index = (uint32_t)self->count };
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
    if (self->count == 0)
        return NULL;
    const slot_t *slot = s_slot(self, s_hash(self, sender, id), sender, id);
    return slot->round == self->round ? &self->records[slot->index] : NULL;
}

void
vdb_pending_number(vdb_pending_t *self, uint64_t first)
{
    for (size_t i = 0; i < self->count; i++)
        self->records[i].seq = first + i;
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
    self->count = 0;
    self->bytes = 0;
    if (++self->round == 0) { // wrapped: slots of round 0 would look current
        memset(self->slots, 0, self->slot_count * sizeof *self->slots);
        self->round = 1;
    }
    //  A burst's chunks past the first few go back: what stays staged is bounded by the caller.
    while (self->chunk_count > CHUNKS_KEPT)
        free(self->chunks[--self->chunk_count]);
    for (size_t i = 0; i < self->chunk_count; i++)
        self->chunks[i]->used = 0;
    self->chunk_at = 0;
}

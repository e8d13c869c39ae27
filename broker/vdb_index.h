/*  vdb_index: what the broker remembers of accepted messages, keyed by (sender, id): the seq it
    was given and its TLP. It answers "is this a retry?" (duplicate receipts carry the first seq)
    and "what TLP did the referenced message carry?" (no-downgrade rule).
    Bounded: it keeps the last `window` messages (FIFO eviction), so memory stays fixed; a retry
    older than the window is looked up in the store (which knows every pair it holds); a broker
    without a store would accept it again.  */

#ifndef VDB_INDEX_H_INCLUDED
#define VDB_INDEX_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "vdp_envelope.h"

typedef struct vdb_index_t vdb_index_t;

#define VDB_INDEX_KEY_MAX (VDP_MAX_ORG + VDP_ID_LEN + 2)

//  Writes the table key "sender/id" of a message (truncated to fit, never overflowing) into
//  out[VDB_INDEX_KEY_MAX]. Per-message path: no printf.
void vdb_index_key(char out[VDB_INDEX_KEY_MAX], const char *sender, const char *id);

typedef struct {
    uint64_t seq;
    int64_t accepted_at; // UTC ms
    vdp_tlp_t tlp;
} vdb_index_entry_t;

//  A new index remembering at most `window` (>= 1) messages. NULL on no memory.
vdb_index_t *vdb_index_new(size_t window);

void vdb_index_destroy(vdb_index_t **self_p);

//  The entry for (sender, id), or NULL. Borrowed until the next vdb_index_put().
const vdb_index_entry_t *vdb_index_get(const vdb_index_t *self, const char *sender, const char *id);

//  Remembers (sender, id) -> entry, evicting the oldest when full. Returns VD_OK, VD_ENOMEM.
//  The pair must not be present already.
int vdb_index_put(vdb_index_t *self, const char *sender, const char *id, vdb_index_entry_t entry);

size_t vdb_index_size(const vdb_index_t *self);

#endif

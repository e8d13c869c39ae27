/*  vdb_pending: messages the broker has accepted in this poll round but not yet committed to
    the store. Group commit: the round's messages are appended in one transaction, and only then
    are their receipts sent and the messages routed; if the commit fails, each is rejected
    instead. Each entry keeps a copy of the envelope bytes (the frame they came in is gone by
    commit time) and remembers which session to answer, by routing id, since a session may close
    before the commit.
    Invariant: entries are in the order they were staged; once numbered, seq contiguous from
    the first.  */

#ifndef VDB_PENDING_H_INCLUDED
#define VDB_PENDING_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "vdb_store.h"
#include "vdp_envelope.h"

typedef struct vdb_pending_t vdb_pending_t;

vdb_pending_t *vdb_pending_new(void);

void vdb_pending_destroy(vdb_pending_t **self_p);

/*  Stages `env` (env->seq and env->accepted_at set by the caller), published with CURVE key
    `key` by the session whose table key is `rid_key`. Returns VD_OK, VD_ENOMEM, or VD_EINVAL
    (no envelope bytes, or (sender, id) staged already).  */
int vdb_pending_add(vdb_pending_t *self,
                    const vdp_envelope_t *env,
                    const char *key,
                    const char *rid_key);

//  The staged message (sender, id), or NULL. Borrowed until the next add or reset.
const vdb_store_msg_t *
vdb_pending_find(const vdb_pending_t *self, const char *sender, const char *id);

//  Numbers the staged messages first, first + 1, ... in the order they were staged: seq is
//  chosen when a batch goes to the store, after the batch before it has been written or not.
void vdb_pending_number(vdb_pending_t *self, uint64_t first);

size_t vdb_pending_count(const vdb_pending_t *self);

//  Envelope bytes staged.
size_t vdb_pending_bytes(const vdb_pending_t *self);

//  The staged messages as store records, in seq order; borrowed until the next add or reset.
const vdb_store_msg_t *vdb_pending_records(const vdb_pending_t *self);

//  The routing-id table key of the session that published the i-th staged message.
const char *vdb_pending_rid_key(const vdb_pending_t *self, size_t index);

//  Forgets every staged message.
void vdb_pending_reset(vdb_pending_t *self);

#endif

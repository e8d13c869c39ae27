/*  vd_subs: libvedetta's table of its subscriptions, and what it needs to restore each one on a
    new session without handing the application a message twice.
    Three kinds, as the broker has them (PROTOCOL.md §5.5): live (messages from now on),
    replay (from a seq or a time, then live) and durable (a name whose cursor the broker keeps).
    A replay resumes after the last message handed to the application; a durable subscription
    resumes from its cursor, which redelivers what was not acknowledged: deliveries whose seq
    the application has already had on the same stream are recognised here and skipped, so
    within one process each message of a stream is handed over once, in seq order.  */

#ifndef VD_SUBS_H_INCLUDED
#define VD_SUBS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdp_limits.h"

typedef struct {
    char pattern[VDP_MAX_TOPIC + 1];
    char durable[VDP_MAX_DURABLE + 1]; // "" unless durable
    uint64_t from_seq;                 // replay asked for (0: none)
    int64_t since;                     // replay asked for, UTC ms (0: none)
    bool started;                      // the broker said where its stream starts
    uint64_t after;                    // ... after this seq
    uint64_t last_seq;                 // the last seq handed to the application
    uint64_t acked;                    // durable: the last seq the application acknowledged
    uint64_t ref;                      // a re-subscription waiting for its answer; 0 if none
} vd_sub_t;

typedef struct {
    vd_sub_t *items; // owned
    size_t count;
    size_t cap;
} vd_subs_t;

//  Frees the table's memory and empties it.
void vd_subs_release(vd_subs_t *self);

//  The subscription to `pattern` on durable `durable` (NULL or "": not durable), or NULL.
vd_sub_t *vd_subs_find(vd_subs_t *self, const char *pattern, const char *durable);

//  The subscription waiting for the answer `ref` (not 0), or NULL.
vd_sub_t *vd_subs_by_ref(vd_subs_t *self, uint64_t ref);

//  Adds a subscription (the caller checked it is not there). Returns it, or NULL on no memory.
vd_sub_t *vd_subs_add(
    vd_subs_t *self, const char *pattern, const char *durable, uint64_t from_seq, int64_t since);

//  Removes one (invalid afterwards).
void vd_subs_remove(vd_subs_t *self, vd_sub_t *sub);

//  Whether it asks for history (replay or durable).
bool vd_sub_has_history(const vd_sub_t *sub);

/*  What to ask for when subscribing again on a new session: durable streams resume from their
    cursor (0, 0); a replay after the last message handed over or, before the broker answered,
    from what was first asked; live subscriptions from now (0, 0).  */
void vd_sub_resume(const vd_sub_t *sub, uint64_t *from_seq, int64_t *since);

/*  Records a delivery (`pattern` that matched, `durable` name or "", `seq`) about to be handed
    to the application. Returns false if its stream has handed over that seq or a later one
    already (a redelivery after a reconnect: skip it).  */
bool vd_subs_accept(vd_subs_t *self, const char *pattern, const char *durable, uint64_t seq);

//  Records that the application acknowledged durable stream `durable` up to `seq`.
void vd_subs_acked(vd_subs_t *self, const char *durable, uint64_t seq);

/*  Whether a skipped redelivery of `durable` at `seq` was acknowledged by the application
    already: then it is acknowledged again, or the broker's cursor would stay behind (the
    application never sees the redelivery, so never acknowledges it).  */
bool vd_subs_was_acked(const vd_subs_t *self, const char *durable, uint64_t seq);

#endif

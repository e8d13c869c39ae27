/*  vdb_subs: the subscription index. Maps patterns to subscribers (opaque pointers) and finds, for
    a concrete topic, every (subscriber, pattern) whose pattern matches it, segment by segment.
    Structure: a trie keyed by segment, with '*' and '>' children; match cost grows with the
    topic's depth and the wildcards on its path, not with the number of subscriptions.
    Invariant: a (subscriber, pattern) pair is stored at most once.
    Threads: one owner thread (the broker's loop); vdb_subs_match only reads.  */

#ifndef VDB_SUBS_H_INCLUDED
#define VDB_SUBS_H_INCLUDED

#include <stddef.h>

typedef struct vdb_subs_t vdb_subs_t;

//  An empty index. Caller owns it; free with vdb_subs_destroy(). NULL if out of memory.
vdb_subs_t *vdb_subs_new(void);

//  Frees the index (not the subscribers) and sets *self_p to NULL. Accepts NULL.
void vdb_subs_destroy(vdb_subs_t **self_p);

//  Adds (subscriber, pattern); `pattern` must be valid (vdp_pattern_valid). Returns VD_OK,
//  1 if the pair existed already (nothing changed), VD_ENOMEM, or VD_EINVAL (pattern not valid,
//  or subscriber NULL).
int vdb_subs_add(vdb_subs_t *self, const char *pattern, void *subscriber);

//  Removes (subscriber, pattern). Returns VD_OK or VD_ENOTFOUND (also for an invalid pattern).
int vdb_subs_remove(vdb_subs_t *self, const char *pattern, void *subscriber);

//  Removes every pattern of `subscriber`. Returns how many were removed.
size_t vdb_subs_remove_all(vdb_subs_t *self, void *subscriber);

/*  Calls fn(subscriber, pattern, arg) for each stored pair whose pattern matches `topic` (a valid
    topic; an invalid one matches nothing). `pattern` is borrowed for the call. fn must not
    change the index. A subscriber whose several patterns match is called once per pattern;
    the order of calls is unspecified. Returns the number of calls.  */
typedef void(vdb_subs_fn)(void *subscriber, const char *pattern, void *arg);
size_t vdb_subs_match(const vdb_subs_t *self, const char *topic, vdb_subs_fn *fn, void *arg);

//  Number of stored pairs.
size_t vdb_subs_count(const vdb_subs_t *self);

#endif

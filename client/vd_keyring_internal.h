/*  vd_keyring_internal: what libvedetta's tests read of a keyring beyond the public API; not
    installed, not exported from the shared library.  */

#ifndef VD_KEYRING_INTERNAL_H_INCLUDED
#define VD_KEYRING_INTERNAL_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "vedetta.h"

//  Over all keys of `self`: Ed25519 verifications run, and envelopes accepted on a tree's root
//  already verified (the per-key cache). Either may be NULL.
void vd_keyring_counts(const vd_keyring_t *self, uint64_t *checks, uint64_t *hits);

//  The number of keys loaded.
size_t vd_keyring_size(const vd_keyring_t *self);

#endif

/*  vdb_registry: the agencies and keys this broker knows, loaded from a directory of public
    agency files (proto/vdp_agency.h). Invariants: a CURVE key appears once; all keys of one org
    agree on name, role and jurisdictions; the table is immutable once built (a reload builds a
    new one and swaps it in whole).
    Lookups are O(1) by CURVE key (the ZAP User-Id) and by org id. They only read, so several
    threads may share one built registry; adding needs the only reference.
    Revoked keys are loaded too (status VDP_KEY_REVOKED), so that a refusal can say "revoked".  */

#ifndef VDB_REGISTRY_H_INCLUDED
#define VDB_REGISTRY_H_INCLUDED

#include <stddef.h>

#include "vdp_agency.h"

typedef struct vdb_registry_t vdb_registry_t;

/*  Loads every "*.agency" file in `dir` (other files and hidden ".*" files are ignored), in
    name order. Any invalid file, duplicate key or inconsistent org fails the whole load: NULL,
    with `err` naming the file (both files, for a clash) and the reason. An empty directory
    gives an empty registry. Caller owns the result; free with vdb_registry_destroy().  */
vdb_registry_t *vdb_registry_load(const char *dir, char *err, size_t err_size);

//  An empty registry (for tests and for adding agencies programmatically). NULL on no memory.
vdb_registry_t *vdb_registry_new(void);

/*  Adds a copy of `agency`. Returns VD_OK, VD_EINVAL (an invalid field as vdp_agency_check
    finds it, a duplicate key, or disagreement with the org's other keys: `err` says which),
    VD_ENOMEM.  */
int vdb_registry_add(vdb_registry_t *self, const vdp_agency_t *agency, char *err, size_t err_size);

//  Frees the registry (every pointer it lent becomes invalid) and sets *self_p to NULL.
void vdb_registry_destroy(vdb_registry_t **self_p);

//  The key whose CURVE public key is `curve_z85`, or NULL. Borrowed while the registry lives.
const vdp_agency_t *vdb_registry_key(const vdb_registry_t *self, const char *curve_z85);

//  Any key of org `org` (for org attributes: role, jurisdictions), or NULL. Borrowed likewise.
const vdp_agency_t *vdb_registry_org(const vdb_registry_t *self, const char *org);

//  Number of keys, of distinct orgs, and of keys revoked.
size_t vdb_registry_key_count(const vdb_registry_t *self);
size_t vdb_registry_org_count(const vdb_registry_t *self);
size_t vdb_registry_revoked_count(const vdb_registry_t *self);

//  The i-th key, in the order loaded (i < vdb_registry_key_count), or NULL. Borrowed likewise.
const vdp_agency_t *vdb_registry_at(const vdb_registry_t *self, size_t i);

#endif

/*  vdb_registry: see vdb_registry.h.
    Two open-addressing hash tables (linear probing, load factor at most 1/2, FNV-1a) index the
    entries by CURVE key and by org id; both borrow their keys from the entries. We do not use
    zhashx here: its lookup writes a cached bucket index into the table, so two threads reading
    one "immutable" zhashx race. Lookups below only read, so any number of threads may share a
    built registry. Entries never move once added (each is its own allocation), which is what
    lets the tables and callers hold pointers to them.  */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vdp_errors.h"
#include "vdb_registry.h"
#include "vedetta.h"

#define S_MIN_CAPACITY 16u

typedef struct {
    vdp_agency_t agency; // what lookups return a pointer to
    char *source;        // owned: the file it came from; NULL when added by vdb_registry_add
} s_entry_t;

typedef struct {
    const char *key; // borrowed from the entry; NULL marks an empty slot
    s_entry_t *entry;
} s_slot_t;

typedef struct {
    s_slot_t *slots; // owned
    size_t capacity; // a power of two, or 0 before the first insert
    size_t size;
} s_table_t;

struct vdb_registry_t {
    s_entry_t **entries; // owned, each owned; in the order added
    size_t count;
    size_t capacity;
    s_table_t by_key; // curve_public -> entry
    s_table_t by_org; // org -> the org's first entry
};

static uint64_t
s_hash(const char *key)
{
    uint64_t hash = 14695981039346656037u;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        hash = (hash ^ *p) * 1099511628211u;
    return hash;
}

static s_entry_t *
s_table_find(const s_table_t *table, const char *key)
{
    if (table->capacity == 0)
        return NULL;
    size_t mask = table->capacity - 1;
    //  Terminates: the load factor keeps at least half the slots empty.
    for (size_t i = (size_t)s_hash(key) & mask;; i = (i + 1) & mask) {
        const s_slot_t *slot = &table->slots[i];
        if (!slot->key)
            return NULL;
        if (strcmp(slot->key, key) == 0)
            return slot->entry;
    }
}

//  Places a key known to be absent, in a table known to have room.
static void
s_table_place(s_slot_t *slots, size_t capacity, const char *key, s_entry_t *entry)
{
    size_t mask = capacity - 1;
    size_t i = (size_t)s_hash(key) & mask;
    while (slots[i].key)
        i = (i + 1) & mask;
    slots[i].key = key;
    slots[i].entry = entry;
}

//  Makes room for one more key. Returns VD_OK or VD_ENOMEM (table unchanged).
static int
s_table_reserve(s_table_t *table)
{
    if ((table->size + 1) * 2 <= table->capacity)
        return VD_OK;
    size_t capacity = table->capacity ? table->capacity * 2 : S_MIN_CAPACITY;
    s_slot_t *slots = calloc(capacity, sizeof *slots);
    if (!slots)
        return VD_ENOMEM;
    for (size_t i = 0; i < table->capacity; i++)
        if (table->slots[i].key)
            s_table_place(slots, capacity, table->slots[i].key, table->slots[i].entry);
    free(table->slots);
    table->slots = slots;
    table->capacity = capacity;
    return VD_OK;
}

static void
s_table_insert(s_table_t *table, const char *key, s_entry_t *entry)
{
    assert((table->size + 1) * 2 <= table->capacity);
    s_table_place(table->slots, table->capacity, key, entry);
    table->size++;
}

vdb_registry_t *
vdb_registry_new(void)
{
    return calloc(1, sizeof(vdb_registry_t));
}

void
vdb_registry_destroy(vdb_registry_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vdb_registry_t *self = *self_p;
    free(self->by_org.slots);
    free(self->by_key.slots);
    for (size_t i = 0; i < self->count; i++) {
        free(self->entries[i]->source);
        free(self->entries[i]);
    }
    free(self->entries);
    free(self);
    *self_p = NULL;
}

static const char *
s_source(const s_entry_t *entry)
{
    return entry->source ? entry->source : "(added)";
}

//  Adds a copy of `agency`, coming from file `source` (NULL: added by a caller). Errors name
//  `source` and the entry it clashes with.
static int
s_add(vdb_registry_t *self,
      const vdp_agency_t *agency,
      const char *source,
      char *err,
      size_t err_size)
{
    const char *here = source ? source : "(added)";
    char why[256];
    if (vdp_agency_check(agency, why, sizeof why) != VD_OK) {
        vdp_errorf(err, err_size, VD_OK, "%s: %s", here, why);
        return VD_EINVAL;
    }
    const s_entry_t *same = s_table_find(&self->by_key, agency->curve_public);
    if (same) {
        vdp_errorf(err, err_size, VD_OK,
                   "%s: key/curve-public: %s is already registered by %s (org %s, label %s)", here,
                   agency->curve_public, s_source(same), same->agency.org, same->agency.label);
        return VD_EINVAL;
    }
    const s_entry_t *first = s_table_find(&self->by_org, agency->org);
    if (first &&
        vdp_agency_check_org(&first->agency, s_source(first), agency, here, err, err_size) != VD_OK)
        return VD_EINVAL;
    if (s_table_reserve(&self->by_key) != VD_OK || s_table_reserve(&self->by_org) != VD_OK)
        goto err_no_memory;
    if (self->count == self->capacity) {
        size_t capacity = self->capacity ? self->capacity * 2 : S_MIN_CAPACITY;
        s_entry_t **entries = realloc(self->entries, capacity * sizeof *entries);
        if (!entries)
            goto err_no_memory;
        self->entries = entries;
        self->capacity = capacity;
    }
    s_entry_t *entry = calloc(1, sizeof *entry);
    if (!entry)
        goto err_no_memory;
    entry->agency = *agency;
    if (source && !(entry->source = strdup(source))) {
        free(entry);
        goto err_no_memory;
    }
    self->entries[self->count++] = entry;
    s_table_insert(&self->by_key, entry->agency.curve_public, entry);
    if (!first)
        s_table_insert(&self->by_org, entry->agency.org, entry);
    return VD_OK;

err_no_memory:
    vdp_errorf(err, err_size, VD_OK, "%s: out of memory", here);
    return VD_ENOMEM;
}

int
vdb_registry_add(vdb_registry_t *self, const vdp_agency_t *agency, char *err, size_t err_size)
{
    if (!self || !agency) {
        vdp_errorf(err, err_size, VD_OK, "no registry or no agency");
        return VD_EINVAL;
    }
    return s_add(self, agency, NULL, err, err_size);
}

//  vdp_agency_load_dir's callback: each file of the directory, checked against those before it.
static int
s_add_file(void *arg, const vdp_agency_t *agency, const char *path, char *err, size_t err_size)
{
    return s_add(arg, agency, path, err, err_size);
}

vdb_registry_t *
vdb_registry_load(const char *dir, char *err, size_t err_size)
{
    if (!dir) {
        vdp_errorf(err, err_size, VD_OK, "no registry directory");
        return NULL;
    }
    vdb_registry_t *self = vdb_registry_new();
    if (!self) {
        vdp_errorf(err, err_size, VD_OK, "%s: out of memory", dir);
        return NULL;
    }
    if (vdp_agency_load_dir(dir, s_add_file, self, err, err_size) != VD_OK)
        vdb_registry_destroy(&self);
    return self;
}

const vdp_agency_t *
vdb_registry_key(const vdb_registry_t *self, const char *curve_z85)
{
    if (!self || !curve_z85)
        return NULL;
    const s_entry_t *entry = s_table_find(&self->by_key, curve_z85);
    return entry ? &entry->agency : NULL;
}

const vdp_agency_t *
vdb_registry_org(const vdb_registry_t *self, const char *org)
{
    if (!self || !org)
        return NULL;
    const s_entry_t *entry = s_table_find(&self->by_org, org);
    return entry ? &entry->agency : NULL;
}

size_t
vdb_registry_key_count(const vdb_registry_t *self)
{
    return self ? self->by_key.size : 0;
}

size_t
vdb_registry_org_count(const vdb_registry_t *self)
{
    return self ? self->by_org.size : 0;
}

size_t
vdb_registry_revoked_count(const vdb_registry_t *self)
{
    size_t revoked = 0;
    for (size_t i = 0; self && i < self->count; i++)
        revoked += self->entries[i]->agency.status == VDP_KEY_REVOKED;
    return revoked;
}

const vdp_agency_t *
vdb_registry_at(const vdb_registry_t *self, size_t i)
{
    return self && i < self->count ? &self->entries[i]->agency : NULL;
}

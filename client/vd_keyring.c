/*  vd_keyring: the public agency files of the parties a recipient trusts, and checking
    envelopes' signatures against them (vedetta.h; the signature is proto/vdp_sig.h's).
    Invariants: once loaded, the keys sit in one array sorted by (org, Ed25519 public key, file
    order) and never move; only their caches change. So the keys a signature can name (its
    sender's org, its hint: the first bytes of the public key) are one run of the array, found
    by binary search.
    Loading goes through vdp_agency_load_dir(), as the broker's registry does, and then applies
    the registry's checks across files (a CURVE key twice, an org described two ways), reporting
    the first file the registry would have refused, with the same words.  */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "vdp_agency.h"
#include "vdp_errors.h"
#include "vdp_sig.h"
#include "vd_keyring_internal.h"
#include "vedetta.h"

_Static_assert(sizeof(((vd_signer_t *)0)->org) == VDP_MAX_ORG + 1, "vd_signer_t holds an org");
_Static_assert(sizeof(((vd_signer_t *)0)->label) == VDP_MAX_LABEL + 1, "and a label");

#define S_MIN_CAPACITY 16u

typedef struct {
    char org[VDP_MAX_ORG + 1];
    char label[VDP_MAX_LABEL + 1];
    bool revoked;
    uint8_t sign_public[VDP_KEY_BYTES];
    size_t order;          // its file's place in name order: ties sort as the files do
    vdp_sig_cache_t cache; // the last tree this key verified: the next envelope of it is cheap
} s_key_t;

struct vd_keyring_t {
    s_key_t *keys; // owned; sorted by (org, sign_public, order)
    size_t count;
};

void
vd_keyring_destroy(vd_keyring_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vd_keyring_t *self = *self_p;
    free(self->keys);
    free(self);
    *self_p = NULL;
}

/*  ---------------------------------------------------------------------------------------------
    Loading: every file is collected first, then checked across files and indexed.  */

typedef struct {
    vdp_agency_t agency;
    char *source; // owned: the file it came from
    size_t order;
} s_file_t;

typedef struct {
    s_file_t *files; // owned, each source owned
    size_t count;
    size_t capacity;
} s_files_t;

static void
s_files_free(s_files_t *files)
{
    for (size_t i = 0; i < files->count; i++)
        free(files->files[i].source);
    free(files->files);
    memset(files, 0, sizeof *files);
}

//  vdp_agency_load_dir's callback: keeps a copy of each file.
static int
s_collect(void *arg, const vdp_agency_t *agency, const char *path, char *err, size_t err_size)
{
    s_files_t *files = arg;
    if (files->count == files->capacity) {
        size_t capacity = files->capacity ? files->capacity * 2 : S_MIN_CAPACITY;
        s_file_t *grown = realloc(files->files, capacity * sizeof *grown);
        if (!grown)
            return vdp_errorf(err, err_size, VD_ENOMEM, "%s: out of memory", path);
        files->files = grown;
        files->capacity = capacity;
    }
    s_file_t *file = &files->files[files->count];
    if (!(file->source = strdup(path)))
        return vdp_errorf(err, err_size, VD_ENOMEM, "%s: out of memory", path);
    file->agency = *agency;
    file->order = files->count++;
    return VD_OK;
}

static int
s_by_curve(const void *a, const void *b)
{
    const s_file_t *x = *(const s_file_t *const *)a, *y = *(const s_file_t *const *)b;
    int c = strcmp(x->agency.curve_public, y->agency.curve_public);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

static int
s_by_org(const void *a, const void *b)
{
    const s_file_t *x = *(const s_file_t *const *)a, *y = *(const s_file_t *const *)b;
    int c = strcmp(x->agency.org, y->agency.org);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

/*  The registry's checks across files. The registry adds files in name order and stops at the
    first that clashes with one before it, checking its CURVE key before its org: so of all
    clashes, the one to report is the one whose later file comes first, a key clash before an
    org clash of the same file. Each file is compared with the first of its run, as the
    registry compares with the entry it already holds. O(n log n).  */
static int
s_check_across(s_files_t *files, char *err, size_t err_size)
{
    if (files->count < 2)
        return VD_OK;
    s_file_t **sorted = malloc(files->count * sizeof *sorted);
    if (!sorted)
        return vdp_errorf(err, err_size, VD_ENOMEM, "out of memory");
    const s_file_t *key_first = NULL, *key_later = NULL;
    for (size_t i = 0; i < files->count; i++)
        sorted[i] = &files->files[i];
    qsort(sorted, files->count, sizeof *sorted, s_by_curve);
    for (size_t i = 1, run = 0; i < files->count; i++) {
        if (strcmp(sorted[i]->agency.curve_public, sorted[run]->agency.curve_public) != 0)
            run = i;
        else if (!key_later || sorted[i]->order < key_later->order) {
            key_first = sorted[run];
            key_later = sorted[i];
        }
    }
    const s_file_t *org_first = NULL, *org_later = NULL;
    qsort(sorted, files->count, sizeof *sorted, s_by_org);
    for (size_t i = 1, run = 0; i < files->count; i++) {
        if (strcmp(sorted[i]->agency.org, sorted[run]->agency.org) != 0)
            run = i;
        else if ((!org_later || sorted[i]->order < org_later->order) &&
                 vdp_agency_check_org(&sorted[run]->agency, sorted[run]->source, &sorted[i]->agency,
                                      sorted[i]->source, NULL, 0) != VD_OK) {
            org_first = sorted[run];
            org_later = sorted[i];
        }
    }
    free(sorted);
    if (key_later && (!org_later || key_later->order <= org_later->order))
        return vdp_errorf(err, err_size, VD_EINVAL,
                          "%s: key/curve-public: %s is already registered by %s (org %s, label %s)",
                          key_later->source, key_later->agency.curve_public, key_first->source,
                          key_first->agency.org, key_first->agency.label);
    if (org_later)
        return vdp_agency_check_org(&org_first->agency, org_first->source, &org_later->agency,
                                    org_later->source, err, err_size);
    return VD_OK;
}

static int
s_key_compare(const void *a, const void *b)
{
    const s_key_t *x = a, *y = b;
    int c = strcmp(x->org, y->org);
    if (c == 0)
        c = memcmp(x->sign_public, y->sign_public, VDP_KEY_BYTES);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

//  The keys of `files`, sorted. VD_OK, VD_ENOMEM, or VD_EINVAL for a key that does not decode
//  (loading has checked it: not expected).
static int
s_index(vd_keyring_t *self, const s_files_t *files, char *err, size_t err_size)
{
    if (files->count == 0)
        return VD_OK;
    self->keys = calloc(files->count, sizeof *self->keys);
    if (!self->keys)
        return vdp_errorf(err, err_size, VD_ENOMEM, "out of memory");
    for (size_t i = 0; i < files->count; i++) {
        const s_file_t *file = &files->files[i];
        s_key_t *key = &self->keys[i];
        if (vdp_agency_sign_key(&file->agency, key->sign_public) != VD_OK)
            return vdp_errorf(err, err_size, VD_EINVAL, "%s: key/sign-public: not a valid key",
                              file->source);
        memcpy(key->org, file->agency.org, sizeof key->org);
        memcpy(key->label, file->agency.label, sizeof key->label);
        key->revoked = file->agency.status == VDP_KEY_REVOKED;
        key->order = file->order;
        self->count++;
    }
    qsort(self->keys, self->count, sizeof *self->keys, s_key_compare);
    return VD_OK;
}

vd_keyring_t *
vd_keyring_load(const char *dir, char *reason, size_t reason_size)
{
    if (!dir) {
        vdp_errorf(reason, reason_size, VD_EINVAL, "no keyring directory");
        return NULL;
    }
    //  Signatures are checked with libsodium, which must be initialised once per process.
    if (sodium_init() < 0) {
        vdp_errorf(reason, reason_size, VD_EINTERNAL, "libsodium failed to initialise");
        return NULL;
    }
    vd_keyring_t *self = calloc(1, sizeof *self);
    if (!self) {
        vdp_errorf(reason, reason_size, VD_ENOMEM, "%s: out of memory", dir);
        return NULL;
    }
    s_files_t files = { NULL, 0, 0 };
    if (vdp_agency_load_dir(dir, s_collect, &files, reason, reason_size) != VD_OK ||
        s_check_across(&files, reason, reason_size) != VD_OK ||
        s_index(self, &files, reason, reason_size) != VD_OK)
        vd_keyring_destroy(&self);
    s_files_free(&files);
    return self;
}

/*  ---------------------------------------------------------------------------------------------
    Verifying  */

//  Compares a key with (org, hint): the order of s_key_compare, on the hint's bytes only.
static int
s_key_versus(const s_key_t *key, const char *org, const uint8_t hint[VDP_SIG_HINT_BYTES])
{
    int c = strcmp(key->org, org);
    return c ? c : memcmp(key->sign_public, hint, VDP_SIG_HINT_BYTES);
}

//  The first key not below (org, hint): where the run of keys the signature may name begins.
static size_t
s_lower_bound(const vd_keyring_t *self, const char *org, const uint8_t hint[VDP_SIG_HINT_BYTES])
{
    size_t low = 0, high = self->count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (s_key_versus(&self->keys[mid], org, hint) < 0)
            low = mid + 1;
        else
            high = mid;
    }
    return low;
}

//  ENOTFOUND, saying whether the keyring holds the org at all.
static int
s_not_found(const vd_keyring_t *self,
            size_t at,
            const char *org,
            const uint8_t hint[VDP_SIG_HINT_BYTES],
            char *reason,
            size_t reason_size)
{
    char hex[VDP_SIG_HINT_BYTES * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, hint, VDP_SIG_HINT_BYTES);
    //  The org's keys, if any, sit right around where the search stopped.
    bool org_known = (at < self->count && strcmp(self->keys[at].org, org) == 0) ||
                     (at > 0 && strcmp(self->keys[at - 1].org, org) == 0);
    if (org_known)
        return vdp_errorf(reason, reason_size, VD_ENOTFOUND,
                          "signed by a key of %s that is not in the keyring (hint %s)", org, hex);
    return vdp_errorf(reason, reason_size, VD_ENOTFOUND, "no key of %s in the keyring (hint %s)",
                      org, hex);
}

int
vd_envelope_verify(vd_keyring_t *keys,
                   const vd_envelope_t *env,
                   vd_signer_t *signer,
                   char *reason,
                   size_t reason_size)
{
    if (signer)
        memset(signer, 0, sizeof *signer);
    if (!keys || !env)
        return vdp_errorf(reason, reason_size, VD_EINVAL, "no keyring or no envelope");
    if (!env->sender[0])
        return vdp_errorf(reason, reason_size, VD_EINVAL, "the envelope has no sender");
    vdp_sig_t sig;
    int rc = vdp_sig_decode(&sig, env->sig, env->sig_len, reason, reason_size);
    if (rc != VD_OK)
        return rc;
    size_t i = s_lower_bound(keys, env->sender, sig.hint);
    if (i == keys->count || s_key_versus(&keys->keys[i], env->sender, sig.hint) != 0)
        return s_not_found(keys, i, env->sender, sig.hint, reason, reason_size);
    //  Normally one key; two only if two files of the org hold keys whose first bytes agree
    //  (one key installed twice under different CURVE keys). Whichever verifies signed it.
    char why[128] = "";
    const s_key_t *tried = NULL;
    for (; i < keys->count && s_key_versus(&keys->keys[i], env->sender, sig.hint) == 0; i++) {
        s_key_t *key = &keys->keys[i];
        rc = vdp_sig_verify(env, key->sign_public, &key->cache, why, sizeof why);
        if (rc == VD_OK) {
            if (signer) {
                memcpy(signer->org, key->org, sizeof signer->org);
                memcpy(signer->label, key->label, sizeof signer->label);
                signer->revoked = key->revoked;
            }
            return VD_OK;
        }
        if (rc != VD_ESIG)
            return vdp_errorf(reason, reason_size, rc, "%s", vd_strerror(rc));
        tried = key;
    }
    assert(tried);
    return vdp_errorf(reason, reason_size, VD_ESIG, "%s with the key %s/%s", why, tried->org,
                      tried->label);
}

/*  ---------------------------------------------------------------------------------------------
    For the tests (vd_keyring_internal.h)  */

void
vd_keyring_counts(const vd_keyring_t *self, uint64_t *checks, uint64_t *hits)
{
    uint64_t c = 0, h = 0;
    for (size_t i = 0; self && i < self->count; i++) {
        c += self->keys[i].cache.checks;
        h += self->keys[i].cache.hits;
    }
    if (checks)
        *checks = c;
    if (hits)
        *hits = h;
}

size_t
vd_keyring_size(const vd_keyring_t *self)
{
    return self ? self->count : 0;
}

/*  vdp_agency: the agency key files (PROTOCOL.md §8, docs/keys.md).
    - The public agency file describes one key of one agency: org id, display name, role,
      jurisdictions, label, CURVE public key, Ed25519 signing public key, status, and optionally
      the key's own rate limits (overriding its role's defaults from the policy). The broker's
      operator installs it in the registry directory.
    - The secret file holds the same plus both secret keys; mode 0600, refused when group or
      others may read it.
    Both are ZPL (zconfig) text. Loading validates every field; nothing is defaulted silently
    (the rate limits are the only optional fields: absent, they read as not set).
    Unknown sections or fields, repeated fields, and secret fields in a public file are errors.
    Error texts name the file and the field ("x.agency: agency/org: ...") and never echo a
    secret key. The module keeps no state: any thread may call it. Secret keys leave it only
    through vdp_secret_t (wipe with vdp_secret_wipe) and the decode functions below.  */

#ifndef VDP_AGENCY_H_INCLUDED
#define VDP_AGENCY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdp_ids.h"
#include "vdp_limits.h"
#include "vdp_rate.h"

#define VDP_SIGN_SECRET_BYTES 64u           // Ed25519 secret key: 32-byte seed + public key
#define VDP_AGENCY_MAX_FILE   (64u * 1024u) // an agency or secret file is refused above this

typedef enum { VDP_KEY_ACTIVE = 1, VDP_KEY_REVOKED = 2 } vdp_key_status_t;

typedef struct {
    char org[VDP_MAX_ORG + 1];                  // "comune:i726"
    char name[VDP_MAX_NAME + 1];                // "Comune di Siena"
    vdp_role_t role;                            // must agree with the org id's kind
    char jur[VDP_MAX_JUR][VDP_MAX_SEGMENT + 1]; // "toscana"; cnaipic: "national"
    size_t jur_count;                           // >= 1
    char label[VDP_MAX_LABEL + 1];              // "siem", "console", "default"
    char curve_public[VDP_KEY_Z85_LEN + 1];     // Z85
    char sign_public[VDP_KEY_Z85_LEN + 1];      // Z85
    vdp_key_status_t status;
    vdp_rate_t rate;  // key/rate: messages; per_second 0 if the file sets none
    vdp_rate_t bytes; // key/bytes: envelope bytes; per_second 0 if the file sets none
} vdp_agency_t;

typedef struct {
    vdp_agency_t agency;
    char curve_secret[VDP_KEY_Z85_LEN + 1];        // Z85; wipe with sodium_memzero
    char sign_secret[VDP_SIGN_SECRET_Z85_LEN + 1]; // Z85 of the 64-byte Ed25519 secret
} vdp_secret_t;

/*  Loads a public agency file. Returns VD_OK; VD_EIO (unreadable, or not a regular file);
    VD_ECONFIG (not ZPL, over VDP_AGENCY_MAX_FILE, a field unknown, repeated, missing or invalid,
    or a secret key present); VD_ENOMEM; VD_EINVAL (NULL argument). `err` (may be NULL)
    receives a message naming the file (and the line or field) on every error.  */
int vdp_agency_load(const char *path, vdp_agency_t *out, char *err, size_t err_size);

/*  Parses the text of a public agency file (`size` bytes, need not be NUL-terminated); `name`
    stands for the file in error messages. Returns VD_OK or VD_ECONFIG with `err`.  */
int vdp_agency_parse(
    const char *text, size_t size, const char *name, vdp_agency_t *out, char *err, size_t err_size);

/*  Writes a public agency file (mode 0644), replacing `path` atomically (a temporary file in the
    same directory, then rename); key/rate and key/bytes only when set. Returns VD_OK, VD_EIO,
    VD_EINVAL (agency not valid).  */
int vdp_agency_save(const vdp_agency_t *agency, const char *path);

/*  Checks every field of `agency` as loading does (the registry checks programmatic adds with
    it). A rate limit is either not set (both members 0) or valid as vdp_rate_parse would have
    read it (1 <= per_second <= burst <= VDP_RATE_MAX).
    Returns VD_OK, or VD_EINVAL with `err` naming the field ("agency/org: ...").  */
int vdp_agency_check(const vdp_agency_t *agency, char *err, size_t err_size);

/*  Checks that `agency` agrees with `first`, another key of the same org, on name, role and
    jurisdictions (in any order): all keys of one org must. `first_source` and `source` stand
    for the two in the message (file paths, or "(added)"). Returns VD_OK, or VD_EINVAL with
    `err` naming `source`, the field that differs, and `first_source`.  */
int vdp_agency_check_org(const vdp_agency_t *first,
                         const char *first_source,
                         const vdp_agency_t *agency,
                         const char *source,
                         char *err,
                         size_t err_size);

/*  What vdp_agency_load_dir() hands each file to: the agency read from `path` (both borrowed
    for the call). Returns VD_OK to go on; any other code stops the load and is returned, with
    `err` saying why (naming `path`).  */
typedef int (*vdp_agency_add_fn)(
    void *arg, const vdp_agency_t *agency, const char *path, char *err, size_t err_size);

/*  Loads a directory of public agency files, as the broker's registry and a recipient's
    keyring read theirs: every "*.agency" entry whose name does not start with '.' (editors'
    swap files, our own atomic writes), in name order; other names are ignored. Each is read
    with vdp_agency_load() and handed to `add`, which checks what spans files (a key twice, an
    org described two ways) and keeps it. Stops at the first file that fails.
    Returns VD_OK (an empty directory too); VD_EIO (the directory cannot be opened or read);
    VD_EINVAL (NULL dir or add); VD_ENOMEM; or the first error of vdp_agency_load() or `add`;
    on error `err` names the directory or the file.  */
int
vdp_agency_load_dir(const char *dir, vdp_agency_add_fn add, void *arg, char *err, size_t err_size);

//  True if `agency` holds jurisdiction `jur` ("toscana"; "national" for CNAIPIC).
bool vdp_agency_holds(const vdp_agency_t *agency, const char *jur);

/*  Decodes the CURVE public key or the Ed25519 signing public key to VDP_KEY_BYTES bytes.
    Returns VD_OK, or VD_EINVAL if the Z85 text is not a valid key.  */
int vdp_agency_curve_key(const vdp_agency_t *agency, uint8_t out[VDP_KEY_BYTES]);
int vdp_agency_sign_key(const vdp_agency_t *agency, uint8_t out[VDP_KEY_BYTES]);

/*  Loads a secret file; refuses it (VD_EACCES, with the chmod that fixes it in `err`) if group
    or others have any permission on it, or if it is not a regular file. Checks that each secret
    key matches its public key. Returns VD_OK, VD_EIO, VD_EACCES, VD_ECONFIG, VD_ENOMEM with
    `err`, or VD_EINVAL (NULL argument). On error `out` is wiped.  */
int vdp_secret_load(const char *path, vdp_secret_t *out, char *err, size_t err_size);

//  Parses the text of a secret file, as vdp_secret_load does after its permission check.
//  Returns VD_OK or VD_ECONFIG with `err`; on error `out` is wiped.
int vdp_secret_parse(
    const char *text, size_t size, const char *name, vdp_secret_t *out, char *err, size_t err_size);

/*  Writes a secret file with mode 0600, refusing to overwrite an existing file (VD_EIO, errno
    EEXIST). Returns VD_OK, VD_EIO, VD_EINVAL (secret not valid or keys not matching).  */
int vdp_secret_save(const vdp_secret_t *secret, const char *path);

/*  Generates fresh CURVE and Ed25519 key pairs for an agency key (status active). `jurisdictions`
    is a comma-separated list. Returns VD_OK, VD_EINVAL (bad org/name/role/jurisdiction/label, or
    the role does not match the org id) with `err`, or VD_EINTERNAL (no CURVE support in libzmq,
    or libsodium failed to initialise).  */
int vdp_secret_generate(vdp_secret_t *out,
                        const char *org,
                        const char *name,
                        vdp_role_t role,
                        const char *jurisdictions,
                        const char *label,
                        char *err,
                        size_t err_size);

/*  Decodes the secret's CURVE key pair (for zsock_set_curve_*_bin / ZMQ_CURVE_*KEY) or its
    64-byte Ed25519 signing secret key. The caller wipes the output with sodium_memzero.
    Returns VD_OK, or VD_EINVAL if the secret does not hold valid keys.  */
int vdp_secret_curve_keys(const vdp_secret_t *secret,
                          uint8_t public_key[VDP_KEY_BYTES],
                          uint8_t secret_key[VDP_KEY_BYTES]);
int vdp_secret_sign_key(const vdp_secret_t *secret, uint8_t out[VDP_SIGN_SECRET_BYTES]);

//  Wipes a secret with sodium_memzero. Accepts NULL.
void vdp_secret_wipe(vdp_secret_t *secret);

#endif

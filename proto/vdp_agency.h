/*  vdp_agency: the agency key files (PROTOCOL.md §8, docs/keys.md).
    - The public agency file describes one key of one agency: org id, display name, role,
      jurisdictions, label, CURVE public key, Ed25519 signing public key, status. The broker's
      operator installs it in the registry directory.
    - The secret file holds the same plus both secret keys; mode 0600, refused when group or
      others may read it.
    Both are ZPL (zconfig) text. Loading validates every field; nothing is defaulted silently.  */

#ifndef VDP_AGENCY_H_INCLUDED
#define VDP_AGENCY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "vdp_ids.h"
#include "vdp_limits.h"

typedef enum { VDP_KEY_ACTIVE = 1, VDP_KEY_REVOKED = 2 } vdp_key_status_t;

typedef struct {
    char org[VDP_MAX_ORG + 1];                            // "comune:i726"
    char name[VDP_MAX_NAME + 1];                          // "Comune di Siena"
    vdp_role_t role;                                      // must agree with the org id's kind
    char jur[VDP_MAX_JUR][VDP_MAX_SEGMENT + 1];           // "toscana"; cnaipic: "national"
    size_t jur_count;                                     // >= 1
    char label[VDP_MAX_LABEL + 1];                        // "siem", "console", "default"
    char curve_public[VDP_KEY_Z85_LEN + 1];               // Z85
    char sign_public[VDP_KEY_Z85_LEN + 1];                // Z85
    vdp_key_status_t status;
} vdp_agency_t;

typedef struct {
    vdp_agency_t agency;
    char curve_secret[VDP_KEY_Z85_LEN + 1];               // Z85; wipe with sodium_memzero
    char sign_secret[VDP_SIGN_SECRET_Z85_LEN + 1];        // Z85 of the 64-byte Ed25519 secret
} vdp_secret_t;

/*  Loads a public agency file. Returns VD_OK; VD_EIO (unreadable); VD_ECONFIG (a field missing
    or invalid: `err` names the file and the field).  */
int
vdp_agency_load(const char *path, vdp_agency_t *out, char *err, size_t err_size);

//  Writes a public agency file (mode 0644). Returns VD_OK, VD_EIO, VD_EINVAL.
int
vdp_agency_save(const vdp_agency_t *agency, const char *path);

/*  Loads a secret file; refuses it (VD_EACCES) if group or others have any permission on it.
    Returns VD_OK, VD_EIO, VD_EACCES, VD_ECONFIG with `err`.  */
int
vdp_secret_load(const char *path, vdp_secret_t *out, char *err, size_t err_size);

//  Writes a secret file with mode 0600, refusing to overwrite an existing file (VD_EIO).
int
vdp_secret_save(const vdp_secret_t *secret, const char *path);

/*  Generates fresh CURVE and Ed25519 key pairs for an agency key. `jurisdictions` is a
    comma-separated list. Returns VD_OK or VD_EINVAL (bad org/role/jurisdiction/label, or the
    role does not match the org id) with `err`.  */
int
vdp_secret_generate(vdp_secret_t *out,
                    const char *org,
                    const char *name,
                    vdp_role_t role,
                    const char *jurisdictions,
                    const char *label,
                    char *err,
                    size_t err_size);

//  Wipes a secret with sodium_memzero.
void
vdp_secret_wipe(vdp_secret_t *secret);

#endif

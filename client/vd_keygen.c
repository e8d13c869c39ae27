/*  vd_keygen: creates one agency key: a secret file for the agency's own system and the public
    agency file for the broker's registry (proto/vdp_agency.h holds both formats).
    Invariant: either both files are written, or neither is left behind; the secret never
    outlives this call in memory.  */

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "vedetta.h"
#include "vdp_agency.h"
#include "vdp_ids.h"

int
vd_keygen(const char *org,
          const char *name,
          const char *role,
          const char *jurisdictions,
          const char *label,
          const char *secret_path,
          const char *public_path)
{
    if (!org || !name || !role || !jurisdictions || !secret_path || !public_path)
        return VD_EINVAL;
    if (sodium_init() < 0)
        return VD_EINTERNAL;
    vdp_role_t role_id = vdp_role_from_name(role);
    if (role_id == VDP_ROLE_NONE)
        return VD_EINVAL;
    //  Refuse before generating anything: a public file silently replaced would leave the
    //  registry holding a key whose secret lives nowhere.
    struct stat st;
    if (lstat(public_path, &st) == 0 || lstat(secret_path, &st) == 0)
        return VD_EIO;

    vdp_secret_t secret = { 0 };
    char err[256];
    int rc = vdp_secret_generate(&secret, org, name, role_id, jurisdictions,
                                 label ? label : "default", err, sizeof err);
    if (rc != VD_OK)
        goto done;
    rc = vdp_secret_save(&secret, secret_path);
    if (rc != VD_OK)
        goto done;
    rc = vdp_agency_save(&secret.agency, public_path);
    if (rc != VD_OK)
        unlink(secret_path);
done:
    vdp_secret_wipe(&secret);
    return rc == VD_OK ? VD_OK : (rc == VD_EINVAL ? VD_EINVAL : VD_EIO);
}

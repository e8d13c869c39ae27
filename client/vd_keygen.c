/*  vd_keygen: creates one agency key: a secret file for the agency's own system and the public
    agency file for the broker's registry (proto/vdp_agency.h holds both formats).
    Invariant: either both files are written, or neither is left behind; the secret never
    outlives this call in memory.  */

#include <stdio.h>
#include <string.h>
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

int
vd_keygen_rotate(const char *old_secret_path,
                 const char *label,
                 const char *secret_path,
                 const char *public_path)
{
    if (!old_secret_path || !label || !secret_path || !public_path)
        return VD_EINVAL;
    if (sodium_init() < 0)
        return VD_EINTERNAL;
    vdp_secret_t old = { 0 };
    char err[256];
    int rc = vdp_secret_load(old_secret_path, &old, err, sizeof err);
    //  Only the public part is needed from here on: the old secrets go at once.
    vdp_agency_t agency = old.agency;
    vdp_secret_wipe(&old);
    if (rc != VD_OK)
        return rc == VD_EACCES ? VD_EACCES : VD_EINVAL;
    if (strcmp(label, agency.label) == 0)
        return VD_EINVAL; // the same label would name the same files
    char jurisdictions[VDP_MAX_JUR * (VDP_MAX_SEGMENT + 1) + 1] = "";
    for (size_t i = 0; i < agency.jur_count; i++) {
        if (i)
            strcat(jurisdictions, ",");
        strcat(jurisdictions, agency.jur[i]);
    }
    return vd_keygen(agency.org, agency.name, vdp_role_name(agency.role), jurisdictions, label,
                     secret_path, public_path);
}

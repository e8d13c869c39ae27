/*  vdp_ids: syntax of the identifiers both sides exchange: org ids, jurisdictions, UUIDs, roles,
    and the topic form of an org id. Pure functions, no allocation, NUL-terminated inputs.  */

#ifndef VDP_IDS_H_INCLUDED
#define VDP_IDS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "vdp_limits.h"

typedef enum {
    VDP_ROLE_NONE = 0,
    VDP_ROLE_COMUNE,  // "comune": a municipality, org id comune:<belfiore>
    VDP_ROLE_COSC,    // "cosc": regional centre, org id cosc:<jurisdiction>
    VDP_ROLE_ANCI,    // "anci": association of a region's Comuni, org id anci:<region>
    VDP_ROLE_CNAIPIC, // "cnaipic": the national centre, org id cnaipic
    VDP_ROLE_BROKER   // "broker": a federating broker, org id broker:<jurisdiction>
} vdp_role_t;

//  Role from its name; VDP_ROLE_NONE if unknown.
vdp_role_t vdp_role_from_name(const char *name);

//  Name of a role ("comune"...), "none" for VDP_ROLE_NONE. Static storage.
const char *vdp_role_name(vdp_role_t role);

/*  An org id: "cnaipic", or "<kind>:<code>" where kind is comune|cosc|anci|broker and code is
    1..VDP_MAX_SEGMENT of [a-z0-9-] not starting or ending with '-'. At most VDP_MAX_ORG bytes.  */
bool vdp_org_valid(const char *org);

//  The role an org id implies (comune:x -> VDP_ROLE_COMUNE), VDP_ROLE_NONE if not valid.
vdp_role_t vdp_org_role(const char *org);

//  The code part of an org id ("comune:i726" -> "i726", "cnaipic" -> "cnaipic"). Borrowed from
//  `org`. NULL if not valid.
const char *vdp_org_code(const char *org);

/*  The topic-segment form of an org id (':' becomes '-': "comune-i726"), written to `out` of
    `size` bytes. Returns 0, or -1 if `org` is invalid or `out` too small.  */
int vdp_org_slug(const char *org, char *out, size_t size);

//  A jurisdiction: one topic segment ([a-z0-9-], 1..VDP_MAX_SEGMENT), e.g. "sicilia-occ";
//  "national" is the one CNAIPIC holds.
bool vdp_jurisdiction_valid(const char *j);

//  A canonical UUID text: 36 chars, 8-4-4-4-12 lowercase hex.
bool vdp_uuid_valid(const char *id);

//  A durable subscription name: 1 to VDP_MAX_DURABLE bytes of [A-Za-z0-9._-].
bool vdp_durable_valid(const char *name);

//  Writes a new random (v4) UUID, NUL-terminated, into out[VDP_ID_LEN + 1]. Uses libsodium's
//  randombytes; sodium_init() must have succeeded.
void vdp_uuid_generate(char out[VDP_ID_LEN + 1]);

//  Copies printable ASCII of `in` into `out` (size bytes), replacing anything else by '?' and
//  truncating; for logging peer-supplied strings.
void vdp_sanitize(const char *in, size_t in_len, char *out, size_t size);

#endif

/*  vdp_ids: syntax of org ids, roles, jurisdictions and UUIDs (PROTOCOL.md §8).
    Every function is total on any NUL-terminated input (NULL included) and allocates nothing.  */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "vdp_ids.h"

//  Role names by vdp_role_t value; the org id kind of a role is its name.
static const char *const s_role_names[] = { "none", "comune", "cosc", "anci", "cnaipic", "broker" };
#define S_ROLE_COUNT (sizeof s_role_names / sizeof s_role_names[0])

vdp_role_t
vdp_role_from_name(const char *name)
{
    if (!name)
        return VDP_ROLE_NONE;
    for (size_t i = 1; i < S_ROLE_COUNT; i++)
        if (strcmp(name, s_role_names[i]) == 0)
            return (vdp_role_t)i;
    return VDP_ROLE_NONE;
}

const char *
vdp_role_name(vdp_role_t role)
{
    if ((unsigned)role >= S_ROLE_COUNT)
        return "none";
    return s_role_names[role];
}

static bool
s_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

//  1..VDP_MAX_SEGMENT of [a-z0-9-] in s[0..len), not starting or ending with '-'.
static bool
s_code_valid(const char *s, size_t len)
{
    if (len == 0 || len > VDP_MAX_SEGMENT)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!s_lower_alnum(s[i]) && s[i] != '-')
            return false;
    return s[0] != '-' && s[len - 1] != '-';
}

//  The role of a syntactically valid org id, VDP_ROLE_NONE otherwise. The one parser of org ids.
vdp_role_t
vdp_org_role(const char *org)
{
    if (!org)
        return VDP_ROLE_NONE;
    size_t len = strnlen(org, VDP_MAX_ORG + 1);
    if (len > VDP_MAX_ORG)
        return VDP_ROLE_NONE;
    if (strcmp(org, "cnaipic") == 0)
        return VDP_ROLE_CNAIPIC;
    const char *colon = memchr(org, ':', len);
    if (!colon)
        return VDP_ROLE_NONE;
    size_t kind_len = (size_t)(colon - org);
    vdp_role_t role = VDP_ROLE_NONE;
    for (size_t i = 1; i < S_ROLE_COUNT; i++) {
        if (i == VDP_ROLE_CNAIPIC)
            continue; // "cnaipic" has no code part
        if (strlen(s_role_names[i]) == kind_len && memcmp(org, s_role_names[i], kind_len) == 0)
            role = (vdp_role_t)i;
    }
    if (role == VDP_ROLE_NONE)
        return VDP_ROLE_NONE;
    if (!s_code_valid(colon + 1, len - kind_len - 1))
        return VDP_ROLE_NONE;
    return role;
}

bool
vdp_org_valid(const char *org)
{
    return vdp_org_role(org) != VDP_ROLE_NONE;
}

const char *
vdp_org_code(const char *org)
{
    vdp_role_t role = vdp_org_role(org);
    if (role == VDP_ROLE_NONE)
        return NULL;
    if (role == VDP_ROLE_CNAIPIC)
        return org;
    return strchr(org, ':') + 1;
}

int
vdp_org_slug(const char *org, char *out, size_t size)
{
    if (!out || !vdp_org_valid(org))
        return -1;
    size_t len = strlen(org);
    if (len + 1 > size)
        return -1;
    for (size_t i = 0; i < len; i++)
        out[i] = org[i] == ':' ? '-' : org[i];
    out[len] = '\0';
    return 0;
}

bool
vdp_jurisdiction_valid(const char *j)
{
    if (!j)
        return false;
    size_t len = strnlen(j, VDP_MAX_SEGMENT + 1);
    if (len == 0 || len > VDP_MAX_SEGMENT)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!s_lower_alnum(j[i]) && j[i] != '-')
            return false;
    return true;
}

bool
vdp_uuid_valid(const char *id)
{
    if (!id)
        return false;
    for (size_t i = 0; i < VDP_ID_LEN; i++) {
        char c = id[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false; // also stops at the NUL of a short string
        }
    }
    return id[VDP_ID_LEN] == '\0';
}

void
vdp_uuid_generate(char out[VDP_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t bytes[16];
    randombytes_buf(bytes, sizeof bytes);
    bytes[6] = (uint8_t)((bytes[6] & 0x0f) | 0x40); // version 4: random
    bytes[8] = (uint8_t)((bytes[8] & 0x3f) | 0x80); // variant 10xx: RFC 4122
    size_t o = 0;
    for (size_t i = 0; i < sizeof bytes; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[bytes[i] >> 4];
        out[o++] = hex[bytes[i] & 0x0f];
    }
    assert(o == VDP_ID_LEN);
    out[o] = '\0';
}

void
vdp_sanitize(const char *in, size_t in_len, char *out, size_t size)
{
    if (!out || size == 0)
        return;
    size_t n = 0;
    for (size_t i = 0; in && i < in_len && n + 1 < size; i++) {
        unsigned char c = (unsigned char)in[i];
        out[n++] = (c >= 0x20 && c <= 0x7e) ? (char)c : '?';
    }
    out[n] = '\0';
}

bool
vdp_durable_valid(const char *name)
{
    if (!name)
        return false;
    size_t len = strnlen(name, VDP_MAX_DURABLE + 1);
    if (len == 0 || len > VDP_MAX_DURABLE)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/*  vd_client_internal: helpers shared by libvedetta's own files and the vedetta CLI; not
    installed, not exported from the shared library.  */

#ifndef VD_CLIENT_INTERNAL_H_INCLUDED
#define VD_CLIENT_INTERNAL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vedetta.h"

#define VD_ENVELOPE_VERSION 1u // the envelope map's "v" (PROTOCOL.md §4.1)
#define VD_ISO8601_SIZE     25 // "2024-02-21T10:00:00.123Z" and its NUL
#define VD_STRINGIFY_(x)    #x
#define VD_XSTRINGIFY_(x)   VD_STRINGIFY_(x)
#define VD_VERSION_STRING                                                                          \
    VD_XSTRINGIFY_(VD_VERSION_MAJOR)                                                               \
    "." VD_XSTRINGIFY_(VD_VERSION_MINOR) "." VD_XSTRINGIFY_(VD_VERSION_PATCH)

//  True if data[0..size) is well-formed UTF-8 (no overlong forms, surrogates or > U+10FFFF).
bool vd_utf8_valid(const uint8_t *data, size_t size);

/*  Writes `ms` (UTC ms since the epoch, >= 0) as ISO-8601 with milliseconds and a Z, e.g.
    "2024-02-21T10:00:00.123Z", into `out` of at least VD_ISO8601_SIZE bytes.
    Returns VD_OK or VD_EINVAL.  */
int vd_iso8601(int64_t ms, char *out, size_t size);

/*  The inverse: "2026-11-22T10:00:00Z" or "2026-11-22T10:00:00.250Z" (up to three digits of
    fraction) as UTC ms. Only UTC, spelled with a Z: a local time would name another moment
    depending on where the command runs. Refuses dates that do not exist (February 30th) and
    times before 1970. Returns VD_OK or VD_EINVAL.  */
int vd_iso8601_parse(const char *text, int64_t *ms);

#endif

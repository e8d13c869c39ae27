/*  vdp_agency: see vdp_agency.h and docs/keys.md.
    Loading runs in three steps, each refusing what the next would misread:
    1. s_zpl_check: the bytes are ZPL that zconfig accepts as it stands (zconfig would log its
       own complaint and return NULL; we want the line number in our error, and no log line
       from a library). So this mirrors zconfig_chunk_load's rules exactly.
    2. s_collect: the tree has exactly the known sections and fields, each once (the optional
       key/rate and key/bytes at most once).
    3. s_fill + s_check: every value is valid, and the fields agree with each other.
    Secret hygiene: buffers that held secret text are wiped before they are freed, including
    zconfig's copies (values, the chunk, the parser's stack line). zconfig's own temporaries
    while saving (zsys_vprintf) are freed unwiped; only keygen saves secrets, once per run.  */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <czmq.h>
#include <sodium.h>

#include "vdp_errors.h"
#include "vdp_agency.h"
#include "vedetta.h"

_Static_assert(VDP_SIGN_SECRET_BYTES == crypto_sign_SECRETKEYBYTES, "Ed25519 secret key size");
_Static_assert(VDP_KEY_BYTES == crypto_sign_PUBLICKEYBYTES, "Ed25519 public key size");
_Static_assert(VDP_KEY_BYTES == crypto_scalarmult_BYTES, "CURVE key size");
_Static_assert(VDP_KEY_Z85_LEN == VDP_KEY_BYTES * 5 / 4, "Z85 of a key");
_Static_assert(VDP_SIGN_SECRET_Z85_LEN == VDP_SIGN_SECRET_BYTES * 5 / 4, "Z85 of a signing key");

#define S_MAX_LINE   1024u // zconfig_chunk_load silently truncates longer lines
#define S_ECHO_BYTES 49u   // how much of a bad value an error message quotes
#define S_NATIONAL   "national"
#define S_RATE_TEXT  64u // "<rate>/s+<burst>" with both at most VDP_RATE_MAX: 30 bytes

#define S_PUBLIC_HEADER                                                                            \
    "   vedetta agency key: public; the broker's operator installs it in the registry directory"
#define S_SECRET_HEADER                                                                            \
    "   vedetta agency key: SECRET. Keep it private (mode 0600) and never copy it to a broker;"
#define S_SECRET_HEADER2                                                                           \
    "   the matching public .agency file is what the broker's operator installs."

typedef enum {
    F_ORG,
    F_NAME,
    F_ROLE,
    F_JUR,
    F_LABEL,
    F_CURVE_PUBLIC,
    F_SIGN_PUBLIC,
    F_STATUS,
    F_RATE, // optional, as the next one
    F_BYTES,
    F_CURVE_SECRET, // secret file only, from here on
    F_SIGN_SECRET,
    F_COUNT
} s_field_t;

static const struct {
    const char *section;
    const char *name;
    bool secret;
    bool optional; // may be absent: its value is then "not set"
} s_fields[F_COUNT] = {
    [F_ORG] = { "agency", "org", false, false },
    [F_NAME] = { "agency", "name", false, false },
    [F_ROLE] = { "agency", "role", false, false },
    [F_JUR] = { "agency", "jurisdiction", false, false },
    [F_LABEL] = { "key", "label", false, false },
    [F_CURVE_PUBLIC] = { "key", "curve-public", false, false },
    [F_SIGN_PUBLIC] = { "key", "sign-public", false, false },
    [F_STATUS] = { "key", "status", false, false },
    [F_RATE] = { "key", "rate", false, true },
    [F_BYTES] = { "key", "bytes", false, true },
    [F_CURVE_SECRET] = { "key", "curve-secret", true, false },
    [F_SIGN_SECRET] = { "key", "sign-secret", true, false },
};

//  A value as error messages quote it: printable ASCII, truncated. Never call it on a secret.
static const char *
s_echo(const char *value, char out[S_ECHO_BYTES])
{
    vdp_sanitize(value, strlen(value), out, S_ECHO_BYTES);
    return out;
}

//  The C locale's isspace, which zconfig uses (independent of the caller's locale).
static bool
s_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static bool
s_is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("$-_@.&+/", c) != NULL;
}

//  Only blanks up to the end of the line or a comment: zconfig's s_verify_eoln.
static bool
s_eoln_ok(const char *p, const char *end)
{
    while (p < end && s_is_space(*p))
        p++;
    return p == end || *p == '#';
}

//  Checks one line's name and value syntax (after its indentation). NULL if fine, else why not.
static const char *
s_zpl_line(const char *p, const char *end)
{
    const char *name = p;
    while (p < end && s_is_name_char(*p))
        p++;
    if (p == name)
        return "expected a name";
    if (*name == '/' || p[-1] == '/')
        return "'/' may not start or end a name";
    while (p < end && s_is_space(*p))
        p++;
    if (p == end || *p != '=')
        return s_eoln_ok(p, end) ? NULL : "unexpected text after the name";
    p++;
    while (p < end && s_is_space(*p))
        p++;
    if (p < end && (*p == '"' || *p == '\'')) {
        const char *close = memchr(p + 1, *p, (size_t)(end - p - 1));
        if (!close)
            return "missing closing quote";
        if (!s_eoln_ok(close + 1, end))
            return "unexpected text after the quoted value";
    }
    return NULL;
}

//  Step 1 (see top): fails on anything zconfig_chunk_load would refuse or silently truncate.
static bool
s_zpl_check(const char *text, size_t size, const char *name, char *err, size_t err_size)
{
    //  Depth of the chain of last children: a line may be indented at most this many levels.
    size_t depth = 0;
    unsigned lineno = 0;
    const char *p = text;
    const char *end = text + size;
    while (p < end) {
        lineno++;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        const char *next = eol ? eol + 1 : end;
        if ((size_t)(line_end - p) > S_MAX_LINE) {
            vdp_errorf(err, err_size, VD_OK, "%s: line %u: longer than %u bytes", name, lineno,
                       S_MAX_LINE);
            return false;
        }
        if (memchr(p, '\0', (size_t)(line_end - p))) {
            vdp_errorf(err, err_size, VD_OK, "%s: line %u: holds a NUL byte", name, lineno);
            return false;
        }
        while (line_end > p && s_is_space(line_end[-1]))
            line_end--;
        const char *q = p;
        while (q < line_end && *q == ' ')
            q++;
        size_t indent = (size_t)(q - p);
        if (indent % 4 != 0) {
            vdp_errorf(err, err_size, VD_OK, "%s: line %u: indent by multiples of 4 spaces", name,
                       lineno);
            return false;
        }
        if (q < line_end && *q != '#') {
            const char *why = s_zpl_line(q, line_end);
            if (!why && indent / 4 > depth)
                why = "indented deeper than its section";
            if (why) {
                vdp_errorf(err, err_size, VD_OK, "%s: line %u: %s", name, lineno, why);
                return false;
            }
            depth = indent / 4 + 1;
        }
        p = next;
    }
    return true;
}

//  Overwrites every value of a zconfig tree before it is freed.
static void
s_wipe_tree(zconfig_t *node)
{
    for (; node; node = zconfig_next(node)) {
        char *value = zconfig_value(node);
        if (value)
            sodium_memzero(value, strlen(value));
        s_wipe_tree(zconfig_child(node));
    }
}

//  Parses checked ZPL text. NULL only when out of memory.
static zconfig_t *
s_zpl_load(const char *text, size_t size)
{
    zchunk_t *chunk = zchunk_new(text, size);
    if (!chunk)
        return NULL;
    zconfig_t *root = zconfig_chunk_load(chunk);
    sodium_memzero(zchunk_data(chunk), zchunk_size(chunk));
    zchunk_destroy(&chunk);
    //  The parser copied each line to a 1 KiB buffer on the stack we just left.
    sodium_stackzero(4 * S_MAX_LINE);
    return root;
}

//  Step 2 (see top): finds each field's value in the tree; all other items are errors.
static bool
s_collect(zconfig_t *root,
          const char *name,
          bool secret,
          const char *values[F_COUNT],
          char *err,
          size_t err_size)
{
    char echo[S_ECHO_BYTES];
    bool seen_agency = false, seen_key = false;
    for (zconfig_t *section = zconfig_child(root); section; section = zconfig_next(section)) {
        const char *sname = zconfig_name(section);
        bool *seen = strcmp(sname, "agency") == 0 ? &seen_agency
                     : strcmp(sname, "key") == 0  ? &seen_key
                                                  : NULL;
        if (!seen) {
            vdp_errorf(err, err_size, VD_OK, "%s: unknown section \"%s\" (expected agency and key)",
                       name, s_echo(sname, echo));
            return false;
        }
        if (*seen) {
            vdp_errorf(err, err_size, VD_OK, "%s: section %s appears twice", name, sname);
            return false;
        }
        *seen = true;
        if (zconfig_value(section) && *zconfig_value(section)) {
            vdp_errorf(err, err_size, VD_OK, "%s: section %s takes no value", name, sname);
            return false;
        }
        for (zconfig_t *item = zconfig_child(section); item; item = zconfig_next(item)) {
            const char *iname = zconfig_name(item);
            int f = 0;
            while (f < F_COUNT && (strcmp(s_fields[f].section, sname) != 0 ||
                                   strcmp(s_fields[f].name, iname) != 0))
                f++;
            if (f == F_COUNT) {
                vdp_errorf(err, err_size, VD_OK, "%s: %s/%s: unknown field", name, sname,
                           s_echo(iname, echo));
                return false;
            }
            if (s_fields[f].secret && !secret) {
                vdp_errorf(
                    err, err_size, VD_OK,
                    "%s: %s/%s: a secret key in a public agency file: this is a secret file; "
                    "install the public .agency file instead, and treat this key as exposed",
                    name, sname, iname);
                return false;
            }
            if (values[f]) {
                vdp_errorf(err, err_size, VD_OK, "%s: %s/%s: appears twice", name, sname, iname);
                return false;
            }
            if (zconfig_child(item)) {
                vdp_errorf(err, err_size, VD_OK, "%s: %s/%s: takes no sub-items", name, sname,
                           iname);
                return false;
            }
            values[f] = zconfig_value(item);
        }
    }
    for (int f = 0; f < F_COUNT; f++) {
        if (!values[f] && !s_fields[f].optional && (secret || !s_fields[f].secret)) {
            vdp_errorf(err, err_size, VD_OK, "%s: %s/%s: missing", name, s_fields[f].section,
                       s_fields[f].name);
            return false;
        }
    }
    return true;
}

//  True if `size` bytes at `text` are `bytes` bytes of Z85 (written to `out`, if not NULL).
static bool
s_z85_decode(const char *text, size_t size, size_t bytes, uint8_t *out)
{
    if (size != bytes * 5 / 4 || strnlen(text, size + 1) != size)
        return false;
    uint8_t scratch[VDP_SIGN_SECRET_BYTES];
    assert(bytes <= sizeof scratch);
    bool ok = zmq_z85_decode(out ? out : scratch, text) != NULL;
    sodium_memzero(scratch, sizeof scratch);
    return ok;
}

//  Label: [a-z0-9-]{1,VDP_MAX_LABEL}.
static bool
s_label_valid(const char *label, size_t size)
{
    size_t len = strnlen(label, size);
    if (len == 0 || len > VDP_MAX_LABEL || len == size)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = label[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

//  Display name: 1..VDP_MAX_NAME bytes of UTF-8 (shortest forms, no surrogates), no control
//  characters, no '"' (the file quotes values with it and ZPL has no escapes).
static bool
s_name_valid(const char *name, size_t size)
{
    size_t len = strnlen(name, size);
    if (len == 0 || len > VDP_MAX_NAME || len == size)
        return false;
    const unsigned char *p = (const unsigned char *)name;
    const unsigned char *end = p + len;
    while (p < end) {
        unsigned c = *p++;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f || c == '"')
                return false;
            continue;
        }
        size_t more = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
        if (more == 0 || c > 0xf4 || (size_t)(end - p) < more)
            return false;
        uint32_t cp = c & (0x3fu >> more);
        for (size_t i = 0; i < more; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3fu);
        }
        p += more;
        static const uint32_t min_for[4] = { 0, 0x80, 0x800, 0x10000 };
        if (cp < min_for[more] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
            (cp >= 0x80 && cp <= 0x9f))
            return false;
    }
    return true;
}

bool
vdp_agency_holds(const vdp_agency_t *agency, const char *jur)
{
    if (!agency || !jur)
        return false;
    for (size_t i = 0; i < agency->jur_count && i < VDP_MAX_JUR; i++)
        if (strcmp(agency->jur[i], jur) == 0)
            return true;
    return false;
}

//  The jurisdiction rules of one agency. False with msg if one fails.
static bool
s_check_jurisdictions(const vdp_agency_t *a, char *msg, size_t msg_size)
{
    char echo[S_ECHO_BYTES];
    if (a->jur_count < 1 || a->jur_count > VDP_MAX_JUR) {
        vdp_errorf(msg, msg_size, VD_OK, "agency/jurisdiction: 1 to %u jurisdictions expected",
                   VDP_MAX_JUR);
        return false;
    }
    for (size_t i = 0; i < a->jur_count; i++) {
        const char *j = a->jur[i];
        if (strnlen(j, sizeof a->jur[i]) == sizeof a->jur[i] || !vdp_jurisdiction_valid(j)) {
            vdp_errorf(msg, msg_size, VD_OK,
                       "agency/jurisdiction: \"%s\" is not a valid jurisdiction ([a-z0-9-], 1..%u "
                       "bytes)",
                       strnlen(j, sizeof a->jur[i]) == sizeof a->jur[i] ? "?" : s_echo(j, echo),
                       VDP_MAX_SEGMENT);
            return false;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(a->jur[k], j) == 0) {
                vdp_errorf(msg, msg_size, VD_OK, "agency/jurisdiction: \"%s\" listed twice", j);
                return false;
            }
        }
        //  "national" is CNAIPIC's (and a national broker's) alone: a Comune claiming it would
        //  receive every region's traffic under a $j grant.
        if (strcmp(j, S_NATIONAL) == 0 && a->role != VDP_ROLE_CNAIPIC &&
            a->role != VDP_ROLE_BROKER) {
            vdp_errorf(msg, msg_size, VD_OK,
                       "agency/jurisdiction: \"national\" is reserved for cnaipic");
            return false;
        }
    }
    if (a->role == VDP_ROLE_CNAIPIC && (a->jur_count != 1 || strcmp(a->jur[0], S_NATIONAL))) {
        vdp_errorf(msg, msg_size, VD_OK, "agency/jurisdiction: cnaipic holds exactly \"national\"");
        return false;
    }
    //  cosc:<j> and broker:<j> name their jurisdiction in the org id; the two must agree.
    if (a->role == VDP_ROLE_COSC || a->role == VDP_ROLE_BROKER) {
        const char *code = vdp_org_code(a->org);
        if (!code || !vdp_agency_holds(a, code)) {
            vdp_errorf(msg, msg_size, VD_OK,
                       "agency/jurisdiction: %s must hold its own jurisdiction \"%s\"", a->org,
                       code ? code : "?");
            return false;
        }
    }
    return true;
}

//  A rate limit field: not set (both members 0), or a value vdp_rate_parse could have read.
//  False with msg naming the field if not.
static bool
s_check_rate(const vdp_rate_t *rate, s_field_t f, char *msg, size_t msg_size)
{
    const char *section = s_fields[f].section;
    const char *field = s_fields[f].name;
    if (rate->per_second == 0 && rate->burst == 0)
        return true;
    if (rate->per_second == 0) {
        vdp_errorf(msg, msg_size, VD_OK, "%s/%s: a burst without a rate", section, field);
        return false;
    }
    if (rate->burst < rate->per_second) {
        vdp_errorf(msg, msg_size, VD_OK,
                   "%s/%s: burst %" PRIu64 " is below the rate %" PRIu64
                   ": the bucket must hold at least one second's worth",
                   section, field, rate->burst, rate->per_second);
        return false;
    }
    //  per_second <= burst: bounding the burst bounds both.
    if (rate->burst > VDP_RATE_MAX) {
        vdp_errorf(msg, msg_size, VD_OK, "%s/%s: burst too large (at most %llu)", section, field,
                   VDP_RATE_MAX);
        return false;
    }
    return true;
}

//  Step 3 (see top): the semantic checks, on a filled struct. False with msg if one fails.
static bool
s_check(const vdp_agency_t *a, char *msg, size_t msg_size)
{
    char echo[S_ECHO_BYTES];
    bool org_terminated = strnlen(a->org, sizeof a->org) < sizeof a->org;
    if (!org_terminated || !vdp_org_valid(a->org)) {
        vdp_errorf(msg, msg_size, VD_OK,
                   "agency/org: \"%s\" is not a valid org id (comune:<code>, cosc:<jurisdiction>, "
                   "anci:<region>, broker:<jurisdiction> or cnaipic)",
                   org_terminated ? s_echo(a->org, echo) : "?");
        return false;
    }
    if (!s_name_valid(a->name, sizeof a->name)) {
        vdp_errorf(msg, msg_size, VD_OK,
                   "agency/name: 1..%u bytes of UTF-8 text expected, without control characters or "
                   "'\"'",
                   VDP_MAX_NAME);
        return false;
    }
    vdp_role_t implied = vdp_org_role(a->org);
    if (a->role != implied) {
        vdp_errorf(msg, msg_size, VD_OK, "agency/role: \"%s\" does not match org %s, which is a %s",
                   vdp_role_name(a->role), a->org, vdp_role_name(implied));
        return false;
    }
    if (!s_check_jurisdictions(a, msg, msg_size))
        return false;
    if (!s_label_valid(a->label, sizeof a->label)) {
        bool terminated = strnlen(a->label, sizeof a->label) < sizeof a->label;
        vdp_errorf(msg, msg_size, VD_OK,
                   "key/label: \"%s\" is not a valid label ([a-z0-9-], 1..%u bytes)",
                   terminated ? s_echo(a->label, echo) : "?", VDP_MAX_LABEL);
        return false;
    }
    if (!s_z85_decode(a->curve_public, strnlen(a->curve_public, sizeof a->curve_public),
                      VDP_KEY_BYTES, NULL)) {
        vdp_errorf(msg, msg_size, VD_OK,
                   "key/curve-public: not a Z85-encoded 32-byte key (40 characters)");
        return false;
    }
    if (!s_z85_decode(a->sign_public, strnlen(a->sign_public, sizeof a->sign_public), VDP_KEY_BYTES,
                      NULL)) {
        vdp_errorf(msg, msg_size, VD_OK,
                   "key/sign-public: not a Z85-encoded 32-byte key (40 characters)");
        return false;
    }
    if (a->status != VDP_KEY_ACTIVE && a->status != VDP_KEY_REVOKED) {
        vdp_errorf(msg, msg_size, VD_OK, "key/status: neither active nor revoked");
        return false;
    }
    return s_check_rate(&a->rate, F_RATE, msg, msg_size) &&
           s_check_rate(&a->bytes, F_BYTES, msg, msg_size);
}

//  Each secret key is valid and derives its public key. False with msg if not.
static bool
s_check_secret(const vdp_secret_t *s, char *msg, size_t msg_size)
{
    uint8_t public_key[VDP_KEY_BYTES], secret_key[VDP_SIGN_SECRET_BYTES];
    uint8_t derived[VDP_KEY_BYTES], derived_secret[VDP_SIGN_SECRET_BYTES];
    bool ok = false;
    if (!s_z85_decode(s->curve_secret, strnlen(s->curve_secret, sizeof s->curve_secret),
                      VDP_KEY_BYTES, secret_key)) {
        vdp_errorf(msg, msg_size, VD_OK,
                   "key/curve-secret: not a Z85-encoded 32-byte key (40 characters)");
        goto done;
    }
    if (!s_z85_decode(s->agency.curve_public, strlen(s->agency.curve_public), VDP_KEY_BYTES,
                      public_key) ||
        crypto_scalarmult_base(derived, secret_key) != 0 ||
        sodium_memcmp(derived, public_key, VDP_KEY_BYTES) != 0) {
        vdp_errorf(msg, msg_size, VD_OK, "key/curve-secret: does not match key/curve-public");
        goto done;
    }
    if (!s_z85_decode(s->sign_secret, strnlen(s->sign_secret, sizeof s->sign_secret),
                      VDP_SIGN_SECRET_BYTES, secret_key)) {
        vdp_errorf(msg, msg_size, VD_OK,
                   "key/sign-secret: not a Z85-encoded 64-byte Ed25519 key (80 characters)");
        goto done;
    }
    //  An Ed25519 secret key is seed || public key: rederive both halves from the seed.
    if (!s_z85_decode(s->agency.sign_public, strlen(s->agency.sign_public), VDP_KEY_BYTES,
                      public_key) ||
        crypto_sign_seed_keypair(derived, derived_secret, secret_key) != 0 ||
        sodium_memcmp(derived, public_key, VDP_KEY_BYTES) != 0 ||
        sodium_memcmp(derived_secret, secret_key, VDP_SIGN_SECRET_BYTES) != 0) {
        vdp_errorf(msg, msg_size, VD_OK, "key/sign-secret: does not match key/sign-public");
        goto done;
    }
    ok = true;
done:
    sodium_memzero(secret_key, sizeof secret_key);
    sodium_memzero(derived_secret, sizeof derived_secret);
    return ok;
}

//  Copies `src` into dst[size] if it fits (with its NUL).
static bool
s_copy(char *dst, size_t size, const char *src)
{
    size_t len = strnlen(src, size);
    if (len == size)
        return false;
    memcpy(dst, src, len + 1);
    return true;
}

//  Splits "a,b" (blanks around items allowed) into a->jur. False with msg if malformed.
static bool
s_parse_jurisdictions(vdp_agency_t *a, const char *list, char *msg, size_t msg_size)
{
    char echo[S_ECHO_BYTES];
    a->jur_count = 0;
    const char *p = list;
    while (true) {
        const char *comma = strchr(p, ',');
        const char *item_end = comma ? comma : p + strlen(p);
        while (p < item_end && *p == ' ')
            p++;
        while (item_end > p && item_end[-1] == ' ')
            item_end--;
        size_t len = (size_t)(item_end - p);
        if (len == 0) {
            vdp_errorf(msg, msg_size, VD_OK, "agency/jurisdiction: empty item in \"%s\"",
                       s_echo(list, echo));
            return false;
        }
        if (a->jur_count == VDP_MAX_JUR) {
            vdp_errorf(msg, msg_size, VD_OK, "agency/jurisdiction: more than %u jurisdictions",
                       VDP_MAX_JUR);
            return false;
        }
        if (len > VDP_MAX_SEGMENT) {
            vdp_errorf(msg, msg_size, VD_OK, "agency/jurisdiction: an item is longer than %u bytes",
                       VDP_MAX_SEGMENT);
            return false;
        }
        memcpy(a->jur[a->jur_count], p, len);
        a->jur[a->jur_count][len] = '\0';
        a->jur_count++;
        if (!comma)
            return true;
        p = comma + 1;
    }
}

//  Reads an optional rate limit field; an absent one is "not set". False with msg if malformed.
static bool
s_fill_rate(vdp_rate_t *out, s_field_t f, const char *value, char *msg, size_t msg_size)
{
    *out = (vdp_rate_t){ 0, 0 };
    if (!value)
        return true;
    char why[128];
    if (vdp_rate_parse(value, out, why, sizeof why) == VD_OK)
        return true;
    char echo[S_ECHO_BYTES];
    vdp_errorf(msg, msg_size, VD_OK, "%s/%s: \"%s\": %s", s_fields[f].section, s_fields[f].name,
               s_echo(value, echo), why);
    return false;
}

//  Builds `out` from field texts (values[f] may be NULL only for optional fields, and for secret
//  fields when !secret), then checks it. False with msg (naming the field) if anything is wrong.
static bool
s_fill(vdp_secret_t *out, const char *values[F_COUNT], bool secret, char *msg, size_t msg_size)
{
    char echo[S_ECHO_BYTES];
    vdp_agency_t *a = &out->agency;
    struct {
        s_field_t field;
        char *dst;
        size_t size;
    } copies[] = {
        { F_ORG, a->org, sizeof a->org },
        { F_NAME, a->name, sizeof a->name },
        { F_LABEL, a->label, sizeof a->label },
        { F_CURVE_PUBLIC, a->curve_public, sizeof a->curve_public },
        { F_SIGN_PUBLIC, a->sign_public, sizeof a->sign_public },
        { F_CURVE_SECRET, out->curve_secret, sizeof out->curve_secret },
        { F_SIGN_SECRET, out->sign_secret, sizeof out->sign_secret },
    };
    for (size_t i = 0; i < sizeof copies / sizeof copies[0]; i++) {
        s_field_t f = copies[i].field;
        if (s_fields[f].secret && !secret)
            continue;
        if (!s_copy(copies[i].dst, copies[i].size, values[f])) {
            vdp_errorf(msg, msg_size, VD_OK, "%s/%s: longer than %zu bytes", s_fields[f].section,
                       s_fields[f].name, copies[i].size - 1);
            return false;
        }
    }
    a->role = vdp_role_from_name(values[F_ROLE]);
    if (a->role == VDP_ROLE_NONE) {
        vdp_errorf(msg, msg_size, VD_OK,
                   "agency/role: unknown role \"%s\" (comune, cosc, anci, cnaipic or broker)",
                   s_echo(values[F_ROLE], echo));
        return false;
    }
    if (strcmp(values[F_STATUS], "active") == 0)
        a->status = VDP_KEY_ACTIVE;
    else if (strcmp(values[F_STATUS], "revoked") == 0)
        a->status = VDP_KEY_REVOKED;
    else {
        vdp_errorf(msg, msg_size, VD_OK, "key/status: \"%s\" is neither active nor revoked",
                   s_echo(values[F_STATUS], echo));
        return false;
    }
    if (!s_parse_jurisdictions(a, values[F_JUR], msg, msg_size))
        return false;
    if (!s_fill_rate(&a->rate, F_RATE, values[F_RATE], msg, msg_size) ||
        !s_fill_rate(&a->bytes, F_BYTES, values[F_BYTES], msg, msg_size))
        return false;
    if (!s_check(a, msg, msg_size))
        return false;
    return !secret || s_check_secret(out, msg, msg_size);
}

//  Parses a whole file's text into `out`. VD_OK or VD_ECONFIG with err ("name: ...").
static int
s_parse(const char *text,
        size_t size,
        const char *name,
        bool secret,
        vdp_secret_t *out,
        char *err,
        size_t err_size)
{
    if (!out)
        return VD_EINVAL;
    memset(out, 0, sizeof *out);
    if (!text)
        return VD_EINVAL;
    if (!name)
        name = "(agency file)";
    if (size > VDP_AGENCY_MAX_FILE) {
        vdp_errorf(err, err_size, VD_OK, "%s: larger than %u bytes", name, VDP_AGENCY_MAX_FILE);
        return VD_ECONFIG;
    }
    if (!s_zpl_check(text, size, name, err, err_size))
        return VD_ECONFIG;
    //  NULL here is out of memory, or zconfig refusing what s_zpl_check let through (a bug the
    //  fuzz target looks for by this message).
    zconfig_t *root = s_zpl_load(text, size);
    if (!root) {
        vdp_errorf(err, err_size, VD_OK, "%s: not valid ZPL", name);
        return VD_ECONFIG;
    }
    int rc = VD_ECONFIG;
    const char *values[F_COUNT] = { NULL };
    char msg[256];
    if (s_collect(root, name, secret, values, err, err_size)) {
        if (s_fill(out, values, secret, msg, sizeof msg))
            rc = VD_OK;
        else
            vdp_errorf(err, err_size, VD_OK, "%s: %s", name, msg);
    }
    s_wipe_tree(root);
    zconfig_destroy(&root);
    if (rc != VD_OK)
        vdp_secret_wipe(out);
    return rc;
}

int
vdp_agency_parse(
    const char *text, size_t size, const char *name, vdp_agency_t *out, char *err, size_t err_size)
{
    if (!out)
        return VD_EINVAL;
    vdp_secret_t secret;
    int rc = s_parse(text, size, name, false, &secret, err, err_size);
    *out = secret.agency;
    vdp_secret_wipe(&secret);
    return rc;
}

int
vdp_secret_parse(
    const char *text, size_t size, const char *name, vdp_secret_t *out, char *err, size_t err_size)
{
    return s_parse(text, size, name, true, out, err, err_size);
}

/*  Reads a whole file (at most VDP_AGENCY_MAX_FILE bytes) into a new buffer the caller wipes and
    frees. A secret file must be a regular file no one but its owner may access: checked on the
    open descriptor, so the file cannot be swapped between the check and the read.  */
static int
s_read_file(
    const char *path, bool secret, char **data_p, size_t *size_p, char *err, size_t err_size)
{
    //  O_NONBLOCK: opening a FIFO must not hang; it is refused as not regular right after.
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        vdp_errorf(err, err_size, VD_OK, "%s: cannot open: %s", path, strerror(errno));
        return VD_EIO;
    }
    int rc = VD_OK;
    char *data = NULL;
    size_t size = 0;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        vdp_errorf(err, err_size, VD_OK, "%s: cannot stat: %s", path, strerror(errno));
        rc = VD_EIO;
    } else if (!S_ISREG(st.st_mode)) {
        vdp_errorf(err, err_size, VD_OK, "%s: not a regular file", path);
        rc = secret ? VD_EACCES : VD_EIO;
    } else if (secret && (st.st_mode & 077) != 0) {
        vdp_errorf(err, err_size, VD_OK,
                   "%s: mode %04o lets group or others access this secret key file; fix it with: "
                   "chmod 600 %s",
                   path, (unsigned)(st.st_mode & 07777), path);
        rc = VD_EACCES;
    } else if (st.st_size > (off_t)VDP_AGENCY_MAX_FILE) {
        vdp_errorf(err, err_size, VD_OK, "%s: larger than %u bytes", path, VDP_AGENCY_MAX_FILE);
        rc = VD_ECONFIG;
    } else if (!(data = malloc(VDP_AGENCY_MAX_FILE + 1))) {
        vdp_errorf(err, err_size, VD_OK, "%s: out of memory", path);
        rc = VD_ENOMEM;
    }
    //  Read to the end rather than trusting st_size: the file may be growing.
    while (rc == VD_OK) {
        ssize_t got = read(fd, data + size, VDP_AGENCY_MAX_FILE + 1 - size);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            vdp_errorf(err, err_size, VD_OK, "%s: cannot read: %s", path, strerror(errno));
            rc = VD_EIO;
        } else if (got == 0)
            break;
        else if ((size += (size_t)got) > VDP_AGENCY_MAX_FILE) {
            vdp_errorf(err, err_size, VD_OK, "%s: larger than %u bytes", path, VDP_AGENCY_MAX_FILE);
            rc = VD_ECONFIG;
        }
    }
    close(fd);
    if (rc != VD_OK && data) {
        sodium_memzero(data, VDP_AGENCY_MAX_FILE + 1);
        free(data);
        data = NULL;
    }
    *data_p = data;
    *size_p = size;
    return rc;
}

static int
s_load(const char *path, bool secret, vdp_secret_t *out, char *err, size_t err_size)
{
    if (!out)
        return VD_EINVAL;
    memset(out, 0, sizeof *out);
    if (!path)
        return VD_EINVAL;
    char *data = NULL;
    size_t size = 0;
    int rc = s_read_file(path, secret, &data, &size, err, err_size);
    if (rc == VD_OK) {
        rc = s_parse(data, size, path, secret, out, err, err_size);
        sodium_memzero(data, size);
        free(data);
    }
    return rc;
}

int
vdp_agency_load(const char *path, vdp_agency_t *out, char *err, size_t err_size)
{
    if (!out)
        return VD_EINVAL;
    vdp_secret_t secret;
    int rc = s_load(path, false, &secret, err, err_size);
    *out = secret.agency;
    vdp_secret_wipe(&secret);
    return rc;
}

int
vdp_secret_load(const char *path, vdp_secret_t *out, char *err, size_t err_size)
{
    return s_load(path, true, out, err, err_size);
}

int
vdp_agency_check(const vdp_agency_t *agency, char *err, size_t err_size)
{
    if (!agency) {
        vdp_errorf(err, err_size, VD_OK, "no agency");
        return VD_EINVAL;
    }
    return s_check(agency, err, err_size) ? VD_OK : VD_EINVAL;
}

//  True if a and b hold the same jurisdictions, in any order (loading refuses repeats).
static bool
s_same_jurisdictions(const vdp_agency_t *a, const vdp_agency_t *b)
{
    if (a->jur_count != b->jur_count)
        return false;
    for (size_t i = 0; i < a->jur_count; i++)
        if (!vdp_agency_holds(b, a->jur[i]))
            return false;
    return true;
}

int
vdp_agency_check_org(const vdp_agency_t *first,
                     const char *first_source,
                     const vdp_agency_t *agency,
                     const char *source,
                     char *err,
                     size_t err_size)
{
    if (!first || !agency || !first_source || !source)
        return vdp_errorf(err, err_size, VD_EINVAL, "no agency");
    const char *field = strcmp(first->name, agency->name) != 0 ? "agency/name"
                        : first->role != agency->role          ? "agency/role"
                        : !s_same_jurisdictions(first, agency) ? "agency/jurisdiction"
                                                               : NULL;
    if (!field)
        return VD_OK;
    return vdp_errorf(err, err_size, VD_EINVAL,
                      "%s: %s: org %s is described differently in %s; all keys of one org must "
                      "agree on name, role and jurisdictions",
                      source, field, agency->org, first_source);
}

//  ---------------------------------------------------------------------------------------------
//  A directory of public agency files

#define S_AGENCY_SUFFIX ".agency"
#define S_MIN_DIR_NAMES 16u

static int
s_compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

//  "x.agency", not hidden (editors and our own atomic writes keep dot-files there).
static bool
s_is_agency_file(const char *name)
{
    size_t len = strlen(name);
    size_t suffix = strlen(S_AGENCY_SUFFIX);
    return name[0] != '.' && len > suffix && strcmp(name + len - suffix, S_AGENCY_SUFFIX) == 0;
}

static void
s_free_names(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

//  The sorted names of the agency files in `dir`. VD_OK, VD_EIO or VD_ENOMEM with err.
static int
s_list_dir(const char *dir, char ***names_p, size_t *count_p, char *err, size_t err_size)
{
    *names_p = NULL;
    *count_p = 0;
    DIR *handle = opendir(dir);
    if (!handle)
        return vdp_errorf(err, err_size, VD_EIO, "%s: cannot open the agency directory: %s", dir,
                          strerror(errno));
    char **names = NULL;
    size_t count = 0, capacity = 0;
    int rc = VD_OK;
    errno = 0;
    struct dirent *item;
    while (rc == VD_OK && (item = readdir(handle))) {
        if (!s_is_agency_file(item->d_name))
            continue;
        if (count == capacity) {
            capacity = capacity ? capacity * 2 : S_MIN_DIR_NAMES;
            char **grown = realloc(names, capacity * sizeof *grown);
            if (!grown) {
                rc = VD_ENOMEM;
                break;
            }
            names = grown;
        }
        if (!(names[count] = strdup(item->d_name)))
            rc = VD_ENOMEM;
        else
            count++;
        errno = 0;
    }
    if (rc == VD_OK && errno != 0)
        rc = vdp_errorf(err, err_size, VD_EIO, "%s: cannot read the agency directory: %s", dir,
                        strerror(errno));
    else if (rc == VD_ENOMEM)
        vdp_errorf(err, err_size, VD_OK, "%s: out of memory", dir);
    closedir(handle);
    if (rc != VD_OK) {
        s_free_names(names, count);
        return rc;
    }
    //  Sorted, so that which of two clashing files is named first does not depend on the
    //  file system's order.
    if (count > 1)
        qsort(names, count, sizeof *names, s_compare_names);
    *names_p = names;
    *count_p = count;
    return VD_OK;
}

int
vdp_agency_load_dir(const char *dir, vdp_agency_add_fn add, void *arg, char *err, size_t err_size)
{
    if (!dir || !add)
        return vdp_errorf(err, err_size, VD_EINVAL, "no agency directory");
    char **names;
    size_t count;
    int rc = s_list_dir(dir, &names, &count, err, err_size);
    if (rc != VD_OK)
        return rc;
    size_t dir_len = strlen(dir);
    bool slash = dir_len > 0 && dir[dir_len - 1] == '/';
    for (size_t i = 0; i < count && rc == VD_OK; i++) {
        char *path = malloc(dir_len + 1 + strlen(names[i]) + 1);
        if (!path) {
            rc = vdp_errorf(err, err_size, VD_ENOMEM, "%s: out of memory", dir);
            break;
        }
        sprintf(path, "%s%s%s", dir, slash ? "" : "/", names[i]);
        vdp_agency_t agency;
        rc = vdp_agency_load(path, &agency, err, err_size);
        if (rc == VD_OK)
            rc = add(arg, &agency, path, err, err_size);
        free(path);
    }
    s_free_names(names, count);
    return rc;
}

//  The ZPL text of a file; NULL when out of memory. The caller wipes and destroys the chunk.
static zchunk_t *
s_render(const vdp_secret_t *s, bool secret)
{
    const vdp_agency_t *a = &s->agency;
    zconfig_t *root = zconfig_new("root", NULL);
    if (!root)
        return NULL;
    if (secret) {
        zconfig_set_comment(root, S_SECRET_HEADER);
        zconfig_set_comment(root, S_SECRET_HEADER2);
    } else
        zconfig_set_comment(root, S_PUBLIC_HEADER);
    char jur[VDP_MAX_JUR * (VDP_MAX_SEGMENT + 1)] = "";
    for (size_t i = 0; i < a->jur_count; i++) {
        if (i > 0)
            strcat(jur, ",");
        strcat(jur, a->jur[i]);
    }
    zconfig_put(root, "agency/org", a->org);
    zconfig_put(root, "agency/name", a->name);
    zconfig_put(root, "agency/role", vdp_role_name(a->role));
    zconfig_put(root, "agency/jurisdiction", jur);
    zconfig_put(root, "key/label", a->label);
    zconfig_put(root, "key/curve-public", a->curve_public);
    zconfig_put(root, "key/sign-public", a->sign_public);
    zconfig_put(root, "key/status", a->status == VDP_KEY_ACTIVE ? "active" : "revoked");
    //  Only when set: a file without them leaves the key to its role's limits in the policy.
    //  Callers checked the agency (s_check), so each set limit formats.
    char rate[S_RATE_TEXT];
    if (a->rate.per_second != 0) {
        int rc = vdp_rate_format(&a->rate, rate, sizeof rate);
        assert(rc == VD_OK);
        zconfig_put(root, "key/rate", rate);
    }
    if (a->bytes.per_second != 0) {
        int rc = vdp_rate_format(&a->bytes, rate, sizeof rate);
        assert(rc == VD_OK);
        zconfig_put(root, "key/bytes", rate);
    }
    if (secret) {
        zconfig_put(root, "key/curve-secret", s->curve_secret);
        zconfig_put(root, "key/sign-secret", s->sign_secret);
    }
    zchunk_t *chunk = zconfig_chunk_save(root);
    s_wipe_tree(root);
    zconfig_destroy(&root);
    return chunk;
}

static bool
s_write_all(int fd, const void *data, size_t size)
{
    const char *p = data;
    while (size > 0) {
        ssize_t put = write(fd, p, size);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0)
            return false;
        p += put;
        size -= (size_t)put;
    }
    return true;
}

//  Writes the rendered chunk to fd and syncs it. False with errno on failure.
static bool
s_write_chunk(int fd, zchunk_t *chunk)
{
    //  zconfig_chunk_save leaves room for a NUL it writes past the data; do not save it.
    return s_write_all(fd, zchunk_data(chunk), zchunk_size(chunk)) && fsync(fd) == 0;
}

int
vdp_agency_save(const vdp_agency_t *agency, const char *path)
{
    if (!agency || !path || !s_check(agency, NULL, 0))
        return VD_EINVAL;
    vdp_secret_t holder = { .agency = *agency };
    zchunk_t *chunk = s_render(&holder, false);
    if (!chunk)
        return VD_ENOMEM;
    int rc = VD_EIO;
    char *temp = zsys_sprintf("%s.tmpXXXXXX", path);
    int fd = temp ? mkstemp(temp) : -1;
    if (fd >= 0) {
        bool ok = fchmod(fd, 0644) == 0 && s_write_chunk(fd, chunk);
        ok = close(fd) == 0 && ok;
        if (ok && rename(temp, path) == 0)
            rc = VD_OK;
        else {
            int saved = errno;
            unlink(temp);
            errno = saved;
        }
    }
    zstr_free(&temp);
    zchunk_destroy(&chunk);
    return rc;
}

int
vdp_secret_save(const vdp_secret_t *secret, const char *path)
{
    if (!secret || !path || !s_check(&secret->agency, NULL, 0) || !s_check_secret(secret, NULL, 0))
        return VD_EINVAL;
    //  O_EXCL: never overwrite (an existing key may be the only copy), never follow a symlink.
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return VD_EIO;
    zchunk_t *chunk = s_render(secret, true);
    //  fchmod: a umask may have removed the owner's own bits.
    bool ok = chunk && fchmod(fd, 0600) == 0 && s_write_chunk(fd, chunk);
    int saved = errno;
    ok = close(fd) == 0 && ok;
    if (chunk) {
        sodium_memzero(zchunk_data(chunk), zchunk_size(chunk));
        zchunk_destroy(&chunk);
    }
    if (!ok) {
        unlink(path);
        errno = saved;
        return chunk ? VD_EIO : VD_ENOMEM;
    }
    return VD_OK;
}

int
vdp_secret_generate(vdp_secret_t *out,
                    const char *org,
                    const char *name,
                    vdp_role_t role,
                    const char *jurisdictions,
                    const char *label,
                    char *err,
                    size_t err_size)
{
    if (!out)
        return VD_EINVAL;
    memset(out, 0, sizeof *out);
    if (!org || !name || !jurisdictions || !label) {
        vdp_errorf(err, err_size, VD_OK, "org, name, jurisdictions and label are required");
        return VD_EINVAL;
    }
    if (sodium_init() < 0) {
        vdp_errorf(err, err_size, VD_OK, "libsodium failed to initialise");
        return VD_EINTERNAL;
    }
    char curve_public[VDP_KEY_Z85_LEN + 1], curve_secret[VDP_KEY_Z85_LEN + 1];
    char sign_public[VDP_KEY_Z85_LEN + 1], sign_secret[VDP_SIGN_SECRET_Z85_LEN + 1];
    uint8_t pk[VDP_KEY_BYTES], sk[VDP_SIGN_SECRET_BYTES];
    int rc = VD_OK;
    if (zmq_curve_keypair(curve_public, curve_secret) != 0) {
        vdp_errorf(err, err_size, VD_OK, "libzmq was built without CURVE support");
        rc = VD_EINTERNAL;
    } else {
        crypto_sign_keypair(pk, sk);
        zmq_z85_encode(sign_public, pk, sizeof pk);
        zmq_z85_encode(sign_secret, sk, sizeof sk);
        const char *values[F_COUNT] = {
            [F_ORG] = org,
            [F_NAME] = name,
            [F_ROLE] = vdp_role_name(role),
            [F_JUR] = jurisdictions,
            [F_LABEL] = label,
            [F_CURVE_PUBLIC] = curve_public,
            [F_SIGN_PUBLIC] = sign_public,
            [F_STATUS] = "active",
            [F_CURVE_SECRET] = curve_secret,
            [F_SIGN_SECRET] = sign_secret,
        };
        if (!s_fill(out, values, true, err, err_size))
            rc = VD_EINVAL;
    }
    sodium_memzero(curve_secret, sizeof curve_secret);
    sodium_memzero(sign_secret, sizeof sign_secret);
    sodium_memzero(sk, sizeof sk);
    if (rc != VD_OK)
        vdp_secret_wipe(out);
    return rc;
}

int
vdp_agency_curve_key(const vdp_agency_t *agency, uint8_t out[VDP_KEY_BYTES])
{
    if (!agency || !out)
        return VD_EINVAL;
    return s_z85_decode(agency->curve_public, strnlen(agency->curve_public, VDP_KEY_Z85_LEN + 1),
                        VDP_KEY_BYTES, out)
               ? VD_OK
               : VD_EINVAL;
}

int
vdp_agency_sign_key(const vdp_agency_t *agency, uint8_t out[VDP_KEY_BYTES])
{
    if (!agency || !out)
        return VD_EINVAL;
    return s_z85_decode(agency->sign_public, strnlen(agency->sign_public, VDP_KEY_Z85_LEN + 1),
                        VDP_KEY_BYTES, out)
               ? VD_OK
               : VD_EINVAL;
}

int
vdp_secret_curve_keys(const vdp_secret_t *secret,
                      uint8_t public_key[VDP_KEY_BYTES],
                      uint8_t secret_key[VDP_KEY_BYTES])
{
    if (!secret || !public_key || !secret_key)
        return VD_EINVAL;
    if (vdp_agency_curve_key(&secret->agency, public_key) != VD_OK ||
        !s_z85_decode(secret->curve_secret, strnlen(secret->curve_secret, VDP_KEY_Z85_LEN + 1),
                      VDP_KEY_BYTES, secret_key)) {
        sodium_memzero(secret_key, VDP_KEY_BYTES);
        return VD_EINVAL;
    }
    return VD_OK;
}

int
vdp_secret_sign_key(const vdp_secret_t *secret, uint8_t out[VDP_SIGN_SECRET_BYTES])
{
    if (!secret || !out)
        return VD_EINVAL;
    if (!s_z85_decode(secret->sign_secret,
                      strnlen(secret->sign_secret, VDP_SIGN_SECRET_Z85_LEN + 1),
                      VDP_SIGN_SECRET_BYTES, out)) {
        sodium_memzero(out, VDP_SIGN_SECRET_BYTES);
        return VD_EINVAL;
    }
    return VD_OK;
}

void
vdp_secret_wipe(vdp_secret_t *secret)
{
    if (secret)
        sodium_memzero(secret, sizeof *secret);
}

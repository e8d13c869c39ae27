/*  vdb_policy: parses the policy language into compiled grants and evaluates them for one agency;
    keeps the policy's rate lines (per-role default rate limits) beside the grants.
    Invariants: a grant's topic is syntactically checked once, here, with its variables standing
    for one byte each; a policy without grants is refused (it would deny everything, silently),
    whatever rate lines it holds; any error refuses the whole policy, never a part of it.  */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vedetta.h"
#include "vdb_policy.h"
#include "vdp_ids.h"
#include "vdp_rate.h"
#include "vdp_topic.h"

#define S_ROLES     ((size_t)VDP_ROLE_BROKER + 1)
#define S_ACTIONS   2u
#define S_SCOPES    2u   // vdb_rate_scope_t
#define S_RATE_TEXT 64u  // a valid rate text has at most 29 bytes ("<10^12>/s+<10^12>")
#define S_MAX_PARTS 32u  // literal runs and variables in one grant's topic
#define S_MSG_SIZE  384u // one parse error, before "origin:line: " is prepended

//  Pieces of a segment: a literal run of [a-z0-9-], or a variable.
typedef enum { S_PART_TEXT, S_PART_ORG, S_PART_CODE, S_PART_J } s_part_kind_t;

typedef struct {
    uint8_t kind; // s_part_kind_t
    uint8_t off;  // S_PART_TEXT: offset of the run in the grant's text
    uint8_t len;  // S_PART_TEXT: its length
} s_part_t;

/*  S_SEG_TEXT is one literal run; S_SEG_BOUND mixes runs and at least one variable; '*' and '>'
    have no parts.  */
typedef enum { S_SEG_TEXT, S_SEG_BOUND, S_SEG_STAR, S_SEG_TAIL } s_seg_kind_t;

typedef struct {
    uint8_t kind;  // s_seg_kind_t
    uint8_t first; // index of its first part
    uint8_t count; // number of parts
} s_seg_t;

typedef struct {
    char text[VDP_MAX_TOPIC + 1]; // the topic as written, variables included
    s_seg_t seg[VDP_MAX_SEGMENTS];
    size_t seg_count;
    s_part_t part[S_MAX_PARTS];
    size_t part_count;
    bool tail;      // the last segment is '>'
    bool uses_j;    // expands once per jurisdiction of the grantee
    bool uses_code; // skipped for agencies whose code is reserved
    //  The length of the first segment when it is a literal ("alert": 5), else 0: the key of
    //  the list's index (s_head_t), and a two-compare pre-filter in the scan.
    size_t head_len;
    size_t fixed; // segments before a final '>', or all of them
    vdp_tlp_t ceiling;
    unsigned line;
} s_grant_t;

//  Grants of one list sharing a literal first segment, e.g. all "alert.*" grants.
typedef struct {
    const char *text; // borrowed from the first grant of the run
    size_t len;
    size_t first; // the run's grants: grant[first .. first + count)
    size_t count;
} s_head_t;

/*  The grants of one (role, action). After parsing they are sorted by first segment, grants
    whose first segment is a literal first, each run described by a head; the grants starting
    with '*', '>' or a variable come last (from `generic`) and are scanned for every topic.  */
typedef struct {
    s_grant_t *grant; // owned array
    size_t count;
    size_t cap;
    s_head_t *head; // owned array
    size_t head_count;
    size_t generic; // index of the first grant without a literal first segment
} s_list_t;

//  The rate line of one (role, scope): its limits, and its line number (0: the policy has none).
typedef struct {
    vdp_rate_t msgs;
    vdp_rate_t bytes;
    unsigned line;
} s_rates_t;

struct vdb_policy_t {
    s_list_t list[S_ROLES][S_ACTIONS]; // by role, then action
    size_t grant_count;                // rate lines are not grants and are not counted
    s_rates_t rates[S_ROLES][S_SCOPES];
};

//  The rate lines' second field, by vdb_rate_scope_t.
static const char *const s_scope_names[S_SCOPES] = { "rate-key", "rate-org" };

//  The segments of a concrete topic, split once per check.
typedef struct {
    const char *seg[VDP_MAX_SEGMENTS];
    size_t len[VDP_MAX_SEGMENTS];
    size_t count;
} s_topic_t;

static const struct {
    const char *name;
    s_part_kind_t kind;
} s_variables[] = { { "org", S_PART_ORG }, { "code", S_PART_CODE }, { "j", S_PART_J } };

__attribute__((format(printf, 3, 4))) static void
s_format(char *out, size_t size, const char *format, ...)
{
    if (!out || size == 0)
        return;
    va_list args;
    va_start(args, format);
    vsnprintf(out, size, format, args);
    va_end(args);
}

static bool
s_segment_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static bool
s_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

//  -------------------------------------------------------------------------------------------
//  Binding and evaluation

//  The code of an org id (vdp_ids.h): 1..VDP_MAX_SEGMENT of [a-z0-9-], no '-' at either end.
static bool
s_code_valid(const char *code, size_t len)
{
    if (len == 0 || len > VDP_MAX_SEGMENT || code[0] == '-' || code[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!s_segment_char(code[i]))
            return false;
    return true;
}

/*  Runs once per check, so it validates the org id knowing its role (vdp_org_role would search
    the kinds): "cnaipic", or "<role>:<code>". Jurisdictions are checked for length only: matching
    compares a value with one segment of a valid topic, which a value holding '.', '*' or any
    byte outside [a-z0-9-] never equals; binding to strings (vdb_policy_each_grant), where such a
    value would change the pattern's shape, checks them in full.  */
int
vdb_binding_init(vdb_binding_t *self, const vdp_agency_t *agency)
{
    assert(self);
    self->agency = agency;
    if (!agency || agency->role <= VDP_ROLE_NONE || agency->role > VDP_ROLE_BROKER)
        return VD_EINVAL;
    if (agency->jur_count == 0 || agency->jur_count > VDP_MAX_JUR)
        return VD_EINVAL;
    const char *org = agency->org;
    size_t len = strnlen(org, VDP_MAX_ORG + 1);
    if (len == 0 || len > VDP_MAX_ORG)
        return VD_EINVAL;
    memcpy(self->org, org, len + 1);
    self->org_len = len;
    //  The role decides which grants apply: it must be the one the org id names.
    if (agency->role == VDP_ROLE_CNAIPIC) {
        if (strcmp(org, "cnaipic") != 0)
            return VD_EINVAL;
        self->code = org;
        self->code_len = len;
    } else {
        const char *kind = vdp_role_name(agency->role);
        size_t kind_len = strlen(kind);
        if (len <= kind_len + 1 || memcmp(org, kind, kind_len) != 0 || org[kind_len] != ':')
            return VD_EINVAL;
        self->code = org + kind_len + 1;
        self->code_len = len - kind_len - 1;
        if (!s_code_valid(self->code, self->code_len))
            return VD_EINVAL;
        self->org[kind_len] = '-';
    }
    //  "all" names the regional broadcast (emergency.<j>.all): a Comune whose code were "all"
    //  would publish on it through emergency.$j.$code.
    self->code_bindable = strcmp(self->code, "all") != 0;
    for (size_t k = 0; k < agency->jur_count; k++) {
        const char *j = agency->jur[k];
        self->jur_len[k] = strnlen(j, VDP_MAX_SEGMENT + 1);
        //  "national" is CNAIPIC's: a COSC bound to it would publish bulletin.national.
        self->jur_bindable[k] = self->jur_len[k] > 0 && self->jur_len[k] <= VDP_MAX_SEGMENT &&
                                (agency->role == VDP_ROLE_CNAIPIC || strcmp(j, "national") != 0);
    }
    return VD_OK;
}

static void
s_part_value(const s_grant_t *grant,
             const s_part_t *part,
             const vdb_binding_t *binding,
             size_t jur,
             const char **value,
             size_t *len)
{
    switch (part->kind) {
    case S_PART_ORG:
        *value = binding->org;
        *len = binding->org_len;
        break;
    case S_PART_CODE:
        *value = binding->code;
        *len = binding->code_len;
        break;
    case S_PART_J:
        *value = binding->agency->jur[jur];
        *len = binding->jur_len[jur];
        break;
    default:
        *value = grant->text + part->off;
        *len = part->len;
        break;
    }
}

static bool
s_topic_split(const char *topic, s_topic_t *out)
{
    out->count = 0;
    const char *s = topic;
    for (;;) {
        if (out->count == VDP_MAX_SEGMENTS)
            return false;
        size_t len = 0;
        for (char c = s[0]; c != '.' && c != '\0'; c = s[++len])
            ;
        if (len == 0 || len > VDP_MAX_SEGMENT)
            return false;
        out->seg[out->count] = s;
        out->len[out->count] = len;
        out->count++;
        if (s[len] == '\0')
            return true;
        s += len + 1;
    }
}

static bool
s_segment_match(const s_grant_t *grant,
                const s_seg_t *seg,
                const vdb_binding_t *binding,
                size_t jur,
                const char *text,
                size_t len)
{
    if (seg->kind == S_SEG_STAR)
        return true;
    if (seg->kind == S_SEG_TEXT) {
        //  the common case: a literal segment ("alert"); lengths first, bytes only if equal
        const s_part_t *part = &grant->part[seg->first];
        return part->len == len && memcmp(grant->text + part->off, text, len) == 0;
    }
    size_t pos = 0;
    for (size_t k = 0; k < seg->count; k++) {
        const char *value;
        size_t value_len;
        s_part_value(grant, &grant->part[seg->first + k], binding, jur, &value, &value_len);
        if (value_len > len - pos || memcmp(text + pos, value, value_len) != 0)
            return false;
        pos += value_len;
    }
    return pos == len;
}

//  Segment by segment; the caller has checked the depth already (s_may_match).
static bool
s_grant_match(const s_grant_t *grant, const vdb_binding_t *binding, size_t jur, const s_topic_t *t)
{
    for (size_t k = 0; k < grant->fixed; k++)
        if (!s_segment_match(grant, &grant->seg[k], binding, jur, t->seg[k], t->len[k]))
            return false;
    return true;
}

//  The cheap part of matching, without the binding: depth and the first literal segment.
static bool
s_may_match(const s_grant_t *grant, const s_topic_t *t)
{
    //  '>' needs at least one more segment than those before it; otherwise the depth is exact.
    if (grant->tail ? t->count <= grant->fixed : t->count != grant->fixed)
        return false;
    return grant->head_len == 0 || (grant->head_len == t->len[0] && grant->text[0] == t->seg[0][0]);
}

static const s_list_t *
s_list(const vdb_policy_t *self, const vdb_binding_t *binding, vdb_action_t action)
{
    assert(action == VDB_ACTION_PUBLISH || action == VDB_ACTION_SUBSCRIBE);
    vdp_role_t role = binding->agency->role;
    assert(role > VDP_ROLE_NONE && (size_t)role < S_ROLES);
    return &self->list[role][action];
}

//  Raises *best with the grants in [from, to) that match.
static void
s_scan(const s_list_t *list,
       size_t from,
       size_t to,
       const vdb_binding_t *binding,
       const s_topic_t *t,
       vdp_tlp_t *best)
{
    size_t jur_count = binding->agency->jur_count;
    for (size_t i = from; i < to && *best < VDP_TLP_RED; i++) {
        const s_grant_t *grant = &list->grant[i];
        if (grant->ceiling <= *best || !s_may_match(grant, t) ||
            (grant->uses_code && !binding->code_bindable))
            continue; // cannot raise the answer, or does not apply
        if (!grant->uses_j) {
            if (s_grant_match(grant, binding, 0, t))
                *best = grant->ceiling;
            continue;
        }
        for (size_t k = 0; k < jur_count; k++) {
            if (binding->jur_bindable[k] && s_grant_match(grant, binding, k, t)) {
                *best = grant->ceiling;
                break;
            }
        }
    }
}

vdp_tlp_t
vdb_policy_ceiling(const vdb_policy_t *self,
                   const vdb_binding_t *binding,
                   vdb_action_t action,
                   const char *topic)
{
    assert(self && binding && topic);
    s_topic_t t;
    if (!s_topic_split(topic, &t))
        return VDP_TLP_NONE;
    const s_list_t *list = s_list(self, binding, action);
    vdp_tlp_t best = VDP_TLP_NONE;
    //  A handful of heads per list ("alert", "report", ...): a linear look is the fast one.
    for (size_t h = 0; h < list->head_count; h++) {
        const s_head_t *head = &list->head[h];
        if (head->len == t.len[0] && memcmp(head->text, t.seg[0], head->len) == 0) {
            s_scan(list, head->first, head->first + head->count, binding, &t, &best);
            break;
        }
    }
    s_scan(list, list->generic, list->count, binding, &t, &best);
    return best;
}

//  Writes the grant with its variables bound; false if the result is not a valid pattern.
static bool
s_grant_bind(const s_grant_t *grant,
             const vdb_binding_t *binding,
             size_t jur,
             char out[VDP_MAX_TOPIC + 1])
{
    size_t pos = 0;
    for (size_t k = 0; k < grant->seg_count; k++) {
        const s_seg_t *seg = &grant->seg[k];
        if (k > 0) {
            if (pos >= VDP_MAX_TOPIC)
                return false;
            out[pos++] = '.';
        }
        if (seg->kind == S_SEG_STAR || seg->kind == S_SEG_TAIL) {
            if (pos >= VDP_MAX_TOPIC)
                return false;
            out[pos++] = seg->kind == S_SEG_STAR ? '*' : '>';
            continue;
        }
        for (size_t p = 0; p < seg->count; p++) {
            const char *value;
            size_t len;
            s_part_value(grant, &grant->part[seg->first + p], binding, jur, &value, &len);
            if (len > VDP_MAX_TOPIC - pos)
                return false;
            memcpy(out + pos, value, len);
            pos += len;
        }
    }
    out[pos] = '\0';
    return vdp_pattern_valid(out);
}

bool
vdb_policy_each_grant(const vdb_policy_t *self,
                      const vdb_binding_t *binding,
                      vdb_action_t action,
                      vdb_policy_grant_fn *fn,
                      void *arg)
{
    assert(self && binding && fn);
    const s_list_t *list = s_list(self, binding, action);
    char pattern[VDP_MAX_TOPIC + 1];
    for (size_t i = 0; i < list->count; i++) {
        const s_grant_t *grant = &list->grant[i];
        if (grant->uses_code && !binding->code_bindable)
            continue;
        size_t values = grant->uses_j ? binding->agency->jur_count : 1;
        for (size_t k = 0; k < values; k++) {
            //  Here a value becomes pattern text: its full syntax matters (vdb_binding_init).
            if (grant->uses_j &&
                (!binding->jur_bindable[k] || !vdp_jurisdiction_valid(binding->agency->jur[k])))
                continue;
            if (s_grant_bind(grant, binding, k, pattern) &&
                fn(pattern, grant->ceiling, grant->line, arg))
                return true;
        }
    }
    return false;
}

static bool
s_contains_fn(const char *pattern, vdp_tlp_t ceiling, unsigned line, void *arg)
{
    (void)ceiling;
    (void)line;
    return vdp_pattern_contains(pattern, (const char *)arg);
}

bool
vdb_policy_contains(const vdb_policy_t *self,
                    const vdb_binding_t *binding,
                    vdb_action_t action,
                    const char *pattern)
{
    assert(pattern);
    //  Subscriptions are rare next to deliveries: building each bound pattern here is fine.
    return vdb_policy_each_grant(self, binding, action, s_contains_fn, (void *)pattern);
}

//  -------------------------------------------------------------------------------------------
//  Parsing

static int
s_compile_segment(s_grant_t *grant, s_seg_t *seg, size_t off, size_t len, char *msg, size_t size)
{
    const char *text = grant->text;
    seg->kind = S_SEG_TEXT;
    seg->first = (uint8_t)grant->part_count;
    size_t bound_len = 0; // the segment's length, each variable counted as one byte
    size_t i = 0;
    while (i < len) {
        if (grant->part_count == S_MAX_PARTS) {
            s_format(msg, size, "too many variables in '%s'", text);
            return VD_ECONFIG;
        }
        s_part_t *part = &grant->part[grant->part_count];
        char c = text[off + i];
        if (s_segment_char(c)) {
            size_t start = i;
            while (i < len && s_segment_char(text[off + i]))
                i++;
            part->kind = S_PART_TEXT;
            part->off = (uint8_t)(off + start);
            part->len = (uint8_t)(i - start);
            bound_len += i - start;
        } else if (c == '$') {
            //  $name takes the longest run of letters; ${name} delimits it ("${j}x").
            size_t name = i + 1;
            size_t name_len = 0;
            size_t used;
            if (i + 1 < len && text[off + i + 1] == '{') {
                name = i + 2;
                while (name + name_len < len && text[off + name + name_len] != '}')
                    name_len++;
                if (name + name_len == len) {
                    s_format(msg, size, "unterminated '${' in '%s'", text);
                    return VD_ECONFIG;
                }
                used = name_len + 3;
            } else {
                while (name + name_len < len && text[off + name + name_len] >= 'a' &&
                       text[off + name + name_len] <= 'z')
                    name_len++;
                used = name_len + 1;
            }
            if (name_len == 0) {
                s_format(msg, size, "'$' without a variable name in '%s'", text);
                return VD_ECONFIG;
            }
            bool known = false;
            for (size_t v = 0; v < sizeof s_variables / sizeof s_variables[0]; v++) {
                if (strlen(s_variables[v].name) == name_len &&
                    memcmp(s_variables[v].name, text + off + name, name_len) == 0) {
                    part->kind = (uint8_t)s_variables[v].kind;
                    known = true;
                }
            }
            if (!known) {
                s_format(msg, size, "unknown variable '$%.*s' in '%s' ($org, $code, $j)",
                         (int)name_len, text + off + name, text);
                return VD_ECONFIG;
            }
            grant->uses_j |= part->kind == S_PART_J;
            grant->uses_code |= part->kind == S_PART_CODE;
            seg->kind = S_SEG_BOUND;
            bound_len++;
            i += used;
        } else if (c == '*' || c == '>') {
            s_format(msg, size, "'*' and '>' must be whole segments in '%s'", text);
            return VD_ECONFIG;
        } else {
            s_format(msg, size, "invalid character '%c' in '%s'", c, text);
            return VD_ECONFIG;
        }
        grant->part_count++;
    }
    seg->count = (uint8_t)(grant->part_count - seg->first);
    if (bound_len > VDP_MAX_SEGMENT) {
        s_format(msg, size, "segment longer than %u bytes in '%s'", VDP_MAX_SEGMENT, text);
        return VD_ECONFIG;
    }
    return VD_OK;
}

static int
s_compile(s_grant_t *grant, const char *token, size_t len, char *msg, size_t size)
{
    if (len > VDP_MAX_TOPIC) {
        s_format(msg, size, "topic pattern longer than %u bytes", VDP_MAX_TOPIC);
        return VD_ECONFIG;
    }
    memcpy(grant->text, token, len);
    grant->text[len] = '\0';
    const char *text = grant->text;
    size_t off = 0;
    for (;;) {
        size_t seg_len = strcspn(text + off, ".");
        if (seg_len == 0) {
            s_format(msg, size, "empty segment in '%s'", text);
            return VD_ECONFIG;
        }
        if (grant->seg_count == VDP_MAX_SEGMENTS) {
            s_format(msg, size, "more than %u segments in '%s'", VDP_MAX_SEGMENTS, text);
            return VD_ECONFIG;
        }
        s_seg_t *seg = &grant->seg[grant->seg_count++];
        bool last = text[off + seg_len] == '\0';
        if (seg_len == 1 && text[off] == '*')
            seg->kind = S_SEG_STAR;
        else if (seg_len == 1 && text[off] == '>') {
            if (!last) {
                s_format(msg, size, "'>' must be the last segment in '%s'", text);
                return VD_ECONFIG;
            }
            seg->kind = S_SEG_TAIL;
            grant->tail = true;
        } else {
            int rc = s_compile_segment(grant, seg, off, seg_len, msg, size);
            if (rc != VD_OK)
                return rc;
        }
        if (last)
            break;
        off += seg_len + 1;
    }
    //  Backstop: with every variable standing for one byte, the topic must be a valid pattern.
    char probe[VDP_MAX_TOPIC + 1];
    size_t pos = 0;
    for (size_t k = 0; k < grant->seg_count; k++) {
        const s_seg_t *seg = &grant->seg[k];
        if (k > 0)
            probe[pos++] = '.';
        if (seg->kind == S_SEG_STAR || seg->kind == S_SEG_TAIL)
            probe[pos++] = seg->kind == S_SEG_STAR ? '*' : '>';
        for (size_t p = 0; p < seg->count; p++) {
            const s_part_t *part = &grant->part[seg->first + p];
            size_t n = part->kind == S_PART_TEXT ? part->len : 1;
            memset(probe + pos, 'x', n);
            pos += n;
        }
    }
    //  Never longer than the text: a variable takes at least two bytes there ("$j").
    assert(pos <= len);
    probe[pos] = '\0';
    grant->fixed = grant->tail ? grant->seg_count - 1 : grant->seg_count;
    grant->head_len = grant->seg_count > 0 && grant->seg[0].kind == S_SEG_TEXT
                          ? grant->part[grant->seg[0].first].len
                          : 0;
    if (!vdp_pattern_valid(probe)) {
        s_format(msg, size, "invalid topic pattern '%s'", text);
        return VD_ECONFIG;
    }
    return VD_OK;
}

static int
s_append(vdb_policy_t *self, vdp_role_t role, vdb_action_t action, const s_grant_t *grant)
{
    s_list_t *list = &self->list[role][action];
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 16;
        s_grant_t *grown = realloc(list->grant, cap * sizeof *grown);
        if (!grown)
            return VD_ENOMEM;
        list->grant = grown;
        list->cap = cap;
    }
    list->grant[list->count++] = *grant;
    self->grant_count++;
    return VD_OK;
}

//  Literal first segments first, in byte order (then by line, so the order is stable);
//  grants starting with '*', '>' or a variable last, by line.
static int
s_grant_order(const void *left, const void *right)
{
    const s_grant_t *a = left;
    const s_grant_t *b = right;
    if ((a->head_len == 0) != (b->head_len == 0))
        return a->head_len == 0 ? 1 : -1;
    if (a->head_len != 0) {
        size_t len = a->head_len < b->head_len ? a->head_len : b->head_len;
        int order = memcmp(a->text, b->text, len);
        if (order != 0)
            return order;
        if (a->head_len != b->head_len)
            return a->head_len < b->head_len ? -1 : 1;
    }
    return a->line < b->line ? -1 : a->line > b->line;
}

//  Sorts a list's grants and describes its runs of equal first segments.
static int
s_index(s_list_t *list)
{
    if (list->count == 0)
        return VD_OK;
    qsort(list->grant, list->count, sizeof list->grant[0], s_grant_order);
    list->head = calloc(list->count, sizeof list->head[0]);
    if (!list->head)
        return VD_ENOMEM;
    list->generic = list->count;
    for (size_t i = 0; i < list->count; i++) {
        const s_grant_t *grant = &list->grant[i];
        if (grant->head_len == 0) {
            list->generic = i;
            break;
        }
        s_head_t *last = list->head_count ? &list->head[list->head_count - 1] : NULL;
        if (last && last->len == grant->head_len && memcmp(last->text, grant->text, last->len) == 0)
            last->count++;
        else
            list->head[list->head_count++] =
                (s_head_t){ .text = grant->text, .len = grant->head_len, .first = i, .count = 1 };
    }
    return VD_OK;
}

//  Copies a token to a NUL-terminated buffer; false if it does not fit.
static bool
s_token(const char *token, size_t len, char *out, size_t size)
{
    if (len >= size)
        return false;
    memcpy(out, token, len);
    out[len] = '\0';
    return true;
}

//  The scope a rate line's second field names, or -1 if it is not "rate-key" or "rate-org".
static int
s_rate_scope(const char *field, size_t len)
{
    for (size_t k = 0; k < S_SCOPES; k++)
        if (strlen(s_scope_names[k]) == len && memcmp(s_scope_names[k], field, len) == 0)
            return (int)k;
    return -1;
}

/*  A rate line, "<role> rate-key|rate-org <messages> <bytes>", its role already read. Each
    (role, scope) may appear once: a second line would silently override the first, and a
    reader of the file could take either for the one in force.  */
static int
s_parse_rates(vdb_policy_t *self,
              vdp_role_t role,
              vdb_rate_scope_t scope,
              const char *const field[4],
              const size_t field_len[4],
              unsigned number,
              char *msg)
{
    s_rates_t *rates = &self->rates[role][scope];
    if (rates->line != 0) {
        s_format(msg, S_MSG_SIZE, "a second '%s %s' line (the first is line %u)",
                 vdp_role_name(role), s_scope_names[scope], rates->line);
        return VD_ECONFIG;
    }
    static const char *const what[2] = { "messages", "bytes" };
    vdp_rate_t *out[2] = { &rates->msgs, &rates->bytes };
    for (size_t k = 0; k < 2; k++) {
        const char *value = field[2 + k];
        size_t len = field_len[2 + k];
        int shown = len > 64 ? 64 : (int)len;
        char text[S_RATE_TEXT];
        char why[128];
        if (!s_token(value, len, text, sizeof text)) {
            s_format(msg, S_MSG_SIZE, "%s %s '%.*s': too long for a rate", s_scope_names[scope],
                     what[k], shown, value);
            return VD_ECONFIG;
        }
        if (vdp_rate_parse(text, out[k], why, sizeof why) != VD_OK) {
            s_format(msg, S_MSG_SIZE, "%s %s '%s': %s", s_scope_names[scope], what[k], text, why);
            return VD_ECONFIG;
        }
    }
    rates->line = number;
    return VD_OK;
}

static int
s_parse_line(vdb_policy_t *self, const char *line, size_t len, unsigned number, char *msg)
{
    const char *hash = memchr(line, '#', len);
    if (hash)
        len = (size_t)(hash - line); // comments may hold any text, even UTF-8
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (!s_space((char)c) && (c < 0x21 || c > 0x7e)) {
            s_format(msg, S_MSG_SIZE, "invalid byte 0x%02x", c);
            return VD_ECONFIG;
        }
    }
    const char *field[4];
    size_t field_len[4];
    size_t fields = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && s_space(line[i]))
            i++;
        if (i == len)
            break;
        size_t start = i;
        while (i < len && !s_space(line[i]))
            i++;
        if (fields < 4) {
            field[fields] = line + start;
            field_len[fields] = i - start;
        }
        fields++;
    }
    if (fields == 0)
        return VD_OK;
    //  A rate line has four fields too; when it has not, name its own shape.
    int scope = fields >= 2 ? s_rate_scope(field[1], field_len[1]) : -1;
    if (fields != 4 && scope >= 0) {
        s_format(msg, S_MSG_SIZE, "expected 4 fields 'role %s messages bytes', found %zu",
                 s_scope_names[scope], fields);
        return VD_ECONFIG;
    }
    if (fields != 4) {
        s_format(msg, S_MSG_SIZE, "expected 4 fields 'role action topic ceiling', found %zu",
                 fields);
        return VD_ECONFIG;
    }
    //  Names are short; a field too long for its buffer is simply unknown.
    char name[VDP_MAX_SHORT + 1];
    int shown[4];
    for (size_t f = 0; f < 4; f++)
        shown[f] = field_len[f] > 64 ? 64 : (int)field_len[f];

    vdp_role_t role = VDP_ROLE_NONE;
    if (s_token(field[0], field_len[0], name, sizeof name))
        role = vdp_role_from_name(name);
    if (role <= VDP_ROLE_NONE || (size_t)role >= S_ROLES) {
        s_format(msg, S_MSG_SIZE, "unknown role '%.*s' (comune, cosc, anci, cnaipic, broker)",
                 shown[0], field[0]);
        return VD_ECONFIG;
    }
    if (scope >= 0)
        return s_parse_rates(self, role, (vdb_rate_scope_t)scope, field, field_len, number, msg);
    vdb_action_t action;
    if (field_len[1] == 7 && memcmp(field[1], "publish", 7) == 0)
        action = VDB_ACTION_PUBLISH;
    else if (field_len[1] == 9 && memcmp(field[1], "subscribe", 9) == 0)
        action = VDB_ACTION_SUBSCRIBE;
    else {
        s_format(msg, S_MSG_SIZE, "unknown action '%.*s' (publish, subscribe, rate-key, rate-org)",
                 shown[1], field[1]);
        return VD_ECONFIG;
    }
    s_grant_t grant;
    memset(&grant, 0, sizeof grant);
    int rc = s_compile(&grant, field[2], field_len[2], msg, S_MSG_SIZE);
    if (rc != VD_OK)
        return rc;
    grant.ceiling = VDP_TLP_NONE;
    if (s_token(field[3], field_len[3], name, sizeof name))
        grant.ceiling = vdp_tlp_from_name(name);
    if (grant.ceiling < VDP_TLP_CLEAR || grant.ceiling > VDP_TLP_RED) {
        s_format(msg, S_MSG_SIZE, "unknown TLP '%.*s' (clear, green, amber, amber+strict, red)",
                 shown[3], field[3]);
        return VD_ECONFIG;
    }
    grant.line = number;
    if (self->grant_count == VDB_POLICY_MAX_GRANTS) {
        s_format(msg, S_MSG_SIZE, "more than %u grants", VDB_POLICY_MAX_GRANTS);
        return VD_ELIMIT;
    }
    rc = s_append(self, role, action, &grant);
    if (rc != VD_OK)
        s_format(msg, S_MSG_SIZE, "out of memory");
    return rc;
}

vdb_policy_t *
vdb_policy_parse(const char *text, const char *origin, char *err, size_t err_size)
{
    s_format(err, err_size, "%s", "");
    if (!origin)
        origin = "policy";
    if (!text) {
        s_format(err, err_size, "%s: no policy text", origin);
        return NULL;
    }
    vdb_policy_t *self = calloc(1, sizeof *self);
    if (!self) {
        s_format(err, err_size, "%s: out of memory", origin);
        return NULL;
    }
    char msg[S_MSG_SIZE];
    unsigned number = 0;
    const char *line = text;
    while (*line) {
        number++;
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (s_parse_line(self, line, len, number, msg) != VD_OK) {
            s_format(err, err_size, "%s:%u: %s", origin, number, msg);
            vdb_policy_destroy(&self);
            return NULL;
        }
        line += eol ? len + 1 : len;
    }
    if (self->grant_count == 0) {
        s_format(err, err_size, "%s: no grants (a policy must grant something)", origin);
        vdb_policy_destroy(&self);
        return NULL;
    }
    for (size_t r = 0; r < S_ROLES; r++) {
        for (size_t a = 0; a < S_ACTIONS; a++) {
            if (s_index(&self->list[r][a]) != VD_OK) {
                s_format(err, err_size, "%s: out of memory", origin);
                vdb_policy_destroy(&self);
                return NULL;
            }
        }
    }
    return self;
}

vdb_policy_t *
vdb_policy_load(const char *path, char *err, size_t err_size)
{
    s_format(err, err_size, "%s", "");
    if (!path) {
        s_format(err, err_size, "policy: no path");
        return NULL;
    }
    FILE *file = fopen(path, "rb");
    if (!file) {
        s_format(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    vdb_policy_t *self = NULL;
    //  One byte more than the cap tells "at the cap" from "over it"; one more for the NUL.
    char *text = malloc(VDB_POLICY_MAX_BYTES + 2);
    if (!text) {
        s_format(err, err_size, "%s: out of memory", path);
        goto err_close_file;
    }
    size_t size = fread(text, 1, VDB_POLICY_MAX_BYTES + 1, file);
    if (ferror(file)) {
        s_format(err, err_size, "%s: cannot read", path);
        goto err_free_text;
    }
    if (size > VDB_POLICY_MAX_BYTES) {
        s_format(err, err_size, "%s: larger than %u bytes", path, VDB_POLICY_MAX_BYTES);
        goto err_free_text;
    }
    //  A NUL would silently end the text early: refuse it, with its line.
    const char *nul = memchr(text, '\0', size);
    if (nul) {
        unsigned number = 1;
        for (const char *p = text; p < nul; p++)
            number += *p == '\n';
        s_format(err, err_size, "%s:%u: invalid byte 0x00", path, number);
        goto err_free_text;
    }
    text[size] = '\0';
    self = vdb_policy_parse(text, path, err, err_size);
err_free_text:
    free(text);
err_close_file:
    fclose(file);
    return self;
}

void
vdb_policy_destroy(vdb_policy_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vdb_policy_t *self = *self_p;
    for (size_t r = 0; r < S_ROLES; r++)
        for (size_t a = 0; a < S_ACTIONS; a++) {
            free(self->list[r][a].head);
            free(self->list[r][a].grant);
        }
    free(self);
    *self_p = NULL;
}

size_t
vdb_policy_grant_count(const vdb_policy_t *self)
{
    return self ? self->grant_count : 0;
}

void
vdb_policy_rates(const vdb_policy_t *self,
                 vdp_role_t role,
                 vdb_rate_scope_t scope,
                 vdp_rate_t *msgs,
                 vdp_rate_t *bytes)
{
    assert(msgs && bytes);
    assert(scope == VDB_RATE_KEY || scope == VDB_RATE_ORG);
    *msgs = scope == VDB_RATE_ORG ? VDB_RATE_ORG_MSGS : VDB_RATE_KEY_MSGS;
    *bytes = scope == VDB_RATE_ORG ? VDB_RATE_ORG_BYTES : VDB_RATE_KEY_BYTES;
    //  No policy, or a role no agency can hold: the defaults, as the interface promises.
    if (!self || role <= VDP_ROLE_NONE || (size_t)role >= S_ROLES)
        return;
    const s_rates_t *rates = &self->rates[role][scope];
    if (rates->line != 0) {
        *msgs = rates->msgs;
        *bytes = rates->bytes;
    }
}

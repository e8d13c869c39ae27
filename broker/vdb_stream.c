/*  vdb_stream: see vdb_stream.h.  */
#include <assert.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "vdb_acl.h"
#include "vdb_stream.h"
#include "vdp_topic.h"
#include "vedetta.h"

static void
s_str_destroy(void **item_p)
{
    free(*item_p);
    *item_p = NULL;
}

vdb_stream_t *
vdb_stream_new(void *session, vdb_stream_kind_t kind, const char *durable)
{
    vdb_stream_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->session = session;
    self->kind = kind;
    self->live = true;
    snprintf(self->durable, sizeof self->durable, "%s", durable ? durable : "");
    self->patterns = zlistx_new();
    if (!self->patterns) {
        free(self);
        return NULL;
    }
    zlistx_set_destructor(self->patterns, s_str_destroy);
    return self;
}

void
vdb_stream_destroy(vdb_stream_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zlistx_destroy(&(*self_p)->patterns);
    free(*self_p);
    *self_p = NULL;
}

bool
vdb_stream_has_pattern(vdb_stream_t *self, const char *pattern)
{
    for (const char *p = zlistx_first(self->patterns); p; p = zlistx_next(self->patterns))
        if (strcmp(p, pattern) == 0)
            return true;
    return false;
}

int
vdb_stream_add_pattern(vdb_stream_t *self, const char *pattern)
{
    char *copy = strdup(pattern);
    if (!copy || !zlistx_add_end(self->patterns, copy)) {
        free(copy);
        return VD_ENOMEM;
    }
    return VD_OK;
}

int
vdb_stream_remove_pattern(vdb_stream_t *self, const char *pattern)
{
    for (const char *p = zlistx_first(self->patterns); p; p = zlistx_next(self->patterns))
        if (strcmp(p, pattern) == 0) {
            zlistx_delete(self->patterns, zlistx_cursor(self->patterns));
            return VD_OK;
        }
    return VD_ENOTFOUND;
}

size_t
vdb_stream_pattern_count(vdb_stream_t *self)
{
    return zlistx_size(self->patterns);
}

//  Copies a topic or pattern (at most VDP_MAX_TOPIC bytes) into out[VDP_MAX_TOPIC + 1].
static void
s_copy_topic(char *out, const char *topic)
{
    size_t len = strnlen(topic, VDP_MAX_TOPIC);
    memcpy(out, topic, len);
    out[len] = '\0';
}

//  The first of the stream's patterns matching `topic`, copied into `pattern`.
static bool
s_match_topic(vdb_stream_t *self, const char *topic, char *pattern)
{
    for (const char *p = zlistx_first(self->patterns); p; p = zlistx_next(self->patterns))
        if (vdp_pattern_match(p, topic)) {
            s_copy_topic(pattern, p);
            return true;
        }
    return false;
}

//  Whether `org` is one of the ','-joined `list`.
static bool
s_listed(const char *list, const char *org)
{
    size_t len = strlen(org);
    for (const char *at = list; at && *at;) {
        const char *end = strchr(at, ',');
        size_t n = end ? (size_t)(end - at) : strlen(at);
        if (n == len && memcmp(at, org, len) == 0)
            return true;
        at = end ? end + 1 : NULL;
    }
    return false;
}

bool
vdb_stream_match(vdb_stream_t *self,
                 const vdp_agency_t *agency,
                 const vdb_store_msg_t *msg,
                 char *topic,
                 char *pattern)
{
    assert(self && agency && msg && topic && pattern);
    if (strcmp(msg->topic, "inbox") != 0) {
        s_copy_topic(topic, msg->topic);
        return s_match_topic(self, topic, pattern);
    }
    if (!s_listed(msg->to, agency->org))
        return false; // directed to others
    char inbox[VDP_MAX_JUR][VDP_MAX_TOPIC + 1];
    size_t count = vdb_acl_inbox_topics(agency, inbox, VDP_MAX_JUR);
    for (size_t i = 0; i < count; i++)
        if (s_match_topic(self, inbox[i], pattern)) {
            s_copy_topic(topic, inbox[i]);
            return true;
        }
    return false;
}

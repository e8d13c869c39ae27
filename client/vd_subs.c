/*  vd_subs: see vd_subs.h.  */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vd_subs.h"

void
vd_subs_release(vd_subs_t *self)
{
    free(self->items);
    self->items = NULL;
    self->count = self->cap = 0;
}

vd_sub_t *
vd_subs_find(vd_subs_t *self, const char *pattern, const char *durable)
{
    const char *name = durable ? durable : "";
    for (size_t i = 0; i < self->count; i++) {
        vd_sub_t *sub = &self->items[i];
        if (strcmp(sub->pattern, pattern) == 0 && strcmp(sub->durable, name) == 0)
            return sub;
    }
    return NULL;
}

vd_sub_t *
vd_subs_by_ref(vd_subs_t *self, uint64_t ref)
{
    for (size_t i = 0; ref != 0 && i < self->count; i++)
        if (self->items[i].ref == ref)
            return &self->items[i];
    return NULL;
}

vd_sub_t *
vd_subs_add(
    vd_subs_t *self, const char *pattern, const char *durable, uint64_t from_seq, int64_t since)
{
    if (self->count == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 8;
        vd_sub_t *items = realloc(self->items, cap * sizeof *items);
        if (!items)
            return NULL;
        self->items = items;
        self->cap = cap;
    }
    vd_sub_t *sub = &self->items[self->count++];
    memset(sub, 0, sizeof *sub);
    snprintf(sub->pattern, sizeof sub->pattern, "%s", pattern);
    snprintf(sub->durable, sizeof sub->durable, "%s", durable ? durable : "");
    sub->from_seq = from_seq;
    sub->since = since;
    return sub;
}

void
vd_subs_remove(vd_subs_t *self, vd_sub_t *sub)
{
    size_t index = (size_t)(sub - self->items);
    if (index >= self->count)
        return;
    memmove(&self->items[index], &self->items[index + 1],
            (self->count - index - 1) * sizeof *self->items);
    self->count--;
}

bool
vd_sub_has_history(const vd_sub_t *sub)
{
    return sub->durable[0] || sub->from_seq || sub->since;
}

void
vd_sub_resume(const vd_sub_t *sub, uint64_t *from_seq, int64_t *since)
{
    *from_seq = 0;
    *since = 0;
    if (sub->durable[0] || !vd_sub_has_history(sub))
        return;
    if (!sub->started) {
        *from_seq = sub->from_seq;
        *since = sub->since;
        return;
    }
    uint64_t last = sub->last_seq > sub->after ? sub->last_seq : sub->after;
    *from_seq = last + 1;
}

bool
vd_subs_accept(vd_subs_t *self, const char *pattern, const char *durable, uint64_t seq)
{
    if (durable && durable[0]) {
        //  One stream per name, whatever pattern of it matched: seqs rise along the stream.
        uint64_t last = 0;
        for (size_t i = 0; i < self->count; i++)
            if (strcmp(self->items[i].durable, durable) == 0 && self->items[i].last_seq > last)
                last = self->items[i].last_seq;
        if (seq <= last)
            return false;
        for (size_t i = 0; i < self->count; i++)
            if (strcmp(self->items[i].durable, durable) == 0)
                self->items[i].last_seq = seq;
        return true;
    }
    vd_sub_t *sub = vd_subs_find(self, pattern, NULL);
    if (!sub)
        return true; // a subscription given up meanwhile: nothing to compare with
    if (vd_sub_has_history(sub) && seq <= sub->last_seq)
        return false;
    if (seq > sub->last_seq)
        sub->last_seq = seq;
    return true;
}

void
vd_subs_acked(vd_subs_t *self, const char *durable, uint64_t seq)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp(self->items[i].durable, durable) == 0 && seq > self->items[i].acked)
            self->items[i].acked = seq;
}

bool
vd_subs_was_acked(const vd_subs_t *self, const char *durable, uint64_t seq)
{
    for (size_t i = 0; durable && durable[0] && i < self->count; i++)
        if (strcmp(self->items[i].durable, durable) == 0 && seq <= self->items[i].acked)
            return true;
    return false;
}

/*  vdp_topic: validity, matching and containment of topics and patterns, one segment at a time.
    Invariant: nothing here compares byte prefixes across a segment boundary; every comparison is
    of whole segments (length and bytes), so "b429" and "b4290" are simply different segments.  */
#include <string.h>

#include "vdp_limits.h"
#include "vdp_topic.h"

static bool
s_segment_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

//  Length of the segment starting at s (up to the next '.' or the end).
static size_t
s_segment_len(const char *s)
{
    size_t len = 0;
    while (s[len] != '.' && s[len] != '\0')
        len++;
    return len;
}

static bool
s_is_star(const char *seg, size_t len)
{
    return len == 1 && seg[0] == '*';
}

static bool
s_is_tail(const char *seg, size_t len)
{
    return len == 1 && seg[0] == '>';
}

static bool
s_valid(const char *s, bool wildcards)
{
    if (!s)
        return false;
    //  strnlen bounds the walk below: a string over the cap is rejected before we scan it.
    size_t total = strnlen(s, VDP_MAX_TOPIC + 1);
    if (total == 0 || total > VDP_MAX_TOPIC)
        return false;
    size_t segments = 0;
    const char *seg = s;
    for (;;) {
        size_t len = s_segment_len(seg);
        if (len == 0 || len > VDP_MAX_SEGMENT || ++segments > VDP_MAX_SEGMENTS)
            return false;
        bool last = seg[len] == '\0';
        if (wildcards && s_is_star(seg, len)) {
            //  '*' stands for exactly one segment, anywhere
        } else if (wildcards && s_is_tail(seg, len)) {
            if (!last)
                return false; // '>' swallows the rest, so nothing may follow it
        } else {
            for (size_t i = 0; i < len; i++)
                if (!s_segment_char(seg[i]))
                    return false;
        }
        if (last)
            return true;
        seg += len + 1;
    }
}

bool
vdp_topic_valid(const char *topic)
{
    return s_valid(topic, false);
}

bool
vdp_pattern_valid(const char *pattern)
{
    return s_valid(pattern, true);
}

bool
vdp_pattern_match(const char *pattern, const char *topic)
{
    if (!pattern || !topic)
        return false;
    const char *p = pattern;
    const char *t = topic;
    for (;;) {
        size_t plen = s_segment_len(p);
        size_t tlen = s_segment_len(t);
        //  '>' needs one or more segments: the topic has one here (valid segments are non-empty).
        if (s_is_tail(p, plen))
            return tlen > 0;
        if (!s_is_star(p, plen) && (plen != tlen || memcmp(p, t, plen) != 0))
            return false;
        p += plen;
        t += tlen;
        if (*p == '\0' || *t == '\0')
            return *p == '\0' && *t == '\0'; // same number of segments
        p++;
        t++;
    }
}

/*  Segment by segment, with o and i the segments at the same position:
    - o is '>': it matches whatever one-or-more segments i and the rest of inner can produce;
    - i is '>' (and o is not): inner reaches arbitrarily deep topics, which outer, without a '>'
      at this position, cannot all match (it fixes their depth or this segment's value);
    - o is '*': any literal or '*' of inner fits;
    - o is a literal: i must be the same literal ('*' in inner stands for values o does not take);
    and both must end together. Segments are independent and the alphabet of a segment is
    unbounded, so this per-segment test is exact (tests check it against brute force).  */
bool
vdp_pattern_contains(const char *outer, const char *inner)
{
    if (!outer || !inner)
        return false;
    const char *o = outer;
    const char *i = inner;
    for (;;) {
        size_t olen = s_segment_len(o);
        size_t ilen = s_segment_len(i);
        if (s_is_tail(o, olen))
            return ilen > 0;
        if (s_is_tail(i, ilen))
            return false;
        if (!s_is_star(o, olen)) {
            if (s_is_star(i, ilen) || olen != ilen || memcmp(o, i, olen) != 0)
                return false;
        }
        o += olen;
        i += ilen;
        if (*o == '\0' || *i == '\0')
            return *o == '\0' && *i == '\0';
        o++;
        i++;
    }
}

/*  vdp_topic: topics and subscription patterns, matched segment-wise (never by byte prefix).
    A topic is 1..VDP_MAX_SEGMENTS segments of [a-z0-9-] (1..VDP_MAX_SEGMENT bytes each) joined by
    '.', at most VDP_MAX_TOPIC bytes. A pattern is a topic whose segments may also be '*' (exactly
    one segment) or, as the last segment only, '>' (one or more segments).
    Pure functions on NUL-terminated strings; no allocation.  */

#ifndef VDP_TOPIC_H_INCLUDED
#define VDP_TOPIC_H_INCLUDED

#include <stdbool.h>

//  True if `topic` is a valid concrete topic (no wildcard).
bool
vdp_topic_valid(const char *topic);

//  True if `pattern` is a valid pattern (wildcards allowed, '>' last only).
bool
vdp_pattern_valid(const char *pattern);

//  True if the valid `pattern` matches the valid `topic`.
bool
vdp_pattern_match(const char *pattern, const char *topic);

/*  True if every topic `inner` matches is also matched by `outer` (both valid patterns):
    the test for "may this subscription be granted under that grant".  */
bool
vdp_pattern_contains(const char *outer, const char *inner);

#endif

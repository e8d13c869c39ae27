/*  vdp_topic: topics and subscription patterns, matched segment-wise (never by byte prefix).
    A topic is 1..VDP_MAX_SEGMENTS segments of [a-z0-9-] (1..VDP_MAX_SEGMENT bytes each) joined by
    '.', at most VDP_MAX_TOPIC bytes. A pattern is a topic whose segments may also be '*' (exactly
    one segment) or, as the last segment only, '>' (one or more segments). A wildcard is always a
    whole segment: "a*" or "b4>" are invalid, so "alert.t.b429" never matches "alert.t.b4290".
    Pure functions on NUL-terminated strings; no allocation; NULL is never valid.
    vdp_pattern_match() and vdp_pattern_contains() expect valid inputs (check them once, when they
    arrive): on anything else they return a defined but meaningless answer and never read past the
    terminating NUL.  */

#ifndef VDP_TOPIC_H_INCLUDED
#define VDP_TOPIC_H_INCLUDED

#include <stdbool.h>

//  True if `topic` is a valid concrete topic (no wildcard).
bool vdp_topic_valid(const char *topic);

//  True if `pattern` is a valid pattern (wildcards allowed, '>' last only).
bool vdp_pattern_valid(const char *pattern);

//  True if the valid `pattern` matches the valid `topic`. Cost: one pass over both strings.
bool vdp_pattern_match(const char *pattern, const char *topic);

/*  True if every topic `inner` matches is also matched by `outer` (both valid patterns):
    the test for "may this subscription be granted under that grant". Exact, not a heuristic:
    "a.>" contains "a.*" and "a.b.>"; "a.*" does not contain "a.>"; "a.*.c" and "a.b.*" do not
    contain each other. Cost: one pass over both strings.  */
bool vdp_pattern_contains(const char *outer, const char *inner);

#endif

/*  vdp_rate: a rate limit as written in agency files and the policy ("200/s+2000": 200 a second,
    bursts of up to 2000), for messages or for bytes (with k, M, G suffixes, powers of 1024:
    "4M/s+16M"). The broker enforces them with token buckets (broker/vdb_limiter.h).  */

#ifndef VDP_RATE_H_INCLUDED
#define VDP_RATE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VDP_RATE_MAX 1000000000000ull // the largest rate or burst accepted (10^12)

typedef struct {
    uint64_t per_second; // sustained rate; 0: not set (an agency file without it)
    uint64_t burst;      // bucket size: what may pass at once after a quiet spell; >= 1
} vdp_rate_t;

/*  Parses "<rate>/s+<burst>" (no spaces; both positive integers up to VDP_RATE_MAX, each with an
    optional k, M or G suffix meaning x1024, x1024^2, x1024^3; "+<burst>" may be left out and
    then equals the rate). Returns VD_OK, or VD_EINVAL with `err` saying what is wrong.  */
int vdp_rate_parse(const char *text, vdp_rate_t *out, char *err, size_t err_size);

/*  Writes `rate` as vdp_rate_parse reads it ("200/s+2000"; no suffixes) into out[size].
    Returns VD_OK, or VD_EINVAL (rate not set, or does not fit).  */
int vdp_rate_format(const vdp_rate_t *rate, char *out, size_t size);

#endif

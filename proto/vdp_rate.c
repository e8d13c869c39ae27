/*  vdp_rate: see vdp_rate.h; the syntax is in docs/policy.md ("Rate limits").
    Grammar, with no blanks anywhere:  rate = number "/s" [ "+" number ],  number = digits [k|M|G].
    Choices the header leaves open:
    - a number has no sign and no leading zero ("0200" is refused, "0" is refused as zero): one
      spelling per value, and nothing a reader could take for octal;
    - the suffixes are exactly k, M and G, powers of 1024 as everywhere else in the project's
      byte sizes; "K" and "m" are refused rather than guessed (is "m" milli or mega?);
    - a burst below the rate is refused: such a bucket never holds one second's worth, so the
      configured rate could never be reached; a burst equal to it is fine ("+" left out);
    - the bounds are checked on the value after its suffix, without ever overflowing.
    On error `*out` is zeroed, so a half-parsed value is never mistaken for a limit.  */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "vdp_errors.h"
#include "vdp_rate.h"
#include "vedetta.h"

#define S_SYNTAX "expected <rate>/s+<burst>, e.g. 200/s+2000"

/*  Reads one number with its optional suffix at *p and moves *p past it. `what` ("rate",
    "burst") names it in errors. False with err if it is malformed, zero or too large.  */
static bool
s_number(const char **p, const char *what, uint64_t *out, char *err, size_t err_size)
{
    const char *s = *p;
    if (*s < '0' || *s > '9') {
        vdp_errorf(err, err_size, VD_OK, S_SYNTAX);
        return false;
    }
    if (s[0] == '0' && s[1] >= '0' && s[1] <= '9') {
        vdp_errorf(err, err_size, VD_OK, "%s has a leading zero", what);
        return false;
    }
    uint64_t value = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned digit = (unsigned)(*s - '0');
        //  Stop as soon as the value passes the maximum: it can then never overflow.
        if (value > (VDP_RATE_MAX - digit) / 10) {
            vdp_errorf(err, err_size, VD_OK, "%s too large (at most %llu)", what, VDP_RATE_MAX);
            return false;
        }
        value = value * 10 + digit;
    }
    uint64_t scale = 1;
    if (*s == 'k')
        scale = 1024u;
    else if (*s == 'M')
        scale = 1024u * 1024u;
    else if (*s == 'G')
        scale = 1024u * 1024u * 1024u;
    else if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')) {
        vdp_errorf(err, err_size, VD_OK, "unknown suffix '%c' on the %s (k, M or G)", *s, what);
        return false;
    }
    if (scale != 1)
        s++;
    if (value == 0) {
        vdp_errorf(err, err_size, VD_OK, "%s is 0", what);
        return false;
    }
    if (value > VDP_RATE_MAX / scale) {
        vdp_errorf(err, err_size, VD_OK, "%s too large (at most %llu)", what, VDP_RATE_MAX);
        return false;
    }
    *out = value * scale;
    *p = s;
    return true;
}

int
vdp_rate_parse(const char *text, vdp_rate_t *out, char *err, size_t err_size)
{
    if (!out)
        return vdp_errorf(err, err_size, VD_EINVAL, "no output");
    *out = (vdp_rate_t){ 0, 0 };
    if (!text)
        return vdp_errorf(err, err_size, VD_EINVAL, "no rate");
    vdp_rate_t rate = { 0, 0 };
    const char *p = text;
    if (!s_number(&p, "rate", &rate.per_second, err, err_size))
        return VD_EINVAL;
    if (p[0] != '/' || p[1] != 's')
        return vdp_errorf(err, err_size, VD_EINVAL, S_SYNTAX);
    p += 2;
    rate.burst = rate.per_second;
    if (*p == '+') {
        p++;
        if (!s_number(&p, "burst", &rate.burst, err, err_size))
            return VD_EINVAL;
    }
    if (*p != '\0')
        return vdp_errorf(err, err_size, VD_EINVAL, S_SYNTAX);
    if (rate.burst < rate.per_second)
        return vdp_errorf(err, err_size, VD_EINVAL,
                          "burst %" PRIu64 " is below the rate %" PRIu64
                          ": the bucket must hold at least one second's worth",
                          rate.burst, rate.per_second);
    *out = rate;
    return VD_OK;
}

int
vdp_rate_format(const vdp_rate_t *rate, char *out, size_t size)
{
    if (!out || size == 0)
        return VD_EINVAL;
    out[0] = '\0';
    //  Only what vdp_rate_parse reads back as the same value.
    if (!rate || rate->per_second == 0 || rate->burst < rate->per_second ||
        rate->burst > VDP_RATE_MAX)
        return VD_EINVAL;
    int len = snprintf(out, size, "%" PRIu64 "/s+%" PRIu64, rate->per_second, rate->burst);
    if (len < 0 || (size_t)len >= size) {
        out[0] = '\0';
        return VD_EINVAL;
    }
    return VD_OK;
}

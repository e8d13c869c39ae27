/*  vdp_errors: the one helper every module uses to explain a failure in a caller's buffer.  */

#ifndef VDP_ERRORS_H_INCLUDED
#define VDP_ERRORS_H_INCLUDED

#include <stddef.h>

/*  Formats a reason into buf[size] (nothing if buf is NULL or size is 0; truncated to fit) and
    returns `rc`, so that a check can fail in one line: return vdp_errorf(err, size, VD_EINVAL,
    "bad %s", what);  */
int vdp_errorf(char *buf, size_t size, int rc, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

#endif

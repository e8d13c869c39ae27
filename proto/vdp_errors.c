/*  vdp_errors: names and meanings of vd_err_t, generated from the VD_ERRORS table.  */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vdp_errors.h"
#include "vedetta.h"

const char *
vd_strerror(int code)
{
    switch (code) {
#define VD_ERR_TEXT_(name, value, text)                                                            \
    case value:                                                                                    \
        return text;
        VD_ERRORS(VD_ERR_TEXT_)
#undef VD_ERR_TEXT_
    }
    return "unknown error";
}

const char *
vd_strerror_name(int code)
{
    switch (code) {
#define VD_ERR_NAME_(name, value, text)                                                            \
    case value:                                                                                    \
        return #name;
        VD_ERRORS(VD_ERR_NAME_)
#undef VD_ERR_NAME_
    }
    return "EUNKNOWN";
}

int
vd_strerror_code(const char *name)
{
#define VD_ERR_CODE_(ename, value, text)                                                           \
    if (name && strcmp(name, #ename) == 0)                                                         \
        return value;
    VD_ERRORS(VD_ERR_CODE_)
#undef VD_ERR_CODE_
    return VD_EINVAL;
}

int
vdp_errorf(char *buf, size_t size, int rc, const char *format, ...)
{
    if (buf && size > 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(buf, size, format, args);
        va_end(args);
    }
    return rc;
}

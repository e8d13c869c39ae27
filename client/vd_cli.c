/*  vd_cli: see vd_cli.h.  */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vd_cli.h"

int
vd_cli_usage_error(const char *command, const char *fmt, ...)
{
    fprintf(stderr, "vedetta %s: ", command);
    va_list args;
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fprintf(stderr, "\nTry 'vedetta %.*s --help'.\n", (int)strcspn(command, " "), command);
    return VD_CLI_EXIT_USAGE;
}

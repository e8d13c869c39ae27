/*  vdb_log: see vdb_log.h. The level is the one piece of process-wide state in the broker: it
    mirrors syslog's mask, and threading it through every call would only add noise.  */
#include <string.h>

#include "vdb_log.h"

static vdb_log_level_t s_level = VDB_LOG_NOTICE;

void
vdb_log_set_level(vdb_log_level_t level)
{
    s_level = level;
}

int
vdb_log_enabled(vdb_log_level_t level)
{
    return level <= s_level;
}

int
vdb_log_level_from_name(const char *name)
{
    static const char *names[] = { "error", "warning", "notice", "info", "debug" };
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (name && strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

/*  vdb_log: the broker's log threshold over CZMQ's zsys_* (logident "vedetta"). One process-wide
    level, set once from the configuration; a disabled level costs one comparison.
    Lines look like "vdb_session: dropped peer=... rc=EACCES": module, what, key=value pairs.
    Never log secret keys or payloads; sanitise peer strings (vdp_sanitize).  */

#ifndef VDB_LOG_H_INCLUDED
#define VDB_LOG_H_INCLUDED

#include <czmq.h>

typedef enum {
    VDB_LOG_ERROR = 0,   // the broker cannot do its job
    VDB_LOG_WARNING = 1, // a peer or the environment misbehaved
    VDB_LOG_NOTICE = 2,  // lifecycle, refusals, denials
    VDB_LOG_INFO = 3,    // per session
    VDB_LOG_DEBUG = 4    // per message
} vdb_log_level_t;

//  Sets the threshold; messages above it are dropped.
void vdb_log_set_level(vdb_log_level_t level);

//  True if `level` is logged.
int vdb_log_enabled(vdb_log_level_t level);

//  Level from its name (error, warning, notice, info, debug); -1 if unknown.
int vdb_log_level_from_name(const char *name);

#define vdb_log_error(...) zsys_error(__VA_ARGS__)
#define vdb_log_warning(...)                                                                       \
    (vdb_log_enabled(VDB_LOG_WARNING) ? zsys_warning(__VA_ARGS__) : (void)0)
#define vdb_log_notice(...) (vdb_log_enabled(VDB_LOG_NOTICE) ? zsys_notice(__VA_ARGS__) : (void)0)
#define vdb_log_info(...)   (vdb_log_enabled(VDB_LOG_INFO) ? zsys_info(__VA_ARGS__) : (void)0)
#define vdb_log_debug(...)  (vdb_log_enabled(VDB_LOG_DEBUG) ? zsys_debug(__VA_ARGS__) : (void)0)

#endif

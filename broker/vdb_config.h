/*  vdb_config: the broker's configuration (docs/operations.md), a ZPL file:
        broker
            name = "broker:toscana"
            endpoint = "tcp://127.0.0.1:7447"
            secret = "broker.secret"
            registry = "agencies"
            policy = ""                      # empty: the embedded default policy
            endpoint-file = ""
            control = "vedettad.ctl"         # local admin socket (reload, stats); "": none
        store
            path = "vedetta.db"              # the message store (SQLite, WAL)
            sync = "full"                    # full | normal | off: see docs/store.md
        retention
            age = "90d"                      # delete messages older than this ("0": keep)
            size = "0"                       # per category, envelope bytes kept at most
            interval = "60s"                 # how often retention runs (expired go too)
            category                         # optional: per-category age and size
                emergency
                    age = "365d"
                training
                    age = "30d"
                    size = "100M"
        audit
            path = "vedetta.audit"           # the hash-chained audit log (docs/audit.md); "": none
        limits
            dedup-window = 100000            # (sender, id) pairs remembered for duplicates
            session-backlog = 67108864       # bytes queued for one slow session before dropping
        log
            level = "notice"
    Relative paths are resolved against the config file's directory. Every key is checked: an
    unknown section or key, or a bad value, fails the load (never fall back to open defaults).  */

#ifndef VDB_CONFIG_H_INCLUDED
#define VDB_CONFIG_H_INCLUDED

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "vdp_limits.h"

#define VDB_CONFIG_MAX_CATEGORIES 32 // categories with retention of their own

//  Retention of one category, overriding the defaults for it.
typedef struct {
    char name[VDP_MAX_SHORT + 1];
    int64_t age_ms; // 0: no age limit
    uint64_t size;  // envelope bytes; 0: no size limit
} vdb_config_retention_t;

typedef struct {
    char name[VDP_MAX_ORG + 1];    // the broker's org id; checked against its key file
    char endpoint[256];            // where the ROUTER binds
    char secret[PATH_MAX];         // the broker's secret key file
    char registry[PATH_MAX];       // directory of *.agency files
    char policy[PATH_MAX];         // policy file; empty: embedded default
    char endpoint_file[PATH_MAX];  // where to write the bound endpoint; empty: nowhere
    char control[PATH_MAX];        // the admin socket (vdb_control.h); empty: none
    char audit[PATH_MAX];          // the audit log (vdb_audit.h); empty: none
    char store[PATH_MAX];          // the message store file
    int store_sync;                // vdb_sync_t
    int64_t retention_age_ms;      // 0: no age limit
    uint64_t retention_size;       // bytes per category; 0: no size limit
    int64_t retention_interval_ms; // > 0
    //  Categories with retention of their own (an unset age or size takes the default's).
    vdb_config_retention_t retention_categories[VDB_CONFIG_MAX_CATEGORIES];
    size_t retention_category_count;
    size_t dedup_window;    // >= 1
    size_t session_backlog; // bytes
    int log_level;          // vdb_log_level_t
} vdb_config_t;

//  Fills the embedded defaults (relative paths as above, resolved against `base_dir`).
void vdb_config_defaults(vdb_config_t *self, const char *base_dir);

/*  Parses ZPL `text` on top of the current values; relative paths are resolved against
    `base_dir`. Returns VD_OK or VD_ECONFIG with `err` ("origin: broker/endpoint: ...").  */
int vdb_config_parse(vdb_config_t *self,
                     const char *text,
                     const char *origin,
                     const char *base_dir,
                     char *err,
                     size_t err_size);

//  Loads defaults and then the file at `path`. Returns VD_OK, VD_EIO, VD_ECONFIG with `err`.
int vdb_config_load(vdb_config_t *self, const char *path, char *err, size_t err_size);

#endif

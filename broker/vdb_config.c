/*  vdb_config: see vdb_config.h. zconfig parses the ZPL; this module walks the tree and accepts
    only the keys it knows, so a typo is an error rather than a silently ignored setting.  */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "vdb_config.h"
#include "vdb_log.h"
#include "vdp_ids.h"
#include "vedetta.h"

//  Writes `path` resolved against `base_dir` into `out`. Returns 0, or -1 if it does not fit.
static int
s_resolve(char *out, size_t size, const char *base_dir, const char *path)
{
    int n;
    if (path[0] == '\0' || path[0] == '/' || !base_dir || base_dir[0] == '\0')
        n = snprintf(out, size, "%s", path);
    else
        n = snprintf(out, size, "%s/%s", base_dir, path);
    return n >= 0 && (size_t)n < size ? 0 : -1;
}

void
vdb_config_defaults(vdb_config_t *self, const char *base_dir)
{
    memset(self, 0, sizeof *self);
    snprintf(self->endpoint, sizeof self->endpoint, "tcp://127.0.0.1:7447");
    //  A base directory too long for these leaves them empty: the load then fails by name.
    if (s_resolve(self->secret, sizeof self->secret, base_dir, "broker.secret") != 0)
        self->secret[0] = '\0';
    if (s_resolve(self->registry, sizeof self->registry, base_dir, "agencies") != 0)
        self->registry[0] = '\0';
    if (s_resolve(self->store, sizeof self->store, base_dir, "vedetta.db") != 0)
        self->store[0] = '\0';
    if (s_resolve(self->control, sizeof self->control, base_dir, "vedettad.ctl") != 0)
        self->control[0] = '\0';
    if (s_resolve(self->audit, sizeof self->audit, base_dir, "vedetta.audit") != 0)
        self->audit[0] = '\0';
    self->store_sync = 0; // full: a receipt means the message survives a power loss
    self->retention_age_ms = 90LL * 24 * 3600 * 1000;
    self->retention_size = 0;
    self->retention_interval_ms = 60 * 1000;
    self->dedup_window = 100000;
    self->session_backlog = 64u * 1024u * 1024u;
    self->log_level = VDB_LOG_NOTICE;
}

static int
s_fail(char *err, size_t err_size, const char *origin, const char *where, const char *what)
{
    if (err)
        snprintf(err, err_size, "%s: %s: %s", origin, where, what);
    return VD_ECONFIG;
}

//  Parses a positive size with an optional k/M/G suffix (powers of 1024).
static int
s_parse_size(const char *text, size_t min, size_t *out)
{
    //  Digits first: strtoull would skip blanks and accept a sign, so " -1" would read as
    //  ULLONG_MAX, an unbounded limit.
    if (!isdigit((unsigned char)text[0]))
        return -1;
    errno = 0;
    char *end = NULL;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno || end == text)
        return -1;
    unsigned long long scale = 1;
    if (*end == 'k' || *end == 'K')
        scale = 1024ull, end++;
    else if (*end == 'M')
        scale = 1024ull * 1024ull, end++;
    else if (*end == 'G')
        scale = 1024ull * 1024ull * 1024ull, end++;
    if (*end != '\0' || value > SIZE_MAX / scale || value * scale < min)
        return -1;
    *out = (size_t)(value * scale);
    return 0;
}

//  Parses a duration: a whole number with a unit, ms s m h d ("90d", "500ms"), or "0".
static int
s_parse_duration(const char *text, int64_t *out)
{
    if (strcmp(text, "0") == 0) {
        *out = 0;
        return 0;
    }
    if (text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    char *end = NULL;
    long long value = strtoll(text, &end, 10);
    static const struct {
        const char *unit;
        long long ms;
    } units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 } };
    for (size_t i = 0; !errno && i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].unit) == 0 && value <= INT64_MAX / units[i].ms) {
            *out = value * units[i].ms;
            return 0;
        }
    return -1;
}

#define S_RETENTION_VALUES "not a valid value (durations: 500ms, 30s, 15m, 12h, 90d; sizes: 0, 64M)"

//  An age or size of retention, into *age_ms or *size. Returns 0, or -1 if not valid.
static int
s_retention_key(const char *key, const char *value, int64_t *age_ms, uint64_t *size)
{
    if (strcmp(key, "age") == 0)
        return s_parse_duration(value, age_ms);
    size_t bytes = 0;
    int bad = strcmp(value, "0") == 0 ? 0 : s_parse_size(value, 1, &bytes);
    if (!bad)
        *size = bytes;
    return bad;
}

/*  retention/category: one subsection per category, each with age and/or size; what it does not
    set is the default's at the time of parsing, so the defaults are best written first.  */
static int
s_retention_categories(
    vdb_config_t *self, zconfig_t *categories, const char *origin, char *err, size_t err_size)
{
    if (zconfig_value(categories) && *zconfig_value(categories))
        return s_fail(err, err_size, origin, "retention/category", "takes no value");
    for (zconfig_t *category = zconfig_child(categories); category;
         category = zconfig_next(category)) {
        const char *name = zconfig_name(category);
        char where[160];
        snprintf(where, sizeof where, "retention/category/%.64s", name);
        if (!name || !*name || strlen(name) > VDP_MAX_SHORT)
            return s_fail(err, err_size, origin, where, "not a valid category");
        for (size_t i = 0; i < self->retention_category_count; i++)
            if (strcmp(self->retention_categories[i].name, name) == 0)
                return s_fail(err, err_size, origin, where, "given twice");
        if (self->retention_category_count == VDB_CONFIG_MAX_CATEGORIES)
            return s_fail(err, err_size, origin, where, "too many categories (32 at most)");
        vdb_config_retention_t *rule = &self->retention_categories[self->retention_category_count];
        snprintf(rule->name, sizeof rule->name, "%s", name);
        rule->age_ms = self->retention_age_ms;
        rule->size = self->retention_size;
        for (zconfig_t *item = zconfig_child(category); item; item = zconfig_next(item)) {
            const char *key = zconfig_name(item);
            const char *value = zconfig_value(item) ? zconfig_value(item) : "";
            snprintf(where, sizeof where, "retention/category/%.64s/%.16s", name, key);
            if (zconfig_child(item) || (strcmp(key, "age") != 0 && strcmp(key, "size") != 0))
                return s_fail(err, err_size, origin, where, "unknown key");
            if (s_retention_key(key, value, &rule->age_ms, &rule->size) != 0)
                return s_fail(err, err_size, origin, where, S_RETENTION_VALUES);
        }
        self->retention_category_count++;
    }
    return VD_OK;
}

static int
s_broker_key(vdb_config_t *self,
             const char *key,
             const char *value,
             const char *base_dir,
             const char *origin,
             char *err,
             size_t err_size)
{
    char where[64];
    snprintf(where, sizeof where, "broker/%s", key);
    if (strcmp(key, "name") == 0) {
        if (!vdp_org_valid(value) || vdp_org_role(value) != VDP_ROLE_BROKER)
            return s_fail(err, err_size, origin, where, "must be a broker org id (broker:<j>)");
        snprintf(self->name, sizeof self->name, "%s", value);
    } else if (strcmp(key, "endpoint") == 0) {
        if (strlen(value) == 0 || strlen(value) >= sizeof self->endpoint)
            return s_fail(err, err_size, origin, where, "empty or too long");
        snprintf(self->endpoint, sizeof self->endpoint, "%s", value);
    } else if (strcmp(key, "secret") == 0 || strcmp(key, "registry") == 0) {
        if (strlen(value) == 0)
            return s_fail(err, err_size, origin, where, "must not be empty");
        char *target = strcmp(key, "secret") == 0 ? self->secret : self->registry;
        if (s_resolve(target, PATH_MAX, base_dir, value) != 0)
            return s_fail(err, err_size, origin, where, "path too long");
    } else if (strcmp(key, "policy") == 0 || strcmp(key, "endpoint-file") == 0 ||
               strcmp(key, "control") == 0) {
        char *target = strcmp(key, "policy") == 0          ? self->policy
                       : strcmp(key, "endpoint-file") == 0 ? self->endpoint_file
                                                           : self->control;
        if (s_resolve(target, PATH_MAX, base_dir, value) != 0)
            return s_fail(err, err_size, origin, where, "path too long");
    } else
        return s_fail(err, err_size, origin, where, "unknown key");
    return VD_OK;
}

static int
s_section_key(vdb_config_t *self,
              const char *section,
              const char *key,
              const char *value,
              const char *base_dir,
              const char *origin,
              char *err,
              size_t err_size)
{
    char where[96];
    snprintf(where, sizeof where, "%s/%s", section, key);
    if (strcmp(section, "broker") == 0)
        return s_broker_key(self, key, value, base_dir, origin, err, err_size);
    if (strcmp(section, "limits") == 0) {
        size_t *target = strcmp(key, "dedup-window") == 0      ? &self->dedup_window
                         : strcmp(key, "session-backlog") == 0 ? &self->session_backlog
                                                               : NULL;
        if (!target)
            return s_fail(err, err_size, origin, where, "unknown key");
        size_t min = target == &self->session_backlog ? VDP_MAX_FRAME : 1;
        if (s_parse_size(value, min, target) != 0)
            return s_fail(err, err_size, origin, where, "not a valid size (or below the minimum)");
        return VD_OK;
    }
    if (strcmp(section, "store") == 0) {
        if (strcmp(key, "path") == 0) { // empty: no store, live delivery only
            if (s_resolve(self->store, PATH_MAX, base_dir, value) != 0)
                return s_fail(err, err_size, origin, where, "path too long");
            return VD_OK;
        }
        if (strcmp(key, "sync") != 0)
            return s_fail(err, err_size, origin, where, "unknown key");
        static const char *levels[] = { "full", "normal", "off" };
        for (int i = 0; i < 3; i++)
            if (strcmp(value, levels[i]) == 0) {
                self->store_sync = i;
                return VD_OK;
            }
        return s_fail(err, err_size, origin, where, "must be full, normal or off");
    }
    if (strcmp(section, "retention") == 0) {
        int bad = -1;
        if (strcmp(key, "interval") == 0)
            bad = s_parse_duration(value, &self->retention_interval_ms) ||
                  self->retention_interval_ms <= 0;
        else if (strcmp(key, "age") == 0 || strcmp(key, "size") == 0)
            bad = s_retention_key(key, value, &self->retention_age_ms, &self->retention_size);
        else
            return s_fail(err, err_size, origin, where, "unknown key");
        return bad ? s_fail(err, err_size, origin, where, S_RETENTION_VALUES) : VD_OK;
    }
    if (strcmp(section, "audit") == 0) {
        if (strcmp(key, "path") != 0) // empty: no audit log
            return s_fail(err, err_size, origin, where, "unknown key");
        if (s_resolve(self->audit, PATH_MAX, base_dir, value) != 0)
            return s_fail(err, err_size, origin, where, "path too long");
        return VD_OK;
    }
    if (strcmp(section, "log") == 0) {
        if (strcmp(key, "level") != 0)
            return s_fail(err, err_size, origin, where, "unknown key");
        int level = vdb_log_level_from_name(value);
        if (level < 0)
            return s_fail(err, err_size, origin, where,
                          "must be error, warning, notice, info or debug");
        self->log_level = level;
        return VD_OK;
    }
    return s_fail(err, err_size, origin, section, "unknown section");
}

int
vdb_config_parse(vdb_config_t *self,
                 const char *text,
                 const char *origin,
                 const char *base_dir,
                 char *err,
                 size_t err_size)
{
    zconfig_t *root = zconfig_str_load(text);
    if (!root)
        return s_fail(err, err_size, origin, "syntax", "not valid ZPL");
    int rc = VD_OK;
    for (zconfig_t *section = zconfig_child(root); section && rc == VD_OK;
         section = zconfig_next(section)) {
        const char *section_name = zconfig_name(section);
        if (zconfig_value(section) && *zconfig_value(section)) {
            rc = s_fail(err, err_size, origin, section_name, "a section takes no value");
            break;
        }
        if (strcmp(section_name, "broker") && strcmp(section_name, "store") &&
            strcmp(section_name, "retention") && strcmp(section_name, "limits") &&
            strcmp(section_name, "audit") && strcmp(section_name, "log")) {
            rc = s_fail(err, err_size, origin, section_name, "unknown section");
            break;
        }
        for (zconfig_t *item = zconfig_child(section); item && rc == VD_OK;
             item = zconfig_next(item)) {
            if (strcmp(section_name, "retention") == 0 &&
                strcmp(zconfig_name(item), "category") == 0) {
                rc = s_retention_categories(self, item, origin, err, err_size);
                continue;
            }
            if (zconfig_child(item)) {
                rc = s_fail(err, err_size, origin, zconfig_name(item), "unexpected subsection");
                break;
            }
            const char *value = zconfig_value(item) ? zconfig_value(item) : "";
            rc = s_section_key(self, section_name, zconfig_name(item), value, base_dir, origin, err,
                               err_size);
        }
    }
    zconfig_destroy(&root);
    return rc;
}

int
vdb_config_load(vdb_config_t *self, const char *path, char *err, size_t err_size)
{
    char *text = NULL;
    size_t size = 0;
    FILE *file = fopen(path, "r");
    if (!file) {
        if (err)
            snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return VD_EIO;
    }
    FILE *buffer = open_memstream(&text, &size);
    char chunk[4096];
    size_t n;
    while (buffer && (n = fread(chunk, 1, sizeof chunk, file)) > 0)
        fwrite(chunk, 1, n, buffer);
    int read_failed = ferror(file);
    fclose(file);
    if (!buffer || fclose(buffer) != 0 || read_failed) {
        free(text);
        if (err)
            snprintf(err, err_size, "%s: cannot read", path);
        return VD_EIO;
    }
    char base_dir[PATH_MAX];
    snprintf(base_dir, sizeof base_dir, "%s", path);
    char *slash = strrchr(base_dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(base_dir, sizeof base_dir, ".");
    vdb_config_defaults(self, base_dir);
    int rc = vdb_config_parse(self, text, path, base_dir, err, err_size);
    free(text);
    return rc;
}

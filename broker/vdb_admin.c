/*  vdb_admin: the operator's side of vdb_server. Reloading the registry and the policy (on
    SIGHUP, or "reload" on the admin socket) and answering the admin socket (vdb_control.h).
    Everything here runs on the loop's thread, between two messages, so a swap needs no lock:
    nothing holds a pointer into the old tables once the sessions are refreshed.  */
#include <inttypes.h>
#include <limits.h>
#include <string.h>

#include <czmq.h>
#include <jansson.h>

#include "vdb_log.h"
#include "vdb_server_impl.h"
#include "vdp_errors.h"
#include "vedetta.h"

static int s_reload(vdb_server_t *self, vdb_reload_report_t *report, char *err, size_t err_size);

int
vdb_server_reload(vdb_server_t *self, vdb_reload_report_t *report, char *err, size_t err_size)
{
    int rc = s_reload(self, report, err, err_size);
    //  A refused reload is on record too: someone tried to change the tables.
    if (rc != VD_OK)
        vdb_server_audit(self, VDP_AUDIT_REGISTRY_CHANGE, self->name, NULL, NULL, NULL, 0, rc, err);
    return rc;
}

static int
s_reload(vdb_server_t *self, vdb_reload_report_t *report, char *err, size_t err_size)
{
    char why[1024] = "";
    //  Both new tables are built before anything changes: a bad file leaves the broker as it
    //  was, with the reason reported, never half reloaded.
    vdb_registry_t *registry = vdb_registry_load(self->config.registry, why, sizeof why);
    if (!registry)
        return vdp_errorf(err, err_size, VD_ECONFIG, "registry: %s", why);
    if (vdb_registry_key_count(registry) == 0) {
        vdb_registry_destroy(&registry);
        return vdp_errorf(err, err_size, VD_ECONFIG, "registry %s holds no agency file",
                          self->config.registry);
    }
    vdb_policy_t *policy =
        self->config.policy[0]
            ? vdb_policy_load(self->config.policy, why, sizeof why)
            : vdb_policy_parse(vdb_policy_default_text(), "(embedded policy)", why, sizeof why);
    if (!policy) {
        vdb_registry_destroy(&registry);
        return vdp_errorf(err, err_size, VD_ECONFIG, "policy: %s", why);
    }

    //  Sessions whose key is still active follow it into the new table; the others are cut,
    //  one per pass, since closing a session changes the table being walked (k cuts cost k
    //  walks: a reload is rare, and revocations in it few).
    size_t sessions_cut = 0;
    while (true) {
        vdb_session_t *revoked = NULL;
        for (vdb_session_t *session = zhashx_first(self->sessions); session && !revoked;
             session = zhashx_next(self->sessions)) {
            const vdp_agency_t *agency = vdb_registry_key(registry, session->key);
            if (agency && agency->status == VDP_KEY_ACTIVE)
                session->agency = agency;
            else
                revoked = session;
        }
        if (!revoked)
            break;
        vdb_log_notice("vdb_server: session cut org=%s key=%s reason=key-revoked",
                       revoked->agency->org, revoked->key);
        vdb_server_error_direct(self, revoked->rid, revoked->rid_len, VD_EAUTH, "key revoked");
        vdb_server_close_session(self, revoked, "key revoked");
        sessions_cut++;
    }

    //  Every key active before and not now, in the audit log (its session, if any, was cut).
    for (size_t i = 0; i < vdb_registry_key_count(self->registry); i++) {
        const vdp_agency_t *before = vdb_registry_at(self->registry, i);
        const vdp_agency_t *now = vdb_registry_key(registry, before->curve_public);
        if (before->status == VDP_KEY_ACTIVE && (!now || now->status != VDP_KEY_ACTIVE))
            vdb_server_audit(self, VDP_AUDIT_KEY_REVOKE, before->org, before->curve_public, NULL,
                             NULL, 0, VD_OK,
                             now ? "revoked in the registry" : "removed from the registry");
    }
    vdb_zap_set_registry(self->zap, registry);
    vdb_registry_destroy(&self->registry);
    vdb_policy_destroy(&self->policy);
    self->registry = registry;
    self->policy = policy;
    vdb_reload_report_t done = {
        .orgs = vdb_registry_org_count(registry),
        .keys = vdb_registry_key_count(registry),
        .revoked = vdb_registry_revoked_count(registry),
        .grants = vdb_policy_grant_count(policy),
        .sessions_cut = sessions_cut,
    };
    vdb_log_notice("vdb_server: reloaded orgs=%zu keys=%zu revoked=%zu grants=%zu "
                   "sessions-cut=%zu",
                   done.orgs, done.keys, done.revoked, done.grants, done.sessions_cut);
    char what[PATH_MAX + 160];
    snprintf(what, sizeof what, "reloaded from %s: orgs=%zu keys=%zu revoked=%zu sessions-cut=%zu",
             self->config.registry, done.orgs, done.keys, done.revoked, done.sessions_cut);
    vdb_server_audit(self, VDP_AUDIT_REGISTRY_CHANGE, self->name, NULL, NULL, NULL, 0, VD_OK, what);
    snprintf(what, sizeof what, "reloaded from %s: grants=%zu",
             self->config.policy[0] ? self->config.policy : "(embedded policy)", done.grants);
    vdb_server_audit(self, VDP_AUDIT_POLICY_CHANGE, self->name, NULL, NULL, NULL, 0, VD_OK, what);
    if (report)
        *report = done;
    return VD_OK;
}

//  The JSON answer to "reload": what is in force now, or why nothing changed.
static json_t *
s_reload_answer(vdb_server_t *self)
{
    vdb_reload_report_t report;
    char err[1024] = "";
    int rc = vdb_server_reload(self, &report, err, sizeof err);
    if (rc != VD_OK) {
        vdb_log_error("vdb_server: reload refused, nothing changed: %s", err);
        return json_pack("{s:b, s:s, s:s}", "ok", 0, "code", vd_strerror_name(rc), "error", err);
    }
    return json_pack("{s:b, s:I, s:I, s:I, s:I, s:I}", "ok", 1, "orgs", (json_int_t)report.orgs,
                     "keys", (json_int_t)report.keys, "revoked", (json_int_t)report.revoked,
                     "grants", (json_int_t)report.grants, "sessions_cut",
                     (json_int_t)report.sessions_cut);
}

//  The JSON answer to "stats": the counters vdb_server_stats reports, and the tables' sizes.
static json_t *
s_stats_answer(vdb_server_t *self)
{
    const vdb_server_stats_t *stats = &self->stats;
    return json_pack(
        "{s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "ok", 1, "broker",
        self->name, "seq", (json_int_t)self->seq, "sessions", (json_int_t)stats->sessions,
        "accepted", (json_int_t)stats->accepted, "duplicates", (json_int_t)stats->duplicates,
        "rejected", (json_int_t)stats->rejected, "delivered", (json_int_t)stats->delivered,
        "replayed", (json_int_t)stats->replayed, "withheld", (json_int_t)stats->withheld, "dropped",
        (json_int_t)stats->dropped, "errors", (json_int_t)stats->errors, "keys",
        (json_int_t)vdb_registry_key_count(self->registry), "grants",
        (json_int_t)vdb_policy_grant_count(self->policy));
}

void
vdb_server_control(vdb_server_t *self)
{
    char command[VDB_CONTROL_MAX_COMMAND + 1];
    int rc = vdb_control_recv(self->control, command);
    if (rc == VD_ENOTFOUND)
        return;
    json_t *answer = NULL;
    if (rc == VD_OK && strcmp(command, "reload") == 0) {
        vdb_log_notice("vdb_server: reload asked on the admin socket");
        answer = s_reload_answer(self);
    } else if (rc == VD_OK && strcmp(command, "stats") == 0)
        answer = s_stats_answer(self);
    else
        answer = json_pack("{s:b, s:s, s:s}", "ok", 0, "code", "EINVAL", "error",
                           "unknown command: use reload or stats");
    char *text = answer ? json_dumps(answer, JSON_COMPACT) : NULL;
    //  The socket must answer every request, or it would take no other.
    if (vdb_control_reply(self->control, text ? text : "{\"ok\":false,\"code\":\"ENOMEM\"}") !=
        VD_OK)
        vdb_log_warning("vdb_server: the admin socket's answer could not be sent");
    free(text);
    json_decref(answer);
}

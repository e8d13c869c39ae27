/*  vdb_acl: publish, subscribe, deliver and reference checks on top of the compiled policy.
    Invariants: every path that returns VD_OK has found a grant; the TLP rules below are checked
    after the grants and no grant can switch them off; reasons name only validated identifiers
    (org ids, topics) or sanitised copies of peer strings.  */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vdp_errors.h"
#include "vedetta.h"
#include "vdb_acl.h"
#include "vdb_policy.h"
#include "vdp_ids.h"
#include "vdp_topic.h"

#define S_DIRECTED "inbox" // the topic of directed messages

//  Upper-case labels as TLP 2.0 writes them, for reasons.
static const char *
s_tlp_label(vdp_tlp_t tlp)
{
    switch (tlp) {
    case VDP_TLP_CLEAR:
        return "TLP:CLEAR";
    case VDP_TLP_GREEN:
        return "TLP:GREEN";
    case VDP_TLP_AMBER:
        return "TLP:AMBER";
    case VDP_TLP_AMBER_STRICT:
        return "TLP:AMBER+STRICT";
    case VDP_TLP_RED:
        return "TLP:RED";
    default:
        return "TLP:none";
    }
}

//  The ceiling alone (in "ceiling GREEN on ...").
static const char *
s_ceiling_label(vdp_tlp_t tlp)
{
    return s_tlp_label(tlp) + 4;
}

static void
s_clear(char *reason, size_t size)
{
    if (reason && size > 0)
        reason[0] = '\0';
}

static bool
s_tlp_valid(vdp_tlp_t tlp)
{
    return tlp >= VDP_TLP_CLEAR && tlp <= VDP_TLP_RED;
}

static bool
s_listed(const vdp_envelope_t *env, const char *org)
{
    size_t count = env->to_count < VDP_MAX_TO ? env->to_count : VDP_MAX_TO;
    for (size_t i = 0; i < count; i++)
        if (strcmp(env->to[i], org) == 0)
            return true;
    return false;
}

//  True if the first segment of `topic` is "inbox" but the topic is more than that.
static bool
s_inbox_subtopic(const char *topic)
{
    size_t len = strlen(S_DIRECTED);
    return strncmp(topic, S_DIRECTED, len) == 0 && topic[len] == '.';
}

/*  The TLP rules no policy can relax, for one recipient (TLP 2.0, docs/policy.md):
    - RED: individual recipients only, so only orgs named in `to`;
    - AMBER+STRICT: the recipient's organisation only; ANCI is never part of it;
    - a Comune's AMBER and above: its audience is the Polizia di Stato (COSC, CNAIPIC) and its
      own keys; never ANCI, never another Comune.
    CLEAR and GREEN go wherever the grants allow.  */
static int
s_tlp_rules(
    const vdp_envelope_t *env, const vdp_agency_t *to, const char *verb, char *reason, size_t size)
{
    if (env->tlp == VDP_TLP_RED && !s_listed(env, to->org))
        return vdp_errorf(reason, size, VD_ETLP, "TLP:RED %s %s (not a named recipient)", verb,
                          to->org);
    if (env->tlp == VDP_TLP_AMBER_STRICT && to->role == VDP_ROLE_ANCI)
        return vdp_errorf(reason, size, VD_ETLP, "TLP:AMBER+STRICT %s %s (never to ANCI)", verb,
                          to->org);
    //  Parse the sender only when its role can matter (an org id parse per delivery adds up).
    if (env->tlp >= VDP_TLP_AMBER &&
        (to->role == VDP_ROLE_ANCI ||
         (to->role == VDP_ROLE_COMUNE && strcmp(to->org, env->sender) != 0))) {
        if (vdp_org_role(env->sender) == VDP_ROLE_COMUNE)
            return vdp_errorf(
                reason, size, VD_ETLP,
                "%s from %s %s %s (a Comune's AMBER never goes to ANCI or other Comuni)",
                s_tlp_label(env->tlp), env->sender, verb, to->org);
    }
    return VD_OK;
}

size_t
vdb_acl_inbox_topics(const vdp_agency_t *agency, char out[][VDP_MAX_TOPIC + 1], size_t max)
{
    if (!agency || !out)
        return 0;
    char slug[VDP_MAX_ORG + 1];
    if (vdp_org_slug(agency->org, slug, sizeof slug) != 0)
        return 0;
    size_t count = 0;
    size_t jur_count = agency->jur_count < VDP_MAX_JUR ? agency->jur_count : VDP_MAX_JUR;
    for (size_t k = 0; k < jur_count && count < max; k++) {
        if (!vdp_jurisdiction_valid(agency->jur[k]))
            continue;
        int n = snprintf(out[count], VDP_MAX_TOPIC + 1, "inbox.%s.%s", agency->jur[k], slug);
        if (n > 0 && (size_t)n <= VDP_MAX_TOPIC && vdp_topic_valid(out[count]))
            count++;
    }
    return count;
}

//  Publish of a directed message: every recipient known, granted, and allowed by the TLP rules.
static int
s_check_directed(const vdb_policy_t *self,
                 const vdb_registry_t *reg,
                 const vdb_binding_t *binding,
                 const vdp_envelope_t *env,
                 char *reason,
                 size_t size)
{
    const char *who = binding->agency->org;
    if (env->to_count == 0) {
        if (env->tlp == VDP_TLP_RED)
            return vdp_errorf(reason, size, VD_ETLP, "TLP:RED needs a non-empty to list");
        return vdp_errorf(reason, size, VD_EFIELD, "topic inbox needs a non-empty to list");
    }
    if (env->to_count > VDP_MAX_TO)
        return vdp_errorf(reason, size, VD_EFIELD, "more than %u recipients", VDP_MAX_TO);
    assert(reg);
    for (size_t i = 0; i < env->to_count; i++) {
        const char *org = env->to[i];
        const vdp_agency_t *recipient = vdp_org_valid(org) ? vdb_registry_org(reg, org) : NULL;
        if (!recipient) {
            char shown[VDP_MAX_ORG + 1];
            vdp_sanitize(org, strnlen(org, VDP_MAX_ORG), shown, sizeof shown);
            return vdp_errorf(reason, size, VD_EFIELD, "unknown recipient %s", shown);
        }
        char topics[VDP_MAX_JUR][VDP_MAX_TOPIC + 1];
        size_t count = vdb_acl_inbox_topics(recipient, topics, VDP_MAX_JUR);
        vdp_tlp_t best = VDP_TLP_NONE;
        for (size_t k = 0; k < count; k++) {
            vdp_tlp_t ceiling = vdb_policy_ceiling(self, binding, VDB_ACTION_PUBLISH, topics[k]);
            if (ceiling > best)
                best = ceiling;
        }
        if (best == VDP_TLP_NONE)
            return vdp_errorf(reason, size, VD_EACCES, "%s may not send to %s", who, org);
        if (best < env->tlp)
            return vdp_errorf(reason, size, VD_ETLP, "%s may send to %s up to %s, not %s", who, org,
                              s_tlp_label(best), s_tlp_label(env->tlp));
        //  Recipients are known now: refuse what delivery would withhold, rather than accept
        //  a message that can never arrive.
        int rc = s_tlp_rules(env, recipient, "may not go to", reason, size);
        if (rc != VD_OK)
            return rc;
    }
    return VD_OK;
}

int
vdb_acl_check_publish(const vdb_policy_t *self,
                      const vdb_registry_t *reg,
                      const vdp_agency_t *who,
                      const vdp_envelope_t *env,
                      char *reason,
                      size_t reason_size)
{
    assert(self && who && env);
    s_clear(reason, reason_size);
    vdb_binding_t binding;
    if (vdb_binding_init(&binding, who) != VD_OK)
        return vdp_errorf(reason, reason_size, VD_EACCES, "key without a valid org and role");
    if (who->status == VDP_KEY_REVOKED)
        return vdp_errorf(reason, reason_size, VD_EACCES, "key of %s revoked", who->org);
    //  The rules below read the sender's role from env->sender: it must be the key's own org.
    //  Only a broker relays others' messages, and it answers to its own grants.
    if (who->role != VDP_ROLE_BROKER && strcmp(env->sender, who->org) != 0)
        return vdp_errorf(reason, reason_size, VD_ESENDER, "sender is not %s", who->org);
    if (!s_tlp_valid(env->tlp))
        return vdp_errorf(reason, reason_size, VD_ETLP, "TLP label missing or unknown");
    if (strcmp(env->topic, S_DIRECTED) == 0)
        return s_check_directed(self, reg, &binding, env, reason, reason_size);

    if (env->tlp == VDP_TLP_RED)
        return vdp_errorf(reason, reason_size, VD_ETLP,
                          "TLP:RED travels only on topic inbox, to the orgs in to");
    if (env->to_count > 0)
        return vdp_errorf(reason, reason_size, VD_EFIELD, "to is only allowed on topic inbox");
    if (!vdp_topic_valid(env->topic))
        return vdp_errorf(reason, reason_size, VD_EFIELD, "invalid topic");
    //  inbox.<j>.<org> topics are reached only through topic inbox and its `to` list, so that the
    //  directed-message rules (and RED's) cannot be sidestepped by naming the topic.
    if (s_inbox_subtopic(env->topic))
        return vdp_errorf(reason, reason_size, VD_EFIELD,
                          "publish directed messages on topic inbox with a to list");
    vdp_tlp_t ceiling = vdb_policy_ceiling(self, &binding, VDB_ACTION_PUBLISH, env->topic);
    if (ceiling == VDP_TLP_NONE)
        return vdp_errorf(reason, reason_size, VD_EACCES, "%s may not publish on %s", who->org,
                          env->topic);
    if (ceiling < env->tlp)
        return vdp_errorf(reason, reason_size, VD_ETLP, "%s may publish on %s up to %s, not %s",
                          who->org, env->topic, s_tlp_label(ceiling), s_tlp_label(env->tlp));
    return VD_OK;
}

int
vdb_acl_check_subscribe(const vdb_policy_t *self,
                        const vdp_agency_t *who,
                        const char *pattern,
                        char *reason,
                        size_t reason_size)
{
    assert(self && who);
    s_clear(reason, reason_size);
    if (!pattern || !vdp_pattern_valid(pattern)) {
        char shown[VDP_MAX_TOPIC + 1] = "";
        if (pattern)
            vdp_sanitize(pattern, strnlen(pattern, VDP_MAX_TOPIC), shown, sizeof shown);
        return vdp_errorf(reason, reason_size, VD_EINVAL, "invalid pattern '%s'", shown);
    }
    vdb_binding_t binding;
    if (vdb_binding_init(&binding, who) != VD_OK)
        return vdp_errorf(reason, reason_size, VD_EACCES, "key without a valid org and role");
    if (!vdb_policy_contains(self, &binding, VDB_ACTION_SUBSCRIBE, pattern))
        return vdp_errorf(reason, reason_size, VD_EACCES, "%s may not subscribe to %s", who->org,
                          pattern);
    return VD_OK;
}

int
vdb_acl_check_deliver(const vdb_policy_t *self,
                      const vdp_agency_t *to,
                      const vdp_envelope_t *env,
                      const char *topic,
                      char *reason,
                      size_t reason_size)
{
    assert(self && to && env && topic);
    s_clear(reason, reason_size);
    vdb_binding_t binding;
    if (vdb_binding_init(&binding, to) != VD_OK)
        return vdp_errorf(reason, reason_size, VD_EACCES, "key without a valid org and role");
    if (to->status == VDP_KEY_REVOKED)
        return vdp_errorf(reason, reason_size, VD_EACCES, "key of %s revoked", to->org);
    if (!s_tlp_valid(env->tlp))
        return vdp_errorf(reason, reason_size, VD_ETLP, "TLP label missing or unknown");
    if (strcmp(env->topic, S_DIRECTED) == 0) {
        //  A directed message reaches the orgs in its `to` list, whatever a policy grants.
        if (!s_listed(env, to->org))
            return vdp_errorf(reason, reason_size, env->tlp == VDP_TLP_RED ? VD_ETLP : VD_EACCES,
                              "%s withheld from %s (not a named recipient)", s_tlp_label(env->tlp),
                              to->org);
    } else {
        if (env->tlp == VDP_TLP_RED)
            return vdp_errorf(reason, reason_size, VD_ETLP,
                              "TLP:RED withheld from %s (RED travels only on inbox)", to->org);
        if (strcmp(topic, env->topic) != 0)
            return vdp_errorf(reason, reason_size, VD_EACCES,
                              "delivery topic differs from the message topic %s", env->topic);
    }
    vdp_tlp_t ceiling = vdb_policy_ceiling(self, &binding, VDB_ACTION_SUBSCRIBE, topic);
    if (ceiling == VDP_TLP_NONE)
        return vdp_errorf(reason, reason_size, VD_EACCES, "%s may not receive %s", to->org, topic);
    if (ceiling < env->tlp)
        return vdp_errorf(reason, reason_size, VD_ETLP, "%s withheld from %s (ceiling %s on %s)",
                          s_tlp_label(env->tlp), to->org, s_ceiling_label(ceiling), topic);
    return s_tlp_rules(env, to, "withheld from", reason, reason_size);
}

int
vdb_acl_check_ref(const vdp_envelope_t *env,
                  const char *ref_sender,
                  vdp_tlp_t ref_tlp,
                  char *reason,
                  size_t reason_size)
{
    assert(env && ref_sender);
    s_clear(reason, reason_size);
    //  FIRST: only the source may relax a label. Saying which label the original carried would
    //  tell the peer something about a message it may not have seen: keep the reason generic.
    if (s_tlp_valid(ref_tlp) && env->tlp < ref_tlp && strcmp(env->sender, ref_sender) != 0)
        return vdp_errorf(reason, reason_size, VD_ETLP,
                          "%s is lower than the referenced message's label; only its sender may "
                          "lower it",
                          s_tlp_label(env->tlp));
    return VD_OK;
}

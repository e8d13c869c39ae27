/*  vdb_acl: who may publish and receive what. The one place where access rules live:
    - the policy: grants read from a policy file (deploy/policy.vdp; syntax in docs/policy.md),
      each (role, action, topic pattern with $org $code $j, TLP ceiling);
    - the TLP 2.0 rules that no policy can relax (RED only to named recipients, AMBER+STRICT
      never to ANCI, a Comune's AMBER never to other Comuni or ANCI, ...), docs/policy.md §TLP;
    - the per-role rate limits the policy's rate lines set (vdb_policy_rates); the broker's
      token buckets enforce them, not this module.
    Invariants: no matching grant means deny; a policy is immutable once loaded (reload builds a
    new one and swaps it in whole); every denial comes with a reason fit for the peer and the log
    (written to `reason`, NUL-terminated and truncated to `reason_size`; `reason` may be NULL;
    VDP_MAX_REASON + 1 bytes always suffice for the whole text). Checks never allocate.

    Directed messages: a message whose topic is "inbox" goes to the orgs in its `to` list; for
    recipient r it is published and delivered on r's inbox topic "inbox.<j>.<org-slug>" (one per
    jurisdiction of r, e.g. "inbox.toscana.comune-i726"), and grants on those topics decide.  */

#ifndef VDB_ACL_H_INCLUDED
#define VDB_ACL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "vdb_registry.h"
#include "vdp_envelope.h"
#include "vdp_rate.h"

typedef struct vdb_policy_t vdb_policy_t;

/*  Parses policy text / a policy file. Any syntax error, unknown role/action/variable, bad TLP,
    bad or repeated rate line fails the whole policy, and so does a policy without any grant
    (rate lines are not grants): NULL with `err`
    ("policy.vdp:12: unknown role 'comun'"). `origin` (NULL: "policy") names the text in errors.
    A file over 1 MiB or holding a NUL byte is refused.
    Caller owns the result; free with vdb_policy_destroy(). Immutable once built: it may be
    shared by threads.  */
vdb_policy_t *vdb_policy_parse(const char *text, const char *origin, char *err, size_t err_size);
vdb_policy_t *vdb_policy_load(const char *path, char *err, size_t err_size);

//  The default policy shipped in deploy/policy.vdp, compiled into the broker.
const char *vdb_policy_default_text(void);

//  Frees the policy and sets *self_p to NULL. Accepts NULL and *self_p == NULL.
void vdb_policy_destroy(vdb_policy_t **self_p);

//  Number of grant lines (before $j expansion; rate lines are not grants); 0 for NULL.
size_t vdb_policy_grant_count(const vdb_policy_t *self);

typedef enum { VDB_RATE_KEY = 0, VDB_RATE_ORG = 1 } vdb_rate_scope_t;

//  Built-in defaults, for a role the policy gives no rate line of that scope.
#define VDB_RATE_KEY_MSGS  ((vdp_rate_t){ 2000, 10000 })
#define VDB_RATE_KEY_BYTES ((vdp_rate_t){ 16u << 20, 64u << 20 })
#define VDB_RATE_ORG_MSGS  ((vdp_rate_t){ 5000, 25000 })
#define VDB_RATE_ORG_BYTES ((vdp_rate_t){ 32u << 20, 128u << 20 })

/*  The limits of `scope` for agencies of `role`: the policy's rate-key / rate-org line for that
    role, else the built-in defaults above. Never fails; `msgs` and `bytes` always set.  */
void vdb_policy_rates(const vdb_policy_t *self,
                      vdp_role_t role,
                      vdb_rate_scope_t scope,
                      vdp_rate_t *msgs,
                      vdp_rate_t *bytes);

/*  The inbox topics of an org: "inbox.<j>.<slug>" for each of its jurisdictions. Writes up to
    `max` topics into `out` and returns how many (0 if the agency is invalid).  */
size_t vdb_acl_inbox_topics(const vdp_agency_t *agency, char out[][VDP_MAX_TOPIC + 1], size_t max);

/*  May `who` publish `env`? Checks the structural TLP rules (RED needs topic "inbox" and a
    non-empty `to`; "inbox" needs `to`; `to` only on "inbox"; "inbox.*" topics are never
    published directly), every recipient in `to` is a known org (`reg`), and a publish grant for
    `who` covers the topic (for "inbox": for each recipient, one of its inbox topics) with a
    ceiling at or above env->tlp. For directed messages the per-recipient TLP rules are applied
    here too (the recipients are known), so a message delivery would withhold is refused.
    `reg` may be NULL when env->topic is not "inbox".
    Returns VD_OK; VD_EACCES (no grant; revoked key); VD_ETLP (TLP label missing, TLP rule or
    ceiling); VD_EFIELD (unknown recipient, `to` misplaced or missing, invalid topic);
    VD_ESENDER (env->sender is not who->org; only role broker relays others' messages);
    with `reason`.  */
int vdb_acl_check_publish(const vdb_policy_t *self,
                          const vdb_registry_t *reg,
                          const vdp_agency_t *who,
                          const vdp_envelope_t *env,
                          char *reason,
                          size_t reason_size);

/*  May `who` subscribe to `pattern`? Yes iff some single subscribe grant of `who`, variables
    bound, contains the pattern (vdp_pattern_contains); a pattern covered only by the union of
    several grants is refused: subscribe to each part instead.
    Returns VD_OK, VD_EACCES, VD_EINVAL (not a valid pattern), with `reason`.  */
int vdb_acl_check_subscribe(const vdb_policy_t *self,
                            const vdp_agency_t *who,
                            const char *pattern,
                            char *reason,
                            size_t reason_size);

/*  May `to` receive `env` delivered on `topic` (env->topic, or the recipient's inbox topic for
    directed messages)? Re-checks a subscribe grant matching `topic` whose ceiling admits
    env->tlp, then the TLP rules per recipient. A directed message goes only to the orgs in its
    `to` list; any other message only on its own topic. Cost: no allocation; a few memcmp per
    grant of the recipient's role (see vdb_policy.h).
    Returns VD_OK, VD_EACCES (no grant; not a recipient; revoked key; `topic` is not the
    message's), VD_ETLP (withheld: over the ceiling or a TLP rule), with `reason`.  */
int vdb_acl_check_deliver(const vdb_policy_t *self,
                          const vdp_agency_t *to,
                          const vdp_envelope_t *env,
                          const char *topic,
                          char *reason,
                          size_t reason_size);

/*  No downgrade by others: a message referring to an earlier one of TLP `ref_tlp` sent by
    `ref_sender` may carry a lower TLP only if it comes from that same sender.
    A reference without a known TLP (`ref_tlp` VDP_TLP_NONE) constrains nothing.
    Returns VD_OK or VD_ETLP with `reason`.  */
int vdb_acl_check_ref(const vdp_envelope_t *env,
                      const char *ref_sender,
                      vdp_tlp_t ref_tlp,
                      char *reason,
                      size_t reason_size);

#endif

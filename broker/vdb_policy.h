/*  vdb_policy: the policy language (docs/policy.md): its parser and the compiled grants that
    vdb_acl evaluates. Private to the broker; the public entry points (vdb_policy_parse, _load,
    _destroy, _grant_count, _rates) are declared in vdb_acl.h.

    Compiled form: each grant's topic is split at parse time into segments, and each segment into
    literal runs and variables ($org, $code, $j). Grants are grouped per (role, action) and, in
    each group, indexed by their literal first segment ("alert", "report", ...). A check binds
    the agency (vdb_binding_init: a shape check and a short copy), splits the topic once, looks
    up its first segment among the group's heads and matches only those grants (plus any whose
    first segment is a wildcard or a variable) directly against the topic's segments: no
    string is built, nothing is allocated. Measured on the shipped policy: about 1000
    instructions (~150 ns) per vdb_acl_check_deliver, most of it binding and splitting; a bound
    agency cached per session would save the binding part, if ever needed.
    Invariants: a policy holds at least one grant; it is never modified after parsing, so one
    policy may be read from several threads at once.  */

#ifndef VDB_POLICY_H_INCLUDED
#define VDB_POLICY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "vdb_acl.h"
#include "vdp_agency.h"
#include "vdp_envelope.h"

typedef enum { VDB_ACTION_PUBLISH = 0, VDB_ACTION_SUBSCRIBE = 1 } vdb_action_t;

#define VDB_POLICY_MAX_GRANTS 4096u           // grants in one policy file
#define VDB_POLICY_MAX_BYTES  (1024u * 1024u) // size of one policy file

/*  The values an agency gives the policy's variables. Built on the stack per check; borrows the
    agency, which must outlive it.  */
typedef struct {
    const vdp_agency_t *agency; // borrowed
    char org[VDP_MAX_ORG + 1];  // $org: the org id in topic form, "comune-i726"
    size_t org_len;
    const char *code; // $code: borrowed from agency->org, "i726"
    size_t code_len;
    bool code_bindable;             // false for reserved codes: grants using $code skip
    size_t jur_len[VDP_MAX_JUR];    // $j: agency->jur[k]
    bool jur_bindable[VDP_MAX_JUR]; // false for reserved jurisdictions ("national" but
                                    // for cnaipic): grants using $j skip that value
} vdb_binding_t;

/*  Binds `agency`. Returns VD_OK, or VD_EINVAL if the agency cannot hold grants (no role, an org
    id that is invalid or not of its role, no jurisdiction). Jurisdictions are checked in full
    only where they become pattern text (vdb_policy_each_grant); matching cannot be fooled by
    them (see vdb_policy.c).  */
int vdb_binding_init(vdb_binding_t *self, const vdp_agency_t *agency);

/*  The highest ceiling among the `action` grants of the bound agency's role that match `topic`
    (a valid topic), or VDP_TLP_NONE if none does.  */
vdp_tlp_t vdb_policy_ceiling(const vdb_policy_t *self,
                             const vdb_binding_t *binding,
                             vdb_action_t action,
                             const char *topic);

/*  Calls fn(pattern, ceiling, line, arg) for each `action` grant of the bound agency's role, once
    per value of $j, with its variables bound; grants whose binding is not a valid pattern (a
    value too long, a reserved value) are skipped. `pattern` is borrowed for the call. Stops
    early when fn returns true, and then returns true.  */
typedef bool(vdb_policy_grant_fn)(const char *pattern, vdp_tlp_t ceiling, unsigned line, void *arg);
bool vdb_policy_each_grant(const vdb_policy_t *self,
                           const vdb_binding_t *binding,
                           vdb_action_t action,
                           vdb_policy_grant_fn *fn,
                           void *arg);

//  True if some bound `action` grant of the agency contains the valid `pattern`.
bool vdb_policy_contains(const vdb_policy_t *self,
                         const vdb_binding_t *binding,
                         vdb_action_t action,
                         const char *pattern);

#endif

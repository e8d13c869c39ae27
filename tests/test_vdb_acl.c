/*  vdb_acl suite: the shipped policy (deploy/policy.vdp, compiled in as vdb_policy_default_text())
    checked cell by cell against DESIGN.md §2's matrix, the TLP rules no policy can relax, the
    directed-message (inbox) model, subscription containment, the policy parser's errors, and
    the rate lines (per-role rate limits, their built-in defaults, the shipped values).  */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "suites.h"
#include "vedetta.h"
#include "vdb_acl.h"
#include "vdb_policy.h"
#include "vdb_registry.h"
#include "vdp_topic.h"

//  -------------------------------------------------------------------------------------------
//  The agencies: two Tuscan Comuni, a Sicilian one on each side of the island, each COSC, both
//  ANCI (ANCI Sicilia works with two COSCs), CNAIPIC.

typedef enum {
    I726,    // comune:i726, Siena (toscana)
    D612,    // comune:d612, Firenze (toscana)
    B429,    // comune:b429, Caltanissetta (sicilia-occ)
    C351,    // comune:c351, Catania (sicilia-or)
    COSC_T,  // cosc:toscana
    COSC_SO, // cosc:sicilia-occ
    COSC_SR, // cosc:sicilia-or
    ANCI_T,  // anci:toscana
    ANCI_S,  // anci:sicilia (sicilia-occ, sicilia-or)
    CNAIPIC, // cnaipic (national)
    S_AGENCIES
} s_who_t;

static const struct {
    const char *org;
    vdp_role_t role;
    const char *jur[2];
} s_parties[S_AGENCIES] = {
    [I726] = { "comune:i726", VDP_ROLE_COMUNE, { "toscana" } },
    [D612] = { "comune:d612", VDP_ROLE_COMUNE, { "toscana" } },
    [B429] = { "comune:b429", VDP_ROLE_COMUNE, { "sicilia-occ" } },
    [C351] = { "comune:c351", VDP_ROLE_COMUNE, { "sicilia-or" } },
    [COSC_T] = { "cosc:toscana", VDP_ROLE_COSC, { "toscana" } },
    [COSC_SO] = { "cosc:sicilia-occ", VDP_ROLE_COSC, { "sicilia-occ" } },
    [COSC_SR] = { "cosc:sicilia-or", VDP_ROLE_COSC, { "sicilia-or" } },
    [ANCI_T] = { "anci:toscana", VDP_ROLE_ANCI, { "toscana" } },
    [ANCI_S] = { "anci:sicilia", VDP_ROLE_ANCI, { "sicilia-occ", "sicilia-or" } },
    [CNAIPIC] = { "cnaipic", VDP_ROLE_CNAIPIC, { "national" } },
};

static vdp_agency_t s_agency[S_AGENCIES];
static vdb_policy_t *s_policy;
static vdb_registry_t *s_registry;

static void
s_make_agency(vdp_agency_t *agency,
              const char *org,
              vdp_role_t role,
              const char *const *jur,
              size_t jur_count)
{
    memset(agency, 0, sizeof *agency);
    snprintf(agency->org, sizeof agency->org, "%s", org);
    snprintf(agency->name, sizeof agency->name, "Test %s", org);
    agency->role = role;
    for (size_t k = 0; k < jur_count; k++)
        snprintf(agency->jur[k], sizeof agency->jur[k], "%s", jur[k]);
    agency->jur_count = jur_count;
    snprintf(agency->label, sizeof agency->label, "default");
    char curve_secret[VDP_KEY_Z85_LEN + 1];
    ck_assert_int_eq(zmq_curve_keypair(agency->curve_public, curve_secret), 0);
    uint8_t sign_public[crypto_sign_PUBLICKEYBYTES];
    uint8_t sign_secret[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(sign_public, sign_secret);
    ck_assert_ptr_nonnull(zmq_z85_encode(agency->sign_public, sign_public, sizeof sign_public));
    sodium_memzero(curve_secret, sizeof curve_secret);
    sodium_memzero(sign_secret, sizeof sign_secret);
    agency->status = VDP_KEY_ACTIVE;
}

static vdb_policy_t *
s_parse(const char *text)
{
    char err[256];
    vdb_policy_t *policy = vdb_policy_parse(text, "test.vdp", err, sizeof err);
    ck_assert_msg(policy != NULL, "policy: %s", err);
    return policy;
}

static void
s_setup(void)
{
    ck_assert_int_ge(sodium_init(), 0);
    s_registry = vdb_registry_new();
    ck_assert_ptr_nonnull(s_registry);
    for (size_t a = 0; a < S_AGENCIES; a++) {
        size_t jur_count = s_parties[a].jur[1] ? 2 : 1;
        s_make_agency(&s_agency[a], s_parties[a].org, s_parties[a].role, s_parties[a].jur,
                      jur_count);
        char err[256] = "";
        ck_assert_msg(vdb_registry_add(s_registry, &s_agency[a], err, sizeof err) == VD_OK,
                      "registry: %s", err);
    }
    s_policy = s_parse(vdb_policy_default_text());
}

static void
s_teardown(void)
{
    vdb_policy_destroy(&s_policy);
    ck_assert_ptr_null(s_policy);
    vdb_registry_destroy(&s_registry);
    ck_assert_ptr_null(s_registry);
}

//  An envelope from `sender` on `topic` with TLP `tlp`; `to` is a comma-separated list or NULL.
static void
s_envelope(
    vdp_envelope_t *env, const char *sender, const char *topic, vdp_tlp_t tlp, const char *to)
{
    memset(env, 0, sizeof *env);
    env->v = 1;
    snprintf(env->id, sizeof env->id, "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab");
    snprintf(env->sender, sizeof env->sender, "%s", sender);
    snprintf(env->topic, sizeof env->topic, "%s", topic);
    env->kind = VDP_KIND_ALERT;
    env->status = VDP_STATUS_ACTUAL;
    env->tlp = tlp;
    snprintf(env->category, sizeof env->category, "intrusions");
    env->severity = VDP_SEVERITY_MODERATE;
    snprintf(env->ctype, sizeof env->ctype, "text/plain");
    for (const char *p = to; p && *p && env->to_count < VDP_MAX_TO;) {
        size_t len = strcspn(p, ",");
        snprintf(env->to[env->to_count++], VDP_MAX_ORG + 1, "%.*s", (int)len, p);
        p += len + (p[len] == ',');
    }
}

static const char *
s_rc(int rc)
{
    return vd_strerror_name(rc);
}

//  -------------------------------------------------------------------------------------------
//  DESIGN.md §2, publish and subscribe, row by row; every role's column in each row, with own vs
//  other Comune and own vs other jurisdiction. Publish rows use TLP:GREEN (ceilings below).

#define ALLOW    VD_OK
#define DENY     VD_EACCES // no grant
#define WITHHOLD VD_ETLP   // a ceiling or a TLP rule
#define BADFIELD VD_EFIELD

typedef struct {
    s_who_t who;
    const char *topic;
    int rc;
} s_cell_t;

static const s_cell_t s_publish[] = {
    //  alert.<j>.<c>: comune P own; cosc, anci, cnaipic do not publish
    { I726, "alert.toscana.i726", ALLOW },
    { I726, "alert.toscana.i726.siem", ALLOW },
    { I726, "alert.toscana.d612", DENY },
    { I726, "alert.toscana.d612.siem", DENY },
    { I726, "alert.sicilia-occ.b429", DENY },
    { I726, "alert.sicilia-occ.i726", DENY },
    { B429, "alert.sicilia-occ.b429", ALLOW },
    { B429, "alert.sicilia-occ.b4290", DENY },
    { COSC_T, "alert.toscana.i726", DENY },
    { ANCI_T, "alert.toscana.i726", DENY },
    { CNAIPIC, "alert.toscana.i726", DENY },
    //  report.<j>.<c>: comune P own
    { I726, "report.toscana.i726", ALLOW },
    { I726, "report.toscana.d612", DENY },
    { B429, "report.toscana.b429", DENY },
    { COSC_T, "report.toscana.i726", DENY },
    { ANCI_T, "report.toscana.i726", DENY },
    { CNAIPIC, "report.toscana.i726", DENY },
    //  bulletin.<j>: cosc P
    { COSC_T, "bulletin.toscana", ALLOW },
    { COSC_T, "bulletin.sicilia-occ", DENY },
    { COSC_SO, "bulletin.sicilia-occ", ALLOW },
    { I726, "bulletin.toscana", DENY },
    { ANCI_T, "bulletin.toscana", DENY },
    { CNAIPIC, "bulletin.toscana", DENY },
    //  bulletin.national: cnaipic P
    { CNAIPIC, "bulletin.national", ALLOW },
    { COSC_T, "bulletin.national", DENY },
    { I726, "bulletin.national", DENY },
    { ANCI_T, "bulletin.national", DENY },
    //  training.<j>: cosc P, anci P
    { COSC_T, "training.toscana", ALLOW },
    { COSC_T, "training.sicilia-occ", DENY },
    { ANCI_T, "training.toscana", ALLOW },
    { ANCI_T, "training.sicilia-occ", DENY },
    { ANCI_S, "training.sicilia-occ", ALLOW },
    { ANCI_S, "training.sicilia-or", ALLOW },
    { I726, "training.toscana", DENY },
    { CNAIPIC, "training.toscana", DENY },
    //  emergency.<j>.all: cosc P, cnaipic P
    { COSC_T, "emergency.toscana.all", ALLOW },
    { COSC_T, "emergency.sicilia-occ.all", DENY },
    { CNAIPIC, "emergency.toscana.all", ALLOW },
    { CNAIPIC, "emergency.sicilia-or.all", ALLOW },
    { I726, "emergency.toscana.all", DENY },
    { ANCI_T, "emergency.toscana.all", DENY },
    //  emergency.<j>.<c>: comune P own, cosc P
    { I726, "emergency.toscana.i726", ALLOW },
    { I726, "emergency.toscana.d612", DENY },
    { COSC_T, "emergency.toscana.i726", ALLOW },
    { COSC_T, "emergency.sicilia-occ.b429", DENY },
    { ANCI_T, "emergency.toscana.i726", DENY },
    { CNAIPIC, "emergency.toscana.i726", DENY },
    //  emergency.national: cnaipic P
    { CNAIPIC, "emergency.national", ALLOW },
    { COSC_T, "emergency.national", DENY },
    { I726, "emergency.national", DENY },
    { ANCI_T, "emergency.national", DENY },
    //  digest.<j>: cosc P
    { COSC_T, "digest.toscana", ALLOW },
    { COSC_T, "digest.sicilia-occ", DENY },
    { I726, "digest.toscana", DENY },
    { ANCI_T, "digest.toscana", DENY },
    { CNAIPIC, "digest.toscana", DENY },
    //  topics outside the matrix
    { CNAIPIC, "sys.national", DENY },
    { COSC_T, "alerts.toscana.i726", DENY },
};

static const s_cell_t s_subscribe[] = {
    //  alert.<j>.<c>: comune S own, cosc S, cnaipic S, anci -
    { I726, "alert.toscana.i726", ALLOW },
    { I726, "alert.toscana.i726.>", ALLOW },
    { I726, "alert.toscana.d612", DENY },
    { I726, "alert.toscana.b429", DENY },
    { I726, "alert.toscana.*", DENY },
    { COSC_T, "alert.toscana.i726", ALLOW },
    { COSC_T, "alert.toscana.*", ALLOW },
    { COSC_T, "alert.toscana.>", ALLOW },
    { COSC_T, "alert.sicilia-occ.b429", DENY },
    { COSC_T, "alert.>", DENY },
    { COSC_T, "alert.*.i726", DENY },
    { ANCI_T, "alert.toscana.i726", DENY },
    { CNAIPIC, "alert.toscana.i726", ALLOW },
    { CNAIPIC, "alert.sicilia-occ.b429", ALLOW },
    { CNAIPIC, "alert.>", ALLOW },
    { CNAIPIC, ">", DENY },
    //  report.<j>.<c>: comune S own, cosc S, anci S, cnaipic S
    { I726, "report.toscana.i726", ALLOW },
    { I726, "report.toscana.d612", DENY },
    { COSC_T, "report.toscana.i726", ALLOW },
    { COSC_T, "report.sicilia-occ.b429", DENY },
    { ANCI_T, "report.toscana.i726", ALLOW },
    { ANCI_T, "report.toscana.*", ALLOW },
    { ANCI_T, "report.toscana.>", DENY },
    { ANCI_T, "report.sicilia-occ.b429", DENY },
    { CNAIPIC, "report.sicilia-or.c351", ALLOW },
    //  inbox.<j>.<org>: each its own
    { I726, "inbox.toscana.comune-i726", ALLOW },
    { I726, "inbox.toscana.comune-d612", DENY },
    { I726, "inbox.toscana.*", DENY },
    { COSC_T, "inbox.toscana.cosc-toscana", ALLOW },
    { COSC_T, "inbox.toscana.comune-i726", DENY },
    { ANCI_T, "inbox.toscana.anci-toscana", ALLOW },
    { ANCI_S, "inbox.sicilia-occ.anci-sicilia", ALLOW },
    { ANCI_S, "inbox.sicilia-or.anci-sicilia", ALLOW },
    { CNAIPIC, "inbox.national.cnaipic", ALLOW },
    { CNAIPIC, "inbox.toscana.comune-i726", DENY },
    { CNAIPIC, "inbox.>", DENY },
    //  bulletin.<j>: everyone S (own jurisdiction; cnaipic all)
    { I726, "bulletin.toscana", ALLOW },
    { I726, "bulletin.sicilia-occ", DENY },
    { COSC_T, "bulletin.toscana", ALLOW },
    { ANCI_T, "bulletin.toscana", ALLOW },
    { CNAIPIC, "bulletin.toscana", ALLOW },
    { CNAIPIC, "bulletin.*", ALLOW },
    //  bulletin.national: everyone S
    { I726, "bulletin.national", ALLOW },
    { COSC_T, "bulletin.national", ALLOW },
    { ANCI_T, "bulletin.national", ALLOW },
    { CNAIPIC, "bulletin.national", ALLOW },
    //  training.<j>: everyone S
    { I726, "training.toscana", ALLOW },
    { B429, "training.toscana", DENY },
    { COSC_T, "training.toscana", ALLOW },
    { ANCI_T, "training.toscana", ALLOW },
    { CNAIPIC, "training.toscana", ALLOW },
    //  emergency.<j>.all: everyone S
    { I726, "emergency.toscana.all", ALLOW },
    { I726, "emergency.sicilia-occ.all", DENY },
    { COSC_T, "emergency.toscana.all", ALLOW },
    { ANCI_T, "emergency.toscana.all", ALLOW },
    { CNAIPIC, "emergency.toscana.all", ALLOW },
    //  emergency.<j>.<c>: comune S own, cosc S, cnaipic S, anci -
    { I726, "emergency.toscana.i726", ALLOW },
    { I726, "emergency.toscana.d612", DENY },
    { COSC_T, "emergency.toscana.i726", ALLOW },
    { COSC_T, "emergency.toscana.*", ALLOW },
    { COSC_T, "emergency.sicilia-occ.b429", DENY },
    { ANCI_T, "emergency.toscana.i726", DENY },
    { ANCI_T, "emergency.toscana.*", DENY },
    { CNAIPIC, "emergency.toscana.i726", ALLOW },
    { CNAIPIC, "emergency.>", ALLOW },
    //  emergency.national: everyone S
    { I726, "emergency.national", ALLOW },
    { COSC_T, "emergency.national", ALLOW },
    { ANCI_T, "emergency.national", ALLOW },
    { CNAIPIC, "emergency.national", ALLOW },
    //  digest.<j>: everyone S
    { I726, "digest.toscana", ALLOW },
    { COSC_T, "digest.toscana", ALLOW },
    { ANCI_T, "digest.toscana", ALLOW },
    { ANCI_T, "digest.sicilia-occ", DENY },
    { CNAIPIC, "digest.toscana", ALLOW },
    //  directed messages are received on inbox topics, never on "inbox" itself
    { CNAIPIC, "inbox", DENY },
};

START_TEST(matrix_publish)
{
    const s_cell_t *cell = &s_publish[_i];
    const vdp_agency_t *who = &s_agency[cell->who];
    vdp_envelope_t env;
    s_envelope(&env, who->org, cell->topic, VDP_TLP_GREEN, NULL);
    char reason[VDP_MAX_REASON + 1];
    int rc = vdb_acl_check_publish(s_policy, s_registry, who, &env, reason, sizeof reason);
    ck_assert_msg(rc == cell->rc, "%s publish %s: %s (%s), expected %s", who->org, cell->topic,
                  s_rc(rc), reason, s_rc(cell->rc));
    if (rc != VD_OK)
        ck_assert_str_ne(reason, "");
}
END_TEST

//  RED never travels outside an inbox, even where every other label may be published.
START_TEST(matrix_publish_red_refused)
{
    const s_cell_t *cell = &s_publish[_i];
    if (cell->rc != VD_OK)
        return;
    const vdp_agency_t *who = &s_agency[cell->who];
    vdp_envelope_t env;
    s_envelope(&env, who->org, cell->topic, VDP_TLP_RED, NULL);
    char reason[VDP_MAX_REASON + 1];
    int rc = vdb_acl_check_publish(s_policy, s_registry, who, &env, reason, sizeof reason);
    ck_assert_msg(rc == VD_ETLP, "%s RED on %s: %s", who->org, cell->topic, s_rc(rc));
    ck_assert_ptr_nonnull(strstr(reason, "TLP:RED"));
}
END_TEST

START_TEST(matrix_subscribe)
{
    const s_cell_t *cell = &s_subscribe[_i];
    const vdp_agency_t *who = &s_agency[cell->who];
    char reason[VDP_MAX_REASON + 1];
    int rc = vdb_acl_check_subscribe(s_policy, who, cell->topic, reason, sizeof reason);
    ck_assert_msg(rc == cell->rc, "%s subscribe %s: %s (%s), expected %s", who->org, cell->topic,
                  s_rc(rc), reason, s_rc(cell->rc));
}
END_TEST

//  A subscription granted is one whose concrete topics are delivered (at CLEAR), and a concrete
//  subscription refused is one whose topic is not: subscribe and deliver agree.
START_TEST(matrix_subscribe_agrees_with_deliver)
{
    const s_cell_t *cell = &s_subscribe[_i];
    if (!vdp_topic_valid(cell->topic) || strncmp(cell->topic, "inbox", 5) == 0)
        return; // patterns, and directed messages (tested below)
    const vdp_agency_t *to = &s_agency[cell->who];
    vdp_envelope_t env;
    s_envelope(&env, "cnaipic", cell->topic, VDP_TLP_CLEAR, NULL);
    char reason[VDP_MAX_REASON + 1];
    int rc = vdb_acl_check_deliver(s_policy, to, &env, cell->topic, reason, sizeof reason);
    ck_assert_msg(rc == cell->rc, "%s receive %s: %s (%s)", to->org, cell->topic, s_rc(rc), reason);
}
END_TEST

//  -------------------------------------------------------------------------------------------
//  Ceilings: the highest TLP each subscriber receives, and one above it.

typedef struct {
    s_who_t from;
    s_who_t to;
    const char *topic;
    vdp_tlp_t tlp;
    int rc;
} s_delivery_t;

static const s_delivery_t s_deliver[] = {
    //  alert: cosc and cnaipic up to AMBER+STRICT; the Comune's own keys too; nobody else
    { I726, COSC_T, "alert.toscana.i726", VDP_TLP_AMBER_STRICT, ALLOW },
    { I726, CNAIPIC, "alert.toscana.i726", VDP_TLP_AMBER_STRICT, ALLOW },
    { I726, I726, "alert.toscana.i726", VDP_TLP_AMBER_STRICT, ALLOW },
    { I726, I726, "alert.toscana.i726.siem", VDP_TLP_AMBER_STRICT, ALLOW },
    { I726, COSC_T, "alert.toscana.i726.siem", VDP_TLP_AMBER, ALLOW },
    { I726, ANCI_T, "alert.toscana.i726", VDP_TLP_CLEAR, DENY },
    { I726, D612, "alert.toscana.i726", VDP_TLP_CLEAR, DENY },
    { I726, COSC_SO, "alert.toscana.i726", VDP_TLP_CLEAR, DENY },
    { B429, B429, "alert.sicilia-occ.b4290", VDP_TLP_CLEAR, DENY },
    //  report: ANCI up to GREEN; cosc and cnaipic up to AMBER+STRICT
    { I726, ANCI_T, "report.toscana.i726", VDP_TLP_GREEN, ALLOW },
    { I726, ANCI_T, "report.toscana.i726", VDP_TLP_AMBER, WITHHOLD },
    { I726, ANCI_T, "report.toscana.i726", VDP_TLP_AMBER_STRICT, WITHHOLD },
    { I726, COSC_T, "report.toscana.i726", VDP_TLP_AMBER_STRICT, ALLOW },
    { I726, CNAIPIC, "report.toscana.i726", VDP_TLP_AMBER_STRICT, ALLOW },
    { B429, ANCI_S, "report.sicilia-occ.b429", VDP_TLP_GREEN, ALLOW },
    { C351, ANCI_S, "report.sicilia-or.c351", VDP_TLP_GREEN, ALLOW },
    { C351, ANCI_S, "report.sicilia-or.c351", VDP_TLP_AMBER, WITHHOLD },
    { I726, ANCI_S, "report.toscana.i726", VDP_TLP_CLEAR, DENY },
    { I726, D612, "report.toscana.i726", VDP_TLP_CLEAR, DENY },
    //  bulletin.<j>: ANCI up to GREEN; Comuni, cnaipic up to AMBER+STRICT
    { COSC_T, I726, "bulletin.toscana", VDP_TLP_AMBER_STRICT, ALLOW },
    { COSC_T, ANCI_T, "bulletin.toscana", VDP_TLP_GREEN, ALLOW },
    { COSC_T, ANCI_T, "bulletin.toscana", VDP_TLP_AMBER, WITHHOLD },
    { COSC_T, CNAIPIC, "bulletin.toscana", VDP_TLP_AMBER_STRICT, ALLOW },
    { COSC_T, B429, "bulletin.toscana", VDP_TLP_CLEAR, DENY },
    //  bulletin.national: ANCI up to GREEN
    { CNAIPIC, ANCI_S, "bulletin.national", VDP_TLP_GREEN, ALLOW },
    { CNAIPIC, ANCI_S, "bulletin.national", VDP_TLP_AMBER, WITHHOLD },
    { CNAIPIC, COSC_SR, "bulletin.national", VDP_TLP_AMBER_STRICT, ALLOW },
    { CNAIPIC, C351, "bulletin.national", VDP_TLP_AMBER_STRICT, ALLOW },
    //  training.<j>: ANCI up to AMBER
    { COSC_T, ANCI_T, "training.toscana", VDP_TLP_AMBER, ALLOW },
    { COSC_T, ANCI_T, "training.toscana", VDP_TLP_AMBER_STRICT, WITHHOLD },
    { ANCI_T, I726, "training.toscana", VDP_TLP_AMBER, ALLOW },
    { ANCI_T, COSC_T, "training.toscana", VDP_TLP_AMBER, ALLOW },
    //  emergency.<j>.all: ANCI up to GREEN
    { COSC_T, ANCI_T, "emergency.toscana.all", VDP_TLP_GREEN, ALLOW },
    { COSC_T, ANCI_T, "emergency.toscana.all", VDP_TLP_AMBER, WITHHOLD },
    { CNAIPIC, I726, "emergency.toscana.all", VDP_TLP_AMBER_STRICT, ALLOW },
    { CNAIPIC, B429, "emergency.toscana.all", VDP_TLP_CLEAR, DENY },
    //  emergency.<j>.<c>: the Comune, its COSC and cnaipic; not ANCI, not another Comune
    { I726, COSC_T, "emergency.toscana.i726", VDP_TLP_AMBER_STRICT, ALLOW },
    { COSC_T, I726, "emergency.toscana.i726", VDP_TLP_AMBER_STRICT, ALLOW },
    { I726, CNAIPIC, "emergency.toscana.i726", VDP_TLP_AMBER_STRICT, ALLOW },
    { I726, ANCI_T, "emergency.toscana.i726", VDP_TLP_CLEAR, DENY },
    { I726, D612, "emergency.toscana.i726", VDP_TLP_CLEAR, DENY },
    //  emergency.national: ANCI up to AMBER
    { CNAIPIC, ANCI_T, "emergency.national", VDP_TLP_AMBER, ALLOW },
    { CNAIPIC, ANCI_T, "emergency.national", VDP_TLP_AMBER_STRICT, WITHHOLD },
    { CNAIPIC, B429, "emergency.national", VDP_TLP_AMBER_STRICT, ALLOW },
    //  digest.<j>: ANCI up to AMBER
    { COSC_T, ANCI_T, "digest.toscana", VDP_TLP_AMBER, ALLOW },
    { COSC_T, ANCI_T, "digest.toscana", VDP_TLP_AMBER_STRICT, WITHHOLD },
    { COSC_T, D612, "digest.toscana", VDP_TLP_AMBER_STRICT, ALLOW },
    //  RED never goes out on a fan-out topic
    { COSC_T, I726, "bulletin.toscana", VDP_TLP_RED, WITHHOLD },
    { I726, COSC_T, "alert.toscana.i726", VDP_TLP_RED, WITHHOLD },
};

START_TEST(ceiling_deliver)
{
    const s_delivery_t *d = &s_deliver[_i];
    const vdp_agency_t *to = &s_agency[d->to];
    vdp_envelope_t env;
    s_envelope(&env, s_agency[d->from].org, d->topic, d->tlp, NULL);
    char reason[VDP_MAX_REASON + 1];
    int rc = vdb_acl_check_deliver(s_policy, to, &env, d->topic, reason, sizeof reason);
    ck_assert_msg(rc == d->rc, "%s -> %s on %s at %s: %s (%s), expected %s", env.sender, to->org,
                  d->topic, vdp_tlp_name(d->tlp), s_rc(rc), reason, s_rc(d->rc));
}
END_TEST

typedef struct {
    s_who_t who;
    const char *topic;
    vdp_tlp_t tlp;
    int rc;
} s_publish_tlp_t;

static const s_publish_tlp_t s_publish_ceiling[] = {
    { I726, "alert.toscana.i726", VDP_TLP_AMBER_STRICT, ALLOW },
    { I726, "report.toscana.i726", VDP_TLP_CLEAR, ALLOW },
    { COSC_T, "bulletin.toscana", VDP_TLP_AMBER_STRICT, ALLOW },
    { ANCI_T, "training.toscana", VDP_TLP_AMBER, ALLOW },
    { ANCI_T, "training.toscana", VDP_TLP_AMBER_STRICT, WITHHOLD },
    { CNAIPIC, "emergency.national", VDP_TLP_AMBER_STRICT, ALLOW },
    { CNAIPIC, "emergency.national", VDP_TLP_NONE, WITHHOLD },
    { CNAIPIC, "emergency.national", (vdp_tlp_t)42, WITHHOLD },
};

START_TEST(ceiling_publish)
{
    const s_publish_tlp_t *c = &s_publish_ceiling[_i];
    const vdp_agency_t *who = &s_agency[c->who];
    vdp_envelope_t env;
    s_envelope(&env, who->org, c->topic, c->tlp, NULL);
    char reason[VDP_MAX_REASON + 1];
    int rc = vdb_acl_check_publish(s_policy, s_registry, who, &env, reason, sizeof reason);
    ck_assert_msg(rc == c->rc, "%s on %s: %s (%s)", who->org, c->topic, s_rc(rc), reason);
}
END_TEST

START_TEST(ceiling_reasons)
{
    char reason[VDP_MAX_REASON + 1];
    vdp_envelope_t env;
    s_envelope(&env, "comune:i726", "report.toscana.i726", VDP_TLP_AMBER, NULL);
    ck_assert_int_eq(
        vdb_acl_check_deliver(s_policy, &s_agency[ANCI_T], &env, env.topic, reason, sizeof reason),
        VD_ETLP);
    ck_assert_str_eq(reason,
                     "TLP:AMBER withheld from anci:toscana (ceiling GREEN on report.toscana.i726)");
    s_envelope(&env, "comune:i726", "alert.toscana.b429", VDP_TLP_GREEN, NULL);
    ck_assert_int_eq(
        vdb_acl_check_publish(s_policy, s_registry, &s_agency[I726], &env, reason, sizeof reason),
        VD_EACCES);
    ck_assert_str_eq(reason, "comune:i726 may not publish on alert.toscana.b429");
    ck_assert_int_eq(
        vdb_acl_check_subscribe(s_policy, &s_agency[COSC_T], "alert.>", reason, sizeof reason),
        VD_EACCES);
    ck_assert_str_eq(reason, "cosc:toscana may not subscribe to alert.>");
    //  a NULL or short reason buffer is fine
    ck_assert_int_eq(vdb_acl_check_subscribe(s_policy, &s_agency[COSC_T], "alert.>", NULL, 0),
                     VD_EACCES);
    char tiny[8];
    ck_assert_int_eq(
        vdb_acl_check_subscribe(s_policy, &s_agency[COSC_T], "alert.>", tiny, sizeof tiny),
        VD_EACCES);
    ck_assert_uint_eq(strlen(tiny), sizeof tiny - 1);
}
END_TEST

//  -------------------------------------------------------------------------------------------
//  Directed messages: topic "inbox" with a `to` list, granted per recipient's inbox topic.

typedef struct {
    s_who_t who;
    const char *to;
    vdp_tlp_t tlp;
    int rc;
} s_directed_t;

static const s_directed_t s_directed[] = {
    //  Comune -> its own COSC only
    { I726, "cosc:toscana", VDP_TLP_RED, ALLOW },
    { I726, "cosc:toscana", VDP_TLP_AMBER, ALLOW },
    { I726, "cosc:sicilia-occ", VDP_TLP_GREEN, DENY },
    { I726, "comune:d612", VDP_TLP_GREEN, DENY },
    { I726, "anci:toscana", VDP_TLP_GREEN, DENY },
    { I726, "cnaipic", VDP_TLP_GREEN, DENY },
    { I726, "comune:i726", VDP_TLP_GREEN, DENY },
    { B429, "cosc:sicilia-occ", VDP_TLP_RED, ALLOW },
    { B429, "cosc:sicilia-or", VDP_TLP_GREEN, DENY },
    //  COSC -> its Comuni, its ANCI, CNAIPIC; not another region's Comune or COSC
    { COSC_T, "comune:i726", VDP_TLP_RED, ALLOW },
    { COSC_T, "comune:i726,comune:d612", VDP_TLP_AMBER_STRICT, ALLOW },
    { COSC_T, "anci:toscana", VDP_TLP_RED, ALLOW },
    { COSC_T, "anci:toscana", VDP_TLP_AMBER, ALLOW },
    { COSC_T, "cnaipic", VDP_TLP_RED, ALLOW },
    { COSC_T, "comune:b429", VDP_TLP_GREEN, DENY },
    { COSC_T, "cosc:sicilia-occ", VDP_TLP_GREEN, DENY },
    { COSC_T, "anci:sicilia", VDP_TLP_GREEN, DENY },
    { COSC_SO, "anci:sicilia", VDP_TLP_GREEN, ALLOW },
    { COSC_SR, "anci:sicilia", VDP_TLP_GREEN, ALLOW },
    { COSC_SR, "comune:c351", VDP_TLP_RED, ALLOW },
    { COSC_SR, "comune:b429", VDP_TLP_GREEN, DENY },
    //  ANCI -> its COSC (both, for ANCI Sicilia)
    { ANCI_T, "cosc:toscana", VDP_TLP_RED, ALLOW },
    { ANCI_T, "cosc:sicilia-occ", VDP_TLP_GREEN, DENY },
    { ANCI_T, "comune:i726", VDP_TLP_GREEN, DENY },
    { ANCI_T, "cnaipic", VDP_TLP_GREEN, DENY },
    { ANCI_S, "cosc:sicilia-occ,cosc:sicilia-or", VDP_TLP_RED, ALLOW },
    { ANCI_S, "cosc:toscana", VDP_TLP_GREEN, DENY },
    //  CNAIPIC -> anyone
    { CNAIPIC, "comune:b429", VDP_TLP_RED, ALLOW },
    { CNAIPIC, "cosc:toscana,comune:i726,anci:sicilia", VDP_TLP_RED, ALLOW },
    { CNAIPIC, "comune:c351", VDP_TLP_GREEN, ALLOW },
    //  one recipient refused refuses the message
    { I726, "cosc:toscana,cnaipic", VDP_TLP_GREEN, DENY },
    //  recipients must be known orgs
    { CNAIPIC, "comune:z999", VDP_TLP_GREEN, BADFIELD },
    { CNAIPIC, "comune:i726,comune:z999", VDP_TLP_GREEN, BADFIELD },
    { CNAIPIC, "not an org", VDP_TLP_GREEN, BADFIELD },
    //  structure: inbox needs a to list; RED needs one too
    { CNAIPIC, NULL, VDP_TLP_GREEN, BADFIELD },
    { CNAIPIC, NULL, VDP_TLP_RED, WITHHOLD },
    //  the TLP rules, known at publish: no AMBER+STRICT to ANCI
    { COSC_T, "anci:toscana", VDP_TLP_AMBER_STRICT, WITHHOLD },
    { CNAIPIC, "anci:sicilia", VDP_TLP_AMBER_STRICT, WITHHOLD },
};

START_TEST(inbox_publish)
{
    const s_directed_t *d = &s_directed[_i];
    const vdp_agency_t *who = &s_agency[d->who];
    vdp_envelope_t env;
    s_envelope(&env, who->org, "inbox", d->tlp, d->to);
    char reason[VDP_MAX_REASON + 1];
    int rc = vdb_acl_check_publish(s_policy, s_registry, who, &env, reason, sizeof reason);
    ck_assert_msg(rc == d->rc, "%s -> [%s] at %s: %s (%s), expected %s", who->org,
                  d->to ? d->to : "", vdp_tlp_name(d->tlp), s_rc(rc), reason, s_rc(d->rc));
}
END_TEST

//  Every accepted directed message is delivered to each recipient on its inbox topic, and to
//  no other party on that party's inbox.
START_TEST(inbox_deliver_reaches_only_recipients)
{
    const s_directed_t *d = &s_directed[_i];
    if (d->rc != VD_OK)
        return;
    vdp_envelope_t env;
    s_envelope(&env, s_agency[d->who].org, "inbox", d->tlp, d->to);
    for (size_t a = 0; a < S_AGENCIES; a++) {
        const vdp_agency_t *to = &s_agency[a];
        bool listed = false;
        for (size_t k = 0; k < env.to_count; k++)
            listed |= strcmp(env.to[k], to->org) == 0;
        char topics[VDP_MAX_JUR][VDP_MAX_TOPIC + 1];
        size_t count = vdb_acl_inbox_topics(to, topics, VDP_MAX_JUR);
        ck_assert_uint_eq(count, to->jur_count);
        for (size_t k = 0; k < count; k++) {
            char reason[VDP_MAX_REASON + 1];
            int rc = vdb_acl_check_deliver(s_policy, to, &env, topics[k], reason, sizeof reason);
            int want = listed ? VD_OK : d->tlp == VDP_TLP_RED ? VD_ETLP : VD_EACCES;
            ck_assert_msg(rc == want, "%s on %s: %s (%s)", to->org, topics[k], s_rc(rc), reason);
        }
    }
}
END_TEST

START_TEST(inbox_structure)
{
    char reason[VDP_MAX_REASON + 1];
    vdp_envelope_t env;
    //  `to` only on inbox
    s_envelope(&env, "comune:i726", "alert.toscana.i726", VDP_TLP_GREEN, "cosc:toscana");
    ck_assert_int_eq(
        vdb_acl_check_publish(s_policy, s_registry, &s_agency[I726], &env, reason, sizeof reason),
        VD_EFIELD);
    //  inbox topics are not published on directly, even where the grant would match
    s_envelope(&env, "comune:i726", "inbox.toscana.cosc-toscana", VDP_TLP_GREEN, NULL);
    ck_assert_int_eq(
        vdb_acl_check_publish(s_policy, s_registry, &s_agency[I726], &env, reason, sizeof reason),
        VD_EFIELD);
    s_envelope(&env, "comune:i726", "inbox.toscana.cosc-toscana", VDP_TLP_RED, NULL);
    ck_assert_int_eq(
        vdb_acl_check_publish(s_policy, s_registry, &s_agency[I726], &env, reason, sizeof reason),
        VD_ETLP);
    //  the sender must be the key's org
    s_envelope(&env, "comune:d612", "alert.toscana.d612", VDP_TLP_GREEN, NULL);
    ck_assert_int_eq(
        vdb_acl_check_publish(s_policy, s_registry, &s_agency[I726], &env, reason, sizeof reason),
        VD_ESENDER);
    //  an invalid topic
    s_envelope(&env, "comune:i726", "Alert.toscana.i726", VDP_TLP_GREEN, NULL);
    ck_assert_int_eq(
        vdb_acl_check_publish(s_policy, s_registry, &s_agency[I726], &env, reason, sizeof reason),
        VD_EFIELD);
    //  a directed message delivered on a topic that is not the recipient's: no grant
    s_envelope(&env, "cosc:toscana", "inbox", VDP_TLP_GREEN, "comune:i726");
    ck_assert_int_eq(vdb_acl_check_deliver(s_policy, &s_agency[I726], &env,
                                           "inbox.toscana.comune-d612", reason, sizeof reason),
                     VD_EACCES);
    //  a fan-out message delivered on another topic than its own
    s_envelope(&env, "cosc:toscana", "bulletin.toscana", VDP_TLP_GREEN, NULL);
    ck_assert_int_eq(vdb_acl_check_deliver(s_policy, &s_agency[I726], &env, "digest.toscana",
                                           reason, sizeof reason),
                     VD_EACCES);
}
END_TEST

START_TEST(inbox_ceiling)
{
    //  a directed grant whose ceiling is below the message: withheld, naming the ceiling
    vdb_policy_t *policy = s_parse("comune publish inbox.$j.cosc-$j amber\n");
    vdp_envelope_t env;
    char reason[VDP_MAX_REASON + 1];
    s_envelope(&env, "comune:i726", "inbox", VDP_TLP_AMBER, "cosc:toscana");
    ck_assert_int_eq(
        vdb_acl_check_publish(policy, s_registry, &s_agency[I726], &env, reason, sizeof reason),
        VD_OK);
    s_envelope(&env, "comune:i726", "inbox", VDP_TLP_RED, "cosc:toscana");
    ck_assert_int_eq(
        vdb_acl_check_publish(policy, s_registry, &s_agency[I726], &env, reason, sizeof reason),
        VD_ETLP);
    ck_assert_str_eq(reason, "comune:i726 may send to cosc:toscana up to TLP:AMBER, not TLP:RED");
    vdb_policy_destroy(&policy);
}
END_TEST

START_TEST(inbox_topics)
{
    char topics[VDP_MAX_JUR][VDP_MAX_TOPIC + 1];
    ck_assert_uint_eq(vdb_acl_inbox_topics(&s_agency[I726], topics, VDP_MAX_JUR), 1);
    ck_assert_str_eq(topics[0], "inbox.toscana.comune-i726");
    ck_assert_uint_eq(vdb_acl_inbox_topics(&s_agency[ANCI_S], topics, VDP_MAX_JUR), 2);
    ck_assert_str_eq(topics[0], "inbox.sicilia-occ.anci-sicilia");
    ck_assert_str_eq(topics[1], "inbox.sicilia-or.anci-sicilia");
    ck_assert_uint_eq(vdb_acl_inbox_topics(&s_agency[ANCI_S], topics, 1), 1);
    ck_assert_uint_eq(vdb_acl_inbox_topics(&s_agency[CNAIPIC], topics, VDP_MAX_JUR), 1);
    ck_assert_str_eq(topics[0], "inbox.national.cnaipic");
    vdp_agency_t bad = s_agency[I726];
    snprintf(bad.org, sizeof bad.org, "comune:");
    ck_assert_uint_eq(vdb_acl_inbox_topics(&bad, topics, VDP_MAX_JUR), 0);
    ck_assert_uint_eq(vdb_acl_inbox_topics(NULL, topics, VDP_MAX_JUR), 0);
}
END_TEST

//  -------------------------------------------------------------------------------------------
//  The TLP rules hold under a policy that grants everyone everything.

static const char s_permissive[] = "comune  subscribe  >  red\n"
                                   "cosc    subscribe  >  red\n"
                                   "anci    subscribe  >  red\n"
                                   "cnaipic subscribe  >  red\n";

typedef struct {
    const char *sender;
    s_who_t to;
    const char *topic;
    vdp_tlp_t tlp;
    const char *recipients;
    int rc;
} s_rule_t;

static const s_rule_t s_rules[] = {
    //  a Comune's AMBER and above: never to another Comune, never to ANCI
    { "comune:i726", D612, "alert.toscana.i726", VDP_TLP_AMBER, NULL, WITHHOLD },
    { "comune:i726", D612, "alert.toscana.i726", VDP_TLP_AMBER_STRICT, NULL, WITHHOLD },
    { "comune:i726", ANCI_T, "report.toscana.i726", VDP_TLP_AMBER, NULL, WITHHOLD },
    { "comune:i726", B429, "alert.toscana.i726", VDP_TLP_AMBER, NULL, WITHHOLD },
    { "comune:i726", I726, "alert.toscana.i726", VDP_TLP_AMBER_STRICT, NULL, ALLOW },
    { "comune:i726", COSC_T, "alert.toscana.i726", VDP_TLP_AMBER_STRICT, NULL, ALLOW },
    { "comune:i726", COSC_SO, "alert.toscana.i726", VDP_TLP_AMBER, NULL, ALLOW },
    { "comune:i726", CNAIPIC, "alert.toscana.i726", VDP_TLP_AMBER_STRICT, NULL, ALLOW },
    //  ... while GREEN and CLEAR go where the grants say
    { "comune:i726", D612, "alert.toscana.i726", VDP_TLP_GREEN, NULL, ALLOW },
    { "comune:i726", ANCI_T, "report.toscana.i726", VDP_TLP_GREEN, NULL, ALLOW },
    { "comune:i726", ANCI_T, "report.toscana.i726", VDP_TLP_CLEAR, NULL, ALLOW },
    //  AMBER+STRICT never to ANCI, whoever sends it; AMBER from others may reach ANCI
    { "cosc:toscana", ANCI_T, "bulletin.toscana", VDP_TLP_AMBER_STRICT, NULL, WITHHOLD },
    { "cnaipic", ANCI_S, "bulletin.national", VDP_TLP_AMBER_STRICT, NULL, WITHHOLD },
    { "cosc:toscana", ANCI_T, "bulletin.toscana", VDP_TLP_AMBER, NULL, ALLOW },
    { "cosc:toscana", I726, "bulletin.toscana", VDP_TLP_AMBER_STRICT, NULL, ALLOW },
    //  RED: never on a fan-out topic; on inbox only to the named orgs
    { "cnaipic", COSC_T, "bulletin.national", VDP_TLP_RED, NULL, WITHHOLD },
    { "cosc:toscana", I726, "inbox", VDP_TLP_RED, "comune:i726", ALLOW },
    { "cosc:toscana", D612, "inbox", VDP_TLP_RED, "comune:i726", WITHHOLD },
    { "cosc:toscana", CNAIPIC, "inbox", VDP_TLP_RED, "comune:i726", WITHHOLD },
    { "cosc:toscana", ANCI_T, "inbox", VDP_TLP_RED, "anci:toscana", ALLOW },
    //  any directed message only to the named orgs
    { "cosc:toscana", D612, "inbox", VDP_TLP_CLEAR, "comune:i726", DENY },
    //  AMBER+STRICT directed to ANCI is withheld even when named
    { "cosc:toscana", ANCI_T, "inbox", VDP_TLP_AMBER_STRICT, "anci:toscana", WITHHOLD },
    //  a Comune's AMBER directed to another Comune is withheld even when named
    { "comune:i726", D612, "inbox", VDP_TLP_AMBER, "comune:d612", WITHHOLD },
};

START_TEST(rules_hold_under_any_policy)
{
    vdb_policy_t *permissive = s_parse(s_permissive);
    const s_rule_t *r = &s_rules[_i];
    const vdp_agency_t *to = &s_agency[r->to];
    vdp_envelope_t env;
    s_envelope(&env, r->sender, r->topic, r->tlp, r->recipients);
    char topic[VDP_MAX_TOPIC + 1];
    snprintf(topic, sizeof topic, "%s", r->topic);
    if (strcmp(r->topic, "inbox") == 0) {
        char topics[VDP_MAX_JUR][VDP_MAX_TOPIC + 1];
        ck_assert_uint_ge(vdb_acl_inbox_topics(to, topics, VDP_MAX_JUR), 1);
        snprintf(topic, sizeof topic, "%s", topics[0]);
    }
    char reason[VDP_MAX_REASON + 1];
    int rc = vdb_acl_check_deliver(permissive, to, &env, topic, reason, sizeof reason);
    ck_assert_msg(rc == r->rc, "%s -> %s on %s at %s: %s (%s), expected %s", r->sender, to->org,
                  topic, vdp_tlp_name(r->tlp), s_rc(rc), reason, s_rc(r->rc));
    vdb_policy_destroy(&permissive);
}
END_TEST

START_TEST(rules_reasons)
{
    vdb_policy_t *permissive = s_parse(s_permissive);
    char reason[VDP_MAX_REASON + 1];
    vdp_envelope_t env;
    s_envelope(&env, "cosc:toscana", "bulletin.toscana", VDP_TLP_AMBER_STRICT, NULL);
    ck_assert_int_eq(vdb_acl_check_deliver(permissive, &s_agency[ANCI_T], &env, env.topic, reason,
                                           sizeof reason),
                     VD_ETLP);
    ck_assert_str_eq(reason, "TLP:AMBER+STRICT withheld from anci:toscana (never to ANCI)");
    s_envelope(&env, "cosc:toscana", "inbox", VDP_TLP_RED, "comune:i726");
    ck_assert_int_eq(vdb_acl_check_deliver(permissive, &s_agency[D612], &env,
                                           "inbox.toscana.comune-d612", reason, sizeof reason),
                     VD_ETLP);
    ck_assert_str_eq(reason, "TLP:RED withheld from comune:d612 (not a named recipient)");
    vdb_policy_destroy(&permissive);
}
END_TEST

typedef struct {
    const char *sender;
    vdp_tlp_t tlp;
    const char *ref_sender;
    vdp_tlp_t ref_tlp;
    int rc;
} s_ref_t;

static const s_ref_t s_refs[] = {
    //  others may not lower a label
    { "cosc:toscana", VDP_TLP_GREEN, "comune:i726", VDP_TLP_AMBER, WITHHOLD },
    { "cnaipic", VDP_TLP_CLEAR, "cosc:toscana", VDP_TLP_RED, WITHHOLD },
    { "cosc:toscana", VDP_TLP_AMBER, "comune:i726", VDP_TLP_AMBER_STRICT, WITHHOLD },
    //  ... but may keep or raise it
    { "cosc:toscana", VDP_TLP_AMBER, "comune:i726", VDP_TLP_AMBER, ALLOW },
    { "cosc:toscana", VDP_TLP_RED, "comune:i726", VDP_TLP_GREEN, ALLOW },
    //  the source may lower its own
    { "comune:i726", VDP_TLP_CLEAR, "comune:i726", VDP_TLP_AMBER_STRICT, ALLOW },
    //  an unknown original label constrains nothing
    { "cosc:toscana", VDP_TLP_CLEAR, "comune:i726", VDP_TLP_NONE, ALLOW },
};

START_TEST(rules_ref)
{
    const s_ref_t *r = &s_refs[_i];
    vdp_envelope_t env;
    s_envelope(&env, r->sender, "bulletin.toscana", r->tlp, NULL);
    char reason[VDP_MAX_REASON + 1];
    int rc = vdb_acl_check_ref(&env, r->ref_sender, r->ref_tlp, reason, sizeof reason);
    ck_assert_msg(rc == r->rc, "%s at %s: %s (%s)", r->sender, vdp_tlp_name(r->tlp), s_rc(rc),
                  reason);
    if (rc != VD_OK)
        ck_assert_ptr_null(strstr(reason, r->ref_sender)); // says nothing of the original
}
END_TEST

//  -------------------------------------------------------------------------------------------
//  Variables

START_TEST(variables_multiple_jurisdictions)
{
    //  anci:sicilia holds sicilia-occ and sicilia-or: $j grants expand to both
    const vdp_agency_t *anci = &s_agency[ANCI_S];
    ck_assert_int_eq(vdb_acl_check_subscribe(s_policy, anci, "report.sicilia-occ.*", NULL, 0),
                     VD_OK);
    ck_assert_int_eq(vdb_acl_check_subscribe(s_policy, anci, "report.sicilia-or.*", NULL, 0),
                     VD_OK);
    ck_assert_int_eq(vdb_acl_check_subscribe(s_policy, anci, "report.toscana.*", NULL, 0),
                     VD_EACCES);
    //  containment is per grant: the union of both expansions is not one grant
    ck_assert_int_eq(vdb_acl_check_subscribe(s_policy, anci, "report.*.b429", NULL, 0), VD_EACCES);
    ck_assert_int_eq(vdb_acl_check_subscribe(s_policy, anci, "digest.sicilia-or", NULL, 0), VD_OK);

    //  a custom policy: variables mixed with literals, ${name} form, several in one segment
    vdb_policy_t *policy = s_parse("comune subscribe x.${j}-${code}.$org green\n"
                                   "comune publish   y.$j.$code-$j       amber\n"
                                   "anci   subscribe z.$j.cosc-$j        amber\n");
    const vdp_agency_t *siena = &s_agency[I726];
    ck_assert_int_eq(vdb_acl_check_subscribe(policy, siena, "x.toscana-i726.comune-i726", NULL, 0),
                     VD_OK);
    ck_assert_int_eq(vdb_acl_check_subscribe(policy, siena, "x.toscana-d612.comune-d612", NULL, 0),
                     VD_EACCES);
    vdp_envelope_t env;
    s_envelope(&env, siena->org, "y.toscana.i726-toscana", VDP_TLP_AMBER, NULL);
    ck_assert_int_eq(vdb_acl_check_publish(policy, s_registry, siena, &env, NULL, 0), VD_OK);
    s_envelope(&env, siena->org, "y.toscana.i726-sicilia-occ", VDP_TLP_AMBER, NULL);
    ck_assert_int_eq(vdb_acl_check_publish(policy, s_registry, siena, &env, NULL, 0), VD_EACCES);
    s_envelope(&env, "cosc:sicilia-or", "z.sicilia-or.cosc-sicilia-or", VDP_TLP_AMBER, NULL);
    ck_assert_int_eq(vdb_acl_check_deliver(policy, anci, &env, env.topic, NULL, 0), VD_OK);
    s_envelope(&env, "cosc:sicilia-or", "z.sicilia-or.cosc-sicilia-occ", VDP_TLP_AMBER, NULL);
    ck_assert_int_eq(vdb_acl_check_deliver(policy, anci, &env, env.topic, NULL, 0), VD_EACCES);
    vdb_policy_destroy(&policy);
}
END_TEST

START_TEST(variables_reserved_values)
{
    //  A Comune whose code were "all" would own emergency.<j>.all; a COSC holding "national"
    //  would own bulletin.national. Such bindings give nothing.
    const char *toscana[] = { "toscana" };
    const char *national[] = { "national" };
    vdp_agency_t all;
    s_make_agency(&all, "comune:all", VDP_ROLE_COMUNE, toscana, 1);
    vdp_envelope_t env;
    s_envelope(&env, "comune:all", "emergency.toscana.all", VDP_TLP_GREEN, NULL);
    ck_assert_int_eq(vdb_acl_check_publish(s_policy, s_registry, &all, &env, NULL, 0), VD_EACCES);
    s_envelope(&env, "comune:all", "alert.toscana.all", VDP_TLP_GREEN, NULL);
    ck_assert_int_eq(vdb_acl_check_publish(s_policy, s_registry, &all, &env, NULL, 0), VD_EACCES);
    //  its grants without $code still apply
    ck_assert_int_eq(vdb_acl_check_subscribe(s_policy, &all, "bulletin.toscana", NULL, 0), VD_OK);

    vdp_agency_t cosc;
    s_make_agency(&cosc, "cosc:national", VDP_ROLE_COSC, national, 1);
    s_envelope(&env, "cosc:national", "bulletin.national", VDP_TLP_GREEN, NULL);
    ck_assert_int_eq(vdb_acl_check_publish(s_policy, s_registry, &cosc, &env, NULL, 0), VD_EACCES);
    //  a role that disagrees with the org id gets nothing
    vdp_agency_t liar = s_agency[I726];
    liar.role = VDP_ROLE_CNAIPIC;
    ck_assert_int_eq(vdb_acl_check_subscribe(s_policy, &liar, "alert.>", NULL, 0), VD_EACCES);
    //  nor does a malformed org id, on either path (subscribe binds to strings, deliver matches)
    const char *malformed[] = { "comune:I726", "comune:-i726", "comune:i7.26",
                                "comune:", "cnaipic:x" };
    for (size_t m = 0; m < sizeof malformed / sizeof malformed[0]; m++) {
        vdp_agency_t bad = s_agency[I726];
        snprintf(bad.org, sizeof bad.org, "%s", malformed[m]);
        ck_assert_int_eq(vdb_acl_check_subscribe(s_policy, &bad, "bulletin.toscana", NULL, 0),
                         VD_EACCES);
        s_envelope(&env, "cosc:toscana", "bulletin.toscana", VDP_TLP_CLEAR, NULL);
        ck_assert_int_eq(vdb_acl_check_deliver(s_policy, &bad, &env, env.topic, NULL, 0),
                         VD_EACCES);
    }
    //  nor does a revoked key
    vdp_agency_t revoked = s_agency[COSC_T];
    revoked.status = VDP_KEY_REVOKED;
    s_envelope(&env, "cosc:toscana", "bulletin.toscana", VDP_TLP_GREEN, NULL);
    ck_assert_int_eq(vdb_acl_check_publish(s_policy, s_registry, &revoked, &env, NULL, 0),
                     VD_EACCES);
    s_envelope(&env, "cnaipic", "bulletin.toscana", VDP_TLP_GREEN, NULL);
    ck_assert_int_eq(vdb_acl_check_deliver(s_policy, &revoked, &env, env.topic, NULL, 0),
                     VD_EACCES);
}
END_TEST

//  The compiled matcher agrees with binding each grant to a string and matching it.
static const char *const s_kinds[] = { "alert",    "report",    "inbox",  "bulletin",
                                       "training", "emergency", "digest", "x" };
static const char *const s_seconds[] = { "toscana", "sicilia-occ", "sicilia-or", "national",
                                         "all" };
static const char *const s_thirds[] = { NULL,           "i726",         "d612",
                                        "b429",         "all",          "comune-i726",
                                        "cosc-toscana", "anci-sicilia", "cnaipic" };

typedef struct {
    const char *topic;
    vdp_tlp_t best;
} s_best_t;

static bool
s_best_fn(const char *pattern, vdp_tlp_t ceiling, unsigned line, void *arg)
{
    s_best_t *best = arg;
    ck_assert_uint_gt(line, 0);
    ck_assert(vdp_pattern_valid(pattern));
    if (vdp_pattern_match(pattern, best->topic) && ceiling > best->best)
        best->best = ceiling;
    return false;
}

//  Policies whose grants start with literals, wildcards and variables, in one list or mixed.
static const char *const s_mixed[] = {
    "comune  subscribe  $j.>                 red\n"
    "comune  subscribe  *.$j.$code           amber\n"
    "comune  publish    alert.$j.$code.>     green\n"
    "comune  publish    *.$j.*               clear\n"
    "cosc    subscribe  >                    green\n"
    "cosc    subscribe  alert.$j.*           amber+strict\n"
    "cosc    subscribe  ${code}.x.>          red\n"
    "anci    subscribe  *.*.$org             amber\n"
    "anci    subscribe  report.*             green\n"
    "cnaipic publish    $org.>               red\n"
    "cnaipic subscribe  emergency.$j         amber\n",
    s_permissive,
};

START_TEST(variables_compiled_matcher_agrees)
{
    //  _i: 0 the shipped policy, then the s_mixed ones
    vdb_policy_t *policy = _i == 0 ? s_policy : s_parse(s_mixed[_i - 1]);
    size_t nonzero = 0;
    size_t checks = 0;
    char topic[VDP_MAX_TOPIC + 1];
    for (size_t a = 0; a < S_AGENCIES; a++) {
        vdb_binding_t binding;
        ck_assert_int_eq(vdb_binding_init(&binding, &s_agency[a]), VD_OK);
        for (size_t k = 0; k < sizeof s_kinds / sizeof s_kinds[0]; k++)
            for (size_t s = 0; s < sizeof s_seconds / sizeof s_seconds[0]; s++)
                for (size_t t = 0; t < sizeof s_thirds / sizeof s_thirds[0]; t++)
                    for (int deep = 0; deep < 2; deep++) {
                        if (s_thirds[t])
                            snprintf(topic, sizeof topic, "%s.%s.%s%s", s_kinds[k], s_seconds[s],
                                     s_thirds[t], deep ? ".siem" : "");
                        else
                            snprintf(topic, sizeof topic, "%s.%s%s", s_kinds[k], s_seconds[s],
                                     deep ? ".siem" : "");
                        for (int action = 0; action < 2; action++) {
                            s_best_t best = { topic, VDP_TLP_NONE };
                            vdb_policy_each_grant(policy, &binding, (vdb_action_t)action, s_best_fn,
                                                  &best);
                            vdp_tlp_t got =
                                vdb_policy_ceiling(policy, &binding, (vdb_action_t)action, topic);
                            ck_assert_msg(got == best.best, "%s %s %s: %d, bound grants say %d",
                                          s_agency[a].org, action ? "subscribe" : "publish", topic,
                                          got, best.best);
                            nonzero += got != VDP_TLP_NONE;
                            checks++;
                        }
                    }
    }
    ck_assert_uint_gt(nonzero, 50);
    ck_assert_uint_gt(checks, nonzero);
    if (policy != s_policy)
        vdb_policy_destroy(&policy);
}
END_TEST

//  -------------------------------------------------------------------------------------------
//  Parsing

typedef struct {
    const char *text;
    const char *error; // a fragment of the expected message, "test.vdp:<line>: ..." included
} s_bad_t;

static const s_bad_t s_bad[] = {
    { "comun publish alert.x green\n", "test.vdp:1: unknown role 'comun'" },
    { "none publish alert.x green\n", "test.vdp:1: unknown role 'none'" },
    { "comune publis alert.x green\n", "test.vdp:1: unknown action 'publis'" },
    { "comune publish alert.x amber-strict\n", "test.vdp:1: unknown TLP 'amber-strict'" },
    { "comune publish alert.x AMBER\n", "test.vdp:1: unknown TLP 'AMBER'" },
    { "comune publish alert.x white\n", "test.vdp:1: unknown TLP 'white'" },
    { "comune publish alert.$foo green\n", "test.vdp:1: unknown variable '$foo'" },
    { "comune publish alert.$jx green\n", "test.vdp:1: unknown variable '$jx'" },
    { "comune publish alert.${codes} green\n", "test.vdp:1: unknown variable '$codes'" },
    { "comune publish alert.$ green\n", "test.vdp:1: '$' without a variable name" },
    { "comune publish alert.$1 green\n", "test.vdp:1: '$' without a variable name" },
    { "comune publish alert.${j green\n", "test.vdp:1: unterminated '${'" },
    { "comune publish alert..x green\n", "test.vdp:1: empty segment in 'alert..x'" },
    { "comune publish alert. green\n", "test.vdp:1: empty segment" },
    { "comune publish .alert green\n", "test.vdp:1: empty segment" },
    { "comune publish alert.>.x green\n", "test.vdp:1: '>' must be the last segment" },
    { "comune publish alert.a* green\n", "test.vdp:1: '*' and '>' must be whole segments" },
    { "cosc publish inbox.$j.comune-* red\n", "test.vdp:1: '*' and '>' must be whole segments" },
    { "comune publish Alert.x green\n", "test.vdp:1: invalid character 'A'" },
    { "comune publish alert.x_y green\n", "test.vdp:1: invalid character '_'" },
    { "comune publish alert.caff\xc3\xa8 green\n", "test.vdp:1: invalid byte 0xc3" },
    { "comune publish alert.x green extra\n", "test.vdp:1: expected 4 fields" },
    { "comune publish alert.x\n", "test.vdp:1: expected 4 fields" },
    { "comune\n", "test.vdp:1: expected 4 fields" },
    { "comune publish a.b.c.d.e.f.g.h.i green\n", "test.vdp:1: more than 8 segments" },
    { "comune publish a.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx green\n",
      "test.vdp:1: segment longer than 48 bytes" },
    { "comune publish a.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx$code green\n",
      "test.vdp:1: segment longer than 48 bytes" },
    { "comune publish "
      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx."
      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.xxxxxxxxx green\n",
      "test.vdp:1: topic pattern longer than 128 bytes" },
    { "", "test.vdp: no grants" },
    { "# nothing but comments\n\n   \n", "test.vdp: no grants" },
    //  line numbers count every line, blank and comment lines included
    { "# header\n\ncomune publish alert.x green\ncomune publish alert.x grn\n",
      "test.vdp:4: unknown TLP 'grn'" },
    { "comune publish alert.x green\r\ncosc publish b red\r\nanci x b red\r\n",
      "test.vdp:3: unknown action 'x'" },
    { "comune publish alert.x green\n\x01\n", "test.vdp:2: invalid byte 0x01" },
    //  the whole policy fails, not just the bad line
    { "comune publish alert.$j.$code green\ncnaipic subscribe alert.> bogus\n",
      "test.vdp:2: unknown TLP 'bogus'" },
    //  rate lines: their shape, their values (named: messages or bytes), each (role, scope) once
    { "comune publish a green\ncomune rate-key 10/s\n",
      "test.vdp:2: expected 4 fields 'role rate-key messages bytes', found 3" },
    { "comune rate-org 10/s 1M/s extra\ncomune publish a green\n",
      "test.vdp:1: expected 4 fields 'role rate-org messages bytes', found 5" },
    { "comune publish a green\ncomun rate-key 10/s 1M/s\n", "test.vdp:2: unknown role 'comun'" },
    { "comune publish a green\ncomune rate 10/s 1M/s\n",
      "test.vdp:2: unknown action 'rate' (publish, subscribe, rate-key, rate-org)" },
    { "comune publish a green\ncomune rate-key 0/s 16M/s\n",
      "test.vdp:2: rate-key messages '0/s': rate is 0" },
    { "comune publish a green\n\n# x\ncosc rate-org 10/s 4X/s\n",
      "test.vdp:4: rate-org bytes '4X/s': unknown suffix 'X' on the rate (k, M or G)" },
    { "comune publish a green\ncomune rate-key 10/s 1m/s\n",
      "test.vdp:2: rate-key bytes '1m/s': unknown suffix 'm'" },
    { "comune publish a green\ncomune rate-key 2000/s+200 16M/s\n",
      "test.vdp:2: rate-key messages '2000/s+200': burst 200 is below the rate 2000" },
    { "comune publish a green\nanci rate-key 10/s 16M/s+1M\n",
      "test.vdp:2: rate-key bytes '16M/s+1M': burst 1048576 is below the rate 16777216" },
    { "comune publish a green\ncomune rate-key 1000000000001/s 1M/s\n",
      "test.vdp:2: rate-key messages '1000000000001/s': rate too large" },
    { "comune publish a green\ncomune rate-key 10/s 1/s+1024G\n",
      "test.vdp:2: rate-key bytes '1/s+1024G': burst too large" },
    { "comune publish a green\ncomune rate-key 10/S 1M/s\n",
      "test.vdp:2: rate-key messages '10/S': expected <rate>/s+<burst>, e.g. 200/s+2000" },
    { "comune publish a green\ncomune rate-key 10/s "
      "1000000000000000000000000000000000000000000000000000000000000000000000/s\n",
      "test.vdp:2: rate-key bytes '100000000000000000000000000000000000000000000000000000000000"
      "0000': too long for a rate" },
    { "comune rate-key 10/s 1M/s\ncomune publish a green\n# x\ncomune rate-key 20/s 2M/s\n",
      "test.vdp:4: a second 'comune rate-key' line (the first is line 1)" },
    { "cosc rate-org 1/s 1M/s\ncomune rate-org 1/s 1M/s\ncosc rate-key 1/s 1M/s\n"
      "comune publish a green\ncosc rate-org 1/s 1M/s\n",
      "test.vdp:5: a second 'cosc rate-org' line (the first is line 1)" },
    //  a duplicate is refused even when both lines say the same
    { "comune publish a green\nbroker rate-key 1/s 1M/s\nbroker rate-key 1/s 1M/s\n",
      "test.vdp:3: a second 'broker rate-key' line (the first is line 2)" },
    //  rate lines are not grants
    { "comune rate-key 10/s 1M/s\ncomune rate-org 10/s 1M/s\n", "test.vdp: no grants" },
};

START_TEST(parse_errors)
{
    char err[256] = "untouched";
    vdb_policy_t *policy = vdb_policy_parse(s_bad[_i].text, "test.vdp", err, sizeof err);
    ck_assert_msg(policy == NULL, "parsed: %s", s_bad[_i].text);
    ck_assert_msg(strstr(err, s_bad[_i].error) != NULL, "error \"%s\", expected \"%s\"", err,
                  s_bad[_i].error);
}
END_TEST

START_TEST(parse_accepts)
{
    //  comments after fields, tabs, CRLF, no final newline, '#' in the middle of a line
    vdb_policy_t *policy = s_parse("# c\n"
                                   "comune\tpublish\talert.$j.$code\tamber # trailing comment\r\n"
                                   "  broker subscribe > red#no space\n"
                                   "cnaipic subscribe ${j}.x-${org}.* clear");
    ck_assert_uint_eq(vdb_policy_grant_count(policy), 3);
    vdb_policy_destroy(&policy);
    ck_assert_ptr_null(policy);
    vdb_policy_destroy(&policy); // twice is harmless
    vdb_policy_destroy(NULL);
    ck_assert_uint_eq(vdb_policy_grant_count(NULL), 0);

    //  the shipped policy
    char err[256];
    policy = vdb_policy_parse(vdb_policy_default_text(), NULL, err, sizeof err);
    ck_assert_msg(policy != NULL, "%s", err);
    ck_assert_uint_ge(vdb_policy_grant_count(policy), 40);
    vdb_policy_destroy(&policy);

    //  NULL text, NULL err
    ck_assert_ptr_null(vdb_policy_parse(NULL, "x", NULL, 0));
    ck_assert_ptr_null(vdb_policy_parse("", NULL, err, sizeof err));
    ck_assert_str_eq(err, "policy: no grants (a policy must grant something)");
}
END_TEST

START_TEST(parse_load_file)
{
    const char *tmp = getenv("TMPDIR");
    char dir[256];
    snprintf(dir, sizeof dir, "%s/vdb_acl_XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[sizeof dir + 32];
    snprintf(path, sizeof path, "%s/policy.vdp", dir);
    char err[512];

    //  missing file
    ck_assert_ptr_null(vdb_policy_load(path, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "cannot open"));

    //  a good file
    FILE *file = fopen(path, "wb");
    ck_assert_ptr_nonnull(file);
    fputs(vdb_policy_default_text(), file);
    fclose(file);
    vdb_policy_t *policy = vdb_policy_load(path, err, sizeof err);
    ck_assert_msg(policy != NULL, "%s", err);
    vdb_policy_t *builtin = s_parse(vdb_policy_default_text());
    ck_assert_uint_eq(vdb_policy_grant_count(policy), vdb_policy_grant_count(builtin));
    vdb_policy_destroy(&builtin);
    vdb_policy_destroy(&policy);

    //  a NUL byte is refused, with its line
    file = fopen(path, "wb");
    ck_assert_ptr_nonnull(file);
    static const char with_nul[] = "comune publish a green\nanci\0 publish a green\n";
    ck_assert_uint_eq(fwrite(with_nul, 1, sizeof with_nul - 1, file), sizeof with_nul - 1);
    fclose(file);
    ck_assert_ptr_null(vdb_policy_load(path, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "policy.vdp:2: invalid byte 0x00"));

    //  errors name the file
    file = fopen(path, "wb");
    ck_assert_ptr_nonnull(file);
    fputs("comune publish a green\ncomun publish a green\n", file);
    fclose(file);
    ck_assert_ptr_null(vdb_policy_load(path, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "policy.vdp:2: unknown role 'comun'"));
    ck_assert_int_eq(strncmp(err, path, strlen(path)), 0);

    unlink(path);
    rmdir(dir);
}
END_TEST

//  Reasons stay whole in VDP_MAX_REASON bytes with the longest names the limits allow.
START_TEST(parse_reasons_fit)
{
    const char *jur[] = { "jjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjj" }; // 48
    vdp_agency_t big;
    s_make_agency(&big, "comune:cccccccccccccccccccccccccccccccccccccccccccccccc", // 48
                  VDP_ROLE_COMUNE, jur, 1);
    vdb_policy_t *policy = s_parse("comune publish a.$j.$code.> green\n"
                                   "comune subscribe a.$j.$code.> green\n");
    //  2 + 49 + 49 + 28 = 128 bytes; built in a larger buffer so that a wrong length shows
    char topic[2 * VDP_MAX_TOPIC];
    snprintf(topic, sizeof topic, "a.%.48s.%.48s.%s", jur[0], big.org + 7,
             "ssssssssssssssssssssssssssss");
    ck_assert_uint_eq(strlen(topic), VDP_MAX_TOPIC);
    vdp_envelope_t env;
    s_envelope(&env, big.org, topic, VDP_TLP_AMBER_STRICT, NULL);
    char reason[VDP_MAX_REASON + 1];
    ck_assert_int_eq(vdb_acl_check_publish(policy, s_registry, &big, &env, reason, sizeof reason),
                     VD_ETLP);
    ck_assert_uint_lt(strlen(reason), VDP_MAX_REASON);
    ck_assert_ptr_nonnull(strstr(reason, "not TLP:AMBER+STRICT"));
    ck_assert_int_eq(vdb_acl_check_deliver(policy, &big, &env, topic, reason, sizeof reason),
                     VD_ETLP);
    ck_assert_uint_lt(strlen(reason), VDP_MAX_REASON);
    ck_assert_ptr_nonnull(strstr(reason, topic));
    vdb_policy_destroy(&policy);
}
END_TEST

//  -------------------------------------------------------------------------------------------
//  Rate lines: per-role default rate limits

static void
s_assert_rates(const vdb_policy_t *policy,
               vdp_role_t role,
               vdb_rate_scope_t scope,
               vdp_rate_t msgs,
               vdp_rate_t bytes)
{
    vdp_rate_t got_msgs = { 7, 7 };
    vdp_rate_t got_bytes = { 7, 7 };
    vdb_policy_rates(policy, role, scope, &got_msgs, &got_bytes);
    ck_assert_msg(got_msgs.per_second == msgs.per_second && got_msgs.burst == msgs.burst &&
                      got_bytes.per_second == bytes.per_second && got_bytes.burst == bytes.burst,
                  "%s %s: %" PRIu64 "/s+%" PRIu64 " %" PRIu64 "/s+%" PRIu64 ", expected %" PRIu64
                  "/s+%" PRIu64 " %" PRIu64 "/s+%" PRIu64,
                  vdp_role_name(role), scope == VDB_RATE_KEY ? "rate-key" : "rate-org",
                  got_msgs.per_second, got_msgs.burst, got_bytes.per_second, got_bytes.burst,
                  msgs.per_second, msgs.burst, bytes.per_second, bytes.burst);
}

START_TEST(rates_parse_lines)
{
    vdb_policy_t *policy = s_parse("# grants and rate lines, mixed\n"
                                   "comune publish alert.$j.$code amber\n"
                                   "comune\trate-key\t200/s+2000\t4M/s+16M   # a comment\r\n"
                                   "  cosc rate-org 10k/s 1G/s+2G\n"
                                   "comune rate-org 3000/s 20M/s+40M#no space\n"
                                   "cosc subscribe alert.$j.> amber\n"
                                   "broker rate-key 1/s 1/s");
    s_assert_rates(policy, VDP_ROLE_COMUNE, VDB_RATE_KEY, (vdp_rate_t){ 200, 2000 },
                   (vdp_rate_t){ 4u << 20, 16u << 20 });
    s_assert_rates(policy, VDP_ROLE_COMUNE, VDB_RATE_ORG, (vdp_rate_t){ 3000, 3000 },
                   (vdp_rate_t){ 20u << 20, 40u << 20 });
    s_assert_rates(policy, VDP_ROLE_COSC, VDB_RATE_ORG, (vdp_rate_t){ 10240, 10240 },
                   (vdp_rate_t){ 1ull << 30, 2ull << 30 });
    s_assert_rates(policy, VDP_ROLE_BROKER, VDB_RATE_KEY, (vdp_rate_t){ 1, 1 },
                   (vdp_rate_t){ 1, 1 });
    //  what has no line of its own gets the built-in defaults, scope by scope
    s_assert_rates(policy, VDP_ROLE_COSC, VDB_RATE_KEY, VDB_RATE_KEY_MSGS, VDB_RATE_KEY_BYTES);
    s_assert_rates(policy, VDP_ROLE_BROKER, VDB_RATE_ORG, VDB_RATE_ORG_MSGS, VDB_RATE_ORG_BYTES);
    s_assert_rates(policy, VDP_ROLE_ANCI, VDB_RATE_KEY, VDB_RATE_KEY_MSGS, VDB_RATE_KEY_BYTES);
    s_assert_rates(policy, VDP_ROLE_CNAIPIC, VDB_RATE_ORG, VDB_RATE_ORG_MSGS, VDB_RATE_ORG_BYTES);
    ck_assert_uint_eq(vdb_policy_grant_count(policy), 2);
    vdb_policy_destroy(&policy);
}
END_TEST

START_TEST(rates_default_when_absent)
{
    //  the defaults are those the product asked for
    s_assert_rates(NULL, VDP_ROLE_COMUNE, VDB_RATE_KEY, (vdp_rate_t){ 2000, 10000 },
                   (vdp_rate_t){ 16u << 20, 64u << 20 });
    s_assert_rates(NULL, VDP_ROLE_COMUNE, VDB_RATE_ORG, (vdp_rate_t){ 5000, 25000 },
                   (vdp_rate_t){ 32u << 20, 128u << 20 });
    vdb_policy_t *policy = s_parse("comune publish alert.$j.$code amber\n");
    for (vdp_role_t role = VDP_ROLE_COMUNE; role <= VDP_ROLE_BROKER; role++) {
        s_assert_rates(policy, role, VDB_RATE_KEY, VDB_RATE_KEY_MSGS, VDB_RATE_KEY_BYTES);
        s_assert_rates(policy, role, VDB_RATE_ORG, VDB_RATE_ORG_MSGS, VDB_RATE_ORG_BYTES);
        //  no policy at all: the same
        s_assert_rates(NULL, role, VDB_RATE_KEY, VDB_RATE_KEY_MSGS, VDB_RATE_KEY_BYTES);
        s_assert_rates(NULL, role, VDB_RATE_ORG, VDB_RATE_ORG_MSGS, VDB_RATE_ORG_BYTES);
    }
    //  a role no agency holds never reads past the table
    s_assert_rates(policy, VDP_ROLE_NONE, VDB_RATE_KEY, VDB_RATE_KEY_MSGS, VDB_RATE_KEY_BYTES);
    s_assert_rates(policy, (vdp_role_t)(VDP_ROLE_BROKER + 1), VDB_RATE_ORG, VDB_RATE_ORG_MSGS,
                   VDB_RATE_ORG_BYTES);
    vdb_policy_destroy(&policy);
}
END_TEST

//  Copies `text` without its rate lines. Caller frees.
static char *
s_without_rate_lines(const char *text)
{
    char *out = malloc(strlen(text) + 1);
    ck_assert_ptr_nonnull(out);
    size_t n = 0;
    for (const char *line = text; *line;) {
        size_t len = strcspn(line, "\n");
        char first[16] = "", second[16] = "";
        bool rate = sscanf(line, "%15s %15s", first, second) == 2 && first[0] != '#' &&
                    (strcmp(second, "rate-key") == 0 || strcmp(second, "rate-org") == 0);
        if (!rate) {
            memcpy(out + n, line, len);
            n += len;
            out[n++] = '\n';
        }
        line += len + (line[len] == '\n');
    }
    out[n] = '\0';
    return out;
}

START_TEST(rates_do_not_count_as_grants)
{
    static const char grants[] = "comune publish alert.$j.$code amber\n"
                                 "cosc subscribe alert.$j.> amber\n";
    static const char rates[] = "comune rate-key 1/s 1/s\ncomune rate-org 1/s 1/s\n"
                                "cosc rate-key 1/s 1/s\ncosc rate-org 1/s 1/s\n"
                                "anci rate-key 1/s 1/s\nanci rate-org 1/s 1/s\n"
                                "cnaipic rate-key 1/s 1/s\ncnaipic rate-org 1/s 1/s\n"
                                "broker rate-key 1/s 1/s\nbroker rate-org 1/s 1/s\n";
    char text[1024];
    snprintf(text, sizeof text, "%s%s", rates, grants);
    vdb_policy_t *policy = s_parse(text);
    ck_assert_uint_eq(vdb_policy_grant_count(policy), 2);
    vdb_policy_destroy(&policy);

    //  the shipped policy counts as many grants with its rate lines as without them
    char *bare = s_without_rate_lines(vdb_policy_default_text());
    ck_assert_ptr_null(strstr(bare, "\ncomune    rate-key"));
    vdb_policy_t *without = s_parse(bare);
    ck_assert_uint_eq(vdb_policy_grant_count(s_policy), vdb_policy_grant_count(without));
    s_assert_rates(without, VDP_ROLE_COSC, VDB_RATE_KEY, VDB_RATE_KEY_MSGS, VDB_RATE_KEY_BYTES);
    vdb_policy_destroy(&without);
    free(bare);

    //  nor do they make a grant match: the shipped policy's checks are those of its grants
    vdp_envelope_t env;
    s_envelope(&env, "comune:i726", "alert.toscana.i726", VDP_TLP_AMBER, NULL);
    ck_assert_int_eq(vdb_acl_check_publish(s_policy, s_registry, &s_agency[I726], &env, NULL, 0),
                     VD_OK);
    s_envelope(&env, "comune:i726", "rate-key", VDP_TLP_GREEN, NULL);
    ck_assert_int_eq(vdb_acl_check_publish(s_policy, s_registry, &s_agency[I726], &env, NULL, 0),
                     VD_EACCES);
}
END_TEST

//  What deploy/policy.vdp sets, role by role.
static const struct {
    vdp_role_t role;
    vdb_rate_scope_t scope;
    vdp_rate_t msgs;
    vdp_rate_t bytes;
} s_shipped_rates[] = {
    { VDP_ROLE_COMUNE, VDB_RATE_KEY, { 2000, 10000 }, { 16ull << 20, 64ull << 20 } },
    { VDP_ROLE_COMUNE, VDB_RATE_ORG, { 5000, 25000 }, { 32ull << 20, 128ull << 20 } },
    { VDP_ROLE_COSC, VDB_RATE_KEY, { 5000, 50000 }, { 32ull << 20, 256ull << 20 } },
    { VDP_ROLE_COSC, VDB_RATE_ORG, { 10000, 100000 }, { 64ull << 20, 512ull << 20 } },
    { VDP_ROLE_ANCI, VDB_RATE_KEY, { 2000, 10000 }, { 16ull << 20, 64ull << 20 } },
    { VDP_ROLE_ANCI, VDB_RATE_ORG, { 5000, 25000 }, { 32ull << 20, 128ull << 20 } },
    { VDP_ROLE_CNAIPIC, VDB_RATE_KEY, { 5000, 50000 }, { 32ull << 20, 256ull << 20 } },
    { VDP_ROLE_CNAIPIC, VDB_RATE_ORG, { 20000, 200000 }, { 128ull << 20, 1ull << 30 } },
    { VDP_ROLE_BROKER, VDB_RATE_KEY, { 50000, 500000 }, { 256ull << 20, 2ull << 30 } },
    { VDP_ROLE_BROKER, VDB_RATE_ORG, { 100000, 1000000 }, { 512ull << 20, 4ull << 30 } },
};

START_TEST(rates_shipped_policy)
{
    vdp_role_t role = s_shipped_rates[_i].role;
    vdb_rate_scope_t scope = s_shipped_rates[_i].scope;
    s_assert_rates(s_policy, role, scope, s_shipped_rates[_i].msgs, s_shipped_rates[_i].bytes);

    //  never below the built-in defaults: the integration tests publish thousands of messages
    //  quickly from one Comune key and must not meet a limit
    vdp_rate_t msgs, bytes, floor_msgs, floor_bytes;
    vdb_policy_rates(s_policy, role, scope, &msgs, &bytes);
    vdb_policy_rates(NULL, role, scope, &floor_msgs, &floor_bytes);
    ck_assert_uint_ge(msgs.per_second, floor_msgs.per_second);
    ck_assert_uint_ge(msgs.burst, floor_msgs.burst);
    ck_assert_uint_ge(bytes.per_second, floor_bytes.per_second);
    ck_assert_uint_ge(bytes.burst, floor_bytes.burst);
    //  a bytes bucket takes the largest body the protocol allows, with room to spare
    ck_assert_uint_ge(bytes.burst, 4ull * VDP_MAX_BODY);

    //  the line is in the file even where it says what the defaults say: a second one is refused
    const char *shipped = vdb_policy_default_text();
    size_t size = strlen(shipped) + 64;
    char *text = malloc(size);
    ck_assert_ptr_nonnull(text);
    snprintf(text, size, "%s%s %s 1/s 1/s\n", shipped, vdp_role_name(role),
             scope == VDB_RATE_KEY ? "rate-key" : "rate-org");
    char err[256];
    vdb_policy_t *policy = vdb_policy_parse(text, "(embedded policy)", err, sizeof err);
    ck_assert_ptr_null(policy);
    char expected[64];
    snprintf(expected, sizeof expected, "a second '%s %s' line", vdp_role_name(role),
             scope == VDB_RATE_KEY ? "rate-key" : "rate-org");
    ck_assert_msg(strstr(err, expected), "error \"%s\", expected \"%s\"", err, expected);
    free(text);
}
END_TEST

Suite *
vdb_acl_suite(void)
{
    Suite *suite = suite_create("vdb_acl");
#define S_ROWS(table) ((int)(sizeof table / sizeof table[0]))

    TCase *tc = tcase_create("matrix");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_loop_test(tc, matrix_publish, 0, S_ROWS(s_publish));
    tcase_add_loop_test(tc, matrix_publish_red_refused, 0, S_ROWS(s_publish));
    tcase_add_loop_test(tc, matrix_subscribe, 0, S_ROWS(s_subscribe));
    tcase_add_loop_test(tc, matrix_subscribe_agrees_with_deliver, 0, S_ROWS(s_subscribe));
    suite_add_tcase(suite, tc);

    tc = tcase_create("ceiling");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_loop_test(tc, ceiling_deliver, 0, S_ROWS(s_deliver));
    tcase_add_loop_test(tc, ceiling_publish, 0, S_ROWS(s_publish_ceiling));
    tcase_add_test(tc, ceiling_reasons);
    suite_add_tcase(suite, tc);

    tc = tcase_create("inbox");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_loop_test(tc, inbox_publish, 0, S_ROWS(s_directed));
    tcase_add_loop_test(tc, inbox_deliver_reaches_only_recipients, 0, S_ROWS(s_directed));
    tcase_add_test(tc, inbox_structure);
    tcase_add_test(tc, inbox_ceiling);
    tcase_add_test(tc, inbox_topics);
    suite_add_tcase(suite, tc);

    tc = tcase_create("rules");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_loop_test(tc, rules_hold_under_any_policy, 0, S_ROWS(s_rules));
    tcase_add_test(tc, rules_reasons);
    tcase_add_loop_test(tc, rules_ref, 0, S_ROWS(s_refs));
    suite_add_tcase(suite, tc);

    tc = tcase_create("variables");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, variables_multiple_jurisdictions);
    tcase_add_test(tc, variables_reserved_values);
    tcase_add_loop_test(tc, variables_compiled_matcher_agrees, 0, 1 + S_ROWS(s_mixed));
    suite_add_tcase(suite, tc);

    tc = tcase_create("parse");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_loop_test(tc, parse_errors, 0, S_ROWS(s_bad));
    tcase_add_test(tc, parse_accepts);
    tcase_add_test(tc, parse_load_file);
    tcase_add_test(tc, parse_reasons_fit);
    suite_add_tcase(suite, tc);

    tc = tcase_create("rates");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, rates_parse_lines);
    tcase_add_test(tc, rates_default_when_absent);
    tcase_add_test(tc, rates_do_not_count_as_grants);
    tcase_add_loop_test(tc, rates_shipped_policy, 0, S_ROWS(s_shipped_rates));
    suite_add_tcase(suite, tc);
#undef S_ROWS
    return suite;
}

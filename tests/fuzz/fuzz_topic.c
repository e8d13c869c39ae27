/*  fuzz_topic: any bytes, split at the first NUL or newline into `a` and `b` (the rest up to the
    next NUL or newline), go through vdp_topic's checks. The whole input, as policy text, goes
    through the policy parser, and so does the text after `b`; when that one parses it is
    evaluated for a few agencies with `b` as the subscription pattern and the message topic.
    Beyond crashes it checks these properties and aborts if one fails:
    - a valid topic is a valid pattern, and every valid pattern contains itself;
    - for a valid pattern p and a valid topic t, contains(p, t) == match(p, t) (a topic, read as
      a pattern, matches only itself);
    - if a contains b, a matches b when b is a topic, and a == b when a is one (soundness);
    - a parsed policy has grants; a refused one has an error that is NUL-terminated within its
      buffer and starts with the origin;
    - an ACL check returns one of its documented codes, with a NUL-terminated reason.
    Seeds (tests/fuzz/seeds/topic): "pattern\ntopic" pairs, and "pattern\ntopic\npolicy".  */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zmq.h>

#include "vdb_acl.h"
#include "vdb_registry.h"
#include "vdp_topic.h"
#include "vedetta.h"

#define S_ORIGIN    "fuzz.vdp"
#define S_MAX_INPUT (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
s_require(bool condition)
{
    if (!condition)
        abort();
}

static const struct {
    const char *org;
    vdp_role_t role;
    const char *jur[2];
} s_parties[] = {
    { "comune:i726", VDP_ROLE_COMUNE, { "toscana" } },
    { "cosc:toscana", VDP_ROLE_COSC, { "toscana" } },
    { "anci:sicilia", VDP_ROLE_ANCI, { "sicilia-occ", "sicilia-or" } },
    { "cnaipic", VDP_ROLE_CNAIPIC, { "national" } },
};
#define S_PARTIES (sizeof s_parties / sizeof s_parties[0])

static vdp_agency_t s_agency[S_PARTIES];
static vdb_registry_t *s_registry;

//  Once per process: the agencies and a registry holding them (kept until exit).
static void
s_init(void)
{
    if (s_registry)
        return;
    s_require(sodium_init() >= 0);
    s_registry = vdb_registry_new();
    s_require(s_registry != NULL);
    for (size_t a = 0; a < S_PARTIES; a++) {
        vdp_agency_t *agency = &s_agency[a];
        memset(agency, 0, sizeof *agency);
        strcpy(agency->org, s_parties[a].org);
        strcpy(agency->name, "Fuzz");
        agency->role = s_parties[a].role;
        for (size_t k = 0; k < 2 && s_parties[a].jur[k]; k++)
            strcpy(agency->jur[agency->jur_count++], s_parties[a].jur[k]);
        strcpy(agency->label, "default");
        char secret[VDP_KEY_Z85_LEN + 1];
        s_require(zmq_curve_keypair(agency->curve_public, secret) == 0);
        uint8_t sign_public[crypto_sign_PUBLICKEYBYTES];
        uint8_t sign_secret[crypto_sign_SECRETKEYBYTES];
        crypto_sign_keypair(sign_public, sign_secret);
        s_require(zmq_z85_encode(agency->sign_public, sign_public, sizeof sign_public) != NULL);
        agency->status = VDP_KEY_ACTIVE;
        char err[256];
        s_require(vdb_registry_add(s_registry, agency, err, sizeof err) == VD_OK);
    }
}

static void
s_check_topics(const char *a, const char *b)
{
    bool a_topic = vdp_topic_valid(a);
    bool a_pattern = vdp_pattern_valid(a);
    bool b_topic = vdp_topic_valid(b);
    bool b_pattern = vdp_pattern_valid(b);
    s_require(!a_topic || a_pattern);
    s_require(!b_topic || b_pattern);
    //  on any input the answers are defined, whatever they are
    (void)vdp_pattern_match(a, b);
    (void)vdp_pattern_contains(a, b);
    if (a_pattern)
        s_require(vdp_pattern_contains(a, a));
    if (a_pattern && b_topic)
        s_require(vdp_pattern_contains(a, b) == vdp_pattern_match(a, b));
    //  soundness on the topics we have: b itself; and a topic contains only itself
    if (a_pattern && b_pattern && vdp_pattern_contains(a, b)) {
        if (b_topic)
            s_require(vdp_pattern_match(a, b));
        if (a_topic)
            s_require(strcmp(a, b) == 0);
    }
}

static bool
s_reason_ok(const char *reason, size_t size)
{
    return memchr(reason, '\0', size) != NULL;
}

static vdb_policy_t *
s_parse(const char *text)
{
    char err[256];
    memset(err, 'x', sizeof err);
    vdb_policy_t *policy = vdb_policy_parse(text, S_ORIGIN, err, sizeof err);
    if (policy)
        s_require(vdb_policy_grant_count(policy) > 0);
    else {
        s_require(s_reason_ok(err, sizeof err));
        s_require(strncmp(err, S_ORIGIN ":", strlen(S_ORIGIN ":")) == 0);
    }
    return policy;
}

static void
s_check_policy(const char *text, const char *b, uint8_t knob)
{
    vdb_policy_t *policy = s_parse(text);
    if (!policy)
        return;
    s_init();
    vdp_envelope_t env;
    memset(&env, 0, sizeof env);
    env.tlp = (vdp_tlp_t)(knob % 7); // NONE..RED and one out of range
    strcpy(env.topic, (knob & 0x80) ? "inbox" : vdp_topic_valid(b) ? b : "alert.toscana.i726");
    bool directed = strcmp(env.topic, "inbox") == 0; // b may be "inbox" too
    if (directed || (knob & 0x40)) {
        strcpy(env.to[0], s_parties[knob % S_PARTIES].org);
        strcpy(env.to[1], "comune:z999");
        env.to_count = (knob & 0x20) ? 2 : 1;
    }
    for (size_t a = 0; a < S_PARTIES; a++) {
        const vdp_agency_t *who = &s_agency[a];
        char reason[VDP_MAX_REASON + 1];
        memset(reason, 'x', sizeof reason);
        int rc = vdb_acl_check_subscribe(policy, who, b, reason, sizeof reason);
        s_require(rc == VD_OK || rc == VD_EACCES || rc == VD_EINVAL);
        s_require(s_reason_ok(reason, sizeof reason));
        s_require((rc == VD_EINVAL) == !vdp_pattern_valid(b));

        strcpy(env.sender, who->org);
        memset(reason, 'x', sizeof reason);
        rc = vdb_acl_check_publish(policy, s_registry, who, &env, reason, sizeof reason);
        s_require(rc == VD_OK || rc == VD_EACCES || rc == VD_ETLP || rc == VD_EFIELD);
        s_require(s_reason_ok(reason, sizeof reason));

        strcpy(env.sender, "cnaipic");
        char topics[VDP_MAX_JUR][VDP_MAX_TOPIC + 1];
        const char *topic = env.topic;
        if (directed) {
            s_require(vdb_acl_inbox_topics(who, topics, VDP_MAX_JUR) == who->jur_count);
            topic = topics[0];
        }
        memset(reason, 'x', sizeof reason);
        rc = vdb_acl_check_deliver(policy, who, &env, topic, reason, sizeof reason);
        s_require(rc == VD_OK || rc == VD_EACCES || rc == VD_ETLP);
        s_require(s_reason_ok(reason, sizeof reason));
        //  no policy lets RED out of an inbox, nor AMBER+STRICT reach ANCI
        if (env.tlp == VDP_TLP_RED && !directed)
            s_require(rc == VD_ETLP);
        if (env.tlp == VDP_TLP_AMBER_STRICT && who->role == VDP_ROLE_ANCI)
            s_require(rc != VD_OK);
    }
    vdb_policy_destroy(&policy);
    s_require(policy == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > S_MAX_INPUT)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    //  a: up to the first NUL or newline; b: from there to the next one
    size_t a_len = 0;
    while (a_len < size && data[a_len] != '\0' && data[a_len] != '\n')
        a_len++;
    char *a = malloc(a_len + 1);
    size_t b_start = a_len < size ? a_len + 1 : size;
    size_t b_len = 0;
    while (b_start + b_len < size && data[b_start + b_len] != '\0' && data[b_start + b_len] != '\n')
        b_len++;
    char *b = malloc(b_len + 1);
    if (a && b) {
        memcpy(a, data, a_len);
        a[a_len] = '\0';
        memcpy(b, data + b_start, b_len);
        b[b_len] = '\0';
        s_check_topics(a, b);
        s_check_topics(b, a);
        vdb_policy_t *whole = s_parse(text);
        vdb_policy_destroy(&whole);
        size_t rest = b_start + b_len < size ? b_start + b_len + 1 : size;
        s_check_policy(text + rest, b, size > 0 ? data[size - 1] : 0);
    }
    free(b);
    free(a);
    free(text);
    return 0;
}

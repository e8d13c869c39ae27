/*  sig_envelopes: the three envelopes of the signature test vectors (PROTOCOL.md §4.6.8),
    fields only, shared by the vdp_sig suite and the sig fuzz target. Header-only: each of them
    is one translation unit of its own executable.  */
#ifndef VDT_SIG_ENVELOPES_H_INCLUDED
#define VDT_SIG_ENVELOPES_H_INCLUDED

#include <stdint.h>
#include <string.h>

#include "vdp_envelope.h"

#define VDT_SIG_E1_ID       "9b2d6f4e-3c1a-4e8b-a7d5-0f6e2c9b1a38"
#define VDT_SIG_E2_BODY     "{\"ip\":\"203.0.113.7\",\"port\":22,\"attempts\":1843}"
#define VDT_SIG_E3_BODY_LEN 300

static uint8_t vdt_sig_e3_body[VDT_SIG_E3_BODY_LEN]; // byte i is i mod 256, once e3 is filled

static inline void
vdt_sig_e1(vdp_envelope_t *e)
{
    memset(e, 0, sizeof *e);
    e->v = 1;
    strcpy(e->id, VDT_SIG_E1_ID);
    strcpy(e->sender, "comune:i726");
    e->sent = 1718000000000;
    strcpy(e->topic, "alert.toscana.i726");
    e->kind = VDP_KIND_ALERT;
    e->status = VDP_STATUS_TEST;
    e->tlp = VDP_TLP_GREEN;
    strcpy(e->category, "other");
    e->severity = VDP_SEVERITY_MINOR;
    strcpy(e->ctype, "text/plain");
}

static inline void
vdt_sig_e2(vdp_envelope_t *e)
{
    memset(e, 0, sizeof *e);
    e->v = 1;
    strcpy(e->id, "c4e81a97-5d2b-4f36-8e0a-71b9d3f2c645");
    strcpy(e->sender, "comune:i726");
    e->sent = 1718000000250;
    strcpy(e->topic, "inbox");
    e->kind = VDP_KIND_UPDATE;
    e->status = VDP_STATUS_ACTUAL;
    e->tlp = VDP_TLP_RED;
    strcpy(e->category, "intrusions");
    e->severity = VDP_SEVERITY_SEVERE;
    strcpy(e->ctype, "application/json");
    e->body = (const uint8_t *)VDT_SIG_E2_BODY;
    e->body_len = sizeof VDT_SIG_E2_BODY - 1;
    strcpy(e->to[0], "cosc:toscana");
    strcpy(e->to[1], "cnaipic");
    e->to_count = 2;
    strcpy(e->refs[0].sender, "comune:i726");
    strcpy(e->refs[0].id, VDT_SIG_E1_ID);
    e->refs_count = 1;
    strcpy(e->incident, "INC-2024-0042");
    e->stage = VDP_STAGE_EARLY_WARNING;
    e->aware_at = 1717990000000;
    e->expires = 1718600000000;
    e->ack_by = 1718086400000;
    e->urgency = VDP_URGENCY_IMMEDIATE;
    e->certainty = VDP_CERTAINTY_LIKELY;
    strcpy(e->lang, "it");
}

static inline void
vdt_sig_e3(vdp_envelope_t *e)
{
    memset(e, 0, sizeof *e);
    for (size_t i = 0; i < sizeof vdt_sig_e3_body; i++)
        vdt_sig_e3_body[i] = (uint8_t)i;
    e->v = 1;
    strcpy(e->id, "1f0a3b5c-7d9e-4a2b-9c4d-6e8f0a1b2c3d");
    strcpy(e->sender, "comune:i726");
    e->sent = 1718000000500;
    strcpy(e->topic, "report.toscana.i726");
    e->kind = VDP_KIND_ALERT;
    e->status = VDP_STATUS_EXERCISE;
    e->tlp = VDP_TLP_AMBER_STRICT;
    strcpy(e->category, "malicious-code");
    e->severity = VDP_SEVERITY_MODERATE;
    strcpy(e->ctype, "application/stix+json;version=2.1");
    e->body = vdt_sig_e3_body;
    e->body_len = sizeof vdt_sig_e3_body;
    strcpy(e->lang, "en-GB");
}

//  e1, e2 or e3 (which: 0, 1, 2).
static inline void
vdt_sig_envelope(vdp_envelope_t *e, int which)
{
    if (which == 0)
        vdt_sig_e1(e);
    else if (which == 1)
        vdt_sig_e2(e);
    else
        vdt_sig_e3(e);
}

#endif

/*  vdb_zap: see vdb_zap.h. Every refusal is logged at notice level with the peer's address and
    key (public keys are not secret), so an operator can see who knocks.  */
#include <string.h>

#include <czmq.h>

#include "vdb_log.h"
#include "vdb_zap.h"
#include "vdp_ids.h"
#include "vdp_limits.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"

struct vdb_zap_t {
    zsock_t *socket;           // REP, bound to the ZAP endpoint
    const vdb_registry_t *reg; // borrowed
    vdb_zap_decision_fn *observer;
    void *observer_arg;
    uint64_t accepted;
    uint64_t refused;
};

vdb_zap_t *
vdb_zap_new(const vdb_registry_t *reg)
{
    vdb_zap_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->reg = reg;
    self->socket = zsock_new(ZMQ_REP);
    if (!self->socket || zsock_bind(self->socket, ZAP_ENDPOINT) != 0)
        vdb_zap_destroy(&self);
    return self;
}

void
vdb_zap_destroy(vdb_zap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vdb_zap_t *self = *self_p;
    zsock_destroy(&self->socket);
    free(self);
    *self_p = NULL;
}

void *
vdb_zap_socket(vdb_zap_t *self)
{
    return zsock_resolve(self->socket);
}

void
vdb_zap_set_registry(vdb_zap_t *self, const vdb_registry_t *reg)
{
    self->reg = reg;
}

void
vdb_zap_set_observer(vdb_zap_t *self, vdb_zap_decision_fn *fn, void *arg)
{
    self->observer = fn;
    self->observer_arg = arg;
}

//  Decides one request. Fills user_id (Z85 key) on success; returns the status code.
static const char *
s_decide(vdb_zap_t *self, zmsg_t *request, char *user_id, const char **text)
{
    char *version = zmsg_popstr(request);
    zframe_t *request_id = zmsg_pop(request); // the caller echoes its own copy
    zframe_destroy(&request_id);
    char *domain = zmsg_popstr(request);
    char *address = zmsg_popstr(request);
    char *identity = zmsg_popstr(request);
    char *mechanism = zmsg_popstr(request);
    zframe_t *key = zmsg_pop(request);
    const char *status = "400";
    const char *org = NULL;
    char peer[64] = "?";
    if (address)
        vdp_sanitize(address, strlen(address), peer, sizeof peer);
    char key_text[VDP_KEY_Z85_LEN + 1] = "";
    if (key && zframe_size(key) == VDP_KEY_BYTES)
        zmq_z85_encode(key_text, zframe_data(key), VDP_KEY_BYTES);

    if (!version || strcmp(version, "1.0") != 0 || !mechanism || strcmp(mechanism, "CURVE") != 0 ||
        !key_text[0]) {
        *text = "CURVE required";
        vdb_log_notice("vdb_zap: refused peer=%s reason=not-curve", peer);
    } else if (!domain || strcmp(domain, VDB_ZAP_DOMAIN) != 0) {
        *text = "wrong domain";
        vdb_log_notice("vdb_zap: refused peer=%s key=%s reason=domain", peer, key_text);
    } else {
        const vdp_agency_t *agency = self->reg ? vdb_registry_key(self->reg, key_text) : NULL;
        if (!agency) {
            *text = "unknown key";
            vdb_log_notice("vdb_zap: refused peer=%s key=%s reason=unknown-key", peer, key_text);
        } else if (agency->status != VDP_KEY_ACTIVE) {
            *text = "revoked key";
            vdb_log_notice("vdb_zap: refused peer=%s key=%s org=%s reason=revoked", peer, key_text,
                           agency->org);
        } else {
            status = "200";
            *text = "OK";
            memcpy(user_id, key_text, sizeof key_text);
            vdb_log_info("vdb_zap: accepted peer=%s key=%s org=%s label=%s", peer, key_text,
                         agency->org, agency->label);
        }
        org = agency ? agency->org : NULL;
    }
    if (self->observer)
        self->observer(self->observer_arg, *status == '2', peer, key_text, org,
                       *status == '2' ? NULL : *text);
    zstr_free(&version);
    zstr_free(&domain);
    zstr_free(&address);
    zstr_free(&identity);
    zstr_free(&mechanism);
    zframe_destroy(&key);
    return status;
}

int
vdb_zap_handle(vdb_zap_t *self)
{
    int answered = 0;
    while (zsock_events(self->socket) & ZMQ_POLLIN) {
        zmsg_t *request = zmsg_recv(self->socket);
        if (!request)
            break;
        //  The request id must be echoed; read it before s_decide consumes the message.
        zmsg_first(request);
        zframe_t *id_frame = zmsg_next(request);
        zframe_t *request_id = id_frame ? zframe_dup(id_frame) : zframe_new_empty();
        char user_id[VDP_KEY_Z85_LEN + 1] = "";
        const char *text = "";
        const char *status = s_decide(self, request, user_id, &text);
        if (strcmp(status, "200") == 0)
            self->accepted++;
        else
            self->refused++;
        zmsg_t *reply = zmsg_new();
        zmsg_addstr(reply, "1.0");
        zmsg_append(reply, &request_id);
        zmsg_addstr(reply, status);
        zmsg_addstr(reply, text);
        zmsg_addstr(reply, user_id);
        zmsg_addmem(reply, "", 0);
        zmsg_send(&reply, self->socket);
        zmsg_destroy(&request);
        answered++;
    }
    return answered;
}

uint64_t
vdb_zap_accepted(const vdb_zap_t *self)
{
    return self->accepted;
}

uint64_t
vdb_zap_refused(const vdb_zap_t *self)
{
    return self->refused;
}

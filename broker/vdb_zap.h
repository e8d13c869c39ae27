/*  vdb_zap: the broker's own ZAP handler (RFC 27). libzmq asks it, during each CURVE handshake,
    whether the client's public key may connect; it answers from the registry and, on success,
    sets User-Id to the key's Z85 text, the only identity the broker trusts afterwards.
    Why our own: CZMQ's zauth copies metadata into a fixed buffer, aborts on duplicate keys and
    allows one instance per process; and with no handler bound, libzmq accepts any CURVE key.
    So: create this before the ROUTER binds, and set ZMQ_ZAP_ENFORCE_DOMAIN on the ROUTER.
    It runs in the broker's one event loop (the registry is read in the same thread).  */

#ifndef VDB_ZAP_H_INCLUDED
#define VDB_ZAP_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "vdb_registry.h"

#define VDB_ZAP_DOMAIN "vedetta"

typedef struct vdb_zap_t vdb_zap_t;

//  Binds the ZAP endpoint in CZMQ's context. `reg` is borrowed and must outlive the handler
//  (or be replaced with vdb_zap_set_registry). NULL if the endpoint is taken or no memory.
vdb_zap_t *vdb_zap_new(const vdb_registry_t *reg);

void vdb_zap_destroy(vdb_zap_t **self_p);

//  The libzmq socket to poll for requests.
void *vdb_zap_socket(vdb_zap_t *self);

//  Swaps the registry used for later requests.
void vdb_zap_set_registry(vdb_zap_t *self, const vdb_registry_t *reg);

/*  Called with every decision (for the audit log): `accepted`, the peer's address, the key
    (Z85, "" if none was offered), the org (NULL if the key is unknown) and, on a refusal, the
    reason ("unknown key", "revoked key", ...).  */
typedef void(vdb_zap_decision_fn)(void *arg,
                                  bool accepted,
                                  const char *peer,
                                  const char *key,
                                  const char *org,
                                  const char *reason);
void vdb_zap_set_observer(vdb_zap_t *self, vdb_zap_decision_fn *fn, void *arg);

//  Answers every pending request without blocking. Returns how many were answered.
int vdb_zap_handle(vdb_zap_t *self);

//  Handshakes accepted and refused so far.
uint64_t vdb_zap_accepted(const vdb_zap_t *self);
uint64_t vdb_zap_refused(const vdb_zap_t *self);

#endif

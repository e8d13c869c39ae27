/*  harness: a world for integration tests: a temporary directory with generated keys, the real
    vedettad started as a child process on tcp://127.0.0.1 with an OS-chosen port, and clients
    connected to it over CURVE. Everything is cleaned up by vdt_world_destroy(), and only the
    broker process this world started is ever signalled (by its PID).  */

#ifndef VDT_HARNESS_H_INCLUDED
#define VDT_HARNESS_H_INCLUDED

#include <stdbool.h>
#include <sys/types.h>

#include <czmq.h>

#include "vdp_agency.h"
#include "vdp_envelope.h"
#include "vedetta.h"

typedef struct vdt_world_t vdt_world_t;

//  A new world with a broker key (broker:test) and no agencies yet. Aborts the test on failure.
vdt_world_t *vdt_world_new(void);

//  Stops the broker if running and deletes the directory.
void vdt_world_destroy(vdt_world_t **self_p);

//  Generates a key for an agency and installs its public file in the registry. Returns the path
//  of its secret file (borrowed while the world lives). `jur` may list several, comma-separated.
const char *vdt_agency(vdt_world_t *self, const char *org, const char *role, const char *jur);

//  The five parties of the demo: cosc:toscana, comune:i726 (Siena), anci:toscana,
//  cosc:sicilia-occ, comune:b429 (Caltanissetta); plus comune:d612 (Firenze) and cnaipic.
void vdt_agencies_demo(vdt_world_t *self);

//  A world with the demo agencies and its broker started; `pinned`: on a port a restart keeps
//  (vdt_broker_pin_endpoint). Aborts the test on failure.
vdt_world_t *vdt_world_demo(bool pinned);

/*  The public agency file of `org`'s key in the registry, read, and written back (the broker
    sees the change at its next reload or start).  */
vdp_agency_t vdt_agency_read(vdt_world_t *self, const char *org);
void vdt_agency_write(vdt_world_t *self, const vdp_agency_t *agency);

//  The secret file of an org created with vdt_agency (NULL if none).
const char *vdt_secret(vdt_world_t *self, const char *org);

//  Starts vedettad (extra_args: NULL or more argv entries ending in NULL) and waits for its
//  endpoint file. Aborts the test if it does not come up.
void vdt_broker_start(vdt_world_t *self);

//  SIGTERM and wait (SIGKILL after 10 s). Returns the exit status as waitpid reports it.
int vdt_broker_stop(vdt_world_t *self);

//  Rewrites the broker's configuration so that a restart binds the port it has now (clients
//  that reconnect find it again).
void vdt_broker_pin_endpoint(vdt_world_t *self);

//  SIGKILL and wait.
void vdt_broker_kill(vdt_world_t *self);

//  SIGHUP: the broker reloads its registry and policy.
void vdt_broker_hangup(vdt_world_t *self);

//  Writes `text` as the world's policy file (policy.vdp) and names it in the configuration, so
//  the broker loads it at its next start and at every reload.
void vdt_broker_use_policy(vdt_world_t *self, const char *text);

//  True while the broker process this world started is running.
bool vdt_broker_alive(vdt_world_t *self);

const char *vdt_endpoint(vdt_world_t *self);

//  The broker's public key (Z85).
const char *vdt_broker_key(vdt_world_t *self);

//  Path of the broker's log (its stderr).
const char *vdt_broker_log(vdt_world_t *self);

//  True if the broker's log contains `text`.
bool vdt_log_contains(vdt_world_t *self, const char *text);

/*  Runs the vedetta CLI with `args` (NULL-terminated, without the program name), waits for it,
    and returns its exit code, with what it printed on stdout in out[size] (NUL-terminated).  */
int vdt_cli(const char *const *args, char *out, size_t size);

//  Path of a file inside the world's directory (borrowed until the next call).
const char *vdt_path(vdt_world_t *self, const char *name);

//  A client connected as `org`; aborts the test if it cannot connect.
vd_client_t *vdt_connect(vdt_world_t *self, const char *org);

/*  Signs `env` alone (a tree of one) with the signing key of `org`'s secret file, as
    libvedetta would, for envelopes sent through a raw DEALER. Drops env's raw bytes.  */
void vdt_sign(vdt_world_t *self, const char *org, vdp_envelope_t *env);

//  A raw DEALER with CURVE as `org` (no hello sent), for speaking malformed protocol.
zsock_t *vdt_raw_dealer(vdt_world_t *self, const char *org);

//  An envelope ready to publish (kind alert, status actual, category other, severity minor,
//  ctype text/plain) on `topic` at `tlp` with a text body. Caller owns it.
vd_envelope_t *vdt_envelope(const char *topic, const char *tlp, const char *body);

//  Publishes and returns the receipt status; aborts the test if no receipt comes in 5 s.
vd_receipt_t vdt_publish(vd_client_t *client, vd_envelope_t *env);

//  Subscribes, aborting the test unless the broker answers with `expected` (VD_OK, VD_EACCES...).
void vdt_subscribe(vd_client_t *client, const char *pattern, int expected);

//  Receives the next delivery (5 s at most) and returns its body as a new string, or NULL on
//  timeout. Caller frees.
char *vdt_recv_body(vd_client_t *client);

#endif

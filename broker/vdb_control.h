/*  vdb_control: the broker's local administration socket. A ZeroMQ REP socket bound on
    ipc://PATH (`broker/control`), its file made with mode 0600: only the broker's own user (and
    root) may connect, the same people who may signal the process. One request at a time: a
    command word ("reload", "stats"), answered with one JSON object by the server, which alone
    knows how to carry the command out (vdb_server.c). No CURVE here: the file's permissions are
    the credential, and the socket never leaves the machine.  */

#ifndef VDB_CONTROL_H_INCLUDED
#define VDB_CONTROL_H_INCLUDED

#include <stddef.h>

#define VDB_CONTROL_MAX_COMMAND 32 // the longest command word

typedef struct vdb_control_t vdb_control_t;

/*  Binds the socket at `path` (a stale socket file left by a crash is replaced). NULL with
    `err` if the path is too long for a Unix socket, another process listens there ("in use by
    another broker"), or the bind fails.  */
vdb_control_t *vdb_control_new(const char *path, char *err, size_t err_size);

//  Closes the socket; its file goes with it.
void vdb_control_destroy(vdb_control_t **self_p);

//  The socket, for the loop's poll (ZMQ_POLLIN: a request waits).
void *vdb_control_socket(vdb_control_t *self);

/*  Reads the waiting request into `command` (NUL-terminated). Returns VD_OK; VD_EINVAL if it
    was not a command word (too long, or not [a-z-]) — answer it anyway, the socket expects a
    reply; VD_ENOTFOUND if none is waiting.  */
int vdb_control_recv(vdb_control_t *self, char command[VDB_CONTROL_MAX_COMMAND + 1]);

//  Sends the reply to the request just read. Returns VD_OK or VD_EIO.
int vdb_control_reply(vdb_control_t *self, const char *json);

#endif

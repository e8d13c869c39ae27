/*  vdb_control: see vdb_control.h.  */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <czmq.h>

#include "vdb_control.h"
#include "vdp_errors.h"
#include "vedetta.h"

struct vdb_control_t {
    zsock_t *socket;
    char path[sizeof((struct sockaddr_un *)0)->sun_path];
};

//  Whether a process listens on the Unix socket at `path` now: libzmq's bind would replace the
//  file of a live socket as readily as a stale one left by a crash.
static bool
s_in_use(const char *path)
{
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    snprintf(address.sun_path, sizeof address.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool live = connect(fd, (struct sockaddr *)&address, sizeof address) == 0;
    close(fd);
    return live;
}

vdb_control_t *
vdb_control_new(const char *path, char *err, size_t err_size)
{
    if (!path || !*path) {
        vdp_errorf(err, err_size, VD_EINVAL, "control: no path");
        return NULL;
    }
    vdb_control_t *self = calloc(1, sizeof *self);
    if (!self) {
        vdp_errorf(err, err_size, VD_ENOMEM, "control: out of memory");
        return NULL;
    }
    if (strlen(path) >= sizeof self->path) {
        vdp_errorf(err, err_size, VD_EINVAL,
                   "control: longer than a Unix socket path may be (%zu bytes): %s",
                   sizeof self->path - 1, path);
        free(self);
        return NULL;
    }
    snprintf(self->path, sizeof self->path, "%s", path);
    if (s_in_use(self->path)) {
        vdp_errorf(err, err_size, VD_EIO, "control: %s: in use by another broker", self->path);
        free(self);
        return NULL;
    }
    self->socket = zsock_new(ZMQ_REP);
    if (!self->socket) {
        vdp_errorf(err, err_size, VD_EINTERNAL, "control: cannot create a socket");
        free(self);
        return NULL;
    }
    zsock_set_linger(self->socket, 0);
    //  The file is created by bind(2) with the process's umask: narrow it for that call, so the
    //  socket is never open to others, not even for a moment.
    mode_t saved = umask(077);
    int rc = zsock_bind(self->socket, "ipc://%s", self->path);
    int code = errno;
    umask(saved);
    if (rc != 0) {
        vdp_errorf(err, err_size, VD_EIO, "control: cannot bind ipc://%s: %s", self->path,
                   zmq_strerror(code));
        zsock_destroy(&self->socket);
        free(self);
        return NULL;
    }
    return self;
}

void
vdb_control_destroy(vdb_control_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vdb_control_t *self = *self_p;
    zsock_destroy(&self->socket); // libzmq removes the socket's file
    free(self);
    *self_p = NULL;
}

void *
vdb_control_socket(vdb_control_t *self)
{
    return self ? zsock_resolve(self->socket) : NULL;
}

int
vdb_control_recv(vdb_control_t *self, char command[VDB_CONTROL_MAX_COMMAND + 1])
{
    command[0] = '\0';
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, zsock_resolve(self->socket), ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return VD_ENOTFOUND;
    }
    //  A request of several parts is read whole, so the socket is ready for our reply.
    bool word = !zmq_msg_more(&msg) && zmq_msg_size(&msg) <= VDB_CONTROL_MAX_COMMAND;
    const char *data = zmq_msg_data(&msg);
    for (size_t i = 0; word && i < zmq_msg_size(&msg); i++)
        word = (data[i] >= 'a' && data[i] <= 'z') || data[i] == '-';
    if (word) {
        memcpy(command, data, zmq_msg_size(&msg));
        command[zmq_msg_size(&msg)] = '\0';
    }
    while (zmq_msg_more(&msg)) {
        zmq_msg_close(&msg);
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, zsock_resolve(self->socket), 0) < 0)
            break;
    }
    zmq_msg_close(&msg);
    return word && command[0] ? VD_OK : VD_EINVAL;
}

int
vdb_control_reply(vdb_control_t *self, const char *json)
{
    return zmq_send(zsock_resolve(self->socket), json, strlen(json), ZMQ_DONTWAIT) < 0 ? VD_EIO
                                                                                       : VD_OK;
}

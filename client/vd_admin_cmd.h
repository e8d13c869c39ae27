/*  vd_admin_cmd: `vedetta admin`, the operator's commands to a running broker on the same
    machine, through its admin socket (broker/vdb_control.h, docs/operations.md).  */

#ifndef VD_ADMIN_CMD_H_INCLUDED
#define VD_ADMIN_CMD_H_INCLUDED

//  Runs `vedetta admin ...` with argv[0] = "admin". Returns the process exit code.
int vd_admin_command(int argc, char **argv);

#endif

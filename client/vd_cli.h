/*  vd_cli: what the vedetta CLI's commands (vedetta.c, vd_admin_cmd.c, vd_audit_cmd.c) share.  */

#ifndef VD_CLI_H_INCLUDED
#define VD_CLI_H_INCLUDED

#define VD_CLI_EXIT_USAGE 1 // bad arguments, unreadable files, local I/O errors

/*  Prints "vedetta COMMAND: <message>" and a pointer to the command's --help on stderr, and
    returns VD_CLI_EXIT_USAGE. COMMAND may hold a subcommand ("audit verify"): the pointer
    names its first word.  */
__attribute__((format(printf, 2, 3))) int
vd_cli_usage_error(const char *command, const char *fmt, ...);

#endif

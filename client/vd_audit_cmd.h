/*  vd_audit_cmd: the `vedetta audit` command, over the broker's audit log (docs/audit.md).

        vedetta audit verify LOG [--head FILE] [--key BROKER.agency]
        vedetta audit query LOG [--org ORG] [--kind KIND] [--since TIME] [--until TIME]

    verify prints one JSON object; query prints the matching records as they are in the log,
    one per line. Diagnostics go to stderr.  */

#ifndef VD_AUDIT_CMD_H_INCLUDED
#define VD_AUDIT_CMD_H_INCLUDED

/*  Runs `vedetta audit` with argv[0] "audit" and argv[1] the subcommand. Returns the exit
    code: 0 done (verify: the log is intact); 1 usage error, or a file that cannot be read (a
    query also when a line is not a record); 2 (verify) the log or its head is not intact.  */
int vd_audit_command(int argc, char **argv);

#endif

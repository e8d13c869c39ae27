/*  vd_admin_cmd: see vd_admin_cmd.h. One request on a REQ socket, one JSON answer printed as
    it came; the exit code says whether the broker did it (0), refused it (2), or could not be
    reached (3).  */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <czmq.h>
#include <jansson.h>

#include "vd_admin_cmd.h"
#include "vd_cli.h"

#define S_DEFAULT_CONTROL "vedettad.ctl"
#define S_DEFAULT_TIMEOUT 5000 // ms; a reload reads every agency file, so leave it room
#define S_MAX_ANSWER      65536

enum { S_EXIT_OK = 0, S_EXIT_USAGE = 1, S_EXIT_REFUSED = 2, S_EXIT_UNREACHABLE = 3 };

static const char *s_help =
    "Usage: vedetta admin COMMAND [--control PATH] [--timeout MS]\n"
    "\n"
    "Asks the broker running on this machine, through its admin socket, and prints its JSON\n"
    "answer on one line.\n"
    "\n"
    "Commands:\n"
    "  reload    read the registry directory and the policy file again and swap them in whole;\n"
    "            sessions of keys now revoked or removed are cut at once. If a file is bad,\n"
    "            nothing changes and the answer says why (exit 2).\n"
    "  stats     the broker's counters\n"
    "\n"
    "  --control PATH   the broker's admin socket (default ./" S_DEFAULT_CONTROL ", or the\n"
    "                   broker's `broker/control`)\n"
    "  --timeout MS     how long to wait for the answer (default 5000)\n";

int
vd_admin_command(int argc, char **argv)
{
    static const struct option options[] = {
        { "control", required_argument, NULL, 'c' },
        { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *control = S_DEFAULT_CONTROL;
    long timeout = S_DEFAULT_TIMEOUT;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":c:t:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            control = optarg;
            break;
        case 't': {
            char *end = NULL;
            timeout = strtol(optarg, &end, 10);
            if (!*optarg || *end || timeout <= 0 || timeout > 3600 * 1000)
                return vd_cli_usage_error("admin", "--timeout must be 1 to 3600000 ms, not '%s'",
                                          optarg);
            break;
        }
        case 'h':
            fputs(s_help, stdout);
            return S_EXIT_OK;
        case ':':
            return vd_cli_usage_error("admin", "option %s needs a value", argv[optind - 1]);
        default:
            return vd_cli_usage_error("admin", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return vd_cli_usage_error("admin", "%s",
                                  optind >= argc ? "a command is needed: reload or stats"
                                                 : "one command only");
    const char *command = argv[optind];
    if (strcmp(command, "reload") != 0 && strcmp(command, "stats") != 0)
        return vd_cli_usage_error("admin", "unknown command '%s' (reload or stats)", command);
    //  connect(2) to a path that is not there would wait for it: say so at once instead.
    struct stat st;
    if (stat(control, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        fprintf(stderr, "vedetta admin: %s: no broker admin socket there\n", control);
        return S_EXIT_UNREACHABLE;
    }

    zsys_init();
    zsys_handler_set(NULL); // keep the default signal behaviour: Ctrl-C stops us
    zsock_t *socket = zsock_new(ZMQ_REQ);
    int rc = S_EXIT_UNREACHABLE;
    if (!socket || zsock_connect(socket, "ipc://%s", control) != 0) {
        fprintf(stderr, "vedetta admin: cannot connect to %s\n", control);
        goto done;
    }
    zsock_set_linger(socket, 0);
    zsock_set_rcvtimeo(socket, (int)timeout);
    zsock_set_sndtimeo(socket, (int)timeout);
    if (zmq_send(zsock_resolve(socket), command, strlen(command), 0) < 0) {
        fprintf(stderr, "vedetta admin: %s: cannot send: %s\n", control, zmq_strerror(errno));
        goto done;
    }
    char *answer = malloc(S_MAX_ANSWER + 1);
    int size = answer ? zmq_recv(zsock_resolve(socket), answer, S_MAX_ANSWER, 0) : -1;
    if (size < 0) {
        fprintf(stderr, "vedetta admin: %s: no answer in %ld ms\n", control, timeout);
        free(answer);
        goto done;
    }
    answer[size < S_MAX_ANSWER ? size : S_MAX_ANSWER] = '\0';
    printf("%s\n", answer);
    json_t *json = json_loads(answer, 0, NULL);
    json_t *ok = json ? json_object_get(json, "ok") : NULL;
    rc = json_is_true(ok) ? S_EXIT_OK : S_EXIT_REFUSED;
    json_t *error = json ? json_object_get(json, "error") : NULL;
    if (rc != S_EXIT_OK)
        fprintf(stderr, "vedetta admin: %s refused: %s\n", command,
                json_is_string(error) ? json_string_value(error) : "malformed answer");
    json_decref(json);
    free(answer);
done:
    zsock_destroy(&socket);
    return rc;
}

/*  vdb_control suite: the admin socket on a real Unix socket in a fresh directory: its file
    mode, a request and its answer, what is not a command word, a second broker on the same
    path refused, a stale file from a crash replaced, a path too long for a Unix socket.  */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <check.h>
#include <czmq.h>

#include "scratch.h"
#include "suites.h"
#include "vdb_control.h"
#include "vedetta.h"

#define S_WAIT_MS 5000

static char s_dir[256];
static char s_path[512];
static char s_err[256];
static vdb_control_t *s_control;
static zsock_t *s_client;

static void
s_setup(void)
{
    vdt_scratch_make(s_dir, sizeof s_dir, "vdb_control");
    snprintf(s_path, sizeof s_path, "%s/vedettad.ctl", s_dir);
    s_err[0] = '\0';
    s_control = NULL;
    s_client = NULL;
}

static void
s_teardown(void)
{
    zsock_destroy(&s_client);
    vdb_control_destroy(&s_control);
    ck_assert_ptr_null(s_control);
    vdt_scratch_remove(s_dir);
}

static void
s_open(void)
{
    s_control = vdb_control_new(s_path, s_err, sizeof s_err);
    ck_assert_msg(s_control != NULL, "new: %s", s_err);
    s_client = zsock_new(ZMQ_REQ);
    ck_assert_ptr_nonnull(s_client);
    zsock_set_rcvtimeo(s_client, S_WAIT_MS);
    ck_assert_int_eq(zsock_connect(s_client, "ipc://%s", s_path), 0);
}

//  Waits for the request the client sent, as the broker's poll would.
static int
s_recv(char command[VDB_CONTROL_MAX_COMMAND + 1])
{
    zmq_pollitem_t item = { vdb_control_socket(s_control), 0, ZMQ_POLLIN, 0 };
    ck_assert_int_eq(zmq_poll(&item, 1, S_WAIT_MS), 1);
    return vdb_control_recv(s_control, command);
}

static char *
s_answer(void)
{
    char *answer = zstr_recv(s_client);
    ck_assert_ptr_nonnull(answer);
    return answer;
}

START_TEST(a_request_and_its_answer)
{
    s_open();
    struct stat st;
    ck_assert_int_eq(stat(s_path, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    ck_assert_int_eq(st.st_mode & 077, 0); // only the broker's user

    char command[VDB_CONTROL_MAX_COMMAND + 1];
    ck_assert_int_eq(vdb_control_recv(s_control, command), VD_ENOTFOUND);
    ck_assert_int_eq(zstr_send(s_client, "stats"), 0);
    ck_assert_int_eq(s_recv(command), VD_OK);
    ck_assert_str_eq(command, "stats");
    ck_assert_int_eq(vdb_control_reply(s_control, "{\"ok\":true}"), VD_OK);
    char *answer = s_answer();
    ck_assert_str_eq(answer, "{\"ok\":true}");
    zstr_free(&answer);

    //  The socket takes the next request once the last is answered.
    ck_assert_int_eq(zstr_send(s_client, "reload"), 0);
    ck_assert_int_eq(s_recv(command), VD_OK);
    ck_assert_str_eq(command, "reload");
    ck_assert_int_eq(vdb_control_reply(s_control, "{}"), VD_OK);
    answer = s_answer();
    zstr_free(&answer);
}
END_TEST

START_TEST(what_is_not_a_command_word_is_refused_and_answered)
{
    s_open();
    static const char *bad[] = { "RELOAD", "reload;stats", "",
                                 "a-very-long-command-word-past-the-limit" };
    char command[VDB_CONTROL_MAX_COMMAND + 1];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(zstr_send(s_client, bad[i]), 0);
        ck_assert_int_eq(s_recv(command), VD_EINVAL);
        ck_assert_str_eq(command, "");
        ck_assert_int_eq(vdb_control_reply(s_control, "{\"ok\":false}"), VD_OK);
        char *answer = s_answer();
        zstr_free(&answer);
    }
    //  A request of two parts is read whole, and refused.
    ck_assert_int_eq(zstr_sendm(s_client, "stats"), 0);
    ck_assert_int_eq(zstr_send(s_client, "more"), 0);
    ck_assert_int_eq(s_recv(command), VD_EINVAL);
    ck_assert_int_eq(vdb_control_reply(s_control, "{\"ok\":false}"), VD_OK);
    char *answer = s_answer();
    zstr_free(&answer);
}
END_TEST

START_TEST(a_second_broker_on_the_path_is_refused)
{
    s_open();
    vdb_control_t *second = vdb_control_new(s_path, s_err, sizeof s_err);
    ck_assert_ptr_null(second);
    ck_assert_msg(strstr(s_err, "in use by another broker") != NULL, "err: %s", s_err);
    //  The first still answers.
    ck_assert_int_eq(zstr_send(s_client, "stats"), 0);
    char command[VDB_CONTROL_MAX_COMMAND + 1];
    ck_assert_int_eq(s_recv(command), VD_OK);
}
END_TEST

START_TEST(a_stale_socket_file_is_replaced)
{
    //  What a crash leaves: a socket file nobody listens on.
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    ck_assert_uint_lt(strlen(s_path), sizeof address.sun_path);
    memcpy(address.sun_path, s_path, strlen(s_path) + 1);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&address, sizeof address), 0);
    close(fd);
    ck_assert_int_eq(access(s_path, F_OK), 0);
    s_open();
    ck_assert_int_eq(zstr_send(s_client, "stats"), 0);
    char command[VDB_CONTROL_MAX_COMMAND + 1];
    ck_assert_int_eq(s_recv(command), VD_OK);
}
END_TEST

START_TEST(paths_that_cannot_be_bound_are_refused)
{
    char path[300];
    memset(path, 'x', sizeof path - 1);
    path[0] = '/';
    path[sizeof path - 1] = '\0';
    ck_assert_ptr_null(vdb_control_new(path, s_err, sizeof s_err));
    ck_assert_msg(strstr(s_err, "longer than a Unix socket path") != NULL, "err: %s", s_err);
    snprintf(path, sizeof path, "%s/no/such/dir/vedettad.ctl", s_dir);
    ck_assert_ptr_null(vdb_control_new(path, s_err, sizeof s_err));
    ck_assert_msg(strstr(s_err, "cannot bind") != NULL, "err: %s", s_err);
    ck_assert_ptr_null(vdb_control_new("", s_err, sizeof s_err));
    ck_assert_ptr_null(vdb_control_new(NULL, s_err, sizeof s_err));
    vdb_control_destroy(NULL); // harmless
}
END_TEST

Suite *
vdb_control_suite(void)
{
    Suite *suite = suite_create("vdb_control");
    TCase *tc = tcase_create("control");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, a_request_and_its_answer);
    tcase_add_test(tc, what_is_not_a_command_word_is_refused_and_answered);
    tcase_add_test(tc, a_second_broker_on_the_path_is_refused);
    tcase_add_test(tc, a_stale_socket_file_is_replaced);
    tcase_add_test(tc, paths_that_cannot_be_bound_are_refused);
    suite_add_tcase(suite, tc);
    return suite;
}

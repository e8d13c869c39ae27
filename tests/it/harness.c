/*  harness: see harness.h.  */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "harness.h"
#include "vdp_agency.h"
#include "vdp_ids.h"
#include "vdp_sig.h"

#define MAX_AGENCIES  16
#define START_WAIT_MS 10000
#define STOP_WAIT_MS  10000

extern char **environ;

struct vdt_world_t {
    char dir[256];
    char path[512]; // scratch for vdt_path
    char endpoint[256];
    char broker_key[VDP_KEY_Z85_LEN + 1];
    pid_t broker; // 0 when not running
    struct {
        char org[VDP_MAX_ORG + 1];
        char secret[512];
    } agencies[MAX_AGENCIES];
    size_t agency_count;
};

static void
s_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

const char *
vdt_path(vdt_world_t *self, const char *name)
{
    snprintf(self->path, sizeof self->path, "%s/%s", self->dir, name);
    return self->path;
}

vdt_world_t *
vdt_world_new(void)
{
    vdt_world_t *self = calloc(1, sizeof *self);
    ck_assert_ptr_nonnull(self);
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(self->dir, sizeof self->dir, "%s/vedetta-it-XXXXXX", tmp);
    ck_assert_ptr_nonnull(mkdtemp(self->dir));
    char keys[300], agencies[300];
    snprintf(keys, sizeof keys, "%s/keys", self->dir);
    snprintf(agencies, sizeof agencies, "%s/agencies", self->dir);
    ck_assert_int_eq(mkdir(keys, 0700), 0);
    ck_assert_int_eq(mkdir(agencies, 0755), 0);
    char secret[400], public[400];
    snprintf(secret, sizeof secret, "%s/broker.secret", self->dir);
    snprintf(public, sizeof public, "%s/broker.agency", self->dir);
    ck_assert_int_eq(vd_keygen("broker:toscana", "Broker Toscana", "broker", "toscana", "default",
                               secret, public),
                     VD_OK);
    vdp_agency_t agency;
    char err[256];
    ck_assert_int_eq(vdp_agency_load(public, &agency, err, sizeof err), VD_OK);
    snprintf(self->broker_key, sizeof self->broker_key, "%s", agency.curve_public);
    FILE *cfg = fopen(vdt_path(self, "vedettad.cfg"), "w");
    ck_assert_ptr_nonnull(cfg);
    fprintf(cfg, "broker\n"
                 "    name = \"broker:toscana\"\n"
                 "    endpoint = \"tcp://127.0.0.1:*\"\n"
                 "    secret = \"broker.secret\"\n"
                 "    registry = \"agencies\"\n"
                 "    endpoint-file = \"endpoint\"\n"
                 "log\n"
                 "    level = \"info\"\n");
    fclose(cfg);
    return self;
}

static void
s_remove_tree(const char *dir)
{
    //  Only ever our own mkdtemp directory: its name was made by vdt_world_new.
    if (!strstr(dir, "/vedetta-it-"))
        return;
    zdir_t *tree = zdir_new(dir, NULL);
    if (tree) {
        zdir_remove(tree, true);
        zdir_destroy(&tree);
    }
}

void
vdt_world_destroy(vdt_world_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vdt_world_t *self = *self_p;
    if (self->broker)
        vdt_broker_stop(self);
    if (!getenv("VDT_KEEP"))
        s_remove_tree(self->dir);
    free(self);
    *self_p = NULL;
}

const char *
vdt_agency(vdt_world_t *self, const char *org, const char *role, const char *jur)
{
    ck_assert_uint_lt(self->agency_count, MAX_AGENCIES);
    char slug[VDP_MAX_ORG + 1];
    ck_assert_int_eq(vdp_org_slug(org, slug, sizeof slug), 0);
    char public[600];
    snprintf(public, sizeof public, "%s/agencies/%s.default.agency", self->dir, slug);
    size_t i = self->agency_count++;
    snprintf(self->agencies[i].org, sizeof self->agencies[i].org, "%s", org);
    char secret[sizeof self->agencies[i].secret];
    snprintf(secret, sizeof secret, "%s/keys/%s.default.secret", self->dir, slug);
    memcpy(self->agencies[i].secret, secret, sizeof secret);
    ck_assert_int_eq(vd_keygen(org, org, role, jur, "default", self->agencies[i].secret, public),
                     VD_OK);
    return self->agencies[i].secret;
}

vdt_world_t *
vdt_world_demo(bool pinned)
{
    vdt_world_t *self = vdt_world_new();
    vdt_agencies_demo(self);
    vdt_broker_start(self);
    if (pinned)
        vdt_broker_pin_endpoint(self);
    return self;
}

void
vdt_agencies_demo(vdt_world_t *self)
{
    vdt_agency(self, "cosc:toscana", "cosc", "toscana");
    vdt_agency(self, "comune:i726", "comune", "toscana");
    vdt_agency(self, "anci:toscana", "anci", "toscana");
    vdt_agency(self, "cosc:sicilia-occ", "cosc", "sicilia-occ");
    vdt_agency(self, "comune:b429", "comune", "sicilia-occ");
    vdt_agency(self, "comune:d612", "comune", "toscana");
    vdt_agency(self, "cnaipic", "cnaipic", "national");
}

const char *
vdt_secret(vdt_world_t *self, const char *org)
{
    for (size_t i = 0; i < self->agency_count; i++)
        if (strcmp(self->agencies[i].org, org) == 0)
            return self->agencies[i].secret;
    return NULL;
}

void
vdt_sign(vdt_world_t *self, const char *org, vdp_envelope_t *env)
{
    const char *path = vdt_secret(self, org);
    ck_assert_msg(path, "no secret file for %s", org);
    vdp_secret_t secret;
    char err[256] = "";
    ck_assert_msg(vdp_secret_load(path, &secret, err, sizeof err) == VD_OK, "%s", err);
    uint8_t sign_secret[VDP_SIGN_SECRET_BYTES];
    ck_assert_int_eq(vdp_secret_sign_key(&secret, sign_secret), VD_OK);
    vdp_secret_wipe(&secret);
    ck_assert_int_eq(vdp_envelope_drop_raw(env), VD_OK);
    env->sig_len = 0;
    uint8_t leaf[1][VDP_SIG_HASH_BYTES];
    vdp_sig_t sig;
    ck_assert_int_eq(vdp_sig_leaf(env, leaf[0]), VD_OK);
    ck_assert_int_eq(vdp_sig_sign((const uint8_t(*)[VDP_SIG_HASH_BYTES])leaf, 1, sign_secret, &sig),
                     VD_OK);
    env->sig_len = vdp_sig_encode(&sig, env->sig);
}

bool
vdt_broker_alive(vdt_world_t *self)
{
    if (!self->broker)
        return false;
    int status;
    pid_t rc = waitpid(self->broker, &status, WNOHANG);
    if (rc == self->broker) {
        self->broker = 0;
        return false;
    }
    return rc == 0;
}

void
vdt_broker_start(vdt_world_t *self)
{
    ck_assert_int_eq(self->broker, 0);
    char endpoint_file[600];
    snprintf(endpoint_file, sizeof endpoint_file, "%s/endpoint", self->dir);
    unlink(endpoint_file);
    char log_path[600], cfg_path[600];
    snprintf(log_path, sizeof log_path, "%s/broker.log", self->dir);
    snprintf(cfg_path, sizeof cfg_path, "%s/vedettad.cfg", self->dir);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
            close(fd);
        }
        execl(VDT_BROKER_BIN, "vedettad", "--config", cfg_path, (char *)NULL);
        _exit(127);
    }
    self->broker = pid;
    for (int waited = 0; waited < START_WAIT_MS; waited += 10) {
        FILE *file = fopen(endpoint_file, "r");
        if (file) {
            bool ok = fgets(self->endpoint, sizeof self->endpoint, file) != NULL;
            fclose(file);
            if (ok) {
                self->endpoint[strcspn(self->endpoint, "\n")] = '\0';
                return;
            }
        }
        ck_assert_msg(vdt_broker_alive(self), "vedettad exited during start-up (see %s)", log_path);
        s_sleep_ms(10);
    }
    ck_abort_msg("vedettad did not write its endpoint in time");
}

int
vdt_broker_stop(vdt_world_t *self)
{
    if (!self->broker)
        return -1;
    kill(self->broker, SIGTERM);
    int status = -1;
    for (int waited = 0; waited < STOP_WAIT_MS; waited += 10) {
        if (waitpid(self->broker, &status, WNOHANG) == self->broker) {
            self->broker = 0;
            return status;
        }
        s_sleep_ms(10);
    }
    kill(self->broker, SIGKILL);
    waitpid(self->broker, &status, 0);
    self->broker = 0;
    return status;
}

void
vdt_broker_pin_endpoint(vdt_world_t *self)
{
    char path[600];
    snprintf(path, sizeof path, "%s/vedettad.cfg", self->dir);
    FILE *file = fopen(path, "r");
    ck_assert_ptr_nonnull(file);
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    ck_assert_ptr_nonnull(out);
    char line[512];
    while (fgets(line, sizeof line, file)) {
        if (strstr(line, "tcp://127.0.0.1:*"))
            fprintf(out, "    endpoint = \"%s\"\n", self->endpoint);
        else
            fputs(line, out);
    }
    fclose(file);
    fclose(out);
    file = fopen(path, "w");
    ck_assert_ptr_nonnull(file);
    fputs(text, file);
    fclose(file);
    free(text);
}

void
vdt_broker_kill(vdt_world_t *self)
{
    if (!self->broker)
        return;
    kill(self->broker, SIGKILL);
    int status;
    waitpid(self->broker, &status, 0);
    self->broker = 0;
}

void
vdt_broker_hangup(vdt_world_t *self)
{
    ck_assert_msg(self->broker != 0, "no broker running");
    ck_assert_int_eq(kill(self->broker, SIGHUP), 0);
}

void
vdt_broker_use_policy(vdt_world_t *self, const char *text)
{
    char path[600];
    snprintf(path, sizeof path, "%s/policy.vdp", self->dir);
    FILE *file = fopen(path, "w");
    ck_assert_ptr_nonnull(file);
    ck_assert_int_ge(fputs(text, file), 0);
    ck_assert_int_eq(fclose(file), 0);
    snprintf(path, sizeof path, "%s/vedettad.cfg", self->dir);
    file = fopen(path, "r+");
    ck_assert_ptr_nonnull(file);
    char config[4096];
    size_t size = fread(config, 1, sizeof config - 1, file);
    config[size] = '\0';
    if (!strstr(config, "    policy = ")) {
        //  Right after the section line: the broker section comes first in the file.
        const char *rest = strchr(config, '\n');
        ck_assert_ptr_nonnull(rest);
        rewind(file);
        fprintf(file, "%.*s\n    policy = \"policy.vdp\"%s", (int)(rest - config), config, rest);
    }
    ck_assert_int_eq(fclose(file), 0);
}

const char *
vdt_endpoint(vdt_world_t *self)
{
    return self->endpoint;
}

const char *
vdt_broker_key(vdt_world_t *self)
{
    return self->broker_key;
}

const char *
vdt_broker_log(vdt_world_t *self)
{
    return vdt_path(self, "broker.log");
}

bool
vdt_log_contains(vdt_world_t *self, const char *text)
{
    FILE *file = fopen(vdt_broker_log(self), "r");
    if (!file)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, file))
        found = strstr(line, text) != NULL;
    fclose(file);
    return found;
}

vd_client_t *
vdt_connect(vdt_world_t *self, const char *org)
{
    const char *secret = vdt_secret(self, org);
    ck_assert_msg(secret != NULL, "no key for %s", org);
    vd_client_t *client = vd_client_new();
    ck_assert_ptr_nonnull(client);
    int rc = vd_client_connect(client, self->endpoint, self->broker_key, secret, 5000);
    ck_assert_msg(rc == VD_OK, "%s could not connect: %s", org, vd_strerror(rc));
    ck_assert_str_eq(vd_client_org(client), org);
    return client;
}

zsock_t *
vdt_raw_dealer(vdt_world_t *self, const char *org)
{
    const char *path = vdt_secret(self, org);
    ck_assert_ptr_nonnull(path);
    vdp_secret_t secret;
    char err[256];
    ck_assert_int_eq(vdp_secret_load(path, &secret, err, sizeof err), VD_OK);
    zsock_t *dealer = zsock_new(ZMQ_DEALER);
    ck_assert_ptr_nonnull(dealer);
    zsock_set_curve_serverkey(dealer, self->broker_key);
    zsock_set_curve_publickey(dealer, secret.agency.curve_public);
    zsock_set_curve_secretkey(dealer, secret.curve_secret);
    zsock_set_linger(dealer, 0);
    zsock_set_rcvtimeo(dealer, 5000);
    vdp_secret_wipe(&secret);
    ck_assert_int_eq(zsock_connect(dealer, "%s", self->endpoint), 0);
    return dealer;
}

vd_envelope_t *
vdt_envelope(const char *topic, const char *tlp, const char *body)
{
    vd_envelope_t *env = vd_envelope_new();
    ck_assert_ptr_nonnull(env);
    ck_assert_int_eq(vd_envelope_set(env, "topic", topic), VD_OK);
    ck_assert_int_eq(vd_envelope_set(env, "tlp", tlp), VD_OK);
    ck_assert_int_eq(vd_envelope_set(env, "kind", "alert"), VD_OK);
    ck_assert_int_eq(vd_envelope_set(env, "status", "actual"), VD_OK);
    ck_assert_int_eq(vd_envelope_set(env, "category", "other"), VD_OK);
    ck_assert_int_eq(vd_envelope_set(env, "severity", "minor"), VD_OK);
    ck_assert_int_eq(vd_envelope_set(env, "ctype", "text/plain"), VD_OK);
    ck_assert_int_eq(vd_envelope_set_body(env, body, strlen(body)), VD_OK);
    return env;
}

vd_receipt_t
vdt_publish(vd_client_t *client, vd_envelope_t *env)
{
    vd_receipt_t receipt;
    memset(&receipt, 0, sizeof receipt);
    int rc = vd_client_publish(client, env, &receipt, 5000);
    ck_assert_msg(rc == VD_OK, "publish failed: %s", vd_strerror(rc));
    return receipt;
}

void
vdt_subscribe(vd_client_t *client, const char *pattern, int expected)
{
    char reason[256] = "";
    int rc = vd_client_subscribe(client, pattern, reason, sizeof reason, 5000);
    ck_assert_msg(rc == expected, "subscribe %s: got %s (%s), expected %s", pattern,
                  vd_strerror_name(rc), reason, vd_strerror_name(expected));
}

char *
vdt_recv_body(vd_client_t *client)
{
    vd_envelope_t *env = NULL;
    int rc = vd_client_recv(client, &env, 5000);
    if (rc != VD_OK)
        return NULL;
    size_t size = 0;
    const void *body = vd_envelope_body(env, &size);
    char *text = strndup(body ? body : "", size);
    vd_envelope_destroy(&env);
    return text;
}

int
vdt_cli(const char *const *args, char *out, size_t out_size)
{
    const char *argv[16] = { VDT_CLI_BIN };
    size_t argc = 1;
    for (; args[argc - 1] && argc < 15; argc++)
        argv[argc] = args[argc - 1];
    argv[argc] = NULL;
    int pipe_fds[2];
    ck_assert_int_eq(pipe(pipe_fds), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
    pid_t pid;
    int rc = posix_spawn(&pid, VDT_CLI_BIN, &actions, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    ck_assert_msg(rc == 0, "cannot start %s: %s", VDT_CLI_BIN, strerror(rc));
    close(pipe_fds[1]);
    size_t size = 0;
    ssize_t n;
    while (size + 1 < out_size && (n = read(pipe_fds[0], out + size, out_size - 1 - size)) > 0)
        size += (size_t)n;
    out[size] = '\0';
    close(pipe_fds[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

//  The registry's file of `org`'s key, as vdt_agency installed it.
static void
s_agency_path(vdt_world_t *self, const char *org, char *path, size_t size)
{
    char slug[VDP_MAX_ORG + 1];
    ck_assert_int_eq(vdp_org_slug(org, slug, sizeof slug), 0);
    int n = snprintf(path, size, "%s/agencies/%s.default.agency", self->dir, slug);
    ck_assert(n > 0 && (size_t)n < size);
}

vdp_agency_t
vdt_agency_read(vdt_world_t *self, const char *org)
{
    char path[600], err[256] = "";
    s_agency_path(self, org, path, sizeof path);
    vdp_agency_t agency;
    ck_assert_msg(vdp_agency_load(path, &agency, err, sizeof err) == VD_OK, "%s", err);
    return agency;
}

void
vdt_agency_write(vdt_world_t *self, const vdp_agency_t *agency)
{
    char path[600];
    s_agency_path(self, agency->org, path, sizeof path);
    ck_assert_int_eq(vdp_agency_save(agency, path), VD_OK);
}

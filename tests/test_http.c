/*
 * tests/test_http.c -- a live quiverd for tests (see test_http.h; the HTTP client is
 * tests/http_client.c).
 */
#include "tests/test_http.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/test_util.h"

#define MAX_RUNNING 4
static pid_t running[MAX_RUNNING];

void test_server_kill_all(void)
{
    for (int i = 0; i < MAX_RUNNING; i++)
        if (running[i]) {
            kill(running[i], SIGKILL);
            waitpid(running[i], NULL, 0);
            running[i] = 0;
        }
}

static int port_after(const char *buf, const char *prefix)
{
    const char *l = strstr(buf, prefix);
    if (!l) return 0;
    const char *nl = strchr(l, '\n'), *c = nl;
    if (!nl) return 0;
    while (c > l && c[-1] != ':') c--;
    return atoi(c);
}

void test_server_start(test_server *s, const char *dir, int qdrant, const char *const *extra)
{
    char bin[512];
    snprintf(bin, sizeof bin, "%s/quiverd", build_dir());
    ck_assert_msg(access(bin, X_OK) == 0, "%s is not built", bin);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    const char *argv[32] = {bin, "--listen", "127.0.0.1:0", "--data", dir, "--threads", "2", "--log-level",
                            getenv("QV_SRV_LOG") ? getenv("QV_SRV_LOG") : "warn"};
    int argc = 9;
    if (qdrant) {
        argv[argc++] = "--qdrant-listen";
        argv[argc++] = "127.0.0.1:0";
    }
    for (int i = 0; extra && extra[i] && argc < 30; i++) argv[argc++] = extra[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    for (int i = 0; i < MAX_RUNNING; i++)
        if (!running[i]) { running[i] = pid; break; }
    memset(s, 0, sizeof *s);
    s->pid = pid;
    char buf[1024];
    size_t got = 0;
    buf[0] = 0;
    const char *last = qdrant ? "quiverd qdrant api listening on " : "quiverd listening on ";
    while (!port_after(buf, last)) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        ck_assert_msg(poll(&p, 1, 120000) > 0, "quiverd printed no ready line within 120 s");
        ssize_t r = read(fds[0], buf + got, sizeof buf - 1 - got);
        ck_assert_msg(r > 0, "quiverd exited before its ready line: %s", buf);
        got += (size_t)r;
        buf[got] = 0;
    }
    close(fds[0]);
    s->port = port_after(buf, "quiverd listening on ");
    if (qdrant) s->qport = port_after(buf, last);
    ck_assert_msg(s->port > 0 && (!qdrant || s->qport > 0), "ready lines: %s", buf);
}

int test_server_signal(test_server *s, int sig)
{
    int st = 0;
    kill(s->pid, sig);
    ck_assert_int_eq(waitpid(s->pid, &st, 0), s->pid);
    for (int i = 0; i < MAX_RUNNING; i++)
        if (running[i] == s->pid) running[i] = 0;
    s->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int test_server_stop(test_server *s)
{
    return test_server_signal(s, SIGTERM);
}

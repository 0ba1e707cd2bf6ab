/*
 * tests/test_http.c -- a live quiverd for tests, and a tiny blocking HTTP/1.1 client
 * (see test_http.h).
 */
#include "tests/test_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
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

int test_server_stop(test_server *s)
{
    int st = 0;
    kill(s->pid, SIGTERM);
    ck_assert_int_eq(waitpid(s->pid, &st, 0), s->pid);
    for (int i = 0; i < MAX_RUNNING; i++)
        if (running[i] == s->pid) running[i] = 0;
    s->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static long ms_left(const struct timespec *end)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (end->tv_sec - now.tv_sec) * 1000 + (end->tv_nsec - now.tv_nsec) / 1000000;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int test_http(int port, const char *method, const char *path, const char *headers, const char *body,
              int timeout_ms, char **out)
{
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += timeout_ms / 1000;
    end.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (end.tv_nsec >= 1000000000) { end.tv_sec++; end.tv_nsec -= 1000000000; }
    if (out) *out = NULL;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int status = 0;
    size_t bl = body ? strlen(body) : 0, cap = 1 << 14, n = 0;
    char head[2048], *buf = malloc(cap);
    if (!buf || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) goto done;
    int hl = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      method, path, headers ? headers : "", bl);
    if (hl < 0 || (size_t)hl >= sizeof head || send_all(fd, head, (size_t)hl) != 0) goto done;
    if (bl && send_all(fd, body, bl) != 0) goto done;
    for (;;) {
        long left = ms_left(&end);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) { n = 0; break; }   /* a hang: no answer */
        if (n + 1 >= cap) {
            char *t = realloc(buf, cap * 2);
            if (!t) break;
            buf = t;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;                         /* EOF (or reset after the answer) */
        n += (size_t)r;
    }
    buf[n] = 0;
    if (n && sscanf(buf, "HTTP/1.%*d %d", &status) != 1) status = 0;
    if (out) {
        char *b = strstr(buf, "\r\n\r\n");
        *out = strdup(b ? b + 4 : "");
    }
done:
    free(buf);
    close(fd);
    return status;
}

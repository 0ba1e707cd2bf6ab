/*
 * tests/http_client.c -- a tiny blocking HTTP/1.1 client for tests and the fuzzer (see
 * http_client.h). No check calls: safe from any thread and outside check.
 */
#include "tests/http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

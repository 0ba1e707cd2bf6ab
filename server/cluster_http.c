/*
 * server/cluster_http.c -- a small blocking HTTP/1.1 client for cluster mode: etcd's JSON
 * gateway and the other quiverd nodes.
 *
 * Blocking on purpose: the callers are the cluster's poll thread and request handlers
 * that must have the other node's answer before they can answer (a leader replicating a
 * write, a search gathering shards). Every request is one connection with
 * "Connection: close", so a reply ends at EOF; bodies come with Content-Length or
 * chunked (etcd's gateway streams keepalive replies chunked). Every wait is bounded by
 * timeout_ms (connect, each write, each read), so a dead peer costs at most that.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/cluster.h"

#define MAX_REPLY (1ull << 30)

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -1;
}

/* "http://host:port/path" -> host, port, path (pointer into url). */
static int split_url(const char *url, char *host, size_t hlen, char *port, size_t plen, const char **path)
{
    if (strncmp(url, "http://", 7) != 0) return -1;
    const char *h = url + 7, *slash = strchr(h, '/'), *end = slash ? slash : h + strlen(h);
    const char *colon = memchr(h, ':', (size_t)(end - h));
    if (!colon || colon == h || (size_t)(colon - h) >= hlen || (size_t)(end - colon - 1) >= plen || end == colon + 1) return -1;
    memcpy(host, h, (size_t)(colon - h));
    host[colon - h] = 0;
    memcpy(port, colon + 1, (size_t)(end - colon - 1));
    port[end - colon - 1] = 0;
    *path = slash ? slash : "/";
    return 0;
}

static int wait_fd(int fd, short ev, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = ev};
    int rc;
    while ((rc = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {}
    return rc;
}

static int connect_to(const char *host, const char *port, int timeout_ms, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai), fd = -1;
    if (rc != 0) return fail(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        if ((fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol)) < 0) continue;
        int e = 0;
        socklen_t el = sizeof e;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 ||
            (errno == EINPROGRESS && wait_fd(fd, POLLOUT, timeout_ms) > 0 &&
             getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0))
            break;
        snprintf(err, errlen, "cannot connect to %s:%s: %s", host, port, e ? strerror(e) : errno == EINPROGRESS ? "timed out" : strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static int send_all(int fd, const char *p, size_t n, int timeout_ms)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN && wait_fd(fd, POLLOUT, timeout_ms) > 0) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Decode a chunked body in place; -1 when malformed. */
static int unchunk(char *b, size_t len, size_t *out)
{
    size_t r = 0, w = 0;
    for (;;) {
        char *end;
        if (r >= len) return -1;
        unsigned long long n = strtoull(b + r, &end, 16);
        char *crlf = memmem(b + r, len - r, "\r\n", 2);
        if (!crlf || end == b + r) return -1;
        r = (size_t)(crlf - b) + 2;
        if (n == 0) break;
        if (n > len - r) return -1;
        memmove(b + w, b + r, n);
        w += n;
        r += n + 2;
    }
    *out = w;
    return 0;
}

int cl_http(const char *method, const char *url, const char *body, size_t len, int timeout_ms, cl_http_reply *rep,
            char *err, size_t errlen)
{
    char host[256], port[16], *buf = NULL;
    const char *path;
    size_t n = 0, cap = 0;
    memset(rep, 0, sizeof *rep);
    if (split_url(url, host, sizeof host, port, sizeof port, &path) != 0)
        return fail(err, errlen, "bad URL '%s' (want http://host:port/...)", url);
    int fd = connect_to(host, port, timeout_ms, err, errlen);
    if (fd < 0) return -1;
    char head[1024];
    int hl = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n", method, path, host, port, body ? len : 0);
    if (hl < 0 || (size_t)hl >= sizeof head) {
        close(fd);
        return fail(err, errlen, "URL too long: %s", url);
    }
    if (send_all(fd, head, (size_t)hl, timeout_ms) != 0 || (body && send_all(fd, body, len, timeout_ms) != 0)) {
        close(fd);
        return fail(err, errlen, "cannot send to %s:%s", host, port);
    }
    for (;;) {
        if (cap - n < 65536) {
            size_t nc = cap ? cap * 2 : 65536;
            char *nb = nc > MAX_REPLY ? NULL : realloc(buf, nc + 1);
            if (!nb) {
                free(buf);
                close(fd);
                return fail(err, errlen, "reply from %s:%s too large or out of memory", host, port);
            }
            buf = nb;
            cap = nc;
        }
        ssize_t r = recv(fd, buf + n, cap - n, 0);
        if (r > 0) { n += (size_t)r; continue; }
        if (r == 0) break;
        if (errno == EINTR) continue;
        if (errno == EAGAIN && wait_fd(fd, POLLIN, timeout_ms) > 0) continue;
        free(buf);
        close(fd);
        return fail(err, errlen, "no reply from %s:%s (timed out or reset)", host, port);
    }
    close(fd);
    buf[n] = 0;
    char *eoh = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) != 0 || !eoh || n < 12) {
        free(buf);
        return fail(err, errlen, "malformed reply from %s:%s", host, port);
    }
    rep->status = atoi(buf + 9);
    *eoh = 0;
    int chunked = 0;
    for (char *h = strstr(buf, "\r\n"); h && h < eoh; h = strstr(h + 2, "\r\n"))
        if (!strncasecmp(h + 2, "Transfer-Encoding:", 18) && strstr(h + 20, "chunked")) chunked = 1;
    char *b = eoh + 4;
    size_t blen = n - (size_t)(b - buf);
    if (chunked && unchunk(b, blen, &blen) != 0) {
        free(buf);
        return fail(err, errlen, "malformed chunked reply from %s:%s", host, port);
    }
    memmove(buf, b, blen);
    buf[blen] = 0;
    rep->body = buf;
    rep->len = blen;
    return 0;
}

void cl_http_reply_free(cl_http_reply *rep)
{
    free(rep->body);
    rep->body = NULL;
}

/* ---- base64 (etcd's gateway carries keys and values as base64) --------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *cl_b64_encode(const void *p, size_t len)
{
    const unsigned char *s = p;
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < len ? (unsigned)s[i + 1] << 8 : 0) | (i + 2 < len ? s[i + 2] : 0);
        *o++ = b64[v >> 18 & 63];
        *o++ = b64[v >> 12 & 63];
        *o++ = i + 1 < len ? b64[v >> 6 & 63] : '=';
        *o++ = i + 2 < len ? b64[v & 63] : '=';
    }
    *o = 0;
    return out;
}

char *cl_b64_decode(const char *s, size_t *out_len)
{
    size_t len = strlen(s);
    char *out = malloc(len / 4 * 3 + 1);
    size_t o = 0;
    unsigned v = 0;
    int bits = 0;
    if (!out) return NULL;
    for (size_t i = 0; i < len && s[i] != '='; i++) {
        const char *c = strchr(b64, s[i]);
        if (!c || !s[i]) {
            free(out);
            return NULL;
        }
        v = v << 6 | (unsigned)(c - b64);
        if ((bits += 6) >= 8) {
            bits -= 8;
            out[o++] = (char)(v >> bits & 255);
        }
    }
    out[o] = 0;
    *out_len = o;
    return out;
}

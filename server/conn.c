/*
 * server/conn.c -- open connections: the --max-connections cap and read deadlines.
 *
 * Every connection a worker accepts is tracked here from the moment evhttp asks for its
 * bufferevent (main.c's bevcb) until evhttp closes it (its close callback). A tracked
 * connection is in one of three phases:
 *   HEADERS  from its accept (which covers a TLS handshake), or from the first byte of a
 *            later request, until the blank line that ends the request's headers;
 *   BODY     from there until the pipeline has the whole request (srv_conn_request_read);
 *   IDLE     between requests (evhttp's --timeout closes a connection idle too long).
 * HEADERS and BODY each have a deadline fixed when the phase starts (--header-timeout,
 * --body-timeout). Bytes arriving do not move it, so a client that trickles a byte a
 * second is closed when the deadline passes, however long it could keep trickling;
 * evhttp's own timeout, re-armed by every read, could not do that.
 *
 * The cap counts connections of all workers. A worker that accepts one over the cap
 * closes, in this order: its connection that has been reading headers the longest
 * (slowloris connections end up there), else its connection idle the longest (at least
 * EVICT_IDLE_US), else the new one ("refused"). So a flood of slow connections costs
 * only other slow connections their place, and a client that sends its request at once
 * is still served. Each outcome is counted in the metrics.
 *
 * evhttp makes a connection's evhttp_connection only after the bevcb returns, so the
 * tracking finishes ("attach") on the worker's next loop turn, through the connection's
 * own timer fired at once; a bufferevent reference keeps the bufferevent valid until then.
 * The pipeline finds a connection by its socket number (a table shared by the workers,
 * each slot written only by the worker that owns the socket).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/resource.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "server/server.h"

#define EVICT_IDLE_US 1000000u

enum { IDLE = 0, HEADERS, BODY };

typedef struct srv_conn {
    struct srv_conn *prev, *next;
    srv_conns *cs;
    struct bufferevent *bev;
    struct evhttp_connection *evcon;     /* NULL until attached */
    struct event *timer;                 /* attach, then the phase's deadline */
    evutil_socket_t fd;
    int phase, refuse, evict, killed;
    unsigned tail;                       /* the last bytes of headers seen, newest lowest */
    uint64_t since_us;                   /* the phase began */
} srv_conn;

struct srv_conns {
    srv_ctx *ctx;
    struct event_base *base;
    srv_conn *head;                      /* newest first */
    void (*closed)(struct evhttp_connection *evcon, void *arg);
    void *closed_arg;
};

static _Atomic(srv_conn *) *by_fd;       /* the tracked connection of each socket number */
static size_t nfd;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void make_table(void)
{
    struct rlimit rl;
    size_t n = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (size_t)rl.rlim_cur : 65536;
    if (n > (1u << 20)) n = 1u << 20;
    if ((by_fd = calloc(n, sizeof *by_fd))) nfd = n;
}

srv_conns *srv_conns_new(srv_ctx *ctx, struct event_base *base, void (*closed)(struct evhttp_connection *, void *),
                         void *arg)
{
    pthread_once(&table_once, make_table);
    srv_conns *cs = calloc(1, sizeof *cs);
    if (!cs || !by_fd) {
        free(cs);
        return NULL;
    }
    *cs = (srv_conns){ctx, base, NULL, closed, arg};
    return cs;
}

static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg);

static void arm(srv_conn *c, int phase, int seconds)
{
    c->phase = phase;
    c->since_us = api_now_us();
    c->tail = 0;
    if (!c->evcon) return;              /* attach arms it */
    struct timeval tv = {seconds, 0};
    if (phase == IDLE || seconds <= 0) event_del(c->timer);
    else event_add(c->timer, &tv);
}

static void conn_free(srv_conn *c)
{
    srv_conns *cs = c->cs;
    if (c->prev) c->prev->next = c->next;
    else cs->head = c->next;
    if (c->next) c->next->prev = c->prev;
    if (c->fd >= 0 && (size_t)c->fd < nfd) atomic_store_explicit(&by_fd[c->fd], NULL, memory_order_relaxed);
    evbuffer_remove_cb(bufferevent_get_input(c->bev), on_input, c);   /* the bufferevent may outlive c */
    if (c->timer) event_free(c->timer);
    if (!c->evcon && c->bev) bufferevent_decref(c->bev);     /* never attached */
    atomic_fetch_sub(&cs->ctx->connections, 1);
    free(c);
}

/* evhttp closes the connection (any reason): the linger hook, unless quiverd closed it.
 * The socket's events leave the event loop first, while its number still names it. evhttp
 * closes the number right after this, but the bufferevent's own event_del waits until
 * its last reference goes, and the socket callback that evhttp frees it from holds one
 * until it returns: then its epoll_ctl ran on a closed number, which another worker may
 * have been given meanwhile (harmless to the kernel, but ThreadSanitizer rightly saw two
 * workers use one descriptor unordered; the cluster test under TSan, 2026-12-07). */
static void on_closed(struct evhttp_connection *evcon, void *arg)
{
    srv_conn *c = arg;
    srv_conns *cs = c->cs;
    int killed = c->killed;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    if (bev) bufferevent_disable(bev, EV_READ | EV_WRITE);
    conn_free(c);
    if (!killed && cs->closed) cs->closed(evcon, cs->closed_arg);
}

/* Scan what arrived while reading headers for the blank line that ends them. */
static int headers_end(srv_conn *c, struct evbuffer *buf, size_t added)
{
    struct evbuffer_ptr pos;
    struct evbuffer_iovec v[8];
    size_t len = evbuffer_get_length(buf);
    if (evbuffer_ptr_set(buf, &pos, len - added, EVBUFFER_PTR_SET) != 0) return 0;
    int n = evbuffer_peek(buf, (ev_ssize_t)added, &pos, v, 8);
    for (int i = 0; i < n && i < 8; i++) {
        const unsigned char *p = v[i].iov_base;
        for (size_t j = 0; j < v[i].iov_len; j++) {
            unsigned t = (c->tail << 8) | p[j];
            c->tail = t;
            /* "\n\n" or "\n\r\n" (evhttp takes bare LF line ends too) */
            if (p[j] == '\n' && (((t >> 8) & 0xff) == '\n' || (t & 0xffff00) == 0x0a0d00)) return 1;
        }
    }
    return 0;
}

static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    srv_conn *c = arg;
    srv_ctx *ctx = c->cs->ctx;
    if (!info->n_added) return;
    if (c->phase == IDLE) arm(c, HEADERS, ctx->header_timeout_s);
    if (c->phase == HEADERS && headers_end(c, buf, info->n_added)) arm(c, BODY, ctx->body_timeout_s);
}

/* Close c now; why goes to the metrics. */
static void kill_conn(srv_conn *c, int why)
{
    srv_metrics_conn_event(why);
    srv_log(SRV_LOG_DEBUG, "closing a connection: %s", why == SRV_CONN_REFUSED ? "over --max-connections"
            : why == SRV_CONN_EVICTED ? "evicted for a new one" : why == SRV_CONN_HEADER_TIMEOUT
            ? "headers not read within --header-timeout" : "body not read within --body-timeout");
    c->killed = 1;
    evhttp_connection_free(c->evcon);    /* calls on_closed, which frees c */
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    srv_conn *c = arg;
    (void)fd;
    (void)what;
    if (!c->evcon) {                     /* attach */
        void *evcon = NULL;
        bufferevent_getcb(c->bev, NULL, NULL, NULL, &evcon);
        if (!evcon) {                     /* evhttp gave up on it already */
            conn_free(c);
            return;
        }
        c->evcon = evcon;
        bufferevent_decref(c->bev);
        evhttp_connection_set_closecb(c->evcon, on_closed, c);
        c->fd = bufferevent_getfd(c->bev);
        if (c->fd >= 0 && (size_t)c->fd < nfd) atomic_store_explicit(&by_fd[c->fd], c, memory_order_relaxed);
        if (c->refuse) {
            kill_conn(c, SRV_CONN_REFUSED);
            return;
        }
        if (c->phase != IDLE) {
            uint64_t spent = (api_now_us() - c->since_us) / 1000000u;
            int left = (c->phase == HEADERS ? c->cs->ctx->header_timeout_s : c->cs->ctx->body_timeout_s) - (int)spent;
            struct timeval tv = {left > 0 ? left : 0, 0};
            event_add(c->timer, &tv);
        }
        return;
    }
    kill_conn(c, c->evict ? SRV_CONN_EVICTED : c->phase == HEADERS ? SRV_CONN_HEADER_TIMEOUT : SRV_CONN_BODY_TIMEOUT);
}

/* The connection to close for a new one over the cap, or NULL. */
static srv_conn *victim(srv_conns *cs)
{
    srv_conn *reading = NULL, *idle = NULL;
    uint64_t now = api_now_us();
    for (srv_conn *c = cs->head; c; c = c->next) {
        if (!c->evcon || c->evict) continue;
        if (c->phase == HEADERS) reading = c;             /* the list is newest first */
        else if (c->phase == IDLE && now - c->since_us >= EVICT_IDLE_US) idle = c;
    }
    return reading ? reading : idle;
}

void srv_conn_track(srv_conns *cs, struct bufferevent *bev)
{
    srv_ctx *ctx = cs->ctx;
    srv_conn *c = calloc(1, sizeof *c);
    if (!c || !(c->timer = evtimer_new(cs->base, on_timer, c)) || !evbuffer_add_cb(bufferevent_get_input(bev), on_input, c)) {
        if (c && c->timer) event_free(c->timer);
        free(c);
        srv_log(SRV_LOG_WARN, "out of memory tracking a connection");
        return;
    }
    c->cs = cs;
    c->bev = bev;
    c->fd = -1;
    bufferevent_incref(bev);
    if ((c->next = cs->head)) c->next->prev = c;
    cs->head = c;
    long open = atomic_fetch_add(&ctx->connections, 1) + 1;
    arm(c, HEADERS, ctx->header_timeout_s);
    if (ctx->max_connections && open > (long)ctx->max_connections) {
        srv_conn *v = victim(cs);
        if (v) {
            v->evict = 1;
            event_active(v->timer, EV_TIMEOUT, 1);
        } else {
            c->refuse = 1;
        }
    }
    struct timeval now = {0, 0};
    event_add(c->timer, &now);
}

void srv_conn_request_read(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    srv_conn *c = fd >= 0 && (size_t)fd < nfd ? atomic_load_explicit(&by_fd[fd], memory_order_relaxed) : NULL;
    if (c && c->evcon == evcon) arm(c, IDLE, 0);
}

int srv_conns_mid_request(srv_conns *cs)
{
    for (srv_conn *c = cs->head; c; c = c->next) {
        if (c->phase == BODY || (c->phase == HEADERS && c->tail)) return 1;
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) return 1;
        int pending = 0;
        evutil_socket_t fd = bufferevent_getfd(c->bev);
        if (fd >= 0 && ioctl(fd, FIONREAD, &pending) == 0 && pending > 0) return 1;
    }
    return 0;
}

void srv_conns_free(srv_conns *cs)
{
    if (!cs) return;
    while (cs->head) conn_free(cs->head);
    free(cs);
}

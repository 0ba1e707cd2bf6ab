/*
 * server/main.c -- quiverd: options, startup, worker threads, graceful shutdown.
 *
 * Startup: parse options (bad ones: usage on stderr, exit 2), open the database and
 * load every collection, bind the listening socket once, start N workers. Each worker owns
 * an event_base and an evhttp that accepts on its own dup() of the listening socket
 * (the kernel hands each connection to one of them). evthread_use_pthreads() comes
 * first so that the main thread may schedule events on the workers' bases.
 * With --qdrant-listen, a second socket is bound the same way and every worker runs a
 * second evhttp on its base for it: same threads, context, keys, pipeline (pipeline.c,
 * with the Qdrant route table) and shutdown; the ready line for it follows the first one.
 *
 * Signals: SIGTERM and SIGINT are libevent signal events of the main thread's own event
 * base, which it runs until one comes. (Not sigwait(): threads started by libraries
 * before main, such as OpenBLAS's, do not block the signals, and a signal the kernel
 * hands to one of them would kill the process with its default action; libevent's
 * handler only writes to a socket its loop reads.) They stay installed to the end, so a
 * second signal during shutdown is harmless. Workers block both signals. Shutdown: each
 * worker stops accepting
 * (its listener is removed), marks replies "Connection: close", and leaves its loop once
 * every queued reply has been written and 100 ms have passed (requests already sent
 * still arrive and are served), or after a 10 s grace. Handlers run to completion inside
 * the loop, so a request being handled is always answered. libevent 2.1 does not show
 * a server which connections are part-way through sending a request, so one still
 * uploading its body at the end of the window is dropped unanswered -- and, every write
 * being one transaction, nothing of it is applied. Then the main thread closes the
 * database, which checkpoints every collection, and exits 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <event2/util.h>

#include "server/cluster.h"
#include "server/server.h"

#define DRAIN_GRACE_US 10000000u    /* longest wait for queued replies on shutdown */
#define DRAIN_MIN_US   100000u      /* requests already on the wire get this long to arrive */
#define ACCEPT_PAUSE_US 100000      /* no accepting after running out of descriptors */

typedef struct worker worker;

/* One listening socket of a worker: the native API's (0) or Qdrant's (1). */
typedef struct {
    worker *w;
    int api;
    srv_listener target;                       /* what srv_dispatch serves */
    struct evhttp *http;
    struct evhttp_bound_socket *bound;         /* NULL once closed (draining) */
    struct event *resume;                      /* re-enables accepting after a pause */
    atomic_ulong accepted;
    atomic_int yielding;                       /* paused for ACCEPT_YIELD_US */
    int tier;                                  /* 0 clients; cluster mode: 1 leader, 2 leaf
                                                * (its own workers; paced among themselves) */
} listener;

/* A closed connection's socket, kept open a moment to drain what its client still sends. */
typedef struct lingering_sock {
    struct lingering_sock *next;
    struct event *ev;
    evutil_socket_t fd;
} lingering_sock;

struct worker {
    srv_ctx *ctx;
    listener l[2];
    lingering_sock *lingering;
    srv_conns *conns;                          /* the cap and read deadlines (conn.c) */
    struct event_base *base;
    struct event *drain_timer;
    uint64_t drain_start, drain_deadline;
    pthread_t thread;
    int started;
    atomic_int busy;                           /* 1 while a request is being handled */
};

static _Thread_local worker *this_worker;     /* the calling thread's, set by worker_main */
static worker *all_workers;                   /* for the pacing and on_accept_error */
static int n_all_workers;

typedef struct {
    const char *listen[2], *data, *key_file, *snapshots;   /* listen[1]: the Qdrant API's, or NULL */
    const char *tls_cert, *tls_key;
    const char *cluster, *advertise;                       /* cluster mode (cluster.h) */
    unsigned long long node_id, lease_ttl_s, write_quorum;
    int threads_set;
    unsigned long long max_body, threads, timeout_s, checkpoint_every;
    unsigned long long header_timeout_s, body_timeout_s, max_connections, max_queue;
    int log_level;
} options;

/* At most one line a second: 1 when this one may go out (*last: its second). */
static int once_a_second(_Atomic long *last)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long prev = atomic_load(last);
    return ts.tv_sec != prev && atomic_compare_exchange_strong(last, &prev, (long)ts.tv_sec);
}

static int parse_size(const char *s, unsigned long long lo, unsigned long long hi,
                      unsigned long long *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-') return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* The options, their --help lines and where each goes: a string (hi 0) or a number in
 * lo..hi (ranges as the help says), or the log level (lo -1). */
#define O(field) offsetof(options, field)
static const struct { const char *name, *arg, *help; size_t off; long long lo; unsigned long long hi; } opts[] = {
    {"listen", "ADDR:PORT", "address to serve on (default 127.0.0.1:6333; port 0 = any)", O(listen[0]), 0, 0},
    {"qdrant-listen", "ADDR:PORT", "also serve the Qdrant-compatible REST API there (default off)", O(listen[1]), 0, 0},
    {"data", "DIR", "database directory (default ./quiver-data)", O(data), 0, 0},
    {"api-key-file", "FILE", "require API keys (or tokens signed with one): lines 'KEY rw|ro [COLL,...]'", O(key_file), 0, 0},
    {"tls-cert", "FILE", "serve both listeners over TLS: PEM certificate chain (SIGHUP reloads)", O(tls_cert), 0, 0},
    {"tls-key", "FILE", "PEM private key for --tls-cert", O(tls_key), 0, 0},
    {"max-connections", "N", "open connections at most (default 4096; 0 = no cap)", O(max_connections), 0, 1u << 20},
    {"header-timeout", "SECONDS", "a request's headers must arrive within (default 10)", O(header_timeout_s), 1, 86400},
    {"body-timeout", "SECONDS", "its body within, after the headers (default 60)", O(body_timeout_s), 1, 86400},
    {"max-queue", "N", "requests in progress at most, beyond it 503 (default 8192)", O(max_queue), 1, 1u << 20},
    {"threads", "N", "worker threads (default: number of cores)", O(threads), 1, SRV_MAX_THREADS},
    {"max-body", "BYTES", "largest request body (default 16777216)", O(max_body), 1024, 1ull << 40},
    {"timeout", "SECONDS", "idle/slow client timeout (default 30)", O(timeout_s), 1, 86400},
    {"checkpoint-every", "N", "snapshot an index every N writes (default 0 = on exit)", O(checkpoint_every), 0, UINT32_MAX},
    {"snapshots", "DIR", "where snapshots (backups) are kept (default DATA/backups)", O(snapshots), 0, 0},
    {"log-level", "LEVEL", "error|warn|info|debug (default info)", O(log_level), -1, 0},
    {"cluster", "URL,...", "cluster mode: etcd endpoints http://HOST:PORT,... (README: Cluster mode)", O(cluster), 0, 0},
    {"node-id", "N", "cluster mode: this node's id, unique in the cluster", O(node_id), 1, INT32_MAX},
    {"advertise", "URL", "cluster mode: how other nodes reach this one (http://HOST:PORT)", O(advertise), 0, 0},
    {"lease-ttl", "SECONDS", "cluster mode: node lease; a dead leader is replaced after it (default 3)", O(lease_ttl_s), 1, 3600},
    {"write-quorum", "N", "cluster mode: copies a write needs before it is acknowledged (default 1)", O(write_quorum), 1, 8},
    {"help", NULL, "this text", 0, 0, 0},
};
#define NOPTS (sizeof opts / sizeof opts[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: quiverd [options]\n");
    for (size_t i = 0; i < NOPTS; i++) {
        char lhs[40];
        snprintf(lhs, sizeof lhs, "--%s %s", opts[i].name, opts[i].arg ? opts[i].arg : "");
        fprintf(f, "  %-26s %s\n", lhs, opts[i].help);
    }
}

/* 0 ok, 1 --help, 2 bad usage (message printed) */
static int parse_options(int argc, char **argv, options *o)
{
    struct option longs[NOPTS + 1] = {{0}};
    for (size_t i = 0; i < NOPTS; i++)
        longs[i] = (struct option){opts[i].name, opts[i].arg ? required_argument : no_argument, NULL, (int)i};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    *o = (options){.listen = {"127.0.0.1:6333", NULL}, .data = "./quiver-data", .max_body = 16u << 20,
                   .threads = ncpu > 0 ? (unsigned long long)ncpu : 1, .timeout_s = 30, .log_level = SRV_LOG_INFO,
                   .header_timeout_s = 10, .body_timeout_s = 60, .max_connections = 4096, .max_queue = 8192};
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "", longs, NULL)) != -1;) {
        if (c < 0 || (size_t)c >= NOPTS) {
            fprintf(stderr, "quiverd: unknown or incomplete option '%s'\n", argv[optind - 1]);
            return 2;
        }
        char *at = (char *)o + opts[c].off;
        if (opts[c].off == O(threads)) o->threads_set = 1;
        if (!opts[c].arg) return 1;                                  /* --help */
        if (opts[c].lo < 0 && (*(int *)at = srv_log_parse_level(optarg)) < 0) {
            fprintf(stderr, "quiverd: --log-level must be error, warn, info or debug\n");
            return 2;
        } else if (opts[c].lo >= 0 && !opts[c].hi) {
            *(const char **)at = optarg;
        } else if (opts[c].hi && parse_size(optarg, (unsigned long long)opts[c].lo, opts[c].hi, (unsigned long long *)at)) {
            fprintf(stderr, "quiverd: --%s must be %lld..%llu\n", opts[c].name, opts[c].lo, opts[c].hi);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "quiverd: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!o->cluster && (o->node_id || o->advertise)) {
        fprintf(stderr, "quiverd: --node-id and --advertise go with --cluster\n");
        return 2;
    }
    if (o->cluster && (!o->node_id || !o->advertise)) {
        fprintf(stderr, "quiverd: --cluster needs --node-id N and --advertise http://HOST:PORT\n");
        return 2;
    }
    if (o->advertise && (strncmp(o->advertise, "http://", 7) != 0 || !strchr(o->advertise + 7, ':'))) {
        fprintf(stderr, "quiverd: --advertise wants http://HOST:PORT, got '%s'\n", o->advertise);
        return 2;
    }
    /* a node's handlers wait on other nodes (forwarded writes, replication, shard
     * searches): with as many workers as cores, two nodes could each fill theirs waiting
     * on the other */
    if (o->cluster && !o->threads_set && o->threads < 16) o->threads = 16;
    if (o->cluster && (o->key_file || o->tls_cert)) {
        fprintf(stderr, "quiverd: --cluster does not support --api-key-file or TLS yet (nodes talk plain HTTP without keys)\n");
        return 2;
    }
    if (!o->tls_cert != !o->tls_key) {
        fprintf(stderr, "quiverd: --tls-cert and --tls-key go together\n");
        return 2;
    }
    return 0;
}

/* Bind and listen on "host:port" ("[v6]:port" too). Returns the fd or -1. */
static evutil_socket_t open_listener(const char *spec, char *shown, size_t shown_len)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || strlen(spec) >= sizeof host) {
        fprintf(stderr, "quiverd: a listen address wants ADDR:PORT, got '%s'\n", spec);
        return -1;
    }
    size_t hl = (size_t)(colon - spec);
    memcpy(host, spec, hl);
    host[hl] = 0;
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = 0;
    }
    const char *port = colon + 1;
    unsigned long long pv;
    if (parse_size(port, 0, 65535, &pv)) {
        fprintf(stderr, "quiverd: bad port in --listen '%s'\n", spec);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        fprintf(stderr, "quiverd: cannot resolve '%s': %s\n", host, gai_strerror(gai));
        return -1;
    }
    evutil_socket_t fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        /* Accepted connections inherit it. Without it a reply over 16 KiB (libevent writes
         * at most that much at once) had its tail held back by Nagle until the client's
         * delayed ACK, 40 ms later: batch searches ran at 25 requests a second. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 1024) == 0 &&
            evutil_make_socket_nonblocking(fd) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        fprintf(stderr, "quiverd: cannot listen on %s: %s\n", spec, strerror(errno));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char h[128] = "?", p[16] = "?";
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        getnameinfo((struct sockaddr *)&ss, sl, h, sizeof h, p, sizeof p, NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(shown, shown_len, strchr(h, ':') ? "[%s]:%s" : "%s:%s", h, p);
    return fd;
}

/* ---- workers ---------------------------------------------------------------------- */

/* Stop accepting: no timer may re-enable a listener that is closed. */
static void close_listeners(worker *w)
{
    for (int i = 0; i < 2; i++) {
        if (w->l[i].resume) event_del(w->l[i].resume);
        if (w->l[i].bound) evhttp_del_accept_socket(w->l[i].http, w->l[i].bound);   /* closes its dup */
        w->l[i].bound = NULL;
    }
}

/*
 * The drain. A client that connected and sent its request just before the signal is
 * served: for DRAIN_MIN_US the listeners still accept (a connection may sit in the
 * kernel's accept queue, and closing the listener would reset it), and after that the
 * worker waits while any connection holds part of a request (bytes in its socket not yet
 * read, or a body being read) or a request is being answered. A loaded machine can take
 * well over 100 ms to read a large body (test_sigterm_inflight under ASan lost its
 * answer that way). DRAIN_GRACE_US bounds it all.
 */
static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    worker *w = arg;
    uint64_t now = api_now_us();
    if (now >= w->drain_deadline) {
        event_base_loopexit(w->base, NULL);
        return;
    }
    if (now < w->drain_start + DRAIN_MIN_US) return;
    close_listeners(w);
    if (atomic_load(&w->ctx->outstanding) <= 0 && !srv_conns_mid_request(w->conns))
        event_base_loopexit(w->base, NULL);
}

/* Runs on the worker's own loop (scheduled by the main thread with event_base_once). */
static void begin_drain(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    worker *w = arg;
    w->drain_start = api_now_us();
    w->drain_deadline = w->drain_start + DRAIN_GRACE_US;
    struct timeval tv = {0, 20000};
    w->drain_timer = event_new(w->base, -1, EV_PERSIST, drain_tick, w);
    if (!w->drain_timer || event_add(w->drain_timer, &tv) != 0) {
        close_listeners(w);
        event_base_loopexit(w->base, NULL);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    this_worker = w;
    event_base_dispatch(w->base);
    return NULL;
}

/* Out of descriptors (EMFILE and kin): libevent's listener would retry accept() at once,
 * forever, burning a core while the condition lasts. Instead the listener stops
 * accepting for ACCEPT_PAUSE_US; connections already open are served meanwhile. It is
 * found by its evhttp, which is what libevent hands the error callback. */
static void on_accept_error(struct evconnlistener *lis, void *http)
{
    static _Atomic long last_log = 0;
    int err = EVUTIL_SOCKET_ERROR();
    listener *l = NULL;
    for (int i = 0; i < 2 * n_all_workers && !l; i++)
        if (all_workers[i / 2].l[i % 2].http == http) l = &all_workers[i / 2].l[i % 2];
    if (once_a_second(&last_log))
        srv_log(SRV_LOG_WARN, "accept: %s%s", evutil_socket_error_to_string(err),
                l ? " (pausing new connections briefly)" : "");
    if (!l || (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)) return;
    struct timeval tv = {0, ACCEPT_PAUSE_US};
    evconnlistener_disable(lis);
    atomic_store(&l->yielding, 0);
    event_add(l->resume, &tv);
}

/*
 * Spreading connections over the workers. Every worker listens on the same socket, and
 * libevent's listener accepts until the backlog is empty, so a client that opens its
 * connections at once (a pool, wrk) used to land them all on whichever worker woke
 * first: with 2 workers and 8 connections, one core served everything (17k instead of
 * 29k searches/s). So, with more than one worker:
 *  - a worker accepts one connection per turn of its loop;
 *  - one that has taken two or more connections more than another worker that sits idle
 *    in its loop, accepting, stops accepting until a worker behind it accepts one (which
 *    wakes it), or ACCEPT_YIELD_US at most; the next connections of a burst go to the
 *    idle one.
 * A worker never waits for one that is busy (it would not accept before its request is
 * done), and a lead of one never makes it wait. Clients that open a connection per
 * request keep the counts that close; waiting a fixed time at every lead capped them at
 * 1,000-2,000 connections a second (libevent's epoll timers have 1 ms steps). Two workers
 * cannot both lead by two, so they never wait for each other; one that waits past its
 * turn (the other overtook it meanwhile) is woken by the one that overtook it.
 */
#define ACCEPT_YIELD_US 1000
#define CLUSTER_TIER_WORKERS 4

void srv_worker_busy(int busy)
{
    if (this_worker) atomic_store_explicit(&this_worker->busy, busy, memory_order_relaxed);
}

/* Runs on the worker's loop; a listener closed by the drain meanwhile is NULL here. */
static void resume(evutil_socket_t fd, short what, void *arg)
{
    listener *l = arg;
    (void)fd;
    (void)what;
    event_del(l->resume);                       /* woken early: drop the pending timeout */
    atomic_store(&l->yielding, 0);
    if (l->bound) evconnlistener_enable(evhttp_bound_socket_get_listener(l->bound));
}

/*
 * Closing. A reply that ends a connection (a 413 for a body over --max-body, a 400, a
 * 501, "Connection: close") may go out while the client is still sending its request;
 * closing the socket then would reset it, and the client could lose the reply. libevent's
 * own "lingering close" reads the whole declared body before it answers, so a client that
 * declared a large body and sent none waited for the idle timeout without an answer; it
 * is not used. Instead evhttp answers at once, and when it closes the connection quiverd
 * keeps a duplicate of the socket that reads and drops what the client still sends, until
 * the client closes its side or LINGER_S seconds pass. evhttp's shutdown() sends the FIN
 * right after the reply -- unless request bytes are still arriving: then the socket is
 * taken out of evhttp's hands (its descriptor number is made to name /dev/null, which
 * evhttp shuts down and closes) and the FIN waits for the drain, because a client still
 * writing its body (libevent's own client, for one) gives up on a FIN before it reads the
 * reply. evhttp tells us of the close through the connection's close callback (conn.c
 * sets it, and calls on_close for every close but its own: a connection refused, evicted
 * or past a read deadline is not worth lingering for).
 */
#define LINGER_S 2

static void linger_end(worker *w, lingering_sock *l)
{
    for (lingering_sock **p = &w->lingering; *p; p = &(*p)->next)
        if (*p == l) {
            *p = l->next;
            break;
        }
    if (l->ev) event_free(l->ev);
    if (l->fd >= 0) close(l->fd);
    free(l);
}

static void linger_read(evutil_socket_t fd, short what, void *arg)
{
    lingering_sock *l = arg;
    char buf[16384];
    ssize_t n = 0;
    if (!(what & EV_TIMEOUT))
        while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {}
    if ((what & EV_TIMEOUT) || n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) linger_end(this_worker, l);
}

static void on_close(struct evhttp_connection *conn, void *arg)
{
    worker *w = arg;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(conn);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    char c;
    ssize_t n = fd < 0 ? 0 : recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return;   /* the client closed, or is gone */
    lingering_sock *l = calloc(1, sizeof *l);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    struct timeval tv = {LINGER_S, 0};
    if (!l || null < 0) {
        free(l);
        if (null >= 0) close(null);
        return;
    }
    /* already out of the event loop (conn.c's close hook), so the number can be swapped */
    int arriving = n > 0 || evbuffer_get_length(bufferevent_get_input(bev)) > 0;
    l->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (l->fd >= 0 && arriving && dup2(null, fd) < 0) {
        close(l->fd);
        l->fd = -1;
    }
    close(null);
    l->next = w->lingering;
    w->lingering = l;
    if (l->fd < 0 || !(l->ev = event_new(w->base, l->fd, EV_READ | EV_PERSIST, linger_read, l)) ||
        event_add(l->ev, &tv) != 0)
        linger_end(w, l);
}

/* evhttp asks for each new connection's bufferevent: the moment a worker has accepted
 * one. Without TLS it is the one evhttp would make, without BEV_OPT_CLOSE_ON_FREE: evhttp
 * then shuts the socket down before it closes it (with the option, libevent 2.1 closes
 * first and shuts down the number afterwards, which another thread may have been given
 * meanwhile). With TLS, an OpenSSL one (tls.c). conn.c tracks it either way. */
static struct bufferevent *on_new_connection(struct event_base *base, void *arg)
{
    listener *l = arg;
    srv_ctx *ctx = l->w->ctx;
    struct bufferevent *bev = ctx->tls ? srv_tls_bufferevent(ctx->tls, base) : bufferevent_socket_new(base, -1, 0);
    if (bev) srv_conn_track(l->w->conns, bev);
    srv_metrics_connection((int)(l->w - all_workers));
    if (n_all_workers == 1 || !l->bound) return bev;
    unsigned long mine = atomic_fetch_add(&l->accepted, 1) + 1;
    int idle_behind = 0;                        /* an accepting idle worker 2 or more behind */
    for (int i = 0; i < n_all_workers; i++) {
        listener *other = &all_workers[i].l[l->api];
        if (other == l || !other->resume || other->tier != l->tier) continue;
        unsigned long theirs = atomic_load(&other->accepted);
        /* one that waits for the workers behind it: this one has caught up with it */
        if (atomic_load(&other->yielding) && theirs <= mine + 1) event_active(other->resume, EV_TIMEOUT, 1);
        if (theirs + 2 <= mine && !atomic_load_explicit(&all_workers[i].busy, memory_order_relaxed))
            idle_behind = 1;
    }
    evconnlistener_disable(evhttp_bound_socket_get_listener(l->bound));
    atomic_store(&l->yielding, idle_behind);
    struct timeval tv = {0, idle_behind ? ACCEPT_YIELD_US : 0};
    if (event_add(l->resume, &tv) != 0) resume(-1, 0, l);
    return bev;
}

/* Listener api of w: an evhttp on w's base with the server's limits, accepting on a dup
 * of lfd. */
static int listener_init(worker *w, int api, evutil_socket_t lfd, const options *o)
{
    listener *l = &w->l[api];
    evutil_socket_t fd = -1;
    l->w = w;
    l->api = api;
    l->target = (srv_listener){w->ctx, api ? &srv_qdrant_api : &srv_native_api};
    if (!(l->http = evhttp_new(w->base)) || !(l->resume = evtimer_new(w->base, resume, l))) return -1;
    /* every method, known to libevent or not, reaches the pipeline, which answers the
     * ones it does not implement in the API's own error shape */
    evhttp_set_allowed_methods(l->http, 0xffff);
    evhttp_set_max_body_size(l->http, (ev_ssize_t)o->max_body);
    evhttp_set_max_headers_size(l->http, 64 * 1024);
    evhttp_set_timeout(l->http, (int)o->timeout_s);
    /* Every reply of ours sets its Content-Type; the default labels only the few pages
     * libevent 2.1 writes itself (413 for a body over --max-body, 400 for HTTP it cannot
     * parse), which are HTML: say so, rather than call them JSON. (libevent 2.2's
     * evhttp_set_errorcb would let those be JSON too; Debian 12 has 2.1.) */
    evhttp_set_default_content_type(l->http, "text/html; charset=ISO-8859-1");
    evhttp_set_gencb(l->http, srv_dispatch, &l->target);
    evhttp_set_bevcb(l->http, on_new_connection, l);      /* counts; paces with more than one worker */
    if ((fd = fcntl(lfd, F_DUPFD_CLOEXEC, 0)) < 0) return -1;
    if (!(l->bound = evhttp_accept_socket_with_handle(l->http, fd))) {
        close(fd);
        return -1;
    }
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(l->bound), on_accept_error);
    return 0;
}

static int worker_init(worker *w, srv_ctx *ctx)
{
    memset(w, 0, sizeof *w);
    w->ctx = ctx;
    /* Not EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST, although it saves 2 of the 9 system calls of
     * a search (about 5% of the throughput): a connection closed with its removal still
     * pending in the changelist leaves an epoll_ctl on a descriptor number that another
     * worker may have been given by accept() meanwhile. Harmless to epoll (ENOENT), but a
     * real race on the descriptor, and ThreadSanitizer reports it. */
    if (!(w->base = event_base_new()) || !(w->conns = srv_conns_new(ctx, w->base, on_close, w))) return -1;
    return 0;
}

static void worker_release(worker *w)
{
    if (w->drain_timer) event_free(w->drain_timer);
    for (int i = 0; i < 2; i++) {
        if (w->l[i].resume) event_free(w->l[i].resume);
        if (w->l[i].http) evhttp_free(w->l[i].http);    /* frees its connections and listener */
    }
    srv_conns_free(w->conns);                           /* after the connections' close callbacks */
    while (w->lingering) linger_end(w, w->lingering);
    if (w->base) event_base_free(w->base);
    memset(w, 0, sizeof *w);
}

/* libevent's own warnings ("Error from accept() call: Too many open files" repeats for as
 * long as descriptors are exhausted, thousands of times a second): at most one line a
 * second reaches the log, with a count of what was held back. */
static void libevent_log(int severity, const char *msg)
{
    static _Atomic long last_log = 0, held = 0;
    if (!once_a_second(&last_log)) {
        atomic_fetch_add(&held, 1);
        return;
    }
    srv_log(severity >= EVENT_LOG_ERR ? SRV_LOG_ERROR : SRV_LOG_WARN, "libevent: %s%s", msg,
            atomic_exchange(&held, 0) ? " (and similar messages held back)" : "");
}

static void on_signal(evutil_socket_t sig, short what, void *base)
{
    (void)what;
    srv_log(SRV_LOG_INFO, "signal %d: draining and shutting down", (int)sig);
    event_base_loopbreak(base);
}

/* SIGHUP: the certificate and key again, for new connections. */
static void on_hangup(evutil_socket_t sig, short what, void *tls)
{
    char err[512];
    (void)sig;
    (void)what;
    if (srv_tls_reload(tls, err, sizeof err) == 0) srv_log(SRV_LOG_INFO, "SIGHUP: TLS certificate reloaded");
    else srv_log(SRV_LOG_ERROR, "SIGHUP: TLS certificate not reloaded, the old one stays: %s", err);
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse_options(argc, argv, &o);
    if (rc == 1) { usage(stdout); return 0; }
    if (rc == 2) { usage(stderr); return 2; }
    srv_log_level = o.log_level;

    int exit_code = 1, nworkers = 0;
    srv_ctx ctx = {.timeout_s = (int)o.timeout_s, .header_timeout_s = (int)o.header_timeout_s,
                   .body_timeout_s = (int)o.body_timeout_s, .max_connections = (unsigned)o.max_connections,
                   .max_queue = (long)o.max_queue};
    worker *workers = NULL;
    char **names = NULL, shown[2][160] = {"", ""}, err[512];
    size_t ncoll = 0;
    evutil_socket_t lfd[2] = {-1, -1}, tier_fd[2] = {-1, -1};      /* tier_fd: cluster mode */
    char tier_shown[2][160];
    struct event_base *base = NULL;
    struct event *sig[3] = {NULL, NULL, NULL};
    sigset_t sigs, old;

    event_set_log_callback(libevent_log);
    if (evthread_use_pthreads() != 0 || !(base = event_base_new())) {
        srv_log(SRV_LOG_ERROR, "libevent has no pthreads support");
        goto cleanup;
    }
    sigemptyset(&sigs);
    for (int i = 0; i < 2; i++) {
        sigaddset(&sigs, i ? SIGINT : SIGTERM);
        if (!(sig[i] = evsignal_new(base, i ? SIGINT : SIGTERM, on_signal, base)) || evsignal_add(sig[i], NULL) != 0) {
            srv_log(SRV_LOG_ERROR, "cannot install signal handlers");
            goto cleanup;
        }
    }
    signal(SIGPIPE, SIG_IGN);                       /* a peer that hangs up must not kill us */
    if (o.tls_cert && srv_tls_new(o.tls_cert, o.tls_key, &ctx.tls, err, sizeof err) != 0) {
        srv_log(SRV_LOG_ERROR, "--tls-cert/--tls-key: %s", err);
        goto cleanup;
    }
    if (ctx.tls) {
        sigaddset(&sigs, SIGHUP);
        if (!(sig[2] = evsignal_new(base, SIGHUP, on_hangup, ctx.tls)) || evsignal_add(sig[2], NULL) != 0) {
            srv_log(SRV_LOG_ERROR, "cannot install signal handlers");
            goto cleanup;
        }
    }
    if (o.key_file && srv_keys_load(o.key_file, &ctx.keys, err, sizeof err) != 0) {
        srv_log(SRV_LOG_ERROR, "--api-key-file: %s", err);
        goto cleanup;
    }
    json_object_seed(0);                            /* once, before threads */

    if (mkdir(o.data, 0755) != 0 && errno != EEXIST) {
        srv_log(SRV_LOG_ERROR, "cannot create %s: %s", o.data, strerror(errno));
        goto cleanup;
    }
    qv_db_options dbo;
    qv_db_options_init(&dbo);
    dbo.checkpoint_every = (unsigned)o.checkpoint_every;
    if ((rc = qv_db_open(o.data, &dbo, &ctx.db)) != QV_OK) {
        srv_log(SRV_LOG_ERROR, "cannot open database %s: %s: %s", o.data, qv_strerror(rc), qv_last_error());
        goto cleanup;
    }
    if (srv_snapshots_init(&ctx, o.snapshots, o.data) != 0) goto cleanup;
    if (o.cluster) {
        /* Two more listeners, on the --listen address with ports of the kernel's choosing,
         * each with its own CLUSTER_TIER_WORKERS workers: peers send a shard leader's work
         * (forwarded writes, catch-up) to tier 1 and a replica's own work (applying a
         * replicated write, a shard search) to tier 2. A handler waits only on a lower
         * tier's handlers (client -> leader -> replica), so a worker blocked on a peer can
         * never be what that peer waits for: with one pool, two nodes deadlocked until the
         * 30 s timeout under load (cluster test). */
        char spec[300], tier_url[2][CL_URL_MAX];
        const char *colon = strrchr(o.listen[0], ':');
        const char *adv_end = strrchr(o.advertise + 7, ':');
        for (int t = 0; t < 2; t++) {
            snprintf(spec, sizeof spec, "%.*s:0", colon ? (int)(colon - o.listen[0]) : 0, o.listen[0]);
            if ((tier_fd[t] = open_listener(spec, tier_shown[t], sizeof tier_shown[t])) < 0) goto cleanup;
            snprintf(tier_url[t], sizeof tier_url[t], "%.*s:%s", adv_end ? (int)(adv_end - o.advertise) : 0, o.advertise,
                     strrchr(tier_shown[t], ':') + 1);
        }
        srv_cluster_options co = {.endpoints = o.cluster, .node_id = (long)o.node_id, .advertise = o.advertise,
                                  .lease_ttl_s = (int)o.lease_ttl_s, .write_quorum = (int)o.write_quorum,
                                  .leader_url = tier_url[0], .replica_url = tier_url[1]};
        if (srv_cluster_start(&ctx, &co, &ctx.cluster) != 0) goto cleanup;
    }
    /* load every collection now, not on its first request (they stay loaded when closed) */
    if ((rc = qv_collection_list(ctx.db, &names, &ncoll)) != QV_OK) {
        srv_log(SRV_LOG_ERROR, "cannot list collections: %s: %s", qv_strerror(rc), qv_last_error());
        goto cleanup;
    }
    for (size_t i = 0; i < ncoll; i++) {
        qv_coll *c = NULL;
        if ((rc = qv_collection_open(ctx.db, names[i], &c)) != QV_OK) {
            srv_log(SRV_LOG_ERROR, "cannot open collection '%s': %s: %s", names[i], qv_strerror(rc), qv_last_error());
            goto cleanup;
        }
        qv_collection_close(c);
    }

    for (int i = 0; i < 2; i++)
        if (o.listen[i] && (lfd[i] = open_listener(o.listen[i], shown[i], sizeof shown[i])) < 0) goto cleanup;
    int nall = (int)o.threads + (tier_fd[0] >= 0 ? 2 * CLUSTER_TIER_WORKERS : 0);
    if (!(workers = calloc((size_t)nall, sizeof *workers))) goto cleanup;
    all_workers = workers;                          /* for on_accept_error and the pacing */
    n_all_workers = nall;
    for (; nworkers < nall; nworkers++) {
        int tier = nworkers < (int)o.threads ? 0 : 1 + (nworkers - (int)o.threads) / CLUSTER_TIER_WORKERS;
        if (worker_init(&workers[nworkers], &ctx) != 0 ||
            listener_init(&workers[nworkers], 0, tier ? tier_fd[tier - 1] : lfd[0], &o) != 0 ||
            (!tier && lfd[1] >= 0 && listener_init(&workers[nworkers], 1, lfd[1], &o) != 0)) {
            srv_log(SRV_LOG_ERROR, "cannot set up worker %d", nworkers);
            worker_release(&workers[nworkers]);
            goto stop;
        }
        workers[nworkers].l[0].tier = tier;
    }
    for (int t = 0; t < 2; t++) {
        if (tier_fd[t] >= 0) close(tier_fd[t]);
        tier_fd[t] = -1;
    }
    for (int i = 0; i < 2; i++) {                   /* the workers hold their own copies */
        if (lfd[i] >= 0) close(lfd[i]);
        lfd[i] = -1;
    }
    srv_log(SRV_LOG_INFO, "%zu collection(s) in %s, %d worker thread(s)%s%s", ncoll, o.data,
            nworkers, ctx.keys ? ", API keys required" : "", ctx.tls ? ", TLS" : "");
    pthread_sigmask(SIG_BLOCK, &sigs, &old);       /* workers inherit the block */
    for (int i = 0; i < nworkers; i++) {
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
            srv_log(SRV_LOG_ERROR, "cannot start worker thread %d", i);
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            goto stop;
        }
        workers[i].started = 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    printf("quiverd listening on %s\n", shown[0]);
    if (shown[1][0]) printf("quiverd qdrant api listening on %s\n", shown[1]);
    fflush(stdout);
    event_base_dispatch(base);                      /* until SIGTERM or SIGINT */
    exit_code = 0;
stop:
    atomic_store(&ctx.draining, 1);
    for (int i = 0; i < nworkers; i++) {
        if (!workers[i].started) continue;
        if (event_base_once(workers[i].base, -1, EV_TIMEOUT, begin_drain, &workers[i], NULL) != 0)
            event_base_loopbreak(workers[i].base);
    }
    for (int i = 0; i < nworkers; i++)
        if (workers[i].started) pthread_join(workers[i].thread, NULL);
    for (int i = 0; i < nworkers; i++) worker_release(&workers[i]);
cleanup:
    for (int i = 0; i < 2; i++) {
        if (lfd[i] >= 0) close(lfd[i]);
        if (tier_fd[i] >= 0) close(tier_fd[i]);
    }
    all_workers = NULL;
    n_all_workers = 0;
    free(workers);
    srv_cluster_stop(ctx.cluster);                  /* leaves the cluster at once */
    if (ctx.db) {
        rc = qv_db_close(ctx.db);                   /* checkpoints every collection */
        if (rc != QV_OK) {
            srv_log(SRV_LOG_ERROR, "closing the database: %s: %s", qv_strerror(rc), qv_last_error());
            exit_code = 1;
        }
    }
    qv_free_strings(names, ncoll);
    srv_keys_free(ctx.keys);
    srv_snapshots_release(&ctx);
    srv_tls_free(ctx.tls);
    for (int i = 0; i < 3; i++)
        if (sig[i]) event_free(sig[i]);
    if (base) event_base_free(base);
    libevent_global_shutdown();
    if (exit_code == 0) srv_log(SRV_LOG_INFO, "stopped");
    return exit_code;
}

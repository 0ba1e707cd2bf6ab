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
 * Signals: SIGTERM and SIGINT run a handler that writes their number to a pipe, and the
 * main thread sleeps reading that pipe. (Not sigwait(): threads started by libraries
 * before main, such as OpenBLAS's, do not block the signals, and a signal the kernel
 * hands to one of them would kill the process with its default action.) A second signal
 * during shutdown is harmless. Workers block both signals. Shutdown: each worker stops accepting
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
#include <poll.h>
#include <signal.h>
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

#include "server/server.h"

#define DRAIN_GRACE_US 10000000u    /* longest wait for queued replies on shutdown */
#define DRAIN_MIN_US   100000u      /* requests already on the wire get this long to arrive */

/* One listening socket of one worker, and how many connections it has taken. */
typedef struct worker worker;
typedef struct {
    worker *w;
    int kind;                                  /* 0: native API, 1: Qdrant API */
    struct evhttp_bound_socket **bound;        /* &w->bound or &w->qbound */
    struct event *resume;                      /* re-enables it after one accept */
    atomic_ulong accepted;
    atomic_int yielding;                       /* disabled for ACCEPT_YIELD_US */
} accept_pace;

/* A closed connection's socket, kept open a moment to drain what its client still sends. */
typedef struct lingering_sock {
    struct lingering_sock *next;
    struct event *ev;
    evutil_socket_t fd;
} lingering_sock;

struct worker {
    srv_ctx *ctx;
    srv_listener listener[2];                  /* the native API, the Qdrant API */
    lingering_sock *lingering;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct evhttp *qhttp;                      /* the Qdrant-compatible API, when enabled */
    struct evhttp_bound_socket *qbound;
    accept_pace pace[2];                       /* for bound and qbound */
    struct event *drain_timer;
    struct event *accept_resume;               /* re-enables accepting after EMFILE */
    uint64_t drain_start, drain_deadline;
    pthread_t thread;
    int started;
    atomic_int busy;                           /* 1 while a request is being handled */
};

static _Thread_local worker *this_worker;     /* the calling thread's, set by worker_main */

typedef struct {
    const char *listen, *qdrant_listen, *data, *key_file;
    size_t max_body;
    int threads, timeout_s, log_level;
    unsigned checkpoint_every;
} options;

static int signal_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(signal_pipe[1], &b, 1);   /* non-blocking; a full pipe is fine */
    (void)w;
    errno = saved;
}

/* Install the handlers; returns 0 or -1. */
static int catch_signals(void)
{
    if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) return -1;
    sa.sa_handler = SIG_IGN;                    /* a peer that hangs up must not kill us */
    return sigaction(SIGPIPE, &sa, NULL);
}

/* Block until SIGTERM or SIGINT; returns the signal number. */
static int wait_for_signal(void)
{
    unsigned char b = 0;
    struct pollfd p = {.fd = signal_pipe[0], .events = POLLIN};
    for (;;) {
        if (poll(&p, 1, -1) < 0 && errno != EINTR) return 0;
        if (read(signal_pipe[0], &b, 1) == 1) return b;
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: quiverd [options]\n"
            "  --listen ADDR:PORT      address to serve on (default 127.0.0.1:6333; port 0 = any)\n"
            "  --qdrant-listen ADDR:PORT  also serve the Qdrant-compatible REST API there (default off)\n"
            "  --data DIR              database directory (default ./quiver-data)\n"
            "  --api-key-file FILE     require API keys: lines 'KEY rw' or 'KEY ro'\n"
            "  --threads N             worker threads (default: number of cores)\n"
            "  --max-body BYTES        largest request body (default 16777216)\n"
            "  --timeout SECONDS       idle/slow client timeout (default 30)\n"
            "  --checkpoint-every N    snapshot an index every N writes (default 0 = on exit)\n"
            "  --log-level LEVEL       error|warn|info|debug (default info)\n"
            "  --help                  this text\n");
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

/* 0 ok, 1 --help, 2 bad usage (message printed) */
static int parse_options(int argc, char **argv, options *o)
{
    static const struct option longs[] = {
        {"listen", required_argument, NULL, 'l'}, {"data", required_argument, NULL, 'd'},
        {"qdrant-listen", required_argument, NULL, 'q'},
        {"api-key-file", required_argument, NULL, 'k'}, {"threads", required_argument, NULL, 't'},
        {"max-body", required_argument, NULL, 'b'}, {"timeout", required_argument, NULL, 'T'},
        {"checkpoint-every", required_argument, NULL, 'c'},
        {"log-level", required_argument, NULL, 'v'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    *o = (options){.listen = "127.0.0.1:6333", .data = "./quiver-data", .max_body = 16u << 20,
                   .threads = ncpu > 0 ? (int)ncpu : 1, .timeout_s = 30, .log_level = SRV_LOG_INFO};
    opterr = 0;
    int c;
    unsigned long long v;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'l': o->listen = optarg; break;
        case 'q': o->qdrant_listen = optarg; break;
        case 'd': o->data = optarg; break;
        case 'k': o->key_file = optarg; break;
        case 't':
            if (parse_size(optarg, 1, SRV_MAX_THREADS, &v)) { fprintf(stderr, "quiverd: --threads must be 1..%d\n", SRV_MAX_THREADS); return 2; }
            o->threads = (int)v;
            break;
        case 'b':
            if (parse_size(optarg, 1024, 1ull << 40, &v)) { fprintf(stderr, "quiverd: --max-body must be 1024..2^40 bytes\n"); return 2; }
            o->max_body = (size_t)v;
            break;
        case 'T':
            if (parse_size(optarg, 1, 86400, &v)) { fprintf(stderr, "quiverd: --timeout must be 1..86400 seconds\n"); return 2; }
            o->timeout_s = (int)v;
            break;
        case 'c':
            if (parse_size(optarg, 0, UINT32_MAX, &v)) { fprintf(stderr, "quiverd: --checkpoint-every must be 0..4294967295\n"); return 2; }
            o->checkpoint_every = (unsigned)v;
            break;
        case 'v':
            if ((o->log_level = srv_log_parse_level(optarg)) < 0) {
                fprintf(stderr, "quiverd: --log-level must be error, warn, info or debug\n");
                return 2;
            }
            break;
        case 'h': return 1;
        default:
            fprintf(stderr, "quiverd: unknown or incomplete option '%s'\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "quiverd: unexpected argument '%s'\n", argv[optind]);
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

static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    worker *w = arg;
    uint64_t now = srv_now_us();
    if ((atomic_load(&w->ctx->outstanding) <= 0 && now >= w->drain_start + DRAIN_MIN_US) ||
        now >= w->drain_deadline)
        event_base_loopexit(w->base, NULL);
}

static void close_listeners(worker *w)
{
    if (w->bound) {
        evhttp_del_accept_socket(w->http, w->bound);   /* closes this worker's dup */
        w->bound = NULL;
    }
    if (w->qbound) {
        evhttp_del_accept_socket(w->qhttp, w->qbound);
        w->qbound = NULL;
    }
}

/* Runs on the worker's own loop (scheduled by the main thread with event_base_once). */
static void begin_drain(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    worker *w = arg;
    /* stop accepting: no timer may re-enable a listener that is about to be closed */
    if (w->accept_resume) event_del(w->accept_resume);
    for (int i = 0; i < 2; i++)
        if (w->pace[i].resume) event_del(w->pace[i].resume);
    close_listeners(w);
    w->drain_start = srv_now_us();
    w->drain_deadline = w->drain_start + DRAIN_GRACE_US;
    struct timeval tv = {0, 20000};
    w->drain_timer = event_new(w->base, -1, EV_PERSIST, drain_tick, w);
    if (!w->drain_timer || event_add(w->drain_timer, &tv) != 0) event_base_loopexit(w->base, NULL);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    this_worker = w;
    event_base_dispatch(w->base);
    return NULL;
}

/* Out of descriptors (EMFILE and kin): libevent's listener would retry accept() at once,
 * forever, burning a core while the condition lasts. Instead the worker stops accepting
 * for ACCEPT_PAUSE_US; connections already open are served meanwhile. The workers are
 * found by their evhttp, which is what libevent hands the error callback. */
#define ACCEPT_PAUSE_US 100000
static worker *all_workers;
static int n_all_workers;

static void on_accept_error(struct evconnlistener *lis, void *http)
{
    static _Atomic long last_log_sec = 0;
    int err = EVUTIL_SOCKET_ERROR();
    worker *w = NULL;
    for (int i = 0; i < n_all_workers && !w; i++)
        if (all_workers[i].http == http || all_workers[i].qhttp == http) w = &all_workers[i];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long prev = atomic_load(&last_log_sec);
    if (ts.tv_sec != prev && atomic_compare_exchange_strong(&last_log_sec, &prev, (long)ts.tv_sec))
        srv_log(SRV_LOG_WARN, "accept: %s%s", evutil_socket_error_to_string(err),
                w && w->accept_resume ? " (pausing new connections briefly)" : "");
    if (!w || !w->accept_resume || (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)) return;
    struct timeval tv = {0, ACCEPT_PAUSE_US};
    evconnlistener_disable(lis);
    event_add(w->accept_resume, &tv);
}

/* Runs on the worker's loop; a listener closed by the drain meanwhile is NULL here. */
static void resume_accept(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    (void)fd;
    (void)what;
    if (w->bound) evconnlistener_enable(evhttp_bound_socket_get_listener(w->bound));
    if (w->qbound) evconnlistener_enable(evhttp_bound_socket_get_listener(w->qbound));
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

void srv_worker_busy(int busy)
{
    if (this_worker) atomic_store_explicit(&this_worker->busy, busy, memory_order_relaxed);
}

static void resume_paced(evutil_socket_t fd, short what, void *arg)
{
    accept_pace *ap = arg;
    (void)fd;
    (void)what;
    event_del(ap->resume);                      /* woken early: drop the pending timeout */
    atomic_store(&ap->yielding, 0);
    if (*ap->bound) evconnlistener_enable(evhttp_bound_socket_get_listener(*ap->bound));
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
 * reply. evhttp tells us of the close through the connection's close callback, set when
 * the connection's first bytes arrive (evhttp has no hook before that).
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
    /* out of the event loop while the number still names the socket, then the swap */
    int arriving = n > 0 || evbuffer_get_length(bufferevent_get_input(bev)) > 0;
    bufferevent_disable(bev, EV_READ | EV_WRITE);
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

/* The first bytes of a connection: evhttp owns it by now (its callbacks' argument). */
static void on_first_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct bufferevent *bev = arg;
    void *conn = NULL;
    if (!info->n_added || !this_worker) return;
    bufferevent_getcb(bev, NULL, NULL, NULL, &conn);
    if (conn) evhttp_connection_set_closecb(conn, on_close, this_worker);
    evbuffer_remove_cb(buf, on_first_input, bev);
}

/* evhttp asks for each new connection's bufferevent: the moment a worker has accepted
 * one. It is the one evhttp would make, watched for its first bytes, and without
 * BEV_OPT_CLOSE_ON_FREE: evhttp then shuts the socket down before it closes it (with the
 * option, libevent 2.1 closes first and shuts down the number afterwards, which another
 * thread may have been given meanwhile). */
static struct bufferevent *on_new_connection(struct event_base *base, void *arg)
{
    accept_pace *ap = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);
    if (bev && !evbuffer_add_cb(bufferevent_get_input(bev), on_first_input, bev)) {
        bufferevent_free(bev);
        bev = NULL;
    }
    srv_metrics_connection((int)(ap->w - all_workers));
    unsigned long mine = atomic_fetch_add(&ap->accepted, 1) + 1;
    int idle_behind = 0;                        /* an accepting idle worker 2 or more behind */
    for (int i = 0; i < n_all_workers; i++) {
        accept_pace *other = &all_workers[i].pace[ap->kind];
        if (other == ap || !other->resume) continue;
        unsigned long theirs = atomic_load(&other->accepted);
        /* one that waits for the workers behind it: this one has caught up with it */
        if (atomic_load(&other->yielding) && theirs <= mine + 1) event_active(other->resume, EV_TIMEOUT, 1);
        if (theirs + 2 <= mine && !atomic_load_explicit(&all_workers[i].busy, memory_order_relaxed))
            idle_behind = 1;
    }
    if (*ap->bound && ap->resume) {
        evconnlistener_disable(evhttp_bound_socket_get_listener(*ap->bound));
        atomic_store(&ap->yielding, idle_behind);
        struct timeval tv = {0, idle_behind ? ACCEPT_YIELD_US : 0};
        if (event_add(ap->resume, &tv) != 0) resume_paced(-1, 0, ap);
    }
    return bev;
}

/* An evhttp on w's base with the server's limits, accepting on a dup of lfd. */
static int http_init(worker *w, struct evhttp **http, struct evhttp_bound_socket **bound,
                     evutil_socket_t lfd, srv_listener *l, const options *o)
{
    evutil_socket_t fd = -1;
    if (!(*http = evhttp_new(w->base))) return -1;
    /* every method, known to libevent or not, reaches the pipeline, which answers the
     * ones it does not implement in the API's own error shape */
    evhttp_set_allowed_methods(*http, 0xffff);
    evhttp_set_max_body_size(*http, (ev_ssize_t)o->max_body);
    evhttp_set_max_headers_size(*http, 64 * 1024);
    evhttp_set_timeout(*http, o->timeout_s);
    /* Every reply of ours sets its Content-Type; the default labels only the few pages
     * libevent 2.1 writes itself (413 for a body over --max-body, 400 for HTTP it cannot
     * parse), which are HTML: say so, rather than call them JSON. (libevent 2.2's
     * evhttp_set_errorcb would let those be JSON too; Debian 12 has 2.1.) */
    evhttp_set_default_content_type(*http, "text/html; charset=ISO-8859-1");
    evhttp_set_gencb(*http, srv_dispatch, l);
    if ((fd = fcntl(lfd, F_DUPFD_CLOEXEC, 0)) < 0) return -1;
    if (!(*bound = evhttp_accept_socket_with_handle(*http, fd))) {
        close(fd);
        return -1;
    }
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(*bound), on_accept_error);
    accept_pace *ap = &w->pace[bound == &w->qbound];
    if (n_all_workers > 1 && !(ap->resume = evtimer_new(w->base, resume_paced, ap))) return -1;
    evhttp_set_bevcb(*http, on_new_connection, ap);       /* counts; paces when resume is set */
    return 0;
}

static int worker_init(worker *w, srv_ctx *ctx, evutil_socket_t lfd, evutil_socket_t qfd,
                       const options *o)
{
    memset(w, 0, sizeof *w);
    w->ctx = ctx;
    w->pace[0] = (accept_pace){.w = w, .kind = 0, .bound = &w->bound};
    w->pace[1] = (accept_pace){.w = w, .kind = 1, .bound = &w->qbound};
    /* Not EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST, although it saves 2 of the 9 system calls of
     * a search (about 5% of the throughput): a connection closed with its removal still
     * pending in the changelist leaves an epoll_ctl on a descriptor number that another
     * worker may have been given by accept() meanwhile. Harmless to epoll (ENOENT), but a
     * real race on the descriptor, and ThreadSanitizer reports it. */
    if (!(w->base = event_base_new())) return -1;
    if (!(w->accept_resume = evtimer_new(w->base, resume_accept, w))) return -1;
    w->listener[0] = (srv_listener){ctx, &srv_native_api};
    w->listener[1] = (srv_listener){ctx, &srv_qdrant_api};
    if (http_init(w, &w->http, &w->bound, lfd, &w->listener[0], o) != 0) return -1;
    if (qfd >= 0 && http_init(w, &w->qhttp, &w->qbound, qfd, &w->listener[1], o) != 0) return -1;
    return 0;
}

static void worker_release(worker *w)
{
    while (w->lingering) linger_end(w, w->lingering);
    if (w->drain_timer) event_free(w->drain_timer);
    if (w->accept_resume) event_free(w->accept_resume);
    for (int i = 0; i < 2; i++)
        if (w->pace[i].resume) event_free(w->pace[i].resume);
    if (w->http) evhttp_free(w->http);          /* frees its connections and listener */
    if (w->qhttp) evhttp_free(w->qhttp);
    if (w->base) event_base_free(w->base);
    memset(w, 0, sizeof *w);
}

/* libevent's own warnings ("Error from accept() call: Too many open files" repeats for as
 * long as descriptors are exhausted, thousands of times a second): at most one line a
 * second reaches the log, with a count of what was held back. */
static void libevent_log(int severity, const char *msg)
{
    static _Atomic long last_sec = 0, suppressed = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long prev = atomic_load(&last_sec);
    if (ts.tv_sec == prev || !atomic_compare_exchange_strong(&last_sec, &prev, (long)ts.tv_sec)) {
        atomic_fetch_add(&suppressed, 1);
        return;
    }
    long held = atomic_exchange(&suppressed, 0);
    srv_log(severity >= EVENT_LOG_ERR ? SRV_LOG_ERROR : SRV_LOG_WARN, "libevent: %s%s", msg,
            held ? " (and similar messages held back)" : "");
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse_options(argc, argv, &o);
    if (rc == 1) { usage(stdout); return 0; }
    if (rc == 2) { usage(stderr); return 2; }
    srv_log_level = o.log_level;

    int exit_code = 1;
    srv_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.max_body = o.max_body;
    ctx.timeout_s = o.timeout_s;
    worker *workers = NULL;
    int nworkers = 0;
    char **names = NULL;
    size_t ncoll = 0;
    evutil_socket_t lfd = -1, qfd = -1;
    char shown[160], qshown[160] = "";
    sigset_t sigs, old;

    if (catch_signals() != 0) {
        srv_log(SRV_LOG_ERROR, "cannot install signal handlers: %s", strerror(errno));
        return 1;
    }
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);

    if (o.key_file) {
        char err[512];
        if (srv_keys_load(o.key_file, &ctx.keys, err, sizeof err) != 0) {
            srv_log(SRV_LOG_ERROR, "--api-key-file: %s", err);
            goto cleanup;
        }
    }
    event_set_log_callback(libevent_log);
    if (evthread_use_pthreads() != 0) {
        srv_log(SRV_LOG_ERROR, "libevent has no pthreads support");
        goto cleanup;
    }
    json_object_seed(0);                            /* once, before threads */

    if (mkdir(o.data, 0755) != 0 && errno != EEXIST) {
        srv_log(SRV_LOG_ERROR, "cannot create %s: %s", o.data, strerror(errno));
        goto cleanup;
    }
    qv_db_options dbo;
    qv_db_options_init(&dbo);
    dbo.checkpoint_every = o.checkpoint_every;
    if ((rc = qv_db_open(o.data, &dbo, &ctx.db)) != QV_OK) {
        srv_log(SRV_LOG_ERROR, "cannot open database %s: %s: %s", o.data, qv_strerror(rc), qv_last_error());
        goto cleanup;
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

    if ((lfd = open_listener(o.listen, shown, sizeof shown)) < 0) goto cleanup;
    if (o.qdrant_listen && (qfd = open_listener(o.qdrant_listen, qshown, sizeof qshown)) < 0) goto cleanup;
    if (!(workers = calloc((size_t)o.threads, sizeof *workers))) goto cleanup;
    all_workers = workers;                          /* for on_accept_error and the pacing */
    n_all_workers = o.threads;
    for (; nworkers < o.threads; nworkers++) {
        if (worker_init(&workers[nworkers], &ctx, lfd, qfd, &o) != 0) {
            srv_log(SRV_LOG_ERROR, "cannot set up worker %d", nworkers);
            worker_release(&workers[nworkers]);
            goto stop;
        }
    }
    close(lfd);                                     /* the workers hold their own copies */
    lfd = -1;
    if (qfd >= 0) close(qfd);
    qfd = -1;
    srv_log(SRV_LOG_INFO, "%zu collection(s) in %s, %d worker thread(s)%s", ncoll, o.data,
            nworkers, ctx.keys ? ", API keys required" : "");
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
    printf("quiverd listening on %s\n", shown);
    if (qshown[0]) printf("quiverd qdrant api listening on %s\n", qshown);
    fflush(stdout);

    int sig = wait_for_signal();
    srv_log(SRV_LOG_INFO, "signal %d: draining and shutting down", sig);
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
    if (lfd >= 0) close(lfd);
    if (qfd >= 0) close(qfd);
    all_workers = NULL;
    n_all_workers = 0;
    free(workers);
    if (ctx.db) {
        rc = qv_db_close(ctx.db);                   /* checkpoints every collection */
        if (rc != QV_OK) {
            srv_log(SRV_LOG_ERROR, "closing the database: %s: %s", qv_strerror(rc), qv_last_error());
            exit_code = 1;
        }
    }
    qv_free_strings(names, ncoll);
    srv_keys_free(ctx.keys);
    libevent_global_shutdown();
    /* the signal pipe stays open: a late signal's handler may still write to it */
    if (exit_code == 0) srv_log(SRV_LOG_INFO, "stopped");
    return exit_code;
}

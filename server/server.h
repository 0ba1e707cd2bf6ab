/*
 * server/server.h -- quiverd internals shared by the server's files.
 *
 * quiverd is a libevent (evhttp) HTTP/JSON front end over the public API in quiver.h.
 * One event base per worker thread; all bases accept on the same listening socket (each
 * through its own dup() of it, so that every evhttp can close its copy). Handlers run
 * synchronously inside the event loop: parse -> validate -> qv_* -> encode -> one reply.
 *
 * Two APIs share one request pipeline (pipeline.c): each is a route table plus handlers,
 * and the pipeline does everything around a handler the same way for both -- method and
 * path, API key, collection lookup and locking, the reply (metrics, timeouts, draining)
 * and every error but the body's own wording.
 *
 * Files:
 *   main.c        options, database open, worker threads, signals and graceful shutdown
 *   pipeline.c    one request from dispatch to its single reply; QV_E* -> HTTP status
 *   native.c      the native API: route table and handlers
 *   qdrant*.c     the Qdrant-compatible API (qdrant.h)
 *   snapshots.c   snapshots (backups) of a collection or the store, on both APIs
 *   auth.c        API keys (file, collection limits, constant-time comparison) and the
 *                 access of a request; jwt.c: Qdrant-style HS256 tokens (jwt.h)
 *   tls.c         TLS through libevent's OpenSSL bufferevents; SIGHUP reloads
 *   conn.c        open connections: --max-connections and the header/body read deadlines
 *   metrics.c     Prometheus counters and latency histograms
 *   dashboard.c   GET /dashboard: the web page, its files built into the binary
 *   log.c         leveled logging to stderr
 *
 * What is JSON but not HTTP (the body reader, the search parser, the writer of hits and
 * points) is api/ (api/api.h), which the CLI shares.
 *
 * Locking is the library's business: a request opens its collection (a counted handle),
 * uses it and closes it, so a collection dropped meanwhile stays valid until the request
 * is done; the storage layer serializes writers and lets searches run beside them.
 */
#ifndef QV_SERVER_SERVER_H
#define QV_SERVER_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <event2/http.h>
#include <jansson.h>

#include "api/api.h"
#include "quiver.h"

/* ---- logging (log.c) ------------------------------------------------------------ */
enum { SRV_LOG_ERROR = 0, SRV_LOG_WARN, SRV_LOG_INFO, SRV_LOG_DEBUG };
extern int srv_log_level;
int  srv_log_parse_level(const char *s);          /* -1 when unknown */
void srv_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- access: API keys and tokens (auth.c, jwt.c) ------------------------------- */
enum { SRV_ACCESS_NONE = 0, SRV_ACCESS_RO = 1, SRV_ACCESS_RW = 2 };
#define SRV_NAME_MAX 64
typedef struct { char name[SRV_NAME_MAX + 1]; int access; } srv_grant;
typedef struct srv_keys srv_keys;
/** What a request may do. A credential is an API key, or a token signed by one; either
 *  may be limited to listed collections, and a collection is open to the request at the
 *  lowest level any of them grants (srv_auth_coll). */
typedef struct {
    int access;                     /* of the key: SRV_ACCESS_*; NONE: refused, see why */
    const srv_grant *key_grants;    /* a key limited to collections: its list (borrowed) */
    size_t nkey_grants;
    int key_restricted;
    int token_access;               /* a token's access claim; SRV_ACCESS_RW for a key */
    srv_grant *token_grants;        /* a token limited to collections (owned) */
    size_t ntoken_grants;
    int token_restricted;
    char sub[64];                   /* a token's subject claim, printable ASCII */
    char who[112];                  /* for the audit log: "key:1a2b3c4d", "token:SUB(key:...)" */
    const char *why;                /* why a credential was refused (for the 401) */
} srv_auth;
/** Load the key file: lines "KEY rw|ro [COLLECTION,...]" (blank lines and '#' comments
 *  skipped); a key with collections opens only those. On failure *out is NULL and err
 *  (len bytes) says why. */
int  srv_keys_load(const char *path, srv_keys **out, char *err, size_t len);
void srv_keys_free(srv_keys *k);
/** Judge a presented API key or token (NULL: none) into *a (release it after). Key and
 *  signature comparisons run in constant time. */
void srv_auth_check(const srv_keys *k, const char *presented, srv_auth *a);
/** Full access, as without a key file. */
void srv_auth_all(srv_auth *a);
void srv_auth_release(srv_auth *a);
/** The access of a to collection name. */
int  srv_auth_coll(const srv_auth *a, const char *name);
/** 1 when a is limited to listed collections. */
static inline int srv_auth_limited(const srv_auth *a) { return a->key_restricted || a->token_restricted; }

/* ---- metrics (metrics.c) -------------------------------------------------------- */
typedef enum {
    SRV_EP_HEALTHZ = 0, SRV_EP_METRICS, SRV_EP_LIST, SRV_EP_CREATE, SRV_EP_INFO, SRV_EP_DROP,
    SRV_EP_UPSERT, SRV_EP_GET_POINT, SRV_EP_DELETE_POINTS, SRV_EP_SEARCH, SRV_EP_SEARCH_BATCH,
    SRV_EP_INDEX_FIELD, SRV_EP_UNINDEX_FIELD, SRV_EP_TRAIN, SRV_EP_SNAPSHOT, SRV_EP_RESTORE, SRV_EP_DASHBOARD,
    SRV_EP_OTHER, SRV_EP_COUNT
} srv_endpoint;
void srv_metrics_record(srv_endpoint ep, int status, uint64_t micros);
#define SRV_MAX_THREADS 256
/** A worker thread (0..SRV_MAX_THREADS-1) accepted a connection. */
void srv_metrics_connection(int worker);
/** Connections quiverd closed itself, and requests it turned away (conn.c, pipeline.c). */
enum { SRV_CONN_REFUSED = 0, SRV_CONN_EVICTED, SRV_CONN_HEADER_TIMEOUT, SRV_CONN_BODY_TIMEOUT, SRV_REQ_SHED,
       SRV_CONN_NEVENTS };
void srv_metrics_conn_event(int what);
struct srv_ctx;
/** Append the Prometheus text exposition to buf. */
int  srv_metrics_render(struct srv_ctx *ctx, struct evbuffer *buf);

/* ---- a request's collection -------------------------------------------------------- */
typedef struct {
    const char *name;
    qv_coll *coll;                 /* opened for the request, closed after it */
    uint32_t dim;
    qv_metric metric;
} srv_coll;

/* ---- server context ------------------------------------------------------------- */
typedef struct srv_tls srv_tls;
typedef struct srv_ctx {
    qv_db *db;
    srv_keys *keys;                /* NULL: no auth */
    srv_tls *tls;                  /* NULL: plain HTTP */
    int timeout_s;                 /* --timeout: re-armed when a reply is sent */
    int header_timeout_s;          /* --header-timeout: a request's headers, from its first byte */
    int body_timeout_s;            /* --body-timeout: its body, from the end of its headers */
    unsigned max_connections;      /* --max-connections (0: no cap) */
    long max_queue;                /* --max-queue: requests being handled or answered
                                    * but not yet written; beyond it 503 */
    atomic_int draining;           /* set on SIGTERM: replies say Connection: close */
    atomic_long outstanding;       /* replies queued but not yet fully written */
    char *snapshots_dir;           /* --snapshots, resolved (snapshots.c) */
    atomic_long connections;       /* open connections, all workers */
    struct srv_cluster *cluster;   /* --cluster: cluster mode (cluster.h); NULL: one node */
} srv_ctx;

/* ---- TLS (tls.c) ------------------------------------------------------------------ */
struct bufferevent;
struct event_base;
/** TLS from PEM files cert (a chain) and key; on failure *out is NULL and err says why. */
int  srv_tls_new(const char *cert, const char *key, srv_tls **out, char *err, size_t len);
/** Read the same files again for new connections (SIGHUP); -1 keeps the old ones. */
int  srv_tls_reload(srv_tls *t, char *err, size_t len);
/** A server-side TLS bufferevent for evhttp's next connection (NULL: out of memory). */
struct bufferevent *srv_tls_bufferevent(srv_tls *t, struct event_base *base);
void srv_tls_free(srv_tls *t);

/* ---- connections: the cap and read deadlines (conn.c) ----------------------------- */
typedef struct srv_conns srv_conns;       /* one worker's connections */
/** closed(evcon, arg) runs when evhttp closes a connection quiverd did not close itself. */
srv_conns *srv_conns_new(srv_ctx *ctx, struct event_base *base,
                         void (*closed)(struct evhttp_connection *, void *), void *arg);
/** After the worker's evhttps are freed. */
void srv_conns_free(srv_conns *cs);
/** Track evhttp's new connection on bev (from the bevcb): the cap, the deadlines. */
void srv_conn_track(srv_conns *cs, struct bufferevent *bev);
/** 1 while a connection holds part of a request: bytes in its socket or buffer, headers
 *  begun, or a body being read (the drain on shutdown waits for those). */
int  srv_conns_mid_request(srv_conns *cs);
/** The whole request is read (the pipeline has it): the connection's deadline stops. */
void srv_conn_request_read(struct evhttp_request *req);

/* ---- full-text and hybrid search (text_search.c) -------------------------------- */
/** POST .../search/text (route variant 0) and .../search/hybrid (variant 1). */
struct srv_req;
void srv_h_text_search(struct srv_req *r);

/* ---- the request pipeline (pipeline.c) ------------------------------------------- */
enum { SRV_M_GET = 1, SRV_M_POST = 2, SRV_M_PUT = 4, SRV_M_DELETE = 8, SRV_M_PATCH = 16, SRV_M_ANY = 31 };
enum {
    SRV_R_OPEN = 1,        /* needs no key */
    SRV_R_WRITE = 2,       /* needs a read-write key */
    SRV_R_COLL = 4,        /* collection {name} is opened for the handler; 404 when absent */
    SRV_R_COLL_OPT = 8,    /* the same, but the handler runs with coll NULL when absent */
    SRV_R_CLUSTER = 16,    /* the handler knows cluster collections (cluster.h); other
                            * routes answer 501 for one rather than see its empty local copy */
};

typedef struct srv_req srv_req;
typedef struct {
    unsigned methods;               /* SRV_M_* */
    const char *path;               /* "collections/{name}/points/{arg}"; a last "**"
                                     * segment matches whatever follows (nothing too) */
    srv_endpoint ep;                /* what metrics count it as */
    unsigned flags;                 /* SRV_R_* */
    void (*handler)(srv_req *r);
    int variant;                    /* handler's own switch (r->route->variant) */
    const char *unsupported;        /* no handler: 501 "<this> not supported by quiverd" */
} srv_route;

typedef struct {
    const srv_route *routes;        /* first path match wins, then pipeline.c's routes
                                     * common to both APIs; ones with the same path
                                     * string next to each other, for 405's Allow */
    size_t nroutes;
    int max_segs;
    /* The API's error body for HTTP status, machine code and message. */
    void (*error)(srv_req *r, int status, const char *code, const char *msg);
    int lenient;                    /* bodies: unknown fields skipped, empty reads as {} */
} srv_api;

extern const srv_api srv_native_api;       /* native.c */
extern const srv_api srv_qdrant_api;       /* qdrant.c */
/** Whether r came in on the Qdrant-compatible listener (its replies take Qdrant's envelope). */
int srv_is_qdrant(const srv_req *r);        /* qdrant.c */
/** A success in the listener's shape: native (with status) on the native API, result in
 *  Qdrant's envelope (200) on Qdrant's; steals both, and NULL for the one sent is 503. */
void srv_reply_ok(srv_req *r, int status, json_t *native, json_t *result);   /* qdrant.c */

struct srv_req {
    srv_ctx *ctx;
    const srv_api *api;
    const srv_route *route;
    struct evhttp_request *req;
    srv_endpoint ep;
    srv_auth auth;                  /* what the presented key or token allows */
    int status;                     /* of the reply, once sent */
    long points;                    /* points a write touched (audit log), -1: none */
    uint64_t t0_us;
    int replied;
    const char *name, *arg;         /* path arguments {name} and {arg} */
    srv_coll *coll;                 /* the collection of SRV_R_COLL(_OPT) routes */
    srv_coll opened;
    api_wbuf w;                     /* the reply being written (srv_writer) into out */
    struct evbuffer *out;
    const char *alias;              /* {name} as given, when it was an alias (aliases.c) */
    char resolved[72];              /* the collection it named: r->name then points here */
    int retries;                    /* runs again after the alias's collection was dropped */
    int rerun;                      /* srv_fail_qv left it unanswered for that */
};

/* ---- aliases (aliases.c) ------------------------------------------------------------ */
/** POST /collections/aliases (Qdrant) and POST /aliases (native): one list of actions. */
void srv_h_alias_update(srv_req *r);
/** GET /aliases and GET /collections/{name}/aliases, on both APIs. */
void srv_h_alias_list(srv_req *r);
/** Before access is judged: a {name} that is an alias becomes its collection's name
 *  (r->alias keeps what was given). Names that are neither stay (the open answers 404). */
void srv_alias_path(srv_req *r);
/** 1 when a request that failed with rc should run again, on what its alias names now:
 *  it came through an alias, and rc is QV_ENOTFOUND because the collection was dropped
 *  (at most 3 times); then srv_alias_path again, and the open and handler. */
int  srv_alias_retry(srv_req *r, int rc);

/** The general request callback of an evhttp; arg is a srv_listener. */
typedef struct { srv_ctx *ctx; const srv_api *api; } srv_listener;
void srv_dispatch(struct evhttp_request *req, void *arg);

/* Every handler ends in exactly one of these. The failures return -1, so that a helper
 * that replies and gives up says so in one line: return srv_bad(r, "..."). */
void srv_reply_json(srv_req *r, int status, json_t *body);        /* steals body */
void srv_reply_buf(srv_req *r, int status, const char *ctype, struct evbuffer *body);
int  srv_fail(srv_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** Reply for a failed qv_* call: one place that maps QV_E* to an HTTP status. */
int  srv_fail_qv(srv_req *r, int rc);
/** Reply for a refused body: 400, or 503 when out of memory. */
int  srv_fail_jerr(srv_req *r, const api_jerr *e);
#define srv_bad(r, ...) srv_fail(r, 400, "invalid_argument", __VA_ARGS__)
#define srv_oom(r) srv_fail(r, 503, "out_of_memory", "out of memory")
/** Read the body as one object of fields into dst (api_jread; strict on the native API,
 *  lenient on Qdrant's); name names it in messages. -1 after replying 400 (503 when out
 *  of memory). */
int  srv_read_body(srv_req *r, const char *name, const api_jfield *fields, void *dst);
/** The request's reply writer (its buffer made on first use, freed after the handler),
 *  and the 200 reply of what was written (503 when writing ran out of memory). */
api_wbuf *srv_writer(srv_req *r);
void srv_reply_written(srv_req *r);
/** 1 when the request's credential may read collection name (listings show only those). */
int  srv_may_see(const srv_req *r, const char *name);

/* ---- operations shared by both APIs (native.c) ------------------------------------- */
void srv_h_metrics(srv_req *r);
void srv_h_list(srv_req *r);
/** Create collection r->name; r->coll is then it (closed by the pipeline). -1 after
 *  replying with the error (409 when it exists). shard_number and replication_factor
 *  (0: 1) are Qdrant's: above 1 only in cluster mode, where every collection created is
 *  a cluster collection. */
int  srv_create_collection(srv_req *r, const qv_collection_config *cfg, uint32_t shard_number, uint32_t replication_factor);
/** Change collection r->name's parameters (PATCH of either API): here, or on every node of
 *  a cluster collection. 0 when done (the caller replies); -1 after replying. */
int  srv_update_collection(srv_req *r, const qv_collection_changes *ch);
/** Drop collection r->name; -1 after replying (404 when absent). */
int  srv_drop_collection(srv_req *r);
/** Open collection name into e (QV_ENOTFOUND when absent); close e->coll after use. */
int  srv_open(srv_ctx *ctx, const char *name, srv_coll *e);

/* ---- snapshots (snapshots.c): handlers of both APIs' route tables ------------------ */
/** Create and resolve the snapshots directory (dir, or NULL for <data>/backups) into
 *  ctx->snapshots_dir; -1 after logging why not. */
int  srv_snapshots_init(srv_ctx *ctx, const char *dir, const char *data);
void srv_snapshots_release(srv_ctx *ctx);
void srv_h_snapshot_create(srv_req *r);      /* {name} set: that collection; else the store */
void srv_h_snapshot_list(srv_req *r);
void srv_h_snapshot_download(srv_req *r);    /* {arg}: the file */
void srv_h_snapshot_delete(srv_req *r);
void srv_h_snapshot_recover(srv_req *r);     /* {"location", "checksum"} */
void srv_h_snapshot_upload(srv_req *r);      /* multipart/form-data or the raw file */

/** Upsert p into r's collection (one transaction); -1 after replying with the error. */
int  srv_upsert(srv_req *r, const api_points *p, const qv_sparse_vector *sparse /* NULL: none */);

/* ---- the dashboard (dashboard.c) --------------------------------------------------- */
/** One file of server/dashboard/, built into the binary by server/dashboard/embed.sh
 *  (the generated table ends with a NULL name). */
typedef struct { const char *name, *type; const unsigned char *data; size_t len; } srv_asset;
extern const srv_asset srv_dashboard_assets[];
/** GET /dashboard (index.html) and /dashboard/FILE: open, like the page itself; the
 *  page's API calls carry the key. */
void srv_h_dashboard(srv_req *r);

/* ---- workers (main.c) ------------------------------------------------------------- */
/** The calling worker starts (1) or ends (0) handling a request: connection pacing does
 *  not wait for a busy worker. No-op outside worker threads. */
void srv_worker_busy(int busy);

#endif

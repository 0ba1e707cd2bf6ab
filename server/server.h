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
 *   search.c      search requests: the one parser, the grouped library calls, the one
 *                 writer of hits and points (native and Qdrant shapes)
 *   json.c        JSON in (strict jansson helpers, a scanner for raw JSON text) and out
 *                 (numbers, stored payloads copied as they are)
 *   qdrant*.c     the Qdrant-compatible API (qdrant.h)
 *   auth.c        API keys (file, constant-time comparison)
 *   metrics.c     Prometheus counters and latency histograms
 *   log.c         leveled logging to stderr
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

#include <event2/http.h>
#include <jansson.h>

#include "quiver.h"

/* ---- logging (log.c) ------------------------------------------------------------ */
enum { SRV_LOG_ERROR = 0, SRV_LOG_WARN, SRV_LOG_INFO, SRV_LOG_DEBUG };
extern int srv_log_level;
int  srv_log_parse_level(const char *s);          /* -1 when unknown */
void srv_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- API keys (auth.c) ---------------------------------------------------------- */
enum { SRV_ACCESS_NONE = 0, SRV_ACCESS_RO = 1, SRV_ACCESS_RW = 2 };
typedef struct srv_keys srv_keys;
/** Load "KEY rw|ro" lines (blank lines and '#' comments skipped). On failure *out is
 *  NULL and err (len bytes) says why. */
int  srv_keys_load(const char *path, srv_keys **out, char *err, size_t len);
void srv_keys_free(srv_keys *k);
/** Access level of a presented key (constant time in the key's bytes). */
int  srv_keys_check(const srv_keys *k, const char *presented);

/* ---- metrics (metrics.c) -------------------------------------------------------- */
typedef enum {
    SRV_EP_HEALTHZ = 0, SRV_EP_METRICS, SRV_EP_LIST, SRV_EP_CREATE, SRV_EP_INFO, SRV_EP_DROP,
    SRV_EP_UPSERT, SRV_EP_GET_POINT, SRV_EP_DELETE_POINTS, SRV_EP_SEARCH, SRV_EP_SEARCH_BATCH,
    SRV_EP_INDEX_FIELD, SRV_EP_UNINDEX_FIELD, SRV_EP_TRAIN,
    SRV_EP_OTHER, SRV_EP_COUNT
} srv_endpoint;
const char *srv_endpoint_name(srv_endpoint ep);
void srv_metrics_record(srv_endpoint ep, int status, uint64_t micros);
#define SRV_MAX_THREADS 256
/** A worker thread (0..SRV_MAX_THREADS-1) accepted a connection. */
void srv_metrics_connection(int worker);
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

/* ---- limits, the same on both APIs ----------------------------------------------- */
#define SRV_DEFAULT_K   10u
#define SRV_MAX_EF      QV_MAX_EF  /* the library's limit (quiver.h) */
#define SRV_MAX_NPROBE  65536u
#define SRV_MAX_BATCH   4096u      /* searches per batch request */

/* ---- server context ------------------------------------------------------------- */
typedef struct srv_ctx {
    qv_db *db;
    srv_keys *keys;                /* NULL: no auth */
    size_t max_body;
    int timeout_s;                 /* --timeout: re-armed when a reply is sent */
    atomic_int draining;           /* set on SIGTERM: replies say Connection: close */
    atomic_long outstanding;       /* replies queued but not yet fully written */
} srv_ctx;

/* ---- the request pipeline (pipeline.c) ------------------------------------------- */
enum { SRV_M_GET = 1, SRV_M_POST = 2, SRV_M_PUT = 4, SRV_M_DELETE = 8, SRV_M_PATCH = 16, SRV_M_ANY = 31 };
enum {
    SRV_R_OPEN = 1,        /* needs no key */
    SRV_R_WRITE = 2,       /* needs a read-write key */
    SRV_R_COLL = 4,        /* collection {name} is opened for the handler; 404 when absent */
    SRV_R_COLL_OPT = 8,    /* the same, but the handler runs with coll NULL when absent */
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
    const srv_route *routes;        /* first path match wins; ones with the same path
                                     * string next to each other, for 405's Allow */
    size_t nroutes;
    int max_segs;
    /* The API's error body for HTTP status, machine code and message. */
    void (*error)(srv_req *r, int status, const char *code, const char *msg);
} srv_api;

extern const srv_api srv_native_api;       /* native.c */
extern const srv_api srv_qdrant_api;       /* qdrant.c */

struct srv_req {
    srv_ctx *ctx;
    const srv_api *api;
    const srv_route *route;
    struct evhttp_request *req;
    srv_endpoint ep;
    int access;                     /* SRV_ACCESS_* of the presented key */
    uint64_t t0_us;
    int replied;
    const char *name, *arg;         /* path arguments {name} and {arg} */
    srv_coll *coll;                 /* the collection of SRV_R_COLL(_OPT) routes */
    srv_coll opened;
};

uint64_t srv_now_us(void);
/** The general request callback of an evhttp; arg is a srv_listener. */
typedef struct { srv_ctx *ctx; const srv_api *api; } srv_listener;
void srv_dispatch(struct evhttp_request *req, void *arg);

/* Every handler ends in exactly one of these. */
void srv_reply_json(srv_req *r, int status, json_t *body);        /* steals body */
void srv_reply_buf(srv_req *r, int status, const char *ctype, struct evbuffer *body);
void srv_fail(srv_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** Reply for a failed qv_* call: one place that maps QV_E* to an HTTP status. */
void srv_fail_qv(srv_req *r, int rc);
#define srv_bad(r, ...) srv_fail(r, 400, "invalid_argument", __VA_ARGS__)
#define srv_oom(r) srv_fail(r, 503, "out_of_memory", "out of memory")
/** The body as a JSON object (an empty one when empty_ok and there is no body); NULL
 *  after replying 400. */
json_t *srv_body(srv_req *r, int empty_ok);

/* ---- handlers shared by both APIs (native.c) -------------------------------------- */
void srv_h_metrics(srv_req *r);
/** Create collection r->name; r->coll is then it (closed by the pipeline). -1 after
 *  replying with the error (409 when it exists). */
int  srv_create_collection(srv_req *r, const qv_collection_config *cfg);
/** Drop collection r->name; -1 after replying (404 when absent). */
int  srv_drop_collection(srv_req *r);
/** 1 when name is a valid collection name (1..64 of [A-Za-z0-9_.-], not leading '.'). */
int  srv_name_valid(const char *name);
/** Open collection name into e (QV_ENOTFOUND when absent); close e->coll after use. */
int  srv_open(srv_ctx *ctx, const char *name, srv_coll *e);

/* ---- JSON in and out (json.c) ------------------------------------------------------ */
/** Error detail of a failed JSON check (for the 400 message). */
typedef struct { const char *code; char msg[256]; } srv_jerr;
int srv_jfail(srv_jerr *e, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** The text as one JSON object, duplicate keys refused; NULL with e filled. */
json_t *srv_json_parse(const char *text, size_t len, srv_jerr *e);
/** Fail when obj has a key outside allowed (NULL-terminated). */
int srv_json_only(const json_t *obj, const char *what, const char *const *allowed, srv_jerr *err);
/** Optional unsigned integer field in [lo, hi]; *out untouched when absent or null. */
int srv_json_uint(const json_t *obj, const char *key, uint64_t lo, uint64_t hi, uint64_t *out,
                  srv_jerr *err);
/** An array of exactly dim finite numbers in float range, written to out. */
int srv_json_vector(const json_t *v, const char *what, uint32_t dim, float *out, srv_jerr *err);
/** Parse a decimal uint64 from a URL segment (digits only). */
int srv_parse_id(const char *s, uint64_t *out);

/** Numbers into buf (size >= 32), returning the length or -1: a double as jansson writes
 *  it with precision 9; a float the same way without printf; a double in the fewest
 *  digits that read back as the same double, in jansson's style ("5.0", "1e300"). */
int srv_fmt_real9(char *buf, size_t size, double v);
int srv_fmt_score(char *buf, size_t size, float f);
int srv_fmt_double(char *buf, size_t size, double v);
/** Append a literal. */
#define srv_add_lit(out, lit) evbuffer_add(out, lit, sizeof(lit) - 1)

/* ---- searches (search.c) ------------------------------------------------------------ */
typedef struct {
    float *vec;                     /* dim floats (the caller's) */
    uint32_t k, ef, nprobe;
    int exact;                      /* scan every allowed point exactly */
    int rescore;                    /* quantized collections: qv_rescore (0 = default) */
    float oversampling;             /* quantized collections: 0 = default, 1..100 */
    int with_payload;
    qv_filter *filter;              /* owned; NULL: none */
    char *filter_text;              /* its text, to group equal searches (owned) */
    qv_accept_fn accept;            /* an id predicate (borrowed), NULL: none */
    void *accept_arg;
} srv_search;
void srv_search_release(srv_search *s);

/** Parse a native search body ({"vector","k","ef","nprobe","filter","with_payload","exact",
 *  "rescore","oversampling"}), or
 *  with batch the batch body {"searches":[...]} of 1..SRV_MAX_BATCH of them, for a
 *  collection of dimension dim. On success *out holds *n searches whose vectors are in
 *  one allocation at (*out)[0].vec; free with srv_searches_free. -1 with e filled (every
 *  error the general JSON path gives, the same code). */
int srv_parse_searches(const char *body, size_t len, uint32_t dim, int batch, srv_search **out, size_t *n,
                       srv_jerr *e);
void srv_searches_free(srv_search *s, size_t n);

/** The hits of n searches: rows of *kmax at *hits, counts *nh, planner stats *st (all
 *  malloc'd, freed with srv_results_free). Searches with equal parameters and filter run
 *  as one library call, so a batch shares its filter's allowed set. */
typedef struct { qv_hit *hits; size_t *nh; qv_search_stats *st; uint32_t kmax; uint64_t took_us; } srv_results;
int  srv_run_searches(qv_coll *c, uint32_t dim, const srv_search *s, size_t n, srv_results *res);
void srv_results_free(srv_results *res);

/** How points are written: the native {"id","score","payload"} or Qdrant's
 *  {"id","version","score","payload","vector"}. */
typedef struct {
    int qdrant;                     /* Qdrant's shape: payload and vector null when not
                                     * shown; points that do not exist are left out */
    int scores;                     /* hits carry scores */
    int payload;                    /* payloads shown */
    int (*keep)(const char *key, void *arg);   /* which top-level payload keys (NULL: all) */
    void *keep_arg;
    const char *id_key;             /* ids with id_key_bit show the string stored under */
    uint64_t id_key_bit;            /* this payload key instead (Qdrant's UUIDs) */
    int with_vector;
} srv_point_style;
/** Append the JSON array of the points of hits[0..n) (ids, and scores as given), reading
 *  from c what st shows. QV_OK, QV_ENOMEM, or the QV_E* code of a failed read. */
int srv_put_points(struct evbuffer *out, qv_coll *c, uint32_t dim, const qv_hit *hits, size_t n,
                   const srv_point_style *st);
/** The planner's account {"plan",...,"cached":b} of one search. */
int srv_put_took(struct evbuffer *out, const qv_search_stats *st);
/** A vector as a JSON array of floats. */
int srv_put_vector(struct evbuffer *out, const float *v, uint32_t dim);
/** Append a stored JSON value (a payload) as it is stored, each real in its shortest
 *  exact form; of an object only the top-level keys keep (NULL: all) accepts. -1 when
 *  text is not valid JSON (nothing appended then) or out of memory. */
int srv_put_stored(struct evbuffer *out, const char *text, int (*keep)(const char *key, void *arg), void *keep_arg);
/** The string value of top-level key of a stored object into buf (cap); 0 when found. */
int srv_stored_string(const char *text, const char *key, char *buf, size_t cap);

/* ---- workers (main.c) ------------------------------------------------------------- */
/** The calling worker starts (1) or ends (0) handling a request: connection pacing does
 *  not wait for a busy worker. No-op outside worker threads. */
void srv_worker_busy(int busy);

#endif

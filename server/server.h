/*
 * server/server.h -- quiverd internals shared by the server's files.
 *
 * quiverd is a libevent (evhttp) HTTP/JSON front end over the public API in quiver.h.
 * One event base per worker thread; all bases accept on the same listening socket (each
 * through its own dup() of it, so that every evhttp can close its copy). Handlers run
 * synchronously inside the event loop: parse -> validate -> qv_* -> encode -> one reply.
 *
 * Files:
 *   main.c      options, database open, worker threads, signals and graceful shutdown
 *   http.c      per-request dispatch: auth, routing, 405/404, replies, QV_E* -> status
 *   handlers.c  one function per endpoint
 *   jsonin.c    strict JSON input helpers (types, ranges, unknown fields, float range)
 *   search_fast.c  the plain search request scanned and answered without jansson trees
 *   json_out.c  replies written from jansson trees, payload numbers exact; number formatting
 *   colls.c     the table of open collections and its lock
 *   auth.c      API keys (file, constant-time comparison)
 *   metrics.c   Prometheus counters and latency histograms
 *   log.c       leveled logging to stderr
 *
 * Locking: the collection table is guarded by one writer-preferring rwlock. Create and
 * drop take it for writing (so no request can hold a handle that a drop frees); every
 * other request takes it for reading. Everything else is the library's business: the
 * storage layer serializes writers and lets searches run beside them (storage/storage.h).
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

/* ---- collections (colls.c) ------------------------------------------------------ */
typedef struct {
    char name[72];
    qv_coll *coll;                 /* borrowed from the db */
    uint32_t dim;
    qv_metric metric;
} srv_coll;

typedef struct {
    pthread_rwlock_t lock;         /* table lock: write for create/drop */
    srv_coll *v;
    size_t n, cap;
} srv_colls;

int  srv_colls_init(srv_colls *t, qv_db *db);   /* opens every existing collection */
void srv_colls_release(srv_colls *t);
/** Lookup under the caller's table lock. NULL when absent. */
srv_coll *srv_colls_find(srv_colls *t, const char *name);
/** Add an entry (caller holds the write lock). QV_OK or QV_ENOMEM. */
int  srv_colls_add(srv_colls *t, const char *name, qv_coll *c);
/** Remove an entry (caller holds the write lock). */
void srv_colls_remove(srv_colls *t, const char *name);
/** 1 when name is a valid collection name (1..64 of [A-Za-z0-9_.-], not leading '.'). */
int  srv_name_valid(const char *name);

/* ---- server context ------------------------------------------------------------- */
typedef struct srv_ctx {
    qv_db *db;
    srv_colls colls;
    srv_keys *keys;                /* NULL: no auth */
    size_t max_body;
    int timeout_s;                 /* --timeout: re-armed when a reply is sent */
    atomic_int draining;           /* set on SIGTERM: replies say Connection: close */
    atomic_long outstanding;       /* replies queued but not yet fully written */
} srv_ctx;

/* ---- per-request state and replies (http.c) ------------------------------------- */
typedef struct {
    srv_ctx *ctx;
    struct evhttp_request *req;
    srv_endpoint ep;
    int access;                    /* SRV_ACCESS_* of the presented key */
    uint64_t t0_us;
    int replied;
} srv_req;

uint64_t srv_now_us(void);
/** The general request callback installed on every evhttp. */
void srv_http_dispatch(struct evhttp_request *req, void *arg);

/* Every handler ends in exactly one of these. */
void srv_reply_json(srv_req *r, int status, json_t *body);        /* steals body */
void srv_reply_text(srv_req *r, int status, const char *ctype, struct evbuffer *body);
void srv_reply_error(srv_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** Reply for a failed qv_* call: one place that maps QV_E* to an HTTP status. */
void srv_reply_qv(srv_req *r, int rc);

/* ---- strict JSON input (jsonin.c) ----------------------------------------------- */
/** Error detail of the last failed jsonin call on this thread (for the 400 message). */
typedef struct { const char *code; char msg[256]; } srv_jerr;  /* code: JSON error code */
/** Parse the request body as a JSON object. NULL on failure (err filled). */
json_t *srv_json_body(struct evhttp_request *req, srv_jerr *err);
/** Fail when obj has a key outside allowed (NULL-terminated). */
int srv_json_only(const json_t *obj, const char *what, const char *const *allowed, srv_jerr *err);
/** Optional unsigned integer field in [lo, hi]; *out untouched when absent or null. */
int srv_json_uint(const json_t *obj, const char *key, uint64_t lo, uint64_t hi, uint64_t *out,
                  srv_jerr *err);
/** A point id: a JSON integer in 0..INT64_MAX. */
int srv_json_id(const json_t *v, const char *what, uint64_t *out, srv_jerr *err);
/** An array of exactly dim finite numbers in float range, written to out. */
int srv_json_vector(const json_t *v, const char *what, uint32_t dim, float *out, srv_jerr *err);
/** Optional boolean field. */
int srv_json_bool(const json_t *obj, const char *key, int *out, srv_jerr *err);
/** Parse a decimal uint64 from a URL segment (digits only). */
int srv_parse_id(const char *s, uint64_t *out);
/** A request path split into percent-decoded segments (seg[], NULL after the last).
 *  They live in small[] (or, for a long path, in heap) until srv_path_release(). */
#define SRV_PATH_MAX_SEGS 8
typedef struct { char *seg[SRV_PATH_MAX_SEGS + 1]; char small[512]; char *heap; } srv_path;
/** Split "/a/b%2Fc/" into at most max segments. Returns the count, -1 for too many or
 *  empty inner segments (no route), -2 when a segment decodes to bytes outside printable
 *  ASCII. Release sp in every case. Shared by the native and the Qdrant listeners. */
int srv_split_path(const char *path, srv_path *sp, int max);
void srv_path_release(srv_path *sp);

/* ---- search limits, shared by the general and the fast search path ---------------- */
#define SRV_DEFAULT_K   10u
#define SRV_MAX_EF      QV_MAX_EF  /* the library's limit (quiver.h) */
#define SRV_MAX_NPROBE  65536u
#define SRV_MAX_BATCH   4096u      /* searches per batch request */

/* ---- JSON replies (json_out.c) ---------------------------------------------------- */
struct evbuffer;
/** Append v as compact JSON. Reals inside the value of any "payload" key (or all, with
 *  exact) in their shortest exact form; all others as json_dumps(JSON_COMPACT |
 *  JSON_REAL_PRECISION(9)) writes them, which round-trips every float. -1 on failure. */
int srv_json_write(struct evbuffer *out, const json_t *v, int exact);
/** Numbers into buf (size >= 32), returning the length or -1: a double as jansson writes
 *  it with precision 9; a float the same way without printf; a double in the fewest
 *  digits that read back as the same double, in jansson's style ("5.0", "1e300"). */
int srv_fmt_real9(char *buf, size_t size, double v);
int srv_fmt_score(char *buf, size_t size, float f);
int srv_fmt_double(char *buf, size_t size, double v);

/* ---- the plain search request (search_fast.c) ------------------------------------- */
typedef struct { uint32_t k, ef, nprobe; int with_payload; } srv_fast_search;
/** Scan a search body of len bytes. 1: it is a plain search (a vector of dim numbers,
 *  optional k/ef/nprobe/with_payload, no filter) that the general path would accept with
 *  the very same values, now in vec and out. 0: anything else, including every invalid
 *  body; the caller then takes the general path, which words the error. */
int srv_scan_search(const char *s, size_t len, uint32_t dim, float *vec, srv_fast_search *out);
/** The same for a batch body {"searches":[...]} of 1..SRV_MAX_BATCH plain searches: 1 with
 *  *nq searches, their vectors in *vecs (nq * dim) and options in *opts (both malloc'd,
 *  the caller frees them); 0 (nothing allocated) for anything else. */
int srv_scan_search_batch(const char *s, size_t len, uint32_t dim, float **vecs, srv_fast_search **opts,
                          size_t *nq);
/** Append the reply {"hits":[...],"took_us":..,"took":{...}} exactly as the general path
 *  encodes it, with each hit's stored payload read from payloads unless that is NULL.
 *  -1 for what only the general path encodes (unindexed keys, non-finite scores: nothing
 *  is appended then) or out of memory (out holds a part: discard it). */
int srv_format_search_reply(struct evbuffer *out, qv_coll *payloads, const qv_hit *hits, size_t n,
                            uint64_t took_us, const qv_search_stats *st);
/** The stored payloads of hits from c in one read transaction (qv_get_payloads): *texts
 *  gets n strings or NULLs (a point without payload, or deleted since), or NULL itself
 *  when c is NULL or n is 0. -1 when they could not be read. Free with srv_free_payloads. */
int srv_hit_payloads(qv_coll *c, const qv_hit *hits, size_t n, char ***texts);
void srv_free_payloads(char **texts, size_t n);
/** The batch reply {"results":[{"hits":[...],"took":{...}},...],"took_us":..} exactly as
 *  the general path encodes it: query q's nh[q] hits at hits + q * kmax, its stats st[q],
 *  payloads read from c for the queries whose opts ask for them. -1 as above. */
int srv_format_batch_reply(struct evbuffer *out, qv_coll *c, const srv_fast_search *opts, size_t nq,
                           const qv_hit *hits, size_t kmax, const size_t *nh, uint64_t took_us,
                           const qv_search_stats *st);

/* ---- workers (main.c) ------------------------------------------------------------- */
/** The calling worker starts (1) or ends (0) handling a request: connection pacing does
 *  not wait for a busy worker. No-op outside worker threads. */
void srv_worker_busy(int busy);

/* ---- handlers (handlers.c) ------------------------------------------------------ */
void srv_h_healthz(srv_req *r);
void srv_h_metrics(srv_req *r);
void srv_h_list(srv_req *r);
void srv_h_create(srv_req *r, const char *name);
void srv_h_info(srv_req *r, const char *name);
void srv_h_drop(srv_req *r, const char *name);
void srv_h_upsert(srv_req *r, const char *name);
void srv_h_get_point(srv_req *r, const char *name, const char *id);
void srv_h_delete_points(srv_req *r, const char *name);
void srv_h_search(srv_req *r, const char *name);
void srv_h_search_batch(srv_req *r, const char *name);
void srv_h_index_field(srv_req *r, const char *name, const char *field);
void srv_h_unindex_field(srv_req *r, const char *name, const char *field);
void srv_h_train(srv_req *r, const char *name);

#endif

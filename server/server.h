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
 *   snapshots.c   snapshots (backups) of a collection or the store, on both APIs
 *   auth.c        API keys (file, collection limits, constant-time comparison) and the
 *                 access of a request; jwt.c: Qdrant-style HS256 tokens (jwt.h)
 *   tls.c         TLS through libevent's OpenSSL bufferevents; SIGHUP reloads
 *   conn.c        open connections: --max-connections and the header/body read deadlines
 *   metrics.c     Prometheus counters and latency histograms
 *   dashboard.c   GET /dashboard: the web page, its files built into the binary
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
#include <string.h>

#include <event2/http.h>
#include <jansson.h>

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

/* ---- limits, the same on both APIs ----------------------------------------------- */
#define SRV_DEFAULT_K   10u
#define SRV_MAX_EF      QV_MAX_EF  /* the library's limit (quiver.h) */
#define SRV_MAX_NPROBE  65536u
#define SRV_MAX_BATCH   4096u      /* searches per batch request */

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
/** The whole request is read (the pipeline has it): the connection's deadline stops. */
void srv_conn_request_read(struct evhttp_request *req);

/* ---- JSON in: the body reader (json.c) --------------------------------------------- */
/** Error detail of a refused body (for the 4xx message). */
typedef struct { const char *code; char msg[256]; } srv_jerr;
int srv_jfail(srv_jerr *e, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/** A JSON value as it stands in the text; p NULL when absent (or null). */
typedef struct { const char *p; size_t len; } srv_jtext;

/** Where a reader is in a body, and what it has found wrong. The caller sets strict, dim
 *  and name; srv_jparse() the rest. */
typedef struct srv_jread {
    const char *p, *end, *start;
    int strict;                     /* unknown fields are refused (else skipped) */
    uint32_t dim;                   /* of SRV_J_VECTOR values */
    const char *name;               /* the body in messages ("the search") */
    int bad;                        /* e holds the first bad field */
    srv_jerr e, syntax;
    char path[96];                  /* of the value being read: "points[2].id" */
    size_t plen;
} srv_jread;

/** How a field's value is read, and into what at its offset in the destination. A null
 *  value is an absent field, whatever the kind. */
typedef enum {
    SRV_J_U32 = 1, SRV_J_U64,       /* an integer in lo..hi: uint32_t, uint64_t */
    SRV_J_BOOL,                     /* true or false: int 1 or 0; with hi set, hi or lo (a
                                     * three-way setting whose absence is 0) */
    SRV_J_NUM,                      /* a number: double; with hi set, in lo..hi */
    SRV_J_NAME,                     /* one of the strings arg (NULL-terminated): int lo + index */
    SRV_J_VECTOR,                   /* dim numbers in float range into the float * there */
    SRV_J_TEXT, SRV_J_OBJTEXT,      /* any value / an object: srv_jtext */
    SRV_J_OBJECT,                   /* an object of the fields arg, into the same destination */
    SRV_J_CALL,                     /* read(rd, destination + off) reads it */
    SRV_J_REFUSE,                   /* anything but {}: "<arg> not supported by quiverd" */
} srv_jkind;

typedef struct srv_jfield {
    const char *key;                /* NULL ends a table (at most 64 fields) */
    srv_jkind kind;
    size_t off;
    uint64_t lo, hi;
    const void *arg;
    int (*read)(srv_jread *rd, void *dst);
    int required;                   /* absent: "<object>: missing '<key>'" */
} srv_jfield;

/** Read text (len bytes) as one object of fields into dst. 0, or -1 with *e: the first
 *  syntax error, else the first bad field in the text. dst may be partly filled either
 *  way (the caller releases what its read functions allocated). */
int srv_jparse(srv_jread *rd, const char *text, size_t len, const srv_jfield *fields, void *dst, srv_jerr *e);
/* For read functions. Each returns 0 when it read the value, 1 when the value was bad
 * (recorded; reading goes on to find the first syntax error), -1 on a syntax error. */
int srv_jread_object(srv_jread *rd, const srv_jfield *fields, void *dst);
/** One value as field f says (into dst + f->off; null: nothing). */
int srv_jread_field(srv_jread *rd, const srv_jfield *f, void *dst);
/** Each element, with the path at "<field>[i]". */
int srv_jread_array(srv_jread *rd, int (*each)(srv_jread *rd, size_t i, void *arg), void *arg);
int srv_jread_uint(srv_jread *rd, uint64_t lo, uint64_t hi, uint64_t *out);
/** A string decoded into buf (cut short beyond cap - 1 bytes; *len gets the full length). */
int srv_jread_string(srv_jread *rd, char *buf, size_t cap, size_t *len);
int srv_jread_vector(srv_jread *rd, float *vec);
int srv_jread_text(srv_jread *rd, srv_jtext *out);
/** Record a bad value (the first one counts) and skip it when skip; returns 1 (or -1). */
int srv_jbad(srv_jread *rd, int skip, const char *code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/** 1 when the next token starts with what. */
int srv_jpeek(srv_jread *rd, const char *what);
/** The value being read, by path, or the body's name at the top. */
const char *srv_jwhere(const srv_jread *rd);
/** The object holding the value being read (its path into buf), or NULL at the top. */
const char *srv_jowner(const srv_jread *rd, char *buf, size_t cap);
/** The value of top-level key of the stored object text; 0 when found. */
int srv_jfind(const char *text, size_t len, const char *key, srv_jtext *val);
/** The string t decoded into buf (cap); 0 when t is a string that fits. */
int srv_jstring(srv_jtext t, char *buf, size_t cap);
/** The string under top-level key of a stored object text (NULL: none) into buf. */
int srv_stored_string(const char *text, const char *key, char *buf, size_t cap);

/* ---- JSON out (json.c) -------------------------------------------------------------- */
/** Small pieces gather in b and go to out in a few large adds; err once anything failed. */
typedef struct { struct evbuffer *out; size_t n; int err; char b[1024]; } srv_wbuf;
void srv_wflush(srv_wbuf *w);
void srv_wbig(srv_wbuf *w, const char *s, size_t len);
static inline void srv_wput(srv_wbuf *w, const char *s, size_t len)
{
    if (w->n + len > sizeof w->b) {
        srv_wbig(w, s, len);
        return;
    }
    memcpy(w->b + w->n, s, len);
    w->n += len;
}
#define SRV_WLIT(w, lit) srv_wput(w, lit, sizeof(lit) - 1)
void srv_wu64(srv_wbuf *w, uint64_t v);
void srv_wfloat(srv_wbuf *w, float f);                    /* null when not finite */
void srv_wvector(srv_wbuf *w, const float *v, uint32_t dim);
/** A JSON string as jansson writes it ('"', '\\' and control characters escaped). */
void srv_wstring(srv_wbuf *w, const char *s, size_t len);
/** A stored JSON value (a payload) as it is stored, each real in its shortest exact form;
 *  of an object only the top-level keys keep (NULL: all) accepts. -1 (nothing written)
 *  when text is not valid JSON. */
int  srv_wstored(srv_wbuf *w, const char *text, int (*keep)(const char *key, void *arg), void *keep_arg);

/** Numbers into buf (size >= 32), returning the length or -1: a double as jansson writes
 *  it with precision 9; a float the same way without printf; a double in the fewest
 *  digits that read back as the same double, in jansson's style ("5.0", "1e300"). */
int srv_fmt_real9(char *buf, size_t size, double v);
int srv_fmt_score(char *buf, size_t size, float f);
int srv_fmt_double(char *buf, size_t size, double v);

/* ---- searches (search.c) ------------------------------------------------------------ */
uint64_t srv_now_us(void);                  /* a monotonic clock */
/** A payload filter and its text (both owned; NULL: none). */
typedef struct { qv_filter *f; char *text; } srv_filter;
void srv_filter_release(srv_filter *f);
/** Read function of a filter into a srv_filter: its text, parsed by the library. */
int  srv_jread_filter(srv_jread *rd, void *filter);
/** Parse text (malloc'd: f owns it then) into f; a refusal is recorded in rd. */
int  srv_filter_set(srv_jread *rd, srv_filter *f, char *text);

typedef struct {
    float *vec;                     /* dim floats (the caller's) */
    uint32_t k, ef, nprobe;
    int exact;                      /* scan every allowed point exactly */
    int rescore;                    /* quantized collections: qv_rescore (0 = default) */
    double oversampling;            /* quantized collections: 0 = default, 1..100 */
    int with_payload;
    srv_filter filter;              /* its text groups equal searches */
    qv_accept_fn accept;            /* an id predicate (borrowed), NULL: none */
    void *accept_arg;
} srv_search;
void srv_search_release(srv_search *s);

/** Parse a native search body ({"vector","k","ef","nprobe","filter","with_payload",
 *  "exact","rescore","oversampling"}), or with batch the batch body {"searches":[...]} of 1..SRV_MAX_BATCH of them,
 *  for a collection of dimension dim. On success *out holds *n searches whose vectors are
 *  in one allocation at (*out)[0].vec; free with srv_searches_free. -1 with e filled. */
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
    int single;                     /* the one point alone, not in an array: QV_ENOTFOUND
                                     * when it does not exist */
} srv_point_style;
/** Write the JSON array of the points of hits[0..n) (ids, and scores as given), reading
 *  from c what st shows. QV_OK or the QV_E* code of a failed read (w->err: out of memory). */
int srv_wpoints(srv_wbuf *w, qv_coll *c, uint32_t dim, const qv_hit *hits, size_t n, const srv_point_style *st);
/** The planner's account {"plan",...,"cached":b} of one search. */
void srv_wtook(srv_wbuf *w, const qv_search_stats *st);

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
    int lenient;                    /* bodies: unknown fields skipped, empty reads as {} */
} srv_api;

extern const srv_api srv_native_api;       /* native.c */
extern const srv_api srv_qdrant_api;       /* qdrant.c */

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
    srv_wbuf w;                     /* the reply being written (srv_writer) */
};

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
/** Reply for a refused body: 400, or 503 when out of memory. */
void srv_fail_jerr(srv_req *r, const srv_jerr *e);
#define srv_bad(r, ...) srv_fail(r, 400, "invalid_argument", __VA_ARGS__)
#define srv_oom(r) srv_fail(r, 503, "out_of_memory", "out of memory")
/** Read the body as one object of fields into dst (srv_jread; strict on the native API,
 *  lenient on Qdrant's); name names it in messages. -1 after replying 400 (503 when out
 *  of memory). */
int  srv_read_body(srv_req *r, const char *name, const srv_jfield *fields, void *dst);
/** The request's reply writer (its buffer made on first use, freed after the handler),
 *  and the 200 reply of what was written (503 when writing ran out of memory). */
srv_wbuf *srv_writer(srv_req *r);
void srv_reply_written(srv_req *r);
/** 1 when the request's credential may read collection name (listings show only those). */
int  srv_may_see(const srv_req *r, const char *name);
/** A decimal uint64 from a URL segment (digits only); -1 when it is not one. */
int  srv_parse_id(const char *s, uint64_t *out);

/* ---- operations shared by both APIs (native.c) ------------------------------------- */
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

/** Room for item i of a growing list: *items (an array of size-byte items, passed by the
 *  address of its pointer) and, when vecs is not NULL, *vecs (dim floats an item) grow
 *  together to hold it (capacity *cap doubling, new items zeroed); *n becomes at
 *  least i + 1. The item, or NULL when out of memory (the list stays as it was). */
void *srv_grow(void *items, size_t size, size_t *n, size_t *cap, size_t i, float **vecs, uint32_t dim);
/** A growing list of point ids; srv_ids_add: -1 when out of memory. Free v. */
typedef struct { uint64_t *v; size_t n, cap; } srv_ids;
int  srv_ids_add(srv_ids *l, uint64_t id);
/** Points read from a body for one upsert: n ids, vectors of dim, payload texts (NULL:
 *  none; malloc'd), in arrays of cap. srv_points_grow makes room for point i (n > i). */
typedef struct { uint64_t *ids; float *vecs; char **payloads; size_t n, cap, pcap; uint32_t dim; } srv_points;
int  srv_points_grow(srv_points *p, size_t i);
void srv_points_release(srv_points *p);
/** Upsert p into r's collection (one transaction); -1 after replying with the error. */
int  srv_upsert(srv_req *r, const srv_points *p);

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

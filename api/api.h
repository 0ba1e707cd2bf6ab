/*
 * api/api.h -- the JSON form of quiver's API, shared by quiverd (server/) and the quiver
 * CLI (cli/): one reader of JSON requests (bodies, points, filters, search parameters),
 * one writer of JSON replies (hits, points, stored payloads copied as they are stored),
 * and the grouped library calls of a list of searches. Nothing here knows HTTP: a writer
 * ends in a sink (an evbuffer in quiverd, stdout in the CLI).
 *
 * Like server/ and cli/, api/ uses the public API (quiver.h) only. Its names carry the
 * api_ prefix (API_ for macros); srv_ names are quiverd's own (server/server.h).
 *
 * Files:
 *   json.c        the JSON reader (api_jparse and the api_jread_* pieces) and writer (api_w*)
 *   search.c      searches: the one parser, the grouped library calls, the one writer of
 *                 hits and points (native and Qdrant shapes)
 *   points.c      points read for an upsert (the {"id","vector","payload"} reader), id lists
 *   collection.c  a collection's config and info (the create body, the info object)
 *   qdrant.c      Qdrant's dialect: point ids (integers and UUIDs), the upsert body, payload
 *                 selectors, filters, the search and query bodies
 */
#ifndef QV_API_API_H
#define QV_API_API_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "quiver.h"

/* ---- limits, the same on both APIs of quiverd and in the CLI ----------------------------------------------- */
#define API_DEFAULT_K   10u
#define API_MAX_EF      QV_MAX_EF  /* the library's limit (quiver.h) */
#define API_MAX_NPROBE  65536u
#define API_MAX_BATCH   4096u      /* searches per batch request */

/* ---- JSON in: the body reader (api/json.c) --------------------------------------------- */
/** Error detail of a refused body (for the 4xx message). */
typedef struct { const char *code; char msg[256]; } api_jerr;
int api_jfail(api_jerr *e, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/** A JSON value as it stands in the text; p NULL when absent (or null). */
typedef struct { const char *p; size_t len; } api_jtext;

/** Where a reader is in a body, and what it has found wrong. The caller sets strict, dim
 *  and name; api_jparse() the rest. */
typedef struct api_jread {
    const char *p, *end, *start;
    int strict;                     /* unknown fields are refused (else skipped) */
    uint32_t dim;                   /* of API_J_VECTOR values */
    const char *name;               /* the body in messages ("the search") */
    int bad;                        /* e holds the first bad field */
    api_jerr e, syntax;
    char path[96];                  /* of the value being read: "points[2].id" */
    size_t plen;
    const char *key;                /* the key of the value being read (cut at 63 bytes) */
    size_t klen;                    /* its full length */
} api_jread;

/** How a field's value is read, and into what at its offset in the destination. A null
 *  value is an absent field, whatever the kind. */
typedef enum {
    API_J_U32 = 1, API_J_U64,       /* an integer in lo..hi: uint32_t, uint64_t */
    API_J_BOOL,                     /* true or false: int 1 or 0; with hi set, hi or lo (a
                                     * three-way setting whose absence is 0) */
    API_J_NUM,                      /* a number: double; with hi set, in lo..hi */
    API_J_NAME,                     /* one of the strings arg (NULL-terminated): int lo + index */
    API_J_VECTOR,                   /* dim numbers in float range into the float * there */
    API_J_TEXT, API_J_OBJTEXT,      /* any value / an object: api_jtext */
    API_J_OBJECT,                   /* an object of the fields arg, into the same destination */
    API_J_CALL,                     /* read(rd, destination + off) reads it */
    API_J_REFUSE,                   /* anything but {}: "<arg> not supported by quiverd" */
} api_jkind;

typedef struct api_jfield {
    const char *key;                /* NULL ends a table (at most 64 fields); "*", last,
                                     * takes any key not listed (rd->key names it) */
    api_jkind kind;
    size_t off;
    uint64_t lo, hi;
    const void *arg;
    int (*read)(api_jread *rd, void *dst);
    int required;                   /* absent: "<object>: missing '<key>'" */
} api_jfield;

/** Read text (len bytes) as one object of fields into dst. 0, or -1 with *e: the first
 *  syntax error, else the first bad field in the text. dst may be partly filled either
 *  way (the caller releases what its read functions allocated). */
int api_jparse(api_jread *rd, const char *text, size_t len, const api_jfield *fields, void *dst, api_jerr *e);
/** A bare JSON array of dim numbers (a query vector given on its own) into vec; -1 with
 *  e filled ("dimension_mismatch" when the count differs). */
int api_jparse_vector(const char *text, size_t len, uint32_t dim, float *vec, api_jerr *e);
/* For read functions. Each returns 0 when it read the value, 1 when the value was bad
 * (recorded; reading goes on to find the first syntax error), -1 on a syntax error. */
int api_jread_object(api_jread *rd, const api_jfield *fields, void *dst);
/** One value as field f says (into dst + f->off; null: nothing). */
int api_jread_field(api_jread *rd, const api_jfield *f, void *dst);
/** Each element, with the path at "<field>[i]". */
int api_jread_array(api_jread *rd, int (*each)(api_jread *rd, size_t i, void *arg), void *arg);
int api_jread_uint(api_jread *rd, uint64_t lo, uint64_t hi, uint64_t *out);
/** A string decoded into buf (cut short beyond cap - 1 bytes; *len gets the full length). */
int api_jread_string(api_jread *rd, char *buf, size_t cap, size_t *len);
int api_jread_vector(api_jread *rd, float *vec);
int api_jread_text(api_jread *rd, api_jtext *out);
/** Record a bad value (the first one counts) and skip it when skip; returns 1 (or -1). */
int api_jbad(api_jread *rd, int skip, const char *code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/** 1 when the next token starts with what. */
int api_jpeek(api_jread *rd, const char *what);
/** The value being read, by path, or the body's name at the top. */
const char *api_jwhere(const api_jread *rd);
/** The object holding the value being read (its path into buf), or NULL at the top. */
const char *api_jowner(const api_jread *rd, char *buf, size_t cap);
/** The value of top-level key of the stored object text; 0 when found. */
int api_jfind(const char *text, size_t len, const char *key, api_jtext *val);
/** The string t decoded into buf (cap); 0 when t is a string that fits. */
int api_jstring(api_jtext t, char *buf, size_t cap);
/** The string under top-level key of a stored object text (NULL: none) into buf. */
int api_stored_string(const char *text, const char *key, char *buf, size_t cap);

/* ---- JSON out (api/json.c) -------------------------------------------------------------- */
/** Small pieces gather in b and go to sink in a few large writes (sink: 0, or -1 when
 *  it failed); err once anything failed. A writer without a sink only fails. */
typedef struct api_wbuf {
    int (*sink)(void *arg, const char *p, size_t len);
    void *sink_arg;
    size_t n;
    int err;
    char b[1024];
} api_wbuf;
void api_wflush(api_wbuf *w);
void api_wbig(api_wbuf *w, const char *s, size_t len);
static inline void api_wput(api_wbuf *w, const char *s, size_t len)
{
    if (w->n + len > sizeof w->b) {
        api_wbig(w, s, len);
        return;
    }
    memcpy(w->b + w->n, s, len);
    w->n += len;
}
#define API_WLIT(w, lit) api_wput(w, lit, sizeof(lit) - 1)
void api_wu64(api_wbuf *w, uint64_t v);
void api_wfloat(api_wbuf *w, float f);                    /* null when not finite */
/** A payload value as the library hands it out (qv_facet_hit, qv_group): type 's' the
 *  string s, 'b' the bool i, else the integer i. */
void api_wscalar(api_wbuf *w, char type, int64_t i, const char *s);
void api_wvector(api_wbuf *w, const float *v, uint32_t dim);
/** A JSON string as jansson writes it ('"', '\\' and control characters escaped). */
void api_wstring(api_wbuf *w, const char *s, size_t len);
/** A stored JSON value (a payload) as it is stored, each real in its shortest exact form;
 *  of an object only the top-level keys keep (NULL: all) accepts. -1 (nothing written)
 *  when text is not valid JSON. */
int  api_wstored(api_wbuf *w, const char *text, int (*keep)(const char *key, void *arg), void *keep_arg);

/** Numbers into buf (size >= 32), returning the length or -1: a double as jansson writes
 *  it with precision 9; a float the same way without printf; a double in the fewest
 *  digits that read back as the same double, in jansson's style ("5.0", "1e300"). */
int api_fmt_real9(char *buf, size_t size, double v);
int api_fmt_score(char *buf, size_t size, float f);
int api_fmt_double(char *buf, size_t size, double v);

/* ---- searches (api/search.c) ------------------------------------------------------------ */
uint64_t api_now_us(void);                  /* a monotonic clock */
/** A payload filter and its text (both owned; NULL: none). */
typedef struct { qv_filter *f; char *text; } api_filter;
void api_filter_release(api_filter *f);
/** Read function of a filter into a api_filter: its text, parsed by the library. */
int  api_jread_filter(api_jread *rd, void *filter);
/** Parse text (malloc'd: f owns it then) into f; a refusal is recorded in rd. */
int  api_filter_set(api_jread *rd, api_filter *f, char *text);

typedef struct {
    float *vec;                     /* dim floats (the caller's) */
    uint32_t k, ef, nprobe;
    int exact;                      /* scan every allowed point exactly */
    int rescore;                    /* quantized collections: qv_rescore (0 = default) */
    double oversampling;            /* quantized collections: 0 = default, 1..100 */
    double explore;                 /* bit1 hnsw: qv_search_params.explore, 0 (off)..4 */
    int with_payload;
    api_filter filter;              /* its text groups equal searches */
    qv_accept_fn accept;            /* an id predicate (borrowed), NULL: none */
    void *accept_arg;
} api_search;
void api_search_release(api_search *s);
/** The library's parameters of search s (its filter and predicate borrowed). */
void api_search_params(const api_search *s, qv_search_params *sp);

/** Parse a native search body ({"vector","k","ef","nprobe","filter","with_payload",
 *  "exact","rescore","oversampling","explore"}), or with batch the batch body {"searches":[...]} of 1..API_MAX_BATCH of them,
 *  for a collection of dimension dim. On success *out holds *n searches whose vectors are
 *  in one allocation at (*out)[0].vec; free with api_searches_free. -1 with e filled. */
int api_parse_searches(const char *body, size_t len, uint32_t dim, int batch, api_search **out, size_t *n,
                       api_jerr *e);
void api_searches_free(api_search *s, size_t n);

/** The hits of n searches: rows of *kmax at *hits, counts *nh, planner stats *st (all
 *  malloc'd, freed with api_results_free). Searches with equal parameters and filter run
 *  as one library call, so a batch shares its filter's allowed set. */
typedef struct { qv_hit *hits; size_t *nh; qv_search_stats *st; uint32_t kmax; uint64_t took_us; } api_results;
int  api_run_searches(qv_coll *c, uint32_t dim, const api_search *s, size_t n, api_results *res);
void api_results_free(api_results *res);

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
} api_point_style;
/** Write the JSON array of the points of hits[0..n) (ids, and scores as given), reading
 *  from c what st shows. QV_OK or the QV_E* code of a failed read (w->err: out of memory). */
int api_wpoints(api_wbuf *w, qv_coll *c, uint32_t dim, const qv_hit *hits, size_t n, const api_point_style *st);
/** The planner's account {"plan",...,"cached":b} of one search. */
void api_wtook(api_wbuf *w, const qv_search_stats *st);

/* ---- collections (api/collection.c) --------------------------------------------------- */
/** The create body: index parameters (kind, dim, metric, ...; 0 = the library's default)
 *  and the payload_index object's text. Read with api_create_fields into an api_create_body
 *  whose p was set by qv_index_params_init. */
typedef struct {
    qv_index_params p;
    api_jtext payload_index;
    uint32_t shard_number, replication_factor;
    int on_disk;                   /* qv_collection_config.on_disk */
} api_create_body;
extern const api_jfield api_create_fields[];
/** The update body {"index":{"m","ef_construction","ef_search","quant"}}, read with
 *  api_update_fields: what is absent stays 0 (unchanged); quant is 1 + the qv_quant given. */
typedef struct {
    uint32_t m, ef_construction, ef_search;
    int quant;
} api_update_body;
extern const api_jfield api_update_fields[];
/** {"name","dim","metric","index":{...},"payload_index":{...},"on_disk","count","memory_bytes",
 *  "last_seq"}, index defaults resolved; NULL when out of memory. */
json_t *api_info_json(const char *name, const qv_collection_info *info);
/** The collection's payload_index as an object ({} when none; NULL: out of memory). */
json_t *api_payload_index_json(const qv_collection_info *info);

/* ---- growing lists, points and ids (api/points.c) ---------------------------------- */
/** Room for item i of a growing list: *items (an array of size-byte items, passed by the
 *  address of its pointer) and, when vecs is not NULL, *vecs (dim floats an item) grow
 *  together to hold it (capacity *cap doubling, new items zeroed); *n becomes at
 *  least i + 1. The item, or NULL when out of memory (the list stays as it was). */
void *api_grow(void *items, size_t size, size_t *n, size_t *cap, size_t i, float **vecs, uint32_t dim);
/** A decimal uint64 (digits only: a URL segment, a command-line argument); -1 when it
 *  is not one. */
int  api_parse_id(const char *s, uint64_t *out);
/** A growing list of point ids; api_ids_add: -1 when out of memory. Free v. */
typedef struct { uint64_t *v; size_t n, cap; } api_ids;
int  api_ids_add(api_ids *l, uint64_t id);
/** An API_J_CALL reader of a JSON array of point ids (0..INT64_MAX) into an api_ids. */
int  api_jread_ids(api_jread *rd, void *ids);
/** Points read from a body for one upsert: n ids, vectors of dim, payload texts (NULL:
 *  none; malloc'd), in arrays of cap. api_points_grow makes room for point i (n > i). */
typedef struct { uint64_t *ids; float *vecs; char **payloads; size_t n, cap, pcap; uint32_t dim; } api_points;
int  api_points_grow(api_points *p, size_t i);
void api_points_release(api_points *p);
/** The reader of one point {"id","vector","payload"} (point i of the api_points at
 *  points; an api_jread_array callback), and of an array of them (an API_J_CALL read). */
int  api_jread_point(api_jread *rd, size_t i, void *points);
int  api_jread_points(api_jread *rd, void *points);
/** One point as a text of its own (a line of a .jsonl file): its vector (dim floats) into
 *  vec, its payload's text malloc'd into *payload (NULL: none), its id into *id when it
 *  has one (else *id is left as it is). Unknown fields are skipped. -1 with e filled. */
int  api_parse_point(const char *text, size_t len, uint32_t dim, uint64_t *id, float *vec, char **payload,
                     api_jerr *e);

/* ---- Qdrant's JSON dialect: ids, payload selectors, filters (api/qdrant.c) ----------- */
/* Ids (server/qdrant.h tells the scheme): UUIDs map to QD_UUID_BIT | a hash, and the UUID
 * is kept in the payload under QD_UUID_KEY. */
#define QD_UUID_KEY "__qdrant_uuid"
#define QD_UUID_BIT (1ull << 62)   /* ids at or above it are UUIDs (QV_MAX_ID is 2^63-1) */
typedef struct { char text[37]; } qd_uuid;     /* canonical lowercase hyphenated */

/** A point id (integer below 2^62, or UUID string) -> internal id; *u gets the UUID (""
 *  for an integer). For a URL segment (-1 when invalid), and the body reader's. */
int  qd_id_parse_str(const char *s, uint64_t *iid, qd_uuid *u);
int  qd_jread_id(api_jread *rd, uint64_t *iid, qd_uuid *u);

/** Read functions (api_jfield): a with_payload selector (bool, [keys], {"include":[..]} /
 *  {"exclude":[..]}) and a list of strings, each kept as the json_t * at out (the
 *  caller's to free, also when it was refused). */
int  qd_jread_selector(api_jread *rd, void *out);
int  qd_jread_keys(api_jread *rd, void *out);
/** quantization_config, as createCollection takes it ({"scalar": {"type": "int8", ...}}:
 *  sq8 codes; {"binary": {...}}: 1-bit RaBitQ codes; "product" is refused) and, with
 *  allow_disabled, as updateCollection does ("Disabled" too: no codes). A read function
 *  into the qd_quantization there; set tells whether a value was read. */
typedef struct {
    int allow_disabled;            /* the caller's: "Disabled" accepted */
    int set;                       /* a value was read into quant */
    int quant;                     /* qv_quant */
} qd_quantization;
int  qd_jread_quantization(api_jread *rd, void *out);
/** How points are shown: payloads for selector sel (NULL = default dflt) without the
 *  reserved UUID key, UUID ids, vectors when with_vector, scores when scores. */
api_point_style qd_point_style(const json_t *sel, int dflt, int with_vector, int scores);

/** The upsert body: {"points":[{"id","vector","payload"},...]} or the columns of
 *  {"batch":{"ids","vectors","payloads"}}, read with qd_upsert_fields into a
 *  qd_upsert_body whose dim is set (free pt and vecs after). A point as read: */
/** A sparse vector {"indices":[...],"values":[...]} as read (qd_jread_sparse): sorted by
 *  index (Qdrant takes any order), indices unique, values finite; arrays malloc'd. */
typedef struct {
    char name[QV_SPARSE_NAME_MAX + 1];
    uint32_t *idx;
    float *val;
    size_t ni, nv, cap_i, cap_v;
} qd_sparse;
void qd_sparse_release(qd_sparse *s);
/** Read function of a sparse vector object into a qd_sparse. */
int  qd_jread_sparse(api_jread *rd, void *sp);
/** A point's vector: an array (the dense vector) or named vectors {"name": [...] or
 *  {"indices","values"}} (at most one dense, then sparse ones). */
typedef struct {
    uint64_t id;
    qd_uuid u;
    float *vec;
    api_jtext payload;
    int replaced;
    int has_dense, named;          /* the dense vector was given; by name (dname) */
    char dname[QV_SPARSE_NAME_MAX + 1];
    qd_sparse sp[QV_MAX_SPARSE_VECTORS];
    size_t nsp;
} qd_point;
void qd_point_release(qd_point *p);
typedef struct {
    qd_point *pt;
    float *vecs;                   /* dim floats per point */
    size_t n, cap, col, count[3];  /* col: the batch column being read; count: of each */
    uint32_t dim;
    int forms;                     /* 1: "points" read, 2: "batch" read */
    int vectors_only;              /* set by qd_vectors_fields: no payloads */
} qd_upsert_body;

extern const api_jfield qd_upsert_fields[];
/** The updateVectors body {"points":[{"id","vector"}]}, into a qd_upsert_body likewise. */
extern const api_jfield qd_vectors_fields[];

/** Read function of a Qdrant filter into a api_filter. */
int  qd_jread_filter(api_jread *rd, void *filter);

/** Read function of with_vector: true, false, or a list of vector names (a non-empty one
 *  is true), into an int. */
int  qd_jread_with_vector(api_jread *rd, void *out);

/** The search and query bodies (search, query, their batches and groups). */
/* What a Qdrant search asks beyond the library search it runs. */
typedef struct {
    api_search s;                  /* k, ef, exact, vector, filter */
    uint64_t limit, offset, candidates, id;
    qd_uuid u;
    int query, has_vec, by_id, with_vec, mmr;
    int ignore_quant;              /* params.quantization.ignore */
    double threshold, diversity;   /* threshold NAN: none; mmr: 0 relevance only, 1 diversity only */
    json_t *wp;
    api_jtext group_by;            /* search/groups, query/groups */
    uint64_t group_size;
    int fusion;                    /* query {"fusion":"rrf"}: fuse the prefetches' hits */
    int in_prefetch;               /* one of a query's prefetches (they do not nest) */
    int has_using;                 /* "using" (or a named vector's "name") given */
    char using[QV_SPARSE_NAME_MAX + 1];
    int sparse;                    /* the query is the sparse vector sq */
    qd_sparse sq;
    struct qd_search_list *pre;    /* the query's prefetches (owned), NULL: none */
} qd_search;

/** The searches of a request, their vectors in one growing array; set dim and query
 *  (1: the query dialect), read with qd_search_fields into qd_search_at(l, 0) or with
 *  qd_searches_fields into l, free with qd_search_list_free. */
typedef struct qd_search_list { qd_search *q; float *vecs; size_t n, cap; uint32_t dim; int query, prefetch; } qd_search_list;
qd_search *qd_search_at(qd_search_list *l, size_t i);
void qd_search_list_free(qd_search_list *l);
extern const api_jfield qd_search_fields[], qd_searches_fields[];

/** Scores as Qdrant shows them: Euclid is the square root of quiver's squared L2, and
 *  score_threshold (NAN: none) its upper bound, else a lower bound. Keeps the hits from
 *  from..n that pass, at the front; returns how many. */
size_t qd_scores(qv_metric metric, double threshold, qv_hit *hits, size_t from, size_t n);

#endif

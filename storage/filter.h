/*
 * storage/filter.h -- private: the payload filter tree (filter.c), the payload index in
 * LMDB (payload_index.c) and the filtered-search planner (filter_plan.c).
 *
 * Payload index layout (LMDB table "pindex", one entry per (field, value, point), no
 * duplicates, values empty):
 *   cid (u32 BE) | flen (u8, 1..QV_PFIELD_MAX) | field | tag (u8) | value | iid (u64 BE)
 * tags and value encodings (order-preserving, so ranges are cursor scans):
 *   'k' keyword   u8 length (<= QV_PKEY_MAX) + bytes     (longer strings: 'x' only)
 *   'i' integer   int64 with the sign bit flipped, big-endian
 *   'f' real      double, big-endian, sign bit flipped for >= 0, all bits for < 0; -0 -> +0
 *   'b' bool      u8 0/1
 *   'n' null      (nothing)
 *   'e' empty []  (nothing)
 *   'x' present, not indexable by value: object, non-empty array, long string (nothing)
 *   't', 'L', 'S' the full-text postings of a field declared "text" (storage/text.h)
 * Each value is indexed by its own JSON type whatever the declared field type, so every
 * condition on an indexed field can be answered from the index with exactly the semantics
 * of qv_filter_eval (the declared type documents intent; it does not change behaviour).
 * An array gives 'x' plus one entry per scalar element.
 *   cid | 0x00 -> JSON {"field":"type",...}: the fields whose entries are complete (the
 * "built" record). A field declared in the config but not built (a database written before
 * this table existed, opened read-only) is evaluated against the stored payloads instead.
 */
#ifndef QV_STORAGE_FILTER_H
#define QV_STORAGE_FILTER_H

#include <jansson.h>

#include "core/topk.h"
#include "storage/storage.h"

#define QV_PFIELD_MAX 128u         /* bytes of an indexed field name */
#define QV_PKEY_MAX 255u           /* bytes of a keyword indexed by value */
#define QV_FILTER_KEY_MAX 255u     /* bytes of a key in a filter condition */

/* ---- filter tree (filter.c) ---------------------------------------------------------- */
/* FC_HAS_ID: the points whose ids are vals (type 'i', ascending, each once); no key. */
/* FC_TEXT: {"match":{"text":S}}: the field's string holds every token of vals[0]. */
enum { FC_MATCH = 1, FC_RANGE, FC_IS_NULL, FC_EXISTS, FC_IS_EMPTY, FC_NESTED, FC_HAS_ID, FC_TEXT };

typedef struct {
    char type;                     /* 's' string, 'i' integer, 'b' bool */
    int64_t i;                     /* integer, or bool 0/1 */
    char *s;                       /* string (qv_malloc'd, NUL-terminated) */
    size_t slen;
} qv_fvalue;

typedef struct {
    int kind;                      /* FC_* */
    int negate;                    /* "exists": false and the like */
    char *key;
    qv_fvalue *vals;               /* FC_MATCH: one ("match") or more ("any") */
    size_t nvals;
    int any;                       /* written as {"any":[...]} */
    double lo, hi;                 /* FC_RANGE: -INF / INF when open */
    unsigned flags;                /* QV_RANGE_GT_LO | QV_RANGE_LT_HI */
    qv_filter *sub;                /* FC_NESTED */
} qv_fcond;

struct qv_filter {
    qv_fcond *conds[3];            /* must, must_not, should (qv_occur - 1) */
    size_t n[3], cap[3];
};

/** Evaluate f against a parsed payload (an object, or NULL = no payload) of the point
 *  with external id id (UINT64_MAX: unknown, so has_id conditions fail). */
int  qv_filter_eval_json(const qv_filter *f, json_t *payload, uint64_t id);
/** Number of leaf conditions. */
size_t qv_filter_leaves(const qv_filter *f);
/** Payload paths (filter.c): "a.b" is key b under key a; a "quoted" segment keeps its
 *  dots. qv_payload_path_check: QV_EINVAL (why filled) for a malformed path.
 *  qv_payload_field: the value at path key in payload (NULL if absent or malformed).
 *  qv_payload_parent: the object holding the last segment (NULL if absent), which goes to
 *  *last / *lastlen. */
int  qv_payload_path_check(const char *key, char *why, size_t len);
json_t *qv_payload_field(json_t *payload, const char *key);
json_t *qv_payload_parent(json_t *payload, const char *key, const char **last, size_t *lastlen);

/* ---- payload index (payload_index.c) -------------------------------------------------- */
/** Parse c->payload_index and the built record into c->pfields (txn: read or write;
 *  NULL for a collection being created, whose fields are all built). */
int  qv_pindex_load_fields(qv_coll *c, MDB_txn *txn);
/** The field entry of c named key that is built, or NULL. */
const qv_pfield *qv_pindex_field(const qv_coll *c, const char *key);

/** A list of index keys of one point, without cid and iid ("flen|field|tag|value"). */
typedef struct {
    uint8_t *buf;
    size_t len, cap;
    size_t *off;                   /* start of each term; term i ends at off[i+1] or len */
    uint64_t *aux;                 /* per term: a text field's 't' entry: tf << 32 | doc
                                    * length; its 'L' entry: doc length (storage/text.h) */
    size_t n, ncap;
} qv_terms;
void qv_terms_release(qv_terms *t);
/** Append the terms of payload (may be NULL) for every built field of c, or only for
 *  field when it is not NULL. */
int  qv_pindex_terms(const qv_coll *c, json_t *payload, const char *field, qv_terms *t);
/** Put / delete the entries of terms t for point iid (in write txn txn). */
int  qv_pindex_put(qv_coll *c, MDB_txn *txn, const qv_terms *t, uint64_t iid);
int  qv_pindex_del(qv_coll *c, MDB_txn *txn, const qv_terms *t, uint64_t iid);
/** Delete the entries of the payload stored for iid (before it is replaced/deleted). */
int  qv_pindex_unindex_stored(qv_coll *c, MDB_txn *txn, uint64_t iid);
/** Write the built record of c (fields with built = 1) in txn. */
int  qv_pindex_put_built(qv_coll *c, MDB_txn *txn);
/** Build the declared but unbuilt fields (after open; caller holds wmutex). A failure is
 *  a warning: those fields stay evaluated against the payloads. */
void qv_pindex_build_pending(qv_coll *c);
void qv_pfields_free(qv_pfield *p, size_t n);

/* ---- planner (filter_plan.c) ---------------------------------------------------------- */
/** The internal ids < nbits (nbits <= c->cap) that are live and pass f, as a bitset
 *  (*out, qv_free) with *count bits set; fills conditions, unindexed, unindexed_keys,
 *  payloads_read and filter_us of st. Caller holds c->maplock shared; txn is a read txn. */
int  qv_filter_allowed(qv_coll *c, MDB_txn *txn, const qv_filter *f, uint64_t nbits, uint64_t **out,
                       uint64_t *count, qv_search_stats *st);

/** qv_filter_allowed through the collection's small cache of recent allowed sets, keyed
 *  by the filter's JSON form, c->last_seq and c->pfields_gen (so any write or index
 *  change misses). Same contract; st->cached = 1 on a hit. */
int  qv_filter_allowed_cached(qv_coll *c, MDB_txn *txn, const qv_filter *f, uint64_t nbits, uint64_t **out,
                              uint64_t *count, qv_search_stats *st);

/** The ids a read walks (scroll, facets), under c->maplock held for reading: those filter
 *  f allows (*set = *bits, the caller frees *bits), or every live id when f is NULL (*set
 *  = c->live). *nbits: the set's length in bits; *allowed: how many ids it holds. */
int  qv_filter_read_set(qv_coll *c, MDB_txn *txn, const qv_filter *f, uint64_t *nbits, const uint64_t **set,
                        uint64_t **bits, uint64_t *allowed);
void qv_fcache_free(qv_coll *c);

/* Key encodings shared by the index writer and the planner. */
void qv_pkey_f64(uint8_t out[8], double x);
double qv_pkey_f64_get(const uint8_t in[8]);
void qv_pkey_i64(uint8_t out[8], int64_t x);
int64_t qv_pkey_i64_get(const uint8_t in[8]);
/** Write cid | flen | field | tag into out (>= 6 + QV_PFIELD_MAX bytes); returns length. */
size_t qv_pkey_prefix(uint8_t *out, uint32_t cid, const char *field, size_t flen, uint8_t tag);

/* For the searches that score postings (text_search.c, sparse_search.c): whether internal
 * id iid is live and, with bits from qv_filter_allowed_cached (NULL = no filter), allowed. */
static inline int qv_filter_slot_ok(const qv_coll *c, const uint64_t *bits, uint64_t nbits, uint64_t iid)
{
    return iid < nbits && (c->live[iid / 64] >> (iid % 64) & 1) && (!bits || (bits[iid / 64] >> (iid % 64) & 1));
}

/* The best of tk as hits, best first, scores back from the negated distances; their count. */
static inline size_t qv_filter_topk_hits(const qv_coll *c, qv_topk *tk, qv_hit *hits)
{
    size_t n = qv_topk_sort(tk);
    for (size_t i = 0; i < n; i++) hits[i] = (qv_hit){c->ext_of[tk->items[i].id], -tk->items[i].dist};
    return n;
}

#endif

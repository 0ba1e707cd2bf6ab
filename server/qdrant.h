/*
 * server/qdrant.h -- quiverd's Qdrant-compatible REST API (a second listener, off by default,
 * enabled with --qdrant-listen).
 *
 * It serves a subset of Qdrant's REST paths and JSON shapes over the same database,
 * collection table, API keys and metrics as the native API, so that the official Qdrant
 * clients and frameworks built on them (LangChain) work against quiverd unchanged:
 *   qdrant.c         the route table (served by pipeline.c, like the native one), the
 *                    {"result","status","time"} envelope and Qdrant-style errors;
 *                    collection endpoints (list, get, exists, create, delete, payload index)
 *   qdrant_points.c  point endpoints (upsert, retrieve, delete, payload, search, query,
 *                    scroll, count)
 *   qdrant_util.c    point ids (unsigned integers and UUIDs), payload shaping and the
 *                    translation of Qdrant filters to quiver filters
 *
 * Ids. Integer ids 0..2^62-1 are quiver ids as they are. A UUID maps to the internal id
 * 2^62 | (62-bit hash of its 128 bits) -- below QV_MAX_ID -- and is stored, in canonical lowercase hyphenated
 * form, in the point's payload under the reserved key QD_UUID_KEY (so the mapping lives in
 * LMDB with the point, in the same transaction, and dies with it). Responses show the UUID
 * and hide the key. Two UUIDs with one hash (odds about n^2 / 2^63) are refused on upsert.
 */
#ifndef QV_SERVER_QDRANT_H
#define QV_SERVER_QDRANT_H

#include "server/server.h"

#define QD_UUID_KEY "__qdrant_uuid"
/* The Qdrant version reported by GET /: its clients warn when their minor version is more
 * than one away from it, so 1.19 serves clients 1.18 to 1.20 (the API shapes quiverd
 * serves are the same in all of them). */
#define QD_VERSION "1.19.0"
#define QD_UUID_BIT (1ull << 62)   /* ids at or above it are UUIDs (QV_MAX_ID is 2^63-1) */

/* ---- replies (qdrant.c) ---------------------------------------------------------- */
/** {"result": result, "status": "ok", "time": seconds}; steals result. */
void qd_ok(srv_req *r, json_t *result);
/** The same around a result written into out (which starts with {"result":). */
void qd_ok_written(srv_req *r, struct evbuffer *out);
/** The update result {"operation_id": seq, "status": "completed"} of collection c. */
json_t *qd_update_result(qv_coll *c);

/* ---- ids, payloads, filters (qdrant_util.c) --------------------------------------- */
typedef struct { char text[37]; } qd_uuid;     /* canonical lowercase hyphenated */

/** A Qdrant point id (JSON integer >= 0 or UUID string) -> internal id; *u gets the UUID
 *  ("" for an integer id). -1 with msg filled when invalid. */
int  qd_id_parse(const json_t *v, uint64_t *iid, qd_uuid *u, char *msg, size_t len);
/** The same for a URL segment (decimal digits or a UUID). */
int  qd_id_parse_str(const char *s, uint64_t *iid, qd_uuid *u);
/** The JSON id of internal id iid: an integer, or the UUID stored in payload (parsed). */
json_t *qd_id_value(uint64_t iid, const json_t *payload);

/** Parse a stored payload text (NULL ok) into an object (never NULL unless out of memory). */
json_t *qd_payload_parse(const char *text);
/** Check a with_payload selector (bool, [keys], {"include":[..]} / {"exclude":[..]}). */
int  qd_with_payload_check(const json_t *sel, char *msg, size_t len);
/** How points are shown: payloads for selector sel (NULL = default dflt) without the
 *  reserved UUID key, UUID ids, vectors when with_vector, scores when scores. */
srv_point_style qd_point_style(const json_t *sel, int dflt, int with_vector, int scores);

/** A translated Qdrant filter: the payload part for the library plus has_id sets. */
typedef struct {
    qv_filter *filter;             /* NULL: no payload conditions */
    uint64_t *must_ids;            /* sorted; has_id under top-level must (intersection) */
    size_t n_must;
    int has_must;                  /* must_ids applies (it may be empty: nothing passes) */
    uint64_t *not_ids;             /* sorted; has_id under top-level must_not (union) */
    size_t n_not;
} qd_filter;
/** Translate (json may be NULL or null: no filter). -1 with msg filled when unsupported
 *  or invalid; -2 out of memory. */
int  qd_filter_build(const json_t *json, qd_filter *f, char *msg, size_t len);
void qd_filter_release(qd_filter *f);
/** Accept callback over internal ids for the has_id part (arg: qd_filter *). */
int  qd_filter_accept(uint64_t id, void *arg);
/** 1 when f has a has_id part (then pass qd_filter_accept). */
int  qd_filter_has_ids(const qd_filter *f);

/* ---- points (qdrant_points.c): handlers of the route table in qdrant.c ------------- */
void qd_h_upsert(srv_req *r);
void qd_h_retrieve(srv_req *r);
void qd_h_get_point(srv_req *r);
void qd_h_delete(srv_req *r);
void qd_h_payload(srv_req *r);          /* variant 0 set (merge), 1 overwrite, 2 delete keys, 3 clear */
void qd_h_search(srv_req *r);           /* variant 1: batch */
void qd_h_query(srv_req *r);            /* variant 1: batch */
void qd_h_scroll(srv_req *r);
void qd_h_count(srv_req *r);

#endif

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
 *   qdrant_update.c  updateVectors, deleteVectors (refused: no named vectors), updateCollection
 *   qdrant_facet.c   facet counts
 *   api/qdrant.c     Qdrant's JSON, not HTTP: point ids (unsigned integers and UUIDs),
 *                    payload selectors and the translation of Qdrant filters (api/api.h)
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

/* The Qdrant version reported by GET /: its clients warn when their minor version is more
 * than one away from it, so 1.19 serves clients 1.18 to 1.20 (the API shapes quiverd
 * serves are the same in all of them). */
#define QD_VERSION "1.19.0"

/* ---- replies (qdrant.c) ---------------------------------------------------------- */
/** {"result": result, "status": "ok", "time": seconds}; steals result. */
void qd_ok(srv_req *r, json_t *result);
/** The same around a result written with srv_writer (which starts with {"result":). */
void qd_ok_written(srv_req *r);
/** The update result {"operation_id": seq, "status": "completed"} of collection c. */
json_t *qd_update_result(qv_coll *c);

/* ---- points (qdrant_points.c): handlers of the route table in qdrant.c ------------- */
void qd_h_upsert(srv_req *r);
void qd_h_retrieve(srv_req *r);
void qd_h_get_point(srv_req *r);
void qd_h_delete(srv_req *r);
void qd_h_payload(srv_req *r);          /* variant 0 set (merge), 1 overwrite, 2 delete keys, 3 clear */
void qd_h_search(srv_req *r);           /* variant 1: batch */
void qd_h_query(srv_req *r);            /* variant 1: batch */
void qd_h_groups(srv_req *r);           /* variant 0: search/groups, 1: query/groups */
void qd_h_scroll(srv_req *r);
void qd_h_count(srv_req *r);

/* ---- updates of vectors and collections (qdrant_update.c) -------------------------- */
void qd_h_update_vectors(srv_req *r);
void qd_h_delete_vectors(srv_req *r);
void qd_h_update_collection(srv_req *r);
/* ---- facet counts (qdrant_facet.c) ------------------------------------------------- */
void qd_h_facet(srv_req *r);
#endif

/*
 * server/qdrant_update.c -- Qdrant's updates of what exists: vectors of points
 * (updateVectors, deleteVectors) and collection parameters (updateCollection).
 *
 *   PUT   /collections/{name}/points/vectors {"points":[{"id","vector"}]}
 *         -> qv_update_vectors: new vectors re-indexed, payloads kept, one transaction;
 *         an unknown id is 404 with nothing changed.
 *   POST  /collections/{name}/points/vectors/delete
 *         -> 400: a quiverd collection has one unnamed vector per point, which Qdrant's
 *         deleteVectors (it removes named vectors) cannot apply to; delete the points.
 *   PATCH /collections/{name} {"hnsw_config":{"m","ef_construct"},"quantization_config":
 *         {"scalar":{"type":"int8"}} | {"binary":{}} | "Disabled","optimizers_config":{...},...}
 *         -> srv_update_collection: m, ef_construct and the codes stored and the index
 *         rebuilt with them (on every node, for a cluster collection). What has no
 *         counterpart in quiverd (optimizer thresholds, on_disk, collection params) is
 *         accepted and listed in the reply's "ignored" next to result true, so a client
 *         sees what did not apply.
 */
#include <stdlib.h>
#include <string.h>

#include "server/qdrant.h"

/* ---- updateVectors ------------------------------------------------------------------ */

void qd_h_update_vectors(srv_req *r)
{
    qd_upsert_body b = {.dim = r->coll->dim};
    uint64_t *ids = NULL;
    int rc;
    if (srv_read_body(r, "the vectors update", qd_vectors_fields, &b) != 0) goto cleanup;
    if (!b.n) {
        qd_ok(r, qd_update_result(r->coll->coll));
        goto cleanup;
    }
    if (!(ids = malloc(b.n * sizeof *ids))) {
        srv_oom(r);
        goto cleanup;
    }
    for (size_t i = 0; i < b.n; i++) ids[i] = b.pt[i].id;
    /* the body reader keeps the vectors in one array, point i's at i * dim */
    if ((rc = qv_update_vectors(r->coll->coll, b.n, ids, b.vecs)) != QV_OK) {
        srv_fail_qv(r, rc);
        goto cleanup;
    }
    r->points = (long)b.n;
    qd_ok(r, qd_update_result(r->coll->coll));
cleanup:
    free(ids);
    free(b.pt);
    free(b.vecs);
}

void qd_h_delete_vectors(srv_req *r)
{
    srv_bad(r, "collection `%s` has one unnamed vector per point: deleteVectors removes named vectors, "
               "which quiverd does not have; delete the points instead (POST /collections/%s/points/delete)",
            r->name, r->name);
}

/* ---- updateCollection ---------------------------------------------------------------- */

typedef struct {
    uint32_t m, ef;
    qd_quantization quant;         /* quantization_config */
    json_t *ignored;               /* the paths of what was accepted and not applied */
} patch_body;

/* Any value under an object this reads: noted as ignored. */
static int read_ignored(api_jread *rd, void *dst)
{
    patch_body *b = dst;
    api_jtext t;
    if (api_jread_text(rd, &t)) return -1;
    if (!b->ignored) b->ignored = json_array();
    if (b->ignored) json_array_append_new(b->ignored, json_string(rd->path));
    return 0;
}

static const api_jfield hnsw_fields[] = {
    {"m", API_J_U32, offsetof(patch_body, m), .lo = 2, .hi = 100},
    {"ef_construct", API_J_U32, offsetof(patch_body, ef), .lo = 4, .hi = QV_MAX_EF},
    {"full_scan_threshold", API_J_CALL, .read = read_ignored},
    {"max_indexing_threads", API_J_CALL, .read = read_ignored},
    {"on_disk", API_J_CALL, .read = read_ignored},
    {"payload_m", API_J_CALL, .read = read_ignored},
    {"inline_storage", API_J_CALL, .read = read_ignored},
    {0},
};

static const api_jfield patch_fields[] = {
    {"hnsw_config", API_J_OBJECT, .arg = hnsw_fields},
    {"optimizers_config", API_J_CALL, .read = read_ignored},
    {"params", API_J_CALL, .read = read_ignored},
    {"vectors", API_J_CALL, .read = read_ignored},
    {"quantization_config", API_J_CALL, offsetof(patch_body, quant), .read = qd_jread_quantization},
    {"sparse_vectors", API_J_CALL, .read = read_ignored},
    {"strict_mode_config", API_J_CALL, .read = read_ignored},
    {"metadata", API_J_CALL, .read = read_ignored},
    {0},
};

void qd_h_update_collection(srv_req *r)
{
    patch_body b = {.quant.allow_disabled = 1};
    if (srv_read_body(r, "the collection update", patch_fields, &b) != 0) goto cleanup;
    qv_collection_changes ch = {.m = b.m, .ef_construction = b.ef, .set_quant = b.quant.set,
                                .quant = (qv_quant)b.quant.quant};
    qv_collection_info info;
    int rc = qv_collection_get_info(r->coll->coll, &info);
    if (rc == QV_OK && info.config.index.kind == QV_INDEX_FLAT && (b.m || b.ef)) {
        /* created with m 0 (no graph, exact search): nothing to tune */
        srv_bad(r, "collection `%s` has no HNSW graph (created with m = 0): hnsw_config cannot change it", r->name);
        goto cleanup;
    }
    if (rc == QV_OK && info.config.index.kind != QV_INDEX_HNSW) ch.m = ch.ef_construction = 0;
    if (rc != QV_OK) {
        srv_fail_qv(r, rc);
        goto cleanup;
    }
    if (srv_update_collection(r, &ch) != 0) goto cleanup;
    if (b.ignored && json_array_size(b.ignored))
        srv_log(SRV_LOG_INFO, "collection '%s': update ignored %zu settings quiverd has no use for", r->name,
                json_array_size(b.ignored));
    json_t *out = json_pack("{s:b,s:s,s:f,s:o}", "result", 1, "status", "ok", "time",
                            (double)(api_now_us() - r->t0_us) / 1e6, "ignored",
                            b.ignored ? json_incref(b.ignored) : json_array());
    srv_reply_json(r, 200, out);
cleanup:
    json_decref(b.ignored);
}

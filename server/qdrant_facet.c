/*
 * server/qdrant_facet.c -- Qdrant's facet counts over qv_facet (storage/facet.c).
 *
 *   POST /collections/{name}/facet {"key","limit","filter","exact"}
 *        -> {"result":{"hits":[{"value": v, "count": n}, ...]}}, most frequent first.
 * The counts are always exact (read from the payload index), so "exact" changes
 * nothing. A key without a keyword, integer or bool index is refused as Qdrant refuses
 * it (400, "Index required but not found ...").
 */

#include "server/qdrant.h"

typedef struct {
    api_jtext key;
    uint64_t limit;
    int exact;
    api_filter filter;
} facet_body;
#define F(field) offsetof(facet_body, field)

static const api_jfield facet_fields[] = {
    {"key", API_J_TEXT, F(key), .required = 1},
    {"limit", API_J_U64, .off = F(limit), .lo = 1, .hi = 100000},
    {"exact", API_J_BOOL, .off = F(exact)},
    {"filter", API_J_CALL, F(filter), .read = qd_jread_filter},
    {"shard_key", API_J_REFUSE, .arg = "shard keys are"},
    {0},
};

void qd_h_facet(srv_req *r)
{
    facet_body b = {.limit = 10};
    qv_facet_hit *h = NULL;
    size_t n = 0;
    char key[256];
    int rc;
    if (srv_read_body(r, "the facet request", facet_fields, &b) != 0) goto cleanup;
    if (api_jstring(b.key, key, sizeof key) != 0 || !key[0]) {
        srv_bad(r, "'key' must be a payload key (a non-empty string of at most %zu bytes)", sizeof key - 1);
        goto cleanup;
    }
    if ((rc = qv_facet(r->coll->coll, key, b.filter.f, (size_t)b.limit, &h, &n)) != QV_OK) {
        srv_fail_qv(r, rc);
        goto cleanup;
    }
    api_wbuf *w = srv_writer(r);
    API_WLIT(w, "{\"result\":{\"hits\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) API_WLIT(w, ",");
        API_WLIT(w, "{\"value\":");
        api_wscalar(w, h[i].type, h[i].i, h[i].s);
        API_WLIT(w, ",\"count\":");
        api_wu64(w, h[i].count);
        API_WLIT(w, "}");
    }
    API_WLIT(w, "]}");
    qd_ok_written(r);
cleanup:
    qv_facet_free(h, n);
    api_filter_release(&b.filter);
}

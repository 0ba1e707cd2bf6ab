/*
 * storage/groups.c -- qv_search_groups: the best hits of a search grouped by the value
 * of a payload field (Qdrant's search/groups and query/groups).
 *
 * On top of qv_search_ex: search for k hits, read their payloads, put each hit in the
 * group of each value its field holds (a string or an integer, or an array of them: a hit
 * joins every group of a value it holds, as in Qdrant), keep at most group_size hits per
 * group and the first limit groups in order of their best hit. When that leaves a group
 * short or fewer than limit groups while the search returned all k it was asked for,
 * search again with k four times larger, up to QV_MAX_K: the groups are then exactly
 * those of the best QV_MAX_K hits (a field shared by few of the nearest points may not
 * fill limit groups; Qdrant bounds its iterations the same way). Hits without the field,
 * or with a value that is neither string nor integer, belong to no group.
 */
#include "storage/filter.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

void qv_groups_free(qv_group *g, size_t n)
{
    if (!g) return;
    for (size_t i = 0; i < n; i++) {
        qv_free(g[i].s);
        qv_free(g[i].hits);
    }
    qv_free(g);
}

typedef struct {
    qv_group *g;
    size_t n, cap;
    uint32_t group_size;
} group_list;

static qv_group *find_group(group_list *l, const json_t *v)
{
    for (size_t i = 0; i < l->n; i++) {
        qv_group *g = &l->g[i];
        if (json_is_string(v) ? g->type == 's' && strcmp(g->s, json_string_value(v)) == 0
                              : g->type == 'i' && g->i == json_integer_value(v))
            return g;
    }
    return NULL;
}

static int add_hit(group_list *l, const json_t *v, qv_hit h, uint32_t limit)
{
    if (!json_is_string(v) && !json_is_integer(v)) return QV_OK;
    qv_group *g = find_group(l, v);
    if (!g) {
        if (l->n == limit) return QV_OK;             /* groups come in best-hit order */
        if (l->n == l->cap) {
            size_t ncap = l->cap ? l->cap * 2 : 8;
            qv_group *t = qv_reallocarray(l->g, ncap, sizeof *t);
            if (!t) return QV_ENOMEM;
            l->g = t;
            l->cap = ncap;
        }
        g = &l->g[l->n];
        memset(g, 0, sizeof *g);
        if (!(g->hits = qv_reallocarray(NULL, l->group_size, sizeof *g->hits))) return QV_ENOMEM;
        l->n++;
        if (json_is_string(v)) {
            g->type = 's';
            if (!(g->s = qv_malloc(json_string_length(v) + 1))) return QV_ENOMEM;
            memcpy(g->s, json_string_value(v), json_string_length(v) + 1);
        } else {
            g->type = 'i';
            g->i = json_integer_value(v);
        }
    }
    for (size_t i = 0; i < g->n; i++)
        if (g->hits[i].id == h.id) return QV_OK;   /* an array naming one value twice */
    if (g->n < l->group_size) g->hits[g->n++] = h;
    return QV_OK;
}

/* Group the n hits (best first) into l; *full when limit groups of group_size each. */
static int group_hits(qv_coll *c, const char *key, const qv_hit *hits, size_t n, uint32_t limit, group_list *l,
                      int *full)
{
    uint64_t *ids = NULL;
    char **payloads = NULL;
    int rc = QV_OK;
    *full = 0;
    if (n == 0) return QV_OK;
    if (!(ids = qv_reallocarray(NULL, n, sizeof *ids)) || !(payloads = qv_calloc(n, sizeof *payloads))) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) ids[i] = hits[i].id;
    if ((rc = qv_get_payloads(c, n, ids, payloads)) != QV_OK) goto cleanup;
    for (size_t i = 0; i < n && rc == QV_OK; i++) {
        json_t *p = payloads[i] ? json_loads(payloads[i], 0, NULL) : NULL, *v = p ? qv_payload_field(p, key) : NULL;
        if (json_is_array(v))
            for (size_t j = 0; j < json_array_size(v) && rc == QV_OK; j++) rc = add_hit(l, json_array_get(v, j), hits[i], limit);
        else if (v)
            rc = add_hit(l, v, hits[i], limit);
        json_decref(p);
    }
    if (rc == QV_OK && l->n == limit) {
        *full = 1;
        for (size_t i = 0; i < l->n; i++)
            if (l->g[i].n < l->group_size) *full = 0;
    }
cleanup:
    if (payloads)
        for (size_t i = 0; i < n; i++) qv_free(payloads[i]);
    qv_free(payloads);
    qv_free(ids);
    return rc;
}

static void list_clear(group_list *l)
{
    qv_groups_free(l->g, l->n);
    l->g = NULL;
    l->n = l->cap = 0;
}

int qv_search_groups(qv_coll *c, const float *query, const qv_search_params *sp, const char *group_by,
                     uint32_t group_size, uint32_t limit, qv_group **out, size_t *n)
{
    qv_search_params p;
    qv_hit *hits = NULL;
    group_list l = {0};
    char why[128];
    int rc = QV_OK;

    if (out) *out = NULL;
    if (n) *n = 0;
    if (!c || !query || !sp || !group_by || !out || !n)
        return qv_fail(QV_EINVAL, "collection, query, params, group_by, out or n is NULL");
    if (qv_payload_path_check(group_by, why, sizeof why) != QV_OK) return qv_fail(QV_EINVAL, "group_by: %s", why);
    if (group_size < 1 || group_size > QV_MAX_K) return qv_fail(QV_EINVAL, "group_size must be 1..%u, got %u", QV_MAX_K, group_size);
    if (limit < 1 || limit > QV_MAX_K) return qv_fail(QV_EINVAL, "limit must be 1..%u, got %u", QV_MAX_K, limit);
    l.group_size = group_size;
    uint64_t want = (uint64_t)group_size * limit * 2;
    uint32_t k = want < 16 ? 16 : want > QV_MAX_K ? QV_MAX_K : (uint32_t)want;
    if (!(hits = qv_reallocarray(NULL, QV_MAX_K, sizeof *hits))) return QV_ENOMEM;
    for (;;) {
        size_t nh = 0;
        int full = 0;
        p = *sp;
        p.k = k;
        if (p.ef && p.ef < k) p.ef = k;
        if ((rc = qv_search_ex(c, 1, query, &p, hits, &nh, NULL)) != QV_OK) goto cleanup;
        list_clear(&l);
        if ((rc = group_hits(c, group_by, hits, nh, limit, &l, &full)) != QV_OK) goto cleanup;
        if (full || nh < k || k == QV_MAX_K) break;      /* done, or every point seen */
        k = k > QV_MAX_K / 4 ? QV_MAX_K : k * 4;
    }
    *out = l.g;
    *n = l.n;
    l.g = NULL;
    l.n = 0;
cleanup:
    list_clear(&l);
    qv_free(hits);
    return rc;
}

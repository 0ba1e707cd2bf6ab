/*
 * api/search.c -- searches: the native search body, the library calls, and the one
 * writer of hits and points for both APIs.
 *
 * Reading: the body reader (json.c) with the table of a search's fields, the query
 * vector written straight into the float array; a filter's text is handed to
 * qv_filter_parse, which names its bad part.
 *
 * Running: searches with equal k, ef, nprobe, exactness and filter text go to the
 * library as one batch call, so a filter's allowed set is built once for all of them.
 *
 * Writing: points go out straight into the reply buffer, stored payloads as they are
 * stored (api_wstored).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"

void api_filter_release(api_filter *f)
{
    qv_filter_free(f->f);
    free(f->text);
    f->f = NULL;
    f->text = NULL;
}

void api_search_release(api_search *s)
{
    api_filter_release(&s->filter);
}

void api_searches_free(api_search *s, size_t n)
{
    if (!s) return;
    for (size_t i = 0; i < n; i++) api_search_release(&s[i]);
    free(s[0].vec);
    free(s);
}

/* ---- reading ------------------------------------------------------------------------ */

int api_filter_set(api_jread *rd, api_filter *f, char *text)
{
    char buf[sizeof rd->path], prefix[sizeof rd->path + 1] = "";
    api_filter_release(f);
    if (!(f->text = text)) return api_jbad(rd, 0, "out_of_memory", "out of memory");
    int rc = qv_filter_parse(text, &f->f);
    if (api_jowner(rd, buf, sizeof buf)) snprintf(prefix, sizeof prefix, "%s.", buf);
    if (rc != QV_OK)
        return api_jbad(rd, 0, rc == QV_ENOMEM ? "out_of_memory" : "bad_filter", "%s%s", prefix,
                        rc == QV_ENOMEM ? "out of memory" : qv_last_error());
    return 0;
}

int api_jread_filter(api_jread *rd, void *filter)
{
    api_jtext t;
    if (!api_jpeek(rd, "{")) return api_jbad(rd, 1, "bad_filter", "'%s' must be a JSON object like {\"must\":[...]}", rd->path);
    return api_jread_text(rd, &t) ? -1 : api_filter_set(rd, filter, strndup(t.p, t.len));
}

#define S(field) offsetof(api_search, field)
static const api_jfield search_fields[] = {
    {"vector", API_J_VECTOR, S(vec), .required = 1},
    {"k", API_J_U32, .off = S(k), .lo = 1, .hi = QV_MAX_K},
    {"ef", API_J_U32, .off = S(ef), .lo = 0, .hi = API_MAX_EF},
    {"nprobe", API_J_U32, .off = S(nprobe), .lo = 0, .hi = API_MAX_NPROBE},
    {"filter", API_J_CALL, S(filter), .read = api_jread_filter},
    {"with_payload", API_J_BOOL, .off = S(with_payload)},
    {"exact", API_J_BOOL, .off = S(exact)},
    {"rescore", API_J_BOOL, S(rescore), .lo = QV_RESCORE_OFF, .hi = QV_RESCORE_ON},
    {"oversampling", API_J_NUM, S(oversampling), .lo = 1, .hi = (uint64_t)QV_MAX_OVERSAMPLING},
    {"explore", API_J_NUM, S(explore), .lo = 0, .hi = (uint64_t)QV_MAX_EXPLORE},
    {0},
};

/* The searches read so far; their vectors in one growing array. */
typedef struct { api_search *s; float *vecs; size_t n, cap; uint32_t dim; } search_list;

/* Search i of the list, with room made for it; NULL when out of memory. */
static api_search *search_at(search_list *l, size_t i)
{
    api_search *s = api_grow(&l->s, sizeof *l->s, &l->n, &l->cap, i, &l->vecs, l->dim);
    if (s) *s = (api_search){.vec = l->vecs + i * l->dim, .k = API_DEFAULT_K};
    return s;
}

static int read_search(api_jread *rd, size_t i, void *l)
{
    api_search *s = search_at(l, i);
    return s ? api_jread_object(rd, search_fields, s) : api_jbad(rd, 1, "out_of_memory", "out of memory");
}

static int read_searches(api_jread *rd, void *arg)
{
    search_list *l = arg;
    int rc = api_jread_array(rd, read_search, l);
    if (rc == 0 && (l->n == 0 || l->n > API_MAX_BATCH))
        return api_jbad(rd, 0, "invalid_argument", "'searches' must be an array of 1..%u search objects", API_MAX_BATCH);
    return rc;
}

static const api_jfield batch_fields[] = {{"searches", API_J_CALL, .read = read_searches, .required = 1}, {0}};

int api_parse_searches(const char *body, size_t len, uint32_t dim, int batch, api_search **out, size_t *nout,
                       api_jerr *e)
{
    api_jread rd = {.strict = 1, .dim = dim, .name = batch ? "the body" : "the search"};
    search_list l = {.dim = dim};
    int rc = -1;
    *out = NULL;
    *nout = 0;
    if (!batch && !search_at(&l, 0)) api_jfail(e, "out_of_memory", "out of memory");
    else rc = api_jparse(&rd, body, len, batch ? batch_fields : search_fields, batch ? (void *)&l : (void *)l.s, e);
    for (size_t i = 0; i < l.n; i++) {
        l.s[i].vec = l.vecs + i * dim;
        if (rc != 0) api_search_release(&l.s[i]);
    }
    if (rc == 0) {
        *out = l.s;
        *nout = l.n;
    } else {
        free(l.s);
        free(l.vecs);
    }
    return rc;
}

/* ---- running ------------------------------------------------------------------------- */

uint64_t api_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int same_search(const api_search *a, const api_search *b)
{
    if (a->k != b->k || a->ef != b->ef || a->nprobe != b->nprobe || a->exact != b->exact ||
        a->rescore != b->rescore || a->oversampling != b->oversampling || a->explore != b->explore ||
        a->accept != b->accept || a->accept_arg != b->accept_arg)
        return 0;
    if (!a->filter.text || !b->filter.text) return a->filter.text == b->filter.text;
    return strcmp(a->filter.text, b->filter.text) == 0;
}

void api_search_params(const api_search *s, qv_search_params *sp)
{
    qv_search_params_init(sp, s->k);
    sp->ef = s->ef;
    sp->nprobe = s->nprobe;
    sp->filter = s->filter.f;
    sp->accept = s->accept;
    sp->accept_arg = s->accept_arg;
    sp->exact = (uint32_t)s->exact;
    sp->rescore = (qv_rescore)s->rescore;
    sp->oversampling = (float)s->oversampling;
    sp->explore = (float)s->explore;
}

int api_run_searches(qv_coll *c, uint32_t dim, const api_search *s, size_t n, api_results *res)
{
    memset(res, 0, sizeof *res);
    /* A Qdrant query without a vector (a scroll) or an empty batch has nothing to search:
     * the allocation below would be 0 bytes and s[0] out of bounds (found by make fuzz). */
    if (n == 0) return QV_OK;
    int one_call = 1;
    for (size_t i = 0; i < n; i++) {
        res->kmax = s[i].k > res->kmax ? s[i].k : res->kmax;
        /* one call needs equal searches and their vectors in one row-major array */
        if (!same_search(&s[i], &s[0]) || s[i].vec != s[0].vec + i * dim) one_call = 0;
    }
    /* one allocation: the stats, the counts, then the rows of hits */
    char *mem = calloc(1, n * (sizeof *res->st + sizeof *res->nh + res->kmax * sizeof *res->hits));
    if (!mem) return QV_ENOMEM;
    res->st = (qv_search_stats *)mem;
    res->nh = (size_t *)(res->st + n);
    res->hits = (qv_hit *)(res->nh + n);
    qv_search_params sp;
    int rc = QV_OK;
    uint64_t t0 = api_now_us();
    if (one_call) {
        api_search_params(&s[0], &sp);
        rc = qv_search_ex(c, n, s[0].vec, &sp, res->hits, res->nh, &res->st[0]);
        for (size_t i = 1; i < n; i++) res->st[i] = res->st[0];
    } else {
        for (size_t i = 0; i < n && rc == QV_OK; i++) {
            api_search_params(&s[i], &sp);
            rc = qv_search_ex(c, 1, s[i].vec, &sp, res->hits + i * res->kmax, &res->nh[i], &res->st[i]);
        }
    }
    res->took_us = api_now_us() - t0;
    return rc;
}

void api_results_free(api_results *res)
{
    free(res->st);
    memset(res, 0, sizeof *res);
}

/* ---- writing --------------------------------------------------------------------------- */

void api_wtook(api_wbuf *w, const qv_search_stats *st)
{
    const char *plan = st->plan ? st->plan : "none";
    API_WLIT(w, "{\"plan\":");
    api_wstring(w, plan, strlen(plan));
    API_WLIT(w, ",\"live\":");
    api_wu64(w, st->live);
    API_WLIT(w, ",\"allowed\":");
    api_wu64(w, st->allowed);
    API_WLIT(w, ",\"conditions\":");
    api_wu64(w, st->conditions);
    API_WLIT(w, ",\"unindexed\":[");
    for (const char *p = st->unindexed_keys; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (p != st->unindexed_keys) API_WLIT(w, ",");
        api_wstring(w, p, len);
        p += len + (comma ? 1 : 0);
    }
    API_WLIT(w, "],\"payloads_read\":");
    api_wu64(w, st->payloads_read);
    API_WLIT(w, ",\"filter_us\":");
    api_wu64(w, st->filter_us);
    if (st->cached) API_WLIT(w, ",\"cached\":true}");
    else API_WLIT(w, ",\"cached\":false}");
}

/* Whether c's vectors are named or sparse ones (Qdrant shows them as a map by name). */
static int named_vectors(qv_coll *c)
{
    qv_collection_info info;
    return qv_collection_get_info(c, &info) == QV_OK && (info.config.vector_name || info.config.n_sparse);
}

/* Qdrant's "vector" of point id of a collection with named or sparse vectors:
 * {"<dense name>": [...], "<sparse name>": {"indices": [...], "values": [...]}, ...},
 * the dense vector under "" when unnamed, sparse ones the point lacks left out. Nothing
 * written (QV_OK) for other collections: the caller writes the plain vector. */
static int wnamed(api_wbuf *w, qv_coll *c, uint64_t id, const float *vec, uint32_t dim)
{
    qv_collection_info info;
    int rc = qv_collection_get_info(c, &info);
    if (rc != QV_OK || !(info.config.vector_name || info.config.n_sparse)) return rc;
    const char *dense = info.config.vector_name ? info.config.vector_name : "";
    int sep = !info.config.no_dense;               /* no stand-in dense vector shown */
    API_WLIT(w, ",\"vector\":{");
    if (sep) {
        api_wstring(w, dense, strlen(dense));
        API_WLIT(w, ":");
        api_wvector(w, vec, dim);
    }
    for (size_t j = 0; j < info.config.n_sparse && rc == QV_OK; j++) {
        uint32_t *idx = NULL, m = 0;
        float *val = NULL;
        if ((rc = qv_get_sparse(c, id, j, &idx, &val, &m)) == QV_ENOTFOUND) rc = QV_OK;   /* deleted since */
        if (rc == QV_OK && m) {
            if (sep) API_WLIT(w, ",");
            sep = 1;
            api_wstring(w, info.config.sparse[j].name, strlen(info.config.sparse[j].name));
            API_WLIT(w, ":{\"indices\":[");
            for (uint32_t i = 0; i < m; i++) {
                if (i) API_WLIT(w, ",");
                api_wu64(w, idx[i]);
            }
            API_WLIT(w, "],\"values\":");
            api_wvector(w, val, m);
            API_WLIT(w, "}");
        }
        qv_free(idx);
        qv_free(val);
    }
    API_WLIT(w, "}");
    return rc;
}

int api_wpoints(api_wbuf *w, qv_coll *c, uint32_t dim, const qv_hit *hits, size_t n, const api_point_style *st)
{
    char **texts = NULL;
    float *vec = NULL;
    int rc = 0;
    /* Hits of the native API have their payloads read in one transaction. Other points
     * are read one by one, left out when they do not exist (Qdrant's retrieve takes any
     * id; a hit may have been deleted since the search). */
    int each = st->qdrant || st->single || st->with_vector;
    if (st->payload && !each) {
        uint64_t *ids = malloc((n ? n : 1) * sizeof *ids);
        if (ids && (texts = calloc(n ? n : 1, sizeof *texts))) {
            for (size_t i = 0; i < n; i++) ids[i] = hits[i].id;
            /* a failed read shows payload null: the hits themselves are still right */
            if (n && qv_get_payloads(c, n, ids, texts) != QV_OK) memset(texts, 0, n * sizeof *texts);
        }
        free(ids);
        if (!texts) return QV_ENOMEM;
    }
    if (st->with_vector && !(vec = malloc((dim ? dim : 1) * sizeof *vec))) {
        free(texts);
        return QV_ENOMEM;
    }
    if (!st->single) API_WLIT(w, "[");
    int first = 1;
    for (size_t i = 0; i < n && !w->err; i++) {
        uint64_t id = hits[i].id;
        int uuid_id = st->id_key && (id & st->id_key_bit);
        char *text = texts ? texts[i] : NULL, *own = NULL, uuid[64];
        if (each && (!st->scores || st->payload || st->with_vector || uuid_id)) {
            int grc = qv_get(c, id, vec, &own);
            if (grc == QV_ENOTFOUND) continue;            /* deleted, or never there */
            if (grc != QV_OK) { rc = grc; break; }
            text = own;
        }
        if (!first) API_WLIT(w, ",");
        first = 0;
        API_WLIT(w, "{\"id\":");
        if (uuid_id && api_stored_string(text, st->id_key, uuid, sizeof uuid) == 0) api_wstring(w, uuid, strlen(uuid));
        else api_wu64(w, id);
        if (st->qdrant) API_WLIT(w, ",\"version\":0");
        if (st->scores) {
            API_WLIT(w, ",\"score\":");
            api_wfloat(w, hits[i].score);
        }
        if (st->payload) {
            API_WLIT(w, ",\"payload\":");
            /* Qdrant shows a point without payload with an empty one */
            if (!text && st->qdrant) API_WLIT(w, "{}");
            else if (!text || api_wstored(w, text, st->keep, st->keep_arg) != 0) API_WLIT(w, "null");
        } else if (st->qdrant) {
            API_WLIT(w, ",\"payload\":null");
        }
        if (st->with_vector && st->qdrant && (rc = wnamed(w, c, id, vec, dim)) != QV_OK) {
            qv_free(own);
            break;
        } else if (st->with_vector && !(st->qdrant && named_vectors(c))) {
            API_WLIT(w, ",\"vector\":");
            api_wvector(w, vec, dim);
        } else if (st->qdrant && !st->with_vector) {
            API_WLIT(w, ",\"vector\":null");
        }
        API_WLIT(w, "}");
        qv_free(own);
    }
    if (!st->single) API_WLIT(w, "]");
    else if (first && !rc) rc = QV_ENOTFOUND;
    for (size_t i = 0; texts && i < n; i++) qv_free(texts[i]);
    free(texts);
    free(vec);
    return rc;
}

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
 * stored (srv_wstored).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"

void srv_filter_release(srv_filter *f)
{
    qv_filter_free(f->f);
    free(f->text);
    f->f = NULL;
    f->text = NULL;
}

void srv_search_release(srv_search *s)
{
    srv_filter_release(&s->filter);
}

void srv_searches_free(srv_search *s, size_t n)
{
    if (!s) return;
    for (size_t i = 0; i < n; i++) srv_search_release(&s[i]);
    free(s[0].vec);
    free(s);
}

/* ---- reading ------------------------------------------------------------------------ */

int srv_filter_set(srv_jread *rd, srv_filter *f, char *text)
{
    char buf[sizeof rd->path], prefix[sizeof rd->path + 1] = "";
    srv_filter_release(f);
    if (!(f->text = text)) return srv_jbad(rd, 0, "out_of_memory", "out of memory");
    int rc = qv_filter_parse(text, &f->f);
    if (srv_jowner(rd, buf, sizeof buf)) snprintf(prefix, sizeof prefix, "%s.", buf);
    if (rc != QV_OK)
        return srv_jbad(rd, 0, rc == QV_ENOMEM ? "out_of_memory" : "bad_filter", "%s%s", prefix,
                        rc == QV_ENOMEM ? "out of memory" : qv_last_error());
    return 0;
}

int srv_jread_filter(srv_jread *rd, void *filter)
{
    srv_jtext t;
    if (!srv_jpeek(rd, "{")) return srv_jbad(rd, 1, "bad_filter", "'%s' must be a JSON object like {\"must\":[...]}", rd->path);
    return srv_jread_text(rd, &t) ? -1 : srv_filter_set(rd, filter, strndup(t.p, t.len));
}

#define S(field) offsetof(srv_search, field)
static const srv_jfield search_fields[] = {
    {"vector", SRV_J_VECTOR, S(vec), .required = 1},
    {"k", SRV_J_U32, .off = S(k), .lo = 1, .hi = QV_MAX_K},
    {"ef", SRV_J_U32, .off = S(ef), .lo = 0, .hi = SRV_MAX_EF},
    {"nprobe", SRV_J_U32, .off = S(nprobe), .lo = 0, .hi = SRV_MAX_NPROBE},
    {"filter", SRV_J_CALL, S(filter), .read = srv_jread_filter},
    {"with_payload", SRV_J_BOOL, .off = S(with_payload)},
    {"exact", SRV_J_BOOL, .off = S(exact)},
    {"rescore", SRV_J_BOOL, S(rescore), .lo = QV_RESCORE_OFF, .hi = QV_RESCORE_ON},
    {"oversampling", SRV_J_NUM, S(oversampling), .lo = 1, .hi = (uint64_t)QV_MAX_OVERSAMPLING},
    {NULL},
};

/* The searches read so far; their vectors in one growing array. */
typedef struct { srv_search *s; float *vecs; size_t n, cap; uint32_t dim; } search_list;

/* Search i of the list, with room made for it; NULL when out of memory. */
static srv_search *search_at(search_list *l, size_t i)
{
    srv_search *s = srv_grow(&l->s, sizeof *l->s, &l->n, &l->cap, i, &l->vecs, l->dim);
    if (s) *s = (srv_search){.vec = l->vecs + i * l->dim, .k = SRV_DEFAULT_K};
    return s;
}

static int read_search(srv_jread *rd, size_t i, void *l)
{
    srv_search *s = search_at(l, i);
    return s ? srv_jread_object(rd, search_fields, s) : srv_jbad(rd, 1, "out_of_memory", "out of memory");
}

static int read_searches(srv_jread *rd, void *arg)
{
    search_list *l = arg;
    int rc = srv_jread_array(rd, read_search, l);
    if (rc == 0 && (l->n == 0 || l->n > SRV_MAX_BATCH))
        return srv_jbad(rd, 0, "invalid_argument", "'searches' must be an array of 1..%u search objects", SRV_MAX_BATCH);
    return rc;
}

static const srv_jfield batch_fields[] = {{"searches", SRV_J_CALL, .read = read_searches, .required = 1}, {NULL}};

int srv_parse_searches(const char *body, size_t len, uint32_t dim, int batch, srv_search **out, size_t *nout,
                       srv_jerr *e)
{
    srv_jread rd = {.strict = 1, .dim = dim, .name = batch ? "the body" : "the search"};
    search_list l = {.dim = dim};
    int rc = -1;
    *out = NULL;
    *nout = 0;
    if (!batch && !search_at(&l, 0)) srv_jfail(e, "out_of_memory", "out of memory");
    else rc = srv_jparse(&rd, body, len, batch ? batch_fields : search_fields, batch ? (void *)&l : (void *)l.s, e);
    for (size_t i = 0; i < l.n; i++) {
        l.s[i].vec = l.vecs + i * dim;
        if (rc != 0) srv_search_release(&l.s[i]);
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

uint64_t srv_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int same_search(const srv_search *a, const srv_search *b)
{
    if (a->k != b->k || a->ef != b->ef || a->nprobe != b->nprobe || a->exact != b->exact ||
        a->rescore != b->rescore || a->oversampling != b->oversampling || a->accept != b->accept || a->accept_arg != b->accept_arg)
        return 0;
    if (!a->filter.text || !b->filter.text) return a->filter.text == b->filter.text;
    return strcmp(a->filter.text, b->filter.text) == 0;
}

static void params_of(const srv_search *s, qv_search_params *sp)
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
}

int srv_run_searches(qv_coll *c, uint32_t dim, const srv_search *s, size_t n, srv_results *res)
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
    uint64_t t0 = srv_now_us();
    if (one_call) {
        params_of(&s[0], &sp);
        rc = qv_search_ex(c, n, s[0].vec, &sp, res->hits, res->nh, &res->st[0]);
        for (size_t i = 1; i < n; i++) res->st[i] = res->st[0];
    } else {
        for (size_t i = 0; i < n && rc == QV_OK; i++) {
            params_of(&s[i], &sp);
            rc = qv_search_ex(c, 1, s[i].vec, &sp, res->hits + i * res->kmax, &res->nh[i], &res->st[i]);
        }
    }
    res->took_us = srv_now_us() - t0;
    return rc;
}

void srv_results_free(srv_results *res)
{
    free(res->st);
    memset(res, 0, sizeof *res);
}

/* ---- writing --------------------------------------------------------------------------- */

void srv_wtook(srv_wbuf *w, const qv_search_stats *st)
{
    const char *plan = st->plan ? st->plan : "none";
    SRV_WLIT(w, "{\"plan\":");
    srv_wstring(w, plan, strlen(plan));
    SRV_WLIT(w, ",\"live\":");
    srv_wu64(w, st->live);
    SRV_WLIT(w, ",\"allowed\":");
    srv_wu64(w, st->allowed);
    SRV_WLIT(w, ",\"conditions\":");
    srv_wu64(w, st->conditions);
    SRV_WLIT(w, ",\"unindexed\":[");
    for (const char *p = st->unindexed_keys; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (p != st->unindexed_keys) SRV_WLIT(w, ",");
        srv_wstring(w, p, len);
        p += len + (comma ? 1 : 0);
    }
    SRV_WLIT(w, "],\"payloads_read\":");
    srv_wu64(w, st->payloads_read);
    SRV_WLIT(w, ",\"filter_us\":");
    srv_wu64(w, st->filter_us);
    if (st->cached) SRV_WLIT(w, ",\"cached\":true}");
    else SRV_WLIT(w, ",\"cached\":false}");
}

int srv_wpoints(srv_wbuf *w, qv_coll *c, uint32_t dim, const qv_hit *hits, size_t n, const srv_point_style *st)
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
    if (!st->single) SRV_WLIT(w, "[");
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
        if (!first) SRV_WLIT(w, ",");
        first = 0;
        SRV_WLIT(w, "{\"id\":");
        if (uuid_id && srv_stored_string(text, st->id_key, uuid, sizeof uuid) == 0) srv_wstring(w, uuid, strlen(uuid));
        else srv_wu64(w, id);
        if (st->qdrant) SRV_WLIT(w, ",\"version\":0");
        if (st->scores) {
            SRV_WLIT(w, ",\"score\":");
            srv_wfloat(w, hits[i].score);
        }
        if (st->payload) {
            SRV_WLIT(w, ",\"payload\":");
            /* Qdrant shows a point without payload with an empty one */
            if (!text && st->qdrant) SRV_WLIT(w, "{}");
            else if (!text || srv_wstored(w, text, st->keep, st->keep_arg) != 0) SRV_WLIT(w, "null");
        } else if (st->qdrant) {
            SRV_WLIT(w, ",\"payload\":null");
        }
        if (st->with_vector) {
            SRV_WLIT(w, ",\"vector\":");
            srv_wvector(w, vec, dim);
        } else if (st->qdrant) {
            SRV_WLIT(w, ",\"vector\":null");
        }
        SRV_WLIT(w, "}");
        qv_free(own);
    }
    if (!st->single) SRV_WLIT(w, "]");
    else if (first && !rc) rc = QV_ENOTFOUND;
    for (size_t i = 0; texts && i < n; i++) qv_free(texts[i]);
    free(texts);
    free(vec);
    return rc;
}

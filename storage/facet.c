/*
 * storage/facet.c -- qv_facet: how many points hold each value of a payload field, under
 * an optional filter (Qdrant's facet counts), read from the payload index.
 *
 * The payload index ("pindex", layout in filter.h) keeps one entry per (field, value,
 * point) sorted by value then internal id, so the count of a value is the length of a run
 * of entries: one cursor walk over the field's keyword, integer and bool entries, each
 * entry counted when its point is live and passes the filter (the planner's allowed set,
 * as a filtered search or scroll computes it). A point whose field is an array counts once
 * under each distinct value it holds. Nothing reads the payloads: a field without a built
 * index is refused (as Qdrant refuses it), not answered slowly.
 *
 * Consistency: one read txn begun before c->maplock is taken shared (the order of
 * search.c and scroll.c), so the counts are those of one committed state.
 */
#include "storage/filter.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

#define DEFAULT_LIMIT 10

static int by_count(const void *a, const void *b)
{
    const qv_facet_hit *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    /* ties in value order: strings, then integers, then bools; each ascending */
    if (x->type != y->type) return x->type == 's' ? -1 : y->type == 's' ? 1 : x->type == 'i' ? -1 : 1;
    if (x->type == 's') return strcmp(x->s, y->s);
    return x->i < y->i ? -1 : x->i > y->i;
}

typedef struct {
    qv_facet_hit *v;
    size_t n, cap;
} hit_list;

static int list_add(hit_list *l, char type, const uint8_t *val, size_t vlen, uint64_t count)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        qv_facet_hit *t = qv_reallocarray(l->v, ncap, sizeof *t);
        if (!t) return QV_ENOMEM;
        l->v = t;
        l->cap = ncap;
    }
    qv_facet_hit *h = &l->v[l->n];
    memset(h, 0, sizeof *h);
    h->type = type;
    h->count = count;
    if (type == 's') {
        if (!(h->s = qv_malloc(vlen + 1))) return QV_ENOMEM;
        memcpy(h->s, val, vlen);
        h->s[vlen] = '\0';
    } else if (type == 'i') {
        h->i = qv_pkey_i64_get(val);
    } else {
        h->i = val[0] != 0;
    }
    l->n++;
    return QV_OK;
}

/* Walk the entries of one tag of the field, adding a hit per value with a nonzero count. */
static int walk_tag(qv_coll *c, MDB_txn *txn, const char *key, uint8_t tag, const uint64_t *set, uint64_t nbits,
                    hit_list *out)
{
    uint8_t prefix[6 + QV_PFIELD_MAX];
    size_t plen = qv_pkey_prefix(prefix, c->cid, key, strlen(key), tag);
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    const uint8_t *run = NULL;     /* the value of the run being counted (in the map) */
    size_t runlen = 0;
    uint64_t count = 0;
    char type = tag == 'k' ? 's' : tag == 'i' ? 'i' : 'b';
    int rc;

    if ((rc = qv_lmdb_cursor_open(txn, c->db->dbi[DBI_PINDEX], &cur)) != QV_OK) return rc;
    for (rc = qv_lmdb_seek(cur, prefix, plen, plen, &k, &v); rc == QV_OK; rc = qv_lmdb_next(cur, prefix, plen, &k, &v)) {
        const uint8_t *p = (const uint8_t *)k.mv_data + plen;
        size_t rest = k.mv_size - plen, vlen;
        const uint8_t *val;
        if (tag == 'k') {
            if (rest < 9 || (size_t)p[0] + 9 != rest) { rc = qv_fail(QV_ECORRUPT, "damaged payload index entry"); break; }
            val = p + 1;
            vlen = p[0];
        } else {
            vlen = tag == 'i' ? 8 : 1;
            if (rest != vlen + 8) { rc = qv_fail(QV_ECORRUPT, "damaged payload index entry"); break; }
            val = p;
        }
        if (run && (runlen != vlen || memcmp(run, val, vlen) != 0)) {
            if (count && (rc = list_add(out, type, run, runlen, count)) != QV_OK) break;
            count = 0;
        }
        run = val;
        runlen = vlen;
        uint64_t iid = qv_be64_get(p + rest - 8);
        if (iid < nbits && (set[iid / 64] >> (iid % 64) & 1) && (c->live[iid / 64] >> (iid % 64) & 1)) count++;
    }
    if (rc == QV_ENOTFOUND) rc = run && count ? list_add(out, type, run, runlen, count) : QV_OK;
    qv_lmdb_cursor_close(cur);
    return rc;
}

void qv_facet_free(qv_facet_hit *hits, size_t n)
{
    if (!hits) return;
    for (size_t i = 0; i < n; i++) qv_free(hits[i].s);
    qv_free(hits);
}

int qv_facet(qv_coll *c, const char *key, const qv_filter *filter, size_t limit, qv_facet_hit **out, size_t *n)
{
    MDB_txn *txn = NULL;
    uint64_t *bits = NULL, allowed = 0;
    hit_list l = {0};
    int rc, locked = 0;

    if (out) *out = NULL;
    if (n) *n = 0;
    if (!c || !key || !out || !n) return qv_fail(QV_EINVAL, "collection, key, out or n is NULL");
    if (!limit) limit = DEFAULT_LIMIT;
    if ((rc = qv_coll_check_live(c)) != QV_OK) return rc;
    if ((rc = qv_lmdb_begin(c->db, 1, &txn)) != QV_OK) return rc;
    pthread_rwlock_rdlock(&c->maplock);
    locked = 1;
    const qv_pfield *f = qv_pindex_field(c, key);
    if (!f || !(strcmp(f->type, "keyword") == 0 || strcmp(f->type, "integer") == 0 || strcmp(f->type, "bool") == 0)) {
        rc = qv_fail(QV_EINVAL, "Index required but not found for \"%s\" of one of the following types: [keyword, "
                                "integer, bool]. Help: Create an index for this key", key);
        goto cleanup;
    }
    uint64_t nbits = c->next_iid < c->cap ? c->next_iid : c->cap;
    const uint64_t *set = c->live;
    if (filter) {
        qv_search_stats st;
        memset(&st, 0, sizeof st);
        if ((rc = qv_filter_allowed_cached(c, txn, filter, nbits, &bits, &allowed, &st)) != QV_OK) goto cleanup;
        set = bits;
    }
    /* every value the field holds, whatever its declared type (filter.h: each value is
     * indexed by its own JSON type), as Qdrant counts what the index holds */
    static const uint8_t tags[] = {'k', 'i', 'b'};
    for (size_t t = 0; t < sizeof tags; t++)
        if ((rc = walk_tag(c, txn, key, tags[t], set, nbits, &l)) != QV_OK) goto cleanup;
    pthread_rwlock_unlock(&c->maplock);
    locked = 0;
    if (l.n) qsort(l.v, l.n, sizeof *l.v, by_count);
    while (l.n > limit) qv_free(l.v[--l.n].s);
    *out = l.v;
    *n = l.n;
    l.v = NULL;
    l.n = 0;
cleanup:
    if (locked) pthread_rwlock_unlock(&c->maplock);
    qv_lmdb_abort(c->db, txn);
    qv_free(bits);
    qv_facet_free(l.v, l.n);
    return rc;
}

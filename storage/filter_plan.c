/*
 * storage/filter_plan.c -- turns a payload filter into the set of internal ids that pass
 * it (a bitset), from the payload index where it can and from the stored payloads where
 * it must.
 *
 * Plan: if every leaf condition is on a built indexed field (and a match string is short
 * enough to be indexed by value) or is a has_id (its points looked up in the id records),
 * the answer is pure bitset algebra over cursor scans of the index: a match is one exact-prefix scan per value, a range one ordered scan per
 * numeric tag (integers and reals are stored apart, each in order), exists/is_null scans
 * of the per-field markers; must = AND, must_not = AND NOT, should = AND of the OR, and a
 * negated leaf is live AND NOT. Everything is intersected with the live set. The counts
 * are exact, so the planner's "selectivity estimate" is the size of this set.
 * Otherwise (some field not indexed): the candidates are the intersection of the indexed
 * leaves directly under the top-level must (or every live point), and each candidate's
 * payload is parsed and the whole filter evaluated with qv_filter_eval_json (reading
 * payloads one by one when the candidates are few, in key order with a cursor otherwise).
 *
 * Runs in the searching thread inside one read txn, with c->maplock held shared (live
 * set, field list). The txn may be a little newer than the in-memory state: ids beyond
 * the in-memory range or not live there are dropped by the live intersection.
 */
#include "storage/filter.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/bitset.h"
#include "core/error.h"
#include "storage/text.h"

typedef struct {
    qv_coll *c;
    MDB_txn *txn;
    MDB_cursor *cur;               /* on pindex */
    uint64_t nbits;
    size_t nwords;
    const uint64_t *live;
    qv_search_stats *st;
} plan;

static uint64_t *bits_new(const plan *p) { return qv_calloc(p->nwords ? p->nwords : 1, sizeof(uint64_t)); }

static int leaf_indexable(const qv_coll *c, const qv_fcond *x)
{
    if (x->kind == FC_HAS_ID) return 1;
    if (!c->db->has_pindex || !qv_pindex_field(c, x->key)) return 0;
    if (x->kind == FC_TEXT) return strcmp(qv_pindex_field(c, x->key)->type, "text") == 0;
    if (x->kind == FC_MATCH)
        for (size_t i = 0; i < x->nvals; i++)
            if (x->vals[i].type == 's' && x->vals[i].slen > QV_PKEY_MAX) return 0;
    return 1;
}

/* Count the unindexed leaves of f (and note their keys in the stats). */
static size_t count_unindexed(const qv_coll *c, const qv_filter *f, qv_search_stats *st)
{
    size_t n = 0;
    for (int o = 0; o < 3; o++)
        for (size_t i = 0; i < f->n[o]; i++) {
            const qv_fcond *x = &f->conds[o][i];
            if (x->kind == FC_NESTED) { n += count_unindexed(c, x->sub, st); continue; }
            if (leaf_indexable(c, x)) continue;
            n++;
            size_t len = strlen(st->unindexed_keys), kl = strlen(x->key);
            char probe[QV_FILTER_KEY_MAX + 3];
            snprintf(probe, sizeof probe, ",%s,", x->key);
            char have[sizeof st->unindexed_keys + 2];
            snprintf(have, sizeof have, ",%s,", st->unindexed_keys);
            if (strstr(have, probe)) continue;
            if (len + kl + 2 < sizeof st->unindexed_keys)
                snprintf(st->unindexed_keys + len, sizeof st->unindexed_keys - len, "%s%s", len ? "," : "", x->key);
        }
    return n;
}

/* Set the bit of every entry whose key starts with prefix[0..plen). */
static int scan_prefix(plan *p, const uint8_t *prefix, size_t plen, uint64_t *bits)
{
    MDB_val k, v;
    int rc;
    for (rc = qv_lmdb_seek(p->cur, prefix, plen, plen, &k, &v); rc == QV_OK; rc = qv_lmdb_next(p->cur, prefix, plen, &k, &v)) {
        if (k.mv_size < plen + 8) return qv_fail(QV_ECORRUPT, "collection '%s': damaged payload index key", p->c->name);
        uint64_t iid = qv_be64_get((const uint8_t *)k.mv_data + k.mv_size - 8);
        if (iid < p->nbits) bits[iid / 64] |= 1ull << (iid % 64);
    }
    return rc == QV_ENOTFOUND ? QV_OK : rc;
}

static int scan_tags(plan *p, const char *key, const char *tags, uint64_t *bits)
{
    uint8_t prefix[6 + QV_PFIELD_MAX];
    for (const char *t = tags; *t; t++) {
        size_t pl = qv_pkey_prefix(prefix, p->c->cid, key, strlen(key), (uint8_t)*t);
        int rc = scan_prefix(p, prefix, pl, bits);
        if (rc != QV_OK) return rc;
    }
    return QV_OK;
}

static int in_lo(const qv_fcond *x, double v) { return x->flags & QV_RANGE_GT_LO ? v > x->lo : v >= x->lo; }
static int in_hi(const qv_fcond *x, double v) { return x->flags & QV_RANGE_LT_HI ? v < x->hi : v <= x->hi; }

/* Ordered scan of one numeric tag from a conservative start; exact tests per entry. */
static int scan_range(plan *p, const qv_fcond *x, uint8_t tag, uint64_t *bits)
{
    uint8_t key[6 + QV_PFIELD_MAX + 8];
    MDB_val k, v;
    size_t pl = qv_pkey_prefix(key, p->c->cid, x->key, strlen(x->key), tag), sl = pl;
    int rc;
    if (tag == 'f' && x->lo > -INFINITY) {
        qv_pkey_f64(key + pl, x->lo);
        sl += 8;
    } else if (tag == 'i' && x->lo > -9.2e18) {
        /* (double)v is monotonic in v but rounds above 2^53: start a little early. */
        int64_t s = x->lo >= 9.2e18 ? INT64_MAX - 4096 : (int64_t)floor(x->lo);
        s = s < INT64_MIN + 4096 ? INT64_MIN : s - 4096;
        qv_pkey_i64(key + pl, s);
        sl += 8;
    }
    for (rc = qv_lmdb_seek(p->cur, key, sl, pl, &k, &v); rc == QV_OK; rc = qv_lmdb_next(p->cur, key, pl, &k, &v)) {
        if (k.mv_size != pl + 16) return qv_fail(QV_ECORRUPT, "collection '%s': damaged payload index key", p->c->name);
        const uint8_t *val = (const uint8_t *)k.mv_data + pl;
        double d = tag == 'f' ? qv_pkey_f64_get(val) : (double)qv_pkey_i64_get(val);
        if (!in_hi(x, d)) break;
        if (!in_lo(x, d)) continue;
        uint64_t iid = qv_be64_get(val + 8);
        if (iid < p->nbits) bits[iid / 64] |= 1ull << (iid % 64);
    }
    return rc == QV_ENOTFOUND ? QV_OK : rc;
}

static int scan_match(plan *p, const qv_fcond *x, uint64_t *bits)
{
    uint8_t key[6 + QV_PFIELD_MAX + 1 + QV_PKEY_MAX];
    size_t fl = strlen(x->key);
    int rc = QV_OK;
    for (size_t i = 0; i < x->nvals && rc == QV_OK; i++) {
        const qv_fvalue *v = &x->vals[i];
        size_t pl;
        switch (v->type) {
        case 's':
            pl = qv_pkey_prefix(key, p->c->cid, x->key, fl, 'k');
            key[pl] = (uint8_t)v->slen;
            memcpy(key + pl + 1, v->s, v->slen);
            rc = scan_prefix(p, key, pl + 1 + v->slen, bits);
            break;
        case 'i':
            pl = qv_pkey_prefix(key, p->c->cid, x->key, fl, 'i');
            qv_pkey_i64(key + pl, v->i);
            if ((rc = scan_prefix(p, key, pl + 8, bits)) != QV_OK) break;
            pl = qv_pkey_prefix(key, p->c->cid, x->key, fl, 'f');
            qv_pkey_f64(key + pl, (double)v->i);
            rc = scan_prefix(p, key, pl + 8, bits);
            break;
        default:
            pl = qv_pkey_prefix(key, p->c->cid, x->key, fl, 'b');
            key[pl] = (uint8_t)(v->i != 0);
            rc = scan_prefix(p, key, pl + 1, bits);
            break;
        }
    }
    return rc;
}

static void and_in(uint64_t *a, const uint64_t *b, size_t n);

/* text: the points whose postings hold every token of the query (none without a token). */
static int scan_text(plan *p, const qv_fcond *x, uint64_t *bits)
{
    uint8_t key[6 + QV_PFIELD_MAX + 1 + QV_TEXT_TOKEN_MAX];
    qv_toklist t = {0};
    uint64_t *tmp = NULL;
    size_t fl = strlen(x->key);
    int rc = qv_text_tokens(x->vals[0].s, x->vals[0].slen, NULL, &t);
    for (size_t i = 0; rc == QV_OK && i < t.n; i++) {
        const char *w = t.buf + t.off[i];
        size_t wl = strlen(w), pl = qv_pkey_prefix(key, p->c->cid, x->key, fl, 't');
        key[pl] = (uint8_t)wl;
        memcpy(key + pl + 1, w, wl);
        if (i == 0) { rc = scan_prefix(p, key, pl + 1 + wl, bits); continue; }
        if (!tmp && !(tmp = bits_new(p))) { rc = QV_ENOMEM; break; }
        memset(tmp, 0, p->nwords * sizeof *tmp);
        if ((rc = scan_prefix(p, key, pl + 1 + wl, tmp)) == QV_OK) and_in(bits, tmp, p->nwords);
    }
    qv_free(tmp);
    qv_toklist_release(&t);
    return rc;
}

/* has_id: the internal ids of the listed points that exist, from their id records. */
static int scan_ids(plan *p, const qv_fcond *x, uint64_t *bits)
{
    uint8_t key[12];
    MDB_val v;
    for (size_t i = 0; i < x->nvals; i++) {
        qv_ckey(key, p->c->cid, (uint64_t)x->vals[i].i);
        int rc = qv_lmdb_get(p->txn, p->c->db->dbi[DBI_IDS], key, 12, &v);
        if (rc == QV_ENOTFOUND) continue;
        if (rc != QV_OK) return rc;
        if (v.mv_size != 8) return qv_fail(QV_ECORRUPT, "collection '%s': damaged id record", p->c->name);
        uint64_t iid = qv_be64_get(v.mv_data);
        if (iid < p->nbits) bits[iid / 64] |= 1ull << (iid % 64);
    }
    return QV_OK;
}

static void and_not(uint64_t *a, const uint64_t *b, size_t n) { for (size_t i = 0; i < n; i++) a[i] &= ~b[i]; }
static void and_in(uint64_t *a, const uint64_t *b, size_t n) { for (size_t i = 0; i < n; i++) a[i] &= b[i]; }
static void or_in(uint64_t *a, const uint64_t *b, size_t n) { for (size_t i = 0; i < n; i++) a[i] |= b[i]; }

static int eval_filter(plan *p, const qv_filter *f, uint64_t *out);

/* The exact set of one indexable leaf (or nested filter) into out (cleared by caller). */
static int eval_cond(plan *p, const qv_fcond *x, uint64_t *out)
{
    int rc;
    if (x->kind == FC_NESTED) return eval_filter(p, x->sub, out);
    switch (x->kind) {
    case FC_MATCH: rc = scan_match(p, x, out); break;
    case FC_RANGE:
        rc = scan_range(p, x, 'i', out);
        if (rc == QV_OK) rc = scan_range(p, x, 'f', out);
        break;
    case FC_HAS_ID: rc = scan_ids(p, x, out); break;
    case FC_TEXT: rc = scan_text(p, x, out); break;
    case FC_IS_NULL: rc = scan_tags(p, x->key, "n", out); break;
    case FC_EXISTS: rc = scan_tags(p, x->key, "befikx", out); break;
    default: rc = scan_tags(p, x->key, "bfikx", out); break;   /* is_empty = live - these */
    }
    if (rc != QV_OK) return rc;
    int neg = x->negate ^ (x->kind == FC_IS_EMPTY);
    for (size_t i = 0; i < p->nwords; i++) out[i] = (neg ? ~out[i] : out[i]) & p->live[i];
    return QV_OK;
}

static int eval_filter(plan *p, const qv_filter *f, uint64_t *out)
{
    uint64_t *t = NULL, *acc = NULL;
    int rc = QV_OK;
    memcpy(out, p->live, p->nwords * sizeof *out);
    if (!(t = bits_new(p))) return QV_ENOMEM;
    for (int o = 0; o < 2 && rc == QV_OK; o++)
        for (size_t i = 0; i < f->n[o] && rc == QV_OK; i++) {
            memset(t, 0, p->nwords * sizeof *t);
            if ((rc = eval_cond(p, &f->conds[o][i], t)) != QV_OK) break;
            if (o == 0) and_in(out, t, p->nwords);
            else and_not(out, t, p->nwords);
        }
    if (rc == QV_OK && f->n[2]) {
        if (!(acc = bits_new(p))) rc = QV_ENOMEM;
        for (size_t i = 0; rc == QV_OK && i < f->n[2]; i++) {
            memset(t, 0, p->nwords * sizeof *t);
            if ((rc = eval_cond(p, &f->conds[2][i], t)) == QV_OK) or_in(acc, t, p->nwords);
        }
        if (rc == QV_OK) and_in(out, acc, p->nwords);
    }
    qv_free(t);
    qv_free(acc);
    return rc;
}

/* Evaluate f on the payload stored for iid (v: the payload record, or NULL = none). */
static int eval_payload(plan *p, const qv_filter *f, uint64_t iid, const MDB_val *v, int *pass)
{
    json_t *o = NULL;
    if (v) {
        if (!(o = json_loadb(v->mv_data, v->mv_size, 0, NULL)))
            return qv_fail(QV_ECORRUPT, "collection '%s': a stored payload is not JSON", p->c->name);
        p->st->payloads_read++;
    }
    *pass = qv_filter_eval_json(f, o, p->c->ext_of[iid]);
    json_decref(o);
    return QV_OK;
}

/* Keep the candidates in bits whose payload passes f. */
static int residual(plan *p, const qv_filter *f, uint64_t *bits, uint64_t ncand, uint64_t nlive)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint8_t key[12];
    MDB_dbi dbi = p->c->db->dbi[DBI_PAYLOADS];
    int rc = QV_OK, pass;

    if (ncand * 4 < nlive) {       /* few: point reads */
        for (size_t w = 0; w < p->nwords && rc == QV_OK; w++)
            for (uint64_t m = bits[w]; m && rc == QV_OK; m &= m - 1) {
                uint64_t iid = w * 64 + (uint64_t)__builtin_ctzll(m);
                qv_ckey(key, p->c->cid, iid);
                rc = qv_lmdb_get(p->txn, dbi, key, 12, &v);
                if (rc == QV_OK) rc = eval_payload(p, f, iid, &v, &pass);
                else if (rc == QV_ENOTFOUND) rc = eval_payload(p, f, iid, NULL, &pass);
                if (rc == QV_OK && !pass) bits[w] &= ~(1ull << (iid % 64));
            }
        return rc;
    }
    /* many: one ordered pass over the payloads; points without one get f(NULL) */
    uint64_t *seen = bits_new(p);
    if (!seen) return QV_ENOMEM;
    if ((rc = qv_lmdb_cursor_open(p->txn, dbi, &cur)) != QV_OK) goto cleanup;
    qv_be32_put(key, p->c->cid);
    for (rc = qv_lmdb_seek(cur, key, 4, 4, &k, &v); rc == QV_OK; rc = qv_lmdb_next(cur, key, 4, &k, &v)) {
        if (k.mv_size != 12) { rc = qv_fail(QV_ECORRUPT, "collection '%s': damaged payload key", p->c->name); break; }
        uint64_t iid = qv_be64_get((const uint8_t *)k.mv_data + 4);
        if (iid >= p->nbits || !(bits[iid / 64] >> (iid % 64) & 1)) continue;
        seen[iid / 64] |= 1ull << (iid % 64);
        if ((rc = eval_payload(p, f, iid, &v, &pass)) != QV_OK) break;
        if (!pass) bits[iid / 64] &= ~(1ull << (iid % 64));
    }
    if (rc != QV_ENOTFOUND) goto cleanup;
    rc = QV_OK;
    for (size_t w = 0; w < p->nwords; w++)          /* the candidates without a payload */
        for (uint64_t m = bits[w] & ~seen[w]; m; m &= m - 1) {
            uint64_t iid = w * 64 + (uint64_t)__builtin_ctzll(m);
            if ((rc = eval_payload(p, f, iid, NULL, &pass)) != QV_OK) goto cleanup;
            if (!pass) bits[w] &= ~(1ull << (iid % 64));
        }
cleanup:
    qv_lmdb_cursor_close(cur);
    qv_free(seen);
    return rc;
}

int qv_filter_allowed(qv_coll *c, MDB_txn *txn, const qv_filter *f, uint64_t nbits, uint64_t **out,
                      uint64_t *count, qv_search_stats *st)
{
    struct timespec t0, t1;
    plan p = {c, txn, NULL, nbits, (size_t)((nbits + 63) / 64), c->live, st};
    uint64_t *bits = NULL;
    int rc;

    *out = NULL;
    *count = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    st->conditions = (uint32_t)qv_filter_leaves(f);
    st->unindexed = (uint32_t)count_unindexed(c, f, st);
    if (!(bits = bits_new(&p))) return QV_ENOMEM;
    if (!nbits) { rc = QV_OK; goto done; }
    if (c->db->has_pindex && (rc = qv_lmdb_cursor_open(txn, c->db->dbi[DBI_PINDEX], &p.cur)) != QV_OK) goto cleanup;
    if (!st->unindexed) {
        rc = eval_filter(&p, f, bits);
    } else {
        /* candidates: the indexed leaves directly under must */
        uint64_t *t = bits_new(&p);
        rc = t ? QV_OK : QV_ENOMEM;
        memcpy(bits, c->live, p.nwords * sizeof *bits);
        for (size_t i = 0; rc == QV_OK && i < f->n[0]; i++) {
            const qv_fcond *x = &f->conds[0][i];
            if (x->kind == FC_NESTED || !leaf_indexable(c, x)) continue;
            memset(t, 0, p.nwords * sizeof *t);
            if ((rc = eval_cond(&p, x, t)) == QV_OK) and_in(bits, t, p.nwords);
        }
        qv_free(t);
        if (rc == QV_OK) {
            uint64_t nlive = qv_bits_count(c->live, nbits);
            rc = residual(&p, f, bits, qv_bits_count(bits, nbits), nlive);
        }
    }
    if (rc != QV_OK) goto cleanup;
done:
    *count = qv_bits_count(bits, nbits);
    *out = bits;
    bits = NULL;
cleanup:
    qv_lmdb_cursor_close(p.cur);
    qv_free(bits);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    st->filter_us = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
    return rc;
}

/* ---- cache of recent allowed sets ---------------------------------------------------------
 * Filters repeat (a tenant or language filter on every query of a session), and building
 * the set costs cursor scans proportional to the points that match. The last FCACHE_SLOTS
 * sets are kept per collection; an entry is valid only for the write (last_seq) and field
 * list (pfields_gen) it was built at, so it never needs invalidating. Hits copy the bits
 * out under the cache mutex, so no entry is ever shared with a running search. */
#define FCACHE_SLOTS 8

typedef struct {
    char *key;                     /* qv_filter_to_json form; NULL = empty slot */
    uint64_t seq, gen, nbits, count, tick;
    uint64_t *bits;
    qv_search_stats st;
} fcache_entry;

void qv_fcache_free(qv_coll *c)
{
    fcache_entry *e = c->fcache;
    if (!e) return;
    for (int i = 0; i < FCACHE_SLOTS; i++) {
        qv_free(e[i].key);
        qv_free(e[i].bits);
    }
    qv_free(e);
    c->fcache = NULL;
}

static int fcache_get(qv_coll *c, const char *key, uint64_t nbits, uint64_t **out, uint64_t *count, qv_search_stats *st)
{
    int hit = 0;
    pthread_mutex_lock(&c->fcache_lock);
    fcache_entry *e = c->fcache;
    for (int i = 0; e && i < FCACHE_SLOTS; i++) {
        if (!e[i].key || e[i].seq != c->last_seq || e[i].gen != c->pfields_gen || e[i].nbits != nbits ||
            strcmp(e[i].key, key) != 0)
            continue;
        uint64_t *b = qv_calloc((nbits + 63) / 64 + 1, sizeof *b);
        if (b) {
            memcpy(b, e[i].bits, (size_t)((nbits + 63) / 64) * sizeof *b);
            *out = b;
            *count = e[i].count;
            st->conditions = e[i].st.conditions;
            st->unindexed = e[i].st.unindexed;
            memcpy(st->unindexed_keys, e[i].st.unindexed_keys, sizeof st->unindexed_keys);
            e[i].tick = ++c->fcache_tick;
            hit = 1;
        }
        break;
    }
    pthread_mutex_unlock(&c->fcache_lock);
    return hit;
}

static void fcache_put(qv_coll *c, char *key, uint64_t nbits, const uint64_t *bits, uint64_t count,
                       const qv_search_stats *st)
{
    size_t words = (size_t)((nbits + 63) / 64);
    uint64_t *b = qv_calloc(words + 1, sizeof *b);
    if (!b) {                      /* caching is optional */
        qv_free(key);
        return;
    }
    memcpy(b, bits, words * sizeof *b);
    pthread_mutex_lock(&c->fcache_lock);
    if (!c->fcache) c->fcache = qv_calloc(FCACHE_SLOTS, sizeof(fcache_entry));
    fcache_entry *e = c->fcache;
    if (e) {
        int v = 0;
        for (int i = 1; i < FCACHE_SLOTS; i++)
            if (!e[i].key || (e[v].key && e[i].tick < e[v].tick)) v = i;
        qv_free(e[v].key);
        qv_free(e[v].bits);
        e[v] = (fcache_entry){key, c->last_seq, c->pfields_gen, nbits, count, ++c->fcache_tick, b, *st};
        key = NULL;
        b = NULL;
    }
    pthread_mutex_unlock(&c->fcache_lock);
    qv_free(key);
    qv_free(b);
}

int qv_filter_allowed_cached(qv_coll *c, MDB_txn *txn, const qv_filter *f, uint64_t nbits, uint64_t **out,
                             uint64_t *count, qv_search_stats *st)
{
    struct timespec t0, t1;
    char *key = NULL;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (qv_filter_to_json(f, &key) == QV_OK && fcache_get(c, key, nbits, out, count, st)) {
        qv_free(key);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        st->cached = 1;
        st->filter_us = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
        return QV_OK;
    }
    int rc = qv_filter_allowed(c, txn, f, nbits, out, count, st);
    if (rc == QV_OK && key) fcache_put(c, key, nbits, *out, *count, st);
    else qv_free(key);
    return rc;
}

int qv_filter_read_set(qv_coll *c, MDB_txn *txn, const qv_filter *f, uint64_t *nbits, const uint64_t **set,
                       uint64_t **bits, uint64_t *allowed)
{
    *nbits = c->next_iid < c->cap ? c->next_iid : c->cap;
    *set = c->live;
    *allowed = c->count;
    if (!f) return QV_OK;
    qv_search_stats st;
    memset(&st, 0, sizeof st);
    int rc = qv_filter_allowed_cached(c, txn, f, *nbits, bits, allowed, &st);
    if (rc == QV_OK) *set = *bits;
    return rc;
}

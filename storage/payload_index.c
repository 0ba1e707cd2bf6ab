/*
 * storage/payload_index.c -- the payload index in LMDB: which fields are indexed, the
 * entries of one payload, keeping them in step with upserts and deletes, and adding or
 * removing an indexed field of an existing collection.
 *
 * Layout and value encodings: storage/filter.h. Entries are written in the same write txn
 * as the payload they come from: an upsert that replaces a point first deletes the entries
 * of the payload stored before (read back from `payloads` in that txn), a delete does the
 * same, so the index can never disagree with the committed payloads.
 *
 * Adding a field (qv_collection_index_field) builds its entries from every stored payload
 * and updates the config and the "built" record in one txn, under db->wmutex (so no write
 * runs meanwhile; searches go on and treat the field as unindexed until the commit). The
 * collection's field list (c->pfields) is swapped under c->maplock held exclusive: searches
 * read it with the lock shared, writers under wmutex.
 */
#include "storage/filter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "storage/text.h"

/* ---- encodings --------------------------------------------------------------------------- */

void qv_pkey_f64(uint8_t out[8], double x)
{
    uint64_t u;
    if (x == 0) x = 0;             /* -0 and +0 are one value */
    memcpy(&u, &x, 8);
    u = (u >> 63) ? ~u : u | (1ull << 63);
    qv_be64_put(out, u);
}

double qv_pkey_f64_get(const uint8_t in[8])
{
    uint64_t u = qv_be64_get(in);
    double x;
    u = (u >> 63) ? u & ~(1ull << 63) : ~u;
    memcpy(&x, &u, 8);
    return x;
}

void qv_pkey_i64(uint8_t out[8], int64_t x) { qv_be64_put(out, (uint64_t)x ^ (1ull << 63)); }
int64_t qv_pkey_i64_get(const uint8_t in[8]) { return (int64_t)(qv_be64_get(in) ^ (1ull << 63)); }

size_t qv_pkey_prefix(uint8_t *out, uint32_t cid, const char *field, size_t flen, uint8_t tag)
{
    qv_be32_put(out, cid);
    out[4] = (uint8_t)flen;
    memcpy(out + 5, field, flen);
    out[5 + flen] = tag;
    return 6 + flen;
}

/* ---- field list ---------------------------------------------------------------------------- */

void qv_pfields_free(qv_pfield *p, size_t n)
{
    if (!p) return;
    for (size_t i = 0; i < n; i++) qv_free(p[i].name);
    qv_free(p);
}

static int type_ok(const char *t)
{
    return t && (!strcmp(t, "keyword") || !strcmp(t, "integer") || !strcmp(t, "float") || !strcmp(t, "bool") ||
                 !strcmp(t, "text"));
}

/* Parse a payload_index JSON object into a field array (built = 0). */
static int fields_from_json(const char *json, qv_pfield **out, size_t *n)
{
    json_t *o;
    const char *k;
    json_t *v;
    qv_pfield *p = NULL;
    size_t len = 0;
    *out = NULL;
    *n = 0;
    if (!json) return QV_OK;
    if (!(o = json_loads(json, 0, NULL)) || !json_is_object(o)) {
        json_decref(o);
        return qv_fail(QV_ECORRUPT, "payload_index is not a JSON object");
    }
    if (json_object_size(o) && !(p = qv_calloc(json_object_size(o), sizeof *p))) {
        json_decref(o);
        return QV_ENOMEM;
    }
    json_object_foreach(o, k, v) {
        if (!(p[len].name = qv_strdup(k))) {
            qv_pfields_free(p, len);
            json_decref(o);
            return QV_ENOMEM;
        }
        snprintf(p[len].type, sizeof p[len].type, "%s", json_is_string(v) ? json_string_value(v) : "");
        len++;
    }
    json_decref(o);
    *out = p;
    *n = len;
    return QV_OK;
}

/* The built record's mark that its entries follow payload paths ("a.b" is b under a).
 * Records without it were written when "a.b" meant a top-level field of that name first:
 * their fields with a dot or a quote are treated as not built (rebuilt on a read-write
 * open, else answered from the payloads). "" is never a field name (config.c). */
#define PATHS_MARK ""

static int path_like(const char *field) { return strpbrk(field, ".\"") != NULL; }

/* JSON {"name":"type"} of the fields (only the built ones, and the paths mark, when
 * only_built: the built record); *out = NULL when there are none and !only_built (no
 * payload_index). */
static int fields_to_json(const qv_pfield *p, size_t n, int only_built, char **out)
{
    json_t *o = json_object();
    int rc = QV_ENOMEM;
    size_t used = 0;
    *out = NULL;
    if (!o) goto cleanup;
    if (only_built && json_object_set_new(o, PATHS_MARK, json_string("paths")) != 0) goto cleanup;
    for (size_t i = 0; i < n; i++) {
        if (only_built && !p[i].built) continue;
        if (json_object_set_new(o, p[i].name, json_string(p[i].type)) != 0) goto cleanup;
        used++;
    }
    if (!used && !only_built) { rc = QV_OK; goto cleanup; }
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    if (!s) goto cleanup;
    *out = qv_strdup(s);
    free(s);
    rc = *out ? QV_OK : QV_ENOMEM;
cleanup:
    json_decref(o);
    if (rc == QV_ENOMEM) qv_fail(QV_ENOMEM, "out of memory encoding the payload index fields");
    return rc;
}

static int copy_fields(const qv_pfield *p, size_t n, size_t extra, qv_pfield **out)
{
    *out = NULL;
    if (n + extra == 0) return QV_OK;
    qv_pfield *q = qv_calloc(n + extra, sizeof *q);
    if (!q) return QV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        q[i] = p[i];
        if (!(q[i].name = qv_strdup(p[i].name))) {
            qv_pfields_free(q, i);
            return QV_ENOMEM;
        }
    }
    *out = q;
    return QV_OK;
}

int qv_pindex_load_fields(qv_coll *c, MDB_txn *txn)
{
    qv_pfield *p = NULL;
    size_t n = 0;
    int rc = fields_from_json(c->payload_index, &p, &n);
    if (rc != QV_OK) return rc;
    if (!txn)                      /* a new collection: nothing to index yet */
        for (size_t i = 0; i < n; i++) p[i].built = 1;
    if (txn && n && c->db->has_pindex) {
        uint8_t key[5];
        MDB_val v;
        qv_be32_put(key, c->cid);
        key[4] = 0;
        rc = qv_lmdb_get(txn, c->db->dbi[DBI_PINDEX], key, 5, &v);
        if (rc == QV_OK) {
            json_t *b = json_loadb(v.mv_data, v.mv_size, 0, NULL);
            int paths = json_object_get(b, PATHS_MARK) != NULL;
            for (size_t i = 0; i < n; i++) {
                json_t *t = json_object_get(b, p[i].name);
                p[i].built = strlen(p[i].name) <= QV_PFIELD_MAX && json_is_string(t) && (paths || !path_like(p[i].name));
            }
            json_decref(b);
        } else if (rc != QV_ENOTFOUND) {
            qv_pfields_free(p, n);
            return rc;
        }
        rc = QV_OK;
    }
    qv_pfields_free(c->pfields, c->npfields);
    c->pfields = p;
    c->npfields = n;
    return rc;
}

const qv_pfield *qv_pindex_field(const qv_coll *c, const char *key)
{
    for (size_t i = 0; i < c->npfields; i++)
        if (c->pfields[i].built && strcmp(c->pfields[i].name, key) == 0) return &c->pfields[i];
    return NULL;
}

/* ---- terms ------------------------------------------------------------------------------------- */

void qv_terms_release(qv_terms *t)
{
    if (!t) return;
    qv_free(t->buf);
    qv_free(t->off);
    qv_free(t->aux);
    memset(t, 0, sizeof *t);
}

static int term_add(qv_terms *t, const char *field, size_t flen, uint8_t tag, const void *val, size_t vlen)
{
    size_t need = 2 + flen + vlen;
    if (t->len + need > t->cap) {
        size_t ncap = t->cap ? t->cap : 256;
        while (ncap < t->len + need) ncap *= 2;
        uint8_t *b = qv_reallocarray(t->buf, ncap, 1);
        if (!b) return QV_ENOMEM;
        t->buf = b;
        t->cap = ncap;
    }
    if (t->n == t->ncap) {
        size_t ncap = t->ncap ? t->ncap * 2 : 16;
        size_t *o = qv_reallocarray(t->off, ncap, sizeof *o);
        if (!o) return QV_ENOMEM;
        t->off = o;
        uint64_t *x = qv_reallocarray(t->aux, ncap, sizeof *x);
        if (!x) return QV_ENOMEM;
        t->aux = x;
        t->ncap = ncap;
    }
    uint8_t *p = t->buf + t->len;
    t->aux[t->n] = 0;
    t->off[t->n++] = t->len;
    p[0] = (uint8_t)flen;
    memcpy(p + 1, field, flen);
    p[1 + flen] = tag;
    if (vlen) memcpy(p + 2 + flen, val, vlen);
    t->len += need;
    return QV_OK;
}

/* The entry of one scalar (array element or the value itself); 0 = not a scalar. */
static int scalar_term(qv_terms *t, const char *f, size_t fl, json_t *v, int *done)
{
    uint8_t b[QV_PKEY_MAX + 1];
    *done = 1;
    if (json_is_string(v) && json_string_length(v) <= QV_PKEY_MAX) {
        size_t n = json_string_length(v);
        b[0] = (uint8_t)n;
        memcpy(b + 1, json_string_value(v), n);
        return term_add(t, f, fl, 'k', b, n + 1);
    }
    if (json_is_integer(v)) {
        qv_pkey_i64(b, (int64_t)json_integer_value(v));
        return term_add(t, f, fl, 'i', b, 8);
    }
    if (json_is_real(v)) {
        qv_pkey_f64(b, json_real_value(v));
        return term_add(t, f, fl, 'f', b, 8);
    }
    if (json_is_boolean(v)) {
        b[0] = (uint8_t)json_is_true(v);
        return term_add(t, f, fl, 'b', b, 1);
    }
    *done = 0;
    return QV_OK;
}

/* The full-text entries of string s for field f (storage/text.h): one 't' per distinct
 * token, then the 'L' entry. */
static int text_terms(qv_terms *t, const char *f, size_t fl, const char *s, size_t len)
{
    qv_toklist tl = {0};
    size_t *uniq = NULL, nu = 0;
    uint32_t *cnt = NULL;
    uint8_t b[1 + QV_TEXT_TOKEN_MAX];
    int rc = qv_text_tokens(s, len, NULL, &tl);
    if (rc != QV_OK) goto cleanup;
    if (tl.n > UINT32_MAX) { rc = qv_fail(QV_EINVAL, "text field '%s': more than 2^32 tokens", f); goto cleanup; }
    if (tl.n && (!(uniq = qv_calloc(tl.n, sizeof *uniq)) || !(cnt = qv_calloc(tl.n, sizeof *cnt)))) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    qv_text_distinct(&tl, uniq, cnt, &nu);
    for (size_t i = 0; i < nu && rc == QV_OK; i++) {
        const char *w = tl.buf + tl.off[uniq[i]];
        size_t wl = strlen(w);
        if (wl > QV_TEXT_TOKEN_MAX) continue;      /* a stem never grows; kept for safety */
        b[0] = (uint8_t)wl;
        memcpy(b + 1, w, wl);
        if ((rc = term_add(t, f, fl, 't', b, wl + 1)) == QV_OK) t->aux[t->n - 1] = (uint64_t)cnt[i] << 32 | tl.n;
    }
    if (rc == QV_OK && (rc = term_add(t, f, fl, 'L', NULL, 0)) == QV_OK) t->aux[t->n - 1] = tl.n;
cleanup:
    qv_free(uniq);
    qv_free(cnt);
    qv_toklist_release(&tl);
    return rc;
}

static int field_terms(json_t *payload, const char *field, int text, qv_terms *t)
{
    size_t fl = strlen(field);
    json_t *v = qv_payload_field(payload, field);
    int done, rc;
    if (!v || fl > QV_PFIELD_MAX) return QV_OK;
    if (text && json_is_string(v) &&
        (rc = text_terms(t, field, fl, json_string_value(v), json_string_length(v))) != QV_OK)
        return rc;
    if (json_is_null(v)) return term_add(t, field, fl, 'n', NULL, 0);
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        if (json_array_size(v) == 0) return term_add(t, field, fl, 'e', NULL, 0);
        if ((rc = term_add(t, field, fl, 'x', NULL, 0)) != QV_OK) return rc;
        json_array_foreach(v, i, e) if ((rc = scalar_term(t, field, fl, e, &done)) != QV_OK) return rc;
        return QV_OK;
    }
    if ((rc = scalar_term(t, field, fl, v, &done)) != QV_OK || done) return rc;
    return term_add(t, field, fl, 'x', NULL, 0);   /* object or long string */
}

int qv_pindex_terms(const qv_coll *c, json_t *payload, const char *field, qv_terms *t)
{
    int rc;
    for (size_t i = 0; i < c->npfields; i++)
        if ((field ? strcmp(c->pfields[i].name, field) == 0 : c->pfields[i].built) &&
            (rc = field_terms(payload, c->pfields[i].name, !strcmp(c->pfields[i].type, "text"), t)) != QV_OK)
            return rc;
    return QV_OK;
}

/* key = cid | term | iid into buf (>= 4 + term + 8 bytes); returns length. */
static size_t term_key(uint8_t *buf, uint32_t cid, const qv_terms *t, size_t i, uint64_t iid)
{
    size_t end = i + 1 < t->n ? t->off[i + 1] : t->len, n = end - t->off[i];
    qv_be32_put(buf, cid);
    memcpy(buf + 4, t->buf + t->off[i], n);
    qv_be64_put(buf + 4 + n, iid);
    return 12 + n;
}

#define KEYBUF (12 + 2 + QV_PFIELD_MAX + QV_PKEY_MAX + 1)

/* The tag of term i, and where its field starts / how long it is. */
static uint8_t term_tag(const qv_terms *t, size_t i) { return t->buf[t->off[i] + 1 + t->buf[t->off[i]]]; }

/* A text field's 'S' record (documents, total tokens) moves by (+-1, +-len). */
static int text_stats_add(qv_coll *c, MDB_txn *txn, const qv_terms *t, size_t i, int sign)
{
    uint8_t key[4 + 2 + QV_PFIELD_MAX];
    uint64_t st[2] = {0, 0};
    MDB_val v;
    size_t fl = t->buf[t->off[i]];
    size_t kl = qv_pkey_prefix(key, c->cid, (const char *)t->buf + t->off[i] + 1, fl, 'S');
    int rc = qv_lmdb_get(txn, c->db->dbi[DBI_PINDEX], key, kl, &v);
    if (rc == QV_OK && v.mv_size == sizeof st) memcpy(st, v.mv_data, sizeof st);
    else if (rc == QV_OK) return qv_fail(QV_ECORRUPT, "collection '%s': damaged text statistics record", c->name);
    else if (rc != QV_ENOTFOUND) return rc;
    if (sign > 0) { st[0] += 1; st[1] += t->aux[i]; }
    else { st[0] -= st[0] ? 1 : 0; st[1] -= st[1] >= t->aux[i] ? t->aux[i] : st[1]; }
    return qv_lmdb_put(txn, c->db->dbi[DBI_PINDEX], key, kl, st, sizeof st);
}

int qv_pindex_put(qv_coll *c, MDB_txn *txn, const qv_terms *t, uint64_t iid)
{
    uint8_t key[KEYBUF];
    for (size_t i = 0; i < t->n; i++) {
        size_t kl = term_key(key, c->cid, t, i, iid);
        uint8_t tag = term_tag(t, i);
        uint32_t val[2] = {(uint32_t)(t->aux[i] >> 32), (uint32_t)t->aux[i]};
        int rc;
        if (tag == 't') rc = qv_lmdb_put(txn, c->db->dbi[DBI_PINDEX], key, kl, val, 8);
        else if (tag == 'L') rc = qv_lmdb_put(txn, c->db->dbi[DBI_PINDEX], key, kl, &val[1], 4);
        else rc = qv_lmdb_put(txn, c->db->dbi[DBI_PINDEX], key, kl, "", 0);
        if (rc == QV_OK && tag == 'L') rc = text_stats_add(c, txn, t, i, +1);
        if (rc != QV_OK) return rc;
    }
    return QV_OK;
}

int qv_pindex_del(qv_coll *c, MDB_txn *txn, const qv_terms *t, uint64_t iid)
{
    uint8_t key[KEYBUF];
    for (size_t i = 0; i < t->n; i++) {
        size_t kl = term_key(key, c->cid, t, i, iid);
        int rc = qv_lmdb_del(txn, c->db->dbi[DBI_PINDEX], key, kl);
        if (rc == QV_OK && term_tag(t, i) == 'L') rc = text_stats_add(c, txn, t, i, -1);
        if (rc != QV_OK && rc != QV_ENOTFOUND) return rc;
    }
    return QV_OK;
}

int qv_pindex_unindex_stored(qv_coll *c, MDB_txn *txn, uint64_t iid)
{
    uint8_t key[12];
    MDB_val v;
    qv_terms t = {0};
    int rc, any = 0;
    for (size_t i = 0; i < c->npfields; i++) any |= c->pfields[i].built;
    if (!any) return QV_OK;
    qv_ckey(key, c->cid, iid);
    rc = qv_lmdb_get(txn, c->db->dbi[DBI_PAYLOADS], key, 12, &v);
    if (rc == QV_ENOTFOUND) return QV_OK;
    if (rc != QV_OK) return rc;
    json_t *o = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    if (!o) return qv_fail(QV_ECORRUPT, "collection '%s': stored payload of internal id %llu is not JSON", c->name,
                           (unsigned long long)iid);
    rc = qv_pindex_terms(c, o, NULL, &t);
    json_decref(o);
    if (rc == QV_OK) rc = qv_pindex_del(c, txn, &t, iid);
    qv_terms_release(&t);
    return rc;
}

static int put_built(qv_coll *c, MDB_txn *txn, const qv_pfield *p, size_t n)
{
    uint8_t key[5];
    char *json = NULL;
    qv_be32_put(key, c->cid);
    key[4] = 0;
    int rc = fields_to_json(p, n, 1, &json);
    if (rc != QV_OK) return rc;
    rc = qv_lmdb_put(txn, c->db->dbi[DBI_PINDEX], key, 5, json, strlen(json));
    qv_free(json);
    return rc;
}

int qv_pindex_put_built(qv_coll *c, MDB_txn *txn) { return put_built(c, txn, c->pfields, c->npfields); }

/* ---- building / dropping a field ------------------------------------------------------------ */

/* Delete every entry of field, then index it from every stored payload of c. */
static int build_field(qv_coll *c, MDB_txn *txn, const char *field, int text, qv_progress_fn progress, void *arg)
{
    uint8_t prefix[6 + QV_PFIELD_MAX], cprefix[4];
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    qv_terms t = {0};
    size_t done = 0, fl = strlen(field);
    int rc;

    size_t plen = qv_pkey_prefix(prefix, c->cid, field, fl, 0) - 1;   /* without the tag */
    if ((rc = qv_lmdb_del_prefix(txn, c->db->dbi[DBI_PINDEX], prefix, plen)) != QV_OK) return rc;
    if ((rc = qv_lmdb_cursor_open(txn, c->db->dbi[DBI_PAYLOADS], &cur)) != QV_OK) return rc;
    qv_be32_put(cprefix, c->cid);
    for (rc = qv_lmdb_seek(cur, cprefix, 4, 4, &k, &v); rc == QV_OK; rc = qv_lmdb_next(cur, cprefix, 4, &k, &v)) {
        if (k.mv_size != 12) { rc = qv_fail(QV_ECORRUPT, "collection '%s': damaged payload key", c->name); break; }
        json_t *o = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        if (!o) { rc = qv_fail(QV_ECORRUPT, "collection '%s': stored payload is not JSON", c->name); break; }
        t.n = t.len = 0;
        rc = field_terms(o, field, text, &t);
        json_decref(o);
        if (rc == QV_OK) rc = qv_pindex_put(c, txn, &t, qv_be64_get((const uint8_t *)k.mv_data + 4));
        if (rc != QV_OK) break;
        if (progress && ++done % 4096 == 0) progress("index field", done, (size_t)c->count, arg);
    }
    qv_lmdb_cursor_close(cur);
    qv_terms_release(&t);
    if (rc != QV_ENOTFOUND) return rc;
    if (progress) progress("index field", done, done, arg);
    return QV_OK;
}

typedef struct {
    qv_coll *c;
    qv_pfield *fields;             /* the new field list */
    size_t n;
    const char *build;             /* field to (re)build, or NULL */
    const char *drop;              /* field to drop, or NULL */
    int pending;                   /* build every field with built == 2 */
    qv_progress_fn progress;
    void *arg;
} field_arg;

static int fields_write(qv_db *db, MDB_txn *txn, void *arg)
{
    field_arg *a = arg;
    qv_coll *c = a->c;
    char *pi = NULL, *cfg = NULL;
    int rc = QV_OK;

    for (size_t i = 0; rc == QV_OK && i < a->n; i++)
        if ((a->build && strcmp(a->fields[i].name, a->build) == 0) || (a->pending && a->fields[i].built == 2))
            rc = build_field(c, txn, a->fields[i].name, !strcmp(a->fields[i].type, "text"), a->progress, a->arg);
    if (rc == QV_OK && a->drop) {
        uint8_t prefix[6 + QV_PFIELD_MAX];
        size_t plen = qv_pkey_prefix(prefix, c->cid, a->drop, strlen(a->drop), 0) - 1;
        rc = qv_lmdb_del_prefix(txn, db->dbi[DBI_PINDEX], prefix, plen);
    }
    if (rc == QV_OK) rc = put_built(c, txn, a->fields, a->n);   /* built 1 and 2 both count */
    if (rc == QV_OK && (rc = fields_to_json(a->fields, a->n, 0, &pi)) == QV_OK &&
        (rc = qv_coll_config_encode(c->cid, &c->params, pi, &c->vdef, &cfg)) == QV_OK)
        rc = qv_lmdb_put(txn, db->dbi[DBI_COLLECTIONS], c->name, strlen(c->name), cfg, strlen(cfg));
    qv_free(pi);
    qv_free(cfg);
    return rc;
}

/* Install the new field list (and its JSON) in c after a committed fields_write. */
static int install_fields(qv_coll *c, qv_pfield *fields, size_t n)
{
    char *pi = NULL, **retired;
    int rc = fields_to_json(fields, n, 0, &pi);
    if (rc != QV_OK) return rc;
    /* room to retire the old string first, so nothing below can fail */
    if (!(retired = qv_reallocarray(c->retired_pi, c->nretired_pi + 1, sizeof *retired))) {
        qv_free(pi);
        return QV_ENOMEM;
    }
    c->retired_pi = retired;
    for (size_t i = 0; i < n; i++)
        if (fields[i].built == 2) fields[i].built = 1;
    pthread_rwlock_wrlock(&c->maplock);
    qv_pfield *old = c->pfields;
    size_t nold = c->npfields;
    char *oldpi = c->payload_index;
    c->pfields = fields;
    c->npfields = n;
    c->payload_index = pi;
    c->pfields_gen++;
    if (oldpi) c->retired_pi[c->nretired_pi++] = oldpi;   /* still readable through get_info */
    pthread_rwlock_unlock(&c->maplock);
    qv_pfields_free(old, nold);
    return QV_OK;
}

static int check_field(const char *field)
{
    if (!field) return qv_fail(QV_EINVAL, "field name is NULL");
    size_t n = strlen(field);
    if (n < 1 || n > QV_PFIELD_MAX) return qv_fail(QV_EINVAL, "indexed field name must be 1..%u bytes, got %zu", QV_PFIELD_MAX, n);
    char why[200];
    if (qv_payload_path_check(field, why, sizeof why) != QV_OK) return qv_fail(QV_EINVAL, "indexed field: %s", why);
    return QV_OK;
}

int qv_collection_index_field(qv_coll *c, const char *field, const char *type, qv_progress_fn progress, void *progress_arg)
{
    qv_pfield *nf = NULL;
    size_t n;
    int rc;
    if (!c) return qv_fail(QV_EINVAL, "collection is NULL");
    if ((rc = check_field(field)) != QV_OK) return rc;
    if (!type_ok(type))
        return qv_fail(QV_EINVAL, "field '%s': type must be \"keyword\", \"integer\", \"float\", \"bool\" or \"text\", got '%s'", field,
                       type ? type : "(null)");
    if ((rc = qv_db_check_writable(c->db, "index field")) != QV_OK) return rc;
    pthread_mutex_lock(&c->db->wmutex);
    n = c->npfields;
    if ((rc = qv_coll_check_live(c)) != QV_OK) goto cleanup;
    if ((rc = copy_fields(c->pfields, n, 1, &nf)) != QV_OK) goto cleanup;
    size_t i;
    for (i = 0; i < n && strcmp(nf[i].name, field) != 0; i++) {}
    /* text entries exist only for a "text" field: a change to or from it rebuilds */
    int rebuild = i == n || !nf[i].built || (!strcmp(nf[i].type, "text") != !strcmp(type, "text"));
    if (i == n) {
        if (!(nf[n].name = qv_strdup(field))) { rc = QV_ENOMEM; goto cleanup; }
        n++;
    }
    snprintf(nf[i].type, sizeof nf[i].type, "%s", type);
    nf[i].built = 1;
    field_arg a = {c, nf, n, rebuild ? field : NULL, NULL, 0, progress, progress_arg};
    if ((rc = qv_db_write(c->db, fields_write, &a)) != QV_OK) goto cleanup;
    if ((rc = install_fields(c, nf, n)) != QV_OK) goto cleanup;
    nf = NULL;
cleanup:
    pthread_mutex_unlock(&c->db->wmutex);
    qv_pfields_free(nf, n);
    return rc;
}

int qv_collection_unindex_field(qv_coll *c, const char *field)
{
    qv_pfield *nf = NULL;
    size_t n = 0, i;
    int rc;
    if (!c) return qv_fail(QV_EINVAL, "collection is NULL");
    if ((rc = check_field(field)) != QV_OK) return rc;
    if ((rc = qv_db_check_writable(c->db, "unindex field")) != QV_OK) return rc;
    pthread_mutex_lock(&c->db->wmutex);
    if ((rc = qv_coll_check_live(c)) != QV_OK) goto cleanup;
    for (i = 0; i < c->npfields && strcmp(c->pfields[i].name, field) != 0; i++) {}
    if (i == c->npfields) {
        rc = qv_fail(QV_ENOTFOUND, "collection '%s': field '%s' is not indexed", c->name, field);
        goto cleanup;
    }
    if ((rc = copy_fields(c->pfields, c->npfields, 0, &nf)) != QV_OK) goto cleanup;
    n = c->npfields;
    qv_free(nf[i].name);
    nf[i] = nf[--n];
    field_arg a = {c, nf, n, NULL, field, 0, NULL, NULL};
    if ((rc = qv_db_write(c->db, fields_write, &a)) != QV_OK) goto cleanup;
    if ((rc = install_fields(c, nf, n)) != QV_OK) goto cleanup;
    nf = NULL;
cleanup:
    pthread_mutex_unlock(&c->db->wmutex);
    qv_pfields_free(nf, n);
    return rc;
}

void qv_pindex_build_pending(qv_coll *c)
{
    qv_pfield *nf = NULL;
    size_t n = c->npfields, pending = 0;
    int rc;
    if (!c->db->has_pindex || (c->db->opt.flags & QV_DB_RDONLY)) return;
    for (size_t i = 0; i < n; i++) pending += !c->pfields[i].built && strlen(c->pfields[i].name) <= QV_PFIELD_MAX;
    if (!pending) return;
    if ((rc = copy_fields(c->pfields, n, 0, &nf)) != QV_OK) goto fail;
    for (size_t i = 0; i < n; i++)
        if (!nf[i].built && strlen(nf[i].name) <= QV_PFIELD_MAX) nf[i].built = 2;
    field_arg a = {c, nf, n, NULL, NULL, 1, NULL, NULL};
    if ((rc = qv_db_write(c->db, fields_write, &a)) != QV_OK) goto fail;
    if ((rc = install_fields(c, nf, n)) != QV_OK) goto fail;
    return;
fail:
    qv_pfields_free(nf, n);
    pthread_rwlock_wrlock(&c->maplock);
    qv_coll_warn(c, "collection '%s': building the payload index failed (filters on those fields read the payloads): %s",
                 c->name, qv_last_error());
    pthread_rwlock_unlock(&c->maplock);
}

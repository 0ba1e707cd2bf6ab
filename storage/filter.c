/*
 * storage/filter.c -- payload filters: the tree (qv_filter), its C builders, the JSON
 * parser and printer, and the reference evaluation against one payload.
 *
 * A filter is compiled once (parsed or built) and then evaluated many times, so the tree
 * keeps everything decoded: keys and strings copied, numbers converted, range bounds as
 * doubles with exclusive flags. qv_filter_eval_json() is the definition of what a filter
 * means; the planner (filter_plan.c) answers indexed conditions from the payload index
 * with exactly the same semantics (see filter.h for how values are indexed) and uses this
 * evaluator for the rest, so a search never depends on whether a field is indexed.
 *
 * Semantics: must = every condition passes; must_not = none passes; should = at least one
 * passes when there is any. A missing field fails match/range/is_null/exists. Arrays pass
 * match/range when any scalar element does. Numbers compare by value: an integer query
 * value equals the same integer or a real with the same value; ranges compare doubles.
 * has_id, Qdrant's condition on point ids, passes the points it lists: the planner answers
 * it from the id records, like an indexed field, wherever it stands in the tree.
 *
 * The parser treats its input as untrusted: every error is QV_EINVAL naming the place
 * ("filter.must[1].range: unknown operator 'ge'") and leaves nothing allocated.
 */
#include "storage/filter.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "storage/text.h"

static const char *const occur_names[3] = {"must", "must_not", "should"};

/* ---- lifetime ------------------------------------------------------------------------- */

static void cond_release(qv_fcond *c)
{
    qv_free(c->key);
    for (size_t i = 0; i < c->nvals; i++) qv_free(c->vals[i].s);
    qv_free(c->vals);
    qv_filter_free(c->sub);
    memset(c, 0, sizeof *c);
}

int qv_filter_new(qv_filter **out)
{
    if (!out) return qv_fail(QV_EINVAL, "out is NULL");
    *out = qv_calloc(1, sizeof **out);
    return *out ? QV_OK : QV_ENOMEM;
}

void qv_filter_free(qv_filter *f)
{
    if (!f) return;
    for (int o = 0; o < 3; o++) {
        for (size_t i = 0; i < f->n[o]; i++) cond_release(&f->conds[o][i]);
        qv_free(f->conds[o]);
    }
    qv_free(f);
}

/* Move *c into f under occur (f owns it then; on failure c is released). */
static int add_cond(qv_filter *f, qv_occur occur, qv_fcond *c)
{
    int o = (int)occur - 1;
    if (f->n[o] == f->cap[o]) {
        size_t ncap = f->cap[o] ? f->cap[o] * 2 : 4;
        qv_fcond *t = qv_reallocarray(f->conds[o], ncap, sizeof *t);
        if (!t) { cond_release(c); return QV_ENOMEM; }
        f->conds[o] = t;
        f->cap[o] = ncap;
    }
    f->conds[o][f->n[o]++] = *c;
    return QV_OK;
}

static char *dup_bytes(const char *s, size_t n)
{
    char *p = qv_malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static int copy_cond(const qv_fcond *in, qv_fcond *out)
{
    memset(out, 0, sizeof *out);
    *out = *in;
    out->key = NULL;
    out->vals = NULL;
    out->nvals = 0;
    out->sub = NULL;
    if (in->key && !(out->key = qv_strdup(in->key))) goto fail;
    if (in->nvals) {
        if (!(out->vals = qv_calloc(in->nvals, sizeof *out->vals))) goto fail;
        for (size_t i = 0; i < in->nvals; i++, out->nvals++) {
            out->vals[i] = in->vals[i];
            out->vals[i].s = NULL;
            if (in->vals[i].s && !(out->vals[i].s = dup_bytes(in->vals[i].s, in->vals[i].slen))) goto fail;
        }
    }
    if (in->sub && qv_filter_copy(in->sub, &out->sub) != QV_OK) goto fail;
    return QV_OK;
fail:
    cond_release(out);
    return QV_ENOMEM;
}

int qv_filter_copy(const qv_filter *f, qv_filter **out)
{
    qv_filter *g = NULL;
    int rc;
    if (!out) return qv_fail(QV_EINVAL, "out is NULL");
    *out = NULL;
    if (!f) return qv_fail(QV_EINVAL, "filter is NULL");
    if ((rc = qv_filter_new(&g)) != QV_OK) return rc;
    for (int o = 0; o < 3; o++)
        for (size_t i = 0; i < f->n[o]; i++) {
            qv_fcond c;
            if ((rc = copy_cond(&f->conds[o][i], &c)) != QV_OK || (rc = add_cond(g, (qv_occur)(o + 1), &c)) != QV_OK) {
                qv_filter_free(g);
                return rc;
            }
        }
    *out = g;
    return QV_OK;
}

/* ---- C builders ------------------------------------------------------------------------ */

static int check_args(const qv_filter *f, qv_occur occur, const char *key)
{
    if (!f) return qv_fail(QV_EINVAL, "filter is NULL");
    if (occur < QV_MUST || occur > QV_SHOULD) return qv_fail(QV_EINVAL, "occur must be QV_MUST, QV_MUST_NOT or QV_SHOULD, got %d", (int)occur);
    if (!key) return qv_fail(QV_EINVAL, "filter key is NULL");
    size_t n = strlen(key);
    if (n < 1 || n > QV_FILTER_KEY_MAX) return qv_fail(QV_EINVAL, "filter key must be 1..%u bytes, got %zu", QV_FILTER_KEY_MAX, n);
    char why[200];
    if (qv_payload_path_check(key, why, sizeof why) != QV_OK) return qv_fail(QV_EINVAL, "filter key %s", why);
    return QV_OK;
}

/* A leaf of kind on key with room for nvals values (zeroed). */
static int leaf_init(qv_fcond *c, int kind, const char *key, size_t nvals)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->lo = -INFINITY;
    c->hi = INFINITY;
    if (!(c->key = qv_strdup(key))) return QV_ENOMEM;
    if (nvals && !(c->vals = qv_calloc(nvals, sizeof *c->vals))) {
        cond_release(c);
        return QV_ENOMEM;
    }
    return QV_OK;
}

static int set_string(qv_fvalue *v, const char *s, size_t n)
{
    v->type = 's';
    v->slen = n;
    return (v->s = dup_bytes(s, n)) ? QV_OK : QV_ENOMEM;
}

int qv_filter_match_any(qv_filter *f, qv_occur occur, const char *key, const char *const *values, size_t n)
{
    qv_fcond c;
    int rc;
    if ((rc = check_args(f, occur, key)) != QV_OK) return rc;
    if (!values || n == 0) return qv_fail(QV_EINVAL, "filter on '%s': match_any needs at least one value", key);
    for (size_t i = 0; i < n; i++)
        if (!values[i]) return qv_fail(QV_EINVAL, "filter on '%s': value %zu is NULL", key, i);
    if ((rc = leaf_init(&c, FC_MATCH, key, n)) != QV_OK) return rc;
    c.any = 1;
    for (size_t i = 0; i < n; i++, c.nvals++)
        if ((rc = set_string(&c.vals[i], values[i], strlen(values[i]))) != QV_OK) {
            c.nvals++;
            cond_release(&c);
            return rc;
        }
    return add_cond(f, occur, &c);
}

int qv_filter_match(qv_filter *f, qv_occur occur, const char *key, const char *value)
{
    int rc = check_args(f, occur, key);
    if (rc != QV_OK) return rc;
    if (!value) return qv_fail(QV_EINVAL, "filter on '%s': value is NULL", key);
    rc = qv_filter_match_any(f, occur, key, &value, 1);
    if (rc == QV_OK) f->conds[occur - 1][f->n[occur - 1] - 1].any = 0;
    return rc;
}

int qv_filter_match_any_int(qv_filter *f, qv_occur occur, const char *key, const int64_t *values, size_t n)
{
    qv_fcond c;
    int rc;
    if ((rc = check_args(f, occur, key)) != QV_OK) return rc;
    if (!values || n == 0) return qv_fail(QV_EINVAL, "filter on '%s': match_any_int needs at least one value", key);
    if ((rc = leaf_init(&c, FC_MATCH, key, n)) != QV_OK) return rc;
    c.any = 1;
    for (size_t i = 0; i < n; i++) c.vals[i] = (qv_fvalue){.type = 'i', .i = values[i]};
    c.nvals = n;
    return add_cond(f, occur, &c);
}

int qv_filter_match_text(qv_filter *f, qv_occur occur, const char *key, const char *text)
{
    qv_fcond c;
    int rc;
    if ((rc = check_args(f, occur, key)) != QV_OK) return rc;
    if (!text) return qv_fail(QV_EINVAL, "filter on '%s': text is NULL", key);
    if ((rc = leaf_init(&c, FC_TEXT, key, 1)) != QV_OK) return rc;
    c.nvals = 1;
    if ((rc = set_string(&c.vals[0], text, strlen(text))) != QV_OK) {
        cond_release(&c);
        return rc;
    }
    return add_cond(f, occur, &c);
}

int qv_filter_match_int(qv_filter *f, qv_occur occur, const char *key, int64_t value)
{
    int rc = qv_filter_match_any_int(f, occur, key, &value, 1);
    if (rc == QV_OK) f->conds[occur - 1][f->n[occur - 1] - 1].any = 0;
    return rc;
}

int qv_filter_match_bool(qv_filter *f, qv_occur occur, const char *key, int value)
{
    qv_fcond c;
    int rc;
    if ((rc = check_args(f, occur, key)) != QV_OK) return rc;
    if ((rc = leaf_init(&c, FC_MATCH, key, 1)) != QV_OK) return rc;
    c.vals[0] = (qv_fvalue){.type = 'b', .i = value != 0};
    c.nvals = 1;
    return add_cond(f, occur, &c);
}

int qv_filter_range(qv_filter *f, qv_occur occur, const char *key, double lo, double hi, unsigned flags)
{
    qv_fcond c;
    int rc;
    if ((rc = check_args(f, occur, key)) != QV_OK) return rc;
    if (isnan(lo) || isnan(hi)) return qv_fail(QV_EINVAL, "filter on '%s': range bound is NaN", key);
    if (lo > hi) return qv_fail(QV_EINVAL, "filter on '%s': range lower bound %g is above upper bound %g", key, lo, hi);
    if (flags & ~(unsigned)(QV_RANGE_GT_LO | QV_RANGE_LT_HI))
        return qv_fail(QV_EINVAL, "filter on '%s': unknown range flags 0x%x", key, flags);
    if ((rc = leaf_init(&c, FC_RANGE, key, 0)) != QV_OK) return rc;
    c.lo = lo;
    c.hi = hi;
    c.flags = flags;
    return add_cond(f, occur, &c);
}

static int simple_leaf(qv_filter *f, qv_occur occur, const char *key, int kind)
{
    qv_fcond c;
    int rc;
    if ((rc = check_args(f, occur, key)) != QV_OK) return rc;
    if ((rc = leaf_init(&c, kind, key, 0)) != QV_OK) return rc;
    return add_cond(f, occur, &c);
}

int qv_filter_is_null(qv_filter *f, qv_occur occur, const char *key) { return simple_leaf(f, occur, key, FC_IS_NULL); }
int qv_filter_exists(qv_filter *f, qv_occur occur, const char *key) { return simple_leaf(f, occur, key, FC_EXISTS); }
int qv_filter_is_empty(qv_filter *f, qv_occur occur, const char *key) { return simple_leaf(f, occur, key, FC_IS_EMPTY); }

int qv_filter_nest(qv_filter *f, qv_occur occur, const qv_filter *sub)
{
    qv_fcond c;
    int rc;
    if (!f || !sub) return qv_fail(QV_EINVAL, "filter or sub-filter is NULL");
    if (occur < QV_MUST || occur > QV_SHOULD) return qv_fail(QV_EINVAL, "occur must be QV_MUST, QV_MUST_NOT or QV_SHOULD, got %d", (int)occur);
    if (f == sub) return qv_fail(QV_EINVAL, "a filter cannot be nested in itself");
    memset(&c, 0, sizeof c);
    c.kind = FC_NESTED;
    if ((rc = qv_filter_copy(sub, &c.sub)) != QV_OK) return rc;
    return add_cond(f, occur, &c);
}

/* ---- JSON parser ------------------------------------------------------------------------- */

#define MAX_DEPTH 32

/* The path of a part of the input for error messages ("filter.must[1].range"); long
 * paths are cut (vsnprintf, so no truncation warning at each call). */
static void subpath(char *buf, size_t n, const char *fmt, ...) QV_PRINTF(3, 4);
static void subpath(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
}

static int parse_filter_obj(json_t *o, const char *path, int depth, qv_filter *f);

static int parse_value(json_t *j, const char *path, qv_fvalue *v)
{
    memset(v, 0, sizeof *v);
    if (json_is_string(j)) return set_string(v, json_string_value(j), json_string_length(j));
    if (json_is_integer(j)) {
        v->type = 'i';
        v->i = (int64_t)json_integer_value(j);
        return QV_OK;
    }
    if (json_is_boolean(j)) {
        v->type = 'b';
        v->i = json_is_true(j);
        return QV_OK;
    }
    if (json_is_real(j))
        return qv_fail(QV_EINVAL, "%s: match value must be a string, integer or bool, got a real number (use range)", path);
    if (json_is_array(j)) return qv_fail(QV_EINVAL, "%s: match value must be a string, integer or bool, got an array (use {\"any\":[...]})", path);
    return qv_fail(QV_EINVAL, "%s: match value must be a string, integer or bool", path);
}

static int parse_values(json_t *arr, const char *path, qv_fcond *c)
{
    size_t n = json_array_size(arr);
    char p[300];
    if (n && !(c->vals = qv_calloc(n, sizeof *c->vals))) return QV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        subpath(p, sizeof p, "%s[%zu]", path, i);
        int rc = parse_value(json_array_get(arr, i), p, &c->vals[i]);
        if (rc != QV_OK) return rc;
        c->nvals++;
    }
    return QV_OK;
}

/* Qdrant's {"except":[...]}: the field has a value and it is none of them (an array
 * passes when no element is one of them), as a nested filter {must:[exists], must_not:
 * [match any]}; c->key is set. */
static int parse_except(json_t *v, const char *path, qv_fcond *c)
{
    qv_fcond x;
    int rc;
    if (!json_is_array(v)) return qv_fail(QV_EINVAL, "%s: must be an array of values", path);
    c->kind = FC_NESTED;
    if ((rc = qv_filter_new(&c->sub)) != QV_OK || (rc = qv_filter_exists(c->sub, QV_MUST, c->key)) != QV_OK) return rc;
    if (json_array_size(v) == 0) return QV_OK;
    if ((rc = leaf_init(&x, FC_MATCH, c->key, 0)) != QV_OK) return rc;
    x.any = 1;
    if ((rc = parse_values(v, path, &x)) != QV_OK) {
        cond_release(&x);
        return rc;
    }
    return add_cond(c->sub, QV_MUST_NOT, &x);
}

static int parse_match(json_t *m, const char *path, qv_fcond *c)
{
    char p[300];
    c->kind = FC_MATCH;
    if (!json_is_object(m)) {
        if (!(c->vals = qv_calloc(1, sizeof *c->vals))) return QV_ENOMEM;
        int rc = parse_value(m, path, &c->vals[0]);
        if (rc == QV_OK) c->nvals = 1;
        return rc;
    }
    const char *k, *op = NULL;
    json_t *v, *arg = NULL;
    json_object_foreach(m, k, v) {
        if (json_is_null(v)) continue;             /* Qdrant clients send unset fields as null */
        if (op) return qv_fail(QV_EINVAL, "%s: needs exactly one of \"value\", \"any\" or \"except\"", path);
        op = k;
        arg = v;
    }
    if (!op) return qv_fail(QV_EINVAL, "%s: needs exactly one of \"value\", \"any\" or \"except\"", path);
    subpath(p, sizeof p, "%s.%s", path, op);
    if (strcmp(op, "value") == 0) {
        if (!(c->vals = qv_calloc(1, sizeof *c->vals))) return QV_ENOMEM;
        int rc = parse_value(arg, p, &c->vals[0]);
        if (rc == QV_OK) c->nvals = 1;
        return rc;
    }
    if (strcmp(op, "any") == 0) {              /* [] matches nothing */
        if (!json_is_array(arg)) return qv_fail(QV_EINVAL, "%s: must be an array of values", p);
        c->any = 1;
        return parse_values(arg, p, c);
    }
    if (strcmp(op, "except") == 0) return parse_except(arg, p, c);
    if (strcmp(op, "text") == 0) {
        if (!json_is_string(arg)) return qv_fail(QV_EINVAL, "%s: must be a string", p);
        c->kind = FC_TEXT;
        if (!(c->vals = qv_calloc(1, sizeof *c->vals))) return QV_ENOMEM;
        c->nvals = 1;
        return set_string(&c->vals[0], json_string_value(arg), json_string_length(arg));
    }
    if (strcmp(op, "phrase") == 0 || strcmp(op, "text_any") == 0)
        return qv_fail(QV_EINVAL, "%s: full-text match '%s' is not supported (\"text\" is: every word present)", path, op);
    return qv_fail(QV_EINVAL, "%s: unknown operator '%s' (expected value, any, except or text)", path, op);
}

static int parse_range(json_t *r, const char *path, qv_fcond *c)
{
    const char *k;
    json_t *v;
    int have[4] = {0}, any = 0;
    c->kind = FC_RANGE;
    if (!json_is_object(r)) return qv_fail(QV_EINVAL, "%s: must be an object like {\"gte\":1,\"lt\":5}", path);
    json_object_foreach(r, k, v) {
        static const char *const ops[4] = {"gt", "gte", "lt", "lte"};
        int op = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(k, ops[i]) == 0) op = i;
        if (op < 0) return qv_fail(QV_EINVAL, "%s: unknown operator '%s' (expected gt, gte, lt or lte)", path, k);
        if (json_is_null(v)) continue;             /* an open side, as Qdrant clients send it */
        if (!json_is_number(v))
            return qv_fail(QV_EINVAL, "%s.%s: must be a number (datetime ranges are not supported)", path, k);
        double x = json_number_value(v);
        have[op] = any = 1;
        if (op < 2) {
            c->lo = x;
            if (op == 0) c->flags |= QV_RANGE_GT_LO;
        } else {
            c->hi = x;
            if (op == 2) c->flags |= QV_RANGE_LT_HI;
        }
    }
    if (!any) return qv_fail(QV_EINVAL, "%s: needs at least one of gt, gte, lt, lte", path);
    if (have[0] && have[1]) return qv_fail(QV_EINVAL, "%s: gt and gte together", path);
    if (have[2] && have[3]) return qv_fail(QV_EINVAL, "%s: lt and lte together", path);
    if (c->lo > c->hi) return qv_fail(QV_EINVAL, "%s: lower bound %g is above upper bound %g", path, c->lo, c->hi);
    return QV_OK;
}

static int parse_key(json_t *k, const char *path, qv_fcond *c)
{
    if (!json_is_string(k)) return qv_fail(QV_EINVAL, "%s.key: must be a string", path);
    size_t n = json_string_length(k);
    if (n < 1 || n > QV_FILTER_KEY_MAX) return qv_fail(QV_EINVAL, "%s.key: must be 1..%u bytes, got %zu", path, QV_FILTER_KEY_MAX, n);
    if (strlen(json_string_value(k)) != n) return qv_fail(QV_EINVAL, "%s.key: contains a NUL byte", path);
    char why[200];
    if (qv_payload_path_check(json_string_value(k), why, sizeof why) != QV_OK)
        return qv_fail(QV_EINVAL, "%s.key: %s", path, why);
    return (c->key = qv_strdup(json_string_value(k))) ? QV_OK : QV_ENOMEM;
}

static int parse_flag(json_t *v, const char *path, const char *op, qv_fcond *c, int kind)
{
    if (!json_is_boolean(v)) return qv_fail(QV_EINVAL, "%s.%s: must be true or false", path, op);
    c->kind = kind;
    c->negate = !json_is_true(v);
    return QV_OK;
}

/* Conditions of Qdrant's filter language that quiver does not evaluate: refused by name. */
static const char *const unsupported_ops[] = {"geo_bounding_box", "geo_radius", "geo_polygon", "values_count", NULL};
static const char *const unsupported_conds[][2] = {
    {"nested", "nested (array of objects) conditions are not supported; use a path key such as \"metadata.lang\""},
    {"has_vector", "has_vector conditions are not supported (no named vectors)"},
    {"text", "full-text conditions are not supported"},
};

static int cmp_id(const void *a, const void *b)
{
    int64_t x = ((const qv_fvalue *)a)->i, y = ((const qv_fvalue *)b)->i;
    return x < y ? -1 : x > y;
}

/* {"has_id":[ids]}: into vals, ascending, each once. */
static int parse_has_id(json_t *ids, const char *path, qv_fcond *c)
{
    size_t n = json_array_size(ids), k = 0;
    c->kind = FC_HAS_ID;
    if (!json_is_array(ids)) return qv_fail(QV_EINVAL, "%s.has_id: must be a list of point ids", path);
    if (n && !(c->vals = qv_calloc(n, sizeof *c->vals))) return QV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(ids, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return qv_fail(QV_EINVAL, "%s.has_id[%zu]: must be a point id (an integer 0..2^63-1)", path, i);
        c->vals[i] = (qv_fvalue){.type = 'i', .i = (int64_t)json_integer_value(v)};
    }
    if (n) qsort(c->vals, n, sizeof *c->vals, cmp_id);
    for (size_t i = 0; i < n; i++)
        if (k == 0 || c->vals[k - 1].i != c->vals[i].i) c->vals[k++] = c->vals[i];
    c->nvals = k;
    return QV_OK;
}

/* {"key":K, <one operator>}, {"is_null":{"key":K}}, {"has_id":[ids]}, or a nested filter.
 * Members whose value is null are absent (Qdrant's clients send unset fields that way). */
static int parse_cond(json_t *j, const char *path, int depth, qv_fcond *c)
{
    char p[300];
    memset(c, 0, sizeof *c);
    c->lo = -INFINITY;
    c->hi = INFINITY;
    if (!json_is_object(j)) return qv_fail(QV_EINVAL, "%s: condition must be a JSON object", path);
    json_t *key = json_object_get(j, "key");
    if (key) {
        const char *k;
        json_t *v;
        int rc, nops = 0;
        if ((rc = parse_key(key, path, c)) != QV_OK) return rc;
        json_object_foreach(j, k, v) {
            if (strcmp(k, "key") == 0 || json_is_null(v)) continue;
            if (++nops > 1) return qv_fail(QV_EINVAL, "%s: more than one operator (found '%s' too)", path, k);
            subpath(p, sizeof p, "%s.%s", path, k);
            if (strcmp(k, "match") == 0) rc = parse_match(v, p, c);
            else if (strcmp(k, "range") == 0) rc = parse_range(v, p, c);
            else if (strcmp(k, "is_null") == 0) rc = parse_flag(v, path, k, c, FC_IS_NULL);
            else if (strcmp(k, "exists") == 0) rc = parse_flag(v, path, k, c, FC_EXISTS);
            else if (strcmp(k, "is_empty") == 0) rc = parse_flag(v, path, k, c, FC_IS_EMPTY);
            else {
                for (size_t i = 0; unsupported_ops[i]; i++)
                    if (strcmp(k, unsupported_ops[i]) == 0)
                        return qv_fail(QV_EINVAL, "%s: %s conditions are not supported", path, k);
                return qv_fail(QV_EINVAL, "%s: unknown operator '%s' (expected match, range, is_null, exists or is_empty)", path, k);
            }
            if (rc != QV_OK) return rc;
        }
        if (!nops) return qv_fail(QV_EINVAL, "%s: condition on '%s' has no operator (match, range, is_null, exists or is_empty)", path, c->key);
        return QV_OK;
    }
    if (json_object_get(j, "has_id") && json_object_size(j) == 1) return parse_has_id(json_object_get(j, "has_id"), path, c);
    json_t *qn = json_object_get(j, "is_null"), *qe = json_object_get(j, "is_empty");
    if ((qn || qe) && json_object_size(j) == 1) {
        json_t *inner = qn ? qn : qe;
        subpath(p, sizeof p, "%s.%s", path, qn ? "is_null" : "is_empty");
        if (!json_is_object(inner) || json_object_size(inner) != 1 || !json_object_get(inner, "key"))
            return qv_fail(QV_EINVAL, "%s: must be {\"key\":\"field\"}", p);
        c->kind = qn ? FC_IS_NULL : FC_IS_EMPTY;
        return parse_key(json_object_get(inner, "key"), p, c);
    }
    for (size_t i = 0; i < sizeof unsupported_conds / sizeof unsupported_conds[0]; i++)
        if (json_object_get(j, unsupported_conds[i][0]))
            return qv_fail(QV_EINVAL, "%s: %s", path, unsupported_conds[i][1]);
    if (json_object_get(j, "must") || json_object_get(j, "must_not") || json_object_get(j, "should") ||
        json_object_get(j, "min_should")) {
        if (depth >= MAX_DEPTH) return qv_fail(QV_EINVAL, "%s: filter nested deeper than %d levels", path, MAX_DEPTH);
        int rc = qv_filter_new(&c->sub);
        if (rc != QV_OK) return rc;
        c->kind = FC_NESTED;
        return parse_filter_obj(j, path, depth + 1, c->sub);
    }
    if (json_object_size(j) == 0) return qv_fail(QV_EINVAL, "%s: empty condition (missing key)", path);
    return qv_fail(QV_EINVAL, "%s: condition needs a \"key\" (or a nested must/must_not/should)", path);
}

/* must / must_not / should: a list of conditions, one condition, or null (none); an empty
 * list is no condition, so {"must":[]} passes everything, nested or not. */
static int parse_filter_obj(json_t *o, const char *path, int depth, qv_filter *f)
{
    const char *k;
    json_t *v;
    char p[300];
    json_object_foreach(o, k, v) {
        int occ = -1;
        for (int i = 0; i < 3; i++)
            if (strcmp(k, occur_names[i]) == 0) occ = i;
        if (strcmp(k, "min_should") == 0) {
            if (json_is_null(v)) continue;
            return qv_fail(QV_EINVAL, "%s.min_should: is not supported", path);
        }
        if (occ < 0) return qv_fail(QV_EINVAL, "%s: unknown key '%s' (expected must, must_not or should)", path, k);
        if (json_is_null(v)) continue;
        size_t n = json_is_array(v) ? json_array_size(v) : 1;
        if (!json_is_array(v) && !json_is_object(v))
            return qv_fail(QV_EINVAL, "%s.%s: must be an array of conditions", path, k);
        for (size_t i = 0; i < n; i++) {
            qv_fcond c;
            subpath(p, sizeof p, "%s.%s[%zu]", path, k, i);
            int rc = parse_cond(json_is_array(v) ? json_array_get(v, i) : v, p, depth, &c);
            if (rc != QV_OK) {
                cond_release(&c);
                return rc;
            }
            if ((rc = add_cond(f, (qv_occur)(occ + 1), &c)) != QV_OK) return rc;
        }
    }
    return QV_OK;
}

int qv_filter_parse(const char *json, qv_filter **out)
{
    json_error_t err;
    json_t *o = NULL;
    qv_filter *f = NULL;
    int rc;

    if (!out) return qv_fail(QV_EINVAL, "out is NULL");
    *out = NULL;
    if (!json) return qv_fail(QV_EINVAL, "filter JSON is NULL");
    if (!(o = json_loads(json, JSON_REJECT_DUPLICATES, &err)))
        return qv_fail(QV_EINVAL, "filter: invalid JSON at line %d column %d: %s", err.line, err.column, err.text);
    if (!json_is_object(o)) {
        rc = qv_fail(QV_EINVAL, "filter: must be a JSON object like {\"must\":[...]}");
        goto cleanup;
    }
    if ((rc = qv_filter_new(&f)) != QV_OK) goto cleanup;
    if (json_object_get(o, "key")) {   /* a lone condition: as if {"must":[it]} */
        qv_fcond c;
        if ((rc = parse_cond(o, "filter", 0, &c)) != QV_OK) {
            cond_release(&c);
            goto cleanup;
        }
        rc = add_cond(f, QV_MUST, &c);
    } else {
        rc = parse_filter_obj(o, "filter", 0, f);
    }
    if (rc != QV_OK) goto cleanup;
    *out = f;
    f = NULL;
cleanup:
    qv_filter_free(f);
    json_decref(o);
    return rc;
}

/* ---- JSON printer ------------------------------------------------------------------------ */

static json_t *value_json(const qv_fvalue *v)
{
    if (v->type == 's') return json_stringn(v->s, v->slen);
    if (v->type == 'i') return json_integer((json_int_t)v->i);
    return json_boolean(v->i);
}

static json_t *filter_json(const qv_filter *f);

static json_t *cond_json(const qv_fcond *c)
{
    json_t *o = NULL, *x = NULL;
    if (c->kind == FC_NESTED) {
        /* an empty sub-filter as {"must":[]}: a condition {} would not parse back */
        if (!c->sub->n[0] && !c->sub->n[1] && !c->sub->n[2]) return json_pack("{s:[]}", "must");
        return filter_json(c->sub);
    }
    if (c->kind == FC_HAS_ID) {
        if (!(x = json_array())) return NULL;
        for (size_t i = 0; i < c->nvals; i++)
            if (json_array_append_new(x, value_json(&c->vals[i])) != 0) goto fail;
        return json_pack("{s:o}", "has_id", x);
    }
    if (!(o = json_object()) || json_object_set_new(o, "key", json_string(c->key)) != 0) goto fail;
    switch (c->kind) {
    case FC_MATCH:
        if (c->any) {
            json_t *arr = json_array();
            if (!arr || !(x = json_pack("{s:o}", "any", arr))) goto fail;
            for (size_t i = 0; i < c->nvals; i++)
                if (json_array_append_new(arr, value_json(&c->vals[i])) != 0) goto fail;
        } else {
            x = value_json(&c->vals[0]);
        }
        if (json_object_set_new(o, "match", x) != 0) { x = NULL; goto fail; }
        return o;
    case FC_TEXT:
        if (!(x = json_pack("{s:s%}", "text", c->vals[0].s, c->vals[0].slen))) goto fail;
        if (json_object_set_new(o, "match", x) != 0) { x = NULL; goto fail; }
        return o;
    case FC_RANGE:
        if (!(x = json_object())) goto fail;
        if (isfinite(c->lo) && json_object_set_new(x, c->flags & QV_RANGE_GT_LO ? "gt" : "gte", json_real(c->lo)) != 0) goto fail;
        if (isfinite(c->hi) && json_object_set_new(x, c->flags & QV_RANGE_LT_HI ? "lt" : "lte", json_real(c->hi)) != 0) goto fail;
        if (json_object_set_new(o, "range", x) != 0) { x = NULL; goto fail; }
        return o;
    default: {
        const char *op = c->kind == FC_IS_NULL ? "is_null" : c->kind == FC_EXISTS ? "exists" : "is_empty";
        if (json_object_set_new(o, op, json_boolean(!c->negate)) != 0) goto fail;
        return o;
    }
    }
fail:
    json_decref(x);
    json_decref(o);
    return NULL;
}

static json_t *filter_json(const qv_filter *f)
{
    json_t *o = json_object();
    if (!o) return NULL;
    for (int k = 0; k < 3; k++) {
        if (!f->n[k]) continue;
        json_t *arr = json_array();
        if (!arr || json_object_set_new(o, occur_names[k], arr) != 0) goto fail;
        for (size_t i = 0; i < f->n[k]; i++) {
            json_t *c = cond_json(&f->conds[k][i]);
            if (!c || json_array_append_new(arr, c) != 0) goto fail;
        }
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

int qv_filter_to_json(const qv_filter *f, char **json)
{
    if (!json) return qv_fail(QV_EINVAL, "json is NULL");
    *json = NULL;
    if (!f) return qv_fail(QV_EINVAL, "filter is NULL");
    json_t *o = filter_json(f);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s) return qv_fail(QV_ENOMEM, "out of memory printing a filter");
    *json = qv_strdup(s);
    free(s);
    return *json ? QV_OK : QV_ENOMEM;
}

/* ---- evaluation -------------------------------------------------------------------------- */

/* ---- payload paths ------------------------------------------------------------------------
 * A key is a path of object keys separated by '.', as in Qdrant: "a.b" is key b of the
 * object under key a, never a top-level key named "a.b". A segment in double quotes is
 * taken as it is, dots included: "\"a.b\"" is the top-level key a.b, "x.\"a.b\"" key a.b
 * under x. Empty raw segments ("a..b", ".a", "a.") and unbalanced quotes are malformed. */

/* The segment at *p (into seg, n); *p moves past it and its dot. 1, or 0 when malformed. */
static int next_segment(const char **p, const char **seg, size_t *n)
{
    const char *s = *p, *after;
    if (*s == '"') {
        const char *close = strchr(s + 1, '"');
        if (!close) return 0;
        *seg = s + 1;
        *n = (size_t)(close - s - 1);
        after = close + 1;
        if (*after && *after != '.') return 0;
    } else {
        const char *dot = strchr(s, '.');
        *seg = s;
        *n = dot ? (size_t)(dot - s) : strlen(s);
        if (*n == 0) return 0;
        after = s + *n;
    }
    if (*after == '.') {
        if (!after[1]) return 0;              /* "a." */
        after++;
    }
    *p = after;
    return 1;
}

int qv_payload_path_check(const char *key, char *why, size_t len)
{
    const char *p = key, *seg;
    size_t n;
    while (*p)
        if (!next_segment(&p, &seg, &n)) {
            snprintf(why, len, "'%.64s' is not a payload path (an empty segment or an unbalanced quote; "
                               "quote a key that holds dots: \"\\\"a.b\\\"\")", key);
            return QV_EINVAL;
        }
    if (!*key) {
        snprintf(why, len, "empty payload path");
        return QV_EINVAL;
    }
    return QV_OK;
}

json_t *qv_payload_parent(json_t *payload, const char *key, const char **last, size_t *lastlen)
{
    const char *p = key;
    json_t *v = payload;
    if (!*p) return NULL;
    for (;;) {
        if (!json_is_object(v) || !next_segment(&p, last, lastlen)) return NULL;
        if (!*p) return v;
        if (!(v = json_object_getn(v, *last, *lastlen))) return NULL;
    }
}

json_t *qv_payload_field(json_t *payload, const char *key)
{
    const char *last;
    size_t n;
    if (!strpbrk(key, ".\"")) return json_is_object(payload) ? json_object_get(payload, key) : NULL;
    json_t *parent = qv_payload_parent(payload, key, &last, &n);
    return parent ? json_object_getn(parent, last, n) : NULL;
}

static int value_eq(json_t *j, const qv_fvalue *v)
{
    switch (v->type) {
    case 's':
        return json_is_string(j) && json_string_length(j) == v->slen && memcmp(json_string_value(j), v->s, v->slen) == 0;
    case 'i':
        if (json_is_integer(j)) return (int64_t)json_integer_value(j) == v->i;
        return json_is_real(j) && json_real_value(j) == (double)v->i;
    default:
        return json_is_boolean(j) && json_is_true(j) == (v->i != 0);
    }
}

static int scalar_match(json_t *j, const qv_fcond *c)
{
    if (c->kind == FC_MATCH) {
        for (size_t i = 0; i < c->nvals; i++)
            if (value_eq(j, &c->vals[i])) return 1;
        return 0;
    }
    if (!json_is_number(j)) return 0;
    double x = json_number_value(j);
    int lo_ok = c->flags & QV_RANGE_GT_LO ? x > c->lo : x >= c->lo;
    int hi_ok = c->flags & QV_RANGE_LT_HI ? x < c->hi : x <= c->hi;
    return lo_ok && hi_ok;
}

static int cond_eval(const qv_fcond *c, json_t *payload, uint64_t id)
{
    int r = 0;
    qv_fvalue key = {.type = 'i', .i = (int64_t)id};
    if (c->kind == FC_NESTED) return qv_filter_eval_json(c->sub, payload, id);
    if (c->kind == FC_HAS_ID) return id <= QV_MAX_ID && c->nvals && bsearch(&key, c->vals, c->nvals, sizeof key, cmp_id);
    json_t *v = qv_payload_field(payload, c->key);
    switch (c->kind) {
    case FC_MATCH:
    case FC_RANGE:
        if (!v) r = 0;
        else if (json_is_array(v)) {
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) if (scalar_match(e, c)) { r = 1; break; }
        } else {
            r = scalar_match(v, c);
        }
        break;
    case FC_TEXT:
        if (v && json_is_string(v) &&
            qv_text_contains_all(json_string_value(v), json_string_length(v), c->vals[0].s, c->vals[0].slen, &r) != QV_OK)
            r = 0;                 /* out of memory: fails the point, as a search that cannot run it */
        break;
    case FC_IS_NULL: r = v && json_is_null(v); break;
    case FC_EXISTS: r = v && !json_is_null(v); break;
    case FC_IS_EMPTY: r = !v || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0); break;
    }
    return c->negate ? !r : r;
}

int qv_filter_eval_json(const qv_filter *f, json_t *payload, uint64_t id)
{
    for (size_t i = 0; i < f->n[0]; i++)
        if (!cond_eval(&f->conds[0][i], payload, id)) return 0;
    for (size_t i = 0; i < f->n[1]; i++)
        if (cond_eval(&f->conds[1][i], payload, id)) return 0;
    if (!f->n[2]) return 1;
    for (size_t i = 0; i < f->n[2]; i++)
        if (cond_eval(&f->conds[2][i], payload, id)) return 1;
    return 0;
}

size_t qv_filter_leaves(const qv_filter *f)
{
    size_t n = 0;
    for (int o = 0; o < 3; o++)
        for (size_t i = 0; i < f->n[o]; i++)
            n += f->conds[o][i].kind == FC_NESTED ? qv_filter_leaves(f->conds[o][i].sub) : 1;
    return n;
}

int qv_filter_eval(const qv_filter *f, const char *payload_json, int *pass)
{
    json_t *o = NULL;
    json_error_t err;
    if (!f || !pass) return qv_fail(QV_EINVAL, "filter or pass is NULL");
    *pass = 0;
    if (payload_json) {
        if (!(o = json_loads(payload_json, 0, &err)))
            return qv_fail(QV_EINVAL, "payload: invalid JSON at line %d column %d: %s", err.line, err.column, err.text);
        if (!json_is_object(o)) {
            json_decref(o);
            return qv_fail(QV_EINVAL, "payload must be a JSON object");
        }
    }
    *pass = qv_filter_eval_json(f, o, UINT64_MAX);
    json_decref(o);
    return QV_OK;
}

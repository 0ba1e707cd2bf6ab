/*
 * api/qdrant.c -- Qdrant's JSON dialect: point ids, payload shaping, filter translation, and
 * the search / query bodies (with their scores as Qdrant shows them).
 *
 * Ids: see server/qdrant.h. The UUID hash is a splitmix64-style mix of both halves, so that
 * UUIDs differing in any bit land far apart; bit 62 marks UUID points, so they never
 * collide with integer ids (which must stay below 2^62).
 *
 * Filters: the library's parser (qv_filter_parse) reads Qdrant's filter language itself
 * (null members, a lone condition for a list, match value/any/except, ranges with null
 * sides, is_empty/is_null, has_id, nested must/should/must_not, dot paths) and refuses
 * what it has no counterpart for (geo, full text, values_count, datetime ranges, nested
 * object arrays, min_should) by name, so both APIs accept the same filters. Left here:
 * the UUIDs of has_id lists become the internal ids the library knows, and filters on the
 * reserved key QD_UUID_KEY are refused (the key is the API's bookkeeping, hidden from
 * reads).
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"

static int failf(char *msg, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int failf(char *msg, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, len, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- ids ------------------------------------------------------------------------ */

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Hyphenated (8-4-4-4-12), simple (32 hex), braced or urn:uuid: forms. */
static int uuid_parse(const char *s, size_t n, uint64_t *iid, qd_uuid *u)
{
    uint8_t b[16];
    if (n > 9 && strncasecmp(s, "urn:uuid:", 9) == 0) { s += 9; n -= 9; }
    if (n == 38 && s[0] == '{' && s[37] == '}') { s++; n -= 2; }
    int hyph = n == 36;
    if (!hyph && n != 32) return -1;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (hyph && (i == 8 || i == 13 || i == 18 || i == 23)) {
            if (s[i] != '-') return -1;
            continue;
        }
        int h = hexval((unsigned char)s[i]), l;
        if (h < 0 || i + 1 >= n || (l = hexval((unsigned char)s[i + 1])) < 0) return -1;
        b[j++] = (uint8_t)(h << 4 | l);
        i++;
    }
    if (j != 16) return -1;
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 8; i++) hi = hi << 8 | b[i];
    for (int i = 8; i < 16; i++) lo = lo << 8 | b[i];
    *iid = QD_UUID_BIT | ((mix64(hi) ^ mix64(lo ^ 0x5851f42d4c957f2dull)) & (QD_UUID_BIT - 1));
    char *o = u->text;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *o++ = '-';
        o += sprintf(o, "%02x", b[i]);
    }
    return 0;
}

/* An integer id -> internal id: integers below 2^62 are quiver ids as they are. */
static int int_id(long long v, uint64_t *iid, char *msg, size_t len)
{
    if (v < 0) return failf(msg, len, "point ids are unsigned integers or UUIDs, got %lld", v);
    if ((uint64_t)v >= QD_UUID_BIT) return failf(msg, len, "integer point ids must be below 2^62 (4611686018427387904)");
    *iid = (uint64_t)v;
    return 0;
}

int qd_id_parse_str(const char *s, uint64_t *iid, qd_uuid *u)
{
    u->text[0] = 0;
    if (api_parse_id(s, iid) == 0) return *iid & QD_UUID_BIT ? -1 : 0;
    return uuid_parse(s, strlen(s), iid, u);
}

int qd_jread_id(api_jread *rd, uint64_t *iid, qd_uuid *u)
{
    char s[80], *end;
    size_t len;
    api_jtext t;
    u->text[0] = 0;
    if (api_jpeek(rd, "\"")) {
        if (api_jread_string(rd, s, sizeof s, &len) < 0) return -1;
        if (len < sizeof s && uuid_parse(s, len, iid, u) == 0) return 0;
        return api_jbad(rd, 0, "invalid_argument", "%s: Unable to parse UUID: '%.64s'", api_jwhere(rd), s);
    }
    if (api_jread_text(rd, &t)) return -1;
    *iid = t.p[0] != '-' ? strtoull(t.p, &end, 10) : 0;
    if (t.p[0] != '-' && end == t.p + t.len && *iid < QD_UUID_BIT) return 0;
    return api_jbad(rd, 0, "invalid_argument", "%s: point ids are unsigned integers below 2^62 or UUID strings", api_jwhere(rd));
}

/* An id of a has_id list. */
static int tree_id(const json_t *v, uint64_t *iid, char *msg, size_t len)
{
    qd_uuid u;
    if (json_is_integer(v)) return int_id(json_integer_value(v), iid, msg, len);
    if (json_is_string(v) && uuid_parse(json_string_value(v), json_string_length(v), iid, &u) == 0) return 0;
    return failf(msg, len, "point ids are unsigned integers or UUID strings");
}

static int string_array(const json_t *a)
{
    if (!json_is_array(a)) return 0;
    for (size_t i = 0; i < json_array_size(a); i++)
        if (!json_is_string(json_array_get(a, i))) return 0;
    return 1;
}

/* Any value, kept as a tree at out; 1 (refused) when jansson cannot load it. The scanner
 * has checked the text as jansson would, so that is out of memory, unless the two
 * disagree: then the body is called malformed, not the server short of memory. */
static int read_tree(api_jread *rd, json_t **out)
{
    api_jtext t;
    json_error_t err;
    if (api_jread_text(rd, &t)) return -1;
    if ((*out = json_loadb(t.p, t.len, JSON_DECODE_ANY, &err))) return 0;
    if (json_error_code(&err) == json_error_out_of_memory) return api_jbad(rd, 0, "out_of_memory", "out of memory");
    return api_jbad(rd, 0, "invalid_json", "'%s': malformed JSON", rd->path);
}

int qd_jread_keys(api_jread *rd, void *out)
{
    int rc = read_tree(rd, out);
    if (rc == 0 && !string_array(*(json_t **)out)) return api_jbad(rd, 0, "invalid_argument", "'%s' must be a list of strings", rd->path);
    return rc;
}

int qd_jread_selector(api_jread *rd, void *sel)
{
    json_t *v;
    int rc = read_tree(rd, sel);
    if (rc || json_is_boolean(v = *(json_t **)sel) || string_array(v)) return rc;
    if (json_is_object(v) && json_object_size(v) == 1 &&
        (string_array(json_object_get(v, "include")) || string_array(json_object_get(v, "exclude"))))
        return 0;
    return api_jbad(rd, 0, "invalid_argument", "with_payload must be true, false, a list of keys, "
                                               "{\"include\":[keys]} or {\"exclude\":[keys]}");
}

/* ---- quantization_config ------------------------------------------------------------ */

/* One method of quantization_config as read; the scalar method's other settings
 * (quantile, always_ram) are accepted with nothing to set: quiverd picks its own ranges
 * and keeps codes in RAM. */
typedef struct {
    int methods, quant, scalar_type;
    double quantile;
} quant_read;

static int read_scalar(api_jread *rd, void *dst)
{
    static const char *const types[] = {"int8", NULL};
    static const api_jfield scalar_fields[] = {
        {"type", API_J_NAME, offsetof(quant_read, scalar_type), 1, .arg = types, .required = 1},
        {"quantile", API_J_NUM, .off = offsetof(quant_read, quantile)},
        {0},
    };
    quant_read *b = dst;
    b->quantile = 1;
    b->methods++;
    b->quant = QV_QUANT_SQ8;
    int rc = api_jread_object(rd, scalar_fields, b);
    if (rc == 0 && !(b->quantile >= 0.5 && b->quantile <= 1))
        return api_jbad(rd, 0, "invalid_argument", "'%s.quantile' must be 0.5..1", rd->path);
    return rc;
}

static int read_binary(api_jread *rd, void *dst)
{
    static const api_jfield binary_fields[] = {{0}};
    quant_read *b = dst;
    b->methods++;
    b->quant = QV_QUANT_BIT1;
    return api_jread_object(rd, binary_fields, b);
}

static int read_product(api_jread *rd, void *dst)
{
    (void)dst;
    return api_jbad(rd, 1, "invalid_argument", "product quantization is not supported by quiverd (scalar int8 and binary are)");
}

int qd_jread_quantization(api_jread *rd, void *out)
{
    static const api_jfield quantization_fields[] = {
        {"scalar", API_J_CALL, .read = read_scalar},
        {"binary", API_J_CALL, .read = read_binary},
        {"product", API_J_CALL, .read = read_product},
        {0},
    };
    qd_quantization *q = out;
    const char *shapes = q->allow_disabled ? "{\"scalar\": {\"type\": \"int8\"}}, {\"binary\": {}} or \"Disabled\""
                                           : "{\"scalar\": {\"type\": \"int8\"}} or {\"binary\": {}}";
    if (api_jpeek(rd, "\"")) {
        char s[16];
        size_t len;
        int rc = api_jread_string(rd, s, sizeof s, &len);
        if (rc) return rc;
        if (!q->allow_disabled || len != 8 || strcmp(s, "Disabled") != 0)
            return api_jbad(rd, 0, "invalid_argument", "'%s' must be %s", rd->path, shapes);
        q->set = 1;
        q->quant = QV_QUANT_NONE;
        return 0;
    }
    quant_read b = {0};
    int rc = api_jread_object(rd, quantization_fields, &b);
    if (rc == 0 && b.methods != 1) return api_jbad(rd, 0, "invalid_argument", "'%s' must be %s", rd->path, shapes);
    if (rc == 0) {
        q->set = 1;
        q->quant = b.quant;
    }
    return rc;
}

static int in_list(const json_t *a, const char *key)
{
    for (size_t i = 0; i < json_array_size(a); i++)
        if (strcmp(json_string_value(json_array_get(a, i)), key) == 0) return 1;
    return 0;
}

static int payload_wanted(const json_t *sel, int dflt)
{
    if (!sel || json_is_null(sel)) return dflt;
    if (json_is_boolean(sel)) return json_is_true(sel);
    return json_is_array(sel) || json_is_object(sel);
}

/* Whether a payload key is shown for selector sel (checked by qd_jread_selector). */
static int keep_key(const char *key, void *arg)
{
    const json_t *sel = arg;
    if (strcmp(key, QD_UUID_KEY) == 0) return 0;
    if (json_is_array(sel)) return in_list(sel, key);
    if (json_is_object(sel)) {
        const json_t *inc = json_object_get(sel, "include"), *exc = json_object_get(sel, "exclude");
        return (!inc || in_list(inc, key)) && !(exc && in_list(exc, key));
    }
    return 1;
}

api_point_style qd_point_style(const json_t *sel, int dflt, int with_vector, int scores)
{
    api_point_style st = {.qdrant = 1, .scores = scores, .payload = payload_wanted(sel, dflt), .keep = keep_key,
                          .keep_arg = (void *)sel, .id_key = QD_UUID_KEY, .id_key_bit = QD_UUID_BIT,
                          .with_vector = with_vector};
    return st;
}

/* ---- sparse vectors ------------------------------------------------------------- */

void qd_sparse_release(qd_sparse *s)
{
    free(s->idx);
    free(s->val);
    s->idx = NULL;
    s->val = NULL;
    s->ni = s->nv = s->cap_i = s->cap_v = 0;
}

void qd_point_release(qd_point *p)
{
    for (size_t i = 0; i < p->nsp; i++) qd_sparse_release(&p->sp[i]);
    p->nsp = 0;
}

static int grow(void **a, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) return 0;
    size_t c = *cap ? *cap * 2 : 16;
    void *b = realloc(*a, c * size);
    if (!b) return -1;
    *a = b;
    *cap = c;
    return 0;
}

static int read_index(api_jread *rd, size_t i, void *sp)
{
    qd_sparse *s = sp;
    uint64_t v;
    int rc = api_jread_uint(rd, 0, UINT32_MAX, &v);
    (void)i;
    if (rc) return rc;
    if (grow((void **)&s->idx, &s->cap_i, s->ni, sizeof *s->idx)) return api_jbad(rd, 1, "out_of_memory", "out of memory");
    s->idx[s->ni++] = (uint32_t)v;
    return 0;
}

static int read_value(api_jread *rd, size_t i, void *sp)
{
    static const api_jfield num = {"value", API_J_NUM, .off = 0};
    qd_sparse *s = sp;
    double d = NAN;
    int rc = api_jread_field(rd, &num, &d);
    (void)i;
    if (rc) return rc;
    if (!isfinite(d) || fabs(d) > 3.4028234663852886e38)
        return api_jbad(rd, 0, "invalid_argument", "%s: sparse values must be finite numbers in float range", api_jwhere(rd));
    if (grow((void **)&s->val, &s->cap_v, s->nv, sizeof *s->val)) return api_jbad(rd, 1, "out_of_memory", "out of memory");
    s->val[s->nv++] = (float)d;
    return 0;
}

static int read_indices(api_jread *rd, void *sp) { return api_jread_array(rd, read_index, sp); }
static int read_values(api_jread *rd, void *sp) { return api_jread_array(rd, read_value, sp); }

static const api_jfield sparse_fields[] = {
    {"indices", API_J_CALL, .read = read_indices, .required = 1},
    {"values", API_J_CALL, .read = read_values, .required = 1},
    {0},
};

/* Sort by index (insertion sort: sparse vectors of text are short; pairs move together). */
static void sort_pairs(qd_sparse *s)
{
    for (size_t i = 1; i < s->ni; i++) {
        uint32_t k = s->idx[i];
        float v = s->val[i];
        size_t j = i;
        for (; j > 0 && s->idx[j - 1] > k; j--) {
            s->idx[j] = s->idx[j - 1];
            s->val[j] = s->val[j - 1];
        }
        s->idx[j] = k;
        s->val[j] = v;
    }
}

int qd_jread_sparse(api_jread *rd, void *sp)
{
    qd_sparse *s = sp;
    int rc = api_jread_object(rd, sparse_fields, s);
    if (rc) return rc;
    if (s->ni != s->nv)
        return api_jbad(rd, 0, "invalid_argument", "%s: indices and values must have the same length (%zu and %zu)",
                        api_jwhere(rd), s->ni, s->nv);
    if (s->ni > QV_MAX_SPARSE_NNZ)
        return api_jbad(rd, 0, "invalid_argument", "%s: at most %u sparse entries", api_jwhere(rd), QV_MAX_SPARSE_NNZ);
    sort_pairs(s);
    for (size_t i = 1; i < s->ni; i++)
        if (s->idx[i] == s->idx[i - 1])
            return api_jbad(rd, 0, "invalid_argument", "%s: indices must be unique: %u is repeated", api_jwhere(rd), s->idx[i]);
    return 0;
}

/* ---- the upsert body ---------------------------------------------------------- */

static int read_point_id(api_jread *rd, void *pt)
{
    qd_point *p = pt;
    return qd_jread_id(rd, &p->id, &p->u);
}

/* One named vector of a point: the dense one (an array; one per point) or a sparse one. */
static int read_named(api_jread *rd, void *pt)
{
    qd_point *p = pt;
    char name[QV_SPARSE_NAME_MAX + 1];
    if (rd->klen > QV_SPARSE_NAME_MAX)
        return api_jbad(rd, 1, "invalid_argument", "%s: vector names are at most %u bytes", api_jwhere(rd), QV_SPARSE_NAME_MAX);
    snprintf(name, sizeof name, "%s", rd->key);
    if (api_jpeek(rd, "[")) {
        if (p->has_dense)
            return api_jbad(rd, 1, "invalid_argument", "%s: a quiverd collection has one dense vector, '%s' is a second one",
                            api_jwhere(rd), name);
        p->has_dense = p->named = 1;
        snprintf(p->dname, sizeof p->dname, "%s", name);
        return api_jread_vector(rd, p->vec);
    }
    if (p->nsp == QV_MAX_SPARSE_VECTORS)
        return api_jbad(rd, 1, "invalid_argument", "%s: at most %u sparse vectors", api_jwhere(rd), QV_MAX_SPARSE_VECTORS);
    qd_sparse *s = &p->sp[p->nsp++];
    snprintf(s->name, sizeof s->name, "%s", name);
    return qd_jread_sparse(rd, s);
}

static const api_jfield named_fields[] = {{"*", API_J_CALL, .read = read_named}, {0}};

/* "vector": the dense vector, or {"name": vector, ...} */
static int read_point_vector(api_jread *rd, void *pt)
{
    qd_point *p = pt;
    if (api_jpeek(rd, "{")) return api_jread_object(rd, named_fields, p);
    p->has_dense = 1;
    return api_jread_vector(rd, p->vec);
}

static const api_jfield point_fields[] = {
    {"id", API_J_CALL, .read = read_point_id, .required = 1},
    {"vector", API_J_CALL, .read = read_point_vector, .required = 1},
    {"payload", API_J_OBJTEXT, .off = offsetof(qd_point, payload)},
    {0},
};

/* Point i, with room made for it; NULL when out of memory. */
static qd_point *point_at(qd_upsert_body *b, size_t i)
{
    qd_point *p = api_grow(&b->pt, sizeof *b->pt, &b->n, &b->cap, i, &b->vecs, b->dim);
    if (p) p->vec = b->vecs + i * b->dim;
    return p;
}

/* updateVectors' points: the same without a payload (one there is skipped, unread) */
static const api_jfield vector_point_fields[] = {
    {"id", API_J_CALL, .read = read_point_id, .required = 1},
    {"vector", API_J_VECTOR, offsetof(qd_point, vec), .required = 1},
    {0},
};

static int read_point(api_jread *rd, size_t i, void *body)
{
    qd_point *p = point_at(body, i);
    const api_jfield *fields = ((qd_upsert_body *)body)->vectors_only ? vector_point_fields : point_fields;
    return p ? api_jread_object(rd, fields, p) : api_jbad(rd, 1, "out_of_memory", "out of memory");
}

static int read_points(api_jread *rd, void *body)
{
    ((qd_upsert_body *)body)->forms |= 1;
    return api_jread_array(rd, read_point, body);
}

/* {"batch": {"ids": [...], "vectors": [...], "payloads": [...]}}: column col of each point */
static int read_cell(api_jread *rd, size_t i, void *body)
{
    qd_upsert_body *b = body;
    qd_point *p = point_at(b, i);
    b->count[b->col] = i + 1;
    return p ? api_jread_field(rd, &point_fields[b->col], p) : api_jbad(rd, 1, "out_of_memory", "out of memory");
}

static int read_column(api_jread *rd, qd_upsert_body *b, size_t col)
{
    b->forms |= 2;
    b->col = col;
    return api_jread_array(rd, read_cell, b);
}

static int read_ids_column(api_jread *rd, void *b) { return read_column(rd, b, 0); }
static int read_vectors_column(api_jread *rd, void *b) { return read_column(rd, b, 1); }
static int read_payloads_column(api_jread *rd, void *b) { return read_column(rd, b, 2); }

static const api_jfield batch_fields[] = {
    {"ids", API_J_CALL, .read = read_ids_column, .required = 1},
    {"vectors", API_J_CALL, .read = read_vectors_column, .required = 1},
    {"payloads", API_J_CALL, .read = read_payloads_column},
    {0},
};
const api_jfield qd_upsert_fields[] = {
    {"points", API_J_CALL, .read = read_points},
    {"batch", API_J_OBJECT, .arg = batch_fields},
    {"shard_key", API_J_REFUSE, .arg = "shard keys are"},
    {0},
};

static int read_vector_points(api_jread *rd, void *body)
{
    ((qd_upsert_body *)body)->vectors_only = 1;
    return read_points(rd, body);
}

const api_jfield qd_vectors_fields[] = {
    {"points", API_J_CALL, .read = read_vector_points, .required = 1},
    {"shard_key", API_J_REFUSE, .arg = "custom sharding (quiverd is a single node) is"},
    {"update_filter", API_J_REFUSE, .arg = "update_filter is"},
    {0},
};

/* ---- filters -------------------------------------------------------------------- */

/* The filter as the library takes it: the ids of has_id lists as it knows them (a
 * UUID's internal id), and no condition on the reserved key. -1 with msg filled. */
static int to_library(json_t *j, char *msg, size_t len)
{
    const char *k;
    json_t *v, *e;
    size_t i;
    if (json_is_array(j)) {
        json_array_foreach(j, i, v) if (to_library(v, msg, len)) return -1;
        return 0;
    }
    json_object_foreach(j, k, v) {
        if (strcmp(k, "key") == 0 && json_is_string(v) && strcmp(json_string_value(v), QD_UUID_KEY) == 0)
            return failf(msg, len, "payload key '%s' is reserved for UUID point ids", QD_UUID_KEY);
        if (strcmp(k, "has_id") != 0 || !json_is_array(v)) {
            if (to_library(v, msg, len)) return -1;
            continue;
        }
        json_array_foreach(v, i, e) {
            uint64_t iid;
            if (tree_id(e, &iid, msg, len)) return -1;
            if (json_array_set_new(v, i, json_integer((json_int_t)iid))) return failf(msg, len, "out of memory");
        }
    }
    return 0;
}

int qd_jread_filter(api_jread *rd, void *filter)
{
    json_t *t = NULL;
    char msg[200];
    int rc = read_tree(rd, &t);
    if (rc == 0 && to_library(t, msg, sizeof msg)) rc = api_jbad(rd, 0, "invalid_argument", "'%s': %s", rd->path, msg);
    if (rc == 0) rc = api_filter_set(rd, filter, json_dumps(t, JSON_COMPACT | JSON_ENCODE_ANY));
    json_decref(t);
    return rc;
}

/* ---- search and query bodies ---------------------------------------------------- */

/* with_vector: true, false, or a list of vector names (a non-empty one is true) */
int qd_jread_with_vector(api_jread *rd, void *out)
{
    api_jtext t;
    if (api_jread_text(rd, &t)) return -1;
    const char *q = t.p + 1;
    while (isspace((unsigned char)*q)) q++;
    *(int *)out = t.p[0] == 't' || (t.p[0] == '[' && *q != ']');
    return 0;
}


#define Q(field) offsetof(qd_search, field)

static int read_query(api_jread *rd, void *qs);
static int read_prefetch(api_jread *rd, void *qs);

/* "using", or a named vector's "name": checked against the collection when it runs */
static int read_using(api_jread *rd, void *qs)
{
    qd_search *q = qs;
    size_t len;
    int rc = api_jread_string(rd, q->using, sizeof q->using, &len);
    if (rc == 0 && len > QV_SPARSE_NAME_MAX)
        return api_jbad(rd, 0, "invalid_argument", "'%s': vector names are at most %u bytes", rd->path, QV_SPARSE_NAME_MAX);
    q->has_using = rc == 0;
    return rc;
}

/* a sparse query: {"indices": [...], "values": [...]} */
static int read_sparse_query(api_jread *rd, void *qs)
{
    qd_search *q = qs;
    q->has_vec = q->sparse = 1;
    return qd_jread_sparse(rd, &q->sq);
}

static const api_jfield named_vector_fields[] = {
    {"name", API_J_CALL, .read = read_using},
    {"vector", API_J_VECTOR, Q(s.vec), .required = 1},
    {0},
};

/* search: "vector": [...] or {"name": "", "vector": [...]} */
static int read_vector(api_jread *rd, void *qs)
{
    qd_search *q = qs;
    api_jtext ignored;
    if (q->query) return api_jread_text(rd, &ignored);
    q->has_vec = 1;
    return api_jpeek(rd, "{") ? api_jread_object(rd, named_vector_fields, q) : api_jread_vector(rd, q->s.vec);
}

static int read_nearest(api_jread *rd, void *qs)
{
    if (api_jpeek(rd, "{")) return read_sparse_query(rd, qs);
    return read_query(rd, qs);
}

static int read_query_indices(api_jread *rd, void *qs)
{
    qd_search *q = qs;
    q->has_vec = q->sparse = 1;
    return read_indices(rd, &q->sq);
}

static int read_query_values(api_jread *rd, void *qs)
{
    qd_search *q = qs;
    q->has_vec = q->sparse = 1;
    return read_values(rd, &q->sq);
}

static int read_mmr(api_jread *rd, void *qs)
{
    static const api_jfield mmr_fields[] = {
        {"diversity", API_J_NUM, .off = Q(diversity)},
        {"candidates_limit", API_J_U64, .off = Q(candidates), .lo = 0, .hi = QV_MAX_K},
        {0},
    };
    qd_search *q = qs;
    int strict = rd->strict;
    rd->strict = 0;                                /* the query kinds are strict, not mmr */
    int rc = api_jread_object(rd, mmr_fields, q);
    rd->strict = strict;
    q->mmr = 1;
    if (rc == 0 && !(q->diversity >= 0 && q->diversity <= 1)) return api_jbad(rd, 0, "invalid_argument", "mmr: diversity must be 0..1");
    return rc;
}

/* {"fusion": "rrf"}: Reciprocal Rank Fusion of the prefetches' hits (qv_fuse). DBSF
 * (distribution-based score fusion) is not implemented: refused rather than approximated. */
static int read_fusion(api_jread *rd, void *qs)
{
    char name[8];
    size_t len;
    int rc = api_jread_string(rd, name, sizeof name, &len);
    if (rc) return rc;
    if (!strcmp(name, "rrf")) {
        ((qd_search *)qs)->fusion = 1;
        return 0;
    }
    if (!strcmp(name, "dbsf"))
        return api_jbad(rd, 0, "invalid_argument", "'%s': fusion 'dbsf' is not supported by quiverd; use 'rrf'", rd->path);
    return api_jbad(rd, 0, "invalid_argument", "'%s': fusion must be 'rrf'", rd->path);
}

static const api_jfield query_kinds[] = {
    {"nearest", API_J_CALL, .read = read_nearest},
    {"mmr", API_J_CALL, .read = read_mmr},
    {"recommend", API_J_REFUSE, .arg = "recommend queries are"},
    {"discover", API_J_REFUSE, .arg = "discover queries are"},
    {"context", API_J_REFUSE, .arg = "context queries are"},
    {"order_by", API_J_REFUSE, .arg = "order_by queries are"},
    {"fusion", API_J_CALL, .read = read_fusion},
    {"rrf", API_J_REFUSE, .arg = "parametrised rrf queries are (use {\"fusion\":\"rrf\"})"},
    {"indices", API_J_CALL, .read = read_query_indices},
    {"values", API_J_CALL, .read = read_query_values},
    {"sample", API_J_REFUSE, .arg = "sample queries are"},
    {"formula", API_J_REFUSE, .arg = "formula queries are"},
    {0},
};

/* query: a vector, a point id (search by its vector), or {"nearest": ..., "mmr": ...} */
static int read_query(api_jread *rd, void *qs)
{
    qd_search *q = qs;
    api_jtext ignored;
    if (!q->query) return api_jread_text(rd, &ignored);
    if (api_jpeek(rd, "{")) {
        int strict = rd->strict, rc;
        rd->strict = 1;                            /* a kind of query not listed is refused */
        size_t ni = q->sq.ni;
        rc = api_jread_object(rd, query_kinds, q);
        rd->strict = strict;
        /* {"indices", "values"} read as two fields of the query: checked as one vector */
        if (rc == 0 && q->sparse && q->sq.ni != q->sq.nv)
            return api_jbad(rd, 0, "invalid_argument", "'%s': indices and values must have the same length (%zu and %zu)",
                            rd->path, q->sq.ni, q->sq.nv);
        if (rc == 0 && q->sparse && ni == 0) {
            sort_pairs(&q->sq);
            for (size_t i = 1; i < q->sq.ni; i++)
                if (q->sq.idx[i] == q->sq.idx[i - 1])
                    return api_jbad(rd, 0, "invalid_argument", "'%s': indices must be unique: %u is repeated", rd->path, q->sq.idx[i]);
        }
        if (rc == 0 && !q->has_vec && !q->fusion)
            return api_jbad(rd, 0, "invalid_argument", "'%s' needs 'nearest' (or 'fusion')", rd->path);
        return rc;
    }
    q->has_vec = 1;
    if (api_jpeek(rd, "[")) return api_jread_vector(rd, q->s.vec);
    q->by_id = 1;
    return qd_jread_id(rd, &q->id, &q->u);
}

/* params.quantization of a search on a quantized collection (ignored by float ones):
 * ignore re-scores every candidate of the beam with the float vectors, rescore false
 * returns the codes' estimates, oversampling re-scores the best ceil(limit * oversampling).
 * explore is a Quiver extension (Qdrant has no such field; its clients pass it through):
 * qv_search_params.explore, 0 (off)..4, used by bit1 hnsw walks, ignored by other codes. */
static const api_jfield quantization_fields[] = {
    {"ignore", API_J_BOOL, .off = Q(ignore_quant)},
    {"rescore", API_J_BOOL, Q(s.rescore), .lo = QV_RESCORE_OFF, .hi = QV_RESCORE_ON},
    {"oversampling", API_J_NUM, Q(s.oversampling), .lo = 1, .hi = (uint64_t)QV_MAX_OVERSAMPLING},
    {"explore", API_J_NUM, Q(s.explore), .lo = 0, .hi = (uint64_t)QV_MAX_EXPLORE},
    {0},
};
static const api_jfield params_fields[] = {
    {"hnsw_ef", API_J_U32, .off = Q(s.ef), .lo = 0, .hi = API_MAX_EF},
    {"exact", API_J_BOOL, .off = Q(s.exact)},
    {"quantization", API_J_OBJECT, .arg = quantization_fields},
    {0},
};
const api_jfield qd_search_fields[] = {
    {"vector", API_J_CALL, .read = read_vector},
    {"query", API_J_CALL, .read = read_query},
    {"limit", API_J_U64, .off = Q(limit), .lo = 1, .hi = QV_MAX_K},
    {"top", API_J_U64, .off = Q(limit), .lo = 1, .hi = QV_MAX_K},
    {"offset", API_J_U64, .off = Q(offset), .lo = 0, .hi = QV_MAX_K},
    {"with_payload", API_J_CALL, Q(wp), .read = qd_jread_selector},
    {"with_vector", API_J_CALL, Q(with_vec), .read = qd_jread_with_vector},
    {"score_threshold", API_J_NUM, .off = Q(threshold)},
    {"params", API_J_OBJECT, .arg = params_fields},
    {"filter", API_J_CALL, Q(s.filter), .read = qd_jread_filter},
    {"using", API_J_CALL, .read = read_using},
    {"shard_key", API_J_REFUSE, .arg = "shard keys are"},
    {"lookup_from", API_J_REFUSE, .arg = "lookup_from is"},
    {"prefetch", API_J_CALL, .read = read_prefetch},
    {"group_by", API_J_TEXT, .off = Q(group_by)},
    {"group_size", API_J_U64, .off = Q(group_size), .lo = 1, .hi = QV_MAX_K},
    {"with_lookup", API_J_REFUSE, .arg = "with_lookup is"},
    {0},
};


qd_search *qd_search_at(qd_search_list *l, size_t i)
{
    qd_search *q = api_grow(&l->q, sizeof *l->q, &l->n, &l->cap, i, &l->vecs, l->dim);
    if (q) *q = (qd_search){.s.vec = l->vecs + i * l->dim, .query = l->query, .limit = API_DEFAULT_K,
                          .threshold = NAN, .diversity = 0.5, .candidates = 100, .group_size = 3,
                          .in_prefetch = l->prefetch};
    return q;
}

static int read_search(api_jread *rd, size_t i, void *list)
{
    qd_search *q = qd_search_at(list, i);
    return q ? api_jread_object(rd, qd_search_fields, q) : api_jbad(rd, 1, "out_of_memory", "out of memory");
}

/* prefetch: one search or a list of them, each a query body of its own (one level) */
static int read_prefetch(api_jread *rd, void *qs)
{
    qd_search *q = qs;
    api_jtext ignored;
    if (!q->query) return api_jread_text(rd, &ignored);
    if (q->in_prefetch) return api_jbad(rd, 1, "invalid_argument", "'%s': nested prefetch is not supported by quiverd", rd->path);
    if (q->pre) return api_jbad(rd, 1, "invalid_argument", "'%s' given twice", rd->path);
    if (!(q->pre = calloc(1, sizeof *q->pre))) return api_jbad(rd, 1, "out_of_memory", "out of memory");
    *q->pre = (qd_search_list){.dim = rd->dim, .query = 1, .prefetch = 1};
    int rc = api_jpeek(rd, "[") ? api_jread_array(rd, read_search, q->pre) : read_search(rd, 0, q->pre);
    if (rc == 0 && q->pre->n > API_MAX_BATCH)
        return api_jbad(rd, 0, "invalid_argument", "'%s' must be a list of at most %u queries", rd->path, API_MAX_BATCH);
    return rc;
}

static int read_searches(api_jread *rd, void *list)
{
    int rc = api_jread_array(rd, read_search, list);
    if (rc == 0 && ((qd_search_list *)list)->n > API_MAX_BATCH)
        return api_jbad(rd, 0, "invalid_argument", "'searches' must be a list of at most %u requests", API_MAX_BATCH);
    return rc;
}

const api_jfield qd_searches_fields[] = {{"searches", API_J_CALL, .read = read_searches, .required = 1}, {0}};

void qd_search_list_free(qd_search_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        api_search_release(&l->q[i].s);
        qd_sparse_release(&l->q[i].sq);
        json_decref(l->q[i].wp);
        if (l->q[i].pre) qd_search_list_free(l->q[i].pre);
        free(l->q[i].pre);
    }
    free(l->vecs);
    free(l->q);
}

size_t qd_scores(qv_metric metric, double threshold, qv_hit *hits, size_t from, size_t n)
{
    size_t m = 0;
    for (size_t i = from; i < n; i++) {
        float sc = hits[i].score;
        if (metric == QV_METRIC_L2) sc = sqrtf(sc > 0 ? sc : 0);
        if (!isnan(threshold) && (metric == QV_METRIC_L2 ? sc > (float)threshold : sc < (float)threshold)) continue;
        hits[m++] = (qv_hit){hits[i].id, sc};
    }
    return m;
}

/*
 * server/qdrant_util.c -- Qdrant point ids, payload shaping and filter translation.
 *
 * Ids: see qdrant.h. The UUID hash is a splitmix64-style mix of both halves, so that
 * UUIDs differing in any bit land far apart; bit 62 marks UUID points, so they never
 * collide with integer ids (which must stay below 2^62).
 *
 * Filters: the library's parser (qv_filter_parse) reads Qdrant's filter language itself
 * (null members, a lone condition for a list, match value/any/except, ranges with null
 * sides, is_empty/is_null, nested must/should/must_not, dot paths) and refuses what it has
 * no counterpart for (geo, full text, values_count, datetime ranges, nested object arrays,
 * min_should) by name, so both APIs accept the same filters. What is left here is has_id,
 * which is not a payload condition: supported directly under the top-level must (ids
 * intersected) and must_not (ids united), taken out of the filter and applied as an
 * accept callback over internal ids; anywhere else it is refused. Filters on the reserved
 * key QD_UUID_KEY are refused: the key is the API's bookkeeping, hidden from reads.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/qdrant.h"

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

int qd_id_parse(const json_t *v, uint64_t *iid, qd_uuid *u, char *msg, size_t len)
{
    u->text[0] = 0;
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0) return failf(msg, len, "point ids are unsigned integers or UUIDs, got %lld", (long long)json_integer_value(v));
        *iid = (uint64_t)json_integer_value(v);
        if (*iid >= QD_UUID_BIT) return failf(msg, len, "integer point ids must be below 2^62 (4611686018427387904)");
        return 0;
    }
    if (json_is_string(v)) {
        if (uuid_parse(json_string_value(v), json_string_length(v), iid, u) == 0) return 0;
        return failf(msg, len, "Unable to parse UUID: '%.64s'", json_string_value(v));
    }
    return failf(msg, len, "point ids are unsigned integers or UUID strings");
}

int qd_id_parse_str(const char *s, uint64_t *iid, qd_uuid *u)
{
    u->text[0] = 0;
    if (srv_parse_id(s, iid) == 0) return *iid & QD_UUID_BIT ? -1 : 0;
    return uuid_parse(s, strlen(s), iid, u);
}

json_t *qd_id_value(uint64_t iid, const json_t *payload)
{
    if (!(iid & QD_UUID_BIT)) return json_integer((json_int_t)iid);
    json_t *u = payload ? json_object_get(payload, QD_UUID_KEY) : NULL;
    if (json_is_string(u)) return json_string(json_string_value(u));
    /* a point written through the native API with an id >= 2^62: show it as it is */
    return json_integer((json_int_t)iid);
}

/* ---- payloads ------------------------------------------------------------------- */

json_t *qd_payload_parse(const char *text)
{
    json_t *v = text ? json_loads(text, 0, NULL) : NULL;
    if (v && json_is_object(v)) return v;
    json_decref(v);
    return json_object();
}

static int string_array(const json_t *a)
{
    if (!json_is_array(a)) return 0;
    for (size_t i = 0; i < json_array_size(a); i++)
        if (!json_is_string(json_array_get(a, i))) return 0;
    return 1;
}

int qd_with_payload_check(const json_t *sel, char *msg, size_t len)
{
    if (!sel || json_is_null(sel) || json_is_boolean(sel) || string_array(sel)) return 0;
    if (json_is_object(sel) && json_object_size(sel) == 1) {
        json_t *inc = json_object_get(sel, "include"), *exc = json_object_get(sel, "exclude");
        if ((inc && string_array(inc)) || (exc && string_array(exc))) return 0;
    }
    return failf(msg, len, "with_payload must be true, false, a list of keys, "
                           "{\"include\":[keys]} or {\"exclude\":[keys]}");
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

/* Whether a payload key is shown for selector sel (checked by qd_with_payload_check). */
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

srv_point_style qd_point_style(const json_t *sel, int dflt, int with_vector, int scores)
{
    srv_point_style st = {.qdrant = 1, .scores = scores, .payload = payload_wanted(sel, dflt), .keep = keep_key,
                          .keep_arg = (void *)sel, .id_key = QD_UUID_KEY, .id_key_bit = QD_UUID_BIT,
                          .with_vector = with_vector};
    return st;
}

/* ---- filters -------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* has_id list -> sorted unique internal ids (malloc'd). */
static int id_list(const json_t *a, uint64_t **out, size_t *n, char *msg, size_t len)
{
    *out = NULL;
    *n = 0;
    if (!json_is_array(a)) return failf(msg, len, "has_id must be a list of point ids");
    size_t m = json_array_size(a);
    uint64_t *v = malloc((m ? m : 1) * sizeof *v);
    if (!v) return -2;
    for (size_t i = 0; i < m; i++) {
        qd_uuid u;
        if (qd_id_parse(json_array_get(a, i), &v[i], &u, msg, len) != 0) { free(v); return -1; }
    }
    qsort(v, m, sizeof *v, cmp_u64);
    size_t k = 0;
    for (size_t i = 0; i < m; i++)
        if (k == 0 || v[k - 1] != v[i]) v[k++] = v[i];
    *out = v;
    *n = k;
    return 0;
}

static int contains(const uint64_t *v, size_t n, uint64_t x)
{
    return bsearch(&x, v, n, sizeof *v, cmp_u64) != NULL;
}

/* 1 when an object anywhere in j has member `member` (with string value `value`, unless
 * value is NULL). */
static int has_member(const json_t *j, const char *member, const char *value)
{
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_array(j)) {
        json_array_foreach((json_t *)j, i, v) if (has_member(v, member, value)) return 1;
        return 0;
    }
    if (!json_is_object(j)) return 0;
    json_object_foreach((json_t *)j, k, v) {
        if (strcmp(k, member) == 0 && (!value || (json_is_string(v) && strcmp(json_string_value(v), value) == 0)))
            return 1;
        if (has_member(v, member, value)) return 1;
    }
    return 0;
}

/* Take the has_id conditions out of list (an array of conditions, or one condition) of
 * the top-level must (i = 0, intersected) or must_not (i = 1, united) into f. */
static int take_has_ids(json_t *qf, int i, qd_filter *f, char *msg, size_t len)
{
    static const char *const occ[] = {"must", "must_not"};
    json_t *list = json_object_get(qf, occ[i]);
    int single = json_is_object(list);
    for (size_t j = 0; single || j < json_array_size(list); j++) {
        json_t *c = single ? list : json_array_get(list, j), *h = json_is_object(c) ? json_object_get(c, "has_id") : NULL;
        uint64_t *ids;
        size_t n;
        int rc;
        if (h) {
            if ((rc = id_list(h, &ids, &n, msg, len)) != 0) return rc;
            if (i == 0 && !f->has_must) {
                f->must_ids = ids;
                f->n_must = n;
                f->has_must = 1;
            } else if (i == 0) {                    /* intersect */
                size_t k = 0;
                for (size_t x = 0; x < f->n_must; x++)
                    if (contains(ids, n, f->must_ids[x])) f->must_ids[k++] = f->must_ids[x];
                f->n_must = k;
                free(ids);
            } else {                                /* unite */
                uint64_t *u = realloc(f->not_ids, (f->n_not + n + 1) * sizeof *u);
                if (!u) { free(ids); return -2; }
                memcpy(u + f->n_not, ids, n * sizeof *u);
                f->not_ids = u;
                f->n_not += n;
                qsort(u, f->n_not, sizeof *u, cmp_u64);
                free(ids);
            }
            if (single) return json_object_del(qf, occ[i]) == 0 ? 0 : -2;
            if (json_array_remove(list, j--) != 0) return -2;
        }
        if (single) break;
    }
    return 0;
}

int qd_filter_build(const json_t *json, qd_filter *f, char *msg, size_t len)
{
    memset(f, 0, sizeof *f);
    if (!json || json_is_null(json)) return 0;
    if (!json_is_object(json)) return failf(msg, len, "a filter must be an object");
    if (has_member(json, "key", QD_UUID_KEY))
        return failf(msg, len, "payload key '%s' is reserved for UUID point ids", QD_UUID_KEY);
    json_t *rest = json_deep_copy(json);
    char *text = NULL;
    int rc = rest ? 0 : -2;
    for (int i = 0; i < 2 && rc == 0; i++) rc = take_has_ids(rest, i, f, msg, len);
    if (rc == 0 && has_member(rest, "has_id", NULL))
        rc = failf(msg, len, "has_id is supported only directly under the top-level 'must' or 'must_not'");
    if (rc == 0 && !(text = json_dumps(rest, JSON_COMPACT))) rc = -2;
    if (rc == 0) {
        int qrc = qv_filter_parse(text, &f->filter);
        if (qrc != QV_OK) rc = qrc == QV_ENOMEM ? -2 : failf(msg, len, "%s", qv_last_error());
    }
    if (rc == 0) {                                  /* no payload condition left: no filter */
        char *canon = NULL;
        if (qv_filter_to_json(f->filter, &canon) != QV_OK) rc = -2;
        else if (strcmp(canon, "{}") == 0) {
            qv_filter_free(f->filter);
            f->filter = NULL;
        }
        qv_free(canon);
    }
    free(text);
    json_decref(rest);
    if (rc != 0) qd_filter_release(f);
    return rc;
}

void qd_filter_release(qd_filter *f)
{
    qv_filter_free(f->filter);
    free(f->must_ids);
    free(f->not_ids);
    memset(f, 0, sizeof *f);
}

int qd_filter_has_ids(const qd_filter *f)
{
    return f->has_must || f->n_not;
}

int qd_filter_accept(uint64_t id, void *arg)
{
    const qd_filter *f = arg;
    if (f->has_must && !contains(f->must_ids, f->n_must, id)) return 0;
    if (f->n_not && contains(f->not_ids, f->n_not, id)) return 0;
    return 1;
}

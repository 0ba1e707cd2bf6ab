/*
 * server/jsonin.c -- strict JSON input for quiverd.
 *
 * Everything a client sends is checked here before it reaches the library: the body
 * must be one JSON object (duplicate keys refused), every object may hold only the
 * fields its endpoint names, integers must be integers within their range, and vector
 * components must be numbers that fit a float. JSON cannot spell NaN or Infinity, but
 * 1e39 parses as a finite double and would become +Inf as a float, so it is refused.
 * Jansson itself refuses integers beyond int64 and reals beyond double.
 */
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "server/server.h"

static int jfail_code(srv_jerr *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int jfail_code(srv_jerr *err, const char *code, const char *fmt, ...)
{
    va_list ap;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}
#define jfail(err, ...) jfail_code(err, "invalid_argument", __VA_ARGS__)

json_t *srv_json_body(struct evhttp_request *req, srv_jerr *err)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len == 0) {
        jfail_code(err, "invalid_json", "request body is empty; expected a JSON object");
        return NULL;
    }
    /* pullup makes the body contiguous; evhttp already capped its size */
    const char *data = (const char *)evbuffer_pullup(in, -1);
    if (!data) {
        jfail(err, "out of memory reading the body");
        return NULL;
    }
    json_error_t je;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        jfail_code(err, "invalid_json", "malformed JSON at line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        jfail_code(err, "invalid_json", "the body must be a JSON object");
        return NULL;
    }
    return root;
}

int srv_json_only(const json_t *obj, const char *what, const char *const *allowed, srv_jerr *err)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        (void)val;
        int ok = 0;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(key, allowed[i]) == 0) { ok = 1; break; }
        if (!ok) {
            /* the key may hold anything; print a bounded, sanitized prefix */
            char shown[48];
            size_t j = 0;
            for (; key[j] && j < sizeof shown - 1; j++)
                shown[j] = isprint((unsigned char)key[j]) ? key[j] : '?';
            shown[j] = 0;
            return jfail_code(err, "unknown_field", "unknown field '%s' in %s", shown, what);
        }
    }
    return 0;
}

int srv_json_uint(const json_t *obj, const char *key, uint64_t lo, uint64_t hi, uint64_t *out,
                  srv_jerr *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v)) return jfail(err, "'%s' must be an integer", key);
    json_int_t x = json_integer_value(v);
    if (x < 0 || (uint64_t)x < lo || (uint64_t)x > hi)
        return jfail(err, "'%s' must be in %llu..%llu, got %lld", key, (unsigned long long)lo,
                     (unsigned long long)hi, (long long)x);
    *out = (uint64_t)x;
    return 0;
}

int srv_json_bool(const json_t *obj, const char *key, int *out, srv_jerr *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return jfail(err, "'%s' must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

int srv_json_id(const json_t *v, const char *what, uint64_t *out, srv_jerr *err)
{
    if (!v) return jfail(err, "%s: missing 'id'", what);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return jfail(err, "%s: 'id' must be a non-negative integer", what);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

int srv_json_vector(const json_t *v, const char *what, uint32_t dim, float *out, srv_jerr *err)
{
    if (!v) return jfail(err, "%s: missing 'vector'", what);
    if (!json_is_array(v)) return jfail(err, "%s: 'vector' must be an array of numbers", what);
    size_t n = json_array_size(v);
    if (n != dim) return jfail_code(err, "dimension_mismatch", "%s: vector has dimension %zu, collection has %u", what, n, dim);
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(v, i);
        if (!json_is_number(x))
            return jfail(err, "%s: vector component %zu is not a number", what, i);
        double d = json_number_value(x);
        if (!isfinite(d) || fabs(d) > (double)FLT_MAX)
            return jfail(err, "%s: vector component %zu (%g) is outside the float range", what, i, d);
        out[i] = (float)d;
    }
    return 0;
}

int srv_parse_id(const char *s, uint64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 20) return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (x > (UINT64_MAX - d) / 10) return -1;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

/*
 * server/search.c -- searches: the one parser of native search requests, the library
 * calls, and the one writer of hits and points for both APIs.
 *
 * Parsing reads the body in place, without a tree -- through jansson a plain search cost
 * more than the HNSW search itself (a tree of 130 nodes, one malloc and one locale lookup
 * per number) -- the query vector written straight into the float array. The scanner
 * accepts what jansson accepts and reads the same numbers: integers through int64 (a
 * longer one is "too big", as in jansson), reals as strtod reads them, computed exactly
 * without strtod when both the digits and the power of ten are exact doubles. It checks
 * everything the strict rules ask (json.c) and words each error with the code a
 * tree-based check would give. A syntax
 * error anywhere wins over a field's error (the body is judged as JSON first); otherwise
 * the first bad field in the text is the one reported. A filter's text is handed to
 * qv_filter_parse, which names its bad part.
 *
 * Running: searches with equal k, ef, nprobe, exactness and filter text go to the
 * library as one batch call, so a filter's allowed set is built once for all of them.
 *
 * Writing: points go out straight into the reply buffer. A stored payload is copied as it
 * is stored, never parsed into a tree and written again, except that each real is written
 * in its shortest exact form (the library stores jansson's 17 digits, 0.1 as
 * 0.10000000000000001; the reply says 0.1, the same double).
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "server/server.h"

void srv_search_release(srv_search *s)
{
    qv_filter_free(s->filter);
    free(s->filter_text);
    s->filter = NULL;
    s->filter_text = NULL;
}

void srv_searches_free(srv_search *s, size_t n)
{
    if (!s) return;
    for (size_t i = 0; i < n; i++) srv_search_release(&s[i]);
    free(s[0].vec);
    free(s);
}

/* ---- raw JSON text ----------------------------------------------------------------- */

/* A position in JSON text; syntax errors go to e. */
typedef struct { const char *p, *end, *start; srv_jerr *e; } jscan;

static int js_syntax(jscan *s, const char *what)
{
    int line = 1, col = 1;
    for (const char *q = s->start; q < s->p && q < s->end; q++) {
        if (*q == '\n') line++, col = 1;
        else col++;
    }
    return srv_jfail(s->e, "invalid_json", "malformed JSON at line %d column %d: %s", line, col, what);
}

static const char *js_ws(jscan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
    return s->p;
}

static int js_lit(jscan *s, char c)
{
    js_ws(s);
    if (s->p == s->end || *s->p != c) {
        char what[40];
        snprintf(what, sizeof what, s->p == s->end ? "unexpected end of input" : "'%c' expected", c);
        return js_syntax(s, what);
    }
    s->p++;
    return 0;
}

static int js_end(jscan *s)
{
    return js_ws(s) == s->end ? 0 : js_syntax(s, "end of file expected");
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v << 4 | (unsigned)d;
    }
    *out = v;
    return 0;
}

static int js_string(jscan *s, char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    if (s->p == s->end || *s->p != '"') return js_syntax(s, "string expected");
    s->p++;
    for (;;) {
        if (s->p == s->end) return js_syntax(s, "premature end of input in a string");
        unsigned c = (unsigned char)*s->p++;
        char out[4];
        int k = 1;
        if (c == '"') break;
        if (c < 0x20) return js_syntax(s, "control character in a string");
        out[0] = (char)c;
        if (c == '\\') {
            if (s->p == s->end) return js_syntax(s, "premature end of input in a string");
            c = (unsigned char)*s->p++;
            const char *esc = strchr("\"\\/bfnrt", (int)c);
            if (c && esc) {
                out[0] = "\"\\/\b\f\n\r\t"[esc - "\"\\/bfnrt"];
            } else if (c == 'u') {
                unsigned u, lo;
                if (s->end - s->p < 4 || hex4(s->p, &u)) return js_syntax(s, "invalid \\u escape");
                s->p += 4;
                if (u >= 0xd800 && u < 0xdc00) {            /* a surrogate pair */
                    if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || hex4(s->p + 2, &lo) ||
                        lo < 0xdc00 || lo >= 0xe000)
                        return js_syntax(s, "invalid Unicode surrogate pair");
                    s->p += 6;
                    u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                } else if (u >= 0xdc00 && u < 0xe000) {
                    return js_syntax(s, "invalid Unicode surrogate");
                }
                if (u == 0) return js_syntax(s, "\\u0000 is not allowed");
                if (u < 0x80) out[0] = (char)u;
                else if (u < 0x800) out[0] = (char)(0xc0 | u >> 6), out[1] = (char)(0x80 | (u & 0x3f)), k = 2;
                else if (u < 0x10000) out[0] = (char)(0xe0 | u >> 12), out[1] = (char)(0x80 | (u >> 6 & 0x3f)),
                                      out[2] = (char)(0x80 | (u & 0x3f)), k = 3;
                else out[0] = (char)(0xf0 | u >> 18), out[1] = (char)(0x80 | (u >> 12 & 0x3f)),
                     out[2] = (char)(0x80 | (u >> 6 & 0x3f)), out[3] = (char)(0x80 | (u & 0x3f)), k = 4;
            } else {
                return js_syntax(s, "invalid escape");
            }
        }
        for (int i = 0; i < k; i++, n++)
            if (buf && n + 1 < cap) buf[n] = out[i];
    }
    if (buf && cap) buf[n < cap ? n : cap - 1] = 0;
    if (len) *len = n;
    return 0;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Powers of ten that a double holds exactly. */
static const double exact_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static int js_number(jscan *s, double *out, int *is_int)
{
    /* strict grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
    const char *p = s->p, *end = s->end, *start = p;
    int neg = 0, sig = 0, exp10 = 0, overflow = 0;
    uint64_t m = 0;
    if (p < end && *p == '-') { neg = 1; p++; }
    if (p == end || !is_digit(*p)) return js_syntax(s, "invalid token");
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p)) return js_syntax(s, "invalid number (leading zero)");
    } else {
        for (; p < end && is_digit(*p); p++) {
            if (sig < 19) { m = m * 10 + (uint64_t)(*p - '0'); sig++; }
            else { overflow = 1; exp10++; }
        }
    }
    *is_int = 1;
    if (p < end && *p == '.') {
        *is_int = 0;
        p++;
        if (p == end || !is_digit(*p)) { s->p = p; return js_syntax(s, "invalid number (no digit after '.')"); }
        for (; p < end && is_digit(*p); p++) {
            if (m == 0 && *p == '0') { exp10--; continue; }   /* zeros before the first digit */
            if (sig < 19) { m = m * 10 + (uint64_t)(*p - '0'); sig++; exp10--; }
            else overflow = 1;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *is_int = 0;
        p++;
        int eneg = 0, e = 0;
        if (p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        if (p == end || !is_digit(*p)) { s->p = p; return js_syntax(s, "invalid number (no exponent digits)"); }
        for (; p < end && is_digit(*p); p++)
            if (e < 100000) e = e * 10 + (*p - '0');
        exp10 += eneg ? -e : e;
    }
    char tok[400];
    size_t len = (size_t)(p - start);
    if (*is_int && !overflow && sig <= 18) {
        *out = (double)(neg ? -(int64_t)m : (int64_t)m);    /* as jansson: -0 is 0; m < 10^18 < 2^63 */
    } else if (!*is_int && !overflow && m <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
        /* both operands exact, so the one IEEE operation rounds correctly: strtod's answer */
        double d = (double)m;
        d = exp10 >= 0 ? d * exact_pow10[exp10] : d / exact_pow10[-exp10];
        *out = neg ? -d : d;
    } else {
        if (len >= sizeof tok) return js_syntax(s, "number too long");
        memcpy(tok, start, len);
        tok[len] = 0;
        errno = 0;
        if (*is_int) {
            long long v = strtoll(tok, NULL, 10);          /* jansson's integers are int64 */
            if (errno == ERANGE) return js_syntax(s, neg ? "too big negative integer" : "too big integer");
            *out = (double)v;
        } else {
            *out = strtod(tok, NULL);                       /* quiverd never calls setlocale */
            if (errno == ERANGE && isinf(*out)) return js_syntax(s, "real number overflow");
        }
    }
    s->p = p;
    return 0;
}

static int skip_value(jscan *s, int depth)
{
    if (depth > 2048) return js_syntax(s, "maximum parsing depth reached");   /* jansson's limit */
    js_ws(s);
    if (s->p == s->end) return js_syntax(s, "unexpected end of input");
    char c = *s->p;
    if (c == '"') return js_string(s, NULL, 0, NULL);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        s->p++;
        if (js_ws(s) < s->end && *s->p == close) { s->p++; return 0; }
        for (;;) {
            if (c == '{' && (js_ws(s), js_string(s, NULL, 0, NULL) || js_lit(s, ':'))) return -1;
            if (skip_value(s, depth + 1)) return -1;
            js_ws(s);
            if (s->p < s->end && *s->p == ',') { s->p++; continue; }
            return js_lit(s, close);
        }
    }
    static const char *const lits[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(lits[i]);
        if ((size_t)(s->end - s->p) >= l && memcmp(s->p, lits[i], l) == 0) { s->p += l; return 0; }
    }
    double d;
    int is_int;
    return js_number(s, &d, &is_int);
}

/* ---- parsing ----------------------------------------------------------------------- */

typedef struct {
    jscan s;
    srv_jerr *e;                 /* the first field error, reported when the JSON is valid */
    srv_jerr syntax;
    int bad;
} parser;

/* Record a field's error (the first one counts) and skip the value that caused it. */
static int field_error(parser *ps, int skip, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int field_error(parser *ps, int skip, const char *code, const char *fmt, ...)
{
    if (!ps->bad) {
        va_list ap;
        va_start(ap, fmt);
        ps->e->code = code;
        vsnprintf(ps->e->msg, sizeof ps->e->msg, fmt, ap);
        va_end(ap);
        ps->bad = 1;
    }
    return skip ? skip_value(&ps->s, 0) : 0;
}

static int peek_is(parser *ps, const char *lit)
{
    size_t l = strlen(lit);
    js_ws(&ps->s);
    return (size_t)(ps->s.end - ps->s.p) >= l && memcmp(ps->s.p, lit, l) == 0;
}

static int is_number_start(parser *ps)
{
    char c = ps->s.p < ps->s.end ? *ps->s.p : 0;
    return c == '-' || (c >= '0' && c <= '9');
}

/* "k", "ef", "nprobe": an integer in lo..hi, or null for the default. */
static int parse_uint(parser *ps, const char *key, uint32_t lo, uint32_t hi, uint32_t *out)
{
    double d;
    int is_int;
    if (peek_is(ps, "null")) { ps->s.p += 4; return 0; }
    if (!is_number_start(ps)) return field_error(ps, 1, "invalid_argument", "'%s' must be an integer", key);
    if (js_number(&ps->s, &d, &is_int)) return -1;
    if (!is_int) return field_error(ps, 0, "invalid_argument", "'%s' must be an integer", key);
    if (d < lo || d > hi)
        return field_error(ps, 0, "invalid_argument", "'%s' must be in %u..%u, got %.0f", key, lo, hi, d);
    *out = (uint32_t)d;
    return 0;
}

/* "oversampling": a number in 1..QV_MAX_OVERSAMPLING, or null for the default. */
static int parse_oversampling(parser *ps, float *out)
{
    double d;
    int is_int;
    if (peek_is(ps, "null")) { ps->s.p += 4; return 0; }
    if (!is_number_start(ps)) return field_error(ps, 1, "invalid_argument", "'oversampling' must be a number");
    if (js_number(&ps->s, &d, &is_int)) return -1;
    if (!(d >= 1.0 && d <= QV_MAX_OVERSAMPLING))
        return field_error(ps, 0, "invalid_argument", "'oversampling' must be in 1..%d, got %g",
                           (int)QV_MAX_OVERSAMPLING, d);
    *out = (float)d;
    return 0;
}

/* "rescore": true, false (the estimated scores as they are), or null for the default. */
static int parse_rescore(parser *ps, int *out)
{
    if (peek_is(ps, "true")) ps->s.p += 4, *out = QV_RESCORE_ON;
    else if (peek_is(ps, "false")) ps->s.p += 5, *out = QV_RESCORE_OFF;
    else if (peek_is(ps, "null")) ps->s.p += 4;
    else return field_error(ps, 1, "invalid_argument", "'rescore' must be true or false");
    return 0;
}

/* true, false, or null for false */
static int parse_bool(parser *ps, const char *key, int *out)
{
    if (peek_is(ps, "true")) ps->s.p += 4, *out = 1;
    else if (peek_is(ps, "false")) ps->s.p += 5;
    else if (peek_is(ps, "null")) ps->s.p += 4;
    else return field_error(ps, 1, "invalid_argument", "'%s' must be true or false", key);
    return 0;
}

static int parse_vector(parser *ps, const char *what, uint32_t dim, float *vec)
{
    size_t n = 0, not_number = SIZE_MAX, out_of_range = SIZE_MAX;
    double bad = 0;
    if (!peek_is(ps, "[")) return field_error(ps, 1, "invalid_argument", "%s: 'vector' must be an array of numbers", what);
    ps->s.p++;
    if (js_ws(&ps->s) < ps->s.end && *ps->s.p == ']') ps->s.p++;
    else
        for (;; n++) {
            js_ws(&ps->s);
            if (is_number_start(ps)) {
                double d;
                int is_int;
                if (js_number(&ps->s, &d, &is_int)) return -1;
                if (fabs(d) > (double)FLT_MAX && out_of_range == SIZE_MAX) out_of_range = n, bad = d;
                if (n < dim) vec[n] = (float)d;
            } else {
                if (skip_value(&ps->s, 0)) return -1;
                if (not_number == SIZE_MAX) not_number = n;
            }
            js_ws(&ps->s);
            if (ps->s.p < ps->s.end && *ps->s.p == ',') { ps->s.p++; continue; }
            if (js_lit(&ps->s, ']')) return -1;
            n++;
            break;
        }
    if (n != dim)
        return field_error(ps, 0, "dimension_mismatch", "%s: vector has dimension %zu, collection has %u", what, n, dim);
    if (not_number != SIZE_MAX)
        return field_error(ps, 0, "invalid_argument", "%s: vector component %zu is not a number", what, not_number);
    if (out_of_range != SIZE_MAX)
        return field_error(ps, 0, "invalid_argument", "%s: vector component %zu (%g) is outside the float range", what,
                           out_of_range, bad);
    return 0;
}

static int parse_filter(parser *ps, const char *prefix, srv_search *out)
{
    if (peek_is(ps, "null")) { ps->s.p += 4; return 0; }
    if (!peek_is(ps, "{"))
        return field_error(ps, 1, "bad_filter", "%sfilter: must be a JSON object like {\"must\":[...]}", prefix);
    const char *from = ps->s.p;
    if (skip_value(&ps->s, 0)) return -1;
    if (!(out->filter_text = strndup(from, (size_t)(ps->s.p - from))))
        return field_error(ps, 0, "out_of_memory", "out of memory");
    int rc = qv_filter_parse(out->filter_text, &out->filter);
    if (rc != QV_OK)
        return field_error(ps, 0, rc == QV_ENOMEM ? "out_of_memory" : "bad_filter", "%s%s", prefix,
                           rc == QV_ENOMEM ? "out of memory" : qv_last_error());
    return 0;
}

enum { F_VECTOR = 1, F_K = 2, F_EF = 4, F_NPROBE = 8, F_FILTER = 16, F_WITH_PAYLOAD = 32, F_EXACT = 64,
       F_RESCORE = 128, F_OVERSAMPLING = 256, N_FIELDS = 9 };

/* One search object; what/prefix name it in messages ("the search", "searches[3]"). */
static int parse_one(parser *ps, const char *what, const char *prefix, uint32_t dim, float *vec, srv_search *out)
{
    static const char *const names[N_FIELDS] = {"vector", "k",     "ef",      "nprobe",      "filter",
                                                "with_payload", "exact", "rescore", "oversampling"};
    unsigned seen = 0;
    memset(out, 0, sizeof *out);
    out->k = SRV_DEFAULT_K;
    if (!peek_is(ps, "{")) return field_error(ps, 1, "invalid_argument", "%s must be an object", what);
    ps->s.p++;
    if (js_ws(&ps->s) < ps->s.end && *ps->s.p == '}') ps->s.p++;
    else
        for (;;) {
            char key[64];
            size_t klen;
            js_ws(&ps->s);
            const char *at = ps->s.p;
            if (js_string(&ps->s, key, sizeof key, &klen) || js_lit(&ps->s, ':')) return -1;
            unsigned f = 0;
            for (int i = 0; i < N_FIELDS && !f; i++)
                if (klen == strlen(names[i]) && strcmp(key, names[i]) == 0) f = 1u << i;
            if (f & seen) {
                ps->s.p = at;
                return js_syntax(&ps->s, "duplicate object key");
            }
            seen |= f;
            int rc;
            if (f == F_VECTOR) rc = parse_vector(ps, what, dim, vec);
            else if (f == F_K) rc = parse_uint(ps, "k", 1, QV_MAX_K, &out->k);
            else if (f == F_EF) rc = parse_uint(ps, "ef", 0, SRV_MAX_EF, &out->ef);
            else if (f == F_NPROBE) rc = parse_uint(ps, "nprobe", 0, SRV_MAX_NPROBE, &out->nprobe);
            else if (f == F_FILTER) rc = parse_filter(ps, prefix, out);
            else if (f == F_WITH_PAYLOAD) rc = parse_bool(ps, "with_payload", &out->with_payload);
            else if (f == F_EXACT) rc = parse_bool(ps, "exact", &out->exact);
            else if (f == F_RESCORE) rc = parse_rescore(ps, &out->rescore);
            else if (f == F_OVERSAMPLING) rc = parse_oversampling(ps, &out->oversampling);
            else {
                for (char *c = key; *c; c++)
                    if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f) *c = '?';
                rc = field_error(ps, 1, "unknown_field", "unknown field '%.47s' in %s", key, what);
            }
            if (rc) return -1;
            js_ws(&ps->s);
            if (ps->s.p < ps->s.end && *ps->s.p == ',') { ps->s.p++; continue; }
            if (js_lit(&ps->s, '}')) return -1;
            break;
        }
    if (!(seen & F_VECTOR)) field_error(ps, 0, "invalid_argument", "%s: missing 'vector'", what);
    return 0;
}

int srv_parse_searches(const char *body, size_t len, uint32_t dim, int batch, srv_search **out, size_t *nout,
                       srv_jerr *e)
{
    parser ps = {.s = {body, body + len, body, NULL}, .e = e};
    ps.s.e = &ps.syntax;
    srv_search *s = NULL;
    float *vecs = NULL;
    size_t n = 0, cap = 0;
    int rc = -1, seen_searches = 0;
    *out = NULL;
    *nout = 0;
    memset(e, 0, sizeof *e);
    if (len == 0) return srv_jfail(e, "invalid_json", "request body is empty; expected a JSON object");
    if (!peek_is(&ps, "{")) {
        /* valid JSON that is not an object, or not JSON at all */
        if (skip_value(&ps.s, 0) || js_end(&ps.s)) goto syntax;
        return srv_jfail(e, "invalid_json", "the body must be a JSON object");
    }
    if (!batch) {
        if (!(s = calloc(1, sizeof *s)) || !(vecs = malloc((dim ? dim : 1) * sizeof *vecs))) goto oom;
        n = 1;
        if (parse_one(&ps, "the search", "", dim, vecs, &s[0]) || js_end(&ps.s)) goto syntax;
    } else {
        ps.s.p++;
        if (js_ws(&ps.s) < ps.s.end && *ps.s.p == '}') ps.s.p++;
        else
            for (;;) {
                char key[64];
                js_ws(&ps.s);
                const char *at = ps.s.p;
                if (js_string(&ps.s, key, sizeof key, NULL) || js_lit(&ps.s, ':')) goto syntax;
                if (strcmp(key, "searches") != 0) {
                    for (char *c = key; *c; c++)
                        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f) *c = '?';
                    if (field_error(&ps, 1, "unknown_field", "unknown field '%.47s' in the body", key)) goto syntax;
                } else if (seen_searches++) {
                    ps.s.p = at;
                    js_syntax(&ps.s, "duplicate object key");
                    goto syntax;
                } else if (!peek_is(&ps, "[")) {
                    if (field_error(&ps, 1, "invalid_argument", "'searches' must be an array of 1..%u search objects",
                                    SRV_MAX_BATCH))
                        goto syntax;
                } else {
                    ps.s.p++;
                    if (js_ws(&ps.s) < ps.s.end && *ps.s.p == ']') ps.s.p++;
                    else
                        for (;;) {
                            if (n == cap) {
                                cap = cap ? 2 * cap : 16;
                                float *nv = realloc(vecs, cap * (dim ? dim : 1) * sizeof *vecs);
                                if (nv) vecs = nv;
                                srv_search *ns = nv ? realloc(s, cap * sizeof *s) : NULL;
                                if (!ns) goto oom;
                                s = ns;
                            }
                            char what[40], prefix[40];
                            snprintf(what, sizeof what, "searches[%zu]", n);
                            snprintf(prefix, sizeof prefix, "searches[%zu].", n);
                            memset(&s[n], 0, sizeof s[n]);
                            n++;
                            if (parse_one(&ps, what, prefix, dim, vecs + (n - 1) * dim, &s[n - 1])) goto syntax;
                            js_ws(&ps.s);
                            if (ps.s.p < ps.s.end && *ps.s.p == ',') { ps.s.p++; continue; }
                            if (js_lit(&ps.s, ']')) goto syntax;
                            break;
                        }
                    if (n == 0 || n > SRV_MAX_BATCH)
                        field_error(&ps, 0, "invalid_argument", "'searches' must be an array of 1..%u search objects",
                                    SRV_MAX_BATCH);
                }
                js_ws(&ps.s);
                if (ps.s.p < ps.s.end && *ps.s.p == ',') { ps.s.p++; continue; }
                if (js_lit(&ps.s, '}')) goto syntax;
                break;
            }
        if (js_end(&ps.s)) goto syntax;
        if (!seen_searches)
            field_error(&ps, 0, "invalid_argument", "'searches' must be an array of 1..%u search objects", SRV_MAX_BATCH);
    }
    if (ps.bad) goto cleanup;
    for (size_t i = 0; i < n; i++) s[i].vec = vecs + i * dim;
    *out = s;
    *nout = n;
    return 0;
oom:
    srv_jfail(e, "out_of_memory", "out of memory");
    ps.bad = 1;
    goto cleanup;
syntax:
    if (ps.syntax.code) *e = ps.syntax;
cleanup:
    for (size_t i = 0; i < n; i++) srv_search_release(&s[i]);
    free(s);
    free(vecs);
    return rc;
}

/* ---- running ------------------------------------------------------------------------- */

static uint64_t now_us(void)
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
    if (!a->filter_text || !b->filter_text) return a->filter_text == b->filter_text;
    return strcmp(a->filter_text, b->filter_text) == 0;
}

static void params_of(const srv_search *s, qv_search_params *sp)
{
    qv_search_params_init(sp, s->k);
    sp->ef = s->ef;
    sp->nprobe = s->nprobe;
    sp->filter = s->filter;
    sp->accept = s->accept;
    sp->accept_arg = s->accept_arg;
    sp->exact = (uint32_t)s->exact;
    sp->rescore = (qv_rescore)s->rescore;
    sp->oversampling = s->oversampling;
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
    uint64_t t0 = now_us();
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
    res->took_us = now_us() - t0;
    return rc;
}

void srv_results_free(srv_results *res)
{
    free(res->st);
    memset(res, 0, sizeof *res);
}

/* ---- writing --------------------------------------------------------------------------- */

/* Small pieces gather here and go to the evbuffer in a few large adds. */
typedef struct { struct evbuffer *out; size_t n; int err; char b[1024]; } wbuf;

static void flush(wbuf *w)
{
    if (w->n && evbuffer_add(w->out, w->b, w->n)) w->err = 1;
    w->n = 0;
}

static void put(wbuf *w, const char *s, size_t len)
{
    if (w->n + len > sizeof w->b) flush(w);
    if (len > sizeof w->b) { if (evbuffer_add(w->out, s, len)) w->err = 1; return; }
    memcpy(w->b + w->n, s, len);
    w->n += len;
}
#define PUTS(w, lit) put(w, lit, sizeof(lit) - 1)

static void put_u64(wbuf *w, uint64_t v)
{
    char d[20];
    int n = 20;
    do { d[--n] = (char)('0' + v % 10); v /= 10; } while (v);
    put(w, d + n, (size_t)(20 - n));
}

static void put_f(wbuf *w, float f)
{
    char buf[40];
    int n = isfinite(f) ? srv_fmt_score(buf, sizeof buf, f) : -1;
    if (n < 0) PUTS(w, "null");
    else put(w, buf, (size_t)n);
}

static void put_vector(wbuf *w, const float *v, uint32_t dim)
{
    PUTS(w, "[");
    for (uint32_t j = 0; j < dim; j++) {
        if (j) PUTS(w, ",");
        put_f(w, v[j]);
    }
    PUTS(w, "]");
}

/* A JSON string as jansson writes it: '"', '\\' and control characters escaped, the
 * rest (UTF-8) as it is. */
static void put_jstr(wbuf *w, const char *s, size_t len)
{
    size_t from = 0;
    PUTS(w, "\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        char esc[8];
        const char *named = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b" : c == '\f' ? "\\f"
                          : c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
        int n = named ? snprintf(esc, sizeof esc, "%s", named) : snprintf(esc, sizeof esc, "\\u%04X", c);
        put(w, s + from, i - from);
        put(w, esc, (size_t)n);
        from = i + 1;
    }
    put(w, s + from, len - from);
    PUTS(w, "\"");
}

/* Copy the valid JSON text [p, end) with each real in its shortest form. */
static void copy_value(wbuf *w, const char *p, const char *end)
{
    const char *from = p;
    while (p < end) {
        if (*p == '"') {                                   /* strings as they are */
            for (p++; *p != '"'; p++)
                if (*p == '\\') p++;
            p++;
        } else if (*p == '-' || is_digit(*p)) {
            const char *q = p;
            int real = 0;
            while (q < end && (is_digit(*q) || *q == '-' || *q == '+' || *q == '.' || *q == 'e' || *q == 'E'))
                real |= *q == '.' || *q == 'e' || *q == 'E', q++;
            char tok[400], num[40];
            size_t len = (size_t)(q - p);
            int n = -1;
            if (real && len < sizeof tok) {
                memcpy(tok, p, len);
                tok[len] = 0;
                n = srv_fmt_double(num, sizeof num, strtod(tok, NULL));
            }
            if (n > 0) {
                put(w, from, (size_t)(p - from));
                put(w, num, (size_t)n);
                from = q;
            }
            p = q;
        } else {
            p++;
        }
    }
    put(w, from, (size_t)(p - from));
}

/* A stored value; of an object only the top-level keys that keep (NULL: all) accepts.
 * -1 (nothing written) when text is not valid JSON. */
static int put_stored(wbuf *w, const char *text, int (*keep)(const char *key, void *arg), void *keep_arg)
{
    srv_jerr e;
    jscan s = {text, text + strlen(text), text, &e};
    if (skip_value(&s, 0) || js_end(&s)) return -1;       /* checked whole before a byte goes out */
    s.p = text;
    js_ws(&s);
    if (!keep || *s.p != '{') {
        copy_value(w, s.p, s.end);
        return 0;
    }
    int first = 1;
    char key[256];
    PUTS(w, "{");
    for (s.p++; js_ws(&s) < s.end && *s.p == '"';) {
        const char *k0 = s.p;
        js_string(&s, key, sizeof key, NULL);
        js_lit(&s, ':');
        const char *v0 = js_ws(&s);
        skip_value(&s, 0);
        if (keep(key, keep_arg)) {
            if (!first) PUTS(w, ",");
            put(w, k0, (size_t)(v0 - k0));
            copy_value(w, v0, s.p);
            first = 0;
        }
        if (js_ws(&s) < s.end && *s.p == ',') s.p++;
    }
    PUTS(w, "}");
    return 0;
}

int srv_put_stored(struct evbuffer *out, const char *text, int (*keep)(const char *key, void *arg), void *keep_arg)
{
    wbuf w = {.out = out};
    if (put_stored(&w, text, keep, keep_arg) != 0) return -1;
    flush(&w);
    return w.err ? -1 : 0;
}

int srv_stored_string(const char *text, const char *key, char *buf, size_t cap)
{
    srv_jerr e;
    jscan s = {text, text + strlen(text), text, &e};
    char k[256];
    if (js_lit(&s, '{')) return -1;
    while (js_ws(&s) < s.end && *s.p == '"') {
        if (js_string(&s, k, sizeof k, NULL) || js_lit(&s, ':')) return -1;
        if (strcmp(k, key) == 0 && js_ws(&s) < s.end && *s.p == '"') return js_string(&s, buf, cap, NULL);
        if (skip_value(&s, 0)) return -1;
        if (js_ws(&s) < s.end && *s.p == ',') s.p++;
    }
    return -1;
}

int srv_put_vector(struct evbuffer *out, const float *v, uint32_t dim)
{
    wbuf w = {.out = out};
    put_vector(&w, v, dim);
    flush(&w);
    return w.err ? -1 : 0;
}

int srv_put_took(struct evbuffer *out, const qv_search_stats *st)
{
    wbuf w = {.out = out};
    const char *plan = st->plan ? st->plan : "none";
    PUTS(&w, "{\"plan\":");
    put_jstr(&w, plan, strlen(plan));
    PUTS(&w, ",\"live\":");
    put_u64(&w, st->live);
    PUTS(&w, ",\"allowed\":");
    put_u64(&w, st->allowed);
    PUTS(&w, ",\"conditions\":");
    put_u64(&w, st->conditions);
    PUTS(&w, ",\"unindexed\":[");
    for (const char *p = st->unindexed_keys; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (p != st->unindexed_keys) PUTS(&w, ",");
        put_jstr(&w, p, len);
        p += len + (comma ? 1 : 0);
    }
    PUTS(&w, "],\"payloads_read\":");
    put_u64(&w, st->payloads_read);
    PUTS(&w, ",\"filter_us\":");
    put_u64(&w, st->filter_us);
    if (st->cached) PUTS(&w, ",\"cached\":true}");
    else PUTS(&w, ",\"cached\":false}");
    flush(&w);
    return w.err ? -1 : 0;
}

int srv_put_points(struct evbuffer *out, qv_coll *c, uint32_t dim, const qv_hit *hits, size_t n,
                   const srv_point_style *st)
{
    wbuf w = {.out = out};
    char **texts = NULL;
    float *vec = NULL;
    int rc = 0;
    /* The native API reads all payloads in one transaction. Qdrant's reads each point it
     * shows more of than id and score, and leaves out the ones that do not exist
     * (retrieve takes any id; a hit may have been deleted since the search). */
    if (st->payload && !st->qdrant) {
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
    PUTS(&w, "[");
    int first = 1;
    for (size_t i = 0; i < n && !w.err; i++) {
        uint64_t id = hits[i].id;
        int uuid_id = st->id_key && (id & st->id_key_bit);
        char *text = texts ? texts[i] : NULL, *own = NULL, uuid[64];
        if (st->qdrant && (!st->scores || st->payload || st->with_vector || uuid_id)) {
            int grc = qv_get(c, id, vec, &own);
            if (grc == QV_ENOTFOUND) continue;            /* deleted, or never there */
            if (grc != QV_OK) { rc = grc; break; }
            text = own;
        }
        if (!first) PUTS(&w, ",");
        first = 0;
        PUTS(&w, "{\"id\":");
        if (uuid_id && text && srv_stored_string(text, st->id_key, uuid, sizeof uuid) == 0) put_jstr(&w, uuid, strlen(uuid));
        else put_u64(&w, id);
        if (st->qdrant) PUTS(&w, ",\"version\":0");
        if (st->scores) {
            PUTS(&w, ",\"score\":");
            put_f(&w, hits[i].score);
        }
        if (st->payload) {
            PUTS(&w, ",\"payload\":");
            /* Qdrant shows a point without payload with an empty one */
            if (!text && st->qdrant) PUTS(&w, "{}");
            else if (!text || put_stored(&w, text, st->keep, st->keep_arg) != 0) PUTS(&w, "null");
        } else if (st->qdrant) {
            PUTS(&w, ",\"payload\":null");
        }
        if (st->with_vector) {
            PUTS(&w, ",\"vector\":");
            put_vector(&w, vec, dim);
        } else if (st->qdrant) {
            PUTS(&w, ",\"vector\":null");
        }
        PUTS(&w, "}");
        qv_free(own);
    }
    PUTS(&w, "]");
    flush(&w);
    for (size_t i = 0; texts && i < n; i++) qv_free(texts[i]);
    free(texts);
    free(vec);
    return rc ? rc : w.err ? QV_ENOMEM : QV_OK;
}

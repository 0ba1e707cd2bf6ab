/*
 * api/json.c -- JSON for quiverd and the CLI: the one reader of requests, and the pieces
 * every reply is written from.
 *
 * In. Every body is read in place by api_jparse(), without a tree, against a table of
 * the fields its endpoint takes (api_jfield: name, kind, where the value goes, range).
 * Through jansson a plain search cost more than the HNSW search itself (a tree of 130
 * nodes, one malloc and one locale lookup per number); here a query vector is written
 * straight into its float array. The scanner accepts what jansson accepts and reads the
 * same numbers: integers through int64 (a longer one is "too big", as in jansson), reals
 * as strtod reads them, computed exactly without strtod when both the digits and the
 * power of ten are exact doubles. The rules, the same for every endpoint: a body is one
 * object; a field named twice is refused; unknown fields are refused when strict (the
 * native API) and skipped otherwise (Qdrant's clients send fields quiverd has no use
 * for); null is an absent field; integers are integers in range; vector components are
 * numbers that fit a float (JSON cannot spell NaN or Infinity, but 1e39 reads as a finite
 * double and would become +Inf as a float). The whole text is read even after a bad
 * field: a syntax error anywhere wins (the body is judged as JSON first), otherwise the
 * first bad field in the text is the one reported, with the code a tree-based check
 * would give.
 *
 * Out. A buffered writer (small pieces go to the sink in a few large writes); strings
 * as jansson writes them; stored values (payloads) copied as they are stored, never
 * parsed into a tree and written again, except that each real is written in its
 * shortest exact form (the library stores jansson's 17 digits, 0.1 as
 * 0.10000000000000001; the reply says 0.1, the same double); floats (scores, vector
 * components) with the 9 significant digits that round-trip them, without printf.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

int api_jfail(api_jerr *e, const char *code, const char *fmt, ...)
{
    va_list ap;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- the scanner ------------------------------------------------------------------- */

static int syntax(api_jread *rd, const char *what)
{
    int line = 1, col = 1;
    for (const char *q = rd->start; q < rd->p && q < rd->end; q++) {
        if (*q == '\n') line++, col = 1;
        else col++;
    }
    return api_jfail(&rd->syntax, "invalid_json", "malformed JSON at line %d column %d: %s", line, col, what);
}

static const char *ws(api_jread *rd)
{
    while (rd->p < rd->end && (*rd->p == ' ' || *rd->p == '\t' || *rd->p == '\n' || *rd->p == '\r')) rd->p++;
    return rd->p;
}

static int lit(api_jread *rd, char c)
{
    ws(rd);
    if (rd->p == rd->end || *rd->p != c) {
        char what[40];
        snprintf(what, sizeof what, rd->p == rd->end ? "unexpected end of input" : "'%c' expected", c);
        return syntax(rd, what);
    }
    rd->p++;
    return 0;
}

static int at_end(api_jread *rd)
{
    return ws(rd) == rd->end ? 0 : syntax(rd, "end of file expected");
}

/* After '[' or '{': 1 when a first element follows, 0 when close came at once. */
static int open_list(api_jread *rd, char close)
{
    rd->p++;
    if (ws(rd) < rd->end && *rd->p == close) {
        rd->p++;
        return 0;
    }
    return 1;
}

/* After an element: 1 when another follows, 0 at close, -1 for a syntax error. */
static int more(api_jread *rd, char close)
{
    if (ws(rd) < rd->end && *rd->p == ',') {
        rd->p++;
        return 1;
    }
    return lit(rd, close) ? -1 : 0;
}

int api_jpeek(api_jread *rd, const char *what)
{
    size_t l = strlen(what);
    ws(rd);
    return (size_t)(rd->end - rd->p) >= l && memcmp(rd->p, what, l) == 0;
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

/* The length of the UTF-8 sequence at p, 0 when it is not one jansson takes (no overlong
 * forms, surrogates or code points above U+10FFFF). Bodies are checked here, not only by
 * the library: text read in place also goes to jansson (Qdrant filters, payload
 * selectors), which refused invalid UTF-8 there as if it had run out of memory (503,
 * found by make fuzz). */
static int utf8_len(const unsigned char *p, const char *end)
{
    int k = p[0] < 0x80 ? 1 : p[0] < 0xc2 ? 0 : p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : p[0] < 0xf5 ? 4 : 0;
    unsigned u = p[0] & (0x7fu >> k);
    if (k == 0 || end - (const char *)p < k) return 0;
    for (int i = 1; i < k; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        u = u << 6 | (p[i] & 0x3fu);
    }
    if ((k == 3 && (u < 0x800 || (u >= 0xd800 && u < 0xe000))) || (k == 4 && (u < 0x10000 || u > 0x10ffff))) return 0;
    return k;
}

/* A string, decoded into buf (cap bytes, NUL-terminated, cut short when longer; NULL:
 * only checked); *len (may be NULL) gets its full decoded length. */
static int string(api_jread *rd, char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    if (rd->p == rd->end || *rd->p != '"') return syntax(rd, "string expected");
    rd->p++;
    for (;;) {
        if (rd->p == rd->end) return syntax(rd, "premature end of input in a string");
        unsigned c = (unsigned char)*rd->p++;
        char out[4];
        int k = 1;
        if (c == '"') break;
        if (c < 0x20) return syntax(rd, "control character in a string");
        out[0] = (char)c;
        if (c >= 0x80) {
            if (!(k = utf8_len((const unsigned char *)rd->p - 1, rd->end))) {
                rd->p--;
                return syntax(rd, "invalid UTF-8 in a string");
            }
            memcpy(out, rd->p - 1, (size_t)k);
            rd->p += k - 1;
        } else if (c == '\\') {
            if (rd->p == rd->end) return syntax(rd, "premature end of input in a string");
            c = (unsigned char)*rd->p++;
            const char *esc = strchr("\"\\/bfnrt", (int)c);
            if (c && esc) {
                out[0] = "\"\\/\b\f\n\r\t"[esc - "\"\\/bfnrt"];
            } else if (c == 'u') {
                unsigned u, lo;
                if (rd->end - rd->p < 4 || hex4(rd->p, &u)) return syntax(rd, "invalid \\u escape");
                rd->p += 4;
                if (u >= 0xd800 && u < 0xdc00) {            /* a surrogate pair */
                    if (rd->end - rd->p < 6 || rd->p[0] != '\\' || rd->p[1] != 'u' || hex4(rd->p + 2, &lo) ||
                        lo < 0xdc00 || lo >= 0xe000)
                        return syntax(rd, "invalid Unicode surrogate pair");
                    rd->p += 6;
                    u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                } else if (u >= 0xdc00 && u < 0xe000) {
                    return syntax(rd, "invalid Unicode surrogate");
                }
                if (u == 0) return syntax(rd, "\\u0000 is not allowed");
                if (u < 0x80) out[0] = (char)u;
                else if (u < 0x800) out[0] = (char)(0xc0 | u >> 6), out[1] = (char)(0x80 | (u & 0x3f)), k = 2;
                else if (u < 0x10000) out[0] = (char)(0xe0 | u >> 12), out[1] = (char)(0x80 | (u >> 6 & 0x3f)),
                                      out[2] = (char)(0x80 | (u & 0x3f)), k = 3;
                else out[0] = (char)(0xf0 | u >> 18), out[1] = (char)(0x80 | (u >> 12 & 0x3f)),
                     out[2] = (char)(0x80 | (u >> 6 & 0x3f)), out[3] = (char)(0x80 | (u & 0x3f)), k = 4;
            } else {
                return syntax(rd, "invalid escape");
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

static int number_next(api_jread *rd)
{
    char c = ws(rd) < rd->end ? *rd->p : 0;
    return c == '-' || is_digit(c);
}

/* Powers of ten that a double holds exactly. */
static const double exact_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A number into *out; *is_int when it has no fraction or exponent, and then (ival not
 * NULL) its exact value in *ival. */
static int number(api_jread *rd, double *out, int *is_int, long long *ival)
{
    /* strict grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
    const char *p = rd->p, *end = rd->end, *start = p;
    int neg = 0, sig = 0, exp10 = 0, overflow = 0;
    uint64_t m = 0;
    if (p < end && *p == '-') { neg = 1; p++; }
    if (p == end || !is_digit(*p)) return syntax(rd, "invalid token");
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p)) return syntax(rd, "invalid number (leading zero)");
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
        if (p == end || !is_digit(*p)) { rd->p = p; return syntax(rd, "invalid number (no digit after '.')"); }
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
        if (p == end || !is_digit(*p)) { rd->p = p; return syntax(rd, "invalid number (no exponent digits)"); }
        for (; p < end && is_digit(*p); p++)
            if (e < 100000) e = e * 10 + (*p - '0');
        exp10 += eneg ? -e : e;
    }
    char tok[400];
    size_t len = (size_t)(p - start);
    if (*is_int && !overflow && sig <= 18) {
        long long v = neg ? -(long long)m : (long long)m;  /* as jansson: -0 is 0; m < 10^18 < 2^63 */
        *out = (double)v;
        if (ival) *ival = v;
    } else if (!*is_int && !overflow && m <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
        /* both operands exact, so the one IEEE operation rounds correctly: strtod's answer */
        double d = (double)m;
        d = exp10 >= 0 ? d * exact_pow10[exp10] : d / exact_pow10[-exp10];
        *out = neg ? -d : d;
    } else {
        if (len >= sizeof tok) return syntax(rd, "number too long");
        memcpy(tok, start, len);
        tok[len] = 0;
        errno = 0;
        if (*is_int) {
            long long v = strtoll(tok, NULL, 10);          /* jansson's integers are int64 */
            char what[sizeof tok + 40];
            snprintf(what, sizeof what, "too big %sinteger near '%s'", neg ? "negative " : "", tok);
            if (errno == ERANGE) return syntax(rd, what);
            *out = (double)v;
            if (ival) *ival = v;
        } else {
            *out = strtod(tok, NULL);                       /* quiverd never calls setlocale */
            if (errno == ERANGE && isinf(*out)) return syntax(rd, "real number overflow");
        }
    }
    rd->p = p;
    return 0;
}

static int skip_value(api_jread *rd, int depth)
{
    if (depth > 2048) return syntax(rd, "maximum parsing depth reached");   /* jansson's limit */
    if (ws(rd) == rd->end) return syntax(rd, "unexpected end of input");
    char c = *rd->p;
    if (c == '"') return string(rd, NULL, 0, NULL);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        int m = open_list(rd, close);
        while (m > 0) {
            if (c == '{' && (ws(rd), string(rd, NULL, 0, NULL) || lit(rd, ':'))) return -1;
            if (skip_value(rd, depth + 1) || (m = more(rd, close)) < 0) return -1;
        }
        return 0;
    }
    static const char *const lits[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(lits[i]);
        if ((size_t)(rd->end - rd->p) >= l && memcmp(rd->p, lits[i], l) == 0) { rd->p += l; return 0; }
    }
    double d;
    int is_int;
    return number(rd, &d, &is_int, NULL);
}

/* ---- the field reader --------------------------------------------------------------- */

int api_jbad(api_jread *rd, int skip, const char *code, const char *fmt, ...)
{
    if (!rd->bad) {
        va_list ap;
        va_start(ap, fmt);
        rd->e.code = code;
        vsnprintf(rd->e.msg, sizeof rd->e.msg, fmt, ap);
        va_end(ap);
        rd->bad = 1;
    }
    return skip && skip_value(rd, 0) ? -1 : 1;
}

const char *api_jwhere(const api_jread *rd)
{
    return rd->plen ? rd->path : rd->name;
}

const char *api_jowner(const api_jread *rd, char *buf, size_t cap)
{
    size_t n = rd->plen;
    while (n && rd->path[n - 1] != '.') n--;
    if (n == 0) return NULL;
    snprintf(buf, cap, "%.*s", (int)n - 1, rd->path);
    return buf;
}

/* Append to the path: ".key" (or "key" at the top), or "[i]"; returns the old length. */
static size_t path_push(api_jread *rd, const char *key, size_t klen, size_t index)
{
    size_t at = rd->plen, room = sizeof rd->path - 1 - at;
    if (key) {
        if (at && room) rd->path[rd->plen++] = '.', room--;
        klen = klen < room ? klen : room;
        memcpy(rd->path + rd->plen, key, klen);
        rd->plen += klen;
    } else {
        int n = snprintf(rd->path + at, room + 1, "[%zu]", index);
        rd->plen += n > 0 && (size_t)n <= room ? (size_t)n : 0;
    }
    rd->path[rd->plen] = 0;
    return at;
}

static void path_pop(api_jread *rd, size_t at)
{
    rd->plen = at;
    rd->path[at] = 0;
}

int api_jread_uint(api_jread *rd, uint64_t lo, uint64_t hi, uint64_t *out)
{
    double d;
    int is_int;
    long long v = 0;
    if (!number_next(rd)) return api_jbad(rd, 1, "invalid_argument", "'%s' must be an integer", rd->path);
    if (number(rd, &d, &is_int, &v)) return -1;
    if (!is_int) return api_jbad(rd, 0, "invalid_argument", "'%s' must be an integer", rd->path);
    if (v < 0 || (uint64_t)v < lo || (uint64_t)v > hi)
        return api_jbad(rd, 0, "invalid_argument", "'%s' must be in %llu..%llu, got %lld", rd->path,
                        (unsigned long long)lo, (unsigned long long)hi, v);
    *out = (uint64_t)v;
    return 0;
}

int api_jread_string(api_jread *rd, char *buf, size_t cap, size_t *len)
{
    if (!api_jpeek(rd, "\"")) return api_jbad(rd, 1, "invalid_argument", "'%s' must be a string", rd->path);
    return string(rd, buf, cap, len);
}

int api_jread_text(api_jread *rd, api_jtext *out)
{
    const char *from = ws(rd);
    if (skip_value(rd, 0)) return -1;
    out->p = from;
    out->len = (size_t)(rd->p - from);
    return 0;
}

int api_jread_vector(api_jread *rd, float *vec)
{
    size_t n = 0, not_number = SIZE_MAX, out_of_range = SIZE_MAX;
    double bad = 0;
    char buf[sizeof rd->path];
    const char *what = api_jowner(rd, buf, sizeof buf);
    what = what ? what : rd->name;
    if (api_jpeek(rd, "{"))
        return api_jbad(rd, 1, "invalid_argument", "%s: named vectors are not supported by quiverd", what);
    if (!api_jpeek(rd, "[")) return api_jbad(rd, 1, "invalid_argument", "%s: 'vector' must be an array of numbers", what);
    const char *at = rd->p;
    int m = open_list(rd, ']');
    if (m && api_jpeek(rd, "[")) {
        rd->p = at;
        return api_jbad(rd, 1, "invalid_argument", "%s: multivectors are not supported by quiverd", what);
    }
    for (; m > 0; n++) {
        if (number_next(rd)) {
            double d;
            int is_int;
            if (number(rd, &d, &is_int, NULL)) return -1;
            if (fabs(d) > (double)FLT_MAX && out_of_range == SIZE_MAX) out_of_range = n, bad = d;
            if (n < rd->dim) vec[n] = (float)d;
        } else {
            if (skip_value(rd, 0)) return -1;
            if (not_number == SIZE_MAX) not_number = n;
        }
        if ((m = more(rd, ']')) < 0) return -1;
    }
    if (n != rd->dim)
        return api_jbad(rd, 0, "dimension_mismatch", "%s: vector has dimension %zu, collection has %u", what, n, rd->dim);
    if (not_number != SIZE_MAX)
        return api_jbad(rd, 0, "invalid_argument", "%s: vector component %zu is not a number", what, not_number);
    if (out_of_range != SIZE_MAX)
        return api_jbad(rd, 0, "invalid_argument", "%s: vector component %zu (%g) is outside the float range", what,
                        out_of_range, bad);
    return 0;
}

int api_jread_array(api_jread *rd, int (*each)(api_jread *rd, size_t i, void *arg), void *arg)
{
    if (!api_jpeek(rd, "[")) return api_jbad(rd, 1, "invalid_argument", "'%s' must be an array", rd->path);
    int m = open_list(rd, ']');
    for (size_t i = 0; m > 0; i++) {
        size_t at = path_push(rd, NULL, 0, i);
        int rc = each(rd, i, arg);
        path_pop(rd, at);
        if (rc < 0 || (m = more(rd, ']')) < 0) return -1;
    }
    return 0;
}

/* {} (an empty object) next: consumed. */
static int empty_object(api_jread *rd)
{
    const char *q = ws(rd);
    if (q == rd->end || *q++ != '{') return 0;
    while (q < rd->end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')) q++;
    if (q == rd->end || *q != '}') return 0;
    rd->p = q + 1;
    return 1;
}

int api_jread_field(api_jread *rd, const api_jfield *f, void *dst)
{
    void *v = (char *)dst + f->off;
    uint64_t u;
    int rc, is_int;
    if (api_jpeek(rd, "null")) {
        rd->p += 4;
        return 0;
    }
    switch (f->kind) {
    case API_J_U32:
    case API_J_U64:
        if ((rc = api_jread_uint(rd, f->lo, f->hi, &u)) == 0) {
            if (f->kind == API_J_U32) *(uint32_t *)v = (uint32_t)u;
            else *(uint64_t *)v = u;
        }
        return rc;
    case API_J_BOOL:
        if (api_jpeek(rd, "true") || api_jpeek(rd, "false")) {
            int t = *rd->p == 't';
            *(int *)v = !f->hi ? t : t ? (int)f->hi : (int)f->lo;
            rd->p += t ? 4 : 5;
            return 0;
        }
        return api_jbad(rd, 1, "invalid_argument", "'%s' must be true or false", rd->path);
    case API_J_NUM: {
        double d;
        if (!number_next(rd)) return api_jbad(rd, 1, "invalid_argument", "'%s' must be a number", rd->path);
        if (number(rd, &d, &is_int, NULL)) return -1;
        if (f->hi && !(d >= (double)f->lo && d <= (double)f->hi))
            return api_jbad(rd, 0, "invalid_argument", "'%s' must be in %llu..%llu, got %g", rd->path,
                            (unsigned long long)f->lo, (unsigned long long)f->hi, d);
        *(double *)v = d;
        return 0;
    }
    case API_J_NAME: {
        const char *const *names = f->arg;
        char s[32] = "", list[160] = "";
        size_t len;
        if (api_jpeek(rd, "\"")) {
            if (string(rd, s, sizeof s, &len)) return -1;
            for (int i = 0; names[i]; i++)
                if (len == strlen(names[i]) && strcmp(s, names[i]) == 0) {
                    *(int *)v = (int)f->lo + i;
                    return 0;
                }
        } else if (skip_value(rd, 0)) {
            return -1;
        }
        for (int i = 0; names[i]; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s\"%s\"", !i ? "" : names[i + 1] ? ", " : " or ",
                     names[i]);
        return api_jbad(rd, 0, "invalid_argument", "'%s' must be %s, not \"%s\"", rd->path, list, s);
    }
    case API_J_VECTOR:
        return api_jread_vector(rd, *(float **)v);
    case API_J_OBJTEXT:
        if (!api_jpeek(rd, "{")) return api_jbad(rd, 1, "invalid_argument", "'%s' must be an object", rd->path);
        return api_jread_text(rd, v);
    case API_J_TEXT:
        return api_jread_text(rd, v);
    case API_J_OBJECT:
        return api_jread_object(rd, f->arg, dst);
    case API_J_CALL:
        return f->read(rd, v);
    case API_J_REFUSE:
        if (empty_object(rd)) return 0;
        return api_jbad(rd, 1, "invalid_argument", "%s not supported by quiverd", (const char *)f->arg);
    }
    return api_jbad(rd, 1, "internal", "field '%s' of an unknown kind", rd->path);
}

int api_jread_object(api_jread *rd, const api_jfield *fields, void *dst)
{
    uint64_t seen = 0, present = 0;
    if (!api_jpeek(rd, "{")) return api_jbad(rd, 1, "invalid_argument", "%s must be an object", api_jwhere(rd));
    for (int m = open_list(rd, '}'); m > 0;) {
        char key[64];
        size_t klen, i = 0;
        const char *at = ws(rd);
        if (string(rd, key, sizeof key, &klen) || lit(rd, ':')) return -1;
        /* a last field "*" takes every key not listed (a map of names: Qdrant's named
         * vectors); its reader finds the key in rd->key */
        while (fields[i].key && strcmp(fields[i].key, "*") != 0 && !(klen == strlen(fields[i].key) && strcmp(key, fields[i].key) == 0)) i++;
        int any = fields[i].key && strcmp(fields[i].key, "*") == 0;
        uint64_t bit = fields[i].key && !any ? UINT64_C(1) << i : 0;
        rd->key = key;
        rd->klen = klen;
        if (seen & bit) {
            rd->p = at;
            return syntax(rd, "duplicate object key");
        }
        seen |= bit;
        int rc;
        if (!fields[i].key && rd->strict) {
            rc = api_jbad(rd, 1, "unknown_field", "unknown field '%.47s' in %s", key, api_jwhere(rd));
        } else if (!fields[i].key) {
            rc = skip_value(rd, 0);
        } else {
            size_t was = path_push(rd, key, klen, 0);
            present |= api_jpeek(rd, "null") ? 0 : bit;
            rc = api_jread_field(rd, &fields[i], dst);
            path_pop(rd, was);
        }
        if (rc < 0 || (m = more(rd, '}')) < 0) return -1;
    }
    for (size_t i = 0; fields[i].key; i++)
        if (fields[i].required && !(present & UINT64_C(1) << i))
            return api_jbad(rd, 0, "invalid_argument", "%s: missing '%s'", api_jwhere(rd), fields[i].key);
    return 0;
}

/* The whole text, once read (read: what the reader returned): a syntax error anywhere
 * wins, then the first bad field. */
static int verdict(api_jread *rd, int read, api_jerr *e)
{
    if (read < 0 || at_end(rd)) *e = rd->syntax;
    else if (rd->bad) *e = rd->e;
    else return 0;
    return -1;
}

int api_jparse(api_jread *rd, const char *text, size_t len, const api_jfield *fields, void *dst, api_jerr *e)
{
    rd->p = rd->start = text;
    rd->end = text + len;
    rd->bad = 0;
    rd->plen = 0;
    rd->path[0] = 0;
    if (len == 0) return api_jfail(e, "invalid_json", "request body is empty; expected a JSON object");
    if (!api_jpeek(rd, "{")) {
        /* valid JSON that is not an object, or not JSON at all */
        if (!skip_value(rd, 0) && !at_end(rd)) api_jfail(&rd->syntax, "invalid_json", "the body must be a JSON object");
    } else {
        return verdict(rd, api_jread_object(rd, fields, dst), e);
    }
    *e = rd->syntax;
    return -1;
}

int api_jparse_vector(const char *text, size_t len, uint32_t dim, float *vec, api_jerr *e)
{
    api_jread rd = {.p = text, .start = text, .end = text + len, .dim = dim, .name = "the vector"};
    return verdict(&rd, api_jread_vector(&rd, vec), e);
}

int api_jfind(const char *text, size_t len, const char *key, api_jtext *val)
{
    api_jread rd = {.p = text, .start = text, .end = text + len};
    char k[256];
    size_t klen;
    if (lit(&rd, '{')) return -1;
    while (ws(&rd) < rd.end && *rd.p == '"') {
        if (string(&rd, k, sizeof k, &klen) || lit(&rd, ':')) return -1;
        if (klen < sizeof k && strcmp(k, key) == 0) return api_jread_text(&rd, val);
        if (skip_value(&rd, 0)) return -1;
        if (ws(&rd) < rd.end && *rd.p == ',') rd.p++;
    }
    return -1;
}

int api_jstring(api_jtext t, char *buf, size_t cap)
{
    api_jread rd = {.p = t.p, .start = t.p, .end = t.p + t.len};
    size_t len;
    return t.p && string(&rd, buf, cap, &len) == 0 && len < cap ? 0 : -1;
}

int api_stored_string(const char *text, const char *key, char *buf, size_t cap)
{
    api_jtext v;
    return text && api_jfind(text, strlen(text), key, &v) == 0 ? api_jstring(v, buf, cap) : -1;
}

/* ---- writing ------------------------------------------------------------------------ */

void api_wflush(api_wbuf *w)
{
    if (w->n && (!w->sink || w->sink(w->sink_arg, w->b, w->n))) w->err = 1;
    w->n = 0;
}

void api_wbig(api_wbuf *w, const char *s, size_t len)
{
    api_wflush(w);
    if (len > sizeof w->b) {
        if (!w->sink || w->sink(w->sink_arg, s, len)) w->err = 1;
        return;
    }
    memcpy(w->b, s, len);
    w->n = len;
}

void api_wu64(api_wbuf *w, uint64_t v)
{
    char d[20];
    int n = 20;
    do { d[--n] = (char)('0' + v % 10); v /= 10; } while (v);
    api_wput(w, d + n, (size_t)(20 - n));
}

void api_wscalar(api_wbuf *w, char type, int64_t i, const char *s)
{
    char num[24];
    if (type == 's') api_wstring(w, s, strlen(s));
    else if (type == 'b') api_wput(w, i ? "true" : "false", i ? 4 : 5);
    else api_wput(w, num, (size_t)snprintf(num, sizeof num, "%lld", (long long)i));
}

void api_wfloat(api_wbuf *w, float f)
{
    char buf[40];
    int n = isfinite(f) ? api_fmt_score(buf, sizeof buf, f) : -1;
    if (n < 0) API_WLIT(w, "null");
    else api_wput(w, buf, (size_t)n);
}

void api_wvector(api_wbuf *w, const float *v, uint32_t dim)
{
    API_WLIT(w, "[");
    for (uint32_t j = 0; j < dim; j++) {
        if (j) API_WLIT(w, ",");
        api_wfloat(w, v[j]);
    }
    API_WLIT(w, "]");
}

void api_wstring(api_wbuf *w, const char *s, size_t len)
{
    size_t from = 0;
    API_WLIT(w, "\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        char esc[8];
        const char *named = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b" : c == '\f' ? "\\f"
                          : c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
        int n = named ? snprintf(esc, sizeof esc, "%s", named) : snprintf(esc, sizeof esc, "\\u%04X", c);
        api_wput(w, s + from, i - from);
        api_wput(w, esc, (size_t)n);
        from = i + 1;
    }
    api_wput(w, s + from, len - from);
    API_WLIT(w, "\"");
}

/* Copy the valid JSON text [p, end) with each real in its shortest form. */
static void copy_value(api_wbuf *w, const char *p, const char *end)
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
                n = api_fmt_double(num, sizeof num, strtod(tok, NULL));
            }
            if (n > 0) {
                api_wput(w, from, (size_t)(p - from));
                api_wput(w, num, (size_t)n);
                from = q;
            }
            p = q;
        } else {
            p++;
        }
    }
    api_wput(w, from, (size_t)(p - from));
}

int api_wstored(api_wbuf *w, const char *text, int (*keep)(const char *key, void *arg), void *keep_arg)
{
    api_jread s = {.p = text, .start = text, .end = text + strlen(text)};
    if (skip_value(&s, 0) || at_end(&s)) return -1;       /* checked whole before a byte goes out */
    s.p = text;
    if (!keep || *ws(&s) != '{') {
        copy_value(w, s.p, s.end);
        return 0;
    }
    int first = 1;
    char key[256];
    API_WLIT(w, "{");
    for (s.p++; ws(&s) < s.end && *s.p == '"';) {
        const char *k0 = s.p;
        string(&s, key, sizeof key, NULL);
        lit(&s, ':');
        const char *v0 = ws(&s);
        skip_value(&s, 0);
        if (keep(key, keep_arg)) {
            if (!first) API_WLIT(w, ",");
            api_wput(w, k0, (size_t)(v0 - k0));
            copy_value(w, v0, s.p);
            first = 0;
        }
        if (ws(&s) < s.end && *s.p == ',') s.p++;
    }
    API_WLIT(w, "}");
    return 0;
}

/* ---- numbers out ----------------------------------------------------------------------- */

/* jansson's touches after "%.*g": ".0" when the text reads like an integer, and the
 * exponent without '+' or leading zeros. n is strlen(buf); returns the new length. */
static int jansson_style(char *buf, int n, size_t size)
{
    if (!strchr(buf, '.') && !strchr(buf, 'e')) {
        if ((size_t)n + 3 > size) return -1;
        buf[n++] = '.';
        buf[n++] = '0';
        buf[n] = 0;
    }
    char *e = strchr(buf, 'e');
    if (e) {
        char *from = e + 1, *to = e + 1;
        if (*from == '-') from++, to++;
        else if (*from == '+') from++;
        while (*from == '0' && from[1]) from++;
        memmove(to, from, strlen(from) + 1);
        n = (int)strlen(buf);
    }
    return n;
}

int api_fmt_real9(char *buf, size_t size, double v)
{
    int n = snprintf(buf, size, "%.9g", v);
    if (n < 0 || (size_t)n >= size) return -1;
    return jansson_style(buf, n, size);
}

int api_fmt_double(char *buf, size_t size, double v)
{
    /* The fewest digits that read back as the same double (17 always do). A normal double
     * has more than 15 significant digits, so its shortest form, zero-padded, is its
     * 15-digit rounding and the search starts there; a subnormal has fewer (4.9e-324 is
     * 5e-324), so it starts at 1. */
    int n = -1;
    for (int prec = v != 0 && fabs(v) < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        n = snprintf(buf, size, "%.*g", prec, v);
        if (n < 0 || (size_t)n >= size) return -1;
        if (prec == 17 || strtod(buf, NULL) == v) break;
    }
    return jansson_style(buf, n, size);
}
/* Powers of ten that a long double holds exactly. */
static const long double exact_pow10l[] = {1e0L, 1e1L, 1e2L, 1e3L, 1e4L, 1e5L, 1e6L, 1e7L, 1e8L,
                                           1e9L, 1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L};

/*
 * api_fmt_real9((double)f) without printf's multi-precision arithmetic (65 instead of
 * 150 ns a number). A float is m * 2^e with m < 2^24; for 1e-8 <= |f| < 1e9 the nine
 * digits wanted are |f| * 10^k with k <= 17, m * 5^k < 2^64, so the product is exact in a
 * long double (64-bit significand), and so are its integer part and the rest, which
 * round it to nearest with ties to even, as glibc's printf does. The layout is %g's:
 * exponent form below 10^-4, trailing zeros dropped. Other numbers (and machines whose
 * long double is a double) take api_fmt_real9().
 */
int api_fmt_score(char *buf, size_t size, float f)
{
#if LDBL_MANT_DIG >= 64
    long double x = fabsl((long double)f);
    if (size >= 32 && x >= 1e-8L && x < 1e9L) {
        int e = (int)floor(ilogbl(x) * 0.30102999566398120), k = 8 - e;   /* 10^e <= x, maybe one short */
        long double n = x * exact_pow10l[k];
        if (n >= 1e9L) {
            n = x * exact_pow10l[--k];
            e++;
        }
        uint64_t d = (uint64_t)n;
        long double rest = n - (long double)d;
        if (rest > 0.5L || (rest == 0.5L && (d & 1))) d++;
        if (d == 1000000000u) {                        /* 999999999.5 -> 1000000000 */
            d = 100000000u;
            e++;
        }
        char dg[9], *p = buf;
        int len = 9;
        for (int i = 8; i >= 0; i--, d /= 10) dg[i] = (char)('0' + d % 10);
        while (len > 1 && dg[len - 1] == '0') len--;
        if (f < 0) *p++ = '-';
        if (e < -4) {                                  /* 1.5e-5 */
            *p++ = dg[0];
            if (len > 1) {
                *p++ = '.';
                memcpy(p, dg + 1, (size_t)len - 1);
                p += len - 1;
            }
            p += sprintf(p, "e-%d", -e);
        } else if (e < 0) {                            /* 0.00015 */
            memcpy(p, "0.0000", (size_t)(1 - e));
            memcpy(p + 1 - e, dg, (size_t)len);
            p += 1 - e + len;
        } else {                                       /* 150.0, 1.5 */
            for (int i = 0; i <= e; i++) *p++ = i < len ? dg[i] : '0';
            *p++ = '.';
            for (int i = e + 1; i < len; i++) *p++ = dg[i];
            if (len <= e + 1) *p++ = '0';              /* jansson's ".0" */
        }
        *p = 0;
        return (int)(p - buf);
    }
#endif
    return api_fmt_real9(buf, size, (double)f);
}

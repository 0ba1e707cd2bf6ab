/*
 * server/json.c -- JSON in and out for quiverd.
 *
 * In, as trees (jansson): a request body must be one JSON object (duplicate keys
 * refused), an object may hold only the fields its endpoint names, integers must be
 * integers within their range, and vector components numbers that fit a float. JSON
 * cannot spell NaN or Infinity, but 1e39 parses as a finite double and would become +Inf
 * as a float, so it is refused.
 *
 * In, as text (srv_jscan): the search parser (search.c) and stored payloads read JSON in
 * place, without a tree -- through jansson a plain search cost more than the HNSW search
 * itself (a tree of 130 nodes, one malloc and one locale lookup per number). The scanner
 * accepts what jansson accepts and reads the same numbers: integers through int64 (a
 * longer one is "too big", as in jansson), reals as strtod reads them, computed exactly
 * without strtod when both the digits and the power of ten are exact doubles.
 *
 * Out: stored payloads are copied into replies as stored, except that each real is
 * written in its shortest exact form (the library stores jansson's 17 digits, 0.1 as
 * 0.10000000000000001; the reply says 0.1, the same double). Scores and vector components
 * are floats, written with the 9 significant digits that round-trip them, without printf.
 */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "server/server.h"

int srv_jfail(srv_jerr *e, const char *code, const char *fmt, ...)
{
    va_list ap;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- trees ------------------------------------------------------------------------- */

json_t *srv_json_parse(const char *text, size_t len, srv_jerr *e)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        srv_jfail(e, "invalid_json", "malformed JSON at line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        srv_jfail(e, "invalid_json", "the body must be a JSON object");
        return NULL;
    }
    return root;
}

int srv_json_only(const json_t *obj, const char *what, const char *const *allowed, srv_jerr *err)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        int ok = 0;
        for (size_t i = 0; allowed[i] && !ok; i++) ok = strcmp(key, allowed[i]) == 0;
        if (!ok) {
            /* the key may hold anything; print a bounded, sanitized prefix */
            char shown[48];
            size_t j = 0;
            for (; key[j] && j < sizeof shown - 1; j++) shown[j] = isprint((unsigned char)key[j]) ? key[j] : '?';
            shown[j] = 0;
            return srv_jfail(err, "unknown_field", "unknown field '%s' in %s", shown, what);
        }
    }
    return 0;
}

int srv_json_uint(const json_t *obj, const char *key, uint64_t lo, uint64_t hi, uint64_t *out, srv_jerr *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v)) return srv_jfail(err, "invalid_argument", "'%s' must be an integer", key);
    json_int_t x = json_integer_value(v);
    if (x < 0 || (uint64_t)x < lo || (uint64_t)x > hi)
        return srv_jfail(err, "invalid_argument", "'%s' must be in %llu..%llu, got %lld", key,
                         (unsigned long long)lo, (unsigned long long)hi, (long long)x);
    *out = (uint64_t)x;
    return 0;
}

int srv_json_vector(const json_t *v, const char *what, uint32_t dim, float *out, srv_jerr *err)
{
    if (!v) return srv_jfail(err, "invalid_argument", "%s: missing 'vector'", what);
    if (!json_is_array(v)) return srv_jfail(err, "invalid_argument", "%s: 'vector' must be an array of numbers", what);
    size_t n = json_array_size(v);
    if (n != dim)
        return srv_jfail(err, "dimension_mismatch", "%s: vector has dimension %zu, collection has %u", what, n, dim);
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(v, i);
        if (!json_is_number(x)) return srv_jfail(err, "invalid_argument", "%s: vector component %zu is not a number", what, i);
        double d = json_number_value(x);
        if (!isfinite(d) || fabs(d) > (double)FLT_MAX)
            return srv_jfail(err, "invalid_argument", "%s: vector component %zu (%g) is outside the float range", what, i, d);
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

/* ---- text -------------------------------------------------------------------------- */

int srv_js_syntax(srv_jscan *s, const char *what)
{
    int line = 1, col = 1;
    for (const char *q = s->start; q < s->p && q < s->end; q++) {
        if (*q == '\n') line++, col = 1;
        else col++;
    }
    return srv_jfail(s->e, "invalid_json", "malformed JSON at line %d column %d: %s", line, col, what);
}

const char *srv_js_ws(srv_jscan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
    return s->p;
}

int srv_js_lit(srv_jscan *s, char c)
{
    srv_js_ws(s);
    if (s->p == s->end || *s->p != c) {
        char what[40];
        snprintf(what, sizeof what, s->p == s->end ? "unexpected end of input" : "'%c' expected", c);
        return srv_js_syntax(s, what);
    }
    s->p++;
    return 0;
}

int srv_js_end(srv_jscan *s)
{
    return srv_js_ws(s) == s->end ? 0 : srv_js_syntax(s, "end of file expected");
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

int srv_js_string(srv_jscan *s, char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    if (s->p == s->end || *s->p != '"') return srv_js_syntax(s, "string expected");
    s->p++;
    for (;;) {
        if (s->p == s->end) return srv_js_syntax(s, "premature end of input in a string");
        unsigned c = (unsigned char)*s->p++;
        char out[4];
        int k = 1;
        if (c == '"') break;
        if (c < 0x20) return srv_js_syntax(s, "control character in a string");
        out[0] = (char)c;
        if (c == '\\') {
            if (s->p == s->end) return srv_js_syntax(s, "premature end of input in a string");
            c = (unsigned char)*s->p++;
            const char *esc = strchr("\"\\/bfnrt", (int)c);
            if (c && esc) {
                out[0] = "\"\\/\b\f\n\r\t"[esc - "\"\\/bfnrt"];
            } else if (c == 'u') {
                unsigned u, lo;
                if (s->end - s->p < 4 || hex4(s->p, &u)) return srv_js_syntax(s, "invalid \\u escape");
                s->p += 4;
                if (u >= 0xd800 && u < 0xdc00) {            /* a surrogate pair */
                    if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || hex4(s->p + 2, &lo) ||
                        lo < 0xdc00 || lo >= 0xe000)
                        return srv_js_syntax(s, "invalid Unicode surrogate pair");
                    s->p += 6;
                    u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                } else if (u >= 0xdc00 && u < 0xe000) {
                    return srv_js_syntax(s, "invalid Unicode surrogate");
                }
                if (u == 0) return srv_js_syntax(s, "\\u0000 is not allowed");
                if (u < 0x80) out[0] = (char)u;
                else if (u < 0x800) out[0] = (char)(0xc0 | u >> 6), out[1] = (char)(0x80 | (u & 0x3f)), k = 2;
                else if (u < 0x10000) out[0] = (char)(0xe0 | u >> 12), out[1] = (char)(0x80 | (u >> 6 & 0x3f)),
                                      out[2] = (char)(0x80 | (u & 0x3f)), k = 3;
                else out[0] = (char)(0xf0 | u >> 18), out[1] = (char)(0x80 | (u >> 12 & 0x3f)),
                     out[2] = (char)(0x80 | (u >> 6 & 0x3f)), out[3] = (char)(0x80 | (u & 0x3f)), k = 4;
            } else {
                return srv_js_syntax(s, "invalid escape");
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

int srv_js_number(srv_jscan *s, double *out, int *is_int)
{
    /* strict grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
    const char *p = s->p, *end = s->end, *start = p;
    int neg = 0, sig = 0, exp10 = 0, overflow = 0;
    uint64_t m = 0;
    if (p < end && *p == '-') { neg = 1; p++; }
    if (p == end || !is_digit(*p)) return srv_js_syntax(s, "invalid token");
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p)) return srv_js_syntax(s, "invalid number (leading zero)");
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
        if (p == end || !is_digit(*p)) { s->p = p; return srv_js_syntax(s, "invalid number (no digit after '.')"); }
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
        if (p == end || !is_digit(*p)) { s->p = p; return srv_js_syntax(s, "invalid number (no exponent digits)"); }
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
        if (len >= sizeof tok) return srv_js_syntax(s, "number too long");
        memcpy(tok, start, len);
        tok[len] = 0;
        errno = 0;
        if (*is_int) {
            long long v = strtoll(tok, NULL, 10);          /* jansson's integers are int64 */
            if (errno == ERANGE) return srv_js_syntax(s, neg ? "too big negative integer" : "too big integer");
            *out = (double)v;
        } else {
            *out = strtod(tok, NULL);                       /* quiverd never calls setlocale */
            if (errno == ERANGE && isinf(*out)) return srv_js_syntax(s, "real number overflow");
        }
    }
    s->p = p;
    return 0;
}

static int skip_value(srv_jscan *s, int depth)
{
    if (depth > 2048) return srv_js_syntax(s, "maximum parsing depth reached");   /* jansson's limit */
    srv_js_ws(s);
    if (s->p == s->end) return srv_js_syntax(s, "unexpected end of input");
    char c = *s->p;
    if (c == '"') return srv_js_string(s, NULL, 0, NULL);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        s->p++;
        if (srv_js_ws(s) < s->end && *s->p == close) { s->p++; return 0; }
        for (;;) {
            if (c == '{' && (srv_js_ws(s), srv_js_string(s, NULL, 0, NULL) || srv_js_lit(s, ':'))) return -1;
            if (skip_value(s, depth + 1)) return -1;
            srv_js_ws(s);
            if (s->p < s->end && *s->p == ',') { s->p++; continue; }
            return srv_js_lit(s, close);
        }
    }
    static const char *const lits[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(lits[i]);
        if ((size_t)(s->end - s->p) >= l && memcmp(s->p, lits[i], l) == 0) { s->p += l; return 0; }
    }
    double d;
    int is_int;
    return srv_js_number(s, &d, &is_int);
}

int srv_js_skip(srv_jscan *s)
{
    return skip_value(s, 0);
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

int srv_fmt_real9(char *buf, size_t size, double v)
{
    int n = snprintf(buf, size, "%.9g", v);
    if (n < 0 || (size_t)n >= size) return -1;
    return jansson_style(buf, n, size);
}

int srv_fmt_double(char *buf, size_t size, double v)
{
    /* The fewest digits that read back as the same double. 15 digits are always fewest
     * when they suffice, except for subnormals (5e-324 holds 1 digit), which try all. */
    int n = -1;
    for (int prec = fabs(v) < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        n = snprintf(buf, size, "%.*g", prec, v);
        if (n < 0 || (size_t)n >= size) return -1;
        if (prec == 17 || strtod(buf, NULL) == v) break;
    }
    return jansson_style(buf, n, size);
}

/* The decimal digits of x (no leading zeros; "0" for 0) into d; returns their count. */
static int u64_digits(uint64_t x, char *d)
{
    char tmp[20];
    int n = 0;
    do { tmp[n++] = (char)('0' + x % 10); x /= 10; } while (x);
    for (int i = 0; i < n; i++) d[i] = tmp[n - 1 - i];
    return n;
}

/*
 * srv_fmt_real9((double)f) without printf. A float is m * 2^e with m < 2^24, so its
 * decimal expansion is exact in integers: m << e for e >= 0, and m * 5^-e with the point
 * -e places from the right for e < 0. Both fit 128 bits for e in -44..100, which holds
 * every float between about 1e-6 and 1e37; the rest take srv_fmt_real9(). Rounding to 9
 * significant digits is to nearest with ties to even, as glibc's printf does, and the
 * layout is %g's: exponent form when the exponent is below -4 or above 8, trailing zeros
 * dropped.
 */
int srv_fmt_score(char *buf, size_t size, float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    uint32_t bexp = (bits >> 23) & 0xff, frac = bits & 0x7fffff;
    int neg = (int)(bits >> 31);
    if (bexp == 0xff || size < 32) return -1;            /* not finite (callers check) */
    uint32_t m = bexp ? (frac | 0x800000u) : frac;
    int e2 = bexp ? (int)bexp - 150 : -149;
    if (m == 0) return sprintf(buf, neg ? "-0.0" : "0.0");
    if (e2 < -44 || e2 > 100) return srv_fmt_real9(buf, size, (double)f);

    /* N, the digits of |f| with the decimal point `point` places from the right */
    unsigned __int128 n;
    int point = 0;
    if (e2 >= 0) {
        n = (unsigned __int128)m << e2;
    } else {
        n = m;
        for (int i = 0; i < -e2; i++) n *= 5;
        point = -e2;
    }
    char d[48];
    int len;
    const uint64_t e19 = UINT64_C(10000000000000000000);
    uint64_t hi = (uint64_t)(n / e19), lo = (uint64_t)(n % e19);   /* n < 10^38: hi fits */
    if (hi) {
        len = u64_digits(hi, d);
        char tail[20];
        int t = u64_digits(lo, tail);
        memset(d + len, '0', (size_t)(19 - t));
        memcpy(d + len + 19 - t, tail, (size_t)t);
        len += 19;
    } else {
        len = u64_digits(lo, d);
    }
    int exp10 = len - point - 1;                           /* of the first digit */

    /* round to 9 significant digits, ties to even */
    if (len > 9) {
        int up = d[9] > '5';
        if (d[9] == '5') {
            int rest = 0;
            for (int i = 10; i < len && !rest; i++) rest = d[i] != '0';
            up = rest || ((d[8] - '0') & 1);
        }
        len = 9;
        if (up) {
            int i = 8;
            while (i >= 0 && d[i] == '9') d[i--] = '0';
            if (i >= 0) {
                d[i]++;
            } else {                                       /* 999999999.5 -> 1000000000 */
                d[0] = '1';
                exp10++;
            }
        }
    }
    while (len > 1 && d[len - 1] == '0') len--;            /* %g drops trailing zeros */

    char *p = buf;
    if (neg) *p++ = '-';
    if (exp10 < -4 || exp10 >= 9) {
        *p++ = d[0];
        if (len > 1) {
            *p++ = '.';
            memcpy(p, d + 1, (size_t)(len - 1));
            p += len - 1;
        }
        *p++ = 'e';
        if (exp10 < 0) *p++ = '-';
        p += u64_digits((uint64_t)(exp10 < 0 ? -exp10 : exp10), p);
    } else if (exp10 >= 0) {
        int ip = exp10 + 1;                                /* digits before the point */
        for (int i = 0; i < ip; i++) *p++ = i < len ? d[i] : '0';
        *p++ = '.';
        if (len > ip) {
            memcpy(p, d + ip, (size_t)(len - ip));
            p += len - ip;
        } else {
            *p++ = '0';                                    /* jansson's ".0" */
        }
    } else {
        *p++ = '0';
        *p++ = '.';
        for (int i = 0; i < -exp10 - 1; i++) *p++ = '0';
        memcpy(p, d, (size_t)len);
        p += len;
    }
    *p = 0;
    return (int)(p - buf);
}

int srv_put_float(struct evbuffer *out, float f)
{
    char buf[40];
    int n = isfinite(f) ? srv_fmt_score(buf, sizeof buf, f) : -1;
    return n < 0 ? srv_add_lit(out, "null") : evbuffer_add(out, buf, (size_t)n);
}

/* ---- strings and stored values out -------------------------------------------------------- */

int srv_put_string(struct evbuffer *out, const char *s, size_t len)
{
    if (srv_add_lit(out, "\"")) return -1;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        if (i > start && evbuffer_add(out, s + start, i - start)) return -1;
        char esc[8];
        const char *named = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b" : c == '\f' ? "\\f"
                          : c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
        if (named) snprintf(esc, sizeof esc, "%s", named);
        else snprintf(esc, sizeof esc, "\\u%04X", c);
        if (evbuffer_add(out, esc, strlen(esc))) return -1;
        start = i + 1;
    }
    if (len > start && evbuffer_add(out, s + start, len - start)) return -1;
    return srv_add_lit(out, "\"");
}

/* Copy the valid JSON text [p, end) with each real in its shortest form. */
static int copy_value(struct evbuffer *out, const char *p, const char *end)
{
    const char *from = p;
    while (p < end) {
        char c = *p;
        if (c == '"') {                                    /* strings as they are */
            for (p++; *p != '"'; p++)
                if (*p == '\\') p++;
            p++;
        } else if (c == '-' || is_digit(c)) {
            const char *q = p;
            int real = 0;
            while (q < end && (is_digit(*q) || *q == '-' || *q == '+' || *q == '.' || *q == 'e' || *q == 'E'))
                real |= *q == '.' || *q == 'e' || *q == 'E', q++;
            if (real) {
                char tok[400], num[40];
                size_t len = (size_t)(q - p);
                if (len >= sizeof tok) { p = q; continue; }
                memcpy(tok, p, len);
                tok[len] = 0;
                int n = srv_fmt_double(num, sizeof num, strtod(tok, NULL));
                if (n < 0 || (p > from && evbuffer_add(out, from, (size_t)(p - from))) || evbuffer_add(out, num, (size_t)n))
                    return -1;
                from = q;
            }
            p = q;
        } else {
            p++;
        }
    }
    return p > from ? evbuffer_add(out, from, (size_t)(p - from)) : 0;
}

int srv_put_stored(struct evbuffer *out, const char *text, int (*keep)(const char *key, void *arg), void *keep_arg)
{
    srv_jerr e;
    size_t len = strlen(text);
    srv_jscan s = {text, text + len, text, &e};
    if (skip_value(&s, 0) || srv_js_end(&s)) return -1;   /* checked whole before a byte goes out */
    s.p = text;
    srv_js_ws(&s);
    if (!keep || *s.p != '{') return copy_value(out, s.p, s.end);
    int first = 1;
    char key[256];
    if (srv_add_lit(out, "{")) return -1;
    for (s.p++; srv_js_ws(&s) < s.end && *s.p == '"';) {
        const char *k0 = s.p;
        srv_js_string(&s, key, sizeof key, NULL);
        srv_js_lit(&s, ':');
        srv_js_ws(&s);
        const char *v0 = s.p;
        skip_value(&s, 0);
        if (keep(key, keep_arg)) {
            if ((!first && srv_add_lit(out, ",")) || evbuffer_add(out, k0, (size_t)(v0 - k0)) ||
                copy_value(out, v0, s.p))
                return -1;
            first = 0;
        }
        if (srv_js_ws(&s) < s.end && *s.p == ',') s.p++;
    }
    return srv_add_lit(out, "}");
}

int srv_stored_string(const char *text, const char *key, char *buf, size_t cap)
{
    srv_jerr e;
    srv_jscan s = {text, text + strlen(text), text, &e};
    char k[256];
    if (srv_js_lit(&s, '{')) return -1;
    while (srv_js_ws(&s) < s.end && *s.p == '"') {
        if (srv_js_string(&s, k, sizeof k, NULL) || srv_js_lit(&s, ':')) return -1;
        if (strcmp(k, key) == 0 && srv_js_ws(&s) < s.end && *s.p == '"') return srv_js_string(&s, buf, cap, NULL);
        if (skip_value(&s, 0)) return -1;
        if (srv_js_ws(&s) < s.end && *s.p == ',') s.p++;
    }
    return -1;
}

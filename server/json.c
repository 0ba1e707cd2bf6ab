/*
 * server/json.c -- JSON trees in (jansson) and numbers out for quiverd.
 *
 * In: a request body must be one JSON object (duplicate keys refused), an object may
 * hold only the fields its endpoint names, integers must be integers within their range,
 * and vector components numbers that fit a float. JSON cannot spell NaN or Infinity, but
 * 1e39 parses as a finite double and would become +Inf as a float, so it is refused.
 * (Search bodies are read without a tree: search.c.)
 *
 * Out: scores and vector components are floats, written with the 9 significant digits
 * that round-trip them, without printf; payload reals in the fewest digits that read
 * back as the same double.
 */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

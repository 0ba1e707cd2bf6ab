/*
 * server/json_out.c -- JSON replies: jansson trees written out, and numbers formatted.
 *
 * Why not json_dumps: jansson has one precision for every real in a dump. Scores and
 * vectors are floats, which 9 significant digits round-trip exactly, so replies used
 * JSON_REAL_PRECISION(9) -- and that cut the user's payload numbers to 9 digits too: a
 * timestamp 1732694400.123 came back as 1.7326944e9. Here the value of every "payload"
 * key is written with each real's shortest exact form (what the user stored comes back
 * bit for bit), and everything else exactly as json_dumps(JSON_COMPACT |
 * JSON_REAL_PRECISION(9)) would write it (the tests hold the two byte-identical).
 *
 * The float formatting is also the fast path's (search_fast.c): scores and vector
 * components without printf.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "server/server.h"

/* ---- numbers ---------------------------------------------------------------------------- */

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

/* ---- trees ------------------------------------------------------------------------------ */

/* A string as jansson writes it: '"', '\\' and control characters escaped, the rest
 * (valid UTF-8, which jansson guarantees for its strings) as it is. */
static int write_string(struct evbuffer *out, const char *s, size_t len)
{
    if (evbuffer_add(out, "\"", 1)) return -1;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        if (i > start && evbuffer_add(out, s + start, i - start)) return -1;
        char esc[8];
        switch (c) {
        case '"': memcpy(esc, "\\\"", 3); break;
        case '\\': memcpy(esc, "\\\\", 3); break;
        case '\b': memcpy(esc, "\\b", 3); break;
        case '\f': memcpy(esc, "\\f", 3); break;
        case '\n': memcpy(esc, "\\n", 3); break;
        case '\r': memcpy(esc, "\\r", 3); break;
        case '\t': memcpy(esc, "\\t", 3); break;
        default: snprintf(esc, sizeof esc, "\\u%04X", c); break;
        }
        if (evbuffer_add(out, esc, strlen(esc))) return -1;
        start = i + 1;
    }
    if (len > start && evbuffer_add(out, s + start, len - start)) return -1;
    return evbuffer_add(out, "\"", 1);
}

static int write_real(struct evbuffer *out, double v, int exact)
{
    char buf[40];
    int n;
    if (exact) n = srv_fmt_double(buf, sizeof buf, v);
    else if (fabs(v) <= FLT_MAX && (double)(float)v == v) n = srv_fmt_score(buf, sizeof buf, (float)v);
    else n = srv_fmt_real9(buf, sizeof buf, v);
    return n < 0 ? -1 : evbuffer_add(out, buf, (size_t)n);
}

static int write_value(struct evbuffer *out, const json_t *v, int exact, int depth)
{
    char num[24];
    if (depth > 2048) return -1;                           /* jansson's own limit */
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        int first = 1;
        if (evbuffer_add(out, "{", 1)) return -1;
        json_object_foreach((json_t *)v, key, val) {
            if ((!first && evbuffer_add(out, ",", 1)) || write_string(out, key, strlen(key)) ||
                evbuffer_add(out, ":", 1) ||
                write_value(out, val, exact || strcmp(key, "payload") == 0, depth + 1))
                return -1;
            first = 0;
        }
        return evbuffer_add(out, "}", 1);
    }
    case JSON_ARRAY: {
        if (evbuffer_add(out, "[", 1)) return -1;
        for (size_t i = 0; i < json_array_size(v); i++)
            if ((i && evbuffer_add(out, ",", 1)) || write_value(out, json_array_get(v, i), exact, depth + 1))
                return -1;
        return evbuffer_add(out, "]", 1);
    }
    case JSON_STRING:
        return write_string(out, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: {
        int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return evbuffer_add(out, num, (size_t)n);
    }
    case JSON_REAL:
        return write_real(out, json_real_value(v), exact);
    case JSON_TRUE: return evbuffer_add(out, "true", 4);
    case JSON_FALSE: return evbuffer_add(out, "false", 5);
    case JSON_NULL: return evbuffer_add(out, "null", 4);
    }
    return -1;
}

int srv_json_write(struct evbuffer *out, const json_t *v, int exact)
{
    return v ? write_value(out, v, exact, 0) : -1;
}

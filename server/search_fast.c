/*
 * server/search_fast.c -- the plain search request without jansson trees.
 *
 * Most traffic is one shape: POST /collections/NAME/search {"vector":[...],"k":10,"ef":64}
 * (with_payload or not) and no filter. Through jansson that request cost more than the
 * HNSW search itself (a tree of 130 nodes, one malloc and one locale lookup per number, a
 * tree again for the reply, printf for every field). Here the body is scanned in place and
 * the reply written straight into a buffer; payloads, the user's JSON, still go through
 * jansson and json_out.c, exactly as on the general path. A batch of such searches
 * ({"searches":[...]}) is scanned the same way, one search object at a time.
 *
 * The fast path never words an error. srv_scan_search() accepts only bodies that the
 * general path (jsonin.c + handlers.c) accepts too, and reads the same values from them;
 * anything else -- a filter, null, an escape in a key, a malformed number, a wrong
 * dimension -- returns 0 and the general path parses the body again and answers,
 * errors included. So there is one definition of what is valid and one set of messages.
 * Numbers get the very double jansson would produce (its integers through int64, its
 * reals through strtod), so the query vectors are bit-identical on both paths; the test
 * suite checks that, and that both paths give byte-identical replies.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "server/server.h"

/* JSON's whitespace, and nothing else */
static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Powers of ten that a double holds exactly. */
static const double exact_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * One JSON number at p (strict grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?).
 * Returns the end of the token, or NULL when this scanner does not take it.
 * *is_int: the token has no fraction and no exponent (jansson makes it an integer).
 */
static const char *scan_number(const char *p, const char *end, double *out, int *is_int)
{
    const char *start = p;
    int neg = 0, sig = 0, exp10 = 0, overflow = 0;
    uint64_t m = 0;
    if (p < end && *p == '-') { neg = 1; p++; }
    if (p == end || !is_digit(*p)) return NULL;
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p)) return NULL;      /* leading zero */
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
        if (p == end || !is_digit(*p)) return NULL;
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
        if (p == end || !is_digit(*p)) return NULL;
        for (; p < end && is_digit(*p); p++)
            if (e < 100000) e = e * 10 + (*p - '0');
        exp10 += eneg ? -e : e;
    }
    if (*is_int) {
        /* jansson: strtoll, so an integer of up to 18 digits is exact; longer ones go to
         * the general path (which may refuse them as too big) */
        if (overflow || sig > 18) return NULL;
        int64_t v = neg ? -(int64_t)m : (int64_t)m;
        *out = (double)v;
        return p;
    }
    if (!overflow && m <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
        /* both operands exact, so the one IEEE operation rounds correctly: strtod's answer */
        double d = (double)m;
        d = exp10 >= 0 ? d * exact_pow10[exp10] : d / exact_pow10[-exp10];
        *out = neg ? -d : d;
        return p;
    }
    char tok[64];
    size_t len = (size_t)(p - start);
    if (len >= sizeof tok) return NULL;
    memcpy(tok, start, len);
    tok[len] = 0;
    char *e;
    errno = 0;
    double d = strtod(tok, &e);        /* quiverd never calls setlocale: '.' is the point */
    if (e != tok + len || (errno == ERANGE && isinf(d))) return NULL;
    *out = d;
    return p;
}

/* An integer token in lo..hi for k/ef/nprobe (the general path takes null and the rest). */
static const char *scan_uint(const char *p, const char *end, uint32_t lo, uint32_t hi, uint32_t *out)
{
    double d;
    int is_int;
    const char *q = scan_number(p, end, &d, &is_int);
    if (!q || !is_int || d < lo || d > hi) return NULL;
    *out = (uint32_t)d;
    return q;
}

static const char *scan_vector(const char *p, const char *end, uint32_t dim, float *vec)
{
    uint32_t n = 0;
    if (p == end || *p != '[') return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']') return dim == 0 ? p + 1 : NULL;
    for (;;) {
        double d;
        int is_int;
        if (n == dim || !(p = scan_number(p, end, &d, &is_int))) return NULL;
        if (!isfinite(d) || fabs(d) > (double)FLT_MAX) return NULL;
        vec[n++] = (float)d;
        p = skip_ws(p, end);
        if (p == end) return NULL;
        if (*p == ']') return n == dim ? p + 1 : NULL;
        if (*p != ',') return NULL;
        p = skip_ws(p + 1, end);
    }
}

enum { F_VECTOR = 1, F_K = 2, F_EF = 4, F_NPROBE = 8, F_WITH_PAYLOAD = 16 };

/* One search object at p; the end of it, or NULL when this scanner does not take it. */
static const char *scan_object(const char *p, const char *end, uint32_t dim, float *vec, srv_fast_search *out)
{
    unsigned seen = 0;
    out->k = SRV_DEFAULT_K;
    out->ef = 0;
    out->nprobe = 0;
    out->with_payload = 0;
    if (p == end || *p != '{') return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') return NULL;               /* no vector */
    for (;;) {
        /* a key: plain lower-case letters and '_' only */
        if (p == end || *p != '"') return NULL;
        const char *key = ++p;
        while (p < end && ((*p >= 'a' && *p <= 'z') || *p == '_')) p++;
        if (p == end || *p != '"') return NULL;
        size_t klen = (size_t)(p - key);
        p = skip_ws(p + 1, end);
        if (p == end || *p != ':') return NULL;
        p = skip_ws(p + 1, end);
        unsigned f;
#define KEY(lit) (klen == sizeof(lit) - 1 && memcmp(key, lit, klen) == 0)
        if (KEY("vector")) f = F_VECTOR, p = scan_vector(p, end, dim, vec);
        else if (KEY("k")) f = F_K, p = scan_uint(p, end, 1, QV_MAX_K, &out->k);
        else if (KEY("ef")) f = F_EF, p = scan_uint(p, end, 0, SRV_MAX_EF, &out->ef);
        else if (KEY("nprobe")) f = F_NPROBE, p = scan_uint(p, end, 0, SRV_MAX_NPROBE, &out->nprobe);
        else if (KEY("with_payload")) {
            f = F_WITH_PAYLOAD;
            if (end - p >= 4 && memcmp(p, "true", 4) == 0) out->with_payload = 1, p += 4;
            else if (end - p >= 5 && memcmp(p, "false", 5) == 0) p += 5;
            else p = NULL;                                /* null and the rest: general path */
        } else return NULL;                               /* "filter", or an unknown field */
#undef KEY
        if (!p || (seen & f)) return NULL;                /* bad value, or a duplicate key */
        seen |= f;
        p = skip_ws(p, end);
        if (p == end) return NULL;
        if (*p == '}') break;
        if (*p != ',') return NULL;
        p = skip_ws(p + 1, end);
    }
    return (seen & F_VECTOR) ? p + 1 : NULL;
}

int srv_scan_search(const char *s, size_t len, uint32_t dim, float *vec, srv_fast_search *out)
{
    const char *end = s + len, *p = scan_object(skip_ws(s, end), end, dim, vec, out);
    return p && skip_ws(p, end) == end;                   /* nothing after the object */
}

int srv_scan_search_batch(const char *s, size_t len, uint32_t dim, float **vecs_out,
                          srv_fast_search **opts_out, size_t *nq_out)
{
    static const char head[] = "\"searches\"";
    const char *p = s, *end = s + len;
    float *vecs = NULL;
    srv_fast_search *opts = NULL;
    size_t nq = 0, cap = 0;
    *vecs_out = NULL;
    *opts_out = NULL;
    *nq_out = 0;
    p = skip_ws(p, end);
    if (p == end || *p != '{') return 0;
    p = skip_ws(p + 1, end);
    if ((size_t)(end - p) < sizeof head - 1 || memcmp(p, head, sizeof head - 1) != 0) return 0;
    p = skip_ws(p + sizeof head - 1, end);
    if (p == end || *p != ':') return 0;
    p = skip_ws(p + 1, end);
    if (p == end || *p != '[') return 0;
    p = skip_ws(p + 1, end);
    for (;;) {
        if (nq == SRV_MAX_BATCH) goto refuse;             /* the general path words the limit */
        if (nq == cap) {
            cap = cap ? 2 * cap : 16;
            float *nv = realloc(vecs, cap * dim * sizeof *vecs);
            if (nv) vecs = nv;
            srv_fast_search *no = nv ? realloc(opts, cap * sizeof *opts) : NULL;
            if (!no) goto refuse;
            opts = no;
        }
        if (!(p = scan_object(p, end, dim, vecs + nq * dim, &opts[nq]))) goto refuse;
        nq++;
        p = skip_ws(p, end);
        if (p == end) goto refuse;
        if (*p == ']') break;
        if (*p != ',') goto refuse;
        p = skip_ws(p + 1, end);
    }
    p = skip_ws(p + 1, end);
    if (p == end || *p != '}' || skip_ws(p + 1, end) != end) goto refuse;
    *vecs_out = vecs;
    *opts_out = opts;
    *nq_out = nq;
    return 1;
refuse:
    free(vecs);
    free(opts);
    return 0;
}

/* ---- the reply ------------------------------------------------------------------------ */

static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* The plan name goes out unescaped, so it must not need escaping. */
static int plain_word(const char *s)
{
    if (strlen(s) > 32) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/* A hit's stored payload (text, or NULL) as the general path shows it: null when the point
 * is gone (deleted since the search) or has none; written by the same writer, so the same
 * bytes. */
static int put_payload(struct evbuffer *out, const char *text)
{
    json_t *pl = text ? json_loads(text, 0, NULL) : NULL;
    int rc = pl ? srv_json_write(out, pl, 1) : evbuffer_add(out, "null", 4);
    json_decref(pl);
    return rc;
}

/* "hits":[...] with the payloads in texts (NULL: none shown) */
static int put_hits(struct evbuffer *out, char **texts, const qv_hit *hits, size_t n)
{
    /* a hit's text is at most 64 bytes: ,{"id": + 20 digits + ,"score": + 16 + ,"payload": */
    char buf[512], *p = buf;
    p = put_str(p, "\"hits\":[");
    for (size_t i = 0; i < n; i++) {
        p = put_str(p, i ? ",{\"id\":" : "{\"id\":");
        p = put_u64(p, hits[i].id);
        p = put_str(p, ",\"score\":");
        int len = srv_fmt_score(p, 32, hits[i].score);
        if (len < 0) return -1;
        p += len;
        if (texts) {
            p = put_str(p, ",\"payload\":");
            if (evbuffer_add(out, buf, (size_t)(p - buf)) || put_payload(out, texts[i])) return -1;
            p = buf;
        }
        *p++ = '}';
        if (p - buf > (ptrdiff_t)(sizeof buf - 80)) {
            if (evbuffer_add(out, buf, (size_t)(p - buf))) return -1;
            p = buf;
        }
    }
    *p++ = ']';
    return evbuffer_add(out, buf, (size_t)(p - buf));
}

/* "took":{...}: five counts of at most 20 digits and a plan of at most 32 bytes */
static int put_took(struct evbuffer *out, const qv_search_stats *st)
{
    char buf[512], *p = buf;
    p = put_str(p, "\"took\":{\"plan\":\"");
    p = put_str(p, st->plan ? st->plan : "none");
    p = put_str(p, "\",\"live\":");
    p = put_u64(p, st->live);
    p = put_str(p, ",\"allowed\":");
    p = put_u64(p, st->allowed);
    p = put_str(p, ",\"conditions\":");
    p = put_u64(p, st->conditions);
    p = put_str(p, ",\"unindexed\":[],\"payloads_read\":");
    p = put_u64(p, st->payloads_read);
    p = put_str(p, ",\"filter_us\":");
    p = put_u64(p, st->filter_us);
    p = put_str(p, st->cached ? ",\"cached\":true}" : ",\"cached\":false}");
    return evbuffer_add(out, buf, (size_t)(p - buf));
}

/* What only the general path encodes: unindexed keys, a plan that needs escaping, scores
 * jansson refuses. */
static int fast_encodable(const qv_hit *hits, size_t n, const qv_search_stats *st)
{
    if (st->unindexed_keys[0] || !plain_word(st->plan ? st->plan : "none")) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(hits[i].score)) return 0;
    return 1;
}

int srv_hit_payloads(qv_coll *c, const qv_hit *hits, size_t n, char ***texts)
{
    *texts = NULL;
    if (!c || n == 0) return 0;
    uint64_t *ids = malloc(n * sizeof *ids);
    char **t = malloc(n * sizeof *t);
    for (size_t i = 0; ids && i < n; i++) ids[i] = hits[i].id;
    int rc = ids && t ? qv_get_payloads(c, n, ids, t) : QV_ENOMEM;
    free(ids);
    if (rc != QV_OK) {
        free(t);
        return -1;
    }
    *texts = t;
    return 0;
}

void srv_free_payloads(char **texts, size_t n)
{
    for (size_t i = 0; texts && i < n; i++) qv_free(texts[i]);
    free(texts);
}

int srv_format_search_reply(struct evbuffer *out, qv_coll *payloads, const qv_hit *hits, size_t n,
                            uint64_t took_us, const qv_search_stats *st)
{
    char **texts;
    if (!fast_encodable(hits, n, st) || srv_hit_payloads(payloads, hits, n, &texts) != 0) return -1;
    char mid[48], *p = put_str(mid, ",\"took_us\":");
    p = put_u64(p, took_us);
    *p++ = ',';
    int rc = evbuffer_add(out, "{", 1) || put_hits(out, texts, hits, n) ||
             evbuffer_add(out, mid, (size_t)(p - mid)) || put_took(out, st) || evbuffer_add(out, "}", 1) ? -1 : 0;
    srv_free_payloads(texts, n);
    return rc;
}

int srv_format_batch_reply(struct evbuffer *out, qv_coll *c, const srv_fast_search *opts, size_t nq,
                           const qv_hit *hits, size_t kmax, const size_t *nh, uint64_t took_us,
                           const qv_search_stats *st)
{
    for (size_t q = 0; q < nq; q++)
        if (!fast_encodable(hits + q * kmax, nh[q], &st[q])) return -1;
    if (evbuffer_add(out, "{\"results\":[", 12)) return -1;
    for (size_t q = 0; q < nq; q++) {
        char **texts;
        if (srv_hit_payloads(opts[q].with_payload ? c : NULL, hits + q * kmax, nh[q], &texts) != 0) return -1;
        int rc = evbuffer_add(out, q ? ",{" : "{", q ? 2 : 1) || put_hits(out, texts, hits + q * kmax, nh[q]) ||
                 evbuffer_add(out, ",", 1) || put_took(out, &st[q]) || evbuffer_add(out, "}", 1);
        srv_free_payloads(texts, nh[q]);
        if (rc) return -1;
    }
    char tail[48], *p = put_str(tail, "],\"took_us\":");
    p = put_u64(p, took_us);
    *p++ = '}';
    return evbuffer_add(out, tail, (size_t)(p - tail));
}

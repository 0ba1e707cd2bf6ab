/*
 * storage/text_tokenize.c -- the full-text tokenizer: UTF-8 words, lowercased, optional
 * English stop words, Snowball stemming (libstemmer). Rules in storage/text.h.
 *
 * Character classes come from glibc's built-in C.UTF-8 locale through the *_l functions,
 * so the process locale (setlocale) is never touched and the result does not depend on
 * it. If C.UTF-8 cannot be had (not glibc), ASCII letters and digits are classified and
 * every byte >= 0x80 counts as a letter, unchanged by lowercasing.
 *
 * A Snowball stemmer object is not thread-safe; one is made per call (about a microsecond,
 * against tens for a typical document) rather than cached per thread, so no thread-exit
 * hook is needed.
 */
#include "storage/text.h"

#include <libstemmer.h>
#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "core/alloc.h"
#include "core/error.h"

static locale_t utf8_loc;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;
static void utf8_init(void) { utf8_loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0); }

void qv_text_options_init(qv_text_options *o)
{
    if (!o) return;
    o->language = "english";
    o->stopwords = 0;
}

void qv_toklist_release(qv_toklist *t)
{
    if (!t) return;
    qv_free(t->buf);
    qv_free(t->off);
    memset(t, 0, sizeof *t);
}

/* English stop words (sorted for bsearch): the usual short function words. */
static const char *const stop_en[] = {
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at",
    "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could",
    "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has",
    "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if",
    "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor",
    "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out",
    "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their",
    "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to",
    "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while",
    "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves",
};
static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }
static int is_stop(const char *w)
{
    return bsearch(&w, stop_en, sizeof stop_en / sizeof stop_en[0], sizeof stop_en[0], cmp_str) != NULL;
}

/* Decode one UTF-8 code point at s (n > 0 bytes left); *len its length. -1: invalid. */
static long utf8_get(const unsigned char *s, size_t n, size_t *len)
{
    unsigned c = s[0];
    size_t need;
    long cp;
    *len = 1;
    if (c < 0x80) return c;
    if (c >= 0xc2 && c < 0xe0) { need = 2; cp = c & 0x1f; }
    else if (c >= 0xe0 && c < 0xf0) { need = 3; cp = c & 0x0f; }
    else if (c >= 0xf0 && c < 0xf5) { need = 4; cp = c & 0x07; }
    else return -1;
    if (n < need) return -1;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80) return -1;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp < 0xe000))
        return -1;                 /* overlong, out of range, surrogate */
    *len = need;
    return cp;
}

static size_t utf8_put(unsigned char *o, long cp)
{
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = (unsigned char)(0xc0 | cp >> 6); o[1] = (unsigned char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | cp >> 12); o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | cp >> 18); o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f)); o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

static int is_word(long cp)
{
    if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9');
    if (utf8_loc) return iswalnum_l((wint_t)cp, utf8_loc) != 0;
    return 1;
}

static long lower(long cp)
{
    if (cp < 0x80) return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
    return utf8_loc ? (long)towlower_l((wint_t)cp, utf8_loc) : cp;
}

static int push_token(qv_toklist *t, const char *w, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t ncap = t->cap ? t->cap : 256;
        while (ncap < t->len + n + 1) ncap *= 2;
        char *b = qv_reallocarray(t->buf, ncap, 1);
        if (!b) return QV_ENOMEM;
        t->buf = b;
        t->cap = ncap;
    }
    if (t->n == t->ncap) {
        size_t ncap = t->ncap ? t->ncap * 2 : 32;
        size_t *o = qv_reallocarray(t->off, ncap, sizeof *o);
        if (!o) return QV_ENOMEM;
        t->off = o;
        t->ncap = ncap;
    }
    t->off[t->n++] = t->len;
    memcpy(t->buf + t->len, w, n);
    t->buf[t->len + n] = 0;
    t->len += n + 1;
    return QV_OK;
}

/* One lowercased word w (n bytes): stop word check, stemming, append. */
static int emit(qv_toklist *t, struct sb_stemmer *st, const qv_text_options *o, char *w, size_t n)
{
    w[n] = 0;
    if (o->stopwords && is_stop(w)) return QV_OK;
    if (!st) return push_token(t, w, n);
    const sb_symbol *s = sb_stemmer_stem(st, (const sb_symbol *)w, (int)n);
    if (!s) return qv_fail(QV_ENOMEM, "out of memory stemming a word");
    return push_token(t, (const char *)s, (size_t)sb_stemmer_length(st));
}

int qv_text_tokens(const char *s, size_t len, const qv_text_options *o, qv_toklist *t)
{
    qv_text_options def;
    struct sb_stemmer *st = NULL;
    unsigned char w[QV_TEXT_TOKEN_MAX + 8];
    size_t wn = 0, i = 0;
    int rc = QV_OK, toolong = 0;

    if (!o) { qv_text_options_init(&def); o = &def; }
    if (!s && len) return qv_fail(QV_EINVAL, "text is NULL");
    pthread_once(&utf8_once, utf8_init);
    const char *lang = o->language ? o->language : "english";
    if (strcmp(lang, "none") != 0 && !(st = sb_stemmer_new(lang, "UTF_8")))
        return qv_fail(QV_EINVAL, "text: unknown stemmer language '%.40s' (Snowball names: english, french, ...; or none)",
                       lang);
    while (i <= len && rc == QV_OK) {
        size_t cl = 1;
        long cp = i < len ? utf8_get((const unsigned char *)s + i, len - i, &cl) : -1;
        if (i < len && cp >= 0 && is_word(cp)) {
            unsigned char enc[4];
            size_t el = utf8_put(enc, lower(cp));
            if (wn + el > QV_TEXT_TOKEN_MAX) toolong = 1;
            else { memcpy(w + wn, enc, el); wn += el; }
        } else {
            if (wn && !toolong) rc = emit(t, st, o, (char *)w, wn);
            wn = 0;
            toolong = 0;
        }
        i += cl;
    }
    if (st) sb_stemmer_delete(st);
    return rc;
}

int qv_text_tokenize(const char *text, const qv_text_options *o, char ***tokens, size_t *n)
{
    qv_toklist t = {0};
    char **v = NULL;
    int rc;
    if (tokens) *tokens = NULL;
    if (n) *n = 0;
    if (!text || !tokens || !n) return qv_fail(QV_EINVAL, "text, tokens or n is NULL");
    if ((rc = qv_text_tokens(text, strlen(text), o, &t)) != QV_OK) goto cleanup;
    if (t.n && !(v = qv_calloc(t.n, sizeof *v))) { rc = QV_ENOMEM; goto cleanup; }
    for (size_t i = 0; i < t.n; i++)
        if (!(v[i] = qv_strdup(t.buf + t.off[i]))) {
            qv_free_strings(v, i);
            v = NULL;
            rc = QV_ENOMEM;
            goto cleanup;
        }
    *tokens = v;
    *n = t.n;
cleanup:
    qv_toklist_release(&t);
    return rc;
}

static int cmp_tok(const void *a, const void *b, void *arg)
{
    const qv_toklist *t = arg;
    return strcmp(t->buf + t->off[*(const size_t *)a], t->buf + t->off[*(const size_t *)b]);
}

void qv_text_distinct(const qv_toklist *t, size_t *uniq, uint32_t *cnt, size_t *nu)
{
    size_t m = 0;
    for (size_t i = 0; i < t->n; i++) uniq[i] = i;
    if (t->n) qsort_r(uniq, t->n, sizeof *uniq, cmp_tok, (void *)t);   /* glibc; _GNU_SOURCE */
    for (size_t i = 0; i < t->n; i++) {
        if (m && strcmp(t->buf + t->off[uniq[m - 1]], t->buf + t->off[uniq[i]]) == 0) { cnt[m - 1]++; continue; }
        uniq[m] = uniq[i];
        cnt[m++] = 1;
    }
    *nu = m;
}

int qv_text_contains_all(const char *text, size_t tlen, const char *query, size_t qlen, int *pass)
{
    qv_toklist dt = {0}, qt = {0};
    int rc;
    *pass = 0;
    if ((rc = qv_text_tokens(query, qlen, NULL, &qt)) != QV_OK || qt.n == 0) goto cleanup;
    if ((rc = qv_text_tokens(text, tlen, NULL, &dt)) != QV_OK) goto cleanup;
    *pass = 1;
    for (size_t i = 0; i < qt.n && *pass; i++) {
        int found = 0;
        for (size_t j = 0; j < dt.n && !found; j++) found = strcmp(qt.buf + qt.off[i], dt.buf + dt.off[j]) == 0;
        *pass = found;
    }
cleanup:
    qv_toklist_release(&dt);
    qv_toklist_release(&qt);
    return rc;
}

/*
 * storage/text.h -- private: full-text search over payload fields declared "text".
 *
 * Tokenizer (text_tokenize.c): UTF-8 in; a token is a maximal run of Unicode letters and
 * digits (glibc's C.UTF-8 iswalnum), lowercased (towlower), optionally dropped when it is
 * an English stop word, then stemmed by Snowball (Debian's libstemmer, "english" by
 * default). Invalid UTF-8 bytes separate tokens. Tokens longer than QV_TEXT_TOKEN_MAX
 * bytes (after lowercasing) are dropped: they are hashes, URLs and base64, never words.
 *
 * Postings (payload_index.c writes them with the field's other entries, in the same write
 * txn as the payload; table "pindex", layout of storage/filter.h):
 *   cid | flen | field | 't' | u8 len | token | iid -> u32 tf, u32 doc length (native)
 *   cid | flen | field | 'L' | iid                  -> u32 doc length (in tokens)
 *   cid | flen | field | 'S'                        -> u64 docs, u64 total tokens (native)
 * A point whose field holds a string has one 'L' entry (also for 0 tokens, so that N and
 * the average length count it, as FTS5 counts every row) and one 't' entry per distinct
 * token; 'S' sums the 'L' entries. Keeping tf and the doc length in the posting's value
 * lets a ranked query read nothing but the postings of its terms.
 *
 * BM25 (text_search.c) is SQLite FTS5's bm25() with the sign flipped (FTS5 returns the
 * negated score so that ORDER BY rank is ascending):
 *   score(D) = sum over query terms q of  idf(q) * tf(q,D) * (k1 + 1)
 *                                         / (tf(q,D) + k1 * (1 - b + b * |D| / avgdl))
 *   idf(q)   = ln((N - n(q) + 0.5) / (n(q) + 0.5)), and 1e-6 where that is <= 0
 * N = documents with the field, n(q) = documents holding q, avgdl = total tokens / N.
 * A term repeated in the query counts once per occurrence (FTS5: one phrase each).
 */
#ifndef QV_STORAGE_TEXT_H
#define QV_STORAGE_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "quiver.h"

#define QV_TEXT_TOKEN_MAX 64u      /* bytes of one token; longer ones are dropped */

/** Tokens of one text: token i is the NUL-terminated string at buf + off[i]. */
typedef struct {
    char *buf;
    size_t len, cap;
    size_t *off;
    size_t n, ncap;
} qv_toklist;
void qv_toklist_release(qv_toklist *t);     /* NULL ok; leaves it empty and reusable */

/** Append the tokens of s (len bytes, any bytes) to t. o NULL = defaults. */
int  qv_text_tokens(const char *s, size_t len, const qv_text_options *o, qv_toklist *t);

/** The distinct tokens of t with their counts: sorted by bytes; uniq[i] indexes t, cnt[i]
 *  its count. *nu distinct. The arrays hold t->n entries (caller allocates). */
void qv_text_distinct(const qv_toklist *t, size_t *uniq, uint32_t *cnt, size_t *nu);

/** Whether every token of query occurs in text (both tokenized with defaults): the
 *  reference semantics of {"match":{"text":...}}. A query with no token passes nothing. */
int  qv_text_contains_all(const char *text, size_t tlen, const char *query, size_t qlen, int *pass);

#endif

/*
 * core/bitset.c -- a growable bitset over dense ids, one bit per id in uint64 words.
 *
 * Invariant: bits at positions >= nbits inside the last word are always zero, so
 * qv_bitset_count can popcount whole words and a later resize exposes cleared bits.
 */
#include "core/bitset.h"

#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

static size_t words_for(size_t nbits) { return nbits / 64 + (nbits % 64 != 0); }

int qv_bitset_init(qv_bitset *b, size_t nbits)
{
    b->words = qv_calloc(words_for(nbits) ? words_for(nbits) : 1, sizeof(uint64_t));
    b->nbits = 0;
    if (!b->words) return QV_ENOMEM;
    b->nbits = nbits;
    return QV_OK;
}

void qv_bitset_release(qv_bitset *b)
{
    if (!b) return;
    qv_free(b->words);
    b->words = NULL;
    b->nbits = 0;
}

int qv_bitset_resize(qv_bitset *b, size_t nbits)
{
    if (nbits <= b->nbits) return QV_OK;
    size_t oldw = words_for(b->nbits), neww = words_for(nbits);
    if (neww > oldw || !b->words) {
        uint64_t *w = qv_reallocarray(b->words, neww ? neww : 1, sizeof *w);
        if (!w) return QV_ENOMEM;
        memset(w + oldw, 0, (neww - oldw) * sizeof *w);
        b->words = w;
    }
    b->nbits = nbits;
    return QV_OK;
}

void qv_bitset_clear_all(qv_bitset *b)
{
    if (b->words) memset(b->words, 0, words_for(b->nbits) * sizeof(uint64_t));
}

size_t qv_bitset_count(const qv_bitset *b)
{
    return b->words ? qv_bits_count(b->words, b->nbits) : 0;
}

size_t qv_bits_count(const uint64_t *bits, uint64_t nbits)
{
    size_t total = 0;
    uint64_t full = nbits / 64;
    for (uint64_t i = 0; i < full; i++) total += (size_t)__builtin_popcountll(bits[i]);
    if (nbits % 64) {
        /* a public bitset may carry garbage above nbits in its last word: mask it */
        uint64_t mask = (1ull << (nbits % 64)) - 1;
        total += (size_t)__builtin_popcountll(bits[full] & mask);
    }
    return total;
}

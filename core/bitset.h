/* core/bitset.h -- a plain bitset over dense ids (uint64 words). */
#ifndef QV_CORE_BITSET_H
#define QV_CORE_BITSET_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t *words;
    size_t nbits;
} qv_bitset;

/** Allocate nbits cleared bits. @return QV_OK or QV_ENOMEM. */
int  qv_bitset_init(qv_bitset *b, size_t nbits);
void qv_bitset_release(qv_bitset *b);             /* NULL ok */
/** Grow to at least nbits (new bits clear). */
int  qv_bitset_resize(qv_bitset *b, size_t nbits);
static inline void qv_bitset_set(qv_bitset *b, size_t i) { b->words[i >> 6] |= 1ull << (i & 63); }
static inline void qv_bitset_clear(qv_bitset *b, size_t i) { b->words[i >> 6] &= ~(1ull << (i & 63)); }
static inline int  qv_bitset_test(const qv_bitset *b, size_t i)
{
    return i < b->nbits && ((b->words[i >> 6] >> (i & 63)) & 1);
}
void   qv_bitset_clear_all(qv_bitset *b);
size_t qv_bitset_count(const qv_bitset *b);

/** Test a raw public bitset (qv_search_params.allow_bits). */
static inline int qv_bits_test(const uint64_t *bits, uint64_t nbits, uint64_t i)
{
    return i < nbits && ((bits[i >> 6] >> (i & 63)) & 1);
}
/** Population count of a raw bitset of nbits bits. */
size_t qv_bits_count(const uint64_t *bits, uint64_t nbits);

#endif

/*
 * core/crc32c.c -- CRC32C (Castagnoli polynomial, reflected 0x82F63B78).
 *
 * With SSE4.2 the crc32 instruction does 8 bytes per instruction; the variant is chosen
 * once at run time (__builtin_cpu_supports) so the default build needs no -msse4.2.
 * Without it a slicing-by-8 table fallback is used. The tables are built at first use
 * under pthread_once. Both variants take and return the finalized CRC (start with 0),
 * so a CRC can be continued across calls.
 */
#include "core/crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define QV_CRC_X86 1
#endif

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_tables(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xFF];
}

static uint32_t crc_table(uint32_t crc, const uint8_t *p, size_t len)
{
    pthread_once(&table_once, build_tables);
    crc = ~crc;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= crc;   /* little-endian: the low 4 bytes take the running crc */
        crc = table[7][w & 0xFF] ^ table[6][(w >> 8) & 0xFF] ^ table[5][(w >> 16) & 0xFF] ^
              table[4][(w >> 24) & 0xFF] ^ table[3][(w >> 32) & 0xFF] ^
              table[2][(w >> 40) & 0xFF] ^ table[1][(w >> 48) & 0xFF] ^ table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len--) crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xFF];
    return ~crc;
}

#ifdef QV_CRC_X86
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const uint8_t *p,
                                                              size_t len)
{
    uint64_t c = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        len -= 8;
    }
    while (len--) c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}
#endif

typedef uint32_t (*crc_fn)(uint32_t, const uint8_t *, size_t);

static crc_fn pick(void)
{
#ifdef QV_CRC_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) return crc_sse42;
#endif
    return crc_table;
}

static crc_fn chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;
static void choose(void) { chosen = pick(); }

uint32_t qv_crc32c(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&chosen_once, choose);
    return chosen(crc, data, len);
}

/* The table variant, for tests that check the two against each other (prototype in
 * the test file: not part of the crc32c.h interface). */
uint32_t qv_crc32c_sw(uint32_t crc, const void *data, size_t len);
uint32_t qv_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    return crc_table(crc, data, len);
}

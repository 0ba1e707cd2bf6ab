/* core/crc32c.h -- CRC32C (Castagnoli), SSE4.2 instruction when present, table otherwise. */
#ifndef QV_CORE_CRC32C_H
#define QV_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/** Continue a CRC: start with crc = 0. */
uint32_t qv_crc32c(uint32_t crc, const void *data, size_t len);

#endif

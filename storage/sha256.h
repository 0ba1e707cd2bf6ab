/*
 * storage/sha256.h -- SHA-256 for backups, over OpenSSL's libcrypto (EVP interface).
 *
 * The only file that includes OpenSSL is sha256.c: the rest of the storage layer sees an
 * opaque context. libcrypto's SHA-256 uses the CPU's SHA extensions where present
 * (about 1.5-2 GB/s on this machine's EPYC), so hashing costs less than writing the file.
 */
#ifndef QV_STORAGE_SHA256_H
#define QV_STORAGE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define QV_SHA256_BYTES 32u
#define QV_SHA256_HEX 65u              /* 64 lowercase hex digits and a NUL */

typedef struct qv_sha256 qv_sha256;

/** A fresh context. @return QV_OK or QV_ENOMEM (*out NULL). */
int  qv_sha256_new(qv_sha256 **out);
void qv_sha256_free(qv_sha256 *h);                   /* NULL ok */
void qv_sha256_update(qv_sha256 *h, const void *p, size_t n);
/** A copy of h's state (to finish one digest and go on hashing with the other). */
int  qv_sha256_copy(const qv_sha256 *h, qv_sha256 **out);
/** The digest of everything passed so far; h may not be updated afterwards. */
void qv_sha256_final(qv_sha256 *h, uint8_t out[QV_SHA256_BYTES]);
/** Lowercase hex of a digest (what sha256sum prints). */
void qv_sha256_hex(const uint8_t d[QV_SHA256_BYTES], char out[QV_SHA256_HEX]);
/** Parse 64 hex digits (either case) into a digest. @return 0, or -1 when hex is not that. */
int  qv_sha256_parse(const char *hex, uint8_t out[QV_SHA256_BYTES]);

#endif

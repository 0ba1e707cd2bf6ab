/*
 * storage/sha256.c -- SHA-256 over libcrypto's EVP digests (see sha256.h). EVP, not the
 * SHA256_* functions, which OpenSSL 3 deprecates. An EVP call fails only for lack of
 * memory (the digest is built in); the contexts are created up front, where that is
 * reported, so update and final have nothing left to fail on.
 */
#include "storage/sha256.h"

#include <openssl/evp.h>
#include <string.h>

#include "core/error.h"

/* qv_sha256 is never defined: a qv_sha256 * is an EVP_MD_CTX * under another name. */

int qv_sha256_new(qv_sha256 **out)
{
    *out = NULL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return qv_fail(QV_ENOMEM, "out of memory starting a SHA-256 digest");
    }
    *out = (qv_sha256 *)ctx;
    return QV_OK;
}

void qv_sha256_free(qv_sha256 *h)
{
    if (h) EVP_MD_CTX_free((EVP_MD_CTX *)h);
}

void qv_sha256_update(qv_sha256 *h, const void *p, size_t n)
{
    if (n) EVP_DigestUpdate((EVP_MD_CTX *)h, p, n);
}

int qv_sha256_copy(const qv_sha256 *h, qv_sha256 **out)
{
    *out = NULL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_MD_CTX_copy_ex(ctx, (const EVP_MD_CTX *)h) != 1) {
        EVP_MD_CTX_free(ctx);
        return qv_fail(QV_ENOMEM, "out of memory copying a SHA-256 digest");
    }
    *out = (qv_sha256 *)ctx;
    return QV_OK;
}

void qv_sha256_final(qv_sha256 *h, uint8_t out[QV_SHA256_BYTES])
{
    unsigned int n = 0;
    if (EVP_DigestFinal_ex((EVP_MD_CTX *)h, out, &n) != 1 || n != QV_SHA256_BYTES)
        memset(out, 0, QV_SHA256_BYTES);   /* cannot happen for a built-in digest */
}

void qv_sha256_hex(const uint8_t d[QV_SHA256_BYTES], char out[QV_SHA256_HEX])
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < QV_SHA256_BYTES; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * QV_SHA256_BYTES] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int qv_sha256_parse(const char *hex, uint8_t out[QV_SHA256_BYTES])
{
    if (!hex || strlen(hex) != 2 * QV_SHA256_BYTES) return -1;
    for (unsigned i = 0; i < QV_SHA256_BYTES; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/*
 * core/vecio.c -- reading vector files: .fvecs, .bvecs, .ivecs (TEXMEX) and .npy.
 *
 * TEXMEX formats: every record is a little-endian int32 dimension followed by that many
 * elements (float32 for fvecs, int32 for ivecs, uint8 for bvecs, widened to float).
 * NumPy: "\x93NUMPY", version byte pair (1.0: u16 header length; 2.0/3.0: u32), then a
 * Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (n, d), }
 * padded with spaces and a newline, then n*d float32 in C order.
 *
 * Nothing in the file is trusted: sizes are checked against the real file size before
 * any allocation, the dict is parsed by a small strict parser (exactly the three keys,
 * each once), and every malformed case is QV_ECORRUPT "PATH: at offset N: what".
 * The file is streamed with pread in blocks of whole records straight into the output,
 * so peak memory is the output plus ~1 MiB (no second copy), and a file that shrinks
 * while being read gives a truncation error rather than SIGBUS (as mmap would).
 * Non-regular files (pipes, /dev/stdin) are read into memory first.
 * The host is assumed little-endian, like the rest of Quiver's formats on x86/arm64.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/serial.h"
#include "quiver.h"

#define BLOCK_BYTES (1u << 20)
#define NPY_MAX_HEADER 65536u   /* a real 2-D header is < 200 bytes; numpy itself caps at 10000 */

/* ---- input source: a file read with pread, or a buffer for non-regular files ---- */

typedef struct {
    const char *path;
    int fd;
    uint8_t *mem;                  /* whole content when not a regular file */
    uint64_t size;
} source;

static int corrupt(const source *s, uint64_t off, const char *fmt, ...) QV_PRINTF(3, 4);
static int corrupt(const source *s, uint64_t off, const char *fmt, ...)
{
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return qv_fail(QV_ECORRUPT, "%s: at offset %" PRIu64 ": %s", s->path, off, msg);
}

static int src_open(source *s, const char *path)
{
    s->path = path;
    s->mem = NULL;
    s->size = 0;
    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0)
        return qv_fail(errno == ENOENT ? QV_ENOTFOUND : QV_EIO, "%s: cannot open: %s", path,
                       strerror(errno));
    struct stat st;
    if (fstat(s->fd, &st) != 0) return qv_fail(QV_EIO, "%s: stat: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return qv_fail(QV_EIO, "%s: is a directory", path);
    if (S_ISREG(st.st_mode)) {
        s->size = (uint64_t)st.st_size;
        return QV_OK;
    }
    void *buf;
    size_t len;
    int rc = qv_read_file(path, &buf, &len);
    if (rc != QV_OK) return rc;
    s->mem = buf;
    s->size = len;
    return QV_OK;
}

static void src_close(source *s)
{
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
    qv_free(s->mem);
    s->mem = NULL;
}

/* Read exactly len bytes at off; a short read means the file ended (or shrank). */
static int src_read(const source *s, uint64_t off, void *buf, size_t len, const char *what)
{
    if (off > s->size || len > s->size - off)
        return corrupt(s, off, "truncated reading %s (%zu bytes needed, %" PRIu64 " left)", what,
                       len, off > s->size ? 0 : s->size - off);
    if (s->mem) {
        memcpy(buf, s->mem + off, len);
        return QV_OK;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t got = pread(s->fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
        if (got < 0) {
            if (errno == EINTR) continue;
            return qv_fail(QV_EIO, "%s: read at offset %" PRIu64 ": %s", s->path, off + done,
                           strerror(errno));
        }
        if (got == 0)
            return corrupt(s, off + done, "truncated reading %s (file shrank while reading)", what);
        done += (size_t)got;
    }
    return QV_OK;
}

static int32_t le_i32(const uint8_t *p)
{
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24);
}

/* ---- TEXMEX: fvecs / ivecs / bvecs ---- */

typedef enum { ELEM_F32, ELEM_I32, ELEM_U8 } elem_kind;

static int read_texmex(const char *path, elem_kind kind, void **data, size_t *n_out,
                       size_t *dim_out)
{
    source s = {.fd = -1};
    uint8_t *block = NULL;
    uint8_t *out = NULL;
    size_t esize = kind == ELEM_U8 ? 1 : 4;
    int rc = src_open(&s, path);
    if (rc != QV_OK) goto cleanup;
    if (s.size == 0) {
        rc = corrupt(&s, 0, "empty file (no vectors)");
        goto cleanup;
    }
    uint8_t head[4];
    if ((rc = src_read(&s, 0, head, 4, "the dimension of record 0")) != QV_OK) goto cleanup;
    int32_t d = le_i32(head);
    if (d <= 0 || (uint32_t)d > QV_MAX_DIM) {
        rc = corrupt(&s, 0, "dimension %" PRId32 " of record 0 is outside 1..%u", d, QV_MAX_DIM);
        goto cleanup;
    }
    size_t dim = (size_t)d, rec = 4 + dim * esize;
    uint64_t n = s.size / rec;   /* whole records that fit; the scan checks each */
    if (n == 0) {
        rc = corrupt(&s, 0, "truncated record 0 (%" PRIu64 " bytes, a record of dimension %zu is %zu)",
                     s.size, dim, rec);
        goto cleanup;
    }
    if (n > SIZE_MAX / dim || !(out = qv_reallocarray(NULL, (size_t)n * dim, 4))) {
        rc = qv_fail(QV_ENOMEM, "%s: out of memory for %" PRIu64 " x %zu vectors", path, n, dim);
        goto cleanup;
    }
    size_t per_block = BLOCK_BYTES / rec ? BLOCK_BYTES / rec : 1;
    if (!(block = qv_malloc(per_block * rec))) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    for (uint64_t i = 0; i < n;) {
        size_t cnt = n - i < per_block ? (size_t)(n - i) : per_block;
        uint64_t off = i * rec;
        if ((rc = src_read(&s, off, block, cnt * rec, "records")) != QV_OK) goto cleanup;
        for (size_t j = 0; j < cnt; j++, i++) {
            const uint8_t *r = block + j * rec;
            int32_t dj = le_i32(r);
            if (dj != d) {
                rc = corrupt(&s, off + j * rec, "record %" PRIu64 " has dimension %" PRId32
                             ", record 0 has %" PRId32, i, dj, d);
                goto cleanup;
            }
            uint8_t *dst = out + (size_t)i * dim * 4;
            if (kind == ELEM_U8) {
                float *f = (float *)(void *)dst;
                for (size_t k = 0; k < dim; k++) f[k] = (float)r[4 + k];
            } else {
                memcpy(dst, r + 4, dim * 4);
            }
        }
    }
    uint64_t tail = s.size - n * rec;
    if (tail) {
        uint64_t off = n * rec;
        if (tail >= 4) {   /* name the more telling error: a different dimension */
            if ((rc = src_read(&s, off, head, 4, "a dimension")) != QV_OK) goto cleanup;
            int32_t dj = le_i32(head);
            if (dj != d) {
                rc = corrupt(&s, off, "record %" PRIu64 " has dimension %" PRId32
                             ", record 0 has %" PRId32, n, dj, d);
                goto cleanup;
            }
        }
        rc = corrupt(&s, off, "trailing partial record %" PRIu64 " (%" PRIu64 " of %zu bytes)", n,
                     tail, rec);
        goto cleanup;
    }
    *data = out;
    out = NULL;
    *n_out = (size_t)n;
    *dim_out = dim;
cleanup:
    qv_free(out);
    qv_free(block);
    src_close(&s);
    return rc;
}

/* ---- NumPy .npy ---- */

typedef struct {
    const source *s;
    const char *start, *p, *end;
    uint64_t base;                 /* file offset of the header text */
} hparser;

static uint64_t hp_off(const hparser *h, const char *at) { return h->base + (uint64_t)(at - h->start); }

static int hp_fail(const hparser *h, const char *fmt, ...) QV_PRINTF(2, 3);
static int hp_fail(const hparser *h, const char *fmt, ...)
{
    char msg[240];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return corrupt(h->s, hp_off(h, h->p), "npy header: %s", msg);
}

static void hp_ws(hparser *h)
{
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r'))
        h->p++;
}

static int hp_char(hparser *h, char c)
{
    hp_ws(h);
    if (h->p >= h->end || *h->p != c) return hp_fail(h, "expected '%c'", c);
    h->p++;
    return QV_OK;
}

/* A quoted string without escapes into buf (NUL-terminated). */
static int hp_string(hparser *h, char *buf, size_t cap)
{
    hp_ws(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) return hp_fail(h, "expected a string");
    char q = *h->p++;
    size_t n = 0;
    while (h->p < h->end && *h->p != q) {
        if (*h->p == '\\' || n + 1 >= cap) return hp_fail(h, "unexpected string");
        buf[n++] = *h->p++;
    }
    if (h->p >= h->end) return hp_fail(h, "unterminated string");
    h->p++;
    buf[n] = '\0';
    return QV_OK;
}

static int hp_word(hparser *h, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(h->end - h->p) >= n && memcmp(h->p, w, n) == 0) {
        h->p += n;
        return 1;
    }
    return 0;
}

/* Non-negative decimal integer (optional Python 2 'L' suffix), at most 2^62. */
static int hp_uint(hparser *h, uint64_t *v)
{
    hp_ws(h);
    const char *start = h->p;
    uint64_t x = 0;
    while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
        if (x > (UINT64_C(1) << 62) / 10) return hp_fail(h, "shape value too large");
        x = x * 10 + (uint64_t)(*h->p++ - '0');
    }
    if (h->p == start) return hp_fail(h, "expected a non-negative integer in the shape");
    if (h->p < h->end && *h->p == 'L') h->p++;
    *v = x;
    return QV_OK;
}

/* "(a, b)", "(a,)", "()" with an optional trailing comma; up to 8 entries kept. */
static int hp_shape(hparser *h, uint64_t *shape, int *ndim)
{
    int rc;
    *ndim = 0;
    if ((rc = hp_char(h, '(')) != QV_OK) return rc;
    for (;;) {
        hp_ws(h);
        if (h->p < h->end && *h->p == ')') {
            h->p++;
            return QV_OK;
        }
        if (*ndim >= 8) return hp_fail(h, "too many dimensions in the shape");
        if ((rc = hp_uint(h, &shape[*ndim])) != QV_OK) return rc;
        (*ndim)++;
        hp_ws(h);
        if (h->p < h->end && *h->p == ',') {
            h->p++;
            continue;
        }
        if ((rc = hp_char(h, ')')) != QV_OK) return rc;
        if (*ndim == 1) return hp_fail(h, "a 1-element shape needs a trailing comma");
        return QV_OK;
    }
}

static int parse_npy_header(const source *s, const char *text, size_t len, uint64_t base,
                            size_t *n_out, size_t *dim_out)
{
    hparser h = {s, text, text, text + len, base};
    int rc, seen_descr = 0, seen_fortran = 0, seen_shape = 0, ndim = 0;
    uint64_t shape[8];
    char key[32], descr[32];
    if ((rc = hp_char(&h, '{')) != QV_OK) return rc;
    for (;;) {
        hp_ws(&h);
        if (h.p < h.end && *h.p == '}') {
            h.p++;
            break;
        }
        const char *key_at = h.p;
        if ((rc = hp_string(&h, key, sizeof key)) != QV_OK) return rc;
        if ((rc = hp_char(&h, ':')) != QV_OK) return rc;
        hp_ws(&h);
        int *seen = !strcmp(key, "descr") ? &seen_descr
                  : !strcmp(key, "fortran_order") ? &seen_fortran
                  : !strcmp(key, "shape") ? &seen_shape : NULL;
        if (!seen || *seen) {
            h.p = key_at;
            return hp_fail(&h, "%s key '%s'", seen ? "repeated" : "unknown", key);
        }
        *seen = 1;
        if (seen == &seen_descr) {
            const char *at = h.p;
            if ((rc = hp_string(&h, descr, sizeof descr)) != QV_OK) return rc;
            if (strcmp(descr, "<f4") != 0) {
                h.p = at;
                return hp_fail(&h, "dtype '%s' is not supported (only '<f4': little-endian float32)",
                               descr);
            }
        } else if (seen == &seen_fortran) {
            if (hp_word(&h, "True"))
                return hp_fail(&h, "fortran_order True is not supported (C order only)");
            if (!hp_word(&h, "False")) return hp_fail(&h, "fortran_order must be True or False");
        } else {
            if ((rc = hp_shape(&h, shape, &ndim)) != QV_OK) return rc;
        }
        hp_ws(&h);
        if (h.p < h.end && *h.p == ',') {
            h.p++;
            continue;
        }
        if ((rc = hp_char(&h, '}')) != QV_OK) return rc;
        break;
    }
    hp_ws(&h);
    if (h.p != h.end) return hp_fail(&h, "unexpected text after the dictionary");
    if (!seen_descr || !seen_fortran || !seen_shape)
        return hp_fail(&h, "missing key '%s'",
                       !seen_descr ? "descr" : !seen_fortran ? "fortran_order" : "shape");
    uint64_t n, d;
    if (ndim == 2) {
        n = shape[0];
        d = shape[1];
    } else if (ndim == 1) {
        n = 1;
        d = shape[0];
    } else {
        h.p = text;
        return hp_fail(&h, "shape has %d dimensions, expected 2 (n, dim) or 1 (dim,)", ndim);
    }
    h.p = text;
    if (d == 0 || d > QV_MAX_DIM)
        return hp_fail(&h, "dimension %" PRIu64 " is outside 1..%u", d, QV_MAX_DIM);
    if (n == 0) return hp_fail(&h, "shape has no rows (no vectors)");
    if (n > SIZE_MAX / 4 / d) return hp_fail(&h, "shape (%" PRIu64 ", %" PRIu64 ") overflows", n, d);
    *n_out = (size_t)n;
    *dim_out = (size_t)d;
    return QV_OK;
}

static int read_npy(const char *path, float **data, size_t *n_out, size_t *dim_out)
{
    source s = {.fd = -1};
    char *text = NULL;
    float *out = NULL;
    int rc = src_open(&s, path);
    if (rc != QV_OK) goto cleanup;
    if (s.size == 0) {
        rc = corrupt(&s, 0, "empty file (no vectors)");
        goto cleanup;
    }
    uint8_t pre[12];
    size_t plen = s.size < 8 ? (size_t)s.size : 8;
    if ((rc = src_read(&s, 0, pre, plen, "the npy magic")) != QV_OK) goto cleanup;
    if (plen < 6 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        rc = corrupt(&s, 0, "not a .npy file (bad magic)");
        goto cleanup;
    }
    if (plen < 8) {
        rc = corrupt(&s, plen, "truncated reading the npy version");
        goto cleanup;
    }
    uint8_t major = pre[6], minor = pre[7];
    if (minor != 0 || major < 1 || major > 3) {
        rc = corrupt(&s, 6, "unsupported npy version %u.%u (1.0, 2.0, 3.0 are)", major, minor);
        goto cleanup;
    }
    size_t lenbytes = major == 1 ? 2 : 4;
    if ((rc = src_read(&s, 8, pre + 8, lenbytes, "the npy header length")) != QV_OK) goto cleanup;
    uint64_t hlen = major == 1 ? (uint64_t)(pre[8] | pre[9] << 8) : (uint32_t)le_i32(pre + 8);
    uint64_t hstart = 8 + lenbytes;
    if (hlen > NPY_MAX_HEADER) {
        rc = corrupt(&s, 8, "npy header length %" PRIu64 " exceeds the %u-byte limit", hlen,
                     NPY_MAX_HEADER);
        goto cleanup;
    }
    if (!(text = qv_malloc((size_t)hlen + 1))) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    if ((rc = src_read(&s, hstart, text, (size_t)hlen, "the npy header")) != QV_OK) goto cleanup;
    text[hlen] = '\0';
    if (memchr(text, '\0', (size_t)hlen)) {
        rc = corrupt(&s, hstart, "npy header contains a NUL byte");
        goto cleanup;
    }
    size_t n = 0, dim = 0;
    if ((rc = parse_npy_header(&s, text, (size_t)hlen, hstart, &n, &dim)) != QV_OK) goto cleanup;
    uint64_t doff = hstart + hlen, need = (uint64_t)n * dim * 4;
    if (s.size - doff != need) {
        rc = corrupt(&s, doff, "shape (%zu, %zu) needs %" PRIu64 " data bytes, the file has %" PRIu64,
                     n, dim, need, s.size - doff);
        goto cleanup;
    }
    if (!(out = qv_reallocarray(NULL, n * dim, sizeof *out))) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    if ((rc = src_read(&s, doff, out, (size_t)need, "the array data")) != QV_OK) goto cleanup;
    *data = out;
    out = NULL;
    *n_out = n;
    *dim_out = dim;
cleanup:
    qv_free(out);
    qv_free(text);
    src_close(&s);
    return rc;
}

/* ---- entry points ---- */

static const char *extension(const char *path)
{
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    return dot && (!slash || dot > slash) ? dot : "";
}

int qv_read_vectors(const char *path, float **data, size_t *n, size_t *dim)
{
    *data = NULL;
    *n = *dim = 0;
    if (!path) return qv_fail(QV_EINVAL, "vector file path is NULL");
    const char *ext = extension(path);
    if (!strcasecmp(ext, ".fvecs")) return read_texmex(path, ELEM_F32, (void **)data, n, dim);
    if (!strcasecmp(ext, ".bvecs")) return read_texmex(path, ELEM_U8, (void **)data, n, dim);
    if (!strcasecmp(ext, ".npy")) return read_npy(path, data, n, dim);
    return qv_fail(QV_EINVAL, "%s: unknown vector file extension '%s' (.fvecs, .bvecs, .npy)",
                   path, ext);
}

int qv_read_ivecs(const char *path, int32_t **data, size_t *n, size_t *dim)
{
    *data = NULL;
    *n = *dim = 0;
    if (!path) return qv_fail(QV_EINVAL, "vector file path is NULL");
    const char *ext = extension(path);
    if (!strcasecmp(ext, ".fvecs") || !strcasecmp(ext, ".bvecs") || !strcasecmp(ext, ".npy"))
        return qv_fail(QV_EINVAL, "%s: float vectors, not .ivecs (use qv_read_vectors)", path);
    return read_texmex(path, ELEM_I32, (void **)data, n, dim);
}

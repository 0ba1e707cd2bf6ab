/*
 * core/serial.c -- little-endian writer/reader with a running CRC32C, plus whole-file
 * read and atomic write.
 *
 * The writer grows its buffer geometrically; an allocation failure is sticky (later
 * writes are no-ops returning QV_ENOMEM) so callers can check once at finish. The reader
 * checks every length against what is left before touching memory; its first failure
 * is sticky too, and the message names the source, the offset and what was being read.
 * Values are stored little-endian regardless of the host.
 *
 * qv_write_file_atomic: write "<path>.tmp.<pid>.<n>" in the same directory, fsync it,
 * rename over path, fsync the directory, so a crash leaves either the old or the new
 * file, never a torn one.
 */
#include "core/serial.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/crc32c.h"
#include "core/error.h"

/* ---- writer ---- */

#define FILE_BUF (1u << 20)

void qv_writer_init(qv_writer *w)
{
    w->buf = NULL;
    w->len = w->cap = 0;
    w->crc = 0;
    w->failed = 0;
    w->fd = -1;
    w->flushed = 0;
    w->name = NULL;
}

int qv_writer_init_fd(qv_writer *w, int fd, const char *name)
{
    qv_writer_init(w);
    if (!(w->buf = qv_malloc(FILE_BUF))) return QV_ENOMEM;
    w->cap = FILE_BUF;
    w->fd = fd;
    w->name = name ? name : "file";
    return QV_OK;
}

static int io_fail(const char *what, const char *path, int err)
{
    return qv_fail(err == ENOSPC || err == EDQUOT ? QV_EFULL : QV_EIO, "%s %s: %s", what, path,
                   strerror(err));
}

/* Write n bytes at p to the writer's file (whole, retrying short writes). */
static int write_all(qv_writer *w, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t got = write(w->fd, p, n);
        if (got < 0) {
            if (errno == EINTR) continue;
            w->failed = errno == ENOSPC || errno == EDQUOT ? QV_EFULL : QV_EIO;
            return io_fail("write", w->name, errno);
        }
        p += got;
        n -= (size_t)got;
        w->flushed += (uint64_t)got;
    }
    return QV_OK;
}

static int flush_buf(qv_writer *w)
{
    int rc = write_all(w, w->buf, w->len);
    if (rc == QV_OK) w->len = 0;
    return rc;
}

void qv_writer_release(qv_writer *w)
{
    if (!w) return;
    qv_free(w->buf);
    qv_writer_init(w);
}

static int w_reserve(qv_writer *w, size_t n)
{
    if (w->failed) return qv_fail(w->failed, "writer failed earlier (%s)", w->failed == QV_ENOMEM ? "out of memory" : "I/O");
    if (n <= w->cap - w->len) return QV_OK;
    if (w->fd >= 0) return flush_buf(w);           /* the caller then fits n or writes through */
    if (n > SIZE_MAX - w->len) goto oom;
    size_t need = w->len + n, cap = w->cap ? w->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *b = qv_reallocarray(w->buf, cap, 1);
    if (!b) goto oom;
    w->buf = b;
    w->cap = cap;
    return QV_OK;
oom:
    w->failed = QV_ENOMEM;
    return qv_fail(QV_ENOMEM, "out of memory growing a %zu-byte buffer by %zu", w->len, n);
}

int qv_w_bytes(qv_writer *w, const void *p, size_t n)
{
    int rc = w_reserve(w, n);
    if (rc != QV_OK) return rc;
    if (w->fd >= 0 && n > w->cap - w->len) {       /* larger than the buffer: straight out */
        w->crc = qv_crc32c(w->crc, p, n);
        return write_all(w, p, n);
    }
    if (n) {
        memcpy(w->buf + w->len, p, n);
        w->crc = qv_crc32c(w->crc, p, n);
        w->len += n;
    }
    return QV_OK;
}

int qv_w_u32(qv_writer *w, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
    return qv_w_bytes(w, b, 4);
}

int qv_w_u64(qv_writer *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    return qv_w_bytes(w, b, 8);
}

int qv_w_f32(qv_writer *w, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    return qv_w_u32(w, u);
}

int qv_w_pad(qv_writer *w, size_t align)
{
    static const uint8_t zeros[4096];
    size_t n = (size_t)((align - qv_writer_pos(w) % align) % align);
    int rc = QV_OK;
    while (n && rc == QV_OK) {
        size_t m = n < sizeof zeros ? n : sizeof zeros;
        rc = qv_w_bytes(w, zeros, m);
        n -= m;
    }
    return rc;
}

uint64_t qv_writer_pos(const qv_writer *w) { return w->flushed + w->len; }

int qv_writer_finish_fd(qv_writer *w)
{
    int rc = qv_w_u32(w, w->crc);
    if (rc == QV_OK) rc = flush_buf(w);
    return rc;
}

int qv_writer_finish(qv_writer *w, void **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (w->fd >= 0) return qv_fail(QV_EINTERNAL, "qv_writer_finish on a file writer");
    int rc = qv_w_u32(w, w->crc);
    if (rc != QV_OK) return rc;
    *buf = w->buf;
    *len = w->len;
    w->buf = NULL;   /* taken: release no longer frees it */
    w->len = w->cap = 0;
    return QV_OK;
}

/* ---- reader ---- */

void qv_reader_init(qv_reader *r, const void *buf, size_t len, const char *name)
{
    r->buf = buf;
    r->len = buf ? len : 0;
    r->off = 0;
    r->crc = 0;
    r->name = name ? name : "buffer";
    r->failed = 0;
}

static int poisoned(qv_reader *r, const char *what)
{
    return qv_fail(r->failed, "%s: earlier read failed (now reading %s at offset %zu)",
                   r->name, what, r->off);
}

int qv_r_view(qv_reader *r, const void **p, size_t n, const char *what)
{
    *p = NULL;
    if (r->failed) return poisoned(r, what);
    if (n > r->len - r->off) {
        r->failed = QV_ECORRUPT;
        return qv_fail(QV_ECORRUPT, "%s: truncated at offset %zu reading %s (%zu bytes needed, %zu left)",
                       r->name, r->off, what, n, r->len - r->off);
    }
    *p = r->buf + r->off;
    if (n) r->crc = qv_crc32c(r->crc, r->buf + r->off, n);
    r->off += n;
    return QV_OK;
}

int qv_r_bytes(qv_reader *r, void *p, size_t n, const char *what)
{
    const void *src;
    int rc = qv_r_view(r, &src, n, what);
    if (rc == QV_OK && n) memcpy(p, src, n);
    return rc;
}

int qv_r_u32(qv_reader *r, uint32_t *v, const char *what)
{
    const uint8_t *b;
    *v = 0;
    int rc = qv_r_view(r, (const void **)&b, 4, what);
    if (rc != QV_OK) return rc;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return QV_OK;
}

int qv_r_u64(qv_reader *r, uint64_t *v, const char *what)
{
    const uint8_t *b;
    *v = 0;
    int rc = qv_r_view(r, (const void **)&b, 8, what);
    if (rc != QV_OK) return rc;
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) x = x << 8 | b[i];
    *v = x;
    return QV_OK;
}

int qv_r_f32(qv_reader *r, float *v, const char *what)
{
    uint32_t u;
    int rc = qv_r_u32(r, &u, what);
    memcpy(v, &u, 4);
    return rc;
}

int qv_r_corrupt(qv_reader *r, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!r->failed) r->failed = QV_ECORRUPT;
    return qv_fail(QV_ECORRUPT, "%s: corrupt at offset %zu: %s", r->name, r->off, msg);
}

int qv_reader_finish(qv_reader *r)
{
    if (r->failed) return poisoned(r, "checksum");
    uint32_t want = r->crc, got;
    size_t at = r->off;
    int rc = qv_r_u32(r, &got, "checksum");
    if (rc != QV_OK) return rc;
    if (got != want) {
        r->failed = QV_ECORRUPT;
        return qv_fail(QV_ECORRUPT, "%s: checksum mismatch at offset %zu (stored %08x, computed %08x)",
                       r->name, at, (unsigned)got, (unsigned)want);
    }
    if (r->off != r->len) {
        r->failed = QV_ECORRUPT;
        return qv_fail(QV_ECORRUPT, "%s: %zu unexpected bytes after the checksum at offset %zu",
                       r->name, r->len - r->off, r->off);
    }
    return QV_OK;
}

int qv_verify_crc(const void *buf, size_t len, const char *name)
{
    if (!name) name = "buffer";
    if (!buf || len < 4)
        return qv_fail(QV_ECORRUPT, "%s: truncated at offset %zu reading checksum (file too short)",
                       name, buf ? len : 0);
    const uint8_t *b = buf;
    const uint8_t *t = b + len - 4;
    uint32_t got = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
    uint32_t want = qv_crc32c(0, b, len - 4);
    if (got != want)
        return qv_fail(QV_ECORRUPT, "%s: checksum mismatch at offset %zu (stored %08x, computed %08x)",
                       name, len - 4, (unsigned)got, (unsigned)want);
    return QV_OK;
}

/* ---- files ---- */

int qv_read_file(const char *path, void **buf, size_t *len)
{
    int rc = QV_OK, fd = -1;
    uint8_t *b = NULL;
    *buf = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = qv_fail(errno == ENOENT ? QV_ENOTFOUND : QV_EIO, "%s: cannot open: %s", path,
                     strerror(errno));
        goto cleanup;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = qv_fail(QV_EIO, "%s: stat: %s", path, strerror(errno));
        goto cleanup;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = qv_fail(QV_EIO, "%s: is a directory", path);
        goto cleanup;
    }
    /* st_size is a hint (pipes, growing files): read to EOF, growing as needed. */
    size_t cap = st.st_size > 0 && (uint64_t)st.st_size < SIZE_MAX ? (size_t)st.st_size + 1 : 4096;
    size_t n = 0;
    if (!(b = qv_malloc(cap))) {
        rc = QV_ENOMEM;
        goto cleanup;
    }
    for (;;) {
        if (n == cap) {
            if (cap > SIZE_MAX / 2) {
                rc = qv_fail(QV_ENOMEM, "%s: too large to read", path);
                goto cleanup;
            }
            uint8_t *nb = qv_reallocarray(b, cap * 2, 1);
            if (!nb) {
                rc = QV_ENOMEM;
                goto cleanup;
            }
            b = nb;
            cap *= 2;
        }
        ssize_t got = read(fd, b + n, cap - n);
        if (got < 0) {
            if (errno == EINTR) continue;
            rc = qv_fail(QV_EIO, "%s: read at offset %zu: %s", path, n, strerror(errno));
            goto cleanup;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    *buf = b;
    *len = n;
    b = NULL;
cleanup:
    qv_free(b);
    if (fd >= 0) close(fd);
    return rc;
}

int qv_atomic_file_begin(qv_atomic_file *f, const char *path)
{
    static atomic_uint counter;
    size_t plen = strlen(path);
    f->fd = -1;
    f->path = f->tmp = NULL;
    if (plen == 0) return qv_fail(QV_EINVAL, "empty path");
    if (!(f->tmp = qv_malloc(plen + 64)) || !(f->path = qv_strdup(path))) {
        qv_free(f->tmp);
        f->tmp = NULL;
        return QV_ENOMEM;
    }
    snprintf(f->tmp, plen + 64, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&counter, 1));
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        int rc = io_fail("cannot create", f->tmp, errno);
        qv_free(f->tmp);
        qv_free(f->path);
        f->tmp = f->path = NULL;       /* not ours: never unlink it */
        return rc;
    }
    return QV_OK;
}

void qv_atomic_file_abort(qv_atomic_file *f)
{
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    if (f->tmp) unlink(f->tmp);
    qv_free(f->tmp);
    qv_free(f->path);
    f->fd = -1;
    f->tmp = f->path = NULL;
}

int qv_atomic_file_commit(qv_atomic_file *f, int nosync)
{
    int rc = QV_OK, dfd = -1;
    char *dir = NULL;
    if (!nosync && fsync(f->fd) != 0) {
        rc = io_fail("fsync", f->tmp, errno);
        goto cleanup;
    }
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0) {
        rc = io_fail("close", f->tmp, errno);
        goto cleanup;
    }
    if (rename(f->tmp, f->path) != 0) {
        rc = io_fail("rename to", f->path, errno);
        goto cleanup;
    }
    f->tmp[0] = '\0';                   /* renamed: nothing to unlink */
    if (nosync) goto cleanup;
    /* fsync the directory so the rename itself is durable. */
    if (!(dir = qv_strdup(f->path))) { rc = QV_ENOMEM; goto cleanup; }
    char *slash = strrchr(dir, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        rc = io_fail("cannot open directory", dir, errno);
        goto cleanup;
    }
    if (fsync(dfd) != 0 && errno != EINVAL) rc = io_fail("fsync directory", dir, errno);
cleanup:
    if (dfd >= 0) close(dfd);
    qv_free(dir);
    if (f->tmp && !f->tmp[0]) {          /* renamed: abort must not unlink */
        qv_free(f->tmp);
        f->tmp = NULL;
    }
    qv_atomic_file_abort(f);
    return rc;
}

int qv_write_file_atomic(const char *path, const void *buf, size_t len)
{
    qv_atomic_file f;
    int rc = qv_atomic_file_begin(&f, path);
    if (rc != QV_OK) return rc;
    const uint8_t *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(f.fd, p + done, len - done);
        if (w < 0) {
            if (errno == EINTR) continue;
            rc = io_fail("write", f.tmp, errno);
            qv_atomic_file_abort(&f);
            return rc;
        }
        done += (size_t)w;
    }
    return qv_atomic_file_commit(&f, 0);
}

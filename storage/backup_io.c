/*
 * storage/backup_io.c -- the backup file format (storage/backup.h): a buffered frame
 * writer that hashes what it writes, a buffered frame reader, and the verify pass that
 * every restore runs before it touches the database (qv_backup_verify is that pass
 * alone).
 *
 * The reader distrusts the file: every length is checked against what is left of the
 * file before anything is allocated or read, so a damaged length cannot make it allocate
 * more than the file's size, and every failure is QV_ECORRUPT naming the offset.
 */
#include "storage/backup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"

#define WBUF (1u << 20)
#define RBUF (1u << 20)
/* Writeback is started every SYNC_STEP bytes and waited for one step later, so the file
 * never has more than two steps of dirty pages. Without it a 1.2 GB backup left ~1 GB
 * dirty, and a writer's commit (LMDB fsyncs data.mdb) waited behind that writeback on
 * ext4: upserts during a backup of sift-debian-1m stalled for 2.6-5.2 s at its end. */
#define SYNC_STEP (16u << 20)

int qv_bk_table_dbi(int table)
{
    static const int dbi[QV_BK_T_END] = {
        [QV_BK_T_STATE] = DBI_STATE,       [QV_BK_T_IDS] = DBI_IDS,         [QV_BK_T_POINTS] = DBI_POINTS,
        [QV_BK_T_PAYLOADS] = DBI_PAYLOADS, [QV_BK_T_FREEIDS] = DBI_FREEIDS, [QV_BK_T_LOG] = DBI_LOG,
        [QV_BK_T_PINDEX] = DBI_PINDEX,
    };
    return table > 0 && table < QV_BK_T_END ? dbi[table] : -1;
}

static void le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static int host_is_le(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* ---- writer -------------------------------------------------------------------------- */

static int write_error(qv_bk_writer *w, const char *what, int err)
{
    int code = err == ENOSPC || err == EDQUOT || err == EFBIG ? QV_EFULL : QV_EIO;
    w->failed = qv_fail(code, "%s: %s: %s", w->path, what, strerror(err));
    return w->failed;
}

/* Start writeback of what was written since the last step, wait for the step before,
 * and drop those pages from the cache (a backup is not read back soon). */
static void pace_writeback(qv_bk_writer *w)
{
    if (w->written - w->flushing < SYNC_STEP) return;
    uint64_t done = w->flushing >= SYNC_STEP ? w->flushing - SYNC_STEP : 0;
    sync_file_range(w->fd, (off_t)w->flushing, (off_t)(w->written - w->flushing), SYNC_FILE_RANGE_WRITE);
    if (w->flushing > done) {
        sync_file_range(w->fd, (off_t)done, (off_t)(w->flushing - done),
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
        posix_fadvise(w->fd, (off_t)done, (off_t)(w->flushing - done), POSIX_FADV_DONTNEED);
    }
    w->flushing = w->written;
}

static int write_all(qv_bk_writer *w, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t got = write(w->fd, b, n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return write_error(w, "write", errno);
        if (got == 0) return write_error(w, "write", ENOSPC);
        b += got;
        n -= (size_t)got;
        w->written += (uint64_t)got;
    }
    pace_writeback(w);
    return QV_OK;
}

static int flush(qv_bk_writer *w)
{
    int rc = w->len ? write_all(w, w->buf, w->len) : QV_OK;
    w->len = 0;
    return rc;
}

static int append(qv_bk_writer *w, const void *p, size_t n)
{
    if (w->failed) return w->failed;
    qv_sha256_update(w->sha, p, n);
    w->size += n;
    if (w->len + n > WBUF) {
        int rc = flush(w);
        if (rc != QV_OK) return rc;
        if (n >= WBUF) return write_all(w, p, n);   /* big values go straight out */
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return QV_OK;
}

int qv_bk_writer_init(qv_bk_writer *w, int fd, const char *path)
{
    memset(w, 0, sizeof *w);
    w->fd = fd;
    w->path = path;
    if (!(w->buf = qv_malloc(WBUF))) return w->failed = QV_ENOMEM;
    if ((w->failed = qv_sha256_new(&w->sha)) != QV_OK) return w->failed;
    return QV_OK;
}

void qv_bk_writer_release(qv_bk_writer *w)
{
    qv_free(w->buf);
    qv_sha256_free(w->sha);
    w->buf = NULL;
    w->sha = NULL;
}

int qv_bk_put_header(qv_bk_writer *w, int64_t created, uint32_t ncoll)
{
    uint8_t h[QV_BK_HEADER];
    memcpy(h, QV_BK_MAGIC, 8);
    le32(h + 8, QV_BK_VERSION);
    le32(h + 12, host_is_le() ? QV_BK_F_LE : 0);
    le64(h + 16, (uint64_t)created);
    le32(h + 24, QV_STORAGE_FORMAT);
    le32(h + 28, ncoll);
    return append(w, h, sizeof h);
}

int qv_bk_put_frame(qv_bk_writer *w, int tag, int table, const void *key, size_t klen, const void *v1, size_t l1,
                    const void *v2, size_t l2)
{
    uint8_t h[QV_BK_FRAME];
    if (klen > UINT16_MAX || l1 + l2 > QV_BK_MAX_VALUE)
        return w->failed = qv_fail(QV_EINTERNAL, "backup frame '%c' too large (key %zu, value %zu bytes)", tag, klen,
                                   l1 + l2);
    h[0] = (uint8_t)tag;
    h[1] = (uint8_t)table;
    h[2] = (uint8_t)klen;
    h[3] = (uint8_t)(klen >> 8);
    le32(h + 4, (uint32_t)(l1 + l2));
    int rc = append(w, h, sizeof h);
    if (rc == QV_OK && klen) rc = append(w, key, klen);
    if (rc == QV_OK && l1) rc = append(w, v1, l1);
    if (rc == QV_OK && l2) rc = append(w, v2, l2);
    return rc;
}

int qv_bk_finish(qv_bk_writer *w, uint8_t whole[QV_SHA256_BYTES])
{
    uint8_t content[QV_SHA256_BYTES];
    qv_sha256 *before = NULL;
    if (w->failed) return w->failed;
    /* the trailer holds the digest of everything before it; the file's digest goes on
     * through the trailer */
    if ((w->failed = qv_sha256_copy(w->sha, &before)) != QV_OK) return w->failed;
    qv_sha256_final(before, content);
    qv_sha256_free(before);
    int rc = qv_bk_put_frame(w, 'Z', 0, NULL, 0, content, sizeof content, NULL, 0);
    if (rc == QV_OK) rc = flush(w);
    if (rc == QV_OK && fsync(w->fd) != 0) rc = write_error(w, "fsync", errno);
    if (rc == QV_OK) qv_sha256_final(w->sha, whole);
    return rc;
}

/* ---- reader -------------------------------------------------------------------------- */

int qv_bk_reader_init(qv_bk_reader *r, int fd, const char *path, int hash)
{
    struct stat st;
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->path = path;
    if (fstat(fd, &st) != 0) return qv_fail(QV_EIO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return qv_fail(QV_EINVAL, "%s: not a regular file", path);
    r->size = (uint64_t)st.st_size;
    if (!(r->buf = qv_malloc(RBUF))) return QV_ENOMEM;
    if (hash) return qv_sha256_new(&r->sha);
    return QV_OK;
}

void qv_bk_reader_release(qv_bk_reader *r)
{
    qv_free(r->buf);
    qv_free(r->fbuf);
    qv_sha256_free(r->sha);
    memset(r, 0, sizeof *r);
}

void qv_bk_seek(qv_bk_reader *r, uint64_t off)
{
    r->off = off;
    r->blen = r->bpos = 0;
    r->boff = off;
}

/* Read n bytes (the caller checked that the file has them) into dst. */
static int get_bytes(qv_bk_reader *r, void *dst, size_t n)
{
    uint8_t *d = dst;
    while (n) {
        if (r->bpos == r->blen) {
            size_t want = RBUF;
            ssize_t got;
            do got = pread(r->fd, r->buf, want, (off_t)r->off);
            while (got < 0 && errno == EINTR);
            if (got < 0) return qv_fail(QV_EIO, "%s: read at offset %llu: %s", r->path, (unsigned long long)r->off,
                                        strerror(errno));
            if (got == 0)
                return qv_fail(QV_ECORRUPT, "%s: truncated: the file ends at byte %llu", r->path,
                               (unsigned long long)r->off);
            r->boff = r->off;
            r->blen = (size_t)got;
            r->bpos = 0;
        }
        size_t take = r->blen - r->bpos < n ? r->blen - r->bpos : n;
        memcpy(d, r->buf + r->bpos, take);
        if (r->sha) qv_sha256_update(r->sha, d, take);
        r->bpos += take;
        r->off += take;
        d += take;
        n -= take;
    }
    return QV_OK;
}

int qv_bk_get_header(qv_bk_reader *r, int64_t *created, uint32_t *ncoll)
{
    uint8_t h[QV_BK_HEADER];
    if (r->size < QV_BK_HEADER)
        return qv_fail(QV_ECORRUPT, "%s: not a Quiver backup (%llu bytes, too short for its header)", r->path,
                       (unsigned long long)r->size);
    int rc = get_bytes(r, h, sizeof h);
    if (rc != QV_OK) return rc;
    if (memcmp(h, QV_BK_MAGIC, 8) != 0) return qv_fail(QV_ECORRUPT, "%s: not a Quiver backup (wrong magic)", r->path);
    uint32_t version = get32(h + 8), flags = get32(h + 12), format = get32(h + 24);
    if (version != QV_BK_VERSION)
        return qv_fail(QV_ECORRUPT, "%s: backup format %u not supported (this build reads %u)", r->path, version,
                       QV_BK_VERSION);
    if (flags & ~QV_BK_F_LE) return qv_fail(QV_ECORRUPT, "%s: unknown backup flags 0x%x", r->path, flags);
    if (!(flags & QV_BK_F_LE) != !host_is_le())
        return qv_fail(QV_ECORRUPT, "%s: written on a machine of another byte order", r->path);
    if (format != QV_STORAGE_FORMAT)
        return qv_fail(QV_ECORRUPT, "%s: written by storage format %u, this build reads %u", r->path, format,
                       QV_STORAGE_FORMAT);
    *created = (int64_t)get64(h + 16);
    *ncoll = get32(h + 28);
    return QV_OK;
}

int qv_bk_get_frame(qv_bk_reader *r, qv_bk_frame *f)
{
    uint8_t h[QV_BK_FRAME];
    int rc;
    f->off = r->off;
    if (r->size - r->off < QV_BK_FRAME)
        return qv_fail(QV_ECORRUPT, "%s: truncated: the file ends at byte %llu, without its trailer", r->path,
                       (unsigned long long)r->size);
    if ((rc = get_bytes(r, h, sizeof h)) != QV_OK) return rc;
    f->tag = h[0];
    f->table = h[1];
    f->klen = (size_t)h[2] | (size_t)h[3] << 8;
    f->vlen = get32(h + 4);
    if (f->vlen > QV_BK_MAX_VALUE || f->klen + f->vlen > r->size - r->off)
        return qv_fail(QV_ECORRUPT, "%s: frame at offset %llu claims %zu bytes, more than the file holds "
                       "(truncated or damaged)", r->path, (unsigned long long)f->off, f->klen + f->vlen);
    size_t need = f->klen + f->vlen + 1;
    if (need > r->fcap) {
        size_t cap = r->fcap ? r->fcap : 4096;
        while (cap < need) cap *= 2;
        uint8_t *b = qv_reallocarray(r->fbuf, cap, 1);
        if (!b) return QV_ENOMEM;
        r->fbuf = b;
        r->fcap = cap;
    }
    if ((rc = get_bytes(r, r->fbuf, f->klen + f->vlen)) != QV_OK) return rc;
    f->key = r->fbuf;
    f->val = r->fbuf + f->klen;
    f->val[f->vlen] = 0;      /* room reserved above: lets names and JSON be read as strings */
    return QV_OK;
}

/* ---- verify -------------------------------------------------------------------------- */

static int damaged(const qv_bk_reader *r, const qv_bk_frame *f, const char *what)
{
    return qv_fail(QV_ECORRUPT, "%s: damaged at offset %llu: %s", r->path, (unsigned long long)f->off, what);
}

/* Check one collection, from its 'C' frame (already read into f) to its 'E' frame. */
static int verify_collection(qv_bk_reader *r, qv_bk_frame *f, qv_bk_entry *e)
{
    int rc, last_table = 0;
    uint64_t index_left = 0;
    memset(e, 0, sizeof *e);
    e->off = f->off;
    if (f->table != 0 || f->klen == 0 || f->klen >= sizeof e->name || memchr(f->key, 0, f->klen))
        return damaged(r, f, "a collection frame with a bad name");
    memcpy(e->name, f->key, f->klen);
    if (qv_coll_name_check(e->name) != QV_OK) return damaged(r, f, "a collection frame with a bad name");
    for (;;) {
        if ((rc = qv_bk_get_frame(r, f)) != QV_OK) return rc;
        switch (f->tag) {
        case 'R':
            if (e->has_index) return damaged(r, f, "a record after the index snapshot");
            if (qv_bk_table_dbi(f->table) < 0 || f->table < last_table || f->klen > 507)
                return damaged(r, f, "a record of an unknown table, out of order, or with a key too long");
            last_table = f->table;
            e->records++;
            if (f->table == QV_BK_T_POINTS) e->points++;
            break;
        case 'S':
            if (e->has_index || f->table || f->klen != 16 || f->vlen) return damaged(r, f, "a bad index snapshot frame");
            e->has_index = 1;
            index_left = get64(f->key + 8);
            if (index_left == 0 || index_left > r->size) return damaged(r, f, "an index snapshot of an impossible size");
            break;
        case 'B':
            if (!e->has_index || f->table || f->klen || f->vlen == 0 || f->vlen > QV_BK_CHUNK || f->vlen > index_left)
                return damaged(r, f, "an index chunk out of place or of a bad size");
            index_left -= f->vlen;
            break;
        case 'E':
            if (index_left) return damaged(r, f, "the index snapshot is cut short");
            if (f->table || f->klen != 16 || f->vlen) return damaged(r, f, "a bad end-of-collection frame");
            if (get64(f->key) != e->records || get64(f->key + 8) != e->points)
                return damaged(r, f, "the collection's record count does not add up");
            return QV_OK;
        default:
            return damaged(r, f, "an unknown frame inside a collection");
        }
    }
}

int qv_bk_verify_fd(int fd, const char *path, const uint8_t *expect, qv_backup_info *info, qv_bk_entry **entries,
                    size_t *n)
{
    qv_bk_reader r;
    qv_bk_frame f;
    qv_bk_entry *list = NULL;
    qv_sha256 *before = NULL;
    uint8_t content[QV_SHA256_BYTES], whole[QV_SHA256_BYTES];
    size_t len = 0, cap = 0;
    uint32_t ncoll = 0;
    int64_t created = 0;
    int rc;

    *entries = NULL;
    *n = 0;
    if ((rc = qv_bk_reader_init(&r, fd, path, 1)) != QV_OK) goto cleanup;
    if ((rc = qv_bk_get_header(&r, &created, &ncoll)) != QV_OK) goto cleanup;
    for (;;) {
        /* the trailer's digest covers everything before the trailer, which is the file's
         * last frame: take the digest so far at the frame boundary where it must begin */
        if (r.size - r.off == QV_BK_FRAME + QV_SHA256_BYTES) {
            qv_sha256_free(before);
            before = NULL;
            if ((rc = qv_sha256_copy(r.sha, &before)) != QV_OK) goto cleanup;
        }
        if ((rc = qv_bk_get_frame(&r, &f)) != QV_OK) goto cleanup;
        if (f.tag == 'Z') break;
        if (f.tag != 'C') {
            rc = damaged(&r, &f, "expected a collection or the trailer");
            goto cleanup;
        }
        if (len == cap) {
            size_t ncap = cap ? 2 * cap : 8;
            qv_bk_entry *t = qv_reallocarray(list, ncap, sizeof *t);
            if (!t) { rc = QV_ENOMEM; goto cleanup; }
            list = t;
            cap = ncap;
        }
        if ((rc = verify_collection(&r, &f, &list[len])) != QV_OK) goto cleanup;
        for (size_t i = 0; i < len; i++)
            if (strcmp(list[i].name, list[len].name) == 0) {
                rc = damaged(&r, &f, "a collection named twice");
                goto cleanup;
            }
        len++;
    }
    if (!before || f.table || f.klen || f.vlen != QV_SHA256_BYTES || r.off != r.size) {
        rc = qv_fail(QV_ECORRUPT, "%s: damaged: the trailer at offset %llu is not the file's last %u bytes", path,
                     (unsigned long long)f.off, QV_BK_FRAME + QV_SHA256_BYTES);
        goto cleanup;
    }
    qv_sha256_final(before, content);
    if (memcmp(content, f.val, QV_SHA256_BYTES) != 0) {
        rc = qv_fail(QV_ECORRUPT, "%s: damaged: its content does not match the SHA-256 it carries", path);
        goto cleanup;
    }
    if (len != ncoll) {
        rc = qv_fail(QV_ECORRUPT, "%s: damaged: the header announces %u collections, the file holds %zu", path, ncoll,
                     len);
        goto cleanup;
    }
    qv_sha256_final(r.sha, whole);
    char got[QV_SHA256_HEX], want[QV_SHA256_HEX];
    qv_sha256_hex(whole, got);
    if (expect && memcmp(expect, whole, QV_SHA256_BYTES) != 0) {
        qv_sha256_hex(expect, want);
        rc = qv_fail(QV_ECORRUPT, "%s: SHA-256 is %s, not the expected %s", path, got, want);
        goto cleanup;
    }
    if (info) {
        memset(info, 0, sizeof *info);
        memcpy(info->sha256, got, sizeof got);
        info->bytes = r.size;
        info->created = created;
        info->collections = (uint32_t)len;
        for (size_t i = 0; i < len; i++) info->points += list[i].points;
    }
    *entries = list;
    *n = len;
    list = NULL;
cleanup:
    qv_sha256_free(before);
    qv_bk_reader_release(&r);
    qv_free(list);
    return rc;
}

int qv_backup_verify(const char *path, const char *sha256, qv_backup_info *info)
{
    uint8_t expect[QV_SHA256_BYTES];
    qv_bk_entry *entries = NULL;
    size_t n = 0;
    if (info) memset(info, 0, sizeof *info);
    if (!path || !path[0]) return qv_fail(QV_EINVAL, "backup path is NULL or empty");
    if (sha256 && qv_sha256_parse(sha256, expect) != 0)
        return qv_fail(QV_EINVAL, "expected SHA-256 must be 64 hex digits, got '%.80s'", sha256);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return qv_fail(errno == ENOENT ? QV_ENOTFOUND : QV_EIO, "%s: %s", path, strerror(errno));
    int rc = qv_bk_verify_fd(fd, path, sha256 ? expect : NULL, info, &entries, &n);
    qv_free(entries);
    close(fd);
    return rc;
}

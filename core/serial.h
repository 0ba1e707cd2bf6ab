/*
 * core/serial.h -- little-endian binary writer and bounds-checked reader with a running
 * CRC32C, for the index file format.
 *
 * Writer: appends to a growable memory buffer, or streams to a file through a 1 MiB
 * buffer (large arrays go straight from the caller's memory to the file, so saving a
 * big index needs no second copy of it). Reader: walks a memory buffer; every read
 * checks the remaining length and fails with QV_ECORRUPT naming the source and offset
 * ("index.qv: truncated at offset 1234 reading links"). Once a read fails the reader is
 * poisoned and every later read fails too, so callers may check only at the end of a
 * section. Both track the CRC32C of all bytes passed so far.
 */
#ifndef QV_CORE_SERIAL_H
#define QV_CORE_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct {
    uint8_t *buf;
    size_t len, cap;
    uint32_t crc;
    int failed;                    /* sticky: QV_ENOMEM, or QV_EIO / QV_EFULL for a file */
    int fd;                        /* -1: memory writer */
    uint64_t flushed;              /* file writer: bytes already written to fd */
    const char *name;              /* file writer: path for messages */
} qv_writer;

void qv_writer_init(qv_writer *w);
/** A writer that streams to fd (borrowed, positioned at offset 0); name is for messages. */
int  qv_writer_init_fd(qv_writer *w, int fd, const char *name);
void qv_writer_release(qv_writer *w);             /* frees buf unless taken */
int  qv_w_bytes(qv_writer *w, const void *p, size_t n);
int  qv_w_u32(qv_writer *w, uint32_t v);
int  qv_w_u64(qv_writer *w, uint64_t v);
int  qv_w_f32(qv_writer *w, float v);
/** Zero bytes up to the next multiple of align (a power of two) of the position. */
int  qv_w_pad(qv_writer *w, size_t align);
/** Bytes written so far (the offset of the next byte in the file or buffer). */
uint64_t qv_writer_pos(const qv_writer *w);
/** Append the CRC of everything written so far (as u32) and hand the buffer to the
 *  caller (*buf freed with qv_free). Memory writers only. @return QV_OK or QV_ENOMEM. */
int  qv_writer_finish(qv_writer *w, void **buf, size_t *len);
/** File writers: append the CRC and write out what is buffered. QV_OK / QV_EIO / QV_EFULL. */
int  qv_writer_finish_fd(qv_writer *w);

typedef struct {
    const uint8_t *buf;
    size_t len, off;
    uint32_t crc;
    const char *name;              /* file or snapshot name for messages */
    int failed;                    /* sticky: first error code */
} qv_reader;

void qv_reader_init(qv_reader *r, const void *buf, size_t len, const char *name);
/** what: a word for the message ("header", "links"). @return QV_OK or QV_ECORRUPT. */
int  qv_r_bytes(qv_reader *r, void *p, size_t n, const char *what);
int  qv_r_u32(qv_reader *r, uint32_t *v, const char *what);
int  qv_r_u64(qv_reader *r, uint64_t *v, const char *what);
int  qv_r_f32(qv_reader *r, float *v, const char *what);
/** Borrow n bytes in place (no copy): *p points into the buffer. */
int  qv_r_view(qv_reader *r, const void **p, size_t n, const char *what);
/** Fail with QV_ECORRUPT at the current offset with a custom message. */
int  qv_r_corrupt(qv_reader *r, const char *fmt, ...) QV_PRINTF(2, 3);
/** Read the trailing CRC and compare with the running one; also requires that nothing
 *  is left after it. */
int  qv_reader_finish(qv_reader *r);
/** Checksum of the whole buffer (all but the last 4 bytes) against its last 4 bytes:
 *  lets a loader reject a damaged file before parsing anything. */
int  qv_verify_crc(const void *buf, size_t len, const char *name);

/** Read a whole file into a malloc'd buffer (free with qv_free). QV_ENOTFOUND / QV_EIO. */
int  qv_read_file(const char *path, void **buf, size_t *len);
/** Write a buffer to path atomically (temp file, fsync, rename). QV_EIO / QV_EFULL. */
int  qv_write_file_atomic(const char *path, const void *buf, size_t len);

/* A file written in place of another atomically: begin creates "<path>.tmp.<pid>.<n>"
 * (fd open for writing), commit makes it durable (fsync unless nosync), renames it over
 * path and syncs the directory; abort removes it. Exactly one of commit / abort. */
typedef struct {
    int fd;
    char *path, *tmp;
} qv_atomic_file;
int  qv_atomic_file_begin(qv_atomic_file *f, const char *path);
int  qv_atomic_file_commit(qv_atomic_file *f, int nosync);
void qv_atomic_file_abort(qv_atomic_file *f);

#endif

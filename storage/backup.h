/*
 * storage/backup.h -- private header of backups (quiver.h: qv_backup_create, _verify,
 * _restore). Files: backup_io.c (the file format: frame writer, frame reader, verify),
 * backup_create.c, backup_restore.c, backup_index.c (the index snapshot's part: the one
 * place that knows how the storage layer keeps index snapshots).
 *
 * A backup is an export of the storage layer's own records, not an LMDB copy: LMDB's
 * compacting copy (mdb_env_copy2) takes the whole environment in a read transaction of
 * its own, so it cannot take one collection, nor be combined with anything kept outside
 * LMDB, and a restore into a running db needs records it can write under a new
 * collection id anyway. Exporting the live records is compact by itself (no free pages,
 * no old versions), and a restore writes each table in key order with MDB_APPEND, which
 * fills every page (a random-order load leaves them about half full).
 *
 * File layout, every integer little-endian:
 *   header, 32 bytes: "QVBACKUP", u32 format version (QV_BK_VERSION), u32 flags
 *     (QV_BK_F_LE: the floats in point records are little-endian), i64 created (unix
 *     seconds), u32 the writer's QV_STORAGE_FORMAT, u32 collections in the file
 *   then frames: u8 tag, u8 table, u16 key bytes, u32 value bytes, the key, the value
 *     'C' a collection starts: key = its name, value = its config JSON as stored
 *     'R' one record of the collection in table `table` (QV_BK_T_*): the key without its
 *         leading 4-byte collection id, the value as stored
 *     'S' its index snapshot (at most one, after the records): key = u64 seq (the last
 *         write the snapshot covers) and u64 n (its bytes); no value
 *     'B' the next up to QV_BK_CHUNK of those n bytes (the index's own save format)
 *     'E' the collection ends: key = u64 records, u64 live points (a cross-check)
 *   and last the trailer 'Z': value = the SHA-256 of every byte before the trailer.
 * A collection's frames are C, R..., [S B...], E; its R frames come table by table in
 * QV_BK_T order, keys ascending within a table (the order LMDB keeps them in). The log
 * records (writes after the index snapshot) come along, so a restore replays those few
 * writes on open, as reopening the original would.
 *
 * Version history: 1 -- the first.
 */
#ifndef QV_STORAGE_BACKUP_H
#define QV_STORAGE_BACKUP_H

#include "storage/sha256.h"
#include "storage/storage.h"

#define QV_BK_MAGIC "QVBACKUP"
#define QV_BK_VERSION 1u
#define QV_BK_F_LE 1u
#define QV_BK_HEADER 32u
#define QV_BK_FRAME 8u                    /* tag, table, key bytes, value bytes */
#define QV_BK_CHUNK (16u << 20)           /* index bytes per 'B' frame */
#define QV_BK_MAX_VALUE (1u << 30)        /* no stored record is larger: a bigger length is damage */

enum { QV_BK_T_STATE = 1, QV_BK_T_IDS, QV_BK_T_POINTS, QV_BK_T_PAYLOADS, QV_BK_T_FREEIDS, QV_BK_T_LOG,
       QV_BK_T_PINDEX, QV_BK_T_END };
/** The LMDB table (DBI_*) of a file table number (QV_BK_T_*). */
int qv_bk_table_dbi(int table);

/* ---- writing (backup_io.c) ------------------------------------------------------------ */
typedef struct {
    int fd;
    const char *path;              /* the temporary file, for messages */
    uint8_t *buf;
    size_t len;                    /* bytes buffered, not yet written */
    uint64_t size;                 /* bytes in the file so far, buffered ones included */
    uint64_t written;              /* bytes handed to the kernel */
    uint64_t flushing;             /* writeback started up to here; done up to the step before */
    qv_sha256 *sha;                /* every byte so far */
    int failed;                    /* sticky: the first error code */
} qv_bk_writer;

int  qv_bk_writer_init(qv_bk_writer *w, int fd, const char *path);
void qv_bk_writer_release(qv_bk_writer *w);
/** Append the 32-byte header. */
int  qv_bk_put_header(qv_bk_writer *w, int64_t created, uint32_t ncoll);
/** Append one frame (the value may be split in two parts: v1 then v2). */
int  qv_bk_put_frame(qv_bk_writer *w, int tag, int table, const void *key, size_t klen, const void *v1,
                     size_t l1, const void *v2, size_t l2);
/** Append the trailer, write everything out and fsync; *whole gets the SHA-256 of the
 *  whole file. The fd stays open (the caller closes it). */
int  qv_bk_finish(qv_bk_writer *w, uint8_t whole[QV_SHA256_BYTES]);

/* ---- reading (backup_io.c) ------------------------------------------------------------ */
typedef struct {
    int tag, table;
    uint8_t *key;                  /* klen bytes (+ a NUL), in the reader's buffer */
    size_t klen;
    uint8_t *val;                  /* vlen bytes, in the reader's buffer */
    size_t vlen;
    uint64_t off;                  /* offset of the frame in the file */
} qv_bk_frame;

typedef struct {
    int fd;
    const char *path;
    uint64_t size;                 /* of the file */
    uint64_t off;                  /* next byte to read */
    uint8_t *buf;                  /* read-ahead buffer */
    size_t blen, bpos;
    uint64_t boff;                 /* file offset of buf[0] */
    uint8_t *fbuf;                 /* the current frame's key and value */
    size_t fcap;
    qv_sha256 *sha;                /* when verifying: every byte read so far */
} qv_bk_reader;

/** A reader over fd (the file path for messages), hashing what it reads when hash. */
int  qv_bk_reader_init(qv_bk_reader *r, int fd, const char *path, int hash);
void qv_bk_reader_release(qv_bk_reader *r);
/** Go to offset off (no hashing may be on). */
void qv_bk_seek(qv_bk_reader *r, uint64_t off);
/** Read the header. */
int  qv_bk_get_header(qv_bk_reader *r, int64_t *created, uint32_t *ncoll);
/** Read the next frame (its key and value stay valid until the next call). QV_ECORRUPT
 *  naming the offset for a frame that is cut short or impossible. */
int  qv_bk_get_frame(qv_bk_reader *r, qv_bk_frame *f);

/** What the verify pass learnt about one collection of the file. */
typedef struct {
    char name[72];
    uint64_t off;                  /* its 'C' frame */
    uint64_t records, points;
    int has_index;
} qv_bk_entry;

/** Verify the whole file open at fd: the structure of every frame and the trailer's
 *  SHA-256 (and the whole file's against expect, when not NULL). *entries (qv_free) gets
 *  its collections. QV_ECORRUPT with a message that says what is wrong. */
int  qv_bk_verify_fd(int fd, const char *path, const uint8_t *expect, qv_backup_info *info,
                     qv_bk_entry **entries, size_t *n);

/* ---- the index snapshot's part (backup_index.c) -------------------------------------- */
/** Append the 'S' and 'B' frames of an index snapshot: n bytes of the index's save
 *  format holding every write up to seq. */
int  qv_bk_put_index(qv_bk_writer *w, uint64_t seq, const void *bytes, uint64_t n);
/** Append the 'S' and 'B' frames of collection cid's index snapshot as read txn txn sees
 *  it (nothing when it has none, or an unusable one: the restored collection is then
 *  built from its points, as the original would be). */
int  qv_bk_index_dump(qv_db *db, MDB_txn *txn, uint32_t cid, qv_bk_writer *w);
/** Read an index snapshot ('S' and its 'B' frames) from r, positioned at the 'S' frame,
 *  and store it as the index snapshot of collection cid in write txn txn (the file was
 *  verified). Retry-safe: run it again from the same position. */
int  qv_bk_index_install(qv_db *db, MDB_txn *txn, uint32_t cid, qv_bk_reader *r);

#endif

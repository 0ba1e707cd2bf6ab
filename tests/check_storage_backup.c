/*
 * tests/check_storage_backup.c -- backups (qv_backup_create / _verify / _restore; issue 20).
 *
 * "backup" suite:
 *   - round_trip: an hnsw collection with payloads, a payload index and deletes, never
 *     checkpointed, backed up (its in-memory index serialized into the file, nothing
 *     written to the db) and restored into a fresh db: every point, payload and search is
 *     the same, and the index came from the file (no graph build: rebuilds == 0);
 *   - replay: a few writes after the last index snapshot (under 1%) come along as log
 *     records and are replayed on open;
 *   - whole_store: every collection of a db in one file; restore of one of them, renamed;
 *   - replace: an existing name is QV_EEXIST unless replace is asked; replacing retires
 *     the old handles (QV_ENOTFOUND, as after a drop);
 *   - pinned_snapshot: the stored snapshot file a backup opened stays readable after a
 *     checkpoint replaces it; a replacing restore removes the old collection's files;
 *   - max_collections: a restore that adds names counts against max_collections as
 *     creates do (QV_EFULL, nothing restored); replacing one adds none;
 *   - integrity: a flipped byte anywhere, a truncated file, a wrong SHA-256: each refused
 *     with QV_ECORRUPT and the collection that a replacing restore would have overwritten
 *     is unchanged; the reported SHA-256 is the one sha256sum prints;
 *   - consistency: a backup taken while a thread upserts batches holds every batch
 *     acknowledged before it began, and whole batches only;
 *   - disk_full: a file size limit (RLIMIT_FSIZE) while backing up gives QV_EFULL and
 *     leaves no file; while restoring, QV_EFULL and the db as it was;
 *   - sweep: data staged by a restore that never committed is removed at the next open;
 *   - unloadable: a file whose SHA-256 is sound but whose records do not add up is
 *     refused before anything is named (the staged collection does not load).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>

#include "storage/backup.h"
#include "storage/storage.h"
#include "tests/test_util.h"

#define DIM 16

static char *tmp;

static void setup(void) { tmp = make_tmpdir("qv-backup"); }
static void teardown(void)
{
    rm_rf(tmp);
    free(tmp);
    tmp = NULL;
}

static char *path_in(const char *name)
{
    char *p = malloc(strlen(tmp) + strlen(name) + 2);
    ck_assert_ptr_nonnull(p);
    sprintf(p, "%s/%s", tmp, name);
    return p;
}

static qv_db *open_db(const char *name)
{
    char *dir = path_in(name);
    qv_db *db = NULL;
    QV_CK(qv_db_open(dir, NULL, &db));
    free(dir);
    return db;
}

static void point_vec(float *v, uint64_t id, uint64_t version)
{
    fill_random(v, DIM, id * 7919 + version * 104729 + 1);
}

/* ids [lo, hi) with version ver and payload {"n":id,"lang":"en|de|fr","v":ver}. */
static void upsert_range(qv_coll *c, uint64_t lo, uint64_t hi, uint64_t ver)
{
    size_t n = hi - lo;
    uint64_t *ids = malloc(n * sizeof *ids);
    float *vecs = malloc(n * DIM * sizeof *vecs);
    char (*pl)[64] = malloc(n * sizeof *pl);
    const char **plp = malloc(n * sizeof *plp);
    static const char *const langs[] = {"en", "de", "fr"};
    ck_assert(ids && vecs && pl && plp);
    for (size_t i = 0; i < n; i++) {
        ids[i] = lo + i;
        point_vec(vecs + i * DIM, ids[i], ver);
        snprintf(pl[i], sizeof pl[i], "{\"n\":%llu,\"lang\":\"%s\",\"v\":%llu}", (unsigned long long)ids[i],
                 langs[ids[i] % 3], (unsigned long long)ver);
        plp[i] = pl[i];
    }
    QV_CK(qv_upsert(c, n, ids, vecs, plp));
    free(ids);
    free(vecs);
    free(pl);
    free(plp);
}

static qv_coll *make_coll(qv_db *db, const char *name, qv_index_kind kind)
{
    qv_collection_config cfg;
    qv_coll *c = NULL;
    memset(&cfg, 0, sizeof cfg);
    qv_index_params_init(&cfg.index, kind, DIM, QV_METRIC_L2);
    cfg.index.threads = 1;
    cfg.index.m = 8;
    cfg.index.ef_construction = 64;
    cfg.payload_index = "{\"lang\":\"keyword\"}";
    QV_CK(qv_collection_create(db, name, &cfg, &c));
    return c;
}

/* Every point of a (ids < maxid) has the same vector and payload in b. */
static void same_points(qv_coll *a, qv_coll *b, uint64_t maxid)
{
    qv_collection_info ia, ib;
    QV_CK(qv_collection_get_info(a, &ia));
    QV_CK(qv_collection_get_info(b, &ib));
    ck_assert_uint_eq(ia.count, ib.count);
    size_t seen = 0;
    for (uint64_t id = 0; id < maxid; id++) {
        float va[DIM], vb[DIM];
        char *pa = NULL, *pb = NULL;
        int ra = qv_get(a, id, va, &pa), rb = qv_get(b, id, vb, &pb);
        ck_assert_int_eq(ra, rb);
        if (ra == QV_OK) {
            seen++;
            ck_assert_mem_eq(va, vb, sizeof va);
            ck_assert_msg((!pa && !pb) || (pa && pb && !strcmp(pa, pb)), "payload of %llu: %s vs %s",
                          (unsigned long long)id, pa ? pa : "null", pb ? pb : "null");
        }
        qv_free(pa);
        qv_free(pb);
    }
    ck_assert_uint_eq(seen, ia.count);
}

/* The same searches (approximate, exact, filtered) give the same hits in a and b. */
static void same_searches(qv_coll *a, qv_coll *b, int identical_graph)
{
    qv_filter *f = NULL;
    QV_CK(qv_filter_parse("{\"must\":[{\"key\":\"lang\",\"match\":\"de\"}]}", &f));
    for (int q = 0; q < 20; q++) {
        float query[DIM];
        fill_random(query, DIM, 5000 + (uint64_t)q);
        for (int mode = 0; mode < 3; mode++) {
            qv_search_params sp;
            qv_hit ha[10], hb[10];
            size_t na = 0, nb = 0;
            qv_search_params_init(&sp, 10);
            sp.ef = 64;
            sp.exact = mode == 1;
            sp.filter = mode == 2 ? f : NULL;
            QV_CK(qv_search(a, query, &sp, ha, &na));
            QV_CK(qv_search(b, query, &sp, hb, &nb));
            ck_assert_uint_eq(na, nb);
            if (mode == 0 && !identical_graph) continue;
            for (size_t i = 0; i < na; i++) {
                ck_assert_msg(ha[i].id == hb[i].id && ha[i].score == hb[i].score,
                              "query %d mode %d hit %zu: %llu/%g vs %llu/%g", q, mode, i,
                              (unsigned long long)ha[i].id, ha[i].score, (unsigned long long)hb[i].id, hb[i].score);
            }
        }
    }
    qv_filter_free(f);
}

START_TEST(test_round_trip)
{
    qv_db *db = open_db("src"), *db2 = NULL;
    qv_coll *c = make_coll(db, "docs", QV_INDEX_HNSW), *r = NULL;
    upsert_range(c, 0, 1500, 1);
    upsert_range(c, 100, 200, 2);
    uint64_t del[] = {5, 6, 7, 300, 1499};
    size_t nd = 0;
    QV_CK(qv_delete(c, 5, del, &nd));
    ck_assert_uint_eq(nd, 5);
    char *file = path_in("docs.snapshot");
    qv_backup_info bi, vi, ri;
    QV_CK(qv_backup_create(db, "docs", file, &bi));
    ck_assert_uint_eq(bi.collections, 1);
    ck_assert_uint_eq(bi.points, 1495);
    ck_assert_uint_eq(strlen(bi.sha256), 64);
    struct stat st;
    ck_assert_int_eq(stat(file, &st), 0);
    ck_assert_uint_eq((uint64_t)st.st_size, bi.bytes);
    /* the stored index snapshot was stale (there was none): the backup serialized the
     * in-memory index into the file, and wrote nothing to the database */
    qv_storage_stats ss;
    qv_storage_get_stats(c, &ss);
    ck_assert_uint_eq(ss.checkpoints, 0);

    QV_CK(qv_backup_verify(file, bi.sha256, &vi));
    ck_assert_str_eq(vi.sha256, bi.sha256);
    ck_assert_uint_eq(vi.points, 1495);

    db2 = open_db("dst");
    QV_CK(qv_backup_restore(db2, file, NULL, &ri));
    ck_assert_uint_eq(ri.collections, 1);
    ck_assert_uint_eq(ri.points, 1495);
    ck_assert_uint_eq(ri.index_loaded, 1);
    ck_assert_str_eq(ri.sha256, bi.sha256);
    QV_CK(qv_collection_open(db2, "docs", &r));
    qv_storage_get_stats(r, &ss);
    ck_assert_uint_eq(ss.snapshot_loads, 1);
    ck_assert_uint_eq(ss.replayed_writes, 0);      /* the serialized index held every write */
    ck_assert_uint_eq(ss.rebuilds, 0);
    ck_assert_uint_eq(ss.damaged_snapshots, 0);
    same_points(c, r, 1600);
    same_searches(c, r, 1);
    /* the payload index came along: a filter on lang is answered from it */
    qv_collection_info info;
    QV_CK(qv_collection_get_info(r, &info));
    ck_assert_ptr_nonnull(info.config.payload_index);
    ck_assert_ptr_nonnull(strstr(info.config.payload_index, "lang"));
    qv_search_stats sst;
    qv_search_params sp;
    qv_filter *f = NULL;
    qv_hit hits[5];
    size_t nh = 0;
    float q[DIM];
    fill_random(q, DIM, 77);
    QV_CK(qv_filter_parse("{\"must\":[{\"key\":\"lang\",\"match\":\"fr\"}]}", &f));
    qv_search_params_init(&sp, 5);
    sp.filter = f;
    QV_CK(qv_search_ex(r, 1, q, &sp, hits, &nh, &sst));
    ck_assert_uint_eq(sst.unindexed, 0);
    qv_filter_free(f);
    /* and the restored collection takes writes, and survives a reopen */
    upsert_range(r, 2000, 2010, 1);
    qv_collection_close(r);
    QV_CK(qv_db_close(db2));
    db2 = open_db("dst");
    QV_CK(qv_collection_open(db2, "docs", &r));
    QV_CK(qv_collection_get_info(r, &info));
    ck_assert_uint_eq(info.count, 1505);
    qv_collection_close(r);
    QV_CK(qv_db_close(db2));
    qv_collection_close(c);
    QV_CK(qv_db_close(db));
    free(file);
}
END_TEST

/* Writes after the last index snapshot, fewer than the staleness bound: no checkpoint,
 * the log comes along and the restored collection replays it. */
START_TEST(test_replay)
{
    qv_db *db = open_db("src"), *db2 = open_db("dst");
    qv_coll *c = make_coll(db, "docs", QV_INDEX_HNSW), *r = NULL;
    upsert_range(c, 0, 1000, 1);
    QV_CK(qv_checkpoint(c));
    upsert_range(c, 1000, 1050, 1);
    upsert_range(c, 10, 20, 3);
    uint64_t del[] = {500};
    QV_CK(qv_delete(c, 1, del, NULL));
    char *file = path_in("b.snapshot");
    QV_CK(qv_backup_create(db, NULL, file, NULL));
    qv_storage_stats ss;
    qv_storage_get_stats(c, &ss);
    ck_assert_uint_eq(ss.checkpoints, 1);      /* 61 points since: below 256, no checkpoint */
    QV_CK(qv_backup_restore(db2, file, NULL, NULL));
    QV_CK(qv_collection_open(db2, "docs", &r));
    qv_storage_get_stats(r, &ss);
    ck_assert_uint_eq(ss.snapshot_loads, 1);
    ck_assert_uint_eq(ss.replayed_writes, 3);
    ck_assert_uint_eq(ss.rebuilds, 0);
    same_points(c, r, 1100);
    same_searches(c, r, 0);
    qv_collection_close(r);
    qv_collection_close(c);
    QV_CK(qv_db_close(db2));
    QV_CK(qv_db_close(db));
    free(file);
}
END_TEST

START_TEST(test_whole_store)
{
    qv_db *db = open_db("src"), *db2 = open_db("dst");
    qv_coll *a = make_coll(db, "a", QV_INDEX_HNSW), *b = make_coll(db, "b", QV_INDEX_FLAT), *e = NULL, *r = NULL;
    upsert_range(a, 0, 400, 1);
    upsert_range(b, 0, 50, 1);
    make_coll(db, "empty", QV_INDEX_HNSW);
    QV_CK(qv_collection_open(db, "empty", &e));
    char *file = path_in("full.snapshot");
    qv_backup_info bi, ri;
    QV_CK(qv_backup_create(db, NULL, file, &bi));
    ck_assert_uint_eq(bi.collections, 3);
    ck_assert_uint_eq(bi.points, 450);
    QV_CK(qv_backup_restore(db2, file, NULL, &ri));
    ck_assert_uint_eq(ri.collections, 3);
    char **names = NULL;
    size_t n = 0;
    QV_CK(qv_collection_list(db2, &names, &n));
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(names[0], "a");
    ck_assert_str_eq(names[1], "b");
    ck_assert_str_eq(names[2], "empty");
    qv_free_strings(names, n);
    QV_CK(qv_collection_open(db2, "a", &r));
    same_points(a, r, 500);
    qv_collection_close(r);
    QV_CK(qv_collection_open(db2, "b", &r));
    same_points(b, r, 100);
    same_searches(b, r, 1);
    qv_collection_close(r);
    QV_CK(qv_collection_open(db2, "empty", &r));
    same_points(e, r, 10);
    qv_collection_close(r);
    /* one of them, under another name */
    qv_restore_options o;
    qv_restore_options_init(&o);
    o.collection = "b";
    o.rename = "b2";
    QV_CK(qv_backup_restore(db2, file, &o, &ri));
    ck_assert_uint_eq(ri.collections, 1);
    ck_assert_uint_eq(ri.points, 50);
    QV_CK(qv_collection_open(db2, "b2", &r));
    same_points(b, r, 100);
    qv_collection_close(r);
    o.collection = "nope";
    QV_CK_FAIL(qv_backup_restore(db2, file, &o, NULL), QV_ENOTFOUND);
    o.collection = NULL;                        /* rename needs one collection */
    QV_CK_FAIL(qv_backup_restore(db2, file, &o, NULL), QV_EINVAL);
    QV_CK_FAIL(qv_backup_create(db, "nope", file, NULL), QV_ENOTFOUND);
    QV_CK_FAIL(qv_backup_create(db, "bad/name", file, NULL), QV_EINVAL);
    qv_collection_close(e);
    qv_collection_close(a);
    qv_collection_close(b);
    QV_CK(qv_db_close(db2));
    QV_CK(qv_db_close(db));
    free(file);
}
END_TEST

/* Snapshot files (issue 16): the file a backup's read txn names is opened while no
 * checkpoint can run (backup_index.c); a checkpoint that then replaces and unlinks it
 * does not take it from the backup, which copies it whole (its checksum checked). */
START_TEST(test_pinned_snapshot)
{
    qv_db *db = open_db("src");
    qv_coll *c = make_coll(db, "docs", QV_INDEX_HNSW);
    upsert_range(c, 0, 500, 1);
    QV_CK(qv_checkpoint(c));
    MDB_txn *txn = NULL;
    qv_bk_snapfile s;
    char old[4096];
    QV_CK(qv_lmdb_begin(db, 1, &txn));
    QV_CK(qv_bk_index_pin(db, txn, c->cid, &s));
    qv_lmdb_abort(db, txn);
    ck_assert_int_ge(s.fd, 0);
    QV_CK(qv_snapshot_path(db, c->cid, s.seq, 0, old, sizeof old));
    upsert_range(c, 500, 600, 1);
    QV_CK(qv_checkpoint(c));
    ck_assert_msg(access(old, F_OK) != 0, "%s is still there after a newer checkpoint", old);
    char *file = path_in("index.part");
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    qv_bk_writer w;
    uint8_t whole[32];
    ck_assert_int_ge(fd, 0);
    QV_CK(qv_bk_writer_init(&w, fd, file));
    QV_CK(qv_bk_index_dump(&s, &w));
    QV_CK(qv_bk_finish(&w, whole));
    qv_bk_writer_release(&w);
    close(fd);
    struct stat st;
    ck_assert_int_eq(stat(file, &st), 0);
    ck_assert_uint_gt((uint64_t)st.st_size, s.size);
    qv_bk_index_unpin(&s);
    qv_collection_close(c);
    QV_CK(qv_db_close(db));
    free(file);
}
END_TEST

/* The files in <db>/snapshots not of collection id cid. */
static size_t foreign_snapshot_files(const char *db, uint32_t cid)
{
    char *dir = path_in(db), path[4096], prefix[32];
    size_t n = 0;
    snprintf(path, sizeof path, "%s/snapshots", dir);
    snprintf(prefix, sizeof prefix, "%u-", (unsigned)cid);
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += e->d_name[0] != '.' && strncmp(e->d_name, prefix, strlen(prefix)) != 0;
    if (d) closedir(d);
    free(dir);
    return n;
}

START_TEST(test_replace)
{
    qv_db *db = open_db("src");
    qv_coll *c = make_coll(db, "docs", QV_INDEX_HNSW), *r = NULL;
    upsert_range(c, 0, 300, 1);
    char *file = path_in("docs.snapshot");
    QV_CK(qv_backup_create(db, "docs", file, NULL));
    upsert_range(c, 300, 400, 1);                 /* after the backup */
    QV_CK(qv_checkpoint(c));                      /* its snapshot files go with it below */
    QV_CK_FAIL(qv_backup_restore(db, file, NULL, NULL), QV_EEXIST);
    qv_collection_info info;
    QV_CK(qv_collection_get_info(c, &info));
    ck_assert_uint_eq(info.count, 400);
    qv_restore_options o;
    qv_restore_options_init(&o);
    o.flags = QV_RESTORE_REPLACE;
    QV_CK(qv_backup_restore(db, file, &o, NULL));
    /* the old handle is retired, as after a drop */
    QV_CK_FAIL(qv_collection_get_info(c, &info), QV_ENOTFOUND);
    qv_collection_close(c);
    QV_CK(qv_collection_open(db, "docs", &r));
    QV_CK(qv_collection_get_info(r, &info));
    ck_assert_uint_eq(info.count, 300);
    QV_CK_FAIL(qv_get(r, 350, NULL, NULL), QV_ENOTFOUND);
    ck_assert_uint_eq(foreign_snapshot_files("src", r->cid), 0);
    qv_collection_close(r);
    /* the replaced collection's records are gone: a reopen sees 300, and a backup of the
     * db is as small as before */
    QV_CK(qv_db_close(db));
    db = open_db("src");
    QV_CK(qv_collection_open(db, "docs", &r));
    QV_CK(qv_collection_get_info(r, &info));
    ck_assert_uint_eq(info.count, 300);
    qv_collection_close(r);
    char *file2 = path_in("all.snapshot");
    qv_backup_info b1, b2;
    QV_CK(qv_backup_verify(file, NULL, &b1));
    QV_CK(qv_backup_create(db, NULL, file2, &b2));
    ck_assert_uint_eq(b2.points, b1.points);
    QV_CK(qv_db_close(db));
    free(file);
    free(file2);
}
END_TEST

START_TEST(test_max_collections)
{
    char *dir = path_in("small");
    qv_db_options dbo;
    qv_db *db = NULL;
    qv_db_options_init(&dbo);
    dbo.max_collections = 2;
    QV_CK(qv_db_open(dir, &dbo, &db));
    qv_collection_close(make_coll(db, "a", QV_INDEX_FLAT));
    qv_collection_close(make_coll(db, "b", QV_INDEX_FLAT));
    char *file = path_in("a.snapshot");
    QV_CK(qv_backup_create(db, "a", file, NULL));
    qv_restore_options o;
    qv_restore_options_init(&o);
    o.rename = "c";
    QV_CK_FAIL(qv_backup_restore(db, file, &o, NULL), QV_EFULL);
    ck_assert_ptr_nonnull(strstr(qv_last_error(), "max_collections = 2"));
    char **names = NULL;
    size_t n = 0;
    QV_CK(qv_collection_list(db, &names, &n));
    ck_assert_uint_eq(n, 2);
    qv_free_strings(names, n);
    o.rename = "b";
    o.flags = QV_RESTORE_REPLACE;
    QV_CK(qv_backup_restore(db, file, &o, NULL));
    QV_CK(qv_db_close(db));
    free(file);
    free(dir);
}
END_TEST

static void copy_file(const char *from, const char *to, long truncate_at, long flip_at)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    ck_assert(in && out);
    long i = 0;
    int ch;
    while ((ch = fgetc(in)) != EOF && (truncate_at < 0 || i < truncate_at)) {
        if (i == flip_at) ch ^= 0x10;
        fputc(ch, out);
        i++;
    }
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
}

/* sha256sum's answer, to check ours against an independent one. */
static void sha256sum(const char *path, char out[65])
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(fscanf(p, "%64s", out), 1);
    pclose(p);
}

START_TEST(test_integrity)
{
    qv_db *db = open_db("src");
    qv_coll *c = make_coll(db, "docs", QV_INDEX_HNSW), *r = NULL;
    upsert_range(c, 0, 600, 1);
    char *file = path_in("docs.snapshot"), *bad = path_in("bad.snapshot");
    qv_backup_info bi;
    QV_CK(qv_backup_create(db, "docs", file, &bi));
    char want[65];
    sha256sum(file, want);
    ck_assert_str_eq(bi.sha256, want);
    /* the collection a replacing restore would overwrite: it must stay as it is */
    qv_coll *keep = make_coll(db, "keep", QV_INDEX_FLAT);
    upsert_range(keep, 0, 7, 1);
    qv_restore_options o;
    qv_restore_options_init(&o);
    o.rename = "keep";
    o.flags = QV_RESTORE_REPLACE;
    long size = (long)bi.bytes;
    long flips[] = {0, 9, 12, 20, 28, 33, 40, 100, size / 3, size / 2, size - 100, size - 40, size - 33, size - 1};
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        copy_file(file, bad, -1, flips[i]);
        QV_CK_FAIL(qv_backup_verify(bad, NULL, NULL), QV_ECORRUPT);
        QV_CK_FAIL(qv_backup_restore(db, bad, &o, NULL), QV_ECORRUPT);
    }
    long cuts[] = {0, 1, 31, 32, 39, 1000, size / 2, size - 41, size - 40, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        copy_file(file, bad, cuts[i], -1);
        QV_CK_FAIL(qv_backup_restore(db, bad, &o, NULL), QV_ECORRUPT);
    }
    copy_file(file, bad, size - 1, -1);
    ck_assert_int_eq(qv_backup_verify(bad, NULL, NULL), QV_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(qv_last_error(), "truncated"));
    copy_file(file, bad, -1, size / 2);
    ck_assert_int_eq(qv_backup_verify(bad, NULL, NULL), QV_ECORRUPT);
    ck_assert_msg(strstr(qv_last_error(), "damaged"), "%s", qv_last_error());
    /* a sound file with another checksum than the caller expects */
    char other[65];
    memcpy(other, bi.sha256, sizeof other);
    other[10] = other[10] == '0' ? '1' : '0';
    o.sha256 = other;
    QV_CK_FAIL(qv_backup_restore(db, file, &o, NULL), QV_ECORRUPT);
    ck_assert_msg(strstr(qv_last_error(), "SHA-256"), "%s", qv_last_error());
    QV_CK_FAIL(qv_backup_verify(file, other, NULL), QV_ECORRUPT);
    o.sha256 = "xyz";
    QV_CK_FAIL(qv_backup_restore(db, file, &o, NULL), QV_EINVAL);
    QV_CK_FAIL(qv_backup_restore(db, bad + strlen(bad), &o, NULL), QV_EINVAL);
    char *none = path_in("none.snapshot");
    QV_CK_FAIL(qv_backup_verify(none, NULL, NULL), QV_ENOTFOUND);
    /* nothing changed */
    qv_collection_info info;
    QV_CK(qv_collection_get_info(keep, &info));
    ck_assert_uint_eq(info.count, 7);
    QV_CK(qv_collection_open(db, "keep", &r));
    ck_assert_ptr_eq(r, keep);
    qv_collection_close(r);
    /* with the right checksum (either case), it goes through */
    for (char *p = want; *p; p++)
        if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 'a' + 'A');
    o.sha256 = want;
    QV_CK(qv_backup_restore(db, file, &o, NULL));
    QV_CK(qv_collection_open(db, "keep", &r));
    QV_CK(qv_collection_get_info(r, &info));
    ck_assert_uint_eq(info.count, 600);
    qv_collection_close(r);
    qv_collection_close(keep);
    qv_collection_close(c);
    QV_CK(qv_db_close(db));
    free(file);
    free(bad);
    free(none);
}
END_TEST

/* ---- consistency under a stream of upserts ------------------------------------------- */

#define BATCH 10
typedef struct {
    qv_coll *c;
    atomic_long acked;             /* batches acknowledged (0..acked-1) */
    atomic_int stop;
} writer_arg;

static void *writer(void *arg)
{
    writer_arg *w = arg;
    for (uint64_t b = 0; !atomic_load(&w->stop); b++) {
        uint64_t ids[BATCH];
        float vecs[BATCH * DIM];
        char pl[BATCH][32];
        const char *plp[BATCH];
        for (int j = 0; j < BATCH; j++) {
            ids[j] = b * BATCH + (uint64_t)j;
            point_vec(vecs + j * DIM, ids[j], 1);
            snprintf(pl[j], sizeof pl[j], "{\"b\":%llu}", (unsigned long long)b);
            plp[j] = pl[j];
        }
        if (qv_upsert(w->c, BATCH, ids, vecs, plp) != QV_OK) break;
        atomic_store(&w->acked, (long)b + 1);
    }
    return NULL;
}

START_TEST(test_consistency)
{
    qv_db *db = open_db("src"), *db2 = open_db("dst");
    qv_coll *c = make_coll(db, "live", QV_INDEX_HNSW), *r = NULL;
    writer_arg w = {c, 0, 0};
    pthread_t th;
    char *file = path_in("live.snapshot");
    ck_assert_int_eq(pthread_create(&th, NULL, writer, &w), 0);
    while (atomic_load(&w.acked) < 60) usleep(1000);
    long before = atomic_load(&w.acked);
    QV_CK(qv_backup_create(db, "live", file, NULL));
    long after_start = atomic_load(&w.acked);
    usleep(20000);
    atomic_store(&w.stop, 1);
    pthread_join(th, NULL);
    long total = atomic_load(&w.acked);
    ck_assert_msg(total > after_start || total > before, "the writer made no progress during the backup");
    QV_CK(qv_backup_restore(db2, file, NULL, NULL));
    QV_CK(qv_collection_open(db2, "live", &r));
    qv_collection_info info;
    QV_CK(qv_collection_get_info(r, &info));
    ck_assert_msg(info.count % BATCH == 0, "a partial batch: %zu points", info.count);
    long nb = (long)(info.count / BATCH);
    ck_assert_msg(nb >= before && nb <= total, "restored %ld batches; %ld acknowledged before, %ld in all", nb, before,
                  total);
    for (long b = 0; b < total; b++)
        for (int j = 0; j < BATCH; j++) {
            float v[DIM], want[DIM];
            char *pl = NULL;
            int rc = qv_get(r, (uint64_t)b * BATCH + (uint64_t)j, v, &pl);
            if (b < nb) {
                ck_assert_msg(rc == QV_OK, "batch %ld point %d missing", b, j);
                point_vec(want, (uint64_t)b * BATCH + (uint64_t)j, 1);
                ck_assert_mem_eq(v, want, sizeof v);
                char expect[32];
                snprintf(expect, sizeof expect, "{\"b\":%ld}", b);
                ck_assert_str_eq(pl, expect);
            } else {
                ck_assert_int_eq(rc, QV_ENOTFOUND);
            }
            qv_free(pl);
        }
    /* its searches match the original's on the same points */
    uint64_t *gone = malloc((size_t)(total - nb) * BATCH * sizeof *gone + 8);
    for (long i = 0; i < (total - nb) * BATCH; i++) gone[i] = (uint64_t)(nb * BATCH + i);
    QV_CK(qv_delete(c, (size_t)(total - nb) * BATCH, gone, NULL));
    free(gone);
    same_points(c, r, (uint64_t)total * BATCH);
    same_searches(c, r, 0);
    qv_storage_stats ss;
    qv_storage_get_stats(r, &ss);
    ck_assert_uint_eq(ss.rebuilds, 0);
    qv_collection_close(r);
    qv_collection_close(c);
    QV_CK(qv_db_close(db2));
    QV_CK(qv_db_close(db));
    free(file);
}
END_TEST

/* ---- full disk ----------------------------------------------------------------------- */

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d))) n += e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."));
    closedir(d);
    return n;
}

START_TEST(test_disk_full)
{
    qv_db *db = open_db("src");
    qv_coll *c = make_coll(db, "docs", QV_INDEX_HNSW);
    upsert_range(c, 0, 800, 1);
    qv_collection_close(c);
    QV_CK(qv_db_close(db));
    char *out = path_in("out"), *file = NULL;
    ck_assert_int_eq(mkdir(out, 0755), 0);
    file = malloc(strlen(out) + 32);
    sprintf(file, "%s/docs.snapshot", out);
    /* backing up: the file would exceed the limit */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {64 << 10, 64 << 10};
        qv_db *d = NULL;
        qv_backup_info bi;
        char *s = path_in("src");
        if (qv_db_open(s, NULL, &d) != QV_OK) _exit(10);
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(11);
        int rc = qv_backup_create(d, "docs", file, &bi);
        qv_db_close(d);            /* joins the snapshot's verify thread (TSan: no thread leak) */
        _exit(rc == QV_EFULL ? 0 : 20 + (rc < 0 ? -rc : rc));
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child exit %d", WEXITSTATUS(status));
    ck_assert_int_eq(count_files(out), 0);        /* no file, no temporary file */

    /* restoring: a replacing restore that runs out of room leaves the db as it was */
    db = open_db("src");
    QV_CK(qv_backup_create(db, "docs", file, NULL));
    c = make_coll(db, "keep", QV_INDEX_FLAT);
    upsert_range(c, 0, 5, 1);
    qv_collection_close(c);
    QV_CK(qv_db_close(db));
    char *src = path_in("src"), mdb[4200];
    snprintf(mdb, sizeof mdb, "%s/data.mdb", src);
    struct stat st;
    ck_assert_int_eq(stat(mdb, &st), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        qv_db *d = NULL;
        qv_restore_options o;
        qv_restore_options_init(&o);
        o.rename = "keep";
        o.flags = QV_RESTORE_REPLACE;
        struct rlimit rl = {(rlim_t)st.st_size + (16 << 10), (rlim_t)st.st_size + (16 << 10)};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(11);
        if (qv_db_open(src, NULL, &d) != QV_OK) _exit(10);
        int rc = qv_backup_restore(d, file, &o, NULL);
        qv_db_close(d);
        /* LMDB reports the short write at the limit as EIO ("Input/output error") */
        _exit(rc == QV_EFULL || rc == QV_EIO ? 0 : 20 + (rc < 0 ? -rc : rc));
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child exit %d", WEXITSTATUS(status));
    db = open_db("src");
    QV_CK(qv_collection_open(db, "keep", &c));
    qv_collection_info info;
    QV_CK(qv_collection_get_info(c, &info));
    ck_assert_uint_eq(info.count, 5);
    qv_collection_close(c);
    /* and nothing staged is left: a backup of the whole db holds 805 points */
    qv_backup_info bi;
    char *all = path_in("all.snapshot");
    QV_CK(qv_backup_create(db, NULL, all, &bi));
    ck_assert_uint_eq(bi.points, 805);
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    size_t records = 0;
    QV_CK(qv_lmdb_begin(db, 1, &txn));
    QV_CK(qv_lmdb_cursor_open(txn, db->dbi[DBI_POINTS], &cur));
    for (int rc = qv_lmdb_seek(cur, "", 0, 0, &k, &v); rc == QV_OK; rc = qv_lmdb_next(cur, "", 0, &k, &v)) records++;
    qv_lmdb_cursor_close(cur);
    qv_lmdb_abort(db, txn);
    ck_assert_uint_eq(records, 805);
    QV_CK(qv_db_close(db));
    free(all);
    free(src);
    free(out);
    free(file);
}
END_TEST

/* ---- a restore that never committed -------------------------------------------------- */

static int put_staged(qv_db *db, MDB_txn *txn, void *arg)
{
    (void)arg;
    uint8_t mk[12] = {'r', 'e', 's', 't', 'o', 'r', 'e', ':', 0, 0, 0, 99}, key[12];
    int rc = qv_lmdb_put(txn, db->dbi[DBI_META], mk, sizeof mk, "", 0);
    for (uint64_t i = 0; rc == QV_OK && i < 10; i++) {
        qv_ckey(key, 99, i);
        rc = qv_lmdb_put(txn, db->dbi[DBI_POINTS], key, 12, "xxxxxxxx", 8);
    }
    return rc;
}

static size_t count_table(qv_db *db, int dbi)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    size_t n = 0;
    QV_CK(qv_lmdb_begin(db, 1, &txn));
    QV_CK(qv_lmdb_cursor_open(txn, db->dbi[dbi], &cur));
    for (int rc = qv_lmdb_seek(cur, "", 0, 0, &k, &v); rc == QV_OK; rc = qv_lmdb_next(cur, "", 0, &k, &v)) n++;
    qv_lmdb_cursor_close(cur);
    qv_lmdb_abort(db, txn);
    return n;
}

START_TEST(test_sweep)
{
    qv_db *db = open_db("src");
    qv_coll *c = make_coll(db, "docs", QV_INDEX_FLAT);
    upsert_range(c, 0, 3, 1);
    qv_collection_close(c);
    pthread_mutex_lock(&db->wmutex);
    QV_CK(qv_db_write(db, put_staged, NULL));
    pthread_mutex_unlock(&db->wmutex);
    ck_assert_uint_eq(count_table(db, DBI_POINTS), 13);
    QV_CK(qv_db_close(db));
    db = open_db("src");
    ck_assert_uint_eq(count_table(db, DBI_POINTS), 3);
    ck_assert_uint_eq(count_table(db, DBI_META), 2);           /* format, next_cid */
    QV_CK(qv_db_close(db));
}
END_TEST

/* A file with a sound SHA-256 whose records do not add up (one point record left out, the
 * counts and the checksum made to match) is refused before anything is named: its
 * collection does not load. Written with the library's own frame writer. */
static void drop_one_point(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    qv_bk_reader r;
    qv_bk_writer w;
    qv_bk_frame f;
    int64_t created;
    uint32_t ncoll;
    uint8_t whole[32];
    int dropped = 0;
    ck_assert(in >= 0 && out >= 0);
    QV_CK(qv_bk_reader_init(&r, in, from, 0));
    QV_CK(qv_bk_writer_init(&w, out, to));
    QV_CK(qv_bk_get_header(&r, &created, &ncoll));
    QV_CK(qv_bk_put_header(&w, created, ncoll));
    for (;;) {
        QV_CK(qv_bk_get_frame(&r, &f));
        if (f.tag == 'Z') break;
        if (f.tag == 'R' && f.table == QV_BK_T_POINTS && !dropped) {
            dropped = 1;
            continue;
        }
        for (int half = 0; f.tag == 'E' && half < 2; half++) {      /* records - 1, points - 1 */
            uint64_t v = 0;
            for (int i = 7; i >= 0; i--) v = v << 8 | f.key[8 * half + i];
            v--;
            for (int i = 0; i < 8; i++) f.key[8 * half + i] = (uint8_t)(v >> (8 * i));
        }
        QV_CK(qv_bk_put_frame(&w, f.tag, f.table, f.key, f.klen, f.val, f.vlen, NULL, 0));
    }
    QV_CK(qv_bk_finish(&w, whole));
    qv_bk_writer_release(&w);
    qv_bk_reader_release(&r);
    close(in);
    close(out);
    ck_assert(dropped);
}

START_TEST(test_unloadable)
{
    qv_db *db = open_db("src");
    qv_coll *c = make_coll(db, "docs", QV_INDEX_HNSW), *keep = make_coll(db, "keep", QV_INDEX_FLAT);
    upsert_range(c, 0, 100, 1);
    upsert_range(keep, 0, 4, 1);
    char *file = path_in("docs.snapshot"), *bad = path_in("bad.snapshot");
    QV_CK(qv_backup_create(db, "docs", file, NULL));
    drop_one_point(file, bad);
    QV_CK(qv_backup_verify(bad, NULL, NULL));          /* sound as a file */
    qv_restore_options o;
    qv_restore_options_init(&o);
    o.rename = "keep";
    o.flags = QV_RESTORE_REPLACE;
    QV_CK_FAIL(qv_backup_restore(db, bad, &o, NULL), QV_ECORRUPT);
    ck_assert_msg(strstr(qv_last_error(), "does not load"), "%s", qv_last_error());
    qv_collection_info info;
    QV_CK(qv_collection_get_info(keep, &info));
    ck_assert_uint_eq(info.count, 4);
    ck_assert_uint_eq(count_table(db, DBI_POINTS), 104);     /* nothing staged is left */
    qv_collection_close(keep);
    qv_collection_close(c);
    QV_CK(qv_db_close(db));
    free(file);
    free(bad);
}
END_TEST

/* A directory of backups (qv_backup_dir_*): two backups of one second get two names,
 * each with a sidecar that sha256sum agrees with; the list is sorted and reports them;
 * names that are paths, sidecars or hidden files are not backups; delete takes the
 * sidecar along. */
START_TEST(test_backup_dir)
{
    qv_db *db = open_db("db");
    qv_coll *c = make_coll(db, "docs", QV_INDEX_HNSW);
    upsert_range(c, 0, 50, 1);
    char *dir = path_in("snaps"), path[4096], sum[65], side[4200];
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    qv_backup_file f[2], *list = NULL;
    qv_backup_info info;
    size_t n = 9;
    QV_CK(qv_backup_dir_list(dir, "docs", &list, &n));       /* no directory yet: none */
    ck_assert_uint_eq(n, 0);
    for (int i = 0; i < 2; i++) QV_CK(qv_backup_dir_create(db, dir, "docs", &f[i], i ? NULL : &info));
    ck_assert_str_ne(f[0].name, f[1].name);
    ck_assert_str_eq(f[0].sha256, info.sha256);
    ck_assert_uint_eq(info.points, 50);
    ck_assert(strncmp(f[0].name, "docs-", 5) == 0);
    QV_CK(qv_backup_dir_path(dir, "docs", f[1].name, path, sizeof path));
    sha256sum(path, sum);
    ck_assert_str_eq(sum, f[1].sha256);
    snprintf(side, sizeof side, "cd '%s/docs' && sha256sum -c --status '%s.sha256'", dir, f[1].name);
    ck_assert_int_eq(system(side), 0);
    QV_CK(qv_backup_dir_list(dir, "docs", &list, &n));
    ck_assert_uint_eq(n, 2);
    ck_assert_int_lt(strcmp(list[0].name, list[1].name), 0);
    ck_assert_str_eq(list[0].sha256, strcmp(f[0].name, f[1].name) < 0 ? f[0].sha256 : f[1].sha256);
    ck_assert_uint_eq(list[0].size, f[0].size);
    qv_free(list);
    const char *not_names[] = {"../db/data.mdb", ".hidden.snapshot", "x.snapshot.sha256", "a/b.snapshot", ""};
    for (size_t i = 0; i < sizeof not_names / sizeof *not_names; i++)
        ck_assert_int_eq(qv_backup_dir_path(dir, "docs", not_names[i], path, sizeof path), QV_ENOTFOUND);
    ck_assert_int_eq(qv_backup_dir_path(dir, "../db", f[0].name, path, sizeof path), QV_EINVAL);
    ck_assert_int_eq(qv_backup_dir_create(db, dir, "nope", &f[0], NULL), QV_ENOTFOUND);
    QV_CK(qv_backup_dir_delete(dir, "docs", f[1].name));
    ck_assert_int_eq(qv_backup_dir_delete(dir, "docs", f[1].name), QV_ENOTFOUND);
    snprintf(side, sizeof side, "%s/docs/%s.sha256", dir, f[1].name);
    ck_assert_int_ne(access(side, F_OK), 0);
    QV_CK(qv_backup_dir_create(db, dir, NULL, &f[1], NULL));    /* every collection: the top */
    ck_assert(strncmp(f[1].name, "full-snapshot-", 14) == 0);
    QV_CK(qv_backup_dir_list(dir, NULL, &list, &n));
    ck_assert_uint_eq(n, 1);
    qv_free(list);
    QV_CK(qv_backup_dir_list(dir, "docs", &list, &n));
    ck_assert_uint_eq(n, 1);
    qv_free(list);
    qv_collection_close(c);
    QV_CK(qv_db_close(db));
    free(dir);
}
END_TEST

Suite *qv_backup_suite(void)
{
    Suite *s = suite_create("backup");
    TCase *tc = tcase_create("backup");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_replay);
    tcase_add_test(tc, test_whole_store);
    tcase_add_test(tc, test_replace);
    tcase_add_test(tc, test_pinned_snapshot);
    tcase_add_test(tc, test_max_collections);
    tcase_add_test(tc, test_integrity);
    tcase_add_test(tc, test_consistency);
    tcase_add_test(tc, test_disk_full);
    tcase_add_test(tc, test_sweep);
    tcase_add_test(tc, test_backup_dir);
    tcase_add_test(tc, test_unloadable);
    suite_add_tcase(s, tc);
    return s;
}

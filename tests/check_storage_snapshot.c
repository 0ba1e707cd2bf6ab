/*
 * tests/check_storage_snapshot.c -- snapshot files opened in place (storage/snapshot.c).
 *
 * An hnsw collection reopens from <dir>/snapshots/<cid>-<seq>.qv mapped in place, answers
 * exactly as before the restart, and is then verified whole in the background; a
 * checkpoint replaces the file and deletes the old one; a crash image (data.mdb and the
 * snapshot files, as kill -9 leaves them) replays the log written after the snapshot;
 * and a damaged snapshot file -- truncated, missing, a byte flipped deep inside (found
 * only by the background verification), or a record that names another file -- costs a
 * rebuild from the stored vectors, never a wrong answer after it or a lost point. Stray
 * files of interrupted checkpoints and of dropped collections are swept.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage.h"
#include "tests/test_util.h"

#define SDIM 12
#define SN 1500

static char *tmp;

static void setup(void) { tmp = make_tmpdir("qv-snap"); }

static void teardown(void)
{
    rm_rf(tmp);
    free(tmp);
    tmp = NULL;
}

static qv_db *open_at(const char *dir)
{
    qv_db *db = NULL;
    QV_CK(qv_db_open(dir, NULL, &db));
    return db;
}

static qv_coll *create_hnsw(qv_db *db, const char *name)
{
    qv_collection_config cfg;
    qv_coll *c = NULL;
    memset(&cfg, 0, sizeof cfg);
    qv_index_params_init(&cfg.index, QV_INDEX_HNSW, SDIM, QV_METRIC_L2);
    cfg.index.m = 8;
    cfg.index.ef_construction = 60;
    QV_CK(qv_collection_create(db, name, &cfg, &c));
    return c;
}

static void vec_of(float *v, uint64_t id, uint64_t ver) { fill_random(v, SDIM, id * 7919 + ver * 104729 + 5); }

static void upsert_range(qv_coll *c, uint64_t lo, uint64_t hi, uint64_t ver)
{
    size_t n = hi - lo;
    uint64_t *ids = malloc(n * sizeof *ids);
    float *v = malloc(n * SDIM * sizeof *v);
    ck_assert(ids && v);
    for (size_t i = 0; i < n; i++) {
        ids[i] = lo + i;
        vec_of(v + i * SDIM, ids[i], ver);
    }
    QV_CK(qv_upsert(c, n, ids, v, NULL));
    free(ids);
    free(v);
}

/* Answers of a few queries, for comparison across a restart: ids (nq*10) and counts. */
static void answers(qv_coll *c, uint64_t *ids, size_t *n)
{
    qv_search_params sp;
    qv_search_params_init(&sp, 10);
    sp.ef = 64;
    for (size_t q = 0; q < 20; q++) {
        float v[SDIM];
        qv_hit hits[10];
        vec_of(v, 100000 + q, 1);
        QV_CK(qv_search(c, v, &sp, hits, &n[q]));
        for (size_t j = 0; j < n[q]; j++) ids[q * 10 + j] = hits[j].id;
    }
}

static void same_answers(const uint64_t *a, const size_t *na, const uint64_t *b, const size_t *nb)
{
    for (size_t q = 0; q < 20; q++) {
        ck_assert_uint_eq(na[q], nb[q]);
        for (size_t j = 0; j < na[q]; j++) ck_assert_uint_eq(a[q * 10 + j], b[q * 10 + j]);
    }
}

/* Every point of [0, hi) reads back with the vector of its version (ver_of). */
static void check_points(qv_coll *c, uint64_t hi, uint64_t (*ver_of)(uint64_t))
{
    float want[SDIM], got[SDIM];
    for (uint64_t id = 0; id < hi; id++) {
        uint64_t ver = ver_of(id);
        int rc = qv_get(c, id, got, NULL);
        if (!ver) {
            ck_assert_int_eq(rc, QV_ENOTFOUND);
            continue;
        }
        ck_assert_msg(rc == QV_OK, "get %llu: %s", (unsigned long long)id, qv_last_error());
        vec_of(want, id, ver);
        ck_assert(memcmp(want, got, sizeof want) == 0);
    }
}

/* Files in dir/snapshots whose name ends in suffix ("" = all): count, last one in name. */
static size_t files_ending(const char *dir, const char *suffix, char *name, size_t len)
{
    char path[1024];
    size_t n = 0, sl = strlen(suffix);
    snprintf(path, sizeof path, "%s/snapshots", dir);
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l < sl || strcmp(e->d_name + l - sl, suffix) != 0) continue;
        n++;
        if (name) snprintf(name, len, "%s/%s", path, e->d_name);
    }
    closedir(d);
    return n;
}

/* Index snapshot files ("<cid>-<seq>.qv"); each has its id table ("....qv.ids") beside it. */
static size_t snapshot_files(const char *dir, char *name, size_t len)
{
    size_t n = files_ending(dir, ".qv", name, len);
    ck_assert_uint_eq(files_ending(dir, ".qv.ids", NULL, 0), n);
    ck_assert_uint_eq(files_ending(dir, "", NULL, 0), 2 * n);
    return n;
}

static uint64_t ver_one(uint64_t id) { return id < SN ? 1 : 0; }

START_TEST(test_reopen_in_place)
{
    char file[1400];
    uint64_t a[200], b[200];
    size_t na[20], nb[20];
    qv_storage_stats st;
    qv_db *db = open_at(tmp);
    qv_coll *c = create_hnsw(db, "h");
    upsert_range(c, 0, SN, 1);
    answers(c, a, na);
    QV_CK(qv_db_close(db));                      /* checkpoints: one file */
    ck_assert_uint_eq(snapshot_files(tmp, file, sizeof file), 1);
    ck_assert(strstr(file, ".qv") != NULL);

    db = open_at(tmp);
    QV_CK(qv_collection_open(db, "h", &c));
    qv_storage_get_stats(c, &st);
    ck_assert_uint_eq(st.snapshot_loads, 1);
    ck_assert_uint_eq(st.rebuilds, 0);
    answers(c, b, nb);                           /* served while the verification may run */
    same_answers(a, na, b, nb);
    qv_snapshot_verify_join(c);
    qv_storage_get_stats(c, &st);
    ck_assert_uint_eq(st.verified_snapshots, 1);
    ck_assert_uint_eq(st.damaged_snapshots, 0);
    check_points(c, SN + 10, ver_one);
    /* A write on the mapped index, a checkpoint: a new file replaces the old one. */
    upsert_range(c, SN, SN + 100, 1);
    QV_CK(qv_checkpoint(c));
    char file2[1400];
    ck_assert_uint_eq(snapshot_files(tmp, file2, sizeof file2), 1);
    ck_assert_str_ne(file, file2);
    answers(c, a, na);
    QV_CK(qv_db_close(db));
    db = open_at(tmp);
    QV_CK(qv_collection_open(db, "h", &c));
    answers(c, b, nb);
    same_answers(a, na, b, nb);
    QV_CK(qv_db_close(db));
}
END_TEST

/* data.mdb and the snapshot files copied while the database is open: what kill -9 leaves. */
static void crash_image(const char *src, const char *dst)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/data.mdb' '%s/' && if [ -d '%s/snapshots' ]; then cp -r '%s/snapshots' '%s/'; fi",
             dst, src, dst, src, src, dst);
    ck_assert_int_eq(system(cmd), 0);
}

static uint64_t ver_replayed(uint64_t id)
{
    if (id >= 100 && id < 120) return 0;             /* deleted after the snapshot */
    if (id < 50) return 2;                           /* replaced after the snapshot */
    return id < SN + 200 ? 1 : 0;
}

START_TEST(test_replay_after_snapshot_in_place)
{
    char img[1200];
    qv_storage_stats st;
    qv_db *db = open_at(tmp), *db2;
    qv_coll *c = create_hnsw(db, "h");
    upsert_range(c, 0, SN, 1);
    QV_CK(qv_checkpoint(c));
    upsert_range(c, SN, SN + 200, 1);
    upsert_range(c, 0, 50, 2);
    uint64_t del[20];
    for (int i = 0; i < 20; i++) del[i] = 100 + (uint64_t)i;
    QV_CK(qv_delete(c, 20, del, NULL));
    snprintf(img, sizeof img, "%s/img", tmp);
    crash_image(tmp, img);
    QV_CK(qv_db_close(db));

    db2 = open_at(img);
    QV_CK(qv_collection_open(db2, "h", &c));
    qv_storage_get_stats(c, &st);
    ck_assert_uint_eq(st.snapshot_loads, 1);
    ck_assert_uint_eq(st.replayed_writes, 3);
    ck_assert_uint_eq(st.rebuilds, 0);
    check_points(c, SN + 300, ver_replayed);
    /* Every live point is found by its own vector; no deleted one comes back. */
    qv_search_params sp;
    qv_search_params_init(&sp, 1);
    sp.ef = 64;
    size_t found = 0, live = 0;
    for (uint64_t id = 0; id < SN + 200; id += 7) {
        uint64_t ver = ver_replayed(id);
        if (!ver) continue;
        float v[SDIM];
        qv_hit h;
        size_t n;
        vec_of(v, id, ver);
        QV_CK(qv_search(c, v, &sp, &h, &n));
        ck_assert_uint_eq(n, 1);
        ck_assert(ver_replayed(h.id) != 0);
        found += h.id == id;
        live++;
    }
    ck_assert_msg(found >= live * 99 / 100, "found %zu of %zu by their own vectors", found, live);
    QV_CK(qv_db_close(db2));
}
END_TEST

/* Damage the snapshot file (how: 0 truncate, 1 delete, 2 flip a byte deep inside, 3 the
 * record names a file of another seq, 4 a flipped byte in the id table), reopen: the
 * stored points win. */
START_TEST(test_damaged_snapshot_file)
{
    int how = _i;
    char file[1400];
    uint64_t a[200], b[200];
    size_t na[20], nb[20];
    qv_storage_stats st;
    qv_db *db = open_at(tmp);
    qv_coll *c = create_hnsw(db, "h");
    upsert_range(c, 0, SN, 1);
    answers(c, a, na);
    QV_CK(qv_db_close(db));
    ck_assert_uint_eq(snapshot_files(tmp, file, sizeof file), 1);
    struct stat sb;
    ck_assert_int_eq(stat(file, &sb), 0);
    if (how == 0) {
        ck_assert_int_eq(truncate(file, sb.st_size / 2), 0);
    } else if (how == 1) {
        ck_assert_int_eq(unlink(file), 0);
    } else if (how == 2) {
        /* a byte of the first vectors (the blocks array starts on the second page) */
        FILE *f = fopen(file, "r+b");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fseek(f, 4096 + 8, SEEK_SET), 0);
        int ch = fgetc(f);
        ck_assert_int_eq(fseek(f, 4096 + 8, SEEK_SET), 0);
        fputc(ch ^ 0x40, f);
        ck_assert_int_eq(fclose(f), 0);
    } else if (how == 4) {
        char ids[1500];
        snprintf(ids, sizeof ids, "%s.ids", file);
        FILE *f = fopen(ids, "r+b");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fseek(f, 16 + 8 * 5, SEEK_SET), 0);      /* ext_of[5] */
        int ch = fgetc(f);
        ck_assert_int_eq(fseek(f, 16 + 8 * 5, SEEK_SET), 0);
        fputc(ch ^ 1, f);
        ck_assert_int_eq(fclose(f), 0);
    } else {
        char other[1500];
        snprintf(other, sizeof other, "%s", file);
        char *dash = strrchr(other, '-');
        ck_assert_ptr_nonnull(dash);
        strcpy(dash, "-999.qv");
        ck_assert_int_eq(rename(file, other), 0);
        strcat(other, ".ids");
        strcat(file, ".ids");
        ck_assert_int_eq(rename(file, other), 0);
    }
    db = open_at(tmp);
    QV_CK(qv_collection_open(db, "h", &c));
    qv_storage_get_stats(c, &st);
    if (how == 2) {
        /* Opens fine (what searches need is intact); the verification finds the damage. */
        ck_assert_uint_eq(st.snapshot_loads, 1);
        qv_snapshot_verify_join(c);
        qv_storage_get_stats(c, &st);
        ck_assert_uint_eq(st.damaged_snapshots, 1);
        ck_assert_uint_eq(st.verified_snapshots, 0);
        ck_assert(strstr(st.warning, "checksum") != NULL);
    } else {
        ck_assert_uint_eq(st.snapshot_loads, 0);
        ck_assert_uint_eq(st.damaged_snapshots, 1);
        ck_assert_uint_eq(st.rebuilds, 1);
    }
    answers(c, b, nb);                           /* how == 2: this search rebuilds first */
    qv_storage_get_stats(c, &st);
    ck_assert_uint_eq(st.rebuilds, 1);
    check_points(c, SN + 10, ver_one);
    (void)a; (void)na; (void)b; (void)nb;
    QV_CK(qv_db_close(db));                      /* a sound snapshot again */
    db = open_at(tmp);
    QV_CK(qv_collection_open(db, "h", &c));
    qv_snapshot_verify_join(c);
    qv_storage_get_stats(c, &st);
    ck_assert_uint_eq(st.snapshot_loads, 1);
    ck_assert_uint_eq(st.rebuilds, 0);
    ck_assert_uint_eq(st.damaged_snapshots, 0);
    ck_assert_uint_eq(st.verified_snapshots, 1);
    ck_assert_uint_eq(snapshot_files(tmp, NULL, 0), 1);   /* the renamed stray is gone too */
    check_points(c, SN + 10, ver_one);
    QV_CK(qv_db_close(db));
}
END_TEST

START_TEST(test_strays_swept)
{
    char file[1400], path[1400];
    qv_db *db = open_at(tmp);
    qv_coll *c = create_hnsw(db, "h");
    upsert_range(c, 0, 300, 1);
    QV_CK(qv_db_close(db));
    ck_assert_uint_eq(snapshot_files(tmp, file, sizeof file), 1);
    /* what interrupted checkpoints leave: a temp file and a file the record never named */
    char *cid_end = strrchr(file, '-');
    ck_assert_ptr_nonnull(cid_end);
    snprintf(path, sizeof path, "%.*s-12345.qv.tmp.1.0", (int)(cid_end - file), file);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    snprintf(path, sizeof path, "%.*s-777.qv", (int)(cid_end - file), file);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_uint_eq(files_ending(tmp, "", NULL, 0), 4);
    db = open_at(tmp);
    QV_CK(qv_collection_open(db, "h", &c));
    ck_assert_uint_eq(snapshot_files(tmp, NULL, 0), 1);
    /* dropping the collection removes its file */
    QV_CK(qv_collection_drop(db, "h"));
    ck_assert_uint_eq(snapshot_files(tmp, NULL, 0), 0);
    QV_CK(qv_db_close(db));
}
END_TEST

extern Suite *qv_storage_snapshot_suite(void);   /* "extern": the Makefile lists definitions only */

Suite *qv_storage_snapshot_suite(void)
{
    Suite *s = suite_create("storage_snapshot");
    TCase *tc = tcase_create("storage_snapshot");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_reopen_in_place);
    tcase_add_test(tc, test_replay_after_snapshot_in_place);
    tcase_add_loop_test(tc, test_damaged_snapshot_file, 0, 5);
    tcase_add_test(tc, test_strays_swept);
    suite_add_tcase(s, tc);
    return s;
}

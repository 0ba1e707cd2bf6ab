/*
 * tests/check_storage_lifetime.c -- collection handles owned by the library (issue 17):
 * open counts a user, close releases it, drop is safe while other threads use the
 * collection, and an old handle never reaches a collection created again under its name.
 *
 * "lifetime" suite (also run under TSan by make tsan-test, and under ASan, where a handle
 * freed too early is a use-after-free and one never freed a leak):
 *   - handles: users counted, a dropped handle answers QV_ENOTFOUND for every call and is
 *     freed at its last close, a re-created collection is a new handle;
 *   - race: worker threads open, upsert, search, get, update payloads and close while the
 *     main thread drops and re-creates the collection; one more thread keeps one old
 *     handle across all drops. Every call answers QV_OK or QV_ENOTFOUND, nothing else.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/storage.h"
#include "tests/test_util.h"

#define DIM 8

static void create(qv_db *db, qv_coll **out)
{
    qv_collection_config cfg = {0};
    qv_index_params_init(&cfg.index, QV_INDEX_HNSW, DIM, QV_METRIC_COSINE);
    cfg.index.threads = 1;
    cfg.payload_index = "{\"t\":\"integer\"}";
    QV_CK(qv_collection_create(db, "c", &cfg, out));
}

static size_t table_size(qv_db *db)
{
    pthread_mutex_lock(&db->colls_lock);
    size_t n = db->ncolls;
    pthread_mutex_unlock(&db->colls_lock);
    return n;
}

START_TEST(test_handles)
{
    char *dir = make_tmpdir("qv-life");
    qv_db *db = NULL;
    qv_coll *a = NULL, *b = NULL, *c2 = NULL;
    float v[DIM] = {1};
    const uint64_t id = 7;
    QV_CK(qv_db_open(dir, NULL, &db));
    create(db, &a);
    QV_CK(qv_upsert(a, 1, &id, v, NULL));
    QV_CK(qv_collection_open(db, "c", &b));
    ck_assert_ptr_eq(a, b);                           /* one handle per collection */
    ck_assert_uint_eq(a->users, 2);
    qv_collection_close(b);
    ck_assert_uint_eq(a->users, 1);

    /* dropped while a user holds it: every call answers QV_ENOTFOUND, memory stays */
    QV_CK(qv_collection_drop(db, "c"));
    ck_assert_uint_eq(table_size(db), 1);
    qv_search_params sp;
    qv_hit hits[2];
    size_t n = 9;
    qv_search_params_init(&sp, 2);
    QV_CK_FAIL(qv_search(a, v, &sp, hits, &n), QV_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(qv_last_error(), "collection 'c' was dropped"));
    ck_assert_uint_eq(n, 0);
    QV_CK_FAIL(qv_upsert(a, 1, &id, v, NULL), QV_ENOTFOUND);
    QV_CK_FAIL(qv_delete(a, 1, &id, NULL), QV_ENOTFOUND);
    QV_CK_FAIL(qv_get(a, id, NULL, NULL), QV_ENOTFOUND);
    QV_CK_FAIL(qv_set_payload(a, 1, &id, "{\"t\":1}"), QV_ENOTFOUND);
    QV_CK_FAIL(qv_checkpoint(a), QV_ENOTFOUND);
    QV_CK_FAIL(qv_collection_index_field(a, "x", "keyword", NULL, NULL), QV_ENOTFOUND);
    qv_collection_info info;
    QV_CK_FAIL(qv_collection_get_info(a, &info), QV_ENOTFOUND);
    QV_CK_FAIL(qv_collection_open(db, "c", &b), QV_ENOTFOUND);

    /* created again: a new collection; the old handle still answers QV_ENOTFOUND */
    create(db, &c2);
    ck_assert_ptr_ne(a, c2);
    QV_CK_FAIL(qv_get(a, id, NULL, NULL), QV_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(qv_last_error(), "was dropped"));
    QV_CK_FAIL(qv_get(c2, id, NULL, NULL), QV_ENOTFOUND);     /* empty, not the old point */
    QV_CK(qv_upsert(c2, 1, &id, v, NULL));
    ck_assert_uint_eq(table_size(db), 2);
    qv_collection_close(a);                           /* the last user: freed now */
    ck_assert_uint_eq(table_size(db), 1);

    /* dropped with no user left (create without out, open + close): freed at once */
    qv_collection_close(c2);
    QV_CK(qv_collection_open(db, "c", &b));
    ck_assert_ptr_eq(b, c2);
    qv_collection_close(b);
    qv_collection_close(b);                           /* one close too many: ignored */
    QV_CK(qv_collection_drop(db, "c"));
    ck_assert_uint_eq(table_size(db), 0);
    QV_CK_FAIL(qv_collection_drop(db, "c"), QV_ENOTFOUND);

    /* a handle left open is freed by qv_db_close (LeakSanitizer would see it otherwise) */
    create(db, &a);
    QV_CK(qv_db_close(db));
    rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- drop and re-create racing searches and writes ------------------------------------ */

typedef struct {
    qv_db *db;
    qv_coll *held;                 /* the long-lived handle (one thread), or NULL */
    int stop;                      /* atomics */
    int seed;
    int bad;                       /* first unexpected code */
    char bad_msg[256];
    size_t ok, dropped;
} worker;

/* Record rc: QV_OK and QV_ENOTFOUND are the expected answers. */
static int note(worker *w, int rc, const char *what)
{
    if (rc == QV_OK) { w->ok++; return 0; }
    if (rc == QV_ENOTFOUND) { w->dropped++; return 1; }
    if (!w->bad) {
        w->bad = rc;
        snprintf(w->bad_msg, sizeof w->bad_msg, "%s: %s: %s", what, qv_strerror(rc), qv_last_error());
    }
    return 1;
}

static void use(worker *w, qv_coll *c, uint64_t round)
{
    float v[4 * DIM], q[DIM];
    uint64_t ids[4];
    fill_random(v, 4 * DIM, round * 31 + (uint64_t)w->seed);
    fill_random(q, DIM, round * 17 + (uint64_t)w->seed);
    for (int i = 0; i < 4; i++) ids[i] = (uint64_t)w->seed * 1000 + (round % 50) * 4 + (uint64_t)i;
    char pl[32];
    snprintf(pl, sizeof pl, "{\"t\":%llu}", (unsigned long long)round);
    const char *pls[4] = {pl, pl, pl, pl};
    if (note(w, qv_upsert(c, 4, ids, v, pls), "upsert")) return;
    qv_search_params sp;
    qv_hit hits[8];
    size_t n = 0;
    qv_search_params_init(&sp, 8);
    if (note(w, qv_search(c, q, &sp, hits, &n), "search")) return;
    qv_filter *f = NULL;
    if (qv_filter_parse("{\"must\":[{\"key\":\"t\",\"range\":{\"gte\":0}}]}", &f) == QV_OK) {
        sp.filter = f;
        size_t nh[2];
        qv_hit bh[16];
        float qq[2 * DIM];
        memcpy(qq, q, sizeof q);
        memcpy(qq + DIM, v, sizeof q);
        note(w, qv_search_batch(c, 2, qq, &sp, bh, nh), "search_batch");
        qv_filter_free(f);
    }
    char *text = NULL;
    int rc = qv_get(c, ids[0], NULL, &text);
    qv_free(text);
    if (rc != QV_ENOTFOUND) note(w, rc, "get");
    rc = qv_set_payload(c, 1, ids + 1, "{\"s\":1}");
    if (rc != QV_ENOTFOUND) note(w, rc, "set_payload");
    size_t nd;
    note(w, qv_delete(c, 1, ids + 2, &nd), "delete");
}

static void *work(void *arg)
{
    worker *w = arg;
    for (uint64_t round = 0; !__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE); round++) {
        if (w->held) {                             /* the same old handle throughout */
            use(w, w->held, round);
            continue;
        }
        qv_coll *c = NULL;
        int rc = qv_collection_open(w->db, "c", &c);
        if (rc == QV_ENOTFOUND) { w->dropped++; sched_yield(); continue; }
        if (note(w, rc, "open")) continue;
        use(w, c, round);
        qv_collection_close(c);
    }
    return NULL;
}

START_TEST(test_drop_while_in_use)
{
    char *dir = make_tmpdir("qv-life");
    qv_db *db = NULL;
    qv_db_options o;
    qv_db_options_init(&o);
    o.flags = QV_DB_NOSYNC;
    QV_CK(qv_db_open(dir, &o, &db));
    qv_coll *held = NULL;
    create(db, &held);
    enum { NW = 3 };
    worker w[NW];
    pthread_t th[NW];
    memset(w, 0, sizeof w);
    for (int i = 0; i < NW; i++) {
        w[i].db = db;
        w[i].seed = i + 1;
        w[i].held = i == 0 ? held : NULL;
        ck_assert_int_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    int rounds = sanitized() ? 15 : 60;
    for (int r = 0; r < rounds; r++) {
        struct timespec ts = {0, 2000000};         /* let the workers in */
        nanosleep(&ts, NULL);
        QV_CK(qv_collection_drop(db, "c"));
        if (r % 4 == 3) nanosleep(&ts, NULL);      /* sometimes a gap with no collection */
        create(db, NULL);
    }
    for (int i = 0; i < NW; i++) __atomic_store_n(&w[i].stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < NW; i++) pthread_join(th[i], NULL);
    size_t ok = 0, dropped = 0;
    for (int i = 0; i < NW; i++) {
        ck_assert_msg(w[i].bad == 0, "worker %d: %s", i, w[i].bad_msg);
        ok += w[i].ok;
        dropped += w[i].dropped;
    }
    if (getenv("QV_LIFE_VERBOSE")) fprintf(stderr, "lifetime: %zu calls ok, %zu answered dropped\n", ok, dropped);
    ck_assert_msg(ok > 0 && dropped > 0, "the race did not happen (%zu ok, %zu dropped)", ok, dropped);
    ck_assert_uint_gt(w[0].dropped, 0);             /* the old handle saw its drop */
    qv_collection_close(held);
    ck_assert_uint_eq(table_size(db), 1);           /* only the live one is left */
    QV_CK(qv_db_close(db));
    rm_rf(dir);
    free(dir);
}
END_TEST

Suite *qv_lifetime_suite(void)
{
    Suite *s = suite_create("lifetime");
    TCase *tc = tcase_create("handles");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_handles);
    tcase_add_test(tc, test_drop_while_in_use);
    suite_add_tcase(s, tc);
    return s;
}

/*
 * tests/check_payload_update.c -- payload-only updates (qv_update_payload and shorthands).
 *
 * "payload" suite (also run under TSan by make tsan-test):
 *   - semantics: set merges, overwrite replaces, delete removes keys, clear empties; keep;
 *     a missing id fails the call with nothing changed, or is skipped with the flag; the
 *     vector is untouched; the payload index follows; a reopen from a snapshot plus a log
 *     with payload writes needs no rebuild;
 *   - issue 25 bug 1: a payload update racing a delete never brings the point back;
 *   - issue 25 bug 2: two threads setting disjoint keys on one point lose none.
 * The two races failed with the read-then-upsert the Qdrant handler used before (qv_get
 * then qv_upsert with the vector read back): shown by temporarily building qv_set_payload
 * that way (see the report of fix25).
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "storage/storage.h"
#include "tests/test_util.h"

typedef struct {
    char *dir;
    qv_db *db;
    qv_coll *c;
} fixture;

static void open_fixture(fixture *f, const char *payload_index)
{
    qv_collection_config cfg = {0};
    f->dir = make_tmpdir("qv-payload");
    qv_index_params_init(&cfg.index, QV_INDEX_HNSW, 4, QV_METRIC_L2);
    cfg.payload_index = payload_index;
    QV_CK(qv_db_open(f->dir, NULL, &f->db));
    QV_CK(qv_collection_create(f->db, "c", &cfg, &f->c));
}

static void close_fixture(fixture *f)
{
    QV_CK(qv_db_close(f->db));
    rm_rf(f->dir);
    free(f->dir);
}

/* Upsert ids[0..n) with vectors from their id and the given payloads (or none). */
static void put_points(qv_coll *c, size_t n, const uint64_t *ids, const char *const *payloads)
{
    float *v = malloc(n * 4 * sizeof *v);
    ck_assert_ptr_nonnull(v);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < 4; j++) v[i * 4 + j] = (float)(ids[i] % 97) + (float)j * 0.25f;
    QV_CK(qv_upsert(c, n, ids, v, payloads));
    free(v);
}

/* The payload of id, as a parsed object (NULL when it has none). */
static json_t *payload_of(qv_coll *c, uint64_t id)
{
    char *text = NULL;
    QV_CK(qv_get(c, id, NULL, &text));
    json_t *o = text ? json_loads(text, 0, NULL) : NULL;
    qv_free(text);
    return o;
}

static void expect_payload(qv_coll *c, uint64_t id, const char *want)
{
    json_t *got = payload_of(c, id), *w = want ? json_loads(want, 0, NULL) : NULL;
    char *gs = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    ck_assert_msg(want ? got && json_equal(got, w) : !got, "point %llu: payload %s, want %s", (unsigned long long)id,
                  gs ? gs : "(none)", want ? want : "(none)");
    free(gs);
    json_decref(got);
    json_decref(w);
}

static uint64_t last_seq(qv_coll *c)
{
    qv_collection_info info;
    QV_CK(qv_collection_get_info(c, &info));
    return info.last_seq;
}

/* Ids passing the filter, via qv_scroll. */
static size_t count_where(qv_coll *c, const char *filter)
{
    qv_filter *f = NULL;
    size_t n = 0;
    uint64_t total = 0;
    QV_CK(qv_filter_parse(filter, &f));
    QV_CK(qv_scroll(c, f, NULL, NULL, 0, 0, NULL, &n, &total));
    qv_filter_free(f);
    return (size_t)total;
}

START_TEST(test_semantics)
{
    fixture f;
    open_fixture(&f, "{\"tag\":\"keyword\"}");
    const uint64_t ids[3] = {1, 2, 3};
    const char *pl[3] = {"{\"a\":1,\"tag\":\"x\"}", "{\"a\":2,\"b\":[1,2],\"tag\":\"x\"}", NULL};
    put_points(f.c, 3, ids, pl);
    float before[4], after[4];
    QV_CK(qv_get(f.c, 2, before, NULL));
    uint64_t seq = last_seq(f.c);

    /* set merges (replacing same-named keys whole), point 3 had no payload */
    QV_CK(qv_set_payload(f.c, 3, ids, "{\"b\":{\"c\":1},\"tag\":\"y\"}"));
    expect_payload(f.c, 1, "{\"a\":1,\"b\":{\"c\":1},\"tag\":\"y\"}");
    expect_payload(f.c, 2, "{\"a\":2,\"b\":{\"c\":1},\"tag\":\"y\"}");
    expect_payload(f.c, 3, "{\"b\":{\"c\":1},\"tag\":\"y\"}");
    ck_assert_uint_eq(last_seq(f.c), seq + 1);       /* one write, one seq */
    QV_CK(qv_get(f.c, 2, after, NULL));
    ck_assert(memcmp(before, after, sizeof before) == 0);
    /* the payload index moved with the payload: the indexed field answers the new value */
    ck_assert_uint_eq(count_where(f.c, "{\"must\":[{\"key\":\"tag\",\"match\":\"y\"}]}"), 3);
    ck_assert_uint_eq(count_where(f.c, "{\"must\":[{\"key\":\"tag\",\"match\":\"x\"}]}"), 0);

    /* keys to delete are paths, as filter keys are; a quoted segment keeps its dots */
    const char *paths[2] = {"b.c", "\"x.y\""};
    QV_CK(qv_set_payload(f.c, 1, ids + 2, "{\"x.y\":1,\"x\":{\"y\":2}}"));
    QV_CK(qv_delete_payload_keys(f.c, 1, ids + 2, paths, 2));
    expect_payload(f.c, 3, "{\"b\":{},\"tag\":\"y\",\"x\":{\"y\":2}}");
    const char *badpath[1] = {"a..b"};
    QV_CK_FAIL(qv_delete_payload_keys(f.c, 1, ids, badpath, 1), QV_EINVAL);

    /* delete keys (absent ones ignored), overwrite, clear with keep, clear */
    const char *del[2] = {"a", "nope"};
    QV_CK(qv_delete_payload_keys(f.c, 1, ids, del, 2));
    expect_payload(f.c, 1, "{\"b\":{\"c\":1},\"tag\":\"y\"}");
    QV_CK(qv_overwrite_payload(f.c, 1, ids + 1, "{\"tag\":\"z\"}"));
    expect_payload(f.c, 2, "{\"tag\":\"z\"}");
    ck_assert_uint_eq(count_where(f.c, "{\"must\":[{\"key\":\"tag\",\"match\":\"z\"}]}"), 1);
    qv_payload_update u;
    qv_payload_update_init(&u);
    const char *keep[1] = {"tag"};
    u.clear = 1;
    u.keep = keep;
    u.nkeep = 1;
    size_t nu = 99;
    QV_CK(qv_update_payload(f.c, 1, ids + 2, &u, &nu));
    ck_assert_uint_eq(nu, 1);
    expect_payload(f.c, 3, "{\"tag\":\"y\"}");
    QV_CK(qv_clear_payload(f.c, 1, ids + 2));
    expect_payload(f.c, 3, NULL);
    ck_assert_uint_eq(count_where(f.c, "{\"must\":[{\"key\":\"tag\",\"match\":\"y\"}]}"), 1);

    /* a missing id: the whole call fails and nothing changes, or it is skipped */
    const uint64_t some_missing[3] = {1, 77, 2};
    seq = last_seq(f.c);
    QV_CK_FAIL(qv_set_payload(f.c, 3, some_missing, "{\"m\":1}"), QV_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(qv_last_error(), "no point with id 77"));
    expect_payload(f.c, 1, "{\"b\":{\"c\":1},\"tag\":\"y\"}");
    ck_assert_uint_eq(last_seq(f.c), seq);
    qv_payload_update_init(&u);
    u.merge = "{\"m\":1}";
    u.flags = QV_PAYLOAD_SKIP_MISSING;
    QV_CK(qv_update_payload(f.c, 3, some_missing, &u, &nu));
    ck_assert_uint_eq(nu, 2);
    expect_payload(f.c, 2, "{\"tag\":\"z\",\"m\":1}");
    QV_CK(qv_update_payload(f.c, 1, some_missing + 1, &u, &nu));   /* all missing: no write */
    ck_assert_uint_eq(nu, 0);
    ck_assert_uint_eq(last_seq(f.c), seq + 1);

    /* bad input */
    QV_CK_FAIL(qv_set_payload(f.c, 1, ids, "[1]"), QV_EINVAL);
    QV_CK_FAIL(qv_set_payload(f.c, 1, ids, "{\"a\":1,\"a\":2}"), QV_EINVAL);
    QV_CK_FAIL(qv_set_payload(f.c, 1, ids, "{"), QV_EINVAL);
    QV_CK_FAIL(qv_set_payload(f.c, 1, ids, NULL), QV_EINVAL);
    QV_CK_FAIL(qv_set_payload(NULL, 1, ids, "{}"), QV_EINVAL);
    QV_CK_FAIL(qv_delete_payload_keys(f.c, 1, ids, NULL, 1), QV_EINVAL);
    const char *nullkey[1] = {NULL};
    QV_CK_FAIL(qv_delete_payload_keys(f.c, 1, ids, nullkey, 1), QV_EINVAL);
    u.flags = 0x80;
    QV_CK_FAIL(qv_update_payload(f.c, 1, ids, &u, NULL), QV_EINVAL);
    QV_CK(qv_set_payload(f.c, 0, NULL, "{}"));

    /* reopen from a snapshot taken before payload writes: the log replays them (they name
     * no vector) without a rebuild, and the payloads are as written */
    QV_CK(qv_checkpoint(f.c));
    QV_CK(qv_set_payload(f.c, 1, ids, "{\"after\":true}"));
    QV_CK(qv_db_close(f.db));
    QV_CK(qv_db_open(f.dir, NULL, &f.db));
    QV_CK(qv_collection_open(f.db, "c", &f.c));
    qv_storage_stats st;
    qv_storage_get_stats(f.c, &st);
    ck_assert_uint_eq(st.snapshot_loads, 1);
    ck_assert_uint_eq(st.rebuilds, 0);
    ck_assert_uint_eq(st.damaged_snapshots, 0);
    expect_payload(f.c, 1, "{\"b\":{\"c\":1},\"tag\":\"y\",\"m\":1,\"after\":true}");
    ck_assert_uint_eq(count_where(f.c, "{\"must\":[{\"key\":\"tag\",\"match\":\"z\"}]}"), 1);
    close_fixture(&f);
}
END_TEST

START_TEST(test_read_only)
{
    fixture f;
    open_fixture(&f, NULL);
    const uint64_t id = 5;
    put_points(f.c, 1, &id, NULL);
    QV_CK(qv_db_close(f.db));
    qv_db_options o;
    qv_db_options_init(&o);
    o.flags = QV_DB_RDONLY;
    QV_CK(qv_db_open(f.dir, &o, &f.db));
    QV_CK(qv_collection_open(f.db, "c", &f.c));
    QV_CK_FAIL(qv_set_payload(f.c, 1, &id, "{\"a\":1}"), QV_ESTATE);
    close_fixture(&f);
}
END_TEST

/* ---- issue 25 bug 1: an acknowledged delete is never undone ----------------------------- */

typedef struct {
    qv_coll *c;
    uint64_t id;
    int stop;                      /* atomics */
    int rc;                        /* first unexpected result */
    size_t sets;
} setter;

static void *set_until_stopped(void *arg)
{
    setter *s = arg;
    char pl[48];
    for (size_t i = 0; !__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE); i++) {
        snprintf(pl, sizeof pl, "{\"h\":%zu}", i);
        int rc = qv_set_payload(s->c, 1, &s->id, pl);
        if (rc == QV_ENOTFOUND) break;             /* deleted: the setter's job is over */
        if (rc != QV_OK) { s->rc = rc; break; }
        __atomic_add_fetch(&s->sets, 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

START_TEST(test_delete_never_undone)
{
    fixture f;
    open_fixture(&f, "{\"h\":\"integer\"}");
    int trials = sanitized() ? 30 : 200, resurrected = 0;
    for (int t = 0; t < trials; t++) {
        uint64_t id = 1000 + (uint64_t)t;
        const char *pl[1] = {"{\"v\":0}"};
        put_points(f.c, 1, &id, pl);
        setter s = {f.c, id, 0, QV_OK, 0};
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, set_until_stopped, &s), 0);
        /* let the setter run a little (its first update at least), then delete */
        for (int spin = 0; spin < 1000 && __atomic_load_n(&s.sets, __ATOMIC_ACQUIRE) < (size_t)(t % 3); spin++) sched_yield();
        size_t nd = 0;
        QV_CK(qv_delete(f.c, 1, &id, &nd));
        ck_assert_uint_eq(nd, 1);                 /* acknowledged */
        __atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
        pthread_join(th, NULL);
        ck_assert_msg(s.rc == QV_OK, "setter: %s: %s", qv_strerror(s.rc), qv_last_error());
        if (qv_get(f.c, id, NULL, NULL) != QV_ENOTFOUND) resurrected++;
    }
    ck_assert_msg(resurrected == 0, "%d of %d acknowledged deletes undone by a payload update", resurrected, trials);
    ck_assert_uint_eq(count_where(f.c, "{\"must\":[{\"key\":\"h\",\"range\":{\"gte\":0}}]}"), 0);
    qv_collection_info info;
    QV_CK(qv_collection_get_info(f.c, &info));
    ck_assert_uint_eq(info.count, 0);
    close_fixture(&f);
}
END_TEST

/* ---- issue 25 bug 2: no payload update is lost ------------------------------------------ */

typedef struct {
    qv_coll *c;
    char prefix;
    int n;
    int rc;
} key_writer;

static void *write_keys(void *arg)
{
    key_writer *w = arg;
    const uint64_t id = 1;
    char pl[48];
    for (int i = 0; i < w->n; i++) {
        snprintf(pl, sizeof pl, "{\"%c%d\":%d}", w->prefix, i, i);
        if ((w->rc = qv_set_payload(w->c, 1, &id, pl)) != QV_OK) break;
    }
    return NULL;
}

START_TEST(test_no_update_lost)
{
    fixture f;
    open_fixture(&f, NULL);
    const uint64_t id = 1;
    const char *pl[1] = {"{\"v\":0}"};
    put_points(f.c, 1, &id, pl);
    int per = sanitized() ? 60 : 150;
    key_writer w[2] = {{f.c, 'b', per, QV_OK}, {f.c, 'c', per, QV_OK}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&th[i], NULL, write_keys, &w[i]), 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) ck_assert_msg(w[i].rc == QV_OK, "writer %d: %s", i, qv_strerror(w[i].rc));
    json_t *p = payload_of(f.c, id);
    ck_assert_ptr_nonnull(p);
    ck_assert_msg(json_object_size(p) == (size_t)(2 * per + 1), "%zu of %d keys kept", json_object_size(p) - 1, 2 * per);
    json_decref(p);
    close_fixture(&f);
}
END_TEST

Suite *qv_payload_suite(void)
{
    Suite *s = suite_create("payload");
    TCase *tc = tcase_create("update");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_semantics);
    tcase_add_test(tc, test_read_only);
    tcase_add_test(tc, test_delete_never_undone);
    tcase_add_test(tc, test_no_update_lost);
    suite_add_tcase(s, tc);
    return s;
}

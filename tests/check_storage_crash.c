/*
 * tests/check_storage_crash.c -- crash consistency of the storage layer.
 *
 * A fork()ed child runs a fixed sequence of write operations against a database (batch
 * upserts that also replace some earlier points, and batch deletes), and after each call
 * returns QV_OK it writes the operation's number to a pipe: an acknowledgement. The
 * parent SIGKILLs the child at a random moment after a random number of acks -- during a
 * write, a checkpoint (some runs checkpoint after every write, others every 2 writes via
 * checkpoint_every) or in between -- then reopens the database and checks:
 *   - every acknowledged operation is present, and at most the one operation in flight
 *     beyond it (committed but not yet acknowledged); never part of an operation;
 *   - every point reads back with its vector and payload, every deleted one is absent;
 *   - a flat collection's search results equal a fresh flat index over the same points
 *     exactly; an hnsw collection returns only live points with recall >= 0.9.
 * Each run kills the same database several times, so recovery after recovery is covered.
 * The child never returns into check's machinery: it leaves with _exit().
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "storage/storage.h"
#include "tests/test_util.h"

#define CDIM 8
#define BATCH 40
#define MAXOPS 400
#define NIDS (MAXOPS * BATCH)

/* Operation j: every 4th (j % 4 == 3) deletes ids 10..19 of op j-2's range; the others
 * upsert their own range [j*BATCH, (j+1)*BATCH) plus ids 0..9 of op j-1's range again
 * (replacing vector and payload), all with version j. */
static int op_is_delete(uint64_t j) { return j % 4 == 3; }

static void op_vec(float *v, uint64_t id, uint64_t ver) { fill_random(v, CDIM, id * 1315423911u + ver * 2654435761u + 3); }

/* Fill ids/vecs/payloads of op j; returns the count. pl: n strings of 48 bytes. */
static size_t op_points(uint64_t j, uint64_t *ids, float *vecs, char (*pl)[48])
{
    size_t n = 0;
    if (op_is_delete(j)) {
        for (uint64_t i = 10; i < 20; i++) ids[n++] = (j - 2) * BATCH + i;
        return n;
    }
    for (uint64_t i = 0; i < BATCH; i++) ids[n++] = j * BATCH + i;
    if (j > 0 && !op_is_delete(j - 1))
        for (uint64_t i = 0; i < 10; i++) ids[n++] = (j - 1) * BATCH + i;
    for (size_t i = 0; i < n; i++) {
        op_vec(vecs + i * CDIM, ids[i], j);
        snprintf(pl[i], 48, "{\"id\":%llu,\"op\":%llu}", (unsigned long long)ids[i], (unsigned long long)j);
    }
    return n;
}

typedef struct {
    unsigned char *live;           /* NIDS */
    uint64_t *ver;                 /* version (op) of the live point */
} cmodel;

static void model_apply(cmodel *m, uint64_t j)
{
    uint64_t ids[2 * BATCH];
    float vecs[2 * BATCH * CDIM];
    char pl[2 * BATCH][48];
    size_t n = op_points(j, ids, vecs, pl);
    for (size_t i = 0; i < n; i++) {
        m->live[ids[i]] = !op_is_delete(j);
        m->ver[ids[i]] = j;
    }
}

/* ---- the child ------------------------------------------------------------------------ */

typedef struct {
    const char *dir;
    qv_index_kind kind;
    uint32_t checkpoint_every;
    int checkpoint_each_op;
} crash_cfg;

static void child_run(const crash_cfg *cfg, uint64_t start, int ack_fd)
{
    qv_db_options o;
    qv_db *db = NULL;
    qv_coll *c = NULL;
    qv_db_options_init(&o);
    o.checkpoint_every = cfg->checkpoint_every;
    if (qv_db_open(cfg->dir, &o, &db) != QV_OK) _exit(10);
    if (qv_collection_open(db, "crash", &c) != QV_OK) _exit(11);
    for (uint64_t j = start; j < MAXOPS; j++) {
        uint64_t ids[2 * BATCH];
        float vecs[2 * BATCH * CDIM];
        char pl[2 * BATCH][48];
        const char *plp[2 * BATCH];
        size_t n = op_points(j, ids, vecs, pl), nd = 0;
        for (size_t i = 0; i < n; i++) plp[i] = pl[i];
        int rc = op_is_delete(j) ? qv_delete(c, n, ids, &nd) : qv_upsert(c, n, ids, vecs, plp);
        if (rc != QV_OK) _exit(12);
        uint32_t ack = (uint32_t)j;
        if (write(ack_fd, &ack, sizeof ack) != (ssize_t)sizeof ack) _exit(13);
        if (cfg->checkpoint_each_op && qv_checkpoint(c) != QV_OK) _exit(14);
    }
    _exit(0);   /* not reached in practice: the parent kills first */
}

/* ---- the parent --------------------------------------------------------------------- */

/* Fork a child from op `start`, kill it after some acks; returns the last acked op + 1
 * (start if none). */
static uint64_t run_and_kill(const crash_cfg *cfg, uint64_t start, uint64_t *seed)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        child_run(cfg, start, fds[1]);
        _exit(20);
    }
    close(fds[1]);
    uint64_t want = 1 + test_rand(seed) % 8, got = 0, next = start;
    uint32_t ack;
    while (got < want && read(fds[0], &ack, sizeof ack) == (ssize_t)sizeof ack) {
        ck_assert_uint_eq(ack, next);
        next++;
        got++;
    }
    struct timespec ts = {0, (long)(test_rand(seed) % 4000) * 1000};   /* 0..4 ms more */
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    while (read(fds[0], &ack, sizeof ack) == (ssize_t)sizeof ack) {   /* acks sent before death */
        ck_assert_uint_eq(ack, next);
        next++;
    }
    close(fds[0]);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child exited by itself, status 0x%x", status);
    return next;
}

/* Which of acked or acked+1 operations are in the database; checks everything. */
static uint64_t verify(const crash_cfg *cfg, uint64_t acked)
{
    qv_db *db = NULL;
    qv_coll *c = NULL;
    cmodel m;
    m.live = calloc(NIDS, 1);
    m.ver = calloc(NIDS, sizeof *m.ver);
    ck_assert(m.live && m.ver);
    QV_CK(qv_db_open(cfg->dir, NULL, &db));
    QV_CK(qv_collection_open(db, "crash", &c));

    /* Was op `acked` (in flight at the kill) committed? Its first point tells. */
    uint64_t done = acked, probe;
    char *pl = NULL;
    if (op_is_delete(acked)) {
        probe = (acked - 2) * BATCH + 10;
        done = qv_get(c, probe, NULL, NULL) == QV_ENOTFOUND ? acked + 1 : acked;
    } else {
        probe = acked * BATCH;
        done = qv_get(c, probe, NULL, NULL) == QV_OK ? acked + 1 : acked;
    }
    for (uint64_t j = 0; j < done; j++) model_apply(&m, j);

    size_t live = 0;
    float v[CDIM], want[CDIM];
    for (uint64_t id = 0; id < (done + 1) * BATCH && id < NIDS; id++) {
        int rc = qv_get(c, id, v, &pl);
        if (!m.live[id]) {
            ck_assert_msg(rc == QV_ENOTFOUND, "id %llu should be absent after %llu ops (acked %llu): %s",
                          (unsigned long long)id, (unsigned long long)done, (unsigned long long)acked, qv_strerror(rc));
            continue;
        }
        live++;
        ck_assert_msg(rc == QV_OK, "id %llu missing after %llu ops (acked %llu)", (unsigned long long)id,
                      (unsigned long long)done, (unsigned long long)acked);
        op_vec(want, id, m.ver[id]);
        ck_assert_msg(memcmp(v, want, sizeof v) == 0, "id %llu: vector is not that of op %llu (partial op?)",
                      (unsigned long long)id, (unsigned long long)m.ver[id]);
        char expect[48];
        snprintf(expect, sizeof expect, "{\"id\":%llu,\"op\":%llu}", (unsigned long long)id, (unsigned long long)m.ver[id]);
        ck_assert_ptr_nonnull(pl);
        ck_assert_str_eq(pl, expect);
        qv_free(pl);
        pl = NULL;
    }
    qv_collection_info info;
    QV_CK(qv_collection_get_info(c, &info));
    ck_assert_uint_eq(info.count, live);

    /* search against a fresh flat index over the same points */
    qv_index_params p;
    qv_index *ix = NULL;
    qv_index_params_init(&p, QV_INDEX_FLAT, CDIM, QV_METRIC_L2);
    p.threads = 1;
    QV_CK(qv_index_new(&p, &ix));
    for (uint64_t id = 0; id < NIDS; id++)
        if (m.live[id]) {
            op_vec(want, id, m.ver[id]);
            QV_CK(qv_index_add(ix, 1, &id, want));
        }
    qv_search_params sp;
    qv_hit a[10], b[10];
    size_t found = 0, total = 0;
    qv_search_params_init(&sp, 10);
    for (int qi = 0; qi < 20; qi++) {
        size_t na = 0, nb = 0;
        fill_random(v, CDIM, 999 + (uint64_t)qi + done * 31);
        QV_CK(qv_search(c, v, &sp, a, &na));
        QV_CK(qv_index_search(ix, v, &sp, b, &nb));
        for (size_t t = 0; t < na; t++) ck_assert_msg(a[t].id < NIDS && m.live[a[t].id], "hit %llu is not live", (unsigned long long)a[t].id);
        if (cfg->kind == QV_INDEX_FLAT) {
            ck_assert_uint_eq(na, nb);
            for (size_t t = 0; t < na; t++) ck_assert_uint_eq(a[t].id, b[t].id);
        }
        for (size_t t = 0; t < nb; t++) {
            total++;
            for (size_t u = 0; u < na; u++)
                if (a[u].id == b[t].id) { found++; break; }
        }
    }
    ck_assert_msg(total == 0 || (double)found / (double)total >= 0.9, "recall %zu/%zu", found, total);
    qv_index_free(ix);
    QV_CK(qv_db_close(db));
    free(m.live);
    free(m.ver);
    return done;
}

static void crash_runs(qv_index_kind kind, uint32_t checkpoint_every, int each_op, uint64_t seed)
{
    char *dir = make_tmpdir("qv-crash");
    crash_cfg cfg = {dir, kind, checkpoint_every, each_op};
    qv_db *db = NULL;
    qv_collection_config cc;
    memset(&cc, 0, sizeof cc);
    qv_index_params_init(&cc.index, kind, CDIM, QV_METRIC_L2);
    cc.index.threads = 1;
    QV_CK(qv_db_open(dir, NULL, &db));
    QV_CK(qv_collection_create(db, "crash", &cc, NULL));
    QV_CK(qv_db_close(db));
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7, done = 0;
    int kills = sanitized() ? 4 : 12;
    for (int k = 0; k < kills && done + 20 < MAXOPS; k++) {
        uint64_t acked = run_and_kill(&cfg, done, &s);
        done = verify(&cfg, acked);
        ck_assert(done >= acked);
        if (getenv("QV_CRASH_DEBUG")) fprintf(stderr, "kill %d: acked %llu, found %llu ops\n", k, (unsigned long long)acked, (unsigned long long)done);
    }
    rm_rf(dir);
    free(dir);
}

START_TEST(test_crash_flat) { crash_runs(QV_INDEX_FLAT, 0, 0, 1); }
END_TEST
START_TEST(test_crash_flat_checkpoint_every) { crash_runs(QV_INDEX_FLAT, 2, 0, 2); }
END_TEST
START_TEST(test_crash_flat_checkpoint_each_op) { crash_runs(QV_INDEX_FLAT, 0, 1, 3); }
END_TEST
START_TEST(test_crash_hnsw) { crash_runs(QV_INDEX_HNSW, 3, 0, 4); }
END_TEST
START_TEST(test_crash_hnsw_checkpoint_each_op) { crash_runs(QV_INDEX_HNSW, 0, 1, 5); }
END_TEST

/* A file-size limit stands in for a full disk: the child writes until a commit fails,
 * which must be QV_EFULL; reopened without the limit, every acknowledged batch is there,
 * nothing else, and the database takes writes again. */
static void full_child(const char *dir, int fd)
{
    qv_db *db = NULL;
    qv_coll *c = NULL;
    char path[1024];
    struct stat st;
    signal(SIGXFSZ, SIG_IGN);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (stat(path, &st) != 0) _exit(10);
    struct rlimit rl = {(rlim_t)st.st_size + (1u << 20), (rlim_t)st.st_size + (1u << 20)};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(11);
    if (qv_db_open(dir, NULL, &db) != QV_OK || qv_collection_open(db, "crash", &c) != QV_OK) _exit(12);
    int rc = QV_OK;
    for (uint64_t j = 0; j < MAXOPS && rc == QV_OK; j++) {
        uint64_t ids[2 * BATCH];
        float vecs[2 * BATCH * CDIM];
        char pl[2 * BATCH][48];
        const char *plp[2 * BATCH];
        size_t n = op_points(j, ids, vecs, pl), nd;
        for (size_t i = 0; i < n; i++) plp[i] = pl[i];
        rc = op_is_delete(j) ? qv_delete(c, n, ids, &nd) : qv_upsert(c, n, ids, vecs, plp);
        int32_t msg = rc == QV_OK ? (int32_t)j : rc;
        if (write(fd, &msg, sizeof msg) != (ssize_t)sizeof msg) _exit(13);
    }
    if (rc == QV_OK) _exit(14);
    /* still usable for reads after the failure */
    if (qv_get(c, 0, NULL, NULL) != QV_OK) _exit(15);
    qv_db_close(db);               /* its checkpoint may fail the same way: fine */
    _exit(0);
}

START_TEST(test_disk_full)
{
    char *dir = make_tmpdir("qv-full");
    crash_cfg cfg = {dir, QV_INDEX_FLAT, 0, 0};
    qv_db *db = NULL;
    qv_collection_config cc;
    memset(&cc, 0, sizeof cc);
    qv_index_params_init(&cc.index, QV_INDEX_FLAT, CDIM, QV_METRIC_L2);
    cc.index.threads = 1;
    QV_CK(qv_db_open(dir, NULL, &db));
    QV_CK(qv_collection_create(db, "crash", &cc, NULL));
    QV_CK(qv_db_close(db));
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        full_child(dir, fds[1]);
        _exit(20);
    }
    close(fds[1]);
    int32_t msg, last_rc = QV_OK;
    uint64_t acked = 0;
    while (read(fds[0], &msg, sizeof msg) == (ssize_t)sizeof msg) {
        if (msg < 0) { last_rc = msg; break; }
        ck_assert_uint_eq((uint64_t)msg, acked);
        acked++;
    }
    close(fds[0]);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status 0x%x", status);
    ck_assert_msg(last_rc == QV_EFULL, "the failing write gave %s, expected QV_EFULL", qv_strerror(last_rc));
    ck_assert_uint_gt(acked, 5);
    ck_assert_uint_eq(verify(&cfg, acked), acked);   /* the failed op left nothing */
    QV_CK(qv_db_open(dir, NULL, &db));
    qv_coll *c = NULL;
    QV_CK(qv_collection_open(db, "crash", &c));
    uint64_t id = NIDS - 1;
    float v[CDIM] = {1, 2, 3, 4, 5, 6, 7, 8};
    QV_CK(qv_upsert(c, 1, &id, v, NULL));
    QV_CK(qv_db_close(db));
    rm_rf(dir);
    free(dir);
}
END_TEST

Suite *qv_storage_crash_suite(void)
{
    Suite *s = suite_create("storage_crash");
    TCase *tc = tcase_create("crash");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_crash_flat);
    tcase_add_test(tc, test_crash_flat_checkpoint_every);
    tcase_add_test(tc, test_crash_flat_checkpoint_each_op);
    tcase_add_test(tc, test_crash_hnsw);
    tcase_add_test(tc, test_crash_hnsw_checkpoint_each_op);
    tcase_add_test(tc, test_disk_full);
    suite_add_tcase(s, tc);
    return s;
}

/*
 * tests/check_bench.c -- suite "bench": runs the built quiver-bench binary
 * (build_dir()/quiver-bench) as a user would and checks what it prints.
 *  - exact search (flat) on siftsmall and on a small generated set: recall must be 1.0 in
 *    single-query mode (1 and 2 threads) and in batch mode, for Quiver and for every peer
 *    that was compiled in; the JSON rows carry the contract's fields;
 *  - the metric is taken from README.md (a cosine set whose ground truth only cosine
 *    reproduces);
 *  - bad command lines exit 2 and bad files exit 1, each with one line on stderr;
 *  - hnsw on siftsmall reaches recall > 0.9 at ef 64;
 *  - --filter-selectivity on siftsmall: filtered rows at four selectivities, recall >= 0.9
 *    against the filtered ground truth, no returned point failing the filter;
 *  - --subset scores the first N rows against their own ground truth; --reload times the
 *    reopening of each saved index;
 *  - --plot writes a PNG when gnuplot is installed.
 * The generated sets are tiny, so the suite stays within a few seconds (plus one 10k
 * hnsw build).
 */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

typedef struct {
    int status;                    /* exit status, or -1 when it did not exit normally */
    char *out, *err;               /* malloc'd */
} run_result;

static const char *bench_bin(void)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/quiver-bench", build_dir());
    return path;
}

static int have_bench(void)
{
    if (access(bench_bin(), X_OK) == 0) return 1;
    test_skip(TEST_SKIP_MISSING, "bench: %s not built", bench_bin());
    return 0;
}

static char *slurp(FILE *f)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    for (size_t got; (got = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
        len += got;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
    }
    buf[len] = '\0';
    return buf;
}

/* Run quiver-bench with args (a shell fragment), capturing stdout and stderr. */
static run_result run_bench(const char *args)
{
    run_result r = {-1, NULL, NULL};
    char *dir = make_tmpdir("qv-bench-run");
    char errpath[1024], cmd[8192];
    snprintf(errpath, sizeof errpath, "%s/stderr", dir);
    snprintf(cmd, sizeof cmd, "'%s' %s 2>'%s'", bench_bin(), args, errpath);
    FILE *p = popen(cmd, "r");
    ck_assert_msg(p != NULL, "popen %s", cmd);
    r.out = slurp(p);
    int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    FILE *ef = fopen(errpath, "r");
    ck_assert_ptr_nonnull(ef);
    r.err = slurp(ef);
    fclose(ef);
    rm_rf(dir);
    free(dir);
    return r;
}

static void run_free(run_result *r)
{
    free(r->out);
    free(r->err);
}

/* Directory of a shared dataset into buf; 0 (with a message) when it is missing. */
static int dataset_dir(char *buf, size_t len, const char *set)
{
    if (!data_path(buf, len, set, "groundtruth.ivecs")) {
        test_skip(TEST_SKIP_MISSING, "bench: dataset %s missing (%s)", set, buf);
        return 0;
    }
    char *slash = strrchr(buf, '/');
    if (slash) *slash = '\0';
    return 1;
}

/* Parse the JSON rows of r->out; returns the number of rows, each checked for the
 * contract's fields, with every recall >= min_recall and library in the given set. */
static size_t check_rows(const run_result *r, double min_recall, int batch, unsigned *libs_seen)
{
    size_t rows = 0;
    char *save = NULL;
    char *copy = strdup(r->out);
    ck_assert_ptr_nonnull(copy);
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t jerr;
        json_t *o = json_loads(line, 0, &jerr);
        ck_assert_msg(o != NULL, "not JSON: %s (%s)", line, jerr.text);
        static const char *const fields[] = {"library", "index", "params", "build_s", "memory_bytes", "k",
                                             "threads", "recall", "qps", "p50_us", "p99_us", "batch",
                                             "memory_source"};
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
            ck_assert_msg(json_object_get(o, fields[i]) != NULL, "row lacks %s: %s", fields[i], line);
        ck_assert_msg(json_object_get(o, "ef") || json_object_get(o, "nprobe"), "row lacks ef/nprobe: %s", line);
        const char *lib = json_string_value(json_object_get(o, "library"));
        ck_assert_ptr_nonnull(lib);
        if (strcmp(lib, "quiver") == 0) *libs_seen |= 1u;
        else if (strcmp(lib, "hnswlib") == 0) *libs_seen |= 2u;
        else if (strcmp(lib, "faiss") == 0) *libs_seen |= 4u;
        else ck_abort_msg("unknown library %s", lib);
        double recall = json_number_value(json_object_get(o, "recall"));
        ck_assert_msg(recall >= min_recall && recall <= 1.0, "%s: recall %.6f < %.6f", lib, recall, min_recall);
        ck_assert_msg(json_number_value(json_object_get(o, "qps")) > 0, "qps not positive: %s", line);
        ck_assert_int_eq(json_is_true(json_object_get(o, "batch")), batch);
        /* Single queries have latencies; a batch has none (null). */
        ck_assert_int_eq(json_is_null(json_object_get(o, "p50_us")), batch);
        if (!batch)
            ck_assert(json_number_value(json_object_get(o, "p99_us")) >= json_number_value(json_object_get(o, "p50_us")));
        json_decref(o);
        rows++;
    }
    free(copy);
    return rows;
}

/* The peers compiled into this quiver-bench, found by asking for them. */
static const char *peers_available(const char *dir)
{
    static char list[64];
    char args[2048];
    list[0] = '\0';
    static const char *const names[] = {"hnswlib", "faiss"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(args, sizeof args, "--data '%s' --index flat --peers %s --peers-only --queries 1 --json", dir, names[i]);
        run_result r = run_bench(args);
        if (r.status == 0) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? "," : "", names[i]);
        else ck_assert_msg(strstr(r.err, "built without") != NULL, "--peers %s: status %d: %s", names[i], r.status, r.err);
        run_free(&r);
    }
    return list;
}

/* ---- a small generated dataset ----------------------------------------------------- */

static void write_vecs(const char *path, const void *data, size_t n, size_t dim, size_t elem)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    int32_t d = (int32_t)dim;
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(fwrite(&d, 4, 1, f), 1);
        ck_assert_int_eq(fwrite((const char *)data + i * dim * elem, elem, dim, f), dim);
    }
    ck_assert_int_eq(fclose(f), 0);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* nb x dim base, nq queries, exact top-gt_k ground truth under metric; README names it. */
static char *make_dataset(size_t nb, size_t nq, size_t dim, size_t gt_k, qv_metric metric)
{
    char *dir = make_tmpdir("qv-bench-data");
    char path[1024];
    float *base = random_vectors(nb, dim, 11), *query = random_vectors(nq, dim, 12);
    uint64_t *ids = malloc(nq * gt_k * sizeof *ids);
    int32_t *gt = malloc(nq * gt_k * sizeof *gt);
    ck_assert(base && query && ids && gt);
    ref_knn(base, nb, dim, query, nq, gt_k, metric, ids);
    for (size_t i = 0; i < nq * gt_k; i++) gt[i] = (int32_t)ids[i];
    snprintf(path, sizeof path, "%s/base.fvecs", dir);
    write_vecs(path, base, nb, dim, sizeof(float));
    snprintf(path, sizeof path, "%s/query.fvecs", dir);
    write_vecs(path, query, nq, dim, sizeof(float));
    snprintf(path, sizeof path, "%s/groundtruth.ivecs", dir);
    write_vecs(path, gt, nq, gt_k, sizeof(int32_t));
    snprintf(path, sizeof path, "%s/README.md", dir);
    write_text(path, metric == QV_METRIC_COSINE ? "# test set\nmetric: **cosine** (angular)\n"
                                                : "# test set\nmetric: **L2** (squared Euclidean)\n");
    free(base);
    free(query);
    free(ids);
    free(gt);
    return dir;
}

/* ---- tests ------------------------------------------------------------------------- */

START_TEST(test_flat_siftsmall)
{
    char dir[1024], args[2048];
    unsigned seen = 0;
    if (!have_bench() || !dataset_dir(dir, sizeof dir, "siftsmall")) return;
    const char *peers = peers_available(dir);
    for (int batch = 0; batch <= 1; batch++) {
        snprintf(args, sizeof args, "--data '%s' --index flat --json%s%s%s", dir, batch ? " --batch" : "",
                 peers[0] ? " --peers " : "", peers);
        run_result r = run_bench(args);
        ck_assert_msg(r.status == 0, "%s: status %d: %s", args, r.status, r.err);
        size_t rows = check_rows(&r, 1.0, batch, &seen);
        ck_assert_uint_eq(rows, 1 + (strstr(peers, "hnswlib") != NULL) + (strstr(peers, "faiss") != NULL));
        /* The header goes to stderr, with the BLAS the process runs on. */
        ck_assert_msg(strstr(r.err, "# blas:") != NULL, "no header on stderr: %s", r.err);
        run_free(&r);
    }
    ck_assert(seen & 1u);
}
END_TEST

START_TEST(test_flat_generated_threads_and_metric)
{
    char args[2048];
    unsigned seen = 0;
    if (!have_bench()) return;
    /* Cosine ground truth: recall 1.0 only if the README's metric is picked up. */
    char *dir = make_dataset(600, 40, 12, 20, QV_METRIC_COSINE);
    const char *peers = peers_available(dir);
    const char *modes[] = {"--threads 1", "--threads 2", "--batch --threads 2", "--k 20 --threads 3"};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        snprintf(args, sizeof args, "--data '%s' --index flat --json %s%s%s", dir, modes[i],
                 peers[0] ? " --peers " : "", peers);
        run_result r = run_bench(args);
        ck_assert_msg(r.status == 0, "%s: status %d: %s", args, r.status, r.err);
        ck_assert_msg(strstr(r.err, "metric cosine (README.md)") != NULL, "metric not detected: %s", r.err);
        ck_assert_uint_ge(check_rows(&r, 1.0, strstr(modes[i], "--batch") != NULL, &seen), 1);
        run_free(&r);
    }
    /* --metric overrides README.md: l2 on these (not unit) vectors ranks differently. */
    snprintf(args, sizeof args, "--data '%s' --index flat --json --metric l2", dir);
    run_result r = run_bench(args);
    ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
    json_t *o = json_loads(r.out, JSON_DISABLE_EOF_CHECK, NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(json_string_value(json_object_get(o, "metric")), "l2");
    ck_assert(json_number_value(json_object_get(o, "recall")) < 1.0);
    json_decref(o);
    run_free(&r);
    rm_rf(dir);
    free(dir);
}
END_TEST

/* Exit status and one line on stderr naming the problem. */
static void expect_failure(const char *args, int status, const char *needle)
{
    run_result r = run_bench(args);
    ck_assert_msg(r.status == status, "%s: status %d, expected %d (stderr: %s)", args, r.status, status, r.err);
    ck_assert_msg(strncmp(r.err, "quiver-bench: ", 14) == 0, "%s: stderr: %s", args, r.err);
    char *nl = strchr(r.err, '\n');
    ck_assert_msg(nl && nl[1] == '\0', "%s: not one line: %s", args, r.err);
    ck_assert_msg(strstr(r.err, needle) != NULL, "%s: '%s' not in: %s", args, needle, r.err);
    ck_assert_str_eq(r.out, "");
    run_free(&r);
}

START_TEST(test_bad_arguments)
{
    char args[2048];
    if (!have_bench()) return;
    char *dir = make_dataset(50, 5, 4, 10, QV_METRIC_L2);
    expect_failure("", 2, "--data DIR is required");
    snprintf(args, sizeof args, "--data '%s'", dir);
    expect_failure(args, 2, "--index");
    snprintf(args, sizeof args, "--data '%s' --index foo", dir);
    expect_failure(args, 2, "unknown index 'foo'");
    snprintf(args, sizeof args, "--data '%s' --index flat --metric manhattan", dir);
    expect_failure(args, 2, "unknown metric");
    snprintf(args, sizeof args, "--data '%s' --index hnsw --ef 10,,x", dir);
    expect_failure(args, 2, "empty item");
    snprintf(args, sizeof args, "--data '%s' --index hnsw --ef 10,x", dir);
    expect_failure(args, 2, "'x' is not a number");
    snprintf(args, sizeof args, "--data '%s' --index ivf --nprobe 4,", dir);
    expect_failure(args, 2, "--nprobe");
    snprintf(args, sizeof args, "--data '%s' --index flat --k 0", dir);
    expect_failure(args, 2, "--k must be a number in 1..");
    snprintf(args, sizeof args, "--data '%s' --index flat --k 10x", dir);
    expect_failure(args, 2, "--k");
    snprintf(args, sizeof args, "--data '%s' --index flat --threads", dir);
    expect_failure(args, 2, "--threads needs a value");
    snprintf(args, sizeof args, "--data '%s' --index flat --frobnicate 3", dir);
    expect_failure(args, 2, "unknown option");
    snprintf(args, sizeof args, "--data '%s' --index flat --peers faiss,,hnswlib", dir);
    expect_failure(args, 2, "--peers");
    snprintf(args, sizeof args, "--data '%s' --index flat --peers lucene", dir);
    expect_failure(args, 2, "--peers");
    /* Runtime: a GPU that is not there; the data. */
    if (!qv_gpu_available()) {
        snprintf(args, sizeof args, "--data '%s' --index flat --gpu", dir);
        expect_failure(args, 1, "--gpu");
    }
    snprintf(args, sizeof args, "--data '%s' --index flat --queries 3 --json", dir);
    run_result ok = run_bench(args);
    ck_assert_msg(ok.status == 0, "%s: %s", args, ok.err);
    ck_assert_msg(strstr(ok.out, "\"nq\":3,") != NULL, "--queries 3 not applied: %s", ok.out);
    run_free(&ok);
    expect_failure("--data /nonexistent/qv-bench --index flat", 1, "/nonexistent/qv-bench");
    snprintf(args, sizeof args, "--data '%s' --index flat --k 11", dir);
    expect_failure(args, 1, "ground truth width 10");
    rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_bad_files)
{
    char args[2048], path[1024];
    if (!have_bench()) return;
    char *dir = make_dataset(50, 5, 4, 10, QV_METRIC_L2);
    float q5[3 * 5] = {0};
    int32_t gt[2 * 10] = {0};

    /* Missing groundtruth.ivecs. */
    snprintf(path, sizeof path, "%s/groundtruth.ivecs", dir);
    char saved[1024];
    snprintf(saved, sizeof saved, "%s/gt.saved", dir);
    ck_assert_int_eq(rename(path, saved), 0);
    snprintf(args, sizeof args, "--data '%s' --index flat", dir);
    expect_failure(args, 1, "groundtruth.ivecs");
    ck_assert_int_eq(rename(saved, path), 0);

    /* Ground truth with fewer rows than queries. */
    write_vecs(path, gt, 2, 10, sizeof(int32_t));
    expect_failure(args, 1, "fewer than the 5 queries");
    /* Ground truth ids outside the base. */
    int32_t bad[5 * 10];
    for (size_t i = 0; i < 50; i++) bad[i] = (int32_t)(i % 10);
    bad[7] = 50;
    write_vecs(path, bad, 5, 10, sizeof(int32_t));
    expect_failure(args, 1, "id 50 is not in 0..49");
    /* A truncated ground-truth file. */
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    int32_t header = 10;
    fwrite(&header, 4, 1, f);
    fwrite(bad, 4, 3, f);
    fclose(f);
    expect_failure(args, 1, "groundtruth.ivecs");
    bad[7] = 7;
    write_vecs(path, bad, 5, 10, sizeof(int32_t));

    /* Queries of another dimension than the base. */
    snprintf(path, sizeof path, "%s/query.fvecs", dir);
    write_vecs(path, q5, 3, 5, sizeof(float));
    expect_failure(args, 1, "dimension mismatch");
    /* A file that is not fvecs at all. */
    write_text(path, "this is not a vector file\n");
    expect_failure(args, 1, "query.fvecs");
    rm_rf(dir);
    free(dir);
}
END_TEST

/* --subset N scores the first N rows against groundtruth-<N/1000>k.ivecs (exact: recall
 * 1.0 with flat); --reload saves, reopens and times each index after the sweep, then
 * sweeps it again. */
START_TEST(test_subset_and_reload)
{
    char args[4096], path[1200];
    unsigned seen = 0;
    if (!have_bench()) return;
    const size_t nb = 3000, nq = 30, dim = 8, sub = 1000, gk = 10;
    char *dir = make_dataset(nb, nq, dim, gk, QV_METRIC_L2);
    float *base = random_vectors(nb, dim, 11), *query = random_vectors(nq, dim, 12);   /* as make_dataset */
    uint64_t ids[30 * 10];
    int32_t gt[30 * 10];
    ref_knn(base, sub, dim, query, nq, gk, QV_METRIC_L2, ids);
    for (size_t i = 0; i < nq * gk; i++) gt[i] = (int32_t)ids[i];
    snprintf(path, sizeof path, "%s/groundtruth-1k.ivecs", dir);
    write_vecs(path, gt, nq, gk, sizeof(int32_t));
    snprintf(args, sizeof args, "--data '%s' --index flat --subset 1000 --json", dir);
    run_result r = run_bench(args);
    ck_assert_msg(r.status == 0, "%s: status %d: %s", args, r.status, r.err);
    ck_assert_uint_eq(check_rows(&r, 1.0, 0, &seen), 1);
    ck_assert_msg(strstr(r.out, "\"n\":1000") != NULL, "row lacks n: %s", r.out);
    ck_assert_msg(strstr(r.err, "the first of 3000") != NULL, "header: %s", r.err);
    run_free(&r);
    /* The full set scores against groundtruth.ivecs: recall 1.0 as well. */
    snprintf(args, sizeof args, "--data '%s' --index flat --subset 3000 --json", dir);
    r = run_bench(args);
    ck_assert_msg(r.status == 0, "%s: %s", args, r.err);
    ck_assert_uint_eq(check_rows(&r, 1.0, 0, &seen), 1);
    run_free(&r);
    snprintf(args, sizeof args, "--data '%s' --index flat --subset 1500", dir);
    expect_failure(args, 1, "multiple of 1000");
    snprintf(args, sizeof args, "--data '%s' --index flat --subset 2000", dir);
    expect_failure(args, 1, "groundtruth-2k.ivecs");
    snprintf(args, sizeof args, "--data '%s' --index flat --subset 4000", dir);
    expect_failure(args, 1, "holds only 3000");
    /* --reload: the built index is swept, then every engine that can reload reports its
     * time and the reloaded index is swept again (a second row, with reload_s). */
    char *rdir = make_tmpdir("qv-bench-reload");
    snprintf(args, sizeof args, "--data '%s' --index hnsw --subset 1000 --ef 64 --reload '%s' --json", dir, rdir);
    r = run_bench(args);
    ck_assert_msg(r.status == 0, "%s: status %d: %s", args, r.status, r.err);
    ck_assert_uint_eq(check_rows(&r, 0.95, 0, &seen), 2);
    json_t *o = json_loads(r.out, JSON_DISABLE_EOF_CHECK, NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert(json_is_null(json_object_get(o, "reload_s")));
    json_decref(o);
    const char *second = strchr(r.out, '\n');
    ck_assert_ptr_nonnull(second);
    o = json_loads(second + 1, JSON_DISABLE_EOF_CHECK, NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert(json_number_value(json_object_get(o, "reload_s")) >= 0);
    ck_assert(json_number_value(json_object_get(o, "first_search_s")) > 0);
    json_decref(o);
    run_free(&r);
    rm_rf(rdir);
    free(rdir);
    free(base);
    free(query);
    rm_rf(dir);
    free(dir);
}
END_TEST

/* --index-cache: the first run builds and saves each index (quiver, and hnswlib when
 * compiled in), the second loads them instead of building, reports the saved build time
 * and finds the same neighbours (same recall); other build settings build anew. */
START_TEST(test_index_cache)
{
    char args[4096];
    unsigned seen = 0;
    if (!have_bench()) return;
    char *dir = make_dataset(2000, 30, 8, 10, QV_METRIC_L2);
    char *cdir = make_tmpdir("qv-bench-cache");
    const char *peers = peers_available(dir);
    int hnswlib = strstr(peers, "hnswlib") != NULL;
    snprintf(args, sizeof args, "--data '%s' --index hnsw --ef 64 --index-cache '%s' %s --json", dir, cdir,
             hnswlib ? "--peers hnswlib" : "");
    run_result a = run_bench(args);
    ck_assert_msg(a.status == 0, "%s: status %d: %s", args, a.status, a.err);
    ck_assert_msg(strstr(a.err, "quiver: saved to") != NULL && strstr(a.err, "loaded") == NULL, "%s", a.err);
    ck_assert_uint_eq(check_rows(&a, 0.95, 0, &seen), hnswlib ? 2u : 1u);
    run_result b = run_bench(args);
    ck_assert_msg(b.status == 0, "%s: status %d: %s", args, b.status, b.err);
    ck_assert_msg(strstr(b.err, "quiver: loaded") != NULL && strstr(b.err, "quiver: building") == NULL, "%s", b.err);
    if (hnswlib) ck_assert_msg(strstr(b.err, "hnswlib: loaded") != NULL, "%s", b.err);
    ck_assert_uint_eq(check_rows(&b, 0.95, 0, &seen), hnswlib ? 2u : 1u);
    /* The same rows: recall and the saved build time, per library. */
    const char *pa = a.out, *pb = b.out;
    for (int i = 0; i < (hnswlib ? 2 : 1); i++) {
        json_t *ra = json_loads(pa, JSON_DISABLE_EOF_CHECK, NULL), *rb = json_loads(pb, JSON_DISABLE_EOF_CHECK, NULL);
        ck_assert(ra && rb);
        ck_assert(json_number_value(json_object_get(ra, "recall")) == json_number_value(json_object_get(rb, "recall")));
        double ba = json_number_value(json_object_get(ra, "build_s")), bb = json_number_value(json_object_get(rb, "build_s"));
        ck_assert_msg(bb > 0 && fabs(ba - bb) < 0.002, "build_s %g, loaded %g", ba, bb);
        json_decref(ra);
        json_decref(rb);
        pa = strchr(pa, '\n') + 1;
        pb = strchr(pb, '\n') + 1;
    }
    run_free(&a);
    run_free(&b);
    snprintf(args, sizeof args, "--data '%s' --index hnsw --m 8 --ef 64 --index-cache '%s' --json", dir, cdir);
    run_result c = run_bench(args);
    ck_assert_msg(c.status == 0 && strstr(c.err, "quiver: building") != NULL, "%s", c.err);
    run_free(&c);
    rm_rf(cdir);
    free(cdir);
    rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_hnsw_siftsmall)
{
    char dir[1024], args[2048];
    unsigned seen = 0;
    if (!have_bench() || !dataset_dir(dir, sizeof dir, "siftsmall")) return;
    /* Under the sanitizers the build is several times slower: a smaller beam. */
    snprintf(args, sizeof args, "--data '%s' --index hnsw --m 16 --ef-construction %d --ef 64 --json", dir,
             sanitized() ? 80 : 200);
    run_result r = run_bench(args);
    ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
    ck_assert_uint_eq(check_rows(&r, 0.9, 0, &seen), 1);
    run_free(&r);
}
END_TEST

/* --filter-selectivity on siftsmall: every row carries selectivity, mode and violations;
 * filtered rows find their neighbours among the allowed points only (violations 0) with
 * recall >= 0.9 against the filtered ground truth; each selectivity has a Quiver
 * collection row (db-filter) and an index row (bitset), plus hnswlib's when compiled in. */
START_TEST(test_filter_siftsmall)
{
    char dir[1024], args[2048];
    if (!have_bench() || !dataset_dir(dir, sizeof dir, "siftsmall")) return;
    const char *peers = peers_available(dir);
    const int hnswlib = strstr(peers, "hnswlib") != NULL;
    snprintf(args, sizeof args,
             "--data '%s' --index hnsw --m 16 --ef-construction %d --ef 64 --filter-selectivity 0.001,0.01,0.1,0.5 "
             "--json%s", dir, sanitized() ? 60 : 200, hnswlib ? " --peers hnswlib" : "");
    run_result r = run_bench(args);
    ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
    static const double sels[] = {0.001, 0.01, 0.1, 0.5};
    unsigned seen[4] = {0, 0, 0, 0}, unfiltered = 0;
    char *save = NULL, *copy = strdup(r.out);
    ck_assert_ptr_nonnull(copy);
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(line, 0, NULL);
        ck_assert_msg(o != NULL, "not JSON: %s", line);
        json_t *sel = json_object_get(o, "selectivity");
        const char *mode = json_string_value(json_object_get(o, "mode"));
        const char *lib = json_string_value(json_object_get(o, "library"));
        ck_assert_msg(json_is_number(sel) && mode && lib, "row lacks selectivity/mode: %s", line);
        ck_assert_msg(json_integer_value(json_object_get(o, "violations")) == 0, "violations: %s", line);
        double recall = json_number_value(json_object_get(o, "recall"));
        ck_assert_msg(recall >= 0.9 && recall <= 1.0, "recall %.4f: %s", recall, line);
        ck_assert_msg(json_number_value(json_object_get(o, "qps")) > 0, "qps: %s", line);
        double sv = json_number_value(sel);
        if (sv == 1.0) {
            ck_assert_msg(strcmp(mode, "unfiltered") == 0 || strcmp(mode, "db") == 0, "%s", line);
            unfiltered++;
        } else {
            size_t i = 0;
            while (i < 4 && fabs(sv - sels[i]) > 1e-12) i++;
            ck_assert_msg(i < 4, "unexpected selectivity: %s", line);
            unsigned bit = strcmp(mode, "db-filter") == 0 ? 1u : strcmp(mode, "bitset") == 0 ? 2u
                         : strcmp(mode, "filter") == 0 && strcmp(lib, "hnswlib") == 0 ? 4u : 0u;
            ck_assert_msg(bit != 0, "unexpected mode: %s", line);
            seen[i] |= bit;
        }
        json_decref(o);
    }
    free(copy);
    ck_assert_uint_eq(unfiltered, 2u + (unsigned)hnswlib);
    for (size_t i = 0; i < 4; i++) ck_assert_uint_eq(seen[i], hnswlib ? 7u : 3u);
    run_free(&r);
    /* A bad selectivity list is a usage error. */
    snprintf(args, sizeof args, "--data '%s' --index hnsw --filter-selectivity 0.1,1.5", dir);
    expect_failure(args, 2, "--filter-selectivity");
    snprintf(args, sizeof args, "--data '%s' --index hnsw --filter-selectivity 0", dir);
    expect_failure(args, 2, "--filter-selectivity");
}
END_TEST

START_TEST(test_plot)
{
    char args[2048], png[1024];
    unsigned char magic[8] = {0};
    if (!have_bench()) return;
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        test_skip(TEST_SKIP_MISSING, "bench: gnuplot missing (Debian package gnuplot-nox): plot test");
        return;
    }
    char *dir = make_dataset(300, 10, 8, 10, QV_METRIC_L2);
    snprintf(png, sizeof png, "%s/plot.png", dir);
    snprintf(args, sizeof args, "--data '%s' --index flat --plot '%s'", dir, png);
    run_result r = run_bench(args);
    ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
    FILE *f = fopen(png, "rb");
    ck_assert_msg(f != NULL, "no %s", png);
    ck_assert_int_eq(fread(magic, 1, 8, f), 8);
    fclose(f);
    ck_assert(memcmp(magic, "\x89PNG\r\n\x1a\n", 8) == 0);
    /* The text table has a header and one row. */
    ck_assert_msg(strncmp(r.out, "library", 7) == 0, "%s", r.out);
    run_free(&r);
    rm_rf(dir);
    free(dir);
}
END_TEST

Suite *qv_bench_suite(void)
{
    Suite *s = suite_create("bench");
    TCase *tc = tcase_create("bench");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_flat_siftsmall);
    tcase_add_test(tc, test_flat_generated_threads_and_metric);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_bad_files);
    tcase_add_test(tc, test_subset_and_reload);
    tcase_add_test(tc, test_index_cache);
    tcase_add_test(tc, test_hnsw_siftsmall);
    tcase_add_test(tc, test_filter_siftsmall);
    tcase_add_test(tc, test_plot);
    suite_add_tcase(s, tc);
    return s;
}

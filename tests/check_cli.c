/*
 * tests/check_cli.c -- the `quiver` command-line tool, run as a real process: every
 * command, its --help, and the error paths (bad file, wrong dim, unknown collection, bad
 * flags) with their exit codes (0 ok, 1 runtime, 2 usage), and a kill -9 in the middle
 * of an import (whole batches survive, nothing else).
 */
#include <check.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/test_util.h"

static char *tmp;                  /* per-test temporary directory */
static char out_buf[1 << 16], err_buf[1 << 14];

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = '\0';
    if (f) fclose(f);
}

/* Run build/quiver with a NULL-terminated argument list; stdout/stderr land in out_buf /
 * err_buf. Returns the exit status (or 128+signal). */
static int quiver(const char *arg, ...)
{
    const char *argv[32];
    char bin[512], outp[4096], errp[4096];
    va_list ap;
    int n = 0;
    snprintf(bin, sizeof bin, "%s/quiver", build_dir());
    argv[n++] = bin;
    va_start(ap, arg);
    for (const char *a = arg; a && n < 31; a = va_arg(ap, const char *)) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    snprintf(outp, sizeof outp, "%s/stdout", tmp);
    snprintf(errp, sizeof errp, "%s/stderr", tmp);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fo = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600), fe = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fo < 0 || fe < 0) _exit(126);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    slurp(outp, out_buf, sizeof out_buf);
    slurp(errp, err_buf, sizeof err_buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void setup(void) { tmp = make_tmpdir("qv-cli"); }
static void teardown(void) { rm_rf(tmp); free(tmp); tmp = NULL; }

static void path_in_tmp(char *buf, size_t len, const char *name) { snprintf(buf, len, "%s/%s", tmp, name); }

/* A 4-d fvecs file of n rows: row i = (i, 0, 0, 0) + 1 in the last component. */
static void write_fvecs(const char *path, size_t n, int dim)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < n; i++) {
        fwrite(&dim, 4, 1, f);
        for (int j = 0; j < dim; j++) {
            float x = j == 0 ? (float)i : j == dim - 1 ? 1.0f : 0.0f;
            fwrite(&x, 4, 1, f);
        }
    }
    fclose(f);
}

START_TEST(test_help_on_every_command)
{
    const char *cmds[] = {"create", "update", "import", "search", "get", "delete", "info", "checkpoint", "backup",
                          "restore", "verify-backup"};
    ck_assert_int_eq(quiver("--help", NULL), 0);
    ck_assert_ptr_nonnull(strstr(out_buf, "import"));
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        ck_assert_int_eq(quiver(cmds[i], "--help", NULL), 0);
        ck_assert_msg(strstr(out_buf, "usage: quiver"), "%s --help printed: %s", cmds[i], out_buf);
    }
    ck_assert_int_eq(quiver("frobnicate", NULL), 2);
    ck_assert_ptr_nonnull(strstr(err_buf, "unknown command"));
    ck_assert_int_eq(quiver(NULL), 2);
}
END_TEST

START_TEST(test_create_import_search_get_delete)
{
    char db[4096], vf[4096];
    path_in_tmp(db, sizeof db, "db");
    path_in_tmp(vf, sizeof vf, "v.fvecs");
    write_fvecs(vf, 50, 4);
    ck_assert_int_eq(quiver("create", db, "pts", "--dim", "4", "--metric", "l2", "--index", "hnsw", NULL), 0);
    ck_assert_int_eq(quiver("import", db, "pts", vf, "--quiet", NULL), 0);
    ck_assert_int_eq(quiver("info", db, "pts", NULL), 0);
    ck_assert_msg(strstr(out_buf, "points 50"), "info: %s", out_buf);
    ck_assert_int_eq(quiver("info", db, NULL), 0);
    ck_assert_ptr_nonnull(strstr(out_buf, "collection pts"));
    ck_assert_int_eq(quiver("info", db, "pts", "--json", NULL), 0);   /* the server's info object */
    ck_assert_msg(strstr(out_buf, "{\"name\":\"pts\",\"dim\":4,\"metric\":\"l2\",\"index\":{\"type\":") &&
                  strstr(out_buf, "\"count\":50,"), "info --json: %s", out_buf);

    /* Nearest to (7.2, 0, 0, 1) is id 7, then 8 and 6. */
    ck_assert_int_eq(quiver("search", db, "pts", "--vector", "[7.2,0,0,1]", "-k", "3", "--json", NULL), 0);
    ck_assert_msg(strstr(out_buf, "{\"hits\":[{\"id\":7,"), "search: %s", out_buf);
    ck_assert_int_eq(quiver("search", db, "pts", "--vector", "[7.2,0,0,1]", "-k", "2", NULL), 0);
    ck_assert_msg(strncmp(out_buf, "1\t7\t", 4) == 0, "search plain: %s", out_buf);
    ck_assert_int_eq(quiver("search", db, "pts", "--query-file", vf, "-k", "1", NULL), 0);

    ck_assert_int_eq(quiver("get", db, "pts", "7", NULL), 0);
    ck_assert_msg(strstr(out_buf, "{\"id\":7,\"payload\":null,\"vector\":[7.0,0.0,0.0,1.0]}\n"), "get: %s", out_buf);
    ck_assert_int_eq(quiver("delete", db, "pts", "7", "1000", NULL), 0);
    ck_assert_ptr_nonnull(strstr(out_buf, "deleted 1 of 2"));
    ck_assert_int_eq(quiver("get", db, "pts", "7", NULL), 1);
    ck_assert_ptr_nonnull(strstr(err_buf, "no point 7"));
    ck_assert_int_eq(quiver("search", db, "pts", "--vector", "[7.2,0,0,1]", "-k", "1", "--json", NULL), 0);
    ck_assert_msg(strstr(out_buf, "\"id\":7,") == NULL, "deleted point returned: %s", out_buf);
    ck_assert_int_eq(quiver("checkpoint", db, "pts", NULL), 0);
}
END_TEST

/* --quant at create (shown by info), --oversampling, --no-rescore and --explore at search. */
START_TEST(test_quantized_collection)
{
    char db[4096], vf[4096];
    path_in_tmp(db, sizeof db, "db");
    path_in_tmp(vf, sizeof vf, "v.fvecs");
    write_fvecs(vf, 300, 4);
    ck_assert_int_eq(quiver("create", db, "q", "--dim", "4", "--quant", "pq", NULL), 2);
    ck_assert_msg(strstr(err_buf, "quant"), "stderr: %s", err_buf);
    /* Flat and IVF indexes take codes too. */
    ck_assert_int_eq(quiver("create", db, "fq", "--dim", "4", "--index", "flat", "--quant", "sq4", NULL), 0);
    ck_assert_int_eq(quiver("import", db, "fq", vf, "--quiet", NULL), 0);
    ck_assert_int_eq(quiver("search", db, "fq", "--vector", "[7,0,0,1]", "-k", "3", "--json", NULL), 0);
    ck_assert_msg(strstr(out_buf, "{\"hits\":[{\"id\":7,\"score\":0"), "search: %s", out_buf);
    ck_assert_int_eq(quiver("create", db, "q", "--dim", "4", "--quant", "sq8", NULL), 0);
    ck_assert_int_eq(quiver("import", db, "q", vf, "--quiet", NULL), 0);
    ck_assert_int_eq(quiver("info", db, "q", NULL), 0);
    ck_assert_msg(strstr(out_buf, "codes sq8"), "info: %s", out_buf);
    ck_assert_int_eq(quiver("search", db, "q", "--vector", "[7,0,0,1]", "-k", "3", "--oversampling", "2.5", "--json", NULL), 0);
    ck_assert_msg(strstr(out_buf, "{\"hits\":[{\"id\":7,\"score\":0"), "search: %s", out_buf);
    ck_assert_int_eq(quiver("search", db, "q", "--vector", "[7,0,0,1]", "-k", "3", "--no-rescore", NULL), 0);
    /* --explore: taken by sq8 and ignored (bit1: test_search_explore) */
    static char plain[sizeof out_buf];
    ck_assert_int_eq(quiver("search", db, "q", "--vector", "[7,0.5,0,1]", "-k", "5", NULL), 0);
    memcpy(plain, out_buf, sizeof plain);
    ck_assert_int_eq(quiver("search", db, "q", "--vector", "[7,0.5,0,1]", "-k", "5", "--explore", "2", NULL), 0);
    ck_assert_str_eq(out_buf, plain);
    ck_assert_int_eq(quiver("search", db, "q", "--vector", "[7,0,0,1]", "--oversampling", "0.5", NULL), 2);
    ck_assert_msg(strstr(err_buf, "oversampling"), "stderr: %s", err_buf);

    /* update: the codes changed and dropped on the collection as it stands */
    ck_assert_int_eq(quiver("update", db, "q", "--quant", "bit1", "--m", "8", NULL), 0);
    ck_assert_int_eq(quiver("info", db, "q", NULL), 0);
    ck_assert_msg(strstr(out_buf, "codes bit1") && strstr(out_buf, "m 8,"), "info: %s", out_buf);
    ck_assert_int_eq(quiver("search", db, "q", "--vector", "[7,0,0,1]", "-k", "3", "--json", NULL), 0);
    ck_assert_msg(strstr(out_buf, "{\"hits\":[{\"id\":7,\"score\":0"), "search after update: %s", out_buf);
    ck_assert_int_eq(quiver("update", db, "q", "--quant", "none", NULL), 0);
    ck_assert_int_eq(quiver("info", db, "q", NULL), 0);
    ck_assert_msg(!strstr(out_buf, "codes"), "info: %s", out_buf);
    ck_assert_int_eq(quiver("search", db, "q", "--vector", "[7,0,0,1]", "-k", "3", "--no-rescore", "--json", NULL), 0);
    ck_assert_msg(strstr(out_buf, "{\"hits\":[{\"id\":7,\"score\":0"), "float search: %s", out_buf);
    ck_assert_int_eq(quiver("update", db, "q", NULL), 2);
    ck_assert_msg(strstr(err_buf, "nothing to change"), "stderr: %s", err_buf);
    ck_assert_int_eq(quiver("update", db, "q", "--quant", "pq", NULL), 2);
    ck_assert_int_ne(quiver("update", db, "nope", "--quant", "sq8", NULL), 0);
}
END_TEST

/* rows vectors of dim floats into an fvecs file */
static void write_rows(const char *path, const float *v, size_t rows, int dim)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < rows; i++) {
        fwrite(&dim, 4, 1, f);
        fwrite(v + i * (size_t)dim, 4, (size_t)dim, f);
    }
    fclose(f);
}

/* The ids of `quiver search` plain output ("rank id score" lines, a blank line between
 * queries) into nq rows of k (UINT64_MAX where missing). */
static void parse_hits(const char *out, size_t nq, size_t k, uint64_t *ids)
{
    for (size_t i = 0; i < nq * k; i++) ids[i] = UINT64_MAX;
    size_t q = 0;
    for (const char *p = out; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
        unsigned long rank;
        unsigned long long id;
        if (*p == '\n') q++;
        else if (sscanf(p, "%lu\t%llu", &rank, &id) == 2 && q < nq && rank >= 1 && rank <= k) ids[q * k + rank - 1] = id;
    }
    ck_assert_uint_eq(q + 1, nq);
}

/* --explore reaches a bit1 hnsw walk: 2,000 x 64 uniform vectors, M 16 efC 200, 40 queries
 * at --ef 16, recall@10 against a double-precision brute force, measured 0.38 -> 0.98
 * (2026-12-06, every query changed): explore 1 must find more and change some answers.
 * Out of 0..4 or not a number is a usage error (exit 2). */
START_TEST(test_search_explore)
{
    enum { NB = 2000, D = 64, NQ = 40, K = 10 };
    char db[4096], bf[4096], qf[4096];
    path_in_tmp(db, sizeof db, "db");
    path_in_tmp(bf, sizeof bf, "b.fvecs");
    path_in_tmp(qf, sizeof qf, "q.fvecs");
    float *base = random_vectors(NB, D, 41), *queries = random_vectors(NQ, D, 42);
    uint64_t truth[NQ * K], ids0[NQ * K], ids1[NQ * K];
    ref_knn(base, NB, D, queries, NQ, K, QV_METRIC_L2, truth);
    write_rows(bf, base, NB, D);
    write_rows(qf, queries, NQ, D);
    ck_assert_int_eq(quiver("create", db, "b", "--dim", "64", "--quant", "bit1", "--m", "16", "--ef-construction", "200",
                            NULL), 0);
    ck_assert_int_eq(quiver("import", db, "b", bf, "--quiet", NULL), 0);
    ck_assert_int_eq(quiver("search", db, "b", "--query-file", qf, "--ef", "16", NULL), 0);
    parse_hits(out_buf, NQ, K, ids0);
    ck_assert_int_eq(quiver("search", db, "b", "--query-file", qf, "--ef", "16", "--explore", "1", NULL), 0);
    parse_hits(out_buf, NQ, K, ids1);
    double r0 = recall_at_k(ids0, NULL, K, truth, K, NQ, K), r1 = recall_at_k(ids1, NULL, K, truth, K, NQ, K);
    size_t differ = 0;
    for (size_t i = 0; i < NQ; i++) differ += memcmp(ids0 + i * K, ids1 + i * K, K * sizeof *ids0) != 0;
    printf("cli bit1 ef 16: recall@10 %.4f, with --explore 1 %.4f (%zu of %d queries differ)\n", r0, r1, differ, NQ);
    ck_assert_msg(r1 >= r0 + 0.1, "--explore 1: recall %.4f, without %.4f", r1, r0);
    ck_assert_uint_gt(differ, 0);
    ck_assert_int_eq(quiver("search", db, "b", "--query-file", qf, "--ef", "16", "--explore", "0.25", NULL), 0);
    static const char *const bad[] = {"-0.5", "4.5", "nan", "inf", "x", "1x", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(quiver("search", db, "b", "--vector", "[1]", "--explore", bad[i], NULL), 2);
        ck_assert_msg(strstr(err_buf, "--explore must be 0..4"), "--explore '%s': %s", bad[i], err_buf);
    }
    ck_assert_int_eq(quiver("search", "--help", NULL), 0);
    ck_assert_msg(strstr(out_buf, "[--explore X]"), "usage: %s", out_buf);
    free(base);
    free(queries);
}
END_TEST

START_TEST(test_import_jsonl_with_payloads)
{
    char db[4096], jf[4096];
    path_in_tmp(db, sizeof db, "db");
    path_in_tmp(jf, sizeof jf, "p.jsonl");
    FILE *f = fopen(jf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "{\"id\":10,\"vector\":[1,0,0],\"payload\":{\"lang\":\"en\"}}\n\n");
    fprintf(f, "{\"vector\":[0,1,0]}\n");
    fprintf(f, "{\"id\":20,\"vector\":[0,0,1],\"payload\":{\"lang\":\"fr\"}}\n");
    fclose(f);
    ck_assert_int_eq(quiver("create", db, "docs", "--dim", "3", "--metric", "cosine", "--index", "flat", NULL), 0);
    ck_assert_int_eq(quiver("import", db, "docs", jf, "--quiet", NULL), 0);
    ck_assert_int_eq(quiver("get", db, "docs", "11", NULL), 0);   /* sequential after 10 */
    ck_assert_msg(strstr(out_buf, "\"payload\":null"), "get 11: %s", out_buf);
    ck_assert_int_eq(quiver("search", db, "docs", "--vector", "[0,0,2]", "-k", "1", "--with-payload", "--json", NULL), 0);
    ck_assert_msg(strstr(out_buf, "\"id\":20") && strstr(out_buf, "\"fr\""), "search: %s", out_buf);
}
END_TEST

START_TEST(test_error_paths)
{
    char db[4096], vf[4096], bad[4096], jf[4096];
    path_in_tmp(db, sizeof db, "db");
    path_in_tmp(vf, sizeof vf, "v5.fvecs");
    path_in_tmp(bad, sizeof bad, "bad.fvecs");
    path_in_tmp(jf, sizeof jf, "bad.jsonl");
    write_fvecs(vf, 3, 5);
    FILE *f = fopen(bad, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite("\x04\x00\x00\x00\x00\x00", 1, 6, f);      /* truncated record */
    fclose(f);
    f = fopen(jf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "{\"id\":1,\"vector\":[1,2]}\n");
    fclose(f);

    ck_assert_int_eq(quiver("create", db, "c", NULL), 2);                        /* --dim missing */
    ck_assert_int_eq(quiver("create", db, "c", "--dim", "0", NULL), 2);
    ck_assert_int_eq(quiver("create", db, "c", "--dim", "4", "--metric", "manhattan", NULL), 2);
    ck_assert_int_eq(quiver("create", db, "c", "--dim", "4", "--bogus", NULL), 2);
    ck_assert_int_eq(quiver("create", db, "c", "--dim", "4", NULL), 0);
    ck_assert_int_eq(quiver("create", db, "c", "--dim", "4", NULL), 1);          /* exists */
    ck_assert_int_eq(quiver("create", db, "../evil", "--dim", "4", NULL), 1);    /* bad name */
    ck_assert_int_eq(quiver("import", db, "c", vf, "--quiet", NULL), 1);          /* wrong dim */
    ck_assert_ptr_nonnull(strstr(err_buf, "dimension"));
    ck_assert_int_eq(quiver("import", db, "c", bad, "--quiet", NULL), 1);         /* truncated */
    ck_assert_ptr_nonnull(strstr(err_buf, "QV_ECORRUPT"));
    ck_assert_int_eq(quiver("import", db, "c", jf, "--quiet", NULL), 1);          /* jsonl wrong dim */
    ck_assert_int_eq(quiver("import", db, "c", "/nonexistent.fvecs", "--quiet", NULL), 1);
    ck_assert_int_eq(quiver("import", db, "c", "data.txt", NULL), 2);             /* unknown type */
    ck_assert_int_eq(quiver("import", db, "nope", vf, "--quiet", NULL), 1);       /* unknown coll */
    ck_assert_ptr_nonnull(strstr(err_buf, "no collection 'nope'"));
    ck_assert_int_eq(quiver("search", db, "c", "--vector", "[1,2,3]", NULL), 1);  /* wrong dim */
    ck_assert_int_eq(quiver("search", db, "c", "--vector", "[1,2,x]", NULL), 2);
    ck_assert_int_eq(quiver("search", db, "c", "--vector", "[1,2,3,4]", "-k", "0", NULL), 2);
    ck_assert_int_eq(quiver("search", db, "c", NULL), 2);                         /* no query */
    ck_assert_int_eq(quiver("search", db, "nope", "--vector", "[1,2,3,4]", NULL), 1);
    ck_assert_int_eq(quiver("get", db, "c", "abc", NULL), 2);
    ck_assert_int_eq(quiver("delete", db, "c", NULL), 2);
    ck_assert_int_eq(quiver("info", NULL), 2);
    ck_assert_int_eq(quiver("checkpoint", db, "nope", NULL), 1);
}
END_TEST

/* kill -9 in the middle of `quiver import`: the database reopens, and holds exactly the
 * batches committed before the kill -- a whole number of batches, ids 0..count-1 (batches
 * commit in file order), each point with its own vector; none half there. */
START_TEST(test_import_killed)
{
    char db[4096], vf[4096], bin[512], cnt[32];
    const size_t n = 40000, batch = 250;
    const int dim = 8;
    path_in_tmp(db, sizeof db, "db");
    path_in_tmp(vf, sizeof vf, "v.fvecs");
    write_fvecs(vf, n, dim);
    ck_assert_int_eq(quiver("create", db, "k", "--dim", "8", "--metric", "l2", "--index", "hnsw", NULL), 0);
    snprintf(bin, sizeof bin, "%s/quiver", build_dir());
    snprintf(cnt, sizeof cnt, "%zu", batch);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); }
        execl(bin, bin, "import", db, "k", vf, "--batch", cnt, "--quiet", (char *)NULL);
        _exit(127);
    }
    usleep(sanitized() ? 1500000 : 400000);
    kill(pid, SIGKILL);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    qv_db *d = NULL;
    qv_coll *c = NULL;
    qv_collection_info info;
    QV_CK(qv_db_open(db, NULL, &d));
    QV_CK(qv_collection_open(d, "k", &c));
    QV_CK(qv_collection_get_info(c, &info));
    fprintf(stderr, "cli: import killed after %zu of %zu points (%s)\n", info.count, n,
            WIFSIGNALED(st) ? "mid-import" : "it had finished");
    ck_assert_uint_eq(info.count % batch, 0);
    float v[8];
    for (size_t i = 0; i < info.count; i += 7) {
        QV_CK(qv_get(c, i, v, NULL));
        ck_assert(v[0] == (float)i && v[7] == 1.0f);
    }
    if (info.count) QV_CK(qv_get(c, info.count - 1, v, NULL));
    if (info.count < n) QV_CK_FAIL(qv_get(c, info.count, v, NULL), QV_ENOTFOUND);
    qv_search_params sp;
    qv_search_params_init(&sp, 1);
    qv_hit h;
    size_t nh = 0;
    float q[8] = {(float)(info.count / 2), 0, 0, 0, 0, 0, 0, 1};
    QV_CK(qv_search(c, q, &sp, &h, &nh));
    if (info.count) ck_assert(nh == 1 && h.id == info.count / 2);
    QV_CK(qv_db_close(d));
}
END_TEST

/* quiver backup / verify-backup / restore (issue 20): a round trip, the printed SHA-256
 * (sha256sum's line), and the refusals with their exit codes. */
START_TEST(test_backup_restore)
{
    char db[4096], db2[4096], vf[4096], bk[4096], bad[4096], hex[80], cmd[12288];
    path_in_tmp(db, sizeof db, "db");
    path_in_tmp(db2, sizeof db2, "db2");
    path_in_tmp(vf, sizeof vf, "v.fvecs");
    path_in_tmp(bk, sizeof bk, "pts.snapshot");
    path_in_tmp(bad, sizeof bad, "bad.snapshot");
    write_fvecs(vf, 300, 4);
    ck_assert_int_eq(quiver("create", db, "pts", "--dim", "4", "--metric", "l2", NULL), 0);
    ck_assert_int_eq(quiver("import", db, "pts", vf, "--quiet", NULL), 0);
    ck_assert_int_eq(quiver("backup", db, "pts", bk, NULL), 0);
    ck_assert_msg(sscanf(out_buf, "%64s", hex) == 1 && strlen(hex) == 64, "backup printed: %s", out_buf);
    snprintf(cmd, sizeof cmd, "cd '%s' && printf '%%s' '%.4200s' | sha256sum -c --status", tmp, out_buf);
    ck_assert_msg(system(cmd) == 0, "the printed line does not check with sha256sum -c: %s", out_buf);
    ck_assert_int_eq(quiver("verify-backup", bk, "--sha256", hex, NULL), 0);
    ck_assert_ptr_nonnull(strstr(out_buf, "ok: 1 collection(s), 300 points"));
    ck_assert_int_eq(quiver("restore", db2, bk, "--sha256", hex, NULL), 0);
    ck_assert_msg(strstr(out_buf, "restored 1 collection(s), 300 points; 1 index(es) loaded"), "%s", out_buf);
    ck_assert_int_eq(quiver("search", db2, "pts", "--vector", "[7.2,0,0,1]", "-k", "1", "--json", NULL), 0);
    ck_assert_msg(strstr(out_buf, "{\"hits\":[{\"id\":7,"), "search: %s", out_buf);
    /* again: it exists; with --replace and under another name it goes */
    ck_assert_int_eq(quiver("restore", db2, bk, NULL), 1);
    ck_assert_ptr_nonnull(strstr(err_buf, "already exists"));
    ck_assert_int_eq(quiver("restore", db2, bk, "--replace", NULL), 0);
    ck_assert_int_eq(quiver("restore", db2, bk, "--as", "copy", NULL), 0);
    ck_assert_int_eq(quiver("info", db2, "copy", NULL), 0);
    ck_assert_ptr_nonnull(strstr(out_buf, "points 300"));
    /* the whole database */
    ck_assert_int_eq(quiver("backup", db2, bk, NULL), 0);
    ck_assert_int_eq(quiver("verify-backup", bk, NULL), 0);
    ck_assert_ptr_nonnull(strstr(out_buf, "ok: 2 collection(s), 600 points"));
    /* refusals: a damaged file, a wrong checksum, bad usage */
    snprintf(cmd, sizeof cmd, "head -c 500 '%s' > '%s'", bk, bad);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(quiver("verify-backup", bad, NULL), 1);
    ck_assert_ptr_nonnull(strstr(err_buf, "QV_ECORRUPT"));
    ck_assert_int_eq(quiver("restore", db2, bad, "--replace", NULL), 1);
    ck_assert_ptr_nonnull(strstr(err_buf, "truncated"));
    ck_assert_int_eq(quiver("restore", db2, bk, "--replace", "--sha256", hex, NULL), 1);
    ck_assert_ptr_nonnull(strstr(err_buf, "not the expected"));
    ck_assert_int_eq(quiver("backup", db, "nope", bk, NULL), 1);
    ck_assert_int_eq(quiver("backup", db, NULL), 2);
    ck_assert_int_eq(quiver("restore", db2, NULL), 2);
    ck_assert_int_eq(quiver("restore", db2, bk, "--bogus", NULL), 2);
}
END_TEST

Suite *qv_cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_help_on_every_command);
    tcase_add_test(tc, test_create_import_search_get_delete);
    tcase_add_test(tc, test_import_jsonl_with_payloads);
    tcase_add_test(tc, test_quantized_collection);
    tcase_add_test(tc, test_search_explore);
    tcase_add_test(tc, test_error_paths);
    tcase_add_test(tc, test_import_killed);
    tcase_add_test(tc, test_backup_restore);
    suite_add_tcase(s, tc);
    return s;
}

/*
 * bench/bench_main.c -- quiver-bench: ANN recall / QPS / latency measurement in the style
 * of ann-benchmarks, with hnswlib and Faiss measured side by side in the same process on
 * the same data, parameters and threads (contract: DESIGN.md, "quiver-bench contract").
 *
 * Flow: parse arguments -> load and cross-check the dataset -> print the machine header
 * on stderr -> build every engine -> sweep the search settings with the engines taking
 * turns, one row per engine and setting -> optional plot. With --filter-selectivity a
 * Quiver collection is built too and the sweep repeats per selectivity (bench_filter.c). Exit 0 on success, 2 on a bad command line, 1 on bad files or failures.
 *
 * With --peers faiss and OMP_WAIT_POLICY unset, the process restarts itself once with
 * OMP_WAIT_POLICY=PASSIVE (Faiss's best setting on a small machine; see main()). Set the
 * variable yourself (e.g. ACTIVE) to measure another setting.
 */
#include "bench/bench.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

static const char *dataset_name(const char *dir)
{
    static char buf[256];
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/') start--;
    snprintf(buf, sizeof buf, "%.*s", (int)(len - start), dir + start);
    return buf;
}

int main(int argc, char **argv)
{
    bench_opts o;
    bench_data d;
    bench_row *rows = NULL;
    const bench_engine_ops *engines[5];
    bench_built built[5];
    uint32_t *buckets = NULL;
    size_t n_engines = 0, n_rows = 0;
    char err[1024] = "";
    int status = BENCH_EXIT_RUNTIME;

    memset(&d, 0, sizeof d);
    memset(built, 0, sizeof built);
    bench_opts_init(&o);
    int rc = bench_parse_args(argc, argv, &o);
    if (rc == 3) return 0;                              /* --help */
    if (rc != 0) return rc;
    if (bench_select_engines(&o, engines, sizeof engines / sizeof engines[0], &n_engines, err, sizeof err) != 0) {
        fprintf(stderr, "quiver-bench: %s\n", err);
        return BENCH_EXIT_USAGE;
    }
    if (n_engines == 0) {
        fprintf(stderr, "quiver-bench: nothing to measure (--peers-only, and no requested peer supports --index %s)\n",
                qv_index_kind_name(o.kind));
        return BENCH_EXIT_USAGE;
    }
    if ((o.peers & BENCH_PEER_FAISS) && !getenv("OMP_WAIT_POLICY")) {
        /* libgomp reads OMP_WAIT_POLICY once, when it is loaded: to give Faiss its best
         * setting the process has to start again with it. Spinning OpenMP workers (the
         * default) take the cores from OpenBLAS's threads during Faiss's GEMM-based batch
         * search: 1367 vs 4290 QPS on 2 cores (sift-debian-100k flat, 2 threads). */
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
        setenv("QV_BENCH_SET_OMP_WAIT_POLICY", "1", 1);
        execv("/proc/self/exe", argv);
        fprintf(stderr, "quiver-bench: note: could not restart with OMP_WAIT_POLICY=PASSIVE (%s)\n", strerror(errno));
    }
    if (o.gpu && !qv_gpu_available()) {
        fprintf(stderr, "quiver-bench: --gpu: no usable GPU (quiver built without CUDA, or no device)\n");
        return BENCH_EXIT_RUNTIME;
    }
    if (o.plot_path && bench_plot_check(err, sizeof err) != 0) goto fail;
    if (bench_data_load(&o, &d, err, sizeof err) != 0) goto fail;
    if (o.n_sels) {
        /* Filter runs: a collection with payloads as well, right after the quiver index. */
        if (!o.no_quiver) {
            memmove(engines + 2, engines + 1, (n_engines - 1) * sizeof engines[0]);
            engines[1] = &bench_quiver_db_ops;
            n_engines++;
        }
        if (!(buckets = bench_filter_buckets(d.nb, 0x51f7e2ull))) {
            snprintf(err, sizeof err, "out of memory");
            goto fail;
        }
    }

    bench_print_header(stderr, &o, &d);
    for (size_t i = 0; i < n_engines; i++)
        fprintf(stderr, "# engine: %s\n", engines[i]->describe());
    bench_report_begin(stdout, &o);
    for (size_t i = 0; i < n_engines; i++)
        if (bench_build(engines[i], &o, &d, buckets, &built[i], err, sizeof err) != 0) goto fail;
    if (o.n_sels) {
        if (bench_filter_run(built, n_engines, &o, &d, buckets, &rows, &n_rows, err, sizeof err) != 0) goto fail;
    } else if (bench_sweep(built, n_engines, &o, &d, NULL, &rows, &n_rows, err, sizeof err) != 0) {
        goto fail;
    } else if (o.reload_dir) {
        /* The same settings again on the reloaded indexes (rows with reload_s), so one
         * build gives both curves: at 1M an index opened in place is searched through
         * 4 KiB file pages, a built one through the heap's (maybe huge) pages. */
        bench_built again[sizeof built / sizeof built[0]];
        size_t n_again = 0;
        for (size_t i = 0; i < n_engines; i++) {
            int got = bench_reload(&built[i], &o, err, sizeof err);
            if (got < 0) goto fail;
            if (got == 0) again[n_again++] = built[i];     /* a view: built[] still owns it */
        }
        if (n_again && bench_sweep(again, n_again, &o, &d, NULL, &rows, &n_rows, err, sizeof err) != 0) goto fail;
    }
    if (o.plot_path) {
        if (bench_plot(o.plot_path, rows, n_rows, &o, dataset_name(o.data_dir), err, sizeof err) != 0) goto fail;
        fprintf(stderr, "quiver-bench: plot written to %s\n", o.plot_path);
    }
    status = 0;
fail:
    if (status != 0) fprintf(stderr, "quiver-bench: %s\n", err[0] ? err : "failed");
    for (size_t i = 0; i < n_engines; i++) bench_built_release(&built[i]);
    bench_data_free(&d);
    free(buckets);
    free(rows);
    return status;
}

/*
 * bench/bench_sys.c -- facts about the machine and the process that a benchmark number
 * needs next to it: clock, resident memory, CPU model and cores, and which BLAS library
 * the process really runs on.
 *
 * The BLAS is read from /proc/self/maps rather than from the build: on Debian,
 * libblas.so.3 is an alternatives link that may point at the reference BLAS or at
 * OpenBLAS, and only the mapped file tells which one sgemm_ comes from. OpenBLAS's own
 * entry points (openblas_get_config, openblas_set_num_threads) are looked up with dlsym so
 * that the bench still runs on another BLAS.
 */
#include "bench/bench.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

long long bench_rss_bytes(void)
{
    long long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    int ok = fscanf(f, "%lld %lld", &size, &resident) == 2;
    fclose(f);
    return ok ? resident * (long long)sysconf(_SC_PAGESIZE) : -1;
}

unsigned bench_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1u;
}

/* "model name : AMD EPYC" from /proc/cpuinfo into buf. */
static void cpu_model(char *buf, size_t len)
{
    char line[512];
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *colon = strchr(line, ':');
        if (!colon) continue;
        colon++;
        while (*colon == ' ' || *colon == '\t') colon++;
        colon[strcspn(colon, "\n")] = '\0';
        snprintf(buf, len, "%s", colon);
        break;
    }
    fclose(f);
}

static int is_blas_file(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return strncmp(base, "libopenblas", 11) == 0 || strncmp(base, "libblas", 7) == 0 ||
           strncmp(base, "libmkl", 6) == 0 || strncmp(base, "libblis", 7) == 0 ||
           strncmp(base, "libflexiblas", 12) == 0 || strncmp(base, "libcblas", 8) == 0;
}

const char *bench_blas_library(void)
{
    static char result[1024];
    char line[4096], real[PATH_MAX];
    if (result[0]) return result;
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return result;
    while (fgets(line, sizeof line, f)) {
        char *path = strchr(line, '/');
        if (!path) continue;
        path[strcspn(path, "\n")] = '\0';
        if (!is_blas_file(path)) continue;
        const char *name = realpath(path, real) ? real : path;
        if (strstr(result, name)) continue;          /* one entry per file */
        size_t used = strlen(result), len = strlen(name);
        if (used + len + 3 > sizeof result) break;    /* keep what fits */
        if (used) {
            memcpy(result + used, ", ", 2);
            used += 2;
        }
        memcpy(result + used, name, len + 1);
    }
    fclose(f);
    /* The reference BLAS is a 10x slower GEMM: say so where it is read. */
    if (strstr(result, "/blas/libblas.so")) {
        size_t used = strlen(result);
        snprintf(result + used, sizeof result - used, " (REFERENCE BLAS, not OpenBLAS)");
    }
    return result;
}

int bench_set_blas_threads(int n)
{
    void (*set)(int) = NULL;
    *(void **)&set = dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
    if (!set) return 0;
    set(n);
    return 1;
}

static void env_line(FILE *f, const char *const *names, size_t n)
{
    fputs("# env:", f);
    for (size_t i = 0; i < n; i++) {
        const char *v = getenv(names[i]);
        fprintf(f, " %s=%s", names[i], v ? v : "(unset)");
    }
    fputc('\n', f);
}

void bench_print_header(FILE *f, const bench_opts *o, const bench_data *d)
{
    static const char *const env[] = {"OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT",
                                      "OPENBLAS_NUM_THREADS"};
    char model[256], date[64];
    time_t now = time(NULL);
    struct tm tm;
    const char *(*config)(void) = NULL;
    int (*get_threads)(void) = NULL;

    cpu_model(model, sizeof model);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&now, &tm));
    *(void **)&config = dlsym(RTLD_DEFAULT, "openblas_get_config");
    *(void **)&get_threads = dlsym(RTLD_DEFAULT, "openblas_get_num_threads");
    fprintf(f, "# quiver-bench %s, quiver %s\n", date, qv_version());
    fprintf(f, "# cpu: %s, %u cores online\n", model, bench_cpu_count());
    fprintf(f, "# blas: %s\n", bench_blas_library()[0] ? bench_blas_library() : "(none mapped)");
    if (config) fprintf(f, "# openblas: %s, %d threads\n", config(), get_threads ? get_threads() : -1);
    env_line(f, env, sizeof env / sizeof env[0]);
    if (getenv("QV_BENCH_SET_OMP_WAIT_POLICY"))
        fprintf(f, "# note: OMP_WAIT_POLICY=PASSIVE was set by quiver-bench for Faiss (export OMP_WAIT_POLICY "
                   "to choose another)\n");
    fprintf(f, "# gpu: %s\n", qv_gpu_available() ? "available" : "not available");
    if (d->nb < d->nb_file)
        fprintf(f, "# data: %s: %zu base (--subset: the first of %zu), %zu queries, dim %zu, metric %s (%s), "
                   "ground truth k %zu\n", o->data_dir, d->nb, d->nb_file, d->nq, d->dim, qv_metric_name(d->metric),
                d->metric_source, d->gt_k);
    else
        fprintf(f, "# data: %s: %zu base, %zu queries, dim %zu, metric %s (%s), ground truth k %zu\n",
                o->data_dir, d->nb, d->nq, d->dim, qv_metric_name(d->metric), d->metric_source, d->gt_k);
    fprintf(f, "# run: index %s, k %u, search threads %u, build threads %u, %s\n",
            qv_index_kind_name(o->kind), o->k, o->threads, o->build_threads ? o->build_threads : bench_cpu_count(),
            o->batch ? "batch (one call over all queries)" : "single queries");
}

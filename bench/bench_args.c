/*
 * bench/bench_args.c -- quiver-bench's command line: strict parsing (every number fully
 * consumed and range-checked, lists without empty items), one line on stderr and exit
 * code 2 for anything wrong, so that a typo never turns into a silently different run.
 */
#include "bench/bench.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void bench_opts_init(bench_opts *o)
{
    memset(o, 0, sizeof *o);
    o->kind = QV_INDEX_HNSW;
    o->metric = QV_METRIC_L2;
    o->m = 16;
    o->ef_construction = 200;
    o->efs[0] = 10; o->efs[1] = 20; o->efs[2] = 40; o->efs[3] = 80; o->efs[4] = 160;
    o->n_efs = 5;
    o->nprobes[0] = 1; o->nprobes[1] = 2; o->nprobes[2] = 4; o->nprobes[3] = 8;
    o->nprobes[4] = 16; o->nprobes[5] = 32;
    o->n_nprobes = 6;
    o->kmeans_iters = 20;
    o->k = 10;
    o->threads = 1;
    o->runs = 1;
}

void bench_usage(FILE *f)
{
    fputs("usage: quiver-bench --data DIR --index hnsw|ivf|flat [options]\n"
          "  DIR holds base.fvecs, query.fvecs, groundtruth.ivecs (TEXMEX) and optionally\n"
          "  README.md naming the metric (cosine/angular, inner product, else l2).\n"
          "options:\n"
          "  --metric l2|ip|cosine     override the metric from README.md\n"
          "  --m N                     hnsw links per node (16)\n"
          "  --ef-construction N       hnsw build beam (200)\n"
          "  --ef LIST                 hnsw search beams, e.g. 10,20,40,80,160 (default)\n"
          "  --nlist N                 ivf lists (default 4*sqrt(n))\n"
          "  --nprobe LIST             ivf lists probed (1,2,4,8,16,32)\n"
          "  --kmeans-iters N          ivf k-means iterations, same for every library (20)\n"
          "  --quant none|sq8|sq4|bit1 codes quiver searches on (none = float32)\n"
          "  --vec-type f32|u8|f16     vectors quiver keeps for exact distances (u8, f16: quantized\n"
          "                            hnsw; u8: data all integers 0..255; f16: values rounded\n"
          "                            to halves; default f32)\n"
          "  --explore X               bit1 hnsw: also follow neighbours whose estimate minus\n"
          "                            X error bounds could enter the beam (0..4, 0 = off)\n"
          "  --oversampling X          quantized: re-score the best ceil(k*X) candidates\n"
          "                            with the float vectors (default per code kind)\n"
          "  --no-rescore              quantized: return the estimated scores as they are\n"
          "  --k N                     neighbours per query, recall@k (10)\n"
          "  --threads N               search threads (1); single-query mode splits the\n"
          "                            queries over them, --batch gives them to the library\n"
          "  --build-threads N         build threads (default: all cores)\n"
          "  --batch                   one batch call over all queries instead of one by one\n"
          "  --runs N                  repeat each setting N times, report the median run (1)\n"
          "  --queries N               use only the first N queries\n"
          "  --subset N                index only the first N base vectors, scored against\n"
          "                            DIR/groundtruth-<N/1000>k.ivecs (N a multiple of 1000)\n"
          "  --reload DIR              save each index into DIR, load it back (timed, with the\n"
          "                            first search after it) and sweep the loaded one\n"
          "  --index-cache DIR         load each index from DIR when an earlier run saved one\n"
          "                            with the same data, size and build settings; else build\n"
          "                            it and save it there (sweeps without rebuilding at 1M)\n"
          "  --gpu                     quiver builds/searches on the GPU (required)\n"
          "  --peers hnswlib,faiss     also measure these libraries in the same process\n"
          "  --peers-only              skip quiver (measure only the peers)\n"
          "  --filter-selectivity LIST filtered search, e.g. 0.001,0.01,0.1,0.5: payloads\n"
          "                            {\"bucket\":b} (seeded permutation), recall against\n"
          "                            the filtered exact ground truth, per selectivity;\n"
          "                            quiver as a collection (payload filter) and index\n"
          "                            (allow bitset), hnswlib through its deletion marks\n"
          "  --json                    one JSON object per setting on stdout\n"
          "  --plot out.png            recall vs QPS plot through gnuplot\n",
          f);
}

/* Parse a whole decimal number in [min_val, max_val]; -1 on anything else. */
static int parse_u32(const char *s, uint32_t min_val, uint32_t max_val, uint32_t *out)
{
    char *end = NULL;
    if (!s || !isdigit((unsigned char)s[0])) return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0' || v < min_val || v > max_val) return -1;
    *out = (uint32_t)v;
    return 0;
}

int bench_parse_u32_list(const char *s, uint32_t *out, size_t cap, size_t *n, uint32_t min_val,
                         uint32_t max_val, char *err, size_t errlen)
{
    char item[32];
    size_t count = 0;
    const char *p = s;
    if (!s || !*s) { snprintf(err, errlen, "empty list"); return -1; }
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len >= sizeof item) {
            snprintf(err, errlen, "bad list '%s': %s item", s, len ? "overlong" : "empty");
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (count == cap) { snprintf(err, errlen, "list '%s' has more than %zu items", s, cap); return -1; }
        if (parse_u32(item, min_val, max_val, &out[count]) != 0) {
            snprintf(err, errlen, "bad list '%s': '%s' is not a number in %u..%u", s, item, min_val, max_val);
            return -1;
        }
        count++;
        if (!comma) break;
        p = comma + 1;
    }
    *n = count;
    return 0;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("quiver-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see --help)\n", stderr);
    va_end(ap);
    return BENCH_EXIT_USAGE;
}

static int parse_peers(const char *s, unsigned *out)
{
    char buf[128];
    unsigned peers = 0;
    if (!s || !*s || strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "hnswlib") == 0) peers |= BENCH_PEER_HNSWLIB;
        else if (strcmp(tok, "faiss") == 0) peers |= BENCH_PEER_FAISS;
        else return -1;
    }
    /* strtok_r skips empty items; reject them explicitly ("faiss,,hnswlib", ",faiss"). */
    if (s[0] == ',' || s[strlen(s) - 1] == ',' || strstr(s, ",,")) return -1;
    *out = peers;
    return peers ? 0 : -1;
}

/* "0.001,0.01,0.5": each a number in (0, 1]. */
static int parse_sels(const char *s, double *out, size_t cap, size_t *n)
{
    char buf[1024];
    size_t count = 0;
    if (!s || !*s || strlen(s) >= sizeof buf) return -1;
    if (s[0] == ',' || s[strlen(s) - 1] == ',' || strstr(s, ",,")) return -1;
    strcpy(buf, s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *end = NULL;
        if (count == cap || !(isdigit((unsigned char)tok[0]) || tok[0] == '.')) return -1;
        errno = 0;
        double v = strtod(tok, &end);
        if (errno || *end != '\0' || !(v > 0 && v <= 1)) return -1;
        out[count++] = v;
    }
    *n = count;
    return count ? 0 : -1;
}

typedef struct {
    const char *name;
    uint32_t *dst;
    uint32_t min_val, max_val;
} num_opt;

int bench_parse_args(int argc, char **argv, bench_opts *o)
{
    char err[256];
    uint32_t max_queries = 0;
    int have_index = 0;
    const num_opt nums[] = {
        {"--m", &o->m, 2, 100},
        {"--ef-construction", &o->ef_construction, 1, 100000},
        {"--nlist", &o->nlist, 1, 1u << 24},
        {"--kmeans-iters", &o->kmeans_iters, 1, 10000},
        {"--k", &o->k, 1, QV_MAX_K},
        {"--threads", &o->threads, 1, 1024},
        {"--build-threads", &o->build_threads, 1, 1024},
        {"--runs", &o->runs, 1, 1000},
        {"--queries", &max_queries, 1, UINT32_MAX},
        {"--subset", &o->subset, 1, UINT32_MAX},
    };

    for (int i = 1; i < argc; i++) {
        char namebuf[64];
        const char *arg = argv[i], *val = NULL;
        const char *eq = strchr(arg, '=');
        /* --name=value is accepted as well as --name value. */
        if (strncmp(arg, "--", 2) == 0 && eq && (size_t)(eq - arg) < sizeof namebuf) {
            memcpy(namebuf, arg, (size_t)(eq - arg));
            namebuf[eq - arg] = '\0';
            arg = namebuf;
            val = eq + 1;
        }
        /* Flags without a value. */
        int *flag = NULL;
        if (strcmp(arg, "--batch") == 0) flag = &o->batch;
        else if (strcmp(arg, "--gpu") == 0) flag = &o->gpu;
        else if (strcmp(arg, "--json") == 0) flag = &o->json;
        else if (strcmp(arg, "--peers-only") == 0) flag = &o->no_quiver;
        else if (strcmp(arg, "--no-rescore") == 0) flag = &o->no_rescore;
        else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) { bench_usage(stdout); return 3; }
        if (flag) {
            if (val) return usage_error("%s takes no value", arg);
            *flag = 1;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) return usage_error("unexpected argument '%s'", arg);
        if (!val) {
            if (i + 1 >= argc) return usage_error("%s needs a value", arg);
            val = argv[++i];
        }
        size_t j;
        for (j = 0; j < sizeof nums / sizeof nums[0]; j++) {
            if (strcmp(arg, nums[j].name) != 0) continue;
            if (parse_u32(val, nums[j].min_val, nums[j].max_val, nums[j].dst) != 0) {
                fprintf(stderr, "quiver-bench: %s must be a number in %u..%u, got '%s'\n", arg,
                        nums[j].min_val, nums[j].max_val, val);
                return BENCH_EXIT_USAGE;
            }
            break;
        }
        if (j < sizeof nums / sizeof nums[0]) continue;
        if (strcmp(arg, "--data") == 0) {
            if (!*val) return usage_error("--data needs a directory");
            o->data_dir = val;
        } else if (strcmp(arg, "--index") == 0) {
            if (qv_index_kind_parse(val, &o->kind) != QV_OK)
                return usage_error("unknown index '%s' (expected hnsw, ivf or flat)", val);
            have_index = 1;
        } else if (strcmp(arg, "--metric") == 0) {
            if (qv_metric_parse(val, &o->metric) != QV_OK)
                return usage_error("unknown metric '%s' (expected l2, ip or cosine)", val);
            o->metric_given = 1;
        } else if (strcmp(arg, "--ef") == 0) {
            if (bench_parse_u32_list(val, o->efs, BENCH_MAX_LIST, &o->n_efs, 1, 100000, err, sizeof err))
                return usage_error("--ef: %s", err);
        } else if (strcmp(arg, "--nprobe") == 0) {
            if (bench_parse_u32_list(val, o->nprobes, BENCH_MAX_LIST, &o->n_nprobes, 1, 1u << 24, err, sizeof err))
                return usage_error("--nprobe: %s", err);
        } else if (strcmp(arg, "--peers") == 0) {
            if (parse_peers(val, &o->peers) != 0)
                return usage_error("--peers: bad list '%s' (expected hnswlib, faiss or hnswlib,faiss)", val);
        } else if (strcmp(arg, "--filter-selectivity") == 0) {
            if (parse_sels(val, o->sels, BENCH_MAX_LIST, &o->n_sels) != 0)
                return usage_error("--filter-selectivity: bad list '%s' (numbers in (0, 1], e.g. 0.01,0.1)", val);
        } else if (strcmp(arg, "--reload") == 0) {
            if (!*val) return usage_error("--reload needs a directory");
            o->reload_dir = val;
        } else if (strcmp(arg, "--index-cache") == 0) {
            if (!*val) return usage_error("--index-cache needs a directory");
            o->index_cache = val;
        } else if (strcmp(arg, "--quant") == 0) {
            if (qv_quant_parse(val, &o->quant) != QV_OK)
                return usage_error("unknown --quant '%s' (expected none, sq8, sq4 or bit1)", val);
        } else if (strcmp(arg, "--vec-type") == 0) {
            if (qv_vec_type_parse(val, &o->vec_type) != QV_OK)
                return usage_error("unknown --vec-type '%s' (expected f32, u8 or f16)", val);
        } else if (strcmp(arg, "--oversampling") == 0) {
            char *end = NULL;
            double x = strtod(val, &end);
            if (!end || *end || !(x >= 1.0 && x <= 100.0))
                return usage_error("--oversampling must be a number in 1..100, got '%s'", val);
            o->oversampling = (float)x;
        } else if (strcmp(arg, "--explore") == 0) {
            char *end = NULL;
            double x = strtod(val, &end);
            if (!end || *end || !(x >= 0.0 && x <= QV_MAX_EXPLORE))
                return usage_error("--explore must be a number in 0..%g, got '%s'", (double)QV_MAX_EXPLORE, val);
            o->explore = (float)x;
        } else if (strcmp(arg, "--plot") == 0) {
            if (!*val) return usage_error("--plot needs a file name");
            o->plot_path = val;
        } else {
            return usage_error("unknown option '%s'", arg);
        }
    }
    if (!o->data_dir) return usage_error("--data DIR is required");
    if (!have_index) return usage_error("--index hnsw|ivf|flat is required");
    if (o->no_quiver && !o->peers) return usage_error("--peers-only needs --peers");
    o->max_queries = max_queries;
    return 0;
}

/*
 * bench/bench_report.c -- one line per search setting on stdout: an aligned text table,
 * or (--json) one JSON object per line that scripts and the plot read. Absent values
 * (ef for ivf, p50/p99 in batch mode) are JSON null, never a made-up number.
 */
#include "bench/bench.h"

#include <stdlib.h>
#include <string.h>

/* A JSON string literal of s (quotes, backslashes and control bytes escaped). */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static void json_u32_or_null(FILE *f, const char *key, uint32_t v)
{
    if (v) fprintf(f, ",\"%s\":%u", key, v);
    else fprintf(f, ",\"%s\":null", key);
}

static void json_double_or_null(FILE *f, const char *key, double v, int decimals)
{
    if (v >= 0) fprintf(f, ",\"%s\":%.*f", key, decimals, v);
    else fprintf(f, ",\"%s\":null", key);
}

void bench_report_begin(FILE *f, const bench_opts *o)
{
    if (o->json) return;
    fprintf(f, "%-8s %-5s %-24s %7s %4s %3s %8s %10s %9s %9s %8s %9s %9s %-6s\n", "library", "index", "params",
            o->kind == QV_INDEX_IVF ? "nprobe" : "ef", "k", "thr", "recall", "qps", "p50_us", "p99_us",
            "build_s", "mem_MiB", "srch_MiB", "mode");
    if (o->n_sels) fprintf(f, "%-10s %-10s %s\n", "sel", "filter", "violations");
}

static void report_text(FILE *f, const bench_opts *o, const bench_row *r)
{
    char params[40], setting[16], p50[16], p99[16], srch[16];
    const char *paren = strchr(r->name, '(');
    const char *close = paren ? strchr(paren, ')') : NULL;
    if (paren && close) snprintf(params, sizeof params, "%.*s", (int)(close - paren - 1), paren + 1);
    else snprintf(params, sizeof params, "-");
    if (r->ef) snprintf(setting, sizeof setting, "%u", r->ef);
    else if (r->nprobe) snprintf(setting, sizeof setting, "%u", r->nprobe);
    else snprintf(setting, sizeof setting, "-");
    if (r->p50_us >= 0) snprintf(p50, sizeof p50, "%.1f", r->p50_us);
    else snprintf(p50, sizeof p50, "-");
    if (r->p99_us >= 0) snprintf(p99, sizeof p99, "%.1f", r->p99_us);
    else snprintf(p99, sizeof p99, "-");
    if (r->memory_search_bytes) snprintf(srch, sizeof srch, "%.1f", (double)r->memory_search_bytes / (1024.0 * 1024.0));
    else snprintf(srch, sizeof srch, "-");
    fprintf(f, "%-8s %-5s %-24s %7s %4u %3u %8.4f %10.1f %9s %9s %8.2f %9.1f %9s %-6s\n", r->library, r->index,
            params, setting, r->k, r->threads, r->recall, r->qps, p50, p99, r->build_s,
            (double)r->memory_bytes / (1024.0 * 1024.0), srch, r->batch ? "batch" : "single");
    /* Filter runs: a second line per row, so the first keeps its columns. */
    if (o->n_sels) fprintf(f, "  %-8g %-10s %lld\n", r->selectivity, r->mode, r->violations);
}

static void report_json(FILE *f, const bench_opts *o, const bench_row *r)
{
    fputs("{\"library\":", f);
    json_string(f, r->library);
    fputs(",\"index\":", f);
    json_string(f, r->index);
    fputs(",\"name\":", f);
    json_string(f, r->name);
    fprintf(f, ",\"params\":%s", r->params_json);
    fputs(",\"dataset\":", f);
    json_string(f, o->data_dir);
    fputs(",\"metric\":", f);
    json_string(f, r->metric);
    fprintf(f, ",\"build_s\":%.3f,\"build_threads\":%u,\"memory_bytes\":%zu,\"memory_source\":", r->build_s,
            r->build_threads, r->memory_bytes);
    json_string(f, r->memory_source);
    if (r->memory_search_bytes)
        fprintf(f, ",\"memory_search_bytes\":%zu,\"memory_vectors_bytes\":%zu", r->memory_search_bytes,
                r->memory_vectors_bytes);
    else
        fputs(",\"memory_search_bytes\":null,\"memory_vectors_bytes\":null", f);
    fprintf(f, ",\"rss_delta_bytes\":%lld", r->rss_delta_bytes);
    json_u32_or_null(f, "ef", r->ef);
    json_u32_or_null(f, "nprobe", r->nprobe);
    fprintf(f, ",\"k\":%u,\"threads\":%u,\"batch\":%s,\"gpu\":%s,\"nq\":%zu,\"n\":%zu", r->k, r->threads,
            r->batch ? "true" : "false", r->gpu ? "true" : "false", r->nq, r->nb);
    fprintf(f, ",\"recall\":%.6f,\"qps\":%.2f", r->recall, r->qps);
    json_double_or_null(f, "p50_us", r->p50_us, 2);
    json_double_or_null(f, "p99_us", r->p99_us, 2);
    json_double_or_null(f, "batch_s", r->batch ? r->batch_s : -1, 6);
    if (o->reload_dir) {
        json_double_or_null(f, "reload_s", r->reload_s, 4);
        json_double_or_null(f, "first_search_s", r->first_search_s, 6);
    }
    if (o->n_sels) {
        fprintf(f, ",\"selectivity\":%g,\"mode\":", r->selectivity);
        json_string(f, r->mode);
        fprintf(f, ",\"violations\":%lld", r->violations);
    }
    fputs(",\"blas\":", f);
    json_string(f, bench_blas_library());
    const char *wait_policy = getenv("OMP_WAIT_POLICY");
    fputs(",\"omp_wait_policy\":", f);
    if (wait_policy) json_string(f, wait_policy);
    else fputs("null", f);
    fputs("}\n", f);
}

void bench_report_row(FILE *f, const bench_opts *o, const bench_row *r)
{
    if (o->json) report_json(f, o, r);
    else report_text(f, o, r);
}

/*
 * cli/cmd_search.c -- quiver search DB COLL (--vector JSON | --query-file F) [...]
 * Prints "rank id score" lines, or with --json one {"hits":[...]} object per query.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: quiver search DB COLL (--vector '[0.1,...]' | --query-file F) [-k N] [--ef N]\n"
            "                     [--nprobe N] [--filter JSON] [--with-payload] [--json]\n"
            "                     [--oversampling X] [--no-rescore] [--explore X]\n"
            "Search COLL for the k nearest points (default k = 10). --query-file reads .fvecs,\n"
            ".bvecs or .npy and searches every row. Quantized collections: --oversampling X\n"
            "re-scores the best k x X (1..%g), --no-rescore returns the codes' estimates;\n"
            "--explore X (0..%g, 0 = off) lets a bit1 hnsw walk also follow neighbours the\n"
            "1-bit codes may misjudge: higher recall at a given --ef (other codes ignore it).\n",
            (double)QV_MAX_OVERSAMPLING, (double)QV_MAX_EXPLORE);
}

static int print_hits(qv_coll *c, uint32_t dim, size_t qi, const qv_hit *hits, size_t n, int json, int with_payload)
{
    if (json) {
        api_point_style st = {.scores = 1, .payload = with_payload};
        int rc = cli_print_points(c, dim, hits, n, &st, "{\"hits\":", "}\n");
        return rc == QV_OK ? EXIT_OK : cli_qv_fail("search", "print", rc);
    }
    if (qi) printf("\n");
    for (size_t i = 0; i < n; i++) {
        printf("%zu\t%" PRIu64 "\t%.6g", i + 1, hits[i].id, hits[i].score);
        if (with_payload) {
            char *p = NULL;
            if (qv_get(c, hits[i].id, NULL, &p) == QV_OK && p) printf("\t%s", p);
            qv_free(p);
        }
        printf("\n");
    }
    return EXIT_OK;
}

int cmd_search(int argc, char **argv)
{
    static const struct option opts[] = {
        {"vector", required_argument, 0, 'v'}, {"query-file", required_argument, 0, 'f'},
        {"k", required_argument, 0, 'k'}, {"ef", required_argument, 0, 'e'},
        {"nprobe", required_argument, 0, 'p'}, {"filter", required_argument, 0, 'F'},
        {"with-payload", no_argument, 0, 'P'}, {"json", no_argument, 0, 'j'},
        {"oversampling", required_argument, 0, 'o'}, {"no-rescore", no_argument, 0, 'R'},
        {"explore", required_argument, 0, 'x'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *vector = NULL, *qfile = NULL, *filter = NULL;
    uint32_t k = 10, ef = 0, nprobe = 0;
    int json = 0, with_payload = 0, no_rescore = 0, c;
    float oversampling = 0, explore = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hk:", opts, NULL)) != -1) {
        switch (c) {
        case 'v': vector = optarg; break;
        case 'f': qfile = optarg; break;
        case 'k': if (parse_u32(optarg, 1, QV_MAX_K, &k)) return cli_fail(EXIT_USAGE, "search", "-k must be 1..%u, got '%s'", QV_MAX_K, optarg); break;
        case 'e': if (parse_u32(optarg, 1, 100000, &ef)) return cli_fail(EXIT_USAGE, "search", "--ef must be 1..100000, got '%s'", optarg); break;
        case 'p': if (parse_u32(optarg, 1, 1u << 24, &nprobe)) return cli_fail(EXIT_USAGE, "search", "--nprobe must be >= 1, got '%s'", optarg); break;
        case 'F': filter = optarg; break;
        case 'P': with_payload = 1; break;
        case 'o': {
            char *end;
            oversampling = strtof(optarg, &end);
            if (*end || !(oversampling >= 1.0f && oversampling <= QV_MAX_OVERSAMPLING))
                return cli_fail(EXIT_USAGE, "search", "--oversampling must be 1..%g, got '%s'", (double)QV_MAX_OVERSAMPLING, optarg);
            break;
        }
        case 'x': {
            char *end;
            explore = strtof(optarg, &end);
            if (end == optarg || *end || !(explore >= 0.0f && explore <= QV_MAX_EXPLORE))
                return cli_fail(EXIT_USAGE, "search", "--explore must be 0..%g, got '%s'", (double)QV_MAX_EXPLORE, optarg);
            break;
        }
        case 'R': no_rescore = 1; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (argc - optind != 2) { usage(stderr); return EXIT_USAGE; }
    if (!vector == !qfile) return cli_fail(EXIT_USAGE, "search", "give exactly one of --vector or --query-file");
    qv_filter *flt = NULL;
    if (filter && qv_filter_parse(filter, &flt) != QV_OK)
        return cli_fail(EXIT_USAGE, "search", "--filter: %s", qv_last_error());

    float *q = NULL;
    size_t nq = 1, dim = 0;
    if (qfile) {
        int rc = qv_read_vectors(qfile, &q, &nq, &dim);
        if (rc != QV_OK) {
            qv_filter_free(flt);
            return cli_qv_fail("search", qfile, rc);
        }
    }
    qv_db *db = NULL;
    qv_coll *col = NULL;
    qv_hit *hits = NULL;
    int code = open_db_coll("search", argv[optind], argv[optind + 1], 0, &db, &col);
    if (code != EXIT_OK) goto cleanup;
    qv_collection_info info;
    int rc = qv_collection_get_info(col, &info);
    if (rc != QV_OK) { code = cli_qv_fail("search", argv[optind + 1], rc); goto cleanup; }
    if (vector) {
        api_jerr e;
        dim = info.config.index.dim;
        if (!(q = malloc(dim * sizeof *q))) { code = cli_fail(EXIT_RUNTIME, "search", "out of memory"); goto cleanup; }
        if (api_jparse_vector(vector, strlen(vector), info.config.index.dim, q, &e) != 0) {
            code = cli_fail(strcmp(e.code, "dimension_mismatch") == 0 ? EXIT_RUNTIME : EXIT_USAGE, "search", "--vector: %s",
                            e.msg);
            goto cleanup;
        }
    }
    if (dim != info.config.index.dim) {
        code = cli_fail(EXIT_RUNTIME, "search", "query has dimension %zu, collection %s has %u", dim,
                        argv[optind + 1], info.config.index.dim);
        goto cleanup;
    }
    qv_search_params sp;
    qv_search_params_init(&sp, k);
    sp.ef = ef;
    sp.nprobe = nprobe;
    sp.filter = flt;
    sp.oversampling = oversampling;
    sp.explore = explore;
    sp.rescore = no_rescore ? QV_RESCORE_OFF : QV_RESCORE_DEFAULT;
    if (!(hits = calloc(k, sizeof *hits))) { code = cli_fail(EXIT_RUNTIME, "search", "out of memory"); goto cleanup; }
    for (size_t i = 0; i < nq && code == EXIT_OK; i++) {
        size_t n = 0;
        rc = qv_search(col, q + i * dim, &sp, hits, &n);
        if (rc != QV_OK) { code = cli_qv_fail("search", nq > 1 ? "query" : "vector", rc); break; }
        code = print_hits(col, info.config.index.dim, i, hits, n, json, with_payload);
    }
cleanup:
    qv_filter_free(flt);
    free(hits);
    if (vector) free(q); else qv_free(q);
    if (db && qv_db_close(db) != QV_OK && code == EXIT_OK) code = cli_qv_fail("search", "close", QV_EIO);
    return code;
}

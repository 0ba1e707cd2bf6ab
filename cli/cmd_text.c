/* cli/cmd_text.c -- quiver search-text DB COLL FIELD "QUERY" [--k 10] [--k1 1.2] [--b 0.75]
 * [--filter JSON] [--with-payload]: BM25 top-k over a payload field indexed as "text". */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define USAGE "usage: quiver search-text DB COLL FIELD QUERY [--k 10] [--k1 1.2] [--b 0.75] [--filter JSON] [--with-payload]\n"

static int parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

int cmd_search_text(int argc, char **argv)
{
    static const struct option opts[] = {{"k", required_argument, 0, 'k'}, {"k1", required_argument, 0, '1'},
                                         {"b", required_argument, 0, 'b'}, {"filter", required_argument, 0, 'f'},
                                         {"with-payload", no_argument, 0, 'p'}, {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    qv_text_params tp;
    uint32_t k = 10;
    double k1 = QV_BM25_K1, b = QV_BM25_B;
    const char *filter_json = NULL;
    int with_payload = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'k': if (parse_u32(optarg, 1, QV_MAX_K, &k)) return cli_fail(EXIT_USAGE, "search-text", "--k must be 1..%u, got '%s'", QV_MAX_K, optarg); break;
        case '1': if (parse_num(optarg, 0, 10, &k1)) return cli_fail(EXIT_USAGE, "search-text", "--k1 must be 0..10, got '%s'", optarg); break;
        case 'b': if (parse_num(optarg, 0, 1, &b)) return cli_fail(EXIT_USAGE, "search-text", "--b must be 0..1, got '%s'", optarg); break;
        case 'f': filter_json = optarg; break;
        case 'p': with_payload = 1; break;
        case 'h': printf(USAGE "BM25 (SQLite FTS5's formula) over a payload field indexed as \"text\"; one JSON hit a line.\n"); return EXIT_OK;
        default: fprintf(stderr, USAGE); return EXIT_USAGE;
        }
    }
    if (argc - optind != 4) { fprintf(stderr, USAGE); return EXIT_USAGE; }
    qv_db *db = NULL;
    qv_coll *col = NULL;
    qv_filter *f = NULL;
    qv_hit *hits = NULL;
    size_t n = 0;
    int rc, code;
    if (filter_json && (rc = qv_filter_parse(filter_json, &f)) != QV_OK) return cli_qv_fail("search-text", "--filter", rc);
    if ((code = open_db_coll("search-text", argv[optind], argv[optind + 1], 1, &db, &col)) != EXIT_OK) {
        qv_filter_free(f);
        return code;
    }
    if (!(hits = calloc(k, sizeof *hits))) { code = cli_fail(EXIT_RUNTIME, "search-text", "out of memory"); goto cleanup; }
    qv_text_params_init(&tp, k);
    tp.field = argv[optind + 2];
    tp.query = argv[optind + 3];
    tp.k1 = k1;
    tp.b = b;
    tp.filter = f;
    if ((rc = qv_text_search(col, &tp, hits, &n)) != QV_OK) { code = cli_qv_fail("search-text", argv[optind + 1], rc); goto cleanup; }
    for (size_t i = 0; i < n; i++) {
        char *payload = NULL;
        if (with_payload && (rc = qv_get(col, hits[i].id, NULL, &payload)) != QV_OK && rc != QV_ENOTFOUND) {
            code = cli_qv_fail("search-text", "payload", rc);
            goto cleanup;
        }
        printf("{\"id\":%" PRIu64 ",\"score\":%.9g", hits[i].id, hits[i].score);
        if (with_payload) printf(",\"payload\":%s", payload ? payload : "null");
        printf("}\n");
        qv_free(payload);
    }
cleanup:
    free(hits);
    qv_filter_free(f);
    if (qv_db_close(db) != QV_OK && code == EXIT_OK) code = cli_qv_fail("search-text", "close", QV_EIO);
    return code;
}

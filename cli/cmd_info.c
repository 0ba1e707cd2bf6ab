/* cli/cmd_info.c -- quiver info DB [COLL]  and  quiver checkpoint DB COLL */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void print_info(const qv_collection_info *in, int json)
{
    const qv_index_params *p = &in->config.index;
    if (json) {                              /* GET /collections/{name}'s object, one a line */
        json_t *o = api_info_json(in->name, in);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        printf("%s\n", s ? s : "null");
        free(s);
        json_decref(o);
        return;
    }
    printf("collection %s\n  dim %u, metric %s, index %s", in->name, p->dim, qv_metric_name(p->metric), qv_index_kind_name(p->kind));
    if (p->kind == QV_INDEX_HNSW) printf(" (m %u, ef_construction %u, ef_search %u)", p->m, p->ef_construction, p->ef_search);
    if (p->quant != QV_QUANT_NONE) printf(", codes %s", qv_quant_name(p->quant));
    if (in->config.on_disk) printf(", vectors on disk");
    if (p->kind == QV_INDEX_IVF) printf(" (nlist %u, nprobe %u)", p->nlist, p->nprobe);
    printf("\n  points %zu, index memory %.1f MiB, last write seq %" PRIu64 "\n", in->count,
           (double)in->memory_bytes / 1048576.0, in->last_seq);
    if (in->config.payload_index) printf("  payload index %s\n", in->config.payload_index);
}

int cmd_info(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {"json", no_argument, 0, 'j'}, {0, 0, 0, 0}};
    int c, json = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'j') { json = 1; continue; }
        if (c == 'h') {
            printf("usage: quiver info DB [COLL] [--json]\nList the collections of DB, or describe COLL (--json: as "
                   "GET /collections/{name} does, one object a line).\n");
            return EXIT_OK;
        }
        fprintf(stderr, "usage: quiver info DB [COLL] [--json]\n");
        return EXIT_USAGE;
    }
    int nargs = argc - optind;
    if (nargs < 1 || nargs > 2) { fprintf(stderr, "usage: quiver info DB [COLL] [--json]\n"); return EXIT_USAGE; }
    qv_db *db = NULL;
    qv_coll *col = NULL;
    qv_collection_info info;
    int code = open_db_coll("info", argv[optind], nargs == 2 ? argv[optind + 1] : NULL, 0, &db, nargs == 2 ? &col : NULL), rc;
    if (code != EXIT_OK) return code;
    if (nargs == 2) {
        if ((rc = qv_collection_get_info(col, &info)) != QV_OK) code = cli_qv_fail("info", argv[optind + 1], rc);
        else print_info(&info, json);
    } else {
        char **names = NULL;
        size_t n = 0;
        if ((rc = qv_collection_list(db, &names, &n)) != QV_OK) code = cli_qv_fail("info", argv[optind], rc);
        else if (n == 0 && !json) printf("no collections in %s\n", argv[optind]);
        for (size_t i = 0; i < n && code == EXIT_OK; i++) {
            if (qv_collection_open(db, names[i], &col) == QV_OK && qv_collection_get_info(col, &info) == QV_OK)
                print_info(&info, json);
        }
        qv_free_strings(names, n);
    }
    if (qv_db_close(db) != QV_OK && code == EXIT_OK) code = cli_qv_fail("info", "close", QV_EIO);
    return code;
}

int cmd_checkpoint(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') { printf("usage: quiver checkpoint DB COLL\nWrite an index snapshot of COLL now (reopening then skips the rebuild).\n"); return EXIT_OK; }
        fprintf(stderr, "usage: quiver checkpoint DB COLL\n");
        return EXIT_USAGE;
    }
    if (argc - optind != 2) { fprintf(stderr, "usage: quiver checkpoint DB COLL\n"); return EXIT_USAGE; }
    qv_db *db = NULL;
    qv_coll *col = NULL;
    int code = open_db_coll("checkpoint", argv[optind], argv[optind + 1], 0, &db, &col), rc;
    if (code != EXIT_OK) return code;
    double t0 = cli_now();
    if ((rc = qv_checkpoint(col)) != QV_OK) code = cli_qv_fail("checkpoint", argv[optind + 1], rc);
    else printf("checkpointed %s in %.2f s\n", argv[optind + 1], cli_now() - t0);
    if (qv_db_close(db) != QV_OK && code == EXIT_OK) code = cli_qv_fail("checkpoint", "close", QV_EIO);
    return code;
}

/* cli/cmd_points.c -- quiver get DB COLL ID  and  quiver delete DB COLL ID... */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int cmd_get(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') { printf("usage: quiver get DB COLL ID\nPrint point ID as {\"id\",\"vector\",\"payload\"}.\n"); return EXIT_OK; }
        fprintf(stderr, "usage: quiver get DB COLL ID\n");
        return EXIT_USAGE;
    }
    if (argc - optind != 3) { fprintf(stderr, "usage: quiver get DB COLL ID\n"); return EXIT_USAGE; }
    uint64_t id;
    if (api_parse_id(argv[optind + 2], &id)) return cli_fail(EXIT_USAGE, "get", "ID must be a non-negative integer, got '%s'", argv[optind + 2]);
    qv_db *db = NULL;
    qv_coll *col = NULL;
    qv_collection_info info;
    qv_hit h = {id, 0};
    api_point_style st = {.payload = 1, .with_vector = 1, .single = 1};
    int code = open_db_coll("get", argv[optind], argv[optind + 1], 0, &db, &col), rc;
    if (code != EXIT_OK) return code;
    if ((rc = qv_collection_get_info(col, &info)) == QV_OK)
        rc = cli_print_points(col, info.config.index.dim, &h, 1, &st, "", "\n");
    if (rc == QV_ENOTFOUND) code = cli_fail(EXIT_RUNTIME, "get", "no point %" PRIu64 " in %s", id, argv[optind + 1]);
    else if (rc != QV_OK) code = cli_qv_fail("get", argv[optind + 1], rc);
    if (qv_db_close(db) != QV_OK && code == EXIT_OK) code = cli_qv_fail("get", "close", QV_EIO);
    return code;
}

int cmd_delete(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') { printf("usage: quiver delete DB COLL ID [ID...]\nDelete points (absent ids are skipped) in one transaction.\n"); return EXIT_OK; }
        fprintf(stderr, "usage: quiver delete DB COLL ID [ID...]\n");
        return EXIT_USAGE;
    }
    if (argc - optind < 3) { fprintf(stderr, "usage: quiver delete DB COLL ID [ID...]\n"); return EXIT_USAGE; }
    size_t n = (size_t)(argc - optind - 2);
    uint64_t *ids = calloc(n, sizeof *ids);
    if (!ids) return cli_fail(EXIT_RUNTIME, "delete", "out of memory");
    for (size_t i = 0; i < n; i++)
        if (api_parse_id(argv[optind + 2 + (int)i], &ids[i])) {
            free(ids);
            return cli_fail(EXIT_USAGE, "delete", "ID must be a non-negative integer, got '%s'", argv[optind + 2 + (int)i]);
        }
    qv_db *db = NULL;
    qv_coll *col = NULL;
    size_t deleted = 0;
    int code = open_db_coll("delete", argv[optind], argv[optind + 1], 0, &db, &col), rc;
    if (code == EXIT_OK) {
        if ((rc = qv_delete(col, n, ids, &deleted)) != QV_OK) code = cli_qv_fail("delete", argv[optind + 1], rc);
        else printf("deleted %zu of %zu\n", deleted, n);
        if (qv_db_close(db) != QV_OK && code == EXIT_OK) code = cli_qv_fail("delete", "close", QV_EIO);
    }
    free(ids);
    return code;
}

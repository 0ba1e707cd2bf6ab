/* cli/cmd_update.c -- quiver update DB COLL [--m N] [--ef-construction N] [--ef-search N]
 * [--quant Q]: new parameters or codes for a collection that exists, the index rebuilt. */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: quiver update DB COLL [--m N] [--ef-construction N] [--ef-search N]\n"
            "                     [--quant none|sq8|sq4|bit1]\n"
            "Change collection COLL in database directory DB: what is given is stored and the\n"
            "index rebuilt with it from the stored vectors (every point, earlier and later).\n"
            "--m, --ef-construction, --ef-search: an hnsw collection's graph parameters.\n"
            "--quant: the codes the index searches on; none drops them (refused for a\n"
            "collection whose vectors are on disk: those need codes).\n");
}

int cmd_update(int argc, char **argv)
{
    static const struct option opts[] = {
        {"m", required_argument, 0, 'm'}, {"ef-construction", required_argument, 0, 'c'},
        {"ef-search", required_argument, 0, 'e'}, {"quant", required_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    qv_collection_changes ch = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': if (parse_u32(optarg, 2, 100, &ch.m)) return cli_fail(EXIT_USAGE, "update", "--m must be 2..100, got '%s'", optarg); break;
        case 'c': if (parse_u32(optarg, 1, QV_MAX_EF, &ch.ef_construction)) return cli_fail(EXIT_USAGE, "update", "--ef-construction must be 1..%u, got '%s'", QV_MAX_EF, optarg); break;
        case 'e': if (parse_u32(optarg, 1, QV_MAX_EF, &ch.ef_search)) return cli_fail(EXIT_USAGE, "update", "--ef-search must be 1..%u, got '%s'", QV_MAX_EF, optarg); break;
        case 'q':
            if (qv_quant_parse(optarg, &ch.quant) != QV_OK) return cli_fail(EXIT_USAGE, "update", "--quant: %s", qv_last_error());
            ch.set_quant = 1;
            break;
        case 'h': usage(stdout); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (argc - optind != 2) { usage(stderr); return EXIT_USAGE; }
    if (!ch.m && !ch.ef_construction && !ch.ef_search && !ch.set_quant)
        return cli_fail(EXIT_USAGE, "update", "nothing to change: give --m, --ef-construction, --ef-search or --quant");

    qv_db *db = NULL;
    qv_coll *coll = NULL;
    int code = open_db_coll("update", argv[optind], argv[optind + 1], 0, &db, &coll);
    if (code != EXIT_OK) return code;
    int rc = qv_collection_update(coll, &ch);
    if (rc != QV_OK) code = cli_qv_fail("update", argv[optind + 1], rc);
    else printf("updated collection %s\n", argv[optind + 1]);
    qv_collection_close(coll);
    if ((rc = qv_db_close(db)) != QV_OK && code == EXIT_OK) code = cli_qv_fail("update", "close", rc);
    return code;
}

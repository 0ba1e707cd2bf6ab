/* cli/cmd_create.c -- quiver create DB COLL --dim N [...] */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: quiver create DB COLL --dim N [--metric l2|ip|cosine] [--index hnsw|flat|ivf]\n"
            "                     [--m N] [--ef-construction N] [--ef-search N] [--nlist N] [--nprobe N]\n"
            "                     [--quant none|sq8|sq4|bit1] [--on-disk] [--payload-index JSON]\n"
            "Create collection COLL in database directory DB (created if missing).\n"
            "Defaults: --metric l2 --index hnsw --m 16 --ef-construction 200.\n"
            "--payload-index '{\"lang\":\"keyword\",\"year\":\"integer\"}' names payload fields to index.\n"
            "--quant: codes the index searches on (8-bit, 4-bit scalar, 1-bit RaBitQ): the HNSW walk,\n"
            "the IVF lists or the flat scan; the best candidates are re-scored with the float\n"
            "vectors. none (default) searches the floats.\n"
            "--on-disk: with --quant (hnsw, any metric), re-score from the vectors stored\n"
            "in the database instead of a copy in memory: about half the memory, fewer queries/s.\n");
}

int cmd_create(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dim", required_argument, 0, 'd'}, {"metric", required_argument, 0, 'M'},
        {"index", required_argument, 0, 'i'}, {"m", required_argument, 0, 'm'},
        {"ef-construction", required_argument, 0, 'c'}, {"ef-search", required_argument, 0, 'e'},
        {"nlist", required_argument, 0, 'n'}, {"nprobe", required_argument, 0, 'p'},
        {"payload-index", required_argument, 0, 'P'}, {"quant", required_argument, 0, 'q'},
        {"on-disk", no_argument, 0, 'D'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    uint32_t dim = 0, m = 0, efc = 0, efs = 0, nlist = 0, nprobe = 0;
    qv_metric metric = QV_METRIC_L2;
    qv_index_kind kind = QV_INDEX_HNSW;
    qv_quant quant = QV_QUANT_NONE;
    const char *payload_index = NULL;
    int c, on_disk = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': if (parse_u32(optarg, 1, QV_MAX_DIM, &dim)) return cli_fail(EXIT_USAGE, "create", "--dim must be 1..%u, got '%s'", QV_MAX_DIM, optarg); break;
        case 'M': if (qv_metric_parse(optarg, &metric) != QV_OK) return cli_fail(EXIT_USAGE, "create", "%s", qv_last_error()); break;
        case 'i': if (qv_index_kind_parse(optarg, &kind) != QV_OK) return cli_fail(EXIT_USAGE, "create", "%s", qv_last_error()); break;
        case 'm': if (parse_u32(optarg, 2, 100, &m)) return cli_fail(EXIT_USAGE, "create", "--m must be 2..100, got '%s'", optarg); break;
        case 'c': if (parse_u32(optarg, 1, 100000, &efc)) return cli_fail(EXIT_USAGE, "create", "--ef-construction must be 1..100000, got '%s'", optarg); break;
        case 'e': if (parse_u32(optarg, 1, 100000, &efs)) return cli_fail(EXIT_USAGE, "create", "--ef-search must be 1..100000, got '%s'", optarg); break;
        case 'n': if (parse_u32(optarg, 1, 1u << 24, &nlist)) return cli_fail(EXIT_USAGE, "create", "--nlist must be 1..16777216, got '%s'", optarg); break;
        case 'p': if (parse_u32(optarg, 1, 1u << 24, &nprobe)) return cli_fail(EXIT_USAGE, "create", "--nprobe must be >= 1, got '%s'", optarg); break;
        case 'P': payload_index = optarg; break;
        case 'q': if (qv_quant_parse(optarg, &quant) != QV_OK) return cli_fail(EXIT_USAGE, "create", "--quant: %s", qv_last_error()); break;
        case 'D': on_disk = 1; break;
        case 'h': usage(stdout); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (argc - optind != 2) { usage(stderr); return EXIT_USAGE; }
    if (!dim) return cli_fail(EXIT_USAGE, "create", "--dim is required");

    qv_collection_config cfg;
    memset(&cfg, 0, sizeof cfg);
    qv_index_params_init(&cfg.index, kind, dim, metric);
    cfg.index.m = m;
    cfg.index.ef_construction = efc;
    cfg.index.ef_search = efs;
    cfg.index.nlist = nlist;
    cfg.index.nprobe = nprobe;
    cfg.index.quant = quant;
    cfg.payload_index = payload_index;
    cfg.on_disk = on_disk;

    qv_db *db = NULL;
    int code = open_db_coll("create", argv[optind], NULL, 0, &db, NULL);
    if (code != EXIT_OK) return code;
    int rc = qv_collection_create(db, argv[optind + 1], &cfg, NULL);
    if (rc != QV_OK) code = cli_qv_fail("create", argv[optind + 1], rc);
    else printf("created collection %s (dim %u, %s, %s)\n", argv[optind + 1], dim, qv_metric_name(metric), qv_index_kind_name(kind));
    if ((rc = qv_db_close(db)) != QV_OK && code == EXIT_OK) code = cli_qv_fail("create", "close", rc);
    return code;
}

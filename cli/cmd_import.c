/*
 * cli/cmd_import.c -- quiver import DB COLL FILE
 *
 * Vector files (.fvecs .bvecs .npy) get sequential ids from --start-id (default 0).
 * JSON Lines: one {"id":N,"vector":[...],"payload":{...}} per line; "id" may be omitted
 * (then sequential), "payload" too. Points go in batches (--batch, default 1000), each
 * batch one transaction, so an interrupted import leaves whole batches only.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: quiver import DB COLL FILE [--start-id N] [--batch N] [--nosync] [--quiet]\n"
            "Import FILE (.fvecs, .bvecs, .npy float32, or .jsonl with {\"id\",\"vector\",\"payload\"}\n"
            "per line) into collection COLL. Vector files get ids START-ID, START-ID+1, ...\n"
            "--nosync skips the fsync per batch (faster bulk loads; a crash may lose recent batches).\n"
            "Each batch is one transaction: an id repeated within a batch is an error, and the\n"
            "batches before it stay imported.\n");
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

typedef struct {
    qv_coll *c;
    size_t dim, batch, n;          /* n = points in the pending batch */
    uint64_t *ids;
    float *vecs;
    char **payloads;
    int any_payload;
    size_t done;
    cli_progress prog;
} importer;

static int flush_batch(importer *im)
{
    if (im->n == 0) return QV_OK;
    int rc = qv_upsert(im->c, im->n, im->ids, im->vecs, im->any_payload ? (const char *const *)im->payloads : NULL);
    for (size_t i = 0; i < im->n; i++) { free(im->payloads[i]); im->payloads[i] = NULL; }
    if (rc == QV_OK) im->done += im->n;
    im->n = 0;
    im->any_payload = 0;
    cli_progress_update(&im->prog, im->done);
    return rc;
}

static int import_vectors(importer *im, const char *path, uint64_t start_id)
{
    float *data = NULL;
    size_t n = 0, dim = 0;
    int rc = qv_read_vectors(path, &data, &n, &dim);
    if (rc != QV_OK) return cli_qv_fail("import", path, rc);
    int code = EXIT_OK;
    if (dim != im->dim) {
        code = cli_fail(EXIT_RUNTIME, "import", "%s: vectors have dimension %zu, collection has %zu", path, dim, im->dim);
        goto cleanup;
    }
    if (start_id > QV_MAX_ID - (n - 1)) {
        code = cli_fail(EXIT_USAGE, "import", "ids %llu + %zu points would pass the largest id %llu",
                        (unsigned long long)start_id, n, (unsigned long long)QV_MAX_ID);
        goto cleanup;
    }
    im->prog.total = n;
    for (size_t i = 0; i < n; i += im->batch) {
        size_t m = n - i < im->batch ? n - i : im->batch;
        for (size_t j = 0; j < m; j++) im->ids[j] = start_id + i + j;
        rc = qv_upsert(im->c, m, im->ids, data + i * dim, NULL);
        if (rc != QV_OK) { code = cli_fail(EXIT_RUNTIME, "import", "batch at point %zu: %s: %s", i, qv_strerror(rc), qv_last_error()); goto cleanup; }
        im->done += m;
        cli_progress_update(&im->prog, im->done);
    }
cleanup:
    qv_free(data);
    return code;
}

/* One JSON line into the pending batch (api/points.c reads it, as quiverd reads a point).
 * Returns EXIT_OK or prints and returns an error. */
static int add_json_line(importer *im, const char *path, size_t lineno, const char *line, size_t len,
                         uint64_t *next_id)
{
    uint64_t id = *next_id;
    api_jerr e;
    if (api_parse_point(line, len, (uint32_t)im->dim, &id, im->vecs + im->n * im->dim, &im->payloads[im->n], &e))
        return cli_fail(EXIT_RUNTIME, "import", "%s:%zu: %s", path, lineno, e.msg);
    im->any_payload |= im->payloads[im->n] != NULL;
    *next_id = id + 1;
    im->ids[im->n++] = id;
    return EXIT_OK;
}

static int import_jsonl(importer *im, const char *path, uint64_t start_id)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    uint64_t next_id = start_id;
    int code = EXIT_OK;
    if (!f) return cli_fail(EXIT_RUNTIME, "import", "%s: cannot open", path);
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len == 0 || strspn(line, " \t\r\n") == (size_t)len) continue;
        if ((code = add_json_line(im, path, lineno, line, (size_t)len, &next_id)) != EXIT_OK) goto cleanup;
        if (im->n == im->batch) {
            int rc = flush_batch(im);
            if (rc != QV_OK) { code = cli_fail(EXIT_RUNTIME, "import", "%s: batch ending at line %zu: %s: %s", path, lineno, qv_strerror(rc), qv_last_error()); goto cleanup; }
        }
    }
    int rc = flush_batch(im);
    if (rc != QV_OK) code = cli_fail(EXIT_RUNTIME, "import", "%s: last batch: %s: %s", path, qv_strerror(rc), qv_last_error());
cleanup:
    free(line);
    fclose(f);
    return code;
}

int cmd_import(int argc, char **argv)
{
    static const struct option opts[] = {
        {"start-id", required_argument, 0, 's'}, {"batch", required_argument, 0, 'b'},
        {"nosync", no_argument, 0, 'n'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    uint64_t start_id = 0;
    uint32_t batch = 1000;
    int nosync = 0, quiet = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (api_parse_id(optarg, &start_id) || start_id > QV_MAX_ID)
                return cli_fail(EXIT_USAGE, "import", "--start-id must be 0..%llu", (unsigned long long)QV_MAX_ID);
            break;
        case 'b': if (parse_u32(optarg, 1, 1000000, &batch)) return cli_fail(EXIT_USAGE, "import", "--batch must be 1..1000000"); break;
        case 'n': nosync = 1; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (argc - optind != 3) { usage(stderr); return EXIT_USAGE; }
    const char *dbdir = argv[optind], *coll = argv[optind + 1], *path = argv[optind + 2];
    int jsonl = ends_with(path, ".jsonl") || ends_with(path, ".ndjson");
    if (!jsonl && !ends_with(path, ".fvecs") && !ends_with(path, ".bvecs") && !ends_with(path, ".npy"))
        return cli_fail(EXIT_USAGE, "import", "%s: unknown file type (expected .fvecs, .bvecs, .npy or .jsonl)", path);

    qv_db *db = NULL;
    qv_coll *col = NULL;
    qv_db_options o;
    qv_collection_info info;
    importer im;
    memset(&im, 0, sizeof im);
    qv_db_options_init(&o);
    if (nosync) o.flags |= QV_DB_NOSYNC;
    int rc = qv_db_open(dbdir, &o, &db), code = EXIT_OK;
    if (rc != QV_OK) return cli_qv_fail("import", dbdir, rc);
    if ((rc = qv_collection_open(db, coll, &col)) != QV_OK) {
        code = rc == QV_ENOTFOUND ? cli_fail(EXIT_RUNTIME, "import", "no collection '%s' in %s", coll, dbdir) : cli_qv_fail("import", coll, rc);
        goto cleanup;
    }
    if ((rc = qv_collection_get_info(col, &info)) != QV_OK) { code = cli_qv_fail("import", coll, rc); goto cleanup; }
    im.c = col;
    im.dim = info.config.index.dim;
    im.batch = batch;
    im.ids = calloc(batch, sizeof *im.ids);
    im.vecs = calloc((size_t)batch * im.dim, sizeof *im.vecs);
    im.payloads = calloc(batch, sizeof *im.payloads);
    if (!im.ids || !im.vecs || !im.payloads) { code = cli_fail(EXIT_RUNTIME, "import", "out of memory"); goto cleanup; }
    cli_progress_start(&im.prog, "import", 0, quiet);
    double t0 = cli_now();
    code = jsonl ? import_jsonl(&im, path, start_id) : import_vectors(&im, path, start_id);
    cli_progress_end(&im.prog, im.done);
    if (code == EXIT_OK && !quiet)
        fprintf(stderr, "imported %zu points into %s in %.1f s\n", im.done, coll, cli_now() - t0);
cleanup:
    free(im.ids);
    free(im.vecs);
    if (im.payloads) for (size_t i = 0; i < batch; i++) free(im.payloads[i]);
    free(im.payloads);
    if ((rc = qv_db_close(db)) != QV_OK && code == EXIT_OK) code = cli_qv_fail("import", "close", rc);
    return code;
}

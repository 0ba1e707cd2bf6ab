/* cli/util.c -- error reporting, strict number parsing, printing points, opening a db. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int cli_fail(int code, const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "quiver%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int cli_qv_fail(const char *cmd, const char *what, int rc)
{
    return cli_fail(EXIT_RUNTIME, cmd, "%s: %s: %s", what, qv_strerror(rc), qv_last_error());
}

int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    uint64_t v;
    if (api_parse_id(s, &v) != 0 || v < lo || v > hi) return -1;
    *out = (uint32_t)v;
    return 0;
}

static int to_stdout(void *arg, const char *p, size_t len)
{
    (void)arg;
    return fwrite(p, 1, len, stdout) == len ? 0 : -1;
}

int cli_print_points(qv_coll *c, uint32_t dim, const qv_hit *hits, size_t n, const api_point_style *st,
                     const char *before, const char *after)
{
    api_wbuf w = {.sink = to_stdout};
    api_wput(&w, before, strlen(before));
    int rc = api_wpoints(&w, c, dim, hits, n, st);
    if (rc == QV_OK) api_wput(&w, after, strlen(after));
    api_wflush(&w);
    return rc == QV_OK && w.err ? QV_EIO : rc;
}

int open_db_coll(const char *cmd, const char *dbdir, const char *coll, int rdonly, qv_db **db, qv_coll **c)
{
    qv_db_options o;
    int rc;
    *db = NULL;
    if (c) *c = NULL;
    qv_db_options_init(&o);
    if (rdonly) o.flags |= QV_DB_RDONLY;
    if ((rc = qv_db_open(dbdir, &o, db)) != QV_OK) return cli_qv_fail(cmd, dbdir, rc);
    if (c && (rc = qv_collection_open(*db, coll, c)) != QV_OK) {
        int code = rc == QV_ENOTFOUND ? cli_fail(EXIT_RUNTIME, cmd, "no collection '%s' in %s", coll, dbdir)
                                      : cli_qv_fail(cmd, coll, rc);
        qv_db_close(*db);
        *db = NULL;
        return code;
    }
    return EXIT_OK;
}

/* cli/util.c -- error reporting, strict number parsing, JSON vectors, opening a db. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

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

int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-' || *s == '+') return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = (uint64_t)v;
    return 0;
}

int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    uint64_t v;
    if (parse_u64(s, &v) != 0 || v < lo || v > hi) return -1;
    *out = (uint32_t)v;
    return 0;
}

int parse_vector_json(const char *text, float **out, size_t *dim, char *err, size_t errlen)
{
    json_error_t je;
    json_t *arr = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    float *v = NULL;
    int rc = -1;
    *out = NULL;
    if (!arr) { snprintf(err, errlen, "vector is not valid JSON: %s", je.text); goto cleanup; }
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        snprintf(err, errlen, "vector must be a non-empty JSON array of numbers");
        goto cleanup;
    }
    size_t n = json_array_size(arr);
    if (!(v = malloc(n * sizeof *v))) { snprintf(err, errlen, "out of memory"); goto cleanup; }
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(arr, i);
        if (!json_is_number(x)) { snprintf(err, errlen, "vector[%zu] is not a number", i); goto cleanup; }
        double d = json_number_value(x);
        if (!isfinite(d) || fabs(d) > 3.4e38) { snprintf(err, errlen, "vector[%zu] is out of float range", i); goto cleanup; }
        v[i] = (float)d;
    }
    *out = v;
    *dim = n;
    v = NULL;
    rc = 0;
cleanup:
    free(v);
    json_decref(arr);
    return rc;
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

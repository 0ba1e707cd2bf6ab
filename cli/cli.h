/*
 * cli/cli.h -- shared pieces of the `quiver` command-line tool.
 *
 * Each command lives in its own cli/cmd_*.c and has the shape
 *     int cmd_NAME(int argc, char **argv);   (argv[0] is the command name)
 * returning an exit code: 0 ok, 1 runtime error, 2 usage error. Errors are one line on
 * stderr ("quiver import: point 12: dimension 127, collection has 128").
 */
#ifndef QV_CLI_CLI_H
#define QV_CLI_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "quiver.h"

#define EXIT_OK 0
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

int cmd_create(int argc, char **argv);
int cmd_update(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_search_text(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_checkpoint(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_verify_backup(int argc, char **argv);

/* "quiver CMD: <message>" on stderr; returns code. */
int cli_fail(int code, const char *cmd, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Runtime failure from a qv_* call: "quiver CMD: what: QV_E...: detail"; returns 1. */
int cli_qv_fail(const char *cmd, const char *what, int rc);

/* Strict number parsing: the whole string, in range. Return 0 on success. */
int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out);

/* Print points on stdout through api/search.c's writer, in style st, after the text
 * before and (when they were written) before the text after; QV_OK or a QV_E* code. JSON
 * in and out goes through api/ (api/api.h), as in quiverd. */
int cli_print_points(qv_coll *c, uint32_t dim, const qv_hit *hits, size_t n, const api_point_style *st,
                     const char *before, const char *after);

/* Opening: db is opened read-write unless rdonly. Prints the error itself. */
int open_db_coll(const char *cmd, const char *dbdir, const char *coll, int rdonly,
                 qv_db **db, qv_coll **c);

/* ---- progress (cli/progress.c) -------------------------------------------------- */
typedef struct {
    const char *label;
    size_t total;
    int mode;                      /* 0 quiet, 1 plain lines, 2 terminal bar */
    double t0, last;
} cli_progress;

/* quiet: nothing at all. Otherwise a bar when stderr is a terminal, else a plain line
 * every few seconds. */
void cli_progress_start(cli_progress *p, const char *label, size_t total, int quiet);
void cli_progress_update(cli_progress *p, size_t done);
void cli_progress_end(cli_progress *p, size_t done);
/* A qv_progress_fn that forwards to a cli_progress (arg). */
void cli_progress_cb(const char *phase, size_t done, size_t total, void *arg);
double cli_now(void);

#endif

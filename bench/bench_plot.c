/*
 * bench/bench_plot.c -- --plot out.png: recall (x) against queries per second (y, log
 * scale), one line per library and configuration, like the ann-benchmarks plots. The
 * rows go to a temporary data file (one gnuplot data block per line), a small script
 * next to it, and gnuplot (Debian: gnuplot-nox) renders the PNG. Both temporary files are
 * removed afterwards.
 */
#include "bench/bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Full path of gnuplot from $PATH into buf; 0 when found. */
static int find_gnuplot(char *buf, size_t len)
{
    const char *path = getenv("PATH");
    char dirs[4096];
    if (!path || strlen(path) >= sizeof dirs) path = "/usr/local/bin:/usr/bin:/bin";
    snprintf(dirs, sizeof dirs, "%s", path);
    for (char *save = NULL, *dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        snprintf(buf, len, "%s/gnuplot", dir);
        if (access(buf, X_OK) == 0) return 0;
    }
    return -1;
}

int bench_plot_check(char *err, size_t errlen)
{
    char path[4096];
    if (find_gnuplot(path, sizeof path) == 0) return 0;
    snprintf(err, errlen, "--plot needs gnuplot, which is not in PATH (Debian package gnuplot-nox)");
    return -1;
}

/* A gnuplot double-quoted string: only " and \ need escaping. */
static void gp_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        if (*s == '\n') continue;
        fputc(*s, f);
    }
    fputc('"', f);
}

static int write_data(FILE *f, const bench_row *rows, size_t n, const char **names, size_t *n_names)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j;
        for (j = 0; j < count; j++)
            if (strcmp(names[j], rows[i].name) == 0) break;
        if (j < count) continue;
        names[count++] = rows[i].name;
        if (count > 1) fputs("\n\n", f);             /* a new data block */
        for (size_t r = i; r < n; r++)
            if (strcmp(rows[r].name, rows[i].name) == 0)
                fprintf(f, "%.6f %.3f %u\n", rows[r].recall, rows[r].qps, rows[r].ef ? rows[r].ef : rows[r].nprobe);
    }
    *n_names = count;
    return ferror(f) ? -1 : 0;
}

int bench_plot(const char *path, const bench_row *rows, size_t n, const bench_opts *o, const char *dataset,
               char *err, size_t errlen)
{
    char gnuplot[4096], data_path[] = "/tmp/quiver-bench-XXXXXX.dat", script_path[] = "/tmp/quiver-bench-XXXXXX.gp";
    const char **names = NULL;
    FILE *df = NULL, *sf = NULL;
    size_t n_names = 0;
    int dfd = -1, sfd = -1, ret = -1;

    if (n == 0) { snprintf(err, errlen, "--plot: no rows to plot"); return -1; }
    if (find_gnuplot(gnuplot, sizeof gnuplot) != 0) return bench_plot_check(err, errlen);
    if (!(names = calloc(n, sizeof *names))) { snprintf(err, errlen, "out of memory"); return -1; }
    if ((dfd = mkstemps(data_path, 4)) < 0 || (sfd = mkstemps(script_path, 3)) < 0) {
        snprintf(err, errlen, "--plot: cannot create a temporary file in /tmp: %s", strerror(errno));
        goto cleanup;
    }
    if (!(df = fdopen(dfd, "w")) || !(sf = fdopen(sfd, "w"))) {
        snprintf(err, errlen, "--plot: %s", strerror(errno));
        goto cleanup;
    }
    dfd = sfd = -1;                                    /* owned by the FILEs now */
    if (write_data(df, rows, n, names, &n_names) != 0 || fclose(df) != 0) {
        df = NULL;
        snprintf(err, errlen, "--plot: cannot write %s", data_path);
        goto cleanup;
    }
    df = NULL;

    fputs("set terminal pngcairo size 1100,750 noenhanced\nset output ", sf);
    gp_string(sf, path);
    fputs("\nset title ", sf);
    char title[512];
    snprintf(title, sizeof title, "%s: %s, recall@%u vs QPS, %s, %u search thread%s", dataset,
             qv_index_kind_name(o->kind), o->k, o->batch ? "batch" : "single queries", o->threads,
             o->threads == 1 ? "" : "s");
    gp_string(sf, title);
    fprintf(sf, "\nset xlabel \"Recall@%u\"\nset ylabel \"Queries per second (log scale)\"\n", o->k);
    fputs("set logscale y\nset grid\nset key bottom left box opaque\nset xrange [*:1.0]\n", sf);
    fputs("plot ", sf);
    for (size_t i = 0; i < n_names; i++) {
        fprintf(sf, "%s", i ? ", \\\n     " : "");
        gp_string(sf, data_path);
        fprintf(sf, " index %zu using 1:2 with linespoints pointtype %zu linewidth 2 title ", i, i % 13 + 1);
        gp_string(sf, names[i]);
    }
    fputc('\n', sf);
    if (fclose(sf) != 0) { sf = NULL; snprintf(err, errlen, "--plot: cannot write %s", script_path); goto cleanup; }
    sf = NULL;

    pid_t pid = fork();
    if (pid < 0) { snprintf(err, errlen, "--plot: fork: %s", strerror(errno)); goto cleanup; }
    if (pid == 0) {
        execl(gnuplot, "gnuplot", script_path, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(err, errlen, "--plot: gnuplot failed (exit status %d)", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        goto cleanup;
    }
    ret = 0;
cleanup:
    if (df) fclose(df);
    if (sf) fclose(sf);
    if (dfd >= 0) close(dfd);
    if (sfd >= 0) close(sfd);
    unlink(data_path);                                 /* a template not yet filled: ENOENT */
    unlink(script_path);
    free(names);
    return ret;
}

/*
 * cli/progress.c -- progress for long operations on stderr.
 *
 * On a terminal: one bar redrawn in place with count, rate and ETA, at most ~10 times a
 * second. Not a terminal (logs, CI): a plain line every 2 seconds, so logs stay short.
 * --quiet: nothing.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_progress_start(cli_progress *p, const char *label, size_t total, int quiet)
{
    memset(p, 0, sizeof *p);
    p->label = label;
    p->total = total;
    p->mode = quiet ? 0 : isatty(STDERR_FILENO) ? 2 : 1;
    p->t0 = p->last = cli_now();
}

static void fmt_eta(char *buf, size_t len, double secs)
{
    if (secs < 0 || secs > 1e7) { snprintf(buf, len, "--:--"); return; }
    unsigned s = (unsigned)(secs + 0.5);
    if (s >= 3600) snprintf(buf, len, "%u:%02u:%02u", s / 3600, s / 60 % 60, s % 60);
    else snprintf(buf, len, "%02u:%02u", s / 60, s % 60);
}

static void draw(cli_progress *p, size_t done, double now, int final)
{
    double el = now - p->t0;
    double rate = el > 0 ? (double)done / el : 0;
    char eta[32];
    fmt_eta(eta, sizeof eta, rate > 0 && p->total > done ? (double)(p->total - done) / rate : final ? 0 : -1);
    if (p->mode == 2) {
        int width = 30, fill = p->total ? (int)((double)done / (double)p->total * width) : 0;
        char bar[64];
        if (fill > width) fill = width;
        memset(bar, '#', (size_t)fill);
        memset(bar + fill, '.', (size_t)(width - fill));
        bar[width] = '\0';
        if (p->total)
            fprintf(stderr, "\r%s [%s] %zu/%zu %.0f/s ETA %s ", p->label, bar, done, p->total, rate, eta);
        else
            fprintf(stderr, "\r%s %zu %.0f/s ", p->label, done, rate);
        if (final) fputc('\n', stderr);
    } else {
        if (p->total)
            fprintf(stderr, "%s: %zu/%zu (%.0f%%) %.0f/s ETA %s%s\n", p->label, done, p->total,
                    100.0 * (double)done / (double)p->total, rate, eta, final ? " done" : "");
        else
            fprintf(stderr, "%s: %zu %.0f/s%s\n", p->label, done, rate, final ? " done" : "");
    }
    fflush(stderr);
}

void cli_progress_update(cli_progress *p, size_t done)
{
    if (p->mode == 0) return;
    double now = cli_now();
    if (now - p->last < (p->mode == 2 ? 0.1 : 2.0)) return;
    p->last = now;
    draw(p, done, now, 0);
}

void cli_progress_end(cli_progress *p, size_t done)
{
    if (p->mode == 0) return;
    draw(p, done, cli_now(), 1);
}

void cli_progress_cb(const char *phase, size_t done, size_t total, void *arg)
{
    cli_progress *p = arg;
    (void)phase;
    if (total) p->total = total;
    cli_progress_update(p, done);
}

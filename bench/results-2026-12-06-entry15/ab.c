/* A/B driver (walk15b experiment): loads one saved index, runs all queries per (ef,
 * variant), variants interleaved round by round; prints median QPS and recall.
 * usage: ab INDEX DATADIR EFS ROUNDS VARIANT...   VARIANT = name:i=v,i=v (qv_xp[i]=v) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "quiver.h"
/* entry15 final A/B: variant knob 0 = qv_hnsw_starts_on (the experiment's counters are
 * in experiments.patch). */
extern int qv_hnsw_starts_on;
int qv_xp[8] = {1};
unsigned long long qv_xp_cyc[4], qv_xp_cnt[4];
#include <x86intrin.h>
static float *readv(const char *p, size_t *n, size_t *d, int isint)
{
    FILE *f = fopen(p, "rb"); if (!f) { perror(p); exit(1); }
    int dim; fread(&dim, 4, 1, f); fseek(f, 0, SEEK_END); long sz = ftell(f); fseek(f, 0, SEEK_SET);
    *d = dim; *n = sz / (4 + 4 * (long)dim);
    float *v = malloc(*n * dim * 4);
    for (size_t i = 0; i < *n; i++) { fread(&dim, 4, 1, f); fread(v + i * *d, 4, *d, f); }
    fclose(f); (void)isint; return v;
}
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmpd(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv)
{
    if (argc < 6) return 2;
    qv_index *ix; if (qv_index_load(argv[1], &ix) != QV_OK) { fprintf(stderr, "load\n"); return 1; }
    char p[512]; size_t nq, d, ng, gk;
    snprintf(p, sizeof p, "%s/query.fvecs", argv[2]); float *q = readv(p, &nq, &d, 0);
    snprintf(p, sizeof p, "%s/groundtruth.ivecs", argv[2]); int *gt = (int *)readv(p, &ng, &gk, 1);
    int efs[32], nef = 0; for (char *t = strtok(argv[3], ","); t; t = strtok(NULL, ",")) efs[nef++] = atoi(t);
    int rounds = atoi(argv[4]); int nv = argc - 5;
    int cfg[16][8]; char *names[16];
    for (int v = 0; v < nv; v++) {
        char *s = strdup(argv[5 + v]); char *c = strchr(s, ':'); names[v] = s;
        for (int i = 0; i < 8; i++) cfg[v][i] = qv_xp[i];
        if (c) { *c = 0; for (char *t = strtok(c + 1, ","); t; t = strtok(NULL, ",")) { int i, val; if (sscanf(t, "%d=%d", &i, &val) == 2) cfg[v][i] = val; } }
    }
    qv_hit *hits = malloc(sizeof *hits * 10 * nq); size_t *nh = malloc(sizeof *nh * nq);
    for (int e = 0; e < nef; e++) {
        double qps[16][64]; double rec[16];
        qv_search_params sp; qv_search_params_init(&sp, 10); sp.ef = efs[e];
        for (int r = 0; r <= rounds; r++)            /* round 0: warm-up, not counted */
            for (int v0 = 0; v0 < nv; v0++) {
                int v = (v0 + r) % nv;                /* rotate the order each round */
                memcpy(qv_xp, cfg[v], sizeof qv_xp);
                qv_hnsw_starts_on = qv_xp[0];
                double t = 0;
                unsigned long long hc[4] = {0, 0, 0, 0};
                memset(qv_xp_cyc, 0, sizeof qv_xp_cyc);
                memset(qv_xp_cnt, 0, sizeof qv_xp_cnt);
                unsigned long long c0 = __rdtsc();
                if (getenv("HOT")) {
                    for (size_t i = 0; i < nq; i++) {
                        qv_index_search(ix, q + i * d, &sp, hits + i * 10, &nh[i]);
                        for (int z = 1; z < atoi(getenv("HOT")); z++) qv_index_search(ix, q + i * d, &sp, hits + i * 10, &nh[i]);
                        unsigned long long sv[4]; memcpy(sv, qv_xp_cyc, sizeof sv);
                        double t0 = now();
                        qv_index_search(ix, q + i * d, &sp, hits + i * 10, &nh[i]);
                        t += now() - t0;
                        for (int z = 0; z < 4; z++) hc[z] += qv_xp_cyc[z] - sv[z];
                    }
                } else {
                    double t0 = now();
                    for (size_t i = 0; i < nq; i++) qv_index_search(ix, q + i * d, &sp, hits + i * 10, &nh[i]);
                    t = now() - t0;
                }
                if (r) qps[v][r - 1] = nq / t;
                if (r == 1 && getenv("CYC")) {
                    double tot = (double)(__rdtsc() - c0) / nq;
                    printf("  %s ef %d cycles/query %.0f: prepare %.0f descend %.0f walk %.0f\n", names[v], efs[e], tot,
                           (double)qv_xp_cyc[2] / nq, (double)qv_xp_cyc[0] / nq, (double)qv_xp_cyc[1] / nq);
                if (r == 1 && getenv("CYC"))
                    printf("  %s ef %d per query: expansions %.1f rows %.1f descent rows %.1f\n", names[v], efs[e],
                           (double)qv_xp_cnt[0] / nq, (double)qv_xp_cnt[1] / nq, (double)qv_xp_cnt[2] / nq);
                if (r == 1 && getenv("CYC") && getenv("HOT"))
                    printf("  hot only: prepare %.0f descend %.0f walk %.0f\n", (double)hc[2] / nq, (double)hc[0] / nq, (double)hc[1] / nq);
                }
                if (r == 1) {
                    size_t hit = 0;
                    for (size_t i = 0; i < nq; i++)
                        for (size_t a = 0; a < nh[i]; a++)
                            for (int b = 0; b < 10; b++) if ((uint64_t)gt[i * gk + b] == hits[i * 10 + a].id) { hit++; break; }
                    rec[v] = (double)hit / (nq * 10.0);
                }
            }
        for (int v = 0; v < nv; v++) {
            double s[64]; memcpy(s, qps[v], rounds * sizeof *s); qsort(s, rounds, sizeof *s, cmpd);
            printf("%-10s ef %4d recall %.4f qps %9.1f  min %9.1f max %9.1f\n", names[v], efs[e], rec[v], s[rounds / 2], s[0], s[rounds - 1]);
        }
        fflush(stdout);
    }
    return 0;
}

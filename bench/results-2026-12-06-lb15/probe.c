/* Potential of a PCA lower-bound prefilter in the bit1 walk (experiment, not product). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "quiver.h"

extern void (*qv_probe_fn)(const float *q, const float *v, uint32_t slot, uint32_t dim, float d, float lower, const float *cv, uint32_t cslot);

static float *read_fvecs(const char *path, size_t *n, uint32_t *dim)
{
    FILE *f = fopen(path, "rb"); if (!f) { perror(path); exit(1); }
    int32_t d; if (fread(&d, 4, 1, f) != 1) exit(1);
    fseek(f, 0, SEEK_END); long sz = ftell(f); fseek(f, 0, SEEK_SET);
    size_t rows = sz / (4 + 4 * (size_t)d);
    float *x = malloc(rows * d * 4);
    for (size_t i = 0; i < rows; i++) { if (fread(&d, 4, 1, f) != 1 || fread(x + i * d, 4, d, f) != (size_t)d) exit(1); }
    fclose(f); *n = rows; *dim = d; return x;
}

enum { PMAX = 64, NP = 5, NQ = 3 };
static const int PS[NP] = {8, 16, 24, 32, 64};
static const int QB[NQ] = {0, 8, 4};   /* 0 = float */
static uint32_t D; static int cosine;
static float *U;          /* PMAX x D */
static float mn[PMAX], step8[PMAX], step4[PMAX];
static float *proj; static uint8_t *have; /* per slot */
static float qp[PMAX]; static float *rn; static double qn2; static double n_lb2[NP]; static double hist[8];
static double n_scored, n_rej, n_true_rej, n_lbrej[NP][NQ], n_change[NP][NQ], n_viol;
static double frac_sum[NP]; static double frac_n;

static void project(const float *v, float *out)
{
    for (int j = 0; j < PMAX; j++) { double s = 0; const float *u = U + (size_t)j * D; for (uint32_t i = 0; i < D; i++) s += u[i] * v[i]; out[j] = s; }
}

enum { NB = 3, NZ = 4, BMAX = 256 };
static const int BS[NB] = {64, 128, 256}; static const double ZS[NZ] = {0, 1, 2, 3};
static float *R, *rp, rq[BMAX]; static uint8_t *rhave; static double e_skip[NB][NZ], e_chg[NB][NZ], e_bad[NB][NZ], e_err2[NB];
static void rproj(const float *v, float *out) { for (int j = 0; j < BMAX; j++) { double s = 0; const float *u = R + (size_t)j * D; for (uint32_t i = 0; i < D; i++) s += u[i] * v[i]; out[j] = s; } }
static float *rget(const float *v, uint32_t slot) { float *o = rp + (size_t)slot * BMAX; if (!rhave[slot]) { rproj(v, o); rhave[slot] = 1; } return o; }
static void edge(const float *q, const float *v, uint32_t slot, float d, float lower, const float *cv, uint32_t cslot, double tdist)
{
    const float *ro = rget(v, slot), *rc = rget(cv, cslot);
    double oc2 = 0, qc2 = 0; for (uint32_t i = 0; i < D; i++) { double a = (double)v[i] - cv[i], b = (double)q[i] - cv[i]; oc2 += a * a; qc2 += b * b; }
    double tl = cosine ? (tdist + 1) * 2 : tdist, ll = cosine ? ((double)lower + 1) * 2 : lower;
    for (int a = 0; a < NB; a++) {
        int B = BS[a]; double sy = 0, sx = 0;
        for (int j = 0; j < B; j++) { double x = ro[j] - rc[j], y = rq[j] - rc[j]; if (x >= 0) { sy += y; sx += x; } else { sy -= y; sx -= x; } }
        double cross = sx > 0 ? oc2 * sy / sx : 0;
        double est = oc2 + qc2 - 2 * cross;
        e_err2[a] += (est - tl) * (est - tl) / (ll * ll);
        double sig = 2 * sqrt(oc2 * qc2 / B);
        for (int z = 0; z < NZ; z++) if (est - ZS[z] * sig > ll) { e_skip[a][z]++; if (d < lower) e_chg[a][z]++; if (tl < ll) e_bad[a][z]++; }
    }
}
static void probe(const float *q, const float *v, uint32_t slot, uint32_t dim, float d, float lower, const float *cv, uint32_t cslot)
{
    (void)q;
    if (!isfinite(lower)) return;
    n_scored++;
    double tr = 0; for (uint32_t i = 0; i < dim; i++) { double t = (double)v[i] - q[i]; tr += t * t; }
    double tdist = cosine ? tr / 2 - 1 : tr;
    if (!(d < lower)) n_rej++;
    if (tdist >= lower) n_true_rej++;
    edge(q, v, slot, d, lower, cv, cslot, tdist);
    float *pv = proj + (size_t)slot * PMAX;
    if (!have[slot]) { project(v, pv); have[slot] = 1; double t = 0; for (uint32_t i = 0; i < dim; i++) t += (double)v[i]*v[i]; for (int a = 0; a < NP; a++) { double u = t; for (int j = 0; j < PS[a]; j++) u -= (double)pv[j]*pv[j]; rn[(size_t)slot*NP+a] = sqrt(u > 0 ? u : 0); } }
    { double tl = cosine ? (tdist + 1) * 2 : tdist, ll = cosine ? ((double)lower + 1) * 2 : lower; double r = tl / ll; int b = r < 1 ? 0 : r < 1.1 ? 1 : r < 1.25 ? 2 : r < 1.5 ? 3 : r < 2 ? 4 : r < 3 ? 5 : 6; hist[b]++; }
    for (int a = 0; a < NP; a++) {
        for (int b = 0; b < NQ; b++) {
            double lb = 0;
            for (int j = 0; j < PS[a]; j++) {
                double x = pv[j], h = 0;
                if (QB[b]) {
                    float st = QB[b] == 8 ? step8[j] : step4[j]; int lv = QB[b] == 8 ? 255 : 15;
                    long c = lrintf((x - mn[j]) / st); if (c < 0) c = 0; if (c > lv) c = lv;
                    x = mn[j] + c * st; h = st / 2;
                }
                double g = fabs(x - qp[j]) - h; if (g > 0) lb += g * g;
            }
            if (!b) { double qq = qn2; for (int j = 0; j < PS[a]; j++) qq -= (double)qp[j]*qp[j]; double g = rn[(size_t)slot*NP+a] - sqrt(qq > 0 ? qq : 0); double l2 = lb + g*g; if ((cosine ? l2/2-1 : l2) > lower) n_lb2[a]++; if ((cosine ? l2/2-1 : l2) > tdist + 1e-4*(1+fabs(tdist))) n_viol++; }
            if (!b) { if (tr > 0) frac_sum[a] += lb / tr; if (a == 0) frac_n++; }
            double lbd = cosine ? lb / 2 - 1 : lb;
            if (lbd > tdist + 1e-4 * (1 + fabs(tdist))) n_viol++;
            if (lbd > lower) { n_lbrej[a][b]++; if (d < lower) n_change[a][b]++; }
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 4) { fprintf(stderr, "probe DATA INDEX nq [efs]\n"); return 2; }
    char pth[512]; size_t n, nq; uint32_t dq;
    snprintf(pth, sizeof pth, "%s/base.fvecs", argv[1]); float *base = read_fvecs(pth, &n, &D);
    snprintf(pth, sizeof pth, "%s/query.fvecs", argv[1]); float *qs = read_fvecs(pth, &nq, &dq);
    size_t nuse = atoi(argv[3]); if (nuse > nq) nuse = nq;
    qv_index *ix; int rc = qv_index_load(argv[2], &ix); if (rc) { fprintf(stderr, "load %d\n", rc); return 1; }
    qv_index_params ip; qv_index_get_params(ix, &ip); cosine = ip.metric == QV_METRIC_COSINE;
    if (cosine) for (size_t i = 0; i < n; i++) { double s = 0; for (uint32_t k = 0; k < D; k++) s += base[i*D+k]*base[i*D+k]; s = 1/sqrt(s); for (uint32_t k = 0; k < D; k++) base[i*D+k] *= s; }
    /* covariance of a sample */
    size_t ns = n < 8000 ? n : 8000; double *mu = calloc(D, 8), *C = calloc((size_t)D * D, 8);
    for (size_t i = 0; i < ns; i++) for (uint32_t k = 0; k < D; k++) mu[k] += base[(i * 7 % n) * D + k] / ns;
    float *xc = malloc(D * 4);
    for (size_t i = 0; i < ns; i++) {
        const float *x = base + (i * 7 % n) * D;
        for (uint32_t k = 0; k < D; k++) xc[k] = x[k] - mu[k];
        for (uint32_t a = 0; a < D; a++) { double xa = xc[a]; double *row = C + (size_t)a * D; for (uint32_t b = 0; b < D; b++) row[b] += xa * xc[b]; }
    }
    double tot = 0; for (uint32_t a = 0; a < D; a++) tot += C[(size_t)a * D + a];
    /* subspace iteration */
    double *X = malloc((size_t)PMAX * D * 8), *Y = malloc((size_t)PMAX * D * 8);
    srand(1); for (size_t i = 0; i < (size_t)PMAX * D; i++) X[i] = rand() / (double)RAND_MAX - 0.5;
    double ev[PMAX];
    for (int it = 0; it < 60; it++) {
        for (int j = 0; j < PMAX; j++) for (uint32_t a = 0; a < D; a++) { double s = 0; const double *row = C + (size_t)a * D, *x = X + (size_t)j * D; for (uint32_t b = 0; b < D; b++) s += row[b] * x[b]; Y[(size_t)j * D + a] = s; }
        for (int j = 0; j < PMAX; j++) {
            double *y = Y + (size_t)j * D;
            for (int i = 0; i < j; i++) { double *z = Y + (size_t)i * D, s = 0; for (uint32_t a = 0; a < D; a++) s += y[a] * z[a]; for (uint32_t a = 0; a < D; a++) y[a] -= s * z[a]; }
            double s = 0; for (uint32_t a = 0; a < D; a++) s += y[a] * y[a]; ev[j] = sqrt(s); s = 1 / sqrt(s); for (uint32_t a = 0; a < D; a++) y[a] *= s;
        }
        double *t = X; X = Y; Y = t;
    }
    U = malloc((size_t)PMAX * D * 4); for (size_t i = 0; i < (size_t)PMAX * D; i++) U[i] = X[i];
    double cum = 0; printf("variance share, cumulative:"); for (int j = 0; j < PMAX; j++) { cum += ev[j]; if (j == 7 || j == 15 || j == 23 || j == 31 || j == 63) printf(" p%d %.3f", j + 1, cum / tot); } printf("\n");
    /* ranges over all base */
    float mx[PMAX]; for (int j = 0; j < PMAX; j++) { mn[j] = INFINITY; mx[j] = -INFINITY; }
    float pv[PMAX];
    for (size_t i = 0; i < n; i++) { project(base + i * D, pv); for (int j = 0; j < PMAX; j++) { if (pv[j] < mn[j]) mn[j] = pv[j]; if (pv[j] > mx[j]) mx[j] = pv[j]; } }
    for (int j = 0; j < PMAX; j++) { step8[j] = (mx[j] - mn[j]) / 255; step4[j] = (mx[j] - mn[j]) / 15; }
    R = malloc((size_t)BMAX * D * 4); { double *G = malloc((size_t)BMAX * D * 8); for (size_t i = 0; i < (size_t)BMAX * D; i++) { double u1 = (rand() + 1.0) / (RAND_MAX + 2.0), u2 = rand() / (RAND_MAX + 1.0); G[i] = sqrt(-2 * log(u1)) * cos(6.283185307 * u2); }
      for (int j = 0; j < BMAX; j++) { double *y = G + (size_t)j * D; for (int i = 0; i < j; i++) { double *z = G + (size_t)i * D, t = 0; for (uint32_t a = 0; a < D; a++) t += y[a] * z[a]; for (uint32_t a = 0; a < D; a++) y[a] -= t * z[a]; } double t = 0; for (uint32_t a = 0; a < D; a++) t += y[a] * y[a]; t = 1 / sqrt(t); for (uint32_t a = 0; a < D; a++) y[a] *= t; }
      for (size_t i = 0; i < (size_t)BMAX * D; i++) R[i] = G[i]; free(G); }
    rp = malloc((size_t)(n + 1024) * BMAX * 4); rhave = calloc(n + 1024, 1);
    rn = malloc((size_t)(n + 1024) * NP * 4); proj = malloc((size_t)(n + 1024) * PMAX * 4); have = calloc(n + 1024, 1);
    qv_probe_fn = probe;
    const char *efs = argc > 4 ? argv[4] : "24,32,40";
    char *dup = strdup(efs);
    for (char *tok = strtok(dup, ","); tok; tok = strtok(NULL, ",")) {
        n_scored = n_rej = n_true_rej = n_viol = frac_sum[0] = frac_n = 0;
        memset(e_skip, 0, sizeof e_skip); memset(e_chg, 0, sizeof e_chg); memset(e_bad, 0, sizeof e_bad); memset(e_err2, 0, sizeof e_err2); memset(n_lb2, 0, sizeof n_lb2); memset(hist, 0, sizeof hist); memset(n_lbrej, 0, sizeof n_lbrej); memset(n_change, 0, sizeof n_change); memset(frac_sum, 0, sizeof frac_sum);
        qv_search_params sp; qv_search_params_init(&sp, 10); sp.ef = atoi(tok);
        qv_hit hits[10]; size_t nh;
        for (size_t i = 0; i < nuse; i++) {
            float qn[4096]; memcpy(qn, qs + i * D, D * 4);
            if (cosine) { double s = 0; for (uint32_t k = 0; k < D; k++) s += qn[k]*qn[k]; s = 1/sqrt(s); for (uint32_t k = 0; k < D; k++) qn[k] *= s; }
            rproj(qn, rq); project(qn, qp); qn2 = 0; for (uint32_t k = 0; k < D; k++) qn2 += (double)qn[k]*qn[k];
            qv_index_search(ix, qs + i * D, &sp, hits, &nh);
        }
        printf("ef %s: scored/q %.1f (lower finite), est rejects %.3f, true>=lower %.3f, LB violations %.0f\n", tok,
               n_scored / nuse, n_rej / n_scored, n_true_rej / n_scored, n_viol);
        for (int a = 0; a < NP; a++) {
            printf("  p%-2d mean LB/true %.3f |", PS[a], frac_sum[a] / frac_n);
            for (int b = 0; b < NQ; b++) printf(" q%d skip %.3f (chg %.3f)", QB[b], n_lbrej[a][b] / n_scored, n_change[a][b] / n_scored);
            printf(" | +resnorm skip %.3f\n", n_lb2[a] / n_scored);
        }
        for (int a = 0; a < NB; a++) { printf("  edge sign code B=%d (%d B/edge + norms): rms err/lower %.3f |", BS[a], BS[a] / 8, sqrt(e_err2[a] / n_scored));
            for (int z = 0; z < NZ; z++) printf(" z%.0f skip %.3f chg %.4f bad %.4f", ZS[z], e_skip[a][z] / n_scored, e_chg[a][z] / n_scored, e_bad[a][z] / n_scored); printf("\n"); }
        printf("  true/lower (L2 form): <1 %.3f, 1-1.1 %.3f, 1.1-1.25 %.3f, 1.25-1.5 %.3f, 1.5-2 %.3f, 2-3 %.3f, >3 %.3f\n", hist[0]/n_scored, hist[1]/n_scored, hist[2]/n_scored, hist[3]/n_scored, hist[4]/n_scored, hist[5]/n_scored, hist[6]/n_scored);
    }
    return 0;
}

#!/usr/bin/env python3
"""Side model (pca15): could the leading-PCA code serve as a one-line PREFIX gate, with
the full 832-bit code read only for rows the prefix cannot rule out? For 100 queries, the
base vectors ranked 33..1000 by true distance (a stand-in for the rows a walk at ef 32
scores; the real walk's rows are unmeasured here) are tested against the 32nd
neighbour's squared distance d32: a row is ruled out by the prefix when its truncated
estimate minus its bound (1-bit eps0 term + Cauchy-Schwarz cross term) exceeds d32,
and by the full code when its full estimate minus the full bound does.
Feasibility model for issue #15 (pca15): walk codes over the first D' principal
directions of the residuals (x - c_j) instead of all D coordinates.

For 200 queries of fashion-mnist-784 and their 100 nearest base vectors, compares the
1-bit RaBitQ estimate of |x - q|^2 at full D (random rotation of all 784 coordinates, as
index/codec_rabitq.c) with the truncated one: RaBitQ over V'^T (x - c) (D' leading
eigenvectors of the residual covariance, then a random rotation within them), the
energy outside |(I - P)(x - c)|^2 and |(I - P)(q - c)|^2 added exactly, the cross term
<(I - P)(x - c), (I - P)(q - c)> unknown (estimated 0).
Reports, relative to the 10th neighbour's squared distance:
  spread: std of (estimate - true) over the pairs,
  bound:  mean of the error bound used to rule a row out (eps0 * f3 * |q - c| for the
          1-bit code, plus 2 |(I-P)(x-c)| |(I-P)(q-c)| (Cauchy-Schwarz) for the cross term),
  open:   the fraction of the neighbours ranked 11..100 whose lower bound (estimate - bound)
          stays under the 10th's distance: rows the 1-bit code cannot rule out (they go
          on to the ex row in walk_codes),
Dp 832: all 784 coordinates zero-padded to 832 and rotated, as core/rotation.c pads.
and the fraction of the residuals' energy outside the D' directions.
Usage: pca_model.py DATA_DIR [queries]
"""
import sys
import numpy as np

def fvecs(path):
    a = np.fromfile(path, dtype=np.int32)
    d = a[0]
    return a.reshape(-1, d + 1)[:, 1:].view(np.float32).copy()

def kmeans(x, k, iters, rng):
    c = x[rng.choice(len(x), k, replace=False)].copy()
    for _ in range(iters):
        d = (x * x).sum(1)[:, None] - 2 * x @ c.T + (c * c).sum(1)[None]
        a = d.argmin(1)
        for j in range(k):
            m = a == j
            if m.any(): c[j] = x[m].mean(0)
    return c

def nearest(x, c):
    d = (x * x).sum(1)[:, None] - 2 * x @ c.T + (c * c).sum(1)[None]
    return d.argmin(1)

def rot(n, rng):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))

def rabitq_ip(xr, qr):
    """<xr, qr> estimated from sign(xr): r <o', qr> / eta, and the f3-like error factor."""
    D = xr.shape[1]
    r = np.linalg.norm(xr, axis=1)
    o = np.sign(xr) / np.sqrt(D)
    eta = np.abs(xr).sum(1) / (np.sqrt(D) * np.maximum(r, 1e-30))
    est = r * (o * qr).sum(1) / eta
    f3 = r * np.sqrt(np.maximum(1 - eta * eta, 0)) / (eta * np.sqrt(D - 1))
    return est, f3

def main():
    base = fvecs(sys.argv[1] + "/base.fvecs").astype(np.float64)
    query = fvecs(sys.argv[1] + "/query.fvecs").astype(np.float64)
    nq = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    rng = np.random.default_rng(7)
    n, D = base.shape
    sample = base[rng.choice(n, 32768, replace=False)]
    C = kmeans(sample, 64, 10, rng)
    res_s = sample - C[nearest(sample, C)]
    w, V = np.linalg.eigh(res_s.T @ res_s / len(res_s))
    V = V[:, np.argsort(w)[::-1]]
    qs = query[rng.choice(len(query), nq, replace=False)]
    eps0 = 1.9
    R832 = rot(832, rng)
    print(f"{nq} queries, ranks 33..1000 against d32")
    for Dp in [512, 448, 384]:
        Vp, Rp = V[:, :Dp], rot(Dp, rng)
        out_full, out_pre = [], []
        for q in qs:
            dist = ((base - q) ** 2).sum(1)
            order = np.argsort(dist)
            d32 = dist[order[31]]
            x = base[order[32:1000]]
            j = nearest(x, C)
            xc, qc = x - C[j], q[None] - C[j]
            pad = np.zeros((len(x), 832 - D))
            a, b = np.hstack([xc, pad]) @ R832.T, np.hstack([qc, pad]) @ R832.T
            e, f3 = rabitq_ip(a, b)
            lb = (xc * xc).sum(1) + (qc * qc).sum(1) - 2 * e - 2 * eps0 * f3 * np.linalg.norm(b, axis=1)
            out_full.append(lb > d32)
            a, b = xc @ Vp, qc @ Vp
            ex = (xc * xc).sum(1) - (a * a).sum(1)
            eq = (qc * qc).sum(1) - (b * b).sum(1)
            a, b = a @ Rp.T, b @ Rp.T
            e, f3 = rabitq_ip(a, b)
            lb = ((xc * xc).sum(1) + (qc * qc).sum(1) - 2 * e - 2 * eps0 * f3 * np.linalg.norm(b, axis=1)
                  - 2 * np.sqrt(np.maximum(ex, 0) * np.maximum(eq, 0)))
            out_pre.append(lb > d32)
        print(f"Dp {Dp}: ruled out by the full 832-bit code {np.concatenate(out_full).mean():.3f}, "
              f"by the {Dp}-bit prefix {np.concatenate(out_pre).mean():.3f}", flush=True)

main()

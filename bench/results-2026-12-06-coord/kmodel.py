#!/usr/bin/env python3
"""Feasibility model for issue #15 (pca15): walk codes over the first D' principal
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
    nq = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    rng = np.random.default_rng(7)
    n, D = base.shape
    sample = base[rng.choice(n, 32768, replace=False)]
    CK = {K: kmeans(sample, K, 10, rng) for K in (64, 256, 1024)}
    C = CK[64]; res_s = sample - C[nearest(sample, C)]
    cov = res_s.T @ res_s / len(res_s)
    w, V = np.linalg.eigh(cov)
    order = np.argsort(w)[::-1]
    w, V = w[order], V[:, order]
    qs = query[rng.choice(len(query), nq, replace=False)]
    full_R = rot(D, rng)
    eps0 = 1.9
    print(f"fashion-mnist-784: {n} x {D}, 64 centroids (k-means on 32768), {nq} queries x 100 NN")
    print(f"{'Dp':>5} {'out%':>6} {'spread':>7} {'sp_rbq':>7} {'sp_x':>7} {'bound1':>7} {'boundCS':>7} {'bound':>7} {'open':>6}")
    for K, C in CK.items():
      for Dp in [832]:
          Vp = V[:, :Dp]
          Rp = full_R if Dp == D else rot(Dp, rng)
          opens = []
          errs, errs_rbq, errs_x, b1s, bcs, outs = [], [], [], [], [], []
          for q in qs:
              dist = ((base - q) ** 2).sum(1)
              nn = np.argsort(dist)[:100]
              d10 = dist[nn[9]]
              x = base[nn]
              j = nearest(x, C)
              xc = x - C[j]
              qc = q[None] - C[j]
              if Dp >= D:
                  pad = np.zeros((len(x), Dp - D))
                  a, b = np.hstack([xc, pad]) @ Rp.T, np.hstack([qc, pad]) @ Rp.T
                  ex = np.zeros(len(x)); eq = np.zeros(len(x)); cross = np.zeros(len(x))
              else:
                  a, b = xc @ Vp, qc @ Vp
                  ex = (xc * xc).sum(1) - (a * a).sum(1)
                  eq = (qc * qc).sum(1) - (b * b).sum(1)
                  cross = (xc * qc).sum(1) - (a * b).sum(1)
                  a, b = a @ Rp.T, b @ Rp.T
              est_ip, f3 = rabitq_ip(a, b)
              true_ip = (xc * qc).sum(1)
              est = (xc * xc).sum(1) + (qc * qc).sum(1) - 2 * est_ip   # cross term estimated 0
              errs.append((est - dist[nn]) / d10)
              errs_rbq.append(-2 * (est_ip - (a * b).sum(1)) / d10)
              errs_x.append(2 * cross / d10)
              b1s.append(2 * eps0 * f3 * np.linalg.norm(b, axis=1) / d10)
              bcs.append(2 * np.sqrt(np.maximum(ex, 0) * np.maximum(eq, 0)) / d10)
              outs.append(ex.sum() / (xc * xc).sum())
              lb = est - 2 * eps0 * f3 * np.linalg.norm(b, axis=1) - 2 * np.sqrt(np.maximum(ex, 0) * np.maximum(eq, 0))
              opens.append((lb[10:] <= d10))
          e = np.concatenate(errs)
          print(f"K{K} {Dp:5d} {100*np.mean(outs):6.2f} {e.std():7.4f} {np.concatenate(errs_rbq).std():7.4f} "
                f"{np.concatenate(errs_x).std():7.4f} {np.concatenate(b1s).mean():7.4f} "
                f"{np.concatenate(bcs).mean():7.4f} {np.concatenate(b1s).mean()+np.concatenate(bcs).mean():7.4f} {np.concatenate(opens).mean():6.3f}", flush=True)

main()

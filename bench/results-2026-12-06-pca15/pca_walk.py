#!/usr/bin/env python3
"""Side model (pca15) on the rows a real walk scores: could a one-line code over the D'
leading principal directions serve as a PREFIX gate in front of the full 832-bit row?

Input: a trace of quiver's level-0 walk (walk_trace.patch; QV_TRACE_WALK=file, bit1 M12
efC400, ef 32, the first N queries of fashion-mnist-784): per query "Q", then per scored
row "base_id lower est" (lower: the beam's threshold when the row was scored; the walk
keeps the row only if est < lower).
For every traced row: the prefix's lower bound (truncated 1-bit estimate minus eps0 f3
|q - c| minus the Cauchy-Schwarz cross term 2 |(I-P)(x-c)| |(I-P)(q-c)|, model centroids and
rotation, not quiver's) against the walk's `lower`. Reported per D':
  walk_rejects: rows the walk drops (est >= lower) -- the most a gate could spare;
  prefix_rules_out: rows whose prefix lower bound exceeds lower (their full row need not be read);
  wrongly: of those, rows the walk kept (the gate would change the walk);
  lines/row: 1 + 2 (1 - prefix_rules_out), the lines read per scored row with the gate
             (the full row as now: 2 lines), the float/ex reads aside.
Usage: pca_walk.py DATA_DIR TRACE
"""
import sys
import numpy as np
sys.argv, argv = sys.argv[:1], sys.argv
exec(open(__file__.replace("pca_walk.py", "pca_model.py")).read().split("def main():")[0])
sys.argv = argv

def main():
    base = fvecs(sys.argv[1] + "/base.fvecs").astype(np.float64)
    query = fvecs(sys.argv[1] + "/query.fvecs").astype(np.float64)
    walks, cur = [], None
    for line in open(sys.argv[2]):
        if line[0] == "Q":
            cur = []
            walks.append(cur)
        else:
            i, lo, e = line.split()
            cur.append((int(i), float(lo), float(e)))
    rng = np.random.default_rng(7)
    n, D = base.shape
    sample = base[rng.choice(n, 32768, replace=False)]
    C = kmeans(sample, 64, 10, rng)
    res_s = sample - C[nearest(sample, C)]
    w, V = np.linalg.eigh(res_s.T @ res_s / len(res_s))
    V = V[:, np.argsort(w)[::-1]]
    eps0 = 1.9
    print(f"{len(walks)} walks, {sum(map(len, walks))} scored rows ({sum(map(len, walks)) / len(walks):.0f} a walk)")
    for Dp in [512, 448, 384]:
        Vp, Rp = V[:, :Dp], rot(Dp, rng)
        rej, out, wrong = [], [], []
        for qi, rows in enumerate(walks):
            if not rows: continue
            q = query[qi]
            ids = np.array([r[0] for r in rows]); lower = np.array([r[1] for r in rows])
            est_q = np.array([r[2] for r in rows])
            x = base[ids]
            j = nearest(x, C)
            xc, qc = x - C[j], q[None] - C[j]
            a, b = xc @ Vp, qc @ Vp
            ex = (xc * xc).sum(1) - (a * a).sum(1)
            eq = (qc * qc).sum(1) - (b * b).sum(1)
            a, b = a @ Rp.T, b @ Rp.T
            e, f3 = rabitq_ip(a, b)
            lb = ((xc * xc).sum(1) + (qc * qc).sum(1) - 2 * e - 2 * eps0 * f3 * np.linalg.norm(b, axis=1)
                  - 2 * np.sqrt(np.maximum(ex, 0) * np.maximum(eq, 0)))
            walk_rej = ~(est_q < lower)
            gate = lb > lower
            rej.append(walk_rej); out.append(gate); wrong.append(gate & ~walk_rej)
        rej, out, wrong = (np.concatenate(v) for v in (rej, out, wrong))
        print(f"Dp {Dp}: walk_rejects {rej.mean():.3f}, prefix_rules_out {out.mean():.3f}, "
              f"wrongly {wrong.mean():.4f}, lines/row {1 + 2 * (1 - out.mean()):.2f} (now 2)", flush=True)

main()

#!/usr/bin/env python3
"""entry15: medians per (variant, ef) of alt.sh output: recall, QPS, ratio branch / main."""
import sys, statistics as st
from collections import defaultdict
q, rc = defaultdict(list), {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) < 10: continue
    v, ef, rec, qps = f[0], int(f[5]), float(f[8]), float(f[9])
    q[(v, ef)].append(qps); rc[(v, ef)] = rec
for ef in sorted({k[1] for k in q}):
    m, b = st.median(q[('main', ef)]), st.median(q[('branch', ef)])
    print(f"ef {ef:4d}  main {rc[('main', ef)]:.4f} {m/1e3:6.1f}k  branch {rc[('branch', ef)]:.4f} {b/1e3:6.1f}k  {b/m:5.2f}x")

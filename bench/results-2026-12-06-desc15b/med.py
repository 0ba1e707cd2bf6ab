#!/usr/bin/env python3
# Medians per (variant, ef) of recall and QPS over the rounds of alt.sh's output.
import sys, statistics, collections
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    if line.startswith('#'): continue
    f = line.split()
    if len(f) < 8: continue
    d[(f[0], int(f[4]))].append((float(f[7]), float(f[8])))
for (name, ef), v in sorted(d.items()):
    print(f"{name:12s} ef {ef:4d} recall {statistics.median(x[0] for x in v):.4f} qps {statistics.median(x[1] for x in v):8.0f}  (n={len(v)}: {' '.join(f'{x[1]/1e3:.1f}' for x in v)})")

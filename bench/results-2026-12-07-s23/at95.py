#!/usr/bin/env python3
# at95.py FILE [target]: per binary and round, QPS at the target recall (1/QPS interpolated), then medians
import sys, collections, statistics
t = float(sys.argv[2]) if len(sys.argv) > 2 else 0.95
pts = collections.defaultdict(list)
for l in open(sys.argv[1]):
    f = l.split()
    if len(f) < 11 or f[2] != 'quiver': continue
    pts[(f[0], f[1])].append((float(f[8]), float(f[9]), f[5]))
res = collections.defaultdict(list)
for (b, r), p in pts.items():
    p.sort()
    v = None
    for (r0, q0, e0), (r1, q1, e1) in zip(p, p[1:]):
        if r0 <= t <= r1:
            w = (t - r0) / (r1 - r0) if r1 > r0 else 0
            v = 1 / ((1 - w) / q0 + w / q1); break
    if v is None and p and p[0][0] >= t: v = max(q for r_, q, e in p if r_ >= t)
    res[b].append(v)
for b, v in res.items():
    vv = [x for x in v if x]
    print(b, ' '.join('%.1fk' % (x / 1000) if x else '-' for x in v), ' median %.1fk' % (statistics.median(vv) / 1000) if vv else '')

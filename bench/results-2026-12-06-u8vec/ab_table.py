#!/usr/bin/env python3
"""Median QPS per (vec type, ef) over the rounds of ab.sh's output; recall per round checked equal."""
import re, statistics, sys
rows = {}
vt = None
for line in open(sys.argv[1]):
    m = re.match(r'## round \d+ vec-type (\w+)', line)
    if m:
        vt = m.group(1)
        continue
    if line.startswith('quiver'):
        f = line.split()
        ef, rec, qps = int(f[3]), float(f[6]), float(f[7])
        rows.setdefault((vt, ef), []).append((rec, qps))
efs = sorted({ef for _, ef in rows})
print(f"{'ef':>4} {'recall f32':>10} {'recall u8':>10} {'QPS f32':>9} {'QPS u8':>9} {'u8/f32':>7}   (medians of {len(rows[('f32', efs[0])])} rounds)")
for ef in efs:
    a, b = rows[('f32', ef)], rows[('u8', ef)]
    qa, qb = statistics.median(q for _, q in a), statistics.median(q for _, q in b)
    ra, rb = sorted({r for r, _ in a}), sorted({r for r, _ in b})
    print(f"{ef:>4} {'/'.join(map(str, ra)):>10} {'/'.join(map(str, rb)):>10} {qa:>9.0f} {qb:>9.0f} {qb / qa:>7.3f}")

#!/usr/bin/env python3
"""QPS at recall@10 0.95 and 0.99 per engine from a bench/quant_peers.sh output, and each
quiver setting's ratio to the best peer (issue 15's check).

usage: bench/quant_peers_table.py OUT.txt

With ROUNDS > 1 an engine appears once per round; at each ef its recall is the same in every
round (same index, same queries) and its QPS is the median over the rounds. A QPS at a
recall target is read off the curve between the two ef values around the target (the
first point when it is already above; none when no ef reaches it): the time per query,
1 / QPS, linearly in recall, since a walk's cost grows about linearly with ef and QPS
interpolated linearly would read high between distant points. A figure read between two
points more than COARSE apart in recall is marked "~": the ef list is too coarse there to
compare engines on it (add ef values around that engine's crossing).
"""
import re
import statistics
import sys

COARSE = 0.01


def parse(path):
    """engine name -> {ef: ([recall...], [qps...])}, in the order engines first appear."""
    engines, cur = {}, None
    for line in open(path):
        if line.startswith("## "):
            cur = engines.setdefault(line[3:].strip(), {})
            continue
        f = line.split()
        if cur is None or not f or line.startswith("#"):
            continue
        if f[0] == "quiver" and len(f) > 8 and f[1] == "hnsw":
            ef, rec, qps = int(f[3]), float(f[6]), float(f[7])
        elif re.fullmatch(r"\d+", f[0]) and len(f) >= 3:
            ef, rec, qps = int(f[0]), float(f[1]), float(f[2])
        else:
            continue
        r, q = cur.setdefault(ef, ([], []))
        r.append(rec)
        q.append(qps)
    return engines


def curve(points):
    """[(ef, recall, median qps, rounds)] sorted by ef."""
    return [(ef, statistics.median(r), statistics.median(q), len(q)) for ef, (r, q) in sorted(points.items())]


def at(c, target):
    """(QPS at target, whether it was read across a coarse bracket); (None, False) if none."""
    if not c:
        return None, False
    if c[0][1] >= target:
        return c[0][2], False
    for (_, r0, q0, _), (_, r1, q1, _) in zip(c, c[1:]):
        if r0 < target <= r1:
            t = 1 / q0 + (1 / q1 - 1 / q0) * (target - r0) / (r1 - r0)
            return 1 / t, r1 - r0 > COARSE
    return None, False


def main():
    engines = parse(sys.argv[1])
    curves = {name: curve(p) for name, p in engines.items()}
    fmt = lambda v: "%.1fk" % (v / 1000) if v else "-"
    mark = lambda v, coarse: fmt(v) + ("~" if v and coarse else "")
    best = {}
    for t in (0.95, 0.99):
        peers = [at(c, t)[0] for name, c in curves.items() if not name.startswith("quiver")]
        best[t] = max([v for v in peers if v] or [0])
    for name, c in curves.items():
        rounds = min(n for *_, n in c) if c else 0
        (a, ca), (b, cb) = at(c, 0.95), at(c, 0.99)
        line = "%-60s rounds %d  0.95: %-8s 0.99: %-8s" % (name, rounds, mark(a, ca), mark(b, cb))
        if name.startswith("quiver"):
            ratio = lambda v, t: "%.2fx" % (v / best[t]) if v and best[t] else "-"
            line += "  vs best peer: %s / %s" % (ratio(a, 0.95), ratio(b, 0.99))
        print(line)
        print("    " + " . ".join("%d: %.4f/%s" % (ef, r, fmt(q)) for ef, r, q, _ in c))


if __name__ == "__main__":
    main()

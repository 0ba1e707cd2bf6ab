#!/bin/sh
# bench/growth.sh -- cost against n: the same benchmarks on the first 100K, 300K and all 1M
# vectors of a set (quiver-bench --subset), Quiver next to hnswlib (HNSW) and Faiss (IVF).
#
#   bench/growth.sh run DATA_DIR OUT_DIR       (from the repository root, after make)
#   bench/growth.sh report OUT_DIR [PLOT.png]
#
# run: for each n in NS, one quiver-bench run per index kind, rows into
# OUT_DIR/hnsw-<n>.json and OUT_DIR/ivf-<n>.json. Each run is its own command, so on a
# shared machine LOCK="flock -x /tmp/quiver-cpu.lock" takes the machine for one run at a
# time. IVF uses nlist = 4*sqrt(n) (NLIST_1M overrides it at the full size).
# report: a Markdown table per index kind -- build seconds, memory MiB, and QPS at recall@10
# 0.95 and 0.99, read off each library's recall/QPS curve (log-linear between the two
# settings around the target) -- and a gnuplot PNG of QPS at recall 0.95 and build time
# against n.
# Knobs: NS="100000 300000 1000000" EFS=24,32,40,48,64,96,128,160,192
#   NPROBES=8,16,24,32,48,64,96,128 RUNS=3 BUILD=build LOCK= KINDS="hnsw ivf" NLIST_1M=
set -eu
cd "$(dirname "$0")/.."
cmd=${1:-}
case $cmd in
run)
  DATA=${2:?usage: bench/growth.sh run DATA_DIR OUT_DIR}
  OUT=${3:?usage: bench/growth.sh run DATA_DIR OUT_DIR}
  BUILD=${BUILD:-build}
  mkdir -p "$OUT"
  total=$(($(stat -c %s "$DATA/base.fvecs") / (4 + 4 * $(od -An -t d4 -N4 "$DATA/base.fvecs"))))
  for n in ${NS:-100000 300000 1000000}; do
    sub="--subset $n"
    [ "$n" -ge "$total" ] && sub=""
    for kind in ${KINDS:-hnsw ivf}; do
      if [ "$kind" = hnsw ]; then
        extra="--ef ${EFS:-24,32,40,48,64,96,128,160,192} --peers hnswlib"
      else
        nlist=$(awk -v n="$n" 'BEGIN { printf "%d", 4 * sqrt(n) + 0.5 }')
        [ -z "$sub" ] && [ -n "${NLIST_1M:-}" ] && nlist=$NLIST_1M
        extra="--nlist $nlist --nprobe ${NPROBES:-8,16,24,32,48,64,96,128} --peers faiss"
      fi
      echo "growth.sh: $kind n=$n" >&2
      # shellcheck disable=SC2086
      ${LOCK:-} "$BUILD/quiver-bench" --data "$DATA" --index "$kind" $sub $extra --build-threads 2 \
        --runs "${RUNS:-3}" --json > "$OUT/$kind-$n.json"
    done
  done
  ;;
report)
  OUT=${2:?usage: bench/growth.sh report OUT_DIR [PLOT.png]}
  exec python3 - "$OUT" "${3:-}" <<'PY'
import glob, json, math, os, subprocess, sys, tempfile
out, plot = sys.argv[1], sys.argv[2]
rows = []
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    with open(path) as f:
        rows += [json.loads(l) for l in f if l.strip()]
# Rows of a --reload run's second sweep (reload_s set) are the same index opened again:
# the tables use the first sweep's; the reload times are listed at the end.
reloaded = [r for r in rows if r.get("reload_s") is not None]
rows = [r for r in rows if r.get("reload_s") is None]
def best(rs, target):
    # QPS at recall == target on the recall/QPS curve: log-linear between the two settings
    # around it (a coarse setting grid would otherwise decide who "reaches" 0.95 first);
    # the cheapest setting when it already reaches the target.
    pts = sorted((r["recall"], r["qps"]) for r in rs)
    for i, (rc, q) in enumerate(pts):
        if rc >= target:
            if i == 0:
                return q
            r1, q1 = pts[i - 1]
            if rc == r1:
                return q
            return math.exp(math.log(q1) + (target - r1) / (rc - r1) * (math.log(q) - math.log(q1)))
    return None
table = {}                                   # (index, library, n) -> figures
for r in rows:
    key = (r["index"], r["library"], r["n"])
    table.setdefault(key, []).append(r)
def fmt(v, spec):
    return "-" if v is None else format(v, spec)
series = {}
for index in ("hnsw", "ivf"):
    keys = sorted(k for k in table if k[0] == index)
    if not keys:
        continue
    libs = sorted({k[1] for k in keys}, key=lambda l: (l != "quiver", l))
    ns = sorted({k[2] for k in keys})
    print("\n%s:\n" % index.upper())
    print("| n | library | build s | memory MiB | QPS @ recall 0.95 | QPS @ 0.99 | first setting >= 0.95 |")
    print("|---|---|---|---|---|---|---|")
    for n in ns:
        for lib in libs:
            rs = table.get((index, lib, n))
            if not rs:
                continue
            q95, q99 = best(rs, 0.95), best(rs, 0.99)
            at = sorted((r for r in rs if r["recall"] >= 0.95), key=lambda r: r["recall"])
            setting = ("ef %d" % at[0]["ef"]) if at and at[0]["ef"] else ("nprobe %d" % at[0]["nprobe"]) if at else "-"
            print("| %d | %s | %.1f | %.1f | %s | %s | %s |" % (n, lib, rs[0]["build_s"], rs[0]["memory_bytes"] / 2**20,
                  fmt(q95, ".0f"), fmt(q99, ".0f"), setting))
            series.setdefault((index, lib), []).append((n, q95, q99, rs[0]["build_s"], rs[0]["memory_bytes"] / 2**20))
    print("\n| n | " + " | ".join("%s / %s QPS @0.95 | @0.99" % (libs[0], l) for l in libs[1:]) +
          " | " + " | ".join("%s / %s build | memory" % (libs[0], l) for l in libs[1:]) + " |")
    print("|---|" + "---|" * (4 * (len(libs) - 1)))
    for n in ns:
        a = table.get((index, libs[0], n))
        cells_q, cells_b = [], []
        for l in libs[1:]:
            b = table.get((index, l, n))
            for target in (0.95, 0.99):
                qa, qb = (best(a, target), best(b, target)) if a and b else (None, None)
                cells_q.append("%.2fx" % (qa / qb) if qa and qb else "-")
            cells_b.append("%.2fx" % (a[0]["build_s"] / b[0]["build_s"]) if a and b else "-")
            cells_b.append("%.3fx" % (a[0]["memory_bytes"] / b[0]["memory_bytes"]) if a and b else "-")
        print("| %d | %s | %s |" % (n, " | ".join(cells_q), " | ".join(cells_b)))
    for lib in libs:
        s = series.get((index, lib), [])
        if len(s) >= 2 and s[0][1] and s[-1][1]:
            print("\n%s %s: QPS @0.95 from n=%d to n=%d: %.0f -> %.0f (x%.2f)" %
                  (index, lib, s[0][0], s[-1][0], s[0][1], s[-1][1], s[-1][1] / s[0][1]))
seen = set()
for r in reloaded:
    key = (r["index"], r["library"], r["n"])
    if key not in seen:
        seen.add(key)
        print("\n%s %s n=%d: reloaded in %.3f s, first search %.2f ms" % (r["index"], r["library"], r["n"],
              r["reload_s"], r["first_search_s"] * 1e3))
if plot:
    tmp = tempfile.mkdtemp()
    cmds = ["set terminal pngcairo size 1100,450 font ',10' noenhanced", "set output '%s'" % plot, "set multiplot layout 1,2",
            "set logscale xy", "set xlabel 'n (base vectors)'", "set key top right", "set grid"]
    plots_q, plots_b = [], []
    for (index, lib), s in sorted(series.items()):
        path = os.path.join(tmp, "%s-%s.dat" % (index, lib))
        with open(path, "w") as f:
            for n, q95, q99, b, m in s:
                f.write("%d %s %s %f %f\n" % (n, q95 or "NaN", q99 or "NaN", b, m))
        plots_q.append("'%s' using 1:2 with linespoints title '%s %s'" % (path, lib, index))
        plots_b.append("'%s' using 1:4 with linespoints title '%s %s'" % (path, lib, index))
    cmds += ["set title 'QPS at recall@10 >= 0.95 (1 thread)'", "set ylabel 'queries / s'", "plot " + ", ".join(plots_q),
             "set title 'build time (2 threads)'", "set ylabel 'seconds'", "plot " + ", ".join(plots_b),
             "unset multiplot"]
    subprocess.run(["gnuplot"], input="\n".join(cmds), text=True, check=True)
    print("\ngrowth.sh: plot written to %s" % plot, file=sys.stderr)
PY
  ;;
*)
  echo "usage: bench/growth.sh run DATA_DIR OUT_DIR | report OUT_DIR [PLOT.png]" >&2
  exit 2
  ;;
esac

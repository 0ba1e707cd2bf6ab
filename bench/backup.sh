#!/bin/sh
# bench/backup.sh -- backup and restore of a 1M-point collection (issue 20), side by side
# with the tools a user would otherwise reach for, on the same files in the same run:
#   - mdb_copy -c  (lmdb-utils): LMDB's compacting copy of the whole database file, the
#     other way to take a consistent copy (of the whole environment only, no checksum);
#   - sha256sum    the checksum alone, over the backup file: the floor of a verify;
#   - cp           a plain copy of the backup file (page cache warm): the floor of writing it.
#
#   bench/backup.sh              (from the repository root, after `make`)
#
# Knobs (environment): BUILD=build  DATA=$HOME/.cache/quiver-data/sift-debian-1m
#   WORK=$HOME/.cache/quiver-backup-bench (WORK/src is built once, about 3 min on 2 cores,
#   and reused)  RUNS=3  LIMIT= (fewer points, e.g. 100000)
# Run the first build outside the exclusive benchmark lock:
#   build/quiver-backup-bench --data $DATA --dir $WORK --build-only
# Output: every row of every run (JSON), then the median of each figure over the runs,
#   median phase=backup seconds=1.90 ...
# and the ratios of quiver's backup / verify to the references.
set -eu

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
DATA=${DATA:-$HOME/.cache/quiver-data/sift-debian-1m}
WORK=${WORK:-$HOME/.cache/quiver-backup-bench}
RUNS=${RUNS:-3}
BIN=$BUILD/quiver-backup-bench
for f in "$BIN" "$DATA/base.fvecs" "$DATA/query.fvecs"; do
  [ -e "$f" ] || { echo "backup.sh: missing $f (run make; see the datasets in the brief)" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "backup.sh: python3 not found" >&2; exit 1; }

OUT=$(mktemp "${TMPDIR:-/tmp}/quiver-backup-bench-XXXXXX")
trap 'rm -f "$OUT"; rm -rf "$WORK/mdb_copy" "$WORK/cp.snapshot"' EXIT INT TERM

secs() {  # secs CMD...: run it, print the wall seconds
  python3 - "$@" <<'EOF'
import subprocess, sys, time
t = time.monotonic()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(f"{time.monotonic() - t:.2f}")
EOF
}

i=1
while [ "$i" -le "$RUNS" ]; do
  "$BIN" --data "$DATA" --dir "$WORK" ${LIMIT:+--limit "$LIMIT"} --json | tee -a "$OUT"
  if command -v mdb_copy >/dev/null; then
    rm -rf "$WORK/mdb_copy"; mkdir -p "$WORK/mdb_copy"
    s=$(secs mdb_copy -c "$WORK/src" "$WORK/mdb_copy")
    b=$(stat -c %s "$WORK/mdb_copy/data.mdb")
    echo "{\"phase\":\"ref_mdb_copy_c\",\"seconds\":$s,\"bytes\":$b}" | tee -a "$OUT"
    rm -rf "$WORK/mdb_copy"
  else
    echo "backup.sh: mdb_copy not found (apt-get install lmdb-utils): no mdb_copy -c reference" >&2
  fi
  s=$(secs sha256sum "$WORK/bench.snapshot")
  echo "{\"phase\":\"ref_sha256sum\",\"seconds\":$s}" | tee -a "$OUT"
  s=$(secs sh -c "cp '$WORK/bench.snapshot' '$WORK/cp.snapshot' && sync '$WORK/cp.snapshot'")
  echo "{\"phase\":\"ref_cp_sync\",\"seconds\":$s}" | tee -a "$OUT"
  rm -f "$WORK/cp.snapshot"
  i=$((i + 1))
done

python3 - "$OUT" <<'EOF'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows.setdefault(r.pop("phase"), []).append(r)
med = {}
for phase, rs in rows.items():
    keys = [k for k, v in rs[0].items() if isinstance(v, (int, float))]
    med[phase] = {k: statistics.median(r[k] for r in rs) for k in keys}
    print("median phase=%s runs=%d %s" % (phase, len(rs), " ".join(f"{k}={v:g}" for k, v in med[phase].items())))
def ratio(a, b, what):
    if a in med and b in med and med[b]["seconds"] > 0:
        print(f"ratio {what}={med[a]['seconds'] / med[b]['seconds']:.2f}")
ratio("backup", "ref_mdb_copy_c", "backup/mdb_copy_c")
ratio("backup", "ref_cp_sync", "backup/cp_sync")
ratio("verify", "ref_sha256sum", "verify/sha256sum")
ratio("restore", "reopen", "restore/reopen")
EOF

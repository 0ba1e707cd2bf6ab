#!/bin/sh
# bench/load.sh -- HTTP load test of quiverd with wrk: search QPS and p50/p99 latency at
# 1 and 2 server threads, on real SIFT vectors.
#
#   bench/load.sh                 (from the repository root, after `make`)
#
# Steps: start build/quiverd on a free port with a temporary data directory, create an
# hnsw collection, upsert base vectors from ../shared/data/sift-debian-100k/base.fvecs
# over HTTP in batches, turn query.fvecs into JSON search bodies (bench/load.lua cycles
# through them), then for each thread count restart quiverd on the same data and run wrk.
#
# Knobs (environment): BUILD=build  N=100000 (base points loaded)  NQ=1000 (queries)
#   K=10  EF=64  DURATION=10s  CONNECTIONS=8  WRK_THREADS=2  THREADS="1 2"
#   DATA=../shared/data/sift-debian-100k  KEEP=1 (keep the temporary directory)
#   SERVER_PIN / WRK_PIN: a command prefix for quiverd / wrk, e.g. SERVER_PIN="taskset -c 0"
#   WRK_PIN="taskset -c 1", so that the load generator does not take the server's core
#   QV_LOAD_CLOSE=1: "Connection: close" on every request (a new connection each time)
#   TLS=1: each thread count is measured over plain HTTP and then over TLS (quiverd with a
#   throwaway self-signed P-256 certificate that openssl makes in the temporary directory;
#   wrk speaks TLS 1.3 to it), and the ratio https/http is printed
# Output: three lines per thread count: wrk's figures and the CPU the server used,
#   quiverd-load threads=T connections=C ... qps=Q p50_us=A p99_us=B non2xx=E server_cores=U
# the same searches in-process on the same collection after quiverd has exited
# (build/quiver-inproc-search, same threads, same SERVER_PIN),
#   inproc-search threads=T k=K ef=E queries=N qps=Q p50_us=A p99_us=B
# and the ratios: HTTP / in-process QPS, and the same per core that each side used
# (wrk shares the machine: on 2 cores the server cannot have both to itself).
#   ratio threads=T http/inproc=R per_server_core=P
# With TLS=1 also the https row and
#   ratio threads=T https/http=R
set -eu

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=${N:-100000}
NQ=${NQ:-1000}
K=${K:-10}
EF=${EF:-64}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-8}
WRK_THREADS=${WRK_THREADS:-2}
THREADS=${THREADS:-"1 2"}
DATA=${DATA:-../shared/data/sift-debian-100k}
BIN=$BUILD/quiverd

case $DURATION in
  *[0-9]s) ;;
  *) echo "load.sh: DURATION must be seconds, like 10s (got $DURATION)" >&2; exit 1 ;;
esac
for f in "$BIN" "$BUILD/quiver-inproc-search" "$DATA/base.fvecs" "$DATA/query.fvecs"; do
  [ -e "$f" ] || { echo "load.sh: missing $f (run make; datasets live in ../shared/data)" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "load.sh: wrk not found (make deps installs it)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "load.sh: python3 not found" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/quiver-load-XXXXXX")
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] && echo "load.sh: kept $TMP" >&2 || rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# start_server THREADS [https]: sets PID and PORT from the ready line
start_server() {
  rm -f "$TMP/ready"
  tls=
  [ "${2:-http}" = https ] && tls="--tls-cert $TMP/cert.pem --tls-key $TMP/key.pem"
  # shellcheck disable=SC2086
  ${SERVER_PIN:-} "$BIN" --listen 127.0.0.1:0 --data "$TMP/db" --threads "$1" --log-level warn $tls >"$TMP/ready" &
  PID=$!
  i=0
  while ! grep -q "listening on" "$TMP/ready" 2>/dev/null; do
    i=$((i + 1))
    [ $i -gt 600 ] && { echo "load.sh: quiverd did not start" >&2; exit 1; }
    kill -0 "$PID" 2>/dev/null || { echo "load.sh: quiverd exited" >&2; exit 1; }
    sleep 0.1
  done
  PORT=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$TMP/ready")
}

stop_server() {
  kill -TERM "$PID"
  wait "$PID" || { echo "load.sh: quiverd exited with an error" >&2; exit 1; }
  PID=
}

start_server 1
echo "load.sh: loading $N base vectors from $DATA into quiverd (port $PORT)..." >&2
python3 - "$PORT" "$DATA" "$N" "$NQ" "$K" "$EF" "$TMP/bodies.jsonl" <<'PY'
import json, struct, sys, time, urllib.request
port, data, n, nq, k, ef, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
url = "http://127.0.0.1:%s" % port

def fvecs(path, limit):
    with open(path, "rb") as f:
        i = 0
        while i < limit:
            head = f.read(4)
            if len(head) < 4:
                break
            (d,) = struct.unpack("<i", head)
            yield list(struct.unpack("<%df" % d, f.read(4 * d)))
            i += 1

def call(method, path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())

first = next(fvecs(data + "/base.fvecs", 1))
call("PUT", "/collections/sift", {"dim": len(first), "metric": "l2",
                                  "index": {"type": "hnsw", "m": 16, "ef_construction": 200}})
t0, batch, done = time.time(), [], 0
for i, v in enumerate(fvecs(data + "/base.fvecs", n)):
    batch.append({"id": i, "vector": v})
    if len(batch) == 1000:
        done += call("PUT", "/collections/sift/points", {"points": batch})["upserted"]
        batch = []
if batch:
    done += call("PUT", "/collections/sift/points", {"points": batch})["upserted"]
print("load.sh: upserted %d points in %.1f s" % (done, time.time() - t0), file=sys.stderr)
with open(out, "w") as f:
    for q in fvecs(data + "/query.fvecs", nq):
        f.write(json.dumps({"vector": q, "k": k, "ef": ef}, separators=(",", ":")) + "\n")
PY
stop_server

# CPU seconds the process has used (utime + stime from /proc, in clock ticks)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
SECS=${DURATION%s}

if [ "${TLS:-0}" = 1 ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >/dev/null 2>&1 || { echo "load.sh: openssl cannot make a certificate" >&2; exit 1; }
fi

# measure THREADS SCHEME: one wrk run against a fresh quiverd; sets res and cores
measure() {
  start_server "$1" "$2"
  # one warm-up second, then the measured run
  wrk -t1 -c1 -d1s -s bench/load.lua "$2://127.0.0.1:$PORT" -- "$TMP/bodies.jsonl" sift >/dev/null
  c0=$(cpu_ticks "$PID")
  res=$(${WRK_PIN:-} wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" -s bench/load.lua \
          "$2://127.0.0.1:$PORT" -- "$TMP/bodies.jsonl" sift | sed -n 's/^RESULT //p')
  c1=$(cpu_ticks "$PID")
  # the server's share of the machine while wrk ran (it shares the cores with wrk)
  cores=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" -v s="$SECS" 'BEGIN { printf "%.2f", (b - a) / hz / s }')
  stop_server
}

for t in $THREADS; do
  measure "$t" http
  echo "quiverd-load threads=$t connections=$CONNECTIONS k=$K ef=$EF n=$N $res server_cores=$cores"
  if [ "${TLS:-0}" = 1 ]; then
    http_res=$res
    measure "$t" https
    echo "quiverd-load-tls threads=$t connections=$CONNECTIONS k=$K ef=$EF n=$N $res server_cores=$cores"
    awk -v h="$(echo "$http_res" | sed -n 's/.*qps=\([0-9.]*\).*/\1/p')" \
        -v s="$(echo "$res" | sed -n 's/.*qps=\([0-9.]*\).*/\1/p')" -v t="$t" \
        'BEGIN { printf "ratio threads=%d https/http=%.2f\n", t, s / h }'
    res=$http_res
  fi
  # the same searches in-process, on the same collection (same graph), same threads and pinning
  inp=$(${SERVER_PIN:-} "$BUILD/quiver-inproc-search" --data "$TMP/db" --collection sift \
          --queries "$DATA/query.fvecs" --nq "$NQ" --k "$K" --ef "$EF" --threads "$t" --duration "$SECS")
  echo "$inp"
  http_qps=$(echo "$res" | sed -n 's/.*qps=\([0-9.]*\).*/\1/p')
  in_qps=$(echo "$inp" | sed -n 's/.*qps=\([0-9.]*\).*/\1/p')
  awk -v h="$http_qps" -v i="$in_qps" -v c="$cores" -v t="$t" 'BEGIN {
    printf "ratio threads=%d http/inproc=%.2f per_server_core=%.2f (HTTP QPS per core the server used / in-process QPS per thread)\n",
           t, h / i, (c > 0 ? h / c : 0) / (i / t) }'
done

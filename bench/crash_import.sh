#!/bin/sh
# bench/crash_import.sh -- kill -9 quiverd in the middle of an HTTP import, restart it,
# and check that no acknowledged batch was lost; times the restart.
#
#   bench/crash_import.sh DATA_DIR          (from the repository root, after make)
#
# Loads base.fvecs in batches of BATCH points over one connection into a fresh hnsw
# collection, counting the batches quiverd acknowledged (200), and after KILL_AFTER
# batches sends one more and SIGKILLs the server while it is in flight. Then it starts
# quiverd again on the same data and reports
#   crash acked_batches=A acked_points=P count_after=C ready_s=R first_answer_s=F
# and checks: count_after is P or P + BATCH (the batch in flight is all there or not at
# all), every point of the last acknowledged batch and a sample of the earlier ones reads
# back with its vector. Exit status 1 on any loss.
# Knobs: BUILD=build BATCH=1000 KILL_AFTER=500 CKPT=0 (quiverd --checkpoint-every; 0: only
# on exit, so a crash means a rebuild from the stored points) THREADS=2 KEEP=0
set -eu
cd "$(dirname "$0")/.."
DATA=${1:?usage: bench/crash_import.sh DATA_DIR}
BUILD=${BUILD:-build}
[ -x "$BUILD/quiverd" ] || { echo "crash_import.sh: no $BUILD/quiverd (run make)" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/quiver-crash-XXXXXX")
trap '[ "${KEEP:-0}" = 1 ] && echo "crash_import.sh: kept $TMP" >&2 || rm -rf "$TMP"' EXIT INT TERM
exec python3 - "$BUILD/quiverd" "$DATA" "$TMP" "${BATCH:-1000}" "${KILL_AFTER:-500}" "${CKPT:-0}" "${THREADS:-2}" <<'PY'
import http.client, json, os, signal, struct, subprocess, sys, time
binp, data, tmp, batch, kill_after, ckpt, threads = sys.argv[1:8]
batch, kill_after, ckpt, threads = int(batch), int(kill_after), int(ckpt), int(threads)

def rows(path, limit):
    out = []
    with open(path, "rb") as f:
        while len(out) < limit:
            head = f.read(4)
            if len(head) < 4:
                break
            (d,) = struct.unpack("<i", head)
            out.append(struct.unpack("<%df" % d, f.read(4 * d)))
    return out

vecs = rows(data + "/base.fvecs", (kill_after + 1) * batch)
if len(vecs) < (kill_after + 1) * batch:
    sys.exit("crash_import.sh: base.fvecs has fewer than (KILL_AFTER + 1) * BATCH rows")
bodies = []
for b in range(kill_after + 1):
    pts = ('{"id":%d,"vector":[%s]}' % (i, ",".join(repr(x) for x in vecs[i]))
           for i in range(b * batch, (b + 1) * batch))
    bodies.append(('{"points":[' + ",".join(pts) + "]}").encode())

def start():
    args = [binp, "--listen", "127.0.0.1:0", "--data", tmp + "/db", "--threads", str(threads), "--log-level", "warn"]
    if ckpt:
        args += ["--checkpoint-every", str(ckpt)]
    t0 = time.monotonic()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    for line in p.stdout:
        if "listening on" in line:
            return p, int(line.rsplit(":", 1)[1]), t0, time.monotonic() - t0
    sys.exit("crash_import.sh: quiverd did not start")

def call(c, method, path, body=None):
    c.request(method, path, body, {"Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, r.read()

p, port, _, _ = start()
c = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
st, _ = call(c, "PUT", "/collections/v", json.dumps({"dim": len(vecs[0]), "metric": "l2",
             "index": {"type": "hnsw", "m": 16, "ef_construction": 200}}))
assert st == 201, st
acked = 0
for b in range(kill_after):
    st, body = call(c, "PUT", "/collections/v/points", bodies[b])
    if st != 200:
        sys.exit("crash_import.sh: batch %d answered %d: %s" % (b, st, body[:200]))
    acked += 1
c.request("PUT", "/collections/v/points", bodies[kill_after], {"Content-Type": "application/json"})
time.sleep(0.05)                                  # in flight: parsed, committing or indexing
os.kill(p.pid, signal.SIGKILL)
p.wait()
c.close()

p, port, t0, ready = start()
c = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
q = json.dumps({"vector": list(vecs[0]), "k": 10}).encode()
st, body = call(c, "POST", "/collections/v/search", q)
first = time.monotonic() - t0
assert st == 200, (st, body[:200])
st, body = call(c, "GET", "/collections/v")
count = json.loads(body)["count"]
print("crash acked_batches=%d acked_points=%d count_after=%d ready_s=%.3f first_answer_s=%.3f checkpoint_every=%d" %
      (acked, acked * batch, count, ready, first, ckpt))
bad = []
if count not in (acked * batch, (acked + 1) * batch):
    bad.append("count %d is neither %d nor %d" % (count, acked * batch, (acked + 1) * batch))
check = list(range((acked - 1) * batch, acked * batch)) + list(range(0, acked * batch, 997))
for i in check:
    st, body = call(c, "GET", "/collections/v/points/%d" % i)
    if st != 200:
        bad.append("point %d: %d" % (i, st))
        break
    v = json.loads(body)["vector"]
    if any(abs(a - b) > 1e-3 * max(1.0, abs(b)) for a, b in zip(v, vecs[i])):
        bad.append("point %d: vector differs" % i)
        break
c.close()
p.terminate()
p.wait()
if bad:
    sys.exit("crash_import.sh: LOST: " + "; ".join(bad))
print("crash check: every acknowledged batch is there (%d points read back)" % len(check))
PY

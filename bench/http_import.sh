#!/bin/sh
# bench/http_import.sh -- load a base set into quiverd over HTTP: PUT .../points in batches
# of BATCH points from CONNECTIONS client connections at once, into a fresh hnsw
# collection, and time it (first request sent -> last batch acknowledged).
#
#   bench/http_import.sh DATA_DIR          (from the repository root, after make)
#
# The request bodies are encoded before the clock starts (the client shares the 2 cores
# with the server; encoding 1M vectors as JSON in Python would cost more than the server's
# parsing of them). Batch i goes to connection i % CONNECTIONS; the ids are the row
# numbers. Output:
#   http-import n=N batch=B connections=C server_threads=T seconds=S points_per_s=P
# Knobs: BUILD=build N=(all rows) BATCH=1000 CONNECTIONS=2 THREADS=2 M=16 EFC=200 KEEP=0
set -eu
cd "$(dirname "$0")/.."
DATA=${1:?usage: bench/http_import.sh DATA_DIR}
BUILD=${BUILD:-build}
[ -x "$BUILD/quiverd" ] || { echo "http_import.sh: no $BUILD/quiverd (run make)" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/quiver-http-import-XXXXXX")
trap '[ "${KEEP:-0}" = 1 ] && echo "http_import.sh: kept $TMP" >&2 || rm -rf "$TMP"' EXIT INT TERM
exec python3 - "$BUILD/quiverd" "$DATA" "$TMP" "${N:-0}" "${BATCH:-1000}" "${CONNECTIONS:-2}" "${THREADS:-2}" \
    "${M:-16}" "${EFC:-200}" <<'PY'
import http.client, json, os, struct, subprocess, sys, threading, time
binp, data, tmp, n, batch, conns, threads, m, efc = sys.argv[1:10]
n, batch, conns, threads, m, efc = int(n), int(batch), int(conns), int(threads), int(m), int(efc)

def rows(path, limit):
    with open(path, "rb") as f:
        i = 0
        while not limit or i < limit:
            head = f.read(4)
            if len(head) < 4:
                return
            (d,) = struct.unpack("<i", head)
            yield struct.unpack("<%df" % d, f.read(4 * d))
            i += 1

print("http_import.sh: encoding the batches...", file=sys.stderr)
bodies, cur, dim, total = [], [], 0, 0
for i, v in enumerate(rows(data + "/base.fvecs", n)):
    dim = len(v)
    cur.append('{"id":%d,"vector":[%s]}' % (i, ",".join(repr(x) for x in v)))
    if len(cur) == batch:
        bodies.append(('{"points":[' + ",".join(cur) + "]}").encode())
        cur = []
    total = i + 1
if cur:
    bodies.append(('{"points":[' + ",".join(cur) + "]}").encode())

p = subprocess.Popen([binp, "--listen", "127.0.0.1:0", "--data", tmp + "/db", "--threads", str(threads),
                      "--log-level", "warn"], stdout=subprocess.PIPE, text=True)
port = None
for line in p.stdout:
    if "listening on" in line:
        port = int(line.rsplit(":", 1)[1])
        break
if port is None:
    sys.exit("http_import.sh: quiverd did not start")
c = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
c.request("PUT", "/collections/v", json.dumps({"dim": dim, "metric": "l2",
          "index": {"type": "hnsw", "m": m, "ef_construction": efc}}), {"Content-Type": "application/json"})
r = c.getresponse()
if r.status != 201:
    sys.exit("http_import.sh: create answered %d: %s" % (r.status, r.read()[:200]))
r.read()
c.close()             # idle through the import: quiverd would time it out (--timeout, 30 s)
errors = []

def send(k):
    cc = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    for i in range(k, len(bodies), conns):
        cc.request("PUT", "/collections/v/points", bodies[i], {"Content-Type": "application/json"})
        rr = cc.getresponse()
        body = rr.read()
        if rr.status != 200:
            errors.append("batch %d: %d %s" % (i, rr.status, body[:200]))
            return
    cc.close()

t0 = time.monotonic()
ts = [threading.Thread(target=send, args=(k,)) for k in range(conns)]
for t in ts:
    t.start()
for t in ts:
    t.join()
secs = time.monotonic() - t0
if errors:
    sys.exit("http_import.sh: " + errors[0])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
c.request("GET", "/collections/v")
info = json.loads(c.getresponse().read())
if info.get("count") != total:
    sys.exit("http_import.sh: count %s after loading %d points" % (info.get("count"), total))
print("http-import n=%d batch=%d connections=%d server_threads=%d seconds=%.1f points_per_s=%.0f" %
      (total, batch, conns, threads, secs, total / secs))
c.close()
p.terminate()
p.wait()
PY

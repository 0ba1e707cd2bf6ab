#!/bin/sh
# bench/restart.sh -- quiverd restart: time from process start to the first search answer,
# and the server's memory before and after warm-up, on an existing database.
#
#   bench/restart.sh DB COLLECTION [QUERY_FVECS]     (from the repository root, after make)
#
# Starts $BUILD/quiverd on DB (port 0, one worker thread), and from the moment just before
# exec sends the first query of QUERY_FVECS (default: sift-debian-1m's) as soon as the
# listening line appears, retrying until it is answered. Then it runs SEARCHES searches
# (default 10000) cycling through the queries over one keep-alive connection, and prints:
#   restart cold=0|1 ready_s=R first_answer_s=F
#   rss_at_first_answer anon_mb=A file_mb=F total_mb=T
#   rss_after_searches n=N anon_mb=A file_mb=F total_mb=T index_mb=I ratio=T/I
# index_mb is the collection's memory_bytes (GET /collections/NAME): the index's own size.
# COLD=1 empties the page cache first (echo 3 > /proc/sys/vm/drop_caches; needs root), so
# the binary, the libraries, LMDB and the snapshot come from the disk.
# Knobs: BUILD=build K=10 EF=64 SEARCHES=10000 COLD=0
set -eu
cd "$(dirname "$0")/.."
DB=${1:?usage: bench/restart.sh DB COLLECTION [QUERY_FVECS]}
COLL=${2:?usage: bench/restart.sh DB COLLECTION [QUERY_FVECS]}
Q=${3:-$HOME/.cache/quiver-data/sift-debian-1m/query.fvecs}
BUILD=${BUILD:-build}
[ -x "$BUILD/quiverd" ] || { echo "restart.sh: no $BUILD/quiverd (run make)" >&2; exit 1; }
[ -d "$DB" ] || { echo "restart.sh: no database at $DB" >&2; exit 1; }
if [ "${COLD:-0}" = 1 ]; then
  sync
  echo 3 > /proc/sys/vm/drop_caches || { echo "restart.sh: cannot drop the page cache (root?)" >&2; exit 1; }
fi
exec python3 - "$BUILD/quiverd" "$DB" "$COLL" "$Q" "${K:-10}" "${EF:-64}" "${SEARCHES:-10000}" "${COLD:-0}" <<'PY'
import http.client, json, os, struct, subprocess, sys, time
binp, db, coll, qpath, k, ef, nsearch, cold = sys.argv[1:9]
k, ef, nsearch = int(k), int(ef), int(nsearch)

def queries(path, limit=1000):
    out = []
    with open(path, "rb") as f:
        while len(out) < limit:
            head = f.read(4)
            if len(head) < 4:
                break
            (d,) = struct.unpack("<i", head)
            out.append(list(struct.unpack("<%df" % d, f.read(4 * d))))
    return out

def rss(pid):
    v = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("RssAnon", "RssFile", "RssShmem", "VmRSS"):
                v[name] = int(rest.split()[0]) / 1024.0
    return v

qs = queries(qpath)
bodies = [json.dumps({"vector": q, "k": k, "ef": ef}).encode() for q in qs]
t0 = time.monotonic()
p = subprocess.Popen([binp, "--listen", "127.0.0.1:0", "--data", db, "--threads", "1", "--log-level", "warn"],
                     stdout=subprocess.PIPE, text=True)
port = None
for line in p.stdout:
    if "listening on" in line:
        port = int(line.rsplit(":", 1)[1])
        break
t_ready = time.monotonic() - t0
if port is None:
    sys.exit("restart.sh: quiverd exited before listening")
path = "/collections/%s/search" % coll
while True:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        c.request("POST", path, bodies[0], {"Content-Type": "application/json"})
        r = c.getresponse()
        body = r.read()
        if r.status == 200:
            break
        sys.exit("restart.sh: search answered %d: %s" % (r.status, body[:200]))
    except ConnectionError:
        time.sleep(0.001)
t_first = time.monotonic() - t0
r0 = rss(p.pid)
print("restart cold=%s ready_s=%.3f first_answer_s=%.3f" % (cold, t_ready, t_first))
print("rss_at_first_answer anon_mb=%.1f file_mb=%.1f total_mb=%.1f" % (r0["RssAnon"], r0["RssFile"], r0["VmRSS"]))
for i in range(nsearch):
    c.request("POST", path, bodies[i % len(bodies)], {"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit("restart.sh: search %d answered %d" % (i, r.status))
r1 = rss(p.pid)
c.request("GET", "/collections/%s" % coll)
info = json.loads(c.getresponse().read())
imb = info.get("memory_bytes", 0) / 1048576.0
print("rss_after_searches n=%d anon_mb=%.1f file_mb=%.1f total_mb=%.1f index_mb=%.1f ratio=%.2f" %
      (nsearch, r1["RssAnon"], r1["RssFile"], r1["VmRSS"], imb, r1["VmRSS"] / imb if imb else 0))
c.close()
p.terminate()
if p.wait() != 0:
    sys.exit("restart.sh: quiverd exited with status %d" % p.returncode)
PY

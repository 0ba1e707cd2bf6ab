#!/usr/bin/env python3
"""tests/cluster/cluster_test.py -- make cluster-test: a 3-member etcd cluster and 3 quiverd
nodes on loopback (ports picked free, everything in a temp dir, so parallel runs do not
clash), then:
  1. bad input: a replication_factor above the live nodes, a duplicate create, a conflicting
     shard config, quiverd with etcd down, a second node with a taken id -- each a clear error;
  2. siftsmall (10k x 128, l2) into collection "sift" (3 shards x 2 replicas, HNSW) and into a
     single plain quiverd; sharded recall@10 against the ground truth equals the single node's
     (within 0.02), and the scatter-gather cost (QPS, p99) is printed beside the single node's;
     then PATCH of both APIs changes the codes, m and ef_search on every part (each node's
     copy, every shard replica) before the reply, and bad input changes nothing anywhere;
  3. upserts under load from 2 writers; kill -9 the leader of shard 0; writes resume within the
     lease time (+ one poll and slack); no acknowledged write is lost (every in-sync replica of
     every shard holds every acknowledged point of its shard); searches stay complete (the
     other replica answers) or say partial;
  4. the killed node restarts and catches up (snapshot + log): back in sync for its shards,
     with the same points as the leader, and with a parameter change made while it was down;
  5. operations: a 4th node joins; bad moves and drains give 4xx; under write load a shard
     replica (its leader) moves to node 4, then a node is drained, then a rebalance fills it
     again; no acknowledged write is lost and an exact (flat) search equals a single node's
     with the same points.
Needs etcd (Debian etcd-server): without it SKIP, or a failure under CI=true.
Environment: QV_BUILD_DIR (default build), QV_DATA_DIR (default ../shared/data).
"""
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

BUILD = os.environ.get("QV_BUILD_DIR", "build")
DATA = os.path.join(os.environ.get("QV_DATA_DIR", "../shared/data"), "siftsmall")
LEASE = 2
FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


def free_ports(n):
    """n free ports below the kernel's ephemeral range: etcd and quiverd bind them later, and
    a port from bind(0) could meanwhile go to another process's bind(0) or connect() (make
    test runs this beside the sanitizer suites, whose servers and clients take such ports)."""
    lo, hi = 20000, 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            hi = min(int(f.read().split()[0]), hi)
    except (OSError, ValueError, IndexError):
        pass
    if hi - lo < 1000:   # a range starting below 21000 (Linux: 32768): high ports, as likely free as bind(0)
        lo, hi = 61000, 65536
    rnd = random.SystemRandom()
    socks = []
    while len(socks) < n:
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", rnd.randrange(lo, hi)))
            socks.append(s)
        except OSError:
            s.close()
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def http(method, url, body=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null"), dict(r.headers)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw), dict(e.headers)
        except ValueError:
            return e.code, raw.decode(errors="replace"), dict(e.headers)
    except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError) as e:
        return 0, str(e), {}


def read_vecs(path, kind, limit=None):
    out = []
    with open(path, "rb") as f:
        while limit is None or len(out) < limit:
            h = f.read(4)
            if not h:
                break
            d = struct.unpack("<i", h)[0]
            out.append(list(struct.unpack("<%d%s" % (d, kind), f.read(4 * d))))
    return out


def wait_for(pred, timeout, step=0.1):
    t0 = time.time()
    while time.time() - t0 < timeout:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None



def hang_during_patch(cl, base):
    """A node that hangs with its connections open (SIGSTOP) while a PATCH is applied: the
    reply waits for it only until its lease lapses and names it; the node applies the change
    by itself once it runs again, and is back in sync before the next step."""
    nodes = (1, 2, 3)
    hung = 2
    cl.procs[hung].send_signal(signal.SIGSTOP)
    t = time.time()
    try:
        s, r, _ = http("PATCH", cl.url(3) + "/collections/sift", {"index": {"ef_search": 70}}, 120)
    finally:
        took = time.time() - t
        cl.procs[hung].send_signal(signal.SIGCONT)
    msg = json.dumps(r)
    check(s == 503 and "cluster_partial" in msg and ("node %d" % hung) in msg and "lease" in msg and took < 20,
          "PATCH while node %d hangs: 503 cluster_partial naming it after %.1f s, not its 10 min timeout (%s %s)"
          % (hung, took, s, msg[:300]))
    want = {"quant": "none", "ef_search": 70}
    ok = wait_for(lambda: all(v == want for v in parts_index(cl, "sift", nodes).values()), 60, 0.5)
    check(bool(ok), "the node that hung applied it by itself once running again (%s)"
          % ({k: v for k, v in parts_index(cl, "sift", nodes).items() if v != want} or "all"))
    # every node sees it registered again; then a write (point 0 again, unchanged) reaches
    # every shard leader, which takes a follower it had missed out of sync until it catches up
    wait_for(lambda: all(hung in [x["id"] for x in cl.status(n)["nodes"]] for n in nodes), 30, 0.2)
    for i in range(3):
        http("PUT", cl.url(1) + "/collections/sift/points", {"points": [{"id": i, "vector": base[i]}]})

    def in_sync():
        return all(set(x["replicas"]) <= set(x["in_sync"]) for x in shards_of(cl.status(1), "sift"))
    check(bool(wait_for(in_sync, 60, 0.5)), "every replica of sift in sync again after the hang")


class Cluster:
    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = {}
        p = free_ports(17)
        self.etcd_client, self.etcd_peer = p[0:3], p[3:6]
        self.node_ports = {1: p[6], 2: p[7], 3: p[8], 4: p[12]}
        self.qdrant_ports = {1: p[13], 2: p[14], 3: p[15], 4: p[16]}
        self.single_port, self.spare = p[9], p[10:12]
        self.endpoints = ",".join("http://127.0.0.1:%d" % c for c in self.etcd_client)

    def start_etcd(self):
        initial = ",".join("e%d=http://127.0.0.1:%d" % (i, self.etcd_peer[i]) for i in range(3))
        for i in range(3):
            log = open(os.path.join(self.tmp, "etcd%d.log" % i), "w")
            self.procs["etcd%d" % i] = subprocess.Popen(
                ["etcd", "--name", "e%d" % i, "--data-dir", os.path.join(self.tmp, "etcd%d" % i),
                 "--listen-client-urls", "http://127.0.0.1:%d" % self.etcd_client[i],
                 "--advertise-client-urls", "http://127.0.0.1:%d" % self.etcd_client[i],
                 "--listen-peer-urls", "http://127.0.0.1:%d" % self.etcd_peer[i],
                 "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % self.etcd_peer[i],
                 "--initial-cluster", initial, "--initial-cluster-state", "new",
                 "--initial-cluster-token", "qv-%d" % os.getpid()], stdout=log, stderr=subprocess.STDOUT)
        ok = wait_for(lambda: all(http("POST", "http://127.0.0.1:%d/v3/kv/range" % c, {"key": "eA=="})[0] == 200
                                  for c in self.etcd_client), 30, 0.3)
        return bool(ok)

    def url(self, node):
        return "http://127.0.0.1:%d" % self.node_ports[node]

    def qurl(self, node):
        return "http://127.0.0.1:%d" % self.qdrant_ports[node]

    def start_node(self, node, wait=True):
        log = open(os.path.join(self.tmp, "node%d.log" % node), "a")
        self.procs[node] = subprocess.Popen(
            [os.path.join(BUILD, "quiverd"), "--listen", "127.0.0.1:%d" % self.node_ports[node],
             "--data", os.path.join(self.tmp, "node%d" % node), "--cluster", self.endpoints, "--node-id", str(node),
             "--advertise", self.url(node), "--lease-ttl", str(LEASE), "--threads", "8",
             "--qdrant-listen", "127.0.0.1:%d" % self.qdrant_ports[node]],
            stdout=log, stderr=subprocess.STDOUT)
        if wait:
            return wait_for(lambda: http("GET", self.url(node) + "/healthz")[0] == 200, 20)
        return True

    def status(self, node):
        return http("GET", self.url(node) + "/cluster")[1]

    def stop(self):
        """SIGTERM the nodes first (while etcd is up), then etcd; the nodes' exit codes
        (0: drained, checkpointed, and under ASan no leak or error)."""
        codes = {}
        for group in ([k for k in self.procs if isinstance(k, int)], [k for k in self.procs if not isinstance(k, int)]):
            for k in group:
                if self.procs[k].poll() is None:
                    self.procs[k].send_signal(signal.SIGTERM)
            for k in group:
                try:
                    codes[k] = self.procs[k].wait(20)
                except subprocess.TimeoutExpired:
                    self.procs[k].kill()
                    codes[k] = "hung"
        return {k: v for k, v in codes.items() if isinstance(k, int)}


def shards_of(st, coll):
    for c in st.get("collections", []):
        if c["name"] == coll:
            return c["shards"]
    return []


def scroll_ids(url, coll):
    ids, offset = set(), 0
    while True:
        s, r, _ = http("POST", "%s/collections/%s/points/scroll" % (url, coll),
                       {"offset": offset, "limit": 10000, "with_payload": False})
        if s != 200:
            return None
        ids.update(p["id"] for p in r["points"])
        if r["next_offset"] is None:
            return ids
        offset = r["next_offset"]


def recall_and_latency(url, coll, queries, gt, k=10):
    found, lat = 0, []
    partial = 0
    for q, g in zip(queries, gt):
        t = time.perf_counter()
        s, r, _ = http("POST", "%s/collections/%s/search" % (url, coll), {"vector": q, "k": k, "ef": 64})
        lat.append(time.perf_counter() - t)
        if s != 200:
            return -1, 0, 0, 1
        partial += bool(r.get("partial"))
        found += len(set(h["id"] for h in r["hits"]) & set(g[:k]))
    lat.sort()
    return found / (k * len(queries)), len(lat) / sum(lat), lat[int(0.99 * (len(lat) - 1))] * 1e3, partial


def throughput(url, coll, queries, clients, rounds, k=10):
    """QPS and p99 (ms) of clients concurrent clients each running the queries rounds times."""
    lat, lock = [], threading.Lock()

    def client(c):
        mine = []
        for _ in range(rounds):
            for q in queries[c::clients] + queries[:c:clients]:
                t = time.perf_counter()
                http("POST", "%s/collections/%s/search" % (url, coll), {"vector": q, "k": k, "ef": 64})
                mine.append(time.perf_counter() - t)
        with lock:
            lat.extend(mine)
    t0 = time.perf_counter()
    ths = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    wall = time.perf_counter() - t0
    lat.sort()
    return len(lat) / wall, lat[int(0.99 * (len(lat) - 1))] * 1e3, lat[len(lat) // 2] * 1e3


def main():
    if not shutil.which("etcd"):
        msg = "cluster test: etcd not found (Debian package etcd-server)"
        if os.environ.get("CI") == "true":
            print("FAIL " + msg)
            return 1
        print("SKIP " + msg)
        return 0
    if not os.path.exists(os.path.join(DATA, "base.fvecs")):
        msg = "cluster test: no siftsmall at " + DATA
        print(("FAIL " if os.environ.get("CI") == "true" else "SKIP ") + msg)
        return 1 if os.environ.get("CI") == "true" else 0
    t_start = time.time()
    tmp = tempfile.mkdtemp(prefix="qv-cluster-")
    cl = Cluster(tmp)
    single = None
    try:
        check(cl.start_etcd(), "3-member etcd cluster up")
        # etcd down at start: a clear error and a non-zero exit, no crash
        dead = "http://127.0.0.1:%d" % cl.spare[0]
        p = subprocess.run([os.path.join(BUILD, "quiverd"), "--listen", "127.0.0.1:%d" % cl.spare[1], "--data",
                            os.path.join(tmp, "lonely"), "--cluster", dead, "--node-id", "9", "--advertise",
                            "http://127.0.0.1:%d" % cl.spare[1]], capture_output=True, text=True, timeout=30)
        check(p.returncode == 1 and "cannot join through etcd" in p.stderr, "etcd down at start: exit 1 with a clear error")
        p = subprocess.run([os.path.join(BUILD, "quiverd"), "--cluster", cl.endpoints], capture_output=True, text=True)
        check(p.returncode == 2 and "--node-id" in p.stderr, "--cluster without --node-id: usage error")
        p = subprocess.run([os.path.join(BUILD, "quiverd"), "--listen", "127.0.0.1:%d" % cl.spare[1], "--data",
                            os.path.join(tmp, "bad"), "--cluster", cl.endpoints, "--node-id", "7", "--advertise", "node7:80"],
                           capture_output=True, text=True, timeout=30)
        check(p.returncode == 2 and "--advertise wants http://HOST:PORT" in p.stderr, "--advertise that is not http://HOST:PORT: usage error")
        p = subprocess.run([os.path.join(BUILD, "quiverd"), "--cluster", "etcd:2379", "--node-id", "7", "--advertise",
                            "http://127.0.0.1:1", "--listen", "127.0.0.1:%d" % cl.spare[1], "--data", os.path.join(tmp, "bad")],
                           capture_output=True, text=True, timeout=30)
        check(p.returncode == 1 and "not http://host:port" in p.stderr, "an etcd endpoint that is not http://HOST:PORT: exit 1, clear error")
        for n in (1, 2, 3):
            check(cl.start_node(n), "node %d up" % n)
        check(wait_for(lambda: len(cl.status(1).get("nodes", [])) == 3, 5), "every node sees 3 members")
        # a second node with a taken id is refused (after waiting out a possible stale key)
        p = subprocess.run([os.path.join(BUILD, "quiverd"), "--listen", "127.0.0.1:%d" % cl.spare[1], "--data",
                            os.path.join(tmp, "dup"), "--cluster", cl.endpoints, "--node-id", "2", "--advertise",
                            "http://127.0.0.1:%d" % cl.spare[1], "--lease-ttl", str(LEASE)],
                           capture_output=True, text=True, timeout=60)
        check(p.returncode == 1 and "already registered" in p.stderr,
              "a taken node id is refused%s" % ("" if p.returncode == 1 else ": rc %d %s" % (p.returncode, p.stderr[-300:])))

        s, r, _ = http("PUT", cl.url(1) + "/collections/toomany", {"dim": 4, "replication_factor": 4})
        check(s == 400 and "not_enough_nodes" in json.dumps(r), "replication_factor 4 on 3 nodes: 400")
        s, r, _ = http("PUT", cl.url(2) + "/collections/sift",
                       {"dim": 128, "metric": "l2", "index": {"type": "hnsw", "m": 16, "ef_construction": 100},
                        "shard_number": 3, "replication_factor": 2})
        check(s == 201, "create sift: 3 shards x 2 replicas (%s)" % s)
        s, r, _ = http("PUT", cl.url(3) + "/collections/sift", {"dim": 128, "shard_number": 5, "replication_factor": 1})
        check(s == 409, "a conflicting shard config for an existing collection: 409 (%s)" % s)
        sh = wait_for(lambda: shards_of(cl.status(3), "sift"), 5) or []
        check(len(sh) == 3 and all(len(x["replicas"]) == 2 and x["leader"] in x["replicas"] for x in sh),
              "shard map: 3 shards, 2 replicas each, one leader each")
        check(wait_for(lambda: all(any(c["name"] == "sift" for c in http("GET", cl.url(n) + "/collections")[1]["collections"])
                                   for n in (1, 2, 3)), 5), "every node learned the collection")

        base = read_vecs(os.path.join(DATA, "base.fvecs"), "f")
        queries = read_vecs(os.path.join(DATA, "query.fvecs"), "f", 100)
        gt = read_vecs(os.path.join(DATA, "groundtruth.ivecs"), "i", 100)
        # the single node for comparison
        sport = cl.single_port
        single = subprocess.Popen([os.path.join(BUILD, "quiverd"), "--listen", "127.0.0.1:%d" % sport, "--data",
                                   os.path.join(tmp, "single"), "--threads", "8"],
                                  stdout=open(os.path.join(tmp, "single.log"), "w"), stderr=subprocess.STDOUT)
        surl = "http://127.0.0.1:%d" % sport
        wait_for(lambda: http("GET", surl + "/healthz")[0] == 200, 20)
        http("PUT", surl + "/collections/sift", {"dim": 128, "metric": "l2", "index": {"type": "hnsw", "m": 16, "ef_construction": 100}})
        t = time.time()
        ok = True
        for i in range(0, len(base), 500):
            pts = [{"id": j, "vector": base[j]} for j in range(i, min(i + 500, len(base)))]
            s1, r1, _ = http("PUT", cl.url(1 + (i // 500) % 3) + "/collections/sift/points", {"points": pts}, 60)
            s2, _, _ = http("PUT", surl + "/collections/sift/points", {"points": pts}, 60)
            ok &= s1 == 200 and s2 == 200 and r1.get("upserted") == len(pts)
        check(ok, "10000 siftsmall points upserted through all three nodes (%.1f s)" % (time.time() - t))
        rc, qps_c, p99_c, part = recall_and_latency(cl.url(1), "sift", queries, gt)
        rs, qps_s, p99_s, _ = recall_and_latency(surl, "sift", queries, gt)
        print("     recall@10 sharded %.4f, single node %.4f" % (rc, rs))
        print("     search: sharded %.0f QPS p99 %.2f ms; single node %.0f QPS p99 %.2f ms (1 client, ef 64)"
              % (qps_c, p99_c, qps_s, p99_s))
        if os.environ.get("QV_CLUSTER_BENCH") == "1":          # bench/RESULTS.md's figures
            for clients in (1, 4):
                for name, u in (("single node", surl), ("3 nodes, 3 shards x 2", cl.url(1))):
                    qps, p99, p50 = throughput(u, "sift", queries, clients, 10)
                    print("     bench: %-22s %d client(s): %6.0f QPS  p50 %.2f ms  p99 %.2f ms" % (name, clients, qps, p50, p99))
        check(part == 0 and rc >= rs - 0.02, "sharded recall@10 equals the single node's (>= %.4f - 0.02)" % rs)
        s, r, _ = http("POST", cl.url(2) + "/collections/sift/search",
                       {"vector": queries[0], "k": 5, "filter": {"must": [{"key": "nope", "match": "x"}]}})
        check(s == 200 and r["hits"] == [] and r["partial"] is False, "a filter goes down to the shards")
        s, r, _ = http("POST", cl.url(2) + "/collections/sift/search/batch", {"searches": [{"vector": queries[0]}]})
        check(s == 501, "search/batch on a cluster collection: 501, not a silent empty answer")
        s, r, _ = http("PUT", cl.url(2) + "/collections/sift/points", {"points": [{"id": 1, "vector": [1.0, 2.0]}]})
        check(s == 400, "wrong dimension: 400")

        s, r, _ = http("PUT", cl.url(1) + "/collections/solo", {"dim": 4, "index": {"type": "flat"}, "shard_number": 3})
        s2, r2, _ = http("PUT", cl.url(1) + "/collections/solo/points",
                         {"points": [{"id": i, "vector": [i, 0, 0, 0]} for i in range(30)]})
        check(s == 201 and s2 == 200, "create solo: 3 shards x 1 replica, 30 points")
        s, r, _ = http("GET", cl.url(3) + "/collections/sift")
        check(s == 200 and r["count"] == 10000 and r["cluster"]["shard_number"] == 3, "GET /collections/sift: count 10000 over the shards")
        parameters(cl, queries, gt, rs)
        hang_during_patch(cl, base)

        # ---- load, kill -9 a shard leader, failover ----------------------------------------
        acked, lock, stop = set(), threading.Lock(), threading.Event()
        kill_at = [None]
        resumed = [None]
        errors = [0]

        shard0 = shards_of(cl.status(1), "sift")[0]
        victim = shard0["leader"]
        writers_nodes = [n for n in (1, 2, 3) if n != victim]
        threads = []
        for w in range(2):
            def run(w=w, node=writers_nodes[w]):
                nid = 100000 + w * 1000000
                while not stop.is_set():
                    pts = [{"id": nid + j, "vector": base[(nid + j) % len(base)]} for j in range(30)]
                    t_sent = time.time()
                    s, r, _ = http("PUT", cl.url(node) + "/collections/sift/points", {"points": pts}, 15)
                    if s == 200:
                        with lock:
                            acked.update(p["id"] for p in pts)
                            if kill_at[0] and t_sent > kill_at[0] and resumed[0] is None:
                                resumed[0] = time.time()
                        nid += 30
                    else:
                        errors[0] += 1
                        time.sleep(0.05)
            th = threading.Thread(target=run)
            th.start()
            threads.append(th)
        time.sleep(2)
        before = len(acked)
        cl.procs[victim].send_signal(signal.SIGKILL)
        cl.procs[victim].wait()
        kill_at[0] = time.time()
        wait_for(lambda: resumed[0], LEASE + 10)
        failover_s = (resumed[0] - kill_at[0]) if resumed[0] else None
        time.sleep(1)
        print("     failover: %d points acknowledged so far (%d before the kill), %d writes refused meanwhile"
              % (len(acked), before, errors[0]))
        if failover_s is not None:
            print("     failover: writes resumed %.2f s after kill -9 of node %d (lease %d s)" % (failover_s, victim, LEASE))
        check(failover_s is not None and failover_s <= LEASE + 2.5,
              "writes resume within the lease time after kill -9 of shard 0's leader (node %d)" % victim)
        live = writers_nodes[0]
        sh = shards_of(cl.status(live), "sift")
        check(sh[0]["leader"] != victim and victim not in sh[0]["in_sync"], "another in-sync replica leads shard 0; the dead one is out of sync")
        s, r, _ = http("POST", cl.url(live) + "/collections/sift/search", {"vector": queries[1], "k": 10})
        check(s == 200 and r["partial"] is False and len(r["hits"]) == 10, "search with a node down: complete (another replica answers)")
        # a shard with no live replica (solo has 1 replica per shard): the results say partial
        gone = [x["shard"] for x in shards_of(cl.status(live), "solo") if x["replicas"] == [victim]]
        s, r, h = http("POST", cl.url(live) + "/collections/solo/search", {"vector": [0, 0, 0, 0], "k": 30})
        ok = (s == 200 and r["partial"] is True and r["missing_shards"] == gone and h.get("X-Quiver-Partial") == "true"
              and len(r["hits"]) == 30 - sum(1 for i in range(30) if shard_of(i, 3) in gone))
        check(ok, "a shard with no live replica: partial results, missing_shards %s, X-Quiver-Partial header%s"
              % (gone, "" if ok else " (%s %s)" % (s, r)))
        s, r, _ = http("GET", cl.url(live) + "/collections/solo")
        check(s == 200 and r["cluster"]["partial"] is True, "collection info says partial too")
        # a parameter change while the node is down: the live nodes apply it at once, the
        # dead one when it is back (its reconciler, and catch-up's snapshot for its shards)
        s, r, _ = http("PATCH", cl.url(live) + "/collections/sift", {"index": {"quant": "sq8", "ef_search": 90}}, 120)
        check(s == 200, "PATCH with a node down: 200 (%s %s)" % (s, r if s != 200 else ""))

        # ---- restart the killed node under the same load: it catches up ---------------------
        t = time.time()
        check(cl.start_node(victim), "node %d restarted (writes go on)" % victim)

        def caught_up():
            sh2 = shards_of(cl.status(live), "sift")
            return all(victim in x["in_sync"] for x in sh2 if victim in x["replicas"])
        ok = wait_for(caught_up, 30, 0.2)
        print("     catch-up: node %d back in sync for all its shards %.2f s after its restart" % (victim, time.time() - t))
        check(bool(ok), "the restarted node caught up (snapshot + log) and is in sync again")
        time.sleep(1)                           # writes replicate to it as an in-sync follower
        stop.set()
        for th in threads:
            th.join()
        print("     %d points acknowledged under load in all, %d writes refused" % (len(acked), errors[0]))
        # no acknowledged write is lost: every in-sync replica of every shard holds its points
        sh = shards_of(cl.status(live), "sift")
        all_ids = set(range(len(base))) | acked
        lost, replicas = 0, 0
        for x in sh:
            want = {i for i in all_ids if shard_of(i, 3) == x["shard"]}
            for n in x["in_sync"]:
                have = scroll_ids(cl.url(n), x["collection"])
                replicas += 1
                lost += len(want - have) if have is not None else len(want)
        check(lost == 0 and replicas == 6, "no acknowledged write lost: %d points, each on both in-sync replicas of its shard "
              "(%d missing)" % (len(all_ids), lost))
        same = True
        for x in sh:
            if victim not in x["replicas"]:
                continue
            a, b = scroll_ids(cl.url(victim), x["collection"]), scroll_ids(cl.url(x["leader"]), x["collection"])
            same &= a is not None and a == b
        check(same, "the restarted node's shards hold exactly the leader's points")
        want = {"quant": "sq8", "ef_search": 90}
        got = wait_for(lambda: all(v == want for (n, _), v in parts_index(cl, "sift", (victim,)).items()), 15, 0.3)
        check(bool(got), "the restarted node took the change made while it was down: %s"
              % {k: v for k, v in parts_index(cl, "sift", (victim,)).items() if v != want})
        s, r, _ = http("GET", cl.url(victim) + "/collections/sift")
        # (writes refused during the failover may have been applied on some shards: at least)
        check(s == 200 and len(all_ids) <= r["count"] <= len(all_ids) + 30 * errors[0] and r["cluster"]["partial"] is False,
              "GET /collections/sift counts the points over the shards (%s, %d acknowledged)" % (r.get("count") if s == 200 else s, len(all_ids)))
        with urllib.request.urlopen(cl.url(live) + "/metrics") as f:
            text = f.read().decode()
        check("quiver_cluster_shard_writes_total{shard=\"sift.s" in text and "quiver_cluster_shard_role" in text,
              "per-shard metrics on /metrics")
        operations(cl, surl, base)
        s, r, _ = http("DELETE", cl.url(3) + "/collections/sift")

        def sift_left():
            left = {}
            for n in (1, 2, 3, 4):
                st, body, _ = http("GET", cl.url(n) + "/collections")
                names = [c["name"] for c in body["collections"]] if st == 200 else ["(HTTP %s)" % st]
                mine = [x for x in names if x == "sift" or x.startswith("sift.") or x.startswith("(")]
                if mine:
                    left[n] = mine
            return left
        # Each node drops its parts at its next poll (250 ms), after any catch-up that poll
        # is busy with; 20 s leaves room for a slow machine.
        t1 = time.time()
        gone = s == 200 and wait_for(lambda: not sift_left(), 20)
        check(bool(gone), "drop: every node drops the collection and its shards (%s after %.1f s)"
              % ("none left" if gone else sift_left(), time.time() - t1))
        codes = cl.stop()
        check(all(v == 0 for v in codes.values()), "every node exits 0 on SIGTERM (%s)" % codes)
    finally:
        if single:
            single.send_signal(signal.SIGTERM)
            single.wait(10)
        cl.stop()
        if FAILS:
            for f in sorted(os.listdir(tmp)):
                if f.endswith(".log") and f.startswith("node"):
                    # the audit lines of the load would hide the cluster's own
                    print("---- %s (tail, without audit lines)" % f)
                    lines = [x for x in open(os.path.join(tmp, f)).readlines() if ": audit: " not in x]
                    print("".join(lines[-25:]))
        if FAILS and os.environ.get("QV_KEEP") == "1":
            print("logs kept in " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("cluster test: %d failure(s), %.1f s" % (len(FAILS), time.time() - t_start))
    return 1 if FAILS else 0


def parts_index(cl, coll, nodes):
    """{(node, local collection): its quant and ef_search} for every part of coll on nodes: the
    copy each node keeps and each shard replica; a part that does not answer gives its status."""
    out = {}
    st = cl.status(nodes[0])
    for n in nodes:
        locals_ = [coll] + [x["collection"] for x in shards_of(st, coll) if n in x["replicas"]]
        for local in locals_:
            s, r, _ = http("GET", "%s/collections/%s" % (cl.url(n), local))
            out[(n, local)] = {"quant": r["index"].get("quant"), "ef_search": r["index"].get("ef_search")} if s == 200 else s
    return out


def parameters(cl, queries, gt, rs):
    """PATCH of a cluster collection through either API: stored in etcd, applied on every part
    (each node's copy and every shard replica) before the reply; bad input changes nothing."""
    nodes = (1, 2, 3)
    t = time.time()
    s, r, _ = http("PATCH", cl.url(3) + "/collections/sift", {"index": {"quant": "sq8", "ef_search": 80}}, 120)
    parts = parts_index(cl, "sift", nodes)
    want = {"quant": "sq8", "ef_search": 80}
    check(s == 200 and r["index"]["quant"] == "sq8" and len(parts) == 9 and all(v == want for v in parts.values()),
          "native PATCH of a cluster collection: sq8 codes and ef_search 80 on all 9 parts before the reply "
          "(%.1f s; %s)" % (time.time() - t, {k: v for k, v in parts.items() if v != want} or "all"))
    rq, _, _, part = recall_and_latency(cl.url(2), "sift", queries, gt)
    check(part == 0 and rq >= rs - 0.03, "search after it: recall@10 %.4f (single node, float: %.4f), %d partial" % (rq, rs, part))
    for body, what in (({"index": {"quant": "pq"}}, "an unknown quant"), ({"index": {"m": 1}}, "m 1"),
                       ({"index": {"nlist": 4}}, "a field PATCH cannot change")):
        s, r, _ = http("PATCH", cl.url(1) + "/collections/sift", body)
        check(s == 400 and parts_index(cl, "sift", nodes) == parts, "%s: 400, nothing changed on any node (%s)" % (what, s))
    s, r, _ = http("PATCH", cl.url(1) + "/collections/solo", {"index": {"m": 8}})
    check(s == 400 and "hnsw" in json.dumps(r), "m on a flat cluster collection: 400 (%s)" % s)
    s, r, _ = http("PATCH", cl.url(1) + "/collections/nope", {"index": {"m": 8}})
    check(s == 404, "PATCH of a collection that does not exist: 404 (%s)" % s)
    # the Qdrant API, through another node: the graph's m and no codes
    s, r, _ = http("PATCH", cl.qurl(1) + "/collections/sift", {"hnsw_config": {"m": 12}, "quantization_config": "Disabled"}, 120)
    parts = parts_index(cl, "sift", nodes)
    want = {"quant": "none", "ef_search": 80}
    ms = {http("GET", "%s/collections/%s" % (cl.url(n), c))[1]["index"]["m"] for (n, c) in parts}
    check(s == 200 and r.get("result") is True and all(v == want for v in parts.values()) and ms == {12},
          "Qdrant PATCH {hnsw_config: {m: 12}, quantization_config: Disabled}: every part rebuilt with m 12, no codes "
          "(%s; m %s)" % ({k: v for k, v in parts.items() if v != want} or "all", sorted(ms)))
    rq, _, _, part = recall_and_latency(cl.url(3), "sift", queries, gt)
    check(part == 0 and rq >= rs - 0.03, "search after it: recall@10 %.4f (m 16: %.4f), %d partial" % (rq, rs, part))
    st = http("GET", cl.url(2) + "/cluster")[1]
    check("sift" in [c["name"] for c in st.get("collections", [])], "the cluster still routes sift")


def lost_points(cl, via, coll, nshards, want_ids):
    """Acknowledged points missing from the in-sync replicas of coll's shards, and how many
    replicas were read."""
    lost, replicas = 0, 0
    for x in shards_of(cl.status(via), coll):
        want = {i for i in want_ids if shard_of(i, nshards) == x["shard"]}
        for n in x["in_sync"]:
            have = scroll_ids(cl.url(n), x["collection"])
            replicas += 1
            lost += len(want - have) if have is not None else len(want)
    return lost, replicas


def operations(cl, surl, base):
    """Step 5: node 4 joins, moves and drains under write load."""
    import random
    t = time.time()
    check(cl.start_node(4), "node 4 joins")
    check(wait_for(lambda: len(cl.status(1).get("nodes", [])) == 4, 5), "every node sees 4 members")
    s, r, _ = http("PUT", cl.url(1) + "/collections/ops", {"dim": 8, "index": {"type": "flat"}, "shard_number": 3,
                                                          "replication_factor": 2})
    check(s == 201, "create ops: 3 shards x 2 replicas, flat (%s)" % s)
    sh = shards_of(cl.status(1), "ops")
    holder = sh[0]["leader"]
    other = [n for n in sh[0]["replicas"] if n != holder][0]
    mv = cl.url(2) + "/cluster/collections/%s/shards/%s/move"
    bad = [(mv % ("nope", 0), {"from": holder, "to": 4}, 404, "unknown collection"),
           (mv % ("ops", 7), {"from": holder, "to": 4}, 404, "unknown shard"),
           (mv % ("ops", "x"), {"from": holder, "to": 4}, 404, "shard that is not a number"),
           (mv % ("ops", 0), {"from": holder, "to": 99}, 400, "to an unknown node"),
           (mv % ("ops", 0), {"from": 4, "to": 3}, 400, "from a node without the shard"),
           (mv % ("ops", 0), {"from": holder, "to": other}, 409, "to a node that already holds it"),
           (mv % ("ops", 0), {"from": holder}, 400, "without 'to'"),
           (cl.url(2) + "/cluster/nodes/99/drain", None, 404, "drain of an unknown node"),
           (cl.url(2) + "/cluster/nodes/x/drain", None, 400, "drain of a node id that is not a number")]
    for u, body, want, what in bad:
        s, r, _ = http("POST", u, body)
        check(s == want and "error" in r, "%s: %d (%s)" % (what, want, s))
    s, r, _ = http("PUT", cl.url(1) + "/collections/wide", {"dim": 4, "index": {"type": "flat"}, "replication_factor": 4})
    s2, r2, _ = http("POST", cl.url(1) + "/cluster/nodes/3/drain")
    check(s == 201 and s2 == 409 and "not_enough_nodes" in json.dumps(r2),
          "a drain with no node left to take a shard (replication_factor 4 on 4 nodes): 409 (%s)" % s2)
    check(4 in shards_of(cl.status(1), "wide")[0]["replicas"] and 3 in shards_of(cl.status(1), "wide")[0]["replicas"],
          "... and it changed nothing")
    http("DELETE", cl.url(1) + "/collections/wide")

    # writers with random vectors on ops through nodes 1 and 2, acknowledged ones remembered
    acked, lock, stop, errors = {}, threading.Lock(), threading.Event(), [0]
    rng = random.Random(7)

    def run(w):
        nid = w * 1000000
        while not stop.is_set():
            pts = [{"id": nid + j, "vector": [rng.uniform(-1, 1) for _ in range(8)]} for j in range(20)]
            s, _, _ = http("PUT", cl.url(1 + w) + "/collections/ops/points", {"points": pts}, 15)
            if s == 200:
                with lock:
                    acked.update((p["id"], p["vector"]) for p in pts)
                nid += 20
            else:
                errors[0] += 1
                time.sleep(0.05)
    threads = [threading.Thread(target=run, args=(w,)) for w in range(2)]
    for th in threads:
        th.start()
    time.sleep(1)
    n0 = len(acked)
    t1 = time.time()
    s, r, _ = http("POST", mv % ("ops", 0), {"from": holder, "to": 4}, 90)
    sh0 = shards_of(cl.status(2), "ops")[0]             # node 2 took the move: its map is current
    print("     move: shard ops.s0 from node %d (its leader) to node 4 in %.2f s under load (%s), %d -> %d points acknowledged"
          % (holder, time.time() - t1, r.get("took_s") if s == 200 else r, n0, len(acked)))
    check(s == 200 and 4 in sh0["in_sync"] and holder not in sh0["replicas"] and len(sh0["replicas"]) == 2
          and sh0["leader"] in (4, other), "move under write load: node 4 in sync, node %d out, leadership passed on (%s)" % (holder, sh0))
    check(wait_for(lambda: not any(c["name"] == "ops.s0" for c in http("GET", cl.url(holder) + "/collections")[1]["collections"]), 5),
          "the source dropped its local copy")
    s, r, _ = http("POST", mv % ("ops", 0), {"from": holder, "to": 4})
    check(s == 400, "moving it again from the node it left: 400 (%s)" % s)
    time.sleep(0.5)
    victim = 3
    t1 = time.time()
    s, r, _ = http("POST", cl.url(1) + "/cluster/nodes/%d/drain" % victim, None, 120)
    moved = len(r.get("moves", [])) if s == 200 else 0
    print("     drain: node %d's %d replica(s) moved in %.2f s under load (%s)" % (victim, moved, time.time() - t1,
                                                                                  "ok" if s == 200 else r))
    st = cl.status(1)
    held = [x["collection"] for c in ("sift", "ops", "solo") for x in shards_of(st, c) if victim in x["replicas"]]
    check(s == 200 and moved >= 1 and not held, "drain node %d under write load: it holds no replica (%s)" % (victim, held))
    # node 3 is empty now: a rebalance gives it replicas until the loads differ by at most one
    t1 = time.time()
    s, r, _ = http("POST", cl.url(4) + "/cluster/rebalance", None, 120)
    st = cl.status(4)
    load = {n: sum(n in x["replicas"] for c in ("sift", "ops", "solo") for x in shards_of(st, c)) for n in (1, 2, 3, 4)}
    print("     rebalance: %d move(s) in %.2f s under load, replicas per node now %s"
          % (len(r.get("moves", [])) if s == 200 else -1, time.time() - t1, load))
    check(s == 200 and load[victim] >= 1 and max(load.values()) - min(load.values()) <= 1,
          "rebalance under write load: every node within one replica of the others (%s)" % (load if s == 200 else r))
    s, r, _ = http("POST", cl.url(4) + "/cluster/rebalance", None, 30)
    check(s == 200 and r["moves"] == [], "a second rebalance moves nothing")
    time.sleep(0.5)
    stop.set()
    for th in threads:
        th.join()
    st = cl.status(4)
    check(all(len(x["replicas"]) == 2 and sorted(x["in_sync"]) == sorted(x["replicas"]) for c in ("sift", "ops")
              for x in shards_of(st, c)), "every sift/ops shard has 2 replicas, both in sync")
    lost, replicas = lost_points(cl, 4, "ops", 3, set(acked))
    print("     operations: %d points acknowledged during the move, the drain and the rebalance, %d writes refused"
          % (len(acked), errors[0]))
    check(lost == 0 and replicas == 6, "no acknowledged write lost across the move, the drain and the rebalance "
          "(%d missing on %d replicas)" % (lost, replicas))
    lost, replicas = lost_points(cl, 4, "sift", 3, set(range(len(base))))
    check(lost == 0, "sift after the drain and the rebalance: every base point on every in-sync replica (%d missing)" % lost)
    s, r, _ = http("POST", cl.url(4) + "/collections/solo/search", {"vector": [0, 0, 0, 0], "k": 30})
    check(s == 200 and [h["id"] for h in r["hits"]] == list(range(30)), "solo after the drain: exact search finds all 30 in order")
    # the same points on a single node: exact searches agree
    http("PUT", surl + "/collections/ops", {"dim": 8, "index": {"type": "flat"}})
    items = sorted(acked.items())
    for i in range(0, len(items), 500):
        http("PUT", surl + "/collections/ops/points", {"points": [{"id": k, "vector": v} for k, v in items[i:i + 500]]}, 60)
    same, qrng = 0, random.Random(11)
    for _ in range(20):
        q = [qrng.uniform(-1, 1) for _ in range(8)]
        a = http("POST", cl.url(victim) + "/collections/ops/search", {"vector": q, "k": 10})[1]
        b = http("POST", surl + "/collections/ops/search", {"vector": q, "k": 10})[1]
        same += [h["id"] for h in a.get("hits", [])] == [h["id"] for h in b.get("hits", [])] and a.get("partial") is False
    check(same == 20, "search on ops after the move and the drain equals the single node's (%d/20 queries)" % same)
    print("     operations took %.1f s" % (time.time() - t))


def shard_of(i, n):
    """The server's cl_shard_of_id: splitmix64's finalizer, modulo n."""
    m = (1 << 64) - 1
    z = (i + 0x9e3779b97f4a7c15) & m
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & m
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & m
    z ^= z >> 31
    return z % n


if __name__ == "__main__":
    sys.exit(main())

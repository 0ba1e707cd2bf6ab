#!/usr/bin/env python3
"""bench/text_fts5.py -- Quiver's BM25 against SQLite FTS5's bm25() (issue 22).

    flock -x /tmp/quiver-cpu.lock python3 bench/text_fts5.py [--build build] [--queries 1000]

Corpus: the Description line of every package `apt-cache dumpavail` lists (about 63K on
Debian 12), written at run time to $HOME/.cache/quiver-data/debian-descriptions/ (never
into the repository). Queries: 1,000 of 1-4 words drawn from random descriptions (seed 22).

Same tokenization on both sides: quiver-text-bench writes the tokens Quiver made of every
document and query (qv_text_tokenize: lowercase Unicode words, English Snowball stems);
FTS5 is given each distinct token renamed to an ASCII word "w<n>" with tokenize='ascii',
so its token stream is exactly Quiver's (same tokens, same document lengths) and the
comparison tests the ranking alone. A query is the OR of its tokens; FTS5 returns
bm25() negated (smaller = better), and its formula (sqlite/ext/fts5/fts5_aux.c) is
    idf = ln((N - n + 0.5) / (n + 0.5)), floored at 1e-6;
    bm25 = -sum idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl)),  k1 1.2, b 0.75
which Quiver computes with the sign flipped (storage/text.h).

Reports: mean top-10 overlap (|quiver ∩ fts5| / max(len)), the largest relative score
difference over ids both return, and single-thread ranked-query QPS of each (median of
--reps passes; FTS5 is timed with ORDER BY rank and with ORDER BY bm25(docs) and credited
with the faster). FTS5 runs through Python's sqlite3 module; its per-call overhead is
measured on "SELECT 1" and reported, and the FTS5 QPS with that overhead removed is given
too, so that the interpreter is not what Quiver is compared with.
"""
import argparse, json, os, random, re, sqlite3, statistics, subprocess, sys, time

def corpus(path_docs, path_queries, nq):
    if os.path.exists(path_docs) and os.path.exists(path_queries):
        return
    os.makedirs(os.path.dirname(path_docs), exist_ok=True)
    out = subprocess.run(["apt-cache", "dumpavail"], check=True, capture_output=True).stdout.decode("utf-8", "replace")
    docs, seen = [], set()
    pkg = None
    for line in out.splitlines():
        if line.startswith("Package: "):
            pkg = line[9:].strip()
        elif line.startswith("Description: ") and pkg and pkg not in seen:
            seen.add(pkg)
            docs.append(line[13:].strip().replace("\t", " "))
    with open(path_docs + ".tmp", "w") as f:
        for i, d in enumerate(docs):
            f.write(f"{i + 1}\t{d}\n")
    os.replace(path_docs + ".tmp", path_docs)
    rng = random.Random(22)
    qs = []
    while len(qs) < nq:
        words = re.findall(r"[A-Za-z][A-Za-z0-9]+", rng.choice(docs))
        if not words:
            continue
        qs.append(" ".join(rng.sample(words, min(len(words), rng.randint(1, 4)))))
    with open(path_queries + ".tmp", "w") as f:
        f.write("\n".join(qs) + "\n")
    os.replace(path_queries + ".tmp", path_queries)

def read_tokens(path):
    d = {}
    with open(path) as f:
        for line in f:
            i, _, t = line.rstrip("\n").partition("\t")
            d[int(i)] = t.split()
    return d

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--k", type=int, default=10)
    a = ap.parse_args()
    cache = os.path.join(os.path.expanduser("~"), ".cache", "quiver-data", "debian-descriptions")
    docs, queries = os.path.join(cache, "docs.tsv"), os.path.join(cache, f"queries-{a.queries}.txt")
    corpus(docs, queries, a.queries)
    work = os.path.join(cache, "run")
    subprocess.run(["rm", "-rf", work], check=True)
    os.makedirs(work)
    res = subprocess.run([os.path.join(a.build, "quiver-text-bench"), "--docs", docs, "--queries", queries,
                          "--db", os.path.join(work, "db"), "--out", os.path.join(work, "q"),
                          "--k", str(a.k), "--reps", str(a.reps)], check=True, capture_output=True, text=True)
    qv = json.loads(res.stdout.strip().splitlines()[-1])
    dtok, qtok = read_tokens(os.path.join(work, "q.doc_tokens")), read_tokens(os.path.join(work, "q.query_tokens"))
    qres = {}
    with open(os.path.join(work, "q.results")) as f:
        for line in f:
            i, _, hits = line.rstrip("\n").partition("\t")
            qres[int(i)] = [(int(h.split(":")[0]), float(h.split(":")[1])) for h in hits.split()]

    names = {}
    def name(t):
        if t not in names:
            names[t] = "w%x" % len(names)
        return names[t]
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE docs USING fts5(body, tokenize='ascii')")
    t0 = time.perf_counter()
    db.executemany("INSERT INTO docs(rowid, body) VALUES (?, ?)",
                   ((i, " ".join(name(t) for t in toks)) for i, toks in dtok.items()))
    db.commit()
    fts_load = time.perf_counter() - t0
    # "rank" is bm25() by default; ORDER BY rank lets FTS5 sort inside the virtual table
    sql = "SELECT rowid, rank FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT %d" % a.k
    # a token no document has still counts as a phrase in FTS5 (it adds nothing)
    matches = [" OR ".join(names.get(t, "wnone") for t in qtok[i]) if qtok[i] else None for i in range(len(qtok))]

    overlaps, worst = [], 0.0
    for i, m in enumerate(matches):
        mine = qres.get(i, [])
        theirs = db.execute(sql, (m,)).fetchall() if m else []
        if not mine and not theirs:
            overlaps.append(1.0)
            continue
        sm, st = {h[0]: h[1] for h in mine}, {r[0]: -r[1] for r in theirs}
        overlaps.append(len(set(sm) & set(st)) / max(len(sm), len(st)))
        for d in set(sm) & set(st):
            worst = max(worst, abs(sm[d] - st[d]) / max(abs(st[d]), 1e-12))

    def fts_pass(q):
        s = time.perf_counter()
        for m in matches:
            if m:
                db.execute(q, (m,)).fetchall()
        return len(matches) / (time.perf_counter() - s)
    # two spellings of the same ranked query; FTS5 is credited with the faster one
    sql_bm25 = "SELECT rowid, bm25(docs) FROM docs WHERE docs MATCH ? ORDER BY bm25(docs) LIMIT %d" % a.k
    fts_by = {}
    for name_, q in (("rank", sql), ("bm25", sql_bm25)):
        fts_pass(q)
        fts_by[name_] = statistics.median(fts_pass(q) for _ in range(a.reps))
    fts_qps = max(fts_by.values())
    s = time.perf_counter()
    for _ in range(len(matches) * a.reps):
        db.execute("SELECT 1").fetchall()
    overhead = (time.perf_counter() - s) / (len(matches) * a.reps)
    fts_qps_net = 1.0 / max(1.0 / fts_qps - overhead, 1e-9)
    report = {
        "date": time.strftime("%Y-%m-%d"), "docs": qv["docs"], "queries": qv["queries"], "k": a.k,
        "distinct_tokens": len(names), "sqlite": sqlite3.sqlite_version,
        "top10_overlap": round(statistics.mean(overlaps), 4), "min_overlap": round(min(overlaps), 4),
        "max_rel_score_diff": worst,
        "quiver_qps": qv["qps"], "fts5_qps": round(fts_qps, 1),
        "fts5_qps_order_by_rank": round(fts_by["rank"], 1), "fts5_qps_order_by_bm25": round(fts_by["bm25"], 1), "fts5_qps_minus_python": round(fts_qps_net, 1),
        "python_call_us": round(overhead * 1e6, 2), "quiver_vs_fts5_net": round(qv["qps"] / fts_qps_net, 2),
        "quiver_load_s": qv["load_s"], "fts5_load_s": round(fts_load, 3),
    }
    print(json.dumps(report))
    ok = report["top10_overlap"] >= 0.95 and worst <= 1e-4
    sys.exit(0 if ok else 1)

if __name__ == "__main__":
    main()

"""Full-text and hybrid search from Python (issue 22): BM25 through search_text against a
double-precision reference of FTS5's formula on the library's own tokens, hybrid search
equal to RRF of the two searches, the text match filter, and bad arguments."""
import math

import numpy as np
import pytest

import quiver

DOCS = ["Fast vector search engine in C", "Searching engines for full-text documents",
        "music player for the terminal", "Lecteur de musique", "fonts for the terminal",
        "search the web from the terminal", "vector graphics editor", "a terminal emulator"]


@pytest.fixture
def docs(db):
    c = db.create_collection("docs", 2, "l2", payload_index={"body": "text"})
    vecs = np.array([[i, 1.0] for i in range(len(DOCS))], dtype=np.float32)
    c.upsert(list(range(1, len(DOCS) + 1)), vecs, payloads=[{"body": d} for d in DOCS])
    return c


def ref_bm25(query, k1=1.2, b=0.75):
    toks = [quiver.tokenize(d) for d in DOCS]
    q = quiver.tokenize(query)
    n = len(toks)
    avgdl = sum(len(t) for t in toks) / n
    out = []
    for i, t in enumerate(toks):
        s, hit = 0.0, False
        for w in q:
            tf = t.count(w)
            if not tf:
                continue
            hit = True
            df = sum(1 for x in toks if w in x)
            idf = math.log((n - df + 0.5) / (df + 0.5))
            idf = idf if idf > 0 else 1e-6
            s += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(t) / avgdl))
        if hit:
            out.append((i + 1, s))
    return sorted(out, key=lambda h: (-h[1], h[0]))


def test_search_text_matches_reference(docs):
    for query, k1, b in [("terminal search", 1.2, 0.75), ("vector", 0.5, 0.0), ("Musique fonts EMULATOR", 2.0, 1.0)]:
        got = docs.search_text(query, "body", k=5, k1=k1, b=b)
        want = ref_bm25(query, k1, b)[:5]
        assert [h.id for h in got] == [w[0] for w in want]
        for h, w in zip(got, want):
            assert h.score == pytest.approx(w[1], rel=1e-5)
        assert got[0].payload["body"] == DOCS[got[0].id - 1]


def test_hybrid_is_rrf_of_both(docs):
    q = [3.0, 1.0]
    vec = [h.id for h in docs.search(q, k=4)]
    txt = [h.id for h in docs.search_text("terminal", "body", k=4)]
    fused = {}
    for lst in (vec, txt):
        for r, i in enumerate(lst):
            fused[i] = fused.get(i, 0) + 1 / (60 + r + 1)
    want = sorted(fused, key=lambda i: (-fused[i], i))[:4]
    assert [h.id for h in docs.hybrid_search(q, "terminal", "body", k=4)] == want
    w = docs.hybrid_search(q, "terminal", "body", k=4, fusion="weighted", alpha=1.0, with_payload=False)
    assert [h.id for h in w][:1] == vec[:1] and w[0].payload is None


def test_text_filter(docs):
    f = {"must": [{"key": "body", "match": {"text": "the Terminal"}}]}
    assert docs.count(f) == 3
    assert sorted(h.id for h in docs.search([0, 1], k=8, filter=f)) == [3, 5, 6]


def test_bad_arguments(docs):
    with pytest.raises(quiver.Error):
        docs.search_text("x", "nosuch")
    with pytest.raises(quiver.Error):
        docs.search_text("x", "body", k=0)
    with pytest.raises(quiver.Error):
        docs.search_text("x", "body", b=2.0)
    with pytest.raises(quiver.Error):
        docs.hybrid_search([1, 2], "x", "body", fusion="max")
    with pytest.raises(quiver.Error):
        docs.hybrid_search([1, 2, 3], "x", "body")
    with pytest.raises(TypeError):
        docs.search_text(5, "body")

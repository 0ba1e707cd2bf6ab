"""quiver.open -> Database -> Collection: payloads, filters, get/delete/scroll/count, reopening."""
import numpy as np
import pytest

import quiver
from helpers import brute_force, recall

LANGS = ["en", "fr", "de", "es"]


def make_points(n, dim, seed):
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n, dim), dtype=np.float32)
    payloads = [{"lang": LANGS[i % 4], "year": 2000 + i % 25, "title": f"doc {i}", "tags": ["t%d" % (i % 3)]}
                if i % 10 else None for i in range(n)]
    return vecs, payloads


def test_payload_round_trip(db):
    c = db.create_collection("docs", 3, "cosine")
    payloads = [
        {"title": "naïve café ☕", "n": 1, "x": 2.5, "ok": True, "none": None},
        {"nested": {"a": [1, 2, {"b": "c"}]}, "big": 2**62},
        None,
        {},
    ]
    c.upsert([1, 2, 3, 4], [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], payloads=payloads)
    for i, want in zip([1, 2, 3, 4], payloads):
        p = c.get(i)
        assert p.id == i and p.payload == want
        assert p.vector.dtype == np.float32 and p.vector.shape == (3,)
    assert c.get(99) is None
    assert [p.payload for p in c.get([4, 99, 1], with_vector=False)[::2]] == [{}, payloads[0]]
    assert c.get([4], with_vector=False)[0].vector is None
    hits = c.search([1, 0, 0], k=1)
    assert hits[0].id == 1 and hits[0].payload == payloads[0]
    assert abs(hits[0].score - 1.0) < 1e-6
    # one point, one payload dict
    c.upsert(5, [0, 0, 1], payloads={"single": True})
    assert c.get(5).payload == {"single": True}


def test_search_with_filters_matches_brute_force(db):
    vecs, payloads = make_points(3000, 16, 1)
    c = db.create_collection("docs", 16, "cosine", payload_index={"lang": "keyword", "year": "integer"}, m=16)
    c.upsert(np.arange(3000), vecs, payloads=payloads)
    queries = np.random.default_rng(2).standard_normal((20, 16), dtype=np.float32)
    cases = [
        ({"must": [{"key": "lang", "match": "fr"}]}, lambda p: p and p["lang"] == "fr"),
        ({"must": [{"key": "year", "range": {"gte": 2010, "lt": 2015}}],
          "must_not": [{"key": "lang", "match": "en"}]},
         lambda p: p and 2010 <= p["year"] < 2015 and p["lang"] != "en"),
        ({"should": [{"key": "lang", "match": {"any": ["de", "es"]}}, {"key": "title", "match": "doc 7"}]},
         lambda p: p and (p["lang"] in ("de", "es") or p["title"] == "doc 7")),
        ('{"must":[{"key":"tags","match":"t2"}]}', lambda p: p and "t2" in p["tags"]),   # JSON text, unindexed
    ]
    for flt, keep in cases:
        allowed = np.array([bool(keep(p)) for p in payloads])
        want, _ = brute_force(vecs, queries, 10, "cosine", allowed=allowed)
        rows = c.search(queries, k=10, filter=flt, ef=200)
        assert len(rows) == 20
        got = np.array([[h.id for h in row] for row in rows])
        assert allowed[got].all()
        assert recall(got, want, 10) >= 0.95
        assert all(keep(h.payload) for row in rows for h in row)
        assert c.count(flt) == allowed.sum()
    # scores of cosine are similarities, descending
    row = c.search(queries[0], k=10, with_payload=False)
    assert all(h.payload is None for h in row)
    s = [h.score for h in row]
    assert s == sorted(s, reverse=True)


def test_delete_scroll_count(db):
    vecs, payloads = make_points(250, 4, 3)
    c = db.create_collection("docs", 4, "l2", kind="flat")
    c.upsert(np.arange(250) * 3, vecs, payloads)
    assert len(c) == 250 and c.count() == 250
    assert c.delete([0, 3, 1000]) == 2
    assert c.count() == 248
    seen, start, pages = [], 0, 0
    while start is not None:
        ids, start = c.scroll(start=start, limit=100)
        seen.extend(ids.tolist())
        pages += 1
    assert pages == 3 and seen == [i * 3 for i in range(2, 250)]
    fr = {"must": [{"key": "lang", "match": "fr"}]}
    ids, nxt = c.scroll(fr, limit=1000)
    assert nxt is None
    assert ids.tolist() == [i * 3 for i in range(2, 250) if payloads[i] and payloads[i]["lang"] == "fr"]
    # a deleted point is never found
    assert all(h.id not in (0, 3) for h in c.search(vecs[1], k=10))


def test_index_field_speeds_nothing_up_but_keeps_answers(db):
    vecs, payloads = make_points(500, 8, 4)
    c = db.create_collection("docs", 8, "ip")
    c.upsert(np.arange(500), vecs, payloads)
    flt = {"must": [{"key": "lang", "match": "de"}]}
    before = [h.id for h in c.search(vecs[0], k=5, filter=flt)]
    c.index_field("lang", "keyword")
    assert c.info["payload_index"] == {"lang": "keyword"}
    assert [h.id for h in c.search(vecs[0], k=5, filter=flt)] == before
    c.unindex_field("lang")
    assert c.info["payload_index"] == {}
    with pytest.raises(quiver.NotFoundError):
        c.unindex_field("lang")
    with pytest.raises(quiver.InvalidArgumentError):
        c.index_field("year", "colour")


def test_reopen_keeps_everything(tmp_path):
    path = str(tmp_path / "db")
    vecs, payloads = make_points(300, 8, 5)
    with quiver.open(path) as db:
        c = db.create_collection("docs", 8, "l2", payload_index={"lang": "keyword"})
        c.upsert(np.arange(300), vecs, payloads)
        before = c.search(vecs[:5], k=5)
    with quiver.open(path) as db:
        assert db.collections() == ["docs"]
        c = db.collection("docs")
        assert (c.dim, c.metric, len(c)) == (8, "l2", 300)
        after = c.search(vecs[:5], k=5)
    assert [[h.id for h in r] for r in before] == [[h.id for h in r] for r in after]
    with quiver.open(path, readonly=True) as db:
        c = db.collection("docs")
        assert len(c) == 300
        with pytest.raises(quiver.Error):
            c.upsert([1], vecs[:1])


def test_create_open_drop(db):
    c = db.create_collection("a", 4)
    assert c.metric == "cosine" and c.info["kind"] == "hnsw"
    with pytest.raises(quiver.ExistsError):
        db.create_collection("a", 4)
    again = db.create_collection("a", 4, exist_ok=True)
    assert again.name == "a" and "a" in db
    with pytest.raises(quiver.NotFoundError):
        db.collection("nope")
    with pytest.raises(quiver.InvalidArgumentError):
        db.create_collection("bad name!", 4)
    db.create_collection("b", 2, "l2", kind="ivf", nlist=4)
    assert db.collections() == ["a", "b"]
    c.upsert([1], np.ones((1, 4)))
    db.drop("a")
    assert db.collections() == ["b"] and "a" not in db
    assert c.closed and "dropped" in repr(c)
    with pytest.raises(quiver.StateError, match="dropped"):
        c.search(np.ones(4))
    with pytest.raises(quiver.StateError):
        again.upsert([2], np.ones((1, 4)))
    with pytest.raises(quiver.NotFoundError):
        db.drop("a")
    fresh = db.create_collection("a", 4)         # a new collection of the same name
    assert len(fresh) == 0
    with fresh:
        pass
    assert fresh.closed
    assert not db.collection("a").closed


def test_ivf_collection_trains(db):
    vecs, _ = make_points(400, 8, 6)
    c = db.create_collection("v", 8, "l2", kind="ivf", nlist=8)
    c.upsert(np.arange(400), vecs)
    c.train()
    assert c.search(vecs[7], k=1, nprobe=8)[0].id == 7

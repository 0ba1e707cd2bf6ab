"""Quantization from Python: Index(quant=, vec_type=), search(oversampling=, rescore=, explore=) and
create_collection(quant=), against a float64 numpy brute force.

Measured on this data (2,000 x 64 Gaussian, l2, m=16, ef_construction=200, threads=1,
2026-12-06): recall@10 at ef=200, re-scored: float 1.000, sq8 1.000, sq4 0.998, bit1 0.969;
with rescore=False (the codes' estimates): sq8 0.975, sq4 0.815, bit1 0.355, mean relative
score error 0.009 / 0.022 / 0.21. The bounds below leave room for that, and no more than
needed to catch a knob that does not reach the library.
"""
import numpy as np
import pytest

import quiver
from helpers import brute_force, recall

N, DIM, NQ, K, EF = 2000, 64, 100, 10, 200
QUANTS = ["sq8", "sq4", "bit1"]
# rescore=False: least overlap with the re-scored top-k, largest mean relative score error.
ESTIMATE_BOUNDS = {"sq8": (0.9, 0.03), "sq4": (0.7, 0.08), "bit1": (0.25, 0.4)}


def rows(seed, n):
    return np.random.default_rng(seed).standard_normal((n, DIM), dtype=np.float32)


def exact_scores(base, queries, ids, metric):
    """The float64 score of each returned id (rows of base) for its query."""
    b = base.astype(np.float64)[ids]
    q = queries.astype(np.float64)[:, None, :]
    return ((b - q) ** 2).sum(-1) if metric == "l2" else (b * q).sum(-1)


@pytest.fixture(scope="module")
def data():
    base, queries = rows(1, N), rows(2, NQ)
    return base, queries, brute_force(base, queries, K, "l2")[0]


@pytest.fixture(scope="module")
def indexes(data):
    """One hnsw index per quant (and 'none'), built identically (threads=1, fixed seed)."""
    base = data[0]
    out = {}
    for quant in ["none"] + QUANTS:
        ix = quiver.Index(DIM, "l2", quant=quant, m=16, ef_construction=200, threads=1, seed=5)
        ix.add(np.arange(N), base)
        out[quant] = ix
    yield out
    for ix in out.values():
        ix.close()


def test_params_and_repr_show_quant():
    with quiver.Index(8, "l2") as ix:
        assert ix.params["quant"] == "none" and ix.params["vec_type"] == "f32"
        assert "sq" not in repr(ix)
    with quiver.Index(8, "ip", quant="sq4", vec_type="u8") as ix:
        assert ix.params["quant"] == "sq4" and ix.params["vec_type"] == "u8"
        assert repr(ix) == "<quiver.Index hnsw dim=8 ip sq4 u8, 0 vectors>"
    with quiver.Index(8, "l2", quant=None, vec_type=None) as ix:   # None = the defaults
        assert ix.params["quant"] == "none" and ix.params["vec_type"] == "f32"


@pytest.mark.parametrize("quant", QUANTS)
def test_rescored_recall_matches_float(data, indexes, quant):
    base, queries, truth = data
    assert indexes[quant].params["quant"] == quant
    float_ids, _ = indexes["none"].search(queries, k=K, ef=EF)
    ids, scores = indexes[quant].search(queries, k=K, ef=EF)
    r, rf = recall(ids, truth, K), recall(float_ids, truth, K)
    assert r >= 0.9 and r >= rf - 0.05, f"{quant}: recall@10 {r:.3f}, float {rf:.3f}"
    # Re-scored: the scores are the exact squared distances, ascending.
    np.testing.assert_allclose(scores, exact_scores(base, queries, ids, "l2"), rtol=1e-4)
    assert np.all(np.diff(scores, axis=1) >= 0)
    # True and "on" are the default.
    for rescore in (True, "on"):
        again = indexes[quant].search(queries, k=K, ef=EF, rescore=rescore)
        np.testing.assert_array_equal(again[0], ids)
        np.testing.assert_array_equal(again[1], scores)


@pytest.mark.parametrize("quant", QUANTS)
def test_rescore_off_returns_estimates(data, indexes, quant):
    base, queries, truth = data
    on_ids, _ = indexes[quant].search(queries, k=K, ef=EF)
    ids, scores = indexes[quant].search(queries, k=K, ef=EF, rescore=False)
    exact = exact_scores(base, queries, ids, "l2")
    err = np.abs(scores - exact) / np.abs(exact).mean()
    min_overlap, max_err = ESTIMATE_BOUNDS[quant]
    # Estimates, not the float distances ...
    assert err.max() > 1e-3, f"{quant}: rescore=False returned exact scores"
    # ... but estimates of them, and the ids mostly those of the re-scored search.
    assert err.mean() < max_err, f"{quant}: mean relative error {err.mean():.3f}"
    overlap = recall(ids, on_ids, K)
    assert overlap >= min_overlap, f"{quant}: overlap {overlap:.3f}"
    assert recall(ids, truth, K) <= recall(on_ids, truth, K)


@pytest.mark.parametrize("quant", QUANTS)
def test_rescore_all(data, indexes, quant):
    """'all' re-scores every candidate of the beam: exact scores, recall at least ON's.
    With oversampling=1 ON re-scores only k of the 64: measured recall@10 on / all
    sq8 0.953 / 0.977, sq4 0.819 / 0.973, bit1 0.823 / 0.823."""
    base, queries, truth = data
    on_ids, _ = indexes[quant].search(queries, k=K, ef=64, oversampling=1)
    ids, scores = indexes[quant].search(queries, k=K, ef=64, oversampling=1, rescore="all")
    np.testing.assert_allclose(scores, exact_scores(base, queries, ids, "l2"), rtol=1e-4)
    r_on, r_all = recall(on_ids, truth, K), recall(ids, truth, K)
    assert r_all >= r_on + (0.1 if quant == "sq4" else 0), f"{quant}: on {r_on:.3f}, all {r_all:.3f}"


def test_oversampling_reaches_the_search(data, indexes):
    """At ef = k, oversampling=20 re-scores 200 candidates (the beam is raised to them):
    measured recall@10 0.63-0.66 at 1, 0.97-1.0 at 20. A float index ignores it."""
    _, queries, truth = data
    for quant in QUANTS:
        low = recall(indexes[quant].search(queries, k=K, ef=K, oversampling=1)[0], truth, K)
        high = recall(indexes[quant].search(queries, k=K, ef=K, oversampling=20.0)[0], truth, K)
        assert high >= 0.95 and high >= low + 0.25, f"{quant}: {low:.3f} at 1, {high:.3f} at 20"
    plain = indexes["none"].search(queries, k=K, ef=K)
    wide = indexes["none"].search(queries, k=K, ef=K, oversampling=20, rescore=False)
    np.testing.assert_array_equal(plain[0], wide[0])
    # 0 is the library's "default", as None.
    a = indexes["sq8"].search(queries, k=K, ef=K)
    b = indexes["sq8"].search(queries, k=K, ef=K, oversampling=0)
    np.testing.assert_array_equal(a[0], b[0])


def differing_rows(a, b):
    return int((np.sort(a, axis=1) != np.sort(b, axis=1)).any(axis=1).sum())


def test_explore_reaches_the_search(data, indexes):
    """explore (bit1 hnsw only): the walk also follows neighbours whose estimate minus
    explore x the 1-bit bound could enter the beam, so at a small beam more of the true
    neighbours are found (re-scored, so the scores stay exact). Measured recall@10 at
    ef 16: 0.452 without, 0.853 at 0.5, 0.981 at 1 (2026-12-06). sq8 has no bound: the
    same answers with or without it."""
    base, queries, truth = data
    ix = indexes["bit1"]
    ids0, _ = ix.search(queries, k=K, ef=16)
    ids1, scores1 = ix.search(queries, k=K, ef=16, explore=1)
    r0, r1 = recall(ids0, truth, K), recall(ids1, truth, K)
    assert r1 >= r0 + 0.1, f"explore 1: recall {r1:.3f}, without {r0:.3f}"
    assert differing_rows(ids0, ids1) > 0
    np.testing.assert_allclose(scores1, exact_scores(base, queries, ids1, "l2"), rtol=1e-4)
    # 0 is off, as None; a fraction is taken as given.
    np.testing.assert_array_equal(ix.search(queries, k=K, ef=16, explore=0)[0], ids0)
    assert recall(ix.search(queries, k=K, ef=16, explore=0.5)[0], truth, K) >= r0
    a = indexes["sq8"].search(queries, k=K, ef=16)
    b = indexes["sq8"].search(queries, k=K, ef=16, explore=2.5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_bad_search_knobs(indexes):
    ix, q = indexes["sq8"], rows(3, 1)[0]
    for bad in (0.5, -1, -1e-50, float("nan"), float("inf"), 100.5, 1e300):
        with pytest.raises(quiver.InvalidArgumentError, match="oversampling must be 0"):
            ix.search(q, k=K, oversampling=bad)
    for bad in ("2", True, [2]):
        with pytest.raises(TypeError):
            ix.search(q, k=K, oversampling=bad)
    for bad in (-0.1, -1e-50, float("nan"), float("inf"), 4.01, 1e300):
        with pytest.raises(quiver.InvalidArgumentError, match="explore must be 0..4"):
            ix.search(q, k=K, explore=bad)
    for bad in ("1", True, [1]):
        with pytest.raises(TypeError):
            ix.search(q, k=K, explore=bad)
    with pytest.raises(quiver.InvalidArgumentError, match="rescore"):
        ix.search(q, k=K, rescore="sometimes")
    for bad in (1, 0, 2.0):
        with pytest.raises(TypeError):
            ix.search(q, k=K, rescore=bad)
    # The new arguments are keyword-only: the third positional argument is still refused.
    with pytest.raises(TypeError):
        ix.search(q, K, 2.0)
    assert len(ix.search(q, K, oversampling=100, rescore=None)[0]) == K


def test_bad_index_knobs():
    with pytest.raises(quiver.InvalidArgumentError, match="unknown quantization 'pq'"):
        quiver.Index(16, "l2", quant="pq")
    with pytest.raises(quiver.InvalidArgumentError, match="unknown vector type 'i8'"):
        quiver.Index(16, "l2", quant="sq8", vec_type="i8")
    with pytest.raises(TypeError):
        quiver.Index(16, "l2", quant=8)
    # Combinations the library refuses, in its words.
    for kw in ({"vec_type": "u8"}, {"kind": "flat", "quant": "sq8", "vec_type": "u8"},
               {"kind": "ivf", "quant": "bit1", "vec_type": "u8"}):
        with pytest.raises(quiver.InvalidArgumentError, match="vector type u8 needs a quantized hnsw"):
            quiver.Index(16, "l2", **kw)
    with pytest.raises(quiver.InvalidArgumentError, match="u8"):
        quiver.Index(16, "cosine", quant="bit1", vec_type="u8")


@pytest.mark.parametrize("quant,metric", [("sq8", "l2"), ("bit1", "ip")])
def test_u8_answers_as_f32(tmp_path, quant, metric):
    """Integer data 0..255: the u8 index gives the ids and scores of the f32 one, bit for bit
    (as tests/check_index_quant.c checks in C), re-scored or not, and after save/load."""
    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, (1500, 40)).astype(np.float32)
    queries = (128 + 60 * rng.standard_normal((30, 40))).astype(np.float32)   # queries stay float
    f = quiver.Index(40, metric, quant=quant, m=8, ef_construction=64, threads=1, seed=3)
    u = quiver.Index(40, metric, quant=quant, vec_type="u8", m=8, ef_construction=64, threads=1, seed=3)
    f.add(np.arange(1500), base)
    u.add(np.arange(1500), base)
    assert u.memory < f.memory
    for rescore in (None, False, "all"):
        fi, fs = f.search(queries, k=K, rescore=rescore)
        ui, us = u.search(queries, k=K, rescore=rescore)
        np.testing.assert_array_equal(fi, ui)
        np.testing.assert_array_equal(fs, us)
    truth = brute_force(base, queries, K, metric)[0]
    assert recall(u.search(queries, k=K, ef=EF)[0], truth, K) >= 0.9
    # Values a byte cannot hold exactly are refused, all or nothing.
    for bad in (1.5, 256.0, -1.0):
        v = base[:2].copy()
        v[1, 5] = bad
        with pytest.raises(quiver.InvalidArgumentError, match="not an integer 0..255"):
            u.add([5000, 5001], v)
    assert len(u) == 1500
    path = str(tmp_path / "u8.qvi")
    u.save(path)
    with quiver.Index.load(path) as back:
        assert back.params["vec_type"] == "u8" and back.params["quant"] == quant
        np.testing.assert_array_equal(back.search(queries, k=K)[1], u.search(queries, k=K)[1])
    f.close()
    u.close()


@pytest.mark.parametrize("quant,metric", [("sq8", "l2"), ("bit1", "ip")])
def test_f16_answers_as_rounded_f32(tmp_path, quant, metric):
    """f16: the index rounds each value to the nearest half on add and answers as an f32
    index given numpy's float16 rounding of the same data (ties to even, as C's), bit for
    bit; out-of-range values are refused; the type survives save/load."""
    rng = np.random.default_rng(8)
    base = (3 * rng.standard_normal((1500, 40))).astype(np.float32)
    rounded = base.astype(np.float16).astype(np.float32)
    assert (rounded != base).mean() > 0.5
    queries = rng.standard_normal((30, 40)).astype(np.float32)
    f = quiver.Index(40, metric, quant=quant, m=8, ef_construction=64, threads=1, seed=3)
    h = quiver.Index(40, metric, quant=quant, vec_type="f16", m=8, ef_construction=64, threads=1, seed=3)
    f.add(np.arange(1500), rounded)
    h.add(np.arange(1500), base)
    assert h.memory < f.memory and h.params["vec_type"] == "f16"
    for rescore in (None, False, "all"):
        fi, fs = f.search(queries, k=K, rescore=rescore)
        hi, hs = h.search(queries, k=K, rescore=rescore)
        np.testing.assert_array_equal(fi, hi)
        np.testing.assert_array_equal(fs, hs)
    truth = brute_force(base, queries, K, metric)[0]
    assert recall(h.search(queries, k=K, ef=EF)[0], truth, K) >= 0.9
    v = base[:2].copy()
    v[1, 5] = 70000.0
    with pytest.raises(quiver.InvalidArgumentError, match="range of a half"):
        h.add([5000, 5001], v)
    assert len(h) == 1500
    path = str(tmp_path / "f16.qvi")
    h.save(path)
    with quiver.Index.load(path) as back:
        assert back.params["vec_type"] == "f16"
        np.testing.assert_array_equal(back.search(queries, k=K)[1], h.search(queries, k=K)[1])
    with pytest.raises(quiver.InvalidArgumentError, match="vector type f16 needs a quantized hnsw"):
        quiver.Index(16, "l2", vec_type="f16")
    f.close()
    h.close()


@pytest.mark.parametrize("quant", QUANTS)
def test_quant_survives_save_load(tmp_path, data, indexes, quant):
    _, queries, _ = data
    path = str(tmp_path / f"{quant}.qvi")
    indexes[quant].save(path)
    with quiver.Index.load(path) as back:
        assert back.params["quant"] == quant and back.params["vec_type"] == "f32"
        assert quant in repr(back)
        for rescore in (None, False):
            a = indexes[quant].search(queries, k=K, ef=64, rescore=rescore)
            b = back.search(queries, k=K, ef=64, rescore=rescore)
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(a[1], b[1])


def test_collection_quant(tmp_path, data):
    base, queries, truth = data
    path = str(tmp_path / "db")
    with quiver.open(path, nosync=True) as db:
        c = db.create_collection("q", DIM, "l2", quant="sq8")
        assert c.info["quant"] == "sq8"
        assert db.create_collection("f", DIM, "l2").info["quant"] == "none"
        c.upsert(np.arange(N), base)
        hits = c.search(queries, k=K, ef=EF, with_payload=False)
        ids = np.array([[h.id for h in row] for row in hits])
        scores = np.array([[h.score for h in row] for row in hits])
        r = recall(ids, truth, K)
        assert r >= 0.9, f"recall@10 {r:.3f}"
        np.testing.assert_allclose(scores, exact_scores(base, queries, ids, "l2"), rtol=1e-4)
        est = c.search(queries[:20], k=K, ef=EF, with_payload=False, rescore=False, oversampling=2)
        est_ids = np.array([[h.id for h in row] for row in est])
        est_scores = np.array([[h.score for h in row] for row in est])
        assert np.abs(est_scores - exact_scores(base, queries[:20], est_ids, "l2")).max() > 1e-3
        assert recall(est_ids, ids[:20], K) >= 0.9
        with pytest.raises(quiver.InvalidArgumentError, match="oversampling"):
            c.search(queries[0], k=K, oversampling=0.5)
        # explore: sq8 takes it and ignores it (bit1: test_collection_explore).
        same = c.search(queries, k=K, ef=EF, with_payload=False, explore=1)
        np.testing.assert_array_equal(np.array([[h.id for h in row] for row in same]), ids)
        # A collection keeps float32 vectors: the library refuses u8, and names the reason.
        with pytest.raises(quiver.InvalidArgumentError, match="collections keep float32 vectors"):
            db.create_collection("u", DIM, "l2", quant="sq8", vec_type="u8")
        with pytest.raises(quiver.InvalidArgumentError, match="unknown quantization"):
            db.create_collection("p", DIM, "l2", quant="pq")
        assert sorted(db.collections()) == ["f", "q"]
    with quiver.open(path, nosync=True) as db:
        assert db.collection("q").info["quant"] == "sq8"


def test_collection_explore(tmp_path, data):
    """Collection.search(explore=) reaches a bit1 collection's walk: at ef 16 recall rises
    (measured 0.473 -> 0.986, 2026-12-06) and some answers change; bad values are refused."""
    base, queries, truth = data
    with quiver.open(str(tmp_path / "db"), nosync=True) as db:
        c = db.create_collection("b", DIM, "l2", quant="bit1")
        c.upsert(np.arange(N), base)

        def ids(**kw):
            hits = c.search(queries, k=K, ef=16, with_payload=False, **kw)
            return np.array([[h.id for h in row] for row in hits])
        ids0, ids1 = ids(), ids(explore=1.0)
        r0, r1 = recall(ids0, truth, K), recall(ids1, truth, K)
        assert r1 >= r0 + 0.1, f"explore 1: recall {r1:.3f}, without {r0:.3f}"
        assert differing_rows(ids0, ids1) > 0
        with pytest.raises(quiver.InvalidArgumentError, match="explore"):
            c.search(queries[0], k=K, explore=4.5)
        with pytest.raises(quiver.InvalidArgumentError, match="explore"):
            c.search(queries[0], k=K, explore=float("nan"))
        with pytest.raises(TypeError):
            c.search(queries[0], k=K, explore="1")


def test_collection_update_quant(tmp_path, data):
    """Collection.update(quant=) rebuilds a collection that holds points on new codes: with
    rescore=False the scores become estimates, re-scored ones stay exact, 'none' drops the
    codes, the change survives a reopen, and bad values are refused with nothing changed."""
    base, queries, truth = data
    path = str(tmp_path / "db")

    def search(c, **kw):
        hits = c.search(queries[:20], k=K, ef=EF, with_payload=False, **kw)
        ids = np.array([[h.id for h in row] for row in hits])
        scores = np.array([[h.score for h in row] for row in hits])
        err = np.abs(scores - exact_scores(base, queries[:20], ids, "l2")).max()
        return recall(ids, truth[:20], K), err

    with quiver.open(path, nosync=True) as db:
        c = db.create_collection("u", DIM, "l2")
        c.upsert(np.arange(N), base)
        assert search(c, rescore=False)[1] < 1e-3            # float: exact
        c.update(quant="bit1")
        assert c.info["quant"] == "bit1"
        r, err = search(c, rescore=False)
        assert err > 1e-3, "bit1 without re-scoring gives estimates"
        r, err = search(c)
        assert r >= 0.9 and err < 1e-3, f"bit1 re-scored: recall {r:.3f}, error {err:g}"
        with pytest.raises(quiver.InvalidArgumentError, match="unknown quantization"):
            c.update(quant="pq")
        with pytest.raises(ValueError, match="m must be positive"):
            c.update(m=0)
        assert c.info["quant"] == "bit1"
        c.update(m=8, quant="sq8")
        assert c.info["quant"] == "sq8" and c.info["m"] == 8
    with quiver.open(path, nosync=True) as db:
        c = db.collection("u")
        assert c.info["quant"] == "sq8"
        c.update(quant="none")
        assert c.info["quant"] == "none"
        r, err = search(c, rescore=False)
        assert r >= 0.9 and err < 1e-3, f"float again: recall {r:.3f}, error {err:g}"

"""quiver.Index against a float64 numpy brute force, on random data and on siftsmall."""
import numpy as np
import pytest

import quiver
from helpers import brute_force, recall

METRICS = ["l2", "ip", "cosine"]


def random_data(n, dim, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, dim), dtype=np.float32)


@pytest.mark.parametrize("metric", METRICS)
def test_flat_matches_brute_force(metric):
    base, queries = random_data(2000, 37, 1), random_data(50, 37, 2)
    with quiver.Index(37, metric, kind="flat") as ix:
        ix.add(np.arange(2000, dtype=np.int64), base)
        ids, scores = ix.search(queries, k=10)
    want_ids, want_scores = brute_force(base, queries, 10, metric)
    assert ids.shape == (50, 10) and ids.dtype == np.int64 and scores.dtype == np.float32
    # Same neighbours (ties aside: random floats have none) and the same scores.
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("metric", METRICS)
def test_hnsw_recall_on_random_data(metric):
    base, queries = random_data(5000, 24, 3), random_data(100, 24, 4)
    ix = quiver.Index(24, metric, m=16, ef_construction=200)
    ix.add(np.arange(5000), base)
    ids, scores = ix.search(queries, k=10, ef=128)
    want_ids, _ = brute_force(base, queries, 10, metric)
    assert recall(ids, want_ids, 10) >= 0.95
    # Scores are the true scores of the returned ids.
    for q in range(5):
        ref = brute_force(base[ids[q]], queries[q], 10, metric)[1][0]
        np.testing.assert_allclose(np.sort(scores[q]), np.sort(ref), rtol=1e-4, atol=1e-3)


def test_hnsw_on_siftsmall_matches_ground_truth_and_numpy(siftsmall):
    base, queries, gt = siftsmall
    ix = quiver.Index(128, "l2", m=16, ef_construction=200, seed=7)
    ix.add(np.arange(len(base)), base)
    ids, scores = ix.search(queries, k=10, ef=64)
    want_ids, _ = brute_force(base, queries, 10, "l2")
    # The dataset's ground truth and our numpy reference agree on the true neighbours ...
    assert recall(want_ids, gt, 10) >= 0.99
    # ... and the index finds them.
    r = recall(ids, want_ids, 10)
    assert r >= 0.97, f"recall@10 {r:.4f}"
    # The scores are squared L2 distances, ascending.
    assert np.all(np.diff(scores, axis=1) >= 0)
    exact = ((base[ids[0]].astype(np.float64) - queries[0]) ** 2).sum(1)
    np.testing.assert_allclose(scores[0], exact, rtol=1e-5)


def test_ivf_recall_on_siftsmall(siftsmall):
    base, queries, gt = siftsmall
    ix = quiver.Index(128, "l2", kind="ivf", nlist=64, seed=1)
    with pytest.raises(quiver.StateError):
        ix.add(np.arange(len(base)), base)          # not trained yet
    ix.train(base)
    ix.add(np.arange(len(base)), base)
    ids, _ = ix.search(queries, k=10, nprobe=16)
    assert recall(ids, gt, 10) >= 0.9


def test_single_query_equals_batch_row():
    base, queries = random_data(3000, 16, 5), random_data(20, 16, 6)
    ix = quiver.Index(16, "l2", threads=2)
    ix.add(np.arange(3000), base)
    bids, bscores = ix.search(queries, k=7, ef=50)
    for q in range(20):
        ids, scores = ix.search(queries[q], k=7, ef=50)
        assert ids.shape == (7,)
        np.testing.assert_array_equal(ids, bids[q])
        np.testing.assert_array_equal(scores, bscores[q])


def test_inputs_of_any_dtype_and_layout_give_the_same_answer():
    base = random_data(500, 8, 7)
    ix = quiver.Index(8, "l2", kind="flat")
    ix.add(np.arange(500, dtype=np.uint64), base)
    q = base[:4]
    want = ix.search(q, k=3)
    variants = [
        q.astype(np.float64),                      # converted once
        np.asfortranarray(q),                      # not C-contiguous
        np.ascontiguousarray(np.repeat(q, 2, axis=0)[::2]),
        q.tolist(),                                # a list of lists
    ]
    for v in variants:
        got = ix.search(v, k=3)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
    # ids as int32 arrays, Python lists, ranges and one int
    ix2 = quiver.Index(8, "l2", kind="flat")
    ix2.add(np.arange(100, dtype=np.int32), base[:100])
    ix2.add(list(range(100, 200)), base[100:200])
    ix2.add(range(200, 300), base[200:300])
    ix2.add(300, base[300])
    assert len(ix2) == 301
    np.testing.assert_array_equal(ix2.search(base[300], k=1)[0], [300])


def test_batch_pads_missing_hits():
    ix = quiver.Index(4, "l2", kind="flat")
    ix.add([10, 11], np.eye(4, dtype=np.float32)[:2])
    ids, scores = ix.search(np.eye(4, dtype=np.float32)[:3], k=4)
    assert ids.shape == (3, 4)
    np.testing.assert_array_equal(ids[:, 2:], -1)
    assert np.all(np.isinf(scores[:, 2:])) and np.all(scores[:, 2:] > 0)
    ids1, scores1 = ix.search(np.ones(4), k=4)      # one query: only what was found
    assert ids1.shape == (2,)
    ipx = quiver.Index(4, "ip", kind="flat")
    ipx.add([1], np.ones((1, 4)))
    assert ipx.search(np.ones((1, 4)), k=2)[1][0, 1] == -np.inf
    # an empty batch
    ids0, scores0 = ix.search(np.zeros((0, 4), np.float32), k=3)
    assert ids0.shape == (0, 3) and scores0.shape == (0, 3)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_filters_mask_ids_callable(kind):
    base, queries = random_data(2000, 12, 8), random_data(10, 12, 9)
    ix = quiver.Index(12, "l2", kind=kind)
    ix.add(np.arange(2000), base)
    rng = np.random.default_rng(10)
    allowed = rng.random(2000) < 0.2
    want, _ = brute_force(base, queries, 5, "l2", allowed=allowed)
    allowed_ids = np.flatnonzero(allowed)
    for flt in (allowed, allowed_ids, allowed_ids.tolist(), lambda i: bool(allowed[i])):
        ids, _ = ix.search(queries, k=5, ef=200, filter=flt)
        assert allowed[ids].all()
        assert recall(ids, want, 5) >= 0.95
    # Large ids that make a bitset too big go through a sorted list: same answers.
    big = quiver.Index(12, "l2", kind=kind)
    big.add(allowed_ids * 2**40, base[allowed_ids])
    ids, _ = big.search(queries, k=5, ef=200, filter=allowed_ids[::2] * 2**40)
    assert np.isin(ids, allowed_ids[::2] * 2**40).all()
    # Nothing allowed: nothing found.
    ids, _ = ix.search(queries[0], k=5, filter=[])
    assert ids.shape == (0,)


def test_callable_filter_exception_propagates():
    ix = quiver.Index(4, "l2", kind="flat")
    ix.add(np.arange(10), np.eye(10, 4, dtype=np.float32))

    def boom(i):
        raise KeyError(i)

    with pytest.raises(KeyError):
        ix.search(np.ones(4), k=3, filter=boom)
    with pytest.raises(KeyError):
        ix.search(np.ones((5, 4)), k=3, filter=boom)


def test_add_replaces_and_remove_removes():
    base = random_data(1000, 8, 11)
    ix = quiver.Index(8, "cosine")
    ix.add(np.arange(1000), base)
    ix.add([5], -base[5])                          # replaced: no longer its own neighbour
    assert len(ix) == 1000
    ids, _ = ix.search(base[5], k=1, ef=100)
    assert ids[0] != 5
    assert ix.remove(np.arange(0, 1000, 2)) == 500
    assert ix.remove([0, 2, 4]) == 0               # absent: skipped
    assert len(ix) == 500
    ids, _ = ix.search(base[:50], k=10, ef=100)
    assert (ids % 2 == 1).all()


def test_save_and_load_round_trip(tmp_path):
    base, queries = random_data(1500, 20, 12), random_data(10, 20, 13)
    ix = quiver.Index(20, "ip", m=12, ef_construction=100)
    ix.add(np.arange(1500) + 7, base)
    path = str(tmp_path / "ix.qvi")
    ix.save(path)
    loaded = quiver.Index.load(path)
    assert loaded.params["m"] == 12 and loaded.metric == "ip" and loaded.kind == "hnsw" and len(loaded) == 1500
    a, b = ix.search(queries, k=5, ef=40), loaded.search(queries, k=5, ef=40)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    # A damaged file is refused with CorruptError, a missing one with an error, never a crash.
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x55
    bad = tmp_path / "bad.qvi"
    bad.write_bytes(bytes(data))
    with pytest.raises(quiver.CorruptError):
        quiver.Index.load(str(bad))
    (tmp_path / "short.qvi").write_bytes(bytes(data[:100]))
    with pytest.raises(quiver.CorruptError):
        quiver.Index.load(str(tmp_path / "short.qvi"))
    with pytest.raises(quiver.Error):
        quiver.Index.load(str(tmp_path / "absent.qvi"))


def test_properties_and_repr():
    ix = quiver.Index(dim=16, metric="l2", kind="flat", threads=1)
    assert (ix.dim, ix.metric, ix.kind, ix.closed) == (16, "l2", "flat", False)
    assert ix.params["threads"] == 1
    assert "flat" in repr(ix) and "0 vectors" in repr(ix)
    ix.add([1], np.ones((1, 16)))
    assert ix.memory > 0
    with ix:
        pass
    assert ix.closed and "closed" in repr(ix)

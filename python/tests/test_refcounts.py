"""No reference leaks: calls repeated many times leave no Python objects behind, on the
success paths and on the error paths (an object leaked per call shows up as tracemalloc
growth proportional to the number of calls)."""
import tracemalloc

import numpy as np
import pytest

import quiver


def growth(fn, n):
    fn()                                    # warm caches (interned strings, method tables)
    fn()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(n):
        fn()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    return sum(s.size_diff for s in after.compare_to(before, "filename"))


def expect_error(fn, exc):
    def call():
        with pytest.raises(exc):
            fn()
    return call


def test_no_leaks_in_index_calls():
    base = np.random.default_rng(1).standard_normal((300, 8), dtype=np.float32)
    ix = quiver.Index(8, "l2", threads=1)
    ix.add(np.arange(300), base)
    mask = np.zeros(300, bool)
    mask[::3] = True
    calls = [
        lambda: ix.search(base[0], k=5),
        lambda: ix.search(base[:4], k=5, filter=mask),
        lambda: ix.search(base[:4].astype(np.float64), k=5, filter=[1, 2, 3]),
        lambda: ix.search(base[0], k=3, filter=lambda i: i < 50),
        lambda: ix.add([7, 8], base[7:9]),
        lambda: ix.remove([1000]),
        lambda: ix.params,
        expect_error(lambda: ix.search(np.ones(3)), quiver.DimensionError),
        expect_error(lambda: ix.add([1], np.full((1, 8), np.nan)), quiver.InvalidArgumentError),
        expect_error(lambda: ix.search(base[0], k=0), quiver.InvalidArgumentError),
        expect_error(lambda: ix.search(base[0], filter=lambda i: 1 / 0), ZeroDivisionError),
    ]
    for fn in calls:
        assert growth(fn, 2000) < 20000, fn


def test_no_leaks_in_quantized_index_calls():
    base = np.random.default_rng(3).integers(0, 256, (300, 8)).astype(np.float32)
    ix = quiver.Index(8, "l2", quant="sq8", vec_type="u8", threads=1)
    ix.add(np.arange(300), base)
    calls = [
        lambda: ix.search(base[:4], k=5, oversampling=3.5, rescore=False),
        lambda: ix.search(base[0], k=5, rescore="all"),
        lambda: ix.params,
        lambda: repr(ix),
        expect_error(lambda: ix.search(base[0], oversampling=0.5), quiver.InvalidArgumentError),
        expect_error(lambda: ix.search(base[0], oversampling="x"), TypeError),
        expect_error(lambda: ix.search(base[0], rescore="x"), quiver.InvalidArgumentError),
        expect_error(lambda: ix.add([1], np.full((1, 8), 0.5)), quiver.InvalidArgumentError),
        expect_error(lambda: quiver.Index(8, "l2", quant="pq"), quiver.InvalidArgumentError),
        expect_error(lambda: quiver.Index(8, "l2", vec_type="u8"), quiver.InvalidArgumentError),
    ]
    for fn in calls:
        assert growth(fn, 2000) < 20000, fn


def test_no_leaks_in_collection_calls(db):
    c = db.create_collection("docs", 4, "cosine", payload_index={"lang": "keyword"})
    vecs = np.random.default_rng(2).standard_normal((50, 4), dtype=np.float32)
    c.upsert(np.arange(50), vecs, payloads=[{"lang": "en" if i % 2 else "fr", "i": i} for i in range(50)])
    flt = {"must": [{"key": "lang", "match": "en"}]}
    calls = [
        lambda: c.search(vecs[0], k=5, filter=flt),
        lambda: c.search(vecs[:3], k=3),
        lambda: c.get(3),
        lambda: c.get([3, 999]),
        lambda: c.scroll(flt, limit=10),
        lambda: c.count(flt),
        lambda: c.info,
        lambda: c.upsert([60], vecs[:1], payloads=[{"lang": "de", "x": [1, 2]}]),
        lambda: c.set_payload([3, 4], {"seen": True}),
        lambda: c.update_payload([3], remove=["seen"], merge={"k": 1}, keep=["lang"], clear=True),
        expect_error(lambda: c.delete_payload_keys([3, 12345], ["k"]), quiver.NotFoundError),
        expect_error(lambda: c.upsert([1], vecs[:1], payloads=[[1]]), TypeError),
        expect_error(lambda: c.search(vecs[0], filter={"must": 3}), quiver.InvalidArgumentError),
        expect_error(lambda: c.search(np.ones(5)), quiver.DimensionError),
    ]
    for fn in calls:
        assert growth(fn, 500) < 20000, fn

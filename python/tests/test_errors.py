"""Bad input gets a quiver.Error subclass with the library's message, never a crash."""
import numpy as np
import pytest

import quiver

CODES = {
    "InvalidArgumentError": -1, "DimensionError": -2, "OutOfMemoryError": -3, "NotFoundError": -4,
    "ExistsError": -5, "CorruptError": -6, "IOFailure": -7, "FullError": -8, "NoDeviceError": -9,
    "StateError": -10, "InternalError": -11,
}


def test_one_subclass_per_code_and_builtin_bases():
    for name in CODES:
        assert issubclass(getattr(quiver, name), quiver.Error)
    assert issubclass(quiver.DimensionError, ValueError)
    assert issubclass(quiver.InvalidArgumentError, ValueError)
    assert issubclass(quiver.NotFoundError, LookupError)
    assert issubclass(quiver.IOFailure, OSError)
    assert issubclass(quiver.StateError, RuntimeError)


def test_wrong_dimension():
    ix = quiver.Index(8, "l2")
    with pytest.raises(quiver.DimensionError) as e:
        ix.add([1, 2], np.zeros((2, 7), np.float32))
    assert e.value.code == CODES["DimensionError"]
    assert "dimension 7" in str(e.value) and "8" in str(e.value) and e.value.message == str(e.value)
    with pytest.raises(quiver.DimensionError):
        ix.search(np.zeros(9, np.float32))
    with pytest.raises(quiver.DimensionError):
        ix.search(np.zeros((3, 9), np.float32))
    with pytest.raises(quiver.InvalidArgumentError, match="2 ids for 3 vectors"):
        ix.add([1, 2], np.ones((3, 8)))
    with pytest.raises(quiver.InvalidArgumentError):
        ix.add([1], np.ones((1, 2, 8)))
    assert len(ix) == 0


def test_wrong_dimension_in_a_collection(db):
    c = db.create_collection("docs", 4, "l2")
    with pytest.raises(quiver.DimensionError):
        c.upsert([1], np.ones((1, 5)))
    with pytest.raises(quiver.DimensionError):
        c.search(np.ones(3))
    assert len(c) == 0


def test_nan_and_inf_are_refused_and_nothing_is_half_applied(db):
    ix = quiver.Index(4, "l2")
    ix.add([1], np.ones((1, 4)))
    bad = np.ones((3, 4), np.float32)
    bad[2, 1] = np.nan
    with pytest.raises(quiver.InvalidArgumentError) as e:
        ix.add([2, 3, 4], bad)
    assert e.value.code == CODES["InvalidArgumentError"] and "not finite" in str(e.value)
    assert len(ix) == 1                      # all or nothing
    with pytest.raises(quiver.InvalidArgumentError):
        ix.search(np.array([0, np.inf, 0, 0]))
    c = db.create_collection("docs", 4, "l2")
    with pytest.raises(quiver.InvalidArgumentError, match="id 4"):
        c.upsert([2, 3, 4], bad)
    assert len(c) == 0
    with pytest.raises(quiver.InvalidArgumentError):
        c.search(np.array([0, np.nan, 0, 0]))


def test_bad_ids_payloads_filters_and_params(db):
    ix = quiver.Index(2, "l2")
    with pytest.raises(quiver.InvalidArgumentError):
        ix.add([-1], np.ones((1, 2)))
    with pytest.raises(quiver.InvalidArgumentError):
        ix.add(np.array([2**63], dtype=np.uint64), np.ones((1, 2)))
    with pytest.raises(TypeError):
        ix.add([1.5], np.ones((1, 2)))
    with pytest.raises(TypeError):
        ix.add([1], np.ones((1, 2), dtype=complex))
    with pytest.raises(quiver.InvalidArgumentError, match="k must be"):
        ix.search(np.ones(2), k=0)
    with pytest.raises(quiver.InvalidArgumentError, match="k must be"):
        ix.search(np.ones(2), k=quiver.MAX_K + 1)
    with pytest.raises(quiver.InvalidArgumentError, match="m must be"):
        quiver.Index(2, "l2", m=1000)
    with pytest.raises(quiver.InvalidArgumentError, match="unknown metric"):
        quiver.Index(2, "euclid")
    with pytest.raises(quiver.InvalidArgumentError):
        quiver.Index(0, "l2")
    with pytest.raises(quiver.InvalidArgumentError):
        quiver.Index(-3, "l2")
    with pytest.raises(TypeError, match="unexpected keyword"):
        quiver.Index(2, "l2", ef_constr=10)
    with pytest.raises(quiver.InvalidArgumentError, match="filter mask"):
        ix.search(np.ones(2), filter=np.ones((2, 2), bool))

    c = db.create_collection("docs", 2, "l2")
    with pytest.raises(TypeError, match=r"payloads\[1\] must be a dict"):
        c.upsert([1, 2], np.ones((2, 2)), payloads=[{}, [1, 2]])
    with pytest.raises(ValueError, match=r"payloads\[0\]"):
        c.upsert([1], np.ones((1, 2)), payloads=[{"x": float("nan")}])
    with pytest.raises(TypeError, match=r"payloads\[0\]"):
        c.upsert([1], np.ones((1, 2)), payloads=[{"x": {1, 2}}])
    with pytest.raises(quiver.InvalidArgumentError, match="1 payloads for 2 points"):
        c.upsert([1, 2], np.ones((2, 2)), payloads=[{}])
    with pytest.raises(quiver.InvalidArgumentError):
        c.upsert([quiver.MAX_ID + 1], np.ones((1, 2)))
    assert len(c) == 0
    with pytest.raises(quiver.InvalidArgumentError, match="range"):
        c.search(np.ones(2), filter={"must": [{"key": "year", "range": {"ge": 1}}]})
    with pytest.raises(quiver.InvalidArgumentError):
        c.search(np.ones(2), filter="{not json")
    with pytest.raises(TypeError):
        c.search(np.ones(2), filter=[1, 2])
    with pytest.raises(quiver.InvalidArgumentError):
        c.scroll(limit=0)
    with pytest.raises(quiver.InvalidArgumentError, match="start must be"):
        c.scroll(start=-1)                   # not read as 2**64 - 1


def test_closed_database(tmp_path):
    db = quiver.open(str(tmp_path / "db"))
    c = db.create_collection("docs", 2, "l2")
    c.upsert([1], np.ones((1, 2)), payloads=[{"a": 1}])
    db.close()
    db.close()                               # twice is fine
    assert db.closed and c.closed
    for call in (lambda: db.collections(), lambda: db.collection("docs"), lambda: db.create_collection("x", 2),
                 lambda: db.drop("docs"), lambda: "docs" in db):
        with pytest.raises(quiver.StateError, match="database is closed") as e:
            call()
        assert e.value.code == CODES["StateError"]
    for call in (lambda: c.search(np.ones(2)), lambda: c.upsert([2], np.ones((1, 2))), lambda: c.get(1),
                 lambda: c.delete([1]), lambda: c.scroll(), lambda: c.count(), lambda: len(c),
                 lambda: c.index_field("a"), lambda: c.info, lambda: c.checkpoint()):
        with pytest.raises(quiver.StateError):
            call()
    c.close()                                # harmless
    # The data was committed: a new Database object sees it.
    with quiver.open(str(tmp_path / "db")) as again:
        assert again.collection("docs").get(1).payload == {"a": 1}


def test_closed_index():
    ix = quiver.Index(2, "l2")
    ix.close()
    for call in (lambda: ix.add([1], np.ones((1, 2))), lambda: ix.search(np.ones(2)), lambda: len(ix),
                 lambda: ix.remove([1]), lambda: ix.save("/nonexistent"), lambda: ix.memory):
        with pytest.raises(quiver.StateError, match="index is closed"):
            call()


def test_database_errors(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(quiver.Error):
        quiver.open(str(tmp_path / "file"))
    d = tmp_path / "garbage"
    d.mkdir()
    (d / "data.mdb").write_bytes(b"\0garbage" * 1000)
    with pytest.raises((quiver.CorruptError, quiver.IOFailure)):
        quiver.open(str(d))
    with pytest.raises(quiver.Error):
        quiver.read_vectors(str(tmp_path / "absent.fvecs"))
    (tmp_path / "trunc.fvecs").write_bytes(b"\x04\0\0\0\0\0")
    with pytest.raises(quiver.CorruptError):
        quiver.read_vectors(str(tmp_path / "trunc.fvecs"))
    with pytest.raises(TypeError):
        quiver.Database()

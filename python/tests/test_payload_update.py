"""Payload-only updates: set (merge), overwrite, delete keys, clear, and the general form;
vectors untouched, filters see the new values, a missing id changes nothing."""
import numpy as np
import pytest

import quiver


@pytest.fixture
def docs(db):
    c = db.create_collection("docs", 3, "l2", payload_index={"lang": "keyword"})
    c.upsert([1, 2, 3], np.eye(3), payloads=[{"lang": "en", "n": 1}, {"lang": "fr", "draft": True}, None])
    return c


def test_set_overwrite_delete_clear(docs):
    assert docs.set_payload([1, 3], {"lang": "de", "tags": ["a"]}) == 2
    assert docs.get(1).payload == {"lang": "de", "n": 1, "tags": ["a"]}
    assert docs.get(3).payload == {"lang": "de", "tags": ["a"]}
    np.testing.assert_array_equal(docs.get(1).vector, [1, 0, 0])
    assert docs.overwrite_payload(2, {"title": "x"}) == 1
    assert docs.get(2).payload == {"title": "x"}
    assert docs.delete_payload_keys([1], ["n", "absent"]) == 1
    assert docs.get(1).payload == {"lang": "de", "tags": ["a"]}
    assert docs.clear_payload([1, 2]) == 2
    assert docs.get(1).payload is None and docs.get(2).payload is None
    # the payload index follows
    assert docs.count({"must": [{"key": "lang", "match": "de"}]}) == 1
    assert [h.id for h in docs.search([0, 0, 1], k=3, filter={"must": [{"key": "lang", "match": "de"}]})] == [3]


def test_update_payload_general_form(docs):
    n = docs.update_payload([1, 2], clear=True, keep=["lang"], remove=["x"], merge={"seen": 1})
    assert n == 2
    assert docs.get(1).payload == {"lang": "en", "seen": 1}
    assert docs.get(2).payload == {"lang": "fr", "seen": 1}
    assert docs.update_payload([2, 99], merge={"z": 0}, skip_missing=True) == 1


def test_payload_update_errors_change_nothing(docs):
    with pytest.raises(quiver.NotFoundError, match="99"):
        docs.set_payload([1, 99], {"lang": "xx"})
    assert docs.get(1).payload == {"lang": "en", "n": 1}
    with pytest.raises(TypeError):
        docs.set_payload([1], ["not", "a", "dict"])
    with pytest.raises(TypeError):
        docs.delete_payload_keys([1], "lang")
    with pytest.raises(TypeError):
        docs.delete_payload_keys([1], [1, 2])
    with pytest.raises(ValueError):
        docs.set_payload([1], {"x": float("inf")})
    assert docs.get(1).payload == {"lang": "en", "n": 1}

"""Fixtures of the quiver module's pytest suite (run by `make python-test` and `make test`).

The module is imported from $PYTHONPATH (build/python, set by python/python.mk). Real data
comes from $QV_DATA_DIR (default ../shared/data, as for the C suites); when a dataset is
missing the test is skipped, except under CI (CI=true), where that is a failure.
"""
import os
import pathlib

import pytest

import quiver
from helpers import REPO


def data_path(name, file):
    base = os.environ.get("QV_DATA_DIR") or str(REPO / ".." / "shared" / "data")
    path = pathlib.Path(base) / name / file
    if not path.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"dataset file {path} is missing (CI=true)")
        pytest.skip(f"SKIP: dataset file {path} not found")
    return path


@pytest.fixture(scope="session")
def siftsmall():
    """(base, queries, ground truth) of siftsmall: 10,000 x 128 SIFT vectors, L2."""
    base = quiver.read_vectors(str(data_path("siftsmall", "base.fvecs")))
    queries = quiver.read_vectors(str(data_path("siftsmall", "query.fvecs")))
    gt = quiver.read_ivecs(str(data_path("siftsmall", "groundtruth.ivecs")))
    return base, queries, gt


@pytest.fixture
def db(tmp_path):
    with quiver.open(str(tmp_path / "db"), nosync=True) as d:
        yield d

"""Helpers shared by the quiver tests: float64 references and recall."""
import os
import pathlib

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]


def sanitized():
    return os.environ.get("QV_SANITIZED") is not None


def brute_force(base, queries, k, metric, allowed=None):
    """Exact top-k in float64: (ids, scores), best first; ids index rows of base.
    l2 = squared distance (ascending), ip = dot product, cosine = cosine (descending).
    allowed: a bool mask over rows (only those may be returned)."""
    b = base.astype(np.float64)
    q = np.atleast_2d(queries).astype(np.float64)
    if metric == "cosine":
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    if metric == "l2":
        s = (q * q).sum(1)[:, None] - 2 * q @ b.T + (b * b).sum(1)[None, :]
        order = s
    else:
        s = q @ b.T
        order = -s
    if allowed is not None:
        order = np.where(allowed[None, :], order, np.inf)
    ids = np.argsort(order, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(s, ids, axis=1)


def recall(found, truth, k):
    """Mean fraction of the true top-k ids found in the returned top-k."""
    hits = sum(len(set(f[:k].tolist()) & set(t[:k].tolist())) for f, t in zip(found, truth))
    return hits / (len(truth) * k)

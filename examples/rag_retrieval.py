#!/usr/bin/env python3
"""The retrieval half of a RAG chatbot, with Quiver embedded in the process.

It chunks a real set of documents found offline (this project's README.md and the
licence texts Debian ships in /usr/share/common-licenses), embeds the chunks, stores them
in a Quiver collection with their text and origin as payload, then answers a question with
a filtered top-k and prints the retrieved context: what a chatbot would put in front of
its language model.

    make python
    PYTHONPATH=build/python /usr/bin/python3 examples/rag_retrieval.py "How do I run the tests?"
    PYTHONPATH=build/python /usr/bin/python3 examples/rag_retrieval.py --kind license \\
        "May I distribute modified copies of the program?"
    PYTHONPATH=build/python /usr/bin/python3 examples/rag_retrieval.py --source MPL-2.0 -k 3 \\
        "What happens to my license if I sue for patent infringement?"

Embeddings come from a pluggable function: texts in, one float32 row per text out. The
default, hashing_embedder, needs no model and no network: it hashes words and word pairs
into a fixed number of signed buckets (the "hashing trick"), so texts that share words get
close vectors. It is deterministic (blake2b, not Python's salted hash()), so every run
prints the same answer. A real embedding model plugs in at the same place; see
sentence_transformers_embedder (`--embedder sentence-transformers:all-MiniLM-L6-v2`, needs
the sentence-transformers package and the model files).
"""
import argparse
import hashlib
import math
import os
import pathlib
import re
import sys
import tempfile
import textwrap

import numpy as np

import quiver

REPO = pathlib.Path(__file__).resolve().parents[1]
LICENSES = pathlib.Path("/usr/share/common-licenses")


# ---- documents and chunks ---------------------------------------------------------------

def find_documents():
    """(source, kind, text) of every document: the README, then each licence text once
    (GPL is a link to GPL-3 and so on: links are skipped)."""
    docs = [("README.md", "readme", (REPO / "README.md").read_text(encoding="utf-8"))]
    if LICENSES.is_dir():
        for path in sorted(LICENSES.iterdir()):
            if path.is_file() and not path.is_symlink():
                docs.append((path.name, "license", path.read_text(encoding="utf-8", errors="replace")))
    return docs


def chunk(text, words=120, overlap=30):
    """Paragraphs packed into chunks of about `words` words; a longer paragraph is cut into
    windows that overlap by `overlap` words, so no sentence is lost at a cut."""
    chunks, current = [], []
    for para in re.split(r"\n\s*\n", text):
        w = para.split()
        if not w:
            continue
        if len(w) > words:
            if current:
                chunks.append(" ".join(current))
                current = []
            step = words - overlap
            for start in range(0, len(w) - overlap, step):
                chunks.append(" ".join(w[start:start + words]))
            continue
        if len(current) + len(w) > words and current:
            chunks.append(" ".join(current))
            current = []
        current.extend(w)
    if current:
        chunks.append(" ".join(current))
    return chunks


# ---- embedders: texts -> (n, dim) float32 ------------------------------------------------

STOP = set("a an and are as at be by for from has have i if in is it its of on or that the this "
           "to was were will with you your do does can may not no any all".split())


def hashing_embedder(dim=1024):
    """A deterministic bag-of-words embedder: each word (and each pair of neighbouring
    words) adds +-1 to one of dim buckets chosen by its hash, weighted 1 + log(count)."""

    def bucket(token):
        h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
        return h % dim, 1.0 if (h >> 63) else -1.0

    def embed(texts):
        out = np.zeros((len(texts), dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP]
            counts = {}
            for tok in words + [a + " " + b for a, b in zip(words, words[1:])]:
                counts[tok] = counts.get(tok, 0) + 1
            for tok, c in counts.items():
                i, sign = bucket(tok)
                out[row, i] += sign * (1.0 + math.log(c))
            if not counts:
                out[row, 0] = 1.0      # an empty text still gets a direction (cosine needs one)
        return out

    embed.dim = dim
    return embed


def sentence_transformers_embedder(model_name):
    """A real embedding model: `pip install sentence-transformers` and a model such as
    all-MiniLM-L6-v2 (384 dimensions). Same contract as hashing_embedder."""
    from sentence_transformers import SentenceTransformer    # imported only when asked for
    model = SentenceTransformer(model_name)

    def embed(texts):
        return model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)

    embed.dim = model.get_sentence_embedding_dimension()
    return embed


def make_embedder(spec):
    if spec == "hashing":
        return hashing_embedder()
    if spec.startswith("sentence-transformers:"):
        return sentence_transformers_embedder(spec.split(":", 1)[1])
    raise SystemExit(f"unknown embedder {spec!r} (hashing, sentence-transformers:MODEL)")


# ---- store and retrieve ------------------------------------------------------------------

def build_collection(db, embed, batch=256):
    """Chunk, embed and store every document. Payload: source, kind, chunk number, text.
    Returns the collection and the number of documents."""
    if "chunks" in db:
        db.drop("chunks")
    coll = db.create_collection("chunks", embed.dim, "cosine",
                                payload_index={"source": "keyword", "kind": "keyword"})
    docs = find_documents()
    points = [(source, kind, i, text) for source, kind, doc in docs for i, text in enumerate(chunk(doc))]
    for start in range(0, len(points), batch):
        part = points[start:start + batch]
        vectors = embed([p[3] for p in part])
        payloads = [{"source": s, "kind": k, "chunk": i, "text": t} for s, k, i, t in part]
        coll.upsert(np.arange(start, start + len(part)), vectors, payloads=payloads)
    return coll, len(docs)


def retrieve(coll, embed, question, k=4, kind=None, source=None):
    """The top-k chunks for a question, only of one kind or one source when asked."""
    must = []
    if kind:
        must.append({"key": "kind", "match": kind})
    if source:
        must.append({"key": "source", "match": source})
    return coll.search(embed([question])[0], k=k, filter={"must": must} if must else None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("question")
    ap.add_argument("-k", type=int, default=4, help="chunks to retrieve (default 4)")
    ap.add_argument("--kind", choices=["readme", "license"], help="only chunks of this kind")
    ap.add_argument("--source", help="only chunks of this document (README.md, GPL-3, MPL-2.0, ...)")
    ap.add_argument("--embedder", default="hashing", help="hashing (default) or sentence-transformers:MODEL")
    ap.add_argument("--db", help="database directory to keep (default: a temporary one)")
    args = ap.parse_args(argv)

    embed = make_embedder(args.embedder)
    with tempfile.TemporaryDirectory(prefix="quiver-rag-") as tmp:
        with quiver.open(args.db or os.path.join(tmp, "db"), nosync=True) as db:
            coll, ndocs = build_collection(db, embed)
            print(f"{len(coll)} chunks of {ndocs} documents, {embed.dim}-d {args.embedder} embeddings")
            hits = retrieve(coll, embed, args.question, k=args.k, kind=args.kind, source=args.source)
    print(f"\nQuestion: {args.question}\n")
    print("Context for the language model:")
    for rank, h in enumerate(hits, 1):
        p = h.payload
        print(f"\n[{rank}] {p['source']}, chunk {p['chunk']} (cosine {h.score:.3f})")
        print(textwrap.indent(textwrap.fill(p["text"], 88), "    "))
    return 0 if hits else 1


if __name__ == "__main__":
    sys.exit(main())

"""Debian package documents and the query / base split shared by the held-out sets built
from them (bench/make_debian_desc.py: TF-IDF + SVD, bench/make_debian_use.py: a neural
sentence encoder), so that both sets hold the same texts and the same 1,000 queries.

One document per package name: the short description, the section and the debtags (the
machine's `apt-cache dumpavail` carries no long descriptions). Packages whose document is
identical to an earlier one are dropped (lib*-dev / lib* pairs often share them). Queries:
the NQ documents whose SHA-1 of the package name is smallest; the rest is the base.
"""
import hashlib
import subprocess

NQ = 1000


def documents():
    """(names, texts), sorted by name, duplicates dropped."""
    out = subprocess.run(["apt-cache", "dumpavail"], check=True, capture_output=True, text=True).stdout
    docs = {}
    for stanza in out.split("\n\n"):
        fields, last = {}, None
        for line in stanza.split("\n"):
            if line.startswith((" ", "\t")) and last:
                fields[last] += " " + line.strip()
            elif ":" in line:
                last, _, val = line.partition(":")
                fields[last] = val.strip()
        name, desc = fields.get("Package"), fields.get("Description")
        if not name or not desc or name in docs:
            continue
        tags = fields.get("Tag", "").replace("::", " ").replace(",", " ")
        docs[name] = "%s %s %s" % (desc, fields.get("Section", "").replace("/", " "), tags)
    seen, names, texts = set(), [], []
    for name in sorted(docs):
        if docs[name] in seen:
            continue
        seen.add(docs[name])
        names.append(name)
        texts.append(docs[name])
    return names, texts


def split(names):
    """(query indices, base indices), each ascending."""
    order = sorted(range(len(names)), key=lambda i: hashlib.sha1(names[i].encode()).hexdigest())
    return sorted(order[:NQ]), sorted(order[NQ:])

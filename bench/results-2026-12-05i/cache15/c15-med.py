import sys, collections, statistics
d=collections.defaultdict(list); rc={}
for line in open(sys.argv[1]):
    f=line.split()
    if len(f)<10: continue
    name=f[0]; ef=int(f[5]); rec=float(f[8]); qps=float(f[9])
    d[(name,ef)].append(qps); rc.setdefault((name,ef),set()).add(rec)
names=[]; efs=sorted({k[1] for k in d})
for k in d:
    if k[0] not in names: names.append(k[0])
base=names[0]
print("ef  " + "  ".join(f"{n:>22}" for n in names))
for ef in efs:
    row=[]
    for n in names:
        if (n,ef) not in d: row.append(" "*22); continue
        m=statistics.median(d[(n,ef)]); b=statistics.median(d[(base,ef)])
        row.append(f"{m:8.0f} {m/b:5.3f} r{min(rc[(n,ef)]):.4f}")
    print(f"{ef:<4}"+"  ".join(row))

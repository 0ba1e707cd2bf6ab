import sys, collections, statistics
# lines: name rN quiver hnsw params ef k thr recall qps ...
d=collections.defaultdict(list)
for l in open(sys.argv[1]):
    f=l.split()
    if len(f)<10 or f[2]!='quiver': continue
    name=f[0]; ef=int(f[5]); rec=float(f[8]); qps=float(f[9])
    d[(name,ef)].append((rec,qps))
names=sorted(set(k[0] for k in d), key=lambda n: [k[0] for k in d].index(n))
efs=sorted(set(k[1] for k in d))
curves={}
for n in names:
    pts=[]
    for e in efs:
        v=d.get((n,e))
        if not v: continue
        rec=statistics.median([x[0] for x in v]); q=statistics.median([x[1] for x in v])
        pts.append((rec,q)); print(f"{n:10s} ef {e:4d} recall {rec:.4f} qps {q:9.1f}  ({' '.join('%.0f'%x[1] for x in v)})")
    curves[n]=pts
def at(pts,t):
    pts=sorted(pts)
    for (r0,q0),(r1,q1) in zip(pts,pts[1:]):
        if r0<=t<=r1: return q0+(q1-q0)*(t-r0)/(r1-r0) if r1>r0 else max(q0,q1)
    return float('nan')
for n in names:
    print(f"{n:10s} qps@0.95 {at(curves[n],0.95):9.1f}  qps@0.99 {at(curves[n],0.99):9.1f}")

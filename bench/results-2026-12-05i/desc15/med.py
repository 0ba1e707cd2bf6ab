import sys, statistics as st, collections
d=collections.OrderedDict()
for l in open(sys.argv[1]):
    f=l.split()
    if len(f)<10 or f[0].startswith('#'): continue
    d.setdefault((f[0],int(f[4])),[]).append((float(f[7]),float(f[8])))
tags=list(dict.fromkeys(k[0] for k in d))
efs=sorted(set(k[1] for k in d))
print('%-16s'%'setting'+''.join('  ef%-3d recall  qps(med) [n]  '%e for e in efs))
for t in tags:
    s='%-16s'%t
    for e in efs:
        v=d.get((t,e))
        if v: s+='  %.4f %6.1fk [%d]      '%(st.median(x[0] for x in v), st.median(x[1] for x in v)/1000, len(v))
    print(s)

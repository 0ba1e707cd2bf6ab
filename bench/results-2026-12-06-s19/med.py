import collections,statistics,sys
d=collections.defaultdict(list)
for l in open(sys.argv[1]):
    f=l.split()
    if len(f)<10: continue
    d[(f[0],f[5])].append(float(f[9]))
for k in sorted(d): print(k, round(statistics.median(d[k])/1000,1), [round(x/1000,1) for x in d[k]])

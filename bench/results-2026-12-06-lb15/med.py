import sys,collections,statistics
d=collections.defaultdict(list); v=None
for l in open(sys.argv[1]):
    if l.startswith('##'): v=l.split(' ',3)[3].strip()
    elif l.startswith('quiver'):
        f=l.split(); d[(v,int(f[3]))].append((float(f[6]),float(f[7])))
for k in sorted(d): print('%-16s ef %3d recall %.4f qps median %6.0f  runs %s'%(k[0],k[1],d[k][0][0],statistics.median(x[1] for x in d[k]),[int(x[1]) for x in d[k]]))

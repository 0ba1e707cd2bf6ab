import collections,statistics,sys
q=collections.defaultdict(list); s=collections.defaultdict(list); rec={}
for l in open(sys.argv[1]):
    f=l.split()
    if len(f)>=12 and f[2]=='quiver':
        q[(f[0],int(f[5]))].append(float(f[9])); rec[(f[0],int(f[5]))]=float(f[8])
    elif len(f)==5 and f[0].startswith('symqg') and f[2].isdigit():
        s[(f[0],int(f[2]))].append(float(f[4])); rec[(f[0],int(f[2]))]=float(f[3])
for d in (q,s):
    for k in sorted(d): print(k, rec[k], round(statistics.median(d[k])/1000,1), [round(x/1000,1) for x in d[k]])

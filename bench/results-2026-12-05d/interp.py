import sys,re
# parse quant_peers output; print QPS at 0.95 / 0.99 per engine
cur=None; data={}; order=[]
for line in open(sys.argv[1]):
    if line.startswith('## '):
        cur=line[3:].strip(); data[cur]=[]; order.append(cur); continue
    f=line.split()
    if not f or line.startswith('#'): continue
    if f[0]=='quiver' and len(f)>8 and f[1]=='hnsw':
        data[cur].append((int(f[3]),float(f[6]),float(f[7])))
    elif re.match(r'^\d+$',f[0]) and len(f)>=3:
        try: data[cur].append((int(f[0]),float(f[1]),float(f[2])))
        except: pass
def at(pts,t):
    for (e0,r0,q0),(e1,r1,q1) in zip(pts,pts[1:]):
        if r0<t<=r1 or (r0>=t and pts.index((e0,r0,q0))==0 and r0>=t):
            if r0>=t: return q0, '(first point %.3f)'%r0
            return q0+(q1-q0)*(t-r0)/(r1-r0),''
    return None,''
for k in order:
    p=data[k]
    a,n1=at(p,0.95); b,n2=at(p,0.99)
    s=' · '.join('%d: %.3f/%.1fk'%(e,r,q/1000) for e,r,q in p)
    print('%-40s 0.95: %s%s  0.99: %s%s | %s'%(k, '%.1fk'%(a/1000) if a else '-', n1, '%.1fk'%(b/1000) if b else '-', n2, s))

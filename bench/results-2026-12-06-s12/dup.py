import sys, numpy as np
sys.path.insert(0, '/work/integ/build/python')
import quiver
D='/root/.cache/quiver-data/debian-desc-384/'
def fvecs(p):
    a=np.fromfile(p,dtype=np.int32); d=a[0]; return a.reshape(-1,d+1)[:,1:].view(np.float32)
def ivecs(p):
    a=np.fromfile(p,dtype=np.int32); d=a[0]; return a.reshape(-1,d+1)[:,1:]
X=fvecs(D+'base.fvecs'); Q=fvecs(D+'query.fvecs'); G=ivecs(D+'groundtruth.ivecs')[:,:10]
# duplicate groups
_,inv,cnt=np.unique(X,axis=0,return_inverse=True,return_counts=True)
inv=inv.ravel()
dupsz=cnt[inv]
for m in sys.argv[1:]:
    ix=quiver.Index.load('/tmp/integ-idx/quiver-debian-desc-384-hnsw-n59765-m%s-efc400-nlist0-t2-bit1.idx'%m)
    for x,ef in ((0.5,12),(0.0,32),(0.0,96)):
        ids,sc=ix.search(Q,k=10,ef=ef,explore=x)
        rec=np.array([len(set(ids[i])&set(G[i]))/10 for i in range(len(Q))])
        hasdup=np.array([(dupsz[G[i]]>1).any() for i in range(len(Q))])
        # ties: gt contains member of dup group whose other members fill? count queries where missed ids are duplicates of found ids
        miss_dup=0; miss=0
        for i in range(len(Q)):
            f=set(ids[i]); 
            for g in G[i]:
                if g not in f:
                    miss+=1
                    if any(inv[g]==inv[j] for j in ids[i] if j>=0): miss_dup+=1
        print('M%s x%.1f ef%d recall %.4f | queries with dup in gt: %d, their recall %.4f, others %.4f | misses %d of which dup-of-found %d'%(m,x,ef,rec.mean(),hasdup.sum(),rec[hasdup].mean() if hasdup.any() else 0,rec[~hasdup].mean(),miss,miss_dup))

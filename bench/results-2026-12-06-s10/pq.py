import sys, numpy as np
sys.path.insert(0,'/work/integ/build/python'); sys.path.insert(0,'/work/shared/data/tools')
import quiver
from vecsio import read_vecs
D='/root/.cache/quiver-data/debian-desc-384/'
bb=read_vecs(D+'base.fvecs'); q=read_vecs(D+'query.fvecs'); gt=read_vecs(D+'groundtruth.ivecs')
u,inv,cnt=np.unique(bb,axis=0,return_inverse=True,return_counts=True); inv=inv.ravel()
dupq=np.array([ (cnt[inv[gt[i,:10]]]>1).any() for i in range(len(q))])
ix=quiver.Index.load('/tmp/integ-idx/quiver-debian-desc-384-hnsw-n59765-m16-efc400-nlist0-t2-bit1.idx')
for ef in [24,32,48,96]:
    ids,sc=ix.search(q,k=10,ef=ef)
    rec=np.array([len(set(ids[i])&set(gt[i,:10]))/10 for i in range(len(q))])
    # tie-aware: count returned whose true dist <= d10 + 1e-6
    bd=bb.astype(np.float64)
    ok=[]
    for i in range(len(q)):
        d10=((bd[gt[i,9]]-q[i])**2).sum()
        dr=((bd[ids[i]]-q[i])**2).sum(1)
        ok.append((dr<=d10+1e-6).sum()/10)
    ok=np.array(ok)
    print(ef,'recall',rec.mean(),'dupq',rec[dupq].mean(),'nondup',rec[~dupq].mean(),'tie-aware',ok.mean(), 'lost on dupq share', (1-rec[dupq]).sum()/(1-rec).sum())

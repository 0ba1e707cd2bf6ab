import numpy as np, sys
sys.path.insert(0,'/work/shared/data/tools')
from vecsio import read_vecs
D='/root/.cache/quiver-data/debian-desc-384/'
b=read_vecs(D+'base.fvecs'); q=read_vecs(D+'query.fvecs'); gt=read_vecs(D+'groundtruth.ivecs')
print(b.shape,q.shape,gt.shape)
b=b.astype(np.float64); q=q.astype(np.float64)
d=np.array([ ((b[gt[i,:20]]-q[i])**2).sum(1) for i in range(len(q))])
gap=d[:,10]-d[:,9]
for eps in [1e-9,1e-6,1e-4,1e-3,1e-2]:
    print(eps, (gap<eps).sum())
# near-duplicates in the base among gt
dd=np.array([ ((b[gt[i,:10]]-b[gt[i,0]])**2).sum(1).max() for i in range(len(q))])
print('max spread of top10', np.percentile(dd,[10,50,90]))
print('d10 pct', np.percentile(d[:,9],[10,50,90]), 'd1', np.percentile(d[:,0],[10,50,90]))
bb=read_vecs(D+'base.fvecs')
u,inv,cnt=np.unique(bb,axis=0,return_inverse=True,return_counts=True)
print('base rows',len(bb),'unique',len(u),'rows in dup groups',(cnt[cnt>1]).sum(),'groups',(cnt>1).sum(),'max group',cnt.max())
# per query: size of tie group at the 10th neighbour
inv=inv.ravel()
gs=cnt[inv[gt[:,9]]]
print('queries whose 10th gt has duplicates:', (gs>1).sum(), 'median size among them', np.median(gs[gs>1]) if (gs>1).any() else 0)
# queries with any top-10 gt in a dup group
anyd=np.array([ (cnt[inv[gt[i,:10]]]>1).any() for i in range(len(q))])
print('queries with a dup in top10', anyd.sum())

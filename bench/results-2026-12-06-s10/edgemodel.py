import sys, numpy as np
sys.path.insert(0,'/work/shared/data/tools')
from vecsio import read_vecs
from sklearn.cluster import KMeans
for name in ['debian-desc-384','debian-use-512','fashion-mnist-784']:
    D='/root/.cache/quiver-data/%s/'%name
    b=read_vecs(D+'base.fvecs').astype(np.float32); q=read_vecs(D+'query.fvecs')[:100].astype(np.float32); gt=read_vecs(D+'groundtruth.ivecs')[:100]
    km=KMeans(64, n_init=1, max_iter=10, random_state=0).fit(b[np.random.default_rng(0).choice(len(b), 32768, replace=False)])
    C=km.cluster_centers_.astype(np.float32)
    ratios=[]; rel_c=[]; rel_e=[]
    for i in range(len(q)):
        d10=np.sqrt(((b[gt[i,9]]-q[i])**2).sum())
        for u in gt[i,:30]:
            du=((b-b[u])**2).sum(1); nb=np.argpartition(du,33)[:33]; nb=nb[nb!=u][:32]
            o=b[nb]; co=C[np.argmin(((o[:,None,:]-C[None])**2).sum(-1),1)]
            ec=np.linalg.norm(o-co,axis=1)*np.linalg.norm(q[i]-co,axis=1)
            ee=np.linalg.norm(o-b[u],axis=1)*np.linalg.norm(q[i]-b[u])
            ratios.append(np.median(ee/ec)); rel_c.append(np.median(ec)/d10**2); rel_e.append(np.median(ee)/d10**2)
        if i>=39: break
    print(name, 'median edge/centroid error-scale ratio %.3f'%np.median(ratios), 'centroid scale / d10^2 %.2f'%np.median(rel_c), 'edge scale / d10^2 %.2f'%np.median(rel_e))

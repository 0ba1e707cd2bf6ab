import sys, numpy as np
D=sys.argv[1]; N=int(sys.argv[2]); cos=len(sys.argv)>3
def fvecs(p):
    a=np.fromfile(p,dtype=np.int32); d=a[0]; return a.reshape(-1,d+1)[:,1:].view(np.float32)
X=fvecs(D+'/base.fvecs')[:N].astype(np.float64); Q=fvecs(D+'/query.fvecs').astype(np.float64)
if cos:
    X/=np.linalg.norm(X,axis=1,keepdims=True)+1e-30; Q/=np.linalg.norm(Q,axis=1,keepdims=True)+1e-30
    d=-Q@X.T
else:
    d=(Q*Q).sum(1)[:,None]-2*Q@X.T+(X*X).sum(1)[None,:]
I=np.argsort(d,axis=1,kind='stable')[:,:100].astype(np.int32)
out=np.hstack([np.full((len(I),1),100,np.int32),I])
out.tofile(D+'/groundtruth-%dk.ivecs'%(N//1000))
print('ok',I.shape)

import numpy as np, sys
d=np.loadtxt(sys.argv[1])[-1000:]
t,e,r,x,f=d[:,1],d[:,2],d[:,3],d[:,4],d[:,5]
print("mean ns %.0f p50 %.0f p90 %.0f p99 %.0f"%(t.mean(),np.median(t),np.percentile(t,90),np.percentile(t,99)))
print("exp mean %.1f p50 %.0f p90 %.0f p99 %.0f max %.0f"%(e.mean(),np.median(e),np.percentile(e,90),np.percentile(e,99),e.max()))
print("rows mean %.1f ex %.1f fl %.1f"%(r.mean(),x.mean(),f.mean()))
print("corr t-e %.3f t-rows %.3f"%(np.corrcoef(t,e)[0,1],np.corrcoef(t,r)[0,1]))
A=np.c_[np.ones(len(t)),r,e,f]
co=np.linalg.lstsq(A,t,rcond=None)[0]; print("fit ns: const %.0f per row %.1f per exp %.1f per float %.1f"%tuple(co))
o=np.argsort(-t); print("top10%% queries share of time %.3f, of rows %.3f"%(t[o[:100]].sum()/t.sum(), r[o[:100]].sum()/r.sum()))

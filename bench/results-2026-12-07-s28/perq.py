import numpy as np, sys
gt = np.fromfile('/root/.cache/quiver-data/debian-use-512/groundtruth.ivecs', dtype=np.int32).reshape(-1, 101)[:, 1:]
lines = open(sys.argv[1]).read().split('\n')
ids = [l for l in lines if l.startswith('I ')][-1000:]
st = [l for l in lines if l and not l.startswith('I ')][-1000:]
rec = []
for i, l in enumerate(ids):
    got = set(int(x) for x in l[2:].split(','))
    rec.append(len(got & set(gt[i, :10])) / 10)
rec = np.array(rec)
d = np.array([[float(x) for x in s.split()] for s in st])
print("mean recall %.4f" % rec.mean())
for r in sorted(set(rec)): 
    m = rec == r
    print("recall %.1f: %4d queries, mean exp %.1f, mean ns %.0f" % (r, m.sum(), d[m, 2].mean(), d[m, 1].mean()))
print("misses from queries with recall<=0.5: %.3f of all misses" % ((1 - rec[rec <= 0.5]).sum() / (1 - rec).sum()))

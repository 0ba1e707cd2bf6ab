#!/bin/sh
# flush.sh OUT ROUNDS ENVSPEC... : per-phase rdtsc cycles (qb-cnt) for env variants, alternated
OUT=$1; R=$2; shift 2
A="--data /root/.cache/quiver-data/debian-use-512 --index hnsw --m 12 --ef-construction 400 --quant bit1 --vec-type f16 --index-cache /tmp/s10-use --explore 0.85 --threads 1 --runs 3 --ef 12"
for r in $(seq 1 $R); do for v in "$@"; do
  env $v QV_DUMP=/tmp/s28d.txt /work/helpers/cpu-bench /work/notes/s28/qb-cnt $A 2>/dev/null | grep ^quiver | awk '{print $10}' > /tmp/s28q.txt
  /usr/bin/python3 -c "
import numpy as np
d=np.loadtxt('/tmp/s28d.txt')[-1000:]
print('$v', $r, open('/tmp/s28q.txt').read().strip(), ' '.join('%.0f'%d[:,i].mean() for i in range(6,11)), '%.2f'%d[:,5].mean())" >> $OUT
done; done

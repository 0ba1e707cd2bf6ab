#!/bin/sh
Q=$HOME/.cache/quiver-data
S=/work/notes/s16
/work/helpers/cpu-bench $S/qb-new3 --data $Q/fashion-mnist-784 --index hnsw --m 16 --ef-construction 200 --quant sq8 --ef 16 --index-cache /tmp/s16-fm > /dev/null 2>&1
/work/helpers/cpu-bench /work/notes/s9/ab3.sh $S/cl-fm.txt $Q/fashion-mnist-784 16,24,32,64 3 "--m 16 --ef-construction 200 --quant sq8" "before|QV_KERNELS=avx512bw|$S/qb-new3|/tmp/s16-fm" "after|QV_KERNELS=avx512vnni|$S/qb-new3|/tmp/s16-fm"
echo ALLDONE >> $S/cl-fm.txt

#!/bin/sh
Q=$HOME/.cache/quiver-data
S=/work/notes/s16
/work/helpers/cpu-bench /work/notes/s9/ab3.sh $S/bw-use.txt $Q/debian-use-512 10,13,16,24,48 3 "--m 12 --ef-construction 400 --quant bit1 --explore 0.75" "old|QV_KERNELS=avx512bw|$S/qb-old|/tmp/s10-use" "new|QV_KERNELS=avx512bw|$S/qb-new|/tmp/s10-use"
/work/helpers/cpu-bench /work/notes/s9/ab3.sh $S/bw-fm.txt $Q/fashion-mnist-784 12,16,24,48 3 "--m 12 --ef-construction 400 --quant bit1 --vec-type u8 --explore 0.5" "old|QV_KERNELS=avx512bw|$S/qb-old|/tmp/s10-idx" "new|QV_KERNELS=avx512bw|$S/qb-new|/tmp/s10-idx"
echo ALLDONE >> $S/bw-fm.txt

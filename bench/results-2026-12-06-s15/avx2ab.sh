#!/bin/sh
while ! grep -q ALLDONE bench/results-2026-12-06-s15/sbs-glove.txt 2>/dev/null; do sleep 20; done
Q=$HOME/.cache/quiver-data
/work/helpers/cpu-bench bench/results-2026-12-06-s15/ab3.sh bench/results-2026-12-06-s15/avx2-use.txt $Q/debian-use-512 10,13,16,24,48 3 "--m 12 --ef-construction 400 --quant bit1 --explore 0.75" "old|QV_KERNELS=avx2|/work/wt-s14/build/quiver-bench|/tmp/s10-use" "new|QV_KERNELS=avx2|/work/wt-s15/build/quiver-bench|/tmp/s10-use"
/work/helpers/cpu-bench bench/results-2026-12-06-s15/ab3.sh bench/results-2026-12-06-s15/avx2-fm.txt $Q/fashion-mnist-784 12,16,24,48 3 "--m 12 --ef-construction 400 --quant bit1 --vec-type u8 --explore 0.5" "old|QV_KERNELS=avx2|/work/wt-s14/build/quiver-bench|/tmp/s10-idx" "new|QV_KERNELS=avx2|/work/wt-s15/build/quiver-bench|/tmp/s10-idx"
echo ALLDONE >> bench/results-2026-12-06-s15/avx2-fm.txt

#!/bin/sh
while ! grep -q ALLDONE /work/notes/s16/bw-fm.txt 2>/dev/null; do sleep 10; done
Q=$HOME/.cache/quiver-data
S=/work/notes/s16
/work/helpers/cpu-bench /work/notes/s9/ab3.sh $S/vb-use.txt $Q/debian-use-512 10,13,16,24,48 3 "--m 12 --ef-construction 400 --quant bit1 --explore 0.75" "vnni||$S/qb-new|/tmp/s10-use" "bw|QV_KERNELS=avx512bw|$S/qb-new|/tmp/s10-use"
echo ALLDONE >> $S/vb-use.txt

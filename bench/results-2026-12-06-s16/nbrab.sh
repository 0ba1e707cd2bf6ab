#!/bin/sh
Q=$HOME/.cache/quiver-data
S=/work/notes/s16
B=$S/qb-nbr
/work/helpers/cpu-bench /work/notes/s9/ab3.sh $S/nbr-use.txt $Q/debian-use-512 24,32,40,48,64 3 "--m 16 --ef-construction 400 --quant bit1" "rows|QV_NBR=0|$B|/tmp/s10-use" "blk-all|QV_NBR=1|$B|/tmp/s10-use" "blk-l2-10|QV_NBR=1 QV_NBR_PF=10|$B|/tmp/s10-use" "blk-l2-4|QV_NBR=1 QV_NBR_PF=4|$B|/tmp/s10-use"
echo ALLDONE >> $S/nbr-use.txt

#!/bin/sh
EFS=10,11,12,13,14,16,18,20,24,32,48,96,128,192
Q=$HOME/.cache/quiver-data
S=/work/notes/s16
$S/sbs.sh $S/sbs-use.txt $Q/debian-use-512 $EFS 3 0 "--m 12 --ef-construction 400 --quant bit1 --index-cache /tmp/s10-use --explore 0.75" "--m 12 --ef-construction 400 --quant bit1 --index-cache /tmp/s10-use --explore 1" "--m 16 --ef-construction 400 --quant bit1 --index-cache /tmp/s10-use --explore 1.5"
$S/sbs.sh $S/sbs-fm-glass.txt $Q/fashion-mnist-784 $EFS 3 1 "--m 12 --ef-construction 400 --quant bit1 --vec-type u8 --index-cache /tmp/s10-idx --explore 0.5" "--m 12 --ef-construction 400 --quant bit1 --vec-type u8 --index-cache /tmp/s10-idx --explore 0.75"
echo ALLDONE >> $S/sbs-fm-glass.txt

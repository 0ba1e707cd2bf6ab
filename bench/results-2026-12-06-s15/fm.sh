#!/bin/sh
EFS=10,11,12,13,14,16,18,20,24,32,48,96,128,192
Q=$HOME/.cache/quiver-data
bench/results-2026-12-06-s10/sbs.sh bench/results-2026-12-06-s15/sbs-fm-glass.txt $Q/fashion-mnist-784 $EFS 3 1 "--m 12 --ef-construction 400 --quant bit1 --vec-type u8 --index-cache /tmp/s10-idx --explore 0.5" "--m 12 --ef-construction 400 --quant bit1 --vec-type u8 --index-cache /tmp/s10-idx --explore 0.75" "--m 12 --ef-construction 400 --quant bit1 --vec-type u8 --index-cache /tmp/s10-idx --explore 1"
echo ALLDONE >> bench/results-2026-12-06-s15/sbs-fm-glass.txt

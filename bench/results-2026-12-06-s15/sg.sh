#!/bin/sh
Q=/work/shared/data
EFS=10,12,14,16,20,24,28,32,40,48,64,80,96,128
bench/results-2026-12-06-s10/sbs.sh bench/results-2026-12-06-s15/sbs-sift.txt $Q/sift-debian-100k $EFS 3 1 "--m 16 --ef-construction 200 --quant sq4 --oversampling 2 --index-cache /tmp/s15-sift" "--m 16 --ef-construction 200 --quant sq4 --oversampling 3 --index-cache /tmp/s15-sift" "--m 16 --ef-construction 200 --index-cache /tmp/s14-sift"
EFS=10,16,24,32,40,48,64,80,96,128,160,192,256
bench/results-2026-12-06-s10/sbs.sh bench/results-2026-12-06-s15/sbs-glove.txt $Q/glove6b-100k $EFS 2 1 "--m 32 --ef-construction 200 --quant sq8 --oversampling 3 --index-cache /tmp/s12-glove"
echo ALLDONE >> bench/results-2026-12-06-s15/sbs-glove.txt

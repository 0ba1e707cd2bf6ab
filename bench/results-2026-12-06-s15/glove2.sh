#!/bin/sh
Q=/work/shared/data
EFS=10,16,24,32,40,48,56,64,80,96,128,160,192,256
bench/results-2026-12-06-s10/sbs.sh bench/results-2026-12-06-s15/sbs-glove2.txt $Q/glove6b-100k $EFS 3 1 "--m 32 --ef-construction 200 --quant sq8 --oversampling 3 --index-cache /tmp/s12-glove" "--m 32 --ef-construction 200 --quant sq8 --oversampling 2 --index-cache /tmp/s12-glove"
echo ALLDONE >> bench/results-2026-12-06-s15/sbs-glove2.txt

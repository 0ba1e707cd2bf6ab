#!/bin/sh
U=$HOME/.cache/quiver-data/debian-use-512
E="10,11,12,13,14,16,18,20,22,24,26,28,29,30,31,32,33,34,36,40,48,64,96"
for i in 1 2; do
/work/helpers/cpu-bench env REPEATS=5 ROUNDS=1 GLASS=0 B=/work/notes/s21/qb-main /work/main/bench/quant_peers.sh $U $E \
 "--m 12 --ef-construction 400 --quant bit1 --index-cache /tmp/s10-use --explore 1" \
 "--m 12 --ef-construction 400 --quant bit1 --vec-type f16 --index-cache /tmp/s10-use --explore 1" \
 "--m 24 --ef-construction 400 --quant sq4 --vec-type f16 --index-cache /tmp/s10-use --oversampling 2" \
 "--m 24 --ef-construction 400 --quant sq4 --vec-type f16 --index-cache /tmp/s10-use --oversampling 3" \
 "--m 16 --ef-construction 400 --quant bit1 --vec-type f16 --index-cache /tmp/s10-use --explore 1.5" >> /work/notes/s21/sbs-use3.txt 2>&1
done
echo DONE >> /work/notes/s21/sbs-use3.txt

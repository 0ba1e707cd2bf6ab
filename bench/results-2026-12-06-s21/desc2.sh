#!/bin/sh
D=$HOME/.cache/quiver-data/debian-desc-384
E="10,11,12,13,14,15,16,18,20,24,28,32,34,36,38,40,42,44,46,48,52,56,64,96,128,192"
for i in 1 2 3; do
/work/helpers/cpu-bench env REPEATS=5 ROUNDS=1 GLASS=0 DEG64=1 B=/work/notes/s21/qb-main /work/main/bench/quant_peers.sh $D $E \
 "--m 16 --ef-construction 400 --quant bit1 --index-cache /tmp/integ-idx --explore 0.4" \
 "--m 16 --ef-construction 400 --quant bit1 --index-cache /tmp/integ-idx --explore 0.6" \
 "--m 20 --ef-construction 400 --quant bit1 --index-cache /tmp/integ-idx --explore 0.6" >> /work/notes/s21/sbs-desc2.txt 2>&1
done
echo DONE >> /work/notes/s21/sbs-desc2.txt

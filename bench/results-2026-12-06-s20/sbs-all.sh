#!/bin/sh
cd /work/main
U="10,11,12,13,14,16,18,20,24,28,30,32,34,36,40,48,96,128,192"
/work/notes/s18/sbs.sh /work/notes/s20/sbs-use.txt $HOME/.cache/quiver-data/debian-use-512 $U 1 0 /work/notes/s20/qb-main \
 "--m 12 --ef-construction 400 --quant bit1 --index-cache /tmp/s10-use --explore 0.75" \
 "--m 12 --ef-construction 400 --quant bit1 --index-cache /tmp/s10-use --explore 1" \
 "--m 12 --ef-construction 400 --quant bit1 --vec-type f16 --index-cache /tmp/s10-use --explore 1" \
 "--m 16 --ef-construction 400 --quant bit1 --index-cache /tmp/s10-use --explore 1.5"
/work/notes/s18/sbs.sh /work/notes/s20/sbs-sift.txt /work/shared/data/sift-debian-100k 10,12,14,16,20,24,28,32,40,48,64,80,96,128 1 1 /work/notes/s20/qb-main \
 "--m 16 --ef-construction 200 --quant sq4 --oversampling 2 --index-cache /tmp/s15-sift" \
 "--m 16 --ef-construction 200 --quant sq4 --oversampling 3 --index-cache /tmp/s15-sift"
/work/notes/s18/sbs.sh /work/notes/s20/sbs-glove.txt /work/shared/data/glove6b-100k 10,16,24,32,40,48,56,64,80,96,128,160,192,256 1 1 /work/notes/s20/qb-main \
 "--m 32 --ef-construction 200 --quant sq8 --oversampling 3 --index-cache /tmp/s12-glove"
echo ALL >> /work/notes/s20/sbs-use.txt

#!/bin/sh
S=/work/notes/s18/sbs.sh; B=/work/notes/s28/qb-s28b
$S /work/notes/s28/sbs-sift.txt /work/shared/data/sift-debian-100k 10,12,14,16,20,24,28,32,40,48,64,80,96,128 2 1 $B "--m 24 --ef-construction 400 --quant sq4 --vec-type u8 --oversampling 2 --index-cache /tmp/s15-sift" "--m 24 --ef-construction 400 --quant sq4 --vec-type u8 --oversampling 3 --index-cache /tmp/s15-sift"
$S /work/notes/s28/sbs-glove.txt /work/shared/data/glove6b-100k 10,16,24,32,40,48,56,64,80,96,128,160,192,256 2 1 $B "--m 32 --ef-construction 200 --quant sq8 --oversampling 3 --index-cache /tmp/s12-glove"
echo ALLDONE > /work/notes/s28/sbs4.done

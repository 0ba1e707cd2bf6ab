#!/bin/sh
B=/work/notes/s22/bin; S=/work/shared/data; Q=$HOME/.cache/quiver-data; O=/work/notes/s22/ab3
A=/work/notes/s20/abb.sh
$A $O-siftf.txt 3 "--data $S/sift-debian-100k --index hnsw --m 16 --ef-construction 200 --index-cache /tmp/s15-sift --ef 32,64" $B/qb-x1 $B/qb-cl
$A $O-glovef.txt 3 "--data $S/glove6b-100k --index hnsw --m 16 --ef-construction 200 --index-cache /tmp/s12-glove --ef 64,128" $B/qb-x1 $B/qb-cl
$A $O-fm.txt 3 "--data $Q/fashion-mnist-784 --index hnsw --m 12 --ef-construction 400 --quant bit1 --vec-type u8 --index-cache /tmp/s10-idx --explore 0.5 --ef 16,24" $B/qb-x1 $B/qb-cl
$A $O-desc.txt 3 "--data $Q/debian-desc-384 --index hnsw --m 16 --ef-construction 400 --quant bit1 --index-cache /tmp/integ-idx --explore 0.6 --ef 24,32" $B/qb-x1 $B/qb-cl
$A $O-siftq.txt 3 "--data $S/sift-debian-100k --index hnsw --m 24 --ef-construction 400 --quant sq4 --vec-type u8 --index-cache /tmp/s15-sift --oversampling 2 --ef 20,32" $B/qb-x1 $B/qb-cl
echo ALLDONE >> $O-siftq.txt

#!/bin/sh
B=/work/notes/s24
/work/notes/s20/abb.sh $B/ab3-use.txt 5 "--data /root/.cache/quiver-data/debian-use-512 --index hnsw --m 12 --ef-construction 400 --quant bit1 --vec-type f16 --index-cache /tmp/s10-use --explore 0.85 --ef 12,14,40" $B/dlag4 $B/dlag16 $B/dlag1000
/work/notes/s20/abb.sh $B/ab3-fm.txt 3 "--data /root/.cache/quiver-data/fashion-mnist-784 --index hnsw --m 12 --ef-construction 400 --quant bit1 --vec-type u8 --index-cache /tmp/s10-idx --explore 0.5 --ef 12,16,24" $B/dlag4 $B/dlag16 $B/dlag1000
/work/notes/s20/abb.sh $B/ab3-desc.txt 3 "--data /root/.cache/quiver-data/debian-desc-384 --index hnsw --m 16 --ef-construction 400 --quant bit1 --index-cache /tmp/integ-idx --explore 0.3 --ef 14,16,64" $B/dlag4 $B/dlag16 $B/dlag1000

#!/bin/sh
EFS=10,11,12,13,14,16,18,20,24,32,48,96,128,192
Q=$HOME/.cache/quiver-data
/work/notes/s10/sbs.sh /work/notes/s14/sbs-use.txt $Q/debian-use-512 $EFS 3 0 "--m 12 --ef-construction 400 --quant bit1 --index-cache /tmp/s10-use --explore 0.75" "--m 12 --ef-construction 400 --quant bit1 --index-cache /tmp/s10-use --explore 1" "--m 16 --ef-construction 400 --quant bit1 --index-cache /tmp/s10-use --explore 1.5"
/work/notes/s10/sbs.sh /work/notes/s14/sbs-desc.txt $Q/debian-desc-384 $EFS 3 0 "--m 16 --ef-construction 400 --quant bit1 --index-cache /tmp/integ-idx --explore 0.6" "--m 16 --ef-construction 400 --quant bit1 --index-cache /tmp/integ-idx --explore 1.5"
/work/notes/s10/sbs.sh /work/notes/s14/sbs-fm-glass.txt $Q/fashion-mnist-784 $EFS 1 1 "--m 12 --ef-construction 400 --quant bit1 --vec-type u8 --index-cache /tmp/s10-idx --explore 0.5" "--m 12 --ef-construction 400 --quant bit1 --vec-type u8 --index-cache /tmp/s10-idx --explore 1"
echo ALLDONE >> /work/notes/s14/sbs-fm-glass.txt

#!/bin/sh
/work/notes/s20/abb.sh /work/notes/s22/ab4-use.txt 4 "--data /root/.cache/quiver-data/debian-use-512 --index hnsw --m 12 --ef-construction 400 --quant bit1 --vec-type f16 --index-cache /tmp/s10-use --explore 1 --ef 10,12" /work/notes/s22/bin/qb-x22 /work/notes/s22/bin/late
/work/notes/s20/abb.sh /work/notes/s22/ab4-desc.txt 3 "--data /root/.cache/quiver-data/debian-desc-384 --index hnsw --m 16 --ef-construction 400 --quant bit1 --index-cache /tmp/integ-idx --explore 0.6 --ef 24,32" /work/notes/s22/bin/qb-x22 /work/notes/s22/bin/late

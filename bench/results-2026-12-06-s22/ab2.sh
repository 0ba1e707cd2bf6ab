#!/bin/sh
/work/notes/s20/abb.sh /work/notes/s22/ab2-use.txt 4 "--data /root/.cache/quiver-data/debian-use-512 --index hnsw --m 12 --ef-construction 400 --quant bit1 --vec-type f16 --index-cache /tmp/s10-use --explore 1 --ef 10,12" /work/notes/s22/bin/qb-x1 /work/notes/s22/bin/tail /work/notes/s22/bin/qb-cl /work/notes/s22/bin/qb-lto

Q=$HOME/.cache/quiver-data
OUT=/work/notes/s17-dense-ab2.txt
for r in 1 2 3 4; do
for v in "base|X=1" "dense|QV_DENSE=1"; do
 n=$(echo "$v" | cut -d'|' -f1); e=$(echo "$v" | cut -d'|' -f2)
 env $e /work/notes/s16/qb-dense --data $Q/debian-desc-384 --index hnsw --m 16 --ef-construction 400 --quant bit1 --index-cache /tmp/integ-idx --explore 0.6 --ef 10,13,32 --threads 1 --runs 5 2>/dev/null | grep ^quiver | awk -v n=$n -v r=$r '{print "desc-"n, r, $3, $4, $7, $8}' >> $OUT
 env $e /work/notes/s16/qb-dense --data $Q/fashion-mnist-784 --index hnsw --m 12 --ef-construction 400 --quant bit1 --vec-type u8 --index-cache /tmp/s10-idx --explore 0.5 --ef 10,12,24 --threads 1 --runs 5 2>/dev/null | grep ^quiver | awk -v n=$n -v r=$r '{print "fm-"n, r, $3, $4, $7, $8}' >> $OUT
 env $e /work/notes/s16/qb-dense --data $Q/debian-use-512 --index hnsw --m 16 --ef-construction 400 --quant bit1 --index-cache /tmp/s10-use --explore 1.5 --ef 10,12 --threads 1 --runs 5 2>/dev/null | grep ^quiver | awk -v n=$n -v r=$r '{print "use16-"n, r, $3, $4, $7, $8}' >> $OUT
done; done

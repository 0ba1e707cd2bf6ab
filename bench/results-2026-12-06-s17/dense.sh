Q=$HOME/.cache/quiver-data
OUT=/work/notes/s17-dense-ab.txt
for r in 1 2 3 4 5 6; do
for v in "base|X=1" "dense|QV_DENSE=1"; do
 n=$(echo "$v" | cut -d'|' -f1); e=$(echo "$v" | cut -d'|' -f2)
 env $e /work/notes/s16/qb-dense --data $Q/debian-use-512 --index hnsw --m 12 --ef-construction 400 --quant bit1 --index-cache /tmp/s10-use --explore 1 --ef 10,12 --threads 1 --runs 5 2>/dev/null | grep ^quiver | awk -v n=$n -v r=$r '{print n, r, $3, $4, $7, $8}' >> $OUT
done; done

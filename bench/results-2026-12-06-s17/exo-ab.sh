Q=$HOME/.cache/quiver-data
OUT=/work/notes/s17-exo-ab.txt
for r in 1 2 3 4; do
for v in "base|X=1|1" "exo8|QV_EXONLY=1 QV_EX8=1|1" "exo8x|QV_EXONLY=1 QV_EX8=1|1.1"; do
 n=$(echo "$v" | cut -d'|' -f1); e=$(echo "$v" | cut -d'|' -f2); x=$(echo "$v" | cut -d'|' -f3)
 env $e /work/notes/s16/qb-exo --data $Q/debian-use-512 --index hnsw --m 12 --ef-construction 400 --quant bit1 --index-cache /tmp/s10-use --explore $x --ef 10,11,12,14 --threads 1 --runs 5 2>/dev/null | grep ^quiver | awk -v n=$n -v r=$r '{print n, r, $3, $4, $7, $8}' >> $OUT
done; done

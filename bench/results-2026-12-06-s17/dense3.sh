Q=$HOME/.cache/quiver-data
OUT=/work/notes/s17-dense-ab3.txt
for r in 1 2 3 4; do
for v in "base|X=1" "split|QV_DENSE=1" "packed|QV_DENSE=4"; do
 n=$(echo "$v" | cut -d'|' -f1); e=$(echo "$v" | cut -d'|' -f2)
 for x in "1 10,11,12" "0.75 12,14"; do set -- $x
 env $e /work/notes/s16/qb-dense --data $Q/debian-use-512 --index hnsw --m 12 --ef-construction 400 --quant bit1 --index-cache /tmp/s10-use --explore $1 --ef $2 --threads 1 --runs 5 2>/dev/null | grep ^quiver | awk -v n=$n -v r=$r '{print n, r, $3, $4, $7, $8}' >> $OUT
 done
done
$HOME/.cache/quiver-peers/build/symqg_bench --data $Q/debian-use-512 --metric l2 --repeats 5 --ef 24,32,40,48 2>/dev/null | grep -v "^#" | grep -v "^ef" | awk -v r=$r '{print "symqg", r, "deg32", $1, $2, $3}' >> $OUT
done

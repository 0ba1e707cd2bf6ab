export QV_HUGEVEC=1
for r in 1 2; do for m in 0 1 2; do echo "## round $r QV_PFV=$m"; QV_PFV=$m build/quiver-bench --data $1 --index hnsw --m 16 $3 --quant bit1 --ef $2 --threads 1 --runs 3 --index-cache /tmp/walk15-cache 2>/dev/null | grep -E '^quiver'; done; done

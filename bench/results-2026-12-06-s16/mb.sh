#!/bin/sh
# two passes, old (3e8b866) and new build alternated
for pass in 1 2; do
for D in 128 384 512 784 1536; do
  for tb in avx2 avx512; do
    for m in x4 one; do
      printf "old "; ./mb-old $D $tb $m
      printf "new "; ./mb-new $D $tb $m
    done
  done
  printf "new "; ./mb-new $D avx512vnni x4
done
done

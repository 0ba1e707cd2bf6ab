#!/bin/sh
# mix.sh NAME file.c... : the gcc build with these files compiled by clang-19 (-ffp-contract=off)
set -e
N=$1; shift
rm -rf build-$N; cp -a build-v0 build-$N
for f in "$@"; do
  clang-19 -std=c11 -D_GNU_SOURCE -O3 -g -ffp-contract=off -fPIC -pthread -Iinclude -I. -I/usr/include/x86_64-linux-gnu/openblas-pthread/ -fvisibility=hidden -c $f -o build-$N/obj/$f.o
done
rm -f build-$N/libquiver.a; ar rcs build-$N/libquiver.a $(ls build-$N/obj/core/*.o build-$N/obj/index/*.o build-$N/obj/storage/*.o build-$N/obj/gpu/*.o)
L=$(grep -E '^g\+\+.*-o build-v0/quiver-bench' /tmp/v0.log | head -1 | sed "s#build-v0#build-$N#g")
eval "$L"
cp build-$N/quiver-bench /work/notes/s21/qb-$N

#!/bin/sh
# tests/install_test.sh BUILD -- the library as a package (issue 17): `make install` into a
# temporary prefix, then the README example built against it with pkg-config and run,
# linked against the shared library and against the static one; and libquiver.so exports
# exactly the QV_API functions of quiver.h, with the soname. Exit status 0 = pass.
set -eu
build=${1:-build}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qv-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "install-test: FAIL: $*" >&2; exit 1; }

make -s --no-print-directory install PREFIX="$tmp/prefix" BUILD="$build" >/dev/null
lib="$tmp/prefix/lib"
for f in include/quiver.h lib/libquiver.a lib/libquiver.so lib/libquiver.so.0 lib/pkgconfig/quiver.pc; do
  [ -e "$tmp/prefix/$f" ] || fail "make install did not install $f"
done
soname=$(objdump -p "$lib/libquiver.so" | awk '$1 == "SONAME" {print $2}')
[ "$soname" = libquiver.so.0 ] || fail "soname is '$soname', not libquiver.so.0"

# exported symbols = the QV_API functions of the installed header, no more and no fewer
sed -n 's/^QV_API .*[ *]\(qv_[a-z0-9_]*\)(.*/\1/p' "$tmp/prefix/include/quiver.h" | sort -u > "$tmp/api"
nm -D --defined-only "$lib/libquiver.so" | awk '{print $NF}' | sort -u > "$tmp/exported"
if ! cmp -s "$tmp/api" "$tmp/exported"; then
  diff "$tmp/api" "$tmp/exported" | sed 's/^/install-test:   /' >&2
  fail "libquiver.so exports differ from quiver.h (< only in the header, > only exported)"
fi

# CUDA is never linked into the library: the GPU part is a plugin it loads on first use
# (gpu/gpu_plugin.h), installed beside it when built, exporting its table only.
if objdump -p "$lib/libquiver.so" | awk '$1 == "NEEDED" {print $2}' | grep -q -e cublas -e cudart; then
  fail "libquiver.so links CUDA (it must load the GPU plugin instead)"
fi
grep -q -e cublas -e cudart "$lib/pkgconfig/quiver.pc" && fail "quiver.pc names CUDA libraries"
if [ -e "$build/libquiver-gpu.so" ]; then
  [ -e "$lib/libquiver-gpu.so" ] || fail "make install did not install libquiver-gpu.so"
  syms=$(nm -D --defined-only "$lib/libquiver-gpu.so" | awk '{print $NF}' | tr '\n' ' ')
  [ "$syms" = "qv_gpu_plugin_v1 " ] || fail "libquiver-gpu.so exports '$syms', not qv_gpu_plugin_v1 alone"
  gpu="GPU plugin"
else
  [ -e "$lib/libquiver-gpu.so" ] && fail "a build without CUDA installed a GPU plugin"
  gpu="no GPU plugin"
fi

export PKG_CONFIG_PATH="$lib/pkgconfig"
want='id 1 score 0.999
id 3 score 0.998'
# shared
cc -std=c11 -Wall -Wextra -Werror -o "$tmp/example" tests/readme/example.c $(pkg-config --cflags --libs quiver)
got=$(LD_LIBRARY_PATH="$lib" "$tmp/example" "$tmp/db1")
[ "$got" = "$want" ] || fail "shared example printed '$got'"
# static: the archive plus Libs.private; it must not need libquiver.so at run time
cc -std=c11 -Wall -Wextra -Werror -o "$tmp/example-static" tests/readme/example.c \
   $(pkg-config --cflags quiver) "$lib/libquiver.a" $(pkg-config --static --libs quiver | sed 's/ -lquiver / /')
got=$(env -u LD_LIBRARY_PATH "$tmp/example-static" "$tmp/db2")
[ "$got" = "$want" ] || fail "static example printed '$got'"
echo "install-test: ok ($(wc -l < "$tmp/api") exported functions, soname $soname, shared and static examples, $gpu)"

#!/bin/sh
# Pack what libmuon links (OpenBLAS, LAPACKE, oneDNN and their libraries,
# with the headers a rebuild needs) into BUILD_DIR/devdeps/devdeps.tar.gz, for a GPU
# machine whose image lacks them (tests/gpu/run_device.sh unpacks it).
# Run on the build machine, from the repository root, after `make`.
# It lands under the build folder (ignored by git), which the device run carries.
# Usage: tests/gpu/pack_deps.sh [BUILD_DIR]  (writes BUILD_DIR/devdeps/devdeps.tar.gz)
set -eu
build=${1:-build}
out=$build/devdeps
rm -rf "$out/stage" && mkdir -p "$out/stage/lib" "$out/stage/include"
for so in "$build"/libmuon_cuda.so "$build"/test_cuda "$build"/libmuon.so; do ldd "$so"; done |
    awk '/=>/ {print $3}' | sort -u |
    grep -v -E '/(libc|libm|libstdc\+\+|libgcc_s|libcuda|libcublas|libcublasLt|libcudart|ld-linux|libmuon|librt|libpthread|libdl)[.-]' |
    while read -r f; do cp -L "$f" "$out/stage/lib/"; done
# the unversioned names the linker asks for when rebuilding
(cd "$out/stage/lib" && for f in *.so.*; do ln -sf "$f" "${f%%.so.*}.so"; done)
cp -r /usr/include/x86_64-linux-gnu/openblas-pthread/. "$out/stage/include/"
cp /usr/include/x86_64-linux-gnu/openblas_config.h /usr/include/lapacke*.h /usr/include/zlib.h \
    /usr/include/zconf.h "$out/stage/include/"
cp -r /usr/include/oneapi "$out/stage/include/"
cp /usr/include/dnnl*.h "$out/stage/include/" 2>/dev/null || true
tar -C "$out/stage" -czf "$out/devdeps.tar.gz" lib include
rm -rf "$out/stage"
ls -la "$out/devdeps.tar.gz"

#!/bin/sh
# Pack what a GPU machine needs to run this machine's build: build/'s
# libraries and test programs and the Debian shared libraries they link that
# a CUDA image lacks (OpenBLAS, LAPACK(E), oneDNN, gfortran, cJSON), into
# one compressed file, .devrt/devrt.tar.xz, to carry to the device machine
# (docs/cuda.md). tests/gpu/run_device.sh unpacks it and points
# LD_LIBRARY_PATH there. The CUDA libraries are not packed: the GPU machine
# has its own, matching its driver.
# Usage: tests/gpu/pack_runtime.sh [BUILD_DIR]
set -eu
build=${1:-build}
cd "$(dirname "$0")/../.."
out=.devrt
grep -qs '^/.devrt/$' .git/info/exclude 2>/dev/null || echo /.devrt/ >> .git/info/exclude
rm -rf "$out" && mkdir -p "$out/stage/lib" "$out/stage/build"
for f in "$build"/libmuon.so* "$build"/libmuon_cuda.so "$build"/test_cuda; do
    [ -e "$f" ] && cp -P "$f" "$out/stage/build/"
done
# every non-CUDA, non-libc dependency of what was copied
deps=$(for f in "$out"/stage/build/*; do [ -L "$f" ] || ldd "$f" 2>/dev/null; done |
       awk '$3 ~ /^\// {print $3}' | sort -u |
       grep -v -E '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*|libstdc\+\+|libgcc_s)\.so|libcuda|libcublas|libcudart|libnvidia' || true)
for d in $deps; do cp -L "$d" "$out/stage/lib/"; done
tar -C "$out/stage" -cJf "$out/devrt.tar.xz" build lib
rm -rf "$out/stage"
ls -la "$out/devrt.tar.xz"

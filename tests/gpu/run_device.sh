#!/bin/sh
# The CUDA backend's checks on a GPU machine, in one go (docs/cuda.md):
# the machine, the build (the carried one if it runs there, else rebuilt
# with that machine's nvcc), build/test_cuda, the same under
# compute-sanitizer's memcheck, and bench/gpu/bench.py. Everything lands in
# $OUT (7 files at most, flat): env.txt, build.txt, test_cuda.txt,
# memcheck.txt, bench.txt, bench.json, summary.json.
# Usage, from the repository root: OUT=dir sh tests/gpu/run_device.sh
# Expects build/ from `make` and `sh tests/gpu/pack_deps.sh` (the libraries
# libmuon links, for an image without them). About 8 minutes at most.
set -u
OUT=${OUT:-out-device}
mkdir -p "$OUT"
root=$(pwd)
deps=/tmp/muon-devdeps

{
    date -u
    nvidia-smi || echo "nvidia-smi failed"
    uname -a
    ldd --version 2>&1 | head -1
    command -v nvcc && nvcc --version | tail -2
    command -v compute-sanitizer
    python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda, torch.cuda.is_available())'
} >"$OUT/env.txt" 2>&1

# The libraries libmuon links, for an image that lacks them.
if [ -f build/devdeps/devdeps.tar.gz ]; then
    mkdir -p "$deps" && tar -C "$deps" -xzf build/devdeps/devdeps.tar.gz
fi
export LD_LIBRARY_PATH="$deps/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# The carried build if it loads and runs here (a quick case: 0 passed, 1 a
# test failed), else (127 a library missing, 132 an instruction this CPU
# lacks: -march=native was the build machine's) a rebuild of just the CUDA
# targets with this machine's compilers, in build/dev.
B=build
{
    echo "== carried build"
    timeout 120 ./build/test_cuda cuda_ortho_nonfinite
    rc=$?
    echo "rc $rc"
    if [ "$rc" != 0 ] && [ "$rc" != 1 ]; then
        echo "== rebuilding in build/dev"
        B=build/dev
        mkdir -p build/dev
        cat >build/dev/config.mk <<EOF
DEP_CFLAGS := -I$deps/include
LIB_LIBS := -L$deps/lib -lopenblas -llapacke -lz -ldnnl -lm
TOOL_LIBS :=
HAVE_MPI :=
EOF
        touch build/dev/config.mk
        timeout 400 make -j16 BUILD=build/dev build/dev/libmuon_cuda.so build/dev/test_cuda
        echo "make rc $?"
    fi
} >"$OUT/build.txt" 2>&1

timeout 300 ./$B/test_cuda >"$OUT/test_cuda.txt" 2>&1
test_rc=$?

# memcheck on the cases without big host references (the device work is
# the same kernels); gVisor answers "Device not supported": recorded.
timeout 240 compute-sanitizer --tool memcheck --error-exitcode 9 ./$B/test_cuda \
    cuda_ortho_nonfinite cuda_optimizer_fp32 cuda_optimizer_adamw >"$OUT/memcheck.txt" 2>&1
mem_rc=$?
if grep -q "Device not supported" "$OUT/memcheck.txt"; then mem="device not supported (gVisor)"
elif [ "$mem_rc" = 0 ]; then mem="clean"
else mem="rc $mem_rc"; fi

PYTHONUNBUFFERED=1 timeout 270 python3 bench/gpu/bench.py --build "$root/$B" \
    --out "$OUT/bench.json" >"$OUT/bench.txt" 2>&1
bench_rc=$?

cat >"$OUT/summary.json" <<EOF
{"build": "$B", "test_cuda_rc": $test_rc, "test_cuda_last": "$(tail -n 1 "$OUT/test_cuda.txt" | tr -d '"\\')",
 "memcheck": "$mem", "bench_rc": $bench_rc}
EOF
cat "$OUT/summary.json"

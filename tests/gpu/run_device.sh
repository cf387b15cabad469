#!/bin/sh
# Every check that needs a GPU, in one go, for one call on a GPU machine
# (docs/cuda.md): the machine; the carried build-gpu/ if it runs there, else
# a rebuild of the CUDA targets with that machine's nvcc; build/test_cuda
# (every CUDA kernel against the CPU reference); the same under
# compute-sanitizer's memcheck; bench/gpu/bench.py (orthogonalization and
# the optimizer step against torch.optim.Muon); tests/test_torch.py (its GPU
# cases: the CUDA backend and offload through muon.torch); and
# bench/torch_optimizer.py's offload and CUDA modes. Output, 8 flat files in
# $OUT: setup.txt, test_cuda.txt, memcheck.txt, bench.txt, bench.json,
# torch.txt, torch.json, summary.json.
# Prepare here first: sh tests/gpu/prepare.sh  (makes build-gpu/)
# Usage, from the repository root:  OUT=dir sh tests/gpu/run_device.sh
# Stage limits add up to about 9 minutes.
set -u
OUT=${OUT:-out-device}
mkdir -p "$OUT"
root=$(pwd)
deps=/tmp/muon-devdeps
B=build-gpu

# The libraries libmuon links, for an image that lacks them.
if [ -f $B/devdeps/devdeps.tar.gz ]; then
    mkdir -p "$deps" && tar -C "$deps" -xzf $B/devdeps/devdeps.tar.gz
fi
export LD_LIBRARY_PATH="$deps/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

{
    date -u
    nvidia-smi || echo "nvidia-smi failed"
    uname -a
    grep -m1 "model name" /proc/cpuinfo
    ldd --version 2>&1 | head -1
    command -v nvcc && nvcc --version | tail -2
    command -v compute-sanitizer
    python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda, torch.cuda.is_available())'
    # The carried build if it loads and runs here (0 passed, 1 a test
    # failed, 77 no device), else (127 a library missing, 132 an
    # instruction this CPU lacks) the CUDA targets rebuilt with this
    # machine's compilers.
    echo "== carried build"
    timeout 60 ./$B/test_cuda cuda_ortho_nonfinite
    rc=$?
    echo "rc $rc"
    if [ "$rc" != 0 ] && [ "$rc" != 1 ] && [ "$rc" != 77 ]; then
        echo "== rebuilding in $B/dev"
        mkdir -p $B/dev
        cat >$B/dev/config.mk <<EOF
DEP_CFLAGS := -I$deps/include
LIB_LIBS := -L$deps/lib -lopenblas -llapacke -lz -ldnnl -lm
TOOL_LIBS :=
HAVE_MPI :=
EOF
        touch $B/dev/config.mk
        timeout 150 make -j16 BUILD=$B/dev MARCH=-march=native $B/dev/libmuon.so \
            $B/dev/libmuon_cuda.so $B/dev/test_cuda
        echo "make rc $?"
        B=$B/dev
    fi
    echo "build used: $B"
} >"$OUT/setup.txt" 2>&1
B=$(sed -n 's/^build used: //p' "$OUT/setup.txt")

timeout 120 ./$B/test_cuda >"$OUT/test_cuda.txt" 2>&1
test_rc=$?

# memcheck on the cases without big host references (the device work is the
# same kernels); gVisor answers "Device not supported": recorded as such.
timeout 100 compute-sanitizer --tool memcheck --error-exitcode 9 ./$B/test_cuda \
    cuda_ortho_nonfinite cuda_optimizer_fp32 cuda_optimizer_adamw >"$OUT/memcheck.txt" 2>&1
mem_rc=$?
if grep -q "Device not supported" "$OUT/memcheck.txt"; then mem="device not supported (gVisor)"
elif [ "$mem_rc" = 0 ]; then mem="clean"
else mem="rc $mem_rc"; fi

PYTHONUNBUFFERED=1 timeout 200 python3 bench/gpu/bench.py --build "$root/$B" \
    --out "$OUT/bench.json" >"$OUT/bench.txt" 2>&1
bench_rc=$?

export PYTHONPATH="$root/python" MUON_LIB="$root/$B/libmuon.so" PYTHONUNBUFFERED=1
timeout 60 python3 tests/test_torch.py >"$OUT/torch.txt" 2>&1
torch_rc=$?
torch_last=$(tail -n 1 "$OUT/torch.txt" | tr -d '"\\')
: >"$OUT/torch.json"
for run in "offload gpt2-small" "offload gpt2-medium" "cuda gpt2-small" "cuda gpt2-medium"; do
    set -- $run
    timeout 60 python3 bench/torch_optimizer.py --mode "$1" --model "$2" --rounds 3 \
        >>"$OUT/torch.json" 2>>"$OUT/torch.txt" || echo "torch_optimizer $run: rc $?" >>"$OUT/torch.txt"
done

cat >"$OUT/summary.json" <<EOF
{"build": "$B", "test_cuda_rc": $test_rc, "test_cuda_last": "$(tail -n 1 "$OUT/test_cuda.txt" | tr -d '"\\')",
 "memcheck": "$mem", "bench_rc": $bench_rc, "test_torch_rc": $torch_rc,
 "test_torch_last": "$torch_last"}
EOF
cat "$OUT/summary.json"

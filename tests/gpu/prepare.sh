#!/bin/sh
# Make build-gpu/, the one folder a GPU machine run carries (docs/cuda.md):
# the libraries and build/test_cuda built for any x86-64-v3 CPU (the GPU
# machine's processor is not this one), without the MPI part, plus the
# packed libraries libmuon links (tests/gpu/pack_deps.sh), for an image
# that lacks them. Then, from a session with a device:
#   run(command="sh tests/gpu/run_device.sh", carry=["build-gpu"], timeout_s=580)
set -eu
cd "$(dirname "$0")/../.."
rm -rf build-gpu/dev
make -j"$(nproc)" BUILD=build-gpu MARCH=-march=x86-64-v3 HAVE_MPI= \
    build-gpu/libmuon.so build-gpu/libmuon_cuda.so build-gpu/test_cuda
sh tests/gpu/pack_deps.sh build-gpu
# objects stay behind: only what runs travels
du -sh build-gpu --exclude=obj

#!/bin/sh
# make test-valgrind: a short training run, its resume and one
# orthogonalization under valgrind's memcheck, from a build for AVX2
# (valgrind 3.19 does not decode AVX-512). Any invalid read or write, use of
# uninitialised memory, or definite leak fails the run.
set -eu
build=${1:-build-vg}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
i=0
while [ $i -lt 40 ]; do
    echo "valgrind checks a short run: every read and write, every byte freed."
    i=$((i + 1))
done > "$tmp/text.txt"
vg() {
    echo "== valgrind: muon $*"
    valgrind --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite \
        --show-leak-kinds=definite -q "$build/muon" "$@"
}
tiny="--layers 1 --dim 16 --heads 2 --context 16 --batch 4 --quiet"
# shellcheck disable=SC2086
vg train --data "$tmp/text.txt" --out "$tmp/run" $tiny --steps 4 --stop-at 2 \
    --threads 2 --checkpoint-every 1 --eval-every 2
vg train --resume "$tmp/run/checkpoint.bin" --quiet --threads 2
# shellcheck disable=SC2086
vg train --data "$tmp/text.txt" --out "$tmp/adamw" $tiny --steps 2 --optim adamw --threads 1
python3 -c "
import struct, random
random.seed(1)
rows, cols = 24, 40
hdr = \"{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }\" % (rows, cols)
hdr += ' ' * (118 - len(hdr)) + '\n'
open('$tmp/g.npy', 'wb').write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(hdr)) + hdr.encode()
    + struct.pack('<%df' % (rows * cols), *[random.gauss(0, 1) for _ in range(rows * cols)]))
"
vg ortho --in "$tmp/g.npy" --out "$tmp/o.npy"
echo "valgrind: no errors, no definite leaks"

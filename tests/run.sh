#!/bin/sh
# Run the C suite and (unless PYTHON is "none") the Python binding's suite
# and, where PYTHON has torch, muon.torch's; then print one closing line
# "N passed, N failed" over all of them.
# Usage: tests/run.sh BUILD_DIR PYTHON
build=${1:-build}
python=${2:-/usr/bin/python3}
export MUON_BUILD="$build"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

"$build/test_runner" | tee "$log"
c_status=$?
line=$(tail -n 1 "$log")
p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1/p')
f=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\2/p')
s=$(echo "$line" | sed -n 's/.*failed, \([0-9]*\) skipped.*/\1/p')
[ -n "$p" ] || { p=0; f=1; }
[ -n "$s" ] || s=0

if [ "$python" != none ]; then
    if "$python" -c 'import numpy' >/dev/null 2>&1; then
        PYTHONPATH=python MUON_LIB="$build/libmuon.so" "$python" tests/test_python.py | tee "$log"
        line=$(tail -n 1 "$log")
        pp=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1/p')
        pf=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\2/p')
        [ -n "$pp" ] || { pp=0; pf=1; }
        p=$((p + pp)); f=$((f + pf))
        if "$python" -c 'import torch' >/dev/null 2>&1; then
            PYTHONPATH=python MUON_LIB="$build/libmuon.so" "$python" tests/test_torch.py | tee "$log"
            line=$(tail -n 1 "$log")
            tp=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1/p')
            tf=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\2/p')
            ts=$(echo "$line" | sed -n 's/.*failed, \([0-9]*\) skipped.*/\1/p')
            [ -n "$tp" ] || { tp=0; tf=1; }
            p=$((p + tp)); f=$((f + tf)); s=$((s + ${ts:-0}))
        else
            echo "muon.torch tests skipped: $python cannot import torch (apt-get install python3-torch)"
            s=$((s + 1))
        fi
    else
        echo "python binding tests skipped: $python cannot import numpy"
        s=$((s + 1))
    fi
fi
[ "$c_status" = 0 ] || [ "$f" != 0 ] || f=1
echo "$p passed, $f failed, $s skipped"
[ "$f" = 0 ]

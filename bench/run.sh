#!/bin/sh
# make bench: the project against the PyTorch a user installs today, pip's
# torch (bench/report.py). Usage: bench/run.sh BUILD_DIR PYTHON [report.py flags...]
#
# The peer runs from a virtual environment, BUILD_DIR/bench-venv, made with
# PYTHON; torch and numpy are installed there from PyPI the first time. That
# is the project's only download, and only `make bench` does it. When PYTHON
# itself imports torch (Debian's python3-torch), it is a secondary peer.
set -eu
build=${1:-build}
python=${2:-/usr/bin/python3}
shift 2 || true
venv=$build/bench-venv

if ! "$venv/bin/python" -c 'import torch, numpy' >/dev/null 2>&1; then
    echo "bench: installing pip's torch and numpy from PyPI into $venv" \
         "(with its CUDA wheels, several GB; once)" >&2
    if ! "$python" -m venv "$venv"; then
        echo "bench: FAILED to create the virtual environment $venv with $python" >&2
        echo "bench: (Debian: sudo apt-get install -y python3-venv)" >&2
        exit 1
    fi
    if ! "$venv/bin/python" -m pip install --disable-pip-version-check torch numpy ||
       ! "$venv/bin/python" -c 'import torch, numpy'; then
        echo "bench: FAILED to install torch and numpy from PyPI into $venv;" \
             "the peer cannot run (is PyPI reachable?)" >&2
        exit 1
    fi
fi

set -- --build "$build" --peer-python "$venv/bin/python" "$@"
if "$python" -c 'import torch, numpy' >/dev/null 2>&1; then
    set -- "$@" --debian-python "$python"
fi
exec "$venv/bin/python" bench/report.py "$@"

#!/bin/sh
# make bench: the project and the PyTorch peer side by side (bench/report.py).
# Usage: bench/run.sh BUILD_DIR PYTHON [report.py flags...]
set -eu
build=${1:-build}
python=${2:-/usr/bin/python3}
shift 2 || true
if ! "$python" -c 'import torch' >/dev/null 2>&1; then
    echo "bench: $python cannot import torch; install Debian's python3-torch" >&2
    echo "bench: run:  sudo apt-get install -y python3-torch" >&2
    exit 1
fi
exec "$python" bench/report.py --build "$build" "$@"

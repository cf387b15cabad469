#!/bin/sh
# `pip install .` as a user runs it, into a scratch folder: the installed
# package (not the repository's python/) must load the library it carries,
# orthogonalize, and carry libmuon_cuda.so exactly when the build made one.
# Usage: tests/pip_install.sh [PYTHON] [BUILD_DIR]
set -eu
python=${1:-/usr/bin/python3}
build=${2:-build}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# no build isolation: nothing is downloaded (setuptools comes with python3-pip)
MUON_PIP_BUILD="$(pwd)/$build" "$python" -m pip install -q --no-build-isolation --no-deps \
    --target "$tmp/site" . >"$tmp/log" 2>&1 || { cat "$tmp/log"; echo "pip install . failed"; exit 1; }
want_cuda=0
[ -e "$build/libmuon_cuda.so" ] && want_cuda=1
cd "$tmp"
PYTHONPATH="$tmp/site" MUON_LIB= "$python" - "$tmp/site" "$want_cuda" <<'PY'
import os, sys
import numpy as np
import muon
site, want_cuda = sys.argv[1], sys.argv[2] == "1"
assert muon.__file__.startswith(site), muon.__file__
assert muon._lib.lib_path == os.path.join(site, "muon", "libmuon.so.0"), muon._lib.lib_path
x = np.random.default_rng(0).standard_normal((48, 32))
err = muon.ortho_error(muon.orthogonalize(x, precision="fp32"))
assert err < 0.3, err
has_cuda = os.path.exists(os.path.join(site, "muon", "libmuon_cuda.so"))
assert has_cuda == want_cuda, (has_cuda, want_cuda)
print("pip install . ok: %s, ortho error %.3f, CUDA backend %s"
      % (muon._lib.lib_path, err, "packaged" if has_cuda else "not built"))
PY

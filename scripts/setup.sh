#!/bin/sh
# Make sure the Debian packages muon builds and tests with are present, then
# write build/config.mk with the compiler and linker flags pkg-config reports.
# As root a missing package is installed; otherwise the exact command is
# printed and the script stops, so nothing happens behind the user's back.
set -eu
out=${1:-build/config.mk}

# package that provides each need: pkg-config module or file
need_pkgs=""
pkg-config --exists openblas 2>/dev/null || need_pkgs="$need_pkgs libopenblas-dev"
pkg-config --exists lapacke 2>/dev/null || need_pkgs="$need_pkgs liblapacke-dev"
pkg-config --exists libcjson 2>/dev/null || need_pkgs="$need_pkgs libcjson-dev"
pkg-config --exists zlib 2>/dev/null || need_pkgs="$need_pkgs zlib1g-dev"
# oneDNN (bf16 products on AMX) ships no pkg-config file
[ -f /usr/include/oneapi/dnnl/dnnl.h ] || need_pkgs="$need_pkgs libdnnl-dev"
command -v pkg-config >/dev/null 2>&1 || need_pkgs="$need_pkgs pkg-config"
command -v cc >/dev/null 2>&1 || need_pkgs="$need_pkgs gcc"
# the Python binding's tests and the README's corpus
/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1 || need_pkgs="$need_pkgs python3-numpy"
[ -d /usr/share/games/fortunes ] || need_pkgs="$need_pkgs fortunes"
# Open MPI for the distributed part (src/dist, `muon train --dist`): optional
# without root, where the build goes on without it
mpi_pkgs=""
pkg-config --exists ompi-c 2>/dev/null || mpi_pkgs="$mpi_pkgs libopenmpi-dev"
command -v mpirun >/dev/null 2>&1 || mpi_pkgs="$mpi_pkgs openmpi-bin"
if [ -n "$mpi_pkgs" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    need_pkgs="$need_pkgs$mpi_pkgs"
elif [ -n "$mpi_pkgs" ]; then
    echo "setup: building without MPI; for --dist run:  sudo apt-get install -y$mpi_pkgs" >&2
fi

if [ -n "$need_pkgs" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing$need_pkgs" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        # shellcheck disable=SC2086
        apt-get install -y -qq $need_pkgs >&2
    else
        echo "setup: missing Debian packages:$need_pkgs" >&2
        echo "setup: run:  sudo apt-get install -y$need_pkgs" >&2
        exit 1
    fi
fi

mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
{
    echo "# written by scripts/setup.sh; delete to regenerate"
    echo "DEP_CFLAGS := $(pkg-config --cflags openblas lapacke libcjson zlib)"
    echo "LIB_LIBS := $(pkg-config --libs openblas lapacke zlib) -ldnnl -lm"
    echo "TOOL_LIBS := $(pkg-config --libs libcjson)"
    if pkg-config --exists ompi-c 2>/dev/null; then
        # -isystem: the MPI header is not held to this project's warnings
        echo "HAVE_MPI := 1"
        echo "MPI_CFLAGS := $(pkg-config --cflags-only-I ompi-c | sed 's/-I/-isystem /g')"
        echo "MPI_LIBS := $(pkg-config --libs ompi-c)"
    else
        echo "HAVE_MPI :="
    fi
} > "$tmp"
mv "$tmp" "$out"

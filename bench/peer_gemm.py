#!/usr/bin/env python3
"""The machine's GEMM rate as the peer's torch reaches it: the two products
of one Newton-Schulz step of an RxC matrix (m = min(R, C), n = max), each
timed with torch.mm in float32 and in bfloat16 (pip's torch: MKL and oneDNN,
AMX where the CPU has it).

    build/bench-venv/bin/python bench/peer_gemm.py --shape 768x3072 \\
        --threads 2 --json

prints one JSON line per shape, kind and dtype: {"bench": "gemm", "kind"
("gram": X X^T, m x m, inner n; "apply": B X, m x n, inner m), "lib"
("torch " + version), "dtype", "m", "n", "k", "threads", "ms" (median),
"gflops" (2 m n k / ms)}. bench/report.py takes the best of these and of
`muon bench sgemm` as the rate a precision can reach on this machine.
"""

import argparse
import sys

import torch

from peer_common import DTYPES, emit, parse_shape, set_threads, time_median_ms


def products(rows, cols):
    """(kind, a, b) of the two GEMMs of one NS step, with random operands."""
    m, n = min(rows, cols), max(rows, cols)
    X = torch.randn(m, n)
    B = torch.randn(m, m)
    return [("gram", X, X.T), ("apply", B, X)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", action="append", required=True, help="ROWSxCOLS (repeatable)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.threads < 1 or args.repeats < 1 or args.warmup < 0:
        ap.error("--threads and --repeats must be >= 1, --warmup >= 0")
    try:
        shapes = [parse_shape(s) for s in args.shape]
    except ValueError as e:
        ap.error(str(e))
    set_threads(args.threads)
    torch.manual_seed(1234)
    for rows, cols in shapes:
        for kind, a32, b32 in products(rows, cols):
            for name, dtype in DTYPES.items():
                a, b = a32.to(dtype), b32.to(dtype)
                with torch.no_grad():
                    ms = time_median_ms(lambda: torch.mm(a, b), args.repeats, args.warmup)
                m, k, n = a.size(0), a.size(1), b.size(1)
                emit({"bench": "gemm", "kind": kind, "lib": f"torch {torch.__version__}",
                      "dtype": name, "m": m, "n": n, "k": k, "threads": args.threads,
                      "ms": round(ms, 4), "gflops": round(2 * m * n * k / (ms * 1e6), 3)},
                     args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

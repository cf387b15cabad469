#!/usr/bin/env python3
"""PyTorch peer, figure 1: plain float32 Newton-Schulz with the polar-express
coefficients, written as torch.optim.Muon writes its NS (see
peer_common.orthogonalize); --dtype bf16 runs it in bfloat16.

    build/bench-venv/bin/python bench/peer_ortho.py --shape 1024x4096 --threads 2 \
        --steps 5 --repeats 10 --json

prints one JSON object per shape (--shape may be repeated; default: the
four shapes of the issue) with keys shape, method ("torch-ns"), coeffs,
steps, threads, torch (its version), ms (median over repeats after warm-up), gflops (nominal plain
NS flops / median time, see peer_common.ns_flops), ortho_err (max |s_i - 1|
of the output, singular values from a float64 SVD), s_min, s_max, dtype
and blas_threads (OpenBLAS pool size in effect, see peer_common.set_threads).
Input: Gaussian N(0, 1), torch.manual_seed(seed); or --input G.npy, a 2-D
float32/float64 matrix (instead of --shape), so that the peer and
`muon bench ortho --input G.npy` orthogonalize the very same matrix and their
ortho_err can be compared (bench/report.py does this).
"""

import argparse
import sys

import numpy as np
import torch

from peer_common import (DTYPES, add_dtype_arg, emit, ns_flops, orthogonalize, parse_shape,
                         polar_express_coeffs, set_threads, time_median_ms)

DEFAULT_SHAPES = ["768x768", "768x3072", "3072x768", "1024x4096"]


def load_input(path):
    """The matrix of --input as a float32 tensor; ValueError if it is not 2-D."""
    a = np.load(path, allow_pickle=False)
    if a.ndim != 2 or a.dtype not in (np.float32, np.float64) or a.size == 0:
        raise ValueError(f"{path}: need a non-empty 2-D float32/float64 array, "
                         f"got {a.dtype} of shape {a.shape}")
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def bench_shape(rows, cols, args, G=None):
    if G is None:
        torch.manual_seed(args.seed)
        G = torch.randn(rows, cols, dtype=torch.float32)
    coeffs = polar_express_coeffs(args.steps)
    dtype = DTYPES[args.dtype]
    with torch.no_grad():
        ms = time_median_ms(lambda: orthogonalize(G, coeffs, dtype), args.repeats,
                            warmup=args.warmup)
        O = orthogonalize(G, coeffs, dtype)
    s = np.linalg.svd(O.double().numpy(), compute_uv=False)
    return {
        "shape": f"{rows}x{cols}",
        "method": "torch-ns",
        "coeffs": "polar-express",
        "steps": args.steps,
        "threads": args.threads,
        "torch": torch.__version__,
        "blas_threads": args.blas_threads,
        "dtype": args.dtype,
        "ms": round(ms, 4),
        "gflops": round(ns_flops(rows, cols, args.steps) / (ms * 1e6), 3),
        "ortho_err": float(np.max(np.abs(s - 1.0))),
        "s_min": float(s.min()),
        "s_max": float(s.max()),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", action="append", help="ROWSxCOLS (repeatable)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--input", help="2-D .npy matrix to orthogonalize instead of a Gaussian")
    add_dtype_arg(ap, "precision of NS: float32 is the peer of our fp32 figures, "
                      "bfloat16 (torch.optim.Muon's) that of our fastest setting")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    args = ap.parse_args(argv)
    if args.threads < 1 or args.steps < 1 or args.repeats < 1 or args.warmup < 0:
        ap.error("--threads, --steps and --repeats must be >= 1, --warmup >= 0")
    if args.input and args.shape:
        ap.error("--input and --shape exclude each other (the file gives the shape)")
    G = None
    try:
        if args.input:
            G = load_input(args.input)
            shapes = [tuple(G.shape)]
        else:
            shapes = [parse_shape(s) for s in (args.shape or DEFAULT_SHAPES)]
    except (OSError, ValueError) as e:
        ap.error(str(e))
    args.blas_threads = set_threads(args.threads)
    for rows, cols in shapes:
        emit(bench_shape(rows, cols, args, G), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared pieces of the PyTorch peers for `make bench` (issue 4).

The peers are the baseline the C library is measured against, so they follow
the published reference code as a PyTorch user would write it, without
handicaps and without optimizations the reference does not have:

- orthogonalize(): Keller Jordan's zeropower_via_newtonschulz5 (the structure
  Muon and Moonlight ship), with the polar-express coefficients of
  /work/shared/docs/ALGORITHMS.md section 1a in place of the fixed (3.4445,
  -4.7750, 2.0315). It runs in float32 for the issue's figures (the C side
  is fp32 there). `--dtype bf16` runs it in bfloat16, as the reference does
  on GPUs: the peer of our opt-in `--precision mixed` (torch sends bf16
  matmuls to oneDNN, which uses AMX where the CPU has it).
- HybridMuon: the Moonlight reference optimizer ("Muon is Scalable for LLM
  Training", MoonshotAI/Moonlight toy_train.py): Muon for hidden matrices
  (momentum 0.95 Nesterov, decoupled weight decay, update scale 0.2 *
  sqrt(max(rows, cols))), the rest through torch.optim.AdamW with the same lr
  and weight decay, betas (0.9, 0.95), eps 1e-8.

Run with Debian's /usr/bin/python3 (python3-torch 1.13, numpy).
"""

import ctypes
import json
import math
import statistics
import time

import torch

# Polar Express (Amsel, Persson, Musco, Gower 2025), raw (a, b, c) per step;
# steps past the 8th repeat the 8th.
POLAR_EXPRESS_RAW = [
    (8.28721201814563, -23.595886519098837, 17.300387312530933),
    (4.107059111542203, -2.9478499167379106, 0.5448431082926601),
    (3.9486908534822946, -2.908902115962949, 0.5518191394370137),
    (3.3184196573706015, -2.488488024314874, 0.51004894012372),
    (2.300652019954817, -1.6689039845747493, 0.4188073119525673),
    (1.891301407787398, -1.2679958271945868, 0.37680408948524835),
    (1.8750014808534479, -1.2500016453999487, 0.3750001645474248),
    (1.875, -1.25, 0.375),
]
SAFETY = 1.01  # rows 1-7 become (a/f, b/f^3, c/f^5); also the norm factor
NORM_EPS = 1e-7


# --dtype: the canonical names (printed in the JSON) and their short forms
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16"}


def add_dtype_arg(ap, help_text):
    """--dtype float32|bfloat16 (or fp32|bf16); the parsed value is the
    canonical name, DTYPES[args.dtype] the torch dtype."""
    ap.add_argument("--dtype", default="float32", help=help_text + " (float32 | bfloat16, "
                    "also fp32 | bf16; default float32)",
                    type=lambda s: DTYPE_ALIASES.get(s, s), choices=sorted(DTYPES))


def polar_express_coeffs(steps, safety=SAFETY):
    """The (a, b, c) of each of `steps` steps, safety factor applied."""
    out = []
    for t in range(steps):
        i = min(t, len(POLAR_EXPRESS_RAW) - 1)
        a, b, c = POLAR_EXPRESS_RAW[i]
        if i < len(POLAR_EXPRESS_RAW) - 1:
            a, b, c = a / safety, b / safety**3, c / safety**5
        out.append((a, b, c))
    return out


def orthogonalize(G, coeffs, dtype=torch.float32):
    """Newton-Schulz orthogonalization in `dtype` (float32 for the bench),
    the reference structure. Returns a tensor of `dtype`."""
    assert G.ndim == 2
    X = G.to(dtype)
    transposed = G.size(0) > G.size(1)
    if transposed:
        X = X.T
    X = X / (X.norm() * SAFETY + NORM_EPS)
    for a, b, c in coeffs:
        A = X @ X.T
        B = b * A + c * A @ A
        X = a * X + B @ X
    if transposed:
        X = X.T
    return X


def ns_flops(rows, cols, steps):
    """Nominal flops of plain NS: 4 m^2 n + 2 m^3 per step (m <= n) plus
    3 m n for the normalization (sum of squares and the scaling)."""
    m, n = min(rows, cols), max(rows, cols)
    return steps * (4 * m * m * n + 2 * m**3) + 3 * m * n


class HybridMuon:
    """Moonlight's hybrid optimizer: Muon for `muon_params` (2-D hidden
    matrices), torch.optim.AdamW for `adamw_params`, same lr and wd."""

    def __init__(self, muon_params, adamw_params, lr=1e-3, wd=0.1, momentum=0.95,
                 nesterov=True, ns_steps=5, adamw_betas=(0.9, 0.95), adamw_eps=1e-8,
                 ns_dtype=torch.float32):
        self.muon_params = list(muon_params)
        self.lr, self.wd, self.momentum, self.nesterov = lr, wd, momentum, nesterov
        self.coeffs = polar_express_coeffs(ns_steps)
        # bfloat16 is what the published reference runs NS in on GPUs
        self.ns_dtype = ns_dtype
        self.buffers = [torch.zeros_like(p) for p in self.muon_params]
        adamw_params = list(adamw_params)
        self.adamw = (torch.optim.AdamW(adamw_params, lr=lr, betas=adamw_betas,
                                        eps=adamw_eps, weight_decay=wd)
                      if adamw_params else None)

    def set_lr(self, lr):
        self.lr = lr
        if self.adamw is not None:
            for g in self.adamw.param_groups:
                g["lr"] = lr

    def zero_grad(self, set_to_none=True):
        """Gradients to None (the only mode the peers use)."""
        for p in self.muon_params:
            p.grad = None
        if self.adamw is not None:
            self.adamw.zero_grad(set_to_none=True)

    @torch.no_grad()
    def step(self):
        lr, wd, mu = self.lr, self.wd, self.momentum
        for p, buf in zip(self.muon_params, self.buffers):
            g = p.grad
            if g is None:
                continue
            if g.ndim > 2:
                g = g.view(g.size(0), -1)
            buf.mul_(mu).add_(g)
            g = g.add(buf, alpha=mu) if self.nesterov else buf
            u = orthogonalize(g, self.coeffs, self.ns_dtype).to(p.dtype)
            adjusted_lr = lr * 0.2 * math.sqrt(max(p.shape[0], p.shape[1]))
            p.mul_(1 - lr * wd)
            p.add_(u.view_as(p), alpha=-adjusted_lr)
        if self.adamw is not None:
            self.adamw.step()


def set_threads(n):
    """Run on n threads. torch.set_num_threads() sets the OpenMP pool (torch's
    own kernels, oneDNN), but Debian's torch does its float32 matmuls in the
    system OpenBLAS (pthreads build), which keeps its own pool sized to the
    number of cores: measured, a "1-thread" torch matmul ran on 2 cores. So
    the OpenBLAS pool is set too, through its C API. Returns the BLAS thread
    count actually in effect (None if OpenBLAS is not the BLAS)."""
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)  # only allowed before parallel work
    except RuntimeError:
        pass
    try:
        blas = ctypes.CDLL("libopenblas.so.0")
    except OSError:
        return None
    blas.openblas_set_num_threads(n)
    return int(blas.openblas_get_num_threads())


def time_median_ms(fn, repeats, warmup=2):
    """Median wall time of fn() in milliseconds after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def emit(obj, as_json):
    """One result: a JSON object on one line, or key=value pairs."""
    if as_json:
        print(json.dumps(obj), flush=True)
    else:
        print("  ".join(f"{k}={v}" for k, v in obj.items()), flush=True)


def parse_shape(text):
    """'1024x4096' -> (1024, 4096)."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"bad shape '{text}' (expected ROWSxCOLS)")
    return int(parts[0]), int(parts[1])

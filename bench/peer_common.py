"""Shared pieces of the PyTorch peers for `make bench` (issues 4 and 15).

The peer is the best PyTorch a user can install: pip's torch (2.x, with MKL
and oneDNN, and torch.optim.Muon), run by `make bench` from a virtual
environment under the build directory (bench/run.sh). The same scripts also
run on Debian's python3-torch 1.13, the secondary row, where torch.optim.Muon
does not exist; what differs between the two is decided here, by feature:

- orthogonalize(): plain Newton-Schulz with the structure of torch.optim.Muon's
  _zeropower_via_newtonschulz (copy to the working dtype, transpose if rows >
  cols, scale by the Frobenius norm, per step X X^T and two addmm), with the
  polar-express coefficients of docs/algorithms.md section 1a
  (one (a, b, c) per step; torch.optim.Muon takes a single tuple). float32 is
  the peer of our fp32 figures, bfloat16 that of our fastest setting.
- muon_adamw(): torch.optim.Muon for the hidden matrices (adjust_lr_fn=
  "match_rms_adamw", Moonlight's 0.2 * sqrt(max(rows, cols)), the project's
  scale) beside torch.optim.AdamW for the rest, in AdamW's fastest CPU
  implementation (fused where torch has it). Without torch.optim.Muon:
  HybridMuon, Moonlight's reference optimizer written out.
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
    """Newton-Schulz orthogonalization of the 2-D G in `dtype`, written as
    torch.optim.Muon writes it, with one (a, b, c) per step. Returns a
    tensor of `dtype`."""
    assert G.ndim == 2
    X = G.to(dtype=dtype, copy=True)
    transposed = G.size(0) > G.size(1)
    if transposed:
        X = X.T
    X.div_(X.norm() * SAFETY + NORM_EPS)
    for a, b, c in coeffs:
        A = X @ X.T
        B = torch.addmm(A, A, A, beta=b, alpha=c)
        X = torch.addmm(X, B, X, beta=a)
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
        self.adamw = (fastest_adamw(adamw_params, lr=lr, betas=adamw_betas, eps=adamw_eps,
                                    weight_decay=wd)
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


class MuonAdamW:
    """torch.optim.Muon over the hidden matrices and torch.optim.AdamW over
    the rest, stepped together: the pairing torch.optim.Muon's documentation
    prescribes."""

    def __init__(self, muon_params, adamw_params, lr, wd, adamw_betas, adamw_eps):
        self.optimizers = [torch.optim.Muon(list(muon_params), lr=lr, weight_decay=wd,
                                            adjust_lr_fn="match_rms_adamw")]
        adamw_params = list(adamw_params)
        if adamw_params:
            self.optimizers.append(fastest_adamw(adamw_params, lr=lr, betas=adamw_betas,
                                                 eps=adamw_eps, weight_decay=wd))

    def set_lr(self, lr):
        for opt in self.optimizers:
            for g in opt.param_groups:
                g["lr"] = lr

    def zero_grad(self, set_to_none=True):
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self):
        for opt in self.optimizers:
            opt.step()


def fastest_adamw(params, **kw):
    """torch.optim.AdamW in its fused CPU kernel where torch has one (2.4 and
    later): over GPT-2 small's 39.5M AdamW values it steps in 27 ms against
    212 ms for the default for-loop on one thread (pip torch 2.15, AMD EPYC)."""
    try:
        return torch.optim.AdamW(params, fused=True, **kw)
    except (TypeError, RuntimeError):  # torch 1.13: no fused CPU AdamW
        return torch.optim.AdamW(params, **kw)


def muon_adamw(muon_params, adamw_params, lr, wd, ns_dtype=torch.float32,
               adamw_betas=(0.9, 0.95), adamw_eps=1e-8):
    """The hybrid optimizer, and what it is called in the results:
    (optimizer, "torch.optim.Muon") where torch has it (NS always in bfloat16,
    its coefficients (3.4445, -4.775, 2.0315): ns_dtype does not apply), else
    (HybridMuon, "hybrid-muon")."""
    if hasattr(torch.optim, "Muon"):
        return (MuonAdamW(muon_params, adamw_params, lr, wd, adamw_betas, adamw_eps),
                "torch.optim.Muon")
    return (HybridMuon(muon_params, adamw_params, lr=lr, wd=wd, adamw_betas=adamw_betas,
                       adamw_eps=adamw_eps, ns_dtype=ns_dtype), "hybrid-muon")


def set_threads(n):
    """Run on n threads. torch.set_num_threads() sets the OpenMP pool (torch's
    own kernels, oneDNN, MKL). Debian's torch does its float32 matmuls in the
    system OpenBLAS (pthreads build), which keeps its own pool sized to the
    number of cores: measured, a "1-thread" torch matmul ran on 2 cores. So
    where OpenBLAS is torch's BLAS its pool is set too, through its C API.
    Returns the OpenBLAS thread count in effect, or None where torch's BLAS
    is another (pip's torch: MKL)."""
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)  # only allowed before parallel work
    except RuntimeError:
        pass
    if "BLAS_INFO=open" not in torch.__config__.show():
        return None
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

"""The CUDA backend against PyTorch on one GPU (docs/cuda.md, "Bench").

    python3 bench/gpu/bench.py [--build build] [--out bench.json] [--quick]

Needs PyTorch with CUDA and build/libmuon_cuda.so (ctypes; torch tensors'
data_ptr()). Measures, each best of N with CUDA events after a warm-up:

1. bf16 GEMM rate: one 8192^3 torch.matmul, the yardstick for the shares.
2. Orthogonalization of 4096x4096, 4096x16384 and 8192x8192: ours (mixed
   and fp32, polar-express, 5 steps, method auto) against torch.optim.Muon's
   own bf16 Newton-Schulz (torch.optim._muon._zeropower_via_newtonschulz,
   or a copy of its formula where that is absent). Orthogonality error: max
   |s_i - 1| by torch.linalg.svdvals in float64 over the first 2048 rows of
   the wide view; by Cauchy interlacing a row subset's singular values lie
   within the whole matrix's range, so this is a lower bound of the whole
   matrix's error, the same bound for every side.
3. One optimizer step over GPT-2 small / medium / large shapes and a 3-D
   expert stack: ours (hybrid, default config) against torch.optim.Muon for
   the hidden matrices plus torch.optim.AdamW(fused=True) for the rest.

Executed TFLOP/s counts the products each side runs (ours: symmetric
products by block lower triangle, Gram NS's m x m iterations; torch: its
three full products per step), as a share of the measured bf16 GEMM rate.
"""

import argparse
import ctypes
import datetime
import json
import math
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# ---- the libraries ------------------------------------------------------


class OrthoConfig(ctypes.Structure):
    _fields_ = [("method", ctypes.c_int), ("coeffs", ctypes.c_int), ("taylor_k", ctypes.c_int),
                ("steps", ctypes.c_int), ("safety", ctypes.c_double), ("eps", ctypes.c_double),
                ("aol", ctypes.c_int), ("gram_restarts", ctypes.c_uint),
                ("precision", ctypes.c_int)]


class OptConfig(ctypes.Structure):
    _fields_ = [("algo", ctypes.c_int), ("lr", ctypes.c_double), ("momentum", ctypes.c_double),
                ("nesterov", ctypes.c_int), ("weight_decay", ctypes.c_double),
                ("scale", ctypes.c_int), ("ortho", OrthoConfig), ("adam_lr", ctypes.c_double),
                ("adam_beta1", ctypes.c_double), ("adam_beta2", ctypes.c_double),
                ("adam_eps", ctypes.c_double), ("adam_weight_decay", ctypes.c_double),
                ("threads", ctypes.c_int), ("fanion_alpha", ctypes.c_double),
                ("sign_scale", ctypes.c_double), ("fanion_k", ctypes.c_int),
                ("spectrum_power", ctypes.c_double), ("switch_step", ctypes.c_long)]


PRECISION = {"fp32": 0, "mixed": 1, "auto": 2}
ROLE = {"matrix": 0, "embedding": 1, "head": 2, "vector": 3}


def load(build):
    muon = ctypes.CDLL(os.path.join(build, "libmuon.so"))
    cuda = ctypes.CDLL(os.path.join(build, "libmuon_cuda.so"))
    muon.muon_ortho_config_default.restype = OrthoConfig
    muon.muon_opt_config_default.restype = OptConfig
    vp, L, I = ctypes.c_void_p, ctypes.c_long, ctypes.c_int
    cuda.muon_cuda_create.argtypes = [I, ctypes.POINTER(vp)]
    cuda.muon_cuda_error.restype = ctypes.c_char_p
    cuda.muon_cuda_error.argtypes = [vp]
    cuda.muon_cuda_last_error.restype = ctypes.c_char_p
    cuda.muon_cuda_set_stream.argtypes = [vp, vp]
    cuda.muon_cuda_synchronize.argtypes = [vp]
    cuda.muon_cuda_free.argtypes = [vp]
    cuda.muon_cuda_orthogonalize.argtypes = [vp, ctypes.POINTER(OrthoConfig), vp, vp, L, L, L]
    cuda.muon_cuda_opt_create.argtypes = [vp, ctypes.POINTER(OptConfig), ctypes.POINTER(vp)]
    cuda.muon_cuda_opt_add_param.argtypes = [vp, ctypes.c_char_p, vp, vp, I,
                                             ctypes.POINTER(L), I, ctypes.POINTER(I)]
    cuda.muon_cuda_opt_finalize.argtypes = [vp]
    cuda.muon_cuda_opt_step.argtypes = [vp, ctypes.c_double]
    cuda.muon_cuda_opt_error.restype = ctypes.c_char_p
    cuda.muon_cuda_opt_error.argtypes = [vp]
    cuda.muon_cuda_opt_free.argtypes = [vp]
    return muon, cuda


def check(status, what):
    if status != 0:
        raise RuntimeError("%s failed: status %d" % (what, status))


# ---- timing and flops ---------------------------------------------------


def best_ms(fn, reps, warm=1):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    best = math.inf
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        best = min(best, a.elapsed_time(b))
    return best


def sym_frac(m):
    """Share of a full m x m product the block lower triangle computes
    (src/cuda/ortho.cu's sym_lower)."""
    if m < 256:
        return 1.0
    lo = [0] + [(m * i // 4 + 32) // 64 * 64 for i in range(1, 4)] + [m]
    return sum((m - lo[j]) * (lo[j + 1] - lo[j]) for j in range(4)) / float(m * m)


def ours_flops(rows, cols, precision, steps=5, restart=3):
    """Products src/cuda/ortho.cu runs (polar-express: degree 2)."""
    m, n = min(rows, cols), max(rows, cols)
    f = sym_frac(m)
    gram, aa, app = 2.0 * m * m * n * f, 2.0 * m ** 3 * f, 2.0 * m * m * n
    t0 = steps - 2 if precision == "mixed" and steps > 2 else 0
    total = t0 * (gram + aa + app)
    if n < 1.5 * m:  # NS
        return total + (steps - t0) * (gram + aa + app)
    total += gram  # Gram NS from a fresh Gram matrix
    have_q = False
    for t in range(t0, steps):
        if t > t0 and t == restart:
            total += app + gram
            have_q = False
        total += aa + (aa if have_q else 0.0)
        have_q = True
        if t + 1 < steps and t + 1 != restart:
            total += 2 * aa
    return total + app


def torch_flops(rows, cols, steps=5):
    m, n = min(rows, cols), max(rows, cols)
    return steps * (4.0 * m * m * n + 2.0 * m ** 3)


# ---- the torch side -----------------------------------------------------


def torch_ns():
    try:
        from torch.optim._muon import _zeropower_via_newtonschulz as f
        return f, "torch.optim._muon._zeropower_via_newtonschulz"
    except Exception:
        pass

    def f(grad, ns_coefficients, ns_steps, eps):
        # torch.optim.Muon's formula, copied: bf16, transpose when tall
        a, b, c = ns_coefficients
        x = grad.bfloat16()
        if grad.size(0) > grad.size(1):
            x = x.T
        x = x / (x.norm() + eps)
        for _ in range(ns_steps):
            g = x @ x.T
            g = torch.addmm(g, g, g, beta=b, alpha=c)
            x = torch.addmm(x, g, x, beta=a)
        if grad.size(0) > grad.size(1):
            x = x.T
        return x
    return f, "copy of torch.optim.Muon's Newton-Schulz"


def ortho_error(x):
    w = x if x.shape[0] <= x.shape[1] else x.T
    s = torch.linalg.svdvals(w[:2048].double())
    return float((s - 1).abs().max())


# ---- benches ------------------------------------------------------------


def bench_gemm(reps):
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    ms = best_ms(lambda: torch.matmul(a, b), reps)
    return 2.0 * 8192 ** 3 / (ms * 1e-3) / 1e12


def bench_ortho(muon, cuda, ctx, shapes, reps, gemm_tflops):
    ns, ns_name = torch_ns()
    out = []
    for rows, cols in shapes:
        torch.manual_seed(0)
        g = torch.randn(rows, cols, device="cuda")
        o = torch.empty_like(g)
        row = {"shape": [rows, cols]}
        for prec in ("mixed", "fp32"):
            oc = muon.muon_ortho_config_default()
            oc.precision = PRECISION[prec]

            def ours():
                check(cuda.muon_cuda_orthogonalize(ctx, ctypes.byref(oc), g.data_ptr(),
                                                   o.data_ptr(), 1, rows, cols),
                      "muon_cuda_orthogonalize: %s" % cuda.muon_cuda_error(ctx))
            ms = best_ms(ours, reps)
            fl = ours_flops(rows, cols, prec)
            row["ours_" + prec] = {"ms": ms, "ortho_error": ortho_error(o),
                                   "executed_tflops": fl / (ms * 1e-3) / 1e12,
                                   "share_of_bf16_gemm": fl / (ms * 1e-3) / 1e12 / gemm_tflops}
        res = {}

        def theirs():
            res["x"] = ns(g, (3.4445, -4.775, 2.0315), 5, 1e-7)
        ms = best_ms(theirs, reps)
        fl = torch_flops(rows, cols)
        row["torch_bf16"] = {"ms": ms, "ortho_error": ortho_error(res["x"].float()),
                             "executed_tflops": fl / (ms * 1e-3) / 1e12,
                             "share_of_bf16_gemm": fl / (ms * 1e-3) / 1e12 / gemm_tflops,
                             "impl": ns_name}
        out.append(row)
        print(json.dumps(row), flush=True)
        del g, o, res
        torch.cuda.empty_cache()
    return out


def gpt2_shapes(d, layers, vocab=50257, ctx=1024):
    t = [("wte", [vocab, d], "embedding"), ("wpe", [ctx, d], "embedding")]
    for i in range(layers):
        h = "h.%d." % i
        t += [(h + "ln_1.weight", [d], "vector"), (h + "ln_1.bias", [d], "vector"),
              (h + "attn.c_attn.weight", [3 * d, d], "matrix"), (h + "attn.c_attn.bias", [3 * d], "vector"),
              (h + "attn.c_proj.weight", [d, d], "matrix"), (h + "attn.c_proj.bias", [d], "vector"),
              (h + "ln_2.weight", [d], "vector"), (h + "ln_2.bias", [d], "vector"),
              (h + "mlp.c_fc.weight", [4 * d, d], "matrix"), (h + "mlp.c_fc.bias", [4 * d], "vector"),
              (h + "mlp.c_proj.weight", [d, 4 * d], "matrix"), (h + "mlp.c_proj.bias", [d], "vector")]
    return t + [("ln_f.weight", [d], "vector"), ("ln_f.bias", [d], "vector")]


def small_shapes():
    with open(os.path.join(ROOT, "bench", "gpt2_small_shapes.json")) as f:
        j = json.load(f)
    return [(t["name"], t["shape"], t["role"]) for t in j["tensors"]]


def bench_step(muon, cuda, ctx, name, tensors, reps, gemm_tflops):
    torch.manual_seed(0)
    ws = [torch.randn(s, device="cuda") * 0.02 for _, s, _ in tensors]
    gs = [torch.randn(s, device="cuda") for _, s, _ in tensors]
    cfg = muon.muon_opt_config_default()
    o = ctypes.c_void_p()
    check(cuda.muon_cuda_opt_create(ctx, ctypes.byref(cfg), ctypes.byref(o)), "opt_create")
    flops = 0.0
    for (pname, shape, role), w, g in zip(tensors, ws, gs):
        sh = (ctypes.c_long * len(shape))(*shape)
        check(cuda.muon_cuda_opt_add_param(o, pname.encode(), w.data_ptr(), g.data_ptr(),
                                           len(shape), sh, ROLE[role], None), "add_param")
        if role == "matrix":
            batch = shape[0] if len(shape) == 3 else 1
            flops += batch * ours_flops(shape[-2], shape[-1], "mixed")
    check(cuda.muon_cuda_opt_finalize(o), "finalize: %s" % cuda.muon_cuda_opt_error(o))
    ms = best_ms(lambda: check(cuda.muon_cuda_opt_step(o, 1.0), "step"), reps)
    cuda.muon_cuda_opt_free(o)
    row = {"model": name, "params": sum(w.numel() for w in ws),
           "ours": {"ms": ms, "executed_tflops": flops / (ms * 1e-3) / 1e12,
                    "share_of_bf16_gemm": flops / (ms * 1e-3) / 1e12 / gemm_tflops}}
    del ws, gs
    torch.cuda.empty_cache()

    # torch: Muon takes 2-D params only, so a stack becomes its experts
    tp, hidden, rest, tflops = [], [], [], 0.0
    for pname, shape, role in tensors:
        parts = [shape[1:]] * shape[0] if role == "matrix" and len(shape) == 3 else [shape]
        for s in parts:
            p = torch.nn.Parameter(torch.randn(s, device="cuda") * 0.02)
            p.grad = torch.randn(s, device="cuda")
            (hidden if role == "matrix" else rest).append(p)
            if role == "matrix":
                tflops += torch_flops(s[0], s[1])
    opts = []
    if hasattr(torch.optim, "Muon"):
        opts.append(torch.optim.Muon(hidden, lr=1e-3, weight_decay=0.1,
                                     adjust_lr_fn="match_rms_adamw"))
    if rest:  # an expert stack alone has no AdamW part (AdamW refuses an empty list)
        opts.append(torch.optim.AdamW(rest, lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1,
                                      fused=True))

    def step():
        for op in opts:
            op.step()
    ms = best_ms(step, reps)
    row["torch"] = {"ms": ms, "executed_tflops": tflops / (ms * 1e-3) / 1e12,
                    "share_of_bf16_gemm": tflops / (ms * 1e-3) / 1e12 / gemm_tflops,
                    "muon": hasattr(torch.optim, "Muon")}
    print(json.dumps(row), flush=True)
    del hidden, rest, opts
    torch.cuda.empty_cache()
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--quick", action="store_true", help="small shapes only (a smoke test)")
    a = ap.parse_args()
    t0 = time.time()
    muon, cuda = load(a.build)
    ctx = ctypes.c_void_p()
    if cuda.muon_cuda_create(0, ctypes.byref(ctx)) != 0:
        sys.exit("muon_cuda_create: %s" % cuda.muon_cuda_last_error().decode())
    check(cuda.muon_cuda_set_stream(ctx, torch.cuda.current_stream().cuda_stream), "set_stream")
    reps = 2 if a.quick else 3
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
              "device": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "cuda": torch.version.cuda}
    result["bf16_gemm_tflops"] = bench_gemm(5)
    print("bf16 GEMM 8192^3: %.1f TFLOP/s" % result["bf16_gemm_tflops"], flush=True)

    def save():
        # after every stage, so a later failure or the time limit keeps what ran
        if a.out:
            with open(a.out + ".tmp", "w") as f:
                f.write(json.dumps(result, indent=1) + "\n")
            os.replace(a.out + ".tmp", a.out)
    save()
    shapes = [(1024, 1024), (1024, 4096)] if a.quick else [(4096, 4096), (4096, 16384), (8192, 8192)]
    result["ortho"] = []
    for shape in shapes:
        try:
            row = bench_ortho(muon, cuda, ctx, [shape], reps, result["bf16_gemm_tflops"])[0]
            row["speedup_vs_torch_bf16"] = row["torch_bf16"]["ms"] / row["ours_mixed"]["ms"]
        except Exception as e:  # recorded, and the next shape runs
            row = {"shape": list(shape), "error": repr(e)}
        result["ortho"].append(row)
        save()
    models = [("gpt2-small", small_shapes())]
    if not a.quick:
        models += [("gpt2-medium", gpt2_shapes(1024, 24)), ("gpt2-large", gpt2_shapes(1280, 36)),
                   ("moe-stack-64x1408x2048", [("experts", [64, 1408, 2048], "matrix")])]
    result["step"] = []
    for n, t in models:
        try:
            row = bench_step(muon, cuda, ctx, n, t, reps, result["bf16_gemm_tflops"])
            row["speedup"] = row["torch"]["ms"] / row["ours"]["ms"]
        except Exception as e:
            row = {"model": n, "error": repr(e)}
        result["step"].append(row)
        save()
    cuda.muon_cuda_free(ctx)
    result["seconds"] = time.time() - t0
    save()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

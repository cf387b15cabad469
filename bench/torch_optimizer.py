#!/usr/bin/env python3
"""muon.torch.Muon against torch.optim.Muon + torch.optim.AdamW: one full
optimizer step over GPT-2 parameter shapes, in the same process, rounds
alternated, each side's best kept.

    # CPU (make bench's virtual environment has pip's torch):
    PYTHONPATH=python build/bench-venv/bin/python bench/torch_optimizer.py --mode cpu
    # GPU machine: offload (state on the host) and the CUDA backend
    PYTHONPATH=python python3 bench/torch_optimizer.py --mode offload --model gpt2-medium
    PYTHONPATH=python python3 bench/torch_optimizer.py --mode cuda --model gpt2-large

prints one JSON object: the machine, both sides' step times (ms, best of
--rounds), and for the GPU modes the GPU memory each side holds beyond the
parameters and gradients (the optimizer state torch keeps on the device,
which offload moves to the host). Both sides update the same tensors with
the same gradients; the step's accuracy is not compared here (tests do).
"""

import argparse
import json
import os
import platform
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

GPT2 = {"gpt2-small": (768, 12), "gpt2-medium": (1024, 24), "gpt2-large": (1280, 36)}


def gpt2_shapes(model):
    d, layers = GPT2[model]
    out = [((50257, d), "embedding"), ((1024, d), "embedding")]
    for _ in range(layers):
        out += [((d,), "vector"), ((d,), "vector"), ((3 * d, d), "matrix"), ((3 * d,), "vector"),
                ((d, d), "matrix"), ((d,), "vector"), ((d,), "vector"), ((d,), "vector"),
                ((4 * d, d), "matrix"), ((4 * d,), "vector"), ((d, 4 * d), "matrix"),
                ((d,), "vector")]
    return out + [((d,), "vector"), ((d,), "vector")]


def make_params(model, device, seed):
    g = torch.Generator(device="cpu")
    g.manual_seed(seed)
    out = []
    for shape, role in gpt2_shapes(model):
        p = torch.nn.Parameter((torch.randn(shape, generator=g) * 0.02).to(device))
        p.grad = torch.randn(shape, generator=g).to(device)
        out.append((p, role))
    return out


def ours(params, mode, threads):
    import muon.torch as mt
    groups = {}
    for p, role in params:
        groups.setdefault(role, []).append(p)
    return mt.Muon([{"params": ps, "role": r} for r, ps in groups.items()], lr=1e-3,
                   weight_decay=0.1, threads=threads, offload=(mode == "offload"))


def theirs(params):
    muon = [p for p, r in params if r == "matrix"]
    rest = [p for p, r in params if r != "matrix"]
    a = torch.optim.Muon(muon, lr=1e-3, weight_decay=0.1, adjust_lr_fn="match_rms_adamw")
    kw = {"fused": True} if rest[0].is_cuda else {}
    b = torch.optim.AdamW(rest, lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1, **kw)

    class Both:
        def step(self):
            a.step()
            b.step()
    return Both()


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def time_step(opt, device):
    sync(device)
    t0 = time.perf_counter()
    opt.step()
    sync(device)
    return (time.perf_counter() - t0) * 1e3


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=("cpu", "offload", "cuda"), default="cpu")
    ap.add_argument("--model", choices=sorted(GPT2), default="gpt2-small")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--threads", type=int, default=0,
                    help="CPU threads of both sides (0: every core)")
    args = ap.parse_args(argv)
    if not hasattr(torch.optim, "Muon"):
        sys.exit("torch %s has no torch.optim.Muon (2.9 or later needed)" % torch.__version__)
    threads = args.threads or os.cpu_count()
    torch.set_num_threads(threads)
    device = "cpu" if args.mode == "cpu" else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("--mode %s needs a CUDA device" % args.mode)

    sides = {}
    mem = {}
    for name in ("muon.torch", "torch"):
        params = make_params(args.model, device, 1234)
        if device == "cuda":
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        opt = ours(params, args.mode, threads) if name == "muon.torch" else theirs(params)
        opt.step()  # the state exists after the first step
        sync(device)
        if device == "cuda":
            mem[name] = {"state_bytes_on_gpu": torch.cuda.memory_allocated() - base,
                         "peak_extra_bytes": torch.cuda.max_memory_allocated() - base}
        sides[name] = (params, opt)
    best = {k: float("inf") for k in sides}
    for _ in range(args.rounds):
        for name, (_, opt) in sides.items():
            best[name] = min(best[name], time_step(opt, device))
    out = {
        "bench": "torch_optimizer", "mode": args.mode, "model": args.model,
        "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "threads": threads,
        "cpu": platform.processor() or platform.machine(),
        "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
        "params": sum(p.numel() for p, _ in sides["torch"][0]),
        "ms": {k: round(v, 2) for k, v in best.items()},
        "speedup": round(best["torch"] / best["muon.torch"], 3),
    }
    if mem:
        out["gpu_memory"] = mem
        out["gpu_bytes_freed"] = (mem["torch"]["state_bytes_on_gpu"]
                                  - mem["muon.torch"]["state_bytes_on_gpu"])
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""PyTorch peer, figure 2: one full optimizer step over the parameter shapes
of GPT-2 small, torch.optim.Muon (adjust_lr_fn="match_rms_adamw") for the
hidden matrices and torch.optim.AdamW (fused) for everything else
(peer_common.muon_adamw). On a torch without torch.optim.Muon (Debian's 1.13)
it steps peer_common.HybridMuon instead, polar-express NS in float32, or
bfloat16 with --dtype bf16.

    build/bench-venv/bin/python bench/peer_step.py --model gpt2-small \
        --threads 2 --repeats 5 --json

prints one JSON line: {"model", "optimizer", "torch", "threads",
"blas_threads", "dtype", "params", "muon_params", "adamw_params", "ms"} with
ms the median step time over repeats after warm-up. Gradients are random
(fixed seed) and stay the same across repeats; weights keep changing, which
does not affect the cost.

    build/bench-venv/bin/python bench/peer_step.py --write-shapes bench/gpt2_small_shapes.json

writes the shape list (name, shape, role) that the C bench reads, so both
sides step the identical set of tensors.
"""

import argparse
import json
import os
import sys

import torch

from peer_common import DTYPES, add_dtype_arg, emit, muon_adamw, set_threads, time_median_ms


def gpt2_small_shapes():
    """(name, shape, role) of every trainable tensor of GPT-2 small (124M),
    weights in PyTorch nn.Linear layout (out_features, in_features). The
    LM head is tied to wte, so it is not a separate tensor. Roles use the
    C library's names: matrix (Muon), embedding and vector (AdamW)."""
    d, n_layer, vocab, ctx = 768, 12, 50257, 1024
    out = [("wte", (vocab, d), "embedding"), ("wpe", (ctx, d), "embedding")]
    for l in range(n_layer):
        p = f"h.{l}."
        out += [
            (p + "ln_1.weight", (d,), "vector"),
            (p + "ln_1.bias", (d,), "vector"),
            (p + "attn.c_attn.weight", (3 * d, d), "matrix"),
            (p + "attn.c_attn.bias", (3 * d,), "vector"),
            (p + "attn.c_proj.weight", (d, d), "matrix"),
            (p + "attn.c_proj.bias", (d,), "vector"),
            (p + "ln_2.weight", (d,), "vector"),
            (p + "ln_2.bias", (d,), "vector"),
            (p + "mlp.c_fc.weight", (4 * d, d), "matrix"),
            (p + "mlp.c_fc.bias", (4 * d,), "vector"),
            (p + "mlp.c_proj.weight", (d, 4 * d), "matrix"),
            (p + "mlp.c_proj.bias", (d,), "vector"),
        ]
    out += [("ln_f.weight", (d,), "vector"), ("ln_f.bias", (d,), "vector")]
    return out


MODELS = {"gpt2-small": gpt2_small_shapes}


def numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def write_shapes(path, model):
    shapes = MODELS[model]()
    doc = {
        "model": model,
        "layout": "PyTorch (out_features, in_features); lm_head tied to wte",
        "params": sum(numel(s) for _, s, _ in shapes),
        "tensors": [{"name": n, "shape": list(s), "role": r} for n, s, r in shapes],
    }
    # One tensor per line: readable and diff-friendly.
    text = json.dumps(doc, indent=1)
    rows = ",\n  ".join(json.dumps(t) for t in doc["tensors"])
    text = text[:text.index('"tensors": [')] + '"tensors": [\n  ' + rows + "\n ]\n}\n"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def build(model, seed):
    """Parameters (N(0, 0.02)) with random N(0, 1) gradients, split by role."""
    torch.manual_seed(seed)
    muon, adamw = [], []
    for _, shape, role in MODELS[model]():
        p = torch.nn.Parameter(torch.randn(shape) * 0.02)
        p.grad = torch.randn(shape)
        (muon if role == "matrix" else adamw).append(p)
    return muon, adamw


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=sorted(MODELS), default="gpt2-small")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--lr", type=float, default=1e-3)
    add_dtype_arg(ap, "precision of Newton-Schulz where torch has no torch.optim.Muon "
                      "(torch.optim.Muon always runs it in bfloat16)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--write-shapes", metavar="PATH",
                    help="write the shape list as JSON and exit")
    args = ap.parse_args(argv)
    if args.write_shapes:
        write_shapes(args.write_shapes, args.model)
        return 0
    if args.threads < 1 or args.repeats < 1 or args.warmup < 0:
        ap.error("--threads and --repeats must be >= 1, --warmup >= 0")
    blas_threads = set_threads(args.threads)
    muon, adamw = build(args.model, args.seed)
    opt, name = muon_adamw(muon, adamw, lr=args.lr, wd=0.1, ns_dtype=DTYPES[args.dtype])
    ms = time_median_ms(opt.step, args.repeats, warmup=args.warmup)
    n_muon = sum(p.numel() for p in muon)
    n_adamw = sum(p.numel() for p in adamw)
    emit({"model": args.model, "optimizer": name, "torch": torch.__version__,
          "threads": args.threads, "blas_threads": blas_threads,
          "dtype": "bfloat16" if name == "torch.optim.Muon" else args.dtype,
          "params": n_muon + n_adamw, "muon_params": n_muon, "adamw_params": n_adamw,
          "ms": round(ms, 3)}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

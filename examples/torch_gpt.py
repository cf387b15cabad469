#!/usr/bin/env python3
"""A small character-level GPT in PyTorch trained twice on the same data and
batches: with torch.optim.AdamW, and with muon.torch.Muon (the hybrid:
Muon for the hidden matrices, AdamW for the embedding, the head and the
vectors, one learning rate for both as in the Moonlight recipe).

    PYTHONPATH=python python3 examples/torch_gpt.py [--data FILE] [--steps N] [--device cpu|cuda]
        [--offload]

Data: the file given, else ../shared/data/tinyshakespeare.txt, else the
fortunes package's texts. Prints the validation loss every 50 steps and the
time per step of each run; docs/torch.md shows a measured run.
"""

import argparse
import glob
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import muon.torch


def load_text(path):
    if path:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    here = os.path.dirname(os.path.abspath(__file__))
    shake = os.path.join(here, "..", "..", "shared", "data", "tinyshakespeare.txt")
    if os.path.exists(shake):
        with open(shake, encoding="utf-8") as f:
            return f.read()
    files = sorted(f for f in glob.glob("/usr/share/games/fortunes/*")
                   if os.path.isfile(f) and not f.endswith(".dat"))
    if not files:
        sys.exit("no data: pass --data FILE (or apt-get install fortunes)")
    return "".join(open(f, encoding="utf-8", errors="replace").read() for f in files)


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.heads = heads

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        shape = (B, T, self.heads, C // self.heads)
        q, k, v = (t.view(shape).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // self.heads)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.proj(y)
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, vocab, d, layers, heads, ctx):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(ctx, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx):
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for b in self.blocks:
            x = b(x)
        return self.lm_head(self.ln_f(x))


def batch(data, rng, n, T, device):
    ix = torch.randint(len(data) - T - 1, (n,), generator=rng)
    x = torch.stack([data[i:i + T] for i in ix])
    y = torch.stack([data[i + 1:i + T + 1] for i in ix])
    return x.to(device), y.to(device)


def run(name, args, data, val, vocab):
    torch.manual_seed(args.seed)
    model = GPT(vocab, args.dim, args.layers, args.heads, args.ctx).to(args.device)
    if name == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95),
                                weight_decay=0.1)
    else:
        opt = muon.torch.Muon(muon.torch.param_groups(model), lr=args.lr, weight_decay=0.1,
                              offload=args.offload)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / args.steps)
    rng = torch.Generator()
    rng.manual_seed(args.seed + 1)  # the same batches for both runs
    vrng = torch.Generator()
    t_step = 0.0
    for step in range(args.steps + 1):
        if step % 50 == 0 or step == args.steps:
            vrng.manual_seed(7)
            with torch.no_grad():
                vl = sum(F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()
                         for x, y in (batch(val, vrng, args.batch, args.ctx, args.device)
                                      for _ in range(8))) / 8
            print("%-6s step %4d  val loss %.4f" % (name, step, vl), flush=True)
        if step == args.steps:
            break
        x, y = batch(data, rng, args.batch, args.ctx, args.device)
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if args.device == "cuda":
            torch.cuda.synchronize()
        t_step += time.perf_counter() - t0
    print("%-6s %.1f ms per step (forward, backward, optimizer)" % (name, 1e3 * t_step / args.steps))
    return vl


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ctx", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--offload", action="store_true", help="muon.torch with offload=True")
    args = ap.parse_args()
    text = load_text(args.data)
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    cut = int(0.9 * len(ids))
    print("%d characters, vocabulary %d; torch %s on %s" % (len(ids), len(chars),
                                                            torch.__version__, args.device))
    a = run("adamw", args, ids[:cut], ids[cut:], len(chars))
    m = run("muon", args, ids[:cut], ids[cut:], len(chars))
    print("final val loss: adamw %.4f, muon %.4f" % (a, m))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch peer, figure 3: the GPT of docs/model.md, eager or under
torch.compile (--compile), trained on bytes of a text file with Muon + AdamW
(peer_common.muon_adamw: torch.optim.Muon where torch has it) or
torch.optim.AdamW alone.

Throughput (forward + backward + optimizer step, after warm-up steps):

    build/bench-venv/bin/python bench/peer_train.py --dim 128 --layers 4 \
        --heads 4 --context 128 --batch 16 --threads 2 --steps 20 \
        --optim muon --compile --data ../shared/data/tinyshakespeare.txt --json

prints one JSON line {"optim", "optimizer", "compile", "torch",
"tokens_per_s", "dim", "layers", "heads", "context", "batch", "threads",
"steps", "lr", "dtype", "final_loss"}; final_loss is the mean training loss
of the last min(10, steps) steps. The warm-up steps (--warmup-steps, default
3) also take torch.compile's compilation out of tokens_per_s.

Loss curves (--eval): every --eval-every steps (default 50) and at the end,
one line with the step, the mean training loss since the previous line and
the validation loss on --eval-batches fixed batches of the held-out tail
(the last 10% of the file's bytes; training windows come from the first
90%). With --json these are JSON objects {"step", "train_loss", "val_loss",
"lr"}, followed by the summary line (which then also has final_val_loss).
Time spent evaluating is not counted in tokens_per_s.

--dtype bf16: forward and backward run under torch.autocast("cpu",
dtype=torch.bfloat16) with fp32 master weights, gradients and optimizer
state.
"""

import argparse
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from peer_common import DTYPES, add_dtype_arg, emit, fastest_adamw, muon_adamw, set_threads

VOCAB = 256  # byte-level tokens
VAL_FRACTION = 0.1


# ---------------------------------------------------------------- model

def rmsnorm(x, gain, eps=1e-6):
    if hasattr(F, "rms_norm"):  # one fused kernel in torch >= 2.4
        return F.rms_norm(x, (x.size(-1),), gain, eps)
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * gain


def causal_attention(q, k, v, mask):
    """softmax(q k^T / sqrt(hd) + causal mask) v. torch >= 2.0 has it as one
    kernel (flash attention on CPU); torch 1.13 gets it written out."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.size(-1)))
    return att.masked_fill(mask, float("-inf")).softmax(dim=-1) @ v


def rope_tables(T, hd, base=10000.0):
    """cos, sin of angle = pos * base^(-2i/hd), shape (T, hd/2)."""
    inv = base ** (-torch.arange(0, hd // 2, dtype=torch.float64) * 2 / hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def rope(x, cos, sin):
    """Rotate-half layout: pairs (i, i + hd/2). x: (B, H, T, hd)."""
    h = x.size(-1) // 2
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class GPT(torch.nn.Module):
    """Pre-norm decoder: RMSNorm with gains, RoPE, causal softmax attention,
    ReLU^2 MLP of width 4D, untied zero-initialised head, no biases
    (docs/model.md)."""

    def __init__(self, dim, layers, heads, context, vocab=VOCAB):
        super().__init__()
        assert dim % heads == 0 and (dim // heads) % 2 == 0
        self.D, self.L, self.H, self.T, self.V = dim, layers, heads, context, vocab
        b = math.sqrt(3) * 0.5 / math.sqrt(dim)
        P = torch.nn.Parameter
        self.wte = P(torch.randn(vocab, dim))
        self.ln1 = torch.nn.ParameterList([P(torch.ones(dim)) for _ in range(layers)])
        self.ln2 = torch.nn.ParameterList([P(torch.ones(dim)) for _ in range(layers)])
        self.qkv = torch.nn.ParameterList(
            [P(torch.empty(3 * dim, dim).uniform_(-b, b)) for _ in range(layers)])
        self.attn_out = torch.nn.ParameterList([P(torch.zeros(dim, dim)) for _ in range(layers)])
        self.fc = torch.nn.ParameterList(
            [P(torch.empty(4 * dim, dim).uniform_(-b, b)) for _ in range(layers)])
        self.proj = torch.nn.ParameterList([P(torch.zeros(dim, 4 * dim)) for _ in range(layers)])
        self.lnf = P(torch.ones(dim))
        self.head = P(torch.zeros(vocab, dim))
        cos, sin = rope_tables(context, dim // heads)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        mask = torch.triu(torch.ones(context, context, dtype=torch.bool), diagonal=1)
        self.register_buffer("mask", mask, persistent=False)

    def hidden_matrices(self):
        """The parameters Muon updates (role `matrix`); the rest go to AdamW."""
        return [*self.qkv, *self.attn_out, *self.fc, *self.proj]

    def forward(self, idx, targets):
        B, T = idx.shape
        H, hd = self.H, self.D // self.H
        cos, sin, mask = self.cos[:T], self.sin[:T], self.mask[:T, :T]
        x = self.wte[idx]
        for l in range(self.L):
            h = rmsnorm(x, self.ln1[l])
            q, k, v = F.linear(h, self.qkv[l]).split(self.D, dim=-1)
            q, k, v = (t.view(B, T, H, hd).transpose(1, 2) for t in (q, k, v))
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            a = causal_attention(q, k, v, mask).transpose(1, 2).reshape(B, T, self.D)
            x = x + F.linear(a, self.attn_out[l])
            h = rmsnorm(x, self.ln2[l])
            x = x + F.linear(F.linear(h, self.fc[l]).relu().square(), self.proj[l])
        logits = F.linear(rmsnorm(x, self.lnf), self.head)
        return F.cross_entropy(logits.view(-1, self.V), targets.reshape(-1))


# ---------------------------------------------------------------- data

def load_bytes(path, context):
    with open(path, "rb") as f:
        data = np.frombuffer(f.read(), dtype=np.uint8)
    n_val = int(len(data) * VAL_FRACTION)
    train, val = data[: len(data) - n_val], data[len(data) - n_val:]
    if len(train) < context + 1 or len(val) < context + 1:
        raise ValueError(f"{path}: {len(data)} bytes is too short for context {context}")
    return torch.from_numpy(train.astype(np.int64)), torch.from_numpy(val.astype(np.int64))


def get_batch(data, batch, context, gen):
    """`batch` random windows of context + 1 bytes: inputs and next bytes."""
    ix = torch.randint(0, len(data) - context - 1, (batch,), generator=gen)
    w = torch.stack([data[i: i + context + 1] for i in ix.tolist()])
    return w[:, :-1], w[:, 1:]


# ---------------------------------------------------------------- training

def make_optimizer(model, args):
    """(optimizer, its name in the results)."""
    if args.optim == "muon":
        mats = model.hidden_matrices()
        ids = {id(p) for p in mats}
        rest = [p for p in model.parameters() if id(p) not in ids]
        return muon_adamw(mats, rest, lr=args.lr, wd=args.weight_decay,
                          ns_dtype=DTYPES[args.dtype])
    return (fastest_adamw(model.parameters(), lr=args.lr, betas=(0.9, 0.95), eps=1e-8,
                          weight_decay=args.weight_decay), "torch.optim.AdamW")


def lr_at(step, args):
    """Linear warm-up over --warmup steps, then constant or cosine to 0."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    if args.schedule == "cosine":
        frac = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * 0.5 * (1 + math.cos(math.pi * frac))
    return args.lr


def set_lr(opt, lr):
    if hasattr(opt, "set_lr"):
        opt.set_lr(lr)
    else:
        for g in opt.param_groups:
            g["lr"] = lr


@torch.no_grad()
def val_loss(model, val, args):
    gen = torch.Generator().manual_seed(args.seed + 1)  # the same batches each time
    losses = [model(*get_batch(val, args.batch, args.context, gen)).item()
              for _ in range(args.eval_batches)]
    return sum(losses) / len(losses)


def train(args):
    train_data, val_data = load_bytes(args.data, args.context)
    torch.manual_seed(args.seed)
    model = GPT(args.dim, args.layers, args.heads, args.context)
    opt, opt_name = make_optimizer(model, args)
    # the optimizer holds the parameters themselves, so the compiled module
    # (which shares them) only replaces the forward
    run = torch.compile(model) if args.compile else model
    gen = torch.Generator().manual_seed(args.seed)
    losses, since_eval, timed, timed_steps = [], [], 0.0, 0
    final_val = None
    for step in range(args.steps):
        t0 = time.perf_counter()
        x, y = get_batch(train_data, args.batch, args.context, gen)
        set_lr(opt, lr_at(step, args))
        # bfloat16: autocast, the usual mixed-precision recipe (fp32 master
        # weights, bf16 matrix products)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.dtype == "bfloat16"):
            loss = run(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        li = loss.item()
        if step >= args.warmup_steps:
            timed += time.perf_counter() - t0
            timed_steps += 1
        losses.append(li)
        since_eval.append(li)
        if args.eval and ((step + 1) % args.eval_every == 0 or step + 1 == args.steps):
            final_val = val_loss(model, val_data, args)
            emit({"step": step + 1, "train_loss": round(sum(since_eval) / len(since_eval), 5),
                  "val_loss": round(final_val, 5), "lr": lr_at(step, args)}, args.json)
            since_eval = []
    tail = losses[-min(10, len(losses)):]
    out = {"optim": args.optim, "optimizer": opt_name, "compile": args.compile,
           "torch": torch.__version__,
           "tokens_per_s": round(args.batch * args.context * timed_steps / timed, 1),
           "dim": args.dim, "layers": args.layers, "heads": args.heads,
           "context": args.context, "batch": args.batch, "threads": args.threads,
           "steps": args.steps, "lr": args.lr, "dtype": args.dtype,
           "final_loss": round(sum(tail) / len(tail), 5)}
    if final_val is not None:
        out["final_val_loss"] = round(final_val, 5)
    emit(out, args.json)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup-steps", type=int, default=3,
                    help="steps excluded from the tokens/s measurement")
    ap.add_argument("--optim", choices=["muon", "adamw"], default="muon")
    ap.add_argument("--lr", type=float, default=3e-3,
                    help="both groups (Moonlight scale makes Muon's lr AdamW-like)")
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--schedule", choices=["constant", "cosine"], default="constant")
    ap.add_argument("--warmup", type=int, default=0, help="lr warm-up steps")
    ap.add_argument("--data", required=True, help="a text file, read as bytes")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--eval", action="store_true", help="print loss curves")
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--eval-batches", type=int, default=8)
    add_dtype_arg(ap, "bfloat16: forward and backward under torch.autocast (and NS in "
                      "bfloat16 where torch has no torch.optim.Muon, which always uses it)")
    ap.add_argument("--compile", action="store_true",
                    help="run the model under torch.compile (torch >= 2.0)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if min(args.dim, args.layers, args.heads, args.context, args.batch, args.threads,
           args.eval_every, args.eval_batches) < 1:
        ap.error("sizes, --threads, --eval-every and --eval-batches must be >= 1")
    if args.dim % args.heads or (args.dim // args.heads) % 2:
        ap.error("--dim must be a multiple of --heads with an even head size")
    if args.steps <= args.warmup_steps or args.warmup_steps < 0 or args.warmup < 0:
        ap.error("--steps must exceed --warmup-steps (>= 0); --warmup >= 0")
    if args.compile and not hasattr(torch, "compile"):
        ap.error(f"--compile: torch {torch.__version__} has no torch.compile")
    set_threads(args.threads)
    try:
        train(args)
    except (OSError, ValueError) as e:
        print(f"peer_train: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

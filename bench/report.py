#!/usr/bin/python3
"""`make bench`: the project and the PyTorch peer, one after the other in the
same invocation, figure by figure (issue 4). For each figure it prints the
project's time, the peer's, their ratio and both accuracies; it writes
bench/results.json and docs/bench-results.md (with the machine's
description).

    /usr/bin/python3 bench/report.py --build build [--quick] [--threads 1,2]
        [--no-mixed] [--only FIGURE[,FIGURE...]]

Both sides get the same environment; the peer runs with /usr/bin/python3 and
Debian's python3-torch. --quick shrinks repeats for a smoke run. The issue's
figures are fp32 against fp32; after them a separate, opt-in section runs our
--precision mixed against the peer in float32 and in bfloat16 (--no-mixed
skips it). --only runs a subset of FIGURES (a quick check; it still writes
both output files, whose header names the flags).
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHAPES = ["768x768", "768x3072", "3072x768", "1024x4096"]
MODELS = [  # (label, dim, layers, heads, context, batch)
    ("default", 128, 4, 4, 128, 16),
    ("wide", 512, 8, 8, 256, 8),
]
FIGURES = ["ortho", "step"] + [f"train-{m[0]}" for m in MODELS] + ["memory", "sizing"]


def cpu_jiffies():
    """(steal, total) jiffies of all CPUs so far, from /proc/stat's first
    line (user nice system idle iowait irq softirq steal ...; guest time is
    already inside user), or None where there is no /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return (v[7] if len(v) > 7 else 0), sum(v)


def run_json(cmd, env=None):
    """Run a command and return its JSON lines (other lines are echoed).
    Each object gets steal_pct: the share of the machine's CPU time the
    hypervisor gave to other guests while the command ran (on a shared VM
    this is what makes two runs of the same figure differ)."""
    print("  $ " + " ".join(cmd), flush=True)
    j0 = cpu_jiffies()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=env)
    j1 = cpu_jiffies()
    steal = None
    if j0 and j1 and j1[1] > j0[1]:
        steal = 100.0 * (j1[0] - j0[0]) / (j1[1] - j0[1])
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"bench: command failed ({p.returncode}): {' '.join(cmd)}")
    out = []
    for line in p.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            obj = json.loads(line)
            obj.setdefault("steal_pct", steal)
            out.append(obj)
    return out


def ortho_inputs(folder, seed=42):
    """One Gaussian N(0, 1) float32 .npy per shape of figure 1, given to both
    sides with --input: a square Gaussian's smallest singular value varies a
    lot from draw to draw, and so would the error of two different draws."""
    rng = np.random.default_rng(seed)
    paths = {}
    for sh in SHAPES:
        rows, cols = (int(v) for v in sh.split("x"))
        paths[sh] = os.path.join(folder, f"G{sh}.npy")
        np.save(paths[sh], rng.standard_normal((rows, cols), dtype=np.float32))
    return paths


def ortho_rounds(muon, py, env, inputs, t, rep, rounds, ours_extra=(), peer_extra=()):
    """Figure 1's two sides alternated rounds times, shape by shape (so the
    two sides of a shape run seconds apart), both on the same matrix (the
    .npy of inputs[shape]): (ours, peer) JSON rows."""
    ours, peer = [], []
    for _ in range(rounds):
        for sh in SHAPES:
            ours += run_json([muon, "bench", "ortho", "--input", inputs[sh], "--coeffs",
                              "polar-express", "--steps", "5", "--threads", str(t), "--repeats",
                              rep, "--json", *ours_extra], env)
            peer += run_json([py, os.path.join(HERE, "peer_ortho.py"), "--input", inputs[sh],
                              "--steps", "5", "--threads", str(t), "--repeats", rep, "--json",
                              *peer_extra], env)
    return ours, peer


def best_of(runs, key, higher=False):
    """The run with the best value of key (lowest time or highest rate)."""
    pick = max if higher else min
    return pick(runs, key=lambda r: r[key])


def step_rounds(muon, py, env, t, rep, rounds, ours_extra=(), peer_extra=()):
    """Figure 2's two sides alternated rounds times: (ours, peer) JSON rows."""
    ours, peer = [], []
    for _ in range(rounds):
        ours += run_json([muon, "bench", "step", "--model", "gpt2-small", "--threads", str(t),
                          "--repeats", rep, "--json", *ours_extra], env)
        peer += run_json([py, os.path.join(HERE, "peer_step.py"), "--model", "gpt2-small",
                          "--threads", str(t), "--repeats", rep, "--warmup", "1", "--json",
                          *peer_extra], env)
    return ours, peer


def train_rounds(muon, py, env, model, t, steps, data, rounds, ours_extra=(), peer_extra=()):
    """Figure 3's two sides alternated rounds times, the peer once per
    optimizer ours reported: (ours, peer) JSON rows. The wide model's rounds
    are shorter (a step takes seconds), so its total stays one long run."""
    label, d, l, h, tt, b = model
    if label != "default":
        steps = str(max(3, int(steps) // rounds))
    shape = ["--dim", str(d), "--layers", str(l), "--heads", str(h), "--context", str(tt),
             "--batch", str(b), "--threads", str(t), "--steps", steps]
    ours, peer = [], []
    for _ in range(rounds):
        got = run_json([muon, "bench", "train", *shape, "--json", *ours_extra], env)
        ours += got
        for o in got:
            peer += run_json([py, os.path.join(HERE, "peer_train.py"), *shape, "--optim",
                              o["optim"], "--data", data, "--json", *peer_extra], env)[-1:]
    return ours, peer


def best_per(runs, field, value, key, higher=False):
    """best_of over the runs whose field equals value."""
    return best_of([x for x in runs if x[field] == value], key, higher)


def machine():
    info = {"platform": platform.platform(), "python": platform.python_version()}
    try:
        lscpu = subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True).stdout
        for line in lscpu.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU(s)", "L2 cache", "L3 cache"):
                info[k.strip()] = v.strip()
        info["avx512"] = "avx512f" in lscpu
        info["amx"] = "amx_tile" in lscpu
    except OSError:
        pass
    # the kernels OpenBLAS runs: what it detects, unless the environment
    # names a core (on some machines it must, for correct results)
    info["openblas_coretype"] = os.environ.get("OPENBLAS_CORETYPE") or "detected"
    try:
        import torch
        info["torch"] = torch.__version__
        cfg = torch.__config__.show()
        info["torch_blas"] = [t.strip(", ") for t in cfg.split()
                              if t.startswith(("BLAS_INFO=", "USE_MKLDNN="))]
    except Exception as e:  # noqa: BLE001 - describe what failed
        info["torch"] = f"unavailable: {e}"
    try:
        ob = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libopenblas0-pthread"],
                            stdout=subprocess.PIPE, text=True).stdout
        info["openblas"] = ob or "unknown"
    except OSError:
        info["openblas"] = "unknown"
    return info


def ratio(peer, ours):
    return peer / ours if ours and peer else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=None,
                    help="alternating runs of ours and the peer for figures 1-3 and their "
                         "mixed rows (shape by shape for figure 1; the wide model's rounds "
                         "are shorter), each side's best kept (default 2; 1 with --quick)")
    ap.add_argument("--data", default=None, help="text file for the peer's training data")
    ap.add_argument("--no-mixed", action="store_true",
                    help="skip the mixed-precision section (ours --precision mixed against "
                         "the peer in float32 and in bfloat16)")
    ap.add_argument("--only", default=None, metavar="FIGURE[,FIGURE...]",
                    help="run only these figures (and their mixed rows): "
                         + ", ".join(FIGURES))
    args = ap.parse_args()
    args.figures = args.only.split(",") if args.only else FIGURES
    unknown = [f for f in args.figures if f not in FIGURES]
    if unknown:
        ap.error(f"--only: unknown figure(s) {', '.join(unknown)}; choose from "
                 + ", ".join(FIGURES))
    muon = os.path.join(args.build, "muon")
    py = sys.executable
    threads = [int(t) for t in args.threads.split(",")]
    env = dict(os.environ)
    if "OMP_WAIT_POLICY" not in env and "GOMP_SPINCOUNT" not in env:
        env["GOMP_SPINCOUNT"] = "1000"  # what build/muon uses; the peer gets the same
    data = args.data
    for cand in [os.path.join(ROOT, "..", "shared", "data", "tinyshakespeare.txt"),
                 "/usr/share/games/fortunes/cookie"]:
        if data is None and os.path.exists(cand):
            data = cand
    rep_o, rep_s, steps_t = ("3", "2", "6") if args.quick else ("10", "3", "12")
    if args.rounds is None:
        args.rounds = 1 if args.quick else 2
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")

    res = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "rounds": args.rounds,
           "machine": machine(), "ortho": [], "step": [], "train": [], "sgemm": [],
           "memory": [], "sizing": [], "mixed": {"ortho": [], "step": [], "train": []}}
    print("machine:", json.dumps(res["machine"]), flush=True)

    # both sides orthogonalize the very same matrices, so their errors compare
    tmp = tempfile.TemporaryDirectory(prefix="muon-bench-")
    inputs = ortho_inputs(tmp.name) if "ortho" in args.figures else {}
    for t in threads if "ortho" in args.figures else []:
        print(f"\n== orthogonalization, polar-express, 5 steps, {t} thread(s)", flush=True)
        # alternate the two sides, keep each side's best
        ours_runs, peer_runs = ortho_rounds(muon, py, env, inputs, t, rep_o, args.rounds)
        ours = [best_per(ours_runs, "shape", s, "ms") for s in SHAPES]
        peer = [best_per(peer_runs, "shape", s, "ms") for s in SHAPES]
        sg = run_json([muon, "bench", "sgemm", "--shape", ",".join(SHAPES), "--threads",
                       str(t), "--json"], env)
        res["sgemm"] += sg
        for o in ours:
            p = next(x for x in peer if x["shape"] == o["shape"])
            r_, c_ = (int(v) for v in o["shape"].split("x"))
            mn, mx = min(r_, c_), max(r_, c_)
            # the GEMMs NS itself runs for this shape, X X^T and B X, through
            # the faster library
            rates = [x["gflops"] for x in sg
                     if (x.get("kind") == "gram" and x["m"] == mn and x["k"] == mx)
                     or (x.get("kind") == "apply" and x["m"] == mn and x["n"] == mx)]
            sgemm_rate = max(rates) if rates else None
            row = {"shape": o["shape"], "threads": t, "method": o["method"],
                   "ms": o["ms"], "peer_ms": p["ms"], "speedup": ratio(p["ms"], o["ms"]),
                   "ortho_err": o["ortho_err"], "peer_ortho_err": p["ortho_err"],
                   "gflops": o["gflops"], "sgemm_gflops": sgemm_rate,
                   "sgemm_fraction": o["gflops"] / sgemm_rate if sgemm_rate else None,
                   "steal_pct": o["steal_pct"], "peer_steal_pct": p["steal_pct"]}
            res["ortho"].append(row)
            print(f"  {o['shape']:>10} ours {o['ms']:8.1f} ms ({o['method']}, err "
                  f"{o['ortho_err']:.3f})  torch {p['ms']:8.1f} ms (err {p['ortho_err']:.3f})"
                  f"  ratio {row['speedup']:.2f}x  "
                  f"{o['gflops']:.0f} GFLOP/s = {100 * (row['sgemm_fraction'] or 0):.0f}% "
                  f"of SGEMM", flush=True)

    for t in threads if "step" in args.figures else []:
        print(f"\n== optimizer step, GPT-2 small shapes, {t} thread(s)", flush=True)
        # alternate the two sides, keep each side's best
        ours_runs, peer_runs = step_rounds(muon, py, env, t, rep_s, args.rounds)
        o, p = best_of(ours_runs, "ms"), best_of(peer_runs, "ms")
        row = {"threads": t, "ms": o["ms"], "peer_ms": p["ms"],
               "speedup": ratio(p["ms"], o["ms"]), "params": o["params"],
               "steal_pct": o["steal_pct"], "peer_steal_pct": p["steal_pct"]}
        res["step"].append(row)
        print(f"  ours {o['ms']:.0f} ms  torch {p['ms']:.0f} ms  ratio {row['speedup']:.2f}x",
              flush=True)

    for model in trained_models(args):
        label, d, l, h, tt, b = model
        for t in threads:
            print(f"\n== training {label} (d={d} L={l} T={tt} B={b}), {t} thread(s)",
                  flush=True)
            ours_runs, peer_runs = train_rounds(muon, py, env, model, t, steps_t, data,
                                                args.rounds)
            for optim in ("adamw", "muon"):
                o = best_per(ours_runs, "optim", optim, "tokens_per_s", higher=True)
                p = best_per(peer_runs, "optim", optim, "tokens_per_s", higher=True)
                row = {"model": label, "dim": d, "layers": l, "context": tt, "batch": b,
                       "threads": t, "optim": o["optim"], "tokens_per_s": o["tokens_per_s"],
                       "peer_tokens_per_s": p["tokens_per_s"],
                       "speedup": ratio(o["tokens_per_s"], p["tokens_per_s"]),
                       "fwd_ms": o["fwd_ms"], "bwd_ms": o["bwd_ms"], "opt_ms": o["opt_ms"],
                       "steal_pct": o["steal_pct"], "peer_steal_pct": p["steal_pct"]}
                res["train"].append(row)
                print(f"  {o['optim']:>5} ours {o['tokens_per_s']:8.0f} tok/s  torch "
                      f"{p['tokens_per_s']:8.0f} tok/s  ratio {row['speedup']:.2f}x", flush=True)

    if not args.no_mixed:
        mixed_section(res, args, muon, py, env, threads, data, rep_o, rep_s, steps_t, inputs)

    if "memory" in args.figures:
        print("\n== peak memory of a training run (one optimizer per process)", flush=True)
    for label, d, l, h, tt, b in MODELS if "memory" in args.figures else []:
        for optim in ("adamw", "muon"):
            o = run_json([muon, "bench", "train", "--dim", str(d), "--layers", str(l),
                          "--heads", str(h), "--context", str(tt), "--batch", str(b),
                          "--steps", "4", "--optim", optim, "--json"], env)[0]
            res["memory"].append({"model": label, "optim": optim,
                                  "peak_rss_bytes": o["peak_rss_bytes"],
                                  "accounted_bytes": o["accounted_bytes"],
                                  "ratio": o["rss_ratio"]})
            print(f"  {label:>7} {optim:>5}: peak {o['peak_rss_bytes'] / 2**20:.1f} MiB, "
                  f"accounted {o['accounted_bytes'] / 2**20:.1f} MiB, "
                  f"ratio {o['rss_ratio']:.2f}", flush=True)

    if "sizing" in args.figures:
        print("\n== sizing table", flush=True)
        sz = ["--widths", "256,384,512,768,1024"] if args.quick else []
        res["sizing"] = run_json([muon, "bench", "sizing", "--threads", str(max(threads)),
                                  "--json"] + sz, env)

    with open(os.path.join(HERE, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    write_markdown(res, os.path.join(ROOT, "docs", "bench-results.md"), args)
    print("\nwrote bench/results.json and docs/bench-results.md")


def trained_models(args):
    return [m for m in MODELS if f"train-{m[0]}" in args.figures]


def mixed_section(res, args, muon, py, env, threads, data, rep_o, rep_s, steps_t, inputs):
    """Ours with --precision mixed against the peer in float32 (the rows
    above) and in bfloat16 (reference NS in bfloat16; training under
    torch.autocast)."""
    mx = res["mixed"]
    for t in threads if "ortho" in args.figures else []:
        print(f"\n== mixed precision: orthogonalization, {t} thread(s)", flush=True)
        ours_runs, peer_runs = ortho_rounds(muon, py, env, inputs, t, rep_o, args.rounds,
                                            ["--precision", "mixed"], ["--dtype", "bfloat16"])
        for sh in SHAPES:
            o, p16 = best_per(ours_runs, "shape", sh, "ms"), best_per(peer_runs, "shape", sh, "ms")
            p32 = next(x for x in res["ortho"] if x["shape"] == o["shape"] and x["threads"] == t)
            row = {"shape": o["shape"], "threads": t, "method": o["method"], "ms": o["ms"],
                   "ortho_err": o["ortho_err"], "fp32_ms": p32["ms"],
                   "peer_fp32_ms": p32["peer_ms"], "peer_fp32_err": p32["peer_ortho_err"],
                   "peer_bf16_ms": p16["ms"], "peer_bf16_err": p16["ortho_err"],
                   "vs_peer_fp32": ratio(p32["peer_ms"], o["ms"]),
                   "vs_peer_bf16": ratio(p16["ms"], o["ms"])}
            mx["ortho"].append(row)
            print(f"  {o['shape']:>10} ours mixed {o['ms']:8.1f} ms (err {o['ortho_err']:.4f})  "
                  f"torch fp32 {p32['peer_ms']:8.1f} ms  torch bf16 {p16['ms']:8.1f} ms (err "
                  f"{p16['ortho_err']:.4f})  ratios {row['vs_peer_fp32']:.2f}x / "
                  f"{row['vs_peer_bf16']:.2f}x", flush=True)
    for t in threads if "step" in args.figures else []:
        print(f"\n== mixed precision: optimizer step, GPT-2 small shapes, {t} thread(s)",
              flush=True)
        ours_runs, peer_runs = step_rounds(muon, py, env, t, rep_s, args.rounds,
                                           ["--precision", "mixed"], ["--dtype", "bfloat16"])
        o, p16 = best_of(ours_runs, "ms"), best_of(peer_runs, "ms")
        p32 = next(x for x in res["step"] if x["threads"] == t)
        row = {"threads": t, "ms": o["ms"], "fp32_ms": p32["ms"], "peer_fp32_ms": p32["peer_ms"],
               "peer_bf16_ms": p16["ms"], "vs_peer_fp32": ratio(p32["peer_ms"], o["ms"]),
               "vs_peer_bf16": ratio(p16["ms"], o["ms"])}
        mx["step"].append(row)
        print(f"  ours mixed {o['ms']:.0f} ms  torch fp32 {p32['peer_ms']:.0f} ms  torch bf16 "
              f"{p16['ms']:.0f} ms  ratios {row['vs_peer_fp32']:.2f}x / "
              f"{row['vs_peer_bf16']:.2f}x", flush=True)
    for model in trained_models(args):
        label, d, l, h, tt, b = model
        for t in threads:
            print(f"\n== mixed precision: training {label}, {t} thread(s)", flush=True)
            ours_runs, peer_runs = train_rounds(muon, py, env, model, t, steps_t, data,
                                                args.rounds, ["--precision", "mixed"],
                                                ["--dtype", "bfloat16"])
            for optim in ("adamw", "muon"):
                o = best_per(ours_runs, "optim", optim, "tokens_per_s", higher=True)
                p16 = best_per(peer_runs, "optim", optim, "tokens_per_s", higher=True)
                p32 = next(x for x in res["train"] if x["model"] == label
                           and x["threads"] == t and x["optim"] == o["optim"])
                row = {"model": label, "dim": d, "layers": l, "context": tt, "batch": b,
                       "threads": t, "optim": o["optim"], "tokens_per_s": o["tokens_per_s"],
                       "fp32_tokens_per_s": p32["tokens_per_s"],
                       "peer_fp32_tokens_per_s": p32["peer_tokens_per_s"],
                       "peer_bf16_tokens_per_s": p16["tokens_per_s"],
                       "vs_peer_fp32": ratio(o["tokens_per_s"], p32["peer_tokens_per_s"]),
                       "vs_peer_bf16": ratio(o["tokens_per_s"], p16["tokens_per_s"])}
                mx["train"].append(row)
                print(f"  {o['optim']:>5} ours mixed {o['tokens_per_s']:8.0f} tok/s  torch fp32 "
                      f"{p32['peer_tokens_per_s']:8.0f}  torch bf16 {p16['tokens_per_s']:8.0f}"
                      f"  ratios {row['vs_peer_fp32']:.2f}x / {row['vs_peer_bf16']:.2f}x",
                      flush=True)


def fmt(x, nd=2):
    return "-" if x is None else f"{x:.{nd}f}"


def steal(row):
    return f"{fmt(row.get('steal_pct'), 0)} / {fmt(row.get('peer_steal_pct'), 0)}"


def write_markdown(res, path, args):
    m = res["machine"]
    L = [f"# Benchmark results ({res['date']})", "",
         "Made by `make bench` (`/usr/bin/python3 bench/report.py "
         + " ".join(shlex.quote(a) for a in sys.argv[1:]) + "`). Machine: "
         f"{m.get('Model name', '?')}, {m.get('CPU(s)', '?')} cores, L2 {m.get('L2 cache', '?')}, "
         f"AVX-512 {'yes' if m.get('avx512') else 'no'}, AMX {'yes' if m.get('amx') else 'no'}; "
         f"OpenBLAS {m.get('openblas')} (core: {m.get('openblas_coretype', '?')}); "
         f"peer: PyTorch {m.get('torch')} (`{'; '.join(m.get('torch_blas', []))}`).", "",
         f"Figures 1 to 3 and their rows in section 7: {res.get('rounds', 1)} alternating "
         "round(s) of ours and the peer, each side's best kept; in figure 1 both sides "
         "orthogonalize the same Gaussian matrix per shape (`--input`). Steal: the share of the "
         "machine's CPU time the hypervisor gave to other guests during that run (from "
         "/proc/stat); a figure measured under steal is slower than the machine can do.", "",
         "## 1. Orthogonalization (polar-express, 5 steps, float32)", "",
         "| shape | threads | ours (method) | PyTorch plain NS | ratio | ortho err ours / torch "
         "| GFLOP/s | % of SGEMM | steal % ours / torch |",
         "|---|---|---|---|---|---|---|---|---|"]
    for r in res["ortho"]:
        L.append(f"| {r['shape']} | {r['threads']} | {r['ms']:.1f} ms ({r['method']}) | "
                 f"{r['peer_ms']:.1f} ms | {fmt(r['speedup'])}x | {r['ortho_err']:.4f} / "
                 f"{r['peer_ortho_err']:.4f} | {r['gflops']:.0f} | "
                 f"{fmt(100 * r['sgemm_fraction'] if r['sgemm_fraction'] else None, 0)}% | "
                 f"{steal(r)} |")
    L += ["", "## 2. Optimizer step, GPT-2 small shapes (hybrid Muon + AdamW)", "",
          "| threads | ours | PyTorch | ratio | steal % ours / torch |", "|---|---|---|---|---|"]
    for r in res["step"]:
        L.append(f"| {r['threads']} | {r['ms']:.0f} ms | {r['peer_ms']:.0f} ms | "
                 f"{fmt(r['speedup'])}x | {steal(r)} |")
    L += ["", "## 3. Training throughput (forward + backward + step)", "",
          "| model | threads | optimizer | ours tokens/s | PyTorch tokens/s | ratio | "
          "ours fwd / bwd / opt ms | steal % ours / torch |", "|---|---|---|---|---|---|---|---|"]
    for r in res["train"]:
        L.append(f"| {r['model']} (d={r['dim']}, L={r['layers']}, T={r['context']}, "
                 f"B={r['batch']}) | {r['threads']} | {r['optim']} | {r['tokens_per_s']:.0f} | "
                 f"{r['peer_tokens_per_s']:.0f} | {fmt(r['speedup'])}x | "
                 f"{r['fwd_ms']:.1f} / {r['bwd_ms']:.1f} / {r['opt_ms']:.1f} | {steal(r)} |")
    L += ["", "## 4. The machine's SGEMM rate", "",
          "Both libraries the project calls; the % of SGEMM in section 1 is against the "
          "faster of the two for the shape's products.", "",
          "| kind | m x n x k | library | threads | GFLOP/s |", "|---|---|---|---|---|"]
    for r in res["sgemm"]:
        L.append(f"| {r.get('kind')} | {r.get('m')} x {r.get('n')} x {r.get('k')} | "
                 f"{r.get('lib', 'openblas')} | {r['threads']} | {r['gflops']:.0f} |")
    L += ["", "## 5. Peak memory of a training run", "",
          "| model | optimizer | peak RSS | params + grads + state + activations | ratio |",
          "|---|---|---|---|---|"]
    for r in res["memory"]:
        L.append(f"| {r['model']} | {r['optim']} | {r['peak_rss_bytes'] / 2**20:.1f} MiB | "
                 f"{r['accounted_bytes'] / 2**20:.1f} MiB | {r['ratio']:.2f} |")
    L += ["", "## 6. Sizing: GFLOP/s against model width", ""]
    if res["sizing"]:
        keys = [k for k in res["sizing"][0] if k not in ("bench", "threads", "tokens")]
        L.append("| " + " | ".join(keys) + " |")
        L.append("|" + "---|" * len(keys))
        for r in res["sizing"]:
            L.append("| " + " | ".join(fmt(r[k], 1) if isinstance(r[k], float) else str(r[k])
                                       for k in keys) + " |")
    L += mixed_markdown(res.get("mixed"))
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")


def md_table(header, rows):
    """A markdown table (with a blank line before it); nothing without rows."""
    if not rows:
        return []
    return (["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(r) + " |" for r in rows])


def mixed_markdown(mx):
    if not mx or not (mx["ortho"] or mx["step"] or mx["train"]):
        return []
    L = ["", "## 7. Mixed precision (opt-in `--precision mixed`)", "",
         "Not the issue's fp32 comparison: ours with bf16 operands (fp32 accumulation) "
         "against the peer in float32 (the rows above) and in bfloat16 (the reference NS in "
         "bfloat16; training under `torch.autocast`). Ratios are speed-ups as above (> 1: "
         "ours faster). Training rows are throughput only: the loss parity of mixed training "
         "is measured separately by the maintainers (docs/model.md, \"Precision\", linked "
         "from the README)."]
    vs = ["vs fp32 peer", "vs bf16 peer"]
    L += md_table(["shape", "threads", "ours mixed (err)", "ours fp32", "PyTorch fp32 (err)",
                   "PyTorch bf16 (err)"] + vs,
                  [[r["shape"], str(r["threads"]), f"{r['ms']:.1f} ms ({r['ortho_err']:.4f})",
                    f"{r['fp32_ms']:.1f} ms",
                    f"{r['peer_fp32_ms']:.1f} ms ({r['peer_fp32_err']:.4f})",
                    f"{r['peer_bf16_ms']:.1f} ms ({r['peer_bf16_err']:.4f})",
                    f"{fmt(r['vs_peer_fp32'])}x", f"{fmt(r['vs_peer_bf16'])}x"]
                   for r in mx["ortho"]])
    L += md_table(["optimizer step", "threads", "ours mixed", "ours fp32", "PyTorch fp32",
                   "PyTorch bf16 NS"] + vs,
                  [["GPT-2 small", str(r["threads"]), f"{r['ms']:.0f} ms", f"{r['fp32_ms']:.0f} ms",
                    f"{r['peer_fp32_ms']:.0f} ms", f"{r['peer_bf16_ms']:.0f} ms",
                    f"{fmt(r['vs_peer_fp32'])}x", f"{fmt(r['vs_peer_bf16'])}x"]
                   for r in mx["step"]])
    L += md_table(["model", "threads", "optimizer", "ours mixed tokens/s", "ours fp32",
                   "PyTorch fp32", "PyTorch autocast bf16"] + vs,
                  [[f"{r['model']} (d={r['dim']}, L={r['layers']}, T={r['context']}, "
                    f"B={r['batch']})", str(r["threads"]), r["optim"], f"{r['tokens_per_s']:.0f}",
                    f"{r['fp32_tokens_per_s']:.0f}", f"{r['peer_fp32_tokens_per_s']:.0f}",
                    f"{r['peer_bf16_tokens_per_s']:.0f}", f"{fmt(r['vs_peer_fp32'])}x",
                    f"{fmt(r['vs_peer_bf16'])}x"] for r in mx["train"]])
    return L


if __name__ == "__main__":
    main()

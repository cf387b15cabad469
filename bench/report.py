#!/usr/bin/env python3
"""`make bench`: the project against the best PyTorch a user can install
(pip's torch, from the virtual environment bench/run.sh keeps under the build
directory), figure by figure (issue 15). For each figure it prints the
project's figure, the peer's, their ratio and both accuracies; it writes
bench/results.json and docs/bench-results.md with the machine's description,
the peer's torch version and the issue's targets, met or not.

    build/bench-venv/bin/python bench/report.py --build build \\
        --peer-python build/bench-venv/bin/python [--debian-python /usr/bin/python3]
        [--quick] [--threads 1,2] [--rounds N] [--no-mixed] [--amx-off auto|yes|no]
        [--only FIGURE[,FIGURE...]]

Ours and the peer alternate --rounds times and each side's best is kept, so a
burst of load from elsewhere on the machine does not decide a ratio. The
peer runs in the user's environment less OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE (pins some machines need for the system OpenBLAS, which
pip's torch does not use); the project keeps them. --debian-python adds
Debian's python3-torch as a secondary row of figures 1 and 2.
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
PEER_UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# oneDNN and MKL stop at AVX-512 (with BF16 instructions): AMX switched off
NO_AMX_ENV = {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16", "MKL_ENABLE_INSTRUCTIONS": "AVX512"}
TARGETS = {"ortho": 2.5, "fastest": 2.0, "step": 2.5, "train": 2.0, "gemm_fraction": 0.85}
ERR_TOL = 1e-4  # errors are compared as printed, to 4 decimals


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


def run_json(cmd, env):
    """Run a command and return its JSON lines. Each object gets steal_pct:
    the share of the machine's CPU time the hypervisor gave to other guests
    while the command ran (on a shared VM this is what makes two runs of the
    same figure differ)."""
    print("  $ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    j0 = cpu_jiffies()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
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


class Sides:
    """The commands and environments of the two sides (and of Debian's torch,
    the optional secondary peer). extra_env is added to every side's
    environment: the AMX-off section sets it."""

    def __init__(self, args):
        self.muon = os.path.join(args.build, "muon")
        self.peer_py = args.peer_python
        self.debian_py = args.debian_python
        self.mixed = not args.no_mixed
        self.rounds = args.rounds
        base = dict(os.environ)
        if "OMP_WAIT_POLICY" not in base and "GOMP_SPINCOUNT" not in base:
            base["GOMP_SPINCOUNT"] = "1000"  # what build/muon sets for itself anyway
        self.ours_env = base
        # Debian's torch does its fp32 products in the system OpenBLAS, the
        # library the pins are there for: it keeps the project's environment
        self.debian_env = base
        self.peer_env = {k: v for k, v in os.environ.items() if k not in PEER_UNSET}
        self.extra_env = {}

    def ours(self, args):
        return run_json([self.muon, "bench", *args, "--json"],
                        {**self.ours_env, **self.extra_env})

    def peer(self, script, args):
        return run_json([self.peer_py, os.path.join(HERE, script), *args, "--json"],
                        {**self.peer_env, **self.extra_env})

    def debian(self, script, args):
        return run_json([self.debian_py, os.path.join(HERE, script), *args, "--json"],
                        {**self.debian_env, **self.extra_env})


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


def best(runs, key, higher=False, **match):
    """The run with the best value of key (lowest time or highest rate)
    among those whose fields equal match; None if there is none."""
    runs = [r for r in runs if all(r.get(k) == v for k, v in match.items())]
    if not runs:
        return None
    return (max if higher else min)(runs, key=lambda r: r[key])


def ratio(slow, fast):
    return slow / fast if slow and fast else None


def gemm_rates(sides, t):
    """The GEMMs of NS for every shape, as the project's libraries and as the
    peer's torch run them (fp32, and bf16 for torch)."""
    ours = sides.ours(["sgemm", "--shape", ",".join(SHAPES), "--threads", str(t)])
    for r in ours:
        r["dtype"] = "float32"
    peer = sides.peer("peer_gemm.py", [a for sh in SHAPES for a in ("--shape", sh)]
                      + ["--threads", str(t)])
    return ours + peer


def best_rates(rates):
    """Each product's best rate over the rounds."""
    out = {}
    for r in rates:
        key = (r["kind"], r["m"], r["n"], r["k"], r.get("lib"), r["dtype"])
        if key not in out or r["gflops"] > out[key]["gflops"]:
            out[key] = r
    return list(out.values())


def best_gemm(rates, shape, dtype):
    """The fastest of the two products NS runs for shape (X X^T and B X) in
    dtype, over every library measured: the rate that precision can reach."""
    r_, c_ = (int(v) for v in shape.split("x"))
    mn, mx = min(r_, c_), max(r_, c_)
    got = [x["gflops"] for x in rates if x.get("dtype") == dtype and x["m"] == mn
           and ((x["kind"] == "gram" and x["k"] == mx) or (x["kind"] == "apply" and x["n"] == mx))]
    return max(got) if got else None


def ortho_figure(sides, t, inputs, rep):
    """Figure 1 at t threads, each shape's runs seconds apart: ours fp32 and
    --precision mixed, the peer's NS in float32 and bfloat16 (and Debian's in
    float32). Returns (fp32 rows, fastest-setting rows, GEMM rates)."""
    runs = {k: [] for k in ("ours", "mixed", "peer", "peer16", "debian")}
    common = ["--steps", "5", "--threads", str(t), "--repeats", rep]
    rates = []
    for _ in range(sides.rounds):
        rates += gemm_rates(sides, t)
        for sh in SHAPES:
            src = ["--input", inputs[sh]]
            runs["ours"] += sides.ours(["ortho", *src, "--coeffs", "polar-express", *common,
                                        "--precision", "fp32"])
            if sides.mixed:
                runs["mixed"] += sides.ours(["ortho", *src, "--coeffs", "polar-express",
                                             *common, "--precision", "mixed"])
            runs["peer"] += sides.peer("peer_ortho.py", [*src, *common])
            if sides.mixed:
                runs["peer16"] += sides.peer("peer_ortho.py", [*src, *common,
                                                               "--dtype", "bfloat16"])
            if sides.debian_py:
                runs["debian"] += sides.debian("peer_ortho.py", [*src, *common])
    rates = best_rates(rates)
    rows, fastest = [], []
    for sh in SHAPES:
        o, p = best(runs["ours"], "ms", shape=sh), best(runs["peer"], "ms", shape=sh)
        d = best(runs["debian"], "ms", shape=sh)
        rate32 = best_gemm(rates, sh, "float32")
        row = {"shape": sh, "threads": t, "method": o["method"], "ms": o["ms"],
               "ortho_err": o["ortho_err"], "peer_ms": p["ms"], "peer_ortho_err": p["ortho_err"],
               "speedup": ratio(p["ms"], o["ms"]), "gflops": o["gflops"],
               "peer_gflops": p["gflops"], "gemm_gflops": rate32,
               "gemm_fraction": ratio(o["gflops"], rate32),
               "debian_ms": d["ms"] if d else None,
               "debian_ortho_err": d["ortho_err"] if d else None,
               "steal_pct": o["steal_pct"], "peer_steal_pct": p["steal_pct"]}
        rows.append(row)
        print(f"  {sh:>10} fp32: ours {o['ms']:8.1f} ms ({o['method']}, err "
              f"{o['ortho_err']:.4f})  torch {p['ms']:8.1f} ms (err {p['ortho_err']:.4f})  "
              f"ratio {row['speedup']:.2f}x  {o['gflops']:.0f} GFLOP/s = "
              f"{100 * (row['gemm_fraction'] or 0):.0f}% of the best fp32 GEMM", flush=True)
        if not sides.mixed:
            continue
        m, p16 = best(runs["mixed"], "ms", shape=sh), best(runs["peer16"], "ms", shape=sh)
        f, prec = (m, "mixed") if m["ms"] < o["ms"] else (o, "fp32")
        rate = best_gemm(rates, sh, "bfloat16" if prec == "mixed" else "float32")
        frow = {"shape": sh, "threads": t, "precision": prec, "method": f["method"],
                "ms": f["ms"], "ortho_err": f["ortho_err"], "fp32_ms": o["ms"],
                "mixed_ms": m["ms"], "mixed_err": m["ortho_err"],
                "peer_bf16_ms": p16["ms"], "peer_bf16_err": p16["ortho_err"],
                "peer_fp32_err": p["ortho_err"], "speedup": ratio(p16["ms"], f["ms"]),
                "gflops": f["gflops"], "gemm_gflops": rate,
                "gemm_fraction": ratio(f["gflops"], rate),
                "steal_pct": f["steal_pct"], "peer_steal_pct": p16["steal_pct"]}
        fastest.append(frow)
        print(f"  {sh:>10} fastest: ours {prec} {f['ms']:8.1f} ms (err {f['ortho_err']:.4f})  "
              f"torch bf16 {p16['ms']:8.1f} ms (err {p16['ortho_err']:.4f})  ratio "
              f"{frow['speedup']:.2f}x", flush=True)
    return rows, fastest, rates


def step_figure(sides, t, rep):
    """Figure 2 at t threads: ours (defaults, i.e. precision auto, and
    --precision fp32 and mixed) against torch.optim.Muon + AdamW (and
    Debian's hybrid Muon), alternated."""
    runs = {k: [] for k in ("ours", "fp32", "mixed", "peer", "debian")}
    common = ["--model", "gpt2-small", "--threads", str(t), "--repeats", rep]
    for _ in range(sides.rounds):
        runs["ours"] += sides.ours(["step", *common])
        runs["fp32"] += sides.ours(["step", *common, "--precision", "fp32"])
        if sides.mixed:
            runs["mixed"] += sides.ours(["step", *common, "--precision", "mixed"])
        runs["peer"] += sides.peer("peer_step.py", [*common, "--warmup", "1"])
        if sides.debian_py:
            runs["debian"] += sides.debian("peer_step.py", [*common, "--warmup", "1"])
    o, p = best(runs["ours"], "ms"), best(runs["peer"], "ms")
    m, d = best(runs["mixed"], "ms"), best(runs["debian"], "ms")
    f = best(runs["fp32"], "ms")
    row = {"threads": t, "ms": o["ms"], "peer_ms": p["ms"], "peer_optimizer": p["optimizer"],
           "precision": o.get("precision"), "fp32_ms": f["ms"],
           "fp32_speedup": ratio(p["ms"], f["ms"]),
           "speedup": ratio(p["ms"], o["ms"]), "params": o["params"],
           "mixed_ms": m["ms"] if m else None, "mixed_speedup": ratio(p["ms"], m and m["ms"]),
           "debian_ms": d["ms"] if d else None,
           "steal_pct": o["steal_pct"], "peer_steal_pct": p["steal_pct"]}
    print(f"  ours {o['ms']:.0f} ms  {p['optimizer']} {p['ms']:.0f} ms  ratio "
          f"{row['speedup']:.2f}x" + (f"  (ours mixed {m['ms']:.0f} ms)" if m else ""),
          flush=True)
    return row


def train_figure(sides, model, t, steps, data):
    """Figure 3 for one model at t threads, alternated: ours (both optimizers,
    defaults and mixed) against the peer's model under torch.compile (Muon
    and AdamW), eager (Muon) and compiled under autocast bf16 (Muon, beside
    our mixed)."""
    label, d, l, h, tt, b = model
    if label != "default":  # a step takes seconds: the rounds share the steps
        steps = str(max(5, int(steps) // sides.rounds))
    shape = ["--dim", str(d), "--layers", str(l), "--heads", str(h), "--context", str(tt),
             "--batch", str(b), "--threads", str(t), "--steps", steps]
    peer_runs = [("compiled", ["--optim", "muon", "--compile"]),
                 ("eager", ["--optim", "muon"]),
                 ("compiled", ["--optim", "adamw", "--compile"])]
    if sides.mixed:
        peer_runs.append(("bf16", ["--optim", "muon", "--compile", "--dtype", "bfloat16"]))
    ours, fp32, mixed, peer = [], [], [], []
    for _ in range(sides.rounds):
        ours += sides.ours(["train", *shape])
        fp32 += sides.ours(["train", *shape, "--precision", "fp32"])
        if sides.mixed:
            mixed += sides.ours(["train", *shape, "--precision", "mixed"])
        for kind, flags in peer_runs:
            for r in sides.peer("peer_train.py", [*shape, *flags, "--data", data])[-1:]:
                r["kind"] = kind
                peer.append(r)
    rows = []
    for optim in ("adamw", "muon"):
        o = best(ours, "tokens_per_s", True, optim=optim)
        pc = best(peer, "tokens_per_s", True, optim=optim, kind="compiled")
        pe = best(peer, "tokens_per_s", True, optim=optim, kind="eager")
        p16 = best(peer, "tokens_per_s", True, optim=optim, kind="bf16")
        m = best(mixed, "tokens_per_s", True, optim=optim)
        f = best(fp32, "tokens_per_s", True, optim=optim)
        get = lambda r: r["tokens_per_s"] if r else None  # noqa: E731
        row = {"model": label, "dim": d, "layers": l, "context": tt, "batch": b, "threads": t,
               "optim": optim, "tokens_per_s": o["tokens_per_s"],
               "precision": o.get("precision"), "fp32_tokens_per_s": get(f),
               "fp32_speedup": ratio(get(f), get(pc)),
               "peer_optimizer": pc["optimizer"], "peer_compiled_tokens_per_s": get(pc),
               "peer_eager_tokens_per_s": get(pe), "speedup": ratio(get(o), get(pc)),
               "mixed_tokens_per_s": get(m), "peer_bf16_tokens_per_s": get(p16),
               "mixed_speedup": ratio(get(m), get(p16)),
               "fwd_ms": o["fwd_ms"], "bwd_ms": o["bwd_ms"], "opt_ms": o["opt_ms"],
               "final_loss": pc["final_loss"],
               "steal_pct": o["steal_pct"], "peer_steal_pct": pc["steal_pct"]}
        rows.append(row)
        print(f"  {optim:>5} ours {o['tokens_per_s']:8.0f} tok/s  torch.compile "
              f"{pc['tokens_per_s']:8.0f}" + (f"  eager {pe['tokens_per_s']:8.0f}" if pe else "")
              + f"  ratio {row['speedup']:.2f}x", flush=True)
    return rows


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def torch_info(python, env):
    """The version and back ends of the torch a peer interpreter imports."""
    code = ("import json, torch, numpy; c = torch.__config__.show(); print(json.dumps({"
            "'torch': torch.__version__, 'numpy': numpy.__version__, "
            "'cpu_capability': torch.backends.cpu.get_cpu_capability() "
            "if hasattr(torch.backends.cpu, 'get_cpu_capability') else None, "
            "'blas': [t.strip(', ') for t in c.split() if t.startswith('BLAS_INFO=')], "
            "'onednn': [l.strip(' -') for l in c.splitlines() if 'MKL-DNN' in l], "
            "'muon': hasattr(torch.optim, 'Muon')}))")
    p = subprocess.run([python, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, env=env)
    if p.returncode != 0:
        return {"python": python, "error": p.stderr.strip().splitlines()[-1:]}
    return {"python": python, **json.loads(p.stdout)}


def machine(sides):
    info = {"platform": platform.platform()}
    try:
        lscpu = subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True).stdout
        for line in lscpu.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU family", "Model", "CPU(s)",
                             "Thread(s) per core", "L2 cache", "L3 cache",
                             "Hypervisor vendor"):
                info[k.strip()] = v.strip()
    except OSError:
        pass
    flags = cpu_flags()
    for name in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16"):
        info[name] = name in flags
    info["amx"] = info["amx_tile"] and info["amx_bf16"]
    # the kernels the system OpenBLAS (the project's, Debian torch's) runs
    info["openblas_coretype"] = os.environ.get("OPENBLAS_CORETYPE") or "detected"
    info["openblas_l2_size"] = os.environ.get("OPENBLAS_L2_SIZE")
    try:
        ob = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libopenblas0-pthread"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
        info["openblas"] = ob or "unknown"
    except OSError:
        info["openblas"] = "unknown"
    info["peer"] = torch_info(sides.peer_py, sides.peer_env)
    if sides.debian_py:
        info["debian_peer"] = torch_info(sides.debian_py, sides.debian_env)
    return info


def targets(res, t):
    """The issue's targets at t threads: (what, ours, peer, ratio (or share
    of the GEMM rate, as a percentage), target, met) rows."""
    out = []
    for r in (x for x in res["ortho"] if x["threads"] == t):
        ok = r["speedup"] >= TARGETS["ortho"] and r["ortho_err"] <= r["peer_ortho_err"] + ERR_TOL
        out.append((f"ortho {r['shape']} fp32 vs torch fp32 NS",
                    f"{r['ms']:.1f} ms (err {r['ortho_err']:.4f})",
                    f"{r['peer_ms']:.1f} ms (err {r['peer_ortho_err']:.4f})",
                    fmt(r["speedup"]), f">= {TARGETS['ortho']}x, err no worse", ok))
    for r in (x for x in res["ortho_fastest"] if x["threads"] == t):
        ok = (r["speedup"] >= TARGETS["fastest"]
              and r["ortho_err"] <= r["peer_fp32_err"] + ERR_TOL)
        out.append((f"ortho {r['shape']} fastest ({r['precision']}) vs torch bf16 NS",
                    f"{r['ms']:.1f} ms (err {r['ortho_err']:.4f})",
                    f"{r['peer_bf16_ms']:.1f} ms (err {r['peer_bf16_err']:.4f})",
                    fmt(r["speedup"]), f">= {TARGETS['fastest']}x, err <= torch fp32's", ok))
    for r in (x for x in res["step"] if x["threads"] == t):
        out.append(("step, GPT-2 small shapes", f"{r['ms'] / 1e3:.2f} s",
                    f"{r['peer_ms'] / 1e3:.2f} s ({r['peer_optimizer']} + AdamW)",
                    fmt(r["speedup"]), f">= {TARGETS['step']}x", r["speedup"] >= TARGETS["step"]))
    for r in (x for x in res["train"] if x["threads"] == t and x["optim"] == "muon"):
        out.append((f"training {r['model']} (d={r['dim']} L={r['layers']} T={r['context']} "
                    f"B={r['batch']}), Muon, tok/s", f"{r['tokens_per_s']:.0f}",
                    f"{r['peer_compiled_tokens_per_s']:.0f} (torch.compile)", fmt(r["speedup"]),
                    f">= {TARGETS['train']}x", r["speedup"] >= TARGETS["train"]))
    mixed = [x for x in res["ortho_fastest"] if x["precision"] == "mixed"]
    for r in (x for x in res["ortho"] + mixed if x["threads"] == t):
        prec = r.get("precision", "fp32")
        frac = r["gemm_fraction"]
        out.append((f"ortho {r['shape']} {prec}: executed GFLOP/s of best GEMM",
                    f"{r['gflops']:.0f} GFLOP/s", f"{r['gemm_gflops']:.0f} GFLOP/s (GEMM)",
                    pct(frac), f">= {TARGETS['gemm_fraction']:.0%}",
                    frac is not None and frac >= TARGETS["gemm_fraction"]))
    return out


def print_targets(rows, t):
    print(f"\n== the issue's targets at {t} thread(s)")
    for what, ours, peer, r, target, ok in rows:
        print(f"  {what:<58} ours {ours:<22} peer {peer:<34} {r:>6}  {target:<26} "
              f"{'met' if ok else 'MISSED'}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--peer-python", default=sys.executable,
                    help="interpreter with pip's torch (bench/run.sh: BUILD/bench-venv)")
    ap.add_argument("--debian-python", default=None,
                    help="an interpreter with Debian's python3-torch: secondary rows")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--quick", action="store_true", help="fewer repeats and steps")
    ap.add_argument("--rounds", type=int, default=None,
                    help="alternating runs of ours and the peer for figures 1-3, each side's "
                         "best kept (default 2; 1 with --quick)")
    ap.add_argument("--data", default=None, help="text file for the peer's training data")
    ap.add_argument("--no-mixed", action="store_true",
                    help="skip ours --precision mixed and the peer's bfloat16 runs")
    ap.add_argument("--amx-off", choices=["auto", "yes", "no"], default="auto",
                    help="also run figures 1 and 2 with AMX switched off on both sides "
                         "(auto: where the CPU has AMX)")
    ap.add_argument("--only", default=None, metavar="FIGURE[,FIGURE...]",
                    help="run only these figures: " + ", ".join(FIGURES))
    args = ap.parse_args()
    figures = args.only.split(",") if args.only else FIGURES
    unknown = [f for f in figures if f not in FIGURES]
    if unknown:
        ap.error(f"--only: unknown figure(s) {', '.join(unknown)}; choose from "
                 + ", ".join(FIGURES))
    if args.rounds is None:
        args.rounds = 1 if args.quick else 2
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")
    threads = [int(t) for t in args.threads.split(",")]
    data = args.data
    for cand in [os.path.join(ROOT, "..", "shared", "data", "tinyshakespeare.txt"),
                 "/usr/share/games/fortunes/cookie"]:
        if data is None and os.path.exists(cand):
            data = cand
    rep_o, rep_s, steps_t = ("3", "2", "8") if args.quick else ("10", "3", "12")
    sides = Sides(args)

    res = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
           "command": " ".join(shlex.quote(a) for a in sys.argv[1:]),
           "rounds": args.rounds, "machine": machine(sides), "targets": TARGETS,
           "ortho": [], "ortho_fastest": [], "gemm": [], "step": [], "train": [],
           "memory": [], "sizing": [], "no_amx": None}
    print("machine:", json.dumps(res["machine"]), flush=True)
    if "error" in res["machine"]["peer"]:
        raise SystemExit(f"bench: the peer's torch does not import: {res['machine']['peer']}")

    tmp = tempfile.TemporaryDirectory(prefix="muon-bench-")
    inputs = ortho_inputs(tmp.name)
    for t in threads if "ortho" in figures else []:
        print(f"\n== orthogonalization, polar-express, 5 steps, {t} thread(s)", flush=True)
        rows, fastest, rates = ortho_figure(sides, t, inputs, rep_o)
        res["ortho"] += rows
        res["ortho_fastest"] += fastest
        res["gemm"] += rates
    for t in threads if "step" in figures else []:
        print(f"\n== optimizer step, GPT-2 small shapes, {t} thread(s)", flush=True)
        res["step"].append(step_figure(sides, t, rep_s))
    for model in (m for m in MODELS if f"train-{m[0]}" in figures):
        for t in threads:
            label, d, l, h, tt, b = model
            print(f"\n== training {label} (d={d} L={l} T={tt} B={b}), {t} thread(s)", flush=True)
            res["train"] += train_figure(sides, model, t, steps_t, data)

    has_amx = res["machine"]["amx"]
    if args.amx_off == "yes" or (args.amx_off == "auto" and has_amx):
        t = max(threads)
        print(f"\n== AMX switched off on both sides ({NO_AMX_ENV}), {t} thread(s)", flush=True)
        sides.extra_env = NO_AMX_ENV
        no_amx = {"env": NO_AMX_ENV, "threads": t, "ortho": [], "ortho_fastest": [],
                  "gemm": [], "step": []}
        if "ortho" in figures:
            no_amx["ortho"], no_amx["ortho_fastest"], no_amx["gemm"] = ortho_figure(
                sides, t, inputs, rep_o)
        if "step" in figures:
            no_amx["step"].append(step_figure(sides, t, rep_s))
        sides.extra_env = {}
        res["no_amx"] = no_amx

    if "memory" in figures:
        print("\n== peak memory of a training run (one optimizer per process)", flush=True)
    for label, d, l, h, tt, b in MODELS if "memory" in figures else []:
        for optim in ("adamw", "muon"):
            o = sides.ours(["train", "--dim", str(d), "--layers", str(l), "--heads", str(h),
                            "--context", str(tt), "--batch", str(b), "--steps", "4",
                            "--optim", optim])[0]
            res["memory"].append({"model": label, "optim": optim,
                                  "peak_rss_bytes": o["peak_rss_bytes"],
                                  "accounted_bytes": o["accounted_bytes"],
                                  "ratio": o["rss_ratio"]})
            print(f"  {label:>7} {optim:>5}: peak {o['peak_rss_bytes'] / 2**20:.1f} MiB, "
                  f"accounted {o['accounted_bytes'] / 2**20:.1f} MiB, "
                  f"ratio {o['rss_ratio']:.2f}", flush=True)
    if "sizing" in figures:
        print("\n== sizing table", flush=True)
        sz = ["--widths", "256,384,512,768,1024"] if args.quick else []
        res["sizing"] = sides.ours(["sizing", "--threads", str(max(threads))] + sz)

    res["target_rows"] = {str(t): targets(res, t) for t in threads}
    with open(os.path.join(HERE, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    write_markdown(res, os.path.join(ROOT, "docs", "bench-results.md"))
    for t in threads:
        print_targets(res["target_rows"][str(t)], t)
    print("\nwrote bench/results.json and docs/bench-results.md")


# ---------------------------------------------------------------- markdown

def fmt(x, nd=2, unit="x"):
    return "-" if x is None else f"{x:.{nd}f}{unit}"


def num(x, nd=0):
    return "-" if x is None else f"{x:.{nd}f}"


def steal(row):
    return f"{num(row.get('steal_pct'))} / {num(row.get('peer_steal_pct'))}"


def pct(x):
    return "-" if x is None else f"{100 * x:.0f}%"


def md_table(header, rows):
    """A markdown table (with a blank line before it); nothing without rows."""
    if not rows:
        return []
    return (["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def describe_machine(m):
    feats = [n for n, k in (("AVX2", "avx2"), ("AVX-512", "avx512f"),
                            ("AVX512-BF16", "avx512_bf16"), ("AMX", "amx")) if m.get(k)]
    missing = [n for n, k in (("AVX512-BF16", "avx512_bf16"), ("AMX", "amx")) if not m.get(k)]
    p = m["peer"]
    text = (f"{m.get('Model name', '?')} (family {m.get('CPU family', '?')}, "
            f"model {m.get('Model', '?')}), {m.get('CPU(s)', '?')} cores"
            f"{' (' + m['Hypervisor vendor'] + ' guest)' if m.get('Hypervisor vendor') else ''}, "
            f"L2 {m.get('L2 cache', '?')}, L3 {m.get('L3 cache', '?')}; "
            f"{', '.join(feats)}{'; no ' + ', no '.join(missing) if missing else ''}. "
            f"Project: OpenBLAS {m.get('openblas')} (core: {m.get('openblas_coretype')}) "
            f"and oneDNN. Peer: pip's torch {p.get('torch')} (numpy {p.get('numpy')}; "
            f"`{' '.join(p.get('blas', []))}`, {'; '.join(p.get('onednn', []))}; "
            f"CPU capability {p.get('cpu_capability')}) from `{p.get('python')}`")
    dp = m.get("debian_peer")
    if dp:
        text += f"; secondary: Debian's torch {dp.get('torch', dp.get('error'))}"
    return text + "."


def write_markdown(res, path):
    m = res["machine"]
    t_max = max([r["threads"] for r in res["ortho"] + res["step"] + res["train"]] or [0])
    L = [f"# Benchmark results ({res['date']})", "",
         f"Made by `make bench` (`bench/report.py {res['command']}`). Machine: "
         + describe_machine(m), "",
         f"{res['rounds']} alternating round(s) of ours and the peer per figure, each side's "
         "best kept; in figure 1 both sides orthogonalize the same Gaussian matrix per shape "
         "(`--input`). The peer runs without `OPENBLAS_CORETYPE` / `OPENBLAS_L2_SIZE`; the "
         "project with the environment as given. Steal: the share of the machine's CPU time "
         "the hypervisor gave to other guests during that run (from /proc/stat). Ratios: "
         "> 1 means ours is faster."]
    if t_max:
        L += ["", f"## The issue's targets ({t_max} threads)"]
        L += md_table(["figure", "ours", "peer", "ratio", "target", "met"],
                      [[w, o, p, r, tg, "yes" if ok else "**no**"]
                       for w, o, p, r, tg, ok in res["target_rows"][str(t_max)]])
    L += ["", "## 1. Orthogonalization, float32 (polar-express, 5 steps)"]
    L += ortho_markdown(res["ortho"])
    L += ["", "## 2. Orthogonalization, fastest setting against torch's bfloat16 NS", "",
          "Ours: the faster of fp32 and `--precision mixed` (bf16 operands, fp32 "
          "accumulation, last steps in fp32). Peer: the same NS in bfloat16, "
          "torch.optim.Muon's precision. The error target is torch's fp32 error."]
    L += fastest_markdown(res["ortho_fastest"])
    L += ["", "## 3. Optimizer step, GPT-2 small shapes",
          "", "Ours: `muon bench step` at its defaults (precision auto), with `--precision "
          "fp32` and with `--precision mixed`. Peer: "
          "`torch.optim.Muon(adjust_lr_fn=\"match_rms_adamw\")` over the 48 hidden matrices "
          "(its NS in bfloat16, coefficients (3.4445, -4.775, 2.0315)) and fused "
          "`torch.optim.AdamW` over the rest; Debian's torch 1.13 (no torch.optim.Muon) steps "
          "the written-out hybrid Muon, fp32 NS."]
    L += step_markdown(res["step"])
    L += ["", "## 4. Training throughput (forward + backward + step)", "",
          "Ours: `muon bench train` at its defaults (precision auto), with `--precision fp32` "
          "and with `--precision mixed`. Peer: "
          "the same model (docs/model.md) under `torch.compile` and eager; under "
          "`torch.autocast` bf16 + `torch.compile` beside our mixed. Tokens/s."]
    L += md_table(["model", "threads", "optimizer", "ours (auto)", "torch.compile", "ratio",
                   "ours fp32", "ratio", "torch eager", "ours mixed",
                   "torch compile + autocast bf16",
                   "ours fwd / bwd / opt ms", "steal % ours / torch"],
                  [[f"{r['model']} (d={r['dim']}, L={r['layers']}, T={r['context']}, "
                    f"B={r['batch']})", r["threads"], r["optim"], num(r["tokens_per_s"]),
                    num(r["peer_compiled_tokens_per_s"]), fmt(r["speedup"]),
                    num(r.get("fp32_tokens_per_s")), fmt(r.get("fp32_speedup")),
                    num(r["peer_eager_tokens_per_s"]), num(r["mixed_tokens_per_s"]),
                    num(r["peer_bf16_tokens_per_s"]),
                    f"{r['fwd_ms']:.1f} / {r['bwd_ms']:.1f} / {r['opt_ms']:.1f}", steal(r)]
                   for r in res["train"]])
    L += ["", "## 5. GEMM rates (the products of one NS step)", "",
          "The project's two libraries (fp32) and the peer's torch (fp32 and bf16); "
          "\"of best GEMM\" above is against the fastest of these for the shape and precision."]
    L += gemm_markdown(res["gemm"])
    L += ["", "## 6. Peak memory of a training run (ours)"]
    L += md_table(["model", "optimizer", "peak RSS", "params + grads + state + activations",
                   "ratio"],
                  [[r["model"], r["optim"], f"{r['peak_rss_bytes'] / 2**20:.1f} MiB",
                    f"{r['accounted_bytes'] / 2**20:.1f} MiB", f"{r['ratio']:.2f}"]
                   for r in res["memory"]])
    L += ["", "## 7. Sizing: GFLOP/s against model width (ours)"]
    if res["sizing"]:
        keys = [k for k in res["sizing"][0] if k not in ("bench", "threads", "tokens")]
        L += md_table(keys, [[num(r[k], 1) if isinstance(r[k], float) else r[k] for k in keys]
                             for r in res["sizing"]])
    na = res["no_amx"]
    L += ["", "## 8. AMX switched off"]
    if na is None:
        L += ["", "Not run: " + ("this CPU has no AMX." if not m.get("amx") else
                                 "`--amx-off no`.")]
    else:
        L += ["", f"Both sides with {', '.join(f'`{k}={v}`' for k, v in na['env'].items())}, "
              f"{na['threads']} threads."]
        L += ortho_markdown(na["ortho"])
        L += fastest_markdown(na["ortho_fastest"])
        L += step_markdown(na["step"])
        L += gemm_markdown(na["gemm"])
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")


def ortho_markdown(rows):
    return md_table(["shape", "threads", "ours (method)", "torch fp32 NS", "ratio",
                     "ortho err ours / torch", "Debian torch 1.13", "ours GFLOP/s executed",
                     "of best fp32 GEMM", "steal % ours / torch"],
                    [[r["shape"], r["threads"], f"{r['ms']:.1f} ms ({r['method']})",
                      f"{r['peer_ms']:.1f} ms", fmt(r["speedup"]),
                      f"{r['ortho_err']:.4f} / {r['peer_ortho_err']:.4f}",
                      "-" if r["debian_ms"] is None else f"{r['debian_ms']:.1f} ms",
                      num(r["gflops"]), pct(r["gemm_fraction"]), steal(r)] for r in rows])


def fastest_markdown(rows):
    return md_table(["shape", "threads", "ours fastest (err)", "ours fp32 / mixed",
                     "torch bf16 (err)", "ratio", "torch fp32 err", "GFLOP/s executed",
                     "of best GEMM", "steal % ours / torch"],
                    [[r["shape"], r["threads"],
                      f"{r['ms']:.1f} ms, {r['precision']} ({r['ortho_err']:.4f})",
                      f"{r['fp32_ms']:.1f} / {r['mixed_ms']:.1f} ms",
                      f"{r['peer_bf16_ms']:.1f} ms ({r['peer_bf16_err']:.4f})",
                      fmt(r["speedup"]), f"{r['peer_fp32_err']:.4f}", num(r["gflops"]),
                      pct(r["gemm_fraction"]), steal(r)] for r in rows])


def step_markdown(rows):
    return md_table(["threads", "ours (auto)", "torch.optim.Muon + AdamW", "ratio", "ours fp32",
                     "ratio", "ours mixed", "ratio", "Debian torch 1.13", "steal % ours / torch"],
                    [[r["threads"], f"{r['ms']:.0f} ms", f"{r['peer_ms']:.0f} ms",
                      fmt(r["speedup"]),
                      num(r.get("fp32_ms")) + (" ms" if r.get("fp32_ms") else ""),
                      fmt(r.get("fp32_speedup")),
                      num(r["mixed_ms"]) + (" ms" if r["mixed_ms"] else ""),
                      fmt(r["mixed_speedup"]),
                      "-" if r["debian_ms"] is None else f"{r['debian_ms']:.0f} ms", steal(r)]
                     for r in rows])


def gemm_markdown(rates):
    return md_table(["kind", "m x n x k", "library", "dtype", "threads", "GFLOP/s"],
                    [[r["kind"], f"{r['m']} x {r['n']} x {r['k']}", r.get("lib"), r["dtype"],
                      r["threads"], num(r["gflops"])] for r in rates])


if __name__ == "__main__":
    main()

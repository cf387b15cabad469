"""Tests of muon.torch.Muon (python/muon/torch.py): against the numpy binding
(the same C code, so bit for bit), against torch.optim.Muon's formula
written out in float64 here (and against torch.optim.Muon itself where the
installed torch has it), state_dict round trips, offload, and bad input.
A plain script like tests/test_python.py:

    PYTHONPATH=python MUON_LIB=build/libmuon.so python3 tests/test_torch.py [NAME...]

It runs with Debian's python3-torch (1.13) and with pip's torch; the GPU
cases skip without CUDA.
"""

import copy
import io
import math
import sys

import numpy as np
import torch

import muon
import muon.torch as mt

import pyharness
from pyharness import Skip, expect_raises, test


def gen(k):
    g = torch.Generator()
    g.manual_seed(20241204 + k)
    return g


def randn(g, *shape):
    return torch.randn(*shape, generator=g, dtype=torch.float32)


def same_bits(a, b, what):
    if not torch.equal(a, b):
        d = (a.double() - b.double()).abs().max().item()
        raise AssertionError("%s: not bit-identical (max |diff| %.3g)" % (what, d))


# --------------------------------------------------- torch.optim.Muon's formula

KELLER = (3.4445, -4.7750, 2.0315)


def ns_keller_f64(x, steps=5, eps=1e-7):
    """torch.optim.Muon's _zeropower_via_newtonschulz, in float64."""
    x = np.asarray(x, np.float64)
    a, b, c = KELLER
    t = x.shape[0] > x.shape[1]
    if t:
        x = x.T
    x = x / max(np.linalg.norm(x), eps)
    for _ in range(steps):
        A = x @ x.T
        B = b * A + c * (A @ A)
        x = a * x + B @ x
    return x.T if t else x


def torch_muon_ref(w, grads, lr, wd, mu, nesterov, adjust):
    """torch.optim.Muon's update (EMA momentum buffer, lerp Nesterov, NS,
    decoupled weight decay, adjusted lr) in float64 over a gradient list."""
    w = np.asarray(w, np.float64).copy()
    buf = np.zeros_like(w)
    A, B = w.shape
    ratio = {"original": math.sqrt(max(1, A / B)), "match_rms_adamw": 0.2 * math.sqrt(max(A, B))}
    for g in grads:
        g = np.asarray(g, np.float64)
        buf = buf + (1 - mu) * (g - buf)              # buf.lerp_(grad, 1 - mu)
        upd = g + mu * (buf - g) if nesterov else buf  # grad.lerp(buf, mu)
        o = ns_keller_f64(upd)
        w = w * (1 - lr * wd) - lr * ratio[adjust] * o
    return w, buf


# Derived tolerance for fp32 against the float64 formula. Each NS step does
# three products with inner dimension at most n, each within n u |A||B|
# (u = 2^-24, Higham's gamma_n); a perturbation entering at step k is carried
# through the later steps, each of which multiplies it by at most
# L = max |p'(s)| of the Keller polynomial on [0, 1.2], 3.9. Relative to
# the update's size that gives 3 n u (1 + L + ... + L^4) per orthogonalization;
# the momentum and weight-decay arithmetic add a few u, and errors of earlier
# steps move the weights by at most the same relative amount each step.
def fp32_ns_tol(n, steps=5, updates=1):
    u, L = 2.0 ** -24, 3.9
    return updates * (3 * n * u * sum(L ** k for k in range(steps)) + 8 * u)


@test
def formula_equals_torch_optim_muon_in_float64():
    r = gen(1)
    for shape in [(32, 48), (48, 32), (40, 40)]:
        for scale, adjust in [("keller", "original"), ("moonlight", "match_rms_adamw")]:
            for nesterov in (True, False):
                for method in ("ns", "auto"):
                    w0 = randn(r, *shape) * 0.1
                    grads = [randn(r, *shape) for _ in range(3)]
                    p = torch.nn.Parameter(w0.clone())
                    opt = mt.Muon([p], lr=0.05, momentum=0.9, nesterov=nesterov,
                                  weight_decay=0.1, scale=scale, coeffs="keller", steps=5,
                                  method=method, precision="fp32", threads=1)
                    for g in grads:
                        p.grad = g.clone()
                        opt.step()
                    want, buf = torch_muon_ref(w0.numpy(), [g.numpy() for g in grads], 0.05, 0.1,
                                               0.9, nesterov, adjust)
                    moved = np.linalg.norm(want - w0.numpy().astype(np.float64))
                    diff = np.linalg.norm(p.detach().numpy().astype(np.float64) - want)
                    tol = fp32_ns_tol(max(shape), updates=3)
                    assert diff <= tol * moved, (shape, scale, nesterov, method, diff / moved, tol)
                    # the sum-form momentum is the EMA buffer over (1 - mu)
                    m = opt.state[p]["momentum_buffer"].numpy().astype(np.float64)
                    assert np.allclose(m * (1 - 0.9), buf, rtol=1e-5, atol=1e-6 * np.abs(buf).max())


@test
def torch_optim_muon_itself_matches_with_its_ns_in_float64():
    """torch.optim.Muon's own code (momentum, Nesterov, weight decay, lr
    adjustment) with its Newton-Schulz function swapped for the same
    polynomial in float64, so the comparison holds to fp32's tolerance."""
    if not hasattr(torch.optim, "Muon"):
        raise Skip("torch %s has no torch.optim.Muon (added in 2.9)" % torch.__version__)
    import torch.optim._muon as tm
    if not hasattr(tm, "_zeropower_via_newtonschulz"):
        raise Skip("torch.optim._muon has no _zeropower_via_newtonschulz to swap")
    orig = tm._zeropower_via_newtonschulz

    def ns64(grad, coeffs, steps, eps):
        assert tuple(coeffs) == KELLER or np.allclose(coeffs, KELLER)
        return torch.from_numpy(ns_keller_f64(grad.double().numpy(), steps, eps)).to(grad.dtype)

    r = gen(2)
    tm._zeropower_via_newtonschulz = ns64
    try:
        for shape in [(24, 40), (40, 24)]:
            for scale, adjust in [("keller", "original"), ("moonlight", "match_rms_adamw")]:
                w0 = randn(r, *shape) * 0.1
                grads = [randn(r, *shape) for _ in range(3)]
                a = torch.nn.Parameter(w0.clone())
                b = torch.nn.Parameter(w0.clone())
                ours = mt.Muon([a], lr=0.05, momentum=0.95, weight_decay=0.1, scale=scale,
                               coeffs="keller", precision="fp32", threads=1)
                theirs = torch.optim.Muon([b], lr=0.05, momentum=0.95, weight_decay=0.1,
                                          adjust_lr_fn=adjust)
                for g in grads:
                    a.grad, b.grad = g.clone(), g.clone()
                    ours.step()
                    theirs.step()
                moved = (b.detach().double() - w0.double()).norm().item()
                diff = (a.detach().double() - b.detach().double()).norm().item()
                assert diff <= fp32_ns_tol(max(shape), updates=3) * moved, (shape, scale,
                                                                            diff / moved)
    finally:
        tm._zeropower_via_newtonschulz = orig


# ---------------------------------------------------------- against the library

def tiny_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Embedding(40, 16), torch.nn.Linear(16, 24),
                               torch.nn.GELU(), torch.nn.Linear(24, 40))


def batch_loss(model, x):
    return torch.nn.functional.cross_entropy(model(x), x)


@test
def equals_the_numpy_binding_bit_for_bit():
    """Same C optimizer, same inputs: the same bits, AdamW and Muon groups,
    with the learning rate changed by a scheduler between steps."""
    model = tiny_model()
    ref = [p.detach().numpy().copy() for p in model.parameters()]
    roles = ["embedding", "matrix", "vector", "matrix", "vector"]
    opt = mt.Muon(model.parameters(), lr=0.02, threads=1, roles=roles,
                  names=["wte", "fc", "fc.b", "head", "head.b"])
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    nopt = muon.Muon(ref, lr=0.02, roles=roles, threads=1)
    x = torch.randint(0, 40, (32,), generator=gen(3))
    for step in range(5):
        opt.zero_grad()
        batch_loss(model, x).backward()
        grads = [p.grad.numpy().copy() for p in model.parameters()]
        opt.step()
        nopt.step(grads, lr_mult=0.5 ** (step // 2))
        sched.step()
        for p, q in zip(model.parameters(), ref):
            same_bits(p.detach(), torch.from_numpy(q), "step %d" % step)


@test
def expert_stack_is_each_matrix_on_its_own():
    r = gen(4)
    w = randn(r, 4, 16, 24) * 0.1
    g = randn(r, 4, 16, 24)
    stack = torch.nn.Parameter(w.clone())
    singles = [torch.nn.Parameter(w[e].clone()) for e in range(4)]
    a = mt.Muon([stack], lr=0.02, precision="fp32", threads=1)
    b = mt.Muon(singles, lr=0.02, precision="fp32", threads=1)
    stack.grad = g.clone()
    for e in range(4):
        singles[e].grad = g[e].clone()
    a.step()
    b.step()
    for e in range(4):
        same_bits(stack.detach()[e], singles[e].detach(), "expert %d" % e)
    assert not torch.equal(stack.detach(), w)


@test
def params_without_grad_stay_and_closure_runs():
    model = tiny_model(1)
    opt = mt.Muon(mt.param_groups(model), lr=0.02, threads=1)
    x = torch.randint(0, 40, (16,), generator=gen(5))
    head = list(model.parameters())[3]
    head.requires_grad_(False)
    before = head.detach().clone()
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = batch_loss(model, x)
        loss.backward()
        return loss

    first = list(model.parameters())[1].detach().clone()
    loss = opt.step(closure)
    assert calls == [1] and isinstance(loss, torch.Tensor)
    same_bits(head.detach(), before, "frozen head")
    assert not torch.equal(list(model.parameters())[1].detach(), first)
    assert head not in opt.state or opt.state_dict()["state"]


@test
def nonfinite_grad_is_refused_and_the_rest_step():
    r = gen(6)
    a = torch.nn.Parameter(randn(r, 8, 12))
    b = torch.nn.Parameter(randn(r, 12))
    opt = mt.Muon([a, b], lr=0.02, threads=1)
    a0, b0 = a.detach().clone(), b.detach().clone()
    a.grad = randn(r, 8, 12)
    a.grad[3, 4] = float("nan")
    b.grad = randn(r, 12)
    e = expect_raises(muon.MuonError, opt.step, contains="non-finite")
    assert e.name == "MUON_ERR_NONFINITE"
    same_bits(a.detach(), a0, "refused param")
    assert not torch.equal(b.detach(), b0)
    assert opt.state[a]["momentum_buffer"].abs().max().item() == 0


# -------------------------------------------------------------- state_dict

@test
def state_dict_round_trip_resumes_bit_for_bit():
    x = torch.randint(0, 40, (32,), generator=gen(7))
    model = tiny_model(2)
    opt = mt.Muon(mt.param_groups(model), lr=0.02, threads=1)
    for _ in range(3):
        opt.zero_grad()
        batch_loss(model, x).backward()
        opt.step()
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
    saved = copy.deepcopy(opt.state_dict())
    for k, v in saved["state"].items():
        assert "step" in v and float(v["step"]) == 3.0, v.keys()
    # a fresh model and optimizer, loaded
    model2 = tiny_model(99)
    opt2 = mt.Muon(mt.param_groups(model2), lr=0.5, threads=1)  # lr comes from the state
    buf.seek(0)
    ck = torch.load(buf)
    model2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["opt"])
    assert opt2.param_groups[0]["lr"] == 0.02
    for _ in range(3):
        for m, o in ((model, opt), (model2, opt2)):
            o.zero_grad()
            batch_loss(m, x).backward()
            o.step()
    for p, q in zip(model.parameters(), model2.parameters()):
        same_bits(p.detach(), q.detach(), "resumed")


@test
def bad_state_dict_changes_nothing():
    model = tiny_model(3)
    opt = mt.Muon(mt.param_groups(model), lr=0.02, threads=1)
    x = torch.randint(0, 40, (16,), generator=gen(8))
    opt.zero_grad()
    batch_loss(model, x).backward()
    opt.step()
    good = copy.deepcopy(opt.state_dict())
    snapshot = copy.deepcopy(opt.state_dict())

    def tweak(fn):
        sd = copy.deepcopy(good)
        fn(sd)
        return sd

    first = next(iter(good["state"]))
    bad = [
        tweak(lambda sd: sd["param_groups"].pop()),
        tweak(lambda sd: sd["param_groups"][0]["params"].pop()),
        tweak(lambda sd: sd["state"][first].update(momentum_buffer=torch.zeros(3))),
        tweak(lambda sd: sd["state"][first]["momentum_buffer"].fill_(float("inf"))),
        tweak(lambda sd: sd["param_groups"][0].update(momentum=-2.0)),
        tweak(lambda sd: sd.pop("libmuon")),
        {"state": {}},
    ]
    for sd in bad:
        expect_raises(ValueError, lambda: opt.load_state_dict(sd))
        now = opt.state_dict()
        for k in snapshot["state"]:
            for n, v in snapshot["state"][k].items():
                same_bits(now["state"][k][n], v, "state %s %s after a refused load" % (k, n))
        assert now["param_groups"][0]["momentum"] == snapshot["param_groups"][0]["momentum"]


@test
def option_change_keeps_the_state():
    r = gen(9)
    p = torch.nn.Parameter(randn(r, 16, 16))
    opt = mt.Muon([p], lr=0.02, threads=1)
    p.grad = randn(r, 16, 16)
    opt.step()
    m = opt.state[p]["momentum_buffer"].clone()
    opt.param_groups[0]["weight_decay"] = 0.0
    opt.param_groups[0]["momentum"] = 0.5
    w = p.detach().clone()
    g = randn(r, 16, 16)
    p.grad = g.clone()
    opt.step()
    # the new step used the carried momentum: M = 0.5 M + G
    same_bits(opt.state[p]["momentum_buffer"], (0.5 * m + g), "carried momentum")
    assert not torch.equal(p.detach(), w)


# ----------------------------------------------------------------- offload

@test
def offload_on_the_cpu_equals_the_direct_update():
    x = torch.randint(0, 40, (32,), generator=gen(10))
    a, b = tiny_model(4), tiny_model(4)
    oa = mt.Muon(mt.param_groups(a), lr=0.02, threads=1)
    ob = mt.Muon(mt.param_groups(b), lr=0.02, threads=1, offload=True, offload_chunk=300)
    assert any(len(e[1].chunks) > 1 for e in [ob._engine(i, g) and ob._engines[i]
                                               for i, g in enumerate(ob.param_groups)])
    for _ in range(3):
        for m, o in ((a, oa), (b, ob)):
            o.zero_grad()
            batch_loss(m, x).backward()
            o.step()
    for p, q in zip(a.parameters(), b.parameters()):
        same_bits(p.detach(), q.detach(), "offloaded")


@test
def offload_keeps_fp32_masters_for_bf16_params():
    r = gen(11)
    w = randn(r, 24, 16) * 0.1
    ref = torch.nn.Parameter(w.clone())
    low = torch.nn.Parameter(w.clone().to(torch.bfloat16))
    oa = mt.Muon([ref], lr=0.01, threads=1)
    ob = mt.Muon([low], lr=0.01, threads=1, offload=True)
    for _ in range(4):
        g = randn(r, 24, 16)
        ref.grad = g.clone()
        low.grad = g.to(torch.bfloat16)
        oa.step()
        ob.step()
    master = ob.state[low]["master_weight"]
    same_bits(low.detach(), master.to(torch.bfloat16), "param is the rounded master")
    # the master moved by the fp32 rule on bf16-rounded gradients: within the
    # gradients' rounding (2^-8 relative) of the fp32 run's path
    rel = (master - ref.detach()).norm() / (ref.detach() - w).norm()
    assert rel.item() <= 4 * 2.0 ** -8 * 4, rel.item()
    expect_raises(ValueError, lambda: mt.Muon([torch.nn.Parameter(w.to(torch.bfloat16))]),
                  contains="offload")


# --------------------------------------------------------------- bad input

@test
def bad_params_are_refused_clearly():
    r = gen(12)
    w = randn(r, 8, 6)
    cases = [
        (lambda: mt.Muon([torch.nn.Parameter(w.double())]), "float32"),
        (lambda: mt.Muon([torch.nn.Parameter(w.t())]), "contiguous"),
        (lambda: mt.Muon([torch.nn.Parameter(torch.zeros(0, 3))]), "empty"),
        (lambda: mt.Muon([torch.nn.Parameter(w)], momentum=-1.0), "invalid options"),
        (lambda: mt.Muon([torch.nn.Parameter(w)], scale="huge"), "scale"),
        (lambda: mt.Muon([{"params": [torch.nn.Parameter(w)], "role": "boss"}]), "role"),
        (lambda: mt.Muon([{"params": [torch.nn.Parameter(w)], "colour": 1}]), "colour"),
        (lambda: mt.Muon([{"params": [torch.nn.Parameter(w[0].clone())], "role": "matrix"}]),
         "1-D"),
        (lambda: mt.Muon([torch.nn.Parameter(w)], threads=1.5), "threads"),
        (lambda: mt.Muon([torch.nn.Parameter(w)], roles=["matrix", "vector"]), "2 roles"),
        (lambda: mt.Muon([torch.nn.Parameter(w)], roles=["weight"]), "role"),
        (lambda: mt.Muon([torch.nn.Parameter(w), torch.nn.Parameter(w.clone())],
                         names=["a", "a"]), "twice"),
        (lambda: mt.Muon([torch.nn.Parameter(w.double())], names=["fc1"]), "fc1"),
    ]
    for fn, word in cases:
        expect_raises(ValueError, fn, contains=word)
    p = torch.nn.Parameter(w.clone())
    expect_raises(ValueError, lambda: mt.Muon([{"params": [p]}, {"params": [p]}]),
                  contains="twice")
    base = torch.zeros(10, 6)
    v1, v2 = torch.nn.Parameter(base[:6]), torch.nn.Parameter(base[4:])
    # views of one storage
    v1.data, v2.data = base[:6], base[4:]
    expect_raises(ValueError, lambda: mt.Muon([v1, v2]), contains="share memory")
    # an overlap with a span that is not the next one by address
    big, inner, later = (torch.nn.Parameter(torch.zeros(1)) for _ in range(3))
    big.data, inner.data, later.data = base.view(-1), base[1, :2], base[5]
    expect_raises(ValueError, lambda: mt.Muon([inner, later, big]), contains="share memory")


@test
def bad_grads_are_refused_before_anything_moves():
    r = gen(13)
    p = torch.nn.Parameter(randn(r, 8, 6))
    q = torch.nn.Parameter(randn(r, 6))
    opt = mt.Muon([p, q], lr=0.02, threads=1)
    p0, q0 = p.detach().clone(), q.detach().clone()
    q.grad = randn(r, 6)
    p.grad = randn(r, 8, 6).to_sparse()
    expect_raises(ValueError, opt.step, contains="sparse")
    same_bits(p.detach(), p0, "p")
    same_bits(q.detach(), q0, "q")
    p.grad = randn(r, 6, 8).t()  # non-contiguous: read through a copy
    opt.step()
    assert not torch.equal(p.detach(), p0)


@test
def example_script_runs():
    """examples/torch_gpt.py, the docs' example, on a small text for 3 steps."""
    import os
    import subprocess
    import tempfile
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "text.txt")
        with open(path, "w") as f:
            f.write("the quick brown fox jumps over the lazy dog. " * 200)
        out = subprocess.run([sys.executable, os.path.join(root, "examples", "torch_gpt.py"),
                              "--data", path, "--steps", "3", "--dim", "32", "--layers", "1",
                              "--ctx", "16", "--batch", "4"],
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("final val loss: adamw"), out.stdout[-500:]
    a, m = [float(w.rstrip(",")) for w in last.split() if w[0].isdigit()]
    assert math.isfinite(a) and math.isfinite(m)


# ------------------------------------------------------------------- GPU

def need_cuda():
    if not torch.cuda.is_available():
        raise Skip("no CUDA device")


@test
def cuda_offload_equals_the_cpu_update():
    need_cuda()
    x = torch.randint(0, 40, (32,), generator=gen(14))
    a, b = tiny_model(5), tiny_model(5).cuda()
    oa = mt.Muon(mt.param_groups(a), lr=0.02, threads=1)
    ob = mt.Muon(mt.param_groups(b), lr=0.02, threads=1, offload=True, offload_chunk=300)
    for _ in range(3):
        oa.zero_grad()
        batch_loss(a, x).backward()
        ob.zero_grad()
        batch_loss(b, x.cuda()).backward()
        # the same gradients on both sides: the comparison is of the step
        for p, q in zip(a.parameters(), b.parameters()):
            q.grad.copy_(p.grad)
        oa.step()
        ob.step()
    torch.cuda.synchronize()
    for p, q in zip(a.parameters(), b.parameters()):
        same_bits(p.detach(), q.detach().cpu(), "offloaded from the GPU")


@test
def cuda_backend_matches_the_cpu_reference():
    need_cuda()
    if not mt.cuda_available():
        raise Skip("libmuon_cuda.so not built or sees no device")
    r = gen(15)
    shapes = [(64, 96), (96, 64), (80, 80), (4, 32, 48), (96,)]
    ws = [randn(r, *s) * 0.1 for s in shapes]
    cpu = [torch.nn.Parameter(w.clone()) for w in ws]
    gpu = [torch.nn.Parameter(w.clone().cuda()) for w in ws]
    kw = dict(lr=0.02, precision="fp32", method="ns", coeffs="keller")
    oa = mt.Muon(cpu, threads=1, **kw)
    ob = mt.Muon(gpu, **kw)
    for _ in range(3):
        for p, q in zip(cpu, gpu):
            g = randn(r, *p.shape)
            p.grad, q.grad = g.clone(), g.cuda()
        oa.step()
        ob.step()
    # a parameter without a gradient is held on the GPU as on the CPU
    held = gpu[2].detach().clone()
    for p, q in zip(cpu, gpu):
        g = randn(r, *p.shape)
        p.grad, q.grad = g.clone(), g.cuda()
    cpu[2].grad = gpu[2].grad = None
    oa.step()
    ob.step()
    torch.cuda.synchronize()
    same_bits(gpu[2].detach(), held, "held on the GPU")
    for p, q, w in zip(cpu, gpu, ws):
        # two fp32 computations of the same formula: twice the bound of each
        # against the exact result
        moved = (p.detach().double() - w.double()).norm().item()
        diff = (q.detach().cpu().double() - p.detach().double()).norm().item()
        tol = 2 * fp32_ns_tol(max(p.shape), updates=4)
        assert diff <= tol * moved, (tuple(p.shape), diff / moved, tol)


if __name__ == "__main__":
    print("torch %s" % torch.__version__, flush=True)
    sys.exit(pyharness.main(sys.argv))

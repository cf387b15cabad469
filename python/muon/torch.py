"""muon.torch: libmuon as a torch.optim.Optimizer.

    import muon.torch
    opt = muon.torch.Muon(model.parameters(), lr=1e-3)      # hybrid by default
    opt = muon.torch.Muon(muon.torch.param_groups(model))   # embedding and head to AdamW
    loss.backward(); opt.step(); opt.zero_grad()

Where each parameter's update runs:
- float32 CPU tensors: libmuon updates the tensor's own memory (no copies);
- CUDA tensors: the CUDA backend (libmuon_cuda.so) on the device;
- offload=True: fp32 master weights and the state in (pinned) CPU memory,
  gradients copied down, the step run by libmuon on the CPU, the weights
  copied back up, group chunk by chunk so the copies overlap the step.

The momentum is kept in the library's sum form M = mu M + G, which is
(1 - mu)^-1 times torch.optim.Muon's EMA buffer; the orthogonalized update is
the same, since Newton-Schulz normalizes its input (docs/torch.md).
"""

import ctypes
import math

import numpy as np
import torch

from . import MuonError, _lib, _cuda
from .optim import _family_config

__all__ = ["Muon", "param_groups", "cuda_available"]

ROLES = _lib.ROLE_NAMES  # matrix, embedding, head, vector
# Group options that shape the C optimizer: a change between steps rebuilds it
# (state kept). lr and adam_lr are set before every step instead.
_SHAPING = ("algo", "momentum", "nesterov", "weight_decay", "scale", "coeffs", "steps", "method",
            "adam_betas", "adam_eps", "adam_weight_decay", "precision", "restarts",
            "spectrum_power", "role", "use_muon")
_OFFLOAD_CHUNK = 1 << 26  # floats per offload chunk: 256 MiB of fp32 weights


def cuda_available():
    """True when the CUDA backend is built and sees a device."""
    return _cuda.device_count() > 0


def param_groups(model, **options):
    """Parameter groups for the hybrid from a torch.nn.Module: nn.Embedding
    weights get role "embedding", a parameter named like an output head
    (lm_head / head / output / classifier weight) "head", other parameters of
    2 or more dimensions "matrix", the rest "vector". Tied parameters appear
    once. options apply to every group."""
    emb = set()
    for m in model.modules():
        if isinstance(m, torch.nn.Embedding):
            emb.add(id(m.weight))
    heads = ("lm_head.weight", "head.weight", "output.weight", "classifier.weight")
    by_role = {r: [] for r in ROLES}
    seen = set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        if id(p) in emb:
            role = "embedding"
        elif name == heads[0] or name.endswith(tuple("." + h for h in heads)) or name in heads:
            role = "head"
        elif p.dim() >= 2:
            role = "matrix"
        else:
            role = "vector"
        by_role[role].append(p)
    return [dict(params=ps, role=r, **options) for r, ps in by_role.items() if ps]


def _role_of(group, p):
    role = group.get("role")
    if role is None and group.get("use_muon") is not None:
        role = "matrix" if group["use_muon"] else "vector"
    if role is None:
        role = "matrix" if p.dim() >= 2 else "vector"
    return role


def _check_status(st, what, err):
    if st != _lib.OK:
        raise MuonError(st, "%s: %s" % (what, err) if err else what)


class _HostEngine:
    """One C muon_opt over float32 CPU tensors (the parameters themselves, or
    offload's master copies); its state buffers are shown as tensors."""

    def __init__(self, cfg, tensors, names, roles):
        self.opt = None
        h = ctypes.c_void_p()
        _check_status(_lib.muon_opt_create(ctypes.byref(cfg), ctypes.byref(h)),
                      "muon_opt_create", "")
        self.opt = h
        self.tensors = list(tensors)
        self.names = list(names)
        try:
            for t, name, role in zip(self.tensors, self.names, roles):
                shape = (ctypes.c_long * t.dim())(*t.shape)
                r = ctypes.c_int()
                _lib.muon_role_parse(role.encode(), ctypes.byref(r))
                st = _lib.muon_opt_add_param(self.opt, name.encode(), self._fp(t), None, t.dim(),
                                             shape, r.value, None)
                _check_status(st, "param %s" % name, self.error())
            _check_status(_lib.muon_opt_finalize(self.opt), "finalize", self.error())
        except BaseException:
            self.close()
            raise
        self.ptrs = [t.data_ptr() for t in self.tensors]
        self.held = [False] * len(self.tensors)

    @staticmethod
    def _fp(t):
        return ctypes.cast(ctypes.c_void_p(t.data_ptr()), ctypes.POINTER(ctypes.c_float))

    def error(self):
        return (_lib.muon_opt_error(self.opt) or b"").decode(errors="replace") if self.opt else ""

    def rebind(self, i, t):
        """Point parameter i at tensor t (same shape) when its storage moved."""
        if t.data_ptr() != self.ptrs[i]:
            shape = (ctypes.c_long * t.dim())(*t.shape)
            st = _lib.muon_opt_set_buffers(self.opt, i, self._fp(t), None, t.dim(), shape)
            _check_status(st, "param %s" % self.names[i], self.error())
            self.tensors[i] = t
            self.ptrs[i] = t.data_ptr()

    def step(self, grads, lr, adam_lr):
        """grads: float32 contiguous CPU tensors or None (parameter held).
        Returns the names refused for non-finite gradients."""
        for i, g in enumerate(grads):
            hold = g is None
            if hold != self.held[i]:
                _check_status(_lib.muon_opt_hold_param(self.opt, i, int(hold)), "hold",
                              self.error())
                self.held[i] = hold
            if not hold:
                st = _lib.muon_opt_set_grad(self.opt, i, self._fp(g))
                _check_status(st, "grad of %s" % self.names[i], self.error())
        _check_status(_lib.muon_opt_set_lr(self.opt, float(lr), float(adam_lr)), "set_lr",
                      self.error())
        st = _lib.muon_opt_step(self.opt, 1.0)
        if st == _lib.ERR_NONFINITE:
            return [self.names[i] for i in range(len(grads)) if self._skipped(i)]
        _check_status(st, "step", self.error())
        return []

    def _skipped(self, i):
        pi = _lib.ParamInfo()
        _lib.muon_opt_param_info(self.opt, i, ctypes.byref(pi))
        return bool(pi.skipped)

    def uses_muon(self, i):
        pi = _lib.ParamInfo()
        _check_status(_lib.muon_opt_param_info(self.opt, i, ctypes.byref(pi)), "info",
                      self.error())
        return bool(pi.uses_muon)

    def state(self, i):
        """(list of tensors viewing parameter i's state buffers, steps)."""
        bufs = (ctypes.POINTER(ctypes.c_float) * 2)()
        count, steps = ctypes.c_int(), ctypes.c_long()
        st = _lib.muon_opt_param_state(self.opt, i, bufs, ctypes.byref(count),
                                       ctypes.byref(steps))
        _check_status(st, "state of %s" % self.names[i], self.error())
        t = self.tensors[i]
        out = []
        for k in range(count.value):
            arr = np.ctypeslib.as_array(bufs[k], shape=(t.numel(),))
            out.append(torch.from_numpy(arr).view(t.shape))
        return out, steps.value

    def set_steps(self, i, steps):
        _check_status(_lib.muon_opt_set_param_steps(self.opt, i, int(steps)), "set steps",
                      self.error())

    def close(self):
        opt, self.opt = self.opt, None
        if opt:
            _lib.muon_opt_free(opt)


class _CudaArray:
    """A device buffer in the CUDA array interface, for torch.as_tensor."""

    def __init__(self, ptr, n):
        self.__cuda_array_interface__ = {"shape": (n,), "typestr": "<f4", "strides": None,
                                         "data": (ptr, False), "version": 2}


class _CudaEngine:
    """One muon_cuda_opt over float32 CUDA tensors of one device."""

    def __init__(self, cfg, tensors, names, roles):
        self.lib = _cuda.load()
        self.device = tensors[0].device
        self.ctx = self.opt = None
        h = ctypes.c_void_p()
        st = self.lib.muon_cuda_create(self.device.index or 0, ctypes.byref(h))
        if st != _lib.OK:
            raise MuonError(st, (self.lib.muon_cuda_last_error() or b"").decode())
        self.ctx = h
        try:
            o = ctypes.c_void_p()
            st = self.lib.muon_cuda_opt_create(self.ctx, ctypes.byref(cfg), ctypes.byref(o))
            _check_status(st, "muon_cuda_opt_create", self._ctx_error())
            self.opt = o
            self.tensors, self.names = list(tensors), list(names)
            for t, name, role in zip(self.tensors, self.names, roles):
                shape = (ctypes.c_long * t.dim())(*t.shape)
                r = ctypes.c_int()
                _lib.muon_role_parse(role.encode(), ctypes.byref(r))
                st = self.lib.muon_cuda_opt_add_param(self.opt, name.encode(), t.data_ptr(), None,
                                                      t.dim(), shape, r.value, None)
                _check_status(st, "param %s" % name, self.error())
            _check_status(self.lib.muon_cuda_opt_finalize(self.opt), "finalize", self.error())
        except BaseException:
            self.close()
            raise
        self.ptrs = [t.data_ptr() for t in self.tensors]
        self.held = [False] * len(self.tensors)

    def _ctx_error(self):
        return (self.lib.muon_cuda_error(self.ctx) or b"").decode(errors="replace")

    def error(self):
        if not self.opt:
            return self._ctx_error() if self.ctx else ""
        return (self.lib.muon_cuda_opt_error(self.opt) or b"").decode(errors="replace")

    def rebind(self, i, t):
        if t.data_ptr() != self.ptrs[i]:
            st = self.lib.muon_cuda_opt_set_buffers(self.opt, i, t.data_ptr(), None)
            _check_status(st, "param %s" % self.names[i], self.error())
            self.tensors[i], self.ptrs[i] = t, t.data_ptr()

    def step(self, grads, lr, adam_lr):
        for i, g in enumerate(grads):
            hold = g is None
            if hold != self.held[i]:
                _check_status(self.lib.muon_cuda_opt_hold_param(self.opt, i, int(hold)), "hold",
                              self.error())
                self.held[i] = hold
            if not hold:
                st = self.lib.muon_cuda_opt_set_buffers(self.opt, i, None, g.data_ptr())
                _check_status(st, "grad of %s" % self.names[i], self.error())
        stream = torch.cuda.current_stream(self.device).cuda_stream
        _check_status(self.lib.muon_cuda_set_stream(self.ctx, ctypes.c_void_p(stream)),
                      "set_stream", self._ctx_error())
        _check_status(self.lib.muon_cuda_opt_set_lr(self.opt, float(lr), float(adam_lr)),
                      "set_lr", self.error())
        st = self.lib.muon_cuda_opt_step(self.opt, 1.0)
        if st == _lib.ERR_NONFINITE:
            return [self.error()]
        _check_status(st, "step", self.error())
        return []

    def uses_muon(self, i):
        return self.lib.muon_cuda_opt_uses_muon(self.opt, i) == 1

    def state(self, i):
        bufs = (ctypes.c_void_p * 2)()
        count, steps = ctypes.c_int(), ctypes.c_long()
        st = self.lib.muon_cuda_opt_param_state(self.opt, i, bufs, ctypes.byref(count),
                                                ctypes.byref(steps))
        _check_status(st, "state of %s" % self.names[i], self.error())
        t = self.tensors[i]
        out = [torch.as_tensor(_CudaArray(bufs[k], t.numel()), device=self.device).view(t.shape)
               for k in range(count.value)]
        return out, steps.value

    def set_steps(self, i, steps):
        _check_status(self.lib.muon_cuda_opt_set_param_steps(self.opt, i, int(steps)),
                      "set steps", self.error())

    def close(self):
        opt, self.opt = self.opt, None
        if opt:
            self.lib.muon_cuda_opt_free(opt)
        ctx, self.ctx = self.ctx, None
        if ctx:
            self.lib.muon_cuda_free(ctx)


class _OffloadEngine:
    """Master weights and state on the host, the step by libmuon on the CPU.

    The parameters are split into chunks of about _OFFLOAD_CHUNK floats, each
    its own host optimizer: the gradients of every chunk are copied down on a
    side stream first, then each chunk is stepped as soon as its copies have
    arrived and its weights are sent back up while the next chunk steps."""

    def __init__(self, cfg, params, names, roles, chunk):
        self.params = list(params)
        self.names = list(names)
        self.cuda = any(p.is_cuda for p in self.params)
        pin = self.cuda
        self.master = [torch.empty(p.shape, dtype=torch.float32, pin_memory=pin)
                       for p in self.params]
        for m, p in zip(self.master, self.params):
            m.copy_(p.detach())
        self.gbuf = [torch.empty(p.shape, dtype=torch.float32, pin_memory=pin)
                     for p in self.params]
        self.chunks = []  # (first index, host engine)
        start, size = 0, 0
        for i, p in enumerate(self.params):
            size += p.numel()
            if size >= chunk or i == len(self.params) - 1:
                eng = _HostEngine(cfg, self.master[start:i + 1], names[start:i + 1],
                                  roles[start:i + 1])
                self.chunks.append((start, eng))
                start, size = i + 1, 0
        self.stream = torch.cuda.Stream(self.params[0].device) if self.cuda else None

    def _locate(self, i):
        for start, eng in reversed(self.chunks):
            if i >= start:
                return eng, i - start
        raise IndexError(i)

    def rebind(self, i, t):
        self.params[i] = t

    def step(self, grads, lr, adam_lr):
        bad = []
        if not self.cuda:
            for g, b in zip(grads, self.gbuf):
                if g is not None:
                    b.copy_(g)
            for start, eng in self.chunks:
                part = grads[start:start + len(eng.tensors)]
                bad += eng.step([None if g is None else b for g, b in
                                 zip(part, self.gbuf[start:])], lr, adam_lr)
                for k in range(len(eng.tensors)):
                    if part[k] is not None:
                        self.params[start + k].copy_(self.master[start + k])
            return bad
        main = torch.cuda.current_stream(self.params[0].device)
        self.stream.wait_stream(main)
        arrived = []
        with torch.cuda.stream(self.stream):
            for start, eng in self.chunks:
                for k in range(len(eng.tensors)):
                    g = grads[start + k]
                    if g is not None:
                        g.record_stream(self.stream)
                        self.gbuf[start + k].copy_(g, non_blocking=True)
                ev = torch.cuda.Event()
                ev.record(self.stream)
                arrived.append(ev)
        for (start, eng), ev in zip(self.chunks, arrived):
            ev.synchronize()
            part = grads[start:start + len(eng.tensors)]
            bad += eng.step([None if g is None else b for g, b in
                             zip(part, self.gbuf[start:])], lr, adam_lr)
            with torch.cuda.stream(self.stream):
                for k in range(len(eng.tensors)):
                    if part[k] is not None:
                        self.params[start + k].copy_(self.master[start + k], non_blocking=True)
        main.wait_stream(self.stream)
        return bad

    def uses_muon(self, i):
        eng, k = self._locate(i)
        return eng.uses_muon(k)

    def state(self, i):
        eng, k = self._locate(i)
        return eng.state(k)

    def set_steps(self, i, steps):
        eng, k = self._locate(i)
        eng.set_steps(k, steps)

    def close(self):
        for _, eng in self.chunks:
            eng.close()


class Muon(torch.optim.Optimizer):
    """The Muon hybrid (or any rule of the family, algo=...) as a torch optimizer.

    Keyword arguments are the numpy binding's muon.Muon ones and are also
    group options: lr, momentum, nesterov, weight_decay, scale ("moonlight",
    "keller", "spectral", "none"), coeffs, steps, method, adam_lr,
    adam_betas, adam_eps, adam_weight_decay, precision, restarts,
    spectrum_power, plus per group: role ("matrix", "embedding", "head",
    "vector"; None: "matrix" for tensors of 2 or more dimensions, else
    "vector") or use_muon (True / False), and algo (default "muon").
    adam_lr and adam_weight_decay None follow lr and weight_decay. A 3-D
    matrix is a stack of matrices (experts), each orthogonalized on its own.
    roles and names (one per parameter of a flat list, as in the numpy
    binding) group the parameters by role and name them in messages.
    threads (all cores when 0) and offload are for the whole optimizer.

    A parameter without a gradient is left as it is. A non-finite gradient:
    that parameter is left as it is, every other one is updated, then
    MuonError (MUON_ERR_NONFINITE) names it."""

    def __init__(self, params, lr=1e-3, momentum=0.95, nesterov=True, weight_decay=0.1,
                 scale="moonlight", coeffs="polar-express", steps=5, method="auto",
                 adam_lr=None, adam_betas=(0.9, 0.95), adam_eps=1e-8, adam_weight_decay=None,
                 precision="auto", restarts=None, spectrum_power=0.0, role=None, use_muon=None,
                 algo="muon", roles=None, names=None, threads=0, offload=False,
                 offload_chunk=_OFFLOAD_CHUNK):
        if isinstance(threads, bool) or not isinstance(threads, int):
            raise ValueError("muon.torch: threads must be an int, got %r" % (threads,))
        if isinstance(offload_chunk, bool) or not isinstance(offload_chunk, int) or \
                offload_chunk < 1:
            raise ValueError("muon.torch: offload_chunk must be an int >= 1, got %r"
                             % (offload_chunk,))
        self._names = {}
        if roles is not None or names is not None:
            params = self._flat_with(params, roles, names)
        self._threads = threads
        self._offload = bool(offload)
        self._chunk = offload_chunk
        self._engines = []
        defaults = dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay,
                        scale=scale, coeffs=coeffs, steps=steps, method=method, adam_lr=adam_lr,
                        adam_betas=tuple(adam_betas), adam_eps=adam_eps,
                        adam_weight_decay=adam_weight_decay, precision=precision,
                        restarts=restarts, spectrum_power=spectrum_power, role=role,
                        use_muon=use_muon, algo=algo)
        super().__init__(params, defaults)

    # ---------------------------------------------------------------- groups

    def _flat_with(self, params, roles, names):
        """roles / names, one per parameter of a flat list (the numpy
        binding's form): groups by role, names kept for messages."""
        params = list(params)
        if not all(isinstance(p, torch.Tensor) for p in params):
            raise ValueError("muon.torch: roles= and names= take a flat list of tensors; "
                             "with parameter groups, give each group a role")
        if names is not None:
            names = list(names)
            if len(names) != len(params):
                raise ValueError("muon.torch: %d names for %d params" % (len(names), len(params)))
            for k, n in enumerate(names):
                if not isinstance(n, str) or not n or len(n.encode()) > 127:
                    raise ValueError("muon.torch: name %d (%r) must be a non-empty string of at "
                                     "most 127 bytes" % (k, n))
            if len(set(names)) != len(names):
                dup = next(n for n in names if names.count(n) > 1)
                raise ValueError("muon.torch: parameter name %r is used twice" % dup)
            self._names = {id(p): n for p, n in zip(params, names)}
        if roles is None:
            return params
        roles = list(roles)
        if len(roles) != len(params):
            raise ValueError("muon.torch: %d roles for %d params" % (len(roles), len(params)))
        groups = {}
        for p, r in zip(params, roles):
            if r not in ROLES:
                raise ValueError("muon.torch: role %r: expected one of %s"
                                 % (r, ", ".join(ROLES)))
            groups.setdefault(r, []).append(p)
        return [{"params": ps, "role": r} for r, ps in groups.items()]

    def _name(self, gi, k, p):
        return self._names.get(id(p), "g%d.p%d" % (gi, k))

    def _config(self, group):
        lr = group["lr"]
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not math.isfinite(lr) \
                or lr < 0:
            raise ValueError("muon.torch: lr must be a finite number >= 0, got %r" % (lr,))
        cfg = _family_config(group["algo"], lr, group["momentum"], group["nesterov"],
                             group["weight_decay"], group["scale"], group["coeffs"],
                             group["steps"], group["method"], group["adam_lr"],
                             group["adam_betas"], group["adam_eps"], group["adam_weight_decay"],
                             self._threads, group["precision"], group["restarts"])
        cfg.spectrum_power = float(group["spectrum_power"])
        st = _lib.muon_opt_config_validate(ctypes.byref(cfg))
        if st != _lib.OK:
            raise ValueError("muon.torch: invalid options in a parameter group (%s): %s"
                             % (_lib.muon_status_name(st).decode(),
                                {k: group[k] for k in _SHAPING + ("lr", "adam_lr")}))
        return cfg

    def _check_params(self, group, gi):
        params = group["params"]
        if not params:
            raise ValueError("muon.torch: parameter group %d is empty" % gi)
        roles = []
        for k, p in enumerate(params):
            where = "group %d param %d (%s, shape %s)" % (gi, k, self._name(gi, k, p),
                                                         tuple(p.shape))
            if not isinstance(p, torch.Tensor):
                raise ValueError("muon.torch: %s is a %s, not a tensor" % (where,
                                                                           type(p).__name__))
            if p.is_sparse or p.layout != torch.strided:
                raise ValueError("muon.torch: %s is not a dense strided tensor" % where)
            if not p.is_floating_point():
                raise ValueError("muon.torch: %s has dtype %s, not floating point"
                                 % (where, p.dtype))
            if self._offload:
                if p.device.type not in ("cpu", "cuda"):
                    raise ValueError("muon.torch: %s is on %s; offload takes CPU or CUDA "
                                     "tensors" % (where, p.device))
            elif p.device.type == "cpu":
                if p.dtype != torch.float32:
                    raise ValueError("muon.torch: %s has dtype %s; the in-place CPU update "
                                     "needs float32 (or pass offload=True to keep fp32 "
                                     "master weights)" % (where, p.dtype))
            elif p.device.type == "cuda":
                if p.dtype != torch.float32:
                    raise ValueError("muon.torch: %s has dtype %s; the CUDA backend updates "
                                     "float32 tensors (offload=True keeps fp32 master "
                                     "weights on the host)" % (where, p.dtype))
            else:
                raise ValueError("muon.torch: %s is on %s; CPU and CUDA tensors are supported"
                                 % (where, p.device))
            if not p.is_contiguous():
                raise ValueError("muon.torch: %s is not contiguous; the update writes the "
                                 "tensor's own memory" % where)
            if p.numel() == 0:
                raise ValueError("muon.torch: %s is empty" % where)
            if p.dim() == 0 or p.dim() > _lib.MAX_NDIM:
                raise ValueError("muon.torch: %s has %d dimensions; 1 to %d are supported"
                                 % (where, p.dim(), _lib.MAX_NDIM))
            role = _role_of(group, p)
            if role not in ROLES:
                raise ValueError("muon.torch: group %d has role %r: expected one of %s"
                                 % (gi, role, ", ".join(ROLES)))
            if role == "matrix" and p.dim() < 2:
                raise ValueError("muon.torch: %s has role 'matrix' but is 1-D" % where)
            roles.append(role)
        devices = {(p.device.type, p.device.index) for p in params}
        if len(devices) > 1 and not self._offload:
            raise ValueError("muon.torch: group %d mixes devices %s; one device per group"
                             % (gi, sorted(map(str, devices))))
        return roles

    def _check_overlap(self, new_params):
        allp = [p for g in self.param_groups for p in g["params"]] + list(new_params)
        if len({id(p) for p in allp}) != len(allp):
            raise ValueError("muon.torch: a parameter appears twice (in one group or in two "
                             "groups)")
        # Sorted by device and start address: if any two spans overlap, some
        # span overlaps the one just before it (whatever starts between the
        # two starts also starts inside the earlier span).
        spans = sorted((str(p.device), p.data_ptr(), p.data_ptr() + p.numel() * p.element_size(),
                        tuple(p.shape)) for p in allp)
        for a, b in zip(spans, spans[1:]):
            if a[0] == b[0] and b[1] < a[2]:
                raise ValueError("muon.torch: two parameters share memory (shapes %s and %s); "
                                 "each must own its storage" % (a[3], b[3]))

    def add_param_group(self, param_group):
        if isinstance(param_group.get("params"), torch.Tensor):
            param_group = dict(param_group, params=[param_group["params"]])
        else:
            param_group = dict(param_group, params=list(param_group.get("params", [])))
        unknown = set(param_group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError("muon.torch: unknown group option(s) %s" % ", ".join(sorted(unknown)))
        self._check_overlap(param_group["params"])
        full = dict(self.defaults)
        full.update(param_group)
        gi = len(self.param_groups)
        self._check_params(full, gi)
        self._config(full)  # options are checked now, before anything is kept
        super().add_param_group(param_group)
        self._engines.append(None)

    def _key(self, group):
        return tuple(repr(group[k]) for k in _SHAPING) + (
            tuple(id(p) for p in group["params"]),)

    def _build(self, gi, group):
        cfg = self._config(group)
        roles = self._check_params(group, gi)
        params = group["params"]
        names = [self._name(gi, k, p) for k, p in enumerate(params)]
        if self._offload:
            eng = _OffloadEngine(cfg, params, names, roles, self._chunk)
        elif params[0].is_cuda:
            eng = _CudaEngine(cfg, [p.data for p in params], names, roles)
        else:
            eng = _HostEngine(cfg, [p.data for p in params], names, roles)
        return eng

    def _engine(self, gi, group):
        """The group's engine, built on first use and rebuilt (state carried
        over) when an option other than the learning rates changed."""
        key = self._key(group)
        cur = self._engines[gi]
        if cur is not None and cur[0] == key:
            return cur[1]
        eng = self._build(gi, group)
        if cur is not None:
            try:
                self._carry_state(cur[1], eng, group)
            except BaseException:
                eng.close()
                raise
            cur[1].close()
        self._engines[gi] = (key, eng)
        self._publish(gi, group, eng)
        return eng

    @staticmethod
    def _carry_state(old, new, group):
        for i in range(len(group["params"])):
            a, steps = old.state(i)
            b, _ = new.state(i)
            if len(a) == len(b):
                for x, y in zip(a, b):
                    y.copy_(x)
                new.set_steps(i, steps)

    def _publish(self, gi, group, eng):
        """self.state[p]: views of the engine's buffers (see state_dict)."""
        for i, p in enumerate(group["params"]):
            bufs, steps = eng.state(i)
            names = _state_names(eng.uses_muon(i), len(bufs))
            st = dict(zip(names, bufs))
            st["step"] = torch.tensor(float(steps))
            if isinstance(eng, _OffloadEngine) and p.dtype != torch.float32:
                st["master_weight"] = eng.master[i]
            self.state[p] = st

    # ------------------------------------------------------------------ step

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        refused = []
        for gi, group in enumerate(self.param_groups):
            eng = self._engine(gi, group)
            grads = []
            for k, p in enumerate(group["params"]):
                eng.rebind(k, p.data)
                g = p.grad
                if g is not None:
                    g = self._check_grad(g, p, gi, k)
                grads.append(g)
            if all(g is None for g in grads):
                continue
            adam_lr = group["adam_lr"] if group["adam_lr"] is not None else group["lr"]
            refused += eng.step(grads, group["lr"], adam_lr)
        if refused:
            raise MuonError(_lib.ERR_NONFINITE, "non-finite gradient, update refused for "
                            + ", ".join(refused))
        return loss

    def _check_grad(self, g, p, gi, k):
        where = "group %d param %d (%s)" % (gi, k, self._name(gi, k, p))
        if g.is_sparse or g.layout != torch.strided:
            raise ValueError("muon.torch: the gradient of %s is sparse; dense gradients only"
                             % where)
        if g.shape != p.shape:
            raise ValueError("muon.torch: the gradient of %s has shape %s, the parameter %s"
                             % (where, tuple(g.shape), tuple(p.shape)))
        if g.device != p.device:
            raise ValueError("muon.torch: the gradient of %s is on %s, the parameter on %s"
                             % (where, g.device, p.device))
        if self._offload:
            return g if g.is_contiguous() else g.contiguous()
        if g.dtype != torch.float32:
            raise ValueError("muon.torch: the gradient of %s has dtype %s, not float32"
                             % (where, g.dtype))
        return g if g.is_contiguous() else g.contiguous()

    # ------------------------------------------------------------ state dict

    def state_dict(self):
        """torch's layout: per parameter, the momentum "momentum_buffer" (Muon
        rule, sum form) or "exp_avg" / "exp_avg_sq" (AdamW), "step", and
        "master_weight" for offloaded non-float32 parameters ("step" is
        brought up to date here, not by every step). The tensors are
        the live state (as torch's own optimizers return them): copy.deepcopy
        or torch.save before further steps to keep them."""
        for gi, group in enumerate(self.param_groups):
            eng = self._engine(gi, group)
            for i, p in enumerate(group["params"]):
                self.state[p]["step"] = torch.tensor(float(eng.state(i)[1]))
        sd = super().state_dict()
        sd["libmuon"] = {"version": 1, "momentum": "sum"}
        return sd

    def load_state_dict(self, state_dict):
        """Load a state_dict() of an optimizer over the same parameter shapes.
        Everything is checked first; on any mismatch a ValueError says what and
        nothing changes."""
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict or \
                "state" not in state_dict:
            raise ValueError("muon.torch: not an optimizer state_dict")
        meta = state_dict.get("libmuon")
        if not isinstance(meta, dict) or meta.get("version") != 1:
            raise ValueError("muon.torch: this state_dict was not written by muon.torch.Muon "
                             "(version 1)")
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups):
            raise ValueError("muon.torch: the state_dict has %d parameter groups, this "
                             "optimizer %d" % (len(saved), len(self.param_groups)))
        mapping = {}
        new_groups = []
        for gi, (sg, g) in enumerate(zip(saved, self.param_groups)):
            if len(sg["params"]) != len(g["params"]):
                raise ValueError("muon.torch: group %d has %d parameters in the state_dict, %d "
                                 "here" % (gi, len(sg["params"]), len(g["params"])))
            for pid, p in zip(sg["params"], g["params"]):
                mapping[pid] = p
            ng = dict(g)
            for k, v in sg.items():
                if k != "params":
                    ng[k] = v
            new_groups.append(ng)
        for gi, ng in enumerate(new_groups):
            full = dict(self.defaults)
            full.update(ng)
            self._config(full)
            self._check_params(full, gi)
        incoming = {}
        for pid, st in state_dict["state"].items():
            if pid not in mapping:
                raise ValueError("muon.torch: the state_dict has state for parameter %r, "
                                 "which no group holds" % (pid,))
            p = mapping[pid]
            for k, v in st.items():
                if k == "step":
                    continue
                if not isinstance(v, torch.Tensor) or tuple(v.shape) != tuple(p.shape):
                    raise ValueError("muon.torch: state %r of a parameter of shape %s has "
                                     "shape %s" % (k, tuple(p.shape), tuple(getattr(v, "shape",
                                                                                    ()))))
                if not torch.isfinite(v).all():
                    raise ValueError("muon.torch: state %r holds NaN or Inf" % k)
            incoming[p] = st
        # Build the new engines before anything is replaced.
        built = []
        try:
            for gi, ng in enumerate(new_groups):
                full = dict(self.defaults)
                full.update(ng)
                built.append(self._build(gi, full))
            for gi, (ng, eng) in enumerate(zip(new_groups, built)):
                for i, p in enumerate(ng["params"]):
                    bufs, _ = eng.state(i)
                    names = _state_names(eng.uses_muon(i), len(bufs))
                    st = incoming.get(p)
                    if st is None:
                        continue
                    missing = [n for n in names if n not in st]
                    if missing:
                        raise ValueError("muon.torch: state of group %d param %d lacks %s (its "
                                         "rule here needs %s)" % (gi, i, ", ".join(missing),
                                                                  ", ".join(names)))
        except BaseException:
            for eng in built:
                eng.close()
            raise
        for gi, (ng, eng) in enumerate(zip(new_groups, built)):
            for i, p in enumerate(ng["params"]):
                st = incoming.get(p)
                if st is None:
                    continue
                bufs, _ = eng.state(i)
                for n, b in zip(_state_names(eng.uses_muon(i), len(bufs)), bufs):
                    b.copy_(st[n])
                steps = st.get("step", 0)
                eng.set_steps(i, int(steps.item() if isinstance(steps, torch.Tensor) else steps))
                if isinstance(eng, _OffloadEngine):
                    eng.master[i].copy_(st.get("master_weight", p.detach()))
        for gi, ng in enumerate(new_groups):
            old = self._engines[gi]
            if old is not None:
                old[1].close()
            self.param_groups[gi].update({k: v for k, v in ng.items() if k != "params"})
            self._engines[gi] = (self._key(self.param_groups[gi]), built[gi])
            self._publish(gi, self.param_groups[gi], built[gi])

    def close(self):
        """Free the C optimizers (the optimizer is unusable afterwards)."""
        for e in self._engines:
            if e is not None:
                e[1].close()
        self._engines = [None] * len(self._engines)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _state_names(uses_muon, count):
    if count == 0:
        return []
    if uses_muon or count == 1:
        return ["momentum_buffer"] + (["exp_avg_sq"] if count == 2 else [])
    return ["exp_avg", "exp_avg_sq"]

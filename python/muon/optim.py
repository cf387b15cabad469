"""Muon (hybrid with AdamW) and AdamW over numpy arrays updated in place.

The C optimizer keeps raw pointers to the parameter buffers, so parameters
must be float32, C-contiguous and writeable (checked at construction), and
the optimizer holds a reference to each array so none is freed under it.
Gradients are passed to every step(); they are checked (count, shape, dtype)
before any C call, so a refused step changes nothing.
"""

import ctypes
import math
import os

import numpy as np

from . import _lib
from . import MuonError, _ortho_config, _fptr


def _check_params(params):
    if isinstance(params, np.ndarray) or not hasattr(params, "__iter__"):
        raise ValueError("muon: params must be a list of numpy arrays, not %s"
                         % type(params).__name__)
    params = list(params)
    if not params:
        raise ValueError("muon: params is empty")
    for i, p in enumerate(params):
        if not isinstance(p, np.ndarray):
            raise ValueError("muon: param %d is a %s, not a numpy array" % (i, type(p).__name__))
        if p.dtype != np.float32:
            raise ValueError("muon: param %d has dtype %s; the in-place update needs float32"
                             % (i, p.dtype))
        if not p.flags.c_contiguous:
            raise ValueError("muon: param %d is not C-contiguous; the in-place update needs "
                             "the array's own buffer (use np.ascontiguousarray and keep it)" % i)
        if not p.flags.writeable:
            raise ValueError("muon: param %d is read-only" % i)
        if not 1 <= p.ndim <= _lib.MAX_NDIM:
            raise ValueError("muon: param %d has %d dimensions; 1 to %d are supported"
                             % (i, p.ndim, _lib.MAX_NDIM))
        if p.size == 0:
            raise ValueError("muon: param %d is empty (shape %s)" % (i, p.shape))
    for i in range(len(params)):
        for j in range(i):
            if np.may_share_memory(params[i], params[j]):
                raise ValueError("muon: params %d and %d share memory" % (j, i))
    return params


def _check_names(names, n):
    if names is None:
        return ["p%d" % i for i in range(n)]
    names = list(names)
    if len(names) != n:
        raise ValueError("muon: %d names for %d params" % (len(names), n))
    for i, s in enumerate(names):
        if not isinstance(s, str) or not s or len(s.encode()) > 127:
            raise ValueError("muon: name %d (%r) must be a non-empty string of at most 127 bytes"
                             % (i, s))
    if len(set(names)) != n:
        dup = next(s for s in names if names.count(s) > 1)
        raise ValueError("muon: parameter name %r is used twice" % dup)
    return names


def _check_roles(roles, params):
    if roles is None:
        # Every matrix-shaped tensor is a hidden matrix; pass roles to send the
        # embedding and the output head to AdamW.
        return [0 if p.ndim >= 2 else 3 for p in params]
    roles = list(roles)
    if len(roles) != len(params):
        raise ValueError("muon: %d roles for %d params" % (len(roles), len(params)))
    out = []
    for i, r in enumerate(roles):
        if r not in _lib.ROLE_NAMES:
            raise ValueError("muon: role %d is %r: expected one of %s"
                             % (i, r, ", ".join(_lib.ROLE_NAMES)))
        v = ctypes.c_int()
        if _lib.muon_role_parse(r.encode(), ctypes.byref(v)) != _lib.OK:
            raise ValueError("muon: the library rejects role %r" % (r,))
        if v.value == 0 and params[i].ndim < 2:
            raise ValueError("muon: param %d has role 'matrix' but is %d-D (shape %s)"
                             % (i, params[i].ndim, params[i].shape))
        out.append(v.value)
    return out


class _Optimizer:
    """Common part of Muon and AdamW: one C muon_opt over the given arrays."""

    def __init__(self, params, cfg, roles, names):
        self._opt = None
        params = _check_params(params)
        names = _check_names(names, len(params))
        role_ids = _check_roles(roles, params)
        st = _lib.muon_opt_config_validate(ctypes.byref(cfg))
        if st != _lib.OK:
            raise ValueError("muon: invalid optimizer options (%s: %s): %s"
                             % (_lib.muon_status_name(st).decode(),
                                _lib.muon_strerror(st).decode(), self._describe(cfg)))
        handle = ctypes.c_void_p()
        st = _lib.muon_opt_create(ctypes.byref(cfg), ctypes.byref(handle))
        if st != _lib.OK:
            raise MuonError(st, "muon_opt_create")
        self._opt = handle
        try:
            for i, (p, name, role) in enumerate(zip(params, names, role_ids)):
                shape = (ctypes.c_long * p.ndim)(*p.shape)
                st = _lib.muon_opt_add_param(self._opt, name.encode(), _fptr(p), None, p.ndim,
                                             shape, role, None)
                if st != _lib.OK:
                    raise MuonError(st, "param %d (%s): %s" % (i, name, self._error()))
            st = _lib.muon_opt_finalize(self._opt)
            if st != _lib.OK:
                raise MuonError(st, self._error())
        except BaseException:
            self.close()
            raise
        self._cfg = cfg
        self._params = params  # the C side holds their buffers: keep them alive
        self._grads = None     # the last step's gradients, read by C through pointers
        self.names = names

    @staticmethod
    def _describe(cfg):
        return ", ".join("%s=%s" % (f, getattr(cfg, f)) for f, _ in cfg._fields_ if f != "ortho")

    def _error(self):
        if not self._opt:
            return ""
        return (_lib.muon_opt_error(self._opt) or b"").decode(errors="replace")

    def _live(self):
        if not self._opt:
            raise ValueError("muon: the optimizer is closed")
        return self._opt

    @property
    def params(self):
        """The arrays this optimizer updates (the caller's own objects)."""
        return list(self._params)

    def __len__(self):
        return len(self._params)

    def step(self, grads, lr_mult=1.0):
        """One update of every parameter in place, with learning rates times lr_mult.

        grads: one float32 array per parameter, of its shape (any memory order).
        A wrong count, shape or dtype raises ValueError naming the index and
        changes nothing. A gradient holding NaN or Inf: that parameter (and its
        state) is left as it was, every other parameter IS updated, and then
        MuonError (name "MUON_ERR_NONFINITE") is raised with .skipped listing
        the refused indices and .detail naming them."""
        opt = self._live()
        if isinstance(grads, np.ndarray) or not hasattr(grads, "__iter__"):
            raise ValueError("muon: grads must be a list of arrays, one per parameter")
        grads = list(grads)
        if len(grads) != len(self._params):
            raise ValueError("muon: %d grads for %d params" % (len(grads), len(self._params)))
        lr_mult = float(lr_mult)
        if not math.isfinite(lr_mult) or lr_mult < 0:
            raise ValueError("muon: lr_mult must be finite and >= 0, got %r" % lr_mult)
        ready = []
        for i, (g, p) in enumerate(zip(grads, self._params)):
            if not isinstance(g, np.ndarray):
                raise ValueError("muon: grad %d is a %s, not a numpy array" % (i, type(g).__name__))
            if g.dtype != np.float32:
                raise ValueError("muon: grad %d has dtype %s, expected float32" % (i, g.dtype))
            if g.shape != p.shape:
                raise ValueError("muon: grad %d has shape %s, param %d (%s) has %s"
                                 % (i, g.shape, i, self.names[i], p.shape))
            if np.may_share_memory(g, p):
                raise ValueError("muon: grad %d shares memory with its parameter" % i)
            ready.append(np.ascontiguousarray(g))
        for i, g in enumerate(ready):
            st = _lib.muon_opt_set_grad(opt, i, _fptr(g))
            if st != _lib.OK:
                raise MuonError(st, "grad %d: %s" % (i, self._error()))
        self._grads = ready
        st = _lib.muon_opt_step(opt, lr_mult)
        if st == _lib.ERR_NONFINITE:
            skipped = [i for i, info in enumerate(self.info()) if info["skipped"]]
            raise MuonError(st, self._error(), skipped)
        if st != _lib.OK:
            raise MuonError(st, self._error())

    def set_lr(self, lr, adam_lr=None):
        """Set the Muon group's lr and the AdamW group's (default: the same)."""
        adam_lr = lr if adam_lr is None else adam_lr
        st = _lib.muon_opt_set_lr(self._live(), float(lr), float(adam_lr))
        if st != _lib.OK:
            raise MuonError(st, self._error())

    def info(self):
        """One dict per parameter: name, role, uses_muon, rule, shape, rows, cols,
        batch (matrices in a 3-D stack), steps, skipped."""
        opt = self._live()
        out = []
        for i in range(_lib.muon_opt_num_params(opt)):
            pi = _lib.ParamInfo()
            st = _lib.muon_opt_param_info(opt, i, ctypes.byref(pi))
            if st != _lib.OK:
                raise MuonError(st, self._error())
            out.append({
                "name": pi.name.decode() if pi.name else "",
                "role": _lib.ROLE_NAMES[pi.role] if 0 <= pi.role < 4 else str(pi.role),
                "uses_muon": bool(pi.uses_muon),
                "rule": pi.rule.decode() if pi.rule else "",
                "batch": pi.batch,
                "shape": tuple(pi.shape[k] for k in range(pi.ndim)),
                "rows": pi.rows, "cols": pi.cols,
                "steps": pi.steps, "skipped": bool(pi.skipped),
            })
        return out

    @property
    def state_bytes(self):
        """Bytes of optimizer state (momentum and moment buffers)."""
        return int(_lib.muon_opt_state_bytes(self._live()))

    def save(self, path):
        """Write the optimizer state to path (temporary file + rename)."""
        st = _lib.muon_opt_save(self._live(), os.fsencode(path))
        if st != _lib.OK:
            raise MuonError(st, self._error() or os.fsdecode(path))

    def load(self, path):
        """Read state written by save() for the same names and shapes; on any
        mismatch nothing changes and MuonError names the parameter."""
        st = _lib.muon_opt_load(self._live(), os.fsencode(path))
        if st != _lib.OK:
            raise MuonError(st, self._error() or os.fsdecode(path))

    def state_to_bytes(self):
        """The same blob save() writes, as bytes."""
        opt = self._live()
        size = ctypes.c_size_t()
        st = _lib.muon_opt_serialized_size(opt, ctypes.byref(size))
        if st != _lib.OK:
            raise MuonError(st, self._error())
        buf = ctypes.create_string_buffer(max(size.value, 1))
        written = ctypes.c_size_t()
        st = _lib.muon_opt_save_buffer(opt, buf, size.value, ctypes.byref(written))
        if st != _lib.OK:
            raise MuonError(st, self._error())
        return buf.raw[:written.value]

    def state_from_bytes(self, blob):
        """Load a blob from state_to_bytes() (validated first, like load())."""
        blob = bytes(blob)
        buf = ctypes.create_string_buffer(blob, max(len(blob), 1))
        st = _lib.muon_opt_load_buffer(self._live(), buf, len(blob))
        if st != _lib.OK:
            raise MuonError(st, self._error())

    def close(self):
        """Free the C optimizer (idempotent); the arrays stay the caller's."""
        opt, self._opt = self._opt, None
        if opt:
            _lib.muon_opt_free(opt)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        # At interpreter exit _lib may already be torn down; never raise here.
        try:
            self.close()
        except Exception:
            pass


def _family_config(algo, lr, momentum, nesterov, weight_decay, scale, coeffs, steps, method,
                   adam_lr, adam_betas, adam_eps, adam_weight_decay, threads, precision,
                   restarts):
    """A muon_opt_config for one of the family's algorithms (ValueError when
    an option is bad); the variant fields are left at the library's defaults."""
    cfg = _lib.muon_opt_config_default()
    a = ctypes.c_int()
    if not isinstance(algo, str) or _lib.muon_algo_parse(algo.encode(), ctypes.byref(a)) != _lib.OK:
        raise ValueError("muon: unknown algorithm %r: expected one of %s"
                         % (algo, ", ".join(_lib.ALGO_NAMES)))
    cfg.algo = a.value
    cfg.lr = float(lr)
    cfg.momentum = float(momentum)
    cfg.nesterov = 1 if nesterov else 0
    cfg.weight_decay = float(weight_decay)
    sc = ctypes.c_int()
    if not isinstance(scale, str) or \
            _lib.muon_scale_parse(scale.encode(), ctypes.byref(sc)) != _lib.OK:
        raise ValueError("muon: unknown scale %r: expected moonlight, keller, spectral or none"
                         % (scale,))
    cfg.scale = sc.value
    cfg.ortho = _ortho_config(method, coeffs, steps, False, cfg.ortho, precision, restarts)
    cfg.adam_lr = float(lr if adam_lr is None else adam_lr)
    b1, b2 = adam_betas
    cfg.adam_beta1, cfg.adam_beta2 = float(b1), float(b2)
    cfg.adam_eps = float(adam_eps)
    cfg.adam_weight_decay = float(weight_decay if adam_weight_decay is None
                                  else adam_weight_decay)
    cfg.threads = int(threads)
    return cfg


class Muon(_Optimizer):
    """The hybrid: Muon for hidden matrices, AdamW for everything else.

    Without roles, every parameter with ndim >= 2 is a Muon matrix and every
    1-D parameter goes to AdamW; roles (one of "matrix", "embedding", "head",
    "vector" per parameter) override that: embedding, head and vector go to
    AdamW. adam_lr and adam_weight_decay default to lr and weight_decay (the
    Moonlight recipe). threads <= 0 uses every core. precision "mixed" runs
    all but the last two Newton-Schulz steps with bf16 operands; "auto" (the
    default) does so for the matrices where this machine's bf16 units make
    it faster. restarts:
    Gram NS restarts as for muon.orthogonalize (None = the default).
    spectrum_power p maps the singular values s -> s^p (through the SVD,
    rescaled to O's Frobenius norm); 0 is Muon. A 3-D matrix [E, rows, cols]
    is a stack of E matrices, each orthogonalized and scaled on its own."""

    def __init__(self, params, lr=1e-3, momentum=0.95, nesterov=True, weight_decay=0.1,
                 scale="moonlight", coeffs="polar-express", steps=5, method="auto",
                 adam_lr=None, adam_betas=(0.9, 0.95), adam_eps=1e-8, adam_weight_decay=None,
                 roles=None, names=None, threads=0, precision="auto", restarts=None,
                 spectrum_power=0.0):
        cfg = _family_config("muon", lr, momentum, nesterov, weight_decay, scale, coeffs, steps,
                             method, adam_lr, adam_betas, adam_eps, adam_weight_decay, threads,
                             precision, restarts)
        cfg.spectrum_power = float(spectrum_power)
        super().__init__(params, cfg, roles, names)


class AdamW(_Optimizer):
    """Decoupled AdamW with bias correction for every parameter."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01,
                 names=None, threads=0):
        cfg = _lib.muon_opt_config_default()
        cfg.algo = _lib.ALGO_ADAMW
        cfg.lr = cfg.adam_lr = float(lr)
        b1, b2 = betas
        cfg.adam_beta1, cfg.adam_beta2 = float(b1), float(b2)
        cfg.adam_eps = float(eps)
        cfg.weight_decay = cfg.adam_weight_decay = float(weight_decay)
        cfg.threads = int(threads)
        super().__init__(params, cfg, None, names)


class Family(_Optimizer):
    """Any algorithm of the family by name (docs/algorithms.md):

    "muon", "adamw", "sgdm" (SGD with momentum on every parameter), "scale"
    (SCALE), "fmuon", "smuon", "fanion-k", "muonall" (every parameter through
    Muon; 1-D ones take sign(N)), "adamw-muon" (AdamW for switch_step
    updates, then Muon with fresh momentum on the hidden matrices).
    The options are Muon's, plus fanion_alpha, sign_scale, fanion_k,
    spectrum_power and switch_step; roles as for Muon."""

    def __init__(self, params, algo, lr=1e-3, momentum=0.95, nesterov=True, weight_decay=0.1,
                 scale="moonlight", coeffs="polar-express", steps=5, method="auto",
                 adam_lr=None, adam_betas=(0.9, 0.95), adam_eps=1e-8, adam_weight_decay=None,
                 roles=None, names=None, threads=0, precision="auto", restarts=None,
                 fanion_alpha=0.5, sign_scale=0.01, fanion_k=16, spectrum_power=0.0,
                 switch_step=0):
        cfg = _family_config(algo, lr, momentum, nesterov, weight_decay, scale, coeffs, steps,
                             method, adam_lr, adam_betas, adam_eps, adam_weight_decay, threads,
                             precision, restarts)
        if isinstance(fanion_k, bool) or not isinstance(fanion_k, (int, np.integer)):
            raise ValueError("muon: fanion_k must be an integer >= 1, got %r" % (fanion_k,))
        if isinstance(switch_step, bool) or not isinstance(switch_step, (int, np.integer)):
            raise ValueError("muon: switch_step must be an integer >= 0, got %r" % (switch_step,))
        cfg.fanion_alpha = float(fanion_alpha)
        cfg.sign_scale = float(sign_scale)
        cfg.fanion_k = int(fanion_k)
        cfg.spectrum_power = float(spectrum_power)
        cfg.switch_step = int(switch_step)
        self.algo = algo
        super().__init__(params, cfg, roles, names)

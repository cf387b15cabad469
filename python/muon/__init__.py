"""muon: the Muon optimizer family from libmuon, for numpy arrays.

    import numpy as np, muon
    O = muon.orthogonalize(G)                       # a new float32 array ~ U V^T
    opt = muon.Muon([W1, b1, W2], lr=0.02)          # W* float32, C-contiguous
    opt.step([dW1, db1, dW2])                       # updates W1, b1, W2 in place

Loads build/libmuon.so through ctypes (env MUON_LIB overrides the path); see
docs/python.md. Errors from the C library raise MuonError; arguments the
binding can check itself (wrong ndim, dtype, shape, names) raise ValueError
before any C call, so nothing has changed when they are raised.
"""

import ctypes

import numpy as np

from . import _lib

__all__ = ["MuonError", "orthogonalize", "ortho_error", "Muon", "AdamW", "Family", "ALGORITHMS",
           "version",
           "set_blas_threads", "get_blas_threads", "METHODS"]

METHODS = ("auto", "ns", "gram-ns", "svd")
PRECISIONS = ("fp32", "mixed", "auto")


class MuonError(RuntimeError):
    """A call into libmuon failed.

    Attributes: status (the muon_status number), name ("MUON_ERR_..."),
    strerror (muon_strerror's text), detail (muon_opt_error's text, naming the
    parameter, where there is one), skipped (for MUON_ERR_NONFINITE from a
    step: indices of the parameters whose update was refused)."""

    def __init__(self, status, detail="", skipped=None):
        self.status = int(status)
        self.name = _lib.muon_status_name(self.status).decode()
        self.strerror = _lib.muon_strerror(self.status).decode()
        self.detail = detail or ""
        self.skipped = list(skipped) if skipped else []
        msg = "%s: %s" % (self.name, self.strerror)
        if self.detail:
            msg += " (%s)" % self.detail
        super().__init__(msg)


def version():
    """The library's version string, e.g. "0.1.0"."""
    return _lib.muon_version().decode()


def set_blas_threads(n):
    """Threads BLAS uses outside the optimizer's own parallel regions (<= 0: all cores)."""
    _lib.muon_set_blas_threads(int(n))


def get_blas_threads():
    return int(_lib.muon_get_blas_threads())


def _fptr(a):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_float))


def _restart_bits(restarts, method, steps):
    """gram_restarts bits from None (the default), "none" or steps 1..steps-1."""
    if restarts is None:
        return 0
    given = restarts
    if method in ("ns", "svd"):
        raise ValueError("muon: restarts apply to gram-ns (or auto), not method %r" % (method,))
    if isinstance(restarts, str) and restarts == "none":
        return 1  # MUON_GRAM_NO_RESTARTS
    if isinstance(restarts, (int, np.integer)) and not isinstance(restarts, bool):
        restarts = [restarts]
    top = min(steps, 32)
    try:
        ts = list(restarts)
    except TypeError:
        ts = None
    if not ts or any(isinstance(t, bool) or not isinstance(t, (int, np.integer))
                     or not 1 <= t < top for t in ts):
        raise ValueError("muon: restarts must be None, \"none\" or steps between 1 and %d "
                         "(restart before those steps), got %r" % (top - 1, given))
    bits = 0
    for t in ts:
        bits |= 1 << int(t)
    return bits


def _ortho_config(method, coeffs, steps, aol, base=None, precision="auto", restarts=None):
    """A muon_ortho_config from the Python arguments; ValueError when one is bad."""
    cfg = base if base is not None else _lib.muon_ortho_config_default()
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError("muon: unknown method %r: expected one of %s"
                         % (method, ", ".join(METHODS)))
    m = ctypes.c_int()
    st = _lib.muon_ortho_method_parse(method.encode(), ctypes.byref(m))
    if st != _lib.OK:
        raise ValueError("muon: the library rejects method %r (%s)"
                         % (method, _lib.muon_status_name(st).decode()))
    cfg.method = m.value
    if not isinstance(coeffs, str) or \
            _lib.muon_coeffs_parse(coeffs.encode(), ctypes.byref(cfg)) != _lib.OK:
        raise ValueError("muon: unknown coeffs %r: expected keller, quintic5, polar-express "
                         "or taylor-K with K = 1..5" % (coeffs,))
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError("muon: steps must be an integer >= 1, got %r" % (steps,))
    cfg.steps = int(steps)
    cfg.aol = 1 if aol else 0
    p = ctypes.c_int()
    if not isinstance(precision, str) or precision not in PRECISIONS or \
            _lib.muon_precision_parse(precision.encode(), ctypes.byref(p)) != _lib.OK:
        raise ValueError("muon: unknown precision %r: expected one of %s"
                         % (precision, ", ".join(PRECISIONS)))
    cfg.precision = p.value
    cfg.gram_restarts = _restart_bits(restarts, method, cfg.steps)
    st = _lib.muon_ortho_config_validate(ctypes.byref(cfg))
    if st != _lib.OK:
        raise ValueError("muon: invalid orthogonalization options method=%r coeffs=%r steps=%r "
                         "aol=%r precision=%r (%s)" % (method, coeffs, steps, aol, precision,
                                                       _lib.muon_status_name(st).decode()))
    return cfg


def _as_matrix(x, what):
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError("muon: %s needs a 2-D array, got %d-D with shape %s"
                         % (what, a.ndim, a.shape))
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError("muon: %s needs a real array (float32 or float64), got dtype %s"
                         % (what, a.dtype))
    # A C-contiguous float32 view or copy: the library reads row-major floats.
    return np.ascontiguousarray(a, dtype=np.float32)


def orthogonalize(x, method="auto", coeffs="polar-express", steps=5, aol=False,
                  precision="auto", restarts=None):
    """The polar factor of a 2-D matrix, approximately (exactly for "svd").

    x: a 2-D float32 or float64 array in any memory order (it is read as a
    float32 copy and never modified). method: "auto" | "ns" | "gram-ns" |
    "svd". coeffs: "polar-express" | "keller" | "quintic5" | "taylor-K".
    steps: iterations (>= 1). aol: AOL rescaling as the first step.
    precision: "fp32" | "mixed" (bf16 operands, fp32 accumulation, in all
    but the last two steps; not with "svd") | "auto" (mixed where this
    machine's bf16 units make it faster, else fp32). restarts (gram-ns): None for
    the default (before step 3), "none", or the steps to restart before
    (an int or a list, each 1..steps-1); see docs/ortho.md for the trade.
    Returns a new C-contiguous float32 array of x's shape. Raises ValueError
    for bad arguments and MuonError when the library refuses the input
    (e.g. MUON_ERR_NONFINITE for NaN or Inf, MUON_ERR_SIZE for an empty
    matrix)."""
    cfg = _ortho_config(method, coeffs, steps, aol, precision=precision, restarts=restarts)
    a = _as_matrix(x, "orthogonalize")
    out = np.empty(a.shape, dtype=np.float32)
    st = _lib.muon_orthogonalize(ctypes.byref(cfg), _fptr(a), _fptr(out), a.shape[0],
                                 a.shape[1], None, 0)
    if st != _lib.OK:
        raise MuonError(st, "orthogonalize of a %dx%d matrix" % a.shape)
    return out


def ortho_error(x):
    """max |s_i - 1| over the singular values of a 2-D matrix (double precision SVD)."""
    a = _as_matrix(x, "ortho_error")
    err = ctypes.c_double()
    st = _lib.muon_ortho_error(_fptr(a), a.shape[0], a.shape[1], ctypes.byref(err))
    if st != _lib.OK:
        raise MuonError(st, "ortho_error of a %dx%d matrix" % a.shape)
    return err.value


from .optim import AdamW, Family, Muon  # noqa: E402  (needs MuonError and _ortho_config above)

ALGORITHMS = _lib.ALGO_NAMES

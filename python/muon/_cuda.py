"""Loading libmuon_cuda.so (include/muon_cuda.h), the CUDA backend, on demand.

It is built beside libmuon.so when nvcc is found; a machine without it (or
without a CUDA driver) can still use everything else, so loading is lazy and
a failure says what is missing instead of breaking `import muon`.
"""

import ctypes
import os

from . import _lib

_state = {"lib": None, "error": None}


def _path():
    env = os.environ.get("MUON_CUDA_LIB")
    if env:
        return env
    return os.path.join(os.path.dirname(os.path.abspath(_lib.lib_path)), "libmuon_cuda.so")


def load():
    """The declared library, or raise RuntimeError saying why there is none."""
    if _state["lib"] is not None:
        return _state["lib"]
    if _state["error"] is not None:
        raise RuntimeError(_state["error"])
    path = _path()
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        _state["error"] = ("muon: the CUDA backend is not available (%s: %s); it is built by "
                           "`make` when nvcc is found, or use offload=True" % (path, e))
        raise RuntimeError(_state["error"])
    c = ctypes
    i, l, d, vp, cp = c.c_int, c.c_long, c.c_double, c.c_void_p, c.c_char_p
    table = {
        "muon_cuda_device_count": (i, []),
        "muon_cuda_create": (i, [i, c.POINTER(vp)]),
        "muon_cuda_free": (None, [vp]),
        "muon_cuda_last_error": (cp, []),
        "muon_cuda_error": (cp, [vp]),
        "muon_cuda_set_stream": (i, [vp, vp]),
        "muon_cuda_synchronize": (i, [vp]),
        "muon_cuda_orthogonalize": (i, [vp, c.POINTER(_lib.OrthoConfig), vp, vp, l, l, l]),
        "muon_cuda_opt_create": (i, [vp, c.POINTER(_lib.OptConfig), c.POINTER(vp)]),
        "muon_cuda_opt_free": (None, [vp]),
        "muon_cuda_opt_add_param": (i, [vp, cp, vp, vp, i, c.POINTER(l), i, c.POINTER(i)]),
        "muon_cuda_opt_set_buffers": (i, [vp, i, vp, vp]),
        "muon_cuda_opt_finalize": (i, [vp]),
        "muon_cuda_opt_step": (i, [vp, d]),
        "muon_cuda_opt_set_lr": (i, [vp, d, d]),
        "muon_cuda_opt_error": (cp, [vp]),
        "muon_cuda_opt_param_state": (i, [vp, i, c.POINTER(vp), c.POINTER(i), c.POINTER(l)]),
        "muon_cuda_opt_set_param_steps": (i, [vp, i, l]),
        "muon_cuda_opt_uses_muon": (i, [vp, i]),
        "muon_cuda_opt_hold_param": (i, [vp, i, i]),
    }
    for name, (res, args) in table.items():
        try:
            f = getattr(lib, name)
        except AttributeError:
            _state["error"] = "muon: %s lacks %s (rebuild with `make`)" % (path, name)
            raise RuntimeError(_state["error"])
        f.restype = res
        f.argtypes = args
    _state["lib"] = lib
    return lib


def device_count():
    """CUDA devices the backend can use (0 when it or a driver is missing)."""
    try:
        return int(load().muon_cuda_device_count())
    except RuntimeError:
        return 0

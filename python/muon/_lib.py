"""Loading libmuon.so and declaring the C API with ctypes (include/muon.h).

Every function the binding calls is declared here with its argtypes and
restype; the structs mirror the header field by field (enums are c_int,
unsigned is c_uint), and their defaults come from the library's own
*_default() functions, so Python never restates a default.
"""

import ctypes
import ctypes.util
import os

# muon_status values, in the header's order.
STATUS_NAMES = (
    "MUON_OK", "MUON_ERR_NULL", "MUON_ERR_SIZE", "MUON_ERR_SHAPE", "MUON_ERR_ARG",
    "MUON_ERR_NONFINITE", "MUON_ERR_NOMEM", "MUON_ERR_IO", "MUON_ERR_FORMAT",
    "MUON_ERR_CHECKSUM", "MUON_ERR_VERSION", "MUON_ERR_MISMATCH", "MUON_ERR_STATE",
    "MUON_ERR_DUPLICATE", "MUON_ERR_ALIAS", "MUON_ERR_WORKSPACE", "MUON_ERR_LAPACK",
    "MUON_ERR_UNSUPPORTED",
)
OK = 0
ERR_NONFINITE = STATUS_NAMES.index("MUON_ERR_NONFINITE")

ALGO_MUON, ALGO_ADAMW = 0, 1
# muon_algo order: the names muon_algo_parse takes
ALGO_NAMES = ("muon", "adamw", "sgdm", "scale", "fmuon", "smuon", "fanion-k", "muonall",
              "adamw-muon")
ROLE_NAMES = ("matrix", "embedding", "head", "vector")  # muon_role order
MAX_NDIM = 8  # muon_param_info.shape has 8 entries


class OrthoConfig(ctypes.Structure):
    """muon_ortho_config."""
    _fields_ = [
        ("method", ctypes.c_int),
        ("coeffs", ctypes.c_int),
        ("taylor_k", ctypes.c_int),
        ("steps", ctypes.c_int),
        ("safety", ctypes.c_double),
        ("eps", ctypes.c_double),
        ("aol", ctypes.c_int),
        ("gram_restarts", ctypes.c_uint),
        ("precision", ctypes.c_int),
    ]


class OptConfig(ctypes.Structure):
    """muon_opt_config."""
    _fields_ = [
        ("algo", ctypes.c_int),
        ("lr", ctypes.c_double),
        ("momentum", ctypes.c_double),
        ("nesterov", ctypes.c_int),
        ("weight_decay", ctypes.c_double),
        ("scale", ctypes.c_int),
        ("ortho", OrthoConfig),
        ("adam_lr", ctypes.c_double),
        ("adam_beta1", ctypes.c_double),
        ("adam_beta2", ctypes.c_double),
        ("adam_eps", ctypes.c_double),
        ("adam_weight_decay", ctypes.c_double),
        ("threads", ctypes.c_int),
        ("fanion_alpha", ctypes.c_double),
        ("sign_scale", ctypes.c_double),
        ("fanion_k", ctypes.c_int),
        ("spectrum_power", ctypes.c_double),
        ("switch_step", ctypes.c_long),
    ]


class ParamInfo(ctypes.Structure):
    """muon_param_info."""
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("role", ctypes.c_int),
        ("uses_muon", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("shape", ctypes.c_long * MAX_NDIM),
        ("rows", ctypes.c_long),
        ("cols", ctypes.c_long),
        ("steps", ctypes.c_long),
        ("skipped", ctypes.c_int),
        ("batch", ctypes.c_long),
        ("rule", ctypes.c_char_p),
    ]


def _candidates():
    env = os.environ.get("MUON_LIB")
    if env:
        # An explicit choice is final: falling back would hide a wrong path.
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    # `pip install .` puts the library inside the package (setup.py); the
    # repository's own build comes next, then an installed one.
    out = [os.path.join(here, "libmuon.so.0")]
    out.append(os.path.normpath(os.path.join(here, "..", "..", "build", "libmuon.so")))
    found = ctypes.util.find_library("muon")
    if found:
        out.append(found)
    return out


def _load():
    tried = []
    for path in _candidates():
        if path != os.environ.get("MUON_LIB") and os.path.sep in path and \
                not os.path.exists(path):
            tried.append("%s (no such file)" % path)
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
    raise ImportError("muon: cannot load libmuon.so; run `make` first or set MUON_LIB. "
                      "Tried: " + "; ".join(tried))


lib, lib_path = _load()


def _missing(name):
    def stub(*args):
        raise RuntimeError("muon: %s does not export %s (rebuild with `make`)" % (lib_path, name))
    stub.__name__ = name
    return stub


def _declare(name, restype, argtypes):
    """The C function `name` with its prototype; a stub raising a clear error
    if this build of the library lacks it (so importing never fails on it)."""
    try:
        f = getattr(lib, name)
    except AttributeError:
        return _missing(name)
    f.restype = restype
    f.argtypes = argtypes
    return f


_c = ctypes
_i, _l, _d, _sz = _c.c_int, _c.c_long, _c.c_double, _c.c_size_t
_vp, _cp, _fp = _c.c_void_p, _c.c_char_p, _c.POINTER(_c.c_float)
_opt = _c.c_void_p  # muon_opt * (opaque)

muon_version = _declare("muon_version", _cp, [])
muon_strerror = _declare("muon_strerror", _cp, [_i])
muon_status_name = _declare("muon_status_name", _cp, [_i])
muon_set_blas_threads = _declare("muon_set_blas_threads", None, [_i])
muon_get_blas_threads = _declare("muon_get_blas_threads", _i, [])

muon_ortho_config_default = _declare("muon_ortho_config_default", OrthoConfig, [])
muon_ortho_method_parse = _declare("muon_ortho_method_parse", _i, [_cp, _c.POINTER(_i)])
muon_precision_parse = _declare("muon_precision_parse", _i, [_cp, _c.POINTER(_i)])
muon_coeffs_parse = _declare("muon_coeffs_parse", _i, [_cp, _c.POINTER(OrthoConfig)])
muon_ortho_config_validate = _declare("muon_ortho_config_validate", _i,
                                      [_c.POINTER(OrthoConfig)])
muon_orthogonalize = _declare("muon_orthogonalize", _i,
                              [_c.POINTER(OrthoConfig), _fp, _fp, _l, _l, _vp, _sz])
muon_ortho_error = _declare("muon_ortho_error", _i, [_fp, _l, _l, _c.POINTER(_d)])

muon_opt_config_default = _declare("muon_opt_config_default", OptConfig, [])
muon_opt_config_validate = _declare("muon_opt_config_validate", _i, [_c.POINTER(OptConfig)])
muon_scale_parse = _declare("muon_scale_parse", _i, [_cp, _c.POINTER(_i)])
muon_role_parse = _declare("muon_role_parse", _i, [_cp, _c.POINTER(_i)])
muon_algo_parse = _declare("muon_algo_parse", _i, [_cp, _c.POINTER(_i)])
muon_opt_create = _declare("muon_opt_create", _i, [_c.POINTER(OptConfig), _c.POINTER(_opt)])
muon_opt_free = _declare("muon_opt_free", None, [_opt])
muon_opt_add_param = _declare("muon_opt_add_param", _i,
                              [_opt, _cp, _fp, _fp, _i, _c.POINTER(_l), _i, _c.POINTER(_i)])
muon_opt_set_grad = _declare("muon_opt_set_grad", _i, [_opt, _i, _fp])
muon_opt_finalize = _declare("muon_opt_finalize", _i, [_opt])
muon_opt_step = _declare("muon_opt_step", _i, [_opt, _d])
muon_opt_set_lr = _declare("muon_opt_set_lr", _i, [_opt, _d, _d])
muon_opt_error = _declare("muon_opt_error", _cp, [_opt])
muon_opt_num_params = _declare("muon_opt_num_params", _i, [_opt])
muon_opt_param_info = _declare("muon_opt_param_info", _i, [_opt, _i, _c.POINTER(ParamInfo)])
muon_opt_state_bytes = _declare("muon_opt_state_bytes", _sz, [_opt])
muon_opt_save = _declare("muon_opt_save", _i, [_opt, _cp])
muon_opt_load = _declare("muon_opt_load", _i, [_opt, _cp])
muon_opt_serialized_size = _declare("muon_opt_serialized_size", _i, [_opt, _c.POINTER(_sz)])
muon_opt_save_buffer = _declare("muon_opt_save_buffer", _i,
                                [_opt, _vp, _sz, _c.POINTER(_sz)])
muon_opt_load_buffer = _declare("muon_opt_load_buffer", _i, [_opt, _vp, _sz])
muon_opt_set_buffers = _declare("muon_opt_set_buffers", _i,
                                [_opt, _i, _fp, _fp, _i, _c.POINTER(_l)])
muon_opt_param_state = _declare("muon_opt_param_state", _i,
                                [_opt, _i, _c.POINTER(_fp), _c.POINTER(_i), _c.POINTER(_l)])
muon_opt_set_param_steps = _declare("muon_opt_set_param_steps", _i, [_opt, _i, _l])
muon_opt_hold_param = _declare("muon_opt_hold_param", _i, [_opt, _i, _i])

"""Which array namespace a solve runs in."""

from __future__ import annotations

import array_api_compat

from .._kernels.namespaces import namespace_of

__all__ = ["namespace_of", "select_namespace", "BACKENDS"]

#: What ``backend=`` accepts.
BACKENDS = (None, "numpy", "cupy")
_CUPY_EXTRAS = ("pip install 'chebpan[cuda12]' (CUDA 12) or 'chebpan[cuda13]' (CUDA 13)")


def _foreign_namespace(y0):
    """The namespace of ``y0`` if it is a non-NumPy array-API array, else None."""
    if array_api_compat.is_array_api_obj(y0) and not array_api_compat.is_numpy_array(y0):
        return array_api_compat.array_namespace(y0)
    return None


def _cupy_namespace():
    try:
        import cupy
    except ImportError:
        raise ImportError(
            "backend='cupy' needs CuPy, which is not installed: " + _CUPY_EXTRAS + "."
        ) from None
    try:
        n_devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver, no runtime
        raise RuntimeError(f"backend='cupy' needs a CUDA GPU; CuPy cannot use one: {exc}") \
            from None
    if n_devices == 0:
        raise RuntimeError("backend='cupy' needs a CUDA GPU; CuPy found none.")
    import array_api_compat.cupy as xp

    return xp


def select_namespace(backend, y0):
    """The array namespace of a solve, or None for NumPy (scipy's path).

    Parameters
    ----------
    backend : {None, "numpy", "cupy"}
        ``None``: the namespace of ``y0`` when it is an array of another
        array-API library (CuPy, array_api_strict, ...), NumPy otherwise.
    y0 : array_like

    Raises
    ------
    ValueError
        An unknown ``backend``, or a ``y0`` of another library than the
        backend named (``y0`` is never copied between libraries or devices
        behind the user's back; what ``fun`` and ``jac`` return is converted
        to the solve's library and device).
    ImportError, RuntimeError
        ``backend="cupy"`` without CuPy (naming the extra to install) or
        without a GPU.

    Examples
    --------
    >>> select_namespace(None, [1.0, 2.0]) is None
    True
    """
    if backend not in BACKENDS:
        raise ValueError(f"`backend` must be None, 'numpy' or 'cupy', not {backend!r}.")
    foreign = _foreign_namespace(y0)
    if backend == "cupy":
        xp = _cupy_namespace()
        if foreign is not None and not array_api_compat.is_cupy_namespace(foreign):
            raise ValueError(f"`y0` is an array of {foreign.__name__}, but backend='cupy'; "
                             "convert it first (e.g. cupy.asarray).")
        return xp
    if backend == "numpy" and foreign is not None:
        raise ValueError(f"`y0` is an array of {foreign.__name__}, but backend='numpy'; "
                         "convert it to NumPy first.")
    return foreign

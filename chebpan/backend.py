"""Which array namespace a solve runs in."""

from __future__ import annotations

import contextlib

import array_api_compat

__all__ = ["namespace_of", "select_namespace", "single_threaded_blas", "PicklableNamespace"]

#: What ``backend=`` accepts.
BACKENDS = (None, "numpy", "cupy")
_CUPY_EXTRAS = ("pip install 'chebpan[cuda12]' (CUDA 12) or 'chebpan[cuda13]' (CUDA 13)")


def namespace_of(*arrays):
    """The array-API namespace of ``arrays``, native where the library is compliant.

    NumPy ≥ 2.1 implements the standard itself; using it directly avoids the
    per-call overhead of array-api-compat's wrappers in the solver's hot loop.
    Other libraries get array-api-compat's namespace.

    Examples
    --------
    >>> import numpy as np
    >>> namespace_of(np.zeros(2)).__name__
    'numpy'
    """
    xp = array_api_compat.array_namespace(*arrays)
    if array_api_compat.is_numpy_namespace(xp):
        import numpy

        if hasattr(numpy, "astype"):  # NumPy >= 2.1
            return numpy
    return xp


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


class PicklableNamespace:
    """Mixin: pickle and copy an object that holds its array namespace ``xp``.

    Modules cannot be pickled, so the namespace is left out and found again
    on loading from the arrays themselves (attribute ``_namespace_source``),
    the way the solve found it: results cross multiprocessing, joblib and
    Dask like scipy's.
    """

    _namespace_source = "ts"

    def __getstate__(self):
        state = dict(self.__dict__)
        state["xp"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.xp = namespace_of(getattr(self, self._namespace_source))


_controller = None


@contextlib.contextmanager
def single_threaded_blas(xp):
    """Run the block with NumPy's BLAS limited to one thread.

    The Newton matrices are small (n ≈ 100): a multi-threaded GEMM of that
    size gains nothing, and when another process occupies a core its threads
    spin and wait, which made ``AᵀA`` 15–20× slower on a loaded 2-core
    machine.  The limit (threadpoolctl, ~8 µs per use) applies only to
    chebpan's own products, never to the user's ``fun``.  No-op for other
    namespaces.
    """
    global _controller
    if not array_api_compat.is_numpy_namespace(xp):
        yield
        return
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    with _controller.limit(limits=1, user_api="blas"):
        yield

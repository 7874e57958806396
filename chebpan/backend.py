"""Which array namespace a solve runs in."""

from __future__ import annotations

import contextlib

import array_api_compat

__all__ = ["namespace_of", "single_threaded_blas"]


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

"""Fixtures and helpers shared by chebpan's tests.

- :func:`cupy_namespace` / :data:`GPU` / :data:`needs_gpu`: the one check for CuPy with a
  CUDA GPU (tests that need it are skipped without one);
- the ``namespace`` fixture: the array namespaces besides NumPy that the core must run
  on (``array_api_strict`` everywhere, CuPy where a GPU is present);
- :func:`host`: any backend's array as a NumPy array;
- :func:`positive_definite`, :func:`indefinite`: random symmetric test matrices.

Test modules import the helpers with ``from conftest import ...`` (pytest puts this
folder on ``sys.path``).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest


@functools.cache
def cupy_namespace():
    """``array_api_compat.cupy`` when CuPy imports and sees a CUDA GPU, else None."""
    try:
        import array_api_compat.cupy as cxp
        import cupy

        return cxp if cupy.cuda.runtime.getDeviceCount() > 0 else None
    except Exception:
        return None


#: Whether CuPy and a CUDA GPU are available.
GPU = cupy_namespace() is not None
#: Skips a test without CuPy and a CUDA GPU.
needs_gpu = pytest.mark.skipif(not GPU, reason="needs CuPy and a CUDA GPU")


def host(a):
    """``a`` (a NumPy, CuPy or other array-API array) as a NumPy array."""
    return a.get() if hasattr(a, "get") else np.asarray(a)


def positive_definite(rng, K, n, dtype=np.float64):
    """K symmetric positive definite n×n matrices ``AᵀA + n I``."""
    A = rng.standard_normal((K, n, n))
    return (np.swapaxes(A, 1, 2) @ A + n * np.eye(n)).astype(dtype)


def indefinite(rng, K, n, dtype=np.float64):
    """K symmetric (mostly indefinite) n×n matrices of varied scale."""
    A = rng.standard_normal((K, n, n)) * rng.uniform(0.1, 10, (K, 1, 1))
    return ((A + np.swapaxes(A, 1, 2)) / 2).astype(dtype)


def _strict():
    return pytest.importorskip("array_api_strict")


@pytest.fixture(params=["array_api_strict", pytest.param("cupy", marks=needs_gpu)])
def namespace(request):
    """An array namespace other than NumPy: ``array_api_strict``, or CuPy on a GPU."""
    return _strict() if request.param == "array_api_strict" else cupy_namespace()

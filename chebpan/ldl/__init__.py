"""Modified Cholesky LDLᵀ (Gill–Murray–Wright) for the Newton step, with backend dispatch.

``P (H + E) Pᵀ = L D Lᵀ`` with L unit lower triangular, ``d_j >= δ``,
``|l_ij| sqrt(d_j) <= β`` and E >= 0 diagonal (zero when H is safely positive definite);
see :func:`chebpan.ldl.reference.modified_ldl` for the parameters and pivoting rule.

Backends, chosen from the namespace ``xp`` of the arrays:

- NumPy: numba kernels (:mod:`chebpan.ldl.numba_kernel`, imported on first use), unless
  the environment variable ``CHEBPAN_DISABLE_NUMBA=1`` selects the reference code;
- CuPy: CUDA kernels, one thread block per batch member
  (:mod:`chebpan.ldl.cupy_kernel`; compiled with NVRTC on first use per dtype and
  cached). Results stay on the device of the input;
- anything else (``array_api_strict``, torch, ...): the array API reference
  (:mod:`chebpan.ldl.reference`).

The three implementations agree to rounding on the same inputs: the numba and CUDA
kernels perform the same floating-point operations in the same order, and the reference
the same algorithm in a different (vectorised) order.
"""

from __future__ import annotations

import os

import array_api_compat

from . import reference
from .reference import LDLFactors

__all__ = ["LDLFactors", "modified_ldl", "ldl_solve", "modified_ldl_solve"]


def _use_numba(xp) -> bool:
    return array_api_compat.is_numpy_namespace(xp) and os.environ.get(
        "CHEBPAN_DISABLE_NUMBA", ""
    ).strip() not in ("1", "true", "True", "yes")


def _kernels(xp):
    """The kernel module for ``xp`` (numba for NumPy, CUDA for CuPy), or None for the
    reference code."""
    if _use_numba(xp):
        from . import numba_kernel

        return numba_kernel
    if array_api_compat.is_cupy_namespace(xp):
        from . import cupy_kernel

        return cupy_kernel
    return None


def modified_ldl(H, *, xp) -> LDLFactors:
    """Modified Cholesky factorisation ``P (H + E) Pᵀ = L D Lᵀ`` of a batch of matrices.

    Parameters
    ----------
    H : array, shape (K, n, n)
        Symmetric real float32/float64 matrices; only the lower triangle is read.
    xp : namespace
        Array API namespace of ``H``.

    Returns
    -------
    LDLFactors
        ``(L, d, perm, e)``: unit lower triangular L (K, n, n), D's diagonal d (K, n),
        pivot order perm (K, n) with ``(P H Pᵀ)[i, j] == H[perm[i], perm[j]]``, and the
        diagonal e (K, n) of E in the original ordering.

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> H = xp.asarray([[[4.0, 2.0, 1.0], [2.0, 6.0, 3.0], [1.0, 3.0, -0.004]]])
    >>> [round(float(v), 9) for v in modified_ldl(H, xp=xp).e[0]]
    [0.0, 0.0, 3.008]
    """
    kernels = _kernels(xp)
    if kernels is not None:
        return kernels.modified_ldl(H)
    return reference.modified_ldl(H, xp=xp)


def ldl_solve(factors: LDLFactors, b, *, xp):
    """Solve ``(H + E) x = b`` given the factors from :func:`modified_ldl`.

    Parameters
    ----------
    factors : LDLFactors
        Factors of a batch of K matrices of size n.
    b : array, shape (K, n) or (K, n, r)
        Right-hand side(s).
    xp : namespace
        Array API namespace of the factors and ``b``.

    Returns
    -------
    x : array, same shape as ``b``

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> H = xp.asarray([[[4.0, 2.0], [2.0, 3.0]]])
    >>> x = ldl_solve(modified_ldl(H, xp=xp), xp.asarray([[6.0, 5.0]]), xp=xp)
    >>> [round(float(v), 12) for v in x[0]]
    [1.0, 1.0]
    """
    kernels = _kernels(xp)
    if kernels is not None:
        return kernels.ldl_solve(factors, b)
    return reference.ldl_solve(factors, b, xp=xp)


def modified_ldl_solve(H, b, *, xp):
    """Factorise and solve ``(H + E) x = b`` in one call (the Newton-step hot path).

    Parameters
    ----------
    H : array, shape (K, n, n)
        Symmetric real float32/float64 matrices; only the lower triangle is read.
    b : array, shape (K, n) or (K, n, r)
        Right-hand side(s).
    xp : namespace
        Array API namespace of ``H`` and ``b``.

    Returns
    -------
    x : array, same shape as ``b``
        Solution of ``(H + E) x = b``.
    e : array, shape (K, n)
        Diagonal of the modification E, in the original ordering.

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> H = xp.asarray([[[4.0, 2.0], [2.0, 3.0]]])
    >>> x, e = modified_ldl_solve(H, xp.asarray([[6.0, 5.0]]), xp=xp)
    >>> [round(float(v), 12) for v in x[0]], [float(v) for v in e[0]]
    ([1.0, 1.0], [0.0, 0.0])
    """
    kernels = _kernels(xp)
    if kernels is not None:
        return kernels.modified_ldl_solve(H, b)
    factors = reference.modified_ldl(H, xp=xp)
    return reference.ldl_solve(factors, b, xp=xp), factors.e

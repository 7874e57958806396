"""Modified Cholesky LDLᵀ (Gill–Murray–Wright) for the Newton step, with kernel dispatch.

``P (H + E) Pᵀ = L D Lᵀ`` with L unit lower triangular, ``d_j >= δ``,
``|l_ij| sqrt(d_j) <= β`` and E >= 0 diagonal (zero when H is safely positive definite);
see :func:`chebpan._core.ldl_reference.modified_ldl` for the parameters and pivoting
rule, and docs/algorithm.md, "Newton steps".

The implementation is chosen from the namespace ``xp`` of the arrays by
:func:`chebpan._kernels.dispatch.ldl_kernels`: numba kernels for NumPy, CUDA kernels for
CuPy (results stay on the device of the input), the array-API reference
(:mod:`chebpan._core.ldl_reference`) for anything else.  The three agree to rounding on
the same inputs: the numba and CUDA kernels perform the same floating-point operations
in the same order, and the reference the same algorithm in a different (vectorised)
order.
"""

from __future__ import annotations

from .._kernels.dispatch import LDLFactors, ldl_kernels
from . import ldl_reference as reference

__all__ = ["LDLFactors", "modified_ldl", "ldl_solve", "modified_ldl_solve"]


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
    kernels = ldl_kernels(xp)
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
    kernels = ldl_kernels(xp)
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
    kernels = ldl_kernels(xp)
    if kernels is not None:
        return kernels.modified_ldl_solve(H, b)
    factors = reference.modified_ldl(H, xp=xp)
    return reference.ldl_solve(factors, b, xp=xp), factors.e

"""Modified Cholesky LDLᵀ of Gill, Murray and Wright, written against the array API.

This is the portable reference implementation: every operation is an array API standard
function of the namespace ``xp`` passed in, so it runs unchanged on any conforming backend
(NumPy, CuPy, ``array_api_strict``, ...). It loops over the n columns in Python and
vectorises over the batch axis K; the NumPy hot path is the numba kernel in
:mod:`chebpan._kernels.ldl_numba`.

Instead of swapping rows and columns of a work matrix at every pivot (which would need
per-batch-member in-place indexing), the elimination runs in the original index space:
the pivot is *selected* with a mask of the rows not yet eliminated, and the permutation is
applied once to L at the end.
"""

from __future__ import annotations

import math

import array_api_compat

from .._kernels.dispatch import LDLFactors

__all__ = ["LDLFactors", "modified_ldl", "ldl_solve"]


def _check_matrix(H, xp):
    if H.ndim != 3 or H.shape[-1] != H.shape[-2]:
        raise ValueError(f"H must have shape (K, n, n), got {H.shape}")
    if not xp.isdtype(H.dtype, "real floating"):
        raise TypeError(f"H must be real floating point, got {H.dtype}")


def _bounds(gamma, xi, n, eps, xp):
    """GMW bounds δ (smallest admissible d_j) and β² (bound on l_ij² d_j), per batch member."""
    delta = eps * xp.maximum(gamma + xi, 1.0)
    beta2 = xp.maximum(gamma, eps)
    if n > 1:
        beta2 = xp.maximum(beta2, xi / math.sqrt(n * n - 1))
    return delta, beta2


def modified_ldl(H, *, xp) -> LDLFactors:
    """Modified Cholesky factorisation with symmetric pivoting (Gill–Murray–Wright).

    Computes ``P (H + E) Pᵀ = L D Lᵀ`` with L unit lower triangular, ``d_j >= δ``,
    ``|l_ij| sqrt(d_j) <= β`` and E diagonal, ``E >= 0``; E = 0 when H is sufficiently
    positive definite. Parameters (per batch member): ``γ = max|h_ii|``,
    ``ξ = max_{i≠j} |h_ij|``, ``δ = ε max(γ + ξ, 1)``, ``β² = max(γ, ξ / sqrt(n² - 1), ε)``
    (``max(γ, ε)`` for n = 1), ε the machine epsilon of the dtype. At step j the remaining
    row/column with the largest ``|c_qq|`` is pivoted in (first one on ties) and
    ``d_j = max(|c_jj|, θ_j² / β², δ)`` with ``θ_j`` the largest remaining ``|c_ij|``.

    Parameters
    ----------
    H : array, shape (K, n, n)
        Batch of symmetric matrices, real float32 or float64. Only the lower triangle
        (diagonal included) is read.
    xp : namespace
        Array API namespace of ``H``.

    Returns
    -------
    LDLFactors
        ``(L, d, perm, e)``: L (K, n, n), d (K, n), perm (K, n) int64, e (K, n); see
        :class:`LDLFactors`.

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> H = xp.asarray([[[4.0, 2.0, 1.0], [2.0, 6.0, 3.0], [1.0, 3.0, -0.004]]])
    >>> f = modified_ldl(H, xp=xp)
    >>> [round(float(v), 6) for v in f.e[0]]
    [0.0, 0.0, 3.008]
    >>> [int(p) for p in f.perm[0]]
    [1, 0, 2]
    """
    _check_matrix(H, xp)
    K, n = H.shape[0], H.shape[-1]
    dt = H.dtype
    dev = array_api_compat.device(H)
    eps = float(xp.finfo(dt).eps)

    idx = xp.arange(n, device=dev)
    on_diag = idx[:, None] == idx[None, :]
    C = xp.where(idx[:, None] >= idx[None, :], H, xp.matrix_transpose(H))
    cdiag = xp.sum(xp.where(on_diag, C, 0.0), axis=-1)

    gamma = xp.max(xp.abs(cdiag), axis=-1)
    xi = xp.max(xp.where(on_diag, 0.0, xp.abs(C)), axis=(-2, -1))
    delta, beta2 = _bounds(gamma, xi, n, eps, xp)

    remaining = xp.ones((K, n), dtype=xp.bool, device=dev)
    e = xp.zeros((K, n), dtype=dt, device=dev)
    d_cols, perm_cols, L_cols = [], [], []
    for _ in range(n):
        # largest remaining |c_qq| (GMW); argmax takes the first, i.e. the smallest
        # original index, on ties
        q = xp.argmax(xp.where(remaining, xp.abs(cdiag), -1.0), axis=-1)
        pivot = idx[None, :] == q[:, None]  # (K, n) one-hot of the pivot row
        cqq = xp.sum(xp.where(pivot, cdiag, 0.0), axis=-1)
        remaining = xp.logical_and(remaining, xp.logical_not(pivot))
        # column q of the current Schur complement, restricted to the rows still to go
        col = xp.sum(xp.where(pivot[:, None, :], C, 0.0), axis=-1)
        col = xp.where(remaining, col, 0.0)

        theta = xp.max(xp.abs(col), axis=-1)
        dj = xp.maximum(xp.maximum(xp.abs(cqq), theta * theta / beta2), delta)
        e = e + xp.where(pivot, (dj - cqq)[:, None], 0.0)

        lcol = col / dj[:, None]
        C = C - lcol[:, :, None] * col[:, None, :]
        cdiag = cdiag - lcol * col

        d_cols.append(dj)
        perm_cols.append(q)
        L_cols.append(xp.where(pivot, 1.0, lcol))

    d = xp.stack(d_cols, axis=-1)
    perm = xp.astype(xp.stack(perm_cols, axis=-1), xp.int64)
    # rows of L_orig are in the original order; L = P L_orig (P one-hot, so the product is exact)
    L_orig = xp.stack(L_cols, axis=-1)
    L = _permutation_matrix(perm, dt, xp) @ L_orig
    return LDLFactors(L, d, perm, e)


def _permutation_matrix(perm, dtype, xp):
    """P with ``P[k, i, j] = 1`` iff ``perm[k, i] == j``."""
    n = perm.shape[-1]
    idx = xp.arange(n, dtype=perm.dtype, device=array_api_compat.device(perm))
    return xp.astype(perm[:, :, None] == idx[None, None, :], dtype)


def ldl_solve(factors: LDLFactors, b, *, xp):
    """Solve ``(H + E) x = b`` with the factors of :func:`modified_ldl`.

    Parameters
    ----------
    factors : LDLFactors
        Output of :func:`modified_ldl` for a batch of K matrices of size n.
    b : array, shape (K, n) or (K, n, r)
        Right-hand side(s).
    xp : namespace
        Array API namespace of the factors and ``b``.

    Returns
    -------
    x : array, same shape as ``b``
        Solution of ``(H + E) x = b``.

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> H = xp.asarray([[[4.0, 2.0], [2.0, 3.0]]])
    >>> x = ldl_solve(modified_ldl(H, xp=xp), xp.asarray([[6.0, 5.0]]), xp=xp)
    >>> [round(float(v), 12) for v in x[0]]
    [1.0, 1.0]
    """
    L, d, perm, _ = factors
    vector = b.ndim == 2
    if vector:
        b = b[:, :, None]
    n = L.shape[-1]
    P = _permutation_matrix(perm, L.dtype, xp)
    strict = L - xp.eye(n, dtype=L.dtype, device=array_api_compat.device(L))

    z = P @ b
    # column-oriented substitutions: entries already final are left untouched because the
    # strictly triangular part of L has zeros there
    for i in range(n):
        z = z - strict[:, :, i, None] * z[:, i, None, :]
    z = z / d[:, :, None]
    for i in range(n - 1, -1, -1):
        z = z - strict[:, i, :, None] * z[:, i, None, :]
    x = xp.matrix_transpose(P) @ z
    return x[:, :, 0] if vector else x

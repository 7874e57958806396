"""Modified Cholesky LDLᵀ (Gill–Murray–Wright) as numba kernels on NumPy arrays.

Same algorithm and conventions as :mod:`chebpan._core.ldl_reference`, but with physical
symmetric row/column swaps in a row-major work matrix whose lower triangle is overwritten by L, so
the inner Schur-complement loop runs over contiguous memory. Imported lazily by
:mod:`chebpan._kernels.dispatch` (numba is only needed on the NumPy path).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import uint64

from .dispatch import LDLFactors

__all__ = ["modified_ldl", "ldl_solve", "modified_ldl_solve"]


@numba.njit(cache=True, error_model="numpy")
def _factor(C, perm, d, e, w, eps):
    """Factorise C (n, n) in place: on return its strict lower triangle holds L and its
    strict upper triangle Lᵀ (so both substitutions can run over contiguous rows).

    perm, d receive the pivot order and D (pivoted order), e the modification (original
    order); w (n,) is scratch. Only the lower triangle of C is read.
    """
    n = C.shape[0]
    gamma = 0.0
    xi = 0.0
    for i in range(n):
        gamma = max(gamma, abs(C[i, i]))
        for k in range(i):
            xi = max(xi, abs(C[i, k]))
    delta = eps * max(gamma + xi, 1.0)
    beta2 = max(gamma, eps)
    if n > 1:
        beta2 = max(beta2, xi / math.sqrt(n * n - 1.0))

    for i in range(n):
        perm[i] = i
    for j in range(n):
        # largest |c_qq|; ties go to the smallest original index, as in the reference
        q = j
        best = abs(C[j, j])
        for i in range(j + 1, n):
            a = abs(C[i, i])
            if a > best or (a == best and perm[i] < perm[q]):
                q = i
                best = a
        if q != j:
            _swap_symmetric(C, j, q)
            perm[j], perm[q] = perm[q], perm[j]

        cjj = C[j, j]
        theta = 0.0
        for i in range(j + 1, n):
            w[i] = C[i, j]
            theta = max(theta, abs(w[i]))
        d[j] = max(abs(cjj), theta * theta / beta2, delta)
        dj = d[j]  # in the working dtype, so float32 stays float32 below
        e[perm[j]] = dj - cjj

        # Unsigned loop indices: numba then drops the negative-index wraparound, which
        # lets LLVM vectorise this O(n³) loop (about 4x faster at n = 90).
        for i in range(j + 1, n):
            li = w[i] / dj
            for k in range(uint64(j + 1), uint64(i + 1)):
                C[i, k] -= li * w[k]
            C[i, j] = li
            C[j, i] = li


@numba.njit(cache=True, error_model="numpy")
def _swap_symmetric(C, j, q):
    """Swap rows and columns j < q of a symmetric matrix stored in its lower triangle,
    along with rows j, q of the finished columns of L (and of their copy Lᵀ above)."""
    n = C.shape[0]
    for k in range(j):
        C[j, k], C[q, k] = C[q, k], C[j, k]
        C[k, j], C[k, q] = C[k, q], C[k, j]
    C[j, j], C[q, q] = C[q, q], C[j, j]
    for k in range(j + 1, q):
        C[k, j], C[q, k] = C[q, k], C[k, j]
    for i in range(q + 1, n):
        C[i, j], C[i, q] = C[i, q], C[i, j]


@numba.njit(cache=True, error_model="numpy")
def _solve(C, perm, d, b, x, y, upper_holds_Lt):
    """x (n, r) = solution with the factors in C/perm/d for right-hand sides b (n, r).

    y (r, n) is scratch. L is read from the strict lower triangle of C; if the upper
    triangle holds Lᵀ (as left by ``_factor``) the forward substitution is an axpy over
    its contiguous rows, otherwise a dot product along the rows of L.
    """
    n, r = b.shape
    for s in range(r):
        ys = y[s]
        for i in range(n):
            ys[i] = b[perm[i], s]
        if upper_holds_Lt:
            for k in range(n):
                yk = ys[k]
                for i in range(uint64(k + 1), uint64(n)):
                    ys[i] -= C[k, i] * yk
        else:
            for i in range(n):
                acc = ys[i]
                for k in range(uint64(i)):
                    acc -= C[i, k] * ys[k]
                ys[i] = acc
        for i in range(n):
            ys[i] /= d[i]
        for i in range(n - 1, -1, -1):
            yi = ys[i]
            for k in range(uint64(i)):
                ys[k] -= C[i, k] * yi
        for i in range(n):
            x[perm[i], s] = ys[i]


@numba.njit(cache=True, error_model="numpy")
def _factor_batch(H, L, d, perm, e, eps):
    K, n, _ = H.shape
    w = np.empty(n, dtype=H.dtype)
    for b in range(K):
        C = L[b]
        C[:, :] = H[b]
        _factor(C, perm[b], d[b], e[b], w, eps)
        for i in range(n):
            C[i, i] = 1.0
            for k in range(i + 1, n):
                C[i, k] = 0.0


@numba.njit(cache=True, error_model="numpy")
def _factor_solve_batch(H, rhs, x, e, eps):
    K, n, _ = H.shape
    r = rhs.shape[2]
    C = np.empty((n, n), dtype=H.dtype)
    w = np.empty(n, dtype=H.dtype)
    d = np.empty(n, dtype=H.dtype)
    y = np.empty((r, n), dtype=H.dtype)
    perm = np.empty(n, dtype=np.int64)
    for b in range(K):
        # only the lower triangle is read and written
        for i in range(n):
            for k in range(i + 1):
                C[i, k] = H[b, i, k]
        _factor(C, perm, d, e[b], w, eps)
        _solve(C, perm, d, rhs[b], x[b], y, True)


@numba.njit(cache=True, error_model="numpy")
def _solve_batch(L, perm, d, rhs, x):
    K, n, r = rhs.shape
    y = np.empty((r, n), dtype=L.dtype)
    for b in range(K):
        _solve(L[b], perm[b], d[b], rhs[b], x[b], y, False)


def _as_matrix_batch(H):
    H = np.ascontiguousarray(H)  # one compiled layout per dtype
    if H.ndim != 3 or H.shape[-1] != H.shape[-2]:
        raise ValueError(f"H must have shape (K, n, n), got {H.shape}")
    if H.dtype not in (np.float32, np.float64):
        raise TypeError(f"H must be float32 or float64, got {H.dtype}")
    return H


def modified_ldl(H) -> LDLFactors:
    """Modified Cholesky ``P (H + E) Pᵀ = L D Lᵀ`` (numba kernel).

    See :func:`chebpan._core.ldl_reference.modified_ldl` for the algorithm and parameters.

    Parameters
    ----------
    H : numpy.ndarray, shape (K, n, n)
        Batch of symmetric float32/float64 matrices; only the lower triangle is read.

    Returns
    -------
    LDLFactors
        ``(L, d, perm, e)`` as NumPy arrays: L (K, n, n), d (K, n), perm (K, n) int64,
        e (K, n) in the original ordering.

    Examples
    --------
    >>> import numpy as np
    >>> H = np.array([[[4.0, 2.0, 1.0], [2.0, 6.0, 3.0], [1.0, 3.0, -0.004]]])
    >>> np.round(modified_ldl(H).e, 6)
    array([[0.   , 0.   , 3.008]])
    """
    H = _as_matrix_batch(H)
    K, n, _ = H.shape
    L = np.empty_like(H, order="C")
    d = np.empty((K, n), dtype=H.dtype)
    perm = np.empty((K, n), dtype=np.int64)
    e = np.empty((K, n), dtype=H.dtype)
    _factor_batch(H, L, d, perm, e, H.dtype.type(np.finfo(H.dtype).eps))
    return LDLFactors(L, d, perm, e)


def ldl_solve(factors: LDLFactors, b):
    """Solve ``(H + E) x = b`` given the factors from :func:`modified_ldl` (numba kernel).

    Parameters
    ----------
    factors : LDLFactors
        NumPy factors of a batch of K matrices of size n.
    b : numpy.ndarray, shape (K, n) or (K, n, r)
        Right-hand side(s); cast to the dtype of the factors.

    Returns
    -------
    x : numpy.ndarray, same shape as ``b``

    Examples
    --------
    >>> import numpy as np
    >>> f = modified_ldl(np.array([[[4.0, 2.0], [2.0, 3.0]]]))
    >>> np.round(ldl_solve(f, np.array([[6.0, 5.0]])), 12)
    array([[1., 1.]])
    """
    L, d, perm = (np.ascontiguousarray(a) for a in factors[:3])
    rhs, x = _rhs_and_out(b, L.dtype, L.shape[0], L.shape[-1])
    _solve_batch(L, perm, d, rhs, x)
    return x[:, :, 0] if np.ndim(b) == 2 else x


def _rhs_and_out(b, dtype, K, n):
    b = np.ascontiguousarray(b, dtype=dtype)
    if b.shape[:2] != (K, n) or b.ndim not in (2, 3):
        raise ValueError(f"b must have shape ({K}, {n}) or ({K}, {n}, r), got {b.shape}")
    rhs = b[:, :, None] if b.ndim == 2 else b
    return rhs, np.empty(rhs.shape, dtype=dtype)


def modified_ldl_solve(H, b):
    """Factorise and solve ``(H + E) x = b`` in one call (numba kernel).

    This is the Newton-step hot path: a single compiled call per batch, allocating only
    the outputs and O(n²) scratch.

    Parameters
    ----------
    H : numpy.ndarray, shape (K, n, n)
        Batch of symmetric float32/float64 matrices; only the lower triangle is read.
    b : numpy.ndarray, shape (K, n) or (K, n, r)
        Right-hand side(s); cast to the dtype of H.

    Returns
    -------
    x : numpy.ndarray, same shape as ``b``
        Solution of ``(H + E) x = b``.
    e : numpy.ndarray, shape (K, n)
        Diagonal of the modification E, in the original ordering.

    Examples
    --------
    >>> import numpy as np
    >>> H = np.array([[[4.0, 2.0], [2.0, 3.0]]])
    >>> x, e = modified_ldl_solve(H, np.array([[6.0, 5.0]]))
    >>> np.round(x, 12), e
    (array([[1., 1.]]), array([[0., 0.]]))
    """
    H = _as_matrix_batch(H)
    K, n, _ = H.shape
    rhs, x = _rhs_and_out(b, H.dtype, K, n)
    e = np.empty((K, n), dtype=H.dtype)
    _factor_solve_batch(H, rhs, x, e, H.dtype.type(np.finfo(H.dtype).eps))
    return (x[:, :, 0] if np.ndim(b) == 2 else x), e

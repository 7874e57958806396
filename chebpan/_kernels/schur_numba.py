"""The back substitution of the structured solve (:func:`chebpan._kernels.schur.substitute`)
as numba kernels, for LAPACK's dense (``getrf``) and band (``gbtrf``) LU factors.

One compiled call per solve instead of a Python loop over the N − 1 columns with one
LAPACK call each (``(T_kk I − (h/2) J) U_k = s_k − Σ_{l<k} T_lk U_l``; the conjugate of
a shift uses the factors of the shift, conjugated).  The solves with the factors are
those of LAPACK's ``getrs`` and ``gbtrs`` (no transpose) on scipy's 0-based pivots.
The ``_real`` kernels do it in the real Schur form (:func:`chebpan._kernels.schur.
schur_constants`): one complex solve per conjugate pair of shifts and real coupling
between the columns, about half the work.  docs/algorithm.md, "Structured Newton
solves".  Imported lazily, for NumPy only.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["substitute_dense", "substitute_band", "substitute_dense_real",
           "substitute_band_real"]


@numba.njit(cache=True, error_model="numpy")
def _dense_solve(lu_t, pivots, b):
    """``getrs``: b ← A⁻¹ b in place, with ``P A = L U`` from ``getrf``, given transposed
    (``lu_t[j, i]`` is LU's entry (i, j): the inner loops run along its rows)."""
    n = b.shape[0]
    for i in range(n):
        p = pivots[i]
        if p != i:
            b[i], b[p] = b[p], b[i]
    for j in range(n):  # L, unit lower
        bj = b[j]
        for i in range(j + 1, n):
            b[i] -= lu_t[j, i] * bj
    for j in range(n - 1, -1, -1):  # U
        b[j] /= lu_t[j, j]
        bj = b[j]
        for i in range(j):
            b[i] -= lu_t[j, i] * bj


@numba.njit(cache=True, error_model="numpy")
def _band_solve(band, pivots, lower, upper, b):
    """``gbtrs``: b ← A⁻¹ b in place with the band LU of ``gbtrf`` (band
    (2 lower + upper + 1, n): U in rows 0 … lower + upper, L's multipliers below)."""
    n = b.shape[0]
    diagonal = lower + upper
    if lower > 0:
        for j in range(n - 1):
            p = pivots[j]
            if p != j:
                b[j], b[p] = b[p], b[j]
            bj = b[j]
            for i in range(1, min(lower, n - 1 - j) + 1):
                b[j + i] -= band[diagonal + i, j] * bj
    for j in range(n - 1, -1, -1):
        b[j] /= band[diagonal, j]
        bj = b[j]
        for i in range(max(0, j - diagonal), j):
            b[i] -= band[diagonal + i - j, j] * bj


@numba.njit(cache=True, error_model="numpy")
def _right_hand_side(s, t, u, k, flip, b):
    """``b = s_k − Σ_{l<k} T_lk U_l``, conjugated when the column uses a conjugate shift."""
    n = s.shape[0]
    for i in range(n):
        value = s[i, k]
        for col in range(k):
            value -= u[i, col] * t[col, k]
        b[i] = np.conj(value) if flip else value


@numba.njit(cache=True, error_model="numpy")
def _substitute_dense(s, t, rep, conj, lus_t, pivots):
    k_members, n, columns = s.shape
    u = np.empty_like(s)
    b = np.empty(n, dtype=s.dtype)
    for member in range(k_members):
        for k in range(columns):
            _right_hand_side(s[member], t, u[member], k, conj[k], b)
            _dense_solve(lus_t[member, rep[k]], pivots[member, rep[k]], b)
            for i in range(n):
                u[member, i, k] = np.conj(b[i]) if conj[k] else b[i]
    return u


@numba.njit(cache=True, error_model="numpy")
def _substitute_band(s, t, rep, conj, bands, pivots, lower, upper):
    n, columns = s.shape
    u = np.empty_like(s)
    b = np.empty(n, dtype=s.dtype)
    for k in range(columns):
        _right_hand_side(s, t, u, k, conj[k], b)
        _band_solve(bands[rep[k]], pivots[rep[k]], lower, upper, b)
        for i in range(n):
            u[i, k] = np.conj(b[i]) if conj[k] else b[i]
    return u


def substitute_dense(s, t, rep, conj, lus_t, pivots):
    """U (K, n, C) of the structured solve with dense LU factors: ``lus_t`` (K, P, n, n),
    each transposed, and ``pivots`` (K, P, n) from ``getrf`` of the P shifted matrices of
    each member;
    ``s`` (K, n, C), ``t`` (C, C) complex, ``rep`` (C,) the factors of each column,
    ``conj`` (C,) whether they serve it conjugated."""
    return _substitute_dense(np.ascontiguousarray(s, dtype=np.complex128), t, rep, conj,
                             lus_t, pivots)


def substitute_band(s, t, rep, conj, bands, pivots, lower, upper):
    """As :func:`substitute_dense` for one member with band LU factors: ``bands``
    (P, 2 lower + upper + 1, n) and ``pivots`` (P, n) from ``gbtrf``; ``s`` (n, C)."""
    return _substitute_band(np.ascontiguousarray(s, dtype=np.complex128), t, rep, conj,
                            bands, pivots, lower, upper)


@numba.njit(cache=True, error_model="numpy")
def _block_right_hand_side(s, t, u, k, size, v, b):
    """``b = R v`` for the block of columns k … k + size − 1 of the real Schur form,
    ``R = s_k − Σ_{l<k} T_lk U_l`` (real), v the block's eigenvector (``(1, 0)`` for a
    1×1 block)."""
    n = s.shape[0]
    for i in range(n):
        total = 0j
        for c in range(size):
            value = s[i, k + c]
            for col in range(k):
                value -= u[i, col] * t[col, k + c]
            total += value * v[c]
        b[i] = total


@numba.njit(cache=True, error_model="numpy")
def _store_block(b, k, size, w, u):
    """The block's real columns ``U = 2 Re(z w)`` from the solution z of its shift."""
    for i in range(b.shape[0]):
        for c in range(size):
            u[i, k + c] = 2.0 * (b[i] * w[c]).real


@numba.njit(cache=True, error_model="numpy")
def _substitute_dense_real(s, t, starts, sizes, v, w, lus_t, pivots):
    k_members, n, _ = s.shape
    u = np.empty_like(s)
    b = np.empty(n, dtype=np.complex128)
    for member in range(k_members):
        for j in range(starts.shape[0]):
            _block_right_hand_side(s[member], t, u[member], starts[j], sizes[j], v[j], b)
            _dense_solve(lus_t[member, j], pivots[member, j], b)
            _store_block(b, starts[j], sizes[j], w[j], u[member])
    return u


@numba.njit(cache=True, error_model="numpy")
def _substitute_band_real(s, t, starts, sizes, v, w, bands, pivots, lower, upper):
    n = s.shape[0]
    u = np.empty_like(s)
    b = np.empty(n, dtype=np.complex128)
    for j in range(starts.shape[0]):
        _block_right_hand_side(s, t, u, starts[j], sizes[j], v[j], b)
        _band_solve(bands[j], pivots[j], lower, upper, b)
        _store_block(b, starts[j], sizes[j], w[j], u)
    return u


def substitute_dense_real(s, blocks, lus_t, pivots):
    """U (K, n, C) real of the structured solve in the real Schur form: ``s`` (K, n, C)
    real, ``blocks`` the :class:`~chebpan._core.structured` Schur data (``t_real``,
    ``block_start``, ``block_size``, ``block_v``, ``block_w``), ``lus_t`` (K, B, n, n)
    and ``pivots`` (K, B, n) the ``getrf`` factors of the blocks' shifts."""
    return _substitute_dense_real(np.ascontiguousarray(s, dtype=np.float64), blocks.t_real,
                                  blocks.block_start, blocks.block_size, blocks.block_v,
                                  blocks.block_w, lus_t, pivots)


def substitute_band_real(s, blocks, bands, pivots, lower, upper):
    """As :func:`substitute_dense_real` for one member with band LU factors of the blocks'
    shifts: ``bands`` (B, 2 lower + upper + 1, n), ``pivots`` (B, n); ``s`` (n, C)."""
    return _substitute_band_real(np.ascontiguousarray(s, dtype=np.float64), blocks.t_real,
                                 blocks.block_start, blocks.block_size, blocks.block_v,
                                 blocks.block_w, bands, pivots, lower, upper)

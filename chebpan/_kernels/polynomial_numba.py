"""A segment's polynomial from its free coefficients X as numba kernels: node values, end
value, all coefficients, and the node times (:mod:`chebpan._core.picard`).

Each runs once or twice per segment of a single solve on arrays of a few dozen values,
where the array code's half-dozen small operations cost several microseconds each.
Imported lazily, for NumPy float64 arrays only.  ``y_a``, ``f_a`` and ``half_h`` may
have one row where X has K (the candidate starts of one segment share them).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["node_values", "end_value", "coefficients", "node_times"]


@numba.njit(cache=True)
def _check_rows(k_count, y_a, f_a, half_h, x):
    for rows in (y_a.shape[0], f_a.shape[0], half_h.shape[0], x.shape[0]):
        if rows != 1 and rows != k_count:
            raise ValueError("y_a, f_a, half_h and x need K rows or one")


@numba.njit(cache=True)
def _rows_of(k, y_a, f_a, half_h, x):
    # Row k of each array, or its only row.
    return (k if y_a.shape[0] > 1 else 0, k if f_a.shape[0] > 1 else 0,
            k if half_h.shape[0] > 1 else 0, k if x.shape[0] > 1 else 0)


@numba.njit(cache=True)
def _node_values(y_a, f_a, half_h, x, phi, tau, slope_factor, out):
    k_count, n, n_nodes = out.shape
    n_free = x.shape[2]
    _check_rows(k_count, y_a, f_a, half_h, x)
    for k in range(k_count):
        ky, kf, kh, kx = _rows_of(k, y_a, f_a, half_h, x)
        for i in range(n):
            slope = slope_factor * half_h[kh, 0] * f_a[kf, i]
            for m in range(n_nodes):
                total = 0.0
                for q in range(n_free):
                    total += x[kx, i, q] * phi[q, m]
                out[k, i, m] = (y_a[ky, i] + slope * (1.0 + tau[m])) + total


@numba.njit(cache=True)
def _coefficients(y_a, f_a, half_h, x, t_minus1, dt_minus1, n_fixed, out):
    # Paper basis (n_fixed = 2): c_1 = (h/2) f_a − Σ X_q T_q'(−1), c_0 = y_a + c_1 −
    # Σ X_q T_q(−1); stiff basis (n_fixed = 1): c_0 = y_a − Σ X_q T_q(−1).
    k_count, n, n_coeffs = out.shape
    n_free = x.shape[2]
    _check_rows(k_count, y_a, f_a, half_h, x)
    for k in range(k_count):
        ky, kf, kh, kx = _rows_of(k, y_a, f_a, half_h, x)
        for i in range(n):
            value = 0.0
            slope = 0.0
            for q in range(n_free):
                value += x[kx, i, q] * t_minus1[n_fixed + q]
                slope += x[kx, i, q] * dt_minus1[n_fixed + q]
                out[k, i, n_fixed + q] = x[kx, i, q]
            if n_fixed == 2:
                c1 = half_h[kh, 0] * f_a[kf, i] - slope
                out[k, i, 1] = c1
                out[k, i, 0] = (y_a[ky, i] + c1) - value
            else:
                out[k, i, 0] = y_a[ky, i] - value


@numba.njit(cache=True)
def _node_times(tau, t_a, t_b, out):
    half = (t_b - t_a) / 2
    last = tau.shape[0] - 1
    for m in range(last):
        out[m] = t_a + half * (1.0 + tau[m])
    out[last] = t_b


def _rows(y_a, f_a, half_h, x):
    """K: each of the arrays has K rows or one."""
    return max(y_a.shape[0], f_a.shape[0], half_h.shape[0], x.shape[0])


# (The wrappers pass arrays as they come: numba compiles a variant for a layout it has not
# seen, and converting them would cost as much as the kernels' work.)


def node_values(basis, y_a, f_a, half_h, x):
    """:func:`chebpan._core.picard.node_values` (float64): (K, n, M)."""
    out = np.empty((_rows(y_a, f_a, half_h, x), x.shape[1], basis.n_nodes))
    _node_values(y_a, f_a, half_h, x, basis.phi_tilde, basis.tau, float(basis.slope_factor),
                 out)
    return out


#: τ of the end point: the end value is the node-value kernel at the one node τ = 1.
_END_TAU = np.ones(1)


def end_value(basis, y_a, f_a, half_h, x):
    """:func:`chebpan._core.picard.end_value` (float64): (K, n)."""
    out = np.empty((_rows(y_a, f_a, half_h, x), x.shape[1], 1))
    _node_values(y_a, f_a, half_h, x, basis.end_value[:, None], _END_TAU,
                 float(basis.slope_factor), out)
    return out[..., 0]


def coefficients(basis, y_a, f_a, half_h, x):
    """:func:`chebpan._core.picard.coefficients` (float64): (K, n, N)."""
    out = np.empty((_rows(y_a, f_a, half_h, x), x.shape[1], basis.n_coeffs))
    _coefficients(y_a, f_a, half_h, x, basis.t_minus1, basis.dt_minus1, int(basis.n_fixed),
                  out)
    return out


def node_times(basis, t_a, t_b):
    """:func:`chebpan._core.picard.node_times` (float64): (M,)."""
    out = np.empty(basis.n_nodes)
    _node_times(basis.tau, float(t_a), float(t_b), out)
    return out

"""The extrapolated starts of a batch (:func:`chebpan._control.policy.extrapolated_guess`
with one length per instance) as a numba kernel.

One pass per instance: the derivatives ``T_n'`` at the new nodes by their recurrence, the
optimal truncation, the derivative of the other polynomial at the new nodes and the
Picard update that turns it into X, instead of a few dozen array passes over (K, N, M)
temporaries.  Imported lazily, for NumPy arrays only.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["extrapolated_guess"]


@numba.njit(cache=True, error_model="numpy")
def _guess(prev_coeffs, prev_h, h, f_a, picard, tau, slope_factor, tau_start, x):
    k_count, n, n_coeffs = prev_coeffs.shape
    n_free, n_nodes = picard.shape
    slopes = np.empty((n_coeffs, n_nodes))
    derivative = np.empty(n_nodes)
    size = np.empty(n_coeffs)
    for k in range(k_count):
        ratio = h[k] / prev_h[k]
        for m in range(n_nodes):
            # T_n'(t) = n U_{n-1}(t), U by its recurrence, at the new nodes in the
            # other segment's τ (float64: T_n there can exceed float32's range).
            t = tau_start + ratio * (1.0 + tau[m])
            slopes[0, m] = 0.0
            slopes[1, m] = 1.0  # (a basis has at least 3 coefficients)
            u_previous, u = 1.0, 2.0 * t
            for order in range(2, n_coeffs):
                slopes[order, m] = order * u
                u_previous, u = u, 2.0 * t * u - u_previous
        # Optimal truncation: stop at the smallest term at the far end (numpy's
        # argmin: the first minimum, or the first NaN).
        for order in range(n_coeffs):
            biggest = 0.0
            for i in range(n):
                value = abs(prev_coeffs[k, i, order])
                if value > biggest or value != value:
                    biggest = value
            size[order] = math.inf if order < 2 else biggest * abs(slopes[order, n_nodes - 1])
        keep = 0
        best = size[0]
        for order in range(1, n_coeffs):
            if best != best:
                break
            if size[order] < best or size[order] != size[order]:
                best = size[order]
                keep = order
        to_time = 2.0 / prev_h[k]
        half_h = x.dtype.type(h[k] / 2)
        for i in range(n):
            start = slope_factor * f_a[k, i]
            for m in range(n_nodes):
                total = 0.0
                for order in range(keep + 1):
                    total += prev_coeffs[k, i, order] * slopes[order, m]
                derivative[m] = x.dtype.type(total * to_time) - start
            for j in range(n_free):
                total = 0.0
                for m in range(n_nodes):
                    total += derivative[m] * picard[j, m]
                x[k, i, j] = half_h * total


def extrapolated_guess(basis, prev_coeffs, prev_h, h, f_a, tau_start):
    """As :func:`chebpan._control.policy.extrapolated_guess` for arrays ``prev_h``, ``h``
    (K,) (which calls it for NumPy arrays)."""
    k_count, n, _ = prev_coeffs.shape
    x = np.empty((k_count, n, basis.n_free), dtype=f_a.dtype)
    if k_count == 0 or n == 0:
        x[...] = 0
        return x
    _guess(np.ascontiguousarray(prev_coeffs, dtype=np.float64),
           np.ascontiguousarray(prev_h, dtype=np.float64), np.ascontiguousarray(h, dtype=np.float64),
           np.ascontiguousarray(f_a), np.ascontiguousarray(basis.picard),
           np.ascontiguousarray(basis.tau, dtype=np.float64), float(basis.slope_factor),
           float(tau_start), x)
    return x

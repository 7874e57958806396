"""The Picard step of a batch (:func:`chebpan._core.picard.picard_step`) as a numba kernel.

One pass over each instance's nodes instead of a dozen array passes (update, change
and rounding floor); imported lazily, for NumPy arrays only.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["picard_step"]


@numba.njit(cache=True, error_model="numpy")
def _step(f_nodes, f_a, half_h, x, y_nodes, y_a, picard, phi, slope_factor, atol, rtol,
          growth_cap, x_new, change, floor):
    k_count, n, n_nodes = f_nodes.shape
    n_free = picard.shape[0]
    g = np.empty(n_nodes, dtype=f_nodes.dtype)
    dx = np.empty(n_free, dtype=f_nodes.dtype)
    for k in range(k_count):
        h = half_h[k, 0]
        total = 0.0
        worst = 0.0
        cap = 0.0
        for i in range(n):
            cap = max(cap, abs(y_a[k, i]))
        cap *= growth_cap
        for i in range(n):
            start = slope_factor * f_a[k, i]
            for m in range(n_nodes):
                g[m] = f_nodes[k, i, m] - start
            for j in range(n_free):
                s = 0.0
                for m in range(n_nodes):
                    s += g[m] * picard[j, m]
                x_new[k, i, j] = h * s
                dx[j] = x_new[k, i, j] - x[k, i, j]
            start = abs(y_a[k, i])
            end = min(abs(y_nodes[k, i, n_nodes - 1]), cap)
            scale = atol[i] + rtol[i] * max(start, end)
            biggest = 0.0
            largest_y = 0.0
            for m in range(n_nodes):
                s = 0.0
                for j in range(n_free):
                    s += dx[j] * phi[j, m]
                v = abs(s)
                if v > biggest or v != v:  # (NaN propagates, as in NumPy's max)
                    biggest = v
                largest_y = max(largest_y, abs(y_nodes[k, i, m]))
            ratio = biggest / scale
            total += ratio * ratio
            worst = max(worst, max(start, min(largest_y, cap)) / scale)
        change[k] = math.sqrt(total / n) if n else 0.0
        floor[k] = worst


def picard_step(basis, y_a, f_a, half_h, x, y_nodes, f_nodes, atol, rtol, growth_cap):
    """As :func:`chebpan._core.picard.picard_step` (which calls it for NumPy arrays)."""
    k_count, n, _ = f_nodes.shape
    dtype = f_nodes.dtype
    atol = np.broadcast_to(np.asarray(atol, dtype=dtype), (n,)).copy()
    rtol = np.broadcast_to(np.asarray(rtol, dtype=dtype), (n,)).copy()
    x_new = np.empty_like(x)
    change = np.empty(k_count, dtype=dtype)
    floor = np.empty(k_count, dtype=dtype)
    arrays = [np.ascontiguousarray(a) for a in (f_nodes, f_a, half_h, x, y_nodes, y_a,
                                                basis.picard, basis.phi_tilde)]
    _step(*arrays, float(basis.slope_factor), atol, rtol, float(growth_cap), x_new, change,
          floor)
    return x_new, change, floor

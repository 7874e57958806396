"""Forward-difference Jacobians (:class:`chebpan._rhs.jacobian` with ``jac=None``) as numba
kernels: the perturbed points before the one vectorised ``fun`` call, and the difference
quotients after it, each one pass instead of about ten array operations.  Imported lazily,
for NumPy float64 arrays only (the array code keeps float32's rounding of the steps).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["perturb", "difference"]


@numba.njit(cache=True)
def _perturb(y, relative_step, floor, perturbed, step, offset):
    # perturbed[:, offset + j P + p] = y[:, p] + step[j, p] e_j; step exactly
    # representable; with offset = P, y itself fills the first P columns.
    n, n_points = y.shape
    for p in range(offset):
        for i in range(n):
            perturbed[i, p] = y[i, p]
    for j in range(n):
        for p in range(n_points):
            value = y[j, p]
            size = relative_step * max(abs(value), floor[j])
            shifted = value + (size if value >= 0 else -size)
            step[j, p] = shifted - value
            column = offset + j * n_points + p
            for i in range(n):
                perturbed[i, column] = y[i, p]
            perturbed[j, column] = shifted


@numba.njit(cache=True)
def _difference(f_perturbed, f, step, jac):
    n, n_points = f.shape
    for p in range(n_points):
        for i in range(n):
            for j in range(n):
                jac[p, i, j] = (f_perturbed[i, j * n_points + p] - f[i, p]) / step[j, p]


def perturb(y, relative_step, floor, *, with_base=False):
    """The points ``(n, n·P)`` of the forward differences at ``y`` (n, P), and the steps
    (n, P) actually made (``floor``: the evaluator's, (n, 1) or (n,)).  ``with_base``:
    ``y`` itself first, ``(n, (n+1)·P)``, for one call of ``fun`` at all of them."""
    n, n_points = y.shape
    offset = n_points if with_base else 0
    perturbed = np.empty((n, offset + n * n_points))
    step = np.empty((n, n_points))
    _perturb(np.ascontiguousarray(y), float(relative_step),
             np.ascontiguousarray(floor, dtype=np.float64).reshape(n), perturbed, step, offset)
    return perturbed, step


def difference(f_perturbed, f, step):
    """``J`` (P, n, n) from ``fun`` at the perturbed points (n, n·P) and at ``y`` (n, P)."""
    n, n_points = f.shape
    jac = np.empty((n_points, n, n))
    _difference(np.ascontiguousarray(f_perturbed, dtype=np.float64),
                np.ascontiguousarray(f, dtype=np.float64), step, jac)
    return jac

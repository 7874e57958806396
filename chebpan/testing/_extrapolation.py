"""Gragg-Bulirsch-Stoer extrapolation in long double: the non-stiff references' integrator.

The explicit midpoint rule with ``n_j = 2 j`` substeps (j = 1 .. k) over a step ``H``,
extrapolated to ``h -> 0`` in powers of ``h^2`` by the Aitken-Neville scheme, has order
``2 k``. Everything runs in ``numpy.longdouble`` (x87 80-bit on x86-64: 64-bit
significand, unit roundoff 5.4e-20), so a run can be accurate to well below float64's
resolution. The step size is adapted from the difference of the last two extrapolated
values. This is a textbook method (Hairer, Norsett, Wanner, *Solving ODEs I*, II.9),
independent of both scipy and chebpan.
"""

from __future__ import annotations

import numpy as np

LD = np.longdouble


def _extrapolate(fun, t, y, f0, big_h, k):
    """Extrapolation tableau's last two diagonal values for one step of size ``big_h``."""
    rows = []
    for j in range(1, k + 1):
        n = 2 * j
        h = big_h / n
        z_prev, z = y, y + h * f0
        for m in range(1, n):
            z_prev, z = z, z_prev + 2 * h * fun(t + m * h, z)
        row = [z]
        for i in range(1, j):
            ratio = LD(n) / LD(2 * (j - i))
            row.append(row[i - 1] + (row[i - 1] - rows[-1][i - 1]) / (ratio * ratio - 1))
        rows.append(row)
    return rows[-1][-1], rows[-1][-2]


def integrate(fun, t_span, y0, *, tol=1e-18, k=10, max_steps=20_000):
    """Integrate ``y' = fun(t, y)`` over ``t_span`` in long double.

    Parameters
    ----------
    fun : callable
        Right-hand side, point-wise: ``fun(t, y)`` with ``y`` of shape ``(n,)``; must
        keep ``numpy.longdouble`` inputs in long double.
    t_span : tuple of float
        ``(t0, t_end)``.
    y0 : array_like, shape (n,)
        Initial value.
    tol : float, optional
        Local error tolerance per step, relative to ``max(1, |y|)`` componentwise
        (max norm).
    k : int, optional
        Number of extrapolation stages (order ``2 k``).
    max_steps : int, optional
        Give up after this many accepted steps.

    Returns
    -------
    y : ndarray of longdouble, shape (n,)
        The value at ``t_end``.
    steps : int
        Number of accepted steps.
    """
    t0, t1 = LD(t_span[0]), LD(t_span[1])
    y = np.asarray(y0, dtype=LD)
    t = t0
    h = (t1 - t0) / 100
    steps = 0
    tol = LD(tol)
    while t < t1:
        if steps >= max_steps:
            raise RuntimeError("extrapolation integrator: too many steps")
        last = t + h >= t1
        big_h = t1 - t if last else h
        y_new, y_low = _extrapolate(fun, t, y, fun(t, y), big_h, k)
        scale = np.maximum(1, np.maximum(np.abs(y), np.abs(y_new)))
        err = float(np.max(np.abs(y_new - y_low) / scale))
        if not np.all(np.isfinite(y_new)):
            err = np.inf
        if err <= tol:
            t = t1 if last else t + big_h
            y = y_new
            steps += 1
        factor = 4.0 if err == 0 else min(4.0, max(0.2, 0.9 * (float(tol) / err) ** (1 / (2 * k - 1))))
        h = big_h * LD(factor)
        if h <= 0 or t + h == t:
            raise RuntimeError("extrapolation integrator: step size underflow")
    return y, steps

"""The first segment's length (:func:`chebpan._control.policy.initial_lengths`, scipy's
``select_initial_step`` for K IVPs) as numba kernels, for NumPy in float64.

Two passes around the one evaluation of ``fun`` the heuristic needs: the trial step
``h0`` and its point before it, the length after it; instead of some thirty array
operations on (K, n) arrays, which cost a single solve of a small system about 150 µs
(a quarter of a solve of one segment).  Imported lazily.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .estimates_numba import scaled_rms

__all__ = ["initial_lengths"]


@numba.njit(cache=True, error_model="numpy")
def _least(a, b):
    """NumPy's ``minimum``: NaN if either is."""
    return a if a != a or a < b else b


@numba.njit(cache=True, error_model="numpy")
def _largest(a, b):
    """NumPy's ``maximum``: NaN if either is."""
    return a if a != a or a > b else b


@numba.njit(cache=True, error_model="numpy")
def _trial_steps(y0, f0, scale, interval, direction, d1, h0, y1):
    # d1 = ‖f0‖; h0 = 0.01 d0 / d1 (1e-6 where either norm is below 1e-5), at most the
    # interval; the trial point y0 + h0 f0 (h0 signed).
    for k in range(y0.shape[0]):
        d0 = scaled_rms(y0[k], scale[k])
        d1[k] = scaled_rms(f0[k], scale[k])
        step = 1e-6 if (d0 < 1e-5 or d1[k] < 1e-5) else 0.01 * d0 / d1[k]
        h0[k] = _least(step, interval[k])
        signed = direction[k] * h0[k]
        for i in range(y0.shape[1]):
            y1[k, i] = y0[k, i] + signed * f0[k, i]


@numba.njit(cache=True, error_model="numpy")
def _lengths(f0, f1, scale, interval, d1, h0, order, lengths):
    # h1 = (0.01 / max(d1, d2))^(1/(order+1)), d2 the scaled change of f over h0
    # (max(1e-6, 1e-3 h0) where both are flat); at most 100 h0 and the interval; h0
    # where f1 is not finite; 1e-6 (at most the interval) where that is not a length.
    n = f0.shape[1]
    difference = np.empty(n)
    for k in range(f0.shape[0]):
        finite = True
        for i in range(n):
            difference[i] = f1[k, i] - f0[k, i]
            finite = finite and math.isfinite(f1[k, i])
        d2 = scaled_rms(difference, scale[k]) / h0[k]
        if d1[k] <= 1e-15 and d2 <= 1e-15:
            h1 = _largest(1e-6, h0[k] * 1e-3)
        else:
            h1 = (0.01 / _largest(d1[k], d2)) ** (1.0 / (order + 1))
        h = _least(_least(100 * h0[k], h1), interval[k]) if finite else h0[k]
        lengths[k] = h if math.isfinite(h) and h > 0 else min(1e-6, interval[k])


def initial_lengths(f_at, span, y0, f0, scale, order):
    """As :func:`chebpan._control.policy.initial_lengths` for float64 NumPy arrays:
    lengths (K,) float64."""
    k, n = y0.shape
    if isinstance(span.t0, float):  # (one span: a single solve, or a batch's shared one)
        t0, direction = np.full(k, span.t0), np.full(k, span.direction)
        interval = np.full(k, abs(span.tf - span.t0))
    else:
        t0, direction = span.t0, np.ascontiguousarray(span.direction, dtype=np.float64)
        interval = np.abs(span.tf - span.t0)
    if scale.shape != (k, n):
        scale = np.broadcast_to(scale, (k, n))
    scale = np.ascontiguousarray(scale, dtype=np.float64)
    y0 = np.ascontiguousarray(y0)
    f0 = np.ascontiguousarray(f0, dtype=np.float64)
    d1, h0 = np.empty(k), np.empty(k)
    y1 = np.empty((k, n))
    _trial_steps(y0, f0, scale, interval, direction, d1, h0, y1)
    f1 = np.ascontiguousarray(f_at(t0 + direction * h0, y1), dtype=np.float64)
    lengths = np.empty(k)
    _lengths(f0, f1, scale, interval, d1, h0, float(order), lengths)
    return lengths

"""Whether a ``fun`` given without ``vectorized`` already handles many points at once.

scipy's default is ``vectorized=False``: ``fun`` gets one point, ``y`` of shape (n,).
Many such functions (``-y``, ``[y[1], -y[0]]``, ``A @ y``) work unchanged on ``t`` of
shape (P,) and ``y`` of shape (n, P), and calling them once per round instead of once
per point is what makes PAN fast.  When ``vectorized`` is not given, the first round
with at least two points calls ``fun`` once on a few of them (:data:`PROBE_POINTS`) and
once per point on the same ones; equal values (to :data:`RTOL` of their magnitude)
make the solve vectorised, and so does a ``fun`` that works on (n, P) input but fails
on single points (written for ``vectorized=True``).  A failure on (n, P) input or
different values (a ``fun`` that treats ``y``
as one point, such as ``np.sum(y)``) keep it point by point, with a reason for the
warning the front end gives at the end.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["PROBE_POINTS", "RTOL", "probe_indices", "agree", "call_quietly"]

#: Points of the probe (spread over the round's points: first, middle, last).
PROBE_POINTS = 3
#: Largest difference between the vectorised and point-wise values, relative to the
#: largest magnitude among them (rounding of a different order of operations passes).
RTOL = 1e-10


def probe_indices(n_points):
    """Up to :data:`PROBE_POINTS` distinct indices spread over ``n_points`` (≥ 2)."""
    return sorted({0, n_points // 2, n_points - 1})[:PROBE_POINTS]


def agree(vectorised, columns, xp):
    """Whether ``vectorised`` (n, P) equals the point-wise ``columns`` (n, P).

    NaN where both are NaN counts as equal; infinities must match exactly.
    """
    if columns.shape[0] == 0:
        return True
    finite = xp.isfinite(columns)
    scale = xp.max(xp.where(finite, xp.abs(columns), xp.zeros_like(columns)))
    same = (vectorised == columns) | (xp.isnan(vectorised) & xp.isnan(columns))
    with np.errstate(invalid="ignore"):  # (inf − inf: NaN, not close; NumPy warns)
        close = xp.abs(vectorised - columns) <= RTOL * scale
    return bool(xp.all(same | (finite & close)))


def call_quietly(fun, *args):
    """``fun(*args)`` with its warnings suppressed (a probe that fails is no news)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fun(*args)

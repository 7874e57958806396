"""PLEI: the Pleiades, seven bodies in the plane (Hairer, Nørsett & Wanner, *Solving
Ordinary Differential Equations I*, II.10; the IVP Test Set's PLEI), n = 28.

Bodies of masses ``m_i = i`` attract each other:
``x_i'' = Σ_{j≠i} m_j (x_j − x_i) / r_ij³`` (and ``y_i''`` alike) on ``[0, 3]``, with
close encounters near t = 1.23 and t = 1.62 that make the motion locally fast.  The
state is ``(x_1..7, y_1..7, x_1'..7', y_1'..7')``.  A mid-sized non-stiff system:
dense Newton on its collocation system has ``28 (N − 2)`` unknowns.
"""

from __future__ import annotations

import numpy as np

from ._arrays import as_state
from ._suite import SuiteProblem

_X0 = (3.0, 3.0, -1.0, -3.0, 2.0, -2.0, 2.0)
_Y0 = (3.0, -3.0, 2.0, 0.0, 0.0, -4.0, 4.0)
_VX0 = (0.0, 0.0, 0.0, 0.0, 0.0, 1.75, -1.5)
_VY0 = (0.0, 0.0, 0.0, -1.25, 1.0, 0.0, 0.0)


def _plei(t, y):
    y = as_state(y)
    tail = y.shape[1:]
    x, v = y[:7], y[7:14]
    masses = np.arange(1, 8, dtype=y.dtype).reshape((1, 7) + (1,) * len(tail))
    dx = x[None, :] - x[:, None]  # dx[i, j] = x_j − x_i, (7, 7, ...)
    dv = v[None, :] - v[:, None]
    r2 = dx * dx + dv * dv
    r2[np.arange(7), np.arange(7)] = np.inf  # no self-interaction
    w = masses / (r2 * np.sqrt(r2))
    return np.concatenate([y[14:], np.sum(w * dx, axis=1), np.sum(w * dv, axis=1)])


def _problem() -> SuiteProblem:
    return SuiteProblem(
        name="PLEI", fun=_plei, jac=None, t_span=(0.0, 3.0), y0=_X0 + _Y0 + _VX0 + _VY0,
        stiff=False, floor=1.0, family="Hairer-Norsett-Wanner",
        description="Pleiades, seven bodies in the plane, n = 28")


FACTORIES = {"PLEI": _problem}

"""MEDAKZO: the Akzo Nobel medical problem of the IVP Test Set, n = 400.

A reaction-diffusion PDE on ``x in (0, 1]`` semi-discretised on N = 200 points
(``zeta_j = j / N``), state ``(u_1, v_1, u_2, v_2, ..., u_N, v_N)``, ``t in [0, 20]``:

``u_j' = alpha_j (u_{j+1} - u_{j-1}) / (2 d) + beta_j (u_{j-1} - 2 u_j + u_{j+1}) / d^2
- k u_j v_j``, ``v_j' = -k u_j v_j``, with ``d = 1 / N``, ``alpha_j = 2 (zeta_j - 1)^3 /
c^2``, ``beta_j = (zeta_j - 1)^4 / c^2``, ``k = 100``, ``c = 4``, the boundary values
``u_0 = phi(t)`` (2 for ``t <= 5``, 0 after: the right-hand side jumps at t = 5) and
``u_{N+1} = u_N``, and ``u(0) = 0``, ``v(0) = 1``.
"""

from __future__ import annotations

import numpy as np

from ._arrays import as_state
from ._suite import SuiteProblem

N = 200
_K, _C = 100.0, 4.0
_D = 1.0 / N
_ZETA = np.arange(1, N + 1) * _D
_ALPHA = 2 * (_ZETA - 1) ** 3 / _C ** 2
_BETA = (_ZETA - 1) ** 4 / _C ** 2
_LOW = -_ALPHA / (2 * _D) + _BETA / _D ** 2  # coefficient of u_{j-1}
_MID = -2 * _BETA / _D ** 2  # of u_j
_UP = _ALPHA / (2 * _D) + _BETA / _D ** 2  # of u_{j+1}


def _phi(t):
    return np.where(np.asarray(t) <= 5.0, 2.0, 0.0)


def _fun(t, y):
    y = as_state(y)
    tail = y.shape[1:]
    col = (slice(None),) + (None,) * len(tail)
    u, v = y[0::2], y[1::2]
    low, mid, up = (c.astype(y.dtype)[col] for c in (_LOW, _MID, _UP))
    u_prev = np.concatenate([np.broadcast_to(_phi(t), (1,) + tail).astype(y.dtype), u[:-1]])
    u_next = np.concatenate([u[1:], u[-1:]])
    kuv = _K * u * v
    out = np.empty_like(y)
    out[0::2] = low * u_prev + mid * u + up * u_next - kuv
    out[1::2] = -kuv
    return out


def _jac(t, y):
    y = as_state(y)
    tail = y.shape[1:]
    n = 2 * N
    out = np.zeros((n, n) + tail, dtype=y.dtype)
    u, v = y[0::2], y[1::2]
    col = (slice(None),) + (None,) * len(tail)
    iu = np.arange(0, n, 2)
    mid = np.broadcast_to(_MID[col], u.shape).copy()
    mid[-1] += _UP[-1]  # u_{N+1} = u_N
    out[iu, iu] = mid - _K * v
    out[iu[1:], iu[:-1]] = np.broadcast_to(_LOW[1:][col], u[1:].shape)
    out[iu[:-1], iu[1:]] = np.broadcast_to(_UP[:-1][col], u[1:].shape)
    out[iu, iu + 1] = -_K * u
    out[iu + 1, iu] = -_K * v
    out[iu + 1, iu + 1] = -_K * u
    return out


def sparsity() -> np.ndarray:
    """Where the Jacobian may be nonzero, boolean array of shape (400, 400)."""
    return _jac(0.0, np.ones(2 * N)) != 0


def _problem() -> SuiteProblem:
    y0 = np.zeros(2 * N)
    y0[1::2] = 1.0
    return SuiteProblem(name="MEDAKZO", fun=_fun, jac=_jac, t_span=(0.0, 20.0),
                        y0=tuple(y0), stiff=True, floor=1e-6, family="IVP test set",
                        description="Akzo Nobel medical problem, n = 400 (PDE, jump at t = 5)",
                        breakpoints=(5.0,), sparsity=sparsity)


FACTORIES = {"MEDAKZO": _problem}

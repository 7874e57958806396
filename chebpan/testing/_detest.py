"""The non-stiff DETEST problems of classes A, B, C and E (class D: :mod:`._kepler`).

Formulations of Hull, Enright, Fellen and Sedgwick (1972), "Comparing numerical
methods for ordinary differential equations", SIAM J. Numer. Anal. 9, as restated by
Enright and Pryce (1987), ACM TOMS 13. All on ``t in [0, 20]``. Second-order
equations (class E, C5) are written as first-order systems ``(y, y')``.

Exact solutions (``exact``, evaluated with mpmath) exist for A1-A5, B2, C1-C4, E1, E4
and E5; the others (B1, B3, B4, B5, C5, E2, E3) get their references from the
extrapolation integrator (see :mod:`._references`).
"""

from __future__ import annotations

import functools

import numpy as np

from ._arrays import as_state
from ._suite import SuiteProblem

T_END = 20.0
_FLOOR = 1.0  # non-stiff: errors relative to max(1, |y|), i.e. rtol = atol


def _problem(name, family, fun, y0, description, exact=None):
    return SuiteProblem(name=name, fun=fun, jac=None, t_span=(0.0, T_END), y0=y0,
                        stiff=False, floor=_FLOOR, family=f"DETEST {family}",
                        description=description, exact=exact)


def _mp(dps):
    import mpmath

    ctx = mpmath.mp.clone()
    ctx.dps = dps
    return ctx


# --------------------------------------------------------------------------- class A


def _a1(t, y):
    return -as_state(y)


def _a2(t, y):
    y = as_state(y)
    return -0.5 * y ** 3


def _a3(t, y):
    y = as_state(y)
    return y * np.cos(t)


def _a4(t, y):
    y = as_state(y)
    return 0.25 * y * (1 - y / 20)


def _a5(t, y):
    y = as_state(y)
    return (y - t) / (y + t)


def _a5_exact(dps):
    # In polar coordinates (t, y) = r (cos th, sin th) the solution is the spiral
    # r = 4 exp(pi/2 - th); th falls from pi/2 and stays above -pi/4 (where y + t = 0).
    mp = _mp(dps)
    r = lambda th: 4 * mp.exp(mp.pi / 2 - th)  # noqa: E731
    th = mp.findroot(lambda th: r(th) * mp.cos(th) - T_END, mp.mpf("0.1"))
    return [r(th) * mp.sin(th)]


A = {
    "A1": (_a1, (1.0,), "y' = -y", lambda d: [_mp(d).exp(-T_END)]),
    "A2": (_a2, (1.0,), "y' = -y^3 / 2", lambda d: [1 / _mp(d).sqrt(T_END + 1)]),
    "A3": (_a3, (1.0,), "y' = y cos t", lambda d: [_mp(d).exp(_mp(d).sin(T_END))]),
    "A4": (_a4, (1.0,), "y' = y / 4 (1 - y / 20)",
           lambda d: [20 / (1 + 19 * _mp(d).exp(-_mp(d).mpf(T_END) / 4))]),
    "A5": (_a5, (4.0,), "y' = (y - t) / (y + t)", _a5_exact),
}


# --------------------------------------------------------------------------- class B


def _b1(t, y):
    y1, y2 = as_state(y)
    return np.stack([2 * (y1 - y1 * y2), -(y2 - y1 * y2)])


_B2 = np.array([[-1.0, 1.0, 0.0], [1.0, -2.0, 1.0], [0.0, 1.0, -1.0]])


def _b2(t, y):
    return _B2.astype(as_state(y).dtype) @ as_state(y)


def _b3(t, y):
    y1, y2, y3 = as_state(y)
    return np.stack([-y1, y1 - y2 * y2, y2 * y2])


def _b4(t, y):
    y1, y2, y3 = as_state(y)
    r = np.sqrt(y1 * y1 + y2 * y2)
    return np.stack([-y2 - y1 * y3 / r, y1 - y2 * y3 / r, y1 / r])


def _b5(t, y):
    y1, y2, y3 = as_state(y)
    return np.stack([y2 * y3, -y1 * y3, -0.51 * y1 * y2])


def _linear_exact(a, y0):
    """Exact ``expm(a T_END) y0`` with mpmath (a, y0: float entries, taken exactly)."""

    def exact(dps):
        mp = _mp(dps)
        m = mp.matrix([[mp.mpf(float(v)) for v in row] for row in a])
        v = mp.expm(m * T_END) * mp.matrix([mp.mpf(float(v)) for v in y0])
        return [v[i] for i in range(len(y0))]

    return exact


B = {
    "B1": (_b1, (1.0, 3.0), "Lotka-Volterra growth model", None),
    "B2": (_b2, (2.0, 0.0, 1.0), "linear chemical reaction", _linear_exact(_B2, (2, 0, 1))),
    "B3": (_b3, (1.0, 0.0, 0.0), "non-linear chemical reaction", None),
    "B4": (_b4, (3.0, 0.0, 0.0), "integral surface of a torus", None),
    "B5": (_b5, (0.0, 1.0, 1.0), "Euler's equations of a rigid body without forces", None),
}


# --------------------------------------------------------------------------- class C


def _c_matrix(kind: str, n: int) -> np.ndarray:
    a = np.zeros((n, n))
    if kind == "C1":  # radioactive decay chain, last component accumulates
        a[np.arange(n - 1), np.arange(n - 1)] = -1.0
        a[np.arange(1, n), np.arange(n - 1)] = 1.0
    elif kind == "C2":  # chain with rates i
        i = np.arange(1, n)
        a[i - 1, i - 1] = -i
        a[i, i - 1] = i
    else:  # C3, C4: second differences with zero boundary values
        a += np.diag(-2.0 * np.ones(n)) + np.diag(np.ones(n - 1), 1) + np.diag(np.ones(n - 1), -1)
    return a


def _linear(a):
    def fun(t, y):
        y = as_state(y)
        return a.astype(y.dtype) @ y

    return fun


def _c_entry(kind, n, description):
    a = _c_matrix(kind, n)
    y0 = (1.0,) + (0.0,) * (n - 1)
    return (_linear(a), y0, description, _linear_exact(a, y0))


# Five outer planets around the sun (the sun's mass includes the inner planets);
# positions in AU, velocities in AU per (gravitational) time unit, as in DETEST.
_K2 = 2.95912208286
_M0 = 1.00000597682
_MASSES = np.array([0.000954786104043, 0.000285583733151, 0.0000437273164546,
                    0.0000517759138449, 0.00000277777777778])
_Q0 = ((3.42947415189, 3.35386959711, 1.35494901715),
       (6.64145542550, 5.97156957878, 2.18231499728),
       (11.2630437207, 14.6952576794, 6.27960525067),
       (-30.1552268759, 1.65699966404, 1.43785752721),
       (-21.1238353380, 28.4465098142, 15.3882659679))
_V0 = ((-0.557160570446, 0.505696783289, 0.230578543901),
       (-0.415570776342, 0.365682722812, 0.169143213293),
       (-0.325325669158, 0.189706021964, 0.0877265322780),
       (-0.0240476254170, -0.287659532608, -0.117219543175),
       (-0.176860753121, -0.216393453025, -0.0148647893090))


def _c5(t, y):
    """Five-body problem; state (positions of bodies 1-5, then velocities), n = 30."""
    y = as_state(y)
    tail = y.shape[1:]
    q = y[:15].reshape((5, 3) + tail)
    m = _MASSES.astype(y.dtype).reshape((5,) + (1,) * len(tail))
    r3 = np.sum(q * q, axis=1) ** 1.5  # (5, ...)
    d = q[None, :] - q[:, None]  # d[i, j] = q_j - q_i, shape (5, 5, 3, ...)
    d3 = np.sum(d * d, axis=2) ** 1.5  # (5, 5, ...)
    d3[np.arange(5), np.arange(5)] = np.inf  # no self-interaction
    w = m[None, :] / d3  # m_j / d_ij^3
    pull = np.sum(w[:, :, None] * d, axis=1)  # sum_j m_j (q_j - q_i) / d_ij^3
    indirect = np.sum((m / r3)[:, None] * q, axis=0)  # sum_j m_j q_j / r_j^3
    acc = _K2 * (-((_M0 + m) / r3)[:, None] * q + pull - (indirect[None] - (m / r3)[:, None] * q))
    return np.concatenate([y[15:], acc.reshape((15,) + tail)])


C = {
    "C1": _c_entry("C1", 10, "radioactive decay chain, n = 10"),
    "C2": _c_entry("C2", 10, "decay chain with rates 1..9, n = 10"),
    "C3": _c_entry("C3", 10, "second differences (heat equation), n = 10"),
    "C4": _c_entry("C4", 51, "second differences (heat equation), n = 51"),
    "C5": (_c5, tuple(np.ravel(_Q0)) + tuple(np.ravel(_V0)),
           "five outer planets (n-body), n = 30", None),
}


# --------------------------------------------------------------------------- class E


def _e1(t, y):
    y1, y2 = as_state(y)
    x = t + 1
    return np.stack([y2 + 0 * x, -(y2 / x + (1 - 0.25 / (x * x)) * y1)])


def _e1_y0():
    import math

    c = math.sqrt(2 / math.pi)
    return (c * math.sin(1.0), c * (math.cos(1.0) - math.sin(1.0) / 2))


def _e1_exact(dps):
    # y0 is the float64 rounding of J_{1/2}(1) and its derivative; the solution from it
    # is the linear combination of the two independent Bessel-type solutions.
    mp = _mp(dps)
    y0 = [mp.mpf(v) for v in _e1_y0()]
    x0, x1 = mp.mpf(1), mp.mpf(T_END) + 1
    # Fundamental solutions J_{1/2}, Y_{1/2}: sqrt(2/(pi x)) sin x and -sqrt(2/(pi x)) cos x.
    c = mp.sqrt(2 / mp.pi)

    def pair(x):
        s, co, r = mp.sin(x), mp.cos(x), mp.sqrt(x)
        j = [c * s / r, c * (co / r - s / (2 * x * r))]
        yb = [-c * co / r, c * (s / r + co / (2 * x * r))]
        return j, yb

    j0, yb0 = pair(x0)
    det = j0[0] * yb0[1] - yb0[0] * j0[1]
    a = (y0[0] * yb0[1] - yb0[0] * y0[1]) / det
    b = (j0[0] * y0[1] - y0[0] * j0[1]) / det
    j1, yb1 = pair(x1)
    return [a * j1[0] + b * yb1[0], a * j1[1] + b * yb1[1]]


def _e2(t, y):
    y1, y2 = as_state(y)
    return np.stack([y2, (1 - y1 * y1) * y2 - y1])


def _e3(t, y):
    y1, y2 = as_state(y)
    return np.stack([y2 + 0 * t, y1 ** 3 / 6 - y1 + 2 * np.sin(2.78535 * t)])


def _e4(t, y):
    y1, y2 = as_state(y)
    return np.stack([y2, 0.032 - 0.4 * y2 * y2])


def _e4_exact(dps):
    # y2' = 0.032 - 0.4 y2^2, y2(0) = 0: y2 = a tanh(b t), y1 = 30 + (a / b) log cosh(b t).
    mp = _mp(dps)
    c1, c2 = mp.mpf(0.032), mp.mpf(0.4)  # the float64 values fun uses
    a, b = mp.sqrt(c1 / c2), mp.sqrt(c1 * c2)
    return [30 + a / b * mp.log(mp.cosh(b * T_END)), a * mp.tanh(b * T_END)]


def _e5(t, y):
    y1, y2 = as_state(y)
    return np.stack([y2, np.sqrt(1 + y2 * y2) / (25 - t)])


def _e5_exact(dps):
    # asinh(y2) = log(25 / (25 - t)); y1 = integral of y2.
    mp = _mp(dps)
    s = mp.mpf(25) / (25 - T_END)
    y2 = (s - 1 / s) / 2
    y1 = (25 * mp.log(s) - (625 - (25 - mp.mpf(T_END)) ** 2) / 50) / 2
    return [y1, y2]


E = {
    "E1": (_e1, _e1_y0(), "Bessel's equation of order 1/2", _e1_exact),
    "E2": (_e2, (2.0, 0.0), "van der Pol, mu = 1", None),
    "E3": (_e3, (0.0, 0.0), "Duffing's equation with forcing", None),
    "E4": (_e4, (30.0, 0.0), "falling body with quadratic drag", _e4_exact),
    "E5": (_e5, (0.0, 0.0), "pursuit curve", _e5_exact),
}


FACTORIES = {
    name: functools.partial(_problem, name, cls, fun, y0, desc, exact)
    for cls, table in (("A", A), ("B", B), ("C", C), ("E", E))
    for name, (fun, y0, desc, exact) in table.items()
}

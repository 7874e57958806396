"""DETEST class D: Kepler orbits of eccentricity 0.1, 0.3, 0.5, 0.7, 0.9, exactly solved.

``x'' = -x / r^3``, ``y'' = -y / r^3`` on ``[0, 20]`` from periapsis,
``(x, y, x', y')(0) = (1 - e, 0, 0, sqrt((1 + e) / (1 - e)))``. The exact solution
comes from Kepler's equation ``E - e sin E = t`` (solved by Newton's method in
mpmath): ``x = cos E - e``, ``y = sqrt(1 - e^2) sin E``, ``x' = -sin E / (1 - e cos E)``,
``y' = sqrt(1 - e^2) cos E / (1 - e cos E)``.
"""

from __future__ import annotations

import functools

import numpy as np

from ._arrays import as_state
from ._suite import SuiteProblem

T_END = 20.0
ECCENTRICITIES = {"D1": 0.1, "D2": 0.3, "D3": 0.5, "D4": 0.7, "D5": 0.9}


def _fun(t, y):
    x, v, dx, dv = as_state(y)
    r3 = (x * x + v * v) ** 1.5
    return np.stack([dx, dv, -x / r3, -v / r3])


def kepler_exact(e, t, dps):
    """Exact state ``(x, y, x', y')`` at time ``t`` of the orbit of eccentricity ``e``.

    Parameters
    ----------
    e, t : float
        Eccentricity and time (float values taken exactly).
    dps : int
        Decimal digits of the mpmath computation.

    Returns
    -------
    list of mpmath.mpf, length 4
    """
    import mpmath

    mp = mpmath.mp.clone()
    mp.dps = dps + 10
    e, t = mp.mpf(e), mp.mpf(t)
    # Newton on E - e sin E - t, from E = t + e sin t (converges for e < 1 on any t).
    ecc_anom = t + e * mp.sin(t)
    tol = mp.mpf(10) ** (-(dps + 5))
    for _ in range(200):
        step = (ecc_anom - e * mp.sin(ecc_anom) - t) / (1 - e * mp.cos(ecc_anom))
        ecc_anom -= step
        if abs(step) < tol:
            break
    else:  # pragma: no cover - Newton converges quadratically from this start
        raise RuntimeError("Kepler's equation: Newton did not converge")
    s, c = mp.sin(ecc_anom), mp.cos(ecc_anom)
    w = mp.sqrt(1 - e * e)
    den = 1 - e * c
    return [c - e, w * s, -s / den, w * c / den]


def _problem(name: str) -> SuiteProblem:
    e = ECCENTRICITIES[name]
    y0 = (1 - e, 0.0, 0.0, float(np.sqrt((1 + e) / (1 - e))))
    return SuiteProblem(
        name=name, fun=_fun, jac=None, t_span=(0.0, T_END), y0=y0, stiff=False,
        floor=1.0, family="DETEST D", description=f"Kepler orbit, e = {e}",
        # y0 is the float64 rounding of the exact initial state: the orbit from it has a
        # slightly different e; its exact solution differs by O(1e-16) x the growth of
        # errors along the orbit (about t / (1 - e)^2, well below 1e-12 here).
        exact=functools.partial(kepler_exact, e, T_END),
    )


FACTORIES = {name: functools.partial(_problem, name) for name in ECCENTRICITIES}

"""Small stiff problems: HIRES, ROBER, E5, CHEMAKZO (IVP Test Set) and VDPOL (mu = 1000).

Formulations of the Test Set for IVP Solvers (F. Mazzia, C. Magherini et al., release
2.4, University of Bari, 2008), except:

* ``VDPOL`` is MATLAB's ``vdp1000`` setting: ``y1' = y2``,
  ``y2' = mu (1 - y1^2) y2 - y1``, mu = 1000, ``y(0) = (2, 0)``, ``t in [0, 3000]``
  (not the test set's rescaled, epsilon = 1e-6 form);
* ``CHEMAKZO`` is the test set's index-1 DAE with the algebraic variable
  ``y6 = Ks y1 y4`` eliminated, an ODE in ``y1 .. y5``;
* ``E5-stiff`` is the test set's E5 (named apart from DETEST's E5).

Each problem has an analytic Jacobian. ``published`` holds the test set's reference
value of ``y(t_end)`` (for CHEMAKZO its first five components); VDPOL has none.
"""

from __future__ import annotations

import functools

import numpy as np

from ._arrays import as_state, matrix
from ._suite import SuiteProblem

# --------------------------------------------------------------------------- HIRES


def _hires(t, y):
    y1, y2, y3, y4, y5, y6, y7, y8 = as_state(y)
    r = 280.0 * y6 * y8
    return np.stack([
        -1.71 * y1 + 0.43 * y2 + 8.32 * y3 + 0.0007,
        1.71 * y1 - 8.75 * y2,
        -10.03 * y3 + 0.43 * y4 + 0.035 * y5,
        8.32 * y2 + 1.71 * y3 - 1.12 * y4,
        -1.745 * y5 + 0.43 * y6 + 0.43 * y7,
        -r + 0.69 * y4 + 1.71 * y5 - 0.43 * y6 + 0.69 * y7,
        r - 1.81 * y7,
        -r + 1.81 * y7,
    ])


def _hires_jac(t, y):
    y = as_state(y)
    y6, y8 = y[5], y[7]
    a, b = 280.0 * y8, 280.0 * y6
    return matrix([
        [-1.71, 0.43, 8.32, 0, 0, 0, 0, 0],
        [1.71, -8.75, 0, 0, 0, 0, 0, 0],
        [0, 0, -10.03, 0.43, 0.035, 0, 0, 0],
        [0, 8.32, 1.71, -1.12, 0, 0, 0, 0],
        [0, 0, 0, 0, -1.745, 0.43, 0.43, 0],
        [0, 0, 0, 0.69, 1.71, -0.43 - a, 0.69, -b],
        [0, 0, 0, 0, 0, a, -1.81, b],
        [0, 0, 0, 0, 0, -a, 1.81, -b],
    ], y)


# --------------------------------------------------------------------------- VDPOL

_MU = 1000.0


def _vdpol(t, y):
    y1, y2 = as_state(y)
    return np.stack([y2, _MU * (1 - y1 * y1) * y2 - y1])


def _vdpol_jac(t, y):
    y1, y2 = as_state(y)
    return matrix([[0, 1], [-2 * _MU * y1 * y2 - 1, _MU * (1 - y1 * y1)]], as_state(y))


# --------------------------------------------------------------------------- ROBER


def _rober(t, y):
    y1, y2, y3 = as_state(y)
    a, b = 1e4 * y2 * y3, 3e7 * y2 * y2
    return np.stack([-0.04 * y1 + a, 0.04 * y1 - a - b, b])


def _rober_jac(t, y):
    y1, y2, y3 = as_state(y)
    return matrix([[-0.04, 1e4 * y3, 1e4 * y2],
                   [0.04, -1e4 * y3 - 6e7 * y2, -1e4 * y2],
                   [0, 6e7 * y2, 0]], as_state(y))


# --------------------------------------------------------------------------- E5

_E5A, _E5B, _E5C, _E5M = 7.89e-10, 1.1e7, 1.13e3, 1e6


def _e5(t, y):
    y1, y2, y3, y4 = as_state(y)
    p, q = _E5B * y1 * y3, _E5M * _E5C * y2 * y3
    return np.stack([-_E5A * y1 - p, _E5A * y1 - q, _E5A * y1 - p - q + _E5C * y4,
                     p - _E5C * y4])


def _e5_jac(t, y):
    y1, y2, y3, y4 = as_state(y)
    a, b, c, mc = _E5A, _E5B, _E5C, _E5M * _E5C
    return matrix([[-a - b * y3, 0, -b * y1, 0],
                   [a, -mc * y3, -mc * y2, 0],
                   [a - b * y3, -mc * y3, -b * y1 - mc * y2, c],
                   [b * y3, 0, b * y1, -c]], as_state(y))


# --------------------------------------------------------------------------- CHEMAKZO

_K1, _K2, _K3, _K4, _KBIG, _KLA, _KS, _PO2, _HEN = (
    18.7, 0.58, 0.09, 0.42, 34.4, 3.3, 115.83, 0.9, 737.0)
# Stoichiometry: f = S @ (r1, r2, r3, r4, r5) + (0, Fin, 0, 0, 0).
_S = ((-2.0, 1.0, -1.0, -1.0, 0.0),
      (-0.5, 0.0, 0.0, -1.0, -0.5),
      (1.0, -1.0, 1.0, 0.0, 0.0),
      (0.0, -1.0, 1.0, -2.0, 0.0),
      (0.0, 1.0, -1.0, 0.0, 1.0))


def _chemakzo_rates(y1, y2, y3, y4, y5):
    y6 = _KS * y1 * y4  # the eliminated algebraic variable
    s2 = np.sqrt(y2)
    return (_K1 * y1 ** 4 * s2, _K2 * y3 * y4, _K2 / _KBIG * y1 * y5, _K3 * y1 * y4 * y4,
            _K4 * y6 * y6 * s2)


def _chemakzo(t, y):
    y1, y2, y3, y4, y5 = as_state(y)
    r = _chemakzo_rates(y1, y2, y3, y4, y5)
    fin = _KLA * (_PO2 / _HEN - y2)
    out = [sum(s * rk for s, rk in zip(row, r) if s) for row in _S]
    out[1] = out[1] + fin
    return np.stack(out)


def _chemakzo_jac(t, y):
    y = as_state(y)
    y1, y2, y3, y4, y5 = y
    s2 = np.sqrt(y2)
    c5 = _K4 * _KS * _KS
    zero = 0 * y1
    # dr[k][j] = d r_k / d y_j
    dr = [
        [4 * _K1 * y1 ** 3 * s2, _K1 * y1 ** 4 / (2 * s2), zero, zero, zero],
        [zero, zero, _K2 * y4, _K2 * y3, zero],
        [_K2 / _KBIG * y5, zero, zero, zero, _K2 / _KBIG * y1],
        [_K3 * y4 * y4, zero, zero, 2 * _K3 * y1 * y4, zero],
        [2 * c5 * y1 * y4 * y4 * s2, c5 * y1 * y1 * y4 * y4 / (2 * s2), zero,
         2 * c5 * y1 * y1 * y4 * s2, zero],
    ]
    rows = [[sum(s * dr[k][j] for k, s in enumerate(row) if s) for j in range(5)]
            for row in _S]
    rows[1][1] = rows[1][1] - _KLA
    return matrix(rows, y)


# --------------------------------------------------------------------------- registry

_TABLE = {
    # name: (fun, jac, t_span, y0, floor, description, published y(t_end))
    "HIRES": (_hires, _hires_jac, (0.0, 321.8122), (1, 0, 0, 0, 0, 0, 0, 0.0057), 1e-6,
              "High Irradiance RESponse, plant physiology, n = 8",
              ("0.7371312573325668e-3", "0.1442485726316185e-3", "0.5888729740967575e-4",
               "0.1175651343283149e-2", "0.2386356198831331e-2", "0.6238968252742796e-2",
               "0.2849998395185769e-2", "0.2850001604814231e-2")),
    "VDPOL": (_vdpol, _vdpol_jac, (0.0, 3000.0), (2.0, 0.0), 1e-3,
              "van der Pol, mu = 1000 (MATLAB's vdp1000)", None),
    "ROBER": (_rober, _rober_jac, (0.0, 1e11), (1.0, 0.0, 0.0), 1e-10,
              "Robertson's chemical kinetics, to t = 1e11",
              ("0.2083340149701255e-7", "0.8333360770334713e-13", "0.9999999791665050")),
    "E5-stiff": (_e5, _e5_jac, (0.0, 1e13), (1.76e-3, 0.0, 0.0, 0.0), 1e-24,
                 "E5 chemical pyrolysis (test set), to t = 1e13",
                 ("0.1152903278711829e-290", "0.8867655517642120e-22",
                  "0.8854814626268838e-22", "0.0")),
    "CHEMAKZO": (_chemakzo, _chemakzo_jac, (0.0, 180.0),
                 (0.444, 0.00123, 0.0, 0.007, 0.0), 1e-6,
                 "Chemical Akzo Nobel, DAE reduced to an ODE, n = 5",
                 ("0.1150794920661702", "0.1203831471567715e-2", "0.1611562887407974",
                  "0.3656156421249283e-3", "0.1708010885264404e-1")),
}


def _problem(name: str) -> SuiteProblem:
    fun, jac, t_span, y0, floor, description, published = _TABLE[name]
    return SuiteProblem(name=name, fun=fun, jac=jac, t_span=t_span, y0=y0, stiff=True,
                        floor=floor, family="IVP test set" if published else "MATLAB",
                        description=description, published=published)


FACTORIES = {name: functools.partial(_problem, name) for name in _TABLE}

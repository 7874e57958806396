"""How the suite's references are made and checked: two independent ways per problem.

The stored value of ``y(t_end)`` and its check, by kind of problem:

* **exact** (A1-A5, B2, C1-C4, D1-D5, E1, E4, E5): the closed form evaluated with
  mpmath at 40 digits; checked against the long-double extrapolation integrator
  (:mod:`._extrapolation`), which integrates the suite's own ``fun`` -- so the check
  also catches a right-hand side that does not match the formula;
* **extrapolation** (the other non-stiff DETEST problems, PLEI): the long-double
  extrapolation integrator at local tolerance 1e-17; checked by a second run at 1e-14
  (other step sizes);
* **Taylor** (spiral, Lorenz): the paper's mpmath Taylor solution (itself two runs at
  different precisions, orders and steps that must agree, see :mod:`._paper`); checked
  against the extrapolation integrator at 1e-17;
* **published** (HIRES, ROBER, E5-stiff, CHEMAKZO): the IVP Test Set's reference
  value; checked against scipy's Radau at ``rtol = 1e-13``, ``atol = 1e-13 * floor``
  with the analytic Jacobian;
* **Radau** (VDPOL, MEDAKZO, BRUSS, BRUSS-1000, no published value here): scipy's Radau as above; checked
  against LSODA (ODEPACK, another code and method) at the same tolerances. MEDAKZO's
  right-hand side jumps at t = 5: both integrate piecewise, restarting there.

``agreement`` is the scaled error (:func:`._suite.scaled_error`, the problem's floor)
between the two ways. A target is *resolvable* when it is at least 10 times the
agreement. For a problem with an exact, Taylor or extrapolated reference,
:func:`make_reference` raises if it cannot resolve 1e-6 (that would be a bug); a stiff
problem whose float64 check cannot confirm the published value (E5-stiff: every scipy
method at its tightest tolerances is off by orders of magnitude in the components of
size 1e-22) is stored with no resolvable target, and the benchmark leaves it out.
"""

from __future__ import annotations

import time

import numpy as np

from ._suite import TARGETS, SuiteProblem, _RESOLUTION_FACTOR, scaled_error

_EXACT_DPS = 40
_TOL_FINE, _TOL_COARSE = 1e-17, 1e-14
_RADAU_RTOL = 1e-13
# Minimum target every problem must resolve, else make() refuses the reference.
_REQUIRED_TARGET = 1e-6


def _mp_strings(values, digits=25):
    import mpmath

    return [mpmath.nstr(v, digits, strip_zeros=False) if v != 0 else "0.0" for v in values]


def _ld_strings(y):
    return [np.format_float_scientific(v, precision=21, unique=False) for v in y]


def _floats(strings):
    return np.array([float(s) for s in strings])


def _extrapolated(problem, tol):
    from . import _extrapolation

    y, steps = _extrapolation.integrate(problem.fun, problem.t_span, problem.y0, tol=tol)
    return _ld_strings(y), steps


def _scipy(problem, method):
    from scipy.integrate import solve_ivp

    jac = problem.jac
    if jac is not None and problem.n > 50 and method != "LSODA":
        from scipy.sparse import csc_matrix

        jac = lambda t, y: csc_matrix(problem.jac(t, y))  # noqa: E731 - sparse LU
    # Integrate piecewise across the jumps of fun; each piece after a jump starts just
    # past it, so that no stage sees the value before the jump.
    edges = [problem.t_span[0], *problem.breakpoints, problem.t_span[1]]
    y, nfev = np.array(problem.y0), 0
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        a = np.nextafter(a, b) if k else a
        res = solve_ivp(problem.fun, (a, b), y, method=method, jac=jac, rtol=_RADAU_RTOL,
                        atol=_RADAU_RTOL * problem.floor)
        if res.status != 0:
            raise RuntimeError(f"{problem.name}: {method} failed: {res.message}")
        y, nfev = res.y[:, -1], nfev + int(res.nfev)
    return [repr(float(v)) for v in y], nfev


def _record(problem, kind, values, method, check_values, check):
    agreement = scaled_error(_floats(check_values), _floats(values), problem.floor)
    return {
        "values": list(values),
        "kind": kind,
        "method": method,
        "check": check,
        "check_values": list(check_values),
        "agreement": agreement,
        "resolvable": [t for t in TARGETS if t >= _RESOLUTION_FACTOR * agreement],
    }


def make_reference(problem: SuiteProblem) -> dict:
    """Compute ``problem``'s reference both ways and compare them.

    Parameters
    ----------
    problem : SuiteProblem

    Returns
    -------
    dict
        The record stored in ``_reference_values.py``: ``values`` (decimal strings),
        ``kind``, ``method``, ``check``, ``check_values``, ``agreement`` (scaled error
        between the two), ``resolvable`` (targets), ``seconds``.

    Raises
    ------
    RuntimeError
        If the two ways disagree by more than ``1e-6 / 10`` in the scaled norm on a
        non-stiff problem.
    """
    start = time.perf_counter()
    if problem.exact is not None:
        values = _mp_strings(problem.exact(_EXACT_DPS))
        check, steps = _extrapolated(problem, _TOL_FINE)
        rec = _record(problem, "exact", values, f"closed form, mpmath {_EXACT_DPS} digits",
                      check, f"long-double extrapolation, tol {_TOL_FINE:g} ({steps} steps)")
    elif problem.reference_source is not None:
        values = _mp_strings(problem.reference_source(20))
        check, steps = _extrapolated(problem, _TOL_FINE)
        rec = _record(problem, "Taylor", values, "mpmath Taylor series, 20 verified digits",
                      check, f"long-double extrapolation, tol {_TOL_FINE:g} ({steps} steps)")
    elif not problem.stiff:
        values, steps = _extrapolated(problem, _TOL_FINE)
        check, steps2 = _extrapolated(problem, _TOL_COARSE)
        rec = _record(problem, "extrapolation", values,
                      f"long-double extrapolation, tol {_TOL_FINE:g} ({steps} steps)",
                      check, f"the same at tol {_TOL_COARSE:g} ({steps2} steps)")
    elif problem.published is not None:
        check, nfev = _scipy(problem, "Radau")
        rec = _record(problem, "published", list(problem.published),
                      "IVP Test Set's published reference", check,
                      f"scipy Radau, rtol {_RADAU_RTOL:g}, atol {_RADAU_RTOL:g} * floor, "
                      f"analytic Jacobian ({nfev} evaluations)")
    else:
        values, nfev = _scipy(problem, "Radau")
        check, nfev2 = _scipy(problem, "LSODA")
        rec = _record(problem, "Radau", values,
                      f"scipy Radau, rtol {_RADAU_RTOL:g}, atol {_RADAU_RTOL:g} * floor, "
                      f"analytic Jacobian ({nfev} evaluations)", check,
                      f"scipy LSODA, same tolerances and Jacobian ({nfev2} evaluations)")
    rec["seconds"] = round(time.perf_counter() - start, 2)
    if rec["agreement"] * _RESOLUTION_FACTOR > _REQUIRED_TARGET and not problem.stiff:
        raise RuntimeError(f"{problem.name}: the two references disagree by "
                           f"{rec['agreement']:.2e} (scaled), too much for any target")
    return rec

"""Solver adapters for bench/suite.py: one timed run of one solver on one suite problem.

Every solver gets the same information: the problem's analytic Jacobian wherever the
solver takes one (stiff problems and the paper's problems have one; the non-stiff
DETEST problems do not, so implicit solvers use finite differences there). chebpan
gets ``vectorized=True`` (and ``vectorized_jac=True``), since its ``fun`` supports it;
scipy's methods run point-wise (``vectorized=False``, their fastest setting for these
small systems). On the problems with a ``sparsity`` (MEDAKZO, n = 400; BRUSS, n = 200;
BRUSS-1000) chebpan gets ``jac_sparsity`` and no ``jac`` (its sparse Newton steps need
the sparsity; a callable Jacobian would be dense), scipy's Radau and BDF get the
analytic Jacobian as a sparse matrix, and, the three Jacobians being banded, LSODA and
CVODE their band solvers with their own banded difference quotients (``lband``,
``uband``; ``linsolver="band"``): on BRUSS-1000 CVODE takes 10 ms at ``rtol = 1e-3``
with it, 130 ms with the dense analytic Jacobian.
"""

from __future__ import annotations

import dataclasses
import time
import warnings

import numpy as np

SCIPY_METHODS = ("RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA")
_IMPLICIT = ("Radau", "BDF", "LSODA")


class OverBudget(Exception):
    """Raised from inside ``fun`` when a run passes its time budget."""


@dataclasses.dataclass
class Run:
    """One run: tolerance, outcome, cost."""

    solver: str
    rtol: float
    error: float  # scaled error at t_end; inf if failed
    seconds: float
    depth: int  # chebpan: sequential rounds; others: number of fun calls
    npoints: int  # single-point evaluations of fun
    nfev: int  # as reported by the solver
    status: int  # 0: reached t_end; -1: failed; -2: over budget
    message: str = ""
    y: object = dataclasses.field(default=None, repr=False)  # y(t_end), shape (n,)


class _Counted:
    """``fun`` wrapper counting calls and points, raising OverBudget past a deadline."""

    def __init__(self, fun, deadline):
        self.fun, self.deadline = fun, deadline
        self.calls = self.points = 0

    def __call__(self, t, y):
        self.calls += 1
        self.points += y.shape[1] if np.ndim(y) == 2 else 1
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise OverBudget
        return self.fun(t, y)


def available_solvers() -> list[str]:
    """chebpan, scipy's six methods, and CVODE if scikit-sundae imports."""
    out = ["chebpan", *SCIPY_METHODS]
    try:
        import sksundae.cvode  # noqa: F401
    except ImportError:
        pass
    else:
        out.append("CVODE")
    return out


def _band(problem):
    """(lower, upper) bandwidths of a problem whose declared sparsity is banded (as chebpan
    decides, :attr:`~chebpan._rhs.sparse.SparsityPattern.banded`), else None."""
    if problem.sparsity is None:
        return None
    from chebpan._rhs.sparse import SparsityPattern

    pattern = SparsityPattern.from_matrix(problem.sparsity(), problem.n)
    return pattern.bandwidths if pattern.banded else None


def _sparse_jac(jac):
    from scipy.sparse import csc_matrix

    return lambda t, y: csc_matrix(jac(t, y))


def _chebpan(problem, fun, rtol, atol):
    import chebpan

    kw = dict(vectorized=True, rtol=rtol, atol=atol)
    if problem.sparsity is not None:
        kw["jac_sparsity"] = problem.sparsity()
    elif problem.jac is not None:
        kw.update(jac=problem.jac, vectorized_jac=True)
    res = chebpan.solve_ivp(fun, problem.t_span, np.array(problem.y0), **kw)
    return res.status, res.message, res.y[:, -1], int(res.depth), int(res.npoints), int(res.nfev)


def _scipy(problem, method, fun, rtol, atol):
    from scipy.integrate import solve_ivp

    kw = {}
    band = _band(problem)
    if method == "LSODA" and band is not None:
        kw.update(lband=band[0], uband=band[1])  # (banded difference quotients)
    elif method in _IMPLICIT and problem.jac is not None:
        kw["jac"] = (_sparse_jac(problem.jac)
                     if problem.sparsity is not None and method != "LSODA" else problem.jac)
    # (t_eval: only y(t_end) is kept; an explicit method's millions of steps on a stiff
    # system of n = 1000 would otherwise fill the memory)
    res = solve_ivp(fun, problem.t_span, np.array(problem.y0), method=method, rtol=rtol,
                    atol=atol, t_eval=[problem.t_span[1]], **kw)
    return res.status, res.message, res.y[:, -1], None, None, int(res.nfev)


def _cvode(problem, fun, rtol, atol):
    from sksundae.cvode import CVODE

    def rhs(t, y, yp):
        yp[:] = fun(t, y)

    kw = dict(method="BDF" if problem.stiff else "Adams", rtol=rtol, atol=atol,
              max_num_steps=10**8)
    band = _band(problem)
    if band is not None:
        # (its band solver, with banded difference quotients)
        kw.update(linsolver="band", lband=band[0], uband=band[1])
    elif problem.jac is not None:
        jac = problem.jac

        def jacfn(t, y, yp, jj):
            jj[:, :] = jac(t, y)

        kw["jacfn"] = jacfn
    res = CVODE(rhs, **kw).solve(np.array(problem.t_span), np.array(problem.y0))
    status = 0 if res.success else -1
    return status, str(res.message), np.asarray(res.y)[-1], None, None, int(res.nfev)


def run(solver, problem, rtol, *, budget=None, counted=True) -> Run:
    """Solve ``problem`` with ``solver`` at ``rtol`` (``atol = rtol * problem.floor``).

    Parameters
    ----------
    solver : str
        ``"chebpan"``, one of :data:`SCIPY_METHODS`, or ``"CVODE"``.
    problem : chebpan.testing.SuiteProblem
    rtol : float
    budget : float or None
        Seconds after which the run is abandoned (status -2); needs ``counted``.
    counted : bool
        Wrap ``fun`` to count calls and points and to enforce ``budget`` (the timed
        repeats run unwrapped).

    Returns
    -------
    Run
    """
    atol = rtol * problem.floor
    start = time.perf_counter()
    fun = _Counted(problem.fun, None if budget is None else start + budget) if counted \
        else problem.fun
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            if solver == "chebpan":
                status, msg, y, depth, npoints, nfev = _chebpan(problem, fun, rtol, atol)
            elif solver == "CVODE":
                status, msg, y, depth, npoints, nfev = _cvode(problem, fun, rtol, atol)
            else:
                status, msg, y, depth, npoints, nfev = _scipy(problem, solver, fun, rtol, atol)
    except OverBudget:
        return Run(solver, rtol, np.inf, time.perf_counter() - start, 0, 0, 0, -2,
                   f"over the {budget:g} s budget")
    except Exception as exc:  # a solver blowing up is a failed run, not a crash
        return Run(solver, rtol, np.inf, time.perf_counter() - start, 0, 0, 0, -1,
                   f"{type(exc).__name__}: {exc}"[:200])
    seconds = time.perf_counter() - start
    if counted:
        depth = fun.calls if depth is None else depth
        npoints = fun.points if npoints is None else npoints
    error = problem.scaled_error(y) if status == 0 else np.inf
    return Run(solver, rtol, error, seconds, depth or 0, npoints or 0, nfev,
               0 if status == 0 else -1, "" if status == 0 else str(msg)[:200],
               np.asarray(y, dtype=float))

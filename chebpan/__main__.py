"""Demo: ``python -m chebpan`` (or ``chebpan-demo``).

Solves the two problems of the PAN paper, the nonlinear spiral (§5.5.1) and the
Lorenz system (§5.5.2), with chebpan and with scipy's RK45, DOP853, Radau, BDF and
LSODA at the same tolerance, and prints one markdown table per problem: the error at
``t_end`` against a verified high-precision (mpmath) reference, the depth (rounds of
right-hand-side evaluations that must happen one after another), the work (points at
which ``fun`` was evaluated) and the wall time.

The references need mpmath: ``pip install "chebpan[demo]"``.

Conventions
-----------
* error: ``max_i |y_i(t_end) - y_ref,i|`` (absolute, max norm);
* depth: ``res.depth`` for chebpan; ``nfev`` for scipy, whose solvers call ``fun`` at
  one point at a time, one call after the other (the ``njev`` Jacobian calls of
  Radau/BDF/LSODA are not included);
* npoints: ``res.npoints`` for chebpan; ``nfev`` for scipy;
* wall time: best of ``--repeats`` runs after one warm-up run (which, for chebpan,
  includes numba's compilation).

chebpan is called with ``vectorized=True`` (all nodes of a segment in one call of
``fun``); on Lorenz it also gets the analytic Jacobian (``jac=problem.jac``,
``vectorized_jac=True``), on the spiral it uses forward differences. scipy's implicit
methods (Radau, BDF, LSODA) get the analytic Jacobian on both problems.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass

import numpy as np
import scipy
import scipy.integrate

import chebpan
from chebpan.testing import lorenz, spiral

__all__ = ["main", "run_problem", "Row"]

#: scipy's methods compared in the demo.
SCIPY_METHODS = ("RK45", "DOP853", "Radau", "BDF", "LSODA")
#: scipy methods that use a Jacobian (they are given the analytic one).
_IMPLICIT = frozenset({"Radau", "BDF", "LSODA"})
#: chebpan's options per problem beyond ``vectorized=True``.
_CHEBPAN_JAC = {"spiral": False, "lorenz": True}


@dataclass
class Row:
    """One line of a table: a method's result on a problem."""

    method: str
    rtol: float
    error: float | None  # None: the solve failed
    depth: int
    npoints: int
    wall_s: float
    detail: str = ""


def _solve(problem, method, tol):
    """One solve of ``problem`` by ``method`` ("chebpan" or a scipy name)."""
    if method == "chebpan":
        kwargs = {}
        if _CHEBPAN_JAC.get(problem.name, False):
            kwargs = {"jac": problem.jac, "vectorized_jac": True}
        return chebpan.solve_ivp(problem.fun, problem.t_span, problem.y0,
                                 vectorized=True, rtol=tol, atol=tol, **kwargs)
    kwargs = {"jac": problem.jac} if method in _IMPLICIT else {}
    return scipy.integrate.solve_ivp(problem.fun, problem.t_span, problem.y0,
                                     method=method, rtol=tol, atol=tol, **kwargs)


def _timed(problem, method, tol, repeats):
    """Warm-up run, then the best wall time of ``repeats`` runs; returns (res, seconds)."""
    res = _solve(problem, method, tol)
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        res = _solve(problem, method, tol)
        best = min(best, time.perf_counter() - start)
    return res, best


def run_problem(problem, tol=1e-10, repeats=3, methods=("chebpan",) + SCIPY_METHODS):
    """Rows of the demo table for ``problem``, in the order of ``methods``."""
    ref = problem.reference_array()
    rows = []
    for method in methods:
        print(f"  {problem.name}: {method} ...", file=sys.stderr, flush=True)
        res, seconds = _timed(problem, method, tol, repeats)
        error = None  # a failed solve has no error at t_end
        if res.success:
            error = float(np.max(np.abs(np.asarray(res.y)[:, -1] - ref)))
        if method == "chebpan":
            detail = (f"{res.nsegments} segments ({res.nrejected} rejected), "
                      f"{res.niter_picard} Picard + {res.niter_newton} Newton "
                      f"iterations, nfev = {res.nfev}, njev = {res.njev}, nlu = {res.nlu}")
            rows.append(Row("chebpan", tol, error, res.depth, res.npoints, seconds, detail))
        else:
            rows.append(Row(method, tol, error, res.nfev, res.nfev, seconds))
        if not res.success:
            rows[-1].detail = f"failed: {res.message} {rows[-1].detail}".rstrip()
    return rows


def _reference_line(problem):
    info = problem.reference_info()
    return (f"Reference y({problem.t_span[1]:g}): Taylor-series integrator in mpmath "
            f"(chebpan.testing), {info['key']['dps']} significant digits, verified by "
            f"two runs at different precisions that agree to "
            f"{info['verified_digits']:.0f} (working precision {info['working_dps']} "
            f"digits, order {info['order']}, {info['steps']} steps; mpmath "
            f"{info['mpmath']}).")


def format_table(rows):
    """Markdown table of ``rows``."""
    header = ("| method | rtol = atol | error at t_end | depth | npoints | "
              "wall time [ms] |")
    lines = [header, "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        error = "failed" if r.error is None else f"{r.error:.2e}"
        lines.append(f"| {r.method} | {r.rtol:.0e} | {error} | {r.depth} | {r.npoints} | "
                     f"{1e3 * r.wall_s:.1f} |")
    return "\n".join(lines)


def _machine_line():
    import numba

    return (f"{platform.platform()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, chebpan {chebpan.__version__}, numpy "
            f"{np.__version__}, scipy {scipy.__version__}, numba {numba.__version__}")


def _program_name():
    """How the demo was started: ``chebpan-demo`` (the script) or ``python -m chebpan``."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "chebpan-demo" if name.startswith("chebpan-demo") else "python -m chebpan"


def main(argv=None, prog=None):
    """Entry point of ``python -m chebpan`` and ``chebpan-demo``.

    ``argv``: the arguments (default ``sys.argv[1:]``); ``prog``: the program name in
    ``--help`` (default: the name it was started by).
    """
    parser = argparse.ArgumentParser(
        prog=prog or _program_name(),
        description="chebpan against scipy's solvers on the PAN paper's spiral and "
                    "Lorenz problems.")
    parser.add_argument("--version", action="version",
                        version=f"chebpan {chebpan.__version__}")
    parser.add_argument("--tol", type=float, default=1e-10,
                        help="rtol = atol for every solver (default 1e-10)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs per method after one warm-up (default 3)")
    parser.add_argument("--problems", nargs="+", choices=("spiral", "lorenz"),
                        default=("spiral", "lorenz"), help="problems to run")
    args = parser.parse_args(argv)

    try:
        import mpmath  # noqa: F401  (the references need it)
    except ImportError:
        print("The demo's reference solutions need mpmath: "
              'python -m pip install "chebpan[demo]" (or: pip install mpmath).',
              file=sys.stderr)
        return 1

    factories = {"spiral": spiral, "lorenz": lorenz}
    print("# chebpan demo: the PAN paper's problems, chebpan against scipy\n")
    print(f"Machine: {_machine_line()}.\n")
    print("error = max_i |y_i(t_end) - y_ref,i|; depth = rounds of `fun` evaluations "
          "that run one after another (scipy: nfev); npoints = points at which `fun` "
          "was evaluated (scipy: nfev); wall time = best of "
          f"{args.repeats} runs after a warm-up run.\n")
    start = time.perf_counter()
    for name in args.problems:
        problem = factories[name]()
        print(f"  {name}: reference ...", file=sys.stderr, flush=True)
        ref_line = _reference_line(problem)  # computed (mpmath) or read from the cache
        rows = run_problem(problem, tol=args.tol, repeats=args.repeats)
        jac = ("analytic Jacobian (vectorized_jac=True)" if _CHEBPAN_JAC[name]
               else "forward-difference Jacobian")
        print(f"## {name}: {problem.description}, t in [{problem.t_span[0]:g}, "
              f"{problem.t_span[1]:g}], y0 = {problem.y0}\n")
        print(format_table(rows))
        print()
        print(ref_line)
        for r in rows:
            if r.detail:
                print(f"{r.method}: {r.detail}.")
        print(f"chebpan: vectorized=True, {jac}; Radau, BDF, LSODA: analytic Jacobian "
              f"(its njev calls are not counted in depth).\n")
    print(f"Total time: {time.perf_counter() - start:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Tables 1 and 2 of the PAN paper (§5.5), reproduced, and work-precision diagrams.

Run from the repository root (after ``pip install ".[bench]"``, or with
``PYTHONPATH=.``)::

    python bench/paper_tables.py              # tables and figures, < 1 min on 2 cores
    python bench/paper_tables.py --quick      # fewer tolerances and timing runs, ~25 s
    python bench/paper_tables.py --no-plots   # tables only (no matplotlib needed)

Tables (printed as markdown, and written to ``OUTPUT/paper_tables.md``):

* Table 1, the spiral ``y' = tanh(A y)`` with ``a = 0.1``
  (:func:`chebpan.testing.spiral`), and Table 2, the Lorenz system
  (:func:`chebpan.testing.lorenz`);
* rows: scipy's RK45, Radau, BDF and LSODA at ``rtol = atol = 1e-6`` and ``1e-9``,
  and chebpan with ``n_coeffs = 50`` and ``100`` in each block (:data:`CHEBPAN_BLOCKS`
  gives chebpan's settings per block); on Lorenz chebpan runs both with the paper's
  segments of length 0.3 (``first_step = max_step = 0.3``; the error control may still
  shorten a segment, hence the segment counts) and with its own adaptive segments;
* columns: the error ``max_i |y_i(t_end) - y_ref,i|`` against the problem's mpmath
  reference, the depth (chebpan; the paper's NFE) or nfev (scipy), the points at
  which ``fun`` was evaluated (chebpan's ``npoints``; scipy's ``nfev``), the wall
  time (best of up to three runs after a warm-up run), and the paper's numbers for
  the same row;
* a comparison of each of the paper's PAN rows with chebpan's row of the same
  ``n_coeffs`` and block: does chebpan have a smaller error and a smaller depth?

Figures (``OUTPUT/spiral_work_precision.png``, ``OUTPUT/lorenz_work_precision.png``):
error against depth (scipy: nfev) and against wall time, for chebpan with its default
options and for scipy's RK45, RK23, DOP853, Radau, BDF and LSODA, over
``rtol = atol`` from 1e-3 to 1e-12 (``--quick``: 1e-3, 1e-5, 1e-7, 1e-9); one timed
run per point after a warm-up, best of two for runs under 0.1 s, the tables' scipy rows
reused; a method skips the tighter tolerances once a run takes longer than
``--max-run`` seconds (2; 0.5 with ``--quick``).

Conventions are the demo's (``python -m chebpan``): chebpan is called with
``vectorized=True``, on Lorenz with the analytic Jacobian (``vectorized_jac=True``)
and on the spiral with forward differences; Radau, BDF and LSODA get the analytic
Jacobian (their ``njev`` calls are not counted in nfev). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy
import scipy.integrate

import chebpan
from chebpan.testing import lorenz, spiral

#: scipy's methods in the paper's tables.
TABLE_METHODS = ("RK45", "Radau", "BDF", "LSODA")
#: scipy's methods in the work-precision diagrams.
SWEEP_METHODS = ("RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA")
#: scipy methods given the analytic Jacobian.
IMPLICIT = frozenset({"Radau", "BDF", "LSODA"})
#: The paper's two tolerance blocks.
PAPER_TOLERANCES = (1e-6, 1e-9)
#: chebpan's settings in each block: ``rtol = atol`` (segment error control, which the
#: paper's PAN does not have) and ``tol_ls = tol_newton`` (the paper's stopping rules of
#: the zero-order and the Newton iteration: what the paper's "tolerance" column gives for
#: PAN, there 1e-6 and 1e-9). Tighter stopping rules than the paper's are needed for the
#: error of PAN(100) in Table 1's 1e-9 block; chebpan's default rule (1e-3 of the
#: tolerance, scaled) stops at errors around 1e-14 on the spiral.
CHEBPAN_BLOCKS = {1e-6: {"rtol": 1e-6, "tol_ls": 1e-12},
                  1e-9: {"rtol": 1e-9, "tol_ls": 1e-15}}
#: Coefficients per component and segment of the paper's PAN rows.
N_COEFFS = (50, 100)
#: Segment length of the paper's Lorenz runs.
PAPER_SEGMENT = 0.3
#: Tolerances of the work-precision sweep.
SWEEP_TOLERANCES = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11, 1e-12)
QUICK_TOLERANCES = (1e-3, 1e-5, 1e-7, 1e-9)
#: chebpan's options per problem beyond ``vectorized=True`` (the demo's choice).
CHEBPAN_JAC = {"spiral": False, "lorenz": True}

#: The paper's rows: (problem, method, n_coeffs or None, tolerance) -> (error, NFE),
#: NFE for PAN as (zero-order, Newton).
PAPER = {
    ("spiral", "RK45", None, 1e-6): (4.14e-07, 212),
    ("spiral", "Radau", None, 1e-6): (6.97e-08, 599),
    ("spiral", "BDF", None, 1e-6): (4.56e-06, 250),
    ("spiral", "LSODA", None, 1e-6): (4.34e-06, 171),
    ("spiral", "PAN", 50, 1e-6): (1.86e-10, (37, 5)),
    ("spiral", "PAN", 100, 1e-6): (4.17e-14, (36, 5)),
    ("spiral", "RK45", None, 1e-9): (6.28e-10, 716),
    ("spiral", "Radau", None, 1e-9): (1.05e-10, 2994),
    ("spiral", "BDF", None, 1e-9): (1.66e-08, 656),
    ("spiral", "LSODA", None, 1e-9): (4.48e-10, 361),
    ("spiral", "PAN", 50, 1e-9): (1.86e-10, (42, 5)),
    ("spiral", "PAN", 100, 1e-9): (2.25e-15, (55, 5)),
    ("lorenz", "RK45", None, 1e-6): (5.75e-02, 5174),
    ("lorenz", "Radau", None, 1e-6): (2.17e-02, 16476),
    ("lorenz", "BDF", None, 1e-6): (2.09e-01, 4794),
    ("lorenz", "LSODA", None, 1e-6): (4.86e-02, 2803),
    ("lorenz", "PAN", 50, 1e-6): (1.60e-07, (1180, 250)),
    ("lorenz", "PAN", 100, 1e-6): (1.60e-07, (1231, 250)),
    ("lorenz", "RK45", None, 1e-9): (6.58e-05, 19532),
    ("lorenz", "Radau", None, 1e-9): (4.19e-06, 89999),
    ("lorenz", "BDF", None, 1e-9): (5.65e-04, 15184),
    ("lorenz", "LSODA", None, 1e-9): (5.45e-06, 4735),
    ("lorenz", "PAN", 50, 1e-9): (1.61e-07, (1399, 262)),
    ("lorenz", "PAN", 100, 1e-9): (1.61e-07, (1450, 390)),
}


# --------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class Config:
    """One solver configuration: a row of a table or a point of a sweep.

    Parameters
    ----------
    method : str
        ``"chebpan"`` or a scipy method name.
    tol : float
        ``rtol = atol``.
    block : float
        The paper's tolerance block the row belongs to (for scipy: ``tol``).
    n_coeffs : int or None
        chebpan's ``n_coeffs`` (None: chebpan's default).
    tol_iter : float or None
        chebpan's ``tol_ls = tol_newton`` (None: chebpan's default rule).
    segment : float or None
        ``first_step = max_step`` for chebpan (None: adaptive segments).
    """

    method: str
    tol: float
    block: float
    n_coeffs: int | None = None
    tol_iter: float | None = None
    segment: float | None = None

    def label(self):
        """Row label, e.g. ``chebpan(50), segments 0.3``."""
        if self.method != "chebpan":
            return self.method
        name = "chebpan" if self.n_coeffs is None else f"chebpan({self.n_coeffs})"
        if self.segment is not None:
            return f"{name}, segments {self.segment:g}"
        return name

    def tol_text(self):
        """``rtol = atol`` and, for chebpan, the stopping rules, as table text."""
        text = f"{self.tol:.0e}"
        if self.tol_iter is not None:
            text += f"; tol_ls = tol_newton = {self.tol_iter:.0e}"
        return text


def solve(problem, config):
    """Solve ``problem`` once with ``config``.

    Parameters
    ----------
    problem : chebpan.testing.Problem
        The problem.
    config : Config
        Method and options.

    Returns
    -------
    OdeResult
        chebpan's or scipy's result.
    """
    tol = config.tol
    if config.method != "chebpan":
        kwargs = {"jac": problem.jac} if config.method in IMPLICIT else {}
        return scipy.integrate.solve_ivp(problem.fun, problem.t_span, problem.y0,
                                         method=config.method, rtol=tol, atol=tol,
                                         **kwargs)
    return chebpan.solve_ivp(problem.fun, problem.t_span, problem.y0, vectorized=True,
                             rtol=tol, atol=tol, **chebpan_options(problem, config))


def chebpan_options(problem, config):
    """chebpan's keyword options for ``config`` beyond ``vectorized``, ``rtol``, ``atol``.

    Parameters
    ----------
    problem : chebpan.testing.Problem
        The problem (its name selects the Jacobian, see :data:`CHEBPAN_JAC`).
    config : Config
        A chebpan configuration.

    Returns
    -------
    dict
    """
    options = {}
    if CHEBPAN_JAC.get(problem.name, False):
        options.update(jac=problem.jac, vectorized_jac=True)
    if config.n_coeffs is not None:
        options["n_coeffs"] = config.n_coeffs
    if config.tol_iter is not None:
        options.update(tol_ls=config.tol_iter, tol_newton=config.tol_iter)
    if config.segment is not None:
        options.update(first_step=config.segment, max_step=config.segment)
    return options


def best_time(problem, config, repeats, budget_s=1.5, warm_up=True):
    """Least wall time of up to ``repeats`` runs, after an untimed warm-up run.

    Parameters
    ----------
    problem : chebpan.testing.Problem
    config : Config
    repeats : int
        Most timed runs (at least one is made).
    budget_s : float, optional
        Fewer timed runs are made when the first run shows that ``repeats`` of them
        would take longer than this.
    warm_up : bool, optional
        Whether the first run is an untimed warm-up (False: it is the first timed run).

    Returns
    -------
    res : OdeResult
        The result of the last run.
    seconds : float
        Least wall time of the timed runs.
    runs : int
        Number of timed runs.
    """
    res, first = _timed_solve(problem, config)
    best, runs = (float("inf"), 0) if warm_up else (first, 1)
    wanted = max(1, min(repeats, int(budget_s / max(first, 1e-9))))
    while runs < wanted:
        res, seconds = _timed_solve(problem, config)
        best, runs = min(best, seconds), runs + 1
    return res, best, runs


def _timed_solve(problem, config):
    start = time.perf_counter()
    res = solve(problem, config)
    return res, time.perf_counter() - start


def errors(res, ref):
    """Max-norm and 2-norm of the error at ``t_end``; ``(inf, inf)`` if the solve failed.

    Parameters
    ----------
    res : OdeResult
    ref : ndarray
        Reference ``y(t_end)``.

    Returns
    -------
    tuple of float
    """
    if not res.success:
        return float("inf"), float("inf")
    diff = np.asarray(res.y, dtype=float)[:, -1] - ref
    return float(np.max(np.abs(diff))), float(np.linalg.norm(diff))


@dataclass
class Row:
    """A measured configuration: one row of a table or one point of a sweep."""

    config: Config
    error: float  # max_i |y_i(t_end) - y_ref,i|; inf when the solve failed
    error2: float  # Euclidean norm of the same difference
    depth: int  # chebpan: res.depth; scipy: nfev
    npoints: int  # chebpan: res.npoints; scipy: nfev
    wall_s: float
    runs: int
    nsegments: int | None = None
    nrejected: int | None = None
    message: str = ""
    paper: tuple | None = field(default=None)


def measure(problem, ref, config, repeats, budget_s=1.5, warm_up=True):
    """Solve, time and compare with the reference: a :class:`Row`.

    Parameters
    ----------
    problem : chebpan.testing.Problem
    ref : ndarray
        Reference ``y(t_end)`` (``problem.reference_array()``).
    config : Config
    repeats, budget_s, warm_up
        Timing, as in :func:`best_time`.

    Returns
    -------
    Row
    """
    res, seconds, runs = best_time(problem, config, repeats, budget_s, warm_up)
    err, err2 = errors(res, ref)
    ours = config.method == "chebpan"
    return Row(config, err, err2,
               depth=int(res.depth if ours else res.nfev),
               npoints=int(res.npoints if ours else res.nfev),
               wall_s=seconds, runs=runs,
               nsegments=int(res.nsegments) if ours else None,
               nrejected=int(res.nrejected) if ours else None,
               message="" if res.success else str(res.message),
               paper=paper_row(problem.name, config))


def paper_row(name, config):
    """The paper's (error, NFE) for the row of ``config``, or None.

    Parameters
    ----------
    name : str
        Problem name.
    config : Config

    Returns
    -------
    tuple or None
    """
    if config.method == "chebpan":
        return PAPER.get((name, "PAN", config.n_coeffs, config.block))
    return PAPER.get((name, config.method, None, config.block))


# --------------------------------------------------------------------------- tables


def table_configs(name, blocks=CHEBPAN_BLOCKS, n_coeffs=N_COEFFS,
                  methods=TABLE_METHODS):
    """The rows of the paper's table for problem ``name``, block by block.

    Parameters
    ----------
    name : str
        ``"spiral"`` or ``"lorenz"``; Lorenz gets chebpan rows with the paper's
        segments of 0.3 as well as with adaptive segments.
    blocks : dict, optional
        Tolerance block -> chebpan's ``{"rtol": ..., "tol_ls": ...}``.
    n_coeffs : sequence of int, optional
    methods : sequence of str, optional
        scipy's methods.

    Returns
    -------
    list of Config
    """
    segments = (PAPER_SEGMENT, None) if name == "lorenz" else (None,)
    configs = []
    for block, ours in blocks.items():
        configs += [Config(m, block, block) for m in methods]
        configs += [Config("chebpan", ours["rtol"], block, n, ours["tol_ls"], seg)
                    for seg in segments for n in n_coeffs]
    return configs


def run_table(problem, configs, repeats):
    """Measure every configuration on ``problem``.

    Parameters
    ----------
    problem : chebpan.testing.Problem
    configs : sequence of Config
    repeats : int
        Most timed runs per row after its warm-up.

    Returns
    -------
    list of Row
    """
    ref = problem.reference_array()
    rows = []
    for config in configs:
        print(f"  {problem.name}: {config.label()} at {config.tol_text()} ...",
              file=sys.stderr, flush=True)
        rows.append(measure(problem, ref, config, repeats))
    return rows


def _paper_cells(paper):
    if paper is None:
        return "", ""
    err, nfe = paper
    if isinstance(nfe, tuple):
        return f"{err:.2e}", f"{sum(nfe)} ({nfe[0]} + {nfe[1]})"
    return f"{err:.2e}", str(nfe)


def _error_cell(row):
    return f"{row.error:.2e}" if not row.message else f"failed: {row.message}"


def format_table(rows):
    """Markdown table of measured rows, with the paper's numbers for the same rows.

    Parameters
    ----------
    rows : sequence of Row

    Returns
    -------
    str
    """
    lines = ["| method | rtol = atol | error at t_end | depth (scipy: nfev) | "
             "npoints (scipy: nfev) | segments (rejected) | wall time [ms] | "
             "paper: error | paper: NFE |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        segs = "" if r.nsegments is None else f"{r.nsegments} ({r.nrejected})"
        perr, pnfe = _paper_cells(r.paper)
        lines.append(f"| {r.config.label()} | {r.config.tol_text()} | {_error_cell(r)} | "
                     f"{r.depth} | {r.npoints} | {segs} | {1e3 * r.wall_s:.1f} | "
                     f"{perr} | {pnfe} |")
    return "\n".join(lines)


def compare_with_paper(rows):
    """chebpan's rows against the paper's PAN row of the same block and ``n_coeffs``.

    Parameters
    ----------
    rows : sequence of Row

    Returns
    -------
    list of dict
        One per chebpan row with a paper row: ``row``, ``paper_error``,
        ``paper_nfe`` (total), ``better_error`` (chebpan's 2-norm error, the larger of
        its two norms, below the paper's), ``better_depth`` and ``beats`` (both).
    """
    out = []
    for r in rows:
        if r.config.method != "chebpan" or r.paper is None:
            continue
        perr, nfe = r.paper
        total = sum(nfe)
        better_error = r.error2 < perr
        better_depth = r.depth < total
        out.append({"row": r, "paper_error": perr, "paper_nfe": total,
                    "better_error": better_error, "better_depth": better_depth,
                    "beats": better_error and better_depth})
    return out


def format_comparison(comparison):
    """Markdown table of :func:`compare_with_paper`'s result.

    Parameters
    ----------
    comparison : list of dict

    Returns
    -------
    str
    """
    lines = ["| paper row | paper: error | paper: NFE | chebpan row | chebpan: error "
             "(max / 2-norm) | chebpan: depth | smaller error and depth? |",
             "|---|---:|---:|---|---:|---:|---|"]
    for c in comparison:
        r = c["row"]
        verdict = "yes" if c["beats"] else (
            "**no**: " + ", ".join(k for k, ok in (("error", c["better_error"]),
                                                   ("depth", c["better_depth"]))
                                   if not ok) + " not smaller")
        lines.append(f"| PAN({r.config.n_coeffs}), {r.config.block:.0e} | "
                     f"{c['paper_error']:.2e} | {c['paper_nfe']} | {r.config.label()}, "
                     f"{r.config.tol_text()} | {r.error:.2e} / {r.error2:.2e} | "
                     f"{r.depth} | {verdict} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- sweeps


def sweep(problem, ref, method, tolerances, max_run, known=()):
    """Work-precision points of ``method`` over ``tolerances`` (loosest first).

    Parameters
    ----------
    problem : chebpan.testing.Problem
    ref : ndarray
        Reference ``y(t_end)``.
    method : str
        ``"chebpan"`` (default options) or a scipy method.
    tolerances : sequence of float
        ``rtol = atol`` values, loosest first.
    max_run : float
        Tighter tolerances are skipped once a run takes longer than this [s].
    known : mapping, optional
        ``(method, tol) -> Row`` already measured (by the tables): reused.

    Returns
    -------
    list of Row
        Successful runs only.
    """
    known = dict(known)
    points = []
    solve(problem, Config(method, tolerances[0], tolerances[0]))  # warm-up
    for tol in tolerances:
        config = Config(method, tol, tol)
        row = known.get((method, tol))
        if row is None:
            print(f"  {problem.name}: sweep {method} at {tol:.0e} ...", file=sys.stderr,
                  flush=True)
            # one timed run, best of two under 0.1 s (the sweep has had its warm-up)
            row = measure(problem, ref, config, repeats=2, budget_s=0.2, warm_up=False)
        if not row.message:
            points.append(row)
        if row.wall_s > max_run:
            break
    return points


def plot_work_precision(problem, sweeps, path):
    """Write the work-precision figure of ``problem`` to ``path`` (PNG).

    Left panel: error against depth (scipy: nfev), with chebpan's npoints dashed;
    right panel: error against wall time.

    Parameters
    ----------
    problem : chebpan.testing.Problem
    sweeps : dict
        Method -> list of Row (from :func:`sweep`).
    path : path-like
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_depth, ax_time) = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    for method, points in sweeps.items():
        if not points:
            continue
        err = [max(p.error, 1e-17) for p in points]
        style = {"marker": "o", "lw": 2.5, "color": "k"} if method == "chebpan" else \
            {"marker": ".", "lw": 1.2}
        label = "chebpan (depth)" if method == "chebpan" else method
        ax_depth.loglog([p.depth for p in points], err, label=label, **style)
        ax_time.loglog([1e3 * p.wall_s for p in points], err, label=method, **style)
        if method == "chebpan":
            ax_depth.loglog([p.npoints for p in points], err, ls="--", marker="x",
                            color="0.5", label="chebpan (npoints)")
    ax_depth.set_xlabel("depth (chebpan) / nfev (scipy): sequential rounds of fun")
    ax_time.set_xlabel("wall time [ms], one process")
    ax_depth.set_ylabel(r"error $\max_i |y_i(t_{end}) - y_{ref,i}|$")
    for ax in (ax_depth, ax_time):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    tols = [p.config.tol for pts in sweeps.values() for p in pts]
    fig.suptitle(f"{problem.name}: {problem.description}, t in [{problem.t_span[0]:g}, "
                 f"{problem.t_span[1]:g}]; rtol = atol from {max(tols):.0e} to "
                 f"{min(tols):.0e}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- report


def machine_info(with_matplotlib=False):
    """Platform, CPU, CPU count and the versions of Python and the libraries used.

    Parameters
    ----------
    with_matplotlib : bool, optional
        Include matplotlib's version.

    Returns
    -------
    str
    """
    import numba

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            names = [ln.split(":", 1)[1] for ln in fh if ln.startswith("model name")]
        cpu = names[0].strip() if names else cpu
    except OSError:
        pass
    versions = (f"Python {platform.python_version()}; chebpan {chebpan.__version__}; "
                f"numpy {np.__version__}; scipy {scipy.__version__}; "
                f"numba {numba.__version__}")
    if with_matplotlib:
        import matplotlib
        versions += f"; matplotlib {matplotlib.__version__}"
    return f"{platform.platform()}; {cpu}; {os.cpu_count()} CPUs; {versions}"


def reference_line(problem):
    """One sentence on the problem's mpmath reference.

    Parameters
    ----------
    problem : chebpan.testing.Problem

    Returns
    -------
    str
    """
    info = problem.reference_info()
    return (f"Reference y({problem.t_span[1]:g}): mpmath Taylor-series integrator "
            f"(chebpan.testing), {info['key']['dps']} significant digits, verified to "
            f"{info['verified_digits']:.0f}.")


def problem_section(title, problem, rows):
    """Markdown section of one of the paper's tables: heading, table, comparison.

    Parameters
    ----------
    title : str
        E.g. ``"Table 1: spiral"``.
    problem : chebpan.testing.Problem
    rows : sequence of Row

    Returns
    -------
    str
    """
    params = ", ".join(f"{k} = {v}" for k, v in problem.params.items())
    jac = ("analytic Jacobian (vectorized_jac=True)" if CHEBPAN_JAC[problem.name]
           else "forward-difference Jacobian")
    parts = [f"#### {title}: {problem.name} ({params}), t in [{problem.t_span[0]:g}, "
             f"{problem.t_span[1]:g}], y0 = {problem.y0}",
             format_table(rows),
             f"{reference_line(problem)} chebpan: vectorized=True, {jac}."
             + _segment_note(rows),
             "The paper's PAN rows against chebpan's (error judged on the 2-norm, the "
             "larger of chebpan's two norms):",
             format_comparison(compare_with_paper(rows))]
    return "\n\n".join(parts)


def _segment_note(rows):
    """Note on the rows with the paper's fixed segment length, if any."""
    fixed = [r for r in rows if r.config.segment is not None]
    if not fixed:
        return ""
    seg = fixed[0].config.segment
    return (f" Rows 'segments {seg:g}': first_step = max_step = {seg:g}, the paper's "
            "subintervals; chebpan's error control may still shorten a segment (the "
            "segments column counts the accepted ones and, in parentheses, the rejected "
            "attempts). Other chebpan rows: chebpan's own adaptive segments.")


def header(args, with_matplotlib):
    """Heading, date, machine and conventions of the report (markdown).

    Parameters
    ----------
    args : argparse.Namespace
    with_matplotlib : bool

    Returns
    -------
    str
    """
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    blocks = "; ".join(f"block {b:.0e}: rtol = atol = {o['rtol']:.0e}, tol_ls = "
                       f"tol_newton = {o['tol_ls']:.0e}" for b, o in CHEBPAN_BLOCKS.items())
    return "\n\n".join([
        "### The PAN paper's Tables 1 and 2, reproduced",
        f"Date: {now}  \nMachine: {machine_info(with_matplotlib)}  \n"
        f"Command: `python bench/paper_tables.py{' ' if args.argv else ''}"
        f"{' '.join(args.argv)}`",
        "error = max_i |y_i(t_end) - y_ref,i| against the mpmath reference; depth = "
        "rounds of `fun` evaluations that run one after another (the paper's NFE for "
        "PAN; scipy: nfev, its Jacobian calls not counted); npoints = points at which "
        f"`fun` was evaluated (scipy: nfev); wall time = {_timing_text(args.repeats)}, "
        "one process. scipy: rtol = atol = "
        "the block's tolerance; Radau, BDF, LSODA get the analytic Jacobian. chebpan "
        f"({blocks}): rtol/atol drive chebpan's segment error control, which the paper's "
        "PAN does not have; tol_ls/tol_newton are the paper's stopping rules (its "
        "'tolerance' column for PAN, there 1e-6 and 1e-9), chosen tighter here. "
        "Paper columns: the paper's numbers for the same row (PAN's NFE = zero-order + "
        "Newton). The paper's errors are against an RK45 reference with a fine step, "
        "ours against a 32-digit mpmath one. On the spiral (|y| about 2.5, one unit in "
        "the last place 4.4e-16) errors of a few 1e-15 are rounding: differences "
        "between them are not significant.",
    ])


def _timing_text(repeats):
    if repeats == 1:
        return "one run after a warm-up run"
    return f"best of up to {repeats} runs (fewer for slow runs) after a warm-up run"


def write_figures(problems, args, known):
    """Run the sweeps and write one PNG per problem; returns the paths.

    Parameters
    ----------
    problems : sequence of chebpan.testing.Problem
    args : argparse.Namespace
    known : dict
        Problem name -> {(method, tol): Row} measured by the tables.

    Returns
    -------
    list of Path
    """
    tolerances = QUICK_TOLERANCES if args.quick else SWEEP_TOLERANCES
    paths = []
    for problem in problems:
        ref = problem.reference_array()
        sweeps = {m: sweep(problem, ref, m, tolerances, args.max_run,
                           known.get(problem.name, {}))
                  for m in ("chebpan",) + SWEEP_METHODS}
        path = Path(args.output) / f"{problem.name}_work_precision.png"
        plot_work_precision(problem, sweeps, path)
        paths.append(path)
    return paths


def _known_rows(rows):
    """Rows a sweep can reuse: scipy's, keyed by (method, tol)."""
    return {(r.config.method, r.config.tol): r for r in rows
            if r.config.method != "chebpan" and not r.message}


def _check_imports(plots):
    """A message naming what is missing (mpmath; matplotlib if ``plots``), or None."""
    missing = []
    for name, needed in (("mpmath", True), ("matplotlib", plots)):
        if not needed:
            continue
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if not missing:
        return None
    hint = " (or run with --no-plots)" if missing == ["matplotlib"] else ""
    return (f"bench/paper_tables.py needs {' and '.join(missing)}: "
            f'python -m pip install ".[bench]"{hint}.')


def parse_args(argv=None):
    """Command-line options.

    Parameters
    ----------
    argv : list of str, optional

    Returns
    -------
    argparse.Namespace
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-plots", action="store_true",
                        help="tables only: no sweeps, no figures (no matplotlib needed)")
    parser.add_argument("--quick", action="store_true",
                        help="one timed run per row and a coarser tolerance sweep")
    parser.add_argument("--output", default=str(Path(__file__).resolve().parent.parent
                                                / "docs" / "benchmarks"),
                        help="directory for paper_tables.md and the PNGs "
                             "(default: docs/benchmarks)")
    parser.add_argument("--max-run", type=float, default=None,
                        help="sweeps skip tighter tolerances after a run slower than "
                             "this [s] (default 2; 0.5 with --quick)")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.repeats = 1 if args.quick else 3
    if args.max_run is None:
        args.max_run = 0.5 if args.quick else 2.0
    return args


def main(argv=None):
    """Entry point: print the tables, write ``paper_tables.md`` and the figures.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    args = parse_args(argv)
    missing = _check_imports(not args.no_plots)
    if missing:
        print(missing, file=sys.stderr)
        return 2
    start = time.perf_counter()
    Path(args.output).mkdir(parents=True, exist_ok=True)
    problems = [spiral(), lorenz()]
    sections, known = [header(args, not args.no_plots)], {}
    for title, problem in zip(("Table 1", "Table 2"), problems):
        print(f"  {problem.name}: reference ...", file=sys.stderr, flush=True)
        problem.reference_array()  # mpmath on the first run, then the disk cache
        rows = run_table(problem, table_configs(problem.name), args.repeats)
        known[problem.name] = _known_rows(rows)
        sections.append(problem_section(title, problem, rows))
    paths = [] if args.no_plots else write_figures(problems, args, known)
    sections.append(f"Total run time: {time.perf_counter() - start:.0f} s.")
    report = "\n\n".join(sections) + "\n"
    print(report)
    (Path(args.output) / "paper_tables.md").write_text(report, encoding="utf-8")
    for path in [Path(args.output) / "paper_tables.md"] + paths:
        print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

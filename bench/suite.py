"""The benchmark suite: chebpan against scipy (and CVODE) on public standard problems.

For each problem of ``chebpan.testing.SUITE`` (DETEST A-E, the stiff test-set problems,
the paper's spiral and Lorenz), each solver sweeps ``rtol`` from 1e-2 down to 1e-13
(``atol = rtol * floor``) and, for each target error (1e-3, 1e-6, 1e-10 in the scaled
norm ``sqrt(mean_i (|y_i - ref_i| / (floor + |ref_i|))^2)`` at ``t_end``), the cheapest
run reaching it is re-timed (best of ``--repeats``). Prints, and writes to
``docs/benchmarks/suite.md``: chebpan's time / the best other solver's time per problem
and target, the summary, and chebpan's cost at rtol = atol = 1e-10 against 1e-3.

    python bench/suite.py                      # full run (about 30 min on 2 cores)
    python bench/suite.py --quick              # CI: a few cheap problems, < 30 s
    python bench/suite.py --problems A1,HIRES --solvers chebpan,DOP853 --targets 1e-6
    python bench/suite.py --profile VDPOL --targets 1e-10   # cProfile of chebpan

Threads: OMP/OPENBLAS/MKL_NUM_THREADS are set to 1 before numpy is imported (one
process compares methods, not thread pools); ``--threads default`` leaves them alone.
"""

from __future__ import annotations

import os
import sys

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
if not any(a == "--threads=default" or a == "default" and sys.argv[i - 1] == "--threads"
           for i, a in enumerate(sys.argv)):
    for _var in _THREAD_VARS:
        os.environ[_var] = "1"

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import cProfile  # noqa: E402
import pstats  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _suite_report as report  # noqa: E402
from _suite_solvers import available_solvers, run  # noqa: E402

from chebpan.testing import SUITE, TARGETS  # noqa: E402

QUICK_PROBLEMS = ("A3", "B5", "D2", "E2", "HIRES")
QUICK_SOLVERS = ("chebpan", "DOP853", "Radau", "LSODA")
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"


def _rtols(quick: bool) -> list[float]:
    exps = np.arange(2, 9) if quick else np.arange(4, 27) / 2  # 1e-2 ... 1e-13
    return [float(f"{10.0 ** -e:.0e}") if e == int(e) else float(f"{10.0 ** -e:.1e}")
            for e in exps]


def sweep(solver, problem, rtols, targets, *, budget, extra=1, log=None):
    """Runs of ``solver`` on ``problem`` from loose to tight ``rtols``.

    Stops after a run over ``budget`` seconds, after two failures in a row, or ``extra``
    tolerances after every target has been reached.
    """
    runs, fails, left = [], 0, None
    for rtol in rtols:
        r = run(solver, problem, rtol, budget=budget)
        runs.append(r)
        if log:
            log(f"  {problem.name:9s} {solver:8s} rtol {rtol:7.1e}  err {r.error:8.1e}  "
                f"{r.seconds * 1e3:9.1f} ms  {r.message}")
        if r.status == -2 or r.seconds > budget:
            break
        fails = fails + 1 if r.status != 0 else 0
        if fails >= 2:
            break
        if left is None and all(any(x.error <= t for x in runs) for t in targets):
            left = extra
        elif left is not None:
            left -= 1
        if left is not None and left <= 0:
            break
    return runs


def best_runs(runs, targets, problem, repeats):
    """For each target the cheapest run reaching it, re-timed (best of ``repeats``)."""
    out = {}
    for target in targets:
        ok = [r for r in runs if r.error <= target]
        if not ok:
            out[target] = None
            continue
        r = min(ok, key=lambda x: x.seconds)
        times = [r.seconds] + [run(r.solver, problem, r.rtol, counted=False).seconds
                               for _ in range(_extra_repeats(r.seconds, repeats))]
        out[target] = (r, min(times))
    return out


def _extra_repeats(seconds, repeats):
    """Re-timings after a first run: all for short runs, fewer for long ones."""
    return max(repeats - 1, 0) if seconds < 1 else min(repeats - 1, 1 if seconds < 5 else 0)


def cost_ratio(problem, repeats):
    """chebpan at rtol = atol = 1e-3 and 1e-10: (run, best time) for each."""
    out = {}
    for tol in (1e-3, 1e-10):
        p = dataclasses.replace(problem, floor=1.0)  # atol = rtol
        r = run("chebpan", p, tol, budget=60.0)
        times = [r.seconds] + [run("chebpan", p, tol, counted=False).seconds
                               for _ in range(_extra_repeats(r.seconds, repeats))]
        if r.status == 0:
            r.error = problem.scaled_error(r.y)  # in the problem's own norm
        out[tol] = (r, min(times))
    return out


def _warm_up(solvers):
    """Compile chebpan's numba kernels (and import everything) before timing."""
    p = SUITE["A3"]()
    for s in solvers:
        run(s, p, 1e-6)
    run("chebpan", SUITE["ROBER"](), 1e-4)


def profile(name, targets, rtols, budget, top=25):
    """cProfile chebpan on problem ``name`` at the cheapest rtol reaching each target."""
    problem = SUITE[name]()
    _warm_up(["chebpan"])
    runs = sweep("chebpan", problem, rtols, targets, budget=budget, log=_log)
    for target, best in best_runs(runs, targets, problem, 1).items():
        if best is None:
            print(f"{name}: chebpan never reached {target:g}")
            continue
        r = best[0]
        print(f"\n### cProfile: chebpan on {name}, target {target:g}: rtol {r.rtol:g}, "
              f"error {r.error:.2e}, depth {r.depth}, npoints {r.npoints}, nfev {r.nfev}")
        prof = cProfile.Profile()
        prof.enable()
        run("chebpan", problem, r.rtol, counted=False)
        prof.disable()
        for key in ("tottime", "cumulative"):
            print(f"\n-- top {top} by {key}")
            pstats.Stats(prof, stream=sys.stdout).sort_stats(key).print_stats(top)


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"CI mode: problems {','.join(QUICK_PROBLEMS)}, solvers "
                         f"{','.join(QUICK_SOLVERS)}, target 1e-6, one repeat, no files "
                         "unless --output")
    ap.add_argument("--problems", help="comma-separated names (default: all)")
    ap.add_argument("--solvers", help="comma-separated (default: chebpan, scipy's six, "
                                      "CVODE if scikit-sundae imports)")
    ap.add_argument("--targets", help="comma-separated target errors (default 1e-3,1e-6,1e-10)")
    ap.add_argument("--repeats", type=int, default=None, help="timings per selected run "
                    "(best of; default 3, quick 1)")
    ap.add_argument("--max-run", type=float, default=None,
                    help="seconds per run before a solver stops tightening (default 8, quick 2)")
    ap.add_argument("--profile", metavar="NAME", help="cProfile chebpan on one problem")
    ap.add_argument("--output", type=Path, default=None,
                    help="where suite.md and the plots go (default docs/benchmarks; "
                         "quick mode writes nothing without it)")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--replot", action="store_true",
                    help="redraw the plots from suite_runs.json in --output (or "
                         "docs/benchmarks), run nothing")
    ap.add_argument("--references", action="store_true",
                    help="print the problems' reference table (and write "
                         "suite_references.md to --output or docs/benchmarks), run nothing")
    ap.add_argument("--threads", choices=("1", "default"), default="1",
                    help="1 (default): OMP/OPENBLAS/MKL_NUM_THREADS=1; default: leave them")
    args = ap.parse_args(argv)

    repeats = args.repeats or (1 if args.quick else 3)
    budget = args.max_run or (2.0 if args.quick else 8.0)
    targets = (tuple(float(t) for t in args.targets.split(",")) if args.targets
               else (1e-6,) if args.quick else TARGETS)
    rtols = _rtols(args.quick)
    threads = {v: os.environ.get(v, "(unset)") for v in _THREAD_VARS}
    print("threads: " + ", ".join(f"{k}={v}" for k, v in threads.items()), flush=True)
    if args.profile:
        profile(args.profile, targets, rtols, budget)
        return 0
    if args.replot:
        out = args.output or DEFAULT_OUTPUT
        runs = report.load_runs(out / "suite_runs.json")
        results = {name: {"solvers": {s: {"runs": r} for s, r in per.items()}}
                   for name, per in runs.items()}
        report.plots(results, list(next(iter(runs.values()))), out)
        return 0
    if args.references:
        text = report.references_table(SUITE)
        print(text)
        out = args.output or DEFAULT_OUTPUT
        out.mkdir(parents=True, exist_ok=True)
        (out / "suite_references.md").write_text(text, encoding="utf-8")
        return 0

    names = (args.problems.split(",") if args.problems
             else QUICK_PROBLEMS if args.quick else list(SUITE))
    unknown = [n for n in names if n not in SUITE]
    if unknown:
        ap.error(f"unknown problems {unknown}; known: {', '.join(SUITE)}")
    solvers = (args.solvers.split(",") if args.solvers
               else list(QUICK_SOLVERS) if args.quick else available_solvers())
    if "chebpan" not in solvers:
        solvers.insert(0, "chebpan")

    start = time.perf_counter()
    _warm_up(solvers)
    results, skipped = {}, {}
    for name in names:
        problem = SUITE[name]()
        tgts = [t for t in targets if problem.resolvable(t)]
        if not tgts:
            skipped[name] = "no target resolvable by its reference"
            continue
        _log(f"{name}: targets {tgts}")
        per_solver = {}
        # a large system gets a larger per-run budget (MEDAKZO, n = 400; twice, not five
        # times: explicit methods take 20-30 s a run on the stiff systems of n >= 400 and
        # never come close to the best time)
        budget_p = budget * (2 if problem.n >= 100 else 1)
        for s in solvers:
            runs = sweep(s, problem, rtols, tgts, budget=budget_p, log=_log)
            per_solver[s] = {"runs": runs, "best": best_runs(runs, tgts, problem, repeats)}
        results[name] = {"problem": problem, "targets": tgts, "solvers": per_solver,
                         "unresolved": [t for t in targets if t not in tgts],
                         "cost": None if args.quick else cost_ratio(problem, repeats)}
    meta = report.metadata(threads, time.perf_counter() - start, repeats, budget, solvers,
                           args.quick)
    text = report.markdown(results, skipped, solvers, targets, meta)
    print(text)
    out = args.output if args.output is not None else (None if args.quick else DEFAULT_OUTPUT)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "suite.md").write_text(text, encoding="utf-8")
        report.write_json(results, out / "suite_runs.json")
        if not args.no_plots:
            report.plots(results, solvers, out)
        _log(f"wrote {out / 'suite.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""chebpan on a shared machine: wall time with one core kept busy by another process.

Run from the repository root (after ``pip install ".[bench]"``)::

    python bench/busy_core.py [--problems lorenz,spiral] [--repeats 5]

Users run solvers beside other work (notebooks, Dask workers, MPI ranks). A threaded
BLAS whose threads wait for a core that another process holds can make small linear
algebra many times slower, so chebpan runs its own linear algebra on one BLAS thread
(docs/algorithm.md, "BLAS threads"). This script checks that: for each problem it
measures chebpan's wall time (best of ``--repeats``) on the quiet machine and with a
spinning process (``python -c "while True: pass"``, started and ended by the script)
occupying a core, in two settings, each in a fresh child process:

* ``default``: the thread settings a user gets without doing anything;
* ``single``: ``OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = MKL_NUM_THREADS = 1``.

It prints the times and the ratio busy / quiet (the target: at most 1.5 with default
settings), and scipy's best method time on the same runs for scale. The problems are
those of :mod:`chebpan.testing` (``chebpan.testing.PROBLEMS``, and the benchmark suite's
when present), solved at ``rtol = atol = --tol`` with the problem's ``jac``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                     "MKL_NUM_THREADS": "1"}
TARGET = 1.5


def _problems():
    import chebpan.testing as testing

    registry = dict(testing.PROBLEMS)
    registry.update(getattr(testing, "SUITE", {}))
    return registry


def best_time(solve, repeats):
    """Best wall time of ``repeats`` calls after a warm-up, and the last result."""
    solve()  # warm-up: numba compilation, caches
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        res = solve()
        best = min(best, time.perf_counter() - start)
    return best, res


def _measure(names, tol, repeats):
    """In this process: {problem: {quiet, busy}} for chebpan, and scipy's LSODA."""
    import numpy as np
    import scipy.integrate

    import chebpan

    registry = _problems()
    out = {}
    for name in names:
        problem = registry[name]()
        y0 = np.asarray(problem.y0, dtype=float)

        def pan():
            return chebpan.solve_ivp(problem.fun, problem.t_span, y0, vectorized=True,
                                     jac=problem.jac, vectorized_jac=True, rtol=tol,
                                     atol=tol)

        def lsoda():
            return scipy.integrate.solve_ivp(problem.fun, problem.t_span, y0,
                                             method="LSODA", jac=problem.jac,
                                             rtol=tol, atol=tol)

        row = {}
        for load in ("quiet", "busy"):
            spinner = None
            if load == "busy":
                spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                time.sleep(0.3)
            try:
                row[f"chebpan_{load}"], res = best_time(pan, repeats)
                row[f"lsoda_{load}"], _ = best_time(lsoda, repeats)
            finally:
                if spinner is not None:
                    spinner.kill()
                    spinner.wait()
            row["status"] = int(res.status)
        out[name] = row
    return out


def _child(setting, names, tol, repeats):
    env = dict(os.environ)
    for key in SINGLE_THREAD_ENV:
        env.pop(key, None)
    if setting == "single":
        env.update(SINGLE_THREAD_ENV)
    command = [sys.executable, __file__, "--child", "--problems", ",".join(names),
               "--tol", repr(tol), "--repeats", str(repeats)]
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", default="lorenz,spiral")
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = [name for name in args.problems.split(",") if name]
    if args.child:
        print(json.dumps(_measure(names, args.tol, args.repeats)))
        return 0

    print(f"# chebpan on a shared machine ({platform.node()}, {os.cpu_count()} CPUs, "
          f"{time.strftime('%Y-%m-%d %H:%M')})")
    print(f"rtol = atol = {args.tol:g}; best of {args.repeats}; busy: one spinning "
          "process; times in ms")
    results = {setting: _child(setting, names, args.tol, args.repeats)
               for setting in ("default", "single")}
    header = ("| problem | threads | chebpan quiet | chebpan busy | busy/quiet "
              "| LSODA quiet | LSODA busy |")
    print(header)
    print("|---|---|---:|---:|---:|---:|---:|")
    worst = 0.0
    for name in names:
        for setting in ("default", "single"):
            row = results[setting][name]
            ratio = row["chebpan_busy"] / row["chebpan_quiet"]
            if setting == "default":
                worst = max(worst, ratio)
            print(f"| {name} | {setting} | {1e3 * row['chebpan_quiet']:.1f} "
                  f"| {1e3 * row['chebpan_busy']:.1f} | {ratio:.2f} "
                  f"| {1e3 * row['lsoda_quiet']:.1f} | {1e3 * row['lsoda_busy']:.1f} |")
    verdict = "met" if worst <= TARGET else "NOT met"
    print(f"\nWorst busy/quiet ratio with default threads: {worst:.2f} "
          f"(target ≤ {TARGET}: {verdict})")
    return 0 if worst <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())

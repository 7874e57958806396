"""Batches at a loose and a tight tolerance: does a batch's cost fall as ``rtol`` loosens?

Run from the repository root (after ``pip install ".[bench]"``, or with
``PYTHONPATH=.``)::

    python bench/batch_tolerances.py              # K = 2000, one core, ~40 s
    python bench/batch_tolerances.py --k 500 --repeat 2

Four batches of K instances, each at a loose and a tight ``rtol = atol``:

* Lorenz (σ, ρ, β) = (10, 28, 8/3) on [0, 2] from points of the attractor;
* Kepler's problem, eccentricities uniform in [0.1, 0.6], on [0, 10];
* Van der Pol, μ = 2, on [0, 10] from initial values uniform in [−2, 2]²;
* Van der Pol, μ = 20 (stiff on its slow branches), the same, K / 2 instances.

Each is solved with the batch's defaults and with the zero-order iteration alone
(``max_newton_size=0``), the two in turn in one process (best of ``--repeat``).
Printed: the time of each, the defaults' depth and Newton iterations, and the error at
the end over the first ``--sample`` instances against scipy's DOP853 at ``rtol = atol
= 1e-13``.  The process runs on one core with every library on one thread
(``--all-cores`` leaves that alone).  docs/benchmarks.md, "Batches", says what the
numbers showed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

#: Set before NumPy starts its thread pools (as ``bench/batch.py --one-core`` does).
ONE_CORE_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "NUMBA_NUM_THREADS": "1"}


def batches(k, rng):
    """(name, fun, args, t_span, y0 (K, n), (loose, tight) rtol) of each batch: the
    right-hand sides of ``chebpan.testing`` (Lorenz; DETEST D's Kepler equations) and
    of ``bench/vdp_sweep.py``."""
    import numpy as np
    from scipy.integrate import solve_ivp
    from vdp_sweep import vdp

    from chebpan.testing import SUITE, lorenz

    lorenz_fun, kepler_fun = lorenz().fun, SUITE["D1"]().fun
    start = solve_ivp(lorenz_fun, (0, 120), [1.0, 1.0, 1.0], dense_output=True,
                      rtol=1e-10, atol=1e-10)
    lorenz_y0 = start.sol(rng.uniform(20, 120, k)).T.copy()
    e = rng.uniform(0.1, 0.6, k)
    kepler_y0 = np.stack([1 - e, 0 * e, 0 * e, np.sqrt((1 + e) / (1 - e))], axis=1)
    vdp_y0 = rng.uniform(-2, 2, (k, 2))
    return [
        ("Lorenz, [0, 2]", lorenz_fun, (), (0.0, 2.0), lorenz_y0, (1e-5, 3e-9)),
        ("Kepler, [0, 10]", kepler_fun, (), (0.0, 10.0), kepler_y0, (1e-5, 1e-8)),
        ("Van der Pol μ = 2, [0, 10]", vdp, (2.0,), (0.0, 10.0), vdp_y0, (1e-4, 1e-9)),
        ("Van der Pol μ = 20, [0, 10]", vdp, (20.0,), (0.0, 10.0), vdp_y0[:k // 2],
         (1e-4, 1e-8)),
    ]


def reference(fun, args, t_span, y0):
    """DOP853 at rtol = atol = 1e-13: the end value of each row of ``y0``."""
    import numpy as np
    from scipy.integrate import solve_ivp

    return np.array([solve_ivp(fun, t_span, row, args=args, method="DOP853", rtol=1e-13,
                               atol=1e-13).y[:, -1] for row in y0])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=2000, help="instances per batch (2000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each (3)")
    parser.add_argument("--sample", type=int, default=10, help="instances checked (10)")
    parser.add_argument("--all-cores", action="store_true",
                        help="leave the cores and BLAS threads as they are")
    args = parser.parse_args(argv)
    if not args.all_cores:
        os.environ.update(ONE_CORE_ENV)
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    import numpy as np

    import chebpan

    rng = np.random.default_rng(0)
    threads = ("one core, one thread per library" if not args.all_cores
               else "all cores, the libraries' default threads")
    print(f"# Batches at a loose and a tight tolerance (K = {args.k}; {threads}; "
          f"best of {args.repeat})\n")
    print("| batch | rtol = atol | defaults | zero-order | defaults: depth, Newton "
          "iterations | error (defaults, zero-order) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, fun, fun_args, t_span, y0, tolerances in batches(args.k, rng):
        print(f"  {name} ...", file=sys.stderr, flush=True)
        expected = reference(fun, fun_args, t_span, y0[:args.sample])
        for rtol in tolerances:
            settings = {"defaults": {}, "zero-order": {"max_newton_size": 0}}
            best, runs = {}, {}
            for key, extra in settings.items():  # (untimed: numba's compilation)
                chebpan.solve_ivp_batch(fun, t_span, y0[:4], rtol=rtol, atol=rtol,
                                        vectorized=True, args=fun_args, **extra)
            for _ in range(args.repeat):
                for key, extra in settings.items():
                    start = time.perf_counter()
                    result = chebpan.solve_ivp_batch(fun, t_span, y0, rtol=rtol, atol=rtol,
                                                     vectorized=True, args=fun_args,
                                                     dense_output=True, **extra)
                    elapsed = time.perf_counter() - start
                    if elapsed < best.get(key, np.inf):
                        best[key], runs[key] = elapsed, result
            errors = [np.max(np.abs(runs[key].sol(t_span[1])[:args.sample] - expected))
                      for key in settings]
            defaults = runs["defaults"]
            print(f"| {name} | {rtol:.0e} | {best['defaults']:.3f} s | "
                  f"{best['zero-order']:.3f} s | {defaults.depth}, {defaults.niter_newton} | "
                  f"{errors[0]:.1e}, {errors[1]:.1e} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

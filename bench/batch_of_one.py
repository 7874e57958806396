"""A single solve against the same IVP as a batch of one, on the benchmark suite.

Run from the repository root::

    python bench/batch_of_one.py                       # every suite problem, rtol 1e-6
    python bench/batch_of_one.py --problems ROBER,VDPOL --rtol 1e-4,1e-10

For each problem and ``rtol`` (``atol = rtol`` times the problem's floor; its sparsity
pattern as ``jac_sparsity`` where it has one, as the suite gives it, else its ``jac``
where it has one): ``chebpan.solve_ivp`` and ``solve_ivp_batch`` on ``y0[None, :]``.
Printed: each one's wall time (best of ``--repeats``, the two in turn so that a slow
phase of a shared machine slows them alike; one BLAS thread), depth and accepted
segments, the batch's time over the single solve's, whether all their counters (calls,
rounds, points, segments, rejections, iterations, factorisations) are the same, and the
scaled error of each against the problem's reference.  This is the measure of "a batch
of one makes the decisions of a single solve" (the same counts) and "Robertson to 1e11
as a batch of one as fast as alone".  A run over ``--budget`` seconds stops that
problem's repeats.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import chebpan  # noqa: E402
from chebpan.testing import SUITE  # noqa: E402

COUNTS = ("nfev", "njev", "nlu", "depth", "npoints", "nsegments", "nrejected",
          "niter_picard", "niter_newton")


def runs(problem, rtol):
    """The two solves of a problem at ``rtol``: name → callable returning
    ``(status, y(t_end), depth, segments, counters)``."""
    kw = dict(rtol=rtol, atol=rtol * problem.floor, vectorized=True)
    if problem.sparsity is not None:
        kw["jac_sparsity"] = problem.sparsity()
    elif problem.jac is not None:
        kw.update(jac=problem.jac, vectorized_jac=True)
    y0 = np.array(problem.y0)

    def single():
        res = chebpan.solve_ivp(problem.fun, problem.t_span, y0, **kw)
        return (res.status, res.y[:, -1], res.depth, res.nsegments,
                [int(getattr(res, name)) for name in COUNTS])

    def batch():
        res = chebpan.solve_ivp_batch(problem.fun, problem.t_span, y0[None, :], **kw)
        return (int(res.status[0]), res.y[0, :, -1], res.depth, res.nsegments,
                [int(np.sum(getattr(res, name))) for name in COUNTS])

    return {"single": single, "batch of one": batch}


def measure(problem, rtol, repeats, budget):
    """Best time (the first run, numba's compilation and caches, left out unless it is
    the only one), depth, segments and scaled error of each run."""
    solves = runs(problem, rtol)
    seconds = {name: [] for name in solves}
    last = {}
    for _ in range(repeats + 1):
        for name, solve in solves.items():
            start = time.perf_counter()
            last[name] = solve()
            seconds[name].append(time.perf_counter() - start)
        if max(times[-1] for times in seconds.values()) > budget:
            break
    return {name: (min(times[1:] or times), *last[name]) for name, times in seconds.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", default=",".join(SUITE))
    parser.add_argument("--rtol", default="1e-6")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=20.0,
                        help="seconds of one run after which a problem is not repeated")
    args = parser.parse_args(argv)
    print(f"# single solve vs batch of one; {platform.node()}, {os.cpu_count()} CPUs, "
          f"chebpan {chebpan.__version__}, numpy {np.__version__}; "
          f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}; best of "
          f"{args.repeats}, the two in turn")
    print("| problem | rtol | single [ms] | depth | segments | batch of one [ms] | depth | "
          "segments | batch / single | same counts | errors (single, batch) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    ratios, same = [], 0
    for name in args.problems.split(","):
        problem = SUITE[name]()
        for rtol in (float(value) for value in args.rtol.split(",")):
            result = measure(problem, rtol, args.repeats, args.budget)
            cells, errors = [], []
            for seconds, status, y, depth, segments, _ in result.values():
                cells += [f"{seconds * 1e3:.1f}", str(depth), str(segments)]
                errors.append(f"{problem.scaled_error(y):.1e}" if status == 0
                              else f"status {status}")
            ratio = result["batch of one"][0] / result["single"][0]
            ratios.append(ratio)
            counts = result["batch of one"][-1] == result["single"][-1]
            same += counts
            print(f"| {name} | {rtol:g} | " + " | ".join(cells)
                  + f" | {ratio:.2f} | {'yes' if counts else 'no'} | {', '.join(errors)} |",
                  flush=True)
    print(f"\nmedian batch of one / single solve: {float(np.median(ratios)):.2f} over "
          f"{len(ratios)} runs; the same counts in {same} of them")

if __name__ == "__main__":
    main()

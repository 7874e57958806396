"""scipy's Lotka–Volterra docstring example, unchanged, with chebpan and with scipy.

Run from the repository root::

    python bench/scipy_example.py            # about 10 s

The example of :func:`scipy.integrate.solve_ivp`'s docstring ("an example of a system
of ODEs"): Lotka–Volterra with a, b, c, d = 1.5, 1, 3, 1, ``y0 = [10, 5]``, ``t_span =
[0, 15]``, ``args=(1.5, 1, 3, 1)``, ``dense_output=True``, default tolerances, and no
``vectorized`` argument: a user who swaps the import.  ``fun`` returns a list, so it
also works on (n, P) input, which chebpan's probe finds.

Printed, best of ``--repeats`` (default 20) in one run, one BLAS thread: wall time of
``chebpan.solve_ivp`` and of scipy's RK45 (and of chebpan with ``vectorized=True``
given), the ratio chebpan / RK45, and each one's error at t = 15 against DOP853 at
rtol = atol = 1e-13, with chebpan's depth and scipy's nfev.  The three solves run in
turn, one call each per cycle, so that a slow phase of a shared machine slows them all
alike; the last column is the median over cycles of each one's time over RK45's in the
same cycle.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.integrate  # noqa: E402

import chebpan  # noqa: E402



def lotkavolterra(t, z, a, b, c, d):
    x, y = z
    return [a*x - b*x*y, -c*y + d*x*y]


ARGS = (1.5, 1, 3, 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    reference = scipy.integrate.solve_ivp(lotkavolterra, [0, 15], [10, 5], args=ARGS,
                                          method="DOP853", rtol=1e-13, atol=1e-13).y[:, -1]
    runs = {
        "chebpan (unchanged call)": lambda: chebpan.solve_ivp(
            lotkavolterra, [0, 15], [10, 5], args=ARGS, dense_output=True),
        "chebpan (vectorized=True)": lambda: chebpan.solve_ivp(
            lotkavolterra, [0, 15], [10, 5], args=ARGS, dense_output=True, vectorized=True),
        "scipy RK45": lambda: scipy.integrate.solve_ivp(
            lotkavolterra, [0, 15], [10, 5], args=ARGS, dense_output=True),
    }
    print(f"# scipy's Lotka-Volterra example, default tolerances; {platform.node()}, "
          f"{os.cpu_count()} CPUs, chebpan {chebpan.__version__}, scipy {scipy.__version__}, "
          f"numpy {np.__version__}; OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}; "
          f"best of {args.repeats}, the three in turn")
    for solve in runs.values():
        solve()  # warm-up: numba compilation, caches
    seconds = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, solve in runs.items():
            start = time.perf_counter()
            solve()
            seconds[name].append(time.perf_counter() - start)
    rk45 = seconds["scipy RK45"]
    print("| run | wall time (ms) | time / RK45 | median ratio of a cycle | "
          "relative error at t = 15 | depth or nfev |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, solve in runs.items():
        res = solve()
        error = np.max(np.abs(res.y[:, -1] - reference) / np.abs(reference))
        count = f"depth {res.depth}" if "depth" in res else f"nfev {res.nfev}"
        ratio = statistics.median(a / b for a, b in zip(seconds[name], rk45))
        print(f"| {name} | {min(seconds[name]) * 1e3:.2f} | "
              f"{min(seconds[name]) / min(rk45):.1f} | {ratio:.1f} | {error:.1e} | {count} |")


if __name__ == "__main__":
    main()

"""Sweep the number of Chebyshev coefficients N on the paper's problems.

Prints, for each N, the error at t_end against the mpmath reference, the depth
and the best-of-2 wall time, at rtol = atol = 1e-6 and 1e-10.  This is the
measurement behind the default ``n_coeffs = 32`` (docs/algorithm.md).

Run: ``python bench/n_coeffs_sweep.py``
"""

import time

import numpy as np

import chebpan
from chebpan.testing import lorenz, spiral


def main():
    lor, spi = lorenz(), spiral()
    for n in (16, 24, 32, 40, 48):
        row = []
        for problem, extra in ((spi, {}), (lor, {"jac": lor.jac, "vectorized_jac": True})):
            reference = problem.reference_array()
            for tol in (1e-6, 1e-10):
                best = np.inf
                for _ in range(2):
                    start = time.perf_counter()
                    res = chebpan.solve_ivp(problem.fun, problem.t_span, problem.y0,
                                            vectorized=True, rtol=tol, atol=tol,
                                            n_coeffs=n, **extra)
                    best = min(best, time.perf_counter() - start)
                err = np.abs(res.y[:, -1] - reference).max()
                row.append(f"{problem.name[:6]} {tol:.0e}: err={err:.1e} depth={res.depth} "
                           f"{best * 1e3:.0f} ms")
        print(f"N={n}: " + " | ".join(row), flush=True)


if __name__ == "__main__":
    main()

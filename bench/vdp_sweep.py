"""Van der Pol from 300 random starts per batch: spurious failures and errors per row.

Run from the repository root::

    python bench/vdp_sweep.py [--k 300] [--seed 0]

For μ = 1, 2, 5, 10 and rtol = 1e-3, 1e-6 (atol = 1e-6, scipy's default), one chebpan
batch of K instances ``y'' = μ (1 − y²) y' − y`` on [0, 20] from starts uniform in
[−3, 3]², with ``t_eval = [20]``. Reference: the K instances as one block system
solved by DOP853 at rtol = atol = 1e-12. For every row, the scaled error
``rms_i |y_i − ref_i| / (atol + rtol |ref_i|)`` of chebpan and of scipy's RK45 run on
that row alone at the same tolerances. Printed per (μ, rtol): failures (status ≠ 0),
the largest |y| (a diverged iterate would show), the worst chebpan error, the worst
ratio chebpan error / max(RK45 error, 1) (target: ≤ 10 on every row), and the time.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import scipy.integrate

import chebpan


def vdp(t, y, mu):
    return np.stack([y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]])


def block_reference(y0, mu, t_end):
    k, n = y0.shape

    def block(t, z):
        return vdp(t, z.reshape(k, n).T, mu).T.reshape(-1)

    res = scipy.integrate.solve_ivp(block, (0, t_end), y0.reshape(-1), method="DOP853",
                                    rtol=1e-12, atol=1e-12)
    return res.y[:, -1].reshape(k, n)


def scaled(y, ref, rtol, atol):
    return np.sqrt(np.mean(((y - ref) / (atol + rtol * np.abs(ref))) ** 2, axis=-1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    t_end, atol = 20.0, 1e-6
    print(f"# Van der Pol, K = {args.k} random starts in [-3, 3]^2, t in [0, {t_end}], "
          f"atol = {atol:g}, seed {args.seed}")
    print("| μ | rtol | failures | max abs y | worst error | worst error / max(RK45, 1) "
          "| time (s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    worst_ratio = 0.0
    failures = 0
    for rtol in (1e-3, 1e-6):
        for mu in (1.0, 2.0, 5.0, 10.0):
            y0 = rng.uniform(-3, 3, size=(args.k, 2))
            start = time.perf_counter()
            res = chebpan.solve_ivp_batch(vdp, (0, t_end), y0, vectorized=True, args=(mu,),
                                          rtol=rtol, atol=atol, t_eval=[t_end])
            seconds = time.perf_counter() - start
            ref = block_reference(y0, mu, t_end)
            errors = scaled(res.y[..., -1], ref, rtol, atol)
            rk45 = np.array([scaled(scipy.integrate.solve_ivp(
                vdp, (0, t_end), row, args=(mu,), rtol=rtol, atol=atol).y[:, -1],
                ref[i], rtol, atol) for i, row in enumerate(y0)])
            ratio = np.nanmax(errors / np.maximum(rk45, 1.0))
            n_fail = int(np.sum(res.status != 0))
            failures += n_fail
            worst_ratio = max(worst_ratio, ratio)
            print(f"| {mu:g} | {rtol:g} | {n_fail} | {np.nanmax(np.abs(res.y)):.3g} "
                  f"| {np.nanmax(errors):.3g} | {ratio:.3g} | {seconds:.2f} |", flush=True)
    print(f"\nfailures: {failures}; worst ratio to RK45: {worst_ratio:.3g} (target ≤ 10)")
    return 0 if failures == 0 and worst_ratio <= 10 else 1


if __name__ == "__main__":
    sys.exit(main())

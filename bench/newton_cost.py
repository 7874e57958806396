"""Cost of one Newton step of the stiff basis against n: dense LU against the structured solve.

Run from the repository root::

    python bench/newton_cost.py [--sizes 3,10,30,100,300,1000] [--n-coeffs 32]
                                [--dense-max 100] [--budget 0.3]
    python bench/newton_cost.py --band BRUSS,MEDAKZO,BRUSS-1000 --n-coeffs 16

On the stiff basis (docs/algorithm.md, "Stiff segments") the Newton step solves a
square system of n·(N−1) unknowns.  ``dense`` is what :class:`DenseLinearization`
does: build the weighted residual Jacobian A, then LU of its square part (one LAPACK
``getrf`` + ``getrs``; the "solve" column is ``getrs`` with the factors kept) and the
gradient ``2Aᵀ√W r̃``.  ``structured`` is :mod:`chebpan._core.structured`: the frozen-J
factorisation of about N/2 shifted n×n complex matrices, the Schur back substitution
(the "solve" column: in the real Schur form; "complex form" the complex Schur form's,
the reference), and the matrix-free gradient.  A Newton iteration of simplified
Newton that reuses its factors costs "solve + gradient"; one that refactorises costs
"iteration"; the default ``"structured"`` direction (GMRES on the nodes' own J,
preconditioned by the kept frozen-J factors) costs "Krylov direction + gradient", with
its GMRES iterations in brackets (J varies by 1 % over the nodes here).  Dense systems
above ``--dense-max`` components are not run (memory 8 (nN)² bytes, time ~ (nN)³); the
table gives them as ``—``.

Everything runs on one BLAS thread (threadpoolctl), as a solve does
(docs/algorithm.md, "BLAS threads").  Times are the best of as many repeats as fit in
``--budget`` seconds per entry (at least one).  Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from chebpan._core.basis import get_basis
from chebpan._core.newton import gradient, residual_jacobian
from chebpan._core.structured import (
    FrozenJacobianSolver,
    StructuredLinearization,
    structured_gradient,
)


def best_time(function, budget):
    """Best wall time of ``function()`` over the repeats that fit in ``budget`` s."""
    function()  # (warm-up: the first call may compile kernels)
    best, spent = np.inf, 0.0
    while spent < budget or best == np.inf:
        start = time.perf_counter()
        function()
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed), spent + elapsed
    return best


def problem(n, n_coeffs, seed=0):
    """A stiff-basis segment's data: J_m varying over the nodes, (h/2)‖J‖ ≈ 1e3."""
    rng = np.random.default_rng(seed)
    basis = get_basis(n_coeffs, n_coeffs, xp=np, dtype=np.float64, stiff=True)
    base = rng.normal(size=(n, n)) / np.sqrt(n) - 2 * np.eye(n)
    jac = base[None, None] * (1 + 0.01 * rng.normal(size=(1, n_coeffs, 1, 1)))
    half_h = np.array([[500.0]])
    r = rng.normal(size=(1, n, n_coeffs))
    return basis, jac, half_h, r


def dense_costs(basis, jac, half_h, r, budget):
    k, n, m = r.shape

    def build():
        a = residual_jacobian(basis, jac, half_h, xp=np)
        return np.ascontiguousarray(a.reshape(n, m, -1)[:, 1:, :].reshape(n * (m - 1), -1))

    square = build()
    rhs = (r * basis.sqrt_weights)[0, :, 1:].reshape(-1)
    factors = scipy.linalg.lu_factor(square)
    solve = best_time(lambda: scipy.linalg.lu_solve(factors, rhs), budget)

    def iteration():
        a = residual_jacobian(basis, jac, half_h, xp=np)
        gradient(basis, a, r, xp=np)
        sq = a.reshape(n, m, -1)[:, 1:, :].reshape(n * (m - 1), -1)
        scipy.linalg.lu_solve(scipy.linalg.lu_factor(sq), rhs)

    return solve, best_time(iteration, budget)


def structured_costs(basis, jac, half_h, r, budget):
    frozen = np.mean(jac[:, 1:], axis=1)
    solver = FrozenJacobianSolver(basis, frozen, half_h, xp=np)
    solve = best_time(lambda: solver.direction(r), budget)
    complex_form = FrozenJacobianSolver(basis, frozen, half_h, xp=np, real=False)
    complex_solve = best_time(lambda: complex_form.direction(r), budget)
    reuse = best_time(lambda: (solver.direction(r),
                               structured_gradient(basis, jac, half_h, r, xp=np)), budget)

    def iteration():
        FrozenJacobianSolver(basis, np.mean(jac[:, 1:], axis=1), half_h,
                             xp=np).direction(r)
        structured_gradient(basis, jac, half_h, r, xp=np)

    first = StructuredLinearization(basis, jac, half_h, xp=np)
    first.direction(r)

    def krylov():
        linear = StructuredLinearization(basis, jac, half_h, xp=np, previous=first)
        linear.direction(r)
        linear.gradient(r)
        return linear.inner

    inner = krylov()
    return (solve, complex_solve, reuse, best_time(iteration, budget),
            best_time(krylov, budget), inner)


def agreement(basis, jac, half_h, r):
    """Relative difference of the two directions with J frozen (the same at all nodes)."""
    k, n, m = r.shape
    frozen = np.broadcast_to(np.mean(jac[:, 1:], axis=1)[:, None], jac.shape)
    a = residual_jacobian(basis, frozen, half_h, xp=np)
    square = a.reshape(n, m, -1)[:, 1:, :].reshape(n * (m - 1), -1)
    dense = -np.linalg.solve(square, (r * basis.sqrt_weights)[0, :, 1:].reshape(-1))
    structured = FrozenJacobianSolver(basis, frozen[:, 0], half_h, xp=np).direction(r)
    return float(np.max(np.abs(structured.reshape(-1) - dense)) / np.max(np.abs(dense)))


def band_costs(names, n_coeffs, budget):
    """The back substitution with band LU factors (``jac_sparsity`` of a banded J), real
    against complex Schur form, on the suite's method-of-lines patterns: (name, n, real
    ms, complex ms, relative difference)."""
    from chebpan._rhs.sparse import SparsityPattern, sparse_frozen_solver
    from chebpan.testing import SUITE

    basis = get_basis(n_coeffs, n_coeffs, xp=np, dtype=np.float64, stiff=True)
    rows = []
    for name in names:
        problem_ = SUITE[name]()
        pattern = SparsityPattern.from_matrix(problem_.sparsity(), problem_.n)
        rng = np.random.default_rng(0)
        values = rng.normal(size=pattern.nnz) * 50
        r = rng.normal(size=(1, problem_.n, n_coeffs))
        real = sparse_frozen_solver(basis, pattern, values, 0.01)
        reference = sparse_frozen_solver(basis, pattern, values, 0.01, real=False)
        a, b = real.direction(r), reference.direction(r)
        rows.append((name, problem_.n, best_time(lambda: real.direction(r), budget),
                     best_time(lambda: reference.direction(r), budget),
                     float(np.max(np.abs(a - b)) / np.max(np.abs(b)))))
    return rows


def milliseconds(seconds):
    return "—" if seconds is None else f"{1e3 * seconds:.3g}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3,10,30,100,300,1000")
    parser.add_argument("--n-coeffs", type=int, default=32)
    parser.add_argument("--dense-max", type=int, default=100)
    parser.add_argument("--budget", type=float, default=0.3)
    parser.add_argument("--band", default="",
                        help="suite problems with a banded sparsity (e.g. "
                             "BRUSS,MEDAKZO,BRUSS-1000): the band solve, real against "
                             "complex Schur form, instead of the table")
    args = parser.parse_args(argv)
    if args.band:
        print(f"N = {args.n_coeffs}, band LU factors, one BLAS thread, direction in ms\n")
        print("| problem | n | real form | complex form | real / complex | rel. difference |")
        print("|---|---:|---:|---:|---:|---:|")
        with threadpool_limits(limits=1, user_api="blas"):
            for name, n, real, reference, diff in band_costs(args.band.split(","),
                                                             args.n_coeffs, args.budget):
                print(f"| {name} | {n} | {milliseconds(real)} | {milliseconds(reference)} "
                      f"| {real / reference:.2f} | {diff:.1e} |")
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    n_coeffs = args.n_coeffs
    print(f"N = {n_coeffs} (stiff basis: n·{n_coeffs - 1} unknowns), one BLAS thread, "
          "times in ms (best of repeats)\n")
    print("| n | unknowns | dense solve | dense iteration | structured solve "
          "| (complex form) | structured solve + gradient | structured iteration "
          "| Krylov direction + gradient (GMRES its.) | iteration dense/structured "
          "| rel. difference |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with threadpool_limits(limits=1, user_api="blas"):
        for n in sizes:
            data = problem(n, n_coeffs)
            dense_solve = dense_iteration = None
            if n <= args.dense_max:
                dense_solve, dense_iteration = dense_costs(*data, args.budget)
            s_solve, s_complex, s_reuse, s_iteration, s_krylov, inner = structured_costs(
                *data, args.budget)
            ratio = "—" if dense_iteration is None else f"{dense_iteration / s_iteration:.3g}"
            diff = f"{agreement(*data):.1e}" if n <= args.dense_max else "—"
            print(f"| {n} | {n * (n_coeffs - 1)} | {milliseconds(dense_solve)} "
                  f"| {milliseconds(dense_iteration)} | {milliseconds(s_solve)} "
                  f"| {milliseconds(s_complex)} | {milliseconds(s_reuse)} "
                  f"| {milliseconds(s_iteration)} "
                  f"| {milliseconds(s_krylov)} ({inner}) | {ratio} | {diff} |",
                  flush=True)


if __name__ == "__main__":
    main()

"""Batched IVPs: K Lorenz problems in one call, against a scipy loop and batched peers.

Run from the repository root (after ``pip install ".[bench]"``, or with
``PYTHONPATH=.``)::

    python bench/batch.py                 # K = 10 000
    python bench/batch.py --k 2000 --profile
    python bench/batch.py --memory        # peak memory for K = 1e4, 1e5, 1e6

The problem: Lorenz (σ, ρ, β) = (10, 28, 8/3) on t ∈ [0, 2] from K initial
conditions spread over the attractor (points of one long trajectory at random
times after its transient).  Error: ``max_i |y_i(2) − y_ref,i|`` over a sample
of ``--sample`` instances (the first ones of the batch), against the mpmath
references of :func:`chebpan.testing.lorenz` (verified Taylor series; cached
on disk after the first run).

Every solver is run at *matched error*: ``rtol = atol`` is lowered over a grid
(1e-5 … 1e-13) on the sample alone until the sample's error is at most
``--target`` (1e-8), and the full batch is then timed at that tolerance (best
of ``--repeat`` runs; its sample error is checked again and printed).

Solvers:

* chebpan: one ``solve_ivp`` call with ``y0`` of shape (K, 3), vectorised
  ``fun``, analytic vectorised ``jac`` (used by Newton steps), and the
  settings in ``CHEBPAN_SETTINGS`` (a batch's defaults, and the zero-order
  iteration alone);
* scipy: ``scipy.integrate.solve_ivp(method="DOP853")`` in a Python loop.
  Its time is linear in K: it is measured on ``--scipy-k`` instances (default
  1000) and scaled to K (``--scipy-k 0`` loops over all K);
* numbalsoda's ``dop853`` (Hairer's Fortran DOP853) in a numba ``@njit`` loop over
  the instances with a ``cfunc`` right-hand side, when it imports (its build needs
  ``apt-get install gfortran``);
* torchdiffeq (``odeint``, dopri5 and dopri8; CPU; one step size for the whole
  batch, as torchdiffeq does) and diffrax (``jax.vmap`` of ``diffeqsolve``
  with Dopri5 and Dopri8, ``PIDController``; JAX on the CPU, float64; jit
  compilation excluded from the time), when they can be imported.

Printed: machine, versions, thread settings, glibc's ``MALLOC_*`` settings, the
tolerance chosen per solver, its sample error, the wall time and the ratio ``solver
time / chebpan time`` (above 1: chebpan is faster); for chebpan also the system time
and page faults of its best run (freed memory that glibc gave back to the system and
the next round faults in again: docs/user-guide.md, "Batched IVPs").  ``--profile`` adds a cProfile breakdown of the
chebpan run.  Progress goes to stderr, the report to stdout.  ``--one-core`` pins the
process to one core with every library on one thread (``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``, ``NUMBA_NUM_THREADS`` = 1 and XLA's CPU
threads off): the per-core comparison.

``--memory [K ...]`` measures instead the peak resident memory of one chebpan batch
with ``t_eval=[t_end]`` (rtol = atol = ``--memory-tol``, default 1e-6), each K in a
fresh process: the process's peak RSS (``getrusage``) before and after the solve,
against the output's size (K·3 float64 values).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import os
import platform
import pstats
import resource
import subprocess
import sys
import time

#: ``--one-core``: every library on one thread, the process on one core (set before
#: NumPy, JAX or torch start their thread pools, hence here and by re-executing).
ONE_CORE_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "NUMBA_NUM_THREADS": "1",
                "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}
if "--one-core" in sys.argv and os.environ.get("CHEBPAN_BENCH_ONE_CORE") != "1":
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    os.execve(sys.executable, [sys.executable, *sys.argv],
              {**os.environ, **ONE_CORE_ENV, "CHEBPAN_BENCH_ONE_CORE": "1"})

import numpy as np
import scipy
import scipy.integrate

import chebpan
from chebpan.testing import lorenz

SIGMA, RHO, BETA = 10.0, 28.0, 8.0 / 3.0
T_END = 2.0
TOLERANCES = (1e-5, 1e-6, 1e-7, 1e-8, 3e-9, 1e-9, 3e-10, 1e-10, 3e-11, 1e-11, 3e-12, 1e-12,
              3e-13, 1e-13)
CHEBPAN_SETTINGS = {
    "chebpan (batch defaults)": {},
    "chebpan (zero-order only)": {"max_newton_size": 0},
}


def lorenz_fun(t, y):
    return np.stack([SIGMA * (y[1] - y[0]), y[0] * (RHO - y[2]) - y[1],
                     y[0] * y[1] - BETA * y[2]])


def lorenz_jac(t, y):
    """(3, 3, P) for y of shape (3, P)."""
    one = np.ones_like(y[0])
    zero = np.zeros_like(one)
    return np.array([[-SIGMA * one, SIGMA * one, zero],
                     [RHO - y[2], -one, -y[0]],
                     [y[1], y[0], -BETA * one]])


def lorenz_scalar(t, y):
    x1, x2, x3 = y
    return np.array([SIGMA * (x2 - x1), x1 * (RHO - x3) - x2, x1 * x2 - BETA * x3])


def initial_conditions(k, seed=0):
    """K points of one trajectory on the attractor, at random times in [20, 120]."""
    rng = np.random.default_rng(seed)
    trajectory = scipy.integrate.solve_ivp(lorenz_scalar, (0, 120), [1.0, 1.0, 1.0],
                                           method="DOP853", rtol=1e-12, atol=1e-12,
                                           dense_output=True)
    return np.ascontiguousarray(trajectory.sol(rng.uniform(20, 120, k)).T)


def references(y0):
    return np.array([[float(v) for v in lorenz(y0=tuple(map(float, row)),
                                               t_span=(0.0, T_END)).reference()]
                     for row in y0])


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


# -- the solvers: each returns y(T_END) of shape (K, 3) -------------------------------
def run_chebpan(y0, tol, settings):
    res = chebpan.solve_ivp_batch(lorenz_fun, (0.0, T_END), y0, vectorized=True, rtol=tol,
                                  atol=tol, t_eval=[T_END], jac=lorenz_jac, vectorized_jac=True,
                                  **settings)
    if not res.success:
        raise RuntimeError(f"chebpan failed: {set(res.message)}")
    return res.y[:, :, -1], res


def run_scipy(y0, tol):
    out = np.empty_like(y0)
    for i, row in enumerate(y0):
        res = scipy.integrate.solve_ivp(lorenz_scalar, (0.0, T_END), row, method="DOP853",
                                        rtol=tol, atol=tol)
        out[i] = res.y[:, -1]
    return out, None


def make_torchdiffeq(method):
    import torch
    import torchdiffeq

    class Lorenz(torch.nn.Module):
        def forward(self, t, y):
            x1, x2, x3 = y[:, 0], y[:, 1], y[:, 2]
            return torch.stack([SIGMA * (x2 - x1), x1 * (RHO - x3) - x2,
                                x1 * x2 - BETA * x3], dim=1)

    func = Lorenz()
    times = torch.tensor([0.0, T_END], dtype=torch.float64)

    def run(y0, tol):
        with torch.no_grad():
            y = torchdiffeq.odeint(func, torch.from_numpy(y0), times, method=method,
                                   rtol=tol, atol=tol)
        return y[-1].numpy(), None

    return run


def make_diffrax(solver_name):
    import jax

    jax.config.update("jax_enable_x64", True)
    import diffrax
    import jax.numpy as jnp

    def vector_field(t, y, args):
        x1, x2, x3 = y[0], y[1], y[2]
        return jnp.stack([SIGMA * (x2 - x1), x1 * (RHO - x3) - x2, x1 * x2 - BETA * x3])

    term = diffrax.ODETerm(vector_field)
    solver = getattr(diffrax, solver_name)()
    compiled = {}

    def solve_batch(y0, tol):
        def one(y):
            sol = diffrax.diffeqsolve(
                term, solver, t0=0.0, t1=T_END, dt0=None, y0=y,
                stepsize_controller=diffrax.PIDController(rtol=tol, atol=tol),
                saveat=diffrax.SaveAt(t1=True), max_steps=1_000_000)
            return sol.ys[-1]
        return jax.vmap(one)(y0)

    def run(y0, tol):
        key = (tol, y0.shape)
        if key not in compiled:
            compiled[key] = jax.jit(lambda y: solve_batch(y, tol))
            compiled[key](jnp.asarray(y0)).block_until_ready()  # compile: not timed
        y = compiled[key](jnp.asarray(y0)).block_until_ready()
        return np.asarray(y), None

    return run


def make_numbalsoda():
    """numbalsoda's DOP853 (Hairer's Fortran code) over the batch in a numba ``@njit``
    loop, the right-hand side a numba ``cfunc``: no Python in the loop."""
    import numba
    from numbalsoda import dop853, lsoda_sig

    @numba.cfunc(lsoda_sig)
    def rhs(t, u, du, p):
        du[0] = SIGMA * (u[1] - u[0])
        du[1] = u[0] * (RHO - u[2]) - u[1]
        du[2] = u[0] * u[1] - BETA * u[2]

    address = rhs.address

    @numba.njit
    def loop(y0, t_eval, tol):
        out = np.empty_like(y0)
        for i in range(y0.shape[0]):
            usol, success = dop853(address, y0[i].copy(), t_eval, rtol=tol, atol=tol,
                                   mxstep=1_000_000)
            out[i] = usol[-1]
            if not success:
                out[i] = np.nan
        return out

    def run(y0, tol):
        return loop(np.ascontiguousarray(y0), np.array([0.0, T_END]), tol), None

    return run


def peers():
    """(name, run(y0, tol)) for the peers that can be imported here."""
    found = [("scipy DOP853 (loop)", run_scipy)]
    try:
        found.append(("numbalsoda dop853 (@njit loop)", make_numbalsoda()))
    except ImportError as exc:
        log(f"numbalsoda not available ({exc}); apt-get install gfortran; pip install numbalsoda")
    try:
        for method in ("dopri5", "dopri8"):
            found.append((f"torchdiffeq {method}", make_torchdiffeq(method)))
    except ImportError as exc:
        log(f"torchdiffeq not available ({exc}); pip install torch torchdiffeq")
    try:
        for name in ("Dopri5", "Dopri8"):
            found.append((f"diffrax {name} (vmap)", make_diffrax(name)))
    except ImportError as exc:
        log(f"diffrax not available ({exc}); pip install jax diffrax")
    return found


# -- measurement ----------------------------------------------------------------------
def error_of(y_end, reference):
    return float(np.max(np.abs(y_end[: len(reference)] - reference)))


def matched_tolerance(run, sample, reference, target):
    """The loosest grid tolerance whose sample error is at most ``target``."""
    for tol in TOLERANCES:
        try:
            y_end, _ = run(sample, tol)
        except Exception as exc:  # noqa: BLE001 - a failing tolerance is skipped
            log(f"    tol {tol:.0e}: failed ({exc})")
            continue
        err = error_of(y_end, reference)
        log(f"    tol {tol:.0e}: sample error {err:.2e}")
        if err <= target:
            return tol
    return None


def best_time(run, y0, tol, repeat):
    """Best wall time of ``repeat`` runs, the last result, and the best run's system
    time and page faults (``getrusage``: memory the allocator gave back and took anew)."""
    best, result, kernel = np.inf, None, (0.0, 0)
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        result = run(y0, tol)
        seconds = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        if seconds < best:
            best = seconds
            kernel = (after.ru_stime - before.ru_stime, after.ru_minflt - before.ru_minflt)
    return best, result, kernel


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=10_000, help="batch size K")
    parser.add_argument("--sample", type=int, default=20, help="instances with references")
    parser.add_argument("--target", type=float, default=1e-8, help="error to reach")
    parser.add_argument("--scipy-k", type=int, default=1000,
                        help="instances the scipy loop is timed on (0: all K)")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs (best kept)")
    parser.add_argument("--profile", action="store_true", help="profile the chebpan run")
    parser.add_argument("--one-core", action="store_true",
                        help="pin the process to one core, every library on one thread")
    parser.add_argument("--memory", type=int, nargs="*", metavar="K",
                        help="peak memory of batches of K instances (default 1e4 1e5 1e6)")
    parser.add_argument("--memory-tol", type=float, default=1e-6)
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child is not None:
        return memory_child(args.memory_child, args.memory_tol)
    if args.memory is not None:
        return memory_report(args.memory or [10_000, 100_000, 1_000_000], args.memory_tol)

    k = args.k
    log(f"initial conditions (K = {k}) and {args.sample} mpmath references ...")
    y0 = initial_conditions(k)
    sample = y0[: args.sample]
    reference = references(sample)

    print(f"# Batched Lorenz, K = {k}, t in [0, {T_END}], target error {args.target:g}")
    print(f"date {datetime.datetime.now().isoformat(timespec='seconds')}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, numpy {np.__version__}, "
          f"scipy {scipy.__version__}, chebpan {chebpan.__version__}")
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"cores used: {sorted(os.sched_getaffinity(0))}"
          + (" (--one-core: every library on one thread)" if args.one_core else ""))
    malloc = {name: value for name, value in os.environ.items() if name.startswith("MALLOC_")}
    print("glibc malloc settings: " + (", ".join(f"{name}={value}" for name, value
                                                 in sorted(malloc.items())) or "defaults"))
    rows = []
    for name, settings in CHEBPAN_SETTINGS.items():
        log(f"{name}:")

        def run(y, tol, settings=settings):
            return run_chebpan(y, tol, settings)

        run(sample[:2], 1e-6)  # warm-up (numba compilation)
        tol = matched_tolerance(run, sample, reference, args.target)
        if tol is None:
            rows.append((name, None, None, None, None, ""))
            continue
        seconds, (y_end, res), (system, faults) = best_time(run, y0, tol, args.repeat)
        detail = (f"depth {res.depth}, segments/instance {res.nsegments / k:.1f}, "
                  f"points/instance {res.npoints / k:.0f}, Newton steps/instance "
                  f"{res.niter_newton / k:.1f}; system time {system:.2f} s, "
                  f"{faults} page faults")
        rows.append((name, tol, error_of(y_end, reference), seconds, k, detail))
        if args.profile:
            profile_chebpan(y0, tol, settings)
    chebpan_best = min((row[3] for row in rows if row[3] is not None), default=None)

    for name, run in peers():
        log(f"{name}:")
        try:
            run(sample[:2], 1e-6)  # warm-up
        except Exception as exc:  # noqa: BLE001
            log(f"    unusable here: {exc}")
            continue
        tol = matched_tolerance(run, sample, reference, args.target)
        if tol is None:
            rows.append((name, None, None, None, None, ""))
            continue
        timed_k = k
        if name.startswith("scipy") and 0 < args.scipy_k < k:
            timed_k = args.scipy_k
        seconds, (y_end, _), _ = best_time(run, y0[:timed_k], tol,
                                           1 if name.startswith("scipy") else args.repeat)
        note = f"timed on K = {timed_k}, scaled to K" if timed_k != k else ""
        rows.append((name, tol, error_of(y_end, reference), seconds * k / timed_k, timed_k,
                     note))

    print()
    print("| solver | rtol = atol | sample error | wall time (s) | time / chebpan | notes |")
    print("|---|---|---|---|---|---|")
    for name, tol, err, seconds, _, note in rows:
        if tol is None:
            print(f"| {name} | — | never ≤ {args.target:g} | — | — | |")
            continue
        ratio = seconds / chebpan_best if chebpan_best else float("nan")
        print(f"| {name} | {tol:.0e} | {err:.1e} | {seconds:.2f} | {ratio:.1f} | {note} |")
    print()
    print("time / chebpan: the solver's wall time over chebpan's best configuration's "
          "(above 1: chebpan is faster).")


def peak_rss_mib():
    """This process's peak resident memory so far, MiB (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(k, tol):
    """In a fresh process: one batch of K with t_eval=[t_end]; prints a JSON-ish line."""
    y0 = initial_conditions(k)
    run_chebpan(y0[:2], tol, {})  # warm-up: numba compilation, imports
    before = peak_rss_mib()
    start = time.perf_counter()
    res = chebpan.solve_ivp_batch(lorenz_fun, (0.0, T_END), y0, vectorized=True, jac=lorenz_jac,
                                  vectorized_jac=True, rtol=tol, atol=tol, t_eval=[T_END])
    seconds = time.perf_counter() - start
    after = peak_rss_mib()
    print(f"{k} {before:.1f} {after:.1f} {res.y.nbytes / 2**20:.2f} {seconds:.1f} "
          f"{int((res.status != 0).sum())}")


def memory_report(ks, tol):
    """Peak memory of batches of each K, each in a fresh process (see the docstring)."""
    print(f"# Batch memory: Lorenz on [0, {T_END}], t_eval=[{T_END}], rtol = atol = {tol:g}")
    print(f"date {datetime.datetime.now().isoformat(timespec='seconds')}, "
          f"{os.cpu_count()} CPUs, numpy {np.__version__}, chebpan {chebpan.__version__}")
    print()
    print("| K | output (MiB) | peak RSS before solve (MiB) | peak RSS (MiB) "
          "| growth (MiB) | growth / output | time (s) | failed instances |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k in ks:
        log(f"K = {k} ...")
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(k),
                              "--memory-tol", repr(tol)], check=True, capture_output=True,
                             text=True).stdout.split()
        _, before, after, output, seconds, failed = out
        growth = float(after) - float(before)
        print(f"| {k} | {float(output):.1f} | {float(before):.0f} | {float(after):.0f} "
              f"| {growth:.0f} | {growth / float(output):.1f} | {seconds} | {failed} |")
    return 0


def profile_chebpan(y0, tol, settings):
    """Where chebpan's time goes: cProfile, top entries by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    run_chebpan(y0, tol, settings)
    profiler.disable()
    print(f"\nProfile of chebpan {settings} at tol {tol:.0e} (top 15 by own time):")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()

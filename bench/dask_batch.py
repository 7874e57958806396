"""A batch of K Lorenz IVPs on a Dask ``LocalCluster`` against the same batch in process.

Run from the repository root (after ``pip install ".[bench,dask]"``, or with
``PYTHONPATH=.``)::

    python bench/dask_batch.py                    # K = 10**6, 2 workers
    python bench/dask_batch.py --k 100000 --workers 2 --chunk 25000

The problem: Lorenz (σ, ρ, β) = (10, 28, 8/3) on t ∈ [0, 2], K initial conditions
spread over the attractor, with its vectorised analytic Jacobian (all as
``bench/batch.py``), ``t_eval=[2]``, ``rtol = atol = --tol`` (default 1e-8).

1. **In process:** one ``solve_ivp_batch`` on NumPy arrays, in a fresh process (its
   peak RSS from ``getrusage``), timed.
2. **Dask:** a ``LocalCluster`` of ``--workers`` worker processes with one thread
   each, ``y0`` a Dask array in chunks of ``--chunk`` instances (default
   :func:`chebpan.batch_chunk_size`), the result computed once and timed (cluster
   start-up excluded); each worker's peak RSS read on the worker.  Dask's nanny
   starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which fixes glibc's mmap
   threshold at 128 kB: every large temporary of a round is then mapped and unmapped
   afresh, and a chunk takes about twice as long (page faults).  The cluster here
   unsets it (``distributed.nanny.pre-spawn-environ``), as docs/distributed.md
   advises; ``--dask-default-malloc`` keeps Dask's setting, to measure the difference.

Both run with one BLAS/OpenMP thread per process (set here, inherited by the
workers).  Printed: throughput (instances/s) of each, the speed-up and the scaling
efficiency (speed-up / workers), peak memory per process, whether the Dask rows are
bit for bit the in-process rows, and an extrapolation to a larger cluster, stated as
such (it assumes the measured efficiency and identical workers; a cluster adds
network transfers of ``y0`` and the output, 8·n·(1 + P) bytes per instance here).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import numpy as np  # noqa: E402

import chebpan  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from batch import T_END, initial_conditions, lorenz_fun, lorenz_jac  # noqa: E402

#: The solve's options, in process and on Dask alike.
OPTIONS = dict(vectorized=True, jac=lorenz_jac, vectorized_jac=True, t_eval=[T_END])


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_process_child(k, tol, out):
    """The in-process run (a fresh process): writes y to ``out``, prints time and RSS."""
    y0 = initial_conditions(k)
    before = peak_rss_mib()
    start = time.perf_counter()
    res = chebpan.solve_ivp_batch(lorenz_fun, (0.0, T_END), y0, rtol=tol, atol=tol,
                                  **OPTIONS)
    elapsed = time.perf_counter() - start
    np.save(out, res.y)
    print(f"{elapsed!r} {before!r} {peak_rss_mib()!r} {int(np.sum(res.status != 0))}")


def run_dask(k, tol, workers, chunk, default_malloc):
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    if not default_malloc:
        dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})
    y0 = initial_conditions(k)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        import batch
        import cloudpickle

        # (fun and jac live in bench/batch.py, not importable on the workers: by value)
        cloudpickle.register_pickle_by_value(batch)
        lazy = chebpan.solve_ivp_batch(lorenz_fun, (0.0, T_END),
                                       da.from_array(y0, chunks=(chunk, 3)), rtol=tol, atol=tol,
                                       **OPTIONS)
        start = time.perf_counter()
        res = lazy.compute()
        elapsed = time.perf_counter() - start
        peaks = client.run(peak_rss_mib)
    return elapsed, res, sorted(peaks.values())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=None)
    parser.add_argument("--tol", type=float, default=1e-8)
    parser.add_argument("--dask-default-malloc", action="store_true",
                        help="keep the nanny's MALLOC_TRIM_THRESHOLD_=65536")
    parser.add_argument("--in-process-child", nargs=2, metavar=("K", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.in_process_child:
        return in_process_child(int(args.in_process_child[0]), args.tol,
                                args.in_process_child[1])
    import dask
    import distributed

    k, workers = args.k, args.workers
    chunk = args.chunk or chebpan.batch_chunk_size(3)
    print(f"# Dask batch: K = {k} Lorenz IVPs on [0, {T_END}], t_eval=[{T_END}], "
          f"rtol = atol = {args.tol:g}")
    print(f"# {datetime.datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"chebpan {chebpan.__version__}, numpy {np.__version__}, dask {dask.__version__}, "
          f"distributed {distributed.__version__}")
    print("# threads: one BLAS/OpenMP thread per process; Dask workers: 1 thread each; "
          "workers' MALLOC_TRIM_THRESHOLD_: "
          + ("Dask's 65536" if args.dask_default_malloc else "unset (glibc's default)"))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "y.npy")
        print(f"in process: solving K = {k} ...", file=sys.stderr, flush=True)
        child = subprocess.run([sys.executable, __file__, "--tol", repr(args.tol),
                                "--in-process-child", str(k), out], check=True,
                               capture_output=True, text=True)
        seconds, rss_before, rss_peak, failed = child.stdout.split()
        t_local, rss_peak, failed = float(seconds), float(rss_peak), int(failed)
        y_local = np.load(out)
    print(f"Dask: {workers} workers, chunks of {chunk} ...", file=sys.stderr, flush=True)
    t_dask, res, peaks = run_dask(k, args.tol, workers, chunk, args.dask_default_malloc)
    same = np.array_equal(res.y, y_local, equal_nan=True)
    speedup = t_local / t_dask
    print()
    print("| run | wall time (s) | instances / s | peak RSS per process (MiB) |")
    print("|---|---:|---:|---:|")
    print(f"| in process (1 process) | {t_local:.1f} | {k / t_local:,.0f} | {rss_peak:.0f} |")
    print(f"| Dask LocalCluster ({workers} workers × 1 thread, chunks of {chunk}) | "
          f"{t_dask:.1f} | {k / t_dask:,.0f} | {' / '.join(f'{p:.0f}' for p in peaks)} |")
    print()
    print(f"speed-up {speedup:.2f} on {workers} workers: scaling efficiency "
          f"{speedup / workers:.0%}")
    print(f"rows bit for bit equal to the in-process batch: {same}; "
          f"failed instances: in process {failed}, Dask {int(np.sum(res.status != 0))}")
    rate = 100 * speedup / workers * k / t_local
    print(f"extrapolation (not measured): 100 such workers at this efficiency would solve "
          f"about {rate:,.0f} instances / s, 10**8 instances in {1e8 / rate / 60:.0f} min, "
          "network transfers aside")


if __name__ == "__main__":
    main()

"""GPU check: run the CuPy tests and a short NumPy-vs-CuPy benchmark, print a table.

Run from the repository root on a machine with a CUDA GPU and CuPy
(``pip install ".[test,cuda12]"`` or ``".[test,cuda13]"``)::

    python bench/gpu_check.py              # about 2-4 minutes, always under 5
    python bench/gpu_check.py --no-tests   # benchmark only

What it does, within a wall-clock budget (``--budget``, default 280 s):

1. ``pytest -q tests/test_ldl_cupy.py`` (the CUDA LDLᵀ kernels against numba, plus their
   CPU checks), then every other test whose name or marker mentions ``cupy``
   (``pytest -q -k cupy tests``), each in a subprocess with a timeout;
2. the modified LDLᵀ factor-and-solve of a batch, numba (one CPU thread) vs the CUDA
   kernel, float64 and float32, for K = 1000 matrices of n = 93 and K = 100 of n = 900,
   with the largest relative difference of the solutions;
3. a Picard round (node values and zero-order update: two batched matrix products) on
   NumPy and on CuPy;
4. if :func:`chebpan.solve_ivp` accepts ``backend="cupy"`` (and returns CuPy arrays):
   a batched Lorenz solve (``y0`` of shape (K, 3), t ∈ [0, 2], ``n_coeffs=12``,
   ``max_newton_size=0``), K = 10⁴ on NumPy vs K = 10⁵ and 10⁶ on CuPy, timed per
   instance, with the error of y(2) on a few instances against scipy's DOP853; float64,
   then float32 on CuPy if time allows (10⁶ only when the time extrapolated from 10⁵
   fits in the budget);
5. a single Lorenz solve with CuPy vs NumPy arrays, float64 and float32.

Everything that could not be done is listed at the end, with the reason. On a machine
without CuPy or without a GPU the script says so, prints ``no GPU: nothing to check`` and
exits with status 0. It asserts nothing about speed; the test step's failures are
reported (and make the exit status 1).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def gpu_status():
    """``(cupy module or None, message)``: whether CuPy imports and sees a GPU."""
    try:
        import cupy
    except Exception as err:  # ImportError, or a broken CUDA install
        return None, f"CuPy is not importable ({type(err).__name__}: {err})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:
        return None, f"CuPy sees no CUDA device ({type(err).__name__}: {err})"
    if count == 0:
        return None, "CuPy sees no CUDA device"
    return cupy, f"{count} CUDA device(s)"


class Budget:
    """Wall-clock budget of the whole script."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return self.end - time.monotonic()


class TimeLimit(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds):
    """Raise :class:`TimeLimit` in the main thread after ``seconds`` (SIGALRM)."""
    if seconds <= 0:
        raise TimeLimit("no time left")
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def handler(signum, frame):
        raise TimeLimit(f"over the {seconds:.0f} s allotted")

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_pytest(args, timeout):
    """Run pytest in a subprocess; returns (status line, exit code)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=max(timeout, 1))
    except subprocess.TimeoutExpired as err:
        tail = (err.stdout or b"")[-2000:]
        tail = tail.decode() if isinstance(tail, bytes) else tail
        return f"timed out after {timeout:.0f} s\n{tail}", None
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
    summary = lines[-1] if lines else "(no output)"
    if proc.returncode not in (0, 5):
        failures = [ln for ln in lines if ln.startswith(("FAILED", "ERROR"))]
        summary += "\n" + "\n".join(failures[:30]) + "\n" + proc.stderr[-2000:]
    return summary, proc.returncode


def sync(cupy):
    cupy.cuda.Device().synchronize()


def best_time(fn, *, cupy=None, repeats=3, max_total=20.0):
    """Best wall time (s) of ``fn()`` over up to ``repeats`` runs (after the caller's
    warm-up), stopping early once ``max_total`` seconds are spent."""
    best = math.inf
    spent = 0.0
    for _ in range(repeats):
        if cupy is not None:
            sync(cupy)
        t0 = time.perf_counter()
        out = fn()
        if cupy is not None:
            sync(cupy)
        dt = time.perf_counter() - t0
        best = min(best, dt)
        spent += dt
        if spent > max_total:
            break
    return best, out


def fmt_ms(seconds):
    if seconds is None or not math.isfinite(seconds):
        return "–"
    ms = 1e3 * seconds
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def symmetric_indefinite(rng, K, n, dtype):
    """Random symmetric matrices with entries of size 1/sqrt(n) (indefinite, so that the
    modification E is exercised)."""
    import numpy as np

    A = rng.standard_normal((K, n, n)).astype(dtype)
    A += np.swapaxes(A, 1, 2)
    A *= 0.5 / math.sqrt(n)
    return A


def bench_ldl(cupy, rows, notes, budget):
    import numpy as np

    from chebpan._kernels import ldl_cupy as cupy_kernel, ldl_numba as numba_kernel

    rng = np.random.default_rng(0)
    for K, n in [(1000, 93), (100, 900)]:
        for dtype in (np.float64, np.float32):
            name = f"LDLᵀ factor+solve, K={K}, n={n}"
            if budget.left() < 30:
                notes.append(f"{name} {np.dtype(dtype).name}: not run (time budget spent)")
                continue
            H = symmetric_indefinite(rng, K, n, dtype)
            b = rng.standard_normal((K, n)).astype(dtype)
            numba_kernel.modified_ldl_solve(H[:1], b[:1])  # JIT / cache load
            t_cpu, (x_cpu, _) = best_time(lambda: numba_kernel.modified_ldl_solve(H, b),
                                          repeats=3, max_total=8.0)
            Hg, bg = cupy.asarray(H), cupy.asarray(b)
            sync(cupy)
            t0 = time.perf_counter()
            cupy_kernel.modified_ldl_solve(Hg[:1], bg[:1])  # NVRTC compile (cached after)
            sync(cupy)
            t_first = time.perf_counter() - t0
            t_gpu, (x_gpu, _) = best_time(lambda: cupy_kernel.modified_ldl_solve(Hg, bg),
                                          cupy=cupy, repeats=5, max_total=8.0)
            x_gpu = cupy.asnumpy(x_gpu).astype(np.float64)
            x_ref = x_cpu.astype(np.float64)
            diff = np.abs(x_gpu - x_ref).max() / np.abs(x_ref).max()
            rows.append((name, np.dtype(dtype).name, t_cpu, t_gpu,
                         f"max rel. diff of x {diff:.1e}; first CuPy call {fmt_ms(t_first)} ms"))


def bench_picard(cupy, rows, notes, budget):
    import array_api_compat
    import numpy as np

    from chebpan._core import picard
    from chebpan._core.basis import get_basis
    from chebpan._frontend.backend import namespace_of

    N = 32
    for K, L in [(1000, 3), (100, 1000)]:
        for dtype in (np.float64, np.float32):
            name = f"Picard round (2 batched matmuls), K={K} segments, L={L}, N={N}"
            if budget.left() < 20:
                notes.append(f"{name} {np.dtype(dtype).name}: not run (time budget spent)")
                continue
            rng = np.random.default_rng(1)
            host = {
                "y_a": rng.standard_normal((K, L)),
                "f_a": rng.standard_normal((K, L)),
                "half_h": rng.uniform(0.01, 0.1, (K, 1)),
                "x": 1e-3 * rng.standard_normal((K, L, N - 2)),
            }
            times = []
            for lib in (np, cupy):
                arrays = {k: lib.asarray(v.astype(dtype)) for k, v in host.items()}
                xp = (namespace_of(arrays["x"]) if lib is np
                      else array_api_compat.array_namespace(arrays["x"]))
                device = None if lib is np else array_api_compat.device(arrays["x"])
                basis = get_basis(N, N - 1, xp=xp, dtype=getattr(xp, np.dtype(dtype).name),
                                  device=device)

                def one_round(a=arrays, xp=xp, basis=basis):
                    nodes = picard.node_values(basis, a["y_a"], a["f_a"], a["half_h"], a["x"],
                                               xp=xp)
                    return picard.picard_update(basis, a["f_a"], nodes, a["half_h"], xp=xp)

                one_round()
                t, _ = best_time(one_round, cupy=cupy if lib is cupy else None, repeats=20,
                                 max_total=3.0)
                times.append(t)
            rows.append((name, np.dtype(dtype).name, times[0], times[1], "NumPy: one BLAS thread"
                         if os.environ.get("OPENBLAS_NUM_THREADS") == "1" else ""))


def lorenz_rhs(t, y):
    """The Lorenz system (σ = 10, ρ = 28, β = 8/3), vectorised, in y's namespace."""
    import array_api_compat

    xp = array_api_compat.array_namespace(y)
    u, v, w = y[0, ...], y[1, ...], y[2, ...]
    return xp.stack([10.0 * (v - u), u * (28.0 - w) - v, u * v - (8.0 / 3.0) * w])


def probe_cupy_backend(cupy):
    """None if ``solve_ivp(..., backend="cupy")`` works and returns CuPy arrays, else
    the reason why not."""
    import chebpan

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = chebpan.solve_ivp(lorenz_rhs, (0.0, 0.1), cupy.asarray([2.0, 1.0, 1.0]),
                                    vectorized=True, backend="cupy")
    except Exception as err:
        return f"solve_ivp(..., backend='cupy') raised {type(err).__name__}: {err}"
    if not isinstance(res.y, cupy.ndarray):
        return (f"solve_ivp(..., backend='cupy') returned y as {type(res.y).__name__}, "
                "not cupy.ndarray")
    return None


BATCH_T_END = 2.0
BATCH_OPTIONS = {"n_coeffs": 12, "max_newton_size": 0}  # zero-order only: no dense Newton
BATCH_SAMPLE = 5
#: Seconds the batched step leaves for the single Lorenz solves after it, and the least
#: time it wants for its first CuPy batch (K = 10⁵: a few seconds are expected).
BATCH_RESERVE = 60.0
BATCH_FIRST_GUESS = 10.0


def lorenz_scalar(t, y):
    x1, x2, x3 = y
    return [10.0 * (x2 - x1), x1 * (28.0 - x3) - x2, x1 * x2 - (8.0 / 3.0) * x3]


def attractor_points(k, seed=0):
    """``k`` initial conditions spread over the Lorenz attractor, shape (k, 3), float64:
    one trajectory (scipy DOP853, rtol=atol=1e-10) at random times in [20, 120], read
    from its dense output at all k times (under a second for k = 10⁶)."""
    import numpy as np
    import scipy.integrate

    rng = np.random.default_rng(seed)
    trajectory = scipy.integrate.solve_ivp(lorenz_scalar, (0.0, 120.0), [1.0, 1.0, 1.0],
                                           method="DOP853", rtol=1e-10, atol=1e-10,
                                           dense_output=True)
    return np.ascontiguousarray(trajectory.sol(rng.uniform(20.0, 120.0, k)).T)


def batched_solve(y0, tol):
    """The batched Lorenz solve; ``y0`` (K, 3) on NumPy or CuPy (the solve follows it)."""
    import chebpan

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return chebpan.solve_ivp_batch(lorenz_rhs, (0.0, BATCH_T_END), y0, vectorized=True,
                                       t_eval=[BATCH_T_END], rtol=tol, atol=tol, **BATCH_OPTIONS)


def run_batch(y0_host, tol, seconds, cupy=None):
    """One timed batched solve from ``y0_host`` (NumPy, (K, 3)), on CuPy if ``cupy`` is
    given, else on NumPy, within ``seconds``; returns a dict of scalars: time, rounds,
    segments, success, the error of y(2) (see :func:`sample_error`) and the CuPy
    memory pool's size after the solve (about its peak)."""
    import numpy as np

    k = y0_host.shape[0]
    if cupy is None:
        y0 = y0_host
    else:
        cupy.get_default_memory_pool().free_all_blocks()
        y0 = cupy.asarray(y0_host)
    with time_limit(seconds):
        t, res = best_time(lambda: batched_solve(y0, tol), cupy=cupy, repeats=1)
    ends = res.y[:, :, -1]
    memory = None
    if cupy is not None:
        if not isinstance(res.y, cupy.ndarray):
            raise TypeError(f"res.y is {type(res.y).__name__}, not cupy.ndarray")
        ends = cupy.asnumpy(ends)
        memory = cupy.get_default_memory_pool().total_bytes()
    failed = {int(s): int(c) for s, c in zip(*np.unique(res.status, return_counts=True))
              if s < 0}
    return {"k": k, "t": t, "depth": int(res.depth), "nsegments": int(res.nsegments),
            "success": bool(res.success), "failed": failed, "memory": memory,
            "err": sample_error(y0_host, np.asarray(ends, dtype=np.float64))}


def sample_error(y0_host, ends):
    """max |y(2) − y_ref(2)| over BATCH_SAMPLE instances spread over the batch, y_ref
    from scipy's DOP853 at rtol=atol=1e-12 (from the same, possibly float32, y0)."""
    import numpy as np
    import scipy.integrate

    err = 0.0
    for i in np.linspace(0, len(y0_host) - 1, BATCH_SAMPLE).astype(int):
        ref = scipy.integrate.solve_ivp(lorenz_scalar, (0.0, BATCH_T_END),
                                        y0_host[i].astype(np.float64), method="DOP853",
                                        rtol=1e-12, atol=1e-12)
        err = max(err, float(np.abs(ends[i] - ref.y[:, -1]).max()))
    return err


def describe_batch(run):
    text = (f"K={run['k']:,}: {run['t']:.2f} s, {run['depth']} rounds, "
            f"{run['nsegments']:,} segments, error {run['err']:.1e}")
    if run["memory"] is not None:
        text += f", memory pool {run['memory'] / 2**30:.1f} GiB"
    if not run["success"]:
        text += f", FAILED instances by status {run['failed']}"
    return text


def bench_batched_lorenz(cupy, rows, notes, budget, *, k_numpy=10**4,
                         k_cupy=(10**5, 10**6), k_warm=1000):
    import numpy as np

    reason = probe_cupy_backend(cupy)
    if reason is not None:
        notes.append(f"batched Lorenz solve: not available ({reason})")
        return
    y0_all = attractor_points(max(k_numpy, *k_cupy))
    for dtype, tol in ((np.float64, 1e-9), (np.float32, 1e-5)):
        label = np.dtype(dtype).name
        name = (f"batched Lorenz (0, {BATCH_T_END:g}), rtol=atol={tol:g}, N=12, zero-order "
                "only: time per instance")
        host = y0_all.astype(dtype)
        numpy_run = None
        if dtype is np.float32:
            numpy_note = "NumPy: not run (it solves a float32 y0 in float64, as scipy)"
        elif budget.left() - BATCH_RESERVE < 30:
            numpy_note = "NumPy: not run (time budget spent)"
        else:
            try:
                batched_solve(host[:100], tol)  # warm-up
                numpy_run = run_batch(host[:k_numpy], tol,
                                      min(60.0, budget.left() - BATCH_RESERVE))
                numpy_note = "NumPy " + describe_batch(numpy_run)
            except TimeLimit as err:
                numpy_note = f"NumPy K={k_numpy:,}: not finished ({err})"
            except Exception as err:
                numpy_note = f"NumPy K={k_numpy:,}: failed ({type(err).__name__}: {err})"
        cupy_runs = []
        allowed = budget.left() - BATCH_RESERVE
        if allowed < 20:
            notes.append(f"{name} {label} on CuPy: not run (time budget spent)")
        else:
            try:
                with time_limit(min(60.0, allowed)):
                    batched_solve(cupy.asarray(host[:k_warm]), tol)  # warm-up: compiles kernels
                sync(cupy)
                for k in k_cupy:
                    allowed = budget.left() - BATCH_RESERVE
                    # linear in K: pessimistic while the GPU is not yet saturated
                    estimate = (cupy_runs[-1]["t"] * k / cupy_runs[-1]["k"] if cupy_runs
                                else BATCH_FIRST_GUESS)
                    if estimate > allowed:
                        notes.append(f"{name} {label}, CuPy K={k:,}: not run (about "
                                     f"{estimate:.0f} s expected, {max(allowed, 0):.0f} s left)")
                        break
                    cupy_runs.append(run_batch(host[:k], tol, allowed, cupy=cupy))
            except TimeLimit as err:
                notes.append(f"{name} {label} on CuPy: not finished ({err})")
            except Exception as err:
                notes.append(f"{name} {label} on CuPy: failed ({type(err).__name__}: {err})")
            finally:
                cupy.get_default_memory_pool().free_all_blocks()
        t_numpy = None if numpy_run is None else numpy_run["t"] / numpy_run["k"]
        if numpy_run is None and not cupy_runs:
            notes.append(f"{name} {label}: {numpy_note}")
            continue
        for run in cupy_runs or [None]:
            t_cupy = None if run is None else run["t"] / run["k"]
            note = numpy_note if run is None else f"{numpy_note}; CuPy {describe_batch(run)}"
            rows.append((name, label, t_numpy, t_cupy,
                         note + f" (one run each, after a warm-up; error: max |Δy(2)| on "
                         f"{BATCH_SAMPLE} instances vs DOP853 at rtol=atol=1e-12)"))


def bench_lorenz(cupy, rows, notes, budget):
    import numpy as np

    import chebpan

    reason = probe_cupy_backend(cupy)
    if reason is not None:
        notes.append(f"Lorenz solve NumPy vs CuPy: not available ({reason})")
    else:
        for dtype, tol in ((np.float64, 1e-10), (np.float32, 1e-5)):
            name = f"Lorenz (0, 15), rtol=atol={tol:g}, vectorized"
            times, ends = [], []
            for lib, backend in ((np, "numpy"), (cupy, "cupy")):
                y0 = lib.asarray(np.array([2.0, 1.0, 1.0], dtype=dtype))

                def solve(y0=y0, backend=backend):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        return chebpan.solve_ivp(lorenz_rhs, (0.0, 15.0), y0, vectorized=True,
                                                 rtol=tol, atol=tol, backend=backend)

                allowed = min(60.0, budget.left() - 15)
                if allowed < 5:
                    notes.append(f"{name} {np.dtype(dtype).name} on {backend}: not run "
                                 "(time budget spent)")
                    times.append(None)
                    ends.append(None)
                    continue
                try:
                    with time_limit(allowed):
                        solve()  # warm-up (numba / NVRTC compilation)
                        t, res = best_time(solve, cupy=cupy if lib is cupy else None,
                                           repeats=2, max_total=allowed / 3)
                except TimeLimit as err:
                    notes.append(f"{name} {np.dtype(dtype).name} on {backend}: "
                                 f"not finished ({err})")
                    t, res = None, None
                except Exception as err:
                    notes.append(f"{name} {np.dtype(dtype).name} on {backend}: failed "
                                 f"({type(err).__name__}: {err})")
                    t, res = None, None
                times.append(t)
                ends.append(None if res is None else np.asarray(
                    cupy.asnumpy(res.y[:, -1]) if lib is cupy else res.y[:, -1], dtype=float))
            if times[0] is not None and times[1] is not None:
                diff = np.abs(ends[0] - ends[1]).max() / np.abs(ends[0]).max()
                rows.append((name, np.dtype(dtype).name, times[0], times[1],
                             f"rel. diff of y(15) NumPy vs CuPy {diff:.1e}"))


def print_table(rows):
    print("| case | dtype | NumPy / numba [ms] | CuPy [ms] | NumPy ÷ CuPy | notes |")
    print("|---|---|---:|---:|---:|---|")
    for name, dtype, t_cpu, t_gpu, note in rows:
        ratio = (f"{t_cpu / t_gpu:.3g}" if t_cpu and t_gpu and math.isfinite(t_cpu)
                 and math.isfinite(t_gpu) else "–")
        print(f"| {name} | {dtype} | {fmt_ms(t_cpu)} | {fmt_ms(t_gpu)} | {ratio} | {note} |")


def _abort(seconds):
    print(f"\naborted: still running after {seconds:.0f} s (a hung kernel or solve?)",
          flush=True)
    os._exit(2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-tests", action="store_true", help="skip the pytest step")
    parser.add_argument("--budget", type=float, default=280.0,
                        help="wall-clock budget in seconds (default 280)")
    args = parser.parse_args(argv)
    budget = Budget(args.budget)
    # last resort against a hung kernel or solve: the script must end within 5 minutes
    watchdog = threading.Timer(args.budget + 15, _abort, args=(args.budget + 15,))
    watchdog.daemon = True
    watchdog.start()

    cupy, message = gpu_status()
    if cupy is None:
        print(f"{message}.")
        print("no GPU: nothing to check")
        return 0

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    gpu_name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    cpu = platform.processor() or platform.machine()
    print(f"# chebpan GPU check\n\nGPU: {gpu_name} ({message}); CuPy {cupy.__version__}, "
          f"CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}; CPU: {cpu}, "
          f"{os.cpu_count()} cores; Python {platform.python_version()}\n", flush=True)

    status = 0
    notes = []
    if args.no_tests:
        notes.append("tests: skipped (--no-tests)")
    else:
        print("## Tests\n", flush=True)
        summary, rc = run_pytest(["tests/test_ldl_cupy.py"], timeout=min(150, budget.left() - 110))
        print(f"- `pytest -q tests/test_ldl_cupy.py`: {summary}", flush=True)
        status |= rc not in (0,)
        summary, rc = run_pytest(["-k", "cupy", "tests", "--ignore=tests/test_ldl_cupy.py"],
                                 timeout=min(90, budget.left() - 100))
        if rc == 5:
            summary = "no other tests mention cupy"
        print(f"- `pytest -q -k cupy tests` (other files): {summary}\n", flush=True)
        status |= rc not in (0, 5)

    rows = []
    for step in (bench_ldl, bench_picard, bench_batched_lorenz, bench_lorenz):
        try:
            step(cupy, rows, notes, budget)
        except Exception as err:  # report and go on: the table is the point
            notes.append(f"{step.__name__}: failed with {type(err).__name__}: {err}")
    print("## Timings (best of a few runs, after a warm-up)\n")
    print_table(rows)
    print("\nNumPy ÷ CuPy above 1: CuPy is faster. numba runs on one CPU thread.")
    if notes:
        print("\n## Not done\n")
        for note in notes:
            print(f"- {note}")
    print(f"\n(total {args.budget - budget.left():.0f} s)")
    watchdog.cancel()
    return int(bool(status))


if __name__ == "__main__":
    sys.exit(main())

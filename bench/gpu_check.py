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
4. if :func:`chebpan.solve_ivp` accepts ``backend="cupy"`` (and returns CuPy arrays), a
   Lorenz solve with CuPy vs NumPy arrays, float64 and float32; a batched Lorenz solve
   only if chebpan offers batching (it does not yet).

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

    from chebpan.ldl import cupy_kernel, numba_kernel

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

    from chebpan import picard
    from chebpan.backend import namespace_of
    from chebpan.basis import get_basis

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
    u, v, w = y[0], y[1], y[2]
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
    notes.append("batched Lorenz solve: not available (chebpan has no batched solve_ivp "
                 "yet; extend this script when it has)")


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
    for step in (bench_ldl, bench_picard, bench_lorenz):
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

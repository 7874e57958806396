"""Tests of the CUDA LDLᵀ kernels (chebpan._kernels.ldl_cupy).

Two layers:

* CPU, everywhere g++ is available: the CUDA source text ``CUDA_SOURCE`` is compiled as
  C++20 with a small prelude that defines the CUDA keywords away, and its ``__global__``
  kernels are run through ctypes with one OS thread per CUDA thread (``threadIdx`` is
  thread-local, ``__syncthreads()`` is a ``std::barrier``, the dynamic shared memory one
  static array). Block sizes 1, 3, 32 and 40 and grids smaller than the batch exercise
  the tree reductions, the row groups and the grid-stride loops. Factors and solutions
  are compared with the numba kernel (the arithmetic is meant to be the same, so the
  agreement is at rounding level, in practice bit for bit) and with the reference.
* GPU, only where CuPy imports and sees a device (skipped otherwise, never faked): the
  CuPy path against numba on the same inputs, float32 and float64.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import array_api_compat.numpy as anp
import numpy as np
import pytest
from conftest import indefinite, needs_gpu, positive_definite

from chebpan._core import ldl
from chebpan._core import ldl_reference as reference
from chebpan._kernels import ldl_cupy, ldl_numba
from test_ldl import check_factors, check_solve

# ---------------------------------------------------------------------------- inputs


def near_singular(rng, K, n, dtype=np.float64):
    """B S Bᵀ of rank about n/3 (PSD and indefinite S = ±1) plus a 1e-10 symmetric jitter."""
    r = max(n // 3, 1)
    B = rng.standard_normal((K, n, r))
    S = np.where(np.arange(K)[:, None] % 2 == 1, np.where(np.arange(r) % 2, -1.0, 1.0), 1.0)
    A = (B * S[:, None, :]) @ np.swapaxes(B, 1, 2)
    J = rng.standard_normal((K, n, n)) * 1e-10
    return (A + (J + np.swapaxes(J, 1, 2)) / 2).astype(dtype)


def ties(rng, K, n, dtype=np.float64):
    """Small integers: many equal diagonal entries, so the tie-breaking rule decides."""
    A = rng.integers(-2, 3, (K, n, n)).astype(np.float64)
    A = A + np.swapaxes(A, 1, 2)
    A[0] = 0.0  # the zero matrix: every pivot is a tie
    return A.astype(dtype)


KINDS = [indefinite, near_singular, positive_definite, ties]
SIZES = [1, 2, 5, 30]

# ------------------------------------------------------------------ CPU: g++ harness

#: Defines the CUDA keywords away so that ``CUDA_SOURCE`` is plain C++20.
HOST_PRELUDE = r"""
#include <math.h>
#include <barrier>
#include <thread>
#include <vector>
#define __device__
#define __global__
#define __shared__
struct ldl_dim3 { unsigned int x, y, z; };
static thread_local ldl_dim3 threadIdx;
static ldl_dim3 blockIdx, blockDim, gridDim;
static std::barrier<>* ldl_barrier;
#define __syncthreads() (ldl_barrier->arrive_and_wait())
"""

#: Runs a kernel on the CPU (blocks one after the other, threads concurrently) and
#: exports it with C linkage for ctypes.
HOST_HARNESS = r"""
double ldl_smem[1 << 16];

template <typename F>
static void launch(int grid, int block, F body)
{
    gridDim.x = grid;
    blockDim.x = block;
    for (int bx = 0; bx < grid; ++bx) {
        blockIdx.x = bx;
        std::barrier<> bar(block);
        ldl_barrier = &bar;
        if (block == 1) {
            threadIdx.x = 0;
            body();
            continue;
        }
        std::vector<std::thread> threads;
        for (int t = 0; t < block; ++t)
            threads.emplace_back([t, &body] { threadIdx.x = t; body(); });
        for (auto& th : threads) th.join();
    }
}

#define LDL_EXPORT(T, SUFFIX)                                                          \
extern "C" void factor_##SUFFIX(const T* H, T* L, T* d, long long* perm, T* e, int K,  \
                                int n, double eps, int grid, int block)                \
{                                                                                      \
    launch(grid, block, [&] { ldl_factor_kernel<T>(H, L, d, perm, e, K, n, eps); });   \
}                                                                                      \
extern "C" void factor_solve_##SUFFIX(const T* H, const T* rhs, T* x, T* e, T* work,   \
                                      T* dwork, long long* pwork, int K, int n, int r, \
                                      double eps, int grid, int block)                 \
{                                                                                      \
    launch(grid, block, [&] {                                                          \
        ldl_factor_solve_kernel<T>(H, rhs, x, e, work, dwork, pwork, K, n, r, eps);    \
    });                                                                                \
}                                                                                      \
extern "C" void solve_##SUFFIX(const T* L, const T* d, const long long* perm,          \
                               const T* rhs, T* x, int K, int n, int r, int grid,      \
                               int block)                                              \
{                                                                                      \
    launch(grid, block, [&] { ldl_solve_kernel<T>(L, d, perm, rhs, x, K, n, r); });    \
}

LDL_EXPORT(double, f64)
LDL_EXPORT(float, f32)
"""

SMEM_BYTES = 8 << 16


def build_host_library(directory, extra_flags=()):
    """Compile HOST_PRELUDE + CUDA_SOURCE + HOST_HARNESS into a shared library."""
    src = directory / "ldl_host.cpp"
    src.write_text(HOST_PRELUDE + ldl_cupy.CUDA_SOURCE + HOST_HARNESS)
    lib = directory / "libldl_host.so"
    cmd = ["g++", "-std=c++20", "-O1", "-fPIC", "-shared", "-pthread", "-ffp-contract=off",
           "-Wall", "-Wextra", "-Werror", *extra_flags, str(src), "-o", str(lib)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(lib))


class HostKernels:
    """The CUDA kernels run on the CPU, with the Python wrappers' conventions."""

    def __init__(self, lib):
        self.lib = lib

    def _fn(self, name, dtype):
        return getattr(self.lib, f"{name}_{'f64' if dtype == np.float64 else 'f32'}")

    @staticmethod
    def _check_smem(n, block, dtype):
        assert ldl_cupy.shared_bytes(n, block, np.dtype(dtype).itemsize) <= SMEM_BYTES

    @staticmethod
    def _ptr(a):
        return ctypes.c_void_p(a.ctypes.data)

    def modified_ldl(self, H, *, block, grid=None):
        H = np.ascontiguousarray(H)
        K, n, _ = H.shape
        self._check_smem(n, block, H.dtype)
        L = np.full_like(H, np.nan)  # the kernel must write every entry
        d = np.full((K, n), np.nan, dtype=H.dtype)
        perm = np.full((K, n), -1, dtype=np.int64)
        e = np.full((K, n), np.nan, dtype=H.dtype)
        self._fn("factor", H.dtype)(
            self._ptr(H), self._ptr(L), self._ptr(d), self._ptr(perm), self._ptr(e),
            ctypes.c_int(K), ctypes.c_int(n), ctypes.c_double(np.finfo(H.dtype).eps),
            ctypes.c_int(grid or K), ctypes.c_int(block),
        )
        return reference.LDLFactors(L, d, perm, e)

    def ldl_solve(self, factors, b, *, block, grid=None):
        L, d, perm = (np.ascontiguousarray(a) for a in factors[:3])
        K, n = L.shape[0], L.shape[-1]
        self._check_smem(n, block, L.dtype)
        rhs = np.ascontiguousarray(b, dtype=L.dtype).reshape(K, n, -1)
        x = np.full_like(rhs, np.nan)
        self._fn("solve", L.dtype)(
            self._ptr(L), self._ptr(d), self._ptr(perm), self._ptr(rhs), self._ptr(x),
            ctypes.c_int(K), ctypes.c_int(n), ctypes.c_int(rhs.shape[2]),
            ctypes.c_int(grid or K), ctypes.c_int(block),
        )
        return x.reshape(np.shape(b))

    def modified_ldl_solve(self, H, b, *, block, grid=None):
        H = np.ascontiguousarray(H)
        K, n, _ = H.shape
        self._check_smem(n, block, H.dtype)
        grid = grid or K
        rhs = np.ascontiguousarray(b, dtype=H.dtype).reshape(K, n, -1)
        x = np.full_like(rhs, np.nan)
        e = np.full((K, n), np.nan, dtype=H.dtype)
        work = np.full((grid, n, n), np.nan, dtype=H.dtype)  # upper triangle too
        dwork = np.empty((grid, n), dtype=H.dtype)
        pwork = np.empty((grid, n), dtype=np.int64)
        self._fn("factor_solve", H.dtype)(
            self._ptr(H), self._ptr(rhs), self._ptr(x), self._ptr(e), self._ptr(work),
            self._ptr(dwork), self._ptr(pwork), ctypes.c_int(K), ctypes.c_int(n),
            ctypes.c_int(rhs.shape[2]), ctypes.c_double(np.finfo(H.dtype).eps),
            ctypes.c_int(grid), ctypes.c_int(block),
        )
        return x.reshape(np.shape(b)), e


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    if shutil.which("g++") is None:
        pytest.skip("g++ not found: the CUDA source cannot be checked on the CPU")
    try:
        lib = build_host_library(tmp_path_factory.mktemp("ldl_host"))
    except subprocess.CalledProcessError as err:
        if "barrier" in err.stderr and "No such file" in err.stderr:
            pytest.skip("g++ without C++20 <barrier>")
        raise AssertionError(f"the CUDA source does not compile as C++:\n{err.stderr}")
    return HostKernels(lib)


def rel_err(a, b):
    """max |a - b| / max |b| per batch member (0 where both vanish)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    K = a.shape[0]
    num = np.abs(a - b).reshape(K, -1).max(axis=1)
    den = np.abs(b).reshape(K, -1).max(axis=1)
    return np.where(num == 0, 0.0, num / np.where(den == 0, 1.0, den))


def assert_factors_agree(f, g, rtol):
    """Same pivot order; L, d, e agree to rtol relative to each batch member's size."""
    np.testing.assert_array_equal(np.asarray(f.perm), np.asarray(g.perm))
    for name in ("L", "d", "e"):
        a, b = getattr(f, name), getattr(g, name)
        assert np.asarray(a).dtype == np.asarray(b).dtype, name
        err = rel_err(a, b)
        if name == "e":  # e vanishes for safely positive definite H: compare to d
            err = np.abs(np.asarray(a, float) - np.asarray(b, float)).max(axis=1) / np.abs(
                np.asarray(g.d, float)
            ).max(axis=1)
        assert np.all(err <= rtol), (name, err)


# Every CPU case runs these block sizes: one thread, a non-power-of-two block smaller
# than a warp, a full warp, and a warp plus a partial one (idle threads in the update).
BLOCKS = [1, 3, 32, 40]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_host_kernel_factor_matches_numba(host, kind, n):
    rng = np.random.default_rng(100 * n + len(kind.__name__))
    K = 5
    H = kind(rng, K, n)
    fn = ldl_numba.modified_ldl(H)
    fr = reference.modified_ldl(H, xp=anp)
    for block in BLOCKS:
        for grid in (K, 2):
            f = host.modified_ldl(H, block=block, grid=grid)
            assert_factors_agree(f, fn, 1e-12)
            check_factors(H, f)
            if kind is not near_singular:  # there rounding differences are amplified
                assert_factors_agree(f, fr, 100 * n * np.finfo(float).eps)
            assert np.all(np.triu(f.L, 1) == 0) and np.all(np.diagonal(f.L, 0, 1, 2) == 1)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_host_kernel_solve_matches_numba(host, kind, n):
    rng = np.random.default_rng(200 * n + len(kind.__name__))
    K = 5
    H = kind(rng, K, n)
    b = rng.standard_normal((K, n))
    B = rng.standard_normal((K, n, 3))
    fn = ldl_numba.modified_ldl(H)
    for rhs in (b, B):
        xn, en = ldl_numba.modified_ldl_solve(H, rhs)
        xr = reference.ldl_solve(fn, rhs, xp=anp)
        # agreement with the reference relative to the conditioning of H + E
        cond = np.linalg.cond(H + en[:, None, :] * np.eye(n))
        for block, grid in [(1, K), (3, 2), (32, K), (40, 2)]:
            x, e = host.modified_ldl_solve(H, rhs, block=block, grid=grid)
            assert x.shape == rhs.shape and x.dtype == rhs.dtype
            np.testing.assert_allclose(e, en, rtol=1e-12, atol=1e-12 * np.abs(fn.d).max())
            assert np.all(rel_err(x, xn) <= 1e-12), rel_err(x, xn)
            assert np.all(rel_err(x, xr) <= 1e-13 * n * cond)
            check_solve(H, e, rhs, x)
            # the separate solve, with numba's factors and with the kernel's own
            y = host.ldl_solve(fn, rhs, block=block, grid=grid)
            assert np.all(rel_err(y, ldl_numba.ldl_solve(fn, rhs)) <= 1e-12)
            y = host.ldl_solve(host.modified_ldl(H, block=block), rhs, block=block)
            assert np.all(rel_err(y, xn) <= 1e-12)


@pytest.mark.parametrize("n", [1, 6, 30])
def test_host_kernel_float32_matches_numba(host, n):
    # numba forms γ, ξ, δ, β², θ and d_j in double for float32 input; the kernel must too
    rng = np.random.default_rng(n + 5)
    tol = 8 * np.finfo(np.float32).eps
    for kind in KINDS:
        H = kind(rng, 4, n, np.float32)
        b = rng.standard_normal((4, n)).astype(np.float32)
        fn = ldl_numba.modified_ldl(H)
        xn, en = ldl_numba.modified_ldl_solve(H, b)
        for block in (1, 32):
            assert_factors_agree(host.modified_ldl(H, block=block), fn, tol)
            x, e = host.modified_ldl_solve(H, b, block=block, grid=3)
            assert x.dtype == e.dtype == np.float32
            np.testing.assert_allclose(e, en, rtol=tol, atol=tol * np.abs(fn.d).max())
            cond = np.linalg.cond(H + en[:, None, :] * np.eye(n))
            assert np.all(rel_err(x, xn) <= tol * n * cond)


def test_host_kernel_gmw_test_vector(host):
    H = np.array([[[4.0, 2.0, 1.0], [2.0, 6.0, 3.0], [1.0, 3.0, -0.004]]])
    for block in (1, 3, 32):
        f = host.modified_ldl(H, block=block)
        np.testing.assert_array_equal(f.perm, [[1, 0, 2]])
        np.testing.assert_allclose(f.e, [[0.0, 0.0, 3.008]], rtol=0, atol=1e-12)
        np.testing.assert_allclose(f.d, [[6.0, 10 / 3, 1.504]], rtol=1e-13)


def test_host_kernel_reads_only_the_lower_triangle(host):
    H = indefinite(np.random.default_rng(7), 3, 6)
    junk = H + np.triu(np.full((6, 6), 1e3), 1)
    b = np.ones((3, 6))
    for block in (1, 32):
        for a, c in zip(host.modified_ldl(H, block=block), host.modified_ldl(junk, block=block)):
            np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(
            host.modified_ldl_solve(H, b, block=block)[0],
            host.modified_ldl_solve(junk, b, block=block)[0],
        )


#: A standalone driver for ThreadSanitizer (it cannot be preloaded into Python): random
#: symmetric matrices, all three kernels, blocks of 3, 8 and 40 threads, n up to 50 so
#: that rows wrap around the row groups differently from the reduction loops.
TSAN_MAIN = r"""
#include <cstdio>
#include <random>
int main()
{
    std::mt19937 gen(1);
    std::normal_distribution<double> normal;
    const double eps = 2.220446049250313e-16;
    for (int n : {2, 5, 17, 50}) {
        for (int block : {3, 8, 40}) {
            const int K = 3, r = 2, grid = 2;
            std::vector<double> H(K * n * n), L(K * n * n), d(K * n), e(K * n),
                rhs(K * n * r), x(K * n * r), x2(K * n * r), work(grid * n * n), dw(grid * n);
            std::vector<long long> perm(K * n), pw(grid * n);
            for (int b = 0; b < K; ++b)
                for (int i = 0; i < n; ++i)
                    for (int k = 0; k <= i; ++k)
                        H[b * n * n + i * n + k] = H[b * n * n + k * n + i] = normal(gen);
            for (double& v : rhs) v = normal(gen);
            factor_f64(H.data(), L.data(), d.data(), perm.data(), e.data(), K, n, eps, grid, block);
            factor_solve_f64(H.data(), rhs.data(), x.data(), e.data(), work.data(), dw.data(),
                             pw.data(), K, n, r, eps, grid, block);
            solve_f64(L.data(), d.data(), perm.data(), rhs.data(), x2.data(), K, n, r, grid, block);
            for (int t = 0; t < K * n * r; ++t)
                if (x[t] != x2[t]) { std::printf("fused and separate solves differ\n"); return 1; }
        }
    }
    std::printf("ok\n");
    return 0;
}
"""


def test_host_kernel_is_race_free(tmp_path):
    # With one OS thread per CUDA thread and std::barrier for __syncthreads(), a missing
    # barrier in the kernel is a data race that ThreadSanitizer reports (checked by hand:
    # deleting the barrier at the end of a factorisation step is caught).
    if shutil.which("g++") is None:
        pytest.skip("g++ not found")
    src = tmp_path / "ldl_tsan.cpp"
    src.write_text(HOST_PRELUDE + ldl_cupy.CUDA_SOURCE + HOST_HARNESS + TSAN_MAIN)
    exe = tmp_path / "ldl_tsan"
    build = subprocess.run(
        ["g++", "-std=c++20", "-O1", "-g", "-pthread", "-fsanitize=thread", str(src),
         "-o", str(exe)],
        capture_output=True, text=True,
    )
    if build.returncode != 0:
        pytest.skip(f"g++ cannot build with -fsanitize=thread: {build.stderr[-300:]}")
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    if "ThreadSanitizer" in run.stderr and "data race" not in run.stderr:
        pytest.skip(f"ThreadSanitizer does not run here: {run.stderr[-300:]}")
    assert "data race" not in run.stderr, run.stderr[-4000:]
    assert run.returncode == 0 and run.stdout.strip() == "ok", (run.stdout, run.stderr[-2000:])


def _nvcc():
    exe = shutil.which("nvcc")
    if exe is None:
        for candidate in sorted(Path("/usr/local").glob("cuda*/bin/nvcc")):
            exe = str(candidate)
    return exe


def test_cuda_source_compiles_for_the_device(tmp_path):
    # Where a CUDA toolkit is installed (no GPU needed), compile the source for the
    # device with the options given to NVRTC, instantiating the templates as the name
    # expressions do, and check the PTX: all six kernels, no fused multiply-add (numba
    # does not contract a*b - c either), IEEE division and square root; then ptxas for
    # sm_90 without register spills and with few enough registers for 512-thread blocks.
    nvcc = _nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found")
    names = [f"{k}<{t}>" for k in ldl_cupy._KERNELS for t in ("double", "float")]
    src = tmp_path / "ldl.cu"
    src.write_text(ldl_cupy.CUDA_SOURCE + "void* ldl_instances[] = {"
                   + ", ".join(f"(void*)&{name}" for name in names) + "};\n")
    ptx = tmp_path / "ldl.ptx"
    build = subprocess.run([nvcc, "-arch=sm_90", "--ptx", *ldl_cupy.NVRTC_OPTIONS,
                            str(src), "-o", str(ptx)], capture_output=True, text=True)
    if build.returncode != 0 and "nvcc fatal" in build.stderr and "arch" in build.stderr:
        pytest.skip(f"this nvcc cannot target sm_90: {build.stderr[-300:]}")
    assert build.returncode == 0, build.stderr
    text = ptx.read_text()
    assert text.count(".entry") == 6
    assert "fma." not in text
    assert "div.approx" not in text and "sqrt.approx" not in text
    assert "div.rn.f64" in text and "div.rn.f32" in text
    ptxas = Path(nvcc).with_name("ptxas")
    if not ptxas.exists():
        return
    info = subprocess.run([str(ptxas), "-arch=sm_90", "-v", str(ptx),
                           "-o", str(tmp_path / "ldl.cubin")], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    log = info.stdout + info.stderr
    registers = [int(r) for r in re.findall(r"Used (\d+) registers", log)]
    assert len(registers) == 6 and max(registers) <= 65536 // 512, log
    assert re.findall(r"(\d+) bytes spill stores", log) == ["0"] * 6, log


def test_dispatch_routes_cupy_namespace(monkeypatch):
    # Routing only (no GPU involved): a namespace that array-api-compat recognises as
    # CuPy's must reach the CUDA kernels' entry points, and nothing else must.
    import types

    import array_api_compat

    fake_cupy = types.ModuleType("cupy")
    assert array_api_compat.is_cupy_namespace(fake_cupy)
    calls = []
    for name in ("modified_ldl", "ldl_solve", "modified_ldl_solve"):
        monkeypatch.setattr(ldl_cupy, name, lambda *a, _n=name: calls.append(_n) or _n)
    assert ldl.modified_ldl("H", xp=fake_cupy) == "modified_ldl"
    assert ldl.ldl_solve("f", "b", xp=fake_cupy) == "ldl_solve"
    assert ldl.modified_ldl_solve("H", "b", xp=fake_cupy) == "modified_ldl_solve"
    H = np.array([[[4.0, 2.0], [2.0, 3.0]]])
    ldl.modified_ldl_solve(H, np.ones((1, 2)), xp=anp)  # numba
    import array_api_strict

    ldl.modified_ldl_solve(array_api_strict.asarray(H), array_api_strict.ones((1, 2),
                           dtype=array_api_strict.float64), xp=array_api_strict)
    assert calls == ["modified_ldl", "ldl_solve", "modified_ldl_solve"]


def test_launch_shape():
    assert ldl_cupy.block_size(1, 10**5) == 32
    assert ldl_cupy.block_size(93, 1000) == 128
    assert ldl_cupy.block_size(900, 100) == 256
    assert ldl_cupy.block_size(1200, 1) == 512
    for n, K in [(1, 1), (93, 10**5), (1200, 1), (1200, 100)]:
        for itemsize in (4, 8):
            threads = ldl_cupy.block_size(n, K)
            assert threads % 32 == 0
            assert ldl_cupy.shared_bytes(n, threads, itemsize) <= ldl_cupy.MAX_SHARED_BYTES


def test_module_imports_without_cupy():
    # CuPy is imported inside the functions only; importing the dispatcher and the
    # kernel module must not import it (nor compile anything).
    code = ("import sys, chebpan._core.ldl, chebpan._kernels.ldl_cupy as k; "
            "assert 'cupy' not in sys.modules and k._modules == {}")
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))
    assert "ldl_factor_kernel" in ldl_cupy.CUDA_SOURCE


# ---------------------------------------------------------------------- GPU: CuPy path




def tuple_to_host(f):
    import cupy

    return reference.LDLFactors(*(cupy.asnumpy(a) for a in f))


@pytest.mark.cupy
@needs_gpu
@pytest.mark.parametrize("n", SIZES + [93])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_cupy_matches_numba(kind, dtype, n):
    # The kernel performs numba's operations in numba's order (and is compiled without
    # FMA contraction), so the factors agree to rounding -- in fact bit for bit, as on
    # the CPU. On the near-singular matrices a rounding difference anywhere would be
    # amplified, so there only the GMW properties and backward errors are asserted.
    import cupy

    rng = np.random.default_rng(300 * n + len(kind.__name__))
    K = 7
    H = kind(rng, K, n, dtype)
    b = rng.standard_normal((K, n)).astype(dtype)
    B = rng.standard_normal((K, n, 2)).astype(dtype)
    eps = np.finfo(dtype).eps
    tol = 1e-12 if dtype == np.float64 else 8 * eps
    strict = kind is not near_singular

    fn = ldl_numba.modified_ldl(H)
    fc = ldl_cupy.modified_ldl(cupy.asarray(H))
    assert all(isinstance(a, cupy.ndarray) for a in fc)
    assert fc.perm.dtype == cupy.int64 and fc.L.dtype == fc.d.dtype == fc.e.dtype == dtype
    fch = tuple_to_host(fc)
    check_factors(H, fch)
    if strict:
        assert_factors_agree(fch, fn, tol)
    cond = np.linalg.cond((H + fn.e[:, None, :] * np.eye(n, dtype=dtype)).astype(np.float64))
    x_tol = np.maximum(tol, 10 * n * eps * cond) if strict else np.inf
    for rhs in (b, B):
        xn, en = ldl_numba.modified_ldl_solve(H, rhs)
        x, e = ldl_cupy.modified_ldl_solve(cupy.asarray(H), cupy.asarray(rhs))
        assert isinstance(x, cupy.ndarray) and x.shape == rhs.shape and x.dtype == dtype
        assert isinstance(e, cupy.ndarray) and e.dtype == dtype
        x, e = cupy.asnumpy(x), cupy.asnumpy(e)
        check_solve(H, e, rhs, x)
        if strict:
            np.testing.assert_allclose(e, en, rtol=tol, atol=tol * np.abs(fn.d).max())
            assert np.all(rel_err(x, xn) <= x_tol), rel_err(x, xn)
        y = cupy.asnumpy(ldl_cupy.ldl_solve(fc, cupy.asarray(rhs)))
        assert y.shape == rhs.shape
        check_solve(H, fch.e, rhs, y)
        if strict:
            assert np.all(rel_err(y, xn) <= x_tol), rel_err(y, xn)


def assert_solution_agrees(H, e, x, x_ref):
    """x agrees with x_ref to 10 n ε cond(H + E), relative to max |x_ref|."""
    n = H.shape[-1]
    eps = np.finfo(H.dtype).eps
    cond = np.linalg.cond((H + e[:, None, :] * np.eye(n, dtype=H.dtype)).astype(np.float64))
    err = rel_err(x, x_ref)
    assert np.all(err <= np.maximum(1e-12, 10 * n * eps * cond)), (err, cond)


@pytest.mark.cupy
@needs_gpu
@pytest.mark.parametrize("n", [5, 93, 300])
def test_cupy_grid_stride_and_block_sizes(monkeypatch, n):
    # The thread mapping must not change a single bit: every entry sees the same
    # operations whatever the block size, and capped grids (blocks looping over the
    # batch, scratch slots reused) only change who computes what.
    import cupy

    rng = np.random.default_rng(n)
    H = indefinite(rng, 9, n)
    b = rng.standard_normal((9, n))
    Hg, bg = cupy.asarray(H), cupy.asarray(b)
    x0, e0 = (cupy.asnumpy(a) for a in ldl_cupy.modified_ldl_solve(Hg, bg))
    f0 = tuple_to_host(ldl_cupy.modified_ldl(Hg))
    xn, en = ldl_numba.modified_ldl_solve(H, b)
    assert_solution_agrees(H, en, x0, xn)
    for threads in (32, 64, 256, 512):
        monkeypatch.setattr(ldl_cupy, "block_size", lambda n, K, _t=threads: _t)
        for max_grid, scratch in ((1 << 16, 1 << 30), (2, 1 << 30), (1 << 16, 1)):
            monkeypatch.setattr(ldl_cupy, "MAX_GRID", max_grid)
            monkeypatch.setattr(ldl_cupy, "SCRATCH_BYTES", scratch)
            x, e = ldl_cupy.modified_ldl_solve(Hg, bg)
            np.testing.assert_array_equal(cupy.asnumpy(x), x0)
            np.testing.assert_array_equal(cupy.asnumpy(e), e0)
            f = ldl_cupy.modified_ldl(Hg)
            for a, c in zip(tuple_to_host(f), f0):
                np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(cupy.asnumpy(ldl_cupy.ldl_solve(f, bg)), x0)


@pytest.mark.cupy
@needs_gpu
def test_cupy_large_batch_and_large_n():
    import cupy

    rng = np.random.default_rng(11)
    H = positive_definite(rng, 2000, 8)
    b = rng.standard_normal((2000, 8))
    x, e = ldl_cupy.modified_ldl_solve(cupy.asarray(H), cupy.asarray(b))
    xn, en = ldl_numba.modified_ldl_solve(H, b)
    assert_solution_agrees(H, en, cupy.asnumpy(x), xn)
    assert bool(cupy.all(e == 0))
    H = indefinite(rng, 2, 1000)
    b = rng.standard_normal((2, 1000))
    x, e = ldl_cupy.modified_ldl_solve(cupy.asarray(H), cupy.asarray(b))
    xn, en = ldl_numba.modified_ldl_solve(H, b)
    check_solve(H, cupy.asnumpy(e), b, cupy.asnumpy(x))
    assert_solution_agrees(H, en, cupy.asnumpy(x), xn)


@pytest.mark.cupy
@needs_gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cupy_dispatcher(dtype):
    import array_api_compat
    import cupy

    H = np.array([[[4.0, 2.0, 1.0], [2.0, 6.0, 3.0], [1.0, 3.0, -0.004]]], dtype=dtype)
    for xp in (cupy, array_api_compat.array_namespace(cupy.asarray(H))):
        Hc = xp.asarray(H)
        f = ldl.modified_ldl(Hc, xp=xp)
        assert isinstance(f.L, cupy.ndarray)
        np.testing.assert_array_equal(cupy.asnumpy(f.perm), [[1, 0, 2]])
        x, e = ldl.modified_ldl_solve(Hc, xp.asarray([[1.0, 2.0, 3.0]], dtype=dtype), xp=xp)
        assert isinstance(x, cupy.ndarray) and x.dtype == dtype
        np.testing.assert_allclose(cupy.asnumpy(e), [[0.0, 0.0, 3.008]], atol=1e-5)
        y = ldl.ldl_solve(f, xp.asarray([[1.0, 2.0, 3.0]], dtype=dtype), xp=xp)
        np.testing.assert_allclose(cupy.asnumpy(y), cupy.asnumpy(x), rtol=1e-5)


@pytest.mark.cupy
@needs_gpu
def test_cupy_input_validation():
    import cupy

    with pytest.raises(ValueError):
        ldl_cupy.modified_ldl(cupy.zeros((3, 3)))
    with pytest.raises(TypeError):
        ldl_cupy.modified_ldl(cupy.zeros((1, 3, 3), dtype=cupy.int64))
    with pytest.raises(ValueError):
        ldl_cupy.modified_ldl_solve(cupy.eye(3)[None], cupy.ones((1, 4)))
    x, e = ldl_cupy.modified_ldl_solve(cupy.zeros((0, 4, 4)), cupy.zeros((0, 4)))
    assert x.shape == (0, 4) and e.shape == (0, 4)

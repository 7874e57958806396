"""Modified Cholesky LDLᵀ (Gill–Murray–Wright) as CUDA kernels on CuPy arrays.

Same algorithm, conventions and arithmetic as :mod:`chebpan._kernels.ldl_numba`: physical
symmetric row/column swaps in a row-major work matrix whose strict lower triangle is
overwritten by L, pivot = largest remaining ``|c_qq|`` (smallest original index on ties),
``d_j = max(|c_jj|, θ_j² / β², δ)`` and the Schur update ``c_ik -= (c_ij / d_j) c_kj``.
Imported lazily by :mod:`chebpan._kernels.dispatch` for CuPy arrays; CuPy itself is
imported inside the functions only, so this module imports on a machine without CuPy.
The CUDA source is the file ``ldl.cu`` next to this module (:data:`CUDA_SOURCE`).

Parallel layout
---------------
One **thread block per batch member** (blocks loop over the batch with a grid stride
when the grid is capped). Both regimes of the solver have to be served: K ≈ 10⁵ small
matrices (n ≈ 10–100, one per segment of a batch of ODEs) and K = 1 to a few hundred
large ones (n up to ≈ 1200, the Newton matrix of a big system). With one *thread* per
matrix, a single n = 900 factorisation (≈ 2.4·10⁸ multiply-subtracts) would run serially
on one GPU thread, seconds per call. A block instead spreads every O(n²) step (pivot
search, symmetric swap, θ, the Schur update of the trailing triangle, each substitution
step) over its threads, so even K = 1 runs at the speed of one SM; for many small
matrices the block shrinks to a single warp (32 threads for n ≤ 32), so little is idle,
and the 10⁵ blocks keep every SM busy. The work matrix lives in global memory (n² floats
do not fit in shared memory for n ≈ 1200); the row-major Schur update is coalesced
(one group of 32 threads per row, consecutive threads on consecutive columns). Only the
column ``w = C[j+1:, j]`` and the reduction scratch sit in shared memory, which bounds n
at about 5000 (float64) or 10000 (float32). The price of the layout is that a single
large matrix (K = 1) runs on one SM only; a few hundred of them fill the GPU.
All barriers are block-wide ``__syncthreads()`` in uniform control flow; there is no
warp-synchronous code.

Exact arithmetic
----------------
Every floating-point operation is the numba kernel's, in the same order: the
reductions are maxima (exact in any order) and the pivot choice a lexicographic
maximum of ``(|c_qq|, -perm[q])``, which is unique, so the tree reductions return what
the serial loops return; the Schur update and the substitutions update each entry in
the numba order (the forward substitution runs column-wise, which subtracts
``l_ik y_k`` from ``y_i`` in increasing k exactly as numba's dot-product form does).
As in numba, γ, ξ, δ, β², θ and ``d_j`` are formed in double precision for float32
input and ``d_j`` is then rounded to float32. The source is compiled without
multiply-add contraction (``--fmad=false``) and with IEEE division and square root, so
on the GPU the results agree with numba to rounding, and usually bit for bit.

Checking without a GPU
----------------------
The CUDA source :data:`CUDA_SOURCE` is also valid C++ once a few CUDA keywords are
defined away (``HOST_PRELUDE`` in ``tests/test_ldl_cupy.py``): the tests compile it with
g++ and run the kernels on the CPU with one OS thread per CUDA thread and a
``std::barrier`` for ``__syncthreads()``, so the very text launched on the GPU is checked
against numba (to 1e-12 in float64 and a few ulps in float32; bit for bit in practice)
and, under ThreadSanitizer, for missing barriers. Where a CUDA toolkit is installed the tests also compile it with nvcc and the
options of :data:`NVRTC_OPTIONS` and inspect the PTX (no FMA, IEEE division).
"""

from __future__ import annotations

import importlib.resources
import threading

import numpy as np

from .dispatch import LDLFactors

__all__ = ["CUDA_SOURCE", "modified_ldl", "ldl_solve", "modified_ldl_solve"]

#: CUDA C++ source of the three kernels (templated on the float type T), shipped as
#: ``ldl.cu`` next to this module.
CUDA_SOURCE = importlib.resources.files(__package__).joinpath("ldl.cu").read_text()

#: NVRTC options: no multiply-add contraction, IEEE division/sqrt, denormals kept, so
#: that the arithmetic is numba's.
NVRTC_OPTIONS = ("--std=c++14", "--fmad=false", "--prec-div=true", "--prec-sqrt=true",
                 "--ftz=false")

_KERNELS = ("ldl_factor_kernel", "ldl_factor_solve_kernel", "ldl_solve_kernel")
_CTYPES = {"float64": "double", "float32": "float"}

#: Largest number of blocks launched; blocks loop over the rest of the batch.
MAX_GRID = 1 << 16
#: Bound on the global scratch of :func:`modified_ldl_solve` (one n x n work matrix
#: per block): the grid is capped so that it stays below this many bytes.
SCRATCH_BYTES = 1 << 30
#: Dynamic shared memory available without opting in, per block.
MAX_SHARED_BYTES = 48 * 1024

_modules: dict = {}
_lock = threading.Lock()


def _module(dtype):
    """The compiled :class:`cupy.RawModule` for ``dtype`` (compiled on first use)."""
    import cupy

    key = np.dtype(dtype).name
    with _lock:
        module = _modules.get(key)
        if module is None:
            ctype = _CTYPES[key]
            module = cupy.RawModule(
                code=CUDA_SOURCE,
                options=NVRTC_OPTIONS,
                name_expressions=[f"{name}<{ctype}>" for name in _KERNELS],
            )
            _modules[key] = module
    return module


def _kernel(name, dtype):
    return _module(dtype).get_function(f"{name}<{_CTYPES[np.dtype(dtype).name]}>")


def block_size(n, K):
    """Threads per block: one warp up to n = 32, then up to 256 (512 for a few large n).

    Parameters
    ----------
    n : int
        Matrix size.
    K : int
        Batch size.

    Returns
    -------
    int
        A multiple of 32.

    Examples
    --------
    >>> [block_size(n, 1000) for n in (1, 32, 33, 93, 900)]
    [32, 32, 64, 128, 256]
    >>> block_size(900, 4)
    512
    """
    threads = 32
    while threads < n and threads < 256:
        threads *= 2
    if K <= 64 and n > 512:
        threads = 512  # few blocks: make each one wider
    return threads


def shared_bytes(n, threads, itemsize):
    """Dynamic shared memory of one block: two double and one int array of ``threads``
    entries and the column w of n entries.

    Parameters
    ----------
    n, threads, itemsize : int

    Returns
    -------
    int

    Examples
    --------
    >>> shared_bytes(93, 128, 8)
    3304
    """
    return 2 * threads * 8 + n * itemsize + threads * 4


def _launch_shape(n, K, itemsize):
    threads = block_size(n, K)
    smem = shared_bytes(n, threads, itemsize)
    if smem > MAX_SHARED_BYTES:
        raise ValueError(
            f"n = {n} is too large for the CuPy LDLᵀ kernel ({smem} bytes of shared "
            f"memory per block, at most {MAX_SHARED_BYTES})"
        )
    return threads, smem


def _as_matrix_batch(H):
    import cupy

    H = cupy.ascontiguousarray(H)
    if H.ndim != 3 or H.shape[-1] != H.shape[-2]:
        raise ValueError(f"H must have shape (K, n, n), got {H.shape}")
    if H.dtype not in (np.float32, np.float64):
        raise TypeError(f"H must be float32 or float64, got {H.dtype}")
    return H


def _rhs_and_out(b, dtype, K, n):
    import cupy

    b = cupy.ascontiguousarray(b, dtype=dtype)
    if b.shape[:2] != (K, n) or b.ndim not in (2, 3):
        raise ValueError(f"b must have shape ({K}, {n}) or ({K}, {n}, r), got {b.shape}")
    rhs = b[:, :, None] if b.ndim == 2 else b
    return rhs, cupy.empty(rhs.shape, dtype=dtype), b.ndim == 2


def _eps(dtype):
    return np.float64(np.finfo(dtype).eps)


def modified_ldl(H) -> LDLFactors:
    """Modified Cholesky ``P (H + E) Pᵀ = L D Lᵀ`` (CUDA kernel, one block per matrix).

    See :func:`chebpan._core.ldl_reference.modified_ldl` for the algorithm and parameters; the
    arithmetic is that of :func:`chebpan._kernels.ldl_numba.modified_ldl`.

    Parameters
    ----------
    H : cupy.ndarray, shape (K, n, n)
        Batch of symmetric float32/float64 matrices; only the lower triangle is read.

    Returns
    -------
    LDLFactors
        ``(L, d, perm, e)`` as CuPy arrays on the device of ``H``: L (K, n, n),
        d (K, n), perm (K, n) int64, e (K, n) in the original ordering.

    Raises
    ------
    ValueError
        If ``H`` is not (K, n, n), or n is too large for the block's shared memory.
    TypeError
        If ``H`` is not float32/float64.

    Examples
    --------
    >>> import cupy  # doctest: +SKIP
    >>> H = cupy.asarray([[[4.0, 2.0, 1.0], [2.0, 6.0, 3.0], [1.0, 3.0, -0.004]]])  # doctest: +SKIP
    >>> modified_ldl(H).e.round(6)  # doctest: +SKIP
    array([[0.   , 0.   , 3.008]])
    """
    import cupy

    H = _as_matrix_batch(H)
    K, n, _ = H.shape
    L = cupy.empty_like(H)
    d = cupy.empty((K, n), dtype=H.dtype)
    perm = cupy.empty((K, n), dtype=cupy.int64)
    e = cupy.empty((K, n), dtype=H.dtype)
    if K == 0 or n == 0:
        return LDLFactors(L, d, perm, e)
    threads, smem = _launch_shape(n, K, H.dtype.itemsize)
    grid = min(K, MAX_GRID)
    _kernel("ldl_factor_kernel", H.dtype)(
        (grid,), (threads,),
        (H, L, d, perm, e, np.int32(K), np.int32(n), _eps(H.dtype)),
        shared_mem=smem,
    )
    return LDLFactors(L, d, perm, e)


def ldl_solve(factors: LDLFactors, b):
    """Solve ``(H + E) x = b`` given the factors from :func:`modified_ldl` (CUDA kernel).

    Parameters
    ----------
    factors : LDLFactors
        CuPy factors of a batch of K matrices of size n (L with zeros above the
        diagonal, as :func:`modified_ldl` and the reference return it).
    b : cupy.ndarray, shape (K, n) or (K, n, r)
        Right-hand side(s); cast to the dtype of the factors.

    Returns
    -------
    x : cupy.ndarray, same shape as ``b``

    Examples
    --------
    >>> import cupy  # doctest: +SKIP
    >>> f = modified_ldl(cupy.asarray([[[4.0, 2.0], [2.0, 3.0]]]))  # doctest: +SKIP
    >>> ldl_solve(f, cupy.asarray([[6.0, 5.0]])).round(12)  # doctest: +SKIP
    array([[1., 1.]])
    """
    import cupy

    L = cupy.ascontiguousarray(factors[0])
    d = cupy.ascontiguousarray(factors[1], dtype=L.dtype)
    perm = cupy.ascontiguousarray(factors[2], dtype=cupy.int64)
    K, n = L.shape[0], L.shape[-1]
    rhs, x, vector = _rhs_and_out(b, L.dtype, K, n)
    if K > 0 and n > 0 and rhs.shape[2] > 0:
        threads, smem = _launch_shape(n, K, L.dtype.itemsize)
        _kernel("ldl_solve_kernel", L.dtype)(
            (min(K, MAX_GRID),), (threads,),
            (L, d, perm, rhs, x, np.int32(K), np.int32(n), np.int32(rhs.shape[2])),
            shared_mem=smem,
        )
    return x[:, :, 0] if vector else x


def modified_ldl_solve(H, b):
    """Factorise and solve ``(H + E) x = b`` in one call (CUDA kernel).

    The Newton-step hot path: one launch, the factors stay in a global scratch of one
    n x n matrix per block (the grid is capped so that it stays under
    :data:`SCRATCH_BYTES`), and only x and e are returned.

    Parameters
    ----------
    H : cupy.ndarray, shape (K, n, n)
        Batch of symmetric float32/float64 matrices; only the lower triangle is read.
    b : cupy.ndarray, shape (K, n) or (K, n, r)
        Right-hand side(s); cast to the dtype of H.

    Returns
    -------
    x : cupy.ndarray, same shape as ``b``
        Solution of ``(H + E) x = b``.
    e : cupy.ndarray, shape (K, n)
        Diagonal of the modification E, in the original ordering.

    Examples
    --------
    >>> import cupy  # doctest: +SKIP
    >>> H = cupy.asarray([[[4.0, 2.0], [2.0, 3.0]]])  # doctest: +SKIP
    >>> x, e = modified_ldl_solve(H, cupy.asarray([[6.0, 5.0]]))  # doctest: +SKIP
    >>> x.round(12), e  # doctest: +SKIP
    (array([[1., 1.]]), array([[0., 0.]]))
    """
    import cupy

    H = _as_matrix_batch(H)
    K, n, _ = H.shape
    rhs, x, vector = _rhs_and_out(b, H.dtype, K, n)
    e = cupy.empty((K, n), dtype=H.dtype)
    if K > 0 and n > 0:
        threads, smem = _launch_shape(n, K, H.dtype.itemsize)
        per_block = n * n * H.dtype.itemsize
        grid = max(1, min(K, MAX_GRID, SCRATCH_BYTES // per_block))
        work = cupy.empty((grid, n, n), dtype=H.dtype)
        dwork = cupy.empty((grid, n), dtype=H.dtype)
        pwork = cupy.empty((grid, n), dtype=cupy.int64)
        _kernel("ldl_factor_solve_kernel", H.dtype)(
            (grid,), (threads,),
            (H, rhs, x, e, work, dwork, pwork, np.int32(K), np.int32(n),
             np.int32(rhs.shape[2]), _eps(H.dtype)),
            shared_mem=smem,
        )
    return (x[:, :, 0] if vector else x), e

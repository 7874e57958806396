"""Compiled kernels for the hot loops, and the BLAS-thread policy.

numba kernels on NumPy arrays, CUDA kernels (``ldl.cu``) on CuPy arrays; which one runs
is decided by :mod:`~chebpan._kernels.dispatch`.  Nothing here imports the rest of
chebpan.
"""

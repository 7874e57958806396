"""The numerics of one segment, written against the array API only.

Chebyshev basis, node values and the Picard iteration, Newton steps with a modified
LDLᵀ, the strong-Wolfe line search and the error estimates.  Nothing here calls NumPy
(``tests/test_backends.py`` checks it line by line): every function takes the namespace
``xp`` of its arrays, so the same code runs on NumPy, CuPy and ``array_api_strict``.
Kernels for the hot loops are chosen by :mod:`chebpan._kernels.dispatch`.
"""

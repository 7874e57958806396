"""Which kernels run the inner loops of a solve, chosen from the array namespace.

- NumPy: numba kernels (:mod:`~chebpan._kernels.ldl_numba`,
  :mod:`~chebpan._kernels.picard_numba`, :mod:`~chebpan._kernels.extrapolation_numba`,
  :mod:`~chebpan._kernels.newton_numba`, :mod:`~chebpan._kernels.schur_numba`, ..., imported
  on first use), unless the environment
  variable ``CHEBPAN_DISABLE_NUMBA=1`` (read when chebpan is imported) selects the
  array-API reference code of :mod:`chebpan._core`;
- CuPy: the CUDA LDLᵀ kernels (:mod:`~chebpan._kernels.ldl_cupy`, compiled with NVRTC
  on first use per dtype and cached); the Picard step runs as array-API code;
- anything else (``array_api_strict``, torch, ...): the reference code (None here).

:class:`LDLFactors` is what every LDLᵀ implementation returns (the kernels and the
reference of :mod:`chebpan._core.ldl_reference`).
"""

from __future__ import annotations

import importlib
import os
from typing import Any, NamedTuple

import array_api_compat

__all__ = ["LDLFactors", "use_numba", "ldl_kernels", "picard_kernel", "estimates_kernel",
           "step_change_kernel", "extrapolation_kernel", "difference_kernels",
           "newton_kernels", "singularity_kernel", "polynomial_kernels", "schur_kernels",
           "initial_lengths_kernel", "finite_kernel"]


class LDLFactors(NamedTuple):
    """Factors of ``P (H + E) Pᵀ = L D Lᵀ``.

    Attributes
    ----------
    L : array, shape (K, n, n)
        Unit lower triangular factor (in pivoted order).
    d : array, shape (K, n)
        Diagonal of D (in pivoted order); every entry is at least δ.
    perm : integer array, shape (K, n)
        Pivot order: ``(P H Pᵀ)[i, j] == H[perm[i], perm[j]]``.
    e : array, shape (K, n)
        Diagonal of the modification E >= 0, in the original ordering of H.
    """

    L: Any
    d: Any
    perm: Any
    e: Any


#: ``CHEBPAN_DISABLE_NUMBA=1`` at import: the reference code on NumPy too.  Read once:
#: dispatch runs several times per round, and reading the environment costs microseconds.
NUMBA_DISABLED = os.environ.get("CHEBPAN_DISABLE_NUMBA", "").strip() in ("1", "true", "True",
                                                                          "yes")


def use_numba(xp) -> bool:
    """Whether the numba kernels run for namespace ``xp`` (NumPy, numba not disabled)."""
    if NUMBA_DISABLED:
        return False
    numpy_like = _IS_NUMPY.get(xp)
    if numpy_like is None:  # (asked several times per round: the answer is kept)
        numpy_like = _IS_NUMPY[xp] = array_api_compat.is_numpy_namespace(xp)
    return numpy_like


_IS_NUMPY = {}


def _kernel_module(name):
    """The kernel module ``chebpan._kernels.<name>``, imported on first use (numba and
    CuPy load lazily) and then kept: dispatch runs several times per round."""
    module = _MODULES.get(name)
    if module is None:
        module = _MODULES[name] = importlib.import_module(f"{__package__}.{name}")
    return module


_MODULES = {}


def ldl_kernels(xp):
    """The LDLᵀ kernel module for ``xp`` (numba for NumPy, CUDA for CuPy), or None for
    the reference code."""
    if use_numba(xp):
        return _kernel_module("ldl_numba")
    if array_api_compat.is_cupy_namespace(xp):
        return _kernel_module("ldl_cupy")
    return None


def picard_kernel(xp):
    """The numba Picard step (:func:`chebpan._kernels.picard_numba.picard_step`) for
    ``xp``, or None for the reference code."""
    return _kernel_module("picard_numba").picard_step if use_numba(xp) else None


def schur_kernels():
    """The numba back substitutions of the structured solve with LAPACK factors
    (:mod:`chebpan._kernels.schur_numba`; NumPy only), or None for the Python loop of
    :func:`chebpan._kernels.schur.substitute`."""
    return None if NUMBA_DISABLED else _kernel_module("schur_numba")


def polynomial_kernels(xp):
    """The numba kernels of a segment's polynomial (node values, end value, coefficients,
    node times: :mod:`chebpan._kernels.polynomial_numba`) for ``xp``, or None for the
    reference code."""
    return _kernel_module("polynomial_numba") if use_numba(xp) else None


def estimates_kernel(xp):
    """The numba error estimates of ended attempts
    (:func:`chebpan._kernels.estimates_numba.segment_estimates`) for ``xp``, or None for
    the reference code."""
    return _kernel_module("estimates_numba").segment_estimates if use_numba(xp) else None


def step_change_kernel(xp):
    """The numba change of node values under a step
    (:func:`chebpan._kernels.estimates_numba.step_change`) for ``xp``, or None for the
    reference code."""
    return _kernel_module("estimates_numba").step_change if use_numba(xp) else None


def start_gaps_kernel(xp):
    """The numba start-slope gaps of converged stiff-basis attempts
    (:func:`chebpan._kernels.estimates_numba.start_gaps`) for ``xp``, or None for the
    reference code."""
    return _kernel_module("estimates_numba").start_gaps if use_numba(xp) else None


def initial_lengths_kernel(xp):
    """The numba first lengths (:func:`chebpan._kernels.initial_numba.initial_lengths`)
    for ``xp`` (float64 only), or None for the reference code."""
    return _kernel_module("initial_numba").initial_lengths if use_numba(xp) else None


def finite_kernel(xp):
    """The numba finiteness of a batch round's instances
    (:func:`chebpan._kernels.finite_numba.finite_instances`) for ``xp``, or None for the
    reference code."""
    return _kernel_module("finite_numba").finite_instances if use_numba(xp) else None


def extrapolation_kernel(xp):
    """The numba extrapolated starts of a batch
    (:func:`chebpan._kernels.extrapolation_numba.extrapolated_guess`) for ``xp``, or None
    for the reference code."""
    return _kernel_module("extrapolation_numba").extrapolated_guess if use_numba(xp) else None


def difference_kernels(xp):
    """The numba kernels of forward-difference Jacobians
    (:mod:`chebpan._kernels.difference_numba`) for ``xp``, or None for the reference
    code."""
    return _kernel_module("difference_numba") if use_numba(xp) else None


def newton_kernels(xp):
    """The numba kernels of the dense Gauss–Newton step
    (:mod:`chebpan._kernels.newton_numba`) for ``xp``, or None for the reference code."""
    return _kernel_module("newton_numba") if use_numba(xp) else None


def singularity_kernel(xp):
    """The numba length limit from singularities
    (:func:`chebpan._kernels.singularities_numba.singularity_limits`) for ``xp``, or None
    for the reference code."""
    return _kernel_module("singularities_numba").singularity_limits if use_numba(xp) else None

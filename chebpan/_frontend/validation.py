"""Argument checks for the scipy-compatible front end ``chebpan.solve_ivp``.

Each function enforces one rule of :func:`scipy.integrate.solve_ivp` and
returns the cleaned value.  Exception types and messages are the same as
SciPy's (checked against SciPy 1.17), so code that catches SciPy's errors
keeps working.  Where SciPy hangs or fails later with an unrelated NumPy
error, we raise a clear error instead; these places are marked
"Deviation from SciPy" below.

The functions are meant to be called in SciPy's order, which decides which
message a user sees when several arguments are wrong:

1. ``validate_method``, ``validate_t_span``, ``wrap_args``/``wrap_jac``
   (:mod:`chebpan._frontend.arguments`),
   ``validate_t_eval`` (in ``solve_ivp`` itself);
2. ``warn_extraneous``, ``validate_y0``, ``validate_max_step``,
   ``validate_tol``, first call of ``fun`` (``check_fun_output``),
   ``validate_first_step`` (in the solver's constructor).
"""

from __future__ import annotations

import inspect
import math

import numpy as np
from scipy.integrate import BDF, DOP853, LSODA, RK23, RK45, OdeSolver, Radau

from .._output.result import warn_user
from .arguments import unpack_args

__all__ = [
    "EPS",
    "SCIPY_METHODS",
    "validate_first_step",
    "validate_max_step",
    "validate_method",
    "validate_t_eval",
    "validate_t_span",
    "validate_tol",
    "validate_y0",
    "warn_extraneous",
]

EPS = np.finfo(float).eps

#: SciPy's method table, in SciPy's order (its repr appears in messages).
SCIPY_METHODS = {
    "RK23": RK23,
    "RK45": RK45,
    "DOP853": DOP853,
    "Radau": Radau,
    "BDF": BDF,
    "LSODA": LSODA,
}


class _PanMethod:
    """Placeholder shown for ``'PAN'`` in the method error message."""

    def __repr__(self):
        return "<chebpan PAN solver>"


#: Methods listed in the "`method` must be one of ..." message.
_METHODS_FOR_MESSAGE = {**SCIPY_METHODS, "PAN": _PanMethod()}


def validate_method(method):
    """Classify the ``method`` argument.

    Parameters
    ----------
    method : str or type
        ``'PAN'``, one of SciPy's method names, or a subclass of
        :class:`scipy.integrate.OdeSolver`.

    Returns
    -------
    str
        ``'PAN'`` for chebpan's solver, ``'scipy'`` for anything that the
        front end forwards to :func:`scipy.integrate.solve_ivp`.

    Raises
    ------
    ValueError
        For any other value; SciPy's message with ``'PAN'`` added.
    TypeError
        For an unhashable value (as in SciPy).
    """
    if method in _METHODS_FOR_MESSAGE:
        return "PAN" if method == "PAN" else "scipy"
    if inspect.isclass(method) and issubclass(method, OdeSolver):
        return "scipy"
    raise ValueError(
        f"`method` must be one of {_METHODS_FOR_MESSAGE} or OdeSolver class.")


def validate_t_span(t_span):
    """Unpack ``t_span`` into two floats.

    Parameters
    ----------
    t_span : iterable
        Two float-convertible values ``(t0, tf)``.

    Returns
    -------
    tuple of float
        ``(t0, tf)``.

    Raises
    ------
    ValueError
        Wrong number of items (Python's unpacking message, as in SciPy), or
        a NaN value (deviation from SciPy, which loops forever).
    TypeError
        A value that ``float`` does not accept, such as a complex number.
    """
    t0, tf = map(float, t_span)
    if math.isnan(t0) or math.isnan(tf):
        raise ValueError("`t_span` must not contain NaN.")
    return t0, tf


def _check_y0_ndim(y0, batch):
    if batch:
        if y0.ndim != 2:
            raise ValueError(
                f"`y0` must be 2-dimensional (K, n) for a batch of K initial value "
                f"problems, but has shape {tuple(y0.shape)}; solve a single IVP with "
                "`chebpan.solve_ivp`.")
    elif y0.ndim != 1:
        raise ValueError("`y0` must be 1-dimensional.")


def validate_y0(y0, *, support_complex=True, batch=False):
    """Convert the initial state to a finite 1-D float64/complex128 array.

    Parameters
    ----------
    y0 : array_like
        Initial state.
    support_complex : bool, optional
        Whether the chosen solver accepts a complex state (``False`` gives
        SciPy's Radau/LSODA message for a complex ``y0``).
    batch : bool, optional
        Whether ``y0`` is a batch of IVPs: then it must be 2-D (K, n), otherwise
        1-D (scipy's message).

    Returns
    -------
    numpy.ndarray
        complex128 if ``y0`` is complex, otherwise float64; shape ``(n,)``, or
        ``(K, n)`` with ``batch``.

    Raises
    ------
    ValueError
        Complex but unsupported, not 1-D (2-D with ``batch``), or not finite (in
        SciPy's order).
    """
    y0 = np.asarray(y0)
    if np.issubdtype(y0.dtype, np.complexfloating):
        if not support_complex:
            raise ValueError("`y0` is complex, but the chosen solver does "
                             "not support integration in a complex domain.")
        dtype = complex
    else:
        dtype = float  # float32 too, as scipy (float32 solves: an array-API backend)
    y0 = y0.astype(dtype, copy=False)
    _check_y0_ndim(y0, batch)
    if not np.isfinite(y0).all():
        raise ValueError("All components of the initial state `y0` must be finite.")
    return y0


def validate_y0_array(y0, xp, *, batch=False):
    """:func:`validate_y0` for a non-NumPy backend: a finite 1-D real array of ``xp``.

    float32 and float64 are kept; other real dtypes become float64.  Complex
    states are solved on the NumPy backend only.
    """
    y0 = xp.asarray(y0)
    if xp.isdtype(y0.dtype, "complex floating"):
        raise ValueError("A complex `y0` is supported on the NumPy backend only.")
    if y0.dtype not in (xp.float32, xp.float64):
        y0 = xp.astype(y0, xp.float64)
    _check_y0_ndim(y0, batch)
    if not bool(xp.all(xp.isfinite(y0))):
        raise ValueError("All components of the initial state `y0` must be finite.")
    return y0


def validate_batch_args(batch_args, y0, *, xp):
    """Per-instance arguments of a batched solve: a tuple of arrays with K rows.

    Each is placed on ``y0``'s device; a NumPy float/int array keeps its dtype.

    Raises
    ------
    ValueError
        ``batch_args`` is an array itself rather than a tuple of arrays, or an entry
        does not have K rows (the message names the entry, its shape and the shape
        expected).
    """
    if batch_args is None:
        return ()
    k = y0.shape[0]
    if hasattr(batch_args, "shape") and hasattr(batch_args, "dtype"):
        raise ValueError(
            f"`batch_args` must be a tuple of arrays with K = {k} rows each, e.g. "
            f"`batch_args=(rho,)`, but is an array of shape {tuple(batch_args.shape)}.")
    batch_args = unpack_args(batch_args)
    checked = []
    for i, value in enumerate(batch_args):
        value = xp.asarray(value, device=y0.device)
        if value.ndim == 0 or value.shape[0] != k:
            raise ValueError(
                f"`batch_args[{i}]` must have K = {k} rows, one per instance of the "
                f"batch (shape ({k},) or ({k}, p)), but has shape {tuple(value.shape)}.")
        checked.append(value)
    return tuple(checked)


#: validate_tol's messages, shared by its path for two Python numbers and its array path.
_ATOL_NOT_POSITIVE = "`atol` must be positive."
_RTOL_NAN = "`rtol` must not contain NaN."


def _warn_small_rtol(eps):
    warn_user("At least one element of `rtol` is too small. "
              f"Setting `rtol = np.maximum(rtol, {100 * eps})`.")


def validate_tol(rtol, atol, n, *, eps=EPS):
    """Check and clip the tolerances.

    Parameters
    ----------
    rtol, atol : float or array_like
        Relative and absolute tolerances, scalars or shape ``(n,)``.
    n : int
        Number of equations.
    eps : float, optional
        Machine epsilon of the working dtype (in float32, ``rtol`` is clipped
        to ``100 eps`` of float32).

    Returns
    -------
    rtol, atol : float or numpy.ndarray
        float64 values; ``rtol`` clipped to at least ``100 * EPS`` (with
        SciPy's ``UserWarning``).  A size-1 ``rtol`` comes back as a float.

    Raises
    ------
    ValueError
        ``atol`` of the wrong shape or negative (SciPy's messages).
        Deviations from SciPy: ``rtol`` of a shape that is neither scalar,
        size 1 nor ``(n,)`` (SciPy fails later with a broadcast error), NaN in
        ``rtol`` (SciPy loops forever) and NaN in ``atol`` (reported as not
        positive; SciPy loops forever).
    """
    if type(rtol) in (float, int) and type(atol) in (float, int):
        # (the usual call, two Python numbers: the checks below without arrays)
        rtol, atol = float(rtol), float(atol)
        if rtol < 100 * eps:
            _warn_small_rtol(eps)
            rtol = float(max(rtol, 100 * eps))
        if atol < 0 or math.isnan(atol):
            raise ValueError(_ATOL_NOT_POSITIVE)
        if math.isnan(rtol):
            raise ValueError(_RTOL_NAN)
        return rtol, atol
    rtol = np.asarray(rtol)
    if np.any(rtol < 100 * eps):
        _warn_small_rtol(eps)
        rtol = np.maximum(rtol, 100 * eps)

    atol = np.asarray(atol)
    if atol.ndim > 0 and atol.shape != (n,):
        raise ValueError("`atol` has wrong shape.")
    if np.any(atol < 0) or np.any(np.isnan(atol)):
        raise ValueError(_ATOL_NOT_POSITIVE)

    # Checks SciPy does not make; done last so that every input SciPy
    # rejects above gets SciPy's message.
    if rtol.size != 1 and rtol.shape != (n,):
        raise ValueError("`rtol` has wrong shape.")
    if np.any(np.isnan(rtol)):
        raise ValueError(_RTOL_NAN)

    rtol = float(rtol.reshape(-1)[0]) if rtol.size == 1 else rtol.astype(float)
    atol = float(atol) if atol.ndim == 0 else atol.astype(float)
    return rtol, atol


def validate_first_step(first_step, t0, t_bound):
    """Check the user's initial step size.

    Parameters
    ----------
    first_step : float
        Requested first step, must satisfy ``0 < first_step <= |t_bound - t0|``.
    t0, t_bound : float
        Ends of the integration interval.

    Returns
    -------
    float
        ``first_step``.

    Raises
    ------
    ValueError
        Not positive (NaN included; SciPy loops forever on NaN), or larger
        than the interval.
    """
    if first_step <= 0 or np.isnan(first_step):
        raise ValueError("`first_step` must be positive.")
    if first_step > np.abs(t_bound - t0):
        raise ValueError("`first_step` exceeds bounds.")
    return float(first_step)


def validate_max_step(max_step):
    """Check the maximum step size.

    Parameters
    ----------
    max_step : float
        Must be positive; ``np.inf`` means no limit.

    Returns
    -------
    float
        ``max_step``.

    Raises
    ------
    ValueError
        Not positive.  Deviation from SciPy: NaN is rejected too (SciPy
        silently treats it as no limit).
    """
    if max_step <= 0 or np.isnan(max_step):
        raise ValueError("`max_step` must be positive.")
    return float(max_step)


def validate_t_eval(t_eval, t0, tf):
    """Check the output times.

    Parameters
    ----------
    t_eval : array_like or None
        Times at which to store the solution.
    t0, tf : float
        The integration interval, as returned by :func:`validate_t_span`.

    Returns
    -------
    numpy.ndarray or None
        ``np.asarray(t_eval)`` in the user's order and dtype (not cast to
        float, as in SciPy), or None.

    Raises
    ------
    ValueError
        Not 1-D; a value outside ``[min(t0, tf), max(t0, tf)]`` (NaN
        included: a deviation from SciPy, which silently drops output); not
        strictly monotone in the direction of integration.  Checked in this
        order, as in SciPy.  When ``t0 == tf`` the order is not checked.
    """
    if t_eval is None:
        return None
    t_eval = np.asarray(t_eval)
    if t_eval.ndim != 1:
        raise ValueError("`t_eval` must be 1-dimensional.")
    if (np.any(t_eval < min(t0, tf)) or np.any(t_eval > max(t0, tf))
            or np.any(np.isnan(t_eval))):
        raise ValueError("Values in `t_eval` are not within `t_span`.")
    d = np.diff(t_eval)
    if tf > t0 and np.any(d <= 0) or tf < t0 and np.any(d >= 0):
        raise ValueError("Values in `t_eval` are not properly sorted.")
    return t_eval


def warn_extraneous(extraneous):
    """Warn about options that the chosen solver does not use.

    Parameters
    ----------
    extraneous : dict
        The unused keyword arguments; nothing happens when it is empty.

    Notes
    -----
    Emits SciPy's ``UserWarning``, pointing at the user's call.
    """
    if extraneous:
        warn_user("The following arguments have no effect for a chosen solver: "
                  f"{', '.join(f'`{x}`' for x in extraneous)}.")

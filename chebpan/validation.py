"""Argument checks for the scipy-compatible front end ``chebpan.solve_ivp``.

Each function enforces one rule of :func:`scipy.integrate.solve_ivp` and
returns the cleaned value.  Exception types and messages are the same as
SciPy's (checked against SciPy 1.17), so code that catches SciPy's errors
keeps working.  Where SciPy hangs or fails later with an unrelated NumPy
error, we raise a clear error instead; these places are marked
"Deviation from SciPy" below.

The functions are meant to be called in SciPy's order, which decides which
message a user sees when several arguments are wrong:

1. ``validate_method``, ``validate_t_span``, ``wrap_args``/``wrap_jac``,
   ``validate_t_eval`` (in ``solve_ivp`` itself);
2. ``warn_extraneous``, ``validate_y0``, ``validate_max_step``,
   ``validate_tol``, first call of ``fun`` (``check_fun_output``),
   ``validate_first_step`` (in the solver's constructor).
"""

from __future__ import annotations

import inspect
import math
from warnings import warn

import array_api_compat
import numpy as np
from scipy.integrate import BDF, DOP853, LSODA, RK23, RK45, OdeSolver, Radau

__all__ = [
    "EPS",
    "SCIPY_METHODS",
    "check_fun_output",
    "validate_first_step",
    "validate_max_step",
    "validate_method",
    "validate_t_eval",
    "validate_t_span",
    "validate_tol",
    "validate_y0",
    "warn_extraneous",
    "wrap_args",
    "wrap_jac",
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
    if y0.ndim == 1 or (batch and y0.ndim == 2):
        return
    if batch and y0.ndim > 2:
        raise ValueError("`y0` must be 1-dimensional, or 2-dimensional (K, n) for a batch "
                         "of K initial value problems.")
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
        Whether a 2-D ``y0`` (K, n) (a batch of IVPs) is accepted.

    Returns
    -------
    numpy.ndarray
        complex128 if ``y0`` is complex, otherwise float64; shape ``(n,)`` (or
        ``(K, n)`` with ``batch``).

    Raises
    ------
    ValueError
        Complex but unsupported, not 1-D, or not finite (in SciPy's order).
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
    """
    if batch_args is None:
        return ()
    batch_args = _unpack_args(batch_args)
    k = y0.shape[0]
    checked = []
    for i, value in enumerate(batch_args):
        value = xp.asarray(value, device=y0.device)
        if value.ndim == 0 or value.shape[0] != k:
            raise ValueError(
                f"`batch_args[{i}]` must have K = {k} rows, one per instance of the "
                f"batch, but has shape {tuple(value.shape)}.")
        checked.append(value)
    return tuple(checked)


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
    rtol = np.asarray(rtol)
    if np.any(rtol < 100 * eps):
        # stacklevel=3: validate_tol <- chebpan.solve_ivp <- user code.
        warn("At least one element of `rtol` is too small. "
             f"Setting `rtol = np.maximum(rtol, {100 * eps})`.",
             stacklevel=3)
        rtol = np.maximum(rtol, 100 * eps)

    atol = np.asarray(atol)
    if atol.ndim > 0 and atol.shape != (n,):
        raise ValueError("`atol` has wrong shape.")
    if np.any(atol < 0) or np.any(np.isnan(atol)):
        raise ValueError("`atol` must be positive.")

    # Checks SciPy does not make; done last so that every input SciPy
    # rejects above gets SciPy's message.
    if rtol.size != 1 and rtol.shape != (n,):
        raise ValueError("`rtol` has wrong shape.")
    if np.any(np.isnan(rtol)):
        raise ValueError("`rtol` must not contain NaN.")

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


def _unpack_args(args):
    """Return ``args`` as a tuple, with SciPy's error if it is not iterable."""
    try:
        return tuple(args)
    except TypeError as exp:
        suggestion_tuple = (
            "Supplied 'args' cannot be unpacked. Please supply `args`"
            f" as a tuple (e.g. `args=({args},)`)"
        )
        raise TypeError(suggestion_tuple) from exp


def wrap_args(fun, args):
    """Bind extra arguments to ``fun``.

    Parameters
    ----------
    fun : callable
        ``fun(t, y, *args)``.
    args : iterable or None
        Extra arguments.  Any iterable is accepted, as in SciPy (a list, even
        a string).  It is copied into a tuple once, so a generator is passed
        item by item (SciPy would consume it during its check and pass
        nothing).

    Returns
    -------
    callable
        ``fun`` itself when ``args`` is None, otherwise
        ``lambda t, y: fun(t, y, *args)``.

    Raises
    ------
    TypeError
        ``args`` is not iterable (SciPy's message).
    """
    if args is None:
        return fun
    args = _unpack_args(args)

    def fun_with_args(t, y, *point_args, fun=fun):
        # (point_args: a batched solve's per-instance arguments, before args)
        return fun(t, y, *point_args, *args)

    return fun_with_args


def wrap_jac(jac, args):
    """Bind extra arguments to a callable Jacobian.

    Parameters
    ----------
    jac : callable, array_like, sparse matrix or None
        The ``jac`` option.  Only a callable is wrapped.
    args : iterable or None
        Extra arguments, as for :func:`wrap_args`.

    Returns
    -------
    object
        ``jac`` unchanged if ``args`` is None or ``jac`` is not callable,
        otherwise ``lambda t, y: jac(t, y, *args)``.

    Raises
    ------
    TypeError
        ``args`` is not iterable (SciPy's message).
    """
    if args is None:
        return jac
    args = _unpack_args(args)
    if not callable(jac):
        return jac

    def jac_with_args(t, y, *point_args, jac=jac):
        return jac(t, y, *point_args, *args)

    return jac_with_args


#: Smallest ``n_coeffs``: the error estimate reads the last two coefficients,
#: which must lie above the linear term (with 3, it is the solution's slope and
#: never falls below the tolerance).
MIN_N_COEFFS = 4
#: PAN's options: (name, kind, smallest allowed value, whether it may equal it).
_OPTION_BOUNDS = (
    ("n_coeffs", "integer", MIN_N_COEFFS, True),
    ("n_nodes", "integer", 1, True),
    ("max_picard", "integer", 1, True),
    ("max_newton", "integer", 1, True),
    ("max_newton_size", "integer", 0, True),
    ("newton_memory", "integer", 0, False),
    ("rho_newton", "number", 0.0, False),
    ("tol_ls", "number", 0.0, False),
    ("tol_newton", "number", 0.0, False),
)


def validate_pan_options(options):
    """Check PAN's own options (a dict of those given): a clear error for bad values.

    Integers must be integers (not bools), numbers finite; each has a lower
    bound (``n_coeffs`` at least :data:`MIN_N_COEFFS`, ``newton_memory``
    positive, ...).  ``n_nodes`` is checked against ``n_coeffs`` when the
    basis is built.
    """
    for name, kind, lowest, inclusive in _OPTION_BOUNDS:
        if name not in options or (options[name] is None and name.startswith("tol_")):
            continue
        value = options[name]
        if kind == "integer":
            ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
        else:
            ok = (isinstance(value, (int, float, np.integer, np.floating))
                  and not isinstance(value, (bool, np.bool_)) and math.isfinite(value))
        if ok:
            ok = value >= lowest if inclusive else value > lowest
        if not ok:
            bound = f"of at least {lowest}" if inclusive else f"greater than {lowest}"
            reason = (" (the error estimate reads the last two coefficients, above the "
                      "linear term)" if name == "n_coeffs" else "")
            raise ValueError(f"`{name}` must be {'an' if kind == 'integer' else 'a'} "
                             f"{kind} {bound}{reason}, got {value!r}.")


def warn_extraneous(extraneous):
    """Warn about options that the chosen solver does not use.

    Parameters
    ----------
    extraneous : dict
        The unused keyword arguments; nothing happens when it is empty.

    Notes
    -----
    Emits SciPy's ``UserWarning`` with ``stacklevel=3``, which points at the
    user's call when the chain is user -> ``chebpan.solve_ivp`` ->
    ``warn_extraneous``.
    """
    if extraneous:
        warn("The following arguments have no effect for a chosen solver: "
             f"{', '.join(f'`{x}`' for x in extraneous)}.",
             stacklevel=3)


def check_fun_output(value, shape, *, name="fun", dtype=None, xp=None, device=None):
    """Convert a value returned by a user function and check its shape.

    Parameters
    ----------
    value : array_like
        What the user's function returned.
    shape : tuple of int
        The expected shape, e.g. ``(n,)`` or ``(n, k)``.
    name : str, optional
        The argument to name in the error message.
    xp : namespace, optional
        The solve's namespace; for one other than NumPy the value is
        converted to (and returned as) an array of ``xp`` on ``device``.
    device : device, optional
        Where the value is placed (the device of ``y``).
    dtype : dtype, optional
        Target dtype, normally ``y0.dtype`` (as in SciPy: a complex value
        for a real state gives NumPy's ``ComplexWarning`` and loses its
        imaginary part).  By default complex128 if ``value`` is complex,
        else float64.

    Returns
    -------
    array
        The value with the expected shape (a NumPy array, or one of ``xp``).  As in SciPy, a scalar is
        broadcast when ``n == shape[0] == 1``, and an ``(n,)`` value is
        accepted for ``(n, 1)`` (SciPy ravels vectorized single calls).

    Raises
    ------
    ValueError
        Any other shape (deviation from SciPy, which gives a NumPy
        broadcast error or wrong results).
    """
    shape = tuple(shape)
    if xp is not None and not array_api_compat.is_numpy_namespace(xp):
        return _check_output_array(value, shape, name=name, dtype=dtype, xp=xp, device=device)
    if dtype is None:
        value = np.asarray(value)
        dtype = complex if np.iscomplexobj(value) else float
    value = np.asarray(value, dtype=dtype)
    if value.shape == shape:
        return value
    if value.ndim == 0 and len(shape) >= 1 and shape[0] == 1:
        return np.broadcast_to(value, shape).copy()
    if len(shape) == 2 and shape[1] == 1 and value.shape == shape[:1]:
        return value.reshape(shape)
    raise ValueError(f"`{name}` returned an array of shape {value.shape}; "
                     f"expected {shape}.")


def _check_output_array(value, shape, *, name, dtype, xp, device):
    """:func:`check_fun_output` for a non-NumPy namespace (same leniencies).

    A list or tuple (scipy's style, e.g. ``[y[1], -y[0]]``) is stacked.
    """
    if isinstance(value, (list, tuple)):
        value = xp.stack([xp.asarray(v, dtype=dtype, device=device) for v in value])
    value = xp.asarray(value, dtype=dtype, device=device)
    if tuple(value.shape) == shape:
        return value
    if value.ndim == 0 and len(shape) >= 1 and shape[0] == 1:
        return xp.broadcast_to(value, shape)
    if len(shape) == 2 and shape[1] == 1 and tuple(value.shape) == shape[:1]:
        return xp.reshape(value, shape)
    raise ValueError(f"`{name}` returned an array of shape {tuple(value.shape)}; "
                     f"expected {shape}.")

"""Complex initial values: solve the real system of twice the size.

scipy's explicit methods (and BDF) accept a complex ``y0`` and integrate in
the complex domain.  ``method="PAN"`` works on real states only, so a complex
problem ``y' = f(t, y)``, ``y ∈ ℂⁿ``, is solved as the real problem

.. math::

    x = \\begin{pmatrix} \\operatorname{Re} y \\\\ \\operatorname{Im} y \\end{pmatrix}
    \\in ℝ^{2n}, \\qquad
    x' = \\begin{pmatrix} \\operatorname{Re} f(t, y) \\\\
                          \\operatorname{Im} f(t, y) \\end{pmatrix},

and the result is turned back into complex values.  The user's functions
never see the real system: ``fun``, ``jac`` and event functions receive
complex ``y`` and return what they would return to scipy.

The front end uses this module in three places (``n`` is the complex size):

1. before the solve, :func:`realify` builds the real ``fun``, ``jac``,
   ``y0`` and tolerances, and :func:`realify_events` the real event
   functions;
2. the solve runs unchanged on the real system of size ``2n``;
3. :func:`~chebpan._frontend.complex_result.complexify_result` turns ``y``, ``sol`` and
   ``y_events`` of the result back into complex values
   (:class:`~chebpan._frontend.complex_result.ComplexOdeSolution`).

Differences from scipy's complex integration
---------------------------------------------
* **Error scaling.**  scipy scales the error of each complex component by
  ``atol + rtol |y_i|`` with the complex modulus ``|y_i|``.  Here the real
  and imaginary parts are separate components, each scaled by
  ``atol + rtol |Re y_i|`` or ``atol + rtol |Im y_i|``: a part that is much
  smaller than the other is controlled more tightly (down to ``atol``), and
  the RMS norm runs over ``2n`` components.  Per-component ``rtol`` and
  ``atol`` are applied to both parts of their component.
* **Jacobian.**  A user ``jac`` gives the complex derivative ``J = ∂f/∂y``.
  The real Jacobian ``[[Re J, -Im J], [Im J, Re J]]`` built from it is exact
  when ``f`` is complex-analytic (holomorphic) in ``y``, which is what scipy's
  complex support assumes as well.  For an ``f`` that is not (say one that
  uses ``conj(y)`` or ``abs(y)``) leave ``jac=None``: the forward differences
  then act on the real system and are valid for any ``f`` that is
  differentiable as a map ``ℝ^{2n} → ℝ^{2n}``.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse

from .._rhs.checks import check_fun_output
from .._rhs.jacobian import as_matrix, jac_shape_error
from .._rhs.sparse import SparsityPattern

__all__ = [
    "realify_sparsity",
    "real_block_jacobian",
    "realify",
    "realify_event",
    "realify_events",
    "to_complex",
    "to_real",
]


# ----------------------------------------------------------------------------- conversions
def to_complex(x, n):
    """Complex state from the real one: ``x[:n] + 1j x[n:]`` along axis 0.

    Parameters
    ----------
    x : ndarray, shape (2n,) or (2n, k)
        Real state(s) ``[Re y; Im y]``.
    n : int
        Complex size.

    Returns
    -------
    ndarray, complex128, shape (n,) or (n, k)

    Examples
    --------
    >>> import numpy as np
    >>> to_complex(np.array([1.0, 2.0, 3.0, 4.0]), 2)
    array([1.+3.j, 2.+4.j])
    """
    x = np.asarray(x)
    z = np.empty((n, *x.shape[1:]), dtype=np.complex128)
    z.real = x[:n]
    z.imag = x[n:]
    return z


def to_real(z, axis=0):
    """Real state from the complex one: ``[Re z; Im z]`` stacked along ``axis``.

    Parameters
    ----------
    z : array_like, shape (n,) or (n, k)
        Complex (or real) values.
    axis : int, optional
        Axis along which real and imaginary parts are stacked.

    Returns
    -------
    ndarray, float64, shape (2n,) or (2n, k)

    Examples
    --------
    >>> to_real(np.array([1 + 3j, 2 + 4j]))
    array([1., 2., 3., 4.])
    """
    z = np.asarray(z)
    return np.concatenate([np.real(z), np.imag(z)], axis=axis).astype(np.float64, copy=False)


def real_block_jacobian(J):
    """The real Jacobian ``[[Re J, -Im J], [Im J, Re J]]`` of a complex one.

    Parameters
    ----------
    J : array_like, shape (n, n) or (n, n, P)
        Complex derivative ``∂f/∂y`` (at one point, or at P points along the
        last axis).

    Returns
    -------
    ndarray, float64, shape (2n, 2n) or (2n, 2n, P)

    Notes
    -----
    Exact for complex-analytic ``f``: then ``∂(Re f)/∂(Re y) = Re J``,
    ``∂(Re f)/∂(Im y) = -Im J``, ``∂(Im f)/∂(Re y) = Im J`` and
    ``∂(Im f)/∂(Im y) = Re J`` (the Cauchy–Riemann equations).

    Examples
    --------
    >>> real_block_jacobian(np.array([[1 + 2j]]))
    array([[ 1., -2.],
           [ 2.,  1.]])
    """
    J = np.asarray(J)
    a, b = np.real(J), np.imag(J)
    top = np.concatenate([a, -b], axis=1)
    bottom = np.concatenate([b, a], axis=1)
    return np.concatenate([top, bottom], axis=0).astype(np.float64, copy=False)


# ------------------------------------------------------------------------------ realify
def _complex_jac_value(value, expected):
    """The user's (complex or real, dense or sparse) Jacobian as a complex ndarray.

    Anything with the expected number of entries is reshaped, as for real
    states (:func:`chebpan._rhs.jacobian.as_matrix`).
    """
    return as_matrix(value, expected, xp=np, dtype=np.complex128)


def _realify_tol(tol, n, name, *, size_one_is_scalar):
    """Duplicate a per-component tolerance for the real and imaginary parts."""
    value = np.asarray(tol)
    if value.ndim == 0 or (size_one_is_scalar and value.size == 1):
        return tol  # a scalar stays as given (validated later like any scalar)
    if value.shape != (n,):
        raise ValueError(f"`{name}` has wrong shape.")
    return np.concatenate([value, value])


def realify(fun, jac, y0, rtol, atol, vectorized, vectorized_jac=False):
    """The real system of size ``2n`` equivalent to a complex problem.

    The real state is ``x = [Re y; Im y]``.

    Parameters
    ----------
    fun : callable
        The user's right-hand side with ``args`` already bound, ``fun(t, y)``
        with complex ``y`` of shape (n,) (or (n, P) when ``vectorized``),
        returning complex (or real) values of the same shape; the leniencies
        of :func:`chebpan._rhs.checks.check_fun_output` (a scalar for
        ``n == 1``, shape (n,) for a single vectorised point) apply.
    jac : None, callable, array_like or scipy sparse matrix
        The ``jac`` option (``args`` bound): None, ``jac(t, y)`` returning
        the complex (n, n) matrix ``∂f/∂y`` (or (n, n, P) with
        ``vectorized_jac``), or a constant (n, n) matrix.  Real values are
        accepted and read as complex values with zero imaginary part.  See
        the module notes: assumes a complex-analytic ``f``.
    y0 : ndarray, complex128, shape (n,)
        Validated initial state (:func:`chebpan._frontend.validation.validate_y0`).
    rtol, atol : float or array_like
        Tolerances: scalars (and a size-1 ``rtol``) are returned unchanged;
        per-component arrays of shape (n,) are duplicated to shape (2n,), so
        that the real and imaginary part of component ``i`` get the same
        tolerance.  Best passed through
        :func:`chebpan._frontend.validation.validate_tol` with size ``n`` first, so
        that scipy's messages and warnings refer to the complex size.
    vectorized : bool or None
        Whether ``fun`` is vectorised (chebpan's convention: ``t`` of shape
        (P,), ``y`` of shape (n, P)).  ``real_fun`` follows the shape of
        ``x`` either way (a solve without ``vectorized`` probes ``fun`` with
        many points), so this only documents the call.
    vectorized_jac : bool, optional
        Whether a callable ``jac`` is called once with ``t`` (P,) and ``y``
        (n, P), returning (n, n, P).

    Returns
    -------
    real_fun : callable
        ``real_fun(t, x)``: float ``t`` and ``x`` (2n,) → (2n,), or ``t``
        (P,) and ``x`` (2n, P) → (2n, P); float64.
    real_jac : None, callable or ndarray
        None when ``jac`` is None (forward differences on the real system);
        a callable with the calling convention of ``jac`` returning
        (2n, 2n) (or (2n, 2n, P)); or a constant dense (2n, 2n) array for a
        constant ``jac`` (also for a sparse one).
    real_y0 : ndarray, float64, shape (2n,)
    real_rtol, real_atol : float or ndarray
        See ``rtol``, ``atol``.

    Raises
    ------
    ValueError
        ``rtol`` or ``atol`` of a shape other than scalar or (n,) (scipy's
        messages), or a constant ``jac`` of a shape other than (n, n).

    Examples
    --------
    >>> import numpy as np
    >>> real_fun, real_jac, x0, rtol, atol = realify(
    ...     lambda t, y: 1j * y, None, np.array([1 + 2j]), 1e-3, [1e-6], vectorized=False)
    >>> x0, real_fun(0.0, x0), real_jac, atol
    (array([1., 2.]), array([-2.,  1.]), None, array([1.e-06, 1.e-06]))
    """
    y0 = np.asarray(y0)
    n = y0.shape[0]
    real_y0 = to_real(y0)

    def real_fun(t, x):
        # (x of shape (2n, P) with vectorized, or when the solve probes `fun` for it)
        z = to_complex(x, n)
        value = check_fun_output(fun(t, z), z.shape, dtype=np.complex128)
        return to_real(value)

    if jac is None:
        real_jac = None
    elif callable(jac):
        if vectorized_jac:
            def real_jac(t, x):
                z = to_complex(x, n)
                value = _complex_jac_value(jac(t, z), (n, n, z.shape[1]))
                return real_block_jacobian(value)
        else:
            def real_jac(t, x):
                return real_block_jacobian(_complex_jac_value(jac(t, to_complex(x, n)), (n, n)))
    elif scipy.sparse.issparse(jac):
        # Kept sparse: its pattern drives the sparse Newton steps.
        if tuple(jac.shape) != (n, n):
            raise jac_shape_error((n, n), tuple(jac.shape))
        j = scipy.sparse.csr_array(jac, dtype=np.complex128)
        real_jac = scipy.sparse.block_array([[j.real, -j.imag], [j.imag, j.real]],
                                            format="csr")
    else:
        real_jac = real_block_jacobian(_complex_jac_value(jac, (n, n)))

    real_rtol = _realify_tol(rtol, n, "rtol", size_one_is_scalar=True)
    real_atol = _realify_tol(atol, n, "atol", size_one_is_scalar=False)
    return real_fun, real_jac, real_y0, real_rtol, real_atol


# ------------------------------------------------------------------------------- events
def realify_event(event, n):
    """An event function of the real state from one of the complex state.

    Parameters
    ----------
    event : callable
        ``event(t, y, *args)`` with complex ``y`` of shape (n,) (or (n, P):
        the wrapper converts along axis 0 whatever shape the solver passes),
        returning a real value; optional attributes ``terminal`` and
        ``direction`` as in scipy.
    n : int
        Complex size.

    Returns
    -------
    callable
        ``real_event(t, x, *args) = event(t, x[:n] + 1j x[n:], *args)`` with
        the same ``terminal`` and ``direction`` attributes (only where
        ``event`` has them) and the same ``__name__``/``__doc__``.  Extra
        positional arguments are passed through, so it can be applied
        before or after ``args`` are bound.  A complex ``x`` is passed to
        ``event`` unchanged: the real system never produces one, so it can
        only be the user's own complex ``y0``, which scipy hands to every
        event function at ``t0`` as given (chebpan's ``EventTracker`` does
        the same with ``y0_raw``).

    Examples
    --------
    >>> import numpy as np
    >>> def crossing(t, y):
    ...     return y[0].imag
    >>> crossing.terminal = True
    >>> real = realify_event(crossing, 1)
    >>> float(real(0.0, np.array([1.0, -0.5]))), real.terminal, hasattr(real, "direction")
    (-0.5, True, False)
    """
    @functools.wraps(event, updated=())
    def real_event(t, x, *args):
        if np.iscomplexobj(x):  # the user's raw complex y0, at t0
            return event(t, x, *args)
        return event(t, to_complex(x, n), *args)

    for name in ("terminal", "direction"):
        if hasattr(event, name):
            setattr(real_event, name, getattr(event, name))
    return real_event


def realify_events(events, n):
    """:func:`realify_event` applied to scipy's ``events`` argument.

    Parameters
    ----------
    events : None, callable or iterable of callables
    n : int
        Complex size.

    Returns
    -------
    None, callable or list of callables
        Same structure as ``events`` (an iterable becomes a list).
    """
    if events is None:
        return None
    if callable(events):
        return realify_event(events, n)
    return [realify_event(event, n) for event in events]


def realify_sparsity(jac_sparsity, n):
    """The pattern of the real system's Jacobian ``[[Re J, −Im J], [Im J, Re J]]``.

    Each block may be nonzero wherever J may: ``[[S, S], [S, S]]``.
    """
    pattern = SparsityPattern.from_matrix(jac_sparsity, n)
    block = scipy.sparse.coo_array((np.ones(pattern.nnz), (pattern.rows, pattern.cols)),
                                   shape=(n, n))
    return scipy.sparse.block_array([[block, block], [block, block]])

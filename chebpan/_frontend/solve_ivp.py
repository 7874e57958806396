"""``solve_ivp``: the scipy-compatible front end.

Checks the arguments in scipy's order, takes the options from
:data:`chebpan._control.options.OPTIONS`, hands scipy's methods to scipy, turns a
complex state into a real one, and runs a single solve
(:class:`~chebpan._control.single.SegmentLoop`) or a batch
(:class:`~chebpan._control.batch.BatchLoop`) with the host BLAS on one thread.
docs/architecture.md follows a call from here to the kernels.
"""

from __future__ import annotations

import contextlib

import array_api_compat
import numpy as np
import scipy.integrate
import scipy.sparse

from .._control.batch import BatchLoop
from .._control.options import check_options, iteration_options, take_options, with_defaults
from .._control.single import SegmentLoop
from .._core.basis import get_basis
from .._kernels.blas import solver_blas_threads
from .._output.batch_record import make_record
from .._output.batch_result import batch_result
from .._output.events import EventTracker, prepare_events
from .._output.progress import ProgressBar
from .._rhs.counters import Counters
from .._rhs.evaluator import Evaluator
from .arguments import wrap_args, wrap_jac
from .backend import namespace_of, select_namespace
from .complex_result import complexify_result
from .complex_state import realify, realify_events, realify_sparsity
from .validation import (
    validate_batch_args,
    validate_first_step,
    validate_max_step,
    validate_method,
    validate_t_eval,
    validate_t_span,
    validate_tol,
    validate_y0,
    validate_y0_array,
    warn_extraneous,
)

__all__ = ["solve_ivp"]


def solve_ivp(fun, t_span, y0, method="PAN", t_eval=None, dense_output=False,
              events=None, vectorized=False, args=None, **options):
    """Solve an initial value problem for a system of ODEs.

    A drop-in for :func:`scipy.integrate.solve_ivp`.  With ``method="PAN"``
    (the default) the solution is built segment by segment from Chebyshev
    polynomials whose coefficients are found by a Picard (zero-order)
    iteration and Newton steps; every iteration evaluates ``fun`` at all
    nodes of a segment in one call.  scipy's method names and ``OdeSolver``
    classes are passed to scipy unchanged.

    Parameters
    ----------
    fun : callable
        Right-hand side ``fun(t, y, *args)``.  With ``vectorized=True`` it is
        called with ``t`` of shape (P,) and ``y`` of shape (n, P) (all nodes
        of a segment at once, each column with its own time) and must return
        shape (n, P).  An autonomous function written for scipy's
        ``vectorized=True`` works unchanged.  With ``vectorized=False``
        (scipy's default) it is called once per point with a float ``t`` and
        ``y`` of shape (n,): correct, but slow for this method.
    t_span : 2-sequence of floats
        Interval of integration ``(t0, tf)``; ``tf < t0`` integrates backward.
    y0 : array_like, shape (n,) or (K, n)
        Initial state.  A complex ``y0`` is solved as the real system
        ``[Re y; Im y]`` of size 2n and the results are complex (as scipy's
        explicit methods support it); a callable ``jac`` is then assumed to be
        the complex derivative of a complex-analytic ``fun``.  A 2-D ``y0``
        is a *batch*: K independent IVPs sharing ``fun``, ``t_span`` and
        ``t_eval``, each with its own segments, solved in lock step with one
        call of ``fun`` per round on the nodes of all active instances (see
        ``batch_args`` and "Returns"; the user guide's "Batched IVPs").
    method : str or OdeSolver class, optional
        ``"PAN"`` (default), or one of scipy's (``"RK45"``, ``"RK23"``,
        ``"DOP853"``, ``"Radau"``, ``"BDF"``, ``"LSODA"``) or an ``OdeSolver``
        subclass: then :func:`scipy.integrate.solve_ivp` is called with the
        same arguments and its result is returned.
    t_eval : array_like, shape (k,), optional
        Times at which to store the solution, served from the segment
        polynomials.  Default: the segment ends.
    dense_output : bool, optional
        Whether to return the continuous solution ``sol``
        (:class:`chebpan.OdeSolution`).
    events : callable or list of callables, optional
        Events ``event(t, y, *args)`` with scipy's attributes ``terminal``
        (bool, or a positive integer k: stop at the k-th occurrence) and
        ``direction``.  Unlike scipy, sign changes are looked for at every
        node of every segment (so two crossings inside one segment are both
        found), and each root is located by ``brentq`` on the segment
        polynomial to 4 ulp.  With ``vectorized=True`` an event is first
        called once per segment with ``t`` (P,), ``y`` (n, P); if it does not
        return shape (P,) it is called point by point.
    vectorized : bool, optional
        Whether ``fun`` accepts many points at once (see ``fun``).
    args : tuple, optional
        Extra arguments for ``fun`` and a callable ``jac``.
    **options
        rtol, atol : float or array_like, shape (n,)
            Relative and absolute tolerances (defaults 1e-3 and 1e-6, as in
            scipy), applied to the truncation-error estimate of each segment
            with the scale ``atol + rtol |y|``.
        first_step : float, optional
            Length of the first segment (default: automatic).
        max_step : float, optional
            Largest segment length (default ``inf``).
        jac : callable, array_like or sparse matrix, optional
            Jacobian ``∂f/∂y``, as in scipy: ``jac(t, y, *args)`` with ``y``
            of shape (n,) returning (n, n), or a constant matrix.  Default:
            forward differences, done in the same vectorised call round.
        vectorized_jac : bool, optional
            Call a callable ``jac`` once with ``t`` (P,), ``y`` (n, P),
            returning shape (n, n, P).  Default False.
        jac_sparsity : array_like or sparse matrix, shape (n, n), optional
            As in scipy: where ``∂f/∂y`` may be nonzero, used when ``jac`` is
            None.  Forward differences then perturb groups of columns that
            share no row together, and systems above ``max_newton_size`` get
            sparse (SuperLU) Newton steps on stiff segments.
        n_coeffs : int, optional
            Chebyshev coefficients per component and segment (N, default 32;
            12 for a batch).
        n_nodes : int, optional
            Nodes per segment (M ≥ N − 1, default N − 1: collocation).  With
            M > N − 1 the Picard and Newton steps solve least-squares
            problems.
        max_picard, max_newton : int, optional
            Iteration bounds per segment attempt (defaults 12 and 8; for a
            batch 30 and 8).
        rho_newton : float, optional
            Picard contraction ratio above which Newton takes over
            (default 0.2; 0.9 for a batch, whose cost is work rather than
            depth).
        max_newton_size : int, optional
            Largest dense Newton system ``n·(n_coeffs − 2)`` (default 1200);
            larger systems use the Picard iteration, and sparse Newton
            steps on stiff segments when the Jacobian's sparsity is known
            (``jac_sparsity`` or a sparse constant ``jac``).
        progress : bool, optional
            Show a progress bar over ``t`` (needs the optional package tqdm).
        backend : {None, "numpy", "cupy"}, optional
            Array library of the solve.  ``None`` (default): the library of
            ``y0`` when it is an array-API array (a CuPy array selects CuPy,
            an ``array_api_strict`` or other array-API array runs through
            the reference kernels), NumPy otherwise.  ``fun`` and ``jac``
            then receive that library's arrays, and ``t``, ``y`` and
            ``sol(t)`` come back in it (``numpy.asarray`` / ``.get()`` give
            host arrays).  A float32 ``y0`` of such a library is solved in
            float32 (a NumPy one is cast to float64, as scipy does).  Events,
            complex states and sparse Jacobians need the NumPy backend.
        batch_args : tuple of arrays, optional
            Per-instance arguments of a batch (2-D ``y0``): each has K rows
            (shape (K,) or (K, ...)).  They reach ``fun`` and a callable
            ``jac`` after ``y`` and before ``args``, laid out like ``y``: in a
            vectorised call with points ``t`` (P,), ``y`` (n, P), an argument
            of shape (K,) arrives as (P,) and one of shape (K, p) as (p, P),
            each column its point's instance's row; in a point-wise call the
            instance's row itself.
        newton_memory : int, optional
            Bytes of workspace for the dense Newton systems of a batch
            (default 2**28): instances in a Newton step are processed in
            chunks that fit.
        batch_memory : int, optional
            Bytes of working memory for a batch (default 2**28): its
            instances are solved in chunks that fit, one after the other
            (a batch keeps only what its output needs: with ``t_eval`` and
            no ``dense_output``, the values at ``t_eval``).
        tol_ls, tol_newton : float, optional
            The paper's stopping rules: stop the Picard iteration when the
            coefficient change is below ``tol_ls`` and Newton when the
            gradient norm is below ``tol_newton``.  Default: a scaled test on
            the change of the solution, 1e-3 of the tolerance.

    Returns
    -------
    OdeResult
        scipy's fields ``t, y, sol, t_events, y_events, nfev, njev, nlu,
        status, message, success`` plus ``depth, npoints, nsegments,
        nrejected, niter_picard, niter_newton``.  After a failure
        (``status = -1``) ``t``, ``y`` and ``sol`` hold the solution up to the
        last accepted segment.

        For a batch (``y0`` of shape (K, n)): ``y`` has shape (K, n, n_t)
        with ``t = t_eval``, NaN where an instance failed before reaching
        that time; without ``t_eval``, ``t`` (K, S+1) holds each instance's
        t0 and segment ends and ``y`` (K, n, S+1) the values there, both
        padded with NaN after the instance's last end.  ``sol(t)``
        (:class:`chebpan.BatchOdeSolution`) gives (K, n) or (K, n, k).
        ``status`` is a NumPy array (K,) and ``message`` a list of K
        strings; ``success`` is True when every instance succeeded.  The
        counters are totals over the batch (``depth`` and ``nfev`` count
        the shared rounds and calls); ``per_instance`` holds arrays (K,) of
        ``nsegments``, ``nrejected`` and ``depth`` (rounds in which the
        instance was active).

    Examples
    --------
    >>> import numpy as np
    >>> import chebpan
    >>> def decay(t, y):
    ...     return -0.5 * y
    >>> res = chebpan.solve_ivp(decay, (0, 10), [2.0, 4.0], vectorized=True,
    ...                         rtol=1e-10, atol=1e-12)
    >>> res.status
    0
    >>> bool(np.allclose(res.y[:, -1], [2 * np.exp(-5), 4 * np.exp(-5)], rtol=1e-10))
    True

    A batch of three IVPs with a decay rate each (``rate`` arrives with one
    entry per point, like a row of ``y``):

    >>> def decay_at(t, y, rate):
    ...     return -rate * y
    >>> y0 = np.array([[1.0], [1.0], [1.0]])
    >>> res = chebpan.solve_ivp(decay_at, (0, 2), y0, vectorized=True, t_eval=[1.0, 2.0],
    ...                         batch_args=([0.5, 1.0, 2.0],), rtol=1e-10, atol=1e-12)
    >>> res.y.shape, res.status.tolist()
    ((3, 1, 2), [0, 0, 0])
    >>> bool(np.allclose(res.y[:, 0, 1], np.exp(-2 * np.array([0.5, 1.0, 2.0])), rtol=1e-9))
    True
    """
    kind = validate_method(method)
    if kind == "scipy":
        return scipy.integrate.solve_ivp(
            fun, t_span, y0, method=method, t_eval=t_eval, dense_output=dense_output,
            events=events, vectorized=vectorized, args=args, **options)

    with solver_blas_threads():
        return _solve_pan(fun, t_span, y0, t_eval, dense_output, events, vectorized, args,
                          options)


def _solve_pan(fun, t_span, y0, t_eval, dense_output, events, vectorized, args, options):
    """:func:`solve_ivp` with ``method="PAN"``, after scipy's methods are forwarded."""
    t0, tf = validate_t_span(t_span)
    given = take_options(options)
    check_options(given)
    # (the defaults that differ for a batch are read again once y0 says it is one)
    values = with_defaults(given, batch=False)
    fun = wrap_args(fun, args)
    jac = wrap_jac(values["jac"], args)
    t_eval = validate_t_eval(t_eval, t0, tf)
    warn_extraneous(options)

    rtol, atol = values["rtol"], values["atol"]
    first_step, max_step = values["first_step"], values["max_step"]
    vectorized_jac = bool(values["vectorized_jac"])
    jac_sparsity = values["jac_sparsity"]
    progress = bool(values["progress"])
    batch_args = values["batch_args"]

    y0_raw = y0
    array_xp = select_namespace(values["backend"], y0)
    if array_xp is None:
        y0 = validate_y0(y0, support_complex=True, batch=True)
    else:
        y0 = validate_y0_array(y0, array_xp, batch=True)
        _check_numpy_only(array_xp, events=events, jac=jac, jac_sparsity=jac_sparsity)
    # A batch's defaults are chosen for work, a single solve's for depth.
    if y0.ndim == 2:
        values = with_defaults(given, batch=True)
    n_coeffs, n_nodes = int(values["n_coeffs"]), int(values["n_nodes"])
    iteration = iteration_options(values)
    if y0.ndim == 2:
        _check_batch_support(y0, events=events, jac=jac, jac_sparsity=jac_sparsity,
                             progress=progress, iteration=iteration)
        xp = namespace_of(y0) if array_xp is None else array_xp
        eps = float(xp.finfo(y0.dtype).eps)
        rtol, atol = validate_tol(rtol, atol, y0.shape[1], eps=eps)
        max_step = validate_max_step(max_step)
        if first_step is not None:
            first_step = validate_first_step(first_step, t0, tf)
        counters = Counters()
        evaluator = Evaluator(fun, jac, y0.shape[1], vectorized=vectorized,
                              vectorized_jac=vectorized_jac, xp=xp, dtype=y0.dtype,
                              counters=counters, device=y0.device, difference_floor=atol,
                              batch_args=validate_batch_args(batch_args, y0, xp=xp))
        basis = get_basis(n_coeffs, n_nodes, xp=xp, dtype=y0.dtype, device=y0.device)
        record = make_record(t_eval, dense_output, t0, 1.0 if tf >= t0 else -1.0, xp=xp,
                             device=y0.device)
        loop = BatchLoop(evaluator, basis, t0, tf, y0, rtol, atol, max_step, iteration,
                         counters, xp=xp, newton_memory=values["newton_memory"],
                         record=record, batch_memory=values["batch_memory"])
        with _on_device(xp, y0.device):
            loop.run(first_step)
        return batch_result(loop, t_eval, dense_output)
    if batch_args is not None:
        raise ValueError("`batch_args` needs a 2-dimensional `y0` (K, n): a batch of IVPs.")
    max_step = validate_max_step(max_step)
    eps = float((np if array_xp is None else array_xp).finfo(y0.dtype).eps)
    rtol, atol = validate_tol(rtol, atol, y0.shape[0], eps=eps)
    n_complex = None
    if array_xp is None and np.iscomplexobj(y0):
        # Complex state: solve the real system [Re y; Im y] of size 2n.
        n_complex = y0.shape[0]
        fun, jac, y0, rtol, atol = realify(fun, jac, y0, rtol, atol, vectorized,
                                           vectorized_jac)
        events = realify_events(events, n_complex)
        if jac_sparsity is not None and jac is None:  # (scipy ignores it with a jac)
            jac_sparsity = realify_sparsity(jac_sparsity, n_complex)

    xp = namespace_of(y0) if array_xp is None else array_xp
    device = y0.device
    counters = Counters()
    evaluator = Evaluator(fun, jac, y0.shape[0], vectorized=vectorized,
                          vectorized_jac=vectorized_jac, xp=xp, dtype=y0.dtype,
                          counters=counters, jac_sparsity=jac_sparsity, device=device,
                          difference_floor=atol)
    basis = get_basis(n_coeffs, n_nodes, xp=xp, dtype=y0.dtype, device=device)
    # Square collocation: N − 1 free coefficients on the N − 1 nodes right of
    # τ = −1 (whatever n_nodes the paper's basis uses).
    stiff_basis = get_basis(n_coeffs, n_coeffs, xp=xp, dtype=y0.dtype, device=device,
                            stiff=True)
    loop = SegmentLoop(evaluator, basis, stiff_basis, t0, tf, xp.asarray(y0), rtol, atol,
                        max_step, iteration, counters, xp=xp)
    if first_step is not None:
        first_step = validate_first_step(first_step, t0, tf)
    if events is not None:
        events, max_events, event_direction = prepare_events(events, args)
        loop.tracker = EventTracker(events, max_events, event_direction, t0, y0_raw,
                                    vectorized=vectorized)
    if progress:
        loop.progress = ProgressBar(t0, tf)
    try:
        with _on_device(xp, device):
            loop.run(first_step)
    finally:
        if loop.progress is not None:
            loop.progress.close()
    res = loop.result(t_eval, dense_output)
    return res if n_complex is None else complexify_result(res, n_complex)


def _on_device(xp, device):
    """CuPy launches on the current device: make it y0's for the whole solve."""
    return device if array_api_compat.is_cupy_namespace(xp) else contextlib.nullcontext()


def _check_batch_support(y0, *, events, jac, jac_sparsity, progress, iteration):
    """What a batched solve cannot do (yet): a clear error."""
    if np.iscomplexobj(y0):
        raise NotImplementedError(
            "A complex batch `y0` is not supported; solve the real system [Re y; Im y].")
    unsupported = (("events", events is not None),
                   ("jac_sparsity", jac_sparsity is not None),
                   ("a sparse `jac`", scipy.sparse.issparse(jac)),
                   ("progress", progress),
                   ("tol_ls", iteration.tol_ls is not None),
                   ("tol_newton", iteration.tol_newton is not None))
    for name, used in unsupported:
        if used:
            name = name if name.startswith("a ") else f"`{name}`"
            raise NotImplementedError(
                f"{name[0].upper()}{name[1:]} is not supported with a batch `y0` of shape "
                "(K, n) (yet): solve the instances one at a time.")


def _check_numpy_only(xp, *, events, jac, jac_sparsity):
    """Features that run on the NumPy backend only (for now): a clear error."""
    for name, value in (("events", events), ("jac_sparsity", jac_sparsity)):
        if value is not None:
            raise NotImplementedError(
                f"`{name}` is supported on the NumPy backend only (this solve runs on "
                f"{xp.__name__}).")
    if scipy.sparse.issparse(jac):
        raise NotImplementedError(
            f"A sparse `jac` is supported on the NumPy backend only (this solve runs on "
            f"{xp.__name__}).")

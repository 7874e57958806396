"""``solve_ivp``: the scipy-compatible front end.

Checks the arguments in scipy's order, takes the options from
:data:`chebpan._control.options.OPTIONS`, hands scipy's methods to scipy, turns a
complex state into a real one, and runs the segment loop
(:class:`~chebpan._control.single.SegmentLoop`) with the host BLAS on one thread.
Batches are :func:`chebpan.solve_ivp_batch` (:mod:`.solve_ivp_batch`).
docs/architecture.md follows a call from here to the kernels.
"""

from __future__ import annotations

import numpy as np
import scipy.integrate

from .._control.single import SegmentLoop
from .._core.basis import get_basis
from .._kernels.blas import solver_blas_threads
from .._output.events import EventTracker, prepare_events
from .._output.progress import ProgressBar
from .._rhs.counters import Counters
from .._rhs.evaluator import Evaluator
from .backend import namespace_of
from .complex_result import complexify_result
from .complex_state import realify, realify_events, realify_sparsity
from .prologue import basis_size, check_numpy_only, on_device, prepare, warn_pointwise
from .validation import validate_first_step, validate_max_step, validate_method, validate_tol

__all__ = ["solve_ivp"]


def solve_ivp(fun, t_span, y0, method="PAN", t_eval=None, dense_output=False,
              events=None, vectorized=None, args=None, **options):
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
        ``vectorized=True`` works unchanged.  With ``vectorized=False`` it
        is called once per point with a float ``t`` and ``y`` of shape (n,):
        correct, but slow for this method.
    t_span : 2-sequence of floats
        Interval of integration ``(t0, tf)``; ``tf < t0`` integrates backward.
    y0 : array_like, shape (n,)
        Initial state.  A complex ``y0`` is solved as the real system
        ``[Re y; Im y]`` of size 2n and the results are complex (as scipy's
        explicit methods support it); a callable ``jac`` is then assumed to be
        the complex derivative of a complex-analytic ``fun``.  As in scipy, a
        ``y0`` of another dimension raises ``ValueError("`y0` must be
        1-dimensional.")``: a batch of K IVPs (``y0`` of shape (K, n)) is
        solved by :func:`chebpan.solve_ivp_batch`.
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
    vectorized : bool or None, optional
        Whether ``fun`` accepts many points at once (see ``fun``).  True and
        False are obeyed.  None (the default; scipy's is False): the first
        call probes ``fun`` once with ``t`` (3,), ``y`` (n, 3) and once per
        point at the same three points; equal values make the solve
        vectorised, otherwise ``fun`` is called point by point and one
        ``UserWarning`` at the end of the solve names ``vectorized=True``
        and the number of calls.  The probe's calls count in ``nfev``.
        Events are called point by point unless ``vectorized=True``.
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
            forward differences, evaluated in the same vectorised call as the
            round's values.
        vectorized_jac : bool, optional
            Call a callable ``jac`` once with ``t`` (P,), ``y`` (n, P),
            returning shape (n, n, P).  Default False.
        jac_sparsity : array_like or sparse matrix, shape (n, n), optional
            As in scipy: where ``∂f/∂y`` may be nonzero, used when ``jac`` is
            None.  Forward differences then perturb groups of columns that
            share no row together, and systems above ``max_newton_size`` get
            sparse (SuperLU) Newton steps on stiff segments.
        n_coeffs : int, optional
            Chebyshev coefficients per component and segment (N).  Default
            None: chosen from ``rtol`` and the number of components n, between
            8 and 32 (12 at ``rtol = 1e-3``, 32 from 1e-10 on, at most 144 / n,
            or max(144 / n, 16) with ``jac`` or ``jac_sparsity``;
            docs/algorithm.md, "Cost of a segment"); 32 when ``n_nodes`` is
            given; 12 for a batch.
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
            depth).  Where a dense Newton round costs more than 4 Picard
            rounds, a single solve's Picard iteration goes on while the rounds
            it still needs are predicted to cost less.
        max_newton_size : int, optional
            Largest dense Newton system ``n·(n_coeffs − 2)`` (default 1200);
            larger systems use the Picard iteration, and sparse Newton
            steps on stiff segments when the Jacobian's sparsity is known
            (``jac_sparsity`` or a sparse constant ``jac``).
        newton_linear_solver : {"auto", "dense", "structured", "simplified"}, optional
            How Newton steps on stiff segments solve their collocation system:
            ``"dense"`` LU; ``"structured"`` GMRES preconditioned by a complex
            Schur solve with the Jacobian frozen (cost linear in the number of
            coefficients, factors kept across iterations); ``"simplified"``
            simplified Newton with that frozen-Jacobian solve, as Radau and BDF
            codes iterate (the Jacobian carried from segment to segment and
            evaluated again only when the iteration slows down).  The structured
            kinds also give stiff segments Newton steps above
            ``max_newton_size``; with a sparsity pattern there, their shifted
            matrices are sparse (SuperLU), where ``"dense"`` factorises the
            whole sparse collocation system.  Default ``"auto"``: simplified from
            256 unknowns ``n·(n_coeffs − 1)`` on, dense below; and from 256
            unknowns ``n·(n_coeffs − 2)`` on, non-stiff segments take Picard
            rounds only (no dense Gauss–Newton steps), the stiff basis taking
            the segments they cannot finish.
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

    Raises
    ------
    ValueError
        scipy's errors, with scipy's messages (a ``y0`` that is not 1-D
        included); ``batch_args`` (an option of
        :func:`chebpan.solve_ivp_batch`).

    See Also
    --------
    chebpan.solve_ivp_batch : K IVPs that share ``fun``, in lock step.

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
    """
    kind = validate_method(method)
    if kind == "scipy":
        return scipy.integrate.solve_ivp(
            fun, t_span, y0, method=method, t_eval=t_eval, dense_output=dense_output,
            events=events, vectorized=bool(vectorized), args=args, **options)

    with solver_blas_threads():
        return _solve_pan(fun, t_span, y0, t_eval, dense_output, events, vectorized, args,
                          options)


def _solve_pan(fun, t_span, y0, t_eval, dense_output, events, vectorized, args, options):
    """:func:`solve_ivp` with ``method="PAN"``, after scipy's methods are forwarded."""
    y0_raw = y0
    p = prepare(fun, t_span, y0, t_eval, args, options, batch=False)
    fun, jac, y0, values, array_xp = p.fun, p.jac, p.y0, p.values, p.array_xp
    t0, tf, t_eval = p.t0, p.tf, p.t_eval
    rtol, atol = values["rtol"], values["atol"]
    first_step = values["first_step"]
    vectorized_jac = bool(values["vectorized_jac"])
    jac_sparsity = values["jac_sparsity"]
    if array_xp is not None:
        check_numpy_only(array_xp, events=events, jac=jac, jac_sparsity=jac_sparsity)
    max_step = validate_max_step(values["max_step"])
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

    n_coeffs, n_nodes = basis_size(values, rtol, y0.shape[0],
                                   dense_newton=jac is None and jac_sparsity is None)
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
                        max_step, p.iteration, counters, xp=xp)
    if first_step is not None:
        first_step = validate_first_step(first_step, t0, tf)
    if events is not None:
        events, max_events, event_direction = prepare_events(events, args)
        loop.tracker = EventTracker(events, max_events, event_direction, t0, y0_raw,
                                    vectorized=bool(vectorized))
    if values["progress"]:
        loop.progress = ProgressBar(t0, tf)
    try:
        with on_device(xp, device):
            loop.run(first_step)
    finally:
        if loop.progress is not None:
            loop.progress.close()
    warn_pointwise(evaluator)
    res = loop.result(t_eval, dense_output)
    return res if n_complex is None else complexify_result(res, n_complex)

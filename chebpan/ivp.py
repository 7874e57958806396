"""``solve_ivp``: the scipy-compatible front end and the loop over segments."""

from __future__ import annotations

import contextlib
import math
import warnings

import array_api_compat
import numpy as np
import scipy.integrate
import scipy.sparse

from .backend import namespace_of, select_namespace
from .basis import chebyshev_values, get_basis
from .batch import BATCH_DEFAULTS, DEFAULT_NEWTON_MEMORY, BatchLoop
from .batch_result import batch_result
from .complex_state import complexify_result, realify, realify_events, realify_sparsity
from .counters import Counters
from .progress import ProgressBar
from .dense import OdeSolution
from .result import MESSAGES, Failure, OdeResult, failure_message
from .rhs import Evaluator
from .events import EventTracker, prepare_events, restrict
from .picard import coefficients, euler_start, node_values
from .segment import (
    FIRST_MAX_FACTOR,
    MAX_FACTOR,
    SAFETY_REJECT,
    STRETCH,
    IterationOptions,
    SegmentSolver,
    decay_error_estimate,
    error_estimate,
    extrapolated_guess,
    initial_lengths,
    next_length_factor,
    node_times,
)
from .validation import (
    validate_first_step,
    validate_max_step,
    validate_method,
    validate_t_eval,
    validate_t_span,
    validate_tol,
    validate_y0,
    validate_batch_args,
    validate_y0_array,
    validate_pan_options,
    warn_extraneous,
    wrap_args,
    wrap_jac,
)

__all__ = ["solve_ivp", "DEFAULT_N_COEFFS"]

#: Default number of Chebyshev coefficients per segment (see docs/options).
DEFAULT_N_COEFFS = 32


def solve_ivp(fun, t_span, y0, method="PAN", t_eval=None, dense_output=False,
              events=None, vectorized=False, args=None, **options):
    """Solve an initial value problem for a system of ODEs.

    A drop-in for :func:`scipy.integrate.solve_ivp`.  With ``method="PAN"``
    (the default) the solution is built segment by segment from Chebyshev
    polynomials whose coefficients are found by a zero-order (Picard-like)
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
            M > N − 1 the zero-order and Newton steps solve least-squares
            problems.
        max_picard, max_newton : int, optional
            Iteration bounds per segment attempt (defaults 12 and 8; for a
            batch 30 and 8).
        rho_newton : float, optional
            Zero-order contraction ratio above which Newton takes over
            (default 0.2; 0.9 for a batch, whose cost is work rather than
            depth).
        max_newton_size : int, optional
            Largest dense Newton system ``n·(n_coeffs − 2)`` (default 1200);
            larger systems use the zero-order iteration, and sparse Newton
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
        tol_ls, tol_newton : float, optional
            The paper's stopping rules: stop the zero-order iteration when the
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

    t0, tf = validate_t_span(t_span)
    jac = options.pop("jac", None)
    fun = wrap_args(fun, args)
    jac = wrap_jac(jac, args)
    t_eval = validate_t_eval(t_eval, t0, tf)

    rtol = options.pop("rtol", 1e-3)
    atol = options.pop("atol", 1e-6)
    first_step = options.pop("first_step", None)
    max_step = options.pop("max_step", np.inf)
    vectorized_jac = bool(options.pop("vectorized_jac", False))
    jac_sparsity = options.pop("jac_sparsity", None)
    progress = bool(options.pop("progress", False))
    backend = options.pop("backend", None)
    batch_args = options.pop("batch_args", None)
    newton_memory = options.pop("newton_memory", DEFAULT_NEWTON_MEMORY)
    given = {name: options.pop(name)
             for name in ("n_coeffs", "n_nodes", "max_picard", "max_newton", "rho_newton",
                          "tol_ls", "tol_newton", "max_newton_size")
             if name in options}
    warn_extraneous(options)
    validate_pan_options(dict(given, newton_memory=newton_memory))

    y0_raw = y0
    array_xp = select_namespace(backend, y0)
    if array_xp is None:
        y0 = validate_y0(y0, support_complex=True, batch=True)
    else:
        y0 = validate_y0_array(y0, array_xp, batch=True)
        _check_numpy_only(array_xp, events=events, jac=jac, jac_sparsity=jac_sparsity)
    # A batch's defaults are chosen for work, a single solve's for depth.
    n_coeffs, n_nodes, iteration = _iteration_options(
        dict(BATCH_DEFAULTS, **given) if y0.ndim == 2 else given)
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
        loop = BatchLoop(evaluator, basis, t0, tf, y0, rtol, atol, max_step, iteration,
                         counters, xp=xp, newton_memory=newton_memory)
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
    loop = _SegmentLoop(evaluator, basis, stiff_basis, t0, tf, xp.asarray(y0), rtol, atol,
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


def _iteration_options(given):
    """``(n_coeffs, n_nodes, IterationOptions)`` from the options given (and defaults)."""
    n_coeffs = int(given.pop("n_coeffs", DEFAULT_N_COEFFS))
    n_nodes = int(given.pop("n_nodes", n_coeffs - 1))
    return n_coeffs, n_nodes, IterationOptions(**given)


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


class _SegmentLoop:
    """State of one PAN solve: segments accepted so far, counters, status."""

    def __init__(self, evaluator, basis, stiff_basis, t0, tf, y0, rtol, atol, max_step,
                 iteration, counters, *, xp):
        self.xp = xp
        self.evaluator = evaluator
        self.basis = basis
        self.t0, self.tf = t0, tf
        self.direction = 1.0 if tf >= t0 else -1.0
        self.max_step = max_step
        self.rtol = xp.asarray(rtol, dtype=y0.dtype, device=y0.device)
        self.atol = xp.asarray(atol, dtype=y0.dtype, device=y0.device)
        self.counters = counters
        self.solver = SegmentSolver(basis, evaluator, self.rtol, self.atol, iteration,
                                    counters, xp=xp, stiff_basis=stiff_basis)
        self.y0 = y0[None, :]  # (K=1, L)
        self.ts = [t0]
        self.coeffs, self.y_start, self.y_end = [], [], []
        self.status = None
        self.message = None
        self.tracker = None  # an EventTracker when events are given
        self.progress = None  # a ProgressBar with progress=True
        self.warned_float32 = False
        self.last_failure = (Failure.ERROR, t0, t0)  # (what, t_a, t_b) of the last rejection
        # The first call of fun, in scipy's order: before `first_step` is checked.
        self.f0 = self._f_at(t0, self.y0) if tf != t0 else None

    def _f_at(self, t, y):
        xp = self.xp
        f, _ = self.evaluator.evaluate(xp.asarray([t], device=y.device), xp.reshape(y, (-1, 1)))
        return xp.reshape(f, (1, -1))

    def initial_length(self):
        """scipy's ``select_initial_step`` with a moderate order (one extra round)."""
        lengths = initial_lengths(lambda t, y: self._f_at(float(t[0]), y), self.t0, self.tf,
                                  self.y0, self.f0, self.solver.scale(self.y0), xp=self.xp)
        return float(lengths[0])

    def run(self, first_step):
        xp = self.xp
        if self.tf == self.t0:
            self.status = 0
            return
        t, y, f = self.t0, self.y0, self.f0
        if y.shape[-1] == 0:
            # Nothing to integrate: one (empty) segment over the whole span, as
            # scipy's solvers finish at once when n == 0.
            self.ts.append(self.tf)
            self.coeffs.append(xp.zeros((0, self.basis.n_coeffs), dtype=y.dtype, device=y.device))
            self.y_start.append(y[0, ...])
            self.y_end.append(y[0, ...])
            self.status = 0
            return
        if not bool(xp.all(xp.isfinite(f))):
            self._fail(f"`fun` returned non-finite values at t = {t!r}.")
            return
        h_abs = first_step if first_step is not None else self.initial_length()
        previous = None  # (coeffs, h) of the last accepted segment
        attempt = None  # (coeffs, h) of the last attempt if it failed from t
        start_with_newton = False
        rejected_here = False
        stiff = False
        stiff_rate = 0.0  # ‖J‖_∞ seen by Newton on the last attempt
        n_comp = y.shape[-1]
        if not self.solver.newton_available(self.solver.basis_for(True), n_comp):
            stiff_on = stiff_off = math.inf  # the stiff basis would have no Newton
        elif self.solver.newton_available(self.solver.basis_for(False), n_comp):
            stiff_on, stiff_off = STIFF_ON, STIFF_OFF
        else:
            # Only the zero-order iteration on the paper's basis, which needs
            # (h/2)‖J‖ below about 1: the (sparse) stiff basis takes over there.
            stiff_on, stiff_off = STIFF_ON_PICARD_ONLY, STIFF_OFF_PICARD_ONLY
        while self.status is None:
            remaining = abs(self.tf - t)
            h_abs = min(h_abs, self.max_step, remaining)
            min_step = 10 * abs(math.nextafter(t, self.direction * math.inf) - t)
            if h_abs < min_step:
                # A span of a few ulp is tried whole, once (scipy's steps do
                # the same); below that, and after a rejection, it fails.
                if remaining > min_step or rejected_here:
                    self._fail(self._failure_message(t))
                    return
                h_abs = remaining
            # Stretch a segment rather than leave a short one behind it.
            stretch = STRETCH * h_abs >= remaining and remaining <= self.max_step
            t_new = self.tf if h_abs >= remaining or stretch else t + self.direction * h_abs
            h = t_new - t
            # The paper's basis imposes y'(t_a) = f(t_a, y_a), which turns any
            # error of y_a off a stiff slow manifold into a fast slope; past a
            # stiffness of STIFF_ON the value-only (stiff) basis is used.
            # (stiff_rate is inf after a zero-order failure that only the
            # sparse stiff basis can take on: switch now.)
            stiff_now = stiff_rate * abs(h) / 2
            stiff = stiff_now > (stiff_off if stiff else stiff_on)
            if stiff and y.dtype == xp.float32 and not self.warned_float32:
                self.warned_float32 = True
                warnings.warn(
                    f"The solve in float32 has reached a stiff segment at t = {t!r}: "
                    "float32 is not accurate enough for stiff problems (the result "
                    "may be wrong); solve in float64.", RuntimeWarning, stacklevel=3)
            # Start from the Euler polynomial (X = 0) and, where there is one,
            # the previous segment extrapolated; the better one is kept.
            basis = self.solver.basis_for(stiff)
            half_h = xp.asarray([[h / 2]], dtype=y.dtype, device=y.device)
            x0 = [euler_start(basis, f, half_h, xp=xp)]
            if previous is not None:
                x0.append(extrapolated_guess(basis, previous[0], previous[1], h, f, xp=xp))
            if attempt is not None:
                x0.append(extrapolated_guess(basis, attempt[0], attempt[1], h, f, xp=xp,
                                             tau_start=-1.0))
            outcome = self.solver.solve(t, t_new, y, f, x0, start_with_newton=start_with_newton,
                                        stiff=stiff)
            if outcome.stiffness is not None:
                stiff_rate = outcome.stiffness / (abs(h) / 2)
            attempt = None
            if outcome.failure is not None:
                self.counters.nrejected += 1
                if not outcome.failure.nonfinite:
                    attempt = (coefficients(basis, y, f, half_h, outcome.x, xp=xp), h)
                self.last_failure = (outcome.failure, t, t_new)
                h_abs *= 0.5
                rejected_here = True
                start_with_newton = True
                continue
            scale = self.solver.scale(y, outcome.y_end)
            err = error_estimate(outcome.coeffs, scale, xp=xp)
            predicted = decay_error_estimate(outcome.coeffs, scale, xp=xp)
            growth = FIRST_MAX_FACTOR if previous is None else MAX_FACTOR
            factor = next_length_factor(err if predicted is None else min(err, predicted),
                                        self.basis.n_coeffs, growth)
            if err > 1:
                self.counters.nrejected += 1
                attempt = (outcome.coeffs, h)
                self.last_failure = (Failure.ERROR, t, t_new)
                h_abs *= min(factor, SAFETY_REJECT)
                rejected_here = True
                continue
            self.counters.nsegments += 1
            self.ts.append(t_new)
            self.coeffs.append(outcome.coeffs[0, ...])
            self.y_start.append(y[0, ...])
            self.y_end.append(outcome.y_end[0, ...])
            stop = self.tracker is not None and self._events_on_last_segment(y, f, outcome)
            if self.progress is not None:
                self.progress.update(self.ts[-1])  # a terminal event may have moved it
            if stop:
                self.status = 1
                return
            previous = (outcome.coeffs, h)
            start_with_newton = outcome.used_newton
            t, y, f = t_new, outcome.y_end, outcome.f_end
            if t == self.tf:
                self.status = 0
                return
            if rejected_here:
                factor = min(factor, 1.0)
            rejected_here = False
            h_abs *= factor

    def _events_on_last_segment(self, y_a, f_a, outcome):
        """Detect events on the segment just accepted; truncate it at a terminal one."""
        xp, basis, x = self.xp, outcome.basis, outcome.x
        t_a, t_b = self.ts[-2], self.ts[-1]
        half_h = xp.asarray([[(t_b - t_a) / 2]], dtype=y_a.dtype, device=y_a.device)
        y_nodes = node_values(basis, y_a, f_a, half_h, x, xp=xp)[0, ...]
        y_nodes = xp.concat([y_nodes[:, :-1], self.y_end[-1][:, None]], axis=1)
        segment = OdeSolution(xp.asarray([t_a, t_b], dtype=xp.float64, device=y_a.device),
                              self.coeffs[-1][None, ...],
                              y_a, self.y_end[-1][None, ...], xp=xp)
        t_stop = self.tracker.process(node_times(basis, t_a, t_b, xp=xp), y_nodes, segment)
        if t_stop is None:
            return False
        if t_stop == t_a and len(self.coeffs) > 1:
            # The event sits on the previous segment's end: drop this segment
            # rather than keep a zero-length one (scipy's ts never repeat).
            for stored in (self.ts, self.coeffs, self.y_start, self.y_end):
                stored.pop()
            return True
        if t_stop == t_a:
            constant = xp.zeros_like(self.coeffs[-1])
            self.coeffs[-1] = xp.concat([y_a[0, ...][:, None], constant[:, 1:]], axis=1)
        else:
            self.coeffs[-1] = restrict(self.coeffs[-1], (t_stop - t_a) / (t_b - t_a), xp=xp,
                                       chebyshev_values=chebyshev_values)
        self.y_end[-1] = segment(t_stop)
        self.ts[-1] = t_stop
        return True

    def _failure_message(self, t):
        what, t_a, t_b = self.last_failure
        return failure_message(what, t, t_a, t_b)

    def _fail(self, message):
        self.status = -1
        self.message = message

    # -- the result --------------------------------------------------------
    def solution(self):
        xp = self.xp
        n_comp = self.y0.shape[-1]
        if not self.coeffs:
            # No segment: a constant (zero-length span, or failure at t0).
            coeffs = xp.zeros((1, n_comp, self.basis.n_coeffs), dtype=self.y0.dtype,
                              device=self.y0.device)
            coeffs = xp.concat([self.y0[:, :, None], coeffs[..., 1:]], axis=-1)
            ts = xp.asarray([self.t0, self.t0], dtype=xp.float64, device=self.y0.device)
            return OdeSolution(ts, coeffs, self.y0, self.y0, xp=xp)
        return OdeSolution(xp.asarray(self.ts, dtype=xp.float64, device=self.y0.device),
                           xp.stack(self.coeffs),
                           xp.stack(self.y_start), xp.stack(self.y_end), xp=xp)

    def result(self, t_eval, dense_output):
        xp = self.xp
        sol = self.solution()
        if t_eval is None:
            if self.coeffs:
                ts = sol.ts
                ys = xp.concat([self.y0, xp.stack(self.y_end)], axis=0)
            else:
                ts = xp.asarray([self.t0, self.t0], dtype=xp.float64, device=self.y0.device)
                ys = xp.concat([self.y0, self.y0], axis=0)
                if self.status == -1:
                    ts, ys = ts[:1], ys[:1, ...]
            ys = xp.matrix_transpose(ys)
        else:
            t_last = self.ts[-1]
            reached = (t_eval - t_last) * self.direction <= 0
            if self.t0 == self.tf:
                reached = np.zeros_like(reached)
            t_out = t_eval[reached]
            if t_out.shape[0] == 0:
                ts, ys = [], []
            else:
                # (t_eval was given on the host; on another backend it is
                # returned in that backend's arrays, like y.)
                ts = t_out if xp is np else xp.asarray(t_out, device=self.y0.device)
                ys = sol(xp.asarray(t_out, dtype=xp.float64, device=self.y0.device))
        status = self.status
        message = self.message if status == -1 else MESSAGES[status]
        t_events = y_events = None
        if self.tracker is not None:
            t_events, y_events = self.tracker.results()
        return OdeResult(
            t=ts, y=ys, sol=sol if dense_output else None, t_events=t_events,
            y_events=y_events,
            nfev=self.counters.nfev, njev=self.counters.njev, nlu=self.counters.nlu,
            status=status, message=message, success=status >= 0,
            depth=self.counters.depth, npoints=self.counters.npoints,
            nsegments=self.counters.nsegments, nrejected=self.counters.nrejected,
            niter_picard=self.counters.niter_picard, niter_newton=self.counters.niter_newton,
        )


#: Stiffness ``(h/2) ‖J‖_∞`` above which the stiff basis is used, and below
#: which it is left again (hysteresis; Lorenz at its longest segments: ~50).
STIFF_ON = 100.0
STIFF_OFF = 25.0
#: The same where the paper's basis has no Newton (systems above max_newton_size).
STIFF_ON_PICARD_ONLY = 1.0
STIFF_OFF_PICARD_ONLY = 0.25

"""One segment: hybrid Picard → Newton iteration, error estimate, next length.

The solver proper (:func:`chebpan.ivp.solve_ivp`) moves from segment to
segment; this module decides everything that happens on one of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .basis import chebyshev_values
from .linesearch import strong_wolfe
from .newton import DenseLinearization, directional_slope, objective, residual, residual_size
from .picard import coefficients, end_value, node_values, picard_update
from .result import Failure
from .sparse import SparseLinearization

__all__ = ["IterationOptions", "SegmentResult", "SegmentSolver", "error_estimate",
           "error_estimates", "next_length_factor", "length_factors", "extrapolated_guess",
           "decay_error_estimate", "decay_error_estimates", "node_times", "converged",
           "tolerance_scale", "capped_magnitude", "rounding_floors", "initial_lengths"]

SAFETY = 0.9
MIN_FACTOR = 0.2
MAX_FACTOR = 4.0
#: Largest growth of the length after the first segment (sized by a heuristic).
FIRST_MAX_FACTOR = 20.0
#: A segment within this factor of the end is stretched to reach it.
STRETCH = 1.25
#: Largest factor applied to the length after an error rejection.
SAFETY_REJECT = 0.9
#: Without Newton: this many times ``max_picard`` iterations, and the
#: contraction ratio above which the segment is given up (and shortened).
PICARD_ONLY_FACTOR = 4
PICARD_ONLY_RHO = 0.9
#: Rounding floor of the convergence test, in units of eps·max|y|.
ROUNDING_ULPS = 64.0
#: Order assumed by the first segment's length heuristic (scipy's rule).
INITIAL_ORDER = 15
#: A segment's values count in its tolerance scale and rounding floor up to
#: this many times the largest component of its start: a diverging iterate
#: cannot inflate either beyond that and so pass the tests it fails.
GROWTH_CAP = 10.0


@dataclass(frozen=True)
class IterationOptions:
    """Knobs of the per-segment iteration (see :func:`chebpan.solve_ivp`).

    Attributes
    ----------
    max_picard, max_newton : int
        Bounds on the iterations of each kind per segment attempt.
    rho_newton : float
        Contraction ratio of the zero-order iteration above which it hands
        over to Newton.
    convergence : float
        Converged when the estimated remaining change of the node values,
        in units of ``atol + rtol |y|``, is below this.
    max_newton_size : int
        Largest Newton system ``L·(N−2)``: the Gauss–Newton matrix is dense
        (memory ``8 (L(N−2))²`` bytes, factorisation ``(L(N−2))³/3`` flops), so
        larger systems use the zero-order iteration only, on segments short
        enough for it to contract.
    tol_ls, tol_newton : float or None
        The paper's stopping rules (§5.5): stop the zero-order iteration when
        ``‖X_k − X_{k−1}‖ < tol_ls`` and Newton when ``‖∇e‖ < tol_newton``
        (2-norms of the raw coefficients / gradient).  ``None``: use
        ``convergence`` instead.
    """

    max_picard: int = 12
    max_newton: int = 8
    rho_newton: float = 0.2
    convergence: float = 1e-3
    tol_ls: float | None = None
    tol_newton: float | None = None
    max_newton_size: int = 1200


@dataclass
class SegmentResult:
    """What one attempt on ``[t_a, t_a + h]`` produced.

    ``x`` is the last iterate; ``f_end`` is ``f`` at (or, after a Picard exit,
    within the convergence tolerance of) the segment end.  ``failure`` is
    ``None`` on convergence, otherwise why it failed.
    """

    x: Any
    f_end: Any
    y_end: Any
    coeffs: Any
    failure: Failure | None
    used_newton: bool
    rounds: int = 0
    basis: Any = None
    #: ``max_m (h/2) ‖J_m‖_∞`` from the Jacobian Newton started with; None
    #: when no Jacobian was evaluated; inf when the zero-order iteration
    #: failed where only the sparse Newton (stiff basis) could go on.
    stiffness: float | None = None


def scaled_rms(delta, scale, *, xp):
    """RMS over components of ``max_m |delta| / scale``: ``delta`` (K, L, M) → (K,)."""
    if delta.shape[-2] == 0:
        return xp.zeros(delta.shape[:1], dtype=delta.dtype, device=delta.device)
    per_component = xp.max(xp.abs(delta), axis=-1) / scale
    return xp.sqrt(xp.mean(per_component * per_component, axis=-1))


def scaled_rms_max(delta, scale, *, xp):
    """:func:`scaled_rms`, max over the batch: a float."""
    return float(xp.max(scaled_rms(delta, scale, xp=xp)))


def error_estimates(coeffs, scale, *, xp):
    """Scaled truncation-error estimate of each batch member: (K,).

    ``|c_{N-2}| + |c_{N-1}|`` per component, divided by ``atol + rtol |y|``,
    RMS over components (scipy's norm).
    """
    if coeffs.shape[-2] == 0:
        return xp.zeros(coeffs.shape[:1], dtype=coeffs.dtype, device=coeffs.device)
    tail = xp.abs(coeffs[..., -1]) + xp.abs(coeffs[..., -2])
    ratio = tail / scale
    return xp.sqrt(xp.mean(ratio * ratio, axis=-1))


def error_estimate(coeffs, scale, *, xp):
    """:func:`error_estimates`, max over the batch: a float."""
    return float(xp.max(error_estimates(coeffs, scale, xp=xp)))


def decay_error_estimates(coeffs, scale, *, xp):
    """Tail estimate of each batch member from the decay of its coefficients: (K,).

    When a segment is short, its last coefficients sit at the rounding floor
    and say nothing about how much longer the segment could be.  Fitting
    ``log(|c_2k| + |c_2k+1|)`` (scaled, max over components) by a line over
    the pairs above the floor and reading the line at the last pair gives
    the tail that the decay rate predicts.  Pairs keep odd/even functions
    (whose every other coefficient vanishes) from breaking the fit.  NaN
    where the fit says nothing (fewer than three pairs above the floor with
    the last one among them, or no decay).
    """
    k, n_comp, n = coeffs.shape
    nan = xp.full((k,), xp.nan, dtype=coeffs.dtype, device=coeffs.device)
    if n_comp == 0 or n < 8:
        return nan
    eps = float(xp.finfo(coeffs.dtype).eps)
    scaled = xp.max(xp.abs(coeffs) / scale[..., None], axis=1)  # (K, N)
    n_pairs = n // 2
    pairs = xp.sum(xp.reshape(scaled[:, 2:2 * n_pairs], (k, n_pairs - 1, 2)), axis=-1)
    floor = 100 * eps * xp.max(scaled, axis=-1)
    above = pairs > floor[:, None]
    mask = xp.astype(above, pairs.dtype)
    count = xp.sum(mask, axis=-1)
    safe_count = xp.maximum(count, xp.ones_like(count))
    j = xp.astype(xp.arange(1, n_pairs, device=pairs.device), pairs.dtype)
    log_pairs = xp.log(xp.where(above, pairs, xp.ones_like(pairs)))
    j_mean = xp.sum(mask * j, axis=-1) / safe_count
    log_mean = xp.sum(mask * log_pairs, axis=-1) / safe_count
    centred = mask * (j - j_mean[:, None])
    spread = xp.sum(centred * centred, axis=-1)
    slope = (xp.sum(centred * (log_pairs - log_mean[:, None]), axis=-1)
             / xp.where(spread > 0, spread, xp.ones_like(spread)))
    fitted = xp.where(slope < 0, xp.exp(log_mean + slope * (n_pairs - 1 - j_mean)), nan)
    # (Almost) nothing above rounding: a low-degree polynomial, which says
    # only that the segment can be much longer.
    low = (count == 0) | (pairs[:, -1] <= floor)
    few = xp.where(low, xp.zeros_like(nan), nan)
    return xp.where(count < 3, few, fitted)


def decay_error_estimate(coeffs, scale, *, xp):
    """:func:`decay_error_estimates` of a single IVP (K = 1): a float, or None."""
    value = float(decay_error_estimates(coeffs, scale, xp=xp)[0])
    return None if math.isnan(value) else value


def length_factors(err, n_coeffs: int, max_factor, *, xp):
    """Growth factors of the segment lengths from scaled error estimates (K,).

    The tail coefficients of a smooth solution scale like ``h^(N-1)``, hence
    ``SAFETY · err^(−1/(N−1))``, clipped to ``[MIN_FACTOR, max_factor]``.
    """
    safe = xp.where((err > 0) & xp.isfinite(err), err, xp.ones_like(err))
    factor = xp.clip(SAFETY * safe ** (-1.0 / (n_coeffs - 1)), MIN_FACTOR, None)
    factor = xp.minimum(factor, max_factor)
    factor = xp.where(err == 0, max_factor * xp.ones_like(err), factor)
    return xp.where(xp.isfinite(err), factor, MIN_FACTOR * xp.ones_like(err))


def next_length_factor(err: float, n_coeffs: int, max_factor: float = MAX_FACTOR) -> float:
    """Growth factor of the segment length from the scaled error estimate.

    The tail coefficients of a smooth solution scale like ``h^(N-1)``, hence
    ``SAFETY · err^(−1/(N−1))``, clipped to ``[MIN_FACTOR, MAX_FACTOR]``
    (the scalar form of :func:`length_factors`).
    """
    if err == 0.0:
        return max_factor
    if not math.isfinite(err):
        return MIN_FACTOR
    factor = SAFETY * err ** (-1.0 / (n_coeffs - 1))
    return min(max_factor, max(MIN_FACTOR, factor))


def extrapolated_guess(basis, prev_coeffs, prev_h, h, f_a, *, xp, tau_start=1.0):
    """Initial X for a segment from another segment's polynomial.

    The other polynomial (length ``prev_h``; the new segment starts at its
    reference point ``tau_start``: +1 for the previous segment, −1 for a
    rejected attempt from the same point) has its derivative evaluated on the
    new nodes, and one zero-order update turns that into X.  Far outside
    [-1, 1] the high Chebyshev terms blow up (``T_n(τ)`` grows like
    ``(τ + √(τ²−1))^n``), so the series is truncated where its terms,
    evaluated at the far end, are smallest (optimal truncation of an
    asymptotic series).  ``prev_h`` and ``h`` are floats, or arrays (K,)
    with one length per batch member.
    """
    n = basis.n_coeffs
    tau64 = 1 + xp.astype(basis.tau, xp.float64)
    # New nodes in the other segment's τ; float64 whatever the working dtype,
    # since T_n there can exceed float32's range.
    if isinstance(h, (int, float)):
        tau_prev = tau_start + (h / prev_h) * tau64
        _, slopes = chebyshev_values(n, tau_prev, xp=xp)  # (N, M)
        half_h = xp.asarray([[h / 2]], dtype=f_a.dtype, device=f_a.device)
        to_time = 2.0 / prev_h
    else:
        tau_prev = tau_start + (h / prev_h)[:, None] * tau64
        _, slopes = chebyshev_values(n, tau_prev, xp=xp)  # (N, K, M)
        slopes = xp.permute_dims(slopes, (1, 0, 2))
        half_h = xp.astype(h / 2, f_a.dtype)[:, None]
        to_time = (2.0 / prev_h)[:, None, None]
    prev_coeffs = xp.astype(prev_coeffs, xp.float64)
    size = xp.max(xp.abs(prev_coeffs), axis=-2) * xp.abs(slopes[..., -1])  # (K, N)
    size = xp.where(xp.arange(n, device=size.device) < 2, xp.inf, size)
    keep = xp.argmin(size, axis=-1)  # (K,)
    mask = xp.astype(xp.arange(n, device=keep.device)[None, :] <= keep[:, None],
                     prev_coeffs.dtype)
    derivative = xp.matmul(prev_coeffs * mask[:, None, :], slopes) * to_time
    derivative = xp.astype(derivative, f_a.dtype)
    return picard_update(basis, f_a, derivative, half_h, xp=xp)


def capped_magnitude(y_start, values, *, xp):
    """``max(|y_start|, min(|values|, GROWTH_CAP · max_i |y_start_i|))``, elementwise.

    ``y_start`` (K, n) is a segment's start, ``values`` (K, n) magnitudes
    found on the segment by the iteration (its end value, the largest node
    value): they count only up to :data:`GROWTH_CAP` times the start's
    largest component, so that a diverging iterate cannot loosen the tests
    that judge it (docs/algorithm.md, "Segment control").
    """
    start = xp.abs(y_start)
    if start.shape[-1] == 0:
        return start
    cap = GROWTH_CAP * xp.max(start, axis=-1, keepdims=True)
    return xp.maximum(start, xp.minimum(xp.abs(values), cap))


def tolerance_scale(atol, rtol, y_start, *values, xp):
    """``atol + rtol max(|y_start|, |values| capped)``: the scale of errors and changes.

    ``values`` (the iterate's end value) count through
    :func:`capped_magnitude`; with none, the scale of ``y_start`` itself.
    """
    magnitude = xp.abs(y_start)
    for v in values:
        magnitude = xp.maximum(magnitude, capped_magnitude(y_start, v, xp=xp))
    return atol + rtol * magnitude


def rounding_floors(y_start, y_nodes, scale, eps, *, xp):
    """The convergence test's rounding floor of each instance: (K,), scaled.

    Node values are known to ``eps`` times their size, so an update cannot be
    resolved below ``ROUNDING_ULPS · eps · max |y_m| / scale``; the node
    values count through :func:`capped_magnitude`.
    """
    if y_nodes.shape[-2] == 0:
        return xp.zeros(y_nodes.shape[:1], dtype=y_nodes.dtype, device=y_nodes.device)
    size = capped_magnitude(y_start, xp.max(xp.abs(y_nodes), axis=-1), xp=xp) / scale
    return ROUNDING_ULPS * eps * xp.max(size, axis=-1)


def initial_lengths(f_at, t0, tf, y0, f0, scale, *, xp, order=INITIAL_ORDER):
    """scipy's ``select_initial_step`` for K IVPs at once: lengths (K,), float64.

    ``f_at(t, y)`` evaluates ``fun`` at one point per IVP (t (K,), y (K, L)),
    one round; ``t0`` is a float, ``y0``, ``f0`` (K, L), ``scale`` the
    tolerance scale at ``y0``.  ``order`` is only that of the heuristic (a
    moderate one: what follows adapts the segment lengths anyway).
    """
    interval = abs(tf - t0)
    direction = 1.0 if tf >= t0 else -1.0
    d0 = xp.astype(scaled_rms(y0[..., None], scale, xp=xp), xp.float64)
    d1 = xp.astype(scaled_rms(f0[..., None], scale, xp=xp), xp.float64)
    small = (d0 < 1e-5) | (d1 < 1e-5)
    h0 = xp.where(small, 1e-6, 0.01 * d0 / xp.where(small, 1.0, d1))
    h0 = xp.minimum(h0, interval)
    step = xp.astype(direction * h0, y0.dtype)[:, None]
    f1 = f_at(t0 + direction * h0, y0 + step * f0)
    d2 = xp.astype(scaled_rms((f1 - f0)[..., None], scale, xp=xp), xp.float64) / h0
    flat = (d1 <= 1e-15) & (d2 <= 1e-15)
    largest = xp.maximum(d1, d2)
    h1 = xp.where(flat, xp.maximum(xp.full_like(h0, 1e-6), h0 * 1e-3),
                  (0.01 / xp.where(flat, 1.0, largest)) ** (1 / (order + 1)))
    h = xp.minimum(xp.minimum(100 * h0, h1), interval)
    return xp.where(xp.all(xp.isfinite(f1), axis=1), h, h0)


def converged(change, previous, floor, tolerance, *, xp):
    """Batched convergence test of :meth:`SegmentSolver._converged`: (K,) bools.

    ``change`` is the scaled size of the last update, ``previous`` the one
    before (NaN for none): with a contraction ratio ρ < 1 the remaining
    change is estimated as ``change ρ / (1 − ρ)``.
    """
    rho = change / xp.where(previous > 0, previous, xp.nan)
    contracting = xp.isfinite(rho) & (rho < 1)
    safe_rho = xp.where(contracting, rho, xp.zeros_like(rho))
    remaining = xp.where(contracting, change * safe_rho / (1 - safe_rho), change)
    return (change <= floor) | (remaining <= tolerance)


def node_times(basis, t_a, t_b, *, xp):
    """Times of the nodes of ``[t_a, t_b]``: (M,), the last one exactly ``t_b``.

    ``t_a + (t_b − t_a)`` may round past ``t_b``; the last node is set to
    ``t_b`` itself so that ``fun`` is never evaluated outside ``t_span``.
    """
    t_nodes = t_a + ((t_b - t_a) / 2) * (1 + basis.tau)
    return xp.concat([t_nodes[:-1], xp.asarray([t_b], dtype=t_nodes.dtype, device=t_nodes.device)])


class SegmentSolver:
    """Runs the hybrid iteration on segments of one solve.

    Parameters
    ----------
    basis : ChebyshevBasis
    evaluator : chebpan.rhs.Evaluator
    rtol, atol : float or array, shape (L,)
    options : IterationOptions
    counters : chebpan.counters.Counters
    xp : namespace
    """

    def __init__(self, basis, evaluator, rtol, atol, options, counters, *, xp,
                 stiff_basis=None):
        self.regular_basis = self.basis = basis
        self.stiff_basis = stiff_basis if stiff_basis is not None else basis
        self.evaluator = evaluator
        self.rtol = rtol
        self.atol = atol
        self.options = options
        self.counters = counters
        self.xp = xp
        self.eps = float(xp.finfo(basis.tau.dtype).eps)
        self.pattern = getattr(evaluator, "pattern", None)

    # -- helpers -----------------------------------------------------------
    def scale(self, *values):
        return tolerance_scale(self.atol, self.rtol, *values, xp=self.xp)

    def _converged(self, change, previous, floor):
        """Remaining change (scaled) after an update of size ``change``."""
        if change <= floor:
            return True
        if previous is not None and previous > 0:
            rho = change / previous
            if rho < 1:
                change = change * rho / (1 - rho)
        return change <= self.options.convergence

    def _floor(self, y_a, y_nodes, scale):
        """The convergence test's rounding floor, in scaled units."""
        return float(self.xp.max(rounding_floors(y_a, y_nodes, scale, self.eps, xp=self.xp)))

    # -- the iteration -----------------------------------------------------
    def dense_newton_fits(self, basis, n_comp):
        """Whether ``basis`` is small enough for dense Newton with L = n_comp."""
        return n_comp * basis.n_free <= self.options.max_newton_size

    def newton_available(self, basis, n_comp):
        """Dense Newton, or sparse Newton on a square stiff basis with a pattern."""
        square = basis.n_fixed == 1 and basis.n_nodes - 1 == basis.n_free
        return (self.dense_newton_fits(basis, n_comp)
                or (self.pattern is not None and square))

    def basis_for(self, stiff):
        return self.stiff_basis if stiff else self.regular_basis

    def solve(self, t_a, t_b, y_a, f_a, x0, *, start_with_newton=False,
              stiff=False) -> SegmentResult:
        """Iterate on ``[t_a, t_b]`` from ``x0`` until converged or failed.

        ``t_b`` is passed (not ``h``) because ``t_a + (t_b − t_a)`` may round
        past ``t_b``: the last node must be exactly the segment end, so that
        ``fun`` is never evaluated outside ``t_span``.  ``x0`` (candidate
        starts) must be in the layout of ``basis_for(stiff)``.
        """
        depth_before = self.counters.depth
        self.basis = self.basis_for(stiff)
        self.stiffness = None
        result = self._solve(t_a, t_b, y_a, f_a, x0, start_with_newton=start_with_newton)
        result.rounds = self.counters.depth - depth_before
        result.basis = self.basis
        result.stiffness = self.stiffness
        return result

    def _solve(self, t_a, t_b, y_a, f_a, x0, *, start_with_newton):
        xp, basis, opts = self.xp, self.basis, self.options
        h = t_b - t_a
        half_h = xp.asarray([[h / 2]], dtype=y_a.dtype, device=y_a.device)
        t_nodes = node_times(basis, t_a, t_b, xp=xp)
        self.dense_newton = self.dense_newton_fits(basis, y_a.shape[-1])
        # Above the dense size, Newton needs a sparsity pattern and the
        # square (stiff-basis) system that SuperLU factorises.
        newton_allowed = self.newton_available(basis, y_a.shape[-1])
        use_newton = start_with_newton and newton_allowed
        x, y_nodes, f_nodes, jac = self._best_start(t_nodes, y_a, f_a, half_h, x0, use_newton)
        if f_nodes is None:
            return self._failed(x, self.nonfinite)

        previous = None
        if not use_newton:
            max_picard = opts.max_picard if newton_allowed else PICARD_ONLY_FACTOR * opts.max_picard
            rho_limit = opts.rho_newton if newton_allowed else PICARD_ONLY_RHO
            for iteration in range(max_picard):
                self.counters.niter_picard += 1
                x_new = picard_update(basis, f_a, f_nodes, half_h, xp=xp)
                dx = x_new - x
                scale = self.scale(y_a, y_nodes[..., -1])
                change = scaled_rms_max(xp.matmul(dx, basis.phi_tilde), scale, xp=xp)
                if not math.isfinite(change):
                    return self._failed(x, Failure.DIVERGED)
                x = x_new
                if opts.tol_ls is not None:
                    done = float(xp.sqrt(xp.sum(dx * dx))) < opts.tol_ls
                else:
                    done = self._converged(change, previous, self._floor(y_a, y_nodes, scale))
                if done:
                    # f at the previous iterate's end point: within the
                    # convergence tolerance of f(t_b, y_b), see docs/algorithm.
                    return self._finish(y_a, f_a, half_h, x, f_nodes[..., -1], used_newton=False)
                if previous is not None and change > rho_limit * previous:
                    break
                previous = change
                # The last allowed iteration also fetches J: Newton needs it next.
                last = iteration == max_picard - 1
                y_nodes = node_values(basis, y_a, f_a, half_h, x, xp=xp)
                f_nodes, jac = self._evaluate(t_nodes, y_nodes,
                                              with_jacobian=last and newton_allowed)
                if f_nodes is None:
                    return self._failed(x, self.nonfinite)
            else:
                if not newton_allowed:
                    return self._picard_only_failed(x)
                return self._newton(t_nodes, y_a, f_a, half_h, x, y_nodes, f_nodes, jac)
            if not newton_allowed:
                return self._picard_only_failed(x)
            # Too slow: Newton from the newest iterate.
            y_nodes = node_values(basis, y_a, f_a, half_h, x, xp=xp)
            f_nodes, jac = self._evaluate(t_nodes, y_nodes, with_jacobian=True)
            if f_nodes is None:
                return self._failed(x, self.nonfinite)
        return self._newton(t_nodes, y_a, f_a, half_h, x, y_nodes, f_nodes, jac)

    def _best_start(self, t_nodes, y_a, f_a, half_h, candidates, with_jacobian):
        """Evaluate all candidate starts in one round; keep the smallest residual.

        ``candidates`` is a list of X arrays, each (1, L, N-2).  They are
        stacked along the batch axis, so trying several costs work, not depth.
        A candidate whose f (or J) is not finite is never chosen; the round
        fails only if none is usable.
        """
        xp, basis = self.xp, self.basis
        x = xp.concat(candidates, axis=0)
        count = x.shape[0]
        repeat = lambda a: xp.concat([a] * count)  # noqa: E731
        y_nodes = node_values(basis, repeat(y_a), repeat(f_a), repeat(half_h), x, xp=xp)
        f_nodes, jac = self._evaluate_raw(t_nodes, y_nodes, with_jacobian=with_jacobian)
        finite = xp.all(xp.isfinite(f_nodes), axis=(1, 2))
        self.nonfinite = Failure.NONFINITE
        if jac is not None:
            if bool(xp.any(finite)):
                self.nonfinite = Failure.NONFINITE_JAC
            finite = finite & xp.all(xp.isfinite(jac), axis=tuple(range(1, jac.ndim)))
        if not bool(xp.any(finite)):
            return x[:1, ...], y_nodes[:1, ...], None, None
        r = residual(basis, repeat(f_a), f_nodes, repeat(half_h), x, xp=xp)
        value = objective(basis, r, repeat(residual_size(y_a, f_a, half_h, xp=xp)), xp=xp)
        best = int(xp.argmin(xp.where(finite, value, xp.inf)))
        pick = slice(best, best + 1)
        return (x[pick, ...], y_nodes[pick, ...], f_nodes[pick, ...],
                None if jac is None else jac[pick, ...])

    def _picard_only_failed(self, x):
        if self.pattern is not None:
            # Too long for the zero-order iteration: Newton on the stiff
            # basis (sparse) is the way on, and it will measure ‖J‖.
            self.stiffness = math.inf
        return self._failed(x, Failure.NO_CONVERGENCE)

    def _note_stiffness(self, jac, half_h):
        xp = self.xp
        if jac.ndim == 3:  # values on the sparsity pattern, (K, M, nnz)
            norm = float(self.pattern.row_sums(jac).max())
        else:
            norm = float(xp.max(xp.sum(xp.abs(jac), axis=-1)))
        self.stiffness = abs(float(half_h[0, 0])) * norm

    def _linearize(self, jac, half_h):
        """The residual Jacobian (dense or sparse) of one iterate."""
        if jac.ndim == 3 and not self.dense_newton:
            if jac.shape[0] != 1:
                raise NotImplementedError("sparse Newton steps solve one IVP at a time")
            return SparseLinearization(self.basis, self.pattern, jac[0, ...], float(half_h[0, 0]))
        if jac.ndim == 3:
            jac = self.xp.asarray(self.pattern.to_dense(jac))
        return DenseLinearization(self.basis, jac, half_h, xp=self.xp)

    def _newton(self, t_nodes, y_a, f_a, half_h, x, y_nodes, f_nodes, jac):
        xp, basis, opts = self.xp, self.basis, self.options
        self._note_stiffness(jac, half_h)
        r = residual(basis, f_a, f_nodes, half_h, x, xp=xp)
        linear = self._linearize(jac, half_h)
        grad = linear.gradient(r)
        size = residual_size(y_a, f_a, half_h, xp=xp)
        value = float(objective(basis, r, size, xp=xp)[0])
        previous = None
        for _ in range(opts.max_newton):
            self.counters.niter_newton += 1
            if opts.tol_newton is not None and float(xp.sqrt(xp.sum(grad * grad))) < opts.tol_newton:
                return self._finish(y_a, f_a, half_h, x, f_nodes[..., -1], used_newton=True)
            self.counters.nlu += 1
            direction = linear.direction(r, grad)
            scale = self.scale(y_a, y_nodes[..., -1])
            change = scaled_rms_max(xp.matmul(direction, basis.phi_tilde), scale, xp=xp)
            if not math.isfinite(change):
                return self._failed(x, Failure.DIVERGED)
            floor = self._floor(y_a, y_nodes, scale)
            slope = float(directional_slope(grad, direction, size, xp=xp)[0])
            if change <= floor or not slope < 0:
                # Nothing left to gain above rounding (a direction that is not
                # downhill only happens there, through rounding in H or ∇e).
                if change <= max(floor, opts.convergence):
                    return self._finish(y_a, f_a, half_h, x + direction, f_nodes[..., -1],
                                        used_newton=True)
                return self._failed(x, Failure.STALLED)

            def phi(alpha):
                x_trial = x + alpha * direction
                y_trial = node_values(basis, y_a, f_a, half_h, x_trial, xp=xp)
                f_trial, jac_trial = self._evaluate(t_nodes, y_trial, with_jacobian=True)
                if f_trial is None:
                    return math.inf, math.nan, None
                r_trial = residual(basis, f_a, f_trial, half_h, x_trial, xp=xp)
                linear_trial = self._linearize(jac_trial, half_h)
                g_trial = linear_trial.gradient(r_trial)
                return (float(objective(basis, r_trial, size, xp=xp)[0]),
                        float(directional_slope(g_trial, direction, size, xp=xp)[0]),
                        (x_trial, y_trial, f_trial, r_trial, linear_trial, g_trial))

            search = strong_wolfe(phi, value, slope)
            if search.payload is None:
                if change <= opts.convergence:
                    return self._finish(y_a, f_a, half_h, x, f_nodes[..., -1], used_newton=True)
                return self._failed(x, Failure.LINE_SEARCH)
            x, y_nodes, f_nodes, r, linear, grad = search.payload
            value = search.value
            change *= search.alpha
            if opts.tol_newton is None and self._converged(change, previous, floor):
                return self._finish(y_a, f_a, half_h, x, f_nodes[..., -1], used_newton=True)
            previous = change
        return self._failed(x, Failure.NO_CONVERGENCE)

    def _evaluate_raw(self, t_nodes, y_nodes, *, with_jacobian):
        """One round: f (and J) at the nodes as (K, L, M) and (K, M, L, L)."""
        xp = self.xp
        k, n_comp, m = y_nodes.shape
        flat_y = xp.reshape(xp.permute_dims(y_nodes, (1, 0, 2)), (n_comp, k * m))
        flat_t = xp.reshape(xp.broadcast_to(t_nodes[None, :], (k, m)), (k * m,))
        f, jac = self.evaluator.evaluate(flat_t, flat_y, with_jacobian=with_jacobian)
        f_nodes = xp.permute_dims(xp.reshape(f, (n_comp, k, m)), (1, 0, 2))
        if jac is not None:
            tail = (jac.shape[-1],) if self.pattern is not None else (n_comp, n_comp)
            jac = xp.reshape(jac, (k, m, *tail))
        return f_nodes, jac

    def _evaluate(self, t_nodes, y_nodes, *, with_jacobian):
        """As :meth:`_evaluate_raw`, but ``(None, None)`` if anything is not finite."""
        xp = self.xp
        f_nodes, jac = self._evaluate_raw(t_nodes, y_nodes, with_jacobian=with_jacobian)
        if not bool(xp.all(xp.isfinite(f_nodes))):
            self.nonfinite = Failure.NONFINITE
            return None, None
        if jac is not None and not bool(xp.all(xp.isfinite(jac))):
            self.nonfinite = Failure.NONFINITE_JAC
            return None, None
        return f_nodes, jac

    def _finish(self, y_a, f_a, half_h, x, f_end, *, used_newton):
        xp, basis = self.xp, self.basis
        y_end = end_value(basis, y_a, f_a, half_h, x, xp=xp)
        coeffs = coefficients(basis, y_a, f_a, half_h, x, xp=xp)
        return SegmentResult(x=x, f_end=f_end, y_end=y_end, coeffs=coeffs, failure=None,
                             used_newton=used_newton)

    def _failed(self, x, why):
        # The last iterate's coefficients are kept: a retry on a shorter
        # segment can start from them.
        return SegmentResult(x=x, f_end=None, y_end=None, coeffs=None, failure=why,
                             used_newton=False)

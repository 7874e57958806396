"""One segment of a single solve: the Picard → Newton iteration until converged or failed.

:class:`SegmentSolver` runs one attempt on ``[t_a, t_b]`` (docs/algorithm.md, "One
segment"): the best of several starting polynomials, Picard iterations while they
contract, Newton steps with a strong-Wolfe line search when they do not — or, on large
stiff segments, simplified Newton with a frozen Jacobian carried across segments.
Whether the attempt is accepted and how long the next one is are decided by the
segment loop (:mod:`chebpan._control.single`) with :mod:`chebpan._control.policy`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .._core.estimates import (
    ROUNDING_ULPS,
    scaled_rms,
    start_gaps,
    step_change,
    tolerance_scale,
)
from .._core.linesearch import strong_wolfe
from .._core.newton import (
    DenseLinearization,
    candidate_measures,
    jacobian_norm,
    linearised_end_slope,
    newton_slope,
    newton_step_change,
    residual,
    residual_measures,
    residual_size,
)
from .._core.picard import coefficients, end_value, node_times, node_values, picard_step
from .._core.structured import (
    REFACTOR_RHO,
    STRUCTURED_MIN_SIZE,
    FrozenJacobianSolver,
    StructuredLinearization,
    frozen_jacobian,
)
from .._rhs.sparse import (
    SparseLinearization,
    SparseStructuredLinearization,
    sparse_frozen_solver,
)
from .._output.result import Failure
from .policy import (
    COSTLY_NEWTON,
    HOPELESS_ALPHA,
    MAX_DAMPED_STEPS,
    NEWTON_TRIALS,
    PICARD_ONLY_FACTOR,
    PICARD_ONLY_RHO,
    SUPERLINEAR,
    newton_round_cost,
    picard_cheaper,
)

__all__ = ["SegmentResult", "SegmentSolver", "CarriedJacobian"]

#: Simplified Newton iterations a frozen J is given to converge (scipy's Radau: 6,
#: to a looser tolerance; 8 here took 5-15 % more rounds on MEDAKZO and BRUSS).
FROZEN_MAX_ITER = 12
#: Iterations a J evaluated for this attempt may contract too slowly (at the ratio
#: measured, the test not reached within FROZEN_MAX_ITER) before the attempt fails:
#: the first ratio after a fresh J is often the slowest (MEDAKZO: 0.30, then 0.05).
FRESH_SLOW_STEPS = 2


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
    #: when no Jacobian was evaluated; inf when the Picard iteration
    #: failed where only the sparse Newton (stiff basis) could go on.
    stiffness: float | None = None
    #: ``J`` (K, n, n) at the segment's end from the last dense linearisation of a
    #: converged Newton iteration (the next segment's linearised start), else None.
    end_jac: Any = None
    #: The Picard iteration's last contraction ratio per unit length, ``ρ / |h|``
    #: (None when it measured none): the next attempt's ρ is about this times its length.
    picard_rate: float | None = None
    #: On the stiff basis, the scaled size of the start-slope gap filtered by the
    #: stiffness (:meth:`SegmentSolver._start_error`); above 1 the attempt is rejected.
    start_error: float = 0.0


@dataclass
class CarriedJacobian:
    """The frozen Jacobian of simplified Newton, kept from segment to segment.

    ``jac`` is (1, n, n) float64, or (1, nnz) values on the sparsity pattern; ``norm``
    its nodes' ``max ‖J_m‖∞`` when it was evaluated (the stiffness per unit ``h/2``);
    ``fresh`` whether it was evaluated for the attempt under way (a carried one is
    re-evaluated when the iteration slows down, a fresh one is not: the attempt fails).
    ``solver`` is its factorised frozen system for the length ``half_h``.
    """

    jac: Any
    norm: float
    fresh: bool = True
    solver: Any = None
    half_h: float | None = None
    basis: Any = None


class SegmentSolver:
    """Runs the hybrid iteration on segments of one solve.

    Parameters
    ----------
    basis : ChebyshevBasis
    evaluator : chebpan._rhs.evaluator.Evaluator
    rtol, atol : float or array, shape (n,)
    options : IterationOptions
    counters : chebpan._rhs.counters.Counters
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
        self.carried = None  # CarriedJacobian of simplified Newton

    # -- helpers -----------------------------------------------------------
    def scale(self, *values):
        return tolerance_scale(self.atol, self.rtol, *values, xp=self.xp)

    def _converged(self, change, previous, floor, before=None):
        """Remaining change (scaled) after an update of size ``change``.

        ``previous`` is the update before it: with their ratio ρ < 1 the remaining
        change is ``change ρ / (1 − ρ)`` (linear convergence).  ``before``, the update
        before ``previous``, is given after full, freshly factorised Newton steps: when
        the ratios fall (ρ at most ``SUPERLINEAR`` times the ratio before), the
        convergence is quadratic, the next update about ``change ρ²``, and the
        estimate is ρ times smaller (docs/algorithm.md, "One segment").
        """
        if change <= floor:
            return True
        if previous is not None and previous > 0:
            rho = change / previous
            if rho < 1:
                remaining = change * rho / (1 - rho)
                if (before is not None and before > 0
                        and rho <= SUPERLINEAR * (previous / before)):
                    remaining *= rho
                change = remaining
        return change <= self.options.convergence

    # -- the iteration -----------------------------------------------------
    def dense_newton_fits(self, basis, n):
        """Whether ``basis`` is small enough for dense Newton with ``n`` components."""
        return n * basis.n_free <= self.options.max_newton_size

    def linearised_start_fits(self, basis, n):
        """Whether a linearised start (a dense solve) is worth trying on ``basis``:
        where Newton's own steps are dense."""
        return (self.newton_available(basis, n) and self.dense_newton_fits(basis, n)
                and not self.structured_newton(basis, n))

    def newton_available(self, basis, n):
        """Dense Newton, or on a square stiff basis sparse (a pattern) or structured Newton.

        With ``newton_linear_solver="auto"`` the paper's (least-squares) basis has no
        Newton from ``STRUCTURED_MIN_SIZE`` unknowns on where the stiff basis has the
        structured steps: its Picard iteration runs while it contracts, and the stiff
        basis takes the segments it cannot (docs/algorithm.md, "Structured Newton
        solves")."""
        if basis.square:
            return (self.dense_newton_fits(basis, n) or self.pattern is not None
                    or self.options.newton_linear_solver != "dense")
        return self.dense_newton_fits(basis, n) and not (
            self.options.newton_linear_solver == "auto"
            and n * basis.n_free >= STRUCTURED_MIN_SIZE
            and self.structured_newton(self.stiff_basis, n))

    def newton_cost(self, basis, n):
        """A Newton round's cost in Picard rounds on ``basis``
        (:func:`~chebpan._control.policy.newton_round_cost`): the dense Gauss–Newton
        system's, and 1 for the stiff basis (where the Picard iteration contracts
        poorly: that is why it is used) and systems without dense Newton steps."""
        if basis.square or not self.dense_newton_fits(basis, n):
            return 1.0
        return newton_round_cost(n * basis.n_free)

    def picard_first(self, basis, n, rate, h):
        """Whether an attempt of length ``h`` on ``basis`` should start with Picard
        rounds although the segment before it converged with Newton steps: where a
        Newton round is costly (:meth:`newton_cost` above ``COSTLY_NEWTON``), when
        that segment's Picard contraction per unit length ``rate`` predicts them
        cheaper at this length, or when it measured none (it started with Newton:
        two Picard rounds find out, a fraction of one Newton round's cost)."""
        cost = self.newton_cost(basis, n)
        if cost <= COSTLY_NEWTON:
            return False
        return rate is None or picard_cheaper(rate * h, 1.0, self.options.convergence, cost)

    def structured_newton(self, basis, n):
        """Whether the stiff basis' Newton step uses the frozen-J structured solve
        (docs/algorithm.md, "Structured Newton solves"): when asked for, or with
        ``"auto"`` from ``STRUCTURED_MIN_SIZE`` unknowns and above the dense size."""
        choice = self.options.newton_linear_solver
        if choice == "dense" or not basis.square:
            return False
        return (choice != "auto" or n * basis.n_free >= STRUCTURED_MIN_SIZE
                or not self.dense_newton_fits(basis, n))

    def frozen_newton(self, basis, n):
        """Whether the stiff basis' Newton iteration is simplified Newton: one frozen-J
        solve and one round of ``f`` per iteration, J kept across segments
        (docs/algorithm.md, "Structured Newton solves")."""
        return (self.structured_newton(basis, n)
                and self.options.newton_linear_solver in ("auto", "simplified"))

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
        self.picard_rate = None
        self.start_jac = None  # J(t_a, y_a) when this attempt evaluates it
        result = self._solve(t_a, t_b, y_a, f_a, x0, start_with_newton=start_with_newton)
        result.rounds = self.counters.depth - depth_before
        result.basis = self.basis
        result.stiffness = self.stiffness
        result.picard_rate = self.picard_rate
        return result

    def _solve(self, t_a, t_b, y_a, f_a, x0, *, start_with_newton):
        xp, basis, opts = self.xp, self.basis, self.options
        h = t_b - t_a
        half_h = xp.asarray([[h / 2]], dtype=y_a.dtype, device=y_a.device)
        t_nodes = node_times(basis, t_a, t_b, xp=xp)
        self.size = residual_size(y_a, f_a, half_h, xp=xp)  # (the attempt's scale)
        self.dense_newton = self.dense_newton_fits(basis, y_a.shape[-1])
        # Above the dense size, Newton needs a sparsity pattern and the
        # square (stiff-basis) system that SuperLU factorises.
        newton_allowed = self.newton_available(basis, y_a.shape[-1])
        frozen = self.frozen_newton(basis, y_a.shape[-1])
        if not frozen:
            self.carried = None
        # (simplified Newton with a carried J needs no J to start)
        jac_wanted = newton_allowed and not (frozen and self.carried is not None)
        use_newton = start_with_newton and newton_allowed
        x, y_nodes, f_nodes, jac = self._best_start(t_nodes, y_a, f_a, half_h, x0,
                                                    use_newton and jac_wanted)
        if f_nodes is None:
            return self._failed(x, self.nonfinite)

        previous = None
        if not use_newton:
            # (where a Newton round is costly, Picard rounds go on while predicted cheaper)
            newton_cost = self.newton_cost(basis, y_a.shape[-1]) if newton_allowed else 0.0
            long_picard = not newton_allowed or newton_cost > COSTLY_NEWTON
            max_picard = PICARD_ONLY_FACTOR * opts.max_picard if long_picard else opts.max_picard
            rho_limit = opts.rho_newton if newton_allowed else PICARD_ONLY_RHO
            exhausted = False
            for iteration in range(max_picard):
                self.counters.niter_picard += 1
                x_new, y_new, change, size = picard_step(basis, y_a, f_a, half_h, y_nodes,
                                                         f_nodes, self.atol, self.rtol, xp=xp,
                                                         batch=False)
                change = float(change[0])
                if not math.isfinite(change):
                    return self._failed(x, Failure.DIVERGED)
                if opts.tol_ls is not None:
                    dx = x_new - x
                    done = float(xp.sqrt(xp.sum(dx * dx))) < opts.tol_ls
                else:
                    floor = ROUNDING_ULPS * self.eps * float(size[0])
                    done = self._converged(change, previous, floor)
                x, y_nodes = x_new, y_new
                if done:
                    # f at the previous iterate's end point: within the
                    # convergence tolerance of f(t_b, y_b), see docs/algorithm.
                    return self._finish(y_a, f_a, half_h, x, f_nodes[..., -1])
                if previous is not None:
                    rho = change / previous if previous > 0 else (math.inf if change > 0 else 0.0)
                    self.picard_rate = rho / abs(h)
                    if rho > rho_limit and not (newton_allowed and picard_cheaper(
                            rho, change, opts.convergence, newton_cost,
                            rounds_left=max_picard - iteration - 1)):
                        break
                previous = change
                # The last allowed iteration also fetches J: Newton needs it next.
                last = iteration == max_picard - 1
                f_nodes, jac = self._evaluate(t_nodes, y_nodes,
                                              with_jacobian=last and jac_wanted)
                if f_nodes is None:
                    return self._failed(x, self.nonfinite)
                exhausted = last
            if not newton_allowed:
                return self._picard_only_failed(x)
            if not exhausted:
                # Too slow: Newton from the newest iterate (y_nodes are its node values).
                f_nodes, jac = self._evaluate(t_nodes, y_nodes, with_jacobian=jac_wanted)
                if f_nodes is None:
                    return self._failed(x, self.nonfinite)
        if frozen:
            return self._frozen_newton(t_nodes, y_a, f_a, half_h, x, y_nodes, f_nodes, jac)
        return self._newton(t_nodes, y_a, f_a, half_h, x, y_nodes, f_nodes, jac)

    def _best_start(self, t_nodes, y_a, f_a, half_h, candidates, with_jacobian):
        """Evaluate all candidate starts in one round; keep the smallest residual.

        ``candidates`` is a list of X arrays, each (1, n, N-2).  They are
        stacked along the batch axis, so trying several costs work, not depth.
        A candidate whose f (or J) is not finite is never chosen; the round
        fails only if none is usable.
        """
        xp, basis = self.xp, self.basis
        x = xp.concat(candidates, axis=0) if len(candidates) > 1 else candidates[0]
        # (y_a, f_a and half_h (one segment) broadcast against the candidates)
        y_nodes = node_values(basis, y_a, f_a, half_h, x, xp=xp)
        f_nodes, jac = self._evaluate_raw(t_nodes, y_nodes, with_jacobian=with_jacobian)
        value, finite, jac_finite = candidate_measures(basis, f_a, f_nodes, half_h, x, jac,
                                                       self.size, xp=xp)
        usable = finite if jac is None else finite & jac_finite
        best = 0 if x.shape[0] == 1 else int(xp.argmin(xp.where(usable, value, xp.inf)))
        if not bool(usable[best]):  # (none is)
            self.nonfinite = (Failure.NONFINITE if jac is None or not bool(xp.any(finite))
                              else Failure.NONFINITE_JAC)
            return x[:1, ...], y_nodes[:1, ...], None, None
        self.nonfinite = Failure.NONFINITE
        if x.shape[0] == 1:
            return x, y_nodes, f_nodes, jac
        pick = slice(best, best + 1)
        return (x[pick, ...], y_nodes[pick, ...], f_nodes[pick, ...],
                None if jac is None else jac[pick, ...])

    def _picard_only_failed(self, x):
        if self.newton_available(self.stiff_basis, x.shape[1]):
            # Too long for the Picard iteration: Newton on the stiff basis
            # (sparse or structured) is the way on, and it will measure ‖J‖.
            self.stiffness = math.inf
        return self._failed(x, Failure.NO_CONVERGENCE)

    def _note_stiffness(self, jac, half_h):
        xp = self.xp
        if jac.ndim == 3:  # values on the sparsity pattern, (K, M, nnz)
            norm = float(self.pattern.row_sums(jac).max())
        else:
            norm = jacobian_norm(jac, xp=xp)
        self.stiffness = abs(float(half_h[0, 0])) * norm

    def _linearize(self, jac, half_h, previous=None):
        """The residual Jacobian (dense, sparse or structured) of one iterate.

        A structured one keeps the factorisation of ``previous`` (simplified Newton).
        """
        if jac.ndim == 3 and not self.dense_newton:
            if jac.shape[0] != 1:
                raise NotImplementedError("sparse Newton steps solve one IVP at a time")
            if self.structured_newton(self.basis, self.pattern.n):
                return SparseStructuredLinearization(
                    self.basis, self.pattern, jac[0, ...], float(half_h[0, 0]),
                    previous=previous)
            return SparseLinearization(self.basis, self.pattern, jac[0, ...], float(half_h[0, 0]))
        if jac.ndim == 3:
            jac = self.xp.asarray(self.pattern.to_dense(jac))
        if self.structured_newton(self.basis, jac.shape[-1]):
            return StructuredLinearization(self.basis, jac, half_h, xp=self.xp,
                                           previous=previous)
        return DenseLinearization(self.basis, jac, half_h, xp=self.xp)

    def _newton(self, t_nodes, y_a, f_a, half_h, x, y_nodes, f_nodes, jac):
        xp, basis, opts = self.xp, self.basis, self.options
        self._note_stiffness(jac, half_h)
        linear = self._linearize(jac, half_h)
        size = self.size
        no_direction = xp.zeros(x.shape, dtype=x.dtype, device=x.device)
        r, grad, value, _ = residual_measures(
            basis, linear, f_a, f_nodes, half_h, x, size, no_direction, xp=xp,
            change_at=(y_a, y_nodes, self.atol, self.rtol, self.eps))
        value = float(value[0])
        previous = before = None
        previous_full = False  # (whether the step of `previous` was a full, fresh one)
        damped = 0
        for _ in range(opts.max_newton):
            self.counters.niter_newton += 1
            if opts.tol_newton is not None and float(xp.sqrt(xp.sum(grad * grad))) < opts.tol_newton:
                return self._finish(y_a, f_a, half_h, x, f_nodes[..., -1], linear=linear)
            while True:
                direction = linear.direction(r, grad)
                self.counters.nlu += int(linear.factorised)
                slope = float(newton_slope(linear, grad, direction, size, xp=xp)[0])
                stale = linear.stale
                if slope < 0 or not stale:
                    break
                linear.refresh()  # simplified Newton, not downhill: factorise here
            change, floor, nodes_step = newton_step_change(
                basis, linear, direction, (y_a, y_nodes, self.atol, self.rtol, self.eps),
                xp=xp)
            change, floor = float(change[0]), float(floor[0])
            if not math.isfinite(change):
                return self._failed(x, Failure.DIVERGED)
            if change <= floor or not slope < 0:
                # Nothing left to gain above rounding (a direction that is not
                # downhill only happens there, through rounding in H or ∇e).
                if change <= max(floor, opts.convergence):
                    return self._finish(y_a, f_a, half_h, x + direction, f_nodes[..., -1],
                                        linear=linear)
                return self._failed(x, Failure.STALLED)

            if (opts.tol_newton is None and not stale
                    and self._converged(change, previous, floor,
                                        before if previous_full else None)):
                # Converged once this step is taken: take it without a round at its
                # end, f there from f and J at this iterate's end (docs/algorithm.md,
                # "One segment").
                values = getattr(linear, "values", None)  # (J on a sparsity pattern)
                jac = linear.jac_nodes if values is None else values
                f_end = self._end_slope(jac, f_nodes[..., -1], nodes_step[..., -1])
                return self._finish(y_a, f_a, half_h, x + direction, f_end, linear=linear)

            def phi(alpha):
                if alpha == 1:  # (the usual trial: the same values without the products)
                    x_trial, y_trial = x + direction, y_nodes + nodes_step
                else:
                    x_trial = x + alpha * direction
                    y_trial = y_nodes + alpha * nodes_step  # (node values are linear in X)
                f_trial, jac_trial = self._evaluate_raw(t_nodes, y_trial, with_jacobian=True)
                linear_trial = self._linearize(jac_trial, half_h, previous=linear)
                r_trial, g_trial, value_trial, slope_trial = residual_measures(
                    basis, linear_trial, f_a, f_trial, half_h, x_trial, size, direction, xp=xp,
                    change_at=(y_a, y_trial, self.atol, self.rtol, self.eps))
                value_trial, slope_trial = float(value_trial[0]), float(slope_trial[0])
                # (non-finite values of f or J make the kernel's measures non-finite:
                # only then look; the array code's BLAS may skip zero products)
                if (not (math.isfinite(value_trial) and math.isfinite(slope_trial))
                        or getattr(linear_trial, "kernels", None) is None) and (
                        self._nonfinite(f_trial, jac_trial) is not None):
                    return math.inf, math.nan, None
                return (value_trial, slope_trial,
                        (x_trial, y_trial, f_trial, r_trial, linear_trial, g_trial))

            search = strong_wolfe(phi, value, slope, max_trials=NEWTON_TRIALS,
                                  give_up_below=HOPELESS_ALPHA)
            if search.payload is None and stale:
                linear.refresh()  # simplified Newton: retry with factors of this iterate
                continue
            if search.payload is None:
                if change <= opts.convergence:
                    return self._finish(y_a, f_a, half_h, x, f_nodes[..., -1], linear=linear)
                return self._failed(x, Failure.LINE_SEARCH)
            x, y_nodes, f_nodes, r, linear, grad = search.payload
            value = search.value
            change *= search.alpha
            if stale and (search.alpha < 1
                          or (previous is not None and change > REFACTOR_RHO * previous)):
                # Simplified Newton slowed down: factorise at the new iterate.
                linear.refresh()
            else:
                damped += search.alpha < 1
                if search.alpha < HOPELESS_ALPHA:
                    damped = MAX_DAMPED_STEPS + 1  # (one such step is enough to give up)
            if damped > MAX_DAMPED_STEPS and change > opts.convergence:
                # Far from the solution: a shorter segment is cheaper than
                # damped steps (docs/algorithm.md, "Cost of a segment").
                return self._failed(x, Failure.NO_CONVERGENCE)
            full = search.alpha == 1 and not stale
            if opts.tol_newton is None and self._converged(
                    change, previous, floor, before if full and previous_full else None):
                return self._finish(y_a, f_a, half_h, x, f_nodes[..., -1], linear=linear)
            before, previous, previous_full = previous, change, full
        return self._failed(x, Failure.NO_CONVERGENCE)

    def _frozen_newton(self, t_nodes, y_a, f_a, half_h, x, y_nodes, f_nodes, jac):
        """Simplified Newton on the stiff basis: ``X ← X − M⁻¹ r̃(X)`` with M the
        collocation matrix of a frozen J, factorised once per (J, length); one round of
        ``f`` and one structured solve per iteration, no J and no line search.  J is
        carried from segment to segment and evaluated again (at the current iterate)
        when the iteration slows down; with a J evaluated for this attempt, slowing down
        fails the attempt (docs/algorithm.md, "Structured Newton solves")."""
        xp, basis, opts = self.xp, self.basis, self.options
        if jac is not None:
            self._carry(jac, half_h)
        carried = self.carried
        self.stiffness = abs(float(half_h[0, 0])) * carried.norm

        def failed(why):
            carried.fresh = False  # (the shorter retry may evaluate J once more)
            return self._failed(x, why)

        previous = None
        iterations = slow = 0
        for _ in range(2 * FROZEN_MAX_ITER):
            self.counters.niter_newton += 1
            r = residual(basis, f_a, f_nodes, half_h, x, xp=xp)
            direction = self._frozen_solver(half_h).direction(
                xp.astype(r, xp.float64, copy=False))
            direction = xp.astype(direction, x.dtype, copy=False)
            change, floor, nodes_step = step_change(basis, y_a, y_nodes, direction, self.atol,
                                                    self.rtol, self.eps, xp=xp)
            change, floor = float(change[0]), float(floor[0])
            if not math.isfinite(change):
                return failed(Failure.DIVERGED)
            iterations += 1
            if previous is not None and change > floor:
                rho = change / previous if previous > 0 else math.inf
                left = FROZEN_MAX_ITER - iterations
                too_slow = rho >= 1 or rho ** left / (1 - rho) * change > opts.convergence
                if too_slow and carried.fresh:
                    slow += 1
                    if rho >= 1 or slow > FRESH_SLOW_STEPS or left <= 0:
                        return failed(Failure.NO_CONVERGENCE)
                elif too_slow:
                    # A carried J that no longer serves: J at this iterate.
                    f_nodes, jac = self._evaluate(t_nodes, y_nodes, with_jacobian=True)
                    if f_nodes is None:
                        return failed(self.nonfinite)
                    carried = self._carry(jac, half_h)
                    previous, iterations = None, 0
                    continue
            x = x + direction
            y_nodes = y_nodes + nodes_step
            if self._converged(change, previous, floor):
                if self.start_jac is None:
                    self.start_jac = carried.jac[0, ...]
                f_end = f_nodes[..., -1]
                jac = carried.jac if carried.jac.ndim == 2 else carried.jac[:, None, ...]
                f_end = self._end_slope(xp.astype(jac, f_end.dtype), f_end,
                                        nodes_step[..., -1])
                carried.fresh = False
                return self._finish(y_a, f_a, half_h, x, f_end, used_newton=True)
            previous = change
            f_nodes, _ = self._evaluate(t_nodes, y_nodes, with_jacobian=False)
            if f_nodes is None:
                return failed(self.nonfinite)
        return failed(Failure.NO_CONVERGENCE)

    def _carry(self, jac, half_h):
        """Freeze the nodes' J (K=1, M, n, n) or pattern values (1, M, nnz) and carry it."""
        xp = self.xp
        self._note_stiffness(jac, half_h)
        self.carried = CarriedJacobian(
            jac=frozen_jacobian(xp.astype(jac, xp.float64), xp=xp),
            norm=self.stiffness / abs(float(half_h[0, 0])))
        return self.carried

    def _frozen_solver(self, half_h):
        """The carried J's factorised frozen system for this basis and length."""
        carried, xp = self.carried, self.xp
        h2 = float(half_h[0, 0])
        if carried.solver is None or carried.half_h != h2 or carried.basis is not self.basis:
            self.counters.nlu += 1
            if self.pattern is not None and carried.jac.ndim == 2:
                carried.solver = sparse_frozen_solver(self.basis, self.pattern,
                                                      carried.jac[0], h2)
            else:
                carried.solver = FrozenJacobianSolver(
                    self.basis, carried.jac, xp.astype(half_h, xp.float64), xp=xp)
            carried.half_h, carried.basis = h2, self.basis
        return carried.solver

    def _end_slope(self, jac, f_end, end_change):
        """``f_end + J_end Δy`` (K, n) with the last node's J: values on the sparsity
        pattern (P, nnz), or the nodes' J (K, M, n, n)."""
        if jac.ndim == 2:
            return f_end + self.pattern.products(jac[-1:, :], end_change.T).T
        return linearised_end_slope(f_end, jac, end_change, xp=self.xp)

    def _evaluate_raw(self, t_nodes, y_nodes, *, with_jacobian):
        """One round: f (and J) at the nodes as (K, n, M) and (K, M, n, n)."""
        xp = self.xp
        k, n, m = y_nodes.shape
        if k == 1:  # (the usual round: no reshaping needed)
            f, jac = self.evaluator.evaluate(t_nodes, y_nodes[0, ...], with_jacobian=with_jacobian)
            f_nodes = f[None, ...]
        else:
            flat_y = xp.reshape(xp.permute_dims(y_nodes, (1, 0, 2)), (n, k * m))
            flat_t = xp.concat([t_nodes] * k)
            f, jac = self.evaluator.evaluate(flat_t, flat_y, with_jacobian=with_jacobian)
            f_nodes = xp.permute_dims(xp.reshape(f, (n, k, m)), (1, 0, 2))
        if jac is not None:
            if k == 1:
                jac = jac[None, ...]
            else:
                tail = (jac.shape[-1],) if self.pattern is not None else (n, n)
                jac = xp.reshape(jac, (k, m, *tail))
            self.start_jac = jac[0, 0, ...]  # (node 0 is (t_a, y_a) for every iterate)
        return f_nodes, jac

    def _evaluate(self, t_nodes, y_nodes, *, with_jacobian):
        """As :meth:`_evaluate_raw`, but ``(None, None)`` if anything is not finite."""
        f_nodes, jac = self._evaluate_raw(t_nodes, y_nodes, with_jacobian=with_jacobian)
        if self._nonfinite(f_nodes, jac) is not None:
            return None, None
        return f_nodes, jac

    def _nonfinite(self, f_nodes, jac):
        """The failure if ``f`` or ``J`` (None: not evaluated) has non-finite values (and
        ``self.nonfinite`` set to it), else None."""
        xp = self.xp
        if not bool(xp.all(xp.isfinite(f_nodes))):
            self.nonfinite = Failure.NONFINITE
        elif jac is not None and not bool(xp.all(xp.isfinite(jac))):
            self.nonfinite = Failure.NONFINITE_JAC
        else:
            return None
        return self.nonfinite

    def _finish(self, y_a, f_a, half_h, x, f_end, *, linear=None, used_newton=False):
        """The converged attempt; ``linear`` is the last iterate's linearisation when
        Newton steps ran (None after the Picard iteration)."""
        xp, basis = self.xp, self.basis
        y_end = end_value(basis, y_a, f_a, half_h, x, xp=xp)
        coeffs = coefficients(basis, y_a, f_a, half_h, x, xp=xp)
        end_jac = None
        if isinstance(linear, DenseLinearization):
            end_jac = linear.jac_nodes[:, -1, ...]
        start_error = 0.0 if basis.slope_factor else self._start_error(y_a, f_a, half_h,
                                                                       coeffs, y_end)
        return SegmentResult(x=x, f_end=f_end, y_end=y_end, coeffs=coeffs, failure=None,
                             used_newton=used_newton or linear is not None, end_jac=end_jac,
                             start_error=start_error)

    def _start_error(self, y_a, f_a, half_h, coeffs, y_end):
        """The stiff basis' start-slope gap ``g = τ₁ (p'(t_a) − f_a)``
        (:func:`~chebpan._core.estimates.start_slope_gap`) filtered by the stiffness,
        ``‖(I − τ₁ J)⁻¹ g‖`` scaled, with J at ``(t_a, y_a)`` (or the carried one): a
        jump of ``f`` before the first node leaves it about that jump times the time
        it acts, whereas on a stiff component the gap is ``τ₁ J δ`` for the small offset
        δ of ``y_a`` from the slow solution, which the filter turns back into δ
        (docs/algorithm.md, "Stiff segments").  Unfiltered where that is at most 1
        already (no solve), where no J is known (a Picard iteration converged: τ₁‖J‖ is
        small) and where ``I − τ₁ J`` is singular (the unfiltered gap then rejects the
        attempt; the shorter retry has another τ₁)."""
        xp = self.xp
        gap, size = start_gaps(self.basis, coeffs, y_a, y_end, f_a, half_h, self.atol,
                               self.rtol, xp=xp)
        size = float(size[0])
        jac = self.start_jac
        if not size > 1 or jac is None:
            return size
        scale = tolerance_scale(self.atol, self.rtol, y_a, y_end, xp=xp)
        first_node = float(half_h[0, 0]) * float(self.basis.first_node_offset)
        gap64 = xp.astype(gap[0, :], xp.float64)
        if jac.ndim == 1:  # values on the sparsity pattern (NumPy only)
            filtered = self.pattern.solve_shifted(jac, 1 / first_node, gap64 / first_node)
        else:
            n = jac.shape[-1]
            eye = xp.eye(n, dtype=xp.float64, device=gap.device)
            try:
                filtered = xp.linalg.solve(eye - first_node * xp.astype(jac, xp.float64),
                                           gap64[:, None])[:, 0]
            except ValueError:  # (NumPy's and CuPy's LinAlgError)
                return size
        filtered = xp.astype(filtered, gap.dtype)[None, :, None]
        return float(scaled_rms(filtered, scale, xp=xp)[0])

    def _failed(self, x, why):
        # The last iterate's coefficients are kept: a retry on a shorter
        # segment can start from them.
        return SegmentResult(x=x, f_end=None, y_end=None, coeffs=None, failure=why,
                             used_newton=False)

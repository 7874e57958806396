"""The iteration steps of a batched round: Picard, Newton start and Newton trial.

Methods of :class:`chebpan._control.batch.BatchLoop` (a mix-in, apart so that each
module reads in one sitting): after the round's evaluation, every row takes one step of
its phase (docs/algorithm.md, "Batched IVPs"):

- ``PICARD``: a Picard update; converged → the segment is finished, too slow →
  Newton, otherwise another update;
- ``NEWTON_START``: f and J at the iterate give the Gauss–Newton direction (modified
  LDLᵀ, batched and chunked to bound memory), and the full step is tried;
- ``NEWTON_TRIAL``: a backtracking (Armijo) line search on the objective; an accepted
  step either converges or yields the next direction.

Each step returns the rows by outcome (going on, finished, failed).
"""

from __future__ import annotations

import math

from .._core.estimates import ROUNDING_ULPS, step_change
from .._core.newton import (
    DenseLinearization,
    directional_slope,
    linearised_end_slope,
    objective,
    residual,
    residual_size,
)
from .._core.picard import picard_step
from .batch_table import (
    FAILED,
    FINISHED,
    GOING,
    LINE_SEARCH,
    NEWTON_START,
    NEWTON_TRIAL,
    NO_CONVERGENCE,
    DIVERGED,
    NONFINITE,
    NONFINITE_JAC,
    STALLED,
    Table,
)
from .policy import HOPELESS_ALPHA, MAX_DAMPED_STEPS, converged

__all__ = ["IterationSteps"]

#: Armijo's sufficient-decrease constant and the smallest step tried.
ARMIJO = 1e-4
MIN_ALPHA = 1e-4


class IterationSteps:
    """The steps of a round, for :class:`~chebpan._control.batch.BatchLoop`."""

    def _split_nonfinite(self, table):
        xp = self.xp
        usable = table.finite & table.jac_finite
        bad = table.select(~usable)
        bad.fail_what = xp.where(bad.finite, xp.full_like(bad.fail_what, NONFINITE_JAC),
                                 NONFINITE)
        return table.select(usable), bad

    def _picard(self, table, counted=None):
        """Picard step of every row; ``outcome`` says which rows finished or failed.

        ``counted``: the rows whose step counts as an iteration (default all).
        """
        xp, basis = self.xp, self.basis
        counted = table.finite if counted is None else table.finite & counted
        self.counters.niter_picard += int(xp.sum(xp.astype(counted, xp.int64)))
        x_new, y_new, change, size = picard_step(basis, table.y_a, table.f_a, table.half_h,
                                                 table.y_nodes, table.f_nodes, self.atol,
                                                 self.rtol, xp=xp)
        floor = ROUNDING_ULPS * self.eps * size
        table.n_iter = table.n_iter + 1
        ok = table.finite & xp.isfinite(change)
        done = ok & converged(change, table.prev_change, floor, self.options.convergence,
                              xp=xp)
        slow = (table.prev_change > 0) & (change > self.rho_limit * table.prev_change)
        stop = ok & ~done & (slow | (table.n_iter >= self.max_picard))
        if bool(xp.all(ok)):
            table.x, table.y_nodes = x_new, y_new
        else:  # (failed rows keep their iterate)
            table.x = xp.where(ok[:, None, None], x_new, table.x)
            table.y_nodes = xp.where(ok[:, None, None], y_new, table.y_nodes)
        # (a copy: rows of it are overwritten in place, and fun's output may be
        # the caller's array or read-only)
        table.f_end = xp.asarray(table.f_nodes[..., -1], copy=True)
        table.used_newton = xp.zeros_like(done)
        table.prev_change = xp.astype(change, table.prev_change.dtype)
        del table.fields["f_nodes"]  # not needed further
        outcome = xp.where(done, xp.full_like(table.n_iter, FINISHED), GOING)
        outcome = xp.where(ok, outcome, FAILED)
        table.fail_what = xp.where(ok, table.fail_what,
                                   xp.where(table.finite, xp.full_like(table.fail_what, DIVERGED),
                                            NONFINITE))
        if self.newton_allowed:
            table.phase = xp.where(stop, NEWTON_START, table.phase)
            table.n_iter = xp.where(stop, 0, table.n_iter)
            table.prev_change = xp.where(stop, xp.nan, table.prev_change)
        else:
            outcome = xp.where(stop, FAILED, outcome)
            table.fail_what = xp.where(stop, NO_CONVERGENCE, table.fail_what)
        table.outcome = outcome
        return table

    def _directions(self, jac, half_h, r):
        """Gradient and Gauss–Newton direction, in chunks bounded by ``newton_memory``."""
        xp, basis = self.xp, self.basis
        k, n, m = r.shape
        size = n * basis.n_free  # unknowns of one instance's system
        itemsize = 8  # the linear algebra runs in float64
        per_instance = itemsize * (2 * n * m * size + 3 * size * size)
        chunk = max(1, self.newton_memory // per_instance)
        grads, directions = [], []
        for start in range(0, k, chunk):
            part = slice(start, min(k, start + chunk))
            linear = DenseLinearization(basis, jac[part, ...], half_h[part, ...], xp=xp)
            grad = linear.gradient(r[part, ...])
            grads.append(grad)
            directions.append(linear.direction(r[part, ...], grad))
        if len(grads) == 1:
            return grads[0], directions[0]
        return xp.concat(grads), xp.concat(directions)

    def _newton_start(self, table):
        """A Gauss–Newton direction at each row's iterate, and its full step to try."""
        xp, basis, opts = self.xp, self.basis, self.options
        table.f_end = table.f_nodes[..., -1]
        table.used_newton = xp.ones_like(table.finite)
        table, nonfinite = self._split_nonfinite(table)
        if not len(table):
            return table, table, nonfinite
        k = len(table)
        self.counters.niter_newton += k
        self.counters.nlu += k
        r = residual(basis, table.f_a, table.f_nodes, table.half_h, table.x, xp=xp)
        grad, direction = self._directions(table.jac, table.half_h, r)
        table.n_iter = table.n_iter + 1
        change, floor, _ = step_change(basis, table.y_a, table.y_nodes, direction, self.atol,
                                       self.rtol, self.eps, xp=xp)
        size = residual_size(table.y_a, table.f_a, table.half_h, xp=xp)
        slope = directional_slope(grad, direction, size, xp=xp)
        finite = xp.isfinite(change)
        flat = finite & ((change <= floor) | ~(slope < 0))
        # Nothing left to gain above rounding (a direction that is not
        # downhill only happens there, through rounding in H or ∇e).
        small = flat & (change <= xp.maximum(floor, xp.full_like(floor, opts.convergence)))
        # Converged once this step is taken: taken without a round at its end, f there
        # from f and J at the iterate's end (docs/algorithm.md, "One segment").
        before = xp.where(table.prev_full, table.before_change, xp.nan)
        last = finite & ~flat & converged(change, table.prev_change, floor,
                                          opts.convergence, xp=xp, before=before)
        ending = small | last
        finished = table.select(ending)
        step = direction[ending]
        # (a step at the rounding floor keeps f at the iterate's end)
        end_step = xp.where(last[ending][:, None],
                            xp.matmul(step, basis.phi_tilde[:, -1:])[..., 0], 0.0)
        finished.f_end = linearised_end_slope(finished.f_end, finished.jac, end_step, xp=xp)
        finished.end_jac = finished.jac[:, -1, ...]
        finished.x = finished.x + step
        failed = [nonfinite]
        for mask, why in ((~finite, DIVERGED), (flat & ~small, STALLED)):
            bad = table.select(mask)
            bad.fail_what = xp.full_like(bad.fail_what, why)
            failed.append(bad)
        trying = ~flat & finite & ~last
        going = table.select(trying)
        going.x_base = going.x
        going.direction = direction[trying]
        going.x = going.x_base + going.direction
        going.value = xp.astype(objective(basis, r[trying], size[trying], xp=xp), self.dtype)
        going.slope = slope[trying]
        going.alpha = xp.ones_like(going.slope)
        going.change = change[trying]
        going.floor = floor[trying]
        going.f_base_end = going.f_end
        going.phase = xp.full_like(going.phase, NEWTON_TRIAL)
        return going, finished, self._rows(failed)

    def _newton_trial(self, table):
        """Armijo test of each row's trial point; backtrack, converge or go on."""
        xp, basis, opts = self.xp, self.basis, self.options
        table.f_end = table.f_nodes[..., -1]
        table.used_newton = xp.ones_like(table.finite)
        if not len(table):
            return table, table, table
        r = residual(basis, table.f_a, table.f_nodes, table.half_h, table.x, xp=xp)
        size = residual_size(table.y_a, table.f_a, table.half_h, xp=xp)
        usable = table.finite & table.jac_finite
        value = xp.where(usable, objective(basis, r, size, xp=xp), xp.inf)
        accept = usable & (value <= table.value + ARMIJO * table.alpha * table.slope)
        failed = []
        # Accepted: converged, out of iterations, or the next direction.
        moved = table.select(accept)
        step = moved.change * moved.alpha
        # Damped steps, as in a single solve: one shortened below HOPELESS_ALPHA, or
        # more than MAX_DAMPED_STEPS, far from convergence: a shorter segment is
        # cheaper (docs/algorithm.md, "Cost of a segment").
        damped = moved.n_damped + xp.astype(moved.alpha < 1, moved.n_damped.dtype)
        moved.n_damped = xp.where(moved.alpha < HOPELESS_ALPHA, MAX_DAMPED_STEPS + 1, damped)
        far = (moved.n_damped > MAX_DAMPED_STEPS) & (step > opts.convergence)
        gave_up = moved.select(far)
        gave_up.fail_what = xp.full_like(gave_up.fail_what, NO_CONVERGENCE)
        failed.append(gave_up)
        moved = moved.select(~far)
        step = step[~far]
        # (after two full steps with falling ratios: quadratic convergence)
        full = moved.alpha == 1
        before = xp.where(full & moved.prev_full, moved.before_change, xp.nan)
        done = converged(step, moved.prev_change, moved.floor, opts.convergence, xp=xp,
                         before=before)
        moved.before_change = moved.prev_change
        moved.prev_change = step
        moved.prev_full = full
        finished = [moved.select(done)]
        finished[0].end_jac = finished[0].jac[:, -1, ...]
        moved = moved.select(~done)
        out = moved.n_iter >= opts.max_newton
        tired = moved.select(out)
        tired.fail_what = xp.full_like(tired.fail_what, NO_CONVERGENCE)
        failed.append(tired)
        going, finished_next, failed_next = self._newton_start(moved.select(~out))
        going = [going]
        finished.append(finished_next)
        failed.append(failed_next)
        # Rejected: backtrack by quadratic interpolation, within [0.1, 0.5] α; a
        # quadratic minimiser below HOPELESS_ALPHA ends the attempt at once, as in a
        # single solve's line search (docs/algorithm.md, "Give up damped Newton early").
        back = table.select(~accept)
        tried = xp.where(xp.isfinite(value[~accept]), value[~accept], xp.inf)
        alpha = back.alpha
        curvature = tried - back.value - back.slope * alpha
        usable = xp.isfinite(curvature) & (curvature > 0)
        guess = -back.slope * alpha * alpha / (2 * xp.where(usable, curvature, 1.0))
        hopeless = usable & (guess < HOPELESS_ALPHA)
        guess = xp.where(usable, guess, 0.5 * alpha)
        back.alpha = xp.clip(guess, 0.1 * alpha, 0.5 * alpha)
        give_up = hopeless | (back.alpha < MIN_ALPHA)
        close = give_up & (back.change <= opts.convergence)
        stay = back.select(close)  # converged enough at the base point
        stay.x = stay.x_base
        stay.f_end = stay.f_base_end
        stay.end_jac = xp.full_like(stay.end_jac, math.nan)  # (J is the trial point's)
        finished.append(stay)
        lost = back.select(give_up & ~close)
        lost.x = lost.x_base
        lost.fail_what = xp.full_like(lost.fail_what, LINE_SEARCH)
        failed.append(lost)
        retry = back.select(~give_up)
        retry.x = retry.x_base + retry.alpha[:, None, None] * retry.direction
        going.append(retry)
        return (self._rows(going), self._rows(finished),
                self._rows(failed))

    def _rows(self, tables):
        """Rows of several tables in one, with what the end of an attempt needs."""
        return Table.concat(tables, self.xp,
                             self.fields + ("half_h", "f_end", "used_newton", "row"))

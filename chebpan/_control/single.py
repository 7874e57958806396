"""The segment loop of a single solve: attempt, accept or reject, next length, events.

:class:`SegmentLoop` moves from segment to segment (docs/algorithm.md, "The segment
loop"): it picks the starting polynomials of an attempt (Euler's, or the ODE linearised
at the start, the previous segment extrapolated, the rejected attempt extrapolated),
switches to the stiff basis when
``(h/2)‖J‖`` is large, lets :class:`~chebpan._control.segment_solver.SegmentSolver` run
the iteration, accepts or rejects the segment on its error estimate
(:mod:`chebpan._core.estimates`) and sizes the next one (:mod:`chebpan._control.policy`).
It also runs the events on every accepted segment and builds the result.
"""

from __future__ import annotations

import math

import numpy as np

from .._core.basis import restrict
from .._core.estimates import plausible, segment_estimates
from .._core.newton import linearised_start, residual_size
from .._core.picard import coefficients, euler_start, node_times, node_values
from .._output.dense import OdeSolution
from .._output.result import MESSAGES, Failure, OdeResult, failure_message, warn_user
from .policy import (
    FIRST_MAX_FACTOR,
    MAX_FACTOR,
    MEASURED_GROWTH_ROUNDS,
    MIN_FACTOR,
    SAFETY,
    SAFETY_REJECT,
    STIFF_OFF,
    STIFF_OFF_PICARD_ONLY,
    STIFF_ON,
    STIFF_ON_PICARD_ONLY,
    STRETCH,
    extrapolated_guess,
    initial_lengths,
    limited_factors,
    measured_growth_factor,
    next_length_factor,
)
from .segment_solver import SegmentSolver
from .spans import Spans

__all__ = ["SegmentLoop"]


class SegmentLoop:
    """State of one PAN solve: segments accepted so far, counters, status."""

    def __init__(self, evaluator, basis, stiff_basis, t0, tf, y0, rtol, atol, max_step,
                 iteration, counters, *, xp, f0=None):
        self.xp = xp
        self.evaluator = evaluator
        self.basis = basis
        self.t0, self.tf = t0, tf
        self.span = Spans(t0, tf, xp=xp, device=y0.device)
        self.direction = self.span.direction
        self.max_step = max_step
        # (per component, (n,): the kernels take them so, without converting each time)
        per_component = xp.zeros(y0.shape, dtype=y0.dtype, device=y0.device)
        self.rtol = xp.asarray(rtol, dtype=y0.dtype, device=y0.device) + per_component
        self.atol = xp.asarray(atol, dtype=y0.dtype, device=y0.device) + per_component
        self.counters = counters
        self.solver = SegmentSolver(basis, evaluator, self.rtol, self.atol, iteration,
                                    counters, xp=xp, stiff_basis=stiff_basis)
        self.y0 = y0[None, :]  # (K=1, n)
        self.ts = [t0]
        self.coeffs, self.y_start, self.y_end = [], [], []
        self.status = None
        self.message = None
        self.tracker = None  # an EventTracker when events are given
        self.progress = None  # a ProgressBar with progress=True
        self.warned_float32 = False
        self.last_failure = (Failure.ERROR, t0, t0)  # (what, t_a, t_b) of the last rejection
        # The first call of fun, in scipy's order: before `first_step` is checked
        # (f0 (1, n) is given where it is known: a batch row solved on alone).
        self.f0 = f0 if f0 is not None or tf == t0 else self._f_at(t0, self.y0)

    def _f_at(self, t, y):
        xp = self.xp
        f, _ = self.evaluator.evaluate(xp.asarray([t], device=y.device), xp.reshape(y, (-1, 1)))
        return xp.reshape(f, (1, -1))

    def initial_length(self):
        """scipy's ``select_initial_step`` with a moderate order (one extra round)."""
        lengths = initial_lengths(lambda t, y: self._f_at(float(t[0]), y), self.span,
                                  self.y0, self.f0, self.solver.scale(self.y0), xp=self.xp)
        return float(lengths[0])

    def run(self, first_step, *, stiffness=0.0):
        """Solve to ``tf`` (or a terminal event, or a failure).  ``stiffness``:
        ``max_m ‖J_m‖∞`` known at the start (a batch row solved on alone), which picks
        the first attempt's basis as a measured one would."""
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
        stiff_rate = stiffness  # ‖J‖_∞ seen by Newton on the last attempt
        picard_rate = None  # the last segment's Picard contraction per unit length
        end_jac = None  # J where the segment starts, from the last one's Newton iteration
        last_stiff = None  # (error estimate, length) of the last segment if stiff
        n = y.shape[-1]
        if not self.solver.newton_available(self.solver.basis_for(True), n):
            stiff_on = stiff_off = math.inf  # the stiff basis would have no Newton
        elif self.solver.newton_available(self.solver.basis_for(False), n):
            stiff_on, stiff_off = STIFF_ON, STIFF_OFF
        else:
            # Only the Picard iteration on the paper's basis, which needs
            # (h/2)‖J‖ below about 1: the (sparse) stiff basis takes over there.
            stiff_on, stiff_off = STIFF_ON_PICARD_ONLY, STIFF_OFF_PICARD_ONLY
        while self.status is None:
            remaining = abs(self.tf - t)
            h_abs = min(h_abs, self.max_step, remaining)
            min_step = 10 * abs(math.nextafter(t, self.direction * math.inf) - t)
            if not h_abs >= min_step:  # (NaN included: never loop on it)
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
            # (stiff_rate is inf after a Picard failure that only the
            # sparse stiff basis can take on: switch now.)
            stiff_now = stiff_rate * abs(h) / 2
            stiff = stiff_now > (stiff_off if stiff else stiff_on)
            if stiff and y.dtype == xp.float32 and not self.warned_float32:
                self.warned_float32 = True
                warn_user(
                    f"The solve in float32 has reached a stiff segment at t = {t!r}: "
                    "float32 is not accurate enough for stiff problems (the result "
                    "may be wrong); solve in float64.", RuntimeWarning)
            # Start from the Euler polynomial (X = 0), or the linearised start in its
            # place, and, where there is one, the previous segment extrapolated; the
            # best is kept (docs/algorithm.md, "Segment control").
            basis = self.solver.basis_for(stiff)
            half_h = xp.asarray([[h / 2]], dtype=y.dtype, device=y.device)
            if start_with_newton and not rejected_here and self.solver.picard_first(
                    basis, n, picard_rate, abs(h)):
                start_with_newton = False
            if end_jac is not None and self.solver.linearised_start_fits(basis, n):
                # (the ODE linearised where the segment starts: no round, one solve; with
                # J = 0 it would be Euler's)
                x0 = [linearised_start(basis, y, f, half_h, end_jac, xp=xp)]
            else:
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
                    attempt = self._start_from((coefficients(basis, y, f, half_h, outcome.x,
                                                             xp=xp), h), y, f, half_h)
                self.last_failure = (outcome.failure, t, t_new)
                h_abs *= 0.5
                rejected_here = True
                start_with_newton = True
                continue
            err, predicted = segment_estimates(outcome.coeffs, y, outcome.y_end, self.atol,
                                               self.rtol, xp=xp)
            err, predicted = float(err[0]), float(predicted[0])
            growth = FIRST_MAX_FACTOR if previous is None else MAX_FACTOR
            measure = err if math.isnan(predicted) else min(err, predicted)
            factor = next_length_factor(measure, self.basis.n_coeffs, growth)
            if err > 1 or outcome.start_error > 1:
                self.counters.nrejected += 1
                attempt = self._start_from((outcome.coeffs, h), y, f, half_h)
                self.last_failure = (Failure.ERROR, t, t_new)
                if outcome.start_error > 1:
                    # (a jump of f before the first node: the gap falls with the length)
                    factor = min(factor, max(MIN_FACTOR, SAFETY / outcome.start_error))
                h_abs *= min(factor, SAFETY_REJECT)
                rejected_here = True
                continue
            if stiff and outcome.rounds <= MEASURED_GROWTH_ROUNDS:
                # (on the stiff basis, as fast as the error measured its growth)
                measured = measured_growth_factor(measure, abs(h), last_stiff,
                                                  self.basis.n_coeffs, growth)
                factor = factor if measured is None else max(factor, measured)
            last_stiff = (measure, abs(h)) if stiff else None
            # (the rule's growth, unless a singularity close ahead limits it)
            limited, toward = limited_factors(
                outcome.coeffs, y, outcome.y_end, self.atol, self.rtol,
                xp.asarray([factor], dtype=xp.float64, device=y.device), xp=xp)
            if bool(toward[0]):
                self.last_failure = (Failure.SINGULARITY, t, t_new)
            factor = float(limited[0])
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
            end_jac = outcome.end_jac
            start_with_newton = outcome.used_newton
            t, y, f = t_new, outcome.y_end, outcome.f_end
            if t == self.tf:
                self.status = 0
                return
            if rejected_here:
                factor = min(factor, 1.0)
            rejected_here = False
            h_abs *= factor
            picard_rate = outcome.picard_rate

    def _start_from(self, attempt, y_a, f_a, half_h):
        """A rejected attempt ``(coeffs, h)`` as the next start, unless it diverged."""
        xp = self.xp
        size = residual_size(y_a, f_a, half_h, xp=xp)
        return attempt if bool(plausible(attempt[0], size, xp=xp)[0]) else None

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
            self.coeffs[-1] = restrict(self.coeffs[-1], (t_stop - t_a) / (t_b - t_a), xp=xp)
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
        n = self.y0.shape[-1]
        if not self.coeffs:
            # No segment: a constant (zero-length span, or failure at t0).
            coeffs = xp.zeros((1, n, self.basis.n_coeffs), dtype=self.y0.dtype,
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

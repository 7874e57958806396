"""Batched IVPs: K independent solves in lock step, one ``fun`` call per round.

Each instance has its own segments: its own length, acceptance and
convergence.  What the instances share is the *round*: in each one, ``fun``
is called once on the nodes of every active instance (and the Jacobian on
those of the instances in a Newton phase), and then every instance takes one
step of its own iteration (:mod:`chebpan._control.batch_steps`).

A finished segment is accepted or rejected on its error estimate, as in a
single solve; an instance that reaches ``tf`` (or fails) leaves the active
set, so no work is spent on it.  The per-instance state is a table of arrays
over the active instances (:class:`~chebpan._control.batch_table.Table`): the
Picard step runs on all rows at once, and the (usually few) rows in a Newton
phase or starting a new attempt are computed apart and written back in place,
so instances are never looped over in Python and the rows that go on are never
copied.

Differences from a single solve (:mod:`chebpan._control.single`), chosen for
work rather than depth: the defaults (the batch column of
:data:`chebpan._control.options.OPTIONS`), every attempt starting with the
Picard iteration, one start per attempt (the rejected attempt's polynomial,
else the linearised start after a Newton segment, else the previous segment's,
else Euler's) instead of the best of several, and
a backtracking line search instead of the strong Wolfe search (which needs a
gradient, hence a matrix product, at every trial).  The lock step has no stiff
basis: while at most ``ALONE_ROWS`` rows are active, a row whose segment turns stiff
is finished as a single solve (:meth:`BatchLoop._stiff_rows_alone`); otherwise stiff
segments keep the paper's basis (see ``docs/user-guide.md``).
"""

from __future__ import annotations

import math

from .._core.basis import get_basis
from .._core.estimates import plausible, segment_estimates, tolerance_scale
from .._core.newton import jacobian_norms, linearised_start, residual_size
from .._core.picard import coefficients, end_value, euler_start, node_values
from .._output.result import failure_message
from .._rhs.checks import finite_instances
from .._rhs.evaluator import OneInstance
from .batch_steps import IterationSteps
from .batch_table import (
    ERROR,
    FAILED,
    FINISHED,
    GOING,
    NEWTON_FIELDS,
    NEWTON_START,
    NEWTON_TRIAL,
    DIVERGED,
    NONFINITE,
    NONFINITE_JAC,
    OUTCOME_FIELDS,
    PICARD,
    SINGULARITY,
    STATE_FIELDS,
    Ended,
    Table,
    instances_per_chunk,
)
from .single import SegmentLoop
from .policy import (
    FIRST_MAX_FACTOR,
    MAX_FACTOR,
    PICARD_ONLY_FACTOR,
    PICARD_ONLY_RHO,
    SAFETY_REJECT,
    STIFF_ON,
    STRETCH,
    extrapolated_guess,
    initial_lengths,
    length_factors,
    limited_factors,
)

__all__ = ["BatchLoop"]

#: With at most this many active rows, a row whose segment turns stiff is solved on
#: alone (:meth:`BatchLoop._stiff_rows_alone`): so few rows share too little of a round
#: for the lock step to pay for its paper's basis on stiff segments.  Measured on Van der
#: Pol (μ = 20 and 1000 on [0, 2μ], rtol 1e-6, one BLAS thread), stiff rows solved alone
#: from the start against the lock step: K = 2, 8, 16 took 0.13–0.76 of its time,
#: K = 32 1.1–1.2, K = 64 0.9–1.7, K = 400 4–5.
ALONE_ROWS = 16


class BatchLoop(IterationSteps):
    """State of a batched PAN solve: K instances of one IVP family.

    Parameters
    ----------
    evaluator : chebpan._rhs.evaluator.Evaluator
        Its ``batch_args`` (if any) are gathered by instance.
    basis : ChebyshevBasis
    spans : chebpan._control.spans.Spans
        Each instance's ``(t0, tf)``: shared floats, or arrays (K,) by instance id.
    y0 : array, shape (K, n)
    rtol, atol : float or array (n,)
    max_step : float
    iteration : chebpan._control.options.IterationOptions
    counters : chebpan._rhs.counters.Counters
        Summed over the instances (``depth`` counts rounds).
    xp : namespace
    newton_memory : int
        Bytes of Newton workspace per chunk of instances.
    record : chebpan._output.batch_record.SegmentRecord, EndRecord or TevalRecord
        What is kept of the accepted segments (only what the output needs).
    batch_memory : int
        Bytes of working memory: instances are solved in chunks that fit
        (:func:`instances_per_chunk`), one after the other.
    """

    def __init__(self, evaluator, basis, spans, y0, rtol, atol, max_step, iteration,
                 counters, *, xp, newton_memory, record, batch_memory):
        self.xp = xp
        self.evaluator = evaluator
        self.basis = basis
        self.spans = spans
        #: floats (a shared span) or arrays (K,) by instance id (per-instance spans).
        self.t0, self.tf, self.direction = spans.t0, spans.tf, spans.direction
        self.max_step = max_step
        self.y0 = y0
        self.dtype = y0.dtype
        self.device = y0.device
        self.rtol = xp.asarray(rtol, dtype=y0.dtype, device=y0.device)
        self.atol = xp.asarray(atol, dtype=y0.dtype, device=y0.device)
        self.options = iteration
        self.counters = counters
        self.newton_memory = int(newton_memory)
        self.eps = float(xp.finfo(y0.dtype).eps)
        self.tau64 = xp.astype(basis.tau, xp.float64)
        n = y0.shape[1]
        self.newton_allowed = n * basis.n_free <= iteration.max_newton_size
        self.fields = STATE_FIELDS + (NEWTON_FIELDS if self.newton_allowed else ())
        if self.newton_allowed:
            self.max_picard, self.rho_limit = iteration.max_picard, iteration.rho_newton
        else:
            self.max_picard = PICARD_ONLY_FACTOR * iteration.max_picard
            self.rho_limit = PICARD_ONLY_RHO
        #: A row whose segment turns stiff is solved on alone with this basis
        #: (:meth:`_stiff_rows_alone`).
        self.stiff_basis = get_basis(basis.n_coeffs, basis.n_coeffs, xp=xp, dtype=y0.dtype,
                                     device=y0.device, stiff=True)
        #: What is kept of the accepted segments.
        self.record = record
        self.chunk = instances_per_chunk(batch_memory, n, basis,
                                         xp.finfo(y0.dtype).bits // 8)
        #: Ended instances, an :class:`Ended` record per round that ended any.
        self.ended = []
        #: A :class:`~chebpan._output.batch_events.BatchEvents` when events are given.
        self.events = None
        #: A :class:`~chebpan._output.progress.BatchProgressBar` with ``progress=True``.
        self.progress = None
        #: Whether the batch's one instance is solved as a single solve (:meth:`_solve_one`).
        self.alone = False

    # -- helpers -----------------------------------------------------------
    def _float64(self, value, size):
        return self.xp.full((size,), value, dtype=self.xp.float64, device=self.device)

    def _scale(self, *values):
        return tolerance_scale(self.atol, self.rtol, *values, xp=self.xp)

    def _half_h(self, table):
        return self.xp.astype((table.t_b - table.t_a) / 2, self.dtype)[:, None]

    def _node_times(self, t_a, t_b):
        """(K, M) float64 node times, the last exactly ``t_b``."""
        xp = self.xp
        t = t_a[:, None] + ((t_b - t_a) / 2)[:, None] * (1 + self.tau64)[None, :]
        return xp.concat([t[:, :-1], t_b[:, None]], axis=1)

    def _f_at_points(self, t, y, ids):
        """``fun`` at one point per instance: t (K,), y (K, n) → (K, n), one round."""
        xp = self.xp
        f, _ = self.evaluator.evaluate(t, xp.matrix_transpose(y), instances=ids)
        return xp.matrix_transpose(f)

    def _end(self, table, status, messages=None):
        # (copies: the table's arrays are updated in place later)
        xp = self.xp
        self.ended.append(Ended(xp.asarray(table.ids, copy=True), status, messages,
                                *(xp.asarray(value, copy=True)
                                  for value in (table.nsegments, table.nrejected, table.depth))))
        if self.progress is not None:
            self.progress.ended(table.ids, table.t_a)

    def _fail(self, table, messages):
        if len(table):
            self._end(table, -1, messages)

    # -- the loop ----------------------------------------------------------
    def run(self, first_step):
        xp = self.xp
        k, n = self.y0.shape
        ids = xp.arange(k, dtype=xp.int64, device=self.device)
        if k == 0 or (self.spans.shared and self.tf == self.t0):
            self._end_at_once(ids)
            return
        if not self.spans.shared:
            still = self.t0 == self.tf
            if bool(xp.any(still)):
                self._record_still(ids[still])
                ids = ids[~still]
                k = ids.shape[0]
        if n == 0:
            # Nothing to integrate: one empty segment over the span each.
            coeffs = xp.zeros((k, 0, self.basis.n_coeffs), dtype=self.dtype, device=self.device)
            y0 = xp.take(self.y0, ids, axis=0)
            self.record.accept(ids, self.spans.starts(ids), self.spans.ends(ids), coeffs, y0, y0)
            self._end_at_once(ids)
            return
        if self.alone and k == 1:
            self._solve_one(first_step)
            return
        for start in range(0, k, self.chunk):
            self._run_instances(ids[start:min(k, start + self.chunk)], first_step)

    def _solve_one(self, first_step):
        """The batch's one instance as a single solve: the segment loop of
        :func:`chebpan.solve_ivp` from ``t0`` (its first call of ``fun``, its first
        length), the segments recorded as the batch's."""
        xp = self.xp
        ids = xp.zeros((1,), dtype=xp.int64, device=self.device)
        t0 = float(self.spans.starts(ids)[0])
        loop = self._instance_loop(0, t0, self.y0[0, ...])
        if self.progress is not None:
            loop.progress = _InstanceProgress(self.progress, t0)
        loop.run(first_step)
        self._record_loop(0, loop, progress=False)
        counts = (xp.asarray([value], dtype=xp.int64, device=self.device) for value in (
            self.counters.nsegments, self.counters.nrejected, self.counters.depth))
        self.ended.append(Ended(ids, loop.status,
                                [loop.message] if loop.status == -1 else None, *counts))
        if self.progress is not None:
            self.progress.ended(ids, xp.asarray([loop.ts[-1]], dtype=xp.float64,
                                                device=self.device))

    def _end_at_once(self, ids):
        """The instances ``ids`` end with nothing to integrate (status 0, no rounds)."""
        zeros = self.xp.zeros(ids.shape, dtype=self.xp.int64, device=self.device)
        self.ended.append(Ended(ids, 0, None, zeros, zeros, zeros))
        if self.progress is not None:
            self.progress.ended(ids, self.spans.starts(ids))

    def _record_still(self, ids):
        """Instances of a per-instance span with ``t0 == tf``: done at once, each with a
        constant segment ``[t0, t0]`` (the output a shared empty span gives)."""
        xp = self.xp
        y0 = xp.take(self.y0, ids, axis=0)
        rest = xp.zeros((*y0.shape, self.basis.n_coeffs - 1), dtype=self.dtype,
                        device=self.device)
        t0 = self.spans.starts(ids)
        self.record.accept(ids, t0, t0, xp.concat([y0[..., None], rest], axis=-1), y0, y0)
        self._end_at_once(ids)

    def _run_instances(self, ids, first_step):
        """Solve the instances ``ids`` (a chunk of the batch) to their ends."""
        xp = self.xp
        y0 = self.y0 if ids.shape[0] == self.y0.shape[0] else xp.take(self.y0, ids, axis=0)
        f0 = self._f_at_points(self.spans.starts(ids), y0, ids)
        finite = xp.all(xp.isfinite(f0), axis=1)
        # (depth: f0's round, and the initial length's unless first_step is given)
        state = self._initial_state(ids, y0, f0, 1 if first_step is not None else 2)
        bad = state.select(~finite)
        bad.depth = xp.ones_like(bad.depth)
        self._fail(bad, [f"`fun` returned non-finite values at t = {float(t)!r}."
                         for t in bad.t_a])
        state = state.select(finite)
        if not len(state):
            return
        if first_step is None:
            state.h_abs = initial_lengths(
                lambda t, y: self._f_at_points(t, y, state.ids), self.spans.of(state.ids),
                state.y_a, state.f_a, self._scale(state.y_a), xp=xp)
        else:
            state.h_abs = self._float64(first_step, len(state))
        state, alive = self._start(state)
        state = state.select(alive) if bool(xp.any(alive)) else None
        while state is not None:
            state = self._round(state)

    def _initial_state(self, ids, y0, f0, setup_rounds):
        """Every field its own array: rows are later written in place."""
        xp, basis = self.xp, self.basis
        k, n = y0.shape
        dtype, device = self.dtype, self.device

        def floats(value):
            return self._float64(value, k)

        def starts():
            return self.spans.starts(ids)

        def ints():
            return xp.zeros((k,), dtype=xp.int64, device=device)

        def values(shape=()):
            return xp.zeros((k, *shape), dtype=dtype, device=device)

        table = Table(
            xp, ids=ids, t_a=starts(), t_b=floats(math.nan), h_abs=floats(math.nan),
            y_a=xp.asarray(y0, copy=True), f_a=xp.asarray(f0, copy=True),
            x=values((n, basis.n_free)), y_nodes=values((n, basis.n_nodes)),
            t_nodes=xp.zeros((k, basis.n_nodes), dtype=xp.float64, device=device),
            phase=ints(), n_iter=ints(), prev_change=values() + math.nan,
            prev_coeffs=values((n, basis.n_coeffs)), prev_h=floats(math.nan),
            att_coeffs=values((n, basis.n_coeffs)), att_h=floats(math.nan),
            rejected_here=xp.zeros((k,), dtype=xp.bool, device=device),
            # (a single solve's "last failure" before any: an error on [t0, t0])
            fail_what=ints() + ERROR, fail_ta=starts(), fail_tb=starts(),
            nsegments=ints(), nrejected=ints(), depth=ints() + setup_rounds)
        if self.newton_allowed:
            table.x_base = values((n, basis.n_free))
            table.direction = values((n, basis.n_free))
            for name in ("value", "slope", "alpha", "change", "floor"):
                setattr(table, name, values())
            table.f_base_end = xp.asarray(f0, copy=True)
            #: Whether the row's next attempt starts with Newton steps.
            table.newton_next = xp.zeros((k,), dtype=xp.bool, device=device)
            #: Newton steps of the row's attempt that the line search shortened.
            table.n_damped = ints()
            #: The Newton change before ``prev_change`` (NaN: none), and whether the step
            #: of ``prev_change`` was a full one (the quadratic convergence test).
            table.before_change = values() + math.nan
            table.prev_full = xp.zeros((k,), dtype=xp.bool, device=device)
            table.end_jac = values((n, n)) + math.nan
        return table

    def _start(self, table, reached=None):
        """New attempts from each row's ``t_a`` with length ``h_abs``.

        Returns the same rows and ``alive`` (K,): False where the length fell
        below the spacing of numbers at ``t_a`` (those instances have failed)
        and for the rows ``reached`` (at ``tf`` already: nothing to start).
        """
        xp, basis = self.xp, self.basis
        span = self.spans.of(table.ids)
        remaining = xp.abs(span.tf - table.t_a)
        h_abs = xp.minimum(xp.minimum(table.h_abs, self.max_step), remaining)
        toward = span.direction * xp.full_like(table.t_a, math.inf)
        min_step = 10 * xp.abs(xp.nextafter(table.t_a, toward) - table.t_a)
        # (a NaN length fails too: never loop on it.)  A span of a few ulp
        # is tried whole, once; after a rejection there it fails.
        whole = (remaining <= min_step) & ~table.rejected_here & (remaining > 0)
        h_abs = xp.where(whole, remaining, h_abs)
        alive = (h_abs >= min_step) | whole
        if reached is not None:
            alive = alive & ~reached
        if not bool(xp.all(alive)):
            stuck = ~alive if reached is None else ~alive & ~reached
            stuck = table.select(stuck)
            self._fail(stuck, [
                failure_message(int(what), float(t), float(t_a), float(t_b))
                for what, t, t_a, t_b in zip(stuck.fail_what, stuck.t_a, stuck.fail_ta,
                                             stuck.fail_tb)])
            # (harmless lengths for the rows that start nothing)
            h_abs = xp.where(alive, h_abs, abs(span.tf - span.t0))
        stretch = (STRETCH * h_abs >= remaining) & (remaining <= self.max_step)
        table.h_abs = h_abs
        table.t_b = xp.where((h_abs >= remaining) | stretch, span.tf,
                             table.t_a + span.direction * h_abs)
        h = table.t_b - table.t_a
        half_h = self._half_h(table)
        x = euler_start(basis, table.f_a, half_h, xp=xp)
        # One start per row: the rejected attempt's polynomial; else, after an attempt
        # that converged with Newton steps, the linearised start from its J at the end
        # (docs/algorithm.md, "Segment control"; a single solve would compare it with
        # the previous segment extrapolated, and it is the better start about three
        # times in four there); else the previous segment's; else Euler's.
        starting = alive & (h != 0)
        retried = starting & xp.isfinite(table.att_h)
        if self.newton_allowed:
            linearised = starting & ~retried & xp.all(xp.isfinite(table.end_jac),
                                                       axis=(1, 2))
        else:
            linearised = xp.zeros_like(starting)
        for has, coeffs, length, tau_start in (
                (starting & xp.isfinite(table.prev_h) & ~retried & ~linearised,
                 table.prev_coeffs, table.prev_h, 1.0),
                (retried, table.att_coeffs, table.att_h, -1.0)):
            if bool(xp.any(has)):
                x[has] = extrapolated_guess(basis, coeffs[has], length[has], h[has],
                                            table.f_a[has], xp=xp, tau_start=tau_start)
        if bool(xp.any(linearised)):
            x[linearised] = linearised_start(basis, table.y_a[linearised],
                                             table.f_a[linearised], half_h[linearised],
                                             table.end_jac[linearised], xp=xp)
        table.x = x
        table.y_nodes = node_values(basis, table.y_a, table.f_a, half_h, x, xp=xp)
        table.t_nodes = self._node_times(table.t_a, table.t_b)
        # As in a single solve, an attempt starts with Newton steps after a segment
        # that needed them or after a failed attempt (the Picard iteration would
        # fail there again), otherwise with the Picard iteration.
        table.phase = xp.zeros_like(table.phase) + PICARD
        if self.newton_allowed:
            table.phase = xp.where(table.newton_next, NEWTON_START, table.phase)
            table.n_damped = xp.zeros_like(table.n_damped)
            table.before_change = xp.full_like(table.before_change, math.nan)
            table.prev_full = xp.zeros_like(table.prev_full)
        table.n_iter = xp.zeros_like(table.n_iter)
        table.prev_change = xp.full_like(table.prev_change, math.nan)
        return table, alive

    def _round(self, state):
        """One evaluation round and one iteration step of every active instance."""
        xp, basis = self.xp, self.basis
        state.depth = state.depth + 1
        k, n, m = len(state), state.y_a.shape[1], basis.n_nodes
        state.half_h = self._half_h(state)
        t_nodes = xp.reshape(state.t_nodes, (k * m,))
        flat_y = xp.reshape(xp.permute_dims(state.y_nodes, (1, 0, 2)), (n, k * m))

        def by_point(rows):  # (K,) -> (K·M,), a row's value at each of its nodes
            return xp.reshape(xp.broadcast_to(rows[:, None], (k, m)), (k * m,))

        # (the instance of each point: only ``batch_args`` need them)
        instances = by_point(state.ids) if self.evaluator.batch_args else None
        needs_jac = state.phase != PICARD
        jac_points = by_point(needs_jac) if bool(xp.any(needs_jac)) else None
        f, jac = self.evaluator.evaluate_some_jacobians(t_nodes, flat_y, jac_points,
                                                        instances=instances)
        f = xp.reshape(f, (n, k, m))
        state.f_nodes = xp.permute_dims(f, (1, 0, 2))
        state.finite = finite_instances(f, xp=xp)
        if jac is not None and self.events is None and k <= ALONE_ROWS:
            state, needs_jac, jac = self._stiff_rows_alone(state, needs_jac, jac)
            if state is None:
                return None

        newton = None
        if jac is not None:
            newton = state.select(needs_jac)
            newton.row = xp.nonzero(needs_jac)[0]
        # The Picard step runs on every row (cheap); the rows in a Newton
        # phase (usually few) then overwrite theirs in place.
        table = self._picard(state, counted=None if jac is None else ~needs_jac)
        if newton is not None:
            newton.jac = xp.reshape(jac, (len(newton), m, n, n))
            newton.jac_finite = xp.all(xp.isfinite(newton.jac), axis=(1, 2, 3))
            parts = []
            for phase, step in ((NEWTON_START, self._newton_start),
                                (NEWTON_TRIAL, self._newton_trial)):
                for outcome, part in zip((GOING, FINISHED, FAILED),
                                         step(newton.select(newton.phase == phase))):
                    if part is not None and len(part):
                        part.outcome = xp.full_like(part.n_iter, outcome)
                        parts.append(part)
            names = self.fields + OUTCOME_FIELDS
            done = Table.concat(parts, xp, names + ("row",))
            # (every Newton row is in exactly one part: in row order, they
            # fill the mask's places)
            done = done.select_in_order(xp.argsort(done.row))
            done.y_nodes = node_values(basis, done.y_a, done.f_a, done.half_h, done.x, xp=xp)
            table.write_rows(needs_jac, done, names)
        return self._restart_ended_attempts(table)

    def _stiff_rows_alone(self, state, needs_jac, jac):
        """Rows whose segment is stiff leave the lock step and are solved on alone.

        Stiff is what makes a single solve switch to the stiff basis:
        ``(h/2) max_m ‖J_m‖∞`` above ``STIFF_ON`` at the nodes of the row's attempt,
        with J where its Newton iteration starts (not at a line search's trial point).
        Each such row finishes as a single solve from its ``t_a`` (the stiff basis,
        its Newton steps, the start-slope check: docs/algorithm.md, "Stiff
        segments"), its segments recorded as the batch's (:meth:`_solve_alone`); the
        batch has no stiff basis of its own.  Returns the other rows with their
        ``needs_jac`` and ``J`` (``state`` None when none is left).
        """
        xp = self.xp
        n, m = state.y_a.shape[1], self.basis.n_nodes
        # (J where a row's Newton iteration starts, as a single solve measures it: a
        # trial point of the line search may lie far off, its J with it)
        starting = state.phase[needs_jac] == NEWTON_START
        if not bool(xp.any(starting)):
            return state, needs_jac, jac
        per_row = xp.reshape(jac, (-1, m, n, n))
        norms = jacobian_norms(per_row, xp=xp)
        half_h = xp.abs(state.half_h[needs_jac][:, 0])
        stiff = (xp.astype(half_h, xp.float64) * xp.astype(norms, xp.float64) > STIFF_ON) \
            & starting
        if not bool(xp.any(stiff)):
            return state, needs_jac, jac
        alone = xp.zeros(needs_jac.shape, dtype=xp.bool, device=self.device)
        alone[needs_jac] = stiff
        self._solve_alone(state.select(alone), norms[stiff])
        keep = ~alone
        if not bool(xp.any(keep)):
            return None, None, None
        jac = xp.reshape(per_row[~stiff], (-1, n, n)) if bool(xp.any(~stiff)) else None
        return state.select(keep), needs_jac[keep], jac

    def _solve_alone(self, rows, norms):
        """Each row a single solve from its ``t_a`` to its ``tf``, its first attempt of
        length ``h_abs`` on the basis that ``norms`` (``max_m ‖J_m‖∞``) pick; its
        segments and its end go to the batch's record."""
        xp = self.xp
        for i in range(len(rows)):
            row = rows.select_in_order(xp.asarray([i], device=self.device))
            index = int(row.ids[0])
            loop = self._instance_loop(index, float(row.t_a[0]), row.y_a[0, ...], f0=row.f_a)
            before = (self.counters.nsegments, self.counters.nrejected, self.counters.depth)
            loop.run(float(row.h_abs[0]), stiffness=float(norms[i]))
            self._record_loop(index, loop)
            row.t_a = xp.asarray([loop.ts[-1]], dtype=xp.float64, device=self.device)
            row.nsegments = row.nsegments + (self.counters.nsegments - before[0])
            row.nrejected = row.nrejected + (self.counters.nrejected - before[1])
            row.depth = row.depth + (self.counters.depth - before[2])
            self._end(row, loop.status, [loop.message] if loop.status == -1 else None)

    def _instance_loop(self, index, t_a, y_a, f0=None):
        """A single solve's segment loop for instance ``index`` from ``(t_a, y_a)`` to its
        ``tf``, with the batch's bases, tolerances, options and counters (``f0``: f at
        the start, (1, n), where it is known; else the loop's first round)."""
        xp = self.xp
        t_end = float(self.spans.ends(xp.asarray([index], dtype=xp.int64,
                                                 device=self.device))[0])
        return SegmentLoop(OneInstance(self.evaluator, index), self.basis, self.stiff_basis,
                           t_a, t_end, y_a, self.rtol, self.atol, self.max_step,
                           self.options, self.counters, xp=xp, f0=f0)

    def _record_loop(self, index, loop, *, progress=True):
        """The segments a single solve's ``loop`` accepted for instance ``index``, into
        the batch's record (and its progress bar, if ``progress``)."""
        xp = self.xp
        if not loop.coeffs:
            return
        ts = xp.asarray(loop.ts, dtype=xp.float64, device=self.device)
        self.record.accept(
            xp.full((len(loop.coeffs),), index, dtype=xp.int64, device=self.device),
            ts[:-1], ts[1:], xp.stack(loop.coeffs), xp.stack(loop.y_start),
            xp.stack(loop.y_end))
        if progress and self.progress is not None:
            self.progress.advance(ts[:-1], ts[1:])

    def _restart_ended_attempts(self, table):
        """Finished and failed attempts: accept/reject, start anew in their rows.

        The (few) rows whose attempt ended are taken out in order, updated and
        written back in place, so the rows that go on are never copied;
        instances that reached ``tf`` or failed leave the table.
        """
        xp = self.xp
        ended = table.outcome != GOING
        if not bool(xp.any(ended)):
            return Table(xp, **{name: table.fields[name] for name in self.fields})
        rows = self._end_attempts(table.select(ended))
        rows, alive = self._start(rows, reached=rows.reached)
        table.write_rows(ended, rows, self.fields)
        keep = ~ended
        keep[ended] = alive
        table = Table(xp, **{name: table.fields[name] for name in self.fields})
        if bool(xp.all(keep)):
            return table
        return table.select(keep) if bool(xp.any(keep)) else None

    # -- ends of attempts ---------------------------------------------------
    def _end_attempts(self, table):
        """Accept or reject the ended attempts (same rows, ``reached`` set).

        A converged attempt is accepted when its error estimate is at most 1;
        a rejected or failed one keeps its polynomial as the next start (not
        after non-finite values) and is retried shorter.
        """
        xp, basis = self.xp, self.basis
        half_h = table.half_h
        coeffs = coefficients(basis, table.y_a, table.f_a, half_h, table.x, xp=xp)
        y_end = end_value(basis, table.y_a, table.f_a, half_h, table.x, xp=xp)
        err, predicted = segment_estimates(coeffs, table.y_a, y_end, self.atol, self.rtol, xp=xp)
        err, predicted = xp.astype(err, xp.float64), xp.astype(predicted, xp.float64)
        estimate = xp.where(xp.isnan(predicted), err, xp.minimum(err, predicted))
        h = table.t_b - table.t_a
        growth = xp.where(xp.isfinite(table.prev_h), xp.full_like(h, MAX_FACTOR),
                          FIRST_MAX_FACTOR)
        factor = length_factors(estimate, basis.n_coeffs, growth, xp=xp)
        finished = table.outcome == FINISHED
        accepted = finished & (err <= 1)
        too_large = finished & ~accepted
        n_accepted = int(xp.sum(xp.astype(accepted, xp.int64)))
        self.counters.nsegments += n_accepted
        self.counters.nrejected += len(table) - n_accepted
        terminal = None  # rows whose instance a terminal event stops
        if n_accepted:
            # (copies: the table's arrays are updated in place later)
            segments = tuple(value[accepted] for value in (
                table.ids, table.t_a, table.t_b, coeffs, table.y_a, y_end))
            if self.progress is not None:
                self.progress.advance(segments[1], segments[2])
            if self.events is not None:
                segments, terminal = self.events.process(
                    segments, table.t_nodes[accepted], accepted)
            self.record.accept(*segments)
        # Rejected on the error, or failed: the next start from this polynomial
        # (not after non-finite values, nor from a diverged one), shorter, the
        # failure remembered.
        table.fail_what = xp.where(too_large, ERROR, table.fail_what)
        starts_here = ~accepted & (table.fail_what != NONFINITE) & (
            table.fail_what != NONFINITE_JAC) & (table.fail_what != DIVERGED) & plausible(
            coeffs, xp.astype(residual_size(table.y_a, table.f_a, half_h, xp=xp),
                              coeffs.dtype), xp=xp)
        table.att_coeffs = xp.where(starts_here[:, None, None], coeffs, table.att_coeffs)
        table.att_h = xp.where(starts_here, h, xp.nan)
        table.fail_ta = xp.where(accepted, table.fail_ta, table.t_a)
        table.fail_tb = xp.where(accepted, table.fail_tb, table.t_b)
        shrink = xp.where(too_large, xp.minimum(factor, SAFETY_REJECT), 0.5)
        if n_accepted:  # (the rule's growth, unless a singularity close ahead limits it)
            factor = xp.asarray(factor, copy=True)
            toward = xp.zeros_like(accepted)
            factor[accepted], toward[accepted] = limited_factors(
                coeffs[accepted], table.y_a[accepted], y_end[accepted], self.atol,
                self.rtol, factor[accepted], xp=xp)
            table.fail_what = xp.where(toward, SINGULARITY, table.fail_what)
            table.fail_ta = xp.where(toward, table.t_a, table.fail_ta)
            table.fail_tb = xp.where(toward, table.t_b, table.fail_tb)
        grow = xp.where(table.rejected_here, xp.minimum(factor, 1.0), factor)
        table.h_abs = table.h_abs * xp.where(accepted, grow, shrink)
        table.rejected_here = ~accepted
        if self.newton_allowed:
            table.newton_next = table.newton_next | ~finished
            # J at the end of an accepted Newton attempt is the next start's; a failed
            # attempt keeps the J its start had (at the same y_a); any other finished
            # attempt leaves none (its J, if any, is at its own end).
            forget = finished & ~(accepted & table.used_newton)
            table.end_jac = xp.where(forget[:, None, None], math.nan, table.end_jac)
        table.nsegments = table.nsegments + xp.astype(accepted, table.nsegments.dtype)
        table.nrejected = table.nrejected + xp.astype(~accepted, table.nrejected.dtype)
        # Accepted: the next segment starts at this one's end.
        table.prev_coeffs = xp.where(accepted[:, None, None], coeffs, table.prev_coeffs)
        table.prev_h = xp.where(accepted, h, table.prev_h)
        table.t_a = xp.where(accepted, table.t_b, table.t_a)
        table.y_a = xp.where(accepted[:, None], y_end, table.y_a)
        table.f_a = xp.where(accepted[:, None], table.f_end, table.f_a)
        at_tf = accepted & (table.t_a == self.spans.of(table.ids).tf)
        if terminal is not None:  # (status 1, even at tf)
            self._end(table.select(terminal), 1)
            at_tf = at_tf & ~terminal
        if bool(xp.any(at_tf)):
            self._end(table.select(at_tf), 0)
        # (both leave the table)
        table.reached = at_tf if terminal is None else at_tf | terminal
        return table


class _InstanceProgress:
    """A batch's progress bar as a single solve's segment loop updates it (its one
    instance's end so far, ``update(t)``)."""

    def __init__(self, bar, t0):
        self.bar = bar
        self.t = t0

    def update(self, t):
        xp = self.bar.spans.xp
        self.bar.advance(xp.asarray([self.t]), xp.asarray([t]))
        self.t = t

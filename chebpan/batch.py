"""Batched IVPs: K independent solves in lock step, one ``fun`` call per round.

Each instance has its own segments: its own length, acceptance and
convergence.  What the instances share is the *round*: in each one, ``fun``
is called once on the nodes of every active instance (and the Jacobian on
those of the instances in a Newton phase), and then every instance takes one
step of its own iteration:

- ``PICARD``: a zero-order update; converged → the segment is finished, too
  slow → Newton, otherwise another update;
- ``NEWTON_START``: f and J at the iterate give the Gauss–Newton direction
  (modified LDLᵀ, batched and chunked to bound memory), and the full step
  is tried;
- ``NEWTON_TRIAL``: a backtracking (Armijo) line search on the objective;
  an accepted step either converges or yields the next direction.

A finished segment is accepted or rejected on its error estimate, as in a
single solve; an instance that reaches ``tf`` (or fails) leaves the active
set, so no work is spent on it.  The per-instance state is a table of arrays
over the active instances (:class:`_Table`): the zero-order step runs on all
rows at once, and the (usually few) rows in a Newton phase or starting a new
attempt are computed apart and written back in place, so instances are never
looped over in Python and the rows that go on are never copied.

Differences from a single solve (:mod:`chebpan.ivp`), chosen for work rather
than depth: the defaults (``BATCH_DEFAULTS``), every attempt starting with
the zero-order iteration, one start per attempt (the rejected attempt's
polynomial, else the previous segment's, else Euler's) instead of the best
of several, and a backtracking line search instead of the strong Wolfe
search (which needs a gradient, hence a matrix product, at every trial).
Stiff segments keep the paper's basis (see ``docs/user-guide.md``).
"""

from __future__ import annotations

import math

from .newton import DenseLinearization, directional_slope, objective, residual, residual_size
from .picard import coefficients, end_value, euler_start, node_values, picard_step
from .result import Failure, failure_message
from .segment import (
    FIRST_MAX_FACTOR,
    MAX_FACTOR,
    PICARD_ONLY_FACTOR,
    PICARD_ONLY_RHO,
    ROUNDING_ULPS,
    SAFETY_REJECT,
    STRETCH,
    converged,
    decay_error_estimates,
    initial_lengths,
    error_estimates,
    extrapolated_guess,
    length_factors,
    scaled_rms,
    rounding_floors,
    tolerance_scale,
)

__all__ = ["BatchLoop", "DEFAULT_NEWTON_MEMORY", "BATCH_DEFAULTS"]

PICARD, NEWTON_START, NEWTON_TRIAL = 0, 1, 2
#: What a row's iteration step led to, and the fields that say how.
GOING, FINISHED, FAILED = 0, 1, 2
OUTCOME_FIELDS = ("outcome", "half_h", "f_end", "used_newton")
NONFINITE, NO_CONVERGENCE, STALLED, LINE_SEARCH, ERROR, NONFINITE_JAC, DIVERGED = (
    int(failure) for failure in Failure)

#: Bytes of Newton workspace (residual Jacobians and Gauss–Newton matrices)
#: per chunk of instances; see ``newton_memory`` in :func:`chebpan.solve_ivp`.
DEFAULT_NEWTON_MEMORY = 2**28
#: Armijo's sufficient-decrease constant and the smallest step tried.
ARMIJO = 1e-4
MIN_ALPHA = 1e-4
#: Defaults of a batched solve (chosen for work: ``bench/batch.py``); a single
#: solve's are in :mod:`chebpan.ivp` and :class:`chebpan.segment.IterationOptions`.
BATCH_DEFAULTS = {"n_coeffs": 12, "rho_newton": 0.9, "max_picard": 30}

#: The per-instance state carried from round to round ...
STATE_FIELDS = (
    "ids", "t_a", "t_b", "h_abs", "y_a", "f_a", "x", "phase", "n_iter", "prev_change",
    "prev_coeffs", "prev_h", "att_coeffs", "att_h", "rejected_here",
    "fail_what", "fail_ta", "fail_tb", "nsegments", "nrejected", "depth",
)
#: ... and that of the line search, when Newton steps are possible.
NEWTON_FIELDS = ("x_base", "direction", "value", "slope", "alpha", "change", "floor",
                 "f_base_end")


class _Table:
    """Arrays sharing a leading axis: one row per active instance.

    Tables are never modified in place, only rebound field by field, so a
    selection of all rows can share the arrays.
    """

    def __init__(self, xp, **fields):
        object.__setattr__(self, "xp", xp)
        object.__setattr__(self, "fields", dict(fields))

    def __getattr__(self, name):
        try:
            return self.fields[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self.fields[name] = value

    def __len__(self):
        return self.fields["ids"].shape[0]

    def select(self, mask):
        """The rows where ``mask`` (bools, one per row) holds."""
        xp = self.xp
        count = int(xp.sum(xp.astype(mask, xp.int64)))
        if count == mask.shape[0]:
            return _Table(xp, **self.fields)
        if count == 0:
            return _Table(xp, **{name: value[:0, ...] for name, value in self.fields.items()})
        index = xp.nonzero(mask)[0]
        return _Table(xp, **{name: xp.take(value, index, axis=0)
                             for name, value in self.fields.items()})

    def select_in_order(self, index):
        """The rows ``index`` (integers), in that order."""
        xp = self.xp
        return _Table(xp, **{name: xp.take(value, index, axis=0)
                             for name, value in self.fields.items()})

    @staticmethod
    def concat(tables, xp, names):
        """One table of the rows of ``tables`` (None or empty ones skipped).

        Only the fields ``names`` are kept; None when there are no rows.
        """
        tables = [table for table in tables if table is not None and len(table)]
        if not tables:
            return None
        if len(tables) == 1:
            return _Table(xp, **{name: tables[0].fields[name] for name in names})
        return _Table(xp, **{name: xp.concat([table.fields[name] for table in tables])
                             for name in names})


class BatchLoop:
    """State of a batched PAN solve: K instances of one IVP family.

    Parameters
    ----------
    evaluator : chebpan.rhs.Evaluator
        Its ``batch_args`` (if any) are gathered by instance.
    basis : ChebyshevBasis
    t0, tf : float
    y0 : array, shape (K, L)
    rtol, atol : float or array (L,)
    max_step : float
    iteration : chebpan.segment.IterationOptions
    counters : chebpan.counters.Counters
        Summed over the instances (``depth`` counts rounds).
    xp : namespace
    newton_memory : int
        Bytes of Newton workspace per chunk of instances.
    """

    def __init__(self, evaluator, basis, t0, tf, y0, rtol, atol, max_step, iteration,
                 counters, *, xp, newton_memory=DEFAULT_NEWTON_MEMORY):
        self.xp = xp
        self.evaluator = evaluator
        self.basis = basis
        self.t0, self.tf = t0, tf
        self.direction = 1.0 if tf >= t0 else -1.0
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
        n_comp = y0.shape[1]
        self.newton_allowed = n_comp * basis.n_free <= iteration.max_newton_size
        self.fields = STATE_FIELDS + (NEWTON_FIELDS if self.newton_allowed else ())
        if self.newton_allowed:
            self.max_picard, self.rho_limit = iteration.max_picard, iteration.rho_newton
        else:
            self.max_picard = PICARD_ONLY_FACTOR * iteration.max_picard
            self.rho_limit = PICARD_ONLY_RHO
        #: Accepted segments, one tuple of arrays per round that accepted any:
        #: (ids, t_a, t_b, coeffs, y_start, y_end).
        self.segments = []
        #: Ended instances: (ids, status, messages or None, nsegments, nrejected, depth).
        self.ended = []

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
        """``fun`` at one point per instance: t (K,), y (K, L) → (K, L), one round."""
        xp = self.xp
        f, _ = self.evaluator.evaluate(t, xp.matrix_transpose(y), instances=ids)
        return xp.matrix_transpose(f)

    def _end(self, table, status, messages=None):
        # (copies: the table's arrays are updated in place later)
        xp = self.xp
        self.ended.append((xp.asarray(table.ids, copy=True), status, messages,
                           *(xp.asarray(value, copy=True)
                             for value in (table.nsegments, table.nrejected, table.depth))))

    def _fail(self, table, messages):
        if len(table):
            self._end(table, -1, messages)

    # -- the loop ----------------------------------------------------------
    def run(self, first_step):
        xp = self.xp
        k, n_comp = self.y0.shape
        ids = xp.arange(k, dtype=xp.int64, device=self.device)
        zeros_int = xp.zeros((k,), dtype=xp.int64, device=self.device)
        if self.tf == self.t0 or k == 0:
            self.ended.append((ids, 0, None, zeros_int, zeros_int, zeros_int))
            return
        if n_comp == 0:
            # Nothing to integrate: one empty segment over the span each.
            coeffs = xp.zeros((k, 0, self.basis.n_coeffs), dtype=self.dtype, device=self.device)
            self.segments.append((ids, self._float64(self.t0, k), self._float64(self.tf, k),
                                  coeffs, self.y0, self.y0))
            self.ended.append((ids, 0, None, zeros_int, zeros_int, zeros_int))
            return
        f0 = self._f_at_points(self._float64(self.t0, k), self.y0, ids)
        finite = xp.all(xp.isfinite(f0), axis=1)
        # (depth: f0's round, and the initial length's unless first_step is given)
        state = self._initial_state(ids, f0, 1 if first_step is not None else 2)
        bad = state.select(~finite)
        bad.depth = xp.ones_like(bad.depth)
        self._fail(bad, [f"`fun` returned non-finite values at t = {self.t0!r}."] * len(bad))
        state = state.select(finite)
        if not len(state):
            return
        if first_step is None:
            state.h_abs = initial_lengths(
                lambda t, y: self._f_at_points(t, y, state.ids), self.t0, self.tf,
                state.y_a, state.f_a, self._scale(state.y_a), xp=xp)
        else:
            state.h_abs = self._float64(first_step, len(state))
        state, alive = self._start(state)
        state = state.select(alive) if bool(xp.any(alive)) else None
        while state is not None:
            state = self._round(state)

    def _initial_state(self, ids, f0, setup_rounds):
        """Every field its own array: rows are later written in place."""
        xp, basis = self.xp, self.basis
        k, n_comp = self.y0.shape
        dtype, device = self.dtype, self.device

        def floats(value):
            return self._float64(value, k)

        def ints():
            return xp.zeros((k,), dtype=xp.int64, device=device)

        def values(shape=()):
            return xp.zeros((k, *shape), dtype=dtype, device=device)

        table = _Table(
            xp, ids=ids, t_a=floats(self.t0), t_b=floats(math.nan), h_abs=floats(math.nan),
            y_a=xp.asarray(self.y0, copy=True), f_a=xp.asarray(f0, copy=True),
            x=values((n_comp, basis.n_free)),
            phase=ints(), n_iter=ints(), prev_change=values() + math.nan,
            prev_coeffs=values((n_comp, basis.n_coeffs)), prev_h=floats(math.nan),
            att_coeffs=values((n_comp, basis.n_coeffs)), att_h=floats(math.nan),
            rejected_here=xp.zeros((k,), dtype=xp.bool, device=device),
            # (a single solve's "last failure" before any: an error on [t0, t0])
            fail_what=ints() + ERROR, fail_ta=floats(self.t0), fail_tb=floats(self.t0),
            nsegments=ints(), nrejected=ints(), depth=ints() + setup_rounds)
        if self.newton_allowed:
            table.x_base = values((n_comp, basis.n_free))
            table.direction = values((n_comp, basis.n_free))
            for name in ("value", "slope", "alpha", "change", "floor"):
                setattr(table, name, values())
            table.f_base_end = xp.asarray(f0, copy=True)
        return table


    def _start(self, table, reached=None):
        """New attempts from each row's ``t_a`` with length ``h_abs``.

        Returns the same rows and ``alive`` (K,): False where the length fell
        below the spacing of numbers at ``t_a`` (those instances have failed)
        and for the rows ``reached`` (at ``tf`` already: nothing to start).
        """
        xp, basis = self.xp, self.basis
        remaining = xp.abs(self.tf - table.t_a)
        h_abs = xp.minimum(xp.minimum(table.h_abs, self.max_step), remaining)
        toward = xp.full_like(table.t_a, self.direction * math.inf)
        min_step = 10 * xp.abs(xp.nextafter(table.t_a, toward) - table.t_a)
        # (a NaN length fails too: never loop on it.)  A span of a few ulp
        # is tried whole, once; after a rejection there it fails.
        whole = (remaining <= min_step) & ~table.rejected_here & (remaining > 0)
        h_abs = xp.where(whole, remaining, h_abs)
        alive = h_abs >= min_step
        alive = alive | whole
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
            h_abs = xp.where(alive, h_abs, abs(self.tf - self.t0))
        stretch = (STRETCH * h_abs >= remaining) & (remaining <= self.max_step)
        table.h_abs = h_abs
        table.t_b = xp.where((h_abs >= remaining) | stretch, self.tf,
                             table.t_a + self.direction * h_abs)
        h = table.t_b - table.t_a
        half_h = self._half_h(table)
        x = euler_start(basis, table.f_a, half_h, xp=xp)
        for has, coeffs, length, tau_start in (
                (xp.isfinite(table.prev_h), table.prev_coeffs, table.prev_h, 1.0),
                (xp.isfinite(table.att_h), table.att_coeffs, table.att_h, -1.0)):
            has = has & alive & (h != 0)
            if bool(xp.any(has)):
                x[has] = extrapolated_guess(basis, coeffs[has], length[has], h[has],
                                            table.f_a[has], xp=xp, tau_start=tau_start)
        table.x = x
        # Every attempt starts with the zero-order iteration: unlike a single
        # solve's, a batch's cost is work, and a Newton step costs as much as
        # tens of zero-order steps.
        table.phase = xp.zeros_like(table.phase) + PICARD
        table.n_iter = xp.zeros_like(table.n_iter)
        table.prev_change = xp.full_like(table.prev_change, math.nan)
        return table, alive

    def _round(self, state):
        """One evaluation round and one iteration step of every active instance."""
        xp, basis = self.xp, self.basis
        state.depth = state.depth + 1
        k, n_comp, m = len(state), state.y_a.shape[1], basis.n_nodes
        state.half_h = self._half_h(state)
        state.y_nodes = node_values(basis, state.y_a, state.f_a, state.half_h, state.x, xp=xp)
        t_nodes = xp.reshape(self._node_times(state.t_a, state.t_b), (k * m,))
        flat_y = xp.reshape(xp.permute_dims(state.y_nodes, (1, 0, 2)), (n_comp, k * m))
        instances = xp.reshape(xp.broadcast_to(state.ids[:, None], (k, m)), (k * m,))
        needs_jac = state.phase != PICARD
        jac_points = xp.reshape(xp.broadcast_to(needs_jac[:, None], (k, m)), (k * m,))
        f, jac = self.evaluator.evaluate_some_jacobians(t_nodes, flat_y, jac_points,
                                                        instances=instances)
        state.f_nodes = xp.permute_dims(xp.reshape(f, (n_comp, k, m)), (1, 0, 2))
        state.finite = xp.all(xp.isfinite(state.f_nodes), axis=(1, 2))

        newton = None
        if jac is not None:
            newton = state.select(needs_jac)
            newton.row = xp.nonzero(needs_jac)[0]
        # The zero-order step runs on every row (cheap); the rows in a Newton
        # phase (usually few) then overwrite theirs in place.
        table = self._picard(state, counted=None if jac is None else ~needs_jac)
        if newton is not None:
            newton.jac = xp.reshape(jac, (len(newton), m, n_comp, n_comp))
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
            done = _Table.concat(parts, xp, names + ("row",))
            # (every Newton row is in exactly one part: in row order, they
            # fill the mask's places)
            done = done.select_in_order(xp.argsort(done.row))
            for name in names:
                value = table.fields[name]
                value[needs_jac] = done.fields[name]
        return self._restart_ended_attempts(table)

    def _restart_ended_attempts(self, table):
        """Finished and failed attempts: accept/reject, start anew in their rows.

        The (few) rows whose attempt ended are taken out in order, updated and
        written back in place, so the rows that go on are never copied;
        instances that reached ``tf`` or failed leave the table.
        """
        xp = self.xp
        ended = table.outcome != GOING
        if not bool(xp.any(ended)):
            return _Table(xp, **{name: table.fields[name] for name in self.fields})
        rows = self._end_attempts(table.select(ended))
        rows, alive = self._start(rows, reached=rows.reached)
        for name in self.fields:
            value = table.fields[name]
            value[ended] = rows.fields[name]
        keep = ~ended
        keep[ended] = alive
        table = _Table(xp, **{name: table.fields[name] for name in self.fields})
        if bool(xp.all(keep)):
            return table
        return table.select(keep) if bool(xp.any(keep)) else None

    # -- the phases --------------------------------------------------------
    def _split_nonfinite(self, table):
        xp = self.xp
        usable = table.finite & table.jac_finite
        bad = table.select(~usable)
        bad.fail_what = xp.where(bad.finite, NONFINITE_JAC, NONFINITE)
        return table.select(usable), bad

    def _picard(self, table, counted=None):
        """Zero-order step of every row; ``outcome`` says which rows finished or failed.

        ``counted``: the rows whose step counts as an iteration (default all).
        """
        xp, basis = self.xp, self.basis
        counted = table.finite if counted is None else table.finite & counted
        self.counters.niter_picard += int(xp.sum(xp.astype(counted, xp.int64)))
        x_new, change, size = picard_step(basis, table.y_a, table.f_a, table.half_h, table.x,
                                          table.y_nodes, table.f_nodes, self.atol, self.rtol,
                                          xp=xp)
        floor = ROUNDING_ULPS * self.eps * size
        table.n_iter = table.n_iter + 1
        ok = table.finite & xp.isfinite(change)
        done = ok & converged(change, table.prev_change, floor, self.options.convergence,
                              xp=xp)
        slow = (table.prev_change > 0) & (change > self.rho_limit * table.prev_change)
        stop = ok & ~done & (slow | (table.n_iter >= self.max_picard))
        table.x = xp.where(ok[:, None, None], x_new, table.x)
        # (a copy: rows of it are overwritten in place, and fun's output may be
        # the caller's array or read-only)
        table.f_end = xp.asarray(table.f_nodes[..., -1], copy=True)
        table.used_newton = xp.zeros_like(done)
        table.prev_change = xp.astype(change, table.prev_change.dtype)
        for name in ("y_nodes", "f_nodes"):  # not needed further
            del table.fields[name]
        outcome = xp.where(done, xp.full_like(table.n_iter, FINISHED), GOING)
        outcome = xp.where(ok, outcome, FAILED)
        table.fail_what = xp.where(ok, table.fail_what,
                                   xp.where(table.finite, DIVERGED, NONFINITE))
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
        k, n_comp, m = r.shape
        n = n_comp * basis.n_free
        itemsize = 8  # the linear algebra runs in float64
        per_instance = itemsize * (2 * n_comp * m * n + 3 * n * n)
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
        scale = self._scale(table.y_a, table.y_nodes[..., -1])
        change = scaled_rms(xp.matmul(direction, basis.phi_tilde), scale, xp=xp)
        floor = rounding_floors(table.y_a, table.y_nodes, scale, self.eps, xp=xp)
        size = residual_size(table.y_a, table.f_a, table.half_h, xp=xp)
        slope = directional_slope(grad, direction, size, xp=xp)
        finite = xp.isfinite(change)
        flat = finite & ((change <= floor) | ~(slope < 0))
        # Nothing left to gain above rounding (a direction that is not
        # downhill only happens there, through rounding in H or ∇e).
        small = flat & (change <= xp.maximum(floor, xp.full_like(floor, opts.convergence)))
        finished = table.select(small)
        finished.x = finished.x + direction[small]
        failed = [nonfinite]
        for mask, why in ((~finite, DIVERGED), (flat & ~small, STALLED)):
            bad = table.select(mask)
            bad.fail_what = xp.full_like(bad.fail_what, why)
            failed.append(bad)
        trying = ~flat & finite
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
        usable = table.finite & table.jac_finite
        size = residual_size(table.y_a, table.f_a, table.half_h, xp=xp)
        value = xp.where(usable, objective(basis, r, size, xp=xp), xp.inf)
        accept = usable & (value <= table.value + ARMIJO * table.alpha * table.slope)
        failed = []
        # Accepted: converged, out of iterations, or the next direction.
        moved = table.select(accept)
        step = moved.change * moved.alpha
        done = converged(step, moved.prev_change, moved.floor, opts.convergence, xp=xp)
        moved.prev_change = step
        finished = [moved.select(done)]
        moved = moved.select(~done)
        out = moved.n_iter >= opts.max_newton
        tired = moved.select(out)
        tired.fail_what = xp.full_like(tired.fail_what, NO_CONVERGENCE)
        failed.append(tired)
        going, finished_next, failed_next = self._newton_start(moved.select(~out))
        going = [going]
        finished.append(finished_next)
        failed.append(failed_next)
        # Rejected: backtrack by quadratic interpolation, within [0.1, 0.5] α.
        back = table.select(~accept)
        tried = xp.where(xp.isfinite(value[~accept]), value[~accept], xp.inf)
        alpha = back.alpha
        curvature = tried - back.value - back.slope * alpha
        usable = xp.isfinite(curvature) & (curvature > 0)
        guess = -back.slope * alpha * alpha / (2 * xp.where(usable, curvature, 1.0))
        guess = xp.where(usable, guess, 0.5 * alpha)
        back.alpha = xp.clip(guess, 0.1 * alpha, 0.5 * alpha)
        give_up = back.alpha < MIN_ALPHA
        close = give_up & (back.change <= opts.convergence)
        stay = back.select(close)  # converged enough at the base point
        stay.x = stay.x_base
        stay.f_end = stay.f_base_end
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
        return _Table.concat(tables, self.xp,
                             self.fields + ("half_h", "f_end", "used_newton", "row"))

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
        scale = self._scale(table.y_a, y_end)
        err = xp.astype(error_estimates(coeffs, scale, xp=xp), xp.float64)
        predicted = xp.astype(decay_error_estimates(coeffs, scale, xp=xp), xp.float64)
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
        if n_accepted:
            # (copies: the table's arrays are updated in place later)
            self.segments.append(tuple(value[accepted] for value in (
                table.ids, table.t_a, table.t_b, coeffs, table.y_a, y_end)))
        # Rejected on the error, or failed: the next start from this polynomial
        # (not after non-finite values), shorter, the failure remembered.
        table.fail_what = xp.where(too_large, ERROR, table.fail_what)
        starts_here = ~accepted & (table.fail_what != NONFINITE) & (
            table.fail_what != NONFINITE_JAC) & (table.fail_what != DIVERGED)
        table.att_coeffs = xp.where(starts_here[:, None, None], coeffs, table.att_coeffs)
        table.att_h = xp.where(starts_here, h, xp.nan)
        table.fail_ta = xp.where(accepted, table.fail_ta, table.t_a)
        table.fail_tb = xp.where(accepted, table.fail_tb, table.t_b)
        shrink = xp.where(too_large, xp.minimum(factor, SAFETY_REJECT), 0.5)
        grow = xp.where(table.rejected_here, xp.minimum(factor, 1.0), factor)
        table.h_abs = table.h_abs * xp.where(accepted, grow, shrink)
        table.rejected_here = ~accepted
        table.nsegments = table.nsegments + xp.astype(accepted, table.nsegments.dtype)
        table.nrejected = table.nrejected + xp.astype(~accepted, table.nrejected.dtype)
        # Accepted: the next segment starts at this one's end.
        table.prev_coeffs = xp.where(accepted[:, None, None], coeffs, table.prev_coeffs)
        table.prev_h = xp.where(accepted, h, table.prev_h)
        table.t_a = xp.where(accepted, table.t_b, table.t_a)
        table.y_a = xp.where(accepted[:, None], y_end, table.y_a)
        table.f_a = xp.where(accepted[:, None], table.f_end, table.f_a)
        table.reached = accepted & (table.t_a == self.tf)
        if bool(xp.any(table.reached)):
            self._end(table.select(table.reached), 0)
        return table

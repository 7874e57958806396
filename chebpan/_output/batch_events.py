"""A batch's events: scipy's semantics instance by instance, detected round by round.

:class:`BatchEvents` does for the K instances of
:class:`~chebpan._control.batch.BatchLoop` what
:class:`~chebpan._output.events.EventTracker` does for a single solve, with the same
pieces (:mod:`chebpan._output.events`): each event is evaluated at all nodes of every
segment accepted in a round, the segments of all instances side by side, in one call
(with ``vectorized=True``; ``batch_args`` laid out per point as ``fun`` gets them),
every sign change between consecutive nodes of a segment is a bracket, and each root
(rare: a Python loop over them) is found by ``brentq`` on the segment's polynomial.

A terminal event ends its instance only: its last segment is cut at the event (its
polynomial restricted to ``[t_a, t_event]``, or dropped when the event sits on the
previous segment's end), so the record (:mod:`chebpan._output.batch_record`) and
the output end there.  NumPy only (:func:`~chebpan._frontend.prologue.check_numpy_only`).
"""

from __future__ import annotations

import numpy as np

from .._core.basis import chebyshev_values, restrict
from .._rhs.evaluator import gather_point_args, instance_args
from .dense import segment_values
from .events import crossing_mask, event_values, locate_root, record_roots, scipy_results

__all__ = ["BatchEvents"]


class BatchEvents:
    """Per-instance event state of a batched solve.

    Parameters
    ----------
    events : list of callables
        ``event(t, y, *batch_args)`` (``args`` already bound, by
        :func:`~chebpan._output.events.prepare_events`), returning a float, or
        with ``vectorized`` an array (P,) for ``t`` (P,), ``y`` (n, P).
    max_events, direction : arrays, shape (n_events,)
        From :func:`~chebpan._output.events.prepare_events`.
    t0 : float or ndarray, shape (K,)
        The instances' starts (a shared span, or one per instance).
    y0 : ndarray, shape (K, n)
    batch_args : tuple of ndarrays
        Per-instance arguments, each with K rows (may be empty).
    tau : ndarray, shape (M,)
        The nodes of the batch's basis on [-1, 1].
    n_coeffs : int
    vectorized : bool
        Try one call over all points; a result not of shape (P,) falls back to
        point-wise calls ``event(t, y (n,), *rows of batch_args)``.
    """

    def __init__(self, events, max_events, direction, t0, y0, batch_args, *, tau, n_coeffs,
                 vectorized):
        self.events = events
        self.max_events = max_events
        self.direction = direction
        self.batch_args = tuple(batch_args)
        self.vectorized = vectorized
        k, self.n = y0.shape
        self.n_instances = k
        #: (N, M): T_n at the nodes, for the node values of a segment from its coefficients.
        self.at_nodes, _ = chebyshev_values(n_coeffs, np.asarray(tau, dtype=np.float64), xp=np)
        #: (K, n_events) the event values at each instance's current segment start.
        self.g = np.zeros((k, len(events)))
        #: (K,) whether an instance's next segment is its first (a zero at t0 counts).
        self.at_start = np.ones(k, dtype=bool)
        #: (K, n_events) events found so far.
        self.count = np.zeros((k, len(events)))
        #: instance → (t_events, y_events), lists over events of lists (instances with events).
        self.logs = {}
        if k:
            ids = np.arange(k)
            t_start = np.broadcast_to(np.asarray(t0, dtype=np.float64), (k,))
            for i, event in enumerate(events):
                self.g[:, i] = self._values(event, t_start, y0.T, ids)

    def _values(self, event, t, y, instances):
        """Event values at the points ``t`` (P,), ``y`` (n, P) of the ``instances`` (P,)."""
        args = (gather_point_args(self.batch_args, instances, xp=np)
                if self.vectorized else ())
        return event_values(event, t, y, vectorized=self.vectorized, args=args,
                            args_at=lambda p: instance_args(self.batch_args, int(instances[p])))

    def process(self, segments, t_nodes, accepted):
        """Look for events on the segments accepted in one round.

        Parameters
        ----------
        segments : tuple of ndarrays
            ``(ids, t_a, t_b, coeffs, y_start, y_end)`` of the A accepted segments
            (shapes (A,), (A,), (A,), (A, n, N), (A, n), (A, n)), as the record takes them.
        t_nodes : ndarray, shape (A, M)
            Their node times, the last exactly ``t_b``.
        accepted : ndarray of bool
            The rows of the loop's table that these segments come from.

        Returns
        -------
        segments : tuple of ndarrays
            What to record: those of instances stopped by a terminal event cut
            at the event (or left out when it sits on their start).
        terminal : ndarray of bool, shaped like ``accepted``, or None
            The table's rows whose instance a terminal event has stopped (None
            when none has).
        """
        ids, t_a, t_b, coeffs, y_start, y_end = segments
        n_segments, m = t_nodes.shape
        # Node values from the polynomials, the ends exact (as the record keeps them).
        y_nodes = np.matmul(coeffs, self.at_nodes.astype(coeffs.dtype))
        y_nodes[..., 0], y_nodes[..., -1] = y_start, y_end
        # The nodes right of each start (whose values are known), segment by segment.
        t_points = np.reshape(t_nodes[:, 1:], (-1,))
        y_points = np.reshape(np.moveaxis(y_nodes[..., 1:], 1, 0), (self.n, -1))
        instances = np.repeat(ids, m - 1)
        at_start = self.at_start[ids]
        found = {}  # row → [(t_root, event index)]
        for i, event in enumerate(self.events):
            values = self._values(event, t_points, y_points, instances)
            values = np.concatenate([self.g[ids, i][:, None],
                                     np.reshape(values, (n_segments, m - 1))], axis=1)
            self.g[ids, i] = values[:, -1]
            mask = crossing_mask(values[:, :-1], values[:, 1:], self.direction[i], at_start)
            for row, j in zip(*np.nonzero(mask)):
                evaluate = _polynomial(segments, row)
                args = instance_args(self.batch_args, int(ids[row]))
                root = locate_root(
                    lambda t, event=event, evaluate=evaluate, args=args:
                        event(t, evaluate(t), *args),
                    t_nodes[row, j], t_nodes[row, j + 1], values[row, j], values[row, j + 1],
                    bool(at_start[row]) and j == 0)
                found.setdefault(int(row), []).append((root, i))
        self.at_start[ids] = False
        stops = {}
        for row, roots in found.items():
            t_events, y_events = self._log(int(ids[row]))
            t_stop = record_roots(roots, self.count[int(ids[row])], self.max_events, t_events,
                                  y_events, _polynomial(segments, row),
                                  forward=t_b[row] >= t_a[row])
            if t_stop is not None:
                stops[row] = t_stop
        if not stops:
            return segments, None
        terminal = np.zeros_like(accepted)
        terminal[np.flatnonzero(accepted)[sorted(stops)]] = True
        return _cut(segments, stops, at_start), terminal

    def _log(self, k):
        if k not in self.logs:
            self.logs[k] = ([[] for _ in self.events], [[] for _ in self.events])
        return self.logs[k]

    def results(self):
        """``t_events``, ``y_events``: K entries, each scipy's lists for that instance."""
        none = ([[] for _ in self.events], [[] for _ in self.events])
        t_events, y_events = [], []
        for k in range(self.n_instances):
            t_k, y_k = scipy_results(*self.logs.get(k, none))
            t_events.append(t_k)
            y_events.append(y_k)
        return t_events, y_events


def _polynomial(segments, row):
    """``evaluate(t) -> y (n,)``: the polynomial of segment ``row`` (its ends exact)."""
    part = tuple(value[row:row + 1] for value in segments[1:])

    def evaluate(t):
        return segment_values(np.asarray([t], dtype=np.float64), *part, xp=np)[0]

    return evaluate


def _cut(segments, stops, at_start):
    """The segments with those of the rows ``stops`` (row → t_stop) ended at ``t_stop``.

    As a single solve does (:class:`chebpan._control.single.SegmentLoop`): an event at
    the segment's start ends the instance there, a constant segment ``[t0, t0]`` on its
    first segment and none otherwise (the previous one ends there already).
    """
    ids, t_a, t_b, coeffs, y_start, y_end = segments
    t_b, coeffs, y_end = np.array(t_b), np.array(coeffs), np.array(y_end)
    keep = np.ones(ids.shape, dtype=bool)
    for row, t_stop in stops.items():
        if t_stop == t_a[row]:
            if not at_start[row]:
                keep[row] = False
                continue
            coeffs[row] = 0
            coeffs[row, :, 0] = y_start[row]
            y_end[row] = y_start[row]
        elif t_stop != t_b[row]:
            y_end[row] = _polynomial(segments, row)(t_stop)
            coeffs[row] = restrict(coeffs[row], (t_stop - t_a[row]) / (t_b[row] - t_a[row]),
                                   xp=np)
        t_b[row] = t_stop
    segments = (ids, t_a, t_b, coeffs, y_start, y_end)
    return segments if np.all(keep) else tuple(value[keep] for value in segments)

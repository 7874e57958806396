"""What a batched solve keeps of its accepted segments: only what the output needs.

A batch of K instances accepts segments round by round.  Which of their data the
result needs depends on what was asked for:

- :class:`SegmentRecord` (``dense_output=True``): every segment's polynomial, for
  :class:`chebpan.BatchOdeSolution`;
- :class:`EndRecord` (no ``t_eval``): the segment ends ``t_b`` and ``y(t_b)``, the
  output itself;
- :class:`TevalRecord` (``t_eval`` without dense output): the values at the
  ``t_eval`` points inside each segment, computed when it is accepted; nothing else
  is kept.  :class:`RowTevalRecord` does the same with times and spans of each
  instance's own (a per-instance ``t_span`` or a ``t_eval`` of shape (K, P)).

Each ``accept`` receives the accepted segments of one round: ``ids`` (A,),
``t_a``, ``t_b`` (A,) float64, ``coeffs`` (A, n, N), ``y_start``, ``y_end`` (A, n).
"""

from __future__ import annotations

import math

from .dense import segment_values
from .row_search import RowSearch

__all__ = ["SegmentRecord", "EndRecord", "TevalRecord", "RowTevalRecord", "make_record"]


class SegmentRecord:
    """Every accepted segment, whole."""

    keeps_polynomials = True

    def __init__(self):
        self.parts = []

    def accept(self, ids, t_a, t_b, coeffs, y_start, y_end):
        self.parts.append((ids, t_a, t_b, coeffs, y_start, y_end))

    def ends(self):
        """``(ids, t_b, y_end)`` of each recorded round."""
        return [(part[0], part[2], part[5]) for part in self.parts]


class EndRecord:
    """The accepted segments' ends only: ``(ids, t_b, y_end)``."""

    keeps_polynomials = False

    def __init__(self):
        self.parts = []

    def accept(self, ids, t_a, t_b, coeffs, y_start, y_end):
        self.parts.append((ids, t_b, y_end))

    def ends(self):
        """``(ids, t_b, y_end)`` of each recorded round."""
        return self.parts


class TevalRecord:
    """The values at ``t_eval`` inside each accepted segment, nothing else.

    A point belongs to the segment ``(t_a, t_b]`` (in the direction of time)
    that contains it, and ``t0`` to the first one: at a boundary the earlier
    segment, as :class:`chebpan.BatchOdeSolution` does.  ``finish`` gathers
    the values into (K, n, T), NaN where an instance never got.
    """

    keeps_polynomials = False

    def __init__(self, t_eval, t0, direction, *, xp, device):
        self.xp = xp
        self.t = xp.asarray(t_eval, dtype=xp.float64, device=device)
        #: ``t_eval`` in the direction of time: ascending.
        self.ascending = direction * self.t
        self.t0 = t0
        self.direction = direction
        self.parts = []

    def accept(self, ids, t_a, t_b, coeffs, y_start, y_end):
        xp = self.xp
        n_times = self.t.shape[-1]
        if n_times == 0 or ids.shape[0] == 0:
            return
        first, last = self._points(ids, t_a, t_b)
        counts = last - first
        total = int(xp.sum(counts))
        if total == 0:
            return
        rows = xp.repeat(xp.arange(ids.shape[0], device=ids.device), counts)
        offsets = xp.cumulative_sum(counts) - counts
        points = xp.take(first, rows) + (xp.arange(total, device=ids.device)
                                        - xp.take(offsets, rows))
        owners = xp.take(ids, rows)
        values = segment_values(self._times(owners, points), xp.take(t_a, rows),
                                xp.take(t_b, rows), xp.take(coeffs, rows, axis=0),
                                xp.take(y_start, rows, axis=0), xp.take(y_end, rows, axis=0),
                                xp=xp)
        self.parts.append((owners * n_times + points, values))

    def _points(self, ids, t_a, t_b):
        """``first``, ``last`` (A,): the points of each segment are ``first:last``."""
        xp = self.xp
        first = xp.searchsorted(self.ascending, self.direction * t_a, side="right")
        from_t0 = xp.searchsorted(self.ascending, self.direction * t_a, side="left")
        first = xp.where(t_a == self.t0, from_t0, first)
        last = xp.searchsorted(self.ascending, self.direction * t_b, side="right")
        return first, last

    def _times(self, owners, points):
        """The times of the points ``points`` of the instances ``owners``."""
        return self.xp.take(self.t, points)

    def finish(self, k, n, dtype):
        """The values at ``t_eval``: (K, n, T), NaN where an instance did not get."""
        xp = self.xp
        n_times = self.t.shape[-1]
        device = self.t.device
        if not self.parts or k == 0 or n_times == 0:
            return xp.full((k, n, n_times), math.nan, dtype=dtype, device=device)
        where = xp.concat([part[0] for part in self.parts])
        values = xp.concat([part[1] for part in self.parts])
        order = xp.argsort(where)
        where, values = xp.take(where, order), xp.take(values, order, axis=0)
        # Gather (no scatter, which the array API lacks): each output slot
        # looks itself up among the recorded ones.
        slots = xp.arange(k * n_times, dtype=where.dtype, device=device)
        found = xp.searchsorted(where, slots)
        found = xp.minimum(found, where.shape[0] - 1)
        present = xp.take(where, found) == slots
        out = xp.where(present[:, None], xp.take(values, found, axis=0), math.nan)
        return xp.permute_dims(xp.reshape(out, (k, n_times, n)), (0, 2, 1))


class RowTevalRecord(TevalRecord):
    """:class:`TevalRecord` with each instance's own times, ``t0`` and direction.

    ``t_eval`` is (K, T), or (T,) shared by all rows; ``t0`` and ``direction`` are
    arrays (K,).  Each row is sorted in its instance's direction, so in the
    direction of time (``direction * t``) every row ascends, and one
    :class:`~chebpan._output.row_search.RowSearch` finds the points of a round's
    segments in their own rows.
    """

    def __init__(self, t_eval, t0, direction, *, xp, device):
        self.xp = xp
        t = xp.asarray(t_eval, dtype=xp.float64, device=device)
        k = t0.shape[0]
        #: (K, T) the times of each instance.
        self.t = xp.broadcast_to(t, (k, t.shape[-1])) if t.ndim == 1 else t
        self.flat = xp.reshape(self.t, (-1,))
        self.t0 = t0
        self.direction = direction
        self.search = RowSearch(direction[:, None] * self.t, xp=xp)
        self.parts = []

    def _points(self, ids, t_a, t_b):
        xp = self.xp
        direction = xp.take(self.direction, ids)
        start, end = direction * t_a, direction * t_b
        first = self.search.count(ids, start, inclusive=True)
        from_t0 = self.search.count(ids, start, inclusive=False)
        first = xp.where(t_a == xp.take(self.t0, ids), from_t0, first)
        return first, self.search.count(ids, end, inclusive=True)

    def _times(self, owners, points):
        return self.xp.take(self.flat, owners * self.t.shape[-1] + points)


def make_record(t_eval, dense_output, spans, *, xp, device):
    """The record a batched solve needs for ``t_eval`` and ``dense_output``.

    ``spans`` (:class:`chebpan._control.spans.Spans`) holds ``t0`` and the direction:
    floats for a shared span, arrays (K,) for a span per instance.
    """
    if dense_output:
        return SegmentRecord()
    if t_eval is None:
        return EndRecord()
    if spans.shared and t_eval.ndim == 1:
        return TevalRecord(t_eval, spans.t0, spans.direction, xp=xp, device=device)
    return RowTevalRecord(t_eval, spans.t0, spans.direction, xp=xp, device=device)

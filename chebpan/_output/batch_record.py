"""What a batched solve keeps of its accepted segments: only what the output needs.

A batch of K instances accepts segments round by round.  Which of their data the
result needs depends on what was asked for:

- :class:`SegmentRecord` (``dense_output=True``): every segment's polynomial, for
  :class:`chebpan.BatchOdeSolution`;
- :class:`EndRecord` (no ``t_eval``): the segment ends ``t_b`` and ``y(t_b)``, the
  output itself;
- :class:`TevalRecord` (``t_eval`` without dense output): the values at the
  ``t_eval`` points inside each segment, computed when it is accepted; nothing else
  is kept.

Each ``accept`` receives the accepted segments of one round: ``ids`` (A,),
``t_a``, ``t_b`` (A,) float64, ``coeffs`` (A, n, N), ``y_start``, ``y_end`` (A, n).
"""

from __future__ import annotations

import math

from .dense import segment_values

__all__ = ["SegmentRecord", "EndRecord", "TevalRecord", "make_record"]


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
        n_times = self.t.shape[0]
        if n_times == 0 or ids.shape[0] == 0:
            return
        first = xp.searchsorted(self.ascending, self.direction * t_a, side="right")
        from_t0 = xp.searchsorted(self.ascending, self.direction * t_a, side="left")
        first = xp.where(t_a == self.t0, from_t0, first)
        last = xp.searchsorted(self.ascending, self.direction * t_b, side="right")
        counts = last - first
        total = int(xp.sum(counts))
        if total == 0:
            return
        rows = xp.repeat(xp.arange(ids.shape[0], device=ids.device), counts)
        offsets = xp.cumulative_sum(counts) - counts
        points = xp.take(first, rows) + (xp.arange(total, device=ids.device)
                                        - xp.take(offsets, rows))
        values = segment_values(xp.take(self.t, points), xp.take(t_a, rows),
                                xp.take(t_b, rows), xp.take(coeffs, rows, axis=0),
                                xp.take(y_start, rows, axis=0), xp.take(y_end, rows, axis=0),
                                xp=xp)
        self.parts.append((xp.take(ids, rows) * n_times + points, values))

    def finish(self, k, n, dtype):
        """The values at ``t_eval``: (K, n, T), NaN where an instance did not get."""
        xp = self.xp
        n_times = self.t.shape[0]
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


def make_record(t_eval, dense_output, t0, direction, *, xp, device):
    """The record a batched solve needs for ``t_eval`` and ``dense_output``."""
    if dense_output:
        return SegmentRecord()
    if t_eval is None:
        return EndRecord()
    return TevalRecord(t_eval, t0, direction, xp=xp, device=device)

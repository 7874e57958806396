"""The intervals of a batch's instances: one shared ``(t0, tf)``, or one per instance.

:class:`Spans` holds ``t0``, ``tf`` and the direction of time either as floats (a span
shared by every instance, the common case: the loop's formulas then cost what they
did before spans could differ) or as float64 arrays (K,) indexed by instance id.
:meth:`Spans.of` gives the spans of some rows of the table in the same form, so the
loop writes each formula once for both.
"""

from __future__ import annotations

__all__ = ["Spans"]


class Spans:
    """``t0``, ``tf`` and ``direction`` (+1 or -1): floats, or arrays (K,) by instance.

    Parameters
    ----------
    t0, tf : float or array, shape (K,)
        Floats for a span shared by all instances; arrays (any library) for one
        span per instance, stored as float64 arrays of ``xp`` on ``device``.
    xp : namespace
    device : device
    """

    def __init__(self, t0, tf, *, xp, device):
        self.xp = xp
        self.shared = isinstance(t0, float) and isinstance(tf, float)
        if self.shared:
            self.t0, self.tf = float(t0), float(tf)
            self.direction = 1.0 if tf >= t0 else -1.0
        else:
            self.t0 = xp.asarray(t0, dtype=xp.float64, device=device)
            self.tf = xp.asarray(tf, dtype=xp.float64, device=device)
            self.direction = xp.where(self.tf >= self.t0, xp.ones_like(self.t0),
                                      -xp.ones_like(self.t0))

    def of(self, ids):
        """The spans of the instances ``ids`` (k,): ``self`` when shared, else arrays (k,)."""
        if self.shared:
            return self
        xp = self.xp
        rows = Spans.__new__(Spans)
        rows.xp, rows.shared = xp, False
        rows.t0, rows.tf, rows.direction = (xp.take(value, ids) for value in (
            self.t0, self.tf, self.direction))
        return rows

    def starts(self, ids):
        """A new float64 array (k,) of the instances' ``t0``."""
        xp = self.xp
        if self.shared:
            return xp.full(ids.shape, self.t0, dtype=xp.float64, device=ids.device)
        return xp.take(self.t0, ids)

    def ends(self, ids):
        """A new float64 array (k,) of the instances' ``tf``."""
        xp = self.xp
        if self.shared:
            return xp.full(ids.shape, self.tf, dtype=xp.float64, device=ids.device)
        return xp.take(self.tf, ids)

"""``searchsorted`` within each row of a (K, P) array, in one call.

The array API's ``searchsorted`` searches one sorted 1-D array.  :class:`RowSearch`
turns K ascending rows into one: each value is replaced by its rank among all K·P
values, and row ``r``'s ranks are offset by ``r (K·P + 1)``, so the keys of all rows
ascend together and never overlap.  A query in row ``r`` is then its value's rank plus
the same offset: one search over the values, one over the keys, for any number of
queries.
"""

from __future__ import annotations

__all__ = ["RowSearch"]


class RowSearch:
    """Counts of the values of a row at most (or below) a query value, row by row.

    Parameters
    ----------
    rows : array, shape (K, P)
        Each row ascending (ties allowed).
    xp : namespace
    """

    def __init__(self, rows, *, xp):
        self.xp = xp
        k, self.width = rows.shape
        self.values = xp.sort(xp.reshape(rows, (-1,)))
        self.stride = k * self.width + 1
        ranks = xp.searchsorted(self.values, rows, side="left")
        offsets = xp.arange(k, dtype=ranks.dtype, device=rows.device)[:, None] * self.stride
        #: One ascending array: row r's keys lie in [r·stride, r·stride + K·P).
        self.keys = xp.reshape(ranks + offsets, (-1,))

    def count(self, rows, values, *, inclusive):
        """How many values of row ``rows[i]`` are ``<= values[i]`` (``inclusive``) or
        ``< values[i]``: an integer array shaped like ``rows`` and ``values``.

        A value v of a row is ``<=`` a query q exactly when v's rank (the number of
        values below v) is below the number of values ``<=`` q, and ``<`` q exactly
        when it is below the number of values ``<`` q.
        """
        xp = self.xp
        side = "right" if inclusive else "left"
        rank = xp.searchsorted(self.values, values, side=side)
        base = xp.astype(rows, rank.dtype) * self.stride
        at = xp.searchsorted(self.keys, base + rank, side="left")
        return at - xp.astype(rows, at.dtype) * self.width

"""The state of a batched solve: a table of arrays with one row per active instance.

:class:`Table` holds the per-instance state of :class:`chebpan._control.batch.BatchLoop`
(its fields: :data:`STATE_FIELDS`, :data:`NEWTON_FIELDS`), the codes of a row's phase,
of the outcome of its iteration step and of its failure, and :class:`Ended`, the record
of instances that left the table (read by :func:`chebpan._output.batch_result.batch_result`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import array_api_compat

from .._output.result import Failure

__all__ = ["Table", "Ended", "STATE_FIELDS", "NEWTON_FIELDS", "OUTCOME_FIELDS",
           "instances_per_chunk"]

#: The phase of a row's iteration.
PICARD, NEWTON_START, NEWTON_TRIAL = 0, 1, 2
#: What a row's iteration step led to, and the fields that say how.
GOING, FINISHED, FAILED = 0, 1, 2
OUTCOME_FIELDS = ("outcome", "half_h", "f_end", "used_newton")
#: The failure codes (:class:`~chebpan._output.result.Failure`) as plain integers,
#: the way rows of the table store them.
(NONFINITE, NO_CONVERGENCE, STALLED, LINE_SEARCH, ERROR, NONFINITE_JAC, DIVERGED,
 SINGULARITY) = (int(failure) for failure in Failure)


#: The per-instance state carried from round to round (``y_nodes``, ``t_nodes``: the
#: points of the iterate ``x``, where the next round evaluates ``fun``) ...
STATE_FIELDS = (
    "ids", "t_a", "t_b", "h_abs", "y_a", "f_a", "x", "y_nodes", "t_nodes", "phase", "n_iter",
    "prev_change", "prev_coeffs", "prev_h", "att_coeffs", "att_h", "rejected_here",
    "fail_what", "fail_ta", "fail_tb", "nsegments", "nrejected", "depth",
)
#: ... and that of the line search, when Newton steps are possible (``end_jac``: J at
#: the end of the row's last attempt that converged with Newton steps, NaN otherwise).
NEWTON_FIELDS = ("x_base", "direction", "value", "slope", "alpha", "change", "floor",
                 "f_base_end", "newton_next", "n_damped", "before_change", "prev_full",
                 "end_jac")


class Table:
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
        index = xp.nonzero(mask)[0]  # (its length is the count: one pass over the mask)
        count = index.shape[0]
        if count == mask.shape[0]:
            return Table(xp, **self.fields)
        if count == 0:
            return Table(xp, **{name: value[:0, ...] for name, value in self.fields.items()})
        return Table(xp, **{name: xp.take(value, index, axis=0)
                             for name, value in self.fields.items()})

    def write_rows(self, mask, rows, names):
        """Write ``rows``' fields ``names`` in place into this table's rows where ``mask``
        (bools, one per row) holds, in order.

        NumPy and CuPy index the assignment by the rows' positions, found once (NumPy
        walks a boolean mask again for every field: K = 10 000 Lorenz IVPs took 5 % longer
        so); other namespaces by the mask (the array API's indexed assignment)."""
        xp = self.xp
        where = xp.nonzero(mask)[0] if _positions_assign(xp) else mask
        for name in names:
            self.fields[name][where] = rows.fields[name]

    def select_in_order(self, index):
        """The rows ``index`` (integers), in that order."""
        xp = self.xp
        return Table(xp, **{name: xp.take(value, index, axis=0)
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
            return Table(xp, **{name: tables[0].fields[name] for name in names})
        return Table(xp, **{name: xp.concat([table.fields[name] for table in tables])
                             for name in names})


def _positions_assign(xp):
    """Whether ``xp``'s arrays take an assignment indexed by an integer array."""
    return array_api_compat.is_numpy_namespace(xp) or array_api_compat.is_cupy_namespace(xp)


class Ended(NamedTuple):
    """Instances that ended in one round, all with the same ``status``.

    ``ids`` (k,) their indices in the batch; ``messages`` one text each for a
    failure (``status = -1``), None otherwise; ``nsegments``, ``nrejected`` and
    ``depth`` (k,) their counters.
    """

    ids: Any
    status: int
    messages: list[str] | None
    nsegments: Any
    nrejected: Any
    depth: Any


def instances_per_chunk(batch_memory, n, basis, itemsize):
    """How many instances fit in ``batch_memory`` bytes of working memory (at least 1).

    ``itemsize``: bytes per value of the working dtype (``xp.finfo(dtype).bits // 8``).

    Per instance, a round holds its state (the iterate and its points, its
    line-search copies, two polynomials: ``5 n N + n M + M`` values) and the round's
    temporaries (node values, ``f``, their gathers and the copies NumPy makes on the
    way): about ``12 n N + 20 n M + 10 M + 64`` values in all as measured with
    ``bench/batch.py --memory`` (docs/user-guide.md, "Memory") before the table
    carried the iterate's points, plus those ``n M + M``, plus the ``n²`` of the J kept
    for the linearised start; Newton's systems have a budget of their own
    (``newton_memory``).
    """
    values = (12 * n * basis.n_coeffs + 21 * n * basis.n_nodes + 11 * basis.n_nodes + n * n
              + 64)
    return max(1, int(batch_memory) // (itemsize * values))

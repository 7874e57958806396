"""What a Dask batch returns: the fields of a batch result as Dask arrays."""

from __future__ import annotations

import dataclasses

import numpy as np

from .._rhs.counters import Counters
from .result import OdeResult

__all__ = ["DaskBatchResult"]

#: Per-instance counters (the batch result's ``per_instance``).
PER_INSTANCE = ("nsegments", "nrejected", "depth")
#: The result's counters summed over the chunks (order of the chunk task's ``totals``).
TOTALS = tuple(field.name for field in dataclasses.fields(Counters))


class DaskBatchResult(OdeResult):
    """The result of :func:`chebpan.solve_ivp_batch` on Dask arrays: nothing computed yet.

    Fields (Dask arrays, chunked along the instance axis as ``y0`` was):

    - ``y`` (K, n, P): each instance's values at its ``t_eval``, NaN after a failure;
    - ``status`` (K,) int64 and ``message`` (K,) object: each instance's;
    - ``per_instance``: dict of (K,) int64 arrays ``nsegments``, ``nrejected``, ``depth``;
    - ``nfev``, ``njev``, ``nlu``, ``depth``, ``npoints``, ``nsegments``, ``nrejected``,
      ``niter_picard``, ``niter_newton``: 0-d arrays, totals over the chunks;
    - ``success``: 0-d bool array, every instance succeeded;

    and ``t``, the ``t_eval`` given (NumPy or Dask).  ``sol``, ``t_events`` and
    ``y_events`` are None.

    :meth:`compute` runs every chunk once and returns the in-memory result, with the
    fields of an in-process :func:`chebpan.solve_ivp_batch` (``message`` a list).
    A failing instance is a row with status −1 and its message; it does not fail
    the job.
    """

    @classmethod
    def _from_chunks(cls, parts, *, n, n_times, t_eval, dtype, meta, da):
        """Assemble the result from ``(rows, task)`` pairs, one per chunk, in order.

        ``task`` is a Delayed dict of the chunk's fields (``y``, ``status``,
        ``message``, ``totals`` and the per-instance counters); ``meta`` is ``y0``'s
        Dask meta (its array library: the values stay on the chunk's device).
        """
        def column(name, shape, kind, like=None):
            return da.concatenate(
                [da.from_delayed(task[name], shape=(rows, *shape), dtype=kind, meta=like)
                 for rows, task in parts], axis=0) if parts else da.zeros((0, *shape),
                                                                         dtype=kind)

        y = column("y", (n, n_times), dtype,
                   like=None if meta is None else meta.reshape((0, 0, 0)))
        status = column("status", (), np.int64, np.empty((0,), np.int64))
        message = column("message", (), object, np.empty((0,), object))
        per_instance = {name: column(name, (), np.int64, np.empty((0,), np.int64))
                        for name in PER_INSTANCE}
        totals = (da.stack([da.from_delayed(task["totals"], shape=(len(TOTALS),),
                                            dtype=np.int64) for _, task in parts]).sum(axis=0)
                  if parts else da.zeros((len(TOTALS),), dtype=np.int64))
        return cls(t=t_eval, y=y, sol=None, t_events=None, y_events=None, status=status,
                   message=message, success=(status >= 0).all(), per_instance=per_instance,
                   **{name: totals[i] for i, name in enumerate(TOTALS)})

    def compute(self, **kwargs):
        """Run the chunks (once each) and return the in-memory batch result.

        Parameters
        ----------
        **kwargs
            Passed to :func:`dask.compute` (``scheduler=...``, ...).

        Returns
        -------
        OdeResult
            The fields of an in-process :func:`chebpan.solve_ivp_batch` with
            ``t_eval``: ``y`` (K, n, P) on the chunks' array library, ``status``
            (K,), ``message`` a list of K strings, ``success`` a bool, the counters
            ints (totals over the chunks) and ``per_instance`` NumPy arrays (K,).
        """
        import dask

        lazy = {name: value for name, value in self.items()
                if name not in ("sol", "t_events", "y_events", "per_instance")
                and dask.is_dask_collection(value)}
        lazy["per_instance"] = dict(self.per_instance)
        values, = dask.compute(lazy, **kwargs)
        result = dict(self, **values)
        result["message"] = [str(message) for message in result["message"]]
        result["success"] = bool(result["success"])
        for name in TOTALS:
            result[name] = int(result[name])
        return OdeResult(**result)

    def __repr__(self):
        k = self.y.shape[0]
        return (f"DaskBatchResult(K={k}, n={self.y.shape[1]}, chunks={len(self.y.chunks[0])}, "
                "not computed: call .compute())")

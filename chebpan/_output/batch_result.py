"""What a batched solve returns: per-instance dense output and the result object."""

from __future__ import annotations

import math

import array_api_compat
import numpy as np

from .dense import segment_values
from .pickling import PicklableNamespace
from .result import MESSAGES, OdeResult

__all__ = ["BatchOdeSolution", "batch_result"]

#: Elements of the temporaries of one evaluation chunk of
#: :meth:`BatchOdeSolution.__call__` (K × times × segments, K × times × n × N).
_CHUNK_ELEMENTS = 2**22


class BatchOdeSolution(PicklableNamespace):
    """Continuous solutions of a batch of IVPs, each made of its own segments.

    ``sol(t)`` with a scalar ``t`` returns shape (K, n), with a 1-D array of
    k times shape (K, n, k), and with an array (K, k), one row of times per
    instance, shape (K, n, k) too; row ``i`` is instance ``i``'s solution,
    evaluated like :class:`chebpan.OdeSolution` (at a breakpoint the earlier
    segment, outside the instance's segments the nearest one's polynomial:
    extrapolation).  Evaluation is vectorised over instances and times.

    Parameters
    ----------
    offsets : array, shape (K + 1,)
        Instance ``i`` owns segments ``offsets[i] : offsets[i + 1]`` (at
        least one), in time order.
    t_a, t_b : arrays, shape (S,)
        Ends of every segment.
    coeffs : array, shape (S, n, N)
    y_start, y_end : arrays, shape (S, n)
    direction : float or array, shape (K,)
        +1 forward, -1 backward in time: shared, or per instance (a
        per-instance ``t_span``).

    Examples
    --------
    >>> import numpy as np
    >>> import chebpan
    >>> y0 = np.array([[1.0], [2.0], [3.0]])            # K = 3 IVPs y' = -y
    >>> res = chebpan.solve_ivp_batch(lambda t, y: -y, (0, 1), y0, vectorized=True,
    ...                               dense_output=True, rtol=1e-8)
    >>> res.sol(0.5).shape, res.sol([0.25, 0.5]).shape
    ((3, 1), (3, 1, 2))
    >>> bool(np.allclose(res.sol(1.0)[:, 0], y0[:, 0] * np.exp(-1.0), rtol=1e-7))
    True
    """

    _namespace_source = "t_a"

    def __init__(self, offsets, t_a, t_b, coeffs, y_start, y_end, *, direction, xp):
        self.xp = xp
        self.offsets = offsets
        self.t_a, self.t_b = t_a, t_b
        self.coeffs, self.y_start, self.y_end = coeffs, y_start, y_end
        self.direction = direction
        self.counts = offsets[1:] - offsets[:-1]
        self.n_instances = self.counts.shape[0]
        width = int(xp.max(self.counts)) if self.n_instances else 1
        index, valid = _padded_index(offsets, self.counts, width, xp=xp)
        ends = _by_row(direction) * xp.reshape(xp.take(t_b, xp.reshape(index, (-1,))),
                                               index.shape)
        #: (K, S_max) segment ends in the direction of time, +inf past the last.
        self.ends = xp.where(valid, ends, xp.inf)

    def __call__(self, t):
        """Evaluate every instance's solution.

        Parameters
        ----------
        t : float or array_like, shape (k,) or (K, k)
            Times shared by every instance, or one row of times per instance.

        Returns
        -------
        y : array, shape (K, n) or (K, n, k)
        """
        xp = self.xp
        t = xp.asarray(t, dtype=xp.float64, device=self.t_a.device)
        if t.ndim > 2:
            raise TypeError("`t` must be a float, a 1-D array or a 2-D array (K, k).")
        if t.ndim == 2 and t.shape[0] != self.n_instances:
            raise ValueError(
                f"A 2-D `t` holds one row of times per instance: it must have K = "
                f"{self.n_instances} rows, but has shape {tuple(t.shape)}.")
        scalar = t.ndim == 0
        t = xp.reshape(t, (-1,)) if t.ndim < 2 else t
        y = _evaluate_in_chunks(self, t, xp)
        return y[..., 0] if scalar else y

    def _evaluate(self, t):
        """(K, n, T) values at the times ``t``: (T,) for all, or (K, T) per instance."""
        xp = self.xp
        k, n_times = self.n_instances, t.shape[-1]
        times = xp.broadcast_to(t, (k, n_times)) if t.ndim == 1 else t
        segment = xp.sum(xp.astype(
            self.ends[:, None, :] < (_by_row(self.direction) * times)[..., None], xp.int64),
            axis=-1)
        segment = xp.minimum(segment, self.counts[:, None] - 1)
        index = xp.reshape(self.offsets[:-1, None] + segment, (-1,))
        times = xp.reshape(times, (-1,))
        y = segment_values(times, xp.take(self.t_a, index), xp.take(self.t_b, index),
                           xp.take(self.coeffs, index, axis=0),
                           xp.take(self.y_start, index, axis=0),
                           xp.take(self.y_end, index, axis=0), xp=xp)
        return xp.permute_dims(xp.reshape(y, (k, n_times, self.coeffs.shape[1])), (0, 2, 1))


def _evaluate_in_chunks(sol, t, xp):
    """``sol._evaluate`` over chunks of the times (last axis of ``t``) to bound memory."""
    k, n, n_coeffs = sol.n_instances, sol.coeffs.shape[1], sol.coeffs.shape[2]
    per_time = max(1, k * max(sol.ends.shape[1], n * n_coeffs))
    chunk = max(1, _CHUNK_ELEMENTS // per_time)
    n_times = t.shape[-1]
    parts = [sol._evaluate(t[..., start:min(n_times, start + chunk)])
             for start in range(0, n_times, chunk)]
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=-1)


def _by_row(value):
    """A float, or an array (K,) as a column (K, 1) against arrays (K, ...)."""
    return value if isinstance(value, float) else value[:, None]


def _padded_index(offsets, counts, width, *, xp):
    """(K, width) indices of each instance's segments (clamped) and which are real."""
    column = xp.arange(width, dtype=offsets.dtype, device=offsets.device)[None, :]
    valid = column < counts[:, None]
    last = xp.maximum(offsets[1:] - 1, offsets[:-1])[:, None]
    index = xp.minimum(offsets[:-1, None] + column, last)
    return index, valid


def _to_host(x, xp):
    """A small array of metadata (status, counters) as a NumPy array."""
    if array_api_compat.is_numpy_namespace(xp):
        return np.asarray(x)
    if array_api_compat.is_cupy_namespace(xp):
        return x.get()
    return np.asarray([int(v) for v in xp.reshape(x, (-1,))], dtype=np.int64)


def batch_result(loop, t_eval, dense_output):
    """The :class:`~chebpan._output.result.OdeResult` of a finished
    :class:`~chebpan._control.batch.BatchLoop`."""
    xp = loop.xp
    y0 = loop.y0
    k, n = y0.shape
    device = y0.device

    # Per-instance status, messages and counters, in instance order.
    ids = xp.concat([ended.ids for ended in loop.ended])
    order = xp.argsort(ids)
    status = xp.concat([xp.full(ended.ids.shape, ended.status, dtype=xp.int64, device=device)
                        for ended in loop.ended])
    per_instance = {
        name: _to_host(xp.take(xp.concat([getattr(ended, name) for ended in loop.ended]),
                               order), xp)
        for name in ("nsegments", "nrejected", "depth")
    }
    status = _to_host(xp.take(status, order), xp)
    messages = [MESSAGES.get(int(s), "") for s in status]
    for ended in loop.ended:
        if ended.messages is not None:
            for i, message in zip(_to_host(ended.ids, xp), ended.messages):
                messages[int(i)] = message

    record = loop.record
    sol = _dense_solution(loop, record, xp) if record.keeps_polynomials else None
    if t_eval is None:
        t_out, y_out = _segment_ends(loop, record, xp)
    else:
        t_out = t_eval if xp is np else xp.asarray(t_eval, device=device)
        t_query = xp.asarray(t_eval, dtype=xp.float64, device=device)
        if t_query.ndim == 1:
            t_query = t_query[None, :]
        if t_query.shape[-1] == 0 or k == 0:
            y_out = xp.zeros((k, n, t_query.shape[-1]), dtype=y0.dtype, device=device)
        elif sol is None:
            # (filled in as segments were accepted; t0 is y0 even where the
            # first segment failed, as the dense output would say)
            y_out = record.finish(k, n, y0.dtype)
            at_t0 = (t_query == _by_row(loop.t0))[:, None, :]
            y_out = xp.where(at_t0 & xp.isnan(y_out), y0[..., None], y_out)
        else:
            # Each instance up to where it got (no extrapolation), NaN beyond.
            last = xp.take(sol.t_b, sol.offsets[1:] - 1)
            reached = _by_row(loop.direction) * (t_query - last[:, None]) <= 0
            times = xp.where(reached, t_query, last[:, None])
            y_out = xp.where(reached[:, None, :], _evaluate_in_chunks(sol, times, xp), xp.nan)
    counters = loop.counters
    t_events, y_events = (None, None) if loop.events is None else loop.events.results()
    return OdeResult(
        t=t_out, y=y_out, sol=sol if dense_output else None, t_events=t_events,
        y_events=y_events,
        nfev=counters.nfev, njev=counters.njev, nlu=counters.nlu,
        status=status, message=messages, success=bool(np.all(status >= 0)),
        depth=counters.depth, npoints=counters.npoints, nsegments=counters.nsegments,
        nrejected=counters.nrejected, niter_picard=counters.niter_picard,
        niter_newton=counters.niter_newton, per_instance=per_instance,
    )


def _columns(parts, empty, xp):
    """The recorded parts (tuples of arrays, one per round) as one tuple of arrays."""
    if not parts:
        return empty
    return tuple(xp.concat([part[i] for part in parts]) for i in range(len(parts[0])))


def _dense_solution(loop, record, xp):
    """:class:`BatchOdeSolution` of every instance from a :class:`SegmentRecord`.

    Segments are sorted by instance (recorded in time order: a stable sort);
    an instance without a segment gets a constant one at ``t0``.
    """
    y0 = loop.y0
    k, n = y0.shape
    device = y0.device
    times = xp.zeros((0,), dtype=xp.float64, device=device)
    values = xp.zeros((0, n), dtype=y0.dtype, device=device)
    columns = list(_columns(record.parts, (
        xp.zeros((0,), dtype=xp.int64, device=device), times, times,
        xp.zeros((0, n, loop.basis.n_coeffs), dtype=y0.dtype, device=device), values, values),
        xp))
    empty = _counts(columns[0], k, xp) == 0
    n_empty = int(xp.sum(xp.astype(empty, xp.int64)))
    if n_empty:
        constant = xp.zeros((n_empty, n, loop.basis.n_coeffs), dtype=y0.dtype, device=device)
        y_empty = y0[empty]
        constant = xp.concat([y_empty[..., None], constant[..., 1:]], axis=-1)
        t0 = (xp.full((n_empty,), loop.t0, dtype=xp.float64, device=device)
              if isinstance(loop.t0, float) else loop.t0[empty])
        extra = (xp.arange(k, dtype=xp.int64, device=device)[empty], t0, t0, constant,
                 y_empty, y_empty)
        columns = [xp.concat([a, b]) for a, b in zip(columns, extra)]
    seg_order = xp.argsort(columns[0], stable=True)
    seg_ids, t_a, t_b, coeffs, y_start, y_end = (xp.take(c, seg_order, axis=0)
                                                 for c in columns)
    offsets = xp.searchsorted(seg_ids, xp.arange(k + 1, dtype=seg_ids.dtype, device=device))
    return BatchOdeSolution(xp.astype(offsets, xp.int64), t_a, t_b, coeffs, y_start, y_end,
                            direction=loop.direction, xp=xp)


def _counts(ids, k, xp):
    """Occurrences of each instance 0 … k-1 in ``ids``."""
    ordered = xp.sort(ids)
    edges = xp.searchsorted(ordered, xp.arange(k + 1, dtype=ids.dtype, device=ids.device))
    return xp.astype(edges[1:] - edges[:-1], xp.int64)


def _segment_ends(loop, record, xp):
    """``t`` (K, S+1) and ``y`` (K, n, S+1): each instance's t0 and segment ends.

    Instances have different numbers of segments; rows are padded with NaN
    after their last end.  ``record`` is a SegmentRecord or an EndRecord.
    """
    k, n = loop.y0.shape
    device = loop.y0.device
    if isinstance(loop.t0, float) and loop.t0 == loop.tf:
        t = xp.full((k, 2), loop.t0, dtype=xp.float64, device=device)
        return t, xp.stack([loop.y0, loop.y0], axis=-1)
    ids, t_b, y_end = _columns(record.ends(), (
        xp.zeros((0,), dtype=xp.int64, device=device),
        xp.zeros((0,), dtype=xp.float64, device=device),
        xp.zeros((0, n), dtype=loop.y0.dtype, device=device)), xp)
    order = xp.argsort(ids, stable=True)
    ids, t_b, y_end = xp.take(ids, order), xp.take(t_b, order), xp.take(y_end, order, axis=0)
    counts = _counts(ids, k, xp)
    offsets = xp.astype(xp.searchsorted(ids, xp.arange(k + 1, dtype=ids.dtype, device=device)),
                        xp.int64)
    width = int(xp.max(counts)) if k else 0
    index, valid = _padded_index(offsets, counts, width, xp=xp)
    if ids.shape[0] == 0:  # (nothing to take from: every value is padding)
        t_b = xp.full((1,), math.nan, dtype=xp.float64, device=device)
        y_end = xp.full((1, n), math.nan, dtype=loop.y0.dtype, device=device)
    # (instances without a segment: clamped indices, masked by `valid`)
    flat = xp.clip(xp.reshape(index, (-1,)), 0, t_b.shape[0] - 1)
    t_ends = xp.where(valid, xp.reshape(xp.take(t_b, flat), index.shape), math.nan)
    y_ends = xp.reshape(xp.take(y_end, flat, axis=0), (k, width, n))
    y_ends = xp.where(valid[..., None], y_ends, math.nan)
    t0 = (xp.full((k, 1), loop.t0, dtype=xp.float64, device=device)
          if isinstance(loop.t0, float) else loop.t0[:, None])
    t = xp.concat([t0, t_ends], axis=1)
    y = xp.concat([loop.y0[:, None, :], y_ends], axis=1)
    return t, xp.permute_dims(y, (0, 2, 1))

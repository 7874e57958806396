"""Batches on Dask: a ``y0`` (or ``batch_args``, ``t_span``, ``t_eval``) that is a Dask
array, chunked along the instance axis, is solved chunk by chunk on Dask's workers.

Each chunk is an ordinary in-process :func:`chebpan.solve_ivp_batch` on the chunk's
own array library (NumPy or CuPy), run as one Dask task; the fields of the result are
Dask arrays assembled from the tasks (:class:`~chebpan._output.dask_result.DaskBatchResult`).
Instances are independent, so a chunk's rows are exactly what the in-process batch
gives them, and a task Dask re-runs (a worker lost mid-job) gives them again: no
duplicate or missing rows.  Dask and its scheduler are imported only here, lazily.
"""

from __future__ import annotations

import array_api_compat
import numpy as np

from .._output.dask_result import TOTALS, DaskBatchResult
from .arguments import unpack_args

__all__ = ["uses_dask", "solve_dask_batch"]

_EXTRA = "pip install 'chebpan[dask]'"


def _is_dask(value):
    return array_api_compat.is_dask_array(value)


def uses_dask(y0, t_span, t_eval, options):
    """Whether any per-instance input of a batch is a Dask array."""
    batch_args = options.get("batch_args")
    args = () if batch_args is None or hasattr(batch_args, "shape") else tuple(batch_args)
    return any(_is_dask(value) for value in (y0, t_span, t_eval, *args))


def dask_modules():
    try:
        import dask
        import dask.array as da
    except ImportError:
        raise ImportError(
            "Dask arrays as batch input need the optional package dask: " + _EXTRA
            + ".") from None
    return dask, da


def solve_dask_batch(fun, t_span, y0, t_eval, dense_output, events, vectorized, args,
                     options, solve_batch):
    """:func:`chebpan.solve_ivp_batch` with Dask arrays as input (module docstring).

    ``solve_batch`` is the in-process :func:`chebpan.solve_ivp_batch` (with a keyword
    ``lock_step``: a chunk of one instance solved in lock step as well): it checks the
    options and shapes here on an empty batch (those errors are raised before any work
    is sent to the workers; errors in per-instance values, such as a ``t_eval`` outside
    an instance's span, are raised by the chunk's task at compute time) and solves
    each chunk there.
    """
    dask, da = dask_modules()
    if t_eval is None:
        raise ValueError(
            "A Dask batch needs `t_eval` (its output is the values at `t_eval`, so that "
            "every chunk's rows have the same shape); for the segment ends of every "
            "instance, solve in process with NumPy or CuPy arrays.")
    for name, given in (("dense_output", bool(dense_output)), ("events", events is not None)):
        if given:
            raise NotImplementedError(
                f"`{name}` is not supported for a Dask batch: solve in process with NumPy "
                "or CuPy arrays (`solve_ivp_batch` on a chunk).")
    if "progress" in options and options["progress"]:
        raise NotImplementedError(
            "`progress` is not supported for a Dask batch: Dask's own diagnostics "
            "(dask.diagnostics.ProgressBar, or the distributed dashboard) show the chunks.")
    options = dict(options)
    batch_args = options.pop("batch_args", None)
    if batch_args is not None:
        if hasattr(batch_args, "shape") and hasattr(batch_args, "dtype"):
            raise ValueError(
                "`batch_args` must be a tuple of arrays with K rows each, e.g. "
                f"`batch_args=(rho,)`, but is an array of shape {tuple(batch_args.shape)}.")
        batch_args = unpack_args(batch_args)
    else:
        batch_args = ()

    if not _is_dask(y0):
        # (the instances are chunked like the first per-instance Dask input)
        rows = next((value.chunks[0] for value in (t_span, t_eval, *batch_args)
                     if _is_dask(value) and value.ndim >= 1 and (
                         value is not t_span and value is not t_eval or value.ndim == 2)),
                    "auto")
        y0 = np.asarray(y0)
        fits = y0.ndim == 2 and (rows == "auto" or sum(rows) == y0.shape[0])
        y0 = da.from_array(y0, chunks=(rows, -1) if fits else -1)
    if y0.ndim != 2:
        raise ValueError(f"`y0` must be 2-dimensional (K, n): one row per instance, but "
                         f"has shape {tuple(y0.shape)}.")
    k, n = y0.shape
    if np.isnan(k) or np.isnan(n):
        raise ValueError("A Dask `y0` needs known chunk sizes: call "
                         "`y0.compute_chunk_sizes()` first.")
    row_chunks = y0.chunks[0]
    y0 = y0.rechunk({0: row_chunks, 1: -1})

    def by_instance(value, name):
        """A per-instance array as a Dask array with ``y0``'s row chunks."""
        value = value if _is_dask(value) else da.asarray(np.asarray(value))
        if value.ndim == 0 or value.shape[0] != k:
            raise ValueError(f"`{name}` must have K = {k} rows, one per instance of the "
                             f"batch, but has shape {tuple(value.shape)}.")
        return value.rechunk({0: row_chunks, **{axis: -1 for axis in range(1, value.ndim)}})

    span_per_instance = np.ndim(t_span) == 2 if not _is_dask(t_span) else t_span.ndim == 2
    eval_per_instance = np.ndim(t_eval) == 2 if not _is_dask(t_eval) else t_eval.ndim == 2
    spans = by_instance(t_span, "t_span") if span_per_instance else t_span
    if _is_dask(spans) and not span_per_instance:
        spans = np.asarray(spans.compute())
    times = by_instance(t_eval, "t_eval") if eval_per_instance else t_eval
    if _is_dask(times) and not eval_per_instance:
        times = np.asarray(times.compute())
    batch_args = tuple(by_instance(value, f"batch_args[{i}]")
                       for i, value in enumerate(batch_args))

    # The checks of an in-process batch (options, tolerances, shapes), on no instance;
    # checks of per-instance values (spans, times) run on the chunks.
    empty = solve_batch(fun, _empty_rows(spans, k), np.zeros((0, n), dtype=y0.dtype),
                t_eval=_empty_rows(times, k), vectorized=vectorized, args=args,
                batch_args=tuple(np.zeros((0, *value.shape[1:]), dtype=value.dtype)
                                 for value in batch_args) or None,
                **options)

    n_times = int(times.shape[-1]) if hasattr(times, "shape") else len(times)
    blocks = [value.to_delayed().ravel() for value in
              (y0, *(v for v in (spans, times) if _is_dask(v)), *batch_args)]
    solve = dask.delayed(_solve_chunk, pure=True)
    parts = []
    for i, rows in enumerate(row_chunks):
        pieces = iter(block[i] for block in blocks)
        y0_block = next(pieces)
        span_block = next(pieces) if _is_dask(spans) else spans
        times_block = next(pieces) if _is_dask(times) else times
        # (a chunk of one instance of a larger batch stays in lock step: every instance
        # as in the batch solved whole)
        chunk = solve(solve_batch, fun, span_block, y0_block, times_block, vectorized, args,
                      tuple(pieces), options, k > 1)
        parts.append((rows, chunk))
    return DaskBatchResult._from_chunks(parts, n=n, n_times=n_times, t_eval=t_eval,
                                       dtype=empty.y.dtype if isinstance(y0._meta, np.ndarray)
                                       else y0.dtype, meta=y0._meta, da=da)


def _empty_rows(value, k):
    """An empty batch's version of a per-instance input: its first zero rows."""
    if not hasattr(value, "ndim") or value.ndim != 2 or value.shape[0] != k:
        return value
    return np.zeros((0, value.shape[1]), dtype=value.dtype)


def _solve_chunk(solve_batch, fun, t_span, y0, t_eval, vectorized, args, batch_args,
                 options, lock_step):
    """One Dask task: the in-process batch of a chunk, as a dict of its rows' fields."""
    result = solve_batch(fun, t_span, y0, t_eval=t_eval, vectorized=vectorized, args=args,
                         batch_args=batch_args or None, lock_step=lock_step, **options)
    totals = np.array([result[name] for name in TOTALS], dtype=np.int64)
    return {"y": result.y, "status": np.asarray(result.status),
            "message": np.asarray(result.message, dtype=object), "totals": totals,
            **{name: np.asarray(value) for name, value in result.per_instance.items()}}

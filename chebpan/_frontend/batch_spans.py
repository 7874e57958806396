"""The checks of a batch's ``t_span`` and ``t_eval``: shared, or one per instance.

A batch's ``t_span`` is scipy's 2-sequence ``(t0, tf)`` shared by every instance
(checked by :func:`~chebpan._frontend.validation.validate_t_span`, scipy's messages),
or an array (K, 2) with one ``(t0, tf)`` per instance.  ``t_eval`` is 1-D (the same
times for every instance) or (K, P) (a row per instance); either way, each
instance's times must lie within its span and be sorted in its direction: scipy's
two rules, instance by instance, and the messages name the first instance that breaks
one.  The number of instances K is known only from ``y0``, checked after them
(:func:`per_instance`), in scipy's order of the arguments.
"""

from __future__ import annotations

import numpy as np

from .validation import validate_first_step, validate_t_eval, validate_t_span

__all__ = ["validate_batch_t_span", "validate_batch_t_eval", "per_instance",
           "validate_batch_first_step"]

_SHAPES = ("a 2-sequence (t0, tf) shared by every instance, or an array of shape (K, 2) "
           "with one (t0, tf) per instance")


def validate_batch_t_span(t_span):
    """``(t0, tf)``: two floats (a shared span), or two float64 arrays (K,).

    Raises
    ------
    ValueError
        An array neither 1-D nor of shape (K, 2); a non-finite value of a
        per-instance span (the message names the first such instance); and
        scipy's errors for a shared span.
    TypeError
        A per-instance span that is not real numbers.
    """
    try:
        ndim = np.ndim(t_span)
    except ValueError:  # (ragged nested sequences)
        raise ValueError(f"`t_span` must be {_SHAPES}.") from None
    if ndim < 2:
        return validate_t_span(t_span)
    spans = np.asarray(t_span)
    if spans.ndim != 2 or spans.shape[1] != 2:
        raise ValueError(f"`t_span` must be {_SHAPES}, but has shape {spans.shape}.")
    if spans.dtype == object or not (np.issubdtype(spans.dtype, np.integer)
                                     or np.issubdtype(spans.dtype, np.floating)):
        raise TypeError(f"`t_span` must hold real numbers, but has dtype {spans.dtype}.")
    spans = spans.astype(np.float64)
    bad = ~np.all(np.isfinite(spans), axis=1)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(f"`t_span` must be finite, but `t_span[{i}]` is "
                         f"({float(spans[i, 0])!r}, {float(spans[i, 1])!r}).")
    return spans[:, 0].copy(), spans[:, 1].copy()


def validate_batch_t_eval(t_eval, t0, tf):
    """``t_eval`` as a NumPy array (1-D or (K, P)), in the user's dtype, or None.

    ``t0``, ``tf`` are floats (a shared span) or arrays (K,); a 1-D ``t_eval``
    with a shared span gets scipy's checks and messages unchanged.  Otherwise
    every instance's times must lie within its span (NaN never does) and be
    strictly monotone in its direction (not checked where ``t0 == tf``).

    Raises
    ------
    ValueError
        Not 1-D or 2-D; with per-instance spans, a (K', P) ``t_eval`` with
        K' != K; times outside an instance's span or not sorted in its
        direction (the message names the first such instance).
    """
    if t_eval is None:
        return None
    shared = isinstance(t0, float)
    t_eval = np.asarray(t_eval)
    if shared and t_eval.ndim == 1:
        return validate_t_eval(t_eval, t0, tf)
    if t_eval.ndim not in (1, 2):
        raise ValueError(
            "`t_eval` must be 1-dimensional (times shared by every instance) or "
            f"2-dimensional (K, P) with one row of times per instance, but has shape "
            f"{t_eval.shape}.")
    if not shared and t_eval.ndim == 2 and t_eval.shape[0] != t0.shape[0]:
        raise ValueError(
            f"`t_eval` of shape {t_eval.shape} must have one row of times per instance: "
            f"K = {t0.shape[0]} rows, as `t_span` has.")
    # (rows of times against columns of spans: one row per instance either way)
    times = t_eval if t_eval.ndim == 2 else t_eval[None, :]
    k = times.shape[0] if shared else t0.shape[0]
    t0 = np.broadcast_to(np.asarray(t0, dtype=float), (k,))[:, None]
    tf = np.broadcast_to(np.asarray(tf, dtype=float), (k,))[:, None]
    with np.errstate(invalid="ignore"):
        outside = np.any((times < np.minimum(t0, tf)) | (times > np.maximum(t0, tf))
                         | np.isnan(times), axis=-1)
        step = np.diff(times, axis=-1) * np.sign(tf - t0)
        unsorted = np.any(step <= 0, axis=-1) & (t0[:, 0] != tf[:, 0])
    for bad, rule in ((outside, "are not within `t_span`"),
                      (unsorted, "are not properly sorted")):
        if np.any(bad):
            i = int(np.argmax(bad))
            row = "`t_eval`" if t_eval.ndim == 1 else f"`t_eval[{i}]`"
            way = "increasing" if tf[i, 0] >= t0[i, 0] else "decreasing"
            raise ValueError(
                f"Values in `t_eval` {rule} for instance {i}: {row} must lie within its "
                f"span ({float(t0[i, 0])!r}, {float(tf[i, 0])!r}) and be strictly {way}.")
    return t_eval


def per_instance(t0, tf, t_eval, k):
    """Spans for K instances: the floats of a shared span, unless ``t_eval`` is 2-D
    (then arrays (K,), every row the same span); arrays checked to have K rows.

    Raises
    ------
    ValueError
        A per-instance ``t_span`` or a 2-D ``t_eval`` without K rows.
    """
    if not isinstance(t0, float) and t0.shape[0] != k:
        raise ValueError(
            f"`t_span` has {t0.shape[0]} rows, but `y0` has K = {k}: a per-instance "
            f"`t_span` has one (t0, tf) per instance, shape ({k}, 2).")
    if t_eval is not None and t_eval.ndim == 2 and t_eval.shape[0] != k:
        raise ValueError(
            f"`t_eval` of shape {t_eval.shape} must have one row of times per instance: "
            f"K = {k} rows, as `y0` has.")
    if isinstance(t0, float) and t_eval is not None and t_eval.ndim == 2:
        return np.full(k, t0), np.full(k, tf)
    return t0, tf


def validate_batch_first_step(first_step, t0, tf):
    """scipy's check of ``first_step``, against every instance's span.

    With per-instance spans it may not exceed the shortest one of positive length
    (instances with ``t0 == tf`` finish at once).
    """
    if isinstance(t0, float):
        return validate_first_step(first_step, t0, tf)
    lengths = np.abs(tf - t0)
    lengths = lengths[lengths > 0]
    if first_step <= 0 or np.isnan(first_step):
        raise ValueError("`first_step` must be positive.")
    if lengths.size and first_step > np.min(lengths):
        i = int(np.flatnonzero(np.abs(tf - t0) == np.min(lengths))[0])
        raise ValueError(f"`first_step` exceeds bounds: instance {i}'s span "
                         f"({float(t0[i])!r}, {float(tf[i])!r}) is shorter.")
    return float(first_step)

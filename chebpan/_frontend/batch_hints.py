"""A hint for per-instance parameters passed in ``args`` instead of ``batch_args``.

``args`` reach ``fun`` unchanged, so an array with one value per instance (K rows) meets
``y`` of shape (n, P) and NumPy fails with a bare broadcasting error.  ``args`` may hold
arrays legitimately, so nothing is checked up front: only when a call of ``fun`` raises
a ``ValueError`` while an entry of ``args`` has K rows is the error raised again with a
hint naming ``batch_args``.  (Not only the first call: the first one often has K points,
one per instance, where such an array broadcasts.)
"""

from __future__ import annotations

import numpy as np

__all__ = ["hint_misplaced_args"]


def _rows(value):
    """The length of ``value``'s first axis, or None (a scalar, or not array-like)."""
    shape = getattr(value, "shape", None)
    if shape is None:
        try:
            shape = np.shape(value)
        except (TypeError, ValueError):  # (ragged nested sequences)
            return None
    return shape[0] if len(shape) else None


def hint_misplaced_args(fun, args, k):
    """``fun`` that re-raises a ``ValueError`` with a hint about ``args``.

    Parameters
    ----------
    fun : callable
        The right-hand side with ``args`` already bound (what the evaluator calls).
    args : tuple or None
        The user's ``args``, unpacked.
    k : int
        Number of instances of the batch.

    Returns
    -------
    callable
        ``fun`` itself when no entry of ``args`` has K rows (or K < 2), else a
        wrapper.
    """
    suspects = [i for i, value in enumerate(args or ()) if _rows(value) == k]
    if k < 2 or not suspects:
        return fun

    def fun_with_hint(t, y, *point_args):
        try:
            return fun(t, y, *point_args)
        except ValueError as err:
            names = ", ".join(f"`args[{i}]`" for i in suspects)
            raise ValueError(
                f"`fun` raised ValueError: {err}\n{names} has K = {k} rows, one per "
                "instance of the batch? `args` reach `fun` unchanged; per-instance "
                "parameters go in `batch_args` (e.g. `batch_args=(rho,)`), which "
                "reach `fun` laid out like `y`, one column per point.") from err

    return fun_with_hint

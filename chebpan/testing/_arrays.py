"""Array helpers shared by the suite's right-hand sides and Jacobians."""

from __future__ import annotations

import numpy as np


def matrix(rows, y) -> np.ndarray:
    """Stack a nested list of Jacobian entries into one array.

    Parameters
    ----------
    rows : list of list
        ``rows[i][j]`` is ``d f_i / d y_j``: a scalar or an array shaped like ``y[0]``.
    y : ndarray, shape (n,) or (n, P)
        The state the entries were computed from (gives the shape and dtype).

    Returns
    -------
    ndarray, shape (n, n) or (n, n, P)
    """
    out = np.empty((len(rows), len(rows[0])) + np.shape(y[0]),
                   dtype=np.result_type(y.dtype, float))
    for i, row in enumerate(rows):
        for j, entry in enumerate(row):
            out[i, j] = entry  # (a scalar entry broadcasts)
    return out


def linear_jac(a: np.ndarray, y) -> np.ndarray:
    """Jacobian ``a`` of a linear right-hand side, shape ``(n, n)`` or ``(n, n, P)``."""
    y = np.asarray(y)
    if y.ndim == 1:
        return a.astype(np.result_type(y.dtype, float), copy=True)
    return np.repeat(a[:, :, None], y.shape[1], axis=2).astype(
        np.result_type(y.dtype, float))


def as_state(y) -> np.ndarray:
    """``y`` as an array, keeping float64 or longdouble (ints become float64)."""
    y = np.asarray(y)
    return y if np.issubdtype(y.dtype, np.floating) else y.astype(float)

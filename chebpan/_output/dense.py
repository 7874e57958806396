"""Piecewise-Chebyshev dense output, compatible with scipy's ``OdeSolution``."""

from __future__ import annotations

from .pickling import PicklableNamespace

__all__ = ["OdeSolution", "ChebyshevSegment", "clenshaw", "segment_values"]


def clenshaw(coeffs, tau, *, xp):
    """Evaluate ``Σ_n c_n T_n(τ)`` by Clenshaw's recurrence.

    Parameters
    ----------
    coeffs : array, shape (P, n, N)
        Coefficients, one set per point.
    tau : array, shape (P,)

    Returns
    -------
    array, shape (P, n)
    """
    n = coeffs.shape[-1]
    two_tau = (2 * tau)[:, None]
    b1 = xp.zeros(coeffs.shape[:-1], dtype=coeffs.dtype, device=coeffs.device)
    b2 = xp.zeros_like(b1)
    for k in range(n - 1, 0, -1):
        b1, b2 = coeffs[..., k] + two_tau * b1 - b2, b1
    return coeffs[..., 0] + tau[:, None] * b1 - b2


def segment_values(t, t_a, t_b, coeffs, y_start, y_end, *, xp):
    """Values at times ``t`` (P,) of the segments ``[t_a, t_b]`` (P,) holding them.

    ``coeffs`` (P, n, N), ``y_start``/``y_end`` (P, n) are those segments'
    coefficients and end values; the ends are reproduced exactly.  Returns
    (P, n).
    """
    length = t_b - t_a
    safe = xp.where(length == 0, xp.ones_like(length), length)
    tau = 2 * ((t - t_a) / safe) - 1
    tau = xp.where(length == 0, -xp.ones_like(tau), tau)
    y = clenshaw(coeffs, xp.astype(tau, coeffs.dtype), xp=xp)
    y = xp.where((t == t_a)[:, None], y_start, y)
    return xp.where(((t == t_b) & (length != 0))[:, None], y_end, y)


class OdeSolution(PicklableNamespace):
    """Continuous solution made of Chebyshev segments.

    It behaves like :class:`scipy.integrate.OdeSolution`: ``sol(t)`` with a
    scalar ``t`` returns shape (n,), with a 1-D array of k times shape (n, k);
    at a breakpoint the segment with the lower index is used; outside
    ``[t_min, t_max]`` the first or last segment's polynomial is evaluated
    (extrapolation, as scipy does). Each segment reproduces its stored end
    values exactly, so ``sol(res.t)`` equals ``res.y`` bit for bit when
    ``t_eval`` is not given.  Evaluation is vectorised over all times.

    Parameters
    ----------
    ts : array, shape (S + 1,)
        Segment boundaries, strictly monotone (or ``[t0, t0]``).
    coeffs : array, shape (S, n, N)
        Chebyshev coefficients of each segment on its reference interval.
    y_start, y_end : arrays, shape (S, n)
        Values at the ends of each segment.

    Attributes
    ----------
    ts, t_min, t_max, n_segments, ascending, side, ts_sorted
        As in scipy.

    Examples
    --------
    >>> import numpy as np
    >>> import chebpan
    >>> res = chebpan.solve_ivp(lambda t, y: -y, (0, 2), [1.0], dense_output=True)
    >>> res.sol(1.0).shape, res.sol([0.5, 1.5]).shape
    ((1,), (1, 2))
    >>> bool(abs(res.sol(1.0)[0] - np.exp(-1)) < 1e-5)
    True
    """

    def __init__(self, ts, coeffs, y_start, y_end, *, xp):
        self.xp = xp
        self.ts = ts
        self.coeffs = coeffs
        self.y_start = y_start
        self.y_end = y_end
        self.n_segments = coeffs.shape[0]
        first, last = float(ts[0]), float(ts[-1])
        self.ascending = last >= first
        self.t_min, self.t_max = (first, last) if self.ascending else (last, first)
        self.side = "left" if self.ascending else "right"
        self.ts_sorted = ts if self.ascending else xp.flip(ts)

    @property
    def interpolants(self):
        """Per-segment callables (``scipy.integrate.DenseOutput``-like)."""
        return [ChebyshevSegment(self, i) for i in range(self.n_segments)]

    def _segment_index(self, t):
        xp = self.xp
        index = xp.searchsorted(self.ts_sorted, t, side=self.side) - 1
        index = xp.clip(index, 0, self.n_segments - 1)
        if not self.ascending:
            index = self.n_segments - 1 - index
        return index

    def evaluate(self, t, index=None):
        """Values at the 1-D array ``t``: shape (n, k)."""
        xp = self.xp
        if index is None:
            index = self._segment_index(t)
        y = segment_values(t, xp.take(self.ts, index), xp.take(self.ts, index + 1),
                           xp.take(self.coeffs, index, axis=0),
                           xp.take(self.y_start, index, axis=0),
                           xp.take(self.y_end, index, axis=0), xp=xp)
        return xp.matrix_transpose(y)

    def __call__(self, t):
        """Evaluate the solution.

        Parameters
        ----------
        t : float or array_like, shape (k,)

        Returns
        -------
        y : array, shape (n,) or (n, k)
        """
        xp = self.xp
        t = xp.asarray(t, dtype=self.ts.dtype, device=self.ts.device)
        if t.ndim == 0:
            return self.evaluate(xp.reshape(t, (1,)))[:, 0]
        if t.ndim != 1:
            raise TypeError("`t` must be a float or a 1-D array.")
        if t.shape[0] == 0:
            raise ValueError("need at least one array to concatenate")
        return self.evaluate(t)


class ChebyshevSegment:
    """One segment of an :class:`OdeSolution`, callable like scipy's ``DenseOutput``."""

    def __init__(self, solution: OdeSolution, index: int):
        self.solution = solution
        self.index = index
        self.t_old = float(solution.ts[index])
        self.t = float(solution.ts[index + 1])
        self.t_min, self.t_max = sorted((self.t_old, self.t))

    def __call__(self, t):
        xp = self.solution.xp
        t = xp.asarray(t, dtype=self.solution.ts.dtype, device=self.solution.ts.device)
        if t.ndim > 1:
            raise ValueError("`t` must be a float or a 1-D array.")
        flat = xp.reshape(t, (-1,))
        index = xp.full(flat.shape, self.index, dtype=xp.int64, device=flat.device)
        y = self.solution.evaluate(flat, index)
        return y[:, 0] if t.ndim == 0 else y

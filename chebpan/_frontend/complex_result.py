"""Complex results: the real system's ``y``, ``sol`` and ``y_events`` as complex values.

The last step of a solve with a complex ``y0`` (:mod:`chebpan._frontend.complex_state`
has the first and the differences from scipy): the real solution ``x = [Re y; Im y]`` of
size ``2n`` is read back as the complex ``y`` of size ``n``.
"""

from __future__ import annotations

import numpy as np

from .complex_state import to_complex

__all__ = ["ComplexDenseOutput", "ComplexOdeSolution", "complexify_result"]


class ComplexDenseOutput:
    """One segment of a :class:`ComplexOdeSolution` (complex values).

    Parameters
    ----------
    interpolant : callable
        The real segment (e.g. :class:`chebpan._output.dense.ChebyshevSegment`).
    n : int
        Complex size.

    Attributes
    ----------
    t_old, t, t_min, t_max
        Those of ``interpolant`` (where it has them).
    """

    def __init__(self, interpolant, n):
        self.real_interpolant = interpolant
        self.n = n
        for name in ("t_old", "t", "t_min", "t_max"):
            if hasattr(interpolant, name):
                setattr(self, name, getattr(interpolant, name))

    def __call__(self, t):
        """Complex values at ``t``: shape (n,) for a scalar, (n, k) for k times."""
        return to_complex(self.real_interpolant(t), self.n)


class ComplexOdeSolution:
    """Continuous complex solution built on the real one of size ``2n``.

    ``sol(t)`` returns complex128 values of shape (n,) for a scalar ``t`` and
    (n, k) for a 1-D array of k times, with the evaluation rules of the
    wrapped :class:`chebpan.OdeSolution` (and of scipy's ``OdeSolution``).

    Parameters
    ----------
    solution : chebpan.OdeSolution
        Solution of the real system, state ``[Re y; Im y]``.
    n : int
        Complex size.

    Attributes
    ----------
    ts, t_min, t_max, n_segments, ascending, side, ts_sorted
        Those of ``solution``, as in scipy.
    real_solution : chebpan.OdeSolution
        The wrapped real solution.
    n : int
        Complex size.

    Examples
    --------
    >>> import numpy as np
    >>> import chebpan
    >>> real = chebpan.solve_ivp(lambda t, x: np.stack([-x[1], x[0]]), (0, 1),
    ...                          [1.0, 0.0], dense_output=True, vectorized=True).sol
    >>> sol = ComplexOdeSolution(real, 1)  # y' = 1j y, y(0) = 1
    >>> sol(0.5).dtype, sol([0.25, 0.5]).shape
    (dtype('complex128'), (1, 2))
    """

    def __init__(self, solution, n):
        self.real_solution = solution
        self.n = n
        self.ts = solution.ts
        self.t_min = solution.t_min
        self.t_max = solution.t_max
        self.n_segments = solution.n_segments
        self.ascending = solution.ascending
        self.side = solution.side
        self.ts_sorted = solution.ts_sorted

    @property
    def interpolants(self):
        """Per-segment callables returning complex values."""
        return [ComplexDenseOutput(interpolant, self.n)
                for interpolant in self.real_solution.interpolants]

    def __call__(self, t):
        """Evaluate the solution.

        Parameters
        ----------
        t : float or array_like, shape (k,)

        Returns
        -------
        y : ndarray, complex128, shape (n,) or (n, k)
        """
        return to_complex(self.real_solution(t), self.n)

    def __repr__(self):
        return f"ComplexOdeSolution(n={self.n}, n_segments={self.n_segments})"


def complexify_result(res, n):
    """Turn the result of the real ``2n`` system back into complex values.

    Parameters
    ----------
    res : OdeResult
        Result of the solve of the system built by :func:`realify`.
        Modified in place.
    n : int
        Complex size.

    Returns
    -------
    OdeResult
        ``res``, with

        * ``y``: (2n, k) → complex128 (n, k); an empty list (no ``t_eval``
          value reached) stays ``[]``;
        * ``sol``: wrapped in a :class:`ComplexOdeSolution` (None stays None);
        * ``y_events``: each (k, 2n) array → complex128 (k, n); an array of
          any other dimension (scipy's shape (0,) for an event that never
          fired) is kept; None stays None.

        ``t``, ``t_events``, counters, ``status`` and ``message`` are unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from chebpan import OdeResult
    >>> res = OdeResult(t=np.array([0.0]), y=np.array([[1.0], [2.0]]), sol=None,
    ...                 t_events=None, y_events=None)
    >>> complexify_result(res, 1).y
    array([[1.+2.j]])
    """
    y = res.get("y")
    if y is not None and not (isinstance(y, list) and len(y) == 0):
        res.y = to_complex(y, n)
    if res.get("sol") is not None:
        res.sol = ComplexOdeSolution(res.sol, n)
    y_events = res.get("y_events")
    if y_events is not None:
        res.y_events = [np.ascontiguousarray(to_complex(np.asarray(ye).T, n).T)
                        if np.ndim(ye) == 2 else ye for ye in y_events]
    return res

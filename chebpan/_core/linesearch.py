"""Strong-Wolfe line search (paper Appendix D.1, Algorithms 5 and 6).

This is Nocedal & Wright's Algorithm 3.5 (bracketing by expansion) with their
Algorithm 3.6 (``zoom``), written for a Newton-type caller whose trial points
are expensive: each evaluation of ``phi`` costs one batched right-hand-side
round and a Jacobian, so

* ``phi`` returns the value, the slope *and* an arbitrary payload (the data
  computed at the trial point); the payload of the accepted point is handed
  back untouched so the caller never evaluates it twice;
* ``phi`` is only called where the algorithm needs a new point; when the first
  trial ``alpha1`` (``1`` by default, the Newton step) satisfies the strong
  Wolfe conditions, exactly one call is made;
* every loop is bounded by ``max_trials``, the total number of ``phi`` calls.

Choices (not fixed by the paper)
--------------------------------
``alpha_max = 4``
    Expansion doubles the step (``1, 2, 4``), so at most two extra trials are
    spent beyond the Newton step.  With ``c2 = 0.9`` the full step is already
    accepted on a quadratic model unless the exact minimiser along ``d`` lies
    beyond ``10`` (``|phi'(1)| = |phi'(0)| (1 - 1/alpha*)``); ``alpha = 2``
    covers minimisers up to ``20`` and ``alpha = 4`` up to ``40``.  A Newton
    (or modified-Cholesky Newton) step that is more than ``40`` times too short
    is rare; in that case the search returns ``alpha_max`` with
    ``converged=False`` (it satisfies sufficient decrease and is the lowest
    point seen, so it is still a usable step).
Interpolation
    ``zoom`` uses the minimiser of the cubic that matches the values and slopes
    at both ends of the bracket (Nocedal & Wright eq. 3.59).  It is accepted
    only if finite and inside ``[lo + 0.1 D, hi - 0.1 D]`` (``lo < hi`` the
    bracket ends, ``D = hi - lo``); otherwise the midpoint is used
    (bisection).  An end whose value or slope is not finite also forces
    bisection.
Rounding-level ties
    In ``zoom``, a trial whose value exceeds ``phi(lo)`` by no more than
    ``4 eps |phi(lo)|`` is not treated as higher (Algorithm 6 would make it
    the new ``hi``): near the minimiser the values agree to rounding, and the
    slope, which is still accurate there, decides how the bracket shrinks.
    Without this, a tight ``c2`` can leave the search bisecting on noise.
Non-finite trial values
    A trial whose value or slope is NaN or infinite is treated as a failed
    sufficient-decrease test: it becomes the far end of the bracket, so the
    step shrinks.
Giving up early
    With ``give_up_below`` > 0, a search that has found no acceptable step yet stops
    as soon as the quadratic through ``phi(0)``, ``phi'(0)`` and the far end of the
    bracket puts the minimiser below that fraction of the Newton step (``phi(1)`` far
    above ``phi(0)``): the caller treats such short steps as a failure anyway, and
    each further trial costs a round.  (The quadratic, not the cubic: far from the
    solution the objective of a Newton step grows like ``alpha⁴`` and the cubic
    through both slopes shrinks the step only about threefold per trial.)
Failure
    When no point satisfies both conditions within ``max_trials`` (or the
    expansion reaches ``alpha_max``, or the bracket can no longer be split in
    floating point), the result has ``converged=False`` and describes the
    trial with the lowest value among those that satisfy sufficient decrease
    (with finite value and slope).  If there is none, the result is
    ``alpha=0.0``, ``value=value0``, ``slope=slope0``, ``payload=None``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, NamedTuple

__all__ = ["LineSearchResult", "strong_wolfe"]

#: Fraction of the bracket kept clear at each end by the cubic safeguard.
_SAFEGUARD = 0.1

#: Relative size of a rounding-level difference between two objective values.
_TIE = 4.0 * 2.0**-52


class LineSearchResult(NamedTuple):
    """Outcome of :func:`strong_wolfe`.

    Attributes
    ----------
    alpha : float
        Accepted step; when ``converged`` is False, the best step found that
        satisfies sufficient decrease, or ``0.0`` if none does.
    value : float
        ``phi(alpha)`` (``value0`` when ``alpha == 0``).
    slope : float
        ``phi'(alpha)`` (``slope0`` when ``alpha == 0``).
    payload : object
        The payload ``phi`` returned for ``alpha`` (the same object, never
        recomputed); ``None`` when ``alpha == 0``.
    n_trials : int
        Number of calls of ``phi``.
    converged : bool
        True when ``alpha`` satisfies both strong Wolfe conditions.
    """

    alpha: float
    value: float
    slope: float
    payload: Any
    n_trials: int
    converged: bool


def _cubic_step(a: float, fa: float, ga: float, b: float, fb: float, gb: float) -> float:
    """Minimiser of the cubic matching ``(f, f')`` at ``a`` and ``b``.

    Nocedal & Wright eq. (3.59); valid for either ordering of ``a`` and ``b``.
    Returns NaN when the cubic has no minimiser or the data are not finite.
    """
    if not all(map(math.isfinite, (a, fa, ga, b, fb, gb))) or a == b:
        return math.nan
    d1 = ga + gb - 3.0 * (fa - fb) / (a - b)
    disc = d1 * d1 - ga * gb
    if not (disc >= 0.0) or not math.isfinite(disc):
        return math.nan
    d2 = math.copysign(math.sqrt(disc), b - a)
    denom = gb - ga + 2.0 * d2
    if denom == 0.0:
        return math.nan
    step = b - (b - a) * (gb + d2 - d1) / denom
    return step if math.isfinite(step) else math.nan


def _quadratic_step(f0: float, g0: float, b: float, fb: float) -> float:
    """Minimiser of the quadratic matching ``f(0)``, ``f'(0)`` and ``f(b)`` (Nocedal &
    Wright eq. 3.58); NaN when it has none or the data are not finite."""
    curvature = fb - f0 - g0 * b
    if not (math.isfinite(curvature) and curvature > 0.0 and b > 0.0):
        return math.nan
    return -g0 * b * b / (2.0 * curvature)


def strong_wolfe(
    phi: Callable[[float], tuple[float, float, Any]],
    value0: float,
    slope0: float,
    *,
    alpha1: float = 1.0,
    alpha_max: float = 4.0,
    c1: float = 1e-4,
    c2: float = 0.9,
    max_trials: int = 20,
    give_up_below: float = 0.0,
) -> LineSearchResult:
    r"""Find a step satisfying the strong Wolfe conditions.

    With :math:`\phi(\alpha) = e(x + \alpha d)`, find :math:`\alpha > 0` with

    .. math::

        \phi(\alpha) \le \phi(0) + c_1 \alpha \phi'(0)
        \quad\text{and}\quad
        |\phi'(\alpha)| \le c_2 |\phi'(0)|

    by expansion (doubling from ``alpha1`` up to ``alpha_max``) and zoom with
    safeguarded cubic interpolation (Nocedal & Wright Algorithms 3.5 and 3.6;
    paper Algorithms 5 and 6).

    Parameters
    ----------
    phi : callable
        ``phi(alpha) -> (value, slope, payload)``: the objective and its
        directional derivative at ``x + alpha d`` (floats), and any data the
        caller wants back for the accepted point.  Called only where needed,
        at most ``max_trials`` times.  A NaN or infinite value or slope counts
        as a failed sufficient-decrease test (the step is shrunk).
    value0, slope0 : float
        ``phi(0)`` and ``phi'(0)``.  ``value0`` must be finite and ``slope0``
        finite and negative (``d`` a descent direction).
    alpha1 : float, optional
        First trial step, default 1 (the Newton step).  Clipped to
        ``alpha_max``.
    alpha_max : float, optional
        Largest step tried, default 4 (at most two doublings past 1).
    c1, c2 : float, optional
        Sufficient-decrease and curvature constants, ``0 < c1 < c2 < 1``;
        defaults ``1e-4`` and ``0.9`` (Newton-type directions).
    max_trials : int, optional
        Largest number of ``phi`` calls for the whole search, default 20.
    give_up_below : float, optional
        While no trial has given sufficient decrease, stop (with ``alpha=0.0``)
        once the quadratic interpolant's minimiser is below this step; default 0 (never).

    Returns
    -------
    LineSearchResult
        ``(alpha, value, slope, payload, n_trials, converged)``.  If no step
        satisfies both conditions (trials exhausted, ``alpha_max`` reached
        while still descending, or the bracket collapsed in floating point),
        ``converged`` is False and the result is the trial with the lowest
        value among those that satisfy sufficient decrease, or
        ``alpha=0.0, value=value0, slope=slope0, payload=None`` if no trial
        does.

    Raises
    ------
    ValueError
        If ``slope0`` is not negative, ``value0`` or ``slope0`` is not finite,
        or a parameter is out of range.

    Notes
    -----
    A step ``alpha > 0`` with ``converged=False`` still decreases the
    objective by at least ``c1 * alpha * |slope0|`` and may be taken; only
    ``alpha == 0`` means that no progress was made along ``d``.

    Examples
    --------
    A quadratic along the Newton direction: the full step is exact and is
    accepted after a single evaluation of ``phi``.

    >>> def phi(alpha):
    ...     value = 0.5 * (alpha - 1.0) ** 2
    ...     return value, alpha - 1.0, {"alpha": alpha}
    >>> res = strong_wolfe(phi, 0.5, -1.0)
    >>> res.alpha, res.n_trials, res.converged, res.payload
    (1.0, 1, True, {'alpha': 1.0})

    A step that is far too long is shortened by the zoom; the cubic
    interpolant of a quadratic is exact, so the minimiser ``0.25`` is found
    with the second evaluation.

    >>> def phi(alpha):
    ...     return 2.0 * alpha * alpha - alpha, 4.0 * alpha - 1.0, None
    >>> res = strong_wolfe(phi, 0.0, -1.0)
    >>> res.alpha, res.n_trials, res.converged
    (0.25, 2, True)
    """
    value0 = float(value0)
    slope0 = float(slope0)
    alpha1 = float(alpha1)
    alpha_max = float(alpha_max)
    if not math.isfinite(value0):
        raise ValueError(f"value0 must be finite, got {value0!r}")
    if not (math.isfinite(slope0) and slope0 < 0.0):
        raise ValueError(
            f"slope0 must be finite and negative (a descent direction), got {slope0!r}"
        )
    if not (0.0 < c1 < c2 < 1.0):
        raise ValueError(f"need 0 < c1 < c2 < 1, got c1={c1!r}, c2={c2!r}")
    if not (0.0 < alpha_max and math.isfinite(alpha_max)):
        raise ValueError(f"alpha_max must be positive and finite, got {alpha_max!r}")
    if not (0.0 < alpha1 and math.isfinite(alpha1)):
        raise ValueError(f"alpha1 must be positive and finite, got {alpha1!r}")
    if not (
        isinstance(max_trials, (int, numbers.Real))  # (int first: the ABC check is slow)
        and math.isfinite(max_trials)
        and int(max_trials) == max_trials >= 1
    ):
        raise ValueError(f"max_trials must be a positive integer, got {max_trials!r}")
    max_trials = int(max_trials)

    decrease = c1 * slope0  # < 0
    curvature = -c2 * slope0  # > 0
    n_trials = 0
    best: LineSearchResult | None = None  # lowest Armijo point so far

    def evaluate(alpha: float) -> tuple[float, float, Any, bool]:
        """Call phi once; return value, slope, payload, and 'acceptable'.

        'acceptable' means finite and satisfying sufficient decrease.
        """
        nonlocal n_trials, best
        value, slope, payload = phi(alpha)
        n_trials += 1
        value = float(value)
        slope = float(slope)
        ok = (
            math.isfinite(value)
            and math.isfinite(slope)
            and value <= value0 + alpha * decrease
        )
        if ok and (best is None or value < best.value):
            best = LineSearchResult(alpha, value, slope, payload, n_trials, False)
        return value, slope, payload, ok

    def done(alpha: float, value: float, slope: float, payload: Any) -> LineSearchResult:
        return LineSearchResult(alpha, value, slope, payload, n_trials, True)

    def failed() -> LineSearchResult:
        if best is None:
            return LineSearchResult(0.0, value0, slope0, None, n_trials, False)
        return best._replace(n_trials=n_trials)

    def zoom(lo: tuple[float, float, float], hi: tuple[float, float, float]) -> LineSearchResult:
        # lo = (alpha, value, slope): lowest Armijo point so far (or alpha=0);
        # hi: the other end, with slope(lo) * (alpha_hi - alpha_lo) < 0.
        while n_trials < max_trials:
            a_lo, f_lo, g_lo = lo
            a_hi, f_hi, g_hi = hi
            left, right = min(a_lo, a_hi), max(a_lo, a_hi)
            width = right - left
            alpha = _cubic_step(a_lo, f_lo, g_lo, a_hi, f_hi, g_hi)
            if a_lo == 0.0 and _quadratic_step(f_lo, g_lo, a_hi, f_hi) < give_up_below:
                break  # (NaN compares False: no model, no verdict)
            if not (left + _SAFEGUARD * width <= alpha <= right - _SAFEGUARD * width):
                alpha = left + 0.5 * width
            if not (left < alpha < right):
                break  # the bracket cannot be split any further
            value, slope, payload, ok = evaluate(alpha)
            # Near the minimiser, values of phi agree to rounding and the test
            # phi(alpha) >= phi(lo) becomes noise: a value within rounding of
            # phi(lo) counts as "not higher" and the (reliable) slope decides.
            if not ok or value - f_lo > _TIE * abs(f_lo):
                hi = (alpha, value, slope)
                continue
            if abs(slope) <= curvature:
                return done(alpha, value, slope, payload)
            if slope * (a_hi - a_lo) >= 0.0:
                hi = lo
            lo = (alpha, value, slope)
        return failed()

    prev = (0.0, value0, slope0)
    alpha = min(alpha1, alpha_max)
    first = True
    while n_trials < max_trials:
        value, slope, payload, ok = evaluate(alpha)
        if not ok or (not first and value >= prev[1]):
            return zoom(prev, (alpha, value, slope))
        if abs(slope) <= curvature:
            return done(alpha, value, slope, payload)
        if slope >= 0.0:
            return zoom((alpha, value, slope), prev)
        if alpha >= alpha_max:
            break  # still descending at the largest allowed step
        prev = (alpha, value, slope)
        alpha = min(alpha_max, 2.0 * alpha)
        first = False
    return failed()

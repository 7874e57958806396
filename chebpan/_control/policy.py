"""The choices around the iteration: segment lengths, starts, convergence, stiffness.

Shared by the single solve (:mod:`chebpan._control.single`) and the batch
(:mod:`chebpan._control.batch`): the growth factor of the length from the error
estimate, the first length, the extrapolated start of a segment, the convergence test
of an iteration, the cost model of the Picard → Newton hand-over (single solves) and
the constants that tune them.  docs/algorithm.md, "Error estimate and segment length",
"Cost of a segment" and "Choices the paper leaves open".
"""

from __future__ import annotations

import math

from .._core.basis import chebyshev_values
from .._core.estimates import scaled_rms
from .._core.picard import picard_update
from .._core.singularities import singularity_limits
from .._kernels.dispatch import extrapolation_kernel, initial_lengths_kernel

__all__ = ["auto_n_coeffs", "length_factors", "next_length_factor", "limited_factors",
           "extrapolated_guess", "initial_lengths", "converged", "newton_round_cost",
           "picard_rounds", "picard_cheaper"]

#: Growth factor of the length: ``SAFETY · err^(−1/(N−1))`` clipped to
#: ``[MIN_FACTOR, MAX_FACTOR]``.
SAFETY = 0.9
MIN_FACTOR = 0.2
MAX_FACTOR = 4.0
#: Largest growth of the length after the first segment (sized by a heuristic).
FIRST_MAX_FACTOR = 20.0
#: A segment within this factor of the end is stretched to reach it.
STRETCH = 1.25
#: Largest factor applied to the length after an error rejection.
SAFETY_REJECT = 0.9
#: Without Newton: this many times ``max_picard`` iterations, and the
#: contraction ratio above which the segment is given up (and shortened).
PICARD_ONLY_FACTOR = 4
PICARD_ONLY_RHO = 0.9
#: Order assumed by the first segment's length heuristic (scipy's rule).
INITIAL_ORDER = 15
#: Stiffness ``(h/2) ‖J‖_∞`` above which the stiff basis is used, and below
#: which it is left again (hysteresis; Lorenz at its longest segments: ~50).
STIFF_ON = 100.0
STIFF_OFF = 25.0
#: The same where the paper's basis has no Newton (systems above max_newton_size).
STIFF_ON_PICARD_ONLY = 1.0
STIFF_OFF_PICARD_ONLY = 0.25
#: Newton steps the line search may shorten before the attempt is given up (a
#: segment too long for its start), and the line search's trials per step.
MAX_DAMPED_STEPS = 1
NEWTON_TRIALS = 6
#: A step the line search shortens below this fraction gives the attempt up at once.
HOPELESS_ALPHA = 0.1
#: Newton converges quadratically once the ratio of successive updates falls to at
#: most this fraction of the ratio before it (after full, freshly factorised steps).
SUPERLINEAR = 0.5

#: The cost model of the Picard → Newton hand-over (docs/algorithm.md, "Cost of a
#: segment"): Newton steps a converging attempt takes, the dense Newton system's unknowns
#: whose factorisation costs about one Picard round (the modified LDLᵀ of 168 unknowns
#: takes 0.29 ms, of 90 0.08 ms, where a Picard round costs ~0.1 ms), and the cost of a
#: Newton round, in Picard rounds, above which the Picard iteration goes on while it is
#: predicted to be cheaper.
NEWTON_ROUNDS = 3
NEWTON_COST_UNKNOWNS = 110.0
COSTLY_NEWTON = 4.0


def newton_round_cost(unknowns: int) -> float:
    """A dense Newton round's cost in Picard rounds, ``1 + (unknowns / 110)³``.

    Examples
    --------
    >>> round(newton_round_cost(90), 2), round(newton_round_cost(306), 1)
    (1.55, 22.5)
    """
    return 1.0 + (unknowns / NEWTON_COST_UNKNOWNS) ** 3


def picard_rounds(rho: float, change: float, tolerance: float) -> float:
    """Picard rounds still needed at contraction ``rho`` after an update ``change``:
    ``k`` with ``change ρᵏ ρ / (1 − ρ)`` at the convergence ``tolerance`` (inf for
    ``rho ≥ 1``)."""
    if not 0 < rho < 1:
        return 0.0 if rho <= 0 else math.inf
    if not change * rho > 0:  # (nothing left to remove)
        return 0.0
    if not tolerance > 0:
        return math.inf
    return max(math.log(tolerance * (1 - rho) / (change * rho)) / math.log(rho), 0.0)


def picard_cheaper(rho: float, change: float, tolerance: float, newton_cost: float,
                   rounds_left: float = math.inf) -> bool:
    """Whether Picard rounds at contraction ``rho`` (after an update ``change``)
    converge for less than Newton's: only where a Newton round costs more than
    ``COSTLY_NEWTON`` Picard rounds, ``rho`` is below ``PICARD_ONLY_RHO``, and the
    rounds needed are at most ``rounds_left`` (those the iteration may still take).

    Examples
    --------
    >>> picard_cheaper(0.5, 1.0, 1e-3, newton_round_cost(168))
    True
    >>> picard_cheaper(0.5, 1.0, 1e-3, newton_round_cost(90))  # (Newton is cheap)
    False
    """
    return (newton_cost > COSTLY_NEWTON and rho < PICARD_ONLY_RHO
            and picard_rounds(rho, change, tolerance) <= min(NEWTON_ROUNDS * newton_cost,
                                                             rounds_left))


#: ``n_coeffs`` chosen when the user gives none: from the tolerance,
#: ``N_PER_DIGIT`` per digit of ``rtol`` above ``N_BASE``, at most ``N_SIZE / n`` (the
#: dense Newton system ``n·N`` stays small), within ``[N_FEWEST, N_MOST]``.
N_FEWEST = 8
N_MOST = 32
N_BASE = 4.0
N_PER_DIGIT = 2.8
N_SIZE = 144
#: With a ``jac`` or ``jac_sparsity`` (a likely stiff problem), the size bound is at
#: least this: a large system's stiff segments take structured or sparse Newton
#: solves (whose cost grows like N, not N³), and their length is bounded by the
#: convergence of the iteration and the fast dynamics more than by the degree.
N_STIFF_SIZE = 16


def auto_n_coeffs(rtol: float, n: int, *, dense_newton: bool = True) -> int:
    """The number of coefficients per segment for tolerance ``rtol`` and ``n`` components.

    ``rtol`` is the tightest relative tolerance of the components.  ``dense_newton``
    False (a ``jac`` or ``jac_sparsity`` is given: the problem is likely stiff, and a
    large system's stiff segments take structured or sparse Newton solves that cost
    ``O(N·n³)``) raises the bound from the size of the system to at least 16.

    A cost model of one segment (docs/algorithm.md, "Cost of a segment"): the
    length that meets the tolerance grows with N, but a Newton step costs
    ``(n·N)³`` and a long segment needs more iterations.  At loose tolerances a
    low degree gives short segments whose iteration converges in a few rounds;
    at tight ones the high degree's long segments win; for large systems the
    Newton systems' cost caps N.

    Examples
    --------
    >>> auto_n_coeffs(1e-3, 2), auto_n_coeffs(1e-10, 3), auto_n_coeffs(1e-10, 30)
    (12, 32, 8)
    >>> auto_n_coeffs(1e-10, 30, dense_newton=False), auto_n_coeffs(1e-10, 3, dense_newton=False)
    (16, 32)
    """
    digits = -math.log10(max(float(rtol), 1e-16))
    by_tolerance = round(N_BASE + N_PER_DIGIT * digits)
    by_size = N_SIZE // max(n, 1)
    if not dense_newton:
        by_size = max(by_size, N_STIFF_SIZE)
    return int(min(N_MOST, max(N_FEWEST, min(by_tolerance, by_size))))


def length_factors(err, n_coeffs: int, max_factor, *, xp):
    """Growth factors of the segment lengths from scaled error estimates (K,).

    The tail coefficients of a smooth solution scale like ``h^(N-1)``, hence
    ``SAFETY · err^(−1/(N−1))``, clipped to ``[MIN_FACTOR, max_factor]``.
    """
    safe = xp.where((err > 0) & xp.isfinite(err), err, xp.ones_like(err))
    factor = xp.clip(SAFETY * safe ** (-1.0 / (n_coeffs - 1)), MIN_FACTOR, None)
    factor = xp.minimum(factor, max_factor)
    factor = xp.where(err == 0, max_factor * xp.ones_like(err), factor)
    return xp.where(xp.isfinite(err), factor, MIN_FACTOR * xp.ones_like(err))


def limited_factors(coeffs, y_a, y_end, atol, rtol, factors, *, xp):
    """``factors`` (K,) of accepted segments, limited where the solution's nearest
    singularities, read from the coefficients ``coeffs`` (K, n, N), lie close ahead
    (:func:`chebpan._core.singularities.singularity_limits`; the rule's safety and
    smallest factor), and (K,) bools: whether the limit shrinks the length (a length
    that falls below 10 ulp from there has met the singularity).  Single solves call
    it with K = 1."""
    n_coeffs = coeffs.shape[-1]
    limited = singularity_limits(coeffs, y_a, y_end, atol, rtol, factors,
                                 target=SAFETY ** (n_coeffs - 1), min_factor=MIN_FACTOR,
                                 xp=xp)
    return limited, limited < xp.minimum(factors, 1.0)


#: Least order of the error's growth with the length that a measurement between two
#: stiff segments may give (:func:`measured_growth_factor`), the least ratio of their
#: lengths that measures it, and the most rounds of a segment that may grow by it
#: (longer segments cost a Newton iteration that already needs more).
MIN_MEASURED_ORDER = 1.0
MEASURED_GROWTH = 1.2
MEASURED_GROWTH_ROUNDS = 3


def next_length_factor(err: float, n_coeffs: int, max_factor: float = MAX_FACTOR) -> float:
    """Growth factor of the segment length from the scaled error estimate.

    The tail coefficients of a smooth solution scale like ``h^(N-1)``, hence
    ``SAFETY · err^(−1/(N−1))``, clipped to ``[MIN_FACTOR, MAX_FACTOR]``
    (the scalar form of :func:`length_factors`).
    """
    if err == 0.0:
        return max_factor
    if not math.isfinite(err):
        return MIN_FACTOR
    factor = SAFETY * err ** (-1.0 / (n_coeffs - 1))
    return min(max_factor, max(MIN_FACTOR, factor))


def measured_growth_factor(err: float, h: float, last, n_coeffs: int,
                           max_factor: float = MAX_FACTOR) -> float | None:
    """Growth factor of a stiff segment's length from how its error grew with the length.

    The rule of :func:`next_length_factor` assumes the error of a segment grows like
    ``h^(N−1)``; on the stiff basis, where the solution has decayed to a slow
    manifold, it grows far more slowly (Robertson's estimates stay near 6e-5 while
    each segment is 2.2 times the last), and the rule keeps the lengths growing by
    little.  ``err`` and ``h`` are the accepted segment's error estimate and length,
    ``last`` the ``(err, h)`` of the accepted stiff segment before it: the exponent
    measured between them, ``p = log(err / err_last) / log(h / h_last)`` clipped to
    ``[MIN_MEASURED_ORDER, N − 1]``, gives ``SAFETY · err^(−1/p)`` up to
    ``max_factor`` (docs/algorithm.md, "Segment control").  None where nothing was
    measured: no ``last``, a length less than ``MEASURED_GROWTH`` times the last, or
    an error that is zero or not finite.
    """
    if last is None:
        return None
    last_err, last_h = last
    if not (h > MEASURED_GROWTH * last_h and 0 < err < math.inf and 0 < last_err < math.inf):
        return None
    order = math.log(err / last_err) / math.log(h / last_h)
    order = min(max(order, MIN_MEASURED_ORDER), n_coeffs - 1)
    return min(max_factor, SAFETY * err ** (-1.0 / order))


def extrapolated_guess(basis, prev_coeffs, prev_h, h, f_a, *, xp, tau_start=1.0):
    """Initial X for a segment from another segment's polynomial.

    The other polynomial (length ``prev_h``; the new segment starts at its
    reference point ``tau_start``: +1 for the previous segment, −1 for a
    rejected attempt from the same point) has its derivative evaluated on the
    new nodes, and one Picard update turns that into X.  Far outside
    [-1, 1] the high Chebyshev terms blow up (``T_n(τ)`` grows like
    ``(τ + √(τ²−1))^n``), so the series is truncated where its terms,
    evaluated at the far end, are smallest (optimal truncation of an
    asymptotic series).  ``prev_h`` and ``h`` are floats, or arrays (K,)
    with one length per batch member (on NumPy a numba kernel does it,
    ``CHEBPAN_DISABLE_NUMBA=1``: this code).
    """
    kernel = extrapolation_kernel(xp)
    if kernel is not None:
        if isinstance(h, (int, float)):
            prev_h, h = (xp.asarray([float(v)], dtype=xp.float64) for v in (prev_h, h))
        return kernel(basis, prev_coeffs, prev_h, h, f_a, tau_start)
    n = basis.n_coeffs
    tau64 = 1 + xp.astype(basis.tau, xp.float64)
    # New nodes in the other segment's τ; float64 whatever the working dtype,
    # since T_n there can exceed float32's range.
    if isinstance(h, (int, float)):
        slopes = _slopes_at(basis, h / prev_h, tau_start, tau64, xp=xp)  # (N, M)
        half_h = xp.asarray([[h / 2]], dtype=f_a.dtype, device=f_a.device)
        to_time = 2.0 / prev_h
    else:
        tau_prev = tau_start + (h / prev_h)[:, None] * tau64
        _, slopes = chebyshev_values(n, tau_prev, xp=xp)  # (N, K, M)
        slopes = xp.permute_dims(slopes, (1, 0, 2))
        half_h = xp.astype(h / 2, f_a.dtype)[:, None]
        to_time = (2.0 / prev_h)[:, None, None]
    prev_coeffs = xp.astype(prev_coeffs, xp.float64)
    size = xp.max(xp.abs(prev_coeffs), axis=-2) * xp.abs(slopes[..., -1])  # (K, N)
    size = xp.where(xp.arange(n, device=size.device) < 2, xp.inf, size)
    keep = xp.argmin(size, axis=-1)  # (K,)
    mask = xp.astype(xp.arange(n, device=keep.device)[None, :] <= keep[:, None],
                     prev_coeffs.dtype)
    derivative = xp.matmul(prev_coeffs * mask[:, None, :], slopes) * to_time
    derivative = xp.astype(derivative, f_a.dtype)
    return picard_update(basis, f_a, derivative, half_h, xp=xp)


#: ``T_n'`` on the new nodes, by (basis, length ratio, start): consecutive segments
#: of equal length (``max_step`` binding) need the same values every time.
_SLOPES = {}


def _slopes_at(basis, ratio, tau_start, tau64, *, xp):
    """``T_n'(tau_start + ratio (1 + τ_m))``: (N, M), cached for a few recent ratios."""
    key = (id(basis), ratio, tau_start)
    cached = _SLOPES.get(key)
    if cached is not None and cached[0] is basis:
        return cached[1]
    _, slopes = chebyshev_values(basis.n_coeffs, tau_start + ratio * tau64, xp=xp)
    if len(_SLOPES) >= 16:
        _SLOPES.clear()
    _SLOPES[key] = (basis, slopes)  # (the basis kept alive: its id stays its own)
    return slopes


def initial_lengths(f_at, span, y0, f0, scale, *, xp, order=INITIAL_ORDER):
    """scipy's ``select_initial_step`` for K IVPs at once: lengths (K,), float64.

    ``f_at(t, y)`` evaluates ``fun`` at one point per IVP (t (K,), y (K, n)),
    one round; ``span`` has the IVPs' ``t0``, ``tf`` and ``direction`` (±1):
    floats, or float64 arrays (K,) (a span per IVP), as
    :class:`chebpan._control.spans.Spans` keeps them; ``y0``, ``f0`` (K, n),
    ``scale`` the tolerance scale at ``y0``.  ``order`` is only that of the
    heuristic (a moderate one: what follows adapts the segment lengths anyway).  On
    NumPy in float64 a numba kernel does it (``CHEBPAN_DISABLE_NUMBA=1``: this code).
    """
    kernel = initial_lengths_kernel(xp) if y0.dtype == xp.float64 else None
    if kernel is not None:
        return kernel(f_at, span, y0, f0, scale, order)
    t0, direction = span.t0, span.direction
    interval = abs(span.tf - t0)
    d0 = xp.astype(scaled_rms(y0[..., None], scale, xp=xp), xp.float64)
    d1 = xp.astype(scaled_rms(f0[..., None], scale, xp=xp), xp.float64)
    small = (d0 < 1e-5) | (d1 < 1e-5)
    h0 = xp.where(small, 1e-6, 0.01 * d0 / xp.where(small, 1.0, d1))
    h0 = xp.minimum(h0, interval)
    step = xp.astype(direction * h0, y0.dtype)[:, None]
    f1 = f_at(t0 + direction * h0, y0 + step * f0)
    d2 = xp.astype(scaled_rms((f1 - f0)[..., None], scale, xp=xp), xp.float64) / h0
    flat = (d1 <= 1e-15) & (d2 <= 1e-15)
    largest = xp.maximum(d1, d2)
    h1 = xp.where(flat, xp.maximum(xp.full_like(h0, 1e-6), h0 * 1e-3),
                  (0.01 / xp.where(flat, 1.0, largest)) ** (1 / (order + 1)))
    h = xp.minimum(xp.minimum(100 * h0, h1), interval)
    h = xp.where(xp.all(xp.isfinite(f1), axis=1), h, h0)
    # (a zero or NaN length — atol = 0 with a component at zero makes the scaled norms
    # overflow — falls back to scipy's small first step)
    return xp.where(xp.isfinite(h) & (h > 0), h, xp.minimum(xp.full_like(h, 1e-6), interval))


def converged(change, previous, floor, tolerance, *, xp, before=None):
    """Batched convergence test of :meth:`SegmentSolver._converged`: (K,) bools.

    ``change`` is the scaled size of the last update, ``previous`` the one
    before (NaN for none): with a contraction ratio ρ < 1 the remaining
    change is estimated as ``change ρ / (1 − ρ)``.  ``before`` (NaN for none), the
    update before ``previous``, is given after full, fresh Newton steps: where the
    ratios fall (ρ at most ``SUPERLINEAR`` times the ratio before), the convergence
    is quadratic and the estimate ρ times smaller.
    """
    rho = change / xp.where(previous > 0, previous, xp.nan)
    contracting = xp.isfinite(rho) & (rho < 1)
    safe_rho = xp.where(contracting, rho, xp.zeros_like(rho))
    remaining = xp.where(contracting, change * safe_rho / (1 - safe_rho), change)
    if before is not None:
        ratio_before = previous / xp.where(before > 0, before, xp.nan)
        quadratic = contracting & (rho <= SUPERLINEAR * ratio_before)
        remaining = xp.where(quadratic, remaining * safe_rho, remaining)
    return (change <= floor) | (remaining <= tolerance)

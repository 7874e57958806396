"""Scaled sizes of a segment's coefficients: the error estimates that accept or reject it.

``scale = atol + rtol |y|`` per component; norms are RMS over components of the scaled
values (scipy's norm).  docs/algorithm.md, "Error estimate and segment length".
"""

from __future__ import annotations

from .._kernels.dispatch import estimates_kernel, start_gaps_kernel, step_change_kernel

__all__ = ["scaled_rms", "error_estimates", "decay_error_estimates", "tolerance_scale",
           "capped_magnitude", "rounding_floors", "plausible", "segment_estimates",
           "step_change", "start_slope_gap", "start_gaps", "GROWTH_CAP", "ROUNDING_ULPS"]

#: A segment's values count in its tolerance scale and rounding floor up to this
#: many times the largest component of its start: a diverging iterate cannot
#: inflate either beyond that and so pass the tests it fails.
GROWTH_CAP = 100.0
#: Rounding floor of the convergence test, in units of eps·max|y|.
ROUNDING_ULPS = 64.0


def capped_magnitude(y_start, values, *, xp):
    """``max(|y_start|, min(|values|, GROWTH_CAP · max_i |y_start_i|))``, elementwise.

    ``y_start`` (K, n) is a segment's start, ``values`` (K, n) magnitudes found
    on the segment by the iteration (its end value, the largest node value):
    they count only up to :data:`GROWTH_CAP` times the start's largest
    component, so that a diverging iterate cannot loosen the tests that judge
    it (docs/algorithm.md, "Acceptance a diverging iterate cannot pass").
    """
    start = xp.abs(y_start)
    if start.shape[-1] == 0:
        return start
    cap = GROWTH_CAP * xp.max(start, axis=-1, keepdims=True)
    return xp.maximum(start, xp.minimum(xp.abs(values), cap))


def plausible(coeffs, size, *, xp):
    """Whether each polynomial stays within ``GROWTH_CAP · size``: (K,) bools.

    ``coeffs`` (K, n, N) are Chebyshev coefficients (``Σ_q |c_q|`` bounds the
    polynomial on [-1, 1]), ``size`` (K,) the segment's size
    (:func:`chebpan._core.newton.residual_size`).  A rejected attempt that is
    not plausible (an iterate that diverged, or a spurious root of the
    collocation equations) is no start for the next attempt.
    """
    if coeffs.shape[-2] == 0:
        return xp.ones(coeffs.shape[:1], dtype=xp.bool, device=coeffs.device)
    bound = xp.max(xp.sum(xp.abs(coeffs), axis=-1), axis=-1)
    return bound <= GROWTH_CAP * size


def tolerance_scale(atol, rtol, y_start, *values, xp):
    """``atol + rtol max(|y_start|, |values| capped)``: the scale of errors and changes.

    Never below the dtype's smallest normal number (``atol = 0`` and a zero component).

    ``values`` (the iterate's end value) count through
    :func:`capped_magnitude`; with none, the scale of ``y_start`` itself.
    """
    magnitude = xp.abs(y_start)
    for v in values:
        magnitude = xp.maximum(magnitude, capped_magnitude(y_start, v, xp=xp))
    # (at least the smallest normal number: with atol = 0, a component that is exactly
    # zero would give 0/0 in every scaled norm; a zero change is then no error, any
    # other change a huge one)
    return xp.maximum(atol + rtol * magnitude, xp.finfo(magnitude.dtype).smallest_normal)


def rounding_floors(y_start, y_nodes, scale, eps, *, xp):
    """The convergence test's rounding floor of each instance: (K,), scaled.

    Node values are known to ``eps`` times their size, so an update cannot be
    resolved below ``ROUNDING_ULPS · eps · max |y_m| / scale``; the node values
    count through :func:`capped_magnitude`.
    """
    if y_nodes.shape[-2] == 0:
        return xp.zeros(y_nodes.shape[:1], dtype=y_nodes.dtype, device=y_nodes.device)
    size = capped_magnitude(y_start, xp.max(xp.abs(y_nodes), axis=-1), xp=xp) / scale
    return ROUNDING_ULPS * eps * xp.max(size, axis=-1)


def scaled_rms(delta, scale, *, xp):
    """RMS over components of ``max_m |delta| / scale``: ``delta`` (K, n, M) → (K,)."""
    if delta.shape[-2] == 0:
        return xp.zeros(delta.shape[:1], dtype=delta.dtype, device=delta.device)
    per_component = xp.max(xp.abs(delta), axis=-1) / scale
    return xp.sqrt(xp.mean(per_component * per_component, axis=-1))


def error_estimates(coeffs, scale, *, xp):
    """Scaled truncation-error estimate of each batch member: (K,).

    ``|c_{N-2}| + |c_{N-1}|`` per component, divided by ``atol + rtol |y|``,
    RMS over components (scipy's norm).
    """
    if coeffs.shape[-2] == 0:
        return xp.zeros(coeffs.shape[:1], dtype=coeffs.dtype, device=coeffs.device)
    tail = xp.abs(coeffs[..., -1]) + xp.abs(coeffs[..., -2])
    ratio = tail / scale
    return xp.sqrt(xp.mean(ratio * ratio, axis=-1))


def decay_error_estimates(coeffs, scale, *, xp):
    """Tail estimate of each batch member from the decay of its coefficients: (K,).

    When a segment is short, its last coefficients sit at the rounding floor
    and say nothing about how much longer the segment could be.  Fitting
    ``log(|c_2k| + |c_2k+1|)`` (scaled, max over components) by a line over
    the pairs above the floor and reading the line at the last pair gives
    the tail that the decay rate predicts.  Pairs keep odd/even functions
    (whose every other coefficient vanishes) from breaking the fit.  NaN
    where the fit says nothing (fewer than three pairs above the floor with
    the last one among them, or no decay).
    """
    k, n, n_coeffs = coeffs.shape
    nan = xp.full((k,), xp.nan, dtype=coeffs.dtype, device=coeffs.device)
    if n == 0 or n_coeffs < 8:
        return nan
    eps = float(xp.finfo(coeffs.dtype).eps)
    scaled = xp.max(xp.abs(coeffs) / scale[..., None], axis=1)  # (K, N)
    n_pairs = n_coeffs // 2
    pairs = xp.sum(xp.reshape(scaled[:, 2:2 * n_pairs], (k, n_pairs - 1, 2)), axis=-1)
    floor = 100 * eps * xp.max(scaled, axis=-1)
    above = pairs > floor[:, None]
    mask = xp.astype(above, pairs.dtype)
    count = xp.sum(mask, axis=-1)
    safe_count = xp.maximum(count, xp.ones_like(count))
    j = xp.astype(xp.arange(1, n_pairs, device=pairs.device), pairs.dtype)
    log_pairs = xp.log(xp.where(above, pairs, xp.ones_like(pairs)))
    j_mean = xp.sum(mask * j, axis=-1) / safe_count
    log_mean = xp.sum(mask * log_pairs, axis=-1) / safe_count
    centred = mask * (j - j_mean[:, None])
    spread = xp.sum(centred * centred, axis=-1)
    slope = (xp.sum(centred * (log_pairs - log_mean[:, None]), axis=-1)
             / xp.where(spread > 0, spread, xp.ones_like(spread)))
    fitted = xp.where(slope < 0, xp.exp(log_mean + slope * (n_pairs - 1 - j_mean)), nan)
    # (Almost) nothing above rounding: a low-degree polynomial, which says
    # only that the segment can be much longer.
    low = (count == 0) | (pairs[:, -1] <= floor)
    few = xp.where(low, xp.zeros_like(nan), nan)
    return xp.where(count < 3, few, fitted)


def segment_estimates(coeffs, y_a, y_end, atol, rtol, *, xp):
    """Both error estimates of ended attempts: ``(err, predicted)``, each (K,).

    ``coeffs`` (K, n, N) are the attempts' coefficients, ``y_a``, ``y_end`` (K, n)
    their start and end values: the scale is :func:`tolerance_scale` of the two,
    ``err`` the :func:`error_estimates` (which accepts or rejects), ``predicted`` the
    :func:`decay_error_estimates` (NaN where the decay says nothing).  On NumPy a
    numba kernel does all of it in one call (``CHEBPAN_DISABLE_NUMBA=1``: this code).
    """
    kernel = estimates_kernel(xp)
    if kernel is not None:
        return kernel(coeffs, y_a, y_end, atol, rtol, GROWTH_CAP)
    scale = tolerance_scale(atol, rtol, y_a, y_end, xp=xp)
    return error_estimates(coeffs, scale, xp=xp), decay_error_estimates(coeffs, scale, xp=xp)


def start_slope_gap(basis, coeffs, f_a, half_h, *, xp):
    """``τ₁ (p'(t_a) − f_a)`` of each attempt: (K, n).

    ``p`` is the polynomial of ``coeffs`` (K, n, N) on a segment of half-length
    ``half_h`` (K, 1), ``τ₁`` the time from ``t_a`` to the first node after it.  The
    stiff basis fits ``f`` at the nodes after ``t_a`` only, so a jump of ``f`` between
    ``t_a`` and the first node leaves its coefficients smooth: this gap is where it shows
    (docs/algorithm.md, "Stiff segments").  ``T_q'(−1)`` is the basis' ``dt_minus1``.
    """
    slope = xp.sum(coeffs * basis.dt_minus1, axis=-1) / half_h
    return half_h * basis.first_node_offset * (slope - f_a)


def start_gaps(basis, coeffs, y_a, y_end, f_a, half_h, atol, rtol, *, xp):
    """:func:`start_slope_gap` (K, n) and its size (K,): the :func:`scaled_rms` with the
    :func:`tolerance_scale` of ``y_a`` and ``y_end`` (K, n).  On NumPy a numba kernel
    does both in one call (``CHEBPAN_DISABLE_NUMBA=1``: this code)."""
    kernel = start_gaps_kernel(xp)
    if kernel is not None:
        return kernel(basis, coeffs, y_a, y_end, f_a, half_h, atol, rtol, GROWTH_CAP)
    gap = start_slope_gap(basis, coeffs, f_a, half_h, xp=xp)
    scale = tolerance_scale(atol, rtol, y_a, y_end, xp=xp)
    return gap, scaled_rms(gap[..., None], scale, xp=xp)


def step_change(basis, y_a, y_nodes, step, atol, rtol, eps, *, xp):
    """How far a step moves an iterate's node values, and that move's rounding floor.

    ``step`` (K, n, n_free) is a change of X (a Newton direction), ``y_nodes``
    (K, n, M) the iterate's node values: returns ``change`` (K,), the
    :func:`scaled_rms` of the node values' change ``step Φ̃`` with the scale of
    :func:`tolerance_scale` (from ``y_a`` and ``y(t_b)``), ``floor`` (K,),
    :func:`rounding_floors` there, and the change ``step Φ̃`` itself (K, n, M).  On
    NumPy a numba kernel does it in one call (``CHEBPAN_DISABLE_NUMBA=1``: this code).
    """
    kernel = step_change_kernel(xp)
    if kernel is not None:
        return kernel(basis, y_a, y_nodes, step, atol, rtol, GROWTH_CAP, ROUNDING_ULPS * eps)
    scale = tolerance_scale(atol, rtol, y_a, y_nodes[..., -1], xp=xp)
    moved = xp.matmul(step, basis.phi_tilde)
    return (scaled_rms(moved, scale, xp=xp), rounding_floors(y_a, y_nodes, scale, eps, xp=xp),
            moved)

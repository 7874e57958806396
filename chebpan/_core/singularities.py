"""How long the next segment may be, from where the solution's nearest singularities lie.

The truncation-error rule (:func:`chebpan._control.policy.length_factors`) assumes that
the tail coefficients scale like ``h^(N−1)`` — that the nearest complex singularity of
the solution stays as far away, relative to the segment, as now.  Near a fast phase (a
singularity close to the real axis ahead) the next segment runs into it: its
coefficients decay far more slowly than the rule predicts and its iteration fails.

The Chebyshev coefficients of a function with a singularity at ``w`` (in the segment's
τ) decay like ``ζ^q`` with ``w = (1/ζ + ζ)/2`` (the Bernstein ellipse through ``w`` has
parameter ``ρ = 1/|ζ|``).  A least-squares fit of the recurrence
``c_{q+2} = a c_{q+1} + b c_q`` to each component's last coefficients above rounding
gives ζ as the roots of ``z² − a z − b`` (a complex pair: one pair of singularities;
two real roots: one ahead and one behind, with amplitudes from a second fit).  The tail
of a next segment ``f`` times as long, with the same singularities, is then predicted
from the ellipse through each singularity seen from that segment, and the longest ``f``
(up to the rule's) whose predicted error stays within the target is returned.
docs/algorithm.md, "Error estimate and segment length".
"""

from __future__ import annotations

from .._kernels.dispatch import singularity_kernel
from .estimates import GROWTH_CAP, tolerance_scale

__all__ = ["singularity_limits", "WINDOW", "FLOOR_ULPS", "FIT_RESIDUAL", "TRIALS"]

#: The fit uses the last ``WINDOW`` coefficients (from ``c_2``) before the first one at
#: ``FLOOR_ULPS · eps`` times the largest; at least ``MIN_FITTED`` of them (fewer, after
#: a fast decay, fit a pseudo-singularity: so segments of N ≤ 8 are not read).
WINDOW = 10
FLOOR_ULPS = 1e4
MIN_FITTED = 7
#: Columns of a least-squares fit with a Gram determinant below this fraction of the
#: product of their norms² count as dependent.
DEPENDENT = 1e-12
#: Largest weighted RMS misfit of the recurrence for the fit to count.
FIT_RESIDUAL = 0.1
#: Trial lengths, geometric from ``min_factor`` to the rule's factor.
TRIALS = 24


def singularity_limits(coeffs, y_a, y_end, atol, rtol, rule, *, target, min_factor, xp):
    """Growth factors of the next lengths limited by the segments' singularities: (K,).

    Parameters
    ----------
    coeffs : array, shape (K, n, N)
        Accepted segments' Chebyshev coefficients.
    y_a, y_end : arrays, shape (K, n)
        Their start and end values (the tolerance scale, as in
        :func:`chebpan._core.estimates.segment_estimates`).
    atol, rtol : float or array, shape (n,)
    rule : array, shape (K,)
        The truncation-error rule's factors; the result is at most these.
    target : float
        Scaled tail to stay within (the rule's ``SAFETY^(N−1)``).
    min_factor : float
        Smallest factor returned (the rule's ``MIN_FACTOR``).

    Returns
    -------
    array, shape (K,), float64
        ``rule`` where no component's recurrence fits (then nothing is known beyond
        the rule), else the longest trial factor before the first whose predicted
        error exceeds ``target``.

    On NumPy in float64 a numba kernel does it (``CHEBPAN_DISABLE_NUMBA=1``: this code).
    """
    rule = xp.astype(rule, xp.float64)
    kernel = singularity_kernel(xp) if coeffs.dtype == xp.float64 else None
    if kernel is not None:
        return kernel(coeffs, y_a, y_end, atol, rtol, rule, growth_cap=GROWTH_CAP,
                      target=target, min_factor=min_factor, n_trials=TRIALS, window=WINDOW,
                      min_fitted=MIN_FITTED,
                      floor_ulps=FLOOR_ULPS, fit_residual=FIT_RESIDUAL,
                      dependent=DEPENDENT)
    k_count, n, n_coeffs = coeffs.shape
    if n == 0 or k_count == 0:
        return rule
    f64 = xp.float64
    scale = xp.astype(tolerance_scale(atol, rtol, y_a, y_end, xp=xp), f64)
    c = xp.astype(coeffs, f64) / scale[..., None]  # (K, n, N)
    tails = xp.abs(c[..., -1]) + xp.abs(c[..., -2])  # (K, n)
    eps = float(xp.finfo(f64).eps)
    floor = FLOOR_ULPS * eps * xp.max(xp.reshape(xp.abs(c), (k_count, -1)), axis=-1)
    s = c[..., 2:]  # (K, n, S): s[j] is coefficient j + 2
    count = s.shape[-1]
    index = xp.arange(count, device=s.device)
    above = xp.abs(s) > floor[:, None, None]
    last = xp.min(xp.where(above, count, index), axis=-1)  # (K, n): leading run
    first = xp.maximum(last - WINDOW, 0)
    fitted = (last - first) >= MIN_FITTED

    # The recurrence s[j+2] = a s[j+1] + b s[j], each row divided by its largest |s|;
    # where the two columns are dependent, one geometric sequence (b = 0).
    j = index[:count - 2]
    rows = (j >= first[..., None]) & (j + 2 < last[..., None])
    s0, s1, s2 = s[..., :-2], s[..., 1:-1], s[..., 2:]
    big = xp.maximum(xp.maximum(xp.abs(s0), xp.abs(s1)), xp.abs(s2))
    weight = xp.where(rows, 1.0 / xp.where(big > 0, big, 1.0), 0.0)
    u, v, r = weight * s1, weight * s0, weight * s2
    saa, sab, sbb = (xp.sum(p * q, axis=-1) for p, q in ((u, u), (u, v), (v, v)))
    sar, sbr = xp.sum(u * r, axis=-1), xp.sum(v * r, axis=-1)
    det = saa * sbb - sab * sab
    two_terms = det > DEPENDENT * (saa * sbb)
    safe_det = xp.where(two_terms, det, 1.0)
    a = xp.where(two_terms, (sar * sbb - sbr * sab) / safe_det,
                 sar / xp.where(saa > 0, saa, 1.0))
    b = xp.where(two_terms, (sbr * saa - sar * sab) / safe_det, 0.0)
    misfit = weight * (a[..., None] * s1 + b[..., None] * s0 - s2)
    n_rows = xp.astype(xp.maximum(last - 2 - first, 1), f64)
    fitted = fitted & (xp.sqrt(xp.sum(misfit * misfit, axis=-1) / n_rows) <= FIT_RESIDUAL)

    disc = a * a + 4.0 * b
    pair = disc < 0
    single = ~pair & (b == 0.0)
    # Roots: a complex pair |ζ| e^{±iθ}, two real ones, or one (b = 0).
    size = xp.sqrt(xp.where(pair, -b, 1.0))
    theta = xp.atan2(xp.sqrt(xp.where(pair, -disc, 0.0)), a)
    root = xp.sqrt(xp.where(pair, 0.0, disc))
    z1 = xp.where(single, a, 0.5 * (a + root))
    z2 = xp.where(single, 0.0, 0.5 * (a - root))
    inside = lambda z: (xp.abs(z) > 0) & (xp.abs(z) < 1)  # noqa: E731
    usable = fitted & xp.where(pair, inside(size), inside(z1) & (single | inside(z2)))
    z1 = xp.where(usable & ~pair, z1, 0.5)
    z2 = xp.where(usable & ~pair & ~single, z2, 0.0)
    size = xp.where(usable & pair, size, 0.5)
    # Amplitudes by least squares over the window: s ≈ A1 g1 + A2 g2.
    window = xp.astype((index >= first[..., None]) & (index < last[..., None]), f64)
    powers = xp.astype(index + 2, f64)
    pair_scale = size[..., None] ** powers
    g1 = xp.where(pair[..., None], pair_scale * xp.cos(theta[..., None] * powers),
                  z1[..., None] ** powers)
    g2 = xp.where(pair[..., None], pair_scale * xp.sin(theta[..., None] * powers),
                  z2[..., None] ** powers)
    g1, g2 = window * g1, window * g2
    p11, p12, p22 = (xp.sum(p * q, axis=-1) for p, q in ((g1, g1), (g1, g2), (g2, g2)))
    q1, q2 = xp.sum(g1 * s, axis=-1), xp.sum(g2 * s, axis=-1)
    det2 = p11 * p22 - p12 * p12
    both = det2 > DEPENDENT * (p11 * p22)
    safe_det2 = xp.where(both, det2, 1.0)
    amp1 = xp.where(both, (q1 * p22 - q2 * p12) / safe_det2, q1 / xp.where(p11 > 0, p11, 1.0))
    amp2 = xp.where(both, (q2 * p11 - q1 * p12) / safe_det2, 0.0)
    decay = lambda z: xp.abs(z) ** (n_coeffs - 2) * (1.0 + xp.abs(z))  # noqa: E731
    share1 = xp.where(pair, xp.sqrt(amp1 * amp1 + amp2 * amp2) * decay(size),
                      xp.abs(amp1) * decay(z1))
    share2 = xp.where(pair | single, 0.0, xp.abs(amp2) * decay(z2))
    total = share1 + share2
    shrink = xp.where(total > tails, tails / xp.where(total > 0, total, 1.0), 1.0)
    safe_z2 = xp.where(z2 != 0, z2, 0.5)
    zero = xp.zeros_like(a)
    modes = [
        (xp.where(pair, size, xp.abs(z1)),
         xp.where(pair, 0.5 * (1.0 / size + size) * xp.cos(theta), 0.5 * (1.0 / z1 + z1)),
         xp.where(pair, 0.5 * (size - 1.0 / size) * xp.sin(theta), zero),
         share1 * shrink),
        (xp.abs(safe_z2), 0.5 * (1.0 / safe_z2 + safe_z2), zero, share2 * shrink),
    ]
    tracked = usable  # (K, n)

    # Predicted scaled tail of next segments `factors` times as long: (K, G).
    spread = xp.log(xp.maximum(rule, min_factor) / min_factor)
    steps = xp.astype(xp.arange(TRIALS, device=s.device), f64) / (TRIALS - 1)
    factors = min_factor * xp.exp(spread[:, None] * steps[None, :])  # (K, G)
    factors = xp.where(steps == 1.0, xp.maximum(rule, min_factor)[:, None], factors)
    f = factors[:, None, :]  # (K, 1, G)
    predicted = xp.zeros((k_count, n, TRIALS), dtype=f64, device=s.device)
    for size_m, x_m, y_m, share_m in modes:
        x_next = (x_m[..., None] - 1.0) / f - 1.0
        y_next = y_m[..., None] / f
        alpha = 0.5 * (xp.sqrt((x_next - 1.0) ** 2 + y_next ** 2)
                       + xp.sqrt((x_next + 1.0) ** 2 + y_next ** 2))
        rho = alpha + xp.sqrt(xp.maximum(alpha * alpha - 1.0, 0.0))
        predicted = predicted + share_m[..., None] / (size_m[..., None] * rho) ** (n_coeffs - 1)
    untracked = tails[..., None] * f ** (n_coeffs - 1)
    predicted = xp.where(tracked[..., None], predicted, untracked)
    err = xp.sqrt(xp.mean(predicted * predicted, axis=1))  # (K, G)
    trials = xp.arange(TRIALS, device=s.device)
    first_fail = xp.min(xp.where(err > target, trials, TRIALS), axis=-1)  # (K,)
    # (factors increase along G: the largest before the first failure)
    best = xp.max(xp.where(trials[None, :] < first_fail[:, None], factors, min_factor), axis=-1)
    active = xp.any(tracked, axis=-1) & (rule > min_factor)
    return xp.where(active, xp.minimum(rule, best), rule)

"""The length limit from the nearest singularities
(:func:`chebpan._core.singularities.singularity_limits`) as a numba kernel.

One pass per accepted segment instead of some sixty small array operations: the fit of
each component's coefficient recurrence, its singularities, and the predicted tail of
next segments of every trial length.  Imported lazily, for NumPy arrays only.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .estimates_numba import capped_scales, per_component

__all__ = ["singularity_limits"]


@numba.njit(cache=True)
def _weight(s, j):
    return 1.0 / max(abs(s[j]), abs(s[j + 1]), abs(s[j + 2]))


@numba.njit(cache=True)
def _recurrence(s, first, last, fit_residual, dependent, weights):
    # Weighted least squares of s[j+2] = a s[j+1] + b s[j] (rows first ≤ j, j+2 < last,
    # each divided by its largest |s|); (a, b, fitted).  When the two columns are
    # (nearly) dependent, a single geometric sequence: s[j+1] = a s[j], b = 0.
    # weights: scratch of len(s), the rows' weights.
    saa = sab = sbb = sar = sbr = 0.0
    for j in range(first, last - 2):
        w = _weight(s, j)
        weights[j] = w
        u, v, r = w * s[j + 1], w * s[j], w * s[j + 2]
        saa += u * u
        sab += u * v
        sbb += v * v
        sar += u * r
        sbr += v * r
    det = saa * sbb - sab * sab
    if det > dependent * (saa * sbb):
        a = (sar * sbb - sbr * sab) / det
        b = (sbr * saa - sar * sab) / det
    else:
        a, b = (sar / saa if saa > 0 else 0.0), 0.0
    total = 0.0
    for j in range(first, last - 2):
        miss = weights[j] * (a * s[j + 1] + b * s[j] - s[j + 2])
        total += miss * miss
    return a, b, math.sqrt(total / (last - 2 - first)) <= fit_residual


@numba.njit(cache=True)
def _amplitudes(s, first, last, g1, g2, dependent):
    # Least squares s[j] ≈ A1 g1[j] + A2 g2[j] over the window (g2 zero: A2 = 0).
    p11 = p12 = p22 = q1 = q2 = 0.0
    for j in range(first, last):
        p11 += g1[j] * g1[j]
        p12 += g1[j] * g2[j]
        p22 += g2[j] * g2[j]
        q1 += g1[j] * s[j]
        q2 += g2[j] * s[j]
    det = p11 * p22 - p12 * p12
    if det > dependent * (p11 * p22):
        return (q1 * p22 - q2 * p12) / det, (q2 * p11 - q1 * p12) / det
    return (q1 / p11 if p11 > 0 else 0.0), 0.0


@numba.njit(cache=True)
def _modes(s, first, last, n_coeffs, tail, fit_residual, dependent, modes, g1, g2):
    # The recurrence's roots ζ as singularities w = (1/ζ + ζ)/2 in the segment's τ:
    # modes[m] = (|ζ|, Re w, Im w, the mode's share of the tail); returns their number
    # (0: no usable fit).  g1, g2: scratch of len(s).
    a, b, fitted = _recurrence(s, first, last, fit_residual, dependent, g1)
    if not fitted:
        return 0
    disc = a * a + 4.0 * b
    if disc < 0:  # a complex pair |ζ| e^{±iθ}: one mode
        size = math.sqrt(-b)
        if not 0.0 < size < 1.0:
            return 0
        theta = math.atan2(math.sqrt(-disc), a)
        # ζ^(j+2) by successive products from the window's first power
        step = complex(size * math.cos(theta), size * math.sin(theta))
        power = size ** (first + 2) * complex(math.cos(theta * (first + 2)),
                                              math.sin(theta * (first + 2)))
        for j in range(first, last):
            g1[j] = power.real
            g2[j] = power.imag
            power *= step
        amp1, amp2 = _amplitudes(s, first, last, g1, g2, dependent)
        modes[0, 0] = size
        modes[0, 1] = 0.5 * (1.0 / size + size) * math.cos(theta)
        modes[0, 2] = 0.5 * (size - 1.0 / size) * math.sin(theta)
        modes[0, 3] = math.hypot(amp1, amp2) * size ** (n_coeffs - 2) * (1.0 + size)
        count = 1
    else:  # real roots, or one (b = 0): singularities on the real axis
        count = 1 if b == 0.0 else 2
        root = math.sqrt(disc)
        z1, z2 = (0.5 * (a + root), 0.5 * (a - root)) if count == 2 else (a, 0.0)
        if not 0.0 < abs(z1) < 1.0 or (count == 2 and not 0.0 < abs(z2) < 1.0):
            return 0
        power1 = z1 ** (first + 2)
        power2 = z2 ** (first + 2) if count == 2 else 0.0
        for j in range(first, last):
            g1[j] = power1
            g2[j] = power2
            power1 *= z1
            power2 *= z2
        amp1, amp2 = _amplitudes(s, first, last, g1, g2, dependent)
        for m, (z, amp) in enumerate(((z1, amp1), (z2, amp2))):
            if m < count:
                modes[m, 0] = abs(z)
                modes[m, 1] = 0.5 * (1.0 / z + z)
                modes[m, 2] = 0.0
                modes[m, 3] = abs(amp) * abs(z) ** (n_coeffs - 2) * (1.0 + abs(z))
    # The modes' tails together at most the segment's tail (the fit extrapolates the
    # window; near rounding the tail itself is the measured one).
    total = modes[0, 3] + (modes[1, 3] if count == 2 else 0.0)
    if total > tail:
        for m in range(count):
            modes[m, 3] *= tail / total
    return count


@numba.njit(cache=True)
def _ellipse(x, y):
    # ρ of the Bernstein ellipse through x + iy: α + √(α² − 1), α the half sum of
    # the distances to the foci ±1.
    alpha = 0.5 * (math.hypot(x - 1.0, y) + math.hypot(x + 1.0, y))
    return alpha + math.sqrt(max(alpha * alpha - 1.0, 0.0))


@numba.njit(cache=True)
def _trial_factor(min_factor, spread, trial, n_trials):
    # Trial `trial` of the geometric sequence from min_factor to min_factor·e^spread.
    return min_factor * math.exp(spread * trial / (n_trials - 1))


@numba.njit(cache=True)
def _predicted(tails, counts, modes, n_coeffs, factor):
    # The scaled RMS tail predicted for a next segment `factor` times as long.
    n = tails.shape[0]
    total = 0.0
    for i in range(n):
        if counts[i] == 0:
            tail = tails[i] * factor ** (n_coeffs - 1)
        else:
            tail = 0.0
            for m in range(counts[i]):
                # the singularity in the next segment's τ: (w − 1)/factor − 1
                rho = _ellipse((modes[i, m, 1] - 1.0) / factor - 1.0,
                               modes[i, m, 2] / factor)
                tail += modes[i, m, 3] / (modes[i, m, 0] * rho) ** (n_coeffs - 1)
        total += tail * tail
    return math.sqrt(total / n)


@numba.njit(cache=True)
def _limits(coeffs, y_a, y_end, atol, rtol, growth_cap, eps, rule, target, min_factor,
            n_trials, window, min_fitted, floor_ulps, fit_residual, dependent, limits):
    k_count, n, n_coeffs = coeffs.shape
    scale = np.empty(n)
    scaled = np.empty(n_coeffs)
    tails = np.empty(n)
    counts = np.zeros(n, dtype=np.int64)
    modes = np.empty((n, 2, 4))
    g1 = np.empty(n_coeffs)
    g2 = np.empty(n_coeffs)
    for k in range(k_count):
        limits[k] = rule[k]
        if not rule[k] > min_factor:
            continue
        capped_scales(y_a[k], y_end[k], atol, rtol, growth_cap, scale)
        largest = 0.0
        for i in range(n):
            for q in range(n_coeffs):
                largest = max(largest, abs(coeffs[k, i, q]) / scale[i])
        floor = floor_ulps * eps * largest
        tracked = 0
        for i in range(n):
            for q in range(n_coeffs):
                scaled[q] = coeffs[k, i, q] / scale[i]
            tails[i] = abs(scaled[n_coeffs - 1]) + abs(scaled[n_coeffs - 2])
            # The coefficients from 2 on, up to the first one at the rounding
            # floor; the last `window` of them.
            last = 0
            while last < n_coeffs - 2 and abs(scaled[last + 2]) > floor:
                last += 1
            first = max(0, last - window)
            counts[i] = 0
            if last - first >= min_fitted:
                counts[i] = _modes(scaled[2:], first, last, n_coeffs, tails[i],
                                   fit_residual, dependent, modes[i], g1, g2)
            tracked += counts[i] > 0
        if tracked == 0:
            continue
        # The longest trial length (geometric from min_factor to the rule) before
        # the first whose predicted error exceeds the target: the predicted error
        # grows with the length (a longer next segment lies closer to every
        # singularity), so a bisection finds the first failure.
        spread = math.log(rule[k] / min_factor)
        if _predicted(tails, counts, modes, n_coeffs, rule[k]) <= target:
            best = rule[k]
        else:
            passed, failed = -1, n_trials - 1
            while failed - passed > 1:
                middle = (passed + failed) // 2
                factor = _trial_factor(min_factor, spread, middle, n_trials)
                if _predicted(tails, counts, modes, n_coeffs, factor) <= target:
                    passed = middle
                else:
                    failed = middle
            best = (min_factor if passed < 0
                    else _trial_factor(min_factor, spread, passed, n_trials))
        limits[k] = min(rule[k], best)


def singularity_limits(coeffs, y_a, y_end, atol, rtol, rule, *, growth_cap, target,
                       min_factor, n_trials, window, min_fitted, floor_ulps, fit_residual,
                       dependent):
    """As :func:`chebpan._core.singularities.singularity_limits` (which calls it for
    NumPy arrays in float64)."""
    k_count, n, _ = coeffs.shape
    limits = np.empty(k_count)
    rule = np.ascontiguousarray(rule, dtype=np.float64).reshape(k_count)
    if n == 0:
        limits[:] = rule
        return limits
    _limits(np.ascontiguousarray(coeffs, dtype=np.float64),
            np.ascontiguousarray(y_a, dtype=np.float64),
            np.ascontiguousarray(y_end, dtype=np.float64),
            per_component(atol, n, np.float64), per_component(rtol, n, np.float64),
            float(growth_cap), float(np.finfo(np.float64).eps), rule, float(target),
            float(min_factor), int(n_trials), int(window), int(min_fitted), float(floor_ulps),
            float(fit_residual), float(dependent), limits)
    return limits

"""The error estimates of ended attempts (:func:`chebpan._core.estimates.segment_estimates`)
and the change of node values under a step (:func:`chebpan._core.estimates.step_change`)
as numba kernels.

One pass per instance: the tolerance scale from the start and the end value, the tail
estimate and the fit of the coefficients' decay, instead of some forty small array
operations per attempt (a single solve ends one attempt per segment, a batch many per
round).  Imported lazily, for NumPy arrays only.
"""

from __future__ import annotations

import math

import numba
import numpy as np


__all__ = ["segment_estimates", "step_change", "start_gaps", "per_component",
           "scaled_rms", "capped_scales", "scaled_change"]


#: float64's smallest normal number: the floor of a tolerance scale.
SMALLEST_NORMAL = float(np.finfo(np.float64).smallest_normal)


def per_component(tolerance, n, dtype):
    """A tolerance (scalar or (n,)) as a contiguous (n,) array of ``dtype``."""
    tolerance = np.asarray(tolerance, dtype=dtype)
    if tolerance.ndim == 0:
        return np.full(n, tolerance, dtype=dtype)
    return np.ascontiguousarray(tolerance)


@numba.njit(cache=True, error_model="numpy")
def scaled_rms(values, scale):
    """RMS over components of ``values / scale`` (n,) of one instance (as
    :func:`chebpan._core.estimates.scaled_rms` of one node)."""
    total = 0.0
    for i in range(values.shape[0]):
        ratio = abs(values[i]) / scale[i]
        total += ratio * ratio
    return math.sqrt(total / values.shape[0])


@numba.njit(cache=True)
def capped_scales(y_start, y_end, atol, rtol, growth_cap, scale):
    """``scale = atol + rtol max(|y_start|, min(|y_end|, cap))`` of one instance (n,),
    at least float64's smallest normal number (as
    :func:`chebpan._core.estimates.tolerance_scale`), ``cap`` (returned) being
    ``growth_cap`` times the start's largest component."""
    n = y_start.shape[0]
    cap = 0.0
    for i in range(n):
        cap = max(cap, abs(y_start[i]))
    cap *= growth_cap
    for i in range(n):
        scale[i] = max(atol[i] + rtol[i] * max(abs(y_start[i]), min(abs(y_end[i]), cap)),
                       SMALLEST_NORMAL)
    return cap


@numba.njit(cache=True)
def scaled_change(y_start, y_nodes, moved_nodes, scale, cap):
    """One instance's change and size: the RMS over components of ``max_m |moved| /
    scale``, and the largest ``max(|y_start|, min(max_m |y_m|, cap)) / scale``."""
    n, n_nodes = y_nodes.shape
    total = 0.0
    worst = 0.0
    for i in range(n):
        biggest = 0.0
        largest_y = 0.0
        for m in range(n_nodes):
            moved = abs(moved_nodes[i, m])
            if moved > biggest or moved != moved:  # (NaN propagates, as in NumPy's max)
                biggest = moved
            largest_y = max(largest_y, abs(y_nodes[i, m]))
        ratio = biggest / scale[i]
        total += ratio * ratio
        worst = max(worst, max(abs(y_start[i]), min(largest_y, cap)) / scale[i])
    return math.sqrt(total / n), worst


@numba.njit(cache=True, error_model="numpy")
def _estimates(coeffs, y_a, y_end, atol, rtol, growth_cap, eps, err, predicted):
    k_count, n, n_coeffs = coeffs.shape
    scale = np.empty(n)
    scaled = np.empty(n_coeffs)
    n_pairs = n_coeffs // 2
    pairs = np.empty(max(n_pairs - 1, 0))
    for k in range(k_count):
        capped_scales(y_a[k], y_end[k], atol, rtol, growth_cap, scale)
        total = 0.0
        for i in range(n):
            ratio = (abs(coeffs[k, i, n_coeffs - 1]) + abs(coeffs[k, i, n_coeffs - 2])) / scale[i]
            total += ratio * ratio
        err[k] = math.sqrt(total / n)
        predicted[k] = math.nan
        if n_coeffs < 8:
            continue
        # log(|c_2j| + |c_2j+1|) (max over components, scaled) fitted by a line in j
        # over the pairs above the rounding floor, read at the last pair.
        largest = 0.0
        for q in range(n_coeffs):
            biggest = 0.0
            for i in range(n):
                value = abs(coeffs[k, i, q]) / scale[i]
                if value > biggest or value != value:
                    biggest = value
            scaled[q] = biggest
            if biggest > largest or biggest != biggest:
                largest = biggest
        floor = 100.0 * eps * largest
        count = 0
        j_sum = 0.0
        log_sum = 0.0
        for p in range(n_pairs - 1):
            pairs[p] = scaled[2 + 2 * p] + scaled[3 + 2 * p]
            if pairs[p] > floor:
                count += 1
                j_sum += p + 1
                log_sum += math.log(pairs[p])
        if count < 3:
            if count == 0 or pairs[n_pairs - 2] <= floor:
                predicted[k] = 0.0  # (almost) nothing above rounding
            continue
        j_mean = j_sum / count
        log_mean = log_sum / count
        spread = 0.0
        covariance = 0.0
        for p in range(n_pairs - 1):
            if pairs[p] > floor:
                centred = p + 1 - j_mean
                spread += centred * centred
                covariance += centred * (math.log(pairs[p]) - log_mean)
        slope = covariance / (spread if spread > 0 else 1.0)
        if slope < 0:
            predicted[k] = math.exp(log_mean + slope * (n_pairs - 1 - j_mean))


def segment_estimates(coeffs, y_a, y_end, atol, rtol, growth_cap):
    """As :func:`chebpan._core.estimates.segment_estimates` (which calls it for NumPy
    arrays)."""
    k_count, n, _ = coeffs.shape
    dtype = coeffs.dtype
    err = np.zeros(k_count, dtype=dtype)
    predicted = np.empty(k_count, dtype=dtype)
    predicted.fill(np.nan)  # (np.full costs more than the kernel on a single segment)
    if k_count == 0 or n == 0:
        return err, predicted
    _estimates(np.ascontiguousarray(coeffs), np.ascontiguousarray(y_a, dtype=dtype),
               np.ascontiguousarray(y_end, dtype=dtype), per_component(atol, n, dtype),
               per_component(rtol, n, dtype), float(growth_cap), float(np.finfo(dtype).eps),
               err, predicted)
    return err, predicted


@numba.njit(cache=True, error_model="numpy")
def _step_change(y_a, y_nodes, step, phi, atol, rtol, growth_cap, floor_factor, change,
                 floor, moved):
    k_count, n, n_nodes = y_nodes.shape
    scale = np.empty(n)
    for k in range(k_count):
        cap = capped_scales(y_a[k], y_nodes[k, :, n_nodes - 1], atol, rtol, growth_cap, scale)
        np.dot(step[k], phi, moved[k])
        change[k], worst = scaled_change(y_a[k], y_nodes[k], moved[k], scale, cap)
        floor[k] = floor_factor * worst


def step_change(basis, y_a, y_nodes, step, atol, rtol, growth_cap, floor_factor):
    """As :func:`chebpan._core.estimates.step_change` (which calls it for NumPy arrays);
    ``floor_factor`` is ``ROUNDING_ULPS · eps``."""
    k_count, n, n_nodes = y_nodes.shape
    dtype = y_nodes.dtype
    change = np.zeros(k_count, dtype=dtype)
    floor = np.zeros(k_count, dtype=dtype)
    moved = np.empty((k_count, n, n_nodes), dtype=step.dtype)
    if k_count == 0 or n == 0:
        return change, floor, moved
    _step_change(np.ascontiguousarray(y_a, dtype=dtype), np.ascontiguousarray(y_nodes),
                 np.ascontiguousarray(step, dtype=dtype),
                 np.ascontiguousarray(basis.phi_tilde, dtype=dtype),
                 per_component(atol, n, dtype), per_component(rtol, n, dtype),
                 float(growth_cap), float(floor_factor), change, floor, moved)
    return change, floor, moved


@numba.njit(cache=True)
def _start_gaps(coeffs, y_a, y_end, f_a, half_h, start_slopes, first_node, atol, rtol,
                growth_cap, gap, size):
    k_count, n, n_coeffs = coeffs.shape
    scale = np.empty(n)
    for k in range(k_count):
        capped_scales(y_a[k], y_end[k], atol, rtol, growth_cap, scale)
        for i in range(n):
            slope = 0.0
            for q in range(n_coeffs):
                slope += coeffs[k, i, q] * start_slopes[q]
            # τ₁ (p'(t_a) − f_a), τ₁ = (h/2)(1 + τ_1), p'(t_a) = Σ c_q T_q'(−1) / (h/2)
            gap[k, i] = first_node * (slope - half_h[k] * f_a[k, i])
        size[k] = scaled_rms(gap[k], scale)


def start_gaps(basis, coeffs, y_a, y_end, f_a, half_h, atol, rtol, growth_cap):
    """As :func:`chebpan._core.estimates.start_gaps` (which calls it for NumPy arrays)."""
    k_count, n, _ = coeffs.shape
    dtype = coeffs.dtype
    gap = np.zeros((k_count, n), dtype=dtype)
    size = np.zeros(k_count, dtype=dtype)
    if k_count == 0 or n == 0:
        return gap, size
    _start_gaps(np.ascontiguousarray(coeffs), np.ascontiguousarray(y_a, dtype=dtype),
                np.ascontiguousarray(y_end, dtype=dtype), np.ascontiguousarray(f_a, dtype=dtype),
                np.ascontiguousarray(np.reshape(half_h, (-1,)), dtype=dtype),
                np.ascontiguousarray(basis.dt_minus1, dtype=dtype),
                float(basis.first_node_offset), per_component(atol, n, dtype),
                per_component(rtol, n, dtype), float(growth_cap), gap, size)
    return gap, size

"""The next segment's length limited by the solution's nearest singularities.

:func:`chebpan._core.singularities.singularity_limits` reads where the nearest complex
singularities lie from a segment's Chebyshev coefficients and predicts the tail of a
longer next segment.  Checked against the true tail of functions with known poles, the
numba kernel against the array-API code, and in solves (docs/algorithm.md, "Error
estimate and segment length").
"""

import array_api_compat.numpy as xp
import numpy as np
import pytest
import scipy.integrate

import chebpan
from chebpan._control import batch as batch_module
from chebpan._control import single as single_module
from chebpan._core.singularities import singularity_limits
from chebpan._kernels import dispatch

N_COEFFS = 12
TARGET = 0.9 ** (N_COEFFS - 1)


def _chebyshev_coefficients(fun, lower, upper, n_coeffs=N_COEFFS):
    """Coefficients of ``fun`` on ``[lower, upper]`` by interpolation at many points."""
    tau = np.cos(np.pi * (np.arange(8 * n_coeffs) + 0.5) / (8 * n_coeffs))
    return np.polynomial.chebyshev.chebfit(tau, fun(lower + (upper - lower) * (tau + 1) / 2),
                                           n_coeffs - 1)


def _pole_pair(centre, width):
    return lambda t: 1.0 / ((t - centre) ** 2 + width ** 2)


def _tail(coeffs, scale):
    return (abs(coeffs[-1]) + abs(coeffs[-2])) / scale


def _limit(fun, scale, rule):
    coeffs = _chebyshev_coefficients(fun, -1.0, 1.0)[None, None, :]
    ones = np.ones((1, 1))
    return float(singularity_limits(coeffs, ones, ones, scale, 0.0, np.array([rule]),
                                    target=TARGET, min_factor=0.2, xp=xp)[0])


@pytest.mark.parametrize("centre, width", [(1.8, 0.2), (2.5, 0.5), (1.4, 0.05), (1.5, 0.3),
                                           (2.0, 1.0), (3.0, 0.0)])
def test_a_singularity_ahead_limits_the_growth_to_what_the_true_tail_allows(centre, width):
    """With poles at ``centre ± i·width`` ahead of the segment [−1, 1], the limit is
    the length whose true tail is at the target, within a factor 1.25 (a pair's tail
    oscillates with the degree: up to 2× the target 20 % below the limit), where the
    truncation-error rule (``h^(N−1)``) would grow far past it.  (``width`` 0: a real
    pole, a blow-up ahead.)"""
    fun = _pole_pair(centre, max(width, 1e-300)) if width else (lambda t: 1 / (centre - t))
    scale = _tail(_chebyshev_coefficients(fun, -1.0, 1.0), 1.0) / 1e-3  # err = 1e-3
    rule = 0.9 * 1e-3 ** (-1 / (N_COEFFS - 1))  # 1.69: what the error alone allows
    limit = _limit(fun, scale, rule)
    assert limit < rule
    shorter_tail = _tail(_chebyshev_coefficients(fun, 1.0, 1.0 + 2 * limit * 0.8), scale)
    longer_tail = _tail(_chebyshev_coefficients(fun, 1.0, 1.0 + 2 * limit * 1.25), scale)
    assert shorter_tail <= 2 * TARGET
    assert longer_tail > TARGET / 2
    rule_tail = _tail(_chebyshev_coefficients(fun, 1.0, 1.0 + 2 * rule), scale)
    assert rule_tail > 10 * TARGET  # (the rule alone would fail there)


@pytest.mark.parametrize("centre, width", [(-1.8, 0.2), (-2.5, 0.5), (0.0, 2.0)])
def test_singularities_behind_or_aside_leave_the_rule(centre, width):
    """Poles behind the segment (moving away) or far to the side: the rule's factor."""
    fun = _pole_pair(centre, width)
    scale = _tail(_chebyshev_coefficients(fun, -1.0, 1.0), 1.0) / 1e-3
    assert _limit(fun, scale, 1.69) == 1.69


def test_nothing_fitted_leaves_the_rule():
    """A low-degree polynomial (nothing above rounding), coefficients that do not decay,
    no components, and rules at or below the smallest factor: the rule."""
    low = np.zeros((1, 2, N_COEFFS))
    low[0, :, :3] = [1.0, 0.5, 0.25]
    flat = np.ones((1, 2, N_COEFFS))
    for coeffs in (low, flat):
        ones = np.ones((1, 2))
        assert singularity_limits(coeffs, ones, ones, 1e-6, 1e-3, np.array([3.0]),
                                  target=TARGET, min_factor=0.2, xp=xp).tolist() == [3.0]
    empty = singularity_limits(np.zeros((2, 0, N_COEFFS)), np.zeros((2, 0)), np.zeros((2, 0)),
                               1e-6, 1e-3, np.array([2.0, 3.0]), target=TARGET,
                               min_factor=0.2, xp=xp)
    assert empty.tolist() == [2.0, 3.0]
    fun = _pole_pair(1.5, 0.1)
    coeffs = _chebyshev_coefficients(fun, -1.0, 1.0)[None, None, :]
    ones = np.ones((1, 1))
    assert singularity_limits(coeffs, ones, ones, 1e-6, 0.0, np.array([0.2]), target=TARGET,
                              min_factor=0.2, xp=xp).tolist() == [0.2]


def _mixed_segments(rng, n_coeffs):
    """Segments of several kinds: pole pairs ahead, behind and aside, real poles on
    both sides (two real roots), entire functions, low degree, a tail at rounding."""
    funs = [
        _pole_pair(1.7, 0.3), _pole_pair(-1.7, 0.3), _pole_pair(0.2, 1.5),
        lambda t: 1 / (2.2 - t) + 0.3 / (t + 2.5), lambda t: np.exp(t) * np.sin(3 * t),
        lambda t: 1 + t + t ** 2, lambda t: 1e-13 * _pole_pair(1.5, 0.2)(t) + 1,
        _pole_pair(1.2, 0.05),
    ]
    coeffs = np.array([[_chebyshev_coefficients(f, -1.0, 1.0, n_coeffs),
                        _chebyshev_coefficients(funs[(k + 3) % len(funs)], -1.0, 1.0,
                                                n_coeffs) * rng.uniform(0.5, 2)]
                       for k, f in enumerate(funs)])
    return coeffs


@pytest.mark.parametrize("n_coeffs", [8, 12, 32])
def test_kernel_matches_array_api_code(monkeypatch, n_coeffs):
    rng = np.random.default_rng(11)
    coeffs = _mixed_segments(rng, n_coeffs)
    k = coeffs.shape[0]
    y_a = rng.normal(size=(k, 2))
    y_end = y_a + rng.normal(size=(k, 2))
    rule = rng.uniform(0.1, 4.0, size=k)
    atol, rtol = np.array([1e-6, 1e-8]), 1e-4
    args = (coeffs, y_a, y_end, atol, rtol, rule)
    options = dict(target=0.9 ** (n_coeffs - 1), min_factor=0.2)
    kernel = singularity_limits(*args, **options, xp=xp)
    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
    reference = singularity_limits(*args, **options, xp=xp)
    np.testing.assert_allclose(kernel, reference, rtol=1e-10)
    assert np.all(kernel <= rule)
    if n_coeffs == 12:
        assert np.any(kernel < rule)  # (some segment is limited: the test can fail)


def test_array_api_strict_runs_the_reference():
    strict = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(12)
    coeffs = _mixed_segments(rng, 12)
    k = coeffs.shape[0]
    y_a = rng.normal(size=(k, 2))
    rule = rng.uniform(0.5, 4.0, size=k)
    expected = singularity_limits(coeffs, y_a, y_a, 1e-6, 1e-4, rule, target=TARGET,
                                  min_factor=0.2, xp=xp)
    got = singularity_limits(*(strict.asarray(a) for a in (coeffs, y_a, y_a)), 1e-6, 1e-4,
                             strict.asarray(rule), target=TARGET, min_factor=0.2, xp=strict)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-10)


def _lotka_volterra(t, z, a=1.5, b=1, c=3, d=1):
    x, y = z
    return [a * x - b * x * y, -c * y + d * x * y]


@pytest.mark.parametrize("driver", ["single", "batch"])
def test_fast_phases_ahead_are_seen_before_an_attempt_fails(monkeypatch, driver):
    """scipy's Lotka–Volterra example at default tolerances: segments grown by the
    rule into the fast phases fail; the limit sees the fast phase coming.  Fewer
    failed attempts and fewer rounds than with the rule alone, and as accurate."""
    reference = scipy.integrate.solve_ivp(_lotka_volterra, (0, 15), [10, 5], method="DOP853",
                                          rtol=1e-12, atol=1e-12).y[:, -1]

    def solve():
        if driver == "single":
            sol = chebpan.solve_ivp(_lotka_volterra, (0, 15), [10, 5])
            return sol, sol.y[:, -1]
        sol = chebpan.solve_ivp_batch(lambda t, z: np.stack(_lotka_volterra(t, z)), (0, 15),
                                      np.array([[10.0, 5.0]]), rtol=1e-3, atol=1e-6)
        return sol, sol.y[0, :, -1]

    limited, y_limited = solve()
    rule_only = (lambda coeffs, y_a, y_end, atol, rtol, factors, *, xp:
                 (factors, factors < 0))
    monkeypatch.setattr(single_module, "limited_factors", rule_only)
    monkeypatch.setattr(batch_module, "limited_factors", rule_only)
    unlimited, y_unlimited = solve()
    assert np.sum(limited.nrejected) <= 0.6 * np.sum(unlimited.nrejected)
    assert np.sum(limited.depth) < np.sum(unlimited.depth)
    scale = 1e-6 + 1e-3 * np.abs(reference)
    assert np.max(np.abs(y_limited - reference) / scale) <= 1.0

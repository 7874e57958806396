"""Unit tests of the policy functions, against values worked out by hand.

The error estimates (:mod:`chebpan._core.estimates`) and the segment-length, start and
convergence rules (:mod:`chebpan._control.policy`); docs/algorithm.md, "Segment
control", states the rules these numbers follow.
"""

import math

import array_api_compat.numpy as xp
import numpy as np
import pytest

import chebpan
from chebpan._control.policy import (
    COSTLY_NEWTON,
    NEWTON_ROUNDS,
    PICARD_ONLY_RHO,
    converged,
    extrapolated_guess,
    initial_lengths,
    length_factors,
    measured_growth_factor,
    newton_round_cost,
    next_length_factor,
    picard_cheaper,
    picard_rounds,
)
from chebpan._control.spans import Spans
from chebpan._core.basis import get_basis
from chebpan._core.estimates import (
    GROWTH_CAP,
    ROUNDING_ULPS,
    capped_magnitude,
    decay_error_estimates,
    error_estimates,
    plausible,
    rounding_floors,
    segment_estimates,
    tolerance_scale,
)
from chebpan._core.picard import node_values
from chebpan._kernels import dispatch

# ------------------------------------------------------------------ error estimates


def test_error_estimate_is_the_scaled_rms_of_the_last_two_coefficients():
    coeffs = np.array([[[1.0, 0.5, 0.01, 0.02],      # tail 0.03, scale 0.1 → 0.3
                        [2.0, 0.0, 0.003, -0.004]]])  # tail 0.007, scale 0.01 → 0.7
    scale = np.array([[0.1, 0.01]])
    expected = math.sqrt((0.3**2 + 0.7**2) / 2)
    np.testing.assert_allclose(error_estimates(coeffs, scale, xp=xp), [expected], rtol=1e-14)


def test_error_estimates_one_per_segment_and_none_for_no_components():
    coeffs = np.zeros((2, 1, 4))
    coeffs[0, 0, 2:] = [1.0, 1.0]
    coeffs[1, 0, 2:] = [0.5, 0.0]
    np.testing.assert_allclose(error_estimates(coeffs, np.ones((2, 1)), xp=xp), [2.0, 0.5])
    assert error_estimates(np.zeros((3, 0, 4)), np.ones((3, 0)), xp=xp).tolist() == [0.0] * 3


def _geometric(ratio, n_coeffs, zero_from=None):
    coeffs = ratio ** np.arange(n_coeffs, dtype=float)
    if zero_from is not None:
        coeffs[zero_from:] = 0.0
    return coeffs[None, None, :]


def test_decay_estimate_extrapolates_the_pairs_above_rounding():
    # c_q = 0.1^q up to q = 7, zero after: pairs (c_2j + c_2j+1) = 0.1^(2j) · 1.1 for
    # j = 1, 2, 3; the line through their logarithms, read at the last pair j = 5,
    # is 0.1^10 · 1.1.
    coeffs = _geometric(0.1, 12, zero_from=8)
    got = decay_error_estimates(coeffs, np.ones((1, 1)), xp=xp)
    np.testing.assert_allclose(got, [1.1e-10], rtol=1e-9)


def test_decay_estimate_is_scaled_and_takes_the_largest_component():
    coeffs = np.concatenate([_geometric(0.1, 12, 8), 0.5 * _geometric(0.1, 12, 8)], axis=1)
    got = decay_error_estimates(coeffs, np.array([[2.0, 0.1]]), xp=xp)
    np.testing.assert_allclose(got, [5 * 1.1e-10], rtol=1e-9)  # 0.5 / 0.1 = 5 > 1 / 2


def test_decay_estimate_zero_for_a_low_degree_polynomial():
    # Two pairs above rounding and the last one at it: the segment could be much longer.
    coeffs = _geometric(0.1, 12, zero_from=6)
    assert decay_error_estimates(coeffs, np.ones((1, 1)), xp=xp).tolist() == [0.0]


def test_decay_estimate_says_nothing_without_decay_or_coefficients():
    growing = _geometric(1.5, 12)
    assert np.isnan(decay_error_estimates(growing, np.ones((1, 1)), xp=xp)[0])
    short = _geometric(0.1, 7)  # fewer than 8 coefficients
    assert np.isnan(decay_error_estimates(short, np.ones((1, 1)), xp=xp)[0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_coeffs", [6, 12, 13])
def test_segment_estimates_kernel_matches_array_api_code(monkeypatch, dtype, n_coeffs):
    """The numba kernel of the ended attempts' estimates against the array-API code:
    coefficients that decay (a fit), low-degree ones (0), growing ones (NaN), scales
    from the start and from an end value above the growth cap, per-component
    tolerances."""
    rng = np.random.default_rng(3)
    k, n = 6, 3
    coeffs = rng.normal(size=(k, n, n_coeffs)) * 0.3 ** np.arange(n_coeffs)
    coeffs[1, :, 6:] = 0.0  # low degree
    coeffs[2] = rng.normal(size=(n, n_coeffs)) * 1.5 ** np.arange(n_coeffs)  # growing
    coeffs[3, 1] *= 1e6  # one component dominates
    y_a = rng.normal(size=(k, n))
    y_end = y_a + rng.normal(size=(k, n))
    y_end[4, 0] = 1e9  # beyond GROWTH_CAP times the start
    args = [np.asarray(a, dtype=dtype) for a in (coeffs, y_a, y_end)]
    atol, rtol = np.array([1e-6, 1e-3, 1e-8], dtype=dtype), np.asarray(1e-4, dtype=dtype)
    kernel = segment_estimates(*args, atol, rtol, xp=xp)
    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
    reference = segment_estimates(*args, atol, rtol, xp=xp)
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    for got, expected in zip(kernel, reference):
        assert got.dtype == expected.dtype == dtype
        np.testing.assert_allclose(got, expected, rtol=tolerance)
    if n_coeffs >= 8:
        assert reference[1][1] == 0.0 and np.isnan(reference[1][2])
        assert np.isfinite(reference[1][0])
    empty = segment_estimates(np.zeros((2, 0, n_coeffs)), np.zeros((2, 0)), np.zeros((2, 0)),
                              1e-6, 1e-3, xp=xp)
    assert empty[0].tolist() == [0.0, 0.0] and np.isnan(empty[1]).all()


# ------------------------------------------------------------------ segment lengths


@pytest.mark.parametrize("err, factor", [
    (16.0, 0.45),        # 0.9 · 16^(−1/4)
    (1 / 16, 1.8),       # 0.9 · 2
    (1e-8, 4.0),         # 0.9 · 100, clipped to the largest growth
    (1e8, 0.2),          # 0.9 · 0.01, clipped to the smallest factor
    (0.0, 4.0),          # nothing to measure: the largest growth
    (math.inf, 0.2),
    (math.nan, 0.2),
])
def test_length_factor(err, factor):
    n_coeffs = 5  # exponent −1/(N − 1) = −1/4
    assert next_length_factor(err, n_coeffs, 4.0) == pytest.approx(factor, rel=1e-14)
    got = length_factors(np.array([err]), n_coeffs, 4.0, xp=xp)
    np.testing.assert_allclose(got, [factor], rtol=1e-14)


def _solved_with_jac(suite_problem, rtol):
    """A suite problem solved (successfully) at ``rtol``, ``atol`` from its floor, with
    its ``jac``, vectorised."""
    res = chebpan.solve_ivp(suite_problem.fun, suite_problem.t_span,
                            np.array(suite_problem.y0), rtol=rtol,
                            atol=rtol * suite_problem.floor, jac=suite_problem.jac,
                            vectorized=True)
    assert res.success
    return res


def test_measured_growth_factor():
    """The error's growth with the length measured between two stiff segments: an
    error that grew like h^(N−1) gives the rule's factor, a flat one (a solution on its
    slow manifold) the rule with exponent 1, capped; nothing without a measurement."""
    n_coeffs = 5
    rule = next_length_factor(1e-6, n_coeffs, 4.0)
    # (the length doubled and the error grew 2^(N−1) times: the rule)
    grown = measured_growth_factor(1e-6, 2.0, (1e-6 / 2.0 ** 4, 1.0), n_coeffs, 4.0)
    assert grown == pytest.approx(rule, rel=1e-12)
    # (an error that grew like h²: 0.9 · err^(−1/2), here 900, capped at 4)
    assert measured_growth_factor(0.25, 2.0, (0.0625, 1.0), n_coeffs, 4.0) == \
        pytest.approx(0.9 / 0.5, rel=1e-12)
    assert measured_growth_factor(1e-4, 2.0, (2e-4, 1.0), n_coeffs, 4.0) == 4.0
    for last, h, err in (((1e-4, 1.0), 1.1, 1e-4),  # (too small a change of length)
                         (None, 2.0, 1e-4), ((0.0, 1.0), 2.0, 1e-4),
                         ((1e-4, 1.0), 2.0, 0.0), ((1e-4, 1.0), 2.0, math.nan)):
        assert measured_growth_factor(err, h, last, n_coeffs, 4.0) is None


@pytest.mark.parametrize("problem, tolerances", [("ROBER", (1e-3, 1e-6)),
                                                  ("E5-stiff", (1e-6, 1e-10))])
def test_stiff_segments_grow_as_their_error_does(monkeypatch, problem, tolerances):
    """On the stiff basis a segment's error estimate grows with its length far more
    slowly than the rule's h^(N−1) once the solution has decayed to its slow manifold
    (Robertson's sits near 6e-5 from t = 10 to 1e11 while each segment is 2.2 times
    the last): growing as fast as the measured error allows takes fewer segments and
    rounds than the rule alone, summed over two tolerances (Robertson 248 → 201
    rounds, E5 447 → 402, when it landed), each solve within its tolerance against
    the suite's reference where it resolves it."""
    from chebpan._control import single
    from chebpan.testing import SUITE

    suite_problem = SUITE[problem]()

    def solve(rtol):
        res = _solved_with_jac(suite_problem, rtol)
        if suite_problem.resolvable(rtol):
            assert suite_problem.scaled_error(res.y[:, -1]) <= 10 * rtol
        return res.depth, res.nsegments

    measured = [sum(v) for v in zip(*(solve(rtol) for rtol in tolerances))]
    monkeypatch.setattr(single, "measured_growth_factor", lambda *args: None)
    rule = [sum(v) for v in zip(*(solve(rtol) for rtol in tolerances))]
    assert measured[0] < 0.95 * rule[0] and measured[1] < rule[1]


def test_length_factors_take_a_growth_limit_per_segment():
    err = np.array([1e-8, 1e-8, 0.0])
    np.testing.assert_allclose(length_factors(err, 5, np.array([4.0, 20.0, 20.0]), xp=xp),
                               [4.0, 20.0, 20.0])


def test_tolerance_scale():
    got = tolerance_scale(1e-6, 1e-3, np.array([1.0, -3.0]), np.array([-2.0, 0.5]), xp=xp)
    np.testing.assert_allclose(got, [1e-6 + 2e-3, 1e-6 + 3e-3], rtol=1e-15)
    # The start alone, and an end value counting only up to GROWTH_CAP · max|y_start|.
    assert GROWTH_CAP == 100.0
    np.testing.assert_allclose(tolerance_scale(0.0, 1.0, np.array([-4.0]), xp=xp), [4.0])
    got = tolerance_scale(0.0, 1.0, np.array([[1.0, 0.1]]), np.array([[1e80, -5.0]]), xp=xp)
    np.testing.assert_allclose(got, [[100.0, 5.0]])


def test_capped_magnitude():
    start = np.array([[2.0, -0.5], [0.0, 0.0]])
    values = np.array([[-300.0, 1.0], [7.0, np.inf]])
    # caps: 100 · 2 = 200 for the first instance, 0 for the second
    np.testing.assert_allclose(capped_magnitude(start, values, xp=xp),
                               [[200.0, 1.0], [0.0, 0.0]])


def test_plausible():
    coeffs = np.array([[[1.0, -2.0, 0.5]], [[300.0, 0.0, 0.0]], [[0.0, 0.0, 1e80]]])
    size = np.array([1.0, 2.0, 1.0])
    # Σ|c| = 3.5, 300, 1e80 against GROWTH_CAP · size = 100, 200, 100
    assert plausible(coeffs, size, xp=xp).tolist() == [True, False, False]
    assert plausible(np.zeros((2, 0, 3)), np.ones(2), xp=xp).tolist() == [True, True]


def test_rounding_floors():
    eps = 2.0**-52
    y_start = np.array([[1.0, 1.0]])
    y_nodes = np.array([[[1.0, 3.0, 1e300], [0.5, -2.0, 1.0]]])  # (K, n, M)
    scale = np.array([[2.0, 4.0]])
    # largest node values capped at 100: (100, 2) / (2, 4) → max 50
    np.testing.assert_allclose(rounding_floors(y_start, y_nodes, scale, eps, xp=xp),
                               [ROUNDING_ULPS * eps * 50.0])


# ------------------------------------------------------------------ convergence


@pytest.mark.parametrize("change, previous, floor, tolerance, expected", [
    (0.01, 0.1, 0.0, 1e-3, False),    # ρ = 0.1: remaining 0.01 · 0.1 / 0.9 = 1.1e-3
    (0.01, 0.1, 0.0, 2e-3, True),
    (0.004, 0.1, 0.0, 1e-3, True),    # ρ = 0.04: remaining 1.7e-4
    (5e-4, math.nan, 0.0, 1e-3, True),  # no ratio yet: the change itself
    (2e-3, math.nan, 0.0, 1e-3, False),
    (0.2, 0.1, 0.0, 1e-3, False),     # ρ = 2: diverging, the change itself
    (2e-3, 0.0, 0.0, 1e-3, False),    # no ratio from a zero previous change
    (2e-3, math.nan, 5e-3, 1e-3, True),  # at the rounding floor
])
def test_converged(change, previous, floor, tolerance, expected):
    got = converged(np.array([change]), np.array([previous]), np.array([floor]), tolerance,
                    xp=xp)
    assert got.tolist() == [expected]


# ------------------------------------------------------------------ first length


def _first_length(fun, y0, t0=0.0, tf=10.0, atol=1e-6, rtol=1e-3):
    y0 = np.array([[y0]])
    f0 = fun(np.array([t0]), y0)
    scale = tolerance_scale(atol, rtol, y0, xp=xp)
    span = Spans(t0, tf, xp=xp, device=None)
    return float(initial_lengths(fun, span, y0, f0, scale, xp=xp)[0])


def test_initial_length_of_a_decay():
    # y' = −y, y0 = 1: h0 = 0.01 d0/d1 = 0.01; f1 = −0.99, so d2 = d1 = 1/scale and
    # h1 = (0.01 scale)^(1/16); the length is min(100 h0, h1).
    scale = 1e-6 + 1e-3
    expected = min(1.0, (0.01 * scale) ** (1 / 16))
    assert _first_length(lambda t, y: -y, 1.0) == pytest.approx(expected, rel=1e-12)


def test_initial_length_from_zero():
    # y0 = 0, f = 1: d0 < 1e-5, so h0 = 1e-6, and the length is 100 h0.
    assert _first_length(lambda t, y: np.ones_like(y), 0.0) == pytest.approx(1e-4, rel=1e-12)


def test_initial_length_is_h0_when_the_trial_point_is_not_finite():
    def fun(t, y):
        return np.where(t > 0, np.inf, -y)

    assert _first_length(fun, 1.0) == pytest.approx(0.01, rel=1e-12)


def test_initial_length_never_exceeds_the_interval():
    # h0 = min(0.01, 1e-3) already; the length is min(100 h0, h1, 1e-3).
    assert _first_length(lambda t, y: -y, 1.0, tf=1e-3) == pytest.approx(1e-3, rel=1e-12)


@pytest.mark.parametrize("case", ["decay", "from_zero", "flat", "nonfinite", "overflow",
                                  "batch"])
def test_compiled_initial_lengths_are_the_array_code(monkeypatch, case):
    """The numba first lengths (NumPy, float64) against the array-API code they replace,
    on every branch of the heuristic: h0 from the norms or 1e-6, a trial point whose f
    is not finite, f that does not change (h1 from h0), norms that overflow (atol = 0
    and a zero component: the fallback length), and a batch with spans of both
    directions."""
    from chebpan._kernels import dispatch

    rng = np.random.default_rng(7)
    k, n = (6, 3) if case == "batch" else (1, 3)
    y0 = rng.normal(size=(k, n))
    atol, rtol = 1e-6, 1e-3
    if case == "from_zero":
        y0[:] = 0.0
    if case == "overflow":
        y0[:, 0], atol = 0.0, 0.0

    def fun(t, y):
        if case == "flat":
            return np.zeros_like(y)
        if case == "nonfinite":
            return np.where(t[:, None] > 0, np.inf, -y)
        if case == "overflow":
            return np.ones_like(y)
        return -y * np.arange(1, n + 1) + np.sin(t)[:, None]

    if case == "batch":
        t0 = rng.uniform(-1, 1, size=k)
        tf = t0 + rng.choice([-1.0, 1.0], size=k) * rng.uniform(1e-4, 10, size=k)
        span = Spans(t0, tf, xp=xp, device=None)
        f0 = fun(t0, y0)
    else:
        span = Spans(0.0, 2.0, xp=xp, device=None)
        f0 = fun(np.zeros(1), y0)
    scale = tolerance_scale(atol, rtol, y0, xp=xp)
    with np.errstate(all="ignore"):
        compiled = initial_lengths(fun, span, y0, f0, scale, xp=xp)
        monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
        reference = initial_lengths(fun, span, y0, f0, scale, xp=xp)
    assert compiled.dtype == np.float64 and compiled.shape == (k,)
    np.testing.assert_allclose(compiled, reference, rtol=1e-13, atol=0)
    assert np.all(compiled > 0)


# ------------------------------------------------------------------ extrapolated start


def test_extrapolated_guess_continues_a_polynomial_solution_exactly():
    # y = t² on [0, 1] (y' = 2t): in τ, t² = 0.375 T_0 + 0.5 T_1 + 0.125 T_2.  Its
    # derivative on the next segment [1, 2] turned into X gives t² there exactly.
    basis = get_basis(8, 7, xp=xp, dtype=np.float64)
    previous = np.zeros((1, 1, 8))
    previous[0, 0, :3] = [0.375, 0.5, 0.125]
    x = extrapolated_guess(basis, previous, 1.0, 1.0, np.array([[2.0]]), xp=xp)
    y_nodes = node_values(basis, np.array([[1.0]]), np.array([[2.0]]), np.array([[0.5]]), x,
                          xp=xp)
    t = 1.0 + (np.asarray(basis.tau) + 1) / 2
    np.testing.assert_allclose(y_nodes[0, 0], t**2, rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("tau_start", [1.0, -1.0])
def test_extrapolated_guess_kernel_matches_array_api_code(monkeypatch, dtype, tau_start):
    """The numba kernel of a batch's starts (one length per instance) against the
    array-API code, including lengths far outside the other segment (truncated)."""
    rng = np.random.default_rng(5)
    basis = get_basis(12, 11, xp=xp, dtype=dtype)
    k, n = 9, 3
    decay = 0.3 ** np.arange(12)
    coeffs = rng.normal(size=(k, n, 12)) * decay
    coeffs[4] *= 1e-12  # (tail at the rounding floor)
    prev_h = rng.uniform(0.05, 0.2, size=k)
    h = prev_h * np.array([0.3, 0.5, 1.0, 1.5, 2.0, 4.0, 8.0, 20.0, 1.0])
    f_a = rng.normal(size=(k, n)).astype(dtype)
    kernel = extrapolated_guess(basis, coeffs, prev_h, h, f_a, xp=xp, tau_start=tau_start)
    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
    reference = extrapolated_guess(basis, coeffs, prev_h, h, f_a, xp=xp, tau_start=tau_start)
    assert kernel.dtype == reference.dtype == dtype
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(kernel, reference, rtol=rtol,
                               atol=rtol * float(np.abs(reference).max()))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_step_change_kernel_matches_array_api_code(monkeypatch, dtype):
    """The numba change of node values under a step, and its rounding floor, against the
    array-API code: per-component tolerances, an end value above the growth cap, a
    component at zero."""
    from chebpan._core.estimates import step_change

    rng = np.random.default_rng(17)
    basis = get_basis(12, 11, xp=xp, dtype=dtype)
    k, n = 5, 3
    y_a = rng.normal(size=(k, n)).astype(dtype)
    y_a[2, 1] = 0.0
    y_nodes = (y_a[..., None] + rng.normal(size=(k, n, 11))).astype(dtype)
    y_nodes[3, 0, -1] = 1e9
    step = (rng.normal(size=(k, n, basis.n_free)) * 1e-3).astype(dtype)
    atol = np.array([1e-6, 1e-3, 1e-8], dtype=dtype)
    rtol = np.asarray(1e-4, dtype=dtype)
    eps = float(np.finfo(dtype).eps)
    got = step_change(basis, y_a, y_nodes, step, atol, rtol, eps, xp=xp)
    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
    want = step_change(basis, y_a, y_nodes, step, atol, rtol, eps, xp=xp)
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    for value, expected in zip(got, want):
        assert value.dtype == expected.dtype == dtype
        np.testing.assert_allclose(value, expected, rtol=tolerance)
    assert (want[0] > 0).all() and (want[1] > 0).all()
    np.testing.assert_allclose(want[2], np.matmul(step, basis.phi_tilde), rtol=tolerance)


def _single_solver():
    from chebpan._control.options import IterationOptions
    from chebpan._control.segment_solver import SegmentSolver

    options = IterationOptions(max_picard=12, max_newton=8, rho_newton=0.2, tol_ls=None,
                               tol_newton=None, max_newton_size=1200)
    return SegmentSolver(get_basis(8, 7, xp=xp, dtype=np.float64), None, 1e-6, 1e-6,
                         options, None, xp=xp)


@pytest.mark.parametrize("change, previous, before, expected", [
    # ρ = 0.01, remaining 1.01e-3 · (linear): not converged ...
    (0.1, 10.0, None, False),
    # ... but after full Newton steps with falling ratios (0.01 ≤ 0.5 · 10 / 100) the
    # next change is about 0.1 · 0.01² = 1e-5: converged.
    (0.1, 10.0, 100.0, True),
    # Ratios that do not fall (0.01 against 0.01): linear convergence, not converged.
    (0.1, 10.0, 1000.0, False),
])
def test_newton_convergence_estimate_is_quadratic_only_when_the_ratios_fall(
        change, previous, before, expected):
    assert _single_solver()._converged(change, previous, 0.0, before) is expected


def test_batched_convergence_test_is_the_single_solves():
    """The batch's convergence test (arrays, NaN for no earlier change) decides as the
    single solve's does, the quadratic estimate included."""
    cases = [(0.1, 10.0, None), (0.1, 10.0, 100.0), (0.1, 10.0, 1000.0), (2e-4, None, None),
             (5.0, 4.0, None), (0.02, 1.0, 1.5)]
    change, previous, before = (np.array([math.nan if v is None else v for v in column])
                                for column in zip(*cases))
    got = converged(change, previous, np.zeros(len(cases)), 1e-3, xp=xp, before=before)
    solver = _single_solver()
    want = [solver._converged(c, p, 0.0, b) for c, p, b in cases]
    assert got.tolist() == want and any(want) and not all(want)


def test_a_hopelessly_shortened_newton_step_ends_the_attempt(monkeypatch):
    """A line search that shortens a Newton step below HOPELESS_ALPHA ends the attempt
    at once (the segment is far too long for its start): on Lotka–Volterra, where some
    grown segments meet a fast phase, no attempt searches again after such a step,
    and the solution stays accurate."""
    import chebpan
    import chebpan._control.segment_solver as segment_solver
    from chebpan._control.policy import HOPELESS_ALPHA
    from scipy.integrate import solve_ivp as scipy_solve_ivp

    log = []  # (attempt, alpha, trials)
    attempt = [0]
    real_solve, real_search = segment_solver.SegmentSolver.solve, segment_solver.strong_wolfe

    def solve(self, *args, **kwargs):
        attempt[0] += 1
        return real_solve(self, *args, **kwargs)

    def search(*args, **kwargs):
        result = real_search(*args, **kwargs)
        log.append((attempt[0], result.alpha, result.n_trials))
        return result

    monkeypatch.setattr(segment_solver.SegmentSolver, "solve", solve)
    monkeypatch.setattr(segment_solver, "strong_wolfe", search)

    def lotka_volterra(t, z):
        x, y = z
        return [1.5 * x - x * y, -3 * y + x * y]

    res = chebpan.solve_ivp(lotka_volterra, (0, 15), [10.0, 5.0], vectorized=True)
    hopeless = [i for i, (_, alpha, _) in enumerate(log) if alpha < HOPELESS_ALPHA]
    assert hopeless, "no step was shortened that far: the test shows nothing"
    # most are seen by the quadratic model after the first trial and cost no more
    assert sum(alpha == 0.0 and trials == 1 for _, alpha, trials in log) >= len(hopeless) / 2
    for i in hopeless:
        assert i + 1 == len(log) or log[i + 1][0] != log[i][0]
    reference = scipy_solve_ivp(lotka_volterra, (0, 15), [10.0, 5.0], method="DOP853",
                                rtol=1e-12, atol=1e-12).y[:, -1]
    assert res.success
    np.testing.assert_allclose(res.y[:, -1], reference, rtol=1e-4)


def test_the_last_newton_step_is_taken_without_a_round(monkeypatch):
    """A Newton step that would pass the convergence test once taken is taken without
    evaluating f and J at its end; f there is the iterate's end value plus J Δy
    (Newton's linearisation).  On Lotka–Volterra at rtol 1e-6 most Newton segments end
    so; their f_end agrees with fun at y_end to second order in the step (the
    linearisation carries at least 99 % of f's change over the step), and the solution
    is accurate."""
    import chebpan
    import chebpan._control.segment_solver as segment_solver
    from scipy.integrate import solve_ivp as scipy_solve_ivp

    def lotka_volterra(t, z):
        x, y = z
        return np.array([1.5 * x - x * y, -3 * y + x * y])

    evaluated = []  # end-node values of the current attempt's rounds
    segments = []  # (y_end, f_end, last evaluated end) of attempts that ended with Newton
    real_solve, real_evaluate = (segment_solver.SegmentSolver.solve,
                                 segment_solver.SegmentSolver._evaluate_raw)

    def solve(self, *args, **kwargs):
        evaluated.clear()
        result = real_solve(self, *args, **kwargs)
        if result.failure is None and result.used_newton:
            segments.append((result.y_end[0], result.f_end[0], evaluated[-1]))
        return result

    def evaluate_raw(self, t_nodes, y_nodes, **kwargs):
        evaluated.extend(y_nodes[:, :, -1])
        return real_evaluate(self, t_nodes, y_nodes, **kwargs)

    monkeypatch.setattr(segment_solver.SegmentSolver, "solve", solve)
    monkeypatch.setattr(segment_solver.SegmentSolver, "_evaluate_raw", evaluate_raw)
    res = chebpan.solve_ivp(lotka_volterra, (0, 15), [10.0, 5.0], rtol=1e-6, atol=1e-9,
                            vectorized=True)
    assert res.success and res.nfev == res.depth
    early = 0
    for y_end, f_end, last in segments:
        f_true = lotka_volterra(0.0, y_end)
        moved = np.max(np.abs(y_end - last)) > 1e-12 * np.max(np.abs(y_end))
        if moved:  # taken without a round: f_end is the linearisation
            early += 1
            change = np.max(np.abs(f_true - lotka_volterra(0.0, last)))
            assert np.max(np.abs(f_end - f_true)) <= 1e-2 * change + 1e-13 * np.max(
                np.abs(f_true))
        else:
            np.testing.assert_allclose(f_end, f_true, rtol=1e-13,
                                       atol=1e-13 * np.max(np.abs(f_true)))
    assert len(segments) >= 10 and early >= len(segments) / 2
    reference = scipy_solve_ivp(lotka_volterra, (0, 15), [10.0, 5.0], method="DOP853",
                                rtol=1e-13, atol=1e-13).y[:, -1]
    np.testing.assert_allclose(res.y[:, -1], reference, rtol=1e-5)


@pytest.mark.parametrize("problem", ["lorenz", "B5", "VDPOL"])
def test_the_linearised_start_saves_rounds(monkeypatch, problem):
    """After a segment whose Newton iteration converged, the ODE linearised at the
    segment's start (J from that iteration) gives a start candidate at the cost of one
    solve and no round: fewer rounds than without it (Lorenz at rtol 1e-10: 277 → 195
    when it landed; Van der Pol (μ = 1000) takes it on the stiff basis), at the same accuracy (each
    solve's scaled error within its tolerance, against the suite's reference).  On Van
    der Pol the saving is smaller: 525 rounds against 544 (516 against 552 before the
    stiff basis' start-slope check, which rejects a few attempts at the fast
    transitions with or without this start)."""
    from chebpan._control.segment_solver import SegmentSolver
    from chebpan.testing import SUITE

    suite_problem = SUITE[problem]()
    tolerances = (1e-6, 1e-8)

    def solve(rtol):
        res = _solved_with_jac(suite_problem, rtol)
        error = suite_problem.scaled_error(res.y[:, -1])
        assert error <= (1e4 if problem == "lorenz" else 10) * rtol  # (Lorenz: chaos, 1e4)
        return res.depth

    # (the depth summed over two tolerances: one solve's depth moves by several
    # per cent with rounding-level changes on these problems)
    with_start = sum(solve(rtol) for rtol in tolerances)
    monkeypatch.setattr(SegmentSolver, "linearised_start_fits", lambda self, basis, n: False)
    without = sum(solve(rtol) for rtol in tolerances)
    assert with_start < (0.98 if problem == "VDPOL" else 0.95) * without


# ------------------------------------------------------------------ cost of a segment


def test_picard_rounds_to_convergence():
    # change ρᵏ ρ / (1 − ρ) = tolerance: with ρ = 1/2, change 1 and tolerance 2⁻¹⁰,
    # 2⁻ᵏ = 2⁻¹⁰ → k = 10; nothing left to do below the tolerance; none at ρ ≥ 1.
    assert picard_rounds(0.5, 1.0, 2.0 ** -10) == pytest.approx(10.0)
    assert picard_rounds(0.5, 1e-6, 1e-3) == 0.0
    assert picard_rounds(1.0, 1.0, 1e-3) == math.inf
    assert picard_rounds(0.1, 1.0, 1e-3) < picard_rounds(0.3, 1.0, 1e-3)
    # (no change left, no contraction measured, nothing to reach)
    assert picard_rounds(0.5, 0.0, 1e-3) == 0.0 == picard_rounds(0.0, 1.0, 1e-3)
    assert picard_rounds(math.nan, 1.0, 1e-3) == math.inf == picard_rounds(0.5, 1.0, 0.0)


def test_picard_goes_on_only_where_newton_rounds_are_costly():
    cheap, costly = newton_round_cost(90), newton_round_cost(168)  # N = 32, n = 3; n = 28
    assert cheap < COSTLY_NEWTON < costly
    # (the factorisation's share grows as the cube of the unknowns)
    assert newton_round_cost(306) - 1 == pytest.approx((306 / 168) ** 3 * (costly - 1))
    assert not picard_cheaper(0.5, 1.0, 1e-3, cheap)
    assert picard_cheaper(0.5, 1.0, 1e-3, costly)
    # a contraction whose rounds cost more than Newton's, or that hardly contracts
    assert picard_rounds(0.8, 1.0, 1e-3) > NEWTON_ROUNDS * costly
    assert not picard_cheaper(0.8, 1.0, 1e-3, costly)
    assert not picard_cheaper(PICARD_ONLY_RHO, 1.0, 1e-3, 1e6)


def test_costly_newton_gives_way_to_cheaper_picard_rounds(monkeypatch):
    """The Pleiades (n = 28: dense Newton rounds of 168 unknowns, ~4.6 Picard rounds
    each): Picard rounds go on while predicted cheaper, and a segment after a Newton
    one tries them first.  Against the same solve with Newton's cost ignored (the rule
    before): far fewer Newton iterations (when it landed 108 and 0 against 253 and 571
    at rtol 1e-6 and 1e-9; at 1e-9 every segment ends in Picard rounds: the hand-over
    rule; at 1e-6 the Picard-first start too — with it off, 220), within 10 × rtol of
    the suite's reference (2.9 and 5.6 × rtol; 0.7 and 2.6 × without the rule)."""
    from chebpan._control import policy, segment_solver
    from chebpan.testing import SUITE

    plei = SUITE["PLEI"]()

    def solve(rtol):
        res = chebpan.solve_ivp(plei.fun, plei.t_span, np.array(plei.y0), rtol=rtol,
                                atol=rtol, vectorized=True)
        assert res.success
        assert plei.scaled_error(res.y[:, -1]) <= 10 * rtol
        return res.niter_newton

    tolerances = (1e-6, 1e-9)
    with_rule = [solve(rtol) for rtol in tolerances]
    for module in (policy, segment_solver):
        monkeypatch.setattr(module, "COSTLY_NEWTON", math.inf)
    without = [solve(rtol) for rtol in tolerances]
    assert all(a < 0.6 * b for a, b in zip(with_rule, without))

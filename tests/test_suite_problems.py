"""Tests of the benchmark suite's problems (chebpan.testing.SUITE) and their references."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.integrate import solve_ivp

from chebpan.testing import SUITE, TARGETS, SuiteProblem, scaled_error

NAMES = list(SUITE)


def _states(p, count, seed=0):
    """count states near the problem's initial value, shape (n, count)."""
    rng = np.random.default_rng(seed)
    y0 = np.array(p.y0)
    scale = np.maximum(np.abs(y0), 0.1 * max(np.max(np.abs(y0)), 1e-3))
    y = y0[:, None] + 0.1 * scale[:, None] * rng.standard_normal((len(y0), count))
    return np.where(y0[:, None] >= 0, np.abs(y), y)  # concentrations stay >= 0 (sqrt)


@pytest.mark.parametrize("name", NAMES)
def test_problem_data(name):
    p = SUITE[name]()
    assert isinstance(p, SuiteProblem) and p.name == name
    assert p.t_span[1] > p.t_span[0] and p.floor > 0 and p.description
    info = p.reference_info()
    assert len(info["values"]) == p.n == p.reference_array().shape[0]
    assert np.all(np.isfinite(p.reference_array()))
    if p.stiff:
        assert p.jac is not None


@pytest.mark.parametrize("name", NAMES)
def test_vectorised_fun_matches_pointwise(name):
    p = SUITE[name]()
    y = _states(p, 5)
    t = np.linspace(*p.t_span, 5)
    vec = p.fun(t, y)
    assert vec.shape == y.shape
    for k in range(5):
        assert_allclose(vec[:, k], p.fun(t[k], y[:, k]), rtol=1e-14,
                        atol=1e-15 * np.max(np.abs(vec[:, k])))  # matmul cancellation


@pytest.mark.parametrize("name", [n for n in NAMES if SUITE[n]().jac is not None])
def test_jac_matches_finite_differences(name):
    p = SUITE[name]()
    y = _states(p, 3, seed=1)
    t = np.linspace(*p.t_span, 3)
    jv = p.jac(t, y)
    assert jv.shape == (p.n, p.n, 3)
    for k in range(3):
        j = p.jac(t[k], y[:, k])
        assert_allclose(jv[:, :, k], j, rtol=1e-13, atol=1e-300)
        # central differences, step relative to each component
        yk = y[:, k]
        h = 1e-6 * np.maximum(np.abs(yk), 1e-8)
        cols = [(p.fun(t[k], yk + h[i] * e) - p.fun(t[k], yk - h[i] * e)) / (2 * h[i])
                for i, e in enumerate(np.eye(p.n))]
        fd = np.stack(cols, axis=1)
        scale = np.max(np.abs(j)) + 1e-300
        assert np.max(np.abs(fd - j)) <= 1e-5 * scale


def test_longdouble_evaluation_stays_long_double():
    for name in ("A3", "B4", "C5", "E3", "D5", "spiral"):
        p = SUITE[name]()
        y = np.array(p.y0, dtype=np.longdouble)
        assert p.fun(np.longdouble(0.5), y).dtype == np.longdouble


@pytest.mark.parametrize("name", [n for n in NAMES if SUITE[n]().exact is not None])
def test_stored_exact_references_match_formula(name):
    pytest.importorskip("mpmath")
    p = SUITE[name]()
    exact = np.array([float(v) for v in p.exact(30)])
    assert p.reference_info()["kind"] == "exact"
    assert scaled_error(p.reference_array(), exact, p.floor) < 1e-16


def test_kepler_exact_solution_satisfies_invariants():
    from chebpan.testing._kepler import kepler_exact

    for e in (0.1, 0.9):
        x, y, dx, dy = (float(v) for v in kepler_exact(e, 7.3, 25))
        r = np.hypot(x, y)
        assert_allclose(0.5 * (dx * dx + dy * dy) - 1 / r, -0.5, rtol=1e-14)  # a = 1
        assert_allclose(x * dy - y * dx, np.sqrt(1 - e * e), rtol=1e-14)


def test_references_record_two_ways_and_resolution():
    for name in NAMES:
        info = SUITE[name]().reference_info()
        assert info["method"] and info["check"]
        assert info["resolvable"] == [t for t in TARGETS if t >= 10 * info["agreement"]]
        if not SUITE[name]().stiff:
            assert info["resolvable"] == list(TARGETS)  # non-stiff: all good to 1e-11


@pytest.mark.parametrize("name,method", [("A3", "DOP853"), ("B5", "DOP853"),
                                         ("D2", "DOP853"), ("E2", "DOP853"),
                                         ("HIRES", "Radau"), ("CHEMAKZO", "Radau")])
def test_scipy_agrees_with_stored_reference(name, method):
    p = SUITE[name]()
    kw = {"jac": p.jac} if method == "Radau" else {}
    res = solve_ivp(p.fun, p.t_span, np.array(p.y0), method=method, rtol=1e-10,
                    atol=1e-10 * p.floor, **kw)
    assert res.status == 0
    assert p.scaled_error(res.y[:, -1]) < 1e-7


def test_scaled_error_formula():
    assert scaled_error([2.0, 0.0], [1.0, 0.0], 1.0) == pytest.approx(np.sqrt(0.5 * 0.25))
    assert scaled_error([np.nan], [1.0], 1.0) == np.inf

"""Tests for chebpan._core.linesearch (strong-Wolfe line search, paper Alg. 5/6)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chebpan._core.linesearch import LineSearchResult, _cubic_step, strong_wolfe


# --------------------------------------------------------------------------- helpers
class Recorder:
    """Wrap ``f(alpha) -> (value, slope)`` into a ``phi`` with a fresh payload per call."""

    def __init__(self, f):
        self.f = f
        self.calls = []  # (alpha, value, slope, payload)

    def __call__(self, alpha):
        value, slope = self.f(alpha)
        payload = object()
        self.calls.append((alpha, value, slope, payload))
        return value, slope, payload

    @property
    def alphas(self):
        return [c[0] for c in self.calls]


def assert_strong_wolfe(res, value0, slope0, c1=1e-4, c2=0.9):
    assert res.converged
    assert res.alpha > 0
    assert res.value <= value0 + c1 * res.alpha * slope0
    assert abs(res.slope) <= -c2 * slope0


def assert_consistent(res, rec, max_trials=20):
    """n_trials counts calls; the result is one of the recorded trials (same payload)."""
    assert res.n_trials == len(rec.calls) <= max_trials
    if res.payload is None:
        assert res.alpha == 0.0 and not res.converged
        return
    matches = [c for c in rec.calls if c[3] is res.payload]
    assert len(matches) == 1
    alpha, value, slope, _ = matches[0]
    assert (res.alpha, res.value, res.slope) == (alpha, value, slope)


def run(f, *, value0=None, slope0=None, **kw):
    rec = Recorder(f)
    if value0 is None or slope0 is None:
        value0, slope0 = f(0.0)
    res = strong_wolfe(rec, value0, slope0, **kw)
    assert isinstance(res, LineSearchResult)
    assert_consistent(res, rec, kw.get("max_trials", 20))
    return res, rec


def quadratic_1d(s, q):
    """phi(alpha) = s alpha + q alpha^2 / 2, minimiser -s/q."""
    return lambda a: (s * a + 0.5 * q * a * a, s + q * a)


# --------------------------------------------------------------------------- quadratics
def test_newton_step_on_quadratic_is_one_trial():
    res, rec = run(quadratic_1d(-3.0, 3.0))  # minimiser at 1
    assert rec.alphas == [1.0]
    assert res.alpha == 1.0 and res.converged and res.n_trials == 1
    assert res.payload is rec.calls[0][3]


@pytest.mark.parametrize("astar", [0.15, 0.3, 0.45])
def test_quadratic_exact_minimiser_by_cubic(astar):
    # alpha = 1 fails sufficient decrease (alpha* < 0.5); the cubic through (0, 1) of a quadratic
    # is the quadratic itself, so the zoom's first trial is the exact minimiser.
    s = -2.0
    res, rec = run(quadratic_1d(s, -s / astar))
    assert rec.alphas[0] == 1.0
    assert res.n_trials == 2
    assert res.alpha == pytest.approx(astar, rel=1e-12)
    assert_strong_wolfe(res, 0.0, s)


def test_quadratic_minimiser_outside_safeguard_bisects():
    # alpha* = 0.01 < 0.1: the cubic minimiser lies outside [0.1, 0.9] -> midpoint.
    s = -1.0
    res, rec = run(quadratic_1d(s, -s / 0.01))
    assert rec.alphas[:2] == [1.0, 0.5]
    assert_strong_wolfe(res, 0.0, s)


@pytest.mark.parametrize("astar", [1.5, 5.0, 9.9])
def test_quadratic_long_minimiser_accepts_unit_step(astar):
    # |phi'(1)| = |s| (1 - 1/alpha*) <= 0.9 |s| for alpha* <= 10
    res, rec = run(quadratic_1d(-1.0, 1.0 / astar))
    assert rec.alphas == [1.0] and res.converged


def test_quadratic_expansion_to_two():
    # alpha* = 15: unit step fails curvature, alpha = 2 satisfies it.
    res, rec = run(quadratic_1d(-1.0, 1.0 / 15.0))
    assert rec.alphas == [1.0, 2.0]
    assert_strong_wolfe(res, 0.0, -1.0)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(["steepest", "newton", "random"]),
    scale=st.floats(1e-3, 1e3),
)
def test_random_convex_quadratics(n, seed, kind, scale):
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, n))
    q, _ = np.linalg.qr(m)
    eig = np.exp(rng.uniform(np.log(0.1), np.log(10.0), n))
    a = (q * eig) @ q.T
    b = rng.standard_normal(n)
    x = rng.standard_normal(n)
    g = a @ x - b
    if np.linalg.norm(g) < 1e-8:
        return
    if kind == "steepest":
        d = -g
    elif kind == "newton":
        d = -np.linalg.solve(a, g)
    else:
        d = -g + 0.5 * np.linalg.norm(g) * rng.standard_normal(n)
        if d @ g >= -1e-3 * np.linalg.norm(d) * np.linalg.norm(g):
            d = -g
    d = d * (1.0 if kind == "newton" else scale)

    def f(alpha):
        y = x + alpha * d
        return float(0.5 * y @ a @ y - b @ y), float((a @ y - b) @ d)

    value0, slope0 = f(0.0)
    res, rec = run(f, alpha_max=1e6)
    assert_strong_wolfe(res, value0, slope0)
    if kind == "newton":
        assert res.alpha == 1.0 and res.n_trials == 1
    # exact minimiser along d, for comparison: any strong-Wolfe point decreases f
    astar = -slope0 / float(d @ a @ d)
    assert res.value <= value0
    assert 0.0 < res.alpha < 20.0 * astar


# --------------------------------------------------------------------------- Rosenbrock
def rosen(x):
    return 100.0 * (x[1] - x[0] ** 2) ** 2 + (1.0 - x[0]) ** 2


def rosen_grad(x):
    return np.array(
        [-400.0 * x[0] * (x[1] - x[0] ** 2) - 2.0 * (1.0 - x[0]), 200.0 * (x[1] - x[0] ** 2)]
    )


def rosen_hess(x):
    return np.array(
        [[1200.0 * x[0] ** 2 - 400.0 * x[1] + 2.0, -400.0 * x[0]], [-400.0 * x[0], 200.0]]
    )


def along(x, d):
    x = np.asarray(x, float)
    return lambda a: (float(rosen(x + a * d)), float(rosen_grad(x + a * d) @ d))


ROSEN_POINTS = [(-1.2, 1.0), (0.0, 0.0), (2.0, 2.0), (0.5, -0.3), (1.3, 1.6)]


@pytest.mark.parametrize("x0", ROSEN_POINTS)
def test_rosenbrock_steepest_descent(x0):
    x0 = np.array(x0)
    f = along(x0, -rosen_grad(x0))
    res, _ = run(f)
    assert_strong_wolfe(res, *f(0.0))


@pytest.mark.parametrize("x0", ROSEN_POINTS)
def test_rosenbrock_newton(x0):
    x0 = np.array(x0)
    h = rosen_hess(x0)
    assert np.all(np.linalg.eigvalsh(h) > 0)
    f = along(x0, -np.linalg.solve(h, rosen_grad(x0)))
    res, _ = run(f)
    assert_strong_wolfe(res, *f(0.0))


def test_rosenbrock_newton_near_solution_one_trial():
    x0 = np.array([1.0 + 1e-3, 1.0 + 2.5e-3])
    f = along(x0, -np.linalg.solve(rosen_hess(x0), rosen_grad(x0)))
    res, rec = run(f)
    assert rec.alphas == [1.0] and res.converged


def test_rosenbrock_newton_iteration_converges():
    # A damped Newton iteration driven by the line search reaches the minimiser,
    # reusing the payload (the gradient at the accepted point) every step.
    x = np.array([-1.2, 1.0])
    g = rosen_grad(x)
    fx = rosen(x)
    evaluations = 0
    for _ in range(100):
        if np.linalg.norm(g) < 1e-10:
            break
        d = -np.linalg.solve(rosen_hess(x), g)

        def phi(a, x=x, d=d):
            nonlocal evaluations
            evaluations += 1
            y = x + a * d
            gy = rosen_grad(y)
            return float(rosen(y)), float(gy @ d), (y, gy)

        res = strong_wolfe(phi, fx, float(g @ d))
        assert res.converged and res.value < fx
        x, g = res.payload
        fx = res.value
    assert np.allclose(x, [1.0, 1.0], atol=1e-8)
    assert evaluations < 60


# --------------------------------------------------------------------------- Moré–Thuente
def mt1(beta=2.0):
    return lambda a: (-a / (a * a + beta), (a * a - beta) / (a * a + beta) ** 2)


def mt2(beta=0.004):
    return lambda a: (
        (a + beta) ** 5 - 2.0 * (a + beta) ** 4,
        5.0 * (a + beta) ** 4 - 8.0 * (a + beta) ** 3,
    )


def mt3(beta=0.01, ell=39):
    def f(a):
        if a <= 1.0 - beta:
            v, g = 1.0 - a, -1.0
        elif a >= 1.0 + beta:
            v, g = a - 1.0, 1.0
        else:
            v, g = (a - 1.0) ** 2 / (2.0 * beta) + beta / 2.0, (a - 1.0) / beta
        w = ell * math.pi / 2.0
        v += 2.0 * (1.0 - beta) / (ell * math.pi) * math.sin(w * a)
        g += (1.0 - beta) * math.cos(w * a)
        return v, g

    return f


def yanai(beta1, beta2):
    def gam(b):
        return math.sqrt(1.0 + b * b) - b

    g1, g2 = gam(beta1), gam(beta2)

    def f(a):
        r1 = math.sqrt((1.0 - a) ** 2 + beta2**2)
        r2 = math.sqrt(a * a + beta1**2)
        return g1 * r1 + g2 * r2, -g1 * (1.0 - a) / r1 + g2 * a / r2

    return f


MT_CASES = [
    ("mt1", mt1(), 1e-3, 0.1),
    ("mt2", mt2(), 1e-4, 0.1),
    ("mt3", mt3(), 1e-4, 0.1),
    ("mt4", yanai(0.001, 0.001), 1e-4, 0.001),
    ("mt5", yanai(0.01, 0.001), 1e-4, 0.001),
    ("mt6", yanai(0.001, 0.01), 1e-4, 0.001),
]


@pytest.mark.parametrize("alpha1", [1e-3, 1e-1, 1.0, 1e1, 1e3])
@pytest.mark.parametrize("name,f,c1,c2", MT_CASES, ids=[c[0] for c in MT_CASES])
def test_more_thuente_functions(name, f, c1, c2, alpha1):
    value0, slope0 = f(0.0)
    # Moré & Thuente's table: their parameters (c1 = mu, c2 = eta, except that
    # c1 < c2 is required here) and starting steps.  Expanding from 1e-3 or
    # zooming in from 1e3 takes more than the default 20 trials.
    res, rec = run(f, alpha1=alpha1, alpha_max=1e4, c1=c1, c2=c2, max_trials=40)
    assert_strong_wolfe(res, value0, slope0, c1, c2)


@pytest.mark.parametrize("name,f", [(c[0], c[1]) for c in MT_CASES])
def test_more_thuente_functions_default_parameters(name, f):
    value0, slope0 = f(0.0)
    res, _ = run(f)
    assert_strong_wolfe(res, value0, slope0)
    assert res.n_trials <= 12


def test_rounding_level_ties_use_the_slope():
    # mt2 near alpha* = 1.596: phi'' ~ 20 and |phi'(0)| ~ 5e-7, so c2 = 0.1 needs
    # |alpha - alpha*| < ~2.5e-9, where phi values agree to rounding.  Comparing the
    # values alone (Algorithm 6 as printed) never gets there.
    f = mt2()
    value0, slope0 = f(0.0)
    res, rec = run(f, alpha1=10.0, alpha_max=1e4, c2=0.1, max_trials=40)
    assert_strong_wolfe(res, value0, slope0, c2=0.1)
    assert res.alpha == pytest.approx(1.596, abs=1e-8)


def test_mt2_brackets_by_positive_slope():
    # phi'(1) ~ -3 (expand), phi'(2) > 0: zoom(2, 1); minimiser at 1.596
    f = mt2()
    res, rec = run(f)
    assert rec.alphas[:2] == [1.0, 2.0]
    assert_strong_wolfe(res, *f(0.0))
    assert 1.0 < res.alpha < 2.0


def test_bracket_by_higher_value():
    # phi(2) satisfies sufficient decrease but phi(2) >= phi(1): zoom(1, 2).
    def f(a):
        k = max(0.0, a - 1.2)
        return -a + 2.0 * k * k, -1.0 + 4.0 * k

    res, rec = run(f)
    assert rec.alphas[:2] == [1.0, 2.0]
    assert_strong_wolfe(res, 0.0, -1.0)
    assert 1.0 < res.alpha < 2.0


# --------------------------------------------------------------------------- cubic
@pytest.mark.parametrize("a,b", [(0.0, 2.0), (2.0, 0.0), (0.5, 1.7), (1.7, 0.5)])
def test_cubic_step_exact_on_cubic(a, b):
    def p(x):
        return x**3 - 3.0 * x + 0.7, 3.0 * x * x - 3.0

    assert _cubic_step(a, *p(a), b, *p(b)) == pytest.approx(1.0, rel=1e-12)


def test_cubic_step_nonfinite():
    assert math.isnan(_cubic_step(0.0, 0.0, -1.0, 1.0, math.nan, 1.0))
    assert math.isnan(_cubic_step(0.0, 0.0, -1.0, 1.0, math.inf, 1.0))
    assert math.isnan(_cubic_step(1.0, 0.0, -1.0, 1.0, 0.0, 1.0))


# --------------------------------------------------------------------------- payload
def test_payload_identity_and_no_reevaluation():
    f = mt2()
    res, rec = run(f)
    assert res.converged
    # the accepted alpha was evaluated exactly once, and its payload is the one returned
    assert rec.alphas.count(res.alpha) == 1
    assert res.payload is rec.calls[rec.alphas.index(res.alpha)][3]
    assert res.n_trials == len(rec.calls)


def test_payload_is_passed_through_untouched():
    sentinel = {"f": [1, 2, 3]}

    def phi(a):
        return 0.5 * (a - 1.0) ** 2, a - 1.0, sentinel

    res = strong_wolfe(phi, 0.5, -1.0)
    assert res.payload is sentinel


def test_accepts_numpy_scalars_returns_floats():
    def phi(a):
        return np.float64(0.5 * (a - 1.0) ** 2), np.float32(a - 1.0), None

    res = strong_wolfe(phi, np.float64(0.5), np.float64(-1.0))
    assert type(res.value) is float and type(res.slope) is float and res.converged


# --------------------------------------------------------------------------- non-finite
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nonfinite_value_shrinks_step(bad):
    s, astar = -1.0, 0.3
    q = -s / astar

    def f(a):
        if a > 0.45:
            return bad, s + q * a
        return s * a + 0.5 * q * a * a, s + q * a

    res, rec = run(f)
    assert rec.alphas[:3] == [1.0, 0.5, 0.25]
    assert_strong_wolfe(res, 0.0, s)
    assert res.alpha <= 0.45


def test_nonfinite_slope_counts_as_failure():
    s, q = -1.0, 1.0 / 0.3

    def f(a):
        v, g = s * a + 0.5 * q * a * a, s + q * a
        return (v, math.nan) if a > 0.45 else (v, g)

    res, rec = run(f)
    assert_strong_wolfe(res, 0.0, s)
    assert res.alpha <= 0.45


def test_nonfinite_during_expansion_returns_best_point():
    # Minimiser at 30 (curvature needs alpha >= 3) but phi is NaN beyond 1.7:
    # no strong-Wolfe point exists; the lowest sufficient-decrease point is returned.
    q = 1.0 / 30.0

    def f(a):
        if a > 1.7:
            return math.nan, math.nan
        return -a + 0.5 * q * a * a, -1.0 + q * a

    res, rec = run(f)
    assert rec.alphas[:2] == [1.0, 2.0]
    assert not res.converged
    finite = [c for c in rec.calls if math.isfinite(c[1])]
    best = min(finite, key=lambda c: c[1])
    assert res.payload is best[3] and res.alpha == best[0]
    assert 1.6 < res.alpha <= 1.7
    assert res.n_trials <= 20


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_always_nonfinite_gives_zero_step(bad):
    res, rec = run(lambda a: (bad, bad), value0=1.0, slope0=-1.0)
    assert res == LineSearchResult(0.0, 1.0, -1.0, None, 20, False)
    assert all(0.0 < a <= 1.0 for a in rec.alphas)


# --------------------------------------------------------------------------- failure, bounds
@pytest.mark.parametrize("slope0", [0.0, 1.0, math.nan, math.inf, -math.inf])
def test_non_descent_direction_raises(slope0):
    rec = Recorder(lambda a: (0.0, 0.0))
    with pytest.raises(ValueError, match="slope0"):
        strong_wolfe(rec, 0.0, slope0)
    assert rec.calls == []


@pytest.mark.parametrize(
    "kw",
    [
        {"c1": 0.0},
        {"c1": 0.5, "c2": 0.4},
        {"c2": 1.0},
        {"alpha1": 0.0},
        {"alpha1": math.nan},
        {"alpha_max": -1.0},
        {"alpha_max": math.inf},
        {"max_trials": 0},
        {"max_trials": 2.5},
        {"max_trials": math.inf},
        {"max_trials": "20"},
    ],
)
def test_invalid_parameters_raise(kw):
    with pytest.raises(ValueError):
        strong_wolfe(lambda a: (0.0, 0.0, None), 0.0, -1.0, **kw)


def test_nonfinite_value0_raises():
    with pytest.raises(ValueError, match="value0"):
        strong_wolfe(lambda a: (0.0, 0.0, None), math.nan, -1.0)


def test_alpha_max_reached_while_descending():
    res, rec = run(lambda a: (-a, -1.0))
    assert rec.alphas == [1.0, 2.0, 4.0]
    assert (res.alpha, res.converged, res.n_trials) == (4.0, False, 3)
    assert res.payload is rec.calls[-1][3]


def test_alpha1_clipped_to_alpha_max():
    res, rec = run(lambda a: (-a, -1.0), alpha_max=0.5)
    assert rec.alphas == [0.5]
    assert res.alpha == 0.5 and not res.converged


def test_max_trials_one_returns_sufficient_decrease_point():
    # alpha* = 20: alpha = 1 satisfies sufficient decrease, not curvature.
    res, rec = run(quadratic_1d(-1.0, 1.0 / 20.0), max_trials=1)
    assert rec.alphas == [1.0]
    assert res.alpha == 1.0 and not res.converged and res.payload is rec.calls[0][3]


def test_increasing_function_gives_zero_step():
    # slope0 claims descent but phi increases: no step ever satisfies sufficient decrease.
    res, rec = run(lambda a: (1.0 + a, 1.0), value0=1.0, slope0=-1.0, max_trials=7)
    assert res == LineSearchResult(0.0, 1.0, -1.0, None, 7, False)


def test_bracket_collapse_stops_early():
    # phi jumps up after 0.3 with slope -1 everywhere: no strong-Wolfe point exists.
    # The bracket shrinks onto the jump and the search stops when it cannot be split
    # in floating point, long before max_trials.
    def f(a):
        return (-a, -1.0) if a <= 0.3 else (1.0, -1.0)

    res, rec = run(f, value0=0.0, slope0=-1.0, max_trials=10_000)
    assert not res.converged
    assert res.n_trials < 100
    assert res.alpha == pytest.approx(0.3, rel=1e-12) and res.alpha <= 0.3


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    max_trials=st.integers(1, 25),
    alpha1=st.floats(1e-3, 1e3),
    alpha_max=st.floats(1e-2, 1e4),
)
def test_adversarial_phi_is_bounded(seed, max_trials, alpha1, alpha_max):
    # Random values and slopes (sometimes non-finite): the search always stops within
    # max_trials, reports what phi returned, and only claims convergence honestly.
    rng = np.random.default_rng(seed)

    def f(a):
        u = rng.random()
        if u < 0.1:
            return math.nan, 0.0
        if u < 0.15:
            return math.inf, math.inf
        return float(rng.normal()), float(rng.normal())

    res, rec = run(f, value0=0.0, slope0=-1.0, alpha1=alpha1, alpha_max=alpha_max,
                   max_trials=max_trials)
    assert all(0.0 < a <= alpha_max for a in rec.alphas)
    if res.converged:
        assert_strong_wolfe(res, 0.0, -1.0)
    elif res.alpha > 0:
        assert res.value <= 1e-4 * res.alpha * -1.0


# ---------------------------------------------------------------- giving up early
@pytest.mark.parametrize("astar", [1e-2, 1e-4, 1e-6])
def test_give_up_below_stops_after_the_first_trial(astar):
    """A quadratic whose minimiser lies far inside the step: the first trial's cubic
    puts it below ``give_up_below``, so the search ends there with no step, where the
    full search would have shortened the step to about ``astar``."""
    f = lambda a: (0.5 * (a - astar) ** 2 / astar, (a - astar) / astar)  # noqa: E731
    value0, slope0 = f(0.0)
    rec = Recorder(f)
    res = strong_wolfe(rec, value0, slope0, give_up_below=0.1)
    assert rec.alphas == [1.0]
    assert res.alpha == 0.0 and res.payload is None and not res.converged
    assert res.n_trials == 1
    full = strong_wolfe(Recorder(f), value0, slope0)
    assert full.converged and full.alpha < 0.1 and full.n_trials > 1


@pytest.mark.parametrize("astar", [0.15, 0.4])
def test_give_up_below_keeps_steps_above_it(astar):
    """A minimiser above ``give_up_below``: the search runs as without it."""
    f = lambda a: (0.5 * (a - astar) ** 2 / astar, (a - astar) / astar)  # noqa: E731
    value0, slope0 = f(0.0)
    rec, plain = Recorder(f), Recorder(f)
    res = strong_wolfe(rec, value0, slope0, give_up_below=0.1)
    strong_wolfe(plain, value0, slope0)
    assert_strong_wolfe(res, value0, slope0)
    assert rec.alphas == plain.alphas
    assert res.alpha == pytest.approx(astar)


def test_give_up_below_needs_a_model():
    """A non-finite first trial gives no cubic: the step is halved as without the rule."""
    f = lambda a: ((math.inf, math.nan) if a > 0.6 else ((a - 0.3) ** 2, 2 * (a - 0.3)))  # noqa: E731
    value0, slope0 = f(0.0)
    rec = Recorder(f)
    res = strong_wolfe(rec, value0, slope0, give_up_below=0.1)
    assert rec.alphas[:2] == [1.0, 0.5]
    assert_strong_wolfe(res, value0, slope0)


def test_give_up_below_on_a_quartic():
    """Far from a solution the objective along a Newton step grows like alpha⁴: the
    cubic through both slopes would only shrink the step about threefold per trial, the
    quadratic through phi(0), phi'(0), phi(1) sees the minimiser (0.036) below 0.1."""
    def f(a):
        return (1 - a) ** 2 + 1e4 * a ** 4, -2 * (1 - a) + 4e4 * a ** 3

    rec = Recorder(f)
    res = strong_wolfe(rec, *f(0.0), give_up_below=0.1)
    assert rec.alphas == [1.0] and res.alpha == 0.0 and res.payload is None
    full = strong_wolfe(Recorder(f), *f(0.0))
    assert full.alpha == pytest.approx(0.036, abs=0.01)

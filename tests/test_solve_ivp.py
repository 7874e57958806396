"""End-to-end tests of chebpan.solve_ivp (method="PAN", the default).

Accuracy is asserted against exact solutions (closed forms, matrix exponentials) or the
mpmath references of chebpan.testing, never against chebpan's own earlier output.
"""

import warnings

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
from numpy.testing import assert_allclose, assert_array_equal
from scipy.sparse import csc_matrix

import chebpan
from chebpan.testing import lorenz, spiral
from chebpan._control.policy import auto_n_coeffs

SCIPY_SUCCESS = "The solver successfully reached the end of the integration interval."


# ------------------------------------------------------------------------------ problems
#
# Every fun works both per point (float t, y (n,)) and vectorised (t (P,), y (n, P)).
# jac is per point (scipy's convention); exact(t) takes a 1-D array and returns (n, k).


class Problem:
    def __init__(self, name, fun, t_span, exact, jac=None):
        self.name, self.fun, self.t_span, self.exact_fn, self.jac = name, fun, t_span, exact, jac

    def exact(self, t):
        return self.exact_fn(np.atleast_1d(np.asarray(t, dtype=float)))

    def span(self, backward):
        return tuple(self.t_span[::-1]) if backward else tuple(self.t_span)

    def y0(self, backward):
        return self.exact(self.span(backward)[0])[:, 0]


def _decay():
    return Problem("decay", lambda t, y: -y, (0.0, 5.0), lambda t: np.exp(-t)[None, :],
                   jac=lambda t, y: np.array([[-1.0]]))


def matvec(A, y):
    """A @ y written out elementwise: bit-identical for y of shape (n,) and (n, P)
    (BLAS matmul may round (n, n) @ (n, P) differently from (n, n) @ (n,))."""
    return np.stack([sum(A[i, j] * y[j] for j in range(A.shape[1])) for i in range(A.shape[0])])


def expm_flow(A, t, y0):
    """exp(A t) y0 for each t (one batched scipy.linalg.expm call): shape (n, k)."""
    t = np.asarray(t, dtype=float)
    return np.einsum("kij,j->ik", scipy.linalg.expm(A[None] * t[:, None, None]), y0)


ROT = 2.0 * np.array([[0.0, 1.0], [-1.0, 0.0]])
ROT_Y0 = np.array([1.0, 0.5])


def _rotation():
    return Problem("rotation", lambda t, y: matvec(ROT, y), (0.0, 10.0),
                   lambda t: expm_flow(ROT, t, ROT_Y0),
                   jac=lambda t, y: ROT)


OSC = np.array([[0.0, 1.0], [-400.0, -0.2]])  # lightly damped, ω = 20 (32 periods)
OSC_Y0 = np.array([1.0, 0.0])


def _oscillator():
    return Problem("oscillator", lambda t, y: matvec(OSC, y), (0.0, 10.0),
                   lambda t: expm_flow(OSC, t, OSC_Y0), jac=lambda t, y: OSC)


def _square():
    return Problem("square", lambda t, y: y**2, (0.0, 0.9), lambda t: (1 / (1 - t))[None, :],
                   jac=lambda t, y: np.array([[2 * y[0]]]))


def fun_rational(t, y):
    return np.stack([y[1] / t, y[1] * (y[0] + 2 * y[1] - 1) / (t * (y[0] - 1))])


def jac_rational(t, y):
    return np.array([
        [0, 1 / t],
        [-2 * y[1] ** 2 / (t * (y[0] - 1) ** 2), (y[0] + 4 * y[1] - 1) / (t * (y[0] - 1))],
    ])


def _rational():
    """scipy's test problem (scipy/integrate/_ivp/tests/test_ivp.py)."""
    return Problem("rational", fun_rational, (5.0, 9.0),
                   lambda t: np.stack([t / (t + 10), 10 * t / (t + 10) ** 2]), jac=jac_rational)


PROBLEMS = {p().name: p for p in (_decay, _rotation, _oscillator, _square, _rational)}


def assert_within_tol(y, exact, rtol, atol, factor=10.0):
    """|y − exact| ≤ factor · (atol + rtol |exact|) everywhere."""
    y, exact = np.asarray(y), np.asarray(exact)
    assert y.shape == exact.shape
    ratio = np.abs(y - exact) / (atol + rtol * np.abs(exact))
    assert ratio.max() <= factor, f"error / tolerance = {ratio.max():.3g}"


# ------------------------------------------------------------------------------ accuracy


@pytest.mark.parametrize("name", sorted(PROBLEMS))
@pytest.mark.parametrize("tol", [1e-6, 1e-10])
@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
@pytest.mark.parametrize("vectorized", [True, False], ids=["vec", "loop"])
def test_accuracy_against_exact_solution(name, tol, backward, vectorized):
    p = PROBLEMS[name]()
    span = p.span(backward)
    res = chebpan.solve_ivp(p.fun, span, p.y0(backward), vectorized=vectorized,
                            rtol=tol, atol=tol, dense_output=True)
    assert res.status == 0 and res.success, res.message
    assert res.t[0] == span[0] and res.t[-1] == span[1]
    d = np.diff(res.t)
    assert np.all(d < 0) if backward else np.all(d > 0)
    assert_within_tol(res.y, p.exact(res.t), tol, tol)
    # between the segment ends too (the dense output is the solution)
    t_fine = np.linspace(*span, 301)
    assert_within_tol(res.sol(t_fine), p.exact(t_fine), tol, tol)


@pytest.mark.parametrize("name", sorted(PROBLEMS))
@pytest.mark.parametrize("tol", [1e-6, 1e-10])
@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_vectorized_and_loop_agree(name, tol, backward):
    p = PROBLEMS[name]()
    kw = dict(rtol=tol, atol=tol)
    calls = {"vec": [], "loop": []}

    def fun_vec(t, y):
        calls["vec"].append(np.shape(t))
        assert np.ndim(t) == 1 and y.ndim == 2 and y.shape[1] == np.shape(t)[0]
        return p.fun(t, y)

    def fun_loop(t, y):
        calls["loop"].append(np.shape(t))
        assert isinstance(t, float) and y.ndim == 1
        return p.fun(t, y)

    # The problems' funs give bit-identical values per point and vectorised, so the two
    # modes must take the same decisions and agree to rounding.
    rv = chebpan.solve_ivp(fun_vec, p.span(backward), p.y0(backward), vectorized=True, **kw)
    rl = chebpan.solve_ivp(fun_loop, p.span(backward), p.y0(backward), vectorized=False, **kw)
    assert rv.status == rl.status == 0
    assert_allclose(rl.t, rv.t, rtol=1e-14, atol=0)
    assert_allclose(rl.y, rv.y, rtol=1e-13, atol=1e-15 * np.abs(rv.y).max())
    assert rv.npoints == rl.npoints and rv.depth == rl.depth
    assert rl.nfev == rl.npoints  # one call per point
    # one call per round: a forward-difference Jacobian's points join the round's call
    assert rv.nfev == rv.depth
    assert len(calls["vec"]) == rv.nfev and len(calls["loop"]) == rl.nfev


STIFFISH = np.array([[-50.0, 1.0], [-1.0, -25.0]])


@pytest.mark.parametrize("jac_kind", ["callable", "array", "sparse", "callable-sparse", "none"])
@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_jacobian_variants_linear(jac_kind, backward):
    """A mildly stiff linear system on which the hybrid iteration uses Newton."""
    n_jac = []

    def jac_callable(t, y):
        n_jac.append(t)
        return STIFFISH

    jac = {
        "callable": jac_callable,
        "array": STIFFISH,
        "sparse": csc_matrix(STIFFISH),
        "callable-sparse": lambda t, y: (n_jac.append(t), csc_matrix(STIFFISH))[1],
        "none": None,
    }[jac_kind]
    span = (2.0, 0.0) if backward else (0.0, 2.0)
    y_start = np.array([1.0, 1.0])
    exact = lambda t: expm_flow(STIFFISH, np.atleast_1d(t) - span[0], y_start)  # noqa: E731
    res = chebpan.solve_ivp(lambda t, y: STIFFISH @ y, span, y_start, vectorized=True,
                            rtol=1e-8, atol=1e-8, jac=jac, dense_output=True)
    assert res.status == 0, res.message
    assert res.nlu > 0 and res.niter_newton > 0  # the Jacobian was used
    # a constant matrix is not an evaluation: njev stays 0, as in scipy
    assert (res.njev == 0) if jac_kind in ("array", "sparse") else (res.njev > 0)
    if jac_kind.startswith("callable"):
        assert len(n_jac) > 0
        assert all(min(span) <= t <= max(span) for t in n_jac)
    if jac_kind == "none":
        # forward differences evaluate L·M extra points per Jacobian, in the round's
        # own call of fun
        m = res.sol.coeffs.shape[-1] - 1
        assert res.npoints >= m * (res.depth - 2) + 2 * m * res.njev
        assert res.nfev == res.depth
    assert_within_tol(res.y, exact(res.t), 1e-8, 1e-8)
    t_fine = np.linspace(*span, 101)
    assert_within_tol(res.sol(t_fine), exact(t_fine), 1e-8, 1e-8)


@pytest.mark.parametrize("name", ["rational", "square", "rotation"])
@pytest.mark.parametrize("jac_kind", ["callable", "callable-sparse", "none"])
@pytest.mark.parametrize("vectorized", [True, False], ids=["vec", "loop"])
def test_jacobian_variants_nonlinear_newton_forced(name, jac_kind, vectorized):
    """max_picard=1 hands every segment to Newton, so the Jacobian matters."""
    p = PROBLEMS[name]()
    jac = {"callable": p.jac, "callable-sparse": lambda t, y: csc_matrix(p.jac(t, y)),
           "none": None}[jac_kind]
    res = chebpan.solve_ivp(p.fun, p.t_span, p.y0(False), vectorized=vectorized,
                            rtol=1e-10, atol=1e-10, jac=jac, max_picard=1)
    assert res.status == 0, res.message
    assert res.njev > 0 and res.niter_newton > 0
    assert_within_tol(res.y, p.exact(res.t), 1e-10, 1e-10)


def test_vectorized_jac():
    p = PROBLEMS["rational"]()
    shapes = []

    def jac_vec(t, y):
        shapes.append((np.shape(t), y.shape))
        return np.stack([np.stack([np.zeros_like(t), 1 / t]),
                         np.stack([-2 * y[1] ** 2 / (t * (y[0] - 1) ** 2),
                                   (y[0] + 4 * y[1] - 1) / (t * (y[0] - 1))])])

    res = chebpan.solve_ivp(p.fun, p.t_span, p.y0(False), vectorized=True, jac=jac_vec,
                            vectorized_jac=True, rtol=1e-10, atol=1e-10, max_picard=1)
    assert res.status == 0
    assert shapes and all(len(s[0]) == 1 and s[1][1] == s[0][0] for s in shapes)
    assert len(shapes) == res.njev
    assert_within_tol(res.y, p.exact(res.t), 1e-10, 1e-10)


# ------------------------------------------------------------------------------ the paper's problems


def test_paper_spiral():
    p = spiral()
    ref = p.reference_array()
    res = chebpan.solve_ivp(p.fun, p.t_span, p.y0, vectorized=True, rtol=1e-10, atol=1e-10)
    assert res.status == 0
    err = np.abs(res.y[:, -1] - ref).max()
    assert err <= 1e-11, f"error at t=10: {err:.3g}"
    assert res.depth <= 30, f"depth {res.depth} (error {err:.3g}, npoints {res.npoints})"


def test_paper_lorenz():
    p = lorenz()
    ref = p.reference_array()
    res = chebpan.solve_ivp(p.fun, p.t_span, p.y0, vectorized=True, jac=p.jac,
                            vectorized_jac=True, rtol=1e-10, atol=1e-10)
    assert res.status == 0
    err = np.abs(res.y[:, -1] - ref).max()
    assert err <= 1e-7, f"error at t=15: {err:.3g}"
    assert res.depth <= 800, f"depth {res.depth} (error {err:.3g}, npoints {res.npoints})"


# ------------------------------------------------------------------------------ the result object

FIELDS_INT = ["nfev", "njev", "nlu", "status", "depth", "npoints", "nsegments", "nrejected",
              "niter_picard", "niter_newton"]


@pytest.mark.parametrize("dense_output", [False, True])
def test_result_fields(dense_output):
    p = PROBLEMS["rotation"]()
    res = chebpan.solve_ivp(p.fun, p.t_span, p.y0(False), vectorized=True,
                            dense_output=dense_output, rtol=1e-8, atol=1e-8)
    for name in ["t", "y", "sol", "t_events", "y_events", "message", "success"] + FIELDS_INT:
        assert name in res, name
        assert getattr(res, name) is res[name]
    for name in FIELDS_INT:
        value = getattr(res, name)
        assert isinstance(value, int) and not isinstance(value, bool), (name, type(value))
        assert value >= 0 or name == "status"
    assert res.status == 0 and res.success is True
    assert res.message == SCIPY_SUCCESS
    ref = scipy.integrate.solve_ivp(p.fun, p.t_span, p.y0(False))
    assert res.message == ref.message  # scipy's own text for status 0
    assert res.t_events is None and res.y_events is None
    assert (res.sol is not None) == dense_output
    assert isinstance(res.t, np.ndarray) and isinstance(res.y, np.ndarray)
    assert res.t.dtype == np.float64 and res.y.dtype == np.float64
    assert res.y.shape == (2, res.t.size)
    assert res.t[0] == p.t_span[0] and res.t[-1] == p.t_span[1]
    assert res.nsegments == res.t.size - 1
    # one fun call per round, a forward-difference Jacobian's points included
    # (rounds are all 31 nodes but the first call and the initial-step probe)
    assert res.npoints >= (res.depth - 2) * 31 and res.nfev == res.depth
    assert res.nsegments > 0 and res.niter_picard + res.niter_newton >= res.nsegments


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_endpoints_exact_awkward_span(backward):
    span = (0.1, 2.3) if not backward else (2.3, 0.1)
    res = chebpan.solve_ivp(lambda t, y: -y, span, [1.0], vectorized=True, rtol=1e-9,
                            atol=1e-12, max_step=0.37)
    assert res.t[0] == span[0] and res.t[-1] == span[1]
    assert_within_tol(res.y, np.exp(-(res.t - span[0]))[None], 1e-9, 1e-12)


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_t_eval_served_exactly(backward):
    p = PROBLEMS["rational"]()
    span = p.span(backward)
    t_eval = np.linspace(*span, 17)
    t_eval[1:-1] += 0.01  # not a grid the solver would pick
    res = chebpan.solve_ivp(p.fun, span, p.y0(backward), vectorized=True, t_eval=t_eval,
                            rtol=1e-10, atol=1e-10, dense_output=True)
    assert res.status == 0
    assert_array_equal(res.t, t_eval)
    assert res.t.dtype == t_eval.dtype
    assert_within_tol(res.y, p.exact(t_eval), 1e-10, 1e-10)
    assert_allclose(res.sol(t_eval), res.y, rtol=1e-15, atol=1e-15)


def test_t_eval_integer_dtype_kept():
    t_eval = np.arange(0, 6)
    res = chebpan.solve_ivp(lambda t, y: -y, (0, 5), [1.0], vectorized=True, t_eval=t_eval,
                            rtol=1e-10, atol=1e-12)
    assert res.status == 0
    assert res.t.dtype == t_eval.dtype
    assert_array_equal(res.t, t_eval)
    assert_within_tol(res.y, np.exp(-t_eval.astype(float))[None], 1e-10, 1e-12)
    # backward with a list of ints
    res = chebpan.solve_ivp(lambda t, y: -y, (5, 0), [np.exp(-5.0)], vectorized=True,
                            t_eval=[5, 3, 1, 0], rtol=1e-10, atol=1e-12)
    assert_array_equal(res.t, [5, 3, 1, 0])
    assert np.issubdtype(res.t.dtype, np.integer)
    assert_within_tol(res.y, np.exp(-np.array([5.0, 3, 1, 0]))[None], 1e-10, 1e-12)


@pytest.mark.parametrize("t_eval", [None, np.linspace(0, 10, 23)])
@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_dense_output_does_not_change_y(t_eval, backward):
    p = PROBLEMS["rotation"]()
    span = p.span(backward)
    if t_eval is not None and backward:
        t_eval = t_eval[::-1]
    kw = dict(vectorized=True, t_eval=t_eval, rtol=1e-7, atol=1e-7)
    r0 = chebpan.solve_ivp(p.fun, span, p.y0(backward), **kw)
    r1 = chebpan.solve_ivp(p.fun, span, p.y0(backward), dense_output=True, **kw)
    assert r0.sol is None and r1.sol is not None
    assert_array_equal(r0.t, r1.t)
    assert_array_equal(r0.y, r1.y)


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_sol_reproduces_y_and_shapes(backward):
    p = PROBLEMS["rotation"]()
    span = p.span(backward)
    res = chebpan.solve_ivp(p.fun, span, p.y0(backward), vectorized=True, dense_output=True,
                            rtol=1e-9, atol=1e-9, max_step=1.3)
    sol = res.sol
    assert_allclose(sol(res.t), res.y, rtol=1e-15, atol=1e-15)
    assert_array_equal(sol.ts, res.t)
    assert sol.t_min == min(span) and sol.t_max == max(span)
    assert sol(3.3).shape == (2,)
    assert sol(np.float64(3.3)).shape == (2,)
    assert sol([3.3]).shape == (2, 1)
    assert sol(np.linspace(0, 10, 7)).shape == (2, 7)
    assert_within_tol(sol(3.3)[:, None], p.exact(3.3), 1e-9, 1e-9)
    # per-point evaluation agrees with vectorised evaluation
    ts = np.linspace(0, 10, 9)
    assert_allclose(np.stack([sol(t) for t in ts], axis=1), sol(ts), rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_first_step_honoured(backward):
    span = (10.0, 0.0) if backward else (0.0, 10.0)
    first = 0.125
    res = chebpan.solve_ivp(lambda t, y: -0.3 * y, span, [1.0], vectorized=True,
                            first_step=first, rtol=1e-3, atol=1e-6)
    assert res.status == 0
    assert abs(res.t[1] - res.t[0]) == first
    # the first segment is accepted, and the solver moves on to longer ones
    assert abs(res.t[2] - res.t[1]) > first
    assert_within_tol(res.y, np.exp(-0.3 * (res.t - span[0]))[None], 1e-3, 1e-6)


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
@pytest.mark.parametrize("max_step", [0.7, 0.05])
def test_max_step_honoured(backward, max_step):
    p = PROBLEMS["rotation"]()
    span = p.span(backward)
    res = chebpan.solve_ivp(p.fun, span, p.y0(backward), vectorized=True, max_step=max_step,
                            rtol=1e-8, atol=1e-8)
    assert res.status == 0
    assert np.all(np.abs(np.diff(res.t)) <= max_step + 1e-15)
    assert res.t.size - 1 >= np.ceil(10 / max_step)
    assert_within_tol(res.y, p.exact(res.t), 1e-8, 1e-8)


def test_args_passed_to_fun_and_jac():
    seen = {"fun": set(), "jac": set()}

    def fun(t, y, a, b):
        seen["fun"].add((a, b))
        return -a * y + b

    def jac(t, y, a, b):
        seen["jac"].add((a, b))
        return np.array([[-a]])

    a, b = 3.0, 1.5
    res = chebpan.solve_ivp(fun, (0, 2), [2.0], args=(a, b), jac=jac, max_picard=1,
                            rtol=1e-10, atol=1e-10)
    assert res.status == 0 and res.njev > 0
    assert seen == {"fun": {(a, b)}, "jac": {(a, b)}}
    exact = b / a + (2.0 - b / a) * np.exp(-a * res.t)
    assert_within_tol(res.y, exact[None], 1e-10, 1e-10)
    # args as a list, vectorised
    res = chebpan.solve_ivp(fun, (0, 2), [2.0], args=[a, b], vectorized=True, rtol=1e-10,
                            atol=1e-10)
    assert_within_tol(res.y, (b / a + (2.0 - b / a) * np.exp(-a * res.t))[None], 1e-10, 1e-10)


@pytest.mark.parametrize("dense_output", [False, True])
def test_zero_length_span(dense_output):
    calls = []

    def fun(t, y):
        calls.append(t)
        return -y

    res = chebpan.solve_ivp(fun, (1.5, 1.5), [1.0, 2.0], dense_output=dense_output)
    assert res.status == 0 and res.success and res.message == SCIPY_SUCCESS
    assert_array_equal(res.t, [1.5, 1.5])
    assert_array_equal(res.y, [[1.0, 1.0], [2.0, 2.0]])
    assert all(t == 1.5 for t in calls)
    if dense_output:
        assert_array_equal(res.sol(1.5), [1.0, 2.0])
    ref = scipy.integrate.solve_ivp(fun, (1.5, 1.5), [1.0, 2.0])
    assert_array_equal(res.t, ref.t)
    assert_array_equal(res.y, ref.y)


def test_unknown_option_warns():
    with pytest.warns(UserWarning, match="no_such_option"):
        res = chebpan.solve_ivp(lambda t, y: -y, (0, 1), [1.0], no_such_option=3)
    assert res.status == 0


def test_known_options_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chebpan.solve_ivp(lambda t, y: -y, (0, 1), [1.0], rtol=1e-6, atol=1e-8,
                          first_step=0.1, max_step=0.5, jac=[[-1.0]], n_coeffs=16,
                          n_nodes=18, max_picard=5, max_newton=5, rho_newton=0.3,
                          tol_ls=1e-12, tol_newton=1e-12, vectorized_jac=False)


class OutsideSpan(Exception):
    pass


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
@pytest.mark.parametrize("vectorized", [True, False], ids=["vec", "loop"])
@pytest.mark.parametrize("opts", [{}, {"max_step": 0.13}, {"max_picard": 1},
                                  {"max_picard": 1, "jac": "callable"},
                                  {"first_step": 1e-3, "rtol": 1e-11, "atol": 1e-11}],
                         ids=["default", "max_step", "newton-fd", "newton-jac", "tight"])
def test_fun_never_evaluated_outside_t_span(backward, vectorized, opts):
    lo, hi = 0.1, 1.7  # not binary fractions
    span = (hi, lo) if backward else (lo, hi)
    opts = dict(opts)
    times = []

    def check(t):
        t = np.atleast_1d(t)
        times.extend(t.tolist())
        if np.any(t < lo) or np.any(t > hi):
            raise OutsideSpan(f"t = {t[(t < lo) | (t > hi)].tolist()} outside [{lo}, {hi}]")

    def fun(t, y):
        check(t)
        return np.stack([np.cos(t) * y[1], -y[0] + np.sin(3 * t)])

    if opts.get("jac") == "callable":
        def jac(t, y):
            check(t)
            return np.array([[0.0, np.cos(t)], [-1.0, 0.0]])
        opts["jac"] = jac
    res = chebpan.solve_ivp(fun, span, [1.0, 0.5], vectorized=vectorized, **opts)
    assert res.status == 0, res.message
    # both ends are reached (to rounding: exactness at tf is not asked for here)
    assert abs(min(times) - lo) < 1e-14 and abs(max(times) - hi) < 1e-14


@pytest.mark.parametrize("span,first_step", [((0.1, 1.7), 0.25), ((1.7, 0.1), 0.75)],
                         ids=["forward", "backward"])
def test_last_segment_nodes_within_t_span(span, first_step):
    """Deterministic case of the test above: after a first segment of length first_step,
    t_a + (tf − t_a) rounds past tf (1.7000000000000002 / 0.09999999999999998); the
    last segment's nodes must still lie in t_span (scipy evaluates fun at tf itself)."""
    lo, hi = min(span), max(span)
    t_a = span[0] + np.sign(span[1] - span[0]) * first_step
    assert (t_a + (span[1] - t_a) - span[1]) * np.sign(span[1] - span[0]) > 0  # the trap

    def fun(t, y):
        t = np.asarray(t)
        if np.any(t < lo) or np.any(t > hi):
            raise OutsideSpan(f"fun called at t = {t[(t < lo) | (t > hi)].tolist()}")
        return -y

    res = chebpan.solve_ivp(fun, span, [1.0], vectorized=True, first_step=first_step)
    assert res.status == 0
    assert_array_equal(res.t, [span[0], t_a, span[1]])  # the scenario really happened


# ------------------------------------------------------------------------------ options


@pytest.mark.parametrize("name", ["rational", "rotation", "square"])
@pytest.mark.parametrize("opts", [
    {"tol_ls": 1e-13},
    {"tol_ls": 1e-13, "tol_newton": 1e-13, "max_picard": 1},
    {"n_coeffs": 12},
    {"n_coeffs": 8},
    {"n_coeffs": 16, "n_nodes": 24},
    {"n_coeffs": 12, "n_nodes": 30, "max_picard": 1},
    {"n_coeffs": 48},
], ids=["tol_ls", "tol_ls+tol_newton", "N12", "N8", "N16M24", "N12M30-newton", "N48"])
def test_iteration_and_basis_options(name, opts):
    p = PROBLEMS[name]()
    tol = 1e-9
    sizes = set()

    def fun(t, y):
        sizes.add(np.shape(t)[0])
        return p.fun(t, y)

    res = chebpan.solve_ivp(fun, p.t_span, p.y0(False), vectorized=True, rtol=tol, atol=tol,
                            dense_output=True, **opts)
    assert res.status == 0, res.message
    assert_within_tol(res.y, p.exact(res.t), tol, tol)
    t_fine = np.linspace(*p.t_span, 101)
    assert_within_tol(res.sol(t_fine), p.exact(t_fine), tol, tol)
    n = opts.get("n_coeffs", auto_n_coeffs(tol, len(p.y0(False))))
    m = opts.get("n_nodes", n - 1)
    assert res.sol.coeffs.shape[-1] == n
    # fun sees single points (start, initial-step probe) and all M nodes of a segment
    # (times L + 1 with a forward-difference Jacobian's points), for up to three
    # candidate starts evaluated in the same round (docs/algorithm.md)
    L = len(p.y0(False))
    allowed = {1} | {k * m for k in (1, 2, 3)} | {k * (L + 1) * m for k in (1, 2, 3)}
    assert m in sizes and sizes <= allowed, sizes
    if "tol_newton" in opts or opts.get("max_picard") == 1:
        assert res.niter_newton > 0


def test_smaller_basis_needs_more_segments():
    """n_coeffs is really used: fewer coefficients, more (shorter) segments."""
    p = PROBLEMS["rotation"]()
    counts = [chebpan.solve_ivp(p.fun, p.t_span, p.y0(False), vectorized=True, rtol=1e-10,
                                atol=1e-10, n_coeffs=n).nsegments for n in (8, 16, 32)]
    assert counts[0] > counts[1] > counts[2], counts


# ------------------------------------------------------------------------------ scipy methods


@pytest.mark.parametrize("method", ["RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA",
                                    scipy.integrate.Radau])
def test_scipy_methods_forwarded(method):
    p = PROBLEMS["rational"]()
    kw = dict(rtol=1e-6, atol=1e-9, dense_output=True, t_eval=np.linspace(5, 9, 7))
    if method in ("Radau", "BDF", "LSODA", scipy.integrate.Radau):
        kw["jac"] = jac_rational
    res = chebpan.solve_ivp(fun_rational, p.t_span, p.y0(False), method=method, **kw)
    ref = scipy.integrate.solve_ivp(fun_rational, p.t_span, p.y0(False), method=method, **kw)
    assert_array_equal(res.t, ref.t)
    assert_array_equal(res.y, ref.y)
    assert (res.nfev, res.njev, res.nlu, res.status, res.message) == \
        (ref.nfev, ref.njev, ref.nlu, ref.status, ref.message)
    assert_array_equal(res.sol(6.3), ref.sol(6.3))
    assert "depth" not in res  # scipy's result, unchanged


def test_scipy_method_gets_vectorized_and_args():
    def fun(t, y, k):
        return -k * y

    res = chebpan.solve_ivp(fun, (0, 1), [1.0, 2.0], method="RK45", args=(2.0,),
                            vectorized=True)
    ref = scipy.integrate.solve_ivp(fun, (0, 1), [1.0, 2.0], method="RK45", args=(2.0,),
                                    vectorized=True)
    assert_array_equal(res.y, ref.y)


def test_pan_method_name_explicit():
    res = chebpan.solve_ivp(lambda t, y: -y, (0, 1), [1.0], method="PAN", rtol=1e-10,
                            atol=1e-12)
    assert "depth" in res and res.status == 0
    assert abs(res.y[0, -1] - np.exp(-1)) < 1e-10


def test_stretching_to_the_end_never_exceeds_max_step():
    res = chebpan.solve_ivp(lambda t, y: -y, (0, 1.2), [1.0], max_step=1.0, first_step=1.0)
    assert np.all(np.abs(np.diff(res.t)) <= 1.0)


def test_no_jacobian_evaluated_when_newton_is_not_allowed():
    # max_newton_size bounds the dense Newton systems; with only dense ones allowed
    # nothing above it gets Newton steps ...
    res = chebpan.solve_ivp(lambda t, y: -50 * y, (0, 1), [1.0, 2.0], vectorized=True,
                            max_newton_size=0, newton_linear_solver="dense",
                            rtol=1e-8, atol=1e-10)
    assert res.status == 0 and res.njev == 0 and res.niter_newton == 0
    np.testing.assert_allclose(res.y[:, -1], [np.exp(-50), 2 * np.exp(-50)], atol=1e-9)
    # ... while by default the structured solves take over on stiff segments
    res = chebpan.solve_ivp(lambda t, y: -50 * y, (0, 1), [1.0, 2.0], vectorized=True,
                            max_newton_size=0, rtol=1e-8, atol=1e-10)
    assert res.status == 0 and res.njev > 0 and res.niter_newton > 0
    np.testing.assert_allclose(res.y[:, -1], [np.exp(-50), 2 * np.exp(-50)], atol=1e-9)

"""Complex ``y0`` (issue #3): the real system of twice the size, complex results.

Two ways to solve are tested with the same test bodies (the ``solve`` fixture):

* ``realify``: what the front end does, step by step —
  :func:`chebpan._frontend.complex_state.realify`, ``chebpan.solve_ivp`` on the real
  system, :func:`chebpan._frontend.complex_result.complexify_result`;
* ``front_end``: ``chebpan.solve_ivp`` called with the complex ``y0`` directly.

Accuracy is asserted against closed forms and matrix exponentials.
"""

import numpy as np
import pytest
import scipy.linalg
from numpy.testing import assert_allclose, assert_array_equal
from scipy.sparse import csc_matrix, issparse

import chebpan
from chebpan._frontend.complex_result import (
    ComplexDenseOutput,
    ComplexOdeSolution,
    complexify_result,
)
from chebpan._frontend.complex_state import (
    real_block_jacobian,
    realify,
    realify_event,
    realify_events,
    to_complex,
    to_real,
)
from chebpan._output.result import OdeResult
from chebpan._frontend.arguments import wrap_args, wrap_jac
from chebpan._frontend.validation import validate_tol, validate_y0

def _bind_event(event, args):
    def bound(t, y):
        return event(t, y, *args)

    for name in ("terminal", "direction"):
        if hasattr(event, name):
            setattr(bound, name, getattr(event, name))
    return bound


def solve_via_realify(fun, t_span, y0, *, vectorized=False, args=None, events=None,
                      **options):
    """What the front end will do for a complex ``y0``."""
    jac = options.pop("jac", None)
    if args is not None:  # bound here: the real functions take no extra arguments
        args = tuple(args)
        fun, jac = wrap_args(fun, args), wrap_jac(jac, args)
        if events is not None:
            events = [_bind_event(event, args)
                      for event in ([events] if callable(events) else events)]
    y0 = validate_y0(y0)
    n = y0.shape[0]
    rtol, atol = validate_tol(options.pop("rtol", 1e-3), options.pop("atol", 1e-6), n)
    vectorized_jac = options.pop("vectorized_jac", False)
    real_fun, real_jac, real_y0, real_rtol, real_atol = realify(
        fun, jac, y0, rtol, atol, vectorized, vectorized_jac)
    if real_jac is not None:
        options["jac"] = real_jac
        options["vectorized_jac"] = vectorized_jac
    res = chebpan.solve_ivp(real_fun, t_span, real_y0, vectorized=vectorized,
                            rtol=real_rtol, atol=real_atol,
                            events=realify_events(events, n), **options)
    return complexify_result(res, n)


def solve_via_front_end(fun, t_span, y0, **kwargs):
    """``chebpan.solve_ivp`` with the complex ``y0`` itself."""
    return chebpan.solve_ivp(fun, t_span, y0, **kwargs)


@pytest.fixture(params=["realify", "front_end"])
def solve(request):
    return {"realify": solve_via_realify, "front_end": solve_via_front_end}[request.param]


def assert_within_tol(y, exact, rtol, atol, factor=10.0):
    """|y − exact| ≤ factor · (atol + rtol |exact|) everywhere (complex modulus)."""
    y, exact = np.asarray(y), np.asarray(exact)
    assert y.shape == exact.shape
    ratio = np.abs(y - exact) / (atol + rtol * np.abs(exact))
    assert ratio.max() <= factor, f"error / tolerance = {ratio.max():.3g}"


# ------------------------------------------------------------------------------ problems
#
# fun works per point (float t, y (n,)) and vectorised (t (P,), y (n, P)); jac is per
# point (complex (n, n)), jac_vec vectorised ((n, n, P)); jac_const a constant matrix or
# None; exact(t) takes a 1-D array and returns (n, k).


class Problem:
    def __init__(self, name, fun, t_span, exact, jac, jac_vec, jac_const=None):
        self.name, self.fun, self.t_span, self.exact_fn = name, fun, t_span, exact
        self.jac, self.jac_vec, self.jac_const = jac, jac_vec, jac_const

    def exact(self, t):
        return self.exact_fn(np.atleast_1d(np.asarray(t, dtype=float)))

    def span(self, backward):
        return tuple(self.t_span[::-1]) if backward else tuple(self.t_span)

    def y0(self, backward):
        return self.exact(self.span(backward)[0])[:, 0]

    def jac_of_kind(self, kind):
        return {"none": None, "callable": self.jac, "vectorized": self.jac_vec,
                "constant": self.jac_const,
                "sparse": None if self.jac_const is None else csc_matrix(self.jac_const),
                "callable-sparse": lambda t, y: csc_matrix(self.jac(t, y))}[kind]


def _scipy_decay():
    """scipy's test_integration_complex problem: y' = −y, y(0) = 0.5 + 1j on [0, 1].

    Its Jacobian is real (−I), as in scipy's test.
    """
    return Problem("scipy", lambda t, y: -y, (0.0, 1.0),
                   lambda t: ((0.5 + 1j) * np.exp(-t))[None, :],
                   jac=lambda t, y: -np.eye(y.shape[0]),
                   jac_vec=lambda t, y: -np.ones((1, 1, y.shape[1])),
                   jac_const=-np.eye(1))


OMEGA = np.array([2.0, -3.0, 0.5])
SPIN_Y0 = np.array([1 + 0.5j, -0.3 + 2j, 0.7 - 0.1j])


def _spin():
    """y' = i ω y, componentwise: y = y(0) exp(i ω t)."""
    return Problem("spin", lambda t, y: 1j * (OMEGA * y.T).T, (0.0, 4.0),
                   lambda t: SPIN_Y0[:, None] * np.exp(1j * OMEGA[:, None] * t[None, :]),
                   jac=lambda t, y: np.diag(1j * OMEGA),
                   jac_vec=lambda t, y: np.repeat(np.diag(1j * OMEGA)[:, :, None],
                                                  y.shape[1], axis=2),
                   jac_const=np.diag(1j * OMEGA))


A_COMPLEX = np.array([[-0.3 + 2.0j, 1.0 - 0.5j], [-0.8j, -0.1 - 1.0j]])
LIN_Y0 = np.array([1.0 - 1.0j, 0.25 + 0.5j])


def _linear():
    """y' = A y with a complex, non-normal A: y = expm(A t) y(0)."""
    return Problem("linear", lambda t, y: A_COMPLEX @ y, (0.0, 3.0),
                   lambda t: np.einsum("kij,j->ik",
                                       scipy.linalg.expm(A_COMPLEX[None] * t[:, None, None]),
                                       LIN_Y0),
                   jac=lambda t, y: A_COMPLEX,
                   jac_vec=lambda t, y: np.repeat(A_COMPLEX[:, :, None], y.shape[1], axis=2),
                   jac_const=A_COMPLEX)


RIC_Y0 = 0.5 + 0.25j


def _riccati():
    """y' = i y² (nonlinear, analytic): y = y(0) / (1 − i y(0) t)."""
    return Problem("riccati", lambda t, y: 1j * y**2, (0.0, 3.0),
                   lambda t: (RIC_Y0 / (1 - 1j * RIC_Y0 * t))[None, :],
                   jac=lambda t, y: np.array([[2j * y[0]]]),
                   jac_vec=lambda t, y: (2j * y)[None, :, :])


def _chirp():
    """y' = i t y (time-dependent): y = y(0) exp(i t² / 2)."""
    return Problem("chirp", lambda t, y: 1j * t * y, (0.0, 3.0),
                   lambda t: ((0.3 - 0.7j) * np.exp(0.5j * t**2))[None, :],
                   jac=lambda t, y: np.array([[1j * t]]),
                   jac_vec=lambda t, y: (1j * np.asarray(t))[None, None, :])


PROBLEMS = {p().name: p for p in (_scipy_decay, _spin, _linear, _riccati, _chirp)}
LINEAR = ("scipy", "spin", "linear")  # the problems with a constant Jacobian


# ---------------------------------------------------------------------------- scipy's test


@pytest.mark.parametrize("jac_kind", ["none", "callable", "callable-sparse"])
def test_scipy_integration_complex(solve, jac_kind):
    """scipy's test_integration_complex, with its tolerances and error measure."""
    rtol, atol = 1e-3, 1e-6
    p = PROBLEMS["scipy"]()
    tc = np.linspace(0, 1)
    res = solve(p.fun, [0, 1], [0.5 + 1j], dense_output=True, rtol=rtol, atol=atol,
                jac=p.jac_of_kind(jac_kind))
    assert res.t[0] == 0
    assert res.t_events is None and res.y_events is None
    assert res.success and res.status == 0
    assert res.y.dtype == np.complex128 and res.y.shape == (1, res.t.shape[0])

    def compute_error(y, y_true):  # scipy's measure
        return np.abs(y - y_true) / (atol + rtol * np.abs(y_true))

    assert np.all(compute_error(res.y, p.exact(res.t)) < 5)
    yc = res.sol(tc)
    assert yc.dtype == np.complex128
    assert np.all(compute_error(yc, p.exact(tc)) < 5)


# ------------------------------------------------------------------------------ accuracy


@pytest.mark.parametrize("name", sorted(PROBLEMS))
@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
@pytest.mark.parametrize("vectorized", [True, False], ids=["vec", "loop"])
@pytest.mark.parametrize("jac_kind", ["none", "callable"])
def test_accuracy_against_exact_solution(solve, name, backward, vectorized, jac_kind):
    tol = 1e-10
    p = PROBLEMS[name]()
    span = p.span(backward)
    res = solve(p.fun, span, p.y0(backward), vectorized=vectorized, rtol=tol, atol=tol,
                dense_output=True, jac=p.jac_of_kind(jac_kind))
    assert res.status == 0 and res.success, res.message
    assert res.t[0] == span[0] and res.t[-1] == span[1]
    d = np.diff(res.t)
    assert np.all(d < 0) if backward else np.all(d > 0)
    assert res.y.dtype == np.complex128 and res.y.shape == (len(p.y0(False)), len(res.t))
    assert_array_equal(res.y[:, 0], p.y0(backward))
    assert_within_tol(res.y, p.exact(res.t), tol, tol)
    # the dense output, between the segment ends too
    t_fine = np.linspace(*span, 301)
    y_fine = res.sol(t_fine)
    assert y_fine.dtype == np.complex128
    assert_within_tol(y_fine, p.exact(t_fine), tol, tol)
    assert_array_equal(res.sol(res.t), res.y)


# ------------------------------------------------------------------------------ Jacobians


def _jac_cases():
    cases = []
    for name in sorted(PROBLEMS):
        kinds = ["none", "callable", "vectorized", "callable-sparse"]
        if name in LINEAR:
            kinds += ["constant", "sparse"]
        cases += [(name, kind) for kind in kinds]
    return cases


@pytest.mark.parametrize(("name", "jac_kind"), _jac_cases())
@pytest.mark.parametrize("vectorized", [True, False], ids=["vec", "loop"])
@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_jacobian_variants_newton_forced(solve, name, jac_kind, vectorized, backward):
    """max_picard=1 hands every segment to Newton, so the (real block) Jacobian matters."""
    p = PROBLEMS[name]()
    seen = []
    jac = p.jac_of_kind(jac_kind)
    if callable(jac):
        user_jac = jac

        def jac(t, y):
            seen.append((np.shape(t), y.dtype, y.shape))
            return user_jac(t, y)

    span = p.span(backward)
    options = {"vectorized_jac": True} if jac_kind == "vectorized" else {}
    res = solve(p.fun, span, p.y0(backward), vectorized=vectorized, rtol=1e-10, atol=1e-10,
                jac=jac, max_picard=1, **options)
    assert res.status == 0, res.message
    assert res.niter_newton > 0
    # a constant matrix is not an evaluation (scipy's njev stays 0 for it too)
    assert (res.njev == 0) if jac_kind in ("constant", "sparse") else (res.njev > 0)
    if callable(jac):
        assert len(seen) > 0
        assert all(dtype == np.complex128 for _, dtype, _ in seen)
        n = len(p.y0(False))
        if jac_kind == "vectorized":
            assert all(len(ts) == 1 and shape == (n, ts[0]) for ts, _, shape in seen)
        else:
            assert all(ts == () and shape == (n,) for ts, _, shape in seen)
    assert_within_tol(res.y, p.exact(res.t), 1e-10, 1e-10)
    if jac_kind != "none":
        # A wrong real Jacobian (e.g. the conjugate block) still converges here, but
        # with many more Newton iterations and rejections: compare with the forward
        # differences, which are right for any f.
        ref = solve(p.fun, span, p.y0(backward), vectorized=vectorized, rtol=1e-10,
                    atol=1e-10, max_picard=1)
        assert res.niter_newton <= ref.niter_newton + 2
        assert res.nrejected <= ref.nrejected


def test_real_block_jacobian_matches_differences():
    """[[Re J, −Im J], [Im J, Re J]] is the derivative of the real system (analytic f)."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 3)) + 1j * rng.standard_normal((3, 3))

    def fun(t, y):
        return A @ y + 0.5j * y**2 + np.sin(t) * y**3

    def jac(t, y):
        return A + np.diag(1j * y + 3 * np.sin(t) * y**2)

    y0 = rng.standard_normal(3) + 1j * rng.standard_normal(3)
    real_fun, real_jac, x0, _, _ = realify(fun, jac, y0, 1e-3, 1e-6, vectorized=False)
    h = 1e-6
    numeric = np.stack([(real_fun(0.7, x0 + h * e) - real_fun(0.7, x0 - h * e)) / (2 * h)
                        for e in np.eye(6)], axis=1)
    J = real_jac(0.7, x0)
    assert J.shape == (6, 6) and J.dtype == np.float64
    assert_allclose(J, numeric, rtol=1e-7, atol=1e-8)


# --------------------------------------------------------------------- fun's conventions


@pytest.mark.parametrize("vectorized", [True, False], ids=["vec", "loop"])
def test_fun_receives_complex_state(solve, vectorized):
    calls = []
    p = PROBLEMS["spin"]()

    def fun(t, y):
        calls.append((np.ndim(t), type(t), y.dtype, y.shape))
        return p.fun(t, y)

    res = solve(fun, p.t_span, p.y0(False), vectorized=vectorized, rtol=1e-6, atol=1e-8)
    assert res.success
    assert calls
    for ndim, t_type, dtype, shape in calls:
        assert dtype == np.complex128
        if vectorized:
            assert ndim == 1 and len(shape) == 2 and shape[0] == 3
        else:
            assert t_type is float and shape == (3,)
    assert res.nfev == len(calls)


@pytest.mark.parametrize("vectorized", [True, False], ids=["vec", "loop"])
def test_real_valued_fun_and_scalar_return(solve, vectorized):
    """A real return value is read as complex (here y' = 1 + 0i from a real constant);
    for n = 1 a scalar return is broadcast, as for real problems."""
    res = solve(lambda t, y: 1.0, (0.0, 2.0), [1j], vectorized=vectorized,
                rtol=1e-10, atol=1e-10)
    assert res.success and res.y.dtype == np.complex128
    assert_allclose(res.y[0], res.t + 1j, rtol=1e-12, atol=1e-12)


def test_args_passed(solve):
    res = solve(lambda t, y, w: 1j * w * y, (0.0, 2.0), [1.0 + 0j], args=(3.0,),
                vectorized=True, rtol=1e-10, atol=1e-10)
    assert_within_tol(res.y, np.exp(3j * res.t)[None], 1e-10, 1e-10)


def test_per_component_tolerances(solve):
    p = PROBLEMS["spin"]()
    rtol = np.array([1e-10, 1e-6, 1e-10])
    atol = np.array([1e-10, 1e-6, 1e-10])
    res = solve(p.fun, p.t_span, p.y0(False), vectorized=True, rtol=rtol, atol=atol)
    assert res.success
    err = np.abs(res.y - p.exact(res.t)) / (atol + rtol * np.abs(p.exact(res.t)).T).T
    assert err.max() <= 10


def test_t_eval_and_dense_output(solve):
    p = PROBLEMS["linear"]()
    t_eval = np.linspace(0, 3, 7)
    res = solve(p.fun, p.t_span, p.y0(False), vectorized=True, t_eval=t_eval,
                dense_output=True, rtol=1e-10, atol=1e-10)
    assert_array_equal(res.t, t_eval)
    assert res.y.shape == (2, 7) and res.y.dtype == np.complex128
    assert_within_tol(res.y, p.exact(t_eval), 1e-10, 1e-10)
    assert_array_equal(res.sol(t_eval), res.y)
    sol = res.sol
    assert sol(1.5).shape == (2,) and sol(1.5).dtype == np.complex128
    assert_array_equal(np.stack([sol(t) for t in t_eval], axis=1), sol(t_eval))
    for name in ("t_min", "t_max", "n_segments", "ascending", "side"):
        assert getattr(sol, name) is not None
    assert (sol.t_min, sol.t_max, sol.ascending, sol.side) == (0.0, 3.0, True, "left")
    assert len(sol.ts) == sol.n_segments + 1 and len(sol.interpolants) == sol.n_segments
    assert_array_equal(sol.ts_sorted, sol.ts)
    for k, segment in enumerate(sol.interpolants):
        t_mid = 0.5 * (sol.ts[k] + sol.ts[k + 1])
        assert segment.t_old == sol.ts[k] and segment.t == sol.ts[k + 1]
        assert segment(t_mid).dtype == np.complex128 and segment(t_mid).shape == (2,)
        assert_array_equal(segment(t_mid), sol(t_mid))
        assert segment([t_mid, t_mid]).shape == (2, 2)


def test_backward_dense_output_attributes(solve):
    p = PROBLEMS["chirp"]()
    res = solve(p.fun, p.span(True), p.y0(True), vectorized=True, dense_output=True,
                rtol=1e-10, atol=1e-10)
    sol = res.sol
    assert (sol.t_min, sol.t_max, sol.ascending, sol.side) == (0.0, 3.0, False, "right")
    assert_array_equal(sol.ts_sorted, np.flip(sol.ts))
    assert_within_tol(sol(np.linspace(0, 3, 101)), p.exact(np.linspace(0, 3, 101)),
                      1e-10, 1e-10)


def test_zero_length_span(solve):
    res = solve(lambda t, y: 1j * y, (1.0, 1.0), [2 + 1j], dense_output=True)
    assert res.success and res.y.dtype == np.complex128
    assert_array_equal(res.y, np.full((1, 2), 2 + 1j))
    assert_array_equal(res.sol(1.0), [2 + 1j])


# --------------------------------------------------------------------------------- events
#
# spin: Im y_0 = |y_0(0)| sin(2 t + φ) vanishes at t = (kπ − φ) / 2: on [0, 4] at k = 1
# (decreasing) and k = 2 (increasing).

PHI = np.angle(SPIN_Y0[0])
ROOTS = {-1: [(np.pi - PHI) / 2], 1: [(2 * np.pi - PHI) / 2]}
ROOTS[0] = ROOTS[-1] + ROOTS[1]


@pytest.mark.parametrize("vectorized", [True, False], ids=["vec", "loop"])
@pytest.mark.parametrize("direction", [0, 1, -1])
@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_events_receive_complex_and_return_complex(solve, vectorized, direction, backward):
    p = PROBLEMS["spin"]()
    seen = []

    def crossing(t, y):
        seen.append((y.dtype, np.shape(y)))
        return y[0].imag

    crossing.direction = direction

    def never(t, y):
        return 1.0 + 0 * np.real(y[0])

    span = p.span(backward)
    res = solve(p.fun, span, p.y0(backward), vectorized=vectorized, events=[crossing, never],
                rtol=1e-10, atol=1e-10)
    assert res.status == 0 and res.success, res.message
    expected = sorted(ROOTS[direction if not backward else -direction], reverse=backward)
    # backward in time the crossings run the other way
    assert_allclose(res.t_events[0], expected, rtol=0, atol=1e-9)
    assert res.y_events[0].shape == (len(expected), 3)
    assert res.y_events[0].dtype == np.complex128
    assert_within_tol(res.y_events[0], p.exact(res.t_events[0]).T, 1e-10, 1e-10)
    assert_allclose(res.y_events[0][:, 0].imag, 0, atol=1e-9)
    assert res.t_events[1].shape == (0,) and res.y_events[1].shape == (0,)
    assert seen and all(dtype == np.complex128 and shape[0] == 3 for dtype, shape in seen)
    assert res.y.dtype == np.complex128


@pytest.mark.parametrize("vectorized", [True, False], ids=["vec", "loop"])
def test_terminal_event_with_args(solve, vectorized):
    p = PROBLEMS["spin"]()

    def crossing(t, y, level):
        return y[0].imag - level

    crossing.terminal = True
    crossing.direction = -1
    fun = lambda t, y, level: p.fun(t, y)  # noqa: E731
    res = solve(fun, p.t_span, p.y0(False), vectorized=vectorized, events=crossing,
                args=(0.0,), dense_output=True, rtol=1e-10, atol=1e-10)
    assert res.status == 1 and res.success
    assert_allclose(res.t_events[0], ROOTS[-1], rtol=0, atol=1e-9)
    assert res.t[-1] == res.t_events[0][0]
    assert_allclose(res.y[:, -1], res.y_events[0][0], rtol=1e-12, atol=1e-12)
    assert res.y_events[0].dtype == np.complex128
    assert res.sol(res.t_events[0][0]).dtype == np.complex128


def test_real_y0_still_real():
    res = chebpan.solve_ivp(lambda t, y: -y, (0, 1), [1.0])
    assert res.y.dtype == np.float64


# ------------------------------------------------------------------------ unit: realify


def test_to_real_to_complex_round_trip():
    z = np.array([[1 + 2j, 3 - 4j], [-5j, 6.0]])
    x = to_real(z)
    assert x.shape == (4, 2) and x.dtype == np.float64
    assert_array_equal(x, [[1, 3], [0, 6], [2, -4], [-5, 0]])
    assert_array_equal(to_complex(x, 2), z)
    assert to_complex(to_real(z[:, 0]), 2).shape == (2,)


def test_realify_shapes_and_dtypes():
    n = 2
    y0 = np.array([1 + 1j, 2 - 1j])
    fun = lambda t, y: A_COMPLEX @ y  # noqa: E731
    f_vec, _, x0, _, _ = realify(fun, None, y0, 1e-3, 1e-6, vectorized=True)
    f_pt, _, _, _, _ = realify(fun, None, y0, 1e-3, 1e-6, vectorized=False)
    assert x0.dtype == np.float64 and x0.shape == (2 * n,)
    assert_array_equal(x0, [1, 2, 1, -1])
    X = np.stack([x0, 2 * x0, -x0], axis=1)
    F = f_vec(np.zeros(3), X)
    assert F.shape == (4, 3) and F.dtype == np.float64
    for p in range(3):
        assert_allclose(F[:, p], f_pt(0.0, X[:, p]), rtol=1e-15)
    assert_allclose(to_complex(F, n), A_COMPLEX @ to_complex(X, n), rtol=1e-15)
    # a single vectorised point answered with shape (n,) is accepted, as for real problems
    f_vec1, *_ = realify(lambda t, y: (A_COMPLEX @ y).ravel(), None, y0, 1e-3, 1e-6, True)
    assert f_vec1(np.zeros(1), x0[:, None]).shape == (4, 1)
    # a wrong shape is reported with the complex shapes
    f_bad, *_ = realify(lambda t, y: np.zeros(3, complex), None, y0, 1e-3, 1e-6, False)
    with pytest.raises(ValueError, match=r"shape \(3,\); expected \(2,\)"):
        f_bad(0.0, x0)


def test_realify_jacobians():
    y0 = np.array([1 + 1j, 2 - 1j])
    x0 = to_real(y0)
    block = real_block_jacobian(A_COMPLEX)
    assert block.shape == (4, 4)
    assert_array_equal(block[:2, :2], A_COMPLEX.real)
    assert_array_equal(block[:2, 2:], -A_COMPLEX.imag)
    assert_array_equal(block[2:, :2], A_COMPLEX.imag)
    assert_array_equal(block[2:, 2:], A_COMPLEX.real)
    for const in (A_COMPLEX, A_COMPLEX.tolist()):
        _, jac, *_ = realify(None, const, y0, 1e-3, 1e-6, True)
        assert isinstance(jac, np.ndarray) and jac.dtype == np.float64
        assert_array_equal(jac, block)
    # A sparse constant stays sparse (its pattern drives sparse Newton steps).
    _, jac, *_ = realify(None, csc_matrix(A_COMPLEX), y0, 1e-3, 1e-6, True)
    assert issparse(jac) and jac.dtype == np.float64
    assert_array_equal(jac.toarray(), block)
    _, jac, *_ = realify(None, lambda t, y: csc_matrix(A_COMPLEX), y0, 1e-3, 1e-6, False)
    assert_array_equal(jac(0.0, x0), block)
    _, jac, *_ = realify(None, lambda t, y: np.repeat(A_COMPLEX[:, :, None], y.shape[1], 2),
                         y0, 1e-3, 1e-6, True, vectorized_jac=True)
    J = jac(np.zeros(5), np.repeat(x0[:, None], 5, axis=1))
    assert J.shape == (4, 4, 5)
    for p in range(5):
        assert_array_equal(J[:, :, p], block)
    # a real Jacobian is read as complex with zero imaginary part
    _, jac, *_ = realify(None, lambda t, y: -np.eye(2), y0, 1e-3, 1e-6, False)
    assert_array_equal(jac(0.0, x0), -np.eye(4))
    assert realify(None, None, y0, 1e-3, 1e-6, False)[1] is None
    with pytest.raises(ValueError, match=r"`jac` is expected to have shape \(2, 2\)"):
        realify(None, np.eye(3), y0, 1e-3, 1e-6, False)
    _, jac, *_ = realify(None, lambda t, y: np.eye(3), y0, 1e-3, 1e-6, False)
    with pytest.raises(ValueError, match=r"`jac` is expected to have shape \(2, 2\)"):
        jac(0.0, x0)
    # As for real states, n² entries in another shape are reshaped (like LSODA).
    _, jac, *_ = realify(None, lambda t, y: -np.eye(2).ravel(), y0, 1e-3, 1e-6, False)
    assert_array_equal(jac(0.0, x0), -np.eye(4))


def test_realify_tolerances():
    y0 = np.array([1j, 2.0, 3 + 3j])
    _, _, _, rtol, atol = realify(None, None, y0, 1e-3, 1e-6, False)
    assert (rtol, atol) == (1e-3, 1e-6)
    _, _, _, rtol, atol = realify(None, None, y0, [1e-3], np.array(1e-6), False)
    assert np.size(rtol) == 1 and np.ndim(atol) == 0
    _, _, _, rtol, atol = realify(None, None, y0, [1, 2, 3], [4, 5, 6], False)
    assert_array_equal(rtol, [1, 2, 3, 1, 2, 3])
    assert_array_equal(atol, [4, 5, 6, 4, 5, 6])
    with pytest.raises(ValueError, match="`atol` has wrong shape."):
        realify(None, None, y0, 1e-3, np.ones(6), False)
    with pytest.raises(ValueError, match="`rtol` has wrong shape."):
        realify(None, None, y0, np.ones(2), 1e-6, False)


# ------------------------------------------------------------------------- unit: events


def test_realify_event_keeps_attributes_and_passes_complex():
    seen = []

    def event(t, y, scale=1.0):
        seen.append(y)
        return scale * y[0].imag

    event.terminal = 2
    event.direction = -1.0
    real = realify_event(event, 2)
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert real(0.5, x) == 3.0
    assert real(0.5, x, 2.0) == 6.0  # extra args pass through
    assert seen[0].dtype == np.complex128
    assert_array_equal(seen[0], [1 + 3j, 2 + 4j])
    assert (real.terminal, real.direction) == (2, -1.0)
    assert real.__name__ == "event"
    # several points at once (axis 0 is the state)
    real(np.zeros(3), np.ones((4, 3)))
    assert seen[-1].shape == (2, 3)

    # a complex state (the user's raw y0, passed by scipy's rule at t0) goes through as is
    raw = [1 + 3j, 2 + 4j]
    assert real(0.0, raw) == 3.0 and seen[-1] is raw

    plain = realify_event(lambda t, y: y[0].real, 2)
    assert not hasattr(plain, "terminal") and not hasattr(plain, "direction")
    # the original is untouched
    assert not hasattr(event, "__wrapped__")


def test_realify_events_structure():
    assert realify_events(None, 1) is None
    single = realify_events(lambda t, y: y[0].real, 1)
    assert callable(single)
    many = realify_events((lambda t, y: y[0].real, lambda t, y: y[0].imag), 1)
    assert isinstance(many, list) and len(many) == 2
    assert [e(0.0, np.array([1.0, 2.0])) for e in many] == [1.0, 2.0]


# ------------------------------------------------------------------------- unit: result


def test_complexify_result_fields():
    sol_real = chebpan.solve_ivp(lambda t, x: np.stack([-x[1], x[0]]), (0, 1), [1.0, 0.0],
                                 vectorized=True, dense_output=True, rtol=1e-10,
                                 atol=1e-10).sol
    res = OdeResult(t=np.array([0.0, 1.0]), y=np.array([[1.0, 2.0], [3.0, 4.0]]),
                    sol=sol_real, t_events=[np.array([0.5]), np.array([])],
                    y_events=[np.array([[1.0, 2.0]]), np.array([])], status=0)
    out = complexify_result(res, 1)
    assert out is res
    assert_array_equal(res.y, [[1 + 3j, 2 + 4j]])
    assert isinstance(res.sol, ComplexOdeSolution)
    assert_allclose(res.sol(0.5), [np.exp(0.5j)], rtol=1e-9)
    assert isinstance(res.sol.interpolants[0], ComplexDenseOutput)
    assert res.y_events[0].shape == (1, 1) and res.y_events[0].dtype == np.complex128
    assert_array_equal(res.y_events[0], [[1 + 2j]])
    assert res.y_events[1].shape == (0,)
    assert_array_equal(res.t_events[0], [0.5])

    y_events = [np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]), np.zeros((0, 4))]
    res = complexify_result(OdeResult(t=[], y=[], sol=None, t_events=None,
                                      y_events=y_events), 2)
    assert res.y == [] and res.sol is None
    assert_array_equal(res.y_events[0], [[1 + 3j, 2 + 4j], [5 + 7j, 6 + 8j]])
    assert res.y_events[0].flags.c_contiguous
    assert res.y_events[1].shape == (0, 2)

    res = complexify_result(OdeResult(t=np.array([0.0]), y=np.zeros((2, 1)), sol=None,
                                      t_events=None, y_events=None), 1)
    assert res.y_events is None and res.y.shape == (1, 1)

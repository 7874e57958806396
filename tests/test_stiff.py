"""Stiff problems: the value-only basis and its square collocation Newton step."""

import numpy as np
import pytest
import scipy.integrate
from scipy.linalg import expm

import chebpan
from chebpan._control import single
from chebpan._core.basis import get_basis
from chebpan._core.picard import coefficients, end_value, euler_start, node_values

# A symmetric-ish coupling of a slow (−1) and a fast (−1e5) mode.
STIFF_MATRIX = np.array([[-1.0, 0.3], [0.3, -1e5]])
STIFF_Y0 = np.array([1.0, 2.0])


def robertson(t, state):
    x, y, z = state
    return np.array([-0.04 * x + 1e4 * y * z,
                     0.04 * x - 1e4 * y * z - 3e7 * y * y,
                     3e7 * y * y])


def test_stiff_basis_reproduces_the_start_and_its_coefficients():
    basis = get_basis(12, 12, xp=np, dtype=np.float64, stiff=True)
    assert basis.n_free == 11 and basis.slope_factor == 0.0
    assert float(basis.weights[0]) == 0.0
    rng = np.random.default_rng(1)
    y_a, f_a = rng.normal(size=(1, 3)), rng.normal(size=(1, 3))
    half_h = np.array([[0.3]])
    x = rng.normal(size=(1, 3, basis.n_free))
    y_nodes = node_values(basis, y_a, f_a, half_h, x, xp=np)
    assert np.allclose(y_nodes[..., 0], y_a, atol=1e-14)
    c = coefficients(basis, y_a, f_a, half_h, x, xp=np)
    values = np.polynomial.chebyshev.chebval(basis.tau, c[0].T)  # (3, M)
    assert np.allclose(values, y_nodes[0], atol=1e-12)
    assert np.allclose(end_value(basis, y_a, f_a, half_h, x, xp=np), values[:, -1], atol=1e-12)
    euler = euler_start(basis, f_a, half_h, xp=np)
    slope = np.polynomial.chebyshev.chebval(basis.tau, np.polynomial.chebyshev.chebder(
        coefficients(basis, y_a, f_a, half_h, euler, xp=np)[0].T))
    assert np.allclose(slope, (half_h * f_a)[0][:, None], atol=1e-14)


def test_stiff_linear_system_against_the_matrix_exponential():
    res = chebpan.solve_ivp(lambda t, y: STIFF_MATRIX @ y, (0, 20), STIFF_Y0,
                            vectorized=True, rtol=1e-8, atol=1e-12, jac=STIFF_MATRIX,
                            dense_output=True)
    assert res.status == 0
    for t in np.linspace(0.5, 20, 40):
        exact = expm(STIFF_MATRIX * t) @ STIFF_Y0
        assert np.max(np.abs(res.sol(t) - exact) / (1e-12 + 1e-8 * np.abs(exact))) < 1
    # With the paper's basis only this takes twice the segments and rejections.
    assert res.nsegments <= 20 and res.nrejected <= 2


def test_stiff_mode_is_what_keeps_the_linear_system_cheap(monkeypatch):
    def solve():
        return chebpan.solve_ivp(lambda t, y: STIFF_MATRIX @ y, (0, 20), STIFF_Y0,
                                 vectorized=True, rtol=1e-8, atol=1e-12, jac=STIFF_MATRIX)

    stiff = solve()
    monkeypatch.setattr(single, "STIFF_ON", np.inf)
    paper_basis_only = solve()
    assert stiff.status == 0 and paper_basis_only.status == 0
    assert paper_basis_only.depth > 1.5 * stiff.depth
    assert paper_basis_only.nlu > 1.5 * stiff.nlu


def test_prothero_robinson_exact_solution():
    lam = -1e6
    res = chebpan.solve_ivp(lambda t, y: lam * (y - np.cos(t)) - np.sin(t), (0, 10), [1.0],
                            vectorized=True, rtol=1e-8, atol=1e-10,
                            jac=lambda t, y: [[lam]], t_eval=np.linspace(0, 10, 21))
    assert res.status == 0
    assert np.max(np.abs(res.y[0] - np.cos(res.t))) < 1e-10


@pytest.mark.parametrize("vectorized", [True, False])
def test_robertson_over_1e8(vectorized):
    fun = robertson if vectorized else (lambda t, y: list(robertson(t, y)))
    res = chebpan.solve_ivp(fun, (0, 1e8), [1e4, 0, 0], rtol=1e-6, atol=1e-6,
                            vectorized=vectorized)
    assert res.status == 0
    # Collocation keeps the linear invariant x + y + z = 1e4 (up to the iteration).
    total = res.y.sum(axis=0)
    assert np.max(np.abs(total - 1e4)) < 1e-6
    # Long segments once the transient is over (scipy's BDF: ~400 steps).
    assert res.nsegments < 60
    # Cross-check against an independent implementation at a far tighter tolerance.
    ref = scipy.integrate.solve_ivp(robertson, (0, 1e8), [1e4, 0, 0], method="Radau",
                                    rtol=1e-10, atol=1e-12)
    assert np.allclose(res.y[:, -1], ref.y[:, -1], rtol=1e-4, atol=1e-6)


def test_stiff_backward_integration_uses_the_stiff_basis():
    # Backward in time the system y' = −A y is stiff the same way (decaying).
    forward = chebpan.solve_ivp(lambda t, y: STIFF_MATRIX @ y, (0, 20), STIFF_Y0,
                                vectorized=True, rtol=1e-8, atol=1e-12, jac=STIFF_MATRIX)
    back = chebpan.solve_ivp(lambda t, y: -STIFF_MATRIX @ y, (20, 0), STIFF_Y0,
                             vectorized=True, rtol=1e-8, atol=1e-12, jac=-STIFF_MATRIX,
                             dense_output=True)
    assert back.status == 0
    for t in np.linspace(0, 19.5, 30):
        exact = expm(STIFF_MATRIX * (20 - t)) @ STIFF_Y0
        assert np.max(np.abs(back.sol(t) - exact) / (1e-12 + 1e-8 * np.abs(exact))) < 1
    assert back.nsegments <= forward.nsegments + 2


def test_events_on_stiff_segments():
    def slow_half(t, y):
        return y[0] - 0.5

    slow_half.terminal = True
    res = chebpan.solve_ivp(lambda t, y: STIFF_MATRIX @ y, (0, 20), STIFF_Y0,
                            vectorized=True, rtol=1e-10, atol=1e-12, jac=STIFF_MATRIX,
                            events=slow_half, dense_output=True)
    assert res.status == 1
    t_event = res.t_events[0][0]
    exact = expm(STIFF_MATRIX * t_event) @ STIFF_Y0
    assert abs(exact[0] - 0.5) < 1e-9
    assert np.allclose(res.y_events[0][0], exact, rtol=1e-8, atol=1e-12)
    assert res.t[-1] == t_event


@pytest.mark.parametrize("max_newton_size", [62, 61])
def test_stiff_switch_only_where_the_stiff_basis_has_newton(max_newton_size):
    # L = 2, N = 32: the paper's basis needs 60 unknowns, the stiff basis 62.
    res = chebpan.solve_ivp(lambda t, y: STIFF_MATRIX @ y, (0, 20), STIFF_Y0,
                            vectorized=True, rtol=1e-8, atol=1e-12, jac=STIFF_MATRIX,
                            max_newton_size=max_newton_size)
    exact = expm(STIFF_MATRIX * 20) @ STIFF_Y0
    assert res.status == 0
    assert np.max(np.abs(res.y[:, -1] - exact) / (1e-12 + 1e-8 * np.abs(exact))) < 1
    # 61: the stiff basis has no Newton, so the solve stays on the paper's
    # basis (with Newton); switching would leave it the Picard iteration.
    assert res.nsegments < 60


def robertson_jac(t, state):
    y1, y2, y3 = state
    return np.array([[-0.04, 1e4 * y3, 1e4 * y2],
                     [0.04, -1e4 * y3 - 6e7 * y2, -1e4 * y2],
                     [0.0, 6e7 * y2, 0.0]])


@pytest.fixture(scope="module")
def robertson_reference():
    """Robertson to 1e11 at 18 times by Radau at rtol 1e-13 (an independent method)."""
    times = np.logspace(-6, 11, 18)
    res = scipy.integrate.solve_ivp(robertson, (0, 1e11), [1.0, 0.0, 0.0], method="Radau",
                                    jac=robertson_jac, rtol=1e-13, atol=1e-22, t_eval=times)
    assert res.status == 0
    return times, res.y


@pytest.mark.parametrize("rtol", [1e-4, 1e-10])
@pytest.mark.parametrize("atol", [1e-14, 1e-10])
@pytest.mark.parametrize("use_jac", [False, True])
@pytest.mark.parametrize("vectorized", [False, True])
def test_robertson_to_1e11_is_right_with_and_without_jac(robertson_reference, rtol, atol,
                                                        use_jac, vectorized):
    """Forward differences step by max(|y|, atol): with a step of max(|y|, 1), the
    Jacobian of the 1e-8-sized component was wrong and y1, y2 came out 75 % too low
    with success=True (rtol 1e-4, atol 1e-14)."""
    times, reference = robertson_reference
    res = chebpan.solve_ivp(robertson, (0, 1e11), [1.0, 0.0, 0.0], rtol=rtol, atol=atol,
                            vectorized=vectorized, t_eval=times,
                            jac=robertson_jac if use_jac else None)
    assert res.status == 0
    scaled = np.sqrt(np.mean(((res.y - reference) / (atol + rtol * np.abs(reference))) ** 2,
                             axis=0))
    assert np.max(scaled) <= 1
    assert np.min(res.y) >= -atol


def test_start_slope_gap_is_the_polynomials_slope_at_the_start_less_f():
    """``τ₁ (p'(t_a) − f_a)`` against NumPy's Chebyshev derivative, on a segment of
    length 0.3: τ₁ is the time to the stiff basis' first node after ``t_a``."""
    from chebpan._core.estimates import start_slope_gap

    basis = get_basis(16, 15, xp=np, dtype=np.float64, stiff=True)
    rng = np.random.default_rng(5)
    coeffs = rng.normal(size=(2, 3, 16)) / (1 + np.arange(16)) ** 3
    f_a = rng.normal(size=(2, 3))
    half_h = np.array([[0.15], [0.15]])
    gap = start_slope_gap(basis, coeffs, f_a, half_h, xp=np)
    slope = np.polynomial.chebyshev.chebval(-1.0, np.polynomial.chebyshev.chebder(
        np.moveaxis(coeffs, -1, 0))) / 0.15
    first_node = 0.3 * (1 - np.cos(np.pi / 14)) / 2
    np.testing.assert_allclose(gap, first_node * (slope - f_a), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_start_gaps_kernel_matches_the_array_api_code(monkeypatch, dtype):
    """The numba kernel of the start-slope gaps and their scaled sizes against the
    array-API code (``CHEBPAN_DISABLE_NUMBA``'s path), per-component ``atol``."""
    from chebpan._core.estimates import start_gaps
    from chebpan._kernels import dispatch

    basis = get_basis(16, 16, xp=np, dtype=dtype, stiff=True)
    rng = np.random.default_rng(11)
    coeffs = (rng.normal(size=(3, 4, 16)) / (1 + np.arange(16)) ** 2).astype(dtype)
    y_a, y_end, f_a = (rng.normal(size=(3, 4)).astype(dtype) for _ in range(3))
    half_h = np.array([[0.1], [2.0], [1e-3]], dtype=dtype)
    atol = np.array([1e-6, 1e-3, 1e-8, 1e-4], dtype=dtype)
    rtol = np.asarray(1e-5, dtype=dtype)
    got = start_gaps(basis, coeffs, y_a, y_end, f_a, half_h, atol, rtol, xp=np)
    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
    want = start_gaps(basis, coeffs, y_a, y_end, f_a, half_h, atol, rtol, xp=np)
    for value, expected in zip(got, want):
        assert value.dtype == expected.dtype == dtype
        np.testing.assert_allclose(value, expected, rtol=1e-12 if dtype == np.float64 else 1e-4)
    assert np.all(want[1] > 0)


def _jump_after(t_jump, jump_rate=-1e5):
    """A fast mode relaxing to 1 and a slow component whose slope jumps by 1 at
    ``t_jump``: ``y1' = λ (y1 − 1)``, ``y2' = y1 + H(t − t_jump)``, y(0) = 0."""
    def fun(t, y):
        return np.stack([jump_rate * (y[0] - 1.0), y[0] + (np.asarray(t) >= t_jump)])

    def exact_y2(t):
        return 2 * t - t_jump - (1 - np.exp(jump_rate * t)) / -jump_rate

    return fun, exact_y2


@pytest.mark.parametrize("n_coeffs", [16, 32])
@pytest.mark.parametrize("sparse", [False, True])
def test_a_jump_of_f_before_the_stiff_basis_first_node_is_not_accepted(n_coeffs, sparse):
    """The stiff basis fits ``f`` only at the nodes after ``t_a``: a jump of ``f``
    between ``t_a`` and the first node left its coefficients smooth, and the segment
    was accepted with the jump moved back to ``t_a`` (an error of ``(t_jump − t_a)``
    times the jump).  The jump is put just after each boundary of a run without it
    (the runs agree up to there): measured 2e3–9e3 × rtol before the start-slope
    check, now a rejection.  (What remains, 35–120 × rtol, is the kink of the slow
    component inside a later segment on the paper's basis.)"""
    jac = np.array([[-1e5, 0.0], [1.0, 0.0]])
    if sparse:
        options = dict(jac_sparsity=jac != 0)
    else:
        options = dict(jac=lambda t, y: jac)
    options.update(vectorized=True, rtol=1e-8, atol=1e-8, max_step=0.05, n_coeffs=n_coeffs)
    smooth, _ = _jump_after(np.inf)
    boundaries = chebpan.solve_ivp(smooth, (0, 1), [0.0, 0.0], **options).t
    first_node = (1 - np.cos(np.pi / (n_coeffs - 2))) / 2  # (per unit length)
    errors = []
    for t_a, t_b in zip(boundaries[8:-2], boundaries[9:-1]):
        fun, exact_y2 = _jump_after(t_a + 0.3 * first_node * (t_b - t_a))
        res = chebpan.solve_ivp(fun, (0, 1), [0.0, 0.0], **options)
        assert res.status == 0
        errors.append(abs(res.y[1, -1] - exact_y2(1.0)) / (1e-8 * (1 + exact_y2(1.0))))
    assert len(errors) >= 10 and max(errors) < 300


def test_medakzo_jump_inside_a_stiff_segment_is_not_accepted():
    """MEDAKZO (n = 400, ``jac_sparsity``: 16 coefficients per segment at rtol 1e-9):
    a segment [4.9999934, 5.00085] straddled the jump of ``f`` at t = 5 with every
    node but ``t_a`` after it and was accepted; the result had a scaled error of
    1.3e-5 (1.3e4 × rtol) with status 0."""
    from chebpan.testing import SUITE

    medakzo = SUITE["MEDAKZO"]()
    res = chebpan.solve_ivp(medakzo.fun, medakzo.t_span, np.array(medakzo.y0), rtol=1e-9,
                            atol=1e-9 * medakzo.floor, vectorized=True,
                            jac_sparsity=medakzo.sparsity())
    assert res.status == 0
    assert medakzo.scaled_error(res.y[:, -1]) <= 1e-9


def test_robertson_as_a_batch_is_right_and_takes_the_segments_of_a_single_solve(
        robertson_reference):
    """A batch row whose segment turns stiff is solved on alone (the stiff basis, as a
    single solve): Robertson to 1e11 as a batch (forward differences, no ``jac``) is
    within the tolerance of an independent Radau run at every time, and each instance
    takes at most 1.5 times the segments of a single solve with the batch's N = 12.
    Before, the batch kept the paper's basis and had not reached t = 3e6 after 60 s:
    its segments grew by 0.02 % each, their error estimates held near 1 by the
    boundary layer that ``y'(t_a) = f_a`` puts on a stiff segment."""
    times, reference = robertson_reference
    kw = dict(rtol=1e-6, atol=1e-10, vectorized=True, t_eval=times)
    batch = chebpan.solve_ivp_batch(robertson, (0, 1e11), np.array([[1.0, 0.0, 0.0]] * 2),
                                    **kw)
    alone = chebpan.solve_ivp(robertson, (0, 1e11), [1.0, 0.0, 0.0], n_coeffs=12, **kw)
    assert np.all(batch.status == 0) and alone.status == 0
    for y in batch.y:
        scaled = np.abs(y - reference) / (1e-10 + 1e-6 * np.abs(reference))
        assert np.max(np.sqrt(np.mean(scaled ** 2, axis=0))) <= 1
        assert np.min(y) >= -1e-10
    assert np.all(batch.per_instance["nsegments"] <= 1.5 * alone.nsegments)


def test_stiff_batch_rows_solved_alone_keep_their_batch_args():
    """Prothero–Robinson ``y' = λ (y − cos t) − sin t`` (exact: ``cos t + (y0 − 1)
    e^{λt}``) with λ from −1 (non-stiff: stays in the lock step) to −1e7 per
    instance: each row solved on alone evaluates ``fun`` with its own λ."""
    def fun(t, y, lam):
        return lam * (y - np.cos(t)) - np.sin(t)

    lam = np.array([-1.0, -1e3, -1e5, -1e7])
    times = np.linspace(0, 10, 11)
    res = chebpan.solve_ivp_batch(fun, (0, 10), np.full((4, 1), 2.0), vectorized=True,
                                  batch_args=(lam,), t_eval=times, rtol=1e-8, atol=1e-10)
    assert np.all(res.status == 0)
    exact = np.cos(times) + np.exp(lam[:, None] * times)
    np.testing.assert_allclose(res.y[:, 0, :], exact, rtol=1e-6, atol=1e-8)


def test_start_error_filters_stiff_components_and_survives_a_singular_filter():
    """``_start_error`` on a gap of τ₁ · 1 per component: unfiltered with J = 0, shrunk
    by ``1 + τ₁ λ`` with J = −λ I, and the unfiltered gap (no LinAlgError) where
    ``I − τ₁ J`` is singular."""
    from chebpan._control.options import IterationOptions
    from chebpan._control.segment_solver import SegmentSolver

    basis = get_basis(16, 16, xp=np, dtype=np.float64, stiff=True)
    options = IterationOptions(max_picard=12, max_newton=8, rho_newton=0.2, tol_ls=None,
                               tol_newton=None, max_newton_size=1200)
    solver = SegmentSolver(basis, None, np.full(2, 1e-6), np.full(2, 1e-6), options, None,
                           xp=np)
    half_h = np.array([[0.5]])
    first_node = 0.5 * (1 + float(basis.tau[1]))
    coeffs = np.zeros((1, 2, 16))
    coeffs[0, :, 1] = 0.5  # p(τ) = T_1 / 2: p'(t_a) = 1 against f_a = 0
    y = np.zeros((1, 2))
    unfiltered = first_node / 1e-6
    for jac, expected in ((np.zeros((2, 2)), unfiltered),
                          (-1e8 * np.eye(2), unfiltered / (1 + first_node * 1e8)),
                          (np.eye(2) / first_node, unfiltered)):
        solver.start_jac = jac
        assert solver._start_error(y, y, half_h, coeffs, y) == pytest.approx(expected,
                                                                              rel=1e-9)

"""Reliability: no diverged iterate accepted, any scale of y, results that travel.

Each test here failed before the fixes it checks (see CHANGELOG, "Fixed"): batches
accepting diverged iterates (Van der Pol at rtol 1e-3), overflow of squared residuals
for |y| ~ 1e160, unpicklable dense output, spans of a few ulp, degenerate options,
Jacobian failures reported as `fun` failures, and empty batches with `t_eval`.
"""

import copy
import pickle

import numpy as np
import pytest
import scipy.integrate
from hypothesis import given, settings
from hypothesis import strategies as st

import chebpan

sx = pytest.importorskip("array_api_strict")


def vdp(t, y, mu):
    return np.stack([y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]])


def lorenz(t, y):
    return np.stack([10 * (y[1] - y[0]), y[0] * (28 - y[2]) - y[1], y[0] * y[1] - 8 / 3 * y[2]])


def block_reference(fun, t_span, y0, t_eval, args=()):
    """Every instance of a batch at ``t_eval`` from one DOP853 solve of the block system.

    The K instances form one system of K·n components, solved at rtol = atol =
    1e-12 (each instance at least as accurately as alone): (K, n, len(t_eval)).
    """
    k, n = y0.shape

    def block(t, z):
        return fun(t, z.reshape(k, n).T, *args).T.reshape(-1)

    res = scipy.integrate.solve_ivp(block, t_span, y0.reshape(-1), method="DOP853",
                                    t_eval=t_eval, rtol=1e-12, atol=1e-12)
    assert res.status == 0
    return res.y.reshape(k, n, -1)


def scaled_error(y, reference, rtol, atol):
    """scipy's norm of ``y − reference`` per instance: (K,) from (K, n)."""
    return np.sqrt(np.mean(((y - reference) / (atol + rtol * np.abs(reference))) ** 2, axis=1))


@pytest.mark.parametrize("mu", [1.0, 10.0])
@pytest.mark.parametrize("rtol", [1e-3, 1e-6])
def test_van_der_pol_batch_has_no_spurious_failures(mu, rtol):
    """300 random starts: every instance succeeds, within 10× of scipy's RK45 error."""
    rng = np.random.default_rng(1234)
    y0 = rng.uniform(-3, 3, size=(300, 2))
    t_eval = np.linspace(0, 20, 11)
    res = chebpan.solve_ivp_batch(vdp, (0, 20), y0, vectorized=True, args=(mu,), rtol=rtol,
                                  t_eval=t_eval, dense_output=True)
    assert res.status.tolist() == [0] * 300, res.message[int(np.argmax(res.status != 0))]
    reference = block_reference(vdp, (0, 20), y0, t_eval, args=(mu,))
    # Nothing a diverged iterate could leave behind: every value, and sol
    # between the outputs, on the scale of the true trajectories.
    bound = 10 * np.max(np.abs(reference))
    assert np.all(np.abs(res.y) <= bound)
    assert np.all(np.abs(res.sol(np.linspace(0, 20, 401))) <= bound)
    errors = scaled_error(res.y[..., -1], reference[..., -1], rtol, 1e-6)
    scipy_errors = np.array([
        scaled_error(scipy.integrate.solve_ivp(vdp, (0, 20), start, args=(mu,), rtol=rtol,
                                               t_eval=[20.0]).y[None, :, -1],
                     reference[k, None, :, -1], rtol, 1e-6)[0]
        for k, start in enumerate(y0)])
    assert np.all(errors <= np.maximum(10 * scipy_errors, 1.0))


def test_van_der_pol_reproducer_from_the_report():
    res = chebpan.solve_ivp_batch(vdp, (0, 20), np.array([[2.0, 2.0]]), vectorized=True,
                                  args=(1.0,))
    single = chebpan.solve_ivp(vdp, (0, 20), [2.0, 2.0], vectorized=True, args=(1.0,))
    assert res.status.tolist() == [0] and single.status == 0
    assert np.all(np.abs(res.y[np.isfinite(res.y)]) < 10)


def lorenz_scaled(c):
    return lambda t, y: c * lorenz(t, y / c)


def solve_scaled(c, batch):
    y0 = c * np.array([2.0, 1.0, 1.0])
    solve = chebpan.solve_ivp_batch if batch else chebpan.solve_ivp
    return solve(lorenz_scaled(c), (0, 1.5), y0[None, :] if batch else y0, vectorized=True,
                 rtol=1e-6, atol=1e-6 * c)


@pytest.mark.parametrize("batch", [False, True])
@settings(max_examples=6, deadline=None)
@given(exponent=st.integers(min_value=-830, max_value=830))
def test_scale_invariance(batch, exponent):
    """y' = c f(y / c) with atol scaled by c: the same segments, for c = 2^k up to 1e±250.

    A power of two scales every floating-point value exactly, so the solve must
    be the same bit for bit: nothing in it may depend on the magnitude of y.
    """
    base = solve_scaled(1.0, batch)
    c = 2.0 ** exponent
    scaled = solve_scaled(c, batch)
    assert np.array_equal(np.asarray(scaled.t), np.asarray(base.t))
    assert np.array_equal(np.asarray(scaled.y) / c, np.asarray(base.y))
    assert scaled.nfev == base.nfev


def stiff_vdp_scaled(c, batch):
    """Van der Pol μ = 1000 (Newton steps, rejections) with y scaled by c."""
    y0 = c * np.array([2.0, 0.0])
    solve = chebpan.solve_ivp_batch if batch else chebpan.solve_ivp
    return solve(lambda t, y: c * vdp(t, y / c, 1000.0), (0, 300),
                 y0[None, :] if batch else y0, vectorized=True, rtol=1e-6, atol=1e-6 * c)


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("exponent", [-830, -200, 600, 700, 830])
def test_scale_invariance_through_newton_and_rejections(batch, exponent):
    """The same bit for bit on a stiff problem too (a batch used to restart from
    diverged attempts there, whose garbage overflowed at different c)."""
    base = stiff_vdp_scaled(1.0, batch)
    scaled = stiff_vdp_scaled(2.0 ** exponent, batch)
    assert base.niter_newton > 0 and base.nrejected > 0
    assert np.array_equal(np.asarray(scaled.t), np.asarray(base.t))
    assert np.array_equal(np.asarray(scaled.y) / 2.0 ** exponent, np.asarray(base.y))
    assert scaled.nfev == base.nfev


@pytest.mark.parametrize("y0, atol", [(1e160, 1e154), (1e200, 1e194), (1e-200, 1e-206)])
def test_extreme_magnitudes_cost_what_unit_magnitudes_cost(y0, atol):
    unit = chebpan.solve_ivp(lambda t, y: -y, (0, 10), [1.0], atol=1e-6)
    res = chebpan.solve_ivp(lambda t, y: -y, (0, 10), [y0], atol=atol)
    assert res.status == 0 and res.nfev == unit.nfev
    assert res.y[0, -1] == pytest.approx(y0 * unit.y[0, -1], rel=1e-9)
    assert res.y[0, -1] == pytest.approx(y0 * np.exp(-10), abs=10 * atol)


@pytest.mark.parametrize("rate, t_end", [(1.0, 690.0), (-1.0, 690.0)])
def test_growth_to_1e300_and_decay_to_1e_minus_300(rate, t_end):
    res = chebpan.solve_ivp(lambda t, y: rate * y, (0, t_end), [1.0], vectorized=True,
                            rtol=1e-8, atol=1e-300)
    scipy_res = scipy.integrate.solve_ivp(lambda t, y: rate * y, (0, t_end), [1.0],
                                          rtol=1e-8, atol=1e-300)
    assert res.status == 0
    assert res.y[0, -1] == pytest.approx(np.exp(rate * t_end), rel=1e-6)
    assert res.nfev <= 10 * scipy_res.nfev


def round_trips(obj):
    return [pickle.loads(pickle.dumps(obj)), copy.deepcopy(obj)]


@pytest.mark.parametrize("y0", [np.array([1.0, 2.0]), np.array([1.0 + 2.0j]),
                                sx.asarray([1.0, 2.0])], ids=["numpy", "complex", "strict"])
def test_results_and_dense_output_pickle_and_deepcopy(y0):
    res = chebpan.solve_ivp(lambda t, y: -y, (0, 2), y0, dense_output=True)
    expected = np.asarray(res.sol(1.3))
    for copied in round_trips(res.sol) + [r.sol for r in round_trips(res)]:
        assert np.array_equal(np.asarray(copied(1.3)), expected)
        assert type(copied(1.3)) is type(res.sol(1.3))


def test_batch_results_pickle_and_deepcopy():
    y0 = np.array([[1.0], [2.0], [3.0]])
    res = chebpan.solve_ivp_batch(lambda t, y: -y, (0, 2), y0, vectorized=True,
                                  dense_output=True)
    expected = res.sol([0.5, 1.5])
    for copied in round_trips(res):
        assert np.array_equal(copied.sol([0.5, 1.5]), expected)
        assert np.array_equal(copied.status, res.status)


@pytest.mark.parametrize("t_span", [(1e6, 1e6 + 1e-9), (1e6, 1e6 + 2.5e-10), (1e6, 1e6 - 1e-9),
                                    (0.0, 1e-300)])
def test_spans_of_a_few_ulp(t_span):
    expected = scipy.integrate.solve_ivp(lambda t, y: -y, t_span, [1.0])
    res = chebpan.solve_ivp(lambda t, y: -y, t_span, [1.0])
    assert res.status == expected.status == 0
    assert res.t[-1] == expected.t[-1]
    np.testing.assert_allclose(res.y[:, -1], expected.y[:, -1], rtol=1e-15)
    batch = chebpan.solve_ivp_batch(lambda t, y: -y, t_span, np.ones((2, 1)), vectorized=True)
    assert batch.status.tolist() == [0, 0]


@pytest.mark.parametrize("options, message", [
    ({"n_coeffs": 3}, "`n_coeffs` must be an integer of at least 4"),
    ({"n_coeffs": 8.0}, "`n_coeffs` must be an integer"),
    ({"newton_memory": 0}, "`newton_memory` must be an integer greater than 0"),
    ({"newton_memory": -1}, "`newton_memory` must be an integer greater than 0"),
    ({"max_picard": 0}, "`max_picard` must be an integer of at least 1"),
    ({"max_newton": True}, "`max_newton` must be an integer"),
    ({"rho_newton": float("nan")}, "`rho_newton` must be a number greater than 0"),
])
def test_degenerate_options_are_rejected(options, message):
    if "newton_memory" not in options:  # (a batch's option: no effect on a single solve)
        with pytest.raises(ValueError, match=message):
            chebpan.solve_ivp(lambda t, y: -y, (0, 1), [1.0], **options)
    with pytest.raises(ValueError, match=message):
        chebpan.solve_ivp_batch(lambda t, y: -y, (0, 1), np.ones((2, 1)), vectorized=True,
                                **options)


@pytest.mark.parametrize("batch", [False, True])
def test_tiny_max_step_behaves_like_scipy(batch):
    """Every segment at most max_step long, the right answer (it used to take a fixed
    cost per segment that made it slow, not wrong)."""
    fun = lambda t, y: np.stack([y[1], -y[0]])  # noqa: E731
    if batch:
        res = chebpan.solve_ivp_batch(fun, (0, 0.05), np.array([[1.0, 0.0]]),
                                      vectorized=True, max_step=1e-4, rtol=1e-10, atol=1e-12)
        t, y = res.t[0], res.y[0]
    else:
        res = chebpan.solve_ivp(fun, (0, 0.05), [1.0, 0.0], vectorized=True, max_step=1e-4,
                                rtol=1e-10, atol=1e-12)
        t, y = res.t, res.y
    assert np.all(res.status == 0)
    assert np.all(np.diff(t) <= 1e-4 * (1 + 1e-12)) and len(t) >= 501
    np.testing.assert_allclose(y[:, -1], [np.cos(0.05), -np.sin(0.05)], rtol=1e-10, atol=1e-12)


def test_n_nodes_none_means_the_default():
    res = chebpan.solve_ivp(lambda t, y: -y, (0, 1), [1.0], n_nodes=None)
    default = chebpan.solve_ivp(lambda t, y: -y, (0, 1), [1.0])
    assert res.status == 0 and np.array_equal(res.y, default.y)


def test_smallest_n_coeffs_converges():
    res = chebpan.solve_ivp(lambda t, y: -y, (0, 1), [1.0], n_coeffs=4, rtol=1e-8, atol=1e-10)
    assert res.status == 0
    assert res.y[0, -1] == pytest.approx(np.exp(-1), rel=1e-7)


def pendulum(t, y):
    return np.stack([y[1], -30 * np.sin(y[0])])


def nan_jacobian(t, y):
    return np.array([[0.0, 1.0], [np.nan, 0.0]])


def test_a_jacobian_with_nan_is_named_in_the_message():
    res = chebpan.solve_ivp(pendulum, (0, 20), [2.0, 0.0], jac=nan_jacobian, vectorized=True,
                            rtol=1e-8)
    assert res.status == -1
    assert "Jacobian" in res.message and "`fun` returned" not in res.message


def test_empty_batch_with_t_eval():
    res = chebpan.solve_ivp_batch(lambda t, y: -y, (0, 1), np.ones((0, 2)), vectorized=True,
                                  t_eval=[0.5, 1.0], dense_output=True)
    assert res.y.shape == (0, 2, 2)
    assert res.status.shape == (0,) and res.success
    assert res.sol([0.5]).shape == (0, 2, 1)


def test_batch_working_set_does_not_grow_with_k():
    """Chunks of `batch_memory`: eight times the instances, about the same peak memory.

    (Before, every instance of a batch was in one round's arrays and every accepted
    segment was kept: the peak grew with K, 7.5× from K = 400 to 3200 here.)
    """
    import tracemalloc

    rng = np.random.default_rng(5)

    def solve(k):
        y0 = rng.uniform(-10, 10, size=(k, 3)) + [0.0, 0.0, 25.0]
        return chebpan.solve_ivp_batch(lorenz, (0, 1), y0, vectorized=True, rtol=1e-6,
                                       atol=1e-6, t_eval=[1.0], batch_memory=2**22)

    solve(50)  # (first-use allocations: compiled kernels, cached bases)
    peaks = []
    for k in (400, 3200):
        tracemalloc.start()
        try:
            assert solve(k).success
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert peaks[1] < 1.5 * peaks[0], peaks

"""Batched IVPs: y0 of shape (K, n), per-instance segments, parameters and failures.

Accuracy is checked against exact solutions and mpmath references; agreement with
single solves is checked to within the tolerance (the batch engine's iteration
differs in its starts and line search, so not bit for bit).
"""

import math

import numpy as np
import pytest

import chebpan
from chebpan._output.result import MESSAGES
from chebpan.testing import SUITE, lorenz
from chebpan._kernels import dispatch

sx = pytest.importorskip("array_api_strict")


def decay(t, y, rate):
    return -rate * y


def last_values(res):
    """Each instance's value at its last segment end (t_eval None): (K, n)."""
    last = np.sum(~np.isnan(res.t), axis=1) - 1
    return res.y[np.arange(res.y.shape[0]), :, last]


def lorenz_fun(t, y, sigma=10.0, rho=28.0, beta=8 / 3):
    return np.stack([sigma * (y[1] - y[0]), y[0] * (rho - y[2]) - y[1], y[0] * y[1] - beta * y[2]])


def lorenz_params(t, y, p):
    """Lorenz with per-instance parameters p = (sigma, rho, beta), each of shape (P,)."""
    return lorenz_fun(t, y, p[0], p[1], p[2])


LORENZ_Y0 = [(2.0, 1.0, 1.0), (-5.0, 3.0, 20.0), (1.5, -2.0, 30.0)]


@pytest.fixture(scope="module")
def lorenz_references():
    return np.array([[float(v) for v in lorenz(y0=y0, t_span=(0.0, 2.0)).reference()]
                     for y0 in LORENZ_Y0])


def test_decay_with_per_instance_rates_against_exact():
    y0 = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [-1.0, 0.5]])
    rate = np.array([0.5, 1.0, 2.0, 8.0])
    res = chebpan.solve_ivp_batch(decay, (0, 3), y0, vectorized=True, batch_args=(rate,),
                                  rtol=1e-10, atol=1e-12, dense_output=True)
    assert res.success and res.status.tolist() == [0, 0, 0, 0]
    assert res.message == [MESSAGES[0]] * 4
    exact_end = y0 * np.exp(-3 * rate)[:, None]
    np.testing.assert_allclose(last_values(res), exact_end, rtol=1e-9, atol=1e-12)
    # t: each row starts at t0, ends at tf, NaN after; y padded the same way.
    assert res.t.shape[0] == 4 and res.y.shape[:2] == (4, 2)
    assert np.all(res.t[:, 0] == 0)
    assert np.all(np.nanmax(res.t, axis=1) == 3.0)
    assert np.array_equal(np.isnan(res.t), np.isnan(res.y[:, 0, :]))
    assert res.per_instance["nsegments"].tolist() == list(np.sum(~np.isnan(res.t), 1) - 1)
    # dense output: scalar and array times, per instance
    t = np.linspace(0, 3, 7)
    values = res.sol(t)
    assert values.shape == (4, 2, 7) and res.sol(1.5).shape == (4, 2)
    exact = y0[:, :, None] * np.exp(-rate[:, None, None] * t)
    np.testing.assert_allclose(values, exact, rtol=1e-9, atol=1e-12)
    # sol reproduces the segment ends exactly
    for k in range(4):
        ok = ~np.isnan(res.t[k])
        assert np.array_equal(res.sol(res.t[k, ok])[k], res.y[k][:, ok])


def test_counters_sum_over_instances():
    y0 = np.array([[1.0], [2.0], [3.0]])
    res = chebpan.solve_ivp_batch(decay, (0, 2), y0, vectorized=True,
                                  batch_args=([1.0, 5.0, 25.0],))
    per = res.per_instance
    assert per["nsegments"].sum() == res.nsegments
    assert per["nrejected"].sum() == res.nrejected
    # the instance active longest took part in every round, setup rounds included
    assert per["depth"].max() == res.depth
    # one vectorised call per round, one more per forward-difference Jacobian
    assert res.nfev == res.depth + res.njev


def test_lorenz_batch_against_mpmath_and_single_solves(lorenz_references):
    y0 = np.array(LORENZ_Y0)
    opts = dict(rtol=1e-10, atol=1e-10, t_eval=[2.0])
    res = chebpan.solve_ivp_batch(lorenz_fun, (0, 2), y0, vectorized=True, **opts)
    assert res.success
    np.testing.assert_allclose(res.y[:, :, -1], lorenz_references, rtol=0, atol=1e-7)
    for k in range(3):
        single = chebpan.solve_ivp(lorenz_fun, (0, 2), y0[k], vectorized=True, **opts)
        np.testing.assert_allclose(res.y[k, :, -1], single.y[:, -1], rtol=0, atol=1e-7)


def test_picard_only_batch_against_mpmath(lorenz_references):
    res = chebpan.solve_ivp_batch(lorenz_fun, (0, 2), np.array(LORENZ_Y0), vectorized=True,
                                  rtol=1e-10, atol=1e-10, t_eval=[2.0], n_coeffs=12,
                                  max_newton_size=0)
    assert res.success and res.niter_newton == 0
    np.testing.assert_allclose(res.y[:, :, -1], lorenz_references, rtol=0, atol=1e-7)


def test_parameter_sweep_matches_single_solves():
    """batch_args of shape (K, p): each point gets its instance's row, like y."""
    params = np.array([[10.0, 28.0, 8 / 3], [10.0, 15.0, 8 / 3], [16.0, 45.0, 4.0],
                       [10.0, 0.5, 8 / 3]])
    y0 = np.tile([1.0, 1.0, 1.0], (4, 1))
    opts = dict(rtol=1e-10, atol=1e-10, t_eval=np.linspace(0, 1, 5))
    res = chebpan.solve_ivp_batch(lorenz_params, (0, 1), y0, vectorized=True,
                                  batch_args=(params,), **opts)
    assert res.success and res.y.shape == (4, 3, 5)
    for k in range(4):
        single = chebpan.solve_ivp(lorenz_fun, (0, 1), y0[k], vectorized=True,
                                   args=tuple(params[k]), **opts)
        np.testing.assert_allclose(res.y[k], single.y, rtol=1e-8, atol=1e-8)


def test_point_wise_fun_and_jac_get_the_instance_row():
    """vectorized=False: fun(t, y, a) with y (n,) and a the instance's row."""
    calls = []

    def fun(t, y, a, offset):
        calls.append(np.shape(a))
        return -a[0] * y + offset

    def jac(t, y, a, offset):
        return -a[0] * np.eye(2)

    a = np.array([[1.0, 0.0], [3.0, 0.0]])
    y0 = np.array([[1.0, 2.0], [2.0, 1.0]])
    jac_calls = []

    def counted_jac(t, y, a, offset):
        jac_calls.append(a[0])
        return jac(t, y, a, offset)

    # (a single solve's settings, so that Newton steps call jac)
    res = chebpan.solve_ivp_batch(fun, (0, 1), y0, batch_args=(a,), args=(0.0,), jac=counted_jac,
                                  rtol=1e-10, atol=1e-12, t_eval=[1.0], n_coeffs=32,
                                  rho_newton=0.01, vectorized=False)
    assert set(calls) == {(2,)}
    assert res.niter_newton > 0 and set(jac_calls) == {1.0, 3.0}
    np.testing.assert_allclose(res.y[:, :, -1], y0 * np.exp(-a[:, :1]), rtol=1e-9)


@pytest.mark.parametrize("jac_kind", ["forward differences", "vectorized jac", "jac"])
def test_newton_with_per_instance_jacobians(jac_kind):
    """A stiff-ish linear batch y' = -λ_k (y - cos t) - sin t: Newton on every instance."""
    lam = np.array([1.0, 50.0, 400.0])

    def fun(t, y, lam):
        return -lam * (y - np.cos(t)) - np.sin(t)

    options = {}
    if jac_kind == "vectorized jac":
        options = dict(jac=lambda t, y, lam: -lam[None, None, :] * np.ones((1, 1, t.size)),
                       vectorized_jac=True)
    elif jac_kind == "jac":
        options = dict(jac=lambda t, y, lam: np.array([[-lam]]))
    y0 = np.array([[2.0], [2.0], [2.0]])
    res = chebpan.solve_ivp_batch(fun, (0, 2), y0, vectorized=True, batch_args=(lam,),
                                  rtol=1e-9, atol=1e-12, t_eval=np.linspace(0, 2, 9), **options)
    assert res.success and res.niter_newton > 0
    t = np.linspace(0, 2, 9)
    exact = np.cos(t)[None, :] + np.exp(-lam[:, None] * t)
    np.testing.assert_allclose(res.y[:, 0, :], exact, rtol=1e-7, atol=1e-9)


def test_easy_hard_and_failing_instances():
    """y' = y²: blows up at 1/y0.  The instance with y0 = 2 fails near t = 0.5 with its
    partial solution; the others are unaffected."""
    def square(t, y):
        return y * y

    y0 = np.array([[0.0], [0.25], [0.5], [2.0]])
    t_eval = np.array([0.25, 0.45, 0.75, 1.0])
    res = chebpan.solve_ivp_batch(square, (0, 1), y0, vectorized=True, rtol=1e-9, atol=1e-12,
                                  t_eval=t_eval, dense_output=True)
    assert res.status.tolist() == [0, 0, 0, -1]
    assert not res.success
    assert "could not be completed" in res.message[3] and "singularity" in res.message[3]
    exact = y0 / (1 - y0 * t_eval[None, :])
    np.testing.assert_allclose(res.y[:3, 0, :], exact[:3], rtol=1e-8)
    # The failed instance: values up to where it got, NaN beyond.
    assert np.isnan(res.y[3, 0, 2:]).all()
    np.testing.assert_allclose(res.y[3, 0, :2], exact[3, :2], rtol=1e-6)
    # it failed at the blow-up (within the solution's error of where it lies), at the
    # start of the segment it could not complete
    reached = float(res.message[3].split("starting at t = ")[1].split(" ")[0])
    assert 0.499 < reached < 0.5 + 1e-9
    assert abs(res.sol(0.4)[3, 0] - 2 / (1 - 0.8)) < 1e-6


def test_nan_in_one_instance():
    """fun returns NaN for one instance after t = 0.3: only that instance fails."""
    def fun(t, y, bad):
        return np.where(bad & (t > 0.3), np.nan, -y)

    y0 = np.array([[1.0], [1.0], [1.0]])
    res = chebpan.solve_ivp_batch(fun, (0, 1), y0, vectorized=True,
                                  batch_args=(np.array([False, True, False]),), t_eval=[0.2, 1.0])
    assert res.status.tolist() == [0, -1, 0]
    assert "non-finite" in res.message[1]
    np.testing.assert_allclose(res.y[[0, 2], 0, 1], np.exp(-1.0), rtol=1e-5)
    np.testing.assert_allclose(res.y[1, 0, 0], np.exp(-0.2), rtol=1e-5)
    assert np.isnan(res.y[1, 0, 1])


def test_nan_mid_solve_without_batch_args():
    """Without ``batch_args`` the rounds pass no instance indices to ``fun``: an
    instance whose f turns NaN (its y crosses 0.5) fails alone, where it happened."""
    def fun(t, y):
        return np.where(y[0] > 0.5, -y, np.nan)

    y0 = np.array([[1.0], [2.0], [4.0]])
    res = chebpan.solve_ivp_batch(fun, (0, 1), y0, vectorized=True, t_eval=[0.5, 1.0])
    assert res.status.tolist() == [-1, 0, 0]
    assert "non-finite" in res.message[0]
    np.testing.assert_allclose(res.y[1:, 0, :], y0[1:] * np.exp(-np.array([0.5, 1.0])),
                               rtol=1e-5)
    np.testing.assert_allclose(res.y[0, 0, 0], np.exp(-0.5), rtol=1e-5)
    # (y = e^-t reaches 0.5 at t = ln 2)
    reached = float(res.message[0].split("t = ")[1].split(" ")[0].rstrip(".:,"))
    assert math.log(2) - 1e-3 < reached < math.log(2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_finite_instances_are_the_array_code(monkeypatch, dtype):
    """The numba check of which instances got finite values (fun's (n, K, M) output)
    against the array code: NaN, +inf and -inf planted at the first and last node,
    in each component, one or several per instance."""
    from chebpan._rhs.checks import finite_instances

    rng = np.random.default_rng(5)
    values = rng.normal(size=(3, 9, 11)).astype(dtype)
    for (i, k, m), bad in zip([(0, 1, 0), (2, 3, 10), (1, 4, 5), (0, 6, 10), (2, 6, 0),
                               (1, 8, 0)], [np.nan, np.inf, -np.inf, np.nan, np.inf, np.nan]):
        values[i, k, m] = bad
    kernel = finite_instances(values, xp=np)
    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
    reference = finite_instances(values, xp=np)
    assert kernel.dtype == reference.dtype == np.bool_
    assert kernel.tolist() == reference.tolist() == [k not in (1, 3, 4, 6, 8)
                                                     for k in range(9)]
    # (a view in another layout is read as the same values)
    view = np.permute_dims(np.permute_dims(values, (1, 0, 2)).copy(), (1, 0, 2))
    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", False)
    assert finite_instances(view, xp=np).tolist() == reference.tolist()


def test_nonfinite_at_t0_fails_that_instance_only():
    def fun(t, y):
        return np.log(y)

    res = chebpan.solve_ivp_batch(fun, (0, 1), np.array([[1.0], [-1.0]]), vectorized=True)
    assert res.status.tolist() == [0, -1]
    assert res.message[1] == "`fun` returned non-finite values at t = 0.0."
    assert np.isnan(res.t[1, 1:]).all() and res.t[1, 0] == 0.0


def test_backward_batch():
    y0 = np.array([[1.0], [2.0]])
    res = chebpan.solve_ivp_batch(decay, (2, -1), y0, vectorized=True, batch_args=([1.0, 0.5],),
                                  rtol=1e-10, atol=1e-12, t_eval=[1.0, 0.0, -1.0])
    assert res.success
    exact = y0 * np.exp(-np.array([[1.0], [0.5]]) * (np.array([1.0, 0.0, -1.0]) - 2))
    np.testing.assert_allclose(res.y[:, 0, :], exact, rtol=1e-9)


def test_newton_chunks_do_not_change_the_result():
    y0 = np.array(LORENZ_Y0 * 3)
    # (a single solve's settings: Newton on most segments)
    opts = dict(rtol=1e-9, atol=1e-9, t_eval=[1.0], n_coeffs=32, rho_newton=0.2)
    whole = chebpan.solve_ivp_batch(lorenz_fun, (0, 1), y0, vectorized=True, **opts)
    chunked = chebpan.solve_ivp_batch(lorenz_fun, (0, 1), y0, vectorized=True, newton_memory=1,
                                      **opts)
    assert whole.niter_newton > 0
    np.testing.assert_allclose(chunked.y, whole.y, rtol=0, atol=1e-13)


def test_single_instance_batch_matches_1d_solve():
    y0 = np.array([[2.0, 1.0, 1.0]])
    batch = chebpan.solve_ivp_batch(lorenz_fun, (0, 1), y0, vectorized=True, rtol=1e-10, atol=1e-10,
                                    t_eval=[1.0])
    single = chebpan.solve_ivp(lorenz_fun, (0, 1), y0[0], vectorized=True, rtol=1e-10,
                               atol=1e-10, t_eval=[1.0])
    assert batch.y.shape == (1, 3, 1) and single.y.shape == (3, 1)
    np.testing.assert_allclose(batch.y[0], single.y, atol=1e-8)


def test_degenerate_batches():
    empty_state = chebpan.solve_ivp_batch(decay, (0, 1), np.zeros((3, 0)), vectorized=True,
                                          batch_args=([1.0, 2.0, 3.0],))
    assert empty_state.success and empty_state.y.shape[:2] == (3, 0)
    same_time = chebpan.solve_ivp_batch(decay, (1, 1), np.ones((2, 2)), vectorized=True,
                                        batch_args=([1.0, 2.0],), dense_output=True)
    assert same_time.success and same_time.t.shape == (2, 2)
    np.testing.assert_array_equal(same_time.sol(1.0), np.ones((2, 2)))


def test_batch_input_errors():
    with pytest.raises(ValueError, match=r"`batch_args\[0\]` must have K = 2 rows, one per "
                                         r"instance of the batch \(shape \(2,\) or \(2, p\)\), "
                                         r"but has shape \(3,\)"):
        chebpan.solve_ivp_batch(decay, (0, 1), np.ones((2, 1)), batch_args=([1.0, 2.0, 3.0],))
    with pytest.raises(ValueError, match=r"`y0` must be 2-dimensional \(K, n\).*shape \(2, 1, 1\)"
                                         r".*`chebpan.solve_ivp`"):
        chebpan.solve_ivp_batch(decay, (0, 1), np.ones((2, 1, 1)))
    with pytest.raises(ValueError, match=r"`y0` must be 2-dimensional \(K, n\).*shape \(2,\)"):
        chebpan.solve_ivp_batch(decay, (0, 1), np.ones(2))
    with pytest.raises(NotImplementedError,
                       match="`events` is supported on the NumPy backend only"):
        chebpan.solve_ivp_batch(decay, (0, 1), sx.ones((2, 1)), events=lambda t, y: y[0])
    with pytest.raises(NotImplementedError, match="complex batch"):
        chebpan.solve_ivp_batch(decay, (0, 1), np.ones((2, 1), dtype=complex))
    with pytest.raises(TypeError, match="PAN only"):
        chebpan.solve_ivp_batch(decay, (0, 1), np.ones((2, 1)), method="RK45", args=(1.0,))


def test_batch_on_array_api_strict_agrees_with_numpy():
    def fun(t, y, p):
        xp = sx if not isinstance(y, np.ndarray) else np
        (y1, y2, y3), (sigma, rho, beta) = (y[i, ...] for i in range(3)), (p[i, ...] for i in range(3))
        return xp.stack([sigma * (y2 - y1), y1 * (rho - y3) - y2, y1 * y2 - beta * y3])

    y0 = np.array([[2.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    params = np.array([[10.0, 28.0, 8 / 3], [10.0, 15.0, 8 / 3]])
    opts = dict(rtol=1e-9, atol=1e-9, t_eval=[0.5], dense_output=True)
    on_numpy = chebpan.solve_ivp_batch(fun, (0, 0.5), y0, vectorized=True, batch_args=(params,),
                                       **opts)
    on_strict = chebpan.solve_ivp_batch(fun, (0, 0.5), sx.asarray(y0), vectorized=True,
                                        batch_args=(sx.asarray(params),), **opts)
    assert on_strict.success
    assert isinstance(on_strict.y, type(sx.asarray(1.0)))
    np.testing.assert_allclose(np.asarray(on_strict.y), on_numpy.y, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(on_strict.sol(0.25)), on_numpy.sol(0.25), atol=1e-12)


@pytest.mark.parametrize("batch", [True, False])
@pytest.mark.parametrize("stiff", [False, True])
def test_picard_step_kernel_matches_array_api_code(monkeypatch, stiff, batch):
    """The numba kernel of the Picard step against the array-API code (its products by
    padded blocks in a batch, as one product in a single solve)."""
    from chebpan._core.basis import get_basis
    from chebpan._core.picard import node_values, picard_step, picard_update

    rng = np.random.default_rng(3)
    basis = get_basis(12, 11, xp=np, dtype=np.float64, stiff=stiff)
    k, n = 7, 3
    y_a, f_a = rng.normal(size=(k, n)), rng.normal(size=(k, n))
    half_h = rng.uniform(0.01, 0.1, size=(k, 1))
    x = rng.normal(size=(k, n, basis.n_free)) * 1e-3
    y_nodes = node_values(basis, y_a, f_a, half_h, x, xp=np)
    f_nodes = rng.normal(size=(k, n, 11))
    f_nodes[2, 1, 4] = np.nan  # propagates to that instance's change only
    atol, rtol = np.array([1e-9, 1e-8, 1e-7]), 1e-6
    kernel = picard_step(basis, y_a, f_a, half_h, y_nodes, f_nodes, atol, rtol, xp=np,
                         batch=batch)
    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
    reference = picard_step(basis, y_a, f_a, half_h, y_nodes, f_nodes, atol, rtol, xp=np)
    finite = np.arange(k) != 2
    for got, want in zip(kernel, reference):
        np.testing.assert_allclose(got[finite], want[finite], rtol=1e-12, atol=1e-15)
    assert np.isnan(kernel[2][2]) and np.isfinite(kernel[2][finite]).all()
    # The update, its node values, and the change as the update moves the nodes.
    x_new = picard_update(basis, f_a, f_nodes, half_h, xp=np)
    np.testing.assert_allclose(kernel[0][finite], x_new[finite], rtol=1e-12)
    np.testing.assert_allclose(kernel[1][finite],
                               node_values(basis, y_a, f_a, half_h, x_new, xp=np)[finite],
                               rtol=1e-12, atol=1e-15)
    scale = atol + rtol * np.maximum(np.abs(y_a), np.abs(y_nodes[..., -1]))
    moved = np.abs((x_new - x) @ basis.phi_tilde).max(axis=-1) / scale
    np.testing.assert_allclose(kernel[2][finite], np.sqrt((moved**2).mean(axis=-1))[finite],
                               rtol=1e-9)


def test_picard_step_of_an_instance_does_not_depend_on_the_others():
    """Bit for bit whatever the number of instances in the round and the instance's
    place among them (chunked batches and Dask agree with a batch solved whole)."""
    from chebpan._core.basis import get_basis
    from chebpan._core.picard import picard_step

    rng = np.random.default_rng(8)
    basis = get_basis(12, 11, xp=np, dtype=np.float64)
    k, n = 700, 3
    y_a, f_a = rng.normal(size=(k, n)), rng.normal(size=(k, n))
    half_h = rng.uniform(0.01, 0.1, size=(k, 1))
    y_nodes, f_nodes = rng.normal(size=(k, n, 11)), rng.normal(size=(k, n, 11))
    whole = picard_step(basis, y_a, f_a, half_h, y_nodes, f_nodes, 1e-9, 1e-9, xp=np)
    for start, stop in [(0, 1), (5, 6), (3, 90), (301, 700), (0, 257)]:
        part = picard_step(basis, *(a[start:stop] for a in (y_a, f_a, half_h, y_nodes,
                                                            f_nodes)), 1e-9, 1e-9, xp=np)
        for got, want in zip(part, whole):
            np.testing.assert_array_equal(got, want[start:stop])


@pytest.mark.parametrize("kind", ["forward differences", "vectorized jac", "point-wise jac"])
def test_jacobians_of_a_subset_get_their_instances_arguments(kind):
    """J at some points of a round, each with its own instance's batch_args."""
    from chebpan._rhs.counters import Counters
    from chebpan._rhs.evaluator import Evaluator

    def fun(t, y, a):  # y' = a0 y0 y1, a1 y1: J = [[a0 y1, a0 y0], [0, a1]]
        return np.stack([a[0] * y[0] * y[1], a[1] * y[1]])

    def vectorized_jac(t, y, a):
        zero = np.zeros_like(y[0])
        return np.array([[a[0] * y[1], a[0] * y[0]], [zero, a[1] + zero]])

    def point_jac(t, y, a):
        return np.array([[a[0] * y[1], a[0] * y[0]], [0.0, a[1]]])

    jac = {"vectorized jac": vectorized_jac, "point-wise jac": point_jac}.get(kind)
    params = np.array([[1.0, 2.0], [-3.0, 5.0], [7.0, -11.0]])
    evaluator = Evaluator(fun, jac, 2, vectorized=True,
                          vectorized_jac=kind == "vectorized jac", xp=np, dtype=np.float64,
                          counters=Counters(), batch_args=(params,))
    instances = np.array([0, 0, 1, 2, 2, 1])
    y = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [0.5, -1.0, 2.0, 1.5, -2.5, 3.0]])
    t = np.zeros(6)
    wanted = np.array([True, False, True, True, False, True])
    f, j = evaluator.evaluate_some_jacobians(t, y, wanted, instances=instances)
    a = params[instances]
    np.testing.assert_allclose(f, [a[:, 0] * y[0] * y[1], a[:, 1] * y[1]])
    expected = np.array([[[a[p, 0] * y[1, p], a[p, 0] * y[0, p]], [0.0, a[p, 1]]]
                         for p in np.nonzero(wanted)[0]])
    tolerance = 1e-6 if kind == "forward differences" else 0
    np.testing.assert_allclose(j, expected, rtol=tolerance, atol=tolerance)


def test_fun_returning_its_input_or_a_read_only_array():
    """The solver never writes into fun's output (nor into y0)."""
    y0 = np.array([[1.0], [2.0], [3.0]])
    kept = y0.copy()
    res = chebpan.solve_ivp_batch(lambda t, y: y, (0, 1), y0, vectorized=True, rtol=1e-10,
                                  atol=1e-12, t_eval=[0.0, 1.0])
    np.testing.assert_array_equal(y0, kept)
    np.testing.assert_allclose(res.y[:, 0, :], kept * np.exp([0.0, 1.0]), rtol=1e-9)
    rate = np.array([[1.0], [2.0]])
    res = chebpan.solve_ivp_batch(lambda t, y: np.broadcast_to(rate[:, :1], y.shape), (0, 1),
                                  np.zeros((2, 2)), vectorized=True, t_eval=[1.0])
    assert res.success
    # (y' = (1, 2) for every instance: y(1) = (1, 2))
    np.testing.assert_allclose(res.y[:, :, -1], [[1.0, 2.0], [1.0, 2.0]], rtol=1e-12)


def test_first_step_and_max_step_in_a_batch():
    y0 = np.array([[1.0], [2.0]])
    res = chebpan.solve_ivp_batch(decay, (0, 1), y0, vectorized=True, batch_args=([1.0, 2.0],),
                                  first_step=0.01, max_step=0.2, rtol=1e-10, atol=1e-12)
    assert res.success
    np.testing.assert_allclose(res.t[:, 1], 0.01)
    steps = np.diff(res.t, axis=1)
    assert np.nanmax(steps) <= 0.2 + 1e-15
    # below the spacing of numbers near t0 = 1: no attempt is possible (as scipy)
    tiny = chebpan.solve_ivp_batch(decay, (1, 2), y0, vectorized=True, batch_args=([1.0, 2.0],),
                                   max_step=1e-300)
    single = chebpan.solve_ivp(decay, (1, 2), y0[0], vectorized=True, args=(1.0,),
                               max_step=1e-300)
    assert tiny.status.tolist() == [-1, -1]
    assert tiny.message[0] == single.message
    assert "could not be completed: the error estimate" in tiny.message[0]


@pytest.mark.parametrize("t_span", [(0.0, 1.5), (1.5, 0.0)], ids=["forward", "backward"])
def test_values_at_t_eval_are_those_of_the_dense_output(t_span):
    """Filled in as segments are accepted, without keeping them: the same numbers.

    y' = y², exactly y0 / (1 − y0 (t − t0)); forward, the instance with y0 = 2
    blows up at t = 1/2 and fails there.
    """
    y0 = np.array([[0.1], [0.5], [2.0], [-1.0]])
    t_eval = np.linspace(*t_span, 17)
    kwargs = dict(vectorized=True, rtol=1e-9, atol=1e-12, t_eval=t_eval)
    lean = chebpan.solve_ivp_batch(lambda t, y: y * y, t_span, y0, **kwargs)
    dense = chebpan.solve_ivp_batch(lambda t, y: y * y, t_span, y0, dense_output=True, **kwargs)
    assert lean.status.tolist() == dense.status.tolist()
    np.testing.assert_array_equal(lean.y, dense.y)
    if t_span[0] == 0.0:  # the y0 = 2 instance blows up at t = 1/2
        assert lean.status.tolist() == [0, 0, -1, 0]
        assert np.isnan(lean.y[2, 0, -1]) and lean.y[2, 0, 0] == 2.0
    ok = lean.status == 0
    exact = y0[ok] / (1 - y0[ok] * (t_eval[None, :] - t_span[0]))
    np.testing.assert_allclose(lean.y[ok, 0, :], exact, rtol=1e-8)


def test_segment_ends_without_dense_output_are_those_with_it():
    y0 = np.array([[0.1], [0.5], [2.0]])
    lean = chebpan.solve_ivp_batch(lambda t, y: y * y, (0, 1), y0, vectorized=True, rtol=1e-8)
    dense = chebpan.solve_ivp_batch(lambda t, y: y * y, (0, 1), y0, vectorized=True, rtol=1e-8,
                                    dense_output=True)
    np.testing.assert_array_equal(lean.t, dense.t)
    np.testing.assert_array_equal(lean.y, dense.y)


@pytest.mark.parametrize("dense_output", [False, True])
def test_instances_solved_in_chunks_give_the_same_results(dense_output):
    """batch_memory small enough for a few instances per chunk: the same numbers."""
    y0 = np.array(LORENZ_Y0 * 4) + np.linspace(0, 1, 12)[:, None]
    kwargs = dict(vectorized=True, rtol=1e-8, atol=1e-8, t_eval=[0.5, 1.0],
                  dense_output=dense_output)
    whole = chebpan.solve_ivp_batch(lorenz_fun, (0, 1), y0, **kwargs)
    chunked = chebpan.solve_ivp_batch(lorenz_fun, (0, 1), y0, batch_memory=3 * 8 * 800, **kwargs)
    np.testing.assert_array_equal(chunked.y, whole.y)
    np.testing.assert_array_equal(chunked.per_instance["nsegments"],
                                  whole.per_instance["nsegments"])
    assert chunked.depth > whole.depth  # the chunks ran one after the other
    if dense_output:
        np.testing.assert_array_equal(chunked.sol(0.7), whole.sol(0.7))


def _lotka_volterra_rows_and_single():
    """scipy's Lotka–Volterra example at rtol 1e-3 as the two rows of a batch (the same
    IVP twice: in lock step, where a batch of one is a single solve) and as a single
    solve, all successful; the rows' end values checked against DOP853 at 1e-12.  The
    rows stay in lock step to the end (the batch's rounds are each row's: no row is
    solved on alone, as a stiff one would be, because a line search's trial point far
    off had a large J).  Returns the batch, and the single solve."""
    import scipy.integrate

    def lv(t, z):
        x, y = z
        return np.stack([1.5 * x - x * y, -3 * y + x * y])

    kw = dict(rtol=1e-3, atol=1e-6, vectorized=True)
    batch = chebpan.solve_ivp_batch(lv, (0, 15), np.array([[10.0, 5.0]] * 2), **kw)
    single = chebpan.solve_ivp(lv, (0, 15), [10.0, 5.0], **kw)
    assert batch.status.tolist() == [0, 0] and single.success
    assert batch.per_instance["depth"].tolist() == [batch.depth] * 2
    ref = scipy.integrate.solve_ivp(lv, (0, 15), [10.0, 5.0], method="DOP853", rtol=1e-12,
                                    atol=1e-12).y[:, -1]
    for k in range(2):
        last = batch.y[k][:, np.isfinite(batch.t[k])][:, -1]
        np.testing.assert_allclose(last, ref, rtol=2e-2)  # (LV amplifies errors ~10x)
    return batch, single


COUNTS = ("nfev", "njev", "nlu", "depth", "npoints", "nsegments", "nrejected",
          "niter_picard", "niter_newton")


@pytest.mark.parametrize("name", list(SUITE))
def test_a_batch_of_one_is_the_single_solve(name):
    """A batch of one instance (without events) is solved by the single solve's segment
    loop with the single solve's defaults: on every suite problem, non-stiff and stiff
    (with its ``jac``, or its sparsity pattern as ``jac_sparsity``, which only a batch
    of one takes), the counts of ``chebpan.solve_ivp`` on the same IVP (rounds, calls,
    segments, iterations, factorisations) and its values, bit for bit."""
    problem = SUITE[name]()
    kw = dict(rtol=1e-6, atol=1e-6 * problem.floor, vectorized=True)
    if problem.sparsity is not None:
        kw["jac_sparsity"] = problem.sparsity()
        with pytest.raises(NotImplementedError, match="`jac_sparsity` is not supported by"):
            chebpan.solve_ivp_batch(problem.fun, problem.t_span,
                                    np.array([problem.y0] * 2), **kw)
    elif problem.jac is not None:
        kw.update(jac=problem.jac, vectorized_jac=True)
    y0 = np.array(problem.y0)
    single = chebpan.solve_ivp(problem.fun, problem.t_span, y0, **kw)
    batch = chebpan.solve_ivp_batch(problem.fun, problem.t_span, y0[None, :], **kw)
    assert single.status == batch.status[0] == 0
    assert [getattr(single, c) for c in COUNTS] == [int(np.sum(getattr(batch, c)))
                                                    for c in COUNTS]
    assert [batch.per_instance[c][0] for c in ("nsegments", "nrejected", "depth")] == [
        single.nsegments, single.nrejected, single.depth]
    np.testing.assert_array_equal(batch.t[0], single.t)
    np.testing.assert_array_equal(batch.y[0], single.y)
    if problem.resolvable(1e-5):
        assert problem.scaled_error(batch.y[0, :, -1]) <= 10  # (rtol 1e-6)


def test_a_batch_of_one_takes_its_arguments_to_the_single_solve():
    """``batch_args``, a per-instance span and ``t_eval``, ``first_step``, dense output,
    progress and a failure reach the single solve of a batch of one as ``args`` and
    its own values: y' = r y² from y(0) = 1 blows up at t = 1/r; the same status,
    message, values and dense output as ``chebpan.solve_ivp``."""
    def fun(t, y, rate):
        return rate * y * y

    rate = 1.25
    tol = dict(rtol=1e-8, atol=1e-10)
    single = chebpan.solve_ivp(fun, (0, 2), [1.0], args=(rate,), t_eval=[0.5, 0.75],
                               first_step=0.1, dense_output=True, vectorized=True, **tol)
    batch = chebpan.solve_ivp_batch(fun, np.array([[0.0, 2.0]]), np.array([[1.0]]),
                                    batch_args=(np.array([rate]),),
                                    t_eval=np.array([[0.5, 0.75]]), first_step=0.1,
                                    dense_output=True, vectorized=True, progress=True, **tol)
    assert single.status == batch.status[0] == -1
    assert batch.message[0] == single.message
    reached = float(single.message.split("starting at t = ")[1].split(" ")[0])
    assert abs(reached - 1 / rate) < 1e-9  # (stopped at the pole)
    np.testing.assert_array_equal(batch.y[0], single.y)
    np.testing.assert_allclose(single.y[0], 1 / (1 - rate * np.array([0.5, 0.75])), rtol=1e-6)
    times = np.linspace(0, 0.7, 8)
    np.testing.assert_array_equal(batch.sol(times)[0], single.sol(times))
    assert batch.nfev == single.nfev and batch.depth == single.depth


def test_a_batch_starts_with_newton_where_a_single_solve_does():
    """Once an attempt of a row has failed, the row's next attempts start with Newton
    steps, as a single solve's do (the Picard iteration would fail there again): on
    Lotka–Volterra at rtol 1e-3 a row in lock step spends fewer than two Picard
    iterations per attempt and takes at most 1.8 times the single solve's depth (when
    every attempt started with the Picard iteration: 177 Picard iterations over 36
    attempts, 2.6 times the depth), at the same accuracy."""
    batch, single = _lotka_volterra_rows_and_single()
    assert batch.niter_picard <= 2 * (batch.nsegments + batch.nrejected)
    assert batch.depth <= 1.8 * single.depth


def test_a_batch_row_starts_from_the_linearised_start_after_newton(monkeypatch):
    """After a segment that converged with Newton steps, a row's next attempt starts
    from the linearised start (J from that iteration's end), as a single solve's best
    start usually is: on Lotka–Volterra at rtol 1e-3 a row in lock step takes at most
    1.5 times the single solve's depth (1.66 times with the previous segment extrapolated:
    depth 128, 5 rejections), at the same accuracy.  The start is the single solve's
    function, called with the rows' own J."""
    from chebpan._control import batch as batch_module

    calls = []

    def counted(basis, y_a, f_a, half_h, jac_a, *, xp):
        calls.append(y_a.shape[0])
        assert np.all(np.isfinite(jac_a))
        return linearised_start(basis, y_a, f_a, half_h, jac_a, xp=xp)

    linearised_start = batch_module.linearised_start
    monkeypatch.setattr(batch_module, "linearised_start", counted)
    batch, single = _lotka_volterra_rows_and_single()
    assert sum(calls) >= batch.nsegments // 2
    assert batch.depth <= 1.5 * single.depth


def test_damped_newton_steps_end_the_attempt_as_in_a_single_solve(monkeypatch):
    """More than MAX_DAMPED_STEPS Newton steps shortened by the line search, far from
    convergence, end a row's attempt (a shorter segment is cheaper), as in a single
    solve: on Van der Pol (μ = 10, 20, 40) fewer rounds and Newton iterations than with
    the rule switched off (depth 179 → 169, Newton iterations 273 → 267), at the same
    accuracy.  (Lengths from the
    error rule alone: the singularity limit keeps most segments out of the jumps where
    damped steps happen.)"""
    import scipy.integrate

    from chebpan._control import batch as batch_module
    from chebpan._control import batch_steps

    monkeypatch.setattr(batch_module, "limited_factors",
                        lambda coeffs, y_a, y_end, atol, rtol, factors, *, xp:
                        (factors, factors < 0))
    # (the batch's own Newton steps: no row handed to a single solve when it turns stiff)
    monkeypatch.setattr(batch_module, "STIFF_ON", math.inf)

    def vdp(t, z, mu):
        x, y = z
        return np.stack([y, mu * (1 - x * x) * y - x])

    mu = np.array([10.0, 20.0, 40.0])
    y0 = np.array([[2.0, 0.0], [1.0, 1.0], [0.5, -1.0]])
    kw = dict(rtol=1e-6, atol=1e-9, vectorized=True, batch_args=(mu,))
    ref = np.array([scipy.integrate.solve_ivp(vdp, (0, 20), y, method="Radau", args=(m,),
                                              rtol=1e-12, atol=1e-12).y[:, -1]
                    for y, m in zip(y0, mu)])
    with_rule = chebpan.solve_ivp_batch(vdp, (0, 20), y0, **kw)
    monkeypatch.setattr(batch_steps, "MAX_DAMPED_STEPS", 10**6)
    without = chebpan.solve_ivp_batch(vdp, (0, 20), y0, **kw)
    for res in (with_rule, without):
        assert np.all(res.status == 0)
        last = np.array([res.y[k][:, np.isfinite(res.t[k])][:, -1] for k in range(len(y0))])
        np.testing.assert_allclose(last, ref, rtol=1e-2, atol=1e-3)
    assert with_rule.depth < without.depth
    assert with_rule.niter_newton < without.niter_newton


def test_hopeless_newton_trials_end_the_attempt(monkeypatch):
    """A rejected Newton trial whose quadratic model puts the minimiser below
    HOPELESS_ALPHA ends the attempt at once (the segment is halved) instead of
    backtracking step after step: fewer rounds on Lotka–Volterra, whose segments grow
    into fast phases, at the same accuracy."""
    import scipy.integrate

    from chebpan._control import batch_steps

    def lv(t, z):
        x, y = z
        return np.stack([1.5 * x - x * y, -3 * y + x * y])

    y0 = np.array([[10.0, 5.0], [9.0, 4.0], [11.0, 6.0]])
    kw = dict(rtol=1e-3, atol=1e-6, vectorized=True)
    ref = np.array([scipy.integrate.solve_ivp(lv, (0, 15), y, method="DOP853", rtol=1e-12,
                                              atol=1e-12).y[:, -1] for y in y0])
    with_rule = chebpan.solve_ivp_batch(lv, (0, 15), y0, **kw)
    monkeypatch.setattr(batch_steps, "HOPELESS_ALPHA", 0.0)
    without = chebpan.solve_ivp_batch(lv, (0, 15), y0, **kw)
    for res in (with_rule, without):
        assert np.all(res.status == 0)
        last = np.array([res.y[k][:, np.isfinite(res.t[k])][:, -1] for k in range(len(y0))])
        np.testing.assert_allclose(last, ref, rtol=2e-2)  # (LV amplifies errors ~10x)
    assert with_rule.depth < without.depth
    assert with_rule.niter_newton < without.niter_newton


@pytest.mark.parametrize("library", ["numpy", "array_api_strict"])
def test_rows_written_back_in_order(library):
    """A table's rows where a mask holds get the selected rows' new values, in order, on
    NumPy (by positions) and on a strict array-API library (by the mask) alike."""
    import array_api_compat

    from chebpan._control.batch_table import Table

    if library == "numpy":
        xp = np
    else:
        xp = array_api_compat.array_namespace(pytest.importorskip("array_api_strict").asarray(0))
    k = 7
    table = Table(xp, ids=xp.arange(k), t=xp.asarray(np.linspace(0, 1, k)),
                  x=xp.asarray(np.arange(k * 6, dtype=float).reshape(k, 2, 3)))
    mask = xp.asarray(np.array([0, 1, 1, 0, 0, 1, 0], dtype=bool))
    rows = table.select(mask)
    rows.t = rows.t + 10.0
    rows.x = -rows.x
    table.write_rows(mask, rows, ("t", "x"))
    t, x, m = (np.asarray(v) for v in (table.t, table.x, mask))
    np.testing.assert_array_equal(t, np.where(m, np.linspace(0, 1, k) + 10, np.linspace(0, 1, k)))
    x0 = np.arange(k * 6, dtype=float).reshape(k, 2, 3)
    np.testing.assert_array_equal(x, np.where(m[:, None, None], -x0, x0))

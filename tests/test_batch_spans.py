"""Batches with a span per instance: ``t_span`` of shape (K, 2), ``t_eval`` 1-D or (K, P).

Accuracy against exact solutions, agreement with single solves on each instance's own
span (both within tolerance-level error of the exact solution), the shared span as the
special case (bit for bit), and the errors for wrong shapes and values.
"""

import re

import numpy as np
import pytest
import scipy.linalg

import chebpan
from chebpan._output.row_search import RowSearch

sx = pytest.importorskip("array_api_strict")

TOL = dict(rtol=1e-10, atol=1e-12)

#: Spans of different lengths and both directions, one of them empty.
SPANS = np.array([[0.0, 1.0], [0.0, 2.5], [1.0, -2.0], [3.0, 2.0], [-0.5, 4.0], [3.0, 3.0]])
RATES = np.array([0.5, 1.0, 2.0, 3.0, 0.7, 1.0])
Y0 = np.array([[1.0, -2.0], [2.0, 0.5], [3.0, 1.0], [4.0, -1.0], [0.5, 0.25], [5.0, 6.0]])
K = len(SPANS)


def decay(t, y, rate):
    return -rate * y


def decay_exact(t):
    """y_k(t) of y' = -rate_k y from SPANS[k, 0]: t (P,) or (K, P) → (K, n, P)."""
    t = np.broadcast_to(t, (K, np.shape(t)[-1]))
    return Y0[:, :, None] * np.exp(-RATES[:, None, None] * (t - SPANS[:, :1])[:, None, :])


def solve_decay(**kwargs):
    return chebpan.solve_ivp_batch(decay, SPANS, Y0, vectorized=True, batch_args=(RATES,),
                                   **TOL, **kwargs)


def per_instance_times(points=7):
    """(K, P): each instance's span sampled in its own direction."""
    return np.stack([np.linspace(t0, tf, points) for t0, tf in SPANS])


# -- accuracy ----------------------------------------------------------------------------
@pytest.mark.parametrize("dense_output", [False, True], ids=["ends", "dense"])
def test_each_instance_runs_from_its_t0_to_its_tf(dense_output):
    res = solve_decay(dense_output=dense_output)
    assert res.success and res.status.tolist() == [0] * K
    assert np.array_equal(res.t[:, 0], SPANS[:, 0])
    last = np.sum(~np.isnan(res.t), axis=1) - 1
    assert np.array_equal(res.t[np.arange(K), last], SPANS[:, 1])
    # every end moves in its instance's direction (but the empty span's)
    steps = (np.diff(res.t, axis=1) * np.sign(SPANS[:, 1] - SPANS[:, 0])[:, None])[:-1]
    assert np.all(steps[~np.isnan(steps)] > 0)
    exact = decay_exact(SPANS[:, 1:])[..., 0]
    np.testing.assert_allclose(res.y[np.arange(K), :, last], exact, rtol=1e-9, atol=1e-12)
    # an empty span: [t0, t0] and [y0, y0], as a shared empty span gives
    assert np.array_equal(res.t[-1, :2], [3.0, 3.0]) and np.all(np.isnan(res.t[-1, 2:]))
    assert np.array_equal(res.y[-1, :, :2], np.stack([Y0[-1], Y0[-1]], axis=-1))
    assert res.per_instance["nsegments"][-1] == 0


@pytest.mark.parametrize("dense_output", [False, True], ids=["lean", "dense"])
def test_t_eval_with_one_row_per_instance(dense_output):
    t_eval = per_instance_times()
    res = solve_decay(t_eval=t_eval, dense_output=dense_output)
    assert res.t is t_eval or np.array_equal(res.t, t_eval)
    assert res.y.shape == (K, 2, t_eval.shape[1])
    np.testing.assert_allclose(res.y, decay_exact(t_eval), rtol=1e-9, atol=1e-12)
    assert np.array_equal(res.y[:, :, 0], Y0)  # t0 exactly


def test_a_1d_t_eval_is_shared_by_instances_of_one_direction():
    spans = SPANS[[0, 1, 4]]
    t_eval = np.linspace(0.0, 1.0, 9)  # within [0, 1], [0, 2.5] and [-0.5, 4]
    for dense_output in (False, True):
        res = chebpan.solve_ivp_batch(decay, spans, Y0[[0, 1, 4]], vectorized=True,
                                      batch_args=(RATES[[0, 1, 4]],), t_eval=t_eval,
                                      dense_output=dense_output, **TOL)
        assert res.t is t_eval and res.y.shape == (3, 2, 9)
        np.testing.assert_allclose(res.y, decay_exact(t_eval)[[0, 1, 4]], rtol=1e-9,
                                   atol=1e-12)


def test_dense_output_per_instance():
    res = solve_decay(dense_output=True)
    t_eval = per_instance_times(11)
    np.testing.assert_allclose(res.sol(t_eval), decay_exact(t_eval), rtol=1e-9, atol=1e-12)
    # shared times: the same as one row each
    np.testing.assert_allclose(res.sol(0.5)[:2], decay_exact(np.array([0.5]))[:2, :, 0],
                               rtol=1e-9)
    with pytest.raises(ValueError, match=r"must have K = 6 rows, but has shape \(2, 3\)"):
        res.sol(np.zeros((2, 3)))


def linear_system(t, y, a):
    return a @ y


A = np.array([[-0.3, 1.0, 0.0], [-1.0, -0.3, 0.2], [0.0, -0.2, -1.0]])
LINEAR_SPANS = np.array([[0.0, 4.0], [2.0, -3.0], [-1.0, 0.5], [10.0, 13.0]])
LINEAR_Y0 = np.array([[1.0, 0.0, 0.5], [0.0, 2.0, -1.0], [-1.0, 1.0, 1.0], [3.0, -1.0, 0.0]])


def test_linear_system_matches_expm_and_single_solves():
    """y' = A y: each instance against expm on its own span, and against
    chebpan.solve_ivp on that span (both within tolerance-level error of the exact)."""
    rtol, atol = 1e-9, 1e-11
    t_eval = np.stack([np.linspace(t0, tf, 6) for t0, tf in LINEAR_SPANS])
    res = chebpan.solve_ivp_batch(linear_system, LINEAR_SPANS, LINEAR_Y0, vectorized=True,
                                  args=(A,), t_eval=t_eval, rtol=rtol, atol=atol)
    assert res.success
    for k, ((t0, tf), y0) in enumerate(zip(LINEAR_SPANS, LINEAR_Y0)):
        exact = np.stack([scipy.linalg.expm(A * (t - t0)) @ y0 for t in t_eval[k]], axis=-1)
        single = chebpan.solve_ivp(linear_system, (t0, tf), y0, vectorized=True, args=(A,),
                                   t_eval=t_eval[k], rtol=rtol, atol=atol)
        scale = atol + rtol * np.abs(exact)
        assert np.max(np.abs(res.y[k] - exact) / scale) < 50
        assert np.max(np.abs(single.y - exact) / scale) < 50
        assert np.max(np.abs(res.y[k] - single.y) / scale) < 100


@pytest.mark.parametrize("kwargs", [dict(t_eval=np.linspace(0.5, 0.0, 5)), dict(),
                                    dict(dense_output=True)],
                         ids=["t_eval", "ends", "dense"])
def test_equal_spans_give_the_shared_span_bit_for_bit(kwargs):
    spans = np.tile([0.5, 0.0], (4, 1))
    y0 = np.array([[1.0], [2.0], [-1.0], [0.3]])
    rate = np.array([1.0, 2.0, 3.0, 4.0])
    shared = chebpan.solve_ivp_batch(decay, (0.5, 0.0), y0, vectorized=True,
                                     batch_args=(rate,), **kwargs)
    each = chebpan.solve_ivp_batch(decay, spans, y0, vectorized=True, batch_args=(rate,),
                                   **kwargs)
    assert np.array_equal(shared.t, each.t, equal_nan=True)
    assert np.array_equal(shared.y, each.y, equal_nan=True)
    assert shared.nfev == each.nfev
    if "dense_output" in kwargs:
        times = np.linspace(0.0, 0.5, 7)
        assert np.array_equal(shared.sol(times), each.sol(times))


def test_a_2d_t_eval_with_a_shared_span():
    t_eval = np.array([[0.0, 0.5, 1.0], [0.2, 0.3, 0.4], [0.1, 0.9, 1.0]])
    rate = np.array([0.5, 1.0, 2.0])
    res = chebpan.solve_ivp_batch(decay, (0, 1), np.ones((3, 1)), vectorized=True,
                                  batch_args=(rate,), t_eval=t_eval, **TOL)
    assert res.t.shape == (3, 3)
    np.testing.assert_allclose(res.y[:, 0], np.exp(-rate[:, None] * t_eval), rtol=1e-9)


def test_many_chunks_keep_each_instance_its_span():
    k = 23
    rng = np.random.default_rng(3)
    t0 = rng.uniform(-2, 2, k)
    tf = t0 + rng.choice([-1, 1], k) * rng.uniform(0.1, 3, k)
    rate = rng.uniform(0.1, 2, k)
    t_eval = np.linspace(t0, tf, 5, axis=1)
    res = chebpan.solve_ivp_batch(decay, np.column_stack([t0, tf]), np.ones((k, 1)),
                                  vectorized=True, batch_args=(rate,), t_eval=t_eval,
                                  batch_memory=1, **TOL)  # one instance per chunk
    np.testing.assert_allclose(res.y[:, 0], np.exp(-rate[:, None] * (t_eval - t0[:, None])),
                               rtol=1e-9)


def test_a_failure_at_t0_names_the_instance_s_own_t0():
    def log_decay(t, y):
        return np.log(y)

    with np.errstate(invalid="ignore"):
        res = chebpan.solve_ivp_batch(log_decay, [[0.0, 1.0], [2.5, 3.0]],
                                      np.array([[1.0], [-1.0]]), vectorized=True)
    assert res.status.tolist() == [0, -1]
    assert res.message[1] == "`fun` returned non-finite values at t = 2.5."


def test_first_step_is_checked_against_the_shortest_span():
    kwargs = dict(vectorized=True, batch_args=(RATES,))
    res = chebpan.solve_ivp_batch(decay, SPANS, Y0, first_step=0.5, **kwargs)
    assert res.success
    with pytest.raises(ValueError, match=re.escape(
            "`first_step` exceeds bounds: instance 0's span (0.0, 1.0) is shorter.")):
        chebpan.solve_ivp_batch(decay, SPANS, Y0, first_step=1.5, **kwargs)


def test_on_array_api_strict_as_on_numpy():
    t_eval = per_instance_times()
    on_numpy = solve_decay(t_eval=t_eval)
    on_strict = chebpan.solve_ivp_batch(decay, SPANS, sx.asarray(Y0), vectorized=True,
                                        batch_args=(sx.asarray(RATES),), t_eval=t_eval,
                                        dense_output=True, **TOL)
    np.testing.assert_allclose(np.asarray(on_strict.y), on_numpy.y, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(np.asarray(on_strict.sol(sx.asarray(t_eval))), on_numpy.y,
                               rtol=1e-10, atol=1e-13)


# -- errors --------------------------------------------------------------------------------
def solve(t_span, y0=np.ones((3, 1)), **kwargs):
    return chebpan.solve_ivp_batch(lambda t, y: -y, t_span, y0, vectorized=True, **kwargs)


@pytest.mark.parametrize("t_span, message", [
    (np.zeros((3, 3)), "`t_span` must be a 2-sequence (t0, tf) shared by every instance, or "
                       "an array of shape (K, 2) with one (t0, tf) per instance, but has "
                       "shape (3, 3)."),
    (np.zeros((3, 2, 1)), "but has shape (3, 2, 1)."),
    ([[0, 1], [0, 1, 2], [0, 1]], "`t_span` must be a 2-sequence (t0, tf)"),
    (np.zeros((2, 2)), "`t_span` has 2 rows, but `y0` has K = 3: a per-instance `t_span` "
                       "has one (t0, tf) per instance, shape (3, 2)."),
    ([[0, 1], [0, np.inf], [0, 1]], "`t_span` must be finite, but `t_span[1]` is (0.0, inf)."),
    ([[0, 1], [0, 1], [np.nan, 1]], "`t_span[2]` is (nan, 1.0)."),
], ids=["(K, 3)", "3-D", "ragged", "K' != K", "inf", "nan"])
def test_t_span_errors(t_span, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        solve(t_span)


def test_complex_t_span_is_a_type_error():
    with pytest.raises(TypeError, match="`t_span` must hold real numbers"):
        solve(np.ones((3, 2), dtype=complex))


def test_a_shared_t_span_keeps_scipy_s_errors():
    with pytest.raises(ValueError, match="too many values to unpack"):
        solve((0, 1, 2))
    with pytest.raises(ValueError, match="`t_span` must not contain NaN."):
        solve((0, np.nan))


SPANS3 = np.array([[0.0, 1.0], [0.0, 2.0], [1.0, 0.0]])


@pytest.mark.parametrize("t_eval, message", [
    ([0.5, 1.5], "Values in `t_eval` are not within `t_span` for instance 0: `t_eval` must "
                 "lie within its span (0.0, 1.0) and be strictly increasing."),
    ([0.2, 0.5], "Values in `t_eval` are not properly sorted for instance 2: `t_eval` must "
                 "lie within its span (1.0, 0.0) and be strictly decreasing."),
    ([[0.0, 1.0], [0.0, 2.0], [0.0, 1.0]], "Values in `t_eval` are not properly sorted for "
                                           "instance 2: `t_eval[2]` must lie within its "
                                           "span (1.0, 0.0)"),
    ([[0.0, 1.0], [0.0, 2.5], [1.0, 0.0]], "not within `t_span` for instance 1: `t_eval[1]`"),
    ([[0.0, np.nan], [0.0, 2.0], [1.0, 0.0]], "not within `t_span` for instance 0"),
    (np.zeros((2, 2)), "`t_eval` of shape (2, 2) must have one row of times per instance: "
                       "K = 3 rows, as `t_span` has."),
    (np.zeros((3, 1, 1)), "`t_eval` must be 1-dimensional (times shared by every instance) "
                          "or 2-dimensional (K, P)"),
], ids=["outside", "1-D, mixed directions", "row unsorted", "row outside", "NaN",
        "K' != K", "3-D"])
def test_t_eval_errors_name_the_first_instance(t_eval, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        solve(SPANS3, t_eval=t_eval)


def test_a_2d_t_eval_needs_k_rows_with_a_shared_span():
    with pytest.raises(ValueError, match=re.escape(
            "`t_eval` of shape (2, 2) must have one row of times per instance: K = 3 rows, "
            "as `y0` has.")):
        solve((0, 1), t_eval=[[0.0, 1.0], [0.5, 1.0]])


def test_an_empty_span_takes_only_its_t0():
    res = solve([[0.0, 1.0], [2.0, 2.0]], y0=np.ones((2, 1)), t_eval=[[0.0, 1.0], [2.0, 2.0]])
    assert res.y.tolist() == [[[1.0, pytest.approx(np.exp(-1), rel=1e-5)]], [[1.0, 1.0]]]
    with pytest.raises(ValueError, match="not within `t_span` for instance 1"):
        solve([[0.0, 1.0], [2.0, 2.0]], y0=np.ones((2, 1)), t_eval=[[0.0, 1.0], [2.0, 2.5]])


# -- the search within rows ------------------------------------------------------------------
@pytest.mark.parametrize("xp", [np, sx], ids=["numpy", "array_api_strict"])
def test_row_search_is_searchsorted_row_by_row(xp):
    rng = np.random.default_rng(0)
    rows = np.sort(rng.integers(0, 20, (5, 8)).astype(float), axis=1)  # ties included
    queries = rng.integers(-2, 22, 40).astype(float)
    which = rng.integers(0, 5, 40)
    search = RowSearch(xp.asarray(rows), xp=xp)
    for inclusive, side in ((True, "right"), (False, "left")):
        got = search.count(xp.asarray(which), xp.asarray(queries), inclusive=inclusive)
        expected = [np.searchsorted(rows[r], q, side=side) for r, q in zip(which, queries)]
        assert np.asarray(got).tolist() == expected

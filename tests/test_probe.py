"""``vectorized`` not given: one probe decides whether ``fun`` handles (n, P) input.

A vectorisable ``fun`` is called vectorised; one that raises on (n, P) input, or whose
vectorised values are silently wrong (``np.sum(y)``), is called point by point with one
warning that names ``vectorized=True`` and the number of calls; an explicit
``vectorized=False`` is obeyed silently.
"""

import re
import warnings

import numpy as np
import pytest
import scipy.integrate

import chebpan
from chebpan._rhs.probe import agree, probe_indices

sx = pytest.importorskip("array_api_strict")


def lotka_volterra(t, z, a, b, c, d):
    """scipy's docstring example, unchanged (written for one point)."""
    x, y = z
    return [a * x - b * x * y, -c * y + d * x * y]


class Recorder:
    """``fun`` that records the shape of every ``y`` it is called with."""

    def __init__(self, fun):
        self.fun, self.shapes = fun, []

    def __call__(self, t, y, *args):
        self.shapes.append(np.shape(y))
        return self.fun(t, y, *args)


def solve_quietly(*args, **kwargs):
    """chebpan.solve_ivp, failing on any warning; returns the result."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return chebpan.solve_ivp(*args, **kwargs)


def test_scipys_lotka_volterra_runs_vectorised_without_a_warning():
    fun = Recorder(lotka_volterra)
    res = solve_quietly(fun, [0, 15], [10, 5], args=(1.5, 1, 3, 1), dense_output=True)
    assert res.status == 0
    # calls at single points before the probe (the start), the probe (one call on
    # three points, then three point-wise calls), then vectorised calls only
    first = fun.shapes.index((2, 3))
    assert all(len(shape) == 1 for shape in fun.shapes[:first])
    assert fun.shapes[first + 1:first + 4] == [(2,)] * 3
    assert all(len(shape) == 2 for shape in fun.shapes[first + 4:])
    assert res.nfev == len(fun.shapes)  # the probe's calls are counted
    assert res.nfev < res.npoints / 10
    explicit = chebpan.solve_ivp(lotka_volterra, [0, 15], [10, 5], args=(1.5, 1, 3, 1),
                                 vectorized=True)
    np.testing.assert_array_equal(res.y[:, -1], explicit.y[:, -1])
    assert res.nfev == explicit.nfev + 4  # one vectorised and three point-wise calls
    reference = scipy.integrate.solve_ivp(lotka_volterra, [0, 15], [10, 5], method="DOP853",
                                          args=(1.5, 1, 3, 1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(res.sol(15.0), reference.y[:, -1], rtol=1e-4)


@pytest.mark.parametrize("fun, why", [
    (lambda t, y: [y[1], -0.5], "raised ValueError"),        # a constant component
    (lambda t, y: -y if t >= 0 else y, "raised ValueError"),  # a branch on t
    (lambda t, y: [-float(y[0])], "raised TypeError"),
], ids=["constant-component", "branch-on-t", "float"])
def test_a_fun_that_fails_on_many_points_is_called_point_by_point_with_a_warning(fun, why):
    y0 = [0.0, 1.0] if "-0.5" in repr(fun.__code__.co_consts) else [1.0]
    recorder = Recorder(fun)
    with pytest.warns(UserWarning) as record:
        res = chebpan.solve_ivp(recorder, (0, 2), y0)
    assert len(record) == 1
    message = str(record[0].message)
    assert why in message and "`vectorized=True`" in message
    assert f"{res.nfev} calls" in message
    assert re.search(r"y of shape \(n, P\) = \(\d, 3\)", message)
    assert res.status == 0 and res.nfev == len(recorder.shapes)
    assert sum(len(shape) == 2 for shape in recorder.shapes) == 1  # the probe only
    expected = scipy.integrate.solve_ivp(fun, (0, 2), y0, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(res.y[:, -1], expected.y[:, -1], rtol=1e-2, atol=1e-4)


def test_silently_wrong_vectorised_output_is_detected():
    """``-np.sum(y)`` per component: right for one point, wrong for (n, P)."""
    def fun(t, y):
        return -np.sum(y) * np.ones_like(y)

    with pytest.warns(UserWarning, match="returned different values for y of shape "
                                         r"\(n, P\) than point by point"):
        res = chebpan.solve_ivp(fun, (0, 1), [1.0, 1.0], rtol=1e-8, atol=1e-10)
    # y1 = y2 = y, y' = -2y: exp(-2)
    np.testing.assert_allclose(res.y[:, -1], np.exp(-2.0), rtol=1e-7)


def test_a_fun_written_only_for_many_points_runs_vectorised():
    """``vectorized=True`` forgotten: scipy's bare IndexError; here a vectorised solve."""
    def fun(t, y):
        return -y[0, :][None, :] * np.ones((2, 1))  # needs y of shape (n, P)

    with pytest.raises(IndexError):
        scipy.integrate.solve_ivp(fun, (0, 1), [1.0, 1.0])
    res = solve_quietly(fun, (0, 1), [1.0, 1.0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.y[:, -1], np.exp(-1.0), rtol=1e-9)


def test_explicit_vectorized_false_is_obeyed_silently():
    fun = Recorder(lambda t, y: -y)
    res = solve_quietly(fun, (0, 1), [1.0, 2.0], vectorized=False)
    assert res.status == 0
    assert all(len(shape) == 1 for shape in fun.shapes)
    assert res.nfev == len(fun.shapes) == res.npoints


def test_explicit_vectorized_true_that_fails_says_so():
    with pytest.raises(ValueError) as info:
        chebpan.solve_ivp(lambda t, y: [y[1], -0.5], (0, 1), [0.0, 1.0], vectorized=True)
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "because vectorized=True" in notes and "vectorized=False" in notes


def test_probe_in_a_batch_uses_each_points_instance_arguments():
    def fun(t, y, rate):  # scipy style, one point: rate is the instance's float
        return [-rate * y[0]]

    rate = np.array([0.5, 1.0, 2.0, 4.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = chebpan.solve_ivp_batch(fun, (0, 1), np.ones((4, 1)), batch_args=(rate,),
                                      t_eval=[1.0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.y[:, 0, 0], np.exp(-rate), rtol=1e-9)
    assert res.nfev < res.npoints / 5  # vectorised after the probe


def test_batch_with_a_non_vectorisable_fun_warns_once():
    def fun(t, y, rate):
        return [-rate * float(y[0])]

    rate = np.array([0.5, 1.0])
    with pytest.warns(UserWarning, match="called point by point") as record:
        res = chebpan.solve_ivp_batch(fun, (0, 1), np.ones((2, 1)), batch_args=(rate,),
                                      t_eval=[1.0], rtol=1e-10, atol=1e-12)
    assert len(record) == 1
    np.testing.assert_allclose(res.y[:, 0, 0], np.exp(-rate), rtol=1e-9)


def test_complex_state_is_probed():
    res = solve_quietly(lambda t, y: 1j * y, (0, 1), [1.0 + 0j], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.y[0, -1], np.exp(1j), rtol=1e-9)
    assert res.nfev < res.npoints / 5


def test_probe_on_array_api_strict():
    res = solve_quietly(lambda t, y: -y, (0, 1), sx.asarray([1.0, 2.0]), rtol=1e-10,
                        atol=1e-12)
    np.testing.assert_allclose(np.asarray(res.y[:, -1]), np.exp(-1.0) * np.array([1, 2]),
                               rtol=1e-9)
    assert res.nfev < res.npoints / 5


def test_agree_and_probe_indices():
    assert probe_indices(2) == [0, 1] and probe_indices(31) == [0, 15, 30]
    a = np.array([[1.0, np.nan, np.inf], [0.0, 2.0, 3.0]])
    assert agree(a, a.copy(), np)
    assert agree(a + 1e-13, a, np)
    assert not agree(a + 1e-6, a, np)
    assert not agree(np.array([[1.0, 2.0]]), np.array([[1.0, np.nan]]), np)
    assert agree(np.zeros((0, 3)), np.zeros((0, 3)), np)

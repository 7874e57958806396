"""How chebpan.solve_ivp fails: non-finite f, blow-up, user exceptions, wrong shapes."""

import re
import time

import numpy as np
import pytest
from numpy.testing import assert_allclose

import chebpan


def _floats_in(message):
    return [float(s) for s in re.findall(r"[-+]?\d+\.\d+(?:[eE][-+]?\d+)?", message)]


def nan_after_half(t, y):
    return np.where(np.asarray(t) > 0.5, np.nan, -y)


@pytest.mark.parametrize("vectorized", [True, False], ids=["vec", "loop"])
@pytest.mark.parametrize("tol", [1e-3, 1e-10])
def test_nan_after_some_time(vectorized, tol):
    res = chebpan.solve_ivp(nan_after_half, (0, 1), [1.0], vectorized=vectorized,
                            dense_output=True, rtol=tol, atol=tol)
    assert res.status == -1
    assert res.success is False
    assert "non-finite" in res.message or "nan" in res.message.lower()
    near = [v for v in _floats_in(res.message) if abs(v - 0.5) < 1e-6]
    assert near, res.message
    # partial solution, up to (about) t* = 0.5
    assert res.t[0] == 0.0
    assert 0.5 - 1e-6 <= res.t[-1] <= 0.5 + 1e-12
    assert np.all(np.diff(res.t) > 0)
    assert res.y.shape == (1, res.t.size)
    assert np.all(np.isfinite(res.y))
    exact = np.exp(-res.t)[None]
    assert np.abs(res.y - exact).max() <= 10 * (tol + tol * np.abs(exact)).max()
    assert res.sol is not None
    assert res.sol.t_max == res.t[-1]
    assert_allclose(res.sol(res.t), res.y, rtol=1e-15, atol=1e-15)
    t_fine = np.linspace(0, res.t[-1], 50)
    assert np.abs(res.sol(t_fine) - np.exp(-t_fine)).max() <= 10 * 2 * tol
    assert res.nrejected > 0


def test_nan_after_some_time_backward():
    def fun(t, y):
        return np.where(np.asarray(t) < 0.5, np.nan, -y)

    res = chebpan.solve_ivp(fun, (1, 0), [np.exp(-1.0)], vectorized=True, rtol=1e-8,
                            atol=1e-8)
    assert res.status == -1 and not res.success
    assert 0.5 - 1e-12 <= res.t[-1] <= 0.5 + 1e-6
    assert np.abs(res.y - np.exp(-res.t)[None]).max() < 1e-7


def test_nan_after_some_time_with_t_eval():
    t_eval = np.linspace(0, 1, 11)
    res = chebpan.solve_ivp(nan_after_half, (0, 1), [1.0], vectorized=True, t_eval=t_eval,
                            rtol=1e-8, atol=1e-8)
    assert res.status == -1
    # only the reached t_eval values (0, 0.1, ..., 0.4, and 0.5 if the end got there)
    assert np.array_equal(res.t, t_eval[: res.t.size])
    assert 5 <= res.t.size <= 6
    assert np.abs(res.y - np.exp(-res.t)[None]).max() < 1e-7


@pytest.mark.parametrize("vectorized", [True, False], ids=["vec", "loop"])
@pytest.mark.parametrize("dense_output", [False, True])
def test_nan_from_the_first_call(vectorized, dense_output):
    calls = []

    def fun(t, y):
        calls.append(t)
        return np.full_like(y, np.nan)

    res = chebpan.solve_ivp(fun, (0, 1), [1.0, 2.0], vectorized=vectorized,
                            dense_output=dense_output)
    assert res.status == -1 and res.success is False
    assert len(calls) == 1  # stops at once
    assert res.nsegments == 0
    assert "non-finite" in res.message
    assert np.array_equal(res.t, [0.0])
    assert np.array_equal(res.y, [[1.0], [2.0]])
    if dense_output:
        assert np.array_equal(res.sol(0.0), [1.0, 2.0])


@pytest.mark.parametrize("tol", [1e-3, 1e-10])
def test_blow_up(tol):
    """y' = y², y(0) = 1: y = 1/(1 − t) blows up at t = 1."""
    start = time.perf_counter()
    res = chebpan.solve_ivp(lambda t, y: y**2, (0, 2), [1.0], vectorized=True, rtol=tol,
                            atol=tol, dense_output=True)
    elapsed = time.perf_counter() - start
    assert elapsed < 30  # loosely: it must just finish
    assert res.status == -1 and res.success is False
    assert "could not be completed" in res.message
    if tol > 1e-6:
        # (the accepted segments shrink toward the pole their coefficients place
        # ahead; at tight tolerances the iteration reaches within a few ulp of
        # t = 1, where the pole's place is uncertain by more than that and which
        # failure comes first is a matter of rounding)
        assert "singularity" in res.message
    assert abs(res.t[-1] - 1.0) < 1e-3, res.t[-1]
    # the part well before the singularity is accurate
    mask = res.t < 0.99
    exact = 1 / (1 - res.t[mask])
    assert np.all(np.abs(res.y[0, mask] - exact) <= 10 * (tol + tol * exact))
    assert res.y[0, -1] > 1e2


class MyError(RuntimeError):
    pass


@pytest.mark.parametrize("vectorized", [True, False], ids=["vec", "loop"])
@pytest.mark.parametrize("when", [0, 5])
def test_exception_from_fun_propagates(vectorized, when):
    calls = []
    error = MyError("boom from fun")

    def fun(t, y):
        calls.append(t)
        if len(calls) > when:
            raise error
        return -y

    with pytest.raises(MyError) as info:
        chebpan.solve_ivp(fun, (0, 1), [1.0], vectorized=vectorized)
    assert info.value is error
    assert str(info.value) == "boom from fun"


def test_exception_from_jac_propagates():
    def jac(t, y):
        raise KeyError("jac failed")

    with pytest.raises(KeyError, match="jac failed"):
        chebpan.solve_ivp(lambda t, y: -y, (0, 1), [1.0], jac=jac, max_picard=1)


@pytest.mark.parametrize("vectorized", [True, False], ids=["vec", "loop"])
@pytest.mark.parametrize("bad", ["short", "long", "extra-dim"])
def test_wrong_output_shape(vectorized, bad):
    def fun(t, y):
        if bad == "short":
            return y[:1]
        if bad == "long":
            return np.concatenate([y, y])
        return y[None]

    with pytest.raises(ValueError) as info:
        chebpan.solve_ivp(fun, (0, 1), [1.0, 2.0], vectorized=vectorized)
    message = str(info.value)
    assert "fun" in message
    expected = r"\(2, 1\)" if vectorized else r"\(2,\)"
    assert re.search(expected, message), message


def test_wrong_output_shape_later_call():
    """A shape that goes wrong only for a many-point call is also caught."""
    def fun(t, y):
        return -y if np.size(t) == 1 else -y[:, :1]

    with pytest.raises(ValueError, match=r"expected \(1, \d+\)"):
        chebpan.solve_ivp(fun, (0, 1), [1.0], vectorized=True)


def test_wrong_jac_shape():
    with pytest.raises(ValueError, match="jac"):
        chebpan.solve_ivp(lambda t, y: -y, (0, 1), [1.0, 2.0], jac=np.eye(3))

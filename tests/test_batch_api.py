"""The split between ``chebpan.solve_ivp`` (scipy's contract) and
``chebpan.solve_ivp_batch`` (K IVPs), the errors for batch mistakes, and the compact
``repr`` of a batch result."""

import re
import warnings

import numpy as np
import pytest
import scipy.integrate

import chebpan


def decay(t, y, rate):
    return -rate * y


def scipy_error(*args, **kwargs):
    """The exception scipy's solve_ivp raises for these arguments (at test time)."""
    with pytest.raises(Exception) as info:
        scipy.integrate.solve_ivp(*args, **kwargs)
    return info.value


# -- solve_ivp keeps scipy's contract --------------------------------------------------
@pytest.mark.parametrize("y0", [np.ones((3, 1)), np.ones((1, 2)), np.ones((2, 2, 1)),
                                1.0], ids=["(3, 1)", "(1, 2)", "(2, 2, 1)", "scalar"])
def test_y0_not_1d_raises_scipys_error(y0):
    expected = scipy_error(lambda t, y: -y, (0, 1), y0)
    with pytest.raises(type(expected)) as info:
        chebpan.solve_ivp(lambda t, y: -y, (0, 1), y0)
    assert str(info.value) == str(expected)


def test_batch_args_in_solve_ivp_points_to_solve_ivp_batch():
    with pytest.raises(ValueError, match=r"`batch_args` is an option of "
                                         r"`chebpan.solve_ivp_batch`"):
        chebpan.solve_ivp(decay, (0, 1), [1.0], batch_args=([1.0],))
    with pytest.raises(ValueError, match="solve_ivp_batch"):
        chebpan.solve_ivp(decay, (0, 1), np.ones((2, 1)), batch_args=([1.0, 2.0],))


@pytest.mark.parametrize("name", ["batch_memory", "newton_memory"])
def test_batch_only_options_have_no_effect_on_a_single_solve(name):
    """scipy's warning for an option the solver does not use, and the same result."""
    with pytest.warns(UserWarning, match=re.escape(
            f"The following arguments have no effect for a chosen solver: `{name}`.")):
        res = chebpan.solve_ivp(lambda t, y: -y, (0, 1), [1.0], **{name: 1})
    assert res.status == 0 and res.y[0, -1] == pytest.approx(np.exp(-1), rel=1e-3)


# -- solve_ivp_batch -------------------------------------------------------------------
def test_solve_ivp_batch_solves_each_instance():
    rate = np.array([0.5, 1.0, 2.0])
    res = chebpan.solve_ivp_batch(decay, (0, 2), np.ones((3, 1)), vectorized=True,
                                  batch_args=(rate,), t_eval=[2.0], rtol=1e-10, atol=1e-12)
    assert res.y.shape == (3, 1, 1) and res.status.tolist() == [0, 0, 0]
    np.testing.assert_allclose(res.y[:, 0, 0], np.exp(-2 * rate), rtol=1e-9)


def test_solve_ivp_batch_needs_a_2d_y0():
    for y0 in ([1.0, 2.0], np.ones((2, 1, 1))):
        with pytest.raises(ValueError, match=r"`y0` must be 2-dimensional \(K, n\).*"
                                             r"`chebpan.solve_ivp`"):
            chebpan.solve_ivp_batch(lambda t, y: -y, (0, 1), y0)


def test_solve_ivp_batch_has_no_scipy_methods():
    with pytest.raises(TypeError, match="PAN only.*chebpan.solve_ivp"):
        chebpan.solve_ivp_batch(lambda t, y: -y, (0, 1), np.ones((2, 1)), method="RK45")


def test_solve_ivp_batch_checks_like_solve_ivp():
    """The shared checks, with scipy's messages."""
    with pytest.raises(ValueError, match="Values in `t_eval` are not within `t_span`."):
        chebpan.solve_ivp_batch(lambda t, y: -y, (0, 1), np.ones((2, 1)), t_eval=[2.0])
    with pytest.warns(UserWarning, match="have no effect for a chosen solver: `bogus`"):
        chebpan.solve_ivp_batch(lambda t, y: -y, (0, 1), np.ones((2, 1)), vectorized=True,
                                bogus=1)


# -- clear errors for batch mistakes ---------------------------------------------------
def lorenz_rho(t, y, rho):
    return np.stack([10 * (y[1] - y[0]), y[0] * (rho - y[2]) - y[1],
                     y[0] * y[1] - 8 / 3 * y[2]])


def test_per_instance_parameters_in_args_get_a_hint_naming_batch_args():
    rho = np.linspace(10, 40, 5)
    with pytest.raises(ValueError) as info:
        chebpan.solve_ivp_batch(lorenz_rho, (0, 1), np.ones((5, 3)), vectorized=True,
                                args=(rho,))
    message = str(info.value)
    assert "could not be broadcast" in message  # numpy's own error, kept
    assert "`args[0]` has K = 5 rows" in message and "`batch_args=(rho,)`" in message
    assert isinstance(info.value.__cause__, ValueError)


def test_arrays_in_args_that_work_get_no_hint():
    """args may hold arrays (even of K rows): nothing is checked while fun works."""
    matrix = np.array([[0.0, 1.0], [-1.0, 0.0]])  # n = K = 2
    res = chebpan.solve_ivp_batch(lambda t, y, a: a @ y, (0, 1), np.eye(2), vectorized=True,
                                  args=(matrix,), t_eval=[1.0], rtol=1e-10, atol=1e-12)
    assert res.success
    np.testing.assert_allclose(res.y[0, :, 0], [np.cos(1), -np.sin(1)], rtol=1e-9)


def test_errors_of_fun_without_a_suspect_in_args_are_unchanged():
    def broken(t, y, c):
        raise ValueError("my own error")

    with pytest.raises(ValueError) as info:
        chebpan.solve_ivp_batch(broken, (0, 1), np.ones((5, 3)), vectorized=True,
                                args=(1.0,))
    assert str(info.value) == "my own error" and info.value.__cause__ is None


def test_batch_args_errors_name_the_entry_and_the_shape():
    rho = np.linspace(10, 40, 5)
    with pytest.raises(ValueError, match=re.escape(
            "`batch_args[1]` must have K = 5 rows, one per instance of the batch "
            "(shape (5,) or (5, p)), but has shape (3, 5).")):
        chebpan.solve_ivp_batch(lorenz_rho, (0, 1), np.ones((5, 3)), vectorized=True,
                                batch_args=(rho, np.ones((3, 5))))
    with pytest.raises(ValueError, match=re.escape(
            "`batch_args` must be a tuple of arrays with K = 5 rows each, e.g. "
            "`batch_args=(rho,)`, but is an array of shape (5,).")):
        chebpan.solve_ivp_batch(lorenz_rho, (0, 1), np.ones((5, 3)), vectorized=True,
                                batch_args=rho)


# -- a compact repr ----------------------------------------------------------------------
def test_repr_of_a_large_batch_is_short_and_informative():
    y0 = np.full((1000, 1), 1.0)
    y0[[3, 17, 600]] = 2.0  # y' = y², y0 = 2 blows up at t = 1/2
    res = chebpan.solve_ivp_batch(lambda t, y: y * y, (0, 0.9), y0, vectorized=True,
                                  t_eval=[0.9])
    text = repr(res)
    assert len(text) < 2000, len(text)
    assert "1000 messages, 2 distinct" in text
    assert "997 × 0 (reached the end)" in text
    assert "3 × -1 (failed: instances 3, 17, 600)" in text
    assert "Required step size is less than spacing between numbers." in text
    assert "nfev" in text and "per_instance" in text
    assert isinstance(res.message, list) and len(res.message) == 1000  # fields unchanged


def test_repr_of_many_distinct_messages_is_capped():
    from chebpan._output.batch_summary import summarise_messages, summarise_status

    text = summarise_messages([f"message {i}" for i in range(100)] + ["message 0"])
    assert text.splitlines()[0] == "101 messages, 100 distinct:"
    assert "2 × message 0" in text and "... 95 more distinct (95 instances)" in text
    assert summarise_status(np.array([], dtype=int)) == "array (0,): empty"
    assert summarise_status(np.array([-1] * 7)) == (
        "array (7,): 7 × -1 (failed: instances 0, 1, 2, 3, 4, ...)")


def test_repr_of_a_single_solve_is_scipys():
    res = chebpan.solve_ivp(lambda t, y: -y, (0, 1), [1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = repr(scipy.optimize.OptimizeResult(res))
    assert repr(res) == expected

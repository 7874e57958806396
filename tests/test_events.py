"""Events with method="PAN": detection at every node, roots on the segment polynomial."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import chebpan


def oscillator(t, y):
    """y'' = -y as a first-order system; works vectorized and not."""
    return np.stack([y[1], -y[0]])


def position(t, y):
    return y[0]


@pytest.mark.parametrize("vectorized", [False, True])
@pytest.mark.parametrize("k", [1, 3, 4])
def test_terminal_integer_harmonic_oscillator(k, vectorized):
    position.terminal = k
    try:
        res = chebpan.solve_ivp(oscillator, (0, 100), [1.0, 0.0], events=position,
                                vectorized=vectorized)
    finally:
        del position.terminal
    assert res.status == 1
    assert res.message == "A termination event occurred."
    assert len(res.t_events[0]) == k and res.y_events[0].shape == (k, 2)
    assert_allclose(res.y_events[0][:, 0], 0, atol=1e-14)
    exact = np.pi / 2 + np.pi * np.arange(k)  # y = cos t
    assert_allclose(res.t_events[0], exact, rtol=1e-3)
    assert res.t[-1] == res.t_events[0][-1]
    assert_allclose(res.y[:, -1], res.y_events[0][-1], rtol=0, atol=0)


def test_two_crossings_inside_one_segment_are_both_found():
    # y = cos t crosses 0.999 downward at θ = arccos(0.999) ≈ 0.0447, upward at
    # 2π − θ and downward again at 2π + θ. The solver takes segments longer than
    # 2θ ≈ 0.089 here, so the last two crossings lie between two segment ends:
    # scipy's end-point comparison would see no sign change there (gh-9228).
    def near_top(t, y):
        return y[0] - 0.999

    res = chebpan.solve_ivp(oscillator, (0, 6.5), [1.0, 0.0], events=near_top,
                            rtol=1e-10, atol=1e-12, vectorized=True)
    theta = np.arccos(0.999)
    assert_allclose(res.t_events[0], [theta, 2 * np.pi - theta, 2 * np.pi + theta],
                    rtol=1e-9)
    ends = res.t
    both_inside = [(a, b) for a, b in zip(ends[:-1], ends[1:])
                   if a < 2 * np.pi - theta and 2 * np.pi + theta < b]
    assert both_inside, ends  # the configuration the test is about actually occurs


def test_double_crossing_within_one_segment_scipy_misses():
    # g(t) = (t - 1.0)(t - 1.2) has two roots within a short window; one long
    # segment covers both. scipy's RK45 with a big first step misses them.
    def g(t, y):
        return (t - 1.0) * (t - 1.2)

    res = chebpan.solve_ivp(lambda t, y: 0 * y, (0, 3), [1.0], events=g,
                            first_step=3.0)
    assert res.t.tolist() == [0.0, 3.0]  # a single segment
    assert_allclose(res.t_events[0], [1.0, 1.2], rtol=1e-14)


@pytest.mark.parametrize("direction, expected", [
    (0, [3 * np.pi, 2 * np.pi, np.pi]),
    (1, [3 * np.pi, np.pi]),
    (-1, [2 * np.pi]),
])
def test_direction_backward(direction, expected):
    # y = (sin t, cos t); backward from 10 to 0.5: sin crosses zero at π, 2π, 3π.
    # Directions and the order of t_events follow integration order (decreasing t).
    def sine(t, y):
        return y[0]

    sine.direction = direction
    res = chebpan.solve_ivp(lambda t, y: np.stack([y[1], -y[0]]), (10, 0.5),
                            [np.sin(10), np.cos(10)], events=sine, rtol=1e-10, atol=1e-12)
    assert_allclose(res.t_events[0], expected, rtol=1e-9)


def test_event_linear_in_t_lands_exactly_and_t_eval_early_event():
    def at_seven(t, y):
        return t - 7

    at_seven.terminal = True
    res = chebpan.solve_ivp(lambda t, y: -y, (5, 9), [1.0], events=at_seven,
                            t_eval=[7.5, 8, 9])
    assert res.status == 1
    assert res.t_events[0][0] == 7
    assert res.t == [] and res.y == []  # scipy's shapes when no t_eval point is reached


def test_shapes_never_fired_and_args():
    def never(t, y, c):
        return y[0] + c

    res = chebpan.solve_ivp(lambda t, y, c: -y, (0, 1), [1.0], events=[never, never],
                            args=(10.0,))
    assert res.t_events[0].shape == (0,) and res.y_events[0].shape == (0,)
    assert len(res.t_events) == 2


def test_zero_at_t0_terminal():
    def start(t, y):
        return y[0]

    start.terminal = True
    res = chebpan.solve_ivp(lambda t, y: np.ones_like(y), (0, 1), [0.0], events=start,
                            dense_output=True)
    assert res.status == 1
    assert res.t.tolist() == [0.0, 0.0]
    assert res.t_events[0].tolist() == [0.0]
    assert res.sol(0.5).tolist() == [0.0]


@pytest.mark.parametrize("terminal", [-1, 3.5])
def test_bad_terminal_attribute(terminal):
    def ev(t, y):
        return y[0]

    ev.terminal = terminal
    with pytest.raises(ValueError, match="must be a boolean or positive integer"):
        chebpan.solve_ivp(lambda t, y: -y, (0, 1), [1.0], events=ev)


def test_dense_output_truncated_at_terminal_event():
    def half(t, y):
        return y[0] - 0.5

    half.terminal = True
    res = chebpan.solve_ivp(lambda t, y: -y, (0, 5), [1.0], events=half, dense_output=True,
                            rtol=1e-10, atol=1e-12)
    t_stop = res.t_events[0][0]
    assert_allclose(t_stop, np.log(2), rtol=1e-10)
    assert res.sol.t_max == t_stop
    t = np.linspace(0, t_stop, 7)
    assert_allclose(res.sol(t)[0], np.exp(-t), rtol=1e-9)
    assert_allclose(res.sol(res.t), res.y, rtol=1e-15, atol=1e-15)


def test_terminal_event_on_a_segment_end_does_not_repeat_the_time():
    # Free fall from height 0 with v0 = 0.01: max_step divides the flight time
    # (2 v0 / g) exactly, so the root falls on a segment end (scipy gh-17066).
    g = 9.80665

    def ground(t, y):
        return y[0]

    ground.terminal, ground.direction = True, -1
    res = chebpan.solve_ivp(lambda t, y: [y[1], -g], [0, np.inf], [0, 0.01],
                            max_step=0.05e-3 / g, events=ground, dense_output=True)
    assert res.status == 1
    assert np.all(np.diff(res.t) > 0) and np.all(np.diff(res.sol.ts) > 0)
    assert_allclose(res.t_events[0], [2 * 0.01 / g], rtol=1e-12)
    assert_allclose(res.y_events[0], [[0, -0.01]], atol=1e-12)


def test_jac_with_n_squared_entries_is_accepted():
    # scipy's LSODA accepts a scalar Jacobian when n = 1 (test_event_dense_output_LSODA)
    res = chebpan.solve_ivp(lambda t, y: y * (t - 2), [-2, 2], [0.05], jac=lambda t, y: t - 2,
                            rtol=1e-10, atol=1e-12, max_picard=1)
    assert res.status == 0 and res.njev > 0
    assert_allclose(res.y[0, -1], 0.05 * np.exp(((2 - 2) ** 2 - (-2 - 2) ** 2) / 2), rtol=1e-8)


def test_zero_at_an_interior_node_of_the_first_segment_counts_once():
    # t - 1 vanishes exactly at the middle node of the single segment [0, 2]
    res = chebpan.solve_ivp(lambda t, y: 0 * y, (0, 2), [1.0], vectorized=True,
                            first_step=2.0, events=lambda t, y: t - 1)
    assert res.t_events[0].tolist() == [1.0]

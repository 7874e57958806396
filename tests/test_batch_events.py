"""Events of batched solves: scipy's semantics instance by instance.

Roots against exact ones (decay ``y' = -rate y`` crossing 0.5 at ``ln 2 / rate``; the
oscillator ``y'' = -ω² y`` crossing 0 at ``π/(2ω) + jπ/ω``), terminal events that end
their instance only (its ``t``, ``y``, ``t_eval`` values and ``sol`` stop at the event),
directions, counts, per-instance spans, a zero at t0, vectorised against point-wise
event functions, and a batch of one against the single solve.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import chebpan

TOL = dict(rtol=1e-10, atol=1e-12)
RATES = np.array([0.25, 0.5, 1.0, 2.0, 4.0])
K = len(RATES)
OMEGAS = np.array([0.5, 1.0, 2.0, 3.0])


def decay(t, y, rate):
    return -rate * y


def oscillator(t, y, omega):
    return np.stack([y[1], -omega**2 * y[0]])


def event(fun, *, terminal=None, direction=None):
    """``fun`` wrapped (the original untouched) with scipy's event attributes."""
    def wrapped(t, y, *args):
        return fun(t, y, *args)

    if terminal is not None:
        wrapped.terminal = terminal
    if direction is not None:
        wrapped.direction = direction
    return wrapped


def half(t, y, rate):
    return y[0] - 0.5


def last_times(res):
    """Each instance's last time and state (rows of ``t``, ``y`` padded with NaN)."""
    last = np.sum(~np.isnan(res.t), axis=1) - 1
    return res.t[np.arange(len(last)), last], res.y[np.arange(len(last)), :, last]


def solve_decay(events, t_span=(0, 2), **kwargs):
    return chebpan.solve_ivp_batch(decay, t_span, np.ones((K, 1)), vectorized=True,
                                   batch_args=(RATES,), events=events, **TOL, **kwargs)


# -- roots and terminal events --------------------------------------------------------------
def test_non_terminal_event_per_instance():
    res = solve_decay(half)
    assert res.status.tolist() == [0] * K and res.success
    assert len(res.t_events) == K and len(res.y_events) == K
    roots = np.log(2) / RATES
    for k in range(K):
        assert len(res.t_events[k]) == 1 and len(res.y_events[k]) == 1
        if roots[k] <= 2:
            assert res.t_events[k][0].shape == (1,) and res.y_events[k][0].shape == (1, 1)
            assert_allclose(res.t_events[k][0], roots[k], rtol=0, atol=1e-8)
            assert_allclose(res.y_events[k][0], 0.5, rtol=0, atol=1e-9)
        else:  # (never fired: scipy's empty shapes)
            assert res.t_events[k][0].shape == (0,) and res.y_events[k][0].shape == (0,)
    # every instance still runs to tf
    assert_array_equal(last_times(res)[0], 2.0)


def test_terminal_event_ends_its_instance_only():
    res = solve_decay(event(half, terminal=True))
    roots = np.log(2) / RATES
    hit = roots <= 2
    assert res.status.tolist() == np.where(hit, 1, 0).tolist()
    assert res.success
    for k in range(K):
        expected = "A termination event occurred." if hit[k] else (
            "The solver successfully reached the end of the integration interval.")
        assert res.message[k] == expected
    t_last, y_last = last_times(res)
    assert_allclose(t_last[hit], roots[hit], rtol=0, atol=1e-8)
    assert_array_equal(t_last[~hit], 2.0)
    # the last time and state are the event's, exactly
    for k in np.flatnonzero(hit):
        assert t_last[k] == res.t_events[k][0][0]
        assert_array_equal(y_last[k], res.y_events[k][0][0])
    assert_allclose(y_last[~hit, 0], np.exp(-2 * RATES[~hit]), rtol=1e-9)


@pytest.mark.parametrize("direction, first", [(-1, 0.5), (1, 1.5), (0, 0.5)])
def test_direction_on_oscillators(direction, first):
    # y = cos(ωt) crosses 0 downward at (2j + 1/2) π/ω, upward at (2j + 3/2) π/ω
    res = chebpan.solve_ivp_batch(oscillator, (0, 10), np.tile([1.0, 0.0], (len(OMEGAS), 1)),
                                  vectorized=True, batch_args=(OMEGAS,), **TOL,
                                  events=event(lambda t, y, omega: y[0], direction=direction))
    step = 1 if direction == 0 else 2
    for k, omega in enumerate(OMEGAS):
        exact = (first + step * np.arange(20)) * np.pi / omega
        exact = exact[exact <= 10]
        assert_allclose(res.t_events[k][0], exact, rtol=0, atol=1e-8)
        assert_allclose(res.y_events[k][0][:, 0], 0, atol=1e-9)
        signs = np.sign(res.y_events[k][0][:, 1])  # y' = -ω sin(ωt): the direction
        if direction:
            assert np.all(signs == direction)


def test_terminal_count_of_two_on_oscillators():
    position = event(lambda t, y, omega: y[0], terminal=2)
    res = chebpan.solve_ivp_batch(oscillator, (0, 8), np.tile([1.0, 0.0], (len(OMEGAS), 1)),
                                  vectorized=True, batch_args=(OMEGAS,), events=position,
                                  dense_output=True, **TOL)
    assert res.status.tolist() == [0, 1, 1, 1]  # ω = 0.5: 3π/(2ω) = 9.4 > 8, one crossing
    assert_allclose(res.t_events[0][0], [np.pi], rtol=0, atol=1e-8)
    t_last, y_last = last_times(res)
    for k, omega in enumerate(OMEGAS[1:], start=1):
        assert_allclose(res.t_events[k][0], [np.pi / (2 * omega), 3 * np.pi / (2 * omega)],
                        rtol=0, atol=1e-8)
        assert t_last[k] == res.t_events[k][0][-1]
        assert_array_equal(y_last[k], res.y_events[k][0][-1])
        assert_allclose(y_last[k], [0.0, omega], atol=1e-8)  # y' = -ω sin(3π/2)


def test_per_instance_spans_forward_and_backward():
    # Forward: y falls to y0/2 at t0 + ln2/rate; backward: y grows to 2 y0 at t0 - ln2/rate.
    spans = np.array([[0.0, 3.0], [1.0, 4.0], [2.0, -1.0], [5.0, 4.8], [-1.0, 0.0]])
    y0 = np.array([[1.0], [2.0], [1.0], [3.0], [0.5]])
    target = np.array([0.5, 1.0, 2.0, 6.0, 0.25])
    backward = spans[:, 1] < spans[:, 0]

    def reaches(t, y, rate, target):
        return y[0] - target

    reaches.terminal = True
    res = chebpan.solve_ivp_batch(lambda t, y, rate, target: -rate * y, spans, y0,
                                  vectorized=True, batch_args=(RATES, target), events=reaches,
                                  **TOL)
    roots = spans[:, 0] + np.where(backward, -1, 1) * np.log(2) / RATES
    hit = np.abs(roots - spans[:, 0]) <= np.abs(spans[:, 1] - spans[:, 0])
    assert hit.tolist() == [True, True, True, False, True]
    assert res.status.tolist() == np.where(hit, 1, 0).tolist()
    t_last, y_last = last_times(res)
    for k in np.flatnonzero(hit):
        assert_allclose(res.t_events[k][0], [roots[k]], rtol=0, atol=1e-8)
        assert t_last[k] == res.t_events[k][0][0]
        assert_allclose(y_last[k], [target[k]], rtol=1e-10)
    assert t_last[3] == 4.8 and res.t_events[3][0].shape == (0,)


# -- the output stops at a terminal event ----------------------------------------------------
@pytest.mark.parametrize("dense_output", [False, True], ids=["lean", "dense"])
@pytest.mark.parametrize("rows", [False, True], ids=["shared", "per-instance"])
def test_t_eval_after_a_terminal_event_is_nan(dense_output, rows):
    t_eval = np.linspace(0, 2, 21)
    if rows:
        t_eval = np.tile(t_eval, (K, 1))
    res = solve_decay(event(half, terminal=True), t_eval=t_eval, dense_output=dense_output)
    assert res.y.shape == (K, 1, 21)
    times = np.broadcast_to(t_eval, (K, 21))
    stop = np.array([te[0][0] if te[0].size else np.inf for te in res.t_events])
    before = times <= stop[:, None]
    assert np.all(np.isnan(res.y[:, 0][~before]))
    exact = np.exp(-RATES[:, None] * times)
    assert_allclose(res.y[:, 0][before], exact[before], rtol=1e-9)


def test_dense_output_ends_at_the_event():
    res = solve_decay(event(half, terminal=True), dense_output=True)
    sol = res.sol
    roots = np.log(2) / RATES
    for k in np.flatnonzero(roots <= 2):
        last = int(sol.offsets[k + 1]) - 1  # the instance's last segment
        assert sol.t_b[last] == res.t_events[k][0][0]
        assert_array_equal(sol.y_end[last], res.y_events[k][0][0])
    # up to the event, the dense output is the solution; its values at res.t are res.y
    times = np.linspace(0, 1, 11)[None, :] * roots[:, None]
    times[roots > 2] = np.linspace(0, 2, 11)
    assert_allclose(sol(times)[:, 0], np.exp(-RATES[:, None] * times), rtol=1e-9)
    valid = ~np.isnan(res.t)
    ends = sol(np.where(valid, res.t, 0.0))[:, 0]
    assert_allclose(ends[valid], res.y[:, 0][valid], rtol=1e-15, atol=1e-15)


def test_terminal_event_on_a_segment_end_does_not_repeat_the_time():
    # Free fall from height 0: max_step divides the flight time 2 v0 / g (scipy
    # gh-17066, as in tests/test_events.py), so roots fall on segment ends.
    g = 9.80665

    def fall(t, y, v0):
        return np.stack([y[1], np.full_like(y[1], -g)])

    ground = event(lambda t, y, v0: y[0], terminal=True, direction=-1)
    v0 = np.array([0.01, 0.02])
    res = chebpan.solve_ivp_batch(fall, (0, 1), np.stack([[0.0, 0.0], v0], axis=1),
                                  vectorized=True, batch_args=(v0,), events=ground,
                                  max_step=0.05e-3 / g, dense_output=True)
    assert res.status.tolist() == [1, 1]
    for k in range(2):
        t_k = res.t[k][~np.isnan(res.t[k])]
        assert np.all(np.diff(t_k) > 0)
        assert_allclose(res.t_events[k][0], [2 * v0[k] / g], rtol=1e-12)
        assert_allclose(res.y_events[k][0], [[0, -v0[k]]], atol=1e-12)
        segments = slice(int(res.sol.offsets[k]), int(res.sol.offsets[k + 1]))
        assert np.all(res.sol.t_b[segments] > res.sol.t_a[segments])
        assert res.sol.t_b[segments][-1] == t_k[-1] == res.t_events[k][0][0]


def test_a_zero_at_t0_counts():
    def start(t, y):
        return y[0]

    y0 = np.array([[0.0], [-1.0], [-3.0]])  # zero at t0; at t = 1; none in (0, 2]
    res = chebpan.solve_ivp_batch(lambda t, y: 1.0 + 0 * y, (0, 2), y0, vectorized=True,
                                  events=start)
    assert [te[0].tolist() for te in res.t_events] == [[0.0], [1.0], []]
    start.terminal = True
    res = chebpan.solve_ivp_batch(lambda t, y: 1.0 + 0 * y, (0, 2), y0, vectorized=True,
                                  events=start, dense_output=True)
    assert res.status.tolist() == [1, 1, 0]
    assert res.t[0, :2].tolist() == [0.0, 0.0] and np.all(np.isnan(res.t[0, 2:]))
    assert res.sol(0.5)[0].tolist() == [0.0]  # a constant segment [t0, t0]
    assert res.t_events[1][0].tolist() == [1.0]
    assert_allclose(last_times(res)[0], [0.0, 1.0, 2.0])


# -- calls, arguments, and agreement with single solves -------------------------------------
def test_vectorized_and_pointwise_events_agree():
    calls = []

    def crossing(t, y, omega, shift, scale):
        calls.append(np.ndim(t))
        return scale * y[0] - shift[0] * y[1] / omega

    shifts = np.stack([np.zeros(len(OMEGAS)), np.linspace(0, 0.3, len(OMEGAS))], axis=1)
    results = []
    for vectorized in (True, False):
        calls.clear()
        results.append(chebpan.solve_ivp_batch(
            lambda t, y, omega, shift, scale: oscillator(t, y, omega), (0, 14),
            np.tile([1.0, 0.0], (len(OMEGAS), 1)), vectorized=vectorized,
            batch_args=(OMEGAS, shifts[:, ::-1]), args=(2.0,), events=crossing, **TOL))
        # vectorised: (P,) at t0 and on the nodes of each round, a float t in root
        # finding; point-wise: a float t always
        kinds = set(calls)
        assert kinds == ({0, 1} if vectorized else {0})
    fast, slow = results
    for k in range(len(OMEGAS)):
        assert len(fast.t_events[k][0]) >= 2
        assert_array_equal(fast.t_events[k][0], slow.t_events[k][0])
        assert_array_equal(fast.y_events[k][0], slow.y_events[k][0])
        # exact: 2 cos(ωt) + s sin(ωt) = 0 with s = shift: tan(ωt) = -2/s
        shift = shifts[k, 1]
        first = (np.arctan2(2.0, -shift) if shift else np.pi / 2) / OMEGAS[k]
        assert_allclose(fast.t_events[k][0][0], first, rtol=0, atol=1e-8)


def test_vectorized_event_is_called_once_per_round():
    rounds = []

    def counted(t, y, rate):
        rounds.append(np.shape(t))
        return y[0] - 0.5

    # (one rate: the instances' segments are accepted in the same rounds)
    res = chebpan.solve_ivp_batch(decay, (0, 2), np.ones((K, 1)), vectorized=True,
                                  batch_args=(np.ones(K),), events=counted, **TOL)
    vectorised = [shape for shape in rounds if shape != ()]
    assert vectorised[0] == (K,)  # at t0, every instance at once
    assert len(vectorised) <= res.depth  # then at most once per round
    # the nodes right of the start of the K segments accepted in a round, at once
    assert set(vectorised[1:]) == {(K * 10,)}  # (n_nodes = 11)


def test_batch_of_one_equals_the_single_solve():
    # Segments forced to the same ends (first_step = max_step) and the batch's iteration
    # options, so both solves build the same polynomials up to their convergence.
    rate = 1.3

    def falls(t, y, rate):
        return y[0] - 0.5

    def rises(t, y, rate):
        return y[1] - 0.25

    falls.terminal, rises.direction = True, 1

    def fun(t, y, rate):
        return np.stack([-rate * y[0], np.cos(t) + 0 * y[1]])

    opts = dict(first_step=0.1, max_step=0.1, **TOL)
    batch = chebpan.solve_ivp_batch(fun, (0, 3), np.array([[1.0, 0.0]]), vectorized=True,
                                    batch_args=([rate],), events=[falls, rises],
                                    dense_output=True, **opts)
    single = chebpan.solve_ivp(fun, (0, 3), [1.0, 0.0], vectorized=True, args=(rate,),
                               events=[falls, rises], dense_output=True, n_coeffs=12,
                               max_picard=30, rho_newton=0.9, **opts)
    assert batch.status[0] == single.status == 1
    assert batch.message[0] == single.message
    for i in range(2):
        assert batch.t_events[0][i].shape == single.t_events[i].shape
        assert batch.y_events[0][i].shape == single.y_events[i].shape
        assert_allclose(batch.t_events[0][i], single.t_events[i], rtol=0, atol=1e-12)
        assert_allclose(batch.y_events[0][i], single.y_events[i], rtol=0, atol=1e-12)
    assert batch.t.shape == (1, single.t.shape[0])
    assert_allclose(batch.t[0], single.t, rtol=0, atol=1e-12)
    assert_allclose(batch.y[0], single.y, rtol=0, atol=1e-12)
    times = np.linspace(0, single.t[-1], 13)
    assert_allclose(batch.sol(times)[0], single.sol(times), rtol=0, atol=1e-12)
    assert_allclose(single.t_events[0], np.log(2) / rate, rtol=0, atol=1e-8)
    assert_allclose(single.t_events[1], np.arcsin(0.25), rtol=0, atol=1e-8)


def test_events_with_args_and_point_wise_batch_args_rows():
    seen = []

    def level(t, y, scale, offset):
        seen.append(np.shape(scale))
        return scale[0] * y[0] - offset

    scales = np.stack([np.ones(K), RATES], axis=1)  # (K, 2): a row per instance
    res = chebpan.solve_ivp_batch(lambda t, y, scale, offset: -y, (0, 1), np.ones((K, 1)),
                                  vectorized=False, batch_args=(scales,), args=(0.5,),
                                  events=level, **TOL)
    assert set(seen) == {(2,)}  # the instance's row, in every point-wise call
    for k in range(K):
        assert_allclose(res.t_events[k][0], [np.log(2)], rtol=0, atol=1e-8)


def test_no_events_gives_none_and_bad_terminal_raises():
    res = solve_decay(None)
    assert res.t_events is None and res.y_events is None
    with pytest.raises(ValueError, match="must be a boolean or positive integer"):
        solve_decay(event(lambda t, y, rate: y[0], terminal=-1))


def test_failed_instances_keep_their_events():
    # Instance 1's fun becomes non-finite at t = 1: it fails there (status -1),
    # with the event it found before; the others run on.
    def fun(t, y, rate):
        bad = (rate == 1.0) & (t > 1.0)
        return np.where(bad, np.nan, -rate * y)

    res = chebpan.solve_ivp_batch(fun, (0, 2), np.ones((3, 1)), vectorized=True,
                                  batch_args=(np.array([0.5, 1.0, 2.0]),), events=half, **TOL)
    assert res.status.tolist() == [0, -1, 0]
    assert_allclose([te[0][0] for te in res.t_events], np.log(2) / np.array([0.5, 1.0, 2.0]),
                    rtol=0, atol=1e-8)


def test_repr_summarises_the_events_of_a_large_batch():
    k = 400
    res = chebpan.solve_ivp_batch(decay, (0, 2), np.ones((k, 1)), vectorized=True,
                                  batch_args=(np.linspace(0.1, 2, k),), events=[half, half])
    shown = repr(res)
    found = sum(len(entry[0]) for entry in res.t_events)
    assert 0 < found < k
    line = (f"list of {k} (one per instance) of 2 arrays: {found} + {found} found, in "
            f"{found} instances")
    assert f"t_events: {line}" in shown and f"y_events: {line}" in shown
    assert len(shown) < 3000

"""Events: sign changes at every node of every segment, roots on the segment polynomial.

scipy compares event values only at step ends and misses an even number of
crossings inside one step (gh-9228).  Here an event function is evaluated at
all M nodes of each accepted segment (with ``vectorized=True`` in one call),
every sign change between consecutive nodes is a bracket, and each root is
found by ``brentq`` (``xtol = rtol = 4 eps``, as scipy) on the segment's
Chebyshev polynomial.

The pieces shared with a batch's events (:mod:`chebpan._output.batch_events`):
:func:`prepare_events`, :func:`event_values`, :func:`crossing_mask`,
:func:`locate_root`, :func:`record_roots` and :func:`scipy_results`.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

__all__ = ["EventTracker", "prepare_events", "event_values", "crossing_mask", "locate_root",
           "record_roots", "scipy_results"]

EPS = np.finfo(float).eps


def prepare_events(events, args):
    """Standardise events as scipy does: (callables, max_events, directions).

    ``args`` are bound after any per-point arguments (a batch's ``batch_args``):
    the callables are ``event(t, y, *point_args)``.

    Raises scipy's ValueError for a ``terminal`` attribute that is neither a
    boolean nor a positive integer.
    """
    if callable(events):
        events = (events,)
    max_events = np.empty(len(events))
    direction = np.empty(len(events))
    for i, event in enumerate(events):
        terminal = getattr(event, "terminal", None)
        direction[i] = getattr(event, "direction", 0)
        if terminal is None or terminal == 0:
            max_events[i] = np.inf
        elif int(terminal) == terminal and terminal > 0:
            max_events[i] = terminal
        else:
            raise ValueError("The `terminal` attribute of each event "
                             "must be a boolean or positive integer.")
    if args is not None:
        args = tuple(args)
        events = [lambda t, y, *point_args, event=event: event(t, y, *point_args, *args)
                  for event in events]
    return list(events), max_events, direction


def event_values(event, t, y, *, vectorized, args=(), args_at=None):
    """Event values at the points ``t`` (P,), ``y`` (n, P): a float array (P,).

    With ``vectorized``, one call ``event(t, y, *args)`` (``args``: per-point
    arguments laid out like ``y``); a result that is not of shape (P,) falls
    back to point-wise calls ``event(t[p], y[:, p], *args_at(p))``.
    """
    if vectorized:
        value = np.asarray(event(t, y, *args))
        if value.shape == t.shape:
            return value.astype(float)
    if args_at is None:
        return np.array([float(event(float(t[p]), y[:, p])) for p in range(t.shape[0])])
    return np.array([float(event(float(t[p]), y[:, p], *args_at(p)))
                     for p in range(t.shape[0])])


def crossing_mask(g_left, g_right, direction, at_start):
    """Which intervals hold a crossing of the requested direction.

    ``g_left``, ``g_right`` (..., I): event values at the left and right ends
    of consecutive intervals (a row per segment).  A zero at the right end of
    an interval belongs to that interval; a zero at its left end was counted
    with the interval before, except for the very first interval of a solve,
    where scipy's rule counts a zero at t0 as an event: ``at_start`` (bool, or
    bools (...,) per row) says whether a row's first interval starts at t0.
    """
    zero_left = np.zeros(g_left.shape, dtype=bool)
    zero_left[..., 0] = (g_left[..., 0] == 0) & at_start
    up = ((g_left < 0) | zero_left) & (g_right >= 0)
    down = ((g_left > 0) | zero_left) & (g_right <= 0)
    if direction > 0:
        return up
    if direction < 0:
        return down
    if direction == 0:
        return up | down
    return np.zeros_like(up)  # None or NaN: scipy silently detects nothing


def _crossings(g_left, g_right, direction, at_start):
    """Indices of the intervals (1-D values) with a crossing: :func:`crossing_mask`."""
    return np.nonzero(crossing_mask(g_left, g_right, direction, at_start))[0]


def locate_root(event_at, t_left, t_right, g_left, g_right, inclusive):
    """The root of ``event_at(t)`` in a bracket ``[t_left, t_right]`` (``brentq``).

    ``inclusive``: a zero at ``t_left`` counts (the first interval of a solve).
    """
    if g_left == 0 and inclusive:
        return float(t_left)
    if g_right == 0:
        return float(t_right)
    return brentq(event_at, float(t_left), float(t_right), xtol=4 * EPS, rtol=4 * EPS)


def record_roots(found, count, max_events, t_events, y_events, evaluate, forward):
    """Record the roots ``found`` (a list of ``(t, event index)``) in time order.

    ``count`` (n_events,) is updated in place and the lists ``t_events[i]``,
    ``y_events[i]`` are appended to (``y = evaluate(t)``); stops at the first
    root that completes a terminal event's count.

    Returns
    -------
    float or None
        The time of a terminal event, else None.
    """
    found.sort(key=lambda item: item[0] if forward else -item[0])
    for root, i in found:
        count[i] += 1
        t_events[i].append(root)
        y_events[i].append(evaluate(root))
        if count[i] >= max_events[i]:
            return root
    return None


def scipy_results(t_events, y_events):
    """``t_events``, ``y_events`` (lists over events of lists) with scipy's shapes."""
    return ([np.asarray(te, dtype=float) for te in t_events],
            [np.asarray(ye) for ye in y_events])


class EventTracker:
    """Detects and locates events segment by segment.

    Parameters
    ----------
    events : list of callables
        ``event(t, y)`` (``args`` already bound), returning a float.
    max_events, direction : arrays, shape (n_events,)
        From :func:`prepare_events`.
    t0 : float
    y0_raw : object
        The user's ``y0`` as passed (scipy calls events at t0 with it).
    vectorized : bool
        Try one call ``event(t, y)`` with ``t`` (P,), ``y`` (n, P) per segment;
        a result that is not of shape (P,) falls back to point-wise calls.
    """

    def __init__(self, events, max_events, direction, t0, y0_raw, *, vectorized):
        self.events = events
        self.max_events = max_events
        self.direction = direction
        self.vectorized = vectorized
        self.count = np.zeros(len(events))
        self.t_events = [[] for _ in events]
        self.y_events = [[] for _ in events]
        self.g = np.array([float(event(t0, y0_raw)) for event in events])
        self.at_start = True

    def process(self, t_nodes, y_nodes, evaluate):
        """Look for events on one accepted segment.

        Parameters
        ----------
        t_nodes : ndarray, shape (M,)
            Node times in integration order; ``t_nodes[0]`` is the segment
            start, whose event values are already known.
        y_nodes : ndarray, shape (n, M)
        evaluate : callable
            ``evaluate(t) -> y (n,)``: the segment polynomial.

        Returns
        -------
        float or None
            The time of a terminal event (the solve stops there), else None.
        """
        found = []  # (t_root, event index)
        g_end = np.empty(len(self.events))
        for i, event in enumerate(self.events):
            values = np.concatenate([[self.g[i]], event_values(
                event, t_nodes[1:], y_nodes[:, 1:], vectorized=self.vectorized)])
            g_end[i] = values[-1]
            for m in _crossings(values[:-1], values[1:], self.direction[i], self.at_start):
                inclusive = self.at_start and m == 0
                root = locate_root(lambda t, event=event: event(t, evaluate(t)),
                                   t_nodes[m], t_nodes[m + 1], values[m], values[m + 1],
                                   inclusive)
                found.append((root, i))
        self.at_start = False
        self.g = g_end
        return record_roots(found, self.count, self.max_events, self.t_events, self.y_events,
                            evaluate, forward=t_nodes[-1] >= t_nodes[0])

    def results(self):
        """``t_events``, ``y_events`` with scipy's shapes."""
        return scipy_results(self.t_events, self.y_events)

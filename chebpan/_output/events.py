"""Events: sign changes at every node of every segment, roots on the segment polynomial.

scipy compares event values only at step ends and misses an even number of
crossings inside one step (gh-9228).  Here an event function is evaluated at
all M nodes of each accepted segment (with ``vectorized=True`` in one call),
every sign change between consecutive nodes is a bracket, and each root is
found by ``brentq`` (``xtol = rtol = 4 eps``, as scipy) on the segment's
Chebyshev polynomial.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

__all__ = ["EventTracker", "prepare_events"]

EPS = np.finfo(float).eps


def prepare_events(events, args):
    """Standardise events as scipy does: (callables, max_events, directions).

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
        events = [lambda t, y, event=event: event(t, y, *args) for event in events]
    return list(events), max_events, direction


def _crossings(g_left, g_right, direction, at_start):
    """Indices of intervals with a crossing of the requested direction.

    A zero at the right end of an interval belongs to that interval; a zero
    at its left end was counted with the interval before, except for the
    very first interval of the solve, where scipy's rule counts a zero at t0
    as an event.
    """
    zero_left = g_left == 0
    if at_start:
        zero_left[1:] = False
    else:
        zero_left[:] = False
    up = ((g_left < 0) | zero_left) & (g_right >= 0)
    down = ((g_left > 0) | zero_left) & (g_right <= 0)
    if direction > 0:
        mask = up
    elif direction < 0:
        mask = down
    elif direction == 0:
        mask = up | down
    else:  # None or NaN: scipy silently detects nothing
        mask = np.zeros_like(up)
    return np.nonzero(mask)[0]


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

    def _values(self, event, t, y):
        """Event values at the points ``t`` (P,), ``y`` (n, P)."""
        if self.vectorized:
            value = np.asarray(event(t, y))
            if value.shape == t.shape:
                return value.astype(float)
        return np.array([float(event(float(t[p]), y[:, p])) for p in range(t.shape[0])])

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
            values = np.concatenate([[self.g[i]], self._values(event, t_nodes[1:], y_nodes[:, 1:])])
            g_end[i] = values[-1]
            for m in _crossings(values[:-1], values[1:], self.direction[i], self.at_start):
                inclusive = self.at_start and m == 0
                root = self._root(event, evaluate, t_nodes[m], t_nodes[m + 1],
                                  values[m], values[m + 1], inclusive)
                found.append((root, i))
        self.at_start = False
        self.g = g_end
        forward = t_nodes[-1] >= t_nodes[0]
        found.sort(key=lambda item: item[0] if forward else -item[0])
        for root, i in found:
            self.count[i] += 1
            self.t_events[i].append(root)
            self.y_events[i].append(evaluate(root))
            if self.count[i] >= self.max_events[i]:
                return root
        return None

    @staticmethod
    def _root(event, evaluate, t_left, t_right, g_left, g_right, inclusive):
        if g_left == 0 and inclusive:
            return float(t_left)
        if g_right == 0:
            return float(t_right)
        return brentq(lambda t: event(t, evaluate(t)), float(t_left), float(t_right),
                      xtol=4 * EPS, rtol=4 * EPS)

    def results(self):
        """``t_events``, ``y_events`` with scipy's shapes."""
        return ([np.asarray(te, dtype=float) for te in self.t_events],
                [np.asarray(ye) for ye in self.y_events])

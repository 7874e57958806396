"""What a solve tells the user: the result object of :func:`chebpan.solve_ivp`, its
status messages, the failure texts, and warnings attributed to the user's call."""

from __future__ import annotations

import enum
import os
import sys
from warnings import warn

from scipy.optimize import OptimizeResult

from .batch_summary import summarise_events, summarise_messages, summarise_status

__all__ = ["OdeResult", "MESSAGES", "TOO_SMALL_STEP", "Failure", "failure_message", "warn_user"]

MESSAGES = {
    0: "The solver successfully reached the end of the integration interval.",
    1: "A termination event occurred.",
}
TOO_SMALL_STEP = "Required step size is less than spacing between numbers."


class Failure(enum.IntEnum):
    """Why an attempt on a segment failed (batches store the codes in arrays)."""

    NONFINITE = 0
    NO_CONVERGENCE = 1
    STALLED = 2
    LINE_SEARCH = 3
    ERROR = 4
    NONFINITE_JAC = 5
    DIVERGED = 6
    #: (not an attempt's failure: accepted segments shrank toward a singularity)
    SINGULARITY = 7

    @property
    def detail(self):
        """What happened, as the failure message says it."""
        return _FAILURE_DETAILS[self]

    @property
    def nonfinite(self):
        """Whether non-finite values ended the attempt (nothing to restart from)."""
        return self in (Failure.NONFINITE, Failure.NONFINITE_JAC, Failure.DIVERGED)


_FAILURE_DETAILS = {
    Failure.NONFINITE: "`fun` returned non-finite values",
    Failure.NONFINITE_JAC: "the Jacobian (`jac`, or forward differences of `fun`) had "
                           "non-finite values",
    Failure.DIVERGED: "the iteration diverged to non-finite values",
    Failure.ERROR: "the error estimate stayed above the tolerance",
    Failure.NO_CONVERGENCE: "the iteration did not converge",
    Failure.STALLED: "the iteration stalled",
    Failure.LINE_SEARCH: "the Newton line search found no decrease",
    Failure.SINGULARITY: "the segments shrank toward a singularity of the solution (a "
                         "blow-up?) that their coefficients place close ahead of the "
                         "last accepted one",
}


#: The folder of the chebpan package (this file is chebpan/_output/result.py).
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def warn_user(message, category=UserWarning):
    """``warnings.warn`` attributed to the first caller outside chebpan.

    (Python 3.12's ``skip_file_prefixes`` does this; 3.10 needs the walk.)
    """
    # (stacklevel 1 is this function, 2 its caller: the walk starts there)
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR + os.sep):
        frame, level = frame.f_back, level + 1
    warn(message, category, stacklevel=level)


def failure_message(what, t, t_a, t_b):
    """The message of a solve that could not complete the segment starting at ``t``.

    ``what`` (a :class:`Failure` or its code) is why the last attempt, on
    ``[t_a, t_b]``, failed.
    """
    return (f"{TOO_SMALL_STEP} The segment starting at t = {t!r} could not be "
            f"completed: {Failure(what).detail} on [{t_a!r}, {t_b!r}].")


class OdeResult(OptimizeResult):
    """Result of :func:`chebpan.solve_ivp`: scipy's fields plus PAN's counters.

    A ``dict`` with attribute access, like scipy's ``OdeResult``.

    Attributes
    ----------
    t : ndarray, shape (n_points,)
        Time points: the segment ends, or the reached ``t_eval`` values
        (``[]`` when no ``t_eval`` value was reached, as in scipy).
    y : ndarray, shape (n, n_points)
        Values of the solution at ``t``.
    sol : chebpan.OdeSolution or None
        Continuous solution when ``dense_output=True``.
    t_events, y_events : list of ndarray or None
        For each event, the times at which it occurred (shape (k,)) and the
        solution there (shape (k, n)), as in scipy; None without ``events``.
        For a batch, a list of K such lists, one per instance.
    nfev : int
        Calls of ``fun`` (including those for finite-difference Jacobians).
    njev : int
        Jacobian evaluations.
    nlu : int
        Factorisations: one per Newton step (modified LDLᵀ, or LU on stiff
        segments).
    status : int
        -1: the solve failed (see ``message``); 0: reached the end of
        ``t_span``; 1: a termination event occurred.
    message : str
        Human-readable reason for the end of the solve.
    success : bool
        ``status >= 0``.
    depth : int
        Rounds of ``fun`` evaluations that had to happen one after another.
    npoints : int
        Right-hand-side evaluations at single points.
    nsegments, nrejected : int
        Accepted and rejected segments.
    niter_picard, niter_newton : int
        Picard and Newton iterations.
    per_instance : dict of ndarray, batches only
        For ``y0`` of shape (K, n): ``nsegments``, ``nrejected`` and
        ``depth`` of each instance, arrays of shape (K,).  (``status`` is
        then an array (K,) and ``message`` a list of K strings, which
        ``repr`` summarises; see :func:`chebpan.solve_ivp_batch`.)

    Examples
    --------
    >>> import chebpan
    >>> res = chebpan.solve_ivp(lambda t, y: -y, (0, 1), [1.0])
    >>> res.success, res.status, res.y.shape[0]
    (True, 0, 1)
    """

    def __repr__(self):
        """scipy's layout; a batch's statuses and messages as counts (compact for any K)."""
        message = self.get("message")
        if not isinstance(message, list):
            return super().__repr__()
        shown = OptimizeResult(self)
        shown["message"] = summarise_messages(message)
        shown["status"] = summarise_status(self["status"])
        for name in ("t_events", "y_events"):
            if self.get(name) is not None:
                shown[name] = summarise_events(self[name])
        return repr(shown)

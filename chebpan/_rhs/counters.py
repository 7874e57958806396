"""Work counters reported on the result (docs/algorithm.md, "Counting")."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Counters:
    """What a solve cost.

    Attributes
    ----------
    nfev : int
        Calls of ``fun`` (every call, including those made for
        finite-difference Jacobians).
    npoints : int
        Right-hand-side evaluations at single (t, y) points: the work.
    depth : int
        Rounds of evaluation that had to happen one after another (the paper's
        NFE for PAN).  ``fun`` and ``jac`` evaluated at the same points, and
        the perturbed points of a finite-difference Jacobian, are one round.
    njev : int
        Jacobian evaluations (user ``jac`` calls or finite-difference Jacobians).
    nlu : int
        LDLᵀ factorisations.
    nsegments, nrejected : int
        Accepted and rejected segments.
    niter_picard, niter_newton : int
        Picard and Newton iterations, over all segment attempts.
    """

    nfev: int = 0
    npoints: int = 0
    depth: int = 0
    njev: int = 0
    nlu: int = 0
    nsegments: int = 0
    nrejected: int = 0
    niter_picard: int = 0
    niter_newton: int = 0

    def as_dict(self) -> dict:
        return asdict(self)

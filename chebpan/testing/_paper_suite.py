"""The paper's spiral and Lorenz problems as suite problems.

Their references are the mpmath Taylor solutions of :mod:`._paper` (two runs at
different working precisions, orders and step sequences that must agree).
"""

from __future__ import annotations

import functools

from ._paper import lorenz, spiral
from ._suite import SuiteProblem


def _reference(problem, dps):
    return list(problem.reference(dps=dps))


def _problem(factory) -> SuiteProblem:
    p = factory()
    return SuiteProblem(name=p.name, fun=p.fun, jac=p.jac, t_span=p.t_span, y0=p.y0,
                        stiff=False, floor=1.0, family="paper", description=p.description,
                        reference_source=functools.partial(_reference, p))


FACTORIES = {"spiral": functools.partial(_problem, spiral),
             "lorenz": functools.partial(_problem, lorenz)}

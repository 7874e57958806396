"""Error against tolerance: tightening the tolerance never makes the answer much worse.

On every non-stiff suite problem with an exact solution (DETEST A–E), each rtol of
1e-3 … 1e-10 (atol = rtol · the problem's floor) gives a scaled error at ``tf``
(against the closed-form solution) that is at most 10 × the error at the looser
tolerance before it, and within twice the tolerance asked for.  Errors far below
what was asked for (under 1e-2 · the looser run's rtol, or near rounding) are luck,
not a trend, and count as that level: local errors accepted anywhere in (0, 1] × tol
are amplified ~10³ differently in a Kepler orbit's passages (D5: 5e-12 at rtol 1e-9,
then 6e-11 at 1e-10, both within their tolerance).
"""

import numpy as np
import pytest

import chebpan
from chebpan.testing import SUITE

TOLERANCES = [10.0**-k for k in range(3, 11)]
NOISE = 1e-13
#: Below this fraction of the looser run's rtol an error is luck (see above).
LUCK = 1e-2


def exact_nonstiff():
    names = []
    for name, factory in SUITE.items():
        problem = factory()
        if problem.exact is not None and not problem.stiff:
            names.append(name)
    return names


@pytest.mark.parametrize("name", exact_nonstiff())
def test_error_does_not_grow_as_the_tolerance_tightens(name):
    problem = SUITE[name]()
    errors = []
    for rtol in TOLERANCES:
        res = chebpan.solve_ivp(problem.fun, problem.t_span, np.array(problem.y0), rtol=rtol,
                                atol=rtol * problem.floor, vectorized=True)
        assert res.success, (name, rtol, res.message)
        errors.append(problem.scaled_error(res.y[:, -1]))
        assert errors[-1] <= 2 * rtol, (
            f"{name}: error {errors[-1]:.1e} at rtol {rtol:g}, beyond the tolerance")
    for looser, tighter, rtol in zip(errors, errors[1:], TOLERANCES[1:]):
        level = max(looser, LUCK * 10 * rtol, NOISE)
        assert tighter <= 10 * level, (
            f"{name}: error {tighter:.1e} at rtol {rtol:g} after {looser:.1e} at "
            f"{10 * rtol:g} (all: {', '.join(f'{e:.0e}' for e in errors)})")


def test_the_exact_problems_cover_every_detest_class():
    assert {name[0] for name in exact_nonstiff()} >= set("ABCDE")

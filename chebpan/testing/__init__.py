"""Benchmark problems with high-precision reference solutions.

Not needed to solve anything: these are the problems chebpan's tests and benchmarks
measure against, public so that users can reproduce the figures.

* the paper's problems: :func:`spiral`, :func:`lorenz` (:class:`Problem`, mpmath
  references computed on demand);
* the benchmark suite, :data:`SUITE`: the non-stiff DETEST problems A1-E5 and the
  Pleiades (PLEI, n = 28), the stiff HIRES, VDPOL (mu = 1000), ROBER, E5-stiff, CHEMAKZO,
  MEDAKZO and the Brusselator (BRUSS, n = 200), and the paper's two problems, as :class:`SuiteProblem` with stored
  references, each checked two independent ways (``python -m
  chebpan.testing.make_references`` recomputes them).

>>> from chebpan.testing import lorenz, SUITE
>>> lorenz().t_span
(0.0, 15.0)
>>> SUITE["HIRES"]().stiff
True
"""

from ._paper import (
    PROBLEMS,
    REFERENCE_DPS,
    Problem,
    cache_dir,
    clear_reference_cache,
    lorenz,
    spiral,
)
from ._suite import SUITE, TARGETS, SuiteProblem, scaled_error

__all__ = ["Problem", "spiral", "lorenz", "PROBLEMS", "REFERENCE_DPS", "cache_dir",
           "clear_reference_cache", "SUITE", "SuiteProblem", "TARGETS", "scaled_error"]

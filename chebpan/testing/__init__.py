"""Benchmark problems with high-precision reference solutions.

Not needed to solve anything: these are the problems chebpan's tests and benchmarks
measure against, public so that users can reproduce the figures.

>>> from chebpan.testing import lorenz
>>> lorenz().t_span
(0.0, 15.0)
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

__all__ = ["Problem", "spiral", "lorenz", "PROBLEMS", "REFERENCE_DPS", "cache_dir",
           "clear_reference_cache"]

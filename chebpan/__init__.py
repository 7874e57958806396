"""chebpan: parallel-in-time Chebyshev-segment ODE solver.

``chebpan.solve_ivp`` is a drop-in for :func:`scipy.integrate.solve_ivp`;
``chebpan.solve_ivp_batch`` solves K IVPs that share ``fun`` at once.  This module is
the public surface (with :mod:`chebpan.testing`, the benchmark problems); everything
under the underscored subpackages is private (docs/architecture.md).
"""

from ._frontend.chunk_size import batch_chunk_size
from ._frontend.citation import cite
from ._frontend.solve_ivp import solve_ivp
from ._frontend.solve_ivp_batch import solve_ivp_batch
from ._output.batch_result import BatchOdeSolution
from ._output.dask_result import DaskBatchResult
from ._output.dense import OdeSolution
from ._output.result import OdeResult

__version__ = "0.1.0.dev0"

__all__ = ["solve_ivp", "solve_ivp_batch", "OdeResult", "OdeSolution", "BatchOdeSolution",
           "DaskBatchResult", "batch_chunk_size", "cite", "__version__"]

"""chebpan: parallel-in-time Chebyshev-segment ODE solver.

``chebpan.solve_ivp`` is a drop-in for :func:`scipy.integrate.solve_ivp`.
"""

from .batch_result import BatchOdeSolution
from .citation import cite
from .dense import OdeSolution
from .ivp import solve_ivp
from .result import OdeResult

__version__ = "0.1.0.dev0"

__all__ = ["solve_ivp", "OdeResult", "OdeSolution", "BatchOdeSolution", "cite", "__version__"]

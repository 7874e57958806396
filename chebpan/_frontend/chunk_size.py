"""``batch_chunk_size``: how many instances a batch solves in one go, from the memory model."""

from __future__ import annotations

import array_api_compat.numpy as np_xp
import numpy as np

from .._control.batch_table import instances_per_chunk
from .._control.options import OPTIONS
from .._core.basis import get_basis

__all__ = ["batch_chunk_size"]


def batch_chunk_size(n, *, n_coeffs=None, n_nodes=None, batch_memory=None, dtype="float64"):
    """The number of instances :func:`chebpan.solve_ivp_batch` solves at once.

    A batch runs its instances in chunks whose working set (iterates, node values,
    ``fun``'s output and the temporaries of a round) fits in ``batch_memory`` bytes;
    this is that chunk's size, from the same memory model the solver uses.  It is
    the natural chunk size of a Dask batch along the instance axis: a larger Dask
    chunk is solved in several pieces one after the other (no more memory, but no
    more speed), a much smaller one pays the per-round overhead more often.  A
    worker then needs about ``threads × (batch_memory + newton_memory)`` plus its
    chunks' inputs and outputs (user guide, "Beyond one machine").

    Parameters
    ----------
    n : int
        Components of each IVP.
    n_coeffs, n_nodes, batch_memory : int, optional
        The batch's options (defaults: a batch's, 12, ``n_coeffs - 1``, 2**28).
    dtype : str or dtype, optional
        The working dtype: float64, or float32 for a float32 ``y0`` on CuPy and
        other array-API backends (a NumPy ``y0`` is solved in float64).

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> import chebpan
    >>> chebpan.batch_chunk_size(3)        # Lorenz: a few 10⁴ instances per 256 MiB
    25439
    >>> chebpan.batch_chunk_size(3, batch_memory=2**30)
    101757
    """
    defaults = {option.name: option.default_for(batch=True) for option in OPTIONS}
    n_coeffs = defaults["n_coeffs"] if n_coeffs is None else int(n_coeffs)
    n_nodes = n_coeffs - 1 if n_nodes is None else int(n_nodes)
    batch_memory = defaults["batch_memory"] if batch_memory is None else int(batch_memory)
    basis = get_basis(n_coeffs, n_nodes, xp=np_xp, dtype=np_xp.float64)
    return instances_per_chunk(batch_memory, int(n), basis, np.dtype(dtype).itemsize)

"""The array namespace of arrays: NumPy itself where it implements the standard."""

from __future__ import annotations

import array_api_compat

__all__ = ["namespace_of"]


def namespace_of(*arrays):
    """The array-API namespace of ``arrays``, native where the library is compliant.

    NumPy ≥ 2.1 implements the standard itself; using it directly avoids the
    per-call overhead of array-api-compat's wrappers in the solver's hot loop.
    Other libraries get array-api-compat's namespace.

    Examples
    --------
    >>> import numpy as np
    >>> namespace_of(np.zeros(2)).__name__
    'numpy'
    """
    xp = array_api_compat.array_namespace(*arrays)
    if array_api_compat.is_numpy_namespace(xp):
        import numpy

        if hasattr(numpy, "astype"):  # NumPy >= 2.1
            return numpy
    return xp

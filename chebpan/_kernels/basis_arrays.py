"""The kernels' views of a basis (contiguous or derived arrays), built once per basis.

A kernel is called every round with the same :class:`~chebpan._core.basis.ChebyshevBasis`;
converting or deriving its arrays each time costs more than some kernels' work.
"""

from __future__ import annotations

__all__ = ["basis_arrays"]

#: (id(basis), key) → (basis, arrays); the basis is kept alive so its id stays its own.
_CACHE = {}


def basis_arrays(basis, key, build):
    """``build(basis)``, computed once per ``basis`` and ``key`` (a few kept at a time)."""
    entry = _CACHE.get((id(basis), key))
    if entry is not None and entry[0] is basis:
        return entry[1]
    arrays = build(basis)
    if len(_CACHE) >= 32:
        _CACHE.clear()
    _CACHE[(id(basis), key)] = (basis, arrays)
    return arrays

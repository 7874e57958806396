"""Pickling of objects that hold their array namespace (dense output)."""

from __future__ import annotations

from .._kernels.namespaces import namespace_of

__all__ = ["PicklableNamespace"]


class PicklableNamespace:
    """Mixin: pickle and copy an object that holds its array namespace ``xp``.

    Modules cannot be pickled, so the namespace is left out and found again
    on loading from the arrays themselves (attribute ``_namespace_source``),
    the way the solve found it: results cross multiprocessing, joblib and
    Dask like scipy's.
    """

    _namespace_source = "ts"

    def __getstate__(self):
        state = dict(self.__dict__)
        state["xp"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.xp = namespace_of(getattr(self, self._namespace_source))

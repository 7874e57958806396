"""The benchmark suite's problem type, its error norm and its registry.

A :class:`SuiteProblem` is an IVP with a stored reference value of ``y(t_end)``
(see :mod:`chebpan.testing._references` for how each one is made and checked) and the
absolute floor of its scaled error norm (:meth:`SuiteProblem.scaled_error`).
:data:`SUITE` maps every problem's name to a factory returning it.

Examples
--------
>>> from chebpan.testing import SUITE
>>> p = SUITE["A1"]()
>>> p.t_span, p.y0, p.stiff
((0.0, 20.0), (1.0,), False)
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Sequence

import numpy as np

__all__ = ["SuiteProblem", "SUITE", "TARGETS", "scaled_error"]

#: The suite's target errors, in the scaled norm of :func:`scaled_error`.
TARGETS = (1e-3, 1e-6, 1e-10)

# A target is resolvable when the reference's two independent computations agree to
# within target / _RESOLUTION_FACTOR in the scaled norm.
_RESOLUTION_FACTOR = 10.0


def scaled_error(y, ref, floor) -> float:
    """Scaled RMS error ``sqrt(mean_i (|y_i - ref_i| / (floor_i + |ref_i|))**2)``.

    Parameters
    ----------
    y, ref : array_like, shape (n,)
        Computed and reference values of ``y(t_end)``.
    floor : float or array_like, shape (n,)
        Absolute floor: below it a component's error counts as absolute.

    Returns
    -------
    float
        The error; ``inf`` if ``y`` has a non-finite entry.

    Examples
    --------
    >>> round(scaled_error([2.0, 0.0], [1.0, 0.0], 1.0), 6)  # sqrt((0.5**2 + 0) / 2)
    0.353553
    """
    y = np.asarray(y, dtype=float)
    ref = np.asarray(ref, dtype=float)
    if y.shape != ref.shape or not np.all(np.isfinite(y)):
        return float("inf")
    w = np.abs(y - ref) / (np.asarray(floor, dtype=float) + np.abs(ref))
    return float(np.sqrt(np.mean(w * w)))


@dataclasses.dataclass(frozen=True)
class SuiteProblem:
    """One problem of the benchmark suite.

    Parameters
    ----------
    name : str
        Identifier, the key in :data:`SUITE` (``"A1"``, ``"HIRES"``, ...).
    fun : callable
        Right-hand side ``fun(t, y)``: ``y`` of shape ``(n,)`` -> ``(n,)``
        (point-wise, scalar ``t``), or ``y`` of shape ``(n, P)`` -> ``(n, P)`` with
        ``t`` scalar or of shape ``(P,)`` (vectorised). Also evaluates in
        ``numpy.longdouble`` (the references' extrapolation integrator uses it).
    jac : callable or None
        Analytic Jacobian ``d fun / d y``: shape ``(n, n)`` point-wise and
        ``(n, n, P)`` vectorised; ``None`` where the suite gives none (the non-stiff
        DETEST problems: implicit solvers then use finite differences).
    t_span : tuple of float
        ``(t0, t_end)``.
    y0 : tuple of float
        Initial value, length ``n``.
    stiff : bool
        Whether the problem is stiff.
    floor : float
        Absolute floor of the scaled error norm; the benchmark runs each solver with
        ``atol = rtol * floor``.
    family : str
        Where the problem comes from (``"DETEST A"``, ``"IVP test set"``, ``"paper"``).
    description : str
        One line.
    exact : callable or None, optional
        ``exact(dps) -> list of mpmath numbers``: the exact ``y(t_end)`` at ``dps``
        digits, where a closed form exists.
    published : tuple of str or None, optional
        A published reference value of ``y(t_end)`` (decimal strings), used as one of
        the reference's two computations.
    reference_source : callable or None, optional
        ``reference_source(dps) -> list of mpmath numbers``: another high-precision
        reference (the paper's problems: their verified mpmath Taylor solution).
    breakpoints : tuple of float, optional
        Times where ``fun`` jumps; the references integrate piecewise between them
        (the benchmark does not tell the solvers).
    sparsity : callable or None, optional
        ``sparsity()`` -> boolean array (n, n): where the Jacobian may be nonzero, for
        the large systems that are solved with it (the benchmark gives chebpan
        ``jac_sparsity`` instead of the dense ``jac``, and Radau and BDF the Jacobian
        as a sparse matrix).
    """

    name: str
    fun: Callable
    jac: Callable | None
    t_span: tuple
    y0: tuple
    stiff: bool
    floor: float
    family: str
    description: str
    exact: Callable | None = dataclasses.field(default=None, repr=False, compare=False)
    published: tuple | None = dataclasses.field(default=None, repr=False)
    reference_source: Callable | None = dataclasses.field(default=None, repr=False,
                                                         compare=False)
    breakpoints: tuple = ()
    sparsity: Callable | None = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "t_span", tuple(float(t) for t in self.t_span))
        object.__setattr__(self, "y0", tuple(float(v) for v in self.y0))

    @property
    def n(self) -> int:
        """Number of components."""
        return len(self.y0)

    def reference_info(self) -> dict:
        """The stored reference of ``y(t_end)`` with its provenance.

        Returns
        -------
        dict
            ``values`` (decimal strings), ``method`` (how the stored value was
            obtained), ``check`` (the independent second computation),
            ``agreement`` (scaled error between the two), ``resolvable`` (targets
            the reference can decide) and ``notes``.

        Raises
        ------
        KeyError
            If the stored references do not cover this problem (run
            ``python -m chebpan.testing.make_references``).
        """
        from ._reference_values import REFERENCES

        return dict(REFERENCES[self.name])

    def reference_array(self) -> np.ndarray:
        """Stored reference of ``y(t_end)`` as a float64 array, shape ``(n,)``."""
        return np.array([float(s) for s in self.reference_info()["values"]])

    def scaled_error(self, y: Sequence[float]) -> float:
        """:func:`scaled_error` of ``y`` (shape ``(n,)``) against the reference."""
        return scaled_error(y, self.reference_array(), self.floor)

    def resolvable(self, target: float) -> bool:
        """Whether the reference is good enough to decide the error ``target``."""
        return float(target) >= _RESOLUTION_FACTOR * self.reference_info()["agreement"]


def _registry() -> dict[str, Callable[[], SuiteProblem]]:
    from . import _brusselator, _detest, _kepler, _medakzo, _paper_suite, _pleiades, _stiff

    out: dict[str, Callable[[], SuiteProblem]] = {}
    for module in (_detest, _kepler, _pleiades, _stiff, _medakzo, _brusselator, _paper_suite):
        out.update(module.FACTORIES)
    return out


#: Every suite problem by name: factories returning a :class:`SuiteProblem`.
SUITE: Mapping[str, Callable[[], SuiteProblem]] = _registry()

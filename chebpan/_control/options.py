"""The options of :func:`chebpan.solve_ivp` and their defaults, in one table.

:data:`OPTIONS` lists every keyword of ``**options`` with its default for a single solve
and, where different, for a batch (:func:`chebpan.solve_ivp_batch`: defaults chosen for
work rather than depth, measured with ``bench/batch.py``).  The front end takes the options from this
table (:func:`take_options`, :func:`with_defaults`); the drivers get the iteration's
part as an :class:`IterationOptions`.  ``tests/test_options.py`` checks the table
against the docstrings of :func:`chebpan.solve_ivp` and :func:`chebpan.solve_ivp_batch`
(the :data:`BATCH_ONLY` options) and the tables of docs/user-guide.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Option", "OPTIONS", "BATCH_ONLY", "CONVERGENCE", "MIN_N_COEFFS", "IterationOptions",
           "take_options", "check_options", "with_defaults", "iteration_options"]

#: Marks an option whose batch default is its single-solve default.
SAME = object()


@dataclass(frozen=True)
class Option:
    """One keyword of ``**options``: its defaults for a single solve and a batch.

    PAN's own numeric options also carry their ``kind`` ("integer" or "number")
    and lower bound (``lowest``, allowed itself unless ``strict``), which
    :func:`check_options` enforces; scipy's are checked by the front end.
    """

    name: str
    default: Any
    batch: Any = SAME
    kind: str | None = None
    lowest: float | None = None
    strict: bool = False
    why: str = ""
    #: The allowed values of an option that is one of a few names.
    choices: tuple | None = None

    def default_for(self, *, batch: bool) -> Any:
        return self.default if not batch or self.batch is SAME else self.batch

    def check(self, value):
        """A clear ``ValueError`` unless ``value`` is of the kind and above the bound."""
        if self.choices is not None:
            if not isinstance(value, str) or value not in self.choices:
                names = ", ".join(repr(c) for c in self.choices)
                raise ValueError(f"`{self.name}` must be one of {names}, got {value!r}.")
            return
        if self.kind is None or (value is None and self.default is None):
            return
        exact = isinstance(value, (bool, np.bool_))
        if self.kind == "integer":
            ok = isinstance(value, (int, np.integer)) and not exact
        else:
            ok = (isinstance(value, (int, float, np.integer, np.floating)) and not exact
                  and math.isfinite(value))
        if ok:
            ok = value > self.lowest if self.strict else value >= self.lowest
        if not ok:
            bound = f"greater than {self.lowest}" if self.strict else f"of at least {self.lowest}"
            article = "an" if self.kind == "integer" else "a"
            raise ValueError(f"`{self.name}` must be {article} {self.kind} {bound}"
                             f"{self.why}, got {value!r}.")


#: Smallest ``n_coeffs``: the error estimate reads the last two coefficients, which
#: must lie above the linear term (with 3 it is the solution's slope, which never
#: falls below the tolerance, and the solve never ends).
MIN_N_COEFFS = 4


#: ``n_coeffs`` with ``n_nodes`` given and ``n_coeffs`` not (the paper's choice).
FIXED_N_COEFFS = 32


#: Every option of :func:`chebpan.solve_ivp` beyond scipy's positional arguments, in the
#: order of its docstring.  ``n_nodes = None`` stands for ``n_coeffs - 1``.
OPTIONS = (
    Option("rtol", 1e-3),
    Option("atol", 1e-6),
    Option("first_step", None),
    Option("max_step", math.inf),
    Option("jac", None),
    Option("vectorized_jac", False),
    Option("jac_sparsity", None),
    Option("n_coeffs", None, batch=12, kind="integer", lowest=MIN_N_COEFFS,
           why=" (the error estimate reads the last two coefficients, above the linear term)"),
    Option("n_nodes", None, kind="integer", lowest=1),
    Option("max_picard", 12, batch=30, kind="integer", lowest=1),
    Option("max_newton", 8, kind="integer", lowest=1),
    Option("rho_newton", 0.2, batch=0.9, kind="number", lowest=0.0, strict=True),
    Option("max_newton_size", 1200, kind="integer", lowest=0),
    Option("newton_linear_solver", "auto", choices=("auto", "dense", "structured", "simplified")),
    Option("progress", False),
    Option("backend", None),
    Option("batch_args", None),
    Option("newton_memory", 2**28, kind="integer", lowest=0, strict=True),
    Option("batch_memory", 2**28, kind="integer", lowest=0, strict=True),
    Option("tol_ls", None, kind="number", lowest=0.0, strict=True),
    Option("tol_newton", None, kind="number", lowest=0.0, strict=True),
)

#: The options of a batch only (:func:`chebpan.solve_ivp_batch`).
BATCH_ONLY = ("batch_args", "newton_memory", "batch_memory")

#: Not an option: an iteration has converged when its estimated remaining change of the
#: node values is below this fraction of the tolerance (docs/algorithm.md, "One segment").
CONVERGENCE = 1e-3

#: The options that make up an :class:`IterationOptions`.
_ITERATION = ("max_picard", "max_newton", "rho_newton", "tol_ls", "tol_newton",
              "max_newton_size", "newton_linear_solver")


def take_options(options: dict) -> dict:
    """Remove the known options from ``options`` and return them (name → value given).

    What stays in ``options`` is extraneous (scipy warns about it).
    """
    return {option.name: options.pop(option.name) for option in OPTIONS
            if option.name in options}


def check_options(given: dict) -> None:
    """A clear ``ValueError`` for a value of PAN's own options that cannot work.

    ``n_nodes`` is checked against ``n_coeffs`` when the basis is built.
    """
    for option in OPTIONS:
        if option.name in given:
            option.check(given[option.name])


def with_defaults(given: dict, *, batch: bool) -> dict:
    """Every option's value: the one ``given``, else the default (a batch's if ``batch``).

    ``n_nodes`` not given is ``n_coeffs - 1``.  ``n_coeffs = None`` (a single solve's
    default) is left for the solve to choose (:func:`chebpan._control.policy.auto_n_coeffs`),
    unless ``n_nodes`` is given: then it is ``FIXED_N_COEFFS``.
    """
    values = {option.name: option.default_for(batch=batch) for option in OPTIONS}
    values.update(given)
    if values["n_coeffs"] is None:
        if given.get("n_nodes") is None:
            return values
        values["n_coeffs"] = FIXED_N_COEFFS
    if given.get("n_nodes") is None:
        values["n_nodes"] = int(values["n_coeffs"]) - 1
    return values


def iteration_options(values: dict) -> IterationOptions:
    """The :class:`IterationOptions` part of the option ``values`` (of :func:`with_defaults`)."""
    return IterationOptions(**{name: values[name] for name in _ITERATION})


@dataclass(frozen=True)
class IterationOptions:
    """Knobs of the per-segment iteration, from :data:`OPTIONS` (:func:`iteration_options`).

    Attributes
    ----------
    max_picard, max_newton : int
        Bounds on the iterations of each kind per segment attempt.
    rho_newton : float
        Contraction ratio of the Picard iteration above which it hands
        over to Newton.
    convergence : float
        Converged when the estimated remaining change of the node values,
        in units of ``atol + rtol |y|``, is below this.
    max_newton_size : int
        Largest Newton system ``n·(N−2)``: the Gauss–Newton matrix is dense
        (memory ``8 (n(N−2))²`` bytes, factorisation ``(n(N−2))³/3`` flops), so
        larger systems use the Picard iteration only, on segments short
        enough for it to contract.
    tol_ls, tol_newton : float or None
        The paper's stopping rules (§5.5): stop the Picard iteration when
        ``‖X_k − X_{k−1}‖ < tol_ls`` and Newton when ``‖∇e‖ < tol_newton``
        (2-norms of the raw coefficients / gradient).  ``None``: use
        ``convergence`` instead.
    newton_linear_solver : {"auto", "dense", "structured", "simplified"}
        How the Newton step of the stiff basis is solved: dense LU of the
        collocation matrix; ``"structured"``: GMRES preconditioned by the
        frozen-J structured solve (:mod:`chebpan._core.structured`);
        ``"simplified"``: simplified Newton with the frozen-J solve itself, J
        carried across segments.  Both structured kinds also give the stiff basis
        Newton steps above ``max_newton_size``.  ``"auto"``: ``"simplified"`` from
        ``STRUCTURED_MIN_SIZE`` unknowns on (and above ``max_newton_size``),
        dense below; and the paper's basis gets no (dense) Newton steps from
        ``STRUCTURED_MIN_SIZE`` unknowns on.
    """

    max_picard: int
    max_newton: int
    rho_newton: float
    tol_ls: float | None
    tol_newton: float | None
    max_newton_size: int
    newton_linear_solver: str = "auto"
    convergence: float = CONVERGENCE

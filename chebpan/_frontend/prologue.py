"""The checks shared by :func:`chebpan.solve_ivp` and :func:`chebpan.solve_ivp_batch`.

:func:`prepare` checks the arguments both take, in scipy's order (docs of
:mod:`chebpan._frontend.validation`), and takes the options from
:data:`chebpan._control.options.OPTIONS`: the batch-only ones are extraneous to a single
solve, and ``batch_args`` given to ``solve_ivp`` raises an error that names
``solve_ivp_batch``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import array_api_compat
import numpy as np
import scipy.sparse

from .._control.options import (
    BATCH_ONLY,
    check_options,
    iteration_options,
    take_options,
    with_defaults,
)
from .._control.policy import auto_n_coeffs
from .._output.result import warn_user
from .arguments import wrap_args, wrap_jac
from .backend import select_namespace
from .batch_spans import per_instance, validate_batch_t_eval, validate_batch_t_span
from .validation import (
    validate_t_eval,
    validate_t_span,
    validate_y0,
    validate_y0_array,
    warn_extraneous,
)

__all__ = ["Prepared", "prepare", "basis_size", "on_device", "check_numpy_only",
           "warn_pointwise"]


@dataclass
class Prepared:
    """The arguments common to :func:`solve_ivp` and :func:`chebpan.solve_ivp_batch`,
    checked in scipy's order."""

    t0: object  # float; a batch's per-instance span: a NumPy float64 array (K,)
    tf: object
    fun: object
    jac: object
    t_eval: object
    y0: object
    array_xp: object  # None: NumPy (or what y0 is), else the array-API namespace chosen
    values: dict
    iteration: object
    given: dict  # the options given (``values`` adds the defaults)


def prepare(fun, t_span, y0, t_eval, args, options, *, batch):
    """Check the arguments shared by a single solve and a batch, in scipy's order.

    ``options`` loses the known options; what stays is extraneous (warned about).
    For a single solve the batch-only options warn as extraneous, and ``batch_args``
    raises a ``ValueError`` that names :func:`chebpan.solve_ivp_batch`.  A batch's
    ``t_span`` and ``t_eval`` may be per instance (:mod:`.batch_spans`); its
    ``t0``, ``tf`` are then arrays (K,).
    """
    t0, tf = validate_batch_t_span(t_span) if batch else validate_t_span(t_span)
    given = take_options(options)
    if not batch:
        if "batch_args" in given:
            raise ValueError(
                "`batch_args` is an option of `chebpan.solve_ivp_batch`, which solves a "
                "batch of K IVPs (`y0` of shape (K, n)); `chebpan.solve_ivp` solves one "
                "IVP, as scipy's does.")
        for name in BATCH_ONLY:
            if name in given:
                options[name] = given.pop(name)
    check_options(given)
    values = with_defaults(given, batch=batch)
    fun = wrap_args(fun, args)
    jac = wrap_jac(values["jac"], args)
    t_eval = (validate_batch_t_eval if batch else validate_t_eval)(t_eval, t0, tf)
    warn_extraneous(options)

    array_xp = select_namespace(values["backend"], y0)
    if array_xp is None:
        y0 = validate_y0(y0, support_complex=True, batch=batch)
    else:
        y0 = validate_y0_array(y0, array_xp, batch=batch)
    if batch:
        t0, tf = per_instance(t0, tf, t_eval, y0.shape[0])
    return Prepared(t0, tf, fun, jac, t_eval, y0, array_xp, values,
                    iteration_options(values), given)


def basis_size(values, rtol, n, *, dense_newton):
    """``(n_coeffs, n_nodes)`` of a solve: the options', or, with ``n_coeffs`` None (a
    single solve's default), :func:`~chebpan._control.policy.auto_n_coeffs` of the
    smallest ``rtol`` (``dense_newton``: Newton steps would be dense)."""
    if values["n_coeffs"] is None:
        n_coeffs = auto_n_coeffs(float(np.min(rtol)), n, dense_newton=dense_newton)
        return n_coeffs, n_coeffs - 1
    return int(values["n_coeffs"]), int(values["n_nodes"])


def on_device(xp, device):
    """CuPy launches on the current device: make it y0's for the whole solve."""
    return device if array_api_compat.is_cupy_namespace(xp) else contextlib.nullcontext()


def check_numpy_only(xp, *, events, jac, jac_sparsity):
    """Features that run on the NumPy backend only (for now): a clear error."""
    for name, value in (("events", events), ("jac_sparsity", jac_sparsity)):
        if value is not None:
            raise NotImplementedError(
                f"`{name}` is supported on the NumPy backend only (this solve runs on "
                f"{xp.__name__}).")
    if scipy.sparse.issparse(jac):
        raise NotImplementedError(
            f"A sparse `jac` is supported on the NumPy backend only (this solve runs on "
            f"{xp.__name__}).")


def warn_pointwise(evaluator):
    """After a solve: the ``UserWarning`` for a ``fun`` the probe left point by point."""
    message = evaluator.pointwise_warning()
    if message is not None:
        warn_user(message)

"""``solve_ivp_batch``: K independent IVPs that share ``fun``, solved in lock step.

Takes the arguments of :func:`chebpan.solve_ivp` (checked by the same
:func:`~chebpan._frontend.prologue.prepare`) with a ``y0`` of shape (K, n) and the
batch's own options, and runs :class:`~chebpan._control.batch.BatchLoop`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from .._control.batch import BatchLoop
from .._control.spans import Spans
from .._core.basis import get_basis
from .._kernels.blas import solver_blas_threads
from .._output.batch_record import make_record
from .._output.batch_result import batch_result
from .._rhs.counters import Counters
from .._rhs.evaluator import Evaluator
from .arguments import unpack_args
from .backend import namespace_of
from .batch_hints import hint_misplaced_args
from .batch_spans import validate_batch_first_step
from .prologue import check_numpy_only, on_device, prepare, warn_pointwise
from .validation import (
    validate_batch_args,
    validate_max_step,
    validate_tol,
)

__all__ = ["solve_ivp_batch"]


def solve_ivp_batch(fun, t_span, y0, t_eval=None, dense_output=False, events=None,
                    vectorized=None, args=None, **options):
    """Solve a batch of K initial value problems that share ``fun``.

    Each instance is the IVP ``y' = fun(t, y)``, ``y(t0) = y0[k]``, solved by PAN
    with its own segments (own lengths, acceptance and convergence, as if it were
    solved alone); the instances advance in lock step, and every round calls
    ``fun`` once on the nodes of all active instances.  The arguments are those
    of :func:`chebpan.solve_ivp` (same meaning, same checks), with ``y0`` of
    shape (K, n) and three options of the batch's own.  The user guide's
    "Batched IVPs" has the details.

    Parameters
    ----------
    fun : callable
        Right-hand side ``fun(t, y, *batch_args, *args)``.  With
        ``vectorized=True`` it is called with ``t`` of shape (P,) and ``y`` of
        shape (n, P), the nodes of every active instance side by side (each
        column with its own time and instance), and must return shape (n, P).
        With ``vectorized=False`` it is called once per point with a float
        ``t`` and ``y`` of shape (n,): correct, but slow.
    t_span : 2-sequence of floats, or array_like, shape (K, 2)
        Interval of integration ``(t0, tf)`` shared by all instances, or one
        row ``(t0_k, tf_k)`` per instance (finite; each instance integrates
        from its own ``t0_k`` to its own ``tf_k``, forward or backward, and
        one with ``t0_k == tf_k`` finishes at once).
    y0 : array_like, shape (K, n)
        Initial states, one row per instance (real: a complex batch is solved
        as the real system ``[Re y; Im y]`` by the user).
    t_eval : array_like, shape (P,) or (K, P), optional
        Times at which to store the solution: shape (P,), the same times for
        every instance, or (K, P), row ``k`` the times of instance ``k``.
        Each instance's times must lie within its span and be strictly sorted
        in its direction (scipy's rules, instance by instance): with
        per-instance spans in both directions, give one row per instance.
    dense_output : bool, optional
        Whether to return ``sol`` (:class:`chebpan.BatchOdeSolution`).
    events : None
        Not supported for batches yet (``NotImplementedError``).
    vectorized : bool or None, optional
        Whether ``fun`` accepts many points at once (see ``fun``); None (the
        default): probed on the first round, as in :func:`chebpan.solve_ivp`.
    args : tuple, optional
        Extra arguments shared by all instances, passed to ``fun`` and a
        callable ``jac`` unchanged.
    **options
        The options of :func:`chebpan.solve_ivp` (``rtol``, ``atol``,
        ``jac``, ``n_coeffs``, ...), with a batch's defaults where they
        differ (``n_coeffs = 12``, ``max_picard = 30``, ``rho_newton = 0.9``),
        and:

        batch_args : tuple of arrays, optional
            Per-instance arguments: each has K rows (shape (K,) or (K, ...)).
            They reach ``fun`` and a callable ``jac`` after ``y`` and before
            ``args``, laid out like ``y``: in a vectorised call with points
            ``t`` (P,), ``y`` (n, P), an argument of shape (K,) arrives as
            (P,) and one of shape (K, p) as (p, P), each column its point's
            instance's row; in a point-wise call the instance's row itself.
        newton_memory : int, optional
            Bytes of workspace for the dense Newton systems (default 2**28):
            instances in a Newton step are processed in chunks that fit.
        batch_memory : int, optional
            Bytes of working memory (default 2**28): the instances are solved
            in chunks that fit, one after the other (a batch keeps only what
            its output needs: with ``t_eval`` and no ``dense_output``, the
            values at ``t_eval``).

    Returns
    -------
    OdeResult
        The fields of :func:`chebpan.solve_ivp`, per instance: with
        ``t_eval``, ``t = t_eval`` ((P,) or (K, P)) and ``y`` of shape
        (K, n, P), ``y[k, :, j]`` instance ``k``'s value at its ``j``-th time,
        NaN where an instance failed before reaching that time; without it,
        ``t`` (K, S+1) holds each instance's t0 and segment ends and ``y``
        (K, n, S+1) the values there, both padded with NaN after the
        instance's last end.  ``sol(t)`` gives (K, n) for a float ``t`` and
        (K, n, k) for times (k,) or (K, k) (a row per instance).  ``status`` is a NumPy array
        (K,) and ``message`` a list of K strings; ``success`` is True when
        every instance succeeded.  The counters are totals over the batch
        (``depth`` and ``nfev`` count the shared rounds and calls);
        ``per_instance`` holds arrays (K,) of ``nsegments``, ``nrejected``
        and ``depth`` (rounds in which the instance was active).

    Raises
    ------
    ValueError
        ``y0`` not 2-D; a ``batch_args`` entry without K rows; a ``t_span``
        neither a 2-sequence nor of shape (K, 2), or with non-finite rows; a
        ``t_eval`` neither 1-D nor (K, P), or with an instance's times outside
        its span or not sorted in its direction (the message names the first
        such instance); ``first_step`` longer than the shortest span; and the
        errors of :func:`chebpan.solve_ivp`.
    NotImplementedError
        What a batch cannot do yet: ``events``, a complex ``y0``,
        ``jac_sparsity`` or a sparse ``jac``, ``progress``, ``tol_ls`` /
        ``tol_newton``.

    See Also
    --------
    chebpan.solve_ivp : one IVP, scipy's contract.

    Examples
    --------
    Three IVPs ``y' = -rate y`` with a decay rate each (``rate`` arrives with
    one entry per point, like a row of ``y``):

    >>> import numpy as np
    >>> import chebpan
    >>> def decay(t, y, rate):
    ...     return -rate * y
    >>> y0 = np.ones((3, 1))                             # K = 3, n = 1
    >>> res = chebpan.solve_ivp_batch(decay, (0, 2), y0, vectorized=True,
    ...                               t_eval=[1.0, 2.0], batch_args=([0.5, 1.0, 2.0],),
    ...                               rtol=1e-10, atol=1e-12)
    >>> res.y.shape, res.status.tolist()
    ((3, 1, 2), [0, 0, 0])
    >>> bool(np.allclose(res.y[:, 0, 1], np.exp(-2 * np.array([0.5, 1.0, 2.0])), rtol=1e-9))
    True

    A span per instance, with a row of output times each (the third runs
    backward):

    >>> spans = np.array([[0.0, 1.0], [0.0, 3.0], [2.0, 0.0]])
    >>> t_eval = np.linspace(spans[:, 0], spans[:, 1], 5, axis=1)     # (K, P) = (3, 5)
    >>> res = chebpan.solve_ivp_batch(decay, spans, y0, vectorized=True, t_eval=t_eval,
    ...                               batch_args=([1.0, 1.0, 1.0],), rtol=1e-10, atol=1e-12)
    >>> res.t.shape, res.y.shape
    ((3, 5), (3, 1, 5))
    >>> bool(np.allclose(res.y[:, 0, -1], np.exp(-(spans[:, 1] - spans[:, 0])), rtol=1e-9))
    True
    """
    if "method" in options:
        raise TypeError(
            "`solve_ivp_batch` solves with PAN only (no `method`); scipy's methods "
            "solve one IVP at a time: loop over `chebpan.solve_ivp(..., method=...)`.")
    with solver_blas_threads():
        return _solve_batch(fun, t_span, y0, t_eval, dense_output, events, vectorized,
                            None if args is None else unpack_args(args), options)


def _solve_batch(fun, t_span, y0, t_eval, dense_output, events, vectorized, args, options):
    """:func:`solve_ivp_batch` inside the one-thread BLAS context."""
    p = prepare(fun, t_span, y0, t_eval, args, options, batch=True)
    y0, values, array_xp = p.y0, p.values, p.array_xp
    if array_xp is not None:
        check_numpy_only(array_xp, events=events, jac=p.jac,
                         jac_sparsity=values["jac_sparsity"])
    _check_batch_support(y0, events=events, jac=p.jac, values=values, iteration=p.iteration)
    xp = namespace_of(y0) if array_xp is None else array_xp
    eps = float(xp.finfo(y0.dtype).eps)
    k, n = y0.shape
    rtol, atol = validate_tol(values["rtol"], values["atol"], n, eps=eps)
    max_step = validate_max_step(values["max_step"])
    first_step = values["first_step"]
    if first_step is not None:
        first_step = validate_batch_first_step(first_step, p.t0, p.tf)
    counters = Counters()
    evaluator = Evaluator(hint_misplaced_args(p.fun, args, k), p.jac, n,
                          vectorized=vectorized,
                          vectorized_jac=bool(values["vectorized_jac"]), xp=xp,
                          dtype=y0.dtype, counters=counters, device=y0.device,
                          difference_floor=atol,
                          batch_args=validate_batch_args(values["batch_args"], y0, xp=xp))
    basis = get_basis(int(values["n_coeffs"]), int(values["n_nodes"]), xp=xp,
                      dtype=y0.dtype, device=y0.device)
    spans = Spans(p.t0, p.tf, xp=xp, device=y0.device)
    record = make_record(p.t_eval, dense_output, spans, xp=xp, device=y0.device)
    loop = BatchLoop(evaluator, basis, spans, y0, rtol, atol, max_step, p.iteration,
                     counters, xp=xp, newton_memory=values["newton_memory"],
                     record=record, batch_memory=values["batch_memory"])
    with on_device(xp, y0.device):
        loop.run(first_step)
    warn_pointwise(evaluator)
    return batch_result(loop, p.t_eval, dense_output)


def _check_batch_support(y0, *, events, jac, values, iteration):
    """What a batched solve cannot do (yet): a clear error."""
    if np.iscomplexobj(y0):
        raise NotImplementedError(
            "A complex batch `y0` is not supported; solve the real system [Re y; Im y].")
    unsupported = (("events", events is not None),
                   ("jac_sparsity", values["jac_sparsity"] is not None),
                   ("a sparse `jac`", scipy.sparse.issparse(jac)),
                   ("progress", bool(values["progress"])),
                   ("tol_ls", iteration.tol_ls is not None),
                   ("tol_newton", iteration.tol_newton is not None))
    for name, used in unsupported:
        if used:
            name = name if name.startswith("a ") else f"`{name}`"
            raise NotImplementedError(
                f"{name[0].upper()}{name[1:]} is not supported by `solve_ivp_batch` "
                "(yet): solve the instances one at a time with `chebpan.solve_ivp`.")

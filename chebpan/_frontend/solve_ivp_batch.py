"""``solve_ivp_batch``: K independent IVPs that share ``fun``, solved in lock step.

Takes the arguments of :func:`chebpan.solve_ivp` (checked by the same
:func:`~chebpan._frontend.prologue.prepare`) with a ``y0`` of shape (K, n) and the
batch's own options, and runs :class:`~chebpan._control.batch.BatchLoop`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from .._control.batch import BatchLoop
from .._control.options import iteration_options, with_defaults
from .._control.spans import Spans
from .._core.basis import get_basis
from .._kernels.blas import solver_blas_threads
from .._output.batch_events import BatchEvents
from .._output.batch_record import make_record
from .._output.batch_result import batch_result
from .._output.events import prepare_events
from .._output.progress import BatchProgressBar
from .._rhs.counters import Counters
from .._rhs.evaluator import Evaluator
from .arguments import unpack_args
from .backend import namespace_of
from .batch_hints import hint_misplaced_args
from .batch_spans import validate_batch_first_step
from .dask_batch import solve_dask_batch, uses_dask
from .prologue import basis_size, check_numpy_only, on_device, prepare, warn_pointwise
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
    shape (K, n) and three options of the batch's own.  Events follow scipy's
    rules instance by instance: a terminal event ends its instance only.  A batch of
    one instance (without ``events``) is a single solve: the same counters and values
    as :func:`chebpan.solve_ivp` on ``y0[0]``, with its defaults.  The user guide's
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
        as the real system ``[Re y; Im y]`` by the user).  A Dask array
        chunked along the instance axis (or Dask arrays as ``batch_args``,
        per-instance ``t_span`` or ``t_eval``) makes a Dask batch: each chunk
        is solved as an in-process batch, one Dask task per chunk, and the
        result is a :class:`chebpan.DaskBatchResult` of Dask arrays (needs
        ``t_eval``; no ``dense_output``, ``events`` or ``progress``; user
        guide, "Beyond one machine").
    t_eval : array_like, shape (P,) or (K, P), optional
        Times at which to store the solution: shape (P,), the same times for
        every instance, or (K, P), row ``k`` the times of instance ``k``.
        Each instance's times must lie within its span and be strictly sorted
        in its direction (scipy's rules, instance by instance): with
        per-instance spans in both directions, give one row per instance.
    dense_output : bool, optional
        Whether to return ``sol`` (:class:`chebpan.BatchOdeSolution`).
    events : callable or list of callables, optional
        Events ``event(t, y, *batch_args, *args)`` with scipy's attributes
        ``terminal`` (bool, or a positive integer k: stop at the k-th
        occurrence) and ``direction``, applied to every instance on its own
        (counts, terminal stops and ``t_events`` are per instance).  As in
        :func:`chebpan.solve_ivp`, sign changes are looked for at every node
        of every accepted segment and roots are located by ``brentq`` on the
        segment polynomial; a zero at an instance's ``t0`` counts.  With
        ``vectorized=True`` each event is called once at the K starts and
        then once per round with ``t`` (P,), ``y`` (n, P) and ``batch_args``
        laid out per point as ``fun`` gets them (the nodes of the segments
        accepted in the round, all instances side by side), returning shape
        (P,); otherwise, or if it does not return (P,), point by point with
        a float ``t``, ``y`` (n,) and the instance's row of each
        ``batch_args`` entry (as in root finding, always).  A terminal event
        ends its instance (status 1) at the event: its ``t``, ``y`` and
        ``sol`` stop there; the other instances go on.  NumPy backend only.
    vectorized : bool or None, optional
        Whether ``fun`` accepts many points at once (see ``fun``); None (the
        default): probed on the first round, as in :func:`chebpan.solve_ivp`.
    args : tuple, optional
        Extra arguments shared by all instances, passed to ``fun`` and a
        callable ``jac`` unchanged.
    **options
        The options of :func:`chebpan.solve_ivp` (``rtol``, ``atol``,
        ``jac``, ``n_coeffs``, ...), with a batch's defaults where they
        differ (``n_coeffs = 12``, ``max_picard = 30``, ``rho_newton = 0.9``);
        ``progress=True`` shows one bar for the batch (needs tqdm) that fills
        with the share of the total integration length covered,
        ``Σ_k |t_k − t0_k| / Σ_k |tf_k − t0_k|`` (an instance that failed or
        stopped at a terminal event counts as covered), and counts the
        instances done.  Options of the batch's own:

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
    OdeResult or DaskBatchResult
        The fields of :func:`chebpan.solve_ivp`, per instance: with
        ``t_eval``, ``t = t_eval`` ((P,) or (K, P)) and ``y`` of shape
        (K, n, P), ``y[k, :, j]`` instance ``k``'s value at its ``j``-th time,
        NaN where an instance failed or stopped at a terminal event before
        that time (scipy leaves such times out; the (K, n, P) layout pads
        them); without it, ``t`` (K, S+1) holds each instance's t0 and
        segment ends and ``y`` (K, n, S+1) the values there, both padded with
        NaN after the instance's last end (after a terminal event: the event
        time and state).  ``sol(t)`` gives (K, n) for a float ``t`` and
        (K, n, k) for times (k,) or (K, k) (a row per instance); an instance's
        segments end at its last time (at a terminal event: the event).
        ``status`` is a NumPy array (K,) (0: reached ``tf``, 1: a terminal
        event, -1: failed) and ``message`` a list of K strings; ``success``
        is True when every instance succeeded (status 0 or 1).  ``t_events``
        and ``y_events``: None without events, else lists of K entries, entry
        ``k`` what :func:`scipy.integrate.solve_ivp` gives for instance ``k``
        (a list over the events of arrays (count,) and (count, n)).  The
        counters are totals over the batch (``depth`` and ``nfev`` count the
        shared rounds and calls); ``per_instance`` holds arrays (K,) of
        ``nsegments``, ``nrejected`` and ``depth`` (rounds in which the
        instance was active).

    Raises
    ------
    ValueError
        ``y0`` not 2-D; a ``batch_args`` entry without K rows; a ``t_span``
        neither a 2-sequence nor of shape (K, 2), or with non-finite rows; a
        ``t_eval`` neither 1-D nor (K, P), or with an instance's times outside
        its span or not sorted in its direction (the message names the first
        such instance); ``first_step`` longer than the shortest span; and the
        errors of :func:`chebpan.solve_ivp` (an event's ``terminal`` attribute
        neither a boolean nor a positive integer among them).
    ImportError
        ``progress=True`` without tqdm.
    NotImplementedError
        What a batch cannot do yet: a complex ``y0``; with more than one instance
        (or with ``events``), ``jac_sparsity`` or a sparse ``jac``, ``tol_ls`` /
        ``tol_newton``; ``events`` on a backend other than NumPy.

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

    A terminal event per instance: each stops when its ``y`` falls to 0.5, at
    ``t = ln 2 / rate`` (``rate`` reaches the event as it reaches ``fun``):

    >>> def half(t, y, rate):
    ...     return y[0] - 0.5
    >>> half.terminal = True
    >>> rates = np.array([0.25, 1.0, 2.0])
    >>> res = chebpan.solve_ivp_batch(decay, (0, 2), y0, vectorized=True, events=half,
    ...                               batch_args=(rates,), rtol=1e-10, atol=1e-12)
    >>> res.status.tolist()                     # the first is still above 0.5 at t = 2
    [0, 1, 1]
    >>> [te[0].shape for te in res.t_events]    # t_events[k]: scipy's list for instance k
    [(0,), (1,), (1,)]
    >>> bool(np.allclose([res.t_events[k][0][0] for k in (1, 2)], np.log(2) / rates[1:]))
    True
    >>> t_2 = res.t[2][~np.isnan(res.t[2])]      # instance 2's times end at its event
    >>> bool(t_2[-1] == res.t_events[2][0][0])
    True
    """
    if "method" in options:
        raise TypeError(
            "`solve_ivp_batch` solves with PAN only (no `method`); scipy's methods "
            "solve one IVP at a time: loop over `chebpan.solve_ivp(..., method=...)`.")
    if uses_dask(y0, t_span, t_eval, options):
        return solve_dask_batch(fun, t_span, y0, t_eval, dense_output, events, vectorized,
                                args, options, _in_process_batch)
    return _in_process_batch(fun, t_span, y0, t_eval, dense_output, events, vectorized,
                             args, **options)


def _in_process_batch(fun, t_span, y0, t_eval=None, dense_output=False, events=None,
                      vectorized=None, args=None, lock_step=False, **options):
    """:func:`solve_ivp_batch` in this process (a Dask batch's chunks too).

    ``lock_step``: solve a batch of one instance in lock step as well, as a chunk of a
    larger Dask batch must be (its instances agree bit for bit with the batch solved
    whole).
    """
    with solver_blas_threads():
        return _solve_batch(fun, t_span, y0, t_eval, dense_output, events, vectorized,
                            None if args is None else unpack_args(args), options,
                            lock_step=lock_step)


def _solve_batch(fun, t_span, y0, t_eval, dense_output, events, vectorized, args, options,
                 *, lock_step):
    """:func:`solve_ivp_batch` inside the one-thread BLAS context."""
    p = prepare(fun, t_span, y0, t_eval, args, options, batch=True)
    y0, values, iteration, array_xp = p.y0, p.values, p.iteration, p.array_xp
    if array_xp is not None:
        check_numpy_only(array_xp, events=events, jac=p.jac,
                         jac_sparsity=values["jac_sparsity"])
    # A batch of one (without events) is a single solve: its defaults, its segment loop,
    # what a single solve supports.
    alone = y0.shape[0] == 1 and events is None and not lock_step
    _check_batch_support(y0, jac=p.jac, values=values, iteration=iteration, alone=alone)
    xp = namespace_of(y0) if array_xp is None else array_xp
    eps = float(xp.finfo(y0.dtype).eps)
    k, n = y0.shape
    rtol, atol = validate_tol(values["rtol"], values["atol"], n, eps=eps)
    if alone:
        values = with_defaults(p.given, batch=False)
        iteration = iteration_options(values)
    jac_sparsity = values["jac_sparsity"]  # (None unless alone: checked above)
    n_coeffs, n_nodes = basis_size(values, rtol, n,
                                   dense_newton=p.jac is None and jac_sparsity is None)
    max_step = validate_max_step(values["max_step"])
    first_step = values["first_step"]
    if first_step is not None:
        first_step = validate_batch_first_step(first_step, p.t0, p.tf)
    counters = Counters()
    batch_args = validate_batch_args(values["batch_args"], y0, xp=xp)
    evaluator = Evaluator(hint_misplaced_args(p.fun, args, k), p.jac, n,
                          vectorized=vectorized,
                          vectorized_jac=bool(values["vectorized_jac"]), xp=xp,
                          dtype=y0.dtype, counters=counters, device=y0.device,
                          jac_sparsity=jac_sparsity,
                          difference_floor=atol, batch_args=batch_args)
    basis = get_basis(n_coeffs, n_nodes, xp=xp, dtype=y0.dtype, device=y0.device)
    spans = Spans(p.t0, p.tf, xp=xp, device=y0.device)
    record = make_record(p.t_eval, dense_output, spans, xp=xp, device=y0.device)
    loop = BatchLoop(evaluator, basis, spans, y0, rtol, atol, max_step, iteration,
                     counters, xp=xp, newton_memory=values["newton_memory"],
                     record=record, batch_memory=values["batch_memory"])
    loop.alone = alone
    if events is not None:  # (NumPy only: checked above)
        events, max_events, event_direction = prepare_events(events, args)
        loop.events = BatchEvents(events, max_events, event_direction, p.t0, y0, batch_args,
                                  tau=basis.tau, n_coeffs=basis.n_coeffs,
                                  vectorized=bool(vectorized))
    if values["progress"]:
        loop.progress = BatchProgressBar(spans, k)
    try:
        with on_device(xp, y0.device):
            loop.run(first_step)
    finally:
        if loop.progress is not None:
            loop.progress.close()
    warn_pointwise(evaluator)
    return batch_result(loop, p.t_eval, dense_output)


def _check_batch_support(y0, *, jac, values, iteration, alone):
    """What a batched solve cannot do (yet): a clear error.  (A batch of one, ``alone``,
    is a single solve: it can do all but complex values.)

    (Events and ``progress`` are supported; events on the NumPy backend only, as in a
    single solve: :func:`~chebpan._frontend.prologue.check_numpy_only`.)
    """
    if np.iscomplexobj(y0):
        raise NotImplementedError(
            "A complex batch `y0` is not supported; solve the real system [Re y; Im y].")
    unsupported = (("jac_sparsity", values["jac_sparsity"] is not None),
                   ("a sparse `jac`", scipy.sparse.issparse(jac)),
                   ("tol_ls", iteration.tol_ls is not None),
                   ("tol_newton", iteration.tol_newton is not None))
    for name, used in unsupported:
        if used and not alone:
            name = name if name.startswith("a ") else f"`{name}`"
            raise NotImplementedError(
                f"{name[0].upper()}{name[1:]} is not supported by `solve_ivp_batch` "
                "(yet): solve the instances one at a time with `chebpan.solve_ivp`.")

"""The user's right-hand side, called on many points at once.

:class:`Evaluator` is the only place where ``fun`` and ``jac`` are called.
One call of :meth:`Evaluator.evaluate` is one *round* (docs/algorithm.md, "Counting"): ``fun`` at
all given points, and, when asked, the Jacobian at the same points (user
``jac`` or forward differences), which could all run in parallel.
"""

from __future__ import annotations

from .._kernels.blas import user_blas_threads
from .checks import check_fun_output
from .counters import Counters
from .probe import agree, call_quietly, probe_indices
from .jacobian import make_jacobian
from .sparse import make_sparse_jacobian

__all__ = ["Evaluator", "OneInstance", "gather_point_args", "instance_args"]


def gather_point_args(batch_args, instances, *, xp):
    """``batch_args`` at points of the instances ``instances`` (P,), laid out like ``y``.

    Instance ``k``'s row ``a[k]`` becomes the column of each of its points: an
    argument of shape (K,) arrives as (P,) and one of shape (K, p) as (p, P).
    (Also used for a batch's events: :mod:`chebpan._output.batch_events`.)
    """
    gathered = (xp.take(a, instances, axis=0) for a in batch_args)
    return tuple(xp.permute_dims(g, (*range(1, g.ndim), 0)) for g in gathered)


def instance_args(batch_args, k):
    """``batch_args`` of instance ``k`` (point-by-point calls): the rows ``a[k]``."""
    return tuple(a[k, ...] for a in batch_args)


class Evaluator:
    """Vectorised access to ``fun`` (and its Jacobian) with counting.

    Parameters
    ----------
    fun : callable
        ``fun(t, y)`` with ``args`` already bound.  With ``vectorized=True``
        it is called as ``fun(t, y)`` with ``t`` of shape (P,) and ``y`` of
        shape (n, P), and must return shape (n, P).  Otherwise it is called
        once per point with a float ``t`` and ``y`` of shape (n,).
    jac : None, callable or array_like
        As in scipy (``args`` already bound for a callable).
    n : int
        The number of components.
    vectorized : bool or None
        None: not given; the first call with at least two points probes
        whether ``fun`` handles them at once (:mod:`chebpan._rhs.probe`) and
        sets it; :attr:`pointwise_reason` then says why it did not.
    vectorized_jac : bool
        Call a callable ``jac`` once over all points (see :mod:`chebpan._rhs.jacobian`).
    device : device, optional
        Where a constant ``jac`` is placed (the device of ``y0``).
    jac_sparsity : array_like or sparse matrix, optional
        As in scipy: the pattern of forward differences when ``jac`` is None.
        Then (or for a sparse constant ``jac``) Jacobians come as values on
        ``pattern`` (:mod:`chebpan._rhs.sparse`), shape (P, nnz).
    xp : namespace
    dtype : dtype
    counters : Counters
    difference_floor : array, shape (n,), optional
        Magnitude below which a component's forward-difference step no
        longer shrinks (the solve's ``atol``; default 1).
    batch_args : tuple of arrays, optional
        Per-instance arguments of a batched solve, each with leading axis K.
        They reach ``fun`` and ``jac`` after ``y``, gathered at the points
        (see :meth:`point_args`); :meth:`evaluate`'s ``instances`` says which
        instance each point belongs to.
    """

    def __init__(
        self, fun, jac, n, *, vectorized, vectorized_jac=False, xp, dtype, counters: Counters,
        jac_sparsity=None, device=None, batch_args=(), difference_floor=None,
    ):
        self.fun = fun
        self.batch_args = tuple(batch_args)
        self.instances = None  # (P,) instance of each point of the current round
        self.n = n
        self.vectorized = vectorized
        #: Why a probed ``fun`` is called point by point (None: not probed, or vectorised).
        self.pointwise_reason = None
        self._vectorized_calls = 0
        self.xp = xp
        self.dtype = dtype
        self.counters = counters
        floor = 1.0 if difference_floor is None else difference_floor
        floor = xp.asarray(floor, dtype=dtype, device=device) * xp.ones((n,), dtype=dtype,
                                                                         device=device)
        #: (n, 1): broadcasts against the (n, P) points of a round; 1 where atol is 0
        #: (a step from a component at zero must not vanish).
        self.difference_floor = xp.reshape(xp.where(floor > 0, floor, xp.ones_like(floor)),
                                           (n, 1))
        self.jacobian = make_sparse_jacobian(jac, jac_sparsity, n, dtype=dtype)
        if self.jacobian is None:
            self.jacobian = make_jacobian(
                jac, n, vectorized_jac=vectorized_jac, xp=xp, dtype=dtype, device=device
            )
        #: The sparsity pattern when Jacobians are sparse, else None.
        self.pattern = getattr(self.jacobian, "pattern", None)

    def point_args(self, n_points):
        """``batch_args`` at ``n_points`` points, laid out like ``y``: each (..., P).

        ``n_points`` is the round's number of points or a multiple of it
        (forward differences repeat the points once per perturbed column
        group); instance ``k``'s row ``a[k]`` becomes the column of each of
        its points, so an argument of shape (K,) arrives as (P,) and one of
        shape (K, p) as (p, P).
        """
        if not self.batch_args:
            return ()
        xp = self.xp
        instances = self.instances
        repeats = n_points // instances.shape[0]
        if repeats != 1:
            instances = xp.concat([instances] * repeats)
        return gather_point_args(self.batch_args, instances, xp=xp)

    def point_args_at(self, p):
        """``batch_args`` of the instance of point ``p`` (point-by-point calls)."""
        if not self.batch_args:
            return ()
        return instance_args(self.batch_args, int(self.instances[p % self.instances.shape[0]]))

    def call_fun(self, t, y):
        """``fun`` at the points ``(t[p], y[:, p])``: shapes (P,), (n, P) → (n, P)."""
        n_points = t.shape[0]
        if self.vectorized is None:
            if n_points < 2:
                return self._call_undecided(t, y)
            self._probe(t, y)
        if self.vectorized:
            return self._call_vectorized(t, y)
        return self._call_pointwise(t, y)

    def _call_vectorized(self, t, y, *, quiet=False):
        n_points = t.shape[0]
        self.counters.npoints += n_points
        self.counters.nfev += 1
        try:
            args = self.point_args(n_points)
            value = call_quietly(self.fun, t, y, *args) if quiet else self.fun(t, y, *args)
            value = check_fun_output(value, (self.n, n_points), dtype=self.dtype, xp=self.xp,
                                     device=y.device)
        except Exception as err:
            if self.vectorized and not self._vectorized_calls and hasattr(err, "add_note"):
                err.add_note(
                    f"(chebpan called `fun` with t of shape ({n_points},) and y of shape "
                    f"({self.n}, {n_points}), all points at once, because vectorized=True. "
                    "A `fun` written for one point (y of shape (n,)) needs "
                    "vectorized=False, or leave `vectorized` out: chebpan then checks.)")
            raise
        self._vectorized_calls += 1
        return value

    def _call_pointwise(self, t, y):
        xp = self.xp
        n_points = t.shape[0]
        self.counters.npoints += n_points
        columns = []
        for p in range(n_points):
            self.counters.nfev += 1
            value = self.fun(float(t[p]), y[:, p], *self.point_args_at(p))
            columns.append(check_fun_output(value, (self.n,), dtype=self.dtype, xp=xp,
                                            device=y.device))
        if not columns:
            return xp.zeros((self.n, 0), dtype=self.dtype, device=y.device)
        return xp.stack(columns, axis=1)

    def _call_undecided(self, t, y):
        """A point before the probe: point-wise, or vectorised if only that works."""
        try:
            return self._call_pointwise(t, y)
        except Exception as err:  # (maybe written for vectorized=True only)
            pointwise_error = err
        try:
            value = self._call_vectorized(t, y, quiet=True)
        except Exception:
            raise pointwise_error from None
        self.vectorized = True
        return value

    def _probe(self, t, y):
        """Decide ``vectorized`` (not given) on a few of the points ``t`` (P,), ``y`` (n, P).

        One vectorised call and point-wise calls at the same points, all counted.  A
        ``fun`` that works on (n, P) input but fails on single points was written for
        vectorised calls: it is called vectorised.
        """
        xp = self.xp
        index = xp.asarray(probe_indices(t.shape[0]), device=y.device)
        t_s, y_s = xp.take(t, index), xp.take(y, index, axis=1)
        instances = self.instances
        if instances is not None:
            self.instances = xp.take(instances, index)
        try:
            try:
                vectorised = self._call_vectorized(t_s, y_s, quiet=True)
            except Exception as err:  # (any failure on (n, P) input: not vectorisable)
                reason = (f"it raised {type(err).__name__} when called with y of shape "
                          f"(n, P) = ({self.n}, {t_s.shape[0]})")
            else:
                try:
                    columns = call_quietly(self._call_pointwise, t_s, y_s)
                except Exception:  # (works on (n, P) only: written for vectorized=True)
                    self.vectorized = True
                    return
                if agree(vectorised, columns, xp):
                    self.vectorized = True
                    return
                reason = ("it returned different values for y of shape (n, P) than point "
                          "by point (it treats y as a single point)")
        finally:
            self.instances = instances
        self.vectorized = False
        self.pointwise_reason = reason

    def pointwise_warning(self):
        """The warning for a probed ``fun`` called point by point, else None."""
        if self.pointwise_reason is None:
            return None
        return (f"`fun` was called point by point, {self.counters.nfev} calls, because "
                f"{self.pointwise_reason}. chebpan evaluates all nodes of a segment at "
                "once: write `fun` for t of shape (P,) and y of shape (n, P) and pass "
                "`vectorized=True` (user guide, \"Vectorised calls\"); "
                "`vectorized=False` calls it point by point without this warning.")

    def evaluate(self, t, y, *, with_jacobian=False, instances=None):
        """One round: ``F`` (n, P) and, if asked, ``J`` (P, n, n) at the same points.

        With a sparsity ``pattern``, ``J`` is its values, (P, nnz).
        ``instances`` (P,): the batch instance of each point (batched solves).
        """
        self.counters.depth += 1
        self.instances = instances
        with user_blas_threads():
            if not with_jacobian:
                return self.call_fun(t, y), None
            if getattr(self.jacobian, "counts_as_evaluation", True):
                self.counters.njev += 1
            with_values = getattr(self.jacobian, "with_values", None)
            if with_values is not None:  # (forward differences: one call for F and J)
                return with_values(t, y, self)
            f = self.call_fun(t, y)
            return f, self.jacobian(t, y, f, self)

    def evaluate_some_jacobians(self, t, y, jacobian_points, *, instances):
        """One round of a batched solve: ``F`` at all points, ``J`` at some.

        ``jacobian_points`` (P,) bools selects where ``J`` is needed (None: nowhere);
        returns ``F`` (n, P) and ``J`` (P_J, n, n) at the selected points, in order
        (None when none is selected).  ``instances`` may be None without
        ``batch_args``.
        """
        f_all, _ = self.evaluate(t, y, instances=instances)
        if jacobian_points is None or not bool(self.xp.any(jacobian_points)):
            return f_all, None
        if getattr(self.jacobian, "counts_as_evaluation", True):
            self.counters.njev += 1
        xp = self.xp
        if not bool(xp.all(jacobian_points)):
            index = xp.nonzero(jacobian_points)[0]
            t = xp.take(t, index)
            instances = None if instances is None else xp.take(instances, index)
            y, f = xp.take(y, index, axis=1), xp.take(f_all, index, axis=1)
        else:
            f = f_all
        self.instances = instances
        with user_blas_threads():
            return f_all, self.jacobian(t, y, f, self)


class OneInstance:
    """A batched solve's :class:`Evaluator` for one of its instances: what a single
    solve's segment loop calls (``evaluate``, ``pattern``), with that instance's
    ``batch_args`` and the batch's counters."""

    def __init__(self, evaluator, index):
        self.evaluator = evaluator
        self.index = index
        self.pattern = evaluator.pattern  # (a batch of one may have a sparsity pattern)

    def evaluate(self, t, y, *, with_jacobian=False):
        xp = self.evaluator.xp
        instances = xp.full(t.shape, self.index, dtype=xp.int64, device=t.device)
        return self.evaluator.evaluate(t, y, with_jacobian=with_jacobian, instances=instances)

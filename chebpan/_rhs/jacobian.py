"""Jacobians ∂f/∂y at many points: user ``jac`` adapters and forward differences.

Every adapter returns ``J`` of shape (P, n, n) for points ``t`` (P,), ``y``
(n, P), with ``J[p, i, j] = ∂f_i/∂y_j (t[p], y[:, p])``.
"""

from __future__ import annotations

import math

from .._kernels.dispatch import difference_kernels

__all__ = ["make_jacobian", "forward_difference_steps", "as_matrix", "as_dense",
           "jac_shape_error"]


def jac_shape_error(expected, actual):
    return ValueError(
        f"`jac` is expected to have shape {expected}, but actually has {actual}."
    )


def make_jacobian(jac, n, *, vectorized_jac=False, xp, dtype, device=None):
    """Return ``jacobian(t, y, f, evaluator) -> J (P, n, n)``.

    Parameters
    ----------
    jac : None, callable, array_like or scipy sparse matrix
        ``None``: forward differences (one vectorised ``fun`` call over all
        perturbed points).  A callable is called as in scipy, ``jac(t, y)``
        with ``y`` of shape (n,), once per point, unless ``vectorized_jac``:
        then once with ``t`` (P,), ``y`` (n, P), returning (n, n, P).
        An array or sparse matrix is a constant Jacobian.
    n : int
        The number of components.
    """
    if jac is None:
        return _ForwardDifference(n, xp=xp, dtype=dtype)
    if callable(jac):
        return _UserJacobian(jac, n, vectorized_jac=vectorized_jac, xp=xp, dtype=dtype)
    return _ConstantJacobian(jac, n, xp=xp, dtype=dtype, device=device)


def as_dense(value):
    if hasattr(value, "toarray"):  # scipy sparse
        return value.toarray()
    return value


def as_matrix(value, expected, *, xp, dtype, device=None):
    """A user's Jacobian value as an array of shape ``expected``.

    Like scipy's LSODA, anything with the right number of entries is accepted
    and reshaped (e.g. a scalar when n = 1); other sizes raise scipy's error.
    """
    value = xp.asarray(as_dense(value), dtype=dtype, device=device)
    if tuple(value.shape) == expected:
        return value
    if math.prod(value.shape) == math.prod(expected):
        return xp.reshape(value, expected)
    raise jac_shape_error(expected, tuple(value.shape))


class _ConstantJacobian:
    #: A constant matrix is not an evaluation (scipy's njev stays 0).
    counts_as_evaluation = False

    def __init__(self, jac, n, *, xp, dtype, device=None):
        self.value = as_matrix(jac, (n, n), xp=xp, dtype=dtype, device=device)
        self.xp = xp

    def __call__(self, t, y, f, evaluator):
        return self.xp.broadcast_to(self.value[None, :, :], (t.shape[0], *self.value.shape))


class _UserJacobian:
    def __init__(self, jac, n, *, vectorized_jac, xp, dtype):
        self.jac = jac
        self.n = n
        self.vectorized_jac = vectorized_jac
        self.xp = xp
        self.dtype = dtype

    def _convert(self, value, expected, device):
        return as_matrix(value, expected, xp=self.xp, dtype=self.dtype, device=device)

    def __call__(self, t, y, f, evaluator):
        xp, n = self.xp, self.n
        n_points = t.shape[0]
        if self.vectorized_jac:
            value = self._convert(self.jac(t, y, *evaluator.point_args(n_points)),
                                  (n, n, n_points), y.device)
            return xp.permute_dims(value, (2, 0, 1))
        return xp.stack(
            [self._convert(self.jac(float(t[p]), y[:, p], *evaluator.point_args_at(p)),
                           (n, n), y.device)
             for p in range(n_points)]
        )


def forward_difference_steps(y, relative_step, floor, *, xp):
    """Steps ``relative_step · max(|y|, floor)`` away from zero, exactly representable.

    ``floor`` (broadcast against ``y``, e.g. ``atol`` of shape (n, 1)) sizes
    the step of components near zero, as scipy's ``num_jac`` does with its
    threshold: a step of 1 would swamp a component of 1e-10 (and make the
    Jacobian of a stiff problem wrong).  The returned step is
    ``(y + step) − y``, the perturbation actually made.
    """
    step = relative_step * xp.maximum(xp.abs(y), floor)
    step = xp.where(y >= 0, step, -step)
    return (y + step) - y


class _ForwardDifference:
    """Forward differences with all n·P perturbed points in one ``fun`` call (with the
    round's own P points too, :meth:`with_values`).

    On NumPy in float64 numba kernels build the points and the quotients
    (:mod:`chebpan._kernels.difference_numba`; ``CHEBPAN_DISABLE_NUMBA=1``: this code).
    """

    def __init__(self, n, *, xp, dtype):
        self.n = n
        self.xp = xp
        self.relative_step = math.sqrt(xp.finfo(dtype).eps)
        self._times = (None, None)  # (t, t repeated n + 1 times): the rounds of an attempt

    def _repeated_times(self, t):
        """``t`` (P,) repeated n + 1 times, kept while the same ``t`` comes back."""
        last, times = self._times
        if last is not t:
            times = self.xp.concat([t] * (self.n + 1))
            self._times = (t, times)
        return times

    def __call__(self, t, y, f, evaluator):
        xp, n = self.xp, self.n
        n_points = t.shape[0]
        if n == 0 or n_points == 0:
            return xp.zeros((n_points, n, n), dtype=y.dtype, device=y.device)
        kernels = difference_kernels(xp) if y.dtype == xp.float64 else None
        if kernels is not None:
            perturbed, step = kernels.perturb(y, self.relative_step, evaluator.difference_floor)
            f_perturbed = evaluator.call_fun(xp.concat([t] * n), perturbed)
            return kernels.difference(f_perturbed, f, step)
        step, perturbed = self._perturbed(y, evaluator)
        f_perturbed = evaluator.call_fun(xp.concat([t] * n), perturbed)
        return self._quotients(f_perturbed, f, step)

    def with_values(self, t, y, evaluator):
        """``F`` (n, P) and ``J`` (P, n, n) from one ``fun`` call at ``y`` and at the
        perturbed points together (a round's values and Jacobian)."""
        xp, n = self.xp, self.n
        n_points = t.shape[0]
        if n == 0 or n_points == 0:
            return evaluator.call_fun(t, y), self(t, y, None, evaluator)
        times = self._repeated_times(t)
        kernels = difference_kernels(xp) if y.dtype == xp.float64 else None
        if kernels is not None:
            points, step = kernels.perturb(y, self.relative_step, evaluator.difference_floor,
                                           with_base=True)
            values = evaluator.call_fun(times, points)
            f = values[:, :n_points]
            return f, kernels.difference(values[:, n_points:], f, step)
        step, perturbed = self._perturbed(y, evaluator)
        values = evaluator.call_fun(times, xp.concat([y, perturbed], axis=1))
        f = values[:, :n_points]
        return f, self._quotients(values[:, n_points:], f, step)

    def _perturbed(self, y, evaluator):
        """The steps (n, P) and the points ``y + step[j] e_j`` (n, n·P), column j·P + p."""
        xp, n = self.xp, self.n
        step = forward_difference_steps(y, self.relative_step, evaluator.difference_floor,
                                        xp=xp)
        eye = xp.eye(n, dtype=y.dtype, device=getattr(y, "device", None))
        # perturbed[:, j, p] = y[:, p] + step[j, p] e_j
        perturbed = y[:, None, :] + eye[:, :, None] * step[None, :, :]
        return step, xp.reshape(perturbed, (n, n * y.shape[1]))

    def _quotients(self, f_perturbed, f, step):
        xp, n = self.xp, self.n
        f_perturbed = xp.reshape(f_perturbed, (n, n, f.shape[1]))  # [i, j, p]
        difference = (f_perturbed - f[:, None, :]) / step[None, :, :]
        return xp.permute_dims(difference, (2, 0, 1))

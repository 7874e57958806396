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
        self._kernels = difference_kernels(xp)  # (float64 only: see below)
        self._times = (None, 0, None)  # (t, copies, t repeated): the rounds of an attempt

    def _repeated_times(self, t, copies):
        """``t`` (P,) repeated ``copies`` times, kept while the same ``t`` comes back."""
        last, last_copies, times = self._times
        if last is not t or last_copies != copies:
            times = self.xp.concat([t] * copies)
            self._times = (t, copies, times)
        return times

    def __call__(self, t, y, f, evaluator):
        return self._values_and_jacobian(t, y, f, evaluator)[1]

    def with_values(self, t, y, evaluator):
        """``F`` (n, P) and ``J`` (P, n, n) from one ``fun`` call at ``y`` and at the
        perturbed points together (a round's values and Jacobian)."""
        return self._values_and_jacobian(t, y, None, evaluator)

    def _values_and_jacobian(self, t, y, f, evaluator):
        """``F`` and ``J`` from one ``fun`` call: at the perturbed points, and at ``y``
        itself first (columns 0…P−1) when ``f`` is None."""
        xp, n = self.xp, self.n
        n_points = t.shape[0]
        with_base = f is None
        if n == 0 or n_points == 0:
            if with_base:
                f = evaluator.call_fun(t, y)
            return f, xp.zeros((n_points, n, n), dtype=y.dtype, device=y.device)
        times = self._repeated_times(t, n + int(with_base))
        kernels = self._kernels if y.dtype == xp.float64 else None
        if kernels is not None:
            points, step = kernels.perturb(y, self.relative_step, evaluator.difference_floor,
                                           with_base=with_base)
        else:
            step = forward_difference_steps(y, self.relative_step,
                                            evaluator.difference_floor, xp=xp)
            eye = xp.eye(n, dtype=y.dtype, device=getattr(y, "device", None))
            # points[:, j, p] = y[:, p] + step[j, p] e_j
            points = xp.reshape(y[:, None, :] + eye[:, :, None] * step[None, :, :],
                                (n, n * n_points))
            if with_base:
                points = xp.concat([y, points], axis=1)
        values = evaluator.call_fun(times, points)
        if with_base:
            f, values = values[:, :n_points], values[:, n_points:]
        if kernels is not None:
            return f, kernels.difference(values, f, step)
        values = xp.reshape(values, (n, n, n_points))  # [i, j, p]
        difference = (values - f[:, None, :]) / step[None, :, :]
        return f, xp.permute_dims(difference, (2, 0, 1))

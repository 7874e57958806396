"""Node values and the Picard iteration: the least-squares update ``X = (h/2) P (F − f_a 1ᵀ)ᵀ``.

docs/algorithm.md, "A basis that already satisfies the initial conditions" and "The
Picard (zero-order) iteration".  The free coefficients are stored as ``X`` of shape
(K, n, n_free) (K segments, n components), so that node values are one matrix product;
n_free is N-2 in the paper's basis and N-1 in the stiff basis
(:mod:`chebpan._core.basis`).
"""

from __future__ import annotations

from .._kernels.dispatch import picard_kernel, polynomial_kernels
from .estimates import GROWTH_CAP, capped_magnitude, tolerance_scale

__all__ = ["node_values", "node_times", "picard_update", "coefficients", "end_value", "euler_start",
           "picard_step"]


def node_values(basis, y_a, f_a, half_h, x, *, xp):
    """``half_h`` is h/2 with shape (K, 1); ``y_a``, ``f_a`` are (K, n).

    ``y(τ_m)`` for all nodes: (K, n, M).

    ``y_m = y_a + (h/2) f_a (1 + τ_m) + Σ_n X_n Φ̃[n, m]``.
    """
    kernels = _float64_kernels(xp, y_a, f_a, half_h, x)
    if kernels is not None:
        return kernels.node_values(basis, y_a, f_a, half_h, x)
    linear = y_a[..., None] + (basis.slope_factor * half_h * f_a)[..., None] * (1 + basis.tau)
    return linear + xp.matmul(x, basis.phi_tilde)


def _float64_kernels(xp, y_a, f_a, half_h, x):
    """The polynomial kernels where they apply (NumPy, float64), else None."""
    kernels = polynomial_kernels(xp)
    if kernels is not None and x.dtype == y_a.dtype == f_a.dtype == xp.float64:
        return kernels
    return None


def node_times(basis, t_a, t_b, *, xp):
    """Times of the nodes of ``[t_a, t_b]``: (M,), the last one exactly ``t_b``.

    ``t_a + (t_b − t_a)`` may round past ``t_b``; the last node is set to
    ``t_b`` itself so that ``fun`` is never evaluated outside ``t_span``.
    """
    kernels = polynomial_kernels(xp)
    if kernels is not None and basis.tau.dtype == xp.float64:
        return kernels.node_times(basis, t_a, t_b)
    t_nodes = t_a + ((t_b - t_a) / 2) * (1 + basis.tau)
    return xp.concat([t_nodes[:-1], xp.asarray([t_b], dtype=t_nodes.dtype, device=t_nodes.device)])


def end_value(basis, y_a, f_a, half_h, x, *, xp):
    """``y(+1)`` (K, n): the node formula at the last node, without the others."""
    kernels = _float64_kernels(xp, y_a, f_a, half_h, x)
    if kernels is not None:
        return kernels.end_value(basis, y_a, f_a, half_h, x)
    return y_a + 2 * basis.slope_factor * half_h * f_a + xp.matmul(x, basis.end_value[:, None])[..., 0]


def picard_update(basis, f_a, f_nodes, half_h, *, xp):
    """One Picard update: ``X = (h/2) P (F - f_a 1ᵀ)ᵀ`` → (K, n, n_free).

    (In the stiff basis the ``f_a`` term is absent: ``slope_factor = 0``.)
    """
    return half_h[..., None] * xp.matmul(
        f_nodes - basis.slope_factor * f_a[..., None], xp.matrix_transpose(basis.picard)
    )


def coefficients(basis, y_a, f_a, half_h, x, *, xp):
    """All Chebyshev coefficients ``c_0 … c_{N-1}``: (K, n, N).

    ``c_1 = (h/2) f_a − Σ X_n T_n'(−1)`` and ``c_0 = y_a + c_1 − Σ X_n T_n(−1)``
    impose ``y(−1) = y_a`` and ``(2/h) y'(−1) = f_a``.
    """
    kernels = _float64_kernels(xp, y_a, f_a, half_h, x)
    if kernels is not None:
        return kernels.coefficients(basis, y_a, f_a, half_h, x)
    if basis.n_fixed == 1:
        # Stiff basis: X holds c_1 … c_{N-1}; only y(−1) = y_a is imposed.
        c0 = y_a - xp.matmul(x, basis.t_minus1[1:, None])[..., 0]
        return xp.concat([c0[..., None], x], axis=-1)
    c1 = half_h * f_a - xp.matmul(x, basis.dt_minus1[2:, None])[..., 0]
    c0 = y_a + c1 - xp.matmul(x, basis.t_minus1[2:, None])[..., 0]
    return xp.concat([c0[..., None], c1[..., None], x], axis=-1)


def euler_start(basis, f_a, half_h, *, xp):
    """X of the Euler polynomial ``y_a + (h/2) f_a (1 + τ)``: (K, n, n_free).

    Zero in the paper's basis (the slope is built in); in the stiff basis
    the slope is the coefficient of ``T_1``.
    """
    k, n = f_a.shape
    x = xp.zeros((k, n, basis.n_free), dtype=f_a.dtype, device=f_a.device)
    if basis.n_fixed == 1:
        x = xp.concat([(half_h * f_a)[..., None], x[..., 1:]], axis=-1)
    return x


def picard_step(basis, y_a, f_a, half_h, y_nodes, f_nodes, atol, rtol, *, xp, batch=True):
    """One Picard update of a batch, with its node values and what its convergence test needs.

    ``y_nodes`` (K, n, M) are the node values of the current iterate, ``f_nodes`` ``f``
    at them.  Returns ``x_new`` (K, n, n_free) (:func:`picard_update`), ``y_new``
    (K, n, M): its node values (:func:`node_values`, the next round's points),
    ``change`` (K,): the RMS over components of ``max_m |y_new − y_nodes| / scale``
    with ``scale`` of :func:`~chebpan._core.estimates.tolerance_scale` (from ``y_a``
    and ``y(t_b)``), and ``size`` (K,): the largest ``max_m |y_m| / scale``, the node
    values capped as there (the rounding floor is ``eps`` times it).  On NumPy a numba
    kernel does it in one call, its products as BLAS over all rows, in a ``batch`` by
    blocks of a fixed shape so that an instance's result does not depend on the others
    in its round (``CHEBPAN_DISABLE_NUMBA=1``: this code).
    """
    kernel = picard_kernel(xp)
    if kernel is not None:
        return kernel(basis, y_a, f_a, half_h, y_nodes, f_nodes, atol, rtol, GROWTH_CAP,
                      batch)
    x_new = picard_update(basis, f_a, f_nodes, half_h, xp=xp)
    y_new = node_values(basis, y_a, f_a, half_h, x_new, xp=xp)
    if y_a.shape[-1] == 0:
        zeros = xp.zeros(y_a.shape[:1], dtype=y_a.dtype, device=y_a.device)
        return x_new, y_new, zeros, zeros
    scale = tolerance_scale(atol, rtol, y_a, y_nodes[..., -1], xp=xp)
    moved = xp.max(xp.abs(y_new - y_nodes), axis=-1) / scale
    change = xp.sqrt(xp.mean(moved * moved, axis=-1))
    largest = capped_magnitude(y_a, xp.max(xp.abs(y_nodes), axis=-1), xp=xp)
    size = xp.max(largest / scale, axis=-1)
    return x_new, y_new, change, size

"""Newton step on the collocation objective (paper Algorithm 1).

docs/algorithm.md, "Newton steps with a modified LDLᵀ", has the unscaled formulas.

All quantities use the residual scaled by h/2 (it has the same minimiser and
keeps the matrices O(1) whatever the segment length):

``r̃_m = (h/2) (f_a − f(t_m, y_m)) + Σ_q X_q D̃[q, m]``,
``ẽ(X) = Σ_m w_m ‖r̃_m‖²``.

With ``A[(i,m),(j,q)] = √w_m (δ_ij D̃[q,m] − (h/2) Φ̃[q,m] J_m[i,j])`` the
weighted residual Jacobian, ``∇ẽ = 2 Aᵀ √W r̃`` and the Gauss–Newton matrix
``H = 2 AᵀA`` (the formulas of docs/algorithm.md times (h/2)²).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .._kernels.blas import BLAS_THREADS_MIN_SIZE, blas_threads_for
from .._kernels.dispatch import newton_kernels
from .estimates import GROWTH_CAP, ROUNDING_ULPS, step_change
from .ldl import modified_ldl_solve
from .picard import node_values

__all__ = [
    "residual",
    "objective",
    "residual_jacobian",
    "gradient",
    "gauss_newton_matrix",
    "directional_slope",
    "newton_slope",
    "newton_step_change",
    "residual_size",
    "newton_direction",
    "collocation_direction",
    "DenseLinearization",
    "residual_measures",
    "candidate_measures",
    "linearised_end_slope",
    "linearised_start",
    "frozen_linearised_start",
    "FROZEN_START_SIZE",
    "jacobian_norm",
    "jacobian_norms",
]


def residual(basis, f_a, f_nodes, half_h, x, *, xp):
    """Scaled residual ``r̃`` at the nodes: (K, n, M)."""
    return (half_h[..., None] * (basis.slope_factor * f_a[..., None] - f_nodes)
            + xp.matmul(x, basis.d_tilde))


def objective(basis, r, size, *, xp):
    """``ẽ = Σ_m w_m ‖r̃_m / s‖²`` per batch member: (K,).

    ``size`` (K,) is the segment's :func:`residual_size` ``s``: dividing by
    it before squaring keeps the squares from overflowing or underflowing
    whatever the magnitude of ``y`` (docs/algorithm.md, "Newton steps"); it
    changes neither the minimiser nor the Newton direction.
    """
    r = r / size[:, None, None]
    return xp.sum(r * r * basis.weights, axis=(-2, -1))


def directional_slope(grad, direction, size, *, xp):
    """``∇ẽ · d`` of the objective scaled by ``size`` (K,): (K,).

    ``grad`` is the unscaled ``∇(Σ w ‖r̃‖²)``; both factors are divided by
    ``s`` before the product, for the same reason as in :func:`objective`.  (On NumPy
    in float64 a numba kernel; ``CHEBPAN_DISABLE_NUMBA=1``: this code.)
    """
    kernels = newton_kernels(xp)
    if kernels is not None and grad.dtype == xp.float64:
        return kernels.slope(grad, direction, size)
    s = size[:, None, None]
    return xp.sum((grad / s) * (direction / s), axis=(-2, -1))


def newton_slope(linear, grad, direction, size, *, xp):
    """``∇ẽ · d`` (K,) along ``direction``, the Newton direction of ``linear`` at the
    iterate of gradient ``grad``: the value a kernel computed with the direction
    (:func:`residual_measures`), else :func:`directional_slope`."""
    kept = getattr(linear, "kept_slope", None)
    slope = None if kept is None else kept(grad, direction)
    return directional_slope(grad, direction, size, xp=xp) if slope is None else slope


def residual_size(y_a, f_a, half_h, *, xp):
    """The size ``s`` of a segment's values: ``max_i max(|y_a,i|, |h/2 f_a,i|)``, (K,).

    Residuals are differences of such values; 1 where all are zero.  (On NumPy in
    float64 a numba kernel; ``CHEBPAN_DISABLE_NUMBA=1``: this code.)
    """
    kernels = newton_kernels(xp)
    if kernels is not None and y_a.dtype == xp.float64 and f_a.shape == y_a.shape:
        return kernels.residual_size(y_a, f_a, half_h)
    size = xp.maximum(xp.abs(y_a), xp.abs(half_h * f_a))
    if size.shape[-1] == 0:
        return xp.ones(size.shape[:1], dtype=size.dtype, device=size.device)
    size = xp.max(size, axis=-1)
    return xp.where(size > 0, size, xp.ones_like(size))


def residual_measures(basis, linear, f_a, f_nodes, half_h, x, size, direction, *, xp,
                      change_at=None):
    """What the Newton iteration needs at an iterate: ``(r̃, ∇ẽ, ẽ, ∇ẽ·d)``.

    :func:`residual`, ``linear.gradient``, :func:`objective` and
    :func:`directional_slope` along ``direction`` (an array of X's shape; zeros
    where there is none yet), the last two as (K,).  ``linear`` is the iterate's
    linearisation; a :class:`DenseLinearization` with numba kernels computes all four
    in one call (``CHEBPAN_DISABLE_NUMBA=1``: this code), and with them the iterate's
    Newton direction, the slope along it and, given ``change_at`` (the iterate's
    ``(y_a, y_nodes, atol, rtol, eps)``), the change it makes, which ``linear`` keeps
    for :meth:`~DenseLinearization.direction`, :func:`newton_slope` and
    :func:`newton_step_change` (a Newton step needs them as soon as its trial point is
    accepted).
    """
    kernels = getattr(linear, "kernels", None)
    if kernels is not None:
        dtype = f_nodes.dtype
        moves_at = None
        if change_at is not None and dtype == xp.float64:
            y_a, y_nodes, atol, rtol, eps = change_at
            moves_at = (y_a, y_nodes, atol, rtol, GROWTH_CAP, ROUNDING_ULPS * eps)
        *values, step, step_slope, moves = kernels.measures_and_direction(
            basis, f_a, f_nodes, half_h, x, linear.jac_nodes, direction, size,
            linear.collocation, moves_at)
        if dtype != xp.float64:
            values, step = [xp.astype(v, dtype) for v in values], None
        linear.keep_direction(values[1], step, step_slope,
                              None if moves is None else (change_at[1], moves))
        return tuple(values)
    r = residual(basis, f_a, f_nodes, half_h, x, xp=xp)
    grad = linear.gradient(r)
    return (r, grad, objective(basis, r, size, xp=xp),
            directional_slope(grad, direction, size, xp=xp))


def newton_step_change(basis, linear, direction, change_at, *, xp):
    """:func:`~chebpan._core.estimates.step_change` ``(change, floor, node values'
    change)`` of ``direction``, the Newton direction of ``linear`` at the iterate
    ``change_at`` ``(y_a, y_nodes, atol, rtol, eps)``: what a kernel computed with the
    direction (:func:`residual_measures`), else computed here."""
    y_a, y_nodes, atol, rtol, eps = change_at
    kept = getattr(linear, "kept_change", None)
    moves = None if kept is None else kept(direction, y_nodes)
    if moves is None:
        moves = step_change(basis, y_a, y_nodes, direction, atol, rtol, eps, xp=xp)
    return moves


def candidate_measures(basis, f_a, f_nodes, half_h, x, jac, size, *, xp):
    """What choosing among candidate iterates needs: ``(ẽ, F finite, J finite)``.

    :func:`objective` of each candidate (K,), and (K,) bools: whether its ``f_nodes``
    and its ``jac`` (any layout with leading axis K; None: not evaluated, then None
    is returned for it) are finite.  On NumPy in float64 one numba pass
    (``CHEBPAN_DISABLE_NUMBA=1``: this code).
    """
    kernels = newton_kernels(xp)
    if kernels is not None and f_nodes.dtype == xp.float64:
        return kernels.candidate_measures(basis, f_a, f_nodes, half_h, x, jac, size)
    value = objective(basis, residual(basis, f_a, f_nodes, half_h, x, xp=xp), size, xp=xp)
    f_finite = xp.all(xp.isfinite(f_nodes), axis=(1, 2))
    if jac is None:
        return value, f_finite, None
    return value, f_finite, xp.all(xp.isfinite(jac), axis=tuple(range(1, jac.ndim)))


def linearised_end_slope(f_end, jac_nodes, end_change, *, xp):
    """``f`` at a segment's end after its end value moved by ``end_change`` (K, n):
    ``f_end + J_end Δy``, Newton's linearisation from ``f_end`` (K, n) and ``J`` at the
    nodes (K, M, n, n) before the move (docs/algorithm.md, "One segment").  (On NumPy in
    float64 a numba kernel; ``CHEBPAN_DISABLE_NUMBA=1``: this code.)"""
    kernels = newton_kernels(xp)
    if kernels is not None and f_end.dtype == jac_nodes.dtype == xp.float64:
        return kernels.linearised_end_slope(f_end, jac_nodes, end_change)
    return f_end + xp.matmul(jac_nodes[:, -1, ...], end_change[..., None])[..., 0]


def jacobian_norms(jac_nodes, *, xp):
    """``max_m ‖J_m‖_∞`` over the nodes of each segment of ``jac_nodes`` (K, M, n, n):
    (K,).  (On NumPy in float64 a numba kernel; ``CHEBPAN_DISABLE_NUMBA=1``: this code.)"""
    kernels = newton_kernels(xp)
    if kernels is not None and jac_nodes.dtype == xp.float64:
        return kernels.jacobian_norms(jac_nodes)
    return xp.max(xp.sum(xp.abs(jac_nodes), axis=-1), axis=(1, 2))


def jacobian_norm(jac_nodes, *, xp):
    """``max_m ‖J_m‖_∞`` over all nodes and segments of ``jac_nodes`` (K, M, n, n): a
    float (the largest of :func:`jacobian_norms`)."""
    norms = jacobian_norms(jac_nodes, xp=xp)
    # (a single solve's one segment: its norm without the cost of a reduction)
    return float(norms[0] if norms.shape[0] == 1 else xp.max(norms))


def residual_jacobian(basis, jac_nodes, half_h, *, xp):
    """Weighted residual Jacobian ``A``: (K, n·M, n·n_free).

    Parameters
    ----------
    jac_nodes : array, shape (K, M, n, n)
        ``J_m = ∂f/∂y`` at the nodes.
    half_h : array, shape (K, 1)
    """
    k, m, n, _ = jac_nodes.shape
    n_free = basis.n_free
    eye = xp.eye(n, dtype=jac_nodes.dtype, device=getattr(jac_nodes, "device", None))
    d_t = xp.matrix_transpose(basis.d_tilde)  # (M, n_free)
    phi_t = xp.matrix_transpose(basis.phi_tilde)
    identity_part = eye[:, None, :, None] * d_t[None, :, None, :]  # (n, M, n, n_free)
    jac_imj = xp.permute_dims(jac_nodes, (0, 2, 1, 3))  # (K, n, M, n) = [k, i, m, j]
    coupling = jac_imj[..., None] * phi_t[None, None, :, None, :]  # (K, n, M, n, n_free)
    h5 = xp.reshape(half_h, (k, 1, 1, 1, 1))
    sqrt_w = basis.sqrt_weights[None, None, :, None, None]
    a = sqrt_w * (identity_part[None, ...] - h5 * coupling)
    return xp.reshape(a, (k, n * m, n * n_free))


def gradient(basis, a, r, *, xp):
    """``∇ẽ = 2 Aᵀ √W r̃`` in the layout of X: (K, n, n_free)."""
    k, n, m = r.shape
    weighted = xp.reshape(r * basis.sqrt_weights, (k, n * m, 1))
    g = 2 * xp.matmul(xp.matrix_transpose(a), weighted)[..., 0]
    return xp.reshape(g, (k, n, basis.n_free))


def gauss_newton_matrix(a, *, xp):
    """``H = 2 AᵀA``: (K, n·n_free, n·n_free)."""
    with blas_threads_for(a.shape[-1]):
        return 2 * xp.matmul(xp.matrix_transpose(a), a)


def newton_direction(h_matrix, grad, *, xp):
    """``d = −(H + E)⁻¹ ∇ẽ`` with the modified LDLᵀ; returns d in X's layout."""
    shape = grad.shape
    flat = xp.reshape(grad, (shape[0], -1))
    step, _ = modified_ldl_solve(h_matrix, flat, xp=xp)
    return -xp.reshape(step, shape)


def collocation_direction(basis, a, r, *, xp):
    """Newton direction of a square basis (``basis.collocation``): a
    collocation solve.

    The fitted nodes m ≥ 1 are as many as the free coefficients (the row of
    τ = −1 is zero), so at the solution the residual vanishes and the step
    solves ``A d = −√W r̃`` exactly, by LU, instead of through ``AᵀA``, whose
    condition number (the square of A's, about ``(h/2)‖J‖`` squared on a stiff
    segment) would force the modified LDLᵀ to perturb the step and reduce
    Newton to linear convergence, and whose forming costs more than the LU.
    None where a matrix is singular (:class:`DenseLinearization` then takes the
    modified-LDLᵀ Gauss–Newton step, which is defined there).
    """
    k, n, m = r.shape
    fitted = slice(1, m)  # (the rows of τ = −1 are zero: weight 0, or Φ̃ = D̃ = 0 there)
    square = xp.reshape(xp.reshape(a, (k, n, m, -1))[:, :, fitted, :],
                        (k, n * (m - 1), -1))
    rhs = xp.reshape((r * basis.sqrt_weights)[..., fitted], (k, n * (m - 1), 1))
    with blas_threads_for(square.shape[-1]):
        try:
            step = xp.linalg.solve(square, rhs)[..., 0]
        except ValueError:  # (NumPy's and CuPy's LinAlgError: an exact zero pivot)
            return None
    return -xp.reshape(step, (k, n, basis.n_free))


class _KeptDirection(NamedTuple):
    """A Newton direction computed with an iterate's measures, and what came with it."""

    grad: Any
    direction: Any
    slope: Any
    y_nodes: Any  # (None: the step change was not computed)
    change: Any


class DenseLinearization:
    """The residual Jacobian at one iterate, with what Newton needs from it.

    ``gradient(r)`` is ``∇ẽ``; ``direction(r, grad)`` the Newton direction:
    the square collocation solve where the basis fits as many nodes as it has free
    coefficients (both bases by default), the modified-LDLᵀ Gauss–Newton step of a
    least-squares fit otherwise.  (:class:`chebpan._rhs.sparse.SparseLinearization`
    and :class:`chebpan._core.structured.StructuredLinearization` have the same
    methods and attributes.)  Every direction is this iterate's own: ``stale`` is
    False and ``factorised`` True.

    On NumPy, numba kernels (:mod:`chebpan._kernels.newton_numba`) form the gradient
    (and :func:`residual_measures`) without ``A``, and the Gauss–Newton or collocation
    direction in one call per batch; ``A`` is built as an array only for systems that
    keep the user's BLAS threads (``CHEBPAN_DISABLE_NUMBA=1``: the array code
    throughout).
    """

    stale = False
    factorised = True

    def __init__(self, basis, jac_nodes, half_h, *, xp):
        self.basis = basis
        self.xp = xp
        self.jac_nodes = jac_nodes
        self.half_h = half_h
        self.collocation = basis.collocation
        size = jac_nodes.shape[-1] * basis.n_free
        self.kernels = newton_kernels(xp) if size < BLAS_THREADS_MIN_SIZE else None
        self._a = None
        self._kept = None  # a _KeptDirection computed with the measures

    def keep_direction(self, grad, direction, slope, change):
        """Keep the direction computed (by a kernel) with ``grad`` (None: none),
        ``∇ẽ·d`` along it (K,) and ``(y_nodes, change)``: the iterate's node values and
        :func:`~chebpan._core.estimates.step_change` of the direction there (None: not
        computed)."""
        y_nodes, change = (None, None) if change is None else change
        self._kept = (None if direction is None
                      else _KeptDirection(grad, direction, slope, y_nodes, change))

    def kept_slope(self, grad, direction):
        """``∇ẽ·d`` kept with ``direction`` at the iterate of ``grad``, else None."""
        kept = self._kept
        if kept is not None and kept.grad is grad and kept.direction is direction:
            return kept.slope
        return None

    def kept_change(self, direction, y_nodes):
        """The step change kept with ``direction`` at the iterate of node values
        ``y_nodes``, else None."""
        kept = self._kept
        if kept is not None and kept.direction is direction and kept.y_nodes is y_nodes:
            return kept.change
        return None

    @property
    def a(self):
        """The weighted residual Jacobian (:func:`residual_jacobian`), built when needed."""
        if self._a is None:
            self._a = residual_jacobian(self.basis, self.jac_nodes, self.half_h, xp=self.xp)
        return self._a

    def gradient(self, r):
        if self.kernels is not None:
            grad = self.kernels.gradient(self.basis, self.jac_nodes, self.half_h, r)
            return self.xp.astype(grad, r.dtype, copy=False)
        return gradient(self.basis, self.a, r, xp=self.xp)

    def direction(self, r, grad):
        basis, xp = self.basis, self.xp
        dtype = r.dtype
        if self._kept is not None and self._kept.grad is grad:
            return self._kept.direction
        if self.kernels is not None:
            step = (self.kernels.collocation_direction(basis, self.jac_nodes, self.half_h, r)
                    if self.collocation else None)
            if step is None:  # (or a singular square system)
                step = self.kernels.direction(basis, self.jac_nodes, self.half_h, grad)
            return xp.astype(step, dtype, copy=False)
        a = self.a
        if dtype == xp.float32:
            # Mixed precision: a float32 state, the linear algebra in float64.  A
            # stiff segment's matrix has a condition number near (h/2)‖J‖ (its
            # square for AᵀA), far beyond what float32 solves to any accuracy.
            a, r, grad = (xp.astype(v, xp.float64) for v in (a, r, grad))
        step = collocation_direction(basis, a, r, xp=xp) if self.collocation else None
        if step is None:  # (or a singular square system)
            step = newton_direction(gauss_newton_matrix(a, xp=xp), grad, xp=xp)
        return xp.astype(step, dtype)


#: Unknowns ``n·n_free`` of a square basis from which the linearised start on NumPy is
#: the frozen-J structured solve (:func:`frozen_linearised_start`) rather than the dense
#: kernel.  Per start, dense kernel / structured solve (one thread): 44 / 42 µs at 80
#: unknowns, 61 / 51 at 93, 119 / 56 at 130, 316 / 61 at 200 (n = 10), 309 / 79 at 196
#: (n = 28); below about 150 the gain is within what the rounding-level changes of a
#: solve's decisions move.
FROZEN_START_SIZE = 150


def _linearised_residual(basis, y_a, f_a, half_h, jac_a, *, xp):
    """``r̃`` (K, n, M) at X = 0 of the ODE linearised at the start,
    ``f ≈ f_a + J_a (y − y_a)``, and that X = 0 (K, n, n_free)."""
    k, n = y_a.shape
    x0 = xp.zeros((k, n, basis.n_free), dtype=y_a.dtype, device=y_a.device)
    y_nodes = node_values(basis, y_a, f_a, half_h, x0, xp=xp)
    f_model = f_a[..., None] + xp.matmul(jac_a, y_nodes - y_a[..., None])
    return residual(basis, f_a, f_model, half_h, x0, xp=xp), x0


def frozen_linearised_start(basis, y_a, f_a, half_h, jac_a, *, xp):
    """:func:`linearised_start` on a square basis by the frozen-J structured solve:
    (K, n, n_free), float64.

    The linearised ODE has the same J, ``J_a``, at every node, so its collocation system
    is the Sylvester equation of docs/algorithm.md, "Structured Newton solves", and the
    frozen solve is the exact step: N/2 shifted n×n factorisations and a back
    substitution, O(N n³ + N² n), where the dense step's LU is O((nN)³).
    """
    from .structured import FrozenJacobianSolver

    r, _ = _linearised_residual(basis, y_a, f_a, half_h, jac_a, xp=xp)
    return FrozenJacobianSolver(basis, jac_a, half_h, xp=xp).direction(r)


def linearised_start(basis, y_a, f_a, half_h, jac_a, *, xp):
    """X of the segment's polynomial for the ODE linearised at its start: (K, n, n_free).

    ``f(t, y) ≈ f_a + J_a (y − y_a)`` with ``jac_a`` (K, n, n), the Jacobian where the
    segment starts (the previous segment's at its end): the residual is then linear in
    X and one Gauss–Newton step from X = 0 minimises it (a linearly implicit predictor,
    exact for linear problems; docs/algorithm.md, "Segment control").  Dense systems
    only (:class:`DenseLinearization`).  On NumPy in float64 one numba call, or from
    ``FROZEN_START_SIZE`` unknowns on a square basis the frozen-J structured solve
    (:func:`frozen_linearised_start`; ``CHEBPAN_DISABLE_NUMBA=1``: this code).
    """
    k, n = y_a.shape
    # (J_a at one node decides the kernel; the array code needs it at every node)
    linear = DenseLinearization(basis, jac_a[:, None, ...], half_h, xp=xp)
    if linear.kernels is not None and y_a.dtype == xp.float64:
        if linear.collocation and n * basis.n_free >= FROZEN_START_SIZE:
            start = frozen_linearised_start(basis, y_a, f_a, half_h, jac_a, xp=xp)
            if bool(xp.all(xp.isfinite(start))):  # (else a singular shifted matrix)
                return start
        return linear.kernels.linearised_start(basis, f_a, half_h, jac_a, linear.collocation)
    linear = DenseLinearization(
        basis, xp.broadcast_to(jac_a[:, None, ...], (k, basis.n_nodes, n, n)), half_h, xp=xp)
    r, x0 = _linearised_residual(basis, y_a, f_a, half_h, jac_a, xp=xp)
    return x0 + linear.direction(r, linear.gradient(r))

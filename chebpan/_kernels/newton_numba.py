"""The dense Gauss–Newton step (:class:`chebpan._core.newton.DenseLinearization`) as numba
kernels.

:func:`gradient` forms ``∇ẽ = 2 Aᵀ √W r̃`` from ``J`` at the nodes without building
``A``; :func:`direction` builds each instance's ``A`` in a reused buffer, ``H = 2 AᵀA``
as one BLAS product, and factorises and solves with the modified LDLᵀ of
:mod:`~chebpan._kernels.ldl_numba`, all in one compiled call instead of a dozen array
operations over (K, n, M, n, n_free) temporaries.  Imported lazily, for NumPy arrays only.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .basis_arrays import basis_arrays
from .estimates_numba import _step_change, per_component
from .ldl_numba import _factor, _solve

#: float64's machine epsilon (the modified LDLᵀ's threshold).
EPS = float(np.finfo(np.float64).eps)

__all__ = ["gradient", "direction", "collocation_direction", "slope", "candidate_measures",
           "measures_and_direction", "residual_size", "linearised_start", "jacobian_norms",
           "linearised_end_slope"]


@numba.njit(cache=True, error_model="numpy")
def _gradient_of(k, d_tilde, phi_tilde, weights, jac, half_h, r, grad, transposed):
    # grad[i, q] = 2 Σ_m w_m (r[i, m] D̃[q, m] − (h/2) Φ̃[q, m] Σ_j J_m[j, i] r[j, m]),
    # instance k; ``transposed`` is scratch of M values ((Jᵀ r) of one component).
    n, n_nodes = r.shape[1], r.shape[2]
    n_free = d_tilde.shape[0]
    h = half_h[k, 0]
    for i in range(n):
        for m in range(n_nodes):
            total = 0.0
            for j in range(n):
                total += jac[k, m, j, i] * r[k, j, m]
            transposed[m] = h * total
        for q in range(n_free):
            total = 0.0
            for m in range(n_nodes):
                total += weights[m] * (r[k, i, m] * d_tilde[q, m]
                                       - phi_tilde[q, m] * transposed[m])
            grad[k, i, q] = 2.0 * total


@numba.njit(cache=True, error_model="numpy")
def _gradient(d_tilde, phi_tilde, weights, jac, half_h, r, grad):
    transposed = np.empty(r.shape[2])
    for k in range(r.shape[0]):
        _gradient_of(k, d_tilde, phi_tilde, weights, jac, half_h, r, grad, transposed)


@numba.njit(cache=True, error_model="numpy")
def _slope(grad, direction, size, slope):
    # ∇ẽ·d / size², each factor divided by size first (see directional_slope).
    k_count, n, n_free = grad.shape
    for k in range(k_count):
        inverse = 1.0 / size[k]
        total = 0.0
        for i in range(n):
            for q in range(n_free):
                total += (grad[k, i, q] * inverse) * (direction[k, i, q] * inverse)
        slope[k] = total


@numba.njit(cache=True, error_model="numpy")
def _residual_of(k, row, d_tilde, slope_factor, f_a, f_nodes, half_h, x, r_k):
    # r̃ = (h/2)(s f_a − F) + X D̃ of instance k into r_k (n, M); f_a and h/2 of `row`.
    n, n_nodes = r_k.shape
    n_free = d_tilde.shape[0]
    h = half_h[row, 0]
    for i in range(n):
        start = slope_factor * f_a[row, i]
        for m in range(n_nodes):
            total = h * (start - f_nodes[k, i, m])
            for q in range(n_free):
                total += x[k, i, q] * d_tilde[q, m]
            r_k[i, m] = total


@numba.njit(cache=True, error_model="numpy")
def _objective_of(r_k, weights, size):
    # ẽ = Σ w ‖r̃ / size‖² of one instance's residual r_k (n, M).
    inverse = 1.0 / size
    total = 0.0
    for i in range(r_k.shape[0]):
        for m in range(r_k.shape[1]):
            scaled = r_k[i, m] * inverse
            total += weights[m] * scaled * scaled
    return total


@numba.njit(cache=True, error_model="numpy")
def _measures(d_tilde, phi_tilde, weights, slope_factor, f_a, f_nodes, half_h, x, jac,
              direction, size, r, grad, value, slope):
    # r̃, ẽ, ∇ẽ, and ∇ẽ·d / size².
    transposed = np.empty(f_nodes.shape[2])
    for k in range(f_nodes.shape[0]):
        _residual_of(k, k, d_tilde, slope_factor, f_a, f_nodes, half_h, x, r[k])
        value[k] = _objective_of(r[k], weights, size[k])
        _gradient_of(k, d_tilde, phi_tilde, weights, jac, half_h, r, grad, transposed)
    _slope(grad, direction, size, slope)


@numba.njit(cache=True, error_model="numpy")
def _residual_size(y_a, f_a, half_h, size):
    # max_i max(|y_a,i|, |h/2 f_a,i|) per row, 1 where that is 0.
    k_count, n = y_a.shape
    for k in range(k_count):
        h = abs(half_h[k, 0] if half_h.shape[0] > 1 else half_h[0, 0])
        largest = 0.0
        for i in range(n):
            largest = max(largest, abs(y_a[k, i]), h * abs(f_a[k, i]))
        size[k] = largest if largest > 0 else 1.0


@numba.njit(cache=True, error_model="numpy")
def _candidates(d_tilde, weights, slope_factor, f_a, f_nodes, half_h, x, size, jac_flat,
                value, f_finite, jac_finite):
    # Per candidate: ẽ (as _measures), and whether its F and its J (any layout,
    # flattened to (K, ·)) are finite.  f_a, half_h and size have K rows, or one (a
    # segment's, for all its candidates).
    k_count, n, n_nodes = f_nodes.shape
    r_k = np.empty((n, n_nodes))
    for k in range(k_count):
        row = k if f_a.shape[0] > 1 else 0
        _residual_of(k, row, d_tilde, slope_factor, f_a, f_nodes, half_h, x, r_k)
        value[k] = _objective_of(r_k, weights, size[row])
        f_finite[k] = np.isfinite(f_nodes[k]).all()
        jac_finite[k] = np.isfinite(jac_flat[k]).all()


@numba.njit(cache=True, error_model="numpy")
def _residual_jacobian_of(k, d_tilde, phi_tilde, sqrt_weights, jac, half_h, first, a):
    # Instance k's weighted residual Jacobian on the nodes m ≥ first, into a:
    # A[(j, m), (i, q)] = √w_m (δ_ij D̃[q, m] − (h/2) Φ̃[q, m] J_m[j, i]),
    # row j (M − first) + m − first, column i n_free + q.
    n_nodes, n = jac.shape[1], jac.shape[2]
    n_free = d_tilde.shape[0]
    rows = n_nodes - first
    h = half_h[k, 0]
    for j in range(n):
        for m in range(first, n_nodes):
            row = j * rows + m - first
            for i in range(n):
                coupling = h * jac[k, m, j, i]
                for q in range(n_free):
                    value = -coupling * phi_tilde[q, m]
                    if i == j:
                        value += d_tilde[q, m]
                    a[row, i * n_free + q] = sqrt_weights[m] * value


@numba.njit(cache=True, error_model="numpy")
def _direction(d_tilde, phi_tilde, sqrt_weights, jac, half_h, grad, step, eps):
    # (H + E) step = −∇ẽ with H = 2 AᵀA, A of _residual_jacobian_of.
    k_count, n_nodes, n, _ = jac.shape
    n_free = d_tilde.shape[0]
    size = n * n_free
    a = np.empty((n * n_nodes, size))
    work = np.empty((size, size))
    scratch = np.empty(size)
    d = np.empty(size)
    e = np.empty(size)
    y = np.empty((1, size))
    perm = np.empty(size, dtype=np.int64)
    rhs = np.empty((size, 1))
    out = np.empty((size, 1))
    for k in range(k_count):
        _residual_jacobian_of(k, d_tilde, phi_tilde, sqrt_weights, jac, half_h, 0, a)
        hessian = np.dot(a.T, a)
        for row in range(size):
            for col in range(row + 1):
                work[row, col] = 2.0 * hessian[row, col]
        _factor(work, perm, d, e, scratch, eps)
        for i in range(n):
            for q in range(n_free):
                rhs[i * n_free + q, 0] = grad[k, i, q]
        _solve(work, perm, d, rhs, out, y, True)
        for i in range(n):
            for q in range(n_free):
                step[k, i, q] = -out[i * n_free + q, 0]


@numba.njit(cache=True, error_model="numpy")
def _collocation(d_tilde, phi_tilde, sqrt_weights, jac, half_h, r, step):
    # The square system of a collocation basis: rows (j, m) for the nodes m ≥ 1 (the
    # row of τ = −1 is zero), A d = −√W r̃, by LU (LAPACK through numba).  False where
    # a matrix is singular (an exact zero pivot): the caller takes the modified LDLᵀ
    # Gauss–Newton step instead.
    k_count, n_nodes, n, _ = jac.shape
    n_free = d_tilde.shape[0]
    fitted = n_nodes - 1
    a = np.empty((n * fitted, n * n_free))
    rhs = np.empty(n * fitted)
    for k in range(k_count):
        _residual_jacobian_of(k, d_tilde, phi_tilde, sqrt_weights, jac, half_h, 1, a)
        for j in range(n):
            for m in range(1, n_nodes):
                rhs[j * fitted + m - 1] = sqrt_weights[m] * r[k, j, m]
        try:
            solution = np.linalg.solve(a, rhs)
        except Exception:  # (numba: LinAlgError, singular to machine precision)
            return False
        for i in range(n):
            for q in range(n_free):
                step[k, i, q] = -solution[i * n_free + q]
    return True


@numba.njit(cache=True, error_model="numpy")
def _measures_and_direction(d_tilde, phi_tilde, weights, sqrt_weights, slope_factor, f_a,
                            f_nodes, half_h, x, jac, direction, size, collocation, eps, r,
                            grad, value, slope, step, step_slope, y_a, y_nodes, atol, rtol,
                            growth_cap, floor_factor, change, floor, moved):
    # _measures, then (where they are all finite) the Newton direction at the iterate,
    # ∇ẽ along it and (with y_nodes of K rows) the change of the node values it makes:
    # a Newton step needs them right after its trial point is accepted.
    _measures(d_tilde, phi_tilde, weights, slope_factor, f_a, f_nodes, half_h, x, jac,
              direction, size, r, grad, value, slope)
    for k in range(value.shape[0]):
        if not (math.isfinite(value[k]) and math.isfinite(slope[k])):
            return False
    if not (collocation and _collocation(d_tilde, phi_tilde, sqrt_weights, jac, half_h, r,
                                         step)):
        _direction(d_tilde, phi_tilde, sqrt_weights, jac, half_h, grad, step, eps)
    _slope(grad, step, size, step_slope)
    if y_nodes.shape[0] == step.shape[0]:
        _step_change(y_a, y_nodes, step, phi_tilde, atol, rtol, growth_cap, floor_factor,
                     change, floor, moved)
    return True


@numba.njit(cache=True, error_model="numpy")
def _linearised_start(d_tilde, phi_tilde, weights, sqrt_weights, tau, slope_factor, f_a,
                      half_h, jac_a, collocation, eps, step):
    # The Newton step from X = 0 with f(y) = f_a + J_a (y − y_a): at X = 0,
    # y_m − y_a = s (h/2) f_a (1 + τ_m), so r̃[i, m] = (h/2)((s − 1) f_a,i
    # − s (h/2)(1 + τ_m) (J_a f_a)_i), and J is J_a at every node.
    k_count, n = f_a.shape
    n_nodes = tau.shape[0]
    jac = np.empty((k_count, n_nodes, n, n))
    r = np.empty((k_count, n, n_nodes))
    grad = np.empty(step.shape)
    for k in range(k_count):
        h = half_h[k, 0]
        for i in range(n):
            slope = 0.0
            for j in range(n):
                slope += jac_a[k, i, j] * f_a[k, j]
            for m in range(n_nodes):
                r[k, i, m] = h * ((slope_factor - 1.0) * f_a[k, i]
                                  - slope_factor * h * (1.0 + tau[m]) * slope)
        for m in range(n_nodes):
            jac[k, m] = jac_a[k]
    if not (collocation and _collocation(d_tilde, phi_tilde, sqrt_weights, jac, half_h, r,
                                         step)):
        _gradient(d_tilde, phi_tilde, weights, jac, half_h, r, grad)
        _direction(d_tilde, phi_tilde, sqrt_weights, jac, half_h, grad, step, eps)


def linearised_start(basis, f_a, half_h, jac_a, collocation):
    """:func:`chebpan._core.newton.linearised_start` (float64): X (K, n, n_free), for
    ``f_a`` (K, n), ``half_h`` (K, 1), ``jac_a`` (K, n, n)."""
    step = np.empty((*f_a.shape, basis.n_free))
    _linearised_start(*_basis_arrays(basis, "d_tilde", "phi_tilde", "weights", "sqrt_weights",
                                     "tau"),
                      float(basis.slope_factor),
                      *(np.ascontiguousarray(a, dtype=np.float64) for a in (f_a, half_h, jac_a)),
                      bool(collocation), EPS, step)
    return step


def _basis_arrays(basis, *names):
    """The named arrays of ``basis`` as contiguous float64 (built once per basis)."""
    return basis_arrays(basis, names, lambda b: [
        np.ascontiguousarray(getattr(b, name), dtype=np.float64) for name in names])


def gradient(basis, jac_nodes, half_h, r):
    """``∇ẽ`` (K, n, n_free) as :func:`chebpan._core.newton.gradient` of
    :func:`~chebpan._core.newton.residual_jacobian` (float64 in, float64 out)."""
    grad = np.empty((*r.shape[:2], basis.n_free))
    _gradient(*_basis_arrays(basis, "d_tilde", "phi_tilde", "weights"),
              *(np.ascontiguousarray(a, dtype=np.float64) for a in (jac_nodes, half_h, r)),
              grad)
    return grad


def direction(basis, jac_nodes, half_h, grad):
    """The modified-LDLᵀ Gauss–Newton direction (K, n, n_free), float64, as
    :func:`chebpan._core.newton.newton_direction` of the Gauss–Newton matrix."""
    step = np.empty(grad.shape)
    _direction(*_basis_arrays(basis, "d_tilde", "phi_tilde", "sqrt_weights"),
               *(np.ascontiguousarray(a, dtype=np.float64) for a in (jac_nodes, half_h, grad)),
               step, EPS)
    return step


def measures_and_direction(basis, f_a, f_nodes, half_h, x, jac_nodes, direction, size,
                           collocation, change_at=None):
    """``r̃``, ``∇ẽ``, ``ẽ`` and ``∇ẽ·d`` at an iterate, float64, as
    :func:`chebpan._core.newton.residual_measures` computes them with the array code,
    and in the same call the iterate's Newton direction (:func:`collocation_direction`
    if ``collocation``, else :func:`direction`), :func:`slope` along it and, with
    ``change_at`` ``(y_a, y_nodes, atol, rtol, growth_cap, floor_factor)`` of the
    iterate, the change it makes (:func:`chebpan._kernels.estimates_numba.step_change`:
    change, floor, node values' change); the last three None where the measures are
    not finite, the change None without ``change_at``."""
    arrays = [np.ascontiguousarray(a, dtype=np.float64)
              for a in (f_a, f_nodes, half_h, x, jac_nodes, direction, size)]
    k_count, n, n_nodes = f_nodes.shape
    r = np.empty((k_count, n, n_nodes))
    grad = np.empty((k_count, n, basis.n_free))
    value = np.empty(k_count)
    slope = np.empty(k_count)
    step = np.empty(grad.shape)
    step_slope = np.empty(k_count)
    if change_at is None:
        y_a = np.empty((0, n))
        y_nodes = moved = np.empty((0, n, n_nodes))
        growth_cap = floor_factor = 0.0
        tolerances = (np.empty(0), np.empty(0))
    else:
        y_a, y_nodes, atol, rtol, growth_cap, floor_factor = change_at
        y_a = np.ascontiguousarray(y_a, dtype=np.float64)
        y_nodes = np.ascontiguousarray(y_nodes, dtype=np.float64)
        tolerances = (per_component(atol, n, np.float64), per_component(rtol, n, np.float64))
        moved = np.empty((k_count, n, n_nodes))
    change = np.zeros(k_count)
    floor = np.zeros(k_count)
    done = _measures_and_direction(
        *_basis_arrays(basis, "d_tilde", "phi_tilde", "weights", "sqrt_weights"),
        float(basis.slope_factor), *arrays, bool(collocation), EPS, r, grad, value, slope,
        step, step_slope, y_a, y_nodes, *tolerances, float(growth_cap), float(floor_factor),
        change, floor, moved)
    if not done:
        step = step_slope = None
    moves = None if not done or change_at is None else (change, floor, moved)
    return r, grad, value, slope, step, step_slope, moves


def collocation_direction(basis, jac_nodes, half_h, r):
    """A square basis' Newton direction (K, n, n_free), float64, as
    :func:`chebpan._core.newton.collocation_direction` of the residual Jacobian; None
    where a matrix is singular."""
    step = np.empty((*r.shape[:2], basis.n_free))
    solved = _collocation(
        *_basis_arrays(basis, "d_tilde", "phi_tilde", "sqrt_weights"),
        *(np.ascontiguousarray(a, dtype=np.float64) for a in (jac_nodes, half_h, r)), step)
    return step if solved else None


def slope(grad, direction, size):
    """``∇ẽ·d`` scaled by ``size`` (K,), float64, as
    :func:`chebpan._core.newton.directional_slope` computes it with the array code."""
    values = np.empty(grad.shape[0])
    _slope(*(np.ascontiguousarray(a, dtype=np.float64) for a in (grad, direction, size)),
           values)
    return values


def candidate_measures(basis, f_a, f_nodes, half_h, x, jac, size):
    """``ẽ`` (K,) and whether each candidate's F and J (None: not evaluated) are finite,
    float64 and bools, in one pass, as :func:`chebpan._core.newton.candidate_measures`
    computes them with the array code."""
    k_count = f_nodes.shape[0]
    if not f_a.shape[0] == half_h.shape[0] == size.shape[0] in (1, k_count):
        raise ValueError("f_a, half_h and size need K rows or one")
    value = np.empty(k_count)
    f_finite = np.empty(k_count, dtype=np.bool_)
    jac_finite = np.empty(k_count, dtype=np.bool_)
    jac_flat = np.empty((k_count, 0)) if jac is None else jac.reshape(k_count, -1)
    _candidates(*_basis_arrays(basis, "d_tilde", "weights"), float(basis.slope_factor),
                *(np.ascontiguousarray(a, dtype=np.float64)
                  for a in (f_a, f_nodes, half_h, x, size, jac_flat)),
                value, f_finite, jac_finite)
    return value, f_finite, None if jac is None else jac_finite


@numba.njit(cache=True)
def _linearised_end_slope(f_end, jac, end_change, out):
    k_count, n_nodes, n, _ = jac.shape
    for k in range(k_count):
        for i in range(n):
            total = 0.0
            for j in range(n):
                total += jac[k, n_nodes - 1, i, j] * end_change[k, j]
            out[k, i] = f_end[k, i] + total


def linearised_end_slope(f_end, jac_nodes, end_change):
    """:func:`chebpan._core.newton.linearised_end_slope` (float64): (K, n)."""
    out = np.empty(f_end.shape)
    _linearised_end_slope(f_end, jac_nodes, end_change, out)
    return out


@numba.njit(cache=True)
def _jacobian_norms(jac, norms):
    k_count, n_nodes, n, _ = jac.shape
    for k in range(k_count):
        largest = 0.0
        for m in range(n_nodes):
            for i in range(n):
                total = 0.0
                for j in range(n):
                    total += abs(jac[k, m, i, j])
                if total > largest or total != total:  # (NaN propagates, as in NumPy's max)
                    largest = total
        norms[k] = largest


def jacobian_norms(jac_nodes):
    """:func:`chebpan._core.newton.jacobian_norms` (float64): (K,)."""
    if jac_nodes.size == 0:
        raise ValueError("jacobian_norms of an empty array")  # (as NumPy's max)
    norms = np.empty(jac_nodes.shape[0])
    _jacobian_norms(jac_nodes, norms)
    return norms


def residual_size(y_a, f_a, half_h):
    """:func:`chebpan._core.newton.residual_size` (float64): (K,)."""
    size = np.empty(y_a.shape[0])
    _residual_size(*(np.ascontiguousarray(a, dtype=np.float64) for a in (y_a, f_a, half_h)),
                   size)
    return size

"""Chebyshev basis on one segment: nodes, weights and the matrices of the iteration.

docs/algorithm.md, "The mathematics of one segment", derives them.

Everything here depends only on (N, M, dtype, namespace, device) and is built
once and cached.  The reference interval is ``tau in [-1, 1]``; a segment
``[t_a, t_a + h]`` is mapped by ``t = t_a + h (tau + 1) / 2``.

Notation (rows are polynomial indices, columns are nodes):

``Phi[n, m]``      ``T_n(tau_m)``                                   (N, M)
``dPhi[n, m]``     ``T_n'(tau_m)``                                  (N, M)
``Phi_t[n, m]``    ``T_n(tau_m) - T_n(-1) - T_n'(-1) (1 + tau_m)``  (N-2, M), n >= 2
``D_t[n, m]``      ``T_n'(tau_m) - T_n'(-1)``                       (N-2, M), n >= 2
``P``              ``(D_t W D_tᵀ)^{-1} D_t W``                      (N-2, M)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ChebyshevBasis",
    "get_basis",
    "cgl_nodes",
    "clenshaw_curtis_weights",
    "chebyshev_values",
    "restrict",
]


def cgl_nodes(n_nodes: int) -> list[float]:
    """Chebyshev–Gauss–Lobatto nodes ``-cos(pi m / (M-1))`` in ascending order.

    Computed as ``sin(pi (2m - M + 1) / (2 (M - 1)))``, which is exactly
    antisymmetric and hits -1, 0 and +1 exactly.
    """
    if n_nodes < 2:
        raise ValueError("at least two nodes are needed")
    last = n_nodes - 1
    return [math.sin(math.pi * (2 * m - last) / (2 * last)) for m in range(n_nodes)]


def clenshaw_curtis_weights(n_nodes: int) -> list[float]:
    """Clenshaw–Curtis weights for the nodes of :func:`cgl_nodes`.

    They integrate polynomials of degree ``M - 1`` exactly on [-1, 1]
    (Waldvogel's closed form, evaluated in double precision).
    """
    last = n_nodes - 1
    weights = []
    for m in range(n_nodes):
        theta = math.pi * m / last
        total = 1.0
        for j in range(1, last // 2 + 1):
            b = 1.0 if 2 * j == last else 2.0
            total -= b * math.cos(2 * j * theta) / (4 * j * j - 1)
        c = 1.0 if m in (0, last) else 2.0
        weights.append(c * total / last)
    return weights


def chebyshev_values(n_coeffs: int, tau, *, xp):
    """``T_n(tau)`` and ``T_n'(tau)`` for n < N by the three-term recurrences.

    Parameters
    ----------
    n_coeffs : int
        N, the number of polynomials.
    tau : array, shape (M,)
        Points in [-1, 1] (extrapolation works but grows like T_n).

    Returns
    -------
    values, derivatives : arrays, shape (N, M)
        ``T_n(tau_m)`` and ``T_n'(tau_m) = n U_{n-1}(tau_m)``.
    """
    ones = xp.ones_like(tau)
    t_rows = [ones, tau]
    u_rows = [ones, 2 * tau]  # U_0, U_1
    for _ in range(2, n_coeffs):
        t_rows.append(2 * tau * t_rows[-1] - t_rows[-2])
        u_rows.append(2 * tau * u_rows[-1] - u_rows[-2])
    values = xp.stack(t_rows[:n_coeffs])
    derivatives = xp.stack([0 * tau] + [n * u_rows[n - 1] for n in range(1, n_coeffs)])
    return values, derivatives


def restrict(coeffs, length_ratio, *, xp):
    """Coefficients of the same polynomial on the first part of its interval.

    ``coeffs`` (n, N) on [-1, 1]; the new interval is [-1, -1 + 2 r],
    ``r = length_ratio``. Exact up to rounding (a polynomial of degree N-1
    restricted to a subinterval is one of degree N-1).
    """
    n_coeffs = coeffs.shape[-1]
    # Interpolate at N Chebyshev points of the new interval.
    nodes = xp.asarray([math.cos(math.pi * (k + 0.5) / n_coeffs) for k in range(n_coeffs)], dtype=coeffs.dtype)
    old_tau = -1 + length_ratio * (nodes + 1)
    values_old, _ = chebyshev_values(n_coeffs, old_tau, xp=xp)  # (N, P)
    values_new, _ = chebyshev_values(n_coeffs, nodes, xp=xp)
    samples = xp.matmul(coeffs, values_old)  # (n, P)
    return xp.matrix_transpose(xp.linalg.solve(xp.matrix_transpose(values_new),
                                               xp.matrix_transpose(samples)))


@dataclass(frozen=True)
class ChebyshevBasis:
    """The constant matrices of one (N, M) discretisation, in one namespace.

    Attributes
    ----------
    n_coeffs, n_nodes : int
        N and M.
    tau : array, shape (M,)
        Ascending CGL nodes; ``tau[0] == -1``, ``tau[-1] == 1``.
    weights, sqrt_weights : arrays, shape (M,)
        Clenshaw–Curtis weights and their square roots.
    phi_tilde, d_tilde : arrays, shape (n_free, M)
        ``Φ̃`` and ``D̃`` of docs/algorithm.md (n_free = N-2 in the paper's basis).
    picard : array, shape (n_free, M)
        The Picard operator ``P = (D̃ W D̃ᵀ)^{-1} D̃ W``.
    end_value, end_slope : arrays, shape (n_free,)
        ``Φ̃[:, -1]`` and ``D̃[:, -1]``: contributions of X to y(+1) and y'(+1).
    t_minus1, dt_minus1 : arrays, shape (N,)
        ``T_n(-1) = (-1)^n`` and ``T_n'(-1) = (-1)^(n+1) n^2``.
    n_fixed : int
        Coefficients fixed by the start: 2 (value and slope, the paper's
        basis) or 1 (value only, the stiff basis).  The free rows are
        ``n_fixed … N-1``; ``n_free = N - n_fixed``.
    """

    n_coeffs: int
    n_nodes: int
    tau: Any
    weights: Any
    sqrt_weights: Any
    phi_tilde: Any
    d_tilde: Any
    picard: Any
    end_value: Any
    end_slope: Any
    t_minus1: Any
    dt_minus1: Any
    n_fixed: int = 2

    @property
    def n_free(self) -> int:
        return self.n_coeffs - self.n_fixed

    @property
    def first_node_offset(self):
        """``1 + τ₁``: how far the first node after the start lies from it in τ (in time,
        ``h/2`` times this)."""
        return 1 + self.tau[1]

    @property
    def square(self) -> bool:
        """Whether the fitted nodes are as many as the free coefficients (the stiff
        basis: collocation, a square Newton system)."""
        return self.n_fixed == 1 and self.n_nodes - 1 == self.n_free

    @property
    def collocation(self) -> bool:
        """Whether the fitted nodes (m ≥ 1; the residual at τ = −1 vanishes by
        construction) are as many as the free coefficients: the Newton system is square
        and its step a collocation solve (both bases with their default ``n_nodes``)."""
        return self.n_nodes - 1 == self.n_free

    @property
    def slope_factor(self) -> float:
        """1 where the start slope ``f_a`` enters the polynomial, 0 for the stiff basis."""
        return 1.0 if self.n_fixed == 2 else 0.0


def _build(n_coeffs: int, n_nodes: int, xp, dtype, device, stiff: bool) -> ChebyshevBasis:
    if n_coeffs < 3:
        raise ValueError("`n_coeffs` must be at least 3.")
    if n_nodes < n_coeffs - 1:
        raise ValueError("`n_nodes` must be at least `n_coeffs - 1`.")
    # Build in float64 whatever the working dtype, then cast once.
    f64 = xp.float64
    tau = xp.asarray(cgl_nodes(n_nodes), dtype=f64, device=device)
    weights = xp.asarray(clenshaw_curtis_weights(n_nodes), dtype=f64, device=device)
    values, slopes = chebyshev_values(n_coeffs, tau, xp=xp)
    n = xp.asarray(list(range(n_coeffs)), dtype=f64, device=device)
    t_minus1 = xp.asarray([(-1.0) ** k for k in range(n_coeffs)], dtype=f64, device=device)
    dt_minus1 = -t_minus1 * n * n
    if stiff:
        n_fixed = 1
        phi_tilde = (values - t_minus1[:, None])[1:, :]
        d_tilde = slopes[1:, :]
        # The start is fixed; its residual (f(y_a) far off the slow manifold
        # on a stiff problem) is not fitted.
        weights = xp.concat([xp.zeros_like(weights[:1]), weights[1:]])
    else:
        n_fixed = 2
        phi_tilde = (values - t_minus1[:, None] - dt_minus1[:, None] * (1 + tau)[None, :])[2:, :]
        d_tilde = (slopes - dt_minus1[:, None])[2:, :]
    # P solves the weighted least-squares problem  min ‖W^½ (D̃ᵀ X − G)‖ column by
    # column.  Going through QR of W^½ D̃ᵀ keeps the condition number at cond(D̃)
    # instead of squaring it as the normal equations would.
    sqrt_w = xp.sqrt(weights)
    design = sqrt_w[:, None] * xp.matrix_transpose(d_tilde)  # (M, n_free)
    q, r = xp.linalg.qr(design)
    picard = xp.linalg.solve(r, xp.matrix_transpose(q) * sqrt_w[None, :])
    cast = lambda a: xp.astype(a, dtype)  # noqa: E731
    return ChebyshevBasis(
        n_coeffs=n_coeffs,
        n_nodes=n_nodes,
        tau=cast(tau),
        weights=cast(weights),
        sqrt_weights=cast(sqrt_w),
        phi_tilde=cast(phi_tilde),
        d_tilde=cast(d_tilde),
        picard=cast(picard),
        end_value=cast(phi_tilde[:, -1]),
        end_slope=cast(d_tilde[:, -1]),
        t_minus1=cast(t_minus1),
        dt_minus1=cast(dt_minus1),
        n_fixed=n_fixed,
    )


_CACHE: dict = {}


def get_basis(n_coeffs: int, n_nodes: int, *, xp, dtype, device=None,
              stiff: bool = False) -> ChebyshevBasis:
    """The cached :class:`ChebyshevBasis` for (N, M, dtype, namespace, device).

    ``stiff=True`` gives the value-only basis (see the module docstring).

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> b = get_basis(8, 7, xp=xp, dtype=xp.float64)
    >>> b.phi_tilde.shape, float(b.tau[0]), float(b.tau[-1])
    ((6, 7), -1.0, 1.0)
    """
    key = (n_coeffs, n_nodes, xp.__name__, str(dtype), str(device), stiff)
    basis = _CACHE.get(key)
    if basis is None:
        basis = _CACHE[key] = _build(n_coeffs, n_nodes, xp, dtype, device, stiff)
    return basis

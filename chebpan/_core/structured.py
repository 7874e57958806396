"""Newton directions of the stiff basis without the dense collocation matrix.

docs/algorithm.md, "Structured Newton solves", has the mathematics.  In short:
on the stiff basis (``n_fixed == 1``, ``n_free = M − 1``) the Newton step
solves, over the fitted nodes m ≥ 1 (the √w row scaling cancels in a square
solve),

``Σ_q X[i,q] D̃[q,m] − (h/2) Σ_j J_m[i,j] Σ_q X[j,q] Φ̃[q,m] = R[i,m]``.

With the node values ``V = X Φ̃_f`` (``Φ̃_f``, ``D̃_f`` the fitted columns; Φ̃_f
is invertible, cond ≤ 10 for N ≤ 48) and the nodal differentiation matrix
``G = Φ̃_f⁻¹ D̃_f``, and with J frozen (the same at all nodes) this is the
Sylvester equation ``V G − (h/2) J V = R``.  The complex Schur form
``G = Q T Q*`` (unitary Q, so no digits are lost, unlike an eigenvector basis)
turns it into ``U T − (h/2) J U = R Q`` for ``U = V Q``, solved column by
column: ``(T_kk I − (h/2) J) U_k = (R Q)_k − Σ_{l<k} T_lk U_l``.  The N − 1
shifted n×n matrices are factorised once per (basis, h, J); a solve then costs
O(N n² + N² n).  G is real, so its eigenvalues come in conjugate pairs and the
factors of one shift of a pair serve the other (conjugated): about N/2
factorisations.
"""

from __future__ import annotations

import math

import array_api_compat

from .._kernels.dispatch import schur_kernels

__all__ = [
    "collocation_schur",
    "frozen_jacobian",
    "FrozenJacobianSolver",
    "structured_gradient",
    "collocation_product",
    "preconditioned_gmres",
    "StructuredLinearization",
]

#: Contraction ratio of the node-value changes above which the simplified
#: Newton iteration refactorises at the current iterate (docs/algorithm.md).
REFACTOR_RHO = 0.5

#: GMRES of the Krylov directions: relative residual, most iterations, and the
#: iterations above which the frozen-J preconditioner is refactorised.
KRYLOV_RTOL = 1e-6
KRYLOV_MAX = 24
KRYLOV_REFRESH = 8

#: Unknowns ``n·(N−1)`` of the stiff basis' Newton system from which
#: ``newton_linear_solver="auto"`` uses the structured (Krylov) directions: where
#: a Krylov direction with kept factors (4–5 GMRES iterations, ~0.8–1 ms, mostly
#: Python overhead) costs less than a dense Newton iteration (build A, LU):
#: n = 7–8 at N = 32 (bench/newton_cost.py, docs/benchmarks.md).
STRUCTURED_MIN_SIZE = 256

_SCHUR_CACHE: dict = {}


class _Schur:
    """The constant matrices of the structured solve for one stiff basis, in ``xp``."""

    def __init__(self, n_coeffs, n_nodes, stiff, xp, device):
        # Built on the host in float64 whatever the namespace of the solve: the
        # Schur form is not part of the array API.
        from .._kernels.schur import schur_constants

        constants = schur_constants(n_coeffs, n_nodes, stiff)
        self.size = len(constants["rep"])
        self.rep = constants["rep"]
        self.conj = constants["conj"]
        self.t_host = constants["t"]
        asarray = lambda a: xp.asarray(a, device=device)  # noqa: E731
        self.q = asarray(constants["q"])
        self.t = asarray(constants["t"])
        # X = Re(U Q* Φ̃_f⁻¹): back to coefficients in one product.
        self.back = asarray(constants["back"])
        self.shifts = asarray(constants["shifts"])
        # The real Schur form, for NumPy's compiled back substitution (host arrays).
        for name in ("q_real", "t_real", "back_real", "block_start", "block_size",
                     "block_v", "block_w", "block_shifts"):
            setattr(self, name, constants[name])


def collocation_schur(basis, *, xp):
    """The cached Schur data of the square ``basis`` (N, M) in namespace ``xp``: the
    stiff basis, or the paper's with as many fitted nodes as free coefficients (the
    same Sylvester structure with its own Φ̃_f and D̃_f)."""
    if not basis.collocation:
        raise ValueError("the structured solve needs a square basis")
    device = getattr(basis.tau, "device", None)
    stiff = basis.n_fixed == 1
    key = (basis.n_coeffs, basis.n_nodes, stiff, xp.__name__, str(device))
    data = _SCHUR_CACHE.get(key)
    if data is None:
        data = _SCHUR_CACHE[key] = _Schur(basis.n_coeffs, basis.n_nodes, stiff, xp, device)
    return data


def frozen_jacobian(jac_nodes, *, how="mean", xp):
    """One Jacobian per batch member from the nodes' (K, M, n, n): (K, n, n) (or from
    values on a sparsity pattern, (K, M, nnz): (K, nnz)).

    ``"mean"``: the mean over the fitted nodes m ≥ 1; ``"start"``: node 0
    (``J(t_a, y_a)``, the same for every iterate); ``"end"``: the last node.
    """
    if how == "mean":
        return xp.mean(jac_nodes[:, 1:, ...], axis=1)
    if how == "start":
        return jac_nodes[:, 0, ...]
    if how == "end":
        return jac_nodes[:, -1, ...]
    raise ValueError(f"unknown frozen Jacobian {how!r}")


class FrozenJacobianSolver:
    """The collocation Newton system of the stiff basis with J frozen, factorised.

    Solves ``X D̃_f − (h/2) J X Φ̃_f = R`` (see the module docstring) for any
    right-hand side R in O(N n² + N² n), after factorising about N/2 shifted
    n×n matrices ``λ I − (h/2) J`` (O(N n³)) once.

    Parameters
    ----------
    basis : ChebyshevBasis
        A square basis: the stiff one, or the paper's with ``n_nodes = n_coeffs − 1``.
    jac : array, shape (K, n, n)
        The frozen Jacobian of each batch member (real).
    half_h : array, shape (K, 1)
    xp : namespace
        NumPy factorises by LAPACK ``getrf`` (``getrs`` per solve,
        :mod:`chebpan._kernels.schur`); other
        namespaces invert the shifted matrices (a batched ``inv``, then
        products only).
    real : bool
        Solve in the real Schur form where NumPy's compiled kernels run (the
        default); False: the complex form everywhere (the reference, for
        benchmarks and tests).

    Examples
    --------
    >>> import numpy as np
    >>> from chebpan._core.basis import get_basis
    >>> basis = get_basis(8, 8, xp=np, dtype=np.float64, stiff=True)
    >>> solver = FrozenJacobianSolver(basis, -np.eye(2)[None], np.array([[0.5]]), xp=np)
    >>> solver.solve(np.ones((1, 2, 7))).shape
    (1, 2, 7)
    """

    def __init__(self, basis, jac, half_h, *, xp, real=True):
        jac = xp.astype(jac, xp.float64)
        k, n, _ = jac.shape
        self._prepare(basis, (k, n), xp=xp, real=real)
        half_h = xp.reshape(xp.astype(half_h, xp.float64), (k, 1, 1, 1))
        eye = xp.eye(n, dtype=xp.complex128, device=getattr(jac, "device", None))
        shifts = xp.reshape(self.shifts, (1, -1, 1, 1))
        shifted = shifts * eye - xp.astype(half_h * jac[:, None, ...], xp.complex128)
        if self.numpy:
            from .._kernels.schur import LapackShiftedFactors

            self.lapack = LapackShiftedFactors(shifted)
        else:
            self.inverses = xp.linalg.inv(shifted)  # (K, P, n, n)

    def _prepare(self, basis, shape, *, xp, real=True):
        """What every frozen solve keeps besides its factors (the Schur data, the form
        and its shifts).  ``shape`` is (K, n)."""
        self.basis = basis
        self.xp = xp
        self.shape = shape
        self.numpy = array_api_compat.is_numpy_namespace(xp)
        self.schur = collocation_schur(basis, xp=xp)
        # NumPy with numba: the real Schur form's back substitution, whose shifts are
        # its blocks' eigenvalues; otherwise the complex form's column by column.
        self.real = real and self.numpy and schur_kernels() is not None
        self.shifts = self.schur.block_shifts if self.real else self.schur.shifts

    def _shifted_solve(self, k, b):
        """``(T_kk I − (h/2) J) x = b`` for b (K, n) complex (namespaces other than NumPy)."""
        xp, schur = self.xp, self.schur
        p, conj = schur.rep[k], schur.conj[k]
        if conj:
            b = xp.conj(b)
        x = xp.matmul(self.inverses[:, p, ...], b[..., None])[..., 0]
        return xp.conj(x) if conj else x

    def solve(self, rhs):
        """X (K, n, N−1) with ``X D̃_f − (h/2) J X Φ̃_f = rhs``, rhs (K, n, N−1) real."""
        xp, schur = self.xp, self.schur
        if self.real:
            s = xp.matmul(xp.astype(rhs, xp.float64, copy=False), schur.q_real)
            return xp.matmul(self.lapack.substitute_real(s, schur), schur.back_real)
        s = xp.matmul(xp.astype(xp.astype(rhs, xp.float64), xp.complex128), schur.q)
        if self.numpy:
            u = self.lapack.substitute(s, schur.t_host, schur.rep, schur.conj)
        else:
            columns = []
            for k in range(schur.size):
                b = s[..., k]
                if k:
                    b = b - xp.matmul(xp.stack(columns, axis=-1), schur.t[:k, k])
                columns.append(self._shifted_solve(k, b))
            u = xp.stack(columns, axis=-1)
        return xp.real(xp.matmul(u, schur.back))

    def direction(self, r):
        """Newton direction ``−X`` for the scaled residual r (K, n, M) at all nodes."""
        return -self.solve(r[..., 1:])


def structured_gradient(basis, jac_nodes, half_h, r, *, xp):
    """``∇ẽ = 2 Aᵀ √W r̃`` without forming A: (K, n, n_free).

    ``∇ẽ[j,q] = 2 Σ_m w_m (r̃[j,m] D̃[q,m] − (h/2) Φ̃[q,m] Σ_i J_m[i,j] r̃[i,m])``,
    O(M n² + M n N) instead of the O(M N n²) of the product with A (any basis).
    """
    wr = r * basis.weights  # (K, n, M)
    wr_m = xp.permute_dims(wr, (0, 2, 1))[..., None, :]  # (K, M, 1, n)
    u = xp.permute_dims(xp.matmul(wr_m, jac_nodes)[..., 0, :], (0, 2, 1))  # Jᵀ(w r): (K, n, M)
    grad = (xp.matmul(wr, xp.matrix_transpose(basis.d_tilde))
            - half_h[..., None] * xp.matmul(u, xp.matrix_transpose(basis.phi_tilde)))
    return 2 * grad


class StructuredLinearization:
    """The stiff basis' Newton data at one iterate, without the dense matrix.

    Same interface as :class:`chebpan._core.newton.DenseLinearization`
    (``gradient``, ``direction``).  The gradient is exact (the nodes' own J,
    matrix-free).  The direction is the Newton direction of the nodes' own J, by
    GMRES (to ``KRYLOV_RTOL``, one batch member) preconditioned with a
    :class:`FrozenJacobianSolver` (J frozen by :func:`frozen_jacobian`) carried over
    from ``previous`` (the linearization of the iterate before) until :meth:`refresh`
    asks for a factorisation at this iterate; a preconditioner that needed more than
    ``KRYLOV_REFRESH`` iterations is not carried over.  (Simplified Newton, the
    frozen-J solve itself as the step, is the segment solver's own iteration.)

    Attributes
    ----------
    stale : bool
        The direction is not this iterate's Newton direction: GMRES stopped at
        ``KRYLOV_MAX`` with a carried preconditioner (the segment solver then
        refreshes, docs/algorithm.md).
    factorised : bool
        The last :meth:`direction` factorised (for the ``nlu`` counter).
    inner : int
        GMRES iterations of the last direction (0 without ``krylov``).
    """

    def __init__(self, basis, jac_nodes, half_h, *, xp, previous=None, freeze="mean"):
        self.basis = basis
        self.xp = xp
        self.jac_nodes = jac_nodes
        self.half_h = half_h
        self.freeze = freeze
        self.solver = None
        if previous is not None and previous.inner <= KRYLOV_REFRESH:
            self.solver = previous.solver
        self.carried = self.solver is not None
        self.stale = False
        self.factorised = False
        self.inner = 0
        self._float64 = None  # (J at the nodes, h/2) in float64, for the products

    def gradient(self, r):
        return structured_gradient(self.basis, self.jac_nodes, self.half_h, r, xp=self.xp)

    def refresh(self):
        """Factorise at this iterate at the next :meth:`direction`."""
        self.solver = None
        self.stale = self.carried = False

    def direction(self, r, grad=None):
        xp = self.xp
        self.factorised = self.solver is None
        if self.solver is None:
            self.solver = self._factorise()
        step = self._krylov_direction(xp.astype(r, xp.float64))
        self.stale = self.carried and not self.factorised and self.inner >= KRYLOV_MAX
        return xp.astype(step, r.dtype)

    def _factorise(self):
        """The frozen-J solver at this iterate."""
        xp = self.xp
        jac = frozen_jacobian(xp.astype(self.jac_nodes, xp.float64), how=self.freeze, xp=xp)
        return FrozenJacobianSolver(self.basis, jac, self.half_h, xp=xp)

    def _product(self, x):
        """The collocation matrix of the nodes' own J applied to X (1, n, M−1)."""
        xp = self.xp
        if self._float64 is None:
            self._float64 = (xp.astype(self.jac_nodes, xp.float64),
                             xp.astype(self.half_h, xp.float64))
        return collocation_product(self.basis, *self._float64, x, xp=xp)

    def _krylov_direction(self, r):
        xp = self.xp
        k, n, m = r.shape
        if k != 1:
            raise NotImplementedError("Krylov directions solve one segment at a time")
        shape = (1, n, m - 1)

        def apply(v):
            return xp.reshape(self._product(xp.reshape(v, shape)), (-1,))

        def precondition(v):
            return xp.reshape(self.solver.solve(xp.reshape(v, shape)), (-1,))

        b = -xp.reshape(r[..., 1:], (-1,))
        step, self.inner = preconditioned_gmres(apply, precondition, b, rtol=KRYLOV_RTOL,
                                                max_iter=KRYLOV_MAX, xp=xp)
        return xp.reshape(step, shape)


def collocation_product(basis, jac_nodes, half_h, x, *, xp):
    """``A0 X`` over the fitted nodes without forming A0: (K, n, M−1).

    ``(A0 X)[i,m] = (X D̃)[i,m] − (h/2) Σ_j J_m[i,j] (X Φ̃)[j,m]``, m ≥ 1 (the
    unweighted rows of the stiff basis' collocation matrix), O(M n² + M N n).
    """
    d_f = basis.d_tilde[:, 1:]
    phi_f = basis.phi_tilde[:, 1:]
    values = xp.permute_dims(xp.matmul(x, phi_f), (0, 2, 1))[..., None]  # (K, M−1, n, 1)
    coupling = xp.matmul(jac_nodes[:, 1:, ...], values)[..., 0]  # (K, M−1, n)
    return xp.matmul(x, d_f) - half_h[..., None] * xp.permute_dims(coupling, (0, 2, 1))


def preconditioned_gmres(apply, precondition, b, *, rtol, max_iter, xp):
    """GMRES for ``A x = b`` (one flat system), right-preconditioned by ``precondition``.

    Returns ``x`` and the number of iterations; the iteration stops when the
    residual ``‖b − A x‖`` is below ``rtol ‖b‖`` or after ``max_iter`` (then the
    best ``x`` of the Krylov space is returned).  The small Hessenberg
    least-squares problems are solved on the host.
    """
    from .._kernels.schur import hessenberg_least_squares

    beta = float(xp.linalg.vector_norm(b))
    if beta == 0 or not math.isfinite(beta):
        return xp.zeros_like(b), 0
    basis = [b / beta]
    columns = []  # of the Hessenberg matrix
    y = []
    for j in range(max_iter):
        w = apply(precondition(basis[j]))
        column = [0.0] * (j + 2)
        for _ in range(2):  # Gram–Schmidt twice: orthogonal to rounding
            for i, v in enumerate(basis):
                c = float(xp.vecdot(v, w))
                column[i] += c
                w = w - c * v
        column[j + 1] = norm = float(xp.linalg.vector_norm(w))
        columns.append(column)
        hessenberg = [[col[i] if i < len(col) else 0.0 for col in columns]
                      for i in range(j + 2)]
        y, residual = hessenberg_least_squares(hessenberg, beta)
        if residual <= rtol * beta or norm <= 1e-14 * beta:
            break
        basis.append(w / norm)
    combination = sum(y[i] * basis[i] for i in range(len(y)))
    return precondition(combination), len(y)

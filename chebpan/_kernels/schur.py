"""NumPy/SciPy kernels of the structured Newton solve (chebpan._core.structured).

The Schur form of the stiff basis' differentiation matrix (computed once per N, on the
host), LAPACK LU factors of the shifted n×n matrices with the column-by-column back
substitution on NumPy, and the small Hessenberg least-squares problems of GMRES.
docs/algorithm.md, "Structured Newton solves".
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from .dispatch import schur_kernels

__all__ = ["schur_constants", "LapackShiftedFactors", "substitute", "column_arrays",
           "hessenberg_least_squares"]


def schur_constants(n_coeffs: int, n_nodes: int, stiff: bool = True) -> dict:
    """Q, strictly upper T, ``Q* Φ̃_f⁻¹`` and the shifts of the square basis (N, M) — the
    stiff one, or the paper's with ``stiff=False`` (M = N − 1) — float64, and the same of
    its real Schur form (:func:`_real_blocks`).

    ``rep[k]`` is the index into ``shifts`` of the factors that serve column k and
    ``conj[k]`` whether they are used conjugated: G is real, so its eigenvalues come in
    conjugate pairs and the shift ``conj(λ)`` is served by the factors of ``λ``.
    """
    from .._core.basis import get_basis

    basis = get_basis(n_coeffs, n_nodes, xp=np, dtype=np.float64, stiff=stiff)
    phi_f = np.asarray(basis.phi_tilde)[:, 1:]
    d_f = np.asarray(basis.d_tilde)[:, 1:]
    g = np.linalg.solve(phi_f, d_f)  # nodal differentiation, V ↦ V G
    t, q = scipy.linalg.schur(g.astype(np.complex128), output="complex")
    diag = np.diag(t).copy()
    tiny = 1e-8 * float(np.max(np.abs(diag)))
    upper = [k for k in range(diag.shape[0]) if diag[k].imag >= -tiny]
    rep, conj = [], []
    for k in range(diag.shape[0]):
        if diag[k].imag >= -tiny:
            rep.append(upper.index(k))
            conj.append(False)
        else:
            partner = min(upper, key=lambda j: abs(diag[j] - diag[k].conjugate()))
            rep.append(upper.index(partner))
            conj.append(True)
    phi_f_inv = np.linalg.inv(phi_f)
    return {"q": q, "t": np.triu(t, 1), "back": q.conj().T @ phi_f_inv,
            "shifts": diag[upper], "rep": rep, "conj": conj,
            **_real_blocks(g, phi_f_inv)}


def _real_blocks(g, phi_f_inv):
    """The real Schur form ``G = Q_r T_r Q_rᵀ`` and its diagonal blocks, for the back
    substitution in real arithmetic (:func:`chebpan._kernels.schur_numba`).

    A 1×1 block is a real eigenvalue λ: ``(λ I − (h/2) J) u = b``.  A 2×2 block B has
    the eigenvalues λ, λ̄ with eigenvectors v, v̄ (``V = [v, v̄]``): its two real columns
    W solve ``W B − (h/2) J W = R``, so ``z = W v`` solves ``(λ I − (h/2) J) z = R v``
    and ``W = [z, z̄] V⁻¹ = 2 Re(z w)``, w the first row of V⁻¹.  One complex solve per
    conjugate pair instead of two, and the coupling of the columns is real.
    ``block_shifts`` are the blocks' λ (with the shifts of the complex form, equal up to
    the conditioning of G's eigenvalues: G is far from normal).
    """
    t_r, q_r = scipy.linalg.schur(g, output="real")
    size = g.shape[0]
    starts, sizes, shifts, vs, ws = [], [], [], [], []
    k = 0
    while k < size:
        pair = k + 1 < size and t_r[k + 1, k] != 0
        if pair:
            values, vectors = np.linalg.eig(t_r[k:k + 2, k:k + 2])
            j = int(np.argmax(values.imag))
            lam, v = values[j], vectors[:, j]
            w = np.linalg.inv(np.stack([v, v.conj()], axis=1))[0]
        else:
            lam, v, w = complex(t_r[k, k]), np.array([1, 0j]), np.array([0.5, 0j])
        starts.append(k)
        sizes.append(2 if pair else 1)
        shifts.append(lam)
        vs.append(v)
        ws.append(w)
        k += 2 if pair else 1
    return {"q_real": q_r, "t_real": t_r, "back_real": q_r.T @ phi_f_inv,
            "block_start": np.array(starts, dtype=np.int64),
            "block_size": np.array(sizes, dtype=np.int64),
            "block_shifts": np.array(shifts, dtype=np.complex128),
            "block_v": np.array(vs, dtype=np.complex128),
            "block_w": np.array(ws, dtype=np.complex128)}


class LapackShiftedFactors:
    """LAPACK ``getrf`` of shifted matrices (K, P, n, n), and the back substitution."""

    def __init__(self, shifted):
        getrf = scipy.linalg.get_lapack_funcs("getrf", dtype=np.complex128)
        self.getrs = scipy.linalg.get_lapack_funcs("getrs", dtype=np.complex128)
        factors = [[getrf(shifted[member, p])[:2] for p in range(shifted.shape[1])]
                   for member in range(shifted.shape[0])]
        self.kernels = schur_kernels()
        if self.kernels is None:
            self.factors = factors
        else:  # (stacked for the kernel, transposed, and kept only so)
            self.lus_t = np.array([[lu.T for lu, _ in member] for member in factors])
            self.pivots = np.array([[piv for _, piv in member] for member in factors])

    def substitute_real(self, s, blocks):
        """U (K, n, C) real of the real Schur form (the factors are of its blocks' shifts:
        :func:`_real_blocks`), by the compiled kernel."""
        return self.kernels.substitute_dense_real(s, blocks, self.lus_t, self.pivots)

    def substitute(self, s, t, rep, conj):
        """U (K, n, C) with ``(T_kk I − (h/2) J) U_k = s_k − Σ_{l<k} T_lk U_l``."""
        if self.kernels is not None:
            return self.kernels.substitute_dense(s, t, *column_arrays(rep, conj), self.lus_t,
                                                 self.pivots)
        getrs = self.getrs

        def solve(member, p, b):
            lu, piv = self.factors[member][p]
            return getrs(lu, piv, b)[0]

        return substitute(s, t, rep, conj, solve)


def column_arrays(rep, conj):
    """``rep`` and ``conj`` of :func:`schur_constants` as arrays, for the kernels."""
    return np.asarray(rep, dtype=np.int64), np.asarray(conj, dtype=np.bool_)


def substitute(s, t, rep, conj, solve):
    """The back substitution of the structured solve: U (K, n, C) with
    ``(T_kk I − (h/2) J) U_k = s_k − Σ_{l<k} T_lk U_l``, where ``solve(member, p, b)``
    solves with the factors of shift ``p`` of one batch member (``conj(T_kk)`` columns
    use the factors of ``T_kk``, conjugated).

    In place, one batch member at a time: for small n this loop is the whole cost of a
    solve, so it avoids any Python-level stacking.
    """
    u = np.empty_like(s)
    for member in range(s.shape[0]):
        u_m, s_m = u[member], s[member]
        for k, (p, flip) in enumerate(zip(rep, conj)):
            b = s_m[:, k] - u_m[:, :k] @ t[:k, k] if k else s_m[:, 0]
            if flip:
                u_m[:, k] = solve(member, p, b.conj()).conj()
            else:
                u_m[:, k] = solve(member, p, b)
    return u


def hessenberg_least_squares(hessenberg, beta: float):
    """``min ‖β e₁ − H y‖`` for the (j+1, j) Hessenberg H (nested lists): y, residual."""
    h = np.asarray(hessenberg, dtype=np.float64)
    rhs = np.zeros(h.shape[0])
    rhs[0] = beta
    y, *_ = np.linalg.lstsq(h, rhs, rcond=None)
    return [float(v) for v in y], float(np.linalg.norm(h @ y - rhs))

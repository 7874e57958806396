"""Sparse Jacobians: the pattern, grouped forward differences, the Newton solve.

A sparse Jacobian is kept as its values on a fixed pattern: ``rows``,
``cols`` (nnz,) and values of shape (P, nnz) for P points.  Systems too large
for dense Newton (``n · n_free`` above ``max_newton_size``) then still get
Newton steps on stiff segments, two ways: the structured solve (simplified Newton's
:func:`sparse_frozen_solver`, the default, and :class:`SparseStructuredLinearization`)
factorises the N/2 shifted n×n matrices ``λ I − (h/2) J`` of the frozen J, each sparse,
by LAPACK's band LU where the pattern is banded and by SuperLU otherwise; or the square
collocation system of the stiff basis, ``n·(N − 1)`` unknowns, is assembled as one
scipy sparse matrix and factorised by SuperLU (:class:`SparseLinearization`,
``newton_linear_solver="dense"``).  This module is NumPy/scipy only (a NumPy kernel
module, like the numba LDLᵀ kernel).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

from .._core.structured import FrozenJacobianSolver, StructuredLinearization, frozen_jacobian
from .._kernels.dispatch import schur_kernels
from .._kernels.schur import column_arrays, substitute
from .jacobian import as_dense, forward_difference_steps

__all__ = ["SparsityPattern", "group_columns", "make_sparse_jacobian", "SparseLinearization",
           "SparseStructuredLinearization", "sparse_frozen_solver"]


#: The band LU is used where the band holds at most this many times the pattern's
#: entries (:attr:`SparsityPattern.banded`).
BAND_FILL = 4


class SparsityPattern:
    """Where ``∂f_i/∂y_j`` may be nonzero: ``rows``, ``cols`` of shape (nnz,).

    The diagonal is always included (the collocation matrix has the
    identity there anyway, and finite differences of a zero entry are 0).

    Examples
    --------
    >>> import numpy as np
    >>> p = SparsityPattern.from_matrix(np.array([[1, 1, 0], [0, 1, 0], [0, 0, 0]]), 3)
    >>> p.nnz
    4
    """

    def __init__(self, rows, cols, n):
        order = np.lexsort((cols, rows))
        self.rows = np.asarray(rows, dtype=np.intp)[order]
        self.cols = np.asarray(cols, dtype=np.intp)[order]
        self.n = n
        self.nnz = self.rows.shape[0]
        #: CSC layouts of the collocation matrix, by (n_nodes, n_free) of a basis.
        self.layouts = {}
        self._gather = None
        self._csc = None

    @classmethod
    def from_matrix(cls, matrix, n, *, name="jac_sparsity"):
        shape = getattr(matrix, "shape", None)
        if shape is None:
            matrix = np.asarray(matrix)
            shape = matrix.shape
        if tuple(shape) != (n, n):
            raise ValueError(
                f"`{name}` is expected to have shape {(n, n)}, but actually has {tuple(shape)}.")
        coo = scipy.sparse.coo_array(matrix)
        coo.sum_duplicates()
        nonzero = coo.data != 0
        rows = np.concatenate([coo.row[nonzero], np.arange(n)])
        cols = np.concatenate([coo.col[nonzero], np.arange(n)])
        unique = np.unique(rows * n + cols)
        return cls(unique // n, unique % n, n)

    def values_of(self, matrix):
        """Entries of a dense or sparse (n, n) matrix on the pattern: (nnz,)."""
        return np.asarray(as_dense(matrix))[self.rows, self.cols]

    def row_sums(self, values):
        """``Σ_j |J_ij|`` for values (..., nnz) → (..., n)."""
        flat = np.abs(values).reshape(-1, self.nnz)
        return (self._row_gather() @ flat.T).T.reshape(*values.shape[:-1], self.n)

    def _row_gather(self):
        """(n, nnz) sparse 0/1 matrix summing each row's entries (made once)."""
        if self._gather is None:
            self._gather = scipy.sparse.csr_matrix(
                (np.ones(self.nnz), (self.rows, np.arange(self.nnz))), shape=(self.n, self.nnz))
        return self._gather

    def to_dense(self, values):
        """Values (..., nnz) → dense (..., n, n)."""
        out = np.zeros((*values.shape[:-1], self.n, self.n), dtype=values.dtype)
        out[..., self.rows, self.cols] = values
        return out

    @functools.cached_property
    def bandwidths(self):
        """(lower, upper): the largest ``i − j`` and ``j − i`` of the pattern's entries
        (computed once: the pattern does not change)."""
        if self.nnz == 0:
            return 0, 0
        return int(np.max(self.rows - self.cols)), int(np.max(self.cols - self.rows))

    @property
    def banded(self):
        """Whether LAPACK's band LU suits the pattern: its band holds at most
        ``BAND_FILL`` times the entries (method-of-lines Jacobians in 1-D; in 2-D the
        band grows with the grid's width and SuperLU's fill-reducing order wins)."""
        lower, upper = self.bandwidths
        return (lower + upper + 1) * self.n <= BAND_FILL * max(self.nnz, 1)

    def shifted_factors(self, values, shifts):
        """LU factors of ``λ I − J`` for J with values (nnz,) on the pattern, for each
        λ of ``shifts``: objects with ``solve(b)``, b (n,) complex.

        LAPACK's band LU (``zgbtrf``, 5–8× faster than SuperLU on MEDAKZO's and
        BRUSS's pentadiagonal Jacobians) where :attr:`banded`, else SuperLU, with one
        CSC matrix (complex, straight from the pattern's CSC order) for every shift:
        only its values change, which saves SciPy's format checks per matrix."""
        if self._csc is None:
            order = np.lexsort((self.rows, self.cols))
            indptr = np.concatenate([[0], np.cumsum(np.bincount(self.cols, minlength=self.n))])
            diagonal = np.flatnonzero(self.rows[order] == self.cols[order])
            if diagonal.shape[0] != self.n:
                raise ValueError("the shifted matrices need the diagonal in the pattern")
            self._csc = (order, self.rows[order], indptr, diagonal)
        if self.banded:
            return self._band_factors(values, shifts)
        order, indices, indptr, diagonal = self._csc
        data = -np.asarray(values, dtype=np.complex128)[order]
        matrix = scipy.sparse.csc_matrix((data, indices, indptr), shape=(self.n, self.n))
        factors = []
        for shift in shifts:
            shifted = data.copy()
            shifted[diagonal] += shift
            matrix.data = shifted
            factors.append(scipy.sparse.linalg.splu(matrix))
        return factors

    def _band_factors(self, values, shifts):
        lower, upper = self.bandwidths
        # LAPACK band storage: A[i, j] in row lower + upper + i − j of column j, the
        # first `lower` rows left for the fill of the pivoting.
        band = np.zeros((2 * lower + upper + 1, self.n), dtype=np.complex128)
        band[lower + upper + self.rows - self.cols, self.cols] = -np.asarray(values)
        getrf, getrs = scipy.linalg.get_lapack_funcs(("gbtrf", "gbtrs"), dtype=np.complex128)
        factors = []
        for shift in shifts:
            shifted = band.copy()
            shifted[lower + upper, :] += shift
            lu, pivots, info = getrf(shifted, lower, upper)
            if info < 0:  # (info > 0, a zero pivot: the solves give inf, the step fails)
                raise ValueError(f"gbtrf: illegal argument {-info}")
            factors.append(_BandFactors(getrs, lu, pivots, lower, upper))
        return factors

    def solve_shifted(self, values, shift, b):
        """``x`` with ``(shift I − J) x = b``: J's values (nnz,), real ``b`` (n,) → (n,),
        float64 (one factorisation of :meth:`shifted_factors`)."""
        factors = self.shifted_factors(np.asarray(values, dtype=np.float64), [shift])[0]
        return factors.solve(np.asarray(b, dtype=np.complex128)).real

    def products(self, values, v):
        """``J_m v_m`` at P points: values (P, nnz), v (n, P) → (n, P)."""
        return self._row_gather() @ (values.T * v[self.cols, :])


def group_columns(pattern):
    """Greedy grouping of columns that share no row: (n,) group index per column.

    Columns of one group are perturbed together in forward differences
    (Curtis–Powell–Reid); the number of groups bounds the extra evaluations.  Each
    group's rows are kept as one Python integer used as a bit set, so testing a column
    against a group is one ``&`` (n = 1000, pentadiagonal: 0.4 ms, where boolean masks
    took 15 ms).
    """
    n = pattern.n
    column_bits = [0] * n
    for row, col in zip(pattern.rows.tolist(), pattern.cols.tolist()):
        column_bits[col] |= 1 << row
    groups = np.empty(n, dtype=np.intp)
    used = []  # per group: the rows it touches, as bits
    for j, bits in enumerate(column_bits):
        for g, taken in enumerate(used):
            if not taken & bits:
                used[g] = taken | bits
                groups[j] = g
                break
        else:
            used.append(bits)
            groups[j] = len(used) - 1
    return groups


def make_sparse_jacobian(jac, jac_sparsity, n, *, dtype):
    """A sparse Jacobian adapter, or ``None`` when no sparsity is known.

    Sparsity is known from a scipy sparse constant ``jac`` or, as in scipy,
    from ``jac_sparsity`` when ``jac`` is None (forward differences grouped
    by :func:`group_columns`).  A callable ``jac`` is dense (scipy ignores
    ``jac_sparsity`` then, and so does this).
    """
    if jac is None and jac_sparsity is not None:
        return _GroupedForwardDifference(SparsityPattern.from_matrix(jac_sparsity, n),
                                         dtype=dtype)
    if jac is not None and scipy.sparse.issparse(jac):
        pattern = SparsityPattern.from_matrix(jac, n, name="jac")
        return _SparseConstant(pattern, pattern.values_of(jac).astype(dtype))
    return None


class _SparseConstant:
    counts_as_evaluation = False

    def __init__(self, pattern, values):
        self.pattern = pattern
        self.values = values

    def __call__(self, t, y, f, evaluator):
        return np.broadcast_to(self.values, (t.shape[0], self.pattern.nnz))


class _GroupedForwardDifference:
    """Forward differences, one perturbed point per column group, in one call."""

    def __init__(self, pattern, *, dtype):
        self.pattern = pattern
        self.groups = group_columns(pattern)
        self.n_groups = int(self.groups.max()) + 1 if pattern.n else 0
        self.relative_step = math.sqrt(np.finfo(dtype).eps)

    def __call__(self, t, y, f, evaluator):
        pattern = self.pattern
        n, n_points = y.shape
        if n == 0 or n_points == 0:
            return np.zeros((n_points, pattern.nnz), dtype=y.dtype)
        step = forward_difference_steps(y, self.relative_step,
                                        np.asarray(evaluator.difference_floor), xp=np)
        member = (self.groups[:, None] == np.arange(self.n_groups)[None, :])  # (n, G)
        # perturbed[:, g, p] = y[:, p] + Σ_{j in g} step[j, p] e_j
        perturbed = y[:, None, :] + member[:, :, None] * step[:, None, :]
        t_repeated = np.broadcast_to(t[None, :], (self.n_groups, n_points)).reshape(-1)
        f_perturbed = evaluator.call_fun(t_repeated, perturbed.reshape(n, -1))
        f_perturbed = f_perturbed.reshape(n, self.n_groups, n_points)
        group_of_entry = self.groups[pattern.cols]
        difference = (f_perturbed[pattern.rows, group_of_entry, :] - f[pattern.rows, :])
        return (difference / step[pattern.cols, :]).T  # (P, nnz)


class SparseLinearization:
    """The stiff basis' collocation system with a sparse Jacobian at the nodes.

    ``A0[(i,m),(j,n)] = δ_ij D̃[n,m] − (h/2) Φ̃[n,m] J_m[i,j]`` over the fitted
    nodes m ≥ 1 (square: ``n_free = M − 1``).  Built for one batch member.

    Parameters
    ----------
    basis : ChebyshevBasis
        The stiff basis.
    pattern : SparsityPattern
    values : array, shape (M, nnz)
        ``J_m`` on the pattern at every node.
    half_h : float

    Like :class:`chebpan._core.newton.DenseLinearization`, every direction is
    this iterate's own: ``stale`` is False and ``factorised`` True.
    """

    stale = False
    factorised = True

    def __init__(self, basis, pattern, values, half_h):
        self.basis = basis
        self.pattern = pattern
        self.values = values
        self.half_h = half_h
        self._lu = None

    def gradient(self, r):
        """``∇ẽ = 2 A0ᵀ W r̃`` for ``r`` (1, n, M) → (1, n, n_free)."""
        return _sparse_gradient(self.basis, self.pattern, self.values, self.half_h, r)

    def direction(self, r, grad=None):
        """Newton direction: ``A0 d = −r̃`` on the fitted nodes, by sparse LU."""
        n = r.shape[1]
        if self._lu is None:
            self._lu = scipy.sparse.linalg.splu(self._assemble(n))
        step = self._lu.solve(np.ascontiguousarray(r[0, :, 1:]).reshape(-1))
        return -step.reshape(1, n, self.basis.n_free)

    def _assemble(self, n):
        basis, pattern = self.basis, self.pattern
        layout = _collocation_layout(basis, pattern)
        phi = basis.phi_tilde[:, 1:].T  # (M-1, n_free)
        # Entry e of J at node m and coefficient n; the pattern holds the
        # diagonal, where the identity part D̃ is added, so no entry repeats.
        values = -self.half_h * self.values[1:, :].T[:, :, None] * phi[None, :, :]
        values[layout.diagonal] += basis.d_tilde[:, 1:].T[None, :, :]
        data = values.reshape(-1)[layout.order]
        return scipy.sparse.csc_matrix((data, layout.indices, layout.indptr),
                                       shape=(layout.size, layout.size))


def _sparse_gradient(basis, pattern, values, half_h, r):
    """``∇ẽ = 2 A0ᵀ W r̃`` with J on the pattern, values (M, nnz), r (1, n, M)."""
    weighted = r[0] * basis.weights  # (n, M); the weight of τ = −1 is 0
    # u[j, m] = Σ_i J_m[i, j] weighted[i, m]
    u = np.zeros_like(weighted)
    np.add.at(u, pattern.cols, values.T * weighted[pattern.rows, :])
    grad = weighted @ basis.d_tilde.T - half_h * (u @ basis.phi_tilde.T)
    return 2 * grad[None]


class SparseStructuredLinearization(StructuredLinearization):
    """:class:`~chebpan._core.structured.StructuredLinearization` with J on a sparsity
    pattern, for one batch member: the frozen J's shifted matrices are sparse and
    factorised by SuperLU (fill-in of an n×n matrix, where :class:`SparseLinearization`
    factorises the ``n·(N − 1)`` collocation matrix), the collocation products and the
    gradient use the nodes' own J on the pattern.

    Parameters
    ----------
    basis : ChebyshevBasis
        The stiff basis.
    pattern : SparsityPattern
    values : array, shape (M, nnz)
        ``J_m`` on the pattern at every node.
    half_h : float
    previous :
        As for :class:`~chebpan._core.structured.StructuredLinearization`.
    """

    def __init__(self, basis, pattern, values, half_h, *, previous=None):
        super().__init__(basis, values[None], np.array([[half_h]]), xp=np, previous=previous)
        self.pattern = pattern
        self.values = values
        self.jac_nodes = None  # (J is on the pattern only: ``values``)

    def gradient(self, r):
        return _sparse_gradient(self.basis, self.pattern, self.values, float(self.half_h[0, 0]),
                                r)

    def _factorise(self):
        frozen = frozen_jacobian(self.values[None], how=self.freeze, xp=np)[0]
        return _SparseFrozenSolver(self.basis, self.pattern, frozen, float(self.half_h[0, 0]))

    def _product(self, x):
        basis = self.basis
        nodes = x[0] @ basis.phi_tilde[:, 1:]  # (n, M−1)
        coupling = self.pattern.products(self.values[1:, :], nodes)
        return (x[0] @ basis.d_tilde[:, 1:] - self.half_h[0, 0] * coupling)[None]


class _SparseFrozenSolver(FrozenJacobianSolver):
    """:class:`~chebpan._core.structured.FrozenJacobianSolver` of a sparse frozen J
    (values (nnz,) on ``pattern``): band LU or SuperLU of each shifted matrix
    (:meth:`SparsityPattern.shifted_factors`)."""

    def __init__(self, basis, pattern, frozen, half_h, *, real=True):
        # (SuperLU factors: the complex form's loop)
        self._prepare(basis, (1, pattern.n), xp=np, real=real and pattern.banded)
        self.lapack = _SparseShiftedFactors(pattern.shifted_factors(
            np.asarray(frozen, dtype=np.float64) * half_h, np.asarray(self.shifts)))


def sparse_frozen_solver(basis, pattern, frozen, half_h, *, real=True):
    """The frozen-J solver of ``frozen`` (nnz,) values on ``pattern``: band LU or
    SuperLU factors of its shifted matrices (:meth:`SparsityPattern.shifted_factors`);
    ``real`` as for :class:`~chebpan._core.structured.FrozenJacobianSolver` (band
    factors only)."""
    return _SparseFrozenSolver(basis, pattern, frozen, half_h, real=real)


class _BandFactors:
    """LAPACK band LU factors with SuperLU's ``solve(b)``."""

    __slots__ = ("getrs", "lu", "pivots", "lower", "upper")

    def __init__(self, getrs, lu, pivots, lower, upper):
        self.getrs, self.lu, self.pivots = getrs, lu, pivots
        self.lower, self.upper = lower, upper

    def solve(self, b):
        return self.getrs(self.lu, self.lower, self.upper, b, self.pivots)[0]


class _SparseShiftedFactors:
    """Band LU or SuperLU factors of the shifted matrices, with the structured back
    substitution (a numba kernel for band factors)."""

    def __init__(self, factors):
        self.factors = factors
        self.kernels = schur_kernels() if isinstance(factors[0], _BandFactors) else None
        if self.kernels is not None:
            self.bands = np.array([f.lu for f in factors])
            self.pivots = np.array([f.pivots for f in factors])

    def substitute_real(self, s, blocks):
        first = self.factors[0]
        return self.kernels.substitute_band_real(s[0], blocks, self.bands, self.pivots,
                                                 first.lower, first.upper)[None]

    def substitute(self, s, t, rep, conj):
        if self.kernels is not None:
            first = self.factors[0]
            return self.kernels.substitute_band(s[0], t, *column_arrays(rep, conj), self.bands,
                                                self.pivots, first.lower, first.upper)[None]
        return substitute(s, t, rep, conj, lambda member, p, b: self.factors[p].solve(b))


class _Layout:
    """CSC structure of the collocation matrix for one (basis, pattern)."""

    def __init__(self, basis, pattern):
        fitted, n_free = basis.n_nodes - 1, basis.n_free
        rows = (pattern.rows[:, None, None] * fitted
                + np.arange(fitted)[None, :, None]) + 0 * np.arange(n_free)[None, None, :]
        cols = (pattern.cols[:, None, None] * n_free
                + np.arange(n_free)[None, None, :]) + 0 * np.arange(fitted)[None, :, None]
        rows, cols = rows.reshape(-1), cols.reshape(-1)
        self.order = np.lexsort((rows, cols))
        self.indices = rows[self.order].astype(np.int64)
        self.size = pattern.n * n_free
        self.indptr = np.concatenate(
            [[0], np.cumsum(np.bincount(cols, minlength=self.size))]).astype(np.int64)
        self.diagonal = pattern.rows == pattern.cols


def _collocation_layout(basis, pattern):
    key = (basis.n_nodes, basis.n_free)  # all the layout depends on
    if key not in pattern.layouts:
        pattern.layouts[key] = _Layout(basis, pattern)
    return pattern.layouts[key]

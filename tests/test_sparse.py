"""Sparse Jacobians: column groups, grouped differences, the sparse Newton solve."""

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import expm

import chebpan
from chebpan._core.basis import get_basis
from chebpan._rhs.counters import Counters
from chebpan._core.newton import DenseLinearization
from chebpan._rhs.evaluator import Evaluator
from chebpan._core.structured import FrozenJacobianSolver, StructuredLinearization
from chebpan._rhs.sparse import (
    SparseLinearization,
    SparseStructuredLinearization,
    SparsityPattern,
    group_columns,
    sparse_frozen_solver,
)


def tridiagonal(n, lower=1.0, main=-2.0, upper=1.0):
    return scipy.sparse.diags([lower, main, upper], [-1, 0, 1], shape=(n, n), format="csc")


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.floats(0.02, 0.5), st.integers(0, 2**31 - 1))
def test_grouped_columns_never_share_a_row(n, density, seed):
    rng = np.random.default_rng(seed)
    pattern = SparsityPattern.from_matrix(rng.random((n, n)) < density, n)
    groups = group_columns(pattern)
    dense = pattern.to_dense(np.ones(pattern.nnz)) != 0
    for g in np.unique(groups):
        members = dense[:, groups == g]
        assert members.sum(axis=1).max() <= 1


def test_row_sums_are_the_dense_matrices_absolute_row_sums():
    rng = np.random.default_rng(3)
    pattern = SparsityPattern.from_matrix(rng.random((12, 12)) < 0.3, 12)
    values = rng.normal(size=(2, 4, pattern.nnz))
    np.testing.assert_allclose(pattern.row_sums(values),
                               np.abs(pattern.to_dense(values)).sum(axis=-1), rtol=1e-14)


def test_tridiagonal_needs_three_groups():
    pattern = SparsityPattern.from_matrix(tridiagonal(40), 40)
    assert int(group_columns(pattern).max()) + 1 == 3


def nonlinear_chain(t, y):
    """f_i = y_{i-1}² − 2 sin(y_i) + t y_{i+1}: tridiagonal Jacobian."""
    f = -2 * np.sin(y)
    f[1:] += y[:-1] ** 2
    f[:-1] += t * y[1:]
    return f


def nonlinear_chain_jacobian(t, y):
    n = y.shape[0]
    jac = np.zeros((n, n))
    jac[np.arange(n), np.arange(n)] = -2 * np.cos(y)
    jac[np.arange(1, n), np.arange(n - 1)] = 2 * y[:-1]
    jac[np.arange(n - 1), np.arange(1, n)] = t
    return jac


def test_grouped_forward_differences_match_the_exact_jacobian():
    n, points = 25, 7
    rng = np.random.default_rng(3)
    t, y = rng.uniform(0, 2, points), rng.normal(size=(n, points))
    counters = Counters()
    evaluator = Evaluator(nonlinear_chain, None, n, vectorized=True, xp=np, dtype=np.float64,
                          counters=counters, jac_sparsity=tridiagonal(n))
    f, values = evaluator.evaluate(t, y, with_jacobian=True)
    assert counters.nfev == 2  # f, then all groups at all points in one call
    assert counters.npoints == points * (1 + 3)
    dense = evaluator.pattern.to_dense(values)
    for p in range(points):
        exact = nonlinear_chain_jacobian(t[p], y[:, p])
        assert np.allclose(dense[p], exact, rtol=1e-6, atol=1e-6)


def test_sparse_and_dense_newton_steps_agree_on_the_stiff_basis():
    n = 6
    basis = get_basis(10, 10, xp=np, dtype=np.float64, stiff=True)
    pattern = SparsityPattern.from_matrix(tridiagonal(n), n)
    rng = np.random.default_rng(5)
    values = rng.normal(size=(basis.n_nodes, pattern.nnz)) * 50
    r = rng.normal(size=(1, n, basis.n_nodes))
    half_h = 0.7
    sparse = SparseLinearization(basis, pattern, values, half_h)
    dense = DenseLinearization(basis, pattern.to_dense(values)[None], np.array([[half_h]]),
                               xp=np)
    assert np.allclose(sparse.gradient(r), dense.gradient(r), rtol=1e-12, atol=1e-10)
    assert np.allclose(sparse.direction(r), dense.direction(r, None), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n, corner, banded", [(7, False, True), (40, False, True),
                                                (40, True, False)])
def test_pattern_products_and_shifted_factors_are_the_dense_ones(n, corner, banded):
    """Products on the pattern, and the factors of the shifted matrices ``λ I − J``: band
    LU (LAPACK) for a banded pattern, SuperLU where an entry far off the diagonal makes
    the band too wide."""
    matrix = tridiagonal(n) + np.eye(n, k=3)
    if corner:
        matrix[0, -1] = matrix[-1, 0] = 1.0
    pattern = SparsityPattern.from_matrix(matrix, n)
    assert pattern.banded == banded
    rng = np.random.default_rng(2)
    values = rng.normal(size=(4, pattern.nnz))
    v = rng.normal(size=(n, 4))
    dense = pattern.to_dense(values)  # (4, n, n)
    assert np.allclose(pattern.products(values, v), np.einsum("pij,jp->ip", dense, v),
                       rtol=1e-14, atol=1e-14)
    shifts = np.array([2.0 + 1.0j, -0.5, 0.25 - 3.0j])
    b = rng.normal(size=n) + 1j * rng.normal(size=n)
    for shift, factors in zip(shifts, pattern.shifted_factors(values[0], shifts)):
        expected = np.linalg.solve(shift * np.eye(n) - dense[0], b)
        assert np.allclose(factors.solve(b), expected, rtol=1e-12, atol=1e-12)
    off_diagonal = SparsityPattern(np.array([0, 1]), np.array([1, 0]), 2)
    with pytest.raises(ValueError, match="diagonal"):
        off_diagonal.shifted_factors(np.ones(2), shifts)


def test_sparse_structured_steps_are_the_dense_structured_ones():
    """The sparse structured linearization (SuperLU of the shifted n×n matrices) gives
    the dense one's gradient and Krylov direction (the Newton direction of the nodes'
    own J, that of the assembled collocation system), and the sparse frozen-J solver
    of simplified Newton the dense frozen-J solve."""
    n = 9
    basis = get_basis(12, 12, xp=np, dtype=np.float64, stiff=True)
    pattern = SparsityPattern.from_matrix(tridiagonal(n), n)
    rng = np.random.default_rng(11)
    base = rng.normal(size=pattern.nnz) * 200
    values = base * (1 + 0.05 * rng.normal(size=(basis.n_nodes, pattern.nnz)))
    r = rng.normal(size=(1, n, basis.n_nodes))
    half_h = 0.3
    sparse = SparseStructuredLinearization(basis, pattern, values, half_h)
    dense = StructuredLinearization(basis, pattern.to_dense(values)[None],
                                    np.array([[half_h]]), xp=np)
    assert np.allclose(sparse.gradient(r), dense.gradient(r), rtol=1e-12, atol=1e-10)
    direction = sparse.direction(r)
    scale = np.max(np.abs(direction))
    # (both GMRES to a relative residual of KRYLOV_RTOL = 1e-6, other roundings)
    assert np.allclose(direction, dense.direction(r), rtol=0, atol=1e-6 * scale)
    newton = SparseLinearization(basis, pattern, values, half_h).direction(r)
    assert sparse.inner > 1  # (the frozen J is not the nodes')
    assert np.allclose(direction, newton, rtol=0, atol=1e-6 * scale)

    mean = np.mean(values[1:], axis=0)
    frozen = sparse_frozen_solver(basis, pattern, mean, half_h).direction(r)
    expected = FrozenJacobianSolver(basis, pattern.to_dense(mean)[None],
                                    np.array([[half_h]]), xp=np).direction(r)
    assert np.allclose(frozen, expected, rtol=0, atol=1e-11 * np.max(np.abs(expected)))


def test_jac_sparsity_of_the_wrong_shape_names_the_argument():
    with pytest.raises(ValueError, match=r"`jac_sparsity` is expected to have shape \(3, 3\)"):
        chebpan.solve_ivp(lambda t, y: -y, (0, 1), [1.0, 2.0, 3.0],
                          jac_sparsity=np.ones((2, 2)))


def diffusion(n):
    """Stiff heat equation on n interior points: eigenvalues down to −4(n+1)²."""
    return tridiagonal(n) * float((n + 1) ** 2)


@pytest.mark.parametrize("how", ["jac_sparsity", "sparse jac"])
def test_large_stiff_system_uses_sparse_newton(how):
    n = 60  # 60 · 31 unknowns: above max_newton_size, so only the sparse path has Newton
    a = diffusion(n)
    y0 = np.sin(np.pi * np.linspace(0, 1, n + 2)[1:-1]) + np.linspace(0, 1, n)
    options = {"jac_sparsity": a != 0} if how == "jac_sparsity" else {"jac": a}
    res = chebpan.solve_ivp(lambda t, y: a @ y, (0, 0.5), y0, vectorized=True,
                            rtol=1e-8, atol=1e-10, dense_output=True, **options)
    assert res.status == 0
    assert res.nlu > 0 and res.nsegments < 60
    dense_a = a.toarray()
    for t in (0.01, 0.1, 0.5):
        exact = expm(dense_a * t) @ y0
        assert np.max(np.abs(res.sol(t) - exact)) < 1e-7


def test_complex_state_with_jac_sparsity():
    n = 8
    a = diffusion(n).toarray() * (1 + 0.5j)
    y0 = np.linspace(1, 2, n) + 1j * np.linspace(0, 1, n)
    res = chebpan.solve_ivp(lambda t, y: a @ y, (0, 0.2), y0, vectorized=True,
                            rtol=1e-8, atol=1e-10, jac_sparsity=tridiagonal(n))
    assert res.status == 0 and res.y.dtype == np.complex128
    assert np.max(np.abs(res.y[:, -1] - expm(a * 0.2) @ y0)) < 1e-7


def test_sparse_newton_with_more_nodes_than_collocation():
    n = 50  # above max_newton_size; n_nodes applies to the paper's basis only
    a = diffusion(n)
    y0 = np.linspace(1, 2, n)
    res = chebpan.solve_ivp(lambda t, y: a @ y, (0, 0.2), y0, vectorized=True,
                            rtol=1e-8, atol=1e-10, jac_sparsity=a != 0, n_nodes=40)
    assert res.status == 0 and res.nlu > 0
    assert np.max(np.abs(res.y[:, -1] - expm(a.toarray() * 0.2) @ y0)) < 1e-7


def test_complex_state_keeps_a_sparse_constant_jacobian():
    n = 30
    a = diffusion(n) * (1 + 0.5j)
    y0 = np.linspace(1, 2, n) + 1j * np.linspace(0, 1, n)
    res = chebpan.solve_ivp(lambda t, y: a @ y, (0, 0.2), y0, vectorized=True,
                            rtol=1e-8, atol=1e-10, jac=a)
    assert res.status == 0 and res.nlu > 0 and res.nsegments < 30
    assert np.max(np.abs(res.y[:, -1] - expm(a.toarray() * 0.2) @ y0)) < 1e-7


def test_complex_state_ignores_jac_sparsity_when_jac_is_given():
    # As scipy (and chebpan's real path) do: the sparsity is not even checked.
    res = chebpan.solve_ivp(lambda t, y: -y, (0, 1), [1 + 1j, 2j], jac=lambda t, y: -np.eye(2),
                            jac_sparsity=np.ones((3, 3)))
    assert res.status == 0

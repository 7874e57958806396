"""Tests of the Chebyshev basis (chebpan._core.basis) and the Picard operator (chebpan._core.picard).

Every accuracy check is against exact values: closed-form integrals of monomials,
numpy.polynomial.chebyshev, or the exact antiderivative of a known polynomial.
"""

import math
from fractions import Fraction

import array_api_compat.numpy as anp
import numpy as np
import numpy.polynomial.chebyshev as C
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from chebpan._core.basis import cgl_nodes, chebyshev_values, clenshaw_curtis_weights, get_basis
from chebpan._core.picard import coefficients, end_value, node_values, picard_update

# (N, M): collocation (M = N - 1) and least-squares (M > N - 1) cases, small and default.
SHAPES = [(3, 2), (5, 4), (8, 7), (8, 12), (16, 15), (32, 31), (32, 40)]


def _np(a):
    """Any array-API array as a NumPy array (array_api_strict arrays go through DLPack)."""
    if isinstance(a, np.ndarray):
        return a
    return np.from_dlpack(a)


# ---------------------------------------------------------------------- nodes and weights


@pytest.mark.parametrize("M", [2, 3, 4, 5, 7, 8, 15, 31, 32, 64])
def test_cgl_nodes_ascending_exact_ends_antisymmetric(M):
    tau = np.array(cgl_nodes(M))
    assert tau.shape == (M,)
    assert np.all(np.diff(tau) > 0)
    assert tau[0] == -1.0 and tau[-1] == 1.0
    assert_array_equal(tau, -tau[::-1])  # exactly antisymmetric
    if M % 2 == 1:
        assert tau[M // 2] == 0.0
    # the definition -cos(pi m / (M - 1)), to rounding
    assert_allclose(tau, -np.cos(np.pi * np.arange(M) / (M - 1)), rtol=0, atol=4e-16)


def test_cgl_nodes_rejects_fewer_than_two():
    with pytest.raises(ValueError):
        cgl_nodes(1)


@pytest.mark.parametrize("M", [2, 3, 4, 5, 6, 7, 8, 15, 16, 31, 32, 33])
def test_clenshaw_curtis_weights_integrate_monomials_exactly(M):
    tau = np.array(cgl_nodes(M))
    w = np.array(clenshaw_curtis_weights(M))
    assert w.shape == (M,)
    assert np.all(w > 0)
    assert_allclose(w, w[::-1], rtol=0, atol=1e-15)  # symmetric
    assert math.isclose(w.sum(), 2.0, rel_tol=0, abs_tol=4e-15)
    for k in range(M):
        exact = 0.0 if k % 2 else 2.0 / (k + 1)
        assert math.isclose(float(w @ tau**k), exact, rel_tol=0, abs_tol=1e-14), k


def test_clenshaw_curtis_weights_known_small_cases():
    # M = 2: trapezoid; M = 3: Simpson; M = 5: 1/15, 8/15, 4/5, 8/15, 1/15.
    assert_allclose(clenshaw_curtis_weights(2), [1.0, 1.0], rtol=1e-15)
    assert_allclose(clenshaw_curtis_weights(3), [1 / 3, 4 / 3, 1 / 3], rtol=1e-15)
    assert_allclose(clenshaw_curtis_weights(5), [1 / 15, 8 / 15, 4 / 5, 8 / 15, 1 / 15],
                    rtol=1e-14)


def test_clenshaw_curtis_weights_not_exact_beyond_degree():
    """Sanity: the exactness above is not vacuous — degree M+1 (even) is not integrated exactly."""
    M = 6
    tau = np.array(cgl_nodes(M))
    w = np.array(clenshaw_curtis_weights(M))
    k = M if M % 2 == 0 else M + 1
    assert abs(w @ tau**k - 2.0 / (k + 1)) > 1e-6


# ---------------------------------------------------------------------- Chebyshev values


@pytest.mark.parametrize("N", [1, 2, 3, 8, 32])
def test_chebyshev_values_match_numpy(N):
    rng = np.random.default_rng(N)
    tau = np.concatenate([[-1.0, 1.0, 0.0], rng.uniform(-1, 1, 20)])
    values, derivs = chebyshev_values(N, tau, xp=anp)
    assert values.shape == derivs.shape == (N, tau.size)
    eye = np.eye(N)
    ref_v = np.stack([C.chebval(tau, eye[n]) for n in range(N)])
    ref_d = np.stack([C.chebval(tau, C.chebder(eye[n])) if n else 0 * tau for n in range(N)])
    assert_allclose(values, ref_v, rtol=0, atol=1e-13)
    # |T_n'| <= n^2 on [-1, 1]; allow rounding relative to that size
    assert_allclose(derivs, ref_d, rtol=0, atol=1e-13 * max(1, (N - 1) ** 2))


def test_chebyshev_values_exact_for_polynomial_series():
    """Σ c_n T_n(τ) and its derivative from the rows equal the polynomial itself."""
    N = 12
    rng = np.random.default_rng(1)
    c = rng.standard_normal(N)
    tau = np.linspace(-1, 1, 41)
    values, derivs = chebyshev_values(N, tau, xp=anp)
    p = C.cheb2poly(c)  # power-basis coefficients of the same polynomial
    assert_allclose(c @ values, np.polynomial.polynomial.polyval(tau, p), rtol=0, atol=1e-12)
    dp = np.polynomial.polynomial.polyder(p)
    assert_allclose(c @ derivs, np.polynomial.polynomial.polyval(tau, dp), rtol=0, atol=1e-11)


@pytest.mark.parametrize("N", [3, 8, 33])
def test_endpoint_identities(N):
    n = np.arange(N)
    values, derivs = chebyshev_values(N, np.array([-1.0, 1.0]), xp=anp)
    assert_array_equal(values[:, 0], (-1.0) ** n)
    assert_array_equal(values[:, 1], np.ones(N))
    assert_array_equal(derivs[:, 0], (-1.0) ** (n + 1) * n**2)
    assert_array_equal(derivs[:, 1], n**2)
    b = get_basis(N, N - 1, xp=anp, dtype=np.float64)
    assert_array_equal(b.t_minus1, (-1.0) ** n)
    assert_array_equal(b.dt_minus1, (-1.0) ** (n + 1) * n**2)


# ---------------------------------------------------------------------- the basis object


@pytest.mark.parametrize("N,M", SHAPES)
def test_basis_shapes_and_definitions(N, M):
    b = get_basis(N, M, xp=anp, dtype=np.float64)
    assert (b.n_coeffs, b.n_nodes) == (N, M)
    assert b.tau.shape == b.weights.shape == (M,)
    assert b.phi_tilde.shape == b.d_tilde.shape == b.picard.shape == (N - 2, M)
    assert b.end_value.shape == b.end_slope.shape == (N - 2,)
    assert_array_equal(b.tau, cgl_nodes(M))
    assert_allclose(b.weights, clenshaw_curtis_weights(M), rtol=1e-15)

    # Φ̃, D̃ from their definitions, with numpy's Chebyshev module
    eye = np.eye(N)
    tau = np.array(cgl_nodes(M))
    phi = np.empty((N - 2, M))
    dph = np.empty((N - 2, M))
    for n in range(2, N):
        dn = C.chebder(eye[n])
        t_m1 = C.chebval(-1.0, eye[n])
        dt_m1 = C.chebval(-1.0, dn)
        phi[n - 2] = C.chebval(tau, eye[n]) - t_m1 - dt_m1 * (1 + tau)
        dph[n - 2] = C.chebval(tau, dn) - dt_m1
    scale = max(1, (N - 1) ** 2)
    assert_allclose(b.phi_tilde, phi, rtol=0, atol=1e-13 * scale)
    assert_allclose(b.d_tilde, dph, rtol=0, atol=1e-13 * scale)
    assert_array_equal(b.end_value, b.phi_tilde[:, -1])
    assert_array_equal(b.end_slope, b.d_tilde[:, -1])


@pytest.mark.parametrize("N,M", SHAPES)
def test_tilde_matrices_vanish_at_the_first_node(N, M):
    b = get_basis(N, M, xp=anp, dtype=np.float64)
    # Φ̃[n, 0] = T_n(-1) - T_n(-1) - 0 and D̃[n, 0] = T_n'(-1) - T_n'(-1): exactly zero
    assert_array_equal(b.phi_tilde[:, 0], 0.0)
    assert_array_equal(b.d_tilde[:, 0], 0.0)
    # ... and nowhere else identically (the columns carry information)
    assert np.all(np.abs(b.d_tilde[:, 1:]).max(axis=0) > 0)


@pytest.mark.parametrize("N,M", SHAPES)
def test_picard_operator_is_the_weighted_least_squares_solution(N, M):
    """P = (D̃ W D̃ᵀ)^{-1} D̃ W, and P D̃ᵀ = I (it reproduces anything in D̃'s row space)."""
    b = get_basis(N, M, xp=anp, dtype=np.float64)
    D, W = b.d_tilde, np.diag(b.weights)
    P = np.linalg.solve(D @ W @ D.T, D @ W)
    assert_allclose(b.picard, P, rtol=0, atol=1e-10 * np.abs(P).max())
    assert_allclose(b.picard @ D.T, np.eye(N - 2), rtol=0, atol=1e-11)


def test_get_basis_caches_and_validates():
    b1 = get_basis(9, 8, xp=anp, dtype=np.float64)
    assert get_basis(9, 8, xp=anp, dtype=np.float64) is b1
    assert get_basis(9, 9, xp=anp, dtype=np.float64) is not b1
    assert get_basis(9, 8, xp=anp, dtype=np.float32) is not b1
    with pytest.raises(ValueError):
        get_basis(2, 4, xp=anp, dtype=np.float64)
    with pytest.raises(ValueError):
        get_basis(8, 6, xp=anp, dtype=np.float64)


# ---------------------------------------------------------------------- picard.py


def _poly_problem(N, K, L, seed):
    """y' = g(t), g polynomial of degree N-2 in t, on K segments [t_a, t_a + h].

    Returns everything as exact power-basis polynomials in τ (per k, l) as well.
    """
    rng = np.random.default_rng(seed)
    t_a = rng.uniform(-2, 2, K)
    h = rng.choice([-1.0, 1.0], K) * rng.uniform(0.1, 3.0, K)  # forward and backward
    y_a = rng.standard_normal((K, L))
    # g as a polynomial in τ directly (degree N-2): g_k,l(τ) = Σ_j a_j τ^j
    g_tau = rng.standard_normal((K, L, N - 1))
    # y(τ) = y_a + (h/2) ∫_{-1}^{τ} g(s) ds
    y_tau = np.empty((K, L, N))
    for k in range(K):
        for l in range(L):
            anti = np.polynomial.polynomial.polyint(g_tau[k, l], lbnd=-1.0) * (h[k] / 2)
            anti[0] += y_a[k, l]
            y_tau[k, l] = anti
    return t_a, h, y_a, g_tau, y_tau


@pytest.mark.parametrize("N,M", [(3, 2), (5, 4), (8, 7), (8, 12), (16, 15), (16, 30)])
def test_picard_update_exact_for_polynomial_right_hand_side(N, M):
    K, L = 3, 2
    t_a, h, y_a, g_tau, y_tau = _poly_problem(N, K, L, seed=N * 100 + M)
    b = get_basis(N, M, xp=anp, dtype=np.float64)
    tau = np.asarray(b.tau)
    P = np.polynomial.polynomial
    f_nodes = np.stack([[P.polyval(tau, g_tau[k, l]) for l in range(L)] for k in range(K)])
    f_a = f_nodes[..., 0]
    half_h = (h / 2)[:, None]
    # f does not depend on y, so one update (from any X: it does not use X) is the fixed point
    x = picard_update(b, f_a, f_nodes, half_h, xp=anp)
    assert x.shape == (K, L, N - 2)
    y_nodes = node_values(b, y_a, f_a, half_h, x, xp=anp)
    exact_nodes = np.stack([[P.polyval(tau, y_tau[k, l]) for l in range(L)]
                            for k in range(K)])
    size = np.abs(exact_nodes).max()
    assert_allclose(y_nodes, exact_nodes, rtol=0, atol=1e-13 * size)
    c = coefficients(b, y_a, f_a, half_h, x, xp=anp)
    assert c.shape == (K, L, N)
    for k in range(K):
        for l in range(L):
            fit = C.poly2cheb(y_tau[k, l])  # exact conversion of the exact polynomial
            fit = np.concatenate([fit, np.zeros(N - fit.size)])
            fit2 = C.chebfit(np.linspace(-1, 1, 3 * N), P.polyval(np.linspace(-1, 1, 3 * N),
                                                                    y_tau[k, l]), N - 1)
            assert_allclose(c[k, l], fit, rtol=0, atol=1e-13 * size)
            assert_allclose(c[k, l], fit2, rtol=0, atol=1e-12 * size)
    assert_allclose(end_value(b, y_a, f_a, half_h, x, xp=anp),
                    np.stack([[P.polyval(1.0, y_tau[k, l]) for l in range(L)]
                              for k in range(K)]), rtol=0, atol=1e-13 * size)


def test_picard_update_not_exact_beyond_degree():
    """Sanity: a degree-(N-1) right-hand side is *not* reproduced (the test above can fail)."""
    N, M = 6, 5
    b = get_basis(N, M, xp=anp, dtype=np.float64)
    tau = np.asarray(b.tau)
    g = tau ** (N - 1)  # y' = τ^(N-1) (h = 2), y = (τ^N - 1)/N: degree N
    f_nodes = g[None, None, :]
    f_a = f_nodes[..., 0]
    x = picard_update(b, f_a, f_nodes, np.array([[1.0]]), xp=anp)
    y_nodes = node_values(b, np.zeros((1, 1)), f_a, np.array([[1.0]]), x, xp=anp)
    err = np.abs(y_nodes[0, 0] - (tau**N - 1) / N).max()
    assert err > 1e-4


@pytest.mark.parametrize("N,M", [(4, 3), (8, 7), (8, 11), (32, 31)])
def test_coefficients_impose_initial_conditions_and_end_value(N, M):
    K, L = 4, 3
    rng = np.random.default_rng(N + M)
    b = get_basis(N, M, xp=anp, dtype=np.float64)
    y_a = rng.standard_normal((K, L))
    f_a = rng.standard_normal((K, L))
    half_h = rng.uniform(-2, 2, (K, 1))
    x = rng.standard_normal((K, L, N - 2))
    c = coefficients(b, y_a, f_a, half_h, x, xp=anp)
    n = np.arange(N)
    y_m1 = c @ ((-1.0) ** n)  # y(-1)
    dy_m1 = c @ ((-1.0) ** (n + 1) * n**2)  # dy/dτ at -1
    size = np.abs(c).max() * N**2
    assert_allclose(y_m1, y_a, rtol=0, atol=4e-16 * size)
    assert_allclose(dy_m1 / half_h, f_a, rtol=0, atol=4e-16 * size / np.abs(half_h).min())
    # node values are the series at the nodes
    y_nodes = node_values(b, y_a, f_a, half_h, x, xp=anp)
    tau = np.asarray(b.tau)
    series = np.stack([[C.chebval(tau, c[k, l]) for l in range(L)] for k in range(K)])
    assert_allclose(y_nodes, series, rtol=0, atol=1e-15 * size)
    assert_allclose(y_nodes[..., 0], y_a, rtol=0, atol=1e-15 * size)
    # end_value is the last node value
    ev = end_value(b, y_a, f_a, half_h, x, xp=anp)
    assert ev.shape == (K, L)
    assert_allclose(ev, y_nodes[..., -1], rtol=0, atol=1e-15 * size)
    assert_allclose(ev, c.sum(axis=-1), rtol=0, atol=1e-15 * size)  # T_n(1) = 1


# ---------------------------------------------------------------------- float32


@pytest.mark.parametrize("N,M", [(8, 7), (16, 15), (16, 20)])
def test_float32_basis(N, M):
    b64 = get_basis(N, M, xp=anp, dtype=np.float64)
    b32 = get_basis(N, M, xp=anp, dtype=np.float32)
    for name in ("tau", "weights", "phi_tilde", "d_tilde", "picard", "end_value",
                 "end_slope", "t_minus1", "dt_minus1"):
        a32, a64 = getattr(b32, name), getattr(b64, name)
        assert a32.dtype == np.float32, name
        # built in float64 and cast once: the float32 fields are the rounded float64 ones
        assert_array_equal(a32, a64.astype(np.float32), err_msg=name)
    assert b32.tau[0] == -1 and b32.tau[-1] == 1
    assert_array_equal(b32.phi_tilde[:, 0], 0)
    assert_array_equal(b32.d_tilde[:, 0], 0)


def test_float32_picard_exact_for_polynomial():
    N, M, K, L = 10, 12, 2, 2
    t_a, h, y_a, g_tau, y_tau = _poly_problem(N, K, L, seed=3)
    b = get_basis(N, M, xp=anp, dtype=np.float32)
    tau = np.asarray(b.tau, dtype=np.float64)
    P = np.polynomial.polynomial
    f_nodes = np.stack([[P.polyval(tau, g_tau[k, l]) for l in range(L)] for k in range(K)])
    f32 = f_nodes.astype(np.float32)
    half_h = (h / 2)[:, None].astype(np.float32)
    x = picard_update(b, f32[..., 0], f32, half_h, xp=anp)
    y_nodes = node_values(b, y_a.astype(np.float32), f32[..., 0], half_h, x, xp=anp)
    assert x.dtype == y_nodes.dtype == np.float32
    exact = np.stack([[P.polyval(tau, y_tau[k, l]) for l in range(L)] for k in range(K)])
    assert_allclose(y_nodes, exact, rtol=0, atol=1e-5 * np.abs(exact).max())


# ---------------------------------------------------------------------- array_api_strict


@pytest.mark.parametrize("N,M", [(3, 2), (8, 7), (8, 12), (32, 31)])
def test_basis_under_array_api_strict(N, M):
    xp = pytest.importorskip("array_api_strict")
    bs = get_basis(N, M, xp=xp, dtype=xp.float64)
    bn = get_basis(N, M, xp=anp, dtype=np.float64)
    for name in ("tau", "weights", "phi_tilde", "d_tilde", "picard", "end_value",
                 "end_slope", "t_minus1", "dt_minus1"):
        a = getattr(bs, name)
        assert isinstance(a, xp.asarray(0.0).__class__), name
        assert a.dtype == xp.float64
        ref = getattr(bn, name)
        assert_allclose(_np(a), ref, rtol=0, atol=1e-14 * max(1.0, np.abs(ref).max()),
                        err_msg=name)


def test_picard_functions_under_array_api_strict():
    xp = pytest.importorskip("array_api_strict")
    N, M, K, L = 8, 10, 2, 3
    rng = np.random.default_rng(5)
    y_a, f_a = rng.standard_normal((K, L)), rng.standard_normal((K, L))
    half_h = rng.uniform(0.1, 1, (K, 1))
    f_nodes = rng.standard_normal((K, L, M))
    bs = get_basis(N, M, xp=xp, dtype=xp.float64)
    bn = get_basis(N, M, xp=anp, dtype=np.float64)
    S = lambda a: xp.asarray(a)  # noqa: E731
    xs = picard_update(bs, S(f_a), S(f_nodes), S(half_h), xp=xp)
    xn = picard_update(bn, f_a, f_nodes, half_h, xp=anp)
    assert_allclose(_np(xs), xn, rtol=0, atol=1e-13)
    for fn in (node_values, coefficients, end_value):
        assert_allclose(_np(fn(bs, S(y_a), S(f_a), S(half_h), xs, xp=xp)),
                        fn(bn, y_a, f_a, half_h, xn, xp=anp), rtol=0, atol=1e-13)


def test_exact_fraction_sanity_of_weights():
    """Clenshaw–Curtis with M = 4 (nodes ±1, ±1/2): weights 1/9, 8/9, 8/9, 1/9."""
    w = clenshaw_curtis_weights(4)
    exact = [Fraction(1, 9), Fraction(8, 9), Fraction(8, 9), Fraction(1, 9)]
    assert_allclose(w, [float(v) for v in exact], rtol=1e-15)


# ---------------------------------------------------------------------- numba kernels


@pytest.mark.parametrize("stiff", [False, True])
@pytest.mark.parametrize("rows", [(1, 1), (3, 1), (3, 3)])
def test_polynomial_kernels_match_array_api_code(monkeypatch, stiff, rows):
    """The numba node values, end values, coefficients and node times against the array
    code, on both bases, with X of K rows and y_a, f_a, h/2 of one row (the candidate
    starts of one segment) or of K; rows that do not broadcast raise."""
    from chebpan._kernels import dispatch
    from chebpan._core.picard import node_times

    k, k_start = rows
    rng = np.random.default_rng(41)
    basis = get_basis(12, 12 if stiff else 11, xp=anp, dtype=np.float64, stiff=stiff)
    n = 3
    y_a = rng.normal(scale=5.0, size=(k_start, n))
    f_a = rng.normal(scale=50.0, size=(k_start, n))
    half_h = rng.uniform(-0.5, 0.5, size=(k_start, 1))
    x = rng.normal(size=(k, n, basis.n_free)) * 10.0 ** -np.arange(basis.n_free)
    # (a transposed view: the kernels take arrays of any layout)
    x = np.ascontiguousarray(np.swapaxes(x, 0, 1)).swapaxes(0, 1)

    def run():
        return (node_values(basis, y_a, f_a, half_h, x, xp=anp),
                end_value(basis, y_a, f_a, half_h, x, xp=anp),
                coefficients(basis, y_a, f_a, half_h, x, xp=anp),
                node_times(basis, 0.1, 0.1 + 3e-7, xp=anp))

    got = run()
    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
    want = run()
    for value, expected in zip(got, want):
        assert value.shape == expected.shape and value.dtype == expected.dtype
        assert_allclose(value, expected, rtol=1e-14, atol=1e-14 * np.abs(expected).max())
    assert got[3][-1] == 0.1 + 3e-7  # (the last node is t_b itself)
    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", False)
    if k > 1:
        with pytest.raises(ValueError, match="K rows or one"):
            node_values(basis, np.zeros((2, n)), f_a, half_h, x, xp=anp)

"""Tests of chebpan._core.newton: residual, analytic gradient, Gauss–Newton matrix, Newton step.

The gradient is checked against central finite differences of the objective itself,
H against the explicit formula of docs/algorithm.md ("Newton steps") and against exact second differences of a
quadratic objective, and the Newton step against the exactness it must have on
linear problems.
"""

import math

import array_api_compat.numpy as anp
import numpy as np
import pytest
import scipy.linalg
from numpy.testing import assert_allclose

from chebpan._core.basis import get_basis
from chebpan._core.newton import (
    gauss_newton_matrix,
    gradient,
    linearised_start,
    newton_direction,
    objective,
    residual,
    residual_jacobian,
)
from chebpan._core.picard import end_value, node_values
from chebpan._kernels import dispatch
from chebpan.testing import lorenz, spiral


class Segment:
    """A batch of K segments [t_a, t_a + h] of y' = fun(t, y) with the (N, M) basis."""

    def __init__(self, fun, jac, y_a, t_a, h, N, M):
        self.fun, self.jac = fun, jac
        self.basis = b = get_basis(N, M, xp=anp, dtype=np.float64)
        self.y_a = np.asarray(y_a, dtype=float)  # (K, L)
        self.t_a = np.asarray(t_a, dtype=float)  # (K,)
        self.h = np.asarray(h, dtype=float)  # (K,)
        self.half_h = (self.h / 2)[:, None]
        self.t_nodes = self.t_a[:, None] + self.half_h * (1 + np.asarray(b.tau))  # (K, M)
        self.f_a = np.stack([fun(self.t_a[k], self.y_a[k]) for k in range(len(self.t_a))])

    def y_nodes(self, x):
        return node_values(self.basis, self.y_a, self.f_a, self.half_h, x, xp=anp)

    def f_nodes(self, x):
        y = self.y_nodes(x)
        return np.stack([self.fun(self.t_nodes[k], y[k]) for k in range(y.shape[0])])

    def jac_nodes(self, x):
        """(K, M, L, L) from a vectorised jac returning (L, L, M)."""
        y = self.y_nodes(x)
        return np.stack([np.moveaxis(self.jac(self.t_nodes[k], y[k]), -1, 0)
                         for k in range(y.shape[0])])

    def residual(self, x):
        return residual(self.basis, self.f_a, self.f_nodes(x), self.half_h, x, xp=anp)

    def objective(self, x):
        return objective(self.basis, self.residual(x), np.ones(x.shape[0]), xp=anp)

    def a_matrix(self, x):
        return residual_jacobian(self.basis, self.jac_nodes(x), self.half_h, xp=anp)

    def gradient(self, x):
        return gradient(self.basis, self.a_matrix(x), self.residual(x), xp=anp)


def _tanh_problem():
    """y' = tanh(A y) with a non-normal 3×3 A, and its exact Jacobian (vectorised)."""
    A = np.array([[0.3, 1.0, -0.5], [-1.2, -0.1, 0.4], [0.2, -0.7, 0.5]])

    def fun(t, y):
        return np.tanh(A @ y)

    def jac(t, y):
        s = 1 - np.tanh(A @ y) ** 2  # (L, M)
        return s[:, None, :] * A[:, :, None]

    return fun, jac, np.array([[1.0, -0.5, 0.3], [0.2, 0.4, -1.0]])


def _lorenz_problem():
    p = lorenz()
    return p.fun, p.jac, np.array([p.y0, [-5.0, 3.0, 20.0]])


def _spiral_problem():
    p = spiral()
    return p.fun, p.jac, np.array([p.y0, [-1.0, 0.5]])


def _time_dependent_problem():
    """y' = sin(t) y1 y2 − y3, ...: explicitly t-dependent, to check the node times."""
    def fun(t, y):
        return np.stack([np.sin(t) * y[0] * y[1] - y[2], np.cos(3 * t) * y[0] ** 2, y[0] - y[1]])

    def jac(t, y):
        z, one = np.zeros_like(y[0]), np.ones_like(y[0])
        return np.stack([
            np.stack([np.sin(t) * y[1], np.sin(t) * y[0], -one]),
            np.stack([2 * np.cos(3 * t) * y[0], z, z]),
            np.stack([one, -one, z]),
        ])

    return fun, jac, np.array([[0.7, -0.2, 0.4], [1.1, 0.3, -0.6]])


PROBLEMS = {
    "tanh": _tanh_problem,
    "lorenz": _lorenz_problem,
    "spiral": _spiral_problem,
    "time": _time_dependent_problem,
}
# (N, M, h per batch member): collocation and least squares, forward and backward
SETUPS = [(8, 7, [0.3, -0.2]), (8, 11, [0.25, 0.15]), (12, 11, [-0.1, 0.4])]


def _random_x(rng, K, L, N, scale=0.05):
    # decaying coefficients, like a smooth solution's
    return scale * rng.standard_normal((K, L, N - 2)) / np.arange(2, N)[None, None, :] ** 2


def _fd_gradient(seg, x, step=1e-6):
    """Central differences of the objective, per entry of X (per batch member)."""
    g = np.zeros_like(x)
    for idx in np.ndindex(*x.shape[1:]):
        d = np.zeros_like(x)
        d[(slice(None), *idx)] = step
        g[(slice(None), *idx)] = (seg.objective(x + d) - seg.objective(x - d)) / (2 * step)
    return g


@pytest.mark.parametrize("name", sorted(PROBLEMS))
@pytest.mark.parametrize("N,M,h", SETUPS)
def test_gradient_matches_central_differences(name, N, M, h):
    fun, jac, y_a = PROBLEMS[name]()
    K, L = y_a.shape
    seg = Segment(fun, jac, y_a, t_a=[0.3, -1.0], h=h, N=N, M=M)
    rng = np.random.default_rng(N * M)
    x = _random_x(rng, K, L, N, scale=0.5 * np.abs(y_a).max())
    r = seg.residual(x)
    assert r.shape == (K, L, M)
    assert np.all(seg.objective(x) > 0)
    g = seg.gradient(x)
    assert g.shape == x.shape
    g_fd = _fd_gradient(seg, x, step=1e-6 * max(1.0, np.abs(x).max()))
    for k in range(K):
        err = np.abs(g[k] - g_fd[k]).max() / np.abs(g_fd[k]).max()
        assert err < 1e-6, (k, err)


def test_gradient_check_detects_a_wrong_jacobian():
    """Sanity for the test above: a slightly wrong J gives a gradient the FD check rejects."""
    fun, jac, y_a = _lorenz_problem()
    N, M = 8, 7
    wrong = lambda t, y: jac(t, y) * 1.01  # noqa: E731
    seg = Segment(fun, jac, y_a, [0.0, 0.0], [0.2, 0.2], N, M)
    seg_wrong = Segment(fun, wrong, y_a, [0.0, 0.0], [0.2, 0.2], N, M)
    x = _random_x(np.random.default_rng(0), 2, 3, N, scale=5.0)
    g_fd = _fd_gradient(seg, x)
    err = np.abs(seg_wrong.gradient(x) - g_fd).max() / np.abs(g_fd).max()
    assert err > 1e-4


def test_residual_is_zero_at_first_node_and_matches_definition():
    fun, jac, y_a = _tanh_problem()
    N, M = 10, 13
    seg = Segment(fun, jac, y_a, [0.1, 2.0], [0.5, -0.3], N, M)
    x = _random_x(np.random.default_rng(1), 2, 3, N, scale=1.0)
    r = seg.residual(x)
    assert np.all(r[..., 0] == 0) or np.abs(r[..., 0]).max() < 1e-15
    # definition: r̃_m = (h/2) (f_a − f(t_m, y_m)) + Σ_n X_n D̃[n, m] = (h/2) (y'(t_m) − f(t_m, y_m))
    # with y' from numpy's derivative of the Chebyshev series of the same polynomial
    from chebpan._core.picard import coefficients
    import numpy.polynomial.chebyshev as C
    c = coefficients(seg.basis, seg.y_a, seg.f_a, seg.half_h, x, xp=anp)
    tau = np.asarray(seg.basis.tau)
    f = seg.f_nodes(x)
    for k in range(2):
        dy_dtau = np.stack([C.chebval(tau, C.chebder(c[k, l])) for l in range(3)])
        assert_allclose(r[k], dy_dtau - seg.half_h[k] * f[k], rtol=0, atol=1e-13)
    # objective = Σ_m w_m ‖r_m‖²
    w = np.asarray(seg.basis.weights)
    assert_allclose(seg.objective(x), np.einsum("klm,m->k", r * r, w), rtol=1e-14)


def _design_formulas(seg, x):
    """docs/algorithm.md's ∇e and H (unscaled residual), from the quadruple sum."""
    b = seg.basis
    D, Phi, w = np.asarray(b.d_tilde), np.asarray(b.phi_tilde), np.asarray(b.weights)
    J = seg.jac_nodes(x)  # (K, M, L, L)
    K, M, L, _ = J.shape
    n = b.n_coeffs - 2
    r = seg.residual(x) / seg.half_h[:, :, None]  # docs/algorithm.md's unscaled r_m, (K, n, M)
    grads, hs = [], []
    for k in range(K):
        s = 2 / seg.h[k]
        g = 2 * (np.einsum("m,nm,lm->ln", w, s * D, r[k])
                 - np.einsum("m,nm,mil,im->ln", w, Phi, J[k], r[k]))
        eye = np.eye(L)
        H = 2 * (np.einsum("m,nm,km,ij->injk", w, s * s * D, D, eye)
                 - np.einsum("m,nm,km,mij->injk", w, s * D, Phi, J[k])
                 - np.einsum("m,nm,km,mji->injk", w, s * Phi, D, J[k])
                 + np.einsum("m,nm,km,mli,mlj->injk", w, Phi, Phi, J[k], J[k]))
        grads.append(g)
        hs.append(H.reshape(L * n, L * n))  # layout (i, n) = X's (L, N-2), flattened
    return np.stack(grads), np.stack(hs)


@pytest.mark.parametrize("name", ["lorenz", "tanh", "time"])
@pytest.mark.parametrize("N,M,h", SETUPS)
def test_gradient_and_hessian_match_design_formulas(name, N, M, h):
    """newton.py works with r̃ = (h/2) r: its ∇ẽ and H̃ are docs/algorithm.md's times (h/2)²."""
    fun, jac, y_a = PROBLEMS[name]()
    seg = Segment(fun, jac, y_a, [0.0, 1.0], h, N, M)
    x = _random_x(np.random.default_rng(2), *y_a.shape, N, scale=1.0)
    a = seg.a_matrix(x)
    g = gradient(seg.basis, a, seg.residual(x), xp=anp)
    H = gauss_newton_matrix(a, xp=anp)
    g_design, h_design = _design_formulas(seg, x)
    for k in range(y_a.shape[0]):
        q = (seg.h[k] / 2) ** 2
        assert_allclose(g[k], q * g_design[k], rtol=0, atol=1e-12 * np.abs(g[k]).max())
        assert_allclose(H[k], q * h_design[k], rtol=0, atol=1e-12 * np.abs(H[k]).max())


@pytest.mark.parametrize("name", sorted(PROBLEMS))
@pytest.mark.parametrize("N,M,h", SETUPS)
def test_gauss_newton_matrix_symmetric_psd(name, N, M, h):
    fun, jac, y_a = PROBLEMS[name]()
    K, L = y_a.shape
    seg = Segment(fun, jac, y_a, [0.0, 1.0], h, N, M)
    x = _random_x(np.random.default_rng(3), K, L, N, scale=1.0)
    H = gauss_newton_matrix(seg.a_matrix(x), xp=anp)
    n = L * (N - 2)
    assert H.shape == (K, n, n)
    for k in range(K):
        assert_allclose(H[k], H[k].T, rtol=0, atol=1e-14 * np.abs(H[k]).max())
        eig = np.linalg.eigvalsh(H[k])
        assert eig.min() >= -1e-12 * eig.max()
        assert eig.max() > 0


def _linear_problem(L=3, seed=0):
    """y' = A y + b(t): f affine in y with the exact constant Jacobian."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((L, L))
    v = rng.standard_normal(L)

    def fun(t, y):
        return A @ y + np.multiply.outer(v, np.sin(2 * np.asarray(t)))

    def jac(t, y):
        return np.broadcast_to(A[:, :, None], (L, L, np.shape(y)[-1]))

    return fun, jac, A, v


@pytest.mark.parametrize("N,M,h", SETUPS)
def test_hessian_is_exact_second_difference_for_linear_f(N, M, h):
    """For affine f, ẽ is quadratic with Hessian exactly H: e(X+d)+e(X−d)−2e(X) = dᵀHd."""
    fun, jac, A, v = _linear_problem()
    y_a = np.array([[1.0, -0.5, 0.25], [0.3, 0.2, -0.8]])
    seg = Segment(fun, jac, y_a, [0.0, 0.5], h, N, M)
    rng = np.random.default_rng(4)
    x = _random_x(rng, 2, 3, N, scale=1.0)
    H = gauss_newton_matrix(seg.a_matrix(x), xp=anp)
    for _ in range(3):
        d = rng.standard_normal(x.shape)
        second = seg.objective(x + d) + seg.objective(x - d) - 2 * seg.objective(x)
        quad = np.einsum("ki,kij,kj->k", d.reshape(2, -1), H, d.reshape(2, -1))
        assert_allclose(second, quad, rtol=1e-10)


@pytest.mark.parametrize("N,h", [(6, [0.5, -0.3]), (10, [0.2, 1.0]), (16, [-0.7, 0.4])])
def test_one_newton_step_is_exact_for_linear_odes_collocation(N, h):
    """Collocation (M = N − 1): one Newton step from any X zeroes the residual."""
    M = N - 1
    fun, jac, A, v = _linear_problem(seed=N)
    y_a = np.array([[1.0, -0.5, 0.25], [0.3, 0.2, -0.8]])
    seg = Segment(fun, jac, y_a, [0.0, 0.5], h, N, M)
    rng = np.random.default_rng(5)
    x = _random_x(rng, 2, 3, N, scale=2.0)
    r0 = seg.residual(x)
    a = seg.a_matrix(x)
    g = gradient(seg.basis, a, r0, xp=anp)
    d = newton_direction(gauss_newton_matrix(a, xp=anp), g, xp=anp)
    assert d.shape == x.shape
    assert np.all(np.einsum("kln,kln->k", g, d) < 0)  # a descent direction
    r1 = seg.residual(x + d)
    for k in range(2):
        assert np.abs(r1[k]).max() <= 1e-12 * max(1.0, np.abs(r0[k]).max()), np.abs(r1[k]).max()


def test_newton_collocation_solution_is_the_exact_solution_for_linear_ode():
    """The collocation polynomial of y' = A y + b(t) on a short segment is spectrally
    accurate: its end value agrees with the exact solution (variation of constants)."""
    N, M = 20, 19
    fun, jac, A, v = _linear_problem(seed=11)
    y_a = np.array([[1.0, -0.5, 0.25]])
    h = 0.5
    seg = Segment(fun, jac, y_a, [0.1], [h], N, M)
    x = np.zeros((1, 3, N - 2))
    a = seg.a_matrix(x)
    g = gradient(seg.basis, a, seg.residual(x), xp=anp)
    x = x + newton_direction(gauss_newton_matrix(a, xp=anp), g, xp=anp)
    y_end = end_value(seg.basis, seg.y_a, seg.f_a, seg.half_h, x, xp=anp)[0]

    # exact: y(t) = e^{A(t−t_a)} y_a + ∫ e^{A(t−s)} v sin(2 s) ds, via the augmented
    # linear system z = (y, sin 2t, cos 2t): z' = B z
    B = np.zeros((5, 5))
    B[:3, :3] = A
    B[:3, 3] = v
    B[3, 4] = 2.0
    B[4, 3] = -2.0
    z0 = np.concatenate([y_a[0], [np.sin(0.2), np.cos(0.2)]])
    exact = (scipy.linalg.expm(B * h) @ z0)[:3]
    assert_allclose(y_end, exact, rtol=0, atol=1e-13)


@pytest.mark.parametrize("N,M", [(8, 11), (12, 20)])
def test_one_newton_step_minimises_linear_least_squares(N, M):
    """Least squares (M > N − 1): for affine f one step reaches the minimiser (∇ẽ = 0)."""
    fun, jac, A, v = _linear_problem(seed=M)
    y_a = np.array([[1.0, -0.5, 0.25], [0.3, 0.2, -0.8]])
    seg = Segment(fun, jac, y_a, [0.0, 0.5], [0.8, -0.6], N, M)
    x = _random_x(np.random.default_rng(6), 2, 3, N, scale=2.0)
    a = seg.a_matrix(x)
    g0 = gradient(seg.basis, a, seg.residual(x), xp=anp)
    d = newton_direction(gauss_newton_matrix(a, xp=anp), g0, xp=anp)
    g1 = seg.gradient(x + d)
    e0, e1 = seg.objective(x), seg.objective(x + d)
    assert np.all(e1 < e0)
    for k in range(2):
        assert np.abs(g1[k]).max() <= 1e-11 * np.abs(g0[k]).max()
        # and it is a minimum: no random perturbation decreases ẽ
        for s in np.random.default_rng(k).standard_normal((3, *x.shape[1:])):
            xp_ = (x + d).copy()
            xp_[k] += 1e-3 * s
            assert seg.objective(xp_)[k] >= e1[k]


def test_newton_not_exact_for_nonlinear_ode():
    """Sanity: on a nonlinear f, one step does not zero the residual (the tests above can fail)."""
    fun, jac, y_a = _lorenz_problem()
    N = 10
    seg = Segment(fun, jac, y_a, [0.0, 0.0], [0.3, 0.3], N, N - 1)
    x = _random_x(np.random.default_rng(7), 2, 3, N, scale=5.0)
    a = seg.a_matrix(x)
    g = gradient(seg.basis, a, seg.residual(x), xp=anp)
    d = newton_direction(gauss_newton_matrix(a, xp=anp), g, xp=anp)
    assert np.abs(seg.residual(x + d)).max() > 1e-8


@pytest.mark.parametrize("N, M", [(12, 11), (32, 31), (8, 12)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dense_newton_kernels_match_array_api_code(monkeypatch, N, M, dtype):
    """The numba gradient and Gauss–Newton direction against the array-API code,
    (their sums run in another order: rounding differences, amplified by the
    condition of H, are all that may differ)."""
    from chebpan._core.newton import DenseLinearization

    rng = np.random.default_rng(11)
    basis = get_basis(N, M, xp=anp, dtype=dtype)
    k, n = 4, 3
    jac = rng.normal(scale=3.0, size=(k, M, n, n)).astype(dtype)
    half_h = rng.uniform(0.01, 0.5, size=(k, 1)).astype(dtype)
    r = rng.normal(size=(k, n, M)).astype(dtype)
    kernel = DenseLinearization(basis, jac, half_h, xp=anp)
    assert kernel.kernels is not None
    grad = kernel.gradient(r)
    step = kernel.direction(r, grad)
    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
    reference = DenseLinearization(basis, jac, half_h, xp=anp)
    assert reference.kernels is None
    want_grad = reference.gradient(r)
    want_step = reference.direction(r, want_grad)
    assert grad.dtype == step.dtype == dtype
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    assert_allclose(grad, want_grad, rtol=rtol, atol=rtol * np.abs(want_grad).max())
    assert_allclose(step, want_step, rtol=rtol, atol=rtol * np.abs(want_step).max())


@pytest.mark.parametrize("stiff, n_nodes", [(False, 11), (False, 12), (True, 11), (True, 12)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_residual_measures_kernel_matches_array_api_code(monkeypatch, stiff, n_nodes,
                                                        dtype):
    """The fused numba residual, gradient, objective and slope of a Newton iterate
    against the array-API functions they replace, on both bases (the stiff one
    without the slope term; with one node more than the free coefficients it is square,
    the collocation case; the paper's basis with 12 nodes is a least-squares fit, the
    Gauss–Newton case)."""
    from chebpan._core.newton import (
        DenseLinearization,
        directional_slope,
        objective,
        residual,
        residual_measures,
    )

    rng = np.random.default_rng(13)
    basis = get_basis(12, n_nodes, xp=anp, dtype=dtype, stiff=stiff)
    k, n, m = 3, 4, basis.n_nodes
    jac = rng.normal(scale=3.0, size=(k, m, n, n)).astype(dtype)
    half_h = rng.uniform(0.01, 0.5, size=(k, 1)).astype(dtype)
    f_a = rng.normal(size=(k, n)).astype(dtype)
    f_nodes = rng.normal(size=(k, n, m)).astype(dtype)
    x = rng.normal(size=(k, n, basis.n_free)).astype(dtype)
    direction = rng.normal(size=x.shape).astype(dtype)
    size = rng.uniform(0.5, 20.0, size=k).astype(dtype)
    linear = DenseLinearization(basis, jac, half_h, xp=anp)
    assert linear.kernels is not None
    assert linear.collocation == (n_nodes - 1 == basis.n_free)
    got = residual_measures(basis, linear, f_a, f_nodes, half_h, x, size, direction, xp=anp)
    r = residual(basis, f_a, f_nodes, half_h, x, xp=anp)
    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
    grad = DenseLinearization(basis, jac, half_h, xp=anp).gradient(r)
    want = (r, grad, objective(basis, r, size, xp=anp),
            directional_slope(grad, direction, size, xp=anp))
    rtol = 1e-12 if dtype == np.float64 else 1e-4
    for value, expected in zip(got, want):
        assert value.dtype == dtype and value.shape == expected.shape
        assert_allclose(value, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


@pytest.mark.parametrize("with_jac", [True, False])
def test_candidate_measures_kernel_matches_array_api_code(monkeypatch, with_jac):
    """The numba objective and finiteness of candidate starts against the array code:
    one segment's f_a, h/2 and size broadcast against four candidates, one of them
    with a non-finite F and one with a non-finite J."""
    from chebpan._core.newton import candidate_measures

    rng = np.random.default_rng(17)
    basis = get_basis(12, 11, xp=anp, dtype=np.float64)
    k, n, m = 4, 3, basis.n_nodes
    f_a = rng.normal(size=(1, n))
    half_h = np.array([[0.3]])
    size = np.array([4.0])
    x = rng.normal(size=(k, n, basis.n_free))
    f_nodes = rng.normal(size=(k, n, m))
    f_nodes[1, 2, 5] = np.nan
    jac = rng.normal(size=(k, m, n, n)) if with_jac else None
    if with_jac:
        jac[2, 3, 0, 1] = np.inf
    got = candidate_measures(basis, f_a, f_nodes, half_h, x, jac, size, xp=anp)
    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
    want = candidate_measures(basis, f_a, f_nodes, half_h, x, jac, size, xp=anp)
    np.testing.assert_array_equal(got[1], [True, False, True, True])
    np.testing.assert_array_equal(got[1], want[1])
    if with_jac:
        np.testing.assert_array_equal(got[2], [True, True, False, True])
        np.testing.assert_array_equal(got[2], want[2])
    else:
        assert got[2] is None and want[2] is None
    usable = np.asarray(want[1])
    assert_allclose(np.asarray(got[0])[usable], np.asarray(want[0])[usable], rtol=1e-13)


@pytest.mark.parametrize("numba", [True, False])
def test_square_paper_basis_step_is_the_gauss_newton_step(monkeypatch, numba):
    """With its default nodes (M = N − 1) the paper's basis fits as many nodes as it has
    free coefficients: the collocation solve ``A d = −√W r̃`` (LU) is the Gauss–Newton
    step ``(2AᵀA) d = −∇ẽ`` of the modified LDLᵀ wherever AᵀA needs no modification,
    at a quarter of its condition number's square (docs/algorithm.md, "Newton steps")."""
    from chebpan._core.newton import (
        DenseLinearization,
        gauss_newton_matrix,
        gradient,
        newton_direction,
        residual,
        residual_jacobian,
    )

    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", not numba)
    rng = np.random.default_rng(31)
    basis, jac, half_h, f_a, f_nodes, x = _random_iterate(rng, False, 11)
    r = residual(basis, f_a, f_nodes, half_h, x, xp=anp)
    linear = DenseLinearization(basis, jac, half_h, xp=anp)
    assert linear.collocation
    step = linear.direction(r, linear.gradient(r))
    a = residual_jacobian(basis, jac, half_h, xp=anp)
    want = newton_direction(gauss_newton_matrix(a, xp=anp), gradient(basis, a, r, xp=anp),
                            xp=anp)
    assert_allclose(step, want, rtol=1e-8, atol=1e-10 * np.abs(want).max())
    # the residual of the linearised system vanishes: a collocation step
    rows = a.reshape(1, 3, basis.n_nodes, 3, -1) / basis.sqrt_weights[:, None, None]
    moved = r + np.einsum("kimjq,kjq->kim", rows, step)
    assert np.abs(moved[..., 1:]).max() <= 1e-9 * np.abs(r).max()


def _singular_collocation(basis):
    """J at each node (1, M, 1, 1) that makes the square system of ``basis`` with
    ``h/2 = 1`` exactly singular: J_m Φ̃[0, m] == D̃[0, m] to the last bit, so the
    column of the first free coefficient is zero (an exact zero pivot for LAPACK)."""
    d_tilde, phi_tilde = np.asarray(basis.d_tilde), np.asarray(basis.phi_tilde)
    jac = np.zeros((1, basis.n_nodes, 1, 1))
    for m in range(1, basis.n_nodes):
        d, p = d_tilde[0, m], phi_tilde[0, m]
        value = d / p
        for _ in range(64):  # (the nearest floats to d / p)
            if value * p == d:
                break
            value = np.nextafter(value, np.inf if (d - value * p) * p > 0 else -np.inf)
        assert value * p == d
        jac[0, m, 0, 0] = value
    return jac


@pytest.mark.parametrize("numba", [True, False])
def test_a_singular_square_system_takes_the_gauss_newton_step(monkeypatch, numba):
    """Where the square Newton system is exactly singular (LU finds a zero pivot), the
    direction is the modified-LDLᵀ Gauss–Newton step, a descent direction, instead of
    an error that would end the solve; through the measures' kernel as well."""
    from chebpan._core.newton import (
        DenseLinearization,
        collocation_direction,
        directional_slope,
        gauss_newton_matrix,
        gradient,
        newton_direction,
        residual,
        residual_jacobian,
        residual_measures,
    )

    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", not numba)
    basis = get_basis(8, 7, xp=anp, dtype=np.float64)
    jac = _singular_collocation(basis)
    half_h = np.array([[1.0]])
    rng = np.random.default_rng(41)
    f_a, f_nodes = rng.normal(size=(1, 1)), rng.normal(size=(1, 1, basis.n_nodes))
    x = rng.normal(size=(1, 1, basis.n_free))
    r = residual(basis, f_a, f_nodes, half_h, x, xp=anp)
    a = residual_jacobian(basis, jac, half_h, xp=anp)
    assert collocation_direction(basis, a, r, xp=anp) is None
    grad = gradient(basis, a, r, xp=anp)
    want = newton_direction(gauss_newton_matrix(a, xp=anp), grad, xp=anp)
    # (the step along the null space, the zero column, is whatever the modification
    # makes of a gradient that is zero up to rounding: compare what A makes of them)
    moves = lambda step: a[0] @ step.reshape(-1)  # noqa: E731
    linear = DenseLinearization(basis, jac, half_h, xp=anp)
    assert linear.collocation
    size = np.array([2.0])
    step = linear.direction(r, linear.gradient(r))
    assert np.all(np.isfinite(step))
    assert_allclose(moves(step), moves(want), rtol=1e-8, atol=1e-12 * np.abs(want).max())
    assert float(directional_slope(grad, step, size, xp=anp)[0]) < 0
    linear = DenseLinearization(basis, jac, half_h, xp=anp)
    _, grad_kept, _, _ = residual_measures(basis, linear, f_a, f_nodes, half_h, x, size,
                                           np.zeros_like(x), xp=anp)
    kept = linear.direction(r, grad_kept)
    assert np.all(np.isfinite(kept))
    assert_allclose(moves(kept), moves(want), rtol=1e-8, atol=1e-12 * np.abs(want).max())


def _random_iterate(rng, stiff, n_nodes):
    """A basis with 12 coefficients and ``n_nodes`` nodes, and a random iterate of one
    segment with n = 3 on it: ``basis, jac, half_h, f_a, f_nodes, x``."""
    basis = get_basis(12, n_nodes, xp=anp, dtype=np.float64, stiff=stiff)
    k, n, m = 1, 3, basis.n_nodes
    jac = rng.normal(scale=2.0, size=(k, m, n, n))
    half_h = np.array([[0.2]])
    f_a, f_nodes = rng.normal(size=(k, n)), rng.normal(size=(k, n, m))
    x = rng.normal(size=(k, n, basis.n_free))
    return basis, jac, half_h, f_a, f_nodes, x


@pytest.mark.parametrize("stiff, n_nodes", [(False, 11), (False, 12), (True, 12)])
def test_direction_computed_with_the_measures_is_the_iterates_direction(monkeypatch, stiff,
                                                                        n_nodes):
    """The Newton direction that the measures' kernel computes and the linearisation
    keeps is the one the array code computes at that iterate (the square collocation
    solve with one node more than the free coefficients; Gauss–Newton with the
    modified LDLᵀ on the paper's basis with more nodes); a gradient that is not the
    kept one gets its own direction."""
    from chebpan._core.newton import DenseLinearization, residual_measures

    rng = np.random.default_rng(23)
    basis, jac, half_h, f_a, f_nodes, x = _random_iterate(rng, stiff, n_nodes)
    size = np.array([3.0])
    linear = DenseLinearization(basis, jac, half_h, xp=anp)
    r, grad, _, _ = residual_measures(basis, linear, f_a, f_nodes, half_h, x, size,
                                      np.zeros_like(x), xp=anp)
    kept = linear.direction(r, grad)
    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
    want = DenseLinearization(basis, jac, half_h, xp=anp).direction(r, grad)
    assert_allclose(kept, want, rtol=1e-9, atol=1e-12 * np.abs(want).max())
    other = grad.copy()  # (equal values, another array: computed anew)
    assert_allclose(linear.direction(r, other), want, rtol=1e-9,
                    atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize("stiff, n_nodes", [(False, 11), (False, 12), (True, 12)])
def test_slope_and_change_computed_with_the_measures_are_the_iterates(monkeypatch, stiff,
                                                                      n_nodes):
    """The slope along the kept Newton direction and the change of node values it
    makes, computed in the measures' kernel, are those that directional_slope and
    step_change compute for that direction at that iterate: bit for bit with the
    kernels, to rounding with the array code; node values that are not the kept
    iterate's get their own change."""
    from chebpan._core.estimates import step_change
    from chebpan._core.newton import (
        DenseLinearization,
        directional_slope,
        newton_slope,
        newton_step_change,
        residual_measures,
    )

    rng = np.random.default_rng(31)
    basis, jac, half_h, f_a, f_nodes, x = _random_iterate(rng, stiff, n_nodes)
    k, n, m = f_nodes.shape
    y_a, y_nodes = rng.normal(size=(k, n)), rng.normal(scale=5.0, size=(k, n, m))
    atol, rtol = np.array([1e-6, 1e-3, 1e-8]), np.full(n, 1e-4)
    eps = float(np.finfo(np.float64).eps)
    size = np.array([3.0])
    at = (y_a, y_nodes, atol, rtol, eps)
    linear = DenseLinearization(basis, jac, half_h, xp=anp)
    r, grad, _, _ = residual_measures(basis, linear, f_a, f_nodes, half_h, x, size,
                                      np.zeros_like(x), xp=anp, change_at=at)
    direction = linear.direction(r, grad)
    assert linear.kept_slope(grad, direction) is not None
    assert linear.kept_change(direction, y_nodes) is not None
    slope = newton_slope(linear, grad, direction, size, xp=anp)
    moves = newton_step_change(basis, linear, direction, at, xp=anp)
    np.testing.assert_array_equal(slope, directional_slope(grad, direction, size, xp=anp))
    for got, want in zip(moves, step_change(basis, y_a, y_nodes, direction, atol, rtol,
                                            eps, xp=anp)):
        np.testing.assert_array_equal(got, want)
    moved_nodes = y_nodes * 3.0  # (another iterate: its own change)
    assert linear.kept_change(direction, moved_nodes) is None
    other = newton_step_change(basis, linear, direction, (y_a, moved_nodes, atol, rtol, eps),
                               xp=anp)
    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
    want_slope = directional_slope(grad, direction, size, xp=anp)
    assert_allclose(slope, want_slope, rtol=1e-12)
    for at_nodes, got in ((y_nodes, moves), (moved_nodes, other)):
        want = step_change(basis, y_a, at_nodes, direction, atol, rtol, eps, xp=anp)
        for value, expected in zip(got, want):
            assert_allclose(value, expected, rtol=1e-12, atol=1e-300)
    assert not np.allclose(other[0], moves[0])


def test_residual_size_kernel_matches_array_api_code(monkeypatch):
    """The numba segment size against the array code: per row, one h/2 per row or one
    for all, and a row of zeros (size 1)."""
    from chebpan._core.newton import residual_size

    rng = np.random.default_rng(29)
    y_a = rng.normal(scale=10.0, size=(4, 3))
    f_a = rng.normal(scale=100.0, size=(4, 3))
    y_a[2] = f_a[2] = 0.0
    for half_h in (np.array([[0.01], [-0.5], [2.0], [1e-9]]), np.array([[-0.25]])):
        got = residual_size(y_a, f_a, half_h, xp=anp)
        monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
        want = residual_size(y_a, f_a, half_h, xp=anp)
        monkeypatch.setattr(dispatch, "NUMBA_DISABLED", False)
        np.testing.assert_array_equal(got, want)
        assert got[2] == 1.0


def test_directional_slope_kernel_matches_array_api_code(monkeypatch):
    """The numba slope along a Newton direction against the array code, with the
    factors scaled before the product (values near 1e200 do not overflow)."""
    from chebpan._core.newton import directional_slope

    rng = np.random.default_rng(5)
    grad = rng.normal(size=(3, 4, 9)) * np.array([1.0, 1e200, 1e-200])[:, None, None]
    direction = rng.normal(size=grad.shape) * np.array([1.0, 1e200, 1e-200])[:, None, None]
    size = np.array([2.0, 1e200, 1e-200])
    got = directional_slope(grad, direction, size, xp=anp)
    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
    want = directional_slope(grad, direction, size, xp=anp)
    assert np.all(np.isfinite(want))
    assert_allclose(got, want, rtol=1e-13)


def test_forward_difference_kernels_match_array_api_code(monkeypatch):
    """The numba forward-difference Jacobian against the array-API code: the same
    perturbed points (so the same `fun` calls) and the same quotients, including
    components at zero and below the floor (atol)."""
    from chebpan._rhs.counters import Counters
    from chebpan._rhs.evaluator import Evaluator

    def fun(t, y):
        return np.stack([y[0] * y[1] + np.sin(t), np.exp(-y[2]) * y[0], y[1] ** 3 - y[2]])

    rng = np.random.default_rng(19)
    y = rng.normal(size=(3, 7))
    y[1, 2] = 0.0
    y[2, 4] = 1e-12
    t = np.linspace(0.0, 1.0, 7)
    calls = []

    def recorded(t, y):
        calls.append(np.array(y, copy=True))
        return fun(t, y)

    def evaluator():
        return Evaluator(recorded, None, 3, vectorized=True, xp=anp, dtype=np.float64,
                         counters=Counters(), difference_floor=np.array([1e-6, 1e-9, 1.0]))

    def jacobian():
        # F and J from one call of `fun` at y and the perturbed points together, and J
        # alone (the batch's rounds) from a call at the perturbed points only
        f, jac = evaluator().evaluate(t, y, with_jacobian=True)
        e = evaluator()
        alone = e.jacobian(t, y, e.call_fun(t, y), e)
        assert_allclose(f, fun(t, y), rtol=0, atol=0)
        assert_allclose(alone, jac, rtol=0, atol=0)
        return jac

    got = jacobian()
    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
    want = jacobian()
    assert got.shape == want.shape == (7, 3, 3)
    assert_allclose(got, want, rtol=0, atol=0)
    assert len(calls) == 6
    assert_allclose(calls[0][:, :7], y, rtol=0, atol=0)  # the round's own points first
    assert_allclose(calls[0][:, 7:], calls[2], rtol=0, atol=0)
    assert_allclose(calls[0], calls[3], rtol=0, atol=0)  # the same perturbed points


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_collocation_direction_kernel_matches_array_api_code(monkeypatch, dtype):
    """The numba collocation solve of the stiff basis against the array-API code
    (residual Jacobian, its square part, LU), stiff segments included."""
    from chebpan._core.newton import DenseLinearization

    rng = np.random.default_rng(23)
    basis = get_basis(12, 12, xp=anp, dtype=dtype, stiff=True)
    k, n, m = 3, 3, basis.n_nodes
    jac = (rng.normal(size=(k, m, n, n)) * np.array([1.0, 30.0, 1e3])[:, None, None, None]
           ).astype(dtype)
    half_h = rng.uniform(0.01, 0.5, size=(k, 1)).astype(dtype)
    r = rng.normal(size=(k, n, m)).astype(dtype)
    linear = DenseLinearization(basis, jac, half_h, xp=anp)
    assert linear.collocation and linear.kernels is not None
    step = linear.direction(r, linear.gradient(r))
    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
    reference = DenseLinearization(basis, jac, half_h, xp=anp)
    want = reference.direction(r, reference.gradient(r))
    assert step.dtype == want.dtype == dtype
    rtol = 1e-9 if dtype == np.float64 else 1e-4
    assert_allclose(step, want, rtol=rtol, atol=rtol * np.abs(want).max())


@pytest.mark.parametrize("stiff, m", [(False, 11), (False, 16), (True, 12)])
def test_linearised_start_solves_linear_autonomous_odes(stiff, m):
    """For y' = A y the ODE linearised at the start is the ODE itself: the start
    minimises the true residual (zero for collocation), on both bases."""
    rng = np.random.default_rng(31)
    k, n, n_coeffs = 2, 3, 12
    basis = get_basis(n_coeffs, m, xp=anp, dtype=np.float64, stiff=stiff)
    a = rng.normal(size=(k, n, n))
    y_a = rng.normal(size=(k, n))
    f_a = np.einsum("kij,kj->ki", a, y_a)
    half_h = np.array([[0.2], [0.45]])
    x = linearised_start(basis, y_a, f_a, half_h, a, xp=anp)
    y_nodes = node_values(basis, y_a, f_a, half_h, x, xp=anp)
    f_nodes = np.einsum("kij,kjm->kim", a, y_nodes)
    r = residual(basis, f_a, f_nodes, half_h, x, xp=anp)
    jac_nodes = np.broadcast_to(a[:, None], (k, basis.n_nodes, n, n))
    grad = gradient(basis, residual_jacobian(basis, jac_nodes, half_h, xp=anp), r, xp=anp)
    assert np.abs(grad).max() <= 1e-11 * np.abs(y_a).max()  # the minimiser
    if m == basis.n_free + basis.n_fixed - 1:  # (collocation: the residual itself vanishes)
        assert np.abs(r[..., 1:]).max() <= 1e-12 * np.abs(y_a).max()


@pytest.mark.parametrize("stiff", [False, True])
def test_linearised_start_kernel_matches_array_api_code(monkeypatch, stiff):
    rng = np.random.default_rng(32)
    basis = get_basis(12, 12 if stiff else 11, xp=anp, dtype=np.float64, stiff=stiff)
    k, n = 3, 4
    y_a, f_a = rng.normal(size=(k, n)), rng.normal(size=(k, n))
    half_h = rng.uniform(0.01, 0.5, size=(k, 1))
    # (as in the Newton kernels' test on the paper's basis, whose Gauss–Newton matrix
    # squares the conditioning; stiff segments on the stiff basis)
    scales = np.array([1.0, 30.0, 300.0]) if stiff else np.array([1.0, 3.0, 3.0])
    jac_a = rng.normal(size=(k, n, n)) * scales[:, None, None]
    got = linearised_start(basis, y_a, f_a, half_h, jac_a, xp=anp)
    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
    want = linearised_start(basis, y_a, f_a, half_h, jac_a, xp=anp)
    assert_allclose(got, want, rtol=1e-9, atol=1e-9 * np.abs(want).max())


def test_jacobian_norm_kernel_matches_array_api_code(monkeypatch):
    """The numba ``max_m ‖J_m‖_∞`` against the array code, per segment and over all:
    several segments, a broadcast (read-only, strided) Jacobian, and a NaN, which
    propagates (to its segment's norm) as in NumPy's max."""
    from chebpan._core.newton import jacobian_norm, jacobian_norms

    rng = np.random.default_rng(43)
    jac = rng.normal(size=(3, 11, 4, 4)) * np.array([1.0, 1e3, 1e-3])[:, None, None, None]
    constant = np.broadcast_to(rng.normal(size=(4, 4)), (1, 11, 4, 4))
    with_nan = jac.copy()
    with_nan[1, 5, 2, 3] = np.nan
    for value in (jac, constant, jac[:, ::2]):
        got, got_each = jacobian_norm(value, xp=anp), jacobian_norms(value, xp=anp)
        monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
        want, want_each = jacobian_norm(value, xp=anp), jacobian_norms(value, xp=anp)
        monkeypatch.setattr(dispatch, "NUMBA_DISABLED", False)
        assert isinstance(got, float) and got == pytest.approx(want, rel=1e-14)
        assert got_each.shape == (value.shape[0],)
        np.testing.assert_allclose(got_each, want_each, rtol=1e-14)
    assert math.isnan(jacobian_norm(with_nan, xp=anp))
    each = jacobian_norms(with_nan, xp=anp)
    assert math.isnan(each[1]) and np.isfinite(each[[0, 2]]).all()


def test_linearised_end_slope_kernel_matches_array_api_code(monkeypatch):
    """The numba ``f_end + J_end Δy`` against the array code: several rows, a constant
    (broadcast, read-only) Jacobian, an end change taken from a wider array (a view)."""
    from chebpan._core.newton import linearised_end_slope

    rng = np.random.default_rng(47)
    f_end = rng.normal(size=(3, 4))
    jacs = (rng.normal(size=(3, 11, 4, 4)),
            np.broadcast_to(rng.normal(size=(4, 4)), (3, 11, 4, 4)))
    end_change = rng.normal(size=(3, 4, 11))[..., -1]
    for jac in jacs:
        got = linearised_end_slope(f_end, jac, end_change, xp=anp)
        monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
        want = linearised_end_slope(f_end, jac, end_change, xp=anp)
        monkeypatch.setattr(dispatch, "NUMBA_DISABLED", False)
        assert_allclose(got, want, rtol=1e-14, atol=1e-14 * np.abs(want).max())

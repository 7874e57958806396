"""The structured (Schur) Newton solve of the stiff basis: chebpan._core.structured.

Checked against the dense collocation matrix of chebpan._core.newton: the frozen-J
solve to the accuracy its condition number allows, the matrix-free products, and
Newton iterations built on it (simplified, and GMRES-preconditioned) against exact
dense Newton on stiff segments.  docs/algorithm.md, "Structured Newton solves".
"""

import array_api_strict
import numpy as np
import pytest
import scipy.sparse
from scipy.linalg import expm

import chebpan
from chebpan._core.basis import get_basis
from chebpan._core.newton import collocation_direction, gradient, residual, residual_jacobian
from chebpan._core.picard import node_values
from chebpan._core.structured import (
    KRYLOV_RTOL,
    REFACTOR_RHO,
    FrozenJacobianSolver,
    StructuredLinearization,
    collocation_product,
    frozen_jacobian,
    structured_gradient,
)

EPS = np.finfo(float).eps


def stiff_basis(n_coeffs, xp=np):
    return get_basis(n_coeffs, n_coeffs, xp=xp, dtype=xp.float64, stiff=True)


def square_matrix(basis, jac_nodes, half_h):
    """The dense square collocation matrix of the fitted nodes (rows weighted by √w)."""
    a = residual_jacobian(basis, jac_nodes, half_h, xp=np)
    k, m, n, _ = jac_nodes.shape
    return np.reshape(np.reshape(a, (k, n, m, -1))[:, :, 1:, :], (k, n * (m - 1), -1))


def jacobian(kind, n, rng):
    """J with (h/2)‖J‖ spanning 1 … 1e6 for h/2 = 1."""
    if kind == "random":  # eigenvalues scattered around −3‖·‖ (left half-plane)
        j = rng.normal(size=(n, n))
        return j - 3 * np.abs(j).sum(axis=1).max() * np.eye(n)
    if kind == "oscillatory":  # complex eigenvalues: rotations with weak damping
        q, _ = np.linalg.qr(rng.normal(size=(n, n)))
        skew = rng.normal(size=(n, n))
        return q @ (20 * (skew - skew.T) - 0.1 * np.eye(n)) @ q.T
    if kind == "stiff":  # eigenvalues from −1 to −1e6
        q, _ = np.linalg.qr(rng.normal(size=(n, n)))
        return q @ np.diag(-np.logspace(0, 6, n)) @ q.T + 0.1 * rng.normal(size=(n, n))
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["random", "oscillatory", "stiff"])
@pytest.mark.parametrize("n", [1, 3, 20])
@pytest.mark.parametrize("n_coeffs", [8, 16, 32, 48])
def test_frozen_solve_equals_the_dense_collocation_solve(n_coeffs, n, kind):
    rng = np.random.default_rng(n_coeffs * 100 + n)
    basis = stiff_basis(n_coeffs)
    jac = jacobian(kind, n, rng)[None]
    half_h = np.array([[1.0]])
    jac_nodes = np.broadcast_to(jac[:, None], (1, n_coeffs, n, n))
    r = rng.normal(size=(1, n, n_coeffs))
    dense = collocation_direction(basis, residual_jacobian(basis, jac_nodes, half_h, xp=np),
                                  r, xp=np)
    structured = FrozenJacobianSolver(basis, jac, half_h, xp=np).direction(r)
    cond = np.linalg.cond(square_matrix(basis, jac_nodes, half_h)[0])
    error = np.max(np.abs(structured - dense)) / np.max(np.abs(dense))
    assert error < 10 * n_coeffs * cond * EPS, (error, cond)


def test_frozen_solve_in_a_batch_and_another_namespace():
    rng = np.random.default_rng(3)
    n_coeffs, n = 16, 5
    basis = stiff_basis(n_coeffs)
    jac = np.stack([jacobian("random", n, rng), jacobian("oscillatory", n, rng)])
    half_h = np.array([[0.3], [2.0]])
    r = rng.normal(size=(2, n, n_coeffs))
    jac_nodes = np.broadcast_to(jac[:, None], (2, n_coeffs, n, n))
    dense = collocation_direction(basis, residual_jacobian(basis, jac_nodes, half_h, xp=np),
                                  r, xp=np)
    structured = FrozenJacobianSolver(basis, jac, half_h, xp=np).direction(r)
    np.testing.assert_allclose(structured, dense, rtol=0, atol=1e-12 * np.abs(dense).max())
    xp = array_api_strict
    strict = FrozenJacobianSolver(stiff_basis(n_coeffs, xp), xp.asarray(jac), xp.asarray(half_h),
                                  xp=xp).direction(xp.asarray(r))
    np.testing.assert_allclose(np.asarray(strict), dense, rtol=0,
                               atol=1e-12 * np.abs(dense).max())


@pytest.mark.parametrize("n_coeffs", [8, 15, 16, 32])
@pytest.mark.parametrize("storage", ["dense", "band"])
def test_compiled_back_substitution_is_the_python_loop(monkeypatch, storage, n_coeffs):
    """The numba back substitution (LAPACK's getrs / gbtrs solves on scipy's factors, one
    compiled call per solve, in the real Schur form: one complex solve per conjugate pair
    of shifts; and in the complex form, ``real=False``) against the Python loop over the
    columns of the complex Schur form with LAPACK's own solves, and all against the dense
    collocation solve, to what the condition number allows; random J, so the LU factors
    pivot; N − 1 = 7, 14, 15, 31 columns (an odd count has one real shift among
    the conjugate pairs, an even one none)."""
    from chebpan._kernels import dispatch
    from chebpan._rhs.sparse import SparsityPattern, sparse_frozen_solver

    rng = np.random.default_rng(5)
    n, half_h = 9, 0.4
    basis = stiff_basis(n_coeffs)
    r = rng.normal(size=(1, n, n_coeffs))
    if storage == "dense":
        jac = rng.normal(size=(1, n, n)) * 50

        def direction(real=True):
            return FrozenJacobianSolver(basis, jac, np.array([[half_h]]), xp=np,
                                        real=real).direction(r)
    else:
        pattern = SparsityPattern.from_matrix(
            sum(np.eye(n, k=k) for k in (-2, -1, 0, 1, 3)), n)
        assert pattern.banded and pattern.bandwidths == (2, 3)
        values = rng.normal(size=pattern.nnz) * 50
        jac = pattern.to_dense(values)[None]

        def direction(real=True):
            return sparse_frozen_solver(basis, pattern, values, half_h,
                                        real=real).direction(r)
    jac_nodes = np.broadcast_to(jac[:, None], (1, n_coeffs, n, n))
    dense = collocation_direction(
        basis, residual_jacobian(basis, jac_nodes, np.array([[half_h]]), xp=np), r, xp=np)
    bound = 10 * n_coeffs * np.linalg.cond(
        square_matrix(basis, jac_nodes, np.array([[half_h]]))[0]) * EPS * np.abs(dense).max()
    compiled, compiled_complex = direction(), direction(real=False)
    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
    loop = direction()
    for solution in (compiled, compiled_complex, loop):
        np.testing.assert_allclose(solution, dense, rtol=0, atol=bound)
    np.testing.assert_allclose(compiled, loop, rtol=0, atol=bound)
    np.testing.assert_allclose(compiled_complex, loop, rtol=0, atol=1e-13 * np.abs(loop).max())


def test_matrix_free_gradient_and_product():
    rng = np.random.default_rng(4)
    n_coeffs, n = 12, 4
    basis = stiff_basis(n_coeffs)
    jac_nodes = rng.normal(size=(2, n_coeffs, n, n))  # a different J at every node
    half_h = np.array([[0.7], [-0.2]])
    r = rng.normal(size=(2, n, n_coeffs))
    a = residual_jacobian(basis, jac_nodes, half_h, xp=np)
    np.testing.assert_allclose(structured_gradient(basis, jac_nodes, half_h, r, xp=np),
                               gradient(basis, a, r, xp=np), rtol=1e-12, atol=1e-12)
    x = rng.normal(size=(2, n, basis.n_free))
    dense = np.einsum("kab,kb->ka", square_matrix(basis, jac_nodes, half_h),
                      x.reshape(2, -1)).reshape(2, n, -1) / np.asarray(basis.sqrt_weights)[1:]
    np.testing.assert_allclose(collocation_product(basis, jac_nodes, half_h, x, xp=np), dense,
                               rtol=1e-12, atol=1e-12)


# -- Newton on stiff segments ---------------------------------------------------------

MU = 1000.0


def vdp(t, y):
    return np.stack([y[1], MU * (1 - y[0] ** 2) * y[1] - y[0]])


def vdp_jac(t, y):
    """(P, n, n) at the points y (n, P)."""
    x, v = y
    return np.stack([np.stack([0 * x, 1 + 0 * x], -1),
                     np.stack([-2 * MU * x * v - 1, MU * (1 - x * x)], -1)], 1)


def robertson(t, y):
    a, b, c = y
    return np.stack([-0.04 * a + 1e4 * b * c, 0.04 * a - 1e4 * b * c - 3e7 * b * b, 3e7 * b * b])


def robertson_jac(t, y):
    a, b, c = y
    zero = 0 * a
    return np.stack([np.stack([zero - 0.04, 1e4 * c, 1e4 * b], -1),
                     np.stack([zero + 0.04, -1e4 * c - 6e7 * b, -1e4 * b], -1),
                     np.stack([zero, 6e7 * b, zero], -1)], 1)


class StiffSegment:
    """One segment of the stiff basis: residual and nodal Jacobians at an iterate X."""

    def __init__(self, fun, jac, y_a, t_a, h, n_coeffs=16):
        self.fun, self.jac = fun, jac
        self.basis = basis = stiff_basis(n_coeffs)
        self.y_a = np.asarray(y_a, dtype=float)[None]
        self.f_a = fun(t_a, self.y_a.T).T
        self.half_h = np.array([[h / 2]])
        self.t = t_a + h / 2 * (1 + np.asarray(basis.tau))

    def at(self, x):
        y = node_values(self.basis, self.y_a, self.f_a, self.half_h, x, xp=np)  # (1, n, M)
        r = residual(self.basis, self.f_a, self.fun(self.t, y[0])[None], self.half_h, x, xp=np)
        return r, self.jac(self.t, y[0])[None]

    def newton(self, direction_of, iterations=30):
        """Undamped Newton-type iteration from X = 0; the iterates' step sizes."""
        x = np.zeros((1, self.y_a.shape[1], self.basis.n_free))
        steps = []
        state = None
        for _ in range(iterations):
            r, jac = self.at(x)
            step, state = direction_of(r, jac, state)
            x = x + step
            steps.append(float(np.max(np.abs(step))))
            if steps[-1] <= 1e-13 * max(1.0, float(np.max(np.abs(x)))):
                break
        return x, steps


def dense_newton(segment):
    def direction_of(r, jac, state):
        a = residual_jacobian(segment.basis, jac, segment.half_h, xp=np)
        return collocation_direction(segment.basis, a, r, xp=np), None
    return segment.newton(direction_of)


def simplified_newton(segment):
    """J frozen at the mean of the first iterate; refactorised when the steps
    contract by less than REFACTOR_RHO (the segment solver's rule)."""
    def direction_of(r, jac, state):
        solver, last = state if state is not None else (None, None)
        if solver is None:
            solver = FrozenJacobianSolver(segment.basis, frozen_jacobian(jac, xp=np),
                                          segment.half_h, xp=np)
        step = solver.direction(r)
        size = float(np.max(np.abs(step)))
        if last is not None and size > REFACTOR_RHO * last:
            solver = None
        return step, (solver, size)
    return segment.newton(direction_of, iterations=60)


def krylov_newton(segment):
    def direction_of(r, jac, previous):
        linear = StructuredLinearization(segment.basis, jac, segment.half_h, xp=np,
                                         previous=previous)
        return linear.direction(r), linear
    return segment.newton(direction_of)


SEGMENTS = {
    # Van der Pol μ = 1000 on the slow branch (x ≈ 2, v ≈ −x/(μ(x²−1))), h = 50.
    "vdp": lambda: StiffSegment(vdp, vdp_jac, [2.0, -2 / (3 * MU)], 0.0, 50.0),
    # Robertson after the initial transient, where (h/2)‖J‖ ≈ 1e4.
    "robertson": lambda: StiffSegment(robertson, robertson_jac,
                                      [0.9852, 3.3e-5, 0.01477], 0.4, 2.0),
}


@pytest.mark.parametrize("name", SEGMENTS)
@pytest.mark.parametrize("method", [simplified_newton, krylov_newton])
def test_structured_newton_converges_to_the_dense_newton_solution(name, method):
    segment = SEGMENTS[name]()
    reference, dense_steps = dense_newton(segment)
    assert dense_steps[-1] < 1e-12 and len(dense_steps) < 15  # quadratic
    x, steps = method(segment)
    assert steps[-1] < 1e-12
    scale = np.max(np.abs(reference))
    np.testing.assert_allclose(x, reference, rtol=0, atol=1e-10 * scale)
    if method is krylov_newton:  # the Newton direction: as few iterations as dense
        assert len(steps) <= len(dense_steps) + 1


# -- the solver option ------------------------------------------------------------------

@pytest.mark.parametrize("choice", ["structured", "simplified"])
def test_option_reaches_the_dense_solution_on_robertson(choice):
    kwargs = dict(rtol=1e-8, atol=1e-12, vectorized=True,
                  jac=lambda t, y: robertson_jac(t, y[:, None])[0])
    dense = chebpan.solve_ivp(robertson, (0, 1e5), [1.0, 0, 0],
                              newton_linear_solver="dense", **kwargs)
    res = chebpan.solve_ivp(robertson, (0, 1e5), [1.0, 0, 0],
                            newton_linear_solver=choice, **kwargs)
    assert dense.status == 0 and res.status == 0
    np.testing.assert_allclose(res.y[:, -1], dense.y[:, -1], rtol=1e-6, atol=1e-11)
    assert res.nlu < res.niter_newton  # factorisations are reused
    if choice == "structured":
        # (the dense steps' segments converge in two or three rounds and grow as
        # fast as their error measures, 49 rounds; the structured ones take 62)
        assert res.depth <= 1.3 * dense.depth


def test_structured_gives_newton_above_max_newton_size():
    # A stiff linear system with a dense callable jac: above max_newton_size,
    # "dense" has only the Picard iteration (short segments), "auto" has
    # structured Newton steps on the stiff basis.
    n = 12
    rng = np.random.default_rng(7)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    a = q @ np.diag(-np.logspace(0, 3, n)) @ q.T
    y0 = np.linspace(1, 2, n)
    kwargs = dict(rtol=1e-6, atol=1e-9, vectorized=True, jac=lambda t, y: a,
                  max_newton_size=10)
    auto = chebpan.solve_ivp(lambda t, y: a @ y, (0, 2), y0, **kwargs)
    picard = chebpan.solve_ivp(lambda t, y: a @ y, (0, 2), y0,
                               newton_linear_solver="dense", **kwargs)
    exact = expm(a * 2) @ y0
    assert auto.status == 0 and auto.nlu > 0
    assert np.max(np.abs(auto.y[:, -1] - exact) / (1e-9 + 1e-6 * np.abs(exact))) < 10
    assert picard.nlu == 0 and auto.nsegments < picard.nsegments / 10


@pytest.mark.parametrize("choice", ["auto", "dense"])
def test_a_large_non_stiff_system_has_no_dense_newton_on_the_papers_basis(monkeypatch,
                                                                           choice):
    """DETEST C4 (n = 51, heat equation by second differences): the paper's basis would
    need dense Gauss-Newton systems of 51 × 6 = 306 unknowns.  With ``"auto"`` its
    segments take Picard rounds only, and those they cannot finish go to the stiff
    basis' simplified Newton (a frozen J, evaluated once: the problem is linear);
    ``"dense"`` keeps dense steps on both.  Both are within the tolerance of the exact
    solution."""
    from chebpan._control.segment_solver import SegmentSolver
    from chebpan._core.newton import DenseLinearization
    from chebpan.testing import SUITE

    c4 = SUITE["C4"]()
    kinds = []
    linearize, frozen_newton = SegmentSolver._linearize, SegmentSolver._frozen_newton

    def recording(self, jac, half_h, previous=None):
        linear = linearize(self, jac, half_h, previous)
        kinds.append((type(linear), self.basis.square))
        return linear

    def recording_frozen(self, *args):
        kinds.append(("simplified", self.basis.square))
        return frozen_newton(self, *args)

    monkeypatch.setattr(SegmentSolver, "_linearize", recording)
    monkeypatch.setattr(SegmentSolver, "_frozen_newton", recording_frozen)
    res = chebpan.solve_ivp(c4.fun, c4.t_span, np.array(c4.y0), rtol=1e-6, atol=1e-6,
                            vectorized=True, newton_linear_solver=choice)
    assert res.success and c4.scaled_error(res.y[:, -1]) <= 1e-6
    dense_on_papers_basis = [k for k in kinds if k == (DenseLinearization, False)]
    if choice == "auto":
        assert kinds and set(kinds) == {("simplified", True)}
        assert res.njev == 1
    else:
        assert dense_on_papers_basis


@pytest.mark.parametrize("choice", ["auto", "simplified", "structured", "dense"])
def test_sparse_jacobians_keep_their_sparsity(monkeypatch, choice):
    """A stiff diffusion with ``jac_sparsity`` above the dense size (100 × 15 unknowns
    on the stiff basis): ``"auto"`` and ``"simplified"`` take simplified Newton steps
    with the sparse frozen-J solver (SuperLU of the shifted n×n matrices),
    ``"structured"`` Krylov directions preconditioned by it, ``"dense"`` factorises the
    assembled sparse collocation system by SuperLU; all reach the exact solution."""
    from chebpan._control.segment_solver import SegmentSolver
    from chebpan._rhs.sparse import SparseLinearization, SparseStructuredLinearization

    n = 100
    a = scipy.sparse.diags([np.ones(n - 1), -2 * np.ones(n), np.ones(n - 1)], [-1, 0, 1])
    a = (a * (n + 1) ** 2).tocsc()
    kinds = set()
    linearize, frozen_solver = SegmentSolver._linearize, SegmentSolver._frozen_solver
    monkeypatch.setattr(SegmentSolver, "_linearize", lambda self, *args, **kw: (
        kinds.add(type(linear := linearize(self, *args, **kw))) or linear))
    monkeypatch.setattr(SegmentSolver, "_frozen_solver", lambda self, *args: (
        kinds.add(type(solver := frozen_solver(self, *args)).__name__) or solver))
    y0 = np.linspace(1, 2, n)
    res = chebpan.solve_ivp(lambda t, y: a @ y, (0, 0.2), y0, vectorized=True, rtol=1e-8,
                            atol=1e-10, jac_sparsity=a != 0, n_coeffs=16,
                            newton_linear_solver=choice)
    assert res.status == 0 and res.nlu > 0
    expected = {"dense": SparseLinearization, "structured": SparseStructuredLinearization}
    assert kinds == {expected.get(choice, "_SparseFrozenSolver")}
    if choice in ("auto", "simplified"):  # (a constant J: evaluated once, carried)
        assert res.njev == 1
    assert np.max(np.abs(res.y[:, -1] - expm(a.toarray() * 0.2) @ y0)) < 1e-8


def test_simplified_newton_carries_its_jacobian_across_segments():
    """The Brusselator by the method of lines (n = 200, stiff, nonlinear) with
    ``jac_sparsity``: simplified Newton evaluates J for a fraction of its segments (the
    frozen J is carried while it serves: measured 10 for 18 segments, against 45) and is
    as accurate as the Newton steps of
    ``"structured"``, which evaluate J at every iterate."""
    from chebpan.testing import SUITE

    bruss = SUITE["BRUSS"]()
    kwargs = dict(rtol=1e-6, atol=1e-6 * bruss.floor, vectorized=True,
                  jac_sparsity=bruss.sparsity())
    simplified = chebpan.solve_ivp(bruss.fun, bruss.t_span, np.array(bruss.y0), **kwargs)
    newton = chebpan.solve_ivp(bruss.fun, bruss.t_span, np.array(bruss.y0),
                               newton_linear_solver="structured", **kwargs)
    assert simplified.success and newton.success
    assert simplified.njev < simplified.nsegments and 3 * simplified.njev < newton.njev
    assert bruss.scaled_error(simplified.y[:, -1]) < 1e-6
    assert bruss.scaled_error(newton.y[:, -1]) < 1e-6


def test_simplified_newton_on_a_relaxation_oscillation():
    """Van der Pol, μ = 1000, over a whole period with ``"simplified"`` (simplified Newton
    at every size): J changes by orders of magnitude along the cycle, so carried
    Jacobians stop serving and are evaluated again; the result is as accurate as the
    dense Newton steps'."""
    from chebpan.testing import SUITE

    vdpol = SUITE["VDPOL"]()
    kwargs = dict(rtol=1e-6, atol=1e-6 * vdpol.floor, vectorized=True, jac=vdpol.jac,
                  vectorized_jac=True)
    res = chebpan.solve_ivp(vdpol.fun, vdpol.t_span, np.array(vdpol.y0),
                            newton_linear_solver="simplified", **kwargs)
    assert res.success and res.njev > 1
    assert vdpol.scaled_error(res.y[:, -1]) < 1e-5


@pytest.mark.parametrize("stiff", [False, True])
@pytest.mark.parametrize("n_coeffs, n", [(8, 3), (12, 12), (8, 28)])
def test_frozen_linearised_start_is_the_dense_start(stiff, n_coeffs, n):
    """The linearised ODE has one J at every node, so the frozen-J structured solve is
    the dense linearised start itself, on the stiff basis and on the paper's square one
    (its Schur data from its own Φ̃_f and D̃_f); a least-squares basis has none."""
    from chebpan._core.newton import frozen_linearised_start
    from chebpan._core.structured import collocation_schur
    from chebpan._kernels import newton_numba

    n_nodes = n_coeffs if stiff else n_coeffs - 1
    basis = get_basis(n_coeffs, n_nodes, xp=np, dtype=np.float64, stiff=stiff)
    rng = np.random.default_rng(n_coeffs + n)
    jac = rng.normal(scale=3.0, size=(2, n, n))
    half_h = np.array([[0.3], [-0.2]])
    f_a, y_a = rng.normal(size=(2, n)), rng.normal(size=(2, n))
    dense = newton_numba.linearised_start(basis, f_a, half_h, jac, True)
    frozen = frozen_linearised_start(basis, y_a, f_a, half_h, jac, xp=np)
    np.testing.assert_allclose(frozen, dense, rtol=0, atol=1e-11 * np.abs(dense).max())
    with pytest.raises(ValueError, match="square basis"):
        collocation_schur(get_basis(n_coeffs, n_coeffs, xp=np, dtype=np.float64), xp=np)


def test_linearised_start_takes_the_frozen_solve_from_its_size(monkeypatch):
    """From ``FROZEN_START_SIZE`` unknowns on, :func:`linearised_start` on NumPy is the
    frozen solve (same values as the dense kernel below that size)."""
    from chebpan._core import newton

    basis = get_basis(8, 7, xp=np, dtype=np.float64)
    rng = np.random.default_rng(5)
    n = 4
    jac, f_a = rng.normal(size=(1, n, n)), rng.normal(size=(1, n))
    y_a, half_h = rng.normal(size=(1, n)), np.array([[0.25]])
    calls = []
    frozen = newton.frozen_linearised_start
    monkeypatch.setattr(newton, "frozen_linearised_start",
                        lambda *a, **k: calls.append(1) or frozen(*a, **k))
    dense = newton.linearised_start(basis, y_a, f_a, half_h, jac, xp=np)
    assert not calls  # (24 unknowns: the dense kernel)
    monkeypatch.setattr(newton, "FROZEN_START_SIZE", n * basis.n_free)
    structured = newton.linearised_start(basis, y_a, f_a, half_h, jac, xp=np)
    assert calls
    np.testing.assert_allclose(structured, dense, rtol=0, atol=1e-12 * np.abs(dense).max())


def test_a_fresh_jacobian_gets_more_than_one_slow_iteration(monkeypatch):
    """Simplified Newton with a J evaluated for the attempt fails it only after
    ``FRESH_SLOW_STEPS`` more iterations at too slow a ratio: the first ratio after a
    fresh J is often the slowest.  On medazko (n = 400, ``jac_sparsity``) at rtol 1e-3
    that halves the failed attempts (measured 20 → 9) and saves rounds (376 → 319), at
    the same accuracy; every accepted iteration still converged."""
    from chebpan._control import segment_solver
    from chebpan.testing import SUITE

    medakzo = SUITE["MEDAKZO"]()
    kwargs = dict(rtol=1e-3, atol=1e-3 * medakzo.floor, vectorized=True,
                  jac_sparsity=medakzo.sparsity())
    patient = chebpan.solve_ivp(medakzo.fun, medakzo.t_span, np.array(medakzo.y0), **kwargs)
    monkeypatch.setattr(segment_solver, "FRESH_SLOW_STEPS", 0)
    hasty = chebpan.solve_ivp(medakzo.fun, medakzo.t_span, np.array(medakzo.y0), **kwargs)
    assert patient.success and hasty.success
    assert 1.5 * patient.nrejected < hasty.nrejected and patient.depth < 0.9 * hasty.depth
    for res in (patient, hasty):
        assert medakzo.scaled_error(res.y[:, -1]) < 1e-3


def test_a_wrong_frozen_jacobian_cannot_pass(monkeypatch):
    """Simplified Newton accepts only a converged iteration, whatever its frozen J: with
    J of the wrong sign (the frozen system amplifies the stiff error instead of damping
    it) the iteration diverges until the segments are short enough for it to contract,
    and the answer is still right.  y' = −λ (y − cos t) − sin t, y = cos t, λ = 1e6."""
    from chebpan._control import segment_solver

    lam = 1e6

    def fun(t, y):
        return -lam * (y - np.cos(t)) - np.sin(t)

    kwargs = dict(rtol=1e-8, atol=1e-10, vectorized=True, newton_linear_solver="simplified",
                  jac=lambda t, y: np.array([[-lam]]))
    honest = chebpan.solve_ivp(fun, (0, 0.01), [1.0], **kwargs)
    freeze = segment_solver.frozen_jacobian
    monkeypatch.setattr(segment_solver, "frozen_jacobian",
                        lambda jac, **kw: -freeze(jac, **kw))
    wrong = chebpan.solve_ivp(fun, (0, 0.01), [1.0], **kwargs)
    for res in (honest, wrong):
        assert res.success
        assert np.max(np.abs(res.y[0] - np.cos(res.t))) < 1e-8
    assert wrong.nsegments > 5 * honest.nsegments


def test_bad_choice_is_a_clear_error():
    with pytest.raises(ValueError, match="newton_linear_solver"):
        chebpan.solve_ivp(lambda t, y: -y, (0, 1), [1.0], newton_linear_solver="lu")


def test_krylov_direction_is_the_newton_direction_in_both_namespaces():
    # J differs at every node: GMRES preconditioned by the frozen (mean) J
    # reaches the direction of the dense Newton matrix.
    rng = np.random.default_rng(0)
    n_coeffs, n = 16, 4
    jac_nodes = -5 * np.eye(n) + rng.normal(size=(1, n_coeffs, n, n))
    half_h = np.array([[2.0]])
    r = rng.normal(size=(1, n, n_coeffs))
    basis = stiff_basis(n_coeffs)
    dense = collocation_direction(basis, residual_jacobian(basis, jac_nodes, half_h, xp=np),
                                  r, xp=np)
    for xp in (np, array_api_strict):
        linear = StructuredLinearization(stiff_basis(n_coeffs, xp), xp.asarray(jac_nodes),
                                         xp.asarray(half_h), xp=xp)
        direction = np.asarray(linear.direction(xp.asarray(r)))
        assert 0 < linear.inner < 24 and linear.factorised and not linear.stale
        # (GMRES stops at a relative residual of KRYLOV_RTOL)
        np.testing.assert_allclose(direction, dense, rtol=0,
                                   atol=10 * KRYLOV_RTOL * np.abs(dense).max())

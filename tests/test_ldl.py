"""Tests of the modified Cholesky LDLᵀ (chebpan._core.ldl): reference, numba kernel, dispatcher."""

import array_api_compat.numpy as anp
import array_api_strict
import numpy as np
import pytest
from conftest import indefinite, positive_definite
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from chebpan._core import ldl
from chebpan._core import ldl_reference as reference
from chebpan._kernels import ldl_numba
from chebpan._kernels import dispatch

IMPLS = {
    "numba": ldl_numba.modified_ldl,
    "reference": lambda H: reference.modified_ldl(H, xp=anp),
}

# ---------------------------------------------------------------------------- helpers


def gmw_bounds(H):
    """δ and β² of the spec, per batch member, computed independently in float64."""
    n = H.shape[-1]
    eps = np.finfo(H.dtype).eps
    Hd = H.astype(np.float64)
    gamma = np.abs(np.diagonal(Hd, axis1=1, axis2=2)).max(axis=-1)
    off = np.abs(Hd - np.eye(n) * Hd)
    xi = off.max(axis=(-2, -1))
    delta = eps * np.maximum(gamma + xi, 1.0)
    beta2 = np.maximum(gamma, eps)
    if n > 1:
        beta2 = np.maximum(beta2, xi / np.sqrt(n * n - 1.0))
    return delta, beta2


def check_factors(H, f):
    """Assert every property promised for ``P (H + E) Pᵀ = L D Lᵀ``."""
    L, d, perm, e = (np.asarray(a) for a in f)
    K, n, _ = H.shape
    eps = np.finfo(H.dtype).eps
    assert L.shape == H.shape and d.shape == e.shape == perm.shape == (K, n)
    assert L.dtype == d.dtype == e.dtype == H.dtype
    assert np.all(np.sort(perm, axis=-1) == np.arange(n))
    assert np.all(np.triu(L, 1) == 0) and np.all(np.diagonal(L, axis1=1, axis2=2) == 1)

    delta, beta2 = gmw_bounds(H)
    assert np.all(e >= 0)
    assert np.all(d >= delta[:, None] * (1 - 4 * eps))
    growth = np.abs(L) * np.sqrt(d)[:, None, :]
    growth[:, np.arange(n), np.arange(n)] = 0
    assert np.all(growth <= np.sqrt(beta2)[:, None, None] * (1 + 100 * eps))

    Hd, Ld, dd = H.astype(np.float64), L.astype(np.float64), d.astype(np.float64)
    HE = Hd + e[:, None, :] * np.eye(n)
    PHEP = np.take_along_axis(np.take_along_axis(HE, perm[:, :, None], 1), perm[:, None, :], 2)
    LDL = (Ld * dd[:, None, :]) @ np.swapaxes(Ld, 1, 2)
    scale = np.abs(Hd).max(axis=(1, 2)) + e.max(axis=1) + beta2 + 1e-300
    err = np.abs(PHEP - LDL).max(axis=(1, 2)) / scale
    assert np.all(err <= 10 * n * eps), err


def check_solve(H, e, b, x):
    """Normwise backward error of x as a solution of (H + E) x = b."""
    n = H.shape[-1]
    eps = np.finfo(H.dtype).eps
    HE = H.astype(np.float64) + e[:, None, :] * np.eye(n)
    xx = np.asarray(x, dtype=np.float64).reshape(b.shape[0], n, -1)
    bb = np.asarray(b, dtype=np.float64).reshape(xx.shape)
    res = np.abs(HE @ xx - bb).max(axis=(1, 2))
    scale = np.abs(HE).max(axis=(1, 2)) * np.abs(xx).max(axis=(1, 2)) + np.abs(bb).max(axis=(1, 2))
    assert np.all(res <= 10 * n * eps * scale), res / scale


def singular(rng, K, n, dtype=np.float64):
    """Rank-deficient matrices: B S Bᵀ with B (n, r), r < n, S = ±1 (PSD and indefinite)."""
    r = max(n // 3, 1) if n > 1 else 0
    B = rng.standard_normal((K, n, r))
    odd_member = (np.arange(K) % 2 == 1)[:, None]
    S = np.where(odd_member, np.where(np.arange(r) % 2, -1.0, 1.0), 1.0)
    return ((B * S[:, None, :]) @ np.swapaxes(B, 1, 2)).astype(dtype)


SIZES = [1, 2, 3, 7, 16, 40]

# ------------------------------------------------------------------------ test vector

A3 = [[4.0, 2.0, 1.0], [2.0, 6.0, 3.0], [1.0, 3.0, -0.004]]


@pytest.mark.parametrize("impl", IMPLS)
def test_gmw_test_vector(impl):
    # The example of chebpan._core.ldl.modified_ldl's docstring: A = [[4,2,1],[2,6,3],[1,3,-0.004]]
    # gives E = diag(0, 0, 3.008).
    # With the GMW pivot (largest remaining |c_qq|, first original index on ties) the order
    # is (1, 0, 2): the 6 first, then the Schur complement 4 - 2²/6 = 10/3, and the last
    # pivot is -0.004 - 3²/6 = -1.504 -> d = 1.504, e = 3.008. Nocedal–Wright's Alg. 3.4
    # without pivoting reaches the same E (d = 4, 5, 1.504), so the expected E does not
    # single out a convention; the chosen one is GMW's.
    H = np.array([A3])
    f = IMPLS[impl](H)
    np.testing.assert_allclose(f.e, [[0.0, 0.0, 3.008]], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(f.perm, [[1, 0, 2]])
    np.testing.assert_allclose(f.d, [[6.0, 10 / 3, 1.504]], rtol=1e-13)
    check_factors(H, f)


@pytest.mark.parametrize("xp", [anp, array_api_strict], ids=["numpy", "array_api_strict"])
def test_gmw_test_vector_dispatcher(xp):
    H = xp.asarray([A3])
    f = ldl.modified_ldl(H, xp=xp)
    np.testing.assert_allclose(np.asarray(f.e), [[0.0, 0.0, 3.008]], rtol=0, atol=1e-12)
    x, e = ldl.modified_ldl_solve(H, xp.asarray([[1.0, 2.0, 3.0]]), xp=xp)
    np.testing.assert_allclose(np.asarray(e), [[0.0, 0.0, 3.008]], rtol=0, atol=1e-12)
    HE = np.array(A3) + np.diag([0.0, 0.0, 3.008])
    np.testing.assert_allclose(HE @ np.asarray(x)[0], [1.0, 2.0, 3.0], rtol=1e-13)


# ----------------------------------------------------------------------- properties


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("kind", [indefinite, singular])
def test_properties(impl, n, kind):
    rng = np.random.default_rng(1000 * n + len(kind.__name__))
    H = kind(rng, 5, n)
    check_factors(H, IMPLS[impl](H))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("n", SIZES)
def test_positive_definite_is_not_modified(impl, n):
    H = positive_definite(np.random.default_rng(n), 4, n)
    f = IMPLS[impl](H)
    check_factors(H, f)
    assert np.all(f.e == 0)


@pytest.mark.parametrize("impl", IMPLS)
def test_degenerate_matrices(impl):
    # zero matrix: γ = ξ = 0 so δ = β² = ε and every d_j = ε
    H = np.zeros((2, 4, 4))
    f = IMPLS[impl](H)
    check_factors(H, f)
    np.testing.assert_array_equal(f.d, np.finfo(float).eps)
    # n = 1: d = max(|h|, δ)
    H = np.array([[[-2.0]], [[0.0]], [[3.0]]])
    f = IMPLS[impl](H)
    np.testing.assert_allclose(f.e[:, 0], [4.0, np.finfo(float).eps, 0.0])


@pytest.mark.parametrize("impl", IMPLS)
def test_only_lower_triangle_is_read(impl):
    H = indefinite(np.random.default_rng(7), 3, 6)
    junk = H + np.triu(np.full((6, 6), 1e3), 1)
    for a, b in zip(IMPLS[impl](H), IMPLS[impl](junk)):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 3), st.shared(st.integers(1, 6), key="n"), st.shared(st.integers(1, 6), key="n")),
        elements=st.floats(-1e3, 1e3, allow_subnormal=False),
    )
)
def test_properties_hypothesis(M):
    # hypothesis favours repeated values and exact ties in the pivot choice
    H = (M + np.swapaxes(M, 1, 2)) / 2
    for impl in IMPLS.values():
        f = impl(H)
        check_factors(H, f)
        b = np.ones(H.shape[:2])
        check_solve(H, f.e, b, reference.ldl_solve(f, b, xp=anp))


# ---------------------------------------------------------------------------- solve


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("kind", [indefinite, singular, positive_definite])
def test_solve(n, kind):
    rng = np.random.default_rng(n)
    H = kind(rng, 4, n)
    b = rng.standard_normal((4, n))
    B = rng.standard_normal((4, n, 3))
    x, e = ldl_numba.modified_ldl_solve(H, b)
    check_solve(H, e, b, x)
    X, e3 = ldl_numba.modified_ldl_solve(H, B)
    assert X.shape == B.shape
    check_solve(H, e3, B, X)
    np.testing.assert_array_equal(e3, e)

    np.testing.assert_array_equal(ldl_numba.modified_ldl(H).e, e)  # same as fused kernel
    for f in (ldl_numba.modified_ldl(H), reference.modified_ldl(H, xp=anp)):
        for rhs in (b, B):
            y_numba = ldl_numba.ldl_solve(f, rhs)
            y_ref = reference.ldl_solve(f, rhs, xp=anp)
            check_solve(H, f.e, rhs, y_numba)
            check_solve(H, f.e, rhs, y_ref)


# ------------------------------------------------------------------------ agreement


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numba_agrees_with_reference(n, dtype):
    rng = np.random.default_rng(n + 17)
    H = indefinite(rng, 4, n, dtype)
    b = rng.standard_normal((4, n)).astype(dtype)
    fn = ldl_numba.modified_ldl(H)
    fr = reference.modified_ldl(H, xp=anp)
    tol = 100 * n * np.finfo(dtype).eps
    scale = np.abs(H).max()
    np.testing.assert_array_equal(fn.perm, fr.perm)
    np.testing.assert_allclose(fn.L, fr.L, rtol=0, atol=tol * np.abs(fr.L).max())
    np.testing.assert_allclose(fn.d, fr.d, rtol=0, atol=tol * scale)
    np.testing.assert_allclose(fn.e, fr.e, rtol=0, atol=tol * scale)

    x, e = ldl_numba.modified_ldl_solve(H, b)
    xr = reference.ldl_solve(fr, b, xp=anp)
    assert x.dtype == e.dtype == dtype
    np.testing.assert_array_equal(e, fn.e)
    # agreement relative to the conditioning of H + E
    cond = np.linalg.cond((H + e[:, None, :] * np.eye(n, dtype=dtype)).astype(np.float64))
    err = np.abs(x - xr).max(axis=1) / np.abs(xr).max(axis=1)
    assert np.all(err <= tol * cond), err / cond


@pytest.mark.parametrize("n", [1, 5, 24])
def test_reference_runs_under_array_api_strict(n):
    rng = np.random.default_rng(n + 3)
    H = np.concatenate([indefinite(rng, 2, n), singular(rng, 2, n)])
    b = rng.standard_normal((4, n))
    B = rng.standard_normal((4, n, 2))
    fs = reference.modified_ldl(array_api_strict.asarray(H), xp=array_api_strict)
    fn = reference.modified_ldl(H, xp=anp)
    for a, c in zip(fs, fn):
        np.testing.assert_allclose(np.asarray(a), c, rtol=1e-14, atol=1e-14 * np.abs(H).max())
    for rhs in (b, B):
        xs = reference.ldl_solve(fs, array_api_strict.asarray(rhs), xp=array_api_strict)
        xn = reference.ldl_solve(fn, rhs, xp=anp)
        np.testing.assert_allclose(np.asarray(xs), xn, rtol=1e-12)
    xs, es = ldl.modified_ldl_solve(
        array_api_strict.asarray(H), array_api_strict.asarray(b), xp=array_api_strict
    )
    np.testing.assert_allclose(np.asarray(es), fn.e, rtol=1e-14)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("n", [1, 6, 30])
def test_float32(impl, n):
    rng = np.random.default_rng(n + 5)
    for kind in (indefinite, singular):
        H = kind(rng, 3, n, np.float32)
        check_factors(H, IMPLS[impl](H))
    H = positive_definite(rng, 3, n, np.float32)
    f = IMPLS[impl](H)
    check_factors(H, f)
    assert np.all(f.e == 0)
    b = rng.standard_normal((3, n)).astype(np.float32)
    x, e = ldl_numba.modified_ldl_solve(H, b)
    check_solve(H, e, b, x)


# ----------------------------------------------------------------------- dispatcher


def test_dispatch(monkeypatch):
    H = positive_definite(np.random.default_rng(0), 2, 5)
    b = np.ones((2, 5))

    def boom(*args, **kwargs):
        raise AssertionError("numba kernel called")

    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
    for name in ("modified_ldl", "ldl_solve", "modified_ldl_solve"):
        monkeypatch.setattr(ldl_numba, name, boom)
    f = ldl.modified_ldl(H, xp=anp)
    x = ldl.ldl_solve(f, b, xp=anp)
    x2, e = ldl.modified_ldl_solve(H, b, xp=anp)
    check_solve(H, e, b, x)
    np.testing.assert_allclose(x2, x)

    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", False)
    with pytest.raises(AssertionError, match="numba kernel called"):
        ldl.modified_ldl_solve(H, b, xp=anp)
    with pytest.raises(AssertionError, match="numba kernel called"):
        ldl.modified_ldl(H, xp=anp)


def test_input_validation():
    for impl in IMPLS.values():
        with pytest.raises(ValueError):
            impl(np.zeros((3, 3)))
        with pytest.raises(TypeError):
            impl(np.zeros((1, 3, 3), dtype=np.int64))
    with pytest.raises(ValueError):
        ldl_numba.modified_ldl_solve(np.eye(3)[None], np.ones((1, 4)))

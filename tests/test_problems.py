"""Tests of chebpan.testing: right-hand sides, Jacobians and the mpmath references."""

import dataclasses
import json
import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from numpy.testing import assert_allclose

from chebpan.testing import _paper as problems
from chebpan.testing import _taylor_reference as reference_cache
from chebpan.testing import PROBLEMS, Problem, lorenz, spiral

mpmath = pytest.importorskip("mpmath")

FACTORIES = [spiral, lorenz]


def _points(problem, p, seed=0):
    """p random states around the problem's scale, shape (L, p)."""
    rng = np.random.default_rng(seed)
    L = len(problem.y0)
    return 5.0 * rng.standard_normal((L, p))


# ----------------------------------------------------------------------------- fun / jac


@pytest.mark.parametrize("factory", FACTORIES)
def test_problem_data(factory):
    p = factory()
    assert isinstance(p, Problem)
    assert PROBLEMS[p.name] is factory
    assert isinstance(p.y0, tuple) and all(type(v) is float for v in p.y0)
    assert isinstance(p.t_span, tuple) and len(p.t_span) == 2
    assert p.description
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.name = "other"


def test_paper_settings():
    s, lz = spiral(), lorenz()
    assert s.t_span == (0.0, 10.0) and s.y0 == (2.0, 1.0) and s.params == {"a": 0.1}
    assert lz.t_span == (0.0, 15.0) and lz.y0 == (2.0, 1.0, 1.0)
    assert lz.params == {"sigma": 10.0, "rho": 28.0, "beta": 8 / 3}


@pytest.mark.parametrize("factory", FACTORIES)
def test_fun_shapes_and_modes_agree(factory):
    p = factory()
    L, P = len(p.y0), 7
    y = _points(p, P)
    t = np.linspace(0.0, 1.0, P)

    vec = p.fun(t, y)
    assert vec.shape == (L, P)
    assert p.fun(0.5, y).shape == (L, P)  # scalar t, vectorised y (scipy's convention)
    for j in range(P):
        single = p.fun(t[j], y[:, j])
        assert single.shape == (L,)
        assert_allclose(vec[:, j], single, rtol=1e-15, atol=0)
    # plain sequences work too
    assert p.fun(0.0, list(p.y0)).shape == (L,)


def test_fun_values():
    a = 0.1
    y = np.array([0.3, -1.7])
    A = np.array([[a, 1.0], [-1.0, -a]])
    assert_allclose(spiral(a).fun(0.0, y), np.tanh(A @ y), rtol=1e-15)
    x, yy, z = 1.5, -2.0, 20.0
    expected = [10 * (yy - x), x * (28 - z) - yy, x * yy - 8 / 3 * z]
    assert_allclose(lorenz().fun(0.0, np.array([x, yy, z])), expected, rtol=1e-15)


@pytest.mark.parametrize("factory", FACTORIES)
def test_jac_shapes_and_modes_agree(factory):
    p = factory()
    L, P = len(p.y0), 6
    y = _points(p, P, seed=1)
    t = np.linspace(0.0, 1.0, P)
    vec = p.jac(t, y)
    assert vec.shape == (L, L, P)
    for j in range(P):
        single = p.jac(t[j], y[:, j])
        assert single.shape == (L, L)
        assert_allclose(vec[:, :, j], single, rtol=1e-15, atol=0)


@pytest.mark.parametrize("factory", FACTORIES)
def test_jac_matches_finite_differences(factory):
    p = factory()
    L, P = len(p.y0), 5
    Y = _points(p, P, seed=2) / 5.0  # keep tanh away from saturation
    eps = 1e-6
    for j in range(P):
        y = Y[:, j]
        fd = np.empty((L, L))
        for k in range(L):
            e = np.zeros(L)
            e[k] = eps
            fd[:, k] = (p.fun(0.0, y + e) - p.fun(0.0, y - e)) / (2 * eps)
        J = p.jac(0.0, y)
        assert_allclose(J, fd, rtol=1e-7, atol=1e-8 * max(1.0, np.abs(J).max()))


@pytest.mark.parametrize("factory", FACTORIES)
def test_float32_preserved(factory):
    p = factory()
    y = _points(p, 4).astype(np.float32)
    assert p.fun(np.zeros(4, np.float32), y).dtype == np.float32
    assert p.jac(np.zeros(4, np.float32), y).dtype == np.float32


# ----------------------------------------------------------------------------- references


def _odefun(problem, dps):
    """y(t_end) from mpmath.odefun (mpmath's own Taylor integrator), independent code."""
    with mpmath.mp.workdps(dps):
        par = {k: mpmath.mpf(Fraction(v).numerator) / Fraction(v).denominator
               for k, v in problem.params.items()}
        if problem.name == "lorenz":
            s, r, b = par["sigma"], par["rho"], par["beta"]

            def F(t, y):
                return [s * (y[1] - y[0]), y[0] * (r - y[2]) - y[1], y[0] * y[1] - b * y[2]]
        else:
            a = par["a"]

            def F(t, y):
                return [mpmath.tanh(a * y[0] + y[1]), mpmath.tanh(-y[0] - a * y[1])]

        t0, t1 = (mpmath.mpf(t) for t in problem.t_span)
        sol = mpmath.odefun(F, t0, [mpmath.mpf(v) for v in problem.y0])
        return [+v for v in sol(t1)]


def _digits(a, b):
    """Smallest number of agreeing significant digits, componentwise."""
    with mpmath.mp.workdps(80):
        return min(
            float(-mpmath.log10(abs(mpmath.mpf(x) - mpmath.mpf(y)) / abs(mpmath.mpf(y))))
            if mpmath.mpf(x) != mpmath.mpf(y) else 80.0
            for x, y in zip(a, b)
        )


@pytest.mark.parametrize("factory, t_end", [(lorenz, 1.0), (spiral, 2.0)])
def test_taylor_reference_matches_mpmath_odefun(factory, t_end):
    p = dataclasses.replace(factory(), t_span=(0.0, t_end))
    ours = p.reference(dps=25, use_cache=False)
    theirs = _odefun(p, dps=32)
    assert _digits(ours, theirs) >= 25


def test_lorenz_taylor_exact_for_linear_flow():
    # sigma = 1, rho = 0, beta = 1, y0 = (1, 0, 0): y = z = 0 stay zero and x' = -x.
    p = lorenz(sigma=1, rho=0, beta=1, t_span=(0.0, 3.0), y0=(1.0, 0.0, 0.0))
    x, y, z = p.reference(dps=40, use_cache=False)
    with mpmath.mp.workdps(50):
        assert abs(x / mpmath.exp(-3) - 1) < mpmath.mpf(10) ** -40
    assert y == 0 and z == 0


def test_reference_backward_returns_to_start():
    fwd = dataclasses.replace(spiral(), t_span=(0.0, 1.0))
    y1 = fwd.reference_array(dps=20, use_cache=False)
    back = dataclasses.replace(spiral(), t_span=(1.0, 0.0), y0=tuple(y1))
    assert_allclose(back.reference_array(dps=20, use_cache=False), spiral().y0,
                    rtol=0, atol=1e-14)


@pytest.mark.parametrize("factory", FACTORIES)
def test_reference_self_check_digits(factory):
    info = factory().reference_info()
    assert info["verified_digits"] >= problems.REFERENCE_DPS + 1
    assert len(info["values"]) == len(factory().y0)
    ref = factory().reference()
    assert all(isinstance(v, mpmath.mpf) for v in ref)
    assert_allclose(factory().reference_array(), [float(v) for v in ref], rtol=0, atol=0)


@pytest.mark.parametrize("factory", [spiral, pytest.param(lorenz, marks=pytest.mark.slow)])
def test_reference_two_precisions_agree(factory):
    # independent computations at 30 and 45 digits (working precisions 45/55 and 60/70)
    lo = factory().reference(dps=30)
    hi = factory().reference(dps=45)
    assert _digits(lo, hi) >= 30


def test_spiral_reference_vs_dop853():
    from scipy.integrate import solve_ivp

    p = spiral()
    sol = solve_ivp(p.fun, p.t_span, p.y0, method="DOP853", rtol=1e-13, atol=1e-13)
    assert sol.success
    assert_allclose(sol.y[:, -1], p.reference_array(), rtol=0, atol=1e-10)


def test_lorenz_reference_vs_dop853():
    from scipy.integrate import solve_ivp

    p = lorenz()
    sol = solve_ivp(p.fun, p.t_span, p.y0, method="DOP853", rtol=1e-13, atol=1e-13)
    assert sol.success
    # chaos: errors committed at 1e-13 grow by orders of magnitude up to t = 15
    assert_allclose(sol.y[:, -1], p.reference_array(), rtol=0, atol=1e-5)


def test_exact_parameters():
    # a float parameter means its binary value, a Fraction or string the exact number
    p_float, p_exact = lorenz(), lorenz(beta=Fraction(8, 3))
    assert p_float._key(20) != p_exact._key(20)
    assert lorenz(beta="8/3")._key(20) == p_exact._key(20)
    assert spiral(a="0.1")._key(20) == spiral(a=Fraction(1, 10))._key(20) != spiral()._key(20)
    # both use the nearest float in fun
    y = np.array([1.0, 2.0, 3.0])
    assert_allclose(p_exact.fun(0.0, y), p_float.fun(0.0, y), rtol=0, atol=0)
    # the references differ by the (tiny) effect of beta's rounding
    short = dict(t_span=(0.0, 1.0))
    a = lorenz(**short).reference(dps=30, use_cache=False)
    b = lorenz(beta="8/3", **short).reference(dps=30, use_cache=False)
    with mpmath.mp.workdps(40):
        diff = max(abs(x - y) for x, y in zip(a, b))
        assert 0 < diff < 1e-13


def test_no_series_no_reference():
    p = dataclasses.replace(spiral(), series=None)
    with pytest.raises(NotImplementedError):
        p.reference()


def test_invalid_dps():
    with pytest.raises(ValueError):
        spiral().reference(dps=0)


# ----------------------------------------------------------------------------- caching


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CHEBPAN_CACHE_DIR", str(tmp_path / "cache"))
    problems.clear_reference_cache()
    yield tmp_path / "cache"
    problems.clear_reference_cache()


def test_cache_dir_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CHEBPAN_CACHE_DIR", str(tmp_path))
    assert problems.cache_dir() == tmp_path
    monkeypatch.delenv("CHEBPAN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert problems.cache_dir() == tmp_path / "xdg" / "chebpan"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert problems.cache_dir() == reference_cache.Path.home() / ".cache" / "chebpan"


def test_disk_cache_round_trip(tmp_cache, monkeypatch):
    p = dataclasses.replace(lorenz(), t_span=(0.0, 0.5))
    first = p.reference(dps=20)
    files = list(tmp_cache.glob("reference-lorenz-*.json"))
    assert len(files) == 1
    record = json.loads(files[0].read_text())
    assert record["key"] == p._key(20)
    assert record["key"]["params"]["beta"] == str(Fraction(8 / 3))
    assert all(isinstance(s, str) for s in record["values"])
    assert len(record["values"][0].lstrip("-").replace(".", "")) == 23  # dps + 3 digits
    assert _digits(record["values"], first) > 22

    # a fresh process (emulated: memory cache cleared) reads the file, computes nothing
    problems.clear_reference_cache()

    def boom(*args, **kwargs):
        raise AssertionError("recomputed despite the disk cache")

    monkeypatch.setattr(reference_cache, "_compute_reference", boom)
    assert p.reference(dps=20) == first
    # in-process cache: the file is not even read again
    files[0].unlink()
    assert p.reference(dps=20) == first
    # other key (dps) -> computed
    with pytest.raises(AssertionError, match="recomputed"):
        p.reference(dps=21)


def test_disk_cache_checks_key(tmp_cache):
    p = dataclasses.replace(spiral(), t_span=(0.0, 0.5))
    good = p.reference(dps=20)
    (path,) = tmp_cache.glob("reference-spiral-*.json")
    record = json.loads(path.read_text())
    record["key"]["params"]["a"] = "1/3"  # a file whose key does not match is ignored
    record["values"] = ["1", "2"]
    path.write_text(json.dumps(record))
    problems.clear_reference_cache()
    assert p.reference(dps=20) == good
    path.write_text("not json")  # a corrupt file is ignored and replaced
    problems.clear_reference_cache()
    assert p.reference(dps=20) == good
    assert json.loads(path.read_text())["key"] == p._key(20)


def test_unwritable_cache_dir(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("CHEBPAN_CACHE_DIR", str(blocker / "cache"))  # cannot be created
    problems.clear_reference_cache()
    try:
        p = dataclasses.replace(spiral(), t_span=(0.0, 0.25))
        assert len(p.reference(dps=20)) == 2
    finally:
        problems.clear_reference_cache()


def test_use_cache_false_writes_nothing(tmp_cache):
    p = dataclasses.replace(spiral(), t_span=(0.0, 0.25))
    p.reference(dps=20, use_cache=False)
    assert not tmp_cache.exists() or not any(tmp_cache.iterdir())


def test_import_without_mpmath():
    code = (
        "import sys; sys.modules['mpmath'] = None\n"
        "import numpy as np\n"
        "from chebpan.testing import lorenz, spiral\n"
        "p = lorenz(); print(p.fun(0.0, np.array(p.y0)).shape, spiral().jac(0.0, [1.0, 2.0]).shape)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=root, check=True)
    assert out.stdout.split() == ["(3,)", "(2,", "2)"]


@pytest.mark.parametrize("factory", FACTORIES)
def test_array_api_strict_arrays(factory):
    xp = pytest.importorskip("array_api_strict")
    p = factory()
    L, P = len(p.y0), 4
    y_np = _points(p, P, seed=3)
    y = xp.asarray(y_np)
    t = xp.zeros(P, dtype=xp.float64)
    f, J = p.fun(t, y), p.jac(t, y)
    assert f.shape == (L, P) and J.shape == (L, L, P)
    assert p.fun(0.0, y[:, 0]).shape == (L,) and p.jac(0.0, y[:, 0]).shape == (L, L)
    assert_allclose(np.asarray(f), p.fun(np.zeros(P), y_np), rtol=1e-15)
    assert_allclose(np.asarray(J), p.jac(np.zeros(P), y_np), rtol=1e-15)

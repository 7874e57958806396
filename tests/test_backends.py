"""Backends: the same core on NumPy and on any array-API library (array_api_strict here).

CuPy runs only where a GPU is present (skipped otherwise, never faked).
"""

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import GPU, host

import chebpan
from chebpan._kernels import dispatch
from chebpan.testing import lorenz, spiral

sx = pytest.importorskip("array_api_strict")

PACKAGE = Path(chebpan.__file__).parent
#: Modules written against the array API only: all of ``_core/``, and the others that
#: run on every backend.
CORE_MODULES = sorted(str(p.relative_to(PACKAGE)) for p in (PACKAGE / "_core").glob("*.py")) + [
    "_output/dense.py", "_rhs/jacobian.py", "_rhs/evaluator.py", "_rhs/counters.py",
    "_control/batch.py", "_control/batch_table.py", "_control/segment_solver.py",
    "_control/policy.py", "_control/spans.py", "_output/row_search.py",
    "_kernels/dispatch.py", "_kernels/blas.py"]


BACKENDS = ["numpy", "array_api_strict"] + (["cupy"] if GPU else [])


@pytest.fixture(params=BACKENDS)
def backend(request):
    """(name, namespace) of a backend that can run here."""
    name = request.param
    if name == "numpy":
        return name, np
    if name == "array_api_strict":
        return name, sx
    import cupy

    return name, cupy


def test_fun_gets_and_result_comes_back_in_the_backend(backend):
    name, xp = backend
    seen = []

    def decay(t, y):
        seen.append((type(t), type(y)))
        return -0.5 * y

    y0 = xp.asarray([2.0, 4.0])
    res = chebpan.solve_ivp(decay, (0, 10), y0, vectorized=True, rtol=1e-10, atol=1e-12,
                            dense_output=True, t_eval=[0.0, 5.0, 10.0])
    assert res.status == 0
    assert all(ty is type(y0) for _, ty in seen)
    assert type(res.y) is type(y0) and type(res.t) is type(y0)
    assert type(res.sol(1.0)) is type(y0)
    exact = np.array([2.0, 4.0])[:, None] * np.exp(-0.5 * np.array([0.0, 5.0, 10.0]))
    assert np.allclose(host(res.y), exact, rtol=1e-9, atol=1e-12)


def _same_solve_on_both(problem, monkeypatch, t_span=None):
    # The NumPy backend's numba LDLᵀ rounds differently from the array-API reference
    # kernel; with the reference on both, the arithmetic is the same.
    monkeypatch.setattr(dispatch, "NUMBA_DISABLED", True)
    t_span = t_span or problem.t_span
    kwargs = dict(vectorized=True, rtol=1e-10, atol=1e-10)
    on_numpy = chebpan.solve_ivp(problem.fun, t_span, np.asarray(problem.y0), **kwargs)
    on_strict = chebpan.solve_ivp(problem.fun, t_span, sx.asarray(problem.y0), **kwargs)
    return on_numpy, on_strict


def test_spiral_agrees_on_numpy_and_array_api_strict(monkeypatch):
    on_numpy, on_strict = _same_solve_on_both(spiral(), monkeypatch)
    assert np.max(np.abs(np.asarray(on_strict.y)[:, -1] - on_numpy.y[:, -1])) <= 1e-12
    assert on_numpy.depth == on_strict.depth


@pytest.mark.slow
def test_lorenz_agrees_on_numpy_and_array_api_strict(monkeypatch):
    on_numpy, on_strict = _same_solve_on_both(lorenz(), monkeypatch)
    assert np.max(np.abs(np.asarray(on_strict.y)[:, -1] - on_numpy.y[:, -1])) <= 1e-12


def test_short_lorenz_agrees_with_numba_kernels_too():
    problem = lorenz()
    kwargs = dict(vectorized=True, rtol=1e-10, atol=1e-10)
    on_numpy = chebpan.solve_ivp(problem.fun, (0, 1), np.asarray(problem.y0), **kwargs)
    on_strict = chebpan.solve_ivp(problem.fun, (0, 1), sx.asarray(problem.y0), **kwargs)
    assert np.max(np.abs(np.asarray(on_strict.y)[:, -1] - on_numpy.y[:, -1])) <= 1e-12


def test_float32_numpy_y0_is_solved_in_float64_as_scipy_does():
    res = chebpan.solve_ivp(lambda t, y: -y, (0, 1), np.asarray([1.0], dtype=np.float32))
    assert res.y.dtype == np.float64


def test_float32_end_to_end():
    xp = sx
    y0 = xp.asarray([1.0, -2.0], dtype=xp.float32)
    with pytest.warns(UserWarning, match="`rtol` is too small"):
        res = chebpan.solve_ivp(lambda t, y: -y, (0, 3), y0, vectorized=True, rtol=1e-10,
                                atol=1e-6, dense_output=True)
    assert res.status == 0
    assert res.y.dtype == xp.float32 and res.sol(1.0).dtype == xp.float32
    exact = np.array([1.0, -2.0]) * np.exp(-3.0)
    assert np.max(np.abs(np.asarray(res.y)[:, -1] - exact)) < 1e-5


def test_backend_argument_errors():
    with pytest.raises(ValueError, match="`backend` must be None, 'numpy' or 'cupy'"):
        chebpan.solve_ivp(lambda t, y: -y, (0, 1), [1.0], backend="torch")
    with pytest.raises(ValueError, match="array_api_strict.*backend='numpy'"):
        chebpan.solve_ivp(lambda t, y: -y, (0, 1), sx.asarray([1.0]), backend="numpy")
    with pytest.raises(NotImplementedError, match="`events` is supported on the NumPy"):
        chebpan.solve_ivp(lambda t, y: -y, (0, 1), sx.asarray([1.0]),
                          events=lambda t, y: y[0] - 0.5)


def test_cupy_backend_without_cupy_names_the_extra():
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"chebpan\[cuda12\].*chebpan\[cuda13\]"):
            chebpan.solve_ivp(lambda t, y: -y, (0, 1), [1.0], backend="cupy")
    else:
        pytest.skip("CuPy is installed here: the missing-CuPy message cannot be shown")


def _code_lines(path):
    """Source lines outside docstring examples (``>>>`` / ``...``) and comments."""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith((">>>", "...", "#")):
            continue
        yield line


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_numerics_do_not_use_numpy(module):
    path = PACKAGE / module
    offending = [line for line in _code_lines(path)
                 if re.search(r"\bimport numpy\b|\bnp\.", line)]
    assert not offending, f"{module} uses NumPy directly: {offending}"


def test_arrays_stay_on_the_device_of_y0():
    device = sx.Device("device1")  # array_api_strict's second (simulated) device
    problem = lorenz()
    res = chebpan.solve_ivp(problem.fun, (0, 1), sx.asarray(problem.y0, device=device),
                            vectorized=True, rtol=1e-10, atol=1e-10, dense_output=True,
                            jac=problem.jac, vectorized_jac=True, t_eval=[0.5, 1.0])
    assert res.status == 0 and res.niter_newton > 0
    assert res.y.device == device and res.t.device == device
    assert res.sol(0.25).device == device
    on_numpy = chebpan.solve_ivp(problem.fun, (0, 1), np.asarray(problem.y0), vectorized=True,
                                 rtol=1e-10, atol=1e-10, jac=problem.jac, vectorized_jac=True,
                                 t_eval=[0.5, 1.0])
    assert np.max(np.abs(np.asarray(sx.asarray(res.y, device=sx.Device("CPU_DEVICE")))
                         - on_numpy.y)) <= 1e-12


def test_scipy_style_fun_returning_a_list_on_array_api_strict():
    # (array_api_strict forbids y[1] on a 2-D array: the probe keeps it point by point)
    with pytest.warns(UserWarning, match="raised IndexError when called with y of shape"):
        res = chebpan.solve_ivp(lambda t, y: [y[1], -y[0]], (0, 1), sx.asarray([1.0, 0.0]),
                                rtol=1e-10, atol=1e-12)
    assert res.status == 0
    assert np.allclose(np.asarray(res.y)[:, -1], [np.cos(1.0), -np.sin(1.0)], atol=1e-9)


def test_float32_warns_on_a_stiff_segment():
    a = sx.asarray([[-1.0, 0.3], [0.3, -1e5]], dtype=sx.float32)
    with pytest.warns(RuntimeWarning, match="float32 is not accurate enough for stiff"):
        chebpan.solve_ivp(lambda t, y: a @ y, (0, 1), sx.asarray([1.0, 2.0], dtype=sx.float32),
                          vectorized=True, rtol=1e-4, atol=1e-6)

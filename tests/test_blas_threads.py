"""chebpan's own linear algebra runs on one BLAS thread; user code keeps the user's."""

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController

import chebpan
from chebpan._kernels.blas import solver_blas_threads, user_blas_threads

controller = ThreadpoolController()


def blas_threads():
    return sorted({lib["num_threads"] for lib in controller.select(user_api="blas").info()})


@pytest.fixture
def two_blas_threads():
    if not controller.select(user_api="blas").info():
        pytest.skip("no BLAS library visible to threadpoolctl")
    with controller.limit(limits=2, user_api="blas"):
        yield


def test_solver_block_is_single_threaded_and_user_block_restores(two_blas_threads):
    with solver_blas_threads():
        assert blas_threads() == [1]
        with user_blas_threads():
            assert blas_threads() == [2]
            with solver_blas_threads():  # a solve nested in a user's fun
                assert blas_threads() == [1]
            assert blas_threads() == [2]
        assert blas_threads() == [1]
    assert blas_threads() == [2]


def test_user_block_outside_a_solve_changes_nothing(two_blas_threads):
    with user_blas_threads():
        assert blas_threads() == [2]


def test_fun_and_jac_see_the_users_threads_and_the_solve_restores_them(two_blas_threads):
    seen = []

    def fun(t, y):
        seen.append(("fun", blas_threads()))
        return np.stack([y[1], -y[0] + 10 * (1 - y[0] ** 2) * y[1]])

    def jac(t, y):
        seen.append(("jac", blas_threads()))
        return np.array([[0.0, 1.0], [-1 - 20 * y[0] * y[1], 10 * (1 - y[0] ** 2)]])

    res = chebpan.solve_ivp(fun, (0, 3), [2.0, 0.0], vectorized=True, jac=jac, rtol=1e-8,
                            atol=1e-8)
    assert res.status == 0
    assert {kind for kind, _ in seen} == {"fun", "jac"}
    assert all(threads == [2] for _, threads in seen)
    assert blas_threads() == [2]


def test_limits_restored_after_a_failing_solve(two_blas_threads):
    def fun(t, y):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        chebpan.solve_ivp(fun, (0, 1), [1.0])
    assert blas_threads() == [2]


def test_newton_products_run_single_threaded(two_blas_threads, monkeypatch):
    """The Gauss–Newton product sees one thread inside a solve (systems below the size)."""
    from chebpan._core import newton
    from chebpan._kernels import newton_numba

    inside = []

    def spy_on(module, name):
        original = getattr(module, name)

        def spy(*args, **kwargs):
            inside.append(blas_threads())
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)

    spy_on(newton, "gauss_newton_matrix")  # (the array-API code)
    spy_on(newton_numba, "direction")  # (its product in the numba kernel ...)
    spy_on(newton_numba, "measures_and_direction")  # (... also with a trial's measures)
    res = chebpan.solve_ivp(lambda t, y: np.stack([10 * (y[1] - y[0]),
                                                    y[0] * (28 - y[2]) - y[1],
                                                    y[0] * y[1] - 8 / 3 * y[2]]),
                            (0, 2), [2.0, 1.0, 1.0], vectorized=True, rtol=1e-8, atol=1e-8)
    assert res.status == 0 and res.niter_newton > 0
    assert inside and all(threads == [1] for threads in inside)


def test_a_round_switches_openblas_by_its_own_c_function(two_blas_threads):
    """OpenBLAS on its own threads (not OpenMP), controlled by the solving thread, is
    switched around ``fun`` by ``openblas_set_num_threads`` itself, not through
    threadpoolctl's checks (four switches a round); the counts are the user's inside
    ``user_blas_threads`` and one outside, as threadpoolctl sees them."""
    import ctypes

    from chebpan._kernels import blas

    libs = [lib for lib in controller.select(user_api="blas").lib_controllers
            if lib.internal_api == "openblas" and lib.threading_layer != "openmp"]
    if not libs:
        pytest.skip("no OpenBLAS on its own threads")
    with solver_blas_threads():
        setters = [set_threads for set_threads, _ in blas._user_limits.get()]
        assert any(isinstance(set_threads, ctypes._CFuncPtr) for set_threads in setters)
        with user_blas_threads():
            assert blas_threads() == [2]
        assert blas_threads() == [1]
    assert blas_threads() == [2]

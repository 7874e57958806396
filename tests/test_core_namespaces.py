"""The core numerics on every array namespace: same numbers as on NumPy.

The ``namespace`` fixture (tests/conftest.py) runs each check on
``array_api_strict`` everywhere and on CuPy where a GPU is present (skipped
otherwise), against NumPy (via array-api-compat).
"""

import array_api_compat.numpy as anp
import numpy as np
import pytest
from conftest import host

from chebpan._core.basis import get_basis
from chebpan._output.dense import OdeSolution
from chebpan._core.ldl import modified_ldl_solve
from chebpan._core.newton import DenseLinearization, objective, residual, residual_size
from chebpan._core.picard import coefficients, end_value, euler_start, node_values, picard_update

def inputs(rng, k=2, n=3, n_free=10, m=11):
    return {"y_a": rng.normal(size=(k, n)), "f_a": rng.normal(size=(k, n)),
            "half_h": rng.uniform(0.1, 1.0, size=(k, 1)),
            "x": rng.normal(size=(k, n, n_free)) * 0.1,
            "f_nodes": rng.normal(size=(k, n, m)),
            "jac": rng.normal(size=(k, m, n, n)) * 3}


@pytest.mark.parametrize("stiff", [False, True])
def test_basis_and_iteration_agree_with_numpy(namespace, stiff):
    xp = namespace
    n, m = (12, 12) if stiff else (12, 11)
    ref = get_basis(n, m, xp=anp, dtype=np.float64, stiff=stiff)
    other = get_basis(n, m, xp=xp, dtype=xp.float64, stiff=stiff)
    for name in ("tau", "weights", "phi_tilde", "d_tilde", "picard", "end_value"):
        assert np.allclose(host(getattr(other, name)), getattr(ref, name), rtol=0, atol=1e-13)

    rng = np.random.default_rng(7)
    data = inputs(rng, n_free=ref.n_free, m=m)
    on = {key: xp.asarray(value) for key, value in data.items()}
    pairs = [
        (node_values(ref, data["y_a"], data["f_a"], data["half_h"], data["x"], xp=anp),
         node_values(other, on["y_a"], on["f_a"], on["half_h"], on["x"], xp=xp)),
        (picard_update(ref, data["f_a"], data["f_nodes"], data["half_h"], xp=anp),
         picard_update(other, on["f_a"], on["f_nodes"], on["half_h"], xp=xp)),
        (coefficients(ref, data["y_a"], data["f_a"], data["half_h"], data["x"], xp=anp),
         coefficients(other, on["y_a"], on["f_a"], on["half_h"], on["x"], xp=xp)),
        (end_value(ref, data["y_a"], data["f_a"], data["half_h"], data["x"], xp=anp),
         end_value(other, on["y_a"], on["f_a"], on["half_h"], on["x"], xp=xp)),
        (euler_start(ref, data["f_a"], data["half_h"], xp=anp),
         euler_start(other, on["f_a"], on["half_h"], xp=xp)),
    ]
    r_ref = residual(ref, data["f_a"], data["f_nodes"], data["half_h"], data["x"], xp=anp)
    r_other = residual(other, on["f_a"], on["f_nodes"], on["half_h"], on["x"], xp=xp)
    lin_ref = DenseLinearization(ref, data["jac"], data["half_h"], xp=anp)
    lin_other = DenseLinearization(other, on["jac"], on["half_h"], xp=xp)
    g_ref, g_other = lin_ref.gradient(r_ref), lin_other.gradient(r_other)
    size_ref = residual_size(data["y_a"], data["f_a"], data["half_h"], xp=anp)
    size_other = residual_size(on["y_a"], on["f_a"], on["half_h"], xp=xp)
    pairs += [(r_ref, r_other), (size_ref, size_other),
              (objective(ref, r_ref, size_ref, xp=anp),
               objective(other, r_other, size_other, xp=xp)),
              (g_ref, g_other)]
    for expected, got in pairs:
        assert np.allclose(host(got), expected, rtol=1e-12, atol=1e-12)
    # The Newton direction goes through a solve (numba LDLᵀ on NumPy, the array-API
    # reference elsewhere): equal up to the matrix's condition number times eps.
    d_ref, d_other = lin_ref.direction(r_ref, g_ref), lin_other.direction(r_other, g_other)
    scale = np.max(np.abs(d_ref))
    assert np.max(np.abs(host(d_other) - d_ref)) <= 1e-9 * scale


def test_modified_ldl_agrees_with_the_numpy_kernel(namespace):
    xp = namespace
    rng = np.random.default_rng(11)
    a = rng.normal(size=(3, 20, 20))
    h = a @ np.swapaxes(a, -1, -2)
    h[1] -= 5 * np.eye(20)  # indefinite: the modification is active
    b = rng.normal(size=(3, 20))
    x_ref, e_ref = modified_ldl_solve(h, b, xp=anp)
    x, e = modified_ldl_solve(xp.asarray(h), xp.asarray(b), xp=xp)
    assert np.allclose(host(e), e_ref, rtol=1e-10, atol=1e-10)
    assert np.allclose(host(x), x_ref, rtol=1e-9, atol=1e-10)


def test_dense_output_agrees_with_numpy(namespace):
    xp = namespace
    rng = np.random.default_rng(3)
    coeffs = rng.normal(size=(2, 3, 8)) / (1 + np.arange(8)) ** 2
    ts = np.array([0.0, 0.5, 2.0])
    ends = np.polynomial.chebyshev.chebval(np.array([-1.0, 1.0]), np.moveaxis(coeffs, -1, 0))
    y_start, y_end = ends[..., 0], ends[..., 1]
    ref = OdeSolution(ts, coeffs, y_start, y_end, xp=anp)
    other = OdeSolution(xp.asarray(ts), xp.asarray(coeffs), xp.asarray(y_start),
                        xp.asarray(y_end), xp=xp)
    t = np.linspace(0, 2, 17)
    assert np.allclose(host(other(xp.asarray(t))), ref(t), rtol=1e-14, atol=1e-14)
    assert np.allclose(host(other(1.25)), ref(1.25), rtol=1e-14, atol=1e-14)

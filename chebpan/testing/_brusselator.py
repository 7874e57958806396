"""BRUSS and BRUSS-1000: the Brusselator reaction-diffusion PDE by the method of lines
(Hairer and Wanner, *Solving Ordinary Differential Equations II*, IV.10), n = 2 N = 200
and 1000.

On ``x in (0, 1)`` with N = 100 (500) interior points ``x_i = i / (N + 1)``:
``u_i' = 1 + u_i² v_i − 4 u_i + α (N + 1)² (u_{i−1} − 2 u_i + u_{i+1})``,
``v_i' = 3 u_i − u_i² v_i + α (N + 1)² (v_{i−1} − 2 v_i + v_{i+1})``, α = 1/50, with the
boundary values ``u = 1``, ``v = 3`` at both ends, from ``u_i(0) = 1 + sin(2π x_i)``,
``v_i(0) = 3``, on ``t in [0, 10]``.  The state is ``(u_1, v_1, u_2, v_2, ...)``, so the
Jacobian is banded (bandwidth 2); the diffusion makes it stiff
(``4 α (N + 1)² ≈ 816``, and 2e4 for N = 500).  Method-of-lines systems to be solved
with their sparsity.
"""

from __future__ import annotations

import functools

import numpy as np

from ._arrays import as_state
from ._suite import SuiteProblem

_ALPHA = 1.0 / 50.0
#: Interior points of each problem: BRUSS (n = 200), BRUSS-1000 (n = 1000).
GRIDS = {"BRUSS": 100, "BRUSS-1000": 500}


def _fun(grid, t, y):
    y = as_state(y)
    tail = y.shape[1:]
    u, v = y[0::2], y[1::2]
    one = np.ones((1,) + tail, dtype=y.dtype)
    diffusion = _ALPHA * (grid + 1) ** 2

    def laplacian(w, boundary):
        padded = np.concatenate([boundary * one, w, boundary * one])
        return padded[:-2] - 2 * w + padded[2:]

    reaction = u * u * v
    out = np.empty_like(y)
    out[0::2] = 1 + reaction - 4 * u + diffusion * laplacian(u, 1.0)
    out[1::2] = 3 * u - reaction + diffusion * laplacian(v, 3.0)
    return out


def _jac(grid, t, y):
    y = as_state(y)
    tail = y.shape[1:]
    n = 2 * grid
    diffusion = _ALPHA * (grid + 1) ** 2
    out = np.zeros((n, n) + tail, dtype=y.dtype)
    u, v = y[0::2], y[1::2]
    iu = np.arange(0, n, 2)
    iv = iu + 1
    out[iu, iu] = 2 * u * v - 4 - 2 * diffusion
    out[iu, iv] = u * u
    out[iv, iu] = 3 - 2 * u * v
    out[iv, iv] = -u * u - 2 * diffusion
    for index in (iu, iv):  # the diffusion couples neighbours of the same species
        out[index[1:], index[:-1]] = diffusion
        out[index[:-1], index[1:]] = diffusion
    return out


def sparsity(grid=GRIDS["BRUSS"]) -> np.ndarray:
    """Where the Jacobian may be nonzero, boolean array of shape (2 grid, 2 grid)."""
    return _jac(grid, 0.0, np.ones(2 * grid)) != 0


def _problem(name) -> SuiteProblem:
    grid = GRIDS[name]
    x = np.arange(1, grid + 1) / (grid + 1)
    y0 = np.empty(2 * grid)
    y0[0::2] = 1 + np.sin(2 * np.pi * x)
    y0[1::2] = 3.0
    return SuiteProblem(name=name, fun=functools.partial(_fun, grid),
                        jac=functools.partial(_jac, grid), t_span=(0.0, 10.0),
                        y0=tuple(y0), stiff=True, floor=1e-6, family="Hairer-Wanner",
                        description=f"Brusselator by the method of lines, n = {2 * grid}",
                        sparsity=functools.partial(sparsity, grid))


FACTORIES = {name: functools.partial(_problem, name) for name in GRIDS}

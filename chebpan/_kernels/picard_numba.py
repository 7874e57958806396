"""The Picard step of a batch (:func:`chebpan._core.picard.picard_step`) as a numba kernel.

One compiled call per round: the two products of the update run as BLAS matrix products
over the rows of all instances (``(K·n, M) × (M, n_free)`` and ``(K·n, n_free) ×
(n_free, M)``), and one pass over each instance's nodes adds the linear part and
measures the change and the rounding floor, instead of a dozen array passes.  Imported
lazily, for NumPy arrays only.

In a batch the products run on blocks of :data:`BLOCK_ROWS` rows, the last one padded
with zeros: a BLAS routes a product to different inner kernels by its shape, so an
instance's result would otherwise depend on how many others share its round, and a
batch solved in chunks (Dask, ``batch_memory``) would not agree bit for bit with one
solved whole.  A single solve (its rows always the same) takes one product: padding its
n rows to a block cost ~40 µs a step.
"""

from __future__ import annotations

import numba
import numpy as np

from .basis_arrays import basis_arrays
from .estimates_numba import capped_scales, per_component, scaled_change

__all__ = ["picard_step", "BLOCK_ROWS"]

#: Rows of one BLAS product (every product has this shape).
BLOCK_ROWS = 256


@numba.njit(cache=True)
def _blocked_product(a, b, out, pad_a, pad_out, blocked):
    """``out = a @ b``, by blocks of ``BLOCK_ROWS`` rows where ``blocked`` (``pad_a``,
    ``pad_out``: scratch of one block), else as one product."""
    rows = a.shape[0]
    if not blocked:
        np.dot(a, b, out)
        return
    for start in range(0, rows, BLOCK_ROWS):
        stop = min(rows, start + BLOCK_ROWS)
        if stop - start == BLOCK_ROWS:
            np.dot(a[start:stop], b, out[start:stop])
        else:
            pad_a[:stop - start] = a[start:stop]
            pad_a[stop - start:] = 0.0
            np.dot(pad_a, b, pad_out)
            out[start:stop] = pad_out[:stop - start]


@numba.njit(cache=True, error_model="numpy")
def _step(f_by_component, f_a, half_h, y_nodes, y_a, picard_t, picard_sums, phi, tau,
          slope_factor, atol, rtol, growth_cap, blocked, x_new, y_new, change, floor):
    # f_by_component: f at the nodes as (n, K, M), the layout ``fun`` returns them in.
    n, k_count, n_nodes = f_by_component.shape
    n_free = picard_t.shape[1]
    # X = (h/2) (F − s f_a 1ᵀ) Pᵀ = (h/2) (F Pᵀ − s f_a (P 1)ᵀ), F Pᵀ as one product.
    dtype = x_new.dtype
    products = np.empty((n * k_count, n_free), dtype=dtype)
    pad_rows = BLOCK_ROWS if blocked else 0
    pad_nodes = np.empty((pad_rows, n_nodes), dtype=dtype)
    pad_free = np.empty((pad_rows, n_free), dtype=dtype)
    _blocked_product(f_by_component.reshape(n * k_count, n_nodes), picard_t, products,
                     pad_nodes, pad_free, blocked)
    for k in range(k_count):
        h = half_h[k, 0]
        for i in range(n):
            start = slope_factor * f_a[k, i]
            row = i * k_count + k
            for j in range(n_free):
                x_new[k, i, j] = h * (products[row, j] - start * picard_sums[j])
    _blocked_product(x_new.reshape(k_count * n, n_free), phi,
                     y_new.reshape(k_count * n, n_nodes), pad_free, pad_nodes, blocked)
    scale = np.empty(n)
    moved = np.empty((n, n_nodes))  # (float64, as the values it is formed from)
    for k in range(k_count):
        h = half_h[k, 0]
        for i in range(n):
            slope = h * slope_factor * f_a[k, i]
            for m in range(n_nodes):
                value = y_new[k, i, m] + y_a[k, i] + slope * (1.0 + tau[m])
                y_new[k, i, m] = value
                moved[i, m] = value - y_nodes[k, i, m]
        cap = capped_scales(y_a[k], y_nodes[k, :, n_nodes - 1], atol, rtol, growth_cap, scale)
        change[k], floor[k] = scaled_change(y_a[k], y_nodes[k], moved, scale, cap)


def picard_step(basis, y_a, f_a, half_h, y_nodes, f_nodes, atol, rtol, growth_cap, blocked):
    """As :func:`chebpan._core.picard.picard_step` (which calls it for NumPy arrays)."""
    k_count, n, n_nodes = f_nodes.shape
    dtype = f_nodes.dtype
    x_new = np.empty((k_count, n, basis.n_free), dtype=dtype)
    y_new = np.empty((k_count, n, n_nodes), dtype=dtype)
    change = np.zeros(k_count, dtype=dtype)
    floor = np.zeros(k_count, dtype=dtype)
    if k_count == 0 or n == 0:
        x_new[...] = 0
        return x_new, y_new, change, floor
    # (f_nodes is usually a view of fun's (n, K, M) output: no copy then)
    arrays = [np.ascontiguousarray(a) for a in (np.permute_dims(f_nodes, (1, 0, 2)), f_a,
                                                half_h, y_nodes, y_a)]
    _step(*arrays, *basis_arrays(basis, "picard", _picard_view), float(basis.slope_factor),
          per_component(atol, n, dtype), per_component(rtol, n, dtype), float(growth_cap),
          bool(blocked), x_new, y_new, change, floor)
    return x_new, y_new, change, floor


def _picard_view(basis):
    """Pᵀ, its column sums, Φ̃ and τ, contiguous."""
    picard_t = np.ascontiguousarray(basis.picard.T)
    return (picard_t, picard_t.sum(axis=0), np.ascontiguousarray(basis.phi_tilde),
            np.ascontiguousarray(basis.tau))

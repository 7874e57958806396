"""What the user's ``fun`` returns, converted and checked against the expected shape.

With scipy's leniencies (a scalar for n = 1, an (n,) value for (n, 1)) and scipy's
dtype rules; a clear error for any other shape.  NumPy values are handled with NumPy,
those of another namespace with that namespace.
"""

from __future__ import annotations

import array_api_compat
import numpy as np

from .._kernels.dispatch import finite_kernel

__all__ = ["check_fun_output", "finite_instances"]


def finite_instances(values, *, xp):
    """Whether each instance's values are all finite: (K,) bools.

    ``values`` (n, K, M) is ``fun``'s output of one batch round, each instance's M
    points together.  On NumPy with a real floating dtype a numba kernel does it
    (``CHEBPAN_DISABLE_NUMBA=1``: this code).
    """
    kernel = finite_kernel(xp)
    if kernel is not None and xp.isdtype(values.dtype, "real floating"):
        return kernel(values)
    return xp.all(xp.isfinite(values), axis=(0, 2))


def check_fun_output(value, shape, *, name="fun", dtype=None, xp=None, device=None):
    """Convert a value returned by a user function and check its shape.

    Parameters
    ----------
    value : array_like
        What the user's function returned.
    shape : tuple of int
        The expected shape, e.g. ``(n,)`` or ``(n, k)``.
    name : str, optional
        The argument to name in the error message.
    xp : namespace, optional
        The solve's namespace; for one other than NumPy the value is
        converted to (and returned as) an array of ``xp`` on ``device``.
    device : device, optional
        Where the value is placed (the device of ``y``).
    dtype : dtype, optional
        Target dtype, normally ``y0.dtype`` (as in SciPy: a complex value
        for a real state gives NumPy's ``ComplexWarning`` and loses its
        imaginary part).  By default complex128 if ``value`` is complex,
        else float64.

    Returns
    -------
    array
        The value with the expected shape (a NumPy array, or one of ``xp``).  As in SciPy, a scalar is
        broadcast when ``n == shape[0] == 1``, and an ``(n,)`` value is
        accepted for ``(n, 1)`` (SciPy ravels vectorized single calls).

    Raises
    ------
    ValueError
        Any other shape (deviation from SciPy, which gives a NumPy
        broadcast error or wrong results).
    """
    shape = tuple(shape)
    if xp is not None and not array_api_compat.is_numpy_namespace(xp):
        return _check_output_array(value, shape, name=name, dtype=dtype, xp=xp, device=device)
    if type(value) is np.ndarray and value.dtype == dtype and value.shape == shape:
        return value  # (the usual value of a vectorised NumPy fun: nothing to convert)
    if dtype is None:
        value = np.asarray(value)
        dtype = complex if np.iscomplexobj(value) else float
    value = np.asarray(value, dtype=dtype)
    if value.shape == shape:
        return value
    if value.ndim == 0 and len(shape) >= 1 and shape[0] == 1:
        return np.broadcast_to(value, shape).copy()
    if len(shape) == 2 and shape[1] == 1 and value.shape == shape[:1]:
        return value.reshape(shape)
    raise ValueError(f"`{name}` returned an array of shape {value.shape}; "
                     f"expected {shape}.")


def _check_output_array(value, shape, *, name, dtype, xp, device):
    """:func:`check_fun_output` for a non-NumPy namespace (same leniencies).

    A list or tuple (scipy's style, e.g. ``[y[1], -y[0]]``) is stacked.
    """
    if isinstance(value, (list, tuple)):
        value = xp.stack([xp.asarray(v, dtype=dtype, device=device) for v in value])
    value = xp.asarray(value, dtype=dtype, device=device)
    if tuple(value.shape) == shape:
        return value
    if value.ndim == 0 and len(shape) >= 1 and shape[0] == 1:
        return xp.broadcast_to(value, shape)
    if len(shape) == 2 and shape[1] == 1 and tuple(value.shape) == shape[:1]:
        return xp.reshape(value, shape)
    raise ValueError(f"`{name}` returned an array of shape {tuple(value.shape)}; "
                     f"expected {shape}.")

"""Benchmark problems of the PAN paper, with high-precision reference solutions.

The paper's experiments (§5.5) use two test problems:

* :func:`spiral` -- the nonlinear spiral ``y' = tanh(A y)`` on ``[0, 10]`` (§5.5.1);
* :func:`lorenz` -- the Lorenz system on ``[0, 15]`` (§5.5.2).

Each factory returns a :class:`Problem`: the right-hand side ``fun`` and its Jacobian
``jac`` (both usable vectorised and unvectorised, see :class:`Problem`), the interval, the
initial value, and :meth:`Problem.reference`, the value ``y(t_end)`` computed with mpmath
to (by default) :data:`REFERENCE_DPS` verified significant digits.

(Over 400 lines: each problem's right-hand side, Jacobian and Taylor recurrence must
agree with each other, so they stay together, with the documentation of both.)

The references come from a Taylor-series integrator in mpmath arithmetic, checked by a
second run at higher precision and cached in-process and on disk
(:mod:`chebpan.testing._taylor_reference`).

Examples
--------
>>> import numpy as np
>>> from chebpan.testing import lorenz
>>> p = lorenz()
>>> p.t_span, p.y0
((0.0, 15.0), (2.0, 1.0, 1.0))
>>> p.fun(0.0, np.array(p.y0))
array([-10.        ,  53.        ,  -0.66666667])
>>> y_end = p.reference_array()  # mpmath: ~3 s on first use, then cached  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import math
from fractions import Fraction
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ._taylor_reference import (
    _CACHE_VERSION,
    _EXTRA_DIGITS,
    _cached_reference,
    _compute_reference,
    cache_dir,
    clear_reference_cache,
)

__all__ = [
    "Problem",
    "spiral",
    "lorenz",
    "PROBLEMS",
    "REFERENCE_DPS",
    "cache_dir",
    "clear_reference_cache",
]

#: Default number of verified significant digits of :meth:`Problem.reference`.
REFERENCE_DPS = 32



# --------------------------------------------------------------------------- helpers


def _exact(value: Any) -> Fraction:
    """Exact rational value of a parameter: int, float (its binary value), Fraction, str."""
    if isinstance(value, bool):
        raise TypeError("boolean is not a valid numeric parameter")
    if isinstance(value, Fraction):
        return value
    if isinstance(value, (int, np.integer)):
        return Fraction(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"parameter must be finite, got {value!r}")
        return Fraction(v)
    if isinstance(value, str):
        return Fraction(value.strip())
    raise TypeError(f"cannot use {value!r} of type {type(value).__name__} as an exact number")


def _float(value: Any) -> float:
    return float(_exact(value))


def _namespace(y: Any):
    """Array namespace of ``y`` (array_api_compat when available, else NumPy) and ``y``."""
    try:
        import array_api_compat
    except ImportError:  # pragma: no cover - array_api_compat is a dependency
        return np, np.asarray(y)
    try:
        return array_api_compat.array_namespace(y), y
    except TypeError:  # Python scalars, lists, ...
        y = np.asarray(y, dtype=float)
        return array_api_compat.array_namespace(y), y


# --------------------------------------------------------------------------- Problem


@dataclasses.dataclass(frozen=True)
class Problem:
    """An initial value problem ``y' = fun(t, y)``, ``y(t_span[0]) = y0``, with a reference.

    Parameters
    ----------
    name : str
        Short identifier (``"spiral"``, ``"lorenz"``); part of the reference cache key.
    fun : callable
        Right-hand side ``fun(t, y)``. Works unvectorised (scalar ``t``, ``y`` of shape
        ``(L,)`` -> ``(L,)``) and vectorised (``t`` scalar or of shape ``(P,)``, ``y`` of
        shape ``(L, P)`` -> ``(L, P)``), for NumPy and other array-API arrays.
    jac : callable
        Jacobian ``jac(t, y)`` = ``d fun / d y``: shape ``(L, L)`` for ``y`` of shape
        ``(L,)``, and ``(L, L, P)`` for ``y`` of shape ``(L, P)``.
    t_span : tuple of float
        ``(t0, t_end)``.
    y0 : tuple of float
        Initial value, length ``L``.
    description : str
        One-line human-readable description.
    params : dict
        Parameters of the right-hand side as given to the factory (treat as read-only).
        The reference uses their exact values (see the module notes).
    series : callable or None, optional
        Taylor-coefficient recurrence used by :meth:`reference`:
        ``series(y, order, params) -> [coeffs_1, ..., coeffs_L]`` with mpmath numbers
        (``params`` converted to mpf). ``None``: the problem has no reference.

    Notes
    -----
    Use :func:`dataclasses.replace` to change the interval or the initial value, e.g.
    ``dataclasses.replace(lorenz(), t_span=(0.0, 1.0))``; the reference follows (it is
    keyed on all of name, parameters, interval, initial value and ``dps``).

    Examples
    --------
    >>> import numpy as np
    >>> from chebpan.testing import spiral
    >>> p = spiral()
    >>> p.fun(0.0, np.array(p.y0)).shape
    (2,)
    >>> p.fun(np.zeros(5), np.ones((2, 5))).shape
    (2, 5)
    >>> p.jac(0.0, np.array(p.y0)).shape
    (2, 2)
    >>> p.jac(np.zeros(5), np.ones((2, 5))).shape
    (2, 2, 5)
    """

    name: str
    fun: Callable
    jac: Callable
    t_span: tuple
    y0: tuple
    description: str = ""
    params: dict = dataclasses.field(default_factory=dict, hash=False)
    series: Callable | None = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        t_span = tuple(float(t) for t in self.t_span)
        if len(t_span) != 2:
            raise ValueError("t_span must have two entries (t0, t_end)")
        object.__setattr__(self, "t_span", t_span)
        object.__setattr__(self, "y0", tuple(float(v) for v in self.y0))
        object.__setattr__(self, "params", dict(self.params))

    # ------------------------------------------------------------------ reference

    def _key(self, dps: int) -> dict:
        return {
            "name": self.name,
            "params": {k: str(_exact(v)) for k, v in sorted(self.params.items())},
            "t0": str(_exact(self.t_span[0])),
            "t_end": str(_exact(self.t_span[1])),
            "y0": [str(_exact(v)) for v in self.y0],
            "dps": int(dps),
            "version": _CACHE_VERSION,
        }

    def reference_info(self, dps: int = REFERENCE_DPS, *, use_cache: bool = True) -> dict:
        """Reference value of ``y(t_end)`` with its provenance.

        Parameters
        ----------
        dps : int, optional
            Number of significant digits required (verified, see the module notes).
        use_cache : bool, optional
            If False, recompute, bypassing (and not updating) both caches.

        Returns
        -------
        dict
            ``key`` (the cache key), ``values`` (decimal strings with ``dps + 3``
            significant digits, at least ``dps`` of them correct), ``verified_digits``
            (smallest number of significant digits, over the components, on which the
            two runs agree), ``working_dps`` (precision of the less precise run), ``order`` (its Taylor order), ``steps`` (its number of
            steps), ``seconds`` (time of the computation, both runs) and ``mpmath``
            (version).

        Examples
        --------
        >>> import dataclasses
        >>> from chebpan.testing import lorenz
        >>> p = dataclasses.replace(lorenz(), t_span=(0.0, 0.5))
        >>> info = p.reference_info(dps=20)
        >>> info["verified_digits"] >= 20
        True
        """
        if self.series is None:
            raise NotImplementedError(f"problem {self.name!r} has no reference solution")
        dps = int(dps)
        if dps < 1:
            raise ValueError("dps must be positive")
        key = self._key(dps)
        if not use_cache:
            return _compute_reference(key, self.series)
        key_json = json.dumps(key, sort_keys=True)
        return json.loads(_cached_reference(key_json, self.series))

    def reference(self, dps: int = REFERENCE_DPS, *, use_cache: bool = True) -> tuple:
        """High-precision value of ``y(t_span[1])``, computed with mpmath.

        Parameters
        ----------
        dps : int, optional
            Number of significant digits required; every component is verified to agree
            to at least this many digits between two independent high-precision runs.
        use_cache : bool, optional
            If False, recompute, bypassing (and not updating) both caches.

        Returns
        -------
        tuple of mpmath.mpf
            One entry per component, with (at least) ``dps`` correct significant digits.

        Examples
        --------
        >>> import dataclasses
        >>> from chebpan.testing import spiral
        >>> p = dataclasses.replace(spiral(), t_span=(0.0, 1.0))
        >>> y = p.reference(dps=25)
        >>> len(y), type(y[0]).__name__
        (2, 'mpf')
        """
        import mpmath

        info = self.reference_info(dps, use_cache=use_cache)
        with mpmath.mp.workdps(max(int(dps), 15) + _EXTRA_DIGITS + 5):
            return tuple(mpmath.mpf(s) for s in info["values"])

    def reference_array(self, dps: int = REFERENCE_DPS, *,
                        use_cache: bool = True) -> np.ndarray:
        """:meth:`reference` rounded to a float64 NumPy array (cached).

        Parameters are those of :meth:`reference`.

        Examples
        --------
        >>> import dataclasses
        >>> from chebpan.testing import spiral
        >>> p = dataclasses.replace(spiral(), t_span=(0.0, 1.0))
        >>> p.reference_array(dps=20).dtype
        dtype('float64')
        """
        info = self.reference_info(dps, use_cache=use_cache)
        # float(str) rounds correctly; strings carry >= 17 digits whenever dps >= 17.
        return np.array([float(s) for s in info["values"]], dtype=np.float64)


# --------------------------------------------------------------------------- spiral


def spiral(a: float = 0.1, *, t_span: Sequence[float] = (0.0, 10.0),
           y0: Sequence[float] = (2.0, 1.0)) -> Problem:
    """Nonlinear spiral of the paper, §5.5.1: ``y' = tanh(A y)``, ``A = [[a, 1], [-1, -a]]``.

    Solved on ``t ∈ [0, 10]`` from ``y(0) = (2, 1)``. The paper leaves ``a`` open;
    ``a = 0.1`` is chebpan's choice. The paper's "true solution" came from RK45 with a fine
    step; here :meth:`Problem.reference` is a verified high-precision Taylor solution.

    Parameters
    ----------
    a : float, Fraction or str, optional
        Damping parameter. A float means its exact binary value in the reference; a
        Fraction or a decimal string (``"0.1"``) means that exact number.
    t_span, y0 : sequence of float, optional
        Interval and initial value (defaults: the paper's).

    Returns
    -------
    Problem

    Notes
    -----
    With ``v = A y`` and ``u = tanh(v)`` the Taylor coefficients follow from
    ``y' = u``, ``u' = (1 - u**2) v'``. The Jacobian is ``diag(1 - u**2) A``.

    Examples
    --------
    >>> import numpy as np
    >>> from chebpan.testing import spiral
    >>> p = spiral()
    >>> p.params
    {'a': 0.1}
    >>> np.round(p.fun(0.0, np.array([2.0, 1.0])), 6)
    array([ 0.833655, -0.970452])
    """
    af = _float(a)

    def fun(t, y):
        xp, y = _namespace(y)
        y1, y2 = y[0, ...], y[1, ...]
        return xp.stack([xp.tanh(af * y1 + y2), xp.tanh(-y1 - af * y2)])

    def jac(t, y):
        xp, y = _namespace(y)
        y1, y2 = y[0, ...], y[1, ...]
        s1 = 1 - xp.tanh(af * y1 + y2) ** 2
        s2 = 1 - xp.tanh(-y1 - af * y2) ** 2
        return xp.stack([xp.stack([af * s1, s1]), xp.stack([-s2, -af * s2])])

    return Problem(
        name="spiral",
        fun=fun,
        jac=jac,
        t_span=tuple(t_span),
        y0=tuple(y0),
        description=f"nonlinear spiral y' = tanh(A y), A = [[a, 1], [-1, -a]], a = {a}",
        params={"a": a},
        series=_spiral_series,
    )


def _spiral_series(y, order, params):
    """Taylor coefficients of the spiral at ``y`` up to ``order`` (mpmath context)."""
    import mpmath

    fdot = mpmath.fdot
    a = params["a"]
    Y1, Y2 = [y[0]], [y[1]]
    V1, V2 = [a * y[0] + y[1]], [-y[0] - a * y[1]]
    U1, U2 = [mpmath.tanh(V1[0])], [mpmath.tanh(V2[0])]
    S1, S2 = [1 - U1[0] ** 2], [1 - U2[0] ** 2]
    D1, D2 = [], []  # D[j] = (j + 1) v_{j+1}: coefficients of v'
    for k in range(order):
        k1 = k + 1
        y1, y2 = U1[k] / k1, U2[k] / k1
        Y1.append(y1)
        Y2.append(y2)
        if k1 == order:
            break
        v1, v2 = a * y1 + y2, -y1 - a * y2
        D1.append(k1 * v1)
        D2.append(k1 * v2)
        # (k+1) u_{k+1} = sum_{j=0}^{k} s_{k-j} (j+1) v_{j+1}
        U1.append(fdot(S1[::-1], D1) / k1)
        U2.append(fdot(S2[::-1], D2) / k1)
        # s_{k+1} = -(u^2)_{k+1}
        S1.append(-fdot(U1, U1[::-1]))
        S2.append(-fdot(U2, U2[::-1]))
    return [Y1, Y2]


# --------------------------------------------------------------------------- Lorenz


def lorenz(sigma: float = 10.0, rho: float = 28.0, beta: float = 8 / 3, *,
           t_span: Sequence[float] = (0.0, 15.0),
           y0: Sequence[float] = (2.0, 1.0, 1.0)) -> Problem:
    """Lorenz system of the paper, §5.5.2, on ``t ∈ [0, 15]`` from ``y(0) = (2, 1, 1)``.

    ``x' = sigma (y - x)``, ``y' = x (rho - z) - y``, ``z' = x y - beta z``.

    Parameters
    ----------
    sigma, rho, beta : float, Fraction or str, optional
        Parameters (paper: 10, 28, 8/3). A float means its exact binary value in the
        reference (the default ``beta = 8/3`` is the float nearest to 8/3, i.e. exactly
        what ``fun`` computes with); pass ``Fraction(8, 3)`` or ``"8/3"`` for the exact
        rational (the reference at t = 15 then moves by about 6e-13, the chaotic
        amplification of the 1.5e-16 change).
    t_span, y0 : sequence of float, optional
        Interval and initial value (defaults: the paper's).

    Returns
    -------
    Problem

    Notes
    -----
    The flow is chaotic (largest Lyapunov exponent about 0.9): local errors committed
    along the way are amplified by up to about ``1e6`` over ``[0, 15]``; a change of one
    unit in the last place of ``y0`` moves ``y(15)`` by about ``1e-14`` to ``3e-13``.
    Solver errors at ``t = 15`` are therefore much larger than the tolerance (DOP853 at
    ``rtol = atol = 1e-13`` is off by about ``2e-9``).

    Examples
    --------
    >>> import numpy as np
    >>> from chebpan.testing import lorenz
    >>> p = lorenz()
    >>> p.jac(0.0, np.array(p.y0))
    array([[-10.        ,  10.        ,   0.        ],
           [ 27.        ,  -1.        ,  -2.        ],
           [  1.        ,   2.        ,  -2.66666667]])
    """
    s, r, b = _float(sigma), _float(rho), _float(beta)

    def fun(t, y):
        xp, y = _namespace(y)
        x1, x2, x3 = y[0, ...], y[1, ...], y[2, ...]
        return xp.stack([s * (x2 - x1), x1 * (r - x3) - x2, x1 * x2 - b * x3])

    def jac(t, y):
        xp, y = _namespace(y)
        x1, x2, x3 = y[0, ...], y[1, ...], y[2, ...]
        one = xp.ones_like(x1)
        zero = xp.zeros_like(x1)
        return xp.stack([
            xp.stack([-s * one, s * one, zero]),
            xp.stack([r - x3, -one, -x1]),
            xp.stack([x2, x1, -b * one]),
        ])

    return Problem(
        name="lorenz",
        fun=fun,
        jac=jac,
        t_span=tuple(t_span),
        y0=tuple(y0),
        description=f"Lorenz system, sigma = {sigma}, rho = {rho}, beta = {beta}",
        params={"sigma": sigma, "rho": rho, "beta": beta},
        series=_lorenz_series,
    )


def _lorenz_series(y, order, params):
    """Taylor coefficients of the Lorenz flow at ``y`` up to ``order`` (mpmath context)."""
    import mpmath

    fdot = mpmath.fdot
    s, r, b = params["sigma"], params["rho"], params["beta"]
    X, Y, Z = [y[0]], [y[1]], [y[2]]
    for k in range(order):
        k1 = k + 1
        xz = fdot(X, Z[::-1])  # (x z)_k, Cauchy product
        xy = fdot(X, Y[::-1])  # (x y)_k
        xk, yk, zk = X[k], Y[k], Z[k]
        X.append(s * (yk - xk) / k1)
        Y.append((r * xk - xz - yk) / k1)
        Z.append((xy - b * zk) / k1)
    return [X, Y, Z]


#: The paper's problems by name: factories returning a :class:`Problem`.
PROBLEMS: Mapping[str, Callable[..., Problem]] = {"spiral": spiral, "lorenz": lorenz}

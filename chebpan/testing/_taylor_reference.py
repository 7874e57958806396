"""High-precision references by a Taylor-series integrator in mpmath, cached on disk.

How the references are computed
-------------------------------
Both right-hand sides admit simple recurrences for their Taylor coefficients, so the
references come from a high-order Taylor-series integrator in mpmath arithmetic:

* Lorenz is polynomial: the coefficients of ``x z`` and ``x y`` are Cauchy products;
* for the spiral, ``v = A y`` is linear and ``u = tanh(v)`` obeys ``u' = (1 - u**2) v'``,
  which gives the coefficients of ``u`` from those of ``v`` and of ``s = 1 - u**2``
  (itself a Cauchy product).

The order ``p`` is about ``1.15 W`` for a working precision of ``W`` decimal digits
(Jorba and Zou's choice), and each step is as long as the last two Taylor terms allow at a
relative tolerance ``10**-W``. Every reference is computed twice, at working precisions
``W`` and ``W + 10`` (hence with different orders and step sequences too); the result of
the more precise run is kept only if the two agree to more than the requested number of
significant digits in every component (relative difference below ``10**-(dps+1)``),
otherwise ``W`` is raised and both runs repeated. The kept values are stored with
``dps + 3`` digits, so that their rounding does not eat into the ``dps`` correct ones.
``W`` starts at ``dps + 15``: the Lorenz flow amplifies perturbations by up to about
``1e6`` over ``[0, 15]``, and the check catches anything the guard digits do not cover.

Parameters are taken *exactly*: a float parameter means its exact binary value (so the
reference is the exact solution of the problem that ``fun`` computes in float64), while a
:class:`fractions.Fraction` or a decimal string such as ``"8/3"`` or ``"0.1"`` means that
exact rational number (``fun`` then uses the nearest float).

Caching
-------
References are cached in-process and on disk, in the directory named by the environment
variable ``CHEBPAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/chebpan``, else
``~/.cache/chebpan``. Each file stores the mpmath-computed values as decimal strings
together with the full key (problem name, exact parameters, interval, initial value,
``dps``, cache format version), which is checked on reading. An unwritable cache
directory only disables the disk cache.

mpmath is imported lazily, by the reference computation only: the module imports, and
``fun``/``jac`` work, without it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Callable

__all__ = ["cache_dir", "clear_reference_cache"]

# Bump when the reference algorithm or the file format changes: old files are then ignored.
_CACHE_VERSION = 1
# Working precision starts at dps + _GUARD_DIGITS; the check run uses _CHECK_DIGITS more.
_GUARD_DIGITS = 15
_CHECK_DIGITS = 10
# Values are stored with dps + _EXTRA_DIGITS digits, so that rounding them costs no accuracy.
_EXTRA_DIGITS = 3
_MAX_ATTEMPTS = 4
_MAX_STEPS = 1_000_000


# --------------------------------------------------------------------------- caching


def cache_dir() -> Path:
    """Directory of the on-disk reference cache.

    ``$CHEBPAN_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/chebpan``, else
    ``~/.cache/chebpan``. Read at each call, so it can be changed at run time.

    Examples
    --------
    >>> from chebpan.testing import cache_dir
    >>> cache_dir()  # doctest: +SKIP
    PosixPath('/home/user/.cache/chebpan')
    """
    env = os.environ.get("CHEBPAN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "chebpan"


def _cache_file(key: dict) -> Path:
    key_json = json.dumps(key, sort_keys=True)
    digest = hashlib.sha256(key_json.encode()).hexdigest()[:20]
    return cache_dir() / f"reference-{key['name']}-dps{key['dps']}-{digest}.json"


def _load(key: dict) -> dict | None:
    try:
        with open(_cache_file(key), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    values = data.get("values")
    if not isinstance(values, list) or len(values) != len(key["y0"]):
        return None
    try:
        [Fraction(v) for v in values]  # well-formed decimal strings
    except (TypeError, ValueError):
        return None
    return data


def _store(record: dict) -> None:
    path = _cache_file(record["key"])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(record, fh, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass  # read-only or missing home: the in-process cache still works


@functools.lru_cache(maxsize=64)
def _cached_reference(key_json: str, series: Callable) -> str:
    key = json.loads(key_json)
    record = _load(key)
    if record is None:
        record = _compute_reference(key, series)
        _store(record)
    return json.dumps(record)


def clear_reference_cache(*, memory: bool = True, disk: bool = False) -> None:
    """Forget cached references.

    Parameters
    ----------
    memory : bool, optional
        Clear the in-process cache (default True).
    disk : bool, optional
        Delete the reference files in :func:`cache_dir` (default False).
    """
    if memory:
        _cached_reference.cache_clear()
    if disk:
        for path in cache_dir().glob("reference-*.json"):
            try:
                path.unlink()
            except OSError:
                pass


# --------------------------------------------------------------------------- Taylor integrator


def _taylor_integrate(series, y0, t0, t1, params, order, tol):
    """Integrate from ``t0`` to ``t1`` with Taylor steps of fixed ``order`` (mpmath context).

    All arguments are mpf (``y0`` a list, ``params`` a dict). The step is chosen so that
    the last two Taylor terms are at most ``tol * max(1, |y|_inf)``. Returns the value at
    ``t1`` and the number of steps.
    """
    import mpmath

    mpf = mpmath.mpf
    y = list(y0)
    t = t0
    direction = 1 if t1 >= t0 else -1
    safety = mpf("0.9")
    steps = 0
    while (t1 - t) * direction > 0:
        if steps >= _MAX_STEPS:
            raise RuntimeError("Taylor reference integrator: too many steps")
        coeffs = series(y, order, params)
        scale = tol * max(mpf(1), max(abs(v) for v in y))
        h = None
        for j in (order - 1, order):
            size = max(abs(c[j]) for c in coeffs)
            if size > 0:
                hj = (scale / size) ** (mpf(1) / j)
                h = hj if h is None else min(h, hj)
        remaining = abs(t1 - t)
        h = remaining if h is None else min(safety * h, remaining)
        if h <= 0 or t + direction * h == t:
            raise RuntimeError("Taylor reference integrator: step size underflow")
        last = h == remaining
        h = direction * h
        y = [_horner(c, h) for c in coeffs]
        t = t1 if last else t + h
        steps += 1
    return y, steps


def _horner(c, h):
    s = c[-1]
    for cj in reversed(c[:-1]):
        s = s * h + cj
    return s


def _run(key: dict, series: Callable, working_dps: int):
    """One reference run at ``working_dps`` digits; returns (values, order, steps)."""
    import mpmath

    def mp_exact(s: str):
        q = Fraction(s)
        return mpmath.mpf(q.numerator) / q.denominator

    with mpmath.mp.workdps(working_dps):
        order = int(math.ceil(1.15 * working_dps)) + 2
        tol = mpmath.mpf(10) ** (-working_dps)
        params = {k: mp_exact(v) for k, v in key["params"].items()}
        y0 = [mp_exact(v) for v in key["y0"]]
        y, steps = _taylor_integrate(
            series, y0, mp_exact(key["t0"]), mp_exact(key["t_end"]), params, order, tol
        )
        return [+v for v in y], order, steps


def _agreement_digits(a, b) -> float:
    """Smallest number of agreeing significant digits over the components of a and b."""
    import mpmath

    scale = max(abs(v) for v in b)
    digits = math.inf
    for x, y in zip(a, b):
        diff = abs(x - y)
        if diff == 0:
            continue
        den = abs(y) if y != 0 else scale
        if den == 0:
            return -math.inf
        digits = min(digits, -float(mpmath.log10(diff / den)))
    return digits


def _compute_reference(key: dict, series: Callable) -> dict:
    """Compute a reference with two runs and check their agreement (see module notes)."""
    import mpmath

    dps = key["dps"]
    start = time.perf_counter()
    working = dps + _GUARD_DIGITS
    for _ in range(_MAX_ATTEMPTS):
        a, order, steps = _run(key, series, working)
        b, _, _ = _run(key, series, working + _CHECK_DIGITS)
        with mpmath.mp.workdps(working + _CHECK_DIGITS):
            digits = _agreement_digits(a, b)
        if digits >= dps + 1:
            with mpmath.mp.workdps(working + _CHECK_DIGITS):
                values = [mpmath.nstr(v, dps + _EXTRA_DIGITS, strip_zeros=False) for v in b]
            return {
                "key": key,
                "values": values,
                # identical runs (digits = inf) are reported as the check run's precision
                "verified_digits": min(digits, working + _CHECK_DIGITS),
                "working_dps": working,
                "order": order,
                "steps": steps,
                "seconds": time.perf_counter() - start,
                "mpmath": mpmath.__version__,
            }
        missing = dps + 1 - digits if math.isfinite(digits) else 2 * working
        working += int(math.ceil(missing)) + _CHECK_DIGITS
    raise RuntimeError(
        f"reference for {key['name']!r} not verified to {dps} digits "
        f"(two runs agree to {digits:.1f} digits)"
    )

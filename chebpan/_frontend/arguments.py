"""``args``: the extra arguments of ``fun`` and a callable ``jac``, bound once.

SciPy's rules and messages (any iterable is accepted; a non-iterable gets SciPy's
``TypeError``).  A batched solve's per-instance arguments (``batch_args``) come between
``y`` and ``args``.
"""

from __future__ import annotations

__all__ = ["unpack_args", "wrap_args", "wrap_jac"]


def unpack_args(args):
    """Return ``args`` as a tuple, with SciPy's error if it is not iterable."""
    try:
        return tuple(args)
    except TypeError as exp:
        suggestion_tuple = (
            "Supplied 'args' cannot be unpacked. Please supply `args`"
            f" as a tuple (e.g. `args=({args},)`)"
        )
        raise TypeError(suggestion_tuple) from exp


def wrap_args(fun, args):
    """Bind extra arguments to ``fun``.

    Parameters
    ----------
    fun : callable
        ``fun(t, y, *args)``.
    args : iterable or None
        Extra arguments.  Any iterable is accepted, as in SciPy (a list, even
        a string).  It is copied into a tuple once, so a generator is passed
        item by item (SciPy would consume it during its check and pass
        nothing).

    Returns
    -------
    callable
        ``fun`` itself when ``args`` is None, otherwise
        ``lambda t, y: fun(t, y, *args)``.

    Raises
    ------
    TypeError
        ``args`` is not iterable (SciPy's message).
    """
    if args is None:
        return fun
    args = unpack_args(args)

    def fun_with_args(t, y, *point_args, fun=fun):
        # (point_args: a batched solve's per-instance arguments, before args)
        return fun(t, y, *point_args, *args)

    return fun_with_args


def wrap_jac(jac, args):
    """Bind extra arguments to a callable Jacobian.

    Parameters
    ----------
    jac : callable, array_like, sparse matrix or None
        The ``jac`` option.  Only a callable is wrapped.
    args : iterable or None
        Extra arguments, as for :func:`wrap_args`.

    Returns
    -------
    object
        ``jac`` unchanged if ``args`` is None or ``jac`` is not callable,
        otherwise ``lambda t, y: jac(t, y, *args)``.

    Raises
    ------
    TypeError
        ``args`` is not iterable (SciPy's message).
    """
    if args is None:
        return jac
    args = unpack_args(args)
    if not callable(jac):
        return jac

    def jac_with_args(t, y, *point_args, jac=jac):
        return jac(t, y, *point_args, *args)

    return jac_with_args

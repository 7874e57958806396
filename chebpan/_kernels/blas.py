"""How many threads the host BLAS uses: one for chebpan's own linear algebra, the user's
for ``fun``, ``jac`` and large dense systems.

:func:`solver_blas_threads` wraps a whole solve (in :func:`chebpan.solve_ivp`);
:func:`user_blas_threads` wraps the calls of the user's functions
(:class:`chebpan._rhs.evaluator.Evaluator`); :func:`blas_threads_for` the dense solves of
the Newton step (:mod:`chebpan._core.newton`).  See docs/algorithm.md, "BLAS threads".
"""

from __future__ import annotations

import contextlib
import contextvars
import threading

__all__ = ["solver_blas_threads", "user_blas_threads", "blas_threads_for",
           "BLAS_THREADS_MIN_SIZE"]


#: Dense systems (rows of ``AᵀA`` or of the collocation matrix) from this size on
#: keep the user's BLAS threads; below it chebpan's own linear algebra runs on one
#: thread.  Measured on 2 cores (docs/algorithm.md#blas-threads): two threads
#: gain at most 1.9× on a quiet machine at 480–2000 unknowns, and lose up to
#: 1.7× per call (4–40× per solve) when another process occupies a core.
BLAS_THREADS_MIN_SIZE = 2048

_controller = None
#: The BLAS libraries of the current solve that the user had on more than one
#: thread, as what sets each one's thread count (:func:`_setter`) with the user's
#: count: ((set_threads, threads), ...); None outside a solve, or when there is
#: nothing to restore.
_user_limits = contextvars.ContextVar("chebpan_user_blas_limits", default=None)


def _blas_controller():
    """threadpoolctl's view of the loaded BLAS libraries (made once, lazily)."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController().select(user_api="blas")
    return _controller


@contextlib.contextmanager
def solver_blas_threads():
    """Run a solve with the host BLAS limited to one thread.

    chebpan's own products and factorisations are small (a few hundred rows
    at most by default): a threaded BLAS gains little on them and, when
    another process occupies a core, its threads spin and wait — 4–40× per
    solve on a 2-core machine.  User code keeps the user's settings: the
    right-hand side, ``jac`` and large systems run inside
    :func:`user_blas_threads`.  Nothing is changed where every BLAS already
    runs on one thread.  (The limit is process-wide, like every BLAS thread
    setting: solves run concurrently from several Python threads share it.)
    """
    # (each library with the thread count to give back to user code; set directly, as
    # user_blas_threads does: threadpoolctl's info and limit cost ~25 µs per solve)
    threaded = tuple((lib, lib.num_threads) for lib in _blas_controller().lib_controllers)
    threaded = tuple((lib, threads) for lib, threads in threaded if threads != 1)
    if not threaded:
        yield
        return
    token = _user_limits.set(None)
    try:
        for lib, _ in threaded:
            lib.set_num_threads(1)
        # (after threadpoolctl's own call, which makes this thread the controlling one)
        _user_limits.set(tuple((_setter(lib), threads) for lib, threads in threaded))
        yield
    finally:
        for lib, threads in threaded:
            lib.set_num_threads(threads)
        _user_limits.reset(token)


def _setter(lib):
    """What sets ``lib``'s thread count in a round: threadpoolctl's ``set_num_threads``,
    or, for OpenBLAS on its own threads (not OpenMP) and controlled by this Python
    thread, the C function that call ends in.  (threadpoolctl's checks of the controlling
    thread and its symbol lookup cost ~1.5 µs a call, and a round makes four: two
    libraries, set and reset; scipy's Lotka–Volterra example took 11 % longer with
    two BLAS threads than with one.)"""
    try:
        direct = (lib.internal_api == "openblas" and lib.threading_layer != "openmp"
                  and lib._SHARED_STATE.controlling_thread is threading.current_thread())
        symbol = lib._get_symbol("openblas_set_num_threads") if direct else None
    except AttributeError:  # (a threadpoolctl without these: its own call)
        symbol = None
    return lib.set_num_threads if symbol is None else symbol


class user_blas_threads:
    """Inside :func:`solver_blas_threads`: the user's BLAS threads for this block.

    Used around calls of ``fun`` and ``jac`` (one per round) and for dense
    systems of at least :data:`BLAS_THREADS_MIN_SIZE` unknowns.  A no-op
    outside a solve.  It runs once per round, so it sets each library's
    thread count directly (about 1 µs) rather than through threadpoolctl's
    ``limit`` (about 15 µs for the pair).
    """

    __slots__ = ("_restore", "_token")

    def __enter__(self):
        limits = _user_limits.get()
        self._restore = limits
        if limits is None:
            return self
        self._token = _user_limits.set(None)  # a solve nested in ``fun`` starts afresh
        for set_threads, threads in limits:
            set_threads(threads)
        return self

    def __exit__(self, *exc):
        limits = self._restore
        if limits is not None:
            for set_threads, _ in limits:
                set_threads(1)
            _user_limits.reset(self._token)
        return False


def blas_threads_for(size):
    """:func:`user_blas_threads` for systems of ``size`` unknowns that pay for threads."""
    return user_blas_threads() if size >= BLAS_THREADS_MIN_SIZE else contextlib.nullcontext()

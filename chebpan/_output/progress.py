"""``progress=True``: a tqdm progress bar over the integration interval.

:class:`ProgressBar` follows a single solve's ``t``; :class:`BatchProgressBar`, the
same bar, a batch's share of the total integration length covered.
"""

from __future__ import annotations

import math

__all__ = ["ProgressBar", "BatchProgressBar"]


class ProgressBar:
    """A bar that fills as the accepted segments advance ``t`` from t0 to tf.

    Parameters
    ----------
    t0, tf : float
        The interval; with an infinite ``tf`` the bar shows ``t`` without a total.

    Raises
    ------
    ImportError
        When tqdm (an optional dependency) is not installed.
    """

    def __init__(self, t0: float, tf: float):
        self.t0 = t0
        self._open(abs(tf - t0) if math.isfinite(tf) else None, self._describe(t0))

    def _open(self, total, description):
        """The tqdm bar over ``total`` (None: no total, the description only)."""
        try:
            from tqdm.auto import tqdm
        except ImportError:
            raise ImportError(
                "`progress=True` needs the optional package tqdm: "
                "pip install tqdm (or pip install 'chebpan[progress]')."
            ) from None
        self.done = 0.0
        self.total = total
        bar_format = ("{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]"
                      if total is not None else "{desc} [{elapsed}]")
        self.bar = tqdm(total=total, desc=description, bar_format=bar_format)

    def _show(self, done, description):
        """``done`` of the total covered (never past it), with a new description."""
        if self.total is not None:
            done = min(done, self.total)
        elif not math.isfinite(done):
            done = self.done  # (no total, nothing to fill: an infinite span's end)
        self.bar.set_description_str(description, refresh=False)
        self.bar.update(done - self.done)
        self.done = done

    @staticmethod
    def _describe(t):
        return f"chebpan: t = {t:.6g}"

    def update(self, t: float) -> None:
        """The solution is known up to ``t``."""
        self._show(abs(t - self.t0), self._describe(t))

    def close(self) -> None:
        self.bar.close()


class BatchProgressBar(ProgressBar):
    """The bar of a batch: the fraction ``Σ_k |t_k − t0_k| / Σ_k |tf_k − t0_k|`` covered.

    ``t_k`` is how far instance ``k`` has got; an instance that has ended (at
    ``tf``, by a failure or a terminal event) counts as covered whole.  The
    description counts the instances done.

    Parameters
    ----------
    spans : chebpan._control.spans.Spans
        The instances' ``(t0, tf)``.
    k : int
        The number of instances.
    """

    def __init__(self, spans, k: int):
        xp = spans.xp
        self.spans = spans
        self.n_instances = k
        self.n_done = 0
        total = (k * abs(spans.tf - spans.t0) if spans.shared
                 else float(xp.sum(xp.abs(spans.tf - spans.t0))))
        self._open(total if math.isfinite(total) else None, self._describe_done())

    def _describe_done(self):
        return f"chebpan: {self.n_done}/{self.n_instances} instances done"

    def advance(self, t_a, t_b) -> None:
        """Segments ``[t_a, t_b]`` (arrays (A,)) were accepted."""
        xp = self.spans.xp
        self._show(self.done + float(xp.sum(xp.abs(t_b - t_a))), self._describe_done())

    def ended(self, ids, t) -> None:
        """The instances ``ids`` (k,) have ended, having got to ``t`` (k,)."""
        xp = self.spans.xp
        self.n_done += int(ids.shape[0])
        rest = float(xp.sum(xp.abs(self.spans.of(ids).tf - t))) if ids.shape[0] else 0.0
        done = self.done + rest
        if self.n_done == self.n_instances and self.total is not None:
            done = self.total  # (every instance done: the sums' rounding aside)
        self._show(done, self._describe_done())

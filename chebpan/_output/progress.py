"""``progress=True``: a tqdm progress bar over the integration interval."""

from __future__ import annotations

import math

__all__ = ["ProgressBar"]


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
        try:
            from tqdm.auto import tqdm
        except ImportError:
            raise ImportError(
                "`progress=True` needs the optional package tqdm: "
                "pip install tqdm (or pip install 'chebpan[progress]')."
            ) from None
        self.t0 = t0
        self.done = 0.0
        total = abs(tf - t0) if math.isfinite(tf) else None
        bar_format = ("{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]"
                      if total is not None else "{desc} [{elapsed}]")
        self.bar = tqdm(total=total, desc=self._describe(t0), bar_format=bar_format)

    @staticmethod
    def _describe(t):
        return f"chebpan: t = {t:.6g}"

    def update(self, t: float) -> None:
        """The solution is known up to ``t``."""
        done = abs(t - self.t0)
        self.bar.set_description_str(self._describe(t), refresh=False)
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        self.bar.close()

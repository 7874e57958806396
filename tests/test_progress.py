"""progress=True: a tqdm bar that reaches the end, and a clear error without tqdm."""

import builtins

import numpy as np
import pytest

import chebpan


def decay(t, y):
    return -y


def test_progress_bar_reaches_the_end(capsys):
    pytest.importorskip("tqdm")
    res = chebpan.solve_ivp(decay, (0, 5), [1.0], vectorized=True, progress=True)
    assert res.status == 0
    err = capsys.readouterr().err
    assert "chebpan" in err and "100%" in err and "t = 5" in err


def test_progress_bar_closes_after_a_terminal_event(capsys):
    pytest.importorskip("tqdm")

    def half(t, y):
        return y[0] - 0.5

    half.terminal = True
    res = chebpan.solve_ivp(decay, (0, np.inf), [1.0], vectorized=True, events=half,
                            progress=True)
    assert res.status == 1
    last = capsys.readouterr().err.strip().split("\r")[-1]
    assert f"t = {res.t[-1]:.6g}" in last  # the event time, not the segment's end


@pytest.fixture
def without_tqdm(monkeypatch):
    """Importing tqdm fails, as where it is not installed."""
    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ImportError("No module named 'tqdm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)


def test_progress_without_tqdm_names_the_package(without_tqdm):
    with pytest.raises(ImportError, match=r"`progress=True` needs .*tqdm.*chebpan\[progress\]"):
        chebpan.solve_ivp(decay, (0, 1), [1.0], progress=True)


# -- batches -----------------------------------------------------------------------------
def rate_decay(t, y, rate):
    return -rate * y


def test_batch_progress_bar_fills_with_the_length_covered(capsys, monkeypatch):
    pytest.importorskip("tqdm")
    from chebpan._output.progress import BatchProgressBar

    shown = []
    show = BatchProgressBar._show

    def spy(self, done, description):
        show(self, done, description)
        shown.append((self.done, self.total, description))

    monkeypatch.setattr(BatchProgressBar, "_show", spy)
    spans = np.array([[0.0, 1.0], [0.0, 3.0], [2.0, 0.0], [1.0, 1.0]])  # one empty
    res = chebpan.solve_ivp_batch(rate_decay, spans, np.ones((4, 1)), vectorized=True,
                                  batch_args=(np.array([1.0, 2.0, 0.5, 1.0]),), progress=True)
    assert res.success
    done = [entry[0] for entry in shown]
    assert all(entry[1] == 6.0 for entry in shown)  # Σ |tf_k - t0_k|
    assert np.all(np.diff(done) >= 0) and done[-1] == 6.0
    assert 0 < len([d for d in done if 0 < d < 6.0])  # filled segment by segment
    assert shown[-1][2] == "chebpan: 4/4 instances done"
    last = capsys.readouterr().err.strip().split("\r")[-1]
    assert "chebpan: 4/4 instances done" in last and "100%" in last


def test_batch_progress_counts_terminal_events_and_failures_as_done(capsys):
    pytest.importorskip("tqdm")

    def half(t, y, rate):
        return y[0] - 0.5

    half.terminal = True

    def fun(t, y, rate):  # instance 2 fails at t = 1 (non-finite values)
        return np.where((rate == 0.1) & (t > 1.0), np.nan, -rate * y)

    res = chebpan.solve_ivp_batch(fun, (0, 5), np.ones((3, 1)), vectorized=True,
                                  batch_args=(np.array([1.0, 2.0, 0.1]),), events=half,
                                  progress=True)
    assert res.status.tolist() == [1, 1, -1]
    last = capsys.readouterr().err.strip().split("\r")[-1]
    assert "chebpan: 3/3 instances done" in last and "100%" in last


def test_batch_progress_bar_is_closed_on_error(monkeypatch):
    pytest.importorskip("tqdm")
    from chebpan._output.progress import BatchProgressBar

    closed = []
    close = BatchProgressBar.close
    monkeypatch.setattr(BatchProgressBar, "close", lambda self: closed.append(close(self)))
    calls = []

    def fails_later(t, y):
        calls.append(1)
        if len(calls) > 5:
            raise RuntimeError("boom")
        return -y

    with pytest.raises(RuntimeError, match="boom"):
        chebpan.solve_ivp_batch(fails_later, (0, 5), np.ones((2, 1)), vectorized=True,
                                progress=True)
    assert len(closed) == 1


def test_batch_progress_without_tqdm_names_the_package(without_tqdm):
    with pytest.raises(ImportError, match=r"`progress=True` needs .*tqdm"):
        chebpan.solve_ivp_batch(decay, (0, 1), np.ones((2, 1)), progress=True)

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


def test_progress_without_tqdm_names_the_package(monkeypatch):
    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ImportError("No module named 'tqdm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    with pytest.raises(ImportError, match=r"`progress=True` needs .*tqdm.*chebpan\[progress\]"):
        chebpan.solve_ivp(decay, (0, 1), [1.0], progress=True)

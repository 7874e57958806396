"""Tests of bench/paper_tables.py on a tiny configuration (seconds; no timing asserted)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.integrate

from chebpan.testing import spiral

pytest.importorskip("mpmath")

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "paper_tables.py"


@pytest.fixture(scope="module")
def pt():
    """The script, imported as a module."""
    spec = importlib.util.spec_from_file_location("paper_tables", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def tiny(pt):
    """Rows of a two-row spiral table: RK45 at 1e-6, chebpan(50) at a tight tolerance."""
    configs = [pt.Config("RK45", 1e-6, 1e-6),
               pt.Config("chebpan", 1e-9, 1e-9, n_coeffs=50, tol_iter=1e-15)]
    return pt.run_table(spiral(), configs, repeats=1)


def test_table_configs(pt):
    spiral_rows = pt.table_configs("spiral")
    lorenz_rows = pt.table_configs("lorenz")
    assert len(spiral_rows) == 2 * (len(pt.TABLE_METHODS) + 2)
    assert len(lorenz_rows) == 2 * (len(pt.TABLE_METHODS) + 4)
    assert {c.segment for c in spiral_rows} == {None}
    assert {c.segment for c in lorenz_rows if c.method == "chebpan"} == {None, 0.3}
    assert {c.block for c in lorenz_rows} == set(pt.PAPER_TOLERANCES)
    # every row of the tables has the paper's numbers next to it
    assert all(pt.paper_row(name, c) is not None for name, rows in
               (("spiral", spiral_rows), ("lorenz", lorenz_rows)) for c in rows)


def test_error_is_against_the_reference(tiny):
    problem = spiral()
    ref = problem.reference_array()
    res = scipy.integrate.solve_ivp(problem.fun, problem.t_span, problem.y0,
                                    method="RK45", rtol=1e-6, atol=1e-6)
    rk45, ours = tiny
    assert rk45.error == np.max(np.abs(res.y[:, -1] - ref))
    assert rk45.depth == rk45.npoints == res.nfev
    assert 0 < ours.error < 1e-12
    assert ours.error <= ours.error2
    assert ours.nsegments >= 1 and ours.depth < ours.npoints


def test_table_structure(pt, tiny):
    lines = pt.format_table(tiny).splitlines()
    assert len(lines) == 2 + len(tiny)
    ncols = lines[0].count("|")
    assert all(line.count("|") == ncols for line in lines)
    assert "chebpan(50)" in lines[3] and "1.86e-10" in lines[3]  # the paper's PAN(50)
    comparison = pt.compare_with_paper(tiny)
    assert [c["row"].config.method for c in comparison] == ["chebpan"]
    assert comparison[0]["beats"]
    assert "| yes |" in pt.format_comparison(comparison)


def test_sweep_and_plot(pt, tmp_path):
    pytest.importorskip("matplotlib")
    problem = spiral()
    points = pt.sweep(problem, problem.reference_array(), "chebpan", (1e-3, 1e-6),
                      max_run=60.0)
    assert [p.config.tol for p in points] == [1e-3, 1e-6]
    path = tmp_path / "spiral.png"
    pt.plot_work_precision(problem, {"chebpan": points}, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_matplotlib_message(pt, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    message = pt._check_imports(plots=True)
    assert "matplotlib" in message and ".[bench]" in message and "--no-plots" in message
    assert pt._check_imports(plots=False) is None

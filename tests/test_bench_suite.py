"""bench/suite.py in quick mode: runs, and prints and writes the expected structure.

Timings are not checked (no wall-clock thresholds in tests).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "suite.py"
pytest.importorskip("matplotlib")


def test_quick_mode_output_structure(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--problems", "A3,HIRES",
         "--solvers", "chebpan,DOP853,Radau", "--output", str(tmp_path)],
        capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert out.startswith("threads: OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1, MKL_NUM_THREADS=1")
    assert "| problem | target | chebpan [ms] |" in out
    main_table = out.split("| problem | target | chebpan [ms] |")[1].split("#### Summary")[0]
    rows = [line for line in main_table.splitlines() if line.startswith(("| A3 |", "| HIRES"))]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == "1e-06" and len(cells) == 10
        assert cells[-1] == "—" or float(cells[-1]) > 0
    assert "#### Summary" in out and "median chebpan / best time" in out
    assert (tmp_path / "suite.md").read_text().strip() == out.split("\n", 1)[1].strip()
    runs = json.loads((tmp_path / "suite_runs.json").read_text())
    assert set(runs) == {"A3", "HIRES"}
    assert set(runs["A3"]) == {"chebpan", "DOP853", "Radau"}
    first = runs["A3"]["chebpan"][0]
    assert {"rtol", "error", "seconds", "depth", "npoints", "nfev", "status"} <= set(first)
    for name in ("suite_error_vs_time.png", "suite_error_vs_depth.png"):
        assert (tmp_path / name).stat().st_size > 1000


def test_unknown_problem_is_an_error():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--problems", "nope"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unknown problems" in proc.stderr


def test_batch_of_one_bench_runs_and_reports_each_solve():
    """bench/batch_of_one.py on A1: one row with the two solves' times, depths and
    segments, the same counts, their errors against the reference, and the median
    ratio."""
    script = SCRIPT.parent / "batch_of_one.py"
    proc = subprocess.run([sys.executable, str(script), "--problems", "A1", "--rtol", "1e-6",
                           "--repeats", "1"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| A1 |")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert len(cells) == 11 and cells[1] == "1e-06"
    assert all(float(c) > 0 for c in cells[2:9])
    assert cells[9] == "yes"
    assert all(float(error) < 1e-5 for error in cells[10].split(", "))
    assert "median batch of one / single solve:" in proc.stdout
    assert "the same counts in 1 of them" in proc.stdout


def test_newton_cost_bench_compares_the_real_and_complex_schur_forms():
    """bench/newton_cost.py: the table (with the complex form's column) at a small n, and
    the band comparison on BRUSS; both forms' directions agree to rounding."""
    script = SCRIPT.parent / "newton_cost.py"
    proc = subprocess.run([sys.executable, str(script), "--sizes", "3", "--n-coeffs", "8",
                           "--budget", "0.01"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = [line for line in proc.stdout.splitlines() if line.startswith("| 3 |")]
    cells = [c.strip() for c in row[0].strip("|").split("|")]
    assert len(cells) == 11 and float(cells[4]) > 0 and float(cells[5]) > 0
    assert float(cells[10]) < 1e-12
    proc = subprocess.run([sys.executable, str(script), "--band", "BRUSS", "--n-coeffs", "8",
                           "--budget", "0.01"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = [line for line in proc.stdout.splitlines() if line.startswith("| BRUSS |")]
    cells = [c.strip() for c in row[0].strip("|").split("|")]
    assert cells[1] == "200" and float(cells[2]) > 0 and float(cells[3]) > 0
    assert float(cells[5]) < 1e-12


def test_batch_tolerances_bench_reports_each_batch_and_tolerance():
    """bench/batch_tolerances.py at a small K: a row per batch and tolerance with both
    settings' times, the defaults' depth and Newton iterations, and errors against
    DOP853 that follow the tolerance."""
    script = SCRIPT.parent / "batch_tolerances.py"
    proc = subprocess.run([sys.executable, str(script), "--k", "8", "--repeat", "1",
                           "--sample", "2", "--all-cores"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines()
            if line.startswith(("| Lorenz", "| Kepler", "| Van der Pol"))]
    assert len(rows) == 8
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        rtol = float(cells[1])
        assert float(cells[2].removesuffix(" s")) > 0 and float(cells[3].removesuffix(" s")) > 0
        depth, newton = (int(c) for c in cells[4].split(", "))
        assert depth > 0 and newton >= 0
        assert all(float(error) < 1e4 * rtol for error in cells[5].split(", "))

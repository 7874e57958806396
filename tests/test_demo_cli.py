"""The demo's command line: ``chebpan-demo`` / ``python -m chebpan``, ``--help``, ``--version``."""

import shutil
import subprocess
import sys

import pytest

import chebpan
from chebpan.__main__ import main


@pytest.mark.parametrize("argv0, prog", [("/venv/bin/chebpan-demo", "chebpan-demo"),
                                          ("/x/chebpan/__main__.py", "python -m chebpan")])
def test_help_names_the_program_it_was_started_as(monkeypatch, capsys, argv0, prog):
    monkeypatch.setattr(sys, "argv", [argv0, "--help"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {prog} [-h] [--version]")
    assert "--tol" in out and "--version" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"chebpan {chebpan.__version__}\n"


def test_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "chebpan", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert out.startswith("usage: python -m chebpan")
    out = subprocess.run([sys.executable, "-m", "chebpan", "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert out == f"chebpan {chebpan.__version__}\n"


@pytest.mark.skipif(shutil.which("chebpan-demo") is None, reason="chebpan-demo not on PATH")
def test_installed_script():
    out = subprocess.run(["chebpan-demo", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith("usage: chebpan-demo")

"""The options table (chebpan._control.options.OPTIONS) against what the docs say.

Every option of ``solve_ivp(**options)`` and ``solve_ivp_batch(**options)`` is in the
table once; its defaults (a single solve's and, where different, a batch's) are the ones
that the docstring of :func:`chebpan.solve_ivp` (of :func:`chebpan.solve_ivp_batch` for
the batch-only options) and docs/user-guide.md state.
"""

import math
import re
from pathlib import Path

import numpy as np
import pytest

import chebpan
from chebpan._control.options import BATCH_ONLY, OPTIONS, SAME, take_options, with_defaults

GUIDE = (Path(__file__).parents[1] / "docs" / "user-guide.md").read_text()
#: Documented in their own sections of the user guide, not in the options table.
OWN_SECTIONS = {"backend", "batch_args", "newton_memory", "batch_memory"}


def _spellings(value):
    """Ways the docs write a default."""
    if value == 2**28:
        return {"2**28", "256 MiB"}

    if value == math.inf:
        return {"inf"}
    out = {repr(value), f"{value:g}"}
    if isinstance(value, float) and value > 0 and math.log10(value).is_integer():
        out.add(f"1e{int(math.log10(value))}")
    return out


def _docstring_blocks(function=chebpan.solve_ivp):
    """``{name: text}`` of the ``**options`` entries of ``function``'s docstring."""
    doc = function.__doc__
    section = doc[doc.index("    **options"):doc.index("    Returns\n")]
    blocks, names = {}, None
    for line in section.splitlines()[1:]:
        header = re.match(r"^        (\w+(?:, \w+)*) : ", line)
        if header:
            names = header.group(1).split(", ")
            for name in names:
                blocks[name] = ""
        elif names:
            for name in names:
                blocks[name] += line + "\n"
    return blocks


def _guide_row(name):
    for line in GUIDE.splitlines():
        cells = line.split("|")
        if len(cells) > 3 and f"`{name}`" in cells[1]:
            return cells[2]
    return None


def _numeric(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def test_every_option_is_in_the_table_once_and_in_the_docstring():
    names = [option.name for option in OPTIONS]
    assert len(names) == len(set(names))
    assert sorted(_docstring_blocks()) == sorted(set(names) - set(BATCH_ONLY))
    assert sorted(_docstring_blocks(chebpan.solve_ivp_batch)) == sorted(BATCH_ONLY)


@pytest.mark.parametrize("option", OPTIONS, ids=lambda option: option.name)
def test_docstring_states_the_defaults(option):
    function = chebpan.solve_ivp_batch if option.name in BATCH_ONLY else chebpan.solve_ivp
    block = _docstring_blocks(function)[option.name]
    for batch in (False, True):
        value = option.default_for(batch=batch)
        if _numeric(value):
            assert any(s in block for s in _spellings(value)), (option.name, value, block)


@pytest.mark.parametrize("option", OPTIONS, ids=lambda option: option.name)
def test_user_guide_states_the_defaults(option):
    if option.name in OWN_SECTIONS:
        assert f"`{option.name}`" in GUIDE or f"{option.name}=" in GUIDE
        value = option.default
        if _numeric(value):
            assert any(s in GUIDE for s in _spellings(value)), option.name
        return
    row = _guide_row(option.name)
    assert row is not None, f"{option.name} has no row in the user guide's options table"
    if _numeric(option.default):
        assert any(f"`{s}`" in row or s in row for s in _spellings(option.default)), row
    if option.batch is not SAME:
        assert f"`{option.name} = {option.default_for(batch=True):g}`" in GUIDE


def test_take_options_leaves_the_extraneous_ones():
    options = {"rtol": 1e-5, "n_coeffs": 16, "bogus": 1}
    assert take_options(options) == {"rtol": 1e-5, "n_coeffs": 16}
    assert options == {"bogus": 1}


def test_with_defaults():
    single = with_defaults({}, batch=False)
    batch = with_defaults({"max_picard": 7}, batch=True)
    # A single solve chooses N itself (auto_n_coeffs) unless n_coeffs or n_nodes is given.
    assert (single["n_coeffs"], single["n_nodes"], single["max_picard"]) == (None, None, 12)
    assert with_defaults({"n_nodes": 40}, batch=False)["n_coeffs"] == 32
    assert (batch["n_coeffs"], batch["n_nodes"], batch["max_picard"]) == (12, 11, 7)
    assert with_defaults({"n_coeffs": 20}, batch=False)["n_nodes"] == 19
    assert with_defaults({"n_nodes": 40}, batch=True)["n_nodes"] == 40


def test_auto_n_coeffs_falls_with_tolerance_and_size():
    from chebpan._control.policy import N_FEWEST, N_MOST, N_SIZE, N_STIFF_SIZE, auto_n_coeffs

    by_tolerance = [auto_n_coeffs(rtol, 2) for rtol in (1e-1, 1e-3, 1e-6, 1e-8, 1e-10, 1e-14)]
    assert by_tolerance == sorted(by_tolerance)
    assert by_tolerance[0] == N_FEWEST and by_tolerance[-1] == N_MOST
    by_size = [auto_n_coeffs(1e-10, n) for n in (1, 3, 10, 30, 1000)]
    assert by_size == sorted(by_size, reverse=True)
    assert by_size[-1] == N_FEWEST
    # With a jac (a likely stiff problem): the size bound at least N_STIFF_SIZE, and
    # nothing is lost for small systems.
    with_jac = [auto_n_coeffs(1e-10, n, dense_newton=False) for n in (1, 3, 8, 30, 1000)]
    assert with_jac == [N_MOST, N_MOST, N_SIZE // 8, N_STIFF_SIZE, N_STIFF_SIZE]
    assert N_SIZE // 8 > N_STIFF_SIZE
    assert all(auto_n_coeffs(1e-3, n, dense_newton=False) == auto_n_coeffs(1e-3, 2)
               for n in (30, 1000))  # (the tolerance's bound below the size's)


def test_auto_n_coeffs_is_what_a_solve_uses():
    import chebpan
    from chebpan._control.policy import auto_n_coeffs

    for rtol in (1e-3, 1e-10, [1e-3, 1e-10]):
        res = chebpan.solve_ivp(lambda t, y: -y, (0, 1), [1.0, 2.0], rtol=rtol,
                                dense_output=True)
        # an array rtol: the tightest component decides
        assert res.sol.coeffs.shape[-1] == auto_n_coeffs(np.min(rtol), 2)
        assert np.allclose(res.y[:, -1], np.exp(-1) * np.array([1, 2]), rtol=100 * np.max(rtol))

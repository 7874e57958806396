"""CITATION.cff is valid and agrees with chebpan.cite() and the package version."""

import re
from pathlib import Path

import pytest

import chebpan

ROOT = Path(__file__).resolve().parent.parent
CFF = ROOT / "CITATION.cff"


def test_citation_cff_is_valid():
    citation = pytest.importorskip("cffconvert.citation")
    citation.Citation(CFF.read_text()).validate()


def test_citation_cff_validation_can_fail():
    citation = pytest.importorskip("cffconvert.citation")
    broken = re.sub(r"(?ms)^authors:.*?(?=^version:)", "", CFF.read_text())
    with pytest.raises(Exception, match="authors"):
        citation.Citation(broken).validate()


def test_versions_agree():
    # (tomllib is Python ≥ 3.11; the version line is simple enough to read.)
    version = re.search(r'(?m)^version = "([^"]+)"$', (ROOT / "pyproject.toml").read_text())[1]
    assert chebpan.__version__ == version
    assert re.search(rf"(?m)^version: {re.escape(version)}$", CFF.read_text())
    assert f"version = {{{version}}}" in chebpan.cite("software")


def test_cite_returns_both_entries_and_rejects_other_values():
    text = chebpan.cite()
    assert text.count("@") == 2
    assert "@software{chebpan," in text and "@techreport{panagiotopoulos2024polynomial," in text
    assert "Panagiotopoulos, Yiorgos" in chebpan.cite("paper")
    assert text.count("{") == text.count("}")
    with pytest.raises(ValueError, match="`which`"):
        chebpan.cite("apa")


def test_paper_facts_agree_with_the_cff():
    cff = CFF.read_text()
    assert "family-names: Panagiotopoulos" in cff and "year: 2024" in cff
    assert "year   = {2024}" in chebpan.cite("paper")

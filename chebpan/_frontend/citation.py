"""How to cite chebpan: BibTeX for the software and for the paper of its method.

The same facts are in ``CITATION.cff`` at the repository root (the tests check
that the two agree).
"""

from __future__ import annotations

__all__ = ["cite"]

_SOFTWARE = """@software{{chebpan,
  author  = {{{{chebpan developers}}}},
  title   = {{chebpan: parallel-in-time {{Chebyshev}}-segment {{ODE}} solver with a
             scipy-compatible solve\\_ivp}},
  version = {{{version}}},
  year    = {{2026}},
  license = {{BSD-3-Clause}}
}}"""

_PAPER = """@techreport{panagiotopoulos2024polynomial,
  author = {Panagiotopoulos, Yiorgos},
  title  = {Polynomial approximation numerical integration: a parallel approach
            to initial value problems through optimization},
  year   = {2024},
  month  = may,
  note   = {Preprint, version 0.9}
}"""


def cite(which: str = "all") -> str:
    """BibTeX entries to cite chebpan and the method it implements.

    Parameters
    ----------
    which : {"all", "software", "paper"}, optional
        ``"software"``: this package (with the installed version);
        ``"paper"``: Panagiotopoulos (2024), the PAN method; ``"all"``: both,
        separated by a blank line.

    Returns
    -------
    str
        The BibTeX text.

    Examples
    --------
    >>> import chebpan
    >>> print(chebpan.cite("paper").splitlines()[0])
    @techreport{panagiotopoulos2024polynomial,
    """
    from .. import __version__

    entries = {"software": _SOFTWARE.format(version=__version__), "paper": _PAPER}
    if which == "all":
        return "\n\n".join(entries.values())
    if which not in entries:
        raise ValueError(f"`which` must be 'all', 'software' or 'paper', not {which!r}.")
    return entries[which]

"""Sphinx configuration for the chebpan documentation.

Build (from the repository root; warnings are errors):

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Pages are Markdown (MyST); the API reference is generated from chebpan's numpydoc
docstrings. The build needs no network access: there is no intersphinx, and references
to scipy or numpy names in docstrings stay plain text.
"""

import os
import sys

# Document the chebpan of this checkout, whether or not it is installed.
sys.path.insert(0, os.path.abspath(".."))

import chebpan  # noqa: E402

project = "chebpan"
author = "chebpan developers"
copyright = "chebpan developers"
release = chebpan.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    # Generated tables included by benchmarks.md, not pages of their own.
    "benchmarks/*.md",
]

# -- MyST -----------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
# Anchors for "page.md#section" links, as GitHub makes them.
myst_heading_anchors = 3

# -- autodoc / autosummary / numpydoc ---------------------------------------------------
autosummary_generate = False  # the API page writes its autodoc entries itself
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc "Parameters" sections carry the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- HTML -------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"chebpan {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path = []

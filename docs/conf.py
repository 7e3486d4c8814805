"""Sphinx configuration of the skimb documentation.

Build it with ``tox -e docs`` or, in an environment with ``pip install -e ".[docs]"``::

    sphinx-build -W --keep-going -n -b html docs docs/_build/html

The Markdown pages of ``docs/`` are the user guide (MyST), the API reference is generated
from the numpydoc docstrings (autosummary), and the gallery runs ``examples/plot_*.py`` at
build time (sphinx-gallery). Everything works offline: no intersphinx inventories are
fetched, and the examples use the bundled MiniLM backbone and data sets.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

# The examples and autodoc import skimb; never reach for a model hub while building.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bars in the examples' output
os.environ.setdefault("MPLBACKEND", "Agg")
# The gallery examples are small: one thread each is fast and does not fight other work for the
# cores (set OMP_NUM_THREADS to override).
os.environ.setdefault("OMP_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # a source checkout builds without installing skimb

import skimb  # noqa: E402

# -- Project ------------------------------------------------------------------------------------
project = "skimb"
author = "the skimb developers"
copyright = "the skimb developers, BSD-3-Clause"  # noqa: A001
version = release = skimb.__version__

# -- General ------------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
# ``index.md`` is the page list for readers of the repository on GitHub; the site's landing
# page is ``index.rst``.
exclude_patterns = ["_build", "index.md", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "**.ipynb_checkpoints"]
default_role = "literal"  # `x` in a docstring is code, never a failed cross-reference
pygments_style = "sphinx"

# Broken cross-references fail the build (``-n``). Nothing is fetched from the network while
# building, so no intersphinx inventory exists for third-party libraries: the few third-party
# targets that docstrings name with a role are listed here.
nitpicky = True
nitpick_ignore_regex = [
    # torch, scikit-learn, imbalanced-learn, skorch, transformers, numpy and joblib objects
    # named in docstrings (no inventory offline).
    (r"py:.*", r"(torch|sklearn|imblearn|skorch|transformers|peft|numpy|np|joblib|faiss)(\..*)?"),
]

# -- MyST (the Markdown user guide) -------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3

# -- autodoc / autosummary / numpydoc -------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"  # types are in the numpydoc "Parameters" sections
autodoc_default_options = {"members": True, "inherited-members": False, "member-order": "groupwise"}
autodoc_member_order = "groupwise"
autoclass_content = "class"
toc_object_entries_show_parents = "hide"  # the page TOC lists "fit()", not "TransformerClassifier.fit()"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- HTML ---------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skimb {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "logo": {"text": "skimb"},
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    # The examples' code and output need the width: no right-hand sidebar on gallery pages.
    "secondary_sidebar_items": {"[!a]**": ["page-toc", "sourcelink"], "a[!u]**": ["page-toc", "sourcelink"],
                                "auto_examples/**": []},
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars = {"index": [], "getting_started": [], "references": []}
html_show_sourcelink = True

# -- sphinx-gallery -----------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py|/_",
    "within_subsection_order": "FileNameSortKey",
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("skimb",),
    "reference_url": {"skimb": None},
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "remove_config_comments": True,
    "show_memory": False,
    "download_all_examples": False,
    "matplotlib_animations": False,
    "min_reported_time": 0,
}

# matplotlib and transformers warnings printed by the examples are not documentation problems.
warnings.filterwarnings("ignore", category=UserWarning, message=".*Matplotlib.*non-GUI.*")


# -- Members shown on the API pages -----------------------------------------------------------
def _inherited_from_third_party(obj) -> bool:
    """True for a member without its own docstring whose docstring autodoc would inherit from a
    torch / skorch / scikit-learn base class (``forward``, ``extra_repr``, skorch hooks): those
    docstrings describe the base class and name its own, unresolvable, targets."""
    func = getattr(obj, "fget", None) or getattr(obj, "__func__", None) or obj
    if getattr(func, "__doc__", None) or not getattr(func, "__module__", "").startswith("skimb"):
        return False
    owner_name, _, attr = getattr(func, "__qualname__", "").rpartition(".")
    owner = getattr(sys.modules.get(func.__module__), owner_name, None)
    for base in getattr(owner, "__mro__", ())[1:]:
        if attr in vars(base):
            return not base.__module__.startswith("skimb")
    return False


def _skip_member(app, what, name, obj, skip, options):
    if what != "class" or skip:
        return None
    # scikit-learn adds set_{method}_request to every estimator (metadata routing): its docstring
    # points into scikit-learn's own user guide.
    if name.startswith("set_") and name.endswith("_request"):
        return True
    if _inherited_from_third_party(obj):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)

"""Cheap checks of the documentation sources; the real build is ``tox -e docs``
(``sphinx-build -W --keep-going -n -b html docs docs/_build/html``)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))


def test_the_gallery_has_examples():
    assert len(EXAMPLES) >= 6
    assert (ROOT / "examples" / "README.rst").is_file()  # sphinx-gallery's gallery header


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_has_a_docstring_title(path):
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=False)
    assert doc, f"{path.name} needs a module docstring (sphinx-gallery takes its title from it)"
    lines = [line.rstrip() for line in doc.strip("\n").splitlines()]
    # an RST title: an optional overline, the title, an underline at least as long
    if set(lines[0]) <= set("=-~^*#"):
        lines = lines[1:]
    title, underline = lines[0], lines[1]
    assert title.strip() and set(underline) <= set("=-~^*#") and len(underline) >= len(title), path.name
    assert len(lines) > 3 and any(line.strip() for line in lines[2:]), f"{path.name}: say what it shows"


def test_conf_imports_and_points_at_the_sources():
    # In a subprocess: conf.py sets environment variables for the build (threads, offline hub).
    code = ("import json, runpy; ns = runpy.run_path('docs/conf.py'); "
            "print(json.dumps({'ext': ns['extensions'], 'theme': ns['html_theme'], "
            "'gallery': ns['sphinx_gallery_conf']['examples_dirs'], 'exclude': ns['exclude_patterns']}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    conf = json.loads(out.stdout.strip().splitlines()[-1])
    for ext in ("numpydoc", "myst_parser", "sphinx_gallery.gen_gallery", "sphinx.ext.autosummary"):
        assert ext in conf["ext"]
    assert conf["theme"] == "pydata_sphinx_theme"
    assert Path(conf["gallery"]).resolve() == (ROOT / "examples").resolve()


def test_every_user_guide_page_is_in_a_toctree():
    listed = set()
    for rst in DOCS.glob("*.rst"):
        listed |= set(re.findall(r"^\s{3}([\w/]+)\s*$", rst.read_text(encoding="utf-8"), flags=re.M))
    pages = {p.stem for p in DOCS.glob("*.md")} - {"index"}  # index.md: the GitHub page list
    assert pages <= listed, sorted(pages - listed)


def test_pytest_does_not_collect_the_examples_or_conf():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    addopts = re.search(r"^addopts\s*=\s*\"(.*)\"", text, flags=re.M).group(1)
    assert "--ignore=examples" in addopts and "--ignore=docs" in addopts


def test_the_guide_to_adding_a_method_registers_names_no_builtin_has():
    # its example head was registered as "prototype": running the guide replaced skimb's PrototypeHead
    from skimb.heads import HEADS
    from skimb.training import TRAININGS

    text = (DOCS / "adding_a_method.md").read_text(encoding="utf-8")
    registered = re.findall(r'@register_(head|training)\("(\w+)"\)', text)
    assert {slot for slot, _ in registered} == {"head", "training"}
    for slot, name in registered:
        assert name not in {"head": HEADS, "training": TRAININGS}[slot].names(), (slot, name)

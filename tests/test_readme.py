"""The README's Python snippets run as a user would copy them, on small data.

The snippets are executed in order in one namespace (later ones use earlier imports), with two
textual changes that keep the test short: the test subsample and the number of epochs (1,000
training texts stay, so that SMOTE finds its 6 neighbours in every class). Each
change must apply, so an edited README cannot slip through unshrunk or untested.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SMALLER = [
    ('subsample={"train": 1000, "test": 500}', 'subsample={"train": 1000, "test": 100}'),
    ("max_epochs=3", "max_epochs=1"),
]


def readme_snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text("utf-8"), flags=re.S)


def test_readme_has_the_snippets_this_test_runs():
    code = "\n".join(readme_snippets())
    assert len(readme_snippets()) >= 3
    for old, _ in SMALLER:
        assert old in code, f"the README no longer contains {old!r}: update SMALLER in this test"


@pytest.mark.integration
@pytest.mark.slow
def test_readme_snippets_run(capsys):
    code = "\n".join(readme_snippets())
    for old, new in SMALLER:
        code = code.replace(old, new)
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - the README's own code
    report = capsys.readouterr().out
    assert "macro" in report.lower()  # the printed imbalance report
    # the objects the later snippets build are usable as shown
    data, pipe, search = namespace["data"], namespace["pipe"], namespace["search"]
    pipe.fit(data.X_train, data.y_train)
    assert set(np.unique(pipe.predict(data.X_test))) <= set(data.y_train)
    assert search.estimator.get_params()["head"] == "calora"
    assert {"head__k", "head__rank"} <= set(search.param_grid)
    last = namespace["clf"].get_params()  # the recipes' last line: soft deferred re-weighting with R-Drop
    assert (last["training"], last["loss"], last["loss__drw_epoch"]) == ("rdrop", "class_balanced", 0.3)

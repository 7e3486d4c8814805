"""skimb.baselines: SetFit with class-balanced pair sampling (the check suite covers the API)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("setfit")

from skimb.baselines import SetFitClassifier
from skimb.baselines._setfit import class_balanced_anchors
from skimb.utils.estimator_checks import make_check_texts


def _captured_training_set(monkeypatch):
    """The texts and labels SetFit's trainer is given (its training replaced by a no-op)."""
    import setfit

    seen = {}

    class Recording(setfit.Trainer):
        def train(self, *args, **kwargs):
            seen["labels"] = list(self.train_dataset["label"])
            seen["texts"] = list(self.train_dataset["text"])

    monkeypatch.setattr(setfit, "Trainer", Recording)
    return seen


def test_class_balanced_anchors_give_every_class_the_same_share():
    y = np.array([0] * 90 + [1] * 9 + [2])
    idx = class_balanced_anchors(y, np.random.default_rng(0))
    assert np.bincount(y[idx]).tolist() == [34, 34, 34]  # ceil(100 / 3) anchors per class
    assert set(idx[y[idx] == 2]) == {99}  # a class of one is repeated, never left out


@pytest.mark.parametrize("pair_sampling,expected", [("class", [10, 10, 10]), ("setfit", [16, 8, 6])])
def test_pair_sampling_decides_what_anchors_the_pairs(monkeypatch, tiny_bert, pair_sampling, expected):
    seen = _captured_training_set(monkeypatch)
    X, y = make_check_texts()
    SetFitClassifier(tiny_bert, pair_sampling=pair_sampling, random_state=0).fit(X, y)
    assert np.bincount(seen["labels"]).tolist() == expected
    assert set(seen["texts"]) <= set(X)


def test_fit_predict_is_reproducible_and_learns_the_toy_keywords(tiny_bert):
    X, y = make_check_texts()
    est = SetFitClassifier(tiny_bert, num_iterations=2, random_state=0).fit(X, y)
    proba = est.predict_proba(X)
    assert proba.shape == (len(X), 3) and np.allclose(proba.sum(1), 1.0)
    assert list(est.classes_) == ["a", "b", "c"]
    assert (est.predict(X) == y).mean() >= 0.9  # the keyword marks the class
    again = SetFitClassifier(tiny_bert, num_iterations=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), proba)


def test_verbose_0_is_quiet_and_verbose_1_shows_the_progress(tiny_bert, capfd):
    import datasets

    X, y = make_check_texts()
    SetFitClassifier(tiny_bert, max_steps=1, batch_size=4, random_state=0, verbose=0).fit(X, y)
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # were datasets' Map bar, SetFit's log block and bars on stderr
    assert datasets.utils.logging.is_progress_bar_enabled()  # put back as it was
    SetFitClassifier(tiny_bert, max_steps=1, batch_size=4, random_state=0, verbose=1).fit(X, y)
    assert capfd.readouterr().err != ""


def test_bad_parameters_fail_before_any_training(tiny_bert):
    X, y = make_check_texts()
    with pytest.raises(ValueError, match="pair_sampling"):
        SetFitClassifier(tiny_bert, pair_sampling="balanced").fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        SetFitClassifier(tiny_bert).fit(X, ["a"] * len(X))


def test_without_setfit_the_error_names_the_extra(monkeypatch, tiny_bert):
    monkeypatch.setitem(sys.modules, "setfit", None)
    X, y = make_check_texts()
    with pytest.raises(ImportError, match=r"skimb\[setfit\]"):
        SetFitClassifier(tiny_bert).fit(X, y)


def test_compare_gives_setfit_the_fine_tuning_budget():
    from skimb.compare import METHODS, Budget

    est = METHODS["setfit"].build(Budget(max_epochs=3, batch_size=16), 0, {"task": "multiclass", "n_train": 100})
    assert isinstance(est, SetFitClassifier) and est.max_steps == 10  # ceil(3 * 100 / 32)
    assert est.random_state == 0 and est.batch_size == 16

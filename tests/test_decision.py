"""The tuned decision rule: per-class logit offsets fitted on the validation split."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.metrics import f1_score

from skimb import TransformerClassifier
from skimb.metrics import calibrated_logit_offsets, macro_f1_from_labels, tune_logit_offsets


def test_macro_f1_matches_scikit_learn():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 5, 200), rng.integers(0, 4, 200)
    assert macro_f1_from_labels(y, p, 5) == pytest.approx(f1_score(y, p, average="macro"))


def test_macro_f1_labels_must_be_class_indices():
    # -1 averaged over the last class without a word, 5 was an IndexError, [] a NaN with a RuntimeWarning
    y, p = [0, 1, 2, 2], [0, 1, 1, 2]
    assert macro_f1_from_labels(y, p, 3, labels=[1, 2]) == pytest.approx(f1_score(y, p, labels=[1, 2],
                                                                                  average="macro"))
    for labels in ([-1], [0, 5]):
        with pytest.raises(ValueError, match=r"labels must be class indices 0\.\.2 of n_classes=3"):
            macro_f1_from_labels(y, p, 3, labels=labels)
    with pytest.raises(ValueError, match="labels is empty"):
        macro_f1_from_labels(y, p, 3, labels=[])


def _shifted_problem(seed=0, n=600):
    """Logits of a calibrated model with a prior shift: the rare class is under-predicted."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=[0.8, 0.15, 0.05])
    logits = rng.normal(size=(n, 3))
    logits[np.arange(n), y] += 1.5
    logits += np.log([0.8, 0.15, 0.05]) * 1.5  # the majority wins ties
    return y, logits


@pytest.mark.parametrize("search", ["tau", "offsets"])
def test_offsets_raise_macro_f1_on_the_data_they_fit_and_generalise(search):
    y, logits = _shifted_problem(0)
    b = tune_logit_offsets(y, logits, class_prior=np.bincount(y), search=search)
    before = macro_f1_from_labels(y, logits.argmax(1), 3)
    assert macro_f1_from_labels(y, (logits + b).argmax(1), 3) > before + 0.05
    y2, logits2 = _shifted_problem(1)  # same distribution, other draw
    assert macro_f1_from_labels(y2, (logits2 + b).argmax(1), 3) > macro_f1_from_labels(y2, logits2.argmax(1), 3)
    assert b[2] > b[0]  # the rare class is pushed up


def test_offsets_stay_zero_when_argmax_is_already_best():
    y = np.array([0, 1, 2, 0, 1, 2])
    logits = np.eye(3)[y] * 5
    np.testing.assert_array_equal(tune_logit_offsets(y, logits, class_prior=[3, 2, 1]), np.zeros(3))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="search must be"):
        tune_logit_offsets([0, 1], np.zeros((2, 2)), search="grid")
    with pytest.raises(ValueError, match="n_samples=3"):
        tune_logit_offsets([0, 1, 1], np.zeros((2, 2)))


def test_classifier_tuned_rule_is_argmax_of_logits_plus_offsets(tiny_bert, toy_data):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, threshold="tuned", validation_fraction=0.3, max_epochs=2,
                                batch_size=8, random_state=0).fit(X, y)
    assert clf.logit_offsets_.shape == (3,)
    logits = np.log(clf.predict_proba(X))  # the model's own scores, up to a constant per row
    expected = clf.classes_[(logits + clf.logit_offsets_).argmax(1)]
    np.testing.assert_array_equal(clf.predict(X), expected)
    # decision_function carries the offsets: predict is its argmax, as scikit-learn's classifiers
    np.testing.assert_array_equal(clf.classes_[clf.decision_function(X).argmax(1)], expected)
    # predict_proba stays the model's own
    np.testing.assert_allclose(clf.predict_proba(X).sum(1), 1, rtol=1e-5)
    plain = clf.set_params(threshold=0.5).fit(X, y)
    assert not hasattr(plain, "logit_offsets_")


@pytest.mark.parametrize("threshold", ["tuned", "calibrated"])
def test_a_fitted_rule_needs_a_validation_split_before_training(tiny_bert, toy_data, threshold):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, threshold=threshold, max_epochs=1, random_state=0)
    with pytest.raises(ValueError, match=f"threshold='{threshold}' needs a validation split"):
        clf.fit(X, y)
    assert not hasattr(clf, "net_")


@pytest.mark.parametrize("early_stopping", [True, "f1_macro"])
def test_early_stopping_without_a_validation_split_names_its_own_value(tiny_bert, toy_data, early_stopping):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, early_stopping=early_stopping, max_epochs=1, random_state=0)
    with pytest.raises(ValueError, match=re.escape(f"early_stopping={early_stopping!r} needs a validation split")):
        clf.fit(X, y)
    assert not hasattr(clf, "net_")


@pytest.mark.parametrize("params, match", [
    (dict(threshold=0.3), "threshold=0.3 is ignored for single-label targets"),
    (dict(patience=5), "patience=5 is ignored without early stopping"),
])
def test_parameters_the_configuration_ignores_warn_before_training(params, match, toy_data, backbone_must_not_load):
    X, y = toy_data
    with pytest.warns(UserWarning, match=match), pytest.raises(AssertionError, match="backbone was loaded"):
        TransformerClassifier(**params, max_epochs=1, random_state=0).fit(X, y)


def test_a_class_absent_from_validation_keeps_its_tau_offset():
    y, logits = _shifted_problem(0)
    keep = y != 2  # the rarest class is missing from this validation split
    prior = np.array([0.8, 0.15, 0.05])
    for n_bootstrap in (0, 10):
        b = tune_logit_offsets(y[keep], logits[keep], class_prior=prior, n_bootstrap=n_bootstrap)
        tau = tune_logit_offsets(y[keep], logits[keep], class_prior=prior, search="tau")
        assert b[2] == pytest.approx(tau[2])  # not driven down for being absent


def test_early_stopping_on_validation_macro_f1_keeps_the_best_epoch(tiny_bert, toy_data):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, early_stopping="f1_macro", patience=2, validation_fraction=0.3,
                                max_epochs=4, batch_size=8, lr=5e-3, random_state=0).fit(X, y)
    scores = clf.history_[:, "valid_f1_macro"]
    assert len(scores) == clf.n_iter_ and all(0 <= s <= 1 for s in scores)
    y_enc = np.unique(y, return_inverse=True)[1]
    _, valid = clf._adapter().split(y_enc, "multiclass", 0)
    kept = f1_score(y[valid], clf.predict([X[i] for i in valid]), average="macro")
    assert kept == pytest.approx(max(scores))  # the best epoch's weights were restored


def test_macro_f1_of_batches_matches_scikit_learn_for_each_task():
    import torch

    from skimb.training import ValidationMacroF1  # noqa: F401  (public)
    from skimb.training._selection import macro_f1_of_batches

    rng = np.random.default_rng(0)
    logits, y = rng.normal(size=(60, 4)), rng.integers(0, 4, 60)
    got = macro_f1_of_batches([(torch.tensor(logits[:30]), torch.tensor(y[:30])),
                               (torch.tensor(logits[30:]), torch.tensor(y[30:]))])
    assert got == pytest.approx(f1_score(y, logits.argmax(1), average="macro"))
    Y = rng.integers(0, 2, (40, 3))
    got = macro_f1_of_batches([(torch.tensor(logits[:40, :3]), torch.tensor(Y, dtype=torch.float32))])
    assert got == pytest.approx(f1_score(Y, (logits[:40, :3] > 0).astype(int), average="macro"))
    tags = torch.tensor([[0, 1, -100], [2, 2, 0]])
    tok_logits = torch.tensor(rng.normal(size=(2, 3, 3)))
    keep = tags != -100
    expected = f1_score(tags[keep].numpy(), tok_logits.argmax(-1)[keep].numpy(), average="macro")
    assert macro_f1_of_batches([(tok_logits, tags)]) == pytest.approx(expected)


def test_calibrated_offsets_shift_toward_the_rare_class_and_generalise():
    y, logits = _shifted_problem(0)
    b = calibrated_logit_offsets(y, logits, class_prior=np.bincount(y))
    assert b[2] > b[1] > b[0]
    y2, logits2 = _shifted_problem(1)  # same distribution, other draw
    assert macro_f1_from_labels(y2, (logits2 + b).argmax(1), 3) > macro_f1_from_labels(y2, logits2.argmax(1), 3)


def test_calibrated_tau_moves_the_offsets_along_the_log_prior():
    y, logits = _shifted_problem(0)
    prior = np.bincount(y)
    base = calibrated_logit_offsets(y, logits, class_prior=prior, tau=0.0)
    step = calibrated_logit_offsets(y, logits, class_prior=prior, tau=1.0) - base
    direction = -(np.log(prior) - np.log(prior).mean())
    # step = T * direction with one positive temperature T
    ratio = step / direction
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)
    assert ratio[0] > 0
    np.testing.assert_allclose(base.sum(), 0.0, atol=1e-9)


def test_calibration_undoes_a_constant_bias_and_a_temperature():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 3000)
    logits = rng.normal(size=(3000, 3))
    logits[np.arange(3000), y] += 2.0
    distorted = 3.0 * logits + np.array([2.0, 0.0, -2.0])  # over-confident and tilted
    b = calibrated_logit_offsets(y, distorted, class_prior=[1, 1, 1], tau=0.5)  # equal priors: tau does nothing
    np.testing.assert_allclose(b - b.mean(), -(np.array([2.0, 0.0, -2.0])), atol=0.3)


def test_calibrated_bad_inputs_are_named():
    with pytest.raises(ValueError, match="n_samples=3"):
        calibrated_logit_offsets([0, 1, 1], np.zeros((2, 2)), class_prior=[1, 1])


@pytest.mark.parametrize("fit", [
    lambda y, z, prior: tune_logit_offsets(y, z, class_prior=prior),
    lambda y, z, prior: calibrated_logit_offsets(y, z, class_prior=prior),
])
@pytest.mark.parametrize("y, logits, prior, match", [
    ([1, 0, 1, 2], np.eye(4, 2), [1, 1], r"codes outside 0..1"),
    ([1.7, 0, 1, 1], np.eye(4, 2), [1, 1], "must be 1-D class codes"),
    (["b", "a", "b", "b"], np.eye(4, 2), [1, 1], "must be 1-D class codes"),
    ([1, 0, 1, 1], np.full((4, 2), np.nan), [1, 1], "logits contain NaN"),
    ([1, 0, 1, 1], np.eye(4, 2), [5], r"class_prior must have one value per class \(2\)"),
    ([], np.zeros((0, 2)), [1, 1], "n_samples=0 > 0"),
    ([1, 0, 1, 1], np.eye(4, 2), [3, -1], r"class_prior\[1\] is -1.0: give each class's training count"),
    ([1, 0, 1, 1], np.eye(4, 2), [np.nan, 1], r"class_prior\[0\] is nan"),
    ([1, 0, 1, 1], np.eye(4, 2), [0, 0], "class_prior sums to 0"),
    ([1, 0, 1, 1], np.eye(4, 2), ["a", "b"], "class_prior must hold numbers"),
])
def test_offsets_refuse_bad_codes_logits_and_priors(fit, y, logits, prior, match):
    with pytest.raises(ValueError, match=match):
        fit(y, logits, prior)


def test_calibrated_offsets_need_a_prior_and_a_finite_tau():
    # they returned NaN offsets, and argmax(logits + NaN) picks class 0 everywhere
    with pytest.raises(ValueError, match="needs class_prior: the training count of each class"):
        calibrated_logit_offsets([0, 1, 2, 0], np.eye(4, 3), class_prior=None)
    for tau in (np.nan, np.inf, "0.25", True):
        with pytest.raises(ValueError, match="tau must be a finite number"):
            calibrated_logit_offsets([0, 1, 2, 0], np.eye(4, 3), class_prior=[2, 1, 1], tau=tau)


def test_offsets_read_a_binary_margin_as_the_logits_0_margin():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(60, 2))
    y = (logits[:, 1] + rng.normal(size=60) > 0.8).astype(int)
    margin = logits[:, 1] - logits[:, 0]
    for fit in (lambda z: tune_logit_offsets(y, z, class_prior=[3, 1], n_bootstrap=3),
                lambda z: calibrated_logit_offsets(y, z, class_prior=[3, 1])):
        np.testing.assert_allclose(fit(margin), fit(logits), atol=1e-6)
    with pytest.raises(ValueError, match="n_bootstrap must be an integer >= 0"):
        tune_logit_offsets(y, margin, n_bootstrap=-1)
    # integer codes held as objects (a pandas object Series) still read as codes
    np.testing.assert_array_equal(tune_logit_offsets(y.astype(object), logits), tune_logit_offsets(y, logits))


def test_classifier_calibrated_rule_is_argmax_of_logits_plus_offsets(tiny_bert, toy_data):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, threshold="calibrated", validation_fraction=0.3, max_epochs=2,
                                batch_size=8, random_state=0).fit(X, y)
    valid = clf.validation_indices_
    codes = np.searchsorted(clf.classes_, np.asarray(y))
    train = np.setdiff1d(np.arange(len(y)), valid)
    raw_valid = clf.decision_function([X[i] for i in valid]) - clf.logit_offsets_  # the logits
    expected_offsets = calibrated_logit_offsets(codes[valid], raw_valid,
                                                class_prior=np.bincount(codes[train], minlength=3) + 1.0)
    np.testing.assert_allclose(clf.logit_offsets_, expected_offsets, atol=1e-4)
    expected = clf.classes_[(np.log(clf.predict_proba(X)) + clf.logit_offsets_).argmax(1)]
    np.testing.assert_array_equal(clf.predict(X), expected)


def test_binary_decision_function_carries_the_tuned_offsets(tiny_bert, toy_data):
    X, y = toy_data
    y = np.where(y == "flood", "flood", "other")
    clf = TransformerClassifier(tiny_bert, threshold="tuned", validation_fraction=0.3, max_epochs=2, finetune="head",
                                batch_size=16, random_state=0).fit(X, y)
    margin = clf.decision_function(X)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[(margin > 0).astype(int)])
    proba = clf.predict_proba(X)
    raw = np.log(proba[:, 1]) - np.log(proba[:, 0])
    np.testing.assert_allclose(margin, raw + clf.logit_offsets_[1] - clf.logit_offsets_[0], rtol=1e-4, atol=1e-4)


def test_calibrated_rule_refuses_multilabel_targets_before_training(tiny_bert, toy_data):
    X, y = toy_data
    Y = np.stack([np.asarray(y) == "flood", np.asarray(y) != "flood"], axis=1).astype(int)
    clf = TransformerClassifier(tiny_bert, threshold="calibrated", validation_fraction=0.3, max_epochs=1)
    with pytest.raises(ValueError, match="applies to single-label targets.*threshold='tuned'"):
        clf.fit(X, Y)
    assert not hasattr(clf, "net_")

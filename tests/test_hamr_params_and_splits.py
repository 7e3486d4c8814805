"""HAMR parameters checked before the backbone loads (ignored ones warned, refusals named with
their ``training__`` prefix), and the splitters' check of X against y."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from conftest import make_ner, make_toy_texts

from skimb import TransformerClassifier, TransformerTokenClassifier
from skimb.model_selection import MultilabelStratifiedKFold, TagStratifiedKFold

LOADED = "the backbone was loaded"  # backbone_must_not_load's error: every check before it passed


def fit_until_load(est, X, y):
    """Fit up to the backbone's loading; the ``training__`` "is ignored" warnings on the way."""
    with warnings.catch_warnings(record=True) as caught, pytest.raises(AssertionError, match=LOADED):
        warnings.simplefilter("always")
        est.fit(X, y)
    return [str(w.message) for w in caught if "training__" in str(w.message) and "is ignored" in str(w.message)]


def multilabel(y):
    return np.stack([y == "flood", y != "flood", y == "injury"], axis=1).astype(int)


@pytest.mark.parametrize("update, momentum, warned", [("reference", 0.9, True), ("reference", 0.5, False),
                                                      ("ema", 0.9, False)])
def test_hardness_momentum_is_ignored_under_the_reference_update(backbone_must_not_load, update, momentum, warned):
    X, y = make_toy_texts()
    est = TransformerClassifier("unused", training="hamr", training__hardness_update=update,
                                training__hardness_momentum=momentum)
    messages = [m for m in fit_until_load(est, X, y) if "hardness_momentum" in m]
    assert messages == (["TransformerClassifier: training__hardness_momentum is ignored: "
                         "hardness_update='reference' decays by a fixed 0.99."] if warned else [])


@pytest.mark.parametrize("token_loss, warned", [("max", True), ("mean", False)])
def test_token_loss_is_ignored_on_texts(backbone_must_not_load, token_loss, warned):
    X, y = make_toy_texts()
    est = TransformerClassifier("unused", training="hamr", training__token_loss=token_loss)
    messages = [m for m in fit_until_load(est, X, y) if "token_loss" in m]
    assert messages == (["HAMRTraining: training__token_loss is ignored: it applies to token classification "
                         "only."] if warned else [])
    X, y = make_ner(24)  # a tagger reads it
    assert fit_until_load(TransformerTokenClassifier("unused", training="hamr", training__token_loss="max"),
                          X, y) == []


@pytest.mark.parametrize("overrides", [{}, {"knn": False}, {"resampling": False},
                                       {"meta_weighting": False, "resampling": False}, {"wnet_lr": 2e-4}])
def test_the_reference_configuration_warns_only_about_what_the_user_set(backbone_must_not_load, overrides):
    """reference() sets token_loss='max' (for taggers), meta_topup='none', knn_index='flat', ...: a
    configuration that does not read them ignored the reference's values, not the user's, and warned
    about them (docs/hamr.md's example, reference() with an explicit meta set, warned twice)."""
    from skimb.training.hamr import HAMRTraining

    X, y = make_toy_texts()
    training = HAMRTraining.reference(**overrides)
    meta_set = {} if training.uses_wnet is False else {"training__meta_set": (X[:9], y[:9])}  # WNet's, when on
    assert fit_until_load(TransformerClassifier("unused", training=training, **meta_set), X, y) == []
    # a value the user moves off the reference's is still warned about
    messages = fit_until_load(TransformerClassifier("unused", training=training, training__knn=False,
                                                    training__knn_index="ivf"), X, y)
    assert messages == ["TransformerClassifier: training__knn_index is ignored: the kNN boost is off (knn=False "
                        "or resampling=False)."]
    # an instance far from the reference is not one: its token_loss on texts is the user's own
    messages = fit_until_load(TransformerClassifier("unused", training=HAMRTraining(wnet_lr="reference",
                                                                                    token_loss="max")), X, y)
    assert any("training__token_loss is ignored" in m for m in messages)


@pytest.mark.parametrize("finetune, meta_refresh, meta_step, warned", [
    ("head", 2, "head", True), ("head", 4, "head", False), ("full", 2, "head", False), ("head", 2, "full", False)])
def test_meta_refresh_is_ignored_on_a_frozen_backbone(backbone_must_not_load, finetune, meta_refresh, meta_step,
                                                      warned):
    """A frozen backbone's cached meta features are encoded once: meta_refresh changes nothing there."""
    X, y = make_toy_texts()
    est = TransformerClassifier("unused", finetune=finetune, training="hamr", training__meta_refresh=meta_refresh,
                                training__meta_step=meta_step)
    messages = [m for m in fit_until_load(est, X, y) if "meta_refresh" in m]
    if meta_step == "full":  # live meta features: the component's own warning, whatever the backbone
        assert messages == ["TransformerClassifier: training__meta_refresh is ignored: the meta features are live."]
    else:
        assert messages == (["HAMRTraining: training__meta_refresh is ignored: a frozen backbone's meta features "
                             "never change (finetune='head'), so they are encoded once."] if warned else [])


@pytest.mark.parametrize("meta_X, error, message", [
    ([], ValueError, "training__meta_set X is empty"),
    ([1, 2], TypeError, r"training__meta_set X\[0\] is an int"),
    ([None, "a"], TypeError, r"training__meta_set X\[0\] is None"),
])
def test_meta_set_text_errors_name_the_meta_set(backbone_must_not_load, meta_X, error, message):
    X, y = make_toy_texts()
    est = TransformerClassifier("unused", training="hamr", training__meta_set=(meta_X, y[:len(meta_X)]))
    with pytest.raises(error, match=message):
        est.fit(X, y)


def test_meta_set_sentence_errors_name_the_meta_set(backbone_must_not_load):
    X, y = make_ner(24)
    est = TransformerTokenClassifier("unused", training="hamr", training__meta_set=(["a sentence"], [["O"]]))
    with pytest.raises(TypeError, match=r"training__meta_set X\[0\] must be a list of tokens"):
        est.fit(X, y)
    est.set_params(training__meta_set=([], []))
    with pytest.raises(ValueError, match="training__meta_set X is empty"):
        est.fit(X, y)


def test_label_unit_refuses_a_loss_without_label_terms_before_loading(backbone_must_not_load):
    X, y = make_toy_texts()
    est = TransformerClassifier("unused", training="hamr", training__weight_unit="label",
                                loss=torch.nn.BCEWithLogitsLoss())
    with pytest.raises(TypeError, match=r"training__weight_unit='label' needs a loss with per-label terms .*"
                                        r"BCEWithLogitsLoss has none: use training__weight_unit='sample'"):
        est.fit(X, multilabel(y))
    fit_until_load(est.set_params(loss="bce"), X, multilabel(y))  # a loss with label terms passes


@pytest.mark.parametrize("make", [
    lambda: (TagStratifiedKFold(3), *make_ner(30)),
    lambda: (MultilabelStratifiedKFold(3), make_toy_texts()[0], multilabel(make_toy_texts()[1])),
], ids=["tags", "multilabel"])
def test_splitters_refuse_x_and_y_of_other_lengths(make):
    cv, X, y = make()
    with pytest.raises(ValueError, match=rf"inconsistent numbers of samples: \[{len(X)}, {len(y) - 5}\]"):
        list(cv.split(X, y[:-5]))
    assert sum(len(test) for _, test in cv.split(X, y)) == len(X)

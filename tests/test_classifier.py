"""Behaviour of TransformerClassifier on a tiny random BERT (seconds per test)."""

from __future__ import annotations

import json
import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import get_scorer, roc_auc_score
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from skimb import TransformerClassifier, TransformerTokenClassifier
from skimb.backbones import feature_cache

from conftest import make_ner, same_model_tolerance

FAST = dict(max_epochs=2, batch_size=8, random_state=0)


@pytest.fixture
def clf(tiny_bert):
    return TransformerClassifier(tiny_bert, lr=5e-3, **FAST)


def test_fit_predict_shapes_and_classes(clf, toy_data):
    X, y = toy_data
    assert clf.fit(X, y) is clf
    assert list(clf.classes_) == sorted(set(y))
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    pred = clf.predict(X)
    assert set(pred) <= set(y)
    assert clf.decision_function(X).shape == (len(X), 3)
    assert clf.n_iter_ == 2 and len(clf.history_) == 2
    assert clf.history_[-1, "train_samples_per_s"] > 0


def test_learns_keyword_task(tiny_bert, toy_data):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, lr=3e-3, max_epochs=15, batch_size=8, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9
    assert clf.history_[-1, "train_loss"] < clf.history_[0, "train_loss"]


def test_binary_and_integer_labels(clf, toy_data):
    X, y = toy_data
    y_int = (y == "flood").astype(int) * 7
    clf.fit(X, y_int)
    assert clf.classes_.tolist() == [0, 7]
    assert clf.predict_proba(X).shape == (len(X), 2)
    assert clf.predict(X).dtype.kind == "i"
    # scikit-learn's binary convention: one margin per text, positive where the positive class wins
    margin = clf.decision_function(X)
    assert margin.shape == (len(X),)
    np.testing.assert_array_equal(clf.classes_[(margin > 0).astype(int)], clf.predict(X))
    assert get_scorer("roc_auc")(clf, X, y_int) == pytest.approx(roc_auc_score(y_int, clf.predict_proba(X)[:, 1]))


@pytest.mark.parametrize("finetune", ["full", "lora", "head"])
def test_same_seed_same_predictions(tiny_bert, toy_data, finetune):
    X, y = toy_data
    a = TransformerClassifier(tiny_bert, finetune=finetune, **FAST).fit(X, y).predict_proba(X)
    b = TransformerClassifier(tiny_bert, finetune=finetune, **FAST).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    c = TransformerClassifier(tiny_bert, finetune=finetune, **{**FAST, "random_state": 1}).fit(X, y).predict_proba(X)
    assert not np.array_equal(a, c)


def test_every_valid_seed_is_its_own(tiny_bert, toy_data):
    X, y = toy_data
    one = TransformerClassifier(tiny_bert, **{**FAST, "random_state": 1}).fit(X, y).predict_proba(X)
    high = TransformerClassifier(tiny_bert, **{**FAST, "random_state": 2**31 + 1}).fit(X, y).predict_proba(X)
    assert not np.array_equal(one, high)  # the seed was masked to 31 bits: 2**31 + 1 trained seed 1's model
    top = TransformerClassifier(tiny_bert, training="hamr", **{**FAST, "random_state": 2**32 - 1}).fit(X, y)
    assert top.predict(X).shape == (len(X),)  # HAMR offsets its seed: the highest valid one still trains


def test_fit_does_not_change_global_torch_rng(clf, toy_data):
    X, y = toy_data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    clf.fit(X, y)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_lora_trains_adapters_not_backbone(tiny_bert, toy_data):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, finetune="lora", finetune__rank=4, **FAST).fit(X, y)
    named = dict(clf.net_.module_.named_parameters())
    trainable = [n for n, p in named.items() if p.requires_grad]
    assert trainable and all("lora_" in n or n.startswith("head.") for n in trainable)
    assert any("lora_" in n for n in trainable)


@pytest.mark.parametrize("target_modules", ["query", ["nonexistent"]])
def test_lora_target_modules_matching_nothing_names_the_parameter(tiny_bert, toy_data, target_modules):
    """A string is peft's regular expression over whole module names, so "query" adapts nothing: the
    error names finetune__target_modules, the remedy and the backbone's linear layers, not peft's
    bare "Target modules query not found"."""
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, finetune="lora", finetune__target_modules=target_modules, **FAST)
    with pytest.raises(ValueError, match=r"finetune__target_modules=.*list of name endings.*'query'"):
        clf.fit(X, y)
    assert not hasattr(clf, "net_")
    fitted = clone(clf).set_params(finetune__target_modules=["query"]).fit(X, y)  # a list of endings works
    assert any(".query.lora_A" in n for n, _ in fitted.net_.module_.named_parameters())


@pytest.mark.parametrize("target_modules", [[], "", [""], ("query", "")])
def test_lora_empty_target_modules_are_refused_before_loading(backbone_must_not_load, toy_data, target_modules):
    """An empty list (or name) adapts nothing; peft's refusal came after the backbone loaded and named
    neither the parameter nor a remedy."""
    clf = TransformerClassifier("unused", finetune="lora", finetune__target_modules=target_modules, **FAST)
    with pytest.raises(ValueError, match=r"finetune__target_modules must be .*non-empty"):
        clf.fit(*toy_data)


def test_lora_target_modules_entry_matching_nothing_is_an_error(tiny_bert, toy_data):
    """peft adapts the entries of a list that match and drops the others without a word: a misspelt
    name ("quary") left the query layers alone."""
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, finetune="lora", finetune__target_modules=["value", "quary"], **FAST)
    with pytest.raises(ValueError, match=r"finetune__target_modules=\['value', 'quary'\]: no module of this "
                                         r"backbone .*'quary'.*'query'"):
        clf.fit(X, y)
    assert not hasattr(clf, "net_")


def test_head_mode_encodes_each_text_once(tiny_bert, toy_data):
    X, y = toy_data
    feature_cache.clear()
    clf = TransformerClassifier(tiny_bert, finetune="head", max_epochs=4, random_state=0).fit(X, y)
    n_unique = len(set(X))
    assert feature_cache.misses == n_unique  # 4 epochs, one encoding pass
    clf.predict(X)
    clone(clf).fit(X, y)  # a grid-search candidate reuses the features
    assert feature_cache.misses == n_unique
    # the frozen backbone is unchanged by training
    assert not any(p.requires_grad for p in clf.net_.module_.encoder.parameters())


def test_dynamic_padding_and_length_grouping(tiny_bert, toy_data):
    X, y = toy_data

    class RecordWidths(Callback):
        def initialize(self):
            self.widths = []
            return self

        def on_batch_begin(self, net, batch=None, training=False, **kw):
            if training:
                ids, mask = batch[0]["input_ids"], batch[0]["attention_mask"]
                self.widths.append((ids.shape[1], int(mask.sum(1).max()), int(mask.sum(1).min())))

    rec = RecordWidths()
    TransformerClassifier(tiny_bert, max_length=64, callbacks=[rec], **FAST).fit(X, y)
    assert rec.widths
    for width, longest, _ in rec.widths:
        assert width == longest < 64  # padded to the batch's longest text, not max_length


def test_pickle_and_joblib_round_trip(clf, toy_data, tmp_path):
    X, y = toy_data
    clf.fit(X, y)
    expected = clf.predict_proba(X)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(restored.predict_proba(X), expected, rtol=1e-6)
    joblib.dump(clf, tmp_path / "clf.joblib")
    np.testing.assert_allclose(joblib.load(tmp_path / "clf.joblib").predict_proba(X), expected, rtol=1e-6)


@pytest.mark.parametrize("finetune", ["full", "lora", "head"])
def test_save_and_load_pretrained(tiny_bert, toy_data, tmp_path, finetune):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, finetune=finetune, **FAST).fit(X, y)
    out = clf.save_pretrained(tmp_path / "model")
    assert (out / "model.safetensors").exists() and (out / "skimb_config.json").exists()
    assert not list(out.rglob("*.pkl"))
    loaded = TransformerClassifier.load_pretrained(out)
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), rtol=1e-5, atol=1e-6)
    assert loaded.classes_.tolist() == clf.classes_.tolist()
    assert loaded.get_params()["finetune"] == finetune
    # the records come back; the loss does not (a placeholder stood in for it before)
    assert loaded.history_[:, "train_loss"] == pytest.approx(clf.history_[:, "train_loss"])
    assert len(loaded.net_.history) == clf.n_iter_ and not hasattr(loaded, "loss_")


def test_save_and_load_pretrained_keeps_the_validation_report_and_a_second_stages_records(tiny_bert, toy_data,
                                                                                         tmp_path):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, head="crt", validation_fraction=0.25, **FAST).fit(X, y)
    loaded = TransformerClassifier.load_pretrained(clf.save_pretrained(tmp_path / "model"))
    assert json.dumps(loaded.validation_report_, sort_keys=True) == json.dumps(clf.validation_report_, sort_keys=True)
    assert loaded.stage2_loss_history_ == pytest.approx(clf.stage2_loss_history_)
    clf.history_.record("logged", torch.ones(1))  # what a callback might log: not JSON, named, left out
    with pytest.warns(UserWarning, match=r"the fitted records \['history_'\] hold values JSON cannot"):
        clf.save_pretrained(tmp_path / "again")


def test_clone_get_set_params_and_routed_loss_params(tiny_bert):
    clf = TransformerClassifier(tiny_bert, loss="focal", loss__smooth=1.0, loss__gamma=2.0)
    params = clf.get_params()
    assert params["loss__smooth"] == 1.0 and params["loss__gamma"] == 2.0
    cloned = clone(clf)
    assert cloned.get_params()["loss__smooth"] == 1.0
    cloned.set_params(loss__smooth=2.0, max_epochs=5)
    assert cloned.loss__smooth == 2.0 and cloned.max_epochs == 5
    assert clf.loss__smooth == 1.0


def test_unknown_keyword_is_reported_at_fit(tiny_bert, toy_data):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, max_epoch=3)  # typo
    with pytest.raises(TypeError, match="max_epoch"):
        clf.fit(X, y)
    with pytest.raises(TypeError, match="max_epoch"):  # a clone (a search's) carried nothing and trained
        clone(clf).fit(X, y)


@pytest.mark.parametrize("params, hint", [(dict(max_epoch=3), "did you mean 'max_epochs'"),
                                          (dict(los__gamma=2), "did you mean 'loss'"), (dict(head__=1), "")])
def test_set_params_refuses_an_unknown_name_at_once(params, hint):
    clf = TransformerClassifier("unused")
    with pytest.raises(ValueError, match=rf"Invalid parameter\(s\) \[{list(params)[0]!r}\].*{hint}"):
        clf.set_params(**params)
    assert list(params)[0] not in vars(clf)  # nothing stored
    clf.set_params(loss__gamma=2, head__k=3, max_epochs=2)  # routed names: their components check them at fit
    assert (clf.loss__gamma, clf.head__k, clf.max_epochs) == (2, 3, 2)


def test_a_split_of_classes_of_one_example_only_is_unstratified_and_a_small_one_is_refused(tiny_bert):
    X = [f"text {i} {'x' * (i % 5)}" for i in range(23)]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        TransformerClassifier(tiny_bert, finetune="head", max_epochs=1, validation_fraction=0.3,
                              random_state=0).fit(X[:3], ["p", "q", "r"])
    said = [str(w.message) for w in record if issubclass(w.category, UserWarning)]
    assert "every class has a single example: the validation split is not stratified, and the classes it takes " \
           "are not learnt; validation_fraction=None trains on them all." in said
    assert not [m for m in said if "another random_state" in m]  # no remedy that cannot work here
    # 11 classes of two and one of one: 3 validation rows cannot hold every class, with or without the
    # singleton (before, the singleton made the whole split unstratified, and it fitted)
    y = np.repeat([f"c{k:02d}" for k in range(12)], [2] * 11 + [1])
    for rows in (slice(None), slice(0, 22)):
        with pytest.raises(ValueError, match=r"validation_fraction=0.1 cannot split .* leaves every class on both"):
            TransformerClassifier(tiny_bert, finetune="head", max_epochs=1, validation_fraction=0.1,
                                  random_state=0).fit(X[rows], y[rows])


def test_grid_search_over_parameters(tiny_bert, toy_data):
    X, y = toy_data
    search = GridSearchCV(TransformerClassifier(tiny_bert, finetune="head", random_state=0),
                          {"lr": [1e-3, 1e-2], "max_epochs": [1, 2]}, cv=2, scoring="f1_macro")
    search.fit(X, y)
    assert set(search.best_params_) == {"lr", "max_epochs"}
    assert search.best_estimator_.predict(X).shape == (len(X),)


def test_class_weight_and_sample_weight(tiny_bert, toy_data):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, class_weight="balanced", **FAST).fit(X, y)
    counts = np.array([np.sum(y == c) for c in clf.classes_])
    np.testing.assert_allclose(clf.class_weight_, len(y) / (3 * counts))
    # doubling every weight changes nothing: weights are normalised to mean 1
    base = TransformerClassifier(tiny_bert, **FAST).fit(X, y).predict_proba(X)
    doubled = TransformerClassifier(tiny_bert, **FAST).fit(X, y, sample_weight=np.full(len(y), 2.0))
    np.testing.assert_allclose(doubled.predict_proba(X), base, rtol=1e-5, atol=1e-6)
    # weights do change the model
    w = np.where(y == "injury", 10.0, 1.0)
    weighted = TransformerClassifier(tiny_bert, **FAST).fit(X, y, sample_weight=w).predict_proba(X)
    assert not np.allclose(weighted, base)
    with pytest.raises(ValueError, match="sample_weight"):
        TransformerClassifier(tiny_bert, **FAST).fit(X, y, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="class_weight"):
        TransformerClassifier(tiny_bert, class_weight={"nope": 2.0}, **FAST).fit(X, y)


@pytest.mark.parametrize("class_weight, match", [
    ({"injury": -0.5}, "finite numbers >= 0.*'injury': -0.5"),
    ({"injury": float("nan")}, "finite numbers >= 0"),
    ({"injury": "2"}, "finite numbers >= 0"),
    ("zero", "every class in the training split weight 0"),
])
def test_invalid_class_weight_values_are_rejected_before_the_backbone_loads(class_weight, match, toy_data,
                                                                            backbone_must_not_load):
    X, y = toy_data
    if class_weight == "zero":
        class_weight = {c: 0.0 for c in np.unique(y)}
    with pytest.raises(ValueError, match=match):
        TransformerClassifier(class_weight=class_weight, **FAST).fit(X, y)


def test_weights_zero_on_every_training_example_are_rejected_before_the_backbone_loads(toy_data,
                                                                                       backbone_must_not_load):
    # the only positively weighted class has sample weight 0 everywhere: the loss would be 0 / 0
    X, y = toy_data
    class_weight = {c: float(c == "injury") for c in np.unique(y)}
    with pytest.raises(ValueError, match="class_weight x sample_weight is 0 on every training example"):
        TransformerClassifier(class_weight=class_weight, **FAST).fit(X, y, sample_weight=(y != "injury") * 1.0)


def test_validation_split_and_early_stopping(tiny_bert, toy_data):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, finetune="head", max_epochs=30, validation_fraction=0.25,
                                early_stopping=True, patience=2, lr=0.5, random_state=0).fit(X, y)
    assert "valid_loss" in clf.history_[-1]
    assert clf.n_iter_ < 30
    with pytest.raises(ValueError, match="validation_fraction"):
        TransformerClassifier(tiny_bert, early_stopping=True).fit(X, y)
    for fraction in (0.01, 0.99):  # too few held out for every class, or nothing left to train on
        with pytest.raises(ValueError, match=f"validation_fraction={fraction} cannot split 48 examples of 3 classes"):
            TransformerClassifier(tiny_bert, validation_fraction=fraction).fit(X, y)
    Y = (np.arange(8)[:, None] % np.array([2, 3]) == 0).astype(int)  # multi-label
    with pytest.raises(ValueError, match="validation_fraction=0.99 cannot split 8 examples"):
        TransformerClassifier(tiny_bert, validation_fraction=0.99).fit(X[:8], Y)
    rows = np.arange(20)  # the third label's two positives both go to the validation split
    Y = np.c_[rows % 2 == 0, rows % 3 == 0, np.isin(rows, [0, 1])].astype(int)
    with pytest.warns(UserWarning, match=r"validation_fraction=0.8 leaves 1 label\(s\) no positive example to train "
                                         r"on \(columns \[2\] of classes_\)"):
        clf = TransformerClassifier(tiny_bert, validation_fraction=0.8, max_epochs=1, batch_size=8).fit(X[:20], Y)
    assert clf.class_counts_.tolist() == [2, 1, 0]


def test_a_class_of_one_example_always_trains_and_the_rest_is_stratified(tiny_bert):
    # a class of one example cannot be stratified: the whole split was unstratified, and where the example
    # went to the validation split the fit never saw the class
    from conftest import make_toy_texts

    X, y = make_toy_texts((6, 4, 1))
    alone = int(np.flatnonzero(y == "injury")[0])
    for seed in range(6):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            clf = TransformerClassifier(tiny_bert, finetune="head", validation_fraction=0.3, max_epochs=1,
                                        random_state=seed).fit(X, y)
        assert alone not in clf.validation_indices_
        assert set(y[clf.validation_indices_]) == {"flood", "donation"}  # stratified over the others: both validated
        said = [str(w.message) for w in record if "single example" in str(w.message)]
        assert said == ["1 class(es) have a single example (indices [2] of classes_): it trains and is not "
                        "validated."]
        assert not [w for w in record if "no example to train on" in str(w.message)]


def test_an_early_stop_is_no_interrupt(tiny_bert, toy_data, empty_stage1_cache):
    # skorch's EarlyStopping ends training by raising KeyboardInterrupt: not the user's Ctrl-C
    X, y = toy_data
    params = dict(finetune="head", max_epochs=30, validation_fraction=0.25, early_stopping=True, patience=1,
                  lr=0.5, batch_size=8, random_state=0, head="calora", head__k=2, head__rank=2, head__epochs=2)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*interrupted")
        clf = TransformerClassifier(tiny_bert, **params).fit(X, y)
    assert clf.n_iter_ < 30 and not clf.training_interrupted_
    assert TransformerClassifier(tiny_bert, **params).fit(X, y).stage1_cached_  # a whole stage 1: cached


def test_max_length_beyond_the_backbone_positions_is_an_error_at_fit(tiny_bert, toy_data):
    # the tiny BERT has 128 positions: a longer max_length would crash inside the model on a long text
    from skimb import TransformerEmbedder, TransformerTokenClassifier

    X, y = toy_data
    with pytest.raises(ValueError, match=r"TransformerClassifier: max_length=129 .* set max_length <= 128"):
        TransformerClassifier(tiny_bert, max_length=129, **FAST).fit(X, y)
    with pytest.raises(ValueError, match=r"TransformerTokenClassifier: max_length=200 .*<= 128"):
        TransformerTokenClassifier(tiny_bert, max_length=200, **FAST).fit([["a", "flood"]] * 4, [["O", "B-X"]] * 4)
    with pytest.raises(ValueError, match=r"TransformerEmbedder: max_length=512 .*<= 128"):
        TransformerEmbedder(tiny_bert, max_length=512).fit()
    long_text = " ".join(["flood"] * 300)  # the longest that fits is fine, and truncates
    fitted = TransformerClassifier(tiny_bert, max_length=128, **FAST).fit(X, y)
    assert fitted.predict([long_text]).shape == (1,)
    # ... and so at prediction, where set_params raised it after fit (a raw torch error on a long text)
    with pytest.raises(ValueError, match=r"TransformerClassifier: max_length=129 .* set max_length <= 128"):
        fitted.set_params(max_length=129).predict([long_text])
    tagger = TransformerTokenClassifier(tiny_bert, max_length=16, **FAST).fit([["a", "flood"]] * 4, [["O", "B-X"]] * 4)
    with pytest.raises(ValueError, match=r"TransformerTokenClassifier: max_length=200 .*<= 128"):
        tagger.set_params(max_length=200).predict([["flood"] * 200])


def test_predict_before_fit(tiny_bert):
    with pytest.raises(NotFittedError):
        TransformerClassifier(tiny_bert).predict(["a text"])


@pytest.mark.parametrize("bad_X, error, match", [
    ([], ValueError, "empty"),
    (["ok", None], TypeError, r"X\[1\] is None"),
    (["ok", float("nan")], TypeError, r"X\[1\] is NaN"),
    (["ok", 12], TypeError, r"X\[1\] is an int"),
    ("a single string", TypeError, "single str"),
    ({"ok", "fine"}, TypeError, "ordered sequence, got a set"),  # its order would pair texts with labels at random
])
def test_bad_texts(tiny_bert, bad_X, error, match):
    y = ["a", "b"][: max(1, len(bad_X))] if not isinstance(bad_X, str) else ["a", "b"]
    with pytest.raises(error, match=match):
        TransformerClassifier(tiny_bert).fit(bad_X, y)


def test_bad_labels(tiny_bert, toy_data):
    X, y = toy_data
    with pytest.raises(ValueError, match="at least 2 classes"):
        TransformerClassifier(tiny_bert).fit(X, ["a"] * len(X))
    with pytest.raises(ValueError, match="different lengths"):
        TransformerClassifier(tiny_bert).fit(X[:-1], y)
    y_none = y.astype(object)
    y_none[4] = None
    with pytest.raises(ValueError, match=r"y\[4\] is None"):
        TransformerClassifier(tiny_bert).fit(X, y_none)
    with pytest.raises(TypeError, match="y must be an ordered sequence, got a set"):
        TransformerClassifier(tiny_bert).fit(["a", "b"], {"x", "y"})
    # a list that mixes 0 and "0" (numpy makes them one string label), and the same as an object array
    with pytest.raises(ValueError, match=r"y\[4\] is NaN: labels must not be missing"):  # numpy made it "nan"
        TransformerClassifier(tiny_bert).fit(X, [np.nan if i == 4 else str(v) for i, v in enumerate(y)])
    mixed = [0 if i == 3 else str(v) for i, v in enumerate(y)]
    for labels in (mixed, np.array(mixed, dtype=object)):
        with pytest.raises(TypeError, match=r"y mixes strings and numbers \(y\[3\] is 0, y\[0\] is '"):
            TransformerClassifier(tiny_bert).fit(X, labels)
    with pytest.raises(TypeError, match="X must be a sequence, got a dict, whose keys"):
        TransformerClassifier(tiny_bert).fit({"a": 0, "b": 1}, ["x", "y"])


def test_missing_labels_are_refused_before_the_backbone_loads(toy_data, backbone_must_not_load):
    # no y at all: scikit-learn's wording (its check_requires_y_none), then the remedy
    pd = pytest.importorskip("pandas")
    X, y = toy_data
    with pytest.raises(ValueError, match="TransformerClassifier requires y to be passed, but the target y is None: pass the labels, one "
                                         "per sample of X"):
        TransformerClassifier().fit(X, None)
    # pandas' missing value in a "string" column, named by position like None and NaN
    holed = pd.Series([*y[:4], None, *y[5:]], dtype="string")
    with pytest.raises(ValueError, match=r"y\[4\] is pd.NA: labels must not be missing"):
        TransformerClassifier().fit(X, holed)


def test_unloadable_backbone_says_how_to_fix(tmp_path, toy_data):
    X, y = toy_data
    with pytest.raises(ValueError, match="local directory|backbone='/path"):
        TransformerClassifier(backbone="no-such-org/no-such-model").fit(X, y)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="Could not load"):
        TransformerClassifier(backbone=str(tmp_path / "empty")).fit(X, y)


def test_non_finite_loss_raises_and_keeps_a_usable_model(tiny_bert, toy_data):
    X, y = toy_data

    class NaNLoss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, logits, target):
            self.calls += 1
            out = torch.nn.functional.cross_entropy(logits, target, reduction="none")
            return out * float("nan") if self.calls > 3 else out

    clf = TransformerClassifier(tiny_bert, loss=NaNLoss(), **FAST)
    with pytest.raises(FloatingPointError, match="lr"):
        clf.fit(X, y)
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    assert not clf.net_.optimizer_.state  # the model it keeps does not keep training's state either


def test_a_diverged_model_refuses_to_predict_rather_than_predicting_one_class(tiny_bert, toy_data):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, lr=1e10, **FAST)
    with pytest.raises(FloatingPointError):
        clf.fit(X, y)
    # the weights kept are finite, but overflow the forward pass: no prediction, rather than one class
    assert all(torch.isfinite(p).all() for p in clf.net_.module_.parameters())
    for method in (clf.predict, clf.predict_proba, clf.decision_function):
        with pytest.raises(ValueError, match=r"^text 0: the model's logits contain NaN \(it diverged in training\)"):
            method(X)


@pytest.mark.parametrize("threshold", ["tuned", "calibrated"])
def test_divergence_raises_floating_point_error_whatever_the_decision_rule(tiny_bert, toy_data, threshold):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, lr=1e10, threshold=threshold, validation_fraction=0.3, **FAST)
    with pytest.raises(FloatingPointError):
        clf.fit(X, y)


def test_keyboard_interrupt_keeps_a_usable_model(tiny_bert, toy_data):
    X, y = toy_data

    class Interrupt(Callback):
        def on_batch_end(self, net, training=False, **kw):
            if training and len(net.history) == 2:
                raise KeyboardInterrupt

    clf = TransformerClassifier(tiny_bert, max_epochs=5, batch_size=8, random_state=0, callbacks=[Interrupt()])
    with pytest.warns(UserWarning, match="interrupted after 1 of 5 epochs; the model is usable"):
        clf.fit(X, y)
    assert clf.n_iter_ == 1 and clf.training_interrupted_  # the epoch interrupted does not count
    assert len(clf.history_) == 2 and "train_loss" not in clf.history_[-1]
    assert clf.predict(X).shape == (len(X),)
    clf.set_params(callbacks=None).fit(X, y)
    assert clf.n_iter_ == 5 and not clf.training_interrupted_


def test_an_interrupted_stage1_is_never_cached(tiny_bert, toy_data, monkeypatch):
    from skimb.training import TransformerNet, stage1_cache

    X, y = toy_data
    stage1_cache.clear()
    step, calls = TransformerNet.train_step, []

    def interrupted_at_the_third_step(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return step(self, *args, **kwargs)

    monkeypatch.setattr(TransformerNet, "train_step", interrupted_at_the_third_step)
    with pytest.warns(UserWarning, match="interrupted.*not cached"):
        cut = TransformerClassifier(tiny_bert, **CALORA, **FAST).fit(X, y)
    monkeypatch.undo()
    assert cut.training_interrupted_ and cut.predict_proba(X).shape == (len(X), 3)
    assert stage1_cache.misses == 1 and stage1_cache.hits == 0
    full = TransformerClassifier(tiny_bert, **CALORA, **FAST).fit(X, y)  # the same key: trained, not loaded
    assert not full.stage1_cached_ and not full.training_interrupted_ and full.n_iter_ == FAST["max_epochs"]
    again = TransformerClassifier(tiny_bert, **CALORA, **FAST).fit(X, y)
    assert again.stage1_cached_  # the whole stage 1 is cached


def _loss_interrupted_at(call, loss_fn):
    calls = []

    def loss(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return loss_fn(*args, **kwargs)

    return loss


@pytest.mark.parametrize("stage2", ["calora", "calora_layers", "calora_layers_at_the_head", "crt"])
def test_an_interrupted_stage2_keeps_a_usable_model(tiny_bert, toy_data, monkeypatch, empty_stage1_cache, stage2):
    # the stage-2 loss raises at its second call: a Ctrl-C in the head's (or the layers') training
    from skimb.heads import _components, _decoupled

    X, y = toy_data
    layered = dict(CALORA, head__layers="last", head__layer_epochs=2)
    params = {"calora": CALORA, "calora_layers": layered, "calora_layers_at_the_head": layered,
              "crt": dict(head="crt", head__epochs=3)}[stage2]
    owner, name = {"calora_layers": (_components, "fit_calora_layers"),
                   "crt": (_decoupled.CRTHead, "fit_stage2")}.get(stage2, (_components, "fit_calora_head"))
    train = getattr(owner, name)

    def interrupted(*args, loss_fn, **kwargs):
        return train(*args, loss_fn=_loss_interrupted_at(2, loss_fn), **kwargs)

    monkeypatch.setattr(owner, name, interrupted)
    with pytest.warns(UserWarning, match=r"stage 2 \(\w+Head\) was interrupted; the model is usable as it is"):
        cut = TransformerClassifier(tiny_bert, **params, **FAST).fit(X, y)
    monkeypatch.undo()
    proba = cut.predict_proba(X)
    assert cut.training_interrupted_ and proba.shape == (len(X), 3) and np.isfinite(proba).all()
    assert cut.n_iter_ == FAST["max_epochs"]  # stage 1 ran to the end ...
    again = TransformerClassifier(tiny_bert, **params, **FAST).fit(X, y)
    assert again.stage1_cached_ and not again.training_interrupted_  # ... and was cached; stage 2 trains again
    assert not np.allclose(again.predict_proba(X), proba)
    restored = pickle.loads(pickle.dumps(cut))  # the interrupted model keeps the layout a saved one rebuilds
    np.testing.assert_allclose(restored.predict_proba(X), proba, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("where", ["stage2_inputs", "after_fit", "validation_report"])
def test_an_interrupt_outside_training_leaves_no_half_fitted_model(tiny_bert, toy_data, monkeypatch, where,
                                                                  empty_stage1_cache):
    # a Ctrl-C in a pass outside the training loops (a second stage's inputs, the tuned decision rule,
    # the validation report) ends fit with it; the estimator predicted as if fitted (without stage 2 or
    # the tuned offsets) and saved a folder that load_pretrained refused
    from skimb._text_task import TextTask

    X, y = toy_data

    def interrupt(self, ctx):
        raise KeyboardInterrupt

    monkeypatch.setattr(TextTask, where, interrupt)
    clf = TransformerClassifier(tiny_bert, **CALORA, threshold="tuned", validation_fraction=0.3, **FAST)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y)
    assert not [name for name in vars(clf) if name.endswith("_")]
    with pytest.raises(NotFittedError):
        clf.predict(X)


def test_user_loss_module_is_not_mutated(tiny_bert, toy_data):
    X, y = toy_data
    user_loss = torch.nn.CrossEntropyLoss()
    clf = TransformerClassifier(tiny_bert, loss=user_loss, **FAST).fit(X, y)
    assert user_loss.reduction == "mean"
    assert clf.loss_ is not user_loss


class _MeanLoss(torch.nn.Module):
    """A user loss without a ``reduction`` attribute that reduces all the same."""

    def forward(self, logits, target):
        return torch.nn.functional.cross_entropy(logits, target)


@pytest.mark.parametrize("estimator, params", [
    (TransformerClassifier, {"class_weight": "balanced"}),  # was: the class weights silently dropped
    (TransformerClassifier, {"training": "hamr", "validation_fraction": 0.2}),  # was: "indices has 16 entries ..."
    (TransformerTokenClassifier, {"class_weight": "balanced"}),  # was: the tag weights silently dropped
])
def test_a_user_loss_reduced_to_one_number_is_refused(tiny_bert, toy_data, estimator, params):
    X, y = toy_data if estimator is TransformerClassifier else make_ner(20)
    with pytest.raises(ValueError, match=r"the loss _MeanLoss must return per-sample losses, shape \(\d+,\), got "
                                         r"\(\): set its reduction='none'"):
        estimator(tiny_bert, loss=_MeanLoss(), **params, **FAST).fit(X, y)


def test_a_refit_that_fails_before_training_gave_a_model_keeps_the_model_it_had(tiny_bert, toy_data):
    # refused once the backbone had loaded (a loss of the wrong shape; sequential stages too many to fill):
    # the earlier model was dropped, and what was left passed check_is_fitted but could not predict
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, **FAST).fit(X, y)
    expected = clf.predict_proba(X)
    for params in (dict(loss=_MeanLoss()), dict(training="sequential", training__n_stages=60)):
        with pytest.raises(ValueError):
            clf.set_params(**params).fit(X, y)
        np.testing.assert_array_equal(clf.predict_proba(X), expected)
        clf.set_params(loss="ce", training="standard")


def test_a_user_loss_of_per_label_terms_trains_as_their_mean(tiny_bert, toy_data):
    # BCEWithLogitsLoss gives (N, C): with sample weights it was a RuntimeError of shapes
    X, y = toy_data
    Y = np.stack([(y == "flood"), (y != "injury"), np.arange(len(y)) % 2 == 0], axis=1).astype(int)
    weights = np.where(y == "injury", 3.0, 1.0)
    user = TransformerClassifier(tiny_bert, loss=torch.nn.BCEWithLogitsLoss(), **FAST).fit(X, Y, sample_weight=weights)
    bce = TransformerClassifier(tiny_bert, loss="bce", **FAST).fit(X, Y, sample_weight=weights)
    np.testing.assert_allclose(user.predict_proba(X), bce.predict_proba(X), atol=1e-5)


def test_embed_returns_encoder_features(clf, toy_data):
    X, y = toy_data
    clf.fit(X, y)
    emb = clf.embed(X[:5])
    assert emb.shape == (5, 32)
    logits = clf.net_.module_.head(torch.from_numpy(emb).to(clf.net_.device))
    np.testing.assert_allclose(logits.detach().cpu().numpy(), clf.decision_function(X[:5]), rtol=1e-4, atol=1e-5)


def test_multilabel_indicator_targets(tiny_bert, toy_data):
    X, y = toy_data
    Y = np.stack([(y == "flood"), (y != "injury"), np.arange(len(y)) % 2 == 0], axis=1).astype(int)
    clf = TransformerClassifier(tiny_bert, **FAST).fit(X, Y)
    assert clf.multilabel_
    proba = clf.predict_proba(X)
    assert proba.shape == Y.shape and ((proba >= 0) & (proba <= 1)).all()
    pred = clf.predict(X)
    assert pred.shape == Y.shape and set(np.unique(pred)) <= {0, 1}
    tuned = TransformerClassifier(tiny_bert, threshold="tuned", validation_fraction=0.3, **FAST).fit(X, Y)
    assert tuned.thresholds_.shape == (3,)
    from skimb.metrics import tune_thresholds

    valid = tuned.validation_indices_  # bagged over resamples of the validation split, seeded by the fit
    expected = tune_thresholds(Y[valid], tuned.predict_proba([X[i] for i in valid]), n_bootstrap=30,
                               random_state=tuned.random_state)
    np.testing.assert_allclose(tuned.thresholds_, expected, atol=1e-6)
    with pytest.raises(ValueError, match="validation_fraction"):
        TransformerClassifier(tiny_bert, threshold="tuned", **FAST).fit(X, Y)


def test_multilabel_validation_report_ranks_by_the_probabilities(tiny_bert, toy_data, tmp_path):
    from skimb.metrics import multilabel_report

    X, y = toy_data
    Y = np.stack([(y == "flood"), (y != "injury"), np.arange(len(y)) % 2 == 0], axis=1).astype(int)
    clf = TransformerClassifier(tiny_bert, validation_fraction=0.3, **FAST).fit(X, Y)
    valid = [X[i] for i in clf.validation_indices_]
    expected = multilabel_report(Y[clf.validation_indices_], clf.predict(valid), Y_score=clf.predict_proba(valid),
                                 label_names=["0", "1", "2"])
    assert np.isfinite(clf.validation_report_["macro_roc_auc"])  # not NaN for want of scores
    assert json.dumps(clf.validation_report_, sort_keys=True) == json.dumps(expected, sort_keys=True)
    card = (clf.save_pretrained(tmp_path / "m") / "README.md").read_text()
    assert f"macro_roc_auc: {expected['macro_roc_auc']:.4f}" in card


def test_class_weight_on_multilabel_targets_names_the_remedies(tiny_bert, toy_data):
    X, y = toy_data
    Y = np.stack([(y == "flood"), (y != "injury")], axis=1).astype(int)
    clf = TransformerClassifier(tiny_bert, class_weight="balanced", **FAST)
    with pytest.raises(ValueError, match="single-label targets; for multi-label data use loss='distribution_balanced' "
                                         "or 'weighted_bce'.*head='calora'"):
        clf.fit(X, Y)
    assert not hasattr(clf, "net_")


@pytest.mark.parametrize("loss", ["bce", "focal_bce", "afl"])
def test_multilabel_fine_tuning_learns_a_keyword_task(tiny_bert, loss):
    from conftest import make_toy_texts
    from sklearn.metrics import roc_auc_score

    X, y = make_toy_texts((40, 40, 40))
    Y = np.stack([y == y[0], y == y[-1]], axis=1).astype(int)  # two of the three keyword classes
    clf = TransformerClassifier(tiny_bert, loss=loss, max_epochs=8, batch_size=8, lr=5e-3,
                                random_state=0).fit(X, Y)
    assert roc_auc_score(Y, clf.predict_proba(X), average="macro") > 0.95
    assert clf.history_[-1, "train_loss"] < clf.history_[0, "train_loss"] / 4


# ------------------------------------------------------------------ CALoRA
CALORA = dict(head="calora", head__k=2, head__rank=2, head__epochs=5, head__lr=1e-2)


@pytest.mark.parametrize("routing", ["topk", "pseudo", "oracle", "soft"])
def test_calora_stage2_keeps_stage1_weights_bitwise(tiny_bert, toy_data, routing):
    from skimb.training import stage1_cache

    X, y = toy_data
    stage1_cache.clear()
    vanilla = TransformerClassifier(tiny_bert, **FAST).fit(X, y)
    calora = TransformerClassifier(tiny_bert, head__routing=routing, **CALORA, **FAST).fit(X, y)
    v_state = vanilla.net_.module_.state_dict()
    c_module = calora.net_.module_
    for name, value in v_state.items():  # the backbone and W0 are untouched by stage 2
        key = name.replace("head.", "head.base.") if name.startswith("head.") else name
        assert torch.equal(c_module.state_dict()[key], value), name
    assert not c_module.head.base.weight.requires_grad
    assert calora.adapter_norms_.shape == (3,) and (calora.adapter_norms_ > 0).any()
    assert 0 <= calora.routing_topk_coverage_ <= 1
    assert calora.predict_proba(X).shape == (len(X), 3)


def test_calora_reuses_stage1_across_k_and_rank(tiny_bert, toy_data):
    from skimb.training import stage1_cache

    X, y = toy_data
    stage1_cache.clear()
    first = TransformerClassifier(tiny_bert, **CALORA, **FAST).fit(X, y)
    assert not first.stage1_cached_ and first.stage1_time_s_ > 0
    search = GridSearchCV(TransformerClassifier(tiny_bert, **CALORA, **FAST),
                          {"head__k": [1, 2, 3], "head__rank": [1, 2]}, cv=2, scoring="f1_macro", refit=False)
    search.fit(X, y)
    # 2 folds -> 2 stage-1 fits for 12 candidate fits
    assert stage1_cache.misses == 1 + 2
    assert stage1_cache.hits == 6 * 2 - 2
    again = TransformerClassifier(tiny_bert, **{**CALORA, "head__k": 3}, **FAST).fit(X, y)
    assert again.stage1_cached_ and again.stage1_time_s_ == 0.0
    assert again.history_ is not first.history_  # equal values, separate objects
    np.testing.assert_array_equal(again.history_[:, "train_loss"], first.history_[:, "train_loss"])


def test_calora_memory_on_disk(tiny_bert, toy_data, tmp_path):
    from skimb.training import stage1_cache

    X, y = toy_data
    stage1_cache.clear()
    TransformerClassifier(tiny_bert, head__memory=str(tmp_path), **CALORA, **FAST).fit(X, y)
    assert list((tmp_path / "skimb-stage1").glob("*.pt"))
    stage1_cache.clear()  # a new process would start empty
    hit = TransformerClassifier(tiny_bert, head__memory=str(tmp_path), **{**CALORA, "head__rank": 1}, **FAST).fit(X, y)
    assert hit.stage1_cached_


def test_calora_k_equal_c_and_save_load(tiny_bert, toy_data, tmp_path):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, **{**CALORA, "head__k": 3}, finetune="head", random_state=0).fit(X, y)
    out = clf.save_pretrained(tmp_path / "calora")
    loaded = TransformerClassifier.load_pretrained(out)
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), rtol=1e-5, atol=1e-6)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(restored.predict_proba(X), clf.predict_proba(X), rtol=1e-6)


def test_calora_candidates_share_the_encoding_of_prediction_texts(tiny_bert, toy_data):
    from skimb.training import stage1_cache

    X, y = toy_data
    stage1_cache.clear()
    feature_cache.clear()
    a = TransformerClassifier(tiny_bert, **{**CALORA, "head__k": 1}, **FAST).fit(X, y)
    b = TransformerClassifier(tiny_bert, **{**CALORA, "head__k": 3}, **FAST).fit(X, y)
    before = feature_cache.misses
    proba_a = a.predict_proba(X[:10])
    assert feature_cache.misses == before + len(set(X[:10]))
    b.predict_proba(X[:10])  # same stage 1, same encoder: no new encoding
    assert feature_cache.misses == before + len(set(X[:10]))
    # and the cached path gives what a full forward pass gives
    module = a.net_.module_
    from skimb.backbones import encode_batches, tokenize

    ids = tokenize(a.tokenizer_, X[:10], a.max_length)
    logits = encode_batches(module, ids, batch_size=64, device=a.net_.device, pad_token_id=a.tokenizer_.pad_token_id)
    np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), proba_a, **same_model_tolerance(a))


def test_pooler_pooling_classifies_the_backbones_pooler_output(tiny_bert, toy_data):
    # pooling="pooler": the features AutoModelForSequenceClassification classifies (BERT's pooler)
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, pooling="pooler", lr=5e-3, **FAST).fit(X, y)
    backbone = clf.net_.module_.encoder.backbone.eval()
    enc = clf.tokenizer_(X[:4], padding=True, return_tensors="pt").to(backbone.device)
    with torch.no_grad():
        expected = backbone(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).pooler_output
    np.testing.assert_allclose(clf.embed(X[:4]), expected.cpu().numpy(), **same_model_tolerance(clf, 1e-4, 1e-5))
    mean = TransformerClassifier(tiny_bert, lr=5e-3, **FAST).fit(X, y)
    assert not np.allclose(clf.embed(X[:4]), mean.embed(X[:4]), atol=1e-3)


def test_pooler_pooling_without_a_pooling_layer_is_an_error_before_training(tmp_path, tiny_bert, toy_data):
    from transformers import AutoTokenizer, BertModel

    X, y = toy_data
    no_pooler = tmp_path / "no-pooler"
    BertModel.from_pretrained(tiny_bert, add_pooling_layer=False).save_pretrained(no_pooler)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(no_pooler)
    clf = TransformerClassifier(str(no_pooler), pooling="pooler", **FAST)
    with pytest.raises(ValueError, match="pooling='pooler' needs a backbone with its own pooling layer.*"
                                         "pooling='mean'"):
        clf.fit(X, y)
    assert not hasattr(clf, "net_")
    assert TransformerClassifier(str(no_pooler), pooling="cls", **FAST).fit(X, y).predict(X[:2]).shape == (2,)


def test_a_loss_schedule_is_checked_before_training(tiny_bert, toy_data):
    X, y = toy_data
    with pytest.raises(TypeError, match=r"TransformerClassifier\(loss='class_balanced'\): loss__drw_epoch must be None, "
                                        r"an int or a float, got str\.$"):
        TransformerClassifier("/no/such/backbone", loss="class_balanced", loss__drw_epoch="2").fit(X, y)
    with pytest.warns(UserWarning, match=r"max_epochs=2\): drw_epoch=2 starts after the last of 2 epochs"):
        est = TransformerClassifier(tiny_bert, loss="class_balanced", loss__drw_epoch=2, max_epochs=2, batch_size=8,
                                    random_state=0).fit(X, y)
    np.testing.assert_array_equal(est.loss_class_weight_, np.ones(len(est.classes_)))  # never re-weighted


@pytest.mark.parametrize("drw_epoch, match", [(0.1, r"drw_epoch=0.1 of 3 epochs rounds to epoch 0 and re-weights"),
                                               (0, r"drw_epoch=0 re-weights")])
def test_a_loss_schedule_that_defers_nothing_warns_before_the_backbone_loads(toy_data, backbone_must_not_load,
                                                                              drw_epoch, match):
    with pytest.warns(UserWarning, match=rf"max_epochs=3\): {match} from the first epoch: nothing is deferred"):
        with pytest.raises(AssertionError, match="the backbone was loaded"):
            TransformerClassifier(loss="class_balanced", loss__drw_epoch=drw_epoch, max_epochs=3).fit(*toy_data)


@pytest.mark.parametrize("params, error, match", [
    (dict(loss="focal", loss__gamma=-1.0), ValueError, r"loss__gamma must be finite and >= 0, got -1\.0\.$"),
    (dict(loss="afl", loss__no_such=1), TypeError, r"unexpected parameter\(s\) loss__no_such; accepted parameters: "
                                                   r"loss__gamma, loss__max_gamma, loss__alpha\.$"),
    (dict(loss="class_balanced", loss__beta=1.5), ValueError, r"loss__beta must be in \[0, 1\), got 1\.5\.$"),
    (dict(loss="focal", loss__alpha=[1, 2]), ValueError, r"FocalLoss: loss__alpha has 2 entries but there are \d+ "),
    (dict(loss="ldam", loss__drw_epoch=2.0), ValueError, r"a float loss__drw_epoch is a fraction of max_epochs and must "
                                                         r"be in \(0, 1\), got 2\.0; an epoch number is an integer: "
                                                         r"loss__drw_epoch=2 starts"),
])
def test_malformed_loss_parameters_fail_before_the_backbone_loads(toy_data, params, error, match):
    """The backbone path does not exist: the loss's error comes first, with the estimator and its parameter
    (loss__<name>, not the loss's own argument name) named."""
    X, y = toy_data
    with pytest.raises(error, match=rf"TransformerClassifier\(loss='{params['loss']}'\): .*{match}"):
        TransformerClassifier("/no/such/backbone", **params).fit(X, y)
    with pytest.raises(error, match=match):
        TransformerTokenClassifier("/no/such/backbone", **params).fit(*make_ner(12))


def test_an_ordinal_loss_on_labels_sorted_as_text_warns_before_the_backbone_loads(toy_data, backbone_must_not_load):
    X, y = toy_data  # string labels
    with pytest.warns(UserWarning, match=r"TransformerClassifier\(loss='ordinal'\) reads the classes' order as their "
                                         r"grades, and the labels .* are sorted as text"):
        with pytest.raises(AssertionError, match="the backbone was loaded"):
            TransformerClassifier(loss="ordinal").fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AssertionError, match="the backbone was loaded"):
            TransformerClassifier(loss="ordinal", loss__grades=[2, 0, 1]).fit(X, y)


def test_an_ordinal_loss_on_unevenly_spaced_numeric_labels_warns_before_the_backbone_loads(toy_data,
                                                                                          backbone_must_not_load):
    X, y = toy_data
    ratings = np.array([{"flood": 1, "donation": 2}.get(label, 5) for label in y])  # a rating missing: [1, 2, 5]
    with pytest.warns(UserWarning, match=r"TransformerClassifier\(loss='ordinal'\) reads the classes as evenly spaced "
                                         r"grades 0, 1, 2, but the labels \[1, 2, 5\] .*loss__grades=\[1, 2, 5\]"):
        with pytest.raises(AssertionError, match="the backbone was loaded"):
            TransformerClassifier(loss="ordinal").fit(X, ratings)


def test_a_model_object_as_backbone_gets_a_short_message_and_the_remedy(tiny_bert, toy_data):
    from skimb.backbones import load_backbone
    from skimb.utils._param_validation import InvalidParameterError

    model, _, _ = load_backbone(tiny_bert)
    with pytest.raises(InvalidParameterError) as info:
        TransformerClassifier(model).fit(*toy_data)
    message = str(info.value)
    assert "got a loaded BertModel object" in message and "model.save_pretrained(dir)" in message
    assert "backbone=dir" in message and len(message) < 300 and "BertEmbeddings" not in message


@pytest.mark.parametrize("blank", ["", " \t"])
def test_a_blank_backbone_is_refused_before_loading(blank, toy_data, backbone_must_not_load):
    from skimb.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match=r"TransformerClassifier: backbone must be None or a model name "
                                                    r"or a local directory, got .*A blank string names no backbone"):
        TransformerClassifier(backbone=blank).fit(*toy_data)


def test_a_long_invalid_value_is_cut_in_the_message(backbone_must_not_load, toy_data):
    from skimb.utils._param_validation import InvalidParameterError

    X, y = toy_data
    with pytest.raises(InvalidParameterError) as error:
        TransformerClassifier(lr=np.arange(1000.0)).fit(X, y)
    message = str(error.value)
    assert "TransformerClassifier: lr must be" in message and "... (a ndarray)" in message and len(message) < 400

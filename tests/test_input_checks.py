"""Inputs refused with a message that names the value, where it is and the remedy: a ``max_length``
that leaves no room for a word, the labels and weights given to ``TransformerClassifier.score``, a
bad cell of a multi-label ``y``, and ``load_pretrained`` of no folder."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_toy_texts
from sklearn.metrics import accuracy_score

from skimb import TransformerClassifier, TransformerEmbedder
from skimb._estimator import TransformerEstimator

FAST = dict(max_epochs=1, batch_size=8, max_length=32, random_state=0, device="cpu")
NO_ROOM = r"max_length = {} leaves no room for words after the tokenizer's 2 special tokens; set max_length >= 3"


@pytest.fixture
def training_must_not_start(monkeypatch):
    def no_training(self, ctx):
        raise AssertionError("training started")

    monkeypatch.setattr(TransformerEstimator, "_fit_stage1", no_training)


# -- max_length --------------------------------------------------------------------------------------
@pytest.mark.parametrize("max_length", [1, 2])
def test_a_max_length_with_no_room_for_a_word_is_refused_before_training(tiny_bert, training_must_not_start,
                                                                          max_length):
    # 2 fed every text to the model as [CLS] [SEP] (one prediction for all); 1 did not truncate at all
    X, y = make_toy_texts()
    with pytest.raises(ValueError, match="^TransformerClassifier: " + NO_ROOM.format(max_length)):
        TransformerClassifier(tiny_bert, **{**FAST, "max_length": max_length}).fit(X, y)
    with pytest.raises(ValueError, match="^TransformerEmbedder: " + NO_ROOM.format(max_length)):
        TransformerEmbedder(tiny_bert, max_length=max_length, device="cpu").fit(X)


def test_the_smallest_max_length_that_holds_a_word_is_accepted(tiny_bert):
    X, _ = make_toy_texts()
    assert TransformerEmbedder(tiny_bert, max_length=3, device="cpu", cache=False).fit().transform(X[:2]).shape == (2, 32)


def test_a_max_length_set_with_no_room_after_fit_is_refused_at_predict(fitted):
    fitted.set_params(max_length=2)
    try:
        with pytest.raises(ValueError, match="^TransformerClassifier: " + NO_ROOM.format(2)):
            fitted.predict(["flood water rising"])
    finally:
        fitted.set_params(max_length=FAST["max_length"])


# -- score -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted(tiny_bert):
    return TransformerClassifier(tiny_bert, **FAST).fit(*make_toy_texts())


@pytest.fixture(scope="module")
def fitted_multilabel(tiny_bert):
    X, _ = make_toy_texts()
    Y = (np.random.RandomState(0).rand(len(X), 3) < 0.4).astype(int)
    return TransformerClassifier(tiny_bert, **FAST).fit(X, Y), X, Y


def test_score_is_the_accuracy_of_predict(fitted):
    X, y = make_toy_texts()
    w = np.linspace(0.5, 2.0, len(X))
    assert fitted.score(X, y) == pytest.approx(accuracy_score(y, fitted.predict(X)))
    assert fitted.score(X, y, sample_weight=w) == pytest.approx(accuracy_score(y, fitted.predict(X), sample_weight=w))
    assert fitted.score(X[:3], ["not a class"] * 3) == 0.0  # a label unseen in fit is a miss, as in scikit-learn


@pytest.mark.parametrize("labels, sample_weight, error, match", [
    ([np.nan, "flood", "flood"], None, ValueError, r"y\[0\] is NaN: labels must not be missing"),
    (["flood", None, "flood"], None, ValueError, r"y\[1\] is None: labels must not be missing"),
    (None, None, ValueError, r"TransformerClassifier requires y to be passed"),
    (["flood", "flood"], None, ValueError, r"X and y have different lengths: 3 != 2"),
    (["flood"] * 3, [1.0, -1.0, 1.0], ValueError, r"sample_weight\[1\] is -1.0: weights must be non-negative"),
    (["flood"] * 3, [1.0, np.nan, 1.0], ValueError, r"sample_weight\[1\] is nan: weights must be finite"),
    (["flood"] * 3, [0.0, 0.0, 0.0], ValueError, r"sample_weight sums to 0 .*the weighted accuracy is undefined"),
    (["flood"] * 3, [1.0, 1.0], ValueError, r"sample_weight has 2 weights but X has 3 samples"),
])
def test_score_checks_labels_and_weights_as_fit_does(fitted, labels, sample_weight, error, match):
    # before: a NaN label scored 0.0 and negative weights -0.0
    X, _ = make_toy_texts()
    with pytest.raises(error, match=match):
        fitted.score(X[:3], labels, sample_weight=sample_weight)


def test_multilabel_score_is_subset_accuracy_and_names_a_bad_cell(fitted_multilabel):
    clf, X, Y = fitted_multilabel
    assert clf.score(X, Y) == pytest.approx(accuracy_score(Y, clf.predict(X)))
    bad = Y.astype(float)
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"y\[4, 1\] is .*nan.*holds only 0 and 1"):
        clf.score(X, bad)
    with pytest.raises(ValueError, match=r"y has 2 label columns, expected 3"):
        clf.score(X, Y[:, :2])
    with pytest.raises(ValueError, match=r"sample_weight\[0\] is -1.0"):
        clf.score(X, Y, sample_weight=-np.ones(len(X)))


# -- a multi-label y -----------------------------------------------------------------------------------
@pytest.mark.parametrize("value, shown", [(np.nan, "nan"), (2, "2")])
def test_a_bad_cell_of_a_multilabel_y_is_named_before_the_backbone_loads(backbone_must_not_load, value, shown):
    X, _ = make_toy_texts()
    Y = (np.random.RandomState(0).rand(len(X), 3) < 0.4).astype(float)
    Y[17, 2] = value
    with pytest.raises(ValueError, match=rf"^y\[17, 2\] is .*{shown}.*holds only 0 and 1\. .*MultiLabelBinarizer"):
        TransformerClassifier(**FAST).fit(X, Y)


# -- load_pretrained -----------------------------------------------------------------------------------
def test_load_pretrained_of_no_folder_says_what_it_needs():
    # None reached os.fspath: "expected str, bytes or os.PathLike object, not NoneType"
    with pytest.raises(TypeError, match=r"^TransformerClassifier\.load_pretrained: directory must be the path of a "
                                        r"folder written by save_pretrained .*got None\.$"):
        TransformerClassifier.load_pretrained(None)
    with pytest.raises(ValueError, match=r"directory='' names no folder"):
        TransformerClassifier.load_pretrained("")


def test_save_pretrained_to_no_folder_says_what_it_needs(tiny_bert, tmp_path, monkeypatch):
    # "" wrote the model into the current directory, which load_pretrained("") refuses to read
    X, y = make_toy_texts()
    clf = TransformerClassifier(tiny_bert, max_epochs=1, batch_size=8, random_state=0).fit(X, y)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"^TransformerClassifier\.save_pretrained: directory='' names no folder; "
                                         r"pass the folder to write the model to"):
        clf.save_pretrained("")
    with pytest.raises(TypeError, match=r"^TransformerClassifier\.save_pretrained: directory must be the path of "
                                        r"the folder to write the model to .*got None\.$"):
        clf.save_pretrained(None)
    assert not list(tmp_path.iterdir())

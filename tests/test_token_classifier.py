"""Behaviour of TransformerTokenClassifier (NER, BIO tags) on a tiny random BERT."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
from conftest import WORDS, make_ner, same_model_tolerance
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from skimb import TransformerTokenClassifier
from skimb._token_classifier import per_sentence_losses, token_sentence_index
from skimb.metrics import span_f1_score
from skimb.tokens import convert_scheme, validate_tags

FAST = dict(max_epochs=2, batch_size=8, random_state=0, max_length=32)

@pytest.fixture(scope="module")
def ner_data():
    return make_ner()


@pytest.fixture(scope="module")
def fitted(tiny_bert, ner_data):
    """A model that has learnt the toy task (shared by the read-only tests)."""
    X, y = ner_data
    return TransformerTokenClassifier(tiny_bert, lr=5e-3, max_epochs=8, batch_size=8, random_state=0,
                                      max_length=32).fit(X, y)


def test_fit_predict_round_trip(fitted, ner_data):
    X, y = ner_data
    assert fitted.classes_.tolist() == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert fitted.entity_types_ == ["LOC", "PER"]
    assert fitted.task_ == "token" and fitted.n_iter_ == 8
    assert fitted.history_[-1, "train_loss"] < fitted.history_[0, "train_loss"]
    pred = fitted.predict(X)
    assert [len(p) for p in pred] == [len(s) for s in X]
    validate_tags(pred, "IOB2", strict=True)  # valid IOB2 sequences
    assert fitted.score(X, y) > 0.8
    proba = fitted.predict_proba(X)
    assert all(p.shape == (len(s), 5) for p, s in zip(proba, X))
    np.testing.assert_allclose(np.concatenate(proba).sum(1), 1, rtol=1e-5)
    logits = fitted.decision_function(X[:3])
    assert [lg.shape for lg in logits] == [(len(s), 5) for s in X[:3]]


def test_a_decoding_set_after_fit_is_checked_by_every_prediction(fitted, ner_data):
    from skimb.utils._param_validation import InvalidParameterError

    # predict's error named neither estimator nor parameter, nor 'crf'; predict_proba gave the softmax
    message = (r"^TransformerTokenClassifier: decoding must be one of 'repair', 'constrained', 'crf', got 'CRF'\. "
               r"Did you mean 'crf'")
    fitted.set_params(decoding="CRF")
    try:
        for method in (fitted.predict, fitted.predict_proba, fitted.decision_function):
            with pytest.raises(InvalidParameterError, match=message):
                method(ner_data[0][:2])
    finally:
        fitted.set_params(decoding="repair")


def test_score_is_span_micro_f1(fitted, ner_data):
    X, y = make_ner(20, seed=5)
    assert fitted.score(X, y) == pytest.approx(span_f1_score(y, fitted.predict(X)))


def test_multi_subtoken_words_empty_and_unknown_words(fitted):
    # "smithson" and "berlinale" are several sub-tokens; "" and a zero-width space have none
    X = [["smithson", "berlinale", "john"], [], ["", "\u200b", "rain"], ["paris"]]
    pred = fitted.predict(X)
    assert [len(p) for p in pred] == [3, 0, 3, 1]
    proba = fitted.predict_proba(X)
    assert proba[1].shape == (0, 5)
    assert fitted.embed(X).shape == (4, 32)
    assert [f.shape for f in fitted.token_features(X)] == [(3, 32), (0, 32), (3, 32), (1, 32)]


def test_long_sentences_are_windowed_not_truncated(tiny_bert, fitted):
    rng = np.random.default_rng(1)
    long_sent = [str(w) for w in rng.choice(WORDS, size=60)]
    long_sent[3:3] = ["john"]
    long_sent[50:50] = ["new", "york"]
    X = [long_sent, ["john", "rain"]]
    y = [["O"] * len(long_sent), ["B-PER", "O"]]
    y[0][3], y[0][50], y[0][51] = "B-PER", "B-LOC", "I-LOC"
    windows = fitted._adapter().windows(X)
    assert len([w for w in windows if w.sentence == 0]) > 1  # 63 words > 32 sub-tokens
    pred = fitted.predict(X)
    assert len(pred[0]) == 63 and len(pred[1]) == 2
    # a model trained with max_length=16 uses every window of the long sentence
    clf = TransformerTokenClassifier(tiny_bert, lr=5e-3, max_epochs=1, batch_size=4, random_state=0,
                                     max_length=16, stride=4).fit(X * 3, y * 3)
    assert len(clf.predict(X)[0]) == 63
    assert [len(p) for p in clf.predict_proba(X)] == [63, 2]


def test_training_labels_every_word_once(tiny_bert, ner_data):
    X, y = ner_data
    long_X = [X[0] * 12] + X[1:10]
    long_y = [y[0] * 12] + y[1:10]
    clf = TransformerTokenClassifier(tiny_bert, stride=4, **{**FAST, "max_epochs": 1, "max_length": 16})
    clf.fit(long_X, long_y)
    # rebuild the training set through the fit hooks (with the fitted tokenizer)
    adapter = clf._adapter()
    data = adapter.validate_X(long_X)
    _, y_enc, _ = adapter.encode_targets(long_y, data)
    ds, _ = adapter.datasets(data, y_enc, None, np.arange(len(data)), None, clf.net_.module_, "cpu")
    assert max(len(ids) for ids in ds.input_ids) <= 16
    labelled = np.bincount(ds.sentence_index, weights=[sum(t != -100 for t in lab) for lab in ds.y])
    np.testing.assert_array_equal(labelled, [len(s) for s in long_X])
    assert (ds.sentence_index == 0).sum() > 1


def test_iob1_input_is_converted(tiny_bert, ner_data):
    X, y = ner_data
    y_iob1 = convert_scheme(y, "IOB2", "IOB1")
    assert y_iob1 != y
    a = TransformerTokenClassifier(tiny_bert, scheme="IOB1", **FAST).fit(X, y_iob1)
    b = TransformerTokenClassifier(tiny_bert, **FAST).fit(X, y)
    assert a.classes_.tolist() == b.classes_.tolist()
    np.testing.assert_array_equal(np.concatenate(a.predict_proba(X)), np.concatenate(b.predict_proba(X)))
    pred = a.predict(X)
    validate_tags(pred, "IOB2", strict=True)  # predictions come back in IOB2
    assert a.score(X, y_iob1) == pytest.approx(span_f1_score(y, pred))


def test_malformed_tags_name_sentence_and_position(tiny_bert, ner_data):
    X, y = ner_data
    bad = copy.deepcopy(y)
    bad[3][1] = "X-PER"
    with pytest.raises(ValueError, match=r"sentence 3, position 1.*'X-PER'"):
        TransformerTokenClassifier(tiny_bert, **FAST).fit(X, bad)
    with pytest.raises(ValueError, match=r"sentence 0, position 0.*'S-LOC'"):
        TransformerTokenClassifier(tiny_bert, **FAST).fit([["paris"]], [["S-LOC"]])
    with pytest.raises(TypeError, match="y"):
        TransformerTokenClassifier(tiny_bert, **FAST).fit(X[:2], ["O", "O"])
    with pytest.raises(ValueError, match="no entity"):
        TransformerTokenClassifier(tiny_bert, **FAST).fit([["a", "b"]], [["O", "O"]])
    with pytest.raises(ValueError, match="scheme"):
        TransformerTokenClassifier(tiny_bert, scheme="XYZ", **FAST).fit(X, y)
    with pytest.raises(ValueError, match="decoding"):
        TransformerTokenClassifier(tiny_bert, decoding="greedy", **FAST).fit(X, y)


def test_length_mismatch(tiny_bert, ner_data):
    X, y = ner_data
    bad = copy.deepcopy(y)
    bad[2] = bad[2][:-1]
    with pytest.raises(ValueError, match=r"sentence 2: X\[2\] has \d+ tokens but y\[2\] has \d+ tags"):
        TransformerTokenClassifier(tiny_bert, **FAST).fit(X, bad)
    with pytest.raises(ValueError, match="different lengths"):
        TransformerTokenClassifier(tiny_bert, **FAST).fit(X, y[:-1])
    with pytest.raises(TypeError, match="list of token lists"):
        TransformerTokenClassifier(tiny_bert, **FAST).fit(["john lives here"], [["B-PER", "O", "O"]])


def test_a_text_or_an_unordered_sentence_is_refused_with_the_remedy(tiny_bert, backbone_must_not_load):
    # a single text was told "wrap it in a list: [text]", which a tagger refuses next; a set or a dict
    # as a sentence was read in arbitrary order (or as its keys) and paired with the wrong tags
    est = TransformerTokenClassifier(tiny_bert, **FAST)
    with pytest.raises(TypeError, match=r"^X must be a list of token lists, got a single str; split each sentence "
                                        r"into its words .*\[\['John', 'lives', 'here'\]\]"):
        est.fit("john lives here", ["B-PER", "O", "O"])
    with pytest.raises(TypeError, match=r"^X\[1\] must be a list of tokens in their order, got a set"):
        est.fit([["paris"], {"john", "lives"}], [["B-LOC"], ["B-PER", "O"]])
    with pytest.raises(TypeError, match=r"^X\[0\] must be a list of tokens in their order, got a dict"):
        est.fit([{"john": "B-PER", "lives": "O"}], [["B-PER", "O"]])


def test_not_fitted(tiny_bert, ner_data):
    X, y = ner_data
    clf = TransformerTokenClassifier(tiny_bert)
    for method in ("predict", "predict_proba", "decision_function", "embed"):
        with pytest.raises(NotFittedError):
            getattr(clf, method)(X)
    with pytest.raises(NotFittedError):
        clf.score(X, y)


def test_pickle_clone_and_params(tiny_bert, fitted, ner_data):
    X, _ = ner_data
    expected = fitted.predict_proba(X[:5])
    loaded = pickle.loads(pickle.dumps(fitted))
    for a, b in zip(expected, loaded.predict_proba(X[:5])):
        np.testing.assert_array_equal(a, b)
    for est in (fitted, TransformerTokenClassifier(tiny_bert, stride=3, loss__s=2)):
        c = clone(est)
        assert c.get_params() == est.get_params()
        assert not hasattr(c, "classes_")
    params = TransformerTokenClassifier().get_params()
    assert {"scheme", "stride", "decoding", "loss", "class_weight", "finetune"} <= set(params)
    assert "pooling" not in params and params["threshold"] is None
    assert all(k.endswith("_") for k in vars(fitted) if k not in params and not k.startswith("_"))


def test_same_seed_same_predictions(tiny_bert, ner_data):
    X, y = ner_data
    a = TransformerTokenClassifier(tiny_bert, **FAST).fit(X, y).predict_proba(X)
    b = TransformerTokenClassifier(tiny_bert, **FAST).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(np.concatenate(a), np.concatenate(b))
    c = TransformerTokenClassifier(tiny_bert, **{**FAST, "random_state": 1}).fit(X, y).predict_proba(X)
    assert not np.array_equal(np.concatenate(a), np.concatenate(c))


@pytest.mark.parametrize("params", [
    dict(loss="focal", loss__gamma=2.0),
    dict(class_weight="balanced"),
    dict(loss="weighted_ce", decoding="constrained"),
    dict(loss="dice", finetune="head", sample_weight=True),
    dict(finetune="lora", finetune__rank=2, validation_fraction=0.25, early_stopping=True, patience=1),
])
def test_losses_weights_and_modes_run(tiny_bert, ner_data, params):
    X, y = ner_data
    params = dict(params)
    sw = np.linspace(0.5, 1.5, len(X)) if params.pop("sample_weight", False) else None
    clf = TransformerTokenClassifier(tiny_bert, **{**FAST, **params}).fit(X, y, sample_weight=sw)
    pred = clf.predict(X)
    assert [len(p) for p in pred] == [len(s) for s in X]
    validate_tags(pred, "IOB2", strict=True)
    assert np.isfinite(clf.history_[-1, "train_loss"])
    if params.get("class_weight") == "balanced":
        w = clf.class_weight_
        assert w[clf.classes_.tolist().index("O")] == w.min() and w.max() > 1
    if params.get("validation_fraction"):
        assert np.isfinite(clf.history_[-1, "valid_loss"])


def test_class_weight_dict_weights_tokens(tiny_bert, ner_data):
    X, y = ner_data
    clf = TransformerTokenClassifier(tiny_bert, class_weight={"B-PER": 5.0}, **{**FAST, "max_epochs": 1})
    clf.fit(X, y)
    assert clf.class_weight_.tolist() == [1, 1, 1, 5, 1]
    loss = clf.net_.criterion_
    target = torch.tensor([0, 3])
    per = loss(torch.zeros(2, 5), target)
    assert per[1] / per[0] == pytest.approx(5.0)
    with pytest.raises(ValueError, match="not in y"):
        TransformerTokenClassifier(tiny_bert, class_weight={"B-ORG": 2.0}, **FAST).fit(X, y)
    # keyed in the scheme of y rather than IOB2: the message says what the keys are
    with pytest.raises(ValueError, match=r"has labels not in y: \['S-PER'\]; its keys are the classes_ of the fit, "
                                         r"\['O', 'B-LOC', 'I-LOC', 'B-PER', 'I-PER'\] \(IOB2 tags, whatever"):
        TransformerTokenClassifier(tiny_bert, scheme="IOBES", class_weight={"S-PER": 2.0}, **FAST).fit(
            X, convert_scheme(y, "IOB2", "IOBES"))
    # a 2-D array of strings: sentences of one length
    words = np.array([["john", "is"], ["mary", "runs"]])
    assert clf.predict(words) == clf.predict(words.tolist())
    with pytest.raises(ValueError, match="finite numbers >= 0.*'O': -1"):
        TransformerTokenClassifier(tiny_bert, class_weight={"O": -1}, **FAST).fit(X, y)


def test_a_validation_fraction_that_cannot_split_names_itself(backbone_must_not_load):
    X, y = [["a", "flood"]] * 4, [["O", "B-X"]] * 4
    with pytest.raises(ValueError, match="validation_fraction=0.99 cannot split 4 sentences"):
        TransformerTokenClassifier(validation_fraction=0.99).fit(X, y)


def test_tags_the_validation_split_takes_whole_are_named(tiny_bert):
    # a type in one sentence cannot be stratified: where that sentence was held out, the fit never saw the
    # type, and nothing said so
    import warnings

    X, y = [["a", "flood", str(i)] for i in range(8)] + [["mary", "smith"]], [["O", "B-X", "O"]] * 8 + [["B-Y", "I-Y"]]
    said = {}
    for seed in range(4):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            clf = TransformerTokenClassifier(tiny_bert, **{**FAST, "max_epochs": 1, "random_state": seed},
                                             validation_fraction=0.25).fit(X, y)
        said[8 in clf.validation_indices_] = [str(w.message) for w in record if "to train on" in str(w.message)]
    assert said[False] == []
    assert said[True] == ["validation_fraction=0.25 leaves 2 tag(s) no example to train on (indices [3, 4] of "
                          "classes_): they are not learnt; another random_state, more examples of them or "
                          "validation_fraction=None keeps them."]


@pytest.mark.parametrize("stride", [32, 40])
def test_a_stride_not_below_max_length_is_refused_before_the_backbone_loads(backbone_must_not_load, stride):
    from skimb.utils._param_validation import InvalidParameterError

    X, y = [["a", "flood"]] * 4, [["O", "B-X"]] * 4
    with pytest.raises(InvalidParameterError, match=rf"^TransformerTokenClassifier: stride={stride} must be smaller "
                                                    r"than max_length=32 .*stride=None"):
        TransformerTokenClassifier(stride=stride, max_length=32).fit(X, y)


def test_a_stride_that_fills_a_window_but_its_special_tokens_is_refused_once_loaded(tiny_bert):
    # below max_length, but a window holds max_length - 2 sub-tokens: the tokenizer tells
    X, y = [["a", "flood"]] * 4, [["O", "B-X"]] * 4
    with pytest.raises(ValueError, match=r"stride = 31 must be smaller than the 30 sub-tokens a window holds"):
        TransformerTokenClassifier(tiny_bert, **{**FAST, "stride": 31}).fit(X, y)


def test_a_max_length_with_no_room_for_a_word_is_refused_naming_the_tagger(tiny_bert):
    X, y = [["a", "flood"]] * 4, [["O", "B-X"]] * 4
    with pytest.raises(ValueError, match=r"^TransformerTokenClassifier: max_length = 2 leaves no room for words "
                                         r"after the tokenizer's 2 special tokens; set max_length >= 3"):
        TransformerTokenClassifier(tiny_bert, **{**FAST, "max_length": 2}).fit(X, y)


def test_sample_weights_only_on_validation_sentences_are_rejected_before_the_backbone_loads(backbone_must_not_load):
    # one sentence weighted at a time: refused exactly when validation_fraction holds it out
    X, y = [["a", "flood", str(i)] for i in range(8)], [["O", "B-X", "O"]] * 8
    refused = 0
    for i in range(len(X)):
        with pytest.raises((ValueError, AssertionError)) as caught:
            TransformerTokenClassifier(validation_fraction=0.25, random_state=0).fit(X, y, sample_weight=np.eye(8)[i])
        if caught.type is ValueError:
            assert "sample_weight is 0 on every training example" in str(caught.value)
            refused += 1
        else:
            assert "the backbone was loaded" in str(caught.value)
    assert refused == 2
    # the only positively weighted tag occurs only in sentences of sample weight 0
    y = [["O", "B-X", "O"]] * 4 + [["O", "B-Y", "O"]] * 4
    with pytest.raises(ValueError, match="class_weight x sample_weight is 0 on every training example"):
        TransformerTokenClassifier(class_weight={"O": 0, "B-X": 1, "B-Y": 0}).fit(
            X, y, sample_weight=[0.0] * 4 + [1.0] * 4)


def test_head_mode_computes_features_once_per_fit(tiny_bert, ner_data, monkeypatch):
    X, y = ner_data
    from skimb import _token_task as mod

    calls = []
    original = mod.SequenceClassifier.features

    def counting(self, input_ids, attention_mask):
        calls.append(len(input_ids))
        return original(self, input_ids, attention_mask)

    monkeypatch.setattr(mod.SequenceClassifier, "features", counting)
    TransformerTokenClassifier(tiny_bert, finetune="head", **{**FAST, "max_epochs": 3}).fit(X, y)
    assert sum(calls) == len(X)  # one pass over the windows, whatever the number of epochs


@pytest.mark.parametrize("finetune", ["full", "lora"])
def test_save_and_load_pretrained(tiny_bert, ner_data, tmp_path, finetune):
    X, y = ner_data
    clf = TransformerTokenClassifier(tiny_bert, finetune=finetune, decoding="constrained", stride=5,
                                     **{**FAST, "max_epochs": 1}).fit(X, y)
    clf.save_pretrained(tmp_path / "m")
    loaded = TransformerTokenClassifier.load_pretrained(tmp_path / "m", device="cpu")
    assert loaded.classes_.tolist() == clf.classes_.tolist()
    assert loaded.entity_types_ == clf.entity_types_
    assert loaded.get_params()["stride"] == 5 and loaded.decoding == "constrained"
    tolerance = same_model_tolerance(clf)  # loaded on the CPU: float32 against CUDA's bf16 backbone
    for a, b in zip(clf.predict_proba(X), loaded.predict_proba(X)):
        np.testing.assert_allclose(a, b, **tolerance)
    if tolerance["rtol"]:  # float32 on both sides: the same tags
        assert loaded.predict(X) == clf.predict(X)


def test_inputs_not_mutated(tiny_bert, ner_data):
    X, y = make_ner(12, seed=3)
    y_iob1 = convert_scheme(y, "IOB2", "IOB1")
    X0, y0 = copy.deepcopy(X), copy.deepcopy(y_iob1)
    clf = TransformerTokenClassifier(tiny_bert, scheme="IOB1", **{**FAST, "max_epochs": 1}).fit(X, y_iob1)
    clf.predict(X)
    clf.score(X, y_iob1)
    assert X == X0 and y_iob1 == y0


def test_per_sentence_losses_helpers():
    target = torch.tensor([[-100, 1, 0, -100], [-100, -100, -100, -100], [-100, 2, -100, 0]])
    logits = torch.randn(3, 4, 3, requires_grad=True)
    mask = target != -100
    tok = torch.nn.functional.cross_entropy(logits[mask], target[mask], reduction="none")
    rows = token_sentence_index(target)
    assert rows.tolist() == [0, 0, 2, 2]
    per = per_sentence_losses(tok, rows, len(target))
    assert per.shape == (3,) and per[1] == 0
    assert per[0] == tok[:2].max() and per[2] == tok[2:].max()
    per.sum().backward()
    assert logits.grad is not None and logits.grad[1].abs().sum() == 0
    mean = TransformerTokenClassifier.per_sentence_losses(tok.detach(), rows, 3, reduce="mean")
    assert mean[0] == pytest.approx(tok[:2].mean().item())
    with pytest.raises(ValueError, match="reduce"):
        per_sentence_losses(tok, rows, reduce="median")
    # agrees with HAMR's loss on padded batches
    from skimb.training.hamr import sequence_loss

    torch.testing.assert_close(per.detach(), sequence_loss(logits.detach(), target))


def test_module_exposes_token_features_and_linear_head(fitted):
    module = fitted.net_.module_
    assert isinstance(module.head, torch.nn.Linear) and module.head.out_features == 5
    ids = torch.tensor([[2, 10, 11, 3]], device=module.head.weight.device)
    module.eval()
    with torch.no_grad():
        feats = module.features(ids, torch.ones_like(ids))
    assert feats.shape == (1, 4, 32)
    with torch.no_grad():
        np.testing.assert_allclose(module(features=feats).cpu(), module(ids, torch.ones_like(ids)).cpu(), rtol=1e-5)


def test_empty_sentences_and_grid_search(tiny_bert, ner_data):
    from sklearn.model_selection import GridSearchCV

    X, y = ner_data
    X_e, y_e = X[:20] + [[]] * 4, y[:20] + [[]] * 4  # empty sentences are skipped in training
    grid = GridSearchCV(TransformerTokenClassifier(tiny_bert, **{**FAST, "max_epochs": 1}),
                        {"decoding": ["repair", "constrained"]}, cv=2).fit(X_e, y_e)
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    assert grid.best_estimator_.predict([[], ["john"]])[0] == []
    with pytest.raises(ValueError, match="no entity tag"):
        TransformerTokenClassifier(tiny_bert, **FAST).fit([[], []], [[], []])


def test_calora_routes_per_token(tiny_bert):
    import torch

    from skimb import TransformerTokenClassifier
    from skimb.training import stage1_cache

    X = [["john", "lives", "in", "paris"], ["mary", "went", "to", "london", "today"]] * 6
    y = [["B-PER", "O", "O", "B-LOC"], ["B-PER", "O", "O", "B-LOC", "O"]] * 6
    stage1_cache.clear()
    vanilla = TransformerTokenClassifier(tiny_bert, max_epochs=2, batch_size=4, random_state=0).fit(X, y)
    ner = TransformerTokenClassifier(tiny_bert, head="calora", head__k=2, head__rank=2, head__epochs=3, max_epochs=2,
                                     batch_size=4, random_state=0).fit(X, y)
    head = ner.net_.module_.head
    assert type(head).__name__ == "ClassRoutedLoRA"
    assert torch.equal(head.base.weight, vanilla.net_.module_.head.weight)  # W0 untouched by stage 2
    assert 0 <= ner.routing_topk_coverage_ <= 1 and ner.adapter_norms_.shape == (len(ner.classes_),)
    pred = ner.predict(X[:2])
    assert [len(p) for p in pred] == [4, 5]
    again = TransformerTokenClassifier(tiny_bert, head="calora", head__k=1, head__rank=2, head__epochs=3, max_epochs=2,
                                       batch_size=4, random_state=0).fit(X, y)
    assert again.stage1_cached_


def test_early_stopping_on_token_macro_f1(tiny_bert, ner_data):
    X, y = ner_data
    ner = TransformerTokenClassifier(tiny_bert, early_stopping="f1_macro", patience=1, validation_fraction=0.25,
                                     **{**FAST, "max_epochs": 3}).fit(X, y)
    scores = ner.history_[:, "valid_f1_macro"]
    assert len(scores) == ner.n_iter_ and all(0 <= s <= 1 for s in scores)


def test_tuned_threshold_decodes_the_logits_plus_per_type_offsets_tuned_on_validation(tiny_bert, ner_data, tmp_path):
    from skimb.metrics import tune_span_offsets
    from skimb.tokens import repair_bio

    X, y = ner_data
    params = dict(lr=5e-3, max_epochs=2, batch_size=8, random_state=0, max_length=32, validation_fraction=0.25)
    tuned = TransformerTokenClassifier(tiny_bert, threshold="tuned", **params).fit(X, y)
    classes = tuned.classes_.tolist()
    valid = tuned.validation_indices_
    expected = tune_span_offsets([y[i] for i in valid], tuned.decision_function([X[i] for i in valid]), classes,
                                 n_bootstrap=30, random_state=0)
    np.testing.assert_array_equal(tuned.logit_offsets_, expected)
    off = dict(zip(classes, tuned.logit_offsets_))
    assert off["O"] == 0 and off["B-PER"] == off["I-PER"] and off["B-LOC"] == off["I-LOC"]
    assert np.abs(tuned.logit_offsets_).max() > 0  # two epochs leave a tagger worth shifting
    manual = repair_bio([[classes[k] for k in (lg + tuned.logit_offsets_).argmax(1)] for lg in tuned.decision_function(X)])
    assert tuned.predict(X) == manual
    plain = TransformerTokenClassifier(tiny_bert, **params).fit(X, y)
    assert not hasattr(plain, "logit_offsets_") and plain.predict(X) != manual
    loaded = TransformerTokenClassifier.load_pretrained(tuned.save_pretrained(tmp_path / "tuned"))
    assert loaded.predict(X) == manual
    assert tuned.set_params(threshold=None).fit(X, y).predict(X) == plain.predict(X)  # a refit keeps no offsets
    assert not hasattr(tuned, "logit_offsets_")


def test_tuned_threshold_needs_a_validation_split_before_any_training(tiny_bert, ner_data):
    from skimb.utils._param_validation import InvalidParameterError

    X, y = ner_data
    with pytest.raises(InvalidParameterError, match="threshold='tuned' needs a validation split"):
        TransformerTokenClassifier(tiny_bert, threshold="tuned", **FAST).fit(X, y)
    with pytest.raises(InvalidParameterError, match="threshold"):
        TransformerTokenClassifier(tiny_bert, threshold=0.5, **FAST).fit(X, y)

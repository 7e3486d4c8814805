"""``mark_case``: a tagger feeds each word's case to an uncased backbone as its token type."""

import warnings

import numpy as np
import pytest
import torch
from conftest import WORDS, _write_tiny_bert
from transformers import AutoTokenizer, BertConfig, BertModel

from skimb import TransformerTokenClassifier
from skimb.backbones import EncodedTextDataset, pad_collate
from skimb.metrics import span_f1_score
from skimb.tokens import case_type_ids, tokenize_words
from skimb.utils._param_validation import InvalidParameterError

FAST = dict(max_length=16, max_epochs=4, lr=1e-3, random_state=0)


def case_only_ner(n, seed):
    """Sentences of the tiny vocabulary's words where a word is an entity exactly when capitalised:
    lowercased, the two readings are one token sequence."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for _ in range(n):
        words, tags = [str(w) for w in rng.choice(WORDS, size=5)], ["O"] * 5
        if rng.random() < 0.5:
            p = int(rng.integers(5))
            words[p], tags[p] = words[p].capitalize(), "B-X"
        X.append(words)
        y.append(tags)
    return X, y


@pytest.fixture(scope="module")
def case_data():
    return case_only_ner(160, 0), case_only_ner(100, 1)


def test_case_type_ids_mark_the_sub_tokens_of_words_with_an_uppercase_letter(tiny_bert):
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    sentences = [["Flood", "in", "the", "CITY", "of", "Paris", "x1Y", "rain"] * 2, [], ["help"]]
    windows = tokenize_words(tok, sentences, max_length=12, stride=2)
    assert sum(w.sentence == 0 for w in windows) > 1  # the long sentence is cut into windows
    types = case_type_ids(windows, sentences)
    assert [len(t) for t in types] == [len(w.input_ids) for w in windows]
    for win, row in zip(windows, types):
        expected = [0 if w is None else int(sentences[win.sentence][w] in ("Flood", "CITY", "Paris", "x1Y"))
                    for w in win.word_ids]
        assert list(row) == expected
    assert any(1 in row for row in types) and types[-1] == (0, 0, 0)


def test_pad_collate_pads_token_types_with_zero():
    ds = EncodedTextDataset([[5, 6, 7], [5]], [[0, 1, 0], [1]], token_type_ids=[(0, 1, 1), (1,)])
    batch, y = pad_collate([ds[0], ds[1]], label_pad_id=-100)
    assert batch["token_type_ids"].tolist() == [[0, 1, 1], [1, 0, 0]]
    assert "token_type_ids" not in pad_collate([(dict(input_ids=[5], index=0), 0)])[0]


def test_mark_case_learns_what_only_case_tells(tiny_bert, case_data):
    (X, y), (X_test, y_test) = case_data
    blind = TransformerTokenClassifier(tiny_bert, **FAST).fit(X, y)
    marked = TransformerTokenClassifier(tiny_bert, mark_case=True, **FAST).fit(X, y)
    assert span_f1_score(y_test, blind.predict(X_test)) < 0.5
    assert span_f1_score(y_test, marked.predict(X_test)) > 0.9
    # the same words, cased differently, now score differently
    low, up = marked.predict_proba([["rain", "flood"], ["Rain", "flood"]])
    assert not np.allclose(low[0], up[0]) and np.allclose(low[1], up[1], atol=0.2)


@pytest.mark.parametrize("params", [
    dict(decoding="crf", training="rdrop"), dict(training="hamr"), dict(decoding="crf", training="hamr"),
    dict(finetune="head", lr=1e-2), dict(head="calora", head__k=1), dict(quantize="int8"),
    dict(finetune__layer_decay=0.8, max_epochs=6), dict(finetune="lora", lr=1e-2),
], ids=["crf-rdrop", "hamr", "crf-hamr", "frozen", "calora", "int8", "layer-decay", "lora"])
def test_mark_case_reaches_every_training_and_prediction_path(tiny_bert, case_data, params):
    (X, y), (X_test, y_test) = case_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # HAMR's small-data warnings
        est = TransformerTokenClassifier(tiny_bert, mark_case=True, **{**FAST, **params}).fit(X, y)
    assert span_f1_score(y_test, est.predict(X_test)) > 0.85


def test_mark_case_trains_the_token_types_under_lora(tiny_bert, case_data):
    (X, y), _ = case_data
    est = TransformerTokenClassifier(tiny_bert, mark_case=True, finetune="lora", **dict(FAST, max_epochs=1)).fit(X, y)
    trained = [n for n, p in est.net_.module_.named_parameters() if p.requires_grad and "lora" not in n]
    embeddings = [n for n in trained if "embeddings" in n]
    assert len(embeddings) == 1 and embeddings[0].endswith("token_type_embeddings.weight")
    plain = TransformerTokenClassifier(tiny_bert, finetune="lora", **dict(FAST, max_epochs=1)).fit(X, y)
    assert not any(p.requires_grad for n, p in plain.net_.module_.named_parameters() if "embeddings" in n)


def test_mark_case_survives_saving(tiny_bert, case_data, tmp_path):
    (X, y), (X_test, _) = case_data
    est = TransformerTokenClassifier(tiny_bert, mark_case=True, decoding="crf", **FAST).fit(X, y)
    loaded = TransformerTokenClassifier.load_pretrained(est.save_pretrained(tmp_path / "m"), device="cpu")
    assert loaded.mark_case is True and loaded.mark_case_ is True
    np.testing.assert_allclose(np.concatenate(loaded.predict_proba(X_test)),
                               np.concatenate(est.predict_proba(X_test)), rtol=1e-5, atol=1e-6)


def test_mark_case_is_part_of_the_stage1_key(tiny_bert, case_data, empty_stage1_cache):
    (X, y), _ = case_data
    params = dict(FAST, max_epochs=1, head="calora", head__k=1, head__epochs=1, mark_case=True)
    miss = TransformerTokenClassifier(tiny_bert, **params).fit(X, y)
    hit = TransformerTokenClassifier(tiny_bert, **params).fit(X, y)
    assert not miss.stage1_cached_ and hit.stage1_cached_
    assert not TransformerTokenClassifier(tiny_bert, **{**params, "mark_case": False}).fit(X, y).stage1_cached_


def test_prediction_refuses_a_mark_case_changed_since_the_fit(tiny_bert, case_data):
    (X, y), (X_test, _) = case_data
    est = TransformerTokenClassifier(tiny_bert, mark_case=True, **dict(FAST, max_epochs=1)).fit(X, y)
    assert est.mark_case_ is True
    before = est.predict_proba(X_test)
    with pytest.raises(ValueError, match=r"mark_case=False, and the model was fitted with mark_case=True"):
        est.set_params(mark_case=False).predict(X_test)
    with pytest.raises(ValueError, match="Set mark_case=True back"):
        est.token_features(X_test)
    with pytest.raises(InvalidParameterError, match="onnx-int8"):
        est.set_params(mark_case=True, quantize="onnx-int8").predict(X_test)
    est.set_params(quantize=None)
    np.testing.assert_array_equal(np.concatenate(est.predict_proba(X_test)), np.concatenate(before))
    plain = TransformerTokenClassifier(tiny_bert, **dict(FAST, max_epochs=1)).fit(X, y)
    assert plain.mark_case_ is False
    with pytest.raises(ValueError, match="fitted with mark_case=False"):
        plain.set_params(mark_case=True).predict(X_test)


def test_a_tagger_pickled_before_mark_case_existed_predicts_as_it_did(tiny_bert, case_data, tmp_path):
    import pickle

    (X, y), (X_test, _) = case_data
    est = TransformerTokenClassifier(tiny_bert, **dict(FAST, max_epochs=1)).fit(X, y)
    old = pickle.loads(pickle.dumps(est))
    del old.mark_case, old.mark_case_  # the state of a tagger pickled before mark_case existed
    del old._params_at_fit_[0]["mark_case"]
    loaded = pickle.loads(pickle.dumps(old))  # predict, get_params, clone and save raised AttributeError
    assert loaded.get_params()["mark_case"] is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mark_case=False set since the fit" either
        saved = TransformerTokenClassifier.load_pretrained(loaded.save_pretrained(tmp_path / "old"), device="cpu")
    assert saved.mark_case is False
    np.testing.assert_array_equal(np.concatenate(loaded.predict_proba(X_test)),
                                  np.concatenate(est.predict_proba(X_test)))
    assert loaded.predict(X_test) == est.predict(X_test)


@pytest.fixture(scope="module")
def one_type_bert(tmp_path_factory):
    """The tiny BERT with a single token type (as RoBERTa has)."""
    directory = _write_tiny_bert(tmp_path_factory.mktemp("one-type"))
    config = BertConfig.from_pretrained(directory)
    config.type_vocab_size = 1
    torch.manual_seed(0)
    BertModel(config).save_pretrained(directory)
    return str(directory)


def test_mark_case_needs_two_token_types_and_a_refused_refit_keeps_the_model(tiny_bert, one_type_bert, case_data):
    (X, y), (X_test, _) = case_data
    est = TransformerTokenClassifier(tiny_bert, mark_case=True, **FAST).fit(X, y)
    before = est.predict_proba(X_test)
    with pytest.raises(ValueError, match=r"mark_case=True .* has 1 \(type_vocab_size"):
        est.set_params(backbone=one_type_bert).fit(X, y)
    np.testing.assert_array_equal(np.concatenate(est.predict_proba(X_test)), np.concatenate(before))
    TransformerTokenClassifier(one_type_bert, **dict(FAST, max_epochs=1)).fit(X, y)  # without it: fine


@pytest.mark.parametrize("params, match", [
    (dict(mark_case="yes"), "mark_case"),
    (dict(mark_case=True, quantize="onnx-int8"), "onnx-int8"),
])
def test_mark_case_refusals_come_before_the_backbone_loads(backbone_must_not_load, case_data, params, match):
    (X, y), _ = case_data
    with pytest.raises(InvalidParameterError, match=match):
        TransformerTokenClassifier("unused", **params).fit(X, y)


def test_on_lowercase_text_mark_case_changes_nothing(tiny_bert):
    X, y = case_only_ner(40, 2)
    X = [[w.lower() for w in s] for s in X]  # every token type 0
    params = dict(FAST, max_epochs=1, decoding="crf")
    plain = TransformerTokenClassifier(tiny_bert, **params).fit(X, y)
    marked = TransformerTokenClassifier(tiny_bert, mark_case=True, **params).fit(X, y)
    np.testing.assert_array_equal(np.concatenate(marked.predict_proba(X)), np.concatenate(plain.predict_proba(X)))

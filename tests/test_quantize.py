"""``quantize="int8"``: dynamic int8 prediction on the CPU, float32 training untouched."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skimb import TransformerClassifier, TransformerTokenClassifier
from skimb.training import stage1_cache

from conftest import make_ner

# int8 prediction runs on the CPU: these models are fitted there whatever the machine has
FIT = dict(max_epochs=4, batch_size=8, lr=5e-3, random_state=0, device="cpu")


def _is_int8(module):
    return any("quantized.dynamic" in type(m).__module__ for m in module.modules())


def test_int8_prediction_is_close_to_float32_and_leaves_the_model_float(tiny_bert, toy_data):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, **FIT).fit(X, y)
    fp32 = clf.predict_proba(X)
    clf.set_params(quantize="int8")  # no refit: prediction only
    int8 = clf.predict_proba(X)
    assert not np.array_equal(int8, fp32)  # the int8 path ran
    np.testing.assert_allclose(int8, fp32, atol=0.05)
    assert (int8.argmax(1) == fp32.argmax(1)).mean() >= 0.95
    module, device, variant = clf._inference_module()
    assert _is_int8(module) and (device, variant) == ("cpu", "int8")
    assert clf._inference_module()[0] is module  # built once
    assert not _is_int8(clf.net_.module_)  # the fitted model stays float32
    schemes = {m.weight().qscheme() for m in module.modules() if "quantized.dynamic" in type(m).__module__}
    assert schemes == {torch.per_channel_affine}  # one scale per output channel
    np.testing.assert_array_equal(clf.embed(X[:4]), clf.set_params(quantize=None).embed(X[:4]))


def test_refit_pickle_and_clone_with_int8(tiny_bert, toy_data):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, quantize="int8", **FIT).fit(X, y)
    first = clf._inference_module()[0]
    expected = clf.predict_proba(X)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(restored.predict_proba(X), expected, atol=1e-6)
    clf.fit(X, y)
    assert clf._inference_module()[0] is not first  # a refit quantises the new model
    assert clone(clf).get_params()["quantize"] == "int8"


def test_int8_shares_the_float_stage1(tiny_bert, toy_data):
    X, y = toy_data
    stage1_cache.clear()
    a = TransformerClassifier(tiny_bert, head="knn", **FIT).fit(X, y)
    b = TransformerClassifier(tiny_bert, head="knn", quantize="int8", **FIT).fit(X, y)
    assert b.stage1_cached_  # quantisation does not change what stage 1 learns
    assert not np.array_equal(a.predict_proba(X), b.predict_proba(X))  # ... but prediction differs
    stage1_cache.clear()


def test_int8_token_classifier(tiny_bert):
    X, y = make_ner(32)
    tok = TransformerTokenClassifier(tiny_bert, max_length=32, **FIT).fit(X, y)
    fp32 = tok.predict(X)
    tok.set_params(quantize="int8")
    int8 = tok.predict(X)
    agree = np.mean([a == b for s, t in zip(fp32, int8) for a, b in zip(s, t)])
    assert agree >= 0.9


def test_bad_quantize_value_is_rejected_at_fit_and_at_prediction(tiny_bert, toy_data):
    from skimb.utils._param_validation import InvalidParameterError

    X, y = toy_data
    with pytest.raises(InvalidParameterError, match="quantize"):
        TransformerClassifier(tiny_bert, quantize="int4", **FIT).fit(X, y)
    clf = TransformerClassifier(tiny_bert, **{**FIT, "max_epochs": 1}).fit(X, y).set_params(quantize="int4")
    with pytest.raises(InvalidParameterError, match="quantize"):
        clf.predict(X)


def test_int8_with_lora_merges_the_adapters(tiny_bert, toy_data):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, finetune="lora", finetune__rank=2, **FIT).fit(X, y)
    fp32 = clf.predict_proba(X)
    int8 = clf.set_params(quantize="int8").predict_proba(X)
    np.testing.assert_allclose(int8, fp32, atol=0.05)
    assert not any("lora" in n for n, _ in clf._inference_module()[0].named_modules())


def test_fit_time_settings_do_not_depend_on_when_int8_was_set(tiny_bert, toy_data):
    X, y = toy_data
    params = dict(threshold="tuned", validation_fraction=0.3, **FIT)
    before = TransformerClassifier(tiny_bert, quantize="int8", **params).fit(X, y)
    after = TransformerClassifier(tiny_bert, **params).fit(X, y)
    np.testing.assert_array_equal(before.logit_offsets_, after.logit_offsets_)  # tuned on float32 scores
    assert before.validation_report_ == after.validation_report_


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_int8_on_a_cuda_model_warns_and_predicts_without_int8(tiny_bert, toy_data):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, **{**FIT, "device": "cuda"}).fit(X, y)
    fp32 = clf.predict_proba(X)
    with pytest.warns(UserWarning, match="runs on the CPU only.*device='cpu'"):
        np.testing.assert_array_equal(clf.set_params(quantize="int8").predict_proba(X), fp32)

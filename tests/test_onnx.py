"""``quantize="onnx-int8"``: the encoder exported to ONNX and run by ONNX Runtime with int8 weights."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from skimb import TransformerClassifier, TransformerTokenClassifier
from skimb.backbones._onnx import OnnxEncoder, onnx_int8_module

from conftest import make_ner

pytest.importorskip("onnxruntime")
# int8 prediction runs on the CPU: these models are fitted there whatever the machine has
FIT = dict(max_epochs=4, batch_size=8, lr=5e-3, random_state=0, device="cpu")


def test_onnx_int8_prediction_is_close_to_float32(tiny_bert, toy_data):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, **FIT).fit(X, y)
    fp32 = clf.predict_proba(X)
    clf.set_params(quantize="onnx-int8")  # no refit: prediction only
    onnx = clf.predict_proba(X)
    assert not np.array_equal(onnx, fp32)  # the ONNX path ran
    np.testing.assert_allclose(onnx, fp32, atol=0.05)
    assert (onnx.argmax(1) == fp32.argmax(1)).mean() >= 0.95
    module, device, variant = clf._inference_module()
    assert isinstance(module.encoder, OnnxEncoder) and (device, variant) == ("cpu", "onnx-int8")
    assert clf._inference_module()[0] is module  # built once
    assert isinstance(clf.net_.module_.encoder.backbone, torch.nn.Module)  # the fitted model is untouched
    # activations are quantised per batch: another batch moves the scores by less than 1e-3
    np.testing.assert_allclose(clf.predict_proba(X[:3]), onnx[:3], atol=1e-3)


def test_onnx_float_graph_equals_the_torch_encoder(tiny_bert, toy_data, monkeypatch):
    # without the int8 step the exported graph computes what torch computes, padding or not
    import onnxruntime.quantization as q

    monkeypatch.setattr(q, "quantize_dynamic", lambda src, dst, **kw: __import__("shutil").copyfile(src, dst))
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, **FIT).fit(X, y)
    expected = clf.predict_proba(X)
    np.testing.assert_allclose(clf.set_params(quantize="onnx-int8").predict_proba(X), expected, atol=1e-5)


def test_onnx_int8_for_tokens_and_pickling(tiny_bert):
    X, y = make_ner(30)
    ner = TransformerTokenClassifier(tiny_bert, quantize="onnx-int8", max_length=32, **FIT).fit(X, y)
    pred = ner.predict(X)
    assert [len(p) for p in pred] == [len(s) for s in X]
    restored = pickle.loads(pickle.dumps(ner))  # the session is rebuilt, not pickled
    assert restored.predict(X) == pred


def test_onnx_int8_leaves_the_callers_logging_as_it_was(tiny_bert):
    # ONNX Runtime's quantiser warns through the root logger, which installs a stderr handler on it
    # where there is none: the script's own logging.basicConfig(level=logging.INFO) then did nothing.
    # In a fresh process: pytest's capture gives the root logger handlers of its own.
    script = textwrap.dedent(f"""
        import logging
        from skimb import TransformerClassifier
        clf = TransformerClassifier({tiny_bert!r}, quantize="onnx-int8", max_epochs=1, device="cpu")
        clf.fit(["flood water rising", "donate money now", "the river flood", "money to donate"], [0, 1, 0, 1])
        clf.predict(["flood"])
        print(logging.getLogger().handlers)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert "pre-processing" not in done.stderr


def test_onnx_refuses_class_adapters_inside_the_backbone(tiny_bert, toy_data):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, head="calora", head__layers="last", head__epochs=1,
                                quantize="onnx-int8", **FIT).fit(X, y)
    with pytest.raises(ValueError, match="cannot export class adapters inside the backbone"):
        clf.predict(X)


def test_missing_onnxruntime_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(ImportError, match=r"pip install 'skimb\[onnx\]'"):
        onnx_int8_module(torch.nn.Module())

"""Layer-wise learning-rate decay (``finetune__layer_decay``)."""

from __future__ import annotations

import numpy as np
import pytest

from skimb import TransformerClassifier, TransformerTokenClassifier
from skimb.backbones import FullFinetune, LoRAFinetune
from skimb.backbones._finetune import layer_lr_scales
from skimb.utils._param_validation import InvalidParameterError

from conftest import make_ner, optimizer_group_lrs

FAST = dict(max_epochs=1, batch_size=8, random_state=0)


def test_each_layer_trains_at_its_decayed_rate(tiny_bert, toy_data):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, lr=1e-3, finetune=FullFinetune(layer_decay=0.5), **FAST).fit(X, y)
    groups = optimizer_group_lrs(clf)
    top, bottom = "encoder.backbone.encoder.layer.1.", "encoder.backbone.encoder.layer.0."
    # the tiny BERT has 2 layers: the top at 0.5x, the bottom at 0.25x, the embeddings at 0.125x
    assert groups[top + "attention.self.query.weight"] == (pytest.approx(5e-4), 0.01)
    assert groups[top + "attention.self.query.bias"] == (pytest.approx(5e-4), 0.0)
    assert groups[top + "output.LayerNorm.weight"] == (pytest.approx(5e-4), 0.0)
    assert groups[bottom + "intermediate.dense.weight"] == (pytest.approx(2.5e-4), 0.01)
    assert groups["encoder.backbone.embeddings.word_embeddings.weight"] == (pytest.approx(1.25e-4), 0.01)
    assert groups["encoder.backbone.embeddings.LayerNorm.bias"] == (pytest.approx(1.25e-4), 0.0)
    assert groups["head.weight"] == (pytest.approx(1e-3), 0.01)
    assert groups["head.bias"] == (pytest.approx(1e-3), 0.0)
    every_layer = [n for n in groups if ".layer." in n or ".embeddings." in n]
    assert all(groups[n][0] < 1e-3 for n in every_layer)


def test_the_head_multiplier_and_a_crf_keep_their_rates(tiny_bert):
    X, y = make_ner(24)
    tagger = TransformerTokenClassifier(tiny_bert, lr=1e-3, decoding="crf", head_lr_multiplier=2,
                                        finetune=FullFinetune(layer_decay=0.5), **FAST).fit(X, y)
    groups = optimizer_group_lrs(tagger)
    assert groups["head.weight"][0] == pytest.approx(2e-3)
    crf = [v for n, v in groups.items() if n.startswith("crf.")]
    assert crf and all(lr == pytest.approx(1e-3 * tagger.net_.module_.crf.lr_multiplier) for lr, _ in crf)
    assert groups["encoder.backbone.encoder.layer.0.output.dense.weight"][0] == pytest.approx(2.5e-4)


def test_decay_one_is_the_plain_optimizer(tiny_bert, toy_data):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, lr=1e-3, finetune=FullFinetune(layer_decay=1.0), **FAST).fit(X, y)
    assert all(lr == pytest.approx(1e-3) for lr, _ in optimizer_group_lrs(clf).values())
    assert len(clf.net_.optimizer_.param_groups) == 3  # no weight decay on biases, nor on LayerNorm; the rest


def test_decay_changes_the_model_and_is_reached_by_routing(tiny_bert, toy_data):
    X, y = toy_data
    plain = TransformerClassifier(tiny_bert, lr=1e-3, **FAST).fit(X, y)
    routed = TransformerClassifier(tiny_bert, lr=1e-3, finetune="full", **FAST)
    routed.set_params(finetune__layer_decay=0.5).fit(X, y)
    assert routed.finetune_.layer_decay == 0.5
    assert not np.allclose(plain.predict_proba(X), routed.predict_proba(X))


def test_lora_adapters_decay_by_layer(tiny_bert, toy_data):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, lr=1e-3, finetune=LoRAFinetune(rank=2, layer_decay=0.5),
                                **FAST).fit(X, y)
    lora = {n: lr for n, (lr, _) in optimizer_group_lrs(clf).items() if "lora_" in n}
    assert lora
    for name, lr in lora.items():
        assert lr == pytest.approx(5e-4 if ".layer.1." in name else 2.5e-4), name


@pytest.mark.parametrize("bad", [0, -0.5, 1.5, "fast"])
def test_bad_decay_is_rejected_before_training(tiny_bert, toy_data, backbone_must_not_load, bad):
    X, y = toy_data
    with pytest.raises(InvalidParameterError, match="layer_decay"):
        TransformerClassifier(tiny_bert, finetune=FullFinetune(layer_decay=bad), **FAST).fit(X, y)


def test_scales_follow_the_layer_numbers_not_the_name_order():
    names = [f"encoder.backbone.encoder.layer.{i}.w" for i in (10, 2, 0, 1, 3, 4, 5, 6, 7, 8, 9, 11)]
    scales = dict(layer_lr_scales(names + ["head.weight"], 0.9))
    assert scales["encoder.backbone.encoder.layer.11.*"] == pytest.approx(0.9)
    assert scales["encoder.backbone.encoder.layer.2.*"] == pytest.approx(0.9 ** 10)
    assert "encoder.backbone.encoder.layer.1.*" in scales and len(scales) == 12  # no embeddings named
    assert layer_lr_scales(["encoder.backbone.pooler.dense.weight"], 0.9) == []


def test_unknown_layout_warns_that_the_decay_is_ignored(tiny_bert, toy_data, monkeypatch):
    assert FullFinetune(layer_decay=0.8).layer_lr_scales(["encoder.backbone.mixer.weight"]) == []
    assert FullFinetune().layer_lr_scales(["encoder.backbone.encoder.layer.0.w"]) == []  # no decay
    monkeypatch.setattr("skimb.backbones._finetune._LAYER", __import__("re").compile("^no layer here"))
    X, y = toy_data
    with pytest.warns(UserWarning, match=r"finetune__layer_decay=0.8 is ignored: no numbered layer .*every "
                                         r"weight trains at lr"):
        clf = TransformerClassifier(tiny_bert, lr=1e-3, finetune=FullFinetune(layer_decay=0.8), **FAST).fit(X, y)
    assert all(lr == pytest.approx(1e-3) for lr, _ in optimizer_group_lrs(clf).values())

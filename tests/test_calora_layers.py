"""CALoRA beyond the head (``head__layers``): class-routed adapters on backbone ``nn.Linear`` layers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from torch import nn

from skimb import TransformerClassifier, TransformerTokenClassifier
from skimb.backbones import SequenceClassifier, TextEncoder
from skimb.heads import CALoRAConfig, ClassRoutedLoRA, route_from_logits
from skimb.heads.calora.backbone import LayerRouting, RoutedLinear, install_routed_layers, select_linear_layers
from skimb.utils._param_validation import InvalidParameterError

from conftest import make_ner

FAST = dict(max_epochs=2, batch_size=8, random_state=0, head="calora")
LAYERS = dict(head__layers="last", head__epochs=3, head__layer_epochs=2, head__layer_lr=5e-3)

pytestmark = pytest.mark.usefixtures("empty_stage1_cache")


def _tiny_bert_model(layers=2):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    return BertModel(BertConfig(hidden_size=8, num_hidden_layers=layers, num_attention_heads=2,
                                intermediate_size=16, vocab_size=30, max_position_embeddings=32))


def _batch(n=4, length=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 30, (n, length), generator=g)
    mask = torch.ones_like(ids)
    mask[0, -2:] = 0  # some padding
    return ids, mask


def test_routed_linear_is_the_frozen_layer_plus_the_routed_classes_adapters():
    torch.manual_seed(1)
    base = nn.Linear(5, 4)
    config = CALoRAConfig(n_classes=3, rank=2, k=2)
    routing = LayerRouting(config, nn.Linear(4, 3))
    layer = RoutedLinear(base, config, routing)
    with torch.no_grad():
        layer.lora.lora_B.normal_()
    x = torch.randn(2, 7, 5)  # a batch of 2 sequences of 7 tokens
    routing.route = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    A = layer.lora.lora_A.detach().reshape(3, 2, 5)
    B = layer.lora.lora_B.detach().reshape(4, 3, 2)
    expected = base(x).detach().clone()
    for i, classes in enumerate([(0, 2), (1,)]):  # h = W0 x + sum over routed classes of B_c A_c x
        for c in classes:
            expected[i] += x[i] @ A[c].T @ B[:, c].T
    torch.testing.assert_close(layer(x).detach(), expected)
    routing.route = None  # no route: the frozen layer
    assert torch.equal(layer(x), base(x))


def test_select_linear_layers_finds_the_last_block_and_named_layers():
    bert = _tiny_bert_model(layers=3)
    last = select_linear_layers(bert, "last")
    assert len(last) == 6 and all(name.startswith("encoder.layer.2.") for name in last)
    assert select_linear_layers(bert, ["intermediate.dense"]) == [f"encoder.layer.{i}.intermediate.dense" for i in range(3)]
    assert len(select_linear_layers(bert, ["output.dense"])) == 6  # a dotted ending: attention.output.dense too
    with pytest.raises(ValueError, match="'querry' names no nn.Linear layer.*encoder.layer.2.output.dense"):
        select_linear_layers(bert, ["querry"])


def test_fresh_adapters_leave_the_model_unchanged_and_routes_come_from_the_frozen_model():
    torch.manual_seed(0)
    module = SequenceClassifier(TextEncoder(_tiny_bert_model()), 3).eval()
    ids, mask = _batch()
    with torch.no_grad():
        frozen = module(ids, mask)
    config = CALoRAConfig(n_classes=3, rank=2, k=2)
    routing = install_routed_layers(module, config, select_linear_layers(module.encoder.backbone, "last"),
                                    generator=torch.Generator().manual_seed(0))
    module.eval()
    with torch.no_grad():
        torch.testing.assert_close(module(ids, mask), frozen)  # B = 0 everywhere
        for m in module.modules():
            if isinstance(m, ClassRoutedLoRA):
                m.lora_B.normal_()
        seen = []
        original = routing.take
        routing.take = lambda n: seen.append(routing.route.clone()) or original(n)
        adapted = module(ids, mask)
    assert not torch.allclose(adapted, frozen)
    torch.testing.assert_close(seen[0], route_from_logits(frozen, "topk", 2))  # the head gets the frozen ranking
    assert routing.route is None  # taken by the head
    # by hand: the whole adapted pass with that route preset
    with torch.no_grad():
        routing.preset = seen[0]
        preset = module(ids, mask)
        routing.preset = None
    torch.testing.assert_close(adapted, preset)
    # the first batch checked the shortcut (the second pass from the last block's input): exact for BERT
    assert routing.first_block == 1 and routing.resume is True
    calls = []
    hook = module.encoder.backbone.embeddings.register_forward_hook(lambda *a: calls.append(1))
    with torch.no_grad():
        resumed = module(ids, mask)
    hook.remove()
    assert len(calls) == 1  # one pass through the embeddings and the unadapted blocks
    torch.testing.assert_close(resumed, preset)


def test_take_ignores_a_route_of_another_batch():
    routing = LayerRouting(CALoRAConfig(n_classes=2, rank=1, k=1), nn.Linear(3, 2))
    routing.route = torch.ones(4, 2)
    assert routing.take(3) is None and routing.route is None


@pytest.fixture(scope="module")
def fitted(tiny_bert):
    from conftest import make_toy_texts
    from skimb.training import stage1_cache

    X, y = make_toy_texts()
    stage1_cache.clear()
    head_only = TransformerClassifier(tiny_bert, **FAST, head__epochs=LAYERS["head__epochs"]).fit(X, y)
    layered = TransformerClassifier(tiny_bert, **FAST, **LAYERS).fit(X, y)
    stage1_cache.clear()
    return X, y, head_only, layered


def test_stage2_shares_stage1_and_trains_only_the_adapters(fitted):
    X, y, head_only, layered = fitted
    assert layered.stage1_cached_ and not head_only.stage1_cached_
    assert list(layered.routed_layers_) == select_linear_layers(layered.net_.module_.encoder.backbone.__class__(
        layered.net_.module_.encoder.backbone.config), "last")
    stage1 = {k: v for k, v in head_only.net_.module_.state_dict().items() if "lora_" not in k}
    state = layered.net_.module_.state_dict()
    changed = 0
    for name, value in state.items():
        if "lora_" in name:
            changed += int(name.endswith("lora_B") and bool(value.abs().sum() > 0))
            continue
        original = name.replace(".lora.base.", ".").replace("head.layer.base.", "head.base.")
        assert torch.equal(value, stage1[original]), name  # every stage-1 weight, bitwise
    assert changed == 7  # the 6 linear layers of the last block and the head
    assert all(not p.requires_grad for n, p in layered.net_.module_.named_parameters() if "lora_" not in n)


def test_head_adapters_train_first_as_head_only_calora_then_stay_frozen(fitted):
    X, y, head_only, layered = fitted
    trained, routed = head_only.net_.module_.head, layered.net_.module_.head.layer
    assert torch.equal(routed.lora_A, trained.lora_A) and torch.equal(routed.lora_B, trained.lora_B)
    backbone = [m.lora for m in layered.net_.module_.modules() if isinstance(m, RoutedLinear)]
    assert len(backbone) == 6 and all(bool(m.lora_B.abs().sum() > 0) for m in backbone)


def test_layer_settings_without_layers_warn(tiny_bert, toy_data):
    X, y = toy_data
    with pytest.warns(UserWarning, match="layer_epochs.*layers=None"):
        TransformerClassifier(tiny_bert, **FAST, head__epochs=1, head__layer_epochs=3).fit(X, y)


def test_layered_predictions_are_consistent(fitted):
    X, y, head_only, layered = fitted
    proba = layered.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    assert not np.allclose(proba, head_only.predict_proba(X))  # the backbone's adapters count
    assert set(layered.predict(X)) <= set(layered.classes_)
    np.testing.assert_allclose(layered.predict_proba(X[:5]), proba[:5], rtol=1e-5, atol=1e-6)  # batch-independent
    again = pickle.loads(pickle.dumps(layered))
    np.testing.assert_array_equal(again.predict_proba(X), proba)


def test_layered_model_saves_and_loads(fitted, tmp_path):
    X, y, head_only, layered = fitted
    layered.save_pretrained(tmp_path / "m")
    loaded = TransformerClassifier.load_pretrained(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_proba(X), layered.predict_proba(X), rtol=1e-5, atol=1e-6)
    assert list(loaded.routed_layers_) == list(layered.routed_layers_)


def test_layered_model_predicts_in_int8(fitted):
    X, y, head_only, layered = fitted
    est = clone(layered).set_params(quantize="int8")
    est.__dict__.update({k: v for k, v in vars(layered).items() if k.endswith("_")})
    int8 = est.predict_proba(X)
    assert np.abs(int8 - layered.predict_proba(X)).max() < 0.05
    q = est._inference_module()[0]
    assert q.head.routing is q.encoder.routing  # one shared route after quantisation


def test_frozen_backbone_stage1_with_layered_adapters(tiny_bert, toy_data):
    X, y = toy_data
    head_only = TransformerClassifier(tiny_bert, finetune="head", **FAST).fit(X, y)
    layered = TransformerClassifier(tiny_bert, finetune="head", **FAST, **LAYERS).fit(X, y)
    assert layered.stage1_cached_
    # the frozen-feature cache holds the stage-1 features; a layered model must not predict from them
    assert not np.allclose(layered.predict_proba(X), head_only.predict_proba(X))
    assert not np.allclose(layered.embed(X[:4]), head_only.embed(X[:4]))


def test_multilabel_layered(tiny_bert, toy_data):
    X, y = toy_data
    Y = np.stack([y == "flood", y != "flood"], axis=1).astype(int)
    Y[:5] = 1
    est = TransformerClassifier(tiny_bert, **FAST, **LAYERS, head__k=1).fit(X, Y)
    assert est.predict(X).shape == Y.shape and len(est.routed_layers_) == 6


def test_bad_layer_settings_fail_before_training(tiny_bert, toy_data):
    X, y = toy_data
    with pytest.raises(InvalidParameterError, match="layers"):
        TransformerClassifier(tiny_bert, **FAST, head__layers="first").fit(X, y)
    est = TransformerClassifier(tiny_bert, **FAST, head__layers=["no_such_layer"])
    with pytest.raises(ValueError, match="'no_such_layer' names no nn.Linear layer"):
        est.fit(X, y)
    assert not hasattr(est, "net_")
    Xt, yt = make_ner(12)
    with pytest.raises(ValueError, match="text classification"):
        TransformerTokenClassifier(tiny_bert, **FAST, head__layers="last").fit(Xt, yt)


def test_layers_under_lora_are_refused_before_the_backbone_loads(tiny_bert, toy_data, backbone_must_not_load):
    X, y = toy_data
    with pytest.raises(ValueError, match="which finetune='lora' wraps in adapter layers: use finetune='full'"):
        TransformerClassifier(tiny_bert, **FAST, finetune="lora", head__layers="last").fit(X, y)


def test_layers_is_a_routed_stage2_parameter(tiny_bert):
    est = TransformerClassifier(tiny_bert, head="calora", head__layers="last")
    assert est.get_params()["head__layers"] == "last"
    assert clone(est).get_params()["head__layers"] == "last"
    assert "layers" in type(est._check_params()["head"])._stage2_params  # a search over it shares stage 1


def test_the_shortcut_is_dropped_where_it_is_not_exact():
    torch.manual_seed(0)
    module = SequenceClassifier(TextEncoder(_tiny_bert_model()), 3).eval()
    routing = install_routed_layers(module, CALoRAConfig(n_classes=3, rank=2, k=2),
                                    select_linear_layers(module.encoder.backbone, "last"))
    resume = routing._resume
    routing._resume = lambda *a: resume(*a) + 1.0  # a backbone with work after its blocks, say
    ids, mask = _batch()
    with torch.no_grad():
        first, second = module(ids, mask), module(ids, mask)
        routing.preset = route_from_logits(first, "topk", 2)  # fresh adapters: the frozen model's ranking
        full = module(ids, mask)
    assert routing.resume is False
    torch.testing.assert_close(first, full)
    torch.testing.assert_close(second, full)


def test_cached_and_uncached_stage1_give_the_same_layered_model(fitted, tiny_bert):
    from skimb.training import stage1_cache

    X, y, head_only, layered = fitted  # layered took its stage 1 from the cache
    stage1_cache.clear()
    fresh = TransformerClassifier(tiny_bert, **FAST, **LAYERS).fit(X, y)
    assert not fresh.stage1_cached_
    np.testing.assert_array_equal(fresh.predict_proba(X), layered.predict_proba(X))
    fresh.fit(X, y)  # a refit: from the cache now, the same model
    assert fresh.stage1_cached_
    np.testing.assert_array_equal(fresh.predict_proba(X), layered.predict_proba(X))


def test_a_non_finite_layer_loss_keeps_the_last_finite_adapters(tiny_bert, toy_data):
    """docs/estimators.md: a non-finite loss stops training before the bad step, CALoRA's second stage
    likewise, and the model keeps the last finite weights. The backbone adapters were checked once per
    epoch, after the optimizer had stepped on the NaN gradients: they were left NaN."""
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, **{**FAST, **LAYERS, "head__layer_lr": 1e20, "max_epochs": 1})
    with pytest.raises(FloatingPointError, match=r"non-finite stage-2 loss .*; lower head__layer_lr\.$"):
        clf.fit(X, y)
    assert all(torch.isfinite(p).all() for p in clf.net_.module_.parameters())

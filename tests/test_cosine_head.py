"""``head="cosine"``: a normalised classifier, the head LDAM's scale assumes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skimb import TransformerClassifier, TransformerTokenClassifier
from skimb.heads import CosineLinear

from conftest import make_ner

FAST = dict(max_epochs=2, batch_size=8, random_state=0)


def test_logits_are_scaled_cosines():
    w = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    layer = CosineLinear(w, scale=7.0)
    with torch.no_grad():
        got = layer(x).numpy()
    cos = (x.numpy() / np.linalg.norm(x.numpy(), axis=1, keepdims=True)) @ \
        (w.numpy() / np.linalg.norm(w.numpy(), axis=1, keepdims=True)).T
    np.testing.assert_allclose(got, 7.0 * cos, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # the weight norm does not matter: only directions do
        np.testing.assert_allclose(CosineLinear(10 * w, scale=7.0)(x).numpy(), got, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loss,expected_scale", [("ce", 16.0), ("ldam", 1.0)])
def test_auto_scale_leaves_scaling_to_ldam(tiny_bert, toy_data, loss, expected_scale):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, head="cosine", loss=loss, **FAST).fit(X, y)
    head = clf.net_.module_.head
    assert isinstance(head, CosineLinear) and float(head.scale) == expected_scale
    assert [n for n, _ in head.named_parameters()] == ["weight"]  # no bias


def test_cosine_head_learns_round_trips_and_never_shares_a_linear_stage1(tiny_bert, toy_data, tmp_path):
    from skimb.training import stage1_cache

    X, y = toy_data
    stage1_cache.clear()
    clf = TransformerClassifier(tiny_bert, head="cosine", max_epochs=6, batch_size=8, lr=5e-3,
                                random_state=0).fit(X, y)
    assert (clf.predict(X) == y).mean() > 0.8
    assert not clf.stage1_cached_
    clf.save_pretrained(tmp_path / "cos")
    loaded = TransformerClassifier.load_pretrained(tmp_path / "cos")
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), rtol=1e-5, atol=1e-6)
    TransformerClassifier(tiny_bert, head="calora", **FAST).fit(X, y)  # caches a linear stage 1
    again = TransformerClassifier(tiny_bert, head="cosine", **FAST).fit(X, y)
    assert not again.stage1_cached_
    stage1_cache.clear()


def test_cosine_head_on_tokens_and_multilabel(tiny_bert, toy_data):
    X, y = make_ner(32)
    tok = TransformerTokenClassifier(tiny_bert, head="cosine", max_length=32, **FAST).fit(X, y)
    assert [len(p) for p in tok.predict(X)] == [len(s) for s in X]
    Xt, yt = toy_data
    Y = np.stack([yt == yt[0], yt == yt[-1]], axis=1).astype(int)
    assert TransformerClassifier(tiny_bert, head="cosine", **FAST).fit(Xt, Y).predict(Xt).shape == Y.shape


def test_auto_scale_sees_ldam_inside_the_token_tag_weighting(tiny_bert):
    X, y = make_ner(32)
    tok = TransformerTokenClassifier(tiny_bert, head="cosine", loss="ldam", class_weight="balanced", max_length=32,
                                     **FAST).fit(X, y)
    assert float(tok.net_.module_.head.scale) == 1.0

"""Row weights in the second-stage heads (cRT), label-list targets and where fit warnings point."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skimb import TransformerClassifier
from skimb.heads._components import class_balanced_row_weights
from skimb.heads._decoupled import CRTHead

from conftest import make_toy_texts

pytestmark = pytest.mark.usefixtures("empty_stage1_cache")


def _clf(backbone, **params):
    return TransformerClassifier(backbone=backbone, max_epochs=1, batch_size=8, random_state=0, device="cpu",
                                 max_length=16, **params)


# -- cRT: sample_weight counts within each class ----------------------------------------------------------------
def test_row_weights_balance_the_classes_once_and_keep_the_variation_within_them():
    y = torch.tensor([0, 0, 0, 1, -100])
    plain = class_balanced_row_weights(y, 2)
    per_class = torch.tensor([5.0, 5.0, 5.0, 0.5, 1.0])  # class_weight-like: constant within a class
    torch.testing.assert_close(class_balanced_row_weights(y, 2, sample_weight=per_class), plain)
    varied = class_balanced_row_weights(y, 2, sample_weight=torch.tensor([0.0, 1.0, 2.0, 3.0, 1.0]))
    torch.testing.assert_close(varied, torch.tensor([0.0, 2 / 3, 4 / 3, 2.0, 0.0]))
    assert varied[:3].sum() == pytest.approx(plain[:3].sum())  # the class keeps its share


def test_multilabel_row_weights_normalise_within_the_labels():
    Y = torch.tensor([[1, 0], [1, 0], [0, 1], [0, 0]])
    plain = class_balanced_row_weights(Y, 2)
    torch.testing.assert_close(class_balanced_row_weights(Y, 2, sample_weight=torch.full((4,), 3.0)), plain)
    w = class_balanced_row_weights(Y, 2, sample_weight=torch.tensor([0.0, 1.0, 1.0, 1.0]))
    # label 0's share, half of each row's before, now on its one row of positive weight
    torch.testing.assert_close(w, torch.tensor([0.0, 4 / 3, 4 / 3, 4 / 3]))
    torch.testing.assert_close(plain, torch.tensor([2 / 3, 2 / 3, 4 / 3, 4 / 3]))


def _crt_stage2(features, targets, weights):
    torch.manual_seed(0)
    module = torch.nn.Module()
    module.head = torch.nn.Linear(features.shape[1], 3)
    CRTHead(epochs=5, lr=0.1, batch_size=1_000).fit_stage2(
        module, features, targets, weights, loss_fn=torch.nn.CrossEntropyLoss(reduction="none"), device="cpu",
        seed=0, batch_size=8, multilabel=False)
    return module.head


def test_crt_stage2_drops_the_rows_of_weight_zero():
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(30, 4, generator=gen)
    targets = torch.tensor([0] * 15 + [1] * 10 + [2] * 5)
    weights = torch.rand(30, generator=gen) * (torch.arange(30) % 3 != 0)  # zero on every third row
    weights[-1] = 0.0
    full = _crt_stage2(features, targets, weights)
    kept = weights > 0
    subset = _crt_stage2(features[kept], targets[kept], weights[kept])
    unweighted = _crt_stage2(features, targets, None)
    torch.testing.assert_close(full.weight, subset.weight, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(full.weight, unweighted.weight, atol=1e-3)


def test_crt_stage2_ignores_the_tokens_below_zero():
    gen = torch.Generator().manual_seed(1)
    features = torch.randn(12, 4, generator=gen)
    targets = torch.tensor([0, 1, 2, -100] * 3)
    weights = torch.tensor([1.0, 2.0, 1.0, 5.0] * 3)
    torch.testing.assert_close(_crt_stage2(features, targets, weights).weight,
                               _crt_stage2(features[targets >= 0], targets[targets >= 0],
                                           weights[targets >= 0]).weight)


def test_crt_follows_sample_weight(tiny_bert):
    X, y = make_toy_texts()
    sw = (np.arange(len(X)) % 2).astype(float)
    plain = _clf(tiny_bert, head="crt", finetune="head").fit(X, y)
    weighted = _clf(tiny_bert, head="crt", finetune="head").fit(X, y, sample_weight=sw)
    assert not np.allclose(plain.predict_proba(X), weighted.predict_proba(X), atol=1e-4)


# -- label lists and label sets as y ----------------------------------------------------------------------------
@pytest.mark.parametrize("y", [[["a", "b"], ["c"], []], [{"a"}, {"b"}, {"a", "c"}]], ids=["uneven-lists", "sets"])
def test_label_lists_and_sets_name_the_multilabel_binarizer(tiny_bert, y, backbone_must_not_load):
    X = ["flood water", "donate money", "injured people"]
    with pytest.raises(ValueError, match=r"y holds label lists .*use sklearn\.preprocessing\.MultiLabelBinarizer"):
        _clf(tiny_bert, finetune="head").fit(X, y)


def test_one_label_per_row_lists_still_fit_as_labels():
    from skimb._validation import check_labels

    np.testing.assert_array_equal(check_labels([["a"], ["b"], ["a"]]), ["a", "b", "a"])


# -- warnings point at the caller's line ------------------------------------------------------------------------
def test_fit_warnings_point_at_the_callers_line(tiny_bert):
    X, y = make_toy_texts((6, 4, 1))
    with pytest.warns(UserWarning) as record:
        _clf(tiny_bert, finetune="head", validation_fraction=0.3).fit(X, y)
    assert [w.filename for w in record if "have a single example" in str(w.message)] == [__file__]
    Y = np.zeros((len(X), 3), dtype=int)
    Y[:, 0], Y[::2, 1] = 1, 1  # label 2 has no positive
    with pytest.warns(UserWarning, match=r"labels \[2\] have no positive example in y") as record:
        _clf(tiny_bert, finetune="head").fit(X, Y)
    assert [w.filename for w in record if "no positive example" in str(w.message)] == [__file__]

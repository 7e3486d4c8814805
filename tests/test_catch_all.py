"""Catch-all classes: the ranking loss of dos Santos et al. (2015), the estimators' catch-all row
held at zero, and macro-F1 over the real classes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from skimb import TransformerClassifier
from skimb.losses import RankingLoss, make_loss
from skimb.metrics import real_class_f1_score


def _softplus(x):
    return math.log1p(math.exp(x))


def test_ranking_loss_matches_the_paper_by_hand():
    logits = torch.tensor([[1.0, 0.2, -0.3, 5.0], [0.4, -0.6, 0.1, 2.0], [-2.0, 0.5, 0.3, 9.0]])
    target = torch.tensor([0, 3, 1])
    loss = RankingLoss([4, 4, 4, 30], catch_all=3, gamma=2.0, m_plus=2.5, m_minus=0.5, reduction="none")
    g = 2.0
    expected = [
        _softplus(g * (2.5 - 1.0)) + _softplus(g * (0.5 + 0.2)),  # real: best wrong real is 0.2 (not 5.0)
        _softplus(g * (0.5 + 0.4)),                                # catch-all: push the best real (0.4) down
        _softplus(g * (2.5 - 0.5)) + _softplus(g * (0.5 + 0.3)),  # real: best wrong real is 0.3
    ]
    torch.testing.assert_close(loss(logits, target), torch.tensor(expected))
    # without a catch-all class every class is real: the 5.0 is the best wrong class of row 0
    plain = RankingLoss([4, 4, 4, 30], reduction="none")(logits, target)
    assert plain[0].item() == pytest.approx(_softplus(g * 1.5) + _softplus(g * 5.5), rel=1e-5)


def test_the_catch_all_logit_gets_no_gradient():
    logits = torch.randn(6, 4, requires_grad=True)
    RankingLoss([3, 3, 3, 9], catch_all=3)(logits, torch.tensor([0, 1, 2, 3, 3, 0])).backward()
    assert torch.all(logits.grad[:, 3] == 0) and torch.any(logits.grad[:, :3] != 0)


@pytest.mark.parametrize("params, match", [
    (dict(catch_all=4), r"catch_all must be a class index in \[0, 4\)"),
    (dict(gamma=0.0), "gamma must be > 0"),
    (dict(m_plus=float("nan")), "m_plus must be a finite number"),
])
def test_ranking_loss_errors(params, match):
    with pytest.raises(ValueError, match=match):
        RankingLoss([1, 1, 1, 1], **params)


def test_estimator_takes_the_catch_all_label_and_holds_its_logit_at_zero(tiny_bert, toy_data):
    X, y = toy_data  # "flood" is the large class: the catch-all here
    clf = TransformerClassifier(tiny_bert, loss="ranking", loss__catch_all="flood", max_epochs=3, batch_size=8,
                                lr=5e-3, random_state=0).fit(X, y)
    k = list(clf.classes_).index("flood")
    head = clf.net_.module_.head
    assert torch.all(head.weight[k] == 0) and head.bias[k] == 0
    logits = clf.decision_function(X)
    assert np.all(logits[:, k] == 0)
    # argmax predicts the catch-all class exactly where every real class scores below 0
    real = np.delete(logits, k, axis=1)
    np.testing.assert_array_equal(clf.predict(X) == "flood", (real < 0).all(axis=1))
    assert clf.score(X, y) > 0.6
    assert make_loss("ranking", task="multiclass", class_counts=[2, 2]).catch_all is None


def test_crt_stage2_holds_the_catch_all_row_at_zero():
    """cRT draws a fresh head: the ranking loss's catch-all row is zeroed there too, and stays 0 (no gradient)."""
    from skimb.heads import CRTHead

    torch.manual_seed(0)
    x = torch.randn(60, 4)
    y = torch.arange(60) % 3
    module = torch.nn.Module()
    module.head = torch.nn.Linear(4, 3)
    loss = make_loss("ranking", task="multiclass", class_counts=[20, 20, 20], loss__catch_all=1)
    CRTHead(epochs=3, lr=5e-2).fit_stage2(module, x, y, None, loss_fn=loss, device="cpu", seed=0, batch_size=16,
                                          multilabel=False)
    head = module.head
    assert torch.all(head.weight[1] == 0) and head.bias[1] == 0
    assert torch.all(head(x)[:, 1] == 0)
    assert torch.all(head.weight[[0, 2]] != 0)  # the real classes trained


def test_a_zero_row_of_the_cosine_head_scores_exactly_zero():
    from skimb.heads import CosineLinear

    layer = CosineLinear(torch.tensor([[0.0, 0.0], [3.0, 4.0]]), scale=16.0)
    x = torch.tensor([[1.0, 2.0], [0.0, 0.0], [-3.0, 1e-30]])
    out = layer(x)
    assert torch.all(out[:, 0] == 0) and torch.isfinite(out).all()
    out[:, 1].sum().backward()
    assert torch.all(layer.weight.grad[0] == 0)


@pytest.mark.parametrize("head", ["crt", "cosine"])
def test_the_catch_all_logit_is_zero_under_a_crt_or_cosine_head(tiny_bert, toy_data, head):
    """init_head zeroes the catch-all row of a cosine head too, and cRT's fresh head keeps it at zero."""
    X, y = toy_data
    extra = {"head__epochs": 2} if head == "crt" else {}
    clf = TransformerClassifier(tiny_bert, loss="ranking", loss__catch_all="flood", head=head, max_epochs=1,
                                batch_size=8, random_state=0, **extra).fit(X, y)
    k = list(clf.classes_).index("flood")
    weight = clf.net_.module_.head.weight
    assert torch.all(weight[k] == 0) and torch.any(weight != 0)
    assert getattr(clf.net_.module_.head, "bias", None) is None or clf.net_.module_.head.bias[k] == 0
    logits = clf.decision_function(X)
    assert np.all(logits[:, k] == 0) and np.any(logits != 0)


def test_unknown_catch_all_label_is_a_clear_error_before_training(tiny_bert, toy_data):
    X, y = toy_data
    with pytest.raises(ValueError, match=r"loss__catch_all='other' is not a class of y; the classes are"):
        TransformerClassifier(tiny_bert, loss="ranking", loss__catch_all="other", max_epochs=1).fit(X, y)


def test_real_class_f1_score():
    y_true = ["other", "fire", "fire", "flood", "other", "flood"]
    y_pred = ["fire", "fire", "other", "flood", "other", "flood"]
    fire, flood = 2 * 1 / (2 + 1 + 1), 1.0  # fire: 1 TP, 1 FP, 1 FN
    assert real_class_f1_score(y_true, y_pred, catch_all="other") == pytest.approx((fire + flood) / 2)
    with pytest.raises(ValueError, match="is not one of the labels"):
        real_class_f1_score(y_true, y_pred, catch_all="rain")


def test_weighted_ce_weights_only_the_real_classes(tiny_bert, toy_data):
    from skimb.losses import WeightedCrossEntropyLoss

    w = WeightedCrossEntropyLoss([90, 30, 10], catch_all=0).class_weight_
    torch.testing.assert_close(w, torch.tensor([1.0, 0.5, 1.5]))  # ICF over 30 and 10, mean 1; catch-all 1
    with pytest.raises(ValueError, match="catch_all must be a class index"):
        WeightedCrossEntropyLoss([90, 30], catch_all=2)
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, loss="weighted_ce", loss__catch_all="flood", max_epochs=1, batch_size=8,
                                random_state=0).fit(X, y)
    k = list(clf.classes_).index("flood")
    assert clf.loss_class_weight_[k] == 1.0

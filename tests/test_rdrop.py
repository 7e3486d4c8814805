"""R-Drop (training="rdrop"): the consistency term against hand computations, the step's loss and
gradient against two hand-run dropout passes, and the estimators with it on a tiny random BERT."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import assert_in_stage1_key, make_ner

from skimb import TransformerClassifier, TransformerTokenClassifier
from skimb.training import RDropNet, RDropTraining, TransformerNet, dropout_consistency

FAST = dict(max_epochs=1, batch_size=8, random_state=0, lr=5e-3)


class DropoutLinear(torch.nn.Module):
    """(B, 4) features to (B, 3) logits through dropout (each pass draws its own mask)."""

    def __init__(self):
        super().__init__()
        self.drop = torch.nn.Dropout(0.5)
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, features):
        return self.lin(self.drop(features))


class PerItemCE(torch.nn.Module):
    def forward(self, logits, target):
        return F.cross_entropy(logits, target, reduction="none")


def _batch(weights=None):
    gen = torch.Generator().manual_seed(1)
    X = {"features": torch.randn(6, 4, generator=gen)}
    if weights is not None:
        X["sample_weight"] = torch.as_tensor(weights, dtype=torch.float32)
    return X, torch.tensor([0, 0, 0, 1, 2, 2])


def _net(alpha, net_class=RDropNet):
    torch.manual_seed(0)
    kwargs = {} if net_class is TransformerNet else {"rdrop_alpha": alpha}
    return net_class(DropoutLinear, criterion=PerItemCE, optimizer=torch.optim.SGD, lr=0.0, batch_size=6,
                     train_split=None, **kwargs).initialize()


def _kl(p_log, q_log):
    return F.kl_div(q_log, p_log, log_target=True, reduction="none").sum(-1)  # KL(p ‖ q) per row


def test_consistency_is_the_mean_symmetric_kl():
    a, b = torch.randn(5, 4, generator=torch.Generator().manual_seed(0)), torch.randn(5, 4)
    la, lb = F.log_softmax(a, -1), F.log_softmax(b, -1)
    expected = ((_kl(la, lb) + _kl(lb, la)) / 2).mean()
    torch.testing.assert_close(dropout_consistency(a, b), expected)
    torch.testing.assert_close(dropout_consistency(b, a), expected)  # symmetric
    assert dropout_consistency(a, a).item() == pytest.approx(0.0, abs=1e-7)


def test_consistency_of_a_tagger_reads_the_labelled_tokens_only():
    a, b = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    b_far = b.clone()
    b_far[~mask] = 100.0  # padded positions: must not count
    torch.testing.assert_close(dropout_consistency(a, b_far, mask), dropout_consistency(a[mask], b[mask]))
    assert dropout_consistency(a, b, torch.zeros(2, 3, dtype=torch.bool)).item() == 0.0  # no labelled token


def test_multilabel_consistency_is_one_bernoulli_per_label():
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    pa, pb = torch.sigmoid(a), torch.sigmoid(b)

    def bernoulli_kl(p, q):
        return p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()

    # per (item, label), symmetric; averaged over labels (as the multi-label losses) and items
    expected = ((bernoulli_kl(pa, pb) + bernoulli_kl(pb, pa)) / 2).mean()
    torch.testing.assert_close(dropout_consistency(a, b, multilabel=True), expected)


@pytest.mark.parametrize("weights", [None, [1.0, 2.0, 0.5, 1.0, 3.0, 1.0]])
def test_the_step_is_two_dropout_passes_and_their_kl(weights):
    alpha = 2.0
    net = _net(alpha)
    module = copy.deepcopy(net.module_)
    X, y = _batch(weights)
    torch.manual_seed(7)
    out = net.train_step_single((X, y))
    torch.manual_seed(7)  # the same two dropout masks, by hand
    module.train()
    first, second = module(features=X["features"]), module(features=X["features"])
    assert not torch.equal(first, second)
    w = torch.ones(6) if weights is None else torch.as_tensor(weights)
    ce = ((F.cross_entropy(first, y, reduction="none") + F.cross_entropy(second, y, reduction="none")) / 2 * w).mean()
    la, lb = F.log_softmax(first, -1), F.log_softmax(second, -1)
    expected = ce + alpha * ((_kl(la, lb) + _kl(lb, la)) / 2).mean()
    torch.testing.assert_close(out["loss"], expected)
    expected.backward()
    for p, q in zip(net.module_.parameters(), module.parameters()):
        torch.testing.assert_close(p.grad, q.grad)


class BCEPerItem(torch.nn.Module):
    def forward(self, logits, target):
        return F.binary_cross_entropy_with_logits(logits, target.float(), reduction="none").mean(-1)


def test_a_multilabel_step_uses_the_bernoulli_kl():
    torch.manual_seed(0)
    net = RDropNet(DropoutLinear, criterion=BCEPerItem, optimizer=torch.optim.SGD, lr=0.0, batch_size=6,
                   train_split=None, rdrop_alpha=3.0, multilabel=True).initialize()
    module = copy.deepcopy(net.module_).train()
    X, _ = _batch()
    Y = torch.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 0], [0, 0, 0], [1, 0, 0]])
    torch.manual_seed(5)
    loss = net.train_step_single((X, Y))["loss"]
    torch.manual_seed(5)
    first, second = module(features=X["features"]), module(features=X["features"])
    bce = (BCEPerItem()(first, Y) + BCEPerItem()(second, Y)).mean() / 2
    torch.testing.assert_close(loss, bce + 3.0 * dropout_consistency(first, second, multilabel=True))
    # a softmax across the labels would be another number
    assert not torch.isclose(loss, bce + 3.0 * dropout_consistency(first, second))


def test_a_tagger_step_ignores_the_padded_tokens():
    X = {"features": torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(2))}
    y = torch.tensor([[0, 1, -100, -100], [2, -100, 1, -100]])
    losses = []
    for padded_value in (0.0, 50.0):
        torch.manual_seed(0)
        net = RDropNet(DropoutLinear, criterion=PerItemCE, optimizer=torch.optim.SGD, lr=0.0, batch_size=2,
                       train_split=None, label_pad_id=-100, rdrop_alpha=2.0).initialize()
        Xp = {"features": X["features"].clone()}
        Xp["features"][y == -100] = padded_value  # the padded tokens' features: must not matter
        torch.manual_seed(9)
        losses.append(net.train_step_single((Xp, y))["loss"].item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)


def test_alpha_zero_is_the_plain_step():
    X, y = _batch()
    torch.manual_seed(3)
    plain = _net(0.0, TransformerNet).train_step_single((X, y))["loss"]
    torch.manual_seed(3)
    assert _net(0.0).train_step_single((X, y))["loss"].item() == plain.item()


def test_a_non_finite_loss_raises_with_the_remedy():
    net = _net(1.0)
    X, y = _batch()
    X["features"] = X["features"] * float("nan")
    with pytest.raises(FloatingPointError, match="Lower the learning rate"):
        net.train_step_single((X, y))


def test_the_classifier_with_rdrop(tiny_bert, toy_data):
    X, y = toy_data
    plain = TransformerClassifier(tiny_bert, **FAST).fit(X, y)
    rdrop = TransformerClassifier(tiny_bert, training="rdrop", training__alpha=4.0, **FAST).fit(X, y)
    assert rdrop.get_params()["training__alpha"] == 4.0
    assert isinstance(rdrop.net_, RDropNet) and not rdrop.net_.multilabel
    assert not np.allclose(plain.predict_proba(X), rdrop.predict_proba(X))
    zero = TransformerClassifier(tiny_bert, training=RDropTraining(alpha=0.0), **FAST).fit(X, y)
    np.testing.assert_array_equal(zero.predict_proba(X), plain.predict_proba(X))  # alpha=0: plain, to the bit


def test_multilabel_and_tagger_fits(tiny_bert, toy_data):
    X, y = toy_data
    Y = np.stack([np.asarray(y) == c for c in np.unique(y)[:2]], axis=1).astype(int)
    multi = TransformerClassifier(tiny_bert, training="rdrop", **FAST).fit(X, Y)
    assert multi.net_.multilabel and multi.predict(X).shape == Y.shape
    sentences, tags = make_ner(24)
    tagger = TransformerTokenClassifier(tiny_bert, training="rdrop", **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        tagger.fit(sentences, tags)
    assert [len(t) for t in tagger.predict(sentences)] == [len(s) for s in sentences]


def test_it_warns_where_no_dropout_runs(tiny_bert, toy_data):
    X, y = toy_data
    # the backbone's dropout never runs on cached features: with the head's at 0, none does
    with pytest.warns(UserWarning, match="no dropout runs"):
        TransformerClassifier(tiny_bert, training="rdrop", finetune="head", dropout=0.0, **FAST).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TransformerClassifier(tiny_bert, training="rdrop", finetune="head", **FAST).fit(X, y)  # the head's dropout
        TransformerClassifier(tiny_bert, training="rdrop", dropout=0.0, **FAST).fit(X, y)  # the backbone's


def test_the_model_card_does_not_call_rdrop_a_reader_of_the_validation_split(tiny_bert, toy_data, tmp_path):
    X, y = toy_data
    kwargs = dict(validation_fraction=0.2, **FAST)
    for training, optimistic in (("rdrop", False), ("hamr", True)):
        est = TransformerClassifier(tiny_bert, training=training, **kwargs).fit(X, y)
        est.save_pretrained(tmp_path / training)
        card = (tmp_path / training / "README.md").read_text()
        assert ("these figures are optimistic" in card) == optimistic, training


@pytest.mark.usefixtures("backbone_must_not_load")
@pytest.mark.parametrize("training, name", [("rdrop", "alpha"), ("hamr", "rdrop_alpha")])
def test_bad_alpha_fails_before_the_backbone_loads(tiny_bert, toy_data, training, name):
    X, y = toy_data
    with pytest.raises(ValueError, match=f"training__{name}"):
        TransformerClassifier(tiny_bert, training=training, **{f"training__{name}": -0.5}, **FAST).fit(X, y)


@pytest.mark.usefixtures("empty_stage1_cache")
def test_same_parameters_same_model_cached_uncached_and_refit(tiny_bert, toy_data):
    X, y = toy_data
    params = dict(training="rdrop", training__alpha=2.0, head="calora", head__k=2, head__epochs=1, **FAST)
    miss = TransformerClassifier(tiny_bert, **params).fit(X, y)
    hit = TransformerClassifier(tiny_bert, **params).fit(X, y)
    assert not miss.stage1_cached_ and hit.stage1_cached_
    np.testing.assert_array_equal(hit.predict_proba(X), miss.predict_proba(X))
    other = TransformerClassifier(tiny_bert, **{**params, "training__alpha": 1.0}).fit(X, y)
    assert not other.stage1_cached_  # alpha is part of the stage-1 key
    first = TransformerClassifier(tiny_bert, training="rdrop", **FAST)
    np.testing.assert_array_equal(first.fit(X, y).fit(X, y).predict_proba(X),
                                  TransformerClassifier(tiny_bert, training="rdrop", **FAST).fit(X, y).predict_proba(X))


# -- HAMR with R-Drop (training="hamr", training__rdrop_alpha > 0) --------------------------------
HAMR_FAST = dict(training="hamr", validation_fraction=0.25, **FAST)


def test_hamr_without_wnet_steps_as_rdrop(tiny_bert, toy_data):
    X, y = toy_data
    rdrop = TransformerClassifier(tiny_bert, training="rdrop", training__alpha=2.0, **FAST).fit(X, y)
    hamr = TransformerClassifier(tiny_bert, training="hamr", training__meta_weighting=False,
                                 training__resampling=False, training__rdrop_alpha=2.0, **FAST).fit(X, y)
    np.testing.assert_array_equal(hamr.predict_proba(X), rdrop.predict_proba(X))


def _without_dropout(tiny_bert, directory):
    """The tiny BERT with its dropout probabilities at 0."""
    from transformers import AutoTokenizer, BertModel
    BertModel.from_pretrained(tiny_bert, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
                              ).save_pretrained(directory)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(directory)
    return str(directory)


@pytest.mark.parametrize("task", ["multiclass", "multilabel", "token"])
def test_hamr_rdrop_adds_a_second_pass_that_only_dropout_can_change(tiny_bert, toy_data, task, tmp_path):
    X, y = toy_data
    if task == "multilabel":
        y = np.stack([np.asarray(y) == c for c in np.unique(y)[:2]], axis=1).astype(int)
    if task == "token":
        X, y = make_ner(24)
    est = TransformerTokenClassifier if task == "token" else TransformerClassifier

    def scores(backbone=tiny_bert, **params):
        model = est(backbone, **{**HAMR_FAST, **params}).fit(X, y)
        assert isinstance(model.net_.hamr.wnet, torch.nn.Module)  # WNet ran
        return model.predict_proba(X) if task != "token" else np.concatenate(
            [np.concatenate(p) for p in model.predict_proba(X)])

    hamr, with_rdrop = scores(), scores(training__rdrop_alpha=1.0)
    assert not np.allclose(hamr, with_rdrop)
    still = _without_dropout(tiny_bert, tmp_path / "still")
    with pytest.warns(UserWarning, match="training__rdrop_alpha > 0: no dropout runs"):
        no_dropout = scores(still, training__rdrop_alpha=1.0, dropout=0.0)
    # without dropout the second pass repeats the first: the consistency term is 0 and the mean of
    # the two passes' weighted losses is HAMR's
    np.testing.assert_allclose(no_dropout, scores(still, dropout=0.0), rtol=0, atol=1e-6)


@pytest.mark.usefixtures("empty_stage1_cache")
def test_hamr_rdrop_alpha_is_part_of_the_stage1_key(tiny_bert, toy_data):
    assert_in_stage1_key(tiny_bert, *toy_data, dict(training__rdrop_alpha=1.0, **HAMR_FAST), "training__rdrop_alpha", 0.0)


def test_hamr_non_finite_update_loss_stops_before_the_step(tiny_bert, toy_data, monkeypatch):
    # the update's loss (not the meta step's) turns NaN at the third step: HAMR raises the shared
    # message and the model keeps the weights of the second step
    from skorch.callbacks import Callback

    X, y = toy_data
    real, calls = RDropNet.consistency, []

    def nan_at_the_third_step(self, *args, **kwargs):
        calls.append(1)
        out = real(self, *args, **kwargs)
        return out * float("nan") if len(calls) == 3 else out

    class LastStep(Callback):
        def on_batch_end(self, net, training=False, **kwargs):
            if training:
                self.params = [p.detach().clone() for p in net.module_.parameters()]

    last = LastStep()
    monkeypatch.setattr(RDropNet, "consistency", nan_at_the_third_step)
    est = TransformerClassifier(tiny_bert, training__rdrop_alpha=1.0, callbacks=[last], **HAMR_FAST)
    with pytest.raises(FloatingPointError, match="training loss became nan.*Lower the learning rate"):
        est.fit(X, y)
    assert len(calls) == 3
    for kept, after_second in zip(est.net_.module_.parameters(), last.params):
        assert torch.equal(kept.detach(), after_second)
    assert np.isfinite(est.predict_proba(X)).all()

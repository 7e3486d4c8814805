"""Sharpness-aware training (training="sam"): the step's gradient against a hand computation, on
every class and on the minority classes only (ImbSAM), the parameters restored when a step fails,
and the estimators with it on a tiny random BERT."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import make_ner

from skimb import TransformerClassifier, TransformerTokenClassifier
from skimb.training import SharpnessAwareNet, SharpnessAwareTraining, minority_classes, sharpness_perturbation

FAST = dict(max_epochs=1, batch_size=8, random_state=0, lr=5e-3)


class Linear(torch.nn.Module):
    """(B, 4) features to (B, 3) logits; (B, T, 4) to (B, T, 3), a tagger's shape."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, features):
        return self.lin(features)


class PerItemCE(torch.nn.Module):
    def __init__(self, poison_after=None):
        super().__init__()
        self.poison_after, self.calls = poison_after, 0

    def forward(self, logits, target):
        self.calls += 1
        loss = F.cross_entropy(logits, target, reduction="none")
        return loss * float("nan") if self.poison_after is not None and self.calls > self.poison_after else loss


def _net(training, minority=None, criterion=PerItemCE, **kwargs):
    torch.manual_seed(0)
    kwargs = {"lr": 0.0, **kwargs}
    net = SharpnessAwareNet(Linear, criterion=criterion, optimizer=torch.optim.SGD, batch_size=6,
                            train_split=None, sharpness=training, minority=minority, **kwargs)
    return net.initialize()


def _batch():
    gen = torch.Generator().manual_seed(1)
    return {"features": torch.randn(6, 4, generator=gen)}, torch.tensor([0, 0, 0, 1, 2, 2])


def _grads(module, X, y, mask=None, weights=None):
    """Gradient of the mean (or of ``mask``'s share of the mean) per-item CE, by hand."""
    module.zero_grad()
    per_item = F.cross_entropy(module(**X), y, reduction="none")
    if weights is not None:
        per_item = per_item * weights
    (per_item if mask is None else per_item * mask).sum().div(len(y)).backward()
    return [p.grad.clone() for p in module.parameters()]


def _shifted(module, grads, rho, adaptive=False):
    """A copy of ``module`` at ``w + ε`` (ASAM: ``T = |w| + 0.01``)."""
    out = copy.deepcopy(module)
    scale = [p.abs() + 0.01 if adaptive else torch.ones_like(p) for p in module.parameters()]
    norm = torch.cat([(g * t).flatten() for t, g in zip(scale, grads)]).norm()
    with torch.no_grad():
        for p, g, t in zip(out.parameters(), grads, scale):
            p.add_(rho * t ** 2 * g / norm)
    return out


@pytest.mark.parametrize("adaptive", [False, True])
def test_the_step_takes_the_gradient_at_the_perturbed_weights(adaptive):
    net = _net(SharpnessAwareTraining(rho=0.3, adaptive=adaptive))
    X, y = _batch()
    before = copy.deepcopy(net.module_)
    expected = _grads(_shifted(before, _grads(before, X, y), 0.3, adaptive), X, y)
    step = net.train_step_single((X, y))
    for p, q, g in zip(net.module_.parameters(), before.parameters(), expected):
        assert torch.equal(p, q)  # the weights are back at w
        torch.testing.assert_close(p.grad, g)
    # the recorded loss is the one at w
    torch.testing.assert_close(step["loss"], F.cross_entropy(before(**X), y))


def test_minority_classes_alone_are_perturbed():
    """ImbSAM: the majority's share of the loss at w, the minority's at w + ε (ε from the minority's share)."""
    minority = np.array([False, True, True])
    net = _net(SharpnessAwareTraining(rho=0.3, classes="minority"), minority=minority)
    X, y = _batch()
    before = copy.deepcopy(net.module_)
    tail = torch.tensor(minority)[y].float()
    head_grads = _grads(before, X, y, 1 - tail)
    tail_grads = _grads(_shifted(before, _grads(before, X, y, tail), 0.3), X, y, tail)
    net.train_step_single((X, y))
    for p, q, g, h in zip(net.module_.parameters(), before.parameters(), head_grads, tail_grads):
        assert torch.equal(p, q)
        torch.testing.assert_close(p.grad, g + h)


def test_a_batch_without_minority_items_takes_one_plain_pass():
    net = _net(SharpnessAwareTraining(rho=0.3, classes="minority"), minority=np.array([False, False, True]))
    X, y = _batch()
    X, y = {"features": X["features"][:4]}, y[:4]  # classes 0 and 1: no minority item
    before = copy.deepcopy(net.module_)
    expected = _grads(before, X, y)
    net.train_step_single((X, y))
    assert net.criterion_.calls == 1  # no second pass
    for p, g in zip(net.module_.parameters(), expected):
        torch.testing.assert_close(p.grad, g)


@pytest.mark.parametrize("minority", [None, np.array([False, True, True])])
def test_sample_weights_enter_both_passes(minority):
    net = _net(SharpnessAwareTraining(rho=0.2, classes="all" if minority is None else "minority"), minority=minority)
    X, y = _batch()
    w = torch.tensor([0.5, 0.5, 0.5, 2.0, 1.0, 1.5])
    before = copy.deepcopy(net.module_)
    if minority is None:
        expected = _grads(_shifted(before, _grads(before, X, y, weights=w), 0.2), X, y, weights=w)
    else:
        tail = torch.tensor(minority)[y].float()
        shifted = _shifted(before, _grads(before, X, y, tail, weights=w), 0.2)
        expected = [a + b for a, b in zip(_grads(before, X, y, 1 - tail, weights=w), _grads(shifted, X, y, tail, weights=w))]
    net.train_step_single(({**X, "sample_weight": w}, y))
    for p, g in zip(net.module_.parameters(), expected):
        torch.testing.assert_close(p.grad, g)


def test_tagger_steps_skip_the_padded_labels():
    """(B, T) targets with -100 at the padding: the minority mask lines up with the labelled tokens."""
    minority = np.array([False, True, True])
    torch.manual_seed(0)
    net = SharpnessAwareNet(Linear, criterion=PerItemCE, optimizer=torch.optim.SGD, lr=0.0, batch_size=2,
                            train_split=None, sharpness=SharpnessAwareTraining(rho=0.3, classes="minority"),
                            minority=minority, label_pad_id=-100).initialize()
    X = {"features": torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(2))}
    y = torch.tensor([[0, 1, -100, -100], [2, 0, 0, -100]])
    before = copy.deepcopy(net.module_)
    labelled = y != -100
    flat_X, flat_y = {"features": X["features"][labelled]}, y[labelled]  # the 5 labelled tokens as rows
    tail = torch.tensor(minority)[flat_y].float()
    expected = [a + b for a, b in zip(_grads(before, flat_X, flat_y, 1 - tail),
                                      _grads(_shifted(before, _grads(before, flat_X, flat_y, tail), 0.3),
                                             flat_X, flat_y, tail))]
    net.train_step_single((X, y))
    for p, g in zip(net.module_.parameters(), expected):
        torch.testing.assert_close(p.grad, g)


def test_the_optimiser_steps_with_the_clipped_perturbed_gradient():
    """Through skorch's train_step: gradient clipping sees the gradient at w + ε, the step starts from w."""
    from skorch.callbacks import GradientNormClipping

    net = _net(SharpnessAwareTraining(rho=0.3), lr=0.1, callbacks=[GradientNormClipping(0.05)])
    X, y = _batch()
    before = copy.deepcopy(net.module_)
    g = _grads(_shifted(before, _grads(before, X, y), 0.3), X, y)
    clip = min(1.0, 0.05 / (float(torch.cat([t.flatten() for t in g]).norm()) + 1e-6))
    assert clip < 0.5  # the clipping does bite
    net.train_step((X, y))
    for p, q, gi in zip(net.module_.parameters(), before.parameters(), g):
        torch.testing.assert_close(p, q - 0.1 * clip * gi)


@pytest.mark.parametrize("classes, minority", [("all", None), ("minority", np.array([False, True, True]))])
def test_a_failing_perturbed_pass_puts_the_weights_back(classes, minority):
    net = _net(SharpnessAwareTraining(rho=0.3, classes=classes), minority=minority, criterion=PerItemCE,
               criterion__poison_after=1)
    X, y = _batch()
    before = copy.deepcopy(net.module_)
    with pytest.raises(FloatingPointError, match="training loss became nan"):
        net.train_step_single((X, y))
    assert net.criterion_.calls == 2  # it was the second pass that failed
    for p, q in zip(net.module_.parameters(), before.parameters()):
        assert torch.equal(p, q)


def test_perturbation_of_zero_gradients_is_zero_and_minority_is_below_the_mean():
    w = [torch.ones(2)]
    assert sharpness_perturbation(w, [torch.zeros(2)], 0.5)[0].tolist() == [0.0, 0.0]
    assert sharpness_perturbation(w, [None], 0.5) == [None]
    assert minority_classes([10, 10, 10]).tolist() == [False, False, False]
    assert minority_classes([90, 5, 5]).tolist() == [False, True, True]
    assert minority_classes([90, 5, 25], below=20).tolist() == [False, True, False]


def test_the_classifier_with_sam(tiny_bert, toy_data):
    X, y = toy_data
    plain = TransformerClassifier(tiny_bert, **FAST).fit(X, y)
    sam = TransformerClassifier(tiny_bert, training="sam", training__rho=0.5, **FAST).fit(X, y)
    assert sam.get_params()["training__rho"] == 0.5
    assert not np.allclose(plain.predict_proba(X), sam.predict_proba(X))
    # rho=0 is plain training, to the bit
    with pytest.warns(UserWarning, match="adaptive"):
        zero = TransformerClassifier(tiny_bert, training="sam", training__rho=0.0, training__adaptive=True,
                                     **FAST).fit(X, y)
    np.testing.assert_array_equal(zero.predict_proba(X), plain.predict_proba(X))
    minority = TransformerClassifier(tiny_bert, training=SharpnessAwareTraining(rho=0.5, classes="minority"),
                                     **FAST).fit(X, y)
    for other in (plain, sam):
        assert not np.allclose(minority.predict_proba(X), other.predict_proba(X))


def test_a_split_without_minority_classes_warns(tiny_bert):
    X = [f"text number {i}" for i in range(24)]
    y = ["a", "b", "c"] * 8
    with pytest.warns(UserWarning, match="no class is a minority class"):
        TransformerClassifier(tiny_bert, training="sam", training__classes="minority", **FAST).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TransformerClassifier(tiny_bert, training="sam", training__classes=8, **FAST).fit(X, y[:-1] + ["b"])  # c: 7 < 8


@pytest.mark.usefixtures("backbone_must_not_load")
def test_bad_rho_and_multilabel_minority_fail_before_training(tiny_bert, toy_data):
    X, y = toy_data
    with pytest.raises(ValueError, match="training__rho"):
        TransformerClassifier(tiny_bert, training="sam", training__rho=-1, **FAST).fit(X, y)
    Y = np.stack([np.asarray(y) == c for c in np.unique(y)[:2]], axis=1).astype(int)
    with pytest.raises(ValueError, match="training__classes='all'"):
        TransformerClassifier(tiny_bert, training="sam", training__classes="minority", **FAST).fit(X, Y)
    with pytest.raises(ValueError, match="training__classes"):
        TransformerClassifier(tiny_bert, training="sam", training__classes=0, **FAST).fit(X, y)


def test_the_tagger_with_minority_sam(tiny_bert):
    X, Y = make_ner(24)
    clf = TransformerTokenClassifier(tiny_bert, training="sam", training__classes="minority", **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        clf.fit(X, Y)
    assert [len(t) for t in clf.predict(X)] == [len(s) for s in X]


@pytest.mark.usefixtures("empty_stage1_cache")
def test_calora_trains_its_second_stage_on_a_sam_stage_1(tiny_bert, toy_data):
    X, y = toy_data
    params = dict(training="sam", training__rho=0.5, **FAST)
    calora = TransformerClassifier(tiny_bert, head="calora", head__k=2, head__epochs=1, **params).fit(X, y)
    assert not calora.stage1_cached_ and calora.predict(X).shape == (len(X),)
    # the same SAM stage 1 under the linear head: loaded from the cache, as the stage 1 CALoRA kept
    linear = TransformerClassifier(tiny_bert, **params).fit(X, y)
    assert linear.stage1_cached_
    with calora.disable_class_adapters():
        np.testing.assert_allclose(calora.predict_proba(X), linear.predict_proba(X), rtol=1e-5, atol=1e-6)
    other = TransformerClassifier(tiny_bert, **{**params, "training__rho": 0.4}).fit(X, y)
    assert not other.stage1_cached_  # rho is part of the stage-1 key


@pytest.mark.usefixtures("empty_stage1_cache")
def test_same_parameters_same_model_cached_uncached_and_refit(tiny_bert, toy_data):
    X, y = toy_data
    params = dict(training="sam", training__rho=0.5, training__classes="minority", head="calora", head__k=2,
                  head__epochs=1, **FAST)
    miss = TransformerClassifier(tiny_bert, **params).fit(X, y)
    hit = TransformerClassifier(tiny_bert, **params).fit(X, y)
    assert not miss.stage1_cached_ and hit.stage1_cached_
    np.testing.assert_array_equal(hit.predict_proba(X), miss.predict_proba(X))
    first = TransformerClassifier(tiny_bert, training="sam", training__rho=0.5, **FAST).fit(X, y)
    np.testing.assert_array_equal(first.fit(X, y).predict_proba(X),
                                  TransformerClassifier(tiny_bert, training="sam", training__rho=0.5,
                                                        **FAST).fit(X, y).predict_proba(X))

"""Weight averaging (``ema_decay``): the fitted model is the EMA of the training trajectory, training
itself is unchanged, validation scores the average, and an interrupted fit keeps it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from conftest import assert_in_stage1_key, make_ner

from skimb import TransformerClassifier, TransformerTokenClassifier
from skimb._base import make_callbacks

FAST = dict(max_epochs=2, batch_size=8, random_state=0, lr=5e-3)


class Trajectory(Callback):
    """The module's parameters before training and after every training step; with ``stop_at``,
    a Ctrl-C after that many steps."""

    def __init__(self, stop_at=None):
        self.stop_at = stop_at

    def on_train_begin(self, net, **kwargs):
        self.steps = [self._params(net)]

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.steps.append(self._params(net))
            if self.stop_at is not None and len(self.steps) - 1 == self.stop_at:
                raise KeyboardInterrupt

    @staticmethod
    def _params(net):
        return [p.detach().clone() for p in net.module_.parameters()]


def _hand_ema(steps, decay):
    """The steps' weights (``steps[0]``: before training, not counted) averaged with weights
    ``decay ** (t - k)``, normalised."""
    weights = [decay ** (len(steps) - 1 - k) for k in range(1, len(steps))]
    return [sum(w * params[i] for w, params in zip(weights, steps[1:])) / sum(weights)
            for i in range(len(steps[0]))]


def _assert_module_holds(est, expected):
    for got, want in zip(est.net_.module_.parameters(), expected):
        torch.testing.assert_close(got.detach(), want, rtol=0, atol=2e-6)


def test_callback_order_puts_the_average_before_selection():
    names = [n for n, _ in make_callbacks(verbose=0, n_steps=10, warmup_ratio=0.1, max_grad_norm=1.0,
                                          early_stopping="f1_macro", patience=2, user_callbacks=None, ema_decay=0.9)]
    assert names.index("weight_averaging") < names.index("valid_f1_macro") < names.index("early_stopping")
    assert "weight_averaging" not in [n for n, _ in make_callbacks(
        verbose=0, n_steps=10, warmup_ratio=0.1, max_grad_norm=1.0, early_stopping=False, patience=2,
        user_callbacks=None)]


def test_the_fitted_model_is_the_ema_of_an_unchanged_trajectory(tiny_bert, toy_data):
    X, y = toy_data
    plain, averaged = Trajectory(), Trajectory()
    TransformerClassifier(tiny_bert, validation_fraction=0.25, callbacks=[plain], **FAST).fit(X, y)
    est = TransformerClassifier(tiny_bert, validation_fraction=0.25, ema_decay=0.9, callbacks=[averaged],
                                **FAST).fit(X, y)
    # training runs on the raw weights, the average swapped out after each epoch's validation
    assert len(plain.steps) == len(averaged.steps) > 4
    for a, b in zip(plain.steps[-1], averaged.steps[-1]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    _assert_module_holds(est, _hand_ema(averaged.steps, 0.9))
    assert not np.allclose([p.detach().numpy().sum() for p in est.net_.module_.parameters()],
                           [p.numpy().sum() for p in averaged.steps[-1]])


def test_validation_scores_the_average(tiny_bert, toy_data):
    X, y = toy_data
    est = TransformerClassifier(tiny_bert, validation_fraction=0.25, ema_decay=0.8, **FAST).fit(X, y)
    idx = est.validation_indices_
    proba = est.predict_proba([X[i] for i in idx])
    truth = np.searchsorted(est.classes_, np.asarray(y)[idx])
    loss_of_the_fitted_model = -np.log(proba[np.arange(len(idx)), truth]).mean()
    np.testing.assert_allclose(est.history_[-1, "valid_loss"], loss_of_the_fitted_model, rtol=1e-5)


def test_an_interrupted_fit_keeps_the_average_so_far(tiny_bert, toy_data):
    X, y = toy_data
    trajectory = Trajectory(stop_at=3)
    with pytest.warns(UserWarning, match="interrupted"):
        est = TransformerClassifier(tiny_bert, ema_decay=0.5, callbacks=[trajectory], **FAST).fit(X, y)
    assert est.training_interrupted_ and len(trajectory.steps) == 4
    _assert_module_holds(est, _hand_ema(trajectory.steps, 0.5))


def test_tagger_with_early_stopping_on_f1(tiny_bert):
    X, y = make_ner(32)
    trajectory = Trajectory()
    est = TransformerTokenClassifier(tiny_bert, validation_fraction=0.25, early_stopping="f1_macro", patience=5,
                                     ema_decay=0.7, callbacks=[trajectory], **FAST).fit(X, y)
    # no early stop within 2 epochs: the best epoch's snapshot is an average (of epoch 1 or 2)
    assert "valid_f1_macro" in est.history_[-1]
    best = int(np.argmax(est.history_[:, "valid_f1_macro"]))
    steps_per_epoch = (len(trajectory.steps) - 1) // 2
    _assert_module_holds(est, _hand_ema(trajectory.steps[: 1 + steps_per_epoch * (best + 1)], 0.7))


@pytest.mark.usefixtures("backbone_must_not_load")
@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, "0.9"])
def test_bad_decay_fails_before_the_backbone_loads(tiny_bert, toy_data, bad):
    X, y = toy_data
    with pytest.raises(ValueError, match="ema_decay"):
        TransformerClassifier(tiny_bert, ema_decay=bad, **FAST).fit(X, y)


@pytest.mark.usefixtures("empty_stage1_cache")
def test_ema_decay_is_part_of_the_stage1_key(tiny_bert, toy_data):
    assert_in_stage1_key(tiny_bert, *toy_data, dict(ema_decay=0.9, **FAST), "ema_decay", 0.8)


def test_a_refit_is_a_fresh_fit(tiny_bert, toy_data):
    X, y = toy_data
    # callbacks=[] keeps the stage-1 cache out: both fits train
    params = dict(validation_fraction=0.25, ema_decay=0.9, callbacks=[], **FAST)
    refit = TransformerClassifier(tiny_bert, **params).fit(X, y).fit(X, y)
    fresh = TransformerClassifier(tiny_bert, **params).fit(X, y)
    assert not refit.stage1_cached_ and not fresh.stage1_cached_
    np.testing.assert_array_equal(refit.predict_proba(X), fresh.predict_proba(X))


@pytest.mark.parametrize("validation_fraction", [None, 0.25])
def test_the_ewc_anchor_is_the_raw_weights_with_or_without_a_validation_split(tiny_bert, toy_data, monkeypatch,
                                                                               validation_fraction):
    # validation swaps the average in before the epoch ends: the anchor was the average with a split only
    from skimb.training import _sequential

    X, y = toy_data
    trajectory, anchors = Trajectory(), []
    epoch_end = _sequential.SequentialFit.epoch_end

    def spy(state, net):
        epoch_end(state, net)
        if state.anchor is not None and not anchors:
            position = {id(p): i for i, p in enumerate(net.module_.parameters())}
            learnable = [position[id(p)] for _, p in net.get_all_learnable_params()]
            anchors.append([(a.clone(), trajectory.steps[-1][i]) for a, i in zip(state.anchor, learnable)])

    monkeypatch.setattr(_sequential.SequentialFit, "epoch_end", spy)
    TransformerClassifier(tiny_bert, training="sequential", training__ewc_lambda=1.0, ema_decay=0.5,
                          validation_fraction=validation_fraction, callbacks=[trajectory], **FAST).fit(X, y)
    assert anchors, "no stage ended"
    for anchor, raw in anchors[0]:
        torch.testing.assert_close(anchor, raw, rtol=0, atol=0)

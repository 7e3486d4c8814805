"""Sequential targeting (training="sequential"): the stage subsets, the stage order of the epochs,
the EWC penalty, and the estimator contract on a tiny random BERT."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from conftest import make_ner

from skimb import TransformerClassifier, TransformerTokenClassifier
from skimb.training import SequentialTargetingTraining, sequential_subsets, stage_keys
from skimb.training._sequential import SequentialFit

FAST = dict(max_epochs=1, batch_size=8, random_state=0, lr=5e-3)


def _imbalance(counts):
    counts = np.asarray(counts, dtype=float)
    return counts.max() / max(counts[counts > 0].min(), 1)


def test_subsets_partition_the_data_from_imbalanced_to_balanced():
    keys = np.repeat(np.arange(5), [600, 200, 80, 30, 10])
    subsets = sequential_subsets(keys, 4, random_state=0)
    together = np.concatenate(subsets)
    assert sorted(together.tolist()) == list(range(len(keys)))  # disjoint and covering
    sizes = [len(s) for s in subsets]
    assert max(sizes) - min(sizes) <= 5  # equally large stages
    counts = [np.bincount(keys[s], minlength=5) for s in subsets]
    ratios = [counts[s][0] / counts[s][1:].sum() for s in range(4)]  # majority share falls stage by stage
    assert all(a > b for a, b in zip(ratios, ratios[1:]))
    assert ratios[0] > 600 / 320 > ratios[-1]  # the first stage more, the last less imbalanced than the data
    assert np.array_equal(sequential_subsets(keys, 1)[0], np.arange(len(keys)))
    again = sequential_subsets(keys, 4, random_state=0)
    assert all(np.array_equal(a, b) for a, b in zip(subsets, again))
    with pytest.raises(ValueError, match="n_stages must be >= 1"):
        sequential_subsets(keys, 0)


def test_stage_keys_per_task():
    assert stage_keys(np.array([2, 0, 1]), "multiclass").tolist() == [2, 0, 1]
    Y = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0], [1, 1, 1]])  # label 2 rarest, then 1
    assert stage_keys(Y, "multilabel").tolist() == [1, 0, 3, 2]
    tags = [np.array([0, 1]), np.array([0, 0]), np.array([0, 3, 1])]  # tag 3 rarest
    keys = stage_keys(tags, "token")
    assert keys[2] != keys[0] != keys[1]


class EpochItems(Callback):
    def initialize(self):
        self.items = []
        return self

    def on_epoch_begin(self, net, **kwargs):
        self.items.append([])

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if training:
            self.items[-1] += batch[0]["index"].tolist()


@pytest.mark.parametrize("finetune", ["full", "head"])
def test_each_epoch_trains_its_stage_once(tiny_bert, toy_data, finetune):
    X, y = toy_data
    rec = EpochItems()
    clf = TransformerClassifier(tiny_bert, training="sequential", training__n_stages=3, training__ewc_lambda=1.0,
                                finetune=finetune, callbacks=[rec], **{**FAST, "max_epochs": 2}).fit(X, y)
    assert len(clf.history_) == 6 and clf.history_[:, "stage"] == [1, 1, 2, 2, 3, 3]
    stages = clf.stage_indices_
    assert len(stages) == 3 and sorted(np.concatenate(stages).tolist()) == list(range(len(X)))
    for epoch, seen in enumerate(rec.items):
        assert sorted(seen) == stages[epoch // 2].tolist()  # every member of the stage once
    assert clf.history_[0, "ewc_penalty"] == 0 and clf.history_[2, "ewc_penalty"] >= 0
    assert clf.predict(X).shape == (len(X),)


def test_ewc_penalty_gradient_and_fisher():
    """after_backward adds ewc_lambda · F · (θ − θ*) to each gradient; F is the mean squared gradient of
    the stage's last epoch, normalised to mean 1."""

    class FakeNet:
        def __init__(self, params):
            self.params = params

        def get_all_learnable_params(self):
            return [(str(i), p) for i, p in enumerate(self.params)]

    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    q = torch.nn.Parameter(torch.tensor([3.0]))
    net = FakeNet([p, q])
    state = SequentialFit(SequentialTargetingTraining(ewc_lambda=2.0), task="multiclass", seed=0, epochs_per_stage=1)
    state._collecting, state._grad_sq, state._n_grads = True, None, 0
    for gp, gq in ([[1.0, 0.0], [2.0]], [[3.0, 0.0], [0.0]]):
        p.grad, q.grad = torch.tensor(gp), torch.tensor(gq)
        state.after_backward(net)
    state.epoch_end(net)
    raw = torch.tensor([(1 + 9) / 2, 0.0, 4 / 2])  # mean squared gradients
    expected_f = raw / raw.mean()
    torch.testing.assert_close(torch.cat(state.fisher), expected_f)
    with torch.no_grad():
        p.add_(torch.tensor([0.5, -1.0]))
        q.add_(torch.tensor([1.0]))
    state._collecting = False
    p.grad, q.grad = torch.zeros(2), torch.zeros(1)
    state.after_backward(net)
    delta = torch.tensor([0.5, -1.0, 1.0])
    torch.testing.assert_close(torch.cat([p.grad, q.grad]), 2.0 * expected_f * delta)
    assert state.penalty(net) == pytest.approx(0.5 * 2.0 * float((expected_f * delta ** 2).sum()))


def test_ewc_lambda_zero_leaves_the_gradients(tiny_bert, toy_data, monkeypatch):
    X, y = toy_data
    fits = [TransformerClassifier(tiny_bert, training=SequentialTargetingTraining(n_stages=2, ewc_lambda=lam),
                                  **FAST).fit(X, y) for lam in (0.0, 50.0)]
    assert fits[0].history_[-1, "ewc_penalty"] == 0.0 and fits[1].history_[-1, "ewc_penalty"] > 0
    assert not np.allclose(fits[0].predict_proba(X), fits[1].predict_proba(X))


def test_one_stage_is_plain_training(tiny_bert, toy_data):
    X, y = toy_data
    plain = TransformerClassifier(tiny_bert, **FAST).fit(X, y)
    one = TransformerClassifier(tiny_bert, training="sequential", training__n_stages=1, **FAST).fit(X, y)
    assert len(one.history_) == 1
    assert sorted(one.stage_indices_[0].tolist()) == list(range(len(X)))
    assert one.predict(X).shape == plain.predict(X).shape
    with pytest.warns(UserWarning, match="ewc_lambda"):
        TransformerClassifier(tiny_bert, training="sequential", training__n_stages=1, training__ewc_lambda=3.0,
                              **FAST).fit(X, y)


def test_token_classification_and_refit(tiny_bert):
    X, y = make_ner(40)
    ner = TransformerTokenClassifier(tiny_bert, training="sequential", training__n_stages=2, max_length=32,
                                     **FAST).fit(X, y)
    assert len(ner.history_) == 2 and sorted(np.concatenate(ner.stage_indices_).tolist()) == list(range(40))
    assert [len(p) for p in ner.predict(X)] == [len(s) for s in X]
    pickle.loads(pickle.dumps(ner)).predict(X[:2])
    with pytest.warns(UserWarning, match="n_stages is ignored"):
        ner.set_params(training="standard").fit(X, y)
    assert not hasattr(ner, "stage_indices_")  # nothing left of the earlier fit
    with pytest.raises(ValueError, match="needs finetune='full' or 'lora'"):
        TransformerTokenClassifier(tiny_bert, training="sequential", finetune="head", **FAST).fit(X, y)


def test_the_windows_of_a_long_sentence_train_in_its_stage(tiny_bert):
    """A tagger splits a long sentence into windows; the stages partition the sentences (docs/sequential.md:
    each window goes with its sentence), where the windows of one sentence were spread over the stages
    and stage_indices_ named a sentence in two or three of them."""
    X, y = make_ner(30, max_words=30)
    rec = EpochItems()
    ner = TransformerTokenClassifier(tiny_bert, training="sequential", training__n_stages=3, max_length=16,
                                     callbacks=[rec], **FAST).fit(X, y)
    stages = ner.stage_indices_
    assert sorted(np.concatenate(stages).tolist()) == list(range(len(X)))  # disjoint, covering
    assert sum(len(e) for e in rec.items) > len(X)  # long sentences were windowed
    assert [len(set(e)) for e in rec.items] == [len(e) for e in rec.items]  # each window once per epoch


@pytest.mark.parametrize("n_stages", [39, 60])
def test_a_stage_without_examples_is_an_error(tiny_bert, toy_data, n_stages):
    """More stages than the split fills: an empty stage trained on whatever its zero draw weights
    gave (NaN probabilities), with a numpy RuntimeWarning as the only sign."""
    X, y = toy_data  # 48 texts, 38 of them in training with the validation split
    est = TransformerClassifier(tiny_bert, training="sequential", training__n_stages=n_stages,
                                validation_fraction=0.2, **FAST)
    with pytest.raises(ValueError, match=rf"training__n_stages={n_stages} leaves stage \d+ of {n_stages} without "
                                         r"a training example \(38 in training\).*smaller training__n_stages"):
        est.fit(X, y)


@pytest.mark.parametrize("param, value, match", [
    ("n_stages", 0, r"n_stages must be an int in \[1, inf\]"),
    ("ewc_lambda", -1.0, "ewc_lambda"),
])
def test_bad_parameters(tiny_bert, toy_data, param, value, match):
    X, y = toy_data
    with pytest.raises(ValueError, match=match):
        TransformerClassifier(tiny_bert, training="sequential", **{f"training__{param}": value}, **FAST).fit(X, y)


class LearningRates(Callback):
    def initialize(self):
        self.lrs = []
        return self

    def on_epoch_begin(self, net, **kwargs):
        self.lrs.append([])

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.lrs[-1].append(net.optimizer_.param_groups[0]["lr"])


@pytest.mark.parametrize("restart", [True, False])
def test_each_stage_gets_its_own_learning_rate_schedule(tiny_bert, toy_data, restart):
    X, y = toy_data
    rec = LearningRates()
    TransformerClassifier(tiny_bert, training="sequential", training__n_stages=3, training__lr_restart=restart,
                          callbacks=[rec], warmup_ratio=0.0, **FAST).fit(X, y)
    first = [epoch[0] for epoch in rec.lrs]  # one epoch per stage (max_epochs=1)
    if restart:  # every stage starts at the full learning rate
        assert first[0] == pytest.approx(first[1], rel=0.2) and first[1] == pytest.approx(first[2], rel=0.2)
    else:  # one decay over the three stages
        assert first[0] > first[1] > first[2]
    assert all(epoch[0] > epoch[-1] for epoch in rec.lrs)  # decaying within each stage


@pytest.mark.parametrize("max_epochs", [1, 2])
def test_each_stage_starts_its_schedule_whatever_the_batches_before(tiny_bert, max_epochs):
    # a long-sentence tagger's stages hold whole sentences, so their windows (batches) differ: the schedule,
    # restarted every fixed number of steps, restarted inside a stage and started the next one mid-decay
    X, y = make_ner(60, max_words=30)
    rec = LearningRates()
    TransformerTokenClassifier(tiny_bert, training="sequential", training__n_stages=3, max_length=16,
                               callbacks=[rec], warmup_ratio=0.0, **{**FAST, "max_epochs": max_epochs}).fit(X, y)
    stages = [sum(rec.lrs[s * max_epochs:(s + 1) * max_epochs], []) for s in range(3)]
    top = stages[0][0]
    for lrs in stages:
        assert lrs[0] == pytest.approx(top)  # each stage opens at the full rate
        assert all(a > b for a, b in zip(lrs, lrs[1:]))  # and decays through it, never restarting inside it


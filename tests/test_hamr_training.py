"""HAMR inside TransformerClassifier (training="hamr"): the integrated training path.

The components (WNet, meta step, tracker, FAISS boost, meta set) are unit-tested in
test_hamr.py; here: the switches, the fitted attributes, resampling sizes, the meta-step modes,
finetune modes, multi-label, pickling, determinism and parameter errors. Tiny random BERT,
one or two epochs: each fit takes well under a second.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from conftest import make_ner, same_model_tolerance, tiny_bert_dir

from skimb import TransformerClassifier
from skimb.training.hamr import (HAMRNet, build_balanced_meta_set_multilabel, split_meta_set)

FAST = dict(max_epochs=2, batch_size=8, random_state=0, lr=5e-3)
OFF = dict(training__meta_weighting=False, training__resampling=False, training__knn=False)


def hamr(tiny_bert, **params):
    return TransformerClassifier(tiny_bert, **{"training": "hamr", **FAST, **params})


class Recorder(Callback):
    """Training samples per epoch and WNet's parameters at the start of training."""

    def initialize(self):
        self.samples, self.indices, self.wnet_start = [], [], None
        return self

    def on_train_begin(self, net, **kwargs):
        hamr_state = getattr(net, "hamr", None)
        if hamr_state is not None and hamr_state.wnet is not None:
            self.wnet_start = [p.detach().clone() for p in hamr_state.wnet.parameters()]

    def on_epoch_begin(self, net, **kwargs):
        self.samples.append(0)
        self.indices.append([])

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if training:
            self.samples[-1] += len(batch[1])
            self.indices[-1] += batch[0]["index"].tolist()


# ------------------------------------------------------------------------- switches


@pytest.mark.parametrize("finetune", ["full", "head"])
def test_all_switches_off_is_standard_bitwise(tiny_bert, toy_data, finetune):
    X, y = toy_data
    params = dict(finetune=finetune, validation_fraction=0.2, **FAST)
    std = TransformerClassifier(tiny_bert, **params).fit(X, y)
    off = TransformerClassifier(tiny_bert, training="hamr", **OFF, **params).fit(X, y)
    np.testing.assert_array_equal(std.predict_proba(X), off.predict_proba(X))
    assert isinstance(off.net_, HAMRNet)
    for a, b in zip(std.net_.module_.parameters(), off.net_.module_.parameters()):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(std.history_[:, "train_loss"], off.history_[:, "train_loss"])
    assert off.meta_set_size_ == 0 and off.wnet_ is None and len(off.meta_loss_history_) == 0
    np.testing.assert_allclose(off.hardness_, 1 / len(off.hardness_))


def test_full_hamr_trains_wnet_and_records(tiny_bert, toy_data):
    X, y = toy_data
    rec = Recorder()
    clf = hamr(tiny_bert, callbacks=[rec]).fit(X, y)
    # the meta step moved WNet ...
    assert rec.wnet_start is not None
    moved = [not torch.equal(a.cpu(), b.detach().cpu()) for a, b in zip(rec.wnet_start, clf.wnet_.parameters())]
    assert all(moved)
    # ... the task model still trains to finite predictions
    proba = clf.predict_proba(X)
    assert np.all(np.isfinite(proba)) and proba.shape == (len(X), 3)
    n_steps = sum(-(-s // 8) for s in rec.samples)
    assert clf.meta_loss_history_.shape == (n_steps,) and np.all(np.isfinite(clf.meta_loss_history_))
    assert np.isfinite(clf.history_[-1, "meta_loss"])
    # fitted attributes
    n = len(clf.hamr_train_indices_)
    assert clf.hardness_.shape == (n,) and clf.hardness_.sum() == pytest.approx(1.0)
    assert clf.neighbor_boost_.shape == (n,) and clf.neighbor_boost_.max() == 1.0
    assert clf.meta_set_size_ == len(clf.meta_set_indices_) > 0
    # the meta set (held-out 10% + top-up) left the training set; together they cover X
    assert not set(clf.meta_set_indices_) & set(clf.hamr_train_indices_)
    assert sorted(set(clf.meta_set_indices_) | set(clf.hamr_train_indices_)) == list(range(len(X)))
    hist = clf.sample_weights_history_
    assert [h["epoch"] for h in hist] == [1, 2]
    assert set(hist[0]["per_class"]) == set(clf.classes_.tolist())
    assert hist[0]["mean"] == pytest.approx(1.0, abs=0.05) and 0.1 <= hist[0]["min"] <= hist[0]["max"] <= 8.0
    assert sum(h["n"] for h in hist[0]["per_class"].values()) == hist[0]["n"] == rec.samples[0]


def test_resampling_draws_oversample_ratio_times_n(tiny_bert, toy_data):
    X, y = toy_data
    for ratio in (1.2, 2.0):
        rec = Recorder()
        clf = hamr(tiny_bert, training__oversample_ratio=ratio, callbacks=[rec]).fit(X, y)
        n = len(clf.hardness_)
        # the first epoch embeds: every sample once, then the resampled epochs
        assert rec.samples == [n, round(ratio * n)]
        assert sorted(rec.indices[0]) == list(range(n)) and len(set(rec.indices[1])) < round(ratio * n)
        rec = Recorder()
        hamr(tiny_bert, training__oversample_ratio=ratio, training__embedder="pretrained", callbacks=[rec]).fit(X, y)
        assert rec.samples == [round(ratio * n)] * 2
    rec = Recorder()
    clf = hamr(tiny_bert, training__resampling=False, callbacks=[rec]).fit(X, y)
    assert rec.samples == [len(clf.hardness_)] * 2
    assert np.all(clf.neighbor_boost_ == 0)  # kNN needs resampling


def test_without_weighting_wnet_still_drives_hardness(tiny_bert, toy_data):
    X, y = toy_data
    clf = hamr(tiny_bert, training__meta_weighting=False).fit(X, y)
    assert clf.meta_set_size_ > 0 and len(clf.meta_loss_history_) > 0
    assert clf.hardness_.std() > 0  # the tracker saw the WNet weights


@pytest.mark.parametrize("mode", ["full", "first_order", "head"])
def test_each_meta_step_mode_runs(tiny_bert, toy_data, mode):
    X, y = toy_data
    clf = hamr(tiny_bert, training__meta_step=mode, max_epochs=1).fit(X, y)
    assert np.all(np.isfinite(clf.meta_loss_history_)) and np.all(np.isfinite(clf.predict_proba(X)))


@pytest.mark.parametrize("interval", [1, 3])
def test_meta_interval_runs_the_meta_step_every_k_steps(tiny_bert, toy_data, monkeypatch, interval):
    import skimb.training.hamr._trainer as trainer

    X, y = toy_data
    calls, original = [], trainer.meta_step
    monkeypatch.setattr(trainer, "meta_step", lambda *a, **k: calls.append(1) or original(*a, **k))
    steps = []

    class Steps(Callback):
        def on_batch_end(self, net, training=False, **kwargs):
            if training:
                steps.append(float(net.history[-1, "batches", -1, "train_loss"]))

    clf = hamr(tiny_bert, training__meta_interval=interval, callbacks=[Steps()]).fit(X, y)
    n_meta = -(-len(steps) // interval)  # steps 0, k, 2k, ...
    assert len(calls) == len(clf.meta_loss_history_) == n_meta < len(steps) + (interval == 1)
    assert np.all(np.isfinite(steps)) and clf.hardness_.std() > 0  # every step weighted and recorded


def test_steps_between_meta_steps_use_wnets_current_weights():
    from skimb.training.hamr import WeightNet, batch_weights
    from skimb.training.hamr._trainer import _weights_only_step

    torch.manual_seed(0)
    model, wnet = torch.nn.Linear(4, 3), WeightNet()
    x, t = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    before = [p.detach().clone() for p in wnet.parameters()]
    per_sample = lambda logits, y: torch.nn.functional.cross_entropy(logits, y, reduction="none")  # noqa: E731
    res = _weights_only_step(lambda **kw: model(kw["x"]), wnet, per_sample, {"x": x}, t)
    expected = batch_weights(wnet, per_sample(model(x), t).detach())
    torch.testing.assert_close(res.weights, expected)
    assert res.meta_loss is None and res.losses.requires_grad and not res.weights.requires_grad
    assert all(torch.equal(a, b) for a, b in zip(before, wnet.parameters()))  # WNet untouched


@pytest.mark.parametrize("finetune", ["head", "lora"])
def test_finetune_modes(tiny_bert, toy_data, finetune):
    X, y = toy_data
    rec = Recorder()
    lr = 2e-3 if finetune == "head" else 5e-3
    clf = hamr(tiny_bert, finetune=finetune, lr=lr, training__meta_step="full", training__oversample_ratio=1.2,
               callbacks=[rec]).fit(X, y)
    n = len(clf.hardness_)
    assert rec.samples == [n, round(1.2 * n)]  # resampling over cached features too
    assert clf.wnet_ is not None and np.all(np.isfinite(clf.predict_proba(X)))


def test_hardness_reference_rule_and_index_kinds(tiny_bert, toy_data):
    X, y = toy_data
    clf = hamr(tiny_bert, training__hardness_update="reference", training__knn_index="hnsw", training__knn_k=3,
               training__temperature=2.0).fit(X, y)
    assert clf.hardness_.sum() == pytest.approx(1.0) and clf.neighbor_boost_.max() == 1.0


# ------------------------------------------------------------------------- meta set


@pytest.mark.parametrize("topup", ["move", "share", "none"])
def test_meta_set_from_validation_split(tiny_bert, toy_data, topup):
    X, y = toy_data
    clf = hamr(tiny_bert, validation_fraction=0.25, max_epochs=1, training__meta_topup=topup).fit(X, y)
    meta, train = set(clf.meta_set_indices_), set(clf.hamr_train_indices_)
    valid = set(range(len(X))) - train - meta
    if topup == "move":  # topped-up examples leave training
        assert not meta & train and len(meta) + len(train) == len(X)
    elif topup == "share":  # ... or stay in training as well
        assert meta & train and not valid and len(train) < len(X)
        assert len(meta - train) + len(train) == len(X)
    else:  # the validation split as it is
        assert not meta & train and len(meta) + len(train) == len(X)
        assert len(meta) == round(0.25 * len(X))
    if topup != "none":  # every class reaches the median
        counts = {c: int(np.sum(y[clf.meta_set_indices_] == c)) for c in np.unique(y)}
        assert min(counts.values()) >= int(np.median(sorted(counts.values()))) - 1


def test_explicit_meta_set(tiny_bert, toy_data):
    X, y = toy_data
    clf = hamr(tiny_bert, training__meta_set=(X[:9], y[:9]), max_epochs=1).fit(X, y)
    assert clf.meta_set_size_ == 9 and clf.meta_set_indices_ is None
    assert len(clf.hardness_) == len(X)  # nothing leaves the training set
    with pytest.raises(ValueError, match="not seen in y"):
        hamr(tiny_bert, training__meta_set=(X[:2], ["flood", "unknown"])).fit(X, y)
    with pytest.raises(ValueError, match="meta_set: X has 2 samples but y has 1"):
        hamr(tiny_bert, training__meta_set=(X[:2], ["flood"])).fit(X, y)


def test_split_meta_set_and_multilabel_top_up():
    y = np.array([0] * 20 + [1] * 8 + [2] * 4)
    train, meta = split_meta_set(y, "multiclass", np.arange(32), None, seed=0)
    assert len(train) + len(meta) == 32 and not set(train) & set(meta)
    # ten classes, 60 rows: the held-out share grows to one row per class (stratified)
    y10 = np.repeat(np.arange(10), 6)
    train, meta = split_meta_set(y10, "multiclass", np.arange(60), None, seed=0)
    assert np.bincount(y10[meta], minlength=10).tolist() == [1] * 10 and len(train) == 50
    Y = np.zeros((12, 3), dtype=np.float32)
    Y[:8, 0] = 1
    Y[8:, 1] = 1
    Y[10:, 2] = 1
    moved, keep = build_balanced_meta_set_multilabel(Y[:9], Y[9:], random_state=0)
    assert sorted(np.concatenate([moved, keep]).tolist()) == list(range(9))


def test_multilabel(tiny_bert, toy_data):
    X, y = toy_data
    Y = np.stack([y == "flood", y != "flood", np.isin(y, ["injury", "donation"])], axis=1).astype(int)
    clf = hamr(tiny_bert, max_epochs=1).fit(X, Y)
    assert clf.predict(X).shape == Y.shape and clf.meta_set_size_ > 0
    assert set(clf.sample_weights_history_[0]["per_class"]) == {0, 1, 2}


def multilabel_targets(y):
    return np.stack([y == "flood", y != "flood", np.isin(y, ["injury", "donation"])], axis=1).astype(int)


@pytest.mark.parametrize("class_aware", [False, True])
def test_label_unit_weights_each_term(tiny_bert, toy_data, class_aware):
    """weight_unit="label": one WNet weight per (text, label) term, mean 1 over the batch's terms;
    a text's hardness follows the weight its whole loss got."""
    X, y = toy_data
    Y = multilabel_targets(y)
    spy = StepWeights()
    clf = hamr(tiny_bert, training__weight_unit="label", training__class_aware=class_aware,
               callbacks=[spy]).fit(X, Y)
    assert clf.weight_unit_ == "label" and clf.wnet_.linear1.in_features == (3 if class_aware else 1)
    assert len(spy.steps) == len(spy.targets) > 0
    for w, t in zip(spy.steps, spy.targets):
        assert w.shape == (t.numel(),)  # a weight per term
        clipped = abs(float(w.min()) - 0.1) < 1e-6 or abs(float(w.max()) - 8.0) < 1e-5
        assert abs(float(w.mean()) - 1.0) < 1e-4 or clipped
    terms = torch.cat([w.reshape(t.shape) for w, t in zip(spy.steps, spy.targets)])
    assert (terms.std(dim=1) > 1e-6).all()  # a text's terms are weighted apart
    assert clf.hardness_.shape == (len(clf.hamr_train_indices_),) and np.isfinite(clf.hardness_).all()
    assert set(clf.sample_weights_history_[0]["per_class"]) == {0, 1, 2}
    assert clf.predict(X).shape == Y.shape


def test_label_unit_with_sample_weights_and_steps_between_meta_steps(tiny_bert, toy_data):
    """sample_weight scales every term of its text; the steps between meta steps weight terms too."""
    X, y = toy_data
    Y = multilabel_targets(y)
    spy = StepWeights()
    sw = np.linspace(0.5, 2.0, len(X))
    clf = hamr(tiny_bert, training__weight_unit="label", training__meta_interval=2, callbacks=[spy])
    clf.fit(X, Y, sample_weight=sw)
    assert len(spy.steps) == len(spy.targets) > 2 and all(w.shape == (t.numel(),) for w, t in zip(spy.steps, spy.targets))
    assert len(clf.meta_loss_history_) == (len(spy.steps) + 1) // 2  # every other step
    assert np.isfinite(clf.predict_proba(X)).all()


def test_label_unit_pickles(tiny_bert, toy_data):
    X, y = toy_data
    clf = hamr(tiny_bert, max_epochs=1, training__weight_unit="label", training__class_aware=True)
    clf.fit(X, multilabel_targets(y))
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.wnet_.linear1.in_features == 3 and loaded.weight_unit_ == "label"


def test_label_unit_wnet_reads_sign_and_label_size():
    from skimb.training.hamr import HAMRTraining
    from skimb.training.hamr._trainer import HAMRFit

    fit = HAMRFit(HAMRTraining(weight_unit="label", class_aware=True), task="multilabel", seed=0,
                  classes=np.arange(2), train_idx=np.arange(3))
    fit._class_feature = torch.tensor([0.5, -0.5])
    rows = fit.wnet_features(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert rows.tolist() == [[1.0, 0.5], [-1.0, -0.5], [-1.0, 0.5], [1.0, -0.5]]


def test_label_unit_is_the_sample_unit_when_every_term_weighs_the_same(tiny_bert, toy_data, monkeypatch):
    """With WNet's weights all 1, weighting terms or texts trains the same model."""
    from skimb.training.hamr import _meta, _trainer

    ones = lambda wnet, losses, **kw: torch.ones_like(losses.reshape(-1))  # noqa: E731
    monkeypatch.setattr(_meta, "batch_weights", ones)
    monkeypatch.setattr(_trainer, "batch_weights", ones)
    X, y = toy_data
    Y = multilabel_targets(y)
    by_text = hamr(tiny_bert, training__resampling=False).fit(X, Y)
    by_term = hamr(tiny_bert, training__resampling=False, training__weight_unit="label").fit(X, Y)
    np.testing.assert_allclose(by_term.predict_proba(X), by_text.predict_proba(X), **same_model_tolerance(by_term))


def test_label_unit_needs_multilabel_targets_and_label_terms(tiny_bert, toy_data):
    X, y = toy_data
    clf = hamr(tiny_bert, training__weight_unit="label")
    with pytest.raises(ValueError, match="training__weight_unit='label' supports multi-label classification only, not 'multiclass'"):
        clf.fit(X, y)
    assert not hasattr(clf, "net_")

    from skimb.losses import ImbalanceLoss

    class Summed(ImbalanceLoss):
        task = "multilabel"

        def _per_sample(self, logits, target):
            return torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1)

    clf = hamr(tiny_bert, loss=Summed, training__weight_unit="label")
    with pytest.raises(TypeError, match="weight_unit='label' needs a loss with per-label terms.*Summed"):
        clf.fit(X, multilabel_targets(y))
    assert not hasattr(clf, "net_")


@pytest.fixture
def embedding_spy(monkeypatch):
    """The embeddings each fit's FAISS index is built on, and the separate embedding passes."""
    from skimb._task import TaskAdapter
    from skimb.training.hamr import _trainer

    spy = {"index": [], "passes": 0}
    build, embed = _trainer.build_index, TaskAdapter.pretrained_embeddings

    def build_index(emb, *args, **kwargs):
        spy["index"].append(np.array(emb))
        return build(emb, *args, **kwargs)

    def pretrained_embeddings(self, *args):
        spy["passes"] += 1
        return embed(self, *args)

    monkeypatch.setattr(_trainer, "build_index", build_index)
    monkeypatch.setattr(TaskAdapter, "pretrained_embeddings", pretrained_embeddings)
    return spy


@pytest.mark.parametrize("finetune", ["full", "head"])
def test_first_epoch_embeddings_replace_the_separate_pass(tiny_bert, toy_data, embedding_spy, finetune):
    X, y = toy_data
    clf = hamr(tiny_bert, finetune=finetune).fit(X, y)
    assert embedding_spy["passes"] == 0 and len(embedding_spy["index"]) == 1
    emb = embedding_spy["index"][0]
    assert emb.shape == (len(clf.hamr_train_indices_), 32) and np.all(np.abs(emb).sum(1) > 0)
    assert clf.neighbor_boost_.max() == 1.0
    if finetune == "head":  # the head's input is the frozen pooled features: the pretrained ones
        np.testing.assert_allclose(emb, clf.embed([X[i] for i in clf.hamr_train_indices_]), atol=1e-5)
    hamr(tiny_bert, finetune=finetune, training__embedder="pretrained").fit(X, y)
    assert embedding_spy["passes"] == 1 and len(embedding_spy["index"]) == 2
    if finetune == "head":
        np.testing.assert_allclose(embedding_spy["index"][1], emb, atol=1e-5)


def test_first_epoch_embeddings_hook_is_removed(tiny_bert, toy_data):
    X, y = toy_data
    clf = hamr(tiny_bert, max_epochs=1).fit(X, y)
    assert not clf.net_.module_.dropout._forward_pre_hooks
    pickle.loads(pickle.dumps(clf))


def test_class_weight_and_embedder(tiny_bert, toy_data):
    from skimb import TransformerEmbedder

    X, y = toy_data
    emb = TransformerEmbedder(tiny_bert)
    clf = hamr(tiny_bert, class_weight="balanced", training__embedder=emb, max_epochs=1).fit(X, y)
    assert clf.neighbor_boost_.max() == 1.0 and np.all(np.isfinite(clf.predict_proba(X)))
    assert not hasattr(emb, "encoder_")  # the user's embedder is cloned, not fitted in place


# ------------------------------------------------------------------------- estimator behaviour


class WNetInputs(Callback):
    """WNet's inputs at every training step (the batch's targets and WNet's first-layer input)."""

    def initialize(self):
        self.inputs, self.targets, self._hook = [], [], None
        return self

    def on_train_begin(self, net, **kwargs):
        self._hook = net.hamr.wnet.linear1.register_forward_pre_hook(
            lambda module, args: self.inputs.append(args[0].detach().clone()))

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.targets.append(batch[1].clone())

    def on_train_end(self, net, **kwargs):
        self._hook.remove()


def test_class_aware_wnet_reads_the_class_size(tiny_bert, toy_data):
    from skimb.training.hamr import class_size_features

    X, y = toy_data
    spy, rec = WNetInputs(), Recorder()
    clf = hamr(tiny_bert, training__class_aware=True, callbacks=[spy, rec]).fit(X, y)
    assert clf.wnet_.linear1.in_features == 2
    labels = np.searchsorted(clf.classes_, y[clf.hamr_train_indices_])
    expected = class_size_features(labels, len(clf.classes_))
    size = dict(zip(clf.classes_, expected))
    assert size["flood"] > 0 > size["donation"] > size["injury"]  # 30, 12 and 6 texts before the meta set
    # the first WNet call of a step is the meta step's, on the training batch: its second column
    # is each sample's class feature
    first = spy.inputs[0]
    np.testing.assert_allclose(first[:, 1].cpu().numpy(), expected[spy.targets[0].cpu().numpy()], rtol=1e-6)
    # the meta-gradient reached the class column of WNet's first layer
    assert not torch.equal(rec.wnet_start[0][:, 1].cpu(), clf.wnet_.linear1.weight.detach()[:, 1].cpu())
    # a model with class_aware=False is a loss-only WNet
    assert hamr(tiny_bert, max_epochs=1).fit(X, y).wnet_.linear1.in_features == 1
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.wnet_.linear1.in_features == 2


def test_class_aware_needs_single_label_targets(tiny_bert, toy_data):
    X, y = toy_data
    Y = np.stack([y == "flood", y != "flood"], axis=1).astype(int)
    clf = hamr(tiny_bert, training__class_aware=True)
    with pytest.raises(ValueError, match="training__class_aware=True supports single-label classification .*only, not 'multilabel'"):
        clf.fit(X, Y)
    assert not hasattr(clf, "net_")


class StepWeights(Callback):
    """Every training step's targets and the weights HAMR trained it with."""

    def initialize(self):
        self.steps, self.targets = [], []
        return self

    def on_train_begin(self, net, **kwargs):
        record = net.hamr.record_step
        net.hamr.record_step = lambda index, result: (self.steps.append(result.weights.detach().clone()),
                                                      record(index, result))[1]

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.targets.append(batch[1].clone())


@pytest.mark.parametrize("weight_norm", ["batch", "class", "auto"])
def test_weight_norm_class_keeps_each_class_total(tiny_bert, toy_data, weight_norm):
    # within-class normalisation: WNet moves weight between samples of a class, never between
    # classes, so with class_weight the classes' balance is the loss's alone ("auto": so on class weights)
    X, y = toy_data
    spy = StepWeights()
    clf = hamr(tiny_bert, class_weight="balanced", training__weight_norm=weight_norm, callbacks=[spy]).fit(X, y)
    assert len(spy.steps) == len(spy.targets) > 0
    class_totals_kept = all(
        torch.allclose(w[t == c].sum(), (t == c).sum().to(w.dtype), atol=1e-4)
        for w, t in zip(spy.steps, spy.targets) for c in t.unique())
    assert class_totals_kept == (weight_norm != "batch")
    assert clf.weight_norm_ == ("batch" if weight_norm == "batch" else "class")


def test_weight_norm_auto_is_within_the_class_only_on_a_balancing_loss():
    from skimb.training.hamr import HAMRTraining

    assert HAMRTraining().for_task("multiclass", balanced_loss=True).weight_norm == "class"
    assert HAMRTraining().for_task("multiclass").weight_norm == "batch"
    # samples of several labels or tags have no one class; the paper's normalisation stays
    assert HAMRTraining().for_task("multilabel", balanced_loss=True).weight_norm == "batch"
    assert HAMRTraining().for_task("token", balanced_loss=True).weight_norm == "batch"
    # an explicit choice and the reference configuration stand
    assert HAMRTraining(weight_norm="batch").for_task("multiclass", balanced_loss=True).weight_norm == "batch"
    assert HAMRTraining.reference().for_task("multiclass", balanced_loss=True).weight_norm == "batch"
    # within the class WNet cannot re-balance the classes, so the meta objective stays balanced
    assert HAMRTraining().for_task("multiclass", balanced_loss=True).meta_loss == "balanced"
    assert HAMRTraining(weight_norm="batch").for_task("multiclass", balanced_loss=True).meta_loss == "mean"


def test_weight_norm_auto_without_class_weights_is_the_batch(tiny_bert, toy_data):
    X, y = toy_data
    auto = hamr(tiny_bert).fit(X, y)
    batch = hamr(tiny_bert, training__weight_norm="batch").fit(X, y)
    assert auto.weight_norm_ == "batch"
    np.testing.assert_array_equal(auto.predict_proba(X), batch.predict_proba(X))


def test_weight_norm_class_needs_single_label_targets(tiny_bert, toy_data):
    X, y = toy_data
    Y = np.stack([y == "flood", y != "flood"], axis=1).astype(int)
    clf = hamr(tiny_bert, training__weight_norm="class")
    with pytest.raises(ValueError, match="training__weight_norm='class' supports single-label classification only.*'multilabel'"):
        clf.fit(X, Y)
    assert not hasattr(clf, "net_")


def test_determinism_and_pickle(tiny_bert, toy_data):
    X, y = toy_data
    a = hamr(tiny_bert).fit(X, y)
    b = hamr(tiny_bert).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.hardness_, b.hardness_)
    c = hamr(tiny_bert, random_state=1).fit(X, y)
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))
    d = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(d.predict_proba(X), a.predict_proba(X))
    np.testing.assert_array_equal(d.hardness_, a.hardness_)


@pytest.mark.parametrize("param, value, match", [
    ("training", "meta", "training must be one of"),
    ("meta_weighting", "yes", "meta_weighting must be True or False"),
    ("hardness_alpha", -1, "hardness_alpha"),
    ("hardness_momentum", 1.0, "hardness_momentum"),
    ("hardness_update", "global", "hardness_update must be one of"),
    ("knn_k", 0, r"knn_k must be an int in \[1, inf\]"),
    ("knn_ratio", 0.0, "knn_ratio"),
    ("knn_index", "ball_tree", "knn_index must be one of"),
    ("knn_build_freq", 1.5, "knn_build_freq"),
    ("oversample_ratio", 0, "oversample_ratio"),
    ("temperature", float("nan"), "temperature"),
    ("wnet_lr", 0, "wnet_lr"),
    ("meta_update_lr", -1e-3, "meta_update_lr"),
    ("meta_step", "second_order", "meta_step must be one of"),
    ("meta_interval", 0, r"meta_interval must be an int in \[1, inf\]"),
    ("meta_features", "stale", "meta_features must be one of"),
    ("meta_refresh", 0, r"meta_refresh must be an int in \[1, inf\]"),
    ("meta_loss", "macro", "meta_loss must be one of"),
    ("draw_scheme", "stratified", "draw_scheme must be one of"),
    ("class_aware", "yes", "class_aware must be True or False"),
    ("weight_norm", "sample", "weight_norm must be one of"),
])
def test_bad_parameters(tiny_bert, toy_data, param, value, match):
    X, y = toy_data
    with pytest.raises(ValueError, match=match):
        hamr(tiny_bert, **{("" if param == "training" else "training__") + param: value}).fit(X, y)


def test_bad_meta_set_and_embedder_types(tiny_bert, toy_data):
    X, y = toy_data
    with pytest.raises(TypeError, match="meta_set must be None or a pair"):
        hamr(tiny_bert, training__meta_set=X[:5]).fit(X, y)
    with pytest.raises(ValueError, match="embedder must be one of 'first_epoch', 'pretrained' or a transformer"):
        hamr(tiny_bert, training__embedder="bge-large").fit(X, y)


# ------------------------------------------------------------------------- token classification

NER_FAST = dict(max_epochs=2, batch_size=8, random_state=0, lr=5e-3, max_length=32)


def ner_hamr(tiny_bert, **params):
    from skimb import TransformerTokenClassifier

    return TransformerTokenClassifier(tiny_bert, **{"training": "hamr", **NER_FAST, **params})


def test_token_all_switches_off_is_standard_bitwise(tiny_bert):
    from skimb import TransformerTokenClassifier

    X, y = make_ner(40)
    params = dict(validation_fraction=0.2, **NER_FAST)
    std = TransformerTokenClassifier(tiny_bert, **params).fit(X, y)
    off = TransformerTokenClassifier(tiny_bert, training="hamr", **OFF, **params).fit(X, y)
    assert isinstance(off.net_, HAMRNet)
    for a, b in zip(std.net_.module_.parameters(), off.net_.module_.parameters()):
        assert torch.equal(a, b)
    assert std.predict(X) == off.predict(X)


def test_token_hamr_trains_on_windows_with_max_token_loss(tiny_bert, monkeypatch):
    import skimb.training.hamr._trainer as trainer
    from skimb.training.hamr import sequence_loss

    X, y = make_ner(40)
    X[0] = X[0] * 6  # longer than max_length=16 tokens: several windows
    y[0] = y[0] * 6
    checked = []
    original = trainer.meta_step

    def checking_meta_step(model, wnet, opt, per_sample, inputs, target, *args, **kwargs):
        def per_sample_checked(logits, t):
            out = per_sample(logits, t)
            losses, terms = out
            # WNet weighs the max token loss (plain CE); the virtual step descends the real update's
            # loss: every labelled token at its window's weight, over the batch's labelled tokens
            labelled = t != -100
            token_ce = torch.nn.functional.cross_entropy(logits.float()[labelled], t[labelled])
            checked.append(torch.allclose(losses, sequence_loss(logits.float(), t))
                           and torch.allclose(terms.sum(), token_ce))
            return out
        return original(model, wnet, opt, per_sample_checked, inputs, target, *args, **kwargs)

    monkeypatch.setattr(trainer, "meta_step", checking_meta_step)
    rec = Recorder()
    ner = ner_hamr(tiny_bert, max_length=16, callbacks=[rec], training__draw_scheme="multinomial",
                   training__resampling=True).fit(X, y)  # pinned: "auto" reads the tag share
    assert checked and all(checked)
    # one HAMR item per window; the long sentence has several
    idx = ner.hamr_train_indices_
    assert len(ner.hardness_) == len(idx) == len(ner.neighbor_boost_)
    assert np.sum(idx == 0) >= 2
    np.testing.assert_allclose(ner.hardness_.sum(), 1.0)
    # held-out meta sentences are not trained on, topped-up ones are shared (meta_topup="share");
    # resampling drew N windows per epoch, with replacement (token models embed in a separate pass,
    # so the first epoch is resampled too)
    holdout = set(ner.meta_set_indices_.tolist()) - set(idx.tolist())
    assert ner.meta_set_size_ > 0 and holdout
    assert rec.samples == [len(idx)] * 2 and len(set(rec.indices[0])) < len(idx)
    assert ner.wnet_ is not None and np.all(np.isfinite(ner.meta_loss_history_))
    assert ner.neighbor_boost_.max() == 1.0
    summary = ner.sample_weights_history_[-1]
    assert {"O", "B-PER", "B-LOC"} <= set(summary["per_class"])
    pred = ner.predict(X)
    assert [len(p) for p in pred] == [len(s) for s in X]
    assert ner.score(X, y) >= 0.0
    pickle.loads(pickle.dumps(ner)).predict(X[:3])


@pytest.mark.parametrize("meta_step", ["full", "first_order"])
def test_token_hamr_meta_step_modes(tiny_bert, meta_step):
    X, y = make_ner(24)
    ner = ner_hamr(tiny_bert, training__meta_step=meta_step, max_epochs=1).fit(X, y)
    assert np.all(np.isfinite(ner.meta_loss_history_)) and len(ner.meta_loss_history_) > 0


def test_a_crfs_virtual_step_leaves_the_crf_out_and_changes_nothing(tiny_bert, monkeypatch):
    # the meta loss scores the CRF live, so moving it in the virtual step was work thrown away
    import skimb.training.hamr._trainer as trainer

    X, y = make_ner(24)
    params = dict(decoding="crf", training__meta_step="full", max_epochs=1)
    calls = []
    original = trainer.meta_step

    def recording(*args, **kwargs):
        calls.append(kwargs["fixed_param_names"])
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer, "meta_step", recording)
    fixed = ner_hamr(tiny_bert, **params).fit(X, y)
    assert calls and set(calls) == {("crf",)}
    monkeypatch.setattr(trainer, "meta_step", lambda *a, **kw: original(*a, **{**kw, "fixed_param_names": None}))
    moved = ner_hamr(tiny_bert, **params).fit(X, y)
    np.testing.assert_allclose(fixed.meta_loss_history_, moved.meta_loss_history_, rtol=1e-5)
    np.testing.assert_allclose(fixed.decision_function(X[:1])[0], moved.decision_function(X[:1])[0], rtol=1e-4,
                               atol=1e-5)


def test_token_meta_set_tops_up_entity_spans():
    X, y = make_ner(60, seed=3)
    classes = np.array(["O", "B-LOC", "I-LOC", "B-PER", "I-PER"])
    index = {c: k for k, c in enumerate(classes)}
    y_enc = np.empty(len(y), dtype=object)
    y_enc[:] = [np.array([index[t] for t in s]) for s in y]
    valid = np.arange(6)
    # validation with PER spans only: LOC is topped up to the median of (LOC, PER) span counts
    for i in valid:
        y_enc[i] = np.where(np.isin(y_enc[i], (1, 2)), 0, y_enc[i])
    n_per = sum(int(np.sum(y_enc[i] == 3)) for i in valid)
    train, meta = split_meta_set(y_enc, "token", np.arange(6, 60), valid, seed=0, classes=classes)
    assert set(train).isdisjoint(meta) and set(valid) <= set(meta.tolist())
    assert sorted(train.tolist() + meta.tolist()) == list(range(60))
    n_loc = sum(int(np.sum(y_enc[i] == 1)) for i in meta)
    assert n_loc >= -(-n_per // 2)  # the median of (0, n_per), rounded up


def test_token_explicit_meta_set_and_errors(tiny_bert):
    X, y = make_ner(24)
    ner = ner_hamr(tiny_bert, max_epochs=1, training__meta_set=(X[:6], y[:6])).fit(X, y)
    assert ner.meta_set_size_ == 6 and ner.meta_set_indices_ is None
    assert len(set(ner.hamr_train_indices_.tolist())) == 24  # nothing left training
    with pytest.raises(ValueError, match="meta_set has tags not seen in y"):
        ner_hamr(tiny_bert, training__meta_set=([["a", "b"]], [["B-ORG", "O"]])).fit(X, y)
    with pytest.raises(ValueError, match=r"meta_set y\[0\] has 1 tags"):
        ner_hamr(tiny_bert, training__meta_set=([["a", "b"]], [["O"]])).fit(X, y)
    with pytest.raises(ValueError, match="finetune='full' or 'lora'"):
        ner_hamr(tiny_bert, finetune="head").fit(X, y)


def test_registered_in_compare():
    from skimb.compare import METHODS, Budget

    expected = {
        "hamr": (True, "auto", True),
        "hamr_no_weighting": (False, True, True),
        "hamr_no_resampling": (True, False, False),
        "hamr_no_knn": (True, True, False),
        "hamr_none": (False, False, False),
    }
    from skimb import TransformerTokenClassifier

    for name, switches in expected.items():
        assert "token" in METHODS[name].tasks
        for task in ("multiclass", "token"):
            est = METHODS[name].build(Budget(), 0, {"task": task, "min_class_count": 5})
            assert isinstance(est, TransformerTokenClassifier) == (task == "token")
            p = est.get_params()
            assert p["training"] == "hamr" and p["validation_fraction"] == 0.1
            assert (p["training__meta_weighting"], p["training__resampling"], p["training__knn"]) == switches


def test_save_pretrained_round_trip(tiny_bert, toy_data, tmp_path):
    X, y = toy_data
    clf = hamr(tiny_bert, max_epochs=1, training__meta_set=(X[:6], y[:6].tolist())).fit(X, y)
    loaded = TransformerClassifier.load_pretrained(clf.save_pretrained(tmp_path / "m"))
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded.hardness_, clf.hardness_)
    assert loaded.training == "hamr"


def test_reference_preset_and_its_switches_reach_the_meta_step(tiny_bert, toy_data, monkeypatch):
    from skimb.training.hamr import HAMRTraining, _trainer

    ref = HAMRTraining.reference(knn=False)
    assert (ref.meta_step, ref.meta_update_lr, ref.detach_mean, ref.group_by_length, ref.meta_topup,
            ref.hardness_update, ref.knn) == ("full", 2e-4, True, False, "none", "reference", False)
    seen, real = [], _trainer.meta_step

    def spy(*args, **kwargs):
        seen.append(kwargs["detach_mean"])
        return real(*args, **kwargs)

    monkeypatch.setattr(_trainer, "meta_step", spy)
    mult = []

    class Probe(Callback):
        def on_epoch_begin(self, net, **kwargs):
            mult.append(net.batch_sampler_.mega_batch_mult)

    X, y = toy_data
    hamr(tiny_bert, training=HAMRTraining(detach_mean=True, group_by_length=False), max_epochs=2,
         callbacks=[Probe()]).fit(X, y)
    assert seen and all(seen)
    assert mult[-1] == 1  # random batches in the resampled epoch


def test_token_hamr_trains_every_token_by_default():
    X, y = make_ner(40)
    losses = {}
    for token_loss in ("mean", "max"):
        ner = ner_hamr(tiny_bert_dir(), max_epochs=1, training__token_loss=token_loss).fit(X, y)
        losses[token_loss] = ner.history_[0, "train_loss"]
    # the mean over a window's tokens is below its largest token loss; "max" trains on the largest only
    assert losses["mean"] < losses["max"]


# ------------------------------------------------------------------------- the meta objective


def test_balanced_meta_loss_is_the_mean_of_per_class_means():
    from skimb.tokens import IGNORE_INDEX
    from skimb.training.hamr import balanced_meta_weights, meta_loss_function

    torch.manual_seed(0)
    logits, y = torch.randn(7, 3), torch.tensor([0, 0, 0, 0, 1, 1, 2])
    w = torch.as_tensor(balanced_meta_weights(y.numpy(), "multiclass", 3), dtype=torch.float32)
    ce = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    by_class = torch.stack([ce[y == c].mean() for c in range(3)]).mean()
    torch.testing.assert_close(meta_loss_function("multiclass", w)(logits, y), by_class)
    torch.testing.assert_close(meta_loss_function("multiclass")(logits, y), ce.mean())
    # tokens: padding is ignored both in the counts and in the loss
    tags = torch.tensor([[0, 0, 1, IGNORE_INDEX], [0, 0, 0, 2]])
    w = torch.as_tensor(balanced_meta_weights([t.numpy() for t in tags], "token", 3), dtype=torch.float32)
    tok_logits = torch.randn(2, 4, 3)
    flat, t = tok_logits.flatten(0, 1), tags.flatten()
    keep = t != IGNORE_INDEX
    ce = torch.nn.functional.cross_entropy(flat[keep], t[keep], reduction="none")
    by_tag = torch.stack([ce[t[keep] == c].mean() for c in range(3)]).mean()
    torch.testing.assert_close(meta_loss_function("token", w)(tok_logits, tags), by_tag)
    # multi-label: a label's positives weigh as much as its negatives
    Y = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    w = torch.as_tensor(balanced_meta_weights(Y.numpy(), "multilabel", 2), dtype=torch.float32)
    ml_logits = torch.randn(4, 2)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(ml_logits, Y, reduction="none")
    pos, neg = (bce * Y).sum(0), (bce * (1 - Y)).sum(0)
    expected = ((pos * w + neg).sum() / Y.numel())
    torch.testing.assert_close(meta_loss_function("multilabel", w)(ml_logits, Y), expected)


class MetaWeightSpy(Callback):
    def initialize(self):
        self.weight = None
        return self

    def on_train_begin(self, net, **kwargs):
        self.weight = net.hamr._meta_weight


@pytest.mark.parametrize("task", ["multiclass", "multilabel", "token"])
def test_balanced_meta_loss_weights_the_meta_sets_classes(tiny_bert, toy_data, task):
    from skimb.training.hamr import balanced_meta_weights

    X, y = toy_data
    if task == "token":
        X, y = make_ner(40)
        make = ner_hamr
    else:
        make = hamr
        if task == "multilabel":
            y = np.stack([y == "flood", y != "flood", np.isin(y, ["injury", "donation"])], axis=1).astype(int)
    fits = {}
    for meta_loss in ("mean", "balanced", "auto"):
        spy = MetaWeightSpy()
        clf = make(tiny_bert, max_epochs=1, training__meta_loss=meta_loss, callbacks=[spy]).fit(X, y)
        fits[meta_loss] = (clf, spy.weight)
    clf, weight = fits["balanced"]
    assert fits["mean"][1] is None
    # "auto", the default: balanced for single-label classification, the mean elsewhere
    auto_is = "balanced" if task == "multiclass" else "mean"
    np.testing.assert_array_equal(fits["auto"][0].meta_loss_history_, fits[auto_is][0].meta_loss_history_)
    if task == "token":
        index = {c: k for k, c in enumerate(clf.classes_)}
        y_meta = [np.array([index[t] for t in y[i]]) for i in clf.meta_set_indices_]
    elif task == "multilabel":
        y_meta = y[clf.meta_set_indices_]
    else:
        y_meta = np.searchsorted(clf.classes_, y[clf.meta_set_indices_])
    np.testing.assert_allclose(weight, balanced_meta_weights(y_meta, task, len(clf.classes_)))
    assert weight.min() < weight.max()  # the meta set is not balanced exactly: the weights differ
    assert not np.allclose(clf.meta_loss_history_, fits["mean"][0].meta_loss_history_)


# ------------------------------------------------------------------------- cached meta features


class MetaEncodeSpy:
    """Records every re-encoding of the meta set: the step it happened at, its result and the
    module's parameters at that moment."""

    def __init__(self, monkeypatch):
        from skimb.training.hamr._trainer import HAMRFit

        self.calls, original = [], HAMRFit._encode_meta_set

        def spy(fit, net):
            out = original(fit, net)
            state = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}
            self.calls.append((fit.n_steps, out, state))
            return out

        monkeypatch.setattr(HAMRFit, "_encode_meta_set", spy)


def test_meta_features_auto_is_cached_with_the_head_step():
    from skimb.training.hamr import HAMRTraining

    resolved = {task: HAMRTraining().for_task(task).meta_features for task in ("multiclass", "multilabel", "token")}
    assert resolved == {"multiclass": "cached", "multilabel": "cached", "token": "cached"}
    assert HAMRTraining(meta_step="full").for_task("multiclass").meta_features == "live"
    assert HAMRTraining.reference().for_task("multiclass").meta_features == "live"


def test_wnet_lr_auto_and_reference_resolve_by_task():
    from skimb.training.hamr import HAMRTraining

    tasks = ("multiclass", "multilabel", "token")
    assert [HAMRTraining().for_task(t).wnet_lr for t in tasks] == [1e-3, 1e-4, 3e-4]
    assert [HAMRTraining(wnet_lr="reference").for_task(t).wnet_lr for t in tasks] == [1e-4, 1e-4, 3e-4]
    assert [HAMRTraining.reference().for_task(t).wnet_lr for t in tasks] == [1e-4, 1e-4, 3e-4]
    assert HAMRTraining(wnet_lr=5e-4).for_task("token").wnet_lr == 5e-4


@pytest.mark.parametrize("refresh", [1, 3])
def test_cached_meta_set_is_re_encoded_meta_refresh_times_per_epoch(tiny_bert, toy_data, monkeypatch, refresh):
    X, y = toy_data
    spy = MetaEncodeSpy(monkeypatch)
    rec = Recorder()
    clf = hamr(tiny_bert, max_epochs=2, training__meta_refresh=refresh, callbacks=[rec]).fit(X, y)
    steps_per_epoch = -(-rec.samples[0] // 8)
    every = max(1, steps_per_epoch // refresh)
    n_steps = len(clf.meta_loss_history_)
    assert [step for step, _, _ in spy.calls] == list(range(0, n_steps, every))
    assert len(spy.calls) >= 2 * refresh  # at least `refresh` times in each of the two epochs
    (features,), targets = spy.calls[0][1][0].values(), spy.calls[0][1][1]
    assert features.shape == (clf.meta_set_size_, 32) and not features.requires_grad
    assert len(targets) == clf.meta_set_size_  # one target per meta row


def test_cached_meta_features_are_the_eval_mode_features_of_the_meta_set(tiny_bert, toy_data, monkeypatch):
    X, y = toy_data
    spy = MetaEncodeSpy(monkeypatch)
    clf = hamr(tiny_bert, max_epochs=2).fit(X, y)
    module = clf.net_.module_
    for step, (inputs, targets, _), state in (spy.calls[0], spy.calls[-1]):
        module.load_state_dict(state)
        module.eval()
        meta_texts = [X[i] for i in clf.meta_set_indices_]
        expected = torch.as_tensor(clf.embed(meta_texts))
        expected_y = torch.as_tensor(np.searchsorted(clf.classes_, y[clf.meta_set_indices_]))
        # the cache is in length order: pair each cached row with its text's features
        features = inputs["features"].cpu()
        order = torch.cdist(features, expected).argmin(dim=1)
        assert sorted(order.tolist()) == list(range(len(meta_texts)))
        torch.testing.assert_close(features, expected[order], **same_model_tolerance(clf, 1e-4, 1e-5))
        assert torch.equal(targets.cpu(), expected_y[order])
    assert not torch.equal(spy.calls[0][1][0]["features"], spy.calls[-1][1][0]["features"])  # re-encoded


def test_cached_meta_features_with_a_frozen_backbone_are_encoded_once(tiny_bert, toy_data, monkeypatch):
    X, y = toy_data
    spy = MetaEncodeSpy(monkeypatch)
    clf = hamr(tiny_bert, finetune="head", max_epochs=2, training__meta_refresh=8).fit(X, y)
    assert len(spy.calls) == 1 and len(clf.meta_loss_history_) > 1


def test_cached_and_live_meta_features_both_train(tiny_bert, toy_data, monkeypatch):
    import skimb.training.hamr._trainer as trainer

    X, y = toy_data
    seen, original = [], trainer.meta_step

    def spy(*args, **kwargs):
        seen.append(args[6])  # the meta inputs
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer, "meta_step", spy)
    cached = hamr(tiny_bert, max_epochs=1).fit(X, y)
    n_cached = len(seen)
    live = hamr(tiny_bert, max_epochs=1, training__meta_features="live").fit(X, y)
    assert all(set(m) == {"features"} and len(m["features"]) == cached.meta_set_size_ for m in seen[:n_cached])
    assert all("input_ids" in m and len(m["input_ids"]) <= 8 for m in seen[n_cached:])
    for clf in (cached, live):
        assert np.all(np.isfinite(clf.meta_loss_history_)) and clf.hardness_.std() > 0
    assert not np.allclose(cached.meta_loss_history_, live.meta_loss_history_)


def test_cached_meta_features_need_the_head_step(tiny_bert, toy_data):
    X, y = toy_data
    with pytest.raises(ValueError, match="training__meta_features='cached' needs training__meta_step='head'.*use training__meta_features='live'"):
        hamr(tiny_bert, training__meta_features="cached", training__meta_step="full").fit(X, y)


def test_meta_refresh_is_ignored_with_live_features(tiny_bert, toy_data):
    X, y = toy_data
    with pytest.warns(UserWarning, match="meta_refresh"):
        hamr(tiny_bert, max_epochs=1, training__meta_features="live", training__meta_refresh=2).fit(X, y)


def test_token_cached_meta_features_are_the_labelled_tokens(tiny_bert, monkeypatch):
    X, y = make_ner(40)
    spy = MetaEncodeSpy(monkeypatch)
    clf = ner_hamr(tiny_bert, max_epochs=1).fit(X, y)  # cached: the default
    inputs, targets, edges = spy.calls[0][1]
    n_words = sum(len(y[i]) for i in clf.meta_set_indices_)  # one labelled sub-token per word
    assert inputs["features"].shape == (1, n_words, 32) and targets.shape == (1, n_words)
    index = {c: k for k, c in enumerate(clf.classes_)}
    counts = np.bincount([index[t] for i in clf.meta_set_indices_ for t in y[i]], minlength=len(index))
    np.testing.assert_array_equal(np.bincount(targets.ravel().cpu().numpy(), minlength=len(index)), counts)
    assert np.all(np.isfinite(clf.meta_loss_history_))


def test_a_crfs_cached_meta_set_keeps_its_windows_and_their_sentence_edges(tiny_bert, monkeypatch):
    from skimb.training.hamr import meta_loss_function

    X, y = make_ner(40, max_words=14)
    spy = MetaEncodeSpy(monkeypatch)
    clf = ner_hamr(tiny_bert, max_epochs=1, decoding="crf", max_length=12).fit(X, y)
    inputs, targets, edges = spy.calls[0][1]
    n_windows = inputs["features"].shape[0]
    assert n_windows > len(clf.meta_set_indices_)  # long sentences: several windows each, one row apiece
    assert targets.shape == inputs["features"].shape[:2] and edges.shape == (n_windows, 2)
    assert edges.dtype == torch.bool and not edges.all() and edges.any()
    # the meta loss chains each window alone: the mean of the windows' likelihoods, per labelled token
    crf = clf.net_.module_.crf
    with torch.no_grad():
        logits = clf.net_.module_(**inputs)
        mask = targets != -100
        by_window = crf.nll(logits.float(), targets, mask, edges=edges).sum() / mask.sum()
        as_one_chain = crf.nll(logits.float()[mask][None], targets[mask][None], torch.ones_like(targets[mask][None],
                                                                                                  dtype=torch.bool))
        fn = meta_loss_function("token", crf=crf)
        torch.testing.assert_close(fn(logits, targets, edges=edges), by_window)
    assert not torch.isclose(by_window, as_one_chain / mask.sum())
    assert np.all(np.isfinite(clf.meta_loss_history_))


@pytest.mark.parametrize("weight_norm, objective", [("batch", "mean"), ("auto", "balanced")])
def test_auto_meta_loss_is_the_mean_when_class_weights_balance_the_loss(tiny_bert, toy_data, weight_norm, objective):
    # over the batch WNet could re-balance the classes a second time; within the class it cannot
    X, y = toy_data
    fits = {m: hamr(tiny_bert, max_epochs=1, class_weight="balanced", training__meta_loss=m,
                    training__weight_norm=weight_norm).fit(X, y)
            for m in ("auto", "mean", "balanced")}
    other = "balanced" if objective == "mean" else "mean"
    np.testing.assert_array_equal(fits["auto"].meta_loss_history_, fits[objective].meta_loss_history_)
    assert not np.allclose(fits["auto"].meta_loss_history_, fits[other].meta_loss_history_)
    assert fits["auto"].meta_objective_ == objective


@pytest.mark.parametrize("meta", [dict(training__meta_topup="none"), "explicit"])
def test_auto_meta_loss_stays_balanced_over_a_meta_set_used_as_it_is(tiny_bert, toy_data, meta):
    # the mean over an imbalanced meta set would reward the majority classes and undo class weighting
    X, y = toy_data
    if meta == "explicit":
        meta = dict(training__meta_set=(X[:20], y[:20]))
    fits = {m: hamr(tiny_bert, max_epochs=1, class_weight="balanced", training__meta_loss=m, **meta).fit(X, y)
            for m in ("auto", "mean", "balanced")}
    np.testing.assert_array_equal(fits["auto"].meta_loss_history_, fits["balanced"].meta_loss_history_)
    assert not np.allclose(fits["auto"].meta_loss_history_, fits["mean"].meta_loss_history_)


@pytest.mark.parametrize("loss", [dict(loss="weighted_ce"), dict(loss="afl", loss__alpha="balanced")])
def test_auto_meta_loss_is_the_mean_when_the_loss_balances_the_classes(tiny_bert, toy_data, loss):
    X, y = toy_data
    fits = {m: hamr(tiny_bert, max_epochs=1, training__meta_loss=m, training__weight_norm="batch", **loss).fit(X, y)
            for m in ("auto", "mean")}
    np.testing.assert_array_equal(fits["auto"].meta_loss_history_, fits["mean"].meta_loss_history_)
    plain_alpha = hamr(tiny_bert, max_epochs=1, loss="afl", loss__alpha=2.0).fit(X, y)  # a scalar balances nothing
    balanced = hamr(tiny_bert, max_epochs=1, loss="afl", loss__alpha=2.0, training__meta_loss="balanced").fit(X, y)
    np.testing.assert_array_equal(plain_alpha.meta_loss_history_, balanced.meta_loss_history_)


def test_which_losses_balance_the_classes():
    from skimb.losses import loss_balances_classes

    balancing = [("weighted_ce", {}), ("class_balanced", {}), ("ldam", {}), ("logit_adjusted", {}),
                 ("focal", {"alpha": "balanced"}), ("afl", {"loss__alpha": [1.0, 2.0]})]
    for name, params in balancing:
        assert loss_balances_classes(name, task="multiclass", **params), name
    for name, params in [("ce", {}), ("focal", {}), ("focal", {"alpha": 0.5}), ("afl", {}), ("dice", {})]:
        assert not loss_balances_classes(name, task="multiclass", **params), (name, params)
    assert not loss_balances_classes(torch.nn.CrossEntropyLoss(), task="multiclass")
    assert not loss_balances_classes("no_such_loss", task="multiclass")
    # multi-label: the distribution-balanced loss re-balances; focal and AFL with a per-label alpha
    for name, params in [("distribution_balanced", {}), ("focal_bce", {"alpha": "balanced"}),
                         ("afl", {"loss__alpha": "balanced"})]:
        assert loss_balances_classes(name, task="multilabel", **params), name
    for name, params in [("bce", {}), ("focal_bce", {}), ("focal_bce", {"alpha": 0.25}), ("afl", {})]:
        assert not loss_balances_classes(name, task="multilabel", **params), (name, params)


# ------------------------------------------------------------------------- the epoch draws


def test_systematic_draws_give_every_sample_floor_or_ceil_of_its_expected_count():
    from skimb.training.hamr import draw_epoch_indices, draw_indices

    rng = np.random.default_rng(0)
    for _ in range(20):
        p = rng.random(37) ** 3
        p[rng.integers(0, 37, 5)] = 0.0
        n = int(rng.integers(10, 80))
        counts = np.bincount(draw_indices(p, n, rng, "systematic"), minlength=37)
        expected = n * p / p.sum()
        assert counts.sum() == n and np.all(counts[p == 0] == 0)
        assert np.all((counts >= np.floor(expected - 1e-9)) & (counts <= np.ceil(expected + 1e-9)))
    # uniform weights: every sample once, in random order
    idx = draw_epoch_indices(np.ones(50), 1.0, rng=1, scheme="systematic")
    assert sorted(idx.tolist()) == list(range(50)) and idx.tolist() != list(range(50))
    # multinomial is numpy's choice with replacement, unchanged
    a = draw_indices([0.2, 0.8], 10, np.random.default_rng(3))
    b = np.random.default_rng(3).choice(2, size=10, replace=True, p=[0.2, 0.8])
    assert a.tolist() == b.tolist()
    with pytest.raises(ValueError, match="scheme must be one of"):
        draw_indices([1.0], 1, rng, "stratified")


@pytest.mark.parametrize("scheme", ["multinomial", "systematic"])
def test_hamr_epochs_follow_the_draw_scheme(tiny_bert, toy_data, monkeypatch, scheme):
    from skimb.backbones import LengthGroupedBatchSampler

    X, y = toy_data
    drawn = []
    original = LengthGroupedBatchSampler.set_draw_weights

    def spy(self, weights, n_draws, scheme="multinomial"):
        drawn.append((None if weights is None else np.array(weights), n_draws, scheme))
        return original(self, weights, n_draws, scheme)

    monkeypatch.setattr(LengthGroupedBatchSampler, "set_draw_weights", spy)
    rec = Recorder()
    clf = hamr(tiny_bert, max_epochs=3, training__draw_scheme=scheme, callbacks=[rec]).fit(X, y)
    n = len(clf.hamr_train_indices_)
    resampled = [(p, k, s) for p, k, s in drawn if p is not None]
    assert len(resampled) == 2 and all(s == scheme and k == n for _, k, s in resampled)
    for (p, k, _), seen in zip(resampled, rec.indices[1:]):  # epoch 1 visits every sample once
        counts = np.bincount(seen, minlength=n)
        expected = k * p / p.sum()
        within = np.all((counts >= np.floor(expected - 1e-9)) & (counts <= np.ceil(expected + 1e-9)))
        assert within == (scheme == "systematic")  # independent draws stray from the expected counts


# ------------------------------------------------------------------------- GBC meta set


def test_head_gradients_are_the_cross_entropy_gradients_of_the_fitted_head():
    from sklearn.linear_model import LogisticRegression

    from skimb.training.hamr import head_gradients

    rng = np.random.default_rng(0)
    H, y = rng.normal(size=(40, 5)), rng.integers(0, 3, 40)
    G = head_gradients(H, y, random_state=0)
    head = LogisticRegression(max_iter=300, random_state=0).fit(H, y)
    W = torch.tensor(np.hstack([head.coef_, head.intercept_[:, None]]), requires_grad=True)
    for i in (0, 7, 31):
        W.grad = None
        h1 = torch.tensor(np.append(H[i], 1.0))
        torch.nn.functional.cross_entropy((W @ h1)[None], torch.tensor([int(y[i])])).backward()
        np.testing.assert_allclose(G[i], W.grad.numpy().ravel(), rtol=1e-4, atol=1e-6)


def test_gbc_meta_set_takes_one_representative_per_gradient_cluster():
    from skimb.training.hamr import gbc_meta_set

    rng = np.random.default_rng(1)
    centres = np.array([[8, 0, 0], [0, 8, 0], [0, 0, 8], [-8, 0, 0]], dtype=float)
    blob = np.repeat(np.arange(4), [20, 20, 20, 5])  # class 0: blobs 0-2; class 1: blob 3
    X = centres[blob] + rng.normal(scale=0.1, size=(65, 3))
    y = (blob == 3).astype(int)
    meta = gbc_meta_set(X, y, n_clusters=3, random_state=0)
    assert sorted(blob[meta[y[meta] == 0]].tolist()) == [0, 1, 2]  # one per blob of class 0
    assert len(meta[y[meta] == 1]) == 3
    small = gbc_meta_set(X[:22], np.r_[np.zeros(20, int), [1, 1]], n_clusters=3, random_state=0)
    assert {20, 21} <= set(small.tolist())  # a class with <= n_clusters examples joins whole
    with pytest.raises(ValueError, match="n_clusters must be >= 1"):
        gbc_meta_set(X, y, n_clusters=0)


def test_hamr_with_gbc_meta_set(tiny_bert, toy_data):
    from skimb.training.hamr import HAMRTraining

    X, y = toy_data
    clf = hamr(tiny_bert, max_epochs=1, training__meta_selection="gbc", training__meta_clusters=2).fit(X, y)
    meta, trained = clf.meta_set_indices_, clf.hamr_train_indices_
    assert clf.meta_set_size_ == len(meta) > 0 and set(meta.tolist()) <= set(trained.tolist())  # they stay
    _, per_class = np.unique(np.asarray(y)[meta], return_counts=True)
    assert per_class.max() <= 2 and len(per_class) == len(np.unique(y))
    assert np.all(np.isfinite(clf.meta_loss_history_))
    with pytest.raises(ValueError, match="training__meta_selection='gbc' supports multi-class"):
        ner_hamr(tiny_bert, training__meta_selection="gbc").fit(*make_ner(24))
    assert set(HAMRTraining(meta_selection="gbc", meta_topup="move").ignored_params()) == {"meta_topup"}
    assert set(HAMRTraining(meta_clusters=5).ignored_params()) == {"meta_clusters"}


def test_meta_loss_auto_is_balanced_for_taggers_whose_tokens_are_mostly_o():
    from skimb.training.hamr import HAMRTraining

    share = HAMRTraining.SPARSE_TAG_SHARE
    assert HAMRTraining().for_task("token", majority_share=share).meta_loss == "balanced"
    assert HAMRTraining().for_task("token", majority_share=share - 0.01).meta_loss == "mean"
    assert HAMRTraining().for_task("token").meta_loss == "mean"
    # class weights balance already; an explicit choice and the reference configuration stand
    assert HAMRTraining().for_task("token", balanced_loss=True, majority_share=0.95).meta_loss == "mean"
    assert HAMRTraining(meta_loss="mean").for_task("token", majority_share=0.95).meta_loss == "mean"
    assert HAMRTraining.reference().for_task("token", majority_share=0.95).meta_loss == "mean"
    # the rule is the taggers' only
    assert HAMRTraining().for_task("multilabel", majority_share=0.95).meta_loss == "mean"
    assert HAMRTraining(weight_norm="batch").for_task("multiclass", balanced_loss=True,
                                                      majority_share=0.95).meta_loss == "mean"
    # over a meta set used as it is, class weights keep the balanced objective (round 14), sparse or not
    assert HAMRTraining(meta_topup="none").for_task("token", balanced_loss=True, majority_share=0.95).meta_loss == \
        "balanced"


def test_a_tagger_fit_measures_the_o_share_for_the_meta_objective(tiny_bert):
    from skimb import TransformerTokenClassifier

    X, y = make_ner(40)
    sparse = (X + [["plain", "words", "here", "only", "more", "filler"]] * 200,
              y + [["O"] * 6] * 200)  # entity-free sentences: well over 90% of the tokens are O
    seen = [TransformerTokenClassifier(tiny_bert, training="hamr", validation_fraction=0.2, max_epochs=1, batch_size=16,
                                       max_length=32, random_state=0).fit(*data).meta_objective_
            for data in ((X, y), sparse)]
    assert seen == ["mean", "balanced"]


def test_resampling_auto_is_off_for_taggers_with_many_sentences():
    from skimb.training.hamr import HAMRTraining

    many = HAMRTraining.RESAMPLING_MAX_SENTENCES
    assert HAMRTraining().for_task("token", n_sentences=many - 1).resampling is True
    assert HAMRTraining().for_task("token", n_sentences=many).resampling is False
    assert HAMRTraining().for_task("token").resampling is True  # nothing counted: on
    # dense entities: off whatever the size
    sparse = HAMRTraining.RESAMPLING_MIN_TAG_SHARE
    assert HAMRTraining().for_task("token", n_sentences=100, majority_share=sparse).resampling is True
    assert HAMRTraining().for_task("token", n_sentences=100, majority_share=sparse - 0.01).resampling is False
    assert HAMRTraining().for_task("token", n_sentences=many, majority_share=0.95).resampling is False
    assert HAMRTraining(resampling=True).for_task("token", majority_share=0.5).resampling is True
    assert HAMRTraining().for_task("multiclass", majority_share=0.5).resampling is True
    # an explicit choice, the reference configuration and the other tasks stand
    assert HAMRTraining(resampling=True).for_task("token", n_sentences=10_000).resampling is True
    assert HAMRTraining.reference().for_task("token", n_sentences=10_000).resampling is True
    assert HAMRTraining().for_task("multiclass", n_sentences=10_000).resampling is True
    # the epoch size (the learning-rate schedule's length) follows the resolved value
    state = type("State", (), {"config": HAMRTraining(oversample_ratio=1.5).for_task("token", n_sentences=5000)})
    assert HAMRTraining(oversample_ratio=1.5).epoch_size(100, state) == 100
    assert HAMRTraining(oversample_ratio=1.5).epoch_size(100) == 150


def test_a_tagger_fit_counts_its_training_sentences_for_resampling(tiny_bert, monkeypatch):
    from skimb import TransformerTokenClassifier
    from skimb.training.hamr import HAMRTraining

    X, y = make_ner(40)  # 32 training sentences after the 20% validation split
    params = dict(training="hamr", validation_fraction=0.2, max_epochs=1, batch_size=16, max_length=32, random_state=0)
    fitted = {}
    monkeypatch.setattr(HAMRTraining, "RESAMPLING_MIN_TAG_SHARE", 0.0)  # the size alone decides here
    for threshold in (33, 32):
        monkeypatch.setattr(HAMRTraining, "RESAMPLING_MAX_SENTENCES", threshold)
        fitted[threshold] = TransformerTokenClassifier(tiny_bert, **params).fit(X, y)
    assert fitted[33].resampling_ is True and fitted[32].resampling_ is False
    explicit = TransformerTokenClassifier(tiny_bert, training__resampling=False, **params).fit(X, y)
    for a, b in zip(fitted[32].predict_proba(X), explicit.predict_proba(X)):  # "auto" resolved is the setting
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(np.concatenate(fitted[33].predict_proba(X)), np.concatenate(explicit.predict_proba(X)))
    # a resampling setting that "auto" leaves unused is reported
    with pytest.warns(UserWarning, match=r"training__temperature is ignored: resampling='auto' is off .* \(32 here\)"):
        TransformerTokenClassifier(tiny_bert, training__temperature=2.0, **params).fit(X, y)


def test_a_tagger_fit_measures_the_o_share_for_resampling(tiny_bert):
    from skimb import TransformerTokenClassifier

    X, y = make_ner(40, max_words=4)  # 62% of the tokens are O: entities dense
    sparse = (X + [["plain", "words", "here", "only"]] * 40, y + [["O"] * 4] * 40)  # 80% O
    params = dict(training="hamr", validation_fraction=0.2, max_epochs=1, batch_size=16, max_length=32, random_state=0)
    with pytest.warns(UserWarning, match=r"training__temperature is ignored: resampling='auto' is off for NER where "
                                         r"the most frequent tag holds under 75% of the training tokens \(\d+\.\d% here\)"):
        dense = TransformerTokenClassifier(tiny_bert, training__temperature=2.0, **params).fit(X, y)
    assert dense.resampling_ is False
    assert TransformerTokenClassifier(tiny_bert, **params).fit(*sparse).resampling_ is True
    assert TransformerTokenClassifier(tiny_bert, training__resampling=True, **params).fit(X, y).resampling_ is True


def test_moving_a_rare_class_wholly_into_the_meta_set_warns(tiny_bert, toy_data):
    # (30, 12, 6) texts, half held out: the meta set's target is 6 a class, and the rarest has 3 left to move
    X, y = toy_data
    with pytest.warns(UserWarning, match=r"HAMR's meta set took every training example of 1 class\(es\) "
                                         r"\('injury'\): the model never trains on them\. Give a validation split"):
        hamr(tiny_bert, validation_fraction=0.5, training__meta_topup="move", max_epochs=1).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        hamr(tiny_bert, validation_fraction=0.5, training__meta_topup="share", max_epochs=1).fit(X, y)


class _SetHeadWeights(Callback):
    """After the ``at``-th training step, every head weight becomes ``value``."""

    def __init__(self, value, at=2):
        self.value, self.at = value, at

    def initialize(self):
        self.steps_ = 0
        return self

    def on_batch_end(self, net, training=False, **kwargs):
        self.steps_ += training
        if training and self.steps_ == self.at:
            with torch.no_grad():
                net.module_.head.weight.fill_(self.value)


@pytest.mark.parametrize("value, meta_step, names", [
    (float("nan"), "head", r"HAMR's meta step in epoch 1: the batch's training loss became non-finite.*"
                           r"Lower the learning rate \(lr\).*last finite step"),
    (1e30, "full", r"HAMR's meta step in epoch 1: the meta loss .* non-finite.*wnet_lr.*last finite step"),
])
def test_a_non_finite_loss_in_hamrs_meta_step_names_the_epoch_and_the_remedy(tiny_bert, toy_data, value, meta_step,
                                                                              names):
    """The meta step meets a diverged model first (its forward is the step's): its error names the
    epoch and the remedies, as the plain step's does (docs/hamr.md: the meta loss's names wnet_lr)."""
    X, y = toy_data
    est = hamr(tiny_bert, training__meta_step=meta_step, callbacks=[_SetHeadWeights(value)])
    with pytest.raises(FloatingPointError, match=names):
        est.fit(X, y)


def test_a_knn_k_of_every_training_row_is_warned_about(tiny_bert, toy_data):
    # every hard row's neighbours are then all the rows: the boost is 1 everywhere and changes no draw
    X, y = toy_data
    with pytest.warns(UserWarning, match=r"training__knn_k=500 is at least the \d+ training rows: .* changes no draw"):
        TransformerClassifier(tiny_bert, training="hamr", training__knn_k=500, max_epochs=1, batch_size=8,
                              random_state=0).fit(X, y)


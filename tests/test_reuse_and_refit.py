"""Correct reuse and refit: the stage-1 cache never lies, a refit keeps nothing of an earlier
fit, and a failed fit leaves no working state."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from sklearn.utils.class_weight import compute_class_weight

from skimb import TransformerClassifier, TransformerTokenClassifier
from skimb.heads import CosineLinear, Head
from skimb.losses import available_losses
from skimb.training import StageCache, fingerprint, stage1_cache

from conftest import make_ner

FAST = dict(max_epochs=2, batch_size=8, random_state=0)
CALORA = dict(head="calora", head__k=2, head__rank=2, head__epochs=3, head__lr=1e-2)
HAMR = dict(training="hamr", lr=5e-3, training__knn_k=3)


pytestmark = pytest.mark.usefixtures("empty_stage1_cache")


# ------------------------------------------------------------------ stage-1 reuse
@pytest.mark.parametrize("cv", [4, 5])
def test_grid_fits_stage1_once_per_fold_at_any_cv(tiny_bert, toy_data, cv):
    X, y = toy_data
    search = GridSearchCV(TransformerClassifier(tiny_bert, **CALORA, **{**FAST, "max_epochs": 1}),
                          {"head__k": [1, 2, 3]}, cv=cv, scoring="f1_macro", refit=False)
    search.fit(X, y)
    assert stage1_cache.misses == cv  # one stage 1 per fold, whatever the number of candidates
    assert stage1_cache.hits == 3 * cv - cv


@pytest.mark.parametrize("training", [{}, HAMR], ids=["standard", "hamr"])
def test_linear_head_reuses_a_staged_heads_stage1_and_stores_none(tiny_bert, toy_data, training):
    X, y = toy_data
    params = dict(class_weight="balanced", validation_fraction=0.25, **training, **FAST)
    fresh = TransformerClassifier(tiny_bert, **params).fit(X, y)
    assert not fresh.stage1_cached_ and len(stage1_cache) == 0  # a linear fit stores nothing
    staged = TransformerClassifier(tiny_bert, **params, **CALORA).fit(X, y)
    reused = TransformerClassifier(tiny_bert, **params).fit(X, y)
    assert reused.stage1_cached_ and reused._stage1_key_ is None  # predictions do not go through the feature cache
    assert reused.stage1_train_time_s_ == staged.stage1_time_s_  # the cost of the stage 1 it uses
    np.testing.assert_array_equal(reused.predict_proba(X), fresh.predict_proba(X))
    changed = TransformerClassifier(tiny_bert, **{**params, "head_lr_multiplier": 10.0}).fit(X, y)
    assert not changed.stage1_cached_


@pytest.mark.parametrize("training", [{}, HAMR], ids=["standard", "hamr"])
def test_plain_fits_share_their_stage1_only_within_sharing(tiny_bert, toy_data, training):
    X, y = toy_data
    params = dict(validation_fraction=0.25, **training, **FAST)
    fresh = TransformerClassifier(tiny_bert, **params).fit(X, y)
    assert len(stage1_cache) == 0 and not stage1_cache.shares(fresh)
    with stage1_cache.sharing():
        first = TransformerClassifier(tiny_bert, **params).fit(X, y)
        again = TransformerClassifier(tiny_bert, threshold="tuned", **params).fit(X, y)
        assert stage1_cache.shares(first) and len(stage1_cache) == 1
    assert not stage1_cache.shares(first) and len(stage1_cache) == 0  # dropped when the block ends
    assert not first.stage1_cached_ and again.stage1_cached_ and again._stage1_key_ is None
    assert again.stage1_train_time_s_ == first.fit_time_s_  # the cost of the stage 1 it uses
    for est in (first, again):  # a stored or loaded stage 1 predicts as an unshared fit does
        np.testing.assert_array_equal(est.predict_proba(X), fresh.predict_proba(X))
    if training:
        np.testing.assert_array_equal(again.hardness_, fresh.hardness_)
    alone = TransformerClassifier(tiny_bert, **params).fit(X, y)  # outside the block: stores nothing
    assert not alone.stage1_cached_ and len(stage1_cache) == 0


def test_sharing_blocks_nest_choose_their_fits_and_drop_on_errors(tiny_bert, toy_data):
    X, y = toy_data
    params = dict(validation_fraction=0.25, **FAST)
    with stage1_cache.sharing(share=lambda est: est.class_weight is not None):
        TransformerClassifier(tiny_bert, **params).fit(X, y)  # not chosen: stores nothing
        assert len(stage1_cache) == 0
        with stage1_cache.sharing():  # an inner block keeps the outer choice and drops nothing on exit
            TransformerClassifier(tiny_bert, class_weight="balanced", **params).fit(X, y)
        assert len(stage1_cache) == 1
    assert len(stage1_cache) == 0
    with pytest.raises(RuntimeError), stage1_cache.sharing():
        TransformerClassifier(tiny_bert, **params).fit(X, y)
        assert len(stage1_cache) == 1
        raise RuntimeError("interrupted")
    assert len(stage1_cache) == 0 and not stage1_cache.shares(TransformerClassifier(tiny_bert))


def test_a_staged_head_on_a_plain_fits_stage1_computes_its_stage2_inputs(tiny_bert, toy_data):
    X, y = toy_data
    params = dict(validation_fraction=0.25, **FAST)
    unshared = TransformerClassifier(tiny_bert, **params, **CALORA).fit(X, y)
    stage1_cache.clear()
    with stage1_cache.sharing():
        TransformerClassifier(tiny_bert, **params).fit(X, y)
        staged = TransformerClassifier(tiny_bert, **params, **CALORA).fit(X, y)
        assert len(stage1_cache) == 1  # the plain fit's entry, which the staged head loaded
    assert staged.stage1_cached_ and not unshared.stage1_cached_
    np.testing.assert_allclose(staged.predict_proba(X), unshared.predict_proba(X), rtol=1e-5, atol=1e-6)


class _CosineStage1Head(Head):
    """A staged head without parameters that trains stage 1 on cosine logits: not a linear stage 1."""

    has_stage2 = True

    def prepare(self, module, *, loss=None):
        module.head = CosineLinear(module.head.weight.detach(), scale=4.0)

    def restore(self, module, n_classes, *, multilabel):
        self.prepare(module)


def test_a_subclass_that_reshapes_stage1_is_not_linear_unless_it_says_so():
    from skimb.heads import CALoRAHead, LinearHead

    class Reshaping(LinearHead):
        def prepare(self, module, *, loss=None):
            module.head = CosineLinear(module.head.weight.detach(), scale=4.0)

    class Declared(Reshaping):
        linear_stage1 = True

    assert LinearHead.linear_stage1 and CALoRAHead.linear_stage1  # CALoRA's prepare only checks
    assert not Reshaping.linear_stage1 and Declared.linear_stage1


def test_a_head_that_reshapes_stage1_never_shares_a_linear_stage1(tiny_bert, toy_data):
    X, y = toy_data
    params = dict(validation_fraction=0.25, **FAST)
    TransformerClassifier(tiny_bert, **params, **CALORA).fit(X, y)  # caches a linear stage 1
    custom = TransformerClassifier(tiny_bert, head=_CosineStage1Head(), **params).fit(X, y)
    assert not custom.stage1_cached_ and isinstance(custom.net_.module_.head, CosineLinear)
    again = TransformerClassifier(tiny_bert, head=_CosineStage1Head(), **params).fit(X, y)
    assert again.stage1_cached_  # its own entry
    np.testing.assert_array_equal(again.predict_proba(X), custom.predict_proba(X))
    linear = TransformerClassifier(tiny_bert, **params).fit(X, y)
    assert linear.stage1_cached_ and isinstance(linear.net_.module_.head, torch.nn.Linear)


def test_decision_rule_and_prediction_settings_share_stage1(tiny_bert, toy_data):
    X, y = toy_data
    params = dict(validation_fraction=0.25, **CALORA, **FAST)
    first = TransformerClassifier(tiny_bert, **params).fit(X, y)
    tuned = TransformerClassifier(tiny_bert, threshold="tuned", quantize="int8", **params).fit(X, y)
    assert not first.stage1_cached_ and tuned.stage1_cached_
    assert hasattr(tuned, "logit_offsets_") and not hasattr(first, "logit_offsets_")


def test_cache_over_budget_spills_to_disk_and_loses_nothing():
    cache = StageCache(budget_mib=0)
    entries = {f"k{i}": {"state": {"w": torch.full((4,), float(i))}, "history": [{"epoch": 1}],
                         "stage2_inputs": (torch.zeros(2, 3), torch.arange(2), None), "fit_time_s": 1.0}
               for i in range(5)}
    for key, entry in entries.items():
        cache.put(key, entry)
    assert len(cache) == 1  # only the newest is held in memory
    for i, key in enumerate(entries):
        got = cache.get(key)
        assert got is not None and torch.equal(got["state"]["w"], torch.full((4,), float(i)))
    assert cache.misses == 0


def _multiclass_loss_configs():
    configs = [(name, {}) for name in available_losses("multiclass")]
    configs.append(("ldam", {"loss__drw_epoch": 1, "loss__s": 1.0}))  # deferred re-weighting
    configs.append(("class_balanced", {"loss__drw_epoch": 1}))  # CE-DRW
    return configs


@pytest.mark.parametrize("loss,extra", _multiclass_loss_configs(), ids=lambda v: str(v))
def test_cache_hit_equals_miss_for_every_loss(tiny_bert, toy_data, loss, extra):
    X, y = toy_data
    params = dict(loss=loss, class_weight="balanced", **extra, **CALORA, **FAST)
    miss = TransformerClassifier(tiny_bert, **params).fit(X, y)
    hit = TransformerClassifier(tiny_bert, **params).fit(X, y)
    assert not miss.stage1_cached_ and hit.stage1_cached_
    np.testing.assert_array_equal(hit.predict_proba(X), miss.predict_proba(X))
    if "loss__drw_epoch" in extra:  # the hit replays the schedule: the loss is left re-weighted, as the miss's
        assert not np.all(miss.loss_class_weight_ == 1.0)
        np.testing.assert_array_equal(hit.loss_class_weight_, miss.loss_class_weight_)


@pytest.mark.parametrize("extra", [{}, {"loss": "ldam", "loss__drw_epoch": 1, "loss__s": 1.0}])
def test_token_cache_hit_equals_miss(tiny_bert, extra):
    X, y = make_ner(32)
    params = dict(class_weight="balanced", max_length=32, **extra, **CALORA, **FAST)
    miss = TransformerTokenClassifier(tiny_bert, **params).fit(X, y)
    hit = TransformerTokenClassifier(tiny_bert, **params).fit(X, y)
    assert hit.stage1_cached_
    for a, b in zip(hit.predict_proba(X), miss.predict_proba(X)):
        np.testing.assert_array_equal(a, b)


def test_stage1_key_hashes_content_not_repr(tiny_bert, toy_data):
    X, y = toy_data
    big = np.zeros(2000)
    changed = big.copy()
    changed[1000] = 1.0  # repr() elides the middle of arrays over 1000 entries
    assert fingerprint({"a": big}) != fingerprint({"a": changed})
    est = TransformerClassifier(tiny_bert, **CALORA, **FAST)
    y_enc = np.unique(y, return_inverse=True)[1]
    keys = []
    for value in (big, changed):
        est.set_params(loss__alpha=value)
        keys.append(est._stage1_key(X, y_enc, None, 0, tiny_bert))
    assert keys[0] != keys[1]


def test_stage1_key_names_the_training_recipe(tiny_bert, toy_data, monkeypatch):
    # a stage 1 that an earlier version (other training numerics) cached on disk is not this one's
    import skimb._estimator as estimator_module

    X, y = toy_data
    y_enc = np.unique(y, return_inverse=True)[1]
    est = TransformerClassifier(tiny_bert, **CALORA, **FAST)
    now = est._stage1_key(X, y_enc, None, 0, tiny_bert)
    monkeypatch.setattr(estimator_module, "_STAGE1_RECIPE", estimator_module._STAGE1_RECIPE - 1)
    assert est._stage1_key(X, y_enc, None, 0, tiny_bert) != now


def test_stage1_key_holds_the_resolved_learning_rate(tiny_bert, toy_data):
    # lr="auto" is keyed by what it resolved to: a later rule for "auto" is another stage 1, and an
    # explicit rate equal to the resolved one trains the same stage 1
    X, y = toy_data
    y_enc = np.unique(y, return_inverse=True)[1]
    auto = TransformerClassifier(tiny_bert, **CALORA, **FAST)
    explicit = TransformerClassifier(tiny_bert, lr=2e-4, **CALORA, **FAST)
    key = auto._stage1_key(X, y_enc, None, 0, tiny_bert, lr=2e-4)
    assert key == explicit._stage1_key(X, y_enc, None, 0, tiny_bert, lr=2e-4)
    assert key != auto._stage1_key(X, y_enc, None, 0, tiny_bert, lr=1e-4)
    fitted = auto.fit(X, y)
    assert fitted.lr_ == 2e-4 and explicit.fit(X, y).stage1_cached_  # the explicit fit loads auto's stage 1


def test_stage1_key_holds_how_this_process_computes(tiny_bert, toy_data):
    # device="auto" and n_threads=None resolve per process: a stage 1 trained under bf16 autocast on a
    # GPU, or with other CPU threads (another order of floating-point sums), is not what this fit would
    # train, so a cache hit (a shared head__memory folder) would not equal a miss
    from skimb._base import torch_threads

    X, y = toy_data
    y_enc = np.unique(y, return_inverse=True)[1]
    est = TransformerClassifier(tiny_bert, **CALORA, **FAST)
    assert est._stage1_key(X, y_enc, None, 0, tiny_bert, device="cuda") != \
        est._stage1_key(X, y_enc, None, 0, tiny_bert, device="cpu")
    with torch_threads(1):
        TransformerClassifier(tiny_bert, **CALORA, **FAST).fit(X, y)
    with torch_threads(2):
        assert not TransformerClassifier(tiny_bert, **CALORA, **FAST).fit(X, y).stage1_cached_
        assert TransformerClassifier(tiny_bert, **CALORA, **FAST).fit(X, y).stage1_cached_
        # the thread count is what is keyed, not how it was asked for: n_threads=2 is the same computation
        assert TransformerClassifier(tiny_bert, **CALORA, **FAST, n_threads=2).fit(X, y).stage1_cached_


def test_stage1_key_is_none_for_a_loss_class_without_a_stable_identity(tiny_bert, toy_data):
    """A loss class defined inside a function cannot be fingerprinted: no cache, and the fit runs."""
    from skimb.losses import CrossEntropyLoss

    class LocalLoss(CrossEntropyLoss):
        pass

    X, y = toy_data
    est = TransformerClassifier(tiny_bert, loss=LocalLoss, **FAST)
    assert est._stage1_key(X, np.unique(y, return_inverse=True)[1], None, 0, tiny_bert) is None
    assert est.fit(X, y).predict(X[:3]).shape == (3,) and not est.stage1_cached_


def test_training_steps_with_fused_adamw_on_the_cpu(tiny_bert, toy_data):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, device="cpu", **FAST).fit(X, y)
    assert clf.net_.optimizer_.defaults["fused"] is True


def test_stage1_key_sees_what_a_fitted_estimator_learnt(tiny_bert, toy_data):
    from sklearn.preprocessing import StandardScaler

    X, y = toy_data
    y_enc = np.unique(y, return_inverse=True)[1]
    a = StandardScaler().fit(np.zeros((3, 2)))
    b = StandardScaler().fit(np.ones((3, 2)))
    assert repr(a) == repr(b)
    keys = [TransformerClassifier(tiny_bert, training="hamr", training__embedder=e, **CALORA, **FAST)._stage1_key(X, y_enc, None, 0, tiny_bert)
            for e in (a, b)]
    assert keys[0] != keys[1]


def test_calora_parameters_are_checked_before_stage1(tiny_bert, toy_data):
    X, y = toy_data
    est = TransformerClassifier(tiny_bert, **{**CALORA, "head__k": 10}, **FAST)
    with pytest.raises(ValueError, match="head__k=10 routes more classes than the 3 of this target"):
        est.fit(X, y)
    assert stage1_cache.misses == 0 and not hasattr(est, "net_")


def test_estimators_sharing_a_stage1_share_no_history(tiny_bert, toy_data):
    X, y = toy_data
    a = TransformerClassifier(tiny_bert, **CALORA, **FAST).fit(X, y)
    b = TransformerClassifier(tiny_bert, **{**CALORA, "head__k": 1}, **FAST).fit(X, y)
    assert b.stage1_cached_ and b.history_ is not a.history_
    np.testing.assert_array_equal(a.history_[:, "train_loss"], b.history_[:, "train_loss"])
    b.history_.record("train_loss", -1.0)
    assert a.history_[-1, "train_loss"] != -1.0


class _Boom:
    opened = False

    def __reduce__(self):
        return (_Boom._open, ())

    @staticmethod
    def _open():
        _Boom.opened = True
        return {}


def test_disk_cache_never_unpickles_code(tiny_bert, toy_data, tmp_path):
    X, y = toy_data
    est = TransformerClassifier(tiny_bert, head__memory=str(tmp_path), **CALORA, **FAST)
    est.fit(X, y)
    (path,) = (tmp_path / "skimb-stage1").glob("*.pt")
    torch.save(_Boom(), path)  # a planted pickle in a shared folder
    stage1_cache.clear()
    with pytest.warns(UserWarning, match="unreadable stage-1 cache file"):
        refit = TransformerClassifier(tiny_bert, head__memory=str(tmp_path), **CALORA, **FAST).fit(X, y)
    assert not _Boom.opened and not refit.stage1_cached_
    stage1_cache.clear()
    hit = TransformerClassifier(tiny_bert, head__memory=str(tmp_path), **CALORA, **FAST).fit(X, y)
    assert hit.stage1_cached_  # the rewritten file is a safe one
    np.testing.assert_array_equal(hit.predict_proba(X), refit.predict_proba(X))


# ------------------------------------------------------------------ fitted state
_HAMR_ATTRS = ("hardness_", "wnet_", "meta_set_indices_", "meta_set_size_", "neighbor_boost_",
               "hamr_train_indices_", "meta_loss_history_", "sample_weights_history_")


def test_refit_with_other_parameters_keeps_nothing_of_the_earlier_fit(tiny_bert, toy_data):
    X, y = toy_data
    est = TransformerClassifier(tiny_bert, **HAMR, **CALORA, **FAST).fit(X, y)
    assert all(hasattr(est, a) for a in _HAMR_ATTRS + ("adapter_norms_",))
    est.set_params(training="standard", head="linear").fit(X, y)
    left = [a for a in _HAMR_ATTRS + ("adapter_norms_", "routing_topk_coverage_", "stage2_time_s_", "stage2_balance_")
            if hasattr(est, a)]
    assert left == []
    assert est.stage1_cached_ is False  # set by every fit now, and this one trained its own stage 1


def test_calora_with_hamr_sets_hamr_attributes_on_a_cache_hit(tiny_bert, toy_data):
    X, y = toy_data
    miss = TransformerClassifier(tiny_bert, **HAMR, **CALORA, **FAST).fit(X, y)
    hit = TransformerClassifier(tiny_bert, **HAMR, **{**CALORA, "head__k": 1}, **FAST).fit(X, y)
    assert hit.stage1_cached_
    for name in _HAMR_ATTRS:
        assert hasattr(hit, name), name
    np.testing.assert_array_equal(hit.hardness_, miss.hardness_)
    assert hit.wnet_ is not miss.wnet_
    for p, q in zip(hit.wnet_.parameters(), miss.wnet_.parameters()):
        assert torch.equal(p, q)


def test_failed_fit_leaves_no_working_state(tiny_bert, toy_data, monkeypatch):
    from skimb.training.hamr import HAMRFit

    X, y = toy_data

    def broken_attach(self, *args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(HAMRFit, "attach", broken_attach)
    est = TransformerClassifier(tiny_bert, **HAMR, **FAST)
    with pytest.raises(RuntimeError, match="interrupted"):
        est.fit(X, y)
    assert not hasattr(est, "_hamr")
    pickle.dumps(est)


class _TinyModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Linear(4, 8)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.head(torch.tanh(self.body(x)))


def test_meta_step_never_steps_wnet_into_non_finite_weights():
    from skimb.training.hamr import WeightNet, make_wnet_optimizer, meta_step

    torch.manual_seed(0)
    model = _TinyModel()
    wnet = WeightNet()
    before = [p.detach().clone() for p in wnet.parameters()]
    x, y = torch.randn(6, 4), torch.randint(0, 3, (6,))

    def per_sample(logits, t):
        return torch.nn.functional.cross_entropy(logits, t, reduction="none")

    def nan_meta_loss(logits, t):
        return per_sample(logits, t).mean() * float("nan")

    with pytest.raises(FloatingPointError, match="WNet was not updated"):
        meta_step(model, wnet, make_wnet_optimizer(wnet, lr=1e-2),
                  per_sample, {"x": x}, y, {"x": x}, y, nan_meta_loss, meta_update_lr=0.1, mode="full")
    for p, q in zip(before, wnet.parameters()):
        assert torch.equal(p, q)


def test_balanced_class_weight_uses_the_training_split(tiny_bert, toy_data):
    X, y = toy_data
    est = TransformerClassifier(tiny_bert, class_weight="balanced", validation_fraction=0.3, **FAST).fit(X, y)
    classes, y_enc = np.unique(y, return_inverse=True)
    train_idx, _ = est._adapter().split(y_enc, "multiclass", 0)
    expected = compute_class_weight("balanced", classes=np.arange(3), y=y_enc[train_idx])
    np.testing.assert_allclose(est.class_weight_, expected)


@pytest.mark.parametrize("mode,forced", [("head", False), ("first_order", False), ("full", True)])
def test_only_the_full_meta_step_forces_the_math_attention_kernel(monkeypatch, mode, forced):
    import contextlib

    from skimb.training.hamr import WeightNet, make_wnet_optimizer, meta_step
    from skimb.training.hamr import _meta

    seen = []

    @contextlib.contextmanager
    def spy(enabled):
        seen.append(enabled)
        yield

    monkeypatch.setattr(_meta, "_math_sdpa", spy)

    torch.manual_seed(0)
    model, wnet = _TinyModel(), WeightNet()
    x, y = torch.randn(6, 4), torch.randint(0, 3, (6,))

    def per_sample(logits, t):
        return torch.nn.functional.cross_entropy(logits, t, reduction="none")

    meta_step(model, wnet, make_wnet_optimizer(wnet, lr=1e-2), per_sample, {"x": x}, y, {"x": x}, y,
              torch.nn.functional.cross_entropy, meta_update_lr=0.1, mode=mode,
              head_param_names=["head"] if mode == "head" else None)
    assert seen == [forced]


def test_embedder_cached_and_uncached_paths_give_the_same_unit_rows(tiny_bert, monkeypatch):
    import skimb.utils._neighbors as neighbors_module
    from skimb import TransformerEmbedder

    monkeypatch.setattr(neighbors_module, "NORMALIZE_BLOCK", 3)  # several blocks on a few texts
    texts = [f"flood water rescue {i}" for i in range(8)] + ["help", "power road"]
    cached = TransformerEmbedder(tiny_bert, max_length=16).fit()
    first = cached.transform(texts)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-6)
    first[:] = 0.0  # the caller's array is not the cache's
    again = cached.transform(texts)
    uncached = TransformerEmbedder(tiny_bert, max_length=16, cache=False).fit().transform(texts)
    assert np.array_equal(again, uncached) and not np.any(again == 0.0)
    raw = TransformerEmbedder(tiny_bert, max_length=16, cache=False, normalize=False).fit().transform(texts)
    assert np.array_equal(uncached, raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12))


def test_unit_rows_makes_no_temporary_as_large_as_its_input():
    import tracemalloc

    from skimb.utils._neighbors import NORMALIZE_BLOCK, unit_rows

    emb = np.random.default_rng(0).normal(size=(4 * NORMALIZE_BLOCK, 64)).astype(np.float32)
    expected = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    tracemalloc.start()
    try:
        out = unit_rows(emb, inplace=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out is emb and np.array_equal(out, expected)
    assert peak < emb.nbytes / 2  # one block's temporaries, not a copy of the whole array

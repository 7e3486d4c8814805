"""The stage-1 cache never serves another model nor fails a fit: a re-saved embedder backbone,
renamed labels, an unusable ``head__memory`` and a foreign or stale cache file."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import torch

from skimb import TransformerClassifier, TransformerEmbedder

from conftest import make_toy_texts

FAST = dict(max_epochs=1, batch_size=8, max_length=24, random_state=0, device="cpu")
CALORA = dict(head="calora", head__k=2, head__epochs=1)
HAMR = dict(training="hamr", training__knn_k=3)

pytestmark = pytest.mark.usefixtures("empty_stage1_cache")


@pytest.fixture(scope="module")
def small_data():
    return make_toy_texts((12, 6, 4), seed=0)


def _messages(caught):
    return [str(w.message) for w in caught]


# ------------------------------------------------------------------ the key
def test_resaving_the_embedders_backbone_changes_the_stage1_key(tiny_bert, small_data, tmp_path):
    from transformers import BertModel

    X, y = small_data
    y_enc = np.unique(y, return_inverse=True)[1]
    folder = shutil.copytree(tiny_bert, tmp_path / "embedder")
    est = TransformerClassifier(tiny_bert, training="hamr",
                                training__embedder=TransformerEmbedder(backbone=str(folder)), **CALORA, **FAST)
    before = est._stage1_key(X, y_enc, None, 0, tiny_bert)
    assert est._stage1_key(X, y_enc, None, 0, tiny_bert) == before  # stable while the files are
    model = BertModel.from_pretrained(folder)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.save_pretrained(folder)  # other weights at the same path
    assert est._stage1_key(X, y_enc, None, 0, tiny_bert) != before


def test_renamed_labels_give_the_fitted_attributes_of_an_uncached_fit(tiny_bert, small_data, empty_stage1_cache):
    X, y = small_data
    params = dict(**HAMR, **CALORA, **FAST)
    TransformerClassifier(tiny_bert, **params).fit(X, y)
    renamed = np.array([{"donation": "A", "flood": "B", "injury": "C"}[v] for v in y])  # the same order
    after = TransformerClassifier(tiny_bert, **params).fit(X, renamed)
    empty_stage1_cache.clear()
    alone = TransformerClassifier(tiny_bert, **params).fit(X, renamed)
    assert after.stage1_cached_ and not alone.stage1_cached_  # a stage 1 shared across label names
    np.testing.assert_array_equal(after.classes_, alone.classes_)
    assert list(after.sample_weights_history_[0]["per_class"]) == ["A", "B", "C"]
    assert after.sample_weights_history_ == alone.sample_weights_history_


# ------------------------------------------------------------------ head__memory
@pytest.mark.parametrize("where", ["file", "proc"])
def test_unusable_memory_is_one_warning_and_an_in_memory_cache(tiny_bert, small_data, tmp_path, where):
    X, y = small_data
    if where == "file":
        memory = tmp_path / "a-file"
        memory.write_text("x")
    else:
        memory = f"/proc/skimb-{tmp_path.name}"  # a folder nobody can create
    params = dict(head__memory=str(memory), **CALORA, **FAST)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = TransformerClassifier(tiny_bert, **params).fit(X, y)
        second = TransformerClassifier(tiny_bert, **params).fit(X, y)
    about = [m for m in _messages(caught) if "head__memory" in m]
    assert len(about) == 1 and str(memory) in about[0] and "Error" in about[0]
    assert not first.stage1_cached_ and second.stage1_cached_  # cached in this process
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))


# ------------------------------------------------------------------ foreign entries
def _fit_and_spoil(tiny_bert, X, y, tmp_path, spoil, cache):
    """A CALoRA fit that writes its stage 1 to ``tmp_path``, that file replaced by ``spoil(entry)``,
    then a fit from a fresh process cache: (the first fit, the second, its warnings, the file)."""
    params = dict(head__memory=str(tmp_path), **CALORA, **FAST)
    first = TransformerClassifier(tiny_bert, **params).fit(X, y)
    (path,) = (tmp_path / "skimb-stage1").glob("*.pt")
    torch.save(spoil(torch.load(path, weights_only=True)), path)
    cache.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        second = TransformerClassifier(tiny_bert, **params).fit(X, y)
    return first, second, _messages(caught), path


def _assert_refit(first, second, X, cache, path):
    """``second`` fitted stage 1 again (a miss), as ``first`` did, and rewrote the file."""
    assert not second.stage1_cached_ and (cache.hits, cache.misses) == (0, 1)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    assert set(torch.load(path, weights_only=True)) >= {"state", "history", "fit_time_s"}  # overwritten


@pytest.mark.parametrize("content", [{}, {"state": {}}, [1, 2]], ids=["empty", "partial", "list"])
def test_a_file_that_is_no_stage1_entry_is_a_warned_miss(tiny_bert, small_data, tmp_path, empty_stage1_cache,
                                                         content):
    X, y = small_data
    first, second, messages, path = _fit_and_spoil(tiny_bert, X, y, tmp_path, lambda entry: content,
                                                   empty_stage1_cache)
    assert any("not a stage-1 entry" in m and str(path) in m for m in messages)
    _assert_refit(first, second, X, empty_stage1_cache, path)


def test_cached_weights_that_do_not_fit_are_a_warned_refit(tiny_bert, small_data, tmp_path, empty_stage1_cache):
    X, y = small_data

    def spoil(entry):
        # right-shaped zeros but one: a load_state_dict would copy them before it failed
        state = {k: torch.zeros_like(v) for k, v in entry["state"].items()}
        state[next(iter(state))] = torch.zeros(1)
        return {**entry, "state": state}

    first, second, messages, path = _fit_and_spoil(tiny_bert, X, y, tmp_path, spoil, empty_stage1_cache)
    assert any("does not fit this model" in m for m in messages)
    _assert_refit(first, second, X, empty_stage1_cache, path)
    empty_stage1_cache.clear()
    assert TransformerClassifier(tiny_bert, head__memory=str(tmp_path), **CALORA, **FAST).fit(X, y).stage1_cached_


def test_a_memory_folder_that_cannot_be_written_is_a_warning(tmp_path, monkeypatch):
    # an existing folder without write access (a shared cache of another user) failed in mkstemp
    import skimb.training._stage_cache as stage_cache

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    cache = stage_cache.StageCache()
    monkeypatch.setattr(stage_cache.tempfile, "mkstemp", refuse)
    with pytest.warns(UserWarning, match="could not write the stage-1 cache file.*PermissionError"):
        cache.put("key", {"state": {}}, memory=str(tmp_path))
    assert cache.get("key") == {"state": {}}  # kept in memory
    assert not list((tmp_path / "skimb-stage1").glob("*"))


def test_the_nested_backbone_walk_survives_a_parameter_that_refers_back():
    from skimb._estimator import _nested_backbone_identities

    class Loop:
        def __init__(self):
            self.other = self

        def get_params(self, deep=False):
            return {"other": self.other, "backbone": None}

    assert _nested_backbone_identities({"a": Loop(), "b": [1, (2, {"c": Loop()})]}) == []


@pytest.mark.parametrize("uncached,why", [
    (dict(random_state=None), r"needs an integer random_state \(got None; set random_state=0"),
    (dict(callbacks=["epoch_timer"]), r"callbacks"),
    (dict(loss=torch.nn.CrossEntropyLoss()), r"loss module"),
])
def test_memory_that_no_key_can_use_is_a_warning_naming_why(tiny_bert, small_data, tmp_path, uncached, why):
    # head__memory asks for a stage 1 on disk; a fit that cannot be keyed caches nothing: say so, not silently
    from skorch.callbacks import EpochTimer

    X, y = small_data
    if "callbacks" in uncached:
        uncached = dict(callbacks=[EpochTimer()])
    params = {**CALORA, **FAST, "head__memory": str(tmp_path), **uncached}
    with pytest.warns(UserWarning, match=r"head__memory=.* is ignored: .*" + why):
        TransformerClassifier(tiny_bert, **params).fit(X, y)
    assert not list(tmp_path.rglob("*.pt"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # without head__memory, nothing to warn about
        TransformerClassifier(tiny_bert, **{**CALORA, **FAST, **uncached}).fit(X, y)

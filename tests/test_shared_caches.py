"""Caches shared through a folder: the frozen-feature cache (``SKIMB_FEATURE_CACHE_DIR``) and the
stage-1 cache (``head__memory``), across instances, processes, and a model saved again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from skimb.backbones import FEATURE_CACHE_ENV, FeatureCache, backbone_identity


def _counting_encoder(calls):
    def encode(texts):
        calls.append(list(texts))
        return np.array([[len(t), t.count("a")] for t in texts], dtype=np.float32)
    return encode


def test_a_second_cache_reads_what_the_first_wrote(tmp_path):
    calls = []
    first = FeatureCache(directory=tmp_path).get_or_compute(("m",), ["aa", "b", "aa"], _counting_encoder(calls))
    other = FeatureCache(directory=tmp_path)
    second = other.get_or_compute(("m",), ["b", "aa", "ccc"], _counting_encoder(calls))
    assert calls == [["aa", "b"], ["ccc"]]
    np.testing.assert_array_equal(second[:2], first[[1, 0]])
    assert other.disk_hits == 2 and other.misses == 1
    # another model key shares nothing
    FeatureCache(directory=tmp_path).get_or_compute(("other",), ["aa"], _counting_encoder(calls))
    assert calls[-1] == ["aa"]


def test_environment_variable_names_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(FEATURE_CACHE_ENV, str(tmp_path))
    cache = FeatureCache()
    assert cache.location == tmp_path
    cache.get_or_compute(("m",), ["x"], _counting_encoder([]))
    assert list((tmp_path / "skimb-features").glob("*/*.npz"))
    monkeypatch.delenv(FEATURE_CACHE_ENV)
    assert FeatureCache().location is None


def test_a_model_saved_again_at_the_same_path_starts_afresh(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"old")
    calls = []
    FeatureCache(directory=tmp_path / "cache").get_or_compute((str(model), "mean"), ["a"], _counting_encoder(calls))
    before = backbone_identity(model)
    time.sleep(0.01)
    (model / "model.safetensors").write_bytes(b"new weights")
    assert backbone_identity(model) != before
    FeatureCache(directory=tmp_path / "cache").get_or_compute((str(model), "mean"), ["a"], _counting_encoder(calls))
    assert calls == [["a"], ["a"]]


def test_unreadable_file_and_unwritable_folder_are_warnings(tmp_path):
    calls = []
    FeatureCache(directory=tmp_path).get_or_compute(("m",), ["a"], _counting_encoder(calls))
    (path,) = (tmp_path / "skimb-features").glob("*/*.npz")
    path.write_bytes(b"not an npz")
    with pytest.warns(UserWarning, match="unreadable feature cache file"):
        out = FeatureCache(directory=tmp_path).get_or_compute(("m",), ["a"], _counting_encoder(calls))
    assert calls == [["a"], ["a"]] and out.tolist() == [[1.0, 1.0]]
    blocker = tmp_path / "file"
    blocker.write_text("")  # a file where the folder should be
    with pytest.warns(UserWarning, match="could not write the feature cache folder"):
        out = FeatureCache(directory=blocker).get_or_compute(("m",), ["bb"], _counting_encoder(calls))
    assert out.tolist() == [[2.0, 0.0]]


def test_two_processes_share_features_and_stage1(tiny_bert, toy_data, tmp_path):
    """The second process encodes no text and trains no stage 1: it reads the first's files,
    and its results equal the first's bit for bit."""
    X, y = toy_data
    (tmp_path / "data.json").write_text(json.dumps({"X": list(X), "y": y.tolist()}))
    script = textwrap.dedent(f"""
        import json, sys, numpy as np
        from skimb import TransformerClassifier, TransformerEmbedder
        from skimb.backbones import feature_cache
        from skimb.training import stage1_cache
        data = json.load(open({str(tmp_path / "data.json")!r}))
        X, y = data["X"], np.array(data["y"])
        emb = TransformerEmbedder({tiny_bert!r}, max_length=32).fit().transform(X)
        clf = TransformerClassifier({tiny_bert!r}, max_epochs=1, batch_size=8, random_state=0, head="calora",
                                    head__k=2, head__epochs=2, head__memory={str(tmp_path / "stage1")!r}).fit(X, y)
        out = sys.argv[1]
        np.save(out + "_emb.npy", emb)
        np.save(out + "_proba.npy", clf.predict_proba(X))
        json.dump({{"feature_misses": feature_cache.misses, "feature_disk_hits": feature_cache.disk_hits,
                    "stage1_hits": stage1_cache.hits}}, open(out + ".json", "w"))
    """)
    env = {**os.environ, FEATURE_CACHE_ENV: str(tmp_path / "features"), "OMP_NUM_THREADS": "1"}
    stats = []
    for name in ("first", "second"):
        run = subprocess.run([sys.executable, "-c", script, str(tmp_path / name)], capture_output=True, text=True,
                             timeout=600, env=env)
        assert run.returncode == 0, run.stderr[-3000:]
        stats.append(json.loads((tmp_path / f"{name}.json").read_text()))
    first, second = stats
    # features of the frozen backbone (the embedder) and of the frozen stage-1 encoder (predict)
    assert first["feature_misses"] == 2 * len(set(X)) and first["stage1_hits"] == 0
    assert second["feature_misses"] == 0 and second["feature_disk_hits"] == 2 * len(set(X))
    assert second["stage1_hits"] == 1
    for part in ("emb", "proba"):
        np.testing.assert_array_equal(np.load(tmp_path / f"first_{part}.npy"), np.load(tmp_path / f"second_{part}.npy"))


@pytest.mark.parametrize("cache", [True, False])
def test_a_backbone_saved_again_is_read_again_in_the_same_process(tmp_path, cache):
    # the loaded-model cache and the feature cache key by the files an estimator loaded, not by the path
    import torch
    from transformers import AutoModel

    from conftest import _write_tiny_bert
    from skimb import TransformerEmbedder

    path = str(_write_tiny_bert(tmp_path / "bert"))
    texts, more = ["a flood in the city", "send help"], ["water is rising"]
    old = TransformerEmbedder(path, cache=cache).fit()
    before = old.transform(texts)
    model = AutoModel.from_pretrained(path)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    model.save_pretrained(path)
    for f in Path(path).iterdir():  # a later modification time even where the clock is coarse
        os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    held = old.transform(texts + more)  # the model fitted before the save keeps its weights
    np.testing.assert_allclose(held[:2], before, rtol=1e-5, atol=1e-6)
    after = TransformerEmbedder(path, cache=cache).fit().transform(more + texts)
    fresh = TransformerEmbedder(path, cache=False).fit().transform(more + texts)
    np.testing.assert_allclose(after, fresh, rtol=1e-5, atol=1e-6)  # none of the old model's rows
    assert not np.allclose(after[1:], before)


def test_an_estimator_pickled_before_the_backbone_identity_was_recorded_predicts_alike(tiny_bert, toy_data):
    import pickle

    from skimb import TransformerClassifier
    from skimb._task import TaskAdapter

    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, finetune="head", max_epochs=1, batch_size=8, random_state=0).fit(X, y)
    assert clf._backbone_identity == backbone_identity(tiny_bert)
    old = pickle.loads(pickle.dumps(clf))
    del old._backbone_identity  # as pickled by skimb before round 40
    adapter = TaskAdapter(old)
    assert adapter.feature_key("x") == (old.backbone_path_, "x")  # the path, whose files the cache reads
    np.testing.assert_allclose(old.predict_proba(X), clf.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_features_are_keyed_by_the_pooling_fit_built_not_one_set_since(tiny_bert, toy_data):
    # set_params(pooling=...) without a refit stored mean-pooled rows under the "cls" key for every later fit
    from skimb import TransformerClassifier, TransformerEmbedder
    from skimb.backbones import feature_cache

    X, y = toy_data
    feature_cache.clear()
    stale = TransformerEmbedder(tiny_bert, pooling="mean").fit()
    stale.set_params(pooling="cls").transform(X[:6])
    np.testing.assert_allclose(TransformerEmbedder(tiny_bert, pooling="cls").fit().transform(X[:6]),
                               TransformerEmbedder(tiny_bert, pooling="cls", cache=False).fit().transform(X[:6]),
                               rtol=1e-5, atol=1e-6)
    params = dict(finetune="head", max_epochs=1, batch_size=8, random_state=0)
    old = TransformerClassifier(tiny_bert, pooling="mean", **params).fit(X, y)
    old.set_params(pooling="cls").predict_proba(X)
    after = TransformerClassifier(tiny_bert, pooling="cls", **params).fit(X, y).predict_proba(X)
    feature_cache.clear()
    clean = TransformerClassifier(tiny_bert, pooling="cls", **params).fit(X, y).predict_proba(X)
    np.testing.assert_allclose(after, clean, rtol=1e-5, atol=1e-6)


def test_the_embedder_and_a_head_model_share_one_key_for_the_same_features(tiny_bert):
    # finetune="head" keyed (backbone, "mean", 32, None), the embedder (backbone, "mean", 32): all recomputed
    from skimb import TransformerClassifier, TransformerEmbedder
    from skimb.backbones import feature_cache

    from conftest import make_toy_texts

    X, y = make_toy_texts((20, 8, 5))
    feature_cache.clear()
    emb = TransformerEmbedder(tiny_bert, normalize=False, max_length=32, device="cpu").fit().transform(X)
    assert feature_cache.misses == len(set(X))
    clf = TransformerClassifier(tiny_bert, finetune="head", max_length=32, max_epochs=1, batch_size=8, device="cpu",
                                random_state=0).fit(X, y)
    assert feature_cache.misses == len(set(X))  # no text encoded again, in fit or in predict
    clf.predict(X)
    assert feature_cache.misses == len(set(X)) and len(feature_cache._store) == 1
    np.testing.assert_array_equal(emb, feature_cache.get_or_compute(
        (clf._backbone_identity, "mean", 32, None), X, lambda texts: pytest.fail("encoded again")))


def test_a_key_without_a_variant_and_one_ending_in_none_are_one_key():
    calls = []
    cache = FeatureCache()
    first = cache.get_or_compute(("m", "mean", 32, None), ["a", "bb"], _counting_encoder(calls))
    second = cache.get_or_compute(("m", "mean", 32), ["bb", "a"], _counting_encoder(calls))
    assert calls == [["a", "bb"]]
    np.testing.assert_array_equal(second, first[::-1])
    cache.get_or_compute(("m", "mean", 32, "int8"), ["a"], _counting_encoder(calls))  # a variant keys apart
    assert calls[-1] == ["a"]


def test_max_rows_bounds_the_rows_kept_also_for_one_large_call():
    calls = []
    cache = FeatureCache(max_rows=2)
    out = cache.get_or_compute(("k",), list("abcde"), _counting_encoder(calls))
    assert out.shape == (5, 2) and out[:, 1].tolist() == [1, 0, 0, 0, 0]  # all returned
    assert sum(len(t) for t in cache._store.values()) == 2  # the last two kept
    cache.get_or_compute(("k",), ["d", "e"], _counting_encoder(calls))
    cache.get_or_compute(("k",), ["a"], _counting_encoder(calls))
    assert calls == [list("abcde"), ["a"]]
    assert list(cache._store[("k",)]) == ["e", "a"]  # the oldest row went
    cache.get_or_compute(("other",), ["x", "y"], _counting_encoder(calls))
    assert list(cache._store) == [("other",)]  # the least recently used key first
    nothing = FeatureCache(max_rows=0)
    nothing.get_or_compute(("k",), ["a"], _counting_encoder(calls))
    nothing.get_or_compute(("k",), ["a"], _counting_encoder(calls))
    assert calls[-2:] == [["a"], ["a"]]
    with pytest.raises(ValueError, match=r"FeatureCache: max_rows must be an int >= 0"):
        FeatureCache(max_rows=-1)


def test_no_texts_is_a_clear_error_not_numpys():
    with pytest.raises(ValueError, match=r"FeatureCache.get_or_compute: texts is empty; pass at least one text"):
        FeatureCache().get_or_compute(("k",), [], _counting_encoder([]))


def test_features_under_cuda_autocast_key_apart_from_float32_ones(tiny_bert, toy_data, monkeypatch):
    # amp on CUDA encodes in bfloat16: such rows must not serve a float32 encoding (amp=False, the
    # CPU), nor the reverse; the key is all that tells them apart, so it is checked without a GPU
    import skimb._embedder
    import skimb._task
    import skimb._text_task
    from skimb import TransformerClassifier, TransformerEmbedder

    keys = []

    class Recording:
        def get_or_compute(self, key, texts, compute):
            keys.append(key)
            return np.zeros((len(texts), 4), dtype=np.float32)

    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, finetune="head", max_epochs=1, batch_size=8, random_state=0).fit(X, y)
    for module in (skimb._task, skimb._text_task, skimb._embedder):
        monkeypatch.setattr(module, "feature_cache", Recording())
    encoder = clf.net_.module_.encoder
    for amp, device in ((True, "cuda"), (False, "cuda"), (True, "cpu")):
        adapter = clf.set_params(amp=amp)._adapter()
        adapter.frozen_features(X[:2], encoder, device)
        adapter.pretrained_embeddings(X[:2], clf.net_.module_, device)
    frozen, pretrained = keys[0::2], keys[1::2]
    assert frozen[0] != frozen[1] == frozen[2] and pretrained[0] != pretrained[1] == pretrained[2]
    assert frozen[0][-1] == "bf16" and frozen[2] == (clf._backbone_identity, "mean", clf.max_length, None, None)
    embedder = TransformerEmbedder(tiny_bert, device="cpu").fit()
    embedder.transform(X[:2])
    embedder.device_ = "cuda"  # encodes under autocast there: the head model's amp key
    embedder.transform(X[:2])
    assert keys[-2] == pretrained[2][:3] and keys[-1] == pretrained[0][:3] + (None, "bf16")


def test_a_shared_folder_written_before_keys_carried_the_precision_is_not_read(tmp_path):
    # such a folder may hold bf16 rows under what is now a float32 key
    import joblib

    cache = FeatureCache(directory=tmp_path)
    key = ("m", "mean", 32)
    old = tmp_path / "skimb-features" / joblib.hash(list(key))
    assert cache._key_dir(key) != old and cache._key_dir(key).parent == old.parent


def test_a_staged_heads_features_are_keyed_by_the_max_length_of_prediction(tiny_bert, toy_data):
    # the stage-1 features of a second-stage head were keyed without max_length: after set_params(max_length=4)
    # a text predicted before kept its 128-token features, and every model sharing the stage 1 (a kNN and a
    # prototype head on one linear stage 1) then read the 4-token ones another estimator had stored
    from skimb import TransformerClassifier
    from skimb.backbones import feature_cache

    X, y = toy_data
    params = dict(max_epochs=1, batch_size=8, random_state=0)
    feature_cache.clear()
    knn = TransformerClassifier(tiny_bert, head="knn", **params).fit(X, y)
    full = knn.predict_proba(X)
    short = knn.set_params(max_length=4).predict_proba(X)
    assert not np.allclose(short, full)
    prototype = TransformerClassifier(tiny_bert, head="prototype", **params).fit(X, y)  # the same stage 1
    shared = prototype.predict_proba(X)
    feature_cache.clear()
    np.testing.assert_allclose(knn.predict_proba(X), short, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(prototype.predict_proba(X), shared, rtol=1e-5, atol=1e-6)

"""One verbose convention: progress bars where a user waits, library messages on the "skimb" logger."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from skimb import TransformerClassifier, TransformerEmbedder, TransformerTokenClassifier

from conftest import make_ner

FAST = dict(max_epochs=1, batch_size=8, random_state=0, lr=5e-3)


def test_verbose_shows_bars_for_training_stage2_and_prediction(tiny_bert, toy_data, capsys):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, head="calora", verbose=1, **FAST).fit(X, y)
    fit = capsys.readouterr()
    # skorch's epoch table (stdout; its bar shows the loss only when it refreshes) and stage 2's bar
    assert "CALoRA stage 2" in fit.err and "train_loss" in fit.out
    clf.predict(X)
    assert "predicting" in capsys.readouterr().err


def test_silent_by_default(tiny_bert, toy_data, capsys):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, head="calora", **FAST).fit(X, y)
    clf.predict(X)
    captured = capsys.readouterr()
    assert "predicting" not in captured.err and "stage 2" not in captured.err and captured.out == ""


def test_loading_a_backbone_draws_no_bar_by_default(tiny_bert, toy_data, capsys, tmp_path):
    # transformers 5 draws "Loading weights" on every first load of a backbone: verbose=0 was not silent
    import shutil

    from transformers.utils import logging as hf_logging

    backbone = shutil.copytree(tiny_bert, tmp_path / "backbone")  # a path not loaded yet in this process
    enabled = hf_logging.is_progress_bar_enabled()
    TransformerClassifier(str(backbone), **FAST).fit(*toy_data)
    TransformerEmbedder(str(backbone), cache=False).fit().transform(["a b"])
    assert "Loading weights" not in capsys.readouterr().err
    assert hf_logging.is_progress_bar_enabled() == enabled  # put back as it was


def test_loading_puts_back_huggingface_hubs_switches_group_by_group(tiny_bert, tmp_path):
    import importlib
    import shutil

    import huggingface_hub.utils as hub_utils

    states = importlib.import_module("huggingface_hub.utils.tqdm").progress_bar_states
    saved = dict(states)
    try:
        hub_utils.enable_progress_bars()
        hub_utils.disable_progress_bars("huggingface_hub.http_get")  # one group off, as a user may set it
        before = dict(states)
        backbone = shutil.copytree(tiny_bert, tmp_path / "backbone")  # a path not loaded yet in this process
        TransformerEmbedder(str(backbone), cache=False).fit()
        assert dict(states) == before  # the group came back enabled: transformers' switch resets them all
    finally:
        states.clear()
        states.update(saved)


def test_embedder_and_token_classifier_bars(tiny_bert, capsys):
    TransformerEmbedder(tiny_bert, verbose=1, cache=False).fit().transform(["a b c", "d e"])
    assert "embedding" in capsys.readouterr().err
    X, y = make_ner(n=16)
    ner = TransformerTokenClassifier(tiny_bert, verbose=1, **FAST).fit(X, y)
    capsys.readouterr()
    ner.predict(X)
    assert "predicting" in capsys.readouterr().err


def test_library_messages_go_to_the_skimb_logger(tiny_bert, toy_data, caplog, tmp_path):
    X, y = toy_data
    params = dict(head="calora", head__memory=str(tmp_path), **{**FAST, "random_state": 123})
    with caplog.at_level(logging.INFO, logger="skimb"):
        TransformerClassifier(tiny_bert, **params).fit(X, y)
        TransformerClassifier(tiny_bert, **{**params, "head__k": 3}).fit(X, y)
    messages = [r.getMessage() for r in caplog.records if r.name == "skimb"]
    assert any(m.startswith("TransformerClassifier: training on") for m in messages)
    assert any("stage 1 from the cache" in m for m in messages)  # the second fit reused stage 1
    assert sum("fitted in" in m for m in messages) == 2 and any("stage 2 (CALoRAHead)" in m for m in messages)


def test_no_handler_is_added_by_the_library():
    import skimb.utils._progress  # noqa: F401

    assert logging.getLogger("skimb").handlers == []


@pytest.mark.parametrize("verbose", [-1, "loud"])
def test_bad_verbose_is_rejected_before_fitting(tiny_bert, verbose):
    with pytest.raises((ValueError, TypeError), match="verbose"):
        TransformerEmbedder(tiny_bert, verbose=verbose).fit()


def test_prediction_and_embedding_stream_in_chunks(tiny_bert, toy_data, monkeypatch):
    """Texts are tokenised and encoded a chunk at a time into one preallocated array: the same
    outputs as a single chunk, and no tokenizer call sees more than a chunk."""
    from skimb.backbones import _batching, _modules

    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, **FAST).fit(X, y)
    emb = TransformerEmbedder(tiny_bert, cache=False).fit()
    whole_proba, whole_emb = clf.predict_proba(X), emb.transform(X)
    sizes, tokenize = [], _batching.tokenize

    def counting_tokenize(tokenizer, texts, max_length):
        sizes.append(len(texts))
        return tokenize(tokenizer, texts, max_length)

    monkeypatch.setattr(_batching, "tokenize", counting_tokenize)
    monkeypatch.setattr(_modules, "ENCODE_CHUNK", 7)
    np.testing.assert_allclose(clf.predict_proba(X), whole_proba, rtol=0, atol=1e-6)
    np.testing.assert_allclose(emb.transform(X), whole_emb, rtol=0, atol=1e-6)
    assert max(sizes) == 7 and sum(sizes) == 2 * len(X)

"""What the backbone helpers and TransformerEmbedder refuse, and how: a model object or a blank
string as ``backbone``, a device skimb does not run on, a damaged weights file, a ``max_length``
set beyond the backbone after ``fit``, and malformed arguments of the batching helpers."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from skimb import TransformerEmbedder
from skimb._base import resolve_device
from skimb.backbones import LengthGroupedBatchSampler, load_backbone, resolve_backbone, tokenize
from skimb.backbones._loading import shared_model_on
from skimb.utils._param_validation import InvalidParameterError


# -- backbone ------------------------------------------------------------------------------------
def test_a_model_object_as_backbone_gets_a_short_message_with_the_remedy(tiny_bert):
    model, tokenizer, _ = load_backbone(tiny_bert)
    for value in (model, tokenizer):
        with pytest.raises(InvalidParameterError) as info:
            TransformerEmbedder(value).fit()
        message = str(info.value)
        assert f"got a loaded {type(value).__name__} object" in message
        assert "model.save_pretrained(dir)" in message and "backbone=dir" in message
        assert len(message) < 300 and "\n" not in message  # the type, not the module's repr
    with pytest.raises(TypeError, match=r"got a loaded BertModel object.*then pass backbone=dir"):
        load_backbone(model)


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_backbone_is_refused_before_anything_loads(blank, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # what a blank name would have loaded
    with pytest.raises(InvalidParameterError, match=r"TransformerEmbedder: backbone must be .*got '\s*'\. "
                                                    r"A blank string names no backbone"):
        TransformerEmbedder(blank).fit()
    with pytest.raises(ValueError, match="names no backbone"):
        resolve_backbone(blank)


def test_a_truncated_safetensors_file_names_the_folder_and_the_remedy(tiny_bert, tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(tiny_bert, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ValueError, match=rf"Could not load the backbone '{folder}' .*SafetensorError.*truncated or "
                                         r"corrupt weights file.*save_pretrained"):
        load_backbone(str(folder))
    with pytest.raises(ValueError, match="SafetensorError"):
        TransformerEmbedder(str(folder), device="cpu").fit()


# -- device --------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", ["meta", torch.device("meta")])
def test_devices_skimb_does_not_run_on_are_refused(tiny_bert, device):
    with pytest.raises(InvalidParameterError, match=r"TransformerEmbedder: device must be 'auto', 'cpu', 'cuda', "
                                                    r"'cuda:N', 'mps' or another torch device \(not 'meta'\)"):
        TransformerEmbedder(tiny_bert, device=device).fit()
    with pytest.raises(TypeError, match="device must be"):
        resolve_device(device)
    assert resolve_device("cpu") == "cpu" and resolve_device(torch.device("cpu")) == "cpu"


def test_the_shared_backbone_never_moves_to_an_embedders_device(tiny_bert):
    """An embedder on another device encodes with a copy there: the process-wide backbone stays on
    the CPU, with its weights, for every other embedder (meta stands for any device: it empties
    whatever moves to it)."""
    model, _, _ = load_backbone(tiny_bert, copy_model=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert shared_model_on(model, "cpu") is model
    moved = shared_model_on(model, "meta")
    assert moved is not model and next(moved.parameters()).device.type == "meta"
    assert shared_model_on(model, "meta") is moved  # made once per device
    assert all(v.device.type == "cpu" and torch.equal(v, before[k]) for k, v in model.state_dict().items())

    broken = TransformerEmbedder(tiny_bert, device="cpu", cache=False).fit()
    broken.device_ = "meta"  # past validation, as a device that fails mid-encoding
    with pytest.raises((RuntimeError, NotImplementedError)):
        broken.transform(["flood water"])
    assert broken.encoder_.backbone is model and next(model.parameters()).device.type == "cpu"
    emb = TransformerEmbedder(tiny_bert, device="cpu", cache=False).fit().transform(["flood water"])
    assert emb.shape == (1, 32) and np.isfinite(emb).all()


# -- max_length after fit ------------------------------------------------------------------------
def test_embedder_checks_max_length_again_at_transform(tiny_bert):
    emb = TransformerEmbedder(tiny_bert, max_length=16, device="cpu").fit()
    emb.set_params(max_length=1000)
    with pytest.raises(ValueError, match=r"TransformerEmbedder: max_length=1000 is more tokens than the backbone "
                                         r"takes \(128 positions\); set max_length <= 128\."):
        emb.transform([" ".join(["flood"] * 300)])
    emb.set_params(max_length=0)
    with pytest.raises(InvalidParameterError, match="TransformerEmbedder: max_length must be an int in"):
        emb.transform(["flood"])
    emb.set_params(max_length=128)
    assert emb.transform([" ".join(["flood"] * 300)]).shape == (1, 32)


# -- batching helpers ----------------------------------------------------------------------------
@pytest.mark.parametrize("params, match", [
    (dict(batch_size=0), r"LengthGroupedBatchSampler: batch_size must be an int in \[1, inf\], got 0\."),
    (dict(batch_size=2.5), "batch_size must be an int"),
    (dict(batch_size=2, mega_batch_mult=0), "mega_batch_mult must be an int"),
])
def test_length_grouped_sampler_refuses_batches_of_no_examples(params, match):
    with pytest.raises(InvalidParameterError, match=match):
        LengthGroupedBatchSampler([1, 2, 3], **params)
    assert len(LengthGroupedBatchSampler([1, 2, 3], batch_size=np.int64(2))) == 2


def test_tokenize_refuses_a_single_string(tiny_bert):
    _, tokenizer, _ = load_backbone(tiny_bert, copy_model=False)
    with pytest.raises(TypeError, match=r"tokenize: texts must be a list of strings, got a single str \('hello'\); "
                                        r"wrap it in a list"):
        tokenize(tokenizer, "hello", 8)
    assert tokenize(tokenizer, ["hello"], 8) == [tokenizer("hello")["input_ids"]]

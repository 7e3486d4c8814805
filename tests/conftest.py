"""Shared fixtures: a tiny randomly initialised BERT saved to disk, toy data, data paths."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import string
import tempfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WORDS = (
    "the a an is was good bad great awful flood rain help need water food shelter rescue people "
    "missing injured dead damage road bridge power donate money volunteer thanks pray love hate "
    "happy sad angry fear surprise joy news report update city town village river storm wind"
).split()


def _write_tiny_bert(directory: Path) -> Path:
    import torch
    import transformers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(string.ascii_lowercase) + list(string.digits)
    vocab += ["##" + c for c in string.ascii_lowercase] + WORDS + list(string.punctuation)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = list(dict.fromkeys(vocab))
    if int(transformers.__version__.split(".")[0]) >= 5:
        tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    else:  # transformers 4 builds the fast tokenizer from a vocabulary file only
        (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
        tokenizer = BertTokenizerFast(vocab_file=str(directory / "vocab.txt"), do_lower_case=True)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@functools.lru_cache(maxsize=None)
def tiny_bert_dir() -> str:
    """Path of a 2-layer, 32-wide random BERT with a small WordPiece vocabulary.

    Written once per test process (also at collection time, for parametrisation).
    """
    directory = Path(tempfile.mkdtemp(prefix="skimb-tiny-bert-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return str(_write_tiny_bert(directory))


@pytest.fixture(scope="session")
def tiny_bert() -> str:
    return tiny_bert_dir()


# Entities are not in the tiny vocabulary, so they split into letters: "john" -> j ##o ##h ##n.
ENTITIES = {
    "PER": [["john"], ["mary"], ["anna", "smith"]],
    "LOC": [["paris"], ["new", "york"], ["berlin"]],
}


def make_ner(n=48, seed=0, max_words=8):
    """Random filler sentences with PER/LOC entities inserted (IOB2 tags)."""
    rng = np.random.default_rng(seed)
    X, Y = [], []
    for _ in range(n):
        words = [str(w) for w in rng.choice(WORDS, size=int(rng.integers(2, max_words)))]
        tags = ["O"] * len(words)
        for typ, names in ENTITIES.items():
            if rng.random() < 0.6:
                ent = names[int(rng.integers(len(names)))]
                p = int(rng.integers(0, len(words) + 1))
                words[p:p] = ent
                tags[p:p] = ["B-" + typ] + ["I-" + typ] * (len(ent) - 1)
        X.append(words)
        Y.append(tags)
    return X, Y



def make_toy_texts(n_per_class=(30, 12, 6), seed=0):
    """Texts whose class is signalled by a keyword, imbalanced like ``n_per_class``."""
    rng = np.random.default_rng(seed)
    keywords = ["flood", "donate", "injured", "power", "bridge"]
    filler = [w for w in WORDS if w not in keywords]
    texts, labels = [], []
    for c, n in enumerate(n_per_class):
        for _ in range(n):
            words = list(rng.choice(filler, size=rng.integers(3, 12)))
            words.insert(int(rng.integers(0, len(words) + 1)), keywords[c])
            texts.append(" ".join(words))
            labels.append(["flood", "donation", "injury", "power", "bridge"][c])
    order = rng.permutation(len(texts))
    return [texts[i] for i in order], np.array(labels)[order]


@pytest.fixture
def toy_data():
    return make_toy_texts()


@pytest.fixture
def backbone_must_not_load(monkeypatch):
    """Fails a test that loads a backbone: for errors that must come before any loading."""
    import skimb._estimator as estimator

    def no_backbone(*args, **kwargs):
        raise AssertionError("the backbone was loaded")

    monkeypatch.setattr(estimator, "load_backbone", no_backbone)


@pytest.fixture
def empty_stage1_cache():
    """The process-wide stage-1 cache, empty before and after the test."""
    from skimb.training import stage1_cache

    stage1_cache.clear()
    yield stage1_cache
    stage1_cache.clear()


def shared_data_dir() -> Path | None:
    env = os.environ.get("SKIMB_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[2] / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip("real data not found: set SKIMB_DATA_DIR to the folder holding cyclone_idai_2019/ etc.")
    return d


def same_model_tolerance(estimator, rtol=1e-5, atol=1e-6) -> dict:
    """``assert_allclose`` tolerances for two computations of one fitted model's outputs that may
    take different batches (cached features against a full forward pass, a reloaded copy): float32
    on the CPU agrees to rounding; under bf16 autocast on CUDA the backbone agrees to bf16's
    precision (8 significant bits), whatever the batch shapes."""
    import torch

    if getattr(estimator, "amp", False) and torch.device(estimator.net_.device).type == "cuda":
        return {"rtol": 0, "atol": 2e-2}
    return {"rtol": rtol, "atol": atol}


def assert_in_stage1_key(backbone, X, y, params: dict, name: str, other):
    """A CALoRA fit with ``params`` trains stage 1, a second one loads it (the same outputs), and one
    with ``params[name]`` set to ``other`` trains again: ``name`` is part of the stage-1 key.
    Run it with the ``empty_stage1_cache`` fixture."""
    import numpy as np

    from skimb import TransformerClassifier

    params = dict(params, head="calora", head__k=2, head__epochs=1)
    miss = TransformerClassifier(backbone, **params).fit(X, y)
    hit = TransformerClassifier(backbone, **params).fit(X, y)
    assert not miss.stage1_cached_ and hit.stage1_cached_
    np.testing.assert_array_equal(hit.predict_proba(X), miss.predict_proba(X))
    assert not TransformerClassifier(backbone, **{**params, name: other}).fit(X, y).stage1_cached_


def optimizer_group_lrs(est) -> dict:
    """{parameter name: (initial lr, weight_decay)} of a fitted estimator's optimizer."""
    by_id = {id(p): n for n, p in est.net_.module_.named_parameters()}
    return {by_id[id(p)]: (g["initial_lr"], g["weight_decay"])
            for g in est.net_.optimizer_.param_groups for p in g["params"]}

"""The head's own learning rate (``head_lr_multiplier``)."""

from __future__ import annotations

import numpy as np
import pytest

from skimb import TransformerClassifier
from skimb.backbones import FullFinetune, HeadFinetune, LoRAFinetune
from skimb.utils._param_validation import InvalidParameterError

from conftest import optimizer_group_lrs

FAST = dict(max_epochs=1, batch_size=8, random_state=0)


def test_head_trains_at_its_own_rate_and_the_backbone_at_lr(tiny_bert, toy_data):
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, lr=1e-3, head_lr_multiplier=10, **FAST).fit(X, y)
    groups = optimizer_group_lrs(clf)
    assert groups["head.weight"] == (pytest.approx(1e-2), 0.01)
    assert groups["head.bias"] == (pytest.approx(1e-2), 0.0)  # still no weight decay on a bias
    backbone = {n: v for n, v in groups.items() if not n.startswith("head.")}
    assert backbone and all(lr == pytest.approx(1e-3) for lr, _ in backbone.values())
    assert clf.head_lr_multiplier_ == 10.0


def test_multiplier_one_is_the_plain_optimizer(tiny_bert, toy_data):
    X, y = toy_data
    a = TransformerClassifier(tiny_bert, lr=1e-3, head_lr_multiplier=1.0, **FAST).fit(X, y)
    b = TransformerClassifier(tiny_bert, lr=1e-3, head_lr_multiplier="auto", **FAST).fit(X, y)
    assert b.head_lr_multiplier_ == 1.0  # "auto" on a multi-class target
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_auto_multiplier_depends_on_the_task_and_the_finetune_mode():
    assert FullFinetune().default_head_lr_multiplier("multiclass") == 1.0
    assert FullFinetune().default_head_lr_multiplier("multilabel") == FullFinetune.multilabel_head_lr_multiplier
    assert FullFinetune.multilabel_head_lr_multiplier > 1.0
    assert HeadFinetune().default_head_lr_multiplier("multilabel") == 1.0  # only the head trains anyway
    assert LoRAFinetune().default_head_lr_multiplier("multilabel") == 1.0  # its lr="auto" is 10x to 20x full's


def test_multilabel_auto_uses_the_finetune_default(tiny_bert, toy_data):
    X, y = toy_data
    Y = np.stack([y == y[0], y == y[-1]], axis=1).astype(int)
    clf = TransformerClassifier(tiny_bert, lr=1e-3, **FAST).fit(X, Y)
    expected = FullFinetune.multilabel_head_lr_multiplier
    assert clf.head_lr_multiplier_ == expected
    assert optimizer_group_lrs(clf)["head.weight"][0] == pytest.approx(1e-3 * expected)


@pytest.mark.parametrize("bad", [0, -1.0, "fast"])
def test_bad_multiplier_is_rejected_before_training(tiny_bert, toy_data, bad):
    X, y = toy_data
    with pytest.raises(InvalidParameterError, match="head_lr_multiplier"):
        TransformerClassifier(tiny_bert, head_lr_multiplier=bad, **FAST).fit(X, y)


def test_multilabel_head_starts_at_the_training_prior(tiny_bert, toy_data):
    X, y = toy_data
    Y = np.stack([y == y[0], np.zeros(len(y), bool)], axis=1).astype(int)
    Y[0, 1] = 1  # one positive: a rare label
    clf = TransformerClassifier(tiny_bert, max_epochs=1, lr=1e-12, head_lr_multiplier=1.0, random_state=0)
    clf.fit(X, Y)  # a learning rate so small that the head keeps its initial bias
    p = (Y.sum(0) + 1) / (len(Y) + 2)
    np.testing.assert_allclose(clf.net_.module_.head.bias.detach().cpu().numpy(), np.log(p / (1 - p)), rtol=1e-5)
    multiclass = TransformerClassifier(tiny_bert, max_epochs=1, lr=1e-12, random_state=0).fit(X, y)
    assert abs(multiclass.net_.module_.head.bias.detach().cpu().numpy()).max() < 0.5  # the default init


def test_lr_auto_of_full_fine_tuning_follows_the_backbone_width():
    full = FullFinetune()
    assert full.auto_lr(32) == full.auto_lr(384) == full.auto_lr(None) == 1e-4  # MiniLM and narrower
    assert full.auto_lr(768) == pytest.approx(5e-5)  # base-size encoders: the usual BERT rate
    assert full.auto_lr(1024) == pytest.approx(3.75e-5)
    assert LoRAFinetune().auto_lr(384) == 2e-3 and LoRAFinetune().auto_lr(768) == pytest.approx(1e-3)
    assert LoRAFinetune().auto_lr(384, task="token") == 2e-3  # no token multiplier measured for LoRA
    assert HeadFinetune().auto_lr(32) == HeadFinetune().auto_lr(1024, task="token") == 3e-2  # width-free


@pytest.mark.parametrize("n_steps, lr", [(None, 1e-4), (1125, 1e-4), (600, 1e-4), (519, 1.16e-4), (450, 1.33e-4),
                                         (300, 2e-4), (225, 2e-4), (60, 2e-4)])
def test_lr_auto_grows_on_short_fits(n_steps, lr):
    """Under 600 optimiser steps the rate grows as 600 / steps, at most twice, for full fine-tuning
    (texts and taggers) and LoRA; a head on frozen features keeps its rate."""
    assert FullFinetune().auto_lr(384, task="multiclass", n_steps=n_steps) == lr
    assert FullFinetune().auto_lr(768, task="multilabel", n_steps=n_steps) == pytest.approx(lr / 2, rel=0.01)  # width
    factor = min(2, max(1, 600 / n_steps)) if n_steps else 1
    assert FullFinetune().auto_lr(384, task="token", n_steps=n_steps) == float(f"{2e-4 * factor:.3g}")
    lora = float(f"{2e-3 * factor:.3g}")
    assert LoRAFinetune().auto_lr(384, task="multiclass", n_steps=n_steps) == lora
    assert LoRAFinetune().auto_lr(384, task="token", n_steps=n_steps) == lora
    assert HeadFinetune().auto_lr(384, n_steps=n_steps) == 3e-2  # measured at 225 steps: 3e-2 still the best


def _wide_bert(tiny_bert, directory, hidden_size):
    """A one-layer random BERT of ``hidden_size`` with the tiny BERT's tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=128)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def test_a_fit_resolves_lr_auto_for_its_backbone(tiny_bert, toy_data, tmp_path):
    X, y = toy_data  # a short fit: twice the rate of a long one
    narrow = TransformerClassifier(tiny_bert, **FAST).fit(X, y)
    wide = TransformerClassifier(_wide_bert(tiny_bert, tmp_path, 768), **FAST).fit(X, y)
    assert narrow.lr_ == 2e-4 and wide.lr_ == pytest.approx(1e-4)
    assert all(lr == pytest.approx(1e-4) for lr, _ in optimizer_group_lrs(wide).values())  # what the optimizer got
    assert TransformerClassifier(tiny_bert, lr=3e-4, **FAST).fit(X, y).lr_ == 3e-4  # a given rate stands
    assert TransformerClassifier(tiny_bert, finetune="lora", **FAST).fit(X, y).lr_ == 4e-3
    assert TransformerClassifier(tiny_bert, finetune="head", **FAST).fit(X, y).lr_ == 3e-2


def test_a_fit_counts_its_optimiser_steps_for_lr_auto(tiny_bert, toy_data, monkeypatch):
    monkeypatch.setattr(FullFinetune, "short_fit_steps", 18)
    X, y = toy_data  # 48 texts, batches of 8: 6 steps an epoch
    assert TransformerClassifier(tiny_bert, **FAST).fit(X, y).lr_ == 2e-4  # 6 steps: at most twice
    assert TransformerClassifier(tiny_bert, **{**FAST, "max_epochs": 2}).fit(X, y).lr_ == 1.5e-4
    assert TransformerClassifier(tiny_bert, **{**FAST, "max_epochs": 3}).fit(X, y).lr_ == 1e-4
    held_out = TransformerClassifier(tiny_bert, validation_fraction=0.25, **{**FAST, "max_epochs": 3}).fit(X, y)
    assert held_out.lr_ == 1.2e-4  # steps on the 36 training texts: 5 batches, 15 steps


def test_the_default_budget_is_batches_of_16():
    assert TransformerClassifier().batch_size == 16


def test_a_tagger_fit_resolves_lr_auto_to_the_token_rate(tiny_bert):
    from conftest import make_ner
    from skimb import TransformerTokenClassifier

    X, y = make_ner(16)
    assert FullFinetune().auto_lr(32, task="token") == 2e-4
    assert FullFinetune().auto_lr(768, task="token") == pytest.approx(1e-4)
    assert TransformerTokenClassifier(tiny_bert, **FAST).fit(X, y).lr_ == 4e-4  # a short fit: twice the rate


def test_a_tagger_counts_its_windows_for_lr_auto(tiny_bert, monkeypatch):
    """A sentence longer than ``max_length`` is several training rows, so several steps' worth."""
    from conftest import make_ner
    from skimb import TransformerTokenClassifier
    from skimb.tokens import tokenize_words

    X, y = make_ner(16, max_words=30)
    tagger = TransformerTokenClassifier(tiny_bert, max_length=8, **FAST)
    tokenizer = tagger.fit(X[:2], y[:2]).tokenizer_
    n_windows = sum(1 for win in tokenize_words(tokenizer, X, 8) if win.responsible)
    steps = -(-n_windows // FAST["batch_size"])
    assert steps >= 3 * -(-len(X) // FAST["batch_size"])  # windows, not sentences, decide
    monkeypatch.setattr(FullFinetune, "short_fit_steps", int(1.5 * steps))
    fitted = tagger.fit(X, y)
    assert fitted.lr_ == FullFinetune().auto_lr(32, task="token", n_steps=steps) < 4e-4  # 1.5x, not 2x


def test_a_tagger_fit_tokenizes_its_sentences_once(tiny_bert, monkeypatch):
    """lr="auto" counts the windows that the training datasets are then built from."""
    from conftest import make_ner
    from skimb import TransformerTokenClassifier, _token_task

    calls = []
    tokenize = _token_task.tokenize_words
    monkeypatch.setattr(_token_task, "tokenize_words", lambda *a, **k: calls.append(1) or tokenize(*a, **k))
    X, y = make_ner(16)
    assert TransformerTokenClassifier(tiny_bert, **FAST).fit(X, y).lr_ == 4e-4 and len(calls) == 1


def test_short_fit_tasks_decide_where_the_rule_applies(monkeypatch):
    monkeypatch.setattr(FullFinetune, "short_fit_tasks", ("multiclass", "multilabel"))  # round 31's: not taggers
    assert FullFinetune().auto_lr(384, task="token", n_steps=153) == 2e-4
    assert FullFinetune().auto_lr(384, task="multiclass", n_steps=225) == 2e-4
    assert FullFinetune().auto_lr(384, n_steps=225) == 2e-4  # an unknown task: the rule applies

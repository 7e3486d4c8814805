"""Fine-tuning modes: which backbone weights train (``finetune="full"``, ``"lora"``, ``"head"``).

A mode builds the encoder from the loaded backbone and says whether the backbone is frozen
(then the estimators train the head on cached pooled features). A new mode subclasses
:class:`Finetune` and registers with :func:`register_finetune`.
"""

from __future__ import annotations

import re
from numbers import Integral, Real

from ..utils._components import Component, Registry
from ..utils._param_validation import Interval, Satisfies
from ._modules import TextEncoder

__all__ = ["Finetune", "FullFinetune", "LoRAFinetune", "HeadFinetune", "FINETUNES", "register_finetune"]


class Finetune(Component):
    """Base of the fine-tuning modes."""

    _abstract = True  # a base: the check suite skips it

    #: The backbone is frozen: features are computed once (feature cache) and only the head trains.
    frozen = False
    #: The backbone's nn.Linear layers are wrapped (LoRA's adapters): a head that adapts them
    #: itself (CALoRA's ``layers``) cannot.
    wraps_linear_layers = False
    #: The AdamW learning rate of ``lr="auto"`` for texts on a backbone up to
    #: :attr:`AUTO_LR_HIDDEN_SIZE` wide (see :meth:`auto_lr`).
    default_lr = 1e-4
    #: Token classification's ``lr="auto"`` over :attr:`default_lr`.
    token_lr_multiplier = 1.0
    #: ``lr="auto"`` shrinks by ``AUTO_LR_HIDDEN_SIZE / hidden_size`` on wider backbones (the
    #: backbone trains; a head on frozen features does not care how wide they are).
    scales_with_width = True
    AUTO_LR_HIDDEN_SIZE = 384
    #: The head's learning rate over ``lr`` with ``head_lr_multiplier="auto"`` on multi-label
    #: targets (1 on the others): a 28-label head learns too slowly at a full fine-tuning rate
    #: (GoEmotions, 1,500 texts, 188 steps at lr 1e-4: macro ROC AUC 0.824 at 1x, 0.848 at 3x,
    #: 0.870 at 10x; docs/benchmarks.md).
    multilabel_head_lr_multiplier = 10.0
    #: A fit of fewer optimiser steps than this gets ``lr="auto"`` times ``short_fit_steps /
    #: n_steps``, at most :attr:`short_fit_max_multiplier` times (None: no such rule; see
    #: :meth:`auto_lr`).
    short_fit_steps = None
    short_fit_max_multiplier = 2.0
    #: The tasks the short-fit rule applies to (a tuple): where it was measured to pay.
    short_fit_tasks = ("multiclass", "multilabel", "token")
    #: The attributes :meth:`auto_lr` reads (:meth:`auto_lr_rule`).
    _AUTO_LR_ATTRS = ("default_lr", "token_lr_multiplier", "scales_with_width", "AUTO_LR_HIDDEN_SIZE",
                      "short_fit_steps", "short_fit_max_multiplier", "short_fit_tasks")

    @classmethod
    def auto_lr_rule(cls) -> list:
        """What :meth:`auto_lr` resolves by: equal lists, equal rates for every width, task and
        step count (a record of fits at ``lr="auto"`` can tell whether today's rule made them)."""
        values = (getattr(cls, name) for name in cls._AUTO_LR_ATTRS)
        # as a JSON journal reads it back
        return [sorted(v) if isinstance(v, (set, frozenset)) else list(v) if isinstance(v, tuple) else v
                for v in values]

    def auto_lr(self, hidden_size=None, task=None, n_steps=None) -> float:
        """The learning rate of ``lr="auto"``.

        Parameters
        ----------
        hidden_size : int or None
            The backbone's width (None: unknown).
        task : {"multiclass", "multilabel", "token"} or None
            What the estimator fits (None: unknown; the short-fit rule applies as to any task).
        n_steps : int or None
            The fit's optimiser steps (None: unknown; no short-fit rule).
        """
        lr = float(self.default_lr) * (self.token_lr_multiplier if task == "token" else 1.0)
        if self.scales_with_width and hidden_size and hidden_size > self.AUTO_LR_HIDDEN_SIZE:
            lr *= self.AUTO_LR_HIDDEN_SIZE / float(hidden_size)
        if self.short_fit_steps and n_steps and n_steps < self.short_fit_steps and (
                task is None or task in self.short_fit_tasks):
            lr *= min(float(self.short_fit_max_multiplier), self.short_fit_steps / float(n_steps))
        return float(f"{lr:.3g}")  # 1.5e-4, not 0.00015000000000000001

    def default_head_lr_multiplier(self, task):
        """``head_lr_multiplier="auto"`` for ``task``."""
        return float(self.multilabel_head_lr_multiplier) if task == "multilabel" else 1.0

    def build_encoder(self, backbone_model, pooling):
        """The trainable :class:`TextEncoder` around ``backbone_model`` (``pooling=None``: tokens)."""
        return TextEncoder(backbone_model, pooling=pooling)

    def layer_lr_scales(self, names) -> list:
        """``[(pattern, scale)]``: the learning rate of the parameters whose names match ``pattern``
        (``fnmatch``) over ``lr``; an empty list where every weight trains at ``lr`` (a mode
        without :func:`layer_lr_scales`'s ``layer_decay``, or ``layer_decay=1``)."""
        decay = getattr(self, "layer_decay", 1.0)
        return [] if decay == 1 else layer_lr_scales(names, decay)


#: A transformer layer's parameter: ``<prefix>layer.<i>.`` (BERT, RoBERTa, DistilBERT, DeBERTa,
#: MiniLM; ``layers``/``h``/``block`` for other families), under LoRA's wrappers too.
_LAYER = re.compile(r"^(.*?\.(?:layer|layers|h|block|blocks)\.)(\d+)\.")
_EMBEDDINGS = re.compile(r"^(.*?\.(?:embeddings|embed_tokens|wte|wpe|shared)\.)")


def layer_lr_scales(names, decay) -> list:
    """Layer-wise learning-rate decay over the backbone's parameter ``names``: layer ``i`` of
    ``L`` trains at ``decay ** (L - i)`` times the rate (the top layer at ``decay``), the
    embeddings at ``decay ** (L + 1)``; the head and anything else at the rate itself (ELECTRA's
    and BEiT's rule). Returns ``[(fnmatch pattern, scale)]``, an empty list where no numbered
    layer is found.

    Examples
    --------
    >>> names = ["encoder.backbone.embeddings.word_embeddings.weight",
    ...          "encoder.backbone.encoder.layer.0.output.dense.weight",
    ...          "encoder.backbone.encoder.layer.1.output.dense.weight", "head.weight"]
    >>> for pattern, scale in layer_lr_scales(names, 0.8):
    ...     print(pattern, round(scale, 3))
    encoder.backbone.encoder.layer.1.* 0.8
    encoder.backbone.encoder.layer.0.* 0.64
    encoder.backbone.embeddings.* 0.512
    """
    layers, embeddings = {}, set()
    for name in names:
        if (match := _LAYER.match(name)) is not None:
            layers.setdefault(int(match.group(2)), set()).add(match.group(1))
        elif (match := _EMBEDDINGS.match(name)) is not None:
            embeddings.add(match.group(1))
    if not layers:
        return []
    n_layers = max(layers) + 1
    scales = [(f"{prefix}{i}.*", float(decay) ** (n_layers - i))
              for i in sorted(layers, reverse=True) for prefix in sorted(layers[i])]
    return scales + [(f"{prefix}*", float(decay) ** (n_layers + 1)) for prefix in sorted(embeddings)]


FINETUNES = Registry("finetune", Finetune)
register_finetune = FINETUNES.register


@register_finetune("full")
class FullFinetune(Finetune):
    """Train every weight of the backbone and the head.

    ``lr="auto"`` is 1e-4 for texts and 2e-4 for token classification on a backbone of hidden
    size 384 or less, such as the bundled MiniLM-L6 (the rates of the quality protocol in
    ``docs/benchmarks.md``), and ``384 / hidden_size`` times that on wider ones: for texts 5e-5
    on base-size encoders (hidden size 768, the usual BERT rate) and 3.75e-5 on large ones
    (1024). The defaults until round 30 (5e-5 and batches of 32 whatever the task and backbone)
    left MiniLM under-trained after 3 epochs: plain cross-entropy on the whole Cyclone-Idai split
    scored macro-F1 0.403 with them against 0.630 with 1e-4 and batches of 16 (3 seeds), and a
    tagger on 900 MIT-Restaurant sentences span macro-F1 0.311 against 0.607 at 1e-4 and 0.683
    at 2e-4 (``docs/benchmarks.md``, round 30).

    A fit of fewer than :attr:`short_fit_steps` (600) optimiser steps gets ``600 / steps``
    times that rate, at most twice: 3 epochs of 1,200 texts in batches of 16 are 225 steps and
    train at 2e-4 (a tagger on as many sentences at 4e-4; a tagger's steps count its windows).
    At 1e-4 such fits stayed under-trained, and the rare classes paid: plain cross-entropy on
    1,200 Cyclone-Idai texts scored macro-F1 0.428 against 0.546 at 2e-4 (class weighting 0.581
    against 0.596), on 1,200 GoEmotions-Ekman texts 0.412 against 0.480 (3 seeds each),
    multi-label BCE on 1,500 GoEmotions texts (28 labels) 0.256 against 0.343.
    The rule's 1.77e-4 at 339 steps (1,800 Cyclone-Idai texts) gained 5.0 points over 1e-4.
    Longer fits want less: at 450 steps (2,400 GoEmotions-Ekman texts) 1.33e-4,
    what the rule gives, gained 1.7 points and 2e-4 2.6; at 519 (the whole Cyclone-Idai split,
    3 seeds) 1.16e-4 was level (+0.1) and 2e-4 cost 1.7 (``docs/benchmarks.md``, round 31).
    Taggers follow the same rule since round 32 (span macro-F1, 3 seeds each: 900 MIT-Restaurant
    sentences, 153 steps, 0.683 at 2e-4 against 0.692 at 4e-4, what the rule gives, and 0.684 at
    8e-4; 2,400 sentences, 405 steps, 0.743 against 0.749 at the rule's 2.96e-4 and 0.751 at
    4e-4; 900 CoNLL-2003 sentences 0.705 against 0.707).

    Parameters
    ----------
    layer_decay : float in (0, 1], default=1.0
        Layer-wise learning-rate decay: the backbone's top layer trains at ``layer_decay`` times
        the rate, each layer below at ``layer_decay`` times the one above, the embeddings at
        ``layer_decay`` times the bottom layer (:func:`layer_lr_scales`); the head, a CRF and
        weights outside the numbered layers and embeddings (a pooler) keep theirs. 1: every
        weight at the rate.

    Examples
    --------
    >>> FullFinetune().frozen
    False
    >>> FullFinetune().auto_lr(384), FullFinetune().auto_lr(768), FullFinetune().auto_lr(None)
    (0.0001, 5e-05, 0.0001)
    >>> FullFinetune().auto_lr(384, task="token")
    0.0002
    >>> FullFinetune().auto_lr(384, n_steps=225), FullFinetune().auto_lr(384, n_steps=450)
    (0.0002, 0.000133)
    >>> FullFinetune().auto_lr(384, task="token", n_steps=153)
    0.0004
    """

    default_lr = 1e-4
    token_lr_multiplier = 2.0
    short_fit_steps = 600
    _parameter_constraints = {"layer_decay": [Interval(Real, 0, 1, closed="right")]}

    def __init__(self, layer_decay=1.0):
        self.layer_decay = layer_decay


@register_finetune("head")
class HeadFinetune(Finetune):
    """Train only the head on a frozen backbone; its pooled features are computed once per text
    and cached.

    ``lr="auto"`` is 3e-2 whatever the backbone's width (2e-3 until round 30, which after 3 epochs
    left the head far from trained: macro-F1 0.330 against 0.511 on the whole Cyclone-Idai split,
    0.178 against 0.349 on 1,200 GoEmotions-Ekman texts, span macro-F1 0.473 against 0.502 for a
    tagger on 900 MIT-Restaurant sentences; one seed each, ``docs/benchmarks.md``, round 30).
    Short fits keep it (no :attr:`short_fit_steps`): on 1,200 texts (225 steps, 3 seeds) 1e-1 was
    +2.8 on Cyclone-Idai and -0.7 on GoEmotions-Ekman, 3e-1 below 3e-2 on both; on the whole
    Cyclone-Idai split and 6,000 GoEmotions-Ekman texts 3e-2 was the best of the three (round 32).

    Examples
    --------
    >>> HeadFinetune().frozen
    True
    >>> HeadFinetune().auto_lr(1024, task="token")
    0.03
    """

    frozen = True
    default_lr = 3e-2
    short_fit_steps = None  # no rate beat 3e-2 on both sets at 225 steps (round 32)
    scales_with_width = False
    multilabel_head_lr_multiplier = 1.0  # the head is all that trains

    def build_encoder(self, backbone_model, pooling):
        backbone_model.requires_grad_(False)
        return TextEncoder(backbone_model, pooling=pooling)


@register_finetune("lora")
class LoRAFinetune(Finetune):
    """LoRA adapters on the backbone (peft) plus the head.

    ``lr="auto"`` is 2e-3 on a backbone up to 384 wide (the bundled MiniLM) and ``384 /
    hidden_size`` times that on wider ones (1e-3 on base-size encoders, which nothing here
    measured). 5e-4 until round 30, which after 3 epochs left the adapters far from trained:
    macro-F1 0.379 against 0.586 on the whole Cyclone-Idai split (0.462 at 1e-3), 0.208 against
    0.475 on 1,200 GoEmotions-Ekman texts, span macro-F1 0.213 against 0.537 for a tagger on 900
    MIT-Restaurant sentences (one seed each, ``docs/benchmarks.md``, round 30).

    Short fits get up to twice the rate, as with full fine-tuning (:attr:`short_fit_steps`: under
    600 optimiser steps ``600 / steps`` times, at most 2). At 2e-3 such fits stayed under-trained:
    plain cross-entropy on 1,200 texts (225 steps, 3 seeds) scored macro-F1 0.422 on
    GoEmotions-Ekman and 0.443 on Cyclone-Idai against 0.512 and 0.509 at 4e-3, what the rule
    gives (``docs/benchmarks.md``, round 32).

    Parameters
    ----------
    rank : int, default=8
        LoRA rank ``r``.
    alpha : float, default=16
        LoRA scaling numerator (``lora_alpha``).
    dropout : float, default=0.1
        Dropout on the adapters' input.
    target_modules : None, str or list of str, default=None
        Modules that get adapters: a list of module names or name endings (``["query", "value"]``),
        or a string, which peft reads as a regular expression matched against each module's whole
        dotted name (``".*query"``, not ``"query"``); ``None``: peft's defaults for the
        architecture. A string, or any name of a list, that matches no module of the backbone is an
        error naming its linear layers (peft itself drops a name of a list that matches nothing).
    layer_decay : float in (0, 1], default=1.0
        Layer-wise learning-rate decay of the adapters, as :class:`FullFinetune`'s.

    Examples
    --------
    >>> LoRAFinetune(rank=4).get_params()["rank"]
    4
    >>> LoRAFinetune().auto_lr(384), LoRAFinetune().auto_lr(768)
    (0.002, 0.001)
    >>> LoRAFinetune().auto_lr(384, n_steps=225)
    0.004
    """

    default_lr = 2e-3
    short_fit_steps = 600
    wraps_linear_layers = True
    multilabel_head_lr_multiplier = 1.0  # lr="auto" already puts the head at 10x to 20x full fine-tuning's
    _parameter_constraints = {
        "rank": [Interval(Integral, 1, None)],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "target_modules": [None, Satisfies(lambda v: (isinstance(v, str) and v != "") or (
            isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(m, str) and m for m in v)),
            "a non-empty module name or a non-empty list of them", bad=[3, [], ""])],
        "layer_decay": [Interval(Real, 0, 1, closed="right")],
    }

    def __init__(self, rank=8, alpha=16, dropout=0.1, target_modules=None, layer_decay=1.0):
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.target_modules = target_modules
        self.layer_decay = layer_decay

    def build_encoder(self, backbone_model, pooling):
        import torch
        from peft import LoraConfig, get_peft_model

        linear = sorted({name.rsplit(".", 1)[-1] for name, module in backbone_model.named_modules()
                         if isinstance(module, torch.nn.Linear)})
        self._check_each_target_matches(backbone_model, linear)
        config = LoraConfig(r=self.rank, lora_alpha=self.alpha, lora_dropout=self.dropout,
                            target_modules=self.target_modules, bias="none")
        try:
            model = get_peft_model(backbone_model, config)
        except ValueError as exc:  # peft's own message names neither the parameter nor a remedy
            if "not found in the base model" not in str(exc):  # another refusal: peft's words are the diagnosis
                raise
            raise ValueError(
                f"finetune__target_modules={self.target_modules!r} gives no module of this backbone LoRA adapters "
                f"(peft: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}). A string is a regular "
                "expression matched against each module's whole dotted name: pass a list of name endings instead "
                f"(the backbone's linear layers end in {linear}), or None for peft's defaults.") from exc
        return TextEncoder(model, pooling=pooling)

    def _check_each_target_matches(self, backbone_model, linear):
        """Every entry of a list of ``target_modules`` names a module (peft's rule: the whole name or its
        dotted ending): peft adapts the entries that match and drops a misspelt one without a word."""
        if not isinstance(self.target_modules, (list, tuple)):
            return
        names = [name for name, _ in backbone_model.named_modules()]
        unmatched = [t for t in self.target_modules if not any(n == t or n.endswith("." + t) for n in names)]
        if unmatched:
            raise ValueError(
                f"finetune__target_modules={list(self.target_modules)!r}: no module of this backbone is named or ends "
                f"in {', '.join(map(repr, unmatched))}. Give a list of name endings of its modules (its linear "
                f"layers end in {linear}), or None for peft's defaults.")

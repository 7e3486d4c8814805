"""Fine-tuning modes: which backbone weights train (``finetune="full"``, ``"lora"``, ``"head"``).

A mode builds the encoder from the loaded backbone and says whether the backbone is frozen
(then the estimators train the head on cached pooled features). A new mode subclasses
:class:`Finetune` and registers with :func:`register_finetune`.
"""

from __future__ import annotations

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
    #: The AdamW learning rate of ``lr="auto"``.
    default_lr = 5e-5
    #: The head's learning rate over ``lr`` with ``head_lr_multiplier="auto"`` on multi-label
    #: targets (1 on the others): a 28-label head learns too slowly at a full fine-tuning rate
    #: (GoEmotions, 1,500 texts, 188 steps at lr 1e-4: macro ROC AUC 0.824 at 1x, 0.848 at 3x,
    #: 0.870 at 10x; docs/benchmarks.md).
    multilabel_head_lr_multiplier = 10.0

    def default_head_lr_multiplier(self, task):
        """``head_lr_multiplier="auto"`` for ``task``."""
        return float(self.multilabel_head_lr_multiplier) if task == "multilabel" else 1.0

    def build_encoder(self, backbone_model, pooling):
        """The trainable :class:`TextEncoder` around ``backbone_model`` (``pooling=None``: tokens)."""
        return TextEncoder(backbone_model, pooling=pooling)


FINETUNES = Registry("finetune", Finetune)
register_finetune = FINETUNES.register


@register_finetune("full")
class FullFinetune(Finetune):
    """Train every weight of the backbone and the head (``lr="auto"``: 5e-5).

    Examples
    --------
    >>> FullFinetune().frozen
    False
    """


@register_finetune("head")
class HeadFinetune(Finetune):
    """Train only the head on a frozen backbone (``lr="auto"``: 2e-3); its pooled features are
    computed once per text and cached.

    Examples
    --------
    >>> HeadFinetune().frozen
    True
    """

    frozen = True
    default_lr = 2e-3
    multilabel_head_lr_multiplier = 1.0  # the head is all that trains

    def build_encoder(self, backbone_model, pooling):
        backbone_model.requires_grad_(False)
        return TextEncoder(backbone_model, pooling=pooling)


@register_finetune("lora")
class LoRAFinetune(Finetune):
    """LoRA adapters on the backbone (peft) plus the head (``lr="auto"``: 5e-4).

    Parameters
    ----------
    rank : int, default=8
        LoRA rank ``r``.
    alpha : float, default=16
        LoRA scaling numerator (``lora_alpha``).
    dropout : float, default=0.1
        Dropout on the adapters' input.
    target_modules : None, str or list of str, default=None
        Modules that get adapters; ``None``: peft's defaults for the architecture.

    Examples
    --------
    >>> LoRAFinetune(rank=4).get_params()["rank"]
    4
    """

    default_lr = 5e-4
    multilabel_head_lr_multiplier = 1.0  # lr="auto" already puts the head at 10x full fine-tuning's
    _parameter_constraints = {
        "rank": [Interval(Integral, 1, None)],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "target_modules": [None, Satisfies(lambda v: isinstance(v, str) or (
            isinstance(v, (list, tuple)) and all(isinstance(m, str) for m in v)),
            "a module name or a list of them", bad=[3])],
    }

    def __init__(self, rank=8, alpha=16, dropout=0.1, target_modules=None):
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.target_modules = target_modules

    def build_encoder(self, backbone_model, pooling):
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=self.rank, lora_alpha=self.alpha, lora_dropout=self.dropout,
                            target_modules=self.target_modules, bias="none")
        return TextEncoder(get_peft_model(backbone_model, config), pooling=pooling)

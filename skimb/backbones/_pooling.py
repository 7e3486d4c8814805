"""Pooling of token states into one vector per sequence."""

from __future__ import annotations

import torch

__all__ = ["mean_pool", "cls_pool", "pool", "backbone_pooler", "POOLINGS", "POOLING_OPTIONS"]


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token states where ``attention_mask`` is 1."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)


def cls_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """State of the first ([CLS]) token."""
    return hidden[:, 0]


POOLINGS = {"mean": mean_pool, "cls": cls_pool}
#: Every ``pooling`` an encoder takes: the functions of :data:`POOLINGS` and ``"pooler"``, the
#: backbone's own pooling layer (BERT's dense + tanh on [CLS], what ``AutoModelForSequenceClassification``
#: classifies).
POOLING_OPTIONS = (*sorted(POOLINGS), "pooler")


def backbone_pooler(backbone):
    """The pooling layer of a Hugging Face backbone (``BertModel.pooler``), or None.

    A PEFT-wrapped backbone is searched through its base model.
    """
    base = backbone.get_base_model() if hasattr(backbone, "get_base_model") else backbone
    return getattr(base, "pooler", None)


def pool(name: str, hidden, attention_mask):
    try:
        return POOLINGS[name](hidden, attention_mask)
    except KeyError:
        raise ValueError(f"pooling must be one of {sorted(POOLINGS)}, got {name!r}.") from None

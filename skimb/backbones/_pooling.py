"""Pooling of token states into one vector per sequence."""

from __future__ import annotations

import torch

__all__ = ["mean_pool", "cls_pool", "pool", "POOLINGS"]


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token states where ``attention_mask`` is 1."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)


def cls_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """State of the first ([CLS]) token."""
    return hidden[:, 0]


POOLINGS = {"mean": mean_pool, "cls": cls_pool}


def pool(name: str, hidden, attention_mask):
    try:
        return POOLINGS[name](hidden, attention_mask)
    except KeyError:
        raise ValueError(f"pooling must be one of {sorted(POOLINGS)}, got {name!r}.") from None

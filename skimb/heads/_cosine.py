"""A normalised (cosine) classifier head: ``head="cosine"``."""

from __future__ import annotations

from numbers import Real

import torch
import torch.nn.functional as F
from torch import nn

from ..utils._param_validation import Interval, Options
from ._components import Head, register_head

__all__ = ["CosineHead", "CosineLinear"]

#: ``scale="auto"`` with a loss that scales its logits itself (LDAM's ``s``) and without one.
_AUTO_SCALE = {True: 1.0, False: 16.0}


class CosineLinear(nn.Module):
    """``logits = scale * cos(x, w_c)``: features and class weights normalised, no bias.

    Examples
    --------
    >>> layer = CosineLinear(torch.tensor([[3.0, 4.0], [0.0, -2.0]]), scale=10.0)
    >>> layer(torch.tensor([[6.0, 8.0]])).detach().round(decimals=4).tolist()
    [[10.0, -8.0]]
    """

    def __init__(self, weight, *, scale: float):
        super().__init__()
        self.weight = nn.Parameter(torch.as_tensor(weight, dtype=torch.float32).clone())
        self.register_buffer("scale", torch.tensor(float(scale)))  # saved with the model

    @property
    def in_features(self):
        return self.weight.shape[1]

    @property
    def out_features(self):
        return self.weight.shape[0]

    def forward(self, x):
        return self.scale * F.normalize(x, dim=-1) @ F.normalize(self.weight, dim=-1).T

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, scale={float(self.scale)}"


def _scales_logits(loss) -> bool:
    """Whether ``loss`` (or the loss a wrapper such as the token classifier's tag weighting
    holds in ``.loss``) scales its logits itself, as LDAM does with ``s``."""
    while loss is not None:
        if hasattr(loss, "s"):
            return True
        loss = getattr(loss, "loss", None)
    return False


@register_head("cosine")
class CosineHead(Head):
    """Train a cosine classifier instead of ``nn.Linear``: logits are scaled cosine similarities
    between the features and each class's weight vector, so a frequent class cannot win by a
    larger weight norm. It is the head LDAM was designed for (Cao et al. 2019: its ``s = 30``
    scales cosine logits).

    Parameters
    ----------
    scale : float or "auto", default="auto"
        Multiplies the cosines. "auto": 1 when the loss scales its logits itself (LDAM's ``s``),
        else 16 (cosines in [-1, 1] would keep a softmax near uniform).

    Examples
    --------
    >>> CosineHead().has_stage2
    False
    """

    _parameter_constraints = {"scale": [Options("auto"), Interval(Real, 0, None, closed="neither")]}

    def __init__(self, scale="auto"):
        self.scale = scale

    def prepare(self, module, *, loss=None):
        linear = module.head
        scale = _AUTO_SCALE[_scales_logits(loss)] if self.scale == "auto" else float(self.scale)
        module.head = CosineLinear(linear.weight.detach(), scale=scale).to(linear.weight.device)

    def restore(self, module, n_classes, *, multilabel):
        self.prepare(module)  # the saved scale buffer overwrites the placeholder

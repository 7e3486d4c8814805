"""Class prototypes beside the trained head: ``head="prototype"``.

Each class is the mean direction of its training rows in the stage-1 feature space, and a text
scores each class by its cosine similarity to that prototype (prototypical networks, Snell et al.
2017; ProtoBERT's inference rule, Tänzer et al. 2022). A prototype carries no class prior: a
class of 13 texts is as reachable as one of 1,300. Mixed with the stage-1 head, whose argmax
favours the frequent classes, it lends a plainly trained model the balance of a re-weighted one
in a second stage that trains nothing.
"""

from __future__ import annotations

from numbers import Real

import torch
import torch.nn.functional as F
from torch import nn

from ..utils._param_validation import Interval
from ._components import Head, register_head
from ._knn import MixedHead

__all__ = ["PrototypeHead", "PrototypeInterpolatedHead", "class_prototypes"]


def class_prototypes(features, targets, n_classes: int, *, multilabel: bool):
    """The mean of each class's L2-normalised feature rows, ``(n_classes, hidden)``; rows with a
    negative target are left out; a class without rows gets zeros (cosine 0 to everything).
    Multi-label: ``(2, n_labels, hidden)``, the positives' and the negatives' means per label.

    >>> class_prototypes(torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 4.0]]), torch.tensor([0, 0, 1]), 3,
    ...                  multilabel=False)
    tensor([[0.5000, 0.5000],
            [0.6000, 0.8000],
            [0.0000, 0.0000]])
    """
    f = F.normalize(torch.as_tensor(features, dtype=torch.float32), dim=-1)
    targets = torch.as_tensor(targets)
    if multilabel:
        Y = targets.float()
        pos = (Y.T @ f) / Y.sum(0).clamp(min=1.0)[:, None]
        neg = ((1 - Y).T @ f) / (1 - Y).sum(0).clamp(min=1.0)[:, None]
        return torch.stack([pos, neg])
    keep = targets >= 0
    onehot = F.one_hot(targets[keep].long(), n_classes).float()
    return (onehot.T @ f[keep]) / onehot.sum(0).clamp(min=1.0)[:, None]


class PrototypeInterpolatedHead(MixedHead):
    """``p = (1 - weight) * p_head + weight * p_proto``, returned as logits.

    Multi-class: ``p_proto = softmax(scale * cos(x, prototypes))``. Multi-label: per label,
    ``p_proto = sigmoid(scale * (cos(x, positives) - cos(x, negatives)))``. Logits as
    :class:`~skimb.heads.KNNInterpolatedHead` returns them (``log p``, or ``logit(p)`` per label).

    Examples
    --------
    >>> base = nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = base.weight.zero_(), base.bias.zero_()  # the head alone says 50/50
    >>> head = PrototypeInterpolatedHead(base, torch.tensor([[1.0, 0.0], [0.0, 1.0]]), scale=1.0, weight=0.5,
    ...                                  multilabel=False)
    >>> with torch.no_grad():  # cosines 1 and 0: softmax gives 0.731 / 0.269
    ...     head(torch.tensor([[3.0, 0.0]])).softmax(-1)
    tensor([[0.6155, 0.3845]])
    """

    def __init__(self, base: nn.Linear, prototypes, *, scale: float, weight: float, multilabel: bool):
        super().__init__(base, weight=weight, multilabel=multilabel)
        self.scale = float(scale)
        self.register_buffer("prototypes", F.normalize(torch.as_tensor(prototypes, dtype=torch.float32), dim=-1))

    def prototype_probabilities(self, x):
        """``p_proto`` of each row of ``x`` (2-D)."""
        cos = F.normalize(x.float(), dim=-1) @ self.prototypes.transpose(-1, -2)
        if self.multilabel:  # cos: (2, rows, labels)
            return torch.sigmoid(self.scale * (cos[0] - cos[1]))
        return torch.softmax(self.scale * cos, dim=-1)

    other_distribution = prototype_probabilities

    def extra_repr(self):
        return f"scale={self.scale}, weight={self.weight}, prototypes={tuple(self.prototypes.shape)}"


@register_head("prototype")
class PrototypeHead(Head):
    """Keep the stage-1 head and add class prototypes in its feature space.

    Stage 2 trains nothing: it averages the cached penultimate features of each class's training
    rows (the same features CALoRA and the kNN head use, so a search over ``scale`` and ``weight``
    shares one stage 1), and prediction mixes the head's probabilities with a softmax over the
    scaled cosine similarities to the prototypes (:class:`PrototypeInterpolatedHead`). Use it on a
    model trained with plain cross-entropy: the prototypes carry no class prior, which is what the
    head lacks there; on a class-weighted stage 1 there is little left to add
    (``docs/benchmarks.md``, round 7). The prototypes are saved with the model
    (``n_classes x hidden`` floats; twice that for multi-label targets).

    This is the inference rule of ProtoBERT (Tänzer et al. 2022) on the stage-1 features; the
    encoder is not trained episodically, and no class is treated as a catch-all.

    Parameters
    ----------
    scale : float, default=20.0
        Multiplies the cosine similarities before the softmax (a temperature of ``1 / scale``).
    weight : float, default=0.5
        Share of the prototypes' distribution in the prediction (0: the stage-1 head; 1: the
        prototypes alone, a nearest-class-mean classifier).

    Examples
    --------
    >>> PrototypeHead(scale=10.0).has_stage2
    True
    >>> PrototypeHead(weight=2).validate()
    Traceback (most recent call last):
    ...
    skimb.utils._param_validation.InvalidParameterError: PrototypeHead: weight must be a number in [0, 1], got 2.
    """

    has_stage2 = True
    _stage2_params = ("scale", "weight")
    _parameter_constraints = {
        "scale": [Interval(Real, 0, None, closed="neither")],
        "weight": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(self, scale=20.0, weight=0.5):
        self.scale = scale
        self.weight = weight

    def fit_stage2(self, module, features, targets, weights, *, loss_fn, device, seed, batch_size, multilabel,
                   verbose=0):
        n_classes = module.head.out_features
        prototypes = class_prototypes(features, targets, n_classes, multilabel=multilabel)
        module.head = PrototypeInterpolatedHead(module.head, prototypes, scale=self.scale, weight=self.weight,
                                                multilabel=multilabel).to(device).eval()
        counts = torch.as_tensor(targets)
        counts = counts.sum(0) if multilabel else torch.bincount(counts[counts >= 0].long(), minlength=n_classes)
        return {"prototype_counts_": counts.numpy()}

    def restore(self, module, n_classes, *, multilabel):
        shape = (2, n_classes, module.head.in_features) if multilabel else (n_classes, module.head.in_features)
        module.head = PrototypeInterpolatedHead(module.head, torch.zeros(shape), scale=self.scale, weight=self.weight,
                                                multilabel=multilabel)

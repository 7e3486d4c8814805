"""Class prototypes beside the trained head: ``head="prototype"``.

Each class is the mean direction of its training rows in the stage-1 feature space, and a text
scores each class by its cosine similarity to that prototype (prototypical networks, Snell et al.
2017; ProtoBERT's inference rule, Tänzer et al. 2022). A prototype carries no class prior: a
class of 13 texts is as reachable as one of 1,300. Mixed with the stage-1 head, whose argmax
favours the frequent classes, it lends a plainly trained model the balance of a re-weighted one
in a second stage that trains nothing.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._validation import class_index
from ..utils._param_validation import Interval, Satisfies
from ._components import Head, register_head, stage2_rows
from ._knn import MixedHead

__all__ = ["PrototypeHead", "PrototypeInterpolatedHead", "class_prototypes", "fit_catch_all_threshold"]


def class_prototypes(features, targets, n_classes: int, *, multilabel: bool, sample_weight=None):
    """The mean of each class's L2-normalised feature rows, ``(n_classes, hidden)``; rows with a
    negative target are left out; a class without rows gets zeros (cosine 0 to everything).
    Multi-label: ``(2, n_labels, hidden)``, the positives' and the negatives' means per label.
    ``sample_weight`` (one non-negative weight per row) makes the means weighted: a row of weight
    0 is left out, and a weight constant within a class (``class_weight``) changes nothing.

    >>> class_prototypes(torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 4.0]]), torch.tensor([0, 0, 1]), 3,
    ...                  multilabel=False)
    tensor([[0.5000, 0.5000],
            [0.6000, 0.8000],
            [0.0000, 0.0000]])
    """
    f = F.normalize(torch.as_tensor(features, dtype=torch.float32), dim=-1)
    targets = torch.as_tensor(targets)
    w = torch.ones(len(f)) if sample_weight is None else torch.as_tensor(sample_weight, dtype=torch.float32)
    if multilabel:
        Y = targets.float()
        return torch.stack([_weighted_means(Y * w[:, None], f), _weighted_means((1 - Y) * w[:, None], f)])
    keep = targets >= 0
    onehot = F.one_hot(targets[keep].long(), n_classes).float()
    return _weighted_means(onehot * w[keep, None], f[keep])


def _weighted_means(weights, f):
    """Each column of ``weights`` (rows x groups) as a weighted mean of the rows of ``f``; zeros for
    a group of total weight 0."""
    total = weights.sum(0)
    means = (weights.T @ f) / total.clamp(min=torch.finfo(f.dtype).tiny)[:, None]
    return torch.where(total[:, None] > 0, means, torch.zeros_like(means))


def fit_catch_all_threshold(similarities, targets, catch_all: int, *, scale: float, sample_weight=None) -> float:
    """The catch-all class's similarity threshold ``τ`` that maximises the likelihood of ``targets``
    under ``softmax(scale · s)``, where ``s`` are the cosine similarities to the real classes'
    prototypes and ``τ`` stands in for the catch-all's (ProtoBERT's learned "O" distance). The
    negative log-likelihood (weighted by ``sample_weight``, when given) is convex in ``τ``; a
    bounded scalar search in ``[-1, 1]`` finds it.

    >>> sims = torch.tensor([[0.9, 0.0], [0.2, 0.0], [0.1, 0.0], [0.8, 0.0]])
    >>> round(fit_catch_all_threshold(sims, torch.tensor([0, 1, 1, 0]), 1, scale=20.0), 3)
    0.5
    """
    from scipy.optimize import minimize_scalar

    s = torch.as_tensor(similarities, dtype=torch.float64)
    y = torch.as_tensor(targets).long()
    w = torch.ones(len(y), dtype=torch.float64) if sample_weight is None else torch.as_tensor(
        sample_weight, dtype=torch.float64)
    keep = y >= 0
    s, y, w = s[keep], y[keep], w[keep]

    def nll(tau):
        z = scale * s.clone()
        z[:, catch_all] = scale * tau
        return float((w * F.cross_entropy(z, y, reduction="none")).sum() / w.sum())

    return float(minimize_scalar(nll, bounds=(-1.0, 1.0), method="bounded", options={"xatol": 1e-6}).x)


def prototype_counts(targets, weights, n_classes: int, *, multilabel: bool) -> np.ndarray:
    """The rows behind each prototype (multi-label: each label's positives): those of positive
    weight, not ignored.

    >>> prototype_counts(torch.tensor([0, 1, 1, -100]), torch.tensor([1.0, 0.0, 2.0, 1.0]), 3, multilabel=False)
    array([1, 1, 0])
    """
    targets = torch.as_tensor(targets)
    keep = stage2_rows(targets, weights)
    if multilabel:
        return targets[keep].sum(0).numpy()
    return torch.bincount(targets[keep].long(), minlength=n_classes).numpy()


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

    def __init__(self, base: nn.Linear, prototypes, *, scale: float, weight: float, multilabel: bool,
                 catch_all: int | None = None, threshold: float = 0.0):
        super().__init__(base, weight=weight, multilabel=multilabel)
        self.scale = float(scale)
        self.register_buffer("prototypes", F.normalize(torch.as_tensor(prototypes, dtype=torch.float32), dim=-1))
        # the catch-all class (-1: none) scores the learned threshold instead of a prototype similarity
        self.register_buffer("catch_all_index", torch.tensor(-1 if catch_all is None else int(catch_all)))
        self.register_buffer("catch_all_threshold", torch.tensor(float(threshold)))

    def similarities(self, x):
        """Cosine similarities of the rows of ``x`` (2-D) to the prototypes, the catch-all class's
        replaced by its threshold."""
        cos = F.normalize(x.float(), dim=-1) @ self.prototypes.transpose(-1, -2)
        k = int(self.catch_all_index)
        if k >= 0:
            cos[:, k] = self.catch_all_threshold
        return cos

    def prototype_probabilities(self, x):
        """``p_proto`` of each row of ``x`` (2-D)."""
        cos = self.similarities(x)
        if self.multilabel:  # cos: (2, rows, labels)
            return torch.sigmoid(self.scale * (cos[0] - cos[1]))
        return torch.softmax(self.scale * cos, dim=-1)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # models saved before the catch-all threshold existed have no catch-all
        state_dict.setdefault(prefix + "catch_all_index", torch.tensor(-1))
        state_dict.setdefault(prefix + "catch_all_threshold", torch.tensor(0.0))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

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

    A prototype is the mean of its rows weighted by the estimator's row weights: ``sample_weight``
    varies a row's share in its class's mean, and a row of weight 0 is left out (of the prototypes,
    of ``prototype_counts_`` and of the catch-all threshold's fit); ``class_weight``, constant
    within a class, changes nothing.

    This is the inference rule of ProtoBERT (Tänzer et al. 2022) on the stage-1 features, with
    every training row as support; the encoder is not trained episodically. As in ProtoBERT, a
    catch-all class (``catch_all``, e.g. NER's ``"O"``) can score a learned similarity threshold
    instead of the similarity to its own prototype, since a heterogeneous "everything else" has no
    meaningful centre (:func:`fit_catch_all_threshold`, fitted on the training rows).

    Parameters
    ----------
    scale : float, default=20.0
        Multiplies the cosine similarities before the softmax (a temperature of ``1 / scale``).
    weight : float, default=0.5
        Share of the prototypes' distribution in the prediction (0: the stage-1 head, ``scale``
        and ``catch_all`` then ignored, with a warning; 1: the prototypes alone, a
        nearest-class-mean classifier).
    catch_all : label or None, default=None
        The catch-all class (a label of ``y``; NER: a tag such as ``"O"``), scored by a threshold
        on the cosine similarity rather than by a prototype. Multi-class and token classification.

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
    linear_stage1 = True
    _stage2_params = ("scale", "weight", "catch_all")
    _parameter_constraints = {
        "scale": [Interval(Real, 0, None, closed="neither")],
        "weight": [Interval(Real, 0, 1, closed="both")],
        "catch_all": [None, Satisfies(lambda v: isinstance(v, (str, Integral, np.generic)), "a class label",
                                      bad=[[1]])],
    }

    def __init__(self, scale=20.0, weight=0.5, catch_all=None):
        self.scale = scale
        self.weight = weight
        self.catch_all = catch_all

    def ignored_params(self) -> dict:
        if self.weight == 0:
            return dict.fromkeys(self._changed(("scale", "catch_all")), "weight=0 predicts with the stage-1 head alone")
        return {}

    def check(self, n_classes, *, classes=None, task=None):
        if self.catch_all is None:
            return
        if task == "multilabel":
            raise ValueError("head__catch_all applies to multi-class and token classification, not to multi-label "
                             "targets.")
        if classes is not None:
            class_index(self.catch_all, classes, "head__catch_all")

    def fit_stage2(self, module, features, targets, weights, *, loss_fn, device, seed, batch_size, multilabel,
                   verbose=0, classes=None, stage1_balance="none"):
        n_classes = module.head.out_features
        prototypes = class_prototypes(features, targets, n_classes, multilabel=multilabel, sample_weight=weights)
        head = PrototypeInterpolatedHead(module.head, prototypes, scale=self.scale, weight=self.weight,
                                         multilabel=multilabel)
        fitted = {}
        if self.catch_all is not None:
            k = class_index(self.catch_all, classes, "head__catch_all")
            with torch.no_grad():
                sims = torch.cat([head.similarities(torch.as_tensor(chunk, dtype=torch.float32))
                                  for chunk in torch.as_tensor(features).split(65536)])
            tau = fit_catch_all_threshold(sims, targets, k, scale=self.scale, sample_weight=weights)
            head.catch_all_index.fill_(k)
            head.catch_all_threshold.fill_(tau)
            fitted["catch_all_threshold_"] = tau
        module.head = head.to(device).eval()
        return {"prototype_counts_": prototype_counts(targets, weights, n_classes, multilabel=multilabel), **fitted}

    def restore(self, module, n_classes, *, multilabel):
        shape = (2, n_classes, module.head.in_features) if multilabel else (n_classes, module.head.in_features)
        module.head = PrototypeInterpolatedHead(module.head, torch.zeros(shape), scale=self.scale, weight=self.weight,
                                                multilabel=multilabel)

"""Routing: which class adapters fire for an input, computed from the stage-1 (vanilla) model.

All functions work on logits of shape ``(..., C)``: ``(N, C)`` for sentence classification and
``(N, T, C)`` for per-token routing (NER). Gates are returned detached, as float tensors of the
same shape, in the logits' floating dtype (float32 for integer logits) and on their device.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from .config import ROUTINGS

__all__ = ["register_routing", "route_from_logits", "topk_coverage", "true_label_rank"]


def _as_logits(stage1_logits, what: str = "stage1_logits") -> torch.Tensor:
    logits = torch.as_tensor(stage1_logits)
    if logits.dim() < 1 or logits.shape[-1] < 1:
        raise ValueError(f"{what} must have shape (..., C) with C >= 1, got {tuple(logits.shape)}.")
    if not logits.is_floating_point():
        logits = logits.float()
    return logits.detach()


def _check_k(k, n_classes: int) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be an integer, got {type(k).__name__} {k!r}.")
    if not 1 <= k <= n_classes:
        raise ValueError(f"k must satisfy 1 <= k <= C (the number of classes, {n_classes}), got k={k}.")
    return int(k)


def _topk_mask(logits: torch.Tensor, k: int) -> torch.Tensor:
    idx = logits.topk(k, dim=-1).indices
    return torch.zeros_like(logits).scatter_(-1, idx, 1.0)


def _multiclass_targets(targets, logits: torch.Tensor, what: str) -> torch.Tensor:
    t = torch.as_tensor(targets, device=logits.device)
    if t.shape != logits.shape[:-1]:
        raise ValueError(
            f"{what} for multi-class routing must have shape {tuple(logits.shape[:-1])} "
            f"(the logits' shape without the class axis), got {tuple(t.shape)}."
        )
    if t.is_floating_point():
        if not torch.all(t == t.round()):
            raise ValueError(f"{what} must hold integer class indices for multi-class routing.")
    t = t.long()
    C = logits.shape[-1]
    if torch.any(t >= C):
        raise ValueError(f"{what} holds a class index >= C ({C}).")
    return t


def _multilabel_targets(targets, logits: torch.Tensor, what: str) -> torch.Tensor:
    t = torch.as_tensor(targets, device=logits.device)
    if t.shape != logits.shape:
        raise ValueError(
            f"{what} for multi-label routing must be a 0/1 indicator of the logits' shape "
            f"{tuple(logits.shape)}, got {tuple(t.shape)}."
        )
    t = t.to(logits.dtype)
    if not torch.all((t == 0) | (t == 1)):
        raise ValueError(f"{what} for multi-label routing must hold only 0 and 1.")
    return t


@torch.no_grad()
def route_from_logits(
    stage1_logits,
    routing: str,
    k: int,
    *,
    targets=None,
    training: bool = False,
    multilabel: bool = False,
) -> torch.Tensor:
    """Per-class gate weights ``(..., C)`` from the stage-1 model's logits.

    Parameters
    ----------
    stage1_logits : Tensor or array, shape (..., C)
        Logits of the vanilla (stage-1) model. Only their ranking matters, except for
        ``"soft"`` which uses their probabilities.
    routing : {"pseudo", "topk", "oracle", "soft"}
        * ``"pseudo"``: one-hot of the argmax (multi-label: of the top-1 sigmoid score, the same
          class). ``k`` is validated but not used.
        * ``"topk"``: 1 for the k highest-ranked classes, 0 elsewhere (the diagonal of Eq. 4's M).
        * ``"oracle"``: with ``training=True``, one-hot of the true class (multi-label: the true
          label set, possibly empty, in which case no adapter fires); otherwise ``"topk"``.
          Multi-class targets < 0 (``-100``, ignored tokens) give an all-zero gate row.
        * ``"soft"``: the top-k probabilities (softmax for multi-class, sigmoid scores for
          multi-label) renormalised to sum 1 per input; 0 outside the top-k.
    k : int
        Number of adapters per input, ``1 <= k <= C``.
    targets : Tensor or array, optional
        True labels, needed for ``"oracle"`` with ``training=True`` only: shape ``(...)`` of class
        indices (multi-class) or ``(..., C)`` 0/1 indicators (multi-label).
    training : bool, default False
        Whether the gates are for stage-2 training (matters for ``"oracle"`` only).
    multilabel : bool, default False
        Sigmoid (independent labels) rather than softmax semantics.

    Returns
    -------
    Tensor, shape (..., C), detached.

    >>> logits = torch.tensor([[0.1, 2.0, 1.0, -1.0]])
    >>> route_from_logits(logits, "topk", 2)
    tensor([[0., 1., 1., 0.]])
    >>> route_from_logits(logits, "pseudo", 2)
    tensor([[0., 1., 0., 0.]])
    >>> route_from_logits(logits, "oracle", 2, targets=torch.tensor([3]), training=True)
    tensor([[0., 0., 0., 1.]])
    """
    if not isinstance(routing, str) or routing not in ROUTINGS:
        raise ValueError(f"routing must be one of {tuple(ROUTINGS)}, got {routing!r}.")
    logits = _as_logits(stage1_logits)
    k = _check_k(k, logits.shape[-1])
    return ROUTINGS[routing](logits, k, targets=targets, training=training, multilabel=multilabel)


def register_routing(name: str, *, overwrite: bool = False):
    """Function decorator registering a routing rule under ``name``.

    The function maps ``(logits, k, *, targets, training, multilabel)`` (logits ``(..., C)``,
    floating, detached; ``k`` checked) to gate weights of the logits' shape. Once registered,
    ``routing=name`` works in :class:`CALoRAConfig`, :func:`route_from_logits` and
    ``head__routing`` of the estimators.

    Examples
    --------
    >>> @register_routing("bottomk_demo")
    ... def bottomk(logits, k, *, targets=None, training=False, multilabel=False):
    ...     return _topk_mask(-logits, k)
    >>> route_from_logits(torch.tensor([[0.1, 2.0, 1.0]]), "bottomk_demo", 1)
    tensor([[1., 0., 0.]])
    >>> del ROUTINGS["bottomk_demo"]
    """

    def decorator(fn):
        if name in ROUTINGS and ROUTINGS[name] is not fn and not overwrite:
            raise ValueError(f"a routing named {name!r} is already registered; pass overwrite=True to replace it.")
        ROUTINGS[name] = fn
        return fn

    return decorator


@register_routing("pseudo")
def _pseudo(logits, k, *, targets=None, training=False, multilabel=False):
    # argmax of logits == argmax of softmax == argmax of sigmoid scores
    return _topk_mask(logits, 1)


@register_routing("topk")
def _topk(logits, k, *, targets=None, training=False, multilabel=False):
    return _topk_mask(logits, k)


@register_routing("oracle")
def _oracle(logits, k, *, targets=None, training=False, multilabel=False):
    if not training:
        return _topk_mask(logits, k)
    if targets is None:
        raise ValueError("routing='oracle' with training=True needs targets (the true labels).")
    if multilabel:
        return _multilabel_targets(targets, logits, "targets")
    t = _multiclass_targets(targets, logits, "targets")
    valid = t >= 0
    gate = torch.zeros_like(logits)
    gate.scatter_(-1, t.clamp(min=0).unsqueeze(-1), 1.0)
    return gate * valid.unsqueeze(-1).to(gate.dtype)


@register_routing("soft")
def _soft(logits, k, *, targets=None, training=False, multilabel=False):
    probs = torch.sigmoid(logits) if multilabel else torch.softmax(logits, dim=-1)
    mask = _topk_mask(logits, k)
    w = probs * mask
    total = w.sum(dim=-1, keepdim=True)
    # sigmoid scores can underflow to 0 for very negative logits: fall back to uniform top-k
    uniform = mask / k
    return torch.where(total > 0, w / total.clamp_min(torch.finfo(w.dtype).tiny), uniform)


def _infer_multilabel(logits: torch.Tensor, y: torch.Tensor, multilabel):
    if multilabel is None:
        return y.shape == logits.shape
    return bool(multilabel)


@torch.no_grad()
def topk_coverage(stage1_logits, y, k: int, *, multilabel: bool | None = None) -> float:
    """Share of targets that fall inside the stage-1 top-k set.

    Multi-class (``y`` of shape ``logits.shape[:-1]``): the share of samples (or labelled tokens)
    whose true class is among their k highest-ranked classes; targets < 0 (``-100``) are ignored.
    Multi-label (``y`` a 0/1 indicator of the logits' shape): the share of positive labels that
    lie in their sample's top-k set. ``multilabel=None`` infers the task from ``y``'s shape.
    Returns ``nan`` when there is nothing to cover.

    The paper (Fig. 6/7) picks k around the true label's average rank position: use this to
    check that routing reaches the true class often enough.

    >>> logits = torch.tensor([[3., 2., 1.], [1., 2., 3.], [1., 3., 2.]])
    >>> topk_coverage(logits, torch.tensor([1, 0, 2]), 2)
    0.6666666666666666
    """
    logits = _as_logits(stage1_logits)
    y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y, device=logits.device)
    k = _check_k(k, logits.shape[-1])
    mask = _topk_mask(logits, k)
    if _infer_multilabel(logits, y, multilabel):
        yt = _multilabel_targets(y, logits, "y")
        n_pos = float(yt.sum())
        return float((mask * yt).sum()) / n_pos if n_pos > 0 else math.nan
    t = _multiclass_targets(y, logits, "y")
    valid = t >= 0
    n = int(valid.sum())
    if n == 0:
        return math.nan
    hit = mask.gather(-1, t.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return float(hit[valid].sum()) / n


@torch.no_grad()
def true_label_rank(stage1_logits, y) -> np.ndarray:
    """1-based rank of the true class in each input's stage-1 ranking (multi-class only).

    The paper's Fig. 6 statistic: a good k is about the mean rank among minority classes.
    Targets < 0 (``-100``) are dropped from the result, which is a flat int64 array.

    >>> true_label_rank(torch.tensor([[3., 2., 1.], [1., 2., 3.]]), [1, 0])
    array([2, 3])
    """
    logits = _as_logits(stage1_logits)
    y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y, device=logits.device)
    t = _multiclass_targets(y, logits, "y")
    valid = t >= 0
    true_score = logits.gather(-1, t.clamp(min=0).unsqueeze(-1))
    # ties count against the true class (pessimistic rank, as topk may drop it)
    rank = (logits >= true_score).sum(-1)
    return rank[valid].cpu().numpy().astype(np.int64)

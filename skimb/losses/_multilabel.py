"""Multi-label (sigmoid) imbalance losses: logits ``(N, C)``, float 0/1 targets ``(N, C)``.

Every loss here is an element-wise binary loss over the ``(N, C)`` label matrix;
the per-sample loss is its **mean over labels**.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ._base import (
    ImbalanceLoss,
    _adaptive_gamma,
    _check_counts,
    _check_n_samples,
    _check_nonneg,
    _even_alpha,
    _per_class_alpha,
    _resolve_alpha,
    _safe_counts,
    _to_buffer,
)
from ._registry import register_loss

__all__ = [
    "BinaryCrossEntropyLoss",
    "WeightedBinaryCrossEntropyLoss",
    "BinaryFocalLoss",
    "DistributionBalancedLoss",
    "BinaryAdaptiveFocalLoss",
]


def _binary_focal(logits, target, gamma):
    """Element-wise ``-[y (1-p)^g log p + (1-y) p^g log(1-p)]``, ``p = sigmoid(z)``.

    ``(1-p)^g = exp(g * logsigmoid(-z))`` and ``p^g = exp(g * logsigmoid(z))``: finite
    values and gradients for any finite logit; exactly BCE for ``g = 0``; ``g`` may
    be a float or a per-class tensor of shape (C,).
    """
    log_p = F.logsigmoid(logits)
    log_1mp = F.logsigmoid(-logits)
    if isinstance(gamma, float) and gamma == 0.0:
        return -(target * log_p + (1.0 - target) * log_1mp)
    return -(target * torch.exp(gamma * log_1mp) * log_p
             + (1.0 - target) * torch.exp(gamma * log_p) * log_1mp)


@register_loss("bce", "multilabel")
@register_loss("ce", "multilabel")
class BinaryCrossEntropyLoss(ImbalanceLoss):
    """Binary cross-entropy with logits, averaged over labels.

    ``l_i = 1/C sum_c -[y_ic log p_ic + (1 - y_ic) log(1 - p_ic)]``,
    ``p = sigmoid(logits)``. Registered as ``"bce"`` (and ``"ce"`` for multi-label).

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default="mean"

    Examples
    --------
    >>> import torch
    >>> from skimb.losses import BinaryCrossEntropyLoss
    >>> logits = torch.tensor([[2.0, -1.0], [0.0, 3.0]])
    >>> target = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    >>> BinaryCrossEntropyLoss(reduction="none")(logits, target)
    tensor([0.2201, 1.8709])
    """

    task = "multilabel"

    def __init__(self, reduction="mean"):
        super().__init__(reduction=reduction)

    def _per_label(self, logits, target):
        return _binary_focal(logits, target, 0.0)


@register_loss("weighted_bce", "multilabel")
@register_loss("weighted_ce", "multilabel")
class WeightedBinaryCrossEntropyLoss(ImbalanceLoss):
    """Binary cross-entropy with weights on the positive terms only.

    ``l_i = 1/C sum_c -[w_c y_ic log p_ic + (1 - y_ic) log(1 - p_ic)]`` with
    ``w_c = min(negatives_c / positives_c, max_pos_weight)``, ``negatives_c = N - n_c``
    (zero counts are treated as one). Weighting the positives only (Kumar et al.,
    2018, see the survey §3.3) avoids also up-weighting the many negatives of a
    rare label. The cap keeps the weights mild: a label rarer than one text in four gets 3.
    Measured on GoEmotions (28 labels, 2,700 training texts, threshold 0.5, 3 seeds, round 26):
    macro-F1 0.399 capped at 3, 0.398 at 2, 0.356 at 8, 0.264 at 100 (the default
    until round 26), BCE 0.357; at 6,000 texts (one seed) 0.456 capped at 3 against BCE's 0.435.
    The full ratio makes the model predict a rare label for many texts that do not have it.

    The positive weights weigh a label's positives against its negatives, which row weights
    cannot do, so ``without_class_balance()`` keeps them: a second stage (cRT, CALoRA) trains
    with them (round 26 measured CALoRA on weighted BCE with them kept, the best multi-label
    row, ``docs/losses.md``).

    Parameters
    ----------
    class_counts : array-like of shape (C,)
        Positive examples per label.
    n_samples : int
        Number of training examples N.
    max_pos_weight : float or None, default=3.0
        Cap on the positive weights (extra ``loss__max_pos_weight``); None: no cap.
    pos_weight : array-like of shape (C,), default=None
        Explicit positive weights, used as given (no counts needed).
    reduction : {"mean", "sum", "none"}, default="mean"

    Attributes
    ----------
    pos_weight_ : torch.Tensor of shape (C,)
        Weights of the positive terms (buffer).

    Examples
    --------
    >>> import torch
    >>> from skimb.losses import WeightedBinaryCrossEntropyLoss
    >>> loss = WeightedBinaryCrossEntropyLoss([50, 10], n_samples=100, reduction="none")
    >>> loss.pos_weight_
    tensor([1., 3.])
    >>> loss(torch.zeros(2, 2), torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    tensor([1.3863, 0.6931])
    """

    task = "multilabel"

    def __init__(self, class_counts=None, n_samples=None, *, max_pos_weight=3.0,
                 pos_weight=None, reduction="mean"):
        super().__init__(reduction=reduction)
        self.max_pos_weight = (None if max_pos_weight is None
                               else _check_nonneg(max_pos_weight, "max_pos_weight"))
        owner = type(self).__name__
        if pos_weight is not None:
            counts = _check_counts(class_counts, required=False)
            weight = _check_counts(pos_weight, name="pos_weight")
            if counts is not None and weight.size != counts.size:
                raise ValueError(
                    f"pos_weight has {weight.size} entries but class_counts has {counts.size}."
                )
        else:
            counts = _check_counts(class_counts, owner=owner)
            n = _check_n_samples(n_samples, counts, owner)
            weight = np.maximum(n - counts, 1.0) / _safe_counts(counts)
            if self.max_pos_weight is not None:
                weight = np.minimum(weight, self.max_pos_weight)
        self.register_buffer("pos_weight_", _to_buffer(weight))

    def _per_label(self, logits, target):
        w = self.pos_weight_.to(logits.dtype)
        return -(w * target * F.logsigmoid(logits) + (1.0 - target) * F.logsigmoid(-logits))

    def extra_repr(self):
        return f"max_pos_weight={self.max_pos_weight}, {super().extra_repr()}"


@register_loss("focal_bce", "multilabel")
@register_loss("focal", "multilabel")
class BinaryFocalLoss(ImbalanceLoss):
    """Sigmoid focal loss for multi-label targets (Lin et al., 2017), averaged over labels.

    ``l_i = 1/C sum_c -alpha_c [y (1 - p)^gamma log p + (1 - y) p^gamma log(1 - p)]``.
    ``gamma = 0`` without ``alpha`` is BCE. Registered as ``"focal_bce"`` (and
    ``"focal"`` for multi-label).

    Parameters
    ----------
    gamma : float, default=2.0
        Focusing parameter (>= 0).
    alpha : None, float, "balanced" or array-like of shape (C,), default=None
        Per-label weight of both the positive and the negative term (a scalar
        weights every label the same; it is not RetinaNet's positive/negative
        ``alpha_t``). ``"balanced"``: inverse positive frequency, mean 1 over labels
        (needs ``class_counts``).
    class_counts : array-like of shape (C,), default=None
        Positives per label; only used by ``alpha="balanced"`` and length checks.
    reduction : {"mean", "sum", "none"}, default="mean"

    Attributes
    ----------
    alpha_ : torch.Tensor of shape (C,) or ()
        Per-label weights (buffer), present only when ``alpha`` is given.

    Examples
    --------
    >>> import torch
    >>> from skimb.losses import BinaryFocalLoss
    >>> logits = torch.tensor([[2.0, -1.0], [0.0, 3.0]])
    >>> target = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    >>> BinaryFocalLoss(gamma=2.0, reduction="none")(logits, target)
    tensor([0.0122, 1.4698])
    """

    task = "multilabel"

    @classmethod
    def focuses(cls, gamma=2.0, **params) -> bool:
        return gamma > 0

    @classmethod
    def balances_classes(cls, alpha=None, **params) -> bool:
        return _per_class_alpha(alpha)

    def __init__(self, gamma=2.0, alpha=None, class_counts=None, reduction="mean"):
        super().__init__(reduction=reduction)
        self.gamma = _check_nonneg(gamma, "gamma")
        counts = _check_counts(class_counts, required=False)
        alpha_ = _resolve_alpha(alpha, counts, type(self).__name__)
        self.register_buffer("alpha_", None if alpha_ is None else _to_buffer(alpha_))

    def _drop_class_balance(self):
        _even_alpha(self.alpha_)

    def _per_label(self, logits, target):
        loss = _binary_focal(logits, target, self.gamma)
        if self.alpha_ is not None:
            loss = self.alpha_.to(logits.dtype) * loss
        return loss

    def extra_repr(self):
        return f"gamma={self.gamma}, {super().extra_repr()}"


@register_loss("distribution_balanced", "multilabel")
class DistributionBalancedLoss(ImbalanceLoss):
    """Distribution-balanced loss (Wu et al., 2020), as in the authors' ``ResampleLoss``.

    Two parts, on top of a sigmoid focal loss:

    * **Re-balanced weighting.** For example i and label c,
      ``r_ic = (1/n_c) / sum_{k: y_ik = 1} (1/n_k)`` (the class-level over the
      instance-level sampling frequency), smoothed into
      ``w_ic = map_alpha + sigmoid(map_beta * (r_ic - map_mu))``; the same weight for
      positive and negative labels of the example. Examples without any positive
      label get ``r = inf``, i.e. ``w = map_alpha + 1``.
    * **Negative-tolerant regularisation (NTR).** Logits are shifted by a class bias
      ``b_c = -(init_bias / neg_scale) log(N / n_c - 1)``, ``z' = z + b``; negatives
      are scored on ``neg_scale * z'`` and their loss divided by ``neg_scale``, so the
      loss of a negative label drops sharply once its logit is below the threshold::

          l_ic = balance * (1 - q_ic)^gamma * w_ic * L_ic
          L_ic = -log sigmoid(z'_ic)                              if y_ic = 1
                 -(1 / neg_scale) log sigmoid(-neg_scale z'_ic)   if y_ic = 0

      with ``q_ic = exp(-neg_scale^{[y=0]} L_ic)`` the probability of the correct
      side (focal term); ``focal=False`` drops ``balance (1 - q)^gamma``.

    Per-sample loss: the mean over labels. Targets are read as 0/1 (``> 0.5``).
    Defaults are the authors' COCO-MLT configuration (``LT_resnet50_pfc_DB``):
    ``neg_scale = 2`` (lambda), ``init_bias = 0.05`` (kappa), ``map_alpha = 0.1``,
    ``map_beta = 10``, ``map_mu = 0.2``, focal ``gamma = 2`` with ``balance = 2``.
    Zero counts are treated as one and counts equal to N as N - 1.

    Parameters
    ----------
    class_counts : array-like of shape (C,)
        Positives per label.
    n_samples : int
        Number of training examples N (>= 2).
    gamma : float, default=2.0
        Focal focusing parameter.
    focal : bool, default=True
        Apply the focal term.
    balance : float, default=2.0
        Constant factor of the focal version (the authors' ``balance_param``).
    neg_scale : float, default=2.0
        NTR scale lambda (> 0).
    init_bias : float, default=0.05
        NTR bias factor kappa.
    map_alpha, map_beta, map_mu : float, default=0.1, 10.0, 0.2
        Smoothing function of the re-balanced weights.
    reduction : {"mean", "sum", "none"}, default="mean"

    Attributes
    ----------
    logit_bias_ : torch.Tensor of shape (C,)
        The NTR class bias ``b`` added to the logits (buffer).
    rebalance_weights : bool
        Whether the re-balanced weights apply (False on ``without_class_balance()``'s copy,
        whose ``logit_bias_`` is zero too).

    Examples
    --------
    >>> import torch
    >>> from skimb.losses import DistributionBalancedLoss
    >>> loss = DistributionBalancedLoss([50, 5], n_samples=100, reduction="none")
    >>> loss.logit_bias_
    tensor([-0.0000, -0.0736])
    >>> loss(torch.zeros(2, 2), torch.tensor([[1.0, 1.0], [0.0, 1.0]]))
    tensor([0.2767, 0.2479])
    """

    task = "multilabel"
    rebalances = True
    rebalance_weights = True  # a class default, so that losses pickled before it existed load

    @classmethod
    def focuses(cls, gamma=2.0, focal=True, **params) -> bool:
        return bool(focal) and gamma > 0

    @classmethod
    def unused_params(cls, focal=True, **params) -> dict:
        if focal:
            return {}
        return {name: "focal=False" for name in ("gamma", "balance") if params.get(name) is not None}

    def __init__(self, class_counts=None, n_samples=None, *, gamma=2.0, focal=True,
                 balance=2.0, neg_scale=2.0, init_bias=0.05, map_alpha=0.1, map_beta=10.0,
                 map_mu=0.2, reduction="mean"):
        super().__init__(reduction=reduction)
        owner = type(self).__name__
        counts = _check_counts(class_counts, owner=owner)
        n = _check_n_samples(n_samples, counts, owner)
        if n < 2:
            raise ValueError(f"{owner} needs n_samples >= 2, got {n_samples!r}.")
        self.gamma = _check_nonneg(gamma, "gamma")
        self.focal = bool(focal)
        self.balance = _check_nonneg(balance, "balance")
        self.neg_scale = _check_nonneg(neg_scale, "neg_scale")
        if self.neg_scale == 0:
            raise ValueError("neg_scale must be > 0.")
        self.init_bias = float(init_bias)
        self.map_alpha = float(map_alpha)
        self.map_beta = float(map_beta)
        self.map_mu = float(map_mu)
        clipped = np.clip(counts, 1.0, n - 1.0)
        bias = -np.log(n / clipped - 1.0) * self.init_bias / self.neg_scale
        self.register_buffer("logit_bias_", _to_buffer(bias))
        self.register_buffer("inv_freq", _to_buffer(1.0 / _safe_counts(counts)))

    def _drop_class_balance(self):  # no re-balanced weights, no prior bias; NTR's scale and the focal term stay
        self.logit_bias_.zero_()
        self.rebalance_weights = False

    def _rebalance_weight(self, positive):
        inv_freq = self.inv_freq.to(positive.dtype)
        repeat = (positive * inv_freq).sum(dim=1, keepdim=True)
        ratio = torch.where(repeat > 0, inv_freq / repeat.clamp(min=torch.finfo(repeat.dtype).tiny),
                            torch.full_like(repeat, float("inf")))
        return self.map_alpha + torch.sigmoid(self.map_beta * (ratio - self.map_mu))

    def _per_label(self, logits, target):
        pos = target > 0.5
        positive = pos.to(logits.dtype)
        weight = self._rebalance_weight(positive) if self.rebalance_weights else torch.ones_like(logits)
        z = logits + self.logit_bias_.to(logits.dtype)
        signed = torch.where(pos, z, -self.neg_scale * z)  # loss = -logsigmoid(signed)
        loss = -F.logsigmoid(signed)
        weight = torch.where(pos, weight, weight / self.neg_scale)
        if self.focal:
            loss = self.balance * torch.exp(self.gamma * F.logsigmoid(-signed)) * loss
        return weight * loss

    def extra_repr(self):
        return (f"gamma={self.gamma}, focal={self.focal}, neg_scale={self.neg_scale}, "
                f"init_bias={self.init_bias}, rebalance_weights={self.rebalance_weights}, {super().extra_repr()}")


@register_loss("afl", "multilabel")
class BinaryAdaptiveFocalLoss(ImbalanceLoss):
    """Adaptive focal loss, AFL-BERT (Labd et al.): per-label focusing parameters.

    ::

        gamma_c = min(gamma / f~_c, max_gamma),   f~_c = f_c / max_k f_k = n_c / max_k n_k
        l_i = 1/C sum_c -alpha_c [y (1 - p)^{gamma_c} log p + (1 - y) p^{gamma_c} log(1 - p)]

    ``f_c`` is the share of training examples with label c; normalising it by the
    largest share gives the most frequent label ``gamma`` and rarer labels
    proportionally more, capped at ``max_gamma`` (the paper's raw ``1 / f_c``
    explodes for rare labels). ``gamma_`` is non-increasing in label frequency.
    The paper sums over labels; skimb's per-sample loss is the mean (a constant
    factor 1/C). A large ``gamma_c`` mostly silences the easy negatives of a rare
    label (``p^{gamma_c}``), which dominate its loss. ``gamma = 0`` is BCE.

    It also silences the rare label's positives once they are half learnt
    (``(1-p)^{gamma_c}``): where one label dominates, most labels reach the cap and
    stop below the 0.5 threshold (GoEmotions, whose ``neutral`` is on a third of the
    texts: macro-F1 0.09 against BCE's 0.36; ``docs/losses.md``).

    Parameters
    ----------
    class_counts : array-like of shape (C,)
        Positives per label; zero counts are treated as one.
    gamma : float, default=2.0
        Base focusing parameter, given to the most frequent label (the paper's best
        static focal ``gamma``).
    max_gamma : float or None, default=10.0
        Cap on ``gamma_c``; at 10 an example at ``p_t = 0.5`` keeps ~1e-3 of its
        BCE, so larger values practically silence a label. None disables the cap.
    alpha : None, float, "balanced" or array-like of shape (C,), default=None
        Per-label weights ``alpha_c`` (both terms); None means 1, ``"balanced"`` the
        inverse positive frequency with mean 1 over labels.
    reduction : {"mean", "sum", "none"}, default="mean"

    Attributes
    ----------
    gamma_ : torch.Tensor of shape (C,)
        Per-label focusing parameters (buffer).
    alpha_ : torch.Tensor of shape (C,)
        Per-label weights (buffer).

    Examples
    --------
    >>> import torch
    >>> from skimb.losses import BinaryAdaptiveFocalLoss
    >>> loss = BinaryAdaptiveFocalLoss([400, 100, 2], gamma=2.0, reduction="none")
    >>> loss.gamma_
    tensor([ 2.,  8., 10.])
    >>> loss(torch.zeros(2, 3), torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]))
    tensor([0.0589, 0.0589])
    """

    task = "multilabel"

    @classmethod
    def focuses(cls, gamma=2.0, **params) -> bool:
        return gamma > 0

    @classmethod
    def balances_classes(cls, alpha=None, **params) -> bool:
        return _per_class_alpha(alpha)

    def __init__(self, class_counts=None, *, gamma=2.0, max_gamma=10.0, alpha=None,
                 reduction="mean"):
        super().__init__(reduction=reduction)
        counts = _check_counts(class_counts, owner=type(self).__name__)
        self.gamma = _check_nonneg(gamma, "gamma")
        self.max_gamma = None if max_gamma is None else _check_nonneg(max_gamma, "max_gamma")
        alpha_ = _resolve_alpha(1.0 if alpha is None else alpha, counts, type(self).__name__)
        self.register_buffer("gamma_", _to_buffer(_adaptive_gamma(counts, gamma, max_gamma)))
        self.register_buffer("alpha_", _to_buffer(alpha_))

    def _drop_class_balance(self):  # every label the base gamma too: the focal loss
        self.gamma_.fill_(self.gamma)
        _even_alpha(self.alpha_)

    def _per_label(self, logits, target):
        loss = _binary_focal(logits, target, self.gamma_.to(logits.dtype))
        return self.alpha_.to(logits.dtype) * loss

    def extra_repr(self):
        return f"gamma={self.gamma}, max_gamma={self.max_gamma}, {super().extra_repr()}"

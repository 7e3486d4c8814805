"""Multi-class (softmax) imbalance losses: logits ``(N, C)``, integer targets ``(N,)``."""

from __future__ import annotations

import numbers

import numpy as np
import torch
import torch.nn.functional as F

from ._base import (
    ImbalanceLoss,
    _adaptive_gamma,
    _check_counts,
    _check_nonneg,
    _even_alpha,
    _inverse_frequency,
    _log1m_softmax_at,
    _per_class_alpha,
    _resolve_alpha,
    _safe_counts,
    _to_buffer,
)
from ._registry import register_loss

__all__ = [
    "CrossEntropyLoss",
    "WeightedCrossEntropyLoss",
    "ClassBalancedLoss",
    "FocalLoss",
    "DiceLoss",
    "SelfAdjustingDiceLoss",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "AdaptiveFocalLoss",
    "RankingLoss",
    "SoftOrdinalLoss",
]


def _nll(logits, target):
    """``-log softmax(logits)[i, target_i]``."""
    return F.cross_entropy(logits, target, reduction="none")


def _focal(logits, target, gamma):
    """``-(1 - p_t)^gamma log p_t`` with ``gamma`` a float or a per-sample tensor.

    ``(1 - p_t)^gamma`` is computed as ``exp(gamma * log(1 - p_t))`` with
    ``log(1 - p_t)`` from a log-sum-exp over the other classes: finite values and
    gradients for any finite logits and for other classes masked with ``-inf`` (as
    ``F.cross_entropy``), and exactly 1 when ``gamma = 0`` (a float or a tensor's entry).
    """
    nll = _nll(logits, target)
    if logits.shape[1] < 2:  # a single class: p_t = 1 and the loss is 0
        return nll
    if isinstance(gamma, float) and gamma == 0.0:
        return nll
    return torch.exp(gamma * _log1m_softmax_at(logits, target)) * nll


def _check_catch_all(catch_all, n_classes):
    """``catch_all`` as a class index (None stays None), with at least one real class beside it."""
    if catch_all is None:
        return None
    if isinstance(catch_all, bool) or not isinstance(catch_all, numbers.Integral) \
            or not 0 <= int(catch_all) < n_classes or n_classes < 2:
        raise ValueError(f"catch_all must be a class index in [0, {n_classes}) with another class besides it, "
                         f"got {catch_all!r}.")
    return int(catch_all)


def _class_balanced_weights(counts, beta):
    """Effective-number weights ``(1 - beta) / (1 - beta^n_c)``, normalised to sum C."""
    beta = _check_nonneg(beta, "beta")
    if beta >= 1.0:
        raise ValueError(f"beta must be in [0, 1), got {beta!r}.")
    n = _safe_counts(counts)
    w = (1.0 - beta) / (1.0 - np.power(beta, n))
    return w * (n.size / w.sum())


@register_loss("ce", "multiclass")
class CrossEntropyLoss(ImbalanceLoss):
    """Plain softmax cross-entropy, the reference every imbalance loss is compared with.

    ``l_i = -log p_{i, y_i}``, ``p = softmax(logits)``.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default="mean"

    Examples
    --------
    >>> import torch
    >>> from skimb.losses import CrossEntropyLoss
    >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    >>> CrossEntropyLoss(reduction="none")(logits, torch.tensor([0, 2]))
    tensor([0.1698, 1.5514])
    """

    task = "multiclass"

    def __init__(self, reduction="mean"):
        super().__init__(reduction=reduction)

    def _per_sample(self, logits, target):
        return _nll(logits, target)


@register_loss("weighted_ce", "multiclass")
class WeightedCrossEntropyLoss(ImbalanceLoss):
    """Cross-entropy weighted by inverse class frequency (ICF).

    ``l_i = -w_{y_i} log p_{i, y_i}`` with ``w_c ∝ 1 / n_c``. By default the weights
    have mean 1 over classes (``w_c = (1/n_c) / mean_k(1/n_k)``), as in HAMR's ICF
    baseline; ``normalize="samples"`` gives scikit-learn's ``"balanced"`` weights
    ``N / (C n_c)`` (mean 1 over training examples). ``reduction="mean"`` is the
    plain mean of the weighted per-sample losses (unlike ``torch.nn.CrossEntropyLoss``,
    which divides by the sum of the weights).

    Parameters
    ----------
    class_counts : array-like of shape (C,), default=None
        Training examples per class; zero counts are treated as one. Needed unless
        ``class_weight`` is given.
    class_weight : array-like of shape (C,), default=None
        Explicit per-class weights used as given (overrides the counts).
    normalize : {"classes", "samples"}, default="classes"
        What the inverse-frequency weights have mean 1 over.
    catch_all : int or None, default=None
        Index of a catch-all class (the estimators accept its label): the weights are computed
        over the real classes only and the catch-all class keeps weight 1, as Hu et al. (2022)
        weight only the non-catch-all classes.
    reduction : {"mean", "sum", "none"}, default="mean"

    Attributes
    ----------
    class_weight_ : torch.Tensor of shape (C,)
        The per-class weights (buffer).

    Examples
    --------
    >>> import torch
    >>> from skimb.losses import WeightedCrossEntropyLoss
    >>> loss = WeightedCrossEntropyLoss([90, 10], reduction="none")
    >>> loss.class_weight_
    tensor([0.2000, 1.8000])
    >>> loss(torch.zeros(2, 2), torch.tensor([0, 1]))
    tensor([0.1386, 1.2477])
    >>> WeightedCrossEntropyLoss([90, 30, 10], catch_all=0).class_weight_
    tensor([1.0000, 0.5000, 1.5000])
    """

    task = "multiclass"

    rebalances = True

    def __init__(self, class_counts=None, *, class_weight=None, normalize="classes", catch_all=None,
                 reduction="mean"):
        super().__init__(reduction=reduction)
        self.normalize = normalize
        counts = _check_counts(class_counts, required=class_weight is None,
                               owner=type(self).__name__)
        self.catch_all = catch_all if counts is None else _check_catch_all(catch_all, counts.size)
        if class_weight is not None:
            weight = _check_counts(class_weight, name="class_weight")
            if counts is not None and weight.size != counts.size:
                raise ValueError(
                    f"class_weight has {weight.size} entries but class_counts has {counts.size}."
                )
        elif self.catch_all is not None:
            real = np.arange(counts.size) != self.catch_all
            weight = np.ones(counts.size)
            weight[real] = _inverse_frequency(counts[real], normalize)
        else:
            weight = _inverse_frequency(counts, normalize)
        self.register_buffer("class_weight_", _to_buffer(weight))

    def _drop_class_balance(self):
        self.class_weight_.fill_(1.0)

    def _per_sample(self, logits, target):
        return self.class_weight_.to(logits.dtype)[target] * _nll(logits, target)

    def extra_repr(self):
        return f"n_classes={self.class_weight_.numel()}, {super().extra_repr()}"


def _check_drw_epoch(drw_epoch):
    if drw_epoch is None:
        return None
    if isinstance(drw_epoch, bool) or not isinstance(drw_epoch, numbers.Real):
        raise TypeError(f"drw_epoch must be None, an int or a float, got {type(drw_epoch).__name__}.")
    if isinstance(drw_epoch, numbers.Integral):
        if drw_epoch < 0:
            raise ValueError(f"drw_epoch must be >= 0, got {drw_epoch!r}.")
        return int(drw_epoch)
    if not 0.0 < float(drw_epoch) < 1.0:
        value = float(drw_epoch)
        epoch = int(value) if np.isfinite(value) and value.is_integer() and value >= 1 else 2
        raise ValueError(
            f"a float drw_epoch is a fraction of max_epochs and must be in (0, 1), got {drw_epoch!r}; an epoch "
            f"number is an integer: drw_epoch={epoch} starts the re-weighting at epoch {epoch} (0-based)."
        )
    return float(drw_epoch)


class _DeferredReweighting:
    """Deferred re-weighting (Cao et al., 2019) for a loss whose per-sample weights are its
    ``class_weight_`` buffer: ones before the epoch ``drw_epoch``, the class-balanced
    ``drw_weight`` from it; without a schedule, ``class_weight_`` holds ``weight_without_schedule``."""

    def _init_deferred_reweighting(self, drw_epoch, balanced, weight_without_schedule):
        self.drw_epoch = _check_drw_epoch(drw_epoch)
        self.register_buffer("drw_weight", _to_buffer(balanced).clone())
        now = weight_without_schedule if self.drw_epoch is None else np.ones(len(balanced))
        self.register_buffer("class_weight_", _to_buffer(now).clone())  # its own memory: set_epoch writes it

    #: What the loss does without a schedule (``drw_epoch=None``), for the schedule's warnings.
    _unscheduled = "re-weights every epoch"

    @classmethod
    def schedule_warning(cls, n_epochs, drw_epoch=None, **params):
        """Why ``drw_epoch`` re-weights nothing, or defers nothing, in a fit of ``n_epochs`` epochs, or
        None; a malformed ``drw_epoch`` raises. The estimators ask before training. A fraction in a
        fit of one epoch is not warned about: no schedule can defer anything there.

        >>> from skimb.losses import ClassBalancedLoss
        >>> ClassBalancedLoss.schedule_warning(3, drw_epoch=0.8) is None
        True
        >>> ClassBalancedLoss.schedule_warning(2, drw_epoch=2)
        'drw_epoch=2 starts after the last of 2 epochs: training is never re-weighted. Pass a smaller drw_epoch or a fraction of training.'
        >>> ClassBalancedLoss.schedule_warning(3, drw_epoch=0.1)
        'drw_epoch=0.1 of 3 epochs rounds to epoch 0 and re-weights from the first epoch: nothing is deferred. Pass a later epoch such as 1 or a larger fraction such as 0.8 to defer the re-weighting (drw_epoch=None re-weights every epoch).'
        """
        start, n_epochs = _check_drw_epoch(drw_epoch), int(n_epochs)
        if isinstance(start, int) and start >= n_epochs:
            return (f"drw_epoch={start} starts after the last of {n_epochs} epochs: training is never "
                    "re-weighted. Pass a smaller drw_epoch or a fraction of training.")
        if start == 0:
            what = "drw_epoch=0"
        elif isinstance(start, float) and n_epochs >= 2 and round(start * n_epochs) == 0:  # as drw_start rounds
            what = f"drw_epoch={start} of {n_epochs} epochs rounds to epoch 0 and"
        else:
            return None
        return (f"{what} re-weights from the first epoch: nothing is deferred. Pass a later epoch such as 1 or a "
                f"larger fraction such as 0.8 to defer the re-weighting (drw_epoch=None {cls._unscheduled}).")

    def drw_start(self, max_epochs=None):
        """The first (0-based) epoch that is re-weighted, or None without a schedule.

        A fraction of ``max_epochs`` is rounded (half to even) and kept inside training, so that a
        short fit still re-weights its last epoch.

        Parameters
        ----------
        max_epochs : int, default=None
            Total epochs; needed when ``drw_epoch`` is a fraction.

        Returns
        -------
        int or None
        """
        if self.drw_epoch is None or isinstance(self.drw_epoch, int):
            return self.drw_epoch
        if max_epochs is None:
            raise ValueError("drw_epoch is a fraction of training: pass max_epochs.")
        return min(int(round(self.drw_epoch * max_epochs)), max(int(max_epochs) - 1, 0))

    def set_epoch(self, epoch, max_epochs=None):
        """Switch to the class-balanced weights once ``epoch`` reaches :meth:`drw_start`.

        Parameters
        ----------
        epoch : int
            The epoch about to start, counting from 0.
        max_epochs : int, default=None
            Total epochs; needed when ``drw_epoch`` is a fraction.
        """
        super().set_epoch(epoch, max_epochs)
        start = self.drw_start(max_epochs)
        if start is None:
            return
        with torch.no_grad():
            if int(epoch) >= start:
                self.class_weight_.copy_(self.drw_weight)
            else:
                self.class_weight_.fill_(1.0)

    def __setstate__(self, state):
        super().__setstate__(state)
        # a loss pickled before the schedule existed (skimb < round 33): no schedule, its weights as they were
        self.__dict__.setdefault("drw_epoch", None)
        if "drw_weight" not in self._buffers:
            self.register_buffer("drw_weight", self.class_weight_.detach().clone())

    def _drop_class_balance(self):  # the schedule's weights too, or a later set_epoch would restore them
        self.class_weight_.fill_(1.0)
        self.drw_weight.fill_(1.0)


@register_loss("class_balanced", "multiclass")
class ClassBalancedLoss(_DeferredReweighting, ImbalanceLoss):
    """Class-balanced loss with effective-number weights (Cui et al., 2019), optionally deferred.

    ``w_c = (1 - beta) / (1 - beta^{n_c})``, normalised so the weights sum to C;
    ``l_i = w_{y_i} * base_i`` with ``base`` the cross-entropy or the focal loss.
    ``beta = 0`` gives uniform weights (plain CE); ``beta -> 1`` approaches inverse
    class frequency.

    Deferred re-weighting (DRW, Cao et al., 2019): with ``drw_epoch`` set, the weights are 1
    (the plain base loss) until that epoch and ``w`` from it, so that the features are learnt
    on the natural distribution and the last epochs re-balance the decisions. ``beta=0.9999``
    with ``drw_epoch=0.8`` is the paper's CE-DRW (``docs/benchmarks.md``, round 33, has it on
    real data).

    Parameters
    ----------
    class_counts : array-like of shape (C,)
        Training examples per class; zero counts are treated as one.
    beta : float, default=0.999
        Effective-number hyperparameter in [0, 1) (HAMR's EN baseline uses 0.999).
    base : {"ce", "focal"}, default="ce"
        The loss that is re-weighted (extra ``loss__base``).
    gamma : float, default=2.0
        Focusing parameter of the focal base; unused with ``base="ce"``.
    drw_epoch : None, int or float, default=None
        First (0-based) epoch of the re-weighting; a float in (0, 1) is a fraction of
        ``max_epochs`` (rounded, at most the last epoch). None weights every epoch (extra
        ``loss__drw_epoch``).
    reduction : {"mean", "sum", "none"}, default="mean"

    Attributes
    ----------
    class_weight_ : torch.Tensor of shape (C,)
        The weights in use (buffer): the effective-number weights (sum C), or ones before
        ``drw_epoch``.
    drw_weight : torch.Tensor of shape (C,)
        The effective-number weights a schedule switches to (buffer).

    Examples
    --------
    >>> import torch
    >>> from skimb.losses import ClassBalancedLoss
    >>> loss = ClassBalancedLoss([1000, 10], beta=0.999, reduction="none")
    >>> loss.class_weight_
    tensor([0.0310, 1.9690])
    >>> loss(torch.zeros(2, 2), torch.tensor([0, 1]))
    tensor([0.0215, 1.3648])
    >>> drw = ClassBalancedLoss([1000, 10], beta=0.999, drw_epoch=0.8)
    >>> drw.set_epoch(0, max_epochs=3)
    >>> drw.class_weight_
    tensor([1., 1.])
    >>> drw.drw_start(max_epochs=3)
    2
    >>> drw.set_epoch(2, max_epochs=3)
    >>> drw.class_weight_
    tensor([0.0310, 1.9690])
    """

    task = "multiclass"

    rebalances = True

    # the schedule's methods, named here so that the API pages list them with the class
    set_epoch = _DeferredReweighting.set_epoch
    drw_start = _DeferredReweighting.drw_start
    schedule_warning = _DeferredReweighting.__dict__["schedule_warning"]

    @classmethod
    def focuses(cls, base="ce", gamma=2.0, **params) -> bool:
        return base == "focal" and gamma > 0

    @classmethod
    def unused_params(cls, base="ce", **params) -> dict:
        return {"gamma": f"base={base!r}"} if base == "ce" and params.get("gamma") is not None else {}

    def __init__(self, class_counts=None, *, beta=0.999, base="ce", gamma=2.0, drw_epoch=None,
                 reduction="mean"):
        super().__init__(reduction=reduction)
        counts = _check_counts(class_counts, owner=type(self).__name__)
        if base not in ("ce", "focal"):
            raise ValueError(f"base must be 'ce' or 'focal', got {base!r}.")
        self.beta = _check_nonneg(beta, "beta")
        self.base = base
        self.gamma = _check_nonneg(gamma, "gamma")
        balanced = _class_balanced_weights(counts, beta)
        self._init_deferred_reweighting(drw_epoch, balanced, weight_without_schedule=balanced)

    def _per_sample(self, logits, target):
        if self.base == "focal":
            base = _focal(logits, target, self.gamma)
        else:
            base = _nll(logits, target)
        return self.class_weight_.to(logits.dtype)[target] * base

    def extra_repr(self):
        return (f"beta={self.beta}, base={self.base!r}, gamma={self.gamma}, drw_epoch={self.drw_epoch}, "
                f"{super().extra_repr()}")


@register_loss("focal", "multiclass")
class FocalLoss(ImbalanceLoss):
    """Softmax focal loss (Lin et al., 2017).

    ``l_i = -alpha_{y_i} (1 - p_t)^gamma log p_t``, ``p_t = softmax(logits)[i, y_i]``.
    ``gamma = 0`` and no ``alpha`` is plain cross-entropy.

    Parameters
    ----------
    gamma : float, default=2.0
        Focusing parameter (>= 0).
    alpha : None, float, "balanced" or array-like of shape (C,), default=None
        Per-class weight of the true class. A scalar weights every class the same;
        ``"balanced"`` is the inverse class frequency with mean 1 over classes
        (needs ``class_counts``).
    class_counts : array-like of shape (C,), default=None
        Only used by ``alpha="balanced"`` and to check an ``alpha`` array's length.
    reduction : {"mean", "sum", "none"}, default="mean"

    Attributes
    ----------
    alpha_ : torch.Tensor of shape (C,) or ()
        The per-class weights (buffer), present only when ``alpha`` is given.

    Examples
    --------
    >>> import torch
    >>> from skimb.losses import FocalLoss
    >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    >>> FocalLoss(gamma=2.0, reduction="none")(logits, torch.tensor([0, 2]))
    tensor([0.0041, 0.9635])
    """

    task = "multiclass"

    @classmethod
    def balances_classes(cls, alpha=None, **params) -> bool:
        return _per_class_alpha(alpha)

    @classmethod
    def focuses(cls, gamma=2.0, **params) -> bool:
        return gamma > 0

    def __init__(self, gamma=2.0, alpha=None, class_counts=None, reduction="mean"):
        super().__init__(reduction=reduction)
        self.gamma = _check_nonneg(gamma, "gamma")
        counts = _check_counts(class_counts, required=False)
        alpha_ = _resolve_alpha(alpha, counts, type(self).__name__)
        self.register_buffer("alpha_", None if alpha_ is None else _to_buffer(alpha_))

    def _drop_class_balance(self):
        _even_alpha(self.alpha_)

    def _per_sample(self, logits, target):
        loss = _focal(logits, target, self.gamma)
        if self.alpha_ is not None:
            alpha = self.alpha_.to(logits.dtype)
            loss = (alpha[target] if alpha.ndim else alpha) * loss
        return loss

    def extra_repr(self):
        return f"gamma={self.gamma}, {super().extra_repr()}"


class _DiceBase(ImbalanceLoss):
    task = "multiclass"
    _self_adjusting = False

    def __init__(self, smooth=1.0, square_denominator=True, reduction="mean"):
        super().__init__(reduction=reduction)
        self.smooth = _check_nonneg(smooth, "smooth")
        self.square_denominator = bool(square_denominator)

    def _per_sample(self, logits, target):
        p = torch.softmax(logits, dim=1)
        y = F.one_hot(target, logits.shape[1]).to(p.dtype)
        if self._self_adjusting:
            p = (1.0 - p) * p
        if self.square_denominator:
            denom = p * p + y * y + self.smooth
        else:
            denom = p + y + self.smooth
        dsc = (2.0 * p * y + self.smooth) / denom
        return (1.0 - dsc).mean(dim=1)

    def extra_repr(self):
        return (f"smooth={self.smooth}, square_denominator={self.square_denominator}, "
                f"{super().extra_repr()}")


@register_loss("dice", "multiclass")
class DiceLoss(_DiceBase):
    """Per-example Dice loss (Milletari et al., 2016; Li et al., 2020), multi-class extension.

    For each example, one smoothed Dice term per class, averaged over classes::

        l_i = 1/C sum_c [1 - (2 p_ic y_ic + s) / (p_ic^2 + y_ic^2 + s)]

    with ``p = softmax(logits)``, ``y`` the one-hot target and ``s`` the smoothing
    constant. Absent classes contribute ``1 - s / (p^2 + s)``, which pushes their
    probability to 0; a small ``s`` makes that term flat except near 0 (Li et al.
    tune ``s`` per task; 1.0 keeps it a smooth penalty).

    Parameters
    ----------
    smooth : float, default=1.0
        Smoothing constant ``s`` (extra ``loss__smooth``).
    square_denominator : bool, default=True
        Squared probabilities in the denominator (Li et al.'s DL); False uses
        ``p + y + s``.
    reduction : {"mean", "sum", "none"}, default="mean"

    Examples
    --------
    >>> import torch
    >>> from skimb.losses import DiceLoss
    >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    >>> DiceLoss(reduction="none")(logits, torch.tensor([0, 2]))
    tensor([0.0079, 0.1986])
    """

    def __init__(self, smooth=1.0, square_denominator=True, reduction="mean"):
        super().__init__(smooth=smooth, square_denominator=square_denominator,
                         reduction=reduction)


@register_loss("self_adjusting_dice", "multiclass")
class SelfAdjustingDiceLoss(_DiceBase):
    """Self-adjusting Dice loss, ADL (Li et al., 2020), multi-class extension.

    The Dice loss with each probability replaced by ``(1 - p) p``, which down-weights
    confident predictions; Li et al.'s formula (eq. 12) has a linear denominator::

        l_i = 1/C sum_c [1 - (2 (1 - p_ic) p_ic y_ic + s) / ((1 - p_ic) p_ic + y_ic + s)]

    ``(1 - p) p`` vanishes as ``p`` approaches 0 or 1, so well-classified examples
    contribute almost no gradient (the self-adjustment, in the spirit of the focal
    factor) and the hard ones dominate training.

    Parameters
    ----------
    smooth : float, default=1.0
        Smoothing constant ``s`` (extra ``loss__smooth``).
    square_denominator : bool, default=False
        Use ``q^2 + y^2 + s`` (with ``q = (1 - p) p``) instead of ``q + y + s``.
    reduction : {"mean", "sum", "none"}, default="mean"

    Examples
    --------
    >>> import torch
    >>> from skimb.losses import SelfAdjustingDiceLoss
    >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    >>> SelfAdjustingDiceLoss(reduction="none")(logits, torch.tensor([0, 2]))
    tensor([0.1793, 0.2413])
    """

    _self_adjusting = True

    def __init__(self, smooth=1.0, square_denominator=False, reduction="mean"):
        super().__init__(smooth=smooth, square_denominator=square_denominator,
                         reduction=reduction)


@register_loss("ldam", "multiclass")
class LDAMLoss(_DeferredReweighting, ImbalanceLoss):
    """Label-distribution-aware margin loss with optional deferred re-weighting (Cao et al., 2019).

    The true-class logit is reduced by a class margin before a scaled softmax
    cross-entropy::

        m_c = max_m * n_c^{-1/4} / max_k n_k^{-1/4}
        l_i = -w_{y_i} log softmax(s * (z_i - m_{y_i} e_{y_i}))_{y_i}

    so the rarest class gets the margin ``max_m``. ``s = 30`` follows the paper,
    whose logits are cosine similarities (normalised features and weights); with an
    unnormalised linear head a smaller scale (e.g. 1) is usually appropriate.

    Deferred re-weighting (DRW): the class weights ``w`` are 1 until the epoch
    ``drw_epoch`` (see :meth:`set_epoch`), then the class-balanced weights
    ``(1 - beta) / (1 - beta^{n_c})`` normalised to sum C (the paper's LDAM-DRW uses
    ``beta = 0.9999`` and starts at 80 % of training).

    Parameters
    ----------
    class_counts : array-like of shape (C,)
        Training examples per class; zero counts are treated as one.
    max_m : float, default=0.5
        Largest margin (extra ``loss__max_m``).
    s : float, default=30.0
        Logit scale (extra ``loss__s``).
    drw_epoch : None, int or float, default=None
        First (0-based) epoch of the re-weighting; a float in (0, 1) is a fraction
        of ``max_epochs`` (rounded, at most the last epoch). None disables DRW (extra
        ``loss__drw_epoch``).
    beta : float, default=0.9999
        Effective-number hyperparameter of the DRW weights.
    reduction : {"mean", "sum", "none"}, default="mean"

    Attributes
    ----------
    margin_ : torch.Tensor of shape (C,)
        Per-class margins (buffer).
    class_weight_ : torch.Tensor of shape (C,)
        Current class weights (buffer): ones before DRW, class-balanced after.
    drw_weight : torch.Tensor of shape (C,)
        The class-balanced weights DRW switches to (buffer).

    Examples
    --------
    >>> import torch
    >>> from skimb.losses import LDAMLoss
    >>> loss = LDAMLoss([160, 10], s=1.0, drw_epoch=2, reduction="none")
    >>> loss.margin_
    tensor([0.2500, 0.5000])
    >>> loss(torch.zeros(2, 2), torch.tensor([0, 1]))
    tensor([0.8259, 0.9741])
    >>> loss.set_epoch(2, max_epochs=3)
    >>> loss.class_weight_
    tensor([0.1185, 1.8815])
    """

    task = "multiclass"

    rebalances = True
    _unscheduled = "does not re-weight"

    # the schedule's methods, named here so that the API pages list them with the class
    set_epoch = _DeferredReweighting.set_epoch
    drw_start = _DeferredReweighting.drw_start
    schedule_warning = _DeferredReweighting.__dict__["schedule_warning"]

    def __init__(self, class_counts=None, *, max_m=0.5, s=30.0, drw_epoch=None, beta=0.9999,
                 reduction="mean"):
        super().__init__(reduction=reduction)
        counts = _check_counts(class_counts, owner=type(self).__name__)
        self.max_m = _check_nonneg(max_m, "max_m")
        self.s = _check_nonneg(s, "s")
        self.beta = _check_nonneg(beta, "beta")
        inv4 = _safe_counts(counts) ** -0.25
        self.register_buffer("margin_", _to_buffer(inv4 * (self.max_m / inv4.max())))
        self._init_deferred_reweighting(drw_epoch, _class_balanced_weights(counts, beta),
                                        weight_without_schedule=np.ones(counts.size))

    def _drop_class_balance(self):  # no margins, no deferred re-weighting: the scaled cross-entropy
        super()._drop_class_balance()
        self.margin_.zero_()

    def _per_sample(self, logits, target):
        margin = self.margin_.to(logits.dtype)[target]
        onehot = F.one_hot(target, logits.shape[1]).to(logits.dtype)
        adjusted = self.s * (logits - margin[:, None] * onehot)
        return self.class_weight_.to(logits.dtype)[target] * _nll(adjusted, target)

    def extra_repr(self):
        return (f"max_m={self.max_m}, s={self.s}, drw_epoch={self.drw_epoch}, "
                f"{super().extra_repr()}")


@register_loss("logit_adjusted", "multiclass")
class LogitAdjustedLoss(ImbalanceLoss):
    """Logit-adjusted cross-entropy (Menon et al., 2021); balanced softmax for ``tau = 1``.

    ``l_i = -log softmax(z_i + tau log pi)_{y_i}`` with ``pi_c = n_c / sum_k n_k`` the
    training prior. The adjustment is applied in the loss only, so the raw logits
    the model outputs at prediction time are the balanced (prior-free) scores.

    Parameters
    ----------
    class_counts : array-like of shape (C,)
        Training examples per class; zero counts are treated as one.
    tau : float, default=1.0
        Adjustment strength; ``tau = 0`` is plain cross-entropy.
    reduction : {"mean", "sum", "none"}, default="mean"

    Attributes
    ----------
    logit_adjustment_ : torch.Tensor of shape (C,)
        ``tau * log(pi_c)`` added to the logits (buffer).

    Examples
    --------
    >>> import torch
    >>> from skimb.losses import LogitAdjustedLoss
    >>> loss = LogitAdjustedLoss([75, 25], reduction="none")
    >>> loss.logit_adjustment_
    tensor([-0.2877, -1.3863])
    >>> loss(torch.zeros(2, 2), torch.tensor([0, 1]))
    tensor([0.2877, 1.3863])
    """

    task = "multiclass"

    rebalances = True

    def __init__(self, class_counts=None, *, tau=1.0, reduction="mean"):
        super().__init__(reduction=reduction)
        counts = _safe_counts(_check_counts(class_counts, owner=type(self).__name__))
        if isinstance(tau, bool) or not isinstance(tau, numbers.Real) or not np.isfinite(tau):
            raise ValueError(f"tau must be a finite number, got {tau!r}.")
        self.tau = float(tau)
        self.register_buffer("logit_adjustment_", _to_buffer(self.tau * np.log(counts / counts.sum())))

    def _drop_class_balance(self):
        self.logit_adjustment_.zero_()

    def _per_sample(self, logits, target):
        return _nll(logits + self.logit_adjustment_.to(logits.dtype), target)

    def extra_repr(self):
        return f"tau={self.tau}, {super().extra_repr()}"


@register_loss("afl", "multiclass")
class AdaptiveFocalLoss(ImbalanceLoss):
    """Adaptive focal loss (AFL; Labd et al.), softmax version.

    A focal loss whose focusing parameter depends on the true class::

        gamma_c = min(gamma / f~_c, max_gamma),   f~_c = f_c / max_k f_k = n_c / max_k n_k
        l_i = -alpha_{y_i} (1 - p_t)^{gamma_{y_i}} log p_t

    The frequency ``f_c`` is normalised by the largest one, so the most frequent
    class gets ``gamma`` and rarer classes proportionally more, capped at
    ``max_gamma`` (the raw ``1 / f_c`` explodes for rare classes). ``gamma_`` is
    non-increasing in class frequency. ``gamma = 0`` is (alpha-weighted) cross-entropy.

    Parameters
    ----------
    class_counts : array-like of shape (C,)
        Training examples per class; zero counts are treated as one.
    gamma : float, default=2.0
        Base focusing parameter, given to the most frequent class (the paper's
        best static focal ``gamma``).
    max_gamma : float or None, default=10.0
        Cap on ``gamma_c``; at ``gamma_c = 10`` an example predicted at ``p_t = 0.5``
        keeps ~1e-3 of its cross-entropy, so larger values practically silence a
        class. None disables the cap.
    alpha : None, float, "balanced" or array-like of shape (C,), default=None
        Per-class weights; None means 1 for every class, ``"balanced"`` the inverse
        class frequency with mean 1 over classes.
    reduction : {"mean", "sum", "none"}, default="mean"

    Attributes
    ----------
    gamma_ : torch.Tensor of shape (C,)
        Per-class focusing parameters (buffer).
    alpha_ : torch.Tensor of shape (C,)
        Per-class weights (buffer).

    Examples
    --------
    >>> import torch
    >>> from skimb.losses import AdaptiveFocalLoss
    >>> loss = AdaptiveFocalLoss([100, 50, 5], gamma=1.0, reduction="none")
    >>> loss.gamma_
    tensor([ 1.,  2., 10.])
    >>> loss(torch.zeros(3, 3), torch.tensor([0, 1, 2]))
    tensor([0.7324, 0.4883, 0.0191])
    """

    task = "multiclass"

    @classmethod
    def balances_classes(cls, alpha=None, **params) -> bool:
        return _per_class_alpha(alpha)

    @classmethod
    def focuses(cls, gamma=2.0, **params) -> bool:
        return gamma > 0

    def __init__(self, class_counts=None, *, gamma=2.0, max_gamma=10.0, alpha=None,
                 reduction="mean"):
        super().__init__(reduction=reduction)
        counts = _check_counts(class_counts, owner=type(self).__name__)
        self.gamma = _check_nonneg(gamma, "gamma")
        self.max_gamma = None if max_gamma is None else _check_nonneg(max_gamma, "max_gamma")
        alpha_ = _resolve_alpha(1.0 if alpha is None else alpha, counts, type(self).__name__)
        self.register_buffer("gamma_", _to_buffer(_adaptive_gamma(counts, gamma, max_gamma)))
        self.register_buffer("alpha_", _to_buffer(alpha_))

    def _drop_class_balance(self):  # every class the base gamma too: the focal loss
        self.gamma_.fill_(self.gamma)
        _even_alpha(self.alpha_)

    def _per_sample(self, logits, target):
        gamma = self.gamma_.to(logits.dtype)[target]
        return self.alpha_.to(logits.dtype)[target] * _focal(logits, target, gamma)

    def extra_repr(self):
        return f"gamma={self.gamma}, max_gamma={self.max_gamma}, {super().extra_repr()}"


@register_loss("ranking", "multiclass")
class RankingLoss(ImbalanceLoss):
    """Pairwise ranking loss with a catch-all class (dos Santos et al., 2015, CR-CNN).

    For an example of a real class ``y``, raise its score above the margin ``m_plus`` and push
    the best-scoring wrong real class ``c-`` below ``-m_minus``::

        l = log(1 + exp(gamma (m_plus - s_y))) + log(1 + exp(gamma (m_minus + s_c-)))

    For an example of the catch-all class (``catch_all``, e.g. "other"), only the second term,
    with ``c-`` the best real class: the catch-all class is not learned as a class of its own
    (its examples share nothing but not being anything else). Its logit is never used by the
    loss; the estimators hold it at 0 (a zero row of a linear head), so that ``argmax``
    predicts the catch-all class exactly when every real class scores below 0, the paper's rule.
    Without ``catch_all``, every class is real.

    Parameters
    ----------
    class_counts : array-like of shape (C,)
        Training examples per class (only their number is used).
    catch_all : int or None, default=None
        Index of the catch-all class (the estimators accept its label: ``loss__catch_all="other"``).
    gamma : float, default=2.0
        Scaling factor (the paper's γ).
    m_plus, m_minus : float, default=2.5, 0.5
        Margins for the gold and the best wrong class (the paper's values).
    reduction : {"mean", "sum", "none"}, default="mean"

    Examples
    --------
    >>> import torch
    >>> from skimb.losses import RankingLoss
    >>> loss = RankingLoss([5, 3, 20], catch_all=2, reduction="none")
    >>> logits = torch.tensor([[3.0, -1.0, 0.0], [-1.0, -1.0, 0.0]])
    >>> loss(logits, torch.tensor([0, 2]))  # a confident real example, a well-rejected catch-all
    tensor([0.6265, 0.3133])
    """

    task = "multiclass"

    def __init__(self, class_counts=None, *, catch_all=None, gamma=2.0, m_plus=2.5, m_minus=0.5, reduction="mean"):
        super().__init__(reduction=reduction)
        counts = _check_counts(class_counts, owner=type(self).__name__)
        catch_all = _check_catch_all(catch_all, counts.size)
        for name, value in (("gamma", gamma), ("m_plus", m_plus), ("m_minus", m_minus)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}.")
        if gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {gamma!r}.")
        self.catch_all, self.gamma, self.m_plus, self.m_minus = catch_all, float(gamma), float(m_plus), float(m_minus)

    @property
    def zero_logit_class(self):
        """The class whose logit the estimators hold at 0: the catch-all class."""
        return self.catch_all

    def _per_sample(self, logits, target):
        logits = logits.float()
        n = logits.shape[0]
        rows = torch.arange(n, device=logits.device)
        excluded = torch.zeros(logits.shape, dtype=torch.bool, device=logits.device)
        excluded[rows, target] = True  # the best *wrong* class
        if self.catch_all is not None:
            excluded[:, self.catch_all] = True  # ... among the real classes
        best_wrong = logits.masked_fill(excluded, float("-inf")).max(dim=1).values
        has_wrong = torch.isfinite(best_wrong)  # a single real class has no wrong one
        negative = F.softplus(self.gamma * (self.m_minus + torch.where(has_wrong, best_wrong, 0.0)))
        negative = torch.where(has_wrong, negative, torch.zeros_like(negative))
        positive = F.softplus(self.gamma * (self.m_plus - logits[rows, target]))
        if self.catch_all is not None:
            positive = torch.where(target == self.catch_all, torch.zeros_like(positive), positive)
        return positive + negative

    def extra_repr(self):
        return (f"catch_all={self.catch_all}, gamma={self.gamma}, m_plus={self.m_plus}, m_minus={self.m_minus}, "
                f"{super().extra_repr()}")


@register_loss("ordinal", "multiclass")
class SoftOrdinalLoss(ImbalanceLoss):
    """Cross-entropy on soft ordinal labels (SORD; Díaz & Marathe, 2019), for graded classes.

    The target of an example of grade ``g_y`` is the distribution
    ``q_k ∝ exp(-sharpness (g_k - g_y)^2)`` over the classes, so a near miss costs less than a
    far one; the loss is ``KL(q || p)``, the cross-entropy to ``q`` less its entropy (0 for
    ``p = q``). ``sharpness → ∞`` is plain cross-entropy.

    Parameters
    ----------
    sharpness : float, default=2.0
        How fast the target's mass falls off with the distance in grades (> 0): at 2.0 a
        neighbouring grade gets ``exp(-2) ≈ 0.14`` of the true grade's mass.
    grades : array-like of shape (C,), default=None
        The grade of each class, in the order of the estimator's ``classes_`` (the sorted labels).
        None: ``0, 1, ..., C-1``, right for integer ratings; give it where the sorted labels are
        not in grade order (``["negative", "neutral", "positive"]`` sorts as they stand, but
        ``"very negative"`` sorts after ``"positive"``).
    class_counts : array-like of shape (C,), default=None
        Only used to check the length of ``grades``.
    reduction : {"mean", "sum", "none"}, default="mean"

    Attributes
    ----------
    grades_ : torch.Tensor of shape (C,)
        The grades (buffer), present only when ``grades`` is given.

    Examples
    --------
    >>> import torch
    >>> from skimb.losses import SoftOrdinalLoss
    >>> loss = SoftOrdinalLoss(sharpness=2.0, reduction="none")
    >>> logits = torch.tensor([[0.0, 3.0, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0]])
    >>> loss(logits, torch.tensor([0, 0]))  # one grade off costs less than three
    tensor([2.4138, 2.7713])
    >>> SoftOrdinalLoss(grades=[2, 1, 0, 3], reduction="none")(logits, torch.tensor([2, 2]))
    tensor([2.4138, 2.7713])
    """

    task = "multiclass"

    @classmethod
    def classes_warning(cls, classes, grades=None, **params):
        """Labels that are not numbers sort as text, seldom in grade order: without ``grades`` the
        loss would read that order as the grades. Numeric labels that are not evenly spaced (a
        rating missing from training: ``[1, 2, 5]``) would be read as evenly spaced grades.

        >>> SoftOrdinalLoss.classes_warning([1, 2, 3]) is None
        True
        >>> SoftOrdinalLoss.classes_warning(["negative", "neutral", "positive", "very negative"])[:57]
        "reads the classes' order as their grades, and the labels "
        >>> SoftOrdinalLoss.classes_warning([1, 2, 5])[:71]
        'reads the classes as evenly spaced grades 0, 1, 2, but the labels [1, 2'
        """
        labels = np.asarray(classes)
        if grades is not None:
            return None
        if labels.dtype.kind in "biuf":
            gaps = np.diff(labels.astype(np.float64))
            if gaps.size < 2 or np.allclose(gaps, gaps[0]):
                return None
            short = labels.size <= 6
            shown = ", ".join(map(str, range(labels.size))) if short else f"0, 1, ..., {labels.size - 1}"
            even = list(range(labels.size)) if short else f"list(range({labels.size}))"
            return (f"reads the classes as evenly spaced grades {shown}, but the labels {labels.tolist()} are not "
                    f"evenly spaced (a grade missing from training?); give loss__grades={labels.tolist()} to keep "
                    f"their distances, or loss__grades={even} to read them as evenly spaced.")
        return (f"reads the classes' order as their grades, and the labels {labels.tolist()} are sorted as text, "
                "which may not be their grade order; give loss__grades, one grade per class in that order.")

    def __init__(self, sharpness=2.0, grades=None, class_counts=None, reduction="mean"):
        super().__init__(reduction=reduction)
        if isinstance(sharpness, bool) or not isinstance(sharpness, numbers.Real) \
                or not np.isfinite(sharpness) or sharpness <= 0:
            raise ValueError(f"sharpness must be a finite number > 0 (0 would make every target uniform), "
                             f"got {sharpness!r}.")
        self.sharpness = float(sharpness)
        counts = _check_counts(class_counts, required=False)
        self.register_buffer("grades_", None if grades is None else _to_buffer(_check_grades(grades, counts)))

    def _per_sample(self, logits, target):
        if self.grades_ is None:
            grades = torch.arange(logits.shape[1], device=logits.device, dtype=logits.dtype)
        else:  # its length is checked against the logits' with the other buffers'
            grades = self.grades_.to(logits.dtype)
        distance = grades[None, :] - grades[target][:, None]
        sharpness = min(self.sharpness, torch.finfo(logits.dtype).max)  # one beyond the dtype is inf, and inf * 0 NaN
        q = torch.softmax(-sharpness * distance ** 2, dim=1)
        # xlogy: 0 where a far grade's target mass underflows to 0 (a large sharpness), not 0 * -inf
        return (torch.xlogy(q, q) - q * torch.log_softmax(logits, dim=1)).sum(dim=1)

    def extra_repr(self):
        return f"sharpness={self.sharpness}, {super().extra_repr()}"


def _check_grades(grades, counts):
    """``grades`` as a float64 array: 1-D, finite, distinct, one per class where the counts say how many."""
    try:
        values = np.asarray(grades, dtype=np.float64)
    except (TypeError, ValueError):
        values = np.array([np.nan])
    # finite in float32 too: the buffer is in torch's default dtype
    if values.ndim != 1 or values.size < 2 or not np.all(np.abs(values) <= np.finfo(np.float32).max):
        raise ValueError(f"grades must be a 1-D array of at least two finite numbers, got {grades!r}.")
    if np.unique(values).size != values.size:
        raise ValueError(f"grades must be distinct (two classes of one grade get the same soft target), "
                         f"got {values.tolist()}.")
    if counts is not None and counts.size != values.size:
        raise ValueError(f"grades has {values.size} entries but there are {counts.size} classes: give one grade "
                         "per class, in the order of the estimator's classes_.")
    return values

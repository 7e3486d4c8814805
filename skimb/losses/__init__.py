"""Class-imbalance losses for multi-class (softmax) and multi-label (sigmoid) heads.

Every loss is a ``torch.nn.Module`` usable on its own (``reduction`` ``"mean"`` by
default) and a :class:`ImbalanceLoss` with ``per_sample``, ``fitted_attributes``
and ``set_epoch``. Estimators build them with :func:`make_loss`, which returns
per-sample losses (``reduction="none"``).

Registered names (``LOSSES[task]``):

* ``"multiclass"``: ``ce``, ``weighted_ce``, ``class_balanced``, ``focal``, ``dice``,
  ``self_adjusting_dice``, ``ldam``, ``logit_adjusted``, ``afl``, ``ranking``.
* ``"multilabel"``: ``bce``, ``weighted_bce``, ``focal_bce``, ``distribution_balanced``,
  ``afl``; ``ce``, ``weighted_ce`` and ``focal`` are aliases of ``bce``,
  ``weighted_bce`` and ``focal_bce``.

Examples
--------
>>> import torch
>>> from skimb.losses import make_loss
>>> loss = make_loss("focal", task="multiclass", class_counts=[8, 2], n_samples=10,
...                  gamma=2.0, alpha="balanced")
>>> loss(torch.zeros(2, 2), torch.tensor([0, 1]))
tensor([0.0693, 0.2773])
"""

from ._base import ImbalanceLoss
from ._multiclass import (
    AdaptiveFocalLoss,
    ClassBalancedLoss,
    CrossEntropyLoss,
    DiceLoss,
    FocalLoss,
    LDAMLoss,
    LogitAdjustedLoss,
    RankingLoss,
    SelfAdjustingDiceLoss,
    SoftOrdinalLoss,
    WeightedCrossEntropyLoss,
)
from ._multilabel import (
    BinaryAdaptiveFocalLoss,
    BinaryCrossEntropyLoss,
    BinaryFocalLoss,
    DistributionBalancedLoss,
    WeightedBinaryCrossEntropyLoss,
)
from ._registry import (FLAT_PARAMS, LOSSES, available_losses, loss_balances_classes, loss_classes_warning,
                        loss_focuses, loss_schedule_warning, make_loss, register_loss)

__all__ = [
    "ImbalanceLoss",
    "make_loss",
    "loss_balances_classes",
    "loss_focuses",
    "loss_schedule_warning",
    "loss_classes_warning",
    "register_loss",
    "available_losses",
    "LOSSES",
    "FLAT_PARAMS",
    # multi-class
    "CrossEntropyLoss",
    "WeightedCrossEntropyLoss",
    "ClassBalancedLoss",
    "FocalLoss",
    "DiceLoss",
    "SelfAdjustingDiceLoss",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "RankingLoss",
    "SoftOrdinalLoss",
    "AdaptiveFocalLoss",
    # multi-label
    "BinaryCrossEntropyLoss",
    "WeightedBinaryCrossEntropyLoss",
    "BinaryFocalLoss",
    "DistributionBalancedLoss",
    "BinaryAdaptiveFocalLoss",
]

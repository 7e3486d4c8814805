"""The state of one ``fit``, carried between the steps of the fit skeleton."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["FitContext"]


@dataclass
class FitContext:
    """One fit's working state: what the steps (validate → plan → stage 1 → stage 2 → finish)
    and the components' hooks hand each other, instead of positional hook arguments and
    ``self._fit_*`` attributes. It never outlives the fit.

    The components read it (HAMR: ``ctx.adapter.validate_X`` for an explicit meta set,
    ``ctx.adapter.datasets`` for the meta dataset, ``ctx.adapter.pretrained_embeddings`` for the
    kNN boost) and never touch the estimator.
    """

    X: list
    y: Any  # encoded targets: int codes, a 0/1 matrix, or per-sentence tag codes
    classes: np.ndarray
    task: str  # "multiclass", "multilabel" or "token"
    sample_weight: Any
    adapter: Any  # the estimator's task adapter (texts or token lists)
    finetune: Any  # the resolved components
    head: Any
    training: Any
    lr: float | None  # None until plan resolves it (lr="auto" needs the loaded backbone)
    head_lr_multiplier: float = 1.0
    max_epochs: int = 1  # the estimator's
    n_epochs: int = 1  # the epochs the net runs (the training strategy's, from max_epochs)
    seed: int = 0
    device: str = "cpu"
    rank: int = 0  # data-parallel training: this process and the number of processes
    world_size: int = 1
    train_idx: np.ndarray | None = None
    valid_idx: np.ndarray | None = None
    stage1_balance: str = "none"  # class_weight or the loss re-balances: "full", or "partial" under a focal loss
    class_weight: np.ndarray | None = None
    weights: np.ndarray | None = None  # per-item loss weights (class x sample), mean 1, or None
    tag_weight: np.ndarray | None = None  # token classification: per-tag loss weights
    backbone_model: Any = None
    backbone_path: str | None = None
    module: Any = None
    criterion: Any = None
    net: Any = None
    train_ds: Any = None
    training_state: Any = None  # the training strategy's per-fit state (HAMRFit)
    training_fitted: Any = None  # its results as plain data (cached with stage 1)
    stage1: dict | None = None  # the stage-1 cache entry on a hit
    stage1_key: str | None = None
    stage1_s: float = 0.0
    error: Exception | None = None  # a non-finite loss: raised after the fit is recorded
    interrupted: bool = False  # a KeyboardInterrupt ended stage 1: kept, never cached
    training_started: bool = False  # until then a refused refit keeps the model the estimator had
    fitted: dict = field(default_factory=dict)  # attributes set on the estimator at the end

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def multilabel(self) -> bool:
        return self.task == "multilabel"

    @property
    def balanced_loss(self) -> bool:
        """``class_weight`` is set or the loss re-balances the classes itself."""
        return self.stage1_balance != "none"

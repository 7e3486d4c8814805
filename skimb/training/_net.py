"""The skorch net behind the transformer estimators.

Batches are ``(inputs, target)`` where ``inputs`` is a dict of tensors for the module
(``input_ids``/``attention_mask`` or pooled ``features``) that may also carry
``sample_weight`` and ``index`` (the sample's position in the training set); these
two are removed before the module is called.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping
from skorch.utils import to_tensor
from torch.utils.data import BatchSampler, DataLoader, RandomSampler

from ..backbones import EncodedTextDataset, LengthGroupedBatchSampler, autocast, pad_collate
from ..losses._base import per_item_losses
from ._distributed import RankShard, average_gradients

__all__ = ["TransformerNet", "WarmupLinearSchedule", "weighted_mean_loss"]

_NON_MODULE_KEYS = ("sample_weight", "index", "sentence_edges")
#: What to try when a training loss stops being finite (the plain step's and HAMR's meta step's errors).
NON_FINITE_REMEDY = "Lower the learning rate (lr), check the loss parameters, or look for extreme sample weights."


def module_inputs(X: dict, device) -> dict:
    """A batch's inputs as the module takes them: tensors on ``device``, without the keys
    (``sample_weight``, ``index``, ``sentence_edges``) that only the loop reads."""
    return to_tensor({k: v for k, v in X.items() if k not in _NON_MODULE_KEYS}, device=device)


def sentence_edges(X, device):
    """A tagger batch's ``sentence_edges`` (whether each window holds its sentence's first and last
    word) on ``device``, or None where the batch has none."""
    edges = X.get("sentence_edges") if isinstance(X, dict) else None
    return None if edges is None else to_tensor(edges, device=device)


class WarmupLinearSchedule:
    """LambdaLR factor: linear warm-up over ``warmup_steps``, then linear decay to 0; with
    ``restart_every``, the schedule starts again every that many steps (one cycle per training stage).

    >>> s = WarmupLinearSchedule(4, 0, restart_every=4)
    >>> [s(i) for i in range(6)]
    [1.0, 0.75, 0.5, 0.25, 1.0, 0.75]
    """

    def __init__(self, total_steps: int, warmup_steps: int, restart_every=None):
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = max(0, int(warmup_steps))
        self.restart_every = None if restart_every is None else max(1, int(restart_every))

    def __call__(self, step: int) -> float:
        if self.restart_every is not None:
            step %= self.restart_every
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        remaining = self.total_steps - step
        return max(0.0, remaining / max(1, self.total_steps - self.warmup_steps))


def weighted_mean_loss(per_item: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    if weights is None:
        return per_item.mean()
    return (per_item * weights).mean()


class TransformerNet(NeuralNet):
    """skorch ``NeuralNet`` with dynamic padding, length-grouped batches, weighted
    per-sample losses, bf16 autocast on CUDA and a guard against non-finite losses.

    The criterion maps ``(logits, target)`` to per-item losses (``(N,)``). For token
    classification (``label_pad_id`` set), logits ``(B, T, C)`` and targets
    ``(B, T)`` are flattened to the labelled tokens and each token carries the
    weight of its sentence; a module with a CRF (``module.crf``) is trained by its
    per-window negative log-likelihood instead, each window weighted as its sentence.
    """

    def __init__(self, *args, pad_token_id: int = 0, label_pad_id=None, amp: bool = False,
                 seed: int = 0, rank: int = 0, world_size: int = 1, **kwargs):
        kwargs.setdefault("torch_load_kwargs", {"weights_only": False})
        super().__init__(*args, **kwargs)
        self.pad_token_id = pad_token_id
        self.label_pad_id = label_pad_id
        self.amp = amp
        self.seed = seed
        self.rank = rank  # data-parallel training (skimb.training._distributed)
        self.world_size = world_size

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """skorch's loop, recording in ``interrupted_`` whether a ``KeyboardInterrupt`` ended it
        (skorch's ``partial_fit`` swallows it and keeps the model as it is). An early stop is no
        interruption, though skorch's ``EarlyStopping`` ends training by the same exception."""
        self.interrupted_ = False
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            self.interrupted_ = not self.stopped_early()
            raise

    def release_training_state(self) -> None:
        """Drop what only training needs once the fit is over: AdamW's moments (twice the trainable
        weights) and the learning-rate scheduler's hold on the optimizer (through which a pickle
        carried the weights and moments a second time). A later ``fit`` builds both afresh."""
        if getattr(self, "optimizer_", None) is not None:
            self.optimizer_.state.clear()
        for _, cb in getattr(self, "callbacks_", ()):
            if getattr(cb, "lr_scheduler_", None) is not None:
                cb.lr_scheduler_ = None

    # skorch pickles module_ apart from the rest, so a ``module`` that is module_ went twice
    _SAME_AS_MODULE_ = "<module_>"

    def __getstate__(self):
        state = super().__getstate__()
        if "module_" in self.__dict__ and self.__dict__.get("module") is self.module_:
            state["module"] = self._SAME_AS_MODULE_
        return state

    def __setstate__(self, state):
        same = isinstance(state.get("module"), str) and state["module"] == self._SAME_AS_MODULE_
        super().__setstate__(state)
        if same:
            self.module = self.module_

    def stopped_early(self) -> bool:
        """Whether an ``EarlyStopping`` callback (the estimator's or a user's) ran out of patience."""
        return any(isinstance(cb, EarlyStopping) and cb.patience > 0 and getattr(cb, "misses_", 0) == cb.patience
                   for _, cb in getattr(self, "callbacks_", ()))  # skorch stops at misses_ == patience

    # -- data ---------------------------------------------------------------
    def pad_collate_fn(self):
        """The collate function that pads a batch of encoded texts to its longest sequence."""
        return partial(pad_collate, pad_token_id=self.pad_token_id, label_pad_id=self.label_pad_id)

    def get_iterator(self, dataset, training=False):
        bs = self.batch_size if self.batch_size != -1 else len(dataset)
        if isinstance(dataset, EncodedTextDataset):
            collate = self.pad_collate_fn()
            if training:
                self.batch_sampler_ = LengthGroupedBatchSampler(
                    [len(ids) for ids in dataset.input_ids], bs, seed=self.seed)
                # A generator of its own, so that iterating does not draw from the global torch RNG
                # (dropout's): training then matches a hand-written loop with the same seed.
                return DataLoader(dataset, batch_sampler=self._shard(self.batch_sampler_), collate_fn=collate,
                                  generator=torch.Generator().manual_seed(int(self.seed)))
            return DataLoader(dataset, batch_size=bs, shuffle=False, collate_fn=collate)
        if training and self._draws_epochs():
            # Cached features, epochs drawn by a strategy (set_draw_weights): a batch sampler with
            # per-epoch draws (equal lengths: no length grouping).
            self.batch_sampler_ = LengthGroupedBatchSampler(np.zeros(len(dataset), dtype=np.int64), bs, seed=self.seed)
            return DataLoader(dataset, batch_sampler=self.batch_sampler_)
        if training:
            gen = torch.Generator().manual_seed(int(self.seed))
            if self.world_size > 1:
                batches = BatchSampler(RandomSampler(dataset, generator=gen), bs, drop_last=False)
                return DataLoader(dataset, batch_sampler=self._shard(batches))
            return DataLoader(dataset, batch_size=bs, shuffle=True, generator=gen)
        return DataLoader(dataset, batch_size=bs, shuffle=False)

    def _draws_epochs(self) -> bool:
        """Whether a training strategy draws each epoch's items through ``batch_sampler_``."""
        return False

    def _shard(self, batch_sampler):
        """This process's share of the batches when training data-parallel."""
        return batch_sampler if self.world_size <= 1 else RankShard(batch_sampler, self.rank, self.world_size)

    def notify(self, method_name, **cb_kwargs):
        if method_name == "on_grad_computed" and self.world_size > 1:
            # before clipping and the optimiser step: every process steps with the same gradient
            average_gradients([p for _, p in self.get_all_learnable_params()], self.world_size)
        super().notify(method_name, **cb_kwargs)

    def get_split_datasets(self, X, y=None, **fit_params):
        if self.train_split:
            return self.train_split(X, y)
        return X, None

    def get_all_learnable_params(self):
        # Frozen parameters (a frozen backbone, CALoRA's W0) get no optimizer state.
        for name, param in super().get_all_learnable_params():
            if param.requires_grad:
                yield name, param

    # -- forward and loss ---------------------------------------------------
    def autocast(self):
        return autocast(self.device, enabled=self.amp)

    def infer(self, x, **fit_params):
        x = module_inputs(x, self.device)
        with self.autocast():
            return self.module_(**x, **fit_params)

    def item_targets(self, y_true):
        """``(targets, mask)``: the targets as a tensor and, for token classification, the mask of
        the labelled tokens (``None`` otherwise), whose targets the per-item losses are of."""
        y_true = to_tensor(y_true, device=self.device)
        return y_true, (None if self.label_pad_id is None else y_true != self.label_pad_id)

    def per_item_loss(self, y_pred, y_true, X=None):
        """Per-item losses and their weights (``None`` when unweighted)."""
        y_true, mask = self.item_targets(y_true)
        weights = None
        if isinstance(X, dict) and X.get("sample_weight") is not None:
            weights = to_tensor(X["sample_weight"], device=self.device).float()
        logits = y_pred.float()
        crf = getattr(self.module_, "crf", None) if mask is not None else None
        if crf is not None:
            # one loss per window, scaled so that their mean is the mean over the labelled tokens
            # (the tag loss's scale, for the same learning rate and gradient clipping)
            per_window = crf.nll(logits, y_true, mask, edges=sentence_edges(X, self.device))
            return per_window * (len(per_window) / mask.sum().clamp(min=1)), weights
        if mask is not None:
            per_item = per_item_losses(self.criterion_(logits[mask], y_true[mask]), int(mask.sum()), self.criterion_)
            if weights is not None:
                weights = weights[:, None].expand_as(y_true)[mask]
            return per_item, weights
        return per_item_losses(self.criterion_(logits, y_true), len(logits), self.criterion_), weights

    def get_loss(self, y_pred, y_true, X=None, training=False):
        per_item, weights = self.per_item_loss(y_pred, y_true, X)
        return self.checked_loss(per_item, weights) if training else weighted_mean_loss(per_item, weights)

    def checked_loss(self, per_item, weights):
        """The training loss (the weighted mean), or a ``FloatingPointError`` where it is not finite."""
        return self.finite_loss(weighted_mean_loss(per_item, weights))

    def finite_loss(self, loss):
        """``loss``, or a ``FloatingPointError`` naming the remedies where it is not finite."""
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"The training loss became {loss.item()} in epoch {len(self.history)}. {NON_FINITE_REMEDY} "
                "The model keeps the parameters of the last finite step."
            )
        return loss


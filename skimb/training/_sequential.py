"""Sequential targeting (Jang et al., 2021): train on subsets that grow more balanced, stage by stage.

The training split is partitioned into ``n_stages`` subsets whose class distributions go from the
original one (stage 1, the most imbalanced) to a balanced one (the last stage), as far as the class
counts allow (:func:`sequential_subsets`). Stage ``s`` trains ``max_epochs`` passes over its subset,
so that the whole fit draws as many samples as plain training for ``max_epochs`` epochs. From the
second stage on, an elastic-weight-consolidation penalty ``ewc_lambda/2 · Σ_i F_i (θ_i − θ*_i)²``
keeps the parameters the previous stage found important near their values at its end (``θ*``);
``F`` is the diagonal empirical Fisher information, the mean squared training gradient of the
previous stage's last pass, normalised to mean 1 so that ``ewc_lambda`` does not depend on the
model's gradient scale.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from skorch.callbacks import Callback

from ..utils._param_validation import Boolean, Interval
from ..utils._split import rarest_tag_keys
from ._averaging import holding_raw_weights
from ._net import TransformerNet, WarmupLinearSchedule
from ._strategies import TrainingStrategy, register_training

__all__ = ["SequentialTargetingTraining", "SequentialNet", "SequentialFit", "sequential_subsets", "stage_keys"]


def stage_keys(y_enc, task) -> np.ndarray:
    """The class that places each training example in a stage: its label (multi-class), its rarest
    label (multi-label; rows without a label form a class of their own) or its sentence's rarest
    tag (token classification)."""
    if task == "token":
        return rarest_tag_keys(list(y_enc))
    y = np.asarray(y_enc)
    if task == "multilabel":
        freq = y.sum(axis=0)
        rarest = np.where(y > 0, freq[None, :], np.inf).argmin(axis=1)
        return np.where(y.any(axis=1), rarest, y.shape[1]).astype(np.int64)
    return y.astype(np.int64)


def _sinkhorn(seed, row_sums, col_sums, n_iter=500):
    A = np.array(seed, dtype=np.float64)
    for _ in range(n_iter):
        A *= (row_sums / A.sum(axis=1))[:, None]
        A *= (col_sums / A.sum(axis=0))[None, :]
    return A


def _round_columns(A, col_sums):
    """Integer counts per (stage, class) with each class's total exact (largest remainders)."""
    counts = np.floor(A).astype(np.int64)
    for c in range(A.shape[1]):
        short = int(col_sums[c] - counts[:, c].sum())
        if short > 0:
            counts[np.argsort(-(A[:, c] - counts[:, c]), kind="stable")[:short], c] += 1
    return counts


def sequential_subsets(keys, n_stages, *, random_state=None) -> list[np.ndarray]:
    """Partition examples into ``n_stages`` subsets going from the original class distribution to
    a balanced one.

    Stage ``s`` (``t = s / (n_stages − 1)``) aims at class shares ``∝ n_c^(1 − t)``: the original
    distribution first, uniform last. The counts per (stage, class) are the matrix closest (in KL
    divergence, by Sinkhorn scaling) to those shapes whose stages are equally large and whose
    class totals are the class counts, rounded so that every example lands in exactly one stage.
    A rare class cannot fill a balanced stage alone; its examples then go mostly to the later stages.

    Parameters
    ----------
    keys : array-like of int, shape (n_samples,)
        Each example's class (:func:`stage_keys`).
    n_stages : int
    random_state : int, RandomState instance or None
        Which examples of a class go to which stage.

    Returns
    -------
    subsets : list of ndarray of int64
        Sorted positions in ``keys``, one array per stage, disjoint, covering every position.

    Examples
    --------
    >>> keys = np.array([0] * 80 + [1] * 16 + [2] * 4)
    >>> [np.bincount(keys[s], minlength=3).tolist() for s in sequential_subsets(keys, 3, random_state=0)]
    [[31, 2, 0], [27, 5, 1], [22, 9, 3]]
    """
    keys = np.asarray(keys)
    if int(n_stages) < 1:
        raise ValueError(f"n_stages must be >= 1, got {n_stages}.")
    values, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    n_stages = int(n_stages)
    t = np.linspace(0.0, 1.0, n_stages) if n_stages > 1 else np.zeros(1)
    shapes = counts[None, :].astype(np.float64) ** (1.0 - t[:, None])
    rows = np.full(n_stages, counts.sum() / n_stages)
    stage_counts = _round_columns(_sinkhorn(shapes, rows, counts.astype(np.float64)), counts)
    rng = np.random.default_rng(random_state if not hasattr(random_state, "randint") else
                                random_state.randint(2**31 - 1))
    stages = [[] for _ in range(n_stages)]
    for c in range(len(values)):
        members = rng.permutation(np.flatnonzero(inverse == c))
        bounds = np.cumsum(stage_counts[:, c])[:-1]
        for s, part in enumerate(np.split(members, bounds)):
            stages[s].append(part)
    return [np.sort(np.concatenate(parts)).astype(np.int64) for parts in stages]


class SequentialFit:
    """One fit's sequential-targeting state: the stage subsets (positions in the training dataset),
    the Fisher information and the anchor of the last finished stage."""

    def __init__(self, config, *, task, seed, epochs_per_stage):
        self.config = config
        self.task = task
        self.seed = int(seed)
        self.epochs_per_stage = int(epochs_per_stage)
        self.subsets = None
        self.fisher = self.anchor = None
        self._grad_sq, self._n_grads = None, 0

    def attach(self, ctx):
        # positions in X of the training items (token classification: each window's sentence)
        self.items = np.asarray(ctx.train_ds.sentence_index if ctx.task == "token" else ctx.train_idx, dtype=np.int64)
        # the stages partition the examples, so that a long sentence's windows all train in its stage;
        # the examples in the order they first come (the items themselves, where each is one example)
        _, first, inverse = np.unique(self.items, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        examples = self.items[first[order]]
        stage = np.empty(len(examples), dtype=np.int64)
        for s, members in enumerate(sequential_subsets(stage_keys(ctx.y[examples], ctx.task), self.config.n_stages,
                                                       random_state=self.seed)):
            stage[members] = s
        item_stage = stage[rank[inverse.reshape(-1)]]
        self.subsets = [np.flatnonzero(item_stage == s) for s in range(self.config.n_stages)]
        self.n_items = len(self.items)
        empty = [s for s, members in enumerate(self.subsets) if len(members) == 0]
        if empty:  # its epochs would draw from all-zero weights
            raise ValueError(f"training__n_stages={self.config.n_stages} leaves stage {empty[0] + 1} of "
                             f"{self.config.n_stages} without a training example ({len(examples)} in training): "
                             "give a smaller training__n_stages.")

    # -- the stages --------------------------------------------------------------------------
    def stage_of(self, epoch) -> int:
        return min(epoch // self.epochs_per_stage, len(self.subsets) - 1)

    def epoch_begin(self, net):
        epoch = len(net.history) - 1  # skorch has appended this epoch's row
        stage = self.subsets[self.stage_of(epoch)]
        weights = np.zeros(self.n_items)
        weights[stage] = 1.0
        # systematic draws over a 0/1 vector: every member of the stage once, in random order
        net.batch_sampler_.set_draw_weights(weights, len(stage), "systematic")
        if epoch % self.epochs_per_stage == 0 and self.config.lr_cycles() > 1:
            _restart_schedule(net, self.stage_of(epoch))
        self._collecting = (epoch + 1) % self.epochs_per_stage == 0 and self.stage_of(epoch) < len(self.subsets) - 1
        if self._collecting:
            self._grad_sq, self._n_grads = None, 0
        net.history.record("stage", self.stage_of(epoch) + 1)

    def epoch_end(self, net):
        if not self._collecting or self._n_grads == 0:
            return
        fisher = [g / self._n_grads for g in self._grad_sq]
        mean = torch.cat([f.flatten() for f in fisher]).mean()
        self.fisher = [f / mean.clamp_min(1e-30) for f in fisher]
        self.anchor = [p.detach().clone() for p in _trainable(net)]
        self._grad_sq = None

    def after_backward(self, net):
        """Collect the squared gradients (Fisher), then add the EWC penalty's gradient
        ``ewc_lambda · F · (θ − θ*)``."""
        params = _trainable(net)
        if self._collecting:
            grads = [torch.zeros_like(p) if p.grad is None else p.grad.detach() ** 2 for p in params]
            self._grad_sq = grads if self._grad_sq is None else [a + g for a, g in zip(self._grad_sq, grads)]
            self._n_grads += 1
        if self.anchor is None or self.config.ewc_lambda == 0:
            return
        lam = float(self.config.ewc_lambda)
        with torch.no_grad():
            for p, f, a in zip(params, self.fisher, self.anchor):
                if p.grad is not None:
                    p.grad.add_(lam * f * (p - a))

    def penalty(self, net) -> float:
        """The EWC penalty at the current parameters (0 before the second stage)."""
        if self.anchor is None:
            return 0.0
        with torch.no_grad():
            total = sum(float((f * (p - a) ** 2).sum()) for p, f, a in zip(_trainable(net), self.fisher, self.anchor))
        return 0.5 * float(self.config.ewc_lambda) * total

    def finish(self, cached=None):
        """The stage subsets as positions in X (plain data, cached with stage 1)."""
        if cached is not None:
            return cached
        out = {"stage_indices": [np.unique(self.items[s]) for s in self.subsets]}
        self.fisher = self.anchor = self._grad_sq = None
        return out


def _restart_schedule(net, stage) -> None:
    """Start the learning-rate schedule's cycle ``stage`` with the stage, whatever the batches of the
    stages before (their sizes differ by rounding, a tagger's by its sentences' windows)."""
    for _, cb in getattr(net, "callbacks_", ()):
        scheduler = getattr(cb, "lr_scheduler_", None)
        schedule = (getattr(scheduler, "lr_lambdas", None) or [None])[0]
        if isinstance(schedule, WarmupLinearSchedule) and schedule.restart_every:
            start = stage * schedule.restart_every
            if scheduler.last_epoch != start:
                scheduler.last_epoch = start - 1
                scheduler.step()  # the cycle's first rate, set on the optimizer


def _trainable(net):
    return [p for _, p in net.get_all_learnable_params()]


class SequentialCallback(Callback):
    def __init__(self, state):
        self.state = state

    def on_epoch_begin(self, net, **kwargs):
        if self.state is not None and self.state.subsets is not None:
            self.state.epoch_begin(net)

    def on_epoch_end(self, net, **kwargs):
        if self.state is not None and self.state.subsets is not None:
            with holding_raw_weights(net):  # the anchor is where training got, not the average validation scored
                self.state.epoch_end(net)
                net.history.record("ewc_penalty", self.state.penalty(net))


class SequentialNet(TransformerNet):
    """:class:`~skimb.training.TransformerNet` that trains stage by stage (``sequential``: a
    :class:`SequentialFit`; ``None`` gives the parent's behaviour)."""

    def __init__(self, *args, sequential: SequentialFit | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.sequential = sequential

    def _active(self) -> bool:
        return self.sequential is not None and self.sequential.subsets is not None

    def _draws_epochs(self) -> bool:
        return self._active()

    def get_default_callbacks(self):
        callbacks = list(super().get_default_callbacks())
        if self.sequential is not None:
            callbacks.append(("sequential", SequentialCallback(self.sequential)))
        return callbacks

    def train_step_single(self, batch, **fit_params):
        out = super().train_step_single(batch, **fit_params)
        if self._active():
            self.sequential.after_backward(self)
        return out


@register_training("sequential")
class SequentialTargetingTraining(TrainingStrategy):
    """Sequential targeting (Jang et al., 2021): stages from the original class distribution to a
    balanced one, with an optional elastic-weight-consolidation penalty from the second stage on.

    The training split is partitioned into ``n_stages`` disjoint subsets
    (:func:`~skimb.training.sequential_subsets`); stage ``s`` trains ``max_epochs`` passes over
    subset ``s``, so that the fit draws as many samples as plain training (its history has
    ``n_stages · max_epochs`` rows, each with its ``stage``). Multi-class, multi-label (a row's
    stage class is its rarest label) and token classification (a sentence's rarest tag). Not
    data-parallel.

    Parameters
    ----------
    n_stages : int, default=3
        Number of stages ``k``; 1 is plain training. A stage left without a training example (more
        stages than the split fills) is an error.
    lr_restart : bool, default=True
        Each stage gets its own learning-rate schedule (warm-up, then linear decay), as a fresh
        fine-tuning run would; ``False``: one schedule spans the stages, so that the last (most
        balanced) stage, which holds most of the rare classes' examples, trains at the smallest
        learning rates.
    ewc_lambda : float, default=0.0
        Weight of the EWC penalty ``ewc_lambda/2 · Σ_i F_i (θ_i − θ*_i)²`` (``F``: the previous
        stage's diagonal empirical Fisher information, normalised to mean 1; ``θ*``: the parameters
        at that stage's end). Off by default: on Cyclone-Idai ``ewc_lambda=1`` cost 13 points of
        macro-F1 (``docs/sequential.md``); the stages then share no penalty, only the order.

    Examples
    --------
    >>> from skimb.training import SequentialTargetingTraining
    >>> SequentialTargetingTraining(n_stages=3).n_epochs(2)
    6
    """

    net_class = SequentialNet
    supports_data_parallel = False
    _parameter_constraints = {"n_stages": [Interval(Integral, 1, None)], "lr_restart": [Boolean()],
                              "ewc_lambda": [Interval(Real, 0, None)]}

    def __init__(self, n_stages=3, lr_restart=True, ewc_lambda=0.0):
        self.n_stages = n_stages
        self.lr_restart = lr_restart
        self.ewc_lambda = ewc_lambda

    def lr_cycles(self) -> int:
        return int(self.n_stages) if self.lr_restart else 1

    def n_epochs(self, max_epochs: int) -> int:
        return int(self.n_stages) * int(max_epochs)

    def epoch_size(self, n_train: int, state=None) -> int:
        if state is not None and state.subsets is not None:  # the largest stage: none outruns its schedule
            return max(len(members) for members in state.subsets)
        return max(1, -(-int(n_train) // int(self.n_stages)))

    def ignored_params(self) -> dict:
        if self.n_stages == 1:
            return dict.fromkeys(self._changed(("ewc_lambda", "lr_restart")), "n_stages=1 (plain training)")
        return {}

    def plan(self, ctx):
        if ctx.task == "token" and ctx.finetune.frozen:
            raise ValueError("training='sequential' for token classification needs finetune='full' or 'lora': "
                             "with finetune='head' the training rows are single words, not sentences.")
        return SequentialFit(self, task=ctx.task, seed=ctx.seed, epochs_per_stage=ctx.max_epochs)

    def net_kwargs(self, state) -> dict:
        return {"sequential": state}

    def attach(self, state, ctx):
        state.attach(ctx)

    def finish(self, state, cached=None):
        return state.finish(cached)

    def restore(self, fitted) -> dict:
        if fitted is None:
            return {}
        return {"stage_indices_": [np.array(s) for s in fitted["stage_indices"]]}

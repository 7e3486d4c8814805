"""Stage 2 of CALoRA: train only the class adapters on cached penultimate features."""

from __future__ import annotations

import math
import numbers
from typing import Callable

import numpy as np
import torch
from torch import nn

from ...losses._base import per_item_losses
from .config import CALoRAConfig
from .layer import ClassRoutedLoRA
from .routing import route_from_logits

__all__ = ["fit_calora_head"]


def _make_generator(random_state) -> torch.Generator:
    """A local CPU ``torch.Generator`` from a scikit-learn style ``random_state``."""
    g = torch.Generator()
    if random_state is None:
        g.seed()  # non-deterministic, seeds this generator only
    elif isinstance(random_state, torch.Generator):
        g.manual_seed(int(torch.randint(0, 2**62, (1,), generator=random_state)))
    elif isinstance(random_state, np.random.RandomState):
        g.manual_seed(int(random_state.randint(0, np.iinfo(np.int32).max)))
    elif isinstance(random_state, np.random.Generator):
        g.manual_seed(int(random_state.integers(0, 2**62)))
    elif isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer, got {random_state}.")
        g.manual_seed(int(random_state))
    else:
        raise TypeError(
            "random_state must be None, an int, a numpy RandomState/Generator or a torch.Generator, "
            f"got {type(random_state).__name__}."
        )
    return g


def _as_tensor(value, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    try:
        return torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be a tensor or array, got {type(value).__name__}.") from exc


def _check_positive_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_real(name: str, value, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}.")
    if (positive and value <= 0) or value < 0:
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value!r}.")
    return float(value)


def fit_calora_head(
    base: nn.Linear,
    features,
    stage1_logits,
    y,
    *,
    config: CALoRAConfig,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    sample_weight=None,
    epochs: int = 20,
    lr: float = 1e-3,
    batch_size: int | None = 256,
    weight_decay: float = 0.0,
    random_state=None,
    multilabel: bool = False,
    device="cpu",
    progress=None,
) -> ClassRoutedLoRA:
    """Stage 2 of CALoRA: freeze ``base`` and train one LoRA adapter per class on cached features.

    Routing is computed once from the stage-1 logits (``config.routing``; ``"oracle"`` uses ``y``)
    and the frozen ``base(features)`` once, so each step costs only the adapter term; a grid over
    ``k``/``rank`` re-runs only this function, never stage 1. Only ``lora_A``/``lora_B`` are
    optimised (AdamW); the objective is ``mean(sample_weight * loss_fn(logits, y))`` per
    mini-batch, ``logits = base(x) + scaling * B M A dropout(x)``.

    Parameters
    ----------
    base : nn.Linear
        The stage-1 classification head, ``in_features = d``, ``out_features = C``. Wrapped by
        reference: it is frozen in place (``requires_grad=False``) and its values are never
        changed; it ends up on ``device``.
    features : Tensor or array, shape (N, d)
        Cached penultimate features of the training rows (NER: one row per labelled token).
        Cast to ``base``'s dtype.
    stage1_logits : Tensor or array, shape (N, C), or None
        Stage-1 logits of the same rows, used for routing. ``None`` uses ``base(features)``
        (identical when ``base`` is the stage-1 head and the backbone is frozen).
    y : Tensor or array
        Multi-class: ``(N,)`` class indices; rows with ``y < 0`` (``-100``) are dropped.
        Multi-label: ``(N, C)`` 0/1 indicators (passed to ``loss_fn`` as float).
    config : CALoRAConfig
    loss_fn : callable ``(logits (n, C), y (n,) or (n, C)) -> (n,)``
        Per-sample losses (e.g. a ``skimb.losses.make_loss`` module). Not modified.
    sample_weight : Tensor or array (N,), optional
        Non-negative per-row weights (default all 1).
    epochs : int, default 20
        Passes over the data (0 returns the freshly initialised module, equal to ``base``).
    lr, weight_decay : float
        AdamW hyperparameters (``weight_decay`` default 0, not AdamW's 0.01).
    batch_size : int or None, default 256
        Mini-batch size; ``None`` = full batch.
    random_state : None, int, numpy RandomState/Generator or torch.Generator
        Seeds a local ``torch.Generator`` for the adapter init, the shuffling and the adapter
        dropout; the global RNGs are neither read nor reseeded. Same seed (and device) → same
        result.
    multilabel : bool, default False
    device : str or torch.device, default "cpu"
    progress : object with ``update()``, optional
        Told after every epoch (e.g. a tqdm bar).

    Returns
    -------
    ClassRoutedLoRA
        In eval mode, on ``device``, with ``loss_history_``: the mean training objective per
        epoch (list of float), and ``interrupted_``: whether a ``KeyboardInterrupt`` ended
        training early (the adapters kept as they were). Predict with ``module(features)`` (self-routing from
        ``base(features)``) or ``module(features, route_from_logits(stage1_logits,
        config.routing, config.k, multilabel=multilabel))``.
    """
    # ------------------------------------------------------------ validation (before freezing)
    if not isinstance(base, nn.Linear):
        raise TypeError(f"base must be a torch.nn.Linear, got {type(base).__name__}.")
    if not isinstance(config, CALoRAConfig):
        raise TypeError(f"config must be a CALoRAConfig, got {type(config).__name__}.")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable (logits, y) -> per-sample losses, got {type(loss_fn).__name__}.")
    C = config.n_classes
    if base.out_features != C:
        raise ValueError(
            f"base.out_features ({base.out_features}) must equal config.n_classes ({C}): stage 2 "
            "trains the classification head on cached penultimate features."
        )
    epochs = _check_positive_int("epochs", epochs, 0)
    if batch_size is not None:
        batch_size = _check_positive_int("batch_size", batch_size, 1)
    lr = _check_real("lr", lr, positive=True)
    weight_decay = _check_real("weight_decay", weight_decay, positive=False)
    dev = torch.device(device)
    dtype = base.weight.dtype
    gen = _make_generator(random_state)

    X = _as_tensor(features, "features")
    if X.dim() != 2 or X.shape[1] != base.in_features:
        raise ValueError(
            f"features must have shape (N, {base.in_features}) (base.in_features), got {tuple(X.shape)}."
        )
    if not X.is_floating_point():
        raise TypeError(f"features must be floating point, got {X.dtype}.")
    N = X.shape[0]
    if N == 0:
        raise ValueError("features is empty: stage 2 needs at least one row.")
    if stage1_logits is not None:
        S = _as_tensor(stage1_logits, "stage1_logits").to(X.device)
        if tuple(S.shape) != (N, C):
            raise ValueError(f"stage1_logits must have shape (N, C) = {(N, C)}, got {tuple(S.shape)}.")
    else:
        S = None

    Y = _as_tensor(y, "y").to(X.device)
    if multilabel:
        if tuple(Y.shape) != (N, C):
            raise ValueError(f"multi-label y must be a 0/1 indicator of shape {(N, C)}, got {tuple(Y.shape)}.")
        if not torch.all((Y == 0) | (Y == 1)):
            raise ValueError("multi-label y must hold only 0 and 1.")
        keep = None
    else:
        if tuple(Y.shape) != (N,):
            raise ValueError(f"multi-class y must have shape ({N},), got {tuple(Y.shape)}.")
        if Y.is_floating_point() and not torch.all(Y == Y.round()):
            raise ValueError("multi-class y must hold integer class indices.")
        Y = Y.long()
        if torch.any(Y >= C):
            raise ValueError(f"y holds a class index >= n_classes ({C}).")
        keep = Y >= 0
        if bool(keep.all()):
            keep = None
    if sample_weight is None:
        W = torch.ones(N, dtype=torch.float64, device=X.device)
    else:
        W = _as_tensor(sample_weight, "sample_weight").to(X.device, torch.float64)
        if tuple(W.shape) != (N,):
            raise ValueError(f"sample_weight must have shape ({N},), got {tuple(W.shape)}.")
        bad = torch.nonzero(~torch.isfinite(W) | (W < 0)).flatten()
        if bad.numel():
            raise ValueError(f"sample_weight[{int(bad[0])}] is {float(W[bad[0]])}: weights must be finite and "
                             f"non-negative ({bad.numel()} of {N} are not).")
    if keep is not None:  # drop ignored rows (-100)
        X, Y, W = X[keep], Y[keep], W[keep]
        S = S[keep] if S is not None else None
        N = X.shape[0]
        if N == 0:
            raise ValueError("every row of y is < 0 (ignored): nothing to train on.")
    if float(W.sum()) <= 0:
        raise ValueError("sample_weight sums to 0: nothing to train on.")

    # ------------------------------------------------------------ setup
    module = ClassRoutedLoRA(base, config, multilabel=multilabel, generator=gen)
    module.to(dev)
    X = X.to(dev, dtype)
    Y = Y.to(dev, dtype) if multilabel else Y.to(dev)
    W = W.to(dev, dtype)
    with torch.no_grad():
        base_out = module.base(X)  # frozen: computed once
        if S is None:
            S = base_out
        routes = route_from_logits(
            S.to(dev), config.routing, config.k, targets=Y, training=True, multilabel=multilabel
        ).to(dtype)

    p = float(config.dropout)
    dgen = None
    if p > 0:
        dgen = torch.Generator(device=dev)
        dgen.manual_seed(int(torch.randint(0, 2**62, (1,), generator=gen)))
    bs = N if batch_size is None else min(batch_size, N)
    opt = torch.optim.AdamW(module.adapter_parameters(), lr=lr, weight_decay=weight_decay)

    # The module stays in eval mode: the adapter dropout is drawn here from the local generator,
    # so training never consumes the global RNG.
    module.eval()
    history: list[float] = []
    module.interrupted_ = False
    try:  # a KeyboardInterrupt keeps the adapters as they are (zero at the start: the stage-1 head)
        for epoch in range(epochs):
            perm = torch.randperm(N, generator=gen).to(dev)
            total = torch.zeros((), dtype=torch.float64, device=dev)
            for start in range(0, N, bs):
                idx = perm[start : start + bs]
                xb = X[idx]
                if dgen is not None:
                    keep_mask = torch.rand(xb.shape, generator=dgen, device=dev, dtype=xb.dtype) >= p
                    xb = xb * keep_mask / (1.0 - p)
                logits = base_out[idx] + module.adapter_output(xb, routes[idx])
                losses = per_item_losses(loss_fn(logits, Y[idx]), idx.numel(), loss_fn)
                loss = (W[idx] * losses).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach().double() * idx.numel()
            epoch_loss = float(total) / N
            if not math.isfinite(epoch_loss):
                raise FloatingPointError(
                    f"non-finite stage-2 loss at epoch {epoch} ({epoch_loss}); lower lr or check the inputs."
                )
            history.append(epoch_loss)
            if progress is not None:
                progress.update()
    except KeyboardInterrupt:
        module.interrupted_ = True
    module.loss_history_ = history
    return module.eval()

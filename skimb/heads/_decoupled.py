"""Decoupled second stages on the frozen stage-1 features (Kang et al., 2020): classifier
re-training with class balancing (cRT) and tau-normalisation of the head's weights."""

from __future__ import annotations

from numbers import Integral, Real

import torch

from ..losses._base import per_item_losses
from ..utils._param_validation import Interval
from ..utils._progress import progress_bar
from ._components import (Head, class_balanced_row_weights, class_neutral_loss, register_head, stage2_rows,
                          zero_catch_all_row)

__all__ = ["CRTHead", "TauNormHead"]


@register_head("crt")
class CRTHead(Head):
    """cRT: re-initialise the linear head and re-train it class-balanced on the frozen features.

    Stage 1 learns the representation with the estimator's loss; stage 2 draws no new features
    (they are the cached penultimate features of the training rows, shared by every candidate of
    a search over this head's parameters) and trains a fresh ``nn.Linear`` with the stage-1 loss
    and inverse-class-frequency row weights (``skimb.heads._components.class_balanced_row_weights``);
    a loss that balances the classes itself loses its class weights for it
    (``ImbalanceLoss.without_class_balance``), so that the classes are balanced once.

    A loss's ``zero_logit_class`` (the ranking loss's catch-all class) gets a zero row and bias in
    the fresh head, as in stage 1: its zero gradient keeps them at zero, so that its logit stays 0.

    The estimator's row weights (``class_weight`` x ``sample_weight``) count within each class: a
    row's stage-2 weight is its class-balanced weight times its own weight divided by the mean
    weight of its class (multi-label: of its labels, and of the rows without a label as one
    group). ``class_weight``, constant within a class, so changes nothing (the classes are
    balanced once), while ``sample_weight`` does: a row of weight 0 takes no part in stage 2, and
    a class keeps its balanced share however its rows are weighted. Token classification: each
    token weighs as its sentence; ignored tokens (target < 0) are left out.

    Parameters
    ----------
    epochs : int, default=30
        Passes over the cached features.
    lr : float, default=1e-2
        AdamW learning rate (no weight decay).
    batch_size : int, default=256
        Rows per step.

    Examples
    --------
    >>> CRTHead(epochs=10).has_stage2
    True
    """

    has_stage2 = True
    linear_stage1 = True
    _stage2_params = ("epochs", "lr", "batch_size")
    _parameter_constraints = {
        "epochs": [Interval(Integral, 1, None)],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None)],
    }

    def __init__(self, epochs=30, lr=1e-2, batch_size=256):
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size

    def fit_stage2(self, module, features, targets, weights, *, loss_fn, device, seed, batch_size, multilabel,
                   verbose=0, classes=None, stage1_balance="none"):
        old = module.head
        gen = torch.Generator().manual_seed(int(seed))
        # not initialised from the global RNG (the caller's): a fresh head drawn from the fit's seed
        head = torch.nn.utils.skip_init(torch.nn.Linear, old.in_features, old.out_features)
        with torch.no_grad():
            bound = old.in_features ** -0.5
            head.weight.uniform_(-bound, bound, generator=gen)
            head.bias.zero_()
        zero_catch_all_row(head, loss_fn)  # as in stage 1
        head.to(device)
        targets = torch.as_tensor(targets)
        keep = stage2_rows(targets)
        x, y = torch.as_tensor(features)[keep], targets[keep]
        # the given weights count within each class; the classes' shares stay balanced
        w = class_balanced_row_weights(y, old.out_features, sample_weight=None if weights is None
                                       else torch.as_tensor(weights)[keep])
        loss_fn = class_neutral_loss(loss_fn)  # balanced once, by the rows
        optimizer = torch.optim.AdamW(head.parameters(), lr=self.lr, weight_decay=0.0)
        losses, interrupted = [], False
        with progress_bar(self.epochs, "cRT stage 2", verbose, unit="epoch") as bar:
            try:  # a KeyboardInterrupt keeps the head as it is
                for epoch in range(1, self.epochs + 1):
                    order, total = torch.randperm(len(x), generator=gen), 0.0
                    for idx in order.split(self.batch_size):
                        xb, yb, wb = x[idx].to(device), y[idx].to(device), w[idx].to(device)
                        out = loss_fn(head(xb.to(head.weight.dtype)), yb.float() if multilabel else yb)
                        loss = (wb * per_item_losses(out, len(idx), loss_fn)).mean()
                        if not torch.isfinite(loss):  # as CALoRA's stage 2: no step on it
                            raise FloatingPointError(f"non-finite cRT stage-2 loss in epoch {epoch} "
                                                     f"({float(loss)}); lower head__lr.")
                        optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        optimizer.step()
                        total += float(loss.detach()) * len(idx)
                    losses.append(total / len(x))
                    bar.update()
            except KeyboardInterrupt:
                interrupted = True
        module.head = head.eval()
        return {"stage2_loss_history_": losses, "interrupted": interrupted}


@register_head("tau_norm")
class TauNormHead(Head):
    """tau-normalisation: rescale each class's head weights, ``w_c <- w_c / ||w_c||^tau``, and
    drop the bias; no training. Rare classes end with small weight norms after imbalanced
    training, and this evens them out (``tau=0``: the stage-1 head without its bias). Search
    ``head__tau`` with a validation scorer; the candidates share one stage 1.

    Parameters
    ----------
    tau : float, default=1.0
        The exponent, usually in [0, 1].

    Examples
    --------
    >>> import torch
    >>> head = torch.nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = head.weight.copy_(torch.tensor([[3.0, 4.0], [0.6, 0.8]]))
    >>> module = torch.nn.Module()
    >>> module.head = head
    >>> _ = TauNormHead(tau=1.0).fit_stage2(module, None, None, None, loss_fn=None, device="cpu", seed=0,
    ...                                     batch_size=8, multilabel=False)
    >>> module.head.weight.norm(dim=1).tolist()
    [1.0, 1.0]
    """

    has_stage2 = True
    linear_stage1 = True
    _stage2_params = ("tau",)
    _parameter_constraints = {"tau": [Interval(Real, 0, None)]}

    def __init__(self, tau=1.0):
        self.tau = tau

    def fit_stage2(self, module, features, targets, weights, *, loss_fn, device, seed, batch_size, multilabel,
                   verbose=0, classes=None, stage1_balance="none"):
        old = module.head
        head = torch.nn.utils.skip_init(torch.nn.Linear, old.in_features, old.out_features, device=old.weight.device)
        with torch.no_grad():
            norms = old.weight.norm(dim=1, keepdim=True).clamp(min=1e-12)
            head.weight.copy_(old.weight / norms ** float(self.tau))
            head.bias.zero_()
        module.head = head.eval()
        return {"head_norms_": norms.squeeze(1).cpu().numpy()}

"""R-Drop (Liang et al., 2021): each step passes the batch through the model twice, with two
dropout draws, and adds the symmetric KL divergence between the two predictions to the loss.

The two sub-models that dropout samples are pulled toward the same output, a regulariser of the
representation that costs one more forward and backward pass per step and nothing at prediction.
"""

from __future__ import annotations

from numbers import Real

import torch
import torch.nn.functional as F
from skorch.dataset import unpack_data

from ..utils._param_validation import Interval
from ..utils._warnings import warn_caller
from ._net import TransformerNet
from ._strategies import TrainingStrategy, register_training

__all__ = ["RDropTraining", "RDropNet", "dropout_consistency", "warn_without_dropout"]


def dropout_consistency(logits_a, logits_b, mask=None, multilabel=False) -> torch.Tensor:
    """The mean over items of ``(KL(p_a ‖ p_b) + KL(p_b ‖ p_a)) / 2``: softmax distributions over the
    last axis, or with ``multilabel`` one Bernoulli per label (averaged over the labels, as the
    multi-label losses average theirs, so that ``alpha`` weighs the same whatever the labels). ``mask``
    (a tagger's labelled tokens) picks the items of ``(B, T, C)`` logits.

    >>> a, b = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    >>> round(dropout_consistency(a, b).item(), 4)   # (KL(a ‖ b) 0.3278 + KL(b ‖ a) 0.4338) / 2, in nats
    0.3808
    >>> dropout_consistency(a, a).item()
    0.0
    >>> round(dropout_consistency(a, b, multilabel=True).item(), 4)  # label 1: sigmoid(2) against 1/2; label 2 agrees
    0.1904
    """
    a, b = logits_a.float(), logits_b.float()
    if mask is not None:
        a, b = a[mask], b[mask]
    if a.numel() == 0:
        return a.sum()
    if multilabel:  # log p and log (1 - p) of each label, as a two-class distribution
        log_a = torch.stack([F.logsigmoid(a), F.logsigmoid(-a)], -1)
        log_b = torch.stack([F.logsigmoid(b), F.logsigmoid(-b)], -1)
    else:
        log_a, log_b = F.log_softmax(a, -1), F.log_softmax(b, -1)
    kl_ab = (log_a.exp() * (log_a - log_b)).sum(-1)
    kl_ba = (log_b.exp() * (log_b - log_a)).sum(-1)
    per_item = (kl_ab + kl_ba) / 2
    if multilabel:  # the mean over labels, as the multi-label losses take theirs
        per_item = per_item.mean(-1)
    return per_item.mean()


class RDropNet(TransformerNet):
    """:class:`~skimb.training.TransformerNet` whose steps are R-Drop's (``rdrop_alpha``: the
    consistency term's weight, 0 for plain steps; ``multilabel``: one sigmoid per label instead of
    a softmax)."""

    def __init__(self, *args, rdrop_alpha=0.0, multilabel=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.rdrop_alpha = rdrop_alpha
        self.multilabel = multilabel

    def consistency(self, first, second, yi) -> torch.Tensor:
        """``rdrop_alpha`` times the symmetric KL between two passes' logits (a tagger's labelled
        tokens only)."""
        _, mask = self.item_targets(yi)
        return float(self.rdrop_alpha) * dropout_consistency(first, second, mask, self.multilabel)

    def train_step_single(self, batch, **fit_params):
        if float(self.rdrop_alpha) == 0.0:
            return super().train_step_single(batch, **fit_params)
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        first, second = self.infer(Xi, **fit_params), self.infer(Xi, **fit_params)
        per_item_a, weights = self.per_item_loss(first, yi, X=Xi)
        per_item_b, _ = self.per_item_loss(second, yi, X=Xi)
        # the two passes' (weighted) losses; the consistency term is class-agnostic, unweighted
        loss = self.checked_loss((per_item_a + per_item_b) / 2, weights) + self.consistency(first, second, yi)
        loss.backward()
        return {"loss": loss, "y_pred": first}


@register_training("rdrop")
class RDropTraining(TrainingStrategy):
    """R-Drop: every step passes the batch twice through the model, each pass with its own
    dropout, and minimises the mean of the two losses plus ``alpha`` times the symmetric KL
    divergence between the two predictions (Liang et al., 2021).

    Composes with any loss, class weighting and head, and with HAMR through its own ``rdrop_alpha``
    (``training="hamr", training__rdrop_alpha=1.0``); not with sequential targeting or
    sharpness-aware training, which are training strategies of their own. It needs dropout in what
    trains (on a frozen backbone's cached features, the head's ``dropout`` alone: a warning says so
    where none runs). A step costs two forward and backward passes and holds both passes'
    activations. The recorded ``train_loss`` includes the consistency term. Not data-parallel.

    Parameters
    ----------
    alpha : float, default=1.0
        Weight of the consistency term (per item: the mean of ``KL(p₁ ‖ p₂)`` and ``KL(p₂ ‖ p₁)``).
        The paper's Eq. 3 sums the two passes' losses, so its α is ``2 * alpha``; the authors'
        classification code averages them, as here. 0 is plain training.

    Examples
    --------
    >>> from skimb.training import RDropTraining
    >>> RDropTraining(alpha=4.0).net_kwargs(None)["rdrop_alpha"]
    4.0
    """

    net_class = RDropNet
    supports_data_parallel = False
    _parameter_constraints = {"alpha": [Interval(Real, 0, None)]}

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def plan(self, ctx):
        return ctx.task == "multilabel"

    def net_kwargs(self, state) -> dict:
        return {"rdrop_alpha": float(self.alpha), "multilabel": bool(state)}

    def attach(self, state, ctx) -> None:
        if self.alpha != 0:
            warn_without_dropout(ctx, "training='rdrop'", "use training='standard'")


def warn_without_dropout(ctx, what: str, remedy: str) -> None:
    """Warn where no dropout runs in training, so that R-Drop's two passes agree."""
    # on a frozen backbone only the head runs in training (on cached features): its dropout counts
    running = [m for name, m in ctx.module.named_modules()
               if not (ctx.finetune.frozen and name.split(".")[0] == "encoder")]
    if not any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in running):
        warn_caller(f"{what}: no dropout runs in training (dropout=0, or a frozen backbone whose cached "
                    "features are all the head sees and the head's dropout is 0), so the two passes agree and "
                    f"each step costs twice for nothing. Set dropout > 0 or {remedy}.")

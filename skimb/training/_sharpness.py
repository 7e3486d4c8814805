"""Sharpness-aware minimisation (Foret et al., 2021), on every class or on the minority classes only.

Each step takes the gradient at ``w + ε`` instead of at ``w``, where ``ε`` moves ``rho`` along the
normalised gradient: the update seeks parameters whose whole neighbourhood has a low loss. On
class-imbalanced data, SAM with deferred re-weighting escapes the saddle points in which the rare
classes' loss settles (Rangwani et al., 2022); ImbSAM (Zhou et al., 2023) applies the perturbation
to the minority classes' share of the loss only, leaving the majority classes' plain gradient.
Each step costs two forward and backward passes.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from skorch.dataset import unpack_data

from ..utils._param_validation import Boolean, Interval, Options
from ..utils._warnings import warn_caller
from ._net import TransformerNet
from ._strategies import TrainingStrategy, register_training

__all__ = ["SharpnessAwareTraining", "SharpnessAwareNet", "sharpness_perturbation", "minority_classes"]


#: ASAM's η: the neighbourhood is scaled by ``|w| + η`` (Kwon et al., 2021, and their code), so
#: that a weight at zero (LoRA's B at the start) is perturbed too.
ASAM_ETA = 0.01


def minority_classes(counts, below=None) -> np.ndarray:
    """The minority classes as a boolean mask: those with fewer training examples than the mean
    class (those a balanced set of the same size would have more of), or than ``below``.

    >>> minority_classes([700, 60, 90, 1700, 400]).tolist()
    [False, True, True, False, True]
    >>> minority_classes([700, 60, 90, 1700, 400], below=80).tolist()
    [False, True, False, False, False]
    """
    counts = np.asarray(counts, dtype=np.float64)
    return counts < (counts.mean() if below is None else float(below))


def sharpness_perturbation(params, grads, rho: float, adaptive: bool = False) -> list:
    """The SAM ascent step ``ε`` for each parameter: ``rho · g / ‖g‖`` or, ``adaptive`` (ASAM,
    Kwon et al., 2021), ``rho · T² g / ‖T g‖`` with ``T = |w| + η`` (η = ``ASAM_ETA`` = 0.01), which is
    scale-invariant per parameter. A parameter without a gradient gets none; an all-zero gradient
    gives ``ε = 0``.

    >>> w = [torch.tensor([3.0, 0.0]), torch.tensor([1.0])]
    >>> g = [torch.tensor([3.0, 4.0]), None]
    >>> [None if e is None else e.tolist() for e in sharpness_perturbation(w, g, 0.5)]
    [[0.30000001192092896, 0.4000000059604645], None]
    >>> [round(v, 6) for v in sharpness_perturbation(w, g, 0.5, adaptive=True)[0].tolist()]  # the zero weight moves too
    [1.504985, 2.2e-05]
    """
    scales = [None if g is None else (p.abs() + ASAM_ETA if adaptive else None) for p, g in zip(params, grads)]
    scaled = [None if g is None else (g if t is None else g * t) for g, t in zip(grads, scales)]
    norms = [s.detach().float().norm() for s in scaled if s is not None]
    if not norms:
        return [None] * len(grads)
    factor = float(rho) / (torch.stack(norms).norm() + 1e-12)
    return [None if s is None else (s if t is None else s * t) * factor.to(s.dtype)
            for s, t in zip(scaled, scales)]


class SharpnessAwareNet(TransformerNet):
    """:class:`~skimb.training.TransformerNet` whose steps are sharpness-aware (``sharpness``: a
    :class:`SharpnessAwareTraining`; ``minority``: a boolean mask over the classes for
    ``classes="minority"``)."""

    def __init__(self, *args, sharpness=None, minority=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.sharpness = sharpness
        self.minority = minority

    def train_step_single(self, batch, **fit_params):
        if self.sharpness is None or float(self.sharpness.rho) == 0.0:
            return super().train_step_single(batch, **fit_params)
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        params = [p for _, p in self.get_all_learnable_params()]
        y_pred = self.infer(Xi, **fit_params)
        per_item, weights = self.per_item_loss(y_pred, yi, X=Xi)
        loss = self.checked_loss(per_item, weights)
        in_minority = self._minority_items(yi)
        if in_minority is None:  # every item: plain SAM
            loss.backward()
            ascent = [p.grad for p in params]  # set aside: the second pass's gradient replaces them
        elif not bool(in_minority.any()):  # no minority item in this batch: a plain step
            loss.backward()
            return {"loss": loss, "y_pred": y_pred}
        else:  # ImbSAM: the majority's share at w, the minority's at w + ε
            minority_loss = _share(per_item, weights, in_minority)
            ascent = list(torch.autograd.grad(minority_loss, params, retain_graph=True, allow_unused=True))
            _share(per_item, weights, ~in_minority).backward()
        self._perturbed_backward(params, ascent, Xi, yi, in_minority, **fit_params)
        return {"loss": loss, "y_pred": y_pred}

    def _minority_items(self, yi):
        """A boolean per loss item (``None`` for every class alike)."""
        if self.minority is None:
            return None
        y, mask = self.item_targets(yi)
        y = y if mask is None else y[mask]
        return torch.as_tensor(self.minority, device=y.device)[y.long()]

    def _perturbed_backward(self, params, ascent, Xi, yi, in_minority, **fit_params):
        """Add the gradient at ``w + ε`` (of the whole loss, or of the minority's share) to the
        parameters' gradients, then put the parameters back, also when the step fails."""
        with torch.no_grad():
            eps = sharpness_perturbation(params, [None if g is None else g.detach() for g in ascent],
                                         self.sharpness.rho, self.sharpness.adaptive)
            saved = [None if e is None else p.detach().clone() for p, e in zip(params, eps)]  # w exactly, not w + ε − ε
            for p, e in zip(params, eps):
                if e is not None:
                    p.add_(e)
        ascent.clear()  # the caller's list: two parameter-sized copies fewer during the second pass
        del eps
        if in_minority is None:
            for p in params:
                p.grad = None
        try:
            per_item, weights = self.per_item_loss(self.infer(Xi, **fit_params), yi, X=Xi)
            loss = self.checked_loss(per_item, weights)
            (loss if in_minority is None else _share(per_item, weights, in_minority)).backward()
        finally:
            with torch.no_grad():
                for p, w in zip(params, saved):
                    if w is not None:
                        p.copy_(w)


def _share(per_item, weights, mask):
    """The part of the weighted mean loss that ``mask``'s items contribute (the shares sum to it)."""
    terms = per_item if weights is None else per_item * weights
    return (terms * mask.to(terms.dtype)).sum() / max(1, terms.numel())


@register_training("sam")
class SharpnessAwareTraining(TrainingStrategy):
    """Sharpness-aware minimisation: every step takes the gradient at ``w + ε``, ``ε`` a step of
    length ``rho`` up the loss (Foret et al., 2021); with ``classes="minority"``, only the minority
    classes' share of the loss is perturbed (ImbSAM, Zhou et al., 2023).

    Composes with any loss and class weighting (on class-imbalanced data, SAM is meant to run with
    re-weighting, such as ``loss="class_balanced", loss__drw_epoch=...``); not with HAMR or
    sequential targeting, which are training strategies of their own. A step costs two forward and
    backward passes. Not data-parallel. Measured on 3-epoch fine-tuning (``docs/sam.md``): level with
    plain training on GoEmotions-Ekman, below it on Cyclone-Idai.

    Parameters
    ----------
    rho : float, default=0.05
        Radius of the neighbourhood (the length of ``ε``; with ``adaptive``, of ``ε / (|w| + η)``);
        0 is plain training.
    adaptive : bool, default=False
        Adaptive SAM (Kwon et al., 2021): the neighbourhood scaled per weight by ``|w| + η``
        (η = 0.01), so that ``rho`` does not depend on the parameters' scale (ASAM's radii are
        larger: 0.5 to 2 in its paper).
    classes : {"all", "minority"} or int, default="all"
        ``"minority"``: perturb the loss of the examples (tokens for a tagger) whose class has fewer
        training examples than the mean class; an int ``n``: of the classes with fewer than ``n``
        training examples (ImbSAM's own tail rule; 20 in its code). The rest take the plain
        gradient. Single-label classification and tagging only.

    Examples
    --------
    >>> from skimb.training import SharpnessAwareTraining
    >>> SharpnessAwareTraining(rho=0.1).net_kwargs(None)["sharpness"].rho
    0.1
    """

    net_class = SharpnessAwareNet
    supports_data_parallel = False
    _parameter_constraints = {"rho": [Interval(Real, 0, None)], "adaptive": [Boolean()],
                              "classes": [Options("all", "minority"), Interval(Integral, 1, None)]}

    def __init__(self, rho=0.05, adaptive=False, classes="all"):
        self.rho = rho
        self.adaptive = adaptive
        self.classes = classes

    def sequence_loss_refusal(self):
        if self.classes == "all":
            return None
        return (f"training__classes={self.classes!r} perturbs the minority tags' token losses only; use "
                "training__classes='all'")

    def ignored_params(self) -> dict:
        if self.rho == 0:
            return dict.fromkeys(self._changed(("adaptive", "classes")), "rho=0 (plain training)")
        return {}

    def plan(self, ctx):
        if self.classes == "all" or self.rho == 0:
            return None
        if ctx.task == "multilabel":
            raise ValueError(f"training__classes={self.classes!r} needs one class per example (single-label "
                             "classification or tagging); for multi-label data use training__classes='all'.")
        minority = minority_classes(ctx.adapter.class_counts(ctx), None if self.classes == "minority" else self.classes)
        if not minority.any():
            warn_caller(f"training__classes={self.classes!r}: no class is a minority class in this training split, "
                        "so every step is a plain one. Pass training__classes='all' for SAM on every class.")
        return minority

    def net_kwargs(self, state) -> dict:
        return {"sharpness": self, "minority": state}

"""Head components: what an estimator does with its classification head after stage 1.

``head="linear"`` (:class:`LinearHead`) keeps the ``nn.Linear`` stage 1 trained;
``head="calora"`` (:class:`CALoRAHead`) adds CALoRA's class-routed adapters in a second stage.
A new head subclasses :class:`Head`, registers with :func:`register_head` and is then
selectable as ``head="<name>"`` with ``head__<param>`` routed to it (docs/adding_a_method.md).
"""

from __future__ import annotations

import contextlib
import math
import os
from numbers import Integral, Real

import numpy as np
import torch

from ..utils._components import Component, Registry
from ..utils._param_validation import Interval, Options, Satisfies
from ..utils._progress import progress_bar
from .calora import CALoRAConfig, ClassRoutedLoRA, fit_calora_head, topk_coverage
from .calora.backbone import fit_calora_layers, install_routed_layers, select_linear_layers
from .calora.config import ROUTINGS

__all__ = ["Head", "LinearHead", "CALoRAHead", "HEADS", "STAGE1_BALANCES", "register_head"]


class Head(Component):
    """Base of the head components.

    A head with a second stage (``has_stage2 = True``) trains after stage 1 on the stage-1
    model's penultimate features; stage 1 is then cached (``skimb.training._stage_cache``),
    keyed by everything but the head's ``_stage2_params``, so that a search over those shares
    one stage 1 per fold.
    """

    _abstract = True  # a base: the check suite skips it

    has_stage2 = False
    #: Parameters that only shape stage 2 (left out of the stage-1 cache key).
    _stage2_params: tuple = ()
    #: Where fitted stage-1 models are kept on disk (heads with a second stage).
    memory = None
    #: Stage 2 runs the backbone: ``fit_stage2`` then also gets ``token_ids`` (the training
    #: texts' token id lists) and ``pad_token_id``.
    needs_token_ids = False
    #: ``prepare`` leaves the built ``nn.Linear`` as it is, so stage 1 is the linear head's and
    #: shares its cache entry. Off unless a head declares it: the stage-1 key of any other head
    #: holds its class, so a head that reshapes ``module.head`` never loads a linear stage 1.
    linear_stage1 = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # a subclass that reshapes the stage-1 head is not linear unless it says so again
        if "prepare" in vars(cls) and "linear_stage1" not in vars(cls):
            cls.linear_stage1 = False

    def check(self, n_classes: int, *, classes=None, task=None) -> None:
        """Raise for parameters that do not fit the data (before any training); ``classes`` and
        ``task`` are the estimator's, when known."""

    def check_finetune(self, finetune) -> None:
        """Raise where this head cannot work on ``finetune``'s backbone (before it loads)."""

    def stage1_params(self) -> dict:
        """The parameters that shape stage 1 (part of the stage-1 cache key)."""
        return {k: v for k, v in self.get_params(deep=False).items() if k not in self._stage2_params}

    def prepare(self, module, *, loss=None) -> None:
        """Shape the freshly built ``module.head`` (an ``nn.Linear``) for stage 1; ``loss`` is the
        stage-1 loss (None when loading a saved model). Default: keep it as built."""

    def fit_stage2(self, module, features, targets, weights, *, loss_fn, device, seed, batch_size,
                   multilabel, verbose=0, classes=None, stage1_balance="none") -> dict:
        """Train stage 2 on ``module.head`` (replacing it in place) from the stage-1 model's
        ``features``, ``targets`` and loss ``weights``; return the fitted attributes to expose
        (``verbose``: the estimator's, for a progress bar over a long stage 2; ``classes``: the
        estimator's ``classes_``, for head parameters that name a class; ``stage1_balance``:
        how stage 1 re-balanced the classes, by ``class_weight`` or its loss: ``"none"``, ``"full"``
        or ``"partial"``, under a focal term that gives part of it back). A head that trains
        keeps what it learned when a ``KeyboardInterrupt`` stops it, and says so with an
        ``"interrupted": True`` entry (not an attribute: the estimator reads it)."""
        return {}

    def restore(self, module, n_classes: int, *, multilabel: bool) -> None:
        """Rebuild the fitted head's layer structure on a fresh module (``load_pretrained``)."""


#: How stage 1 re-balanced the classes (``Head.fit_stage2``'s ``stage1_balance``): not at all, fully
#: (class weights, a class-balancing loss) or in part (a balancing under a focal term).
STAGE1_BALANCES = ("none", "full", "partial")


def class_balanced_row_weights(targets, n_classes: int, power: float = 1.0, sample_weight=None) -> torch.Tensor:
    """Inverse class frequency of each row, to the power ``power``, mean 1 over the rows that count.

    1-D class indices: rows below 0 (NER's ignored tokens) get 0. 2-D 0/1 multi-label rows: each
    label is a group and so are the rows without any label; a row's weight is the mean of
    ``group size ** -power`` over its groups, so that a mass of unlabelled rows does not outweigh
    the labels. ``power=0.5`` weights by the inverse square root of the class frequency.

    ``sample_weight`` (optional, one non-negative weight per row) multiplies each row's weight
    after dividing it by the mean weight of the row's class (multi-label: the mean, over the
    row's groups, of each group's mean weight): a weight constant within a class (``class_weight``)
    changes nothing, so the classes are balanced once, while the variation within a class, zeros
    included, counts.

    >>> class_balanced_row_weights(torch.tensor([0, 0, 0, 1]), 2)
    tensor([0.6667, 0.6667, 0.6667, 2.0000])
    >>> class_balanced_row_weights(torch.tensor([0, 0, 0, 0, 1]), 2, power=0.5)
    tensor([0.8333, 0.8333, 0.8333, 0.8333, 1.6667])
    >>> class_balanced_row_weights(torch.tensor([0, 0, 0, 1]), 2, sample_weight=torch.tensor([0.0, 1.0, 2.0, 5.0]))
    tensor([0.0000, 0.6667, 1.3333, 2.0000])
    """
    targets = torch.as_tensor(targets)
    if targets.ndim == 2:
        Y = targets.float()
        Y = torch.cat([Y, (Y.sum(1, keepdim=True) == 0).float()], dim=1)  # "no label" as a group
        inv = Y.sum(0).clamp(min=1.0) ** -power
        w = (Y * inv).sum(1) / Y.sum(1)
        w = w * _within_class_weights(Y, sample_weight)
        if not (w > 0).any():
            raise ValueError("every stage-2 row weighs 0: nothing to train on.")
        return w / w.mean()
    valid = targets >= 0
    if not valid.any():
        raise ValueError("every stage-2 row is ignored (target < 0): nothing to balance.")
    counts = torch.bincount(targets[valid], minlength=n_classes).float().clamp(min=1.0)
    w = torch.zeros(len(targets))
    w[valid] = counts[targets[valid]] ** -power
    if sample_weight is not None:
        groups = torch.nn.functional.one_hot(targets[valid].long(), n_classes).float()
        w[valid] = w[valid] * _within_class_weights(groups, torch.as_tensor(sample_weight)[valid])
    if not (w[valid] > 0).any():
        raise ValueError("every stage-2 row weighs 0: nothing to train on.")
    return w / w[valid].mean()


def _within_class_weights(groups, sample_weight) -> torch.Tensor:
    """``sample_weight`` divided row by row by the mean, over the row's groups (columns of the 0/1
    ``groups``, one or more per row), of each group's mean weight; ones without ``sample_weight``.
    A row whose groups all weigh 0 weighs 0 itself."""
    if sample_weight is None:
        return torch.ones(len(groups))
    sw = torch.as_tensor(sample_weight, dtype=torch.float32).reshape(-1)
    group_mean = (groups * sw[:, None]).sum(0) / groups.sum(0).clamp(min=1.0)
    row_mean = (groups * group_mean).sum(1) / groups.sum(1).clamp(min=1.0)
    return torch.where(row_mean > 0, sw / row_mean.clamp(min=torch.finfo(sw.dtype).tiny), torch.zeros_like(sw))


def zero_catch_all_row(head, loss) -> None:
    """Give ``loss``'s ``zero_logit_class`` (the ranking loss's catch-all class) a zero row and bias
    in a fresh linear or cosine ``head`` (a cosine head's zero row scores exactly 0): its zero
    gradient keeps them at zero, so that its logit is always 0. Other heads are left alone."""
    from ._cosine import CosineLinear  # it registers itself through this module

    k = getattr(loss, "zero_logit_class", None)
    if k is None or not isinstance(head, (torch.nn.Linear, CosineLinear)):
        return
    with torch.no_grad():
        head.weight[k].zero_()
        if getattr(head, "bias", None) is not None:
            head.bias[k].zero_()


def stage2_rows(targets, weights=None) -> torch.Tensor:
    """The stage-2 rows a second stage trains on or keeps (a boolean mask): not ignored (a 1-D target
    >= 0) and, with ``weights``, of positive weight.

    >>> stage2_rows(torch.tensor([0, -100, 1, 1]), torch.tensor([1.0, 1.0, 0.0, 2.0]))
    tensor([ True, False, False,  True])
    """
    targets = torch.as_tensor(targets)
    keep = torch.ones(len(targets), dtype=torch.bool) if targets.ndim == 2 else targets >= 0
    if weights is not None:
        keep &= torch.as_tensor(weights).reshape(-1) > 0
    return keep


def class_neutral_loss(loss_fn):
    """Stage 1's loss without its own class balancing (class weights, a per-class ``alpha``,
    margins, a prior adjustment), for a second stage whose row weights balance the classes:
    ``ImbalanceLoss.without_class_balance``; a module without it (a user's loss) as it is.

    >>> from skimb.losses import make_loss
    >>> class_neutral_loss(make_loss("weighted_ce", task="multiclass", class_counts=[9, 1])).class_weight_
    tensor([1., 1.])
    """
    neutral = getattr(loss_fn, "without_class_balance", None)
    return loss_fn if neutral is None else neutral()


def prior_log_odds(Y) -> "np.ndarray":
    """Each label's training prior as a logit, ``log(p / (1 - p))`` with ``p = (n_c + 1) / (N + 2)``
    (add-one smoothing keeps labels without positives finite); float32.

    >>> prior_log_odds(np.array([[1, 0], [0, 0], [0, 0]])).round(4)
    array([-0.4055, -1.3863], dtype=float32)
    """
    Y = np.asarray(Y)
    p = (Y.sum(0) + 1.0) / (len(Y) + 2.0)
    return np.log(p / (1.0 - p)).astype(np.float32)


HEADS = Registry("head", Head)
register_head = HEADS.register


@register_head("linear")
class LinearHead(Head):
    """The plain linear head trained with the model (no second stage).

    Examples
    --------
    >>> LinearHead().has_stage2
    False
    """

    linear_stage1 = True


#: ``CALoRAHead(epochs="auto")``: at most this many stage-2 epochs, and at most the epochs that fit
#: in ``CALORA_STEP_BUDGET`` optimiser steps (at least one epoch).
CALORA_MAX_EPOCHS = 20
CALORA_STEP_BUDGET = 600


def calora_stage2_epochs(epochs, n_rows: int, batch_size: int) -> int:
    """The stage-2 epochs of :class:`CALoRAHead`: ``epochs`` itself, or for ``"auto"`` 20 epochs
    capped by a budget of 600 optimiser steps over ``n_rows`` rows in batches of ``batch_size``.

    >>> calora_stage2_epochs("auto", 2_477, 256), calora_stage2_epochs("auto", 70_000, 256)
    (20, 2)
    >>> calora_stage2_epochs(5, 70_000, 256)
    5
    """
    if epochs != "auto":
        return int(epochs)
    steps_per_epoch = max(1, math.ceil(int(n_rows) / int(batch_size)))
    return max(1, min(CALORA_MAX_EPOCHS, CALORA_STEP_BUDGET // steps_per_epoch))


@contextlib.contextmanager
def _routed_lr_errors(param: str):
    """Re-raise a stage-2 ``FloatingPointError`` (a non-finite loss) naming the estimator's
    parameter ``param`` (``head__lr``) as the one to lower, not the training function's ``lr``."""
    try:
        yield
    except FloatingPointError as exc:
        cause = str(exc).split(";")[0]
        raise FloatingPointError(f"{cause}; lower {param}.") from None


#: Stage-2 row weights ``class count ** -power`` of ``CALoRAHead(balance=...)``.
BALANCE_POWERS = {"class": 1.0, "sqrt": 0.5}


@register_head("calora")
class CALoRAHead(Head):
    """CALoRA: class-routed LoRA adapters on the frozen head, trained in a second stage.

    Stage 1 fits the vanilla model (any ``finetune``, ``loss`` and ``training``); stage 2
    freezes it and trains one low-rank adapter per class on cached penultimate features,
    routed by the stage-1 ranking (``skimb.heads.calora``, ``docs/calora.md``). For token
    classification the routing is per token.

    Parameters
    ----------
    k : int, default=2
        Number of routed classes (``1 <= k <= n_classes``); ignored, with a warning, by
        ``routing="pseudo"``, which routes to the top-1 class.
    rank : int, default=8
        Rank of each class adapter.
    routing : str, default="topk"
        A registered routing rule (:func:`skimb.heads.register_routing`): ``"topk"`` (the ``k``
        classes ranked highest by stage 1), ``"pseudo"`` (its top-1 class), ``"oracle"`` (the
        true class while training, top-k at inference) or ``"soft"`` (top-k weighted by the
        renormalised stage-1 probabilities). The fitted ``routing_topk_coverage_`` is the share of
        training rows whose true class is among the classes routed at inference: the top ``k``,
        the top 1 for ``"pseudo"`` (multi-label: the share of positive labels among their row's routed ones).
    alpha : float or None, default=None
        Adapter scaling ``alpha / rank`` (None: scaling 1).
    epochs : int or "auto", default="auto"
        Stage-2 epochs (AdamW on the adapters only, on cached features, batches of at least 256
        rows). ``"auto"``: 20, or fewer where 20 would exceed a budget of 600 optimiser steps:
        20 up to 7,680 stage-2 rows (texts, or tokens for NER), then fewer as the rows grow,
        since the adapters overfit the training features where stage 1 is already right (on the
        whole MIT-Restaurant training split, about 60,000 token rows, 20 epochs cost 1.7 points of span
        macro-F1 against the stage-1 model, 2 epochs none; ``docs/benchmarks.md``, round 10).
        The epochs run are ``stage2_epochs_``.
    lr : float, default=1e-3
        Stage-2 learning rate.
    balance : {"auto", "class", "sqrt", "uniform", "none"}, default="auto"
        The stage-2 row weights. ``"class"``: inverse class frequency of the stage-2 rows (mean 1;
        multi-label: see ``class_balanced_row_weights``), in place of the estimator's row
        weights (``class_weight`` of text classifiers and ``sample_weight``, which stage 2 then
        ignores), so the adapters are trained class-balanced on the stage-1 representation, as in
        the decoupled training of Kang et al. (2020). ``"sqrt"``: the inverse square root of the
        class frequency, half way. ``"uniform"``: every row weighs the same (``class_weight`` and
        ``sample_weight`` ignored). ``"none"``: the estimator's row weights, the paper's stage 2
        (on a ``class_weight="balanced"`` stage 1 without ``sample_weight`` the same as
        ``"class"``). Stage 2 trains with stage 1's loss; with every setting but ``"none"``,
        without the loss's own class balancing (``weighted_ce``'s and ``class_balanced``'s class
        weights, LDAM's margins and deferred re-weighting, a logit adjustment, a focal or AFL
        ``alpha``, AFL's per-class ``gamma``, the distribution-balanced loss's re-balanced weights
        and prior bias, the token classifier's ``class_weight``: ``ImbalanceLoss.without_class_balance``),
        so that the rows alone balance the classes.
        ``"auto"``, skimb's choice beyond the paper, balances the classes once for single-label
        texts: ``"uniform"`` after a stage 1 that re-balanced them fully (``class_weight`` or a
        class-balancing loss without a focal term), since a class-balanced stage 2 keeps class
        weighting's over-prediction of the rare classes (Cyclone-Idai, 3 seeds, the same
        class-weighted stage 1s: macro-F1 0.641 for stage 1 alone, 0.637 with the class-balanced
        stage 2, 0.664 with the uniform one; GoEmotions-28 0.421, 0.424, 0.453); ``"sqrt"`` after
        a plain stage 1 (ahead of ``"class"`` on four of six text sets, +0.2 to +1.6 points,
        0.2-0.3 behind on two; round 23) and after one balanced under a focal term, which tilts
        less towards the rare classes (measured with ``loss="afl", loss__alpha="balanced"``:
        Cyclone-Idai 0.646 against 0.632 for uniform rows, GoEmotions-Ekman at 1,200 texts 0.560
        against 0.538, level on two more sets; round 24; the focal loss with ``class_weight``:
        level with uniform rows, round 25; ``class_balanced`` with a focal base follows the same
        rule, unmeasured); ``"class"`` for
        multi-label texts (GoEmotions, 28 labels, BCE: 0.433 against 0.426 for ``"sqrt"`` and
        0.408 for uniform rows; round 24); ``"none"`` for
        token classification, where balancing the tags against ``O`` costs precision as
        class-weighted losses do (MIT-Restaurant, 3 seeds: span macro-F1 0.616 balanced, 0.655
        unbalanced, 0.631 for the cross-entropy stage 1 alone).
        The weights used are ``stage2_balance_``.
    memory : None, str or joblib.Memory, default=None
        Where to keep fitted stage-1 models on disk, as for scikit-learn's Pipeline. Stage 1 is
        always cached in memory, keyed by the backbone, every stage-1 parameter, the seed and
        the exact training data, so the candidates of a grid search over ``head__k`` /
        ``head__rank`` share one stage 1 per fold; ``memory`` shares it across processes
        (``n_jobs > 1``). Needs an integer ``random_state``.
    layers : None, "last" or list of str, default=None
        Backbone ``nn.Linear`` layers that get class adapters too, routed like the head's
        (METHODS.md §1, "optionally other linear layers"; text classification with
        ``finetune="full"`` or ``"head"``). ``"last"``: every linear layer of the last
        transformer block; a list: layers by name or dotted ending (``"5.attention.self.query"``,
        see :func:`skimb.heads.select_linear_layers`). None: the head only. Stage 2 then trains
        the head's adapters as without ``layers`` (``epochs``, ``lr``, on cached features), freezes
        them, and trains the backbone's on the training texts (``layer_epochs``, ``layer_lr``);
        a prediction runs the frozen model to rank the classes, then the adapted blocks again with
        the routed adapters (``docs/calora.md``).
    layer_epochs : int, default=1
        Epochs of the backbone adapters on the training texts (each one a forward pass of the
        backbone over them and a backward pass through the adapted blocks); with ``layers`` only.
    layer_lr : float, default=1e-4
        Learning rate of the backbone adapters; with ``layers`` only.

    Examples
    --------
    >>> head = CALoRAHead(k=3, rank=4)
    >>> head.stage1_params()
    {}
    >>> CALoRAHead(k=0).validate()
    Traceback (most recent call last):
    ...
    skimb.utils._param_validation.InvalidParameterError: CALoRAHead: k must be an int in [1, inf], got 0.
    """

    has_stage2 = True
    linear_stage1 = True
    _stage2_params = ("k", "rank", "routing", "alpha", "epochs", "lr", "balance", "memory", "layers", "layer_epochs",
                      "layer_lr")
    _parameter_constraints = {
        "k": [Interval(Integral, 1, None)],
        "rank": [Interval(Integral, 1, None)],
        "routing": [Satisfies(lambda v: isinstance(v, str) and v in ROUTINGS,
                              "a registered routing (skimb.heads.ROUTINGS: 'topk', 'pseudo', 'oracle', "
                              "'soft', ...)", bad=["__unknown_option__", 3])],
        "alpha": [None, Interval(Real, 0, None, closed="neither")],
        "epochs": [Options("auto"), Interval(Integral, 1, None)],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "balance": [Options("auto", *BALANCE_POWERS, "uniform", "none")],
        "memory": [None, Satisfies(lambda v: isinstance(v, (str, os.PathLike)) or hasattr(v, "location"),
                                   "a directory or a joblib.Memory", bad=[3])],
        "layers": [None, Satisfies(lambda v: v == "last" or (isinstance(v, (list, tuple)) and len(v) > 0
                                                             and all(isinstance(e, str) and e for e in v)),
                                   "'last' or a non-empty list of layer names", bad=["first", [], [3]])],
        "layer_epochs": [Interval(Integral, 1, None)],
        "layer_lr": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, k=2, rank=8, routing="topk", alpha=None, epochs="auto", lr=1e-3, balance="auto", memory=None,
                 layers=None, layer_epochs=1, layer_lr=1e-4):
        self.k = k
        self.rank = rank
        self.routing = routing
        self.alpha = alpha
        self.epochs = epochs
        self.lr = lr
        self.balance = balance
        self.memory = memory
        self.layers = layers
        self.layer_epochs = layer_epochs
        self.layer_lr = layer_lr

    def ignored_params(self) -> dict:
        ignored = {}
        if self.layers is None:
            ignored.update(dict.fromkeys(self._changed(("layer_epochs", "layer_lr")), "layers=None (the head only)"))
        if self.routing == "pseudo" and self._changed(("k",)):
            ignored["k"] = "routing='pseudo' routes each input to its stage-1 top-1 class (use routing='topk')"
        return ignored

    def routed_k(self) -> int:
        """How many classes the routing rule fires per input: 1 for ``"pseudo"``, else ``k``
        (``routing_topk_coverage_`` is the training rows' coverage at this rank)."""
        return 1 if self.routing == "pseudo" else int(self.k)

    @property
    def needs_token_ids(self) -> bool:
        """Stage 2 runs the backbone: it needs the training texts' token ids."""
        return self.layers is not None

    def config(self, n_classes: int) -> CALoRAConfig:
        return CALoRAConfig(n_classes=n_classes, rank=self.rank, k=self.k, routing=self.routing, alpha=self.alpha)

    def check(self, n_classes, *, classes=None, task=None):
        if self.k > n_classes:  # before stage 1 trains
            raise ValueError(f"head__k={self.k} routes more classes than the {n_classes} of this target; "
                             f"give head__k between 1 and {n_classes}.")
        self.config(n_classes)  # the rest
        if self.layers is not None and task == "token":
            raise ValueError("head__layers (class adapters inside the backbone) is for text classification; "
                             "token classification routes per token: use the head-only CALoRA (layers=None).")

    def check_finetune(self, finetune):
        if self.layers is not None and finetune.wraps_linear_layers:
            raise ValueError(f"head__layers adapts the backbone's own nn.Linear layers, which finetune="
                             f"{finetune.name!r} wraps in adapter layers: use finetune='full' or 'head' for stage 1.")

    def prepare(self, module, *, loss=None):
        if self.layers is None:
            return
        backbone = module.encoder.backbone
        if hasattr(backbone, "peft_config"):  # a custom fine-tuning mode that wraps them without saying so
            raise ValueError("head__layers adapts the backbone's own nn.Linear layers, which this fine-tuning mode "
                             "wraps in peft layers: use finetune='full' or 'head' for stage 1.")
        select_linear_layers(backbone, self.layers, param="head__layers")  # every name resolves, before stage 1

    def fit_stage2(self, module, features, targets, weights, *, loss_fn, device, seed, batch_size, multilabel,
                   verbose=0, classes=None, stage1_balance="none", token_ids=None, pad_token_id=0):
        with torch.no_grad():
            stage1_logits = module.head(features.to(device)).float().cpu()
        balance = self.resolve_balance(module, stage1_balance, multilabel=multilabel)
        weights = self._stage2_weights(balance, weights, targets, module.head.out_features)
        if balance != "none":  # the rows balance the classes, not the loss as well
            loss_fn = class_neutral_loss(loss_fn)
        config = self.config(module.head.out_features)
        layered = self.layers is not None
        batch_size_2 = max(batch_size, 256)
        epochs = calora_stage2_epochs(self.epochs, len(features), batch_size_2)
        with progress_bar(epochs + (self.layer_epochs if layered else 0), "CALoRA stage 2", verbose,
                          unit="epoch") as bar:
            with _routed_lr_errors("head__lr"):
                layer = fit_calora_head(
                    module.head, features, stage1_logits, targets, config=config, loss_fn=loss_fn,
                    sample_weight=weights, epochs=epochs, lr=self.lr, batch_size=batch_size_2, random_state=seed,
                    multilabel=multilabel, device=device, progress=bar)
            interrupted = layer.interrupted_
            if layered:  # then the backbone's adapters, on the texts, the head's frozen (installed, untrained
                # after an interrupt: the model keeps the layout that load_pretrained rebuilds)
                names = select_linear_layers(module.encoder.backbone, self.layers, param="head__layers")
                with _routed_lr_errors("head__layer_lr"):
                    routing = fit_calora_layers(module, token_ids, stage1_logits, targets, config=config,
                                                layer_names=names, loss_fn=loss_fn, sample_weight=weights,
                                                epochs=0 if interrupted else self.layer_epochs, lr=self.layer_lr,
                                                batch_size=batch_size, random_state=seed, multilabel=multilabel,
                                                device=device, pad_token_id=pad_token_id, progress=bar,
                                                head_layer=layer)
                interrupted = interrupted or routing.interrupted_
            else:
                module.head = layer
        fitted = {"routing_topk_coverage_": float(topk_coverage(stage1_logits, targets, self.routed_k())),
                  "stage2_balance_": balance, "adapter_norms_": layer.adapter_norms(), "stage2_epochs_": epochs,
                  "interrupted": interrupted}
        if layered:
            fitted["routed_layers_"] = np.asarray(names)
        return fitted

    def resolve_balance(self, module, stage1_balance: str = "none", *, multilabel: bool = False) -> str:
        """``balance`` with ``"auto"`` resolved: ``"none"`` for token classifiers (they encode
        without pooling: one row per token), ``"class"`` for multi-label texts (ahead of
        ``"sqrt"`` and ``"uniform"`` on GoEmotions, round 24), else ``"uniform"`` after a stage 1
        that re-balanced the classes fully and ``"sqrt"`` after a plain one or one balanced under
        a focal term (AFL with a balanced ``alpha`` tilts less towards the rare classes than
        class weighting: the square root is ahead of uniform rows there, round 24)."""
        if stage1_balance not in STAGE1_BALANCES:
            raise ValueError(f"stage1_balance must be one of {STAGE1_BALANCES}, got {stage1_balance!r}.")
        if self.balance != "auto":
            return self.balance
        if getattr(module.encoder, "pooling", "mean") is None:
            return "none"
        if multilabel:
            return "class"
        return "uniform" if stage1_balance == "full" else "sqrt"

    @staticmethod
    def _stage2_weights(balance, weights, targets, n_classes):
        if balance == "none":
            return weights
        if balance == "uniform":
            return None
        return class_balanced_row_weights(targets, n_classes, power=BALANCE_POWERS[balance])

    def restore(self, module, n_classes, *, multilabel):
        if self.layers is not None:
            install_routed_layers(module, self.config(n_classes),
                                  select_linear_layers(module.encoder.backbone, self.layers, param="head__layers"),
                                  multilabel=multilabel)
            return
        module.head = ClassRoutedLoRA(module.head, self.config(n_classes), multilabel=multilabel)

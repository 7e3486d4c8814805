"""Base class and shared helpers of the imbalance losses.

Conventions shared by every loss in :mod:`skimb.losses`:

* ``per_sample(logits, target)`` returns one loss per example, shape ``(N,)``
  (multi-label: the mean over labels); ``forward`` applies ``reduction``.
* Per-class quantities are registered buffers whose names end in ``_``
  (``class_weight_``, ``gamma_``, ...): ``.to(device)`` moves them, ``state_dict``
  saves them and :meth:`ImbalanceLoss.fitted_attributes` exposes them as numpy arrays.
* Class counts are validated and classes with a zero training count are treated
  as if they had one example, so that inverse-frequency quantities stay finite.
* All formulations work in log space (``log_softmax``, ``logsigmoid``,
  ``logsumexp``), so losses and gradients stay finite at logits of +-1e4.
"""

from __future__ import annotations

import copy
import inspect
import numbers
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from ..utils._warnings import warn_caller

__all__ = ["ImbalanceLoss"]

_REDUCTIONS = ("none", "mean", "sum")
# Constructor arguments that make_loss / from_counts fill in themselves.
_RESERVED_PARAMS = ("self", "class_counts", "n_samples", "reduction")


def per_item_losses(losses, n: int, loss) -> torch.Tensor:
    """What the loss module (or function) ``loss`` returned, as one loss per item (shape ``(n,)``;
    per-label rows, shape ``(n, C)``, are averaged over the labels as skimb's multi-label losses
    are), or a ``ValueError``: a loss reduced to one number would silently drop the class, sample
    and HAMR's weights that multiply the per-item losses."""
    if isinstance(losses, torch.Tensor) and losses.dim() == 2 and losses.shape[0] == n:
        losses = losses.mean(1)
    if isinstance(losses, torch.Tensor) and tuple(losses.shape) == (n,):
        return losses
    shape = tuple(losses.shape) if isinstance(losses, torch.Tensor) else type(losses).__name__
    name = getattr(loss, "__name__", type(loss).__name__)
    raise ValueError(f"the loss {name} must return per-sample losses, shape ({n},), got {shape}: set its "
                     "reduction='none', or have its forward return the unreduced losses.")


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}.")
    return reduction


def _check_counts(class_counts, name="class_counts", required=True, owner=None):
    """Validate per-class counts; return a float64 array or None."""
    if class_counts is None:
        if required:
            who = f"{owner} " if owner else ""
            raise ValueError(
                f"{who}needs per-class training counts: pass class_counts "
                "(multi-label: positives per label)."
            )
        return None
    if isinstance(class_counts, torch.Tensor):
        class_counts = class_counts.detach().cpu().numpy()
    counts = np.asarray(class_counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {counts.shape}.")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError(f"{name} must be finite and non-negative, got {counts.tolist()}.")
    return counts


def _check_n_samples(n_samples, counts, owner, required=True):
    """Validate the number of training examples against the counts."""
    if n_samples is None:
        if required:
            raise ValueError(f"{owner} needs n_samples (the number of training examples).")
        return None
    if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Real):
        raise TypeError(f"n_samples must be a number, got {type(n_samples).__name__}.")
    n = float(n_samples)
    if not np.isfinite(n) or n <= 0:
        raise ValueError(f"n_samples must be positive, got {n_samples!r}.")
    if counts is not None and counts.max() > n:
        raise ValueError(
            f"n_samples={n_samples!r} is smaller than the largest class count {counts.max():g}."
        )
    return n


def _safe_counts(counts):
    """Counts with zeros replaced by one (keeps inverse frequencies finite)."""
    return np.maximum(counts, 1.0)


def _inverse_frequency(counts, normalize="classes"):
    """Inverse class frequency weights.

    ``normalize="classes"``: mean 1 over classes, ``w_c = (1/n_c) / mean_k(1/n_k)``.
    ``normalize="samples"``: mean 1 over training examples, ``w_c = N / (C n_c)``
    (scikit-learn's ``class_weight="balanced"``).
    """
    n = _safe_counts(counts)
    if normalize == "classes":
        inv = 1.0 / n
        return inv / inv.mean()
    if normalize == "samples":
        return n.sum() / (n.size * n)
    raise ValueError(f"normalize must be 'classes' or 'samples', got {normalize!r}.")


def _even_alpha(alpha_):
    """A per-class ``alpha`` made the same for every class (its mean: a scalar stays as it is)."""
    if alpha_ is not None:
        alpha_.fill_(float(alpha_.mean()))


def _resolve_alpha(alpha, counts, owner):
    """Per-class weight ``alpha``: None, a scalar, ``"balanced"`` or an array of length C.

    Returns None or a float64 array (0-d for a scalar when C is unknown).
    """
    if alpha is None:
        return None
    if isinstance(alpha, str):
        if alpha != "balanced":
            raise ValueError(f"{owner}: alpha must be a number, an array or 'balanced', got {alpha!r}.")
        if counts is None:
            raise ValueError(f"{owner}: alpha='balanced' needs class_counts.")
        return _inverse_frequency(counts, "classes")
    if isinstance(alpha, Mapping):  # numpy's error named float(), not alpha, nor the order it takes
        raise TypeError(f"{owner}: alpha must be a number, 'balanced' or one weight per class in the order of the "
                        f"classes (an array), got a {type(alpha).__name__}; pass [alpha[c] for c in classes_] "
                        "(in the order of the estimator's classes_).")
    if isinstance(alpha, torch.Tensor):
        alpha = alpha.detach().cpu().numpy()
    try:
        arr = np.asarray(alpha, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: alpha must be a number, 'balanced' or an array of numbers (one per class), got "
                        f"{alpha!r:.80}.") from None
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{owner}: alpha must be finite and non-negative, got {arr.tolist()}.")
    if arr.ndim == 0:
        return np.full(counts.size, float(arr)) if counts is not None else arr
    if arr.ndim != 1:
        raise ValueError(f"{owner}: alpha must be a scalar or a 1-D array, got shape {arr.shape}.")
    if counts is not None and arr.size != counts.size:
        raise ValueError(
            f"{owner}: alpha has {arr.size} entries but there are {counts.size} classes."
        )
    return arr


def _adaptive_gamma(counts, gamma, max_gamma):
    """AFL focusing parameters ``gamma_c = min(gamma / f~_c, max_gamma)``.

    ``f~_c = f_c / max_k f_k = n_c / max_k n_k`` (zero counts count as one), so the
    most frequent class gets ``gamma`` and rarer classes get larger values,
    non-increasing in frequency; ``max_gamma=None`` disables the cap.
    """
    gamma = _check_nonneg(gamma, "gamma")
    n = _safe_counts(counts)
    g = gamma * n.max() / n
    if max_gamma is not None:
        g = np.minimum(g, _check_nonneg(max_gamma, "max_gamma"))
    return g


def _check_nonneg(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}.")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}.")
    return value


def _per_class_alpha(alpha) -> bool:
    """``alpha`` weights the classes differently ("balanced" or one weight per class; a scalar
    weights them all the same)."""
    return alpha is not None and not isinstance(alpha, numbers.Real)


def _to_buffer(values):
    return torch.as_tensor(np.asarray(values, dtype=np.float64), dtype=torch.get_default_dtype())


def _log1m_softmax_at(logits, target):
    """``log(1 - softmax(logits)[i, target_i])`` computed stably.

    Uses ``logsumexp`` over the non-target logits minus ``logsumexp`` over all of
    them, which is finite for any finite logits when C >= 2. Logits of ``-inf`` (masked
    classes) are read as the dtype's lowest finite value and the result is kept at or above
    it: where every other class is masked, ``p_t = 1`` and the result is that lowest value, not
    ``-inf``, so that ``gamma * log(1 - p_t)`` is finite (0 for ``gamma = 0``, not NaN) and no
    NaN gradient comes from a ``logsumexp`` over ``-inf`` alone.
    """
    lowest = torch.finfo(logits.dtype).min
    lse_all = torch.logsumexp(logits, dim=1)
    target_mask = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, target[:, None], True)
    others = logits.clamp(min=lowest).masked_fill(target_mask, float("-inf"))
    return (torch.logsumexp(others, dim=1) - lse_all).clamp(min=lowest)


class ImbalanceLoss(nn.Module):
    """Base class of the skimb losses.

    Subclasses implement ``_per_sample`` (inputs already validated; a multi-label loss may
    implement ``_per_label`` instead, whose mean over labels is the per-sample loss) and declare
    ``task`` (``"multiclass"`` or ``"multilabel"``). Per-class quantities are
    registered as buffers whose names end in ``_``.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default="mean"
        How :meth:`forward` reduces the per-sample losses. ``make_loss`` sets it to
        ``"none"`` (the estimator applies sample weights and reduces).

    Attributes
    ----------
    task : str
        ``"multiclass"`` (logits ``(N, C)``, integer targets ``(N,)``) or
        ``"multilabel"`` (logits ``(N, C)``, float 0/1 targets ``(N, C)``).

    Examples
    --------
    >>> import torch
    >>> from skimb.losses import ImbalanceLoss
    >>> class MarginLoss(ImbalanceLoss):
    ...     task = "multiclass"
    ...     def _per_sample(self, logits, target):
    ...         true = logits.gather(1, target[:, None]).squeeze(1)
    ...         return torch.relu(1 - true)
    >>> MarginLoss(reduction="none")(torch.tensor([[0.0, 2.0]]), torch.tensor([1]))
    tensor([0.])
    """

    task = "multiclass"
    #: Multi-class targets equal to this value are ignored (loss 0, left out of "mean").
    ignore_index = -100

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = _check_reduction(reduction)
        self._epoch = None
        self._max_epochs = None

    #: The loss re-balances the classes itself (class weights, margins, a prior adjustment).
    rebalances = False

    # ------------------------------------------------------------------ factory
    @classmethod
    def balances_classes(cls, **params) -> bool:
        """Whether the loss built with ``params`` re-balances the classes itself (class weights,
        margins or a prior adjustment), as ``class_weight="balanced"`` does.

        HAMR reads it: on a loss that balances, its meta objective is the plain mean, not a second
        balancing. ``params`` are the constructor's (``alpha``, ``drw_epoch``, ...).

        >>> from skimb.losses import CrossEntropyLoss, WeightedCrossEntropyLoss
        >>> CrossEntropyLoss.balances_classes(), WeightedCrossEntropyLoss.balances_classes()
        (False, True)
        """
        return cls.rebalances

    @classmethod
    def schedule_warning(cls, n_epochs, **params):
        """Why the loss's epoch schedule (in ``params``) does nothing in a fit of ``n_epochs``
        epochs, or None; a malformed schedule parameter raises. None for a loss without one.

        >>> from skimb.losses import CrossEntropyLoss
        >>> CrossEntropyLoss.schedule_warning(3) is None
        True
        """
        return None

    @classmethod
    def classes_warning(cls, classes, **params):
        """Why the loss built with ``params`` may misread the fit's ``classes`` (sorted labels),
        or None (the default: a loss that does not read the classes' order).

        >>> from skimb.losses import CrossEntropyLoss
        >>> CrossEntropyLoss.classes_warning(["neg", "pos"]) is None
        True
        """
        return None

    @classmethod
    def unused_params(cls, **params) -> dict:
        """``{name: the setting that leaves it unused}`` for the given constructor ``params`` that the
        loss they configure does not read (a focal ``gamma`` without the focal term); :func:`make_loss`
        warns about them, as about a shared name the loss does not take.

        >>> from skimb.losses import ClassBalancedLoss
        >>> ClassBalancedLoss.unused_params(gamma=3.0), ClassBalancedLoss.unused_params(gamma=3.0, base="focal")
        ({'gamma': "base='ce'"}, {})
        """
        return {}

    @classmethod
    def focuses(cls, **params) -> bool:
        """Whether the loss built with ``params`` down-weights well-classified examples (a focal
        term). Under a focal term a class balancing is partly given back: a rare class's
        examples stop teaching once they are half right, so the model tilts less towards the
        rare classes than class weighting does. CALoRA's stage 2 reads it
        (``head__balance="auto"``).

        >>> from skimb.losses import CrossEntropyLoss, FocalLoss
        >>> CrossEntropyLoss.focuses(), FocalLoss.focuses(gamma=2.0), FocalLoss.focuses(gamma=0.0)
        (False, True, False)
        """
        return False

    @classmethod
    def accepted_params(cls):
        """Names of the hyperparameters the constructor accepts.

        ``class_counts``, ``n_samples`` and ``reduction`` are left out: the factory
        fills them in.

        Returns
        -------
        tuple of str
        """
        sig = inspect.signature(cls.__init__)
        return tuple(
            name
            for name, p in sig.parameters.items()
            if name not in _RESERVED_PARAMS
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )

    @classmethod
    def from_counts(cls, class_counts=None, n_samples=None, **params):
        """Build the loss from per-class training counts.

        Parameters
        ----------
        class_counts : array-like of shape (C,), default=None
            Training examples per class (multi-label: positive labels per class).
            Passed only if the constructor takes it.
        n_samples : int, default=None
            Number of training examples N. Passed only if the constructor takes it;
            multi-class losses default it to ``sum(class_counts)``.
        **params
            Constructor arguments (``reduction`` included).

        Returns
        -------
        ImbalanceLoss

        Examples
        --------
        >>> from skimb.losses import WeightedCrossEntropyLoss
        >>> loss = WeightedCrossEntropyLoss.from_counts([30, 10], reduction="none")
        >>> loss.class_weight_
        tensor([0.5000, 1.5000])
        """
        sig = inspect.signature(cls.__init__).parameters
        if "class_counts" in sig:
            params["class_counts"] = class_counts
        if "n_samples" in sig:
            params["n_samples"] = n_samples
        return cls(**params)

    # ------------------------------------------------------------------ API
    def fitted_attributes(self):
        """Per-class quantities the loss derived from the training counts.

        Returns
        -------
        dict of str to numpy.ndarray
            Every registered buffer whose name ends in ``_`` (``gamma_``,
            ``class_weight_``, ...), copied to the CPU as float64.
        """
        return {
            name: buf.detach().cpu().to(torch.float64).numpy().copy()
            for name, buf in self.named_buffers(recurse=False)
            if name.endswith("_")
        }

    def set_epoch(self, epoch, max_epochs=None):
        """Tell the loss which epoch starts (0-based); a no-op unless the loss has a schedule.

        Parameters
        ----------
        epoch : int
            The epoch about to start, counting from 0.
        max_epochs : int, default=None
            Total number of epochs, for schedules expressed as a fraction of training.
        """
        self._epoch = int(epoch)
        self._max_epochs = None if max_epochs is None else int(max_epochs)

    def without_class_balance(self):
        """A copy of the loss that treats every class alike: its class weights, per-class
        ``alpha``, margins, prior adjustment or per-class ``gamma`` (AFL's, which becomes the
        base ``gamma``: the focal loss) undone, the rest (a focal ``gamma``, the logit scale)
        kept; ``DistributionBalancedLoss`` loses its re-balanced weights and prior bias and keeps
        its negative-tolerant scale and focal term; ``WeightedBinaryCrossEntropyLoss`` keeps its
        positive weights (they weigh a label's positives against its negatives, which row weights
        cannot). A loss without per-class terms is copied
        unchanged. A subclass that re-balances (``rebalances = True``) says how to undo it in
        ``_drop_class_balance``; one that does not is copied unchanged, with a warning.

        Second stages that weight their rows by class (CALoRA's ``head__balance``, cRT) train
        with it, so that the classes are balanced once, by the rows.

        Returns
        -------
        ImbalanceLoss
            A new module; this one is left as it is.

        Examples
        --------
        >>> import torch
        >>> from skimb.losses import WeightedCrossEntropyLoss
        >>> loss = WeightedCrossEntropyLoss([90, 10], reduction="none")
        >>> loss.without_class_balance().class_weight_, loss.class_weight_
        (tensor([1., 1.]), tensor([0.2000, 1.8000]))
        """
        if self.rebalances and type(self)._drop_class_balance is ImbalanceLoss._drop_class_balance:
            warn_caller(f"{type(self).__name__} re-balances the classes but has no _drop_class_balance: a second "
                        "stage that weights its rows by class balances them a second time.")
        loss = copy.deepcopy(self)
        with torch.no_grad():
            loss._drop_class_balance()
        return loss

    def _drop_class_balance(self):
        """Undo the loss's own class balancing, in place (called on a copy); a no-op here."""

    def per_sample(self, logits, target):
        """Per-sample losses, shape ``(N,)`` (multi-label: mean over labels).

        Parameters
        ----------
        logits : torch.Tensor of shape (N, C)
        target : torch.Tensor
            Multi-class: integer class indices of shape ``(N,)`` (``ignore_index``
            entries give a loss of 0). Multi-label: 0/1 indicators of shape ``(N, C)``.

        Returns
        -------
        torch.Tensor of shape (N,)
        """
        logits, target = self._check_inputs(logits, target)
        if self.task == "multiclass":
            # Always masked (no host sync): ignored entries get class 0, then loss 0.
            valid = target != self.ignore_index
            safe = torch.where(valid, target, torch.zeros_like(target))
            losses = self._per_sample(logits, safe)
            return torch.where(valid, losses, torch.zeros_like(losses))
        return self._per_sample(logits, target)

    def forward(self, logits, target):
        """Loss reduced according to ``reduction``.

        Parameters
        ----------
        logits : torch.Tensor of shape (N, C)
        target : torch.Tensor
            See :meth:`per_sample`.

        Returns
        -------
        torch.Tensor
            Shape ``(N,)`` for ``reduction="none"``, a scalar otherwise. ``"mean"``
            averages over examples (multi-class: over the non-ignored ones); an empty batch
            (or one whose targets are all ignored) gives 0.
        """
        losses = self.per_sample(logits, target)
        reduction = _check_reduction(self.reduction)
        if reduction == "none":
            return losses
        if reduction == "sum":
            return losses.sum()
        if self.task == "multiclass":
            n_valid = (torch.as_tensor(target) != self.ignore_index).sum().clamp(min=1)
            return losses.sum() / n_valid.to(losses.dtype)
        return losses.mean() if losses.numel() else losses.sum()  # 0 for an empty batch, as multi-class, not NaN

    def per_label(self, logits, target):
        """Multi-label: the loss of every (sample, label) term, shape ``(N, C)``; its mean over
        labels is :meth:`per_sample`.

        HAMR weights these terms one by one (``HAMRTraining(weight_unit="label")``).

        Parameters
        ----------
        logits : torch.Tensor of shape (N, C)
        target : torch.Tensor of shape (N, C), 0/1

        Returns
        -------
        torch.Tensor of shape (N, C)

        Examples
        --------
        >>> import torch
        >>> from skimb.losses import BinaryCrossEntropyLoss
        >>> loss = BinaryCrossEntropyLoss()
        >>> loss.per_label(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]))
        tensor([[0.6931, 0.6931]])
        """
        if not self.has_per_label():
            raise TypeError(f"{type(self).__name__} has no per-label losses: only a multi-label loss that "
                            "implements _per_label has them.")
        logits, target = self._check_inputs(logits, target)
        return self._per_label(logits, target)

    @classmethod
    def has_per_label(cls) -> bool:
        """Whether :meth:`per_label` is available: a multi-label loss that implements ``_per_label``,
        and no subclass below it redefines ``_per_sample`` (its per-label terms would be another
        loss's)."""
        if cls.task != "multilabel":
            return False
        label_owner, sample_owner = (next(k for k in cls.__mro__ if name in vars(k))
                                     for name in ("_per_label", "_per_sample"))
        return label_owner is not ImbalanceLoss and issubclass(label_owner, sample_owner)

    def _per_sample(self, logits, target):  # a multi-label loss's mean over its label terms
        return self._per_label(logits, target).mean(dim=1)

    def _per_label(self, logits, target):  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def _n_classes(self):
        """Number of classes known from the buffers, or None."""
        for name, buf in self.named_buffers(recurse=False):
            if name.endswith("_") and buf.ndim == 1:
                return buf.shape[0]
        return None

    def _check_inputs(self, logits, target):
        name = type(self).__name__
        if not isinstance(logits, torch.Tensor) or not isinstance(target, torch.Tensor):
            raise TypeError(f"{name} expects torch tensors for logits and target.")
        if logits.ndim != 2:
            raise ValueError(f"{name}: logits must have shape (N, C), got {tuple(logits.shape)}.")
        if not logits.is_floating_point():
            raise TypeError(f"{name}: logits must be floating point, got {logits.dtype}.")
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()
        n_classes = self._n_classes()
        if n_classes is not None and logits.shape[1] != n_classes:
            raise ValueError(
                f"{name}: logits have {logits.shape[1]} classes but the loss was built "
                f"for {n_classes}."
            )
        if self.task == "multiclass":
            if target.ndim != 1 or target.shape[0] != logits.shape[0]:
                raise ValueError(
                    f"{name}: multi-class target must have shape ({logits.shape[0]},), "
                    f"got {tuple(target.shape)}."
                )
            if target.is_floating_point() or target.dtype == torch.bool:
                raise TypeError(f"{name}: multi-class target must hold integer class indices.")
            target = target.long()
        else:
            if target.shape != logits.shape:
                raise ValueError(
                    f"{name}: multi-label target must have the shape of the logits "
                    f"{tuple(logits.shape)}, got {tuple(target.shape)}."
                )
            target = target.to(logits.dtype)
            # a negative loss otherwise; on CPU only, where it costs no device sync per batch (the
            # estimators check y at fit)
            if target.device.type == "cpu" and not bool(((target >= 0) & (target <= 1)).all()):
                raise ValueError(f"{name}: multi-label targets must lie in [0, 1] (0/1 indicators), got values "
                                 f"from {target.min().item():g} to {target.max().item():g}.")
        return logits, target

    def extra_repr(self):
        return f"reduction={self.reduction!r}"

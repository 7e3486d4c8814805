"""HAMR's weight network (WNet): per-sample loss → importance weight (Rao et al., 2025, §2.1)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

# WEIGHT_CLIP lives in the neutral neighbourhood module, shared with the hardness sampler.
from ...utils._neighbors import WEIGHT_CLIP

__all__ = ["WeightNet", "batch_zscore", "batch_weights", "class_size_features", "label_size_features",
           "loss_weighted_mean", "make_wnet_optimizer"]


class WeightNet(nn.Module):
    """``Linear(1 + n_features, hidden) → ReLU → Linear(hidden, 1)``; the output bias starts at 0.1.

    Maps a z-scored per-sample loss (and ``n_features`` per-sample features, such as the
    standardised log size of the sample's class) to a weight logit (:func:`batch_weights`
    applies the sigmoid, the batch mean-normalisation and the clipping). The layer names
    ``linear1`` / ``linear2`` match the HAMR reference, so its state dicts load.

    Parameters
    ----------
    hidden_size : int, default=100
    output_bias : float, default=0.1
    n_features : int, default=0
        Inputs besides the loss (``HAMRTraining(class_aware=True)``: 1, the class size; with
        ``weight_unit="label"``: 2, the term's sign and its label's size).

    Examples
    --------
    >>> import torch
    >>> net = WeightNet()
    >>> net(torch.zeros(3, 1)).shape
    torch.Size([3, 1])
    >>> round(net.linear2.bias.item(), 6)
    0.1
    """

    def __init__(self, hidden_size: int = 100, output_bias: float = 0.1, n_features: int = 0):
        super().__init__()
        self.linear1 = nn.Linear(1 + int(n_features), int(hidden_size))
        self.linear2 = nn.Linear(int(hidden_size), 1)
        nn.init.constant_(self.linear2.bias, float(output_bias))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Weight logits for ``z`` of shape ``(B, 1 + n_features)`` (returns ``(B, 1)``)."""
        return self.linear2(torch.relu(self.linear1(z)))


def batch_zscore(losses: torch.Tensor) -> torch.Tensor:
    """Batch z-score of detached losses: ``(l − mean) / max(std, 1e-6)`` (population std).

    A batch of one gives 0.

    Examples
    --------
    >>> import torch
    >>> batch_zscore(torch.tensor([1.0, 3.0]))
    tensor([-1.,  1.])
    >>> batch_zscore(torch.tensor([5.0]))
    tensor([0.])
    """
    losses = losses.detach().reshape(-1)
    if losses.numel() == 0:
        raise ValueError("losses is empty: a batch needs at least one sample.")
    if losses.numel() == 1:
        return torch.zeros_like(losses)
    std = losses.std(unbiased=False).clamp(min=1e-6)
    return (losses - losses.mean()) / std


def class_size_features(labels, n_classes: int) -> np.ndarray:
    """A class-aware WNet's class input: the log of each class's training size, standardised over
    the classes (``(log n_k − mean) / std``; all 0 when the classes are equal).

    With it WNet can learn a weight that depends on how rare a sample's class is, as class
    weighting does, and on its loss (CMW-Net, Shu et al., 2023, feeds WNet the class size likewise).

    Parameters
    ----------
    labels : array-like of int
        Encoded single-label training targets in ``[0, n_classes)``.
    n_classes : int

    Returns
    -------
    features : ndarray of shape (n_classes,), float32

    Examples
    --------
    >>> class_size_features([0, 0, 0, 0, 0, 0, 0, 0, 1, 2], 3).round(3)
    array([ 1.414, -0.707, -0.707], dtype=float32)
    >>> class_size_features([0, 1], 2)
    array([0., 0.], dtype=float32)
    """
    return _standardised_log(np.bincount(np.asarray(labels, dtype=np.int64), minlength=int(n_classes)))


def label_size_features(Y) -> np.ndarray:
    """The multi-label counterpart of :func:`class_size_features`: the standardised log of each
    label's number of positive training samples (``Y``: the 0/1 label matrix).

    Examples
    --------
    >>> label_size_features([[1, 0], [1, 0], [1, 1]]).round(3)
    array([ 1., -1.], dtype=float32)
    """
    return _standardised_log(np.asarray(Y, dtype=np.float64).sum(axis=0))


def _standardised_log(counts) -> np.ndarray:
    sizes = np.log(np.asarray(counts, dtype=np.float64) + 1.0)
    std = sizes.std()
    out = (sizes - sizes.mean()) / std if std > 1e-12 else np.zeros_like(sizes)
    return out.astype(np.float32)


def loss_weighted_mean(weights: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
    """Each row's weights averaged by their losses, ``Σ_j w_ij l_ij / Σ_j l_ij``: the one weight
    that scales the row's whole loss as its per-term weights do (the plain mean for a row of
    zero loss).

    Examples
    --------
    >>> import torch
    >>> loss_weighted_mean(torch.tensor([[4.0, 0.5], [2.0, 1.0]]), torch.tensor([[1.0, 3.0], [0.0, 0.0]]))
    tensor([1.3750, 1.5000])
    """
    total = losses.sum(dim=-1)
    weighted = (weights * losses).sum(dim=-1) / total.clamp(min=torch.finfo(total.dtype).tiny)
    return torch.where(total > 0, weighted, weights.mean(dim=-1))


def batch_weights(
    wnet: nn.Module, losses: torch.Tensor, *, detach_mean: bool = False,
    features: torch.Tensor | None = None, groups: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-sample weights of a batch from WNet.

    ``z = batch_zscore(losses.detach())``, ``w = sigmoid(wnet(z))``, ``w ← w / mean(w)``
    (mean 1 in the batch, or within each group), then ``w ← clip(w, 0.1, 8.0)``. The result keeps its graph to the
    WNet parameters (wrap the call in ``torch.no_grad()`` for the post-meta weights); it never
    depends on the task model.

    Parameters
    ----------
    wnet : nn.Module
        Usually a :class:`WeightNet`; called on a ``(B, 1)`` tensor on its own device/dtype.
    losses : tensor of shape (B,)
        Per-sample losses (detached here).
    detach_mean : bool, default=False
        Treat the batch mean as a constant in the backward pass, as the reference code does
        (``w / w.mean().detach()``). The forward values are the same either way; the default
        differentiates through the normalisation, so the meta-gradient only moves weight between
        samples of the batch.
    features : tensor of shape (B, n_features), optional
        WNet's other inputs, next to the z-scored loss (constants: no gradient flows to them).
    groups : tensor of shape (B,) of ints, optional
        Normalise to mean 1 within each group (``HAMRTraining(weight_norm="class")``: the
        samples' classes), so the weights move loss only between samples of one group and
        leave each group's total as the loss gives it.

    Returns
    -------
    w : tensor of shape (B,)
        On ``losses``' device, in WNet's dtype.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> w = batch_weights(WeightNet(), torch.tensor([0.1, 0.5, 2.0]))
    >>> w.shape, round(w.mean().item(), 5)
    (torch.Size([3]), 1.0)

    A class-aware WNet also reads each sample's class feature:

    >>> net = WeightNet(n_features=1)
    >>> batch_weights(net, torch.tensor([0.1, 0.5]), features=torch.tensor([[1.0], [-1.0]])).shape
    torch.Size([2])

    Normalised within each class, a class's weights sum to its count in the batch:

    >>> w = batch_weights(WeightNet(), torch.tensor([0.1, 0.5, 2.0, 3.0]), groups=torch.tensor([0, 0, 0, 1]))
    >>> round(w[:3].sum().item(), 5), round(w[3].item(), 5)
    (3.0, 1.0)
    """
    x = batch_zscore(losses.float()).unsqueeze(-1)
    if features is not None:
        x = torch.cat([x, features.detach().reshape(len(x), -1).to(x)], dim=1)
    p = next(wnet.parameters(), None)
    if p is not None:
        x = x.to(device=p.device, dtype=p.dtype)
    # WNet in its own precision even inside the task's autocast (bf16 would coarsen the weights)
    with torch.autocast(device_type=x.device.type, enabled=False):
        w = torch.sigmoid(wnet(x)).reshape(-1)
    if groups is None:
        mean = w.mean()
    else:  # each sample's group mean
        g = torch.unique(groups.reshape(-1).to(w.device), return_inverse=True)[1]
        mean = (torch.zeros(int(g.max()) + 1, dtype=w.dtype, device=w.device).index_add(0, g, w)
                / torch.bincount(g).to(w.dtype))[g]
    mean = mean.clamp(min=torch.finfo(w.dtype).tiny)  # only a 0 mean: 1e-12 broke the mean 1 below logit -27.6
    if detach_mean:
        mean = mean.detach()
    w = (w / mean).clamp(min=WEIGHT_CLIP[0], max=WEIGHT_CLIP[1])
    return w.to(losses.device)


def make_wnet_optimizer(
    wnet: nn.Module, lr: float, weight_decay: float = 1e-4
) -> torch.optim.Adam:
    """Adam over WNet's parameters (METHODS: lr ``wnet_lr`` = 1e-4 CLS / 3e-4 NER, wd 1e-4).

    Examples
    --------
    >>> opt = make_wnet_optimizer(WeightNet(), lr=1e-4)
    >>> opt.defaults["lr"], opt.defaults["weight_decay"]
    (0.0001, 0.0001)
    """
    return torch.optim.Adam(wnet.parameters(), lr=float(lr), weight_decay=float(weight_decay))

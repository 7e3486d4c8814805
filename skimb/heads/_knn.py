"""A nearest-neighbour memory beside the trained head: ``head="knn"``.

The prediction interpolates the stage-1 head's probabilities with the label distribution of the
``k`` training examples nearest in the stage-1 feature space (cosine), as kNN-LM does for
language models (Khandelwal et al., ICLR 2020) and kNN-BERT for text classification (Li et al.,
2021). Rare classes gain because a test text close to a few training texts of its class gets
their votes even where the linear head's boundary favours a frequent neighbour class.
"""

from __future__ import annotations

from numbers import Integral, Real

import torch
import torch.nn.functional as F
from torch import nn

from ..utils._param_validation import Interval
from ..utils._warnings import warn_caller
from ._components import Head, register_head, stage2_rows

__all__ = ["KNNHead", "KNNInterpolatedHead"]

#: Query rows per similarity block, so that a block holds about this many similarities.
_BLOCK_SIMILARITIES = 1 << 22
_EPS = 1e-6


class MixedHead(nn.Module):
    """The stage-1 head ``base`` mixed with a second distribution over the classes,
    ``p = (1 - weight) * p_head + weight * p_other``, returned as logits: ``log p`` (multi-class, so
    ``softmax`` gives ``p`` back) or ``logit(p)`` per label (multi-label). Subclasses give
    ``p_other`` in :meth:`other_distribution`; features may have leading dimensions (tokens)."""

    def __init__(self, base: nn.Linear, *, weight: float, multilabel: bool):
        super().__init__()
        self.base = base
        self.weight, self.multilabel = float(weight), bool(multilabel)

    def other_distribution(self, x):
        """``p_other`` of each row of ``x`` (2-D)."""
        raise NotImplementedError

    def forward(self, x):
        lead = x.shape[:-1]
        flat = x.reshape(-1, x.shape[-1])
        z = self.base(flat).float()
        p_other = self.other_distribution(flat)
        if self.multilabel:
            p = ((1 - self.weight) * torch.sigmoid(z) + self.weight * p_other).clamp(_EPS, 1 - _EPS)
            logits = torch.log(p) - torch.log1p(-p)
        else:
            logits = torch.log(((1 - self.weight) * torch.softmax(z, dim=-1) + self.weight * p_other).clamp_min(_EPS))
        return logits.reshape(*lead, z.shape[-1])


class KNNInterpolatedHead(MixedHead):
    """``p = (1 - weight) * p_head + weight * p_knn``, returned as logits.

    Multi-class: ``p_head = softmax(base(x))``, ``p_knn`` the share of each class among the ``k``
    nearest memory rows; the logits are ``log p`` (so ``softmax`` gives ``p`` back). Multi-label:
    per label, ``p_head = sigmoid(base(x))`` and ``p_knn`` the share of neighbours carrying it; the
    logits are ``logit(p)``. Features may have leading dimensions (token classification).

    Examples
    --------
    >>> base = nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = base.weight.zero_(), base.bias.zero_()  # the head alone says 50/50
    >>> memory = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    >>> head = KNNInterpolatedHead(base, memory, torch.tensor([1, 1, 0]), k=2, weight=0.5, multilabel=False)
    >>> with torch.no_grad():  # both neighbours are class 1
    ...     head(torch.tensor([[1.0, 0.05]])).softmax(-1)
    tensor([[0.2500, 0.7500]])
    """

    def __init__(self, base: nn.Linear, memory, memory_targets, *, k: int, weight: float, multilabel: bool):
        super().__init__(base, weight=weight, multilabel=multilabel)
        self.k = int(k)
        self.register_buffer("memory", F.normalize(torch.as_tensor(memory, dtype=torch.float32), dim=-1))
        targets = torch.as_tensor(memory_targets)
        self.register_buffer("memory_targets", targets.float() if multilabel else targets.long())

    def neighbour_distribution(self, x):
        """Each row's label distribution over its ``k`` nearest memory rows (cosine)."""
        n_classes = self.base.out_features
        k = min(self.k, len(self.memory))
        block = max(1, _BLOCK_SIMILARITIES // max(1, len(self.memory)))
        out = []
        for chunk in F.normalize(x.float(), dim=-1).split(block):
            idx = (chunk @ self.memory.T).topk(k, dim=1).indices
            neighbours = self.memory_targets[idx]
            if not self.multilabel:
                neighbours = F.one_hot(neighbours, n_classes).float()
            out.append(neighbours.mean(1))
        return torch.cat(out)

    other_distribution = neighbour_distribution

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a restored structure starts with an empty memory: take the saved one's size
        for name in ("memory", "memory_targets"):
            saved = state_dict.get(prefix + name)
            if saved is not None:
                setattr(self, name, torch.empty_like(saved, device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self):
        return f"k={self.k}, weight={self.weight}, memory={tuple(self.memory.shape)}"


@register_head("knn")
class KNNHead(Head):
    """Keep the stage-1 head and add a nearest-neighbour memory of the training rows' features.

    Stage 2 trains nothing: it stores the cached penultimate features of the training rows (the
    same ones CALoRA and cRT train on, shared by every candidate of a search over ``k`` and
    ``weight``), and prediction mixes the head's probabilities with the labels of the ``k``
    nearest stored rows (:class:`KNNInterpolatedHead`). With ``threshold="tuned"`` the per-class
    offsets are fitted on the mixed scores. The memory is saved with the model
    (``N x hidden`` floats).

    Rows of weight 0 (``sample_weight``, or a ``class_weight`` of 0) are left out of the memory;
    positive weights do not reweight it: every stored row casts one vote. Token classification
    stores one row per token, the ignored ones (target < 0) left out.

    Parameters
    ----------
    k : int, default=10
        Neighbours per prediction (cosine similarity); at most the rows in the memory (a larger
        ``k`` is capped to them, with a warning at fit).
    weight : float, default=0.5
        Share of the neighbours' label distribution in the prediction (0: the stage-1 head, ``k``
        then ignored, with a warning).

    Examples
    --------
    >>> KNNHead(k=5).has_stage2
    True
    """

    has_stage2 = True
    linear_stage1 = True
    _stage2_params = ("k", "weight")
    _parameter_constraints = {
        "k": [Interval(Integral, 1, None)],
        "weight": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(self, k=10, weight=0.5):
        self.k = k
        self.weight = weight

    def ignored_params(self) -> dict:
        if self.weight == 0:
            return dict.fromkeys(self._changed(("k",)), "weight=0 predicts with the stage-1 head alone")
        return {}

    def fit_stage2(self, module, features, targets, weights, *, loss_fn, device, seed, batch_size, multilabel,
                   verbose=0, classes=None, stage1_balance="none"):
        targets = torch.as_tensor(targets)
        keep = stage2_rows(targets, weights)
        n_rows = int(keep.sum())
        if self.k > n_rows:
            warn_caller(f"KNNHead: head__k={self.k} is more than the {n_rows} training rows in the memory; each "
                        f"prediction votes over all {n_rows}: give head__k <= {n_rows}.")
        module.head = KNNInterpolatedHead(module.head, torch.as_tensor(features)[keep], targets[keep], k=self.k,
                                          weight=self.weight, multilabel=multilabel).to(device).eval()
        return {"memory_size_": n_rows}

    def restore(self, module, n_classes, *, multilabel):
        hidden = module.head.in_features
        module.head = KNNInterpolatedHead(module.head, torch.empty(0, hidden), torch.empty(0), k=self.k,
                                          weight=self.weight, multilabel=multilabel)

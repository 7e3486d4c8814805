"""Per-sample hardness for HAMR's region resampling (Rao et al., 2025, §2.2).

:class:`HardnessTracker` keeps the hardness ``m``; :func:`sampling_probabilities` and
:func:`draw_epoch_indices` / :func:`draw_indices` (in the neutral :mod:`skimb.utils._neighbors`, shared
with the hardness sampler) turn it into one epoch of sample ids.
"""

from __future__ import annotations

import numpy as np

from ...utils._neighbors import (
    _check_indices,
    _top_share,
    DRAW_SCHEMES,
    draw_epoch_indices,
    draw_indices,
    sampling_probabilities,
)

__all__ = ["HardnessTracker", "sampling_probabilities", "draw_epoch_indices", "draw_indices", "DRAW_SCHEMES"]

RULES = ("ema", "reference")


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


class HardnessTracker:
    """Per-sample hardness ``m`` of the training set, updated from the weights used each step.

    Parameters
    ----------
    n_samples : int
        Training-set size N.
    rule : {"ema", "reference"}, default="ema"
        ``"ema"`` (the paper, the default): ``m_i ← β·m_i + (1 − β)·w_i`` for the samples of the
        batch only, others unchanged; ``m`` starts at 1 (the mean weight).
        ``"reference"`` (the reference code): every step ``m ← decay·m`` for all samples,
        ``m[batch] += (1 − decay)·w``, then ``m += eps; m /= sum(m)``; ``m`` starts at 1/N.
        (The reference rule makes ``m`` track recency rather than hardness.)
    momentum : float in [0, 1), default=0.5
        β of the ``"ema"`` rule (a sample is seen about once an epoch, so near 0.5, not 0.99).
    decay : float in [0, 1), default=0.99
        Global decay of the ``"reference"`` rule.
    eps : float, default=1e-6
        Additive floor of the ``"reference"`` rule (1e-6 in the reference CLS script, 1e-4 in
        its NER script).

    Attributes
    ----------
    m : ndarray of shape (n_samples,), float64
        The raw hardness; feed it to :func:`sampling_probabilities`.
    n_updates : int
        Number of :meth:`update` calls.

    Notes
    -----
    A sample drawn several times in one batch (draws are with replacement) is updated once,
    with the mean of its weights, under ``"ema"``; under ``"reference"`` its contributions add
    up, as with the reference's ``index_add_``.

    Examples
    --------
    >>> t = HardnessTracker(4, momentum=0.5)
    >>> t.update([1, 2], [3.0, 0.2])
    >>> t.m
    array([1. , 2. , 0.6, 1. ])
    >>> t.hard_set(0.25)
    array([1])
    >>> t.hardness_.round(3)
    array([0.217, 0.435, 0.13 , 0.217])
    """

    def __init__(
        self,
        n_samples: int,
        *,
        rule: str = "ema",
        momentum: float = 0.5,
        decay: float = 0.99,
        eps: float = 1e-6,
    ):
        n_samples = int(n_samples)
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}.")
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}.")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}.")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}.")
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0, got {eps}.")
        self.n_samples = n_samples
        self.rule = rule
        self.momentum = float(momentum)
        self.decay = float(decay)
        self.eps = float(eps)
        self.reset()

    def reset(self) -> None:
        """Back to the initial state (1 under ``"ema"``, 1/N under ``"reference"``)."""
        init = 1.0 if self.rule == "ema" else 1.0 / self.n_samples
        self.m = np.full(self.n_samples, init, dtype=np.float64)
        self.n_updates = 0

    def update(self, indices, weights) -> None:
        """Record the weights ``w`` used for the batch's samples ``indices`` (training-set ids).

        Parameters
        ----------
        indices : array-like of int, shape (B,)
            Positions of the batch's samples in the training set (numpy or torch).
        weights : array-like of float, shape (B,)
            The weights actually used for the update (HAMR: the post-meta weights).
        """
        idx = _check_indices(indices, self.n_samples, "indices")
        w = _to_numpy(weights).astype(np.float64).reshape(-1)
        if w.shape != idx.shape:
            raise ValueError(f"indices has {idx.size} entries but weights has {w.size}.")
        if not np.all(np.isfinite(w)):
            raise ValueError("weights contains NaN or infinite values.")
        if self.rule == "ema":
            if idx.size:
                uniq, inv = np.unique(idx, return_inverse=True)
                w_mean = np.bincount(inv, weights=w) / np.bincount(inv)
                beta = self.momentum
                self.m[uniq] = beta * self.m[uniq] + (1.0 - beta) * w_mean
        else:
            self.m *= self.decay
            np.add.at(self.m, idx, (1.0 - self.decay) * w)
            self.m += self.eps
            self.m /= self.m.sum()
        self.n_updates += 1

    @property
    def hardness_(self) -> np.ndarray:
        """``m`` normalised to sum to 1 (a new array)."""
        return self.m / self.m.sum()

    def hard_set(self, ratio: float) -> np.ndarray:
        """Ids of the ``ratio`` share of samples with the largest ``m``, largest first.

        ``floor(ratio · N)`` samples, at least one; ties go to the lower id.
        """
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f"ratio must be in (0, 1], got {ratio}.")
        return _top_share(self.m, ratio)

    def state_dict(self) -> dict:
        """Everything needed to resume (for checkpoints)."""
        return {
            "m": self.m.copy(),
            "n_updates": self.n_updates,
            "rule": self.rule,
            "momentum": self.momentum,
            "decay": self.decay,
            "eps": self.eps,
        }

    def load_state_dict(self, state: dict) -> None:
        m = np.asarray(state["m"], dtype=np.float64).reshape(-1)
        if m.size != self.n_samples:
            raise ValueError(f"state holds {m.size} samples, this tracker {self.n_samples}.")
        self.m = m.copy()
        self.n_updates = int(state.get("n_updates", 0))
        for key in ("rule", "momentum", "decay", "eps"):
            if key in state:
                setattr(self, key, state[key])

    def __repr__(self) -> str:
        return (
            f"HardnessTracker(n_samples={self.n_samples}, rule={self.rule!r}, "
            f"momentum={self.momentum}, n_updates={self.n_updates})"
        )

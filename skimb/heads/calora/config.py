"""Configuration of a CALoRA (class-aware LoRA expert routing) head.

See Zhu, Wei and Cai, *Adaptive Fine-Tuning for Class Imbalance in NLP*, §3 (Eq. 2-4).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

__all__ = ["CALoRAConfig", "ROUTINGS", "INITS"]

#: Routing rules understood by :func:`skimb.heads.route_from_logits`: name -> gate function,
#: filled by :func:`skimb.heads.register_routing` (``"pseudo"``, ``"topk"``, ``"oracle"``, ``"soft"``).
ROUTINGS: dict = {}
#: Adapter initialisations understood by :class:`skimb.heads.ClassRoutedLoRA`.
INITS = ("kaiming", "gaussian")


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"CALoRAConfig.{name} must be an integer, got {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"CALoRAConfig.{name} must be >= {minimum}, got {value}.")


@dataclass(frozen=True)
class CALoRAConfig:
    """Hyperparameters of a class-routed LoRA layer (immutable, validated on creation).

    Parameters
    ----------
    n_classes : int
        C, the number of classes (multi-label: labels, NER: tags); one adapter per class.
    rank : int, default 8
        r, the rank of every per-class adapter ``B_i A_i`` (paper: 1 on CIFAR-10-LT,
        8 on CoNLL-2003; studied 1, 2, 4, 8).
    k : int, default 2
        How many adapters fire per input for ``"topk"`` and ``"soft"`` routing, and for
        ``"oracle"`` routing at inference. Must satisfy ``1 <= k <= n_classes`` for every
        routing (``"pseudo"`` always fires exactly one adapter; ``k`` is still validated).
        ``k == n_classes`` with ``"topk"`` degenerates to one wide LoRA of rank ``C*r``.
    routing : {"topk", "pseudo", "oracle", "soft"}, default "topk"
        ``"pseudo"``: the stage-1 argmax class (Eq. 3). ``"topk"``: the k classes the stage-1
        model ranks highest, 0/1 gates (Eq. 4). ``"oracle"``: the true label(s) in training,
        top-k at inference. ``"soft"`` (beyond the paper, as in MixLoRA): the top-k stage-1
        probabilities renormalised to sum 1 as gate weights.
    alpha : float or None, default None
        LoRA scaling numerator; the adapter output is multiplied by ``scaling = alpha / rank``
        (peft's ``lora_alpha / r``). ``None`` means ``alpha = rank``, i.e. ``scaling = 1``, so
        changing ``rank`` in a grid search does not also change the effective step size.
    dropout : float, default 0.0
        Dropout on the adapter input only (peft's ``lora_dropout``); the frozen path never
        sees dropout. Must lie in ``[0, 1)``.
    init : {"kaiming", "gaussian"}, default "kaiming"
        peft-like initialisation. ``"kaiming"`` (peft's ``init_lora_weights=True``): A
        kaiming-uniform with ``a=sqrt(5)`` (uniform on ``±1/sqrt(d_in)``), B zeros.
        ``"gaussian"``: A normal with std ``1/rank``, B zeros. B = 0 in both cases, so a
        freshly wrapped layer computes exactly the frozen layer's output.

    >>> cfg = CALoRAConfig(n_classes=4, rank=4, k=2)
    >>> cfg.scaling
    1.0
    >>> CALoRAConfig(n_classes=4, rank=4, alpha=8).scaling
    2.0
    >>> CALoRAConfig(n_classes=3, k=4)
    Traceback (most recent call last):
    ...
    ValueError: CALoRAConfig.k must satisfy 1 <= k <= n_classes (=3), got k=4.
    """

    n_classes: int
    rank: int = 8
    k: int = 2
    routing: str = "topk"
    alpha: float | None = None
    dropout: float = 0.0
    init: str = "kaiming"

    def __post_init__(self) -> None:
        _check_int("n_classes", self.n_classes, 1)
        _check_int("rank", self.rank, 1)
        if isinstance(self.k, bool) or not isinstance(self.k, numbers.Integral):
            raise TypeError(f"CALoRAConfig.k must be an integer, got {type(self.k).__name__} {self.k!r}.")
        if not 1 <= self.k <= self.n_classes:
            raise ValueError(
                f"CALoRAConfig.k must satisfy 1 <= k <= n_classes (={self.n_classes}), got k={self.k}."
            )
        if not isinstance(self.routing, str) or self.routing not in ROUTINGS:
            raise ValueError(f"CALoRAConfig.routing must be one of {tuple(ROUTINGS)}, got {self.routing!r}.")
        if self.alpha is not None:
            if isinstance(self.alpha, bool) or not isinstance(self.alpha, numbers.Real):
                raise TypeError(
                    f"CALoRAConfig.alpha must be a positive number or None, got {type(self.alpha).__name__}."
                )
            if not (math.isfinite(self.alpha) and self.alpha > 0):
                raise ValueError(f"CALoRAConfig.alpha must be a finite number > 0 (or None), got {self.alpha}.")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, numbers.Real):
            raise TypeError(f"CALoRAConfig.dropout must be a number in [0, 1), got {type(self.dropout).__name__}.")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"CALoRAConfig.dropout must lie in [0, 1), got {self.dropout}.")
        if not isinstance(self.init, str) or self.init not in INITS:
            raise ValueError(f"CALoRAConfig.init must be one of {INITS}, got {self.init!r}.")

    @property
    def scaling(self) -> float:
        """``alpha / rank``; 1.0 when ``alpha`` is None."""
        return 1.0 if self.alpha is None else float(self.alpha) / self.rank

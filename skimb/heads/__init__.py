"""Classification heads with class-specific parameters (CALoRA, ``skimb.heads.calora``)."""

from .calora import (
    INITS,
    ROUTINGS,
    CALoRAConfig,
    ClassRoutedLoRA,
    fit_calora_head,
    route_from_logits,
    topk_coverage,
    true_label_rank,
)

__all__ = [
    "CALoRAConfig",
    "ClassRoutedLoRA",
    "fit_calora_head",
    "route_from_logits",
    "topk_coverage",
    "true_label_rank",
    "ROUTINGS",
    "INITS",
]

"""CALoRA: class-aware LoRA expert routing (Zhu et al., *Adaptive Fine-Tuning
for Class Imbalance in NLP*, §3).

One low-rank adapter per class around a frozen ``nn.Linear``; the stage-1 model's ranking
decides which adapters fire (``h = W0 x + B M A x``). Stage 2 trains only the adapters, on
cached penultimate features (:func:`fit_calora_head`), or, with adapters on backbone layers too,
on the training texts (:func:`fit_calora_layers`). Routing rules are registered
(:func:`register_routing`), as losses are.
"""

from .backbone import LayerRouting, RoutedHead, RoutedLinear, fit_calora_layers, install_routed_layers, select_linear_layers
from .config import INITS, ROUTINGS, CALoRAConfig
from .layer import ClassRoutedLoRA, class_adapters_disabled
from .routing import register_routing, route_from_logits, topk_coverage, true_label_rank
from .train import fit_calora_head

__all__ = [
    "CALoRAConfig",
    "ClassRoutedLoRA",
    "class_adapters_disabled",
    "fit_calora_head",
    "fit_calora_layers",
    "install_routed_layers",
    "select_linear_layers",
    "LayerRouting",
    "RoutedLinear",
    "RoutedHead",
    "register_routing",
    "route_from_logits",
    "topk_coverage",
    "true_label_rank",
    "ROUTINGS",
    "INITS",
]

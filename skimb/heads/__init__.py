"""Classification heads: the head components the estimators compose (``head="linear"`` or
``"calora"``, :func:`register_head` for more) and CALoRA's building blocks
(``skimb.heads.calora``), the decoupled second stages ``head="crt"`` and ``"tau_norm"``, and the
nearest-neighbour memory ``head="knn"``, the class prototypes ``head="prototype"``; ``head="cosine"``
trains a normalised classifier."""

from ._components import HEADS, STAGE1_BALANCES, CALoRAHead, Head, LinearHead, register_head
from ._cosine import CosineHead, CosineLinear
from ._decoupled import CRTHead, TauNormHead
from ._knn import KNNHead, KNNInterpolatedHead
from ._prototype import PrototypeHead, PrototypeInterpolatedHead, class_prototypes, fit_catch_all_threshold
from .calora import (
    INITS,
    ROUTINGS,
    CALoRAConfig,
    ClassRoutedLoRA,
    class_adapters_disabled,
    fit_calora_head,
    fit_calora_layers,
    register_routing,
    select_linear_layers,
    route_from_logits,
    topk_coverage,
    true_label_rank,
)

__all__ = [
    "Head",
    "LinearHead",
    "CALoRAHead",
    "CRTHead",
    "TauNormHead",
    "KNNHead",
    "CosineHead",
    "CosineLinear",
    "KNNInterpolatedHead",
    "PrototypeHead",
    "PrototypeInterpolatedHead",
    "class_prototypes",
    "fit_catch_all_threshold",
    "HEADS",
    "STAGE1_BALANCES",
    "register_head",
    "CALoRAConfig",
    "ClassRoutedLoRA",
    "class_adapters_disabled",
    "fit_calora_head",
    "fit_calora_layers",
    "select_linear_layers",
    "register_routing",
    "route_from_logits",
    "topk_coverage",
    "true_label_rank",
    "ROUTINGS",
    "INITS",
]

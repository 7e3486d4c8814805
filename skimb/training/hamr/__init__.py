"""HAMR (hardness-aware meta-resample): the estimator-independent building blocks.

Adaptive weight estimation: :class:`WeightNet`, :func:`batch_weights`, :func:`class_size_features`,
:func:`label_size_features`, :func:`loss_weighted_mean`, :func:`make_wnet_optimizer`, :func:`meta_step`
(bi-level step, modes ``"full"``, ``"first_order"``, ``"head"``), :func:`sequence_loss` (NER
per-sentence loss) and the balanced
meta set (:func:`build_balanced_meta_set`, :func:`build_balanced_meta_set_ner`), or GBC's
(:func:`gbc_meta_set` over :func:`head_gradients`).

Hardness-aware region resampling: :class:`HardnessTracker` (``"ema"`` or ``"reference"``
rule), :func:`build_index` / :func:`knn_search` / :func:`neighbor_boost` /
:func:`recall_at_k` (FAISS cosine neighbourhoods), :func:`sampling_probabilities`,
:func:`draw_epoch_indices` and :func:`draw_indices`.

Training (``training="hamr"`` in both transformer estimators): :class:`HAMRTraining` (the
component: HAMR's parameters, constraints and defaults), :class:`HAMRNet` (the skorch net with
the bi-level step), :class:`HAMRCallback` (per-epoch resampling and kNN boost),
:class:`HAMRFit` (one fit's state), :func:`split_meta_set` and
:func:`build_balanced_meta_set_multilabel` (the meta set inside ``fit``),
:func:`balanced_meta_weights` and :func:`meta_loss_function` (the meta objective).

The method: Rao, Han and Huang (2025), *Model-Agnostic Meta Learning for Class Imbalance
Adaptation*, §2; the choices made here: ``docs/hamr.md``.
"""

from ._hardness import DRAW_SCHEMES, HardnessTracker, draw_epoch_indices, draw_indices, sampling_probabilities
from ._meta import META_MODES, MetaStepResult, meta_step, sequence_loss
from ._meta_set import (GBC_MAX_ROWS_PER_CLASS, build_balanced_meta_set, build_balanced_meta_set_ner, count_entity_spans,
                        gbc_meta_set, head_gradients)
from ._neighbors import BlockedIVFIndex, build_index, knn_search, neighbor_boost, recall_at_k
from ._trainer import (META_HOLDOUT_FRACTION, HAMRCallback, HAMRFit, HAMRNet, balanced_meta_weights,
                       build_balanced_meta_set_multilabel, meta_loss_function, split_meta_set)
from ._component import HAMRTraining
from ._wnet import (WeightNet, batch_weights, batch_zscore, class_size_features, label_size_features,
                    loss_weighted_mean, make_wnet_optimizer)

__all__ = [
    "WeightNet",
    "batch_zscore",
    "batch_weights",
    "class_size_features",
    "label_size_features",
    "loss_weighted_mean",
    "make_wnet_optimizer",
    "HardnessTracker",
    "sampling_probabilities",
    "draw_epoch_indices",
    "draw_indices",
    "DRAW_SCHEMES",
    "BlockedIVFIndex",
    "build_index",
    "knn_search",
    "neighbor_boost",
    "recall_at_k",
    "META_MODES",
    "MetaStepResult",
    "meta_step",
    "sequence_loss",
    "build_balanced_meta_set",
    "build_balanced_meta_set_ner",
    "count_entity_spans",
    "gbc_meta_set",
    "head_gradients",
    "GBC_MAX_ROWS_PER_CLASS",
    "HAMRTraining",
    "HAMRFit",
    "HAMRNet",
    "HAMRCallback",
    "META_HOLDOUT_FRACTION",
    "split_meta_set",
    "build_balanced_meta_set_multilabel",
    "balanced_meta_weights",
    "meta_loss_function",
]

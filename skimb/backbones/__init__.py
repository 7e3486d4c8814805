"""Backbones: offline loading, tokenising, length-grouped batching, pooling and feature caches."""

from ._batching import (EncodedTextDataset, LengthGroupedBatchSampler, pad_collate, sorted_batches,
                        tokenize)
from ._cache import FEATURE_CACHE_ENV, FeatureCache, feature_cache
from ._loading import DEFAULT_BACKBONE, backbone_config, backbone_identity, load_backbone, resolve_backbone
from ._finetune import FINETUNES, Finetune, FullFinetune, HeadFinetune, LoRAFinetune, register_finetune
from ._modules import (ENCODE_CHUNK, SequenceClassifier, TextEncoder, autocast, autocast_precision, encode_batches,
                       encode_texts)
from ._pooling import POOLING_OPTIONS, POOLINGS, backbone_pooler, cls_pool, mean_pool

__all__ = [
    "DEFAULT_BACKBONE",
    "FINETUNES",
    "Finetune",
    "FullFinetune",
    "HeadFinetune",
    "LoRAFinetune",
    "register_finetune",
    "autocast",
    "autocast_precision",
    "EncodedTextDataset",
    "FeatureCache",
    "LengthGroupedBatchSampler",
    "POOLINGS",
    "POOLING_OPTIONS",
    "SequenceClassifier",
    "TextEncoder",
    "backbone_config",
    "backbone_identity",
    "FEATURE_CACHE_ENV",
    "backbone_pooler",
    "cls_pool",
    "encode_batches",
    "encode_texts",
    "ENCODE_CHUNK",
    "feature_cache",
    "load_backbone",
    "mean_pool",
    "pad_collate",
    "resolve_backbone",
    "sorted_batches",
    "tokenize",
]

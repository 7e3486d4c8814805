"""FAISS neighbourhoods for HAMR's boost (Rao et al., 2025, §2.2).

Cosine similarity as inner product on L2-normalised float32 copies of the embeddings:
FAISS's ``IndexFlatIP`` (exact, the reference), an inverted-file index over FAISS's spherical
k-means searched one list at a time (:class:`BlockedIVFIndex`) or FAISS's
``IndexHNSWFlat`` (approximate). The implementation lives in the neutral :mod:`skimb.utils._neighbors`
(shared with :class:`~skimb.samplers.HardnessNeighborhoodSampler`); this module is the
HAMR-facing name for it.

Per epoch end (HAMR, ``knn_build_freq``)::

    index = build_index(embeddings)                      # once, before training
    hard = tracker.hard_set(knn_ratio)
    boost = neighbor_boost(index, embeddings, hard, knn_k)   # replaces the old boost
"""

from __future__ import annotations

from ...utils._neighbors import (
    BlockedIVFIndex,
    build_index,
    knn_search,
    neighbor_boost,
    recall_at_k,
)

__all__ = ["BlockedIVFIndex", "build_index", "knn_search", "neighbor_boost", "recall_at_k"]

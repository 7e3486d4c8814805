"""Per-text feature cache for frozen backbones."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

__all__ = ["FeatureCache", "feature_cache"]


class FeatureCache:
    """Rows of pooled features keyed by ``(model key, text)``.

    A frozen backbone maps a text to the same vector every time, so features are
    computed once per text and process: repeated ``fit`` calls of a grid search or
    the folds of a cross-validation only encode texts they have not seen. The
    cache holds at most ``max_rows`` rows in all; the least recently used model
    key is dropped first.
    """

    def __init__(self, max_rows: int = 500_000):
        self.max_rows = max_rows
        self._store: "OrderedDict[tuple, dict[str, np.ndarray]]" = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def lookup(self, key, texts):
        """Return ``(rows, missing_positions)``; rows[i] is None where missing."""
        with self._lock:
            table = self._store.get(key)
            if table is not None:
                self._store.move_to_end(key)
            rows = [None] * len(texts) if table is None else [table.get(t) for t in texts]
        missing = [i for i, r in enumerate(rows) if r is None]
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        return rows, missing

    def store(self, key, texts, matrix: np.ndarray):
        with self._lock:
            table = self._store.setdefault(key, {})
            for t, row in zip(texts, matrix):
                table[t] = row
            self._store.move_to_end(key)
            while sum(len(v) for v in self._store.values()) > self.max_rows and len(self._store) > 1:
                self._store.popitem(last=False)

    def get_or_compute(self, key, texts, compute) -> np.ndarray:
        """Features for ``texts``; ``compute(list_of_texts) -> (m, d) array`` fills the gaps."""
        rows, missing = self.lookup(key, texts)
        if missing:
            unique = list(dict.fromkeys(texts[i] for i in missing))
            computed = np.asarray(compute(unique), dtype=np.float32)
            self.store(key, unique, computed)
            by_text = dict(zip(unique, computed))
            for i in missing:
                rows[i] = by_text[texts[i]]
        return np.stack(rows).astype(np.float32, copy=False)

    def clear(self):
        with self._lock:
            self._store.clear()
        self.hits = self.misses = 0


#: The process-wide cache used by the estimators.
feature_cache = FeatureCache()

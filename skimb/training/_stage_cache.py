"""A cache of fitted stage-1 models, so that staged methods (CALoRA) searched over
their stage-2 parameters fit stage 1 once per training set."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

__all__ = ["StageCache", "stage1_cache", "fingerprint"]


def fingerprint(*parts) -> str:
    """A SHA-256 over strings, arrays and nested lists/tuples of them."""
    h = hashlib.sha256()

    def feed(obj):
        if isinstance(obj, np.ndarray) and obj.dtype == object:  # ragged rows (token tags)
            feed(list(obj))
        elif isinstance(obj, np.ndarray):
            h.update(str((obj.dtype, obj.shape)).encode())
            h.update(np.ascontiguousarray(obj).tobytes())
        elif isinstance(obj, (list, tuple)):
            h.update(b"[%d" % len(obj))
            for o in obj:
                feed(o)
            h.update(b"]")
        else:
            h.update(repr(obj).encode())
            h.update(b"\x00")

    for p in parts:
        feed(p)
    return h.hexdigest()


class StageCache:
    """In-process LRU of stage-1 results, optionally mirrored on disk.

    ``memory`` (per call) is None, a directory, or a ``joblib.Memory`` (its
    ``location`` is used), as for scikit-learn's ``Pipeline``: entries written there
    are shared by the worker processes of a parallel grid search.
    """

    def __init__(self, max_entries: int = 3):
        self.max_entries = max_entries
        self._store: "OrderedDict[str, dict]" = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _directory(memory):
        if memory is None:
            return None
        location = getattr(memory, "location", memory)
        if location is None:
            return None
        path = Path(location) / "skimb-stage1"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def get(self, key, memory=None):
        with self._lock:
            entry = self._store.get(key)
            if entry is not None:
                self._store.move_to_end(key)
        if entry is None:
            directory = self._directory(memory)
            if directory is not None and (directory / f"{key}.pt").exists():
                entry = torch.load(directory / f"{key}.pt", map_location="cpu", weights_only=False)
                self._put(key, entry)
        if entry is None:
            self.misses += 1
        else:
            self.hits += 1
        return entry

    def _put(self, key, entry):
        with self._lock:
            self._store[key] = entry
            self._store.move_to_end(key)
            while len(self._store) > self.max_entries:
                self._store.popitem(last=False)

    def put(self, key, entry, memory=None):
        self._put(key, entry)
        directory = self._directory(memory)
        if directory is not None:
            tmp = directory / f"{key}.pt.tmp"
            torch.save(entry, tmp)
            tmp.replace(directory / f"{key}.pt")

    def clear(self):
        with self._lock:
            self._store.clear()
        self.hits = self.misses = 0


#: The process-wide stage-1 cache used by the estimators.
stage1_cache = StageCache()

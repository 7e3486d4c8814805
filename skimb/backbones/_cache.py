"""Per-text feature cache for frozen backbones, in memory and optionally in a shared folder."""

from __future__ import annotations

import hashlib
import numbers
import os
import tempfile
import threading
import uuid
import warnings
from collections import OrderedDict
from pathlib import Path

import joblib
import numpy as np

from ._loading import backbone_identity

__all__ = ["FeatureCache", "feature_cache", "FEATURE_CACHE_ENV", "frozen_feature_key"]

#: Environment variable naming the shared folder of the process-wide cache (e.g. set on every
#: worker of a Dask cluster).
FEATURE_CACHE_ENV = "SKIMB_FEATURE_CACHE_DIR"


#: Bumped when what a shared folder's rows mean changes (2: keys carry the autocast precision).
_DISK_FORMAT = 2


def frozen_feature_key(backbone, pooling, max_length, variant=None, precision=None) -> tuple:
    """The feature-cache key of a frozen backbone's pooled features: ``backbone`` (its
    :func:`backbone_identity` or folder), ``pooling``, ``max_length`` and, for an encoder that
    computes other numbers, its ``variant`` (an int8 copy) and ``precision``
    (:func:`~skimb.backbones.autocast_precision`: ``"bf16"`` under CUDA autocast).
    ``TransformerEmbedder``, ``finetune="head"`` and HAMR's pretrained features of the same texts
    share it.

    >>> frozen_feature_key(("model",), "mean", 32) == frozen_feature_key(("model",), "mean", 32, None, None)
    True
    >>> frozen_feature_key(("model",), "mean", 32) == frozen_feature_key(("model",), "mean", 32, precision="bf16")
    False
    """
    return _identity_key((backbone, pooling, int(max_length), variant, precision))


def _identity_key(key) -> tuple:
    """``key`` with each backbone folder replaced by its :func:`backbone_identity`: a model saved
    again at the same path keys afresh, in memory as on disk; and without trailing ``None`` parts
    (no variant), so that ``(backbone, pooling, max_length)`` and ``(backbone, pooling, max_length,
    None)`` name the same features (idempotent).

    >>> _identity_key(("no/such/model", "mean", 32, None))
    ('no/such/model', 'mean', 32)
    """
    parts = [backbone_identity(p) if isinstance(p, str) and os.path.isdir(p) else p for p in key]
    while len(parts) > 1 and parts[-1] is None:
        parts.pop()
    return tuple(parts)


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest().encode()


class FeatureCache:
    """Rows of pooled features keyed by ``(model key, text)``.

    A frozen backbone maps a text to the same vector every time, so features are
    computed once per text: repeated ``fit`` calls of a grid search or the folds of a
    cross-validation only encode texts they have not seen. In memory the cache holds at most
    ``max_rows`` rows in all; the least recently used model key is dropped first, and where one
    key's rows alone are more than ``max_rows`` its oldest rows go (a call for more than
    ``max_rows`` new texts returns them all and keeps the last ``max_rows``). ``max_rows=0`` keeps
    nothing in memory.

    With a ``directory`` (or ``$SKIMB_FEATURE_CACHE_DIR``), every batch of new rows is also
    written there (one ``.npz`` file of text digests and float32 rows, written atomically), and
    rows missing in memory are looked up there first: processes and machines that see the same
    folder encode each text once between them. A key's backbone folder stands for the names, sizes
    and modification times of its files, in memory and in the shared folder, so a model saved
    again at the same path starts afresh. Files hold arrays only (loaded without pickle).

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> calls = []
    >>> def encode(texts):
    ...     calls.append(len(texts))
    ...     return np.ones((len(texts), 2))
    >>> FeatureCache(directory=folder).get_or_compute(("model",), ["a", "b"], encode).shape
    (2, 2)
    >>> FeatureCache(directory=folder).get_or_compute(("model",), ["b", "a", "c"], encode).shape
    (3, 2)
    >>> calls  # the second cache (another process, say) only encoded "c"
    [2, 1]
    """

    def __init__(self, max_rows: int = 500_000, directory=None):
        if isinstance(max_rows, bool) or not isinstance(max_rows, numbers.Integral) or max_rows < 0:
            raise ValueError(f"FeatureCache: max_rows must be an int >= 0 (the rows kept in memory), got {max_rows!r}.")
        self.max_rows = int(max_rows)
        self.directory = directory
        self._store: "OrderedDict[tuple, dict[str, np.ndarray]]" = OrderedDict()
        self._disk: dict[tuple, dict] = {}  # key -> {"files": names read, "rows": digest -> row}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.disk_hits = 0

    # -- the shared folder --------------------------------------------------------------------
    @property
    def location(self) -> Path | None:
        """The shared folder in use (``directory``, else ``$SKIMB_FEATURE_CACHE_DIR``), or None."""
        location = self.directory if self.directory is not None else os.environ.get(FEATURE_CACHE_ENV)
        location = getattr(location, "location", location)  # a joblib.Memory works too
        return Path(location) if location else None

    def _key_dir(self, key) -> Path | None:
        location = self.location
        if location is None:
            return None
        # the format tag: folders written before keys carried the autocast precision may hold bf16 rows
        return location / "skimb-features" / joblib.hash([_DISK_FORMAT, *key])

    def _read_new_files(self, key, folder: Path) -> dict:
        disk = self._disk.setdefault(key, {"files": set(), "rows": {}})
        if not folder.is_dir():
            return disk["rows"]
        for path in sorted(folder.glob("*.npz")):
            if path.name in disk["files"]:
                continue
            disk["files"].add(path.name)
            try:
                with np.load(path, allow_pickle=False) as f:
                    disk["rows"].update(zip(f["digests"].tolist(), f["rows"]))
            except Exception as exc:  # noqa: BLE001 - a bad file is a miss, never a crash
                warnings.warn(f"ignoring the unreadable feature cache file {path} ({type(exc).__name__}); "
                              "its texts are encoded again.", UserWarning, stacklevel=4)
        return disk["rows"]

    @staticmethod
    def _write(folder: Path, texts, matrix) -> str | None:
        """One file per batch of new rows, written atomically; its name, or None after a
        failure (a warning: the rows stay in memory only)."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                np.savez(f, digests=np.array([_digest(t) for t in texts], dtype="S32"),
                         rows=np.asarray(matrix, dtype=np.float32))
            name = f"{uuid.uuid4().hex}.npz"
            os.replace(tmp, folder / name)
            return name
        except OSError as exc:
            warnings.warn(f"could not write the feature cache folder {folder} ({exc}); the features stay in "
                          "memory only.", UserWarning, stacklevel=4)
            return None

    # -- the cache ----------------------------------------------------------------------------
    def lookup(self, key, texts):
        """Return ``(rows, missing_positions)``; rows[i] is None where missing (in memory and
        in the shared folder)."""
        key = _identity_key(key)
        with self._lock:
            table = self._store.get(key)
            if table is not None:
                self._store.move_to_end(key)
            rows = [None] * len(texts) if table is None else [table.get(t) for t in texts]
        missing = [i for i, r in enumerate(rows) if r is None]
        folder = self._key_dir(key) if missing else None
        if folder is not None:
            with self._lock:
                on_disk = self._read_new_files(key, folder)
            found = {}
            for i in missing:
                row = on_disk.get(_digest(texts[i]))
                if row is not None:
                    rows[i] = found[texts[i]] = row
            if found:
                self.disk_hits += len(found)
                self._remember(key, list(found), list(found.values()))
                missing = [i for i in missing if rows[i] is None]
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        return rows, missing

    def _remember(self, key, texts, rows):
        with self._lock:
            table = self._store.setdefault(key, {})
            for t, row in zip(texts, rows):
                table[t] = row
            self._store.move_to_end(key)
            self._evict(key)

    def _evict(self, key) -> None:
        """Drop rows (the lock held) until at most ``max_rows`` remain: other keys first, least recently
        used first, then the oldest rows of ``key``."""
        total = sum(len(v) for v in self._store.values())
        while total > self.max_rows and len(self._store) > 1:
            old, table = self._store.popitem(last=False)
            self._disk.pop(old, None)
            total -= len(table)
        table = self._store.get(key)
        if table is not None and len(table) > self.max_rows:
            for t in list(table)[:len(table) - self.max_rows]:  # dicts keep the order rows came in
                del table[t]

    def store(self, key, texts, matrix: np.ndarray):
        key = _identity_key(key)
        self._remember(key, texts, matrix)
        folder = self._key_dir(key)
        name = None if folder is None else self._write(folder, texts, matrix)
        if name is not None:  # our own file: never read back
            with self._lock:
                self._disk.setdefault(key, {"files": set(), "rows": {}})["files"].add(name)

    def get_or_compute(self, key, texts, compute) -> np.ndarray:
        """Features for ``texts``, shape ``(len(texts), d)``, float32; ``compute(list_of_texts) -> (m, d)
        array`` fills the gaps (called with each missing text once).

        Raises a ``ValueError`` for no texts: the width ``d`` of the rows is only known from an encoding.
        """
        if len(texts) == 0:
            raise ValueError("FeatureCache.get_or_compute: texts is empty; pass at least one text (the width of "
                             "the features is only known from an encoding).")
        key = _identity_key(key)
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
        """Empty the memory (the shared folder is left as it is)."""
        with self._lock:
            self._store.clear()
            self._disk.clear()
        self.hits = self.misses = self.disk_hits = 0


#: The process-wide cache used by the estimators.
feature_cache = FeatureCache()

"""A cache of fitted stage-1 models, so that staged methods (CALoRA) searched over
their stage-2 parameters fit stage 1 once per training set."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
import warnings
from collections import OrderedDict
from pathlib import Path

import joblib
import numpy as np
import torch

from ..utils._warnings import warn_caller

__all__ = ["StageCache", "stage1_cache", "fingerprint"]


def fingerprint(*parts) -> str:
    """A hash of the content of ``parts``: arrays, nested lists, estimators, anything
    ``joblib.hash`` can read (never ``repr``, which elides long arrays and prints only a
    fitted estimator's constructor)."""
    return joblib.hash(parts)


def _default_budget_mib() -> float:
    return float(os.environ.get("SKIMB_STAGE1_CACHE_MIB", 2048))


def _entry_bytes(entry) -> int:
    total = 0
    for value in _tensors(entry):
        total += value.element_size() * value.nelement()
    return total


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


def _to_safe(obj):
    """Tensors, numbers, strings and containers only, loadable with ``weights_only=True``
    (numeric numpy arrays travel as tensors, tagged so that they come back as arrays)."""
    if isinstance(obj, np.ndarray) and obj.dtype != object:
        return {"__ndarray__": torch.from_numpy(np.require(obj, requirements="C"))}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {_to_safe(k): _to_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_safe(v) for v in obj) if type(obj) in (list, tuple) else [_to_safe(v) for v in obj]
    return obj


def _from_safe(obj):
    if isinstance(obj, dict):
        if set(obj) == {"__ndarray__"}:
            return obj["__ndarray__"].numpy()
        return {k: _from_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_from_safe(v) for v in obj)
    return obj


def _save(entry, path: Path):
    """Write atomically (a unique temporary file, then a rename); a failure is a warning, never
    a failed fit: the entry is then only in memory."""
    tmp = None
    try:  # a folder that exists but cannot be written fails here already
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        os.close(fd)
        torch.save(_to_safe(entry), tmp)
        os.replace(tmp, path)
    except Exception as exc:  # noqa: BLE001
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        warnings.warn(f"could not write the stage-1 cache file {path} ({type(exc).__name__}: {exc}).",
                      UserWarning, stacklevel=3)


def _load(path: Path):
    # weights_only: the folder may be shared, and a pickle would run code on load.
    return _from_safe(torch.load(path, map_location="cpu", weights_only=True))


class StageCache:
    """In-process LRU of stage-1 results bounded by memory, spilling to disk, optionally
    mirrored in a shared folder.

    Entries over ``budget_mib`` (default 2048, or ``$SKIMB_STAGE1_CACHE_MIB``) are written to
    a private temporary folder rather than dropped, so a search visits each fold's stage 1
    once whatever its ``cv`` and number of candidates. ``memory`` (per call) is None, a
    directory, or a ``joblib.Memory`` (its ``location`` is used), as for scikit-learn's
    ``Pipeline``: entries written there are shared by the worker processes of a parallel
    grid search. Files hold tensors and JSON only and load with ``weights_only=True``.
    """

    def __init__(self, budget_mib: float | None = None):
        self.budget_mib = budget_mib
        self._store: "OrderedDict[str, dict]" = OrderedDict()
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()
        self._spill_dir: Path | None = None
        self.hits = 0
        self.misses = 0
        # :meth:`sharing`: open blocks, which plain fits store their stage 1, the keys they stored
        self._sharing_depth = 0
        self._share = None
        self._shared_keys: set = set()
        self._unusable: set = set()  # memory folders already warned about

    @property
    def _budget_bytes(self) -> float:
        mib = _default_budget_mib() if self.budget_mib is None else self.budget_mib
        return mib * 2**20

    def _directory(self, memory):
        if memory is None:
            return None
        location = getattr(memory, "location", memory)
        if location is None:
            return None
        path = Path(location) / "skimb-stage1"
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a cache failure is a warning, never a failed fit
            if path not in self._unusable:
                self._unusable.add(path)
                warn_caller(f"head__memory={str(location)!r} cannot hold the stage-1 cache ({type(exc).__name__}: "
                            f"{exc}); stage 1 is cached in this process only. Pass a folder that can be created and "
                            "written, or head__memory=None.")
            return None
        return path

    def _spill_path(self, key) -> Path:
        if self._spill_dir is None:
            self._spill_dir = Path(tempfile.mkdtemp(prefix="skimb-stage1-"))
            atexit.register(shutil.rmtree, self._spill_dir, True)
        return self._spill_dir / f"{key}.pt"

    def _lookup_file(self, key, memory):
        for directory in (self._directory(memory), self._spill_dir):
            if directory is not None and (directory / f"{key}.pt").exists():
                return directory / f"{key}.pt"
        return None

    def get(self, key, memory=None, check=None):
        """The entry stored under ``key``, or None. ``check(entry)`` raises ValueError for an entry
        read from a file that is none of the caller's (another tool's, a partial one): a miss."""
        with self._lock:
            entry = self._store.get(key)
            if entry is not None:
                self._store.move_to_end(key)
        if entry is None:
            path = self._lookup_file(key, memory)
            if path is not None:
                try:
                    entry = _load(path)
                    if check is not None:
                        check(entry)
                except Exception as exc:  # noqa: BLE001 - a bad file is a miss, never a crash
                    warnings.warn(f"ignoring the unreadable stage-1 cache file {path} ({exc.__class__.__name__}: "
                                  f"{exc}); stage 1 is fitted again.", UserWarning, stacklevel=3)
                    entry = None
                else:
                    self._put(key, entry)
        if entry is None:
            self.misses += 1
        else:
            self.hits += 1
        return entry

    def discard(self, key):
        """Forget the entry that :meth:`get` just returned for ``key``, which could not be restored:
        that lookup counts as a miss (the refit's ``put`` replaces any file)."""
        self._drop([key])
        with self._lock:
            self.hits -= 1
            self.misses += 1

    def _put(self, key, entry):
        with self._lock:
            self._store[key] = entry
            self._sizes[key] = _entry_bytes(entry)
            self._store.move_to_end(key)
            evicted = []
            while len(self._store) > 1 and sum(self._sizes.values()) > self._budget_bytes:
                old_key, old = self._store.popitem(last=False)
                self._sizes.pop(old_key)
                evicted.append((old_key, old))
        for old_key, old in evicted:  # spilt, never lost
            path = self._spill_path(old_key)
            if not path.exists():
                _save(old, path)

    def put(self, key, entry, memory=None):
        self._put(key, entry)
        directory = self._directory(memory)
        if directory is not None:
            _save(entry, directory / f"{key}.pt")

    def clear(self):
        with self._lock:
            self._store.clear()
            self._sizes.clear()
        if self._spill_dir is not None:
            shutil.rmtree(self._spill_dir, ignore_errors=True)
            self._spill_dir = None
        self.hits = self.misses = 0
        self._unusable.clear()

    def __len__(self):
        return len(self._store)

    @contextlib.contextmanager
    def sharing(self, share=None):
        """Within the block fits with a plain (one-stage) head store their stage 1 too
        (:meth:`put_shared`), so that a later fit in the block with the same stage-1 parameters and
        data loads it: ``skimb compare`` fits HAMR once for the ``hamr`` method and the HAMR member
        of a vote. ``share(estimator) -> bool`` picks the fits that store (default: all), e.g.
        those another fit will repeat. The entries live in this process only and are dropped when
        the outermost block ends; outside one, a lone fit's stage 1 would only take memory."""
        with self._lock:
            self._sharing_depth += 1
            outer_share, self._share = self._share, share if share is not None else self._share
        try:
            yield self
        finally:
            with self._lock:
                self._sharing_depth -= 1
                self._share = outer_share
                dropped = self._shared_keys if self._sharing_depth == 0 else set()
                if dropped:
                    self._shared_keys = set()
            self._drop(dropped)

    def shares(self, estimator) -> bool:
        """Whether a plain fit of ``estimator`` stores its stage 1 (inside :meth:`sharing`)."""
        return self._sharing_depth > 0 and (self._share is None or bool(self._share(estimator)))

    def put_shared(self, key, entry):
        """Store a plain fit's stage 1 until the :meth:`sharing` block ends (in memory, spilt to
        the private folder over budget; never to a shared ``memory`` folder)."""
        self._put(key, entry)
        with self._lock:
            self._shared_keys.add(key)

    def _drop(self, keys):
        with self._lock:
            for key in keys:
                self._store.pop(key, None)
                self._sizes.pop(key, None)
        if self._spill_dir is not None:
            for key in keys:
                (self._spill_dir / f"{key}.pt").unlink(missing_ok=True)


#: The process-wide stage-1 cache used by the estimators.
stage1_cache = StageCache()

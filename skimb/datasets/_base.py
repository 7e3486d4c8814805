"""Shared helpers: where the data lives, stratified subsampling, result bunches."""

from __future__ import annotations

import numbers
import os
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch, check_random_state

__all__ = ["get_data_home"]

ENV_VAR = "SKIMB_DATA_DIR"
_SPLITS = ("train", "dev", "test")
# every class (or, for multi-label / token data, every label) keeps at least
# this many examples in a subsample, when it has that many
_MIN_KEEP = 5


def get_data_home():
    """Return the folder that holds the real data sets, or ``None``.

    The folder is, in order of preference:

    1. ``$SKIMB_DATA_DIR`` when that environment variable is set (it is
       returned even if it does not exist, so a wrong setting is reported by
       the loaders rather than silently ignored);
    2. ``shared/data`` next to the repository checkout that holds the
       installed ``skimb`` package (``<checkout>/../shared/data``);
    3. ``./shared/data`` and then ``../shared/data`` relative to the current
       working directory.

    Returns
    -------
    data_home : pathlib.Path or None
        ``None`` when no candidate folder exists.

    Examples
    --------
    >>> import os
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"SKIMB_DATA_DIR": "/srv/nlp-data"}):
    ...     print(get_data_home())
    /srv/nlp-data
    """
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    # <checkout>/skimb/datasets/_base.py: parents[2] is <checkout>, parents[3] its parent
    candidates = [
        Path(__file__).resolve().parents[3] / "shared" / "data",
        Path.cwd() / "shared" / "data",
        Path.cwd().parent / "shared" / "data",
    ]
    for cand in candidates:
        if cand.is_dir():
            return cand
    return None


def _missing_data_error(what: str, data_home) -> FileNotFoundError:
    where = f"'{data_home}'" if data_home is not None else "no data folder was found"
    return FileNotFoundError(
        f"Data for {what} not found ({where}). Point the {ENV_VAR} environment variable "
        "(or the data_home argument) at the folder holding the data sets, "
        "e.g. export SKIMB_DATA_DIR=/path/to/shared/data."
    )


# --------------------------------------------------------------------------- subsampling
def _allocate(counts: np.ndarray, n: int) -> np.ndarray:
    """Split ``n`` among strata proportionally to ``counts`` (largest remainder),
    giving each stratum at least ``min(count, _MIN_KEEP)`` and at most its count."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if n >= total:
        return counts.copy()
    floor_ = np.minimum(counts, _MIN_KEEP)
    if n <= int(floor_.sum()):
        return floor_
    exact = counts * (n / total)
    alloc = np.clip(np.floor(exact).astype(np.int64), floor_, counts)
    diff = n - int(alloc.sum())
    if diff > 0:  # hand out the rest by largest remainder to strata with room
        order = np.argsort(-(exact - np.floor(exact)), kind="stable")
        while diff > 0:
            progressed = False
            for k in order:
                if diff == 0:
                    break
                if alloc[k] < counts[k]:
                    alloc[k] += 1
                    diff -= 1
                    progressed = True
            if not progressed:  # pragma: no cover - n < total guarantees room
                break
    elif diff < 0:  # the minima pushed us over: take from the biggest strata
        while diff < 0:
            room = alloc - floor_
            k = int(np.argmax(np.where(room > 0, alloc, -1)))
            alloc[k] -= 1
            diff += 1
    return alloc


def _strata(label_sets: list) -> np.ndarray:
    """One stratum per sample: its rarest label (for multi-label / token data)."""
    freq = Counter(lab for labs in label_sets for lab in set(labs))
    keys = []
    for labs in label_sets:
        labs = set(labs)
        keys.append(min(labs, key=lambda lab: (freq[lab], str(lab))) if labs else None)
    return np.array([repr(k) for k in keys])


def _stratify_key(y, task: str) -> np.ndarray:
    if task == "multiclass":
        return np.asarray(y)
    if task == "multilabel":
        y = np.asarray(y)
        return _strata([np.flatnonzero(row).tolist() for row in y])
    if task == "token":
        # a sentence's stratum is its rarest tag other than the catch-all 'O'
        return _strata([[t for t in tags if t != "O"] for tags in y])
    raise ValueError(f"unknown task {task!r}")


def _subsample_indices(y, task: str, n, rng) -> np.ndarray:
    """Sorted indices of a stratified subsample of size ``n`` (int or fraction)."""
    n_samples = len(y)
    if isinstance(n, numbers.Real) and not isinstance(n, numbers.Integral):
        if not 0 < n <= 1:
            raise ValueError(f"a fractional subsample size must be in (0, 1], got {n}.")
        n = max(1, int(round(n * n_samples)))
    if n >= n_samples:
        return np.arange(n_samples)
    keys = _stratify_key(y, task)
    classes, inverse = np.unique(keys, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(classes))
    alloc = _allocate(counts, int(n))
    chosen = []
    for k in range(len(classes)):
        members = np.flatnonzero(inverse == k)
        chosen.append(rng.choice(members, size=int(alloc[k]), replace=False))
    return np.sort(np.concatenate(chosen))


def _check_subsample(subsample) -> dict:
    """Normalise ``subsample`` into ``{split: size}``."""
    if subsample is None:
        return {}

    def check_size(v, where):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"{where} must be an int (number of samples) or a float in (0, 1], got {v!r}.")
        if isinstance(v, numbers.Integral):
            if v < 1:
                raise ValueError(f"{where} must be at least 1, got {v}.")
        elif not 0 < v <= 1:
            raise ValueError(f"{where} as a fraction must be in (0, 1], got {v}.")
        return v

    if isinstance(subsample, dict):
        unknown = set(subsample) - set(_SPLITS)
        if unknown:
            raise ValueError(
                f"subsample keys must be among {list(_SPLITS)}, got unknown {sorted(map(str, unknown))}."
            )
        return {k: check_size(v, f"subsample[{k!r}]") for k, v in subsample.items() if v is not None}
    size = check_size(subsample, "subsample")
    return {k: size for k in _SPLITS}


def _take(X, idx):
    if isinstance(X, np.ndarray):
        return X[idx]
    return [X[i] for i in idx]


def _apply_subsample(splits: dict, task: str, subsample, random_state) -> dict:
    """Subsample every split named in ``subsample``; returns a new dict."""
    sizes = _check_subsample(subsample)
    rng = check_random_state(random_state)
    out = dict(splits)
    for split in _SPLITS:  # fixed order keeps results deterministic
        X, y = splits.get(f"X_{split}"), splits.get(f"y_{split}")
        if split not in sizes or X is None:
            continue
        idx = _subsample_indices(y, task, sizes[split], rng)
        out[f"X_{split}"], out[f"y_{split}"] = _take(X, idx), _take(y, idx)
    return out


# --------------------------------------------------------------------------- bunches
def _class_counts_text(y, task, target_names) -> str:
    if y is None:
        return ""
    if task == "multiclass":
        c = Counter(np.asarray(y).tolist())
        items = [(name, c.get(name, 0)) for name in target_names]
    elif task == "multilabel":
        col = np.asarray(y).sum(axis=0)
        items = list(zip(target_names, col.tolist()))
    else:
        c = Counter(t for tags in y for t in tags)
        items = [(name, c.get(name, 0)) for name in target_names]
    items.sort(key=lambda kv: -kv[1])
    pos = [v for _, v in items if v > 0]
    ir = f"{max(pos) / min(pos):.1f}" if pos else "n/a"
    shown = ", ".join(f"{k}: {v}" for k, v in items)
    unit = "tokens" if task == "token" else "examples"
    return f"train class counts ({unit}; imbalance ratio max/min = {ir}): {shown}"


def _make_bunch(*, name, task, splits, target_names, description, source="") -> Bunch:
    sizes = ", ".join(
        f"{s} {len(splits[f'X_{s}'])}" for s in _SPLITS if splits.get(f"X_{s}") is not None
    )
    descr = "\n".join(
        line
        for line in [
            f"{name}",
            "=" * len(name),
            description.strip(),
            f"task: {task}; {len(target_names)} classes; sizes: {sizes}.",
            _class_counts_text(splits.get("y_train"), task, target_names),
            source,
        ]
        if line
    )
    return Bunch(
        X_train=splits.get("X_train"),
        y_train=splits.get("y_train"),
        X_dev=splits.get("X_dev"),
        y_dev=splits.get("y_dev"),
        X_test=splits.get("X_test"),
        y_test=splits.get("y_test"),
        target_names=list(target_names),
        task=task,
        name=name,
        DESCR=descr,
    )

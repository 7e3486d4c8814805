"""Label-frequency quartiles shared by the multi-class, multi-label and span reports.

HAMR's minority-class analysis (Rao et al., 2025, §4.3) reports the mean per-label F1 within
label-frequency quartiles, Q1 (rarest labels) ... Q4 (most frequent labels).
Every report in :mod:`skimb.metrics` uses the same rule, implemented here:

1. The population is the labels (classes, indicator columns, entity types) with
   at least one true instance in the evaluation data (support > 0). A label that
   never occurs in the ground truth has no recall and is left out, so that the
   quartiles do not change with what a model happens to predict.
2. Each label gets a frequency: its count in the training targets when those are
   given (0 if it never occurs there), otherwise its support in the evaluation
   ground truth.
3. Labels are sorted by frequency, ascending, with a *stable* sort over the
   labels in the report's order (sorted labels), so ties keep that order.
4. ``np.array_split(sorted_labels, 4)`` gives Q1..Q4. With ``C`` labels the
   first ``C % 4`` quartiles hold one label more than the others, e.g. 5 labels
   give sizes 2, 1, 1, 1. With fewer than 4 labels the *last* quartiles are
   empty: 3 labels give Q1, Q2, Q3 one label each and an empty Q4.
5. A quartile's score is the unweighted mean F1 of its labels; an empty quartile
   scores NaN (the key is always present).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Hashable, Iterable, Mapping, Sequence

import numpy as np

QUARTILES = ("Q1", "Q2", "Q3", "Q4")


def _to_python(value):
    """numpy scalar -> the equivalent Python scalar (so report keys are JSON-friendly)."""
    return value.item() if isinstance(value, np.generic) else value


def _count(values: Iterable[Hashable]) -> Counter:
    return Counter(_to_python(v) for v in values)


def _assign_quartiles(
    labels: Sequence[Hashable], frequencies: Mapping[Hashable, float]
) -> dict[str, list]:
    """Split ``labels`` into Q1..Q4 by ascending frequency (see the module docstring).

    >>> _assign_quartiles(["a", "b", "c", "d", "e"], {"a": 5, "b": 1, "c": 3, "d": 3, "e": 9})
    {'Q1': ['b', 'c'], 'Q2': ['d'], 'Q3': ['a'], 'Q4': ['e']}
    >>> _assign_quartiles(["x", "y", "z"], {"x": 2, "y": 1, "z": 7})
    {'Q1': ['y'], 'Q2': ['x'], 'Q3': ['z'], 'Q4': []}
    """
    labels = list(labels)
    counts = np.asarray([float(frequencies.get(lab, 0)) for lab in labels], dtype=float)
    order = np.argsort(counts, kind="stable")
    groups = np.array_split(order, len(QUARTILES))
    return {q: [labels[i] for i in g] for q, g in zip(QUARTILES, groups)}


def _quartile_means(groups: Mapping[str, list], scores: Mapping[Hashable, float]) -> dict[str, float]:
    """Mean score per quartile; NaN for an empty quartile."""
    out = {}
    for q in QUARTILES:
        members = groups.get(q, [])
        out[q] = float(np.mean([scores[m] for m in members])) if members else math.nan
    return out


def _round(value, digits):
    """Round floats (NaN stays NaN) recursively through dicts; leave ints and strings alone."""
    if digits is None:
        return value
    if isinstance(value, dict):
        return {k: _round(v, digits) for k, v in value.items()}
    if isinstance(value, float):
        return value if math.isnan(value) else round(value, digits)
    return value

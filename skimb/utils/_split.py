"""Stratified splitting for multi-label targets and for tagged sentences."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["iterative_stratification", "multilabel_train_test_split", "rarest_tag_keys"]


def iterative_stratification(Y, ratios, *, random_state=None) -> np.ndarray:
    """Assign each row of a 0/1 indicator matrix to one of ``len(ratios)`` parts by iterative
    stratification (Sechidis et al., 2011): labels are handled rarest first, and each row carrying
    the current label goes to the part whose remaining demand for that label is largest (ties: the
    largest remaining size, then at random), so that rare labels reach every part in proportion.
    Returns the part index of each row.

    >>> Y = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [0, 1]])
    >>> parts = iterative_stratification(Y, [0.5, 0.5], random_state=0)
    >>> [Y[parts == p].sum(0).tolist() for p in (0, 1)]  # both labels in both parts
    [[2, 2], [1, 2]]
    """
    Y = np.asarray(Y)
    n, ratios = Y.shape[0], np.asarray(ratios, dtype=np.float64)
    rng = check_random_state(random_state)
    k = len(ratios)
    demand_total = ratios * n
    demand_label = np.outer(ratios, Y.sum(0)).astype(np.float64)
    assigned = np.full(n, -1)
    remaining = Y.astype(bool).copy()
    while (assigned < 0).any():
        free = assigned < 0
        counts = remaining[free].sum(0)
        if counts.max() == 0:  # rows with no (remaining) labels
            for i in rng.permutation(np.flatnonzero(free)):
                s = int(np.argmax(demand_total + rng.random_sample(k) * 1e-9))
                assigned[i] = s
                demand_total[s] -= 1
            break
        label = int(np.argmin(np.where(counts > 0, counts, np.inf)))
        for i in rng.permutation(np.flatnonzero(free & remaining[:, label])):
            d = demand_label[:, label]
            best = np.flatnonzero(d == d.max())
            if len(best) > 1:
                best = best[np.flatnonzero(demand_total[best] == demand_total[best].max())]
            s = int(rng.choice(best))
            assigned[i] = s
            demand_total[s] -= 1
            demand_label[s] -= Y[i]
            remaining[i] = False
    return assigned


def multilabel_train_test_split(Y, *, test_size: float, random_state=None):
    """Iterative stratification of a 0/1 indicator matrix into two parts
    (:func:`iterative_stratification`). Returns sorted ``(train_indices, test_indices)``.

    >>> Y = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [0, 1]])
    >>> tr, te = multilabel_train_test_split(Y, test_size=0.5, random_state=0)
    >>> len(tr) + len(te), bool(Y[te].sum(0).min() > 0)
    (6, True)
    """
    n = np.asarray(Y).shape[0]
    n_test = int(round(test_size * n))
    if not 0 < n_test < n:
        raise ValueError(f"test_size={test_size} leaves an empty split for {n} samples.")
    assigned = iterative_stratification(Y, [1 - n_test / n, n_test / n], random_state=random_state)
    return np.flatnonzero(assigned == 0), np.flatnonzero(assigned == 1)


def rarest_tag_keys(tag_ids) -> np.ndarray:
    """Each sentence's rarest tag other than ``O`` (index 0), for a stratified split by sentence.

    ``tag_ids``: one array of tag indices per sentence. Rarity is counted over all sentences; a
    sentence without entity tags gets 0, ties go to the smaller index.

    Examples
    --------
    >>> rarest_tag_keys([np.array([0, 1, 2]), np.array([1, 0]), np.array([0, 0])]).tolist()
    [2, 1, 0]
    """
    flat = [np.asarray(r, dtype=np.int64) for r in tag_ids]
    counts = np.bincount(np.concatenate(flat) if flat else np.zeros(0, np.int64), minlength=1)
    return np.array([min(set(r.tolist()) - {0}, key=lambda k: (counts[k], k), default=0) for r in flat],
                    dtype=np.int64)

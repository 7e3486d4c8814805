"""HAMR's balanced meta set (the meta-set of Rao et al., 2025, Algorithm 1).

The meta set is the validation split topped up, per class, with examples *moved* from the
training split until every class reaches the median validation class count; the moved examples
leave the training set. Both builders return positions in the training split:

``meta_train_idx_from_train``
    training examples that join the meta set; the meta set is then
    ``validation examples + train[meta_train_idx_from_train]``;
``keep_train_idx``
    the training examples HAMR trains on (everything else).

The two arrays are sorted, disjoint, and together cover ``range(n_train)``.

As in the reference script (``build_balanced_splits.py``), the target is the median of the
validation counts over every class seen in training or validation (classes absent from
validation count 0), rounded up, and nothing caps how much of a class can be moved:
with a very rare class (Cyclone-Idai's 13 training examples against a target of 39) all of its
training examples can leave training. ``max_move_fraction`` (default 1.0 = the reference) caps
the share of a class's training examples (NER: of an entity type's training spans) that may
move; 0.5 keeps at least half.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.utils import check_random_state

from skimb._validation import check_labels, check_token_lists

__all__ = ["build_balanced_meta_set", "build_balanced_meta_set_ner", "count_entity_spans", "gbc_meta_set", "head_gradients",
           "GBC_MAX_ROWS_PER_CLASS"]


def _median_target(counts) -> int:
    """Median of the counts, rounded up (the reference's ``median_int``)."""
    counts = sorted(int(c) for c in counts)
    if not counts:
        return 0
    mid = len(counts) // 2
    if len(counts) % 2:
        return counts[mid]
    return int(math.ceil((counts[mid - 1] + counts[mid]) / 2))


def _check_fraction(max_move_fraction: float) -> float:
    if not 0.0 <= float(max_move_fraction) <= 1.0:
        raise ValueError(f"max_move_fraction must be in [0, 1], got {max_move_fraction}.")
    return float(max_move_fraction)


def build_balanced_meta_set(
    y_train, y_val, *, random_state=None, max_move_fraction: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Top up the validation split per class from the training split (multi-class).

    Parameters
    ----------
    y_train : array-like of shape (n_train,)
        Training labels.
    y_val : array-like of shape (n_val,)
        Validation labels (same label type as ``y_train``).
    random_state : int, RandomState instance or None
        Which training examples of a class are moved.
    max_move_fraction : float in [0, 1], default=1.0
        At most ``floor(max_move_fraction · n_train_c)`` examples of class c are moved
        (1.0 = no cap, the reference; a class can then stay below the target only when training
        runs out of it).

    Returns
    -------
    meta_train_idx_from_train : ndarray of int64
        Sorted positions in ``y_train`` of the examples moved to the meta set. The meta set is
        the validation split plus these training examples.
    keep_train_idx : ndarray of int64
        Sorted positions in ``y_train`` of the examples that stay in training.

    Examples
    --------
    >>> y_train = ["a"] * 10 + ["b"] * 6 + ["c"] * 3
    >>> y_val = ["a"] * 5 + ["b"] * 3 + ["c"] * 1        # median 3: b is there, c needs 2
    >>> moved, keep = build_balanced_meta_set(y_train, y_val, random_state=0)
    >>> [y_train[i] for i in moved]
    ['c', 'c']
    >>> len(keep)
    17
    """
    y_train = check_labels(y_train, what="y_train", min_classes=1)
    y_val = check_labels(y_val, what="y_val", min_classes=1)
    if y_train.dtype.kind in "US" and y_val.dtype.kind not in "US" or (
        y_val.dtype.kind in "US" and y_train.dtype.kind not in "US"
    ):
        raise TypeError("y_train and y_val must hold the same kind of labels (strings or integers).")
    frac = _check_fraction(max_move_fraction)
    rng = check_random_state(random_state)

    classes = np.unique(np.concatenate([y_train, y_val]))
    val_counts = {c: int(np.sum(y_val == c)) for c in classes}
    target = _median_target(val_counts.values())

    moved = []
    for c in classes:  # sorted: the random stream does not depend on input order
        need = max(0, target - val_counts[c])
        if need == 0:
            continue
        pool = np.flatnonzero(y_train == c)
        cap = int(math.floor(frac * pool.size + 1e-9))
        take = min(need, cap)
        if take > 0:
            moved.append(rng.permutation(pool)[:take])
    moved_idx = np.sort(np.concatenate(moved)).astype(np.int64) if moved else np.zeros(0, np.int64)
    keep = np.ones(y_train.size, dtype=bool)
    keep[moved_idx] = False
    return moved_idx, np.flatnonzero(keep).astype(np.int64)


def _entity_type(tag: str) -> str | None:
    if tag == "O" or tag == "":
        return None
    return tag.split("-", 1)[1] if "-" in tag else tag


def count_entity_spans(tags) -> dict[str, int]:
    """Entity spans per type in one IOB2 tag sequence.

    A span starts at a ``B-`` tag (for valid IOB2 that is all; like the reference, an ``I-``
    tag after ``O`` or after another type also starts one).

    Examples
    --------
    >>> count_entity_spans(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-ORG"])
    {'PER': 1, 'LOC': 2, 'ORG': 1}
    """
    counts: dict[str, int] = {}
    prev = None
    for tag in tags:
        etype = _entity_type(str(tag))
        if etype is None:
            prev = None
            continue
        if str(tag).startswith("B-") or etype != prev:
            counts[etype] = counts.get(etype, 0) + 1
        prev = etype
    return counts


def build_balanced_meta_set_ner(
    tag_lists_train,
    tag_lists_val,
    *,
    random_state=None,
    max_move_fraction: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Top up the validation split's entity spans per type from training sentences (NER).

    Span counts per entity type come from ``B-`` tags (IOB2; :func:`count_entity_spans`). The
    target is the median validation span count over entity types (rounded up); the deficit of a
    type is ``max(0, target − validation count)``. Training sentences are added greedily: each
    round takes the sentence that reduces the total deficit the most
    (``Σ_t min(spans_t, deficit_t)``), ties broken by fewer spans beyond the deficits, then at
    random; it stops when no deficit is left or no sentence reduces it.

    Parameters
    ----------
    tag_lists_train, tag_lists_val : list of list of str
        IOB2 tags per sentence.
    random_state : int, RandomState instance or None
        Breaks ties.
    max_move_fraction : float in [0, 1], default=1.0
        A sentence is only moved if, for every entity type in it, the moved spans stay within
        ``floor(max_move_fraction · training spans of that type)`` (1.0 = no cap, the reference).

    Returns
    -------
    meta_train_idx_from_train : ndarray of int64
        Sorted positions of the training sentences moved to the meta set (the meta set is the
        validation sentences plus these).
    keep_train_idx : ndarray of int64
        Sorted positions of the sentences that stay in training.

    Examples
    --------
    >>> train = [["B-A", "O"], ["B-B", "B-B"], ["B-C"], ["O"], ["B-C", "B-A"]]
    >>> val = [["B-A", "B-A"], ["B-B", "B-B", "B-B"], ["O"]]   # A 2, B 3, C 0: median 2
    >>> moved, keep = build_balanced_meta_set_ner(train, val, random_state=0)
    >>> moved.tolist(), keep.tolist()     # C needs 2: sentences 2 and 4
    ([2, 4], [0, 1, 3])
    """
    train = check_token_lists(tag_lists_train, what="tag_lists_train")
    val = check_token_lists(tag_lists_val, what="tag_lists_val")
    frac = _check_fraction(max_move_fraction)
    rng = check_random_state(random_state)

    train_counts = [count_entity_spans(s) for s in train]
    val_total: dict[str, int] = {}
    for s in val:
        for t, c in count_entity_spans(s).items():
            val_total[t] = val_total.get(t, 0) + c
    types = sorted(set(val_total) | {t for c in train_counts for t in c})
    n = len(train)
    if not types:
        return np.zeros(0, np.int64), np.arange(n, dtype=np.int64)
    col = {t: j for j, t in enumerate(types)}
    C = np.zeros((n, len(types)), dtype=np.int64)
    for i, c in enumerate(train_counts):
        for t, k in c.items():
            C[i, col[t]] = k

    target = _median_target(val_total.get(t, 0) for t in types)
    deficit = np.array([max(0, target - val_total.get(t, 0)) for t in types], dtype=np.int64)
    cap = np.floor(frac * C.sum(axis=0) + 1e-9).astype(np.int64)
    moved_spans = np.zeros(len(types), dtype=np.int64)
    available = C.sum(axis=1) > 0
    priority = rng.permutation(n)  # random tie-break
    moved = []
    while deficit.sum() > 0:
        fits = np.all(moved_spans[None, :] + C <= cap[None, :], axis=1)
        cand = np.flatnonzero(available & fits)
        if cand.size == 0:
            break
        useful = np.minimum(C[cand], deficit[None, :]).sum(axis=1)
        if useful.max() <= 0:
            break
        surplus = C[cand].sum(axis=1) - useful
        best = cand[np.lexsort((priority[cand], surplus, -useful))[0]]
        moved.append(best)
        available[best] = False
        moved_spans += C[best]
        deficit = np.maximum(0, deficit - C[best])
    moved_idx = np.sort(np.asarray(moved, dtype=np.int64))
    keep = np.ones(n, dtype=bool)
    keep[moved_idx] = False
    return moved_idx, np.flatnonzero(keep).astype(np.int64)


#: Rows per class that the GBC k-means clusters at most (a random subsample above it), which bounds
#: its memory at ``GBC_MAX_ROWS_PER_CLASS × n_classes × (d + 1)`` floats.
GBC_MAX_ROWS_PER_CLASS = 2000


def head_gradients(features, y, *, random_state=None) -> np.ndarray:
    """Per-example gradients of a softmax head's cross-entropy, ``(p_i − e_{y_i}) ⊗ [h_i, 1]``.

    The head is a multinomial logistic regression fitted on ``features`` (scikit-learn), so that
    the gradients are those of a trained head, as GBC takes them from a trained model.

    Parameters
    ----------
    features : array-like of shape (n_samples, d)
    y : array-like of shape (n_samples,), encoded labels 0..K−1

    Returns
    -------
    gradients : ndarray of shape (n_samples, K · (d + 1)), float32
    """
    from sklearn.linear_model import LogisticRegression

    H = np.asarray(features, dtype=np.float64)
    y = np.asarray(y)
    classes = np.unique(y)
    head = LogisticRegression(max_iter=300, random_state=random_state).fit(H, y)
    P = head.predict_proba(H) if len(classes) > 1 else np.ones((len(y), 1))
    residual = P - (y[:, None] == classes[None, :])
    H1 = np.hstack([H, np.ones((len(H), 1))])
    return (residual[:, :, None] * H1[:, None, :]).reshape(len(H), -1).astype(np.float32)


def gbc_meta_set(features, y, *, n_clusters=10, random_state=None) -> np.ndarray:
    """GBC's meta set (Wu et al., 2023; HAMR's baseline): representatives of gradient clusters.

    Each example is represented by its head gradient (:func:`head_gradients`); within each class,
    k-means with ``n_clusters`` clusters (scikit-learn's ``KMeans``) runs on those gradients and the
    example nearest each centroid joins the meta set. A class with at most ``n_clusters`` examples
    joins whole. Above :data:`GBC_MAX_ROWS_PER_CLASS` rows, a class is clustered on a random
    subsample of that size.

    Parameters
    ----------
    features : array-like of shape (n_samples, d)
        Sentence features (e.g. the backbone's pooled pretrained features).
    y : array-like of shape (n_samples,)
        Class labels.
    n_clusters : int, default=10
        Clusters, hence meta examples, per class.
    random_state : int, RandomState instance or None

    Returns
    -------
    meta_positions : ndarray of int64
        Sorted positions (rows of ``features``) of the meta set.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 1, (30, 4)), rng.normal(3, 1, (6, 4))])
    >>> y = np.array([0] * 30 + [1] * 6)
    >>> meta = gbc_meta_set(X, y, n_clusters=3, random_state=0)
    >>> np.bincount(y[meta]).tolist()      # 3 representatives of each class
    [3, 3]
    """
    from sklearn.cluster import KMeans

    if int(n_clusters) < 1:
        raise ValueError(f"n_clusters must be >= 1, got {n_clusters}.")
    y = np.asarray(y)
    rng = check_random_state(random_state)
    G = head_gradients(features, y, random_state=rng.randint(2**31 - 1))
    chosen = []
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        if len(rows) <= n_clusters:
            chosen.append(rows)
            continue
        if len(rows) > GBC_MAX_ROWS_PER_CLASS:
            rows = np.sort(rng.choice(rows, GBC_MAX_ROWS_PER_CLASS, replace=False))
        km = KMeans(n_clusters=int(n_clusters), n_init=3, random_state=rng.randint(2**31 - 1)).fit(G[rows])
        nearest = np.argmin(km.transform(G[rows]), axis=0)  # the example nearest each centroid
        chosen.append(rows[np.unique(nearest)])
    return np.sort(np.concatenate(chosen)).astype(np.int64)

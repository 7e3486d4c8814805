"""Out-of-fold class probabilities from a probe classifier, shared by the samplers that read how
hard each row is for a simple model (HardnessNeighborhoodSampler, LabelNoiseRebalancer)."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone


def scores_to_proba(scores: np.ndarray) -> np.ndarray:
    """``decision_function`` scores as probabilities: a sigmoid of a binary margin, a softmax of
    per-class scores.

    >>> scores_to_proba(np.array([0.0])).tolist(), scores_to_proba(np.array([[0.0, 0.0]])).tolist()
    ([[0.5, 0.5]], [[0.5, 0.5]])
    """
    if scores.ndim == 1:  # binary decision_function
        p = 1.0 / (1.0 + np.exp(-scores))
        return np.column_stack([1.0 - p, p])
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def probe_proba(fitted, X) -> np.ndarray:
    """The fitted probe's class probabilities (its ``predict_proba``, else its scores as probabilities)."""
    if hasattr(fitted, "predict_proba"):
        return fitted.predict_proba(X)
    return scores_to_proba(np.asarray(fitted.decision_function(X), dtype=np.float64))


def out_of_fold_proba(probe, X, codes, n_classes, cv) -> np.ndarray:
    """``(n_samples, n_classes)`` probabilities of each row from a clone of ``probe`` fitted on the
    other folds of ``cv`` (as ``cross_val_predict`` gives them), ``codes`` the classes as 0..C-1.

    A class absent from a training fold gets probability 0 in its test fold; a training fold of a
    single class (a binary target with a one-row class, an unshuffled splitter on sorted rows)
    predicts that class with certainty rather than failing the probe's fit. A splitter that does
    not put every row in exactly one test fold (``ShuffleSplit``) is refused.
    """
    proba = np.zeros((codes.size, n_classes))
    tested = np.zeros(codes.size, dtype=np.int64)
    for train, test in cv.split(X, codes):
        tested[test] += 1
        present = np.unique(codes[train])
        if present.size == 1:
            proba[test, present[0]] = 1.0
            continue
        fitted = clone(probe).fit(X[train], codes[train])
        proba[np.ix_(test, fitted.classes_)] = probe_proba(fitted, X[test])
    if np.any(tested != 1):
        raise ValueError(f"cv={cv!r} puts {int(np.sum(tested != 1))} of {codes.size} rows in no test fold or in "
                         "several: the probe needs a partition of the rows (KFold, StratifiedKFold, or an integer).")
    return proba

"""Multi-label report (0/1 indicator matrices) and per-label threshold tuning."""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Iterator

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    hamming_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)

from skimb.metrics._classification import _refuse_single_string
from skimb.metrics._decision import check_n_bootstrap, f1_from_counts
from skimb.metrics._quartiles import _assign_quartiles, _quartile_means

__all__ = ["multilabel_report", "tune_thresholds"]


def _check_indicator(Y, what, *, n_labels=None):
    """A dense 2-D int array of 0/1 from an array-like or a sparse matrix."""
    if Y is None:
        raise ValueError(f"{what} is None; a 2-D 0/1 indicator matrix is needed.")
    if hasattr(Y, "toarray"):
        Y = Y.toarray()
    elif hasattr(Y, "to_numpy"):
        Y = Y.to_numpy()
    try:
        arr = np.asarray(Y)
    except ValueError as exc:  # ragged label lists
        raise ValueError(
            f"{what} must be a 2-D 0/1 indicator matrix; for lists of label lists use "
            "sklearn.preprocessing.MultiLabelBinarizer first."
        ) from exc
    if arr.ndim != 2:
        raise ValueError(
            f"{what} must be a 2-D 0/1 indicator matrix of shape (n_samples, n_labels), got shape "
            f"{arr.shape}; for lists of label lists use sklearn.preprocessing.MultiLabelBinarizer first."
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{what} is empty (shape {arr.shape}).")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{what} must hold 0/1 values, got dtype {arr.dtype}.")
    bad = ~np.isin(arr, (0, 1))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"{what}[{i}, {j}] is {arr[i, j]!r}; an indicator matrix holds only 0 and 1.")
    if n_labels is not None and arr.shape[1] != n_labels:
        raise ValueError(f"{what} has {arr.shape[1]} label columns, expected {n_labels}.")
    return arr.astype(np.int64)


def _check_scores(Y_score, shape, what="Y_score"):
    if hasattr(Y_score, "toarray"):
        Y_score = Y_score.toarray()
    arr = np.asarray(Y_score, dtype=float)
    if arr.shape != shape:
        raise ValueError(f"{what} has shape {arr.shape}, expected {shape} (same as Y_true).")
    if not np.all(np.isfinite(arr)):
        i, j = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{what}[{i}, {j}] is {arr[i, j]}; scores must be finite.")
    return arr


def multilabel_report(Y_true, Y_pred, *, Y_score=None, label_names=None, train_Y=None):
    """Aggregate and per-label metrics for multi-label classification.

    Parameters
    ----------
    Y_true : array-like or sparse matrix of shape (n_samples, n_labels)
        Ground-truth 0/1 indicator matrix.
    Y_pred : array-like or sparse matrix of shape (n_samples, n_labels)
        Predicted 0/1 indicator matrix.
    Y_score : array-like of shape (n_samples, n_labels), default=None
        Scores (probabilities or logits) for the ROC AUCs; without it the AUC
        entries are NaN.
    label_names : sequence of length n_labels, default=None
        Names used as keys of ``per_label`` and in ``quartile_labels``
        (default: column indices ``0 .. n_labels - 1``).
    train_Y : array-like of shape (n_train, n_labels), default=None
        Training indicator matrix; when given, the quartiles use the training
        positive counts instead of the positive counts in ``Y_true``.

    Returns
    -------
    report : dict
        - ``per_label``: ``{name: {"precision", "recall", "f1", "support",
          "roc_auc"}}`` (``roc_auc`` NaN where it is undefined or no scores).
        - ``macro_f1``, ``micro_f1``, ``weighted_f1``, ``samples_f1``,
          ``micro_precision``, ``micro_recall``, ``macro_precision``,
          ``macro_recall``: scikit-learn averages over all columns with
          ``zero_division=0``.
        - ``macro_roc_auc``: mean of the per-label ROC AUCs over the labels
          whose ``Y_true`` column holds both 0 and 1; the others are skipped
          and counted in ``n_labels_auc_skipped`` (``None`` without
          ``Y_score``). NaN when every label is skipped.
        - ``micro_roc_auc``: ROC AUC of the flattened matrices (scikit-learn's
          ``average="micro"``); NaN if ``Y_true`` is all 0 or all 1.
        - ``subset_accuracy``, ``hamming_loss``.
        - ``quartile_f1``, ``quartile_labels``, ``frequencies``,
          ``frequency_source``: as in :func:`skimb.metrics.imbalance_report`,
          over the labels with at least one positive in ``Y_true``, by positive
          count (``train_Y`` when given, else ``Y_true``).
        - ``support``: number of samples, ``n_labels``: number of columns.

    Examples
    --------
    >>> Y_true = [[1, 0, 1], [0, 1, 0], [1, 0, 0], [1, 1, 0]]
    >>> Y_pred = [[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]]
    >>> Y_score = [[0.9, 0.2, 0.4], [0.1, 0.8, 0.3], [0.7, 0.1, 0.2], [0.4, 0.6, 0.1]]
    >>> rep = multilabel_report(Y_true, Y_pred, Y_score=Y_score, label_names=["drama", "comedy", "horror"])
    >>> round(rep["macro_f1"], 4), round(rep["micro_f1"], 4), rep["micro_recall"]
    (0.6, 0.8, 0.6666666666666666)
    >>> rep["per_label"]["drama"]["f1"], rep["macro_roc_auc"]
    (0.8, 1.0)
    """
    Y_true = _check_indicator(Y_true, "Y_true")
    n_samples, n_labels = Y_true.shape
    Y_pred = _check_indicator(Y_pred, "Y_pred", n_labels=n_labels)
    if Y_pred.shape[0] != n_samples:
        raise ValueError(f"Y_true has {n_samples} rows but Y_pred has {Y_pred.shape[0]}.")
    if label_names is None:
        names = list(range(n_labels))
    else:
        _refuse_single_string(label_names, "label_names", "names")
        names = [n.item() if isinstance(n, np.generic) else n for n in label_names]
        if len(names) != n_labels:
            raise ValueError(f"label_names has {len(names)} names but there are {n_labels} label columns.")
        if len(set(names)) != len(names):
            raise ValueError("label_names must be unique.")

    # scikit-learn reads a single column as a binary target: a column of zeros, left out by
    # ``labels``, keeps it an indicator matrix
    Yt, Yp = (np.hstack([Y, np.zeros_like(Y)]) if n_labels == 1 else Y for Y in (Y_true, Y_pred))
    columns = dict(labels=np.arange(n_labels), zero_division=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        p, r, f, s = precision_recall_fscore_support(Yt, Yp, average=None, **columns)
        avg = {}
        for average in ("macro", "micro", "weighted", "samples"):
            ap, ar, af, _ = precision_recall_fscore_support(Yt, Yp, average=average, **columns)
            avg[average] = (float(ap), float(ar), float(af))
        subset_accuracy = float(accuracy_score(Yt, Yp))  # the zero column agrees everywhere
        hloss = float(hamming_loss(Y_true, Y_pred))

    auc = np.full(n_labels, math.nan)
    macro_auc = micro_auc = math.nan
    n_skipped = None
    if Y_score is not None:
        scores = _check_scores(Y_score, Y_true.shape)
        positives = Y_true.sum(axis=0)
        valid = (positives > 0) & (positives < n_samples)
        for j in np.flatnonzero(valid):
            auc[j] = roc_auc_score(Y_true[:, j], scores[:, j])
        n_skipped = int((~valid).sum())
        if valid.any():
            macro_auc = float(np.mean(auc[valid]))
        flat = Y_true.ravel()
        if 0 < flat.sum() < flat.size:
            micro_auc = float(roc_auc_score(flat, scores.ravel()))

    per_label = {
        name: {
            "precision": float(pi),
            "recall": float(ri),
            "f1": float(fi),
            "support": int(si),
            "roc_auc": float(ai),
        }
        for name, pi, ri, fi, si, ai in zip(names, p, r, f, s, auc)
    }

    if train_Y is not None:
        train = _check_indicator(train_Y, "train_Y", n_labels=n_labels)
        counts = train.sum(axis=0)
    else:
        counts = Y_true.sum(axis=0)
    population = [name for name, si in zip(names, s) if si > 0]
    frequencies = {name: int(c) for name, c, si in zip(names, counts, s) if si > 0}
    groups = _assign_quartiles(population, frequencies)
    means = _quartile_means(groups, {k: v["f1"] for k, v in per_label.items()})

    return {
        "per_label": per_label,
        "macro_f1": avg["macro"][2],
        "micro_f1": avg["micro"][2],
        "weighted_f1": avg["weighted"][2],
        "samples_f1": avg["samples"][2],
        "micro_precision": avg["micro"][0],
        "micro_recall": avg["micro"][1],
        "macro_precision": avg["macro"][0],
        "macro_recall": avg["macro"][1],
        "macro_roc_auc": macro_auc,
        "micro_roc_auc": micro_auc,
        "n_labels_auc_skipped": n_skipped,
        "subset_accuracy": subset_accuracy,
        "hamming_loss": hloss,
        "quartile_f1": means,
        "quartile_labels": groups,
        "frequencies": frequencies,
        "frequency_source": "train" if train_Y is not None else "test",
        "support": int(n_samples),
        "n_labels": int(n_labels),
    }


def tune_thresholds(Y_true, Y_score, *, grid=None, default=0.5, n_bootstrap=0, random_state=0):
    """Per-label decision thresholds that maximise each label's F1.

    Meant for a validation split: ``Y_pred = (Y_score >= thresholds)``
    (a label is predicted when its score is *at least* its threshold).

    Parameters
    ----------
    Y_true : array-like or sparse matrix of shape (n_samples, n_labels)
        Ground-truth 0/1 indicator matrix.
    Y_score : array-like of shape (n_samples, n_labels)
        Scores, typically sigmoid probabilities.
    grid : array-like of float, default=None
        Candidate thresholds. Default ``0.05, 0.10, ..., 0.95`` (for
        probabilities; pass a suitable grid for logits).
    default : float, default=0.5
        Threshold for a label without positives in ``Y_true``, or where no
        candidate gives a positive F1.
    n_bootstrap : int, default=0
        With ``B > 0``, each threshold is the mean of those tuned on ``B`` bootstrap
        resamples of the rows (bagging, as :func:`tune_logit_offsets` does): on a small
        validation split a label with a handful of positives makes a single search noisy.
        A resample that holds none of a label's positives is left out of that label's mean.
    random_state : int, default=0
        Seeds the bootstrap resamples.

    Returns
    -------
    thresholds : ndarray of shape (n_labels,)

    Notes
    -----
    When several candidates reach the same best F1, the one closest to
    ``default`` wins (the smaller one on an exact tie), which keeps thresholds
    near the untuned rule when the validation data cannot tell them apart.

    Examples
    --------
    >>> Y_true = [[1, 0], [1, 0], [0, 1], [0, 0]]
    >>> Y_score = [[0.30, 0.9], [0.35, 0.2], [0.10, 0.8], [0.20, 0.1]]
    >>> tune_thresholds(Y_true, Y_score, grid=[0.25, 0.5, 0.75])
    array([0.25, 0.5 ])
    """
    Y_true = _check_indicator(Y_true, "Y_true")
    scores = _check_scores(Y_score, Y_true.shape)
    if grid is None:
        grid = np.round(np.arange(1, 20) * 0.05, 2)
    try:
        grid = np.asarray(list(grid) if isinstance(grid, Iterator) else grid, dtype=float).ravel()  # a generator: read
    except (TypeError, ValueError) as exc:
        raise ValueError(f"grid must be a non-empty sequence of finite thresholds, got {grid!r:.60}.") from exc
    if grid.size == 0 or not np.all(np.isfinite(grid)):
        raise ValueError("grid must be a non-empty sequence of finite thresholds.")
    grid = np.unique(grid)  # sorted ascending: ties in distance resolve to the smaller
    if isinstance(default, bool) or not isinstance(default, numbers.Real) or not math.isfinite(default):
        # NaN or None: no tie could go to it and a label without positives got NaN or a TypeError
        raise ValueError(f"default must be a finite threshold (e.g. 0.5 for probabilities), got {default!r}.")
    check_n_bootstrap(n_bootstrap)
    if not n_bootstrap:
        return _best_thresholds(Y_true, scores, grid, float(default))
    rng = np.random.default_rng(random_state)
    rows = [rng.integers(0, len(Y_true), len(Y_true)) for _ in range(int(n_bootstrap))]
    tuned = np.array([_best_thresholds(Y_true[r], scores[r], grid, float(default)) for r in rows])
    # a resample without a label's positives says nothing of where they lie: left out of its mean
    counted = np.array([Y_true[r].any(axis=0) for r in rows])
    n_counted = counted.sum(axis=0)
    return np.where(n_counted > 0, (tuned * counted).sum(axis=0) / np.maximum(n_counted, 1), float(default))


def _best_thresholds(Y_true, scores, grid, default):
    """Each label's best-F1 threshold from ``grid`` (ties: the closest to ``default``)."""
    positives = Y_true.sum(axis=0).astype(float)
    best_f1 = np.zeros(Y_true.shape[1])
    best_t = np.full(Y_true.shape[1], default)
    for t in grid:
        pred = scores >= t
        tp = (pred & (Y_true == 1)).sum(axis=0)
        f1 = f1_from_counts(tp, positives, pred.sum(axis=0))
        better = f1 > best_f1 + 1e-12
        same = (np.abs(f1 - best_f1) <= 1e-12) & (f1 > 0)
        closer = np.abs(t - default) < np.abs(best_t - default) - 1e-12
        update = better | (same & closer)
        best_f1 = np.where(update, f1, best_f1)
        best_t = np.where(update, t, best_t)
    return best_t

"""Multi-class (single-label) imbalance report and quartile F1."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    precision_recall_fscore_support,
)
from sklearn.utils.multiclass import unique_labels

from skimb._validation import check_labels, is_multilabel_target
from skimb.metrics._quartiles import (
    _assign_quartiles,
    _count,
    _quartile_means,
    _round,
    _to_python,
)

__all__ = ["imbalance_report", "quartile_f1", "real_class_f1_score"]


def _check_multiclass_targets(y_true, y_pred):
    """Validate and align 1-D ``y_true``/``y_pred`` (strings or integers)."""
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if is_multilabel_target(y):  # check_labels' "must be 1-D" would not say where such targets go
            raise ValueError(f"{name} has shape {tuple(np.shape(y))}: one label per sample (1-D) is needed; "
                             "a multi-label 0/1 indicator matrix is scored by skimb.metrics.multilabel_report.")
    y_true = check_labels(y_true, what="y_true", min_classes=1)
    y_pred = check_labels(y_pred, what="y_pred", min_classes=1)
    if y_true.shape[0] != y_pred.shape[0]:
        raise ValueError(
            f"y_true and y_pred have different lengths: {y_true.shape[0]} != {y_pred.shape[0]}."
        )
    if (y_true.dtype.kind in "US") != (y_pred.dtype.kind in "US"):
        raise ValueError(
            f"y_true holds {'strings' if y_true.dtype.kind in 'US' else 'numbers'} but y_pred holds "
            f"{'strings' if y_pred.dtype.kind in 'US' else 'numbers'}; use one type of label for both."
        )
    return y_true, y_pred


def _refuse_single_string(value, name, items):
    """A string where a sequence is due would be read letter by letter, each letter an item."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of {items}, got the single string {value!r:.40}; wrap it in a "
                        f"list: [{value!r:.40}].")


def _check_label_list(labels, y_true):
    if labels is None:
        return None
    _refuse_single_string(labels, "labels", "classes")
    labels = np.asarray(list(labels))
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError("labels must be a non-empty 1-D sequence of class labels.")
    if np.unique(labels).size != labels.size:
        raise ValueError("labels must not contain duplicates.")
    if (labels.dtype.kind in "US") != (y_true.dtype.kind in "US"):
        raise ValueError("labels and y_true must hold the same type of label (strings or numbers).")
    return labels


def _prf(y_true, y_pred, labels):
    """Per-class precision/recall/F1/support with zero_division=0 and no warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        p, r, f, s = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=None, zero_division=0
        )
    return p, r, f, s


def _balanced_accuracy(y_true, y_pred):
    """Mean recall over the classes of ``y_true``.

    Equals :func:`sklearn.metrics.balanced_accuracy_score` without its warnings
    (single class, classes only in ``y_pred``).
    """
    classes, inverse = np.unique(y_true, return_inverse=True)
    hits = np.bincount(inverse, weights=(y_true == y_pred).astype(float), minlength=classes.size)
    return float(np.mean(hits / np.bincount(inverse, minlength=classes.size)))


def _quartiles_for(y_true, labels, f1_per_label, train_labels):
    """Quartile groups and means over the labels with support > 0 in ``y_true``."""
    support = _count(y_true)
    population = [lab for lab in labels if support.get(lab, 0) > 0]
    if train_labels is not None:
        train = check_labels(train_labels, what="train_labels", min_classes=1)
        if (train.dtype.kind in "US") != (y_true.dtype.kind in "US"):
            raise ValueError(
                "train_labels and y_true must hold the same type of label (strings or numbers)."
            )
        frequencies = _count(train)
    else:
        frequencies = support
    groups = _assign_quartiles(population, frequencies)
    means = _quartile_means(groups, f1_per_label)
    return groups, means, {lab: int(frequencies.get(lab, 0)) for lab in population}


def quartile_f1(y_true, y_pred, *, train_labels=None, labels=None):
    """Mean per-class F1 within label-frequency quartiles, Q1 (rarest) ... Q4.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Ground-truth labels (strings or integers).
    y_pred : array-like of shape (n_samples,)
        Predicted labels, same type as ``y_true``.
    train_labels : array-like of shape (n_train,), default=None
        Training labels. When given, class frequencies are counted here (a class
        absent from training has frequency 0); otherwise they are the supports in
        ``y_true``.
    labels : array-like, default=None
        Restrict the classes considered (default: every class in ``y_true``).

    Returns
    -------
    quartiles : dict
        ``{"Q1": f1, "Q2": f1, "Q3": f1, "Q4": f1}``; an empty quartile is NaN.

    Notes
    -----
    Only classes with support > 0 in ``y_true`` take part. They are sorted by
    frequency ascending (stable over the sorted class labels, so ties keep label
    order) and split with ``np.array_split(classes, 4)``: the first ``C % 4``
    quartiles get one class more (5 classes -> 2, 1, 1, 1), and with fewer than
    4 classes the last quartiles are empty and NaN (3 classes -> Q4 is NaN).
    Per-class F1 uses ``zero_division=0``.

    Examples
    --------
    >>> y_true = ["a", "a", "a", "a", "b", "b", "c", "d", "d", "d"]
    >>> y_pred = ["a", "a", "a", "b", "b", "b", "a", "d", "d", "a"]
    >>> {q: round(v, 3) for q, v in quartile_f1(y_true, y_pred).items()}
    {'Q1': 0.0, 'Q2': 0.8, 'Q3': 0.8, 'Q4': 0.667}
    """
    y_true, y_pred = _check_multiclass_targets(y_true, y_pred)
    labels = _check_label_list(labels, y_true)
    if labels is None:
        labels = unique_labels(y_true)
    _, _, f, _ = _prf(y_true, y_pred, labels)
    keys = [_to_python(lab) for lab in labels]
    _, means, _ = _quartiles_for(y_true, keys, dict(zip(keys, f.tolist())), train_labels)
    return means


def imbalance_report(y_true, y_pred, *, labels=None, train_labels=None, digits=4):
    """Per-class and aggregate metrics for an imbalanced multi-class problem.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Ground-truth labels (strings or integers; no missing values).
    y_pred : array-like of shape (n_samples,)
        Predicted labels, same type as ``y_true``. Classes that occur only in
        ``y_pred`` get a row with support 0 and F1 0 and count in the macro
        averages (scikit-learn's default).
    labels : array-like, default=None
        Classes to report, in this order. Default: the sorted union of the
        classes in ``y_true`` and ``y_pred``
        (:func:`sklearn.utils.multiclass.unique_labels`).
    train_labels : array-like of shape (n_train,), default=None
        Training labels; when given, the quartiles use training frequencies
        instead of the supports in ``y_true``.
    digits : int or None, default=4
        Round every float of the returned dict to this many decimals (NaN
        stays NaN); ``None`` keeps full precision.

    Returns
    -------
    report : dict
        - ``per_class``: ``{label: {"precision", "recall", "f1", "support"}}``
          in ``labels`` order (keys are Python ``str``/``int``).
        - ``macro_f1``, ``weighted_f1``, ``micro_f1``, ``macro_precision``,
          ``macro_recall``: scikit-learn averages over ``labels``,
          ``zero_division=0``.
        - ``accuracy``, ``balanced_accuracy``: over all samples (they ignore
          ``labels``); balanced accuracy is the mean recall over the classes of
          ``y_true``.
        - ``geometric_mean``: imbalanced-learn's ``geometric_mean_score`` with
          ``average="macro"`` (per-class one-vs-rest sqrt(sensitivity x
          specificity), averaged over ``labels``).
        - ``quartile_f1``: ``{"Q1".."Q4": mean F1}`` (see :func:`quartile_f1`),
          ``quartile_labels``: the classes in each quartile, ``frequencies``:
          the counts the quartiles were formed from, ``frequency_source``:
          ``"train"`` or ``"test"``.
        - ``support``: number of samples.

    Notes
    -----
    Undefined precision/recall (no predictions / no true samples of a class)
    is 0 and no ``UndefinedMetricWarning`` is emitted. Balanced accuracy is
    computed directly (it equals :func:`sklearn.metrics.balanced_accuracy_score`)
    so that scikit-learn's warnings about classes only in ``y_pred`` or a single
    class do not leak.

    Examples
    --------
    >>> y_true = ["cat", "cat", "cat", "dog", "dog", "eel"]
    >>> y_pred = ["cat", "cat", "dog", "dog", "dog", "cat"]
    >>> rep = imbalance_report(y_true, y_pred, digits=3)
    >>> rep["per_class"]["dog"]
    {'precision': 0.667, 'recall': 1.0, 'f1': 0.8, 'support': 2}
    >>> rep["macro_f1"], rep["accuracy"], rep["balanced_accuracy"]
    (0.489, 0.667, 0.556)
    >>> rep["quartile_f1"]
    {'Q1': 0.0, 'Q2': 0.8, 'Q3': 0.667, 'Q4': nan}
    """
    from imblearn.metrics import geometric_mean_score

    if digits is not None and (isinstance(digits, bool) or not isinstance(digits, (int, np.integer)) or digits < 0):
        raise ValueError(f"digits must be None or an integer >= 0, got {digits!r}.")  # -1 rounded to tens
    y_true, y_pred = _check_multiclass_targets(y_true, y_pred)
    labels = _check_label_list(labels, y_true)
    if labels is None:
        labels = unique_labels(y_true, y_pred)
    p, r, f, s = _prf(y_true, y_pred, labels)
    keys = [_to_python(lab) for lab in labels]
    per_class = {
        k: {"precision": float(pi), "recall": float(ri), "f1": float(fi), "support": int(si)}
        for k, pi, ri, fi, si in zip(keys, p, r, f, s)
    }

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        common = dict(labels=labels, zero_division=0)
        mp, mr, mf, _ = precision_recall_fscore_support(y_true, y_pred, average="macro", **common)
        weighted_f1 = f1_score(y_true, y_pred, average="weighted", **common)
        micro_f1 = f1_score(y_true, y_pred, average="micro", **common)
        accuracy = accuracy_score(y_true, y_pred)
        balanced = _balanced_accuracy(y_true, y_pred)
        gmean = geometric_mean_score(y_true, y_pred, labels=labels, average="macro")

    groups, means, freqs = _quartiles_for(
        y_true, keys, {k: v["f1"] for k, v in per_class.items()}, train_labels
    )
    report = {
        "per_class": per_class,
        "macro_f1": float(mf),
        "weighted_f1": float(weighted_f1),
        "micro_f1": float(micro_f1),
        "macro_precision": float(mp),
        "macro_recall": float(mr),
        "accuracy": float(accuracy),
        "balanced_accuracy": float(balanced),
        "geometric_mean": float(gmean),
        "quartile_f1": means,
        "quartile_labels": groups,
        "frequencies": freqs,
        "frequency_source": "train" if train_labels is not None else "test",
        "support": int(y_true.shape[0]),
    }
    return _round(report, digits)


def real_class_f1_score(y_true, y_pred, *, catch_all, labels=None):
    """Macro-F1 over the real classes: every class of ``labels`` (default: those in ``y_true``
    or ``y_pred``) except the catch-all class ``catch_all`` (HumAID's "other", NER's "O"), as
    SemEval-2010 Task 8 scores relation classification. Predictions of the catch-all class still
    count, as the real classes' false negatives.

    Examples
    --------
    >>> y_true = ["other", "other", "fire", "flood", "flood"]
    >>> y_pred = ["other", "fire", "fire", "flood", "other"]
    >>> round(real_class_f1_score(y_true, y_pred, catch_all="other"), 4)  # fire 2/3, flood 2/3
    0.6667
    """
    y_true, y_pred = _check_multiclass_targets(y_true, y_pred)
    labels = unique_labels(y_true, y_pred) if labels is None else _check_label_list(labels, y_true)
    real = [c for c in np.asarray(labels).tolist() if c != catch_all]
    if len(real) == len(labels):
        raise ValueError(f"catch_all={catch_all!r} is not one of the labels {list(labels)}.")
    if not real:
        raise ValueError("there is no real class besides the catch-all class.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return float(f1_score(y_true, y_pred, labels=real, average="macro", zero_division=0))

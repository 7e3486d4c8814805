"""Paired bootstrap confidence intervals for the macro-F1 gap between two methods."""

from __future__ import annotations

import numbers

import numpy as np

from skimb._validation import check_labels
from skimb.metrics._classification import _refuse_single_string
from skimb.metrics._decision import f1_from_counts

__all__ = ["example_counts", "paired_bootstrap_gap"]


def example_counts(task, y_true, y_pred, labels=None):
    """Per-example, per-class ``(true positives, predicted, true)`` counts, shape ``(n, C, 3)``,
    whose sums over any subset of examples give that subset's per-class F1.

    ``task`` is ``"multiclass"`` (labels), ``"multilabel"`` (0/1 indicator rows) or
    ``"token"`` (tag sequences, IOB2; counts of exactly matching entity spans per type).
    ``labels`` fixes the columns (classes; entity types for ``"token"``), so that runs which
    predict different sets of classes can be compared; default: those seen in the inputs. A class
    (or type) of ``y_true`` or ``y_pred`` that ``labels`` lacks is refused.

    >>> example_counts("multiclass", ["a", "b"], ["a", "a"])[:, :, 0]
    array([[1, 0],
           [0, 0]])
    """
    if task not in ("multiclass", "multilabel", "token"):
        raise ValueError(f"task must be 'multiclass', 'multilabel' or 'token', got {task!r}.")
    n_true, n_pred = _n_rows(y_true), _n_rows(y_pred)
    if n_true != n_pred:
        raise ValueError(f"y_true and y_pred have different lengths: {n_true} != {n_pred}.")
    if task == "multilabel":
        Y, P = (np.asarray(v.toarray() if hasattr(v, "toarray") else v) for v in (y_true, y_pred))
        if Y.shape != P.shape or Y.ndim != 2 or not (np.isin(Y, (0, 1)).all() and np.isin(P, (0, 1)).all()):
            raise ValueError("multi-label y_true and y_pred must be 0/1 indicator matrices of one shape, "
                             f"got {Y.shape} and {P.shape}.")
        Y, P = Y.astype(np.int64), P.astype(np.int64)
        return np.stack([Y * P, P, Y], axis=-1)
    if task == "token":
        from ._spans import _check_tag_sequences

        return _span_counts(*_check_tag_sequences(y_true, y_pred), labels)
    if n_true:  # a missing label (None, NaN) would match no class and count nowhere
        y_true = check_labels(y_true, what="y_true", min_classes=1)
        y_pred = check_labels(y_pred, what="y_pred", min_classes=1)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) and _holds_text(y_true) != _holds_text(y_pred):
        raise ValueError(f"y_true and y_pred mix label types ({y_true.dtype} and {y_pred.dtype}): every "
                         "prediction would count as wrong. Give both as the same type.")
    seen = np.unique(np.concatenate([y_true, y_pred]))
    if labels is None:
        labels = seen
    else:
        _refuse_single_string(labels, "labels", "classes")
        labels = np.asarray(labels)
        known = set(labels.tolist())
        unknown = [c for c in seen.tolist() if c not in known]  # their examples would count nowhere
        if unknown:
            raise ValueError(f"classes {unknown} of y_true or y_pred are not in labels {labels.tolist()}; pass "
                             "every class the runs can predict (e.g. those of the training labels), of the "
                             "labels' type.")
    t = (y_true[:, None] == labels[None, :]).astype(np.int64)
    p = (y_pred[:, None] == labels[None, :]).astype(np.int64)
    return np.stack([t * p, p, t], axis=-1)


def _n_rows(y) -> int:
    """Rows of labels, an indicator matrix (a sparse one too) or tag sequences."""
    return y.shape[0] if hasattr(y, "shape") else len(y)


def _stack_seeds(counts, name) -> np.ndarray:
    """One method's per-seed counts as one ``(S, n, C, 3)`` array; seeds that differ are named."""
    arrays = [np.asarray(c) for c in counts]
    for i, arr in enumerate(arrays):
        if arr.ndim != 3 or arr.shape[-1] != 3:
            raise ValueError(f"{name}[{i}] has shape {arr.shape}; expected example_counts' (n_examples, "
                             "n_columns, 3).")
        if arr.shape != arrays[0].shape:
            raise ValueError(f"{name}[{i}] has shape {arr.shape} but {name}[0] {arrays[0].shape}: every seed is "
                             "scored on the same test examples with the same labels (columns).")
    return np.stack(arrays)


def _holds_text(labels: np.ndarray) -> bool:
    return labels.dtype.kind in "US" or (labels.dtype.kind == "O" and isinstance(labels.flat[0], str))


def _span_counts(y_true, y_pred, types=None):
    from ._spans import get_entities

    gold = [set(get_entities(list(s))) for s in y_true]
    pred = [set(get_entities(list(s))) for s in y_pred]
    seen = sorted({e[0] for spans in gold + pred for e in spans})
    if types is None:
        types = seen
    elif set(seen) - set(types):
        raise ValueError(f"entity types {sorted(set(seen) - set(types))} are not in labels; pass every type "
                         "the runs can predict (e.g. those of the training tags).")
    index = {t: i for i, t in enumerate(types)}
    counts = np.zeros((len(gold), len(types), 3), dtype=np.int64)
    for i, (g, p) in enumerate(zip(gold, pred)):
        for spans, col in ((g & p, 0), (p, 1), (g, 2)):
            for e in spans:
                counts[i, index[e[0]], col] += 1
    return counts


def _macro_f1(counts, every_column=False):
    """Macro-F1 from summed counts ``(..., C, 3)``, over classes seen in truth or prediction (or
    over every column, those unseen at F1 0)."""
    tp, pred, true = counts[..., 0], counts[..., 1], counts[..., 2]
    present = np.ones(tp.shape, dtype=bool) if every_column else (pred + true) > 0
    f1 = f1_from_counts(tp, true, pred)
    return (f1 * present).sum(-1) / np.maximum(present.sum(-1), 1)


def paired_bootstrap_gap(counts_a, counts_b, *, n_boot=2000, confidence=0.95, random_state=0,
                         every_column=False):
    """Macro-F1 of A minus B, with a paired bootstrap interval pooled over seeds.

    ``counts_a`` and ``counts_b`` are lists (one entry per seed) of :func:`example_counts` on
    the same test examples. Each bootstrap draw resamples the test examples once and applies
    the draw to every seed of both methods; the statistic is the mean over seeds of
    ``macro-F1(A) - macro-F1(B)``. The macro average is over the columns with a true or a
    predicted example (scikit-learn's multi-class macro-F1, seqeval's per-type average); with
    ``every_column=True`` over every column, those without either at F1 0 (scikit-learn's
    multi-label macro-F1, :func:`skimb.metrics.multilabel_report`'s).

    Parameters
    ----------
    counts_a, counts_b : list of ndarray of shape (n, C, 3)
        :func:`example_counts` of methods A and B, one per seed, in the same seed order.
    n_boot : int, default=2000
        Bootstrap draws.
    confidence : float in (0, 1), default=0.95
        Coverage of the interval: its ends are the draws' ``(1 - confidence) / 2`` and
        ``(1 + confidence) / 2`` quantiles.
    random_state : int, numpy Generator or None, default=0
        Seeds the draws (``numpy.random.default_rng``'s argument; the default makes the interval
        reproducible).
    every_column : bool, default=False
        Average F1 over every column, not only those with a true or a predicted example.

    Returns
    -------
    gap, low, high : float
        The observed mean gap and the interval's ends.

    Examples
    --------
    >>> y = ["a"] * 16 + ["b"] * 4
    >>> good = example_counts("multiclass", y, y)
    >>> poor = example_counts("multiclass", y, ["a"] * 20, labels=["a", "b"])
    >>> gap, low, high = paired_bootstrap_gap([good], [poor], n_boot=500)
    >>> round(gap, 3), low > 0
    (0.556, True)
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a whole number of draws >= 1, got {n_boot!r}.")
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a fraction in (0, 1), e.g. 0.95, got {confidence!r}.")
    for name, counts in (("counts_a", counts_a), ("counts_b", counts_b)):
        if isinstance(counts, np.ndarray) and counts.ndim == 3:  # its rows would be taken for seeds
            raise ValueError(f"{name} is one array of shape {counts.shape}, one run's example_counts; pass a list "
                             "with one entry per seed, e.g. [counts].")
    if len(counts_a) != len(counts_b) or not len(counts_a):
        raise ValueError(f"need the same number (>= 1) of seeds for both methods, got {len(counts_a)} "
                         f"and {len(counts_b)}.")
    a, b = _stack_seeds(counts_a, "counts_a"), _stack_seeds(counts_b, "counts_b")  # (S, n, C, 3)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"both methods must be scored on the same test examples; got {a.shape[1]} "
                         f"and {b.shape[1]}.")
    if a.shape[2] != b.shape[2]:  # column j must be one class in both, or the macro averages differ
        raise ValueError(f"the methods' counts have {a.shape[2]} and {b.shape[2]} columns; give example_counts "
                         "the same labels for every run (e.g. the classes of the training data).")
    n = a.shape[1]
    gap = float((_macro_f1(a.sum(1), every_column) - _macro_f1(b.sum(1), every_column)).mean())
    rng = np.random.default_rng(random_state)
    draws = np.empty(n_boot)
    for i in range(n_boot):
        w = np.bincount(rng.integers(0, n, n), minlength=n)  # multiplicity of each example
        sa = np.einsum("n,snck->sck", w, a)
        sb = np.einsum("n,snck->sck", w, b)
        draws[i] = (_macro_f1(sa, every_column) - _macro_f1(sb, every_column)).mean()
    alpha = (1 - confidence) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return gap, float(low), float(high)
